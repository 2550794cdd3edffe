/* gguf.c: GGUF v2/v3 reader (header, metadata, tensor infos, every length and offset checked against the
 * file size before use), typed metadata getters, hyper-parameter extraction, and the atomic GGUF writer. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmn_file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lmnet's GGUF writer assumes a little-endian host"
#endif

#define GGUF_MAGIC "GGUF"
#define META_CHUNK (64u * 1024u) /* first read of a header in LMN_GGUF_META mode */

struct lmn_gguf {
  char *name;          /* file name for messages */
  const uint8_t *base; /* bytes [0, loaded) of the file */
  uint64_t loaded;     /* how many bytes base holds (== size unless LMN_GGUF_META) */
  uint64_t size;       /* file size */
  uint8_t *owned;      /* malloc'd image (READ, META) */
  void *map;           /* mmap'd image (MMAP) */
  int fd;              /* META: the open file, for the header stream and tensor reads; else -1 */
  uint32_t version;
  uint32_t alignment;
  uint64_t data_start;
  lmn_gguf_kv *kv;
  size_t n_kv;
  const lmn_gguf_kv **kv_sorted; /* by key */
  lmn_gguf_tensor *t;
  size_t n_t;
  const lmn_gguf_tensor **t_sorted; /* by name */
};

/* ---------------------------------------------------------------- value type table */

static const char *const vtype_names[LMN_GGUF_VTYPE_COUNT] = {
    "UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32",  "FLOAT32",
    "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64"};

/* Bytes of a fixed-size value; 0 for STRING and ARRAY. */
static unsigned vtype_size(uint32_t type) {
  static const unsigned sizes[LMN_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  return type < LMN_GGUF_VTYPE_COUNT ? sizes[type] : 0;
}

const char *lmn_gguf_vtype_name(uint32_t type) {
  return type < LMN_GGUF_VTYPE_COUNT ? vtype_names[type] : "?";
}

static int vtype_is_int(uint32_t type) {
  return type <= LMN_GGUF_INT32 || type == LMN_GGUF_UINT64 || type == LMN_GGUF_INT64;
}

/* ---------------------------------------------------------------- little-endian decoding */

static uint64_t le(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Printable, bounded copy of a name from the file for messages. */
static const char *printable(char *buf, size_t cap, const char *s, size_t len) {
  size_t n = 0, max = cap - 4;
  for (size_t i = 0; i < len && n < max; i++) buf[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  if (len > max) memcpy(buf + n, "...", 3), n += 3;
  buf[n] = 0;
  return buf;
}

/* ---------------------------------------------------------------- header cursor */

typedef struct rd {
  lmn_gguf *g;
  uint64_t pos; /* invariant: pos <= g->size */
  lmn_err *err;
  char place[200]; /* "key 'x'", "tensor 'y'", ... for messages */
} rd;

static int rd_fail(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rd_fail(rd *r, const char *fmt, ...) {
  char cause[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cause, sizeof cause, fmt, ap);
  va_end(ap);
  return lmn_errf(r->err, "%s: %s: %s", r->g->name, r->place, cause);
}

static void rd_place(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rd_place(rd *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->place, sizeof r->place, fmt, ap);
  va_end(ap);
}

/* Reads exactly len bytes at off from fd; -1 on error or early end of file. */
static int pread_all(int fd, uint8_t *dst, uint64_t len, uint64_t off) {
  while (len > 0) {
    ssize_t got = pread(fd, dst, len > (1u << 30) ? (1u << 30) : (size_t)len, (off_t)off);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    dst += got, off += (uint64_t)got, len -= (uint64_t)got;
  }
  return 0;
}

/* META mode: grows the header image so that it holds bytes [0, end); end <= size. */
static int load_upto(rd *r, uint64_t end) {
  lmn_gguf *g = r->g;
  if (end <= g->loaded) return 0;
  uint64_t want = g->loaded * 2 > end ? g->loaded * 2 : end;
  if (want < META_CHUNK) want = META_CHUNK;
  if (want > g->size) want = g->size;
  if (want > SIZE_MAX) return rd_fail(r, "header of %" PRIu64 " bytes does not fit in memory", want);
  uint8_t *p = realloc(g->owned, (size_t)want);
  if (!p) return rd_fail(r, "out of memory reading %" PRIu64 " header bytes", want);
  g->owned = p, g->base = p;
  errno = 0;
  if (pread_all(g->fd, p + g->loaded, want - g->loaded, g->loaded) != 0)
    return rd_fail(r, "read of bytes [%" PRIu64 ", %" PRIu64 ") failed: %s", g->loaded, want,
                   errno ? strerror(errno) : "file shrank");
  g->loaded = want;
  return 0;
}

/* Checks that n bytes at the cursor lie within the file (and are loaded). */
static int need(rd *r, uint64_t n, const char *what) {
  if (n > r->g->size - r->pos)
    return rd_fail(r,
                   "%s [offset %" PRIu64 ", %" PRIu64 " bytes] extends past end of file (size %" PRIu64 ")",
                   what, r->pos, n, r->g->size);
  return load_upto(r, r->pos + n);
}

static int rd_uint(rd *r, unsigned n, const char *what, uint64_t *out) {
  if (need(r, n, what) != 0) return -1;
  *out = le(r->g->base + r->pos, n);
  r->pos += n;
  return 0;
}

static int rd_u32(rd *r, const char *what, uint32_t *out) {
  uint64_t v;
  if (rd_uint(r, 4, what, &v) != 0) return -1;
  *out = (uint32_t)v;
  return 0;
}

/* A gguf_string_t: returns the file offset of its bytes and its length; the bytes are loaded. */
static int rd_string(rd *r, const char *what, uint64_t *off, uint64_t *len) {
  char w[64];
  snprintf(w, sizeof w, "%s length", what);
  if (rd_uint(r, 8, w, len) != 0) return -1;
  if (need(r, *len, what) != 0) return -1;
  *off = r->pos;
  r->pos += *len;
  return 0;
}

/* ---------------------------------------------------------------- growth helper */

static int grow(void **p, size_t *cap, size_t n, size_t elem) {
  if (n < *cap) return 0;
  size_t nc = *cap ? *cap * 2 : 16;
  if (nc > SIZE_MAX / elem) return -1;
  void *q = realloc(*p, nc * elem);
  if (!q) return -1;
  *p = q, *cap = nc;
  return 0;
}

/* ---------------------------------------------------------------- metadata */

static int check_bools(rd *r, uint64_t off, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    uint8_t b = r->g->base[off + i];
    if (b > 1) return rd_fail(r, "invalid bool value %u at offset %" PRIu64 " (must be 0 or 1)", b, off + i);
  }
  return 0;
}

static int parse_string_array(rd *r, lmn_gguf_kv *kv) {
  size_t cap = 0;
  uint64_t bound = (r->g->size - r->pos) / 8; /* each element carries an 8-byte length */
  if (kv->n > bound)
    return rd_fail(r, "array of %" PRIu64 " strings cannot fit in the %" PRIu64 " bytes before end of file",
                   kv->n, r->g->size - r->pos);
  for (uint64_t i = 0; i < kv->n; i++) {
    uint64_t off, len;
    if (grow((void **)&kv->str_offs_, &cap, (size_t)i, sizeof *kv->str_offs_) != 0)
      return rd_fail(r, "out of memory");
    kv->str_offs_[i] = r->pos;
    if (rd_string(r, "array string", &off, &len) != 0) return -1;
  }
  return 0;
}

static int parse_array(rd *r, lmn_gguf_kv *kv) {
  uint32_t et;
  if (rd_u32(r, "array element type", &et) != 0) return -1;
  if (et == LMN_GGUF_ARRAY) return rd_fail(r, "nested arrays are not supported");
  if (et >= LMN_GGUF_VTYPE_COUNT) return rd_fail(r, "unknown array element type %" PRIu32, et);
  kv->elem_type = (lmn_gguf_vtype)et;
  if (rd_uint(r, 8, "array length", &kv->n) != 0) return -1;
  kv->off_ = r->pos;
  if (et == LMN_GGUF_STRING) return parse_string_array(r, kv);
  unsigned es = vtype_size(et);
  uint64_t left = r->g->size - r->pos;
  if (kv->n > left / es)
    return rd_fail(
        r, "array of %" PRIu64 " %s values [offset %" PRIu64 "] extends past end of file (size %" PRIu64 ")",
        kv->n, vtype_names[et], r->pos, r->g->size);
  if (need(r, kv->n * es, "array data") != 0) return -1;
  if (et == LMN_GGUF_BOOL && check_bools(r, r->pos, kv->n) != 0) return -1;
  r->pos += kv->n * es;
  return 0;
}

static int parse_value(rd *r, lmn_gguf_kv *kv) {
  uint32_t type;
  if (rd_u32(r, "value type", &type) != 0) return -1;
  if (type >= LMN_GGUF_VTYPE_COUNT) return rd_fail(r, "unknown value type %" PRIu32, type);
  kv->type = (lmn_gguf_vtype)type;
  kv->elem_type = kv->type;
  kv->n = 1;
  kv->off_ = r->pos;
  if (type == LMN_GGUF_ARRAY) return parse_array(r, kv);
  if (type == LMN_GGUF_STRING) {
    uint64_t off, len;
    return rd_string(r, "string", &off, &len);
  }
  if (need(r, vtype_size(type), "value") != 0) return -1;
  if (type == LMN_GGUF_BOOL && check_bools(r, r->pos, 1) != 0) return -1;
  r->pos += vtype_size(type);
  return 0;
}

static int parse_kv(rd *r, lmn_gguf_kv *kv, uint64_t index) {
  uint64_t off, len;
  char pk[100];
  rd_place(r, "metadata entry %" PRIu64, index);
  if (rd_string(r, "key", &off, &len) != 0) return -1;
  const char *k = (const char *)r->g->base + off;
  if (memchr(k, 0, len)) return rd_fail(r, "key contains a NUL byte");
  rd_place(r, "key '%s'", printable(pk, sizeof pk, k, len));
  char *key = malloc(len + 1);
  if (!key) return rd_fail(r, "out of memory");
  memcpy(key, k, len);
  key[len] = 0;
  kv->key = key;
  return parse_value(r, kv);
}

static int cmp_kv(const void *a, const void *b) {
  const lmn_gguf_kv *x = *(const lmn_gguf_kv *const *)a, *y = *(const lmn_gguf_kv *const *)b;
  int c = strcmp(x->key, y->key);
  return c ? c : (x < y ? -1 : x > y);
}

static int index_kv(rd *r) {
  lmn_gguf *g = r->g;
  g->kv_sorted = malloc((g->n_kv ? g->n_kv : 1) * sizeof *g->kv_sorted);
  if (!g->kv_sorted) return lmn_errf(r->err, "%s: out of memory", g->name);
  for (size_t i = 0; i < g->n_kv; i++) g->kv_sorted[i] = &g->kv[i];
  qsort(g->kv_sorted, g->n_kv, sizeof *g->kv_sorted, cmp_kv);
  for (size_t i = 1; i < g->n_kv; i++)
    if (strcmp(g->kv_sorted[i - 1]->key, g->kv_sorted[i]->key) == 0) {
      char pk[100];
      const char *k = g->kv_sorted[i]->key;
      return lmn_errf(r->err, "%s: key '%s': duplicate key (metadata entries %td and %td)", g->name,
                      printable(pk, sizeof pk, k, strlen(k)), g->kv_sorted[i - 1] - g->kv,
                      g->kv_sorted[i] - g->kv);
    }
  return 0;
}

static int parse_kvs(rd *r, uint64_t n_kv) {
  size_t cap = 0;
  for (uint64_t i = 0; i < n_kv; i++) {
    if (grow((void **)&r->g->kv, &cap, r->g->n_kv, sizeof *r->g->kv) != 0)
      return lmn_errf(r->err, "%s: out of memory", r->g->name);
    lmn_gguf_kv *kv = &r->g->kv[r->g->n_kv++];
    memset(kv, 0, sizeof *kv);
    if (parse_kv(r, kv, i) != 0) return -1;
  }
  return index_kv(r);
}

/* general.alignment: UINT32, a non-zero power of two; 32 when absent. */
static int read_alignment(lmn_gguf *g, lmn_err *err) {
  g->alignment = LMN_GGUF_DEFAULT_ALIGNMENT;
  const lmn_gguf_kv *kv = lmn_gguf_find_kv(g, "general.alignment");
  if (!kv) return 0;
  if (kv->type != LMN_GGUF_UINT32)
    return lmn_errf(err, "%s: key 'general.alignment': type %s, expected UINT32", g->name,
                    vtype_names[kv->type]);
  uint32_t a = (uint32_t)le(g->base + kv->off_, 4);
  if (a == 0 || (a & (a - 1)) != 0)
    return lmn_errf(err, "%s: key 'general.alignment': %" PRIu32 " is not a power of two", g->name, a);
  g->alignment = a;
  return 0;
}

/* ---------------------------------------------------------------- tensor infos */

static int parse_dims(rd *r, lmn_gguf_tensor *t) {
  if (rd_u32(r, "n_dims", &t->n_dims) != 0) return -1;
  if (t->n_dims > LMN_GGUF_MAX_DIMS) return rd_fail(r, "%" PRIu32 " dimensions (at most 4)", t->n_dims);
  t->nelems = 1;
  for (int j = 0; j < LMN_GGUF_MAX_DIMS; j++) t->ne[j] = 1;
  for (uint32_t j = 0; j < t->n_dims; j++) {
    uint64_t v;
    if (rd_uint(r, 8, "dimension", &v) != 0) return -1;
    if (v == 0 || v > INT64_MAX) return rd_fail(r, "dimension %" PRIu32 " is %" PRIu64, j, v);
    if ((uint64_t)t->nelems > INT64_MAX / v)
      return rd_fail(r, "element count overflows (dimension %" PRIu32 " is %" PRIu64 ")", j, v);
    t->ne[j] = (int64_t)v;
    t->nelems *= (int64_t)v;
  }
  return 0;
}

static int parse_tensor_type(rd *r, lmn_gguf_tensor *t) {
  uint32_t blck = 1, bytes = 1;
  lmn_err e;
  if (rd_u32(r, "type", &t->type) != 0) return -1;
  if (lmn_ggml_type_size(t->type, &blck, &bytes, &e) != 0) return rd_fail(r, "%s", e.msg);
  if (t->ne[0] % blck != 0)
    return rd_fail(r, "ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRIu32, t->ne[0],
                   lmn_ggml_type_name(t->type), blck);
  uint64_t blocks = (uint64_t)t->nelems / blck;
  if (blocks > UINT64_MAX / bytes) return rd_fail(r, "byte size overflows");
  t->nbytes = blocks * bytes;
  return 0;
}

static int parse_tensor_info(rd *r, lmn_gguf_tensor *t, uint64_t index) {
  uint64_t off, len;
  char pn[100];
  rd_place(r, "tensor info %" PRIu64, index);
  if (rd_string(r, "name", &off, &len) != 0) return -1;
  const char *name = (const char *)r->g->base + off;
  if (len >= LMN_GGUF_MAX_NAME)
    return rd_fail(r, "name '%s' is %" PRIu64 " bytes (at most %d)", printable(pn, sizeof pn, name, len), len,
                   LMN_GGUF_MAX_NAME - 1);
  if (memchr(name, 0, len)) return rd_fail(r, "name contains a NUL byte");
  memcpy(t->name, name, len);
  t->name[len] = 0;
  rd_place(r, "tensor '%s'", printable(pn, sizeof pn, name, len));
  if (parse_dims(r, t) != 0 || parse_tensor_type(r, t) != 0) return -1;
  return rd_uint(r, 8, "offset", &t->offset);
}

static int cmp_tensor_name(const void *a, const void *b) {
  const lmn_gguf_tensor *x = *(const lmn_gguf_tensor *const *)a, *y = *(const lmn_gguf_tensor *const *)b;
  int c = strcmp(x->name, y->name);
  return c ? c : (x < y ? -1 : x > y);
}

static int cmp_tensor_offset(const void *a, const void *b) {
  const lmn_gguf_tensor *x = *(const lmn_gguf_tensor *const *)a, *y = *(const lmn_gguf_tensor *const *)b;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  return x < y ? -1 : x > y;
}

/* Data of one tensor: aligned, inside the file. */
static int check_tensor_data(const lmn_gguf *g, const lmn_gguf_tensor *t, lmn_err *err) {
  uint64_t avail = g->size > g->data_start ? g->size - g->data_start : 0;
  if (t->offset % g->alignment != 0)
    return lmn_errf(err,
                    "%s: tensor '%s': data offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                    g->name, t->name, t->offset, g->alignment);
  if (t->offset > avail || t->nbytes > avail - t->offset) {
    if (t->offset <= UINT64_MAX - g->data_start)
      return lmn_errf(err,
                      "%s: tensor '%s': data [offset %" PRIu64 ", %" PRIu64
                      " bytes] extends past end of file (size %" PRIu64 ")",
                      g->name, t->name, g->data_start + t->offset, t->nbytes, g->size);
    return lmn_errf(err, "%s: tensor '%s': data offset %" PRIu64 " lies past end of file (size %" PRIu64 ")",
                    g->name, t->name, t->offset, g->size);
  }
  return 0;
}

/* Sorted by offset, each tensor must end before the next begins. */
static int check_overlaps(const lmn_gguf *g, lmn_err *err) {
  const lmn_gguf_tensor **by_off = malloc((g->n_t ? g->n_t : 1) * sizeof *by_off);
  if (!by_off) return lmn_errf(err, "%s: out of memory", g->name);
  for (size_t i = 0; i < g->n_t; i++) by_off[i] = &g->t[i];
  qsort(by_off, g->n_t, sizeof *by_off, cmp_tensor_offset);
  int rc = 0;
  for (size_t i = 1; i < g->n_t && rc == 0; i++) {
    const lmn_gguf_tensor *a = by_off[i - 1], *b = by_off[i];
    if (a->offset + a->nbytes > b->offset)
      rc = lmn_errf(err,
                    "%s: tensor '%s': data [offset %" PRIu64 ", %" PRIu64
                    " bytes] overlaps tensor '%s' [offset %" PRIu64 ", %" PRIu64 " bytes]",
                    g->name, b->name, g->data_start + b->offset, b->nbytes, a->name,
                    g->data_start + a->offset, a->nbytes);
  }
  free(by_off);
  return rc;
}

static int index_tensors(lmn_gguf *g, lmn_err *err) {
  g->t_sorted = malloc((g->n_t ? g->n_t : 1) * sizeof *g->t_sorted);
  if (!g->t_sorted) return lmn_errf(err, "%s: out of memory", g->name);
  for (size_t i = 0; i < g->n_t; i++) g->t_sorted[i] = &g->t[i];
  qsort(g->t_sorted, g->n_t, sizeof *g->t_sorted, cmp_tensor_name);
  for (size_t i = 1; i < g->n_t; i++)
    if (strcmp(g->t_sorted[i - 1]->name, g->t_sorted[i]->name) == 0)
      return lmn_errf(err, "%s: tensor '%s': duplicate tensor name (tensor infos %td and %td)", g->name,
                      g->t_sorted[i]->name, g->t_sorted[i - 1] - g->t, g->t_sorted[i] - g->t);
  return 0;
}

static int parse_tensors(rd *r, uint64_t n_t) {
  lmn_gguf *g = r->g;
  size_t cap = 0;
  for (uint64_t i = 0; i < n_t; i++) {
    if (grow((void **)&g->t, &cap, g->n_t, sizeof *g->t) != 0)
      return lmn_errf(r->err, "%s: out of memory", g->name);
    lmn_gguf_tensor *t = &g->t[g->n_t++];
    memset(t, 0, sizeof *t);
    if (parse_tensor_info(r, t, i) != 0) return -1;
  }
  uint64_t a = g->alignment;
  g->data_start = r->pos + (a - r->pos % a) % a; /* pos <= size < 2^63: no overflow */
  if (index_tensors(g, r->err) != 0) return -1;
  for (size_t i = 0; i < g->n_t; i++)
    if (check_tensor_data(g, &g->t[i], r->err) != 0) return -1;
  return check_overlaps(g, r->err);
}

/* ---------------------------------------------------------------- header */

static int parse_version(rd *r) {
  uint32_t v;
  if (rd_u32(r, "version", &v) != 0) return -1;
  r->g->version = v;
  if (v == 1) return rd_fail(r, "GGUF version 1 is no longer supported (need 2 or 3)");
  if (v != 0 && (v & 0xFFFF) == 0)
    return rd_fail(r, "version field 0x%08" PRIx32 " looks byte-swapped: big-endian GGUF is not supported",
                   v);
  if (v != 2 && v != 3) return rd_fail(r, "unsupported GGUF version %" PRIu32 " (need 2 or 3)", v);
  return 0;
}

/* Counts must be consistent with the bytes left: a KV takes >= 13 bytes, a tensor info >= 24. */
static int parse_counts(rd *r, uint64_t *n_t, uint64_t *n_kv) {
  if (rd_uint(r, 8, "tensor count", n_t) != 0 || rd_uint(r, 8, "metadata count", n_kv) != 0) return -1;
  uint64_t left = r->g->size - r->pos;
  if (*n_kv > left / 13)
    return rd_fail(r, "metadata count %" PRIu64 " cannot fit in the %" PRIu64 " bytes before end of file",
                   *n_kv, left);
  if (*n_t > (left - *n_kv * 13) / 24)
    return rd_fail(r, "tensor count %" PRIu64 " cannot fit in the %" PRIu64 " bytes before end of file", *n_t,
                   left);
  return 0;
}

static int parse(lmn_gguf *g, lmn_err *err) {
  rd r = {.g = g, .pos = 0, .err = err};
  uint64_t n_t, n_kv;
  rd_place(&r, "header");
  if (need(&r, 4, "magic") != 0) return -1;
  if (memcmp(g->base, GGUF_MAGIC, 4) != 0) {
    char pm[16];
    return rd_fail(&r, "bad magic '%s' (not a GGUF file)",
                   printable(pm, sizeof pm, (const char *)g->base, 4));
  }
  r.pos = 4;
  if (parse_version(&r) != 0 || parse_counts(&r, &n_t, &n_kv) != 0) return -1;
  if (parse_kvs(&r, n_kv) != 0 || read_alignment(g, err) != 0) return -1;
  return parse_tensors(&r, n_t);
}

/* ---------------------------------------------------------------- open / close */

static lmn_gguf *gguf_new(const char *name, lmn_err *err) {
  lmn_gguf *g = calloc(1, sizeof *g);
  if (g) g->name = strdup(name ? name : "(memory)");
  if (!g || !g->name) {
    free(g);
    lmn_errf(err, "%s: out of memory", name ? name : "(memory)");
    return NULL;
  }
  g->fd = -1;
  return g;
}

void lmn_gguf_close(lmn_gguf *g) {
  if (!g) return;
  for (size_t i = 0; i < g->n_kv; i++) {
    free((void *)g->kv[i].key);
    free(g->kv[i].str_offs_);
  }
  free(g->kv);
  free(g->kv_sorted);
  free(g->t);
  free(g->t_sorted);
  free(g->owned);
  if (g->map) munmap(g->map, (size_t)g->size);
  if (g->fd >= 0) close(g->fd);
  free(g->name);
  free(g);
}

static int finish_open(lmn_gguf *g, lmn_gguf **out, lmn_err *err) {
  if (parse(g, err) != 0) {
    lmn_gguf_close(g);
    return -1;
  }
  *out = g;
  return 0;
}

int lmn_gguf_open_mem(const void *data, size_t size, const char *name, lmn_gguf **out, lmn_err *err) {
  *out = NULL;
  lmn_gguf *g = gguf_new(name, err);
  if (!g) return -1;
  g->base = data;
  g->size = g->loaded = size;
  return finish_open(g, out, err);
}

/* Brings the file's bytes into g according to mode (META: nothing yet). */
static int load_image(lmn_gguf *g, int fd, lmn_gguf_mode mode, lmn_err *err) {
  if (mode == LMN_GGUF_META) {
    g->fd = fd;
    return 0;
  }
  if (g->size > SIZE_MAX)
    return lmn_errf(err, "%s: file of %" PRIu64 " bytes is too large", g->name, g->size);
  int rc = 0;
  if (g->size == 0) {
    /* nothing to map: parsing reports the truncation */
  } else if (mode == LMN_GGUF_MMAP) {
    void *m = mmap(NULL, (size_t)g->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
      rc = lmn_errf(err, "%s: mmap failed: %s", g->name, strerror(errno));
    else
      g->map = m, g->base = m;
  } else {
    g->owned = malloc((size_t)g->size);
    if (!g->owned)
      rc = lmn_errf(err, "%s: out of memory reading %" PRIu64 " bytes", g->name, g->size);
    else if (pread_all(fd, g->owned, g->size, 0) != 0)
      rc = lmn_errf(err, "%s: read failed: %s", g->name, errno ? strerror(errno) : "file shrank");
    g->base = g->owned;
  }
  g->loaded = rc == 0 ? g->size : 0;
  close(fd);
  return rc;
}

int lmn_gguf_open(const char *path, lmn_gguf_mode mode, lmn_gguf **out, lmn_err *err) {
  *out = NULL;
  if (mode != LMN_GGUF_MMAP && mode != LMN_GGUF_READ && mode != LMN_GGUF_META)
    return lmn_errf(err, "%s: invalid open mode %d", path, (int)mode);
  lmn_gguf *g = gguf_new(path, err);
  if (!g) return -1;
  off_t size = 0;
  int fd = lmn_open_regular(path, &size, err);
  if (fd >= 0) {
    g->size = (uint64_t)size;
    errno = 0;
    if (load_image(g, fd, mode, err) == 0) return finish_open(g, out, err);
  }
  lmn_gguf_close(g);
  return -1;
}

/* ---------------------------------------------------------------- simple accessors */

const char *lmn_gguf_name(const lmn_gguf *g) { return g->name; }
uint32_t lmn_gguf_version(const lmn_gguf *g) { return g->version; }
uint32_t lmn_gguf_alignment(const lmn_gguf *g) { return g->alignment; }
uint64_t lmn_gguf_data_start(const lmn_gguf *g) { return g->data_start; }
uint64_t lmn_gguf_file_size(const lmn_gguf *g) { return g->size; }
size_t lmn_gguf_n_kv(const lmn_gguf *g) { return g->n_kv; }
size_t lmn_gguf_n_tensors(const lmn_gguf *g) { return g->n_t; }

const lmn_gguf_kv *lmn_gguf_kv_at(const lmn_gguf *g, size_t i) { return i < g->n_kv ? &g->kv[i] : NULL; }
const lmn_gguf_tensor *lmn_gguf_tensor_at(const lmn_gguf *g, size_t i) {
  return i < g->n_t ? &g->t[i] : NULL;
}

static int cmp_key_kv(const void *key, const void *elem) {
  return strcmp((const char *)key, (*(const lmn_gguf_kv *const *)elem)->key);
}

static int cmp_name_tensor(const void *name, const void *elem) {
  return strcmp((const char *)name, (*(const lmn_gguf_tensor *const *)elem)->name);
}

const lmn_gguf_kv *lmn_gguf_find_kv(const lmn_gguf *g, const char *key) {
  if (!g->kv_sorted) return NULL;
  const lmn_gguf_kv *const *p = bsearch(key, g->kv_sorted, g->n_kv, sizeof *g->kv_sorted, cmp_key_kv);
  return p ? *p : NULL;
}

const lmn_gguf_tensor *lmn_gguf_find_tensor(const lmn_gguf *g, const char *name) {
  if (!g->t_sorted) return NULL;
  const lmn_gguf_tensor *const *p = bsearch(name, g->t_sorted, g->n_t, sizeof *g->t_sorted, cmp_name_tensor);
  return p ? *p : NULL;
}

/* ---------------------------------------------------------------- typed getters */

/* Integer value of any integer type at p: as int64 unless it is a UINT64 above INT64_MAX (*big = 1). */
static int64_t decode_int(uint32_t type, const uint8_t *p, int *big) {
  uint64_t u = le(p, vtype_size(type));
  *big = 0;
  switch (type) {
    case LMN_GGUF_INT8: return (int8_t)u;
    case LMN_GGUF_INT16: return (int16_t)u;
    case LMN_GGUF_INT32: return (int32_t)u;
    case LMN_GGUF_INT64: return u > INT64_MAX ? -(int64_t)(~u) - 1 : (int64_t)u;
    default: *big = u > INT64_MAX; return (int64_t)(u & INT64_MAX);
  }
}

static double decode_float(uint32_t type, const uint8_t *p) {
  if (type == LMN_GGUF_FLOAT32) {
    uint32_t b = (uint32_t)le(p, 4);
    float f;
    memcpy(&f, &b, 4);
    return f;
  }
  if (type == LMN_GGUF_FLOAT64) {
    uint64_t b = le(p, 8);
    double d;
    memcpy(&d, &b, 8);
    return d;
  }
  int big;
  int64_t v = decode_int(type, p, &big);
  return big ? (double)le(p, 8) : (double)v;
}

static const lmn_gguf_kv *find_typed(const lmn_gguf *g, const char *key, lmn_err *err) {
  const lmn_gguf_kv *kv = lmn_gguf_find_kv(g, key);
  if (!kv) lmn_errf(err, "%s: key '%s' is missing", g->name, key);
  return kv;
}

static int type_error(const lmn_gguf *g, const lmn_gguf_kv *kv, const char *want, lmn_err *err) {
  if (kv->type == LMN_GGUF_ARRAY)
    return lmn_errf(err, "%s: key '%s': type ARRAY of %s, expected %s", g->name, kv->key,
                    vtype_names[kv->elem_type], want);
  return lmn_errf(err, "%s: key '%s': type %s, expected %s", g->name, kv->key, vtype_names[kv->type], want);
}

static int int_in_range(const lmn_gguf *g, const lmn_gguf_kv *kv, uint32_t type, const uint8_t *p, int64_t lo,
                        int64_t hi, int64_t *out, lmn_err *err) {
  if (!vtype_is_int(type)) return type_error(g, kv, "an integer", err);
  int big;
  int64_t v = decode_int(type, p, &big);
  if (big)
    return lmn_errf(err, "%s: key '%s': value %" PRIu64 " out of range [%" PRId64 ", %" PRId64 "]", g->name,
                    kv->key, le(p, 8), lo, hi);
  if (v < lo || v > hi)
    return lmn_errf(err, "%s: key '%s': value %" PRId64 " out of range [%" PRId64 ", %" PRId64 "]", g->name,
                    kv->key, v, lo, hi);
  *out = v;
  return 0;
}

int lmn_gguf_get_int(const lmn_gguf *g, const char *key, int64_t lo, int64_t hi, int64_t *out, lmn_err *err) {
  const lmn_gguf_kv *kv = find_typed(g, key, err);
  if (!kv) return -1;
  return int_in_range(g, kv, kv->type, g->base + kv->off_, lo, hi, out, err);
}

int lmn_gguf_get_uint(const lmn_gguf *g, const char *key, uint64_t *out, lmn_err *err) {
  const lmn_gguf_kv *kv = find_typed(g, key, err);
  if (!kv) return -1;
  if (!vtype_is_int(kv->type)) return type_error(g, kv, "an integer", err);
  int big;
  int64_t v = decode_int(kv->type, g->base + kv->off_, &big);
  if (v < 0) return lmn_errf(err, "%s: key '%s': value %" PRId64 " is negative", g->name, key, v);
  *out = big ? le(g->base + kv->off_, 8) : (uint64_t)v;
  return 0;
}

int lmn_gguf_get_float(const lmn_gguf *g, const char *key, double *out, lmn_err *err) {
  const lmn_gguf_kv *kv = find_typed(g, key, err);
  if (!kv) return -1;
  if (kv->type != LMN_GGUF_FLOAT32 && kv->type != LMN_GGUF_FLOAT64 && !vtype_is_int(kv->type))
    return type_error(g, kv, "a number", err);
  *out = decode_float(kv->type, g->base + kv->off_);
  return 0;
}

int lmn_gguf_get_bool(const lmn_gguf *g, const char *key, int *out, lmn_err *err) {
  const lmn_gguf_kv *kv = find_typed(g, key, err);
  if (!kv) return -1;
  if (kv->type != LMN_GGUF_BOOL) return type_error(g, kv, "BOOL", err);
  *out = g->base[kv->off_];
  return 0;
}

/* The string whose 8-byte length is at file offset off (validated at parse time). */
static lmn_gguf_str str_at(const lmn_gguf *g, uint64_t off) {
  lmn_gguf_str s = {(const char *)g->base + off + 8, (size_t)le(g->base + off, 8)};
  return s;
}

int lmn_gguf_get_str(const lmn_gguf *g, const char *key, lmn_gguf_str *out, lmn_err *err) {
  const lmn_gguf_kv *kv = find_typed(g, key, err);
  if (!kv) return -1;
  if (kv->type != LMN_GGUF_STRING) return type_error(g, kv, "STRING", err);
  *out = str_at(g, kv->off_);
  return 0;
}

int lmn_gguf_get_arr(const lmn_gguf *g, const char *key, lmn_gguf_vtype *elem_type, uint64_t *n,
                     lmn_err *err) {
  const lmn_gguf_kv *kv = find_typed(g, key, err);
  if (!kv) return -1;
  if (kv->type != LMN_GGUF_ARRAY) return type_error(g, kv, "ARRAY", err);
  if (elem_type) *elem_type = kv->elem_type;
  if (n) *n = kv->n;
  return 0;
}

/* The array kv of key with element i in range. */
static const lmn_gguf_kv *arr_elem(const lmn_gguf *g, const char *key, uint64_t i, lmn_err *err) {
  const lmn_gguf_kv *kv = find_typed(g, key, err);
  if (!kv) return NULL;
  if (kv->type != LMN_GGUF_ARRAY) {
    type_error(g, kv, "ARRAY", err);
    return NULL;
  }
  if (i >= kv->n) {
    lmn_errf(err, "%s: key '%s': index %" PRIu64 " out of range (array of %" PRIu64 ")", g->name, key, i,
             kv->n);
    return NULL;
  }
  return kv;
}

int lmn_gguf_get_arr_str(const lmn_gguf *g, const char *key, uint64_t i, lmn_gguf_str *out, lmn_err *err) {
  const lmn_gguf_kv *kv = arr_elem(g, key, i, err);
  if (!kv) return -1;
  if (kv->elem_type != LMN_GGUF_STRING) return type_error(g, kv, "ARRAY of STRING", err);
  *out = str_at(g, kv->str_offs_[i]);
  return 0;
}

int lmn_gguf_get_arr_int(const lmn_gguf *g, const char *key, uint64_t i, int64_t *out, lmn_err *err) {
  const lmn_gguf_kv *kv = arr_elem(g, key, i, err);
  if (!kv) return -1;
  const uint8_t *p = g->base + kv->off_ + i * vtype_size(kv->elem_type);
  return int_in_range(g, kv, kv->elem_type, p, INT64_MIN, INT64_MAX, out, err);
}

int lmn_gguf_get_arr_float(const lmn_gguf *g, const char *key, uint64_t i, double *out, lmn_err *err) {
  const lmn_gguf_kv *kv = arr_elem(g, key, i, err);
  if (!kv) return -1;
  uint32_t et = kv->elem_type;
  if (et != LMN_GGUF_FLOAT32 && et != LMN_GGUF_FLOAT64 && !vtype_is_int(et))
    return type_error(g, kv, "ARRAY of numbers", err);
  *out = decode_float(et, g->base + kv->off_ + i * vtype_size(et));
  return 0;
}

/* ---------------------------------------------------------------- tensor data */

int lmn_gguf_mapped(const lmn_gguf *g) {
  return g->map != NULL;
}

const void *lmn_gguf_tensor_data(const lmn_gguf *g, const lmn_gguf_tensor *t, lmn_err *err) {
  if (g->fd >= 0) {
    lmn_errf(err, "%s: tensor '%s': file was opened for metadata only", g->name, t->name);
    return NULL;
  }
  return g->base + g->data_start + t->offset;
}

int lmn_gguf_tensor_read(const lmn_gguf *g, const lmn_gguf_tensor *t, uint64_t off, void *dst, uint64_t len,
                         lmn_err *err) {
  if (off > t->nbytes || len > t->nbytes - off)
    return lmn_errf(err, "%s: tensor '%s': bytes [%" PRIu64 ", +%" PRIu64 ") outside its %" PRIu64 " bytes",
                    g->name, t->name, off, len, t->nbytes);
  uint64_t at = g->data_start + t->offset + off;
  if (g->fd < 0) {
    if (len) memcpy(dst, g->base + at, (size_t)len);
    return 0;
  }
  errno = 0;
  if (pread_all(g->fd, dst, len, at) != 0)
    return lmn_errf(err, "%s: tensor '%s': read failed: %s", g->name, t->name,
                    errno ? strerror(errno) : "file shrank");
  return 0;
}

/* ---------------------------------------------------------------- hyper-parameters */

/* {arch}.{suffix} as an integer in [1, INT32_MAX]; def (when >= 0) if absent. */
static int arch_int(const lmn_gguf *g, const char *arch, const char *suffix, long def, long *out,
                    lmn_err *err) {
  char key[128];
  int64_t v;
  snprintf(key, sizeof key, "%s.%s", arch, suffix);
  if (def >= 0 && !lmn_gguf_find_kv(g, key)) {
    *out = def;
    return 0;
  }
  if (lmn_gguf_get_int(g, key, 1, INT32_MAX, &v, err) != 0) return -1;
  *out = (long)v;
  return 0;
}

/* {arch}.{suffix} as a finite positive number; def (when > 0) if absent. */
static int arch_float(const lmn_gguf *g, const char *arch, const char *suffix, double def, double *out,
                      lmn_err *err) {
  char key[128];
  snprintf(key, sizeof key, "%s.%s", arch, suffix);
  if (def > 0 && !lmn_gguf_find_kv(g, key)) {
    *out = def;
    return 0;
  }
  if (lmn_gguf_get_float(g, key, out, err) != 0) return -1;
  if (!(*out > 0 && *out < 1e300))
    return lmn_errf(err, "%s: key '%s': value %g must be positive", g->name, key, *out);
  return 0;
}

static int hp_arch(const lmn_gguf *g, lmn_arch *arch, lmn_err *err) {
  lmn_gguf_str s;
  char name[32], pn[100];
  if (lmn_gguf_get_str(g, "general.architecture", &s, err) != 0) return -1;
  *arch = LMN_ARCH_NONE;
  if (s.len < sizeof name) {
    memcpy(name, s.s, s.len);
    name[s.len] = 0;
    if (!memchr(s.s, 0, s.len)) *arch = lmn_arch_from_name(name);
  }
  if (*arch == LMN_ARCH_NONE)
    return lmn_errf(err, "%s: key 'general.architecture': '%s' is not supported (llama, qwen2, gpt2)",
                    g->name, printable(pn, sizeof pn, s.s, s.len));
  return 0;
}

/* vocab: {arch}.vocab_size, else the token list's length, else token_embd's ne[1]. */
static int hp_vocab(const lmn_gguf *g, const char *a, lmn_hparams *hp, lmn_err *err) {
  char key[64];
  uint64_t n;
  const lmn_gguf_tensor *emb = lmn_gguf_find_tensor(g, "token_embd.weight");
  snprintf(key, sizeof key, "%s.vocab_size", a);
  if (lmn_gguf_find_kv(g, key)) return arch_int(g, a, "vocab_size", -1, &hp->vocab, err);
  if (lmn_gguf_find_kv(g, "tokenizer.ggml.tokens")) {
    if (lmn_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &n, err) != 0) return -1;
    if (n < 1 || n > INT32_MAX)
      return lmn_errf(err, "%s: key 'tokenizer.ggml.tokens': %" PRIu64 " tokens is not a valid vocabulary",
                      g->name, n);
    hp->vocab = (long)n;
    return 0;
  }
  if (emb && emb->ne[1] <= INT32_MAX) {
    hp->vocab = (long)emb->ne[1];
    return 0;
  }
  return lmn_errf(
      err,
      "%s: vocabulary size unknown: no key '%s', no 'tokenizer.ggml.tokens', no tensor 'token_embd.weight'",
      g->name, key);
}

static int hp_check(const lmn_gguf *g, const char *a, const lmn_hparams *hp, lmn_err *err) {
  const lmn_gguf_tensor *emb = lmn_gguf_find_tensor(g, "token_embd.weight");
  if (hp->dim % hp->heads != 0)
    return lmn_errf(err, "%s: key '%s.embedding_length': %ld is not a multiple of attention.head_count %ld",
                    g->name, a, hp->dim, hp->heads);
  if (hp->kv_heads > hp->heads || hp->heads % hp->kv_heads != 0)
    return lmn_errf(err, "%s: key '%s.attention.head_count_kv': %ld does not divide attention.head_count %ld",
                    g->name, a, hp->kv_heads, hp->heads);
  if (emb && (emb->n_dims != 2 || emb->ne[0] != hp->dim || emb->ne[1] != hp->vocab))
    return lmn_errf(err,
                    "%s: tensor 'token_embd.weight': shape {%" PRId64 ", %" PRId64 "}, expected {%ld, %ld}",
                    g->name, emb->ne[0], emb->ne[1], hp->dim, hp->vocab);
  return 0;
}

int lmn_gguf_hparams(const lmn_gguf *g, lmn_hparams *hp, lmn_err *err) {
  lmn_arch arch;
  if (hp_arch(g, &arch, err) != 0) return -1;
  lmn_hparams_defaults(hp, arch);
  const char *a = lmn_arch_name(arch);
  int gpt2 = arch == LMN_ARCH_GPT2;
  if (arch_int(g, a, "context_length", -1, &hp->ctx, err) != 0 ||
      arch_int(g, a, "embedding_length", -1, &hp->dim, err) != 0 ||
      arch_int(g, a, "block_count", -1, &hp->layers, err) != 0 ||
      arch_int(g, a, "feed_forward_length", -1, &hp->ffn, err) != 0 ||
      arch_int(g, a, "attention.head_count", -1, &hp->heads, err) != 0 ||
      arch_int(g, a, "attention.head_count_kv", hp->heads, &hp->kv_heads, err) != 0)
    return -1;
  if (gpt2) hp->kv_heads = hp->heads;
  if (arch_float(g, a, gpt2 ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon", -1,
                 &hp->eps, err) != 0)
    return -1;
  if (!gpt2 && arch_float(g, a, "rope.freq_base", hp->rope_theta, &hp->rope_theta, err) != 0) return -1;
  if (hp_vocab(g, a, hp, err) != 0) return -1;
  hp->tied = lmn_gguf_find_tensor(g, "output.weight") == NULL;
  hp->qkv_bias = lmn_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
  return hp_check(g, a, hp, err);
}

/* ---------------------------------------------------------------- atomic write */

static int write_tmp(const char *path, char *tmp, lmn_emit_fn emit, const void *ctx, lmn_err *err) {
  int fd = mkstemp(tmp);
  if (fd < 0) return lmn_errf(err, "%s: cannot create temp file '%s': %s", path, tmp, strerror(errno));
  fchmod(fd, 0644);
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    close(fd);
    return lmn_errf(err, "%s: fdopen failed: %s", path, strerror(errno));
  }
  int rc = emit(f, ctx, err);
  if (rc == 0 && (fflush(f) != 0 || ferror(f)))
    rc = lmn_errf(err, "%s: write to temp file failed: %s", path, strerror(errno));
  if (rc == 0 && fsync(fileno(f)) != 0) rc = lmn_errf(err, "%s: fsync failed: %s", path, strerror(errno));
  if (fclose(f) != 0 && rc == 0)
    rc = lmn_errf(err, "%s: close of temp file failed: %s", path, strerror(errno));
  return rc;
}

static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash)
    snprintf(dir, sizeof dir, ".");
  else
    snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd); /* best effort: the rename already happened */
    close(fd);
  }
}

int lmn_write_atomic(const char *path, lmn_emit_fn emit, const void *ctx, lmn_err *err) {
  size_t n = strlen(path);
  char *tmp = malloc(n + 16);
  if (!tmp) return lmn_errf(err, "%s: out of memory", path);
  snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
  int rc = write_tmp(path, tmp, emit, ctx, err);
  if (rc == 0 && rename(tmp, path) != 0)
    rc = lmn_errf(err, "%s: rename from temp file failed: %s", path, strerror(errno));
  if (rc != 0)
    unlink(tmp);
  else
    sync_dir(path);
  free(tmp);
  if (rc != 0 && err && strncmp(err->msg, path, n) != 0) { /* every message names the file */
    char m[sizeof err->msg];
    snprintf(m, sizeof m, "%s", err->msg);
    lmn_errf(err, "%s: %s", path, m);
  }
  return rc;
}

/* ---------------------------------------------------------------- writer */

typedef struct wbuf {
  uint8_t *p;
  size_t len, cap;
} wbuf;

typedef struct wtensor {
  char name[LMN_GGUF_MAX_NAME];
  uint32_t type, n_dims;
  int64_t ne[LMN_GGUF_MAX_DIMS];
  const void *data;
  uint64_t nbytes;
} wtensor;

struct lmn_gguf_writer {
  wbuf kv; /* serialized metadata entries */
  char **keys;
  size_t n_keys, cap_keys;
  wtensor *t;
  size_t n_t, cap_t;
  uint32_t alignment;
};

static int wb_put(wbuf *b, const void *src, size_t n) {
  if (n > SIZE_MAX - b->len) return -1;
  if (b->len + n > b->cap) {
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + n) nc = nc > SIZE_MAX / 2 ? b->len + n : nc * 2;
    uint8_t *q = realloc(b->p, nc);
    if (!q) return -1;
    b->p = q, b->cap = nc;
  }
  if (n) memcpy(b->p + b->len, src, n);
  b->len += n;
  return 0;
}

static int wb_le(wbuf *b, uint64_t v, unsigned n) {
  uint8_t x[8];
  for (unsigned i = 0; i < n; i++) x[i] = (uint8_t)(v >> (8 * i));
  return wb_put(b, x, n);
}

static int wb_str(wbuf *b, const char *s, size_t len) {
  return wb_le(b, len, 8) || wb_put(b, s, len) ? -1 : 0;
}

int lmn_gguf_writer_new(lmn_gguf_writer **out, lmn_err *err) {
  *out = calloc(1, sizeof **out);
  if (!*out) return lmn_errf(err, "gguf writer: out of memory");
  (*out)->alignment = LMN_GGUF_DEFAULT_ALIGNMENT;
  return 0;
}

void lmn_gguf_writer_free(lmn_gguf_writer *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n_keys; i++) free(w->keys[i]);
  free(w->keys);
  free(w->kv.p);
  free(w->t);
  free(w);
}

int lmn_gguf_writer_set_alignment(lmn_gguf_writer *w, uint32_t alignment, lmn_err *err) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    return lmn_errf(err, "gguf writer: alignment %" PRIu32 " is not a power of two", alignment);
  w->alignment = alignment;
  return 0;
}

/* Registers a new key (unique, not general.alignment) and writes its string and type. */
static int begin_kv(lmn_gguf_writer *w, const char *key, uint32_t type, lmn_err *err) {
  if (strcmp(key, "general.alignment") == 0)
    return lmn_errf(err, "gguf writer: key 'general.alignment': use lmn_gguf_writer_set_alignment");
  for (size_t i = 0; i < w->n_keys; i++)
    if (strcmp(w->keys[i], key) == 0) return lmn_errf(err, "gguf writer: key '%s': duplicate key", key);
  char *k = strdup(key);
  if (!k || grow((void **)&w->keys, &w->cap_keys, w->n_keys, sizeof *w->keys) != 0) {
    free(k);
    return lmn_errf(err, "gguf writer: out of memory");
  }
  w->keys[w->n_keys++] = k;
  if (wb_str(&w->kv, key, strlen(key)) || wb_le(&w->kv, type, 4))
    return lmn_errf(err, "gguf writer: out of memory");
  return 0;
}

/* Appends one fixed-size value of type from the C value at v (copied bytewise: no aliasing). */
static int put_scalar(wbuf *b, uint32_t type, const void *v) {
  unsigned n = vtype_size(type);
  uint8_t x8;
  uint16_t x16;
  uint32_t x32;
  uint64_t x = 0;
  switch (n) {
    case 1: memcpy(&x8, v, 1), x = x8; break;
    case 2: memcpy(&x16, v, 2), x = x16; break;
    case 4: memcpy(&x32, v, 4), x = x32; break;
    default: memcpy(&x, v, 8); break;
  }
  return wb_le(b, x, n);
}

static int scalar_ok(uint32_t type, const void *v, const char *key, lmn_err *err) {
  if (type >= LMN_GGUF_VTYPE_COUNT || type == LMN_GGUF_STRING || type == LMN_GGUF_ARRAY)
    return lmn_errf(err, "gguf writer: key '%s': type %" PRIu32 " is not a scalar type", key, type);
  if (type == LMN_GGUF_BOOL && *(const uint8_t *)v > 1)
    return lmn_errf(err, "gguf writer: key '%s': bool value must be 0 or 1", key);
  return 0;
}

int lmn_gguf_writer_add_scalar(lmn_gguf_writer *w, const char *key, lmn_gguf_vtype type, const void *value,
                               lmn_err *err) {
  if (scalar_ok(type, value, key, err) != 0 || begin_kv(w, key, type, err) != 0) return -1;
  if (put_scalar(&w->kv, type, value) != 0) return lmn_errf(err, "gguf writer: out of memory");
  return 0;
}

int lmn_gguf_writer_add_u32(lmn_gguf_writer *w, const char *key, uint32_t v, lmn_err *err) {
  return lmn_gguf_writer_add_scalar(w, key, LMN_GGUF_UINT32, &v, err);
}

int lmn_gguf_writer_add_i32(lmn_gguf_writer *w, const char *key, int32_t v, lmn_err *err) {
  return lmn_gguf_writer_add_scalar(w, key, LMN_GGUF_INT32, &v, err);
}

int lmn_gguf_writer_add_u64(lmn_gguf_writer *w, const char *key, uint64_t v, lmn_err *err) {
  return lmn_gguf_writer_add_scalar(w, key, LMN_GGUF_UINT64, &v, err);
}

int lmn_gguf_writer_add_f32(lmn_gguf_writer *w, const char *key, float v, lmn_err *err) {
  return lmn_gguf_writer_add_scalar(w, key, LMN_GGUF_FLOAT32, &v, err);
}

int lmn_gguf_writer_add_bool(lmn_gguf_writer *w, const char *key, int v, lmn_err *err) {
  uint8_t b = v != 0;
  return lmn_gguf_writer_add_scalar(w, key, LMN_GGUF_BOOL, &b, err);
}

int lmn_gguf_writer_add_strn(lmn_gguf_writer *w, const char *key, const char *s, size_t len, lmn_err *err) {
  if (begin_kv(w, key, LMN_GGUF_STRING, err) != 0) return -1;
  if (wb_str(&w->kv, s, len) != 0) return lmn_errf(err, "gguf writer: out of memory");
  return 0;
}

int lmn_gguf_writer_add_str(lmn_gguf_writer *w, const char *key, const char *s, lmn_err *err) {
  return lmn_gguf_writer_add_strn(w, key, s, strlen(s), err);
}

int lmn_gguf_writer_add_arr(lmn_gguf_writer *w, const char *key, lmn_gguf_vtype elem_type, const void *values,
                            uint64_t n, lmn_err *err) {
  unsigned es = vtype_size(elem_type);
  if (es == 0)
    return lmn_errf(err, "gguf writer: key '%s': arrays of this type need lmn_gguf_writer_add_arr_str", key);
  for (uint64_t i = 0; i < n; i++)
    if (scalar_ok(elem_type, (const uint8_t *)values + i * es, key, err) != 0) return -1;
  if (begin_kv(w, key, LMN_GGUF_ARRAY, err) != 0) return -1;
  int rc = wb_le(&w->kv, elem_type, 4) | wb_le(&w->kv, n, 8);
  for (uint64_t i = 0; i < n && rc == 0; i++)
    rc = put_scalar(&w->kv, elem_type, (const uint8_t *)values + i * es);
  return rc ? lmn_errf(err, "gguf writer: out of memory") : 0;
}

int lmn_gguf_writer_add_arr_str(lmn_gguf_writer *w, const char *key, const char *const *strs, uint64_t n,
                                lmn_err *err) {
  if (begin_kv(w, key, LMN_GGUF_ARRAY, err) != 0) return -1;
  int rc = wb_le(&w->kv, LMN_GGUF_STRING, 4) | wb_le(&w->kv, n, 8);
  for (uint64_t i = 0; i < n && rc == 0; i++) rc = wb_str(&w->kv, strs[i], strlen(strs[i]));
  return rc ? lmn_errf(err, "gguf writer: out of memory") : 0;
}

/* Shape and type checks of a tensor to write; fills its byte size. */
static int wtensor_check(const lmn_gguf_writer *w, wtensor *t, lmn_err *err) {
  uint32_t blck = 1, bytes = 1;
  for (size_t i = 0; i < w->n_t; i++)
    if (strcmp(w->t[i].name, t->name) == 0)
      return lmn_errf(err, "gguf writer: tensor '%s': duplicate name", t->name);
  if (t->n_dims < 1 || t->n_dims > LMN_GGUF_MAX_DIMS)
    return lmn_errf(err, "gguf writer: tensor '%s': %" PRIu32 " dimensions (1..4)", t->name, t->n_dims);
  if (lmn_ggml_type_size(t->type, &blck, &bytes, err) != 0) return -1;
  uint64_t nel = 1;
  for (uint32_t j = 0; j < t->n_dims; j++) {
    if (t->ne[j] < 1 || nel > (uint64_t)INT64_MAX / (uint64_t)t->ne[j])
      return lmn_errf(err, "gguf writer: tensor '%s': invalid dimension %" PRId64, t->name, t->ne[j]);
    nel *= (uint64_t)t->ne[j];
  }
  if (t->ne[0] % blck != 0)
    return lmn_errf(err, "gguf writer: tensor '%s': ne[0] = %" PRId64 " is not a multiple of %" PRIu32,
                    t->name, t->ne[0], blck);
  if (nel / blck > UINT64_MAX / bytes) return lmn_errf(err, "gguf writer: tensor '%s': too large", t->name);
  t->nbytes = nel / blck * bytes;
  return 0;
}

int lmn_gguf_writer_add_tensor(lmn_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                               const int64_t *ne, const void *data, lmn_err *err) {
  wtensor t = {.type = type, .n_dims = n_dims, .data = data};
  if (strlen(name) >= LMN_GGUF_MAX_NAME)
    return lmn_errf(err, "gguf writer: tensor '%s': name longer than %d bytes", name, LMN_GGUF_MAX_NAME - 1);
  strcpy(t.name, name);
  for (int j = 0; j < LMN_GGUF_MAX_DIMS; j++) t.ne[j] = (uint32_t)j < n_dims && n_dims <= 4 ? ne[j] : 1;
  if (!data) return lmn_errf(err, "gguf writer: tensor '%s': no data", name);
  if (wtensor_check(w, &t, err) != 0) return -1;
  if (grow((void **)&w->t, &w->cap_t, w->n_t, sizeof *w->t) != 0)
    return lmn_errf(err, "gguf writer: out of memory");
  w->t[w->n_t++] = t;
  return 0;
}

int lmn_gguf_writer_add_tensor_f32(lmn_gguf_writer *w, const char *name, uint32_t n_dims, const int64_t *ne,
                                   const float *data, lmn_err *err) {
  return lmn_gguf_writer_add_tensor(w, name, LMN_GGML_F32, n_dims, ne, data, err);
}

static uint64_t align_up(uint64_t x, uint64_t a) { return x + (a - x % a) % a; }

/* Header: magic, version, counts, metadata, alignment key, tensor infos, padding. */
static int build_header(const lmn_gguf_writer *w, wbuf *h) {
  int custom = w->alignment != LMN_GGUF_DEFAULT_ALIGNMENT;
  int rc = wb_put(h, GGUF_MAGIC, 4) | wb_le(h, 3, 4) | wb_le(h, w->n_t, 8) | wb_le(h, w->n_keys + custom, 8);
  rc |= wb_put(h, w->kv.p, w->kv.len);
  if (custom) {
    const char *k = "general.alignment";
    rc |= wb_str(h, k, strlen(k)) | wb_le(h, LMN_GGUF_UINT32, 4) | wb_le(h, w->alignment, 4);
  }
  uint64_t off = 0;
  for (size_t i = 0; i < w->n_t && rc == 0; i++) {
    const wtensor *t = &w->t[i];
    rc |= wb_str(h, t->name, strlen(t->name)) | wb_le(h, t->n_dims, 4);
    for (uint32_t j = 0; j < t->n_dims; j++) rc |= wb_le(h, (uint64_t)t->ne[j], 8);
    rc |= wb_le(h, t->type, 4) | wb_le(h, off, 8);
    off += align_up(t->nbytes, w->alignment);
  }
  static const uint8_t zeros[8] = {0};
  while (rc == 0 && h->len % w->alignment != 0) rc = wb_put(h, zeros, 1);
  return rc ? -1 : 0;
}

static int emit_gguf(FILE *f, const void *ctx, lmn_err *err) {
  const lmn_gguf_writer *w = ctx;
  static const uint8_t zeros[256] = {0};
  wbuf h = {0};
  if (build_header(w, &h) != 0) {
    free(h.p);
    return lmn_errf(err, "gguf writer: out of memory");
  }
  int ok = fwrite(h.p, 1, h.len, f) == h.len;
  free(h.p);
  for (size_t i = 0; i < w->n_t && ok; i++) {
    const wtensor *t = &w->t[i];
    uint64_t pad = align_up(t->nbytes, w->alignment) - t->nbytes;
    ok = fwrite(t->data, 1, (size_t)t->nbytes, f) == t->nbytes;
    while (ok && pad > 0) {
      size_t n = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
      ok = fwrite(zeros, 1, n, f) == n;
      pad -= n;
    }
  }
  return ok ? 0 : lmn_errf(err, "gguf writer: write failed: %s", strerror(errno));
}

int lmn_gguf_writer_write(const lmn_gguf_writer *w, const char *path, lmn_err *err) {
  return lmn_write_atomic(path, emit_gguf, w, err);
}
