/* bgemm_impl.h: what bgemm.c (dispatch, portable path, scratch) and bgemm_amx.c (the AMX path) share. */
#ifndef LMN_BGEMM_IMPL_H
#define LMN_BGEMM_IMPL_H

#include <stddef.h>

#include "bgemm.h"

/* This thread's scratch of at least bytes (64-byte aligned; grown, never shrunk, freed at thread exit);
 * NULL when it cannot be had. Two slots: one for what a product packs for itself (lmn_bgemm_scratch: the
 * content is not kept across calls), one for an A operand packed for many products (lmn_bgemm_pack_a: kept
 * until this thread packs the next, while other threads' products read it). */
enum { LMN_BG_SLOT_CALL, LMN_BG_SLOT_A, LMN_BG_SLOTS };
void *lmn_bgemm_scratch(size_t bytes);
void *lmn_bgemm_scratch_in(int slot, size_t bytes);

/* The AMX path: 1 when it runs here (asks the kernel for the tile state once); the product as lmn_bgemm,
 * returning -1 (and computing nothing) when scratch cannot be had. */
int lmn_bgemm_amx_ready(void);
int lmn_bgemm_amx(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);

/* The packed A of lmn_bgemm_pack_a on the AMX path: its size, the packing, and a product with it
 * (-1, nothing computed, when the range cannot be taken from the packing or scratch cannot be had). */
size_t lmn_bgemm_amx_a_bytes(int M, int K);
void lmn_bgemm_amx_pack_a(void *dst, int M, int K, const float *A, int lda);
int lmn_bgemm_amx_with_a(const lmn_bgemm_a *a, int k0, int K, int transB, int N, float alpha, const float *B,
                         int ldb, float beta, float *C, int ldc);

#endif
