/* test_twin.c: parity of the C that lmnc generates with the PyTorch twin (tests/reference/torch_twin.py), a
 * second implementation written from the LMNet semantics, in the style of llm.c's test_gpt2.c. Every
 * tests/twin/NAME.lmn is compiled by lmnc and linked in through the generated registry.h; its fixture
 * tests/twin/NAME.twin.safetensors (made by `make twin-fixtures`, see tests/twin/README.md) holds the state
 * `NAME dump-state` wrote (every tensor, one batch, the AdamW settings) and what the twin computed from it.
 * For each family the test loads that state into the compiled network and compares, per tensor:
 *   output   the primary output of forward(train = 0) (logits without the prefix rows, or class logits)
 *   loss     forward(train = 1)
 *   grads    the gradient of every trainable tensor after backward
 *   train    the loss of each of the fixture's AdamW steps on the same batch (lmn_net_update with the
 *            fixture's lr, betas, eps, weight decay, clipping), and the loss after the last step
 * Errors: abs = max |ours - twin| over a tensor; rel = abs / max(max |twin|, floor), the error relative to
 * the tensor's largest magnitude. Each check must stay within the tolerances below; the worst error of each
 * check and the tensor it came from are printed per family. The twin computes in float64, so what is
 * measured is our float32 error. The fixture directory is tests/twin, or $LMN_TWIN_DIR. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "data.h"
#include "driver.h"
#include "dump.h"
#include "harness.h"
#include "net.h"
#include "registry.h"
#include "safetensors.h"

/* Tolerances. The gradient's denominator is the tensor's largest |g| but at least GRAD_SCALE x the largest
 * |g| of the whole network: float32 resolves a gradient 1000x below the largest one no better than that, and
 * the q/k weights of a nearly uniform attention have such gradients. */
#define OUT_TOL 1e-5    /* output: rel (to the largest |logit|) */
#define OUT_FLOOR 1e-6  /* the output's denominator at least this */
#define LOSS_TOL 1e-5   /* loss: abs */
#define GRAD_TOL 1e-4   /* every gradient tensor: rel */
#define GRAD_SCALE 1e-3 /* see above */
#define TRAIN_TOL 1e-4  /* each AdamW-step loss: abs (sign-like first Adam steps amplify rounding) */

typedef struct Worst {
  double err;
  char what[128];
} Worst;

static void note(Worst *w, double err, const char *what) {
  if (err > w->err || !w->what[0]) {
    w->err = err;
    snprintf(w->what, sizeof w->what, "%s", what);
  }
}

typedef struct Fixture {
  lmn_st *st;
  int B, T, prefix, classes, steps;
  double lr, beta1, beta2, eps, wd, clip;
  const char *primary;
  int32_t *tokens, *targets;
} Fixture;

static const lmn_net_desc *find_desc(const char *name) {
  for (int i = 0; registry[i]; i++)
    if (!strcmp(registry[i]->name, name)) return registry[i];
  return NULL;
}

static double meta_num(const Fixture *f, const char *key) {
  const char *v = lmn_st_meta(f->st, key);
  if (!v) fprintf(stderr, "  fixture: no metadata '%s'\n", key);
  CU_ASSERT_FATAL(v != NULL);
  return strtod(v, NULL);
}

/* The F32 tensor name with n floats into a malloc'ed array. */
static float *load_floats(const Fixture *f, const char *name, size_t n) {
  const lmn_st_tensor *t = lmn_st_find(f->st, name);
  if (!t || t->dtype != LMN_ST_F32 || (size_t)t->nelems != n)
    fprintf(stderr, "  fixture: tensor '%s' missing or not %zu floats\n", name, n);
  CU_ASSERT_FATAL(t != NULL && t->dtype == LMN_ST_F32 && (size_t)t->nelems == n);
  float *x = malloc((n ? n : 1) * sizeof *x);
  CU_ASSERT_FATAL(x != NULL);
  lmn_err err = {{0}};
  int rc = lmn_st_tensor_read(f->st, t, 0, x, n * sizeof *x, &err);
  if (rc) fprintf(stderr, "  %s\n", err.msg);
  CU_ASSERT_FATAL(rc == 0);
  return x;
}

static int32_t *load_ints(const Fixture *f, const char *name, size_t n) {
  float *x = load_floats(f, name, n);
  int32_t *y = malloc((n ? n : 1) * sizeof *y);
  CU_ASSERT_FATAL(y != NULL);
  for (size_t i = 0; i < n; i++) y[i] = (int32_t)x[i];
  free(x);
  return y;
}

static void open_fixture(const lmn_net_desc *d, Fixture *f) {
  const char *dir = getenv("LMN_TWIN_DIR") ? getenv("LMN_TWIN_DIR") : "tests/twin";
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.twin.safetensors", dir, d->name);
  lmn_err err = {{0}};
  memset(f, 0, sizeof *f);
  if (lmn_st_open(path, LMN_ST_READ, &f->st, &err)) fprintf(stderr, "  %s\n", err.msg);
  CU_ASSERT_FATAL(f->st != NULL);
  const char *fmt = lmn_st_meta(f->st, "format"), *hash = lmn_st_meta(f->st, "hash");
  CU_ASSERT_FATAL(fmt && !strcmp(fmt, "lmnet-twin"));
  char want[32];
  snprintf(want, sizeof want, "%016llx", (unsigned long long)d->hash);
  if (!hash || strcmp(hash, want))
    fprintf(stderr, "  %s: made for network hash %s, %s.lmn now hashes to %s: run `make twin-fixtures`\n",
            path, hash ? hash : "?", d->name, want);
  CU_ASSERT_FATAL(hash && !strcmp(hash, want));
  f->B = (int)meta_num(f, "batch");
  f->T = (int)meta_num(f, "seq");
  f->prefix = (int)meta_num(f, "prefix");
  f->classes = (int)meta_num(f, "classes");
  f->steps = (int)meta_num(f, "train_steps");
  f->lr = meta_num(f, "lr");
  f->beta1 = meta_num(f, "beta1");
  f->beta2 = meta_num(f, "beta2");
  f->eps = meta_num(f, "eps");
  f->wd = meta_num(f, "weight_decay");
  f->clip = meta_num(f, "grad_clip");
  f->primary = lmn_st_meta(f->st, "primary_output");
  CU_ASSERT_FATAL(f->primary != NULL && f->prefix == d->prefix && f->classes == d->classes);
  size_t n = (size_t)f->B * f->T;
  f->tokens = load_ints(f, "batch:tokens", n);
  f->targets = load_ints(f, "batch:targets", d->classes > 0 ? (size_t)f->B : n);
}

static void close_fixture(Fixture *f) {
  lmn_st_close(f->st);
  free(f->tokens);
  free(f->targets);
}

static size_t numel(const lmn_param_info *p) {
  return (size_t)p->rows * (size_t)(p->cols ? p->cols : 1);
}

/* max |a - b| and that over max(max |b|, floor). */
static void compare(const float *a, const float *b, size_t n, double floor, double *abs_err,
                    double *rel_err) {
  double m = 0, big = 0;
  for (size_t i = 0; i < n; i++) {
    m = fmax(m, fabs((double)a[i] - (double)b[i]));
    big = fmax(big, fabs((double)b[i]));
  }
  *abs_err = m;
  *rel_err = m / fmax(big, floor);
}

static lmn_net *net_from_fixture(const lmn_net_desc *d, const Fixture *f) {
  lmn_net *net = NULL;
  lmn_err err = {{0}};
  if (lmn_net_create(&net, d, f->B, f->T, 1, 1, &err)) fprintf(stderr, "  %s\n", err.msg);
  CU_ASSERT_FATAL(net != NULL);
  for (int i = 0; i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    int64_t shape[2] = {p->rows, p->cols};
    if (lmn_st_load_f32(f->st, p->name, p->cols ? 2 : 1, shape, net->params + p->offset, &err))
      fprintf(stderr, "  %s\n", err.msg);
    CU_ASSERT_FATAL(lmn_st_find(f->st, p->name) != NULL);
  }
  return net;
}

/* The primary output of forward(train = 0) against the twin's (prefix rows dropped). */
static void check_output(lmn_net *net, const Fixture *f, Worst *w) {
  const lmn_net_desc *d = net->desc;
  net->desc->forward(net, f->tokens, f->targets, f->B, f->T, 0);
  const float *y = d->output(net, f->B, f->T);
  int C = d->classes > 0 ? d->classes : d->vocab;
  size_t rows = d->classes > 0 ? (size_t)f->B : (size_t)f->B * f->T;
  char name[96];
  snprintf(name, sizeof name, "out:%s", f->primary);
  float *want = load_floats(f, name, rows * C);
  float *got = malloc(rows * C * sizeof *got);
  CU_ASSERT_FATAL(got != NULL);
  if (d->classes > 0) {
    memcpy(got, y, rows * C * sizeof *got);
  } else {
    int P = d->prefix, TP = f->T + P; /* ours: [B, P + T] rows, the prefix rows first */
    for (int b = 0; b < f->B; b++)
      memcpy(got + (size_t)b * f->T * C, y + ((size_t)b * TP + P) * C, (size_t)f->T * C * sizeof *got);
  }
  double a, r;
  compare(got, want, rows * C, OUT_FLOOR, &a, &r);
  note(w, r, name);
  printf("    %-8s %-28s max abs %.3e  rel %.3e  (tol rel %.0e)\n", "output", name, a, r, OUT_TOL);
  CU_ASSERT(r <= OUT_TOL);
  free(want);
  free(got);
}

/* Loss and every trainable tensor's gradient. */
static void check_grads(lmn_net *net, const Fixture *f, Worst *wl, Worst *wg) {
  const lmn_net_desc *d = net->desc;
  lmn_net_zero_grad(net);
  float loss = d->forward(net, f->tokens, f->targets, f->B, f->T, 1);
  d->backward(net, f->tokens, f->B, f->T);
  float *want = load_floats(f, "loss", 1);
  double le = fabs((double)loss - want[0]);
  note(wl, le, "loss");
  printf("    %-8s ours %.7f  twin %.7f  abs %.3e  (tol %.0e)\n", "loss", loss, want[0], le, LOSS_TOL);
  CU_ASSERT(le <= LOSS_TOL);
  free(want);
  double gmax = 0; /* the largest |g| of the twin over every trainable tensor */
  for (int i = 0; i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    char name[160];
    snprintf(name, sizeof name, "grad:%s", p->name);
    if (!p->trainable || !lmn_st_find(f->st, name)) continue;
    float *g = load_floats(f, name, numel(p));
    for (size_t k = 0; k < numel(p); k++) gmax = fmax(gmax, fabs((double)g[k]));
    free(g);
  }
  int n_bad = 0, n_checked = 0;
  for (int i = 0; i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    char name[160];
    snprintf(name, sizeof name, "grad:%s", p->name);
    int in_fixture = lmn_st_find(f->st, name) != NULL;
    CU_ASSERT(in_fixture == p->trainable);
    if (!p->trainable || !in_fixture) continue;
    float *g = load_floats(f, name, numel(p));
    double a, r;
    compare(net->grads + p->offset, g, numel(p), fmax(GRAD_SCALE * gmax, 1e-30), &a, &r);
    note(wg, r, p->name);
    n_checked++;
    if (r > GRAD_TOL) {
      n_bad++;
      printf("    FAIL grad %-40s max abs %.3e  rel %.3e\n", p->name, a, r);
    }
    free(g);
  }
  printf("    %-8s %d tensors, largest |g| %.3e, worst rel %.3e in %s  (tol %.0e)\n", "grads", n_checked,
         gmax, wg->err, wg->what, GRAD_TOL);
  CU_ASSERT(n_bad == 0);
}

/* The fixture's AdamW steps on its batch: each step's loss, then the loss after the last one. */
static void check_training(lmn_net *net, const Fixture *f, Worst *w) {
  const lmn_net_desc *d = net->desc;
  float *want = load_floats(f, "train:losses", (size_t)f->steps),
        *fin = load_floats(f, "train:final_loss", 1);
  printf("    %-8s", "train");
  for (int s = 0; s <= f->steps; s++) {
    float loss;
    if (s < f->steps) {
      lmn_net_zero_grad(net);
      loss = d->forward(net, f->tokens, f->targets, f->B, f->T, 1);
      d->backward(net, f->tokens, f->B, f->T);
      lmn_net_update(net, (float)f->lr, (float)f->beta1, (float)f->beta2, (float)f->eps, (float)f->wd,
                     (float)f->clip);
    } else {
      loss = d->forward(net, f->tokens, f->targets, f->B, f->T, 0);
    }
    double e = fabs((double)loss - (s < f->steps ? want[s] : fin[0]));
    char what[32];
    snprintf(what, sizeof what, s < f->steps ? "step %d" : "after step %d", s < f->steps ? s + 1 : s);
    note(w, e, what);
    printf(" %.4f", loss);
    CU_ASSERT(e <= TRAIN_TOL);
  }
  printf("\n             twin losses %.4f .. %.4f: worst abs %.3e (%s)  (tol %.0e)\n", want[0], fin[0],
         w->err, w->what, TRAIN_TOL);
  free(want);
  free(fin);
}

static void run_family(const char *name) {
  const lmn_net_desc *d = find_desc(name);
  if (!d) fprintf(stderr, "  network %s is not in the registry\n", name);
  CU_ASSERT_FATAL(d != NULL);
  Fixture f;
  open_fixture(d, &f);
  printf("\n  %s: batch %d x %d%s, %s (%s)\n", name, f.B, f.T, d->prefix ? " after the prefix" : "",
         lmn_st_meta(f.st, "torch") ? "twin: torch" : "twin", lmn_st_meta(f.st, "torch"));
  Worst out = {0}, loss = {0}, grad = {0}, train = {0};
  lmn_net *net = net_from_fixture(d, &f);
  check_output(net, &f, &out);
  check_grads(net, &f, &loss, &grad);
  lmn_net_destroy(net);
  net = net_from_fixture(d, &f); /* training starts again from the fixture's weights and fresh moments */
  check_training(net, &f, &train);
  lmn_net_destroy(net);
  printf("  %s worst: output rel %.2e | loss abs %.2e | grad rel %.2e (%s) | train abs %.2e (%s)\n", name,
         out.err, loss.err, grad.err, grad.what, train.err, train.what);
  close_fixture(&f);
}

/* ======================================= dump-state ======================================= */

static void temp_path(char *buf, size_t cap) {
  snprintf(buf, cap, "%s/lmn_twin_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  int fd = mkstemp(buf);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
}

/* Every parameter of net, bit for bit, in the file st. */
static int same_params(const lmn_net *net, const lmn_st *st) {
  const lmn_net_desc *d = net->desc;
  int same = 1;
  for (int i = 0; i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    int64_t shape[2] = {p->rows, p->cols};
    float *x = malloc(numel(p) * sizeof *x);
    CU_ASSERT_FATAL(x != NULL);
    lmn_err err = {{0}};
    int ok = !lmn_st_load_f32(st, p->name, p->cols ? 2 : 1, shape, x, &err) &&
             !memcmp(x, net->params + p->offset, numel(p) * sizeof *x);
    if (!ok) fprintf(stderr, "  %s differs or is missing %s\n", p->name, err.msg);
    same &= ok;
    free(x);
  }
  return same;
}

/* lmn_dump_state: every tensor by name, the batch as exact floats, the metadata; bad batches refused. */
static void test_dump_roundtrip(void) {
  const lmn_net_desc *d = find_desc("twin_tiny"), *dc = find_desc("twin_classify");
  CU_ASSERT_FATAL(d && dc);
  enum { B = 2, T = 4 };
  lmn_net *net = NULL, *cnet = NULL;
  lmn_err err = {{0}};
  CU_ASSERT_FATAL(lmn_net_create(&net, d, B, T, 1, 7, &err) == 0);
  int32_t tokens[B * T] = {0, 1, 2, 255, 65, 66, 67, 10}, targets[B * T] = {1, 2, 255, -1, 66, 67, 10, 0};
  char path[256];
  temp_path(path, sizeof path);
  CU_ASSERT_FATAL(lmn_dump_state(net, tokens, targets, B, T, path, &err) == 0);
  lmn_st *st = NULL;
  CU_ASSERT_FATAL(lmn_st_open(path, LMN_ST_READ, &st, &err) == 0);
  CU_ASSERT(lmn_st_n_tensors(st) == (size_t)d->n_params + 2);
  CU_ASSERT(same_params(net, st));
  const lmn_st_tensor *tt = lmn_st_find(st, "batch:tokens"), *tg = lmn_st_find(st, "batch:targets");
  CU_ASSERT_FATAL(tt && tg && tt->n_dims == 2 && tt->shape[0] == B && tt->shape[1] == T && tg->n_dims == 2);
  float ft[B * T], fg[B * T];
  CU_ASSERT(lmn_st_tensor_read(st, tt, 0, ft, sizeof ft, &err) == 0);
  CU_ASSERT(lmn_st_tensor_read(st, tg, 0, fg, sizeof fg, &err) == 0);
  for (int i = 0; i < B * T; i++) CU_ASSERT(ft[i] == (float)tokens[i] && fg[i] == (float)targets[i]);
  char hash[32];
  snprintf(hash, sizeof hash, "%016llx", (unsigned long long)d->hash);
  const char *want[][2] = {{"format", LMN_DUMP_FORMAT},
                           {"network", "twin_tiny"},
                           {"hash", hash},
                           {"aggregate", "mean"},
                           {"batch", "2"},
                           {"seq", "4"},
                           {"prefix", "0"},
                           {"vocab", "256"},
                           {"classes", "0"},
                           {"targets", "next_tokens"},
                           {"step", "0"}};
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
    const char *v = lmn_st_meta(st, want[k][0]);
    if (!v || strcmp(v, want[k][1])) fprintf(stderr, "  meta %s = %s\n", want[k][0], v ? v : "(none)");
    CU_ASSERT(v && !strcmp(v, want[k][1]));
  }
  lmn_st_close(st);
  /* a token outside the vocabulary, a target below -1 */
  tokens[3] = 256;
  CU_ASSERT(lmn_dump_state(net, tokens, targets, B, T, path, &err) == -1);
  CU_ASSERT(strstr(err.msg, "tokens[3] = 256") != NULL);
  tokens[3] = 255, targets[0] = -2;
  CU_ASSERT(lmn_dump_state(net, tokens, targets, B, T, path, &err) == -1);
  CU_ASSERT(strstr(err.msg, "targets[0] = -2") != NULL);
  /* a classifier: labels [B] in [0, classes) */
  CU_ASSERT_FATAL(lmn_net_create(&cnet, dc, B, T, 1, 7, &err) == 0);
  int32_t labels[B] = {2, 0};
  CU_ASSERT_FATAL(lmn_dump_state(cnet, tokens, labels, B, T, path, &err) == 0);
  CU_ASSERT_FATAL(lmn_st_open(path, LMN_ST_READ, &st, &err) == 0);
  tg = lmn_st_find(st, "batch:targets");
  CU_ASSERT(tg && tg->n_dims == 1 && tg->shape[0] == B);
  CU_ASSERT(lmn_st_meta(st, "targets") && !strcmp(lmn_st_meta(st, "targets"), "labels"));
  lmn_st_close(st);
  labels[1] = 3;
  CU_ASSERT(lmn_dump_state(cnet, tokens, labels, B, T, path, &err) == -1);
  CU_ASSERT(strstr(err.msg, "labels[1] = 3") != NULL);
  unlink(path);
  lmn_net_destroy(net);
  lmn_net_destroy(cnet);
}

/* `NAME dump-state -c CONFIG -o FILE` through lmn_main: the seeded network of the config, its first training
 * batch (the one `train` starts with), the optimizer settings; a usage error exits 2. */
static void test_dump_command(void) {
  const lmn_net_desc *d = find_desc("twin_tiny");
  CU_ASSERT_FATAL(d != NULL);
  const char *dir = getenv("LMN_TWIN_DIR") ? getenv("LMN_TWIN_DIR") : "tests/twin";
  char cfg_path[1024], path[256];
  snprintf(cfg_path, sizeof cfg_path, "%s/twin_lm.yaml", dir);
  temp_path(path, sizeof path);
  char *argv[] = {"twin_tiny", "dump-state", "-c", cfg_path, "-o", path, NULL};
  CU_ASSERT_FATAL(lmn_main(6, argv, d) == 0);
  char *no_out[] = {"twin_tiny", "dump-state", "-c", cfg_path, NULL};
  CU_ASSERT(lmn_main(4, no_out, d) == 2);

  lmn_train_config cfg;
  lmn_err err = {{0}};
  CU_ASSERT_FATAL(lmn_config_load(cfg_path, &cfg, &err) == 0);
  lmn_st *st = NULL;
  CU_ASSERT_FATAL(lmn_st_open(path, LMN_ST_READ, &st, &err) == 0);
  const char *weights = lmn_st_meta(st, "weights"), *lr = lmn_st_meta(st, "lr");
  CU_ASSERT(lr && strtod(lr, NULL) == cfg.optimizer.lr);
  CU_ASSERT(lmn_st_meta(st, "stage_train") && !strcmp(lmn_st_meta(st, "stage_train"), "all"));
  lmn_net *net = NULL;
  CU_ASSERT_FATAL(lmn_net_create(&net, d, (int)cfg.batch, (int)cfg.seq_len, 1, cfg.seed, &err) == 0);
  if (weights && !strcmp(weights, "seeded initialisation")) {
    CU_ASSERT(same_params(net, st));
  } else {
    printf("\n  note: %s took its weights from %s: not compared with the seeded ones\n", cfg_path, weights);
  }
  /* the first training batch */
  lmn_data data = {0};
  lmn_data_opts o;
  lmn_data_opts_from_config(&o, &cfg, NULL);
  CU_ASSERT_FATAL(lmn_data_open(&data, &o, &err) == 0);
  size_t n = (size_t)cfg.batch * cfg.seq_len;
  int32_t *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  float *fx = malloc(n * sizeof *fx), *fy = malloc(n * sizeof *fy);
  CU_ASSERT_FATAL(x && y && fx && fy);
  lmn_data_state ds;
  lmn_data_state_init(&ds, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, cfg.seed);
  CU_ASSERT_FATAL(lmn_data_next(&data, &ds, cfg.batch, cfg.seq_len, x, y, &err) == 0);
  int64_t shape[2] = {cfg.batch, cfg.seq_len};
  CU_ASSERT(lmn_st_load_f32(st, "batch:tokens", 2, shape, fx, &err) == 0);
  CU_ASSERT(lmn_st_load_f32(st, "batch:targets", 2, shape, fy, &err) == 0);
  for (size_t i = 0; i < n; i++) CU_ASSERT(fx[i] == (float)x[i] && fy[i] == (float)y[i]);
  free(x), free(y), free(fx), free(fy);
  lmn_data_close(&data);
  lmn_net_destroy(net);
  lmn_st_close(st);
  lmn_config_free(&cfg);
  unlink(path);
}

static void test_tiny(void) {
  run_family("twin_tiny");
}
static void test_dag(void) {
  run_family("twin_dag");
}
static void test_classify(void) {
  run_family("twin_classify");
}
static void test_gpt2_e2e(void) {
  run_family("twin_gpt2");
}
static void test_hetero(void) {
  run_family("twin_hetero");
}
static void test_qwen2(void) {
  run_family("twin_qwen2");
}
static void test_joined(void) {
  run_family("twin_joined");
}

/* Every network of the registry has a test above. */
static void test_registry_covered(void) {
  static const char *const families[] = {"twin_tiny",   "twin_dag",   "twin_classify", "twin_gpt2",
                                         "twin_hetero", "twin_qwen2", "twin_joined"};
  for (int i = 0; registry[i]; i++) {
    int found = 0;
    for (size_t k = 0; k < sizeof families / sizeof families[0]; k++)
      found |= !strcmp(families[k], registry[i]->name);
    if (!found) fprintf(stderr, "  %s has no test in test_twin.c\n", registry[i]->name);
    CU_ASSERT(found);
  }
}

static CU_TestInfo tests[] = {
    {"tiny: llama, shared trainable, mean", test_tiny},
    {"dag: skip, mlp, identity, unshared, sum, aux loss", test_dag},
    {"classify: [1,2,1], class head", test_classify},
    {"gpt2_e2e: gpt2, prefix, long skip, smoothing", test_gpt2_e2e},
    {"hetero: llama + qwen2 widths, frozen vertices", test_hetero},
    {"qwen2: biases, NEOX RoPE, untied head", test_qwen2},
    {"joined: three chains summed before one head, init identity", test_joined},
    {"every twin network has a test", test_registry_covered},
    {"lmn_dump_state: tensors, batch, metadata, refusals", test_dump_roundtrip},
    {"dump-state command: seeded weights, first training batch", test_dump_command},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("twin", tests)
