/* bgemm.h: the matrix products of training in bf16 with f32 accumulation (`precision: bf16`), and
 * lmn_gemm, the one entry point through which the runtime's training GEMMs go in either precision.
 *
 * Semantics of a bf16 product, on every path: both operands are rounded to bf16 (round to nearest even),
 * the products of two bf16 values are exact in f32, and they are summed in f32:
 *   C[M,N] = alpha * bf16(op(A))[M,K] bf16(op(B))[K,N] + beta * C      (row-major, op = transpose or not)
 * beta == 0 never reads C. The order of the sums depends on the path and the shapes only (never on the
 * thread count): every call is single-threaded and deterministic.
 *
 * Paths, chosen once per process by CPU features (lmn_bgemm_force_isa overrides, e.g. in tests):
 *   AMX      Intel AMX tiles (TDPBF16PS: a 16x16 f32 tile += a 16x32 by 32x16 bf16 product), operands
 *            packed per call into tiles (vectorised with AVX-512 BF16 conversions). On the machine it was
 *            written on (a Xeon with AMX): ~3.4 TFLOP/s per core against ~0.22 for f32 FMA and ~0.11 for
 *            AVX512_BF16's vdpbf16ps, which is why vdpbf16ps is not used at all.
 *   portable both operands rounded to bf16 values held in f32 copies (by blocks of 256 k), then cblas_sgemm:
 *            the same numbers (exact products, f32 sums), at the speed of f32; any CPU.
 * The environment variable LMN_BGEMM=portable (or amx) picks a path that runs here instead of the best.
 * Scratch: a per-thread buffer that grows to the largest call's blocks (at most ~1.1 MiB on the AMX path,
 * (M + N) * 256 floats on the portable one) and is freed when the thread exits. */
#ifndef LMN_BGEMM_H
#define LMN_BGEMM_H

#include <stddef.h>

typedef enum lmn_bgemm_path {
  LMN_BG_AUTO = -1,
  LMN_BG_PORTABLE = 0,
  LMN_BG_AMX,
  LMN_BG_COUNT
} lmn_bgemm_path;

/* 1 when the path can run here (AMX: the CPU has AMX-BF16 and AVX512-BF16 and the kernel granted the
 * process its tile state). */
int lmn_bgemm_isa_available(int isa);
/* The path in use (chosen at the first call). */
int lmn_bgemm_isa(void);
/* Uses path isa from now on (LMN_BG_AUTO: the best available); -1 when it cannot run here. */
int lmn_bgemm_force_isa(int isa);
const char *lmn_bgemm_isa_name(int isa);

/* C = alpha * bf16(op(A)) bf16(op(B)) + beta * C as above; trans* nonzero: op(X) = X^T (as cblas). */
void lmn_bgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

/* ---- weights packed once for a stretch of bf16 training ----
 * On the AMX path every product packs its B operand into tiles, which for a weight matrix W multiplied by a
 * few row chunks at a time costs as much as the product itself. A set registers the weight matrices of a
 * network; lmn_bpack_refresh packs them all (from their current values, spread over the pool) and while the
 * set is in use (lmn_bpack_use) lmn_bgemm takes those tiles for any B operand that is a registered matrix
 * (or a slice of one on tile boundaries) instead of packing it. The caller promises that the registered
 * weights do not change while the set is in use (train.c: from the start of a step's first forward to the
 * end of its last backward, and during evaluation). The results are the same bits as without the set. */
typedef struct lmn_bpack lmn_bpack;
enum { LMN_BPACK_FWD = 1, LMN_BPACK_DX = 2 }; /* layouts: for x W^T, and for dy W */
/* n matrices W[i] [rows[i], cols[i]] in the given layouts; fixed[i]: packed at the first refresh only (frozen
 * weights). NULL when the AMX path is not in use, n is 0, or memory runs out: products then pack per call. */
lmn_bpack *lmn_bpack_create(const float *const *W, const int *rows, const int *cols, const unsigned *layouts,
                            const int *fixed, int n);
struct lmn_pool;
void lmn_bpack_refresh(lmn_bpack *set, struct lmn_pool *pool);
void lmn_bpack_use(lmn_bpack *set); /* NULL: none */
size_t lmn_bpack_bytes(const lmn_bpack *set);
size_t lmn_bpack_hits(lmn_bpack *set); /* products so far that took the set's tiles */
void lmn_bpack_free(lmn_bpack *set);

/* ---- an A operand packed once for many products (the AMX path) ----
 * qmat.c multiplies one activation matrix by every panel of a weight kept in its file's format: packing A
 * once, instead of in every product, saves a pass over A per panel. The products run the same K blocks as
 * lmn_bgemm, so they give the same bits. */
typedef struct lmn_bgemm_a {
  const void *p; /* bf16, per K block of the AMX path, rows of A */
  int M, K;
} lmn_bgemm_a;
/* Packs A [M, K] (row-major, leading dimension lda, not transposed) into this thread's A scratch and
 * describes it in *out: 0, or -1 when the AMX path is not in use, the packing would take more than
 * LMN_BG_PACK_A_MAX bytes (a scratch that large would stay with the thread), or scratch cannot be had.
 * Valid until this thread packs another; other threads may run products with it meanwhile. */
#define LMN_BG_PACK_A_MAX (16u << 20)
int lmn_bgemm_pack_a(int M, int K, const float *A, int lda, lmn_bgemm_a *out);
/* C[M, N] = alpha * bf16(A[:, k0 : k0 + K]) bf16(op(B))[K, N] + beta * C (M = a->M), the bits of lmn_bgemm on
 * the same operands; -1 (nothing computed: call lmn_bgemm) when the columns [k0, k0 + K) do not fall on the
 * packing's blocks as a product of K columns would cut them, or scratch cannot be had. */
int lmn_bgemm_with_a(const lmn_bgemm_a *a, int k0, int K, int transB, int N, float alpha, const float *B,
                     int ldb, float beta, float *C, int ldc);

/* f32 value of x rounded to bf16 (nearest even; NaN stays NaN). */
float lmn_bf16_round(float x);

/* ---- the precision of training GEMMs ---- */
typedef enum lmn_precision { LMN_PREC_F32 = 0, LMN_PREC_BF16 = 1 } lmn_precision;

/* The process's precision for lmn_gemm (f32 until set; lmn_train sets it for a run and restores it). */
lmn_precision lmn_gemm_precision(void);
void lmn_set_gemm_precision(lmn_precision p);
const char *lmn_precision_name(lmn_precision p);

/* cblas_sgemm (row-major) in f32, or lmn_bgemm in bf16, by lmn_gemm_precision() (lmn_gemm) or by p. */
void lmn_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
void lmn_gemm_as(lmn_precision p, int transA, int transB, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc);

#endif
