/* gguf.h: GGUF v2/v3 reader and writer. The reader validates the whole header (metadata of all 13 value
 * types, tensor infos, alignment, data bounds, overlaps) against the file size before anything is used,
 * and can open a file for its metadata only (the header is streamed with pread, tensor data is never
 * read), map it read-only, or read it whole. The writer produces GGUF v3 files atomically. */
#ifndef LMN_GGUF_H
#define LMN_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dequant.h"
#include "hparams.h"
#include "lmn_error.h"

/* Metadata value types (gguf_metadata_value_type). */
typedef enum lmn_gguf_vtype {
  LMN_GGUF_UINT8 = 0,
  LMN_GGUF_INT8 = 1,
  LMN_GGUF_UINT16 = 2,
  LMN_GGUF_INT16 = 3,
  LMN_GGUF_UINT32 = 4,
  LMN_GGUF_INT32 = 5,
  LMN_GGUF_FLOAT32 = 6,
  LMN_GGUF_BOOL = 7,
  LMN_GGUF_STRING = 8,
  LMN_GGUF_ARRAY = 9,
  LMN_GGUF_UINT64 = 10,
  LMN_GGUF_INT64 = 11,
  LMN_GGUF_FLOAT64 = 12,
  LMN_GGUF_VTYPE_COUNT = 13
} lmn_gguf_vtype;

/* How lmn_gguf_open gets at the file. */
typedef enum lmn_gguf_mode {
  LMN_GGUF_MMAP = 0, /* map the file read-only; tensor data by pointer, paged in on use */
  LMN_GGUF_READ = 1, /* read the whole file into memory */
  LMN_GGUF_META = 2  /* read only the header bytes; tensor data by copy (lmn_gguf_tensor_read) */
} lmn_gguf_mode;

#define LMN_GGUF_DEFAULT_ALIGNMENT 32u
#define LMN_GGUF_MAX_NAME 64 /* tensor names are shorter than this (ggml's GGML_MAX_NAME) */
#define LMN_GGUF_MAX_DIMS 4

/* A string inside the file: len bytes at s, NOT NUL-terminated (GGUF strings may contain anything). */
typedef struct lmn_gguf_str {
  const char *s;
  size_t len;
} lmn_gguf_str;

/* One metadata entry. Read-only for users; the fields after `n` are the reader's. */
typedef struct lmn_gguf_kv {
  const char *key;          /* NUL-terminated copy of the key */
  lmn_gguf_vtype type;      /* value type */
  lmn_gguf_vtype elem_type; /* element type when type == LMN_GGUF_ARRAY */
  uint64_t n;               /* number of array elements; 1 for a scalar or string */
  uint64_t off_;            /* file offset of the value (string: of its length; array: of element 0) */
  uint64_t *str_offs_;      /* string arrays: file offset of each element's length */
} lmn_gguf_kv;

/* One tensor info, validated. */
typedef struct lmn_gguf_tensor {
  char name[LMN_GGUF_MAX_NAME];  /* NUL-terminated */
  uint32_t n_dims;               /* 0..4 */
  int64_t ne[LMN_GGUF_MAX_DIMS]; /* ne[0] is the contiguous axis; unused dims are 1 */
  uint32_t type;                 /* lmn_ggml_type */
  int64_t nelems;
  uint64_t offset; /* relative to the start of the data section */
  uint64_t nbytes;
} lmn_gguf_tensor;

typedef struct lmn_gguf lmn_gguf;

/* Opens and validates path. On failure *out is NULL and err says what is wrong, naming the file. */
int lmn_gguf_open(const char *path, lmn_gguf_mode mode, lmn_gguf **out, lmn_err *err);
/* Parses a GGUF image in memory (borrowed: it must outlive the handle); name is used in messages. */
int lmn_gguf_open_mem(const void *data, size_t size, const char *name, lmn_gguf **out, lmn_err *err);
void lmn_gguf_close(lmn_gguf *g);

const char *lmn_gguf_name(const lmn_gguf *g);
uint32_t lmn_gguf_version(const lmn_gguf *g);
uint32_t lmn_gguf_alignment(const lmn_gguf *g);
uint64_t lmn_gguf_data_start(const lmn_gguf *g);
uint64_t lmn_gguf_file_size(const lmn_gguf *g);
/* "UINT32", "ARRAY", ...; "?" for an unknown id. */
const char *lmn_gguf_vtype_name(uint32_t type);

/* Metadata: iteration in file order, lookup by key (NULL when absent). */
size_t lmn_gguf_n_kv(const lmn_gguf *g);
const lmn_gguf_kv *lmn_gguf_kv_at(const lmn_gguf *g, size_t i);
const lmn_gguf_kv *lmn_gguf_find_kv(const lmn_gguf *g, const char *key);

/* Typed getters: -1 with "file: key 'k': ..." when the key is missing, has another type or is out of range.
 * get_int accepts any integer type (u8..i64) and checks lo <= value <= hi; get_uint accepts any
 * non-negative integer; get_float accepts FLOAT32/FLOAT64 and integer types. */
int lmn_gguf_get_int(const lmn_gguf *g, const char *key, int64_t lo, int64_t hi, int64_t *out, lmn_err *err);
int lmn_gguf_get_uint(const lmn_gguf *g, const char *key, uint64_t *out, lmn_err *err);
int lmn_gguf_get_float(const lmn_gguf *g, const char *key, double *out, lmn_err *err);
int lmn_gguf_get_bool(const lmn_gguf *g, const char *key, int *out, lmn_err *err);
int lmn_gguf_get_str(const lmn_gguf *g, const char *key, lmn_gguf_str *out, lmn_err *err);
/* Arrays: element type and length; element i as string, integer (any integer type) or float. */
int lmn_gguf_get_arr(const lmn_gguf *g, const char *key, lmn_gguf_vtype *elem_type, uint64_t *n,
                     lmn_err *err);
int lmn_gguf_get_arr_str(const lmn_gguf *g, const char *key, uint64_t i, lmn_gguf_str *out, lmn_err *err);
int lmn_gguf_get_arr_int(const lmn_gguf *g, const char *key, uint64_t i, int64_t *out, lmn_err *err);
int lmn_gguf_get_arr_float(const lmn_gguf *g, const char *key, uint64_t i, double *out, lmn_err *err);

/* Tensors: iteration in file order, lookup by name (NULL when absent). */
size_t lmn_gguf_n_tensors(const lmn_gguf *g);
const lmn_gguf_tensor *lmn_gguf_tensor_at(const lmn_gguf *g, size_t i);
const lmn_gguf_tensor *lmn_gguf_find_tensor(const lmn_gguf *g, const char *name);
/* 1 when g's bytes are a private mapping of its file (LMN_GGUF_MMAP): pages of it may be given back. */
int lmn_gguf_mapped(const lmn_gguf *g);
/* Pointer to the tensor's nbytes raw bytes (no particular alignment beyond the file's); NULL with an error
 * when the file was opened with LMN_GGUF_META. */
const void *lmn_gguf_tensor_data(const lmn_gguf *g, const lmn_gguf_tensor *t, lmn_err *err);
/* Copies bytes [off, off + len) of the tensor's data into dst (every mode). */
int lmn_gguf_tensor_read(const lmn_gguf *g, const lmn_gguf_tensor *t, uint64_t off, void *dst, uint64_t len,
                         lmn_err *err);

/* Hyper-parameters of a llama / qwen2 / gpt2 file from general.architecture and the {arch}.* keys. */
int lmn_gguf_hparams(const lmn_gguf *g, lmn_hparams *hp, lmn_err *err);

/* Writer: collects metadata and tensors, then writes a GGUF v3 file atomically. Keys and tensor names
 * must be unique. Tensor data is borrowed: it must stay valid until lmn_gguf_writer_write returns. */
typedef struct lmn_gguf_writer lmn_gguf_writer;

int lmn_gguf_writer_new(lmn_gguf_writer **out, lmn_err *err);
void lmn_gguf_writer_free(lmn_gguf_writer *w);
/* Data alignment (power of two); written as general.alignment (UINT32) when not the default 32. */
int lmn_gguf_writer_set_alignment(lmn_gguf_writer *w, uint32_t alignment, lmn_err *err);
/* A scalar of any non-string, non-array type; value points to the matching C type (BOOL: uint8_t 0/1). */
int lmn_gguf_writer_add_scalar(lmn_gguf_writer *w, const char *key, lmn_gguf_vtype type, const void *value,
                               lmn_err *err);
int lmn_gguf_writer_add_u32(lmn_gguf_writer *w, const char *key, uint32_t v, lmn_err *err);
int lmn_gguf_writer_add_i32(lmn_gguf_writer *w, const char *key, int32_t v, lmn_err *err);
int lmn_gguf_writer_add_u64(lmn_gguf_writer *w, const char *key, uint64_t v, lmn_err *err);
int lmn_gguf_writer_add_f32(lmn_gguf_writer *w, const char *key, float v, lmn_err *err);
int lmn_gguf_writer_add_bool(lmn_gguf_writer *w, const char *key, int v, lmn_err *err);
/* Strings: NUL-terminated, or len bytes of anything. */
int lmn_gguf_writer_add_str(lmn_gguf_writer *w, const char *key, const char *s, lmn_err *err);
int lmn_gguf_writer_add_strn(lmn_gguf_writer *w, const char *key, const char *s, size_t len, lmn_err *err);
/* Arrays of n packed C values of a scalar type, or of n NUL-terminated strings. */
int lmn_gguf_writer_add_arr(lmn_gguf_writer *w, const char *key, lmn_gguf_vtype elem_type, const void *values,
                            uint64_t n, lmn_err *err);
int lmn_gguf_writer_add_arr_str(lmn_gguf_writer *w, const char *key, const char *const *strs, uint64_t n,
                                lmn_err *err);
/* A tensor of any known ggml type with n_dims (1..4) dims ne[] (ne[0] contiguous), raw bytes data. */
int lmn_gguf_writer_add_tensor(lmn_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                               const int64_t *ne, const void *data, lmn_err *err);
/* An f32 tensor (host floats, little-endian hosts only). */
int lmn_gguf_writer_add_tensor_f32(lmn_gguf_writer *w, const char *name, uint32_t n_dims, const int64_t *ne,
                                   const float *data, lmn_err *err);
/* Writes path atomically (temp file in the same directory, fsync, rename); on failure path is untouched. */
int lmn_gguf_writer_write(const lmn_gguf_writer *w, const char *path, lmn_err *err);

/* Atomic file replacement, shared by the GGUF and safetensors writers: creates a temp file next to path,
 * lets emit write it, then fflush + fsync + rename (+ fsync of the directory). When emit or any step fails
 * the temp file is removed, path is left as it was, and the message starts with path. */
typedef int (*lmn_emit_fn)(FILE *f, const void *ctx, lmn_err *err);
int lmn_write_atomic(const char *path, lmn_emit_fn emit, const void *ctx, lmn_err *err);

#endif
