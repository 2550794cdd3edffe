/* test_k_train.c: checks of the kernels at the two ends of a training step: token/position embedding
 * (k_embed.c), softmax + cross-entropy with smoothing, ignore index and weight (k_loss.c), AdamW and the
 * gradient-norm helpers (k_adamw.c). Tolerances in test_k_common.h. */
#include "test_k_common.h"

/* =========================================== embedding =========================================== */

typedef struct emb_ref {
  int B, T, C, V, pos0;
  const int *tok;
  double *wte, *wpe, *R, *out;
} emb_ref;
static double emb_obj(void *p) {
  emb_ref *c = p;
  for (int b = 0; b < c->B; b++)
    for (int t = 0; t < c->T; t++) {
      size_t n = (size_t)b * c->T + t;
      int tok = c->tok[n];
      for (int j = 0; j < c->C; j++)
        c->out[n * c->C + j] = (tok >= 0 && tok < c->V ? c->wte[(size_t)tok * c->C + j] : 0.0) +
                               (c->wpe ? c->wpe[(size_t)(c->pos0 + t) * c->C + j] : 0.0);
    }
  return dot_d(c->out, c->R, (size_t)c->B * c->T * c->C);
}

static void embed_case(int with_pos) {
  rng r = {900 + with_pos};
  int B = 2, T = 5, C = 7, V = 11, pos0 = with_pos ? 2 : 0, N = B * T;
  int tok[10] = {3, 1, 3, 10, 0, 3, 11, 5, 1, -2}; /* repeats (scatter-add), two out of range */
  size_t nte = (size_t)V * C, npe = (size_t)(pos0 + T) * C, no = (size_t)N * C;
  float *wte = frand(&r, nte, -1, 1), *wpe = with_pos ? frand(&r, npe, -1, 1) : NULL,
        *R = frand(&r, no, -1, 1);
  float *out = fzeros(no);
  emb_ref c = {B,         T, C, V, pos0, tok, dfrom(wte, nte), wpe ? dfrom(wpe, npe) : NULL, dfrom(R, no),
               dzeros(no)};
  const char *tag = with_pos ? "embed+positions" : "embed";
  char name[96];
  int bad = lmn_embed_forward(out, tok, wte, wpe, B, T, C, V, pos0);
  CU_ASSERT_EQUAL(bad, 2);
  emb_obj(&c);
  snprintf(name, sizeof name, "%s forward (2 bad tokens counted)", tag);
  CHECK_FWD(name, out, c.out, no);
  float *dwte = fzeros(nte), *dwpe = fzeros(npe);
  lmn_embed_backward(dwte, wpe ? dwpe : NULL, R, tok, B, T, C, V, pos0);
  double *g = dzeros(nte);
  fd_grad(c.wte, nte, emb_obj, &c, g);
  snprintf(name, sizeof name, "%s backward dwte (scatter-add) vs fd", tag);
  CHECK_BWD(name, dwte, g, nte);
  if (wpe) {
    double *gp = dzeros(npe);
    fd_grad(c.wpe, npe, emb_obj, &c, gp);
    CHECK_BWD("embed+positions backward dwpe vs fd", dwpe, gp, npe);
    float *dwpe2 = fzeros(npe);
    lmn_embed_backward(NULL, dwpe2, R, tok, B, T, C, V, pos0);
    CHECK_SAME("embed+positions frozen (dwte=NULL): dwpe", dwpe2, dwpe, npe);
  }
  float *dte1 = fcopy(dwte, nte), *dpe1 = fcopy(dwpe, npe);
  lmn_embed_backward(dwte, wpe ? dwpe : NULL, R, tok, B, T, C, V, pos0);
  snprintf(name, sizeof name, "%s accumulate dwte(,dwpe)", tag);
  CHECK_ERR(name, fmax(doubled_err(dwte, dte1, nte), doubled_err(dwpe, dpe1, npe)), ACC_TOL);
  t_free_all();
}

static void test_embed(void) {
  embed_case(0);
  embed_case(1);
}

/* ========================================= cross-entropy ========================================= */

typedef struct xent_ref {
  int N, V;
  const int *tg;
  double eps, weight;
  double *x, *row; /* row: per-row loss out */
  int valid;
} xent_ref;

/* mean loss over valid rows; row losses to c->row */
static double xent_mean_ref(xent_ref *c) {
  double sum = 0.0;
  c->valid = 0;
  for (int n = 0; n < c->N; n++) {
    c->row[n] = 0.0;
    if (c->tg[n] < 0) continue;
    const double *x = c->x + (size_t)n * c->V;
    double m = -INFINITY, z = 0.0, sx = 0.0;
    for (int j = 0; j < c->V; j++) m = fmax(m, x[j]);
    for (int j = 0; j < c->V; j++) z += exp(x[j] - m), sx += x[j];
    double lse = m + log(z);
    c->row[n] = (1.0 - c->eps) * (lse - x[c->tg[n]]) + c->eps * (lse - sx / c->V);
    sum += c->row[n];
    c->valid++;
  }
  return c->valid ? sum / c->valid : 0.0;
}
static double xent_obj(void *p) {
  xent_ref *c = p;
  return c->weight * xent_mean_ref(c);
}

static void xent_case(const char *tag, int N, int V, const int *tg, float eps, float weight, float spread,
                      float trend) {
  rng r = {1000 + V + (int)(eps * 100)};
  size_t n = (size_t)N * V;
  float *x = frand(&r, n, -spread, spread);
  for (int i = 0; i < N; i++) /* a rising trend: the running max grows block after block */
    for (int j = 0; j < V; j++) x[(size_t)i * V + j] += trend * (float)j / (float)V;
  xent_ref c = {N, V, tg, eps, weight, dfrom(x, n), dzeros(N), 0};
  char name[128];
  float *d = fcopy(x, n), *row = fzeros(N);
  int valid = -1;
  float loss = lmn_xent_forward_backward(d, tg, N, V, eps, weight, row, &valid, NULL);
  double want = xent_mean_ref(&c);
  CU_ASSERT_EQUAL(valid, c.valid);
  snprintf(name, sizeof name, "%s mean loss", tag);
  CHECK_ERR(name, fabs(loss - want) / fmax(1.0, fabs(want)), FWD_TOL);
  snprintf(name, sizeof name, "%s row losses", tag);
  CHECK_FWD(name, row, c.row, (size_t)N);
  /* gradient of weight * mean loss; compared per unit of weight / n_valid (entries are p - q, order 1) */
  double *g = dzeros(n);
  fd_grad(c.x, n, xent_obj, &c, g);
  double unit = c.valid ? c.valid / weight : 1.0;
  float *ds = fcopy(d, n);
  for (size_t i = 0; i < n; i++) ds[i] *= (float)unit, g[i] *= unit;
  snprintf(name, sizeof name, "%s dlogits (in place) vs fd", tag);
  CHECK_BWD(name, ds, g, n);
  int zero = 1;
  for (int i = 0; i < N; i++)
    if (tg[i] < 0)
      for (int j = 0; j < V; j++) zero &= d[(size_t)i * V + j] == 0.0f;
  CU_ASSERT(zero); /* ignored rows get no gradient */
  /* forward-only: same loss and row losses, logits untouched */
  float *row2 = fzeros(N), *x2 = fcopy(x, n);
  float loss2 = lmn_xent_forward(x2, tg, N, V, eps, row2, NULL, NULL);
  CU_ASSERT(loss2 == loss && memcmp(row2, row, N * sizeof(float)) == 0 &&
            memcmp(x2, x, n * sizeof(float)) == 0);
  /* a pool gives the same bits */
  lmn_err err;
  lmn_pool *pool = lmn_pool_create(2, &err);
  float *d3 = fcopy(x, n);
  float loss3 = lmn_xent_forward_backward(d3, tg, N, V, eps, weight, NULL, NULL, pool);
  lmn_pool_destroy(pool);
  snprintf(name, sizeof name, "%s 2 threads == 1 thread (loss, dlogits)", tag);
  CU_ASSERT(loss3 == loss);
  CHECK_SAME(name, d3, d, n);
  t_free_all();
}

static void test_xent(void) {
  int tg[6] = {3, -1, 36, 0, 17, 17};
  xent_case("xent V=37 plain, 1 ignored", 6, 37, tg, 0.0f, 1.0f, 3.0f, 0.0f);
  xent_case("xent V=37 smoothing 0.1, weight 0.7", 6, 37, tg, 0.1f, 0.7f, 3.0f, 0.0f);
  int tg2[3] = {1499, 2, -1};
  xent_case("xent V=1500 (3 blocks, rising max) smoothing 0.1, w 2", 3, 1500, tg2, 0.1f, 2.0f, 4.0f, 30.0f);
}

static void test_xent_edge_cases(void) {
  rng r = {1100};
  int N = 3, V = 9;
  float *x = frand(&r, (size_t)N * V, -1, 1), *row = fzeros(N);
  int none[3] = {-1, -1, -1};
  int valid = -1;
  float loss = lmn_xent_forward_backward(x, none, N, V, 0.1f, 1.0f, row, &valid, NULL);
  int zero = 1;
  for (int i = 0; i < N * V; i++) zero &= x[i] == 0.0f;
  CU_ASSERT(loss == 0.0f && valid == 0 && zero && row[0] == 0.0f);
  int badt[3] = {1, 9, 2}; /* target == V: a NaN loss, not a silent read past the row */
  float *y = frand(&r, (size_t)N * V, -1, 1);
  CU_ASSERT(isnan(lmn_xent_forward_backward(y, badt, N, V, 0.0f, 1.0f, NULL, NULL, NULL)));
  /* a vocabulary larger than LOSS_BLOCK * LOSS_MAX_BLOCKS (wider blocks): loss and gradient against the
   * closed form g * (p - eps / V - (1 - eps) onehot) in double (finite differences would take too long) */
  int Vb = 600000, tb = 123457;
  float *xb = frand(&r, (size_t)Vb, -6, 6);
  for (int j = 0; j < Vb; j++) xb[j] += 12.0f * (float)j / (float)Vb;
  double m = -INFINITY, z = 0.0, sx = 0.0;
  for (int j = 0; j < Vb; j++) m = fmax(m, xb[j]);
  for (int j = 0; j < Vb; j++) z += exp(xb[j] - m), sx += xb[j];
  double lse = m + log(z), want = 0.9 * (lse - xb[tb]) + 0.1 * (lse - sx / Vb);
  double *gb = dzeros((size_t)Vb);
  for (int j = 0; j < Vb; j++) gb[j] = 0.5 * (exp(xb[j] - lse) - 0.1 / Vb - (j == tb ? 0.9 : 0.0));
  float lb = lmn_xent_forward_backward(xb, &tb, 1, Vb, 0.1f, 0.5f, NULL, NULL, NULL);
  CHECK_ERR("xent V=600000 (wide blocks) loss", fabs(lb - want) / want, FWD_TOL);
  CHECK_ERR("xent V=600000 (wide blocks) dlogits vs closed form (floor 1e-5)",
            max_err(xb, gb, (size_t)Vb, 1e-5), BWD_TOL);
  /* uniform logits: loss = log V exactly, smoothing or not */
  float *u = fzeros((size_t)N * V);
  int tg[3] = {0, 4, 8};
  float lu = lmn_xent_forward(u, tg, N, V, 0.1f, NULL, NULL, NULL);
  CHECK_ERR("xent uniform logits == log V", fabs(lu - log(9.0)) / log(9.0), FWD_TOL);
  t_free_all();
}

/* ============================================= AdamW ============================================= */

static void test_adamw(void) {
  /* Two steps, lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01. Element 0 by hand:
   *   t=1: g=0.5:  m=0.05, v=0.00025, m^=0.5, v^=0.25, p = 1 - 0.1*(0.5/(0.5+1e-8) + 0.01*1) = 0.899000002
   *   t=2: g=-0.25: m=0.045-0.025=0.02, v=0.00024975+0.0000625=0.00031225, m^=0.02/0.19=0.105263158,
   *        v^=0.00031225/0.001999=0.156203102, sqrt=0.395225382, p = 0.899000002 - 0.1*(0.266337306 +
   *        0.00899000002) = 0.871467299
   * The other elements (the same formulas, computed in double) cover a zero gradient, sign changes and a
   * vector-width tail (6 = one vector of 4 + 2). */
  float p[6] = {1.0f, -2.0f, 0.5f, 0.0f, 3.0f, -0.75f}, m[6] = {0}, v[6] = {0};
  float g1[6] = {0.5f, -0.1f, 0.0f, 2.0f, -4.0f, 0.25f}, g2[6] = {-0.25f, 0.3f, 1.0f, -2.0f, 1.0f, 0.25f};
  double p1[6] = {0.899000002, -1.89800001, 0.4995, -0.0999999995, 3.097, -0.849249996};
  double p2[6] = {0.871467299, -1.94552099, 0.424586819, -0.0946368416, 3.14084982, -0.948400742};
  double m2[6] = {0.02, 0.021, 0.1, -0.02, -0.26, 0.0475};
  double v2[6] = {0.00031225, 9.999e-05, 0.001, 0.007996, 0.016984, 0.0001249375};
  lmn_adamw_update(p, g1, m, v, 6, 0.1, 0.9, 0.999, 1e-8, 0.01, 1, 1.0f);
  CHECK_ERR("adamw step 1 params", max_err(p, p1, 6, 1e-3), 1e-6);
  /* step 2 with the gradient given at twice its size and grad_scale 0.5 (the clipping path) */
  float g2x[6];
  for (int i = 0; i < 6; i++) g2x[i] = 2.0f * g2[i];
  lmn_adamw_update(p, g2x, m, v, 6, 0.1, 0.9, 0.999, 1e-8, 0.01, 2, 0.5f);
  CHECK_ERR("adamw step 2 params", max_err(p, p2, 6, 1e-3), 1e-6);
  CHECK_ERR("adamw step 2 first moment", max_err(m, m2, 6, 1e-3), 1e-6);
  CHECK_ERR("adamw step 2 second moment", max_err(v, v2, 6, 1e-6), 1e-6);
}

static void test_grad_norm(void) {
  float g[11];
  double want = 0.0;
  for (int i = 0; i < 11; i++) g[i] = (float)(i - 5) * 0.5f, want += (double)g[i] * g[i];
  CU_ASSERT_DOUBLE_EQUAL(lmn_sumsq(g, 11), want, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(lmn_sumsq(g, 0), 0.0, 0.0);
  CU_ASSERT_DOUBLE_EQUAL(lmn_clip_scale(25.0, 1.0f), 1.0 / (5.0 + 1e-6), 1e-7);
  CU_ASSERT_EQUAL(lmn_clip_scale(25.0, 10.0f), 1.0f);
  CU_ASSERT_EQUAL(lmn_clip_scale(25.0, 0.0f), 1.0f);
}

static CU_TestInfo tests[] = {
    {"embed: forward, bad tokens, fd scatter-add backward, frozen, accumulate", test_embed},
    {"xent: smoothing, ignore index, weight, fd gradient, threads", test_xent},
    {"xent: nothing valid, target out of range, uniform logits", test_xent_edge_cases},
    {"adamw: hand-computed two steps, grad scale", test_adamw},
    {"sumsq and clip scale", test_grad_norm},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("kernels: training", tests)
