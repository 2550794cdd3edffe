/* test_k_dense.c: finite-difference checks of the row-wise kernels: linear (k_linear.c), RMSNorm and
 * LayerNorm with their fused residual-add / aggregation variants (k_norm.c), SwiGLU, GELU and bias+GELU
 * (k_act.c). Each is compared with a plain double-precision reference written here; tolerances in
 * test_k_common.h. */
#include "test_k_common.h"

/* ============================================ linear ============================================ */

typedef struct lin_ref {
  int N, in, out;
  double *x, *W, *b, *R, *y;
} lin_ref;

static void lin_forward_ref(lin_ref *c) {
  for (int n = 0; n < c->N; n++)
    for (int o = 0; o < c->out; o++) {
      double s = c->b ? c->b[o] : 0.0;
      for (int i = 0; i < c->in; i++) s += c->x[n * c->in + i] * c->W[o * c->in + i];
      c->y[n * c->out + o] = s;
    }
}
static double lin_obj(void *p) {
  lin_ref *c = p;
  lin_forward_ref(c);
  return dot_d(c->y, c->R, (size_t)c->N * c->out);
}

static void linear_case(int with_bias) {
  rng r = {11 + with_bias};
  int N = 7, in = 13, out = 5;
  size_t nx = (size_t)N * in, nw = (size_t)out * in, ny = (size_t)N * out;
  float *x = frand(&r, nx, -1, 1), *W = frand(&r, nw, -1, 1), *b = with_bias ? frand(&r, out, -1, 1) : NULL;
  float *R = frand(&r, ny, -1, 1), *y = fzeros(ny);
  lin_ref c = {N, in, out, dfrom(x, nx), dfrom(W, nw), b ? dfrom(b, out) : NULL, dfrom(R, ny), dzeros(ny)};
  const char *tag = with_bias ? "linear+bias" : "linear";
  char name[96];

  lmn_linear_forward(y, x, W, b, N, in, out);
  lin_forward_ref(&c);
  snprintf(name, sizeof name, "%s forward y", tag);
  CHECK_FWD(name, y, c.y, ny);

  float *dx = fzeros(nx), *dW = fzeros(nw), *db = fzeros(out);
  lmn_linear_backward(dx, dW, b ? db : NULL, R, x, W, N, in, out);
  double *gx = dzeros(nx), *gW = dzeros(nw), *gb = dzeros(out);
  fd_grad(c.x, nx, lin_obj, &c, gx);
  fd_grad(c.W, nw, lin_obj, &c, gW);
  snprintf(name, sizeof name, "%s backward dx vs fd", tag);
  CHECK_BWD(name, dx, gx, nx);
  snprintf(name, sizeof name, "%s backward dW vs fd", tag);
  CHECK_BWD(name, dW, gW, nw);
  if (b) {
    fd_grad(c.b, out, lin_obj, &c, gb);
    CHECK_BWD("linear+bias backward db vs fd", db, gb, out);
  }

  /* frozen: dW = db = NULL leaves dx identical */
  float *dx2 = fzeros(nx);
  lmn_linear_backward(dx2, NULL, NULL, R, x, W, N, in, out);
  snprintf(name, sizeof name, "%s frozen (dW=db=NULL): dx", tag);
  CHECK_SAME(name, dx2, dx, nx);
  /* dx = NULL leaves dW identical */
  float *dW2 = fzeros(nw);
  lmn_linear_backward(NULL, dW2, NULL, R, x, W, N, in, out);
  snprintf(name, sizeof name, "%s dx=NULL: dW", tag);
  CHECK_SAME(name, dW2, dW, nw);

  /* accumulation */
  float *dx1 = fcopy(dx, nx), *dW1 = fcopy(dW, nw), *db1 = fcopy(db, out);
  lmn_linear_backward(dx, dW, b ? db : NULL, R, x, W, N, in, out);
  snprintf(name, sizeof name, "%s accumulate dx,dW,db", tag);
  CHECK_ERR(name, fmax(doubled_err(dx, dx1, nx), fmax(doubled_err(dW, dW1, nw), doubled_err(db, db1, out))),
            ACC_TOL);
  t_free_all();
}

static void test_linear(void) {
  linear_case(1);
  linear_case(0);
}

/* ============================================ norms ============================================ */

typedef struct norm_ref {
  int layer; /* 0 = RMSNorm, 1 = LayerNorm */
  int N, C, k;
  double scale, eps;
  double *xs[4], *w, *b;
  double *R1, *R2; /* L = sum(y R1) + sum(r R2) (R2 may be NULL) */
  double *r, *y, *mean, *rstd;
} norm_ref;

static void norm_forward_ref(norm_ref *c) {
  int C = c->C;
  for (int n = 0; n < c->N; n++) {
    double *r = c->r + (size_t)n * C, *y = c->y + (size_t)n * C;
    for (int j = 0; j < C; j++) {
      double s = 0.0;
      for (int i = 0; i < c->k; i++) s += c->xs[i][(size_t)n * C + j];
      r[j] = c->scale * s;
    }
    double mu = 0.0, ss = 0.0;
    if (c->layer) {
      for (int j = 0; j < C; j++) mu += r[j];
      mu /= C;
    }
    for (int j = 0; j < C; j++) ss += (r[j] - mu) * (r[j] - mu);
    double rs = 1.0 / sqrt(ss / C + c->eps);
    c->mean[n] = mu;
    c->rstd[n] = rs;
    for (int j = 0; j < C; j++) y[j] = (r[j] - mu) * rs * c->w[j] + (c->b ? c->b[j] : 0.0);
  }
}
static double norm_obj(void *p) {
  norm_ref *c = p;
  norm_forward_ref(c);
  size_t n = (size_t)c->N * c->C;
  return dot_d(c->y, c->R1, n) + (c->R2 ? dot_d(c->r, c->R2, n) : 0.0);
}

static norm_ref norm_setup(rng *r, int layer, int N, int C, int k, double scale, int with_b, int with_r2,
                           float **fxs, float **fw, float **fb, float **fR1, float **fR2) {
  size_t n = (size_t)N * C;
  norm_ref c;
  memset(&c, 0, sizeof c);
  c.layer = layer;
  c.N = N;
  c.C = C;
  c.k = k;
  c.scale = scale;
  c.eps = 1e-5;
  for (int i = 0; i < k; i++) {
    fxs[i] = frand(r, n, -2, 2);
    for (size_t j = 0; j < n; j++) fxs[i][j] += 0.5f; /* a non-zero mean for LayerNorm to remove */
    c.xs[i] = dfrom(fxs[i], n);
  }
  *fw = frand(r, C, 0.5f, 1.5f);
  c.w = dfrom(*fw, C);
  *fb = with_b ? frand(r, C, -1, 1) : NULL;
  c.b = with_b ? dfrom(*fb, C) : NULL;
  *fR1 = frand(r, n, -1, 1);
  c.R1 = dfrom(*fR1, n);
  *fR2 = with_r2 ? frand(r, n, -1, 1) : NULL;
  c.R2 = with_r2 ? dfrom(*fR2, n) : NULL;
  c.r = dzeros(n);
  c.y = dzeros(n);
  c.mean = dzeros(N);
  c.rstd = dzeros(N);
  return c;
}

/* plain norm (k = 1, no r) */
static void plain_norm_case(int layer, int C) {
  rng r = {100 + layer + C};
  int N = 5;
  size_t n = (size_t)N * C;
  float *xs[1], *w, *b, *R1, *R2;
  norm_ref c = norm_setup(&r, layer, N, C, 1, 1.0, layer, 0, xs, &w, &b, &R1, &R2);
  float *y = fzeros(n), *mean = fzeros(N), *rstd = fzeros(N);
  char name[96];
  const char *tag = layer ? "layernorm" : "rmsnorm";
  if (layer)
    lmn_layernorm_forward(y, mean, rstd, xs[0], w, b, N, C, 1e-5f);
  else
    lmn_rmsnorm_forward(y, rstd, xs[0], w, N, C, 1e-5f);
  norm_forward_ref(&c);
  snprintf(name, sizeof name, "%s C=%d forward y", tag, C);
  CHECK_FWD(name, y, c.y, n);

  float *dx = fzeros(n), *dw = fzeros(C), *db = fzeros(C);
  if (layer)
    lmn_layernorm_backward(dx, dw, db, R1, xs[0], w, mean, rstd, N, C);
  else
    lmn_rmsnorm_backward(dx, dw, R1, xs[0], w, rstd, N, C);
  double *gx = dzeros(n), *gw = dzeros(C), *gb = dzeros(C);
  fd_grad(c.xs[0], n, norm_obj, &c, gx);
  fd_grad(c.w, C, norm_obj, &c, gw);
  snprintf(name, sizeof name, "%s C=%d backward dx vs fd", tag, C);
  CHECK_BWD(name, dx, gx, n);
  snprintf(name, sizeof name, "%s C=%d backward dw vs fd", tag, C);
  CHECK_BWD(name, dw, gw, C);
  if (layer) {
    fd_grad(c.b, C, norm_obj, &c, gb);
    snprintf(name, sizeof name, "%s C=%d backward db vs fd", tag, C);
    CHECK_BWD(name, db, gb, C);
  }
  /* frozen weights: dx identical; dx = NULL: dw (and db) identical */
  float *dx2 = fzeros(n), *dw2 = fzeros(C), *db2 = fzeros(C);
  if (layer) {
    lmn_layernorm_backward(dx2, NULL, NULL, R1, xs[0], w, mean, rstd, N, C);
    lmn_layernorm_backward(NULL, dw2, db2, R1, xs[0], w, mean, rstd, N, C);
  } else {
    lmn_rmsnorm_backward(dx2, NULL, R1, xs[0], w, rstd, N, C);
    lmn_rmsnorm_backward(NULL, dw2, R1, xs[0], w, rstd, N, C);
  }
  snprintf(name, sizeof name, "%s frozen (dw=NULL): dx", tag);
  CHECK_SAME(name, dx2, dx, n);
  snprintf(name, sizeof name, "%s dx=NULL: dw", tag);
  CHECK_SAME(name, dw2, dw, (size_t)C);
  if (layer) CHECK_SAME("layernorm dx=NULL: db", db2, db, (size_t)C);
  /* accumulation */
  float *dx1 = fcopy(dx, n), *dw1 = fcopy(dw, C), *db1 = fcopy(db, C);
  if (layer)
    lmn_layernorm_backward(dx, dw, db, R1, xs[0], w, mean, rstd, N, C);
  else
    lmn_rmsnorm_backward(dx, dw, R1, xs[0], w, rstd, N, C);
  snprintf(name, sizeof name, "%s accumulate dx,dw(,db)", tag);
  CHECK_ERR(name, fmax(doubled_err(dx, dx1, n), fmax(doubled_err(dw, dw1, C), doubled_err(db, db1, C))),
            ACC_TOL);
  if (layer) { /* no bias: forward equals the reference with b = 0 */
    c.b = NULL;
    lmn_layernorm_forward(y, mean, rstd, xs[0], w, NULL, N, C, 1e-5f);
    norm_forward_ref(&c);
    CHECK_FWD("layernorm b=NULL forward y", y, c.y, n);
  }
  t_free_all();
}

static void add_forward(int layer, float *r, float *y, float *mean, float *rstd, float **xs, int k,
                        float scale, const float *w, const float *b, int N, int C) {
  if (layer)
    lmn_add_layernorm_forward(r, y, mean, rstd, (const float *const *)xs, k, scale, w, b, N, C, 1e-5f);
  else
    lmn_add_rmsnorm_forward(r, y, rstd, (const float *const *)xs, k, scale, w, N, C, 1e-5f);
}
static void add_backward(int layer, float **dxs, float *dr, float *dw, float *db, const float *dy,
                         const float *r, const float *w, const float *mean, const float *rstd, int k,
                         float scale, int N, int C) {
  if (layer)
    lmn_add_layernorm_backward(dxs, dr, dw, db, dy, r, w, mean, rstd, k, scale, N, C);
  else
    lmn_add_rmsnorm_backward(dxs, dr, dw, dy, r, w, rstd, k, scale, N, C);
}

/* fused aggregation of k inputs (scale) + norm, with a gradient dr arriving from r's other consumers */
static void add_norm_case(int layer, int N, int C, int k, float scale) {
  rng r = {200 + layer * 7 + C + k};
  size_t n = (size_t)N * C;
  float *xs[4], *w, *b, *R1, *R2;
  norm_ref c = norm_setup(&r, layer, N, C, k, scale, layer, 1, xs, &w, &b, &R1, &R2);
  float *ro = fzeros(n), *y = fzeros(n), *mean = fzeros(N), *rstd = fzeros(N);
  char name[112], tag[48];
  snprintf(tag, sizeof tag, "add%d_%s C=%d", k, layer ? "layernorm" : "rmsnorm", C);
  add_forward(layer, ro, y, mean, rstd, xs, k, scale, w, b, N, C);
  norm_forward_ref(&c);
  snprintf(name, sizeof name, "%s forward r", tag);
  CHECK_FWD(name, ro, c.r, n);
  snprintf(name, sizeof name, "%s forward y", tag);
  CHECK_FWD(name, y, c.y, n);

  float *dxs[4], *dr = fcopy(R2, n), *dw = fzeros(C), *db = fzeros(C);
  for (int i = 0; i < k; i++) dxs[i] = fzeros(n);
  add_backward(layer, dxs, dr, dw, db, R1, ro, w, mean, rstd, k, scale, N, C);
  double *g = dzeros(n), *gdr = dzeros(n), *gw = dzeros(C);
  double worst = 0.0;
  for (int i = 0; i < k; i++) {
    fd_grad(c.xs[i], n, norm_obj, &c, g);
    worst = fmax(worst, max_err(dxs[i], g, n, 1.0));
  }
  snprintf(name, sizeof name, "%s backward dxs[0..%d) vs fd", tag, k);
  CHECK_ERR(name, worst, BWD_TOL);
  for (size_t j = 0; j < n; j++) gdr[j] = g[j] / scale; /* dL/dr = dL/dx_i / scale */
  snprintf(name, sizeof name, "%s backward dr (total dL/dr) vs fd", tag);
  CHECK_BWD(name, dr, gdr, n);
  fd_grad(c.w, C, norm_obj, &c, gw);
  snprintf(name, sizeof name, "%s backward dw vs fd", tag);
  CHECK_BWD(name, dw, gw, C);
  if (layer) {
    fd_grad(c.b, C, norm_obj, &c, gw);
    snprintf(name, sizeof name, "%s backward db vs fd", tag);
    CHECK_BWD(name, db, gw, C);
  }

  /* in-place style: dxs = NULL, frozen weights; dr alone carries the gradient, identically */
  float *dr2 = fcopy(R2, n);
  add_backward(layer, NULL, dr2, NULL, NULL, R1, ro, w, mean, rstd, k, scale, N, C);
  snprintf(name, sizeof name, "%s dxs=NULL,dw=NULL: dr", tag);
  CHECK_SAME(name, dr2, dr, n);

  /* dr = NULL (no other consumer): dxs[i] = scale * norm gradient = (earlier dxs[i]) - scale * R2 */
  float *dxs3[4];
  for (int i = 0; i < k; i++) dxs3[i] = fzeros(n);
  add_backward(layer, dxs3, NULL, NULL, NULL, R1, ro, w, mean, rstd, k, scale, N, C);
  double *want = dzeros(n);
  for (size_t j = 0; j < n; j++) want[j] = (double)dxs[0][j] - (double)scale * R2[j];
  snprintf(name, sizeof name, "%s dr=NULL: dxs", tag);
  CHECK_FWD(name, dxs3[k - 1], want, n);

  /* accumulation (dr = NULL, since dr is in/out rather than accumulated) */
  float *d1 = fcopy(dxs3[0], n);
  float *dw3 = fzeros(C), *db3 = fzeros(C);
  add_backward(layer, dxs3, NULL, dw3, db3, R1, ro, w, mean, rstd, k, scale, N, C);
  float *dw1 = fcopy(dw3, C), *db1 = fcopy(db3, C);
  float *dxs4[4] = {dxs3[0], NULL, NULL, NULL}; /* only input 0 this time */
  add_backward(layer, dxs4, NULL, dw3, db3, R1, ro, w, mean, rstd, k, scale, N, C);
  for (size_t j = 0; j < n; j++) d1[j] *= 1.5f; /* 3 calls into dxs3[0]: (1 + 2) / 2 of the doubled value */
  snprintf(name, sizeof name, "%s accumulate dxs,dw(,db)", tag);
  CHECK_ERR(name, fmax(doubled_err(dxs3[0], d1, n), fmax(doubled_err(dw3, dw1, C), doubled_err(db3, db1, C))),
            ACC_TOL);
  t_free_all();
}

/* the residual wrappers are the k = 2, scale = 1 aggregation, bit for bit */
static void residual_wrapper_case(int layer) {
  rng r = {300 + layer};
  int N = 3, C = 21;
  size_t n = (size_t)N * C;
  float *x = frand(&r, n, -2, 2), *a = frand(&r, n, -2, 2), *w = frand(&r, C, 0.5f, 1.5f);
  float *b = frand(&r, C, -1, 1), *dy = frand(&r, n, -1, 1), *R2 = frand(&r, n, -1, 1);
  float *r1 = fzeros(n), *y1 = fzeros(n), *m1 = fzeros(N), *s1 = fzeros(N);
  float *r2 = fzeros(n), *y2 = fzeros(n), *m2 = fzeros(N), *s2 = fzeros(N);
  float *xs[2] = {x, a};
  const char *tag = layer ? "residual_layernorm" : "residual_rmsnorm";
  char name[96];
  if (layer)
    lmn_residual_layernorm_forward(r1, y1, m1, s1, x, a, w, b, N, C, 1e-5f);
  else
    lmn_residual_rmsnorm_forward(r1, y1, s1, x, a, w, N, C, 1e-5f);
  add_forward(layer, r2, y2, m2, s2, xs, 2, 1.0f, w, b, N, C);
  snprintf(name, sizeof name, "%s forward == add2 (r, y)", tag);
  CU_ASSERT(memcmp(r1, r2, n * sizeof *r1) == 0);
  CHECK_SAME(name, y1, y2, n);
  float *dx1 = fzeros(n), *da1 = fzeros(n), *dr1 = fcopy(R2, n), *dw1 = fzeros(C), *db1 = fzeros(C);
  float *dx2 = fzeros(n), *da2 = fzeros(n), *dr2 = fcopy(R2, n), *dw2 = fzeros(C), *db2 = fzeros(C);
  float *dxs[2] = {dx2, da2};
  if (layer)
    lmn_residual_layernorm_backward(dx1, da1, dr1, dw1, db1, dy, r1, w, m1, s1, N, C);
  else
    lmn_residual_rmsnorm_backward(dx1, da1, dr1, dw1, dy, r1, w, s1, N, C);
  add_backward(layer, dxs, dr2, dw2, db2, dy, r2, w, m2, s2, 2, 1.0f, N, C);
  snprintf(name, sizeof name, "%s backward == add2 (dx, da, dr, dw)", tag);
  CU_ASSERT(memcmp(dx1, dx2, n * 4) == 0 && memcmp(da1, da2, n * 4) == 0 && memcmp(dw1, dw2, C * 4) == 0);
  CHECK_SAME(name, dr1, dr2, n);
  t_free_all();
}

static void test_rmsnorm(void) {
  plain_norm_case(0, 19);
  plain_norm_case(0, 64);
}
static void test_layernorm(void) {
  plain_norm_case(1, 19);
  plain_norm_case(1, 64);
}
static void test_add_rmsnorm(void) {
  add_norm_case(0, 4, 19, 3, 1.0f / 3.0f); /* mean aggregation of 3 edges */
  add_norm_case(0, 3, 13, 2, 1.0f);        /* residual add */
  add_norm_case(0, 2, 1100, 2, 0.5f);      /* rows wider than the internal row buffer */
  residual_wrapper_case(0);
}
static void test_add_layernorm(void) {
  add_norm_case(1, 4, 19, 3, 1.0f); /* sum aggregation of 3 edges */
  add_norm_case(1, 3, 13, 2, 1.0f);
  add_norm_case(1, 2, 1100, 2, 0.5f);
  residual_wrapper_case(1);
}

/* ========================================== activations ========================================== */

static double gelu_d(double x) {
  return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
static double silu_d(double x) { return x / (1.0 + exp(-x)); }

typedef struct act_ref {
  int kind; /* 0 swiglu, 1 gelu, 2 bias+gelu */
  int N, C;
  double *a, *b, *R, *y; /* swiglu: a = gate, b = up; gelu: a = x; bias+gelu: a = h (no bias), b = bias */
} act_ref;

static void act_forward_ref(act_ref *c) {
  for (int n = 0; n < c->N; n++)
    for (int j = 0; j < c->C; j++) {
      size_t i = (size_t)n * c->C + j;
      c->y[i] = c->kind == 0   ? silu_d(c->a[i]) * c->b[i]
                : c->kind == 1 ? gelu_d(c->a[i])
                               : gelu_d(c->a[i] + c->b[j]);
    }
}
static double act_obj(void *p) {
  act_ref *c = p;
  act_forward_ref(c);
  return dot_d(c->y, c->R, (size_t)c->N * c->C);
}

static void test_swiglu(void) {
  rng r = {400};
  int N = 3, C = 23;
  size_t n = (size_t)N * C;
  float *gate = frand(&r, n, -9, 9), *up = frand(&r, n, -2, 2), *R = frand(&r, n, -1, 1), *out = fzeros(n);
  act_ref c = {0, N, C, dfrom(gate, n), dfrom(up, n), dfrom(R, n), dzeros(n)};
  lmn_swiglu_forward(out, gate, up, n);
  act_forward_ref(&c);
  CHECK_FWD("swiglu forward", out, c.y, n);
  float *dg = fzeros(n), *du = fzeros(n);
  lmn_swiglu_backward(dg, du, R, gate, up, n);
  double *g = dzeros(n);
  fd_grad(c.a, n, act_obj, &c, g);
  CHECK_BWD("swiglu backward dgate vs fd", dg, g, n);
  fd_grad(c.b, n, act_obj, &c, g);
  CHECK_BWD("swiglu backward dup vs fd", du, g, n);
  float *dg2 = fzeros(n);
  lmn_swiglu_backward(dg2, NULL, R, gate, up, n);
  CHECK_SAME("swiglu dup=NULL: dgate", dg2, dg, n);
  float *dg1 = fcopy(dg, n), *du1 = fcopy(du, n);
  lmn_swiglu_backward(dg, du, R, gate, up, n);
  CHECK_ERR("swiglu accumulate dgate,dup", fmax(doubled_err(dg, dg1, n), doubled_err(du, du1, n)), ACC_TOL);
  /* out may alias gate */
  float *g2 = fcopy(gate, n);
  lmn_swiglu_forward(g2, g2, up, n);
  CHECK_SAME("swiglu forward in place (out == gate)", g2, out, n);
  t_free_all();
}

static void test_gelu(void) {
  rng r = {500};
  int N = 1, C = 27;
  size_t n = (size_t)C;
  float *x = frand(&r, n, -8, 8), *R = frand(&r, n, -1, 1), *y = fzeros(n);
  x[0] = 0.0f;
  x[1] = -1e-3f;
  act_ref c = {1, N, C, dfrom(x, n), NULL, dfrom(R, n), dzeros(n)};
  lmn_gelu_forward(y, x, n);
  act_forward_ref(&c);
  CHECK_FWD("gelu forward", y, c.y, n);
  float *x2 = fcopy(x, n);
  lmn_gelu_forward(x2, x2, n);
  CHECK_SAME("gelu forward in place (y == x)", x2, y, n);
  float *dx = fzeros(n);
  lmn_gelu_backward(dx, R, x, n);
  double *g = dzeros(n);
  fd_grad(c.a, n, act_obj, &c, g);
  CHECK_BWD("gelu backward dx vs fd", dx, g, n);
  float *d = fcopy(R, n);
  lmn_gelu_backward_inplace(d, x, n);
  CHECK_SAME("gelu backward in place == accumulate into zeros", d, dx, n);
  float *dx1 = fcopy(dx, n);
  lmn_gelu_backward(dx, R, x, n);
  CHECK_DOUBLED("gelu accumulate dx", dx, dx1, n);
  t_free_all();
}

static void test_bias_gelu(void) {
  rng r = {600};
  int N = 5, C = 11;
  size_t n = (size_t)N * C;
  float *h0 = frand(&r, n, -5, 5), *b = frand(&r, C, -1, 1), *R = frand(&r, n, -1, 1), *y = fzeros(n);
  float *h = fcopy(h0, n);
  act_ref c = {2, N, C, dfrom(h0, n), dfrom(b, C), dfrom(R, n), dzeros(n)};
  lmn_bias_gelu_forward(y, h, b, N, C);
  act_forward_ref(&c);
  CHECK_FWD("bias_gelu forward y", y, c.y, n);
  double *hb = dzeros(n);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < C; j++) hb[(size_t)i * C + j] = (double)h0[(size_t)i * C + j] + b[j];
  CHECK_FWD("bias_gelu forward h (pre-activation kept)", h, hb, n);
  float *dh = fzeros(n), *db = fzeros(C);
  lmn_bias_gelu_backward(dh, db, R, h, N, C);
  double *g = dzeros(n), *gb = dzeros(C);
  fd_grad(c.a, n, act_obj, &c, g);
  fd_grad(c.b, C, act_obj, &c, gb);
  CHECK_BWD("bias_gelu backward dh vs fd", dh, g, n);
  CHECK_BWD("bias_gelu backward db vs fd", db, gb, C);
  float *dh2 = fzeros(n);
  lmn_bias_gelu_backward(dh2, NULL, R, h, N, C);
  CHECK_SAME("bias_gelu frozen (db=NULL): dh", dh2, dh, n);
  float *dh1 = fcopy(dh, n), *db1 = fcopy(db, C);
  lmn_bias_gelu_backward(dh, db, R, h, N, C);
  CHECK_ERR("bias_gelu accumulate dh,db", fmax(doubled_err(dh, dh1, n), doubled_err(db, db1, C)), ACC_TOL);
  t_free_all();
}

static CU_TestInfo tests[] = {
    {"linear: forward, fd backward, frozen, accumulate", test_linear},
    {"rmsnorm: forward, fd backward, frozen, accumulate", test_rmsnorm},
    {"layernorm: forward, fd backward, frozen, accumulate", test_layernorm},
    {"add/residual + rmsnorm: aggregation fused into the norm", test_add_rmsnorm},
    {"add/residual + layernorm: aggregation fused into the norm", test_add_layernorm},
    {"swiglu: forward, fd backward, frozen, accumulate", test_swiglu},
    {"gelu: forward, fd backward, in place, accumulate", test_gelu},
    {"bias+gelu epilogue: forward, fd backward, frozen, accumulate", test_bias_gelu},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("kernels: dense", tests)
