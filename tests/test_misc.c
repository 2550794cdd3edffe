/* test_misc.c: the learning-rate schedule (warmup and each decay at its start, middle and end), the progress
 * and validation lines and their number formats, the byte tokenizer's round trip of all 256 bytes, and the
 * sgemm rate measurement's argument checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blasrate.h"
#include "config.h"
#include "harness.h"
#include "progress.h"
#include "tokenizer.h"

#define NEAR(a, b) CU_ASSERT(fabs((a) - (b)) <= 1e-12 + 1e-9 * fabs(b))

static lmn_train_config schedule(lmn_decay decay, long warmup) {
  lmn_train_config c;
  lmn_config_defaults(&c);
  c.steps = 100;
  c.optimizer.lr = 1e-3;
  c.schedule.min_lr = 1e-4;
  c.schedule.warmup = warmup;
  c.schedule.decay = decay;
  return c;
}

static void test_warmup(void) {
  for (int d = LMN_DECAY_COSINE; d <= LMN_DECAY_CONSTANT; d++) {
    lmn_train_config c = schedule((lmn_decay)d, 10);
    NEAR(lmn_lr_at(&c, 0), 0.0); /* linear from 0 */
    NEAR(lmn_lr_at(&c, 1), 1e-4);
    NEAR(lmn_lr_at(&c, 5), 5e-4);  /* middle of the warmup */
    NEAR(lmn_lr_at(&c, 10), 1e-3); /* end of the warmup: the peak */
    NEAR(lmn_lr_at(&c, -3), 0.0);
  }
  lmn_train_config c = schedule(LMN_DECAY_COSINE, 0);
  NEAR(lmn_lr_at(&c, 0), 1e-3); /* no warmup: the first step runs at the peak */
}

static void test_cosine(void) {
  lmn_train_config c = schedule(LMN_DECAY_COSINE, 10);
  NEAR(lmn_lr_at(&c, 55), 5.5e-4); /* middle of the decay: halfway between lr and min_lr */
  NEAR(lmn_lr_at(&c, 100), 1e-4);  /* end: min_lr */
  NEAR(lmn_lr_at(&c, 33), 1e-4 + 0.9e-3 * 0.5 * (1 + cos(M_PI * 23.0 / 90.0)));
  NEAR(lmn_lr_at(&c, 1000), 1e-4); /* beyond the end: stays at min_lr */
  CU_ASSERT(lmn_lr_at(&c, 99) > 1e-4 && lmn_lr_at(&c, 99) < 1.01e-4);
}

static void test_linear(void) {
  lmn_train_config c = schedule(LMN_DECAY_LINEAR, 10);
  NEAR(lmn_lr_at(&c, 55), 5.5e-4);
  NEAR(lmn_lr_at(&c, 28), 1e-3 - 0.9e-3 * 0.2);
  NEAR(lmn_lr_at(&c, 100), 1e-4);
  NEAR(lmn_lr_at(&c, 99), 1e-4 + 0.9e-3 / 90.0);
}

static void test_constant(void) {
  lmn_train_config c = schedule(LMN_DECAY_CONSTANT, 10);
  NEAR(lmn_lr_at(&c, 10), 1e-3);
  NEAR(lmn_lr_at(&c, 55), 1e-3);
  NEAR(lmn_lr_at(&c, 100), 1e-3);
  c = schedule(LMN_DECAY_COSINE, 100); /* warmup over every step: nothing left to decay */
  NEAR(lmn_lr_at(&c, 50), 5e-4);
  NEAR(lmn_lr_at(&c, 100), 1e-4);
}

static void test_progress_line(void) {
  lmn_progress p;
  lmn_progress_init(&p, 200, 18532 * 0.0553, 0.412e12 * 0.0553, 1e12);
  p.avg_step_s = 104.0 / 188.0;
  char line[256];
  int n = lmn_progress_format(&p, 12, 3.21409, 3e-4, 0.81234, 0.0553, line, sizeof line);
  CU_ASSERT_STRING_EQUAL(
      line,
      "step 12/200 | loss 3.2141 | lr 3.00e-04 | norm 0.812 | 18,532 tok/s | 55.3 ms/step | MFU 41.2% | ETA 0:01:44");
  CU_ASSERT_EQUAL(n, (int)strlen(line));
  lmn_progress_init(&p, 10, 1000, 0, 0); /* no FLOP counts: no MFU field; ETA from this step's time */
  lmn_progress_format(&p, 4, 2.5, 1e-3, -1, 2.0, line, sizeof line);
  CU_ASSERT_STRING_EQUAL(line,
                         "step 4/10 | loss 2.5000 | lr 1.00e-03 | 500 tok/s | 2000.0 ms/step | ETA 0:00:12");
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  lmn_progress_step(&p, f, 1, 2.0, 1e-3, -1, 1.0);
  lmn_progress_step(&p, f, 2, 2.0, 1e-3, -1, 2.0);
  NEAR(p.avg_step_s, 1.1); /* moving average: 0.9 * 1 + 0.1 * 2 */
  lmn_progress_val(&p, f, 2, 3.1024, 1.25);
  fclose(f);
  CU_ASSERT_STRING_EQUAL(
      buf, "step 1/10 | loss 2.0000 | lr 1.00e-03 | 1,000 tok/s | 1000.0 ms/step | ETA 0:00:09\n"
           "step 2/10 | loss 2.0000 | lr 1.00e-03 | 500 tok/s | 2000.0 ms/step | ETA 0:00:09\n"
           "val step 2/10 | val loss 3.1024 | ppl 22.25 | 1.2 s\n");
  free(buf);
}

static void test_number_formats(void) {
  char b[64];
  const struct {
    long long n;
    const char *s;
  } t[] = {{0, "0"},
           {999, "999"},
           {1000, "1,000"},
           {18532, "18,532"},
           {1234567, "1,234,567"},
           {-1234, "-1,234"},
           {-9223372036854775807LL - 1, "-9,223,372,036,854,775,808"}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    lmn_format_thousands(t[i].n, b, sizeof b);
    CU_ASSERT_STRING_EQUAL(b, t[i].s);
  }
  lmn_format_duration(0, b, sizeof b);
  CU_ASSERT_STRING_EQUAL(b, "0:00:00");
  lmn_format_duration(3661.4, b, sizeof b);
  CU_ASSERT_STRING_EQUAL(b, "1:01:01");
  lmn_format_duration(360000, b, sizeof b);
  CU_ASSERT_STRING_EQUAL(b, "100:00:00");
  lmn_format_duration(NAN, b, sizeof b);
  CU_ASSERT_STRING_EQUAL(b, "-:--:--");
  lmn_format_duration(-1, b, sizeof b);
  CU_ASSERT_STRING_EQUAL(b, "-:--:--");
  double t0 = lmn_clock_s(), t1 = lmn_clock_s();
  CU_ASSERT(t1 >= t0);
}

static void test_byte_tokenizer(void) {
  lmn_tokenizer t;
  lmn_tokenizer_init_bytes(&t);
  CU_ASSERT_EQUAL(t.vocab_size, 256);
  CU_ASSERT_EQUAL(t.bos, -1);
  CU_ASSERT_EQUAL(t.eos, -1);
  CU_ASSERT_EQUAL(t.kind, LMN_TOK_BYTES);
  char text[256], back[257];
  int32_t ids[256];
  for (int i = 0; i < 256; i++) text[i] = (char)i;
  CU_ASSERT_EQUAL(lmn_tokenizer_encode(&t, text, 256, ids, 256), 256);
  for (int i = 0; i < 256; i++) {
    CU_ASSERT_EQUAL(ids[i], i);
    size_t len = 0;
    const char *b = lmn_tokenizer_decode_token(&t, i, &len);
    CU_ASSERT_FATAL(b != NULL && len == 1);
    CU_ASSERT_EQUAL((unsigned char)b[0], i);
  }
  CU_ASSERT_EQUAL(lmn_tokenizer_decode(&t, ids, 256, back, sizeof back), 256);
  CU_ASSERT_EQUAL(memcmp(back, text, 256), 0);
  CU_ASSERT_EQUAL(back[256], '\0');
  CU_ASSERT_PTR_NULL(lmn_tokenizer_decode_token(&t, 256, NULL));
  CU_ASSERT_PTR_NULL(lmn_tokenizer_decode_token(&t, -1, NULL));
  int32_t bad[2] = {65, 300};
  CU_ASSERT_EQUAL(lmn_tokenizer_decode(&t, bad, 2, back, sizeof back), -1);
  char small[4]; /* cut output: 3 bytes and a NUL, and the length the whole text needs */
  CU_ASSERT_EQUAL(lmn_tokenizer_decode(&t, ids + 65, 10, small, sizeof small), 10);
  CU_ASSERT_STRING_EQUAL(small, "ABC");
  CU_ASSERT_EQUAL(lmn_tokenizer_encode(&t, "hello", 5, ids, 2), 5); /* cap too small: the count it needs */
  CU_ASSERT_EQUAL(ids[0], 'h');
  CU_ASSERT_EQUAL(ids[1], 'e');
  lmn_tokenizer_free(&t);
  CU_ASSERT_PTR_NULL(t.ops);
  CU_ASSERT_EQUAL(lmn_tokenizer_encode(&t, "x", 1, ids, 1), -1);
  lmn_tokenizer_free(&t);
}

static void test_sgemm_rate(void) {
  CU_ASSERT(lmn_measure_sgemm_gflops(64, 3) > 0.0);
  CU_ASSERT_EQUAL(lmn_measure_sgemm_gflops(0, 3), 0.0);
  CU_ASSERT_EQUAL(lmn_measure_sgemm_gflops(64, 0), 0.0);
  CU_ASSERT_EQUAL(lmn_measure_sgemm_gflops(1 << 20, 1), 0.0);
}

static CU_TestInfo tests[] = {
    {"lr warmup is linear from 0", test_warmup},
    {"lr cosine decay", test_cosine},
    {"lr linear decay", test_linear},
    {"lr constant, and warmup over every step", test_constant},
    {"progress and validation lines", test_progress_line},
    {"thousands, durations, clock", test_number_formats},
    {"byte tokenizer round trip of all 256 bytes", test_byte_tokenizer},
    {"sgemm rate", test_sgemm_rate},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("misc", tests)
