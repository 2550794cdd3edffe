/* blasrate.c: the GEMM rate measurements behind MFU: OpenBLAS's sgemm, and lmn_bgemm on every thread. */
#include "blasrate.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>

#include "bgemm.h"
#include "progress.h"

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Seconds of one C = A * B call (bf16: lmn_bgemm, else cblas_sgemm). */
static double time_gemm(int bf16, int n, const float *a, const float *b, float *c) {
  double t0 = lmn_clock_s();
  if (bf16)
    lmn_bgemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
  return lmn_clock_s() - t0;
}

/* GFLOP/s of one warm-up call and the median of reps timed calls on n x n matrices of one's own. */
static double measure(int bf16, int n, int reps) {
  size_t nn = (size_t)n * (size_t)n;
  float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
  double *t = malloc((size_t)reps * sizeof *t), rate = 0.0;
  if (a && b && c && t) {
    for (size_t i = 0; i < nn; i++) {
      a[i] = (float)(i % 13) * 0.01f - 0.06f;
      b[i] = (float)(i % 7) * 0.02f - 0.06f;
    }
    time_gemm(bf16, n, a, b, c);
    for (int r = 0; r < reps; r++) t[r] = time_gemm(bf16, n, a, b, c);
    double s = median(t, reps);
    rate = s > 0.0 ? 2.0 * (double)n * (double)n * (double)n / s * 1e-9 : 0.0;
  }
  free(a);
  free(b);
  free(c);
  free(t);
  return rate;
}

double lmn_measure_sgemm_gflops(int n, int reps) {
  if (n < 1 || n > 16384 || reps < 1) return 0.0;
  return measure(0, n, reps);
}

typedef struct bg_job {
  int n, reps;
  double rate;
} bg_job;

static void *bg_thread(void *p) {
  bg_job *j = p;
  j->rate = measure(1, j->n, j->reps);
  return NULL;
}

double lmn_measure_bgemm_gflops(int n, int reps, int threads) {
  if (n < 1 || n > 16384 || reps < 1 || threads < 1 || threads > 4096) return 0.0;
  bg_job *jobs = calloc((size_t)threads, sizeof *jobs);
  pthread_t *tid = calloc((size_t)threads, sizeof *tid);
  double sum = 0.0;
  if (jobs && tid) {
    int started = 1;
    for (int i = 0; i < threads; i++) jobs[i] = (bg_job){n, reps, 0.0};
    for (; started < threads; started++)
      if (pthread_create(&tid[started], NULL, bg_thread, &jobs[started]) != 0) break;
    bg_thread(&jobs[0]);
    for (int i = 1; i < started; i++) pthread_join(tid[i], NULL);
    for (int i = 0; i < started; i++) sum += jobs[i].rate;
  }
  free(jobs);
  free(tid);
  return sum;
}
