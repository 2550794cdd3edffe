/* fuzz_data.c: libFuzzer target for the data readers (runtime/data.c): next-token corpora and labelled
 * LABEL<TAB>TEXT files, raw bytes. The first input byte picks the kind (bit 0: labelled, with 2 + bits 1-2
 * classes), the sequence length (bits 3-5: 1..8) and whether validation is the tail fraction or the same
 * file; the rest is the file, written to a memfd and read through /proc/self/fd/N. An accepted file serves
 * batches from both splits in both orders: every token a byte, every label in [0, classes), the stream state
 * advanced. Built and run by tests/fuzz/fuzz-runtime.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "data.h"

static _Noreturn void die(const char *what, const char *msg) {
  fprintf(stderr, "fuzz_data: %s: %s\n", what, msg ? msg : "");
  abort();
}

static const char *as_file(const void *data, size_t n) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("fuzz_data", 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (fd < 0 || ftruncate(fd, 0) != 0 || (n && pwrite(fd, data, n, 0) != (ssize_t)n)) die("memfd", NULL);
  return path;
}

/* A few batches of each split and order, checked. */
static void serve(const lmn_data *d, long T) {
  enum { B = 3 };
  int32_t x[B * 8], y[B * 8];
  lmn_err err;
  for (int split = 0; split < 2; split++)
    for (int order = 0; order < 2; order++) {
      lmn_data_state st;
      lmn_data_state_init(&st, (lmn_split)split, (lmn_order)order, 7);
      for (int i = 0; i < 5; i++) {
        if (lmn_data_next(d, &st, B, T, x, y, &err) != 0) die("a batch of an accepted file", err.msg);
        for (long k = 0; k < B * T; k++)
          if (x[k] < 0 || x[k] > 255) die("a token that is not a byte", NULL);
        for (long k = 0; k < (d->classes ? B : B * T); k++)
          if (y[k] < 0 || y[k] > (d->classes ? d->classes - 1 : 255)) die("a target out of range", NULL);
        if (st.batches != (uint64_t)i + 1) die("the stream did not advance", NULL);
      }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned mode = data[0];
  int classes = mode & 1 ? 2 + (int)((mode >> 1) & 3) : 0;
  long T = 1 + (long)((mode >> 3) & 7);
  const char *path = as_file(data + 1, size - 1);
  lmn_data_opts o = {
      .train_path = path, .val_path = mode & 64 ? path : NULL, .val_fraction = 0.25, .seq_len = T};
  lmn_data d;
  lmn_err err = {{0}};
  if (lmn_data_open_classes(&d, &o, classes, &err) == 0) {
    serve(&d, T);
    lmn_data_close(&d);
  } else if (strstr(err.msg, path) != err.msg && strncmp(err.msg, "data:", 5) != 0) {
    die("the message names neither the file nor the data", err.msg);
  }
  return 0;
}
