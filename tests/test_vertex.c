/* test_vertex.c: checks of the vertex functions of vertex.h (vertex.c) on small hand-built networks, one per
 * block kind (llama, qwen2 with q/k/v biases, gpt2): d 16, 4 heads (kv 2; gpt2 4), ffn 24, 2 layers, B 2, T
 * 5, random weights, the aggregation a mean.
 *   - one call (K = 1) forward and backward equal, bit for bit, a reference written here the way lmnc's
 *     generated code ran a vertex before vertex.c (layer loop + final norm), trainable and frozen;
 *   - a group (K = 2) equals, bit for bit, a reference written the way lmnc's group code ran, and, within
 *     VX_TOL relative, two separate K = 1 calls (outputs, input gradients, weight gradients);
 *   - frozen calls (one and grouped) leave every weight gradient untouched;
 *   - the cached forward (a prefill, then one token at a time) gives the full forward's rows within VX_TOL;
 *   - the size functions equal the formulas lmnc emitted (and a few literal values);
 *   - lmn_block_bind and lmn_block_member_gguf follow the member list.
 * Every saved / scratch / cache buffer is allocated with exactly the size its function states, so that
 * `make unit SAN=1` catches an overrun. The blocks' own gradients are checked by finite differences in
 * test_modules.c. */
#include "test_k_common.h"
#include "threads.h"
#include "vertex.h"

#define VX_TOL 1e-5

enum { D = 16, HEADS = 4, HD = 4, FFN = 24, LAYERS = 2, B = 2, T = 5, MAXP = LAYERS * LMN_BM_COUNT + 2 };
#define N_ROWS ((size_t)B * T)
#define N_FLOATS ((size_t)B * T * D) /* one call's [B*T, d] */

/* ======================================= a network by hand ======================================= */

typedef struct tnet {
  lmn_vertex_cfg v;
  int bind[LAYERS][LMN_BM_COUNT];
  lmn_param_info info[MAXP];
  char names[MAXP][48];
  char mask[MAXP];
  size_t poff[MAXP];     /* every tensor f32, at its desc offset */
  lmn_qtensor qw[MAXP];  /* none kept in a file format */
  lmn_net_desc desc;
  lmn_net net;
  lmn_rope rope;
  const lmn_rope *rp; /* &rope, or NULL (gpt2) */
} tnet;

/* [rows, cols] of member m for the block (rows 0: the kind has no such member; cols 0: a vector). */
static void member_shape(const lmn_block_cfg *c, int m, long *rows, long *cols) {
  long d = c->d, qd = (long)c->heads * c->hd, kvd = (long)c->kv_heads * c->hd, F = c->ffn;
  int gpt2 = c->kind == LMN_BLOCK_GPT2, bias = gpt2 || c->qkv_bias;
  *rows = 0, *cols = 0;
  switch (m) {
    case LMN_BM_attn_norm:
    case LMN_BM_ffn_norm: *rows = d; break;
    case LMN_BM_attn_norm_b:
    case LMN_BM_ffn_norm_b:
    case LMN_BM_bo:
    case LMN_BM_b_down: *rows = gpt2 ? d : 0; break;
    case LMN_BM_wq: *rows = gpt2 ? 0 : qd, *cols = d; break;
    case LMN_BM_wk:
    case LMN_BM_wv: *rows = gpt2 ? 0 : kvd, *cols = d; break;
    case LMN_BM_bq: *rows = !gpt2 && bias ? qd : 0; break;
    case LMN_BM_bk:
    case LMN_BM_bv: *rows = !gpt2 && bias ? kvd : 0; break;
    case LMN_BM_wqkv: *rows = gpt2 ? 3 * d : 0, *cols = d; break;
    case LMN_BM_bqkv: *rows = gpt2 ? 3 * d : 0; break;
    case LMN_BM_wo: *rows = d, *cols = qd; break;
    case LMN_BM_w_gate: *rows = gpt2 ? 0 : F, *cols = d; break;
    case LMN_BM_w_up: *rows = F, *cols = d; break;
    case LMN_BM_b_up: *rows = gpt2 ? F : 0; break;
    case LMN_BM_w_down: *rows = d, *cols = F; break;
    default: break;
  }
}

/* Appends a parameter [rows, cols] and returns its index. */
static int add_param(tnet *t, const char *name, long rows, long cols, size_t *off) {
  int i = t->desc.n_params++;
  snprintf(t->names[i], sizeof t->names[i], "%s", name);
  t->info[i] = (lmn_param_info){t->names[i], *off, rows, cols, 1, -1, "vx", LMN_INIT_NORMAL, 0, -1, -1, NULL, 0};
  *off += (size_t)rows * (size_t)(cols ? cols : 1);
  return i;
}

/* Gains near 1, biases small, matrices U(-0.3, 0.3). */
static void fill_params(tnet *t, rng *r) {
  for (int i = 0; i < t->desc.n_params; i++) {
    const lmn_param_info *p = &t->info[i];
    int gain = strstr(p->name, "norm.weight") != NULL;
    float lo = gain ? 0.8f : p->cols ? -0.3f : -0.1f, hi = gain ? 1.2f : p->cols ? 0.3f : 0.1f;
    for (long k = 0; k < p->rows * (p->cols ? p->cols : 1); k++)
      t->net.params[p->offset + k] = rng_uniform(r, lo, hi);
  }
}

static tnet *make_net(lmn_block_kind kind, lmn_pool *pool, rng *r) {
  tnet *t = t_alloc(sizeof *t);
  int gpt2 = kind == LMN_BLOCK_GPT2;
  t->v.blk = (lmn_block_cfg){kind, D, HEADS, gpt2 ? HEADS : 2, HD, FFN, 1e-5f, kind == LMN_BLOCK_QWEN2, 0.5f};
  size_t off = 0;
  char name[48];
  for (int l = 0; l < LAYERS; l++)
    for (int m = 0; m < LMN_BM_COUNT; m++) {
      long rows, cols;
      member_shape(&t->v.blk, m, &rows, &cols);
      snprintf(name, sizeof name, "blk.%d.%s", l, lmn_block_member_gguf[m]);
      t->bind[l][m] = rows ? add_param(t, name, rows, cols, &off) : -1;
    }
  t->v.layers = LAYERS;
  t->v.bind = (const int(*)[LMN_BM_COUNT])t->bind;
  t->v.norm_w = add_param(t, "output_norm.weight", D, 0, &off);
  t->v.norm_b = gpt2 ? add_param(t, "output_norm.bias", D, 0, &off) : -1;
  t->desc = (lmn_net_desc){.name = "vx",
                           .aggregate_mean = 1,
                           .n_params = t->desc.n_params,
                           .params = t->info,
                           .n_floats = off,
                           .n_train = off,
                           .n_train_decay = off};
  t->net = (lmn_net){.desc = &t->desc,
                     .params = fzeros(off),
                     .grads = fzeros(off),
                     .n_threads = lmn_pool_threads(pool),
                     .pool = pool,
                     .trainable_mask = t->mask,
                     .poff = t->poff,
                     .n_f32 = off,
                     .qw = t->qw};
  memset(t->mask, 1, sizeof t->mask);
  for (int i = 0; i < t->desc.n_params; i++) t->poff[i] = t->info[i].offset;
  fill_params(t, r);
  if (!gpt2) {
    float *cs = fzeros((size_t)T * HD);
    lmn_rope_table(cs, cs + (size_t)T * HD / 2, T, HD, 10000.0);
    t->rope = (lmn_rope){cs, cs + (size_t)T * HD / 2, T};
    t->rp = &t->rope;
  }
  return t;
}

/* ============================ the reference: lmnc's generated code before vertex.c
 * ============================ */

static int is_gpt2(const tnet *t) {
  return t->v.blk.kind == LMN_BLOCK_GPT2;
}

static void ref_norm_forward(const tnet *t, float *y, float *last, size_t n, size_t rows) {
  const lmn_net *net = &t->net;
  if (is_gpt2(t))
    lmn_layernorm_forward(y, last + n, last + n + rows, last, lmn_w(net, t->v.norm_w),
                          lmn_w(net, t->v.norm_b), (int)rows, D, (float)1e-05);
  else
    lmn_rmsnorm_forward(y, last + n + rows, last, lmn_w(net, t->v.norm_w), (int)rows, D, (float)1e-05);
}

static void ref_norm_backward(const tnet *t, float *dx, const float *dy, const float *last, size_t n,
                              size_t rows) {
  const lmn_net *net = &t->net;
  if (is_gpt2(t))
    lmn_layernorm_backward(dx, lmn_g(net, t->v.norm_w), lmn_g(net, t->v.norm_b), dy, last,
                           lmn_w(net, t->v.norm_w), last + n, last + n + rows, (int)rows, D);
  else
    lmn_rmsnorm_backward(dx, lmn_g(net, t->v.norm_w), dy, last, lmn_w(net, t->v.norm_w), last + n + rows,
                         (int)rows, D);
}

/* The layer loop of a call (S = B) or a group (S = K*B sequences; then xs = {gin}, k = 1, scale = 1). */
static void ref_layers_forward(const tnet *t, const float *const *xs, int k, float scale, float *h[2],
                               float *last, float *saved, int S, float *blk_scratch) {
  const float *const *in = xs;
  const float *cur;
  for (int l = 0; l < LAYERS; l++) {
    lmn_block_w w;
    lmn_block_g g;
    lmn_block_bind(&t->net, t->bind[l], &w, &g);
    float *y = l == LAYERS - 1 ? last : h[l & 1];
    lmn_block_forward(&t->v.blk, &w, t->rp, y, in, k, scale,
                      saved + (size_t)l * lmn_block_saved_floats(&t->v.blk, S, T), S, T, blk_scratch,
                      t->net.pool);
    cur = y;
    in = &cur;
    k = 1;
    scale = 1.0f;
  }
}

static void ref_layers_backward(const tnet *t, float *dh[2], float *const *dins, int k, float scale,
                                const float *saved, int S, size_t n, float *blk_scratch) {
  size_t bs = lmn_block_saved_floats(&t->v.blk, S, T);
  for (int l = LAYERS - 1; l >= 0; l--) {
    lmn_block_w w;
    lmn_block_g g;
    lmn_block_bind(&t->net, t->bind[l], &w, &g);
    float *dy = dh[(LAYERS - 1 - l) & 1], *dprev = dh[(LAYERS - 1 - l + 1) & 1];
    if (l > 0) memset(dprev, 0, sizeof(float) * n);
    float *const *dxs = l > 0 ? &dprev : dins;
    lmn_block_backward(&t->v.blk, &w, t->rp, &g, dxs, l > 0 ? 1 : k, l > 0 ? 1.0f : scale, dy,
                       saved + (size_t)l * bs, S, T, blk_scratch, t->net.pool);
  }
}

static void ref_one_forward(const tnet *t, const lmn_vertex_io *io, float *saved, float *scratch) {
  size_t n = N_FLOATS;
  float *h[3] = {scratch, scratch + n, scratch + 2 * n};
  float *last = saved + (size_t)LAYERS * lmn_block_saved_floats(&t->v.blk, B, T);
  ref_layers_forward(t, io->xs, io->k, io->k > 1 ? 1.0f / (float)io->k : 1.0f, h, last, saved, B, h[2]);
  ref_norm_forward(t, io->y, last, n, N_ROWS);
}

static int ref_any(const lmn_vertex_io *io) {
  int any = 0;
  for (int i = 0; io->dxs && i < io->k; i++) any |= io->dxs[i] != NULL;
  return any;
}

static void ref_one_backward(const tnet *t, const lmn_vertex_io *io, const float *saved, float *scratch) {
  size_t n = N_FLOATS;
  const float *last = saved + (size_t)LAYERS * lmn_block_saved_floats(&t->v.blk, B, T);
  float *dh[2] = {scratch, scratch + n};
  memset(dh[0], 0, sizeof(float) * n);
  ref_norm_backward(t, dh[0], io->dy, last, n, N_ROWS);
  ref_layers_backward(t, dh, ref_any(io) ? io->dxs : NULL, io->k, io->k > 1 ? 1.0f / io->k : 1.0f, saved, B,
                      n, dh[1] + n);
}

static void ref_group_forward(const tnet *t, const lmn_vertex_io *io, int K, float *saved, float *scratch) {
  const size_t n = N_FLOATS, N = K * n, rows = (size_t)K * B * T;
  float *gin = scratch, *h[2] = {scratch + N, scratch + 2 * N}, *normed = scratch + 3 * N;
  for (int j = 0; j < K; j++) {
    memcpy(gin + j * n, io[j].xs[0], sizeof(float) * n);
    for (int r = 1; r < io[j].k; r++)
      for (size_t x = 0; x < n; x++) gin[j * n + x] += io[j].xs[r][x];
    if (io[j].k > 1)
      for (size_t x = 0; x < n; x++) gin[j * n + x] *= 1.0f / io[j].k;
  }
  float *last = saved + (size_t)LAYERS * lmn_block_saved_floats(&t->v.blk, K * B, T);
  const float *xs[1] = {gin};
  ref_layers_forward(t, xs, 1, 1.0f, h, last, saved, K * B, scratch + 4 * N);
  ref_norm_forward(t, normed, last, N, rows);
  for (int j = 0; j < K; j++) memcpy(io[j].y, normed + j * n, sizeof(float) * n);
}

static void ref_group_backward(const tnet *t, const lmn_vertex_io *io, int K, const float *saved,
                               float *scratch) {
  const size_t n = N_FLOATS, N = K * n, rows = (size_t)K * B * T;
  const float *last = saved + (size_t)LAYERS * lmn_block_saved_floats(&t->v.blk, K * B, T);
  float *dY = scratch, *dh[2] = {scratch + N, scratch + 2 * N}, *dgin = scratch + 3 * N;
  int any_in = 0;
  for (int j = 0; j < K; j++) any_in |= ref_any(&io[j]);
  for (int j = 0; j < K; j++) memcpy(dY + j * n, io[j].dy, sizeof(float) * n);
  memset(dh[0], 0, sizeof(float) * N);
  ref_norm_backward(t, dh[0], dY, last, N, rows);
  if (any_in) memset(dgin, 0, sizeof(float) * N);
  ref_layers_backward(t, dh, any_in ? &dgin : NULL, 1, 1.0f, saved, K * B, N, scratch + 4 * N);
  for (int j = 0; j < K; j++)
    for (int r = 0; r < io[j].k; r++) {
      float *dx = io[j].dxs ? io[j].dxs[r] : NULL;
      if (!dx) continue;
      if (io[j].k > 1)
        for (size_t x = 0; x < n; x++) dx[x] += (1.0f / io[j].k) * dgin[j * n + x];
      else
        for (size_t x = 0; x < n; x++) dx[x] += dgin[j * n + x];
    }
}

/* ============================================ runs ============================================ */

/* The inputs a, b, c [B*T, d], the initial contents of their gradients and of the weight gradients (random:
 * everything accumulates), and each call's dL/dy. */
typedef struct world {
  float *x[3], *g0[3], *dy[2], *wg0;
} world;

/* A call: inputs in[0..k) (indices into world.x), and which of them want a gradient (bit i: input i). */
typedef struct spec {
  int in[3], k;
  unsigned want;
} spec;

typedef enum mode { OURS_GROUP, OURS_EACH, REF } mode;

/* What one run produced. */
typedef struct run {
  float *y[2], *g[3], *wg; /* outputs [B*T, d], input gradients, weight gradients [n_floats] */
  float *saved[2];         /* saved regions: [0] only for a group */
  size_t saved_n[2];
  const float *xs[2][3];
  float *dxs[2][3];
  lmn_vertex_io io[2];
} run;

static world make_world(const tnet *t, rng *r) {
  world w;
  for (int i = 0; i < 3; i++) w.x[i] = frand(r, N_FLOATS, -1, 1), w.g0[i] = frand(r, N_FLOATS, -1, 1);
  for (int j = 0; j < 2; j++) w.dy[j] = frand(r, N_FLOATS, -1, 1);
  w.wg0 = frand(r, t->desc.n_floats, -1, 1);
  return w;
}

/* The io of calls [0, K) into r's buffers; the weight gradients start from the world's. */
static void setup_run(tnet *t, const world *w, const spec *sp, int K, run *r) {
  memset(r, 0, sizeof *r);
  for (int i = 0; i < 3; i++) r->g[i] = fcopy(w->g0[i], N_FLOATS);
  memcpy(t->net.grads, w->wg0, sizeof(float) * t->desc.n_floats);
  for (int j = 0; j < K; j++) {
    r->y[j] = fzeros(N_FLOATS);
    for (int i = 0; i < sp[j].k; i++) {
      r->xs[j][i] = w->x[sp[j].in[i]];
      r->dxs[j][i] = sp[j].want >> i & 1 ? r->g[sp[j].in[i]] : NULL;
    }
    r->io[j] = (lmn_vertex_io){r->xs[j], sp[j].k,  sp[j].k > 1 ? 1.0f / (float)sp[j].k : 1.0f,
                               r->y[j],  w->dy[j], sp[j].want ? r->dxs[j] : NULL};
  }
}

/* Forward then backward of calls [0, K): as one group (OURS_GROUP, or REF: the reference of a group for K >
 * 1, of a call for K = 1) or one lmn_vertex_* call each (OURS_EACH). Buffers have exactly their stated sizes.
 */
static void do_run(tnet *t, const world *w, const spec *sp, int K, mode m, run *r) {
  setup_run(t, w, sp, K, r);
  const lmn_vertex_cfg *v = &t->v;
  int calls = m == OURS_EACH ? K : 1, Kc = m == OURS_EACH ? 1 : K;
  float *scratch = fzeros(lmn_vertex_scratch_floats(v, Kc, B, T, t->net.n_threads));
  for (int c = 0; c < calls; c++) {
    r->saved_n[c] = lmn_vertex_saved_floats(v, Kc, B, T);
    r->saved[c] = fzeros(r->saved_n[c]);
    if (m == REF && K > 1)
      ref_group_forward(t, r->io, K, r->saved[c], scratch);
    else if (m == REF)
      ref_one_forward(t, r->io, r->saved[c], scratch);
    else
      lmn_vertex_forward(&t->net, v, t->rp, &r->io[c], Kc, r->saved[c], B, T, scratch);
  }
  for (int c = calls - 1; c >= 0; c--) {
    if (m == REF && K > 1)
      ref_group_backward(t, r->io, K, r->saved[c], scratch);
    else if (m == REF)
      ref_one_backward(t, r->io, r->saved[c], scratch);
    else
      lmn_vertex_backward(&t->net, v, t->rp, &r->io[c], Kc, r->saved[c], B, T, scratch);
  }
  r->wg = fcopy(t->net.grads, t->desc.n_floats);
}

/* Prints and asserts: identical bits (tol < 0) or max relative error (floor 1) within tol. */
static void check(const char *label, const char *what, const float *a, const float *b, size_t n, double tol) {
  char line[128];
  snprintf(line, sizeof line, "%s: %s", label, what);
  if (tol < 0)
    CHECK_SAME(line, a, b, n);
  else
    CHECK_ERR(line, max_err_ff(a, b, n, 1.0), tol);
}

static void compare_runs(const char *label, const tnet *t, const run *a, const run *b, int K, double tol) {
  char what[64];
  for (int j = 0; j < K; j++) {
    snprintf(what, sizeof what, "y of call %d", j);
    check(label, what, a->y[j], b->y[j], N_FLOATS, tol);
  }
  for (int i = 0; i < 3; i++) {
    snprintf(what, sizeof what, "input gradient %c", 'a' + i);
    check(label, what, a->g[i], b->g[i], N_FLOATS, tol);
  }
  check(label, "weight gradients", a->wg, b->wg, t->desc.n_floats, tol);
  if (tol < 0 && a->saved_n[0] == b->saved_n[0])
    check(label, "saved region", a->saved[0], b->saved[0], a->saved_n[0], tol);
}

/* Frozen runs leave the weight gradients as they were. */
static void check_untouched(const char *label, const tnet *t, const world *w, const run *r) {
  check(label, "weight gradients untouched", r->wg, w->wg0, t->desc.n_floats, -1);
}

/* ============================================ the checks ============================================ */

/* call 0 aggregates a and b (mean, scale 1/2), call 1 reads b alone: their input gradients meet in b */
static const spec calls_trained[2] = {{{0, 1, 0}, 2, 3u}, {{1, 0, 0}, 1, 1u}};
/* call 0 aggregates c, a and b (scale 1/3, which rounds: bit-identity then depends on the order of the sums
 * and on where the scale applies), call 1 reads b */
static const spec calls_three[2] = {{{2, 0, 1}, 3, 7u}, {{1, 0, 0}, 1, 1u}};
/* frozen: call 0 wants only a's gradient, call 1 none */
static const spec calls_frozen[2] = {{{0, 1, 2}, 3, 2u}, {{2, 0, 0}, 1, 0u}};

static void check_one_call(tnet *t, const world *w, const spec *sp, const char *label) {
  run ours, ref;
  do_run(t, w, sp, 1, OURS_GROUP, &ours);
  do_run(t, w, sp, 1, REF, &ref);
  compare_runs(label, t, &ours, &ref, 1, -1);
  if (!t->mask[0]) check_untouched(label, t, w, &ours);
}

static void check_group(tnet *t, const world *w, const spec *sp, const char *label) {
  run group, ref, each;
  char what[96];
  do_run(t, w, sp, 2, OURS_GROUP, &group);
  do_run(t, w, sp, 2, REF, &ref);
  do_run(t, w, sp, 2, OURS_EACH, &each);
  snprintf(what, sizeof what, "%s, group == generated group code", label);
  compare_runs(what, t, &group, &ref, 2, -1);
  snprintf(what, sizeof what, "%s, group ~ two calls", label);
  compare_runs(what, t, &group, &each, 2, VX_TOL);
  if (!t->mask[0]) check_untouched(label, t, w, &group);
}

/* Full forward of one sequence (B = 1) of call 0, then the same through KV caches: a prefill of P positions
 * and one token at a time after it. */
static void check_cached(tnet *t, const world *w, const char *label) {
  const lmn_vertex_cfg *v = &t->v;
  const int P = 2, nt = t->net.n_threads;
  const float *xs[2] = {w->x[0], w->x[1]};
  float *full = fzeros((size_t)T * D), *cached = fzeros((size_t)T * D);
  lmn_vertex_io io = {xs, 2, 0.5f, full, NULL, NULL};
  lmn_vertex_forward(&t->net, v, t->rp, &io, 1, fzeros(lmn_vertex_saved_floats(v, 1, 1, T)), 1, T,
                     fzeros(lmn_vertex_scratch_floats(v, 1, 1, T, nt)));
  float *kv = fzeros(lmn_vertex_cache_floats(v, T));
  for (int pos0 = 0; pos0 < T; pos0 += pos0 ? 1 : P) {
    int n = pos0 ? 1 : P;
    const float *rows[2] = {w->x[0] + (size_t)pos0 * D, w->x[1] + (size_t)pos0 * D};
    lmn_vertex_io step = {rows, 2, 0.5f, cached + (size_t)pos0 * D, NULL, NULL};
    lmn_vertex_forward_cached(&t->net, v, t->rp, &step, kv, T, pos0, n,
                              fzeros(lmn_vertex_cache_scratch_floats(v, n, nt)));
  }
  check(label, "cached prefill + steps == full forward", cached, full, (size_t)T * D, VX_TOL);
}

static void check_kind(lmn_block_kind kind, const char *name) {
  lmn_err err;
  lmn_pool *pool = lmn_pool_create(2, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
  rng r = {0x5eed0000u + (uint64_t)kind};
  tnet *t = make_net(kind, pool, &r);
  world w = make_world(t, &r);
  char label[64];
  snprintf(label, sizeof label, "%s one call of 2, trained", name);
  check_one_call(t, &w, calls_trained, label);
  snprintf(label, sizeof label, "%s one call of 3, trained", name);
  check_one_call(t, &w, calls_three, label);
  snprintf(label, sizeof label, "%s", name);
  check_group(t, &w, calls_trained, label);
  check_cached(t, &w, label);
  snprintf(label, sizeof label, "%s (3 + 1 inputs)", name);
  check_group(t, &w, calls_three, label);
  memset(t->mask, 0, sizeof t->mask);
  snprintf(label, sizeof label, "%s one call, frozen", name);
  check_one_call(t, &w, calls_frozen, label);
  snprintf(label, sizeof label, "%s frozen", name);
  check_group(t, &w, calls_frozen, label);
  printf("\n");
  t_free_all();
  lmn_pool_destroy(pool);
}

static void test_llama(void) {
  check_kind(LMN_BLOCK_LLAMA, "llama");
}
static void test_qwen2(void) {
  check_kind(LMN_BLOCK_QWEN2, "qwen2");
}
static void test_gpt2(void) {
  check_kind(LMN_BLOCK_GPT2, "gpt2");
}

/* The sizes as lmnc's plan and cplan wrote them, for K = 1..3 and two thread counts. */
static void check_sizes(const tnet *t) {
  const lmn_vertex_cfg *v = &t->v;
  const lmn_block_cfg *c = &v->blk;
  for (int nt = 1; nt <= 2; nt++)
    for (int K = 1; K <= 3; K++) {
      size_t saved = (size_t)LAYERS * lmn_block_saved_floats(c, K * B, T) + (size_t)K * B * T * D +
                     2 * (size_t)K * B * T;
      size_t scratch = K > 1 ? lmn_block_scratch_floats(c, K * B, T, nt) + (size_t)4 * K * B * T * D
                             : lmn_block_scratch_floats(c, B, T, nt) + 2 * (size_t)B * T * D;
      CU_ASSERT_EQUAL(lmn_vertex_saved_floats(v, K, B, T), saved);
      CU_ASSERT_EQUAL(lmn_vertex_scratch_floats(v, K, B, T, nt), scratch);
      CU_ASSERT_EQUAL(lmn_vertex_cache_scratch_floats(v, K, nt),
                      lmn_block_cache_scratch_floats(c, K, nt) + (size_t)3 * K * D + 2 * (size_t)K);
    }
  CU_ASSERT_EQUAL(lmn_vertex_cache_floats(v, 7), (size_t)LAYERS * 2 * 7 * c->kv_heads * HD);
}

static void test_sizes(void) {
  rng r = {1};
  /* per row: llama/qwen2 2d + 2qd + 2kvd + heads + 2F + 2 = 134, gpt2 6d + F + heads + 4 = 128 */
  const lmn_block_kind kinds[3] = {LMN_BLOCK_LLAMA, LMN_BLOCK_QWEN2, LMN_BLOCK_GPT2};
  const size_t saved1[3] = {2 * 134 * 10 + 10 * 16 + 20, 2 * 134 * 10 + 10 * 16 + 20,
                            2 * 128 * 10 + 10 * 16 + 20};
  const size_t cache[3] = {2 * 2 * 7 * 8, 2 * 2 * 7 * 8, 2 * 2 * 7 * 16};
  for (int k = 0; k < 3; k++) {
    tnet *t = make_net(kinds[k], NULL, &r);
    check_sizes(t);
    CU_ASSERT_EQUAL(lmn_vertex_saved_floats(&t->v, 1, B, T), saved1[k]);
    CU_ASSERT_EQUAL(lmn_vertex_cache_floats(&t->v, 7), cache[k]);
  }
  t_free_all();
}

/* lmn_block_bind binds member m to parameter idx[m] (gradients only where trained); the GGUF names follow the
 * member list. */
static void test_bind(void) {
  rng r = {2};
  tnet *t = make_net(LMN_BLOCK_QWEN2, NULL, &r);
  lmn_block_w w;
  lmn_block_g g;
  lmn_block_bind(&t->net, t->bind[1], &w, &g);
#define CHECK_MEMBER_(m, gguf, hf, hf_gpt2)                         \
  CU_ASSERT_PTR_EQUAL(w.m, lmn_w(&t->net, t->bind[1][LMN_BM_##m])); \
  CU_ASSERT_PTR_EQUAL(g.m, lmn_g(&t->net, t->bind[1][LMN_BM_##m])); \
  CU_ASSERT_STRING_EQUAL(lmn_block_member_gguf[LMN_BM_##m], gguf);  \
  CU_ASSERT((t->bind[1][LMN_BM_##m] < 0) == (w.m == NULL));
  LMN_BLOCK_MEMBER_LIST(CHECK_MEMBER_)
#undef CHECK_MEMBER_
  CU_ASSERT_PTR_EQUAL(w.wq, t->net.params + t->info[t->bind[1][LMN_BM_wq]].offset);
  CU_ASSERT_PTR_NOT_NULL(g.bk);
  CU_ASSERT_PTR_NULL(w.wqkv);
  memset(t->mask, 0, sizeof t->mask);
  lmn_block_bind(&t->net, t->bind[0], &w, &g);
  CU_ASSERT_PTR_NOT_NULL(w.w_down);
  CU_ASSERT_PTR_NULL(g.w_down);
  t_free_all();
}

static CU_TestInfo tests[] = {
    {"sizes: the formulas lmnc planned with", test_sizes},
    {"lmn_block_bind and the GGUF member names", test_bind},
    {"llama vertex: one call and group bit-identical to generated code, group ~ calls, frozen, cache",
     test_llama},
    {"qwen2 vertex (qkv biases): same checks", test_qwen2},
    {"gpt2 vertex: same checks", test_gpt2},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("vertex", tests)
