/* vertex.c: the vertex functions of vertex.h, which generated code calls for every vertex op: a pre-trained
 * model's decoder layers and final norm, run forward (keeping what the backward needs), backward, or forward
 * with KV caches, for one call or for K calls of one shared weight set batched as K*B sequences. Every kernel
 * call, buffer and float expression is the one lmnc's straight-line code used before, so results are
 * unchanged bit for bit.
 *
 * Regions, d = width, L = layers, one run over S sequences of T rows (S = B for one call, K*B for a group;
 * R = S*T rows, n = R*d):
 *   saved:   L * lmn_block_saved_floats(blk, S, T) (layer l's at l * bs), then last [R, d] (the last layer's
 *            output, the final norm's input), mean [R] (LayerNorm only), rstd [R]
 *   scratch: one call:  h0 [R, d], h1 [R, d]                  (backward: dh0, dh1), then block scratch
 *            a group:   gin, h0, h1, normed [R, d] each       (backward: dY, dh0, dh1, dgin), then block
 *            cached:    h0, h1, last [T, d], then block scratch (the final norm's mean [T] and rstd [T] at its
 *                       start, read by nobody; the generated code put RMSNorm's rstd at +0, this at +T) */
#include "vertex.h"

#include <string.h>

#include "kernels.h"

void lmn_block_bind(const lmn_net *net, const int idx[LMN_BM_COUNT], lmn_block_w *w, lmn_block_g *g) {
#define LMN_BIND_(m, gguf, hf, hf_gpt2) \
  w->m = lmn_w(net, idx[LMN_BM_##m]);   \
  g->m = lmn_g(net, idx[LMN_BM_##m]);
  LMN_BLOCK_MEMBER_LIST(LMN_BIND_)
#undef LMN_BIND_
}

/* ---- sizes ---------------------------------------------------------------------------------------- */

size_t lmn_vertex_saved_floats(const lmn_vertex_cfg *v, int K, int B, int T) {
  size_t rows = (size_t)K * B * T;
  return (size_t)v->layers * lmn_block_saved_floats(&v->blk, K * B, T) + rows * (size_t)v->blk.d + 2 * rows;
}

size_t lmn_vertex_scratch_floats(const lmn_vertex_cfg *v, int K, int B, int T, int n_threads) {
  size_t n = (size_t)K * B * T * (size_t)v->blk.d;
  return lmn_block_scratch_floats(&v->blk, K * B, T, n_threads) + (K > 1 ? 4 : 2) * n;
}

size_t lmn_vertex_cache_scratch_floats(const lmn_vertex_cfg *v, int T, int n_threads) {
  return lmn_block_cache_scratch_floats(&v->blk, T, n_threads) + (size_t)3 * T * v->blk.d + 2 * (size_t)T;
}

/* Width of one cached key or value row. */
static size_t kv_width(const lmn_vertex_cfg *v) {
  return (size_t)v->blk.kv_heads * (size_t)v->blk.hd;
}

size_t lmn_vertex_cache_floats(const lmn_vertex_cfg *v, int ctx) {
  return (size_t)v->layers * 2 * (size_t)ctx * kv_width(v);
}

/* ---- one run of the layers ---------------------------------------------------------------------------- */

/* What every step of one run over S sequences of T rows reads. */
typedef struct vx_run {
  const lmn_net *net;
  const lmn_vertex_cfg *v;
  const lmn_rope *rope;
  int S, T;           /* sequences (K*B for a group) and their length */
  size_t rows, n;     /* rows = S*T, n = rows*d */
  size_t bs;          /* saved floats of one layer */
  float *blk_scratch; /* the blocks' scratch */
} vx_run;

/* The run's shape; `lead` floats of scratch (the run's own buffers) come before the blocks' scratch. */
static vx_run run_of(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope, int S, int T,
                     float *scratch, size_t lead) {
  vx_run r = {net, v, rope, S, T, (size_t)S * T, (size_t)S * T * (size_t)v->blk.d, 0, scratch + lead};
  r.bs = lmn_block_saved_floats(&v->blk, S, T);
  return r;
}

/* The KV caches of a cached run (batch 1, T new positions at pos0). */
typedef struct vx_kv {
  float *kv; /* [layers][2][ctx, kvd]: layer l's keys at l*2*ctx*kvd, values ctx*kvd further */
  int ctx, pos0;
} vx_kv;

/* The layers forward: layer 0 reads scale * sum_{i<k} xs[i] (fused into its first norm), layer l > 0 the
 * previous output; layer l writes h[l & 1], the last one writes last [rows, d]. With saved (training) layer l
 * keeps its tensors at saved + l*bs; with kv (decoding) it appends to its caches instead. */
static void layers_forward(const vx_run *r, const float *const *xs, int k, float scale, float *const h[2],
                           float *last, float *saved, const vx_kv *kv) {
  const lmn_vertex_cfg *v = r->v;
  const float *const *in = xs;
  const float *cur;
  for (int l = 0; l < v->layers; l++) {
    lmn_block_w w;
    lmn_block_g g;
    lmn_block_bind(r->net, v->bind[l], &w, &g);
    float *y = l == v->layers - 1 ? last : h[l & 1];
    if (kv) {
      float *kc = kv->kv + (size_t)l * 2 * (size_t)kv->ctx * kv_width(v);
      lmn_block_forward_cached(&v->blk, &w, r->rope, y, in, k, scale, kc, kc + (size_t)kv->ctx * kv_width(v),
                               kv->pos0, r->T, r->blk_scratch, r->net->pool);
    } else {
      lmn_block_forward(&v->blk, &w, r->rope, y, in, k, scale, saved + (size_t)l * r->bs, r->S, r->T,
                        r->blk_scratch, r->net->pool);
    }
    cur = y;
    in = &cur;
    k = 1;
    scale = 1.0f;
  }
}

/* The layers backward: dh[0] [rows, d] holds dL/d(last) on entry; layer l reads dh[(L-1-l) & 1] and writes
 * the gradient of its input into the other (zeroed first), layer 0 into dxs[i] (scaled by scale; dxs NULL:
 * none wanted). Weight gradients accumulate into the net's gradients (NULL where frozen). */
static void layers_backward(const vx_run *r, const float *saved, float *const dh[2], float *const *dxs, int k,
                            float scale) {
  const lmn_vertex_cfg *v = r->v;
  int L = v->layers;
  for (int l = L - 1; l >= 0; l--) {
    lmn_block_w w;
    lmn_block_g g;
    lmn_block_bind(r->net, v->bind[l], &w, &g);
    float *dy = dh[(L - 1 - l) & 1], *dprev = dh[(L - l) & 1];
    if (l > 0) memset(dprev, 0, sizeof(float) * r->n);
    lmn_block_backward(&v->blk, &w, r->rope, &g, l > 0 ? &dprev : dxs, l > 0 ? 1 : k, l > 0 ? 1.0f : scale,
                       dy, saved + (size_t)l * r->bs, r->S, r->T, r->blk_scratch, r->net->pool);
  }
}

/* ---- the final norm ------------------------------------------------------------------------------------ */

static int layer_norm(const lmn_vertex_cfg *v) {
  return v->blk.kind == LMN_BLOCK_GPT2;
}

/* y [rows, d] = norm(x [rows, d]); stats: mean [rows] (LayerNorm), then rstd [rows]. */
static void norm_forward(const vx_run *r, float *y, const float *x, float *stats) {
  const lmn_vertex_cfg *v = r->v;
  int rows = (int)r->rows;
  if (layer_norm(v))
    lmn_layernorm_forward(y, stats, stats + rows, x, lmn_w(r->net, v->norm_w), lmn_w(r->net, v->norm_b), rows,
                          v->blk.d, v->blk.eps);
  else
    lmn_rmsnorm_forward(y, stats + rows, x, lmn_w(r->net, v->norm_w), rows, v->blk.d, v->blk.eps);
}

/* dx [rows, d] += dL/dx of the final norm given dy; its weight gradients accumulate (NULL where frozen). */
static void norm_backward(const vx_run *r, float *dx, const float *dy, const float *x, const float *stats) {
  const lmn_vertex_cfg *v = r->v;
  const lmn_net *net = r->net;
  int rows = (int)r->rows;
  if (layer_norm(v))
    lmn_layernorm_backward(dx, lmn_g(net, v->norm_w), lmn_g(net, v->norm_b), dy, x, lmn_w(net, v->norm_w),
                           stats, stats + rows, rows, v->blk.d);
  else
    lmn_rmsnorm_backward(dx, lmn_g(net, v->norm_w), dy, x, lmn_w(net, v->norm_w), stats + rows, rows,
                         v->blk.d);
}

/* ---- calls and groups ---------------------------------------------------------------------------------- */

/* Whether a call wants the gradient of any of its inputs. */
static int wants_dx(const lmn_vertex_io *io) {
  if (!io->dxs) return 0;
  for (int i = 0; i < io->k; i++)
    if (io->dxs[i]) return 1;
  return 0;
}

/* gin [K, n]: slice j = call j's inputs summed in order, then times its scale (when not 1). */
static void gather_inputs(const lmn_vertex_io *io, int K, size_t n, float *gin) {
  for (int j = 0; j < K; j++) {
    float *g = gin + (size_t)j * n;
    memcpy(g, io[j].xs[0], sizeof(float) * n);
    for (int i = 1; i < io[j].k; i++)
      for (size_t x = 0; x < n; x++) g[x] += io[j].xs[i][x];
    if (io[j].scale != 1.0f)
      for (size_t x = 0; x < n; x++) g[x] *= io[j].scale;
  }
}

/* Call j's wanted input gradients += its scale * slice j of dgin [K, n] (calls, then inputs, in order). */
static void scatter_input_grads(const lmn_vertex_io *io, int K, size_t n, const float *dgin) {
  for (int j = 0; j < K; j++) {
    const float *src = dgin + (size_t)j * n;
    float scale = io[j].scale;
    for (int i = 0; io[j].dxs && i < io[j].k; i++) {
      float *dx = io[j].dxs[i];
      if (!dx) continue;
      if (scale == 1.0f)
        for (size_t x = 0; x < n; x++) dx[x] += src[x];
      else
        for (size_t x = 0; x < n; x++) dx[x] += scale * src[x];
    }
  }
}

static void forward_one(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                        const lmn_vertex_io *io, float *saved, int B, int T, float *scratch) {
  size_t n = (size_t)B * T * (size_t)v->blk.d;
  vx_run r = run_of(net, v, rope, B, T, scratch, 2 * n);
  float *const h[2] = {scratch, scratch + n}; /* [B*T, d] each */
  float *last = saved + (size_t)v->layers * r.bs;
  layers_forward(&r, io->xs, io->k, io->scale, h, last, saved, NULL);
  norm_forward(&r, io->y, last, last + n);
}

static void forward_group(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                          const lmn_vertex_io *io, int K, float *saved, int B, int T, float *scratch) {
  size_t n = (size_t)B * T * (size_t)v->blk.d, N = (size_t)K * n;
  vx_run r = run_of(net, v, rope, K * B, T, scratch, 4 * N);
  float *gin = scratch, *normed = scratch + 3 * N; /* [K*B*T, d] each */
  float *const h[2] = {scratch + N, scratch + 2 * N};
  float *last = saved + (size_t)v->layers * r.bs;
  gather_inputs(io, K, n, gin);
  const float *xs[1] = {gin};
  layers_forward(&r, xs, 1, 1.0f, h, last, saved, NULL);
  norm_forward(&r, normed, last, last + N);
  for (int j = 0; j < K; j++) memcpy(io[j].y, normed + (size_t)j * n, sizeof(float) * n);
}

void lmn_vertex_forward(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                        const lmn_vertex_io *io, int K, float *saved, int B, int T, float *scratch) {
  if (K > 1)
    forward_group(net, v, rope, io, K, saved, B, T, scratch);
  else
    forward_one(net, v, rope, io, saved, B, T, scratch);
}

static void backward_one(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                         const lmn_vertex_io *io, const float *saved, int B, int T, float *scratch) {
  size_t n = (size_t)B * T * (size_t)v->blk.d;
  vx_run r = run_of(net, v, rope, B, T, scratch, 2 * n);
  float *const dh[2] = {scratch, scratch + n}; /* [B*T, d] each */
  const float *last = saved + (size_t)v->layers * r.bs;
  memset(dh[0], 0, sizeof(float) * n);
  norm_backward(&r, dh[0], io->dy, last, last + n);
  layers_backward(&r, saved, dh, wants_dx(io) ? io->dxs : NULL, io->k, io->scale);
}

static void backward_group(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                           const lmn_vertex_io *io, int K, const float *saved, int B, int T, float *scratch) {
  size_t n = (size_t)B * T * (size_t)v->blk.d, N = (size_t)K * n;
  vx_run r = run_of(net, v, rope, K * B, T, scratch, 4 * N);
  float *dY = scratch, *dgin = scratch + 3 * N; /* [K*B*T, d] each */
  float *const dh[2] = {scratch + N, scratch + 2 * N};
  const float *last = saved + (size_t)v->layers * r.bs;
  int any = 0;
  for (int j = 0; j < K; j++) {
    memcpy(dY + (size_t)j * n, io[j].dy, sizeof(float) * n);
    any |= wants_dx(&io[j]);
  }
  memset(dh[0], 0, sizeof(float) * N);
  norm_backward(&r, dh[0], dY, last, last + N);
  if (any) memset(dgin, 0, sizeof(float) * N);
  layers_backward(&r, saved, dh, any ? &dgin : NULL, 1, 1.0f);
  if (any) scatter_input_grads(io, K, n, dgin);
}

void lmn_vertex_backward(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                         const lmn_vertex_io *io, int K, const float *saved, int B, int T, float *scratch) {
  if (K > 1)
    backward_group(net, v, rope, io, K, saved, B, T, scratch);
  else
    backward_one(net, v, rope, io, saved, B, T, scratch);
}

void lmn_vertex_forward_cached(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                               const lmn_vertex_io *io, float *kv, int ctx, int pos0, int T, float *scratch) {
  size_t n = (size_t)T * (size_t)v->blk.d;
  vx_run r = run_of(net, v, rope, 1, T, scratch, 3 * n);
  float *const h[2] = {scratch, scratch + n}; /* [T, d] each */
  float *last = scratch + 2 * n;              /* [T, d] */
  const vx_kv caches = {kv, ctx, pos0};
  layers_forward(&r, io->xs, io->k, io->scale, h, last, NULL, &caches);
  norm_forward(&r, io->y, last, r.blk_scratch);
}
