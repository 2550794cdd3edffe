/* bgemm.c: lmn_bgemm's choice of path, its portable path (operands rounded to bf16 in f32 copies, then
 * cblas_sgemm), the per-thread scratch, and lmn_gemm with the process's precision (bgemm.h). The AMX path
 * lives in bgemm_amx.c. */
#include "bgemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgemm_impl.h"

/* ---- per-thread scratch ---- */

typedef struct scratch { /* per slot (bgemm_impl.h) */
  void *p[LMN_BG_SLOTS];
  size_t bytes[LMN_BG_SLOTS];
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *s) {
  if (!s) return;
  for (int i = 0; i < LMN_BG_SLOTS; i++) free(((scratch *)s)->p[i]);
  free(s);
}
static void scratch_key_init(void) {
  if (pthread_key_create(&scratch_key, scratch_free) != 0) abort(); /* only when the process is out of keys */
}

void *lmn_bgemm_scratch(size_t bytes) {
  return lmn_bgemm_scratch_in(LMN_BG_SLOT_CALL, bytes);
}

void *lmn_bgemm_scratch_in(int slot, size_t bytes) {
  pthread_once(&scratch_once, scratch_key_init);
  scratch *s = pthread_getspecific(scratch_key);
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s || pthread_setspecific(scratch_key, s) != 0) {
      free(s);
      return NULL;
    }
  }
  if (s->bytes[slot] < bytes) {
    size_t want = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, want);
    if (!p) return NULL;
    free(s->p[slot]);
    s->p[slot] = p;
    s->bytes[slot] = want;
  }
  return s->p[slot];
}

/* ---- rounding ---- */

float lmn_bf16_round(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    u |= 0x00400000u; /* NaN: quiet, keep the sign and the high payload */
  else
    u += 0x7fffu +
         ((u >> 16) & 1u); /* to nearest, ties to even (an overflow becomes infinity, as it should) */
  u &= 0xffff0000u;
  memcpy(&x, &u, sizeof x);
  return x;
}

#define PORTABLE_K 256 /* k per block of the portable path: its scratch is (M + N) * PORTABLE_K floats */

/* dst[r * cols + c] = bf16(element (r, c0 + c) of op(X)), r < rows, c < cols (X row-major, leading dimension
 * ld; trans: op(X) = X^T) */
static void round_block(float *dst, const float *X, int ld, int trans, int rows, int c0, int cols) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++)
      dst[(size_t)r * cols + c] =
          lmn_bf16_round(trans ? X[(size_t)(c0 + c) * ld + r] : X[(size_t)r * ld + c0 + c]);
}

/* The portable path, by blocks of PORTABLE_K k: op(A)[:, k0:k0+kb] and op(B)[k0:k0+kb, :] copied rounded,
 * then one cblas_sgemm each (the first with beta, the rest adding). */
static void bgemm_portable(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc) {
  int kc = K < PORTABLE_K ? K : PORTABLE_K;
  size_t need = ((size_t)M + (size_t)N) * (size_t)kc;
  float *a = lmn_bgemm_scratch(need * sizeof(float));
  if (!a) {
    fprintf(stderr, "lmn_bgemm: out of memory for %zu floats of scratch\n", need);
    abort(); /* no way to report from a GEMM; as malloc failing inside OpenBLAS */
  }
  float *b = a + (size_t)M * kc;
  for (int k0 = 0; k0 < K; k0 += PORTABLE_K) {
    int kb = K - k0 < PORTABLE_K ? K - k0 : PORTABLE_K;
    round_block(a, A, lda, transA, M, k0, kb);  /* [M][kb] */
    round_block(b, B, ldb, !transB, N, k0, kb); /* [N][kb]: op(B)^T's rows */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, kb, alpha, a, kb, b, kb, k0 == 0 ? beta : 1.0f,
                C, ldc);
  }
}

/* ---- the path in use ---- */

static atomic_int isa_in_use = -1;

int lmn_bgemm_isa_available(int isa) {
  switch (isa) {
    case LMN_BG_PORTABLE: return 1;
    case LMN_BG_AMX: return lmn_bgemm_amx_ready();
    default: return 0;
  }
}

static int best_isa(void) {
  return lmn_bgemm_isa_available(LMN_BG_AMX) ? LMN_BG_AMX : LMN_BG_PORTABLE;
}

/* The path LMN_BGEMM names (portable, amx) when it runs here, else the best one. */
static int chosen_isa(void) {
  const char *want = getenv("LMN_BGEMM");
  for (int isa = 0; want && isa < LMN_BG_COUNT; isa++)
    if (!strcmp(want, lmn_bgemm_isa_name(isa)) && lmn_bgemm_isa_available(isa)) return isa;
  return best_isa();
}

int lmn_bgemm_isa(void) {
  int isa = atomic_load(&isa_in_use);
  if (isa < 0) {
    isa = chosen_isa();
    atomic_store(&isa_in_use, isa);
  }
  return isa;
}

int lmn_bgemm_force_isa(int isa) {
  if (isa == LMN_BG_AUTO) isa = best_isa();
  if (!lmn_bgemm_isa_available(isa)) return -1;
  atomic_store(&isa_in_use, isa);
  return 0;
}

const char *lmn_bgemm_isa_name(int isa) {
  static const char *const names[LMN_BG_COUNT] = {"portable", "amx"};
  return isa >= 0 && isa < LMN_BG_COUNT ? names[isa] : "?";
}

void lmn_bgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) { /* an empty sum: C = beta C */
    for (int m = 0; m < M; m++)
      for (int n = 0; n < N; n++)
        C[(size_t)m * ldc + n] = beta == 0.0f ? 0.0f : beta * C[(size_t)m * ldc + n];
    return;
  }
  if (lmn_bgemm_isa() == LMN_BG_AMX &&
      lmn_bgemm_amx(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == 0)
    return;
  bgemm_portable(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

int lmn_bgemm_pack_a(int M, int K, const float *A, int lda, lmn_bgemm_a *out) {
  if (M <= 0 || K <= 0 || lmn_bgemm_isa() != LMN_BG_AMX) return -1;
  const size_t bytes = lmn_bgemm_amx_a_bytes(M, K);
  void *p = bytes <= LMN_BG_PACK_A_MAX ? lmn_bgemm_scratch_in(LMN_BG_SLOT_A, bytes) : NULL;
  if (!p) return -1;
  lmn_bgemm_amx_pack_a(p, M, K, A, lda);
  *out = (lmn_bgemm_a){p, M, K};
  return 0;
}

int lmn_bgemm_with_a(const lmn_bgemm_a *a, int k0, int K, int transB, int N, float alpha, const float *B,
                     int ldb, float beta, float *C, int ldc) {
  if (N <= 0 || K <= 0 || k0 < 0 || k0 + K > a->K) return -1;
  return lmn_bgemm_amx_with_a(a, k0, K, transB, N, alpha, B, ldb, beta, C, ldc);
}

/* ---- precision ---- */

static atomic_int precision = LMN_PREC_F32;

lmn_precision lmn_gemm_precision(void) {
  return (lmn_precision)atomic_load(&precision);
}
void lmn_set_gemm_precision(lmn_precision p) {
  atomic_store(&precision, (int)p);
}
const char *lmn_precision_name(lmn_precision p) {
  return p == LMN_PREC_BF16 ? "bf16" : "f32";
}

void lmn_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
  lmn_gemm_as(lmn_gemm_precision(), transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void lmn_gemm_as(lmn_precision p, int transA, int transB, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  if (p == LMN_PREC_BF16)
    lmn_bgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N,
                K, alpha, A, lda, B, ldb, beta, C, ldc);
}
