/* generate.h: text generation with a compiled network: encode the prompt, prefill the KV caches with it
 * (desc->decode over the whole prompt), then sample one token at a time (lmn_sample), handing each token's
 * bytes to the caller as soon as it exists and feeding it back through desc->decode. */
#ifndef LMN_GENERATE_H
#define LMN_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "lmn_error.h"
#include "net.h"
#include "sample.h"
#include "tokenizer.h"

/* Called for every generated token with its bytes (NULL, 0 for an id the tokenizer does not know); a
 * non-zero return stops generation after this token. */
typedef int (*lmn_token_fn)(void *ctx, int32_t id, const char *bytes, size_t len);

typedef struct lmn_gen_stats {
  int prompt_tokens;
  int tokens;       /* generated */
  int ctx;          /* positions the KV caches hold */
  int stopped_ctx;  /* stopped because the context was full before n tokens */
  int stopped_eos;  /* stopped at the tokenizer's end-of-sequence token (which is passed to fn) */
  double prefill_s; /* seconds of the prompt's decode */
  double decode_s;  /* seconds from the first sample to the last token */
} lmn_gen_stats;

/* Generates up to n tokens after prompt[0..prompt_len): the KV caches are (re)reserved for
 * min(desc->ctx, prompt tokens + n) positions unless they already hold that many; sampling uses an RNG
 * seeded with seed. Fails for classification networks, an empty prompt, a prompt longer than the context,
 * invalid sampling options, n < 0 or a tokenizer that fails. stats may be NULL. */
int lmn_generate_stream(lmn_net *net, const lmn_tokenizer *tok, const char *prompt, size_t prompt_len, int n,
                        const lmn_sample_opts *opts, uint64_t seed, lmn_token_fn fn, void *ctx,
                        lmn_gen_stats *stats, lmn_err *err);

/* The embedding API: generates up to n tokens after the NUL-terminated prompt into out (at most cap - 1
 * bytes and a NUL; the text is cut when it does not fit, generation is not). Returns the number of bytes
 * the whole generated text has (more than cap - 1 means it was cut), or -1 with err set. */
int lmn_generate(lmn_net *net, const lmn_tokenizer *tok, const char *prompt, int n,
                 const lmn_sample_opts *opts, uint64_t seed, char *out, size_t cap, lmn_err *err);

/* Checks sampling options as lmn_sample does (temperature not NaN, top_k >= 0, top_p in [0, 1]). */
int lmn_sample_opts_check(const lmn_sample_opts *opts, lmn_err *err);

#endif
