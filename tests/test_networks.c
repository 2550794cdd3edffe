/* test_networks.c: whole-network correctness of the C that lmnc generates (the acceptance tests of code
 * generation). Every tests/networks/NAME.lmn is compiled by lmnc and linked in through the generated
 * registry.h; for every network of the registry:
 *   gradients   every trainable tensor against central finite differences of the float32 loss, along a
 *               random unit direction, along a direction mixing the gradient with a random one, and at
 *               GC_COORDS single coordinates (the largest-gradient one first); the relative error
 *               |fd - g.u| / max(|fd|, |g.u|, floor) must stay <= GC_TOL, where floor = GC_NOISE_ULPS ulps
 *               of the loss / (2 GC_TOL step): below it a derivative is judged absolutely, as float32
 *               resolves no better. Steps: GC_DIR_STEP of the tensor's norm, GC_COORD_STEP of max(|x|, 1),
 *               halved (with Richardson extrapolation) where the loss is too curved over the step; see
 *               fd_error. The embedding, when trainable, is checked like any tensor, so the gradient that
 *               reaches the input messages is checked through it.
 *   updates     after an AdamW step (lr 1e-2, weight decay 0.1) frozen tensors are bit-identical and every
 *               trainable tensor moved (each has a nonzero gradient); after lmn_net_select (edges only, then
 *               one edge type by name) every unselected tensor is bit-identical and keeps a zero gradient.
 *   cache       LM networks, over their whole context: logits of cached decoding (a prefill of P tokens
 *               then one at a time, one at a time from position 0, the whole sequence at once, a prefill
 *               then the rest as one chunk) against the rows of a full forward: max |diff| <= CACHE_TOL.
 *   determinism two forward+backward runs give identical bits; 1 vs 2 threads within THREAD_TOL (relative
 *               to the largest gradient); the loss of forward(train = 0) equals that of train = 1 (LOSS_TOL).
 *   batch       the output rows of each sequence of a batch equal those of a forward of that sequence
 *               alone (within CACHE_TOL), and the batch loss is the mean over the valid rows of both
 *               (LOSS_TOL).
 *   loss        networks with one loss: the loss equals the (label-smoothed) cross-entropy recomputed in
 *               double from the output rows and the targets, within LOSS_TOL.
 *   training    TRAIN_STEPS AdamW steps at lr 1e-2 lower the loss of a fixed batch.
 * and for the pair agg_sum / agg_mean (identical but for `aggregate`): multiplying the last linear of every
 * edge into a vertex of in-degree k by k makes the mean network compute the sum network's loss, logits and
 * gradients (the scaled tensors' gradients divided by k) within AGG_TOL and AGG_GRAD_TOL.
 *   bf16        `precision: bf16` on every path the CPU runs: loss and gradients near f32's (BF16_*_TOL); on
 *               AMX, the same bits with the weights packed once (lmn_net_bpack) as packed per product.
 * Each check prints the worst error it saw per network. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "recompute.h"
#include "bgemm.h"
#include "harness.h"
#include "net.h"
#include "registry.h"
#include "rng.h"

enum { BATCH = 2, SEQ = 11, DEC_PROMPT = 5, GC_COORDS = 6, TRAIN_STEPS = 6 };

#define SEED 20250518u
#define GC_TOL 2e-2        /* relative error of a finite-difference derivative */
#define GC_DIR_STEP 1e-2   /* directional step: this fraction of the tensor's norm (>= 0.02 rms) */
#define GC_COORD_STEP 1e-2 /* coordinate step: this fraction of max(|x|, 1) */
#define GC_NOISE_ULPS 4    /* rounding noise of the float32 loss, in units in the last place of L */
#define GC_RETRIES 6       /* halvings of the step tried where a step fails */
#define CACHE_TOL 1e-5     /* absolute, on logits */
#define THREAD_TOL 1e-5    /* 1 vs 2 threads: loss (absolute) and gradients (relative to the largest) */
#define AGG_TOL 1e-6       /* sum vs scaled mean: loss and logits (absolute) */
#define AGG_GRAD_TOL 1e-5  /* sum vs scaled mean: gradients, relative to the largest */
#define LOSS_TOL 2e-6      /* losses computed two ways, relative to max(|L|, 1) */
#define LR 1e-2f

/* A fixed batch: tokens [BATCH*SEQ] and next-token targets (one of them -1, ignored) or labels [BATCH]. */
typedef struct Batch {
  int32_t tokens[BATCH * SEQ];
  int32_t targets[BATCH * SEQ];
} Batch;

static int is_lm(const lmn_net_desc *d) {
  return d->classes == 0;
}

static size_t numel(const lmn_param_info *p) {
  return (size_t)p->rows * (size_t)(p->cols ? p->cols : 1);
}

static float *dup_floats(const float *x, size_t n) {
  float *y = malloc((n ? n : 1) * sizeof *y);
  CU_ASSERT_FATAL(y != NULL);
  memcpy(y, x, n * sizeof *y);
  return y;
}

static void make_batch(const lmn_net_desc *d, Batch *b) {
  lmn_rng r;
  lmn_rng_seed(&r, SEED);
  for (int i = 0; i < BATCH * SEQ; i++) b->tokens[i] = (int32_t)lmn_rng_below(&r, (uint64_t)d->vocab);
  for (int i = 0; i < BATCH * SEQ; i++) {
    int in_seq = (i + 1) % SEQ != 0;
    b->targets[i] = in_seq ? b->tokens[i + 1] : (int32_t)lmn_rng_below(&r, (uint64_t)d->vocab);
  }
  b->targets[SEQ / 2] = -1;
  if (!is_lm(d))
    for (int i = 0; i < BATCH * SEQ; i++)
      b->targets[i] = i < BATCH ? (int32_t)lmn_rng_below(&r, (uint64_t)d->classes) : -1;
}

static lmn_net *new_net(const lmn_net_desc *d, int B, int T, int threads) {
  lmn_net *net = NULL;
  lmn_err err = {{0}};
  if (lmn_net_create(&net, d, B, T, threads, SEED, &err) != 0) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_FATAL(net != NULL);
  return net;
}

static float eval_loss(lmn_net *net, const Batch *b) {
  return net->desc->forward(net, b->tokens, b->targets, BATCH, SEQ, 0);
}

/* Loss of the batch with its gradient left in net->grads (zeroed first). */
static float loss_and_grad(lmn_net *net, const Batch *b) {
  lmn_net_zero_grad(net);
  float loss = net->desc->forward(net, b->tokens, b->targets, BATCH, SEQ, 1);
  net->desc->backward(net, b->tokens, BATCH, SEQ);
  return loss;
}

/* ======================================= gradient check ======================================= */

typedef struct GradWorst {
  double dir, coord;
  const char *dir_name, *coord_name;
} GradWorst;

static void note_worst(double err, const char *name, double *worst, const char **worst_name) {
  if (err > *worst) {
    *worst = err;
    *worst_name = name;
  }
}

/* Central difference quotient of the loss along u over x[0..n) with step eps; *an receives the analytic
 * g . u over the perturbation that float rounding actually realised. */
static double fd_quotient(lmn_net *net, const Batch *b, float *x, const float *g, const float *u, size_t n,
                          double eps, double *an) {
  float *save = dup_floats(x, n);
  *an = 0;
  for (size_t k = 0; k < n; k++) x[k] = (float)(save[k] + eps * u[k]);
  double lp = eval_loss(net, b);
  for (size_t k = 0; k < n; k++) {
    float xp = x[k];
    x[k] = (float)(save[k] - eps * u[k]);
    *an += (double)g[k] * ((double)xp - (double)x[k]) / (2 * eps);
  }
  double lm = eval_loss(net, b);
  memcpy(x, save, n * sizeof *x);
  free(save);
  return (lp - lm) / (2 * eps);
}

static double rel_error(double fd, double an, double floor) {
  return fabs(fd - an) / fmax(fmax(fabs(fd), fabs(an)), floor);
}

/* Relative error of the central difference with step eps, floored at noise / eps. Where that fails (the loss
 * is far from linear over the step: activations of tiny scale) or leaves little margin (above GC_TOL / 4),
 * halves the step up to GC_RETRIES times, also trying the Richardson extrapolation (4 D(h/2) - D(h)) / 3
 * that cancels the h^2 term. The floor of a smaller step is capped at 3x the first one's, so that retries
 * cannot pass a wrong gradient on the noise of tiny steps. Returns the smallest error. */
static double fd_error(lmn_net *net, const Batch *b, float *x, const float *g, const float *u, size_t n,
                       double eps, double noise) {
  const double floor0 = noise / eps;
  double an, fd = fd_quotient(net, b, x, g, u, n, eps, &an), err = rel_error(fd, an, floor0);
  int verbose = getenv("LMN_TEST_VERBOSE") != NULL;
  if (verbose) printf("      fd %+.6e  g.u %+.6e  eps %.2e\n", fd, an, eps);
  for (int r = 0; r < GC_RETRIES && err > GC_TOL / 4; r++) {
    double coarse = fd;
    eps /= 2;
    fd = fd_quotient(net, b, x, g, u, n, eps, &an);
    double rich = (4 * fd - coarse) / 3, floor = fmin(noise / eps, 3 * floor0);
    err = fmin(err, fmin(rel_error(fd, an, floor), rel_error(rich, an, floor)));
    if (verbose) printf("      fd %+.6e  g.u %+.6e  eps %.2e  extrapolated %+.6e\n", fd, an, eps, rich);
  }
  return err;
}

static double tensor_norm(const float *x, size_t n) {
  double s = 0;
  for (size_t k = 0; k < n; k++) s += (double)x[k] * x[k];
  return sqrt(s);
}

static void normalise(float *u, size_t n) {
  double s = tensor_norm(u, n);
  for (size_t k = 0; k < n; k++) u[k] = (float)(u[k] / s);
}

static void random_unit(lmn_rng *r, float *u, size_t n) {
  lmn_rng_fill_normal(r, u, n, 0.0f, 1.0f);
  normalise(u, n);
}

/* u = normalise(g/|g| + random unit): a direction along which the loss surely changes. */
static void mixed_unit(lmn_rng *r, const float *g, float *u, size_t n) {
  double gn = tensor_norm(g, n);
  random_unit(r, u, n);
  if (gn > 0)
    for (size_t k = 0; k < n; k++) u[k] += (float)(g[k] / gn);
  normalise(u, n);
}

static size_t argmax_abs(const float *g, size_t n) {
  size_t best = 0;
  for (size_t k = 1; k < n; k++)
    if (fabsf(g[k]) > fabsf(g[best])) best = k;
  return best;
}

static void check_tensor_grad(lmn_net *net, const Batch *b, const float *grads, int i, double noise,
                              GradWorst *w) {
  const lmn_param_info *p = &net->desc->params[i];
  size_t n = numel(p);
  float *x = net->params + p->offset, *u = malloc(n * sizeof *u);
  const float *g = grads + p->offset;
  lmn_rng r;
  CU_ASSERT_FATAL(u != NULL);
  lmn_rng_seed_stream(&r, SEED, (uint64_t)i);
  double eps = GC_DIR_STEP * fmax(tensor_norm(x, n), 0.02 * sqrt((double)n)), err;
  if (getenv("LMN_TEST_VERBOSE")) printf("    %s\n", p->name);
  random_unit(&r, u, n);
  note_worst(err = fd_error(net, b, x, g, u, n, eps, noise), p->name, &w->dir, &w->dir_name);
  CU_ASSERT(err <= GC_TOL);
  mixed_unit(&r, g, u, n);
  note_worst(err = fd_error(net, b, x, g, u, n, eps, noise), p->name, &w->dir, &w->dir_name);
  CU_ASSERT(err <= GC_TOL);
  const float one = 1.0f;
  for (int c = 0; c < GC_COORDS; c++) {
    size_t k = c == 0 ? argmax_abs(g, n) : (size_t)lmn_rng_below(&r, n);
    double h = GC_COORD_STEP * fmax(fabs(x[k]), 1.0);
    note_worst(err = fd_error(net, b, x + k, g + k, &one, 1, h, noise), p->name, &w->coord, &w->coord_name);
    if (err > GC_TOL) printf("    %s: coordinate %zu: relative error %.3g\n", p->name, k, err);
    CU_ASSERT(err <= GC_TOL);
  }
  free(u);
}

static void gradcheck_net(const lmn_net_desc *d) {
  Batch b;
  make_batch(d, &b);
  lmn_net *net = new_net(d, BATCH, SEQ, 1);
  /* noise: the loss difference below which a derivative is judged absolutely (tolerance GC_TOL * noise / eps
   * = GC_NOISE_ULPS / 2 ulps of the loss quotient), since the float32 loss moves in steps of one ulp */
  float loss = loss_and_grad(net, &b);
  double noise = GC_NOISE_ULPS * (nextafterf(loss, INFINITY) - loss) / (2 * GC_TOL);
  float *grads = dup_floats(net->grads, d->n_train);
  GradWorst w = {0, 0, "-", "-"};
  int n = 0;
  for (int i = 0; i < d->n_params; i++)
    if (d->params[i].trainable) {
      check_tensor_grad(net, &b, grads, i, noise, &w);
      n++;
    }
  printf("\n  grad  %-16s %3d tensors: worst direction %.2e (%s), worst coordinate %.2e (%s)", d->name, n,
         w.dir, w.dir_name, w.coord, w.coord_name);
  free(grads);
  lmn_net_destroy(net);
}

static void test_gradients(void) {
  for (int i = 0; registry[i]; i++) gradcheck_net(registry[i]);
}

/* ===================================== frozen tensors, stages ===================================== */

/* After one update from `before`: tensors outside `moving` are bit-identical, those inside changed. */
static void check_moved(lmn_net *net, const float *before, const char *moving, const char *what) {
  const lmn_net_desc *d = net->desc;
  int bad = 0;
  for (int i = 0; i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    int same = !memcmp(net->params + p->offset, before + p->offset, numel(p) * sizeof(float));
    if (same != !moving[i]) {
      printf("\n  %s %s: %s %s", d->name, what, p->name, same ? "did not move" : "moved although held still");
      bad++;
    }
  }
  CU_ASSERT(bad == 0);
}

/* Which tensors an update may move, by the current trainable mask; each of them needs a nonzero gradient. */
static void selected(lmn_net *net, char *moving) {
  const lmn_net_desc *d = net->desc;
  for (int i = 0; i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    moving[i] = (char)(p->trainable && net->trainable_mask[i]);
    double gn = p->trainable ? tensor_norm(net->grads + p->offset, numel(p)) : 0;
    if (moving[i] && gn == 0) printf("\n  %s: %s has a zero gradient", d->name, p->name);
    if (moving[i]) CU_ASSERT(gn > 0);
    if (p->trainable && !moving[i]) CU_ASSERT(gn == 0); /* an unselected tensor gets no gradient */
  }
}

static void update_and_check(lmn_net *net, const Batch *b, const char *what) {
  const lmn_net_desc *d = net->desc;
  char *moving = malloc((size_t)d->n_params + 1);
  CU_ASSERT_FATAL(moving != NULL);
  float *before = dup_floats(net->params, d->n_floats);
  loss_and_grad(net, b);
  selected(net, moving);
  lmn_net_update(net, LR, 0.9f, 0.999f, 1e-8f, 0.1f, 0);
  check_moved(net, before, moving, what);
  free(before);
  free(moving);
}

/* The owner of the last trainable edge tensor (an edge type, usually a named one): a stage that trains only
 * the edges of that type. */
static const char *edge_owner(const lmn_net_desc *d) {
  for (int i = d->n_params - 1; i >= 0; i--)
    if (d->params[i].trainable && d->params[i].edge >= 0) return d->params[i].owner;
  CU_FAIL_FATAL("no trainable edge");
  return NULL;
}

static void test_frozen(void) {
  for (int i = 0; registry[i]; i++) {
    const lmn_net_desc *d = registry[i];
    Batch b;
    lmn_err err = {{0}};
    make_batch(d, &b);
    lmn_net *net = new_net(d, BATCH, SEQ, 1);
    int frozen = 0, edges = 0;
    for (int k = 0; k < d->n_params; k++) frozen += !d->params[k].trainable, edges += d->params[k].edge >= 0;
    update_and_check(net, &b, "all");
    CU_ASSERT(lmn_net_select(net, 1, NULL, 0, &err) == 0);
    update_and_check(net, &b, "edges only");
    char *owner = (char *)edge_owner(d);
    CU_ASSERT(lmn_net_select(net, 0, &owner, 1, &err) == 0);
    update_and_check(net, &b, owner);
    printf("\n  frozen %-16s %3d tensors, %d frozen, %d of edges; stages all, edges, [%s]", d->name,
           d->n_params, frozen, edges, owner);
    lmn_net_destroy(net);
  }
}

/* ===================================== gradients final early ===================================== */

/* Data parallelism sends a tensor's gradient as soon as the backward step desc->grad_done names has run
 * (train.c): at that moment the gradient must already be what it is at the end. The hook copies each tensor's
 * gradient when its step is done; after the backward pass every copy equals the final gradient, bit for
 * bit, and every trainable tensor was copied (frozen ones are -1). */
typedef struct Early {
  lmn_net *net;
  float *copy; /* [n_train] */
  int copied, steps;
} Early;

static void copy_final(void *ctx, int step) {
  Early *e = ctx;
  const lmn_net_desc *d = e->net->desc;
  for (int k = 0; k < d->n_params; k++) {
    const lmn_param_info *p = &d->params[k];
    if (d->grad_done[k] != step) continue;
    memcpy(e->copy + p->offset, e->net->grads + p->offset, lmn_param_numel(p) * sizeof(float));
    e->copied++;
  }
  e->steps = step + 1;
}

static void test_grads_final(void) {
  for (int i = 0; registry[i]; i++) {
    const lmn_net_desc *d = registry[i];
    CU_ASSERT_FATAL(d->grad_done != NULL);
    Batch b;
    make_batch(d, &b);
    lmn_net *net = new_net(d, BATCH, SEQ, 2);
    Early e = {net, calloc(d->n_train + 1, sizeof(float)), 0, 0};
    CU_ASSERT_FATAL(e.copy != NULL);
    int trainable = 0, frozen_ok = 1;
    for (int k = 0; k < d->n_params; k++) {
      trainable += d->params[k].trainable;
      frozen_ok &= d->params[k].trainable || d->grad_done[k] == -1;
    }
    net->on_grads = copy_final;
    net->on_grads_ctx = &e;
    loss_and_grad(net, &b);
    net->on_grads = NULL;
    CU_ASSERT_EQUAL(e.copied, trainable);
    CU_ASSERT(frozen_ok);
    CU_ASSERT(memcmp(e.copy, net->grads, d->n_train * sizeof(float)) == 0);
    printf("\n  final %-16s %d backward steps, %d trainable tensors final before the end: %s", d->name,
           e.steps, trainable,
           memcmp(e.copy, net->grads, d->n_train * sizeof(float)) ? "CHANGED LATER" : "bit-identical");
    free(e.copy);
    lmn_net_destroy(net);
  }
}

/* ====================================== weight decay groups ====================================== */

/* One AdamW step with zero gradients (and zero moments) moves a tensor only by its decay: p(1 - lr wd) where
 * it decays, not at all where optimizer.no_decay exempts its kind. Every trainable tensor of every network,
 * for the default [bias], [bias, norm, embedding] and [] (all decay). */
static void test_weight_decay(void) {
  const float lr = 0.125f, wd = 0.5f;
  const unsigned masks[] = {LMN_NO_DECAY_DEFAULT, LMN_PARAM_BIAS | LMN_PARAM_NORM | LMN_PARAM_EMBEDDING, 0};
  for (int i = 0; registry[i]; i++) {
    const lmn_net_desc *d = registry[i];
    int kinds[3] = {0, 0, 0}, bad = 0;
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++) {
      lmn_net *net = new_net(d, BATCH, SEQ, 1);
      CU_ASSERT_EQUAL(net->no_decay, LMN_NO_DECAY_DEFAULT);
      net->no_decay = masks[m];
      float *before = dup_floats(net->params, d->n_train);
      CU_ASSERT_FATAL(lmn_net_zero_grad(net) == 0);
      lmn_net_update(net, lr, 0.9f, 0.95f, 1e-8f, wd, 0.0f);
      for (int k = 0; k < d->n_params; k++) {
        const lmn_param_info *p = &d->params[k];
        if (!p->trainable) continue;
        for (int b = 0; b < 3; b++) kinds[b] += m == 0 && (p->kind >> b & 1);
        float f = p->kind & masks[m] ? 1.0f : 1.0f - lr * wd;
        for (size_t j = 0; j < numel(p); j++) bad += net->params[p->offset + j] != before[p->offset + j] * f;
      }
      free(before);
      lmn_net_destroy(net);
    }
    printf(
        "\n  decay  %-16s %d bias, %d norm, %d embedding tensors; [bias], [bias, norm, embedding], []: %d "
        "off",
        d->name, kinds[0], kinds[1], kinds[2], bad);
    CU_ASSERT_EQUAL(bad, 0);
  }
}

/* ======================================= KV-cache decoding ======================================= */

static double max_abs_diff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t k = 0; k < n; k++) m = fmax(m, fabs((double)a[k] - b[k]));
  return m;
}

/* The rows of a full forward over seq[0..len) (batch 1), one per token (prefix rows skipped). */
static float *full_logits(lmn_net *net, const int32_t *seq, int len) {
  const lmn_net_desc *d = net->desc;
  int32_t *targets = calloc((size_t)len, sizeof *targets);
  CU_ASSERT_FATAL(targets != NULL);
  d->forward(net, seq, targets, 1, len, 0);
  free(targets);
  return dup_floats(d->output(net, 1, len) + (size_t)d->prefix * d->vocab, (size_t)len * d->vocab);
}

/* Decodes seq[0..len) as a prefill of `prompt` tokens, then (chunk set) the rest in one call or one token at
 * a time; returns the worst difference of every logits row it gets to the rows of full; leaves the last
 * logits in last. */
static double decode_against(lmn_net *net, const int32_t *seq, int len, int prompt, int chunk,
                             const float *full, float *last) {
  const int V = net->desc->vocab;
  net->desc->decode(net, seq, prompt, 0, last);
  double worst = max_abs_diff(last, full + (size_t)(prompt - 1) * V, (size_t)V);
  for (int t = prompt; t < len; t += chunk ? len - prompt : 1) {
    int n = chunk ? len - prompt : 1;
    net->desc->decode(net, seq + t, n, t, last);
    worst = fmax(worst, max_abs_diff(last, full + (size_t)(t + n - 1) * V, (size_t)V));
  }
  return worst;
}

/* Cached decoding over the network's whole context against full recomputation: a prefill of DEC_PROMPT
 * tokens then steps, steps from position 0, the whole sequence as one prefill, and a prefill followed by
 * the rest as one chunk. */
static void cache_net(const lmn_net_desc *d, int threads) {
  const size_t V = (size_t)d->vocab;
  const int len = d->ctx;
  int32_t *seq = malloc((size_t)len * sizeof *seq);
  lmn_err err = {{0}};
  lmn_rng r;
  CU_ASSERT_FATAL(seq != NULL);
  lmn_rng_seed(&r, SEED + 1);
  for (int t = 0; t < len; t++) seq[t] = (int32_t)lmn_rng_below(&r, V);
  lmn_net *net = new_net(d, 1, len, threads);
  float *full = full_logits(net, seq, len), *a = malloc(V * sizeof *a), *b = malloc(V * sizeof *b);
  CU_ASSERT_FATAL(a && b);
  CU_ASSERT_FATAL(lmn_net_enable_cache(net, len, &err) == 0);
  double prefill = decode_against(net, seq, len, DEC_PROMPT, 0, full, a);
  double steps = decode_against(net, seq, len, 1, 0, full, a);
  double whole = decode_against(net, seq, len, len, 0, full, b);
  double chunk = decode_against(net, seq, len, DEC_PROMPT, 1, full, b);
  double whole_vs_steps = max_abs_diff(a, b, V);
  printf(
      "\n  cache %-16s %d thread%s, %d positions: prefill %d + steps %.2e, steps %.2e, whole %.2e, chunk "
      "%.2e",
      d->name, threads, threads > 1 ? "s" : "", len, DEC_PROMPT, prefill, steps, whole, chunk);
  printf(" (last: whole vs steps %.2e)", whole_vs_steps);
  CU_ASSERT(prefill <= CACHE_TOL && steps <= CACHE_TOL && whole <= CACHE_TOL && chunk <= CACHE_TOL);
  CU_ASSERT(whole_vs_steps <= CACHE_TOL);
  free(full), free(a), free(b), free(seq);
  lmn_net_destroy(net);
}

static void test_cache(void) {
  for (int i = 0; registry[i]; i++)
    for (int threads = 1; threads <= 2 && is_lm(registry[i]); threads++) cache_net(registry[i], threads);
}

/* ========================================= determinism ========================================= */

static double max_rel_grad_diff(const float *a, const float *b, size_t n) {
  double m = 0, scale = 0;
  for (size_t k = 0; k < n; k++) m = fmax(m, fabs((double)a[k] - b[k])), scale = fmax(scale, fabs(a[k]));
  return scale > 0 ? m / scale : m;
}

static void determinism_net(const lmn_net_desc *d) {
  Batch b;
  make_batch(d, &b);
  lmn_net *one = new_net(d, BATCH, SEQ, 1), *two = new_net(d, BATCH, SEQ, 2);
  float l1 = loss_and_grad(one, &b);
  float *g1 = dup_floats(one->grads, d->n_train);
  float l1b = loss_and_grad(one, &b);
  CU_ASSERT(memcmp(&l1, &l1b, sizeof l1) == 0);
  CU_ASSERT(memcmp(g1, one->grads, d->n_train * sizeof(float)) == 0);
  float l2 = loss_and_grad(two, &b), l0 = eval_loss(one, &b);
  double dl = fabs((double)l1 - l2), dg = max_rel_grad_diff(g1, two->grads, d->n_train);
  printf("\n  determ %-16s repeat identical, 1 vs 2 threads: loss %.2e grads %.2e; eval vs train loss %.2e",
         d->name, dl, dg, fabs((double)l0 - l1));
  CU_ASSERT(dl <= THREAD_TOL && dg <= THREAD_TOL);
  CU_ASSERT(fabs((double)l0 - l1) <= LOSS_TOL * fmax(1.0, fabs(l1)));
  free(g1);
  lmn_net_destroy(one);
  lmn_net_destroy(two);
}

static void test_determinism(void) {
  for (int i = 0; registry[i]; i++) determinism_net(registry[i]);
}

/* ====================================== batch independence ====================================== */

/* Output rows of one sequence of the batch (prefix rows skipped) or its class logits. */
static const float *rows_of(lmn_net *net, int B, int b) {
  const lmn_net_desc *d = net->desc;
  const float *out = d->output(net, B, SEQ);
  if (!is_lm(d)) return out + (size_t)b * d->classes;
  return out + ((size_t)b * (SEQ + d->prefix) + d->prefix) * d->vocab;
}

static int valid_targets(const lmn_net_desc *d, const int32_t *targets) {
  int n = 0;
  for (int t = 0; t < (is_lm(d) ? SEQ : 1); t++) n += targets[t] >= 0;
  return n;
}

/* The batched forward against one forward per sequence: the same output rows, and the batch loss the mean
 * over the valid rows of both; and against the same batch on a network planned for the whole context. */
static void batch_net(const lmn_net_desc *d) {
  Batch b;
  make_batch(d, &b);
  const size_t rows = is_lm(d) ? (size_t)SEQ * d->vocab : (size_t)d->classes;
  lmn_net *net = new_net(d, BATCH, SEQ, 1);
  float batch_loss = eval_loss(net, &b), *batched[BATCH];
  for (int k = 0; k < BATCH; k++) batched[k] = dup_floats(rows_of(net, BATCH, k), rows);
  double worst = 0, sum = 0;
  int n = 0;
  for (int k = 0; k < BATCH; k++) {
    const int32_t *tok = b.tokens + (size_t)k * SEQ,
                  *tgt = is_lm(d) ? b.targets + (size_t)k * SEQ : b.targets + k;
    int nv = valid_targets(d, tgt);
    sum += (double)nv * d->forward(net, tok, tgt, 1, SEQ, 0);
    n += nv;
    worst = fmax(worst, max_abs_diff(batched[k], rows_of(net, 1, 0), rows));
    free(batched[k]);
  }
  double dl = fabs(sum / n - batch_loss);
  lmn_net *big = new_net(d, BATCH, d->ctx, 1);
  float big_loss = eval_loss(big, &b);
  eval_loss(net, &b);
  double dbig = 0;
  for (int k = 0; k < BATCH; k++)
    dbig = fmax(dbig, max_abs_diff(rows_of(net, BATCH, k), rows_of(big, BATCH, k), rows));
  printf(
      "\n  batch %-16s rows of a batch of %d vs alone %.2e, loss vs mean of losses %.2e, planned for T %d "
      "%.2e",
      d->name, BATCH, worst, dl, d->ctx, fmax(dbig, fabs((double)big_loss - batch_loss)));
  CU_ASSERT(worst <= CACHE_TOL && dl <= LOSS_TOL * fmax(1.0, batch_loss));
  CU_ASSERT(dbig == 0 && big_loss == batch_loss);
  lmn_net_destroy(big);
  lmn_net_destroy(net);
}

static void test_batch(void) {
  for (int i = 0; registry[i]; i++) batch_net(registry[i]);
}

/* ======================================== loss semantics ======================================== */

/* The loss statements of the network's .lmn (desc->source, relative to the repository root where `make unit`
 * runs the suite): returns their number and the label smoothing of the last one, or -1 when unreadable. */
static int read_losses(const lmn_net_desc *d, double *smoothing) {
  FILE *f = fopen(d->source, "r");
  char line[512];
  int n = 0;
  if (!f) return -1;
  *smoothing = 0;
  while (fgets(line, sizeof line, f)) {
    const char *s = strstr(line, "smoothing");
    if (strncmp(line, "loss ", 5)) continue;
    n++;
    *smoothing = s ? atof(s + strlen("smoothing")) : 0;
  }
  fclose(f);
  return n;
}

/* Cross-entropy with label smoothing eps of one row, in double (PyTorch's label_smoothing). */
static double xent_row(const float *z, int V, int y, double eps) {
  double m = z[0], s = 0, mean = 0;
  for (int j = 1; j < V; j++) m = fmax(m, z[j]);
  for (int j = 0; j < V; j++) s += exp(z[j] - m), mean += z[j];
  double lse = m + log(s);
  return (1 - eps) * (lse - z[y]) + eps * (lse - mean / V);
}

/* The loss of a single-loss network recomputed in double from its output logits and the targets: checks
 * that the loss reads the right rows (prefix rows dropped, last position for classes), targets and
 * smoothing. */
static void loss_net(const lmn_net_desc *d) {
  double eps = 0, sum = 0;
  int n_losses = read_losses(d, &eps), n = 0;
  if (n_losses != 1) {
    printf("\n  loss  %-16s skipped (%s)", d->name, n_losses < 0 ? "source not readable" : "several losses");
    return;
  }
  Batch b;
  make_batch(d, &b);
  lmn_net *net = new_net(d, BATCH, SEQ, 1);
  float loss = eval_loss(net, &b);
  const int lm = is_lm(d), width = lm ? d->vocab : d->classes;
  for (int k = 0; k < BATCH; k++)
    for (int t = 0; t < (lm ? SEQ : 1); t++) {
      int y = lm ? b.targets[k * SEQ + t] : b.targets[k];
      if (y < 0) continue;
      sum += xent_row(rows_of(net, BATCH, k) + (size_t)t * width, width, y, eps);
      n++;
    }
  double diff = fabs(sum / n - loss);
  printf("\n  loss  %-16s smoothing %.2f, %d rows: |L - reference| %.2e", d->name, eps, n, diff);
  CU_ASSERT(diff <= LOSS_TOL * fmax(1.0, fabs(loss)));
  lmn_net_destroy(net);
}

static void test_loss(void) {
  for (int i = 0; registry[i]; i++) loss_net(registry[i]);
}

/* =========================================== training =========================================== */

static void test_training(void) {
  for (int i = 0; registry[i]; i++) {
    const lmn_net_desc *d = registry[i];
    Batch b;
    make_batch(d, &b);
    lmn_net *net = new_net(d, BATCH, SEQ, 1);
    float first = loss_and_grad(net, &b);
    for (int s = 0; s < TRAIN_STEPS; s++) {
      lmn_net_update(net, LR, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f);
      loss_and_grad(net, &b);
    }
    float last = eval_loss(net, &b);
    printf("\n  train %-16s loss %.4f -> %.4f after %d steps", d->name, first, last, TRAIN_STEPS);
    CU_ASSERT(isfinite(last) && last < first - 0.01f);
    lmn_net_destroy(net);
  }
}

/* ================================== sum vs mean aggregation ================================== */

static const lmn_net_desc *find_net(const char *name) {
  for (int i = 0; registry[i]; i++)
    if (!strcmp(registry[i]->name, name)) return registry[i];
  return NULL;
}

/* The last linear of every edge into c (in-degree 2: a -> deep -> c, b -> lin -> c) and into d (in-degree 3:
 * a -> lin -> d, b -> deep -> d, c -> lin -> d), named from agg_*.lmn as lmnc names edge tensors (`lmnc ir`).
 */
static const struct {
  const char *name;
  float k;
} agg_scaled[] = {{"deep.a->c.m1.weight", 2}, {"deep.a->c.m1.bias", 2},  {"lin.b->c.m0.weight", 2},
                  {"lin.b->c.m0.bias", 2},    {"lin.a->d.m0.weight", 3}, {"lin.a->d.m0.bias", 3},
                  {"deep.b->d.m1.weight", 3}, {"deep.b->d.m1.bias", 3},  {"lin.c->d.m0.weight", 3},
                  {"lin.c->d.m0.bias", 3}};
enum { N_AGG_SCALED = sizeof agg_scaled / sizeof agg_scaled[0] };

/* The in-degree factor of parameter i of the mean network (1 when it is not scaled). */
static float agg_factor(const lmn_param_info *p) {
  for (int s = 0; s < N_AGG_SCALED; s++)
    if (!strcmp(p->name, agg_scaled[s].name)) return agg_scaled[s].k;
  return 1.0f;
}

static void scale_incoming(lmn_net *mean) {
  for (int s = 0; s < N_AGG_SCALED; s++) {
    const lmn_param_info *p = NULL;
    float *x = lmn_net_param(mean, agg_scaled[s].name, &p);
    if (!x) printf("\n  agg_mean: no parameter %s (did lmnc rename the edges?)", agg_scaled[s].name);
    CU_ASSERT_FATAL(x != NULL);
    for (size_t k = 0; k < numel(p); k++) x[k] *= agg_scaled[s].k;
  }
}

/* Gradients of the sum network against those of the scaled mean network times the in-degree factor. */
static double agg_grad_diff(const lmn_net *sum, const lmn_net *mean) {
  const lmn_net_desc *d = sum->desc;
  double m = 0, scale = 0;
  for (int i = 0; i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    float k = agg_factor(p);
    for (size_t e = p->offset; e < p->offset + numel(p); e++) {
      m = fmax(m, fabs((double)sum->grads[e] - (double)mean->grads[e] * k));
      scale = fmax(scale, fabs(sum->grads[e]));
    }
  }
  return m / scale;
}

static void test_aggregation(void) {
  const lmn_net_desc *ds = find_net("agg_sum"), *dm = find_net("agg_mean");
  CU_ASSERT_FATAL(ds && dm);
  CU_ASSERT_FATAL(ds->n_params == dm->n_params && ds->n_floats == dm->n_floats && ds->aggregate_mean == 0 &&
                  dm->aggregate_mean == 1);
  for (int i = 0; i < ds->n_params; i++) CU_ASSERT(!strcmp(ds->params[i].name, dm->params[i].name));
  Batch b;
  make_batch(ds, &b);
  lmn_net *sum = new_net(ds, BATCH, SEQ, 1), *mean = new_net(dm, BATCH, SEQ, 1);
  CU_ASSERT(memcmp(sum->params, mean->params, ds->n_floats * sizeof(float)) == 0);
  float l_sum = eval_loss(sum, &b), l_plain = eval_loss(mean, &b);
  scale_incoming(mean);
  float l_mean = eval_loss(mean, &b);
  double dlogit = max_abs_diff(ds->output(sum, BATCH, SEQ), dm->output(mean, BATCH, SEQ),
                               (size_t)BATCH * SEQ * ds->vocab);
  loss_and_grad(sum, &b);
  loss_and_grad(mean, &b);
  double dgrad = agg_grad_diff(sum, mean);
  printf("\n  agg   sum %.7f, mean %.7f, scaled mean %.7f: loss diff %.2e, logits %.2e, grads %.2e", l_sum,
         l_plain, l_mean, fabs((double)l_sum - l_mean), dlogit, dgrad);
  CU_ASSERT(l_sum != l_plain);
  CU_ASSERT(fabs((double)l_sum - l_mean) <= AGG_TOL && dlogit <= AGG_TOL && dgrad <= AGG_GRAD_TOL);
  lmn_net_destroy(sum);
  lmn_net_destroy(mean);
}

/* ======================================== gradient accumulation ======================================== */

/* The batch as BATCH micro-batches of one sequence each, their gradients accumulated with lmn_accum (the
 * path of `accumulate: N`), against the batch in one pass: loss and gradients equal within ACCUM_TOL (f32
 * summation order). The fixture's first sequence has one ignored target, so the micro-batches' weights
 * differ (10 and 11 targets for a language model). */
#define ACCUM_TOL 1e-5 /* relative to max(|L|, 1) and to the largest gradient */
static void accumulate_net(const lmn_net_desc *d) {
  Batch b;
  make_batch(d, &b);
  lmn_net *net = new_net(d, BATCH, SEQ, 1);
  float whole = loss_and_grad(net, &b);
  float *g = dup_floats(net->grads, d->n_train);
  const int lm = is_lm(d);
  lmn_net_zero_grad(net);
  lmn_accum acc = {0};
  double sum = 0;
  for (int k = 0; k < BATCH; k++) {
    const int32_t *tok = b.tokens + k * SEQ, *tgt = lm ? b.targets + k * SEQ : b.targets + k;
    double n = 0;
    for (int t = 0; t < (lm ? SEQ : 1); t++) n += tgt[t] >= 0;
    float l = d->forward(net, tok, tgt, 1, SEQ, 1);
    lmn_accum_before(net, &acc, n);
    d->backward(net, tok, 1, SEQ);
    lmn_accum_after(net, &acc, n);
    sum += (double)l * n;
  }
  double gmax = 0, gdiff = 0, ldiff = fabs(sum / acc.seen - whole);
  for (size_t i = 0; i < d->n_train; i++)
    gmax = fmax(gmax, fabs(g[i])), gdiff = fmax(gdiff, fabs(g[i] - net->grads[i]));
  printf("\n  accum %-16s %d micro-batches: loss diff %.2e, max grad diff %.2e of %.2e", d->name, BATCH,
         ldiff, gdiff, gmax);
  CU_ASSERT(ldiff <= ACCUM_TOL * fmax(1.0, fabs(whole)));
  CU_ASSERT(gdiff <= ACCUM_TOL * gmax);
  free(g);
  lmn_net_destroy(net);
}

static void test_accumulate(void) {
  for (int i = 0; registry[i]; i++) accumulate_net(registry[i]);
}

/* ====================================== bf16 precision ====================================== */

/* precision bf16 (bgemm.h) on every path this CPU runs against f32: the loss within BF16_LOSS_TOL relative
 * and the whole gradient within BF16_GRAD_TOL normwise (operands rounded to 8 significant bits, so errors of
 * a few 2^-9 per product, averaged over the sums). */
#define BF16_LOSS_TOL 2e-3
#define BF16_GRAD_TOL 2e-2
static void bf16_net(const lmn_net_desc *d, int path) {
  Batch b;
  make_batch(d, &b);
  lmn_net *net = new_net(d, BATCH, SEQ, 2);
  size_t n = d->n_train;
  float l32 = loss_and_grad(net, &b), *g = dup_floats(net->grads, n);
  lmn_set_gemm_precision(LMN_PREC_BF16);
  float l16 = loss_and_grad(net, &b);
  lmn_bpack *set = lmn_net_bpack(net); /* AMX: the same bits with the weights packed once */
  if (set) {
    float *g16 = dup_floats(net->grads, n);
    lmn_bpack_refresh(set, net->pool);
    lmn_bpack_use(set);
    float lp = loss_and_grad(net, &b);
    lmn_bpack_use(NULL);
    CU_ASSERT(lp == l16 && memcmp(g16, net->grads, n * sizeof *g16) == 0);
    printf(", %zu products from packed weights: same bits", lmn_bpack_hits(set));
    free(g16);
    lmn_bpack_free(set);
  }
  lmn_set_gemm_precision(LMN_PREC_F32);
  double num = 0, den = 0;
  for (size_t k = 0; k < n; k++) {
    double e = (double)net->grads[k] - g[k];
    num += e * e, den += (double)g[k] * g[k];
  }
  double lrel = fabs((double)l16 - l32) / fmax(1.0, fabs(l32)), grel = sqrt(num / fmax(den, 1e-300));
  printf("\n  bf16 %-8s %-16s loss %.5f vs %.5f (%.1e), gradient %.1e", lmn_bgemm_isa_name(path), d->name,
         l16, l32, lrel, grel);
  CU_ASSERT(lrel <= BF16_LOSS_TOL);
  CU_ASSERT(grel <= BF16_GRAD_TOL);
  free(g);
  lmn_net_destroy(net);
}

static void test_bf16(void) {
  for (int path = 0; path < LMN_BG_COUNT; path++) {
    if (lmn_bgemm_force_isa(path)) {
      printf("\n  bf16 path %s: not on this machine, skipped", lmn_bgemm_isa_name(path));
      continue;
    }
    for (int i = 0; registry[i]; i++) bf16_net(registry[i], path);
  }
  lmn_bgemm_force_isa(LMN_BG_AUTO);
}

/* ====================================== recomputation ====================================== */

/* Every keep op recomputing (the memory plan's extreme) against none: the loss, the whole gradient and the
 * outputs of an eval forward bit-identical, on 1 and 2 threads, in f32 and in bf16. */
static void recompute_net(const lmn_net_desc *d, int threads, lmn_precision prec) {
  Batch b;
  make_batch(d, &b);
  lmn_net *net = new_net(d, BATCH, SEQ, threads);
  size_t n = d->n_train;
  int n_keep = d->arena ? d->arena->n_keep : 0;
  CU_ASSERT_FATAL(d->arena != NULL);
  lmn_set_gemm_precision(prec);
  float kept = loss_and_grad(net, &b), *g = dup_floats(net->grads, n);
  char *all = malloc((size_t)n_keep + 1);
  memset(all, 1, (size_t)n_keep + 1);
  lmn_err err = {{0}};
  size_t before = lmn_net_arena_floats(d, BATCH, SEQ, threads, NULL);
  CU_ASSERT_FATAL(lmn_net_set_recompute(net, all, &err) == 0);
  size_t after = lmn_net_arena_floats(d, BATCH, SEQ, threads, net->recompute);
  float again = loss_and_grad(net, &b);
  int same = memcmp(&kept, &again, sizeof kept) == 0 && memcmp(g, net->grads, n * sizeof *g) == 0;
  lmn_set_gemm_precision(LMN_PREC_F32);
  printf(
      "\n  recompute %-16s %d thread%s %s: %d ops recompute, arena %zu -> %zu floats, loss and gradients %s",
      d->name, threads, threads > 1 ? "s" : "", prec == LMN_PREC_BF16 ? "bf16" : "f32 ", n_keep, before,
      after, same ? "bit-identical" : "DIFFER");
  CU_ASSERT(same);
  free(all);
  free(g);
  lmn_net_destroy(net);
}

/* The plan: for budgets between "everything recomputes" and "everything kept", what it chooses fits, and its
 * running total agrees with the layout; below the least possible it says it cannot fit. */
static void plan_net(const lmn_net_desc *d) {
  int n = d->arena->n_keep;
  char *rc = calloc((size_t)n + 1, 1), *all = malloc((size_t)n + 1);
  memset(all, 1, (size_t)n + 1);
  double fixed = lmn_net_fixed_bytes(d, 0);
  double most = fixed + 4.0 * (double)lmn_net_arena_floats(d, BATCH, SEQ, 2, NULL);
  double least = fixed + 4.0 * (double)lmn_net_arena_floats(d, BATCH, SEQ, 2, all);
  CU_ASSERT(least < most);
  for (int k = 0; k <= 4; k++) {
    double budget = least + (most - least) * k / 4.0;
    CU_ASSERT(lmn_recompute_plan(d->arena, BATCH, SEQ + d->prefix, 2, fixed, budget, rc) == 1);
    CU_ASSERT(fixed + 4.0 * (double)lmn_net_arena_floats(d, BATCH, SEQ, 2, rc) <= budget);
  }
  CU_ASSERT(lmn_recompute_plan(d->arena, BATCH, SEQ + d->prefix, 2, fixed, least - 1, rc) == 0);
  free(rc);
  free(all);
}

static void test_recompute(void) {
  for (int i = 0; registry[i]; i++) plan_net(registry[i]);
  for (int i = 0; registry[i]; i++) {
    recompute_net(registry[i], 1, LMN_PREC_F32);
    recompute_net(registry[i], 2, LMN_PREC_F32);
    if (lmn_bgemm_isa() == LMN_BG_AMX) recompute_net(registry[i], 2, LMN_PREC_BF16);
  }
}

static CU_TestInfo tests[] = {
    {"every trainable tensor matches finite differences", test_gradients},
    {"frozen and unselected tensors are not updated", test_frozen},
    {"each gradient is final after the backward step grad_done names", test_grads_final},
    {"weight decay skips the kinds optimizer.no_decay lists", test_weight_decay},
    {"KV-cache decoding equals full recomputation", test_cache},
    {"repeatable bits, 1 vs 2 threads", test_determinism},
    {"sequences of a batch are independent", test_batch},
    {"the loss is the cross-entropy of the output rows", test_loss},
    {"training steps lower the loss", test_training},
    {"mean with edges scaled by the in-degree is sum", test_aggregation},
    {"micro-batches accumulate to the gradients of their batch", test_accumulate},
    {"bf16 precision: loss and gradients near f32's", test_bf16},
    {"the memory plan fits; recomputed activations give bit-identical gradients", test_recompute},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("networks", tests)
