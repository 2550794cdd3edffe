/* net.c: the network-independent half of a compiled network: buffers for parameters, gradients, AdamW
 * moments, activations and KV caches; from-scratch initialisation (HF-like: N(0, 0.02) weights, zero
 * biases, unit norm gains); training-stage selection; global-norm clipping and the AdamW step. */
#include "net.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bgemm.h"
#include "kernels.h"
#include "qnet.h"
#include "recompute.h"
#include "rng.h"

static float *alloc_floats(size_t n) {
  void *p = NULL;
  if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0) return NULL;
  memset(p, 0, (n ? n : 1) * sizeof(float));
  return p;
}

/* The activation arena: zero pages mapped on demand, so a region a plan never touches costs no memory and
 * replacing the arena (lmn_net_plan_memory) never holds two touched arenas at once. */
static float *map_arena(size_t n) {
  void *p =
      mmap(NULL, (n ? n : 1) * sizeof(float), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void unmap_arena(float *a, size_t n) {
  if (a) munmap(a, (n ? n : 1) * sizeof(float));
}

/* N(mean, std) of another tensor (the embedding statistics the fixed prefix is drawn from). */
static void init_like(lmn_net *net, int i_param, lmn_rng *r) {
  const lmn_param_info *p = &net->desc->params[i_param];
  const lmn_param_info *src = &net->desc->params[p->like];
  long rows = src->cols ? src->rows : 1, cols = src->cols ? src->cols : src->rows;
  float *row = malloc((size_t)cols * sizeof *row);
  double sum = 0, sq = 0;
  for (long i = 0; row && i < rows; i++) { /* row by row: the source may be kept in a file format */
    lmn_net_param_rows(net, p->like, i, 1, row);
    for (long k = 0; k < cols; k++) sum += row[k], sq += (double)row[k] * row[k];
  }
  free(row);
  size_t n = (size_t)rows * (size_t)cols;
  double mean = n ? sum / (double)n : 0, var = n ? sq / (double)n - mean * mean : 0;
  lmn_rng_fill_normal(r, net->params + net->poff[i_param], (size_t)p->rows * (size_t)(p->cols ? p->cols : 1),
                      (float)mean, (float)sqrt(var > 0 ? var : 0));
}

void lmn_net_init_derived(lmn_net *net, uint64_t seed) {
  const lmn_net_desc *d = net->desc;
  for (int i = 0; i < d->n_params; i++) {
    if (d->params[i].init != LMN_INIT_EMBED_STATS || d->params[i].like < 0) continue;
    lmn_rng r;
    lmn_rng_seed_stream(&r, seed, (uint64_t)i);
    init_like(net, i, &r);
  }
}

static void init_params(lmn_net *net, uint64_t seed) {
  const lmn_net_desc *d = net->desc;
  for (int i = 0; i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    if (p->from_file && d->n_models > 0) continue; /* loaded from the model file right after */
    float *x = net->params + net->poff[i];
    size_t n = (size_t)p->rows * (size_t)(p->cols ? p->cols : 1);
    lmn_rng r;
    lmn_rng_seed_stream(&r, seed, (uint64_t)i); /* one stream per tensor: independent of layout */
    if (p->init == LMN_INIT_NORMAL)
      lmn_rng_fill_normal(&r, x, n, 0.0f, 0.02f);
    else if (p->init == LMN_INIT_ONE)
      for (size_t k = 0; k < n; k++) x[k] = 1.0f;
    else
      memset(x, 0, n * sizeof(float));
    if (p->init == LMN_INIT_IDENTITY) /* zeroed above; a square matrix (lmnc checks) */
      for (long k = 0; k < p->rows && k < p->cols; k++) x[(size_t)k * (size_t)p->cols + (size_t)k] = 1.0f;
  }
  lmn_net_init_derived(net, seed);
}

/* Fails when the network's `floats` floats in all would take more than 90% of the machine's memory. */
static int check_memory(const lmn_net_desc *d, double floats, int B, int T, const char *what, lmn_err *err) {
  double need = floats * sizeof(float);
  double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
  if (have > 0 && need > 0.9 * have)
    return lmn_errf(
        err,
        "%s: batch %d x %d needs %.2f GiB of memory%s but the machine has %.2f GiB; lower batch or "
        "seq_len",
        d->name, B, T, need / (1 << 30), what, have / (1 << 30));
  return 0;
}

size_t lmn_net_arena_floats(const lmn_net_desc *d, int B, int T, int nt, const char *rc) {
  if (!d->arena) return d->arena_floats(B, T, nt);
  lmn_arena a;
  lmn_arena_layout(d->arena, B, T + d->prefix, nt, rc, &a);
  return a.total;
}

static int n_keep(const lmn_net_desc *d) {
  return d->arena ? d->arena->n_keep : 0;
}

double lmn_net_fixed_bytes(const lmn_net_desc *d, double kept_bytes) {
  return lmn_fixed_bytes(lmn_desc_f32_floats(d), d->n_train, kept_bytes);
}

/* Bytes of the frozen weights the network keeps in their files' formats (qnet.c). */
static double kept_bytes(const lmn_net *net) {
  double b = 0;
  for (int i = 0; net->qw && i < net->desc->n_params; i++)
    if (net->qw[i].data) b += (double)net->qw[i].rows * (double)net->qw[i].row_bytes;
  return b;
}

size_t lmn_desc_plan(const lmn_net_desc *d, int B, int T, int nt, double budget_bytes, double kept_bytes, char *rc) {
  if (n_keep(d) == 0) return lmn_net_arena_floats(d, B, T, nt, NULL);
  if (budget_bytes <= 0) budget_bytes = lmn_default_budget();
  if (budget_bytes > 0)
    lmn_recompute_plan(d->arena, B, T + d->prefix, nt, lmn_net_fixed_bytes(d, kept_bytes), budget_bytes, rc);
  return lmn_net_arena_floats(d, B, T, nt, rc);
}

void lmn_print_plan(FILE *f, const lmn_net_desc *d, int B, int T, int nt, const char *rc, double budget_bytes,
                    const char *from, int always) {
  if (n_keep(d) == 0) return;
  if (budget_bytes <= 0) budget_bytes = lmn_default_budget();
  double Tp = (double)(T + d->prefix);
  lmn_recompute_print(f, d->arena, B, T + d->prefix, nt, rc, budget_bytes, from,
                      d->flops_bt + d->flops_btt * Tp + d->flops_b / Tp, always);
}

/* The default plan: everything that fits in LMN_DEFAULT_BUDGET_FRACTION of the machine's memory kept. */
static void default_plan(lmn_net *net) {
  net->budget = lmn_default_budget();
  net->budget_from = LMN_DEFAULT_BUDGET_FROM;
  lmn_desc_plan(net->desc, net->B, net->T, net->n_threads, net->budget, 0, net->recompute);
}

int lmn_net_create(lmn_net **out, const lmn_net_desc *desc, int B, int T, int n_threads, uint64_t seed,
                   lmn_err *err) {
  *out = NULL;
  if (B < 1 || T < 1 || T > desc->ctx)
    return lmn_errf(err, "%s: batch %d x sequence %d is outside 1..%d positions", desc->name, B, T,
                    desc->ctx);
  lmn_net *net = calloc(1, sizeof *net);
  char *rc = calloc((size_t)n_keep(desc) + 1, 1);
  if (!net || !rc) {
    free(net);
    free(rc);
    return lmn_errf(err, "%s: out of memory", desc->name);
  }
  net->desc = desc;
  net->B = B;
  net->T = T;
  net->n_threads = n_threads < 1 ? 1 : n_threads;
  net->no_decay = LMN_NO_DECAY_DEFAULT;
  net->recompute = rc;
  default_plan(net);
  size_t arena = lmn_net_arena_floats(desc, B, T, net->n_threads, net->recompute);
  if (check_memory(desc, (double)lmn_desc_f32_floats(desc) + (double)arena, B, T, "", err)) {
    lmn_net_destroy(net);
    return -1;
  }
  if (lmn_qnet_plan(net, err) != 0) {
    lmn_net_destroy(net);
    return -1;
  }
  net->params = alloc_floats(net->n_f32);
  net->arena = map_arena(arena);
  net->arena_n = arena;
  net->trainable_mask = calloc((size_t)desc->n_params + 1, 1);
  net->pool = lmn_pool_create(net->n_threads, err);
  if (!net->params || !net->arena || !net->trainable_mask || !net->pool) {
    double gib = (double)(net->n_f32 + arena) * 4 / (1 << 30);
    lmn_net_destroy(net);
    return lmn_errf(err, "%s: cannot allocate %.2f GiB for batch %d x %d (try a smaller batch or seq_len)",
                    desc->name, gib, B, T);
  }
  for (int i = 0; i < desc->n_params; i++) net->trainable_mask[i] = (char)desc->params[i].trainable;
  init_params(net, seed);
  /* pre-trained weights: from the paths compiled in, or from $LMN_MODEL_DIR when it is set */
  if ((desc->n_models > 0 && lmn_net_load_models(net, getenv("LMN_MODEL_DIR"), seed, err) != 0) ||
      lmn_qnet_finish(net, err) != 0) {
    lmn_net_destroy(net);
    return -1;
  }
  *out = net;
  return 0;
}

#define NET_CHUNK (1 << 16) /* floats per task of the element-wise passes (a multiple of every LMN_VL) */

static int n_chunks(size_t n) {
  return (int)((n + NET_CHUNK - 1) / NET_CHUNK);
}

/* Tasks of an update, at most: the chunks of every trainable float, plus one part chunk per tensor (each
 * run of contiguous tensors starts a chunk of its own). */
static size_t update_tasks(const lmn_net_desc *d) {
  return (size_t)n_chunks(d->n_train) + (size_t)d->n_params + 1;
}

/* Allocates what is missing of the gradients (grads) and the moments (moments). */
static int enable(lmn_net *net, int grads, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  if ((!grads || net->grads) && net->m && net->v) return 0;
  size_t arena = lmn_net_arena_floats(d, net->B, net->T, net->n_threads, net->recompute);
  double more = (double)d->n_train * ((grads && !net->grads) + (!net->m) + (!net->v));
  double all = (double)net->n_f32 + (double)arena + (double)d->n_train * ((grads || net->grads) + 2);
  if (check_memory(d, all, net->B, net->T,
                   grads ? " with gradients and AdamW moments" : " with AdamW moments", err))
    return -1;
  float *g = grads && !net->grads ? alloc_floats(d->n_train) : NULL;
  float *m = !net->m ? alloc_floats(d->n_train) : NULL, *v = !net->v ? alloc_floats(d->n_train) : NULL;
  double *parts = !net->norm_parts ? malloc(update_tasks(d) * sizeof *parts) : NULL;
  if ((grads && !net->grads && !g) || (!net->m && !m) || (!net->v && !v) || (!net->norm_parts && !parts)) {
    free(g), free(m), free(v), free(parts);
    return lmn_errf(err, "%s: cannot allocate %.2f GiB for %s", d->name, more * 4 / (1 << 30),
                    grads ? "gradients and AdamW moments" : "AdamW moments");
  }
  if (g) net->grads = g;
  if (m) net->m = m;
  if (v) net->v = v;
  if (parts) net->norm_parts = parts;
  return 0;
}

int lmn_net_enable_training(lmn_net *net, lmn_err *err) {
  return enable(net, 1, err);
}

int lmn_net_enable_moments(lmn_net *net, lmn_err *err) {
  return enable(net, 0, err);
}

/* Some frozen weights stay in their file's format (qnet.c). */
static int keeps_weights(const lmn_net *net) {
  for (int i = 0; net->qw && i < net->desc->n_params; i++)
    if (net->qw[i].data) return 1;
  return 0;
}

int lmn_net_share(const lmn_net *src, int n_threads, lmn_net **out, lmn_err *err) {
  *out = NULL;
  lmn_net *net = malloc(sizeof *net);
  if (!net) return lmn_errf(err, "%s: out of memory for a decoding sibling", src->desc->name);
  *net = *src;
  net->weights_of = src->weights_of ? src->weights_of : src;
  net->grads = net->m = net->v = net->arena = net->cache = net->rope = net->qwork = NULL;
  net->norm_parts = NULL;
  net->trainable_mask = NULL;
  net->cache_ctx = net->cache_len = 0;
  net->n_threads = lmn_threads_resolve(n_threads);
  net->pool = lmn_pool_create(net->n_threads, err);
  if (net->pool) lmn_pool_set_split(net->pool, keeps_weights(net));
  if (src->qwork) net->qwork = malloc(net->qwork_floats * (size_t)net->n_threads * sizeof(float));
  if (!net->pool || (src->qwork && !net->qwork)) {
    lmn_net_destroy(net);
    return lmn_errf(err, "%s: out of memory for a decoding sibling", src->desc->name);
  }
  *out = net;
  return 0;
}

void lmn_net_destroy(lmn_net *net) {
  if (!net) return;
  if (net->weights_of) { /* a sibling owns only its caches, panels and threads */
    free(net->cache);
    free(net->qwork);
    if (net->pool) lmn_pool_destroy(net->pool);
    free(net);
    return;
  }
  if (net->poff) lmn_qnet_free(net);
  free(net->params);
  free(net->grads);
  free(net->m);
  free(net->v);
  free(net->norm_parts);
  unmap_arena(net->arena, net->arena_n);
  free(net->recompute);
  free(net->cache);
  free(net->trainable_mask);
  if (net->pool) lmn_pool_destroy(net->pool);
  free(net);
}

/* Replaces the arena by one for rc (copied into net->recompute); nothing changes when that fails. */
static int replan(lmn_net *net, const char *rc, lmn_err *err) {
  int n = n_keep(net->desc);
  if (n == 0 || memcmp(rc, net->recompute, (size_t)n) == 0) return 0;
  size_t n_arena = lmn_net_arena_floats(net->desc, net->B, net->T, net->n_threads, rc);
  float *arena = map_arena(n_arena);
  if (!arena) return lmn_errf(err, "%s: cannot allocate the activations of the memory plan", net->desc->name);
  unmap_arena(net->arena, net->arena_n);
  net->arena = arena;
  net->arena_n = n_arena;
  memcpy(net->recompute, rc, (size_t)n);
  return 0;
}

int lmn_net_set_recompute(lmn_net *net, const char *rc, lmn_err *err) {
  int n = n_keep(net->desc);
  char *mask = calloc((size_t)n + 1, 1);
  if (!mask) return lmn_errf(err, "%s: out of memory", net->desc->name);
  for (int j = 0; rc && j < n; j++) mask[j] = rc[j] != 0;
  int status = replan(net, mask, err);
  free(mask);
  return status;
}

int lmn_net_plan_memory(lmn_net *net, double budget_bytes, const char *from, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  int n = n_keep(d);
  char *mask = calloc((size_t)n + 1, 1);
  if (!mask) return lmn_errf(err, "%s: out of memory", d->name);
  double fixed = lmn_net_fixed_bytes(d, kept_bytes(net));
  int fits = n == 0 || lmn_recompute_plan(d->arena, net->B, net->T + d->prefix, net->n_threads, fixed,
                                          budget_bytes, mask);
  double need = fixed + 4.0 * (double)lmn_net_arena_floats(d, net->B, net->T, net->n_threads, mask);
  if (!fits || need > budget_bytes) {
    free(mask);
    return lmn_errf(
        err,
        "%s: the memory budget %.2f GiB (%s) is below the %.2f GiB that batch %d x %d needs%s; raise "
        "it or lower batch or seq_len",
        d->name, budget_bytes / 1073741824.0, from, need / 1073741824.0, net->B, net->T,
        n ? " with every activation it can recomputed" : "");
  }
  int status = replan(net, mask, err);
  free(mask);
  if (status == 0) {
    net->budget = budget_bytes;
    net->budget_from = from;
  }
  return status;
}

int lmn_net_enable_cache(lmn_net *net, int ctx, lmn_err *err) {
  if (ctx < 1 || ctx > net->desc->ctx)
    return lmn_errf(err, "%s: context %d outside 1..%d", net->desc->name, ctx, net->desc->ctx);
  free(net->cache);
  net->cache = alloc_floats(net->desc->cache_floats(ctx, net->n_threads));
  if (!net->cache)
    return lmn_errf(err, "%s: cannot allocate the KV caches for %d positions", net->desc->name, ctx);
  net->cache_ctx = ctx;
  net->cache_len = 0;
  return 0;
}

int lmn_net_select(lmn_net *net, int edges_only, char *const *names, int n_names, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  for (int n = 0; n < n_names; n++) {
    int found = 0;
    for (int i = 0; i < d->n_params && !found; i++)
      found = d->params[i].trainable && !strcmp(d->params[i].owner, names[n]);
    if (!found)
      return lmn_errf(err, "%s: stage trains '%s', which names no trainable vertex, model or edge type",
                      d->name, names[n]);
  }
  for (int i = 0; i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    int on = p->trainable;
    if (edges_only) on = on && p->edge >= 0;
    if (n_names) {
      int named = 0;
      for (int n = 0; n < n_names; n++) named |= !strcmp(p->owner, names[n]);
      on = on && named;
    }
    net->trainable_mask[i] = (char)on;
  }
  return 0;
}

/* ---- the optimizer step, spread over the network's pool ----
 * Every pass is cut into pieces that do not depend on the thread count, and each piece runs the same kernel
 * over the same elements as one serial call would: the results are the same bits with any pool. */

/* One element-wise pass over the gradients: g *= s, or g = 0 (memset) when s is 0. */
typedef struct scale_ctx {
  float *g;
  size_t n;
  float s;
} scale_ctx;

static void scale_task(void *ctxp, int t, int thread) {
  (void)thread;
  const scale_ctx *c = ctxp;
  size_t a = (size_t)t * NET_CHUNK, n = c->n - a < NET_CHUNK ? c->n - a : NET_CHUNK;
  if (c->s == 0.0f)
    memset(c->g + a, 0, n * sizeof(float));
  else
    for (size_t i = 0; i < n; i++) c->g[a + i] *= c->s;
}

static void scale_grads(lmn_net *net, double s) {
  scale_ctx c = {net->grads, net->desc->n_train, (float)s};
  if (net->grads && c.n && s != 1.0) lmn_pool_run(net->pool, n_chunks(c.n), scale_task, &c);
}

void lmn_net_scale_grads(lmn_net *net, double s) {
  scale_grads(net, s);
}

int lmn_net_zero_grad(lmn_net *net) {
  if (!net->grads) return lmn_net_enable_training(net, NULL); /* freshly allocated: zero already */
  scale_grads(net, 0.0);
  return 0;
}

void lmn_accum_before(lmn_net *net, const lmn_accum *a, double n) {
  if (a->seen > 0 && n > 0) scale_grads(net, a->seen / n);
}

void lmn_accum_after(lmn_net *net, lmn_accum *a, double n) {
  if (n <= 0) return;
  a->seen += n;
  scale_grads(net, n / a->seen);
}

static int selected(const lmn_net *net, int i) {
  return net->desc->params[i].trainable && net->trainable_mask[i];
}

typedef struct sumsq_ctx {
  const lmn_net *net;
  double *sq; /* per parameter tensor */
} sumsq_ctx;

static void sumsq_task(void *ctxp, int i, int thread) {
  (void)thread;
  const sumsq_ctx *c = ctxp;
  const lmn_param_info *p = &c->net->desc->params[i];
  c->sq[i] = selected(c->net, i) ? lmn_sumsq(c->net->grads + p->offset, lmn_param_numel(p)) : 0.0;
}

/* A maximal run of selected tensors, contiguous in the buffers: one AdamW pass, cut into chunks. */
typedef struct adam_run {
  size_t start, n;
  int first_task;
  int decay; /* weight decay applies (decays()) */
} adam_run;

typedef struct adam_ctx {
  lmn_net *net;
  const adam_run *runs;
  int n_runs;
  float lr, beta1, beta2, eps, weight_decay, scale;
  double *sq; /* each task's sum of squares of its gradients, or NULL (the norm was taken before) */
} adam_ctx;

struct lmn_bpack *lmn_net_bpack(const lmn_net *net) {
  const lmn_net_desc *d = net->desc;
  int cap = d->n_params, n = 0;
  const float **W = malloc((size_t)(cap ? cap : 1) * sizeof *W);
  int *rows = malloc((size_t)(cap ? cap : 1) * sizeof *rows),
      *cols = malloc((size_t)(cap ? cap : 1) * sizeof *cols);
  int *fixed = malloc((size_t)(cap ? cap : 1) * sizeof *fixed);
  unsigned *layouts = malloc((size_t)(cap ? cap : 1) * sizeof *layouts);
  lmn_bpack *set = NULL;
  if (W && rows && cols && fixed && layouts) {
    for (int i = 0; i < d->n_params; i++) {
      const lmn_param_info *p = &d->params[i];
      if (p->cols < 16 || p->rows < 16 || p->rows > INT32_MAX || p->cols > INT32_MAX || lmn_q(net, i))
        continue;
      W[n] = lmn_w(net, i);
      rows[n] = (int)p->rows, cols[n] = (int)p->cols, fixed[n] = !p->trainable;
      layouts[n++] = p->kind & LMN_PARAM_EMBEDDING ? LMN_BPACK_DX : LMN_BPACK_FWD | LMN_BPACK_DX;
    }
    set = lmn_bpack_create(W, rows, cols, layouts, fixed, n);
  }
  free(W), free(rows), free(cols), free(fixed), free(layouts);
  return set;
}

/* 1 when AdamW decays tensor i: none of its kinds is in net->no_decay. */
static int decays(const lmn_net *net, int i) {
  return !(net->desc->params[i].kind & net->no_decay);
}

static void adam_task(void *ctxp, int t, int thread) {
  (void)thread;
  const adam_ctx *c = ctxp;
  int r = c->n_runs - 1;
  while (c->runs[r].first_task > t) r--;
  size_t a = (size_t)(t - c->runs[r].first_task) * NET_CHUNK, rest = c->runs[r].n - a;
  size_t off = c->runs[r].start + a, n = rest < NET_CHUNK ? rest : NET_CHUNK;
  lmn_net *net = c->net;
  if (c->sq) c->sq[t] = lmn_sumsq(net->grads + off, n); /* the chunk then stays in cache for AdamW */
  lmn_adamw_update(net->params + off, net->grads + off, net->m + off, net->v + off, n, c->lr, c->beta1,
                   c->beta2, c->eps, c->runs[r].decay ? c->weight_decay : 0.0f, (int)net->step, c->scale);
}

double lmn_net_update(lmn_net *net, float lr, float beta1, float beta2, float eps, float weight_decay,
                      float max_norm) {
  const lmn_net_desc *d = net->desc;
  if (!net->grads || !net->m || !net->v) return 0.0; /* training has not started: nothing to step */
  int np = d->n_params > 0 ? d->n_params : 1;
  double sumsq = 0;
  double *parts = max_norm > 0 ? NULL : net->norm_parts; /* no clipping: the norm comes out of AdamW's pass */
  if (!parts) { /* clipping scales every gradient by the norm: a pass of its own, before AdamW's */
    double sq[np];
    sumsq_ctx sc = {net, sq};
    lmn_pool_run(net->pool, d->n_params, sumsq_task, &sc);
    for (int i = 0; i < d->n_params; i++) sumsq += sq[i]; /* in tensor order, as one serial pass would */
  }
  float scale = lmn_clip_scale(sumsq, max_norm);
  net->step++;
  /* one pass over each maximal run of selected tensors with the same decay */
  adam_run runs[np];
  int n_runs = 0, n_tasks = 0, i = 0;
  while (i < d->n_params) {
    if (!selected(net, i)) {
      i++;
      continue;
    }
    size_t start = d->params[i].offset, end = start;
    int decay = decays(net, i);
    while (i < d->n_params && selected(net, i) && decays(net, i) == decay && d->params[i].offset == end)
      end += lmn_param_numel(&d->params[i++]);
    runs[n_runs] = (adam_run){start, end - start, n_tasks, decay};
    n_tasks += n_chunks(end - start);
    n_runs++;
  }
  adam_ctx ac = {net, runs, n_runs, lr, beta1, beta2, eps, weight_decay, scale, parts};
  lmn_pool_run(net->pool, n_tasks, adam_task, &ac);
  for (int t = 0; ac.sq && t < n_tasks; t++) sumsq += ac.sq[t]; /* without clipping: in task order */
  return sqrt(sumsq);
}

float *lmn_net_param(lmn_net *net, const char *name, const lmn_param_info **info) {
  for (int i = 0; i < net->desc->n_params; i++)
    if (!strcmp(net->desc->params[i].name, name)) {
      if (info) *info = &net->desc->params[i];
      return lmn_q(net, i) ? NULL : net->params + net->poff[i];
    }
  return NULL;
}

void lmn_net_set_inference_threads(lmn_net *net, int threads) {
  int kept = keeps_weights(net);
  openblas_set_num_threads(kept ? 1 : threads);
  lmn_pool_set_split(net->pool, kept);
}
