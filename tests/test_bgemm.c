/* test_bgemm.c: the bf16 GEMM (runtime/bgemm.c, bgemm_amx.c) on every path this CPU runs (AMX is reported as
 * skipped where the CPU or the kernel lacks it), against a double-precision product of the operands rounded
 * to bf16 by lmn_bf16_round:
 *   |C - ref| <= (K + 2) 2^-24 (|alpha| sum_k |a_k b_k| + |beta C0|)   per element
 * (the worst-case bound of f32 summation; the products of two bf16 values are exact in f32). Shapes cover the
 * tile edges (1, 15, 16, 17, 31, 33 ...) and every blocking (M, N > 256, K > 1024), both transposes of both
 * operands, leading dimensions larger than the rows, alpha/beta (beta 0 never reads C: C starts as NaN),
 * repeatability (same bits twice), NaN and infinity propagation, lmn_gemm following the precision, and
 * products with an A packed once (lmn_bgemm_pack_a) giving lmn_bgemm's bits. */
#include <cblas.h>

#include "bgemm.h"
#include "test_k_common.h"

static const int paths[] = {LMN_BG_PORTABLE, LMN_BG_AMX};
#define N_PATHS (int)(sizeof paths / sizeof paths[0])

static float op_at(const float *X, int ld, int trans, int r, int c) {
  return trans ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

/* One product on the path in use against the reference; returns the largest error / bound. */
static double check_one(rng *g, int ta, int tb, int M, int N, int K, float alpha, float beta, int pad) {
  int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
  float *A = frand(g, (size_t)(ta ? K : M) * lda, -1.0f, 1.0f),
        *B = frand(g, (size_t)(tb ? N : K) * ldb, -1.0f, 1.0f);
  float *C0 = frand(g, (size_t)M * ldc, -1.0f, 1.0f), *C = fcopy(C0, (size_t)M * ldc);
  if (beta == 0.0f)
    for (size_t i = 0; i < (size_t)M * ldc; i++) C[i] = NAN;
  lmn_bgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  double worst = 0.0;
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double s = 0.0, sa = 0.0;
      for (int k = 0; k < K; k++) {
        double p = (double)lmn_bf16_round(op_at(A, lda, ta, m, k)) * lmn_bf16_round(op_at(B, ldb, tb, k, n));
        s += p, sa += fabs(p);
      }
      double c0 = beta == 0.0f ? 0.0 : C0[(size_t)m * ldc + n], ref = alpha * s + beta * c0;
      double bound = (K + 2) * 0x1p-24 * (fabs(alpha) * sa + fabs(beta * c0)) + 1e-30;
      double e = fabs(C[(size_t)m * ldc + n] - ref) / bound;
      if (!(e <= worst)) worst = e; /* NaN counts as a failure */
    }
  for (int m = 0; m < M; m++) /* the padding past N is never written */
    for (int n = N; n < ldc; n++)
      if (memcmp(&C[(size_t)m * ldc + n], beta == 0.0f ? &(float){NAN} : &C0[(size_t)m * ldc + n], 4))
        worst = INFINITY;
  return worst;
}

static void test_rounding(void) {
  const struct {
    uint32_t in, out;
  } cases[] = {
      {0x3f800000u, 0x3f800000u}, /* 1 */
      {0x3f808000u, 0x3f800000u}, /* a tie rounds to even (down) */
      {0x3f818000u, 0x3f820000u}, /* a tie rounds to even (up) */
      {0x3f808001u, 0x3f810000u}, /* past the tie: up */
      {0x7f7fffffu, 0x7f800000u}, /* the largest float rounds to infinity */
      {0xff800000u, 0xff800000u}, /* -infinity */
      {0x00000001u, 0x00000000u}, /* the smallest denormal rounds to zero */
      {0x80000000u, 0x80000000u}, /* -0 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    float x, y;
    uint32_t u;
    memcpy(&x, &cases[i].in, 4);
    y = lmn_bf16_round(x);
    memcpy(&u, &y, 4);
    CU_ASSERT_EQUAL(u, cases[i].out);
  }
  float nan = lmn_bf16_round(NAN);
  CU_ASSERT(isnan(nan));
  uint32_t snan = 0x7f800001u; /* a signalling NaN whose payload sits in the low half: still a NaN */
  float s;
  memcpy(&s, &snan, 4);
  CU_ASSERT(isnan(lmn_bf16_round(s)));
}

static void test_products(void) {
  static const int dims[][3] = {{1, 1, 1},   {15, 17, 31},  {16, 16, 32},   {17, 33, 33},    {31, 1, 64},
                                {33, 47, 5}, {64, 64, 100}, {128, 96, 576}, {300, 290, 1100}};
  int ran = 0;
  for (int p = 0; p < N_PATHS; p++) {
    if (lmn_bgemm_force_isa(paths[p])) {
      printf("\n    path %s: not on this machine, skipped", lmn_bgemm_isa_name(paths[p]));
      continue;
    }
    ran++;
    rng g = {1234u + (unsigned)p};
    double worst = 0.0;
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
      for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
          int big = dims[d][0] * dims[d][1] * dims[d][2] > 1000000;
          double e = check_one(&g, ta, tb, dims[d][0], dims[d][1], dims[d][2], 1.0f, 0.0f, 0);
          if (!big) {
            double e2 = check_one(&g, ta, tb, dims[d][0], dims[d][1], dims[d][2], -0.5f, 1.0f, 3);
            double e3 = check_one(&g, ta, tb, dims[d][0], dims[d][1], dims[d][2], 2.0f, 0.25f, 1);
            e = fmax(e, fmax(e2, e3));
          }
          if (!(e <= 1.0))
            printf("\n    %s ta %d tb %d %dx%dx%d: error %.3g of the bound", lmn_bgemm_isa_name(paths[p]), ta,
                   tb, dims[d][0], dims[d][1], dims[d][2], e);
          worst = fmax(worst, e);
          t_free_all();
        }
    printf("\n    path %s: largest error %.3g of the bound", lmn_bgemm_isa_name(paths[p]), worst);
    CU_ASSERT(worst <= 1.0);
  }
  CU_ASSERT(ran >= 1);
  lmn_bgemm_force_isa(LMN_BG_AUTO);
}

/* Same call twice: same bits; a NaN or infinity in A reaches exactly its row of C. */
static void test_repeat_and_specials(void) {
  for (int p = 0; p < N_PATHS; p++) {
    if (lmn_bgemm_force_isa(paths[p])) continue;
    rng g = {77};
    int M = 40, N = 50, K = 70;
    float *A = frand(&g, (size_t)M * K, -1, 1), *B = frand(&g, (size_t)K * N, -1, 1);
    float *C1 = fzeros((size_t)M * N), *C2 = fzeros((size_t)M * N);
    lmn_bgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C1, N);
    lmn_bgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C2, N);
    CU_ASSERT(memcmp(C1, C2, (size_t)M * N * sizeof *C1) == 0);
    A[3 * K + 5] = NAN;
    A[7 * K + 9] = INFINITY;
    lmn_bgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C1, N);
    int ok = 1;
    for (int m = 0; m < M; m++)
      for (int n = 0; n < N; n++) {
        float c = C1[(size_t)m * N + n];
        if (m == 3)
          ok &= isnan(c);
        else if (m == 7)
          ok &= isinf(c) || isnan(c); /* inf * b: +-inf, or NaN where a bf16 b is 0 */
        else
          ok &= isfinite(c);
      }
    CU_ASSERT(ok);
    t_free_all();
  }
  lmn_bgemm_force_isa(LMN_BG_AUTO);
}

/* An A packed once (lmn_bgemm_pack_a) gives every product the bits of lmn_bgemm on the same operands: all
 * of A's columns against B in both layouts (K across the 1024-column blocks), and column ranges as qmat.c's
 * input gradient takes them (from a block boundary; within one block; up to A's last column); a range off
 * the blocks is refused and computes nothing. Only where the AMX path runs: elsewhere the packing is
 * refused. */
static void test_packed_a(void) {
  if (lmn_bgemm_force_isa(LMN_BG_AMX)) {
    lmn_bgemm_a a;
    float x = 1.0f;
    CU_ASSERT_EQUAL(lmn_bgemm_pack_a(1, 1, &x, 1, &a), -1);
    printf("\n    path amx: not on this machine, skipped");
    return;
  }
  static const int shapes[][3] = {{1, 16, 1}, {37, 45, 70}, {128, 96, 576}, {70, 40, 2500}}; /* M, N, K */
  static const int ranges[][2] = {{0, -1}, {1024, 1024}, {32, 64}, {2048, 452}, {1024, 1476}};
  rng g = {99};
  int equal = 1, refused = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    float *A = frand(&g, (size_t)M * K, -1, 1), *B = frand(&g, (size_t)K * N, -1, 1);
    float *C0 = frand(&g, (size_t)M * N, -1, 1), *C = fcopy(C0, (size_t)M * N), *R = fcopy(C0, (size_t)M * N);
    lmn_bgemm_a pa;
    CU_ASSERT_EQUAL_FATAL(lmn_bgemm_pack_a(M, K, A, K, &pa), 0);
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
      int k0 = ranges[r][0], k = ranges[r][1] < 0 ? K : ranges[r][1];
      if (k0 + k > K) continue;
      for (int tb = 0; tb < 2; tb++) { /* B [k, N] or, transposed, [N, k] (ld K either way) */
        int ldb = tb ? K : N;
        const float *b = tb ? B + k0 : B + (size_t)k0 * N;
        memcpy(C, C0, (size_t)M * N * sizeof *C), memcpy(R, C0, (size_t)M * N * sizeof *R);
        CU_ASSERT_EQUAL(lmn_bgemm_with_a(&pa, k0, k, tb, N, 1.0f, b, ldb, 0.5f, C, N), 0);
        lmn_bgemm(0, tb, M, N, k, 1.0f, A + k0, K, b, ldb, 0.5f, R, N);
        equal &= memcmp(C, R, (size_t)M * N * sizeof *C) == 0;
      }
    }
    if (K > 1024) { /* from column 1000 over the block boundary at 1024: not the blocks of a product */
      memcpy(C, C0, (size_t)M * N * sizeof *C);
      refused += lmn_bgemm_with_a(&pa, 992, 64, 0, N, 1.0f, B + (size_t)992 * N, N, 0.0f, C, N) == -1;
      refused += memcmp(C, C0, (size_t)M * N * sizeof *C) == 0;
    }
    t_free_all();
  }
  CU_ASSERT(equal);
  CU_ASSERT_EQUAL(refused, 2);
  lmn_bgemm_force_isa(LMN_BG_AUTO);
}

/* lmn_gemm: cblas_sgemm bit for bit in f32, lmn_bgemm bit for bit in bf16. */
static void test_precision_switch(void) {
  rng g = {5};
  int M = 20, N = 30, K = 40;
  float *A = frand(&g, (size_t)M * K, -1, 1), *B = frand(&g, (size_t)N * K, -1, 1);
  float *C = fzeros((size_t)M * N), *R = fzeros((size_t)M * N);
  CU_ASSERT_EQUAL(lmn_gemm_precision(), LMN_PREC_F32);
  lmn_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 0.0f, R, N);
  CU_ASSERT(memcmp(C, R, (size_t)M * N * sizeof *C) == 0);
  lmn_set_gemm_precision(LMN_PREC_BF16);
  lmn_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
  lmn_bgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, R, N);
  CU_ASSERT(memcmp(C, R, (size_t)M * N * sizeof *C) == 0);
  lmn_set_gemm_precision(LMN_PREC_F32);
  CU_ASSERT_STRING_EQUAL(lmn_precision_name(LMN_PREC_BF16), "bf16");
  t_free_all();
}

static CU_TestInfo tests[] = {
    {"bf16 rounding: nearest even, overflow, NaN", test_rounding},
    {"products on every path within the f32 summation bound", test_products},
    {"repeatable bits, NaN and infinity stay in their row", test_repeat_and_specials},
    {"lmn_gemm follows the precision", test_precision_switch},
    {"an A packed once: the bits of lmn_bgemm, ranges on its blocks", test_packed_a},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("bgemm", tests)
