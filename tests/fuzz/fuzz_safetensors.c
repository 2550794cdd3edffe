/* fuzz_safetensors.c: libFuzzer target for the safetensors reader. Each input is parsed from memory and,
 * through a memfd, from a file in the LMN_ST_META and LMN_ST_MMAP modes (all must agree on success and on
 * the error message); accepted files then have every tensor loaded as f32 (bounded) and every metadata
 * entry looked up. Built by tests/fuzz/fuzz-formats.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "safetensors.h"

#define MAX_VALUES (1 << 16)

static void exercise(const lmn_st *st) {
  static float buf[MAX_VALUES];
  lmn_err e;
  for (size_t i = 0; i < lmn_st_n_meta(st); i++) {
    const char *k, *v;
    if (lmn_st_meta_at(st, i, &k, &v) != 0 || lmn_st_meta(st, k) != v) abort();
  }
  for (size_t i = 0; i < lmn_st_n_tensors(st); i++) {
    const lmn_st_tensor *t = lmn_st_tensor_at(st, i);
    if (lmn_st_find(st, t->name) != t) abort();
    if (t->dtype != LMN_ST_OTHER && t->nelems <= MAX_VALUES &&
        lmn_st_load_f32(st, t->name, t->n_dims, t->shape, buf, &e) != 0)
      abort(); /* a validated float tensor must load */
  }
}

static const char *cause(const char *msg, const char *name) {
  size_t n = strlen(name);
  return strncmp(msg, name, n) == 0 ? msg + n : msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  lmn_err em, ef;
  lmn_st *st;
  int rc = lmn_st_open_mem(data, size, "fuzz.safetensors", &st, &em);
  if (rc == 0) {
    exercise(st);
    lmn_st_close(st);
  }
  if (fd < 0) {
    fd = memfd_create("fuzz_st", 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (fd < 0 || ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) abort();
  const lmn_st_mode modes[2] = {LMN_ST_META, LMN_ST_MMAP};
  for (int m = 0; m < 2; m++) {
    int rf = lmn_st_open(path, modes[m], &st, &ef);
    if (rf != rc || (rc != 0 && strcmp(cause(em.msg, "fuzz.safetensors"), cause(ef.msg, path)) != 0)) {
      fprintf(stderr, "mode %d disagrees with memory:\n  mem:  %s\n  file: %s\n", m, rc ? em.msg : "ok",
              rf ? ef.msg : "ok");
      abort();
    }
    if (rf == 0) {
      if (modes[m] == LMN_ST_META) exercise(st);
      lmn_st_close(st);
    }
  }
  return 0;
}
