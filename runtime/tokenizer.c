/* tokenizer.c: the generic calls through the lmn_tokenizer vtable and the raw-byte tokenizer. */
#include "tokenizer.h"

#include <string.h>

/* Every byte value once, so that decode_token can return a pointer to the byte of an id. */
#define LMN_B4(n) (n), (n) + 1, (n) + 2, (n) + 3
#define LMN_B16(n) LMN_B4(n), LMN_B4((n) + 4), LMN_B4((n) + 8), LMN_B4((n) + 12)
#define LMN_B64(n) LMN_B16(n), LMN_B16((n) + 16), LMN_B16((n) + 32), LMN_B16((n) + 48)
static const unsigned char byte_values[256] = {LMN_B64(0), LMN_B64(64), LMN_B64(128), LMN_B64(192)};

static long bytes_encode(const void *self, const char *text, size_t len, int32_t *ids, size_t cap) {
  (void)self;
  if (len > (size_t)(((unsigned long)-1) >> 1)) return -1;
  size_t n = len < cap ? len : cap;
  for (size_t i = 0; i < n; i++) ids[i] = (unsigned char)text[i];
  return (long)len;
}

static const char *bytes_decode_token(const void *self, int32_t id, size_t *len) {
  (void)self;
  if (id < 0 || id > 255) return NULL;
  *len = 1;
  return (const char *)&byte_values[id];
}

static const lmn_tokenizer_ops bytes_ops = {bytes_encode, bytes_decode_token, NULL};

void lmn_tokenizer_init_bytes(lmn_tokenizer *t) {
  t->ops = &bytes_ops;
  t->self = NULL;
  t->kind = LMN_TOK_BYTES;
  t->vocab_size = 256;
  t->bos = -1;
  t->eos = -1;
}

long lmn_tokenizer_encode(const lmn_tokenizer *t, const char *text, size_t len, int32_t *ids, size_t cap) {
  if (!t || !t->ops || (!text && len) || (!ids && cap)) return -1;
  return t->ops->encode(t->self, text, len, ids, cap);
}

const char *lmn_tokenizer_decode_token(const lmn_tokenizer *t, int32_t id, size_t *len) {
  size_t dummy;
  if (!t || !t->ops || id < 0 || id >= t->vocab_size) return NULL;
  return t->ops->decode_token(t->self, id, len ? len : &dummy);
}

long lmn_tokenizer_decode(const lmn_tokenizer *t, const int32_t *ids, size_t n, char *out, size_t cap) {
  size_t total = 0, room = cap ? cap - 1 : 0; /* room for bytes, keeping one for the NUL */
  for (size_t i = 0; i < n; i++) {
    size_t len = 0;
    const char *b = lmn_tokenizer_decode_token(t, ids[i], &len);
    if (!b) return -1;
    if (total < room) memcpy(out + total, b, len < room - total ? len : room - total);
    total += len;
  }
  if (cap) out[total < room ? total : room] = '\0';
  return (long)total;
}

void lmn_tokenizer_free(lmn_tokenizer *t) {
  if (!t) return;
  if (t->ops && t->ops->destroy && t->self) t->ops->destroy(t->self);
  memset(t, 0, sizeof *t);
}
