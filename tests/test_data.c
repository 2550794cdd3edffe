/* test_data.c: the token data loader: targets are inputs shifted by one, seeded streams are reproducible and
 * resume exactly from a saved state, the validation split is the tail (or a separate file), tokenizers that
 * need more ids than bytes work, and missing, empty and short files fail with their sizes in the message.
 * Labelled data (classification): the fixture tests/fixtures/classify/toy.tsv reads back line by line, texts
 * are cut at the front and left-padded, each training epoch is a seeded permutation that resumes exactly, and
 * malformed files fail naming file:line; arbitrary bytes never crash the parser. */
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

/* A training split that makes no token (one byte, half of it for validation), whole and in chunks of one
 * byte, in memory and through the cache file: the same answer (found by fuzz_tokens under UBSan). */
static void test_split_without_tokens(void) {
  tmp t;
  tmp_make(&t);
  char path[128];
  write_bytes(&t, "one.txt", "\xc0", 1, path, sizeof path);
  lmn_data_opts o = {path, NULL, 0.5, 1, &nib_tok};
  lmn_data whole, cut;
  lmn_err ew = {{0}}, ec = {{0}};
  int rw = lmn_data_open(&whole, &o, &ew);
  for (size_t memory = 0; memory <= 8; memory += 8) {
    int rc = lmn_data_open_tuned(&cut, &o, 0, 1, memory, &ec);
    CU_ASSERT_EQUAL(rc, rw);
    if (rc) {
      CU_ASSERT_STRING_EQUAL(ec.msg, ew.msg);
      continue;
    }
    CU_ASSERT_EQUAL(lmn_data_tokens(&cut, LMN_SPLIT_TRAIN), lmn_data_tokens(&whole, LMN_SPLIT_TRAIN));
    lmn_data_close(&cut);
  }
  if (rw == 0) lmn_data_close(&whole);
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
  snprintf(want, sizeof want, "%s: is a directory, not a regular file", t.dir);
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

/* ---- labelled data ------------------------------------------------------------------------------- */

#define TOY "tests/fixtures/classify/toy.tsv"

static int open_labelled(lmn_data *d, const char *train, const char *val, double frac, long T,
                         const lmn_tokenizer *tok, lmn_err *err) {
  lmn_data_opts o = {train, val, frac, T, tok};
  return lmn_data_open_classes(d, &o, 4, err);
}

/* Row r of a batch of width T: pad (0) tokens, then the text's bytes; returns the text (NUL-terminated). */
static int row_text(const int32_t *row, int T, char *text) {
  int t = 0, n = 0;
  while (t < T && row[t] == 0) t++;
  for (; t < T; t++) {
    if (row[t] <= 0 || row[t] > 255) return -1;
    text[n++] = (char)row[t];
  }
  text[n] = '\0';
  return n;
}

/* Serves every line of the fixture (training split, then validation) and compares it with the file. */
static void test_labelled_fixture(void) {
  lmn_tokenizer bytes;
  lmn_tokenizer_init_bytes(&bytes);
  lmn_data d;
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL_FATAL(open_labelled(&d, TOY, NULL, 0.1, 128, &bytes, &err), 0);
  CU_ASSERT_EQUAL(lmn_data_examples(&d, LMN_SPLIT_TRAIN), 360);
  CU_ASSERT_EQUAL(lmn_data_examples(&d, LMN_SPLIT_VAL), 40); /* the last 10% */
  CU_ASSERT_EQUAL(lmn_data_windows(&d, LMN_SPLIT_VAL, 16), 40);
  CU_ASSERT_EQUAL(d.pad, 0);
  CU_ASSERT_PTR_NOT_NULL(d.split[LMN_SPLIT_TRAIN].bytes); /* raw bytes stay in the file's buffer */
  FILE *f = fopen(TOY, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  static const char *const keywords[4] = {"jazz", "quiver", "wok", "yoga"};
  enum { T = 96 };
  int32_t row[T], label;
  char line[256], text[T + 1];
  lmn_data_state st[2];
  lmn_data_state_init(&st[0], LMN_SPLIT_TRAIN, LMN_ORDER_SEQUENTIAL, 0);
  lmn_data_state_init(&st[1], LMN_SPLIT_VAL, LMN_ORDER_SEQUENTIAL, 0);
  int n = 0;
  for (; fgets(line, sizeof line, f); n++) {
    line[strcspn(line, "\n")] = '\0';
    CU_ASSERT_EQUAL_FATAL(lmn_data_next(&d, &st[n >= 360], 1, T, row, &label, &err), 0);
    CU_ASSERT_EQUAL(row[T - 1], (unsigned char)line[strlen(line) - 1]); /* the last token is last */
    CU_ASSERT(row_text(row, T, text) > 0);
    CU_ASSERT_STRING_EQUAL(text, line + 2);
    CU_ASSERT_EQUAL(label, line[0] - '0');
    CU_ASSERT(label >= 0 && label < 4 && strstr(text, keywords[label]));
  }
  fclose(f);
  CU_ASSERT_EQUAL(n, 400);
  lmn_data_close(&d);
}

/* Writes a labelled file (len bytes of text) to dir/name. */
static void write_tsv(const tmp *t, const char *name, const char *text, size_t len, char *path, size_t cap) {
  write_bytes(t, name, text, len, path, cap);
}

static void expect_rows(const lmn_data *d, lmn_split split, int B, int T, const int32_t *want_rows,
                        const int32_t *want_labels) {
  int32_t in[64], lab[8];
  lmn_data_state st;
  lmn_err err = {{0}};
  lmn_data_state_init(&st, split, LMN_ORDER_SEQUENTIAL, 0);
  CU_ASSERT_EQUAL_FATAL(lmn_data_next(d, &st, B, T, in, lab, &err), 0);
  CU_ASSERT_EQUAL(memcmp(in, want_rows, (size_t)(B * T) * sizeof *in), 0);
  CU_ASSERT_EQUAL(memcmp(lab, want_labels, (size_t)B * sizeof *lab), 0);
}

static void test_pad_and_truncate(void) {
  tmp t;
  tmp_make(&t);
  static const char text[] =
      "\xEF\xBB\xBF"
      "1\tabc\n0\t0123456789\r\n\n2\txy\r\n3\ta\tb";
  char path[128], vpath[128];
  write_tsv(&t, "p.tsv", text, sizeof text - 1, path, sizeof path);
  write_tsv(&t, "v.tsv", "+0\tq\n", 5, vpath, sizeof vpath);
  lmn_tokenizer bytes;
  lmn_tokenizer_init_bytes(&bytes);
  lmn_data d;
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL_FATAL(open_labelled(&d, path, vpath, 0.0, 4, &bytes, &err), 0); /* keeps 4 tokens */
  CU_ASSERT_EQUAL(lmn_data_examples(&d, LMN_SPLIT_TRAIN), 4);
  CU_ASSERT_EQUAL(lmn_data_examples(&d, LMN_SPLIT_VAL), 1);
  CU_ASSERT_EQUAL(lmn_data_tokens(&d, LMN_SPLIT_TRAIN), 3 + 4 + 2 + 3);
  const int32_t labels[] = {1, 0, 2, 3, 1};
  const int32_t t4[] = {0,   'a', 'b', 'c', '6',  '7', '8', '9', 0,   0,
                        'x', 'y', 0,   'a', '\t', 'b', 0,   'a', 'b', 'c'};
  expect_rows(&d, LMN_SPLIT_TRAIN, 5, 4, t4, labels); /* the fifth row starts the file again */
  const int32_t t2[] = {'b', 'c', '8', '9', 'x', 'y', '\t', 'b'};
  expect_rows(&d, LMN_SPLIT_TRAIN, 4, 2, t2, labels);
  const int32_t t6[] = {0, 0, 0, 'a', 'b', 'c', 0, 0, '6', '7', '8', '9'};
  expect_rows(&d, LMN_SPLIT_TRAIN, 2, 6, t6, labels);
  const int32_t v3[] = {0, 0, 'q'}, v_label[] = {0};
  expect_rows(&d, LMN_SPLIT_VAL, 1, 3, v3, v_label);
  lmn_data_close(&d);
  /* a tokenizer of two ids per byte keeps the last 3 ids; the pad is its EOS when it has one */
  CU_ASSERT_EQUAL_FATAL(open_labelled(&d, path, vpath, 0.0, 3, &nib_tok, &err), 0);
  CU_ASSERT_EQUAL(d.pad, 0);
  const int32_t n4[] = {0, 'b' & 15, 'c' >> 4, 'c' & 15};
  expect_rows(&d, LMN_SPLIT_TRAIN, 1, 4, n4, labels);
  lmn_data_close(&d);
  lmn_tokenizer eos_tok = nib_tok;
  eos_tok.eos = 15;
  CU_ASSERT_EQUAL_FATAL(open_labelled(&d, path, vpath, 0.0, 3, &eos_tok, &err), 0);
  CU_ASSERT_EQUAL(d.pad, 15);
  const int32_t xy[] = {15, 15, 15, 'x' & 15, 'y' >> 4, 'y' & 15};
  lmn_data_state st;
  lmn_data_state_init(&st, LMN_SPLIT_TRAIN, LMN_ORDER_SEQUENTIAL, 0);
  st.pos = 2; /* the third example */
  int32_t in[6], lab[1];
  CU_ASSERT_EQUAL_FATAL(lmn_data_next(&d, &st, 1, 6, in, lab, &err), 0);
  CU_ASSERT_EQUAL(memcmp(in, xy, sizeof xy), 0);
  CU_ASSERT_EQUAL(lab[0], 2);
  lmn_data_close(&d);
  tmp_remove(&t);
}

/* A file of n lines "label<TAB>i" (label = i % 4), all of them training examples (a separate val file). */
static void open_numbered(const tmp *t, int n, lmn_data *d) {
  char *text = malloc((size_t)n * 16 + 1), path[128], vpath[128];
  size_t len = 0;
  for (int i = 0; i < n; i++) len += (size_t)sprintf(text + len, "%d\t%d\n", i % 4, i);
  write_tsv(t, "n.tsv", text, len, path, sizeof path);
  write_tsv(t, "v.tsv", "0\tv\n", 4, vpath, sizeof vpath);
  free(text);
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL_FATAL(open_labelled(d, path, vpath, 0.0, 8, NULL, &err), 0);
}

/* The example numbers of k batches of B from st. */
static void draw_examples(const lmn_data *d, lmn_data_state *st, int k, int B, int *out) {
  int32_t in[128 * 8], lab[128];
  char text[9];
  lmn_err err = {{0}};
  for (int i = 0; i < k; i++) {
    CU_ASSERT_EQUAL_FATAL(lmn_data_next(d, st, B, 8, in, lab, &err), 0);
    for (int b = 0; b < B; b++) {
      CU_ASSERT(row_text(in + b * 8, 8, text) > 0);
      out[i * B + b] = atoi(text);
      CU_ASSERT_EQUAL(lab[b], out[i * B + b] % 4);
    }
  }
}

/* out[0..n) is a permutation of 0..n-1. */
static int is_permutation(const int *out, int n) {
  char seen[128] = {0};
  for (int i = 0; i < n; i++) {
    if (out[i] < 0 || out[i] >= n || seen[out[i]]) return 0;
    seen[out[i]] = 1;
  }
  return 1;
}

static void test_labelled_epochs(void) {
  tmp t;
  tmp_make(&t);
  static const int sizes[] = {1, 2, 3, 63, 64, 65, 100};
  int a[256], b[256], c[256];
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) { /* every epoch visits each example once */
    int n = sizes[k];
    lmn_data d;
    open_numbered(&t, n, &d);
    lmn_data_state st;
    lmn_data_state_init(&st, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, 11);
    draw_examples(&d, &st, 2 * n, 1, a);
    CU_ASSERT(is_permutation(a, n));
    CU_ASSERT(is_permutation(a + n, n));
    lmn_data_close(&d);
  }
  lmn_data d;
  open_numbered(&t, 100, &d);
  lmn_data_state s1, s2, s3;
  lmn_data_state_init(&s1, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, 11);
  draw_examples(&d, &s1, 20, 10, a);
  CU_ASSERT_NOT_EQUAL(memcmp(a, a + 100, 100 * sizeof *a), 0); /* a new order each epoch */
  int identity = 1;
  for (int i = 0; i < 100; i++) identity &= a[i] == i;
  CU_ASSERT_FALSE(identity);
  /* the same seed repeats; a byte copy of the state resumes mid-epoch and across the epoch's end */
  lmn_data_state_init(&s2, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, 11);
  draw_examples(&d, &s2, 7, 10, b);
  memcpy(&s3, &s2, sizeof s3);
  draw_examples(&d, &s3, 13, 10, b + 70);
  CU_ASSERT_EQUAL(memcmp(a, b, 200 * sizeof *a), 0);
  CU_ASSERT_EQUAL(memcmp(&s1, &s3, sizeof s1), 0);
  CU_ASSERT_EQUAL(s3.batches, 20);
  lmn_data_state_init(&s2, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, 12);
  draw_examples(&d, &s2, 10, 10, c);
  CU_ASSERT_NOT_EQUAL(memcmp(a, c, 100 * sizeof *a), 0); /* another seed, another order */
  /* sequential: the file order, then again from the start */
  lmn_data_state_init(&s2, LMN_SPLIT_TRAIN, LMN_ORDER_SEQUENTIAL, 0);
  draw_examples(&d, &s2, 3, 70, c);
  for (int i = 0; i < 210; i++) CU_ASSERT_EQUAL(c[i], i % 100);
  lmn_data_close(&d);
  tmp_remove(&t);
}

/* Opening text as labelled data (4 classes, seq_len 8, bytes) fails with "PATH" + want. */
static void expect_labelled_error(const tmp *t, const char *text, double frac, const char *want) {
  char path[128], full[512];
  write_tsv(t, "bad.tsv", text, strlen(text), path, sizeof path);
  snprintf(full, sizeof full, "%s%s", path, want);
  lmn_data d;
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL(open_labelled(&d, path, NULL, frac, 8, NULL, &err), -1);
  if (strcmp(err.msg, full)) fprintf(stderr, "\n  got:  %s\n  want: %s\n", err.msg, full);
  CU_ASSERT_STRING_EQUAL(err.msg, full);
  CU_ASSERT_PTR_NULL(d.buf[0]);
  CU_ASSERT_PTR_NULL(d.examples[0]);
}

static void test_labelled_errors(void) {
  tmp t;
  tmp_make(&t);
  expect_labelled_error(&t, "0\tok\n1 no tab here\n", 0.5, ":2: no tab: each line is LABEL<TAB>TEXT");
  expect_labelled_error(&t, "0\tok\nx1\tfoo\n", 0.5,
                        ":2: label 'x1' is not an integer (each line is LABEL<TAB>TEXT)");
  expect_labelled_error(&t, "\tfoo\n", 0.5, ":1: label '' is not an integer (each line is LABEL<TAB>TEXT)");
  expect_labelled_error(&t, "-\tfoo\n", 0.5, ":1: label '-' is not an integer (each line is LABEL<TAB>TEXT)");
  expect_labelled_error(&t, "1.5\tfoo\n", 0.5,
                        ":1: label '1.5' is not an integer (each line is LABEL<TAB>TEXT)");
  expect_labelled_error(&t, "4\tfoo\n", 0.5, ":1: label 4 is outside [0, 4)");
  expect_labelled_error(&t, "-1\tfoo\n", 0.5, ":1: label -1 is outside [0, 4)");
  expect_labelled_error(&t, "99999999999999999999999999\tfoo\n", 0.5,
                        ":1: label 99999999999999999999999999 is outside [0, 4)");
  expect_labelled_error(&t, "0\ta\r\n\r\n\n5\tb\n", 0.5,
                        ":4: label 5 is outside [0, 4)"); /* blank lines count */
  expect_labelled_error(&t, "0\ta\n2\t\n", 0.5, ":2: empty text after the label");
  expect_labelled_error(&t, "0\ta\n2\t\r\n", 0.5, ":2: empty text after the label");
  expect_labelled_error(&t, "", 0.5, ": empty file");
  expect_labelled_error(&t, "\n\r\n\n", 0.5, ": no examples: the file holds only blank lines");
  expect_labelled_error(&t, "0\ta\n1\tb\n2\tc\n3\td\n0\te\n", 0.1,
                        ": val_fraction 0.1 of 5 examples leaves no examples for validation; change "
                        "val_fraction or give a separate val file");
  /* errors of the tokenizer name the line too */
  char path[128], want[512];
  write_tsv(&t, "tok.tsv", "0\tok\n1\thi\n", 10, path, sizeof path);
  lmn_data d;
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL(open_labelled(&d, path, NULL, 0.5, 8, &small_tok, &err), -1);
  snprintf(want, sizeof want, "%s:1: the tokenizer produced id 15 outside its vocabulary of 8 (token 1)",
           path);
  CU_ASSERT_STRING_EQUAL(err.msg, want);
  CU_ASSERT_EQUAL(open_labelled(&d, path, NULL, 0.5, 8, &num_tok, &err), -1); /* "ok" is no 5-byte number */
  snprintf(want, sizeof want, "%s:1: the text has no tokens", path);
  CU_ASSERT_STRING_EQUAL(err.msg, want);
  /* an empty val file, and nonsense arguments */
  char vpath[128];
  write_tsv(&t, "empty.tsv", "", 0, vpath, sizeof vpath);
  CU_ASSERT_EQUAL(open_labelled(&d, path, vpath, 0.0, 8, NULL, &err), -1);
  snprintf(want, sizeof want, "%s: empty file", vpath);
  CU_ASSERT_STRING_EQUAL(err.msg, want);
  lmn_data_opts o = {path, NULL, 0.5, 8, NULL};
  CU_ASSERT_EQUAL(lmn_data_open_classes(&d, &o, -1, &err), -1);
  CU_ASSERT_STRING_EQUAL(err.msg, "data: -1 classes is not a number of classes");
  CU_ASSERT_EQUAL_FATAL(lmn_data_open_classes(&d, &o, 4, &err), 0);
  int32_t in[16], lab[2];
  lmn_data_state st;
  lmn_data_state_init(&st, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, 1);
  CU_ASSERT_EQUAL(lmn_data_next(&d, &st, 0, 8, in, lab, &err), -1);
  CU_ASSERT_STRING_EQUAL(err.msg, "data: invalid batch shape 0 x 8");
  st.order = 9; /* a corrupt checkpoint */
  CU_ASSERT_EQUAL(lmn_data_next(&d, &st, 1, 8, in, lab, &err), -1);
  CU_ASSERT_STRING_EQUAL(err.msg, "data: invalid stream state (split 0, order 9)");
  lmn_data_state_init(&st, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, 1);
  st.pos = UINT64_MAX; /* out of range: a new epoch */
  CU_ASSERT_EQUAL(lmn_data_next(&d, &st, 2, 8, in, lab, &err), 0);
  CU_ASSERT_EQUAL(st.pos, 1); /* one training example: every row starts an epoch */
  lmn_data_close(&d);
  lmn_data_close(&d);
  tmp_remove(&t);
}

/* A random line of the format's pieces, good or bad, appended to text (at most 16 bytes). */
static size_t random_line(lmn_rng *rng, char *text) {
  static const char *const labels[] = {"0", "3", "4", "-1", "+2", "x", "", "\xEF\xBB\xBF"};
  static const char *const ends[] = {"\n", "\r\n", "", "\n\n"};
  static const char bytes[] = {'a', '\t', '\r', '\0', (char)0xEF, '0'};
  size_t n = (size_t)sprintf(text, "%s", labels[lmn_rng_below(rng, 8)]);
  if (lmn_rng_below(rng, 10)) text[n++] = '\t';
  for (uint64_t k = lmn_rng_below(rng, 6); k > 0; k--) text[n++] = bytes[lmn_rng_below(rng, sizeof bytes)];
  return n + (size_t)sprintf(text + n, "%s", ends[lmn_rng_below(rng, 4)]);
}

/* Random files of the format's pieces: opening either fails naming the file or serves batches. */
static void test_labelled_garbage(void) {
  tmp t;
  tmp_make(&t);
  lmn_rng rng;
  lmn_rng_seed(&rng, 5);
  char text[8 * 16], path[128];
  int opened = 0;
  for (int k = 0; k < 1000; k++) {
    size_t len = 0;
    for (uint64_t lines = lmn_rng_below(&rng, 8); lines > 0; lines--) len += random_line(&rng, text + len);
    write_tsv(&t, "g.tsv", text, len, path, sizeof path);
    lmn_data d;
    lmn_err err = {{0}};
    if (open_labelled(&d, path, NULL, 0.5, 1 + (long)(k % 5), k % 2 ? &nib_tok : NULL, &err)) {
      CU_ASSERT(strncmp(err.msg, path, strlen(path)) == 0);
      continue;
    }
    opened++;
    int32_t in[3 * 6], lab[3];
    lmn_data_state st;
    lmn_data_state_init(&st, (lmn_split)(k % 2), (lmn_order)(k / 2 % 2), (uint64_t)k);
    for (int i = 0; i < 4; i++) CU_ASSERT_EQUAL(lmn_data_next(&d, &st, 3, 6, in, lab, &err), 0);
    for (int i = 0; i < 3; i++) CU_ASSERT(lab[i] >= 0 && lab[i] < 4);
    lmn_data_close(&d);
  }
  CU_ASSERT(opened > 20);
  tmp_remove(&t);
}

static CU_TestInfo tests[] = {
    {"targets are inputs shifted by one", test_shift_by_one},
    {"byte tokenizer keeps raw bytes", test_bytes},
    {"seeded streams repeat and resume exactly", test_determinism_and_resume},
    {"sequential order and validation split", test_sequential_and_val},
    {"tokenizer with more ids than bytes", test_more_ids_than_bytes},
    {"a split that makes no token", test_split_without_tokens},
    {"missing, empty and short files", test_errors},
    {"bad batch requests and states", test_bad_requests},
    {"labelled data: the fixture reads back line by line", test_labelled_fixture},
    {"labelled data: texts cut at the front and left-padded", test_pad_and_truncate},
    {"labelled data: seeded epochs are permutations and resume exactly", test_labelled_epochs},
    {"labelled data: malformed files fail naming file:line", test_labelled_errors},
    {"labelled data: arbitrary bytes never crash the parser", test_labelled_garbage},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("data", tests)
