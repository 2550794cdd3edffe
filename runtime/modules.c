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
 * output silu(gate)*up and the GELU output gelu(u) (for dW_down).
 * The work of a call is cut into row chunks and weight-gradient slices that the pool runs in a few phases;
 * see "parallel structure" below. */
#include "modules.h"

#include <string.h>

#include "bgemm.h"
#include "k_isa.h"

#define LMN_BM_GGUF_(m, gguf, hf, hf_gpt2) gguf,
const char *const lmn_block_member_gguf[] = {LMN_BLOCK_MEMBER_LIST(LMN_BM_GGUF_)};
#undef LMN_BM_GGUF_
_Static_assert(sizeof lmn_block_member_gguf / sizeof *lmn_block_member_gguf == LMN_BM_COUNT,
               "one GGUF name per block member");

/* ---- small helpers: GEMMs with a beta (no zeroing pass), element-wise epilogues ---- */

/* y[N,out] = x[N,in] W[out,in]^T + beta y */
static void mm_xwt(float *y, const float *x, const float *W, int N, int in, int out, float beta) {
  lmn_gemm(0, 1, N, out, in, 1.0f, x, in, W, in, beta, y, out);
}

/* dx[N,in] = dy[N,out] W[out,in] + beta dx */
static void mm_dyw(float *dx, const float *dy, const float *W, int N, int in, int out, float beta) {
  lmn_gemm(0, 0, N, in, out, 1.0f, dy, out, W, in, beta, dx, in);
}

/* A weight matrix [out, in] of a block: f32 (f), or kept in its model file's format (kept: q). */
typedef struct wmat {
  const float *f;
  lmn_qtensor q;
  int kept;
} wmat;

/* Member m of the block's weights, f its f32 pointer (already moved to row r0); when kept, rows
 * [r0, r0 + rows) of it (a view of GPT-2's fused qkv), or all rows when rows is 0. */
static wmat wm_rows(const lmn_block_w *w, lmn_block_member m, const float *f, int64_t r0, int64_t rows) {
  wmat x = {f, {0}, 0};
  if (!w->q[m]) return x;
  x.q = *w->q[m];
  x.kept = 1;
  if (rows > 0) {
    x.q.data = (const uint8_t *)x.q.data + (size_t)r0 * x.q.row_bytes;
    x.q.rows = rows;
  }
  return x;
}
static wmat wm(const lmn_block_w *w, lmn_block_member m, const float *f) { return wm_rows(w, m, f, 0, 0); }

/* Where a row task runs the products with kept weights: on the pool when its phase runs on the calling
 * thread alone (NULL inside a pool task), with that thread's panel scratch. */
typedef struct where {
  lmn_pool *pool;
  float *work;
} where;

/* y[N,out] = x W^T + beta y. decode: cached generation, whose few rows meet kept weights through the
 * matrix-vector kernels (qmat.h), with 8-bit activations unless the weights ask for f32 (decode 2); every
 * other product is exact in f32. */
static void wx(float *y, const float *x, const wmat *W, int N, int in, int out, float beta, int decode,
               const where *at) {
  if (!W->kept)
    mm_xwt(y, x, W->f, N, in, out, beta);
  else if (decode && beta == 0.0f && N <= LMN_Q_MATVEC_ROWS)
    (decode == 2 ? lmn_q_matvec_rows_f32act : lmn_q_matvec_rows)(y, &W->q, x, N, at->pool);
  else
    lmn_q_matmul(y, x, &W->q, N, beta, at->work, at->pool);
}

/* dx[N,in] = dy W + beta dx */
static void dyw(float *dx, const float *dy, const wmat *W, int N, int in, int out, float beta, const where *at) {
  if (!W->kept)
    mm_dyw(dx, dy, W->f, N, in, out, beta);
  else
    lmn_q_matmul_dx(dx, dy, &W->q, N, beta, at->work, at->pool);
}

static void add_bias(float *y, const float *b, int N, int out) {
  if (b)
    for (int n = 0; n < N; n++) {
      float *row = y + (size_t)n * out;
      for (int j = 0; j < out; j++) row[j] += b[j];
    }
}

/* y = x W^T + b (lmn_linear_forward for f32 weights). */
static void linear(float *y, const float *x, const wmat *W, const float *b, int N, int in, int out, int decode,
                   const where *at) {
  if (!W->kept) {
    lmn_linear_forward(y, x, W->f, b, N, in, out);
    return;
  }
  wx(y, x, W, N, in, out, 0.0f, decode, at);
  add_bias(y, b, N, out);
}

/* ys[i] = x W_i^T + b_i for count matrices sharing the input x [N, in]: one run over the pool when cached
 * decoding meets a single row with every matrix kept (x rounded once), else one linear() each. */
static void linear_many(float *const *ys, const float *x, const wmat *const *W, const float *const *b,
                        const int *outs, int count, int N, int in, int decode, const where *at) {
  int fused = decode && N == 1 && count <= 4;
  for (int i = 0; fused && i < count; i++) fused = W[i]->kept;
  if (!fused) {
    for (int i = 0; i < count; i++) linear(ys[i], x, W[i], b[i], N, in, outs[i], decode, at);
    return;
  }
  const lmn_qtensor *q[4] = {NULL, NULL, NULL, NULL};
  for (int i = 0; i < count; i++) q[i] = &W[i]->q;
  lmn_q_matvec_multi(ys, q, count, x, decode == 2, at->pool);
  for (int i = 0; i < count; i++) add_bias(ys[i], b[i], 1, outs[i]);
}

static void zero(float *p, size_t n) {
  if (p) memset(p, 0, n * sizeof *p);
}

/* y = h (+ b per row) + x W^T: the residual output of an MLP, the GEMM accumulating onto the copied rows
 * (kept weights: the product first, then h and b added). */
static void residual_linear(float *y, const float *h, const float *x, const wmat *W, const float *b, int N,
                            int in, int out, int decode, const where *at) {
  if (W->kept) {
    wx(y, x, W, N, in, out, 0.0f, decode, at);
    lmn_add(y, h, (size_t)N * out);
    add_bias(y, b, N, out);
    return;
  }
  memcpy(y, h, (size_t)N * out * sizeof *y);
  add_bias(y, b, N, out);
  mm_xwt(y, x, W->f, N, in, out, 1.0f);
}

/* r = scale * sum_i xs[i] (GPT2_EDGE has no norm to fuse the aggregation into). */
LMN_CLONES
static void aggregate(float *r, const float *const *xs, int k, float scale, size_t n) {
  for (size_t j = 0; j < n; j++) {
    float s = xs[0][j];
    for (int i = 1; i < k; i++) s += xs[i][j];
    r[j] = scale == 1.0f ? s : s * scale;
  }
}

/* The norms again from the saved statistics, with the kernels' operation order: y = x * rstd * w and
 * y = (x - mean) * rstd * w + b. */
LMN_CLONES
static void rms_apply(float *y, const float *x, const float *rstd, const float *w, int N, int C) {
  for (int n = 0; n < N; n++) {
    const float *xr = x + (size_t)n * C;
    float *yr = y + (size_t)n * C, s = rstd[n];
    for (int j = 0; j < C; j++) yr[j] = xr[j] * s * w[j];
  }
}
LMN_CLONES
static void ln_apply(float *y, const float *x, const float *mean, const float *rstd, const float *w,
                     const float *b, int N, int C) {
  for (int n = 0; n < N; n++) {
    const float *xr = x + (size_t)n * C;
    float *yr = y + (size_t)n * C, mu = mean[n], s = rstd[n];
    for (int j = 0; j < C; j++) yr[j] = b ? (xr[j] - mu) * s * w[j] + b[j] : (xr[j] - mu) * s * w[j];
  }
}

/* The SwiGLU's backward fused with its recomputed output, element by element with the kernels' own
 * expressions (k_act.c): a = silu(g) * up as lmn_swiglu_forward, dgate = d * up * s * (1 + g (1 - s)) and
 * dup = d * g * s as lmn_swiglu_backward onto zeroed buffers. One sigmoid per element instead of two, and no
 * zeroing pass. Any of a, dgate, dup may be NULL. */
static inline lmn_vf sw_ld(const float *p, size_t i, size_t n) {
  return i + LMN_VL <= n ? lmn_vload(p + i) : lmn_vload_part(p + i, (int)(n - i), 0.0f);
}
static inline void sw_st(float *p, size_t i, size_t n, lmn_vf v) {
  if (i + LMN_VL <= n)
    lmn_vstore(p + i, v);
  else
    lmn_vstore_part(p + i, v, (int)(n - i));
}
LMN_CLONES
static void swiglu_fused_backward(float *a, float *dgate, float *dup, const float *d, const float *gate,
                                  const float *up, size_t n) {
  for (size_t i = 0; i < n; i += LMN_VL) {
    lmn_vf g = sw_ld(gate, i, n), u = sw_ld(up, i, n), s = 1.0f / (1.0f + lmn_vexp(-g));
    if (a) sw_st(a, i, n, g * u * s);
    if (!dgate && !dup) continue;
    lmn_vf dv = sw_ld(d, i, n);
    if (dgate) sw_st(dgate, i, n, dv * u * s * (1.0f + g * (1.0f - s)));
    if (dup) sw_st(dup, i, n, dv * g * s);
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
/* Forward scratch after the saved tensors: n2 [N,d] and the MLP's hidden activation [N,F] (not GPT2_EDGE). */
static size_t fwd_work_floats(const geo *g) {
  return (size_t)g->N * g->d + (g->edge ? 0 : (size_t)g->N * g->F);
}

/* Backward scratch before the attention's: dn2 [N,d] (read by the second norm's weight gradient while the
 * attention phase starts), then the larger of the MLP phase and the attention phase. Every buffer that a
 * weight-gradient GEMM reads has its own place, so that those GEMMs can run beside the row work that
 * follows them (see "parallel structure" below). */
static size_t bwd_mlp_floats(const geo *g) {
  size_t N = (size_t)g->N;
  if (g->rms) return 4 * N * g->F + N * g->d; /* silu(gate)*up, ds, dgate, dup; n2 */
  if (!g->edge) return 2 * N * g->F + N * g->d; /* gelu(u), du; n2 */
  return 2 * N * g->d;                          /* du; n2 */
}
static size_t bwd_attn_floats(const geo *g) {
  size_t N = (size_t)g->N, e = g->qd > g->d ? g->qd : g->d;
  return N * (e + g->qd + 2 * (size_t)g->kvd + g->d); /* datt / n1, dq, dk, dv, dn1 */
}
static size_t bwd_work_floats(const geo *g) {
  size_t a = bwd_mlp_floats(g), b = bwd_attn_floats(g);
  return (size_t)g->N * g->d + (a > b ? a : b);
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
  wmat wq, wk, wv;
  const float *bq, *bk, *bv;
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
    q = (qkv_w){wm(w, LMN_BM_wq, w->wq), wm(w, LMN_BM_wk, w->wk), wm(w, LMN_BM_wv, w->wv),
                b ? w->bq : NULL, b ? w->bk : NULL, b ? w->bv : NULL};
  } else { /* q | k | v along the 3d outputs: rows [0,d), [d,2d), [2d,3d) of wqkv, each a contiguous [d,d] */
    size_t m = (size_t)g->qd * g->d;
    q = (qkv_w){wm_rows(w, LMN_BM_wqkv, w->wqkv, 0, g->qd), wm_rows(w, LMN_BM_wqkv, off_c(w->wqkv, m), g->qd, g->qd),
                wm_rows(w, LMN_BM_wqkv, off_c(w->wqkv, 2 * m), 2 * g->qd, g->qd), w->bqkv, off_c(w->bqkv, g->qd),
                off_c(w->bqkv, 2 * g->qd)};
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

/* ---- parallel structure ----
 * A block runs as a few phases. A phase is one parallel-for over a list of tasks: first the weight-gradient
 * jobs whose inputs are complete (a slice of output rows of dW += dy^T x, a bias's column sums, a norm's
 * weight gradient), then chunks of ROW_CHUNK rows, each of which carries every row-local step of the phase
 * (norms, the projections of its rows, RoPE, activations, the input-gradient GEMMs of its rows), so that
 * the activations of a chunk stay in cache and a step costs a handful of synchronisations rather than one
 * per GEMM. How the work is cut depends on the shapes alone, never on the thread count, so any pool (or
 * none) gives the same bits; the reductions over rows (weight gradients) are whole-N GEMMs or the kernels'
 * own serial loops, as before.
 * The phases are spread over the pool only while OpenBLAS runs single-threaded (lmn_train sets it so):
 * OpenBLAS's own threads would compete with the pool's for the same cores (and its idle workers spin).
 * Otherwise the tasks run one after another on the caller, each GEMM threaded by OpenBLAS as before. */

#ifndef ROW_CHUNK /* (overridable, e.g. -DROW_CHUNK=3, to exercise many chunks with small test shapes) */
#define ROW_CHUNK 128 /* rows per row task */
#endif
#ifndef WG_MIN_ROWS
#define WG_MIN_ROWS 64 /* output rows per weight-gradient job, at least (a multiple of WG_ALIGN) */
#endif
#ifndef WG_ALIGN
#define WG_ALIGN 16 /* job boundaries fall on multiples of this many rows */
#endif
#define WG_MAX_JOBS 16 /* jobs per weight-gradient GEMM, at most */
#define MAX_JOBS 64

typedef enum job_kind { JOB_WGRAD, JOB_BIAS, JOB_RMS_DW, JOB_LN_DW } job_kind;

typedef struct job {
  job_kind kind;
  float *dst, *dst2;            /* dW; db; norms: dw, and LayerNorm's db */
  const float *dy, *x;          /* WGRAD: dy [n,out], x [n,in]; BIAS: dy [n,out]; norms: dy, x [n,in] */
  const float *w, *mean, *rstd; /* norms */
  int n, out, in, o0, o1;       /* WGRAD: rows [o0, o1) of dW [out, in] */
} job;

typedef void (*rows_fn)(const void *ctx, int r0, int n, const where *at);

typedef struct phase {
  int N;
  int n_jobs;
  job jobs[MAX_JOBS];
  rows_fn rows; /* row-local work of rows [r0, r0 + n), or NULL */
  const void *ctx;
  float *qwork; /* panel scratch of kept weights: qwork_floats per thread */
  size_t qwork_floats;
  int chunk; /* rows per row task */
} phase;

/* A phase for a block's N rows with weights w. The rows of cached generation with weights kept in a file
 * format form one task: its products then spread over the pool panel by panel, each panel dequantized once
 * for all rows (in ROW_CHUNK pieces every piece would dequantize all of W). */
static phase phase_of(int N, const lmn_block_w *w, int decode) {
  phase p;
  p.chunk = decode && w->qwork && N > 0 ? N : ROW_CHUNK;
  p.N = N;
  p.n_jobs = 0;
  p.rows = NULL;
  p.ctx = NULL;
  p.qwork = w->qwork;
  p.qwork_floats = w->qwork_floats;
  return p;
}

static void run_job(const job *j) {
  switch (j->kind) {
  case JOB_WGRAD: /* dW[o0:o1, :] += dy[:, o0:o1]^T x */
    lmn_gemm(1, 0, j->o1 - j->o0, j->in, j->n, 1.0f, j->dy + j->o0, j->out, j->x, j->in, 1.0f,
             j->dst + (size_t)j->o0 * j->in, j->in);
    break;
  case JOB_BIAS: /* the bias loop of lmn_linear_backward alone */
    lmn_linear_backward(NULL, NULL, j->dst, j->dy, NULL, NULL, j->n, 1, j->out);
    break;
  case JOB_RMS_DW: /* dw only: the same accumulation, row by row, as the fused backward's */
    lmn_rmsnorm_backward(NULL, j->dst, j->dy, j->x, j->w, j->rstd, j->n, j->in);
    break;
  case JOB_LN_DW:
    lmn_layernorm_backward(NULL, j->dst, j->dst2, j->dy, j->x, j->w, j->mean, j->rstd, j->n, j->in);
    break;
  }
}

static void push(phase *p, job j) {
  if (p->n_jobs < MAX_JOBS)
    p->jobs[p->n_jobs++] = j;
  else
    run_job(&j); /* its inputs are complete already: running it now is as good */
}

/* dW [out, in] += dy^T x over n rows, in slices of output rows (none when dW is NULL: frozen). */
static void push_wgrad(phase *p, float *dW, const float *dy, const float *x, int n, int in, int out) {
  if (!dW || n <= 0 || in <= 0 || out <= 0) return;
  int per = (out + WG_MAX_JOBS - 1) / WG_MAX_JOBS;
  per = (per + WG_ALIGN - 1) / WG_ALIGN * WG_ALIGN;
  if (per < WG_MIN_ROWS) per = WG_MIN_ROWS;
  for (int o0 = 0; o0 < out; o0 += per)
    push(p, (job){JOB_WGRAD, dW, NULL, dy, x, NULL, NULL, NULL, n, out, in, o0, o0 + per < out ? o0 + per : out});
}

static void push_bias(phase *p, float *db, const float *dy, int n, int out) {
  if (db) push(p, (job){JOB_BIAS, db, NULL, dy, NULL, NULL, NULL, NULL, n, out, 1, 0, 0});
}

static void run_task(const phase *p, int t, const where *at) {
  if (t < p->n_jobs) {
    run_job(&p->jobs[t]);
    return;
  }
  int r0 = (t - p->n_jobs) * p->chunk;
  p->rows(p->ctx, r0, p->N - r0 < p->chunk ? p->N - r0 : p->chunk, at);
}

static void phase_task(void *pp, int t, int thread) {
  const phase *p = pp;
  where at = {NULL, p->qwork ? p->qwork + (size_t)thread * p->qwork_floats : NULL};
  run_task(p, t, &at);
}

static int use_pool(lmn_pool *pool) { return lmn_pool_splits(pool); }

/* Runs the phase's jobs and (when rows is set) its row chunks, then empties it. */
static void run_phase(phase *p, rows_fn rows, const void *ctx, lmn_pool *pool) {
  p->rows = rows;
  p->ctx = ctx;
  int n = p->n_jobs + (rows ? (p->N + p->chunk - 1) / p->chunk : 0);
  where at = {pool, p->qwork}; /* on the calling thread alone: the kept weights' products may use the pool */
  if (n > 1 && use_pool(pool))
    lmn_pool_run(pool, n, phase_task, p);
  else
    for (int t = 0; t < n; t++) run_task(p, t, &at);
  p->n_jobs = 0;
}

/* RoPE (forward or backward) on rows [r0, r0 + n) of x, row r at position pos0 + r % T: one call per piece
 * of a sequence. */
static void rope_rows(float *x, const lmn_rope *rope, const geo *g, int heads, int pos0, int r0, int n,
                      int backward) {
  size_t width = (size_t)heads * g->hd;
  for (int r = r0; r < r0 + n;) {
    int t = r % g->T, len = g->T - t < r0 + n - r ? g->T - t : r0 + n - r;
    float *xr = x + (size_t)r * width;
    if (backward)
      lmn_rope_backward(xr, rope->cos_t, rope->sin_t, 1, len, heads, g->hd, pos0 + t, g->mode);
    else
      lmn_rope_forward(xr, rope->cos_t, rope->sin_t, 1, len, heads, g->hd, pos0 + t, g->mode);
    r += len;
  }
}

/* ---- forward ---- */

typedef struct fwd_ctx {
  const lmn_block_cfg *c;
  const geo *g;
  const lmn_block_w *w;
  qkv_w p;
  const lmn_rope *rope;
  float *y;
  const float *const *xs;
  int k;
  float scale;
  const acts *a;
  float *work; /* n2 [N,d], then the MLP's hidden activation [N,F] */
  int pos0;
  int decode; /* cached generation: 1 (kept weights: 8-bit activations for a few rows), 2 (f32 ones) */
  int saved_only; /* recomputation: the saved tensors only, not the MLP's output projection (y: workspace) */
} fwd_ctx;

/* Rows before the attention: r = scale * sum xs, n1 = norm(r) (into y, free until the attention's
 * projection), q, k, v, RoPE. */
static void fwd_pre_rows(const void *ctx, int r0, int n, const where *at) {
  const fwd_ctx *f = ctx;
  const geo *g = f->g;
  const acts *a = f->a;
  int d = g->d;
  size_t o = (size_t)r0 * d;
  const float *xo[f->k];
  for (int i = 0; i < f->k; i++) xo[i] = f->xs[i] + o;
  const float *n1 = f->y + o;
  if (g->rms)
    lmn_add_rmsnorm_forward(a->r + o, f->y + o, a->rstd1 + r0, xo, f->k, f->scale, f->w->attn_norm, n, d,
                            f->c->eps);
  else if (!g->edge)
    lmn_add_layernorm_forward(a->r + o, f->y + o, a->mean1 + r0, a->rstd1 + r0, xo, f->k, f->scale,
                              f->w->attn_norm, f->w->attn_norm_b, n, d, f->c->eps);
  else {
    aggregate(a->r + o, xo, f->k, f->scale, (size_t)n * d);
    n1 = a->r + o;
  }
  float *q = a->q + (size_t)r0 * g->qd, *k = a->k + (size_t)r0 * g->kvd, *v = a->v + (size_t)r0 * g->kvd;
  float *const ys[3] = {q, k, v};
  const wmat *const ws[3] = {&f->p.wq, &f->p.wk, &f->p.wv};
  const float *const bs[3] = {f->p.bq, f->p.bk, f->p.bv};
  const int outs[3] = {g->qd, g->kvd, g->kvd};
  linear_many(ys, n1, ws, bs, outs, 3, n, d, f->decode, at);
  if (g->rms) {
    rope_rows(a->q, f->rope, g, g->H, f->pos0, r0, n, 0);
    rope_rows(a->k, f->rope, g, g->KV, f->pos0, r0, n, 0);
  }
}

/* Rows after the attention: h = r + att Wo^T (+ bo), n2 = norm(h) (the projection goes through y), then
 * the MLP and its residual into y. */
static void fwd_post_rows(const void *ctx, int r0, int n, const where *at) {
  const fwd_ctx *f = ctx;
  const geo *g = f->g;
  const acts *a = f->a;
  const lmn_block_w *w = f->w;
  int d = g->d, F = g->F;
  size_t o = (size_t)r0 * d, of = (size_t)r0 * F, nf = (size_t)n * F;
  float *y = f->y + o, *n2 = f->work + o;
  const wmat wo = wm(w, LMN_BM_wo, w->wo), down = wm(w, LMN_BM_w_down, w->w_down), up = wm(w, LMN_BM_w_up, w->w_up);
  linear(y, a->att + (size_t)r0 * g->qd, &wo, g->rms ? NULL : w->bo, n, g->qd, d, f->decode, at);
  if (g->rms)
    lmn_residual_rmsnorm_forward(a->h + o, n2, a->rstd2 + r0, a->r + o, y, w->ffn_norm, n, d, f->c->eps);
  else
    lmn_residual_layernorm_forward(a->h + o, n2, a->mean2 + r0, a->rstd2 + r0, a->r + o, y, w->ffn_norm,
                                   w->ffn_norm_b, n, d, f->c->eps);
  if (g->rms) { /* y = h + W_down (silu(gate) * up) */
    float *mid = f->work + (size_t)g->N * d + of;
    const wmat gate = wm(w, LMN_BM_w_gate, w->w_gate);
    float *const ys[2] = {a->m1 + of, a->m2 + of};
    const wmat *const ws[2] = {&gate, &up};
    const float *const bs[2] = {NULL, NULL};
    const int outs[2] = {F, F};
    linear_many(ys, n2, ws, bs, outs, 2, n, d, f->decode, at);
    if (f->saved_only) return;
    lmn_swiglu_forward(mid, a->m1 + of, a->m2 + of, nf);
    residual_linear(y, a->h + o, mid, &down, NULL, n, F, d, f->decode, at);
  } else if (!g->edge) { /* y = h + W_down gelu(W_up n2 + b_up) + b_down */
    float *mid = f->work + (size_t)g->N * d + of;
    wx(a->m1 + of, n2, &up, n, d, F, 0.0f, f->decode, at);
    if (f->saved_only) return;
    if (w->b_up)
      lmn_bias_gelu_forward(mid, a->m1 + of, w->b_up, n, F);
    else
      lmn_gelu_forward(mid, a->m1 + of, nf);
    residual_linear(y, a->h + o, mid, &down, w->b_down, n, F, d, f->decode, at);
  } else { /* y = h + gelu(W_up n2 + b_up) */
    wx(a->m1 + o, n2, &up, n, d, d, 0.0f, f->decode, at);
    if (w->b_up)
      lmn_bias_gelu_forward(y, a->m1 + o, w->b_up, n, d);
    else
      lmn_gelu_forward(y, a->m1 + o, (size_t)n * d);
    for (size_t j = 0; j < (size_t)n * d; j++) y[j] += a->h[o + j];
  }
}

/* The block on N = B*T rows. a: where the saved tensors go (a->lse NULL: not kept). work: fwd_work_floats
 * then the attention's scratch. kcache == NULL: positions 0..T-1 of each sequence, attention over the
 * rows themselves. kcache != NULL (B = 1): a->k, a->v point at cache rows pos0.., the rows are positions
 * pos0..pos0+T-1, attention over cache rows 0..pos (tiled forward at pos0 = 0, decode per row otherwise). */
static void forward_core(const lmn_block_cfg *c, const geo *g, const lmn_block_w *w, const lmn_rope *rope,
                         float *y, const float *const *xs, int k, float scale, const acts *a, float *work,
                         lmn_pool *pool, int pos0, const float *kcache, const float *vcache, int saved_only) {
  fwd_ctx f = {c,
               g,
               w,
               qkv_weights(c, g, w),
               rope,
               y,
               xs,
               k,
               scale,
               a,
               work,
               pos0,
               kcache ? 1 + (w->q_f32act != 0) : 0,
               saved_only};
  float *ascr = work + fwd_work_floats(g);
  phase ph = phase_of(g->N, w, kcache != NULL);
  run_phase(&ph, fwd_pre_rows, &f, pool);

  lmn_attn at = attn_of(c, g);
  if (!kcache || pos0 == 0)
    lmn_attention_forward(a->att, a->lse, a->q, a->k, a->v, &at, ascr, pool);
  else
    for (int t = 0; t < g->T; t++)
      lmn_attention_decode(a->att + (size_t)t * g->qd, a->q + (size_t)t * g->qd, kcache, vcache, pos0 + t,
                           &at, ascr, pool);

  run_phase(&ph, fwd_post_rows, &f, pool);
}

static void block_forward(const lmn_block_cfg *c, const lmn_block_w *w, const lmn_rope *rope, float *y,
                          const float *const *xs, int k, float scale, float *saved, int B, int T,
                          float *scratch, lmn_pool *pool, int saved_only) {
  geo g = geometry(c, B, T);
  acts a;
  float *work = scratch;
  if (saved)
    acts_layout(&g, saved, &a);
  else {
    work += acts_layout(&g, scratch, &a);
    a.lse = NULL;
  }
  forward_core(c, &g, w, rope, y, xs, k, scale, &a, work, pool, 0, NULL, NULL, saved_only);
}

void lmn_block_forward(const lmn_block_cfg *c, const lmn_block_w *w, const lmn_rope *rope, float *y,
                       const float *const *xs, int k, float scale, float *saved, int B, int T, float *scratch,
                       lmn_pool *pool) {
  block_forward(c, w, rope, y, xs, k, scale, saved, B, T, scratch, pool, 0);
}

void lmn_block_forward_saved(const lmn_block_cfg *c, const lmn_block_w *w, const lmn_rope *rope,
                             float *work_y, const float *const *xs, int k, float scale, float *saved, int B,
                             int T, float *scratch, lmn_pool *pool) {
  block_forward(c, w, rope, work_y, xs, k, scale, saved, B, T, scratch, pool, 1);
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
  forward_core(c, &g, w, rope, y, xs, k, scale, &a, work, pool, pos0, kcache, vcache, 0);
}

/* ---- backward ---- */

typedef struct bwd_ctx {
  const lmn_block_cfg *c;
  const geo *g;
  const lmn_block_w *w;
  const lmn_block_g *gr;
  const lmn_rope *rope;
  qkv_w p;
  acts a;
  float *const *dxs; /* NULL when no input gradient is wanted */
  int k;
  float scale;
  float *dy; /* dL/dy, then dL/dh */
  int need_dgate, need_dup, need_up, need_dn2, need_dh, need_datt, need_n1, need_dn1;
  float *E;                      /* dn2 [N,d] */
  float *A, *S, *G, *C, *D;      /* MLP: silu(gate)*up or gelu(u); ds or du; dgate; dup; n2 */
  float *X, *dq, *dk, *dv, *Y;   /* attention: datt, then n1; dq, dk, dv (NULL: not needed); dn1 */
} bwd_ctx;

/* MLP rows: the recomputed hidden activation (for dW_down), its gradient, and n2 again (for the MLP's input
 * weights). */
static void bwd_mlp_rows(const void *ctx, int r0, int n, const where *at) {
  const bwd_ctx *b = ctx;
  const geo *g = b->g;
  const lmn_block_w *w = b->w;
  const lmn_block_g *gr = b->gr;
  int d = g->d, F = g->F;
  size_t o = (size_t)r0 * d, of = (size_t)r0 * F, nf = (size_t)n * F;
  const float *dy = b->dy + o;
  const wmat down = wm(w, LMN_BM_w_down, w->w_down);
  if (g->rms) {
    const float *gate = b->a.m1 + of, *up = b->a.m2 + of;
    float *A = gr->w_down ? b->A + of : NULL;
    if (b->need_dgate || b->need_dup) {
      dyw(b->S + of, dy, &down, n, F, d, 0.0f, at);
      float *dgate = b->need_dgate ? b->G + of : NULL, *dup = b->need_dup ? b->C + of : NULL;
      swiglu_fused_backward(A, dgate, dup, b->S + of, gate, up, nf);
      if (gr->w_gate || gr->w_up) rms_apply(b->D + o, b->a.h + o, b->a.rstd2 + r0, w->ffn_norm, n, d);
    } else if (A) {
      lmn_swiglu_forward(A, gate, up, nf);
    }
  } else {
    const float *u = b->a.m1 + of;
    if (!g->edge && gr->w_down) lmn_gelu_forward(b->A + of, u, nf);
    if (b->need_up) {
      if (g->edge)
        memcpy(b->S + of, dy, nf * sizeof *dy); /* the GELU output is added to y directly */
      else
        dyw(b->S + of, dy, &down, n, F, d, 0.0f, at);
      lmn_gelu_backward_inplace(b->S + of, u, nf); /* du, bias included */
      if (gr->w_up)
        ln_apply(b->D + o, b->a.h + o, b->a.mean2 + r0, b->a.rstd2 + r0, w->ffn_norm, w->ffn_norm_b, n, d);
    }
  }
}

/* dn2 rows: the MLP's input gradient. */
static void bwd_dn2_rows(const void *ctx, int r0, int n, const where *at) {
  const bwd_ctx *b = ctx;
  const geo *g = b->g;
  int d = g->d, F = g->F;
  size_t o = (size_t)r0 * d, of = (size_t)r0 * F;
  const wmat gate = wm(b->w, LMN_BM_w_gate, b->w->w_gate), up = wm(b->w, LMN_BM_w_up, b->w->w_up);
  if (g->rms) {
    dyw(b->E + o, b->G + of, &gate, n, d, F, 0.0f, at);
    dyw(b->E + o, b->C + of, &up, n, d, F, 1.0f, at);
  } else {
    dyw(b->E + o, b->S + of, &up, n, d, F, 0.0f, at);
  }
}

/* dh rows (dy += the second norm's input gradient; its weight gradient is a job), then datt = dh Wo. */
static void bwd_dh_rows(const void *ctx, int r0, int n, const where *at) {
  const bwd_ctx *b = ctx;
  const geo *g = b->g;
  const lmn_block_w *w = b->w;
  int d = g->d;
  size_t o = (size_t)r0 * d;
  float *dh = b->dy + o;
  if (g->rms)
    lmn_residual_rmsnorm_backward(NULL, NULL, dh, NULL, b->E + o, b->a.h + o, w->ffn_norm, b->a.rstd2 + r0, n,
                                  d);
  else
    lmn_residual_layernorm_backward(NULL, NULL, dh, NULL, NULL, b->E + o, b->a.h + o, w->ffn_norm,
                                    b->a.mean2 + r0, b->a.rstd2 + r0, n, d);
  if (!b->need_datt) return;
  const wmat wo = wm(w, LMN_BM_wo, w->wo);
  dyw(b->X + (size_t)r0 * g->qd, dh, &wo, n, g->qd, d, 0.0f, at);
  if (b->dq) zero(b->dq + (size_t)r0 * g->qd, (size_t)n * g->qd);
  if (b->dk) zero(b->dk + (size_t)r0 * g->kvd, (size_t)n * g->kvd);
  if (b->dv) zero(b->dv + (size_t)r0 * g->kvd, (size_t)n * g->kvd);
}

/* After the attention's backward: RoPE backward on dq, dk; n1 again (for dWq, dWk, dWv) over datt. */
static void bwd_qk_rows(const void *ctx, int r0, int n, const where *at) {
  (void)at;
  const bwd_ctx *b = ctx;
  const geo *g = b->g;
  int d = g->d;
  size_t o = (size_t)r0 * d;
  if (g->rms) {
    if (b->dq) rope_rows(b->dq, b->rope, g, g->H, 0, r0, n, 1);
    if (b->dk) rope_rows(b->dk, b->rope, g, g->KV, 0, r0, n, 1);
  }
  if (!b->need_n1) return;
  if (g->rms)
    rms_apply(b->X + o, b->a.r + o, b->a.rstd1 + r0, b->w->attn_norm, n, d);
  else
    ln_apply(b->X + o, b->a.r + o, b->a.mean1 + r0, b->a.rstd1 + r0, b->w->attn_norm, b->w->attn_norm_b, n, d);
}

/* dn1 = dq Wq + dk Wk + dv Wv, then through the first norm and the aggregation: dL/dr = dh + norm'(dn1),
 * dxs[i] += scale dL/dr (the first norm's weight gradient is a job). */
static void bwd_dn1_rows(const void *ctx, int r0, int n, const where *at) {
  const bwd_ctx *b = ctx;
  const geo *g = b->g;
  int d = g->d;
  size_t o = (size_t)r0 * d;
  float *Y = b->Y + o, *dh = b->dy + o;
  dyw(Y, b->dq + (size_t)r0 * g->qd, &b->p.wq, n, d, g->qd, 0.0f, at);
  dyw(Y, b->dk + (size_t)r0 * g->kvd, &b->p.wk, n, d, g->kvd, 1.0f, at);
  dyw(Y, b->dv + (size_t)r0 * g->kvd, &b->p.wv, n, d, g->kvd, 1.0f, at);
  if (!b->dxs) return;
  float *dx[b->k];
  for (int i = 0; i < b->k; i++) dx[i] = b->dxs[i] ? b->dxs[i] + o : NULL;
  if (g->rms)
    lmn_add_rmsnorm_backward(dx, dh, NULL, Y, b->a.r + o, b->w->attn_norm, b->a.rstd1 + r0, b->k, b->scale, n,
                             d);
  else if (!g->edge)
    lmn_add_layernorm_backward(dx, dh, NULL, NULL, Y, b->a.r + o, b->w->attn_norm, b->a.mean1 + r0,
                               b->a.rstd1 + r0, b->k, b->scale, n, d);
  else {
    size_t nd = (size_t)n * d;
    for (size_t j = 0; j < nd; j++) Y[j] += dh[j];
    for (int i = 0; i < b->k; i++) {
      if (!dx[i]) continue;
      for (size_t j = 0; j < nd; j++) dx[i][j] += Y[j] * b->scale;
    }
  }
}

void lmn_block_backward(const lmn_block_cfg *c, const lmn_block_w *w, const lmn_rope *rope, lmn_block_g *gr,
                        float *const *dxs, int k, float scale, float *dy, const float *saved, int B, int T,
                        float *scratch, lmn_pool *pool) {
  geo g = geometry(c, B, T);
  bwd_ctx b;
  memset(&b, 0, sizeof b);
  b.c = c;
  b.g = &g;
  b.w = w;
  b.gr = gr;
  b.rope = rope;
  b.p = qkv_weights(c, &g, w);
  acts_layout(&g, (float *)saved, &b.a);
  b.k = k;
  b.scale = scale;
  b.dy = dy;
  int N = g.N, d = g.d, F = g.F;
  size_t nd = (size_t)N * d, nf = (size_t)N * F;
  qkv_g pg = qkv_grads(c, &g, gr);
  float *bo_g = g.rms ? NULL : gr->bo, *bup_g = g.rms ? NULL : gr->b_up, *bdown_g = g.rms ? NULL : gr->b_down;
  float *ln2b_g = g.rms ? NULL : gr->ffn_norm_b;

  /* Which gradients anything needs, from the input back to the output. */
  int want_dx = 0;
  for (int i = 0; dxs && i < k; i++) want_dx |= dxs[i] != NULL;
  b.dxs = want_dx ? dxs : NULL;
  int g_norm1 = g.edge ? 0 : g.rms ? gr->attn_norm != NULL : gr->attn_norm || gr->attn_norm_b;
  int need_dn1 = want_dx || g_norm1;
  int need_dq = pg.wq || pg.bq || need_dn1, need_dk = pg.wk || pg.bk || need_dn1,
      need_dv = pg.wv || pg.bv || need_dn1;
  b.need_datt = need_dq || need_dk || need_dv;
  b.need_dh = want_dx || b.need_datt || gr->wo || bo_g;
  b.need_dn2 = b.need_dh || gr->ffn_norm || ln2b_g;
  b.need_dgate = gr->w_gate || b.need_dn2;
  b.need_dup = gr->w_up || b.need_dn2;
  b.need_up = b.need_dn2 || gr->w_up || bup_g;
  b.need_n1 = !g.edge && (pg.wq || pg.wk || pg.wv);
  b.need_dn1 = need_dn1;

  /* scratch: E = dn2 [N,d], then the MLP phase's buffers or (afterwards) the attention phase's */
  float *R = scratch + nd, *ascr = scratch + bwd_work_floats(&g);
  b.E = scratch;
  if (g.rms) {
    b.A = R, b.S = R + nf, b.G = R + 2 * nf, b.C = R + 3 * nf, b.D = R + 4 * nf;
  } else {
    b.A = R, b.S = g.edge ? R : R + nf, b.D = g.edge ? R + nd : R + 2 * nf;
  }
  size_t e = (size_t)N * (g.qd > d ? g.qd : d);
  b.X = R;
  b.dq = need_dq ? R + e : NULL;
  b.dk = need_dk ? R + e + (size_t)N * g.qd : NULL;
  b.dv = need_dv ? R + e + (size_t)N * (g.qd + g.kvd) : NULL;
  b.Y = R + e + (size_t)N * (g.qd + 2 * g.kvd);

  phase ph = phase_of(N, w, 0);

  /* MLP phase: y = h + mlp(norm(h)). Afterwards dy holds dL/dh (the residual's dy plus the norm's part). */
  int mlp_rows = g.rms ? gr->w_down || b.need_dgate || b.need_dup : (!g.edge && gr->w_down) || b.need_up;
  if (mlp_rows) run_phase(&ph, bwd_mlp_rows, &b, pool);
  if (g.rms) {
    push_wgrad(&ph, gr->w_down, dy, b.A, N, F, d);
    if (b.need_dgate || b.need_dup) {
      push_wgrad(&ph, gr->w_gate, b.G, b.D, N, d, F);
      push_wgrad(&ph, gr->w_up, b.C, b.D, N, d, F);
    }
  } else {
    if (!g.edge) {
      push_wgrad(&ph, gr->w_down, dy, b.A, N, F, d);
      push_bias(&ph, bdown_g, dy, N, d);
    }
    if (b.need_up) {
      push_wgrad(&ph, gr->w_up, b.S, b.D, N, d, F);
      push_bias(&ph, bup_g, b.S, N, F);
    }
  }
  run_phase(&ph, b.need_dn2 ? bwd_dn2_rows : NULL, &b, pool);

  /* The second norm: its weight gradient as a job, its input gradient (into dy = dh) per row, and datt. */
  if (b.need_dn2) {
    if (g.rms && gr->ffn_norm)
      push(&ph, (job){JOB_RMS_DW, gr->ffn_norm, NULL, b.E, b.a.h, w->ffn_norm, NULL, b.a.rstd2, N, 0, d, 0, 0});
    else if (!g.rms && (gr->ffn_norm || ln2b_g))
      push(&ph, (job){JOB_LN_DW, gr->ffn_norm, ln2b_g, b.E, b.a.h, w->ffn_norm, b.a.mean2, b.a.rstd2, N, 0, d,
                      0, 0});
  }
  run_phase(&ph, b.need_dh ? bwd_dh_rows : NULL, &b, pool);
  if (!b.need_dh) return;

  /* Attention phase: h = r + att Wo^T (+ bo); dh = dy. */
  lmn_attn at = attn_of(c, &g);
  if (b.need_datt)
    lmn_attention_backward(b.dq, b.dk, b.dv, b.X, b.a.att, b.a.lse, b.a.q, b.a.k, b.a.v, &at, ascr, pool);
  push_wgrad(&ph, gr->wo, dy, b.a.att, N, g.qd, d);
  push_bias(&ph, bo_g, dy, N, d);
  run_phase(&ph, b.need_datt ? bwd_qk_rows : NULL, &b, pool);
  if (!b.need_datt) return; /* (then no input gradient is wanted either) */

  /* q/k/v weight gradients (n1 = norm(r) recomputed above; the edge's n1 is r itself), and dn1 per row */
  const float *n1 = b.need_n1 ? b.X : b.a.r;
  if (b.dq) {
    push_wgrad(&ph, pg.wq, b.dq, n1, N, d, g.qd);
    push_bias(&ph, pg.bq, b.dq, N, g.qd);
  }
  if (b.dk) {
    push_wgrad(&ph, pg.wk, b.dk, n1, N, d, g.kvd);
    push_bias(&ph, pg.bk, b.dk, N, g.kvd);
  }
  if (b.dv) {
    push_wgrad(&ph, pg.wv, b.dv, n1, N, d, g.kvd);
    push_bias(&ph, pg.bv, b.dv, N, g.kvd);
  }
  run_phase(&ph, need_dn1 ? bwd_dn1_rows : NULL, &b, pool);
  if (!need_dn1 || !g_norm1) return;

  /* the first norm's weight gradient, from the complete dn1 */
  if (g.rms)
    push(&ph, (job){JOB_RMS_DW, gr->attn_norm, NULL, b.Y, b.a.r, w->attn_norm, NULL, b.a.rstd1, N, 0, d, 0, 0});
  else
    push(&ph, (job){JOB_LN_DW, gr->attn_norm, gr->attn_norm_b, b.Y, b.a.r, w->attn_norm, b.a.mean1, b.a.rstd1,
                    N, 0, d, 0, 0});
  run_phase(&ph, NULL, &b, pool);
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
