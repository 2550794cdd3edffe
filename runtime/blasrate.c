/* blasrate.c: the sgemm rate measurement behind MFU. */
#include "blasrate.h"

#include <cblas.h>
#include <stdlib.h>

#include "progress.h"

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Seconds of one C = A * B call. */
static double time_sgemm(int n, const float *a, const float *b, float *c) {
  double t0 = lmn_clock_s();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
  return lmn_clock_s() - t0;
}

double lmn_measure_sgemm_gflops(int n, int reps) {
  if (n < 1 || n > 16384 || reps < 1) return 0.0;
  size_t nn = (size_t)n * (size_t)n;
  float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
  double *t = malloc((size_t)reps * sizeof *t), rate = 0.0;
  if (a && b && c && t) {
    for (size_t i = 0; i < nn; i++) {
      a[i] = (float)(i % 13) * 0.01f - 0.06f;
      b[i] = (float)(i % 7) * 0.02f - 0.06f;
    }
    time_sgemm(n, a, b, c);
    for (int r = 0; r < reps; r++) t[r] = time_sgemm(n, a, b, c);
    double s = median(t, reps);
    rate = s > 0.0 ? 2.0 * (double)n * (double)n * (double)n / s * 1e-9 : 0.0;
  }
  free(a);
  free(b);
  free(c);
  free(t);
  return rate;
}
