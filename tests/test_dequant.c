/* test_dequant.c: dequantisation of every supported ggml type against fixtures made by an outside
 * implementation (the Python gguf package, tests/reference/make_quant_fixtures.py), fp16/bf16 conversion
 * (exhaustively against the compiler's _Float16 where available), the type table, row sizes, and loading
 * whole tensors with shape checks. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dequant.h"
#include "gguf.h"
#include "harness.h"

#define FIX "tests/fixtures/quant/"

typedef struct fixture {
  uint32_t type, n, nbytes;
  uint8_t *raw;
  float *expected;
} fixture;

/* Reads FIX/name.dat: "LMNQFIX1", u32 type, n, nbytes, 0, raw bytes, n expected f32. */
static int load_fixture(const char *name, fixture *fx) {
  char path[256];
  snprintf(path, sizeof path, FIX "%s.dat", name);
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  uint8_t hdr[24];
  int rc = -1;
  if (fread(hdr, 1, 24, f) == 24 && memcmp(hdr, "LMNQFIX1", 8) == 0) {
    memcpy(&fx->type, hdr + 8, 4);
    memcpy(&fx->n, hdr + 12, 4);
    memcpy(&fx->nbytes, hdr + 16, 4);
    fx->raw = malloc(fx->nbytes); /* exact size: ASan catches any over-read */
    fx->expected = malloc(4 * (size_t)fx->n);
    if (fread(fx->raw, 1, fx->nbytes, f) == fx->nbytes && fread(fx->expected, 4, fx->n, f) == fx->n) rc = 0;
  }
  fclose(f);
  return rc;
}

static void free_fixture(fixture *fx) {
  free(fx->raw);
  free(fx->expected);
}

static int same_float(float a, float b) { return (isnan(a) && isnan(b)) || memcmp(&a, &b, 4) == 0; }

/* Whole row, then block by block, must equal the outside implementation bit for bit. */
static void check_fixture(const char *name, uint32_t type) {
  fixture fx = {0};
  lmn_err e;
  int rc = load_fixture(name, &fx);
  CU_ASSERT_FATAL(rc == 0);
  CU_ASSERT(fx.type == type);
  uint64_t bytes;
  CU_ASSERT(lmn_ggml_row_size(type, fx.n, &bytes, &e) == 0 && bytes == fx.nbytes);
  float *out = malloc(4 * (size_t)fx.n);
  CU_ASSERT(lmn_dequant_row(type, fx.raw, out, fx.n, &e) == 0);
  int bad = 0;
  for (uint32_t i = 0; i < fx.n; i++) {
    if (!same_float(out[i], fx.expected[i]) && bad++ < 4)
      fprintf(stderr, "\n  %s[%u]: got %.9g want %.9g", name, i, out[i], fx.expected[i]);
  }
  CU_ASSERT(bad == 0);
  uint32_t blck, bsize;
  CU_ASSERT(lmn_ggml_type_size(type, &blck, &bsize, &e) == 0);
  for (uint32_t b = 0; b < fx.n / blck; b++) {
    CU_ASSERT(lmn_dequant_row(type, fx.raw + b * bsize, out, blck, &e) == 0);
    for (uint32_t i = 0; i < blck; i++) bad += !same_float(out[i], fx.expected[b * blck + i]);
  }
  CU_ASSERT(bad == 0);
  free(out);
  free_fixture(&fx);
}

#define FIXTURE_TEST(lower, upper) \
  static void test_fixture_##lower(void) { check_fixture(#lower, LMN_GGML_##upper); }
FIXTURE_TEST(f32, F32)
FIXTURE_TEST(f16, F16)
FIXTURE_TEST(bf16, BF16)
FIXTURE_TEST(q8_0, Q8_0)
FIXTURE_TEST(q4_0, Q4_0)
FIXTURE_TEST(q4_1, Q4_1)
FIXTURE_TEST(q5_0, Q5_0)
FIXTURE_TEST(q5_1, Q5_1)
FIXTURE_TEST(q4_k, Q4_K)
FIXTURE_TEST(q5_k, Q5_K)
FIXTURE_TEST(q6_k, Q6_K)

/* The hand vectors of formats.md §1.3. */
static void test_hand_vectors(void) {
  uint8_t q4_0[18], q8_0[34], q4_1[20];
  float y[32];
  lmn_err e;
  q4_0[0] = 0x00, q4_0[1] = 0x3c;
  memset(q4_0 + 2, 0x98, 16);
  CU_ASSERT(lmn_dequant_row(LMN_GGML_Q4_0, q4_0, y, 32, &e) == 0);
  for (int j = 0; j < 32; j++) CU_ASSERT(y[j] == (j < 16 ? 0.0f : 1.0f));
  q8_0[0] = 0x00, q8_0[1] = 0x38;
  for (int j = 0; j < 32; j++) q8_0[2 + j] = (uint8_t)(int8_t)(j - 16);
  CU_ASSERT(lmn_dequant_row(LMN_GGML_Q8_0, q8_0, y, 32, &e) == 0);
  for (int j = 0; j < 32; j++) CU_ASSERT(y[j] == (j - 16) / 2.0f);
  q4_1[0] = 0x00, q4_1[1] = 0x3c, q4_1[2] = 0x00, q4_1[3] = 0xbc;
  memset(q4_1 + 4, 0x21, 16);
  CU_ASSERT(lmn_dequant_row(LMN_GGML_Q4_1, q4_1, y, 32, &e) == 0);
  for (int j = 0; j < 32; j++) CU_ASSERT(y[j] == (j < 16 ? 0.0f : 1.0f));
}

static void test_fp16_special_values(void) {
  CU_ASSERT(lmn_fp16_to_f32(0x3c00) == 1.0f);
  CU_ASSERT(lmn_fp16_to_f32(0xc000) == -2.0f);
  CU_ASSERT(lmn_fp16_to_f32(0x7bff) == 65504.0f);
  CU_ASSERT(lmn_fp16_to_f32(0x0001) == ldexpf(1.0f, -24));
  CU_ASSERT(lmn_fp16_to_f32(0x03ff) == ldexpf(1023.0f, -24));
  CU_ASSERT(lmn_fp16_to_f32(0x0400) == ldexpf(1.0f, -14));
  float nz = lmn_fp16_to_f32(0x8000);
  CU_ASSERT(nz == 0.0f && signbit(nz));
  CU_ASSERT(isinf(lmn_fp16_to_f32(0x7c00)) && lmn_fp16_to_f32(0x7c00) > 0);
  CU_ASSERT(isinf(lmn_fp16_to_f32(0xfc00)) && lmn_fp16_to_f32(0xfc00) < 0);
  CU_ASSERT(isnan(lmn_fp16_to_f32(0x7e00)) && isnan(lmn_fp16_to_f32(0xfc01)));
  CU_ASSERT(lmn_bf16_to_f32(0x3f80) == 1.0f && lmn_bf16_to_f32(0xc040) == -3.0f);
  CU_ASSERT(isinf(lmn_bf16_to_f32(0x7f80)) && isnan(lmn_bf16_to_f32(0x7fc1)));
  CU_ASSERT(lmn_f32_to_fp16(1.0f) == 0x3c00 && lmn_f32_to_fp16(-2.0f) == 0xc000);
  CU_ASSERT(lmn_f32_to_fp16(65520.0f) == 0x7c00 && lmn_f32_to_fp16(65519.0f) == 0x7bff);
  CU_ASSERT(lmn_f32_to_fp16(ldexpf(1.0f, -25)) == 0x0000); /* ties to even: 0 */
  CU_ASSERT(lmn_f32_to_fp16(ldexpf(1.5f, -25)) == 0x0001);
  CU_ASSERT((lmn_f32_to_fp16(NAN) & 0x7c00) == 0x7c00 && (lmn_f32_to_fp16(NAN) & 0x3ff) != 0);
}

/* Every fp16 bit pattern: round trip, and agreement with the compiler's _Float16 where it has one. */
static void test_fp16_exhaustive(void) {
  int bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    float f = lmn_fp16_to_f32((uint16_t)h);
    int nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
    if (nan != isnan(f)) bad++;
    if (!nan && lmn_f32_to_fp16(f) != h) bad++;
#ifdef __FLT16_MAX__
    _Float16 x;
    memcpy(&x, &h, 2);
    if (!same_float((float)x, f)) bad++;
#endif
  }
  CU_ASSERT(bad == 0);
#ifdef __FLT16_MAX__
  uint32_t s = 12345;
  for (int i = 0; i < 200000; i++) { /* f32 -> fp16 rounding against the compiler */
    s = s * 1664525u + 1013904223u;
    float f;
    uint32_t bits = s;
    memcpy(&f, &bits, 4);
    if (isnan(f)) continue;
    _Float16 x = (_Float16)f;
    uint16_t want;
    memcpy(&want, &x, 2);
    bad += lmn_f32_to_fp16(f) != want;
  }
  CU_ASSERT(bad == 0);
#endif
}

static void test_type_table(void) {
  lmn_err e;
  uint32_t blck, bytes;
  uint64_t rb;
  CU_ASSERT(!strcmp(lmn_ggml_type_name(LMN_GGML_Q4_K), "Q4_K") && !strcmp(lmn_ggml_type_name(30), "BF16"));
  CU_ASSERT(lmn_ggml_type_name(4) == NULL && lmn_ggml_type_name(31) == NULL &&
            lmn_ggml_type_name(1000) == NULL);
  struct {
    uint32_t type, blck, bytes;
  } want[] = {{0, 1, 4},    {1, 1, 2},      {2, 32, 18},    {3, 32, 20},    {6, 32, 22},    {7, 32, 24},
              {8, 32, 34},  {12, 256, 144}, {13, 256, 176}, {14, 256, 210}, {30, 1, 2},     {16, 256, 66},
              {20, 32, 18}, {39, 32, 17},   {10, 256, 84},  {11, 256, 110}, {23, 256, 136}, {28, 1, 8}};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    CU_ASSERT(lmn_ggml_type_size(want[i].type, &blck, &bytes, &e) == 0);
    CU_ASSERT(blck == want[i].blck && bytes == want[i].bytes);
  }
  CU_ASSERT(lmn_ggml_type_size(5, &blck, &bytes, &e) == -1);
  CU_ASSERT(strstr(e.msg, "unknown ggml type 5") != NULL);
  CU_ASSERT(lmn_ggml_can_dequant(LMN_GGML_Q6_K) && !lmn_ggml_can_dequant(LMN_GGML_Q2_K) &&
            !lmn_ggml_can_dequant(99));
  CU_ASSERT(lmn_ggml_row_size(LMN_GGML_Q4_K, 576, &rb, &e) == -1); /* 576 is not a multiple of 256 */
  CU_ASSERT(strstr(e.msg, "not a whole number of Q4_K blocks of 256") != NULL);
  CU_ASSERT(lmn_ggml_row_size(LMN_GGML_Q4_1, 576, &rb, &e) == 0 && rb == 576 / 32 * 20);
  CU_ASSERT(lmn_ggml_row_size(LMN_GGML_F32, INT64_MAX, &rb, &e) == -1);
  CU_ASSERT(strstr(e.msg, "overflows") != NULL);
  CU_ASSERT(lmn_ggml_row_size(LMN_GGML_F32, -1, &rb, &e) == -1);
  CU_ASSERT(lmn_ggml_row_size(LMN_GGML_F32, 0, &rb, &e) == 0 && rb == 0);
}

static void test_row_errors(void) {
  uint8_t raw[210] = {0};
  float y[256];
  lmn_err e;
  CU_ASSERT(lmn_dequant_row(LMN_GGML_Q8_0, raw, y, 33, &e) == -1);
  CU_ASSERT(strstr(e.msg, "not a whole number of Q8_0 blocks") != NULL);
  CU_ASSERT(lmn_dequant_row(LMN_GGML_Q2_K, raw, y, 256, &e) == -1);
  CU_ASSERT(strstr(e.msg, "dequantisation of type Q2_K is not supported") != NULL);
  CU_ASSERT(lmn_dequant_row(77, raw, y, 256, &e) == -1);
  CU_ASSERT(lmn_dequant_row(LMN_GGML_Q6_K, raw, y, 0, &e) == 0);
}

/* lmn_gguf_load_f32 over a file with quantised tensors, in every open mode. */
static void test_load_tensor(void) {
  fixture q8 = {0}, q6 = {0};
  CU_ASSERT_FATAL(load_fixture("q8_0", &q8) == 0 && load_fixture("q6_k", &q6) == 0);
  char dir[] = "/tmp/lmn_dq_XXXXXX", path[256];
  CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/q.gguf", dir);
  lmn_gguf_writer *w;
  lmn_err e;
  uint8_t q2k[84 * 2] = {0};
  int64_t ne_q8[2] = {64, 16}, ne_q6[2] = {512, 2}, ne_q2[1] = {512};
  CU_ASSERT_FATAL(lmn_gguf_writer_new(&w, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_tensor(w, "w8", LMN_GGML_Q8_0, 2, ne_q8, q8.raw, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_tensor(w, "w6", LMN_GGML_Q6_K, 2, ne_q6, q6.raw, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_add_tensor(w, "w2", LMN_GGML_Q2_K, 1, ne_q2, q2k, &e) == 0);
  CU_ASSERT(lmn_gguf_writer_write(w, path, &e) == 0);
  lmn_gguf_writer_free(w);
  lmn_gguf_mode modes[3] = {LMN_GGUF_MMAP, LMN_GGUF_READ, LMN_GGUF_META};
  float *out = calloc(1024, sizeof *out);
  for (int m = 0; m < 3; m++) {
    lmn_gguf *g;
    CU_ASSERT_FATAL(lmn_gguf_open(path, modes[m], &g, &e) == 0);
    CU_ASSERT(lmn_gguf_load_f32(g, "w8", 64, 16, out, &e) == 0);
    CU_ASSERT(memcmp(out, q8.expected, 1024 * 4) == 0);
    CU_ASSERT(lmn_gguf_load_f32(g, "w6", 512, 2, out, &e) == 0);
    CU_ASSERT(memcmp(out, q6.expected, 1024 * 4) == 0);
    CU_ASSERT(lmn_gguf_load_f32(g, "w8", 16, 64, out, &e) == -1);
    CU_ASSERT(strstr(e.msg, "q.gguf: tensor 'w8': shape {64, 16}, expected {16, 64}") != NULL);
    CU_ASSERT(lmn_gguf_load_f32(g, "w8", 1024, 1, out, &e) == -1);
    CU_ASSERT(strstr(e.msg, "tensor 'w8': shape {64, 16}, expected {1024}") != NULL);
    CU_ASSERT(lmn_gguf_load_f32(g, "w2", 512, 1, out, &e) == -1);
    CU_ASSERT(strstr(e.msg, "tensor 'w2': type Q2_K cannot be dequantised") != NULL);
    CU_ASSERT(lmn_gguf_load_f32(g, "nope", 1, 1, out, &e) == -1);
    CU_ASSERT(strstr(e.msg, "tensor 'nope' not found") != NULL);
    lmn_gguf_close(g);
  }
  free(out);
  unlink(path);
  rmdir(dir);
  free_fixture(&q8);
  free_fixture(&q6);
}

static CU_TestInfo tests[] = {
    {"fixture_f32", test_fixture_f32},
    {"fixture_f16", test_fixture_f16},
    {"fixture_bf16", test_fixture_bf16},
    {"fixture_q8_0", test_fixture_q8_0},
    {"fixture_q4_0", test_fixture_q4_0},
    {"fixture_q4_1", test_fixture_q4_1},
    {"fixture_q5_0", test_fixture_q5_0},
    {"fixture_q5_1", test_fixture_q5_1},
    {"fixture_q4_k", test_fixture_q4_k},
    {"fixture_q5_k", test_fixture_q5_k},
    {"fixture_q6_k", test_fixture_q6_k},
    {"hand_vectors", test_hand_vectors},
    {"fp16_special_values", test_fp16_special_values},
    {"fp16_exhaustive", test_fp16_exhaustive},
    {"type_table_and_row_sizes", test_type_table},
    {"row_errors", test_row_errors},
    {"load_tensor_shapes_and_modes", test_load_tensor},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("dequant", tests)
