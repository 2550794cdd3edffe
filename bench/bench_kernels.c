/* bench_kernels.c: micro benchmark of the kernels against the machine's OpenBLAS sgemm rate, measured in
 * the same run: attention forward/backward GFLOP/s (causal, FLOPs as executed: forward 2 products, backward
 * 5 with the score recomputation, each 2*hd per visible (query, key) pair), cross-entropy and RMSNorm
 * throughput. Medians of several repetitions. Build from the repository root, after `make` (add
 * -march=native to both the library build, EXTRA_CFLAGS=-march=native, and this one for wider vectors):
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Iruntime -I/usr/include/x86_64-linux-gnu/openblas-pthread \
 *       bench/bench_kernels.c lib/liblmn.a -o bench_kernels -lopenblas -lyaml -lm -lpthread
 * Usage: bench_kernels [threads [B T heads kv_heads hd]]   (defaults: all CPUs, SmolLM2-135M: 4 512 9 3 64)
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels.h"

#define REPS 7

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static float *rnd(size_t n, unsigned *seed) {
  float *p = malloc(n * sizeof *p);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < n; i++) p[i] = (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
  return p;
}

typedef struct bench_ctx {
  const lmn_attn *a;
  float *out, *lse, *q, *k, *v, *dout, *dq, *dk, *dv, *scratch, *A, *B, *C, *logits, *y, *rstd, *w;
  int *targets;
  int gm, gn, gk, N, V, D;
  lmn_pool *pool;
} bench_ctx;

typedef void (*bench_fn)(bench_ctx *c);
static void run_sgemm(bench_ctx *c) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->gm, c->gn, c->gk, 1.0f, c->A, c->gk, c->B, c->gk,
              0.0f, c->C, c->gn);
}
static void run_attn_fwd(bench_ctx *c) {
  lmn_attention_forward(c->out, c->lse, c->q, c->k, c->v, c->a, c->scratch, c->pool);
}
static void run_attn_bwd(bench_ctx *c) {
  lmn_attention_backward(c->dq, c->dk, c->dv, c->dout, c->out, c->lse, c->q, c->k, c->v, c->a, c->scratch,
                         c->pool);
}
static void run_xent(bench_ctx *c) {
  lmn_xent_forward_backward(c->logits, c->targets, c->N, c->V, 0.1f, 1.0f, NULL, NULL, c->pool);
}
static void run_rmsnorm(bench_ctx *c) { lmn_rmsnorm_forward(c->y, c->rstd, c->A, c->w, c->gm, c->gk, 1e-5f); }

static double median_seconds(bench_fn f, bench_ctx *c) {
  double t[REPS];
  f(c); /* warm-up */
  for (int r = 0; r < REPS; r++) {
    double t0 = now();
    f(c);
    t[r] = now() - t0;
  }
  qsort(t, REPS, sizeof t[0], cmp_double);
  return t[REPS / 2];
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 0;
  lmn_attn a = {4, 512, 9, 3, 64, 0.125f, 0, 0};
  if (argc > 6) {
    a.B = atoi(argv[2]);
    a.T = atoi(argv[3]);
    a.heads = atoi(argv[4]);
    a.kv_heads = atoi(argv[5]);
    a.hd = atoi(argv[6]);
    a.scale = 1.0f / sqrtf((float)a.hd);
  }
  lmn_err err;
  lmn_pool *pool = lmn_pool_create(threads, &err);
  if (!pool) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  threads = lmn_pool_threads(pool);
  unsigned seed = 1;
  int N = a.B * a.T, D = a.heads * a.hd;
  size_t nq = (size_t)N * D, nk = (size_t)N * a.kv_heads * a.hd;
  bench_ctx c = {0};
  c.a = &a;
  c.pool = pool;
  c.q = rnd(nq, &seed);
  c.k = rnd(nk, &seed);
  c.v = rnd(nk, &seed);
  c.dout = rnd(nq, &seed);
  c.out = rnd(nq, &seed);
  c.dq = rnd(nq, &seed);
  c.dk = rnd(nk, &seed);
  c.dv = rnd(nk, &seed);
  c.lse = rnd((size_t)a.B * a.heads * a.T, &seed);
  c.scratch = rnd(lmn_attention_scratch_floats(&a, threads), &seed);
  /* the sgemm of a projection of the same activations: [N, D] x [D, D]^T */
  c.gm = N;
  c.gn = D;
  c.gk = D;
  c.A = rnd(nq, &seed);
  c.B = rnd((size_t)D * D, &seed);
  c.C = rnd(nq, &seed);
  c.N = 512;
  c.V = 49152;
  c.logits = rnd((size_t)c.N * c.V, &seed);
  c.targets = malloc((size_t)c.N * sizeof(int));
  for (int i = 0; i < c.N; i++) c.targets[i] = i * 7 % c.V;
  c.y = rnd(nq, &seed);
  c.rstd = rnd((size_t)N, &seed);
  c.w = rnd((size_t)D, &seed);

  double pairs = (double)a.B * a.heads * a.T * (a.T + 1) / 2.0;
  double t_gemm = median_seconds(run_sgemm, &c), gemm = 2.0 * c.gm * c.gn * c.gk / t_gemm / 1e9;
  double t_fwd = median_seconds(run_attn_fwd, &c), fwd = 4.0 * a.hd * pairs / t_fwd / 1e9;
  double t_bwd = median_seconds(run_attn_bwd, &c), bwd = 10.0 * a.hd * pairs / t_bwd / 1e9;
  double t_xent = median_seconds(run_xent, &c);
  double t_rms = median_seconds(run_rmsnorm, &c);
  printf("threads %d (pool; OpenBLAS decides its own), B %d T %d heads %d kv_heads %d hd %d, tiles %d x %d\n",
         threads, a.B, a.T, a.heads, a.kv_heads, a.hd, LMN_ATTN_BQ, lmn_attn_default_bk(a.hd));
  printf("sgemm %dx%dx%d          %8.1f GFLOP/s  (%.3f ms)\n", c.gm, c.gn, c.gk, gemm, 1e3 * t_gemm);
  printf("attention forward        %8.1f GFLOP/s  (%.3f ms)  %.0f%% of sgemm\n", fwd, 1e3 * t_fwd,
         100.0 * fwd / gemm);
  printf("attention backward       %8.1f GFLOP/s  (%.3f ms)  %.0f%% of sgemm\n", bwd, 1e3 * t_bwd,
         100.0 * bwd / gemm);
  printf("xent fwd+bwd %d x %d  %8.2f Gelem/s   (%.3f ms)\n", c.N, c.V, (double)c.N * c.V / t_xent / 1e9,
         1e3 * t_xent);
  printf("rmsnorm forward %d x %d %8.2f GB/s     (%.3f ms)\n", N, D, 2.0 * 4.0 * (double)nq / t_rms / 1e9,
         1e3 * t_rms);
  float *bufs[] = {c.q,       c.k, c.v, c.dout, c.out,    c.dq, c.dk,   c.dv, c.lse,
                   c.scratch, c.A, c.B, c.C,    c.logits, c.y,  c.rstd, c.w};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(c.targets);
  lmn_pool_destroy(pool);
  return 0;
}
