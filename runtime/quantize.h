/* quantize.h: f32 rows to ggml block formats (the reverse of dequant.h), for re-quantising the frozen
 * weights of a model at load (`model m = gguf(...) weights q8_0`): F32, F16, BF16, Q8_0, Q4_0, Q4_1, with
 * the rounding rules of ggml's reference quantizers, so that lmn_dequant_row gives back each value within
 * half a quantization step (F16/BF16: round to nearest even). */
#ifndef LMN_QUANTIZE_H
#define LMN_QUANTIZE_H

#include <stdint.h>

/* 1 when lmn_quantize_row can write the type. */
int lmn_quantize_supported(uint32_t type);
/* Writes n values (a multiple of the block size) of src as type into dst (lmn_ggml_row_size bytes). src
 * must be finite. */
void lmn_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

#endif
