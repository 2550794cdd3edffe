/* qmat_impl.h: internals shared by qmat.c and the per-ISA kernel files (qmat_scalar.c, qmat_avx2.c,
 * qmat_avx512.c): the quantized activation blocks, the kernel table each path fills, and the block decoders
 * every path shares. A decoder turns one weight block into integer levels L and per-group floats a, b with
 * w = a * L + b, evaluated in exactly the operations of dequant.c, so dequantizing through it is bit-exact;
 * the integer kernels use the same levels (or their unsigned form plus an offset) against int8 activations.
 * Each per-ISA file may define LMN_QD_HALF (fp16 bits at p -> float) before including this header. */
#ifndef LMN_QMAT_IMPL_H
#define LMN_QMAT_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dequant.h"

#ifndef LMN_QD_HALF
#define LMN_QD_HALF(p) lmn_fp16_to_f32((uint16_t)((p)[0] | (p)[1] << 8))
#endif
#define LMN_QD_INLINE static inline __attribute__((always_inline))

/* Activations for the 32-value formats: x_j ~ d * q[j]; s = d * sum(q) (for the formats with a min); sum =
 * sum(q) (for the X16 kernels, whose levels are unsigned: the offset of Q4_0 and Q8_0 comes off as sum). */
typedef struct lmn_q8b {
  float d, s;
  int8_t q[32];
  int32_t sum;
} lmn_q8b;

/* Activations for the K formats: x_j ~ d * q[j]; bsums[g] = sum of q over values 16g .. 16g + 15. */
typedef struct lmn_q8k {
  float d;
  int16_t bsums[16];
  int8_t q[256];
} lmn_q8k;

/* One path's kernels for one weight type. dotq: a row (cols values) against quantized activations (NULL
 * for F32/F16/BF16); dotf: a row against f32 activations; deq: n values (whole blocks) to f32. */
typedef float (*lmn_qk_dotq_fn)(const uint8_t *w, const void *xq, int64_t cols);
typedef float (*lmn_qk_dotf_fn)(const uint8_t *w, const float *x, int64_t cols);
typedef void (*lmn_qk_deq_fn)(const uint8_t *w, float *dst, int64_t n);
/* dotq16: the 16 rows of an X16 group (qmat.h) against quantized activations into y[16] (NULL where the
 * path has none: rows are then gathered back and go through dotq). */
typedef void (*lmn_qk_dotq16_fn)(const uint8_t *group, const lmn_q8b *xq, int64_t cols, float *y);
/* deq16: blocks [b0, b0 + nb) of row k of an X16 group to f32 (bit-exact with deq), or NULL. dotf16: the 16
 * rows of a group against f32 activations (the weights dequantized bit-exactly, as dotf), or NULL. */
typedef void (*lmn_qk_deq16_fn)(const uint8_t *group, int k, int64_t b0, int64_t nb, float *dst);
typedef void (*lmn_qk_dotf16_fn)(const uint8_t *group, const float *x, int64_t cols, float *y);
/* packk16: blocks [b0, b0 + nb) of the 16 rows of an X16 group dequantized bit-exactly (as deq16) and laid
 * out k-major in one half of a 32-wide panel: value k of row r at dst[32 (k - 32 b0) + r]; or NULL. */
typedef void (*lmn_qk_packk16_fn)(const uint8_t *group, int64_t b0, int64_t nb, float *dst);
/* packr16: block b of the 16 rows of an X16 group dequantized bit-exactly, row-major: row r's values at
 * dst + r ld; or NULL. */
typedef void (*lmn_qk_packr16_fn)(const uint8_t *group, int64_t b, float *dst, int64_t ld);
/* tile: C[M, n] = A[M, K] Bp[K, 32] on its first n <= 32 columns (Bp 32 floats per k, A and C row-major
 * with strides lda, ldc), one FMA chain over k in order per output; stored as is, or as acc + beta C when
 * beta != 0, or as C + acc when accumulate (two roundings, never fused); or NULL (qtile_avx512.c). */
typedef void (*lmn_qk_tile_fn)(int M, int64_t K, const float *A, int64_t lda, const float *Bp, float *C,
                               int64_t ldc, int n, float beta, int accumulate);
typedef struct lmn_qk_ops {
  lmn_qk_dotq_fn dotq;
  lmn_qk_dotf_fn dotf;
  lmn_qk_deq_fn deq;
  lmn_qk_dotq16_fn dotq16;
  lmn_qk_deq16_fn deq16;
  lmn_qk_dotf16_fn dotf16;
  lmn_qk_packk16_fn packk16;
  lmn_qk_packr16_fn packr16;
  lmn_qk_tile_fn tile;
} lmn_qk_ops;

/* Activations x[32 nb] to nb blocks of 8 bits (d = amax / 127, levels rounded to nearest, halves away from
 * zero): the portable quantizer (qmat.c), and the AVX-512 one, which writes the same bytes. */
void lmn_q8b_quantize(const float *x, lmn_q8b *out, int64_t nb);
void lmn_q8b_quantize_avx512(const float *x, lmn_q8b *out, int64_t nb);
void lmn_qtile_avx512(int M, int64_t K, const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc,
                      int n, float beta, int accumulate);

/* Fill ops for a supported type and return 1; 0 when the type is not supported or the path is not built
 * (the AVX2 and AVX-512 files are empty outside x86). They do not check the CPU. */
int lmn_qk_ops_scalar(uint32_t type, lmn_qk_ops *ops);
int lmn_qk_ops_avx2(uint32_t type, lmn_qk_ops *ops);
int lmn_qk_ops_avx512(uint32_t type, lmn_qk_ops *ops);

/* ---------------------------------------------------------------- type traits */

LMN_QD_INLINE int lmn_qd_blck(uint32_t type) {
  switch (type) {
    case LMN_GGML_F32:
    case LMN_GGML_F16:
    case LMN_GGML_BF16: return 1;
    case LMN_GGML_Q4_K:
    case LMN_GGML_Q5_K:
    case LMN_GGML_Q6_K: return 256;
    default: return 32;
  }
}

LMN_QD_INLINE int lmn_qd_bytes(uint32_t type) {
  switch (type) {
    case LMN_GGML_F32: return 4;
    case LMN_GGML_F16:
    case LMN_GGML_BF16: return 2;
    case LMN_GGML_Q8_0: return 34;
    case LMN_GGML_Q4_0: return 18;
    case LMN_GGML_Q4_1: return 20;
    case LMN_GGML_Q5_0: return 22;
    case LMN_GGML_Q5_1: return 24;
    case LMN_GGML_Q4_K: return 144;
    case LMN_GGML_Q5_K: return 176;
    default: return 210; /* Q6_K */
  }
}

LMN_QD_INLINE int lmn_qd_is_k(uint32_t type) {
  return type == LMN_GGML_Q4_K || type == LMN_GGML_Q5_K || type == LMN_GGML_Q6_K;
}
LMN_QD_INLINE int lmn_qd_has_min(uint32_t type) {
  return type == LMN_GGML_Q4_1 || type == LMN_GGML_Q5_1;
}

/* Bytes before the nibbles or values in an X16 tile (qmat.h): the 16 scales, and for Q4_1 the 16 mins. */
LMN_QD_INLINE size_t lmn_qd_x16_head(uint32_t type) {
  return type == LMN_GGML_Q4_1 ? 64 : 32;
}

LMN_QD_INLINE uint32_t lmn_qd_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---------------------------------------------------------------- 32-value blocks */

/* Levels of a Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 block: w_j = L_j * d (+ m for Q4_1/Q5_1, else m = 0). L is signed
 * (offset removed) for the types without a min, unsigned 0..15 / 0..31 for Q4_1 / Q5_1. */
LMN_QD_INLINE void lmn_qd_legacy(uint32_t type, const uint8_t *b, int8_t *L, float *d, float *m) {
  *d = LMN_QD_HALF(b);
  *m = lmn_qd_has_min(type) ? LMN_QD_HALF(b + 2) : 0.0f;
  if (type == LMN_GGML_Q8_0) {
    memcpy(L, b + 2, 32);
    return;
  }
  const int five = type == LMN_GGML_Q5_0 || type == LMN_GGML_Q5_1;
  const uint8_t *qs = b + (type == LMN_GGML_Q4_0   ? 2
                           : type == LMN_GGML_Q4_1 ? 4
                           : type == LMN_GGML_Q5_0 ? 6
                                                   : 8);
  const uint32_t qh = five ? lmn_qd_le32(b + (type == LMN_GGML_Q5_0 ? 2 : 4)) : 0;
  const int off = type == LMN_GGML_Q4_0 ? 8 : type == LMN_GGML_Q5_0 ? 16 : 0;
  for (int j = 0; j < 16; j++) {
    L[j] = (int8_t)(((qs[j] & 0x0f) | (((qh >> j) & 1) << 4)) - off);
    L[j + 16] = (int8_t)(((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - off);
  }
}

/* ---------------------------------------------------------------- K super-blocks */

/* Decoded K super-block: ngroups groups of glen values (Q4_K, Q5_K: 8 x 32 with scales and mins;
 * Q6_K: 16 x 16 with signed scales); w_j = (d * sc_g) * L_j - (dmin * mn_g). L: 0..15 (Q4_K), 0..31
 * (Q5_K), -32..31 (Q6_K, offset removed). */
typedef struct lmn_qd_kblock {
  float d, dmin;
  int ngroups, glen;
  int16_t sc[16], mn[16];
  int8_t L[256];
} lmn_qd_kblock;

/* ggml's get_scale_min_k4: 6-bit scale and min of group j from the 12 packed bytes q. */
LMN_QD_INLINE void lmn_qd_scale_min_k4(int j, const uint8_t *q, int16_t *sc, int16_t *m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (int16_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *m = (int16_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

LMN_QD_INLINE void lmn_qd_k45(int five, const uint8_t *b, lmn_qd_kblock *k) {
  const uint8_t *qh = b + 16, *ql = b + (five ? 48 : 16);
  k->d = LMN_QD_HALF(b);
  k->dmin = LMN_QD_HALF(b + 2);
  k->ngroups = 8;
  k->glen = 32;
  for (int g = 0; g < 8; g++) lmn_qd_scale_min_k4(g, b + 4, &k->sc[g], &k->mn[g]);
  for (int c = 0; c < 4; c++, ql += 32) /* 64 values per chunk: low nibbles, then high nibbles */
    for (int l = 0; l < 32; l++) {
      const int h0 = five ? ((qh[l] >> (2 * c)) & 1) << 4 : 0,
                h1 = five ? ((qh[l] >> (2 * c + 1)) & 1) << 4 : 0;
      k->L[64 * c + l] = (int8_t)((ql[l] & 0x0f) | h0);
      k->L[64 * c + 32 + l] = (int8_t)((ql[l] >> 4) | h1);
    }
}

LMN_QD_INLINE void lmn_qd_k6(const uint8_t *b, lmn_qd_kblock *k) {
  k->d = LMN_QD_HALF(b + 208);
  k->dmin = 0.0f;
  k->ngroups = 16;
  k->glen = 16;
  for (int g = 0; g < 16; g++) k->sc[g] = (int8_t)b[192 + g], k->mn[g] = 0;
  for (int h = 0; h < 2; h++) {
    const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
    int8_t *L = k->L + 128 * h;
    for (int l = 0; l < 32; l++) {
      L[l] = (int8_t)(((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32);
      L[l + 32] = (int8_t)(((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
      L[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      L[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}

LMN_QD_INLINE void lmn_qd_k(uint32_t type, const uint8_t *b, lmn_qd_kblock *k) {
  if (type == LMN_GGML_Q6_K)
    lmn_qd_k6(b, k);
  else
    lmn_qd_k45(type == LMN_GGML_Q5_K, b, k);
}

/* ---------------------------------------------------------------- to f32 */

/* f32 value of element i of an F32/F16/BF16 row (any alignment). */
LMN_QD_INLINE float lmn_qd_float(uint32_t type, const uint8_t *w, int64_t i) {
  if (type == LMN_GGML_F32) {
    float f;
    memcpy(&f, w + 4 * i, 4);
    return f;
  }
  const uint8_t *p = w + 2 * i;
  if (type == LMN_GGML_F16) return LMN_QD_HALF(p);
  uint32_t bits = (uint32_t)(p[0] | p[1] << 8) << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

LMN_QD_INLINE void lmn_qd_f32_legacy(uint32_t type, const uint8_t *b, float *y) {
  int8_t L[32];
  float d, m;
  lmn_qd_legacy(type, b, L, &d, &m);
  if (lmn_qd_has_min(type))
    for (int j = 0; j < 32; j++) y[j] = L[j] * d + m;
  else
    for (int j = 0; j < 32; j++) y[j] = L[j] * d;
}

LMN_QD_INLINE void lmn_qd_f32_k(uint32_t type, const uint8_t *b, float *y) {
  lmn_qd_kblock k;
  lmn_qd_k(type, b, &k);
  for (int g = 0; g < k.ngroups; g++) {
    const float a = k.d * k.sc[g], c = k.dmin * k.mn[g];
    const int8_t *L = k.L + g * k.glen;
    float *o = y + g * k.glen;
    if (type == LMN_GGML_Q6_K)
      for (int j = 0; j < k.glen; j++) o[j] = a * L[j];
    else
      for (int j = 0; j < k.glen; j++) o[j] = a * L[j] - c;
  }
}

/* n values (whole blocks) of a row of any supported type to f32, bit-exact with lmn_dequant_row. */
LMN_QD_INLINE void lmn_qd_f32(uint32_t type, const uint8_t *w, float *y, int64_t n) {
  const int blck = lmn_qd_blck(type), bytes = lmn_qd_bytes(type);
  if (blck == 1) {
    if (type == LMN_GGML_F32)
      memcpy(y, w, (size_t)n * 4);
    else
      for (int64_t i = 0; i < n; i++) y[i] = lmn_qd_float(type, w, i);
  } else if (blck == 32) {
    for (int64_t b = 0; b < n / 32; b++) lmn_qd_f32_legacy(type, w + b * bytes, y + 32 * b);
  } else {
    for (int64_t b = 0; b < n / 256; b++) lmn_qd_f32_k(type, w + b * bytes, y + 256 * b);
  }
}

#endif
