/* bgemm_amx.c: lmn_bgemm on Intel AMX (bgemm.h), compiled for AMX-TILE/AMX-BF16 and AVX-512 BF16 by the
 * pragma below and run only where the CPU has them and Linux granted the tile state.
 *
 * Blocking: C is cut into MC x NC blocks over K blocks of KC; per (K block, row block) op(A) is packed into
 * bf16 rows [MC'][KC'] (primes: rounded up to 32), and per column block op(B) into VNNI tiles: for each 16
 * columns and each 32 k, 16 rows of 16 pairs (B[2p][n], B[2p+1][n]). A 32x32 piece of C is four f32 tiles
 * fed by two A tiles and two B tiles per 32 k (all eight tile registers), then stored to a 32x32 buffer and
 * added into C with alpha and beta. Zero padding makes every tile whole, so the kernel has no edge cases.
 * Packing reads the f32 operands with AVX-512 (masked at the edges) and converts with vcvtne2ps2bf16 (to
 * nearest even); transposed layouts go through an in-register 16x16 transpose of 32-bit pairs.
 * Packed weight sets (lmn_bpack): whole matrices in the same VNNI tiles, both layouts, looked up by address
 * when a set is in use; a product whose B operand they cover skips packing B and runs the same K blocks,
 * so its sums are the same bits. Outside x86-64 Linux: no AMX path and no sets (stubs at the end). */
#include "bgemm.h"
#include "bgemm_impl.h"
#include "threads.h"

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#if defined(__clang__)
#include <immintrin.h>
#pragma clang attribute push( \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")
#include <immintrin.h>
#endif
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MC 256  /* rows of C per block (a multiple of 32) */
#define NC 256  /* columns of C per block (a multiple of 32) */
#define KC 1024 /* k per block (a multiple of 32) */

typedef struct tilecfg {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} tilecfg;

/* tiles 0-3: C (16 x 16 f32), 4-5: A (16 rows x 32 bf16), 6-7: B (16 pair rows x 16 columns): all 16 x 64 B
 */
static void tiles_config(void) {
  tilecfg c;
  memset(&c, 0, sizeof c);
  c.palette = 1;
  for (int t = 0; t < 8; t++) {
    c.colsb[t] = 64;
    c.rows[t] = 16;
  }
  _tile_loadconfig(&c);
}

static atomic_int amx_state = -1; /* -1 unknown, 0 no, 1 yes */

int lmn_bgemm_amx_ready(void) {
  int s = atomic_load(&amx_state);
  if (s >= 0) return s;
  __builtin_cpu_init();
  s = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl");
  if (s) { /* CPUID leaf 7: subleaf 0 EDX bits 22 (AMX-BF16) and 24 (AMX-TILE), subleaf 1 EAX bit 5
              (AVX512-BF16) */
    unsigned a = 7, b = 0, c = 0, d = 0;
    __asm__("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    s = (d >> 22 & 1) && (d >> 24 & 1);
    a = 7, c = 1;
    __asm__("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    s = s && (a >> 5 & 1);
  }
  /* then the kernel's permission for the tile state (Linux >= 5.16) */
  if (s) s = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
  atomic_store(&amx_state, s);
  return s;
}

static inline int up32(int x) {
  return (x + 31) & ~31;
}

static inline __mmask16 mask_n(int n) {
  return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1u);
}

/* n (<= 16) floats at p, zeros past them */
static inline __m512 load_n(const float *p, int n) {
  return n >= 16 ? _mm512_loadu_ps(p) : n <= 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask_n(n), p);
}

/* 32 bf16 in order from lo (first 16 values) and hi (next 16) */
static inline __m512i cvt32(__m512 lo, __m512 hi) {
  return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

/* 16 pairs (a[i], b[i]) as 32-bit lanes: bf16 a0 b0 a1 b1 ... */
static inline __m512i pairs(__m512 a, __m512 b) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                       22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, cvt32(a, b));
}

/* r[i] lane j -> r[j] lane i, 32-bit lanes */
static void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 4; g++) { /* u[4g + j]: in 128-bit lane L, column 4L + j of rows 4g..4g+3 */
    u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int j = 0; j < 4; j++) {
    __m512i v = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88), w = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xDD),
            v2 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88),
            w2 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xDD);
    r[j] = _mm512_shuffle_i32x4(v, v2, 0x88);
    r[8 + j] = _mm512_shuffle_i32x4(v, v2, 0xDD);
    r[4 + j] = _mm512_shuffle_i32x4(w, w2, 0x88);
    r[12 + j] = _mm512_shuffle_i32x4(w, w2, 0xDD);
  }
}

/* A view of an operand: element (i, k) of op(X) for the packers, X f32 row-major with leading dimension ld;
 * trans: op(X) = X^T, so (i, k) is at X[k*ld + i]. rows x cols is the extent of op(X) in the block. */
typedef struct view {
  const float *p;
  int ld, trans, rows, cols;
} view;

/* Rows of bf16 a[MC'][kp] (kp = up32(cols)) from op(A) rows [0, mp) (rows past v.rows zero). */
static void pack_rows(uint16_t *a, int kp, int mp, view v) {
  if (!v.trans) {
    for (int i = 0; i < mp; i++) {
      __m512i *dst = (__m512i *)(a + (size_t)i * kp);
      for (int k = 0; k < kp; k += 32) {
        const float *s = v.p + (size_t)i * v.ld + k;
        __m512i x = _mm512_setzero_si512();
        if (i < v.rows) x = cvt32(load_n(s, v.cols - k), load_n(s + 16, v.cols - k - 16));
        _mm512_storeu_si512(dst + k / 32, x);
      }
    }
    return;
  }
  for (int i0 = 0; i0 < mp; i0 += 16) /* X[k][i0..i0+16): pair rows k, k+1 into lanes i, then transpose */
    for (int k = 0; k < kp; k += 32) {
      __m512i r[16];
      for (int p = 0; p < 16; p++) {
        int k2 = k + 2 * p, n = v.rows - i0;
        __m512 x0 = k2 < v.cols ? load_n(v.p + (size_t)k2 * v.ld + i0, n) : _mm512_setzero_ps();
        __m512 x1 = k2 + 1 < v.cols ? load_n(v.p + (size_t)(k2 + 1) * v.ld + i0, n) : _mm512_setzero_ps();
        r[p] = pairs(x0, x1);
      }
      transpose16(r);
      for (int i = 0; i < 16; i++) _mm512_storeu_si512(a + (size_t)(i0 + i) * kp + k, r[i]);
    }
}

/* VNNI tiles of op(B) (K x N in the block, viewed as rows k, columns n): for each 16 columns (nt) and each 32
 * k (kt), 16 rows p of 16 pairs (B[k+2p][n], B[k+2p+1][n]), at b + (nt * kts + kt) * 512. np = up32(cols). */
static void pack_vnni(uint16_t *b, int kp, int np, view v) {
  int kts = kp / 32;
  for (int n0 = 0; n0 < np; n0 += 16)
    for (int k = 0; k < kp; k += 32) {
      __m512i r[16];
      uint16_t *dst = b + ((size_t)(n0 / 16) * kts + k / 32) * 512;
      if (!v.trans) { /* B[k][n] at p[k*ld + n]: rows k and k+1 paired lane by lane */
        for (int p = 0; p < 16; p++) {
          int k2 = k + 2 * p, n = v.cols - n0;
          __m512 x0 = k2 < v.rows ? load_n(v.p + (size_t)k2 * v.ld + n0, n) : _mm512_setzero_ps();
          __m512 x1 = k2 + 1 < v.rows ? load_n(v.p + (size_t)(k2 + 1) * v.ld + n0, n) : _mm512_setzero_ps();
          _mm512_storeu_si512(dst + 32 * p, pairs(x0, x1));
        }
        continue;
      }
      for (int j = 0; j < 16; j++) { /* B[k][n] at p[n*ld + k]: column n's pairs are adjacent; transpose */
        const float *s = v.p + (size_t)(n0 + j) * v.ld + k;
        r[j] = n0 + j < v.cols ? cvt32(load_n(s, v.rows - k), load_n(s + 16, v.rows - k - 16))
                               : _mm512_setzero_si512();
      }
      transpose16(r);
      for (int p = 0; p < 16; p++) _mm512_storeu_si512(dst + 32 * p, r[p]);
    }
}

/* C[mr x nr] (ldc) = alpha t + beta C (first K block) or alpha t + C (later ones); t is [32][32] f32 */
static void store_block(float *C, int ldc, const float *t, int mr, int nr, float alpha, float beta,
                        int first) {
  __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(first ? beta : 1.0f);
  int read = !first || beta != 0.0f;
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nr; j += 16) {
      __mmask16 m = mask_n(nr - j);
      float *c = C + (size_t)i * ldc + j;
      __m512 x = _mm512_mul_ps(va, _mm512_loadu_ps(t + 32 * i + j));
      if (read) x = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, c), x);
      _mm512_mask_storeu_ps(c, m, x);
    }
}

/* The tiles of one block: a rows of K = kp (lda elements apart, lda >= kp), b VNNI tiles of 16 columns each,
 * consecutive 16-column tiles bts * 512 elements apart (tiles of 32 k within one 512 apart); C block of
 * mb x nb */
static void block_kernel(const uint16_t *a, int lda, const uint16_t *b, size_t bts, int kp, int mb, int nb,
                         float *C, int ldc, float alpha, float beta, int first) {
  int kts = kp / 32;
  float t[32 * 32] __attribute__((aligned(64)));
  for (int j = 0; j < nb; j += 32) {
    const uint16_t *b0 = b + (size_t)(j / 16) * bts * 512, *b1 = b0 + bts * 512;
    for (int i = 0; i < mb; i += 32) {
      const uint16_t *a0 = a + (size_t)i * lda, *a1 = a0 + (size_t)16 * lda;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int kt = 0; kt < kts; kt++) {
        _tile_loadd(4, a0 + 32 * kt, lda * 2);
        _tile_loadd(5, a1 + 32 * kt, lda * 2);
        _tile_loadd(6, b0 + 512 * kt, 64);
        _tile_loadd(7, b1 + 512 * kt, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      _tile_stored(0, t, 128);
      _tile_stored(1, t + 16, 128);
      _tile_stored(2, t + 16 * 32, 128);
      _tile_stored(3, t + 16 * 32 + 16, 128);
      int mr = mb - i < 32 ? mb - i : 32, nr = nb - j < 32 ? nb - j : 32;
      store_block(C + (size_t)i * ldc + j, ldc, t, mr, nr, alpha, beta, first);
    }
  }
}

/* ---- packed weight sets ---- */

typedef struct bp_entry {
  const float *W;
  int rows, cols, fixed, packed;
  unsigned layouts;
  uint16_t *fwd, *dx; /* VNNI tiles of W^T (K = cols, N = rows) and of W (K = rows, N = cols), or NULL */
} bp_entry;

struct lmn_bpack {
  bp_entry *e; /* sorted by W */
  int n;
  size_t bytes;
  uint16_t *mem;
  atomic_size_t hits; /* products that used the packed tiles */
};

static _Atomic(lmn_bpack *) active_set;

static size_t tiles_elems(int k, int n) {
  return (size_t)up32(k) * (size_t)up32(n);
}

static int by_address(const void *x, const void *y) {
  const bp_entry *a = x, *b = y;
  return a->W < b->W ? -1 : a->W > b->W;
}

lmn_bpack *lmn_bpack_create(const float *const *W, const int *rows, const int *cols, const unsigned *layouts,
                            const int *fixed, int n) {
  if (n <= 0 || lmn_bgemm_isa() != LMN_BG_AMX) return NULL;
  lmn_bpack *s = calloc(1, sizeof *s);
  if (!s || !(s->e = calloc((size_t)n, sizeof *s->e))) return free(s), NULL;
  size_t elems = 0;
  for (int i = 0; i < n; i++) {
    s->e[s->n++] = (bp_entry){W[i], rows[i], cols[i], fixed[i], 0, layouts[i], NULL, NULL};
    elems += (layouts[i] & LMN_BPACK_FWD ? tiles_elems(cols[i], rows[i]) : 0) +
             (layouts[i] & LMN_BPACK_DX ? tiles_elems(rows[i], cols[i]) : 0);
  }
  s->bytes = elems * sizeof(uint16_t);
  if (!(s->mem = aligned_alloc(64, (s->bytes + 63) / 64 * 64))) return lmn_bpack_free(s), NULL;
  uint16_t *at = s->mem;
  for (int i = 0; i < s->n; i++) {
    bp_entry *e = &s->e[i];
    if (e->layouts & LMN_BPACK_FWD) e->fwd = at, at += tiles_elems(e->cols, e->rows);
    if (e->layouts & LMN_BPACK_DX) e->dx = at, at += tiles_elems(e->rows, e->cols);
  }
  qsort(s->e, (size_t)s->n, sizeof *s->e, by_address);
  return s;
}

static void refresh_task(void *ctx, int task, int thread) {
  bp_entry *e = &((lmn_bpack *)ctx)->e[task];
  (void)thread;
  if (e->fixed && e->packed) return;
  if (e->fwd) pack_vnni(e->fwd, up32(e->cols), up32(e->rows), (view){e->W, e->cols, 1, e->cols, e->rows});
  if (e->dx) pack_vnni(e->dx, up32(e->rows), up32(e->cols), (view){e->W, e->cols, 0, e->rows, e->cols});
  e->packed = 1;
}

void lmn_bpack_refresh(lmn_bpack *set, struct lmn_pool *pool) {
  if (set) lmn_pool_run(pool, set->n, refresh_task, set);
}

void lmn_bpack_use(lmn_bpack *set) {
  atomic_store(&active_set, set);
}
size_t lmn_bpack_bytes(const lmn_bpack *set) {
  return set ? set->bytes : 0;
}
size_t lmn_bpack_hits(lmn_bpack *set) {
  return set ? atomic_load(&set->hits) : 0;
}

void lmn_bpack_free(lmn_bpack *set) {
  if (!set) return;
  if (atomic_load(&active_set) == set) atomic_store(&active_set, NULL);
  free(set->mem);
  free(set->e);
  free(set);
}

/* The packed tiles of the active set for op(B) [K, N] at B (leading dimension ldb), and their 16-column
 * stride (in 512-element tiles), or NULL: a row slice of W^T (transposed B: rows r0.. of W, r0 a multiple of
 * 16, all of its columns as K), or a block of W (rows r0.. as K, r0 a multiple of 32 and K reaching a
 * multiple of 32 or W's last row; columns c0.., a multiple of 16). */
static const uint16_t *packed_b(const float *B, int ldb, int transB, int K, int N, size_t *bts) {
  lmn_bpack *s = atomic_load(&active_set);
  if (!s) return NULL;
  int lo = 0, hi = s->n - 1, found = -1;
  while (lo <= hi) { /* the last entry starting at or before B */
    int mid = (lo + hi) / 2;
    if (s->e[mid].W <= B)
      found = mid, lo = mid + 1;
    else
      hi = mid - 1;
  }
  if (found < 0) return NULL;
  const bp_entry *e = &s->e[found];
  size_t off = (size_t)(B - e->W);
  if (!e->packed || off >= (size_t)e->rows * e->cols || ldb != e->cols) return NULL;
  int r0 = (int)(off / (size_t)e->cols), c0 = (int)(off % (size_t)e->cols);
  if (transB) { /* B(k, n) = W[r0 + n][k] */
    if (!e->fwd || c0 != 0 || K != e->cols || r0 % 16 || r0 + N > e->rows) return NULL;
    *bts = (size_t)up32(e->cols) / 32;
    atomic_fetch_add(&s->hits, 1);
    return e->fwd + (size_t)(r0 / 16) * *bts * 512;
  }
  /* B(k, n) = W[r0 + k][c0 + n] */
  if (!e->dx || r0 % 32 || c0 % 16 || r0 + K > e->rows || c0 + N > e->cols || (K % 32 && r0 + K != e->rows))
    return NULL;
  *bts = (size_t)up32(e->rows) / 32;
  atomic_fetch_add(&s->hits, 1);
  return e->dx + (size_t)(c0 / 16) * *bts * 512 + (size_t)(r0 / 32) * 512;
}

/* The K block [k0, k0 + kb) of a product, for the mb rows of packed A at a (lda elements apart): per column
 * block of NC, op(B)'s tiles (from pb, pts tiles a 16-column group, when a packed set holds them, else
 * packed into b), then the block kernel into C (C's first K block when k0 is 0). */
static void k_block(const uint16_t *a, int lda, int mb, const float *B, int ldb, int transB, int k0, int kb,
                    int N, const uint16_t *pb, size_t pts, uint16_t *b, float *C, int ldc, float alpha,
                    float beta) {
  int kp = up32(kb);
  for (int j0 = 0; j0 < N; j0 += NC) {
    int nb = N - j0 < NC ? N - j0 : NC;
    const uint16_t *tiles = b;
    size_t ts = (size_t)kp / 32;
    if (pb) {
      tiles = pb + (size_t)(j0 / 16) * pts * 512 + (size_t)(k0 / 32) * 512, ts = pts;
    } else {
      view vb = {transB ? B + (size_t)j0 * ldb + k0 : B + (size_t)k0 * ldb + j0, ldb, transB, kb, nb};
      pack_vnni(b, kp, up32(nb), vb);
    }
    block_kernel(a, lda, tiles, ts, kp, mb, nb, C + j0, ldc, alpha, beta, k0 == 0);
  }
}

/* The product: per (K block, row block) op(A) packed, then per column block op(B)'s tiles, from the active
 * set when it holds them (the same K blocks either way, so the same sums, bit for bit), else packed here. */
int lmn_bgemm_amx(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
  size_t pts = 0;
  const uint16_t *pb = packed_b(B, ldb, transB, K, N, &pts);
  int kc = K < KC ? up32(K) : KC, mc = M < MC ? up32(M) : MC, nc = N < NC ? up32(N) : NC;
  uint16_t *a = lmn_bgemm_scratch(((size_t)mc * kc + (pb ? 0 : (size_t)kc * nc)) * sizeof(uint16_t));
  if (!a) return -1;
  uint16_t *b = a + (size_t)mc * kc;
  tiles_config();
  for (int k0 = 0; k0 < K; k0 += KC) {
    int kb = K - k0 < KC ? K - k0 : KC, kp = up32(kb);
    for (int i0 = 0; i0 < M; i0 += MC) {
      int mb = M - i0 < MC ? M - i0 : MC;
      view va = {transA ? A + (size_t)k0 * lda + i0 : A + (size_t)i0 * lda + k0, lda, transA, mb, kb};
      pack_rows(a, kp, up32(mb), va);
      k_block(a, kp, mb, B, ldb, transB, k0, kb, N, pb, pts, b, C + (size_t)i0 * ldc, ldc, alpha, beta);
    }
  }
  _tile_release();
  return 0;
}

/* ---- an A operand packed once (lmn_bgemm_pack_a) ----
 * Per K block of KC (the blocks of a product of all K columns), its rows as pack_rows writes them: block
 * b (columns b KC ..) at up32(M) * b * KC, rows of its kp elements. */

size_t lmn_bgemm_amx_a_bytes(int M, int K) {
  return (size_t)up32(M) * (size_t)up32(K) * sizeof(uint16_t);
}

void lmn_bgemm_amx_pack_a(void *dst, int M, int K, const float *A, int lda) {
  for (int k0 = 0; k0 < K; k0 += KC) {
    int kb = K - k0 < KC ? K - k0 : KC;
    pack_rows((uint16_t *)dst + (size_t)up32(M) * k0, up32(kb), up32(M), (view){A + k0, lda, 0, M, kb});
  }
}

/* Columns [k0, k0 + K) of the packing are what a product of K columns would pack when it cuts them into the
 * same blocks: from a block boundary on (then its blocks are the packing's), or within one block; and its
 * zero padding: the range ends on a multiple of 32 or at the packing's last column. */
static int a_range_ok(const lmn_bgemm_a *a, int k0, int K) {
  return k0 % 32 == 0 && (k0 % KC == 0 || k0 % KC + K <= KC) && ((k0 + K) % 32 == 0 || k0 + K == a->K);
}

int lmn_bgemm_amx_with_a(const lmn_bgemm_a *a, int k0, int K, int transB, int N, float alpha, const float *B,
                         int ldb, float beta, float *C, int ldc) {
  if (!a_range_ok(a, k0, K)) return -1;
  int kc = K < KC ? up32(K) : KC, nc = N < NC ? up32(N) : NC, mp = up32(a->M);
  uint16_t *b = lmn_bgemm_scratch((size_t)kc * nc * sizeof(uint16_t));
  if (!b) return -1;
  tiles_config();
  for (int kk = 0; kk < K; kk += KC) {
    int kb = K - kk < KC ? K - kk : KC, at = k0 + kk, blk = at / KC * KC;
    int lda = up32(a->K - blk < KC ? a->K - blk : KC); /* the packing's block holding column at */
    const uint16_t *pa = (const uint16_t *)a->p + (size_t)mp * blk + (at - blk);
    k_block(pa, lda, a->M, B, ldb, transB, kk, kb, N, NULL, 0, b, C, ldc, alpha, beta);
  }
  _tile_release();
  return 0;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
int lmn_bgemm_amx_ready(void) {
  return 0;
}
int lmn_bgemm_amx(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
  (void)transA, (void)transB, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B, (void)ldb;
  (void)beta, (void)C, (void)ldc;
  return -1;
}
size_t lmn_bgemm_amx_a_bytes(int M, int K) {
  (void)M, (void)K;
  return 0;
}
void lmn_bgemm_amx_pack_a(void *dst, int M, int K, const float *A, int lda) {
  (void)dst, (void)M, (void)K, (void)A, (void)lda;
}
int lmn_bgemm_amx_with_a(const lmn_bgemm_a *a, int k0, int K, int transB, int N, float alpha, const float *B,
                         int ldb, float beta, float *C, int ldc) {
  (void)a, (void)k0, (void)K, (void)transB, (void)N, (void)alpha, (void)B, (void)ldb, (void)beta, (void)C;
  (void)ldc;
  return -1;
}
#endif
