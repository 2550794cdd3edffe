/* test_k_attn.c: checks of the sequence kernels: RoPE in both pair layouts (k_rope.c), causal GQA
 * attention forward/backward and its decode variant (k_attention.c) against a materialised-softmax double
 * reference and finite differences, and the thread pool they run on (threads.c). Tolerances in
 * test_k_common.h. */
#include "test_k_common.h"

/* ============================================ pool ============================================ */

typedef struct pool_ctx {
  int *hits;
  int *bad_thread;
  int n_threads;
} pool_ctx;

static void pool_task(void *p, int task, int thread) {
  pool_ctx *c = p;
  c->hits[task]++; /* each task index is handed out once per run: no two threads write the same slot */
  if (thread < 0 || thread >= c->n_threads) c->bad_thread[task] = 1;
}

static void test_pool(void) {
  lmn_err err;
  lmn_pool *pool = lmn_pool_create(3, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
  CU_ASSERT_EQUAL(lmn_pool_threads(pool), 3);
  CU_ASSERT_EQUAL(lmn_pool_threads(NULL), 1);
  int n = 777, runs = 200;
  int *hits = t_alloc(n * sizeof(int)), *bad = t_alloc(n * sizeof(int));
  pool_ctx c = {hits, bad, 3};
  for (int r = 0; r < runs; r++) lmn_pool_run(pool, r % 5 == 4 ? 1 : n, pool_task, &c);
  int ok = 1;
  for (int i = 0; i < n; i++) ok &= hits[i] == (i == 0 ? runs : runs - runs / 5) && !bad[i];
  CU_ASSERT(ok);
  lmn_pool_run(pool, 0, pool_task, &c); /* no tasks: returns at once */
  lmn_pool_destroy(pool);
  memset(hits, 0, n * sizeof(int));
  c.n_threads = 1;
  lmn_pool_run(NULL, n, pool_task, &c); /* no pool: the caller runs everything as thread 0 */
  ok = 1;
  for (int i = 0; i < n; i++) ok &= hits[i] == 1 && !bad[i];
  CU_ASSERT(ok);
  lmn_pool *auto_pool = lmn_pool_create(0, &err); /* one thread per CPU */
  CU_ASSERT_PTR_NOT_NULL(auto_pool);
  CU_ASSERT(lmn_pool_threads(auto_pool) >= 1);
  lmn_pool_destroy(auto_pool);
  lmn_pool_destroy(NULL);
  t_free_all();
}

/* ============================================ RoPE ============================================ */

/* double rotation of one row's heads, mode as in kernels.h, angle = pos * theta^(-2p/hd) */
static void rope_ref_row(double *x, int heads, int hd, int pos, double theta, int neox, double sign) {
  int half = hd / 2;
  for (int h = 0; h < heads; h++)
    for (int p = 0; p < half; p++) {
      double ang = pos * pow(theta, -2.0 * p / hd), c = cos(ang), s = sign * sin(ang);
      int i0 = neox ? h * hd + p : h * hd + 2 * p, i1 = neox ? i0 + half : i0 + 1;
      double a = x[i0], b = x[i1];
      x[i0] = a * c - b * s;
      x[i1] = a * s + b * c;
    }
}

typedef struct rope_ref {
  int B, T, H, hd, pos0, neox;
  double theta, *x, *R, *y;
} rope_ref;
static double rope_obj(void *p) {
  rope_ref *c = p;
  size_t w = (size_t)c->H * c->hd, n = (size_t)c->B * c->T * w;
  memcpy(c->y, c->x, n * sizeof(double));
  for (int b = 0; b < c->B; b++)
    for (int t = 0; t < c->T; t++)
      rope_ref_row(c->y + ((size_t)b * c->T + t) * w, c->H, c->hd, c->pos0 + t, c->theta, c->neox, 1.0);
  return dot_d(c->y, c->R, n);
}

static void test_rope(void) {
  rng r = {700};
  int B = 2, T = 5, H = 3, hd = 8, pos0 = 3, npos = 16, half = hd / 2;
  double theta = 10000.0;
  float *ct = fzeros((size_t)npos * half), *stab = fzeros((size_t)npos * half);
  lmn_rope_table(ct, stab, npos, hd, theta);
  double *want_c = dzeros((size_t)npos * half), *want_s = dzeros((size_t)npos * half);
  for (int pos = 0; pos < npos; pos++)
    for (int p = 0; p < half; p++) {
      want_c[pos * half + p] = cos(pos * pow(theta, -2.0 * p / hd));
      want_s[pos * half + p] = sin(pos * pow(theta, -2.0 * p / hd));
    }
  CHECK_FWD("rope table cos", ct, want_c, (size_t)npos * half);
  CHECK_FWD("rope table sin", stab, want_s, (size_t)npos * half);
  size_t n = (size_t)B * T * H * hd;
  for (int neox = 0; neox <= 1; neox++) {
    lmn_rope_mode mode = neox ? LMN_ROPE_NEOX : LMN_ROPE_NORMAL;
    const char *tag = neox ? "rope NEOX" : "rope NORMAL";
    char name[96];
    float *x = frand(&r, n, -1, 1), *R = frand(&r, n, -1, 1), *y = fcopy(x, n);
    rope_ref c = {B, T, H, hd, pos0, neox, theta, dfrom(x, n), dfrom(R, n), dzeros(n)};
    lmn_rope_forward(y, ct, stab, B, T, H, hd, pos0, mode);
    rope_obj(&c);
    snprintf(name, sizeof name, "%s forward", tag);
    CHECK_FWD(name, y, c.y, n);
    float *d = fcopy(R, n);
    lmn_rope_backward(d, ct, stab, B, T, H, hd, pos0, mode);
    double *g = dzeros(n);
    fd_grad(c.x, n, rope_obj, &c, g);
    snprintf(name, sizeof name, "%s backward (in place) vs fd", tag);
    CHECK_BWD(name, d, g, n);
    lmn_rope_backward(y, ct, stab, B, T, H, hd, pos0, mode); /* undo the forward */
    snprintf(name, sizeof name, "%s backward(forward(x)) == x", tag);
    CHECK_ERR(name, max_err_ff(y, x, n, 1.0), FWD_TOL);
  }
  t_free_all();
}

/* GGUF row index of HF row (h, j) inside a head (formats.md 1.6): j < hd/2 -> 2j, else 2(j - hd/2) + 1 */
static int gguf_col(int j, int hd) { return j < hd / 2 ? 2 * j : 2 * (j - hd / 2) + 1; }

/* NORMAL RoPE on GGUF-permuted q/k rows gives the same attention scores (and outputs) as NEOX on HF rows */
static void test_rope_permutation(void) {
  rng r = {710};
  int T = 19, H = 4, KV = 2, hd = 16, group = H / KV;
  float *ct = fzeros((size_t)T * hd / 2), *st = fzeros((size_t)T * hd / 2);
  lmn_rope_table(ct, st, T, hd, 10000.0);
  size_t nq = (size_t)T * H * hd, nk = (size_t)T * KV * hd;
  float *q = frand(&r, nq, -1, 1), *k = frand(&r, nk, -1, 1), *v = frand(&r, nk, -1, 1);
  float *qp = fzeros(nq), *kp = fzeros(nk);
  for (int t = 0; t < T; t++) {
    for (int h = 0; h < H; h++)
      for (int j = 0; j < hd; j++)
        qp[(size_t)t * H * hd + h * hd + gguf_col(j, hd)] = q[(size_t)t * H * hd + h * hd + j];
    for (int h = 0; h < KV; h++)
      for (int j = 0; j < hd; j++)
        kp[(size_t)t * KV * hd + h * hd + gguf_col(j, hd)] = k[(size_t)t * KV * hd + h * hd + j];
  }
  lmn_rope_forward(q, ct, st, 1, T, H, hd, 0, LMN_ROPE_NEOX);
  lmn_rope_forward(k, ct, st, 1, T, KV, hd, 0, LMN_ROPE_NEOX);
  lmn_rope_forward(qp, ct, st, 1, T, H, hd, 0, LMN_ROPE_NORMAL);
  lmn_rope_forward(kp, ct, st, 1, T, KV, hd, 0, LMN_ROPE_NORMAL);
  double e = 0.0;
  for (int h = 0; h < H; h++)
    for (int t = 0; t < T; t++)
      for (int s = 0; s < T; s++) {
        double a = 0.0, b = 0.0;
        for (int j = 0; j < hd; j++) {
          a += (double)q[(size_t)t * H * hd + h * hd + j] * k[(size_t)s * KV * hd + (h / group) * hd + j];
          b += (double)qp[(size_t)t * H * hd + h * hd + j] * kp[(size_t)s * KV * hd + (h / group) * hd + j];
        }
        e = fmax(e, fabs(a - b) / fmax(1.0, fabs(a)));
      }
  CHECK_ERR("NORMAL on permuted rows == NEOX: scores", e, FWD_TOL);
  lmn_attn a = {1, T, H, KV, hd, 0.25f, 0, 0};
  float *scratch = fzeros(lmn_attention_scratch_floats(&a, 1)), *o1 = fzeros(nq), *o2 = fzeros(nq);
  lmn_attention_forward(o1, NULL, q, k, v, &a, scratch, NULL);
  lmn_attention_forward(o2, NULL, qp, kp, v, &a, scratch, NULL);
  CHECK_ERR("NORMAL on permuted rows == NEOX: attention out", max_err_ff(o2, o1, nq, 1.0), FWD_TOL);
  t_free_all();
}

/* ========================================== attention ========================================== */

typedef struct attn_ref {
  int B, T, H, KV, hd;
  double scale;
  double *q, *k, *v, *R, *out, *lse, *p; /* p: one row of probabilities [T] */
} attn_ref;

static void attn_forward_ref(attn_ref *c) {
  int H = c->H, KV = c->KV, hd = c->hd, T = c->T, group = H / KV;
  for (int b = 0; b < c->B; b++)
    for (int h = 0; h < H; h++)
      for (int t = 0; t < T; t++) {
        const double *qr = c->q + ((size_t)b * T + t) * H * hd + h * hd;
        double m = -INFINITY;
        for (int j = 0; j <= t; j++) {
          const double *kr = c->k + ((size_t)b * T + j) * KV * hd + (h / group) * hd;
          double s = 0.0;
          for (int d = 0; d < hd; d++) s += qr[d] * kr[d];
          c->p[j] = c->scale * s;
          m = fmax(m, c->p[j]);
        }
        double z = 0.0;
        for (int j = 0; j <= t; j++) z += (c->p[j] = exp(c->p[j] - m));
        double *o = c->out + ((size_t)b * T + t) * H * hd + h * hd;
        for (int d = 0; d < hd; d++) o[d] = 0.0;
        for (int j = 0; j <= t; j++) {
          const double *vr = c->v + ((size_t)b * T + j) * KV * hd + (h / group) * hd;
          for (int d = 0; d < hd; d++) o[d] += c->p[j] / z * vr[d];
        }
        c->lse[((size_t)b * H + h) * T + t] = m + log(z);
      }
}
static double attn_obj(void *p) {
  attn_ref *c = p;
  attn_forward_ref(c);
  return dot_d(c->out, c->R, (size_t)c->B * c->T * c->H * c->hd);
}

/* fd_samples = 0: full finite differences over q, k, v; else that many sampled coordinates per tensor */
static void attention_case(const char *tag, lmn_attn a, int fd_samples) {
  rng r = {800 + a.T + a.hd};
  int N = a.B * a.T;
  size_t nq = (size_t)N * a.heads * a.hd, nk = (size_t)N * a.kv_heads * a.hd,
         nl = (size_t)a.B * a.heads * a.T;
  float *q = frand(&r, nq, -1, 1), *k = frand(&r, nk, -1, 1), *v = frand(&r, nk, -1, 1),
        *R = frand(&r, nq, -1, 1);
  float *out = fzeros(nq), *lse = fzeros(nl);
  float *scratch = fzeros(lmn_attention_scratch_floats(&a, 3));
  attn_ref c = {a.B,          a.T,          a.heads,      a.kv_heads, a.hd,       a.scale,    dfrom(q, nq),
                dfrom(k, nk), dfrom(v, nk), dfrom(R, nq), dzeros(nq), dzeros(nl), dzeros(a.T)};
  char name[128];
  lmn_attention_forward(out, lse, q, k, v, &a, scratch, NULL);
  attn_forward_ref(&c);
  snprintf(name, sizeof name, "%s forward out", tag);
  CHECK_FWD(name, out, c.out, nq);
  snprintf(name, sizeof name, "%s forward lse", tag);
  CHECK_FWD(name, lse, c.lse, nl);

  float *dq = fzeros(nq), *dk = fzeros(nk), *dv = fzeros(nk);
  lmn_attention_backward(dq, dk, dv, R, out, lse, q, k, v, &a, scratch, NULL);
  struct {
    const char *n;
    double *x;
    float *ours;
    size_t len;
  } in[3] = {{"dq", c.q, dq, nq}, {"dk", c.k, dk, nk}, {"dv", c.v, dv, nk}};
  for (int i = 0; i < 3; i++) {
    if (fd_samples == 0) {
      double *g = dzeros(in[i].len);
      fd_grad(in[i].x, in[i].len, attn_obj, &c, g);
      snprintf(name, sizeof name, "%s backward %s vs fd", tag, in[i].n);
      CHECK_BWD(name, in[i].ours, g, in[i].len);
    } else {
      size_t *idx = t_alloc(fd_samples * sizeof(size_t));
      double *g = dzeros(fd_samples);
      fd_grad_sampled(&r, in[i].x, in[i].len, fd_samples, attn_obj, &c, idx, g);
      snprintf(name, sizeof name, "%s backward %s vs fd (%d samples)", tag, in[i].n, fd_samples);
      CHECK_ERR(name, max_err_sampled(in[i].ours, idx, g, fd_samples), BWD_TOL);
    }
  }

  /* a pool of 3 threads computes the same bits */
  lmn_err err;
  lmn_pool *pool = lmn_pool_create(3, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
  float *out3 = fzeros(nq), *lse3 = fzeros(nl), *dq3 = fzeros(nq), *dk3 = fzeros(nk), *dv3 = fzeros(nk);
  lmn_attention_forward(out3, lse3, q, k, v, &a, scratch, pool);
  lmn_attention_backward(dq3, dk3, dv3, R, out, lse, q, k, v, &a, scratch, pool);
  snprintf(name, sizeof name, "%s 3 threads == 1 thread (out, lse, dq, dk, dv)", tag);
  CU_ASSERT(memcmp(out3, out, nq * 4) == 0 && memcmp(lse3, lse, nl * 4) == 0 &&
            memcmp(dq3, dq, nq * 4) == 0 && memcmp(dk3, dk, nk * 4) == 0);
  CHECK_SAME(name, dv3, dv, nk);

  /* NULL gradients: the others are unchanged */
  float *dq4 = fzeros(nq), *dk4 = fzeros(nk), *dv4 = fzeros(nk);
  lmn_attention_backward(dq4, NULL, NULL, R, out, lse, q, k, v, &a, scratch, pool);
  lmn_attention_backward(NULL, dk4, NULL, R, out, lse, q, k, v, &a, scratch, pool);
  lmn_attention_backward(NULL, NULL, dv4, R, out, lse, q, k, v, &a, scratch, pool);
  snprintf(name, sizeof name, "%s dq/dk/dv alone (others NULL)", tag);
  CU_ASSERT(memcmp(dq4, dq, nq * 4) == 0 && memcmp(dk4, dk, nk * 4) == 0);
  CHECK_SAME(name, dv4, dv, nk);

  /* accumulation */
  lmn_attention_backward(dq3, dk3, dv3, R, out, lse, q, k, v, &a, scratch, pool);
  snprintf(name, sizeof name, "%s accumulate dq,dk,dv", tag);
  CHECK_ERR(name, fmax(doubled_err(dq3, dq, nq), fmax(doubled_err(dk3, dk, nk), doubled_err(dv3, dv, nk))),
            ACC_TOL);

  /* decode: one query row over the cache of positions 0..t equals the full forward's row t */
  int ts[3] = {0, a.T / 2, a.T - 1};
  double worst = 0.0;
  for (int bkd = 0; bkd <= 1; bkd++) {
    lmn_attn ad = a;
    ad.bk = bkd ? 8 : 0; /* default decode tile, and a small one (several key tiles) */
    float *dscr = fzeros(lmn_attention_decode_scratch_floats(&ad, 3)), *row = fzeros((size_t)a.heads * a.hd);
    for (int b = 0; b < a.B; b++)
      for (int i = 0; i < 3; i++) {
        size_t qoff = ((size_t)b * a.T + ts[i]) * a.heads * a.hd, kvoff = (size_t)b * a.T * a.kv_heads * a.hd;
        lmn_attention_decode(row, q + qoff, k + kvoff, v + kvoff, ts[i], &ad, dscr, bkd ? pool : NULL);
        worst = fmax(worst, max_err(row, c.out + qoff, (size_t)a.heads * a.hd, 1.0));
        worst = fmax(worst, max_err_ff(row, out + qoff, (size_t)a.heads * a.hd, 1.0));
      }
  }
  snprintf(name, sizeof name, "%s decode row t == forward row t (t=0,T/2,T-1)", tag);
  CHECK_ERR(name, worst, FWD_TOL);
  lmn_pool_destroy(pool);
  t_free_all();
}

static void test_attention_small_tiles(void) {
  /* T = 37: not a multiple of bq = 16 or bk = 8; GQA 4 query heads over 2 kv heads; scaled */
  attention_case("attn GQA 4/2 hd=8 T=37 bq=16 bk=8 scaled", (lmn_attn){2, 37, 4, 2, 8, 0.35355339f, 16, 8},
                 0);
  /* unscaled (GPT-2 edge), bk > bq, hd = 6 not a multiple of the vector width */
  attention_case("attn MHA 2/2 hd=6 T=29 bq=8 bk=16 unscaled", (lmn_attn){1, 29, 2, 2, 6, 1.0f, 8, 16}, 0);
}

static void test_attention_default_tiles(void) {
  /* default tiles (64 x 64): T = 150 spans three query tiles, the last partial; MQA (1 kv head) */
  attention_case("attn MQA 4/1 hd=16 T=150 default tiles", (lmn_attn){1, 150, 4, 1, 16, 0.25f, 0, 0}, 48);
  /* hd = 128: default key tile 32 */
  attention_case("attn GQA 4/2 hd=128 T=70 default tiles", (lmn_attn){1, 70, 4, 2, 128, 0.08838835f, 0, 0},
                 16);
}

static void test_attention_defaults(void) {
  CU_ASSERT_EQUAL(lmn_attn_default_bk(64), 64);
  CU_ASSERT_EQUAL(lmn_attn_default_bk(128), 32);
  CU_ASSERT_EQUAL(lmn_attn_default_bk(80), 32);
  CU_ASSERT(lmn_attn_default_bk(4096) >= 8);
  lmn_attn a = {2, 100, 9, 3, 64, 0.125f, 0, 0};
  /* forward: bq*bk + 2*bq; backward: 2*bq*bk + group*T */
  CU_ASSERT_EQUAL(lmn_attention_scratch_floats(&a, 2), 2 * (size_t)(2 * 64 * 64 + 3 * 100));
  CU_ASSERT_EQUAL(lmn_attention_decode_scratch_floats(&a, 1), (size_t)(3 * 1024 + 2 * 3));
}

static CU_TestInfo tests[] = {
    {"pool: every task once, thread ids in range, NULL pool", test_pool},
    {"rope: table, NORMAL/NEOX forward, fd backward, inverse", test_rope},
    {"rope: NORMAL on GGUF-permuted rows == NEOX on HF rows", test_rope_permutation},
    {"attention: small tiles, GQA, unscaled, fd, threads, decode", test_attention_small_tiles},
    {"attention: default tiles, MQA, hd=128, sampled fd, decode", test_attention_default_tiles},
    {"attention: tile defaults and scratch sizes", test_attention_defaults},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("kernels: attention", tests)
