/* modules.h: whole modules built from the kernels of kernels.h, as generated code calls them: a
 * transformer block (llama, qwen2 or gpt2 shaped; vertices run `layers` of them, decoder_layer edges
 * one), the GPT-2 attention-block edge, and the MLP edge. Each has a forward that keeps what its
 * backward needs in a caller-planned region, a backward that accumulates gradients (+=) and skips the
 * weight gradients of frozen tensors (NULL members of the gradient struct), and a forward with a KV
 * cache for generation (prefill at pos0 = 0, then one token at a time). Nothing allocates: sizes of
 * the saved region and of scratch are functions the compiler's memory planner calls. */
#ifndef LMN_MODULES_H
#define LMN_MODULES_H

#include <stddef.h>

#include "kernels.h"
#include "qmat.h"
#include "threads.h"

typedef enum lmn_block_kind {
  LMN_BLOCK_LLAMA,     /* RMSNorm, RoPE on interleaved pairs (llama GGUF layout), GQA, SwiGLU */
  LMN_BLOCK_QWEN2,     /* as llama with q/k/v biases (when qkv_bias) and half-split (NEOX) RoPE */
  LMN_BLOCK_GPT2,      /* LayerNorm with bias, fused qkv with bias, learned positions outside, GELU MLP */
  LMN_BLOCK_GPT2_EDGE, /* LMNet's GPT-2 edge: x = X + MHA(X) (no pre-norm), y = x + gelu(W LN(x) + b) */
} lmn_block_kind;

typedef struct lmn_block_cfg {
  lmn_block_kind kind;
  int d;                   /* width */
  int heads, kv_heads, hd; /* hd = d / heads */
  int ffn;                 /* MLP width (GPT2_EDGE: d) */
  float eps;               /* norm epsilon */
  int qkv_bias;            /* LLAMA/QWEN2: q, k, v carry biases */
  float scale;             /* attention score scale: 1/sqrt(hd), or 1 for unscaled GPT-2 edges */
} lmn_block_cfg;

/* The tensors of one block, defined once: X(member, GGUF name inside "blk.N.", llama/qwen2 HF name, gpt2 HF
 * name) in lmn_block_w order. The weight and gradient structs, lmn_block_member and the name tables below are
 * all made from this list (HF names: "" where the architecture has no such tensor).
 * LLAMA/QWEN2: attn_norm, wq [d,d], bq?, wk [kvd,d], bk?, wv [kvd,d], bv?, wo [d,d], ffn_norm,
 *              w_gate [ffn,d], w_up [ffn,d], w_down [d,ffn].
 * GPT2:        attn_norm, attn_norm_b, wqkv [3d,d], bqkv, wo, bo, ffn_norm, ffn_norm_b, w_up [ffn,d], b_up,
 *              w_down [d,ffn], b_down.
 * GPT2_EDGE:   wqkv, bqkv, wo, bo, ffn_norm, ffn_norm_b, w_up [d,d], b_up.  Unused members are NULL. */
#define LMN_BLOCK_MEMBER_LIST(X)                                                                  \
  X(attn_norm, "attn_norm.weight", "input_layernorm.weight", "ln_1.weight")                       \
  X(attn_norm_b, "attn_norm.bias", "", "ln_1.bias")                                               \
  X(wq, "attn_q.weight", "self_attn.q_proj.weight", "")                                           \
  X(bq, "attn_q.bias", "self_attn.q_proj.bias", "")                                               \
  X(wk, "attn_k.weight", "self_attn.k_proj.weight", "")                                           \
  X(bk, "attn_k.bias", "self_attn.k_proj.bias", "")                                               \
  X(wv, "attn_v.weight", "self_attn.v_proj.weight", "")                                           \
  X(bv, "attn_v.bias", "self_attn.v_proj.bias", "")                                               \
  X(wqkv, "attn_qkv.weight", "", "attn.c_attn.weight")                                            \
  X(bqkv, "attn_qkv.bias", "", "attn.c_attn.bias")                                                \
  X(wo, "attn_output.weight", "self_attn.o_proj.weight", "attn.c_proj.weight")                    \
  X(bo, "attn_output.bias", "", "attn.c_proj.bias")                                               \
  X(ffn_norm, "ffn_norm.weight", "post_attention_layernorm.weight", "ln_2.weight")                \
  X(ffn_norm_b, "ffn_norm.bias", "", "ln_2.bias")                                                 \
  X(w_gate, "ffn_gate.weight", "mlp.gate_proj.weight", "")                                        \
  X(w_up, "ffn_up.weight", "mlp.up_proj.weight", "mlp.c_fc.weight")                               \
  X(b_up, "ffn_up.bias", "", "mlp.c_fc.bias")                                                     \
  X(w_down, "ffn_down.weight", "mlp.down_proj.weight", "mlp.c_proj.weight")                       \
  X(b_down, "ffn_down.bias", "", "mlp.c_proj.bias")

#define LMN_BM_ENUM_(m, gguf, hf, hf_gpt2) LMN_BM_##m,
typedef enum lmn_block_member { LMN_BLOCK_MEMBER_LIST(LMN_BM_ENUM_) LMN_BM_COUNT } lmn_block_member;
#undef LMN_BM_ENUM_

/* GGUF tensor names of the members inside "blk.N." (lmn_block_member order). */
extern const char *const lmn_block_member_gguf[LMN_BM_COUNT];

#define LMN_BM_W_(m, gguf, hf, hf_gpt2) const float *m;
#define LMN_BM_G_(m, gguf, hf, hf_gpt2) float *m;
/* Weights of one block: pointers into the network's parameter buffer, shapes [out, in] as nn.Linear. A
 * frozen matrix may instead be kept in its model file's format: q[member] is then set (and the f32 member
 * NULL), and the products with it run through qmat.h, with qwork_floats floats of panel scratch per pool
 * thread at qwork (lmn_q_matmul_work_floats). Cached decoding multiplies a few rows with them through the
 * matrix-vector kernels, with activations rounded to 8 bits per block unless q_f32act is set. */
typedef struct lmn_block_w {
  LMN_BLOCK_MEMBER_LIST(LMN_BM_W_)
  const lmn_qtensor *q[LMN_BM_COUNT];
  float *qwork;
  size_t qwork_floats;
  int q_f32act; /* cached decoding keeps activations in f32 for kept weights (else 8-bit: qmat.h) */
} lmn_block_w;

/* Gradients, same members; a NULL member means the tensor is frozen: its gradient is not computed, and
 * when all are NULL the backward runs only the activation-gradient GEMMs. */
typedef struct lmn_block_g {
  LMN_BLOCK_MEMBER_LIST(LMN_BM_G_)
} lmn_block_g;
#undef LMN_BM_W_
#undef LMN_BM_G_

/* RoPE tables for positions 0..n_pos-1 (LLAMA/QWEN2), built once with lmn_rope_table. */
typedef struct lmn_rope {
  const float *cos_t, *sin_t; /* [n_pos, hd/2] each */
  int n_pos;
} lmn_rope;

/* Floats the forward keeps for the backward, for N = B*T tokens (qd = heads*hd, kvd = kv_heads*hd, F = ffn):
 *   LLAMA/QWEN2: N (2d + 2qd + 2kvd + heads + 2F + 2)   r, rstd1, q, k, v (after RoPE), att, lse, h, rstd2,
 *                                                       gate, up
 *   GPT2:        N (6d + F + heads + 4)                 r, mean1, rstd1, q, k, v, att, lse, h, mean2, rstd2,
 *                                                       u = W_up n2 + b_up
 *   GPT2_EDGE:   N (7d + heads + 2)                     r, q, k, v, att, lse, h, mean2, rstd2, u [N, d]
 * The backward recomputes the norm outputs n1, n2 and the MLP's hidden activation (silu(gate)*up, gelu(u)),
 * each only when a weight gradient needs it (modules.c). */
size_t lmn_block_saved_floats(const lmn_block_cfg *c, int B, int T);
/* Transient floats for one forward (saved given or NULL) or backward call with a pool of at most n_threads
 * threads (reused across calls): max(saved + N*d (+ N*F), backward's) + the attention kernel's scratch. */
size_t lmn_block_scratch_floats(const lmn_block_cfg *c, int B, int T, int n_threads);

/* y = block(r) with r = scale * sum_{i<k} xs[i] (a vertex's edge aggregation, fused into the first norm;
 * k = 1, scale = 1 for a plain input). saved: lmn_block_saved_floats(c, B, T) floats (NULL at inference).
 * y may not alias any xs[i]. */
void lmn_block_forward(const lmn_block_cfg *c, const lmn_block_w *w, const lmn_rope *rope,
                       float *y,                                   /* [B*T, d] */
                       const float *const *xs, int k, float scale, /* k pointers to [B*T, d] */
                       float *saved, int B, int T, float *scratch, lmn_pool *pool);
/* Recomputation: only what the backward reads (saved, as lmn_block_forward writes it bit for bit), without
 * the MLP's output projection; work_y [B*T, d] is workspace and holds no output. */
void lmn_block_forward_saved(const lmn_block_cfg *c, const lmn_block_w *w, const lmn_rope *rope,
                             float *work_y, const float *const *xs, int k, float scale, float *saved, int B,
                             int T, float *scratch, lmn_pool *pool);

/* dxs[i] += scale * dL/dr (each may be NULL, or dxs NULL: no input gradient needed); g += weight gradients.
 * dy [B*T, d] is dL/dy and may be overwritten. */
void lmn_block_backward(const lmn_block_cfg *c, const lmn_block_w *w, const lmn_rope *rope, lmn_block_g *g,
                        float *const *dxs, int k, float scale, float *dy, const float *saved, int B, int T,
                        float *scratch, lmn_pool *pool);

/* Generation with a KV cache (batch 1): processes T new tokens at positions pos0..pos0+T-1 (T > 1 only with
 * pos0 = 0: the prefill; then T = 1), appends their keys (after RoPE) and values to kcache/vcache
 * [ctx, kv_heads*hd] (GPT2 kinds: kv_heads = heads), and writes y [T, d] exactly as the full forward would
 * for those positions. scratch: lmn_block_cache_scratch_floats(c, T, threads). Needs pos0 + T <= ctx (and
 * <= rope->n_pos). Also accepted: T > 1 at pos0 > 0 (a chunk appended to a prefix; its attention runs the
 * decode kernel row by row). xs[i] point at the T new rows. */
size_t lmn_block_cache_scratch_floats(const lmn_block_cfg *c, int T, int n_threads);
void lmn_block_forward_cached(const lmn_block_cfg *c, const lmn_block_w *w, const lmn_rope *rope, float *y,
                              const float *const *xs, int k, float scale, float *kcache, float *vcache,
                              int pos0, int T, float *scratch, lmn_pool *pool);

/* MLP edge (LMNet code): y = x + gelu(C2(gelu(C1 x + b1)) + b2), C1: d -> h, C2: h -> d. */
typedef struct lmn_mlp_w {
  const float *w1, *b1; /* [h, d], [h] */
  const float *w2, *b2; /* [d, h], [d] */
} lmn_mlp_w;
typedef struct lmn_mlp_g {
  float *w1, *b1, *w2, *b2; /* NULL = frozen */
} lmn_mlp_g;
/* saved: a1 = C1 x + b1 [N,h] and a2 = C2 gelu(a1) + b2 [N,d], plus N*h when h > d (the forward's room for
 * gelu(a1), which otherwise passes through y): N (h + d) for h <= d, N (2h + d) for h > d. The forward has
 * no scratch, so saved is required at inference too (it is the forward's workspace). */
size_t lmn_mlp_saved_floats(int d, int h, int N);
/* Scratch of lmn_mlp_backward: 2*N*h floats (gelu(a1) recomputed for dW2, and dL/da1). */
size_t lmn_mlp_scratch_floats(int d, int h, int N);
void lmn_mlp_forward(const lmn_mlp_w *w, float *y, const float *x, float *saved, int d, int h, int N);
/* dx += dL/dx (dx may be NULL); dy may be overwritten. scratch: lmn_mlp_scratch_floats(d, h, N) floats
 * (within the 2*N*h + N*d this comment promised before). */
void lmn_mlp_backward(const lmn_mlp_w *w, lmn_mlp_g *g, float *dx, float *dy, const float *x,
                      const float *saved, int d, int h, int N, float *scratch);

#endif
