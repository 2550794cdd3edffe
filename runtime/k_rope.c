/* k_rope.c: rotary position embedding in place on q or k rows, both pair layouts (NORMAL = interleaved
 * pairs as llama.cpp mode 0 / llama-arch GGUF; NEOX = half-split pairs as llama.cpp mode 2 / qwen2 / HF),
 * with a cos/sin table built once; the backward is the rotation by the opposite angle. */
#include <math.h>

#include "k_isa.h"
#include "kernels.h"

void lmn_rope_table(float *cos_t, float *sin_t, int n_pos, int hd, double theta) {
  int half = hd / 2;
  for (int p = 0; p < half; p++) {
    double freq = pow(theta, -2.0 * p / hd);
    for (int pos = 0; pos < n_pos; pos++) {
      double ang = pos * freq;
      cos_t[(size_t)pos * half + p] = (float)cos(ang);
      sin_t[(size_t)pos * half + p] = (float)sin(ang);
    }
  }
}

/* Rotates every head of every row by +angle (sign = 1) or -angle (sign = -1). */
LMN_CLONES
static void rope(float *x, const float *cos_t, const float *sin_t, int B, int T, int heads, int hd, int pos0,
                 lmn_rope_mode mode, float sign) {
  int half = hd / 2;
  size_t width = (size_t)heads * hd;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      float *row = x + ((size_t)b * T + t) * width;
      const float *c = cos_t + (size_t)(pos0 + t) * half, *s = sin_t + (size_t)(pos0 + t) * half;
      for (int h = 0; h < heads; h++) {
        float *xh = row + (size_t)h * hd;
        if (mode == LMN_ROPE_NEOX) {
          float *restrict x0 = xh, *restrict x1 = xh + half;
          int p = 0;
          for (; p + LMN_VL <= half; p += LMN_VL) {
            lmn_vf a = lmn_vload(x0 + p), bb = lmn_vload(x1 + p), cv = lmn_vload(c + p),
                   sv = lmn_vload(s + p) * sign;
            lmn_vstore(x0 + p, a * cv - bb * sv);
            lmn_vstore(x1 + p, a * sv + bb * cv);
          }
          for (; p < half; p++) {
            float a = x0[p], bb = x1[p], sv = s[p] * sign;
            x0[p] = a * c[p] - bb * sv;
            x1[p] = a * sv + bb * c[p];
          }
        } else {
          for (int p = 0; p < half; p++) {
            float a = xh[2 * p], bb = xh[2 * p + 1], sv = s[p] * sign;
            xh[2 * p] = a * c[p] - bb * sv;
            xh[2 * p + 1] = a * sv + bb * c[p];
          }
        }
      }
    }
}

void lmn_rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int heads, int hd,
                      int pos0, lmn_rope_mode mode) {
  rope(x, cos_t, sin_t, B, T, heads, hd, pos0, mode, 1.0f);
}

void lmn_rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int heads, int hd,
                       int pos0, lmn_rope_mode mode) {
  rope(dx, cos_t, sin_t, B, T, heads, hd, pos0, mode, -1.0f);
}
