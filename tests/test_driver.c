/* test_driver.c: the generic executable of a compiled network (driver.c, train.c, checkpoint.c,
 * generate.c), driven through a hand-written network that fills lmn_net_desc the way lmnc's output does: a
 * byte bigram model (one trainable [256, 256] table, one frozen from-scratch bias, one frozen "model file"
 * tensor that checkpoints leave out). Tests: training lowers the loss and rotates checkpoints; checkpoint
 * round trip with metadata; hash, shape, missing and foreign tensor errors that change nothing; resumed
 * runs repeat an uninterrupted run bit for bit (across a stage change); a NaN loss stops without writing a
 * checkpoint; generation is deterministic for a seed and stops at the context; config errors keep their
 * file:line:col; the command line's exit codes. A second hand-written network, a bag-of-bytes classifier,
 * trains on the labelled fixture tests/fixtures/classify/toy.tsv: the loss falls, the accuracy rises far
 * above chance, resuming repeats an uninterrupted run bit for bit, and `eval` / `generate` behave. */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bgemm.h"
#include "driver.h"
#include "harness.h"
#include "kernels.h"
#include "safetensors.h"

/* ---- the bigram network -------------------------------------------------------------------------- */

#define V 256
enum { P_TABLE = 0, P_BIAS = 1, P_MODEL = 2 };

static const lmn_param_info bigram_params[] = {
    {"table.weight", 0, V, V, 1, 0, "table", LMN_INIT_NORMAL, 0, -1, -1, NULL, 0},
    {"bias", V *V, V, 0, 0, -1, "bias", LMN_INIT_NORMAL, 0, -1, -1, NULL, 0},
    {"model.scale", V *V + V, 4, 0, 0, -1, "model", LMN_INIT_ONE, 1, -1, -1, NULL, 0},
};

static size_t bigram_arena(int B, int T, int n_threads) {
  (void)n_threads;
  return (size_t)B * (size_t)T * V;
}

static size_t bigram_cache(int ctx, int n_threads) {
  (void)ctx, (void)n_threads;
  return 1;
}

/* logits[n] = table[tokens[n]] + bias */
static void bigram_logits(const lmn_net *net, const int32_t *tokens, int N, float *logits) {
  const float *w = lmn_w(net, P_TABLE), *b = lmn_w(net, P_BIAS);
  for (int n = 0; n < N; n++) {
    int t = tokens[n] >= 0 && tokens[n] < V ? tokens[n] : 0;
    for (int v = 0; v < V; v++) logits[(size_t)n * V + v] = w[(size_t)t * V + v] + b[v];
  }
}

static float bigram_forward(lmn_net *net, const int32_t *tokens, const int32_t *targets, int B, int T,
                            int train) {
  int N = B * T;
  bigram_logits(net, tokens, N, net->arena);
  if (train) return lmn_xent_forward_backward(net->arena, targets, N, V, 0.0f, 1.0f, NULL, NULL, net->pool);
  return lmn_xent_forward(net->arena, targets, N, V, 0.0f, NULL, NULL, net->pool);
}

static void bigram_backward(lmn_net *net, const int32_t *tokens, int B, int T) {
  float *g = lmn_g(net, P_TABLE);
  if (g) lmn_embed_backward(g, NULL, net->arena, tokens, B, T, V, V, 0);
}

static void bigram_decode(lmn_net *net, const int32_t *tokens, int T, int pos0, float *logits) {
  (void)pos0;
  bigram_logits(net, tokens + T - 1, 1, logits);
}

/* A bigram whose loss turns NaN at its 10th optimizer step. */
static float nan_forward(lmn_net *net, const int32_t *tokens, const int32_t *targets, int B, int T,
                         int train) {
  float loss = bigram_forward(net, tokens, targets, B, T, train);
  return train && net->step >= 9 ? NAN : loss;
}

static const lmn_net_desc bigram_desc = {
    .name = "bigram",
    .source = "bigram.lmn",
    .hash = 0x0123456789abcdefULL,
    .aggregate_mean = 1,
    .vocab = V,
    .classes = 0,
    .ctx = 1024,
    .n_params = 3,
    .params = bigram_params,
    .n_floats = V * V + V + 4,
    .n_train = V * V,
    .n_train_decay = V * V,
    .flops_bt = 6.0 * V,
    .fwd_bt = 2.0 * V,
    .arena_floats = bigram_arena,
    .cache_floats = bigram_cache,
    .forward = bigram_forward,
    .backward = bigram_backward,
    .decode = bigram_decode,
};

/* ---- a bag-of-bytes classifier ------------------------------------------------------------------- */

/* Class logits [B, C] = bias + the sum over the row's T tokens of embed[token]: what a classification head
 * reads at position T-1 of a causal network that sums its inputs. Left padding (byte 0) adds a constant.
 * Zero-initialised: training starts from the uniform distribution (loss log 4). */
#define C 4
enum { P_EMBED = 0, P_HEAD = 1 };

static const lmn_param_info bag_params[] = {
    {"embed.weight", 0, V, C, 1, 0, "embed", LMN_INIT_ZERO, 0, -1, -1, NULL, 0},
    {"head.bias", V *C, C, 0, 1, -1, "head", LMN_INIT_ZERO, 0, -1, -1, NULL, 0},
};

static size_t bag_arena(int B, int T, int n_threads) {
  (void)T, (void)n_threads;
  return (size_t)B * C;
}

static float bag_forward(lmn_net *net, const int32_t *tokens, const int32_t *labels, int B, int T,
                         int train) {
  const float *e = lmn_w(net, P_EMBED), *bias = lmn_w(net, P_HEAD);
  float *logits = net->arena;
  for (int b = 0; b < B; b++)
    for (int c = 0; c < C; c++) {
      float z = bias[c];
      for (int t = 0; t < T; t++) z += e[(size_t)(tokens[b * T + t] & 255) * C + c];
      logits[b * C + c] = z;
    }
  if (train) return lmn_xent_forward_backward(logits, labels, B, C, 0.0f, 1.0f, NULL, NULL, net->pool);
  return lmn_xent_forward(logits, labels, B, C, 0.0f, NULL, NULL, net->pool);
}

static void bag_backward(lmn_net *net, const int32_t *tokens, int B, int T) {
  float *ge = lmn_g(net, P_EMBED), *gb = lmn_g(net, P_HEAD);
  const float *dlogits = net->arena;
  for (int b = 0; b < B; b++)
    for (int c = 0; c < C; c++) {
      if (gb) gb[c] += dlogits[b * C + c];
      for (int t = 0; ge && t < T; t++) ge[(size_t)(tokens[b * T + t] & 255) * C + c] += dlogits[b * C + c];
    }
}

static float *bag_output(lmn_net *net, int B, int T) {
  (void)B, (void)T;
  return net->arena;
}

static const lmn_net_desc bag_desc = {
    .name = "bag",
    .source = "bag.lmn",
    .hash = 0x0badc0ffee0ddf00ULL,
    .aggregate_mean = 1,
    .vocab = V,
    .classes = C,
    .ctx = 256,
    .n_params = 2,
    .params = bag_params,
    .n_floats = V * C + C,
    .n_train = V * C + C,
    .n_train_decay = V * C,
    .flops_bt = 6.0 * C,
    .fwd_bt = 2.0 * C,
    .arena_floats = bag_arena,
    .cache_floats = bigram_cache,
    .forward = bag_forward,
    .backward = bag_backward,
    .output = bag_output,
};

/* ---- scratch directories and files --------------------------------------------------------------- */

typedef struct tmp {
  char dir[64];
  char cfg[128];  /* dir/train.yaml */
  char ckpt[128]; /* dir/ck */
} tmp;

static void tmp_make(tmp *t) {
  snprintf(t->dir, sizeof t->dir, "/tmp/lmn_driver_XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(t->dir));
  snprintf(t->cfg, sizeof t->cfg, "%s/train.yaml", t->dir);
  snprintf(t->ckpt, sizeof t->ckpt, "%s/ck", t->dir);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static void tmp_remove(tmp *t) {
  nftw(t->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
}

/* data.txt: the alphabet over and over (a bigram model learns it exactly). */
static void write_alphabet(const tmp *t) {
  char path[160];
  snprintf(path, sizeof path, "%s/data.txt", t->dir);
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  for (int i = 0; i < 200; i++) fputs("abcdefghijklmnopqrstuvwxyz", f);
  fclose(f);
}

/* train.yaml with the given steps/stages block and checkpoint settings. */
static void write_config(const tmp *t, const char *steps_block, long ckpt_every, long keep, long eval_every) {
  char yaml[2048];
  snprintf(yaml, sizeof yaml,
           "data:\n  train: data.txt\nbatch: 4\nseq_len: 32\n%s"
           "optimizer:\n  lr: 0.2\nschedule:\n  warmup: 3\n  decay: cosine\n  min_lr: 0.02\n"
           "eval:\n  every: %ld\n  batches: 2\ncheckpoint:\n  dir: ck\n  every: %ld\n  keep: %ld\n"
           "seed: 7\nthreads: 2\nlog:\n  every: 1000\n",
           steps_block, eval_every, ckpt_every, keep);
  write_file(t->cfg, yaml);
}

static int file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static void ckpt_file(const tmp *t, long step, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/step-%06ld.safetensors", t->ckpt, step);
}

/* ---- recording hooks ----------------------------------------------------------------------------- */

typedef struct record {
  float loss[64];
  double val[64];
  long val_step[64];
  long first, last; /* steps seen */
  int n_val;
} record;

static void rec_step(void *ctx, long step, float loss, double lr, double norm) {
  (void)lr, (void)norm;
  record *r = ctx;
  if (!r->first) r->first = step;
  r->last = step;
  if (step >= 1 && step <= 64) r->loss[step - 1] = loss;
}

static void rec_eval(void *ctx, long step, double val) {
  record *r = ctx;
  if (r->n_val < 64) r->val_step[r->n_val] = step, r->val[r->n_val++] = val;
}

static int train(const lmn_net_desc *d, const tmp *t, int resume, long stop_at, record *r, lmn_err *err) {
  lmn_train_opts o = {.config = t->cfg,
                      .resume = resume,
                      .stop_at = stop_at,
                      .log = NULL,
                      .hooks = {.ctx = r, .on_step = rec_step, .on_eval = rec_eval}};
  return lmn_train(d, &o, err);
}

static lmn_net *new_net(const lmn_net_desc *d, uint64_t seed) {
  lmn_net *net = NULL;
  lmn_err err;
  CU_ASSERT_EQUAL(lmn_net_create(&net, d, 2, 8, 1, seed, &err), 0);
  return net;
}

/* ---- tests --------------------------------------------------------------------------------------- */

static void test_hex(void) {
  uint8_t in[5] = {0x00, 0x7f, 0x80, 0xab, 0xff}, out[5];
  char hex[11];
  lmn_hex_encode(in, 5, hex);
  CU_ASSERT_STRING_EQUAL(hex, "007f80abff");
  CU_ASSERT_EQUAL(lmn_hex_decode("007F80ABff", out, 5), 0);
  CU_ASSERT_EQUAL(memcmp(in, out, 5), 0);
  CU_ASSERT_EQUAL(lmn_hex_decode("007f80abf", out, 5), -1);
  CU_ASSERT_EQUAL(lmn_hex_decode("007f80abfg", out, 5), -1);
  CU_ASSERT_EQUAL(lmn_hex_decode(NULL, out, 5), -1);
}

/* train.yaml of accumulate_yaml: batch B with `accumulate: N`. */
static void write_accumulate_config(const tmp *t, int B, int N) {
  char yaml[1024];
  snprintf(
      yaml, sizeof yaml,
      "data:\n  train: data.txt\nbatch: %d\naccumulate: %d\nseq_len: 32\nsteps: 6\noptimizer:\n  lr: 0.2\n"
      "eval:\n  every: 1000\n  batches: 2\ncheckpoint:\n  dir: ck\n  every: 3\n  keep: 5\nseed: 7\n"
      "threads: 2\nlog:\n  every: 1000\n",
      B, N);
  write_file(t->cfg, yaml);
}

/* `accumulate`: batch 2 x 2 micro-batches trains as batch 4 does (the same rows, losses within f32
 * summation tolerance), and a run stopped at a step boundary resumes bit for bit. */
static void test_train_accumulate(void) {
  tmp t;
  tmp_make(&t);
  write_alphabet(&t);
  record whole = {0}, micro = {0}, part = {0};
  lmn_err err = {{0}};
  write_accumulate_config(&t, 4, 1);
  CU_ASSERT_EQUAL_FATAL(train(&bigram_desc, &t, 0, 0, &whole, &err), 0);
  tmp_remove(&t);
  tmp_make(&t);
  write_alphabet(&t);
  write_accumulate_config(&t, 2, 2);
  CU_ASSERT_EQUAL_FATAL(train(&bigram_desc, &t, 0, 0, &micro, &err), 0);
  double worst = 0;
  for (int s = 0; s < 6; s++) worst = fmax(worst, fabs((double)whole.loss[s] - micro.loss[s]));
  printf("\n  batch 4 vs 2 x 2 micro-batches: 6 steps, max |loss diff| %.2e (first %.4f, last %.4f)\n  ",
         worst, whole.loss[0], whole.loss[5]);
  CU_ASSERT(worst <= 1e-5 * fmax(1.0, whole.loss[0]));
  CU_ASSERT(whole.loss[5] < whole.loss[0]);
  /* stop at step 3 (a checkpoint), resume: the same losses */
  tmp_remove(&t);
  tmp_make(&t);
  write_alphabet(&t);
  write_accumulate_config(&t, 2, 2);
  CU_ASSERT_EQUAL_FATAL(train(&bigram_desc, &t, 0, 3, &part, &err), 0);
  CU_ASSERT_EQUAL(part.last, 3);
  record rest = {0};
  int rc = train(&bigram_desc, &t, 1, 0, &rest, &err);
  if (rc) fprintf(stderr, "\n  %s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(rest.first, 4);
  for (int s = 3; s < 6; s++) CU_ASSERT_EQUAL(rest.loss[s], micro.loss[s]);
  tmp_remove(&t);
}

/* `precision: bf16`: the run sets it and restores f32 afterwards, the checkpoint records it, and resuming in
 * the other precision is refused (it changes the computation) unless --force. */
static void write_precision_config(const tmp *t, const char *precision) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "data:\n  train: data.txt\nbatch: 2\nseq_len: 32\nsteps: 6\nprecision: %s\noptimizer:\n  lr: 0.2\n"
           "eval:\n  every: 1000\n  batches: 2\ncheckpoint:\n  dir: ck\n  every: 3\n  keep: 5\nseed: 7\n"
           "threads: 2\nlog:\n  every: 1000\n",
           precision);
  write_file(t->cfg, yaml);
}

static void test_train_precision(void) {
  tmp t;
  tmp_make(&t);
  write_alphabet(&t);
  record part = {0}, rest = {0};
  lmn_err err = {{0}};
  write_precision_config(&t, "bf16");
  CU_ASSERT_EQUAL_FATAL(train(&bigram_desc, &t, 0, 3, &part, &err), 0);
  CU_ASSERT_EQUAL(lmn_gemm_precision(), LMN_PREC_F32);
  char *text = NULL;
  char ck[600];
  snprintf(ck, sizeof ck, "%s/ck/step-000003.safetensors", t.dir);
  CU_ASSERT_EQUAL(lmn_checkpoint_config_text(ck, &text, &err), 0);
  CU_ASSERT(text && strstr(text, "\nprecision: bf16\n"));
  free(text);
  write_precision_config(&t, "f32");
  CU_ASSERT_NOT_EQUAL(train(&bigram_desc, &t, 1, 0, &rest, &err), 0);
  CU_ASSERT(strstr(err.msg, "--force") != NULL);
  write_precision_config(&t, "bf16");
  CU_ASSERT_EQUAL(train(&bigram_desc, &t, 1, 0, &rest, &err), 0);
  CU_ASSERT_EQUAL(rest.first, 4);
  tmp_remove(&t);
}

static void test_train_lowers_loss(void) {
  tmp t;
  tmp_make(&t);
  write_alphabet(&t);
  write_config(&t, "steps: 40\n", 10, 2, 20);
  record r = {0};
  lmn_err err = {{0}};
  int rc = train(&bigram_desc, &t, 0, 0, &r, &err);
  if (rc) fprintf(stderr, "\n  %s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(r.first, 1);
  CU_ASSERT_EQUAL(r.last, 40);
  CU_ASSERT(fabsf(r.loss[0] - logf(256.0f)) < 0.1f); /* near-uniform start */
  CU_ASSERT(r.loss[39] < 0.5f);
  CU_ASSERT_EQUAL(r.n_val, 2);
  CU_ASSERT_EQUAL(r.val_step[0], 20);
  CU_ASSERT_EQUAL(r.val_step[1], 40);
  CU_ASSERT(r.val[1] < r.val[0] && r.val[1] < 0.5);
  /* keep 2: steps 30 and 40 remain; latest names 40 */
  char p[192];
  for (long s = 10; s <= 40; s += 10) {
    ckpt_file(&t, s, p, sizeof p);
    CU_ASSERT_EQUAL(file_exists(p), s >= 30);
  }
  snprintf(p, sizeof p, "%s/latest", t.ckpt);
  char line[64] = {0};
  FILE *f = fopen(p, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, f));
  fclose(f);
  CU_ASSERT_STRING_EQUAL(line, "step-000040.safetensors\n");
  /* the trained bigram continues the alphabet greedily */
  char path[192];
  long step = 0;
  CU_ASSERT_EQUAL(lmn_checkpoint_latest(t.ckpt, path, sizeof path, &step, &err), 1);
  CU_ASSERT_EQUAL(step, 40);
  lmn_net *net = new_net(&bigram_desc, 99);
  CU_ASSERT_EQUAL_FATAL(lmn_checkpoint_load(net, path, &err), 0);
  CU_ASSERT_EQUAL(net->step, 40);
  lmn_tokenizer tok;
  lmn_tokenizer_init_bytes(&tok);
  lmn_sample_opts greedy = {0.0f, 0, 0.0f};
  char out[32];
  CU_ASSERT_EQUAL(lmn_generate(net, &tok, "xy", 8, &greedy, 1, out, sizeof out, &err), 8);
  CU_ASSERT_STRING_EQUAL(out, "zabcdefg");
  lmn_net_destroy(net);
  /* a second fresh run must not mix its checkpoints with these */
  CU_ASSERT_EQUAL(train(&bigram_desc, &t, 0, 0, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "already holds checkpoints"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--resume"));
  /* resuming a finished run does nothing */
  record r2 = {0};
  CU_ASSERT_EQUAL(train(&bigram_desc, &t, 1, 0, &r2, &err), 0);
  CU_ASSERT_EQUAL(r2.last, 0);
  tmp_remove(&t);
}

/* Fills every float of net with a distinct pattern so that a round trip shows every tensor. */
static void scramble(lmn_net *net, float base) {
  CU_ASSERT_EQUAL_FATAL(lmn_net_enable_training(net, NULL), 0); /* the moments exist once training starts */
  for (size_t i = 0; i < net->desc->n_floats; i++) net->params[i] = base + 0.001f * (float)(i % 997);
  for (size_t i = 0; i < net->desc->n_train; i++) {
    net->m[i] = base - 0.002f * (float)(i % 89);
    net->v[i] = base * 0.5f + 0.003f * (float)(i % 61);
  }
}

static int same_floats(const float *a, const float *b, size_t n) {
  return memcmp(a, b, n * sizeof *a) == 0;
}

static void test_checkpoint_roundtrip(void) {
  tmp t;
  tmp_make(&t);
  char path[192];
  snprintf(path, sizeof path, "%s/c.safetensors", t.dir);
  lmn_net *a = new_net(&bigram_desc, 1), *b = new_net(&bigram_desc, 2);
  scramble(a, 0.25f);
  a->step = 17;
  lmn_ckpt_state st = {.step = 12, .has_run = 1, .batch = 4, .seq_len = 32, .seed = 18446744073709551615ULL};
  lmn_data_state_init(&st.data, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, 5);
  st.data.pos = 1234, st.data.batches = 99;
  lmn_rng_seed(&st.rng, 77);
  snprintf(st.config, sizeof st.config, "/x/train.yaml");
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL_FATAL(lmn_checkpoint_save(a, path, &st, &err), 0);
  lmn_ckpt_state got;
  memset(&got, 0xff, sizeof got);
  CU_ASSERT_EQUAL_FATAL(lmn_checkpoint_load_state(b, path, &got, &err), 0);
  CU_ASSERT(same_floats(a->params, b->params, V * V + V)); /* table and bias */
  CU_ASSERT(b->params[V * V + V] == 1.0f);                 /* the model-file tensor is not in checkpoints */
  CU_ASSERT(same_floats(a->m, b->m, V * V));
  CU_ASSERT(same_floats(a->v, b->v, V * V));
  CU_ASSERT_EQUAL(b->step, 17);
  CU_ASSERT_EQUAL(got.step, 12);
  CU_ASSERT_EQUAL(got.has_run, 1);
  CU_ASSERT_EQUAL(memcmp(&got.data, &st.data, sizeof st.data), 0);
  CU_ASSERT_EQUAL(memcmp(&got.rng, &st.rng, sizeof st.rng), 0);
  CU_ASSERT_EQUAL(got.batch, 4);
  CU_ASSERT_EQUAL(got.seq_len, 32);
  CU_ASSERT(got.seed == 18446744073709551615ULL);
  CU_ASSERT_STRING_EQUAL(got.config, "/x/train.yaml");
  /* what other tools see */
  lmn_st *f = NULL;
  CU_ASSERT_EQUAL_FATAL(lmn_st_open(path, LMN_ST_READ, &f, &err), 0);
  CU_ASSERT_STRING_EQUAL(lmn_st_meta(f, "format"), "lmnet-checkpoint");
  CU_ASSERT_STRING_EQUAL(lmn_st_meta(f, "version"), "1");
  CU_ASSERT_STRING_EQUAL(lmn_st_meta(f, "network"), "bigram");
  CU_ASSERT_STRING_EQUAL(lmn_st_meta(f, "hash"), "0123456789abcdef");
  CU_ASSERT_STRING_EQUAL(lmn_st_meta(f, "aggregate"), "mean");
  CU_ASSERT_STRING_EQUAL(lmn_st_meta(f, "step"), "12");
  CU_ASSERT_STRING_EQUAL(lmn_st_meta(f, "optimizer_step"), "17");
  CU_ASSERT_EQUAL(strlen(lmn_st_meta(f, "data_state")), 2 * sizeof(lmn_data_state));
  CU_ASSERT_EQUAL(lmn_st_n_tensors(f), 4);
  const lmn_st_tensor *tb = lmn_st_find(f, "table.weight"), *bias = lmn_st_find(f, "bias");
  CU_ASSERT_PTR_NOT_NULL(lmn_st_find(f, "m.table.weight"));
  CU_ASSERT_PTR_NOT_NULL(lmn_st_find(f, "v.table.weight"));
  CU_ASSERT_PTR_NULL(lmn_st_find(f, "m.bias"));
  CU_ASSERT_PTR_NULL(lmn_st_find(f, "model.scale"));
  CU_ASSERT_PTR_NOT_NULL_FATAL(tb);
  CU_ASSERT_PTR_NOT_NULL_FATAL(bias);
  CU_ASSERT_EQUAL(tb->n_dims, 2);
  CU_ASSERT_EQUAL(bias->n_dims, 1);
  CU_ASSERT_EQUAL(bias->shape[0], V);
  lmn_st_close(f);
  /* without a run state (an embedding program's own loop) */
  CU_ASSERT_EQUAL(lmn_checkpoint_save(a, path, NULL, &err), 0);
  CU_ASSERT_EQUAL(lmn_checkpoint_load_state(b, path, &got, &err), 0);
  CU_ASSERT_EQUAL(got.has_run, 0);
  CU_ASSERT_EQUAL(got.step, 17);
  lmn_net_destroy(a);
  lmn_net_destroy(b);
  tmp_remove(&t);
}

/* Gradients and AdamW moments wait for training: none after creation (lmn_g is NULL, an update does
 * nothing), zero moments in a checkpoint of an untrained network, moments (not gradients) allocated by a
 * checkpoint load, everything by the first lmn_net_zero_grad. The pool's strategy belongs to the network. */
static void test_training_state_is_lazy(void) {
  tmp t;
  tmp_make(&t);
  char path[192];
  snprintf(path, sizeof path, "%s/c.safetensors", t.dir);
  lmn_net *a = new_net(&bigram_desc, 1), *b = new_net(&bigram_desc, 2);
  CU_ASSERT_PTR_NULL(a->grads);
  CU_ASSERT_PTR_NULL(a->m);
  CU_ASSERT_PTR_NULL(a->v);
  CU_ASSERT_PTR_NULL(lmn_g(a, P_TABLE));
  int32_t tok[16], tgt[16];
  for (int i = 0; i < 16; i++) tok[i] = i * 7 % V, tgt[i] = (i * 7 + 1) % V;
  float before = a->params[0];
  CU_ASSERT(isfinite(a->desc->forward(a, tok, tgt, 2, 8, 0)));
  CU_ASSERT_EQUAL(lmn_net_update(a, 0.1f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f), 0.0);
  CU_ASSERT(a->params[0] == before && a->step == 0);
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL_FATAL(lmn_checkpoint_save(a, path, NULL, &err), 0);
  lmn_st *f = NULL;
  CU_ASSERT_EQUAL_FATAL(lmn_st_open(path, LMN_ST_READ, &f, &err), 0);
  float *m = malloc((size_t)V * V * sizeof *m);
  int64_t shape[2] = {V, V};
  CU_ASSERT_EQUAL_FATAL(lmn_st_load_f32(f, "m.table.weight", 2, shape, m, &err), 0);
  size_t nonzero = 0;
  for (size_t i = 0; i < (size_t)V * V; i++) nonzero += m[i] != 0.0f;
  CU_ASSERT_EQUAL(nonzero, 0);
  free(m);
  lmn_st_close(f);
  CU_ASSERT_EQUAL(lmn_checkpoint_load(b, path, &err), 0);
  CU_ASSERT(b->m != NULL && b->v != NULL && b->grads == NULL);
  CU_ASSERT_PTR_NULL(lmn_g(b, P_TABLE));
  CU_ASSERT_EQUAL(lmn_net_zero_grad(a), 0);
  CU_ASSERT(a->grads != NULL && a->m != NULL && a->v != NULL);
  CU_ASSERT_PTR_NOT_NULL(lmn_g(a, P_TABLE));
  CU_ASSERT(isfinite(a->desc->forward(a, tok, tgt, 2, 8, 1)));
  a->desc->backward(a, tok, 2, 8);
  CU_ASSERT(lmn_net_update(a, 0.1f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f) > 0.0);
  CU_ASSERT(a->params[0] != before && a->step == 1);
  /* the threading strategy: split on a pool of more than one thread unless the creator says otherwise */
  CU_ASSERT_EQUAL(lmn_pool_splits(a->pool), 0); /* one thread */
  lmn_net *c = NULL;
  CU_ASSERT_EQUAL_FATAL(lmn_net_create(&c, &bigram_desc, 2, 8, 2, 3, &err), 0);
  CU_ASSERT_EQUAL(lmn_pool_splits(c->pool), 1);
  lmn_pool_set_split(c->pool, 0);
  CU_ASSERT_EQUAL(lmn_pool_splits(c->pool), 0);
  lmn_net_destroy(a);
  lmn_net_destroy(b);
  lmn_net_destroy(c);
  tmp_remove(&t);
}

/* Without clipping the update takes the gradient norm from AdamW's own pass over each chunk (no pass of its
 * own): the same norm, to the last bits of a sum in another order, and the same weights as an update whose
 * clipping threshold is never reached. */
static void test_update_norm_without_clipping(void) {
  lmn_net *a = new_net(&bigram_desc, 5), *b = new_net(&bigram_desc, 5);
  int32_t tok[16], tgt[16];
  for (int i = 0; i < 16; i++) tok[i] = i * 5 % V, tgt[i] = (i * 3 + 2) % V;
  double norm[2];
  lmn_net *nets[2] = {a, b};
  for (int k = 0; k < 2; k++) {
    CU_ASSERT_EQUAL_FATAL(lmn_net_zero_grad(nets[k]), 0);
    CU_ASSERT(isfinite(nets[k]->desc->forward(nets[k], tok, tgt, 2, 8, 1)));
    nets[k]->desc->backward(nets[k], tok, 2, 8);
    norm[k] = lmn_net_update(nets[k], 0.1f, 0.9f, 0.95f, 1e-8f, 0.01f, k == 0 ? 0.0f : 1e30f);
  }
  CU_ASSERT(norm[0] > 0.0);
  CU_ASSERT_DOUBLE_EQUAL(norm[0], norm[1], 1e-12 * norm[1]);
  CU_ASSERT_EQUAL(memcmp(a->params, b->params, a->desc->n_floats * sizeof *a->params), 0);
  lmn_net_destroy(a);
  lmn_net_destroy(b);
}

/* Loading path into a fresh bigram net fails with a message containing want and leaves the net as it was. */
static void expect_load_error(const lmn_net_desc *d, const char *path, const char *want) {
  lmn_net *net = new_net(d, 5), *ref = new_net(d, 5);
  net->step = ref->step = 3;
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL(lmn_checkpoint_load(net, path, &err), -1);
  if (!strstr(err.msg, want)) fprintf(stderr, "\n  got:  %s\n  want: %s\n", err.msg, want);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
  CU_ASSERT(same_floats(net->params, ref->params, d->n_floats));
  CU_ASSERT(net->m == NULL && net->v == NULL && net->grads == NULL); /* not even the moments were allocated */
  CU_ASSERT_EQUAL(net->step, 3);
  lmn_net_destroy(net);
  lmn_net_destroy(ref);
}

/* Writes a bigram checkpoint with tensor `drop` left out and tensor `extra` added (either may be NULL). */
static void write_edited(const char *path, const char *drop, const char *extra) {
  lmn_st_writer *w;
  lmn_err err;
  static float zeros[V * V];
  CU_ASSERT_EQUAL_FATAL(lmn_st_writer_new(&w, &err), 0);
  const char *meta[][2] = {{"format", "lmnet-checkpoint"}, {"version", "1"},      {"network", "bigram"},
                           {"hash", "0123456789abcdef"},   {"aggregate", "mean"}, {"step", "1"},
                           {"optimizer_step", "1"}};
  for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++)
    lmn_st_writer_add_meta(w, meta[i][0], meta[i][1], &err);
  const char *names[] = {"table.weight", "bias", "m.table.weight", "v.table.weight"};
  for (int i = 0; i < 4; i++) {
    if (drop && !strcmp(names[i], drop)) continue;
    int64_t shape[2] = {V, V};
    lmn_st_writer_add_f32(w, names[i], i == 1 ? 1 : 2, shape, zeros, &err);
  }
  int64_t one[1] = {4};
  if (extra) lmn_st_writer_add_f32(w, extra, 1, one, zeros, &err);
  CU_ASSERT_EQUAL(lmn_st_writer_write(w, path, &err), 0);
  lmn_st_writer_free(w);
}

static void test_checkpoint_mismatch(void) {
  tmp t;
  tmp_make(&t);
  char path[192], edited[192];
  snprintf(path, sizeof path, "%s/c.safetensors", t.dir);
  snprintf(edited, sizeof edited, "%s/e.safetensors", t.dir);
  lmn_net *a = new_net(&bigram_desc, 1);
  lmn_err err;
  CU_ASSERT_EQUAL_FATAL(lmn_checkpoint_save(a, path, NULL, &err), 0);
  lmn_net_destroy(a);
  /* another network (hash) */
  lmn_net_desc other = bigram_desc;
  other.hash ^= 1;
  expect_load_error(&other, path, "does not match network 'bigram' (hash 0123456789abcdee)");
  /* same hash, another shape of 'bias' */
  lmn_param_info narrow[3];
  memcpy(narrow, bigram_params, sizeof narrow);
  narrow[P_BIAS].rows = 128;
  narrow[P_MODEL].offset = V * V + 128;
  lmn_net_desc shaped = bigram_desc;
  shaped.params = narrow;
  shaped.n_floats = V * V + 128 + 4;
  expect_load_error(&shaped, path, "tensor 'bias' has shape [256] but network 'bigram' expects [128]");
  /* aggregation */
  lmn_net_desc summed = bigram_desc;
  summed.aggregate_mean = 0;
  expect_load_error(&summed, path, "aggregates with 'mean' but network 'bigram' uses 'sum'");
  /* missing and foreign tensors */
  write_edited(edited, "v.table.weight", NULL);
  expect_load_error(&bigram_desc, edited, "tensor 'v.table.weight' is missing");
  write_edited(edited, NULL, "model.scale");
  expect_load_error(&bigram_desc, edited, "tensor 'model.scale' is not a saved tensor of network 'bigram'");
  write_edited(edited, NULL, "m.bias");
  expect_load_error(&bigram_desc, edited, "tensor 'm.bias' is not a saved tensor");
  write_edited(edited, NULL, NULL);
  lmn_net *ok = new_net(&bigram_desc, 5);
  CU_ASSERT_EQUAL(lmn_checkpoint_load(ok, edited, &err), 0);
  lmn_net_destroy(ok);
  /* not a checkpoint at all */
  write_file(edited, "hello");
  expect_load_error(&bigram_desc, edited, "");
  char missing[200];
  snprintf(missing, sizeof missing, "%s/nope.safetensors", t.dir);
  expect_load_error(&bigram_desc, missing, "");
  tmp_remove(&t);
}

static void test_checkpoint_dir(void) {
  tmp t;
  tmp_make(&t);
  lmn_err err;
  char path[192];
  long step = -1;
  CU_ASSERT_EQUAL(lmn_checkpoint_latest(t.ckpt, path, sizeof path, &step, &err), 0); /* no directory */
  char deep[192];
  snprintf(deep, sizeof deep, "%s/a/b", t.ckpt);
  CU_ASSERT_EQUAL(lmn_checkpoint_mkdir(deep, &err), 0);
  CU_ASSERT_EQUAL(lmn_checkpoint_mkdir(t.ckpt, &err), 0);
  for (long s = 1; s <= 5; s++) {
    ckpt_file(&t, s * 100, path, sizeof path);
    write_file(path, "x");
  }
  snprintf(path, sizeof path, "%s/step-7.safetensors", t.ckpt); /* not our spelling: ignored */
  write_file(path, "x");
  long *steps;
  size_t n;
  CU_ASSERT_EQUAL(lmn_checkpoint_list(t.ckpt, &steps, &n, &err), 0);
  CU_ASSERT_EQUAL_FATAL(n, 5);
  CU_ASSERT(steps[0] == 100 && steps[4] == 500);
  free(steps);
  /* no `latest`: the highest step */
  CU_ASSERT_EQUAL(lmn_checkpoint_latest(t.ckpt, path, sizeof path, &step, &err), 1);
  CU_ASSERT_EQUAL(step, 500);
  /* `latest` wins when valid, is ignored when corrupt or dangling */
  CU_ASSERT_EQUAL(lmn_checkpoint_write_latest(t.ckpt, 300, &err), 0);
  CU_ASSERT_EQUAL(lmn_checkpoint_latest(t.ckpt, path, sizeof path, &step, &err), 1);
  CU_ASSERT_EQUAL(step, 300);
  char want[192];
  ckpt_file(&t, 300, want, sizeof want);
  CU_ASSERT_STRING_EQUAL(path, want);
  char latest[192];
  snprintf(latest, sizeof latest, "%s/latest", t.ckpt);
  write_file(latest, "../../etc/passwd\n");
  CU_ASSERT_EQUAL(lmn_checkpoint_latest(t.ckpt, path, sizeof path, &step, &err), 1);
  CU_ASSERT_EQUAL(step, 500);
  CU_ASSERT_EQUAL(lmn_checkpoint_write_latest(t.ckpt, 900, &err), 0);
  CU_ASSERT_EQUAL(lmn_checkpoint_latest(t.ckpt, path, sizeof path, &step, &err), 1);
  CU_ASSERT_EQUAL(step, 500);
  /* prune keeps the newest 2 of those up to step 400 and leaves the later one */
  CU_ASSERT_EQUAL(lmn_checkpoint_prune(t.ckpt, 2, 400, &err), 0);
  for (long s = 1; s <= 5; s++) {
    ckpt_file(&t, s * 100, path, sizeof path);
    CU_ASSERT_EQUAL(file_exists(path), s >= 3);
  }
  CU_ASSERT_EQUAL(lmn_checkpoint_prune(t.ckpt, 0, 1000, &err), 0); /* keep 0: all */
  CU_ASSERT_EQUAL(file_exists(path), 1);
  tmp_remove(&t);
}

static int same_checkpoints(const lmn_net_desc *d, const char *p, const char *q) {
  lmn_net *a = new_net(d, 1), *b = new_net(d, 2);
  lmn_ckpt_state sa, sb;
  lmn_err err;
  int ok = !lmn_checkpoint_load_state(a, p, &sa, &err) && !lmn_checkpoint_load_state(b, q, &sb, &err) &&
           same_floats(a->params, b->params, d->n_floats) && same_floats(a->m, b->m, d->n_train) &&
           same_floats(a->v, b->v, d->n_train) && a->step == b->step && sa.step == sb.step &&
           !memcmp(&sa.data, &sb.data, sizeof sa.data) && !memcmp(&sa.rng, &sb.rng, sizeof sa.rng);
  lmn_net_destroy(a);
  lmn_net_destroy(b);
  return ok;
}

static void test_resume_is_exact(void) {
  static const char *stages = "stages:\n  - steps: 6\n    train: edges\n  - steps: 14\n    train: all\n";
  tmp a, b;
  tmp_make(&a);
  tmp_make(&b);
  write_alphabet(&a);
  write_alphabet(&b);
  write_config(&a, stages, 0, 3, 5);
  write_config(&b, stages, 0, 3, 5);
  record ra = {0}, rb1 = {0}, rb2 = {0};
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL_FATAL(train(&bigram_desc, &a, 0, 0, &ra, &err), 0);
  /* resuming with nothing to resume from starts at step 0 */
  CU_ASSERT_EQUAL_FATAL(train(&bigram_desc, &b, 1, 10, &rb1, &err), 0);
  CU_ASSERT_EQUAL(rb1.first, 1);
  CU_ASSERT_EQUAL(rb1.last, 10);
  CU_ASSERT_EQUAL_FATAL(train(&bigram_desc, &b, 1, 0, &rb2, &err), 0);
  CU_ASSERT_EQUAL(rb2.first, 11);
  CU_ASSERT_EQUAL(rb2.last, 20);
  CU_ASSERT_EQUAL(ra.last, 20);
  CU_ASSERT_EQUAL(memcmp(ra.loss, rb1.loss, 10 * sizeof(float)), 0);
  CU_ASSERT_EQUAL(memcmp(ra.loss + 10, rb2.loss + 10, 10 * sizeof(float)), 0);
  CU_ASSERT(ra.loss[19] < ra.loss[0]);
  /* validation at 5, 10 (the stop), 15, 20: the same numbers */
  CU_ASSERT_EQUAL(ra.n_val, 4);
  CU_ASSERT_EQUAL(rb1.n_val, 2);
  CU_ASSERT_EQUAL(rb2.n_val, 2);
  CU_ASSERT(ra.val[1] == rb1.val[1] && ra.val[2] == rb2.val[0] && ra.val[3] == rb2.val[1]);
  char pa[192], pb[192];
  ckpt_file(&a, 20, pa, sizeof pa);
  ckpt_file(&b, 20, pb, sizeof pb);
  CU_ASSERT(same_checkpoints(&bigram_desc, pa, pb));
  tmp_remove(&a);
  tmp_remove(&b);
}

static void test_nan_stops_without_checkpoint(void) {
  tmp t;
  tmp_make(&t);
  write_alphabet(&t);
  write_config(&t, "steps: 12\n", 5, 3, 0);
  lmn_net_desc nan_desc = bigram_desc;
  nan_desc.forward = nan_forward;
  record r = {0};
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL(train(&nan_desc, &t, 0, 0, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "step 10: the loss is NaN"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "step-000005.safetensors"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, t.cfg));
  CU_ASSERT_EQUAL(r.last, 9);
  char p[192];
  ckpt_file(&t, 10, p, sizeof p);
  CU_ASSERT_FALSE(file_exists(p));
  long step = 0;
  CU_ASSERT_EQUAL(lmn_checkpoint_latest(t.ckpt, p, sizeof p, &step, &err), 1);
  CU_ASSERT_EQUAL(step, 5);
  lmn_net *net = new_net(&bigram_desc, 3);
  CU_ASSERT_EQUAL(lmn_checkpoint_load(net, p, &err), 0);
  for (size_t i = 0; i < bigram_desc.n_floats; i++)
    if (!isfinite(net->params[i])) {
      CU_FAIL("a non-finite parameter in the last good checkpoint");
      break;
    }
  lmn_net_destroy(net);
  tmp_remove(&t);
}

static void test_generate(void) {
  lmn_net *net = new_net(&bigram_desc, 11);
  lmn_tokenizer tok;
  lmn_tokenizer_init_bytes(&tok);
  lmn_sample_opts o = {1.0f, 0, 0.0f};
  lmn_err err;
  char a[64], b[64], c[64];
  CU_ASSERT_EQUAL(lmn_generate(net, &tok, "Hi", 16, &o, 42, a, sizeof a, &err), 16);
  CU_ASSERT_EQUAL(lmn_generate(net, &tok, "Hi", 16, &o, 42, b, sizeof b, &err), 16);
  CU_ASSERT_EQUAL(lmn_generate(net, &tok, "Hi", 16, &o, 43, c, sizeof c, &err), 16);
  CU_ASSERT_EQUAL(memcmp(a, b, 17), 0);
  CU_ASSERT_NOT_EQUAL(memcmp(a, c, 16), 0);
  /* greedy is the argmax chain */
  lmn_sample_opts g = {0.0f, 0, 0.0f};
  CU_ASSERT_EQUAL(lmn_generate(net, &tok, "Hi", 4, &g, 1, a, sizeof a, &err), 4);
  float logits[V];
  int32_t prev = 'i';
  for (int k = 0; k < 4; k++) {
    bigram_decode(net, &prev, 1, 0, logits);
    prev = lmn_sample_argmax(logits, V);
    CU_ASSERT_EQUAL((unsigned char)a[k], prev);
  }
  /* a small buffer cuts the text, not the generation */
  char small[5];
  CU_ASSERT_EQUAL(lmn_generate(net, &tok, "Hi", 16, &o, 42, small, sizeof small, &err), 16);
  CU_ASSERT_EQUAL(strlen(small), 4);
  CU_ASSERT_EQUAL(memcmp(small, b, 4), 0);
  /* errors */
  CU_ASSERT_EQUAL(lmn_generate(net, &tok, "", 4, &o, 1, a, sizeof a, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "empty"));
  lmn_sample_opts bad = {1.0f, -1, 0.0f};
  CU_ASSERT_EQUAL(lmn_generate(net, &tok, "x", 4, &bad, 1, a, sizeof a, &err), -1);
  lmn_net_destroy(net);
  /* the context bounds generation: 5 prompt tokens, context 8 -> 4 tokens */
  lmn_net_desc shortctx = bigram_desc;
  shortctx.ctx = 8;
  net = new_net(&shortctx, 11);
  lmn_gen_stats st;
  CU_ASSERT_EQUAL(lmn_generate_stream(net, &tok, "hello", 5, 10, &o, 1, NULL, NULL, &st, &err), 0);
  CU_ASSERT_EQUAL(st.tokens, 4);
  CU_ASSERT_EQUAL(st.stopped_ctx, 1);
  CU_ASSERT_EQUAL(st.ctx, 8);
  CU_ASSERT_EQUAL(net->cache_ctx, 8);
  CU_ASSERT_EQUAL(lmn_generate(net, &tok, "0123456789", 2, &o, 1, a, sizeof a, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "context is 8"));
  lmn_net_destroy(net);
  /* classification networks */
  lmn_net_desc cls = bigram_desc;
  cls.classes = 3;
  net = new_net(&cls, 11);
  CU_ASSERT_EQUAL(lmn_generate(net, &tok, "x", 4, &o, 1, a, sizeof a, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "generation is not available"));
  lmn_net_destroy(net);
}

/* lmn_train on yaml (written to DIR/train.yaml next to DIR/data.txt) fails with a message that starts with
 * "DIR" + want_prefix and contains want. */
static void expect_train_error(const char *yaml, const char *want_prefix, const char *want) {
  tmp t;
  tmp_make(&t);
  write_alphabet(&t);
  write_file(t.cfg, yaml);
  record r = {0};
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL(train(&bigram_desc, &t, 0, 0, &r, &err), -1);
  char prefix[256];
  snprintf(prefix, sizeof prefix, "%s%s", t.dir, want_prefix);
  int ok = !strncmp(err.msg, prefix, strlen(prefix)) && strstr(err.msg, want);
  if (!ok) fprintf(stderr, "\n  got:  %s\n  want: %s ... %s\n", err.msg, prefix, want);
  CU_ASSERT(ok);
  CU_ASSERT_EQUAL(r.last, 0);
  char ck[200];
  snprintf(ck, sizeof ck, "%s/checkpoints", t.dir);
  CU_ASSERT_FALSE(file_exists(ck));
  tmp_remove(&t);
}

static void test_config_errors(void) {
  expect_train_error("data:\n  train: data.txt\nbatch: 2\nseq_len: 8\nsteps: 3\nlr: 0.1\n",
                     "/train.yaml:6:1: error: ", "unknown key 'lr'");
  expect_train_error(
      "data:\n  train: data.txt\nbatch: 2\nseq_len: 8\nstages:\n  - steps: 3\n    train: [tabel]\n",
      "/train.yaml:7:13: error: ",
      "'tabel' is not a trainable vertex, model or edge type of network 'bigram'");
  expect_train_error(
      "data:\n  train: data.txt\nbatch: 2\nseq_len: 8\nstages:\n  - steps: 3\n    train: [bias]\n",
      "/train.yaml:7:13: error: ", "'bias'");
  expect_train_error("data:\n  train: data.txt\nbatch: 2\nseq_len: 5000\nsteps: 3\n",
                     "/train.yaml: bigram: ", "1..1024");
  expect_train_error("data:\n  train: nothere.txt\nbatch: 2\nseq_len: 8\nsteps: 3\n",
                     "/nothere.txt: cannot open", "");
  /* a network without trainable edges cannot run `train: edges` */
  lmn_param_info noedge[3];
  memcpy(noedge, bigram_params, sizeof noedge);
  noedge[P_TABLE].edge = -1;
  lmn_net_desc d = bigram_desc;
  d.params = noedge;
  tmp t;
  tmp_make(&t);
  write_alphabet(&t);
  write_file(t.cfg,
             "data:\n  train: data.txt\nbatch: 2\nseq_len: 8\nstages:\n  - steps: 3\n    train: edges\n");
  record r = {0};
  lmn_err err;
  CU_ASSERT_EQUAL(train(&d, &t, 0, 0, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, ":7:12: error: stage 1 trains nothing"));
  /* a from-scratch vocabulary other than 256 has no tokenizer to read text with */
  d = bigram_desc;
  d.vocab = 1000;
  CU_ASSERT_EQUAL(train(&d, &t, 0, 0, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "has no tokenizer (raw bytes need 256; borrow one with `tokenizer"));
  tmp_remove(&t);
}

static int run_main(const lmn_net_desc *d, int argc, const char **argv) {
  fflush(stdout);
  return lmn_main(argc, (char **)argv, d);
}

#define MAIN(d, ...)                                     \
  ({                                                     \
    const char *av_[] = {"bigram", __VA_ARGS__};         \
    run_main(d, (int)(sizeof av_ / sizeof av_[0]), av_); \
  })

static void test_command_line(void) {
  const char *only[] = {"bigram"};
  CU_ASSERT_EQUAL(run_main(&bigram_desc, 1, only), 2);
  CU_ASSERT_EQUAL(run_main(&bigram_desc, 0, NULL), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "bogus"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "train"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "train", "-c"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "train", "-c", "x.yaml", "--resume=1"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "train", "-c", "x.yaml", "extra"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "eval"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "generate"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "generate", "-p", "x", "-n", "abc"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "generate", "-p", "x", "-n", "-3"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "generate", "-p", "x", "--top-p", "2"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "generate", "-p", "x", "--temperature=nan"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "generate", "-p", "x", "--seed", "1x"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "generate", "-p", "x", "--resume"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "info", "--batch"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "info", "--seq", "99999"), 2);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "info", "--help"), 0);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "info", "--batch", "2", "--seq=16"), 0);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "train", "-c", "/nonexistent/x.yaml"), 1);
  lmn_net_desc cls = bigram_desc;
  cls.classes = 3;
  CU_ASSERT_EQUAL(MAIN(&cls, "generate", "-p", "x"), 1);
  /* a whole session: train, eval, generate, resume */
  tmp t;
  tmp_make(&t);
  write_alphabet(&t);
  write_config(&t, "steps: 6\n", 3, 0, 0);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "train", "-c", t.cfg, "--stop-at", "3"), 0);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "train", "-c", t.cfg), 1); /* checkpoints exist: needs --resume */
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "train", "-c", t.cfg, "--resume"), 0);
  char p[192];
  ckpt_file(&t, 6, p, sizeof p);
  CU_ASSERT(file_exists(p));
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "eval", "-c", t.cfg), 0);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "eval", "-c", t.cfg, "--ckpt", p), 0);
  CU_ASSERT_EQUAL(
      MAIN(&bigram_desc, "generate", "-p", "abc", "-n", "5", "--ckpt", p, "--seed", "3", "-t", "0"), 0);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "generate", "-p", "abc", "-n", "5", "-c", t.cfg, "--top-k", "2"), 0);
  CU_ASSERT_EQUAL(MAIN(&bigram_desc, "generate", "-p", "abc", "--ckpt", t.cfg), 1); /* not a checkpoint */
  lmn_net_desc other = bigram_desc;
  other.hash = 42;
  CU_ASSERT_EQUAL(MAIN(&other, "eval", "-c", t.cfg), 1);
  tmp_remove(&t);
}

/* ---- classification ------------------------------------------------------------------------------ */

/* train.yaml of a classifier run on the fixture (absolute path): batch 16 x 96, validation the last 40 lines
 * (all of them in 3 batches), checkpoints every 40 steps. */
static void write_class_config(const tmp *t, long steps) {
  char fixture[4096], yaml[8192];
  CU_ASSERT_PTR_NOT_NULL_FATAL(realpath("tests/fixtures/classify/toy.tsv", fixture));
  snprintf(yaml, sizeof yaml,
           "data: {train: %s, val_fraction: 0.1}\nbatch: 16\nseq_len: 96\nsteps: %ld\n"
           "optimizer: {lr: 0.05}\nschedule: {warmup: 5, decay: cosine, min_lr: 0.005}\n"
           "eval: {every: 40, batches: 3}\ncheckpoint: {dir: ck, every: 40, keep: 0}\nseed: 3\nthreads: 1\n"
           "log: {every: 1000}\n",
           fixture, steps);
  write_file(t->cfg, yaml);
}

/* Accuracy and loss of net on the validation split of the config's data. */
static lmn_class_eval class_eval(lmn_net *net, const tmp *t) {
  lmn_train_config cfg;
  lmn_err err = {{0}};
  lmn_class_eval ev = {0};
  CU_ASSERT_EQUAL_FATAL(lmn_config_load(t->cfg, &cfg, &err), 0);
  lmn_data_opts o;
  lmn_data_opts_from_config(&o, &cfg, NULL);
  lmn_data d;
  CU_ASSERT_EQUAL_FATAL(lmn_data_open_classes(&d, &o, C, &err), 0);
  CU_ASSERT_EQUAL(lmn_eval_classes(net, &d, cfg.eval.batches, cfg.batch, cfg.seq_len, &ev, &err), 0);
  lmn_data_close(&d);
  lmn_config_free(&cfg);
  return ev;
}

static float mean_loss(const record *r, int from, int n) {
  float s = 0;
  for (int i = from; i < from + n; i++) s += r->loss[i];
  return s / (float)n;
}

static void test_classifier_trains(void) {
  tmp t;
  tmp_make(&t);
  write_class_config(&t, 64);
  lmn_net *net = NULL;
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL_FATAL(lmn_net_create(&net, &bag_desc, 16, 96, 1, 3, &err), 0);
  lmn_class_eval before = class_eval(net, &t);
  CU_ASSERT_EQUAL(before.examples, 40); /* 3 batches of 16 hold the 40 validation lines: each once */
  CU_ASSERT(fabs(before.loss - log(4.0)) < 1e-6);
  record r = {0};
  int rc = train(&bag_desc, &t, 0, 0, &r, &err);
  if (rc) fprintf(stderr, "\n  %s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(r.last, 64);
  CU_ASSERT(fabsf(r.loss[0] - logf(4.0f)) < 1e-6f);
  CU_ASSERT(mean_loss(&r, 54, 10) < 0.5f * mean_loss(&r, 0, 10));
  CU_ASSERT_EQUAL(r.n_val, 2);
  CU_ASSERT(r.val[1] < r.val[0] && r.val[0] < before.loss);
  char p[192];
  ckpt_file(&t, 64, p, sizeof p);
  CU_ASSERT_EQUAL_FATAL(lmn_checkpoint_load(net, p, &err), 0);
  lmn_class_eval after = class_eval(net, &t);
  CU_ASSERT(after.accuracy >= 0.9); /* chance is 0.25 */
  CU_ASSERT(after.loss < before.loss && fabs(after.loss - r.val[1]) < 1e-9);
  CU_ASSERT_EQUAL(after.correct, (long)lround(after.accuracy * 40));
  lmn_net_destroy(net);
  tmp_remove(&t);
}

static void test_classifier_resume_is_exact(void) {
  tmp a, b;
  tmp_make(&a);
  tmp_make(&b);
  write_class_config(&a, 64);
  write_class_config(&b, 64);
  record ra = {0}, rb1 = {0}, rb2 = {0};
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL_FATAL(train(&bag_desc, &a, 0, 0, &ra, &err), 0);
  CU_ASSERT_EQUAL_FATAL(train(&bag_desc, &b, 0, 30, &rb1, &err), 0); /* mid-epoch: 480 of 360 examples */
  CU_ASSERT_EQUAL_FATAL(train(&bag_desc, &b, 1, 0, &rb2, &err), 0);
  CU_ASSERT_EQUAL(rb2.first, 31);
  CU_ASSERT_EQUAL(memcmp(ra.loss, rb1.loss, 30 * sizeof(float)), 0);
  CU_ASSERT_EQUAL(memcmp(ra.loss + 30, rb2.loss + 30, 34 * sizeof(float)), 0);
  CU_ASSERT(ra.val[1] == rb2.val[rb2.n_val - 1]);
  char pa[192], pb[192];
  ckpt_file(&a, 64, pa, sizeof pa);
  ckpt_file(&b, 64, pb, sizeof pb);
  CU_ASSERT(same_checkpoints(&bag_desc, pa, pb));
  tmp_remove(&a);
  tmp_remove(&b);
}

static void test_classifier_errors(void) {
  tmp t;
  tmp_make(&t);
  char path[192];
  snprintf(path, sizeof path, "%s/bad.tsv", t.dir);
  write_file(path, "0\thello\nseven\tworld\n");
  write_file(t.cfg, "data: {train: bad.tsv}\nbatch: 2\nseq_len: 8\nsteps: 3\n");
  record r = {0};
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL(train(&bag_desc, &t, 0, 0, &r, &err), -1);
  char want[256];
  snprintf(want, sizeof want, "%s:2: label 'seven' is not an integer", path);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
  /* next-token data is no classifier's data, and the reverse */
  lmn_net *net = new_net(&bigram_desc, 1);
  lmn_data d = {0};
  lmn_class_eval ev;
  CU_ASSERT_EQUAL(lmn_eval_classes(net, &d, 1, 1, 1, &ev, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "bigram: not a classification network"));
  lmn_net_destroy(net);
  net = new_net(&bag_desc, 1);
  CU_ASSERT_EQUAL(lmn_eval_classes(net, &d, 1, 1, 1, &ev, &err), -1);
  CU_ASSERT_STRING_EQUAL(err.msg, "bag: the network has 4 classes but the data is labelled for 0");
  lmn_net_destroy(net);
  tmp_remove(&t);
}

static void test_classifier_command_line(void) {
  tmp t;
  tmp_make(&t);
  write_class_config(&t, 40);
  CU_ASSERT_EQUAL(MAIN(&bag_desc, "eval", "-c", t.cfg), 0); /* the seeded initialisation */
  CU_ASSERT_EQUAL(MAIN(&bag_desc, "train", "-c", t.cfg, "--stop-at", "20"), 0);
  CU_ASSERT_EQUAL(MAIN(&bag_desc, "train", "-c", t.cfg, "--resume"), 0);
  CU_ASSERT_EQUAL(MAIN(&bag_desc, "eval", "-c", t.cfg), 0);
  CU_ASSERT_EQUAL(MAIN(&bag_desc, "generate", "-p", "x", "-c", t.cfg), 1);
  lmn_net *net = new_net(&bag_desc, 1);
  lmn_tokenizer tok;
  lmn_tokenizer_init_bytes(&tok);
  lmn_sample_opts o = {1.0f, 0, 0.0f};
  lmn_err err;
  char out[8];
  CU_ASSERT_EQUAL(lmn_generate(net, &tok, "x", 4, &o, 1, out, sizeof out, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "generation is not available for a classification network"));
  lmn_net_destroy(net);
  tmp_remove(&t);
}

/* Collects what generation hands over. */
typedef struct pieces {
  char text[256];
  size_t len;
  int calls;
} pieces;

static int collect(void *ctx, int32_t id, const char *bytes, size_t len) {
  (void)id;
  pieces *p = ctx;
  if (p->len + len < sizeof p->text) memcpy(p->text + p->len, bytes, len), p->len += len;
  p->calls++;
  return 0;
}

/* Sessions: a stop string ends the text before it (never emitted, even when it arrives split over tokens);
 * a second prompt that begins with the first reuses the cached positions and gives what a fresh session
 * gives. */
static void test_session(void) {
  lmn_net *net = new_net(&bigram_desc, 11);
  lmn_tokenizer tok;
  lmn_tokenizer_init_bytes(&tok);
  lmn_err err = {{0}};
  lmn_session s;
  CU_ASSERT_FATAL(lmn_session_init(&s, net, &tok, 64, &err) == 0);
  int32_t prompt[10] = {'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'};
  pieces all = {0};
  lmn_gen_req r = {.prompt = prompt,
                   .n_prompt = 10,
                   .n = 24,
                   .sample = {1.0f, 0, 0.0f},
                   .seed = 5,
                   .fn = collect,
                   .ctx = &all};
  lmn_gen_stats st;
  CU_ASSERT_EQUAL(lmn_session_generate(&s, &r, &st, &err), 0);
  CU_ASSERT_EQUAL(all.len, 24);
  CU_ASSERT_EQUAL(s.n_cached, 10 + 23); /* the prompt and every generated token but the last */
  /* a stop string of three bytes from the middle of that text */
  char stop[4];
  memcpy(stop, all.text + 10, 3);
  stop[3] = '\0';
  const char *stops[] = {"\x01\x02 never", stop};
  size_t first = 10;
  for (size_t i = 0; i + 3 <= 13; i++)
    if (!memcmp(all.text + i, stop, 3)) first = i < first ? i : first;
  pieces cut = {0};
  r.ctx = &cut;
  r.stop = stops;
  r.n_stop = 2;
  CU_ASSERT_EQUAL(lmn_session_generate(&s, &r, &st, &err), 0);
  CU_ASSERT_EQUAL(st.stopped_stop, 1);
  CU_ASSERT_EQUAL(cut.len, first);
  CU_ASSERT_EQUAL(memcmp(cut.text, all.text, first), 0);
  CU_ASSERT_EQUAL(st.reused, 10 - 5); /* cached from the first run; the last 5 are fed again */
  /* the same request on a fresh session: the same text */
  lmn_session fresh;
  CU_ASSERT_FATAL(lmn_session_init(&fresh, net, &tok, 64, &err) == 0);
  pieces again = {0};
  r.ctx = &again;
  CU_ASSERT_EQUAL(lmn_session_generate(&fresh, &r, &st, &err), 0);
  CU_ASSERT_EQUAL(st.reused, 0);
  CU_ASSERT(again.len == cut.len && !memcmp(again.text, cut.text, cut.len));
  /* errors: a prompt beyond the context, ids outside the vocabulary */
  int32_t big[65] = {0}, bad[1] = {V};
  r.prompt = big, r.n_prompt = 65;
  CU_ASSERT_EQUAL(lmn_session_generate(&fresh, &r, &st, &err), -1);
  r.prompt = bad, r.n_prompt = 1;
  CU_ASSERT_EQUAL(lmn_session_generate(&fresh, &r, &st, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "outside the vocabulary"));
  lmn_session_free(&fresh);
  lmn_session_free(&s);
  lmn_net_destroy(net);
}

static CU_TestInfo tests[] = {
    {"hex encoding of the run state", test_hex},
    {"training lowers the loss and rotates checkpoints", test_train_lowers_loss},
    {"checkpoint round trip: tensors, moments, metadata", test_checkpoint_roundtrip},
    {"checkpoint mismatches fail and change nothing", test_checkpoint_mismatch},
    {"gradients and moments wait for training", test_training_state_is_lazy},
    {"without clipping the gradient norm comes from AdamW's pass", test_update_norm_without_clipping},
    {"checkpoint directory: list, latest, prune", test_checkpoint_dir},
    {"a resumed run repeats an uninterrupted one bit for bit", test_resume_is_exact},
    {"a NaN loss stops without writing a checkpoint", test_nan_stops_without_checkpoint},
    {"generation: deterministic per seed, bounded by the context", test_generate},
    {"sessions: stop strings, cached prefixes reused", test_session},
    {"accumulate: micro-batches train as their batch, resume at step boundaries", test_train_accumulate},
    {"precision: bf16 is the run's, recorded, and a resume in f32 needs --force", test_train_precision},
    {"config errors keep file:line:col", test_config_errors},
    {"the command line: exit codes and a whole session", test_command_line},
    {"a classifier learns the labelled fixture", test_classifier_trains},
    {"a resumed classifier run repeats an uninterrupted one bit for bit", test_classifier_resume_is_exact},
    {"classifier data errors name file:line", test_classifier_errors},
    {"the command line of a classifier: train, eval, no generate", test_classifier_command_line},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("driver", tests)
