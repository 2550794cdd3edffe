/* kernels.h: the fused forward/backward kernels of liblmn that generated code calls, one module per layer
 * kind (k_linear.c, k_norm.c, k_rope.c, k_attention.c, k_act.c, k_embed.c, k_loss.c, k_adamw.c).
 *
 * Conventions (all kernels):
 * - Row-major; activations [B, T, C] are flattened to [N = B*T, C]. Every buffer argument carries its shape.
 * - Weights use the PyTorch nn.Linear layout W[out][in] (y = x W^T + b), which is also GGUF's byte layout.
 * - Kernels come in pairs lmn_X_forward / lmn_X_backward. Backward kernels ACCUMULATE (+=) into their
 *   gradient buffers, which the caller zeroes; a weight-gradient pointer (dW, dw, db, ...) may be NULL,
 *   meaning "frozen": that gradient is not computed at all (its GEMM or reduction is skipped), and an
 *   input-gradient pointer (dx, ...) may be NULL when nobody needs it. The few in-place kernels (RoPE, the
 *   cross-entropy over logits, lmn_gelu_backward_inplace) say so.
 * - Kernels never allocate: scratch, where needed, is passed in; its size in floats comes from a
 *   lmn_X_scratch_floats() function so that generated code can plan one arena. No global mutable state.
 * - Dimensions are int (as cblas takes them); offsets are computed in size_t, so N*C may exceed 2^31.
 * - Every GEMM is one cblas_sgemm (OpenBLAS); everything else is plain C11 plus the GCC/Clang vector
 *   extension (lmn_vf below), so that it vectorises at -O2. */
#ifndef LMN_KERNELS_H
#define LMN_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "threads.h"

/* ---------------------------------------------------------------------------------------------------------
 * Linear (k_linear.c): y = x W^T (+ b).
 */

/* y = x W^T + b (b may be NULL). y is overwritten. */
void lmn_linear_forward(float *y,       /* [N, out] */
                        const float *x, /* [N, in] */
                        const float *W, /* [out, in] */
                        const float *b, /* [out] or NULL */
                        int N, int in, int out);

/* dx += dy W; dW += dy^T x; db += sum over rows of dy. Any of dx, dW, db may be NULL (skipped: a frozen
 * layer with dW = db = NULL costs exactly one GEMM). x is only read when dW != NULL. */
void lmn_linear_backward(float *dx,       /* [N, in] or NULL */
                         float *dW,       /* [out, in] or NULL */
                         float *db,       /* [out] or NULL */
                         const float *dy, /* [N, out] */
                         const float *x,  /* [N, in] */
                         const float *W,  /* [out, in] */
                         int N, int in, int out);

/* ---------------------------------------------------------------------------------------------------------
 * Norms (k_norm.c). RMSNorm: y = r / sqrt(mean(r^2) + eps) * w. LayerNorm: y = (r - mean) / sqrt(var + eps)
 * * w + b (biased variance). Saved for the backward: rstd [N] (and mean [N] for LayerNorm).
 *
 * Fusion of what comes before the norm: "add" kernels first form
 *     r = scale * (xs[0] + xs[1] + ... + xs[k-1])
 * write r out (it is the residual stream, or the vertex input), then normalise it, all in one pass over
 * each row. k = 2, scale = 1 is the residual add + norm of a decoder block (wrapped by the "residual"
 * kernels below); k = in-degree with scale = 1 (sum) or 1/k (mean) is LMNet's edge aggregation fused into
 * the receiving vertex's first norm (the aggregated input is also that vertex's first residual stream).
 *
 * Their backward takes dr, the gradient reaching r from its OTHER consumers (the residual path), and
 *     dr += norm_backward(dy)            (dr now holds dL/dr; may be NULL when r has no other consumer)
 *     dxs[i] += scale * dL/dr            (for every i with dxs != NULL and dxs[i] != NULL)
 * Passing dxs = NULL and then using dr itself as the gradient of the inputs is the in-place (llm.c) style
 * for a residual stream: for k = 2, scale = 1, dL/dx = dL/da = dL/dr. dxs[i] must not alias dr.
 */

void lmn_rmsnorm_forward(float *y,       /* [N, C] */
                         float *rstd,    /* [N] out: 1/sqrt(mean(x^2) + eps) */
                         const float *x, /* [N, C] */
                         const float *w, /* [C] */
                         int N, int C, float eps);
/* dx += dL/dx; dw += sum_n dy * x * rstd. */
void lmn_rmsnorm_backward(float *dx,         /* [N, C] or NULL */
                          float *dw,         /* [C] or NULL (frozen) */
                          const float *dy,   /* [N, C] */
                          const float *x,    /* [N, C] */
                          const float *w,    /* [C] */
                          const float *rstd, /* [N] from the forward */
                          int N, int C);

/* r is required (it is the residual stream / vertex input the backward reads). */
void lmn_add_rmsnorm_forward(float *r,                           /* [N, C] out: scale * sum_i xs[i] */
                             float *y,                           /* [N, C] out: rmsnorm(r) */
                             float *rstd,                        /* [N] out */
                             const float *const *xs,             /* k pointers to [N, C] */
                             int k, float scale, const float *w, /* [C] */
                             int N, int C, float eps);
void lmn_add_rmsnorm_backward(float *const *dxs, /* k pointers to [N, C] (each may be NULL), or NULL */
                              float *dr,         /* [N, C] in: other consumers' dL/dr; out: total; or NULL */
                              float *dw,         /* [C] or NULL (frozen) */
                              const float *dy,   /* [N, C] */
                              const float *r,    /* [N, C] from the forward */
                              const float *w,    /* [C] */
                              const float *rstd, /* [N] from the forward */
                              int k, float scale, int N, int C);

/* r = x + a; y = rmsnorm(r): lmn_add_rmsnorm_* with k = 2, scale = 1. */
void lmn_residual_rmsnorm_forward(float *r,       /* [N, C] out */
                                  float *y,       /* [N, C] out */
                                  float *rstd,    /* [N] out */
                                  const float *x, /* [N, C] */
                                  const float *a, /* [N, C] */
                                  const float *w, /* [C] */
                                  int N, int C, float eps);
void lmn_residual_rmsnorm_backward(float *dx,         /* [N, C] or NULL */
                                   float *da,         /* [N, C] or NULL */
                                   float *dr,         /* [N, C] in/out (see above) or NULL */
                                   float *dw,         /* [C] or NULL */
                                   const float *dy,   /* [N, C] */
                                   const float *r,    /* [N, C] */
                                   const float *w,    /* [C] */
                                   const float *rstd, /* [N] */
                                   int N, int C);

void lmn_layernorm_forward(float *y,       /* [N, C] */
                           float *mean,    /* [N] out */
                           float *rstd,    /* [N] out: 1/sqrt(var + eps) */
                           const float *x, /* [N, C] */
                           const float *w, /* [C] */
                           const float *b, /* [C] or NULL */
                           int N, int C, float eps);
void lmn_layernorm_backward(float *dx,         /* [N, C] or NULL */
                            float *dw,         /* [C] or NULL */
                            float *db,         /* [C] or NULL */
                            const float *dy,   /* [N, C] */
                            const float *x,    /* [N, C] */
                            const float *w,    /* [C] */
                            const float *mean, /* [N] */
                            const float *rstd, /* [N] */
                            int N, int C);

void lmn_add_layernorm_forward(float *r,                           /* [N, C] out: scale * sum_i xs[i] */
                               float *y,                           /* [N, C] out */
                               float *mean,                        /* [N] out */
                               float *rstd,                        /* [N] out */
                               const float *const *xs,             /* k pointers to [N, C] */
                               int k, float scale, const float *w, /* [C] */
                               const float *b,                     /* [C] or NULL */
                               int N, int C, float eps);
void lmn_add_layernorm_backward(float *const *dxs, /* k pointers to [N, C] (each may be NULL), or NULL */
                                float *dr,         /* [N, C] in/out or NULL */
                                float *dw,         /* [C] or NULL */
                                float *db,         /* [C] or NULL */
                                const float *dy,   /* [N, C] */
                                const float *r,    /* [N, C] */
                                const float *w,    /* [C] */
                                const float *mean, /* [N] */
                                const float *rstd, /* [N] */
                                int k, float scale, int N, int C);

void lmn_residual_layernorm_forward(float *r, float *y, float *mean, float *rstd, /* [N,C] [N,C] [N] [N] */
                                    const float *x, const float *a,               /* [N, C] each */
                                    const float *w, const float *b,               /* [C], [C] or NULL */
                                    int N, int C, float eps);
void lmn_residual_layernorm_backward(float *dx, float *da, float *dr,      /* [N, C] each, or NULL */
                                     float *dw, float *db,                 /* [C] each, or NULL */
                                     const float *dy, const float *r,      /* [N, C] each */
                                     const float *w,                       /* [C] */
                                     const float *mean, const float *rstd, /* [N] each */
                                     int N, int C);

/* ---------------------------------------------------------------------------------------------------------
 * RoPE (k_rope.c), applied in place to q [N, heads*hd] or k [N, kv_heads*hd] right after their projection.
 * Pair p (0 <= p < hd/2) of every head at position `pos` is rotated by angle pos * theta^(-2p/hd):
 *   NORMAL (llama.cpp mode 0, llama-arch GGUF, llama2.c): pairs (x[2p], x[2p+1]), consecutive;
 *   NEOX   (llama.cpp mode 2, qwen2 GGUF, every HF checkpoint): pairs (x[p], x[p + hd/2]), half-split.
 * A llama GGUF's Q/K rows are permuted so that NORMAL on them equals NEOX on the HF rows (formats.md 1.6).
 * Row n = b*T + t is at position pos0 + t (pos0 = 0 for training; the cache length when decoding).
 */
typedef enum lmn_rope_mode { LMN_ROPE_NORMAL = 0, LMN_ROPE_NEOX = 2 } lmn_rope_mode;

/* Fills the tables for positions 0..n_pos-1 (angles computed in double): cos_t[pos][p], sin_t[pos][p]. */
void lmn_rope_table(float *cos_t, /* [n_pos, hd/2] */
                    float *sin_t, /* [n_pos, hd/2] */
                    int n_pos, int hd, double theta);
/* x = rotate(x, +angle), in place. Needs pos0 + T <= n_pos of the tables; hd even. */
void lmn_rope_forward(float *x,           /* [B*T, heads*hd] in/out */
                      const float *cos_t, /* [n_pos, hd/2] */
                      const float *sin_t, /* [n_pos, hd/2] */
                      int B, int T, int heads, int hd, int pos0, lmn_rope_mode mode);
/* In place: dx holds dL/d(rotated x) on entry and dL/d(x) on exit (rotation by -angle; RoPE is
 * orthogonal). Not an accumulation: the buffer is transformed. */
void lmn_rope_backward(float *dx,          /* [B*T, heads*hd] in/out */
                       const float *cos_t, /* [n_pos, hd/2] */
                       const float *sin_t, /* [n_pos, hd/2] */
                       int B, int T, int heads, int hd, int pos0, lmn_rope_mode mode);

/* ---------------------------------------------------------------------------------------------------------
 * Causal multi-head attention with GQA (k_attention.c), FlashAttention-2 style: tiled over queries (bq rows)
 * and keys (bk rows), online softmax, never a T x T matrix; per-tile products are cblas_sgemm calls small
 * enough (bq*bk*hd <= 2^18) that OpenBLAS runs them single-threaded inside the pool's threads.
 * Query head h uses kv head h / (heads / kv_heads). Score = scale * q.k; scale = 1/sqrt(hd) normally, 1 for
 * GPT-2 "unscaled" edges. q [N, heads*hd], k and v [N, kv_heads*hd], out [N, heads*hd], N = B*T, head h of a
 * row at columns [h*hd, (h+1)*hd).
 */
typedef struct lmn_attn {
  int B, T;     /* batch and sequence length */
  int heads;    /* query heads */
  int kv_heads; /* key/value heads; divides heads */
  int hd;       /* head dimension */
  float scale;  /* score scale */
  int bq, bk;   /* tile sizes; 0 = defaults (LMN_ATTN_BQ; bk from lmn_attn_default_bk) */
} lmn_attn;

#define LMN_ATTN_BQ 64
/* Default key tile: 64 for hd <= 64, halved per doubling of hd (keeps bq*bk*hd <= 2^18), at least 8. */
int lmn_attn_default_bk(int hd);

/* Scratch (floats) for lmn_attention_forward and lmn_attention_backward with a pool of n_threads threads:
 * n_threads * max(bq*bk + 2*bq, 2*bq*bk + (heads/kv_heads)*T). */
size_t lmn_attention_scratch_floats(const lmn_attn *a, int n_threads);

/* out = softmax(scale q k^T + causal mask) v per head; lse[b][h][t] = log sum_j exp(score) (saved for the
 * backward; may be NULL at inference). Parallel over (b, h, query tile) on pool (NULL = caller only). */
void lmn_attention_forward(float *out,                        /* [N, heads*hd] */
                           float *lse,                        /* [B, heads, T] or NULL */
                           const float *q,                    /* [N, heads*hd] */
                           const float *k,                    /* [N, kv_heads*hd] */
                           const float *v,                    /* [N, kv_heads*hd] */
                           const lmn_attn *a, float *scratch, /* lmn_attention_scratch_floats(a, threads) */
                           lmn_pool *pool);

/* dq += dL/dq, dk += dL/dk, dv += dL/dv (each may be NULL), recomputing scores per tile from the saved lse
 * and D = rowsum(dout * out). Parallel over (b, kv head): each task owns its dk/dv columns and the dq
 * columns of its query heads, so nothing races. */
void lmn_attention_backward(float *dq,                         /* [N, heads*hd] or NULL */
                            float *dk,                         /* [N, kv_heads*hd] or NULL */
                            float *dv,                         /* [N, kv_heads*hd] or NULL */
                            const float *dout,                 /* [N, heads*hd] */
                            const float *out,                  /* [N, heads*hd] from the forward */
                            const float *lse,                  /* [B, heads, T] from the forward */
                            const float *q,                    /* [N, heads*hd] */
                            const float *k,                    /* [N, kv_heads*hd] */
                            const float *v,                    /* [N, kv_heads*hd] */
                            const lmn_attn *a, float *scratch, /* lmn_attention_scratch_floats(a, threads) */
                            lmn_pool *pool);

/* Scratch (floats) for lmn_attention_decode: n_threads * (G*bk + 2*G) with G = heads/kv_heads and bk = a->bk,
 * or by default the largest multiple of 8 in [8, 1024] with G*bk*hd <= 2^18. Independent of the context. */
size_t lmn_attention_decode_scratch_floats(const lmn_attn *a, int n_threads);

/* One new query row at position t against a KV cache holding positions 0..t (the new row's k and v already
 * appended): out = the same row the full forward would give. a->B and a->T are ignored. Parallel over kv
 * heads (the heads of a group are one GEMM with heads/kv_heads rows). */
void lmn_attention_decode(float *out,          /* [heads*hd] */
                          const float *q,      /* [heads*hd] (RoPE applied) */
                          const float *kcache, /* [t+1, kv_heads*hd] (rows beyond t are not read) */
                          const float *vcache, /* [t+1, kv_heads*hd] */
                          int t, const lmn_attn *a,
                          float *scratch, /* lmn_attention_decode_scratch_floats(a, threads) */
                          lmn_pool *pool);

/* ---------------------------------------------------------------------------------------------------------
 * Activations (k_act.c). Element-wise over n = N * width values. silu(g) = g * sigmoid(g);
 * gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GPT-2's tanh approximation), computed as the
 * equal x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)), which has no cancellation for negative x.
 */

/* out = silu(gate) * up (LLaMA/Qwen2 MLP). out may alias gate or up. */
void lmn_swiglu_forward(float *out,        /* [N, ffn] */
                        const float *gate, /* [N, ffn] */
                        const float *up,   /* [N, ffn] */
                        size_t n);
/* dgate += dout * up * silu'(gate); dup += dout * silu(gate). Either may be NULL. */
void lmn_swiglu_backward(float *dgate,      /* [N, ffn] or NULL */
                         float *dup,        /* [N, ffn] or NULL */
                         const float *dout, /* [N, ffn] */
                         const float *gate, /* [N, ffn] */
                         const float *up,   /* [N, ffn] */
                         size_t n);

/* y = gelu(x); y may alias x (in place) when x is not needed by the backward (or is recomputed). */
void lmn_gelu_forward(float *y,       /* [n] */
                      const float *x, /* [n] */
                      size_t n);
/* dx += gelu'(x) * dy; dx must not alias dy. */
void lmn_gelu_backward(float *dx,       /* [n] */
                       const float *dy, /* [n] */
                       const float *x,  /* [n] pre-activation */
                       size_t n);
/* In place: d holds dL/dy on entry, dL/dx on exit (for a gelu output with a single consumer). */
void lmn_gelu_backward_inplace(float *d,       /* [n] in/out */
                               const float *x, /* [n] pre-activation */
                               size_t n);

/* Fused bias + GELU epilogue of a GEMM run without bias: h += b (h keeps the pre-activation for the
 * backward), y = gelu(h). y must not alias h. */
void lmn_bias_gelu_forward(float *y,       /* [N, C] out */
                           float *h,       /* [N, C] in: x W^T, out: x W^T + b */
                           const float *b, /* [C] */
                           int N, int C);
/* g = gelu'(h) * dy; dh += g; db += sum over rows of g (db may be NULL; dh may be NULL). Feed dh to
 * lmn_linear_backward with db = NULL. */
void lmn_bias_gelu_backward(float *dh,       /* [N, C] or NULL */
                            float *db,       /* [C] or NULL */
                            const float *dy, /* [N, C] */
                            const float *h,  /* [N, C] pre-activation (bias included) */
                            int N, int C);

/* ---------------------------------------------------------------------------------------------------------
 * Embedding (k_embed.c). Row n = b*T + t: out[n] = wte[tokens[n]] (+ wpe[pos0 + t] for GPT-2's learned
 * positions). Tied output heads reuse wte through lmn_linear_*, whose dW then accumulates into the same dwte.
 */

/* Returns the number of tokens outside [0, V); their rows are set to zero (plus the position row). */
int lmn_embed_forward(float *out,        /* [B*T, C] */
                      const int *tokens, /* [B*T] */
                      const float *wte,  /* [V, C] */
                      const float *wpe,  /* [pos0 + T, C] or NULL */
                      int B, int T, int C, int V, int pos0);
/* dwte[tokens[n]] += dout[n] (scatter-add; tokens outside [0, V) are skipped); dwpe[pos0 + t] += dout[n].
 * Either may be NULL (frozen). */
void lmn_embed_backward(float *dwte,       /* [V, C] or NULL */
                        float *dwpe,       /* [pos0 + T, C] or NULL */
                        const float *dout, /* [B*T, C] */
                        const int *tokens, /* [B*T] */
                        int B, int T, int C, int V, int pos0);

/* ---------------------------------------------------------------------------------------------------------
 * Softmax + cross-entropy (k_loss.c). Per row n with target y = targets[n] (negative = ignore the row):
 *   loss_n = (1 - eps) * (-log p_y) + eps * mean_j(-log p_j),   p = softmax(logits[n])
 * (PyTorch's label_smoothing = eps), and the result is mean_n loss_n over the n_valid non-ignored rows.
 */

/* In place: logits become dlogits = weight / n_valid * (p - (1 - eps) onehot(y) - eps / V) (zero on
 * ignored rows), i.e. the gradient of weight * (mean loss). One sweep per row computes the online max, the
 * sum of exponentials and the sum of logits, leaving the exponentials in place; a second, cache-hot pass
 * scales them into the gradient (one exp per logit in all). Returns the mean loss (not weighted; 0
 * when no row is valid; NaN when a target is >= V). row_loss (may be NULL) receives loss_n (0 when
 * ignored); n_valid (may be NULL) the count of valid rows. Parallel over rows on pool (NULL = caller). */
float lmn_xent_forward_backward(float *logits,      /* [N, V] in: logits, out: dlogits */
                                const int *targets, /* [N] */
                                int N, int V, float smoothing, float weight,
                                float *row_loss, /* [N] or NULL */
                                int *n_valid, lmn_pool *pool);
/* The same loss without touching the logits (evaluation). */
float lmn_xent_forward(const float *logits,                            /* [N, V] */
                       const int *targets,                             /* [N] */
                       int N, int V, float smoothing, float *row_loss, /* [N] or NULL */
                       int *n_valid, lmn_pool *pool);

/* ---------------------------------------------------------------------------------------------------------
 * Optimiser (k_adamw.c): one pass over a flat array of trainable parameters (decoupled weight decay as in
 * PyTorch AdamW). Tensors that take no weight decay (norms, biases) are laid out in their own contiguous
 * range and updated by a second call with weight_decay = 0.
 */

/* With g = grad_scale * grad (grad_scale: 1, or the clipping factor of lmn_clip_scale):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  m^ = m / (1 - b1^t);  v^ = v / (1 - b2^t)
 *   p = p - lr * (m^ / (sqrt(v^) + eps) + weight_decay * p)       (t = 1 on the first step).
 * Hyper-parameters are doubles, as in PyTorch: 1 - beta2 is formed before rounding to float (0.999f is
 * 0.99900001, whose complement is off by 1.3e-5 relative). */
void lmn_adamw_update(float *p,          /* [n] */
                      const float *grad, /* [n] */
                      float *m,          /* [n] first moment, zero at t = 1 */
                      float *v,          /* [n] second moment, zero at t = 1 */
                      size_t n, double lr, double beta1, double beta2, double eps, double weight_decay, int t,
                      float grad_scale);
/* sum of x^2 (accumulated in double): sum it over every gradient array for the global norm. */
double lmn_sumsq(const float *x, /* [n] */
                 size_t n);
/* Clipping factor min(1, max_norm / (sqrt(sumsq) + 1e-6)); 1 when max_norm <= 0 (no clipping). */
float lmn_clip_scale(double sumsq, float max_norm);

/* ---------------------------------------------------------------------------------------------------------
 * Vector helpers shared by the kernels (and usable by generated epilogues): LMN_VL floats per vector, the
 * widest the compilation target has (4 on the x86-64 baseline, 8 with AVX, 16 with AVX-512F: build with
 * EXTRA_CFLAGS=-march=native to get them), through the GCC/Clang vector extension, so that the code
 * vectorises at -O2 without -ffast-math.
 */
#if defined(__AVX512F__)
#define LMN_VL 16
#elif defined(__AVX__)
#define LMN_VL 8
#else
#define LMN_VL 4
#endif
typedef float lmn_vf __attribute__((vector_size(LMN_VL * 4)));
typedef int32_t lmn_vi __attribute__((vector_size(LMN_VL * 4)));

static inline lmn_vf lmn_vload(const float *p) {
  lmn_vf v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void lmn_vstore(float *p, lmn_vf v) { memcpy(p, &v, sizeof v); }
/* Loads n < LMN_VL floats, the other lanes set to `fill`. */
static inline lmn_vf lmn_vload_part(const float *p, int n, float fill) {
  float t[LMN_VL];
  for (int i = 0; i < LMN_VL; i++) t[i] = i < n ? p[i] : fill;
  return lmn_vload(t);
}
static inline void lmn_vstore_part(float *p, lmn_vf v, int n) {
  float t[LMN_VL];
  lmn_vstore(t, v);
  for (int i = 0; i < n; i++) p[i] = t[i];
}
static inline lmn_vf lmn_vset(float x) { return (lmn_vf){0} + x; }
static inline lmn_vf lmn_vselect(lmn_vi mask, lmn_vf yes, lmn_vf no) {
  return (lmn_vf)(((lmn_vi)yes & mask) | ((lmn_vi)no & ~mask));
}
static inline lmn_vf lmn_vmax(lmn_vf a, lmn_vf b) { return lmn_vselect(a > b, a, b); }
static inline float lmn_vhsum(lmn_vf v) {
  float s = 0.0f;
  for (int i = 0; i < LMN_VL; i++) s += v[i];
  return s;
}
static inline float lmn_vhmax(lmn_vf v) {
  float m = v[0];
  for (int i = 1; i < LMN_VL; i++) m = v[i] > m ? v[i] : m;
  return m;
}

/* exp(x) for x <= 88.3 (and -inf), relative error below 2e-7 on [-87, 88]; 0 below -87.3. Cephes' expf
 * reduction (x = n ln2 + r, |r| <= ln2/2, 2^n from the exponent bits) with its degree-6 polynomial
 * evaluated in Estrin's scheme, whose short dependency chain lets the loops overlap iterations. */
static inline lmn_vf lmn_vexp_le88(lmn_vf x) {
  lmn_vi tiny = x < -87.3f;
  x = lmn_vselect(tiny, lmn_vset(-87.3f), x);
  lmn_vf n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
  lmn_vf r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  lmn_vf r2 = r * r, r4 = r2 * r2;
  lmn_vf a = r * 1.6666665459e-1f + 5.0000001201e-1f, b = r * 8.3334519073e-3f + 4.1665795894e-2f;
  lmn_vf c = r * 1.9875691500e-4f + 1.3981999507e-3f;
  lmn_vf p = (r + 1.0f) + r2 * ((a + r2 * b) + r4 * c);
  lmn_vi e = (__builtin_convertvector(n, lmn_vi) + 127) << 23;
  return lmn_vselect(tiny, lmn_vset(0.0f), p * (lmn_vf)e);
}
/* exp(x) for any x: as above, inputs above 88.3 clamped (about 2e38, finite). */
static inline lmn_vf lmn_vexp(lmn_vf x) { return lmn_vexp_le88(lmn_vselect(x < 88.3f, x, lmn_vset(88.3f))); }
static inline float lmn_expf(float x) { return lmn_vexp(lmn_vset(x))[0]; }

/* ---------------------------------------------------------------------------------------------------------
 * Glue between modules (k_glue.c). */
/* y[i] += x[i] for i < n. */
void lmn_add(float *y, const float *x, size_t n);
/* The fixed random prefix: tokens [B, prefix + T_in] get -1 at the prefix positions, then tokens_in [B, T_in];
 * targets likewise (when not NULL; -1 throughout when targets_in is NULL). */
void lmn_prefix_tokens(int32_t *tokens, int32_t *targets, const int32_t *tokens_in, const int32_t *targets_in, int B,
                       int T_in, int prefix);
/* y [B*T, C] += prefix_w [prefix, C] at positions pos0 + t < prefix. */
void lmn_prefix_add(float *y, const float *prefix_w, int B, int T, int pos0, int C, int prefix);
/* dst [B, C] = src [B*T, C] at t = T - 1; and its gradient: dst [B*T, C] at t = T - 1 += src [B, C]. */
void lmn_last_rows(float *dst, const float *src, int B, int T, int C);
void lmn_add_last_rows(float *dst, const float *src, int B, int T, int C);

#endif
