/* qmat_f32.h: template of the f32-activation kernels and of dequantization, included once by each per-ISA
 * file (qmat_scalar.c, qmat_avx2.c, qmat_avx512.c) after it defines its vector type and operations:
 *   qf_vf, QF_VL (floats per vector), QF_ZERO, QF_LOADX(const float *), QF_LOADF / QF_LOADH / QF_LOADB
 *   (QF_VL f32 / fp16 / bf16 values at a byte pointer of any alignment, as f32), QF_FMA(a, b, c) = a*b + c,
 *   QF_ADD(a, b), QF_HSUM(v) (float).
 * F32/F16/BF16 rows are converted and multiplied in registers; block rows are dequantized 256 values at a
 * time into a stack buffer by the shared decoders (compiled here for this ISA) and multiplied in f32. The
 * functions are static: every including file gets its own copy, compiled for its target. */
#ifndef LMN_QMAT_F32_H
#define LMN_QMAT_F32_H

/* Dot of n weights of F32/F16/BF16 `type` at w with x: four accumulators of QF_VL lanes, then the tail. */
LMN_QD_INLINE float qf_dot(uint32_t type, const uint8_t *w, const float *x, int64_t n) {
  const int es = type == LMN_GGML_F32 ? 4 : 2;
#define QF_LOADW(p) (type == LMN_GGML_F32 ? QF_LOADF(p) : type == LMN_GGML_F16 ? QF_LOADH(p) : QF_LOADB(p))
  qf_vf a0 = QF_ZERO, a1 = QF_ZERO, a2 = QF_ZERO, a3 = QF_ZERO;
  int64_t i = 0;
  for (; i + 4 * QF_VL <= n; i += 4 * QF_VL) {
    a0 = QF_FMA(QF_LOADW(w + es * i), QF_LOADX(x + i), a0);
    a1 = QF_FMA(QF_LOADW(w + es * (i + QF_VL)), QF_LOADX(x + i + QF_VL), a1);
    a2 = QF_FMA(QF_LOADW(w + es * (i + 2 * QF_VL)), QF_LOADX(x + i + 2 * QF_VL), a2);
    a3 = QF_FMA(QF_LOADW(w + es * (i + 3 * QF_VL)), QF_LOADX(x + i + 3 * QF_VL), a3);
  }
  for (; i + QF_VL <= n; i += QF_VL) a0 = QF_FMA(QF_LOADW(w + es * i), QF_LOADX(x + i), a0);
#undef QF_LOADW
  float s = QF_HSUM(QF_ADD(QF_ADD(a0, a1), QF_ADD(a2, a3)));
  for (; i < n; i++) s += lmn_qd_float(type, w, i) * x[i];
  return s;
}

/* A block row against f32 x: groups of 256 values dequantized, then multiplied. */
LMN_QD_INLINE float qf_dot_blocks(uint32_t type, const uint8_t *w, const float *x, int64_t cols) {
  const int blck = lmn_qd_blck(type), bytes = lmn_qd_bytes(type);
  float buf[256], s = 0.0f;
  for (int64_t i = 0; i < cols; i += 256) {
    const int64_t n = cols - i < 256 ? cols - i : 256;
    lmn_qd_f32(type, w + i / blck * bytes, buf, n);
    s += qf_dot(LMN_GGML_F32, (const uint8_t *)buf, x + i, n);
  }
  return s;
}

/* One dotf and one deq per type, each specialised on its type by inlining. */
#define QF_INSTANCE(T)                                                               \
  static float qf_dotf_##T(const uint8_t *w, const float *x, int64_t cols) {         \
    return lmn_qd_blck(LMN_GGML_##T) == 1 ? qf_dot(LMN_GGML_##T, w, x, cols)         \
                                          : qf_dot_blocks(LMN_GGML_##T, w, x, cols); \
  }                                                                                  \
  static void qf_deq_##T(const uint8_t *w, float *y, int64_t n) {                    \
    lmn_qd_f32(LMN_GGML_##T, w, y, n);                                               \
  }
#define QF_TYPES(X) X(F32) X(F16) X(BF16) X(Q8_0) X(Q4_0) X(Q4_1) X(Q5_0) X(Q5_1) X(Q4_K) X(Q5_K) X(Q6_K)
QF_TYPES(QF_INSTANCE)
#undef QF_INSTANCE

/* Fills dotf and deq of ops (dotq untouched); 0 for an unsupported type. */
static int qf_fill(uint32_t type, lmn_qk_ops *ops) {
  switch (type) {
#define QF_CASE(T)           \
  case LMN_GGML_##T:         \
    ops->dotf = qf_dotf_##T; \
    ops->deq = qf_deq_##T;   \
    return 1;
    QF_TYPES(QF_CASE)
#undef QF_CASE
    default: return 0;
  }
}

#endif
