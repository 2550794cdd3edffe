/* qmat_scalar.c: the portable path of the qmat kernels, plain C11 on the shared decoders: integer dot
 * products of each weight block's levels with the int8 activations (exact), one f32 term per block, and
 * the f32-activation and dequantization template (qmat_f32.h) instantiated with one-float "vectors".
 * The order of every f32 operation is fixed, so the results are reproducible bit for bit. */
#include "qmat_impl.h"

typedef float qf_vf;
#define QF_VL 1
#define QF_ZERO 0.0f
#define QF_LOADX(p) (*(p))
#define QF_LOADF(p) lmn_qd_float(LMN_GGML_F32, (p), 0)
#define QF_LOADH(p) lmn_qd_float(LMN_GGML_F16, (p), 0)
#define QF_LOADB(p) lmn_qd_float(LMN_GGML_BF16, (p), 0)
#define QF_FMA(a, b, c) ((a) * (b) + (c)) /* not contracted: the build is ISO C (-std=c11) */
#define QF_ADD(a, b) ((a) + (b))
#define QF_HSUM(v) (v)
#include "qmat_f32.h"

/* Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 row: per block d_w d_x sum(L q) (+ m_w s_x). */
LMN_QD_INLINE float qs_dot_legacy(uint32_t type, const uint8_t *w, const lmn_q8b *x, int64_t nb) {
  const int bytes = lmn_qd_bytes(type);
  float acc = 0.0f, summ = 0.0f;
  for (int64_t b = 0; b < nb; b++) {
    int8_t L[32];
    float d, m;
    lmn_qd_legacy(type, w + b * bytes, L, &d, &m);
    int32_t isum = 0;
    for (int j = 0; j < 32; j++) isum += L[j] * x[b].q[j];
    acc += (d * x[b].d) * (float)isum;
    if (lmn_qd_has_min(type)) summ += m * x[b].s;
  }
  return acc + summ;
}

/* K row: per super-block d d_x sum_g sc_g sum(L q) - dmin d_x sum_g mn_g sum(q). */
LMN_QD_INLINE float qs_dot_k(uint32_t type, const uint8_t *w, const lmn_q8k *x, int64_t nsb) {
  const int bytes = lmn_qd_bytes(type);
  float acc = 0.0f, summ = 0.0f;
  for (int64_t s = 0; s < nsb; s++) {
    lmn_qd_kblock k;
    lmn_qd_k(type, w + s * bytes, &k);
    int32_t isum = 0, msum = 0;
    for (int g = 0; g < k.ngroups; g++) {
      int32_t gsum = 0;
      for (int j = g * k.glen; j < (g + 1) * k.glen; j++) gsum += k.L[j] * x[s].q[j];
      isum += k.sc[g] * gsum;
      if (k.glen == 32) msum += k.mn[g] * (x[s].bsums[2 * g] + x[s].bsums[2 * g + 1]);
    }
    acc += (k.d * x[s].d) * (float)isum;
    summ += (k.dmin * x[s].d) * (float)msum;
  }
  return acc - summ;
}

#define QS_LEGACY(T)                                                        \
  static float qs_dotq_##T(const uint8_t *w, const void *x, int64_t cols) { \
    return qs_dot_legacy(LMN_GGML_##T, w, x, cols / 32);                    \
  }
#define QS_K(T)                                                             \
  static float qs_dotq_##T(const uint8_t *w, const void *x, int64_t cols) { \
    return qs_dot_k(LMN_GGML_##T, w, x, cols / 256);                        \
  }
QS_LEGACY(Q8_0)
QS_LEGACY(Q4_0)
QS_LEGACY(Q4_1)
QS_LEGACY(Q5_0)
QS_LEGACY(Q5_1)
QS_K(Q4_K)
QS_K(Q5_K)
QS_K(Q6_K)

int lmn_qk_ops_scalar(uint32_t type, lmn_qk_ops *ops) {
  ops->dotq = NULL;
  if (!qf_fill(type, ops)) return 0;
  switch (type) {
#define QS_CASE(T) \
  case LMN_GGML_##T: ops->dotq = qs_dotq_##T; break;
    QS_CASE(Q8_0)
    QS_CASE(Q4_0) QS_CASE(Q4_1) QS_CASE(Q5_0) QS_CASE(Q5_1) QS_CASE(Q4_K) QS_CASE(Q5_K) QS_CASE(Q6_K)
#undef QS_CASE
        default : break;
  }
  return 1;
}
