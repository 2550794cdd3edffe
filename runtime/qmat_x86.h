/* qmat_x86.h: template of the integer (quantized-activation) kernels on 256-bit x86 vectors, included once
 * by qmat_avx2.c and once by qmat_avx512.c, which define before it:
 *   QX_DOT_US(u, q)         8 int32 lanes, lane k = sum of u[4k+i] * q[4k+i] (u unsigned <= 128, q int8)
 *   QX_DOT_US_SC(u, q, sc)  the same with pairs of products weighted by the int16 lanes of sc
 * (AVX2: vpmaddubsw + vpmaddwd; AVX-512 VNNI: vpdpbusd). Each weight block is unpacked in registers into
 * the levels of the shared decoders (qmat_impl.h): signed levels for the formats without a min meet q
 * through the sign trick |w| * sign(q, w); unsigned ones (Q4_1, Q5_1, K formats) directly. The integer
 * results per block are exactly those of the portable path; only the order of f32 additions differs. */
#ifndef LMN_QMAT_X86_H
#define LMN_QMAT_X86_H

static inline float qx_hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline __m256i qx_load(const void *p) {
  return _mm256_loadu_si256((const __m256i *)p);
}

/* 16 bytes of nibbles -> 32 levels: low nibbles (values 0..15), then high nibbles (16..31). */
static inline __m256i qx_nibbles(const uint8_t *qs) {
  const __m128i t = _mm_loadu_si128((const __m128i *)qs);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0f));
}

/* Byte j = 0x10 where bit j of qh is set (the 5th bit of value j). */
static inline __m256i qx_fifth_bits(uint32_t qh) {
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
  v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_and_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
}

/* Levels of a 32-value block (as lmn_qd_legacy) and its d, m. */
LMN_QD_INLINE __m256i qx_legacy(uint32_t type, const uint8_t *b, float *d, float *m) {
  *d = LMN_QD_HALF(b);
  *m = lmn_qd_has_min(type) ? LMN_QD_HALF(b + 2) : 0.0f;
  switch (type) {
    case LMN_GGML_Q8_0: return qx_load(b + 2);
    case LMN_GGML_Q4_0: return _mm256_sub_epi8(qx_nibbles(b + 2), _mm256_set1_epi8(8));
    case LMN_GGML_Q4_1: return qx_nibbles(b + 4);
    case LMN_GGML_Q5_0:
      return _mm256_sub_epi8(_mm256_or_si256(qx_nibbles(b + 6), qx_fifth_bits(lmn_qd_le32(b + 2))),
                             _mm256_set1_epi8(16));
    default: /* Q5_1 */ return _mm256_or_si256(qx_nibbles(b + 8), qx_fifth_bits(lmn_qd_le32(b + 4)));
  }
}

/* f32 term of block b added into acc. */
LMN_QD_INLINE __m256 qx_legacy_term(uint32_t type, const uint8_t *w, const lmn_q8b *x, __m256 acc,
                                    float *summ) {
  float d, m;
  const __m256i v = qx_legacy(type, w, &d, &m), q = qx_load(x->q);
  const __m256i p =
      lmn_qd_has_min(type) ? QX_DOT_US(v, q) : QX_DOT_US(_mm256_sign_epi8(v, v), _mm256_sign_epi8(q, v));
  if (lmn_qd_has_min(type)) *summ += m * x->s;
  return _mm256_fmadd_ps(_mm256_set1_ps(d * x->d), _mm256_cvtepi32_ps(p), acc);
}

LMN_QD_INLINE float qx_dot_legacy(uint32_t type, const uint8_t *w, const lmn_q8b *x, int64_t nb) {
  const int bytes = lmn_qd_bytes(type);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
         acc3 = _mm256_setzero_ps();
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f; /* the min terms, one chain each (no shared latency) */
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) { /* four independent chains */
    acc0 = qx_legacy_term(type, w + b * bytes, x + b, acc0, &s0);
    acc1 = qx_legacy_term(type, w + (b + 1) * bytes, x + b + 1, acc1, &s1);
    acc2 = qx_legacy_term(type, w + (b + 2) * bytes, x + b + 2, acc2, &s2);
    acc3 = qx_legacy_term(type, w + (b + 3) * bytes, x + b + 3, acc3, &s3);
  }
  for (; b < nb; b++) acc0 = qx_legacy_term(type, w + b * bytes, x + b, acc0, &s0);
  return qx_hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3))) + ((s0 + s1) + (s2 + s3));
}

/* Q4_K (five = 0) / Q5_K super-block: sum_g sc_g sum(L q) in int32 lanes; *msum = sum_g mn_g sum(q). */
LMN_QD_INLINE __m256i qx_k45(int five, const uint8_t *b, const lmn_q8k *y, int32_t *msum) {
  int16_t sc[8], mn[8];
  int32_t ms = 0;
  for (int g = 0; g < 8; g++) {
    lmn_qd_scale_min_k4(g, b + 4, &sc[g], &mn[g]);
    ms += mn[g] * (y->bsums[2 * g] + y->bsums[2 * g + 1]);
  }
  *msum = ms;
  const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
  const uint8_t *ql = b + (five ? 48 : 16);
  __m256i hb = five ? qx_load(b + 16) : _mm256_setzero_si256(), sumi = _mm256_setzero_si256();
  for (int c = 0; c < 4; c++) {
    const __m256i q4 = qx_load(ql + 32 * c);
    __m256i lo = _mm256_and_si256(q4, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
    if (five) { /* bits 2c and 2c + 1 of qh[l]; 16-bit shifts, masked to one bit per byte */
      lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
      hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4));
      hb = _mm256_srli_epi16(hb, 2);
    }
    sumi = _mm256_add_epi32(sumi, QX_DOT_US_SC(lo, qx_load(y->q + 64 * c), _mm256_set1_epi16(sc[2 * c])));
    sumi = _mm256_add_epi32(sumi,
                            QX_DOT_US_SC(hi, qx_load(y->q + 64 * c + 32), _mm256_set1_epi16(sc[2 * c + 1])));
  }
  return sumi;
}

/* 6-bit levels l (0..63) from 4 low bits (shifted by lo_shift) and 2 high bits (shifted by hi_shift). */
static inline __m256i qx_six(__m256i ql, int lo_shift, __m256i qh, int hi_shift) {
  const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
  const __m256i lo = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(lo_shift)), m4);
  const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(hi_shift)), m3);
  return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
}

/* Q6_K super-block: sum_g sc_g sum((l - 32) q) = sum_g sc_g sum(l q) - 32 sum_g sc_g bsum_g. */
LMN_QD_INLINE __m256i qx_k6(const uint8_t *b, const lmn_q8k *y) {
  const int8_t *sc = (const int8_t *)(b + 192);
  int32_t off = 0;
  for (int g = 0; g < 16; g++) off += sc[g] * y->bsums[g];
  __m256i sumi = _mm256_setr_epi32(-32 * off, 0, 0, 0, 0, 0, 0, 0);
  for (int h = 0; h < 2; h++) {
    const __m256i qa = qx_load(b + 64 * h), qb = qx_load(b + 64 * h + 32), qh = qx_load(b + 128 + 32 * h);
    const __m256i l[4] = {qx_six(qa, 0, qh, 0), qx_six(qb, 0, qh, 2), qx_six(qa, 4, qh, 4),
                          qx_six(qb, 4, qh, 6)};
    for (int i = 0; i < 4; i++) { /* values 32i .. 32i + 31 of this half: groups 8h + 2i, 8h + 2i + 1 */
      const int g = 8 * h + 2 * i;
      const __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[g + 1]), _mm_set1_epi16(sc[g]));
      sumi = _mm256_add_epi32(sumi, QX_DOT_US_SC(l[i], qx_load(y->q + 128 * h + 32 * i), s));
    }
  }
  return sumi;
}

LMN_QD_INLINE float qx_dot_k(uint32_t type, const uint8_t *w, const lmn_q8k *x, int64_t nsb) {
  const int bytes = lmn_qd_bytes(type);
  __m256 acc = _mm256_setzero_ps();
  float summ = 0.0f;
  for (int64_t s = 0; s < nsb; s++) {
    const uint8_t *b = w + s * bytes;
    if (type == LMN_GGML_Q6_K) {
      acc = _mm256_fmadd_ps(_mm256_set1_ps(LMN_QD_HALF(b + 208) * x[s].d),
                            _mm256_cvtepi32_ps(qx_k6(b, x + s)), acc);
    } else {
      int32_t msum;
      const __m256i si = qx_k45(type == LMN_GGML_Q5_K, b, x + s, &msum);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(LMN_QD_HALF(b) * x[s].d), _mm256_cvtepi32_ps(si), acc);
      summ += (LMN_QD_HALF(b + 2) * x[s].d) * (float)msum;
    }
  }
  return qx_hsum(acc) - summ;
}

/* The 32 levels of v as four vectors of 8 floats. */
static inline void qx_levels_f32(__m256i v, __m256 f[4]) {
  const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
  f[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
  f[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
  f[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
  f[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
}

/* Values k*8 .. k*8 + 7 of a 32-value block as lmn_qd_f32_legacy rounds them: L d, then + m (a product and a
 * sum, never fused). */
static inline __m256 qx_block_values(int has_min, __m256 L, __m256 d, __m256 m) {
  const __m256 p = _mm256_mul_ps(L, d);
  return has_min ? _mm256_add_ps(p, m) : p;
}

/* n values (whole blocks) of a 32-value block row to f32, bit-exact with lmn_dequant_row. */
LMN_QD_INLINE void qx_deq_legacy(uint32_t type, const uint8_t *w, float *y, int64_t n) {
  const int bytes = lmn_qd_bytes(type), has_min = lmn_qd_has_min(type);
  for (int64_t b = 0; b < n / 32; b++) {
    float d, m;
    __m256 f[4];
    qx_levels_f32(qx_legacy(type, w + b * bytes, &d, &m), f);
    const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
    for (int k = 0; k < 4; k++) _mm256_storeu_ps(y + 32 * b + 8 * k, qx_block_values(has_min, f[k], vd, vm));
  }
}

/* Dot of a 32-value block row with f32 x: each block's values (as qx_deq_legacy) times x, four FMA chains. */
LMN_QD_INLINE float qx_dotf_legacy(uint32_t type, const uint8_t *w, const float *x, int64_t cols) {
  const int bytes = lmn_qd_bytes(type), has_min = lmn_qd_has_min(type);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t b = 0; b < cols / 32; b++) {
    float d, m;
    __m256 f[4];
    qx_levels_f32(qx_legacy(type, w + b * bytes, &d, &m), f);
    const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
    for (int k = 0; k < 4; k++)
      acc[k] = _mm256_fmadd_ps(qx_block_values(has_min, f[k], vd, vm), _mm256_loadu_ps(x + 32 * b + 8 * k), acc[k]);
  }
  return qx_hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

#define QX_INSTANCE(T, KIND, DIV)                                           \
  static float qx_dotq_##T(const uint8_t *w, const void *x, int64_t cols) { \
    return qx_dot_##KIND(LMN_GGML_##T, w, x, cols / DIV);                   \
  }
QX_INSTANCE(Q8_0, legacy, 32)
QX_INSTANCE(Q4_0, legacy, 32)
QX_INSTANCE(Q5_0, legacy, 32)
QX_INSTANCE(Q5_1, legacy, 32)
QX_INSTANCE(Q4_K, k, 256)
QX_INSTANCE(Q5_K, k, 256)
QX_INSTANCE(Q6_K, k, 256)
#undef QX_INSTANCE

/* Q4_1, the format of most small GGUF files, two blocks at a time: the nibbles of blocks b and b + 1 in one
 * register (lanes 0-3 hold block b's sums, 4-7 block b + 1's), the low and high nibbles' products added in
 * 16 bits (at most 2 x 2 x 15 x 127 in magnitude), the four fp16 scales and mins converted by one vcvtph2ps
 * and met with the activations' d and s as [d0 m0 d1 m1] * [xd0 xs0 xd1 xs1]. The integer sum of each block
 * is the portable path's; only the order of f32 additions differs. */
static float qx_dotq_Q4_1(const uint8_t *w, const void *xv, int64_t cols) {
  const lmn_q8b *x = xv;
  const int64_t nb = cols / 32;
  const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m128 mins = _mm_setzero_ps(); /* lanes 1 and 3 gather m * s */
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const uint8_t *w0 = w + b * 20, *w1 = w0 + 20;
    const __m256i qs = _mm256_loadu2_m128i((const __m128i *)(w1 + 4), (const __m128i *)(w0 + 4));
    const __m256i lo = _mm256_and_si256(qs, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qs, 4), m4);
    const __m256i xlo = _mm256_loadu2_m128i((const __m128i *)x[b + 1].q, (const __m128i *)x[b].q);
    const __m256i xhi = _mm256_loadu2_m128i((const __m128i *)(x[b + 1].q + 16), (const __m128i *)(x[b].q + 16));
    const __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo), _mm256_maddubs_epi16(hi, xhi));
    const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
    uint32_t h0, h1;
    memcpy(&h0, w0, 4);
    memcpy(&h1, w1, 4);
    const __m128 dm = _mm_cvtph_ps(_mm_unpacklo_epi32(_mm_cvtsi32_si128((int)h0), _mm_cvtsi32_si128((int)h1)));
    const __m128 xds = _mm_loadh_pi(_mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)&x[b].d), (const __m64 *)&x[b + 1].d);
    const __m128 prod = _mm_mul_ps(dm, xds); /* [d0 xd0, m0 xs0, d1 xd1, m1 xs1] */
    mins = _mm_add_ps(mins, prod);
    const __m256 scale = _mm256_set_m128(_mm_permute_ps(prod, 0xaa), _mm_permute_ps(prod, 0x00));
    if (b & 2)
      acc1 = _mm256_fmadd_ps(scale, p, acc1);
    else
      acc0 = _mm256_fmadd_ps(scale, p, acc0);
  }
  float summ = _mm_cvtss_f32(_mm_shuffle_ps(mins, mins, 1)) + _mm_cvtss_f32(_mm_shuffle_ps(mins, mins, 3));
  if (b < nb) acc0 = qx_legacy_term(LMN_GGML_Q4_1, w + b * 20, x + b, acc0, &summ);
  return qx_hsum(_mm256_add_ps(acc0, acc1)) + summ;
}

#define QX_F32_INSTANCE(T)                                                             \
  static void qx_deq_##T(const uint8_t *w, float *y, int64_t n) {                      \
    qx_deq_legacy(LMN_GGML_##T, w, y, n);                                              \
  }                                                                                    \
  static float qx_dotf_##T(const uint8_t *w, const float *x, int64_t cols) {           \
    return qx_dotf_legacy(LMN_GGML_##T, w, x, cols);                                   \
  }
QX_F32_INSTANCE(Q8_0)
QX_F32_INSTANCE(Q4_0)
QX_F32_INSTANCE(Q4_1)
QX_F32_INSTANCE(Q5_0)
QX_F32_INSTANCE(Q5_1)
#undef QX_F32_INSTANCE

/* Every kernel of this path for type: the template's f32 ones (qmat_f32.h), vector ones of this file for
 * the 32-value block types, and the integer ones. */
static int qx_fill(uint32_t type, lmn_qk_ops *ops) {
  ops->dotq = NULL;
  if (!qf_fill(type, ops)) return 0;
  switch (type) {
#define QX_CASE(T) \
  case LMN_GGML_##T: ops->dotq = qx_dotq_##T; break;
    QX_CASE(Q8_0)
    QX_CASE(Q4_0) QX_CASE(Q4_1) QX_CASE(Q5_0) QX_CASE(Q5_1) QX_CASE(Q4_K) QX_CASE(Q5_K) QX_CASE(Q6_K)
#undef QX_CASE
        default : break;
  }
  switch (type) {
#define QX_F32_CASE(T)       \
  case LMN_GGML_##T:         \
    ops->deq = qx_deq_##T;   \
    ops->dotf = qx_dotf_##T; \
    break;
    QX_F32_CASE(Q8_0) QX_F32_CASE(Q4_0) QX_F32_CASE(Q4_1) QX_F32_CASE(Q5_0) QX_F32_CASE(Q5_1)
#undef QX_F32_CASE
        default : break;
  }
  return 1;
}

#endif
