/* rng.h: the small seeded pseudo-random generator of liblmn (xoshiro256**, seeded through splitmix64).
 * Its whole state is the POD struct lmn_rng (32 bytes, no padding), which a checkpoint stores verbatim so
 * that a resumed run draws exactly the numbers it would have drawn. Not for cryptography. */
#ifndef LMN_RNG_H
#define LMN_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct lmn_rng {
  uint64_t s[4];
} lmn_rng;

/* Seeds the generator; every seed (0 included) gives a valid, distinct state. */
void lmn_rng_seed(lmn_rng *r, uint64_t seed);
/* Seeds one of several independent streams derived from one seed (data order, init, sampling, ...). */
void lmn_rng_seed_stream(lmn_rng *r, uint64_t seed, uint64_t stream);
/* 1 when r can generate: xoshiro's state must not be all zeros (a zeroed state draws zeros for ever). Every
 * seeded state is valid; a state read from a file should be checked. */
int lmn_rng_valid(const lmn_rng *r);
/* Next 64 random bits. */
uint64_t lmn_rng_u64(lmn_rng *r);
/* Uniform integer in [0, n), without modulo bias; 0 when n is 0. Always returns: after 64 rejected draws
 * in a row (never, from a valid state: each is rejected with probability below 1/2) it takes the last. */
uint64_t lmn_rng_below(lmn_rng *r, uint64_t n);
/* Uniform float in [0, 1) with 24 random bits. */
float lmn_rng_uniform(lmn_rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
double lmn_rng_uniform_double(lmn_rng *r);
/* Standard normal N(0, 1) by Box-Muller; consumes two 64-bit draws per call. */
float lmn_rng_normal(lmn_rng *r);
/* Fills x[0..n) with N(mean, std^2), using both Box-Muller outputs of each pair of draws. */
void lmn_rng_fill_normal(lmn_rng *r, float *x, size_t n, float mean, float std);

#endif
