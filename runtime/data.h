/* data.h: the token data loader of training: a text file read whole, tokenised once by the caller's
 * tokenizer into int32 ids held in memory (kept as raw bytes when the tokenizer is the byte tokenizer),
 * split into train and validation (a separate file, or the tail fraction of the training file), and served
 * as batches of B sequences of T+1 tokens: inputs [B][T] and next-token targets [B][T]. Windows start at
 * positions drawn from a seeded RNG (training) or one after another (validation). Where the stream stands
 * is the POD lmn_data_state, which a checkpoint stores verbatim so that a resumed run sees exactly the
 * batches it would have seen. */
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
  LMN_ORDER_RANDOM = 0,    /* each window at a uniform position in [0, n - T - 1] */
  LMN_ORDER_SEQUENTIAL = 1 /* windows at 0, T, 2T, ...; back to 0 when the next one would not fit */
} lmn_order;

/* Where one stream of batches stands (56 bytes, no padding, no pointers). */
typedef struct lmn_data_state {
  lmn_rng rng;      /* draws the positions of LMN_ORDER_RANDOM */
  uint64_t pos;     /* start of the next window of LMN_ORDER_SEQUENTIAL */
  uint64_t batches; /* batches served so far */
  uint32_t split;   /* lmn_split */
  uint32_t order;   /* lmn_order */
} lmn_data_state;

typedef struct lmn_data_opts {
  const char *train_path;   /* required */
  const char *val_path;     /* NULL: validation is the tail val_fraction of the training file */
  double val_fraction;      /* in (0, 1) when val_path is NULL */
  long seq_len;             /* T: every split must hold at least T + 1 tokens */
  const lmn_tokenizer *tok; /* NULL or a LMN_TOK_BYTES tokenizer: raw bytes are kept, one per token */
} lmn_data_opts;

/* The tokens of one split: exactly one of ids and bytes is set. */
typedef struct lmn_data_split {
  const char *path; /* the file they came from */
  const int32_t *ids;
  const uint8_t *bytes;
  size_t n;
} lmn_data_split;

typedef struct lmn_data {
  lmn_data_split split[2]; /* indexed by lmn_split */
  long seq_len;
  void *buf[2];  /* owned token buffers */
  char *path[2]; /* owned copies of the paths */
} lmn_data;

/* Fills opts from a loaded configuration (paths, val_fraction, seq_len) and a tokenizer (may be NULL). */
void lmn_data_opts_from_config(lmn_data_opts *opts, const lmn_train_config *cfg, const lmn_tokenizer *tok);
/* Reads and tokenises the data. Errors name the file: cannot open, empty, a tokenizer failure or an id
 * outside its vocabulary, or too few tokens for seq_len (with the sizes). On failure d holds nothing. */
int lmn_data_open(lmn_data *d, const lmn_data_opts *opts, lmn_err *err);
/* Frees the tokens and zeroes d; safe on a zeroed or already closed loader. */
void lmn_data_close(lmn_data *d);
/* Tokens in a split (0 for an invalid split). */
size_t lmn_data_tokens(const lmn_data *d, lmn_split split);
/* Sequential windows of T+1 tokens (stride T) in a split: how many batch rows one pass over it yields. */
size_t lmn_data_windows(const lmn_data *d, lmn_split split, long T);
/* Starts a stream over split in the given order; seed only matters for LMN_ORDER_RANDOM. */
void lmn_data_state_init(lmn_data_state *st, lmn_split split, lmn_order order, uint64_t seed);
/* Serves the next batch of the stream st: for each row b a window w of T+1 tokens, inputs[b*T + t] = w[t]
 * and targets[b*T + t] = w[t + 1]; advances st. Fails (and leaves st unchanged) when B or T is below 1, the
 * split holds fewer than T+1 tokens, or st is not a valid state (e.g. a corrupt checkpoint). */
int lmn_data_next(const lmn_data *d, lmn_data_state *st, long B, long T, int32_t *inputs, int32_t *targets,
                  lmn_err *err);

#endif
