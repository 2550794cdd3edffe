/* quantize.c: f32 rows to F32, F16, BF16, Q8_0, Q4_0 and Q4_1 blocks (quantize.h). Block layouts as
 * dequant.c reads them: Q8_0 = fp16 d, 32 x int8 (x = d q); Q4_0 = fp16 d, 16 bytes of nibbles (value j in
 * the low nibble of byte j, value j + 16 in the high one; x = d (q - 8)); Q4_1 = fp16 d, fp16 m, nibbles
 * as Q4_0 (x = d q + m). */
#include "quantize.h"

#include <math.h>
#include <string.h>

#include "dequant.h"

enum { QK = 32 };

static void put_half(uint8_t *p, float f) {
  uint16_t h = lmn_f32_to_fp16(f);
  p[0] = (uint8_t)h;
  p[1] = (uint8_t)(h >> 8);
}

static uint16_t f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays a quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1u);                                         /* round to nearest even */
  return (uint16_t)(u >> 16);
}

/* d = amax / 127, q = round(x / d) */
static void q8_0_block(const float *x, uint8_t *y) {
  float amax = 0;
  for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
  const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(y, d);
  for (int j = 0; j < QK; j++) y[2 + j] = (uint8_t)(int8_t)lrintf(x[j] * id);
}

/* d = (the value of largest magnitude) / -8, q = clamp(round(x / d) + 8, 0, 15) */
static void q4_0_block(const float *x, uint8_t *y) {
  float amax = 0, max = 0;
  for (int j = 0; j < QK; j++)
    if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
  const float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(y, d);
  for (int j = 0; j < QK / 2; j++) {
    int a = (int)(x[j] * id + 8.5f), b = (int)(x[j + QK / 2] * id + 8.5f);
    a = a < 0 ? 0 : a > 15 ? 15 : a;
    b = b < 0 ? 0 : b > 15 ? 15 : b;
    y[2 + j] = (uint8_t)(a | b << 4);
  }
}

/* m = min, d = (max - min) / 15, q = clamp(round((x - m) / d), 0, 15) */
static void q4_1_block(const float *x, uint8_t *y) {
  float mn = x[0], mx = x[0];
  for (int j = 1; j < QK; j++) mn = fminf(mn, x[j]), mx = fmaxf(mx, x[j]);
  const float d = (mx - mn) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(y, d);
  put_half(y + 2, mn);
  for (int j = 0; j < QK / 2; j++) {
    int a = (int)((x[j] - mn) * id + 0.5f), b = (int)((x[j + QK / 2] - mn) * id + 0.5f);
    a = a < 0 ? 0 : a > 15 ? 15 : a;
    b = b < 0 ? 0 : b > 15 ? 15 : b;
    y[4 + j] = (uint8_t)(a | b << 4);
  }
}

int lmn_quantize_supported(uint32_t type) {
  return type == LMN_GGML_F32 || type == LMN_GGML_F16 || type == LMN_GGML_BF16 || type == LMN_GGML_Q8_0 ||
         type == LMN_GGML_Q4_0 || type == LMN_GGML_Q4_1;
}

void lmn_quantize_row(uint32_t type, const float *src, void *dst, int64_t n) {
  uint8_t *y = dst;
  switch (type) {
    case LMN_GGML_F32: memcpy(dst, src, (size_t)n * sizeof *src); break;
    case LMN_GGML_F16:
      for (int64_t i = 0; i < n; i++) put_half(y + 2 * i, src[i]);
      break;
    case LMN_GGML_BF16:
      for (int64_t i = 0; i < n; i++) {
        uint16_t b = f32_to_bf16(src[i]);
        y[2 * i] = (uint8_t)b;
        y[2 * i + 1] = (uint8_t)(b >> 8);
      }
      break;
    case LMN_GGML_Q8_0:
      for (int64_t b = 0; b < n / QK; b++) q8_0_block(src + b * QK, y + b * 34);
      break;
    case LMN_GGML_Q4_0:
      for (int64_t b = 0; b < n / QK; b++) q4_0_block(src + b * QK, y + b * 18);
      break;
    case LMN_GGML_Q4_1:
      for (int64_t b = 0; b < n / QK; b++) q4_1_block(src + b * QK, y + b * 20);
      break;
    default: break;
  }
}
