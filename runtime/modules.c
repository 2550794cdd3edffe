/* modules.c: the transformer blocks (llama, qwen2, gpt2, LMNet's GPT-2 edge) and the MLP edge of modules.h,
 * composed from the kernels of kernels.h. One forward core serves training (saved region given), inference
 * (saved == NULL: the same tensors live in scratch) and generation with a KV cache (k, v written straight
 * into the cache rows); one backward core serves every kind, skipping each GEMM whose result nobody needs.
 *
 * Saved region of a block, N = B*T rows, qd = heads*hd, kvd = kv_heads*hd, F = ffn (in this order):
 *   r [N,d]            aggregated input = first residual stream (input of the first norm, or of qkv for
 * edges) mean1 [N]          LayerNorm kinds (GPT2) only rstd1 [N]          not GPT2_EDGE (it has no first
 * norm) q [N,qd], k [N,kvd], v [N,kvd]   after bias and RoPE (what the attention saw) att [N,qd] attention
 * output (input of Wo; `out` of the attention backward) lse [N*heads]      [B, heads, T] log-sum-exp of the
 * attention rows h [N,d]            second residual stream (input of the second norm, residual of the MLP)
 *   mean2 [N]          GPT2 kinds only
 *   rstd2 [N]
 *   LLAMA/QWEN2: gate [N,F], up [N,F]      pre-activations of the SwiGLU
 *   GPT2:        u [N,F]                   W_up n2 + b_up (GELU pre-activation)
 *   GPT2_EDGE:   u [N,d]                   W_up n2 + b_up
 * so saved floats = LLAMA/QWEN2: N (2d + 2qd + 2kvd + heads + 2F + 2)  (= N (4d + 2kvd + 2F + heads + 2))
 *                   GPT2:        N (6d + F + heads + 4)
 *                   GPT2_EDGE:   N (7d + heads + 2).
 * Recomputed in the backward instead (one element-wise pass each, and only when a weight gradient needs it):
 * the normalised n1 = norm(r) (for dWq/dWk/dWv), n2 = norm(h) (for the MLP's input weights), the SwiGLU
 * output silu(gate)*up and the GELU output gelu(u) (for dW_down). */
#include "modules.h"

#include <cblas.h>
#include <string.h>

/* ---- small helpers: GEMMs with a beta (no zeroing pass), element-wise epilogues ---- */

/* y[N,out] = x[N,in] W[out,in]^T + beta y */
static void mm_xwt(float *y, const float *x, const float *W, int N, int in, int out, float beta) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, x, in, W, in, beta, y, out);
}

/* dx[N,in] = dy[N,out] W[out,in] + beta dx */
static void mm_dyw(float *dx, const float *dy, const float *W, int N, int in, int out, float beta) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, dy, out, W, in, beta, dx, in);
}

static void zero(float *p, size_t n) {
  if (p) memset(p, 0, n * sizeof *p);
}

/* y = h (+ b per row) + x W^T: the residual output of an MLP, the GEMM accumulating onto the copied rows. */
static void residual_linear(float *y, const float *h, const float *x, const float *W, const float *b, int N,
                            int in, int out) {
  memcpy(y, h, (size_t)N * out * sizeof *y);
  if (b)
    for (int n = 0; n < N; n++) {
      float *row = y + (size_t)n * out;
      for (int j = 0; j < out; j++) row[j] += b[j];
    }
  mm_xwt(y, x, W, N, in, out, 1.0f);
}

/* r = scale * sum_i xs[i] (GPT2_EDGE has no norm to fuse the aggregation into). */
static void aggregate(float *r, const float *const *xs, int k, float scale, size_t n) {
  for (size_t j = 0; j < n; j++) {
    float s = xs[0][j];
    for (int i = 1; i < k; i++) s += xs[i][j];
    r[j] = scale == 1.0f ? s : s * scale;
  }
}

/* The norms again from the saved statistics, with the kernels' operation order: y = x * rstd * w and
 * y = (x - mean) * rstd * w + b. */
static void rms_apply(float *y, const float *x, const float *rstd, const float *w, int N, int C) {
  for (int n = 0; n < N; n++) {
    const float *xr = x + (size_t)n * C;
    float *yr = y + (size_t)n * C, s = rstd[n];
    for (int j = 0; j < C; j++) yr[j] = xr[j] * s * w[j];
  }
}
static void ln_apply(float *y, const float *x, const float *mean, const float *rstd, const float *w,
                     const float *b, int N, int C) {
  for (int n = 0; n < N; n++) {
    const float *xr = x + (size_t)n * C;
    float *yr = y + (size_t)n * C, mu = mean[n], s = rstd[n];
    for (int j = 0; j < C; j++) yr[j] = b ? (xr[j] - mu) * s * w[j] + b[j] : (xr[j] - mu) * s * w[j];
  }
}

/* ---- geometry and the saved layout ---- */

typedef struct geo {
  int B, T, N, d, H, KV, hd, qd, kvd, F;
  int rms;  /* LLAMA/QWEN2: RMSNorm, RoPE, SwiGLU */
  int edge; /* GPT2_EDGE: no first norm, no down projection */
  lmn_rope_mode mode;
} geo;

static geo geometry(const lmn_block_cfg *c, int B, int T) {
  geo g;
  g.B = B;
  g.T = T;
  g.N = B * T;
  g.d = c->d;
  g.rms = c->kind == LMN_BLOCK_LLAMA || c->kind == LMN_BLOCK_QWEN2;
  g.edge = c->kind == LMN_BLOCK_GPT2_EDGE;
  g.mode = c->kind == LMN_BLOCK_QWEN2 ? LMN_ROPE_NEOX : LMN_ROPE_NORMAL;
  g.H = c->heads;
  g.KV = g.rms && c->kv_heads > 0 ? c->kv_heads : c->heads; /* GPT-2 kinds: plain multi-head */
  g.hd = c->hd > 0 ? c->hd : c->d / c->heads;
  g.qd = g.H * g.hd;
  g.kvd = g.KV * g.hd;
  g.F = g.edge ? c->d : c->ffn;
  return g;
}

static lmn_attn attn_of(const lmn_block_cfg *c, const geo *g) {
  lmn_attn a = {g->B, g->T, g->H, g->KV, g->hd, c->scale, 0, 0};
  return a;
}

typedef struct acts {
  float *r, *mean1, *rstd1, *q, *k, *v, *att, *lse, *h, *mean2, *rstd2, *m1, *m2;
} acts;

/* Carves the saved tensors out of base (NULL: sizes only); returns the floats used. */
static size_t acts_layout(const geo *g, float *base, acts *a) {
  size_t off = 0, N = (size_t)g->N;
  memset(a, 0, sizeof *a);
#define TAKE(field, n)                   \
  do {                                   \
    a->field = base ? base + off : NULL; \
    off += (n);                          \
  } while (0)
  TAKE(r, N * g->d);
  if (!g->rms && !g->edge) TAKE(mean1, N);
  if (!g->edge) TAKE(rstd1, N);
  TAKE(q, N * g->qd);
  TAKE(k, N * g->kvd);
  TAKE(v, N * g->kvd);
  TAKE(att, N * g->qd);
  TAKE(lse, N * g->H);
  TAKE(h, N * g->d);
  if (!g->rms) TAKE(mean2, N);
  TAKE(rstd2, N);
  TAKE(m1, N * g->F);
  if (g->rms) TAKE(m2, N * g->F);
#undef TAKE
  return off;
}

/* Forward scratch after the saved tensors: n2 [N,d] and the MLP's hidden activation [N,F] (not GPT2_EDGE). */
static size_t fwd_work_floats(const geo *g) {
  return (size_t)g->N * g->d + (g->edge ? 0 : (size_t)g->N * g->F);
}

/* Backward scratch before the attention's: the larger of the MLP phase and the attention phase. */
static size_t bwd_mlp_floats(const geo *g) {
  size_t N = (size_t)g->N;
  if (g->rms) return 3 * N * g->F + N * g->d; /* swiglu out / dgate, ds, dup; n2 / dn2 */
  if (!g->edge) return N * g->F + N * g->d;   /* gelu out / du; n2 / dn2 */
  return 2 * N * g->d;                        /* du; n2 / dn2 */
}
static size_t bwd_attn_floats(const geo *g) {
  size_t N = (size_t)g->N, e = g->qd > g->d ? g->qd : g->d;
  return N * (e + g->qd + 2 * (size_t)g->kvd); /* datt / n1 / dn1, dq, dk, dv */
}
static size_t bwd_work_floats(const geo *g) {
  size_t a = bwd_mlp_floats(g), b = bwd_attn_floats(g);
  return a > b ? a : b;
}

size_t lmn_block_saved_floats(const lmn_block_cfg *c, int B, int T) {
  geo g = geometry(c, B, T);
  acts a;
  return acts_layout(&g, NULL, &a);
}

size_t lmn_block_scratch_floats(const lmn_block_cfg *c, int B, int T, int n_threads) {
  geo g = geometry(c, B, T);
  lmn_attn at = attn_of(c, &g);
  size_t fwd = lmn_block_saved_floats(c, B, T) + fwd_work_floats(&g), bwd = bwd_work_floats(&g);
  return (fwd > bwd ? fwd : bwd) + lmn_attention_scratch_floats(&at, n_threads);
}

size_t lmn_block_cache_scratch_floats(const lmn_block_cfg *c, int T, int n_threads) {
  geo g = geometry(c, 1, T);
  lmn_attn at = attn_of(c, &g);
  size_t fa = lmn_attention_scratch_floats(&at, n_threads),
         da = lmn_attention_decode_scratch_floats(&at, n_threads);
  return lmn_block_saved_floats(c, 1, T) + fwd_work_floats(&g) + (fa > da ? fa : da);
}

/* ---- the q/k/v projections of a kind: separate tensors, or the row blocks of GPT-2's fused [3d, d] ---- */

typedef struct qkv_w {
  const float *wq, *bq, *wk, *bk, *wv, *bv;
} qkv_w;
typedef struct qkv_g {
  float *wq, *bq, *wk, *bk, *wv, *bv;
} qkv_g;

static const float *off_c(const float *p, size_t o) { return p ? p + o : NULL; }
static float *off_m(float *p, size_t o) { return p ? p + o : NULL; }

static qkv_w qkv_weights(const lmn_block_cfg *c, const geo *g, const lmn_block_w *w) {
  qkv_w q;
  if (g->rms) {
    int b = c->qkv_bias;
    q = (qkv_w){w->wq, b ? w->bq : NULL, w->wk, b ? w->bk : NULL, w->wv, b ? w->bv : NULL};
  } else { /* q | k | v along the 3d outputs: rows [0,d), [d,2d), [2d,3d) of wqkv, each a contiguous [d,d] */
    size_t m = (size_t)g->qd * g->d;
    q = (qkv_w){
        w->wqkv, w->bqkv, w->wqkv + m, off_c(w->bqkv, g->qd), w->wqkv + 2 * m, off_c(w->bqkv, 2 * g->qd)};
  }
  return q;
}

static qkv_g qkv_grads(const lmn_block_cfg *c, const geo *g, const lmn_block_g *gr) {
  qkv_g q;
  if (g->rms) {
    int b = c->qkv_bias;
    q = (qkv_g){gr->wq, b ? gr->bq : NULL, gr->wk, b ? gr->bk : NULL, gr->wv, b ? gr->bv : NULL};
  } else {
    size_t m = (size_t)g->qd * g->d;
    q = (qkv_g){gr->wqkv,
                gr->bqkv,
                off_m(gr->wqkv, m),
                off_m(gr->bqkv, g->qd),
                off_m(gr->wqkv, 2 * m),
                off_m(gr->bqkv, 2 * g->qd)};
  }
  return q;
}

/* ---- forward ---- */

/* The block on N = B*T rows. a: where the saved tensors go (a->lse NULL: not kept). work: fwd_work_floats
 * then the attention's scratch. kcache == NULL: positions 0..T-1 of each sequence, attention over the
 * rows themselves. kcache != NULL (B = 1): a->k, a->v point at cache rows pos0.., the rows are positions
 * pos0..pos0+T-1, attention over cache rows 0..pos (tiled forward at pos0 = 0, decode per row otherwise). */
static void forward_core(const lmn_block_cfg *c, const geo *g, const lmn_block_w *w, const lmn_rope *rope,
                         float *y, const float *const *xs, int k, float scale, const acts *a, float *work,
                         lmn_pool *pool, int pos0, const float *kcache, const float *vcache) {
  int N = g->N, d = g->d, F = g->F;
  float *n2 = work, *mid = work + (size_t)N * d, *ascr = work + fwd_work_floats(g);

  /* r = scale * sum xs, n1 = norm(r) (into y, free until the attention's projection) */
  const float *n1 = y;
  if (g->rms)
    lmn_add_rmsnorm_forward(a->r, y, a->rstd1, xs, k, scale, w->attn_norm, N, d, c->eps);
  else if (!g->edge)
    lmn_add_layernorm_forward(a->r, y, a->mean1, a->rstd1, xs, k, scale, w->attn_norm, w->attn_norm_b, N, d,
                              c->eps);
  else {
    aggregate(a->r, xs, k, scale, (size_t)N * d);
    n1 = a->r;
  }

  qkv_w p = qkv_weights(c, g, w);
  lmn_linear_forward(a->q, n1, p.wq, p.bq, N, d, g->qd);
  lmn_linear_forward(a->k, n1, p.wk, p.bk, N, d, g->kvd);
  lmn_linear_forward(a->v, n1, p.wv, p.bv, N, d, g->kvd);
  if (g->rms) {
    lmn_rope_forward(a->q, rope->cos_t, rope->sin_t, g->B, g->T, g->H, g->hd, pos0, g->mode);
    lmn_rope_forward(a->k, rope->cos_t, rope->sin_t, g->B, g->T, g->KV, g->hd, pos0, g->mode);
  }

  lmn_attn at = attn_of(c, g);
  if (!kcache || pos0 == 0)
    lmn_attention_forward(a->att, a->lse, a->q, a->k, a->v, &at, ascr, pool);
  else
    for (int t = 0; t < g->T; t++)
      lmn_attention_decode(a->att + (size_t)t * g->qd, a->q + (size_t)t * g->qd, kcache, vcache, pos0 + t,
                           &at, ascr, pool);

  /* h = r + att Wo^T (+ bo), n2 = norm(h); the projection goes through y */
  lmn_linear_forward(y, a->att, w->wo, g->rms ? NULL : w->bo, N, g->qd, d);
  if (g->rms)
    lmn_residual_rmsnorm_forward(a->h, n2, a->rstd2, a->r, y, w->ffn_norm, N, d, c->eps);
  else
    lmn_residual_layernorm_forward(a->h, n2, a->mean2, a->rstd2, a->r, y, w->ffn_norm, w->ffn_norm_b, N, d,
                                   c->eps);

  size_t nf = (size_t)N * F;
  if (g->rms) { /* y = h + W_down (silu(gate) * up) */
    lmn_linear_forward(a->m1, n2, w->w_gate, NULL, N, d, F);
    lmn_linear_forward(a->m2, n2, w->w_up, NULL, N, d, F);
    lmn_swiglu_forward(mid, a->m1, a->m2, nf);
    residual_linear(y, a->h, mid, w->w_down, NULL, N, F, d);
  } else if (!g->edge) { /* y = h + W_down gelu(W_up n2 + b_up) + b_down */
    mm_xwt(a->m1, n2, w->w_up, N, d, F, 0.0f);
    if (w->b_up)
      lmn_bias_gelu_forward(mid, a->m1, w->b_up, N, F);
    else
      lmn_gelu_forward(mid, a->m1, nf);
    residual_linear(y, a->h, mid, w->w_down, w->b_down, N, F, d);
  } else { /* y = h + gelu(W_up n2 + b_up) */
    mm_xwt(a->m1, n2, w->w_up, N, d, d, 0.0f);
    if (w->b_up)
      lmn_bias_gelu_forward(y, a->m1, w->b_up, N, d);
    else
      lmn_gelu_forward(y, a->m1, (size_t)N * d);
    for (size_t j = 0; j < (size_t)N * d; j++) y[j] += a->h[j];
  }
}

void lmn_block_forward(const lmn_block_cfg *c, const lmn_block_w *w, const lmn_rope *rope, float *y,
                       const float *const *xs, int k, float scale, float *saved, int B, int T, float *scratch,
                       lmn_pool *pool) {
  geo g = geometry(c, B, T);
  acts a;
  float *work = scratch;
  if (saved)
    acts_layout(&g, saved, &a);
  else {
    work += acts_layout(&g, scratch, &a);
    a.lse = NULL;
  }
  forward_core(c, &g, w, rope, y, xs, k, scale, &a, work, pool, 0, NULL, NULL);
}

void lmn_block_forward_cached(const lmn_block_cfg *c, const lmn_block_w *w, const lmn_rope *rope, float *y,
                              const float *const *xs, int k, float scale, float *kcache, float *vcache,
                              int pos0, int T, float *scratch, lmn_pool *pool) {
  geo g = geometry(c, 1, T);
  acts a;
  float *work = scratch + acts_layout(&g, scratch, &a);
  a.lse = NULL;
  a.k = kcache + (size_t)pos0 * g.kvd;
  a.v = vcache + (size_t)pos0 * g.kvd;
  forward_core(c, &g, w, rope, y, xs, k, scale, &a, work, pool, pos0, kcache, vcache);
}

/* ---- backward ---- */

void lmn_block_backward(const lmn_block_cfg *c, const lmn_block_w *w, const lmn_rope *rope, lmn_block_g *gr,
                        float *const *dxs, int k, float scale, float *dy, const float *saved, int B, int T,
                        float *scratch, lmn_pool *pool) {
  geo g = geometry(c, B, T);
  acts a;
  acts_layout(&g, (float *)saved, &a);
  int N = g.N, d = g.d, F = g.F;
  size_t nd = (size_t)N * d, nf = (size_t)N * F;
  qkv_w p = qkv_weights(c, &g, w);
  qkv_g pg = qkv_grads(c, &g, gr);
  float *bo_g = g.rms ? NULL : gr->bo, *bup_g = g.rms ? NULL : gr->b_up, *bdown_g = g.rms ? NULL : gr->b_down;
  float *ln2b_g = g.rms ? NULL : gr->ffn_norm_b;

  /* Which gradients anything needs, from the input back to the output. */
  int want_dx = 0;
  for (int i = 0; dxs && i < k; i++) want_dx |= dxs[i] != NULL;
  int g_norm1 = g.edge ? 0 : g.rms ? gr->attn_norm != NULL : gr->attn_norm || gr->attn_norm_b;
  int need_dn1 = want_dx || g_norm1;
  int need_dq = pg.wq || pg.bq || need_dn1, need_dk = pg.wk || pg.bk || need_dn1,
      need_dv = pg.wv || pg.bv || need_dn1;
  int need_datt = need_dq || need_dk || need_dv;
  int need_dh = want_dx || need_datt || gr->wo || bo_g;
  int need_dn2 = need_dh || gr->ffn_norm || ln2b_g;

  float *ascr = scratch + bwd_work_floats(&g);
  /* MLP phase: y = h + mlp(norm(h)). Afterwards dy holds dL/dh (the residual's dy plus the norm's part). */
  float *D = scratch + (g.rms ? 3 * nf : g.edge ? nd : nf); /* n2, then dn2 */
  if (g.rms) {
    float *A = scratch, *S = scratch + nf, *C = scratch + 2 * nf; /* silu(gate)*up then dgate; ds; dup */
    const float *gate = a.m1, *up = a.m2;
    if (gr->w_down) {
      lmn_swiglu_forward(A, gate, up, nf);
      lmn_linear_backward(NULL, gr->w_down, NULL, dy, A, w->w_down, N, F, d);
    }
    int need_dgate = gr->w_gate || need_dn2, need_dup = gr->w_up || need_dn2;
    if (need_dgate || need_dup) {
      mm_dyw(S, dy, w->w_down, N, F, d, 0.0f);
      float *dgate = need_dgate ? A : NULL, *dup = need_dup ? C : NULL;
      zero(dgate, nf);
      zero(dup, nf);
      lmn_swiglu_backward(dgate, dup, S, gate, up, nf);
      if (gr->w_gate || gr->w_up) {
        rms_apply(D, a.h, a.rstd2, w->ffn_norm, N, d);
        lmn_linear_backward(NULL, gr->w_gate, NULL, A, D, w->w_gate, N, d, F);
        lmn_linear_backward(NULL, gr->w_up, NULL, C, D, w->w_up, N, d, F);
      }
      if (need_dn2) {
        mm_dyw(D, A, w->w_gate, N, d, F, 0.0f);
        mm_dyw(D, C, w->w_up, N, d, F, 1.0f);
        lmn_residual_rmsnorm_backward(NULL, NULL, need_dh ? dy : NULL, gr->ffn_norm, D, a.h, w->ffn_norm,
                                      a.rstd2, N, d);
      }
    }
  } else {
    float *A = scratch; /* [N,F] (GPT2) or [N,d] (edge): gelu(u), then du */
    const float *u = a.m1;
    if (!g.edge && (gr->w_down || bdown_g)) {
      if (gr->w_down) lmn_gelu_forward(A, u, nf);
      lmn_linear_backward(NULL, gr->w_down, bdown_g, dy, A, w->w_down, N, F, d);
    }
    if (need_dn2 || gr->w_up || bup_g) {
      if (g.edge)
        memcpy(A, dy, nd * sizeof *A); /* the GELU output is added to y directly */
      else
        mm_dyw(A, dy, w->w_down, N, F, d, 0.0f);
      lmn_gelu_backward_inplace(A, u, nf); /* du, bias included */
      if (gr->w_up) ln_apply(D, a.h, a.mean2, a.rstd2, w->ffn_norm, w->ffn_norm_b, N, d);
      lmn_linear_backward(NULL, gr->w_up, bup_g, A, D, w->w_up, N, d, F);
      if (need_dn2) {
        mm_dyw(D, A, w->w_up, N, d, F, 0.0f);
        lmn_residual_layernorm_backward(NULL, NULL, need_dh ? dy : NULL, gr->ffn_norm, ln2b_g, D, a.h,
                                        w->ffn_norm, a.mean2, a.rstd2, N, d);
      }
    }
  }
  if (!need_dh) return;

  /* Attention phase: h = r + att Wo^T (+ bo); dh = dy. */
  float *dh = dy;
  lmn_linear_backward(NULL, gr->wo, bo_g, dh, a.att, w->wo, N, g.qd, d);
  if (!need_datt) return; /* (then no input gradient is wanted either) */
  size_t e = (size_t)N * (g.qd > d ? g.qd : d);
  float *E = scratch, *dq = E + e, *dk = dq + (size_t)N * g.qd, *dv = dk + (size_t)N * g.kvd;
  dq = need_dq ? dq : NULL;
  dk = need_dk ? dk : NULL;
  dv = need_dv ? dv : NULL;
  mm_dyw(E, dh, w->wo, N, g.qd, d, 0.0f); /* datt */
  zero(dq, (size_t)N * g.qd);
  zero(dk, (size_t)N * g.kvd);
  zero(dv, (size_t)N * g.kvd);
  lmn_attn at = attn_of(c, &g);
  lmn_attention_backward(dq, dk, dv, E, a.att, a.lse, a.q, a.k, a.v, &at, ascr, pool);
  if (g.rms) {
    if (dq) lmn_rope_backward(dq, rope->cos_t, rope->sin_t, g.B, g.T, g.H, g.hd, 0, g.mode);
    if (dk) lmn_rope_backward(dk, rope->cos_t, rope->sin_t, g.B, g.T, g.KV, g.hd, 0, g.mode);
  }

  /* q/k/v weight gradients need n1 = norm(r) again (the edge's n1 is r itself) */
  const float *n1 = a.r;
  if (!g.edge && (pg.wq || pg.wk || pg.wv)) {
    if (g.rms)
      rms_apply(E, a.r, a.rstd1, w->attn_norm, N, d);
    else
      ln_apply(E, a.r, a.mean1, a.rstd1, w->attn_norm, w->attn_norm_b, N, d);
    n1 = E;
  }
  if (dq) lmn_linear_backward(NULL, pg.wq, pg.bq, dq, n1, p.wq, N, d, g.qd);
  if (dk) lmn_linear_backward(NULL, pg.wk, pg.bk, dk, n1, p.wk, N, d, g.kvd);
  if (dv) lmn_linear_backward(NULL, pg.wv, pg.bv, dv, n1, p.wv, N, d, g.kvd);
  if (!need_dn1) return;

  /* dn1 = dq Wq + dk Wk + dv Wv, then through the first norm and the aggregation: dL/dr = dh + norm'(dn1) */
  mm_dyw(E, dq, p.wq, N, d, g.qd, 0.0f);
  mm_dyw(E, dk, p.wk, N, d, g.kvd, 1.0f);
  mm_dyw(E, dv, p.wv, N, d, g.kvd, 1.0f);
  float *const *dx = want_dx ? dxs : NULL;
  if (g.rms)
    lmn_add_rmsnorm_backward(dx, dx ? dh : NULL, gr->attn_norm, E, a.r, w->attn_norm, a.rstd1, k, scale, N,
                             d);
  else if (!g.edge)
    lmn_add_layernorm_backward(dx, dx ? dh : NULL, gr->attn_norm, gr->attn_norm_b, E, a.r, w->attn_norm,
                               a.mean1, a.rstd1, k, scale, N, d);
  else {
    for (size_t j = 0; j < nd; j++) E[j] += dh[j];
    for (int i = 0; i < k; i++) {
      float *o = dxs[i];
      if (!o) continue;
      for (size_t j = 0; j < nd; j++) o[j] += E[j] * scale;
    }
  }
}

/* ---- MLP edge: y = x + gelu(W2 gelu(W1 x + b1) + b2) ----
 * saved: a1 = W1 x + b1 [N,h], a2 = W2 g1 + b2 [N,d] (the two GELU pre-activations) and, only when h > d, a
 * work area [N,h] for g1 = gelu(a1) (when h <= d the forward keeps g1 in y until y is written). The
 * backward recomputes g1 (for dW2) from a1. */

size_t lmn_mlp_saved_floats(int d, int h, int N) { return (size_t)N * ((size_t)h + d + (h > d ? h : 0)); }

size_t lmn_mlp_scratch_floats(int d, int h, int N) {
  (void)d;
  return 2 * (size_t)N * h;
}

void lmn_mlp_forward(const lmn_mlp_w *w, float *y, const float *x, float *saved, int d, int h, int N) {
  size_t nh = (size_t)N * h, nd = (size_t)N * d;
  float *a1 = saved, *a2 = saved + nh, *g1 = h <= d ? y : a2 + nd;
  mm_xwt(a1, x, w->w1, N, d, h, 0.0f);
  if (w->b1)
    lmn_bias_gelu_forward(g1, a1, w->b1, N, h);
  else
    lmn_gelu_forward(g1, a1, nh);
  mm_xwt(a2, g1, w->w2, N, h, d, 0.0f);
  if (w->b2)
    lmn_bias_gelu_forward(y, a2, w->b2, N, d);
  else
    lmn_gelu_forward(y, a2, nd);
  for (size_t j = 0; j < nd; j++) y[j] += x[j];
}

void lmn_mlp_backward(const lmn_mlp_w *w, lmn_mlp_g *g, float *dx, float *dy, const float *x,
                      const float *saved, int d, int h, int N, float *scratch) {
  size_t nh = (size_t)N * h, nd = (size_t)N * d;
  const float *a1 = saved, *a2 = saved + nh;
  if (dx)
    for (size_t j = 0; j < nd; j++) dx[j] += dy[j]; /* the residual */
  int need_dg1 = dx || g->w1 || g->b1;
  if (!need_dg1 && !g->w2 && !g->b2) return;
  lmn_gelu_backward_inplace(dy, a2, nd); /* dy = da2 */
  float *g1 = scratch, *dg1 = scratch + nh;
  if (g->w2) lmn_gelu_forward(g1, a1, nh);
  lmn_linear_backward(NULL, g->w2, g->b2, dy, g1, w->w2, N, h, d);
  if (!need_dg1) return;
  mm_dyw(dg1, dy, w->w2, N, h, d, 0.0f);
  lmn_gelu_backward_inplace(dg1, a1, nh); /* da1 */
  lmn_linear_backward(dx, g->w1, g->b1, dg1, x, w->w1, N, d, h);
}
