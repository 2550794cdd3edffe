/* qmat.h: products with frozen weights kept in their GGUF block format (F32, F16, BF16, Q8_0, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), never expanded whole to f32:
 *   - lmn_q_matvec*: y = W x for decoding. By default the activations are quantized per block to 8 bits
 *     (a float scale per 32 values for the 32-value formats, per 256 with sums per 16 for the K formats)
 *     and each weight block meets them in an exact integer dot product; the _f32act variants keep x in f32
 *     and multiply dequantized blocks instead.
 *   - lmn_q_matmul / lmn_q_matmul_dx: Y = X W^T and dX = dY W for prefill and for gradients through frozen
 *     vertices, exact in f32: panels of W are dequantized into per-thread scratch and handed to
 *     single-threaded cblas_sgemm calls spread over the pool, or, for X16 weights on the AVX-512 path,
 *     dequantized straight into the layout of an own f32 tile kernel (qtile_avx512.c): no second packing.
 * Every path (portable C, AVX2/FMA/F16C, AVX-512BW/VL/VNNI) is picked once at first use from the CPU, or
 * forced with lmn_q_force_isa. Work is split over the pool by fixed row (or column) chunks, so the bits of
 * every result are the same for any thread count. See docs/quantized.md.
 *
 * Tolerances (tests/test_qmat.c checks each one against a double-precision product with the tensor
 * dequantized by lmn_dequant_row, for every type and path):
 *   quantized activations (lmn_q_matvec, _rows), per output r, with amax_b the largest |x_i| of activation
 *   block b (32 values for the Q*_0/Q*_1 types, 256 for the K types; F32/F16/BF16 never quantize x):
 *       |y_r - ref_r| <= (1 + 1e-4) * sum_b (amax_b / 254) * sum_{i in b} |W_ri|  +  1e-5 * sum_i |W_ri x_i|
 *   The first term is exact, not statistical: x_i is stored as d_b q_i with d_b = amax_b / 127 and q_i the
 *   nearest integer, so |x_i - d_b q_i| <= d_b / 2; the integer dot products are exact; the second term
 *   covers f32 rounding. It implies |y_r - ref_r| <= sqrt(B) / 254 * ||W_r|| ||x|| (B the block size).
 *   Typical errors follow the rounding model (independent errors uniform in +-d_b/2): the RMS over rows of
 *   |y_r - ref_r| / sqrt(sum_b d_b^2 / 12 * ||W_r,b||^2) is tested <= 2 (measured 0.8 to 1.4). For
 *   Gaussian-like x that is roughly 5e-3 (32-value blocks) to 7e-3 (256) of ||W_r|| ||x|| / sqrt(cols), more
 *   when outliers set a block's scale.
 *   f32 activations (lmn_q_matvec_f32act, and every product for F32/F16/BF16 weights):
 *       |y_r - ref_r| <= 1e-5 * sum_i |W_ri x_i|   (the weights are dequantized bit-exactly; only the order
 *                                                  of f32 additions differs; tested for cols <= 1536)
 *   lmn_q_matmul, lmn_q_matmul_dx: the same 1e-5 bound per output (products in f32 of bit-exact weights);
 *   the results are bit-identical across thread counts, and across the three paths except for X16 weights
 *   on the AVX-512 path (the tile path below). The tile path computes each output as an FMA chain (fmaf)
 *   over each chunk of the reduction, the chunks of equal length (LMN_Q_TILE_KC at most, rounded up to a
 *   block for the forward, to 16 rows for dx) added in order, the first as acc + beta * out; the other paths
 * call cblas_sgemm. Across paths, quantized-activation results agree to f32 rounding (they compute the same
 * integers per block and differ only in the order of f32 additions). The portable path is bit-reproducible.
 * Inputs must be finite. */
#ifndef LMN_QMAT_H
#define LMN_QMAT_H

#include <stddef.h>
#include <stdint.h>

#include "bgemm.h"
#include "lmn_error.h"
#include "threads.h"

/* A [rows, cols] weight matrix (nn.Linear's [out, in]) in ggml block format: row r holds cols values as
 * cols / block_size blocks starting at data + r * row_bytes. row_bytes is at least the packed row size
 * (lmn_ggml_row_size); it may be larger (padded rows). Any alignment, except that F32 data used by
 * lmn_q_matmul* must be 4-byte aligned (GGUF aligns tensor data to 32 bytes). */
typedef struct lmn_qtensor {
  uint32_t type; /* lmn_ggml_type */
  int64_t rows, cols;
  const void *data;
  size_t row_bytes;
  int layout; /* LMN_QL_ROWS, or LMN_QL_X16 (lmn_qtensor_repack) */
} lmn_qtensor;

/* Layouts of a tensor's blocks. ROWS: as in the file, row after row. X16: groups of 16 rows, each group
 * 16 * row_bytes bytes (so a group starts where its first row would), holding one tile per block column:
 * tile b of a group holds block b of its 16 rows interleaved for the AVX-512 matrix-vector kernels:
 *   Q4_0: d[16] (fp16), then 4 x 64 bytes: chunk c holds bytes 4c .. 4c + 3 of each row's 16 nibble bytes
 *         (row k at 64c + 4k)                                                        16 x 18 = 288 bytes
 *   Q4_1: d[16], m[16] (fp16), then the 4 chunks as Q4_0                             16 x 20 = 320 bytes
 *   Q8_0: d[16] (fp16), then 8 chunks of 64 bytes: chunk c holds values 4c .. 4c + 3 of each row, each
 *         stored as value + 128 (unsigned)                                           16 x 34 = 544 bytes
 * The same bytes as the file's blocks, rearranged (nothing rounded): every kernel reads either layout,
 * the scalar and AVX2 paths (and dequantization) by gathering a row's blocks back. */
enum { LMN_QL_ROWS = 0, LMN_QL_X16 = 1 };
#define LMN_QL_GROUP 16

/* Instruction-set paths. */
enum { LMN_ISA_AUTO = -1, LMN_ISA_SCALAR = 0, LMN_ISA_AVX2 = 1, LMN_ISA_AVX512 = 2, LMN_ISA_COUNT = 3 };

/* 1 when the kernels take weights of this ggml type. */
int lmn_q_supported(uint32_t type);
/* Fills t for a packed tensor (row_bytes = the packed row size); -1 with err when the type is not supported
 * or cols is not a whole number of blocks or the sizes overflow. */
int lmn_qtensor_init(lmn_qtensor *t, uint32_t type, int64_t rows, int64_t cols, const void *data,
                     lmn_err *err);

/* 1 when W could be repacked to LMN_QL_X16: a ROWS tensor of Q4_0, Q4_1 or Q8_0 with whole groups of 16
 * rows, packed rows (row_bytes the packed size) and 16 * row_bytes within a size_t. */
int lmn_q_x16_possible(const lmn_qtensor *W);
/* 1 when the path in use has matrix-vector kernels for X16 (AVX-512 VNNI) and LMN_Q_REPACK is not "0":
 * what lmn_net_create asks before repacking the frozen matrices it keeps. */
int lmn_q_x16_wanted(void);
/* Writes W's blocks in the X16 layout into dst (rows * row_bytes bytes) and fills *out to describe it (out
 * may alias W). W must be lmn_q_x16_possible. */
void lmn_qtensor_repack(lmn_qtensor *out, const lmn_qtensor *W, void *dst);

/* The path in use (the best one the CPU has, unless forced). */
int lmn_q_isa(void);
/* 1 when this build and CPU can run the path. */
int lmn_q_isa_available(int isa);
/* Forces a path for every later call (LMN_ISA_AUTO: back to the best); -1 when it is not available. A
 * process-wide setting meant for tests and benchmarks: do not call it while a kernel is running. */
int lmn_q_force_isa(int isa);
/* "scalar", "avx2", "avx512", or "?" */
const char *lmn_q_isa_name(int isa);

/* y[rows] = W x[cols] with 8-bit quantized activations (f32 activations for F32/F16/BF16 weights). pool
 * may be NULL. */
void lmn_q_matvec(float *y, const lmn_qtensor *W, const float *x, lmn_pool *pool);
/* The same with x kept in f32: each block is dequantized and multiplied in f32. */
void lmn_q_matvec_f32act(float *y, const lmn_qtensor *W, const float *x, lmn_pool *pool);
/* Y[n, rows] = X[n, cols] W^T, row by row (a few decode streams or a short prefill chunk: W is read once,
 * each chunk of rows meeting all n vectors while it is in cache). Row v of Y is bit-identical to
 * lmn_q_matvec (or _f32act) of row v of X. */
void lmn_q_matvec_rows(float *Y, const lmn_qtensor *W, const float *X, int n, lmn_pool *pool);
void lmn_q_matvec_rows_f32act(float *Y, const lmn_qtensor *W, const float *X, int n, lmn_pool *pool);
/* y[i] = W[i] x for count (at most 4) matrices with the same columns, in one run over the pool, x quantized
 * once (f32act: kept in f32); each y[i] is bit-identical to lmn_q_matvec (or _f32act) of W[i] alone. */
void lmn_q_matvec_multi(float *const *y, const lmn_qtensor *const *W, int count, const float *x, int f32act,
                        lmn_pool *pool);
/* Cached decoding (modules.c, qnet.c) sends products of at most this many rows through lmn_q_matvec_rows
 * (8-bit activations); longer ones (prefill, training) through the exact lmn_q_matmul. */
#define LMN_Q_MATVEC_ROWS 4
/* Longest chunk of the reduction in the tile path of lmn_q_matmul and lmn_q_matmul_dx (see above). */
#define LMN_Q_TILE_KC 1536

/* Dequantizes the block-aligned window rows [r0, r0 + nr) x cols [c0, c0 + nc) of W into dst (row stride
 * ld floats), bit-identical to lmn_dequant_row. c0 and nc must be multiples of the block size (nc may end
 * at cols). For embedding lookups and panels. */
void lmn_q_dequant(float *dst, int64_t ld, const lmn_qtensor *W, int64_t r0, int64_t nr, int64_t c0,
                   int64_t nc);

/* Floats of scratch that lmn_q_matmul and lmn_q_matmul_dx need for a pool of n_threads threads (0 for F32
 * weights, which the panels read in place). */
size_t lmn_q_matmul_work_floats(const lmn_qtensor *W, int n_threads);
/* Y[N, rows] = X[N, cols] W^T + beta * Y (beta = 0: Y is only written). work holds
 * lmn_q_matmul_work_floats(W, lmn_pool_threads(pool)) floats. Panels of rows (a fixed number per shape) are
 * dequantized and multiplied by one cblas_sgemm each, spread over the pool. OpenBLAS is set to one thread
 * for the duration of the call and restored afterwards, because its sgemm rounds differently for different
 * thread counts: the pool is the only parallelism (pass one to use several cores), and the bits of Y do
 * not depend on its size. Not to be called while another thread uses OpenBLAS. The products run in the
 * process's precision (lmn_gemm_precision, bgemm.h: bf16 while training with `precision: bf16`), or in prec
 * for lmn_q_matmul_as. */
void lmn_q_matmul(float *Y, const float *X, const lmn_qtensor *W, int N, float beta, float *work,
                  lmn_pool *pool);
void lmn_q_matmul_as(lmn_precision prec, float *Y, const float *X, const lmn_qtensor *W, int N, float beta,
                     float *work, lmn_pool *pool);
/* dX[N, cols] = dY[N, rows] W + beta * dX: the data gradient of lmn_q_matmul, by panels of columns (each
 * task owns a column slice of dX and walks all rows in a fixed order). Same scratch as lmn_q_matmul. */
void lmn_q_matmul_dx(float *dX, const float *dY, const lmn_qtensor *W, int N, float beta, float *work,
                     lmn_pool *pool);

#endif
