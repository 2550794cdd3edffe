/* safetensors.c: safetensors reader (strict JSON header parser without recursion, full validation of
 * dtypes, shapes and data_offsets against the file) and the atomic writer of f32 tensors + metadata. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dequant.h"
#include "gguf.h"
#include "lmn_file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lmnet's safetensors code assumes a little-endian host"
#endif

typedef struct meta_kv {
  char *key, *value;
} meta_kv;

struct lmn_st {
  char *name;
  const uint8_t *base; /* whole image (MMAP, READ, memory); NULL in META mode */
  uint64_t size;       /* file size */
  uint8_t *owned;      /* READ: the image; META: the header */
  void *map;
  int fd; /* META: open file for tensor reads; else -1 */
  uint64_t hdr_len, data_start, data_len;
  lmn_st_tensor *t;
  size_t n_t, cap_t;
  const lmn_st_tensor **t_sorted;
  meta_kv *meta;
  size_t n_meta, cap_meta;
  const meta_kv **meta_sorted;
};

/* ---------------------------------------------------------------- dtypes */

typedef struct dtype_info {
  const char *name;
  uint32_t size;
  lmn_st_dtype dtype;
} dtype_info;

static const dtype_info dtypes[] = {
    {"F32", 4, LMN_ST_F32},           {"F16", 2, LMN_ST_F16},           {"BF16", 2, LMN_ST_BF16},
    {"BOOL", 1, LMN_ST_OTHER},        {"U8", 1, LMN_ST_OTHER},          {"I8", 1, LMN_ST_OTHER},
    {"F8_E5M2", 1, LMN_ST_OTHER},     {"F8_E4M3", 1, LMN_ST_OTHER},     {"F8_E8M0", 1, LMN_ST_OTHER},
    {"F8_E4M3FNUZ", 1, LMN_ST_OTHER}, {"F8_E5M2FNUZ", 1, LMN_ST_OTHER}, {"I16", 2, LMN_ST_OTHER},
    {"U16", 2, LMN_ST_OTHER},         {"I32", 4, LMN_ST_OTHER},         {"U32", 4, LMN_ST_OTHER},
    {"F64", 8, LMN_ST_OTHER},         {"I64", 8, LMN_ST_OTHER},         {"U64", 8, LMN_ST_OTHER},
    {"C64", 8, LMN_ST_OTHER},
};

static const dtype_info *find_dtype(const char *name) {
  for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
    if (strcmp(dtypes[i].name, name) == 0) return &dtypes[i];
  return NULL;
}

/* Printable, bounded copy of a string from the file for messages. */
static const char *printable(char *buf, size_t cap, const char *s) {
  size_t n = 0, len = strlen(s), max = cap - 4;
  for (size_t i = 0; i < len && n < max; i++) buf[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  if (len > max) memcpy(buf + n, "...", 3), n += 3;
  buf[n] = 0;
  return buf;
}

static int grow(void **p, size_t *cap, size_t n, size_t elem) {
  if (n < *cap) return 0;
  size_t nc = *cap ? *cap * 2 : 8;
  if (nc > SIZE_MAX / elem) return -1;
  void *q = realloc(*p, nc * elem);
  if (!q) return -1;
  *p = q, *cap = nc;
  return 0;
}

/* ---------------------------------------------------------------- UTF-8 */

/* Length of the well-formed UTF-8 sequence at s (n bytes available), 0 when ill-formed. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  uint32_t cp, min;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0)
    len = 2, cp = c & 0x1f, min = 0x80;
  else if ((c & 0xf0) == 0xe0)
    len = 3, cp = c & 0x0f, min = 0x800;
  else if ((c & 0xf8) == 0xf0)
    len = 4, cp = c & 0x07, min = 0x10000;
  else
    return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

static int utf8_valid(const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0, l; i < n; i += l)
    if ((l = utf8_seq((const unsigned char *)s + i, n - i)) == 0) return 0;
  return 1;
}

static size_t utf8_put(char *out, uint32_t cp) {
  if (cp < 0x80) return out[0] = (char)cp, 1;
  if (cp < 0x800) return out[0] = (char)(0xc0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3f)), 2;
  if (cp < 0x10000) {
    out[0] = (char)(0xe0 | cp >> 12), out[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | cp >> 18), out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), out[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* ---------------------------------------------------------------- JSON header parser */

typedef struct jp {
  const lmn_st *st;
  const char *s; /* the header, n bytes, not NUL-terminated */
  size_t n, pos;
  lmn_err *err;
  const char *doc; /* a stand-alone JSON document (st NULL): its name in messages */
} jp;

static int jp_fail(jp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int jp_fail(jp *p, const char *fmt, ...) {
  char cause[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cause, sizeof cause, fmt, ap);
  va_end(ap);
  if (!p->st) return lmn_errf(p->err, "%s: JSON at offset %zu: %s", p->doc, p->pos, cause);
  return lmn_errf(p->err, "%s: header: JSON at offset %zu: %s", p->st->name, (size_t)8 + p->pos, cause);
}

static void jp_ws(jp *p) {
  while (p->pos < p->n &&
         (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
    p->pos++;
}

/* Skips whitespace, then requires character c. */
static int jp_expect(jp *p, char c) {
  jp_ws(p);
  if (p->pos >= p->n) return jp_fail(p, "expected '%c', found end of header", c);
  if (p->s[p->pos] != c) return jp_fail(p, "expected '%c'", c);
  p->pos++;
  return 0;
}

/* After a member: 1 when another follows (','), 0 at the closing c, -1 on error. */
static int jp_more(jp *p, char close) {
  jp_ws(p);
  if (p->pos < p->n && p->s[p->pos] == ',') return p->pos++, 1;
  if (p->pos < p->n && p->s[p->pos] == close) return p->pos++, 0;
  return jp_fail(p, "expected ',' or '%c'", close);
}

static int hex4(const char *s, uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return -1;
    v = v << 4 | (uint32_t)d;
  }
  *out = v;
  return 0;
}

/* \uXXXX (and a following low surrogate) at s[*i], *i just past the 'u'; end bounds the string. */
static int jp_unicode(jp *p, size_t *i, size_t end, uint32_t *cp) {
  if (end - *i < 4 || hex4(p->s + *i, cp) != 0) return jp_fail(p, "invalid \\u escape in string");
  *i += 4;
  if (*cp >= 0xdc00 && *cp <= 0xdfff) return jp_fail(p, "lone low surrogate in string");
  if (*cp < 0xd800 || *cp > 0xdbff) return 0;
  uint32_t lo;
  if (end - *i < 6 || p->s[*i] != '\\' || p->s[*i + 1] != 'u' || hex4(p->s + *i + 2, &lo) != 0 ||
      lo < 0xdc00 || lo > 0xdfff)
    return jp_fail(p, "high surrogate without low surrogate in string");
  *i += 6;
  *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
  return 0;
}

/* One escape at s[*i] (just past the backslash) into out; returns bytes written or -1. */
static int jp_escape(jp *p, size_t *i, size_t end, char *out) {
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  char e = p->s[(*i)++];
  const char *k = e ? strchr(from, e) : NULL;
  if (k) return out[0] = to[k - from], 1;
  if (e != 'u') return jp_fail(p, "invalid escape '\\%c' in string", e >= 0x20 && e < 0x7f ? e : '?');
  uint32_t cp;
  if (jp_unicode(p, i, end, &cp) != 0) return -1;
  return (int)utf8_put(out, cp);
}

/* Decodes the string body s[start, end) into buf (which has end - start + 1 bytes). */
static int jp_decode(jp *p, size_t start, size_t end, char *buf, size_t *len) {
  size_t k = 0;
  for (size_t i = start; i < end;) {
    unsigned char c = (unsigned char)p->s[i];
    if (c < 0x20) {
      p->pos = i;
      return jp_fail(p, "control character 0x%02x in string", c);
    }
    if (c == '\\') {
      i++;
      int w = jp_escape(p, &i, end, buf + k);
      if (w < 0) return -1;
      k += (size_t)w;
      continue;
    }
    size_t l = utf8_seq((const unsigned char *)p->s + i, end - i);
    if (l == 0) {
      p->pos = i;
      return jp_fail(p, "invalid UTF-8 in string");
    }
    memcpy(buf + k, p->s + i, l);
    k += l, i += l;
  }
  buf[k] = 0;
  *len = k;
  return 0;
}

/* A JSON string, decoded into a new NUL-terminated buffer (*len bytes, NULs possible). */
static int jp_string(jp *p, char **out, size_t *len) {
  *out = NULL;
  jp_ws(p);
  if (p->pos >= p->n || p->s[p->pos] != '"') return jp_fail(p, "expected a string");
  size_t start = p->pos + 1, end = start;
  while (end < p->n && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
  if (end >= p->n) return jp_fail(p, "unterminated string");
  char *buf = malloc(end - start + 1);
  if (!buf) return jp_fail(p, "out of memory");
  if (jp_decode(p, start, end, buf, len) != 0) {
    free(buf);
    return -1;
  }
  p->pos = end + 1;
  *out = buf;
  return 0;
}

/* A string that must not contain NUL bytes (names, keys, values). */
static int jp_cstring(jp *p, char **out) {
  size_t len = 0;
  if (jp_string(p, out, &len) != 0) return -1;
  if (strlen(*out) != len) {
    free(*out);
    *out = NULL;
    return jp_fail(p, "string contains a NUL character");
  }
  return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* A non-negative integer without fraction or exponent, fitting in uint64. */
static int jp_uint(jp *p, uint64_t *out) {
  jp_ws(p);
  size_t i = p->pos;
  if (i >= p->n || !is_digit(p->s[i])) return jp_fail(p, "expected a non-negative integer");
  if (p->s[i] == '0' && i + 1 < p->n && is_digit(p->s[i + 1]))
    return jp_fail(p, "number with a leading zero");
  uint64_t v = 0;
  for (; i < p->n && is_digit(p->s[i]); i++) {
    unsigned d = (unsigned)(p->s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return jp_fail(p, "integer too large");
    v = v * 10 + d;
  }
  if (i < p->n && (p->s[i] == '.' || p->s[i] == 'e' || p->s[i] == 'E'))
    return jp_fail(p, "expected an integer");
  p->pos = i;
  *out = v;
  return 0;
}

/* [u, u, ...] with at most max elements. */
static int jp_uint_array(jp *p, uint64_t *v, uint32_t max, uint32_t *n, const char *what) {
  *n = 0;
  if (jp_expect(p, '[') != 0) return -1;
  jp_ws(p);
  if (p->pos < p->n && p->s[p->pos] == ']') return p->pos++, 0;
  for (int more = 1; more == 1;) {
    if (*n == max) return jp_fail(p, "%s has more than %" PRIu32 " elements", what, max);
    if (jp_uint(p, &v[(*n)++]) != 0) return -1;
    if ((more = jp_more(p, ']')) < 0) return -1;
  }
  return 0;
}

enum { F_DTYPE = 1, F_SHAPE = 2, F_OFFSETS = 4 };

static int jp_tensor_field(jp *p, lmn_st_tensor *t, const char *field, int *seen) {
  int f = !strcmp(field, "dtype")          ? F_DTYPE
          : !strcmp(field, "shape")        ? F_SHAPE
          : !strcmp(field, "data_offsets") ? F_OFFSETS
                                           : 0;
  char pf[64];
  if (!f) return jp_fail(p, "tensor '%s': unknown field '%s'", t->name, printable(pf, sizeof pf, field));
  if (*seen & f) return jp_fail(p, "tensor '%s': duplicate field '%s'", t->name, field);
  *seen |= f;
  if (jp_expect(p, ':') != 0) return -1;
  if (f == F_DTYPE) {
    char *d;
    if (jp_cstring(p, &d) != 0) return -1;
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", d);
    int too_long = strlen(d) >= sizeof t->dtype_name;
    free(d);
    return too_long ? jp_fail(p, "tensor '%s': unknown dtype", t->name) : 0;
  }
  uint64_t v[LMN_ST_MAX_DIMS];
  uint32_t n;
  if (f == F_SHAPE) {
    if (jp_uint_array(p, v, LMN_ST_MAX_DIMS, &n, "shape") != 0) return -1;
    t->n_dims = n;
    for (uint32_t j = 0; j < n; j++) {
      if (v[j] > INT64_MAX) return jp_fail(p, "tensor '%s': dimension %" PRIu64 " too large", t->name, v[j]);
      t->shape[j] = (int64_t)v[j];
    }
    return 0;
  }
  if (jp_uint_array(p, v, 2, &n, "data_offsets") != 0) return -1;
  if (n != 2) return jp_fail(p, "tensor '%s': data_offsets needs 2 elements", t->name);
  t->begin = v[0], t->end = v[1];
  return 0;
}

static int jp_tensor(jp *p, lmn_st_tensor *t) {
  int seen = 0;
  if (jp_expect(p, '{') != 0) return -1;
  jp_ws(p);
  if (p->pos < p->n && p->s[p->pos] == '}')
    p->pos++;
  else
    for (int more = 1; more == 1;) {
      char *field;
      if (jp_cstring(p, &field) != 0) return -1;
      int rc = jp_tensor_field(p, t, field, &seen);
      free(field);
      if (rc != 0 || (more = jp_more(p, '}')) < 0) return -1;
    }
  const char *missing = !(seen & F_DTYPE)     ? "dtype"
                        : !(seen & F_SHAPE)   ? "shape"
                        : !(seen & F_OFFSETS) ? "data_offsets"
                                              : NULL;
  if (missing) return jp_fail(p, "tensor '%s': missing field '%s'", t->name, missing);
  return 0;
}

static int jp_meta_entry(jp *p, lmn_st *st) {
  char *k, *v = NULL;
  if (jp_cstring(p, &k) != 0) return -1;
  if (jp_expect(p, ':') != 0) goto fail;
  jp_ws(p);
  if (p->pos < p->n && p->s[p->pos] != '"') {
    char pk[64];
    jp_fail(p, "__metadata__ value of '%s' is not a string", printable(pk, sizeof pk, k));
    goto fail;
  }
  if (jp_cstring(p, &v) != 0) goto fail;
  if (grow((void **)&st->meta, &st->cap_meta, st->n_meta, sizeof *st->meta) != 0) {
    jp_fail(p, "out of memory");
    goto fail;
  }
  st->meta[st->n_meta].key = k, st->meta[st->n_meta].value = v;
  st->n_meta++;
  return 0;
fail:
  free(k);
  free(v);
  return -1;
}

static int jp_metadata(jp *p, lmn_st *st) {
  if (jp_expect(p, '{') != 0) return -1;
  jp_ws(p);
  if (p->pos < p->n && p->s[p->pos] == '}') return p->pos++, 0;
  for (int more = 1; more == 1;) {
    if (jp_meta_entry(p, st) != 0 || (more = jp_more(p, '}')) < 0) return -1;
  }
  return 0;
}

/* One top-level member: "__metadata__" or a tensor. */
static int jp_member(jp *p, lmn_st *st, int *seen_meta) {
  char *key;
  if (jp_cstring(p, &key) != 0) return -1;
  if (jp_expect(p, ':') != 0) {
    free(key);
    return -1;
  }
  if (strcmp(key, "__metadata__") == 0) {
    free(key);
    if ((*seen_meta)++) return jp_fail(p, "duplicate key '__metadata__'");
    return jp_metadata(p, st);
  }
  if (grow((void **)&st->t, &st->cap_t, st->n_t, sizeof *st->t) != 0) {
    free(key);
    return jp_fail(p, "out of memory");
  }
  lmn_st_tensor *t = &st->t[st->n_t++];
  memset(t, 0, sizeof *t);
  t->name = key;
  return jp_tensor(p, t);
}

static int jp_header(jp *p, lmn_st *st) {
  int seen_meta = 0;
  if (p->n == 0 || p->s[0] != '{') return jp_fail(p, "header must start with '{'");
  p->pos = 1;
  jp_ws(p);
  if (p->pos < p->n && p->s[p->pos] == '}')
    p->pos++;
  else
    for (int more = 1; more == 1;)
      if (jp_member(p, st, &seen_meta) != 0 || (more = jp_more(p, '}')) < 0) return -1;
  jp_ws(p);
  if (p->pos != p->n) return jp_fail(p, "unexpected data after the header object");
  return 0;
}

/* ---------------------------------------------------------------- validation */

static int check_tensor(const lmn_st *st, lmn_st_tensor *t, lmn_err *err) {
  char pn[100], pd[40];
  const char *name = printable(pn, sizeof pn, t->name);
  const dtype_info *d = find_dtype(t->dtype_name);
  if (!d)
    return lmn_errf(err, "%s: tensor '%s': unsupported dtype '%s'", st->name, name,
                    printable(pd, sizeof pd, t->dtype_name));
  t->dtype = d->dtype, t->elem_size = d->size;
  uint64_t nel = 1;
  for (uint32_t j = 0; j < t->n_dims; j++) {
    if (t->shape[j] != 0 && nel > (uint64_t)INT64_MAX / (uint64_t)t->shape[j])
      return lmn_errf(err, "%s: tensor '%s': element count overflows", st->name, name);
    nel *= (uint64_t)t->shape[j];
  }
  t->nelems = (int64_t)nel;
  if (nel > UINT64_MAX / d->size)
    return lmn_errf(err, "%s: tensor '%s': byte size overflows", st->name, name);
  if (t->end < t->begin)
    return lmn_errf(err, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin",
                    st->name, name, t->begin, t->end);
  if (t->end - t->begin != nel * d->size)
    return lmn_errf(err,
                    "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] span %" PRIu64
                    " bytes but %" PRIu64 " %s values need %" PRIu64,
                    st->name, name, t->begin, t->end, t->end - t->begin, nel, d->name, nel * d->size);
  if (t->end > st->data_len)
    return lmn_errf(err,
                    "%s: tensor '%s': data [offset %" PRIu64 ", %" PRIu64
                    " bytes] extends past end of file (size %" PRIu64 ")",
                    st->name, name, st->data_start + t->begin, t->end - t->begin, st->size);
  return 0;
}

static int cmp_by_begin(const void *a, const void *b) {
  const lmn_st_tensor *x = *(const lmn_st_tensor *const *)a, *y = *(const lmn_st_tensor *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x < y ? -1 : x > y;
}

/* The tensors must tile the data buffer exactly: no overlaps, no holes, nothing after the last. */
static int check_layout(const lmn_st *st, const lmn_st_tensor **by, lmn_err *err) {
  char pa[100], pb[100];
  uint64_t at = 0;
  for (size_t i = 0; i < st->n_t; i++) {
    const lmn_st_tensor *t = by[i];
    if (t->begin < at)
      return lmn_errf(err, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor '%s'",
                      st->name, printable(pa, sizeof pa, t->name), t->begin, t->end,
                      printable(pb, sizeof pb, by[i - 1]->name));
    if (t->begin > at)
      return lmn_errf(err,
                      "%s: tensor '%s': hole in the data buffer: bytes [%" PRIu64 ", %" PRIu64
                      ") belong to no tensor",
                      st->name, printable(pa, sizeof pa, t->name), at, t->begin);
    at = t->end;
  }
  if (at != st->data_len)
    return lmn_errf(err,
                    "%s: %" PRIu64 " bytes after the last tensor's data (data buffer of %" PRIu64 " bytes)",
                    st->name, st->data_len - at, st->data_len);
  return 0;
}

static int cmp_tensor_name(const void *a, const void *b) {
  const lmn_st_tensor *x = *(const lmn_st_tensor *const *)a, *y = *(const lmn_st_tensor *const *)b;
  return strcmp(x->name, y->name);
}

static int cmp_meta_key(const void *a, const void *b) {
  return strcmp((*(const meta_kv *const *)a)->key, (*(const meta_kv *const *)b)->key);
}

static int index_all(lmn_st *st, lmn_err *err) {
  char pn[100];
  st->t_sorted = malloc((st->n_t ? st->n_t : 1) * sizeof *st->t_sorted);
  st->meta_sorted = malloc((st->n_meta ? st->n_meta : 1) * sizeof *st->meta_sorted);
  if (!st->t_sorted || !st->meta_sorted) return lmn_errf(err, "%s: out of memory", st->name);
  for (size_t i = 0; i < st->n_t; i++) st->t_sorted[i] = &st->t[i];
  for (size_t i = 0; i < st->n_meta; i++) st->meta_sorted[i] = &st->meta[i];
  qsort(st->meta_sorted, st->n_meta, sizeof *st->meta_sorted, cmp_meta_key);
  for (size_t i = 1; i < st->n_meta; i++)
    if (strcmp(st->meta_sorted[i - 1]->key, st->meta_sorted[i]->key) == 0)
      return lmn_errf(err, "%s: __metadata__: duplicate key '%s'", st->name,
                      printable(pn, sizeof pn, st->meta_sorted[i]->key));
  qsort(st->t_sorted, st->n_t, sizeof *st->t_sorted, cmp_by_begin);
  if (check_layout(st, st->t_sorted, err) != 0) return -1;
  qsort(st->t_sorted, st->n_t, sizeof *st->t_sorted, cmp_tensor_name);
  for (size_t i = 1; i < st->n_t; i++)
    if (strcmp(st->t_sorted[i - 1]->name, st->t_sorted[i]->name) == 0)
      return lmn_errf(err, "%s: tensor '%s': duplicate tensor name", st->name,
                      printable(pn, sizeof pn, st->t_sorted[i]->name));
  return 0;
}

/* hdr: the hdr_len JSON bytes. */
static int parse(lmn_st *st, const char *hdr, lmn_err *err) {
  jp p = {.st = st, .s = hdr, .n = (size_t)st->hdr_len, .pos = 0, .err = err};
  if (jp_header(&p, st) != 0) return -1;
  for (size_t i = 0; i < st->n_t; i++)
    if (check_tensor(st, &st->t[i], err) != 0) return -1;
  return index_all(st, err);
}

/* The 8-byte header length, checked against the file size; sets hdr_len, data_start, data_len. */
static int read_prefix(lmn_st *st, const uint8_t *p8, lmn_err *err) {
  if (st->size < 8)
    return lmn_errf(err, "%s: header length [offset 0, 8 bytes] extends past end of file (size %" PRIu64 ")",
                    st->name, st->size);
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= (uint64_t)p8[i] << (8 * i);
  if (n > st->size - 8)
    return lmn_errf(err,
                    "%s: header [offset 8, %" PRIu64 " bytes] extends past end of file (size %" PRIu64 ")",
                    st->name, n, st->size);
  if (n > LMN_ST_MAX_HEADER)
    return lmn_errf(err, "%s: header of %" PRIu64 " bytes exceeds the limit of %u", st->name, n,
                    LMN_ST_MAX_HEADER);
  st->hdr_len = n, st->data_start = 8 + n, st->data_len = st->size - 8 - n;
  return 0;
}

/* ---------------------------------------------------------------- open / close */

void lmn_st_close(lmn_st *st) {
  if (!st) return;
  for (size_t i = 0; i < st->n_t; i++) free((void *)st->t[i].name);
  for (size_t i = 0; i < st->n_meta; i++) free(st->meta[i].key), free(st->meta[i].value);
  free(st->t);
  free(st->t_sorted);
  free(st->meta);
  free(st->meta_sorted);
  free(st->owned);
  if (st->map) munmap(st->map, (size_t)st->size);
  if (st->fd >= 0) close(st->fd);
  free(st->name);
  free(st);
}

static lmn_st *st_new(const char *name, lmn_err *err) {
  lmn_st *st = calloc(1, sizeof *st);
  if (st) st->name = strdup(name ? name : "(memory)");
  if (!st || !st->name) {
    free(st);
    lmn_errf(err, "%s: out of memory", name ? name : "(memory)");
    return NULL;
  }
  st->fd = -1;
  return st;
}

static int finish(lmn_st *st, const char *hdr, lmn_st **out, lmn_err *err) {
  if (parse(st, hdr, err) != 0) {
    lmn_st_close(st);
    return -1;
  }
  *out = st;
  return 0;
}

int lmn_st_open_mem(const void *data, size_t size, const char *name, lmn_st **out, lmn_err *err) {
  *out = NULL;
  lmn_st *st = st_new(name, err);
  if (!st) return -1;
  st->base = data;
  st->size = size;
  if (read_prefix(st, st->base, err) != 0) {
    lmn_st_close(st);
    return -1;
  }
  return finish(st, (const char *)st->base + 8, out, err);
}

static int pread_all(int fd, void *dst, uint64_t len, uint64_t off) {
  uint8_t *d = dst;
  while (len > 0) {
    ssize_t got = pread(fd, d, len > (1u << 30) ? (1u << 30) : (size_t)len, (off_t)off);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    d += got, off += (uint64_t)got, len -= (uint64_t)got;
  }
  return 0;
}

static int read_failed(const lmn_st *st, lmn_err *err) {
  return lmn_errf(err, "%s: read failed: %s", st->name, errno ? strerror(errno) : "file shrank");
}

/* META: reads the prefix and the header only; keeps fd. */
static int load_meta(lmn_st *st, int fd, lmn_err *err) {
  uint8_t p8[8] = {0};
  st->fd = fd;
  errno = 0;
  if (st->size >= 8 && pread_all(fd, p8, 8, 0) != 0) return read_failed(st, err);
  if (read_prefix(st, p8, err) != 0) return -1;
  st->owned = malloc(st->hdr_len ? (size_t)st->hdr_len : 1);
  if (!st->owned) return lmn_errf(err, "%s: out of memory", st->name);
  if (pread_all(fd, st->owned, st->hdr_len, 8) != 0) return read_failed(st, err);
  return 0;
}

/* MMAP / READ: the whole image. */
static int load_all(lmn_st *st, int fd, lmn_st_mode mode, lmn_err *err) {
  if (st->size > SIZE_MAX) return lmn_errf(err, "%s: file too large", st->name);
  if (st->size > 0 && mode == LMN_ST_MMAP) {
    void *m = mmap(NULL, (size_t)st->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) return lmn_errf(err, "%s: mmap failed: %s", st->name, strerror(errno));
    st->map = m, st->base = m;
  } else if (st->size > 0) {
    st->owned = malloc((size_t)st->size);
    if (!st->owned) return lmn_errf(err, "%s: out of memory", st->name);
    st->base = st->owned;
    errno = 0;
    if (pread_all(fd, st->owned, st->size, 0) != 0) return read_failed(st, err);
  }
  return read_prefix(st, st->base, err);
}

int lmn_st_open(const char *path, lmn_st_mode mode, lmn_st **out, lmn_err *err) {
  *out = NULL;
  if (mode != LMN_ST_MMAP && mode != LMN_ST_READ && mode != LMN_ST_META)
    return lmn_errf(err, "%s: invalid open mode %d", path, (int)mode);
  lmn_st *st = st_new(path, err);
  if (!st) return -1;
  off_t size = 0;
  int fd = lmn_open_regular(path, &size, err), rc = -1;
  if (fd >= 0) {
    st->size = (uint64_t)size;
    rc = mode == LMN_ST_META ? load_meta(st, fd, err) : load_all(st, fd, mode, err);
    if (mode != LMN_ST_META) close(fd);
  }
  if (rc != 0) {
    lmn_st_close(st);
    return -1;
  }
  return finish(st, mode == LMN_ST_META ? (const char *)st->owned : (const char *)st->base + 8, out, err);
}

/* ---------------------------------------------------------------- accessors */

const char *lmn_st_name(const lmn_st *st) { return st->name; }
uint64_t lmn_st_data_start(const lmn_st *st) { return st->data_start; }
size_t lmn_st_n_tensors(const lmn_st *st) { return st->n_t; }
size_t lmn_st_n_meta(const lmn_st *st) { return st->n_meta; }

const lmn_st_tensor *lmn_st_tensor_at(const lmn_st *st, size_t i) { return i < st->n_t ? &st->t[i] : NULL; }

int lmn_st_meta_at(const lmn_st *st, size_t i, const char **key, const char **value) {
  if (i >= st->n_meta) return -1;
  *key = st->meta[i].key, *value = st->meta[i].value;
  return 0;
}

static int cmp_find_tensor(const void *name, const void *elem) {
  return strcmp((const char *)name, (*(const lmn_st_tensor *const *)elem)->name);
}

static int cmp_find_meta(const void *key, const void *elem) {
  return strcmp((const char *)key, (*(const meta_kv *const *)elem)->key);
}

const lmn_st_tensor *lmn_st_find(const lmn_st *st, const char *name) {
  const lmn_st_tensor *const *p = bsearch(name, st->t_sorted, st->n_t, sizeof *st->t_sorted, cmp_find_tensor);
  return p ? *p : NULL;
}

const char *lmn_st_meta(const lmn_st *st, const char *key) {
  const meta_kv *const *p = bsearch(key, st->meta_sorted, st->n_meta, sizeof *st->meta_sorted, cmp_find_meta);
  return p ? (*p)->value : NULL;
}

const void *lmn_st_tensor_data(const lmn_st *st, const lmn_st_tensor *t, lmn_err *err) {
  if (!st->base) {
    lmn_errf(err, "%s: tensor '%s': file was opened for metadata only", st->name, t->name);
    return NULL;
  }
  return st->base + st->data_start + t->begin;
}

int lmn_st_tensor_read(const lmn_st *st, const lmn_st_tensor *t, uint64_t off, void *dst, uint64_t len,
                       lmn_err *err) {
  uint64_t nbytes = t->end - t->begin;
  if (off > nbytes || len > nbytes - off)
    return lmn_errf(err, "%s: tensor '%s': bytes [%" PRIu64 ", +%" PRIu64 ") outside its %" PRIu64 " bytes",
                    st->name, t->name, off, len, nbytes);
  uint64_t at = st->data_start + t->begin + off;
  if (st->base) {
    if (len) memcpy(dst, st->base + at, (size_t)len);
    return 0;
  }
  errno = 0;
  if (pread_all(st->fd, dst, len, at) != 0) return read_failed(st, err);
  return 0;
}

static void convert(lmn_st_dtype dt, const uint8_t *src, float *dst, size_t n) {
  if (dt == LMN_ST_F32) {
    memcpy(dst, src, n * 4);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    uint16_t h = (uint16_t)(src[2 * i] | src[2 * i + 1] << 8);
    dst[i] = dt == LMN_ST_F16 ? lmn_fp16_to_f32(h) : lmn_bf16_to_f32(h);
  }
}

static int check_load(const lmn_st *st, const lmn_st_tensor *t, uint32_t n_dims, const int64_t *shape,
                      lmn_err *err) {
  int same = t->n_dims == n_dims;
  for (uint32_t j = 0; same && j < n_dims; j++) same = t->shape[j] == shape[j];
  if (!same) {
    char have[160], want[160];
    size_t k = 0, l = 0;
    have[0] = want[0] = 0;
    for (uint32_t j = 0; j < t->n_dims && k < sizeof have; j++)
      k += (size_t)snprintf(have + k, sizeof have - k, "%s%" PRId64, j ? ", " : "", t->shape[j]);
    for (uint32_t j = 0; j < n_dims && j < LMN_ST_MAX_DIMS && l < sizeof want; j++)
      l += (size_t)snprintf(want + l, sizeof want - l, "%s%" PRId64, j ? ", " : "", shape[j]);
    return lmn_errf(err, "%s: tensor '%s': shape [%s], expected [%s]", st->name, t->name, have, want);
  }
  if (t->dtype == LMN_ST_OTHER)
    return lmn_errf(err, "%s: tensor '%s': dtype %s cannot be loaded as f32", st->name, t->name,
                    t->dtype_name);
  return 0;
}

int lmn_st_load_f32(const lmn_st *st, const char *name, uint32_t n_dims, const int64_t *shape, float *dst,
                    lmn_err *err) {
  const lmn_st_tensor *t = lmn_st_find(st, name);
  if (!t) return lmn_errf(err, "%s: tensor '%s' not found", st->name, name);
  if (check_load(st, t, n_dims, shape, err) != 0) return -1;
  enum { CHUNK = 16384 };
  uint8_t buf[CHUNK * 4];
  for (uint64_t i = 0; i < (uint64_t)t->nelems; i += CHUNK) {
    size_t n = (uint64_t)t->nelems - i < CHUNK ? (size_t)((uint64_t)t->nelems - i) : CHUNK;
    if (lmn_st_tensor_read(st, t, i * t->elem_size, buf, n * t->elem_size, err) != 0) return -1;
    convert(t->dtype, buf, dst + i, n);
  }
  return 0;
}

/* ---------------------------------------------------------------- writer */

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t nc = (b->len + n + 1) * 2;
    char *q = realloc(b->p, nc);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q, b->cap = nc;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *b, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal (UTF-8 passes through; quote, backslash and control characters escaped). */
static void sb_json_str(sbuf *b, const char *s) {
  sb_put(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      sb_put(b, "\\", 1), sb_put(b, s, 1);
    else if (c < 0x20)
      sb_fmt(b, "\\u%04x", c);
    else
      sb_put(b, s, 1);
  }
  sb_put(b, "\"", 1);
}

typedef struct st_wt {
  char *name;
  uint32_t n_dims;
  int64_t shape[LMN_ST_MAX_DIMS];
  const float *data;
  uint64_t nbytes;
} st_wt;

struct lmn_st_writer {
  st_wt *t;
  size_t n_t, cap_t;
  meta_kv *meta;
  size_t n_meta, cap_meta;
};

int lmn_st_writer_new(lmn_st_writer **out, lmn_err *err) {
  *out = calloc(1, sizeof **out);
  return *out ? 0 : lmn_errf(err, "safetensors writer: out of memory");
}

void lmn_st_writer_free(lmn_st_writer *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
  for (size_t i = 0; i < w->n_meta; i++) free(w->meta[i].key), free(w->meta[i].value);
  free(w->t);
  free(w->meta);
  free(w);
}

int lmn_st_writer_add_meta(lmn_st_writer *w, const char *key, const char *value, lmn_err *err) {
  if (!utf8_valid(key) || !utf8_valid(value))
    return lmn_errf(err, "safetensors writer: metadata '%s': not valid UTF-8", key);
  for (size_t i = 0; i < w->n_meta; i++)
    if (strcmp(w->meta[i].key, key) == 0)
      return lmn_errf(err, "safetensors writer: metadata '%s': duplicate key", key);
  char *k = strdup(key), *v = strdup(value);
  if (!k || !v || grow((void **)&w->meta, &w->cap_meta, w->n_meta, sizeof *w->meta) != 0) {
    free(k), free(v);
    return lmn_errf(err, "safetensors writer: out of memory");
  }
  w->meta[w->n_meta].key = k, w->meta[w->n_meta].value = v;
  w->n_meta++;
  return 0;
}

int lmn_st_writer_add_f32(lmn_st_writer *w, const char *name, uint32_t n_dims, const int64_t *shape,
                          const float *data, lmn_err *err) {
  if (!utf8_valid(name) || strcmp(name, "__metadata__") == 0)
    return lmn_errf(err, "safetensors writer: tensor '%s': invalid name", name);
  for (size_t i = 0; i < w->n_t; i++)
    if (strcmp(w->t[i].name, name) == 0)
      return lmn_errf(err, "safetensors writer: tensor '%s': duplicate name", name);
  if (n_dims > LMN_ST_MAX_DIMS)
    return lmn_errf(err, "safetensors writer: tensor '%s': %" PRIu32 " dimensions (at most %d)", name, n_dims,
                    LMN_ST_MAX_DIMS);
  st_wt t = {.n_dims = n_dims, .data = data};
  uint64_t nel = 1;
  for (uint32_t j = 0; j < n_dims; j++) {
    if (shape[j] < 0 || (shape[j] > 0 && nel > (uint64_t)(INT64_MAX / 4) / (uint64_t)shape[j]))
      return lmn_errf(err, "safetensors writer: tensor '%s': invalid dimension %" PRId64, name, shape[j]);
    nel *= (uint64_t)shape[j];
    t.shape[j] = shape[j];
  }
  if (nel > 0 && !data) return lmn_errf(err, "safetensors writer: tensor '%s': no data", name);
  t.nbytes = nel * 4;
  t.name = strdup(name);
  if (!t.name || grow((void **)&w->t, &w->cap_t, w->n_t, sizeof *w->t) != 0) {
    free(t.name);
    return lmn_errf(err, "safetensors writer: out of memory");
  }
  w->t[w->n_t++] = t;
  return 0;
}

/* The JSON header, padded with spaces so that the data buffer starts 8-aligned. */
static int build_json(const lmn_st_writer *w, sbuf *b) {
  sb_put(b, "{", 1);
  if (w->n_meta) {
    sb_put(b, "\"__metadata__\":{", 16);
    for (size_t i = 0; i < w->n_meta; i++) {
      if (i) sb_put(b, ",", 1);
      sb_json_str(b, w->meta[i].key);
      sb_put(b, ":", 1);
      sb_json_str(b, w->meta[i].value);
    }
    sb_put(b, "}", 1);
  }
  uint64_t off = 0;
  for (size_t i = 0; i < w->n_t; i++) {
    const st_wt *t = &w->t[i];
    if (i || w->n_meta) sb_put(b, ",", 1);
    sb_json_str(b, t->name);
    sb_put(b, ":{\"dtype\":\"F32\",\"shape\":[", 25);
    for (uint32_t j = 0; j < t->n_dims; j++) sb_fmt(b, "%s%" PRId64, j ? "," : "", t->shape[j]);
    sb_fmt(b, "],\"data_offsets\":[%" PRIu64 ",", off);
    sb_fmt(b, "%" PRIu64 "]}", off + t->nbytes);
    off += t->nbytes;
  }
  sb_put(b, "}", 1);
  while (!b->oom && (8 + b->len) % 8 != 0) sb_put(b, " ", 1);
  return b->oom ? -1 : 0;
}

static int emit_st(FILE *f, const void *ctx, lmn_err *err) {
  const lmn_st_writer *w = ctx;
  sbuf b = {0};
  if (build_json(w, &b) != 0) {
    free(b.p);
    return lmn_errf(err, "safetensors writer: out of memory");
  }
  uint8_t n8[8];
  for (int i = 0; i < 8; i++) n8[i] = (uint8_t)((uint64_t)b.len >> (8 * i));
  int ok = fwrite(n8, 1, 8, f) == 8 && fwrite(b.p, 1, b.len, f) == b.len;
  free(b.p);
  for (size_t i = 0; i < w->n_t && ok; i++)
    if (w->t[i].nbytes) ok = fwrite(w->t[i].data, 1, (size_t)w->t[i].nbytes, f) == w->t[i].nbytes;
  return ok ? 0 : lmn_errf(err, "safetensors writer: write failed: %s", strerror(errno));
}

int lmn_st_writer_write(const lmn_st_writer *w, const char *path, lmn_err *err) {
  return lmn_write_atomic(path, emit_st, w, err);
}

/* ---------------------------------------------------------------- JSON documents (config.json) */

#define LMN_JSON_MAX_DEPTH 64
#define LMN_JSON_MAX_FILE (64u << 20)

struct lmn_json {
  lmn_json_value root; /* the top-level object */
};

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? as a finite double; *is_int when no fraction/exponent. */
static int jp_number(jp *p, double *out, int *is_int) {
  size_t i = p->pos, n = p->n;
  const char *s = p->s;
  if (i < n && s[i] == '-') i++;
  if (i >= n || !is_digit(s[i])) return jp_fail(p, "expected a value");
  if (s[i] == '0' && i + 1 < n && is_digit(s[i + 1])) return jp_fail(p, "number with a leading zero");
  while (i < n && is_digit(s[i])) i++;
  *is_int = 1;
  if (i < n && s[i] == '.') {
    *is_int = 0;
    if (++i >= n || !is_digit(s[i])) return jp_fail(p, "digit expected after '.'");
    while (i < n && is_digit(s[i])) i++;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    *is_int = 0;
    if (++i < n && (s[i] == '+' || s[i] == '-')) i++;
    if (i >= n || !is_digit(s[i])) return jp_fail(p, "digit expected in exponent");
    while (i < n && is_digit(s[i])) i++;
  }
  char buf[80];
  if (i - p->pos >= sizeof buf) return jp_fail(p, "number too long");
  memcpy(buf, s + p->pos, i - p->pos);
  buf[i - p->pos] = 0;
  char *end;
  *out = strtod(buf, &end);
  if (*end || *out != *out || *out > 1.7976931348623157e308 || *out < -1.7976931348623157e308)
    return jp_fail(p, "number out of range");
  p->pos = i;
  return 0;
}

/* true, false or null at the current position. */
static int jp_literal(jp *p, lmn_json_value *v) {
  static const char *const words[] = {"null", "true", "false"};
  for (int w = 0; w < 3; w++) {
    size_t l = strlen(words[w]);
    if (p->n - p->pos >= l && memcmp(p->s + p->pos, words[w], l) == 0) {
      p->pos += l;
      v->kind = w == 0 ? LMN_JSON_NULL : LMN_JSON_BOOL;
      v->boolean = w == 1;
      return 0;
    }
  }
  return jp_fail(p, "expected a value");
}

/* A string, number, true, false or null into v (v->str allocated for strings). */
static int jp_scalar(jp *p, lmn_json_value *v) {
  jp_ws(p);
  if (p->pos >= p->n) return jp_fail(p, "expected a value, found end of document");
  char c = p->s[p->pos];
  if (c == '"') {
    v->kind = LMN_JSON_STRING;
    return jp_cstring(p, (char **)&v->str);
  }
  if (c == '-' || is_digit(c)) {
    v->kind = LMN_JSON_NUMBER;
    return jp_number(p, &v->num, &v->is_int);
  }
  return jp_literal(p, v);
}

/* Frees what v owns (its key, string and items; the depth of a tree is at most LMN_JSON_MAX_DEPTH). */
static void json_value_free(lmn_json_value *v) {
  free((char *)v->key);
  free((char *)v->str);
  for (size_t i = 0; i < v->n; i++) json_value_free((lmn_json_value *)&v->items[i]);
  free((void *)v->items);
}

/* An object or array being read: its items so far. */
typedef struct jt_frame {
  lmn_json_value *items;
  size_t n, cap;
  char close; /* ']' or '}' */
} jt_frame;

static int key_cmp(const void *a, const void *b) {
  return strcmp((*(const lmn_json_value *const *)a)->key, (*(const lmn_json_value *const *)b)->key);
}

/* A duplicate key among the members of an object (sorted copies of their addresses, n log n). */
static int jt_duplicates(jp *p, const jt_frame *f) {
  if (f->close != '}' || f->n < 2) return 0;
  const lmn_json_value **s = malloc(f->n * sizeof *s);
  if (!s) return jp_fail(p, "out of memory");
  for (size_t i = 0; i < f->n; i++) s[i] = &f->items[i];
  qsort(s, f->n, sizeof *s, key_cmp);
  const char *dup = NULL;
  for (size_t i = 1; i < f->n && !dup; i++)
    if (strcmp(s[i - 1]->key, s[i]->key) == 0) dup = s[i]->key;
  free(s);
  char pv[100];
  return dup ? jp_fail(p, "duplicate key '%s'", printable(pv, sizeof pv, dup)) : 0;
}

/* A new item at the end of frame f (with its key, read here, for an object): the value to read next. */
static lmn_json_value *jt_slot(jp *p, jt_frame *f) {
  if (grow((void **)&f->items, &f->cap, f->n, sizeof *f->items) != 0)
    return jp_fail(p, "out of memory"), NULL;
  lmn_json_value *v = &f->items[f->n++];
  memset(v, 0, sizeof *v);
  if (f->close == '}' && (jp_cstring(p, (char **)&v->key) != 0 || jp_expect(p, ':') != 0)) return NULL;
  return v;
}

/* The value that owns frame d: the root, or the last item of the frame below. */
static lmn_json_value *jt_owner(jt_frame *f, int d, lmn_json_value *root) {
  return d == 0 ? root : &f[d - 1].items[f[d - 1].n - 1];
}

/* Reads a value into *v; an object or array opens a frame (1: it is empty and already closed). */
static int jt_open_or_scalar(jp *p, jt_frame *f, int *depth, lmn_json_value *v) {
  jp_ws(p);
  if (p->pos >= p->n || (p->s[p->pos] != '[' && p->s[p->pos] != '{')) return jp_scalar(p, v) != 0 ? -1 : 1;
  if (*depth == LMN_JSON_MAX_DEPTH) return jp_fail(p, "nested more than %d deep", LMN_JSON_MAX_DEPTH);
  char open = p->s[p->pos++];
  v->kind = open == '[' ? LMN_JSON_ARRAY : LMN_JSON_OBJECT;
  f[*depth] = (jt_frame){NULL, 0, 0, open == '[' ? ']' : '}'};
  jp_ws(p);
  if (p->pos < p->n && p->s[p->pos] == f[*depth].close) return p->pos++, 1;
  (*depth)++;
  return 0;
}

/* Closes frames until one takes another item: its new slot, or NULL at the end of the value (*rc -1 on
 * error). Items pass to their owner as each frame closes, after the duplicate-key check. */
static lmn_json_value *jt_next(jp *p, jt_frame *f, int *depth, lmn_json_value *root, int *rc) {
  while (*depth > 0) {
    jt_frame *top = &f[*depth - 1];
    int more = jp_more(p, top->close);
    if (more < 0) return *rc = -1, NULL;
    if (more == 1) {
      lmn_json_value *v = jt_slot(p, top);
      return v ? v : (*rc = -1, NULL);
    }
    if (jt_duplicates(p, top) != 0) return *rc = -1, NULL;
    lmn_json_value *owner = jt_owner(f, *depth - 1, root);
    owner->items = top->items, owner->n = top->n;
    *top = (jt_frame){NULL, 0, 0, 0};
    (*depth)--;
  }
  return *rc = 0, NULL;
}

/* One value into root, objects and arrays without recursion; on failure everything read is freed. */
static int jt_value(jp *p, lmn_json_value *root) {
  jt_frame f[LMN_JSON_MAX_DEPTH];
  int depth = 0, rc = 0;
  for (lmn_json_value *v = root; v;) {
    int r = jt_open_or_scalar(p, f, &depth, v);
    if (r < 0) {
      rc = -1;
      break;
    }
    if (r == 0) { /* a frame opened: its first item */
      if (!(v = jt_slot(p, &f[depth - 1]))) rc = -1;
      continue;
    }
    v = jt_next(p, f, &depth, root, &rc);
  }
  if (rc != 0) /* the open frames' items are owned by no value yet */
    for (int d = depth - 1; d >= 0; d--) {
      lmn_json_value tmp = {.items = f[d].items, .n = f[d].n};
      json_value_free(&tmp);
    }
  return rc;
}

static int jp_document(jp *p, lmn_json *j) {
  jp_ws(p);
  if (p->pos >= p->n || p->s[p->pos] != '{') return jp_expect(p, '{');
  if (jt_value(p, &j->root) != 0) return -1;
  jp_ws(p);
  if (p->pos != p->n) return jp_fail(p, "unexpected data after the object");
  return 0;
}

void lmn_json_free(lmn_json *j) {
  if (!j) return;
  json_value_free(&j->root);
  free(j);
}

int lmn_json_parse(const char *text, size_t n, const char *name, lmn_json **out, lmn_err *err) {
  *out = NULL;
  lmn_json *j = calloc(1, sizeof *j);
  if (!j) return lmn_errf(err, "%s: out of memory", name);
  jp p = {.st = NULL, .s = text, .n = n, .pos = 0, .err = err, .doc = name};
  if (jp_document(&p, j) != 0) {
    lmn_json_free(j);
    return -1;
  }
  *out = j;
  return 0;
}

/* The whole of the regular file at path into a new buffer (*n bytes), at most LMN_JSON_MAX_FILE. */
static int json_slurp(const char *path, char **buf, size_t *n, lmn_err *err) {
  off_t size = 0;
  int fd = lmn_open_regular(path, &size, err);
  if (fd < 0) return -1;
  int rc = 0;
  *buf = NULL, *n = 0;
  if (size > (off_t)LMN_JSON_MAX_FILE)
    rc = lmn_errf(err, "%s: larger than %u bytes", path, LMN_JSON_MAX_FILE);
  else if (!(*buf = malloc((size_t)size + 1)))
    rc = lmn_errf(err, "%s: out of memory", path);
  while (rc == 0 && *n < (size_t)size) { /* a file that shrinks meanwhile ends early: parsed as it is */
    ssize_t r = read(fd, *buf + *n, (size_t)size - *n);
    if (r < 0 && errno != EINTR) rc = lmn_errf(err, "%s: read error: %s", path, strerror(errno));
    if (r == 0) break;
    if (r > 0) *n += (size_t)r;
  }
  close(fd);
  if (rc != 0) free(*buf), *buf = NULL;
  return rc;
}

int lmn_json_read_file(const char *path, lmn_json **out, lmn_err *err) {
  *out = NULL;
  char *buf;
  size_t n;
  if (json_slurp(path, &buf, &n, err) != 0) return -1;
  int rc = lmn_json_parse(buf, n, path, out, err);
  free(buf);
  return rc;
}

const lmn_json_value *lmn_json_member(const lmn_json_value *obj, const char *key) {
  if (!obj || obj->kind != LMN_JSON_OBJECT) return NULL;
  for (size_t i = 0; i < obj->n; i++)
    if (strcmp(obj->items[i].key, key) == 0) return &obj->items[i];
  return NULL;
}

const lmn_json_value *lmn_json_root(const lmn_json *j) {
  return j ? &j->root : NULL;
}

const lmn_json_value *lmn_json_get(const lmn_json *j, const char *key) {
  return lmn_json_member(lmn_json_root(j), key);
}

/* ---------------------------------------------------------------- Hugging Face config.json */

typedef struct hf_cfg {
  const lmn_json *j;
  const char *path;
  lmn_err *err;
} hf_cfg;

/* The first of up to three alternative keys present with a non-null value (NULL when none). */
static const lmn_json_value *hf_get(const hf_cfg *c, const char *const *keys, const char **used) {
  for (int i = 0; i < 3 && keys[i]; i++) {
    const lmn_json_value *v = lmn_json_get(c->j, keys[i]);
    if (v && v->kind != LMN_JSON_NULL) return *used = keys[i], v;
  }
  *used = keys[0];
  return NULL;
}

/* A positive integer (<= 2^40) under one of keys; def < 0: required. */
static int hf_int(const hf_cfg *c, const char *const *keys, long def, long *out) {
  const char *k;
  const lmn_json_value *v = hf_get(c, keys, &k);
  if (!v) {
    if (def < 0) return lmn_errf(c->err, "%s: key '%s' is missing", c->path, k);
    return *out = def, 0;
  }
  if (v->kind != LMN_JSON_NUMBER || v->num != (double)(long)v->num || v->num < 1 || v->num > 1099511627776.0)
    return lmn_errf(c->err, "%s: key '%s' must be a positive integer", c->path, k);
  *out = (long)v->num;
  return 0;
}

/* A positive finite number; def < 0: required. */
static int hf_float(const hf_cfg *c, const char *const *keys, double def, double *out) {
  const char *k;
  const lmn_json_value *v = hf_get(c, keys, &k);
  if (!v) {
    if (def < 0) return lmn_errf(c->err, "%s: key '%s' is missing", c->path, k);
    return *out = def, 0;
  }
  if (v->kind != LMN_JSON_NUMBER || !(v->num > 0))
    return lmn_errf(c->err, "%s: key '%s' must be a positive number", c->path, k);
  *out = v->num;
  return 0;
}

/* A boolean; def < 0: required. */
static int hf_bool(const hf_cfg *c, const char *key, int def, int *out) {
  const char *keys[] = {key, NULL}, *k;
  const lmn_json_value *v = hf_get(c, keys, &k);
  if (!v) {
    if (def < 0) return lmn_errf(c->err, "%s: key '%s' is missing", c->path, k);
    return *out = def, 0;
  }
  if (v->kind != LMN_JSON_BOOL) return lmn_errf(c->err, "%s: key '%s' must be true or false", c->path, k);
  *out = v->boolean;
  return 0;
}

static int hf_arch(const hf_cfg *c, lmn_arch *arch) {
  const lmn_json_value *v = lmn_json_get(c->j, "model_type");
  if (!v) return lmn_errf(c->err, "%s: key 'model_type' is missing", c->path);
  if (v->kind != LMN_JSON_STRING) return lmn_errf(c->err, "%s: key 'model_type' must be a string", c->path);
  *arch = lmn_arch_from_name(v->str);
  if (*arch == LMN_ARCH_NONE) {
    char pv[100];
    return lmn_errf(c->err, "%s: key 'model_type': '%s' is not supported (llama, qwen2, gpt2)", c->path,
                    printable(pv, sizeof pv, v->str));
  }
  return 0;
}

/* Features the blocks cannot run: rope scaling, a head_dim other than hidden/heads, MLP biases. */
static int hf_unsupported(const hf_cfg *c, const lmn_hparams *hp) {
  const lmn_json_value *v = lmn_json_get(c->j, "rope_scaling");
  if (v && v->kind != LMN_JSON_NULL)
    return lmn_errf(c->err, "%s: key 'rope_scaling' is not supported", c->path);
  long hd = 0;
  const char *hk[] = {"head_dim", NULL};
  if (hf_int(c, hk, hp->dim / hp->heads, &hd) != 0) return -1;
  if (hd != hp->dim / hp->heads)
    return lmn_errf(c->err, "%s: key 'head_dim': %ld differs from hidden_size / num_attention_heads = %ld",
                    c->path, hd, hp->dim / hp->heads);
  int mlp_bias = 0;
  if (hf_bool(c, "mlp_bias", 0, &mlp_bias) != 0) return -1;
  if (mlp_bias) return lmn_errf(c->err, "%s: key 'mlp_bias': MLP biases are not supported", c->path);
  return 0;
}

static int hf_check(const hf_cfg *c, const lmn_hparams *hp) {
  if (hp->dim % hp->heads != 0 || (hp->dim / hp->heads) % 2 != 0)
    return lmn_errf(c->err,
                    "%s: key 'num_attention_heads': %ld does not divide the hidden size %ld into even heads",
                    c->path, hp->heads, hp->dim);
  if (hp->kv_heads > hp->heads || hp->heads % hp->kv_heads != 0)
    return lmn_errf(c->err, "%s: key 'num_key_value_heads': %ld does not divide num_attention_heads %ld",
                    c->path, hp->kv_heads, hp->heads);
  return hp->arch == LMN_ARCH_GPT2 ? 0 : hf_unsupported(c, hp);
}

static int hf_fill(const hf_cfg *c, lmn_hparams *hp) {
  int gpt2 = hp->arch == LMN_ARCH_GPT2, attn_bias = 0;
  const char *k_dim[] = {"hidden_size", "n_embd", NULL}, *k_layers[] = {"num_hidden_layers", "n_layer", NULL},
             *k_heads[] = {"num_attention_heads", "n_head", NULL}, *k_kv[] = {"num_key_value_heads", NULL},
             *k_ffn[] = {"intermediate_size", "n_inner", NULL}, *k_vocab[] = {"vocab_size", NULL},
             *k_ctx[] = {"max_position_embeddings", "n_positions", "n_ctx"},
             *k_eps[] = {"rms_norm_eps", "layer_norm_epsilon", NULL}, *k_theta[] = {"rope_theta", NULL};
  if (hf_int(c, k_dim, -1, &hp->dim) != 0 || hf_int(c, k_layers, -1, &hp->layers) != 0 ||
      hf_int(c, k_heads, -1, &hp->heads) != 0 || hf_int(c, k_kv, hp->heads, &hp->kv_heads) != 0 ||
      hf_int(c, k_ffn, gpt2 ? 4 * hp->dim : -1, &hp->ffn) != 0 || hf_int(c, k_vocab, -1, &hp->vocab) != 0 ||
      hf_int(c, k_ctx, -1, &hp->ctx) != 0 || hf_float(c, k_eps, -1, &hp->eps) != 0 ||
      hf_bool(c, "tie_word_embeddings", gpt2 ? 1 : -1, &hp->tied) != 0)
    return -1;
  if (gpt2) return hp->kv_heads = hp->heads, hp->qkv_bias = 0, hf_check(c, hp);
  if (hf_float(c, k_theta, 10000.0, &hp->rope_theta) != 0) return -1;
  if (hp->arch == LMN_ARCH_LLAMA && hf_bool(c, "attention_bias", 0, &attn_bias) != 0) return -1;
  hp->qkv_bias = hp->arch == LMN_ARCH_QWEN2 || attn_bias;
  return hf_check(c, hp);
}

int lmn_hf_hparams(const char *dir, lmn_hparams *hp, lmn_err *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  lmn_json *j = NULL;
  if (lmn_json_read_file(path, &j, err) != 0) return -1;
  hf_cfg c = {j, path, err};
  lmn_arch arch = LMN_ARCH_NONE;
  int rc = hf_arch(&c, &arch);
  if (rc == 0) {
    lmn_hparams_defaults(hp, arch);
    rc = hf_fill(&c, hp);
  }
  lmn_json_free(j);
  return rc;
}
