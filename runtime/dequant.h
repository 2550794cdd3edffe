/* dequant.h: ggml tensor types (ids, names, block sizes, bytes per block), row byte sizes, and
 * dequantisation of one row of F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K to f32
 * (bit layouts of ggml's ggml-common.h / ggml-quants.c), plus loading a whole GGUF tensor as f32. */
#ifndef LMN_DEQUANT_H
#define LMN_DEQUANT_H

#include <stddef.h>
#include <stdint.h>

#include "lmn_error.h"

/* ggml_type ids as stored in GGUF tensor infos. */
typedef enum lmn_ggml_type {
  LMN_GGML_F32 = 0,
  LMN_GGML_F16 = 1,
  LMN_GGML_Q4_0 = 2,
  LMN_GGML_Q4_1 = 3,
  LMN_GGML_Q5_0 = 6,
  LMN_GGML_Q5_1 = 7,
  LMN_GGML_Q8_0 = 8,
  LMN_GGML_Q8_1 = 9,
  LMN_GGML_Q2_K = 10,
  LMN_GGML_Q3_K = 11,
  LMN_GGML_Q4_K = 12,
  LMN_GGML_Q5_K = 13,
  LMN_GGML_Q6_K = 14,
  LMN_GGML_Q8_K = 15,
  LMN_GGML_I8 = 24,
  LMN_GGML_I16 = 25,
  LMN_GGML_I32 = 26,
  LMN_GGML_I64 = 27,
  LMN_GGML_F64 = 28,
  LMN_GGML_BF16 = 30,
  LMN_GGML_TYPE_LIMIT = 64 /* ids at or above this are never valid */
} lmn_ggml_type;

/* Name of a ggml type ("Q4_K"), or NULL when the id is not a known ggml type. */
const char *lmn_ggml_type_name(uint32_t type);
/* Values per block and bytes per block of a known ggml type (also the IQ*, TQ*, MXFP4 ... types that
 * cannot be dequantised here); 0 when the id is known, -1 (with err) when it is not. */
int lmn_ggml_type_size(uint32_t type, uint32_t *blck, uint32_t *bytes, lmn_err *err);
/* 1 when lmn_dequant_row supports the type. */
int lmn_ggml_can_dequant(uint32_t type);
/* Bytes of a row of n values (n >= 0, a multiple of the block size); overflow-checked. */
int lmn_ggml_row_size(uint32_t type, int64_t n, uint64_t *bytes, lmn_err *err);

/* fp16 / bf16 bit patterns to f32 (subnormals, signed zeros, inf and NaN preserved). */
float lmn_fp16_to_f32(uint16_t h);
float lmn_bf16_to_f32(uint16_t b);
/* f32 to fp16 bits, round to nearest even (overflow to inf, NaN stays NaN). */
uint16_t lmn_f32_to_fp16(float f);

/* Dequantises n values (a multiple of the block size) of type from src, which holds
 * lmn_ggml_row_size(type, n) bytes (any alignment), into dst. */
int lmn_dequant_row(uint32_t type, const void *src, float *dst, int64_t n, lmn_err *err);

struct lmn_gguf;
struct lmn_gguf_tensor;
/* 0 when tensor t of g has exactly the shape ne1 rows x ne0 columns (ne1 = 1: a vector), else -1 with an
 * error naming the tensor, its shape and the expected one. */
int lmn_gguf_check_shape(const struct lmn_gguf *g, const struct lmn_gguf_tensor *t, int64_t ne0, int64_t ne1,
                         lmn_err *err);
/* Loads GGUF tensor `name` as f32 into dst (ne0 * ne1 floats, row-major: ne1 rows of ne0 contiguous
 * values; pass ne1 = 1 for a vector). The tensor must have exactly this shape (dims beyond ne1 equal to
 * 1); otherwise the error names the tensor, its shape and the expected one. Works in every open mode. */
int lmn_gguf_load_f32(const struct lmn_gguf *g, const char *name, int64_t ne0, int64_t ne1, float *dst,
                      lmn_err *err);

#endif
