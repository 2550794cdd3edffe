/* qmat.c: the qmat API (see qmat.h): choice of the instruction-set path, quantization of the activations
 * (portable C, the same bytes for every path), the matrix-vector products split over the pool by fixed
 * chunks of rows, and the matrix-matrix products by panels (dequantized into per-thread scratch, or F32
 * weights in place) passed to single-threaded lmn_gemm calls (cblas_sgemm, or bf16 while training in bf16,
 * on AMX with the activations packed once for all panels), or for X16 weights on the AVX-512 path
 * dequantized into an own tile kernel's layout (the tile path). The kernels themselves live in
 * qmat_scalar.c, qmat_avx2.c, qmat_avx512.c and qtile_avx512.c. */
#include "qmat.h"

#include <cblas.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bgemm.h"
#include "qmat_impl.h"

/* ---------------------------------------------------------------- types and paths */

int lmn_q_supported(uint32_t type) {
  switch (type) {
    case LMN_GGML_F32:
    case LMN_GGML_F16:
    case LMN_GGML_BF16:
    case LMN_GGML_Q8_0:
    case LMN_GGML_Q4_0:
    case LMN_GGML_Q4_1:
    case LMN_GGML_Q5_0:
    case LMN_GGML_Q5_1:
    case LMN_GGML_Q4_K:
    case LMN_GGML_Q5_K:
    case LMN_GGML_Q6_K: return 1;
    default: return 0;
  }
}

int lmn_qtensor_init(lmn_qtensor *t, uint32_t type, int64_t rows, int64_t cols, const void *data,
                     lmn_err *err) {
  const char *name = lmn_ggml_type_name(type);
  if (!lmn_q_supported(type))
    return lmn_errf(err, "qmat: weights of type %s are not supported", name ? name : "?");
  uint64_t row_bytes;
  if (lmn_ggml_row_size(type, cols, &row_bytes, err) != 0) return -1;
  if (rows < 0 || (rows > 0 && row_bytes > SIZE_MAX / (uint64_t)rows))
    return lmn_errf(err, "qmat: %" PRId64 " rows of %" PRIu64 " bytes overflow", rows, row_bytes);
  *t = (lmn_qtensor){type, rows, cols, data, (size_t)row_bytes, LMN_QL_ROWS};
  return 0;
}

/* ---------------------------------------------------------------- the X16 layout (qmat.h) */

int lmn_q_x16_possible(const lmn_qtensor *W) {
  const int typed = W->type == LMN_GGML_Q4_0 || W->type == LMN_GGML_Q4_1 || W->type == LMN_GGML_Q8_0;
  uint64_t packed = 0;
  lmn_err err;
  return typed && W->layout == LMN_QL_ROWS && W->rows > 0 && W->rows % LMN_QL_GROUP == 0 && W->cols > 0 &&
         lmn_ggml_row_size(W->type, W->cols, &packed, &err) == 0 && packed == W->row_bytes &&
         W->row_bytes <= SIZE_MAX / LMN_QL_GROUP;
}

/* The file's bytes of block b of row k of an X16 tile (tile: 16 blocks interleaved) into blk, or (scatter)
 * blk into the tile. Q8_0 values are stored + 128 in the tile. */
static void x16_move(uint32_t type, uint8_t *tile, int k, uint8_t *blk, int scatter) {
  const size_t head = lmn_qd_x16_head(type);
  const int chunks = type == LMN_GGML_Q8_0 ? 8 : 4, qs = type == LMN_GGML_Q4_1 ? 4 : 2;
  uint8_t *d = tile + 2 * k, *m = tile + 32 + 2 * k;
  if (scatter) {
    memcpy(d, blk, 2);
    if (type == LMN_GGML_Q4_1) memcpy(m, blk + 2, 2);
  } else {
    memcpy(blk, d, 2);
    if (type == LMN_GGML_Q4_1) memcpy(blk + 2, m, 2);
  }
  const uint32_t flip = type == LMN_GGML_Q8_0 ? 0x80808080u : 0; /* Q8_0: value + 128 = value ^ 0x80 */
  for (int c = 0; c < chunks; c++) {
    uint8_t *t = tile + head + 64 * c + 4 * k, *b = blk + qs + 4 * c;
    uint32_t v;
    memcpy(&v, scatter ? b : t, 4);
    v ^= flip;
    memcpy(scatter ? t : b, &v, 4);
  }
}

void lmn_qtensor_repack(lmn_qtensor *out, const lmn_qtensor *W, void *dst) {
  const size_t bytes = (size_t)lmn_qd_bytes(W->type), nb = (size_t)(W->cols / 32);
  const lmn_qtensor w = *W;
  for (int64_t r = 0; r < w.rows; r++) {
    uint8_t *group = (uint8_t *)dst + (size_t)(r / LMN_QL_GROUP) * LMN_QL_GROUP * w.row_bytes;
    const uint8_t *row = (const uint8_t *)w.data + (size_t)r * w.row_bytes;
    for (size_t b = 0; b < nb; b++)
      x16_move(w.type, group + b * LMN_QL_GROUP * bytes, (int)(r % LMN_QL_GROUP), (uint8_t *)row + b * bytes,
               1);
  }
  *out = w;
  out->data = dst;
  out->layout = LMN_QL_X16;
}

int lmn_q_x16_wanted(void) {
  lmn_qk_ops ops = {0};
  const char *e = getenv("LMN_Q_REPACK");
  return lmn_q_isa() == LMN_ISA_AVX512 && lmn_qk_ops_avx512(LMN_GGML_Q4_1, &ops) && ops.dotq16 &&
         !(e && strcmp(e, "0") == 0);
}

/* Blocks [b0, b0 + nb) of row r of W in the file's layout: in place for ROWS, else gathered into buf
 * (nb blocks). */
static const uint8_t *row_blocks(const lmn_qtensor *W, int64_t r, int64_t b0, int64_t nb, uint8_t *buf) {
  const size_t bytes = (size_t)lmn_qd_bytes(W->type);
  if (W->layout == LMN_QL_ROWS)
    return (const uint8_t *)W->data + (size_t)r * W->row_bytes + (size_t)b0 * bytes;
  const uint8_t *group = (const uint8_t *)W->data + (size_t)(r / LMN_QL_GROUP) * LMN_QL_GROUP * W->row_bytes;
  for (int64_t b = 0; b < nb; b++)
    x16_move(W->type, (uint8_t *)group + (size_t)(b0 + b) * LMN_QL_GROUP * bytes, (int)(r % LMN_QL_GROUP),
             buf + (size_t)b * bytes, 0);
  return buf;
}

#if defined(__x86_64__) || defined(__i386__)
/* F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does not know "f16c". */
static int cpu_has_f16c(void) {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

/* The path in use; -1 until the first call chooses one. A process-wide choice (CPU features do not
 * change), atomic so that concurrent first calls agree. */
static atomic_int isa_in_use = -1;

int lmn_q_isa_available(int isa) {
  lmn_qk_ops ops;
  switch (isa) {
    case LMN_ISA_SCALAR: return 1;
#if defined(__x86_64__) || defined(__i386__)
    case LMN_ISA_AVX2:
      __builtin_cpu_init();
      return lmn_qk_ops_avx2(LMN_GGML_F32, &ops) && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("fma") && cpu_has_f16c();
    case LMN_ISA_AVX512:
      return lmn_q_isa_available(LMN_ISA_AVX2) && lmn_qk_ops_avx512(LMN_GGML_F32, &ops) &&
             __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
    default: (void)ops; return 0;
  }
}

static int best_isa(void) {
  for (int isa = LMN_ISA_COUNT - 1; isa > LMN_ISA_SCALAR; isa--)
    if (lmn_q_isa_available(isa)) return isa;
  return LMN_ISA_SCALAR;
}

int lmn_q_isa(void) {
  int isa = atomic_load(&isa_in_use);
  if (isa < 0) {
    isa = best_isa();
    atomic_store(&isa_in_use, isa);
  }
  return isa;
}

int lmn_q_force_isa(int isa) {
  if (isa == LMN_ISA_AUTO) isa = best_isa();
  if (!lmn_q_isa_available(isa)) return -1;
  atomic_store(&isa_in_use, isa);
  return 0;
}

const char *lmn_q_isa_name(int isa) {
  static const char *const names[LMN_ISA_COUNT] = {"scalar", "avx2", "avx512"};
  return isa >= 0 && isa < LMN_ISA_COUNT ? names[isa] : "?";
}

/* Kernels of the path in use for W's type (W is supported: callers pass tensors from lmn_qtensor_init). */
static lmn_qk_ops kernels(uint32_t type) {
  lmn_qk_ops ops = {0};
  switch (lmn_q_isa()) {
    case LMN_ISA_AVX512: lmn_qk_ops_avx512(type, &ops); break;
    case LMN_ISA_AVX2: lmn_qk_ops_avx2(type, &ops); break;
    default: lmn_qk_ops_scalar(type, &ops); break;
  }
  return ops;
}

/* ---------------------------------------------------------------- activations */

/* Scale of a block of n values: d = amax / 127, and its inverse (0 for an all-zero block). */
static float act_scale(const float *x, int n, float *inv) {
  float amax = 0.0f;
  for (int j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
  const float d = amax / 127.0f;
  *inv = d > 0.0f ? 1.0f / d : 0.0f;
  return d;
}

/* The nearest level, halves away from zero (as ggml's reference quantizer rounds). */
static int8_t act_level(float v, float inv) {
  long q = lroundf(v * inv);
  return (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
}

void lmn_q8b_quantize(const float *x, lmn_q8b *out, int64_t nb) {
  for (int64_t b = 0; b < nb; b++, x += 32) {
    float inv;
    const float d = act_scale(x, 32, &inv);
    int32_t sum = 0;
    for (int j = 0; j < 32; j++) sum += out[b].q[j] = act_level(x[j], inv);
    out[b].d = d;
    out[b].s = d * (float)sum;
    out[b].sum = sum;
  }
}

static void quant_q8k(const float *x, lmn_q8k *out, int64_t nsb) {
  for (int64_t s = 0; s < nsb; s++, x += 256) {
    float inv;
    out[s].d = act_scale(x, 256, &inv);
    for (int g = 0; g < 16; g++) {
      int sum = 0;
      for (int j = 16 * g; j < 16 * g + 16; j++) sum += out[s].q[j] = act_level(x[j], inv);
      out[s].bsums[g] = (int16_t)sum;
    }
  }
}

/* Bytes of one quantized activation vector for W's type; 0 when the type keeps f32 activations. */
static size_t act_bytes(const lmn_qtensor *W) {
  switch (lmn_qd_blck(W->type)) {
    case 32: return (size_t)(W->cols / 32) * sizeof(lmn_q8b);
    case 256: return (size_t)(W->cols / 256) * sizeof(lmn_q8k);
    default: return 0;
  }
}

static void quantize(const lmn_qtensor *W, const float *x, void *out) {
  if (lmn_qd_blck(W->type) == 32)
    (lmn_q_isa() == LMN_ISA_AVX512 ? lmn_q8b_quantize_avx512 : lmn_q8b_quantize)(x, out, W->cols / 32);
  else
    quant_q8k(x, out, W->cols / 256);
}

/* ---------------------------------------------------------------- matrix-vector */

typedef struct mv_job {
  const lmn_qtensor *W;
  lmn_qk_ops ops;
  const uint8_t *xq; /* n quantized vectors of stride bytes, or NULL: f32 activations X */
  size_t stride;
  const float *X;
  float *Y;
  int n;
  int64_t chunk; /* rows per task */
} mv_job;

/* Rows r0 .. r1 of an X16 tensor (whole groups) by the path's 16-row kernels. */
static void mv_groups(const mv_job *j, int64_t r0, int64_t r1) {
  const lmn_qtensor *W = j->W;
  for (int64_t g = r0; g < r1; g += LMN_QL_GROUP) {
    const uint8_t *group = (const uint8_t *)W->data + (size_t)g * W->row_bytes;
    for (int v = 0; v < j->n; v++) {
      float *y = j->Y + (size_t)v * (size_t)W->rows + g;
      if (j->xq)
        j->ops.dotq16(group, (const lmn_q8b *)(const void *)(j->xq + v * j->stride), W->cols, y);
      else
        j->ops.dotf16(group, j->X + (size_t)v * (size_t)W->cols, W->cols, y);
    }
  }
}

#define MV_PIECE 64 /* blocks of a row gathered at a time from an X16 tensor for the row kernels */

/* Row r of W against vector v: the row kernel on the file's blocks (an X16 row gathered back piece by
 * piece, the pieces' results added in order). */
static float mv_row(const mv_job *j, int64_t r, int v) {
  const lmn_qtensor *W = j->W;
  const int blck = lmn_qd_blck(W->type);
  const int64_t nb = W->cols / blck, piece = W->layout == LMN_QL_ROWS ? nb : MV_PIECE;
  _Alignas(64) uint8_t buf[MV_PIECE * 34];
  float y = 0.0f;
  for (int64_t b0 = 0; b0 < nb; b0 += piece) {
    const int64_t n = nb - b0 < piece ? nb - b0 : piece;
    const uint8_t *w = row_blocks(W, r, b0, n, buf);
    y += j->xq ? j->ops.dotq(w, j->xq + v * j->stride + (size_t)b0 * sizeof(lmn_q8b), n * blck)
               : j->ops.dotf(w, j->X + (size_t)v * (size_t)W->cols + b0 * blck, n * blck);
  }
  return y;
}

static void mv_task(void *p, int task, int thread) {
  (void)thread;
  const mv_job *j = p;
  const lmn_qtensor *W = j->W;
  const int64_t r0 = (int64_t)task * j->chunk, r1 = r0 + j->chunk < W->rows ? r0 + j->chunk : W->rows;
  if (W->layout == LMN_QL_X16 && (j->xq ? j->ops.dotq16 != NULL : j->ops.dotf16 != NULL))
    return mv_groups(j, r0, r1);
  for (int64_t r = r0; r < r1; r++)
    for (int v = 0; v < j->n; v++) j->Y[(size_t)v * (size_t)W->rows + r] = mv_row(j, r, v);
}

/* Rows per matrix-vector task: about 16 KiB of weights (whole groups of X16), fixed by W's shape. */
static int64_t mv_chunk(const lmn_qtensor *W) {
  const int64_t c = W->row_bytes >= 16384 ? 1 : (int64_t)(16384 / (W->row_bytes ? W->row_bytes : 1));
  if (W->layout == LMN_QL_ROWS) return c;
  return c < LMN_QL_GROUP ? LMN_QL_GROUP : c / LMN_QL_GROUP * LMN_QL_GROUP;
}

/* Runs n vectors (quantized in xq, or f32 in X) through W over the pool. */
static void mv_run(float *Y, const lmn_qtensor *W, lmn_qk_ops ops, const uint8_t *xq, size_t stride,
                   const float *X, int n, lmn_pool *pool) {
  const int64_t chunk = mv_chunk(W);
  mv_job j = {W, ops, xq, stride, X, Y, n, chunk};
  lmn_pool_run(pool, (int)((W->rows + chunk - 1) / chunk), mv_task, &j);
}

#define MV_STACK 16384 /* bytes of quantized activations kept on the stack (cols up to 13k at once) */

static void matvec(float *Y, const lmn_qtensor *W, const float *X, int n, int f32act, lmn_pool *pool);

/* Several matrices against one vector in one run over the pool: the tasks of every matrix in a row (the
 * chunks of each as mv_run cuts them, so each result is bit-identical to its own lmn_q_matvec). */
#define MV_MULTI_MAX 4
typedef struct mv_multi {
  mv_job jobs[MV_MULTI_MAX];
  int first[MV_MULTI_MAX + 1]; /* task index where each matrix starts */
  int count;
} mv_multi;

static void mv_multi_task(void *p, int task, int thread) {
  const mv_multi *m = p;
  int i = 0;
  while (task >= m->first[i + 1]) i++;
  mv_task((void *)&m->jobs[i], task - m->first[i], thread);
}

void lmn_q_matvec_multi(float *const *y, const lmn_qtensor *const *W, int count, const float *x, int f32act,
                        lmn_pool *pool) {
  int same = count >= 1 && count <= MV_MULTI_MAX;
  for (int i = 1; same && i < count; i++)
    same = W[i]->cols == W[0]->cols && lmn_qd_blck(W[i]->type) == lmn_qd_blck(W[0]->type);
  const lmn_qk_ops ops0 = same ? kernels(W[0]->type) : (lmn_qk_ops){0};
  const size_t stride = same && !f32act && ops0.dotq ? act_bytes(W[0]) : 0;
  if (!same || stride > MV_STACK || W[0]->cols == 0) { /* one at a time */
    for (int i = 0; i < count; i++) matvec(y[i], W[i], x, 1, f32act, pool);
    return;
  }
  _Alignas(64) uint8_t xq[MV_STACK];
  if (stride) quantize(W[0], x, xq); /* one rounding of x serves every matrix */
  mv_multi m = {.count = count};
  m.first[0] = 0;
  for (int i = 0; i < count; i++) {
    const lmn_qtensor *w = W[i];
    const int64_t chunk = mv_chunk(w);
    const lmn_qk_ops ops = kernels(w->type);
    const int q = stride && ops.dotq;
    m.jobs[i] = (mv_job){w, ops, q ? xq : NULL, stride, x, y[i], 1, chunk};
    m.first[i + 1] = m.first[i] + (int)((w->rows + chunk - 1) / chunk);
  }
  lmn_pool_run(pool, m.first[count], mv_multi_task, &m);
}

static void matvec(float *Y, const lmn_qtensor *W, const float *X, int n, int f32act, lmn_pool *pool) {
  if (W->rows <= 0 || n <= 0) return;
  if (W->cols == 0) {
    memset(Y, 0, (size_t)n * (size_t)W->rows * sizeof *Y);
    return;
  }
  const lmn_qk_ops ops = kernels(W->type);
  const size_t stride = f32act || !ops.dotq ? 0 : act_bytes(W);
  _Alignas(64) uint8_t stack[MV_STACK];
  uint8_t *heap = NULL, *buf = stack;
  int group = n; /* vectors quantized at a time */
  if (stride && (size_t)n * stride > MV_STACK) {
    heap = malloc((size_t)n * stride);
    if (heap)
      buf = heap;
    else
      group = (int)(MV_STACK / stride);
  }
  if (stride == 0 || group == 0) { /* f32 activations (by request, by type, or out of memory) */
    mv_run(Y, W, ops, NULL, 0, X, n, pool);
  } else {
    for (int v0 = 0; v0 < n; v0 += group) {
      const int g = n - v0 < group ? n - v0 : group;
      for (int v = 0; v < g; v++) quantize(W, X + (size_t)(v0 + v) * W->cols, buf + v * stride);
      mv_run(Y + (size_t)v0 * W->rows, W, ops, buf, stride, NULL, g, pool);
    }
  }
  free(heap);
}

void lmn_q_matvec(float *y, const lmn_qtensor *W, const float *x, lmn_pool *pool) {
  matvec(y, W, x, 1, 0, pool);
}
void lmn_q_matvec_f32act(float *y, const lmn_qtensor *W, const float *x, lmn_pool *pool) {
  matvec(y, W, x, 1, 1, pool);
}
void lmn_q_matvec_rows(float *Y, const lmn_qtensor *W, const float *X, int n, lmn_pool *pool) {
  matvec(Y, W, X, n, 0, pool);
}
void lmn_q_matvec_rows_f32act(float *Y, const lmn_qtensor *W, const float *X, int n, lmn_pool *pool) {
  matvec(Y, W, X, n, 1, pool);
}

/* ---------------------------------------------------------------- dequantization */

static void dequant_with(lmn_qk_ops ops, float *dst, int64_t ld, const lmn_qtensor *W, int64_t r0, int64_t nr,
                         int64_t c0, int64_t nc) {
  const int64_t blck = lmn_qd_blck(W->type), b0 = c0 / blck, nb = (nc + blck - 1) / blck;
  const int64_t piece = W->layout == LMN_QL_ROWS ? nb : MV_PIECE;
  _Alignas(64) uint8_t buf[MV_PIECE * 34];
  if (W->layout == LMN_QL_X16 && ops.deq16) { /* whole groups a block at a time, else a row at a time */
    for (int64_t i = 0; i < nr;) {
      const int64_t r = r0 + i;
      const uint8_t *group =
          (const uint8_t *)W->data + (size_t)(r / LMN_QL_GROUP) * LMN_QL_GROUP * W->row_bytes;
      if (ops.packr16 && r % LMN_QL_GROUP == 0 && nr - i >= LMN_QL_GROUP && nc == nb * blck) {
        for (int64_t b = 0; b < nb; b++) ops.packr16(group, b0 + b, dst + i * ld + b * blck, ld);
        i += LMN_QL_GROUP;
        continue;
      }
      ops.deq16(group, (int)(r % LMN_QL_GROUP), b0, nb, dst + i * ld);
      i++;
    }
    return;
  }
  for (int64_t i = 0; i < nr; i++)
    for (int64_t b = 0; b < nb; b += piece) {
      const int64_t n = nb - b < piece ? nb - b : piece,
                    vals = nc - b * blck < n * blck ? nc - b * blck : n * blck;
      ops.deq(row_blocks(W, r0 + i, b0 + b, n, buf), dst + i * ld + b * blck, vals);
    }
}

void lmn_q_dequant(float *dst, int64_t ld, const lmn_qtensor *W, int64_t r0, int64_t nr, int64_t c0,
                   int64_t nc) {
  dequant_with(kernels(W->type), dst, ld, W, r0, nr, c0, nc);
}

/* ---------------------------------------------------------------- matrix-matrix */

#define PANEL_FLOATS 131072 /* target size of one thread's panel (512 KiB) */

static int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}
static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/* Forward panels: fwd_rows rows of all columns. dx panels: dx_rows rows of dx_cols columns (a whole number
 * of blocks, at least 64 values). All depend on W's shape only, never on the thread count. */
static int64_t fwd_rows(const lmn_qtensor *W) {
  const int64_t r = clamp64(PANEL_FLOATS / (W->cols > 0 ? W->cols : 1), 16, 256);
  /* a multiple of 4 panels (of a multiple of 8 rows), so that 2 or 4 threads get equal shares */
  int64_t n = (W->rows + r - 1) / r;
  n = (n + 3) / 4 * 4;
  const int64_t rows = ((W->rows + n - 1) / n + 7) / 8 * 8;
  return min64(rows, W->rows);
}
static int64_t dx_cols(const lmn_qtensor *W) {
  return min64(lmn_qd_blck(W->type) > 64 ? lmn_qd_blck(W->type) : 64, W->cols);
}
static int64_t dx_rows(const lmn_qtensor *W) {
  return min64(clamp64(PANEL_FLOATS / (dx_cols(W) > 0 ? dx_cols(W) : 1), 16, 1024), W->rows);
}
static size_t panel_floats(const lmn_qtensor *W) {
  const int64_t f = fwd_rows(W) * W->cols, d = dx_rows(W) * dx_cols(W);
  return (size_t)(f > d ? f : d);
}

/* ---- the tile path: f32 products with X16 weights where the path has a tile kernel (AVX-512) ----
 * No OpenBLAS and no f32 copy of a panel that something else packs again: W is cut into panels of 32 rows
 * (forward: dequantized k-major by packk16 straight into the kernel's layout) or of 32 columns, one block
 * (dx: its rows dequantized by packr16, a group at a time), a task takes up to TILE_NP panels (as many as
 * give the threads equal shares), dequantizes them chunk by chunk of the reduction into its thread's
 * scratch and runs the tile kernel over every row of X (or dY), TILE_TB rows at a time so that they stay in
 * cache across its panels.
 * An output is one FMA chain per chunk of the reduction (the chunks fixed by the shape: at most TILE_KC
 * long), added up in order, so its bits depend on the operands and W's shape only: not on the tasks, the
 * threads, N, or where the row sits in X. */
#define TILE_W 32             /* panel width */
#define TILE_NP 4             /* panels per task, at most */
#define TILE_KC LMN_Q_TILE_KC /* longest chunk of the reduction */
#define TILE_TB 96            /* rows of X (dY) per pass over a task's panels */

/* Chunk length of a reduction of K values in steps of `step` (a block of the forward's columns, a group
 * of dx's rows): ceil(K / TILE_KC) chunks of equal length, rounded up to steps. */
static int64_t tile_chunk(int64_t K, int64_t step) {
  const int64_t n = (K + TILE_KC - 1) / TILE_KC, len = (K + n - 1) / n;
  return (len + step - 1) / step * step;
}
static int64_t tile_panels(const lmn_qtensor *W, int dx) {
  return ((dx ? W->cols : W->rows) + TILE_W - 1) / TILE_W;
}
static int tile_path(const lmn_qtensor *W, lmn_qk_ops ops, lmn_precision prec) {
  return prec == LMN_PREC_F32 && W->layout == LMN_QL_X16 && ops.packk16 && ops.packr16 && ops.tile;
}
static size_t tile_floats(const lmn_qtensor *W) {
  const int64_t K = W->cols > W->rows ? W->cols : W->rows;
  return (size_t)TILE_NP * TILE_W * (size_t)(K < TILE_KC ? K : TILE_KC + TILE_W);
}

size_t lmn_q_matmul_work_floats(const lmn_qtensor *W, int n_threads) {
  if (W->type == LMN_GGML_F32) return 0;
  const size_t p = panel_floats(W), t = tile_floats(W), f = p > t ? p : t; /* any layout: W may be repacked */
  /* whole cache lines, and one more: the tile path aligns each thread's panels to 64 bytes (malloc's
   * large blocks start 16 bytes into a page, and a misaligned panel splits every load of the kernel) */
  return ((f + 15) / 16 * 16 + 16) * (size_t)(n_threads > 0 ? n_threads : 1);
}

typedef struct mm_job {
  const lmn_qtensor *W;
  lmn_qk_ops ops;
  const float *A; /* X (forward) or dY (dx) */
  float *C;       /* Y or dX */
  int N;
  float beta;
  float *work;
  size_t panel;
  lmn_precision prec; /* of the products with the panels */
  lmn_bgemm_a pa;     /* bf16 on AMX: A packed once for every panel's product (pa.p NULL: each packs it) */
} mm_job;

/* The panel rows [r0, r0 + nr) x cols [c0, c0 + nc) of W as f32 with its row stride: F32 weights in place,
 * the other types dequantized into this thread's scratch. */
static const float *panel(const mm_job *j, int thread, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
                          int *ld) {
  const lmn_qtensor *W = j->W;
  if (W->type == LMN_GGML_F32) {
    *ld = (int)(W->row_bytes / 4);
    return (const float *)W->data + (size_t)r0 * (size_t)*ld + (size_t)c0;
  }
  float *P = j->work + (size_t)thread * j->panel;
  dequant_with(j->ops, P, nc, W, r0, nr, c0, nc);
  *ld = (int)nc;
  return P;
}

/* C[N, n] = A[:, k0 : k0 + K] op(P) + beta C, op(P) = P^T (forward: A = X) or P (dx: A = dY), A's rows
 * being W->cols (forward) or W->rows (dx) long: from the A packed once when there is one and the columns
 * fall on its blocks, else one lmn_gemm_as packing its own (the same bits either way). */
static void panel_product(const mm_job *j, int fwd, int64_t k0, int64_t K, int64_t n, const float *P, int ld,
                          float beta, float *C) {
  const int lda = (int)(fwd ? j->W->cols : j->W->rows), ldc = (int)(fwd ? j->W->rows : j->W->cols);
  if (j->pa.p && lmn_bgemm_with_a(&j->pa, (int)k0, (int)K, fwd, (int)n, 1.0f, P, ld, beta, C, ldc) == 0)
    return;
  lmn_gemm_as(j->prec, 0, fwd, j->N, (int)n, (int)K, 1.0f, j->A + k0, lda, P, ld, beta, C, ldc);
}

/* Y[:, r0 : r0 + nr] = X P^T + beta Y, P = rows r0 .. r0 + nr of W. */
static void mm_fwd_task(void *p, int task, int thread) {
  const mm_job *j = p;
  const lmn_qtensor *W = j->W;
  const int64_t R = fwd_rows(W), r0 = (int64_t)task * R, nr = min64(R, W->rows - r0);
  int ld;
  const float *P = panel(j, thread, r0, nr, 0, W->cols, &ld);
  panel_product(j, 1, 0, W->cols, nr, P, ld, j->beta, j->C + r0);
}

/* dX[:, c0 : c0 + nc] = sum over row panels, in order, of dY[:, r0 : r0 + nr] P (+ beta dX once). */
static void mm_dx_task(void *p, int task, int thread) {
  const mm_job *j = p;
  const lmn_qtensor *W = j->W;
  const int64_t CW = dx_cols(W), R = dx_rows(W), c0 = (int64_t)task * CW, nc = min64(CW, W->cols - c0);
  for (int64_t r0 = 0; r0 < W->rows; r0 += R) {
    const int64_t nr = min64(R, W->rows - r0);
    int ld;
    const float *P = panel(j, thread, r0, nr, c0, nc, &ld);
    panel_product(j, 0, r0, nr, nc, P, ld, r0 == 0 ? j->beta : 1.0f, j->C + c0);
  }
}

typedef struct tile_job {
  mm_job mm;
  int dx, np;          /* dx: the data gradient; panels per task */
  int64_t K, kc, step; /* reduction length, chunk, step */
} tile_job;

/* Panels [p0, p0 + np) for the chunk [k0, k0 + kn) of the reduction into P (panel q at P + q kn 32 floats),
 * their widths into width. dx walks W's groups in order, a group's np tiles side by side in memory, and
 * prefetches the next group's: it lies 16 rows further, on another page, where the hardware prefetcher
 * does not follow (the forward reads each group's tiles in order). */
static void tile_pack(const tile_job *j, int64_t p0, int64_t np, int64_t k0, int64_t kn, float *P,
                      int *width) {
  const lmn_qtensor *W = j->mm.W;
  const uint8_t *base = W->data;
  const size_t group = LMN_QL_GROUP * W->row_bytes, tile = LMN_QL_GROUP * (size_t)lmn_qd_bytes(W->type);
  if (j->dx) {
    for (int64_t q = 0; q < np; q++) width[q] = TILE_W;
    for (int64_t r = k0; r < k0 + kn; r += LMN_QL_GROUP) { /* block p0 + q of rows r .. r + 16 */
      const uint8_t *g = base + (size_t)(r / LMN_QL_GROUP) * group;
      for (size_t b = 0; r + LMN_QL_GROUP < k0 + kn && b < (size_t)np * tile; b += 64)
        __builtin_prefetch(g + group + (size_t)p0 * tile + b);
      for (int64_t q = 0; q < np; q++)
        j->mm.ops.packr16(g, p0 + q, P + (size_t)q * (size_t)kn * TILE_W + (r - k0) * TILE_W, TILE_W);
    }
    return;
  }
  for (int64_t q = 0; q < np; q++) { /* rows r0 .. r0 + 32 (16 for a last odd group), one group a half */
    const int64_t r0 = (p0 + q) * TILE_W;
    width[q] = (int)min64(TILE_W, W->rows - r0);
    for (int64_t g = 0; g < width[q] / LMN_QL_GROUP; g++)
      j->mm.ops.packk16(base + (size_t)(r0 / LMN_QL_GROUP + g) * group, k0 / 32, kn / 32,
                        P + (size_t)q * (size_t)kn * TILE_W + g * LMN_QL_GROUP);
  }
}

static void tile_task(void *p, int task, int thread) {
  const tile_job *j = p;
  const mm_job *m = &j->mm;
  const int64_t p0 = (int64_t)task * j->np, np = min64(j->np, tile_panels(m->W, j->dx) - p0);
  const int64_t out = j->dx ? m->W->cols : m->W->rows; /* C's row stride; A's is K */
  float *P = (float *)(((uintptr_t)(m->work + (size_t)thread * m->panel) + 63) & ~(uintptr_t)63);
  int width[TILE_NP];
  for (int64_t k0 = 0; k0 < j->K; k0 += j->kc) {
    const int64_t kn = min64(j->kc, j->K - k0);
    tile_pack(j, p0, np, k0, kn, P, width);
    for (int t0 = 0; t0 < m->N; t0 += TILE_TB)
      for (int64_t q = 0; q < np; q++)
        m->ops.tile(m->N - t0 < TILE_TB ? m->N - t0 : TILE_TB, kn, m->A + (size_t)t0 * (size_t)j->K + k0,
                    j->K, P + (size_t)q * (size_t)kn * TILE_W,
                    m->C + (size_t)t0 * (size_t)out + (p0 + q) * TILE_W, out, width[q], m->beta, k0 > 0);
  }
}

/* Y = X W^T + beta Y (dx = 0) or dX = dY W + beta dX (dx = 1) by the tile path. */
static void tile_run(lmn_pool *pool, mm_job m, int dx) {
  tile_job j = {m, dx, TILE_NP, dx ? m.W->rows : m.W->cols, 0, dx ? LMN_QL_GROUP : 32};
  j.kc = tile_chunk(j.K, j.step);
  const int64_t panels = tile_panels(m.W, dx);
  /* as many panels a task as leave every thread the same number of tasks (the bits are the same) */
  while (j.np > 1 && panels % (j.np * (int64_t)lmn_pool_threads(pool)) != 0) j.np--;
  lmn_pool_run(pool, (int)((panels + j.np - 1) / j.np), tile_task, &j);
}

/* C[N, n] = beta C (an empty product). */
static void scale_out(float *C, int N, int64_t n, float beta) {
  for (size_t i = 0; i < (size_t)N * (size_t)n; i++) C[i] = beta == 0.0f ? 0.0f : beta * C[i];
}

/* Runs the panel tasks on the pool with OpenBLAS single-threaded (and restores its setting): the pool is
 * the only parallelism, because OpenBLAS's sgemm rounds differently for different thread counts. */
static void mm_run(lmn_pool *pool, int n_tasks, lmn_task_fn fn, mm_job *j) {
  const int prev = openblas_get_num_threads();
  if (prev != 1) openblas_set_num_threads(1);
  lmn_pool_run(pool, n_tasks, fn, j);
  if (prev != 1) openblas_set_num_threads(prev);
}

void lmn_q_matmul(float *Y, const float *X, const lmn_qtensor *W, int N, float beta, float *work,
                  lmn_pool *pool) {
  lmn_q_matmul_as(lmn_gemm_precision(), Y, X, W, N, beta, work, pool);
}

void lmn_q_matmul_as(lmn_precision prec, float *Y, const float *X, const lmn_qtensor *W, int N, float beta,
                     float *work, lmn_pool *pool) {
  if (N <= 0 || W->rows <= 0) return;
  if (W->cols == 0) {
    scale_out(Y, N, W->rows, beta);
    return;
  }
  mm_job j = {W, kernels(W->type), X, Y, N, beta, work, lmn_q_matmul_work_floats(W, 1), prec, {0}};
  if (tile_path(W, j.ops, prec)) {
    tile_run(pool, j, 0);
    return;
  }
  if (prec == LMN_PREC_BF16 && lmn_bgemm_pack_a(N, (int)W->cols, X, (int)W->cols, &j.pa) != 0) j.pa.p = NULL;
  mm_run(pool, (int)((W->rows + fwd_rows(W) - 1) / fwd_rows(W)), mm_fwd_task, &j);
}

void lmn_q_matmul_dx(float *dX, const float *dY, const lmn_qtensor *W, int N, float beta, float *work,
                     lmn_pool *pool) {
  if (N <= 0 || W->cols <= 0) return;
  if (W->rows == 0) {
    scale_out(dX, N, W->cols, beta);
    return;
  }
  mm_job j = {
      W, kernels(W->type), dY, dX, N, beta, work, lmn_q_matmul_work_floats(W, 1), lmn_gemm_precision(), {0}};
  if (tile_path(W, j.ops, j.prec)) {
    tile_run(pool, j, 1);
    return;
  }
  if (j.prec == LMN_PREC_BF16 && lmn_bgemm_pack_a(N, (int)W->rows, dY, (int)W->rows, &j.pa) != 0)
    j.pa.p = NULL;
  mm_run(pool, (int)((W->cols + dx_cols(W) - 1) / dx_cols(W)), mm_dx_task, &j);
}
