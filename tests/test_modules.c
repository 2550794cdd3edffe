/* test_modules.c: checks of the modules of modules.h (modules.c): the llama, qwen2, gpt2 and GPT-2-edge
 * blocks and the MLP edge, each against a plain double-precision reference written here (materialised
 * softmax, explicit RoPE per formats.md 1.6, q|k|v split of GPT-2's fused projection), with central finite
 * differences of that reference for every weight tensor and every input, frozen / partially frozen /
 * no-input-gradient backward runs, accumulation, inference and KV-cache forwards, and every saved/scratch
 * buffer allocated with exactly the size its size function states (so that `make unit SAN=1` catches any
 * overrun).
 *
 * Tolerances (max over all elements):
 *   forward:   |ours - ref| / max(1, |ref|)             <= M_FWD_TOL   (ref in double at the same float
 * weights) backward:  |ours - fd|  / max(1, |fd|)              <= M_BWD_TOL   (fd: central differences, step
 * FD_H, of L = sum(y * R) computed by the double reference; every element of every tensor) frozen / NULL dxs
 * / inference / thread count: identical bits accumulate: two backward calls give 2x one call, normwise  <=
 * M_ACC_TOL cache:     |cached row - full forward row|          <= M_CACHE_TOL (absolute) */
#include <cblas.h>
#include <dlfcn.h>
#include <stddef.h>

#include "modules.h"
#include "test_k_common.h"

#define M_FWD_TOL 1e-5
#define M_BWD_TOL 1e-4
#define M_ACC_TOL 1e-6
#define M_CACHE_TOL 1e-5

static double worst_fwd, worst_bwd, worst_cache; /* printed by the last test */

/* Every cblas_sgemm of liblmn comes through here (the executable's definition interposes OpenBLAS's, which it
 * then calls): the frozen checks count the GEMMs and multiply-adds of a backward. Pool threads call it too.
 */
static long long gemm_calls, gemm_mnk;
typedef void (*sgemm_fn)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE, const enum CBLAS_TRANSPOSE,
                         const blasint, const blasint, const blasint, const float, const float *,
                         const blasint, const float *, const blasint, const float, float *, const blasint);
void cblas_sgemm(const enum CBLAS_ORDER o, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                 const blasint M, const blasint N, const blasint K, const float alpha, const float *A,
                 const blasint lda, const float *B, const blasint ldb, const float beta, float *C,
                 const blasint ldc) {
  static sgemm_fn real;
  sgemm_fn f = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
  if (!f) {
    *(void **)&f = dlsym(RTLD_NEXT, "cblas_sgemm");
    if (!f) {
      fprintf(stderr, "test_modules: no cblas_sgemm to forward to\n");
      exit(2);
    }
    __atomic_store_n(&real, f, __ATOMIC_RELEASE);
  }
  __atomic_fetch_add(&gemm_calls, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&gemm_mnk, (long long)M * N * K, __ATOMIC_RELAXED);
  f(o, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ======================================= weights by member ======================================= */

enum {
  M_ATTN_NORM,
  M_ATTN_NORM_B,
  M_WQ,
  M_BQ,
  M_WK,
  M_BK,
  M_WV,
  M_BV,
  M_WQKV,
  M_BQKV,
  M_WO,
  M_BO,
  M_FFN_NORM,
  M_FFN_NORM_B,
  M_W_GATE,
  M_W_UP,
  M_B_UP,
  M_W_DOWN,
  M_B_DOWN,
  NM
};
static const char *m_name[NM] = {
    "attn_norm", "attn_norm_b", "wq",       "bq",         "wk",     "bk",   "wv",   "bv",     "wqkv",  "bqkv",
    "wo",        "bo",          "ffn_norm", "ffn_norm_b", "w_gate", "w_up", "b_up", "w_down", "b_down"};
#define OFFS(T)                                                                                             \
  {                                                                                                         \
    offsetof(T, attn_norm), offsetof(T, attn_norm_b), offsetof(T, wq), offsetof(T, bq), offsetof(T, wk),    \
        offsetof(T, bk), offsetof(T, wv), offsetof(T, bv), offsetof(T, wqkv), offsetof(T, bqkv),            \
        offsetof(T, wo), offsetof(T, bo), offsetof(T, ffn_norm), offsetof(T, ffn_norm_b),                   \
        offsetof(T, w_gate), offsetof(T, w_up), offsetof(T, b_up), offsetof(T, w_down), offsetof(T, b_down) \
  }
static const size_t w_off[NM] = OFFS(lmn_block_w), g_off[NM] = OFFS(lmn_block_g);
static const float **w_slot(lmn_block_w *w, int m) { return (const float **)((char *)w + w_off[m]); }
static float **g_slot(lmn_block_g *g, int m) { return (float **)((char *)g + g_off[m]); }

static int is_rms(lmn_block_kind k) { return k == LMN_BLOCK_LLAMA || k == LMN_BLOCK_QWEN2; }

/* elements of member m for cfg c (0: not used by this kind) */
static size_t member_size(const lmn_block_cfg *c, int m) {
  size_t d = c->d, qd = (size_t)c->heads * c->hd, kvd = (size_t)c->kv_heads * c->hd, F = c->ffn;
  if (is_rms(c->kind)) switch (m) {
      case M_ATTN_NORM:
      case M_FFN_NORM:
        return d;
      case M_WQ:
        return qd * d;
      case M_WK:
      case M_WV:
        return kvd * d;
      case M_BQ:
        return c->qkv_bias ? qd : 0;
      case M_BK:
      case M_BV:
        return c->qkv_bias ? kvd : 0;
      case M_WO:
        return d * qd;
      case M_W_GATE:
      case M_W_UP:
      case M_W_DOWN:
        return F * d;
      default:
        return 0;
    }
  int edge = c->kind == LMN_BLOCK_GPT2_EDGE;
  switch (m) {
    case M_ATTN_NORM:
    case M_ATTN_NORM_B:
      return edge ? 0 : d;
    case M_WQKV:
      return 3 * d * d;
    case M_BQKV:
      return 3 * d;
    case M_WO:
      return d * d;
    case M_BO:
    case M_FFN_NORM:
    case M_FFN_NORM_B:
      return d;
    case M_W_UP:
      return edge ? d * d : F * d;
    case M_B_UP:
      return edge ? d : F;
    case M_W_DOWN:
      return edge ? 0 : d * F;
    case M_B_DOWN:
      return edge ? 0 : d;
    default:
      return 0;
  }
}

/* fan-in of a weight matrix (for its init scale); 0 for vectors */
static int member_fan_in(const lmn_block_cfg *c, int m) {
  switch (m) {
    case M_WQ:
    case M_WK:
    case M_WV:
    case M_WQKV:
    case M_W_GATE:
      return c->d;
    case M_W_UP:
      return c->d;
    case M_WO:
      return c->heads * c->hd;
    case M_W_DOWN:
      return c->ffn;
    default:
      return 0;
  }
}

/* ======================================= double reference ======================================= */

static void d_linear(double *y, const double *x, const double *W, const double *b, int N, int in, int out) {
  for (int n = 0; n < N; n++)
    for (int o = 0; o < out; o++) {
      double s = b ? b[o] : 0.0;
      const double *xr = x + (size_t)n * in, *wr = W + (size_t)o * in;
      for (int i = 0; i < in; i++) s += xr[i] * wr[i];
      y[(size_t)n * out + o] = s;
    }
}

static void d_rmsnorm(double *y, const double *x, const double *w, int N, int C, double eps) {
  for (int n = 0; n < N; n++) {
    const double *xr = x + (size_t)n * C;
    double ss = 0.0;
    for (int j = 0; j < C; j++) ss += xr[j] * xr[j];
    double s = 1.0 / sqrt(ss / C + eps);
    for (int j = 0; j < C; j++) y[(size_t)n * C + j] = xr[j] * s * w[j];
  }
}

static void d_layernorm(double *y, const double *x, const double *w, const double *b, int N, int C,
                        double eps) {
  for (int n = 0; n < N; n++) {
    const double *xr = x + (size_t)n * C;
    double mu = 0.0, var = 0.0;
    for (int j = 0; j < C; j++) mu += xr[j];
    mu /= C;
    for (int j = 0; j < C; j++) var += (xr[j] - mu) * (xr[j] - mu);
    double s = 1.0 / sqrt(var / C + eps);
    for (int j = 0; j < C; j++) y[(size_t)n * C + j] = (xr[j] - mu) * s * w[j] + (b ? b[j] : 0.0);
  }
}

/* formats.md 1.6: pair p of each head at position pos turns by pos * theta^(-2p/hd); NORMAL pairs
 * (2p, 2p+1), NEOX pairs (p, p + hd/2); x0' = x0 cos - x1 sin, x1' = x0 sin + x1 cos */
static void d_rope(double *x, int B, int T, int heads, int hd, double theta, int neox) {
  int half = hd / 2;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int h = 0; h < heads; h++)
        for (int p = 0; p < half; p++) {
          double ang = t * pow(theta, -2.0 * p / hd), cs = cos(ang), sn = sin(ang);
          double *xh = x + ((size_t)b * T + t) * heads * hd + (size_t)h * hd;
          int i0 = neox ? p : 2 * p, i1 = neox ? p + half : 2 * p + 1;
          double x0 = xh[i0], x1 = xh[i1];
          xh[i0] = x0 * cs - x1 * sn;
          xh[i1] = x0 * sn + x1 * cs;
        }
}

/* causal GQA attention with the softmax row materialised in prow [T] */
static void d_attention(double *out, const double *q, const double *k, const double *v, int B, int T, int H,
                        int KV, int hd, double scale, double *prow) {
  int qd = H * hd, kvd = KV * hd;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      int kh = h / (H / KV);
      for (int t = 0; t < T; t++) {
        const double *qr = q + ((size_t)b * T + t) * qd + (size_t)h * hd;
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j <= t; j++) {
          const double *kr = k + ((size_t)b * T + j) * kvd + (size_t)kh * hd;
          double s = 0.0;
          for (int i = 0; i < hd; i++) s += qr[i] * kr[i];
          prow[j] = s * scale;
          mx = fmax(mx, prow[j]);
        }
        for (int j = 0; j <= t; j++) sum += (prow[j] = exp(prow[j] - mx));
        double *o = out + ((size_t)b * T + t) * qd + (size_t)h * hd;
        for (int i = 0; i < hd; i++) {
          double s = 0.0;
          for (int j = 0; j <= t; j++)
            s += prow[j] / sum * v[((size_t)b * T + j) * kvd + (size_t)kh * hd + i];
          o[i] = s;
        }
      }
    }
}

static double d_gelu(double x) {
  return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
static double d_silu(double x) { return x / (1.0 + exp(-x)); }

typedef struct ref {
  lmn_block_cfg c;
  int B, T, k;
  double scale, theta;
  double *P[NM];                                                             /* weights (NULL: unused) */
  double *xs[3];                                                             /* inputs [N, d] */
  double *R;                                                                 /* objective weights [N, d] */
  double *r, *n1, *qkv, *q, *kk, *v, *att, *o, *h, *n2, *m1, *m2, *y, *prow; /* workspace */
} ref;

static void ref_alloc(ref *z) {
  size_t N = (size_t)z->B * z->T, d = z->c.d, F = z->c.ffn > z->c.d ? (size_t)z->c.ffn : d;
  z->r = dzeros(N * d);
  z->n1 = dzeros(N * d);
  z->qkv = dzeros(N * 3 * d);
  z->q = dzeros(N * d);
  z->kk = dzeros(N * d);
  z->v = dzeros(N * d);
  z->att = dzeros(N * d);
  z->o = dzeros(N * d);
  z->h = dzeros(N * d);
  z->n2 = dzeros(N * d);
  z->m1 = dzeros(N * F);
  z->m2 = dzeros(N * F);
  z->y = dzeros(N * d);
  z->prow = dzeros(z->T);
}

static void ref_forward(ref *z) {
  const lmn_block_cfg *c = &z->c;
  int N = z->B * z->T, d = c->d, H = c->heads, KV = c->kv_heads, hd = c->hd, qd = H * hd, kvd = KV * hd;
  int F = c->ffn, rms = is_rms(c->kind), edge = c->kind == LMN_BLOCK_GPT2_EDGE;
  size_t nd = (size_t)N * d;
  double **P = z->P;
  for (size_t j = 0; j < nd; j++) {
    double s = 0.0;
    for (int i = 0; i < z->k; i++) s += z->xs[i][j];
    z->r[j] = z->scale * s;
  }
  const double *n1 = z->n1;
  if (rms)
    d_rmsnorm(z->n1, z->r, P[M_ATTN_NORM], N, d, c->eps);
  else if (!edge)
    d_layernorm(z->n1, z->r, P[M_ATTN_NORM], P[M_ATTN_NORM_B], N, d, c->eps);
  else
    n1 = z->r;
  if (rms) {
    d_linear(z->q, n1, P[M_WQ], P[M_BQ], N, d, qd);
    d_linear(z->kk, n1, P[M_WK], P[M_BK], N, d, kvd);
    d_linear(z->v, n1, P[M_WV], P[M_BV], N, d, kvd);
    int neox = c->kind == LMN_BLOCK_QWEN2;
    d_rope(z->q, z->B, z->T, H, hd, z->theta, neox);
    d_rope(z->kk, z->B, z->T, KV, hd, z->theta, neox);
  } else { /* fused [3d] output: q | k | v */
    d_linear(z->qkv, n1, P[M_WQKV], P[M_BQKV], N, d, 3 * d);
    for (int n = 0; n < N; n++)
      for (int j = 0; j < d; j++) {
        z->q[(size_t)n * d + j] = z->qkv[(size_t)n * 3 * d + j];
        z->kk[(size_t)n * d + j] = z->qkv[(size_t)n * 3 * d + d + j];
        z->v[(size_t)n * d + j] = z->qkv[(size_t)n * 3 * d + 2 * d + j];
      }
  }
  d_attention(z->att, z->q, z->kk, z->v, z->B, z->T, H, KV, hd, c->scale, z->prow);
  d_linear(z->o, z->att, P[M_WO], P[M_BO], N, qd, d);
  for (size_t j = 0; j < nd; j++) z->h[j] = z->r[j] + z->o[j];
  if (rms) {
    d_rmsnorm(z->n2, z->h, P[M_FFN_NORM], N, d, c->eps);
    d_linear(z->m1, z->n2, P[M_W_GATE], NULL, N, d, F);
    d_linear(z->m2, z->n2, P[M_W_UP], NULL, N, d, F);
    for (size_t j = 0; j < (size_t)N * F; j++) z->m1[j] = d_silu(z->m1[j]) * z->m2[j];
    d_linear(z->y, z->m1, P[M_W_DOWN], NULL, N, F, d);
    for (size_t j = 0; j < nd; j++) z->y[j] += z->h[j];
  } else if (!edge) {
    d_layernorm(z->n2, z->h, P[M_FFN_NORM], P[M_FFN_NORM_B], N, d, c->eps);
    d_linear(z->m1, z->n2, P[M_W_UP], P[M_B_UP], N, d, F);
    for (size_t j = 0; j < (size_t)N * F; j++) z->m1[j] = d_gelu(z->m1[j]);
    d_linear(z->y, z->m1, P[M_W_DOWN], P[M_B_DOWN], N, F, d);
    for (size_t j = 0; j < nd; j++) z->y[j] += z->h[j];
  } else {
    d_layernorm(z->n2, z->h, P[M_FFN_NORM], P[M_FFN_NORM_B], N, d, c->eps);
    d_linear(z->m1, z->n2, P[M_W_UP], P[M_B_UP], N, d, d);
    for (size_t j = 0; j < nd; j++) z->y[j] = z->h[j] + d_gelu(z->m1[j]);
  }
}

static double ref_objective(void *p) {
  ref *z = p;
  ref_forward(z);
  return dot_d(z->y, z->R, (size_t)z->B * z->T * z->c.d);
}

/* ======================================= float side ======================================= */

/* exactly n floats (so that ASan sees one past the end), filled with NaN: nothing may read them unwritten */
static float *fnan(size_t n) {
  float *p = t_alloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) p[i] = NAN;
  return p;
}
static void nan_fill(float *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = NAN;
}

static double max_abs_ff(const float *a, const float *b, size_t n) {
  double e = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (!(d <= e)) e = d;
  }
  return e;
}

typedef struct bcase {
  const char *name;
  lmn_block_kind kind;
  int d, heads, kv_heads, ffn, B, T, k, qkv_bias;
  float att_scale; /* 0: 1/sqrt(hd) */
  double theta;
} bcase;

typedef struct blk {
  lmn_block_cfg c;
  lmn_block_w w;
  float *wt[NM];
  size_t n[NM];
  lmn_rope rope;
  const lmn_rope *rp; /* NULL for the GPT-2 kinds (they must not touch it) */
  int B, T, k, N;
  float scale;
  float *xs[3], *R;
} blk;

static void blk_init(blk *b, const bcase *bc, rng *g) {
  memset(b, 0, sizeof *b);
  lmn_block_cfg *c = &b->c;
  c->kind = bc->kind;
  c->d = bc->d;
  c->heads = bc->heads;
  c->kv_heads = is_rms(bc->kind) ? bc->kv_heads : bc->heads;
  c->hd = bc->d / bc->heads;
  c->ffn = bc->kind == LMN_BLOCK_GPT2_EDGE ? bc->d : bc->ffn;
  c->eps = 1e-5f;
  c->qkv_bias = bc->qkv_bias;
  c->scale = bc->att_scale > 0.0f ? bc->att_scale : 1.0f / sqrtf((float)c->hd);
  b->B = bc->B;
  b->T = bc->T;
  b->k = bc->k;
  b->N = bc->B * bc->T;
  b->scale = bc->k == 1 ? 1.0f : 1.0f / (float)bc->k;
  for (int m = 0; m < NM; m++) {
    b->n[m] = member_size(c, m);
    if (!b->n[m]) continue;
    int fan = member_fan_in(c, m);
    float a = fan ? 1.6f / sqrtf((float)fan) : 0.0f;
    if (m == M_WQ || m == M_WK || m == M_WQKV) a *= 1.5f; /* peakier attention */
    if (m == M_ATTN_NORM || m == M_FFN_NORM)
      b->wt[m] = frand(g, b->n[m], 0.6f, 1.4f);
    else if (!fan)
      b->wt[m] = frand(g, b->n[m], -0.3f, 0.3f);
    else
      b->wt[m] = frand(g, b->n[m], -a, a);
    *w_slot(&b->w, m) = b->wt[m];
  }
  for (int i = 0; i < b->k; i++) b->xs[i] = frand(g, (size_t)b->N * c->d, -1.0f, 1.0f);
  b->R = frand(g, (size_t)b->N * c->d, -1.0f, 1.0f);
  if (is_rms(c->kind)) {
    int half = c->hd / 2;
    float *cs = fzeros((size_t)b->T * half), *sn = fzeros((size_t)b->T * half);
    lmn_rope_table(cs, sn, b->T, c->hd, bc->theta);
    b->rope = (lmn_rope){cs, sn, b->T};
    b->rp = &b->rope;
  }
}

static void ref_init(ref *z, const blk *b, const bcase *bc) {
  memset(z, 0, sizeof *z);
  z->c = b->c;
  z->B = b->B;
  z->T = b->T;
  z->k = b->k;
  z->scale = b->scale;
  z->theta = bc->theta;
  for (int m = 0; m < NM; m++) z->P[m] = b->n[m] ? dfrom(b->wt[m], b->n[m]) : NULL;
  for (int i = 0; i < b->k; i++) z->xs[i] = dfrom(b->xs[i], (size_t)b->N * b->c.d);
  z->R = dfrom(b->R, (size_t)b->N * b->c.d);
  ref_alloc(z);
}

/* one gradient set: every member of the kind in one zeroed arena, and k input gradients */
typedef struct grads {
  float *arena, *m[NM], *dx[3];
  size_t total;
} grads;

static void grads_init(grads *gs, const blk *b) {
  gs->total = 0;
  for (int m = 0; m < NM; m++) gs->total += b->n[m];
  gs->arena = fzeros(gs->total);
  size_t off = 0;
  for (int m = 0; m < NM; m++) {
    gs->m[m] = b->n[m] ? gs->arena + off : NULL;
    off += b->n[m];
  }
  for (int i = 0; i < 3; i++) gs->dx[i] = i < b->k ? fzeros((size_t)b->N * b->c.d) : NULL;
}

/* lmn_block_g over gs; mask bit m set = member m trainable */
static lmn_block_g g_view(const grads *gs, unsigned mask) {
  lmn_block_g g;
  memset(&g, 0, sizeof g);
  for (int m = 0; m < NM; m++)
    if (mask >> m & 1) *g_slot(&g, m) = gs->m[m];
  return g;
}

static void run_backward(const blk *b, lmn_block_g *g, float *const *dxs, const float *saved, float *scratch,
                         size_t scratch_n, lmn_pool *pool) {
  size_t nd = (size_t)b->N * b->c.d;
  float *dy = fcopy(b->R, nd);
  nan_fill(scratch, scratch_n);
  lmn_block_backward(&b->c, &b->w, b->rp, g, dxs, b->k, b->scale, dy, saved, b->B, b->T, scratch, pool);
}

/* ======================================= block tests ======================================= */

static void check_block(const bcase *bc, uint64_t seed) {
  printf("\n  [%s]", bc->name);
  rng g = {seed};
  blk b;
  blk_init(&b, bc, &g);
  const lmn_block_cfg *c = &b.c;
  size_t nd = (size_t)b.N * c->d;
  const float *const *xs = (const float *const *)b.xs;

  lmn_err err;
  lmn_pool *pool = lmn_pool_create(2, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
  size_t saved_n = lmn_block_saved_floats(c, b.B, b.T), scr_n = lmn_block_scratch_floats(c, b.B, b.T, 2);
  size_t scr1_n = lmn_block_scratch_floats(c, b.B, b.T, 1);
  float *saved = fnan(saved_n), *scratch = fnan(scr_n), *scratch1 = fnan(scr1_n);

  /* 1. forward against the double reference */
  float *y = fnan(nd);
  lmn_block_forward(c, &b.w, b.rp, y, xs, b.k, b.scale, saved, b.B, b.T, scratch, pool);
  ref z;
  ref_init(&z, &b, bc);
  ref_forward(&z);
  double e = max_err(y, z.y, nd, 1.0);
  worst_fwd = fmax(worst_fwd, e);
  CHECK_ERR("forward vs double reference", e, M_FWD_TOL);

  /* inference (saved NULL, in scratch) and a single-thread run with its own exact scratch: same bits */
  float *y2 = fnan(nd), *y3 = fnan(nd);
  nan_fill(scratch, scr_n);
  lmn_block_forward(c, &b.w, b.rp, y2, xs, b.k, b.scale, NULL, b.B, b.T, scratch, pool);
  CHECK_SAME("forward, saved = NULL", y2, y, nd);
  lmn_block_forward(c, &b.w, b.rp, y3, xs, b.k, b.scale, NULL, b.B, b.T, scratch1, NULL);
  CHECK_SAME("forward, no pool (1-thread scratch)", y3, y, nd);

  /* 2. backward against finite differences of the reference, every tensor and every input */
  unsigned all = 0;
  for (int m = 0; m < NM; m++)
    if (b.n[m]) all |= 1u << m;
  grads full;
  grads_init(&full, &b);
  lmn_block_g gf = g_view(&full, all);
  long long mnk_full = gemm_mnk;
  run_backward(&b, &gf, full.dx, saved, scratch, scr_n, pool);
  mnk_full = gemm_mnk - mnk_full;
  char what[96];
  for (int m = 0; m < NM; m++) {
    if (!b.n[m]) continue;
    double *fd = dzeros(b.n[m]);
    fd_grad(z.P[m], b.n[m], ref_objective, &z, fd);
    e = max_err(full.m[m], fd, b.n[m], 1.0);
    worst_bwd = fmax(worst_bwd, e);
    snprintf(what, sizeof what, "d%s (%zu) vs finite differences", m_name[m], b.n[m]);
    CHECK_ERR(what, e, M_BWD_TOL);
  }
  for (int i = 0; i < b.k; i++) {
    double *fd = dzeros(nd);
    fd_grad(z.xs[i], nd, ref_objective, &z, fd);
    e = max_err(full.dx[i], fd, nd, 1.0);
    worst_bwd = fmax(worst_bwd, e);
    snprintf(what, sizeof what, "dxs[%d] vs finite differences", i);
    CHECK_ERR(what, e, M_BWD_TOL);
  }

  /* 3. frozen: all NULL -> the same dxs bits; half frozen (both halves) -> the same bits where trainable and
   * nothing written elsewhere; dxs NULL -> the same weight gradients; a NULL entry of dxs -> the others same
   */
  {
    grads fr;
    grads_init(&fr, &b);
    lmn_block_g g0 = g_view(&fr, 0);
    long long mnk_frozen = gemm_mnk;
    run_backward(&b, &g0, fr.dx, saved, scratch, scr_n, pool);
    mnk_frozen = gemm_mnk - mnk_frozen;
    for (int i = 0; i < b.k; i++) CHECK_SAME("frozen (all g NULL): dxs", fr.dx[i], full.dx[i], nd);
    /* the frozen run skips exactly the weight-gradient GEMMs: N * rows * cols multiply-adds per matrix */
    long long wmnk = 0;
    for (int m = 0; m < NM; m++)
      if (member_fan_in(c, m) && b.n[m]) wmnk += (long long)b.N * (long long)b.n[m];
    printf("\n    %-52s %lld - %lld = %lld (weight GEMMs %lld)", "GEMM multiply-adds: trainable - frozen",
           mnk_full, mnk_frozen, mnk_full - mnk_frozen, wmnk);
    CU_ASSERT_EQUAL(mnk_full - mnk_frozen, wmnk);
    long long calls0 = gemm_calls;
    run_backward(&b, &g0, NULL, saved, scratch, scr_n, pool); /* nothing wanted: nothing computed */
    printf("\n    %-52s %lld", "GEMMs with all frozen and dxs = NULL", gemm_calls - calls0);
    CU_ASSERT_EQUAL(gemm_calls, calls0);
    float *zero = fzeros(fr.total);
    CHECK_SAME("frozen: gradient arena untouched", fr.arena, zero, fr.total);
    for (int half = 0; half < 2; half++) {
      unsigned mask = 0;
      for (int m = 0, j = 0; m < NM; m++)
        if (b.n[m] && (j++ & 1) == half) mask |= 1u << m;
      grads hf;
      grads_init(&hf, &b);
      lmn_block_g gh = g_view(&hf, mask);
      run_backward(&b, &gh, hf.dx, saved, scratch, scr_n, pool);
      int same = 1;
      for (int i = 0; i < b.k; i++) same &= !memcmp(hf.dx[i], full.dx[i], nd * sizeof(float));
      for (int m = 0; m < NM; m++)
        if (b.n[m]) same &= !memcmp(hf.m[m], (mask >> m & 1) ? full.m[m] : zero, b.n[m] * sizeof(float));
      printf("\n    %-52s %s", half ? "half frozen (odd members)" : "half frozen (even members)",
             same ? "identical" : "DIFFERENT");
      CU_ASSERT(same);
    }
    grads nx;
    grads_init(&nx, &b);
    lmn_block_g gn = g_view(&nx, all);
    run_backward(&b, &gn, NULL, saved, scratch, scr_n, pool);
    CHECK_SAME("dxs = NULL: weight gradients", nx.arena, full.arena, full.total);
    if (b.k > 1) {
      grads px;
      grads_init(&px, &b);
      float *dxp[3] = {px.dx[0], NULL, px.dx[2]};
      lmn_block_g g1 = g_view(&px, 0);
      run_backward(&b, &g1, dxp, saved, scratch, scr_n, pool);
      CHECK_SAME("dxs[1] = NULL: dxs[0]", px.dx[0], full.dx[0], nd);
      CHECK_SAME("dxs[1] = NULL: dxs[2]", px.dx[2], full.dx[2], nd);
      CHECK_SAME("dxs[1] = NULL: dxs[1] untouched", px.dx[1], fzeros(nd), nd);
    }
  }

  /* accumulation: a second call onto the full run's buffers doubles everything */
  {
    float *g1 = fcopy(full.arena, full.total), *d1[3];
    for (int i = 0; i < b.k; i++) d1[i] = fcopy(full.dx[i], nd);
    run_backward(&b, &gf, full.dx, saved, scratch, scr_n, pool);
    CHECK_ERR("two backward calls: weight gradients doubled", doubled_err(full.arena, g1, full.total),
              M_ACC_TOL);
    double ed = 0.0;
    for (int i = 0; i < b.k; i++) ed = fmax(ed, doubled_err(full.dx[i], d1[i], nd));
    CHECK_ERR("two backward calls: dxs doubled", ed, M_ACC_TOL);
  }
  lmn_pool_destroy(pool);
  t_free_all();
}

/* Generation: B = 1, T rows; the full forward against (a) prefill T0 then single tokens, (b) prefill 2, a
 * chunk of 3 at pos0 = 2, then single tokens. Caches and scratch at exactly their stated sizes. */
static void check_cached(const bcase *bc, uint64_t seed) {
  printf("\n  [%s, KV cache]", bc->name);
  bcase one = *bc;
  one.B = 1;
  rng g = {seed};
  blk b;
  blk_init(&b, &one, &g);
  const lmn_block_cfg *c = &b.c;
  int T = b.T, d = c->d, kvd = c->kv_heads * c->hd;
  size_t nd = (size_t)T * d;
  lmn_err err;
  lmn_pool *pool = lmn_pool_create(2, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
  float *yfull = fnan(nd), *scr = fnan(lmn_block_scratch_floats(c, 1, T, 2));
  lmn_block_forward(c, &b.w, b.rp, yfull, (const float *const *)b.xs, b.k, b.scale, NULL, 1, T, scr, pool);

  for (int plan = 0; plan < 2; plan++) {
    float *kc = fnan((size_t)T * kvd), *vc = fnan((size_t)T * kvd), *y = fnan(nd);
    int pos = 0;
    while (pos < T) {
      int n = pos > 0 && !(plan == 1 && pos == 2) ? 1 : plan == 0 ? T / 2 + 1 : pos == 0 ? 2 : 3;
      const float *xr[3];
      for (int i = 0; i < b.k; i++) xr[i] = b.xs[i] + (size_t)pos * d;
      float *sc = fnan(lmn_block_cache_scratch_floats(c, n, 2));
      lmn_block_forward_cached(c, &b.w, b.rp, y + (size_t)pos * d, xr, b.k, b.scale, kc, vc, pos, n, sc,
                               pool);
      pos += n;
    }
    double e = max_abs_ff(y, yfull, nd);
    worst_cache = fmax(worst_cache, e);
    CHECK_ERR(plan ? "prefill 2 + chunk 3 + steps == full forward" : "prefill T/2+1 + steps == full forward",
              e, M_CACHE_TOL);
  }
  lmn_pool_destroy(pool);
  t_free_all();
}

static const bcase cases[] = {
    {"llama d32 h4/2 ffn40 B2 T7 k1", LMN_BLOCK_LLAMA, 32, 4, 2, 40, 2, 7, 1, 0, 0.0f, 10000.0},
    {"llama d16 h4/2 ffn24 B2 T5 k3", LMN_BLOCK_LLAMA, 16, 4, 2, 24, 2, 5, 3, 0, 0.0f, 100.0},
    {"qwen2 d24 h4/2 ffn32 B2 T6 k3 qkv_bias", LMN_BLOCK_QWEN2, 24, 4, 2, 32, 2, 6, 3, 1, 0.0f, 1000.0},
    {"qwen2 d16 h4/2 ffn24 B2 T9 k1 no bias", LMN_BLOCK_QWEN2, 16, 4, 2, 24, 2, 9, 1, 0, 0.0f, 10000.0},
    {"gpt2 d24 h4 ffn32 B2 T8 k1", LMN_BLOCK_GPT2, 24, 4, 4, 32, 2, 8, 1, 0, 0.0f, 0.0},
    {"gpt2 d16 h4 ffn40 B2 T5 k3", LMN_BLOCK_GPT2, 16, 4, 4, 40, 2, 5, 3, 0, 0.0f, 0.0},
    {"gpt2 edge d16 h4 B2 T7 k3 scale 1/sqrt(hd)", LMN_BLOCK_GPT2_EDGE, 16, 4, 4, 16, 2, 7, 3, 0, 0.0f, 0.0},
    {"gpt2 edge d24 h4 B2 T6 k1 scale 1", LMN_BLOCK_GPT2_EDGE, 24, 4, 4, 24, 2, 6, 1, 0, 1.0f, 0.0},
};

static void test_llama(void) {
  check_block(&cases[0], 11);
  check_block(&cases[1], 12);
  check_cached(&cases[0], 13);
  check_cached(&cases[1], 14);
}
static void test_qwen2(void) {
  check_block(&cases[2], 21);
  check_block(&cases[3], 22);
  check_cached(&cases[2], 23);
  check_cached(&cases[3], 24);
}
static void test_gpt2(void) {
  check_block(&cases[4], 31);
  check_block(&cases[5], 32);
  check_cached(&cases[4], 33);
  check_cached(&cases[5], 34);
}
static void test_gpt2_edge(void) {
  check_block(&cases[6], 41);
  check_block(&cases[7], 42);
  check_cached(&cases[6], 43);
  check_cached(&cases[7], 44);
}

/* formats.md 1.6: a llama block on GGUF-permuted q/k rows (NORMAL RoPE) equals a qwen2 block on the HF rows
 * (NEOX RoPE), biases permuted alike. */
static void test_permutation(void) {
  bcase bc = {"llama permuted vs qwen2", LMN_BLOCK_QWEN2, 32, 4, 2, 40, 2, 7, 1, 1, 0.0f, 10000.0};
  rng g = {51};
  blk b;
  blk_init(&b, &bc, &g);
  lmn_block_cfg cl = b.c;
  cl.kind = LMN_BLOCK_LLAMA;
  lmn_block_w wl = b.w;
  int hd = b.c.hd, d = b.c.d;
  const int mats[4] = {M_WQ, M_BQ, M_WK, M_BK};
  for (int s = 0; s < 4; s++) {
    int m = mats[s], cols = (m == M_WQ || m == M_WK) ? d : 1, heads = (m == M_WQ || m == M_BQ) ? 4 : 2;
    float *p = fzeros(b.n[m]);
    for (int h = 0; h < heads; h++)
      for (int j = 0; j < hd / 2; j++) {
        memcpy(p + ((size_t)h * hd + 2 * j) * cols, b.wt[m] + ((size_t)h * hd + j) * cols,
               cols * sizeof(float));
        memcpy(p + ((size_t)h * hd + 2 * j + 1) * cols, b.wt[m] + ((size_t)h * hd + hd / 2 + j) * cols,
               cols * sizeof(float));
      }
    *w_slot(&wl, m) = p;
  }
  size_t nd = (size_t)b.N * d;
  float *yq = fnan(nd), *yl = fnan(nd), *scr = fnan(lmn_block_scratch_floats(&b.c, b.B, b.T, 1));
  lmn_block_forward(&b.c, &b.w, b.rp, yq, (const float *const *)b.xs, 1, 1.0f, NULL, b.B, b.T, scr, NULL);
  lmn_block_forward(&cl, &wl, b.rp, yl, (const float *const *)b.xs, 1, 1.0f, NULL, b.B, b.T, scr, NULL);
  CHECK_ERR("llama(permuted rows) vs qwen2(HF rows), max abs", max_abs_ff(yl, yq, nd), 1e-5);
  t_free_all();
}

/* ======================================= MLP edge ======================================= */

typedef struct mref {
  int d, h, N;
  double *w1, *b1, *w2, *b2, *x, *R, *a1, *a2, *y;
} mref;

static void mref_forward(mref *z) {
  d_linear(z->a1, z->x, z->w1, z->b1, z->N, z->d, z->h);
  for (size_t j = 0; j < (size_t)z->N * z->h; j++) z->a1[j] = d_gelu(z->a1[j]);
  d_linear(z->a2, z->a1, z->w2, z->b2, z->N, z->h, z->d);
  for (size_t j = 0; j < (size_t)z->N * z->d; j++) z->y[j] = z->x[j] + d_gelu(z->a2[j]);
}
static double mref_objective(void *p) {
  mref *z = p;
  mref_forward(z);
  return dot_d(z->y, z->R, (size_t)z->N * z->d);
}

static void check_mlp(int d, int h, int N, uint64_t seed) {
  printf("\n  [mlp edge d%d h%d N%d]", d, h, N);
  rng g = {seed};
  size_t nd = (size_t)N * d, nh = (size_t)N * h;
  float a1 = 1.6f / sqrtf((float)d), a2 = 1.6f / sqrtf((float)h);
  float *w1 = frand(&g, (size_t)h * d, -a1, a1), *b1 = frand(&g, h, -0.3f, 0.3f);
  float *w2 = frand(&g, (size_t)d * h, -a2, a2), *b2 = frand(&g, d, -0.3f, 0.3f);
  float *x = frand(&g, nd, -1.0f, 1.0f), *R = frand(&g, nd, -1.0f, 1.0f);
  lmn_mlp_w w = {w1, b1, w2, b2};
  size_t sv_n = lmn_mlp_saved_floats(d, h, N), sc_n = lmn_mlp_scratch_floats(d, h, N);
  CU_ASSERT(sc_n <= 2 * nh + nd);
  float *saved = fnan(sv_n), *scratch = fnan(sc_n), *y = fnan(nd);
  lmn_mlp_forward(&w, y, x, saved, d, h, N);
  mref z = {d,
            h,
            N,
            dfrom(w1, (size_t)h * d),
            dfrom(b1, h),
            dfrom(w2, (size_t)d * h),
            dfrom(b2, d),
            dfrom(x, nd),
            dfrom(R, nd),
            dzeros(nh),
            dzeros(nd),
            dzeros(nd)};
  mref_forward(&z);
  double e = max_err(y, z.y, nd, 1.0);
  worst_fwd = fmax(worst_fwd, e);
  CHECK_ERR("forward vs double reference", e, M_FWD_TOL);

  float *gw1 = fzeros((size_t)h * d), *gb1 = fzeros(h), *gw2 = fzeros((size_t)d * h), *gb2 = fzeros(d);
  float *dx = fzeros(nd), *dy = fcopy(R, nd);
  lmn_mlp_g gg = {gw1, gb1, gw2, gb2};
  lmn_mlp_backward(&w, &gg, dx, dy, x, saved, d, h, N, scratch);
  struct {
    const char *name;
    float *ours;
    double *p;
    size_t n;
  } t[5] = {{"dw1", gw1, z.w1, (size_t)h * d},
            {"db1", gb1, z.b1, h},
            {"dw2", gw2, z.w2, (size_t)d * h},
            {"db2", gb2, z.b2, d},
            {"dx", dx, z.x, nd}};
  for (int i = 0; i < 5; i++) {
    double *fd = dzeros(t[i].n);
    fd_grad(t[i].p, t[i].n, mref_objective, &z, fd);
    e = max_err(t[i].ours, fd, t[i].n, 1.0);
    worst_bwd = fmax(worst_bwd, e);
    char what[64];
    snprintf(what, sizeof what, "%s vs finite differences", t[i].name);
    CHECK_ERR(what, e, M_BWD_TOL);
  }
  /* frozen: dx bits equal, nothing else; dx NULL: the same weight gradients */
  float *dx2 = fzeros(nd);
  lmn_mlp_g g0 = {NULL, NULL, NULL, NULL};
  dy = fcopy(R, nd);
  nan_fill(scratch, sc_n);
  lmn_mlp_backward(&w, &g0, dx2, dy, x, saved, d, h, N, scratch);
  CHECK_SAME("frozen: dx", dx2, dx, nd);
  float *h1 = fzeros((size_t)h * d), *h2 = fzeros(h), *h3 = fzeros((size_t)d * h), *h4 = fzeros(d);
  lmn_mlp_g gn = {h1, h2, h3, h4};
  dy = fcopy(R, nd);
  nan_fill(scratch, sc_n);
  lmn_mlp_backward(&w, &gn, NULL, dy, x, saved, d, h, N, scratch);
  CHECK_SAME("dx = NULL: dw1", h1, gw1, (size_t)h * d);
  CHECK_SAME("dx = NULL: dw2", h3, gw2, (size_t)d * h);
  CHECK_SAME("dx = NULL: db1", h2, gb1, h);
  CHECK_SAME("dx = NULL: db2", h4, gb2, d);
  /* accumulation */
  float *c1 = fcopy(gw1, (size_t)h * d), *c2 = fcopy(gw2, (size_t)d * h), *c3 = fcopy(dx, nd);
  dy = fcopy(R, nd);
  nan_fill(scratch, sc_n);
  lmn_mlp_backward(&w, &gg, dx, dy, x, saved, d, h, N, scratch);
  double ea = fmax(doubled_err(gw1, c1, (size_t)h * d),
                   fmax(doubled_err(gw2, c2, (size_t)d * h), doubled_err(dx, c3, nd)));
  CHECK_ERR("two backward calls: dw1, dw2, dx doubled", ea, M_ACC_TOL);
  t_free_all();
}

static void test_mlp(void) {
  check_mlp(16, 8, 14, 61); /* h <= d: gelu(a1) passes through y */
  check_mlp(8, 12, 10, 62); /* h > d: it has its own room in saved */
}

static void test_summary(void) {
  printf("\n    BLAS: %s", openblas_get_config()); /* (also keeps libopenblas linked under --as-needed) */
  printf("\n    worst: forward %.2e (tol %.0e), backward vs fd %.2e (tol %.0e), cache %.2e (tol %.0e)",
         worst_fwd, M_FWD_TOL, worst_bwd, M_BWD_TOL, worst_cache, M_CACHE_TOL);
  CU_ASSERT(worst_fwd <= M_FWD_TOL && worst_bwd <= M_BWD_TOL && worst_cache <= M_CACHE_TOL);
}

static CU_TestInfo tests[] = {
    {"llama block: forward, fd backward, frozen, accumulate, cache", test_llama},
    {"qwen2 block (qkv bias on/off): same checks", test_qwen2},
    {"gpt2 block: same checks", test_gpt2},
    {"gpt2 edge (scaled and unscaled): same checks", test_gpt2_edge},
    {"llama on GGUF-permuted q/k == qwen2 on HF rows", test_permutation},
    {"mlp edge: forward, fd backward, frozen, accumulate", test_mlp},
    {"worst errors over the suite", test_summary},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("modules", tests)
