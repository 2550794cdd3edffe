/* qmat_bench.c: decode-time matrix-vector products with quantized weights (runtime/qmat.h) against
 * cblas_sgemv on the same matrix dequantized to f32, on the SmolLM2-135M shapes (576x576 q/o, 192x576 k/v,
 * 1536x576 gate/up, 576x1536 down, 49152x576 tied head), per weight type, at 1 and 2 threads. Contenders:
 * lmn_q_matvec (int8 activations), lmn_q_matvec_f32act, sgemv (OpenBLAS set to the same thread count).
 * Each round times every contender in turn (alternating, so drifts in clock or load hit all alike); the
 * table gives the median over rounds of the time per product and the weight bytes streamed per second,
 * and a tok/s equivalent: one token = 30 x (2 q/o + 2 k/v + 2 gate/up + 1 down) + the head. K types need
 * rows of a multiple of 256 values, so they only run 576x1536 (no tok/s: SmolLM2's 576-wide rows cannot
 * be K-quantized). Build from the repository root after `make`:
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Iruntime -I/usr/include/x86_64-linux-gnu/openblas-pthread \
 *       bench/qmat_bench.c lib/liblmn.a -o build/qmat_bench -lopenblas -lyaml -lm -lpthread
 * Usage: qmat_bench [--quick] [--rounds N] [--isa scalar|avx2|avx512] [--types Q4_1,Q8_0,...]
 *                   [--matmul N [--dx]]
 * (--quick: one round of one repetition, to check that it runs; its numbers mean nothing).
 * --matmul N: the training / prefill products instead, Y = X W^T for N rows of X (--dx: dX = dY W), in
 * GFLOP/s: lmn_q_matmul with W repacked to X16 where it can be (the tile path on AVX-512), with W in the
 * file's layout (panels + sgemm), and cblas_sgemm on the f32 matrix, OpenBLAS and the pool on the same
 * threads. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dequant.h"
#include "qmat.h"
#include "threads.h"

#define N_SHAPES 5
static const int64_t shapes[N_SHAPES][2] = {{576, 576}, {192, 576}, {1536, 576}, {576, 1536}, {49152, 576}};
static const int per_token[N_SHAPES] = {60, 60, 60, 30, 1}; /* products of each shape per token */
static const uint32_t bench_types[] = {LMN_GGML_Q4_0, LMN_GGML_Q4_1, LMN_GGML_Q5_0, LMN_GGML_Q5_1,
                                       LMN_GGML_Q8_0, LMN_GGML_Q4_K, LMN_GGML_Q5_K, LMN_GGML_Q6_K,
                                       LMN_GGML_F16,  LMN_GGML_BF16};
#define N_TYPES (int)(sizeof bench_types / sizeof bench_types[0])
enum { C_Q8, C_F32ACT, C_SGEMV, N_CONT };
static const char *const cont_name[N_CONT] = {"q_matvec", "f32act", "sgemv"};
static const char *const mm_name[N_CONT] = {"q_mm X16", "q_mm rows", "sgemm"}; /* --matmul */

typedef struct opts {
  int rounds, quick;
  const char *types; /* comma-separated names, or NULL for all */
  int matmul, dx;    /* --matmul N: rows of X; --dx */
} opts;

/* The operands of one shape: W in the file's layout, Wx repacked to X16 (or W's copy), Wf dequantized. */
typedef struct operands {
  lmn_qtensor W, Wx;
  const float *Wf, *x;
  float *y, *work;
} operands;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static uint64_t rnd(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Random blocks with finite fp16 scales (the content does not change the speed, NaNs might). */
static uint8_t *random_weights(uint32_t type, const lmn_qtensor *W, uint64_t *seed) {
  const size_t n = W->row_bytes * (size_t)W->rows;
  uint8_t *p = malloc(n);
  if (!p) return NULL;
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rnd(seed);
  uint32_t blck, bytes;
  lmn_ggml_type_size(type, &blck, &bytes, NULL);
  const uint16_t h = lmn_f32_to_fp16(0.01f);
  for (size_t b = 0; b < n / bytes; b++) {
    uint8_t *q = p + b * bytes;
    if (blck == 1)
      q[1] &= 0x3f; /* F16 / BF16: small exponents, no inf or NaN */
    else if (type == LMN_GGML_Q6_K)
      memcpy(q + 208, &h, 2);
    else
      memcpy(q, &h, 2), memcpy(q + 2, &h, 2); /* d, and m / dmin where the format has one */
  }
  return p;
}

/* One --matmul call of contender c. */
static void matmul_one(const opts *o, int c, const operands *a, lmn_pool *pool) {
  const lmn_qtensor *W = c == C_Q8 ? &a->Wx : &a->W;
  const int R = (int)W->rows, C = (int)W->cols;
  if (c != C_SGEMV)
    (o->dx ? lmn_q_matmul_dx : lmn_q_matmul)(a->y, a->x, W, o->matmul, 0.0f, a->work, pool);
  else if (o->dx)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, o->matmul, C, R, 1.0f, a->x, R, a->Wf, C, 0.0f,
                a->y, C);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, o->matmul, R, C, 1.0f, a->x, C, a->Wf, C, 0.0f, a->y,
                R);
}

/* Seconds per call of contender c, from one timed batch of reps calls. */
static double time_one(const opts *o, int c, const operands *a, lmn_pool *pool, int threads, int reps) {
  const lmn_qtensor *W = &a->W;
  openblas_set_num_threads(threads);
  const double t0 = now();
  for (int r = 0; r < reps; r++) {
    if (o->matmul)
      matmul_one(o, c, a, pool);
    else if (c == C_Q8)
      lmn_q_matvec(a->y, W, a->x, pool);
    else if (c == C_F32ACT)
      lmn_q_matvec_f32act(a->y, W, a->x, pool);
    else
      cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)W->rows, (int)W->cols, 1.0f, a->Wf, (int)W->cols, a->x, 1,
                  0.0f, a->y, 1);
  }
  return (now() - t0) / reps;
}

/* Median seconds per call of every contender, rounds alternating between them. */
static void measure(const opts *o, const operands *a, lmn_pool *pool, int threads, double med[N_CONT]) {
  int reps[N_CONT];
  for (int c = 0; c < N_CONT; c++) { /* warm up, and size a batch to about 20 ms */
    const double t = time_one(o, c, a, pool, threads, 1);
    reps[c] = o->quick ? 1 : (int)(0.02 / (t > 1e-7 ? t : 1e-7)) + 1;
  }
  double *t = malloc(sizeof(double) * N_CONT * (size_t)o->rounds);
  for (int r = 0; r < o->rounds; r++)
    for (int c = 0; c < N_CONT; c++) t[c * o->rounds + r] = time_one(o, c, a, pool, threads, reps[c]);
  for (int c = 0; c < N_CONT; c++) {
    qsort(t + c * o->rounds, (size_t)o->rounds, sizeof *t, cmp_double);
    med[c] = t[c * o->rounds + o->rounds / 2];
  }
  free(t);
}

/* --matmul: X (or dY) of N rows, Y, the scratch, and Wx repacked where it can be. 0 when out of memory. */
static int matmul_operands(const opts *o, operands *a, uint64_t *seed) {
  const int64_t in = o->dx ? a->W.rows : a->W.cols, out = o->dx ? a->W.cols : a->W.rows;
  float *x = malloc(sizeof(float) * (size_t)(o->matmul * in));
  a->y = malloc(sizeof(float) * (size_t)(o->matmul * out));
  a->work = malloc(sizeof(float) * (lmn_q_matmul_work_floats(&a->W, 2) + 1));
  void *x16 = lmn_q_x16_possible(&a->W) ? malloc(a->W.row_bytes * (size_t)a->W.rows) : NULL;
  if (!x || !a->y || !a->work || (lmn_q_x16_possible(&a->W) && !x16))
    return fprintf(stderr, "qmat_bench: out of memory\n"), 0;
  for (int64_t i = 0; i < o->matmul * in; i++) x[i] = (float)((int64_t)(rnd(seed) % 2001) - 1000) / 1000.0f;
  a->x = x;
  if (x16) lmn_qtensor_repack(&a->Wx, &a->W, x16);
  return 1;
}

/* One type and shape at 1 and 2 threads: prints rows, returns the medians in med[threads - 1][c]. */
static int bench_shape(const opts *o, uint32_t type, int s, lmn_pool *pools[2], double med[2][N_CONT]) {
  lmn_qtensor W;
  lmn_err e;
  if (lmn_qtensor_init(&W, type, shapes[s][0], shapes[s][1], NULL, &e) != 0) return 0;
  uint64_t seed = 42 + (uint64_t)type * 7 + (uint64_t)s;
  uint8_t *data = random_weights(type, &W, &seed);
  float *Wf = malloc(sizeof(float) * (size_t)(W.rows * W.cols)), *x = malloc(sizeof(float) * (size_t)W.cols);
  float *y = malloc(sizeof(float) * (size_t)W.rows);
  if (!data || !Wf || !x || !y) {
    fprintf(stderr, "qmat_bench: out of memory\n");
    exit(1);
  }
  W.data = data;
  lmn_q_dequant(Wf, W.cols, &W, 0, W.rows, 0, W.cols);
  for (int64_t i = 0; i < W.cols; i++) x[i] = (float)((int64_t)(rnd(&seed) % 2001) - 1000) / 1000.0f;
  operands a = {W, W, Wf, x, y, NULL};
  if (o->matmul && !matmul_operands(o, &a, &seed)) return 0;
  for (int t = 0; t < 2; t++) {
    measure(o, &a, pools[t], t + 1, med[t]);
    for (int c = 0; c < N_CONT; c++) {
      const double bytes =
          c == C_SGEMV ? 4.0 * (double)(W.rows * W.cols) : (double)W.row_bytes * (double)W.rows;
      if (o->matmul)
        printf("%-5s %5lldx%-5lld %d thr  %-9s %10.1f us %8.1f GFLOP/s\n", lmn_ggml_type_name(type),
               (long long)W.rows, (long long)W.cols, t + 1, mm_name[c], 1e6 * med[t][c],
               2.0 * o->matmul * (double)(W.rows * W.cols) / med[t][c] / 1e9);
      else
        printf("%-5s %5lldx%-5lld %d thr  %-8s %10.1f us %8.2f GB/s\n", lmn_ggml_type_name(type),
               (long long)W.rows, (long long)W.cols, t + 1, cont_name[c], 1e6 * med[t][c],
               bytes / med[t][c] / 1e9);
    }
  }
  if (a.Wx.data != W.data) free((void *)a.Wx.data);
  if (o->matmul) free((void *)a.x), free(a.y), free(a.work);
  free(data), free(Wf), free(x), free(y);
  return 1;
}

static int wanted(const opts *o, uint32_t type) {
  if (!o->types) return 1;
  const char *name = lmn_ggml_type_name(type), *p = strstr(o->types, name);
  const size_t n = strlen(name);
  return p && (p == o->types || p[-1] == ',') && (p[n] == 0 || p[n] == ',');
}

static void bench_type(const opts *o, uint32_t type, lmn_pool *pools[2]) {
  double tok[2][N_CONT] = {{0}};
  int all = 1;
  for (int s = 0; s < N_SHAPES; s++) {
    double med[2][N_CONT];
    if (!bench_shape(o, type, s, pools, med)) {
      all = 0;
      continue;
    }
    for (int t = 0; t < 2; t++)
      for (int c = 0; c < N_CONT; c++) tok[t][c] += per_token[s] * med[t][c];
  }
  for (int t = 0; all && t < 2; t++) {
    if (o->matmul) break;
    printf("%-5s tok/s-equivalent, %d thr:", lmn_ggml_type_name(type), t + 1);
    for (int c = 0; c < N_CONT; c++) printf("  %s %.1f", cont_name[c], 1.0 / tok[t][c]);
    printf("  (q_matvec / sgemv %.2fx)\n", tok[t][C_SGEMV] / tok[t][C_Q8]);
  }
}

static int parse(int argc, char **argv, opts *o) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick"))
      o->quick = 1, o->rounds = 1;
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
      o->rounds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--matmul") && i + 1 < argc)
      o->matmul = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--dx"))
      o->dx = 1;
    else if (!strcmp(argv[i], "--types") && i + 1 < argc)
      o->types = argv[++i];
    else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
      const char *v = argv[++i];
      int isa = !strcmp(v, "scalar")   ? LMN_ISA_SCALAR
                : !strcmp(v, "avx2")   ? LMN_ISA_AVX2
                : !strcmp(v, "avx512") ? LMN_ISA_AVX512
                                       : 9;
      if (lmn_q_force_isa(isa) != 0) return fprintf(stderr, "qmat_bench: path '%s' not available\n", v), -1;
    } else
      return fprintf(stderr,
                     "usage: qmat_bench [--quick] [--rounds N] [--isa P] [--types A,B] [--matmul N "
                     "[--dx]]\n"),
             -1;
  }
  return o->rounds > 0 && o->matmul >= 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  opts o = {5, 0, NULL, 0, 0};
  if (parse(argc, argv, &o) != 0) return 2;
  lmn_err e;
  lmn_pool *pools[2] = {lmn_pool_create(1, &e), lmn_pool_create(2, &e)};
  if (!pools[0] || !pools[1]) return fprintf(stderr, "qmat_bench: %s\n", e.msg), 1;
  printf("qmat_bench: path %s, %d round(s), medians%s\n", lmn_q_isa_name(lmn_q_isa()), o.rounds,
         o.quick ? " (--quick: a smoke run, not a measurement)" : "");
  for (int t = 0; t < N_TYPES; t++)
    if (wanted(&o, bench_types[t])) bench_type(&o, bench_types[t], pools);
  lmn_pool_destroy(pools[0]);
  lmn_pool_destroy(pools[1]);
  return 0;
}
