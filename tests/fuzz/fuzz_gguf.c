/* fuzz_gguf.c: libFuzzer target for the GGUF reader. Each input is parsed from memory and, through a
 * memfd, from a file in the LMN_GGUF_META and LMN_GGUF_MMAP modes (all three must agree on success and on
 * the error message); accepted files then go through every metadata getter, hyper-parameter extraction
 * and the dequantisation of every tensor into a bounded buffer. Built by tests/fuzz/fuzz-formats.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dequant.h"
#include "gguf.h"

#define MAX_VALUES (1 << 16) /* dequantise at most this many values per tensor */

/* Reads every byte of a string from the file, so that ASan sees any out-of-bounds pointer. */
static unsigned touch(lmn_gguf_str s) {
  unsigned sum = 0;
  for (size_t i = 0; i < s.len; i++) sum += (unsigned char)s.s[i];
  return sum;
}

static void exercise_kv(const lmn_gguf *g, const lmn_gguf_kv *kv) {
  lmn_err e;
  int64_t v;
  uint64_t u, n;
  double d;
  int b;
  volatile unsigned sink = 0;
  lmn_gguf_str s;
  lmn_gguf_vtype et;
  if (lmn_gguf_find_kv(g, kv->key) == NULL) abort(); /* every key must be found by name */
  lmn_gguf_get_int(g, kv->key, INT64_MIN, INT64_MAX, &v, &e);
  lmn_gguf_get_uint(g, kv->key, &u, &e);
  lmn_gguf_get_float(g, kv->key, &d, &e);
  lmn_gguf_get_bool(g, kv->key, &b, &e);
  if (lmn_gguf_get_str(g, kv->key, &s, &e) == 0) sink += touch(s);
  if (lmn_gguf_get_arr(g, kv->key, &et, &n, &e) != 0 || n == 0) return (void)sink;
  for (uint64_t i = 0; i<n; i += n> 1 ? n - 1 : 1) { /* first and last element */
    if (lmn_gguf_get_arr_str(g, kv->key, i, &s, &e) == 0) sink += touch(s);
    lmn_gguf_get_arr_int(g, kv->key, i, &v, &e);
    lmn_gguf_get_arr_float(g, kv->key, i, &d, &e);
  }
  if (lmn_gguf_get_arr_str(g, kv->key, n, &s, &e) == 0) abort(); /* out of range must fail */
  (void)sink;
}

static void exercise_tensor(const lmn_gguf *g, const lmn_gguf_tensor *t, float *buf) {
  lmn_err e;
  uint64_t row;
  if (lmn_gguf_find_tensor(g, t->name) != t) abort();
  if (!lmn_ggml_can_dequant(t->type) || lmn_ggml_row_size(t->type, t->ne[0], &row, &e) != 0) return;
  if (t->nelems <= MAX_VALUES && t->ne[2] == 1 && t->ne[3] == 1 &&
      lmn_gguf_load_f32(g, t->name, t->ne[0], t->ne[1], buf, &e) != 0)
    abort(); /* a validated tensor of a supported type must load */
  const uint8_t *data = lmn_gguf_tensor_data(g, t, &e);
  if (!data || t->ne[0] > MAX_VALUES) return;
  int64_t rows = t->nelems / t->ne[0];
  for (int64_t r = 0; r < rows && (r + 1) * t->ne[0] <= MAX_VALUES; r++)
    if (lmn_dequant_row(t->type, data + r * row, buf, t->ne[0], &e) != 0) abort();
}

static void exercise(const lmn_gguf *g) {
  static float buf[MAX_VALUES];
  lmn_err e;
  lmn_hparams hp;
  for (size_t i = 0; i < lmn_gguf_n_kv(g); i++) exercise_kv(g, lmn_gguf_kv_at(g, i));
  for (size_t i = 0; i < lmn_gguf_n_tensors(g); i++) exercise_tensor(g, lmn_gguf_tensor_at(g, i), buf);
  if (lmn_gguf_hparams(g, &hp, &e) == 0 && (hp.dim < 1 || hp.heads < 1 || hp.kv_heads < 1 || hp.vocab < 1))
    abort();
  if (lmn_gguf_data_start(g) % lmn_gguf_alignment(g) != 0) abort();
}

/* The part of a message after "name: ". */
static const char *cause(const char *msg, const char *name) {
  size_t n = strlen(name);
  return strncmp(msg, name, n) == 0 ? msg + n : msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  lmn_err em, ef;
  lmn_gguf *g;
  int rc = lmn_gguf_open_mem(data, size, "fuzz.gguf", &g, &em);
  if (rc == 0) {
    exercise(g);
    lmn_gguf_close(g);
  }
  if (fd < 0) {
    fd = memfd_create("fuzz_gguf", 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (fd < 0 || ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) abort();
  const lmn_gguf_mode modes[2] = {LMN_GGUF_META, LMN_GGUF_MMAP};
  for (int m = 0; m < 2; m++) {
    int rf = lmn_gguf_open(path, modes[m], &g, &ef);
    if (rf != rc || (rc != 0 && strcmp(cause(em.msg, "fuzz.gguf"), cause(ef.msg, path)) != 0)) {
      fprintf(stderr, "mode %d disagrees with memory:\n  mem:  %s\n  file: %s\n", m, rc ? em.msg : "ok",
              rf ? ef.msg : "ok");
      abort();
    }
    if (rf == 0) {
      if (modes[m] == LMN_GGUF_META) exercise(g);
      lmn_gguf_close(g);
    }
  }
  return 0;
}
