/* fuzz_config.c: libFuzzer target for the YAML training configuration (runtime/config.c). Each input is
 * written to a memfd and loaded through /proc/self/fd/N; an accepted configuration is printed back with
 * lmn_config_print, loaded again, and must give the same values (the round trip config.h promises); every
 * message must name the file. Built and run by tests/fuzz/fuzz-runtime.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

static _Noreturn void die(const char *what, const char *a, const char *b) {
  fprintf(stderr, "fuzz_config: %s\n  %s\n  %s\n", what, a ? a : "", b ? b : "");
  abort();
}

/* A memfd holding data[0..n), reachable as a path (one per slot, reused). */
static const char *as_file(int slot, const void *data, size_t n) {
  static int fd[2] = {-1, -1};
  static char path[2][64];
  if (fd[slot] < 0) {
    fd[slot] = memfd_create(slot ? "fuzz_cfg2" : "fuzz_cfg", 0);
    snprintf(path[slot], sizeof path[slot], "/proc/self/fd/%d", fd[slot]);
  }
  if (fd[slot] < 0 || ftruncate(fd[slot], 0) != 0 || (n && pwrite(fd[slot], data, n, 0) != (ssize_t)n))
    die("memfd", NULL, NULL);
  return path[slot];
}

static int same_str(const char *a, const char *b) {
  return (!a && !b) || (a && b && !strcmp(a, b));
}

static int same(const lmn_train_config *a, const lmn_train_config *b) {
  int ok = same_str(a->data.train, b->data.train) && same_str(a->data.val, b->data.val) &&
           a->data.val_fraction == b->data.val_fraction && a->batch == b->batch && a->seq_len == b->seq_len &&
           a->steps == b->steps && a->n_stages == b->n_stages && a->optimizer.lr == b->optimizer.lr &&
           a->optimizer.betas[0] == b->optimizer.betas[0] && a->optimizer.betas[1] == b->optimizer.betas[1] &&
           a->optimizer.eps == b->optimizer.eps && a->optimizer.weight_decay == b->optimizer.weight_decay &&
           a->schedule.warmup == b->schedule.warmup && a->schedule.decay == b->schedule.decay &&
           a->schedule.min_lr == b->schedule.min_lr && a->grad_clip == b->grad_clip &&
           a->eval.every == b->eval.every && a->eval.batches == b->eval.batches &&
           same_str(a->checkpoint.dir, b->checkpoint.dir) && a->checkpoint.every == b->checkpoint.every &&
           a->checkpoint.keep == b->checkpoint.keep && a->seed == b->seed && a->threads == b->threads &&
           a->log.every == b->log.every && same_str(a->init_from, b->init_from) && a->sample.every == b->sample.every &&
           same_str(a->sample.prompt, b->sample.prompt) && a->sample.tokens == b->sample.tokens &&
           a->sample.temperature == b->sample.temperature && a->sample.top_k == b->sample.top_k &&
           a->sample.top_p == b->sample.top_p;
  for (int i = 0; ok && i < a->n_stages; i++) {
    const lmn_stage *x = &a->stages[i], *y = &b->stages[i];
    ok = x->steps == y->steps && x->train == y->train && x->n_names == y->n_names;
    for (int k = 0; ok && k < x->n_names; k++) ok = !strcmp(x->names[k], y->names[k]);
  }
  return ok;
}

/* The printed form of cfg, loaded again, equals cfg. */
static void round_trip(const lmn_train_config *cfg) {
  char *text = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&text, &n);
  if (!f) die("open_memstream", NULL, NULL);
  lmn_config_print(cfg, f);
  fclose(f);
  lmn_train_config again;
  lmn_err err;
  if (lmn_config_load(as_file(1, text, n), &again, &err) != 0)
    die("the printed configuration does not load", err.msg, text);
  if (!same(cfg, &again)) die("the printed configuration loads to other values", text, NULL);
  lmn_config_free(&again);
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = as_file(0, data, size);
  lmn_train_config cfg;
  lmn_err err = {{0}};
  if (lmn_config_load(path, &cfg, &err) == 0) {
    round_trip(&cfg);
    for (long s = -1; s <= cfg.steps && s < 64; s++) {
      double lr = lmn_lr_at(&cfg, s);
      if (!(lr >= 0.0 && lr <= cfg.optimizer.lr * (1 + 1e-12))) die("lr outside [0, lr]", NULL, NULL);
      if (lmn_config_stage_at(&cfg, s, NULL) >= cfg.n_stages) die("stage out of range", NULL, NULL);
    }
  } else if (strncmp(err.msg, path, strlen(path)) != 0 || strlen(err.msg) >= sizeof err.msg) {
    die("the message does not name the file", err.msg, path);
  }
  lmn_config_free(&cfg);
  return 0;
}
