/* rng.c: xoshiro256** (Blackman & Vigna) with splitmix64 seeding, plus uniform and normal variates. */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void lmn_rng_seed(lmn_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void lmn_rng_seed_stream(lmn_rng *r, uint64_t seed, uint64_t stream) {
  uint64_t x = stream ^ 0x6a09e667f3bcc909ULL;
  lmn_rng_seed(r, seed ^ splitmix64(&x));
}

uint64_t lmn_rng_u64(lmn_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

int lmn_rng_valid(const lmn_rng *r) {
  return (r->s[0] | r->s[1] | r->s[2] | r->s[3]) != 0;
}

uint64_t lmn_rng_below(lmn_rng *r, uint64_t n) {
  if (n == 0) return 0;
  uint64_t threshold = (0 - n) % n; /* 2^64 mod n: values below it would bias the remainder */
  uint64_t x = 0;
  for (int tries = 0; tries < 64; tries++) /* bounded: an invalid (all-zero) state must not spin for ever */
    if ((x = lmn_rng_u64(r)) >= threshold) return x % n;
  return x % n;
}

float lmn_rng_uniform(lmn_rng *r) { return (float)(lmn_rng_u64(r) >> 40) * 0x1.0p-24f; }

double lmn_rng_uniform_double(lmn_rng *r) { return (double)(lmn_rng_u64(r) >> 11) * 0x1.0p-53; }

/* One Box-Muller pair: two independent N(0, 1) values. */
static void normal_pair(lmn_rng *r, double *a, double *b) {
  double u1 = 1.0 - lmn_rng_uniform_double(r); /* (0, 1]: log is finite */
  double u2 = lmn_rng_uniform_double(r);
  double rad = sqrt(-2.0 * log(u1));
  double th = 6.283185307179586476925 * u2;
  *a = rad * cos(th);
  *b = rad * sin(th);
}

float lmn_rng_normal(lmn_rng *r) {
  double a, b;
  normal_pair(r, &a, &b);
  return (float)a;
}

void lmn_rng_fill_normal(lmn_rng *r, float *x, size_t n, float mean, float std) {
  for (size_t i = 0; i < n; i += 2) {
    double a, b;
    normal_pair(r, &a, &b);
    x[i] = mean + std * (float)a;
    if (i + 1 < n) x[i + 1] = mean + std * (float)b;
  }
}
