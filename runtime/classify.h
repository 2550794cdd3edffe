/* classify.h: what a classification network reports beyond its loss: per-class precision, recall and F1
 * with the confusion matrix (`NAME eval`), and `NAME predict`, which labels new texts.
 *
 * predict reads lines of text (a file, or standard input for "-"): a line "LABEL<TAB>TEXT" whose LABEL is
 * an integer in [0, classes) is a labelled example, any other line is a text (blank lines are skipped).
 * Texts go through exactly the preparation of training (runtime/data.h: the last T tokens kept, the front
 * left-padded), in batches of B x T, and each gives one output line, in input order:
 *   LABEL<TAB>P0 P1 ... P(classes-1)                       (the argmax and the softmax of the logits)
 *   {"line": N, "label": K, "probs": [P0, ...], "true": L}  (--json; "true" only for labelled lines)
 * When every line was labelled, the accuracy and the per-class report follow on stderr. */
#ifndef LMN_CLASSIFY_H
#define LMN_CLASSIFY_H

#include <stdio.h>

#include "data.h"
#include "lmn_error.h"
#include "net.h"

/* A confusion matrix being counted: counts[label * classes + predicted]. */
typedef struct lmn_confusion {
  int classes;
  long *counts;
} lmn_confusion;

/* Allocates a zeroed classes x classes matrix; -1 when out of memory. */
int lmn_confusion_init(lmn_confusion *c, int classes, lmn_err *err);
void lmn_confusion_free(lmn_confusion *c);
/* An lmn_class_row_fn (ctx: the lmn_confusion) counting the argmax of each row against its label. */
void lmn_confusion_add(void *ctx, long index, const float *logits, int classes, int32_t label);
/* Per class: precision, recall, F1 and support, then their macro average, then (up to 20 classes) the matrix
 * with labels as rows and predictions as columns. */
void lmn_confusion_print(const lmn_confusion *c, FILE *out);

/* The index of the largest of x[0..n) (the first of equal maxima), as lmn_count_correct counts. */
int lmn_argmax(const float *x, int n);

/* Labels the lines of input ("-": standard input) with net (created for batch B x T, weights loaded) and
 * tokenizer tok, writing to out as the header says. Errors name the input and the line. */
int lmn_predict(lmn_net *net, const lmn_tokenizer *tok, const char *input, long B, long T, int json, FILE *out,
                lmn_err *err);

#endif
