/* fuzz_tokens.c: libFuzzer target for tokenising a corpus in chunks (runtime/data.c with the BPE tokenizer
 * of runtime/tokenizer_bpe.c and the real SmolLM2 vocabulary): the text (the input less its first byte) is
 * tokenised whole and in chunks of 1 + first byte bytes, cut where data.c cuts, with and without the token
 * cache file; the ids must be the same, or both must fail with the same message. Needs
 * models/SmolLM2-135M-Instruct.Q4_1.gguf (`make models`). Built and run by tests/fuzz/fuzz-runtime.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "data.h"
#include "tokenizer_bpe.h"

#define MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"

static lmn_tokenizer tok; /* the fixture, loaded once */

static _Noreturn void die(const char *what, const char *a, const char *b) {
  fprintf(stderr, "fuzz_tokens: %s\n  %s\n  %s\n", what, a ? a : "", b ? b : "");
  abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  lmn_err err;
  if (lmn_tokenizer_load_gguf(&tok, MODEL, &err) != 0) die("cannot load the vocabulary", err.msg, NULL);
  return 0;
}

static const char *as_file(const void *data, size_t n) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("fuzz_tokens", 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (fd < 0 || ftruncate(fd, 0) != 0 || (n && pwrite(fd, data, n, 0) != (ssize_t)n))
    die("memfd", NULL, NULL);
  return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const char *path = as_file(data + 1, size - 1);
  lmn_data_opts o = {.train_path = path, .val_fraction = 0.5, .seq_len = 1, .tok = &tok};
  lmn_data whole, cut;
  lmn_err ew = {{0}}, ec = {{0}};
  int rw = lmn_data_open(&whole, &o, &ew);
  for (size_t memory = 0; memory <= 8; memory += 8) {
    int rc = lmn_data_open_tuned(&cut, &o, 0, 1 + (size_t)data[0], memory, &ec);
    if (rc != rw || (rc && strcmp(ew.msg, ec.msg) != 0))
      die("whole and chunked disagree", rw ? ew.msg : "ok", rc ? ec.msg : "ok");
    if (rc) continue;
    size_t n = lmn_data_tokens(&whole, LMN_SPLIT_TRAIN);
    if (lmn_data_tokens(&cut, LMN_SPLIT_TRAIN) != n ||
        memcmp(whole.split[0].ids, cut.split[0].ids, n * sizeof(int32_t)) != 0)
      die("whole and chunked give different ids", NULL, NULL);
    lmn_data_close(&cut);
  }
  if (rw == 0) lmn_data_close(&whole);
  return 0;
}
