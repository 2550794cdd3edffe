/* data.h: the data loader of training, for both kinds of network.
 * Next-token data (language models): a text file, mapped (never read whole into memory), split into train and
 * validation (a separate file, or the tail fraction of the training file), and served as batches of B
 * sequences of T+1 tokens: inputs [B][T] and next-token targets [B][T]. Windows start at positions drawn from
 * a seeded RNG (training) or one after another (validation). The byte tokenizer's tokens are the mapped
 * bytes themselves; another tokenizer's ids are made once, in chunks of a few MiB cut at line breaks between
 * printable characters (which gives the ids of the whole text, see cut_at in data.c), kept in memory while
 * they are few and otherwise in an unlinked temporary file ($TMPDIR, else /tmp) that is mapped: the memory a
 * corpus takes is bounded whatever its size. Only regular files are read: a FIFO, a device (/dev/zero) or a
 * directory is refused at once. A file must not shrink while it is mapped.
 * Labelled data (classification networks, lmn_data_open_classes with classes > 0): the format below, served
 * as batches of B examples: tokens [B][T] and labels [B].
 * Where a stream stands is the POD lmn_data_state, which a checkpoint stores verbatim so that a resumed run
 * sees exactly the batches it would have seen.
 *
 * The labelled format: a UTF-8 text file (the bytes are not checked), one example per line
 *   LABEL<TAB>TEXT
 * LABEL a decimal integer in [0, classes); TEXT everything after the first tab up to the end of the line
 * (further tabs included, a '\r' before the '\n' dropped, so CRLF files read the same). Blank lines and a
 * byte-order mark at the start are skipped. Each TEXT is tokenised on its own and only its LAST seq_len
 * tokens are kept (a longer text loses its front); a row of a shorter text is LEFT-padded with the pad token
 * (lmn_data.pad: byte 0 for the raw-byte tokenizer; for other tokenizers their EOS id, or 0 without one), so
 * that position T-1, the one a classification head reads, always holds the text's last token. Validation is
 * the val file, or the last val_fraction of the examples (rounded down). Errors name file:line for a line
 * without a tab, a label that is not an integer or is outside [0, classes), and an empty text; and the file
 * for an empty file (no examples) and a val_fraction that leaves no examples for validation (or training).
 * The file is mapped; a line longer than 64 MiB is an error (file:line).
 * Training streams visit the examples in a new seeded random order each epoch (every example once per
 * epoch); validation streams visit them in file order. */
#ifndef LMN_DATA_H
#define LMN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "lmn_error.h"
#include "rng.h"
#include "tokenizer.h"

typedef enum lmn_split { LMN_SPLIT_TRAIN = 0, LMN_SPLIT_VAL = 1 } lmn_split;
typedef enum lmn_order {
  LMN_ORDER_RANDOM = 0,    /* each window at a uniform position in [0, n - T - 1]; labelled data: the
                              examples of each epoch in a seeded random permutation */
  LMN_ORDER_SEQUENTIAL = 1 /* windows at 0, T, 2T, ...; back to 0 when the next one would not fit;
                              labelled data: the examples in file order, then again from the first */
} lmn_order;

/* Where one stream of batches stands (56 bytes, no padding, no pointers). */
typedef struct lmn_data_state {
  lmn_rng rng;      /* draws the positions of LMN_ORDER_RANDOM; labelled data: the generator as it stands at
                       the start of the current epoch (its permutation is derived from a copy) */
  uint64_t pos;     /* start of the next window of LMN_ORDER_SEQUENTIAL; labelled data: the next example's
                       place in the epoch (or in the file) */
  uint64_t batches; /* batches served so far */
  uint32_t split;   /* lmn_split */
  uint32_t order;   /* lmn_order */
} lmn_data_state;

typedef struct lmn_data_opts {
  const char *train_path;   /* required */
  const char *val_path;     /* NULL: validation is the tail val_fraction of the training file */
  double val_fraction;      /* in (0, 1) when val_path is NULL */
  long seq_len;             /* T: every split must hold at least T + 1 tokens (labelled: kept per text) */
  const lmn_tokenizer *tok; /* NULL or a LMN_TOK_BYTES tokenizer: raw bytes are kept, one per token */
} lmn_data_opts;

/* One example of labelled data: where its kept tokens are in its split's ids or bytes, and its label. */
typedef struct lmn_data_example {
  size_t start;  /* first kept token */
  uint32_t len;  /* kept tokens, in [1, seq_len] */
  int32_t label; /* in [0, classes) */
} lmn_data_example;

/* The tokens of one split: exactly one of ids and bytes is set. */
typedef struct lmn_data_split {
  const char *path; /* the file they came from */
  const int32_t *ids;
  const uint8_t *bytes;
  size_t n;                   /* tokens (labelled data: the kept tokens of its examples) */
  const lmn_data_example *ex; /* labelled data: the examples, n_ex of them; NULL otherwise */
  size_t n_ex;
} lmn_data_split;

typedef struct lmn_data {
  lmn_data_split split[2]; /* indexed by lmn_split */
  long seq_len;
  void *buf[2]; /* owned token buffers (malloc'ed ids), or NULL */
  void *map[2]; /* owned mappings: the file (raw bytes) or the token cache (ids), or NULL */
  size_t map_len[2];
  char *path[2];                 /* owned copies of the paths */
  int classes;                   /* > 0: labelled data for a classifier of that many classes */
  int32_t pad;                   /* labelled data: the token that left-pads short texts */
  lmn_data_example *examples[2]; /* owned example arrays of labelled data */
} lmn_data;

/* Fills opts from a loaded configuration (paths, val_fraction, seq_len) and a tokenizer (may be NULL). */
void lmn_data_opts_from_config(lmn_data_opts *opts, const lmn_train_config *cfg, const lmn_tokenizer *tok);
/* Maps and tokenises the data. Errors name the file: cannot open, not a regular file (and what it is),
 * empty, a tokenizer failure or an id outside its vocabulary, a token cache that cannot be written, or too
 * few tokens for seq_len (with the sizes). On failure d holds nothing. */
int lmn_data_open(lmn_data *d, const lmn_data_opts *opts, lmn_err *err);
/* The data of a network with `classes` classes (lmn_net_desc.classes): lmn_data_open when classes is 0,
 * labelled data in the format above when it is > 0 (seq_len is how many tokens of each text are kept).
 * Errors as lmn_data_open's, and those of the format above. On failure d holds nothing. */
int lmn_data_open_classes(lmn_data *d, const lmn_data_opts *opts, int classes, lmn_err *err);
/* lmn_data_open_classes with the text tokenised chunk_bytes at a time (0: 4 MiB) and at most memory_tokens
 * ids held in memory before they go to the token cache file (0: 16 Mi): small values exercise those paths
 * on small files. */
int lmn_data_open_tuned(lmn_data *d, const lmn_data_opts *opts, int classes, size_t chunk_bytes,
                        size_t memory_tokens, lmn_err *err);
/* Frees the tokens and zeroes d; safe on a zeroed or already closed loader. */
void lmn_data_close(lmn_data *d);
/* Tokens in a split (0 for an invalid split). */
size_t lmn_data_tokens(const lmn_data *d, lmn_split split);
/* Examples in a split of labelled data (0 for next-token data or an invalid split). */
size_t lmn_data_examples(const lmn_data *d, lmn_split split);
/* Sequential windows of T+1 tokens (stride T) in a split: how many batch rows one pass over it yields (for
 * labelled data: its examples). */
size_t lmn_data_windows(const lmn_data *d, lmn_split split, long T);
/* Starts a stream over split in the given order; seed only matters for LMN_ORDER_RANDOM. */
void lmn_data_state_init(lmn_data_state *st, lmn_split split, lmn_order order, uint64_t seed);
/* Serves the next batch of the stream st: for each row b a window w of T+1 tokens, inputs[b*T + t] = w[t]
 * and targets[b*T + t] = w[t + 1]; advances st. Labelled data: for each row b an example, its last T kept
 * tokens left-padded to T in inputs[b*T ..], and its label in targets[b] (B labels: the targets a
 * classifier's forward takes). Fails (and leaves st unchanged) when B or T is below 1, the split holds
 * fewer than T+1 tokens (labelled data: no example), or st is not a valid state (a corrupt checkpoint: an
 * unknown split or order, or the all-zero generator of a random order, which would draw zeros for ever). */
int lmn_data_next(const lmn_data *d, lmn_data_state *st, long B, long T, int32_t *inputs, int32_t *targets,
                  lmn_err *err);

/* ---- evaluation of a classifier (the counterpart of lmn_eval_loss in driver.h) ------------------- */

typedef struct lmn_net lmn_net;

typedef struct lmn_class_eval {
  double loss;     /* mean cross-entropy per example */
  double accuracy; /* correct / examples */
  long examples;   /* examples evaluated */
  long correct;    /* of which the argmax of the class logits is the label */
} lmn_class_eval;

/* Rows of logits [B, classes] whose argmax (the first of equal maxima) is labels[b]. */
long lmn_count_correct(const float *logits, const int32_t *labels, long B, int classes);
/* Loss and accuracy of a classifier net on the first min(batches * B, examples) validation examples of
 * labelled data d, in file order, in batches of B x T (the last one smaller when fewer are left): a forward
 * with train = 0 per batch, its loss, and the argmax of desc->output's rows [rows, classes] against the
 * labels. Fails when d is not labelled data for net's number of classes or the shape exceeds net's plan. */
int lmn_eval_classes(lmn_net *net, const lmn_data *d, long batches, long B, long T, lmn_class_eval *out,
                     lmn_err *err);
/* Called by lmn_eval_classes_each for every example evaluated, in file order: its index in the split, the
 * class logits (classes of them) and its label. */
typedef void (*lmn_class_row_fn)(void *ctx, long index, const float *logits, int classes, int32_t label);
/* Data parallelism (train.c): this rank's share of lmn_eval_classes over `batches` batches of G examples, cut
 * into pieces of the network's batch, piece k evaluated by rank k % ranks: part[0] the summed loss, part[1]
 * the correct examples, part[2] the examples; summed over the ranks, lmn_class_eval_of makes the result. */
int lmn_eval_classes_part(lmn_net *net, const lmn_data *d, long batches, long G, long T, int rank, int ranks,
                          double part[3], lmn_err *err);
void lmn_class_eval_of(const double part[3], lmn_class_eval *out);
/* lmn_eval_classes, also calling on_row (when not NULL) for each example. */
int lmn_eval_classes_each(lmn_net *net, const lmn_data *d, long batches, long B, long T, lmn_class_eval *out,
                          lmn_class_row_fn on_row, void *ctx, lmn_err *err);

#endif
