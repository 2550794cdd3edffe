/* fuzz_tokjson.c: libFuzzer target for the Hugging Face tokenizer.json reader (runtime/tokenizer_hf.c and
 * the lmn_json tree it reads). Each input is parsed as a tokenizer.json; a refused one must say why,
 * naming the document; an accepted one encodes a few texts (every id inside its vocabulary, as many ids
 * with too little room) and decodes every token. Built and run by tests/fuzz/fuzz-formats.sh (target
 * tokjson), seeded with the tokenizer.json files of tests/bad/files/ and tests/fixtures/hf/tokenizer/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "tokenizer_bpe.h"

static void exercise(const lmn_tokenizer *t) {
  static const char *const texts[] = {"the cat sat on the mat", "ab ab<s> a\n\n  x", "\xff\xfe 123 \xc3\xa9"};
  int32_t ids[256];
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    size_t len = strlen(texts[i]);
    long n = lmn_tokenizer_encode(t, texts[i], len, ids, 256);
    if (n < 0 || n > 256) abort();
    for (long k = 0; k < n; k++)
      if (ids[k] < 0 || ids[k] >= t->vocab_size) abort();
    if (n > 1 && lmn_tokenizer_encode(t, texts[i], len, ids, 1) != n) abort();
  }
  for (int32_t id = 0; id < t->vocab_size && id < 4096; id++) {
    size_t len = 0;
    if (!lmn_tokenizer_decode_token(t, id, &len)) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lmn_tokenizer t;
  lmn_err e;
  if (lmn_tokenizer_parse_hf(&t, (const char *)data, size, "fuzz.json", &e) != 0) {
    if (strncmp(e.msg, "fuzz.json: ", 11) != 0 || t.self) abort();
    return 0;
  }
  exercise(&t);
  lmn_tokenizer_free(&t);
  return 0;
}
