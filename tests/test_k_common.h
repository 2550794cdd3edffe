/* test_k_common.h: helpers shared by the kernel suites (tests/test_k_*.c): a seeded RNG, per-test
 * allocations freed in one call, float/double conversions, error measures that print what they measured,
 * central finite differences over a double-precision objective, and the checks every backward gets
 * (accumulation doubles, frozen pointers leave the rest unchanged).
 *
 * Tolerances (stated once, used by every suite):
 *   forward:  max_i |ours_i - ref_i| / max(1, |ref_i|)  <= FWD_TOL  (ref = double-precision reference)
 *   backward: max_i |ours_i - fd_i|  / max(1, |fd_i|)   <= BWD_TOL  (fd = central differences, step FD_H,
 *             of the double reference's objective L = sum(out * R) with R random)
 *   accumulate: calling a backward twice gives 2x the single-call gradient within ACC_TOL, normwise:
 *             max_i |g2_i - 2 g1_i| / max_i |2 g1_i|. */
#ifndef LMN_TEST_K_COMMON_H
#define LMN_TEST_K_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kernels.h"

#define FWD_TOL 1e-5
#define BWD_TOL 1e-4
#define ACC_TOL 1e-6
#define FD_H 1e-5

/* ---- RNG: splitmix64, uniform floats ---- */
typedef struct rng {
  uint64_t s;
} rng;
static inline uint64_t rng_next(rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
/* uniform in [lo, hi) */
static inline float rng_uniform(rng *r, float lo, float hi) {
  return lo + (hi - lo) * (float)((rng_next(r) >> 40) * (1.0 / 16777216.0));
}
static inline int rng_int(rng *r, int n) { return (int)(rng_next(r) % (uint64_t)n); }

/* ---- allocations owned by the current test, released by t_free_all() ---- */
#define T_MAX_ALLOCS 512
static void *t_allocs[T_MAX_ALLOCS];
static int t_n_allocs;
static inline void *t_alloc(size_t bytes) {
  void *p = calloc(bytes ? bytes : 1, 1);
  if (!p || t_n_allocs == T_MAX_ALLOCS) {
    fprintf(stderr, "test allocation failed\n");
    exit(2);
  }
  t_allocs[t_n_allocs++] = p;
  return p;
}
static inline void t_free_all(void) {
  while (t_n_allocs) free(t_allocs[--t_n_allocs]);
}
static inline float *fzeros(size_t n) { return t_alloc(n * sizeof(float)); }
static inline double *dzeros(size_t n) { return t_alloc(n * sizeof(double)); }
static inline float *frand(rng *r, size_t n, float lo, float hi) {
  float *p = fzeros(n);
  for (size_t i = 0; i < n; i++) p[i] = rng_uniform(r, lo, hi);
  return p;
}
static inline float *fcopy(const float *x, size_t n) {
  float *p = fzeros(n);
  memcpy(p, x, n * sizeof *p);
  return p;
}
static inline double *dfrom(const float *x, size_t n) {
  double *p = dzeros(n);
  for (size_t i = 0; i < n; i++) p[i] = x[i];
  return p;
}

/* ---- error measures ---- */
/* max_i |a_i - b_i| / max(floor, |b_i|) */
static inline double max_err(const float *a, const double *b, size_t n, double floor) {
  double e = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]) / fmax(floor, fabs(b[i]));
    if (!(d <= e)) e = d; /* NaN propagates */
  }
  return e;
}
static inline double max_err_ff(const float *a, const float *b, size_t n, double floor) {
  double e = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]) / fmax(floor, fabs((double)b[i]));
    if (!(d <= e)) e = d;
  }
  return e;
}
/* prints one measured error against its tolerance and asserts it */
#define CHECK_ERR(what, err, tol)                                             \
  do {                                                                        \
    double e_ = (err);                                                        \
    printf("\n    %-52s max err %.2e (tol %.0e)", (what), e_, (double)(tol)); \
    CU_ASSERT(e_ <= (tol));                                                   \
  } while (0)
#define CHECK_FWD(what, ours, ref, n) CHECK_ERR(what, max_err((ours), (ref), (n), 1.0), FWD_TOL)
#define CHECK_BWD(what, ours, fd, n) CHECK_ERR(what, max_err((ours), (fd), (n), 1.0), BWD_TOL)
/* identical bit for bit (frozen / NULL pointers must not change what is computed) */
#define CHECK_SAME(what, a, b, n)                                        \
  do {                                                                   \
    int same_ = memcmp((a), (b), (n) * sizeof(float)) == 0;              \
    printf("\n    %-52s %s", (what), same_ ? "identical" : "DIFFERENT"); \
    CU_ASSERT(same_);                                                    \
  } while (0)
/* g2 (two accumulating calls) == 2 * g1 (one call), normwise: max_i |g2_i - 2 g1_i| / max_i |2 g1_i|
 * (the second call adds its terms onto a non-zero buffer, so single elements may round differently) */
static inline double doubled_err(const float *g2, const float *g1, size_t n) {
  double e = 0.0, m = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(g2[i] - 2.0 * g1[i]);
    if (!(d <= e)) e = d;
    m = fmax(m, fabs(2.0 * g1[i]));
  }
  return m > 0.0 ? e / m : e;
}
#define CHECK_DOUBLED(what, g2, g1, n) CHECK_ERR(what, doubled_err((g2), (g1), (n)), ACC_TOL)

/* ---- central finite differences of a double objective ---- */
typedef double (*objective_fn)(void *ctx);
/* g[i] = dL/dx[i] for the n doubles of x (which the objective reads through ctx); x is restored. */
static inline void fd_grad(double *x, size_t n, objective_fn f, void *ctx, double *g) {
  for (size_t i = 0; i < n; i++) {
    double x0 = x[i];
    x[i] = x0 + FD_H;
    double fp = f(ctx);
    x[i] = x0 - FD_H;
    double fm = f(ctx);
    x[i] = x0;
    g[i] = (fp - fm) / (2.0 * FD_H);
  }
}
/* The same at `count` random coordinates only (for inputs too large for a full sweep): writes the
 * sampled indices to idx and the derivatives to g[0..count). */
static inline void fd_grad_sampled(rng *r, double *x, size_t n, size_t count, objective_fn f, void *ctx,
                                   size_t *idx, double *g) {
  for (size_t s = 0; s < count; s++) {
    size_t i = (size_t)(rng_next(r) % n);
    double x0 = x[i];
    x[i] = x0 + FD_H;
    double fp = f(ctx);
    x[i] = x0 - FD_H;
    double fm = f(ctx);
    x[i] = x0;
    idx[s] = i;
    g[s] = (fp - fm) / (2.0 * FD_H);
  }
}
static inline double max_err_sampled(const float *ours, const size_t *idx, const double *g, size_t count) {
  double e = 0.0;
  for (size_t s = 0; s < count; s++) {
    double d = fabs((double)ours[idx[s]] - g[s]) / fmax(1.0, fabs(g[s]));
    if (!(d <= e)) e = d;
  }
  return e;
}

/* L = sum(out * R) */
static inline double dot_d(const double *a, const double *b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

#endif
