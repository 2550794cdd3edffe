/* vertex.c: a vertex (a model's decoder layers and final norm) as whole functions (vertex.h): forward, backward
 * and cached forward, for one call (the aggregation of its inputs fused into the first norm) or for K calls of
 * one shared weight set run as one batch of K*B sequences. The layers run through lmn_block_*; what lies
 * between them (the layer chain, the final norm, gathering and scattering a batch) is here. */
#include "vertex.h"

#include <string.h>

void lmn_block_bind(const lmn_net *net, const int idx[LMN_BM_COUNT], lmn_block_w *w, lmn_block_g *g) {
#define LMN_BIND_(m, gguf, hf, hf_gpt2)       \
  w->m = lmn_w(net, idx[LMN_BM_##m]);         \
  w->q[LMN_BM_##m] = lmn_q(net, idx[LMN_BM_##m]); \
  g->m = lmn_g(net, idx[LMN_BM_##m]);
  LMN_BLOCK_MEMBER_LIST(LMN_BIND_)
#undef LMN_BIND_
  w->qwork = net->qwork;
  w->qwork_floats = net->qwork_floats;
  w->q_f32act = net->q_f32act;
}

/* ---- sizes -------------------------------------------------------------------------------------- */

/* Rows of K calls: N = K*B*T. */
static size_t rows_of(int K, int B, int T) { return (size_t)K * (size_t)B * (size_t)T; }

size_t lmn_vertex_saved_floats(const lmn_vertex_cfg *v, int K, int B, int T) {
  size_t N = rows_of(K, B, T);
  return (size_t)v->layers * lmn_block_saved_floats(&v->blk, K * B, T) + N * (size_t)v->blk.d + 2 * N;
}

size_t lmn_vertex_scratch_floats(const lmn_vertex_cfg *v, int K, int B, int T, int n_threads) {
  size_t N = rows_of(K, B, T);
  return lmn_block_scratch_floats(&v->blk, K * B, T, n_threads) + (K > 1 ? 4 : 2) * N * (size_t)v->blk.d;
}

size_t lmn_vertex_cache_scratch_floats(const lmn_vertex_cfg *v, int T, int n_threads) {
  return lmn_block_cache_scratch_floats(&v->blk, T, n_threads) + 3 * (size_t)T * (size_t)v->blk.d + 2 * (size_t)T;
}

static size_t kv_dim(const lmn_vertex_cfg *v) { return (size_t)v->blk.kv_heads * (size_t)v->blk.hd; }

size_t lmn_vertex_cache_floats(const lmn_vertex_cfg *v, int ctx) {
  return (size_t)v->layers * 2 * (size_t)ctx * kv_dim(v);
}

/* ---- the final norm ------------------------------------------------------------------------------ */

/* y = norm(x) over N rows; stats: mean [N] then rstd [N] (RMSNorm uses only rstd, at stats + N). */
static void norm_forward(const lmn_net *net, const lmn_vertex_cfg *v, float *y, float *stats, const float *x, size_t N) {
  int d = v->blk.d;
  if (v->blk.kind == LMN_BLOCK_GPT2)
    lmn_layernorm_forward(y, stats, stats + N, x, lmn_w(net, v->norm_w), lmn_w(net, v->norm_b), (int)N, d, v->blk.eps);
  else
    lmn_rmsnorm_forward(y, stats + N, x, lmn_w(net, v->norm_w), (int)N, d, v->blk.eps);
}

static void norm_backward(const lmn_net *net, const lmn_vertex_cfg *v, float *dx, const float *dy, const float *x,
                          const float *stats, size_t N) {
  int d = v->blk.d;
  if (v->blk.kind == LMN_BLOCK_GPT2)
    lmn_layernorm_backward(dx, lmn_g(net, v->norm_w), lmn_g(net, v->norm_b), dy, x, lmn_w(net, v->norm_w), stats,
                           stats + N, (int)N, d);
  else
    lmn_rmsnorm_backward(dx, lmn_g(net, v->norm_w), dy, x, lmn_w(net, v->norm_w), stats + N, (int)N, d);
}

/* ---- where the saved activations go ------------------------------------------------------------ */

/* Layer l's saved block region is at layer + l * stride; the final norm's input [N, d] and statistics [2N]
 * at last. Kept whole: the layers one after another in saved, then last. Recomputing (kept != NULL): every
 * layer in the one workspace (stride 0), its input r copied to kept + l * N*d after its forward (the
 * checkpoints the backward recomputes each layer from), then last; the block's output during a recomputation
 * goes to the workspace after the layer's region. */
typedef struct vplace {
  float *layer, *last, *kept;
  size_t stride;
} vplace;

static vplace place_of(const lmn_vertex_cfg *v, float *saved, float *kept, int Bk, int T) {
  size_t bs = lmn_block_saved_floats(&v->blk, Bk, T), N = rows_of(1, Bk, T) * (size_t)v->blk.d;
  if (kept) return (vplace){saved, kept + (size_t)v->layers * N, kept, 0};
  return (vplace){saved, saved + (size_t)v->layers * bs, NULL, bs};
}

/* ---- the layer chain ----------------------------------------------------------------------------- */

/* Layers over Bk sequences: layer 0 reads xs (k inputs, scale), each later layer the one before; the last
 * writes at->last, the others alternate between h[0] and h[1]. */
static void layers_forward(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                           const float *const *xs, int k, float scale, const vplace *at, float *const h[2],
                           int Bk, int T, float *blk_scratch) {
  size_t n = rows_of(1, Bk, T) * (size_t)v->blk.d;
  const float *cur;
  for (int l = 0; l < v->layers; l++) {
    lmn_block_w w;
    lmn_block_g g;
    lmn_block_bind(net, v->bind[l], &w, &g);
    float *y = l == v->layers - 1 ? at->last : h[l & 1],
          *saved = at->layer ? at->layer + (size_t)l * at->stride : NULL;
    lmn_block_forward(&v->blk, &w, rope, y, xs, k, scale, saved, Bk, T, blk_scratch, net->pool);
    if (at->kept) lmn_block_keep_input(&v->blk, at->kept + (size_t)l * n, saved, Bk, T);
    cur = y;
    xs = &cur;
    k = 1;
    scale = 1.0f;
  }
}

/* Backward of the chain from dh[0] = dL/d(last layer's output); the first layer's input gradients go to dxs
 * (k of them, with scale), or nowhere when dxs is NULL. dh[0] and dh[1] are overwritten. Recomputing, each
 * layer first runs its forward again from its checkpoint into the workspace (one input, scale 1: the same r,
 * so the same saved tensors bit for bit). */
/* The lowest layer the backward must reach: layer 0 when the input wants a gradient, else the lowest layer
 * that takes a weight gradient (the frozen layers of a `last N` vertex, or layers a training stage holds
 * still, have nothing to do below it); v->layers when none does. */
static int lowest_backward_layer(const lmn_net *net, const lmn_vertex_cfg *v, int want_dx) {
  if (want_dx) return 0;
  for (int l = 0; l < v->layers; l++)
    for (int m = 0; m < LMN_BM_COUNT; m++)
      if (lmn_g(net, v->bind[l][m])) return l;
  return v->layers;
}

static void layers_backward(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                            float *const *dxs, int k, float scale, float *const dh[2], const vplace *at,
                            int Bk, int T, float *blk_scratch) {
  size_t n = rows_of(1, Bk, T) * (size_t)v->blk.d;
  int L = v->layers, stop = lowest_backward_layer(net, v, dxs != NULL);
  for (int l = L - 1; l >= stop; l--) {
    lmn_block_w w;
    lmn_block_g g;
    lmn_block_bind(net, v->bind[l], &w, &g);
    float *saved = at->layer + (size_t)l * at->stride;
    if (at->kept)
      lmn_block_recompute(&v->blk, &w, rope, at->kept + (size_t)l * n, saved, Bk, T, blk_scratch, net->pool);
    float *dy = dh[(L - 1 - l) & 1], *dprev = dh[(L - l) & 1];
    int lowest = l == stop; /* its data gradient goes to the inputs (none when stop > 0) */
    if (!lowest) memset(dprev, 0, sizeof(float) * n);
    float *const *to = lowest ? dxs : &dprev;
    lmn_block_backward(&v->blk, &w, rope, &g, to, lowest ? k : 1, lowest ? scale : 1.0f, dy, saved, Bk, T,
                       blk_scratch, net->pool);
  }
}

static int wants_input_grad(const lmn_vertex_io *io) {
  if (!io->dxs) return 0;
  for (int r = 0; r < io->k; r++)
    if (io->dxs[r]) return 1;
  return 0;
}

/* ---- one call ------------------------------------------------------------------------------------ */

static void forward_one(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                        const lmn_vertex_io *io, const vplace *at, int B, int T, float *scratch) {
  size_t N = rows_of(1, B, T), n = N * (size_t)v->blk.d; /* scratch: h0 [n], h1 [n], block scratch */
  float *h[2] = {scratch, scratch + n};
  layers_forward(net, v, rope, io->xs, io->k, io->scale, at, h, B, T, scratch + 2 * n);
  norm_forward(net, v, io->y, at->last + n, at->last, N);
}

static void backward_one(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                         const lmn_vertex_io *io, const vplace *at, int B, int T, float *scratch) {
  size_t N = rows_of(1, B, T), n = N * (size_t)v->blk.d; /* scratch: dh0 [n], dh1 [n], block scratch */
  float *dh[2] = {scratch, scratch + n};
  memset(dh[0], 0, sizeof(float) * n);
  norm_backward(net, v, dh[0], io->dy, at->last, at->last + n, N);
  layers_backward(net, v, rope, wants_input_grad(io) ? io->dxs : NULL, io->k, io->scale, dh, at, B, T,
                  scratch + 2 * n);
}

/* ---- K calls as one batch ------------------------------------------------------------------------ */

/* dst = scale * sum of xs (summed in order, then scaled). */
static void gather(float *dst, const float *const *xs, int k, float scale, size_t n) {
  memcpy(dst, xs[0], sizeof(float) * n);
  for (int r = 1; r < k; r++)
    for (size_t x = 0; x < n; x++) dst[x] += xs[r][x];
  if (scale != 1.0f)
    for (size_t x = 0; x < n; x++) dst[x] *= scale;
}

static void forward_batch(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                          const lmn_vertex_io *io, int K, const vplace *at, int B, int T, float *scratch) {
  size_t rows = rows_of(K, B, T), n = rows_of(1, B, T) * (size_t)v->blk.d, N = (size_t)K * n;
  /* scratch: gin [K*B*T, d], h0, h1, normed (same), block scratch */
  float *gin = scratch, *h[2] = {scratch + N, scratch + 2 * N}, *normed = scratch + 3 * N;
  for (int j = 0; j < K; j++) gather(gin + j * n, io[j].xs, io[j].k, io[j].scale, n);
  const float *xs[1] = {gin};
  layers_forward(net, v, rope, xs, 1, 1.0f, at, h, K * B, T, scratch + 4 * N);
  norm_forward(net, v, normed, at->last + N, at->last, rows);
  for (int j = 0; j < K; j++) memcpy(io[j].y, normed + j * n, sizeof(float) * n);
}

static void backward_batch(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                           const lmn_vertex_io *io, int K, const vplace *at, int B, int T, float *scratch) {
  size_t rows = rows_of(K, B, T), n = rows_of(1, B, T) * (size_t)v->blk.d, N = (size_t)K * n;
  /* scratch: dY [K*B*T, d], dh0, dh1, dgin (same), block scratch */
  float *dY = scratch, *dh[2] = {scratch + N, scratch + 2 * N}, *dgin = scratch + 3 * N;
  int any = 0;
  for (int j = 0; j < K; j++) {
    memcpy(dY + j * n, io[j].dy, sizeof(float) * n);
    any |= wants_input_grad(&io[j]);
  }
  memset(dh[0], 0, sizeof(float) * N);
  norm_backward(net, v, dh[0], dY, at->last, at->last + N, rows);
  if (any) memset(dgin, 0, sizeof(float) * N);
  float *const to[1] = {dgin};
  layers_backward(net, v, rope, any ? to : NULL, 1, 1.0f, dh, at, K * B, T, scratch + 4 * N);
  for (int j = 0; j < K; j++)
    for (int r = 0; io[j].dxs && r < io[j].k; r++) {
      float *dx = io[j].dxs[r];
      const float *src = dgin + j * n;
      if (!dx) continue;
      for (size_t x = 0; x < n; x++) dx[x] += io[j].scale * src[x];
    }
}

/* ---- entry points -------------------------------------------------------------------------------- */

static void forward_at(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope, const lmn_vertex_io *io,
                       int K, const vplace *at, int B, int T, float *scratch) {
  if (K == 1)
    forward_one(net, v, rope, io, at, B, T, scratch);
  else if (K > 1)
    forward_batch(net, v, rope, io, K, at, B, T, scratch);
}

void lmn_vertex_forward_kept(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                             const lmn_vertex_io *io, int K, float *saved, float *kept, int B, int T,
                             float *scratch) {
  vplace at = place_of(v, saved, kept, K * B, T);
  forward_at(net, v, rope, io, K, &at, B, T, scratch);
}

void lmn_vertex_backward_kept(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                              const lmn_vertex_io *io, int K, float *saved, float *kept, int B, int T,
                              float *scratch) {
  vplace at = place_of(v, saved, kept, K * B, T);
  if (K == 1)
    backward_one(net, v, rope, io, &at, B, T, scratch);
  else if (K > 1)
    backward_batch(net, v, rope, io, K, &at, B, T, scratch);
}

void lmn_vertex_forward_only(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                             const lmn_vertex_io *io, int K, float *last, int B, int T, float *scratch) {
  vplace at = {NULL, last, NULL, 0}; /* the layers keep nothing: their blocks work in scratch */
  forward_at(net, v, rope, io, K, &at, B, T, scratch);
}

size_t lmn_vertex_last_floats(const lmn_vertex_cfg *v, int K, int B, int T) {
  return rows_of(K, B, T) * ((size_t)v->blk.d + 2);
}

void lmn_vertex_forward(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope, const lmn_vertex_io *io,
                        int K, float *saved, int B, int T, float *scratch) {
  lmn_vertex_forward_kept(net, v, rope, io, K, saved, NULL, B, T, scratch);
}

void lmn_vertex_backward(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope, const lmn_vertex_io *io,
                         int K, const float *saved, int B, int T, float *scratch) {
  lmn_vertex_backward_kept(net, v, rope, io, K, (float *)saved, NULL, B, T, scratch);
}

size_t lmn_vertex_kept_floats(const lmn_vertex_cfg *v, int K, int B, int T) {
  return (size_t)v->layers * rows_of(K, B, T) * (size_t)v->blk.d + lmn_vertex_last_floats(v, K, B, T);
}

size_t lmn_vertex_work_floats(const lmn_vertex_cfg *v, int K, int B, int T) {
  return lmn_block_work_floats(&v->blk, K * B, T);
}

/* ---- blocks that recompute ----------------------------------------------------------------------- */

size_t lmn_block_work_floats(const lmn_block_cfg *c, int B, int T) {
  return lmn_block_saved_floats(c, B, T) + rows_of(1, B, T) * (size_t)c->d;
}

void lmn_block_keep_input(const lmn_block_cfg *c, float *keep, const float *saved, int B, int T) {
  memcpy(keep, saved, sizeof(float) * rows_of(1, B, T) * (size_t)c->d);
}

void lmn_block_recompute(const lmn_block_cfg *c, const lmn_block_w *w, const lmn_rope *rope,
                         const float *keep, float *saved, int B, int T, float *scratch, lmn_pool *pool) {
  const float *xs[1] = {keep};
  float *y = saved + lmn_block_saved_floats(c, B, T);
  lmn_block_forward_saved(c, w, rope, y, xs, 1, 1.0f, saved, B, T, scratch, pool);
}

void lmn_vertex_forward_cached(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                               const lmn_vertex_io *io, float *kv, int ctx, int pos0, int T, float *scratch) {
  size_t n = (size_t)T * (size_t)v->blk.d, kvd = kv_dim(v);
  /* scratch: h0, h1, last [T, d], then block scratch (the final norm's stats after the layers) */
  float *h[2] = {scratch, scratch + n}, *last = scratch + 2 * n, *blk_scratch = scratch + 3 * n;
  const float *const *xs = io->xs, *cur;
  int k = io->k;
  float scale = io->scale;
  for (int l = 0; l < v->layers; l++) {
    lmn_block_w w;
    lmn_block_g g;
    lmn_block_bind(net, v->bind[l], &w, &g);
    float *y = l == v->layers - 1 ? last : h[l & 1], *kc = kv + (size_t)l * 2 * (size_t)ctx * kvd;
    lmn_block_forward_cached(&v->blk, &w, rope, y, xs, k, scale, kc, kc + (size_t)ctx * kvd, pos0, T, blk_scratch,
                             net->pool);
    cur = y;
    xs = &cur;
    k = 1;
    scale = 1.0f;
  }
  norm_forward(net, v, io->y, blk_scratch, last, (size_t)T);
}
