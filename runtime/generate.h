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
  int reused;      /* prompt tokens whose keys and values were already in the caches (a session's last run) */
  int tokens;      /* generated */
  int ctx;         /* positions the KV caches hold */
  int stopped_ctx; /* stopped because the context was full before n tokens */
  int stopped_eos; /* stopped at the tokenizer's end-of-sequence token (passed to fn unless hidden) */
  int stopped_stop; /* stopped at a stop string (which is not passed to fn) */
  int cancelled;    /* fn asked to stop */
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

/* A session: a network's KV caches together with the tokens they hold, so that a request whose tokens begin
 * with what the caches already hold prefills only the rest (the next turn of a chat, a prompt sharing a
 * long prefix with the last). One session per network; one run at a time. */
typedef struct lmn_session {
  lmn_net *net;
  const lmn_tokenizer *tok;
  int ctx;      /* positions the caches hold (<= the network's context) */
  int32_t *ids; /* [ctx] the tokens at positions 0..n_cached-1 */
  int n_cached;
  float *logits; /* [vocab] */
  void *scratch; /* lmn_sample's */
} lmn_session;

/* What to generate after a prompt of ids. */
typedef struct lmn_gen_req {
  const int32_t *prompt;
  int n_prompt; /* 1 .. the session's ctx */
  int n;        /* tokens to generate at most (>= 0) */
  lmn_sample_opts sample;
  uint64_t seed;
  const char *const *stop; /* the text ends before the first of these strings (which is never emitted) */
  int n_stop;
  int hide_eos;    /* the end-of-sequence token's bytes are not passed to fn */
  lmn_token_fn fn; /* gets the text as it becomes final (bytes held back while they might begin a
                    * stop string are passed later, with a later id); may be NULL */
  void *ctx;
} lmn_gen_req;

/* Reserves the caches for ctx positions (1 .. the network's context) and the buffers; holds nothing yet. */
int lmn_session_init(lmn_session *s, lmn_net *net, const lmn_tokenizer *tok, int ctx, lmn_err *err);
void lmn_session_free(lmn_session *s);
/* Runs r: reuses the longest common prefix of r->prompt and the cached tokens, prefills the rest, then
 * samples. Afterwards the caches hold the prompt and every generated token but the last. */
int lmn_session_generate(lmn_session *s, const lmn_gen_req *r, lmn_gen_stats *stats, lmn_err *err);
/* The ids of text[0..len) in a malloc'ed array (*n of them; BOS alone for an empty text when the tokenizer
 * has one), checked against the network's vocabulary and max_tokens. */
int lmn_encode_prompt(const lmn_net_desc *d, const lmn_tokenizer *tok, const char *text, size_t len,
                      int max_tokens, int32_t **ids, int *n, lmn_err *err);

/* Generates as r says (its prompt and n_prompt are ignored) after the text prompt[0..prompt_len), on the
 * network's caches reserved for min(context, prompt tokens + r->n) positions, from an empty session. */
int lmn_generate_text(lmn_net *net, const lmn_tokenizer *tok, const char *prompt, size_t prompt_len,
                      const lmn_gen_req *r, lmn_gen_stats *stats, lmn_err *err);

/* The embedding API: generates up to n tokens after the NUL-terminated prompt into out (at most cap - 1
 * bytes and a NUL; the text is cut when it does not fit, generation is not). Returns the number of bytes
 * the whole generated text has (more than cap - 1 means it was cut), or -1 with err set. */
int lmn_generate(lmn_net *net, const lmn_tokenizer *tok, const char *prompt, int n,
                 const lmn_sample_opts *opts, uint64_t seed, char *out, size_t cap, lmn_err *err);

/* Checks sampling options as lmn_sample does (temperature not NaN, top_k >= 0, top_p in [0, 1]). */
int lmn_sample_opts_check(const lmn_sample_opts *opts, lmn_err *err);

#endif
