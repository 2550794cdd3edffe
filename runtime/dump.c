/* dump.c: the network's state written for another implementation: `NAME dump-state` (the parameters and one
 * batch in a safetensors file, format in dump.h, for the PyTorch twin: config, network as `eval` creates it,
 * first training batch, optimizer settings as metadata) and `NAME export` (a folder that rebuilds the trained
 * network elsewhere: weights, network JSON, source, and a self-check). */
#include "dump.h"

#include <cblas.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "qnet.h"
#include "config.h"
#include "data.h"
#include "driver.h"
#include "lmn_file.h"
#include "safetensors.h"
#include "tokenizer.h"

#define F32_EXACT 16777216L /* 2^24: integers up to this are exact in F32 */
#define EXPORT_TEST_SEQ 32  /* positions of the sequence whose outputs an export carries as its self-check */

/* The batch as floats, each value checked to lie in [lo, hi). */
static float *ints_to_f32(const int32_t *x, size_t n, long lo, long hi, const char *what, const char *net,
                          lmn_err *err) {
  float *f = malloc((n ? n : 1) * sizeof *f);
  if (!f) return lmn_errf(err, "%s: dump-state: out of memory for the %s", net, what), NULL;
  for (size_t i = 0; i < n; i++) {
    if (x[i] < lo || x[i] >= hi || labs((long)x[i]) > F32_EXACT) {
      lmn_errf(err, "%s: dump-state: %s[%zu] = %" PRId32 " is outside [%ld, %ld)", net, what, i, x[i], lo,
               hi);
      free(f);
      return NULL;
    }
    f[i] = (float)x[i];
  }
  return f;
}

static int add_meta(lmn_st_writer *w, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int add_meta(lmn_st_writer *w, const char *key, const char *fmt, ...) {
  char v[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v, sizeof v, fmt, ap);
  va_end(ap);
  return lmn_st_writer_add_meta(w, key, v, NULL);
}

/* Every parameter as f32 (without all: not the frozen ones read from model files); the frozen matrices kept
 * in a file format are dequantized into copies[i], which the caller frees after writing. */
static int add_params(lmn_st_writer *w, const lmn_net *net, int all, float **copies, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  for (int i = 0; i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    int64_t shape[2] = {p->rows, p->cols};
    if (!all && p->from_file && !p->trainable) continue;
    const float *x = lmn_w(net, i);
    if (!x) {
      copies[i] = malloc((size_t)p->rows * (size_t)p->cols * sizeof(float));
      if (!copies[i]) return lmn_errf(err, "%s: dump-state: out of memory for '%s'", d->name, p->name);
      lmn_net_param_rows(net, i, 0, p->rows, copies[i]);
      x = copies[i];
    }
    if (lmn_st_writer_add_f32(w, p->name, p->cols ? 2 : 1, shape, x, err)) return -1;
  }
  return 0;
}

static int add_header_meta(lmn_st_writer *w, const lmn_net *net, int B, int T) {
  const lmn_net_desc *d = net->desc;
  int bad = add_meta(w, "format", "%s", LMN_DUMP_FORMAT);
  bad |= add_meta(w, "version", "%d", LMN_DUMP_VERSION);
  bad |= add_meta(w, "network", "%s", d->name);
  bad |= add_meta(w, "source", "%s", d->source ? d->source : "");
  bad |= add_meta(w, "hash", "%016" PRIx64, d->hash);
  bad |= add_meta(w, "aggregate", "%s", d->aggregate_mean ? "mean" : "sum");
  bad |= add_meta(w, "batch", "%d", B);
  bad |= add_meta(w, "seq", "%d", T);
  bad |= add_meta(w, "prefix", "%d", d->prefix);
  bad |= add_meta(w, "vocab", "%d", d->vocab);
  bad |= add_meta(w, "classes", "%d", d->classes);
  bad |= add_meta(w, "step", "%ld", net->step);
  bad |= add_meta(w, "targets", "%s", d->classes > 0 ? "labels" : "next_tokens");
  bad |= add_meta(w, "batch_dtype", "int32-as-f32");
  return bad ? -1 : 0;
}

int lmn_dump_state_meta(lmn_net *net, const int32_t *tokens, const int32_t *targets, int B, int T,
                        const char *const *meta, int n_meta, const char *path, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  if (B < 1 || T < 1 || (n_meta > 0 && !meta) || n_meta < 0)
    return lmn_errf(err, "%s: dump-state: invalid batch %d x %d or metadata", d->name, B, T);
  int cls = d->classes > 0;
  size_t n = (size_t)B * (size_t)T, n_tg = cls ? (size_t)B : n;
  float *tok = ints_to_f32(tokens, n, 0, d->vocab, "tokens", d->name, err);
  float *tg = tok ? ints_to_f32(targets, n_tg, cls ? 0 : -1, cls ? d->classes : d->vocab,
                                cls ? "labels" : "targets", d->name, err)
                  : NULL;
  lmn_st_writer *w = NULL;
  int rc = tok && tg ? lmn_st_writer_new(&w, err) : -1;
  int64_t shape_tok[2] = {B, T}, shape_tg[2] = {B, T};
  float **copies = calloc((size_t)d->n_params + 1, sizeof *copies);
  if (!copies) rc = lmn_errf(err, "%s: dump-state: out of memory", d->name);
  if (!rc) rc = add_params(w, net, 1, copies, err);
  if (!rc) rc = lmn_st_writer_add_f32(w, "batch:tokens", 2, shape_tok, tok, err);
  if (!rc) rc = lmn_st_writer_add_f32(w, "batch:targets", cls ? 1 : 2, shape_tg, tg, err);
  if (!rc && add_header_meta(w, net, B, T))
    rc = lmn_errf(err, "%s: dump-state: out of memory for the metadata", d->name);
  for (int i = 0; i < n_meta && !rc; i++) rc = lmn_st_writer_add_meta(w, meta[2 * i], meta[2 * i + 1], err);
  if (!rc) rc = lmn_st_writer_write(w, path, err);
  lmn_st_writer_free(w);
  for (int i = 0; copies && i < d->n_params; i++) free(copies[i]);
  free(copies);
  free(tok);
  free(tg);
  return rc;
}

int lmn_dump_state(lmn_net *net, const int32_t *tokens, const int32_t *targets, int B, int T,
                   const char *path, lmn_err *err) {
  return lmn_dump_state_meta(net, tokens, targets, B, T, NULL, 0, path, err);
}

/* ---- the command ---------------------------------------------------------------------------------- */

typedef struct dump_run {
  lmn_train_config cfg;
  lmn_net *net;
  lmn_data data;
  int32_t *x, *y;
  char weights[LMN_CKPT_PATH_MAX]; /* the checkpoint loaded, "" for the seeded initialisation */
} dump_run;

/* Weights as `eval` picks them: ckpt, else the newest checkpoint of checkpoint.dir, else none. */
static int load_weights(dump_run *r, const char *ckpt, lmn_err *err) {
  r->weights[0] = '\0';
  if (ckpt) {
    if (snprintf(r->weights, sizeof r->weights, "%s", ckpt) >= (int)sizeof r->weights)
      return lmn_errf(err, "%s: path too long", ckpt);
  } else if (r->cfg.checkpoint.dir) {
    int found = lmn_checkpoint_latest(r->cfg.checkpoint.dir, r->weights, sizeof r->weights, NULL, err);
    if (found < 0) return -1;
    if (!found) r->weights[0] = '\0';
  }
  return r->weights[0] ? lmn_checkpoint_load(r->net, r->weights, err) : 0;
}

/* The first batch of the training stream, as step 1 of `train` draws it. */
static int first_batch(dump_run *r, const lmn_net_desc *d, lmn_err *err) {
  lmn_tokenizer tok;
  if (lmn_net_tokenizer(d, &tok, err)) return -1;
  lmn_data_opts o;
  lmn_data_opts_from_config(&o, &r->cfg, &tok);
  int rc = lmn_data_open_classes(&r->data, &o, d->classes, err);
  lmn_tokenizer_free(&tok);
  if (rc) return -1;
  size_t n = (size_t)r->cfg.batch * (size_t)r->cfg.seq_len;
  r->x = malloc(n * sizeof *r->x);
  r->y = malloc(n * sizeof *r->y);
  if (!r->x || !r->y) return lmn_errf(err, "%s: out of memory for a batch of %zu tokens", r->cfg.path, n);
  lmn_data_state st;
  lmn_data_state_init(&st, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, r->cfg.seed);
  return lmn_data_next(&r->data, &st, r->cfg.batch, r->cfg.seq_len, r->x, r->y, err);
}

static int select_first_stage(dump_run *r, lmn_err *err) {
  const lmn_stage *s = &r->cfg.stages[0];
  int names = s->train == LMN_TRAIN_NAMES;
  return lmn_net_select(r->net, s->train == LMN_TRAIN_EDGES, names ? s->names : NULL, names ? s->n_names : 0,
                        err);
}

/* The config's optimizer settings as metadata pairs; strings live in buf. */
static int config_meta(const dump_run *r, const char **kv, char (*buf)[64], char *names, size_t names_cap) {
  const lmn_train_config *c = &r->cfg;
  const lmn_stage *s = &c->stages[0];
  int n = 0;
#define KV(key, ...) (snprintf(buf[n], 64, __VA_ARGS__), kv[2 * n] = key, kv[2 * n + 1] = buf[n], n++)
  KV("seed", "%" PRIu64, c->seed);
  KV("lr", "%.17g", c->optimizer.lr);
  KV("beta1", "%.17g", c->optimizer.betas[0]);
  KV("beta2", "%.17g", c->optimizer.betas[1]);
  KV("eps", "%.17g", c->optimizer.eps);
  KV("weight_decay", "%.17g", c->optimizer.weight_decay);
  char nd[64];
  KV("no_decay", "%s", lmn_no_decay_text(c->optimizer.no_decay, nd, sizeof nd));
  KV("grad_clip", "%.17g", c->grad_clip);
  KV("schedule", "%s", lmn_decay_name(c->schedule.decay));
  KV("warmup", "%ld", c->schedule.warmup);
  KV("min_lr", "%.17g", c->schedule.min_lr);
  KV("steps", "%ld", c->steps);
  KV("stage_train", "%s",
     s->train == LMN_TRAIN_ALL     ? "all"
     : s->train == LMN_TRAIN_EDGES ? "edges"
                                   : "names");
#undef KV
  names[0] = '\0';
  for (int i = 0; i < s->n_names; i++) {
    size_t len = strlen(names);
    snprintf(names + len, names_cap - len, "%s%s", i ? "," : "", s->names[i]);
  }
  kv[2 * n] = "stage_names", kv[2 * n + 1] = names, n++;
  kv[2 * n] = "config", kv[2 * n + 1] = c->path, n++;
  kv[2 * n] = "weights", kv[2 * n + 1] = r->weights[0] ? r->weights : "seeded initialisation", n++;
  return n;
}

/* Loads the config and creates the network as `eval` does (batch x seq_len of the config; with one_short, one
 * sequence of at most EXPORT_TEST_SEQ positions). */
static int run_open(dump_run *r, const lmn_net_desc *d, const char *config, long threads, int one_short,
                    lmn_err *err) {
  memset(r, 0, sizeof *r);
  if (lmn_config_load(config, &r->cfg, err)) return -1;
  if (one_short) {
    r->cfg.batch = 1;
    if (r->cfg.seq_len > EXPORT_TEST_SEQ) r->cfg.seq_len = EXPORT_TEST_SEQ;
  }
  int nt = lmn_threads_resolve(threads ? threads : r->cfg.threads);
  openblas_set_num_threads(nt);
  if (lmn_net_create(&r->net, d, (int)r->cfg.batch, (int)r->cfg.seq_len, nt, r->cfg.seed, err)) {
    char m[sizeof err->msg];
    snprintf(m, sizeof m, "%s", err->msg);
    return lmn_errf(err, "%s: %s", r->cfg.path, m);
  }
  return 0;
}

static void run_close(dump_run *r) {
  lmn_net_destroy(r->net);
  lmn_data_close(&r->data);
  lmn_config_free(&r->cfg);
  free(r->x);
  free(r->y);
}

int lmn_dump_state_run(const lmn_net_desc *d, const char *config, const char *ckpt, long threads,
                       const char *out, FILE *log, lmn_err *err) {
  dump_run r;
  int rc = run_open(&r, d, config, threads, 0, err);
  if (!rc)
    rc = load_weights(&r, ckpt, err) || select_first_stage(&r, err) || first_batch(&r, d, err) ? -1 : 0;
  if (!rc) {
    const char *kv[2 * 20];
    char buf[20][64], names[4096];
    int n = config_meta(&r, kv, buf, names, sizeof names);
    rc = lmn_dump_state_meta(r.net, r.x, r.y, (int)r.cfg.batch, (int)r.cfg.seq_len, kv, n, out, err);
  }
  if (!rc && log)
    fprintf(log, "%s: %d tensors and a batch of %ld x %ld (%s) written to %s\n", d->name, d->n_params,
            r.cfg.batch, r.cfg.seq_len, r.weights[0] ? r.weights : "seeded initialisation", out);
  run_close(&r);
  return rc;
}

/* ---- export --------------------------------------------------------------------------------------- */

/* DIR/model.safetensors: the parameters (see add_params) with what they are as metadata. */
static int export_weights(const dump_run *r, int all, const char *dir, lmn_err *err) {
  const lmn_net_desc *d = r->net->desc;
  lmn_st_writer *w = NULL;
  float **copies = calloc((size_t)d->n_params + 1, sizeof *copies);
  if (!copies) return lmn_errf(err, "%s: export: out of memory", d->name);
  char path[4200];
  int rc = lmn_st_writer_new(&w, err);
  if (!rc) rc = add_params(w, r->net, all, copies, err);
  if (!rc && (add_meta(w, "format", "lmnet-export") || add_meta(w, "version", "1") ||
              add_meta(w, "network", "%s", d->name) || add_meta(w, "hash", "%016" PRIx64, d->hash) ||
              add_meta(w, "step", "%ld", r->net->step) ||
              add_meta(w, "weights", "%s", r->weights[0] ? r->weights : "seeded initialisation") ||
              add_meta(w, "model_file_tensors", "%s", all ? "included" : "omitted")))
    rc = lmn_errf(err, "%s: export: out of memory for the metadata", d->name);
  if (!rc) rc = lmn_path_join(path, sizeof path, dir, "model.safetensors", err);
  if (!rc) rc = lmn_st_writer_write(w, path, err);
  lmn_st_writer_free(w);
  for (int i = 0; i < d->n_params; i++) free(copies[i]);
  free(copies);
  return rc;
}

/* DIR/test_data.safetensors: the first training sequence ("tokens" [1, T], int32 values as F32) and the
 * primary output the network computes for it ("output": [1, T, vocab] without prefix rows, or [1, classes]),
 * so that whoever rebuilds the network can check it reproduces ours. */
static int export_test_data(const dump_run *r, const char *dir, lmn_err *err) {
  const lmn_net_desc *d = r->net->desc;
  int T = (int)r->cfg.seq_len, P = d->prefix, C = d->classes > 0 ? d->classes : d->vocab;
  d->forward(r->net, r->x, r->y, 1, T, 0);
  const float *y = d->output(r->net, 1, T);
  float *tok = ints_to_f32(r->x, (size_t)T, 0, d->vocab, "tokens", d->name, err);
  if (!tok) return -1;
  lmn_st_writer *w = NULL;
  char path[4200];
  int64_t shape_tok[2] = {1, T}, shape_out[3] = {1, T, C}, shape_cls[2] = {1, C};
  int rc = lmn_st_writer_new(&w, err);
  if (!rc) rc = lmn_st_writer_add_f32(w, "tokens", 2, shape_tok, tok, err);
  if (!rc && d->classes > 0) rc = lmn_st_writer_add_f32(w, "output", 2, shape_cls, y, err);
  if (!rc && d->classes <= 0) rc = lmn_st_writer_add_f32(w, "output", 3, shape_out, y + (size_t)P * C, err);
  if (!rc) rc = lmn_path_join(path, sizeof path, dir, "test_data.safetensors", err);
  if (!rc) rc = lmn_st_writer_write(w, path, err);
  lmn_st_writer_free(w);
  free(tok);
  return rc;
}

static int export_files(const dump_run *r, int all, const char *dir, lmn_err *err) {
  const lmn_net_desc *d = r->net->desc;
  if (!d->ir_json)
    return lmn_errf(err, "%s: export: this executable carries no network description; recompile it with lmnc",
                    d->name);
  if (lmn_checkpoint_mkdir(dir, err) || export_weights(r, all, dir, err) || export_test_data(r, dir, err) ||
      lmn_write_text_atomic(dir, "network.json", d->ir_json, err))
    return -1;
  return d->source_text ? lmn_write_text_atomic(dir, "network.lmn", d->source_text, err) : 0;
}

int lmn_export_run(const lmn_net_desc *d, const char *config, const char *ckpt, int all, long threads,
                   const char *dir, FILE *log, lmn_err *err) {
  dump_run r;
  int rc = run_open(&r, d, config, threads, 1, err);
  if (!rc) rc = load_weights(&r, ckpt, err) || first_batch(&r, d, err) || export_files(&r, all, dir, err) ? -1 : 0;
  if (!rc && log)
    fprintf(log, "%s: exported %s to %s/: model.safetensors (%s), network.json, network.lmn, test_data.safetensors\n",
            d->name, r.weights[0] ? r.weights : "the seeded initialisation", dir,
            all ? "every tensor" : "every tensor not read from a model file");
  run_close(&r);
  return rc;
}
