/* generate.c: text generation with a compiled network: prompt encoding, sessions (KV caches that remember
 * the tokens they hold, so that a prompt prefills only what the caches lack), the sample/emit/decode loop,
 * stop strings, and the one-shot lmn_generate_stream / lmn_generate on top of a session. */
#include "generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"
#include "qmat.h"
#include "rng.h"

int lmn_sample_opts_check(const lmn_sample_opts *o, lmn_err *err) {
  if (!o) return lmn_errf(err, "generate: no sampling options given");
  if (isnan(o->temperature)) return lmn_errf(err, "generate: the temperature is not a number");
  if (o->top_k < 0) return lmn_errf(err, "generate: top-k %d is negative", o->top_k);
  if (isnan(o->top_p) || o->top_p < 0.0f) return lmn_errf(err, "generate: top-p must be in [0, 1]");
  return 0;
}

int lmn_encode_prompt(const lmn_net_desc *d, const lmn_tokenizer *tok, const char *text, size_t len,
                      int max_tokens, int32_t **ids, int *n, lmn_err *err) {
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
  if (r > max_tokens)
    return free(v), lmn_errf(err, "%s: the prompt has %ld tokens but the network's context is %d", d->name, r,
                             max_tokens);
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

/* ---- sessions ------------------------------------------------------------------------------------ */

int lmn_session_init(lmn_session *s, lmn_net *net, const lmn_tokenizer *tok, int ctx, lmn_err *err) {
  memset(s, 0, sizeof *s);
  lmn_sample_opts greedy = {0};
  if (check_args(net, tok, 0, &greedy, err)) return -1;
  const lmn_net_desc *d = net->desc;
  if (ctx < 1 || ctx > d->ctx) return lmn_errf(err, "%s: context %d outside 1..%d", d->name, ctx, d->ctx);
  if ((!net->cache || net->cache_ctx != ctx) && lmn_net_enable_cache(net, ctx, err)) return -1;
  s->net = net;
  s->tok = tok;
  s->ctx = ctx;
  s->ids = malloc((size_t)ctx * sizeof *s->ids);
  s->logits = malloc((size_t)d->vocab * sizeof *s->logits);
  s->scratch = malloc(lmn_sample_scratch_bytes(d->vocab));
  if (!s->ids || !s->logits || !s->scratch) {
    lmn_session_free(s);
    return lmn_errf(err, "%s: out of memory for a generation session", d->name);
  }
  return 0;
}

void lmn_session_free(lmn_session *s) {
  free(s->ids);
  free(s->logits);
  free(s->scratch);
  memset(s, 0, sizeof *s);
}

/* Text not yet passed on because it might be the start of a stop string. */
typedef struct held_text {
  char *buf;
  size_t len, cap;
} held_text;

static int held_append(held_text *h, const char *bytes, size_t len) {
  if (h->len + len + 1 > h->cap) {
    size_t cap = (h->len + len + 1) * 2;
    char *b = realloc(h->buf, cap);
    if (!b) return -1;
    h->buf = b;
    h->cap = cap;
  }
  memcpy(h->buf + h->len, bytes, len);
  h->len += len;
  h->buf[h->len] = '\0';
  return 0;
}

/* Where the first stop string begins in h (h->len when none does), and in *keep how many bytes at the end
 * must still be held because they begin a stop string. */
static size_t stop_at(const held_text *h, const lmn_gen_req *r, size_t *keep) {
  size_t first = h->len;
  *keep = 0;
  for (int i = 0; i < r->n_stop; i++) {
    size_t sl = strlen(r->stop[i]);
    if (!sl) continue;
    for (size_t at = 0; at + sl <= h->len && at < first; at++)
      if (!memcmp(h->buf + at, r->stop[i], sl)) first = at;
    for (size_t k = sl - 1 < h->len ? sl - 1 : h->len; k > *keep; k--)
      if (!memcmp(h->buf + h->len - k, r->stop[i], k)) *keep = k;
  }
  return first;
}

/* Passes on what of h is final after a token (all of it when done); 1 when a stop string ended the text or
 * fn asked to stop. */
static int release(held_text *h, const lmn_gen_req *r, int32_t id, int done, lmn_gen_stats *st) {
  size_t keep;
  size_t first = stop_at(h, r, &keep);
  size_t out = first < h->len ? first : done ? h->len : h->len - keep;
  if (first < h->len) st->stopped_stop = 1;
  if (r->fn && (out || !r->n_stop) && r->fn(r->ctx, id, h->buf, out)) st->cancelled = 1;
  memmove(h->buf, h->buf + out, h->len - out);
  h->len -= out;
  return st->stopped_stop || st->cancelled;
}

/* Positions of r->prompt already in the caches that need not be fed again. The last REFEED are always fed:
 * their logits then come from the kernels of a fresh prefill (more than LMN_Q_MATVEC_ROWS rows take the
 * f32-activation path, fewer the 8-bit one), so the answer to a prompt does not depend on what the caches
 * held before. */
#define REFEED (LMN_Q_MATVEC_ROWS + 1)
static int reusable(const lmn_session *s, const lmn_gen_req *r) {
  int k = 0;
  while (k < s->n_cached && k < r->n_prompt && s->ids[k] == r->prompt[k]) k++;
  return k < r->n_prompt - REFEED ? k : r->n_prompt > REFEED ? r->n_prompt - REFEED : 0;
}

/* Feeds ids[0..n) at position pos into the caches; the logits of the last go to s->logits. */
static void feed(lmn_session *s, const int32_t *ids, int n, int pos) {
  s->net->desc->decode(s->net, ids, n, pos, s->logits);
  memmove(s->ids + pos, ids, (size_t)n * sizeof *ids);
  s->n_cached = pos + n;
}

static int sample_loop(lmn_session *s, const lmn_gen_req *r, held_text *h, lmn_gen_stats *st, lmn_err *err) {
  const lmn_net_desc *d = s->net->desc;
  const lmn_tokenizer *tok = s->tok;
  lmn_rng rng;
  lmn_rng_seed(&rng, r->seed);
  /* a borrowed tokenizer may have fewer tokens than the network: the ids beyond are never sampled */
  int vocab = tok->vocab_size < d->vocab ? tok->vocab_size : d->vocab;
  double t0 = lmn_clock_s();
  for (int g = 0; g < r->n; g++) {
    int32_t id = lmn_sample(s->logits, vocab, &r->sample, &rng, s->scratch);
    if (id < 0) return lmn_errf(err, "%s: sampling failed at token %d", d->name, g);
    size_t len = 0;
    const char *bytes = lmn_tokenizer_decode_token(tok, id, &len);
    st->tokens++;
    if (id == tok->eos) st->stopped_eos = 1;
    if (bytes && !(st->stopped_eos && r->hide_eos) && held_append(h, bytes, len))
      return lmn_errf(err, "%s: out of memory for the generated text", d->name);
    int last = st->stopped_eos || g + 1 == r->n || s->n_cached >= st->ctx;
    if (release(h, r, id, last, st) || last) {
      st->stopped_ctx = !st->stopped_eos && g + 1 < r->n && !st->stopped_stop && !st->cancelled;
      break;
    }
    feed(s, &id, 1, s->n_cached);
  }
  st->decode_s = lmn_clock_s() - t0;
  return 0;
}

int lmn_session_generate(lmn_session *s, const lmn_gen_req *r, lmn_gen_stats *stats, lmn_err *err) {
  lmn_gen_stats st = {0};
  if (stats) *stats = st;
  if (!s || !s->net) return lmn_errf(err, "generate: no session");
  if (check_args(s->net, s->tok, r->n, &r->sample, err)) return -1;
  const lmn_net_desc *d = s->net->desc;
  if (!r->prompt || r->n_prompt < 1 || r->n_prompt > s->ctx)
    return lmn_errf(err, "%s: the prompt has %d tokens but the context is %d", d->name, r->n_prompt, s->ctx);
  for (int i = 0; i < r->n_prompt; i++)
    if (r->prompt[i] < 0 || r->prompt[i] >= d->vocab)
      return lmn_errf(err, "%s: prompt token %d has id %d outside the vocabulary of %d", d->name, i,
                      r->prompt[i], d->vocab);
  st.prompt_tokens = r->n_prompt;
  st.ctx = s->ctx;
  held_text h = {0};
  int rc = 0;
  if (r->n > 0) {
    st.reused = reusable(s, r);
    double t0 = lmn_clock_s();
    feed(s, r->prompt + st.reused, r->n_prompt - st.reused, st.reused);
    st.prefill_s = lmn_clock_s() - t0;
    rc = sample_loop(s, r, &h, &st, err);
  }
  free(h.buf);
  if (stats) *stats = st;
  return rc;
}

/* ---- one-shot generation ------------------------------------------------------------------------- */

int lmn_generate_text(lmn_net *net, const lmn_tokenizer *tok, const char *prompt, size_t prompt_len,
                      const lmn_gen_req *req, lmn_gen_stats *stats, lmn_err *err) {
  if (stats) memset(stats, 0, sizeof *stats);
  if (check_args(net, tok, req->n, &req->sample, err)) return -1;
  const lmn_net_desc *d = net->desc;
  lmn_gen_req r = *req;
  int32_t *ids = NULL;
  if (lmn_encode_prompt(d, tok, prompt ? prompt : "", prompt ? prompt_len : 0, d->ctx, &ids, &r.n_prompt,
                        err))
    return -1;
  r.prompt = ids;
  /* the caches for prompt + n positions, kept when they already hold that many */
  int want = (long)r.n_prompt + r.n < d->ctx ? r.n_prompt + r.n : d->ctx;
  int keep = net->cache && net->cache_ctx >= want ? net->cache_ctx : want;
  lmn_session s;
  int rc = lmn_session_init(&s, net, tok, keep, err);
  if (!rc) {
    s.ctx = want; /* a larger cache kept from before is not used beyond what was asked for */
    rc = lmn_session_generate(&s, &r, stats, err);
  }
  lmn_session_free(&s);
  free(ids);
  return rc;
}

int lmn_generate_stream(lmn_net *net, const lmn_tokenizer *tok, const char *prompt, size_t prompt_len, int n,
                        const lmn_sample_opts *opts, uint64_t seed, lmn_token_fn fn, void *ctx,
                        lmn_gen_stats *stats, lmn_err *err) {
  if (stats) memset(stats, 0, sizeof *stats);
  if (!opts) return lmn_sample_opts_check(opts, err);
  lmn_gen_req r = {.n = n, .sample = *opts, .seed = seed, .fn = fn, .ctx = ctx};
  return lmn_generate_text(net, tok, prompt, prompt_len, &r, stats, err);
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
