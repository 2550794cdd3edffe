/* qnet.h: the frozen weights of a network kept in their file's format (issue 9). Which tensors: every
 * frozen matrix that comes from a model file (lmn_param_kept); they leave the f32 parameter buffer (whose
 * other tensors close up: net->poff) and live as lmn_qtensor net->qw[i], pointing into the mapped GGUF file
 * when it is stored in a format the kernels read (qmat.h) and the model asks for no other (`weights`), else
 * into a buffer converted once at load. Also the products of generated code with such tensors: the
 * embedding lookup and the head. */
#ifndef LMN_QNET_H
#define LMN_QNET_H

#include "net.h"

struct lmn_gguf;

/* 1 when parameter i of d is kept in a file format (a frozen matrix from a model file). */
int lmn_param_kept(const lmn_net_desc *d, int i);
/* Floats of the f32 parameter buffer: n_floats less the kept tensors. */
size_t lmn_desc_f32_floats(const lmn_net_desc *d);

/* Sets up poff, n_f32, qw, files and owned for net->desc (before params is allocated). */
int lmn_qnet_plan(lmn_net *net, lmn_err *err);
/* Kept parameter i from GGUF file g (model mi, opened with LMN_GGUF_MMAP): checked (shape, finite values)
 * and pointed at in place, or converted into an owned buffer. *mapped is set to 1 when qw[i] points into
 * g, which must then stay open (net->files). */
int lmn_qnet_take_gguf(lmn_net *net, int i, const struct lmn_gguf *g, const char *path, int *mapped,
                       lmn_err *err);
/* Kept parameter i given as f32 values (rows * cols; Hugging Face files): taken over (owned) or converted
 * to the model's `weights` format and freed. */
int lmn_qnet_take_f32(lmn_net *net, int i, float *values, lmn_err *err);
/* After loading: the per-thread panels of the matrix products. */
int lmn_qnet_finish(lmn_net *net, lmn_err *err);
void lmn_qnet_free(lmn_net *net);

/* Rows [r0, r0 + nr) of parameter i as f32 (kept or not) into dst (nr * cols floats; a vector is one row
 * of its rows values). */
void lmn_net_param_rows(const lmn_net *net, int i, int64_t r0, int64_t nr, float *dst);

/* Resident bytes of the kept tensors by format: bytes[type] over ggml types. */
void lmn_qnet_bytes(const lmn_net *net, double bytes[64]);

/* A kept tensor as `lmnc info` and `NAME info` see it before loading anything: its name in the model file
 * and its [rows, cols]. */
typedef struct lmn_kept_tensor {
  const char *tensor;
  long rows, cols;
} lmn_kept_tensor;
/* Adds to bytes[type] what the n kept tensors of one model will take: read from the GGUF header at path
 * (format 1) in the format they will be kept in (the model's `weights`, else the file's), or f32 for a
 * Hugging Face directory (format 2) with no `weights`. -1 with err when the file cannot be read. */
int lmn_kept_bytes(const char *path, int format, int weights, const lmn_kept_tensor *t, int n, double bytes[64],
                   lmn_err *err);
/* The same for every model of d (files under dir when it is set, as lmn_net_load_models). */
int lmn_desc_kept_bytes(const lmn_net_desc *d, const char *dir, double bytes[64], lmn_err *err);

/* For generated code: lmn_embed_forward with the tables tok and pos (parameter indices, -1: none), either of
 * which may be kept; returns the number of out-of-range tokens. */
int lmn_net_embed(const lmn_net *net, int tok, int pos, float *out, const int *tokens, int B, int T, int C, int V,
                  int pos0);
/* y [N, out] = x [N, in] W^T for the head weight w (f32 or kept). decode: N rows of cached generation,
 * which for kept weights quantize their activations to 8 bits (qmat.h) when N is small, unless
 * net->q_f32act. */
void lmn_net_linear_forward(const lmn_net *net, int w, float *y, const float *x, int N, int in, int out,
                            int decode);
/* dx += dy W, and dW += dy^T x when w is trained (never for a kept tensor). */
void lmn_net_linear_backward(const lmn_net *net, float *dx, int w, const float *dy, const float *x, int N, int in,
                             int out);

#endif
