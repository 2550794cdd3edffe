/* k_attention.c: causal multi-head attention with GQA, FlashAttention-2 style on the CPU.
 * Forward: for each (batch, head, query tile of bq rows), stream key tiles of bk rows: S = scale Q K^T (one
 * small sgemm), online softmax on S in place (running max m and sum l per row, the output rows rescaled
 * when m grows), O += P V (one small sgemm into the output rows); finally O /= l and lse = m + log l.
 * Backward: for each (batch, kv head), per key tile, per query head of the group, per query tile: recompute
 * P = exp(S - lse), dV += P^T dO, dP = dO V^T, dS = P (dP - D) with D = rowsum(dO O), dQ += scale dS K,
 * dK += scale dS^T Q; every product is a cblas_sgemm writing straight into the (strided) tensors.
 * Tile products stay at or below 2^18 multiply-adds so that OpenBLAS runs them on the calling thread
 * (interface/gemm.c: M*N*K <= 65536 * GEMM_MULTITHREAD_THRESHOLD(4)); the pool supplies the parallelism. */
#include <cblas.h>
#include <math.h>

#include "k_isa.h"
#include "kernels.h"

#define TILE_MNK_MAX (1 << 18)

int lmn_attn_default_bk(int hd) {
  int bk = 64;
  while (bk > 8 && (long)LMN_ATTN_BQ * bk * hd > TILE_MNK_MAX) bk /= 2;
  return bk;
}

typedef struct geom {
  int B, T, H, KV, hd, group, bq, bk;
  float scale;
  size_t ldq, ldkv; /* row strides of q/out and k/v */
} geom;

static geom resolve(const lmn_attn *a) {
  geom g;
  g.B = a->B;
  g.T = a->T;
  g.H = a->heads;
  g.KV = a->kv_heads;
  g.hd = a->hd;
  g.group = a->heads / a->kv_heads;
  g.scale = a->scale;
  g.bq = a->bq > 0 ? a->bq : LMN_ATTN_BQ;
  g.bk = a->bk > 0 ? a->bk : lmn_attn_default_bk(a->hd);
  g.ldq = (size_t)a->heads * a->hd;
  g.ldkv = (size_t)a->kv_heads * a->hd;
  return g;
}

static size_t fwd_floats(int bq, int bk) { return (size_t)bq * bk + 2 * (size_t)bq; }

size_t lmn_attention_scratch_floats(const lmn_attn *a, int n_threads) {
  geom g = resolve(a);
  size_t f = fwd_floats(g.bq, g.bk), b = 2 * (size_t)g.bq * g.bk + (size_t)g.group * g.T;
  return (size_t)(n_threads > 0 ? n_threads : 1) * (f > b ? f : b);
}

/* ---- row helpers (vectorised, tails through partial loads) ---- */

LMN_CLONES
static float row_max(const float *x, int n) {
  lmn_vf m = lmn_vset(-INFINITY);
  int j = 0;
  for (; j + LMN_VL <= n; j += LMN_VL) m = lmn_vmax(lmn_vload(x + j), m);
  if (j < n) m = lmn_vmax(lmn_vload_part(x + j, n - j, -INFINITY), m);
  return lmn_vhmax(m);
}

/* x[j] = exp(x[j] - sub) for j < n, x[j] = 0 for n <= j < width; returns the sum. */
LMN_CLONES
static float row_exp(float *x, int n, int width, float sub) {
  lmn_vf s = {0};
  int j = 0;
  for (; j + LMN_VL <= n; j += LMN_VL) {
    lmn_vf e = lmn_vexp_le88(lmn_vload(x + j) - sub);
    lmn_vstore(x + j, e);
    s += e;
  }
  if (j < n) {
    lmn_vf e = lmn_vexp_le88(lmn_vload_part(x + j, n - j, -INFINITY) - sub);
    lmn_vstore_part(x + j, e, n - j);
    s += e;
    j = n;
  }
  for (; j < width; j++) x[j] = 0.0f;
  return lmn_vhsum(s);
}

LMN_CLONES
static void row_scale(float *x, int n, float a) {
  int j = 0;
  for (; j + LMN_VL <= n; j += LMN_VL) lmn_vstore(x + j, lmn_vload(x + j) * a);
  for (; j < n; j++) x[j] *= a;
}

/* ---- forward ---- */

/* The products of fwd_block for the few query rows of decoding, in registers: a cblas_sgemm of 1 to 4 rows
 * spends more on packing its operands than on arithmetic.
 * S[r, c] = scale * Q_r . K_c for c < nk. */
#define SMALL_NQ 4
LMN_CLONES
static void small_qk(float *S, int bk, const float *Q, size_t ldq, int nq, const float *K, size_t ldkv, int nk,
                     int hd, float scale) {
  for (int c = 0; c < nk; c++) {
    const float *k = K + (size_t)c * ldkv;
    for (int r = 0; r < nq; r++) {
      const float *q = Q + (size_t)r * ldq;
      lmn_vf acc = {0};
      int j = 0;
      for (; j + LMN_VL <= hd; j += LMN_VL) acc += lmn_vload(q + j) * lmn_vload(k + j);
      float t = lmn_vhsum(acc);
      for (; j < hd; j++) t += q[j] * k[j];
      S[(size_t)r * bk + c] = scale * t;
    }
  }
}

/* O_r = beta O_r + sum_{c < nk} S[r, c] V_c (beta 0 or 1). */
LMN_CLONES
static void small_sv(float *O, size_t ldo, const float *S, int bk, int nq, const float *V, size_t ldkv, int nk,
                     int hd, float beta) {
  for (int r = 0; r < nq; r++) {
    float *o = O + (size_t)r * ldo;
    if (beta == 0.0f) memset(o, 0, (size_t)hd * sizeof *o);
    for (int c = 0; c < nk; c++) {
      const float *v = V + (size_t)c * ldkv;
      const float s = S[(size_t)r * bk + c];
      int j = 0;
      for (; j + LMN_VL <= hd; j += LMN_VL) lmn_vstore(o + j, lmn_vload(o + j) + s * lmn_vload(v + j));
      for (; j < hd; j++) o[j] += s * v[j];
    }
  }
}

/* Attention of nq query rows Q (stride ldq; row r at position qpos + r * qstep, seeing keys 0..that
 * position) over K, V (stride ldkv). Writes the nq output rows O (stride ldo) and, if lse != NULL, lse[r].
 * Scratch: S [nq, bk], m [nq], l [nq]. */
LMN_CLONES
static void fwd_block(float *O, size_t ldo, float *lse, const float *Q, size_t ldq, int nq, int qpos,
                      int qstep, const float *K, const float *V, size_t ldkv, int hd, float scale, int bk,
                      float *S, float *m, float *l) {
  int kend = qpos + (nq - 1) * qstep + 1;
  for (int r = 0; r < nq; r++) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
  }
  for (int j0 = 0; j0 < kend; j0 += bk) {
    int nk = kend - j0 < bk ? kend - j0 : bk;
    if (nq <= SMALL_NQ)
      small_qk(S, bk, Q, ldq, nq, K + (size_t)j0 * ldkv, ldkv, nk, hd, scale);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale, Q, (int)ldq,
                  K + (size_t)j0 * ldkv, (int)ldkv, 0.0f, S, bk);
    for (int r = 0; r < nq; r++) {
      float *s = S + (size_t)r * bk;
      int lim = qpos + r * qstep - j0 + 1; /* visible keys of this row in the tile */
      if (lim > nk) lim = nk;
      if (lim <= 0) { /* the whole tile is in this row's future */
        for (int c = 0; c < nk; c++) s[c] = 0.0f;
        continue;
      }
      float mx = row_max(s, lim), mnew = mx > m[r] ? mx : m[r];
      float sum = row_exp(s, lim, nk, mnew);
      if (j0 > 0) { /* rescale what the earlier tiles accumulated (j0 == 0: the sgemm below overwrites) */
        float alpha = expf(m[r] - mnew);
        l[r] *= alpha;
        if (alpha != 1.0f) row_scale(O + (size_t)r * ldo, hd, alpha);
      }
      l[r] += sum;
      m[r] = mnew;
    }
    if (nq <= SMALL_NQ)
      small_sv(O, ldo, S, bk, nq, V + (size_t)j0 * ldkv, ldkv, nk, hd, j0 == 0 ? 0.0f : 1.0f);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, S, bk, V + (size_t)j0 * ldkv,
                  (int)ldkv, j0 == 0 ? 0.0f : 1.0f, O, (int)ldo);
  }
  for (int r = 0; r < nq; r++) {
    row_scale(O + (size_t)r * ldo, hd, 1.0f / l[r]);
    if (lse) lse[r] = m[r] + logf(l[r]);
  }
}

typedef struct fwd_ctx {
  geom g;
  float *out, *lse, *scratch;
  const float *q, *k, *v;
  int nqt; /* query tiles per sequence */
} fwd_ctx;

static void fwd_task(void *ctxp, int task, int thread) {
  const fwd_ctx *c = ctxp;
  const geom *g = &c->g;
  int bh = task % (g->B * g->H), qt = c->nqt - 1 - task / (g->B * g->H); /* longest tiles first */
  int b = bh / g->H, h = bh % g->H, kvh = h / g->group;
  int t0 = qt * g->bq, nq = g->T - t0 < g->bq ? g->T - t0 : g->bq;
  size_t row0 = (size_t)b * g->T;
  float *S = c->scratch + (size_t)thread * fwd_floats(g->bq, g->bk);
  fwd_block(c->out + (row0 + t0) * g->ldq + (size_t)h * g->hd, g->ldq,
            c->lse ? c->lse + ((size_t)b * g->H + h) * g->T + t0 : NULL,
            c->q + (row0 + t0) * g->ldq + (size_t)h * g->hd, g->ldq, nq, t0, 1,
            c->k + row0 * g->ldkv + (size_t)kvh * g->hd, c->v + row0 * g->ldkv + (size_t)kvh * g->hd, g->ldkv,
            g->hd, g->scale, g->bk, S, S + (size_t)g->bq * g->bk, S + (size_t)g->bq * g->bk + g->bq);
}

void lmn_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                           const lmn_attn *a, float *scratch, lmn_pool *pool) {
  fwd_ctx c = {resolve(a), out, lse, scratch, q, k, v, 0};
  c.nqt = (c.g.T + c.g.bq - 1) / c.g.bq;
  lmn_pool_run(pool, c.g.B * c.g.H * c.nqt, fwd_task, &c);
}

/* ---- backward ---- */

typedef struct bwd_ctx {
  geom g;
  float *dq, *dk, *dv, *scratch;
  const float *dout, *out, *lse, *q, *k, *v;
  size_t per_thread;
} bwd_ctx;

LMN_CLONES
static void bwd_task(void *ctxp, int task, int thread) {
  const bwd_ctx *c = ctxp;
  const geom *g = &c->g;
  int b = task / g->KV, kvh = task % g->KV, bq = g->bq, bk = g->bk, hd = g->hd, T = g->T;
  float *P = c->scratch + (size_t)thread * c->per_thread, *dP = P + (size_t)bq * bk,
        *D = dP + (size_t)bq * bk;
  size_t row0 = (size_t)b * T, kvcol = (size_t)kvh * hd;
  int need_ds = c->dq || c->dk;

  if (need_ds) /* D[hh][t] = dout . out over the head's hd columns */
    for (int hh = 0; hh < g->group; hh++) {
      size_t col = (size_t)(kvh * g->group + hh) * hd;
      for (int t = 0; t < T; t++) {
        const float *o = c->out + (row0 + t) * g->ldq + col, *d = c->dout + (row0 + t) * g->ldq + col;
        lmn_vf acc = {0};
        int j = 0;
        for (; j + LMN_VL <= hd; j += LMN_VL) acc += lmn_vload(o + j) * lmn_vload(d + j);
        float s = lmn_vhsum(acc);
        for (; j < hd; j++) s += o[j] * d[j];
        D[(size_t)hh * T + t] = s;
      }
    }

  for (int j0 = 0; j0 < T; j0 += bk) {
    int nk = T - j0 < bk ? T - j0 : bk;
    const float *Kj = c->k + (row0 + j0) * g->ldkv + kvcol, *Vj = c->v + (row0 + j0) * g->ldkv + kvcol;
    float *dKj = c->dk ? c->dk + (row0 + j0) * g->ldkv + kvcol : NULL;
    float *dVj = c->dv ? c->dv + (row0 + j0) * g->ldkv + kvcol : NULL;
    for (int hh = 0; hh < g->group; hh++) {
      int h = kvh * g->group + hh;
      size_t col = (size_t)h * hd;
      const float *lse = c->lse + ((size_t)b * g->H + h) * T;
      for (int i0 = (j0 / bq) * bq; i0 < T; i0 += bq) {
        int nq = T - i0 < bq ? T - i0 : bq;
        const float *Qi = c->q + (row0 + i0) * g->ldq + col, *dOi = c->dout + (row0 + i0) * g->ldq + col;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, g->scale, Qi, (int)g->ldq, Kj,
                    (int)g->ldkv, 0.0f, P, bk);
        for (int r = 0; r < nq; r++) {
          int lim = i0 + r - j0 + 1;
          if (lim > nk) lim = nk;
          float *p = P + (size_t)r * bk;
          if (lim <= 0)
            for (int cc = 0; cc < nk; cc++) p[cc] = 0.0f;
          else
            row_exp(p, lim, nk, lse[i0 + r]);
        }
        if (dVj) /* dV_j += P^T dO_i */
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, nq, 1.0f, P, bk, dOi, (int)g->ldq,
                      1.0f, dVj, (int)g->ldkv);
        if (!need_ds) continue;
        /* dP = dO_i V_j^T, then dS = P * (dP - D) in place */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, 1.0f, dOi, (int)g->ldq, Vj,
                    (int)g->ldkv, 0.0f, dP, bk);
        for (int r = 0; r < nq; r++) {
          float *p = P + (size_t)r * bk, *dp = dP + (size_t)r * bk, Dr = D[(size_t)hh * T + i0 + r];
          int cc = 0;
          for (; cc + LMN_VL <= nk; cc += LMN_VL)
            lmn_vstore(dp + cc, lmn_vload(p + cc) * (lmn_vload(dp + cc) - Dr));
          for (; cc < nk; cc++) dp[cc] = p[cc] * (dp[cc] - Dr);
        }
        if (c->dq) /* dQ_i += scale dS K_j */
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, g->scale, dP, bk, Kj,
                      (int)g->ldkv, 1.0f, c->dq + (row0 + i0) * g->ldq + col, (int)g->ldq);
        if (dKj) /* dK_j += scale dS^T Q_i */
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, nq, g->scale, dP, bk, Qi, (int)g->ldq,
                      1.0f, dKj, (int)g->ldkv);
      }
    }
  }
}

void lmn_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                            const float *lse, const float *q, const float *k, const float *v,
                            const lmn_attn *a, float *scratch, lmn_pool *pool) {
  if (!dq && !dk && !dv) return;
  bwd_ctx c = {resolve(a), dq, dk, dv, scratch, dout, out, lse, q, k, v, 0};
  c.per_thread = lmn_attention_scratch_floats(a, 1);
  lmn_pool_run(pool, c.g.B * c.g.KV, bwd_task, &c);
}

/* ---- decode ---- */

/* Key tile of the decode kernel: as long as group * bk * hd <= 2^18 allows, a multiple of 8, in [8, 1024]. */
static int decode_bk(const lmn_attn *a) {
  if (a->bk > 0) return a->bk;
  int group = a->heads / a->kv_heads;
  long bk = TILE_MNK_MAX / ((long)group * a->hd) / 8 * 8;
  return bk < 8 ? 8 : bk > 1024 ? 1024 : (int)bk;
}

static size_t decode_floats(const lmn_attn *a) { return fwd_floats(a->heads / a->kv_heads, decode_bk(a)); }

size_t lmn_attention_decode_scratch_floats(const lmn_attn *a, int n_threads) {
  return (size_t)(n_threads > 0 ? n_threads : 1) * decode_floats(a);
}

typedef struct dec_ctx {
  const lmn_attn *a;
  float *out, *scratch;
  const float *q, *kc, *vc;
  int t, bk;
} dec_ctx;

/* One query head h (rows of hd floats, all at position t) over its key/value head h / group: a task per query
 * head rather than per key/value head, so that a few key/value heads still spread evenly over the pool (the
 * group's heads read the same cached keys, from cache). */
LMN_CLONES
static void dec_task(void *ctxp, int h, int thread) {
  const dec_ctx *c = ctxp;
  const lmn_attn *a = c->a;
  int group = a->heads / a->kv_heads, hd = a->hd, kvh = h / group;
  size_t ldkv = (size_t)a->kv_heads * hd, qoff = (size_t)h * hd;
  float *S = c->scratch + (size_t)thread * decode_floats(a);
  fwd_block(c->out + qoff, (size_t)hd, NULL, c->q + qoff, (size_t)hd, 1, c->t, 0, c->kc + (size_t)kvh * hd,
            c->vc + (size_t)kvh * hd, ldkv, hd, a->scale, c->bk, S, S + c->bk, S + c->bk + 1);
}

void lmn_attention_decode(float *out, const float *q, const float *kcache, const float *vcache, int t,
                          const lmn_attn *a, float *scratch, lmn_pool *pool) {
  dec_ctx c = {a, out, scratch, q, kcache, vcache, t, decode_bk(a)};
  lmn_pool_run(pool, a->heads, dec_task, &c);
}
