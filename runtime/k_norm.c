/* k_norm.c: RMSNorm and LayerNorm, forward and backward, plain and fused with what precedes them: the
 * residual add of a decoder block (r = x + a) and LMNet's edge aggregation (r = scale * sum of k inputs).
 * Each row is processed while it sits in L1: one pass over memory per tensor (see kernels.h). */
#include <math.h>

#include "k_isa.h"
#include "kernels.h"

/* Full or partial (the row's tail) vector load/store at column j of a row of C floats. */
static inline lmn_vf ld(const float *p, int j, int C) {
  return j + LMN_VL <= C ? lmn_vload(p + j) : lmn_vload_part(p + j, C - j, 0.0f);
}
static inline void st(float *p, int j, int C, lmn_vf v) {
  if (j + LMN_VL <= C)
    lmn_vstore(p + j, v);
  else
    lmn_vstore_part(p + j, v, C - j);
}

/* r[n] = scale * sum_i xs[i][n] for one row; returns the row the norm reads (r, or xs[0] when k == 1 and
 * scale == 1 and no r is wanted). */
LMN_CLONES
static const float *gather_row(float *r, const float *const *xs, int k, float scale, size_t off, int C) {
  if (!r) return xs[0] + off;
  float *ro = r + off;
  for (int j = 0; j < C; j += LMN_VL) {
    lmn_vf s = ld(xs[0] + off, j, C);
    for (int i = 1; i < k; i++) s += ld(xs[i] + off, j, C);
    st(ro, j, C, scale == 1.0f ? s : s * scale);
  }
  return ro;
}

/* Hands the gradient g of one row's r to dr (in/out) and to the k inputs: see kernels.h. */
LMN_CLONES
static void scatter_row(float *const *dxs, float *dr, int k, float scale, size_t off, int C,
                        float *restrict g) {
  if (dr) {
    float *d = dr + off;
    for (int j = 0; j < C; j += LMN_VL) {
      lmn_vf t = ld(d, j, C) + ld(g, j, C);
      st(d, j, C, t);
      st(g, j, C, t);
    }
  }
  if (!dxs) return;
  for (int i = 0; i < k; i++) {
    if (!dxs[i]) continue;
    float *d = dxs[i] + off;
    for (int j = 0; j < C; j += LMN_VL) st(d, j, C, ld(d, j, C) + ld(g, j, C) * scale);
  }
}

/* ---- RMSNorm ---- */

LMN_CLONES
static void rms_forward(float *r, float *y, float *rstd, const float *const *xs, int k, float scale,
                        const float *w, int N, int C, float eps) {
  for (int n = 0; n < N; n++) {
    size_t off = (size_t)n * C;
    const float *x = gather_row(r, xs, k, scale, off, C);
    lmn_vf ss = {0};
    for (int j = 0; j < C; j += LMN_VL) {
      lmn_vf v = ld(x, j, C);
      ss += v * v;
    }
    float s = 1.0f / sqrtf(lmn_vhsum(ss) / (float)C + eps);
    rstd[n] = s;
    for (int j = 0; j < C; j += LMN_VL) st(y + off, j, C, ld(x, j, C) * s * ld(w, j, C));
  }
}

/* Coefficient c of one row's RMSNorm input gradient g = dy * w * s - x * c. */
LMN_CLONES
static float rms_row_coef(const float *dy, const float *x, const float *w, float s, int C) {
  lmn_vf dot = {0};
  for (int j = 0; j < C; j += LMN_VL) dot += ld(dy, j, C) * ld(w, j, C) * ld(x, j, C);
  return lmn_vhsum(dot) * s * s * s / (float)C;
}

void lmn_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int N, int C, float eps) {
  rms_forward(NULL, y, rstd, &x, 1, 1.0f, w, N, C, eps);
}

LMN_CLONES
void lmn_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                          const float *rstd, int N, int C) {
  if (!dx && !dw) return;
  for (int n = 0; n < N; n++) {
    size_t off = (size_t)n * C;
    float s = rstd[n];
    if (!dx) { /* frozen input side: only dw */
      for (int j = 0; j < C; j += LMN_VL)
        st(dw, j, C, ld(dw, j, C) + ld(dy + off, j, C) * ld(x + off, j, C) * s);
      continue;
    }
    float c = rms_row_coef(dy + off, x + off, w, s, C);
    for (int j = 0; j < C; j += LMN_VL) {
      lmn_vf xv = ld(x + off, j, C), dyv = ld(dy + off, j, C);
      st(dx + off, j, C, ld(dx + off, j, C) + dyv * ld(w, j, C) * s - xv * c);
      if (dw) st(dw, j, C, ld(dw, j, C) + dyv * xv * s);
    }
  }
}

void lmn_add_rmsnorm_forward(float *r, float *y, float *rstd, const float *const *xs, int k, float scale,
                             const float *w, int N, int C, float eps) {
  rms_forward(r, y, rstd, xs, k, scale, w, N, C, eps);
}

/* The fused backward hands each row's gradient of r to several buffers; it is formed in blocks of
 * LMN_NORM_ROWBUF columns in a stack buffer (kernels never allocate), after a first pass over the row
 * computed its scalar coefficients. */
#define LMN_NORM_ROWBUF 1024

LMN_CLONES
void lmn_add_rmsnorm_backward(float *const *dxs, float *dr, float *dw, const float *dy, const float *r,
                              const float *w, const float *rstd, int k, float scale, int N, int C) {
  float buf[LMN_NORM_ROWBUF];
  for (int n = 0; n < N; n++) {
    size_t off = (size_t)n * C;
    float s = rstd[n], c = rms_row_coef(dy + off, r + off, w, s, C);
    for (int j0 = 0; j0 < C; j0 += LMN_NORM_ROWBUF) {
      int m = C - j0 < LMN_NORM_ROWBUF ? C - j0 : LMN_NORM_ROWBUF;
      const float *dyj = dy + off + j0, *xj = r + off + j0, *wj = w + j0;
      for (int j = 0; j < m; j += LMN_VL) {
        lmn_vf xv = ld(xj, j, m), dyv = ld(dyj, j, m);
        st(buf, j, m, dyv * ld(wj, j, m) * s - xv * c);
        if (dw) st(dw + j0, j, m, ld(dw + j0, j, m) + dyv * xv * s);
      }
      scatter_row(dxs, dr, k, scale, off + (size_t)j0, m, buf);
    }
  }
}

void lmn_residual_rmsnorm_forward(float *r, float *y, float *rstd, const float *x, const float *a,
                                  const float *w, int N, int C, float eps) {
  const float *xs[2] = {x, a};
  rms_forward(r, y, rstd, xs, 2, 1.0f, w, N, C, eps);
}

void lmn_residual_rmsnorm_backward(float *dx, float *da, float *dr, float *dw, const float *dy,
                                   const float *r, const float *w, const float *rstd, int N, int C) {
  float *dxs[2] = {dx, da};
  lmn_add_rmsnorm_backward(dxs, dr, dw, dy, r, w, rstd, 2, 1.0f, N, C);
}

/* ---- LayerNorm ---- */

LMN_CLONES
static void ln_forward(float *r, float *y, float *mean, float *rstd, const float *const *xs, int k,
                       float scale, const float *w, const float *b, int N, int C, float eps) {
  for (int n = 0; n < N; n++) {
    size_t off = (size_t)n * C;
    const float *x = gather_row(r, xs, k, scale, off, C);
    lmn_vf acc = {0};
    for (int j = 0; j < C; j += LMN_VL) acc += ld(x, j, C);
    float mu = lmn_vhsum(acc) / (float)C;
    acc = (lmn_vf){0};
    for (int j = 0; j < C; j += LMN_VL) { /* second pass over the cached row: exact variance */
      lmn_vf d = (j + LMN_VL <= C ? lmn_vload(x + j) : lmn_vload_part(x + j, C - j, mu)) - mu;
      acc += d * d;
    }
    float var = lmn_vhsum(acc) / (float)C;
    float s = 1.0f / sqrtf(var + eps);
    mean[n] = mu;
    rstd[n] = s;
    for (int j = 0; j < C; j += LMN_VL) {
      lmn_vf o = (ld(x, j, C) - mu) * s * ld(w, j, C);
      if (b) o += ld(b, j, C);
      st(y + off, j, C, o);
    }
  }
}

/* g = dL/dx of the norm for one row of m columns starting at column j0 (whole row: j0 = 0, m = C), given
 * the row's coefficients mg = mean(dy*w), mgx = mean(dy*w*xhat); dw, db accumulated. */
LMN_CLONES
static void ln_row_grad(float *restrict g, float *dw, float *db, const float *dy, const float *x,
                        const float *w, float mu, float s, float mg, float mgx, int m) {
  for (int j = 0; j < m; j += LMN_VL) {
    lmn_vf dyv = ld(dy, j, m), xh = (ld(x, j, m) - mu) * s;
    if (g) st(g, j, m, (dyv * ld(w, j, m) - mg - xh * mgx) * s);
    if (dw) st(dw, j, m, ld(dw, j, m) + dyv * xh);
    if (db) st(db, j, m, ld(db, j, m) + dyv);
  }
}

LMN_CLONES
static void ln_row_coef(const float *dy, const float *x, const float *w, float mu, float s, int C, float *mg,
                        float *mgx) {
  lmn_vf a = {0}, b = {0};
  for (int j = 0; j < C; j += LMN_VL) {
    lmn_vf g = ld(dy, j, C) * ld(w, j, C);
    a += g;
    b += g * (ld(x, j, C) - mu); /* tail lanes: g = 0 there */
  }
  *mg = lmn_vhsum(a) / (float)C;
  *mgx = lmn_vhsum(b) * s / (float)C;
}

void lmn_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                           int N, int C, float eps) {
  ln_forward(NULL, y, mean, rstd, &x, 1, 1.0f, w, b, N, C, eps);
}

LMN_CLONES
void lmn_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                            const float *mean, const float *rstd, int N, int C) {
  if (!dx && !dw && !db) return;
  for (int n = 0; n < N; n++) {
    size_t off = (size_t)n * C;
    float mu = mean[n], s = rstd[n], mg = 0.0f, mgx = 0.0f;
    if (dx) ln_row_coef(dy + off, x + off, w, mu, s, C, &mg, &mgx);
    if (!dx) {
      ln_row_grad(NULL, dw, db, dy + off, x + off, w, mu, s, mg, mgx, C);
      continue;
    }
    float *d = dx + off;
    for (int j = 0; j < C; j += LMN_VL) {
      lmn_vf dyv = ld(dy + off, j, C), xh = (ld(x + off, j, C) - mu) * s;
      st(d, j, C, ld(d, j, C) + (dyv * ld(w, j, C) - mg - xh * mgx) * s);
      if (dw) st(dw, j, C, ld(dw, j, C) + dyv * xh);
      if (db) st(db, j, C, ld(db, j, C) + dyv);
    }
  }
}

void lmn_add_layernorm_forward(float *r, float *y, float *mean, float *rstd, const float *const *xs, int k,
                               float scale, const float *w, const float *b, int N, int C, float eps) {
  ln_forward(r, y, mean, rstd, xs, k, scale, w, b, N, C, eps);
}

LMN_CLONES
void lmn_add_layernorm_backward(float *const *dxs, float *dr, float *dw, float *db, const float *dy,
                                const float *r, const float *w, const float *mean, const float *rstd, int k,
                                float scale, int N, int C) {
  float buf[LMN_NORM_ROWBUF];
  for (int n = 0; n < N; n++) {
    size_t off = (size_t)n * C;
    float mu = mean[n], s = rstd[n], mg, mgx;
    ln_row_coef(dy + off, r + off, w, mu, s, C, &mg, &mgx);
    for (int j0 = 0; j0 < C; j0 += LMN_NORM_ROWBUF) {
      int m = C - j0 < LMN_NORM_ROWBUF ? C - j0 : LMN_NORM_ROWBUF;
      ln_row_grad(buf, dw ? dw + j0 : NULL, db ? db + j0 : NULL, dy + off + j0, r + off + j0, w + j0, mu, s,
                  mg, mgx, m);
      scatter_row(dxs, dr, k, scale, off + (size_t)j0, m, buf);
    }
  }
}

void lmn_residual_layernorm_forward(float *r, float *y, float *mean, float *rstd, const float *x,
                                    const float *a, const float *w, const float *b, int N, int C, float eps) {
  const float *xs[2] = {x, a};
  ln_forward(r, y, mean, rstd, xs, 2, 1.0f, w, b, N, C, eps);
}

void lmn_residual_layernorm_backward(float *dx, float *da, float *dr, float *dw, float *db, const float *dy,
                                     const float *r, const float *w, const float *mean, const float *rstd,
                                     int N, int C) {
  float *dxs[2] = {dx, da};
  lmn_add_layernorm_backward(dxs, dr, dw, db, dy, r, w, mean, rstd, 2, 1.0f, N, C);
}
