/* fuzz_tokenizer.c: libFuzzer target for the byte-level BPE tokenizer (runtime/tokenizer_bpe.c) with the
 * real SmolLM2 vocabulary. The first input byte picks the pre-tokenizer (smollm, or the same vocabulary
 * with tokenizer.ggml.pre set to gpt-2, qwen2 or llama-bpe, written to temporary files at start-up); the
 * rest is encoded with room for every id and with too little room, every id must be in the vocabulary,
 * decoding must give the input back less the bytes no token holds, and, when none was dropped, encoding
 * the decoded text must give the same ids. Any difference aborts. Built and run by
 * tests/fuzz/fuzz-tokenizer.sh (needs models/SmolLM2-135M-Instruct.Q4_1.gguf: `make models`). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "tokenizer.h"
#include "tokenizer_bpe.h"

#define MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"

static const char *const pres[4] = {"smollm", "gpt-2", "qwen2", "llama-bpe"};
static lmn_tokenizer toks[4]; /* the fuzzer's fixture, set up once */

static _Noreturn void die(const char *what, const char *msg) {
  fprintf(stderr, "fuzz_tokenizer: %s: %s\n", what, msg);
  abort();
}

/* Writes the tokenizer keys of MODEL with another pre to path. */
static void write_variant(const lmn_gguf *g, const char *path, const char *pre) {
  lmn_err e;
  uint64_t nt = 0, nm = 0;
  if (lmn_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &nt, &e) ||
      lmn_gguf_get_arr(g, "tokenizer.ggml.merges", NULL, &nm, &e))
    die(MODEL, e.msg);
  char **tok = calloc(nt, sizeof *tok), **mer = calloc(nm, sizeof *mer);
  int32_t *types = calloc(nt, sizeof *types);
  for (uint64_t i = 0; i < nt; i++) {
    lmn_gguf_str s;
    int64_t v = 1;
    lmn_gguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &s, &e);
    tok[i] = strndup(s.s, s.len);
    lmn_gguf_get_arr_int(g, "tokenizer.ggml.token_type", i, &v, &e);
    types[i] = (int32_t)v;
  }
  for (uint64_t i = 0; i < nm; i++) {
    lmn_gguf_str s;
    lmn_gguf_get_arr_str(g, "tokenizer.ggml.merges", i, &s, &e);
    mer[i] = strndup(s.s, s.len);
  }
  lmn_gguf_writer *w;
  int rc = lmn_gguf_writer_new(&w, &e);
  rc |= lmn_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", &e);
  rc |= lmn_gguf_writer_add_str(w, "tokenizer.ggml.pre", pre, &e);
  rc |= lmn_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, nt, &e);
  rc |= lmn_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", LMN_GGUF_INT32, types, nt, &e);
  rc |= lmn_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", (const char *const *)mer, nm, &e);
  rc |= lmn_gguf_writer_write(w, path, &e);
  lmn_gguf_writer_free(w);
  for (uint64_t i = 0; i < nt; i++) free(tok[i]);
  for (uint64_t i = 0; i < nm; i++) free(mer[i]);
  free(tok);
  free(mer);
  free(types);
  if (rc) die(path, e.msg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  lmn_err e;
  lmn_gguf *g;
  if (lmn_gguf_open(MODEL, LMN_GGUF_META, &g, &e) != 0) die(MODEL, e.msg);
  if (lmn_tokenizer_from_gguf(&toks[0], g, &e) != 0) die(MODEL, e.msg);
  for (int i = 1; i < 4; i++) {
    char path[] = "/tmp/lmn_fuzz_tok_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) die("mkstemp", "failed");
    close(fd);
    write_variant(g, path, pres[i]);
    if (lmn_tokenizer_load_gguf(&toks[i], path, &e) != 0) die(path, e.msg);
    unlink(path);
  }
  lmn_gguf_close(g);
  return 0;
}

static void check(const lmn_tokenizer *t, const char *s, size_t n) {
  lmn_bpe_info info;
  lmn_tokenizer_bpe_info(t, &info);
  long count = lmn_tokenizer_encode(t, s, n, NULL, 0);
  if (count < 0 || (size_t)count > n) die("encode", "bad count");
  int32_t *ids = malloc(((size_t)count + 1) * sizeof *ids),
          *few = malloc(((size_t)count / 2 + 1) * sizeof *few);
  if (lmn_tokenizer_encode(t, s, n, ids, (size_t)count) != count) die("encode", "count changed");
  if (lmn_tokenizer_encode(t, s, n, few, (size_t)count / 2) != count) die("encode", "count changed (short)");
  if (memcmp(few, ids, (size_t)count / 2 * sizeof *ids) != 0) die("encode", "short output differs");
  for (long i = 0; i < count; i++)
    if (ids[i] < 0 || ids[i] >= t->vocab_size) die("encode", "id outside the vocabulary");
  char *want = malloc(n + 1), *out = malloc(n + 1);
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (!info.byte_missing[(unsigned char)s[i]]) want[m++] = s[i];
  if (lmn_tokenizer_decode(t, ids, (size_t)count, out, n + 1) != (long)m || memcmp(out, want, m) != 0)
    die("round trip", "decode(encode(s)) != s");
  if (m == n) {
    int32_t *again = malloc(((size_t)count + 1) * sizeof *again);
    if (lmn_tokenizer_encode(t, out, m, again, (size_t)count) != count ||
        memcmp(again, ids, (size_t)count * sizeof *ids) != 0)
      die("round trip", "encode(decode(ids)) != ids");
    free(again);
  }
  free(ids);
  free(few);
  free(want);
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  check(&toks[data[0] & 3], (const char *)data + 1, size - 1);
  return 0;
}
