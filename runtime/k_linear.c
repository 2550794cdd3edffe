/* k_linear.c: the fully connected layer y = x W^T + b (PyTorch nn.Linear layout W[out][in]), forward and
 * backward, each GEMM one lmn_gemm (cblas_sgemm, or bf16 under `precision: bf16`). A frozen layer (dW = db =
 * NULL) costs only the dx GEMM. */
#include <cblas.h>

#include "bgemm.h"
#include "k_isa.h"
#include "kernels.h"

LMN_CLONES
void lmn_linear_forward(float *y, const float *x, const float *W, const float *b, int N, int in, int out) {
  if (N <= 0 || out <= 0) return;
  if (in <= 0) { /* an empty product: y = b (cblas would reject lda = 0) */
    for (int n = 0; n < N; n++)
      for (int o = 0; o < out; o++) y[(size_t)n * out + o] = b ? b[o] : 0.0f;
    return;
  }
  float beta = 0.0f;
  if (b) { /* prefill rows with the bias and let the GEMM accumulate onto it: no extra pass afterwards */
    for (int n = 0; n < N; n++) memcpy(y + (size_t)n * out, b, (size_t)out * sizeof *b);
    beta = 1.0f;
  }
  if (N == 1) /* one row (cached decoding): a matrix-vector product, which OpenBLAS runs much faster */
    cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, W, in, x, 1, beta, y, 1);
  else
    lmn_gemm(0, 1, N, out, in, 1.0f, x, in, W, in, beta, y, out);
}

LMN_CLONES
void lmn_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W,
                         int N, int in, int out) {
  if (N <= 0 || out <= 0) return;
  if (dx && in > 0) /* dx[N,in] += dy[N,out] W[out,in] */
    lmn_gemm(0, 0, N, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in);
  if (dW && in > 0) /* dW[out,in] += dy^T[out,N] x[N,in] */
    lmn_gemm(1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, dW, in);
  if (db) /* row by row: db stays in L1 while dy streams through once */
    for (int n = 0; n < N; n++) {
      const float *row = dy + (size_t)n * out;
      int o = 0;
      for (; o + LMN_VL <= out; o += LMN_VL) lmn_vstore(db + o, lmn_vload(db + o) + lmn_vload(row + o));
      for (; o < out; o++) db[o] += row[o];
    }
}
