/* k_adamw.c: one fused AdamW pass over a flat parameter array (moments, bias correction, decoupled weight
 * decay, optional gradient scale for clipping), and the sum of squares behind global-norm clipping. */
#include <math.h>

#include "k_isa.h"
#include "kernels.h"

LMN_CLONES
void lmn_adamw_update(float *p, const float *grad, float *m, float *v, size_t n, double lr_d, double beta1_d,
                      double beta2_d, double eps_d, double weight_decay_d, int t, float grad_scale) {
  /* coefficients formed in double (1 - beta^t and 1 - beta lose digits in float), applied in float */
  float c1 = (float)(1.0 / (1.0 - pow(beta1_d, t))), c2 = (float)(1.0 / (1.0 - pow(beta2_d, t)));
  float a1 = (float)(1.0 - beta1_d), a2 = (float)(1.0 - beta2_d), beta1 = (float)beta1_d,
        beta2 = (float)beta2_d;
  float lr = (float)lr_d, eps = (float)eps_d, weight_decay = (float)weight_decay_d;
  size_t i = 0;
  for (; i + LMN_VL <= n; i += LMN_VL) {
    lmn_vf g = lmn_vload(grad + i) * grad_scale, pv = lmn_vload(p + i);
    lmn_vf mv = lmn_vload(m + i) * beta1 + g * a1, vv = lmn_vload(v + i) * beta2 + g * g * a2;
    lmn_vf vh = vv * c2, den;
    for (int l = 0; l < LMN_VL; l++) den[l] = sqrtf(vh[l]) + eps;
    lmn_vstore(m + i, mv);
    lmn_vstore(v + i, vv);
    lmn_vstore(p + i, pv - lr * (mv * c1 / den + weight_decay * pv));
  }
  for (; i < n; i++) {
    float g = grad[i] * grad_scale;
    m[i] = beta1 * m[i] + a1 * g;
    v[i] = beta2 * v[i] + a2 * g * g;
    p[i] -= lr * (m[i] * c1 / (sqrtf(v[i] * c2) + eps) + weight_decay * p[i]);
  }
}

LMN_CLONES
double lmn_sumsq(const float *x, size_t n) {
  double acc[8] = {0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += (double)x[i + l] * x[i + l];
  double s = 0.0;
  for (int l = 0; l < 8; l++) s += acc[l];
  for (; i < n; i++) s += (double)x[i] * x[i];
  return s;
}

float lmn_clip_scale(double sumsq, float max_norm) {
  if (max_norm <= 0.0f) return 1.0f;
  double norm = sqrt(sumsq);
  return norm + 1e-6 > max_norm ? (float)(max_norm / (norm + 1e-6)) : 1.0f;
}
