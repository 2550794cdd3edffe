/* sample.h: choosing the next token from one row of logits [V]: greedy argmax, or a draw at a temperature
 * restricted by top-k and/or top-p (nucleus). Works in caller-provided scratch (no allocation per token) and
 * is deterministic for a given RNG state: a draw consumes exactly one uniform from the RNG, greedy none. */
#ifndef LMN_SAMPLE_H
#define LMN_SAMPLE_H

#include <stddef.h>

#include "rng.h"

typedef struct lmn_sample_opts {
  float temperature; /* 0 (or below): greedy argmax; 1: the model's distribution */
  int top_k;         /* keep only the k most likely tokens; 0 (or >= V): off; 1: greedy */
  float top_p;       /* keep the smallest most-likely set whose probability reaches top_p; 0 or >= 1: off */
} lmn_sample_opts;

/* Bytes of scratch lmn_sample needs for a vocabulary of V (8 bytes per token, 4-byte aligned). */
size_t lmn_sample_scratch_bytes(int vocab);
/* Index of the largest logit (the first one on ties; NaN never wins); 0 when every logit is NaN, -1 when
 * vocab <= 0 or logits is NULL. */
int lmn_sample_argmax(const float *logits, int vocab);
/* The next token in [0, vocab), or -1 when an argument is invalid (vocab <= 0, NULL logits/opts, a NaN or
 * negative top_p, negative top_k, or NULL rng/scratch when a draw is needed). top-k is applied first, then
 * top-p on the renormalised remainder, then one draw. NaN logits are treated as -inf. */
int lmn_sample(const float *logits, int vocab, const lmn_sample_opts *opts, lmn_rng *rng, void *scratch);

#endif
