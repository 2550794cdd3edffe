/* test_qmat.c: the quantized-weight kernels (runtime/qmat.c) for every weight type and every instruction
 * path this CPU runs (paths it lacks are reported as skipped), against double-precision products with the
 * tensor dequantized by lmn_dequant_row: bit-exact dequantization, matvec with int8 activations within the
 * bound stated in qmat.h, matvec with f32 activations, matmul and matmul_dx within 1e-5, bit-identical
 * results for 1 and 2 threads (and for matmul across paths), matvec_rows against matvec, the data gradient
 * against finite differences, and the edge cases of the API. Weights are random bytes with valid scales,
 * and the first 256 rows of one matrix per type of models/SmolLM2-135M-Instruct.Q4_1.gguf (`make models`;
 * without it that test prints a notice and passes). */
#include <unistd.h>

#include "dequant.h"
#include "gguf.h"
#include "qmat.h"
#include "qmat_impl.h"
#include "test_k_common.h"
#include "threads.h"

static const uint32_t all_types[] = {LMN_GGML_F32,  LMN_GGML_F16,  LMN_GGML_BF16, LMN_GGML_Q8_0,
                                     LMN_GGML_Q4_0, LMN_GGML_Q4_1, LMN_GGML_Q5_0, LMN_GGML_Q5_1,
                                     LMN_GGML_Q4_K, LMN_GGML_Q5_K, LMN_GGML_Q6_K};
#define N_TYPES (int)(sizeof all_types / sizeof all_types[0])

#define F32ACT_TOL 1e-5 /* |y - ref| / sum|W x| */
#define MM_TOL 1e-5     /* matmul, matmul_dx: |y - ref| / sum|X W| */
#define RMS_TOL 2.0     /* quantized matvec: RMS over rows of |y - ref| / sigma_r (the rounding model) */

static uint32_t blck_of(uint32_t type) {
  uint32_t blck = 1, bytes = 1;
  lmn_ggml_type_size(type, &blck, &bytes, NULL);
  return blck;
}
static int is_float_type(uint32_t t) {
  return t == LMN_GGML_F32 || t == LMN_GGML_F16 || t == LMN_GGML_BF16;
}

/* ---------------------------------------------------------------- random tensors */

typedef struct tcase {
  lmn_qtensor W;
  double *Wd; /* dequantized, rows x cols */
} tcase;

static void put_half(uint8_t *p, float v) {
  uint16_t h = lmn_f32_to_fp16(v);
  p[0] = (uint8_t)h, p[1] = (uint8_t)(h >> 8);
}

/* Random bytes, then every fp16 scale field overwritten by a finite value of a realistic size. */
static void fill_block(rng *r, uint32_t type, uint8_t *b, uint32_t bytes) {
  for (uint32_t i = 0; i < bytes; i++) b[i] = (uint8_t)rng_next(r);
  const float d = rng_uniform(r, 0.002f, 0.02f) * (rng_int(r, 2) ? 1.0f : -1.0f),
              m = rng_uniform(r, -0.1f, 0.1f);
  switch (type) {
    case LMN_GGML_Q4_1:
    case LMN_GGML_Q5_1: put_half(b + 2, m); /* fall through */
    case LMN_GGML_Q8_0:
    case LMN_GGML_Q4_0:
    case LMN_GGML_Q5_0: put_half(b, d); break;
    case LMN_GGML_Q4_K:
    case LMN_GGML_Q5_K: put_half(b, fabsf(d) / 8), put_half(b + 2, fabsf(m) / 16); break;
    case LMN_GGML_Q6_K: put_half(b + 208, d / 16); break;
    default: break;
  }
}

static void fill_value(rng *r, uint32_t type, uint8_t *p) {
  float v = rng_uniform(r, -1.0f, 1.0f);
  uint32_t bits;
  memcpy(&bits, &v, 4);
  if (type == LMN_GGML_F32) memcpy(p, &v, 4);
  if (type == LMN_GGML_F16) put_half(p, v);
  if (type == LMN_GGML_BF16) p[0] = (uint8_t)(bits >> 16), p[1] = (uint8_t)(bits >> 24);
}

/* A rows x cols tensor of type; pad > 0 adds pad bytes after each row (then rows are misaligned). */
static tcase make_case(rng *r, uint32_t type, int64_t rows, int64_t cols, size_t pad) {
  tcase c;
  lmn_err e;
  CU_ASSERT_FATAL(lmn_qtensor_init(&c.W, type, rows, cols, NULL, &e) == 0);
  c.W.row_bytes += pad;
  uint8_t *data = t_alloc(c.W.row_bytes * (size_t)rows); /* exact size: ASan sees any over-read */
  uint32_t blck, bytes;
  lmn_ggml_type_size(type, &blck, &bytes, NULL);
  for (int64_t i = 0; i < rows; i++)
    for (int64_t b = 0; b < cols / blck; b++) {
      uint8_t *p = data + (size_t)i * c.W.row_bytes + (size_t)b * bytes;
      if (blck == 1)
        fill_value(r, type, p);
      else
        fill_block(r, type, p, bytes);
    }
  c.W.data = data;
  c.Wd = dzeros((size_t)rows * cols);
  float *row = fzeros((size_t)cols);
  for (int64_t i = 0; i < rows; i++) {
    CU_ASSERT_FATAL(lmn_dequant_row(type, data + (size_t)i * c.W.row_bytes, row, cols, &e) == 0);
    for (int64_t j = 0; j < cols; j++) c.Wd[i * cols + j] = row[j];
  }
  return c;
}

/* Activations in [-1, 1] with a few larger values (they set the block scales) and, where there is room,
 * one block of zeros. */
static float *make_x(rng *r, size_t n) {
  float *x = frand(r, n, -1.0f, 1.0f);
  for (size_t i = 0; i < n; i += 97) x[i] *= 4.0f;
  if (n >= 512) memset(x + 256, 0, 32 * sizeof *x);
  return x;
}

/* ---------------------------------------------------------------- references */

typedef struct mv_ref {
  double *y, *abs, *qbound; /* per row: W x, sum|W x|, the int8 bound of qmat.h */
  double *sigma, *wnorm;    /* the rounding model's standard deviation of the int8 error, ||W_r|| */
  double xnorm;
} mv_ref;

static mv_ref ref_matvec(const tcase *c, const float *x) {
  const int64_t R = c->W.rows, C = c->W.cols;
  const int B = is_float_type(c->W.type) ? 0 : (int)(blck_of(c->W.type) == 256 ? 256 : 32);
  mv_ref m = {dzeros(R), dzeros(R), dzeros(R), dzeros(R), dzeros(R), 0.0};
  for (int64_t j = 0; j < C; j++) m.xnorm += (double)x[j] * x[j];
  m.xnorm = sqrt(m.xnorm);
  for (int64_t i = 0; i < R; i++) {
    const double *w = c->Wd + i * C;
    for (int64_t j = 0; j < C; j++) {
      m.y[i] += w[j] * x[j], m.abs[i] += fabs(w[j] * x[j]), m.wnorm[i] += w[j] * w[j];
    }
    m.wnorm[i] = sqrt(m.wnorm[i]);
    for (int64_t b0 = 0; B && b0 < C; b0 += B) { /* x_j - d q_j: within +-d/2, as if uniform (var d^2/12) */
      double amax = 0.0, wsum = 0.0, wsq = 0.0;
      for (int64_t j = b0; j < b0 + B; j++)
        amax = fmax(amax, fabs(x[j])), wsum += fabs(w[j]), wsq += w[j] * w[j];
      m.qbound[i] += amax / 254.0 * wsum;
      m.sigma[i] += (amax / 127.0) * (amax / 127.0) / 12.0 * wsq;
    }
    m.qbound[i] = (1.0 + 1e-4) * m.qbound[i] + F32ACT_TOL * m.abs[i];
    m.sigma[i] = sqrt(m.sigma[i]);
  }
  return m;
}

/* max_r |y_r - ref_r| / scale_r */
static double worst(const float *y, const double *ref, const double *scale, int64_t n) {
  double e = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(y[i] - ref[i]) / fmax(scale[i], 1e-30);
    if (!(d <= e)) e = d;
  }
  return e;
}

/* ---------------------------------------------------------------- paths */

static int first_skip_note = 1;
/* Forces isa; 0 (with a note, once) when this CPU cannot run it. */
static int use_isa(int isa) {
  if (lmn_q_force_isa(isa) == 0) return 1;
  if (first_skip_note) printf("\n    path %s: not available on this CPU, skipped", lmn_q_isa_name(isa));
  first_skip_note = 0;
  return 0;
}

static const char *tname(uint32_t t) {
  return lmn_ggml_type_name(t);
}

/* ---------------------------------------------------------------- tests */

/* lmn_q_dequant through each path's decoders equals lmn_dequant_row bit for bit, whole and in a window. */
static void test_dequant_exact(void) {
  for (int isa = 0; isa < LMN_ISA_COUNT; isa++) {
    if (!use_isa(isa)) continue;
    int bad = 0;
    for (int t = 0; t < N_TYPES; t++) {
      rng r = {100 + t};
      tcase c = make_case(&r, all_types[t], 3, 512, t % 2 ? 3 : 0);
      float *out = fzeros(3 * 512);
      lmn_q_dequant(out, 512, &c.W, 0, 3, 0, 512);
      for (int i = 0; i < 3 * 512; i++)
        bad += out[i] != (float)c.Wd[i] || !signbit(out[i]) != !signbit(c.Wd[i]);
      const int64_t b = blck_of(all_types[t]),
                    c0 = b == 256  ? 256
                         : b == 32 ? 64
                                   : 5,
                    nc = b == 256 ? 256 : 3 * b;
      lmn_q_dequant(out, 300, &c.W, 1, 2, c0, nc);
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < nc; j++) bad += out[i * 300 + j] != (float)c.Wd[(1 + i) * 512 + c0 + j];
      t_free_all();
    }
    char name[80];
    snprintf(name, sizeof name, "%s: every type, bits vs lmn_dequant_row", lmn_q_isa_name(isa));
    printf("\n    %-52s %d differences", name, bad);
    CU_ASSERT(bad == 0);
  }
  lmn_q_force_isa(LMN_ISA_AUTO);
}

/* matvec (int8 activations) within the per-row bound and the RMS tolerance; _f32act within 1e-5. */
static void matvec_case(int isa, uint32_t type, int64_t rows, int64_t cols, double *wq, double *wrms,
                        double *wn, double *wf) {
  rng r = {7 * rows + cols + type};
  tcase c = make_case(&r, type, rows, cols, 0);
  float *x = make_x(&r, (size_t)cols), *y = fzeros((size_t)rows), *yf = fzeros((size_t)rows);
  mv_ref m = ref_matvec(&c, x);
  lmn_q_force_isa(isa);
  lmn_q_matvec(y, &c.W, x, NULL);
  lmn_q_matvec_f32act(yf, &c.W, x, NULL);
  *wf = fmax(*wf, worst(yf, m.y, m.abs, rows));
  *wq = fmax(*wq, worst(y, m.y, m.qbound, rows)); /* F32/F16/BF16: no blocks, the bound is 1e-5 sum|W x| */
  if (is_float_type(type)) return;
  double ss = 0.0, sn = 0.0;
  for (int64_t i = 0; i < rows; i++) {
    const double e = y[i] - m.y[i], n = m.wnorm[i] * m.xnorm / sqrt((double)cols);
    ss += e * e / (m.sigma[i] * m.sigma[i]), sn += e * e / (n * n);
  }
  *wrms = fmax(*wrms, sqrt(ss / (double)rows));
  *wn = fmax(*wn, sqrt(sn / (double)rows));
}

static void test_matvec(void) {
  for (int isa = 0; isa < LMN_ISA_COUNT; isa++) {
    if (!use_isa(isa)) continue;
    for (int t = 0; t < N_TYPES; t++) {
      const uint32_t type = all_types[t];
      const int64_t b = blck_of(type);
      double wq = 0.0, wrms = 0.0, wn = 0.0, wf = 0.0;
      matvec_case(isa, type, 67, 512, &wq, &wrms, &wn, &wf);
      matvec_case(isa, type, 9, 256, &wq, &wrms, &wn, &wf);
      matvec_case(isa, type, 5, b == 256 ? 1536 : b == 32 ? 96 : 67, &wq, &wrms, &wn, &wf);
      t_free_all();
      char name[96];
      snprintf(name, sizeof name, "%s %-5s matvec err / bound (qmat.h), worst row", lmn_q_isa_name(isa),
               tname(type));
      CHECK_ERR(name, wq, 1.0);
      if (!is_float_type(type)) {
        snprintf(name, sizeof name, "%s %-5s matvec RMS err / model sigma", lmn_q_isa_name(isa), tname(type));
        CHECK_ERR(name, wrms, RMS_TOL);
        printf("  (RMS err / (|W_r||x|/sqrt(cols)) %.1e)", wn);
      }
      snprintf(name, sizeof name, "%s %-5s matvec_f32act err / sum|W x|", lmn_q_isa_name(isa), tname(type));
      CHECK_ERR(name, wf, F32ACT_TOL);
    }
  }
  lmn_q_force_isa(LMN_ISA_AUTO);
}

/* 1 vs 2 threads, matvec_rows vs matvec, and the heap path (activations larger than the stack buffer). */
static int threads_case(uint32_t type, int64_t rows, int64_t cols, int n, lmn_pool *p2) {
  rng r = {rows * 31 + cols + type};
  tcase c = make_case(&r, type, rows, cols, 5);
  const size_t ny = (size_t)n * rows;
  float *X = make_x(&r, (size_t)n * cols), *a = fzeros(ny), *b = fzeros(ny), *one = fzeros((size_t)rows);
  int bad = 0;
  for (int f32act = 0; f32act < 2; f32act++) {
    (f32act ? lmn_q_matvec_rows_f32act : lmn_q_matvec_rows)(a, &c.W, X, n, NULL);
    (f32act ? lmn_q_matvec_rows_f32act : lmn_q_matvec_rows)(b, &c.W, X, n, p2);
    bad += memcmp(a, b, ny * sizeof *a) != 0;
    for (int v = 0; v < n; v++) {
      (f32act ? lmn_q_matvec_f32act : lmn_q_matvec)(one, &c.W, X + (size_t)v * cols, p2);
      bad += memcmp(one, a + (size_t)v * rows, (size_t)rows * sizeof *one) != 0;
    }
  }
  return bad;
}

static void test_matvec_threads(void) {
  lmn_err e;
  lmn_pool *p2 = lmn_pool_create(2, &e);
  CU_ASSERT_FATAL(p2 != NULL);
  for (int isa = 0; isa < LMN_ISA_COUNT; isa++) {
    if (!use_isa(isa)) continue;
    int bad = 0;
    for (int t = 0; t < N_TYPES; t++) {
      const uint32_t type = all_types[t];
      bad += threads_case(type, 1000, 256, 3, p2); /* many row chunks */
      bad += threads_case(type, 7, 4096, 8, p2);   /* 8 vectors: quantized on the heap */
      if (blck_of(type) == 32) bad += threads_case(type, 3, 16384, 1, p2); /* one vector on the heap */
      t_free_all();
    }
    char name[96];
    snprintf(name, sizeof name, "%s: 1 vs 2 threads, rows vs matvec, bits", lmn_q_isa_name(isa));
    printf("\n    %-52s %d differences", name, bad);
    CU_ASSERT(bad == 0);
  }
  lmn_q_force_isa(LMN_ISA_AUTO);
  lmn_pool_destroy(p2);
}

/* Every path against the portable one: the same integers per block, so equal up to f32 rounding. */
static void test_matvec_paths_agree(void) {
  for (int t = 0; t < N_TYPES; t++) {
    rng r = {900 + t};
    const uint32_t type = all_types[t];
    tcase c = make_case(&r, type, 67, 512, 0);
    float *x = make_x(&r, 512), *ys = fzeros(67), *ys2 = fzeros(67), *y = fzeros(67);
    mv_ref m = ref_matvec(&c, x);
    double *scale = dzeros(67);
    for (int i = 0; i < 67; i++) scale[i] = m.abs[i] + m.qbound[i];
    lmn_q_force_isa(LMN_ISA_SCALAR);
    lmn_q_matvec(ys, &c.W, x, NULL);
    lmn_q_matvec(ys2, &c.W, x, NULL);
    CU_ASSERT(memcmp(ys, ys2, sizeof(float) * 67) == 0);
    for (int isa = 1; isa < LMN_ISA_COUNT; isa++) {
      if (lmn_q_force_isa(isa) != 0) continue;
      lmn_q_matvec(y, &c.W, x, NULL);
      double *yd = dfrom(ys, 67);
      char name[96];
      snprintf(name, sizeof name, "%s %-5s matvec vs scalar / (sum|Wx| + bound)", lmn_q_isa_name(isa),
               tname(type));
      CHECK_ERR(name, worst(y, yd, scale, 67), 1e-5);
    }
    t_free_all();
  }
  lmn_q_force_isa(LMN_ISA_AUTO);
}

/* The AVX-512 activation quantizer writes the portable one's bytes: random blocks, a zero block, tiny values,
 * and exact halves (amax 127 makes d = 1, so x = k + 0.5 rounds away from zero). */
static void test_act_quantize(void) {
  if (!lmn_q_isa_available(LMN_ISA_AVX512)) {
    printf("\n    path avx512: not available on this CPU, skipped");
    return;
  }
  enum { NB = 64 };
  rng r = {4242};
  float *x = make_x(&r, 32 * NB);
  for (int j = 0; j < 32; j++) x[32 + j] = 0.0f;                                     /* block 1: zeros */
  for (int j = 0; j < 32; j++) x[64 + j] = 1e-30f * (float)(j - 16);                 /* block 2: tiny */
  for (int j = 0; j < 32; j++) x[96 + j] = j == 0 ? 127.0f : (float)(j - 16) + 0.5f; /* block 3: halves */
  x[97] = -0.5f, x[98] = 0.5f, x[99] = -126.5f;
  lmn_q8b *a = t_alloc(NB * sizeof *a), *b = t_alloc(NB * sizeof *b);
  lmn_q8b_quantize(x, a, NB);
  lmn_q8b_quantize_avx512(x, b, NB);
  int bad = 0;
  for (int i = 0; i < NB; i++)
    bad += a[i].d != b[i].d || a[i].s != b[i].s || a[i].sum != b[i].sum || memcmp(a[i].q, b[i].q, 32) != 0;
  printf("\n    %-52s %d of %d blocks differ", "avx512 activation blocks vs portable, bytes", bad, NB);
  CU_ASSERT(bad == 0);
  CU_ASSERT(a[3].q[1] == -1 && a[3].q[2] == 1 && a[3].q[3] == -127 && a[3].q[4] == -12); /* -11.5 -> -12 */
  t_free_all();
}

/* ---------------------------------------------------------------- the X16 layout */

/* ref[n, rows] = A W^T + beta Y0 (dx = 0), or ref[n, cols] = A W + beta Y0 (dx = 1); and the sums of
 * |terms|. */
static void ref_product(const tcase *c, int dx, const float *A, const float *Y0, int N, double beta,
                        double *ref, double *abs) {
  const int64_t R = c->W.rows, C = c->W.cols, K = dx ? R : C, n = dx ? C : R;
  for (int t = 0; t < N; t++)
    for (int64_t o = 0; o < n; o++) {
      double s = beta * Y0[t * n + o], a = fabs(beta * Y0[t * n + o]);
      for (int64_t k = 0; k < K; k++) {
        const double term = A[t * K + k] * c->Wd[dx ? k * C + o : o * C + k];
        s += term, a += fabs(term);
      }
      ref[t * n + o] = s, abs[t * n + o] = fmax(a, 1e-30);
    }
}

/* What the tile path computes (qmat.h): out[N, n] = A[N, K] (W^T for the forward, W for dx) + beta out, each
 * output an fmaf chain over each chunk of the reduction (LMN_Q_TILE_KC at most, equal lengths rounded up to
 * a block for the forward, to 16 rows for dx), the chunks added in order, the first as acc + beta * out. */
static void tile_ref(const tcase *c, const float *A, int N, int dx, float beta, float *out) {
  const int64_t R = c->W.rows, C = c->W.cols, K = dx ? R : C, n = dx ? C : R, step = dx ? 16 : 32;
  const int64_t chunks = (K + LMN_Q_TILE_KC - 1) / LMN_Q_TILE_KC,
                len = ((K + chunks - 1) / chunks + step - 1) / step * step;
  for (int t = 0; t < N; t++)
    for (int64_t o = 0; o < n; o++) {
      float *y = out + t * n + o;
      for (int64_t k0 = 0; k0 < K; k0 += len) {
        float acc = 0.0f;
        for (int64_t k = k0; k < K && k < k0 + len; k++)
          acc = fmaf(A[t * K + k], (float)c->Wd[dx ? k * C + o : o * C + k], acc);
        const float old = beta * *y;
        *y = k0 > 0 ? *y + acc : beta != 0.0f ? acc + old : acc;
      }
    }
}

/* matmul and matmul_dx with W and with its X16 repacking X, N = 3 (beta 0) and 29 (beta 0.5, over two
 * tiles of the kernel): on a path with the tile kernel (tiled) X's bits are tile_ref's and within MM_TOL
 * of the double reference (raises *wm), elsewhere X's bits are W's (the same panels); 1 and 2 threads alike.
 * Returns bit differences. */
static int x16_matmul(const tcase *c, const lmn_qtensor *X, rng *r, int tiled, lmn_pool *p2, double *wm) {
  const int64_t rows = c->W.rows, cols = c->W.cols;
  float *work = fzeros(lmn_q_matmul_work_floats(&c->W, 2) + 1);
  int bad = 0;
  for (int dx = 0; dx < 2; dx++)
    for (int N = 3; N <= 29; N += 26) {
      const float beta = N == 3 ? 0.0f : 0.5f;
      const int64_t in = dx ? rows : cols, n = N * (dx ? cols : rows);
      float *A = frand(r, (size_t)(N * in), -1, 1), *y0 = frand(r, (size_t)n, -1, 1);
      float *yx = fcopy(y0, (size_t)n), *y1 = fcopy(y0, (size_t)n), *ye = fcopy(y0, (size_t)n);
      (dx ? lmn_q_matmul_dx : lmn_q_matmul)(yx, A, X, N, beta, work, p2);
      (dx ? lmn_q_matmul_dx : lmn_q_matmul)(y1, A, X, N, beta, work, NULL);
      bad += memcmp(yx, y1, (size_t)n * sizeof *yx) != 0;
      if (tiled) {
        tile_ref(c, A, N, dx, beta, ye);
        bad += memcmp(yx, ye, (size_t)n * sizeof *yx) != 0;
        double *ref = dzeros((size_t)n), *abs = dzeros((size_t)n);
        ref_product(c, dx, A, y0, N, beta, ref, abs);
        *wm = fmax(*wm, worst(yx, ref, abs, n));
      } else { /* ye: W's result in the file's layout */
        (dx ? lmn_q_matmul_dx : lmn_q_matmul)(ye, A, &c->W, N, beta, work, p2);
        bad += memcmp(yx, ye, (size_t)n * sizeof *yx) != 0;
      }
    }
  return bad;
}

/* One X16 case: W (rows layout) repacked; its dequantization bit-exact with W's; on every path matvec within
 * the qmat.h bound and equal to W's to f32 rounding, _f32act within 1e-5, bits the same on 1 and 2 threads
 * and in matvec_rows; matmul and matmul_dx as x16_matmul checks them. Returns bit differences and raises
 * *wq (bound), *wa (vs rows), *wf (f32act), *wm (the tile path). */
static int x16_case(uint32_t type, int64_t rows, int64_t cols, lmn_pool *p2, double *wq, double *wa,
                    double *wf, double *wm) {
  rng r = {rows * 7 + cols + type};
  tcase c = make_case(&r, type, rows, cols, 0);
  CU_ASSERT_FATAL(lmn_q_x16_possible(&c.W));
  lmn_qtensor X;
  lmn_qtensor_repack(&X, &c.W, t_alloc(c.W.row_bytes * (size_t)rows));
  CU_ASSERT(X.layout == LMN_QL_X16 && !lmn_q_x16_possible(&X));
  const size_t n = (size_t)rows * (size_t)cols;
  float *a = fzeros(n), *b = fzeros(n), *x = make_x(&r, (size_t)cols * 3), *yr = fzeros((size_t)rows * 3);
  float *yx = fzeros((size_t)rows * 3), *y2 = fzeros((size_t)rows * 3);
  int bad = 0;
  mv_ref m = ref_matvec(&c, x);
  double *scale = dzeros((size_t)rows);
  for (int64_t i = 0; i < rows; i++) scale[i] = m.abs[i] + m.qbound[i];
  for (int isa = 0; isa < LMN_ISA_COUNT; isa++) {
    if (lmn_q_force_isa(isa) != 0) continue;
    lmn_q_dequant(a, cols, &c.W, 0, rows, 0, cols);
    lmn_q_dequant(b, cols, &X, 0, rows, 0, cols);
    bad += memcmp(a, b, n * sizeof *a) != 0;
    lmn_q_dequant(a, 100, &c.W, 3, 37, 64, 96); /* a window across groups: a part, a whole one, a part */
    lmn_q_dequant(b, 100, &X, 3, 37, 64, 96);
    for (int i = 0; i < 37; i++) bad += memcmp(a + 100 * i, b + 100 * i, 96 * sizeof *a) != 0;
    lmn_q_matvec(yr, &c.W, x, NULL);
    lmn_q_matvec(yx, &X, x, NULL);
    *wq = fmax(*wq, worst(yx, m.y, m.qbound, rows));
    *wa = fmax(*wa, worst(yx, dfrom(yr, rows), scale, rows));
    lmn_q_matvec(y2, &X, x, p2);
    bad += memcmp(yx, y2, (size_t)rows * sizeof *yx) != 0;
    lmn_q_matvec_rows(y2, &X, x, 3, p2);
    bad += memcmp(yx, y2, (size_t)rows * sizeof *yx) != 0;
    lmn_q_matvec(yr, &X, x + 2 * cols, NULL);
    bad += memcmp(yr, y2 + 2 * rows, (size_t)rows * sizeof *yr) != 0;
    lmn_q_matvec_f32act(yx, &X, x, p2);
    *wf = fmax(*wf, worst(yx, m.y, m.abs, rows));
    bad += x16_matmul(&c, &X, &r, isa == LMN_ISA_AVX512, p2, wm);
  }
  t_free_all();
  return bad;
}

/* Q4_0, Q4_1 and Q8_0 repacked into 16-row groups (what lmn_net_create does on AVX-512 VNNI): SmolLM2's
 * 576 columns, 2560 (rows gathered back in pieces of 64 blocks by the paths without 16-row kernels), and
 * 1600 rows (dx's reduction in two chunks on the tile path). */
static void test_x16(void) {
  static const uint32_t types[] = {LMN_GGML_Q4_0, LMN_GGML_Q4_1, LMN_GGML_Q8_0};
  lmn_err e;
  lmn_pool *p2 = lmn_pool_create(2, &e);
  CU_ASSERT_FATAL(p2 != NULL);
  for (int t = 0; t < 3; t++) {
    double wq = 0.0, wa = 0.0, wf = 0.0, wm = 0.0;
    int bad = x16_case(types[t], 64, 576, p2, &wq, &wa, &wf, &wm) +
              x16_case(types[t], 48, 2560, p2, &wq, &wa, &wf, &wm) + /* the forward's reduction in 2 chunks */
              x16_case(types[t], 1600, 160, p2, &wq, &wa, &wf, &wm); /* and dx's */
    char name[96];
    snprintf(name, sizeof name, "X16 %-5s every path: bit differences", tname(types[t]));
    printf("\n    %-52s %d", name, bad);
    CU_ASSERT(bad == 0);
    snprintf(name, sizeof name, "X16 %-5s matvec err / bound (qmat.h), worst row", tname(types[t]));
    CHECK_ERR(name, wq, 1.0);
    snprintf(name, sizeof name, "X16 %-5s matvec vs rows / (sum|Wx| + bound)", tname(types[t]));
    CHECK_ERR(name, wa, 1e-5);
    snprintf(name, sizeof name, "X16 %-5s matvec_f32act err / sum|W x|", tname(types[t]));
    CHECK_ERR(name, wf, F32ACT_TOL);
    snprintf(name, sizeof name, "X16 %-5s tiled matmul(_dx) err / sum|terms|", tname(types[t]));
    CHECK_ERR(name, wm, MM_TOL);
  }
  lmn_qtensor W;
  CU_ASSERT(lmn_qtensor_init(&W, LMN_GGML_Q4_1, 40, 64, NULL, &e) == 0 && !lmn_q_x16_possible(&W));
  CU_ASSERT(lmn_qtensor_init(&W, LMN_GGML_Q5_1, 32, 64, NULL, &e) == 0 && !lmn_q_x16_possible(&W));
  CU_ASSERT(lmn_qtensor_init(&W, LMN_GGML_Q8_0, 32, 64, NULL, &e) == 0 && lmn_q_x16_possible(&W));
  W.row_bytes += 4; /* padded rows */
  CU_ASSERT(!lmn_q_x16_possible(&W));
  lmn_q_force_isa(LMN_ISA_AUTO);
  lmn_pool_destroy(p2);
}

/* ---------------------------------------------------------------- matmul */

typedef struct mm_out {
  double err;  /* worst |out - ref| / sum|terms| */
  int bitdiff; /* outputs that differ between 1 and 2 threads, or from the first path */
} mm_out;

/* One direction (dx = 0: forward) of one case on the current path: pools of 1 and 2 threads. out0 holds
 * the first path's result (filled when first). */
static void mm_check(const tcase *c, int dx, const float *A, const float *C0, int N, float beta,
                     const double *ref, const double *abs, lmn_pool *p2, float *out0, int first, mm_out *o) {
  const size_t n = (size_t)N * (size_t)(dx ? c->W.cols : c->W.rows);
  float *a = fcopy(C0, n), *b = fcopy(C0, n), *work = fzeros(lmn_q_matmul_work_floats(&c->W, 2) + 1);
  (dx ? lmn_q_matmul_dx : lmn_q_matmul)(a, A, &c->W, N, beta, work, NULL);
  (dx ? lmn_q_matmul_dx : lmn_q_matmul)(b, A, &c->W, N, beta, work, p2);
  o->err = fmax(o->err, worst(a, ref, abs, (int64_t)n));
  o->bitdiff += memcmp(a, b, n * sizeof *a) != 0;
  if (first)
    memcpy(out0, a, n * sizeof *a);
  else
    o->bitdiff += memcmp(a, out0, n * sizeof *a) != 0;
}

static void matmul_shape(uint32_t type, int64_t rows, int64_t cols, int N, float beta, lmn_pool *p2,
                         mm_out *o) {
  rng r = {rows + 3 * cols + 11 * N + type};
  tcase c = make_case(&r, type, rows, cols, 0);
  float *X = make_x(&r, (size_t)N * cols), *dY = frand(&r, (size_t)N * rows, -1, 1);
  float *Y0 = frand(&r, (size_t)N * rows, -1, 1), *dX0 = frand(&r, (size_t)N * cols, -1, 1);
  double *rf = dzeros((size_t)N * rows), *af = dzeros((size_t)N * rows);
  double *rd = dzeros((size_t)N * cols), *ad = dzeros((size_t)N * cols);
  if (beta == 0.0f) { /* beta = 0: the output is only written, whatever it held */
    for (size_t i = 0; i < (size_t)N * rows; i++) Y0[i] = NAN;
    for (size_t i = 0; i < (size_t)N * cols; i++) dX0[i] = NAN;
  }
  ref_product(&c, 0, X, beta == 0.0f ? dY : Y0, N, beta, rf, af); /* dY: any finite stand-in when beta = 0 */
  ref_product(&c, 1, dY, beta == 0.0f ? X : dX0, N, beta, rd, ad);
  float *f0 = fzeros((size_t)N * rows), *d0 = fzeros((size_t)N * cols);
  int first = 1;
  for (int isa = 0; isa < LMN_ISA_COUNT; isa++) {
    if (lmn_q_force_isa(isa) != 0) continue;
    mm_check(&c, 0, X, Y0, N, beta, rf, af, p2, f0, first, &o[0]);
    mm_check(&c, 1, dY, dX0, N, beta, rd, ad, p2, d0, first, &o[1]);
    first = 0;
  }
  t_free_all();
}

/* Shapes that are not multiples of the panels: 67 x 512 (one panel), 1100 x 256 (several row panels in
 * both directions); N = 1, 5, 33; beta 0 (over NaN) and 0.5. */
static void test_matmul(void) {
  lmn_err e;
  lmn_pool *p2 = lmn_pool_create(2, &e);
  CU_ASSERT_FATAL(p2 != NULL);
  for (int t = 0; t < N_TYPES; t++) {
    const uint32_t type = all_types[t];
    mm_out o[2] = {{0}};
    const int Ns[3] = {1, 5, 33};
    for (int k = 0; k < 3; k++) matmul_shape(type, 67, 512, Ns[k], k == 1 ? 0.5f : 0.0f, p2, o);
    matmul_shape(type, 1100, 256, 33, 0.5f, p2, o);
    matmul_shape(type, 1100, 256, 5, 0.0f, p2, o);
    for (int dx = 0; dx < 2; dx++) {
      char name[96];
      snprintf(name, sizeof name, "%-5s %s err / sum|terms|", tname(type), dx ? "matmul_dx" : "matmul   ");
      CHECK_ERR(name, o[dx].err, MM_TOL);
      snprintf(name, sizeof name, "%-5s %s 1 vs 2 threads, all paths, bits", tname(type),
               dx ? "matmul_dx" : "matmul   ");
      printf("\n    %-52s %d differences", name, o[dx].bitdiff);
      CU_ASSERT(o[dx].bitdiff == 0);
    }
  }
  lmn_q_force_isa(LMN_ISA_AUTO);
  lmn_pool_destroy(p2);
}

/* ---------------------------------------------------------------- finite differences */

typedef struct fd_ctx {
  const tcase *c;
  int N;
  double *X, *R; /* L = sum((X W^T) * R) */
} fd_ctx;

static double fd_obj(void *p) {
  const fd_ctx *f = p;
  const int64_t R = f->c->W.rows, C = f->c->W.cols;
  double L = 0.0;
  for (int n = 0; n < f->N; n++)
    for (int64_t i = 0; i < R; i++) {
      double y = 0.0;
      for (int64_t j = 0; j < C; j++) y += f->X[n * C + j] * f->c->Wd[i * C + j];
      L += y * f->R[n * R + i];
    }
  return L;
}

/* dX of L = sum(Y * R), Y = X W^T, is lmn_q_matmul_dx(R): checked by central differences, and beta = 1
 * accumulates (a second call doubles it). */
static void test_dx_finite_differences(void) {
  for (int t = 0; t < N_TYPES; t++) {
    const uint32_t type = all_types[t];
    const int N = 3, rows = 5, cols = blck_of(type) == 256 ? 256 : blck_of(type) == 32 ? 64 : 13;
    rng r = {500 + t};
    tcase c = make_case(&r, type, rows, cols, 0);
    float *X = frand(&r, (size_t)N * cols, -1, 1), *R = frand(&r, (size_t)N * rows, -1, 1);
    float *dX = fzeros((size_t)N * cols), *dX2 = fzeros((size_t)N * cols);
    float *work = fzeros(lmn_q_matmul_work_floats(&c.W, 1) + 1);
    lmn_q_matmul_dx(dX, R, &c.W, N, 0.0f, work, NULL);
    lmn_q_matmul_dx(dX2, R, &c.W, N, 1.0f, work, NULL);
    lmn_q_matmul_dx(dX2, R, &c.W, N, 1.0f, work, NULL);
    fd_ctx f = {&c, N, dfrom(X, (size_t)N * cols), dfrom(R, (size_t)N * rows)};
    double *g = dzeros((size_t)N * cols);
    fd_grad(f.X, (size_t)N * cols, fd_obj, &f, g);
    char name[96];
    snprintf(name, sizeof name, "%-5s matmul_dx vs finite differences", tname(type));
    CHECK_BWD(name, dX, g, (size_t)N * cols);
    snprintf(name, sizeof name, "%-5s matmul_dx beta=1 twice = 2x", tname(type));
    CHECK_DOUBLED(name, dX2, dX, (size_t)N * cols);
    t_free_all();
  }
}

/* ---------------------------------------------------------------- real weights */

#define SMOL "models/SmolLM2-135M-Instruct.Q4_1.gguf"

/* A view of the first (at most) 256 rows of t, dequantized for the reference. */
static tcase real_case(const lmn_gguf *g, const lmn_gguf_tensor *t) {
  tcase c;
  lmn_err e;
  CU_ASSERT_FATAL(lmn_qtensor_init(&c.W, t->type, t->ne[1] < 256 ? t->ne[1] : 256, t->ne[0],
                                   lmn_gguf_tensor_data(g, t, &e), &e) == 0);
  const int64_t R = c.W.rows, C = c.W.cols;
  c.Wd = dzeros((size_t)(R * C));
  float *row = fzeros((size_t)C);
  for (int64_t i = 0; i < R; i++) {
    CU_ASSERT_FATAL(lmn_dequant_row(t->type, (const uint8_t *)c.W.data + i * c.W.row_bytes, row, C, &e) == 0);
    for (int64_t j = 0; j < C; j++) c.Wd[i * C + j] = row[j];
  }
  return c;
}

/* matvec (int8 and f32 activations) and matmul on the path in use, against the reference. */
static void real_check(const lmn_gguf_tensor *t, const tcase *c, int isa) {
  rng r = {77};
  const int64_t R = c->W.rows, C = c->W.cols;
  float *x = make_x(&r, (size_t)(5 * C)), *y = fzeros((size_t)R), *Y = fzeros((size_t)(5 * R));
  mv_ref m = ref_matvec(c, x);
  lmn_q_matvec(y, &c->W, x, NULL);
  char name[96];
  snprintf(name, sizeof name, "%s %-5s %-22.22s matvec / bound", lmn_q_isa_name(isa), tname(t->type),
           t->name);
  CHECK_ERR(name, worst(y, m.y, m.qbound, R), 1.0);
  lmn_q_matvec_f32act(y, &c->W, x, NULL);
  snprintf(name, sizeof name, "%s %-5s %-22.22s f32act", lmn_q_isa_name(isa), tname(t->type), t->name);
  CHECK_ERR(name, worst(y, m.y, m.abs, R), F32ACT_TOL);
  double *ref = dzeros((size_t)(5 * R)), *abs = dzeros((size_t)(5 * R));
  ref_product(c, 0, x, Y, 5, 0.0, ref, abs);
  lmn_q_matmul(Y, x, &c->W, 5, 0.0f, fzeros(lmn_q_matmul_work_floats(&c->W, 1) + 1), NULL);
  snprintf(name, sizeof name, "%s %-5s %-22.22s matmul N=5", lmn_q_isa_name(isa), tname(t->type), t->name);
  CHECK_ERR(name, worst(Y, ref, abs, 5 * R), MM_TOL);
}

static void test_real_weights(void) {
  lmn_gguf *g = NULL;
  lmn_err e;
  if (access(SMOL, R_OK) != 0 || lmn_gguf_open(SMOL, LMN_GGUF_MMAP, &g, &e) != 0) {
    printf("\n    %s not found (make models): skipped", SMOL);
    return;
  }
  uint64_t seen = 0; /* one matrix per type */
  for (size_t i = 0; i < lmn_gguf_n_tensors(g); i++) {
    const lmn_gguf_tensor *t = lmn_gguf_tensor_at(g, i);
    if (t->n_dims != 2 || !lmn_q_supported(t->type) || (seen >> t->type & 1)) continue;
    seen |= 1ull << t->type;
    tcase c = real_case(g, t);
    for (int isa = 0; isa < LMN_ISA_COUNT; isa++)
      if (lmn_q_force_isa(isa) == 0) real_check(t, &c, isa);
    t_free_all();
  }
  CU_ASSERT(seen != 0);
  lmn_q_force_isa(LMN_ISA_AUTO);
  lmn_gguf_close(g);
}

/* ---------------------------------------------------------------- API */

static void test_api(void) {
  lmn_err e;
  lmn_qtensor W;
  for (int t = 0; t < N_TYPES; t++) CU_ASSERT(lmn_q_supported(all_types[t]));
  CU_ASSERT(!lmn_q_supported(LMN_GGML_Q2_K) && !lmn_q_supported(LMN_GGML_Q8_1) && !lmn_q_supported(99));
  CU_ASSERT(lmn_qtensor_init(&W, LMN_GGML_Q4_K, 4, 576, NULL, &e) == -1);
  CU_ASSERT(strstr(e.msg, "576") != NULL);
  CU_ASSERT(lmn_qtensor_init(&W, LMN_GGML_Q2_K, 4, 256, NULL, &e) == -1);
  CU_ASSERT(strstr(e.msg, "Q2_K") != NULL);
  CU_ASSERT(lmn_qtensor_init(&W, LMN_GGML_Q4_1, 4, 576, NULL, &e) == 0 && W.row_bytes == 18 * 20);
  CU_ASSERT(lmn_q_force_isa(7) == -1 && lmn_q_isa_available(LMN_ISA_SCALAR));
  CU_ASSERT(strcmp(lmn_q_isa_name(LMN_ISA_AVX512), "avx512") == 0 && strcmp(lmn_q_isa_name(9), "?") == 0);
  printf("\n    path chosen on this CPU: %s", lmn_q_isa_name(lmn_q_isa()));
  /* F32 goes straight to sgemm: no scratch; the others: a panel per thread */
  CU_ASSERT(lmn_qtensor_init(&W, LMN_GGML_F32, 10, 64, NULL, &e) == 0 &&
            lmn_q_matmul_work_floats(&W, 4) == 0);
  CU_ASSERT(lmn_qtensor_init(&W, LMN_GGML_Q8_0, 10, 64, NULL, &e) == 0);
  CU_ASSERT(lmn_q_matmul_work_floats(&W, 2) == 2 * lmn_q_matmul_work_floats(&W, 1));
  /* empty shapes: N = 0 writes nothing; cols = 0 gives zeros (matvec) or beta * Y (matmul) */
  float y[4] = {1, 2, 3, 4}, x[1] = {0};
  lmn_q_matmul(y, x, &W, 0, 0.0f, NULL, NULL);
  CU_ASSERT(y[0] == 1.0f);
  CU_ASSERT(lmn_qtensor_init(&W, LMN_GGML_Q8_0, 2, 0, x, &e) == 0);
  lmn_q_matmul(y, x, &W, 2, 0.5f, NULL, NULL);
  CU_ASSERT(y[0] == 0.5f && y[3] == 2.0f);
  lmn_q_matvec(y, &W, x, NULL);
  CU_ASSERT(y[0] == 0.0f && y[1] == 0.0f && y[2] == 1.5f);
  CU_ASSERT(lmn_qtensor_init(&W, LMN_GGML_Q8_0, 0, 32, x, &e) == 0);
  float dx[32];
  for (int i = 0; i < 32; i++) dx[i] = 4.0f * (float)(i + 1);
  lmn_q_matmul_dx(dx, x, &W, 1, 0.25f, NULL, NULL); /* rows = 0: dX = beta dX */
  CU_ASSERT(dx[0] == 1.0f && dx[31] == 32.0f);
}

/* The precision of the panel products: lmn_q_matmul follows the process's (bgemm.h), lmn_q_matmul_as(prec)
 * takes prec whatever the process's is (the head's forward stays f32 in bf16 training): the same bits as the
 * call made in that precision, and bf16 products differ from f32 ones. */
static void test_matmul_precision(void) {
  rng r = {4242};
  const int N = 9;
  tcase c = make_case(&r, LMN_GGML_Q8_0, 70, 256, 0);
  float *X = make_x(&r, (size_t)N * 256), *work = fzeros(lmn_q_matmul_work_floats(&c.W, 1) + 1);
  float *f32 = fzeros((size_t)N * 70), *bf = fzeros((size_t)N * 70), *y = fzeros((size_t)N * 70);
  lmn_q_matmul(f32, X, &c.W, N, 0.0f, work, NULL);
  lmn_set_gemm_precision(LMN_PREC_BF16);
  lmn_q_matmul(bf, X, &c.W, N, 0.0f, work, NULL);
  lmn_q_matmul_as(LMN_PREC_F32, y, X, &c.W, N, 0.0f, work, NULL);
  lmn_set_gemm_precision(LMN_PREC_F32);
  CU_ASSERT(memcmp(y, f32, (size_t)N * 70 * sizeof *y) == 0);
  CU_ASSERT(memcmp(bf, f32, (size_t)N * 70 * sizeof *y) != 0);
  lmn_q_matmul_as(LMN_PREC_BF16, y, X, &c.W, N, 0.0f, work, NULL);
  CU_ASSERT(memcmp(y, bf, (size_t)N * 70 * sizeof *y) == 0);
  t_free_all();
}

/* bf16 products with kept weights on the AMX path (one A packed for every panel, lmn_bgemm_pack_a): the
 * bits of one lmn_bgemm with the whole dequantized W, forward and input gradient, where the input
 * gradient's row panels of W (1024 rows for 32-value blocks, the AMX path's K block) cut the reduction as
 * one product does: two and three panels, the last short, and a K-quant in one panel. Where AMX is missing
 * there is no packing to test. */
static void test_matmul_bf16_panels(void) {
  if (lmn_bgemm_force_isa(LMN_BG_AMX)) {
    printf("\n    path amx: not on this machine, skipped");
    return;
  }
  static const struct {
    uint32_t type;
    int rows, cols;
  } cases[] = {{LMN_GGML_Q4_1, 1100, 96}, {LMN_GGML_Q8_0, 2100, 64}, {LMN_GGML_Q4_K, 500, 256}};
  rng r = {777};
  const int N = 37;
  lmn_set_gemm_precision(LMN_PREC_BF16);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const int R = cases[i].rows, C = cases[i].cols;
    tcase c = make_case(&r, cases[i].type, R, C, 0);
    float *Wf = fzeros((size_t)R * C), *work = fzeros(lmn_q_matmul_work_floats(&c.W, 1) + 1);
    lmn_q_dequant(Wf, C, &c.W, 0, R, 0, C);
    float *X = make_x(&r, (size_t)N * C), *dY = make_x(&r, (size_t)N * R);
    float *y = fzeros((size_t)N * R), *yr = fzeros((size_t)N * R);
    float *dx = make_x(&r, (size_t)N * C), *dxr = fcopy(dx, (size_t)N * C);
    lmn_q_matmul(y, X, &c.W, N, 0.0f, work, NULL);
    lmn_bgemm(0, 1, N, R, C, 1.0f, X, C, Wf, C, 0.0f, yr, R);
    CU_ASSERT(memcmp(y, yr, (size_t)N * R * sizeof *y) == 0);
    lmn_q_matmul_dx(dx, dY, &c.W, N, 0.5f, work, NULL);
    lmn_bgemm(0, 0, N, C, R, 1.0f, dY, R, Wf, C, 0.5f, dxr, C);
    CU_ASSERT(memcmp(dx, dxr, (size_t)N * C * sizeof *dx) == 0);
    t_free_all();
  }
  lmn_set_gemm_precision(LMN_PREC_F32);
  lmn_bgemm_force_isa(LMN_BG_AUTO);
}

static CU_TestInfo tests[] = {
    {"dequantization: every type and path, bit-exact", test_dequant_exact},
    {"matvec: int8 and f32 activations vs double reference", test_matvec},
    {"matvec: threads, rows, heap activations: identical bits", test_matvec_threads},
    {"matvec: every path agrees with the portable one", test_matvec_paths_agree},
    {"X16 layout (16-row groups): dequant, matvec, matmul on every path", test_x16},
    {"activation quantization: the AVX-512 bytes equal the portable ones", test_act_quantize},
    {"matmul, matmul_dx: vs double reference, bits across threads/paths", test_matmul},
    {"matmul_dx: finite differences, accumulation", test_dx_finite_differences},
    {"matmul: the precision of the products, f32 forced in a bf16 process", test_matmul_precision},
    {"matmul in bf16 on AMX: one packed A for every panel, the bits of one product", test_matmul_bf16_panels},
    {"real weights (SmolLM2-135M Q4_1 file): matvec, matmul", test_real_weights},
    {"api: types, tensors, paths, scratch, empty shapes", test_api},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("qmat: quantized-weight kernels", tests)
