/* fuzz_checkpoint.c: libFuzzer target for reading checkpoints (runtime/checkpoint.c over the safetensors
 * reader) into a small hand-written network: a trainable matrix "w" [4, 4] with its AdamW moments and a
 * from-scratch vector "b" [4]. Each input, written to a memfd, is verified (lmn_checkpoint_verify) and
 * loaded (lmn_checkpoint_load_state); the two must agree, a failed load must leave the network as it was,
 * and a loaded one holds only finite values and a run state that can run (no all-zero generator). With
 * LMN_FUZZ_WRITE_SEED=FILE set, the target instead writes a valid checkpoint of that network to FILE and
 * exits (how tests/fuzz/corpus/checkpoint/ was made). Built and run by tests/fuzz/fuzz-runtime.sh. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "checkpoint.h"
#include "net.h"

static size_t arena_floats(int B, int T, int nt) {
  (void)nt;
  return (size_t)B * (size_t)T;
}
static size_t cache_floats(int ctx, int nt) {
  (void)nt;
  return (size_t)ctx;
}

static const lmn_param_info params[] = {
    {"w", 0, 4, 4, 1, 0, "e0", LMN_INIT_NORMAL, 0, -1, -1, NULL, 0},
    {"b", 16, 4, 0, 0, -1, "m", LMN_INIT_NORMAL, 0, -1, -1, NULL, 0},
};
static const lmn_net_desc desc = {.name = "ck",
                                  .source = "fuzz",
                                  .hash = 0x77,
                                  .vocab = 4,
                                  .ctx = 8,
                                  .n_params = 2,
                                  .params = params,
                                  .n_floats = 20,
                                  .n_train = 16,
                                  .n_train_decay = 16,
                                  .arena_floats = arena_floats,
                                  .cache_floats = cache_floats};

static _Noreturn void die(const char *what, const char *msg) {
  fprintf(stderr, "fuzz_checkpoint: %s: %s\n", what, msg ? msg : "");
  abort();
}

static lmn_net *new_net(void) {
  lmn_net *net = NULL;
  lmn_err err;
  if (lmn_net_create(&net, &desc, 1, 4, 1, 9, &err) != 0) die("lmn_net_create", err.msg);
  return net;
}

static void write_seed(const char *path) {
  lmn_net *net = new_net();
  lmn_err err;
  lmn_ckpt_state st = {.step = 3, .has_run = 1, .batch = 1, .seq_len = 4, .seed = 9};
  lmn_data_state_init(&st.data, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, 9);
  st.data.batches = 3;
  lmn_rng_seed(&st.rng, 5);
  snprintf(st.config, sizeof st.config, "train.yaml");
  if (lmn_net_enable_training(net, &err) || lmn_checkpoint_save(net, path, &st, &err)) die(path, err.msg);
  lmn_net_destroy(net);
  exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  const char *seed = getenv("LMN_FUZZ_WRITE_SEED");
  if (seed) write_seed(seed);
  return 0;
}

static const char *as_file(const void *data, size_t n) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("fuzz_ckpt", 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (fd < 0 || ftruncate(fd, 0) != 0 || (n && pwrite(fd, data, n, 0) != (ssize_t)n)) die("memfd", NULL);
  return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = as_file(data, size);
  lmn_net *net = new_net();
  float before[20];
  memcpy(before, net->params, sizeof before);
  lmn_ckpt_state sv, sl;
  lmn_err ev = {{0}}, el = {{0}};
  int rv = lmn_checkpoint_verify(&desc, path, &sv, &ev), rl = lmn_checkpoint_load_state(net, path, &sl, &el);
  if (rv != rl || (rv && strcmp(ev.msg, el.msg) != 0)) die("verify and load disagree", rv ? ev.msg : el.msg);
  if (rl != 0 && (memcmp(before, net->params, sizeof before) != 0 || net->m || net->v))
    die("a failed load changed the network", el.msg);
  if (rl == 0) {
    for (int i = 0; i < 20; i++)
      if (!isfinite(net->params[i]) || (i < 16 && (!isfinite(net->m[i]) || !isfinite(net->v[i]))))
        die("a loaded value is not finite", NULL);
    if (sl.has_run &&
        (!lmn_rng_valid(&sl.rng) || (sl.data.order == LMN_ORDER_RANDOM && !lmn_rng_valid(&sl.data.rng))))
      die("a loaded run state has an all-zero generator", NULL);
  }
  lmn_net_destroy(net);
  return 0;
}
