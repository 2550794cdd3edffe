/* bgemm_impl.h: what bgemm.c (dispatch, portable path, scratch) and bgemm_amx.c (the AMX path) share. */
#ifndef LMN_BGEMM_IMPL_H
#define LMN_BGEMM_IMPL_H

#include <stddef.h>

/* This thread's scratch of at least bytes (64-byte aligned; grown, never shrunk, freed at thread exit);
 * NULL when it cannot be had. The content is not kept across calls. */
void *lmn_bgemm_scratch(size_t bytes);

/* The AMX path: 1 when it runs here (asks the kernel for the tile state once); the product as lmn_bgemm,
 * returning -1 (and computing nothing) when scratch cannot be had. */
int lmn_bgemm_amx_ready(void);
int lmn_bgemm_amx(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);

#endif
