/* api.c: the checked public API of lmn.h over the network-independent runtime (net.c, checkpoint.c) and the
 * functions lmnc generates into a network's descriptor. Every function checks its arguments and the order
 * of calls against what it knows of the network (the shapes it was created for, the last forward) before
 * anything runs, so that a bad call is an error message and never reaches generated code. */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "checkpoint.h"
#include "lmn.h"
#include "net.h"

const char *lmn_version(void) {
  return LMN_VERSION;
}

/* ---- checks ---------------------------------------------------------------------------------------- */

static int no_net(const char *fn, lmn_err *err) {
  return lmn_errf(err, "%s: no network (NULL)", fn);
}

static int check_shape(const lmn_net *net, const char *fn, int B, int T, lmn_err *err) {
  const char *name = net->desc->name;
  if (B < 1 || B > net->B)
    return lmn_errf(err, "%s: %s: batch %d is outside 1..%d (the batch the network was created for)", name,
                    fn, B, net->B);
  if (T < 1 || T > net->T)
    return lmn_errf(err,
                    "%s: %s: sequence length %d is outside 1..%d (the length the network was created for)",
                    name, fn, T, net->T);
  return 0;
}

/* ids[0..n) in [lo, hi); `what` names them in messages, `range` the set they belong to. */
static int check_ids(const lmn_net *net, const char *fn, const char *what, const int32_t *ids, size_t n,
                     int lo, int hi, const char *range, lmn_err *err) {
  const char *name = net->desc->name;
  if (!ids) return lmn_errf(err, "%s: %s: no %s (NULL)", name, fn, what);
  for (size_t i = 0; i < n; i++)
    if (ids[i] < lo || ids[i] >= hi)
      return lmn_errf(err, "%s: %s: %s[%zu] = %ld is outside [%d, %d) (%s)", name, fn, what, i, (long)ids[i],
                      lo, hi, range);
  return 0;
}

static int check_tokens(const lmn_net *net, const char *fn, const int32_t *tokens, size_t n, lmn_err *err) {
  return check_ids(net, fn, "tokens", tokens, n, 0, net->desc->vocab, "the vocabulary", err);
}

/* FNV-1a over the batch: lmn_backward must see the tokens of the forward it follows. */
static uint64_t hash_tokens(const int32_t *tokens, size_t n) {
  const unsigned char *p = (const unsigned char *)tokens;
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n * sizeof *tokens; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

/* ---- creation ---------------------------------------------------------------------------------------- */

int lmn_create(lmn_net **net, const lmn_net_desc *desc, int B, int T, int threads, uint64_t seed,
               lmn_err *err) {
  if (!net) return lmn_errf(err, "lmn_create: no place for the network (net is NULL)");
  *net = NULL;
  if (!desc) return lmn_errf(err, "lmn_create: no network description (desc is NULL)");
  if (!desc->name || !desc->forward || !desc->backward || !desc->output || !desc->arena_floats ||
      desc->vocab < 1 || desc->ctx < 1 || desc->prefix < 0 || desc->classes < 0 || desc->n_params < 0)
    return lmn_errf(err,
                    "lmn_create: the description is not one lmnc generated (a name, sizes and functions "
                    "are missing)");
  if (threads < 0 || threads > LMN_MAX_THREADS)
    return lmn_errf(err, "%s: lmn_create: %d threads is outside 0..%d (0: one per online CPU)", desc->name,
                    threads, LMN_MAX_THREADS);
  if (B < 1) return lmn_errf(err, "%s: lmn_create: batch %d is below 1", desc->name, B);
  if (T < 1 || T > desc->ctx)
    return lmn_errf(err, "%s: lmn_create: sequence length %d is outside 1..%d (the network's context)",
                    desc->name, T, desc->ctx);
  if ((long long)B * (T + desc->prefix) > INT_MAX)
    return lmn_errf(err, "%s: lmn_create: batch %d x %d positions is more than %d rows", desc->name, B,
                    T + desc->prefix, INT_MAX);
  return lmn_net_create(net, desc, B, T, lmn_threads_resolve(threads), seed, err);
}

void lmn_destroy(lmn_net *net) {
  lmn_net_destroy(net);
}

/* ---- facts ------------------------------------------------------------------------------------------- */

const char *lmn_desc_name(const lmn_net_desc *d) {
  return d && d->name ? d->name : "";
}
int lmn_desc_vocab(const lmn_net_desc *d) {
  return d ? d->vocab : 0;
}
int lmn_desc_classes(const lmn_net_desc *d) {
  return d ? d->classes : 0;
}
int lmn_desc_ctx(const lmn_net_desc *d) {
  return d ? d->ctx : 0;
}

const char *lmn_name(const lmn_net *net) {
  return net ? lmn_desc_name(net->desc) : "";
}
int lmn_vocab(const lmn_net *net) {
  return net ? net->desc->vocab : 0;
}
int lmn_classes(const lmn_net *net) {
  return net ? net->desc->classes : 0;
}
int lmn_ctx(const lmn_net *net) {
  return net ? net->desc->ctx : 0;
}
int lmn_prefix(const lmn_net *net) {
  return net ? net->desc->prefix : 0;
}
int lmn_max_batch(const lmn_net *net) {
  return net ? net->B : 0;
}
int lmn_max_seq(const lmn_net *net) {
  return net ? net->T : 0;
}
int lmn_threads(const lmn_net *net) {
  return net ? net->n_threads : 0;
}
long lmn_step(const lmn_net *net) {
  return net ? net->step : 0;
}

/* ---- forward, backward, update ------------------------------------------------------------------------ */

int lmn_forward(lmn_net *net, const int32_t *tokens, const int32_t *targets, int B, int T, int train,
                float *loss, lmn_err *err) {
  static const char fn[] = "lmn_forward";
  if (!net) return no_net(fn, err);
  const lmn_net_desc *d = net->desc;
  size_t n = (size_t)B * (size_t)T;
  if (check_shape(net, fn, B, T, err) || check_tokens(net, fn, tokens, n, err)) return -1;
  if (train != 0 && train != 1) return lmn_errf(err, "%s: %s: train is %d, not 0 or 1", d->name, fn, train);
  if (train && !targets)
    return lmn_errf(err, "%s: %s: training (train = 1) needs %s", d->name, fn,
                    d->classes > 0 ? "labels" : "targets");
  if (targets && (d->classes > 0 ? check_ids(net, fn, "labels", targets, (size_t)B, -1, d->classes,
                                             "the classes, or -1: no loss", err)
                                 : check_ids(net, fn, "targets", targets, n, -1, d->vocab,
                                             "the vocabulary, or -1: no loss", err)))
    return -1;
  if (train && lmn_net_enable_training(net, err)) return -1; /* training starts */
  net->fwd_state = LMN_FWD_NONE;
  float l = d->forward(net, tokens, targets, B, T, train);
  net->fwd_state = train ? LMN_FWD_TRAIN : LMN_FWD_OUTPUTS;
  net->fwd_B = B;
  net->fwd_T = T;
  net->fwd_hash = train ? hash_tokens(tokens, n) : 0;
  if (loss) *loss = targets ? l : 0.0f;
  return 0;
}

int lmn_logits(lmn_net *net, int B, int T, const float **out, lmn_err *err) {
  static const char fn[] = "lmn_logits";
  if (!net) return no_net(fn, err);
  const char *name = net->desc->name;
  if (!out) return lmn_errf(err, "%s: %s: no place for the pointer (out is NULL)", name, fn);
  *out = NULL;
  if (check_shape(net, fn, B, T, err)) return -1;
  if (net->fwd_state == LMN_FWD_TRAIN)
    return lmn_errf(err,
                    "%s: %s: the last forward trained (train = 1), which consumes the outputs; run one "
                    "with train = 0",
                    name, fn);
  if (net->fwd_state != LMN_FWD_OUTPUTS)
    return lmn_errf(err, "%s: %s: no outputs: run lmn_forward (train = 0) first", name, fn);
  if (B != net->fwd_B || T != net->fwd_T)
    return lmn_errf(err, "%s: %s: the last forward ran %d x %d, not %d x %d", name, fn, net->fwd_B,
                    net->fwd_T, B, T);
  *out = net->desc->output(net, B, T);
  return 0;
}

int lmn_backward(lmn_net *net, const int32_t *tokens, int B, int T, lmn_err *err) {
  static const char fn[] = "lmn_backward";
  if (!net) return no_net(fn, err);
  const char *name = net->desc->name;
  size_t n = (size_t)B * (size_t)T;
  if (check_shape(net, fn, B, T, err) || check_tokens(net, fn, tokens, n, err)) return -1;
  if (net->fwd_state != LMN_FWD_TRAIN)
    return lmn_errf(err,
                    "%s: %s: no forward to go back through: run lmn_forward with train = 1 first (each "
                    "forward allows one backward)",
                    name, fn);
  if (B != net->fwd_B || T != net->fwd_T)
    return lmn_errf(err, "%s: %s: the last forward ran %d x %d, not %d x %d", name, fn, net->fwd_B,
                    net->fwd_T, B, T);
  if (hash_tokens(tokens, n) != net->fwd_hash)
    return lmn_errf(err, "%s: %s: the tokens differ from those of the last forward", name, fn);
  net->fwd_state = LMN_FWD_NONE;
  net->desc->backward(net, tokens, B, T);
  return 0;
}

int lmn_zero_grad(lmn_net *net, lmn_err *err) {
  if (!net) return no_net("lmn_zero_grad", err);
  if (net->grads) lmn_net_zero_grad(net); /* before training starts there is nothing to zero */
  return 0;
}

int lmn_update(lmn_net *net, const lmn_adamw *o, float *grad_norm, lmn_err *err) {
  static const char fn[] = "lmn_update";
  if (!net) return no_net(fn, err);
  const char *name = net->desc->name;
  if (!o) return lmn_errf(err, "%s: %s: no optimizer settings (NULL)", name, fn);
  if (!isfinite(o->lr) || o->lr < 0 || !(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1) ||
      !isfinite(o->eps) || o->eps <= 0 || !isfinite(o->weight_decay) || o->weight_decay < 0 ||
      isnan(o->max_norm))
    return lmn_errf(
        err,
        "%s: %s: invalid AdamW settings (lr %g, betas %g %g, eps %g, weight decay %g, max norm %g): "
        "lr >= 0, betas in [0, 1), eps > 0, weight decay >= 0",
        name, fn, o->lr, o->beta1, o->beta2, o->eps, o->weight_decay, o->max_norm);
  if (!net->grads)
    return lmn_errf(err,
                    "%s: %s: no gradients: training has not started (lmn_forward with train = 1, then "
                    "lmn_backward)",
                    name, fn);
  double norm = lmn_net_update(net, o->lr, o->beta1, o->beta2, o->eps, o->weight_decay, o->max_norm);
  lmn_net_zero_grad(net);
  net->cache_len = 0; /* the caches hold keys and values of the old weights */
  if (net->fwd_state == LMN_FWD_TRAIN) net->fwd_state = LMN_FWD_NONE; /* its backward would mix weights */
  if (grad_norm) *grad_norm = (float)norm;
  if (!isfinite(norm))
    return lmn_errf(err, "%s: %s: the gradient norm is %s: the weights are no longer finite", name, fn,
                    isnan(norm) ? "NaN" : "infinite");
  return 0;
}

/* ---- decoding -------------------------------------------------------------------------------------- */

static int check_decoder(const lmn_net *net, const char *fn, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  if (d->classes > 0)
    return lmn_errf(err, "%s: %s: a classification network (%d classes) does not decode", d->name, fn,
                    d->classes);
  if (!d->decode || !d->cache_floats)
    return lmn_errf(err, "%s: %s: the network has no decoding", d->name, fn);
  return 0;
}

int lmn_reserve_cache(lmn_net *net, int ctx, lmn_err *err) {
  static const char fn[] = "lmn_reserve_cache";
  if (!net) return no_net(fn, err);
  if (check_decoder(net, fn, err)) return -1;
  if (ctx < 1 || ctx > net->desc->ctx)
    return lmn_errf(err, "%s: %s: %d positions is outside 1..%d (the network's context)", net->desc->name, fn,
                    ctx, net->desc->ctx);
  return lmn_net_enable_cache(net, ctx, err);
}

int lmn_decode(lmn_net *net, const int32_t *tokens, int T, int pos0, float *logits, lmn_err *err) {
  static const char fn[] = "lmn_decode";
  if (!net) return no_net(fn, err);
  const char *name = net->desc->name;
  if (check_decoder(net, fn, err)) return -1;
  if (T < 1) return lmn_errf(err, "%s: %s: %d tokens (at least 1)", name, fn, T);
  if (check_tokens(net, fn, tokens, (size_t)T, err)) return -1;
  if (!net->cache && lmn_net_enable_cache(net, net->desc->ctx, err)) return -1;
  if (pos0 < 0 || pos0 > net->cache_len)
    return lmn_errf(err, "%s: %s: position %d is not in 0..%d (the positions fed so far)", name, fn, pos0,
                    net->cache_len);
  if ((long)pos0 + T > net->cache_ctx)
    return lmn_errf(err, "%s: %s: positions %d..%d do not fit the caches of %d positions", name, fn, pos0,
                    pos0 + T - 1, net->cache_ctx);
  net->fwd_state = LMN_FWD_NONE;
  net->desc->decode(net, tokens, T, pos0, logits);
  net->cache_len = pos0 + T;
  return 0;
}

/* ---- checkpoints ------------------------------------------------------------------------------------ */

int lmn_load_checkpoint(lmn_net *net, const char *path, lmn_err *err) {
  static const char fn[] = "lmn_load_checkpoint";
  if (!net) return no_net(fn, err);
  if (!path) return lmn_errf(err, "%s: %s: no path (NULL)", net->desc->name, fn);
  if (lmn_checkpoint_load(net, path, err)) return -1;
  net->fwd_state = LMN_FWD_NONE; /* outputs and caches of the old weights */
  net->cache_len = 0;
  return 0;
}

int lmn_save_checkpoint(const lmn_net *net, const char *path, lmn_err *err) {
  static const char fn[] = "lmn_save_checkpoint";
  if (!net) return no_net(fn, err);
  if (!path) return lmn_errf(err, "%s: %s: no path (NULL)", net->desc->name, fn);
  return lmn_checkpoint_save(net, path, NULL, err);
}
