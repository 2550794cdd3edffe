/* generate.c: prompt encoding, KV-cache prefill and the sample/emit/decode loop of text generation. */
#include "generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"
#include "rng.h"

int lmn_sample_opts_check(const lmn_sample_opts *o, lmn_err *err) {
  if (!o) return lmn_errf(err, "generate: no sampling options given");
  if (isnan(o->temperature)) return lmn_errf(err, "generate: the temperature is not a number");
  if (o->top_k < 0) return lmn_errf(err, "generate: top-k %d is negative", o->top_k);
  if (isnan(o->top_p) || o->top_p < 0.0f) return lmn_errf(err, "generate: top-p must be in [0, 1]");
  return 0;
}

/* The prompt's ids in a malloc'ed array (*n of them). */
static int encode_prompt(const lmn_net_desc *d, const lmn_tokenizer *tok, const char *text, size_t len,
                         int32_t **ids, int *n, lmn_err *err) {
  size_t cap = len + 16;
  int32_t *v = malloc(cap * sizeof *v);
  long r = v ? lmn_tokenizer_encode(tok, text, len, v, cap) : 0;
  if (v && r > 0 && (size_t)r > cap) {
    int32_t *w = realloc(v, (size_t)r * sizeof *v);
    if (!w) free(v);
    v = w;
    if (v && lmn_tokenizer_encode(tok, text, len, v, (size_t)r) != r) r = -1;
  }
  if (!v) return lmn_errf(err, "%s: out of memory encoding the prompt", d->name);
  if (r < 0) return free(v), lmn_errf(err, "%s: the tokenizer cannot encode the prompt", d->name);
  if (r == 0 && tok->bos >= 0) v[r++] = tok->bos; /* an empty prompt starts at beginning-of-sequence */
  if (r == 0)
    return free(v), lmn_errf(err, "%s: the prompt is empty (this tokenizer has no BOS token)", d->name);
  if (r > d->ctx)
    return free(v),
           lmn_errf(err, "%s: the prompt has %ld tokens but the network's context is %d", d->name, r, d->ctx);
  for (long i = 0; i < r; i++)
    if (v[i] < 0 || v[i] >= d->vocab) {
      int bad = (int)v[i];
      free(v);
      return lmn_errf(err, "%s: prompt token %ld has id %d outside the vocabulary of %d", d->name, i, bad,
                      d->vocab);
    }
  *ids = v;
  *n = (int)r;
  return 0;
}

static int check_args(const lmn_net *net, const lmn_tokenizer *tok, int n, const lmn_sample_opts *opts,
                      lmn_err *err) {
  if (!net || !tok || !tok->ops) return lmn_errf(err, "generate: no network or tokenizer given");
  const lmn_net_desc *d = net->desc;
  if (d->classes > 0)
    return lmn_errf(err, "%s: generation is not available for a classification network (%d classes)", d->name,
                    d->classes);
  if (!d->decode || !d->cache_floats)
    return lmn_errf(err, "%s: the network has no decoding function", d->name);
  if (n < 0) return lmn_errf(err, "%s: cannot generate %d tokens", d->name, n);
  return lmn_sample_opts_check(opts, err);
}

/* The KV caches for ctx positions, kept when they already hold that many. */
static int reserve_cache(lmn_net *net, int ctx, lmn_err *err) {
  if (net->cache && net->cache_ctx >= ctx) return 0;
  return lmn_net_enable_cache(net, ctx, err);
}

typedef struct gen_buf {
  float *logits;
  void *scratch;
  int32_t *ids;
} gen_buf;

static void gen_buf_free(gen_buf *b) {
  free(b->logits);
  free(b->scratch);
  free(b->ids);
}

/* Samples, emits and feeds back tokens after the prefill; fills st. */
static int gen_loop(lmn_net *net, const lmn_tokenizer *tok, gen_buf *b, int P, int n,
                    const lmn_sample_opts *opts, uint64_t seed, lmn_token_fn fn, void *ctx, lmn_gen_stats *st,
                    lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  lmn_rng rng;
  lmn_rng_seed(&rng, seed);
  int pos = P;
  /* a borrowed tokenizer may have fewer tokens than the network: the ids beyond are never sampled */
  int vocab = tok->vocab_size < d->vocab ? tok->vocab_size : d->vocab;
  double t0 = lmn_clock_s();
  for (int g = 0; g < n; g++) {
    int32_t id = lmn_sample(b->logits, vocab, opts, &rng, b->scratch);
    if (id < 0) return lmn_errf(err, "%s: sampling failed at token %d", d->name, g);
    size_t len = 0;
    const char *bytes = lmn_tokenizer_decode_token(tok, id, &len);
    st->tokens++;
    int stop = fn ? fn(ctx, id, bytes, bytes ? len : 0) : 0;
    if (id == tok->eos) st->stopped_eos = 1;
    if (stop || st->stopped_eos || g + 1 == n) break;
    if (pos >= st->ctx) {
      st->stopped_ctx = 1;
      break;
    }
    d->decode(net, &id, 1, pos++, b->logits);
  }
  st->decode_s = lmn_clock_s() - t0;
  return 0;
}

int lmn_generate_stream(lmn_net *net, const lmn_tokenizer *tok, const char *prompt, size_t prompt_len, int n,
                        const lmn_sample_opts *opts, uint64_t seed, lmn_token_fn fn, void *ctx,
                        lmn_gen_stats *stats, lmn_err *err) {
  lmn_gen_stats st = {0};
  if (stats) *stats = st;
  if (check_args(net, tok, n, opts, err)) return -1;
  const lmn_net_desc *d = net->desc;
  gen_buf b = {0};
  int P = 0;
  if (encode_prompt(d, tok, prompt ? prompt : "", prompt ? prompt_len : 0, &b.ids, &P, err)) return -1;
  st.prompt_tokens = P;
  st.ctx = (long)P + n < d->ctx ? P + n : d->ctx;
  b.logits = malloc((size_t)d->vocab * sizeof *b.logits);
  b.scratch = malloc(lmn_sample_scratch_bytes(d->vocab));
  int rc = -1;
  if (!b.logits || !b.scratch) {
    lmn_errf(err, "%s: out of memory for the logits", d->name);
  } else if (reserve_cache(net, st.ctx, err) == 0) {
    double t0 = lmn_clock_s();
    if (n > 0) d->decode(net, b.ids, P, 0, b.logits);
    st.prefill_s = lmn_clock_s() - t0;
    rc = gen_loop(net, tok, &b, P, n, opts, seed, fn, ctx, &st, err);
  }
  gen_buf_free(&b);
  if (stats) *stats = st;
  return rc;
}

typedef struct text_out {
  char *out;
  size_t cap, len;
} text_out;

static int append_text(void *ctx, int32_t id, const char *bytes, size_t len) {
  (void)id;
  text_out *t = ctx;
  for (size_t i = 0; i < len; i++, t->len++)
    if (t->cap && t->len < t->cap - 1) t->out[t->len] = bytes[i];
  return 0;
}

int lmn_generate(lmn_net *net, const lmn_tokenizer *tok, const char *prompt, int n,
                 const lmn_sample_opts *opts, uint64_t seed, char *out, size_t cap, lmn_err *err) {
  text_out t = {out, out ? cap : 0, 0};
  if (t.cap) out[0] = '\0';
  size_t plen = prompt ? strlen(prompt) : 0;
  if (lmn_generate_stream(net, tok, prompt, plen, n, opts, seed, append_text, &t, NULL, err)) return -1;
  if (t.cap) out[t.len < t.cap - 1 ? t.len : t.cap - 1] = '\0';
  return t.len > (size_t)0x7fffffff ? 0x7fffffff : (int)t.len;
}
