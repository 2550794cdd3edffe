/* safetensors.h: safetensors reader and writer, the project's checkpoint container. The reader parses the
 * JSON header with a small strict parser of its own and checks every tensor against the file (dtype size x
 * shape == data_offsets span, offsets inside the data buffer, no overlaps, no holes, no trailing bytes, as
 * the reference implementation requires). Tensors of F32, F16 and BF16 load as f32; other dtypes are
 * listed and readable as raw bytes. The writer stores f32 tensors and string metadata, atomically. */
#ifndef LMN_SAFETENSORS_H
#define LMN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "hparams.h"
#include "lmn_error.h"

#define LMN_ST_MAX_DIMS 8
#define LMN_ST_MAX_HEADER 100000000u /* the reference implementation's limit on the JSON header */

typedef enum lmn_st_dtype { LMN_ST_F32 = 0, LMN_ST_F16, LMN_ST_BF16, LMN_ST_OTHER } lmn_st_dtype;

/* How lmn_st_open gets at the file (as lmn_gguf_mode). */
typedef enum lmn_st_mode {
  LMN_ST_MMAP = 0, /* map the file read-only */
  LMN_ST_READ = 1, /* read the whole file */
  LMN_ST_META = 2  /* read only the 8 + N header bytes; tensor bytes are read on demand */
} lmn_st_mode;

typedef struct lmn_st_tensor {
  const char *name;               /* NUL-terminated (names with NUL bytes are rejected) */
  lmn_st_dtype dtype;             /* LMN_ST_OTHER for dtypes that do not load as f32 */
  char dtype_name[16];            /* "F32", "I64", ... as written in the header */
  uint32_t elem_size;             /* bytes per element */
  uint32_t n_dims;                /* 0 (a scalar) .. LMN_ST_MAX_DIMS */
  int64_t shape[LMN_ST_MAX_DIMS]; /* row-major: shape[n_dims - 1] is contiguous */
  int64_t nelems;
  uint64_t begin, end; /* byte range within the data buffer (which starts at 8 + header size) */
} lmn_st_tensor;

typedef struct lmn_st lmn_st;

int lmn_st_open(const char *path, lmn_st_mode mode, lmn_st **out, lmn_err *err);
/* Parses a safetensors image in memory (borrowed); name is used in messages. */
int lmn_st_open_mem(const void *data, size_t size, const char *name, lmn_st **out, lmn_err *err);
void lmn_st_close(lmn_st *st);

const char *lmn_st_name(const lmn_st *st);
uint64_t lmn_st_data_start(const lmn_st *st); /* 8 + header size */

/* Tensors in header order; lookup by name (NULL when absent). */
size_t lmn_st_n_tensors(const lmn_st *st);
const lmn_st_tensor *lmn_st_tensor_at(const lmn_st *st, size_t i);
const lmn_st_tensor *lmn_st_find(const lmn_st *st, const char *name);

/* __metadata__ (string -> string), in header order; lookup by key (NULL when absent). */
size_t lmn_st_n_meta(const lmn_st *st);
int lmn_st_meta_at(const lmn_st *st, size_t i, const char **key, const char **value);
const char *lmn_st_meta(const lmn_st *st, const char *key);

/* Raw bytes: a pointer (NULL with an error in LMN_ST_META mode), or a copy of [off, off + len). */
const void *lmn_st_tensor_data(const lmn_st *st, const lmn_st_tensor *t, lmn_err *err);
int lmn_st_tensor_read(const lmn_st *st, const lmn_st_tensor *t, uint64_t off, void *dst, uint64_t len,
                       lmn_err *err);
/* Loads tensor `name` (F32, F16 or BF16) as f32 into dst; its shape must equal shape[0..n_dims). */
int lmn_st_load_f32(const lmn_st *st, const char *name, uint32_t n_dims, const int64_t *shape, float *dst,
                    lmn_err *err);

/* Writer: f32 tensors (borrowed data, valid until write returns) and string metadata; atomic write. */
typedef struct lmn_st_writer lmn_st_writer;

int lmn_st_writer_new(lmn_st_writer **out, lmn_err *err);
void lmn_st_writer_free(lmn_st_writer *w);
/* Keys and values are UTF-8 strings; keys unique. */
int lmn_st_writer_add_meta(lmn_st_writer *w, const char *key, const char *value, lmn_err *err);
/* n_dims 0..8, dims >= 0; data holds the product of the dims floats (may be NULL when that is 0). */
int lmn_st_writer_add_f32(lmn_st_writer *w, const char *name, uint32_t n_dims, const int64_t *shape,
                          const float *data, lmn_err *err);
int lmn_st_writer_write(const lmn_st_writer *w, const char *path, lmn_err *err);

/* JSON documents such as a Hugging Face config.json or tokenizer.json, read with the header's strict parser
 * (without recursion, up to 64 deep) into a tree: one object at the top, every value kept. A key given twice
 * in one object is an error. */
typedef enum lmn_json_kind {
  LMN_JSON_NULL = 0,
  LMN_JSON_BOOL,
  LMN_JSON_NUMBER,
  LMN_JSON_STRING,
  LMN_JSON_OBJECT,
  LMN_JSON_ARRAY
} lmn_json_kind;

typedef struct lmn_json_value {
  const char *key; /* a member of an object: its key; else NULL */
  lmn_json_kind kind;
  double num;      /* LMN_JSON_NUMBER */
  int is_int;      /* the number was written without fraction or exponent */
  int boolean;     /* LMN_JSON_BOOL */
  const char *str; /* LMN_JSON_STRING (NUL-terminated, no NUL inside) */
  size_t n;        /* LMN_JSON_OBJECT: members, LMN_JSON_ARRAY: elements */
  const struct lmn_json_value *items; /* [n], in document order (members with their keys) */
} lmn_json_value;

typedef struct lmn_json lmn_json;

/* name is used in messages ("NAME: JSON at offset N: cause"). */
int lmn_json_parse(const char *text, size_t n, const char *name, lmn_json **out, lmn_err *err);
int lmn_json_read_file(const char *path, lmn_json **out, lmn_err *err); /* at most 64 MiB */
void lmn_json_free(lmn_json *j);
const lmn_json_value *lmn_json_root(const lmn_json *j);                 /* the top-level object */
const lmn_json_value *lmn_json_get(const lmn_json *j, const char *key); /* NULL when absent */
/* The member key of obj; NULL when absent or obj is not an object. */
const lmn_json_value *lmn_json_member(const lmn_json_value *obj, const char *key);

/* Hyper-parameters from a Hugging Face model directory's config.json (model_type llama, qwen2 or gpt2);
 * a missing or invalid key, or a feature the blocks cannot run, is an error naming the file and the key. */
int lmn_hf_hparams(const char *dir, lmn_hparams *hp, lmn_err *err);

#endif
