/* qmat_avx512.c: the AVX-512 path of the qmat kernels (AVX512F/BW/VL + VNNI, with AVX2/FMA/F16C), compiled
 * for that target by the pragma below and called only when __builtin_cpu_supports reports every one of
 * those features: the f32 template (qmat_f32.h) on 16-float vectors, and the integer template
 * (qmat_x86.h) on 256-bit vectors with vpdpbusd (VNNI) for the plain u8 x s8 dot products (the scaled
 * ones of the K formats keep vpmaddubsw + vpmaddwd, which apply the int16 scales in the same step).
 * AVX512_BF16 (vdpbf16ps) is not used: it would round x to bf16, and converting bf16 weights to f32 is
 * one shift, so it buys nothing on a memory-bound product. Empty outside x86. */
#if defined(__x86_64__) || defined(__i386__)
#if defined(__clang__) /* clang takes the target as an attribute on every function below */
#include <immintrin.h>
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#include <immintrin.h>
#endif

#define LMN_QD_HALF(p) _cvtsh_ss((unsigned short)((p)[0] | (p)[1] << 8))
#include "qmat_impl.h"

typedef __m512 qf_vf;
#define QF_VL 16
#define QF_ZERO _mm512_setzero_ps()
#define QF_LOADX(p) _mm512_loadu_ps(p)
#define QF_LOADF(p) _mm512_loadu_ps((const void *)(p))
#define QF_LOADH(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define QF_LOADB(p)    \
  _mm512_castsi512_ps( \
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(p))), 16))
#define QF_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define QF_ADD(a, b) _mm512_add_ps((a), (b))
#define QF_HSUM(v) _mm512_reduce_add_ps(v)
#include "qmat_f32.h"

#define QX_DOT_US(u, q) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (q))
#define QX_DOT_US_SC(u, q, sc) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (q)), (sc))
#include "qmat_x86.h"

int lmn_qk_ops_avx512(uint32_t type, lmn_qk_ops *ops) {
  return qx_fill(type, ops);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
#include "qmat_impl.h"
int lmn_qk_ops_avx512(uint32_t type, lmn_qk_ops *ops) {
  (void)type, (void)ops;
  return 0;
}
#endif
