/* test_sample.c: token sampling and the PRNG: greedy is argmax, top-k 1 and a tiny top-p are greedy, draws at
 * temperature 1 (and 0.5, and under top-k/top-p) follow the expected distribution, a draw lands in the
 * nucleus of a large vocabulary, and the generator is reproducible from its seed and its saved state. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "rng.h"
#include "sample.h"

static void random_logits(lmn_rng *r, float *x, int n) {
  for (int i = 0; i < n; i++) x[i] = 3.0f * lmn_rng_normal(r);
}

static void test_greedy_is_argmax(void) {
  lmn_rng r;
  lmn_rng_seed(&r, 1);
  float x[100];
  lmn_sample_opts greedy = {0.0f, 0, 0.0f};
  for (int k = 0; k < 50; k++) {
    random_logits(&r, x, 100);
    int best = 0;
    for (int i = 1; i < 100; i++)
      if (x[i] > x[best]) best = i;
    CU_ASSERT_EQUAL(lmn_sample_argmax(x, 100), best);
    CU_ASSERT_EQUAL(lmn_sample(x, 100, &greedy, NULL, NULL), best); /* greedy needs no rng nor scratch */
  }
  float ties[5] = {1, 7, 3, 7, NAN};
  CU_ASSERT_EQUAL(lmn_sample_argmax(ties, 5), 1); /* first of equal maxima */
  float nans[3] = {NAN, -1.0f, NAN};
  CU_ASSERT_EQUAL(lmn_sample_argmax(nans, 3), 1);
  CU_ASSERT_EQUAL(lmn_sample_argmax(nans, 0), -1);
}

static void test_top_k1_and_tiny_top_p_are_greedy(void) {
  lmn_rng r, g;
  lmn_rng_seed(&r, 2);
  lmn_rng_seed(&g, 3);
  float x[300];
  static unsigned char scratch[300 * 8];
  CU_ASSERT_EQUAL(lmn_sample_scratch_bytes(300), sizeof scratch);
  lmn_sample_opts k1 = {1.0f, 1, 0.0f}, p0 = {1.0f, 0, 1e-6f}, both = {0.8f, 50, 1e-6f};
  for (int k = 0; k < 100; k++) {
    random_logits(&r, x, 300);
    int best = lmn_sample_argmax(x, 300);
    CU_ASSERT_EQUAL(lmn_sample(x, 300, &k1, &g, scratch), best);
    CU_ASSERT_EQUAL(lmn_sample(x, 300, &p0, &g, scratch), best);
    CU_ASSERT_EQUAL(lmn_sample(x, 300, &both, &g, scratch), best);
  }
  float flat[8] = {0}; /* a uniform distribution: a tiny top-p keeps the first of the tied tokens */
  CU_ASSERT_EQUAL(lmn_sample(flat, 8, &p0, &g, scratch), 0);
}

/* Counts n draws over the 4 tokens with log-probabilities log(p) and checks their frequencies against want.
 */
static void check_freq(const lmn_sample_opts *o, const double *want, int n, double tol, uint64_t seed) {
  const float logits[4] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
  unsigned char scratch[4 * 8];
  long count[4] = {0};
  lmn_rng r;
  lmn_rng_seed(&r, seed);
  for (int i = 0; i < n; i++) {
    int t = lmn_sample(logits, 4, o, &r, scratch);
    CU_ASSERT_FATAL(t >= 0 && t < 4);
    count[t]++;
  }
  for (int t = 0; t < 4; t++) {
    double f = (double)count[t] / n;
    if (fabs(f - want[t]) > tol) fprintf(stderr, "\n  token %d: frequency %.4f, want %.4f\n", t, f, want[t]);
    CU_ASSERT(fabs(f - want[t]) <= tol);
  }
}

static void test_frequencies(void) {
  enum { N = 200000 };
  const double tol = 0.006; /* over 5 standard deviations of a frequency near 0.4 for N draws */
  lmn_sample_opts t1 = {1.0f, 0, 0.0f}, half = {0.5f, 0, 0.0f}, k2 = {1.0f, 2, 0.0f}, p5 = {1.0f, 0, 0.5f},
                  p35 = {1.0f, 0, 0.35f}, off = {1.0f, 4, 1.0f};
  check_freq(&t1, (const double[]){0.1, 0.2, 0.3, 0.4}, N, tol, 11);
  check_freq(&off, (const double[]){0.1, 0.2, 0.3, 0.4}, N, tol, 12); /* k = V and p = 1 change nothing */
  check_freq(&half, (const double[]){0.01 / 0.3, 0.04 / 0.3, 0.09 / 0.3, 0.16 / 0.3}, N, tol, 13);
  check_freq(&k2, (const double[]){0, 0, 3.0 / 7, 4.0 / 7}, N, tol, 14);
  check_freq(&p5, (const double[]){0, 0, 3.0 / 7, 4.0 / 7}, N, tol, 15); /* 0.4 < 0.5 <= 0.4 + 0.3 */
  check_freq(&p35, (const double[]){0, 0, 0, 1}, N, 0.0, 16);
}

static int cmp_desc_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x < y) - (x > y);
}

static void test_nucleus_large_vocab(void) {
  enum { V = 50000 };
  static float x[V], sorted[V];
  static unsigned char scratch[V * 8];
  lmn_rng r;
  lmn_rng_seed(&r, 4);
  random_logits(&r, x, V);
  /* the smallest logit the nucleus of mass 0.9 can hold, by brute force */
  double mx = -INFINITY, z = 0.0, acc = 0.0;
  for (int i = 0; i < V; i++) mx = fmax(mx, x[i]);
  for (int i = 0; i < V; i++) z += exp(x[i] - mx);
  memcpy(sorted, x, sizeof x);
  qsort(sorted, V, sizeof *sorted, cmp_desc_float);
  float floor_logit = sorted[0];
  for (int i = 0; i < V && acc < 0.9; i++) acc += exp(sorted[i] - mx) / z, floor_logit = sorted[i];
  lmn_sample_opts o = {1.0f, 0, 0.9f}, k = {1.0f, 40, 0.0f};
  for (int i = 0; i < 200; i++) {
    int t = lmn_sample(x, V, &o, &r, scratch);
    CU_ASSERT_FATAL(t >= 0 && t < V);
    CU_ASSERT(x[t] >= floor_logit);
    t = lmn_sample(x, V, &k, &r, scratch);
    CU_ASSERT(x[t] >= sorted[39]);
  }
}

static void test_determinism_and_bad_args(void) {
  float x[64];
  unsigned char scratch[64 * 8];
  lmn_rng r, a, b;
  lmn_rng_seed(&r, 5);
  random_logits(&r, x, 64);
  lmn_sample_opts o = {0.9f, 20, 0.95f};
  lmn_rng_seed(&a, 77);
  b = a;
  for (int i = 0; i < 100; i++)
    CU_ASSERT_EQUAL(lmn_sample(x, 64, &o, &a, scratch), lmn_sample(x, 64, &o, &b, scratch));
  CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
  lmn_rng c = a; /* one draw consumes one uniform */
  lmn_sample(x, 64, &o, &a, scratch);
  lmn_rng_uniform_double(&c);
  CU_ASSERT_EQUAL(memcmp(&a, &c, sizeof a), 0);
  lmn_sample_opts bad_p = {1.0f, 0, -0.1f}, bad_k = {1.0f, -1, 0.0f}, nan_t = {NAN, 0, 0.0f};
  CU_ASSERT_EQUAL(lmn_sample(x, 64, &bad_p, &a, scratch), -1);
  CU_ASSERT_EQUAL(lmn_sample(x, 64, &bad_k, &a, scratch), -1);
  CU_ASSERT_EQUAL(lmn_sample(x, 64, &nan_t, &a, scratch), -1);
  CU_ASSERT_EQUAL(lmn_sample(x, 0, &o, &a, scratch), -1);
  CU_ASSERT_EQUAL(lmn_sample(x, 64, &o, NULL, scratch), -1);
  CU_ASSERT_EQUAL(lmn_sample(x, 64, &o, &a, NULL), -1);
  float inf[3] = {-INFINITY, -INFINITY, -INFINITY}, big[3] = {0.0f, INFINITY, 1.0f};
  CU_ASSERT_EQUAL(lmn_sample(inf, 3, &o, &a, scratch), 0);
  CU_ASSERT_EQUAL(lmn_sample(big, 3, &o, &a, scratch), 1);
}

static void test_rng(void) {
  lmn_rng a, b, c;
  lmn_rng_seed(&a, 123);
  lmn_rng_seed(&b, 123);
  lmn_rng_seed(&c, 124);
  int same = 1, differ = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t x = lmn_rng_u64(&a), y = lmn_rng_u64(&b), z = lmn_rng_u64(&c);
    same &= x == y;
    differ |= x != z;
  }
  CU_ASSERT(same);
  CU_ASSERT(differ);
  lmn_rng s1, s2;
  lmn_rng_seed_stream(&s1, 123, 1);
  lmn_rng_seed_stream(&s2, 123, 2);
  CU_ASSERT_NOT_EQUAL(lmn_rng_u64(&s1), lmn_rng_u64(&s2));
  CU_ASSERT_EQUAL(sizeof(lmn_rng), 32);
  /* a saved state resumes the sequence */
  unsigned char saved[sizeof a];
  memcpy(saved, &a, sizeof a);
  uint64_t next[5];
  for (int i = 0; i < 5; i++) next[i] = lmn_rng_u64(&a);
  memcpy(&b, saved, sizeof b);
  for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(lmn_rng_u64(&b), next[i]);
  /* moments of the uniform, normal and bounded draws */
  enum { N = 200000 };
  double su = 0, sn = 0, sn2 = 0;
  long hist[10] = {0};
  int in_range = 1;
  for (int i = 0; i < N; i++) {
    float u = lmn_rng_uniform(&a);
    in_range &= u >= 0.0f && u < 1.0f;
    su += u;
    double n = lmn_rng_normal(&a);
    sn += n, sn2 += n * n;
    uint64_t k = lmn_rng_below(&a, 10);
    in_range &= k < 10;
    hist[k < 10 ? k : 0]++;
  }
  CU_ASSERT(in_range);
  CU_ASSERT(fabs(su / N - 0.5) < 0.005);
  CU_ASSERT(fabs(sn / N) < 0.01);
  CU_ASSERT(fabs(sn2 / N - 1.0) < 0.02);
  for (int k = 0; k < 10; k++) CU_ASSERT(fabs((double)hist[k] / N - 0.1) < 0.005);
  CU_ASSERT_EQUAL(lmn_rng_below(&a, 0), 0);
  float v[7];
  lmn_rng_fill_normal(&a, v, 7, 10.0f, 0.001f);
  for (int i = 0; i < 7; i++) CU_ASSERT(fabsf(v[i] - 10.0f) < 0.01f);
}

static CU_TestInfo tests[] = {
    {"greedy is argmax", test_greedy_is_argmax},
    {"top-k 1 and tiny top-p are greedy", test_top_k1_and_tiny_top_p_are_greedy},
    {"frequencies of draws", test_frequencies},
    {"top-p and top-k on a large vocabulary", test_nucleus_large_vocab},
    {"determinism and bad arguments", test_determinism_and_bad_args},
    {"rng reproducibility and moments", test_rng},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("sample", tests)
