/* test_safetensors.c: the safetensors reader and writer: round trips in every open mode, a file written by
 * the reference implementation (PyPI safetensors), F16/BF16 loading, the strict JSON header parser, and
 * a table of malformed files, each rejected with a message naming the file and the cause. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "safetensors.h"

#define FIX "tests/fixtures/quant/"

static const lmn_st_mode modes[3] = {LMN_ST_MMAP, LMN_ST_READ, LMN_ST_META};

/* 8-byte length + header + data_len bytes of data (value i & 0xff at byte i). */
static uint8_t *make_file(const char *header, size_t data_len, size_t *n) {
  size_t h = strlen(header);
  *n = 8 + h + data_len;
  uint8_t *p = malloc(*n ? *n : 1);
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)h >> (8 * i));
  memcpy(p + 8, header, h);
  for (size_t i = 0; i < data_len; i++) p[8 + h + i] = (uint8_t)i;
  return p;
}

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_FATAL(f != NULL);
  if (n) CU_ASSERT(fwrite(p, 1, n, f) == n);
  fclose(f);
}

static char *tmpdir_new(void) {
  char *d = strdup("/tmp/lmn_st_XXXXXX");
  CU_ASSERT_FATAL(mkdtemp(d) != NULL);
  return d;
}

static void rm_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[4096];
  while (d && (e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink(p) != 0) rmdir(p);
  }
  if (d) closedir(d);
  rmdir(dir);
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir(d)) != NULL) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  if (d) closedir(d);
  return n;
}

#define ASSERT_MSG(err, s)                                                                           \
  do {                                                                                               \
    CU_ASSERT_PTR_NOT_NULL(strstr((err).msg, (s)));                                                  \
    if (!strstr((err).msg, (s))) fprintf(stderr, "\n  message: %s\n  wanted: %s\n", (err).msg, (s)); \
  } while (0)

/* ---------------------------------------------------------------- round trip */

static float mat[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e30f};
static float vec[3] = {7.0f, 8.0f, 9.0f};
static float scalar = 42.0f;

static void write_rt(const char *path) {
  lmn_st_writer *w;
  lmn_err e;
  int64_t s_mat[2] = {2, 3}, s_vec[1] = {3}, s_empty[2] = {0, 5};
  CU_ASSERT_FATAL(lmn_st_writer_new(&w, &e) == 0);
  CU_ASSERT(lmn_st_writer_add_meta(w, "step", "1200", &e) == 0);
  CU_ASSERT(lmn_st_writer_add_meta(
                w, "note", "quote \" backslash \\ newline \n tab \t caf\xc3\xa9 \xf0\x9f\x98\x80", &e) == 0);
  CU_ASSERT(lmn_st_writer_add_f32(w, "edges.0.weight", 2, s_mat, mat, &e) == 0);
  CU_ASSERT(lmn_st_writer_add_f32(w, "edges.0.bias", 1, s_vec, vec, &e) == 0);
  CU_ASSERT(lmn_st_writer_add_f32(w, "scalar", 0, NULL, &scalar, &e) == 0);
  CU_ASSERT(lmn_st_writer_add_f32(w, "empty", 2, s_empty, NULL, &e) == 0);
  CU_ASSERT(lmn_st_writer_add_f32(w, "na\"me\\x", 1, s_vec, vec, &e) == 0);
  CU_ASSERT(lmn_st_writer_write(w, path, &e) == 0);
  lmn_st_writer_free(w);
}

static void check_rt(const lmn_st *st) {
  lmn_err e;
  float out[6];
  int64_t s_mat[2] = {2, 3}, s_vec[1] = {3}, s_empty[2] = {0, 5};
  CU_ASSERT(lmn_st_data_start(st) % 8 == 0);
  CU_ASSERT(lmn_st_n_tensors(st) == 5 && lmn_st_n_meta(st) == 2);
  CU_ASSERT(lmn_st_meta(st, "step") && !strcmp(lmn_st_meta(st, "step"), "1200"));
  CU_ASSERT(lmn_st_meta(st, "note") &&
            !strcmp(lmn_st_meta(st, "note"),
                    "quote \" backslash \\ newline \n tab \t caf\xc3\xa9 \xf0\x9f\x98\x80"));
  CU_ASSERT(lmn_st_meta(st, "absent") == NULL);
  const char *k, *v;
  CU_ASSERT(lmn_st_meta_at(st, 0, &k, &v) == 0 && !strcmp(k, "step") && !strcmp(v, "1200"));
  CU_ASSERT(lmn_st_meta_at(st, 2, &k, &v) == -1);
  CU_ASSERT(lmn_st_load_f32(st, "edges.0.weight", 2, s_mat, out, &e) == 0);
  CU_ASSERT(memcmp(out, mat, sizeof mat) == 0);
  CU_ASSERT(lmn_st_load_f32(st, "edges.0.bias", 1, s_vec, out, &e) == 0 && out[2] == 9.0f);
  CU_ASSERT(lmn_st_load_f32(st, "na\"me\\x", 1, s_vec, out, &e) == 0 && out[0] == 7.0f);
  CU_ASSERT(lmn_st_load_f32(st, "scalar", 0, NULL, out, &e) == 0 && out[0] == 42.0f);
  CU_ASSERT(lmn_st_load_f32(st, "empty", 2, s_empty, out, &e) == 0);
  const lmn_st_tensor *t = lmn_st_find(st, "edges.0.weight");
  CU_ASSERT_FATAL(t != NULL);
  CU_ASSERT(t->dtype == LMN_ST_F32 && t->n_dims == 2 && t->shape[0] == 2 && t->shape[1] == 3 &&
            t->nelems == 6);
  CU_ASSERT(t->end - t->begin == 24 && !strcmp(t->dtype_name, "F32") && t->elem_size == 4);
  CU_ASSERT(lmn_st_tensor_read(st, t, 4, out, 8, &e) == 0 && out[0] == -2.0f && out[1] == 3.25f);
  CU_ASSERT(lmn_st_tensor_read(st, t, 20, out, 8, &e) == -1);
  ASSERT_MSG(e, "outside its 24 bytes");
  CU_ASSERT(lmn_st_load_f32(st, "edges.0.weight", 2, (int64_t[]){3, 2}, out, &e) == -1);
  ASSERT_MSG(e, "tensor 'edges.0.weight': shape [2, 3], expected [3, 2]");
  CU_ASSERT(lmn_st_load_f32(st, "nope", 1, s_vec, out, &e) == -1);
  ASSERT_MSG(e, "tensor 'nope' not found");
  CU_ASSERT(strcmp(lmn_st_tensor_at(st, 0)->name, "edges.0.weight") == 0 && lmn_st_tensor_at(st, 5) == NULL);
}

static void test_roundtrip(void) {
  char *dir = tmpdir_new(), path[512];
  lmn_err e;
  snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
  write_rt(path);
  for (int m = 0; m < 3; m++) {
    lmn_st *st;
    int rc = lmn_st_open(path, modes[m], &st, &e);
    CU_ASSERT_FATAL(rc == 0);
    check_rt(st);
    const lmn_st_tensor *t = lmn_st_find(st, "scalar");
    CU_ASSERT((lmn_st_tensor_data(st, t, &e) == NULL) == (modes[m] == LMN_ST_META));
    lmn_st_close(st);
  }
  CU_ASSERT(count_entries(dir) == 1);
  rm_dir(dir);
  free(dir);
}

/* ---------------------------------------------------------------- outside writer */

static void test_python_safetensors(void) {
  for (int m = 0; m < 3; m++) {
    lmn_st *st;
    lmn_err e;
    float out[12];
    CU_ASSERT_FATAL(lmn_st_open(FIX "py_st.safetensors.dat", modes[m], &st, &e) == 0);
    CU_ASSERT(lmn_st_n_tensors(st) == 3);
    CU_ASSERT(lmn_st_meta(st, "format") && !strcmp(lmn_st_meta(st, "format"), "np"));
    CU_ASSERT(lmn_st_meta(st, "note") && !strcmp(lmn_st_meta(st, "note"), "made by safetensors.numpy"));
    CU_ASSERT(lmn_st_load_f32(st, "a.weight", 2, (int64_t[]){3, 4}, out, &e) == 0);
    for (int i = 0; i < 12; i++) CU_ASSERT(out[i] == (float)i - 5.5f);
    CU_ASSERT(lmn_st_find(st, "b.half")->dtype == LMN_ST_F16);
    CU_ASSERT(lmn_st_load_f32(st, "b.half", 2, (int64_t[]){2, 2}, out, &e) == 0);
    CU_ASSERT(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0.5f && out[3] == 65504.0f);
    CU_ASSERT(lmn_st_load_f32(st, "c.vec", 1, (int64_t[]){5}, out, &e) == 0);
    CU_ASSERT(out[0] == 0.0f && out[2] == 0.5f && out[4] == 1.0f);
    lmn_st_close(st);
  }
}

/* BF16 and a dtype that does not load as f32, built by hand. */
static void test_bf16_and_other_dtypes(void) {
  const char *h =
      "{\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},"
      "\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[6,14]}}   ";
  size_t n;
  uint8_t *p = make_file(h, 14, &n);
  uint8_t *d = p + 8 + strlen(h);
  d[0] = 0x80, d[1] = 0x3f, d[2] = 0x40, d[3] = 0xc0, d[4] = 0x80, d[5] = 0x7f; /* 1, -3, inf */
  lmn_st *st;
  lmn_err e;
  float out[3];
  CU_ASSERT_FATAL(lmn_st_open_mem(p, n, "hand.safetensors", &st, &e) == 0);
  CU_ASSERT(lmn_st_load_f32(st, "b", 1, (int64_t[]){3}, out, &e) == 0);
  CU_ASSERT(out[0] == 1.0f && out[1] == -3.0f && isinf(out[2]));
  const lmn_st_tensor *t = lmn_st_find(st, "i");
  CU_ASSERT(t && t->dtype == LMN_ST_OTHER && t->elem_size == 8 && !strcmp(t->dtype_name, "I64"));
  CU_ASSERT(lmn_st_load_f32(st, "i", 1, (int64_t[]){1}, out, &e) == -1);
  ASSERT_MSG(e, "hand.safetensors: tensor 'i': dtype I64 cannot be loaded as f32");
  uint8_t raw[8];
  CU_ASSERT(lmn_st_tensor_read(st, t, 0, raw, 8, &e) == 0 && raw[0] == 6);
  lmn_st_close(st);
  free(p);
}

/* ---------------------------------------------------------------- malformed files */

typedef struct bad {
  const char *header;
  size_t data_len;
  const char *expect;
} bad;

#define T1(dt, shape, b, e) "\"t\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" b "," e "]}"

static const bad bad_cases[] = {
    {" {}", 0, "header must start with '{'"},
    {"{\"t\":", 0, "expected '{', found end of header"},
    {"{" T1("Q4", "[2]", "0", "8") "}", 8, "tensor 't': unsupported dtype 'Q4'"},
    {"{" T1("F4", "[2]", "0", "1") "}", 1, "unsupported dtype 'F4'"},
    {"{" T1("F32", "[3]", "0", "8") "}", 8, "data_offsets [0, 8] span 8 bytes but 3 F32 values need 12"},
    {"{" T1("F32", "[4]", "0", "16") "}", 8,
     "tensor 't': data [offset 63, 16 bytes] extends past end of file (size 71)"},
    {"{" T1("F32", "[4]", "16", "0") "}", 16, "end before they begin"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     12, "tensor 'b': data_offsets [4, 12] overlap tensor 'a'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
     20, "tensor 'b': hole in the data buffer: bytes [8, 12) belong to no tensor"},
    {"{" T1("F32", "[2]", "0", "8") "}", 12, "4 bytes after the last tensor's data"},
    {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     8, "tensor 't': duplicate tensor name"},
    {"{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, "__metadata__: duplicate key 'a'"},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate key '__metadata__'"},
    {"{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", 0, "tensor 't': duplicate field 'dtype'"},
    {"{\"t\":{\"foo\":1}}", 0, "tensor 't': unknown field 'foo'"},
    {"{\"t\":{\"dtype\":\"F32\",\"shape\":[]}}", 0, "tensor 't': missing field 'data_offsets'"},
    {"{\"t\":{}}", 0, "tensor 't': missing field 'dtype'"},
    {"{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ value of 'k' is not a string"},
    {"{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, "is not a string"},
    {"{" T1("F32", "[-1]", "0", "4") "}", 4, "expected a non-negative integer"},
    {"{" T1("F32", "[1.0]", "0", "4") "}", 4, "expected an integer"},
    {"{" T1("F32", "[1e2]", "0", "4") "}", 4, "expected an integer"},
    {"{" T1("F32", "[01]", "0", "4") "}", 4, "number with a leading zero"},
    {"{" T1("F32", "[1]", "0", "184467440737095516160") "}", 4, "integer too large"},
    {"{" T1("F32", "[1,1,1,1,1,1,1,1,1]", "0", "4") "}", 4, "shape has more than 8 elements"},
    {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
     "data_offsets has more than 2 elements"},
    {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "data_offsets needs 2 elements"},
    {"{\"t\\x\":{}}", 0, "invalid escape '\\x' in string"},
    {"{\"t\\udc00\":{}}", 0, "lone low surrogate"},
    {"{\"t\\ud800x\":{}}", 0, "high surrogate without low surrogate"},
    {"{\"t\\u12\":{}}", 0, "invalid \\u escape"},
    {"{\"t\xff\":{}}", 0, "invalid UTF-8 in string"},
    {"{\"t\xc0\x80\":{}}", 0, "invalid UTF-8 in string"},
    {"{\"t\xed\xa0\x80\":{}}", 0, "invalid UTF-8 in string"},
    {"{\"t\n\":{}}", 0, "control character 0x0a in string"},
    {"{\"t\\u0000\":{}}", 0, "string contains a NUL character"},
    {"{}x", 0, "unexpected data after the header object"},
    {"{} {}", 0, "unexpected data after the header object"},
    {"{" T1("F32", "[1]", "0", "4") ",}", 4, "expected a string"},
    {"{\"t\":{\"dtype\":\"F32\",\"shape\":[[[[[[[[[[1]]]]]]]]]]}}", 0, "expected a non-negative integer"},
    {"{\"t\":[1,2]}", 0, "expected '{'"},
    {"{\"t\":\"x\"}", 0, "expected '{'"},
    {"{\"t\" \"x\"}", 0, "expected ':'"},
    {"{\"t\":{\"dtype\":\"F32\" \"shape\":[1]}}", 0, "expected ',' or '}'"},
    {"{\"unterminated", 0, "unterminated string"},
    {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
     "element count overflows"},
    {"{\"t\":{\"dtype\":\"F64\",\"shape\":[3074457345618258602],\"data_offsets\":[0,0]}}", 0,
     "byte size overflows"},
    {"{\"t\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,0]}}", 0, "too large"},
    {"", 0, "header must start with '{'"},
};

static void test_bad_headers(void) {
  char *dir = tmpdir_new(), path[512];
  for (size_t c = 0; c < sizeof bad_cases / sizeof *bad_cases; c++) {
    size_t n;
    uint8_t *p = make_file(bad_cases[c].header, bad_cases[c].data_len, &n);
    lmn_st *st = NULL;
    lmn_err e;
    CU_ASSERT(lmn_st_open_mem(p, n, "models/bad.safetensors", &st, &e) == -1 && st == NULL);
    int ok = strstr(e.msg, bad_cases[c].expect) && !strncmp(e.msg, "models/bad.safetensors: ", 24);
    CU_ASSERT(ok);
    if (!ok) fprintf(stderr, "\n  case %zu\n    got:    %s\n    wanted: %s\n", c, e.msg, bad_cases[c].expect);
    snprintf(path, sizeof path, "%s/bad%zu.safetensors", dir, c);
    write_bytes(path, p, n);
    for (int m = 0; m < 3; m++) {
      CU_ASSERT(lmn_st_open(path, modes[m], &st, &e) == -1 && st == NULL);
      CU_ASSERT(strstr(e.msg, bad_cases[c].expect) != NULL && strstr(e.msg, path) == e.msg);
    }
    unlink(path);
    free(p);
  }
  rm_dir(dir);
  free(dir);
}

static void test_good_headers(void) {
  const char *good[] = {
      "{}",
      "{}      ",
      " \t",
      ("{ \"__metadata__\" : { } , \"t\" : { \"data_offsets\" : [ 0 , 4 ] , \"shape\" : [ ] , "
       "\"dtype\" : \"F32\" } }\n"),
      "{\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\/\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}",
  };
  size_t data_len[] = {0, 0, 0, 4, 0};
  for (size_t c = 0; c < sizeof good / sizeof *good; c++) {
    size_t n;
    uint8_t *p = make_file(good[c], data_len[c], &n);
    lmn_st *st;
    lmn_err e;
    int rc = lmn_st_open_mem(p, n, "good.safetensors", &st, &e);
    if (c == 2) { /* whitespace only is not an object */
      CU_ASSERT(rc == -1);
    } else {
      CU_ASSERT(rc == 0);
      if (rc)
        fprintf(stderr, "\n  good case %zu: %s\n", c, e.msg);
      else
        lmn_st_close(st);
    }
    free(p);
  }
  size_t n;
  uint8_t *p = make_file(good[4], 0, &n);
  lmn_st *st;
  lmn_err e;
  CU_ASSERT_FATAL(lmn_st_open_mem(p, n, "good.safetensors", &st, &e) == 0);
  CU_ASSERT(lmn_st_find(st, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" /") != NULL);
  lmn_st_close(st);
  free(p);
}

static void test_truncated_every_byte(void) {
  char *dir = tmpdir_new(), path[512];
  lmn_err e;
  snprintf(path, sizeof path, "%s/full.safetensors", dir);
  write_rt(path);
  FILE *f = fopen(path, "rb");
  CU_ASSERT_FATAL(f != NULL);
  uint8_t img[4096];
  size_t n = fread(img, 1, sizeof img, f);
  fclose(f);
  CU_ASSERT_FATAL(n > 100 && n < sizeof img);
  int failures = 0;
  snprintf(path, sizeof path, "%s/cut.safetensors", dir);
  for (size_t k = 0; k < n; k++) {
    lmn_st *st = NULL;
    uint8_t *copy = malloc(k ? k : 1);
    memcpy(copy, img, k);
    if (lmn_st_open_mem(copy, k, "cut.safetensors", &st, &e) == 0 ||
        strncmp(e.msg, "cut.safetensors: ", 17) != 0)
      if (failures++ < 3) fprintf(stderr, "\n  truncated at %zu: %s\n", k, e.msg);
    free(copy);
    write_bytes(path, img, k);
    for (int m = 0; m < 3; m++)
      if (lmn_st_open(path, modes[m], &st, &e) == 0 || strstr(e.msg, path) != e.msg) failures++;
  }
  CU_ASSERT(failures == 0);
  rm_dir(dir);
  free(dir);
}

static void test_open_errors(void) {
  lmn_st *st;
  lmn_err e;
  CU_ASSERT(lmn_st_open("/nonexistent/x.safetensors", LMN_ST_MMAP, &st, &e) == -1);
  ASSERT_MSG(e, "/nonexistent/x.safetensors: cannot open");
  CU_ASSERT(lmn_st_open("/tmp", LMN_ST_READ, &st, &e) == -1);
  ASSERT_MSG(e, "/tmp: is a directory, not a regular file");
  uint8_t small[5] = {2, 0, 0, 0, 0};
  CU_ASSERT(lmn_st_open_mem(small, 5, "s.safetensors", &st, &e) == -1);
  ASSERT_MSG(e, "s.safetensors: header length [offset 0, 8 bytes] extends past end of file (size 5)");
  uint8_t big[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}', ' ', ' '};
  CU_ASSERT(lmn_st_open_mem(big, 12, "s.safetensors", &st, &e) == -1);
  ASSERT_MSG(e, "header [offset 8, 18446744073709551615 bytes] extends past end of file (size 12)");
  /* a header over the 100 MB limit, in a sparse file: rejected before it is read */
  char *dir = tmpdir_new(), path[512];
  snprintf(path, sizeof path, "%s/huge.safetensors", dir);
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
  uint64_t h = LMN_ST_MAX_HEADER + 1;
  uint8_t p8[8];
  for (int i = 0; i < 8; i++) p8[i] = (uint8_t)(h >> (8 * i));
  CU_ASSERT(write(fd, p8, 8) == 8 && ftruncate(fd, (off_t)(8 + h)) == 0);
  close(fd);
  CU_ASSERT(lmn_st_open(path, LMN_ST_META, &st, &e) == -1);
  ASSERT_MSG(e, "header of 100000001 bytes exceeds the limit");
  rm_dir(dir);
  free(dir);
}

static void test_writer_errors(void) {
  lmn_st_writer *w;
  lmn_err e;
  float x[4] = {0};
  int64_t s[9] = {4, 1, 1, 1, 1, 1, 1, 1, 1}, neg[1] = {-1}, zero[1] = {0}, big[2] = {INT64_MAX, 2};
  CU_ASSERT_FATAL(lmn_st_writer_new(&w, &e) == 0);
  CU_ASSERT(lmn_st_writer_add_f32(w, "a", 1, s, x, &e) == 0);
  CU_ASSERT(lmn_st_writer_add_f32(w, "a", 1, s, x, &e) == -1);
  ASSERT_MSG(e, "tensor 'a': duplicate name");
  CU_ASSERT(lmn_st_writer_add_f32(w, "b", 9, s, x, &e) == -1);
  ASSERT_MSG(e, "9 dimensions (at most 8)");
  CU_ASSERT(lmn_st_writer_add_f32(w, "c", 1, neg, x, &e) == -1);
  CU_ASSERT(lmn_st_writer_add_f32(w, "c", 2, big, x, &e) == -1);
  CU_ASSERT(lmn_st_writer_add_f32(w, "d", 1, s, NULL, &e) == -1);
  ASSERT_MSG(e, "no data");
  CU_ASSERT(lmn_st_writer_add_f32(w, "z", 1, zero, NULL, &e) == 0);
  CU_ASSERT(lmn_st_writer_add_f32(w, "__metadata__", 1, s, x, &e) == -1);
  CU_ASSERT(lmn_st_writer_add_f32(w, "bad\xff", 1, s, x, &e) == -1);
  CU_ASSERT(lmn_st_writer_add_meta(w, "k", "v", &e) == 0);
  CU_ASSERT(lmn_st_writer_add_meta(w, "k", "w", &e) == -1);
  ASSERT_MSG(e, "metadata 'k': duplicate key");
  CU_ASSERT(lmn_st_writer_add_meta(w, "k2", "\xc3", &e) == -1);
  ASSERT_MSG(e, "not valid UTF-8");
  /* atomic: a directory in the way makes rename fail; nothing is left behind */
  char *dir = tmpdir_new(), path[512];
  snprintf(path, sizeof path, "%s/sub", dir);
  CU_ASSERT(mkdir(path, 0755) == 0);
  CU_ASSERT(lmn_st_writer_write(w, path, &e) == -1);
  ASSERT_MSG(e, "rename");
  CU_ASSERT(count_entries(dir) == 1);
  CU_ASSERT(lmn_st_writer_write(w, "/nonexistent/dir/c.safetensors", &e) == -1);
  ASSERT_MSG(e, "/nonexistent/dir/c.safetensors: cannot create temp file");
  rm_dir(dir);
  free(dir);
  lmn_st_writer_free(w);
}

static CU_TestInfo tests[] = {
    {"roundtrip_all_modes", test_roundtrip},
    {"python_safetensors_file", test_python_safetensors},
    {"bf16_and_other_dtypes", test_bf16_and_other_dtypes},
    {"malformed_headers_table", test_bad_headers},
    {"accepted_headers", test_good_headers},
    {"truncated_at_every_byte", test_truncated_every_byte},
    {"open_errors", test_open_errors},
    {"writer_errors_and_atomic_write", test_writer_errors},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("safetensors", tests)
