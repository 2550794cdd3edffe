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
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), \
                             apply_to = function)
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

/* ---- activations ---- */

/* 16 levels: v * inv rounded to nearest with halves away from zero (lroundf's rule: the fraction p - trunc(p)
 * is exact, and |fraction| >= 0.5 steps away from zero), clamped to +-127. */
static inline __m512i q8_levels(__m512 v, __m512 inv) {
  const __m512 p = _mm512_mul_ps(v, inv), t = _mm512_roundscale_ps(p, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 away =
      _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(p, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(p), _mm512_set1_epi32(INT32_MIN));
  const __m512 step = _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_castps_si512(_mm512_set1_ps(1.0f))));
  const __m512i q = _mm512_cvttps_epi32(_mm512_mask_add_ps(t, away, t, step));
  return _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
}

void lmn_q8b_quantize_avx512(const float *x, lmn_q8b *out, int64_t nb) {
  for (int64_t b = 0; b < nb; b++, x += 32) {
    const __m512 lo = _mm512_loadu_ps(x), hi = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
    const float d = amax / 127.0f, inv = d > 0.0f ? 1.0f / d : 0.0f;
    const __m512i qlo = q8_levels(lo, _mm512_set1_ps(inv)), qhi = q8_levels(hi, _mm512_set1_ps(inv));
    _mm_storeu_si128((__m128i *)(void *)out[b].q, _mm512_cvtepi32_epi8(qlo));
    _mm_storeu_si128((__m128i *)(void *)(out[b].q + 16), _mm512_cvtepi32_epi8(qhi));
    const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qlo, qhi));
    out[b].d = d;
    out[b].s = d * (float)sum;
    out[b].sum = sum;
  }
}

/* ---- 16 rows at once from X16 tiles (qmat.h) ----
 * One 512-bit register holds 4 weights of each of 16 rows, so vpdpbusd meets them with 4 activation bytes
 * broadcast to all lanes and leaves one int32 sum per row: no horizontal sums, and each activation block is
 * read once for 16 rows. Levels are unsigned (Q4_0's nibbles without their -8, Q8_0's values + 128); the
 * offset comes off as offset * sum(q). The integers per block and row are the portable path's; only the
 * order of f32 additions differs (two chains per term, by block parity). */
static inline __m512i x16_bcast(const int8_t *q) {
  int32_t v;
  memcpy(&v, q, 4);
  return _mm512_set1_epi32(v);
}

LMN_QD_INLINE void x16_dot(uint32_t type, const uint8_t *group, const lmn_q8b *x, int64_t cols, float *y) {
  const int64_t nb = cols / 32;
  const size_t tile = 16 * (size_t)lmn_qd_bytes(type), head = lmn_qd_x16_head(type);
  const int offset = type == LMN_GGML_Q8_0 ? 128 : type == LMN_GGML_Q4_0 ? 8 : 0;
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()},
         accm[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t *t = group + (size_t)b * tile, *qs = t + head;
    const int8_t *q = x[b].q;
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    if (type == LMN_GGML_Q8_0) {
      for (int c = 0; c < 8; c += 2) {
        s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(qs + 64 * c), x16_bcast(q + 4 * c));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(qs + 64 * c + 64), x16_bcast(q + 4 * c + 4));
      }
    } else {
      for (int c = 0; c < 4; c++) {
        const __m512i v = _mm512_loadu_si512(qs + 64 * c);
        s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(v, m4), x16_bcast(q + 4 * c));
        s1 =
            _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4), x16_bcast(q + 16 + 4 * c));
      }
    }
    __m512i si = _mm512_add_epi32(s0, s1);
    if (offset) si = _mm512_sub_epi32(si, _mm512_set1_epi32(offset * x[b].sum));
    const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)t)),
                                   _mm512_set1_ps(x[b].d));
    acc[b & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), d, acc[b & 1]);
    if (type == LMN_GGML_Q4_1)
      accm[b & 1] =
          _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(t + 32))),
                          _mm512_set1_ps(x[b].s), accm[b & 1]);
  }
  _mm512_storeu_ps(y, _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(accm[0], accm[1])));
}

/* 16 bytes of one row from 4 chunks of a tile (p: its first 4 bytes), in registers (4 stores and one wide
 * load would stall on store forwarding). */
static inline __m128i x16_row_piece(const uint8_t *p) {
  int32_t a, b, c, d;
  memcpy(&a, p, 4), memcpy(&b, p + 64, 4), memcpy(&c, p + 128, 4), memcpy(&d, p + 192, 4);
  return _mm_insert_epi32(_mm_insert_epi32(_mm_insert_epi32(_mm_cvtsi32_si128(a), b, 1), c, 2), d, 3);
}

/* A row's 32 weights from its 16 bytes lo (Q8_0: values 0-15; Q4: all 32 as nibbles) and hi (Q8_0's
 * values 16-31), with its scale d and min m broadcast, in the operations of lmn_dequant_row (L d, then + m:
 * a product and a sum, never fused), to y. */
LMN_QD_INLINE void x16_row_out(uint32_t type, __m128i lo, __m128i hi, __m512 d, __m512 m, float *y) {
  __m512 a, b;
  if (type == LMN_GGML_Q8_0) {
    const __m128i flip = _mm_set1_epi8((char)0x80);
    a = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_xor_si128(lo, flip)));
    b = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_xor_si128(hi, flip)));
  } else {
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m512i l = _mm512_cvtepu8_epi32(_mm_and_si128(lo, m4)),
            h = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(lo, 4), m4));
    if (type == LMN_GGML_Q4_0)
      l = _mm512_sub_epi32(l, _mm512_set1_epi32(8)), h = _mm512_sub_epi32(h, _mm512_set1_epi32(8));
    a = _mm512_cvtepi32_ps(l), b = _mm512_cvtepi32_ps(h);
  }
  a = _mm512_mul_ps(a, d), b = _mm512_mul_ps(b, d);
  if (type == LMN_GGML_Q4_1) a = _mm512_add_ps(a, m), b = _mm512_add_ps(b, m);
  _mm512_storeu_ps(y, a);
  _mm512_storeu_ps(y + 16, b);
}

/* Blocks [b0, b0 + nb) of row k of an X16 group to f32 (x16_row_out): the row's 4-byte pieces gathered
 * from the tile's chunks. */
LMN_QD_INLINE void x16_deq(uint32_t type, const uint8_t *group, int k, int64_t b0, int64_t nb, float *y) {
  const size_t tile = 16 * (size_t)lmn_qd_bytes(type), head = lmn_qd_x16_head(type);
  for (int64_t b = 0; b < nb; b++, y += 32) {
    const uint8_t *t = group + (size_t)(b0 + b) * tile, *qs = t + head + 4 * k;
    const __m128i hi = type == LMN_GGML_Q8_0 ? x16_row_piece(qs + 256) : _mm_setzero_si128();
    const __m512 m =
        type == LMN_GGML_Q4_1 ? _mm512_set1_ps(LMN_QD_HALF(t + 32 + 2 * k)) : _mm512_setzero_ps();
    x16_row_out(type, x16_row_piece(qs), hi, _mm512_set1_ps(LMN_QD_HALF(t + 2 * k)), m, y);
  }
}

/* The 16 weights (one per row) at bit `shift` of each 32-bit lane of a tile chunk v, as lmn_dequant_row
 * makes them (L d, then + m: a product and a sum, never fused): Q4_0/Q4_1 the nibble there, Q8_0 (v already
 * xor 0x80 per byte) the signed byte there. */
LMN_QD_INLINE __m512 x16_weights(uint32_t type, __m512i v, int shift, __m512 d, __m512 m) {
  __m512i L;
  if (type == LMN_GGML_Q8_0)
    L = _mm512_srai_epi32(_mm512_slli_epi32(v, 24 - shift), 24);
  else
    L = _mm512_sub_epi32(_mm512_and_si512(_mm512_srli_epi32(v, shift), _mm512_set1_epi32(0x0f)),
                         _mm512_set1_epi32(type == LMN_GGML_Q4_0 ? 8 : 0));
  const __m512 w = _mm512_mul_ps(_mm512_cvtepi32_ps(L), d);
  return type == LMN_GGML_Q4_1 ? _mm512_add_ps(w, m) : w;
}

/* Tile b's 16 scales, and mins (Q4_1; else zeros). */
LMN_QD_INLINE const uint8_t *x16_tile(uint32_t type, const uint8_t *group, int64_t b, __m512 *d, __m512 *m) {
  const uint8_t *t = group + (size_t)b * 16 * (size_t)lmn_qd_bytes(type);
  *d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)t));
  *m = type == LMN_GGML_Q4_1 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(t + 32)))
                             : _mm512_setzero_ps();
  return t + lmn_qd_x16_head(type);
}

/* Chunk c of a tile's values (Q8_0's flipped back to signed bytes). */
LMN_QD_INLINE __m512i x16_chunk(uint32_t type, const uint8_t *qs, int c) {
  const __m512i v = _mm512_loadu_si512(qs + 64 * c);
  return type == LMN_GGML_Q8_0 ? _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80)) : v;
}

/* The 16 rows of a group against f32 x: each weight dequantized bit-exactly (x16_weights), then one FMA
 * with x broadcast; byte j of every 32-bit lane is value j of a chunk. Two FMA chains (the low and the high
 * nibbles; Q8_0's chunks by parity). */
LMN_QD_INLINE void x16_dotf(uint32_t type, const uint8_t *group, const float *x, int64_t cols, float *y) {
  const int64_t nb = cols / 32;
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()}, d, m;
  for (int64_t b = 0; b < nb; b++, x += 32) {
    const uint8_t *qs = x16_tile(type, group, b, &d, &m);
    if (type == LMN_GGML_Q8_0) {
      for (int c = 0; c < 8; c++) {
        const __m512i v = x16_chunk(type, qs, c);
        for (int j = 0; j < 4; j++)
          acc[c & 1] =
              _mm512_fmadd_ps(x16_weights(type, v, 8 * j, d, m), _mm512_set1_ps(x[4 * c + j]), acc[c & 1]);
      }
      continue;
    }
    for (int c = 0; c < 4; c++) {
      const __m512i v = x16_chunk(type, qs, c);
      for (int j = 0; j < 4; j++) {
        acc[0] = _mm512_fmadd_ps(x16_weights(type, v, 8 * j, d, m), _mm512_set1_ps(x[4 * c + j]), acc[0]);
        acc[1] =
            _mm512_fmadd_ps(x16_weights(type, v, 8 * j + 4, d, m), _mm512_set1_ps(x[16 + 4 * c + j]), acc[1]);
      }
    }
  }
  _mm512_storeu_ps(y, _mm512_add_ps(acc[0], acc[1]));
}

/* Blocks [b0, b0 + nb) of a group's 16 rows, k-major into one half of a 32-wide panel (lmn_qk_packk16_fn):
 * value 4c + j of a block (and 16 + 4c + j, the high nibbles) is byte j of chunk c for all 16 rows. */
LMN_QD_INLINE void x16_packk(uint32_t type, const uint8_t *group, int64_t b0, int64_t nb, float *dst) {
  __m512 d, m;
  for (int64_t b = 0; b < nb; b++, dst += 32 * 32) {
    const uint8_t *qs = x16_tile(type, group, b0 + b, &d, &m);
    for (int c = 0; c < (type == LMN_GGML_Q8_0 ? 8 : 4); c++) {
      const __m512i v = x16_chunk(type, qs, c);
      for (int j = 0; j < 4; j++) {
        _mm512_storeu_ps(dst + 32 * (4 * c + j), x16_weights(type, v, 8 * j, d, m));
        if (type != LMN_GGML_Q8_0)
          _mm512_storeu_ps(dst + 32 * (16 + 4 * c + j), x16_weights(type, v, 8 * j + 4, d, m));
      }
    }
  }
}

/* Four chunks of a tile (64 bytes each, 4 bytes per row) regrouped by row: v[j], 128-bit lane L, holds the
 * 16 bytes of row 4L + j (its bytes from chunk 0, 1, 2, 3 in turn). */
LMN_QD_INLINE void x16_rows4(const uint8_t *q, __m512i v[4]) {
  const __m512i a = _mm512_loadu_si512(q), b = _mm512_loadu_si512(q + 64), c = _mm512_loadu_si512(q + 128),
                d = _mm512_loadu_si512(q + 192);
  const __m512i ab0 = _mm512_unpacklo_epi32(a, b), ab1 = _mm512_unpackhi_epi32(a, b),
                cd0 = _mm512_unpacklo_epi32(c, d), cd1 = _mm512_unpackhi_epi32(c, d);
  v[0] = _mm512_unpacklo_epi64(ab0, cd0), v[1] = _mm512_unpackhi_epi64(ab0, cd0);
  v[2] = _mm512_unpacklo_epi64(ab1, cd1), v[3] = _mm512_unpackhi_epi64(ab1, cd1);
}

/* Block b of the 16 rows of an X16 group, row-major (lmn_qk_packr16_fn): row r's 32 values at dst + r ld,
 * bit-exact with x16_deq, the rows regrouped for all 16 at once instead of gathered one by one. */
LMN_QD_INLINE void x16_packr(uint32_t type, const uint8_t *group, int64_t b, float *dst, int64_t ld) {
  __m512 d, m;
  const uint8_t *qs = x16_tile(type, group, b, &d, &m);
  __m512i lo[4], hi[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                          _mm512_setzero_si512()};
  x16_rows4(qs, lo);
  if (type == LMN_GGML_Q8_0) x16_rows4(qs + 256, hi);
#define X16_ROW(L)                                                                                    \
  for (int j = 0; j < 4; j++) {                                                                       \
    const __m512i r = _mm512_set1_epi32(4 * L + j);                                                   \
    x16_row_out(type, L ? _mm512_extracti32x4_epi32(lo[j], L) : _mm512_castsi512_si128(lo[j]),        \
                L ? _mm512_extracti32x4_epi32(hi[j], L) : _mm512_castsi512_si128(hi[j]),              \
                _mm512_permutexvar_ps(r, d), type == LMN_GGML_Q4_1 ? _mm512_permutexvar_ps(r, m) : m, \
                dst + (4 * L + j) * ld);                                                              \
  }
  X16_ROW(0) X16_ROW(1) X16_ROW(2) X16_ROW(3)
#undef X16_ROW
}

#define X16_INSTANCE(T)                                                                     \
  static void x16_dot_##T(const uint8_t *group, const lmn_q8b *x, int64_t cols, float *y) { \
    x16_dot(LMN_GGML_##T, group, x, cols, y);                                               \
  }                                                                                         \
  static void x16_deq_##T(const uint8_t *group, int k, int64_t b0, int64_t nb, float *y) {  \
    x16_deq(LMN_GGML_##T, group, k, b0, nb, y);                                             \
  }                                                                                         \
  static void x16_dotf_##T(const uint8_t *group, const float *x, int64_t cols, float *y) {  \
    x16_dotf(LMN_GGML_##T, group, x, cols, y);                                              \
  }                                                                                         \
  static void x16_packk_##T(const uint8_t *group, int64_t b0, int64_t nb, float *dst) {     \
    x16_packk(LMN_GGML_##T, group, b0, nb, dst);                                            \
  }                                                                                         \
  static void x16_packr_##T(const uint8_t *group, int64_t b, float *dst, int64_t ld) {      \
    x16_packr(LMN_GGML_##T, group, b, dst, ld);                                             \
  }
X16_INSTANCE(Q4_0)
X16_INSTANCE(Q4_1)
X16_INSTANCE(Q8_0)
#undef X16_INSTANCE

int lmn_qk_ops_avx512(uint32_t type, lmn_qk_ops *ops) {
  if (!qx_fill(type, ops)) return 0;
  switch (type) { /* the X16 kernels (dotq16, dotf16, deq16 stay NULL for the other types) */
#define X16_CASE(T)               \
  case LMN_GGML_##T:              \
    ops->dotq16 = x16_dot_##T;    \
    ops->dotf16 = x16_dotf_##T;   \
    ops->deq16 = x16_deq_##T;     \
    ops->packk16 = x16_packk_##T; \
    ops->packr16 = x16_packr_##T; \
    ops->tile = lmn_qtile_avx512; \
    break;
    X16_CASE(Q4_0)
    X16_CASE(Q4_1)
    X16_CASE(Q8_0)
#undef X16_CASE
        default : break;
  }
  return 1;
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
void lmn_q8b_quantize_avx512(const float *x, lmn_q8b *out, int64_t nb) { /* never chosen outside x86 */
  lmn_q8b_quantize(x, out, nb);
}
#endif
