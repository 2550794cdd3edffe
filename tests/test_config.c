/* test_config.c: the YAML training configuration: every key read, defaults, relative paths, stages, the
 * schedule's inputs, printing back, and the exact message of each class of error (unknown key with its
 * suggestion and place, wrong type, missing key or file, out-of-range values, YAML syntax). */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "harness.h"
#include "net.h" /* LMN_PARAM_ flags */

/* A scratch directory under /tmp holding the YAML files of one test. */
typedef struct tmp {
  char dir[64];
  char path[128]; /* dir/train.yaml */
} tmp;

static void tmp_make(tmp *t) {
  snprintf(t->dir, sizeof t->dir, "/tmp/lmn_cfg_XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(t->dir));
  snprintf(t->path, sizeof t->path, "%s/train.yaml", t->dir);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static void tmp_remove(tmp *t) { nftw(t->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS); }

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
}

/* Loads yaml from a fresh train.yaml; expects failure with message "<path>:<want>". */
static void expect_error(const char *yaml, const char *want) {
  tmp t;
  tmp_make(&t);
  write_text(t.path, yaml);
  lmn_train_config cfg;
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL(lmn_config_load(t.path, &cfg, &err), -1);
  char full[1200];
  snprintf(full, sizeof full, "%s:%s", t.path, want);
  if (strcmp(err.msg, full) != 0) fprintf(stderr, "\n  got:  %s\n  want: %s\n", err.msg, full);
  CU_ASSERT_STRING_EQUAL(err.msg, full);
  CU_ASSERT_PTR_NULL(cfg.stages);
  CU_ASSERT_PTR_NULL(cfg.data.train);
  lmn_config_free(&cfg);
  tmp_remove(&t);
}

/* Loads yaml, which must succeed, into cfg (freed by the caller); t stays for path checks. */
static int load_ok(tmp *t, const char *yaml, lmn_train_config *cfg) {
  tmp_make(t);
  write_text(t->path, yaml);
  lmn_err err = {{0}};
  int rc = lmn_config_load(t->path, cfg, &err);
  if (rc) fprintf(stderr, "\n  unexpected error: %s\n", err.msg);
  CU_ASSERT_EQUAL(rc, 0);
  return rc;
}

/* Loads yaml, which must succeed, and checks memory.budget: the printed config loads back to the same. */
static void expect_ok_budget(const char *yaml, double bytes) {
  tmp t;
  lmn_train_config c;
  if (load_ok(&t, yaml, &c) == 0) {
    CU_ASSERT_EQUAL(c.memory_budget, bytes);
    char *text = lmn_config_text(&c);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "memory:\n  budget: "));
    free(text);
  }
  lmn_config_free(&c);
  tmp_remove(&t);
}

static const char *minimal = "data: {train: corpus.txt}\nbatch: 4\nseq_len: 64\nsteps: 10\n";

static void test_every_key(void) {
  const char *yaml =
      "# every key\n"
      "data:\n"
      "  train: data/train.txt\n"
      "  val: /abs/val.txt\n"
      "batch: 8\n"
      "seq_len: 256\n"
      "precision: bf16\n"
      "memory: {budget: 12GiB}\n"
      "steps: 300\n"
      "stages:\n"
      "  - {steps: 100, train: edges}\n"
      "  - steps: 200\n"
      "    train: all\n"
      "optimizer:\n"
      "  lr: 6e-4\n"
      "  betas: [0.8, 0.99]\n"
      "  eps: 1.0e-6\n"
      "  weight_decay: 0.1\n"
      "  no_decay: [embedding, bias, norm]\n"
      "schedule: {warmup: 30, decay: linear, min_lr: 6e-5}\n"
      "grad_clip: 0.5\n"
      "eval: {every: 50, batches: 4}\n"
      "checkpoint: {dir: ckpt, every: 100, keep: 2, minutes: 2.5}\n"
      "seed: 18446744073709551615\n"
      "threads: 2\n"
      "log: {every: 10}\n";
  tmp t;
  lmn_train_config c;
  if (load_ok(&t, yaml, &c)) return tmp_remove(&t);
  char want[256];
  snprintf(want, sizeof want, "%s/data/train.txt", t.dir);
  CU_ASSERT_STRING_EQUAL(c.data.train, want);
  CU_ASSERT_STRING_EQUAL(c.data.val, "/abs/val.txt");
  CU_ASSERT_EQUAL(c.data.val_fraction, 0.0);
  CU_ASSERT_EQUAL(c.batch, 8);
  CU_ASSERT_EQUAL(c.seq_len, 256);
  CU_ASSERT_EQUAL(c.precision, 1);
  CU_ASSERT_EQUAL(c.memory_budget, 12.0 * 1073741824.0);
  CU_ASSERT_EQUAL(c.steps, 300);
  CU_ASSERT_EQUAL(c.n_stages, 2);
  CU_ASSERT_EQUAL(c.stages[0].steps, 100);
  CU_ASSERT_EQUAL(c.stages[0].train, LMN_TRAIN_EDGES);
  CU_ASSERT_EQUAL(c.stages[1].steps, 200);
  CU_ASSERT_EQUAL(c.stages[1].train, LMN_TRAIN_ALL);
  CU_ASSERT_EQUAL(c.optimizer.lr, 6e-4);
  CU_ASSERT_EQUAL(c.optimizer.betas[0], 0.8);
  CU_ASSERT_EQUAL(c.optimizer.betas[1], 0.99);
  CU_ASSERT_EQUAL(c.optimizer.eps, 1e-6);
  CU_ASSERT_EQUAL(c.optimizer.weight_decay, 0.1);
  CU_ASSERT_EQUAL(c.optimizer.no_decay, LMN_PARAM_BIAS | LMN_PARAM_NORM | LMN_PARAM_EMBEDDING);
  CU_ASSERT_EQUAL(c.schedule.warmup, 30);
  CU_ASSERT_EQUAL(c.schedule.decay, LMN_DECAY_LINEAR);
  CU_ASSERT_EQUAL(c.schedule.min_lr, 6e-5);
  CU_ASSERT_EQUAL(c.grad_clip, 0.5);
  CU_ASSERT_EQUAL(c.eval.every, 50);
  CU_ASSERT_EQUAL(c.eval.batches, 4);
  snprintf(want, sizeof want, "%s/ckpt", t.dir);
  CU_ASSERT_STRING_EQUAL(c.checkpoint.dir, want);
  CU_ASSERT_EQUAL(c.checkpoint.every, 100);
  CU_ASSERT_EQUAL(c.checkpoint.keep, 2);
  CU_ASSERT_EQUAL(c.checkpoint.minutes, 2.5);
  CU_ASSERT(c.seed == UINT64_MAX);
  CU_ASSERT_EQUAL(c.threads, 2);
  CU_ASSERT_EQUAL(c.log.every, 10);
  CU_ASSERT_STRING_EQUAL(c.path, t.path);
  lmn_config_free(&c);
  lmn_config_free(&c); /* twice is harmless */
  tmp_remove(&t);
}

static void test_defaults(void) {
  tmp t;
  lmn_train_config c;
  if (load_ok(&t, minimal, &c)) return tmp_remove(&t);
  CU_ASSERT_PTR_NULL(c.data.val);
  CU_ASSERT_EQUAL(c.data.val_fraction, 0.05);
  CU_ASSERT_EQUAL(c.n_stages, 1);
  CU_ASSERT_EQUAL(c.stages[0].steps, 10);
  CU_ASSERT_EQUAL(c.stages[0].train, LMN_TRAIN_ALL);
  CU_ASSERT_EQUAL(c.optimizer.lr, 3e-4);
  CU_ASSERT_EQUAL(c.optimizer.betas[0], 0.9);
  CU_ASSERT_EQUAL(c.optimizer.betas[1], 0.95);
  CU_ASSERT_EQUAL(c.optimizer.eps, 1e-8);
  CU_ASSERT_EQUAL(c.optimizer.weight_decay, 0.0);
  CU_ASSERT_EQUAL(c.optimizer.no_decay, LMN_PARAM_BIAS); /* the official path: biases exempt */
  CU_ASSERT_EQUAL(c.schedule.warmup, 0);
  CU_ASSERT_EQUAL(c.schedule.decay, LMN_DECAY_COSINE);
  CU_ASSERT_EQUAL(c.schedule.min_lr, 0.0);
  CU_ASSERT_EQUAL(c.grad_clip, 1.0);
  CU_ASSERT_EQUAL(c.eval.every, 100);
  CU_ASSERT_EQUAL(c.eval.batches, 20);
  CU_ASSERT_EQUAL(c.checkpoint.every, 0);
  CU_ASSERT_EQUAL(c.checkpoint.keep, 3);
  CU_ASSERT_EQUAL(c.checkpoint.minutes, 15);
  CU_ASSERT(c.seed == 1337);
  CU_ASSERT_EQUAL(c.threads, 0);
  CU_ASSERT_EQUAL(c.log.every, 1);
  CU_ASSERT_EQUAL(c.sample.every, 0);
  CU_ASSERT_PTR_NULL(c.sample.prompt);
  CU_ASSERT_EQUAL(c.sample.tokens, 64);
  CU_ASSERT_EQUAL(c.sample.temperature, 0.8);
  CU_ASSERT_EQUAL(c.sample.top_k, 40);
  CU_ASSERT_EQUAL(c.sample.top_p, 0.95);
  char want[256];
  snprintf(want, sizeof want, "%s/checkpoints", t.dir);
  CU_ASSERT_STRING_EQUAL(c.checkpoint.dir, want);
  lmn_config_free(&c);
  tmp_remove(&t);
}

static void test_relative_paths(void) {
  tmp t;
  tmp_make(&t);
  char sub[128], path[192];
  snprintf(sub, sizeof sub, "%s/conf", t.dir);
  CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0700), 0);
  snprintf(path, sizeof path, "%s/run.yaml", sub);
  write_text(path, "data: {train: ../corpus/a.txt, val: b.txt}\nbatch: 1\nseq_len: 8\nsteps: 1\n"
                   "checkpoint: {dir: /var/tmp/ck}\n");
  lmn_train_config c;
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL_FATAL(lmn_config_load(path, &c, &err), 0);
  char want[256];
  snprintf(want, sizeof want, "%s/../corpus/a.txt", sub);
  CU_ASSERT_STRING_EQUAL(c.data.train, want);
  snprintf(want, sizeof want, "%s/b.txt", sub);
  CU_ASSERT_STRING_EQUAL(c.data.val, want);
  CU_ASSERT_STRING_EQUAL(c.checkpoint.dir, "/var/tmp/ck");
  lmn_config_free(&c);
  /* A file named without a directory resolves against the current one: the names stay as written. */
  char cwd[512];
  CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
  CU_ASSERT_EQUAL_FATAL(chdir(sub), 0);
  CU_ASSERT_EQUAL(lmn_config_load("run.yaml", &c, &err), 0);
  CU_ASSERT_STRING_EQUAL(c.data.train, "../corpus/a.txt");
  CU_ASSERT_STRING_EQUAL(c.checkpoint.dir, "/var/tmp/ck");
  lmn_config_free(&c);
  CU_ASSERT_EQUAL(chdir(cwd), 0);
  tmp_remove(&t);
}

static void test_stages(void) {
  tmp t;
  lmn_train_config c;
  const char *yaml = "data: {train: x.txt, val_fraction: 0.1}\n"
                     "batch: 2\n"
                     "seq_len: 16\n"
                     "stages:\n"
                     "  - steps: 5\n"
                     "    train: edges\n"
                     "  - steps: 7\n"
                     "    train: [a, b->c, block]\n"
                     "  - {steps: 3}\n";
  if (load_ok(&t, yaml, &c)) return tmp_remove(&t);
  CU_ASSERT_EQUAL(c.data.val_fraction, 0.1);
  CU_ASSERT_EQUAL(c.steps, 15);
  CU_ASSERT_EQUAL_FATAL(c.n_stages, 3);
  CU_ASSERT_EQUAL(c.stages[0].train, LMN_TRAIN_EDGES);
  CU_ASSERT_EQUAL(c.stages[1].train, LMN_TRAIN_NAMES);
  CU_ASSERT_EQUAL_FATAL(c.stages[1].n_names, 3);
  CU_ASSERT_STRING_EQUAL(c.stages[1].names[0], "a");
  CU_ASSERT_STRING_EQUAL(c.stages[1].names[1], "b->c");
  CU_ASSERT_STRING_EQUAL(c.stages[1].names[2], "block");
  CU_ASSERT_EQUAL(c.stages[1].pos.line, 8);
  CU_ASSERT_EQUAL(c.stages[1].pos.col, 12);
  CU_ASSERT_EQUAL(c.stages[1].name_pos[1].line, 8);
  CU_ASSERT_EQUAL(c.stages[1].name_pos[1].col, 16);
  CU_ASSERT_EQUAL(c.stages[2].train, LMN_TRAIN_ALL);
  long first = -1;
  CU_ASSERT_EQUAL(lmn_config_stage_at(&c, 0, &first), 0);
  CU_ASSERT_EQUAL(first, 0);
  CU_ASSERT_EQUAL(lmn_config_stage_at(&c, 4, &first), 0);
  CU_ASSERT_EQUAL(lmn_config_stage_at(&c, 5, &first), 1);
  CU_ASSERT_EQUAL(first, 5);
  CU_ASSERT_EQUAL(lmn_config_stage_at(&c, 11, NULL), 1);
  CU_ASSERT_EQUAL(lmn_config_stage_at(&c, 12, &first), 2);
  CU_ASSERT_EQUAL(first, 12);
  CU_ASSERT_EQUAL(lmn_config_stage_at(&c, 99, NULL), 2);
  lmn_config_free(&c);
  tmp_remove(&t);
  /* steps given with stages must agree with them */
  tmp t2;
  if (load_ok(&t2, "data: {train: x}\nbatch: 1\nseq_len: 1\nsteps: 12\nstages: [{steps: 12, train: all}]\n",
              &c) == 0)
    CU_ASSERT_EQUAL(c.steps, 12);
  lmn_config_free(&c);
  tmp_remove(&t2);
}

static void test_print_round_trip(void) {
  tmp t;
  lmn_train_config a, b;
  const char *yaml = "data: {train: x.txt}\nbatch: 3\nseq_len: 33\n"
                     "stages: [{steps: 4, train: edges}, {steps: 6, train: [\"we\\\"ird\", plain]}]\n"
                     "optimizer: {lr: 0.001, betas: [0.5, 0.75], eps: 1e-7, weight_decay: 0.2, no_decay: []}\n"
                     "schedule: {warmup: 2, decay: constant, min_lr: 1e-5}\nseed: 7\n"
                     "init_from: ck/step-000009.safetensors\n"
                     "sample: {every: 5, prompt: \"Once\\n\\\"upon\\\"\", tokens: 9, temperature: 0, top_k: 0, "
                     "top_p: 1}\n";
  if (load_ok(&t, yaml, &a)) return tmp_remove(&t);
  CU_ASSERT_STRING_EQUAL(a.sample.prompt, "Once\n\"upon\"");
  char out[192];
  snprintf(out, sizeof out, "%s/printed.yaml", t.dir);
  FILE *f = fopen(out, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  lmn_config_print(&a, f);
  fclose(f);
  lmn_err err = {{0}};
  int rc = lmn_config_load(out, &b, &err);
  if (rc) fprintf(stderr, "\n  reload: %s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_STRING_EQUAL(a.data.train, b.data.train);
  CU_ASSERT_EQUAL(a.optimizer.no_decay, 0);
  CU_ASSERT_EQUAL(b.optimizer.no_decay, 0);
  CU_ASSERT_EQUAL(a.data.val_fraction, b.data.val_fraction);
  CU_ASSERT_EQUAL(a.steps, b.steps);
  CU_ASSERT_EQUAL(b.n_stages, 2);
  CU_ASSERT_EQUAL(b.stages[1].n_names, 2);
  CU_ASSERT_STRING_EQUAL(b.stages[1].names[0], "we\"ird");
  CU_ASSERT_EQUAL(a.optimizer.lr, b.optimizer.lr);
  CU_ASSERT_EQUAL(a.optimizer.betas[1], b.optimizer.betas[1]);
  CU_ASSERT_EQUAL(a.optimizer.eps, b.optimizer.eps);
  CU_ASSERT_EQUAL(b.schedule.decay, LMN_DECAY_CONSTANT);
  CU_ASSERT_EQUAL(a.schedule.min_lr, b.schedule.min_lr);
  CU_ASSERT_STRING_EQUAL(a.checkpoint.dir, b.checkpoint.dir);
  CU_ASSERT(b.seed == 7);
  CU_ASSERT_STRING_EQUAL(a.init_from, b.init_from);
  CU_ASSERT_PTR_NOT_NULL(strstr(b.init_from, "/ck/step-000009.safetensors"));
  CU_ASSERT_EQUAL(b.sample.every, 5);
  CU_ASSERT_STRING_EQUAL(b.sample.prompt, "Once\n\"upon\"");
  CU_ASSERT_EQUAL(b.sample.tokens, 9);
  CU_ASSERT_EQUAL(b.sample.temperature, 0.0);
  CU_ASSERT_EQUAL(b.sample.top_k, 0);
  CU_ASSERT_EQUAL(b.sample.top_p, 1.0);
  lmn_config_free(&a);
  lmn_config_free(&b);
  tmp_remove(&t);
}

static void test_unknown_key(void) {
  expect_error("data: {train: x}\n"
               "batch: 1\n"
               "seq_len: 1\n"
               "steps: 1\n"
               "optimizer:\n"
               "  lr: 0.1\n"
               "  lrr: 0.2\n",
               "7:3: error: unknown key 'lrr' in 'optimizer' (did you mean 'lr'?)");
  expect_error("data: {train: x}\nbacth: 1\n", "2:1: error: unknown key 'bacth' (did you mean 'batch'?)");
  expect_error("data: {train: x}\nschedule: {warmpu: 3}\n",
               "2:12: error: unknown key 'warmpu' in 'schedule' (did you mean 'warmup'?)");
  expect_error(
      "data: {train: x}\noptimizer: {momentum: 0.9}\n",
      "2:13: error: unknown key 'momentum' in 'optimizer' (expected lr, betas, eps, weight_decay or no_decay)");
  expect_error("data: {train: x}\nbatch: 1\nseq_len: 1\nstages:\n  - {steps: 1, trian: all}\n",
               "5:16: error: unknown key 'trian' in 'stages[0]' (did you mean 'train'?)");
}

static void test_wrong_type(void) {
  expect_error("data: {train: x}\nbatch: abc\n", "2:8: error: 'batch' must be an integer, got 'abc'");
  expect_error("data: {train: x}\nbatch: 2.5\n", "2:8: error: 'batch' must be an integer, got '2.5'");
  expect_error("data: {train: x}\nbatch: \"32\"\n",
               "2:8: error: 'batch' must be an integer, got the string \"32\"");
  expect_error("data: {train: x}\noptimizer: {lr: fast}\n",
               "2:17: error: 'optimizer.lr' must be a number, got 'fast'");
  expect_error("data: {train: x}\noptimizer: {lr: .nan}\n",
               "2:17: error: 'optimizer.lr' must be a number, got '.nan'");
  expect_error("data: {train: x}\noptimizer: 3\n",
               "2:12: error: 'optimizer' must be a mapping of keys to values, got '3'");
  expect_error("data: {train: [a, b]}\n", "1:15: error: 'data.train' must be a path, got a list");
  expect_error("data: {train: x}\nbatch:\n", "2:7: error: 'batch' must be an integer, got nothing");
  expect_error("data: {train: x}\nseed: -1\n", "2:7: error: 'seed' must be an unsigned integer, got '-1'");
  expect_error("data: {train: x}\noptimizer: {no_decay: bias}\n",
               "2:23: error: 'optimizer.no_decay' must be a list of bias, norm, embedding (or []), got 'bias'");
  expect_error("data: {train: x}\noptimizer: {no_decay: [bias, biass]}\n",
               "2:30: error: unknown tensor kind 'biass' (did you mean 'bias'?)");
  expect_error("data: {train: x}\noptimizer: {no_decay: [norm, norm]}\n",
               "2:30: error: 'optimizer.no_decay' lists 'norm' twice");
  expect_error("data: {train: x}\noptimizer: {betas: 0.9}\n",
               "2:20: error: 'optimizer.betas' must be a list of two numbers [beta1, beta2], got '0.9'");
  expect_error("data: {train: x}\noptimizer: {betas: [0.9]}\n",
               "2:20: error: 'optimizer.betas' must be a list of two numbers [beta1, beta2], got 1 item");
  expect_error("- a\n- b\n",
               "1:1: error: 'the configuration' must be a mapping of keys to values, got a list");
}

static void test_missing(void) {
  tmp t;
  tmp_make(&t);
  char path[192], want[320];
  snprintf(path, sizeof path, "%s/nope.yaml", t.dir);
  lmn_train_config c;
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL(lmn_config_load(path, &c, &err), -1);
  snprintf(want, sizeof want, "%s: error: cannot open: No such file or directory", path);
  CU_ASSERT_STRING_EQUAL(err.msg, want);
  CU_ASSERT_EQUAL(lmn_config_load(t.dir, &c, &err), -1); /* a directory */
  snprintf(want, sizeof want, "%s: error: is a directory, not a regular file", t.dir);
  CU_ASSERT_STRING_EQUAL(err.msg, want);
  lmn_config_free(&c);
  tmp_remove(&t);
  expect_error("batch: 1\nseq_len: 1\nsteps: 1\n", "1:1: error: missing required key 'data'");
  expect_error("data: {train: x}\nseq_len: 1\nsteps: 1\n", "1:1: error: missing required key 'batch'");
  expect_error("data:\n  val: v\nbatch: 1\n", "2:3: error: missing required key 'train' in 'data'");
  expect_error("data: {train: x}\nbatch: 1\nseq_len: 1\n",
               "1:1: error: missing required key 'steps' (or 'stages')");
  expect_error("data: {train: x}\nbatch: 1\nseq_len: 1\nstages: [{train: all}]\n",
               "4:10: error: missing required key 'steps' in 'stages[0]'");
  expect_error("", " error: empty configuration (expected a mapping with data, batch, seq_len, steps)");
  expect_error("# nothing\n",
               " error: empty configuration (expected a mapping with data, batch, seq_len, steps)");
}

static void test_out_of_range(void) {
  const char *head = "data: {train: x}\nbatch: 2\nseq_len: 8\n";
  char y[512];
  snprintf(y, sizeof y, "%ssteps: 0\n", head);
  expect_error(y, "4:8: error: 'steps' must be at least 1, got 0");
  expect_error("data: {train: x}\nbatch: 0\n", "2:8: error: 'batch' must be at least 1, got 0");
  snprintf(y, sizeof y, "%ssteps: 10\noptimizer: {lr: -1e-3}\n", head);
  expect_error(y, "5:17: error: 'optimizer.lr' must be at least 0, got -1e-3");
  snprintf(y, sizeof y, "%ssteps: 10\noptimizer: {betas: [0.9, 1.0]}\n", head);
  expect_error(y, "5:26: error: 'optimizer.betas[1]' must be in [0, 1), got 1.0");
  snprintf(y, sizeof y, "%ssteps: 10\nschedule: {warmup: 11}\n", head);
  expect_error(y, "5:20: error: 'schedule.warmup' (11) exceeds the total steps (10)");
  snprintf(y, sizeof y, "%ssteps: 10\noptimizer: {lr: 1e-4}\nschedule: {min_lr: 2e-4}\n", head);
  expect_error(y, "6:20: error: 'schedule.min_lr' (0.0002) exceeds 'optimizer.lr' (0.0001)");
  snprintf(y, sizeof y, "%ssteps: 10\ngrad_clip: -1\n", head);
  expect_error(y, "5:12: error: 'grad_clip' must be at least 0, got -1");
  expect_error("data: {train: x, val_fraction: 1}\n",
               "1:32: error: 'data.val_fraction' must be in (0, 1), got 1");
  expect_error("data: {train: x, val_fraction: 0}\n",
               "1:32: error: 'data.val_fraction' must be in (0, 1), got 0");
  expect_error("data: {train: x}\nthreads: 5000\n", "2:10: error: 'threads' must be at most 4096, got 5000");
  expect_error("data: {train: x}\nsteps: 99999999999999999999\n",
               "2:8: error: 'steps' must be an integer, got '99999999999999999999'");
  snprintf(y, sizeof y, "%ssteps: 10\nschedule: {decay: cosin}\n", head);
  expect_error(y, "5:19: error: unknown decay 'cosin' (did you mean 'cosine'?)");
  snprintf(y, sizeof y, "%ssteps: 10\nschedule: {decay: step}\n", head);
  expect_error(y, "5:19: error: unknown decay 'step' (expected cosine, linear or constant)");
  snprintf(y, sizeof y, "%ssteps: 10\nprecision: bf15\n", head);
  expect_error(y, "5:12: error: unknown precision 'bf15' (did you mean 'bf16'?)");
  snprintf(y, sizeof y, "%ssteps: 10\nprecision: double\n", head);
  expect_error(y, "5:12: error: unknown precision 'double' (expected f32 or bf16)");
  snprintf(y, sizeof y, "%ssteps: 10\nmemory: {budget: 12 GB}\n", head);
  expect_ok_budget(y, 12e9);
  snprintf(y, sizeof y, "%ssteps: 10\nmemory: {budget: 1048576}\n", head);
  expect_ok_budget(y, 1048576.0);
  snprintf(y, sizeof y, "%ssteps: 10\nmemory: {budget: 12 parsecs}\n", head);
  expect_error(y,
               "5:18: error: 'memory.budget' must be a size such as 12GiB, 512MiB, 800MB or a number of "
               "bytes, got '12 parsecs'");
  snprintf(y, sizeof y, "%ssteps: 10\nmemory: {budget: 0}\n", head);
  expect_error(y, "5:18: error: 'memory.budget' must be at least 1, got 0");
  snprintf(y, sizeof y, "%ssteps: 10\nmemory: {budgets: 1G}\n", head);
  expect_error(y, "5:10: error: unknown key 'budgets' in 'memory' (did you mean 'budget'?)");
}

static void test_cross_checks(void) {
  expect_error("data: {train: x, val: y, val_fraction: 0.1}\nbatch: 1\nseq_len: 1\nsteps: 1\n",
               "1:40: error: give 'data.val' or 'data.val_fraction', not both");
  expect_error("data: {train: x}\nbatch: 1\nseq_len: 1\nsteps: 9\nstages: [{steps: 4}, {steps: 4}]\n",
               "4:8: error: 'steps' is 9 but the stages add up to 8 (give one, or make them agree)");
  expect_error("data: {train: x}\nbatch: 1\nbatch: 2\n",
               "3:1: error: duplicate key 'batch' (first given at 2:1)");
  expect_error("data: {train: x}\nbatch: 1\nseq_len: 1\nstages: []\n",
               "4:9: error: 'stages' lists no stages");
  expect_error(
      "data: {train: x}\nbatch: 1\nseq_len: 1\nstages: [{steps: 1, train: edgs}]\n",
      "4:28: error: 'stages[0].train' must be edges, all or a list of names, got 'edgs' (did you mean "
      "'edges'?)");
  expect_error("data: {train: x}\nbatch: 1\nseq_len: 1\nstages: [{steps: 1, train: [a, b, a]}]\n",
               "4:35: error: 'stages[0].train' lists 'a' twice");
  expect_error("data: {train: x}\nbatch: 1\nseq_len: 1\nstages: [{steps: 1, train: []}]\n",
               "4:28: error: 'stages[0].train' lists no names");
}

typedef struct changes {
  int n, breaking;
  char text[1024];
} changes;

static void on_change(void *ctx, const char *key, const char *was, const char *now, int breaking) {
  changes *c = ctx;
  size_t used = strlen(c->text);
  snprintf(c->text + used, sizeof c->text - used, "%s: %s -> %s%s\n", key, was, now, breaking ? " !" : "");
  c->n++, c->breaking += breaking;
}

/* The settings of two loaded configs as lmn_config_compare sees them. */
static void compare(const char *yaml_a, const char *yaml_b, changes *c) {
  tmp ta, tb;
  lmn_train_config a, b;
  memset(c, 0, sizeof *c);
  if (load_ok(&ta, yaml_a, &a) == 0 && load_ok(&tb, yaml_b, &b) == 0) {
    char *x = lmn_config_text(&a), *y = lmn_config_text(&b);
    CU_ASSERT_FATAL(x && y);
    CU_ASSERT_EQUAL(lmn_config_compare(x, y, on_change, c), c->breaking);
    CU_ASSERT_EQUAL(lmn_config_compare(x, x, NULL, NULL), 0);
    free(x), free(y);
  }
  lmn_config_free(&a), lmn_config_free(&b);
  tmp_remove(&ta), tmp_remove(&tb);
}

static void test_compare(void) {
  changes c;
  compare("data: {train: /d/c.txt}\ncheckpoint: {dir: /d/ck}\nbatch: 4\nseq_len: 8\nsteps: 10\noptimizer: {lr: 0.001}\nlog: {every: 2}\n",
          "data: {train: /d/c.txt}\ncheckpoint: {dir: /d/ck}\nbatch: 4\nseq_len: 8\nsteps: 10\noptimizer: {lr: 0.002}\nthreads: 3\n", &c);
  CU_ASSERT_STRING_EQUAL(c.text, "optimizer.lr: 0.001 -> 0.002 !\nthreads: 0 -> 3\nlog.every: 2 -> 1\n");
  CU_ASSERT_EQUAL(c.breaking, 1);
  compare("data: {train: /d/c.txt}\ncheckpoint: {dir: /d/ck}\nbatch: 4\nseq_len: 8\nstages: [{steps: 4, train: edges}, {steps: 6}]\n",
          "data: {train: /d/c.txt, val: /d/v.txt}\ncheckpoint: {dir: /d/ck}\nbatch: 4\nseq_len: 8\nstages: [{steps: 4}, {steps: 6}]\n", &c);
  CU_ASSERT_EQUAL(c.n, 3); /* data.val_fraction gone, data.val new, the stages */
  CU_ASSERT_EQUAL(c.breaking, 3);
  CU_ASSERT_PTR_NOT_NULL(strstr(c.text, "stages: {steps: 4, train: edges}; {steps: 6, train: all} -> "
                                        "{steps: 4, train: all}; {steps: 6, train: all} !\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(c.text, "data.val: (absent) -> "));
}

static void test_yaml_syntax(void) {
  expect_error("data: {train: x\nbatch: 1\n",
               "2:6: error: did not find expected ',' or '}' (while parsing a flow mapping at 1:7)");
  expect_error("batch: 1\n  seq_len: 2\n", "2:10: error: mapping values are not allowed in this context");
  expect_error("data: {train: x}\n---\nbatch: 1\n",
               "2:1: error: a second YAML document; a configuration is one document");
  expect_error("data: {train: *nope}\n", "1:15: error: found undefined alias");
}

static CU_TestInfo tests[] = {
    {"every key is read", test_every_key},
    {"defaults of a minimal file", test_defaults},
    {"relative paths resolve against the file's directory", test_relative_paths},
    {"stages: steps summed, names kept with places", test_stages},
    {"print then load gives the same values", test_print_round_trip},
    {"unknown keys: place and suggestion", test_unknown_key},
    {"wrong types", test_wrong_type},
    {"missing file and missing keys", test_missing},
    {"out-of-range values and bad names", test_out_of_range},
    {"checks across keys", test_cross_checks},
    {"YAML syntax errors", test_yaml_syntax},
    {"two runs' settings compared", test_compare},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("config", tests)
