/* test_gguf.c: the GGUF reader and writer: round trips through lmn_gguf_writer in every open mode, files
 * written by the Python gguf package (an outside writer), hyper-parameter extraction, metadata-only opens
 * that read only the header, atomic writes, and a table of corrupted files, each of which must be
 * rejected with a message naming the file and the cause. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dequant.h"
#include "gguf.h"
#include "harness.h"

#define FIX "tests/fixtures/quant/"

/* ---------------------------------------------------------------- helpers */

typedef struct bb {
  uint8_t *p;
  size_t len, cap;
} bb;

static void bb_put(bb *b, const void *s, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void bb_le(bb *b, uint64_t v, int n) {
  for (int i = 0; i < n; i++) {
    uint8_t x = (uint8_t)(v >> (8 * i));
    bb_put(b, &x, 1);
  }
}

static void bb_u32(bb *b, uint32_t v) { bb_le(b, v, 4); }
static void bb_u64(bb *b, uint64_t v) { bb_le(b, v, 8); }

static void bb_str(bb *b, const char *s) {
  bb_u64(b, strlen(s));
  bb_put(b, s, strlen(s));
}

static void bb_header(bb *b, uint32_t version, uint64_t n_t, uint64_t n_kv) {
  bb_put(b, "GGUF", 4);
  bb_u32(b, version);
  bb_u64(b, n_t);
  bb_u64(b, n_kv);
}

static void bb_kv_u32(bb *b, const char *key, uint32_t v) {
  bb_str(b, key);
  bb_u32(b, LMN_GGUF_UINT32);
  bb_u32(b, v);
}

static void bb_tinfo(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                     uint64_t off) {
  bb_str(b, name);
  bb_u32(b, n_dims);
  for (uint32_t j = 0; j < n_dims; j++) bb_u64(b, ne[j]);
  bb_u32(b, type);
  bb_u64(b, off);
}

static void bb_pad(bb *b, size_t a) {
  while (b->len % a) bb_le(b, 0, 1);
}

static void bb_zeros(bb *b, size_t n) {
  for (size_t i = 0; i < n; i++) bb_le(b, 0, 1);
}

static char *tmpdir_new(void) {
  char *d = strdup("/tmp/lmn_gguf_XXXXXX");
  CU_ASSERT_FATAL(mkdtemp(d) != NULL);
  return d;
}

static void rm_rf(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[4096];
  while (d && (e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink(p) != 0) rm_rf(p); /* a directory */
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

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_FATAL(f != NULL);
  if (n) CU_ASSERT(fwrite(p, 1, n, f) == n);
  fclose(f);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc(*n ? *n : 1);
  if (fread(p, 1, *n, f) != *n) *n = 0;
  fclose(f);
  return p;
}

#define ASSERT_MSG(err, s)                                                                           \
  do {                                                                                               \
    CU_ASSERT_PTR_NOT_NULL(strstr((err).msg, (s)));                                                  \
    if (!strstr((err).msg, (s))) fprintf(stderr, "\n  message: %s\n  wanted: %s\n", (err).msg, (s)); \
  } while (0)

static const lmn_gguf_mode modes[3] = {LMN_GGUF_MMAP, LMN_GGUF_READ, LMN_GGUF_META};

/* ---------------------------------------------------------------- round trip */

static const float cube[24] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                               12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};

static void write_roundtrip(const char *path, uint32_t align) {
  lmn_gguf_writer *w;
  lmn_err e;
  static float big[300 * 7];
  for (int i = 0; i < 300 * 7; i++) big[i] = (float)i * 0.5f - 3.0f;
  CU_ASSERT_FATAL(lmn_gguf_writer_new(&w, &e) == 0);
  if (align != 32) CU_ASSERT(lmn_gguf_writer_set_alignment(w, align, &e) == 0);
  uint8_t u8 = 200;
  int8_t i8 = -100;
  uint16_t u16 = 60000;
  int16_t i16 = -30000;
  int64_t i64 = -(INT64_C(1) << 62);
  double f64 = 3.141592653589793;
  CU_ASSERT(lmn_gguf_writer_add_scalar(w, "t.u8", LMN_GGUF_UINT8, &u8, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_scalar(w, "t.i8", LMN_GGUF_INT8, &i8, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_scalar(w, "t.u16", LMN_GGUF_UINT16, &u16, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_scalar(w, "t.i16", LMN_GGUF_INT16, &i16, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_u32(w, "t.u32", 4000000000u, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_i32(w, "t.i32", -2000000000, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_f32(w, "t.f32", 0.15625f, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_bool(w, "t.bool", 1, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_strn(w, "t.str", "a\0b", 3, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_u64(w, "t.u64", UINT64_C(9223372036854775813), &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_scalar(w, "t.i64", LMN_GGUF_INT64, &i64, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_scalar(w, "t.f64", LMN_GGUF_FLOAT64, &f64, &e) == 0);
  int32_t ai[3] = {1, -2, 3};
  float af[2] = {0.5f, -1.25f};
  uint8_t ab[3] = {1, 0, 1};
  const char *as[4] = {"a", "bc", "", "d\xc3\xa9"};
  CU_ASSERT(lmn_gguf_writer_add_arr(w, "t.arr_i32", LMN_GGUF_INT32, ai, 3, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_arr(w, "t.arr_f32", LMN_GGUF_FLOAT32, af, 2, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_arr(w, "t.arr_bool", LMN_GGUF_BOOL, ab, 3, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_arr(w, "t.arr_empty", LMN_GGUF_UINT64, NULL, 0, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_arr_str(w, "t.arr_str", as, 4, &e) == 0);
  int64_t ne1[1] = {5}, ne2[2] = {300, 7}, ne3[3] = {4, 3, 2}, ne4[4] = {2, 3, 2, 2};
  CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, "vec", 1, ne1, cube, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, "mat", 2, ne2, big, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, "cube", 3, ne3, cube, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, "hyper", 4, ne4, cube, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_write(w, path, &e) == 0);
  lmn_gguf_writer_free(w);
}

static void check_roundtrip(const lmn_gguf *g, uint32_t align) {
  lmn_err e;
  int64_t v;
  uint64_t u;
  double d;
  int b;
  lmn_gguf_str s;
  CU_ASSERT(lmn_gguf_version(g) == 3);
  CU_ASSERT(lmn_gguf_alignment(g) == align);
  CU_ASSERT(lmn_gguf_data_start(g) % align == 0);
  CU_ASSERT(lmn_gguf_n_kv(g) == 17 + (align != 32));
  CU_ASSERT(strcmp(lmn_gguf_kv_at(g, 0)->key, "t.u8") == 0);
  CU_ASSERT(lmn_gguf_get_int(g, "t.u8", 0, 255, &v, &e) == 0 && v == 200);
  CU_ASSERT(lmn_gguf_get_int(g, "t.i8", -128, 127, &v, &e) == 0 && v == -100);
  CU_ASSERT(lmn_gguf_get_int(g, "t.u16", 0, 70000, &v, &e) == 0 && v == 60000);
  CU_ASSERT(lmn_gguf_get_int(g, "t.i16", -40000, 0, &v, &e) == 0 && v == -30000);
  CU_ASSERT(lmn_gguf_get_int(g, "t.u32", 0, INT64_MAX, &v, &e) == 0 && v == 4000000000);
  CU_ASSERT(lmn_gguf_get_int(g, "t.i32", INT32_MIN, 0, &v, &e) == 0 && v == -2000000000);
  CU_ASSERT(lmn_gguf_get_int(g, "t.i64", INT64_MIN, 0, &v, &e) == 0 && v == -(INT64_C(1) << 62));
  CU_ASSERT(lmn_gguf_get_uint(g, "t.u64", &u, &e) == 0 && u == UINT64_C(9223372036854775813));
  CU_ASSERT(lmn_gguf_get_int(g, "t.u64", 0, INT64_MAX, &v, &e) == -1);
  ASSERT_MSG(e, "out of range");
  CU_ASSERT(lmn_gguf_get_float(g, "t.f32", &d, &e) == 0 && d == 0.15625);
  CU_ASSERT(lmn_gguf_get_float(g, "t.f64", &d, &e) == 0 && d == 3.141592653589793);
  CU_ASSERT(lmn_gguf_get_float(g, "t.i16", &d, &e) == 0 && d == -30000.0);
  CU_ASSERT(lmn_gguf_get_bool(g, "t.bool", &b, &e) == 0 && b == 1);
  CU_ASSERT(lmn_gguf_get_str(g, "t.str", &s, &e) == 0 && s.len == 3 && memcmp(s.s, "a\0b", 3) == 0);
  lmn_gguf_vtype et;
  uint64_t n;
  CU_ASSERT(lmn_gguf_get_arr(g, "t.arr_i32", &et, &n, &e) == 0 && et == LMN_GGUF_INT32 && n == 3);
  CU_ASSERT(lmn_gguf_get_arr_int(g, "t.arr_i32", 1, &v, &e) == 0 && v == -2);
  CU_ASSERT(lmn_gguf_get_arr_float(g, "t.arr_f32", 1, &d, &e) == 0 && d == -1.25);
  CU_ASSERT(lmn_gguf_get_arr(g, "t.arr_bool", &et, &n, &e) == 0 && et == LMN_GGUF_BOOL && n == 3);
  CU_ASSERT(lmn_gguf_get_arr(g, "t.arr_empty", &et, &n, &e) == 0 && et == LMN_GGUF_UINT64 && n == 0);
  CU_ASSERT(lmn_gguf_get_arr(g, "t.arr_str", &et, &n, &e) == 0 && et == LMN_GGUF_STRING && n == 4);
  CU_ASSERT(lmn_gguf_get_arr_str(g, "t.arr_str", 1, &s, &e) == 0 && s.len == 2 && !memcmp(s.s, "bc", 2));
  CU_ASSERT(lmn_gguf_get_arr_str(g, "t.arr_str", 2, &s, &e) == 0 && s.len == 0);
  CU_ASSERT(lmn_gguf_get_arr_str(g, "t.arr_str", 3, &s, &e) == 0 && s.len == 3 &&
            !memcmp(s.s, "d\xc3\xa9", 3));
  CU_ASSERT(lmn_gguf_n_tensors(g) == 4);
  const lmn_gguf_tensor *t = lmn_gguf_find_tensor(g, "hyper");
  CU_ASSERT_FATAL(t != NULL);
  CU_ASSERT(t->n_dims == 4 && t->ne[0] == 2 && t->ne[3] == 2 && t->nelems == 24 && t->nbytes == 96);
  CU_ASSERT(t->type == LMN_GGML_F32 && (lmn_gguf_data_start(g) + t->offset) % align == 0);
  float out[24];
  CU_ASSERT(lmn_gguf_tensor_read(g, t, 0, out, sizeof out, &e) == 0);
  CU_ASSERT(memcmp(out, cube, sizeof out) == 0);
  CU_ASSERT(lmn_gguf_tensor_read(g, t, 8, out, 8, &e) == 0 && out[0] == 2.0f && out[1] == 3.0f);
  CU_ASSERT(lmn_gguf_tensor_read(g, t, 90, out, 8, &e) == -1);
  ASSERT_MSG(e, "outside its 96 bytes");
  static float big[300 * 7];
  CU_ASSERT(lmn_gguf_load_f32(g, "mat", 300, 7, big, &e) == 0);
  CU_ASSERT(big[0] == -3.0f && big[300 * 7 - 1] == (300 * 7 - 1) * 0.5f - 3.0f);
  CU_ASSERT(lmn_gguf_load_f32(g, "vec", 5, 1, out, &e) == 0 && out[4] == 4.0f);
  CU_ASSERT(lmn_gguf_find_tensor(g, "nope") == NULL);
  CU_ASSERT(lmn_gguf_find_kv(g, "nope") == NULL);
}

static void test_roundtrip_all_modes(void) {
  char *dir = tmpdir_new(), path[512];
  lmn_err e;
  for (uint32_t align = 32; align <= 64; align += 32) {
    snprintf(path, sizeof path, "%s/rt%u.gguf", dir, align);
    write_roundtrip(path, align);
    for (int m = 0; m < 3; m++) {
      lmn_gguf *g;
      CU_ASSERT_FATAL(lmn_gguf_open(path, modes[m], &g, &e) == 0);
      check_roundtrip(g, align);
      const lmn_gguf_tensor *t = lmn_gguf_find_tensor(g, "vec");
      CU_ASSERT((lmn_gguf_tensor_data(g, t, &e) == NULL) == (modes[m] == LMN_GGUF_META));
      lmn_gguf_close(g);
    }
    size_t n;
    uint8_t *img = read_bytes(path, &n);
    lmn_gguf *g;
    CU_ASSERT_FATAL(lmn_gguf_open_mem(img, n, "mem.gguf", &g, &e) == 0);
    check_roundtrip(g, align);
    CU_ASSERT(strcmp(lmn_gguf_name(g), "mem.gguf") == 0 && lmn_gguf_file_size(g) == n);
    lmn_gguf_close(g);
    free(img);
  }
  CU_ASSERT(count_entries(dir) == 2); /* no temp files left behind */
  rm_rf(dir);
  free(dir);
}

/* Bytes this process has read through read()/pread() so far. */
static long long rchar(void) {
  FILE *f = fopen("/proc/self/io", "r");
  char line[128];
  long long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "rchar: %lld", &v) == 1) break;
  if (f) fclose(f);
  return v;
}

static void test_meta_reads_only_header(void) {
  char *dir = tmpdir_new(), path[512];
  lmn_err e;
  lmn_gguf_writer *w;
  size_t n = 4 << 20;
  float *data = calloc(n, sizeof *data);
  int64_t ne[2] = {1024, (int64_t)n / 1024};
  snprintf(path, sizeof path, "%s/big.gguf", dir);
  CU_ASSERT_FATAL(lmn_gguf_writer_new(&w, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_str(w, "general.architecture", "llama", &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, "x", 2, ne, data, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_write(w, path, &e) == 0);
  lmn_gguf_writer_free(w);
  lmn_gguf *g;
  long long before = rchar();
  CU_ASSERT_FATAL(lmn_gguf_open(path, LMN_GGUF_META, &g, &e) == 0);
  long long used = rchar() - before;
  CU_ASSERT(before < 0 || used < (1 << 20)); /* a 16 MiB file, read: the header chunk only */
  CU_ASSERT(lmn_gguf_n_tensors(g) == 1 && lmn_gguf_tensor_at(g, 0)->nbytes == n * 4);
  CU_ASSERT(lmn_gguf_tensor_data(g, lmn_gguf_tensor_at(g, 0), &e) == NULL);
  ASSERT_MSG(e, "metadata only");
  float last;
  CU_ASSERT(lmn_gguf_tensor_read(g, lmn_gguf_tensor_at(g, 0), n * 4 - 4, &last, 4, &e) == 0 && last == 0.0f);
  lmn_gguf_close(g);
  free(data);
  rm_rf(dir);
  free(dir);
}

/* ---------------------------------------------------------------- hyper-parameters */

typedef struct hp_file {
  const char *arch;
  int with_kv_heads, with_rope, vocab_from; /* vocab_from: 0 key, 1 tokens, 2 token_embd */
  int untied, bias;
} hp_file;

static void write_hp(const char *path, const hp_file *h) {
  lmn_gguf_writer *w;
  lmn_err e;
  char k[128];
  static float emb[16 * 10], q[16];
  int64_t ne_emb[2] = {16, 10}, ne_q[1] = {16};
  const char *toks[10] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  int gpt2 = !strcmp(h->arch, "gpt2");
  CU_ASSERT_FATAL(lmn_gguf_writer_new(&w, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_str(w, "general.architecture", h->arch, &e) == 0);
#define KEY(s) (snprintf(k, sizeof k, "%s." s, h->arch), k)
  CU_ASSERT(lmn_gguf_writer_add_u32(w, KEY("context_length"), 256, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_u64(w, KEY("embedding_length"), 16, &e) == 0); /* u64 counts are fine too */
  CU_ASSERT(lmn_gguf_writer_add_i32(w, KEY("block_count"), 3, &e) == 0);       /* and i32 */
  CU_ASSERT(lmn_gguf_writer_add_u32(w, KEY("feed_forward_length"), 40, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_u32(w, KEY("attention.head_count"), 4, &e) == 0);
  if (h->with_kv_heads) CU_ASSERT(lmn_gguf_writer_add_u32(w, KEY("attention.head_count_kv"), 2, &e) == 0);
  const char *eps_key = gpt2 ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon";
  snprintf(k, sizeof k, "%s.%s", h->arch, eps_key);
  CU_ASSERT(lmn_gguf_writer_add_f32(w, k, gpt2 ? 1e-5f : 1e-6f, &e) == 0);
  if (h->with_rope) CU_ASSERT(lmn_gguf_writer_add_f32(w, KEY("rope.freq_base"), 500000.0f, &e) == 0);
  if (h->vocab_from == 0) CU_ASSERT(lmn_gguf_writer_add_u32(w, KEY("vocab_size"), 10, &e) == 0);
  if (h->vocab_from == 1)
    CU_ASSERT(lmn_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, 10, &e) == 0);
#undef KEY
  CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, "token_embd.weight", 2, ne_emb, emb, &e) == 0);
  if (h->untied) CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, "output.weight", 2, ne_emb, emb, &e) == 0);
  if (h->bias) CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, "blk.0.attn_q.bias", 1, ne_q, q, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_write(w, path, &e) == 0);
  lmn_gguf_writer_free(w);
}

static void test_hparams_written(void) {
  char *dir = tmpdir_new(), path[512];
  const hp_file cases[] = {
      {"llama", 1, 1, 0, 0, 0}, {"llama", 0, 0, 1, 1, 0}, {"qwen2", 1, 0, 2, 0, 1}, {"gpt2", 0, 0, 1, 1, 0}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    const hp_file *h = &cases[c];
    lmn_err e;
    lmn_gguf *g;
    lmn_hparams hp;
    snprintf(path, sizeof path, "%s/hp%zu.gguf", dir, c);
    write_hp(path, h);
    CU_ASSERT_FATAL(lmn_gguf_open(path, LMN_GGUF_META, &g, &e) == 0);
    int rc = lmn_gguf_hparams(g, &hp, &e);
    CU_ASSERT(rc == 0);
    if (rc) fprintf(stderr, "\n  %s\n", e.msg);
    CU_ASSERT(hp.arch == lmn_arch_from_name(h->arch));
    CU_ASSERT(hp.ctx == 256 && hp.dim == 16 && hp.layers == 3 && hp.ffn == 40 && hp.heads == 4 &&
              hp.vocab == 10);
    CU_ASSERT(hp.kv_heads == (h->with_kv_heads ? 2 : 4));
    CU_ASSERT(fabs(hp.eps - (!strcmp(h->arch, "gpt2") ? 1e-5 : 1e-6)) < 1e-12);
    if (h->with_rope) CU_ASSERT(hp.rope_theta == 500000.0);
    if (!h->with_rope && hp.arch == LMN_ARCH_LLAMA) CU_ASSERT(hp.rope_theta == 10000.0);
    if (!h->with_rope && hp.arch == LMN_ARCH_QWEN2) CU_ASSERT(hp.rope_theta == 1000000.0);
    CU_ASSERT(hp.tied == !h->untied && hp.qkv_bias == h->bias);
    lmn_gguf_close(g);
  }
  rm_rf(dir);
  free(dir);
}

/* Files that open but whose hyper-parameters are unusable: the message names the key. */
typedef struct hp_bad {
  const char *what;
  void (*build)(bb *b);
  const char *expect;
} hp_bad;

static void hp_common(bb *b, const char *arch, int n_kv_extra, int skip) {
  const char *keys[6] = {"context_length",      "embedding_length",     "block_count",
                         "feed_forward_length", "attention.head_count", "vocab_size"};
  uint32_t vals[6] = {64, 16, 2, 32, 4, 10};
  char k[128];
  bb_header(b, 3, 0, (uint64_t)(1 + 6 - (skip >= 0) + n_kv_extra + 1));
  bb_str(b, "general.architecture");
  bb_u32(b, LMN_GGUF_STRING);
  bb_str(b, arch);
  for (int i = 0; i < 6; i++) {
    if (i == skip) continue;
    snprintf(k, sizeof k, "%s.%s", arch, keys[i]);
    bb_kv_u32(b, k, vals[i]);
  }
  snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", arch);
  bb_str(b, k);
  bb_u32(b, LMN_GGUF_FLOAT32);
  float eps = 1e-5f;
  uint32_t bits;
  memcpy(&bits, &eps, 4);
  bb_u32(b, bits);
}

static void hpb_missing_block_count(bb *b) { hp_common(b, "llama", 0, 2); }
static void hpb_unknown_arch(bb *b) { hp_common(b, "mamba", 0, -1); }
static void hpb_heads_kv(bb *b) {
  hp_common(b, "llama", 1, -1);
  bb_kv_u32(b, "llama.attention.head_count_kv", 3);
}
static void hpb_zero_ffn(bb *b) {
  hp_common(b, "qwen2", 1, 3);
  bb_kv_u32(b, "qwen2.feed_forward_length", 0);
}
static void hpb_string_ctx(bb *b) {
  hp_common(b, "llama", 1, 0);
  bb_str(b, "llama.context_length");
  bb_u32(b, LMN_GGUF_STRING);
  bb_str(b, "2048");
}
static void hpb_no_vocab(bb *b) { hp_common(b, "llama", 0, 5); }
static void hpb_no_eps(bb *b) { hp_common(b, "gpt2", 0, -1); }
static void hpb_no_arch(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_kv_u32(b, "llama.block_count", 2);
}

static void test_hparams_errors(void) {
  const hp_bad cases[] = {
      {"missing block_count", hpb_missing_block_count, "key 'llama.block_count' is missing"},
      {"unknown architecture", hpb_unknown_arch, "'mamba' is not supported"},
      {"kv heads do not divide", hpb_heads_kv, "'llama.attention.head_count_kv': 3 does not divide"},
      {"zero ffn", hpb_zero_ffn, "key 'qwen2.feed_forward_length': value 0 out of range"},
      {"string context", hpb_string_ctx, "key 'llama.context_length': type STRING, expected an integer"},
      {"no vocabulary", hpb_no_vocab, "vocabulary size unknown"},
      {"gpt2 without layer_norm_epsilon", hpb_no_eps, "key 'gpt2.attention.layer_norm_epsilon' is missing"},
      {"no architecture", hpb_no_arch, "key 'general.architecture' is missing"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    bb b = {0};
    lmn_err e;
    lmn_gguf *g;
    lmn_hparams hp;
    cases[c].build(&b);
    int rc = lmn_gguf_open_mem(b.p, b.len, "models/hp.gguf", &g, &e);
    CU_ASSERT(rc == 0);
    if (rc) fprintf(stderr, "\n  %s: %s\n", cases[c].what, e.msg);
    if (rc == 0) {
      CU_ASSERT(lmn_gguf_hparams(g, &hp, &e) == -1);
      ASSERT_MSG(e, cases[c].expect);
      ASSERT_MSG(e, "models/hp.gguf: ");
      lmn_gguf_close(g);
    }
    free(b.p);
  }
}

/* ---------------------------------------------------------------- outside writer (Python gguf package) */

typedef struct fixture {
  uint32_t type, n, nbytes;
  uint8_t *raw;
  float *expected;
} fixture;

static int load_fixture(const char *name, fixture *fx) {
  char path[256];
  size_t n;
  snprintf(path, sizeof path, FIX "%s.dat", name);
  uint8_t *p = read_bytes(path, &n);
  if (!p || n < 24 || memcmp(p, "LMNQFIX1", 8) != 0) {
    free(p);
    return -1;
  }
  memcpy(&fx->type, p + 8, 4);
  memcpy(&fx->n, p + 12, 4);
  memcpy(&fx->nbytes, p + 16, 4);
  if (n != 24 + (size_t)fx->nbytes + 4 * (size_t)fx->n) {
    free(p);
    return -1;
  }
  fx->raw = p;
  fx->expected = malloc(4 * (size_t)fx->n);
  memcpy(fx->expected, p + 24 + fx->nbytes, 4 * (size_t)fx->n);
  return 0;
}

static int same_float(float a, float b) { return (isnan(a) && isnan(b)) || memcmp(&a, &b, 4) == 0; }

static void test_python_writer_llama(void) {
  for (int m = 0; m < 3; m++) {
    lmn_gguf *g;
    lmn_err e;
    int rc = lmn_gguf_open(FIX "py_llama.gguf.dat", modes[m], &g, &e);
    CU_ASSERT_FATAL(rc == 0);
    int64_t v;
    uint64_t u;
    double d;
    int b;
    lmn_gguf_str s;
    CU_ASSERT(lmn_gguf_version(g) == 3 && lmn_gguf_alignment(g) == 32);
    CU_ASSERT(lmn_gguf_get_str(g, "general.architecture", &s, &e) == 0 && s.len == 5 &&
              !memcmp(s.s, "llama", 5));
    CU_ASSERT(lmn_gguf_get_int(g, "test.u8", 0, 255, &v, &e) == 0 && v == 200);
    CU_ASSERT(lmn_gguf_get_int(g, "test.i8", -128, 0, &v, &e) == 0 && v == -100);
    CU_ASSERT(lmn_gguf_get_int(g, "test.u16", 0, 65535, &v, &e) == 0 && v == 60000);
    CU_ASSERT(lmn_gguf_get_int(g, "test.i16", -32768, 0, &v, &e) == 0 && v == -30000);
    CU_ASSERT(lmn_gguf_get_int(g, "test.u32", 0, INT64_MAX, &v, &e) == 0 && v == 4000000000);
    CU_ASSERT(lmn_gguf_get_int(g, "test.i32", INT32_MIN, 0, &v, &e) == 0 && v == -2000000000);
    CU_ASSERT(lmn_gguf_get_uint(g, "test.u64", &u, &e) == 0 && u == (UINT64_C(1) << 63) + 5);
    CU_ASSERT(lmn_gguf_get_int(g, "test.i64", INT64_MIN, 0, &v, &e) == 0 && v == -(INT64_C(1) << 62));
    CU_ASSERT(lmn_gguf_get_float(g, "test.f32", &d, &e) == 0 && d == 0.15625);
    CU_ASSERT(lmn_gguf_get_float(g, "test.f64", &d, &e) == 0 && d == 3.141592653589793);
    CU_ASSERT(lmn_gguf_get_bool(g, "test.bool", &b, &e) == 0 && b == 1);
    CU_ASSERT(lmn_gguf_get_str(g, "test.string", &s, &e) == 0 && s.len == 6 &&
              !memcmp(s.s, "h\xc3\xa9llo", 6));
    CU_ASSERT(lmn_gguf_get_arr_int(g, "test.arr_i32", 2, &v, &e) == 0 && v == 3);
    CU_ASSERT(lmn_gguf_get_arr_int(g, "test.arr_u8", 2, &v, &e) == 0 && v == 255);
    CU_ASSERT(lmn_gguf_get_arr_float(g, "test.arr_f32", 1, &d, &e) == 0 && d == -1.25);
    lmn_gguf_vtype et;
    uint64_t n;
    CU_ASSERT(lmn_gguf_get_arr(g, "test.arr_bool", &et, &n, &e) == 0 && et == LMN_GGUF_BOOL && n == 3);
    CU_ASSERT(lmn_gguf_get_arr_str(g, "test.arr_str", 1, &s, &e) == 0 && s.len == 2 && !memcmp(s.s, "bc", 2));
    CU_ASSERT(lmn_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 31, &s, &e) == 0 && s.len == 5 &&
              !memcmp(s.s, "tok31", 5));
    lmn_hparams hp;
    CU_ASSERT(lmn_gguf_hparams(g, &hp, &e) == 0);
    CU_ASSERT(hp.arch == LMN_ARCH_LLAMA && hp.ctx == 128 && hp.dim == 64 && hp.layers == 2 && hp.ffn == 172);
    CU_ASSERT(hp.heads == 4 && hp.kv_heads == 2 && hp.vocab == 32 && hp.tied == 1 && hp.qkv_bias == 0);
    CU_ASSERT(fabs(hp.eps - 1e-5) < 1e-10 && hp.rope_theta == 10000.0);
    const lmn_gguf_tensor *t = lmn_gguf_find_tensor(g, "test.cube");
    CU_ASSERT_FATAL(t != NULL);
    CU_ASSERT(t->n_dims == 3 && t->ne[0] == 4 && t->ne[1] == 3 && t->ne[2] == 2);
    float c[24], emb[64 * 32];
    CU_ASSERT(lmn_gguf_tensor_read(g, t, 0, c, sizeof c, &e) == 0 && memcmp(c, cube, sizeof c) == 0);
    CU_ASSERT(lmn_gguf_load_f32(g, "token_embd.weight", 64, 32, emb, &e) == 0);
    CU_ASSERT(emb[0] == 0.0f && emb[64 * 32 - 1] == (64 * 32 - 1) * 0.25f);
    const char *qs[] = {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"};
    for (int q = 0; q < 8; q++) {
      fixture fx = {0};
      char name[64];
      float out[1024];
      CU_ASSERT_FATAL(load_fixture(qs[q], &fx) == 0);
      snprintf(name, sizeof name, "quant.%s", qs[q]);
      t = lmn_gguf_find_tensor(g, name);
      CU_ASSERT_FATAL(t != NULL);
      CU_ASSERT(t->type == fx.type && t->ne[0] == 256 && t->ne[1] == 4 && t->nbytes == fx.nbytes);
      CU_ASSERT(lmn_gguf_load_f32(g, name, 256, 4, out, &e) == 0);
      int bad = 0;
      for (uint32_t i = 0; i < fx.n; i++) bad += !same_float(out[i], fx.expected[i]);
      CU_ASSERT(bad == 0);
      free(fx.raw);
      free(fx.expected);
    }
    lmn_gguf_close(g);
  }
}

static void test_python_writer_qwen2(void) {
  lmn_gguf *g;
  lmn_err e;
  lmn_hparams hp;
  CU_ASSERT_FATAL(lmn_gguf_open(FIX "py_qwen2.gguf.dat", LMN_GGUF_MMAP, &g, &e) == 0);
  CU_ASSERT(lmn_gguf_alignment(g) == 64 && lmn_gguf_data_start(g) % 64 == 0);
  CU_ASSERT(lmn_gguf_hparams(g, &hp, &e) == 0);
  CU_ASSERT(hp.arch == LMN_ARCH_QWEN2 && hp.dim == 32 && hp.vocab == 40 && hp.heads == 4 && hp.kv_heads == 2);
  CU_ASSERT(hp.tied == 0 && hp.qkv_bias == 1 && hp.rope_theta == 1000000.0 && hp.ctx == 32768);
  float emb[32 * 40], bias[32];
  CU_ASSERT(lmn_gguf_load_f32(g, "token_embd.weight", 32, 40, emb, &e) == 0);
  CU_ASSERT(emb[0] == 1.0f && emb[32 * 40 - 1] == 1.0f);
  CU_ASSERT(lmn_gguf_load_f32(g, "blk.0.attn_q.bias", 32, 1, bias, &e) == 0 && bias[31] == 31.0f);
  CU_ASSERT(lmn_gguf_load_f32(g, "output.weight", 40, 32, emb, &e) == -1);
  ASSERT_MSG(e, "py_qwen2.gguf.dat: tensor 'output.weight': shape {32, 40}, expected {40, 32}");
  CU_ASSERT(lmn_gguf_load_f32(g, "missing.weight", 4, 1, emb, &e) == -1);
  ASSERT_MSG(e, "tensor 'missing.weight' not found");
  lmn_gguf_close(g);
}

/* ---------------------------------------------------------------- corrupted files */

/* A small valid file: 2 KVs (one string array), 2 tensors (F32 {8}, Q8_0 {32, 2}). */
static void small_valid(bb *b) {
  uint64_t ne_a[1] = {8}, ne_b[2] = {32, 2};
  bb_header(b, 3, 2, 2);
  bb_kv_u32(b, "k.count", 7);
  bb_str(b, "k.list");
  bb_u32(b, LMN_GGUF_ARRAY);
  bb_u32(b, LMN_GGUF_STRING);
  bb_u64(b, 2);
  bb_str(b, "xy");
  bb_str(b, "z");
  bb_tinfo(b, "a", 1, ne_a, LMN_GGML_F32, 0);
  bb_tinfo(b, "b", 2, ne_b, LMN_GGML_Q8_0, 32);
  bb_pad(b, 32);
  for (int i = 0; i < 8; i++) {
    float f = (float)i;
    bb_put(b, &f, 4);
  }
  bb_zeros(b, 68);
}

static void test_truncated_every_byte(void) {
  bb b = {0};
  small_valid(&b);
  char *dir = tmpdir_new(), path[512];
  snprintf(path, sizeof path, "%s/trunc.gguf", dir);
  lmn_err e;
  lmn_gguf *g;
  CU_ASSERT_FATAL(lmn_gguf_open_mem(b.p, b.len, "full.gguf", &g, &e) == 0);
  lmn_gguf_close(g);
  int failures = 0;
  for (size_t n = 0; n < b.len; n++) {
    uint8_t *copy = malloc(n ? n : 1); /* exact-size buffer: ASan catches any over-read */
    memcpy(copy, b.p, n);
    if (lmn_gguf_open_mem(copy, n, "trunc.gguf", &g, &e) == 0 || !strstr(e.msg, "trunc.gguf: ") ||
        !strstr(e.msg, "end of file")) {
      if (failures++ < 3) fprintf(stderr, "\n  truncated at %zu: %s\n", n, e.msg);
    }
    free(copy);
    write_bytes(path, b.p, n);
    for (int m = 0; m < 3; m++) {
      g = NULL;
      if (lmn_gguf_open(path, modes[m], &g, &e) == 0 || !strstr(e.msg, path) ||
          !strstr(e.msg, "end of file")) {
        if (failures++ < 3) fprintf(stderr, "\n  mode %d truncated at %zu: %s\n", m, n, e.msg);
      }
      CU_ASSERT(g == NULL);
    }
  }
  CU_ASSERT(failures == 0);
  free(b.p);
  rm_rf(dir);
  free(dir);
}

typedef struct corrupt {
  const char *what;
  void (*build)(bb *b);
  const char *expect;
} corrupt;

static void c_magic(bb *b) {
  small_valid(b);
  b->p[3] = 'X';
}
static void c_v1(bb *b) {
  small_valid(b);
  b->p[4] = 1;
}
static void c_v4(bb *b) {
  small_valid(b);
  b->p[4] = 4;
}
static void c_big_endian(bb *b) {
  small_valid(b);
  b->p[4] = 0, b->p[7] = 3;
}
static void c_many_tensors(bb *b) {
  bb_header(b, 3, UINT64_C(1) << 60, 0);
  bb_zeros(b, 64);
}
static void c_many_kvs(bb *b) {
  bb_header(b, 3, 0, UINT64_C(1) << 60);
  bb_zeros(b, 64);
}
static void c_key_len(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_u64(b, UINT64_C(1) << 40);
  bb_put(b, "abc", 3);
  bb_zeros(b, 16);
}
static void c_string_len(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_str(b, "k");
  bb_u32(b, LMN_GGUF_STRING);
  bb_u64(b, 100);
  bb_put(b, "short", 5);
}
static void c_huge_string_len(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_str(b, "k");
  bb_u32(b, LMN_GGUF_STRING);
  bb_u64(b, UINT64_MAX);
  bb_put(b, "short", 5);
}
static void c_offset_past_end(bb *b) {
  uint64_t ne[1] = {8};
  bb_header(b, 3, 1, 0);
  bb_tinfo(b, "blk.3.attn_q.weight", 1, ne, LMN_GGML_F32, 64);
  bb_pad(b, 32);
  bb_zeros(b, 32);
}
static void c_offset_huge(bb *b) {
  uint64_t ne[1] = {8};
  bb_header(b, 3, 1, 0);
  bb_tinfo(b, "t", 1, ne, LMN_GGML_F32, UINT64_MAX - 31);
  bb_pad(b, 32);
  bb_zeros(b, 32);
}
static void c_overlap(bb *b) {
  uint64_t ne[1] = {16};
  bb_header(b, 3, 2, 0);
  bb_tinfo(b, "first", 1, ne, LMN_GGML_F32, 0);
  bb_tinfo(b, "second", 1, ne, LMN_GGML_F32, 32);
  bb_pad(b, 32);
  bb_zeros(b, 128);
}
static void c_unknown_type(bb *b) {
  uint64_t ne[1] = {8};
  bb_header(b, 3, 1, 0);
  bb_tinfo(b, "t", 1, ne, 5, 0);
  bb_pad(b, 32);
  bb_zeros(b, 64);
}
static void c_type_99(bb *b) {
  uint64_t ne[1] = {8};
  bb_header(b, 3, 1, 0);
  bb_tinfo(b, "t", 1, ne, 99, 0);
  bb_pad(b, 32);
  bb_zeros(b, 64);
}
static void c_block_multiple(bb *b) {
  uint64_t ne[2] = {31, 2};
  bb_header(b, 3, 1, 0);
  bb_tinfo(b, "t", 2, ne, LMN_GGML_Q4_0, 0);
  bb_pad(b, 32);
  bb_zeros(b, 64);
}
static void c_dup_key(bb *b) {
  bb_header(b, 3, 0, 3);
  bb_kv_u32(b, "a.b", 1);
  bb_kv_u32(b, "c", 2);
  bb_kv_u32(b, "a.b", 3);
}
static void c_nested(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_str(b, "nest");
  bb_u32(b, LMN_GGUF_ARRAY);
  bb_u32(b, LMN_GGUF_ARRAY);
  bb_u64(b, 1);
  bb_u32(b, LMN_GGUF_UINT8);
  bb_u64(b, 1);
  bb_le(b, 1, 1);
}
static void c_bad_bool(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_str(b, "flag");
  bb_u32(b, LMN_GGUF_BOOL);
  bb_le(b, 2, 1);
}
static void c_bad_bool_array(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_str(b, "flags");
  bb_u32(b, LMN_GGUF_ARRAY);
  bb_u32(b, LMN_GGUF_BOOL);
  bb_u64(b, 3);
  bb_le(b, 0x000100, 3);
  b->p[b->len - 1] = 0xff;
}
static void c_value_type(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_str(b, "k");
  bb_u32(b, 13);
  bb_u64(b, 0);
}
static void c_huge_array(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_str(b, "arr");
  bb_u32(b, LMN_GGUF_ARRAY);
  bb_u32(b, LMN_GGUF_UINT32);
  bb_u64(b, UINT64_C(1) << 62);
  bb_zeros(b, 16);
}
static void c_huge_str_array(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_str(b, "arr");
  bb_u32(b, LMN_GGUF_ARRAY);
  bb_u32(b, LMN_GGUF_STRING);
  bb_u64(b, UINT64_C(1) << 60);
  bb_zeros(b, 16);
}
static void c_five_dims(bb *b) {
  uint64_t ne[5] = {1, 1, 1, 1, 1};
  bb_header(b, 3, 1, 0);
  bb_tinfo(b, "t", 5, ne, LMN_GGML_F32, 0);
  bb_pad(b, 32);
  bb_zeros(b, 32);
}
static void c_long_name(bb *b) {
  uint64_t ne[1] = {1};
  char name[65];
  memset(name, 'n', 64);
  name[64] = 0;
  bb_header(b, 3, 1, 0);
  bb_tinfo(b, name, 1, ne, LMN_GGML_F32, 0);
  bb_pad(b, 32);
  bb_zeros(b, 32);
}
static void c_dup_tensor(bb *b) {
  uint64_t ne[1] = {8};
  bb_header(b, 3, 2, 0);
  bb_tinfo(b, "same", 1, ne, LMN_GGML_F32, 0);
  bb_tinfo(b, "same", 1, ne, LMN_GGML_F32, 32);
  bb_pad(b, 32);
  bb_zeros(b, 64);
}
static void c_misaligned(bb *b) {
  uint64_t ne[1] = {8};
  bb_header(b, 3, 1, 0);
  bb_tinfo(b, "t", 1, ne, LMN_GGML_F32, 4);
  bb_pad(b, 32);
  bb_zeros(b, 64);
}
static void c_align_type(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_str(b, "general.alignment");
  bb_u32(b, LMN_GGUF_UINT64);
  bb_u64(b, 32);
}
static void c_align_pow2(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_kv_u32(b, "general.alignment", 48);
}
static void c_align_zero(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_kv_u32(b, "general.alignment", 0);
}
static void c_dims_overflow(bb *b) {
  uint64_t ne[3] = {UINT64_C(1) << 32, UINT64_C(1) << 31, 2};
  bb_header(b, 3, 1, 0);
  bb_tinfo(b, "t", 3, ne, LMN_GGML_F32, 0);
  bb_pad(b, 32);
}
static void c_zero_dim(bb *b) {
  uint64_t ne[2] = {4, 0};
  bb_header(b, 3, 1, 0);
  bb_tinfo(b, "t", 2, ne, LMN_GGML_F32, 0);
  bb_pad(b, 32);
}
static void c_negative_dim(bb *b) {
  uint64_t ne[1] = {UINT64_MAX};
  bb_header(b, 3, 1, 0);
  bb_tinfo(b, "t", 1, ne, LMN_GGML_F32, 0);
  bb_pad(b, 32);
}
static void c_bytes_overflow(bb *b) {
  uint64_t ne[2] = {UINT64_C(1) << 40, UINT64_C(1) << 22};
  bb_header(b, 3, 1, 0);
  bb_tinfo(b, "t", 2, ne, LMN_GGML_F64, 0);
  bb_pad(b, 32);
}
static void c_key_nul(bb *b) {
  bb_header(b, 3, 0, 1);
  bb_u64(b, 3);
  bb_put(b, "a\0b", 3);
  bb_u32(b, LMN_GGUF_UINT8);
  bb_le(b, 1, 1);
}
static void c_empty(bb *b) { (void)b; }

static const corrupt corrupt_cases[] = {
    {"wrong magic", c_magic, "bad magic"},
    {"version 1", c_v1, "GGUF version 1 is no longer supported"},
    {"version 4", c_v4, "unsupported GGUF version 4"},
    {"big-endian", c_big_endian, "byte-swapped"},
    {"2^60 tensors", c_many_tensors, "tensor count 1152921504606846976 cannot fit"},
    {"2^60 metadata entries", c_many_kvs, "metadata count 1152921504606846976 cannot fit"},
    {"key length past EOF", c_key_len,
     "metadata entry 0: key [offset 32, 1099511627776 bytes] extends past end of file"},
    {"string length past EOF", c_string_len,
     "key 'k': string [offset 45, 100 bytes] extends past end of file (size 50)"},
    {"string length 2^64-1", c_huge_string_len, "extends past end of file"},
    {"tensor past EOF", c_offset_past_end,
     "tensor 'blk.3.attn_q.weight': data [offset 160, 32 bytes] extends past end of file (size 128)"},
    {"tensor offset 2^64-32", c_offset_huge, "past end of file"},
    {"overlapping tensors", c_overlap,
     "tensor 'second': data [offset 160, 64 bytes] overlaps tensor 'first'"},
    {"removed type 5", c_unknown_type, "tensor 't': unknown ggml type 5"},
    {"type 99", c_type_99, "unknown ggml type 99"},
    {"ne[0] not a multiple of 32", c_block_multiple,
     "ne[0] = 31 is not a multiple of the Q4_0 block size 32"},
    {"duplicate key", c_dup_key, "key 'a.b': duplicate key (metadata entries 0 and 2)"},
    {"nested array", c_nested, "key 'nest': nested arrays are not supported"},
    {"bool 2", c_bad_bool, "key 'flag': invalid bool value 2"},
    {"bool 255 in array", c_bad_bool_array, "key 'flags': invalid bool value 255"},
    {"value type 13", c_value_type, "unknown value type 13"},
    {"array of 2^62 u32", c_huge_array, "array of 4611686018427387904 UINT32 values"},
    {"array of 2^60 strings", c_huge_str_array, "array of 1152921504606846976 strings cannot fit"},
    {"5 dimensions", c_five_dims, "5 dimensions (at most 4)"},
    {"64-byte name", c_long_name, "is 64 bytes (at most 63)"},
    {"duplicate tensor", c_dup_tensor, "tensor 'same': duplicate tensor name"},
    {"misaligned offset", c_misaligned, "data offset 4 is not a multiple of the alignment 32"},
    {"alignment as u64", c_align_type, "key 'general.alignment': type UINT64, expected UINT32"},
    {"alignment 48", c_align_pow2, "key 'general.alignment': 48 is not a power of two"},
    {"alignment 0", c_align_zero, "key 'general.alignment': 0 is not a power of two"},
    {"dims product overflow", c_dims_overflow, "element count overflows"},
    {"zero dimension", c_zero_dim, "dimension 1 is 0"},
    {"negative dimension", c_negative_dim, "dimension 0 is 18446744073709551615"},
    {"byte size overflow", c_bytes_overflow, "byte size overflows"},
    {"NUL in key", c_key_nul, "key contains a NUL byte"},
    {"empty file", c_empty, "magic [offset 0, 4 bytes] extends past end of file (size 0)"},
};

static void test_corrupt_table(void) {
  char *dir = tmpdir_new(), path[512];
  for (size_t c = 0; c < sizeof corrupt_cases / sizeof *corrupt_cases; c++) {
    const corrupt *k = &corrupt_cases[c];
    bb b = {0};
    lmn_err e;
    lmn_gguf *g = NULL;
    k->build(&b);
    snprintf(path, sizeof path, "%s/case%zu.gguf", dir, c);
    write_bytes(path, b.p, b.len);
    for (int m = 0; m < 3; m++) {
      int rc = lmn_gguf_open(path, modes[m], &g, &e);
      CU_ASSERT(rc == -1 && g == NULL);
      int ok = strstr(e.msg, k->expect) && strncmp(e.msg, path, strlen(path)) == 0;
      CU_ASSERT(ok);
      if (!ok)
        fprintf(stderr, "\n  case '%s' mode %d\n    got:    %s\n    wanted: %s\n", k->what, m, e.msg,
                k->expect);
      if (rc == 0) lmn_gguf_close(g);
    }
    uint8_t *copy = malloc(b.len ? b.len : 1);
    if (b.len) memcpy(copy, b.p, b.len);
    CU_ASSERT(lmn_gguf_open_mem(copy, b.len, "models/x.gguf", &g, &e) == -1);
    CU_ASSERT(strstr(e.msg, k->expect) != NULL && strncmp(e.msg, "models/x.gguf: ", 15) == 0);
    free(copy);
    free(b.p);
  }
  rm_rf(dir);
  free(dir);
}

static void test_version2_accepted(void) {
  bb b = {0};
  small_valid(&b);
  b.p[4] = 2;
  lmn_err e;
  lmn_gguf *g;
  CU_ASSERT_FATAL(lmn_gguf_open_mem(b.p, b.len, "v2.gguf", &g, &e) == 0);
  CU_ASSERT(lmn_gguf_version(g) == 2 && lmn_gguf_n_tensors(g) == 2 && lmn_gguf_n_kv(g) == 2);
  lmn_gguf_close(g);
  free(b.p);
}

static void test_open_errors(void) {
  lmn_err e;
  lmn_gguf *g;
  CU_ASSERT(lmn_gguf_open("/nonexistent/dir/m.gguf", LMN_GGUF_MMAP, &g, &e) == -1 && g == NULL);
  ASSERT_MSG(e, "/nonexistent/dir/m.gguf: cannot open: No such file or directory");
  CU_ASSERT(lmn_gguf_open("/tmp", LMN_GGUF_META, &g, &e) == -1);
  ASSERT_MSG(e, "/tmp: is a directory, not a regular file");
  CU_ASSERT(lmn_gguf_open(FIX "py_qwen2.gguf.dat", (lmn_gguf_mode)7, &g, &e) == -1);
  ASSERT_MSG(e, "invalid open mode");
}

static void test_accessor_errors(void) {
  bb b = {0};
  small_valid(&b);
  lmn_err e;
  lmn_gguf *g;
  int64_t v;
  double d;
  int flag;
  lmn_gguf_str s;
  CU_ASSERT_FATAL(lmn_gguf_open_mem(b.p, b.len, "m.gguf", &g, &e) == 0);
  CU_ASSERT(lmn_gguf_get_int(g, "k.count", 8, 10, &v, &e) == -1);
  ASSERT_MSG(e, "m.gguf: key 'k.count': value 7 out of range [8, 10]");
  CU_ASSERT(lmn_gguf_get_int(g, "k.list", 0, 10, &v, &e) == -1);
  ASSERT_MSG(e, "key 'k.list': type ARRAY of STRING, expected an integer");
  CU_ASSERT(lmn_gguf_get_str(g, "k.count", &s, &e) == -1);
  ASSERT_MSG(e, "key 'k.count': type UINT32, expected STRING");
  CU_ASSERT(lmn_gguf_get_bool(g, "k.count", &flag, &e) == -1);
  CU_ASSERT(lmn_gguf_get_float(g, "k.list", &d, &e) == -1);
  CU_ASSERT(lmn_gguf_get_float(g, "absent", &d, &e) == -1);
  ASSERT_MSG(e, "m.gguf: key 'absent' is missing");
  CU_ASSERT(lmn_gguf_get_arr_str(g, "k.list", 2, &s, &e) == -1);
  ASSERT_MSG(e, "index 2 out of range (array of 2)");
  CU_ASSERT(lmn_gguf_get_arr_int(g, "k.list", 0, &v, &e) == -1);
  CU_ASSERT(lmn_gguf_get_arr_float(g, "k.list", 0, &d, &e) == -1);
  CU_ASSERT(lmn_gguf_get_arr_str(g, "k.count", 0, &s, &e) == -1);
  CU_ASSERT(lmn_gguf_get_arr_str(g, "k.list", 1, &s, &e) == 0 && s.len == 1 && s.s[0] == 'z');
  const lmn_gguf_tensor *t = lmn_gguf_find_tensor(g, "b");
  CU_ASSERT_FATAL(t != NULL);
  CU_ASSERT(t->type == LMN_GGML_Q8_0 && t->nbytes == 68 && t->offset == 32);
  CU_ASSERT(lmn_gguf_tensor_at(g, 2) == NULL && lmn_gguf_kv_at(g, 2) == NULL);
  CU_ASSERT(strcmp(lmn_gguf_vtype_name(LMN_GGUF_FLOAT64), "FLOAT64") == 0 &&
            !strcmp(lmn_gguf_vtype_name(99), "?"));
  lmn_gguf_close(g);
  free(b.p);
}

/* ---------------------------------------------------------------- writer */

static void test_writer_errors(void) {
  lmn_gguf_writer *w;
  lmn_err e;
  float x[64] = {0};
  int64_t ne[2] = {31, 2}, ok_ne[1] = {64}, bad[1] = {0};
  uint8_t two = 2;
  char longname[80];
  memset(longname, 'x', 70);
  longname[70] = 0;
  CU_ASSERT_FATAL(lmn_gguf_writer_new(&w, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_u32(w, "a", 1, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_str(w, "a", "x", &e) == -1);
  ASSERT_MSG(e, "key 'a': duplicate key");
  CU_ASSERT(lmn_gguf_writer_add_u32(w, "general.alignment", 64, &e) == -1);
  CU_ASSERT(lmn_gguf_writer_set_alignment(w, 48, &e) == -1);
  ASSERT_MSG(e, "48 is not a power of two");
  CU_ASSERT(lmn_gguf_writer_add_scalar(w, "b", LMN_GGUF_BOOL, &two, &e) == -1);
  CU_ASSERT(lmn_gguf_writer_add_scalar(w, "s", LMN_GGUF_STRING, "x", &e) == -1);
  CU_ASSERT(lmn_gguf_writer_add_arr(w, "arr", LMN_GGUF_STRING, x, 1, &e) == -1);
  CU_ASSERT(lmn_gguf_writer_add_tensor(w, "q", LMN_GGML_Q4_0, 2, ne, x, &e) == -1);
  ASSERT_MSG(e, "tensor 'q': ne[0] = 31 is not a multiple of 32");
  CU_ASSERT(lmn_gguf_writer_add_tensor(w, "u", 77, 1, ok_ne, x, &e) == -1);
  ASSERT_MSG(e, "unknown ggml type 77");
  CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, longname, 1, ok_ne, x, &e) == -1);
  CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, "z", 1, bad, x, &e) == -1);
  CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, "five", 5, ok_ne, x, &e) == -1);
  CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, "t", 1, ok_ne, x, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, "t", 1, ok_ne, x, &e) == -1);
  ASSERT_MSG(e, "tensor 't': duplicate name");
  lmn_gguf_writer_free(w);
}

static void write_small(const char *path, int64_t n, const float *data, lmn_err *e, int *rc) {
  lmn_gguf_writer *w;
  int64_t ne[1] = {n};
  CU_ASSERT_FATAL(lmn_gguf_writer_new(&w, e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_tensor_f32(w, "t", 1, ne, data, e) == 0);
  *rc = lmn_gguf_writer_write(w, path, e);
  lmn_gguf_writer_free(w);
}

static void test_atomic_write(void) {
  char *dir = tmpdir_new(), path[512], sub[512];
  lmn_err e;
  int rc;
  float small[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  size_t n0, n1;
  snprintf(path, sizeof path, "%s/ckpt.gguf", dir);
  write_small(path, 8, small, &e, &rc);
  CU_ASSERT(rc == 0);
  uint8_t *before = read_bytes(path, &n0);
  /* 1: the write itself fails (file size limit): the old file stays, no temp file is left */
  size_t big_n = 1 << 20;
  float *big = calloc(big_n, sizeof *big);
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = 64 * 1024;
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  CU_ASSERT(setrlimit(RLIMIT_FSIZE, &lim) == 0);
  write_small(path, (int64_t)big_n, big, &e, &rc);
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, prev);
  CU_ASSERT(rc == -1);
  ASSERT_MSG(e, path);
  uint8_t *after = read_bytes(path, &n1);
  CU_ASSERT(n0 == n1 && memcmp(before, after, n0) == 0);
  CU_ASSERT(count_entries(dir) == 1);
  /* 2: rename fails (target is a directory): temp file removed */
  snprintf(sub, sizeof sub, "%s/adir", dir);
  CU_ASSERT(mkdir(sub, 0755) == 0);
  write_small(sub, 8, small, &e, &rc);
  CU_ASSERT(rc == -1);
  ASSERT_MSG(e, "rename");
  CU_ASSERT(count_entries(dir) == 2);
  /* 3: the directory does not exist */
  write_small("/nonexistent/dir/x.gguf", 8, small, &e, &rc);
  CU_ASSERT(rc == -1);
  ASSERT_MSG(e, "/nonexistent/dir/x.gguf: cannot create temp file");
  free(before);
  free(after);
  free(big);
  rm_rf(dir);
  free(dir);
}

static CU_TestInfo tests[] = {
    {"roundtrip_all_types_all_modes", test_roundtrip_all_modes},
    {"meta_mode_reads_only_header", test_meta_reads_only_header},
    {"hparams_from_written_files", test_hparams_written},
    {"hparams_errors_name_the_key", test_hparams_errors},
    {"python_gguf_writer_llama", test_python_writer_llama},
    {"python_gguf_writer_qwen2_align64", test_python_writer_qwen2},
    {"truncated_at_every_byte", test_truncated_every_byte},
    {"corrupted_files_table", test_corrupt_table},
    {"version_2_accepted", test_version2_accepted},
    {"open_errors", test_open_errors},
    {"accessor_errors", test_accessor_errors},
    {"writer_errors", test_writer_errors},
    {"atomic_write_keeps_old_file", test_atomic_write},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("gguf", tests)
