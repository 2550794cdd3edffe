/* tokenizer.h: the tokenizer interface of liblmn (a small vtable) and its raw-byte implementation.
 * A tokenizer turns text into int32 ids and each id back into bytes. The byte tokenizer here has vocabulary
 * 256 with id = byte value and no BOS/EOS; the byte-level BPE read from a GGUF file implements the same
 * vtable. The data loader and the generated code see only lmn_tokenizer. */
#ifndef LMN_TOKENIZER_H
#define LMN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef enum lmn_tok_kind { LMN_TOK_BYTES = 0, LMN_TOK_BPE, LMN_TOK_OTHER } lmn_tok_kind;

typedef struct lmn_tokenizer_ops {
  /* Encodes text[0..len) (any bytes, NUL included), writing at most cap ids; returns how many ids the whole
   * text needs (more than cap means the output was cut: call again with that capacity), or -1 on failure. */
  long (*encode)(const void *self, const char *text, size_t len, int32_t *ids, size_t cap);
  /* The bytes of one token (not NUL-terminated; *len receives their count), or NULL for an id outside the
   * vocabulary. The bytes belong to the tokenizer and live as long as it. */
  const char *(*decode_token)(const void *self, int32_t id, size_t *len);
  /* Frees self; NULL when there is nothing to free. */
  void (*destroy)(void *self);
} lmn_tokenizer_ops;

typedef struct lmn_tokenizer {
  const lmn_tokenizer_ops *ops;
  void *self;         /* the implementation's state, passed to every op */
  lmn_tok_kind kind;  /* LMN_TOK_BYTES lets the data loader keep raw bytes instead of int32 ids */
  int32_t vocab_size; /* ids are in [0, vocab_size) */
  int32_t bos;        /* beginning-of-sequence id, or -1 */
  int32_t eos;        /* end-of-sequence id, or -1 */
} lmn_tokenizer;

/* Makes t the raw-byte tokenizer (vocabulary 256, id = byte value, no BOS/EOS); allocates nothing. */
void lmn_tokenizer_init_bytes(lmn_tokenizer *t);
/* Calls the implementation's encode (see lmn_tokenizer_ops). */
long lmn_tokenizer_encode(const lmn_tokenizer *t, const char *text, size_t len, int32_t *ids, size_t cap);
/* The bytes of token id, or NULL when id is outside the vocabulary. */
const char *lmn_tokenizer_decode_token(const lmn_tokenizer *t, int32_t id, size_t *len);
/* Decodes ids[0..n) into out: at most cap-1 bytes and a terminating NUL (nothing when cap is 0); returns
 * the number of bytes the whole text needs (without the NUL), or -1 when an id is outside the vocabulary. */
long lmn_tokenizer_decode(const lmn_tokenizer *t, const int32_t *ids, size_t n, char *out, size_t cap);
/* Releases the implementation and zeroes t; safe on a zeroed or already freed tokenizer. */
void lmn_tokenizer_free(lmn_tokenizer *t);

#endif
