/* dequant.c: the ggml type table, fp16/bf16 conversion, per-row dequantisation of the block formats
 * (bit-exact with ggml's dequantize_row_* in ggml-quants.c), and loading a GGUF tensor as f32. */
#include "dequant.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

#define QK 32    /* legacy block size */
#define QK_K 256 /* K-quant super-block size */

typedef struct type_info {
  const char *name;
  uint32_t blck, bytes;
} type_info;

/* Every ggml type GGUF files may carry (ggml.c type_traits; Q8_1 is 36 bytes: two fp16 + 32 int8). */
static const type_info types[LMN_GGML_TYPE_LIMIT] = {
    [0] = {"F32", 1, 4},         [1] = {"F16", 1, 2},         [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},      [6] = {"Q5_0", 32, 22},      [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},      [9] = {"Q8_1", 32, 36},      [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},   [12] = {"Q4_K", 256, 144},   [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},   [15] = {"Q8_K", 256, 292},   [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74},  [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},   [21] = {"IQ3_S", 256, 110},  [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},         [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},        [27] = {"I64", 1, 8},        [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},   [30] = {"BF16", 1, 2},       [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},   [39] = {"MXFP4", 32, 17},    [40] = {"NVFP4", 64, 36},
    [41] = {"Q1_0", 128, 18},
};

const char *lmn_ggml_type_name(uint32_t type) { return type < LMN_GGML_TYPE_LIMIT ? types[type].name : NULL; }

int lmn_ggml_type_size(uint32_t type, uint32_t *blck, uint32_t *bytes, lmn_err *err) {
  if (!lmn_ggml_type_name(type)) return lmn_errf(err, "unknown ggml type %" PRIu32, type);
  *blck = types[type].blck;
  *bytes = types[type].bytes;
  return 0;
}

int lmn_ggml_row_size(uint32_t type, int64_t n, uint64_t *bytes, lmn_err *err) {
  uint32_t blck = 1, size = 1;
  if (lmn_ggml_type_size(type, &blck, &size, err) != 0) return -1;
  if (n < 0 || n % blck != 0)
    return lmn_errf(err, "row of %" PRId64 " values is not a whole number of %s blocks of %" PRIu32, n,
                    types[type].name, blck);
  if ((uint64_t)n / blck > UINT64_MAX / size) return lmn_errf(err, "row of %" PRId64 " values overflows", n);
  *bytes = (uint64_t)n / blck * size;
  return 0;
}

/* ---------------------------------------------------------------- scalar conversions */

static float from_bits(uint32_t b) {
  float f;
  memcpy(&f, &b, 4);
  return f;
}

static uint32_t to_bits(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}

float lmn_fp16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 31) return from_bits(sign | 0x7f800000 | (man << 13)); /* inf, NaN (payload kept) */
  if (exp != 0) return from_bits(sign | ((exp + 112) << 23) | (man << 13));
  if (man == 0) return from_bits(sign);
  int shift = 0; /* subnormal: normalise the mantissa */
  while (!(man & 0x400)) man <<= 1, shift++;
  return from_bits(sign | ((uint32_t)(113 - shift) << 23) | ((man & 0x3ff) << 13));
}

float lmn_bf16_to_f32(uint16_t b) { return from_bits((uint32_t)b << 16); }

/* ggml_compute_fp32_to_fp16 (round to nearest even through float arithmetic). */
uint16_t lmn_f32_to_fp16(float f) {
  const float scale_to_inf = 0x1.0p+112f, scale_to_zero = 0x1.0p-110f;
  uint32_t w = to_bits(f), shl1_w = w + w, sign = w & 0x80000000u;
  float base = from_bits(to_bits(f) & 0x7fffffffu) * scale_to_inf * scale_to_zero;
  uint32_t bias = shl1_w & 0xff000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = from_bits((bias >> 1) + 0x07800000u) + base;
  uint32_t bits = to_bits(base), nonsign = ((bits >> 13) & 0x7c00u) + (bits & 0x0fffu);
  return (uint16_t)((sign >> 16) | (shl1_w > 0xff000000u ? 0x7e00u : nonsign));
}

static float half(const uint8_t *p) { return lmn_fp16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* ---------------------------------------------------------------- block formats */

static void dq_f16(const uint8_t *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = half(x + 2 * i);
}

static void dq_bf16(const uint8_t *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = lmn_bf16_to_f32((uint16_t)(x[2 * i] | x[2 * i + 1] << 8));
}

static void dq_q8_0(const uint8_t *x, float *y, int64_t nb) {
  for (int64_t b = 0; b < nb; b++, x += 34, y += QK) {
    const float d = half(x);
    for (int j = 0; j < QK; j++) y[j] = (int8_t)x[2 + j] * d;
  }
}

static void dq_q4_0(const uint8_t *x, float *y, int64_t nb) {
  for (int64_t b = 0; b < nb; b++, x += 18, y += QK) {
    const float d = half(x);
    const uint8_t *qs = x + 2;
    for (int j = 0; j < QK / 2; j++) {
      y[j] = ((qs[j] & 0x0f) - 8) * d;
      y[j + QK / 2] = ((qs[j] >> 4) - 8) * d;
    }
  }
}

static void dq_q4_1(const uint8_t *x, float *y, int64_t nb) {
  for (int64_t b = 0; b < nb; b++, x += 20, y += QK) {
    const float d = half(x), m = half(x + 2);
    const uint8_t *qs = x + 4;
    for (int j = 0; j < QK / 2; j++) {
      y[j] = (qs[j] & 0x0f) * d + m;
      y[j + QK / 2] = (qs[j] >> 4) * d + m;
    }
  }
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Q5_0 (offset 16, no min) and Q5_1 (offset 0, min m): 4 low bits in qs, the 5th bit in qh. */
static void dq_q5(const uint8_t *qs, uint32_t qh, float d, float m, int offset, float *y) {
  for (int j = 0; j < QK / 2; j++) {
    const int xh_0 = ((qh >> j) << 4) & 0x10;
    const int xh_1 = (qh >> (j + 12)) & 0x10;
    const int x0 = ((qs[j] & 0x0f) | xh_0) - offset;
    const int x1 = ((qs[j] >> 4) | xh_1) - offset;
    y[j] = offset ? x0 * d : x0 * d + m;
    y[j + QK / 2] = offset ? x1 * d : x1 * d + m;
  }
}

static void dq_q5_0(const uint8_t *x, float *y, int64_t nb) {
  for (int64_t b = 0; b < nb; b++, x += 22, y += QK) dq_q5(x + 6, le32(x + 2), half(x), 0.0f, 16, y);
}

static void dq_q5_1(const uint8_t *x, float *y, int64_t nb) {
  for (int64_t b = 0; b < nb; b++, x += 24, y += QK) dq_q5(x + 8, le32(x + 4), half(x), half(x + 2), 0, y);
}

/* ggml's get_scale_min_k4: 6-bit scale and min of sub-block j from the 12 packed bytes q. */
static void scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

/* Q4_K (qh == NULL) and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins. */
static void dq_k45(const uint8_t *x, const uint8_t *qh, const uint8_t *ql, float *y) {
  const float d = half(x), min = half(x + 2);
  const uint8_t *scales = x + 4;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
    uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * sc, m1 = min * m;
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0x0f) + (qh && (qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh && (qh[l] & u2) ? 16 : 0)) - m2;
  }
}

static void dq_q4_k(const uint8_t *x, float *y, int64_t nb) {
  for (int64_t b = 0; b < nb; b++, x += 144, y += QK_K) dq_k45(x, NULL, x + 16, y);
}

static void dq_q5_k(const uint8_t *x, float *y, int64_t nb) {
  for (int64_t b = 0; b < nb; b++, x += 176, y += QK_K) dq_k45(x, x + 16, x + 48, y);
}

static void dq_q6_k_block(const uint8_t *x, float *y) {
  const float d = half(x + 208);
  const uint8_t *ql = x, *qh = x + 128;
  const int8_t *sc = (const int8_t *)(x + 192);
  for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; l++) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l + 0] = d * sc[is + 0] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
  }
}

static void dq_q6_k(const uint8_t *x, float *y, int64_t nb) {
  for (int64_t b = 0; b < nb; b++, x += 210, y += QK_K) dq_q6_k_block(x, y);
}

static void dq_f32(const uint8_t *x, float *y, int64_t n) {
  if (n) memcpy(y, x, (size_t)n * 4);
}

/* Dequantiser of each supported type, called with the number of blocks (= values for F32/F16/BF16). */
typedef void (*dq_fn)(const uint8_t *x, float *y, int64_t nb);
static dq_fn dequantiser(uint32_t type) {
  switch (type) {
    case LMN_GGML_F32: return dq_f32;
    case LMN_GGML_F16: return dq_f16;
    case LMN_GGML_BF16: return dq_bf16;
    case LMN_GGML_Q8_0: return dq_q8_0;
    case LMN_GGML_Q4_0: return dq_q4_0;
    case LMN_GGML_Q4_1: return dq_q4_1;
    case LMN_GGML_Q5_0: return dq_q5_0;
    case LMN_GGML_Q5_1: return dq_q5_1;
    case LMN_GGML_Q4_K: return dq_q4_k;
    case LMN_GGML_Q5_K: return dq_q5_k;
    case LMN_GGML_Q6_K: return dq_q6_k;
    default: return NULL;
  }
}

int lmn_ggml_can_dequant(uint32_t type) { return dequantiser(type) != NULL; }

int lmn_dequant_row(uint32_t type, const void *src, float *dst, int64_t n, lmn_err *err) {
  uint64_t bytes;
  if (lmn_ggml_row_size(type, n, &bytes, err) != 0) return -1;
  dq_fn f = dequantiser(type);
  if (!f) return lmn_errf(err, "dequantisation of type %s is not supported", types[type].name);
  f(src, dst, n / types[type].blck);
  return 0;
}

/* ---------------------------------------------------------------- whole tensors */

static void shape_str(char *buf, size_t cap, const int64_t *ne, uint32_t n_dims) {
  size_t k = (size_t)snprintf(buf, cap, "{");
  for (uint32_t j = 0; j < n_dims && k < cap; j++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, j ? ", " : "", ne[j]);
  if (k < cap) snprintf(buf + k, cap - k, "}");
}

int lmn_gguf_check_shape(const lmn_gguf *g, const lmn_gguf_tensor *t, int64_t ne0, int64_t ne1, lmn_err *err) {
  if (t->ne[0] == ne0 && t->ne[1] == ne1 && t->ne[2] == 1 && t->ne[3] == 1) return 0;
  char have[128], want[64];
  int64_t w[2] = {ne0, ne1};
  shape_str(have, sizeof have, t->ne, t->n_dims);
  shape_str(want, sizeof want, w, ne1 == 1 ? 1 : 2);
  return lmn_errf(err, "%s: tensor '%s': shape %s, expected %s", lmn_gguf_name(g), t->name, have, want);
}

/* Rows one by one through a bounce buffer, for files opened for metadata only. */
static int load_by_rows(const lmn_gguf *g, const lmn_gguf_tensor *t, uint64_t row_bytes, float *dst,
                        lmn_err *err) {
  uint8_t *row = malloc(row_bytes ? (size_t)row_bytes : 1);
  if (!row) return lmn_errf(err, "%s: tensor '%s': out of memory", lmn_gguf_name(g), t->name);
  int rc = 0;
  for (int64_t r = 0; r < t->ne[1] && rc == 0; r++) {
    rc = lmn_gguf_tensor_read(g, t, (uint64_t)r * row_bytes, row, row_bytes, err);
    if (rc == 0) rc = lmn_dequant_row(t->type, row, dst + r * t->ne[0], t->ne[0], err);
  }
  free(row);
  return rc;
}

int lmn_gguf_load_f32(const lmn_gguf *g, const char *name, int64_t ne0, int64_t ne1, float *dst,
                      lmn_err *err) {
  const lmn_gguf_tensor *t = lmn_gguf_find_tensor(g, name);
  if (!t) return lmn_errf(err, "%s: tensor '%s' not found", lmn_gguf_name(g), name);
  if (lmn_gguf_check_shape(g, t, ne0, ne1, err) != 0) return -1;
  if (!lmn_ggml_can_dequant(t->type))
    return lmn_errf(err, "%s: tensor '%s': type %s cannot be dequantised", lmn_gguf_name(g), name,
                    lmn_ggml_type_name(t->type));
  uint64_t row_bytes;
  if (lmn_ggml_row_size(t->type, t->ne[0], &row_bytes, err) != 0) return -1;
  const uint8_t *data = lmn_gguf_tensor_data(g, t, NULL);
  if (!data) return load_by_rows(g, t, row_bytes, dst, err);
  for (int64_t r = 0; r < t->ne[1]; r++)
    if (lmn_dequant_row(t->type, data + r * row_bytes, dst + r * t->ne[0], t->ne[0], err) != 0) return -1;
  return 0;
}
