/* qmat_avx2.c: the AVX2 + FMA + F16C path of the qmat kernels, compiled for that target by the pragma below
 * (liblmn itself is built without -march; qmat.c calls in here only after __builtin_cpu_supports said yes):
 * the f32 template (qmat_f32.h) on 8-float vectors (fp16 through vcvtph2ps, bf16 by a 16-bit shift) and the
 * integer template (qmat_x86.h) with vpmaddubsw + vpmaddwd products. Empty outside x86. */
#if defined(__x86_64__) || defined(__i386__)
#if defined(__clang__) /* clang takes the target as an attribute on every function below */
#include <immintrin.h>
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#endif

#define LMN_QD_HALF(p) _cvtsh_ss((unsigned short)((p)[0] | (p)[1] << 8))
#include "qmat_impl.h"

typedef __m256 qf_vf;
#define QF_VL 8
#define QF_ZERO _mm256_setzero_ps()
#define QF_LOADX(p) _mm256_loadu_ps(p)
#define QF_LOADF(p) _mm256_loadu_ps((const float *)(const void *)(p))
#define QF_LOADH(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define QF_LOADB(p)    \
  _mm256_castsi256_ps( \
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))), 16))
#define QF_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define QF_ADD(a, b) _mm256_add_ps((a), (b))
#define QF_HSUM(v) qx_hsum(v)
static inline float qx_hsum(__m256 v);
#include "qmat_f32.h"

#define QX_DOT_US(u, q) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (q)), _mm256_set1_epi16(1))
#define QX_DOT_US_SC(u, q, sc) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (q)), (sc))
#include "qmat_x86.h"

int lmn_qk_ops_avx2(uint32_t type, lmn_qk_ops *ops) {
  return qx_fill(type, ops);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
#include "qmat_impl.h"
int lmn_qk_ops_avx2(uint32_t type, lmn_qk_ops *ops) {
  (void)type, (void)ops;
  return 0;
}
#endif
