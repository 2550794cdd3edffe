/* qtile_avx512.c: the f32 tile kernel of qmat.c's fused products with X16 weights (qmat_impl.h,
 * lmn_qk_tile_fn): C[M, n <= 32] = A[M, K] Bp[K, 32] over a 32-wide panel that qmat.c dequantized from the
 * weights, 12 rows of A at a time in 24 accumulators (two 16-float halves per row), A's elements broadcast
 * straight from its rows (no packing). Each output is one FMA chain over k = 0 .. K-1 in order, so its bits
 * do not depend on M, on the row's place in A or on the panel's place in W. Compiled for AVX-512F and called
 * only through the AVX-512 path's kernel table. Empty outside x86. */
#if defined(__x86_64__) || defined(__i386__)
#if defined(__clang__)
#include <immintrin.h>
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,avx512f")
#include <immintrin.h>
#endif

#include "qmat_impl.h"

#define TILE_MR 12 /* rows of A per tile: 24 accumulators, 2 panel halves and a broadcast in 32 registers */

/* Rows [0, mr) of a tile, mr <= TILE_MR a constant after inlining. */
LMN_QD_INLINE void tile_rows(int mr, int64_t K, const float *A, int64_t lda, const float *Bp, float *C,
                             int64_t ldc, __mmask16 m0, __mmask16 m1, float beta, int accumulate) {
  __m512 c0[TILE_MR], c1[TILE_MR];
#pragma GCC unroll 12
  for (int i = 0; i < TILE_MR; i++)
    if (i < mr) c0[i] = c1[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
    const __m512 b0 = _mm512_loadu_ps(Bp + 32 * k), b1 = _mm512_loadu_ps(Bp + 32 * k + 16);
#pragma GCC unroll 12
    for (int i = 0; i < TILE_MR; i++)
      if (i < mr) {
        const __m512 a = _mm512_set1_ps(A[i * lda + k]);
        c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
        c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
      }
  }
  const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int i = 0; i < TILE_MR; i++)
    if (i < mr) {
      float *c = C + i * ldc;
      if (accumulate || beta != 0.0f) { /* C + acc, or acc + beta C: two roundings, never fused */
        const __m512 o0 = _mm512_maskz_loadu_ps(m0, c), o1 = _mm512_maskz_loadu_ps(m1, c + 16);
        c0[i] = accumulate ? _mm512_add_ps(o0, c0[i]) : _mm512_add_ps(c0[i], _mm512_mul_ps(vb, o0));
        c1[i] = accumulate ? _mm512_add_ps(o1, c1[i]) : _mm512_add_ps(c1[i], _mm512_mul_ps(vb, o1));
      }
      _mm512_mask_storeu_ps(c, m0, c0[i]);
      _mm512_mask_storeu_ps(c + 16, m1, c1[i]);
    }
}

void lmn_qtile_avx512(int M, int64_t K, const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc,
                      int n, float beta, int accumulate) {
  const __mmask16 m0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1),
                  m1 = n >= 32  ? 0xffff
                       : n > 16 ? (__mmask16)((1u << (n - 16)) - 1)
                                : 0;
  int i = 0;
  for (; i + TILE_MR <= M; i += TILE_MR)
    tile_rows(TILE_MR, K, A + (int64_t)i * lda, lda, Bp, C + (int64_t)i * ldc, ldc, m0, m1, beta, accumulate);
  switch (M - i) { /* the last rows, each count its own unrolled copy */
#define TILE_TAIL(r)                                                                                     \
  case r:                                                                                                \
    tile_rows(r, K, A + (int64_t)i * lda, lda, Bp, C + (int64_t)i * ldc, ldc, m0, m1, beta, accumulate); \
    break;
    TILE_TAIL(1)
    TILE_TAIL(2) TILE_TAIL(3) TILE_TAIL(4) TILE_TAIL(5) TILE_TAIL(6) TILE_TAIL(7) TILE_TAIL(8) TILE_TAIL(9)
        TILE_TAIL(10) TILE_TAIL(11)
#undef TILE_TAIL
            default : break;
  }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
#include "qmat_impl.h"
void lmn_qtile_avx512(int M, int64_t K, const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc,
                      int n, float beta, int accumulate) { /* never chosen outside x86 */
  (void)M, (void)K, (void)A, (void)lda, (void)Bp, (void)C, (void)ldc, (void)n, (void)beta, (void)accumulate;
}
#endif
