/* test_data.c: the token data loader: targets are inputs shifted by one, seeded streams are reproducible and
 * resume exactly from a saved state, the validation split is the tail (or a separate file), tokenizers that
 * need more ids than bytes work, and missing, empty and short files fail with their sizes in the message. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "harness.h"

typedef struct tmp {
  char dir[64];
} tmp;

static void tmp_make(tmp *t) {
  snprintf(t->dir, sizeof t->dir, "/tmp/lmn_data_XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(t->dir));
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static void tmp_remove(tmp *t) { nftw(t->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS); }

/* Writes len bytes to dir/name; the full path goes to path. */
static void write_bytes(const tmp *t, const char *name, const void *data, size_t len, char *path,
                        size_t cap) {
  snprintf(path, cap, "%s/%s", t->dir, name);
  FILE *f = fopen(path, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  if (len) CU_ASSERT_EQUAL(fwrite(data, 1, len, f), len);
  fclose(f);
}

/* A test tokenizer whose ids are positions: the text is 5-byte groups "0042 ", each one token (its number).
 */
static long num_encode(const void *self, const char *text, size_t len, int32_t *ids, size_t cap) {
  (void)self;
  size_t n = len / 5;
  for (size_t i = 0; i < n && i < cap; i++) ids[i] = (int32_t)strtol(text + 5 * i, NULL, 10);
  return (long)n;
}

static const char *num_decode(const void *self, int32_t id, size_t *len) {
  (void)self, (void)id;
  *len = 1;
  return "?";
}

static const lmn_tokenizer_ops num_ops = {num_encode, num_decode, NULL};
static const lmn_tokenizer num_tok = {&num_ops, NULL, LMN_TOK_OTHER, 10000, -1, -1};

/* A tokenizer that needs two ids per byte (its high and low nibble), beyond the loader's first guess. */
static long nib_encode(const void *self, const char *text, size_t len, int32_t *ids, size_t cap) {
  (void)self;
  for (size_t i = 0; i < len; i++) {
    if (2 * i < cap) ids[2 * i] = (unsigned char)text[i] >> 4;
    if (2 * i + 1 < cap) ids[2 * i + 1] = (unsigned char)text[i] & 15;
  }
  return (long)(2 * len);
}

static const lmn_tokenizer_ops nib_ops = {nib_encode, num_decode, NULL};
static const lmn_tokenizer nib_tok = {&nib_ops, NULL, LMN_TOK_BPE, 16, -1, -1};
static const lmn_tokenizer small_tok = {&nib_ops, NULL, LMN_TOK_BPE,
                                        8,        -1,   -1}; /* ids up to 15 overflow it */

/* Writes n numbered tokens "0000 0001 ..." to dir/name. */
static void write_numbers(const tmp *t, const char *name, int n, char *path, size_t cap) {
  char *text = malloc((size_t)n * 5 + 1);
  for (int i = 0; i < n; i++) snprintf(text + 5 * i, 6, "%04u ", (unsigned)i % 10000u);
  write_bytes(t, name, text, (size_t)n * 5, path, cap);
  free(text);
}

static int open_numbers(lmn_data *d, const char *train, const char *val, double frac, long T) {
  lmn_data_opts o = {train, val, frac, T, &num_tok};
  lmn_err err = {{0}};
  int rc = lmn_data_open(d, &o, &err);
  if (rc) fprintf(stderr, "\n  open: %s\n", err.msg);
  return rc;
}

static void test_shift_by_one(void) {
  tmp t;
  tmp_make(&t);
  char path[128];
  write_numbers(&t, "n.txt", 1000, path, sizeof path);
  lmn_data d;
  CU_ASSERT_EQUAL_FATAL(open_numbers(&d, path, NULL, 0.1, 16), 0);
  CU_ASSERT_EQUAL(lmn_data_tokens(&d, LMN_SPLIT_TRAIN), 900);
  CU_ASSERT_EQUAL(lmn_data_tokens(&d, LMN_SPLIT_VAL), 100);
  enum { B = 4, T = 16 };
  int32_t in[B * T], tg[B * T];
  lmn_data_state st;
  lmn_data_state_init(&st, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, 5);
  lmn_err err = {{0}};
  for (int k = 0; k < 50; k++) {
    CU_ASSERT_EQUAL_FATAL(lmn_data_next(&d, &st, B, T, in, tg, &err), 0);
    for (int b = 0; b < B; b++) {
      int32_t s = in[b * T];
      CU_ASSERT(s >= 0 && s + T < 900); /* the window stays inside the training part */
      for (int i = 0; i < T; i++) {
        CU_ASSERT_EQUAL(in[b * T + i], s + i);
        CU_ASSERT_EQUAL(tg[b * T + i], s + i + 1);
      }
    }
  }
  CU_ASSERT_EQUAL(st.batches, 50);
  lmn_data_close(&d);
  lmn_data_close(&d);
  tmp_remove(&t);
}

static void test_bytes(void) {
  tmp t;
  tmp_make(&t);
  unsigned char text[600];
  for (int i = 0; i < 600; i++) text[i] = (unsigned char)(i % 256);
  char path[128];
  write_bytes(&t, "b.bin", text, sizeof text, path, sizeof path);
  lmn_tokenizer bytes;
  lmn_tokenizer_init_bytes(&bytes);
  lmn_data_opts o = {path, NULL, 0.5, 8, &bytes};
  lmn_data d;
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL_FATAL(lmn_data_open(&d, &o, &err), 0);
  CU_ASSERT_PTR_NOT_NULL(d.split[LMN_SPLIT_TRAIN].bytes); /* raw bytes kept, no int32 copy */
  CU_ASSERT_PTR_NULL(d.split[LMN_SPLIT_TRAIN].ids);
  int32_t in[3 * 8], tg[3 * 8];
  lmn_data_state st;
  lmn_data_state_init(&st, LMN_SPLIT_VAL, LMN_ORDER_SEQUENTIAL, 0);
  CU_ASSERT_EQUAL_FATAL(lmn_data_next(&d, &st, 3, 8, in, tg, &err), 0);
  for (int i = 0; i < 24; i++) { /* validation starts at byte 300 (300 % 256 = 44), rows follow each other */
    CU_ASSERT_EQUAL(in[i], (300 + i) % 256);
    CU_ASSERT_EQUAL(tg[i], (301 + i) % 256);
  }
  lmn_data_close(&d);
  o.tok = NULL; /* no tokenizer: bytes too */
  CU_ASSERT_EQUAL_FATAL(lmn_data_open(&d, &o, &err), 0);
  CU_ASSERT_EQUAL(lmn_data_tokens(&d, LMN_SPLIT_TRAIN), 300);
  lmn_data_close(&d);
  tmp_remove(&t);
}

/* Draws k batches of B x T from st into out (k * B * T inputs then as many targets). */
static void draw(const lmn_data *d, lmn_data_state *st, int k, int B, int T, int32_t *out) {
  lmn_err err = {{0}};
  for (int i = 0; i < k; i++) {
    int32_t *in = out + (size_t)i * 2 * B * T;
    CU_ASSERT_EQUAL_FATAL(lmn_data_next(d, st, B, T, in, in + B * T, &err), 0);
  }
}

static void test_determinism_and_resume(void) {
  tmp t;
  tmp_make(&t);
  char path[128];
  write_numbers(&t, "n.txt", 2000, path, sizeof path);
  lmn_data d;
  CU_ASSERT_EQUAL_FATAL(open_numbers(&d, path, NULL, 0.05, 32), 0);
  enum { B = 3, T = 32, K = 6, N = K * 2 * B * T };
  static int32_t a[N], b[N], c[N];
  for (int order = 0; order < 2; order++) {
    lmn_data_state s1, s2, s3;
    lmn_data_state_init(&s1, LMN_SPLIT_TRAIN, (lmn_order)order, 42);
    lmn_data_state_init(&s2, LMN_SPLIT_TRAIN, (lmn_order)order, 42);
    draw(&d, &s1, K, B, T, a);
    draw(&d, &s2, K, B, T, b);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0); /* same seed, same stream */
    CU_ASSERT_EQUAL(memcmp(&s1, &s2, sizeof s1), 0);
    /* a run stopped after 2 batches and resumed from a byte copy of its state sees the same batches 3..6 */
    unsigned char saved[sizeof(lmn_data_state)];
    lmn_data_state_init(&s3, LMN_SPLIT_TRAIN, (lmn_order)order, 42);
    draw(&d, &s3, 2, B, T, c);
    memcpy(saved, &s3, sizeof saved);
    memset(&s3, 0xff, sizeof s3);
    memcpy(&s3, saved, sizeof s3);
    draw(&d, &s3, K - 2, B, T, c + 2 * 2 * B * T);
    CU_ASSERT_EQUAL(memcmp(a, c, sizeof a), 0);
    CU_ASSERT_EQUAL(s3.batches, K);
  }
  lmn_data_state s4, s5;
  lmn_data_state_init(&s4, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, 1);
  lmn_data_state_init(&s5, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, 2);
  draw(&d, &s4, K, B, T, a);
  draw(&d, &s5, K, B, T, b);
  CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof a), 0); /* another seed, another stream */
  CU_ASSERT_EQUAL(sizeof(lmn_data_state), 56);
  lmn_data_close(&d);
  tmp_remove(&t);
}

static void test_sequential_and_val(void) {
  tmp t;
  tmp_make(&t);
  char path[128], vpath[128];
  write_numbers(&t, "n.txt", 100, path, sizeof path);
  lmn_data d;
  CU_ASSERT_EQUAL_FATAL(open_numbers(&d, path, NULL, 0.3, 10), 0);
  CU_ASSERT_EQUAL(lmn_data_tokens(&d, LMN_SPLIT_TRAIN), 70);
  CU_ASSERT_EQUAL(lmn_data_tokens(&d, LMN_SPLIT_VAL), 30);
  CU_ASSERT_EQUAL(lmn_data_windows(&d, LMN_SPLIT_VAL, 10), 2);
  int32_t in[2 * 10], tg[2 * 10];
  lmn_data_state st;
  lmn_err err = {{0}};
  lmn_data_state_init(&st, LMN_SPLIT_VAL, LMN_ORDER_SEQUENTIAL, 0);
  for (int pass = 0; pass < 3; pass++) { /* windows at 70 and 80, then again from the start */
    CU_ASSERT_EQUAL_FATAL(lmn_data_next(&d, &st, 2, 10, in, tg, &err), 0);
    CU_ASSERT_EQUAL(in[0], 70);
    CU_ASSERT_EQUAL(in[10], 80);
    CU_ASSERT_EQUAL(tg[19], 90);
  }
  lmn_data_state_init(&st, LMN_SPLIT_VAL, LMN_ORDER_RANDOM, 9);
  for (int k = 0; k < 40; k++) {
    CU_ASSERT_EQUAL_FATAL(lmn_data_next(&d, &st, 2, 10, in, tg, &err), 0);
    CU_ASSERT(in[0] >= 70 && tg[9] <= 99 && in[10] >= 70 && tg[19] <= 99);
  }
  lmn_data_close(&d);
  /* a separate validation file */
  write_numbers(&t, "v.txt", 12, vpath, sizeof vpath);
  CU_ASSERT_EQUAL_FATAL(open_numbers(&d, path, vpath, 0.0, 10), 0);
  CU_ASSERT_EQUAL(lmn_data_tokens(&d, LMN_SPLIT_TRAIN), 100);
  CU_ASSERT_EQUAL(lmn_data_tokens(&d, LMN_SPLIT_VAL), 12);
  CU_ASSERT_STRING_EQUAL(d.split[LMN_SPLIT_VAL].path, vpath);
  lmn_data_state_init(&st, LMN_SPLIT_VAL, LMN_ORDER_SEQUENTIAL, 0);
  CU_ASSERT_EQUAL_FATAL(lmn_data_next(&d, &st, 2, 10, in, tg, &err), 0);
  CU_ASSERT_EQUAL(in[0], 0);
  CU_ASSERT_EQUAL(in[10], 0); /* only one window of 11 fits in 12 tokens */
  lmn_data_close(&d);
  tmp_remove(&t);
}

static void test_more_ids_than_bytes(void) {
  tmp t;
  tmp_make(&t);
  char path[128];
  const char *text = "hello, world! hello, world!";
  write_bytes(&t, "h.txt", text, strlen(text), path, sizeof path);
  lmn_data_opts o = {path, NULL, 0.5, 4, &nib_tok};
  lmn_data d;
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL_FATAL(lmn_data_open(&d, &o, &err), 0);
  CU_ASSERT_EQUAL(lmn_data_tokens(&d, LMN_SPLIT_TRAIN) + lmn_data_tokens(&d, LMN_SPLIT_VAL),
                  2 * strlen(text));
  CU_ASSERT_EQUAL(d.split[LMN_SPLIT_TRAIN].ids[0], 'h' >> 4);
  CU_ASSERT_EQUAL(d.split[LMN_SPLIT_TRAIN].ids[1], 'h' & 15);
  lmn_data_close(&d);
  o.tok = &small_tok;
  CU_ASSERT_EQUAL(lmn_data_open(&d, &o, &err), -1);
  char want[256];
  snprintf(want, sizeof want, "%s: the tokenizer produced id 8 outside its vocabulary of 8 (token 1)", path);
  CU_ASSERT_STRING_EQUAL(err.msg, want);
  tmp_remove(&t);
}

static void expect_open_error(const lmn_data_opts *o, const char *want) {
  lmn_data d;
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL(lmn_data_open(&d, o, &err), -1);
  if (strcmp(err.msg, want)) fprintf(stderr, "\n  got:  %s\n  want: %s\n", err.msg, want);
  CU_ASSERT_STRING_EQUAL(err.msg, want);
  CU_ASSERT_PTR_NULL(d.buf[0]);
  lmn_data_close(&d);
}

static void test_errors(void) {
  tmp t;
  tmp_make(&t);
  char missing[128], empty[128], shrt[128], want[512], okp[128];
  snprintf(missing, sizeof missing, "%s/missing.txt", t.dir);
  write_bytes(&t, "empty.txt", "", 0, empty, sizeof empty);
  write_bytes(&t, "short.txt", "0123456789", 10, shrt, sizeof shrt);
  write_numbers(&t, "ok.txt", 100, okp, sizeof okp);
  lmn_data_opts o = {missing, NULL, 0.05, 16, NULL};
  snprintf(want, sizeof want, "%s: cannot open: No such file or directory", missing);
  expect_open_error(&o, want);
  o.train_path = empty;
  snprintf(want, sizeof want, "%s: empty file", empty);
  expect_open_error(&o, want);
  o.train_path = shrt;
  snprintf(want, sizeof want,
           "%s: too short: 10 tokens (10 bytes) but one sequence of seq_len 16 needs 17 tokens", shrt);
  expect_open_error(&o, want);
  o.train_path = okp; /* 500 bytes: the 5% tail holds 25, too few for seq_len 30 */
  o.seq_len = 30;
  snprintf(
      want, sizeof want,
      "%s: the validation tail (val_fraction 0.05) holds 25 of 500 tokens but one sequence of seq_len 30 "
      "needs 31; change val_fraction or give a separate val file",
      okp);
  expect_open_error(&o, want);
  o.val_fraction = 0.95;
  snprintf(want, sizeof want,
           "%s: the training part (val_fraction 0.95) holds 25 of 500 tokens but one sequence of seq_len 30 "
           "needs 31; change val_fraction or give a separate val file",
           okp);
  expect_open_error(&o, want);
  o.val_path = shrt;
  o.seq_len = 16;
  snprintf(want, sizeof want,
           "%s: too short: 10 tokens (10 bytes) but one sequence of seq_len 16 needs 17 tokens", shrt);
  expect_open_error(&o, want);
  o.val_path = NULL;
  o.val_fraction = 1.5;
  expect_open_error(&o, "data: val_fraction must be in (0, 1), got 1.5");
  o.train_path = t.dir;
  o.val_fraction = 0.1;
  snprintf(want, sizeof want, "%s: is a directory", t.dir);
  expect_open_error(&o, want);
  tmp_remove(&t);
}

static void test_bad_requests(void) {
  tmp t;
  tmp_make(&t);
  char path[128];
  write_numbers(&t, "n.txt", 100, path, sizeof path);
  lmn_data d;
  CU_ASSERT_EQUAL_FATAL(open_numbers(&d, path, NULL, 0.2, 8), 0);
  int32_t in[64], tg[64];
  lmn_data_state st;
  lmn_err err = {{0}};
  lmn_data_state_init(&st, LMN_SPLIT_VAL, LMN_ORDER_RANDOM, 1);
  lmn_data_state before = st;
  char want[256];
  CU_ASSERT_EQUAL(lmn_data_next(&d, &st, 1, 20, in, tg, &err), -1); /* 20 + 1 > 20 validation tokens */
  snprintf(want, sizeof want, "%s: the validation split holds 20 tokens but one sequence of 20 needs 21",
           path);
  CU_ASSERT_STRING_EQUAL(err.msg, want);
  CU_ASSERT_EQUAL(memcmp(&st, &before, sizeof st), 0);
  CU_ASSERT_EQUAL(lmn_data_next(&d, &st, 0, 8, in, tg, &err), -1);
  CU_ASSERT_STRING_EQUAL(err.msg, "data: invalid batch shape 0 x 8");
  st.split = 7; /* a corrupt checkpoint */
  CU_ASSERT_EQUAL(lmn_data_next(&d, &st, 1, 8, in, tg, &err), -1);
  CU_ASSERT_STRING_EQUAL(err.msg, "data: invalid stream state (split 7, order 0)");
  lmn_data_state_init(&st, LMN_SPLIT_TRAIN, LMN_ORDER_SEQUENTIAL, 0);
  st.pos = UINT64_MAX; /* out of range: starts over */
  CU_ASSERT_EQUAL(lmn_data_next(&d, &st, 1, 8, in, tg, &err), 0);
  CU_ASSERT_EQUAL(in[0], 0);
  lmn_data_close(&d);
  tmp_remove(&t);
}

static CU_TestInfo tests[] = {
    {"targets are inputs shifted by one", test_shift_by_one},
    {"byte tokenizer keeps raw bytes", test_bytes},
    {"seeded streams repeat and resume exactly", test_determinism_and_resume},
    {"sequential order and validation split", test_sequential_and_val},
    {"tokenizer with more ids than bytes", test_more_ids_than_bytes},
    {"missing, empty and short files", test_errors},
    {"bad batch requests and states", test_bad_requests},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("data", tests)
