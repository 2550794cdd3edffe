/* vertex.h: one vertex of a network (a pre-trained model's decoder layers and final norm, embedding and head
 * stripped) as whole functions: forward (keeping what the backward needs), backward, forward with KV caches,
 * and the sizes of their saved and scratch regions. K calls of one shared weight set whose inputs are ready
 * together run as one batch of K*B sequences (every GEMM one call over all their rows). Generated code calls
 * these; lmnc calls the size functions, so `lmnc info` and `NAME info` plan the same bytes. */
#ifndef LMN_VERTEX_H
#define LMN_VERTEX_H

#include <stddef.h>

#include "modules.h"
#include "net.h"

/* What a vertex is: its block shape, layer count, the parameter indices of every layer's members
 * (-1 where the block kind has none) and of its final norm (norm_b: LayerNorm bias, -1 for RMSNorm). */
typedef struct lmn_vertex_cfg {
  lmn_block_cfg blk;
  int layers;
  const int (*bind)[LMN_BM_COUNT]; /* [layers] */
  int norm_w, norm_b;
} lmn_vertex_cfg;

/* One call of the vertex. Forward: xs[0..k) are its inputs [B*T, d] (aggregated as scale * sum, fused into
 * the first norm), y its output [B*T, d]. Backward: dy = dL/dy [B*T, d] (not modified), dxs[i] += scale *
 * dL/d(input i) (dxs NULL, or an entry NULL: that input needs no gradient). */
typedef struct lmn_vertex_io {
  const float *const *xs;
  int k;
  float scale;
  float *y;
  const float *dy;
  float *const *dxs;
} lmn_vertex_io;

/* Saved floats of K calls at B x T: layers * lmn_block_saved_floats(blk, K*B, T) + K*B*T*d + 2*K*B*T. */
size_t lmn_vertex_saved_floats(const lmn_vertex_cfg *v, int K, int B, int T);
/* Scratch floats of forward and backward: K = 1: block scratch (B) + 2*B*T*d; K > 1: block scratch (K*B)
 * + 4*K*B*T*d. */
size_t lmn_vertex_scratch_floats(const lmn_vertex_cfg *v, int K, int B, int T, int n_threads);
/* Scratch floats of the cached forward of T new positions. */
size_t lmn_vertex_cache_scratch_floats(const lmn_vertex_cfg *v, int T, int n_threads);
/* KV-cache floats of one call for ctx positions: layers * 2 * ctx * kv_heads * hd. */
size_t lmn_vertex_cache_floats(const lmn_vertex_cfg *v, int ctx);

/* io[0..K): the calls. saved: lmn_vertex_saved_floats(v, K, B, T) floats. Weights and gradients are read
 * through net (lmn_w / lmn_g: NULL gradients for frozen tensors or tensors the stage does not train); the
 * network's pool runs the threads. K = 1 fuses the aggregation into the first norm; K > 1 gathers each call's
 * aggregated input into one batch (its inputs summed in order, then times its scale when that is not 1, as the
 * generated group code did) and copies the final norm's rows out to each y; its backward adds scale * the
 * batch's input gradient to each wanted dxs[i], call by call, input by input. */
void lmn_vertex_forward(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope, const lmn_vertex_io *io,
                        int K, float *saved, int B, int T, float *scratch);
/* Gradients of the calls of one lmn_vertex_forward (same io, K, saved, B, T). */
void lmn_vertex_backward(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope, const lmn_vertex_io *io,
                         int K, const float *saved, int B, int T, float *scratch);
/* Batch 1 with KV caches: T new positions at pos0.. (as lmn_block_forward_cached); kv holds the layers' caches
 * (lmn_vertex_cache_floats(v, ctx)), layer l's keys at kv + l*2*ctx*kvd and values ctx*kvd further. */
void lmn_vertex_forward_cached(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                               const lmn_vertex_io *io, float *kv, int ctx, int pos0, int T, float *scratch);

/* Recomputation (arena.h's keep ops). A vertex that recomputes keeps, instead of its saved region, its
 * layers' inputs (the residual stream, [K*B*T, d] per layer) and its final norm's input and statistics:
 * lmn_vertex_kept_floats; its layers' saved tensors go one layer at a time into a workspace of
 * lmn_vertex_work_floats, and its backward runs each layer's forward again from its kept input just before
 * that layer's backward. One input with scale 1 gives the same r, so the backward reads bit for bit what the
 * forward computed. kept NULL: as lmn_vertex_forward / _backward with saved. */
size_t lmn_vertex_kept_floats(const lmn_vertex_cfg *v, int K, int B, int T);
size_t lmn_vertex_work_floats(const lmn_vertex_cfg *v, int K, int B, int T);
void lmn_vertex_forward_kept(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                             const lmn_vertex_io *io, int K, float *saved, float *kept, int B, int T,
                             float *scratch);
void lmn_vertex_backward_kept(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                              const lmn_vertex_io *io, int K, float *saved, float *kept, int B, int T,
                              float *scratch);
/* A forward with no backward after it (a vertex nothing upstream of which trains): its layers save nothing
 * (their blocks work in scratch); last holds the final norm's input and statistics,
 * lmn_vertex_last_floats = K*B*T*(d + 2) floats. The outputs are those of lmn_vertex_forward. */
size_t lmn_vertex_last_floats(const lmn_vertex_cfg *v, int K, int B, int T);
void lmn_vertex_forward_only(const lmn_net *net, const lmn_vertex_cfg *v, const lmn_rope *rope,
                             const lmn_vertex_io *io, int K, float *last, int B, int T, float *scratch);
/* A block that recomputes keeps its aggregated input r (the first B*T*d floats of its saved region:
 * lmn_block_keep_input copies it after the forward) and runs its forward again from it into saved (its output
 * after lmn_block_saved_floats there) before its backward. */
void lmn_block_keep_input(const lmn_block_cfg *c, float *keep, const float *saved, int B, int T);
/* The workspace lmn_block_recompute writes: saved, then the output. */
size_t lmn_block_work_floats(const lmn_block_cfg *c, int B, int T);
void lmn_block_recompute(const lmn_block_cfg *c, const lmn_block_w *w, const lmn_rope *rope,
                         const float *keep, float *saved, int B, int T, float *scratch, lmn_pool *pool);

/* Binds a block's weights and gradients from LMN_BM_COUNT parameter indices (-1: none). */
void lmn_block_bind(const lmn_net *net, const int idx[LMN_BM_COUNT], lmn_block_w *w, lmn_block_g *g);

#endif
