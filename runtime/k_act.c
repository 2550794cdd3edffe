/* k_act.c: the MLP activations, element-wise and vectorised: SwiGLU (silu(gate) * up, LLaMA/Qwen2), GELU
 * with GPT-2's tanh approximation (forward, accumulating backward, in-place backward) and the fused
 * bias + GELU epilogue of a GEMM. exp comes from lmn_vexp; gelu uses 0.5 (1 + tanh u) = sigmoid(2u). */
#include "k_isa.h"
#include "kernels.h"

#define GELU_K0 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_K1 0.044715f

static inline lmn_vf ld(const float *p, size_t i, size_t n) {
  return i + LMN_VL <= n ? lmn_vload(p + i) : lmn_vload_part(p + i, (int)(n - i), 0.0f);
}
static inline void st(float *p, size_t i, size_t n, lmn_vf v) {
  if (i + LMN_VL <= n)
    lmn_vstore(p + i, v);
  else
    lmn_vstore_part(p + i, v, (int)(n - i));
}

static inline lmn_vf sigmoid(lmn_vf x) { return 1.0f / (1.0f + lmn_vexp(-x)); }

/* gelu(x) and gelu'(x) */
static inline lmn_vf gelu(lmn_vf x) { return x * sigmoid(2.0f * GELU_K0 * (x + GELU_K1 * x * x * x)); }
static inline lmn_vf gelu_grad(lmn_vf x) {
  lmn_vf x2 = x * x, s = sigmoid(2.0f * GELU_K0 * (x + GELU_K1 * x2 * x));
  return s + x * (2.0f * GELU_K0) * s * (1.0f - s) * (1.0f + 3.0f * GELU_K1 * x2);
}

LMN_CLONES
void lmn_swiglu_forward(float *out, const float *gate, const float *up, size_t n) {
  for (size_t i = 0; i < n; i += LMN_VL) {
    lmn_vf g = ld(gate, i, n);
    st(out, i, n, g * ld(up, i, n) * sigmoid(g));
  }
}

LMN_CLONES
void lmn_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                         size_t n) {
  if (!dgate && !dup) return;
  for (size_t i = 0; i < n; i += LMN_VL) {
    lmn_vf g = ld(gate, i, n), d = ld(dout, i, n), s = sigmoid(g);
    if (dgate) st(dgate, i, n, ld(dgate, i, n) + d * ld(up, i, n) * s * (1.0f + g * (1.0f - s)));
    if (dup) st(dup, i, n, ld(dup, i, n) + d * g * s);
  }
}

LMN_CLONES
void lmn_gelu_forward(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i += LMN_VL) st(y, i, n, gelu(ld(x, i, n)));
}

LMN_CLONES
void lmn_gelu_backward(float *dx, const float *dy, const float *x, size_t n) {
  for (size_t i = 0; i < n; i += LMN_VL) st(dx, i, n, ld(dx, i, n) + gelu_grad(ld(x, i, n)) * ld(dy, i, n));
}

LMN_CLONES
void lmn_gelu_backward_inplace(float *d, const float *x, size_t n) {
  for (size_t i = 0; i < n; i += LMN_VL) st(d, i, n, gelu_grad(ld(x, i, n)) * ld(d, i, n));
}

LMN_CLONES
void lmn_bias_gelu_forward(float *y, float *h, const float *b, int N, int C) {
  for (int r = 0; r < N; r++) {
    float *hr = h + (size_t)r * C, *yr = y + (size_t)r * C;
    for (size_t j = 0; j < (size_t)C; j += LMN_VL) {
      lmn_vf v = ld(hr, j, C) + ld(b, j, C);
      st(hr, j, C, v);
      st(yr, j, C, gelu(v));
    }
  }
}

LMN_CLONES
void lmn_bias_gelu_backward(float *dh, float *db, const float *dy, const float *h, int N, int C) {
  if (!dh && !db) return;
  for (int r = 0; r < N; r++) {
    const float *hr = h + (size_t)r * C, *dyr = dy + (size_t)r * C;
    float *dhr = dh ? dh + (size_t)r * C : NULL;
    for (size_t j = 0; j < (size_t)C; j += LMN_VL) {
      lmn_vf g = gelu_grad(ld(hr, j, C)) * ld(dyr, j, C);
      if (dhr) st(dhr, j, C, ld(dhr, j, C) + g);
      if (db) st(db, j, C, ld(db, j, C) + g);
    }
  }
}
