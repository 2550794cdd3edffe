/* sample.c: greedy, temperature, top-k and top-p sampling over a logits row, in caller scratch. */
#include "sample.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* One candidate token: its score (logit, then unnormalised probability) and id. */
typedef struct cand {
  float p;
  int32_t id;
} cand;

size_t lmn_sample_scratch_bytes(int vocab) { return vocab > 0 ? (size_t)vocab * sizeof(cand) : 0; }

static float logit_at(const float *logits, int i) { return isnan(logits[i]) ? -INFINITY : logits[i]; }

int lmn_sample_argmax(const float *logits, int vocab) {
  if (!logits || vocab <= 0) return -1;
  int best = 0;
  float bv = -INFINITY;
  int found = 0;
  for (int i = 0; i < vocab; i++) {
    if (isnan(logits[i])) continue;
    if (!found || logits[i] > bv) bv = logits[i], best = i, found = 1;
  }
  return best;
}

/* a ranks before b: higher score, then lower id (so that ties resolve the same way every time). */
static int before(const cand *a, const cand *b) { return a->p > b->p || (a->p == b->p && a->id < b->id); }

static int cmp_desc(const void *x, const void *y) {
  const cand *a = x, *b = y;
  return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* Restores the min-heap order (worst candidate at the root) below node i of h[0..n). */
static void sift_down(cand *h, int n, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && before(&h[m], &h[l])) m = l;
    if (r < n && before(&h[m], &h[r])) m = r;
    if (m == i) return;
    cand t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

/* Fills c with the k best logits (a bounded min-heap, O(V log k)); returns k. */
static int top_k_cands(const float *logits, int vocab, int k, cand *c) {
  for (int i = 0; i < k; i++) c[i] = (cand){logit_at(logits, i), i};
  for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
  for (int i = k; i < vocab; i++) {
    cand x = {logit_at(logits, i), i};
    if (before(&x, &c[0])) {
      c[0] = x;
      sift_down(c, k, 0);
    }
  }
  return k;
}

/* Turns the scores of c[0..n) into exp((logit - max) / temperature); returns their sum. */
static double softmax_weights(cand *c, int n, float temperature) {
  float mx = -INFINITY;
  for (int i = 0; i < n; i++)
    if (c[i].p > mx) mx = c[i].p;
  double sum = 0.0;
  for (int i = 0; i < n; i++) {
    c[i].p = c[i].p == -INFINITY ? 0.0f : expf((c[i].p - mx) / temperature);
    sum += c[i].p;
  }
  return sum;
}

/* Keeps the smallest prefix (by probability) of c[0..n) whose mass reaches top_p of *sum; returns its length
 * and updates *sum. Tokens under (1 - top_p) / n of the mass cannot be in that prefix (together they hold
 * less than 1 - top_p), so they are dropped before sorting. */
static int nucleus(cand *c, int n, double *sum, float top_p) {
  double cutoff = (1.0 - top_p) / n * *sum, want = top_p * *sum, acc = 0.0;
  int m = 0;
  for (int i = 0; i < n; i++)
    if (c[i].p >= cutoff) c[m++] = c[i];
  qsort(c, (size_t)m, sizeof *c, cmp_desc);
  for (int i = 0; i < m; i++) {
    acc += c[i].p;
    if (acc >= want) {
      *sum = acc;
      return i + 1;
    }
  }
  *sum = acc;
  return m;
}

/* One draw from c[0..n) proportionally to the weights. */
static int draw(const cand *c, int n, double sum, lmn_rng *rng) {
  double u = lmn_rng_uniform_double(rng) * sum, acc = 0.0;
  for (int i = 0; i < n; i++) {
    acc += c[i].p;
    if (u < acc) return c[i].id;
  }
  for (int i = n - 1; i > 0; i--) /* rounding left u at the end: the last token with weight */
    if (c[i].p > 0.0f) return c[i].id;
  return c[0].id;
}

static int bad_opts(const lmn_sample_opts *o) {
  return isnan(o->temperature) || isnan(o->top_p) || o->top_p < 0.0f || o->top_k < 0;
}

int lmn_sample(const float *logits, int vocab, const lmn_sample_opts *opts, lmn_rng *rng, void *scratch) {
  if (!logits || vocab <= 0 || !opts || bad_opts(opts)) return -1;
  if (opts->temperature <= 0.0f || opts->top_k == 1) return lmn_sample_argmax(logits, vocab);
  if (!rng || !scratch) return -1;
  cand *c = scratch;
  int n = vocab;
  if (opts->top_k > 0 && opts->top_k < vocab) {
    n = top_k_cands(logits, vocab, opts->top_k, c);
    qsort(c, (size_t)n, sizeof *c, cmp_desc);
  } else {
    for (int i = 0; i < vocab; i++) c[i] = (cand){logit_at(logits, i), i};
  }
  double sum = softmax_weights(c, n, opts->temperature);
  if (!(sum > 0.0) || !isfinite(sum)) return lmn_sample_argmax(logits, vocab);
  if (opts->top_p > 0.0f && opts->top_p < 1.0f) n = nucleus(c, n, &sum, opts->top_p);
  return draw(c, n, sum, rng);
}
