/* checkpoint.c: saving and loading training checkpoints (safetensors with lmnet metadata), the `latest`
 * pointer and the rotation of step-NNNNNN.safetensors files in a checkpoint directory. */
#include "checkpoint.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "lmn_file.h"
#include "runlog.h"
#include "safetensors.h"

/* ---- small helpers ------------------------------------------------------------------------------- */

void lmn_hex_encode(const void *data, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  const uint8_t *p = data;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int lmn_hex_decode(const char *hex, void *data, size_t n) {
  if (!hex || strlen(hex) != 2 * n) return -1;
  uint8_t *p = data;
  for (size_t i = 0; i < n; i++) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    p[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

/* Whether a parameter's values go into checkpoints: trained, or not recoverable from a model file. */
static int param_saved(const lmn_param_info *p) { return p->trainable || !p->from_file; }

static uint32_t param_shape(const lmn_param_info *p, int64_t shape[2]) {
  shape[0] = p->rows;
  shape[1] = p->cols;
  return p->cols ? 2 : 1;
}

/* "prefix" + name in a malloc'ed string (NULL when out of memory). */
static char *prefixed(const char *prefix, const char *name) {
  size_t a = strlen(prefix), b = strlen(name);
  char *s = malloc(a + b + 1);
  if (s) {
    memcpy(s, prefix, a);
    memcpy(s + a, name, b + 1);
  }
  return s;
}

/* Strict decimal parse of a whole string into [lo, hi]. */
static int parse_long(const char *s, long lo, long hi, long *out) {
  if (!s || !*s || isspace((unsigned char)*s)) return -1;
  errno = 0;
  char *end;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int parse_u64(const char *s, uint64_t *out) {
  if (!s || !isdigit((unsigned char)*s)) return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return -1;
  *out = (uint64_t)v;
  return 0;
}

/* ---- saving -------------------------------------------------------------------------------------- */

static int add_meta_num(lmn_st_writer *w, const char *key, long long v, lmn_err *err) {
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", v);
  return lmn_st_writer_add_meta(w, key, buf, err);
}

/* A path is only a note: when it is not valid UTF-8, its non-ASCII bytes become '?'. */
static int add_meta_path(lmn_st_writer *w, const char *key, const char *path, lmn_err *err) {
  lmn_err ignored;
  if (lmn_st_writer_add_meta(w, key, path, &ignored) == 0) return 0;
  char *s = strdup(path);
  if (!s) return lmn_errf(err, "out of memory");
  for (char *c = s; *c; c++)
    if ((unsigned char)*c >= 0x80) *c = '?';
  int rc = lmn_st_writer_add_meta(w, key, s, err);
  free(s);
  return rc;
}

static int add_run_meta(lmn_st_writer *w, const lmn_ckpt_state *st, lmn_err *err) {
  char data[2 * sizeof st->data + 1], rng[2 * sizeof st->rng + 1], seed[32];
  lmn_hex_encode(&st->data, sizeof st->data, data);
  lmn_hex_encode(&st->rng, sizeof st->rng, rng);
  snprintf(seed, sizeof seed, "%" PRIu64, st->seed);
  if (lmn_st_writer_add_meta(w, "data_state", data, err) ||
      lmn_st_writer_add_meta(w, "rng_state", rng, err) || add_meta_num(w, "batch", st->batch, err) ||
      add_meta_num(w, "seq_len", st->seq_len, err) || lmn_st_writer_add_meta(w, "seed", seed, err))
    return -1;
  if (st->config_text && add_meta_path(w, "config_yaml", st->config_text, err)) return -1;
  return add_meta_path(w, "config", st->config, err);
}

static int add_meta(lmn_st_writer *w, const lmn_net *net, const lmn_ckpt_state *st, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  char hash[17];
  snprintf(hash, sizeof hash, "%016" PRIx64, d->hash);
  if (lmn_st_writer_add_meta(w, "format", LMN_CKPT_FORMAT, err) ||
      add_meta_num(w, "version", LMN_CKPT_VERSION, err) ||
      lmn_st_writer_add_meta(w, "network", d->name, err) || lmn_st_writer_add_meta(w, "hash", hash, err) ||
      lmn_st_writer_add_meta(w, "aggregate", d->aggregate_mean ? "mean" : "sum", err) ||
      add_meta_num(w, "step", st ? st->step : net->step, err) ||
      add_meta_num(w, "optimizer_step", net->step, err) ||
      lmn_st_writer_add_meta(w, "checksum", "crc32c", err))
    return -1;
  return st && st->has_run ? add_run_meta(w, st, err) : 0;
}

/* "crc32c.NAME" = 8 hex digits: the CRC32C of the tensor's n floats as stored (little-endian f32). */
static int add_checksum(lmn_st_writer *w, const char *name, const float *x, size_t n, lmn_err *err) {
  char *key = prefixed(LMN_CKPT_CRC_PREFIX, name), hex[9];
  if (!key) return lmn_errf(err, "out of memory");
  snprintf(hex, sizeof hex, "%08" PRIx32, lmn_crc32c(0, x, n * sizeof *x));
  int rc = lmn_st_writer_add_meta(w, key, hex, err);
  free(key);
  return rc;
}

/* The tensors, then their first moments, then their second moments, each with its checksum. Moments that do
 * not exist yet (training has not started) are written as the zeros they start from, all read from `zeros`
 * (the largest trainable tensor's size), which must outlive the writer. */
static int add_tensors(lmn_st_writer *w, const lmn_net *net, const float *zeros, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  static const char *const prefixes[3] = {"", "m.", "v."};
  const float *bufs[3] = {net->params, net->m, net->v};
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < d->n_params; i++) {
      const lmn_param_info *p = &d->params[i];
      if (k == 0 ? !param_saved(p) : !p->trainable) continue;
      int64_t shape[2];
      uint32_t nd = param_shape(p, shape);
      char *name = prefixed(prefixes[k], p->name);
      if (!name) return lmn_errf(err, "out of memory");
      const float *x = !bufs[k] ? zeros : k == 0 ? bufs[0] + net->poff[i] : bufs[k] + p->offset;
      int rc = lmn_st_writer_add_f32(w, name, nd, shape, x, err) ||
               add_checksum(w, name, x, (size_t)p->rows * (size_t)(p->cols ? p->cols : 1), err);
      free(name);
      if (rc) return -1;
    }
  return 0;
}

int lmn_checkpoint_save(const lmn_net *net, const char *path, const lmn_ckpt_state *st, lmn_err *err) {
  lmn_st_writer *w = NULL;
  float *zeros = NULL;
  if (!net->m || !net->v) {
    size_t most = 1;
    for (int i = 0; i < net->desc->n_params; i++) {
      const lmn_param_info *p = &net->desc->params[i];
      size_t n = (size_t)p->rows * (size_t)(p->cols ? p->cols : 1);
      if (p->trainable && n > most) most = n;
    }
    if (!(zeros = calloc(most, sizeof *zeros))) return lmn_errf(err, "%s: out of memory", path);
  }
  if (lmn_st_writer_new(&w, err)) return free(zeros), -1;
  int rc = add_meta(w, net, st, err) || add_tensors(w, net, zeros, err) ? -1 : 0;
  if (rc) {
    char m[sizeof err->msg];
    snprintf(m, sizeof m, "%s", err ? err->msg : "");
    lmn_errf(err, "%s: %s", path, m);
  } else {
    rc = lmn_st_writer_write(w, path, err);
  }
  lmn_st_writer_free(w);
  free(zeros);
  return rc;
}

/* ---- loading ------------------------------------------------------------------------------------- */

static const char *need_meta(const lmn_st *f, const char *key, const char *path, lmn_err *err) {
  const char *v = lmn_st_meta(f, key);
  if (!v) lmn_errf(err, "%s: checkpoint metadata '%s' is missing", path, key);
  return v;
}

static int check_identity(const lmn_st *f, const lmn_net_desc *d, const char *path, lmn_err *err) {
  const char *format = lmn_st_meta(f, "format");
  if (!format || strcmp(format, LMN_CKPT_FORMAT) != 0)
    return lmn_errf(err, "%s: not an lmnet checkpoint (metadata 'format' is %s%s%s, expected '%s')", path,
                    format ? "'" : "", format ? format : "missing", format ? "'" : "", LMN_CKPT_FORMAT);
  const char *version = need_meta(f, "version", path, err), *hash = need_meta(f, "hash", path, err);
  const char *agg = need_meta(f, "aggregate", path, err), *name = lmn_st_meta(f, "network");
  if (!version || !hash || !agg) return -1;
  long ver;
  if (parse_long(version, 0, LONG_MAX, &ver) || ver != LMN_CKPT_VERSION)
    return lmn_errf(err, "%s: checkpoint version '%s' is not supported (this lmnet reads version %d)", path,
                    version, LMN_CKPT_VERSION);
  uint8_t hb[8];
  char want[17];
  snprintf(want, sizeof want, "%016" PRIx64, d->hash);
  if (lmn_hex_decode(hash, hb, 8) || strcasecmp(hash, want) != 0)
    return lmn_errf(err,
                    "%s: checkpoint of network '%s' (hash %s) does not match network '%s' (hash %s): it was "
                    "written by a different network or an earlier version of it",
                    path, name ? name : "?", hash, d->name, want);
  const char *mine = d->aggregate_mean ? "mean" : "sum";
  if (strcmp(agg, mine) != 0)
    return lmn_errf(err, "%s: checkpoint aggregates with '%s' but network '%s' uses '%s'", path, agg, d->name,
                    mine);
  return 0;
}

static int parse_run(const lmn_st *f, const char *path, lmn_ckpt_state *st, lmn_err *err) {
  const char *data = need_meta(f, "data_state", path, err), *rng = need_meta(f, "rng_state", path, err);
  const char *batch = need_meta(f, "batch", path, err), *seq = need_meta(f, "seq_len", path, err);
  const char *seed = need_meta(f, "seed", path, err), *config = lmn_st_meta(f, "config");
  if (!data || !rng || !batch || !seq || !seed) return -1;
  if (lmn_hex_decode(data, &st->data, sizeof st->data) || st->data.split > LMN_SPLIT_VAL ||
      st->data.order > LMN_ORDER_SEQUENTIAL)
    return lmn_errf(err, "%s: checkpoint metadata 'data_state' is not a valid data stream state",
                    LMN_SHORT(path));
  if (st->data.order == LMN_ORDER_RANDOM && !lmn_rng_valid(&st->data.rng))
    return lmn_errf(
        err,
        "%s: checkpoint metadata 'data_state' holds an all-zero generator, which no run writes (it "
        "would draw the same position for ever): the checkpoint is corrupt",
        LMN_SHORT(path));
  if (lmn_hex_decode(rng, &st->rng, sizeof st->rng))
    return lmn_errf(err, "%s: checkpoint metadata 'rng_state' is not %zu hex-encoded bytes", LMN_SHORT(path),
                    sizeof st->rng);
  if (!lmn_rng_valid(&st->rng))
    return lmn_errf(err,
                    "%s: checkpoint metadata 'rng_state' is all zeros, which no run writes: the checkpoint "
                    "is corrupt",
                    LMN_SHORT(path));
  if (parse_long(batch, 1, LONG_MAX, &st->batch) || parse_long(seq, 1, LONG_MAX, &st->seq_len) ||
      parse_u64(seed, &st->seed))
    return lmn_errf(err, "%s: checkpoint metadata 'batch', 'seq_len' or 'seed' is not a valid number", path);
  snprintf(st->config, sizeof st->config, "%s", config ? config : "");
  st->config_text = NULL;
  st->has_run = 1;
  return 0;
}

static int parse_state(const lmn_st *f, const char *path, lmn_ckpt_state *st, long *opt_step, lmn_err *err) {
  memset(st, 0, sizeof *st);
  const char *step = need_meta(f, "step", path, err), *ostep = need_meta(f, "optimizer_step", path, err);
  if (!step || !ostep) return -1;
  if (parse_long(step, 0, LONG_MAX, &st->step))
    return lmn_errf(err, "%s: checkpoint metadata 'step' is '%s', not a step count", path, step);
  if (parse_long(ostep, 0, INT_MAX, opt_step))
    return lmn_errf(err, "%s: checkpoint metadata 'optimizer_step' is '%s', not a step count", path, ostep);
  return lmn_st_meta(f, "data_state") ? parse_run(f, path, st, err) : 0;
}

static void format_shape(char *buf, size_t cap, uint32_t nd, const int64_t *shape) {
  size_t k = (size_t)snprintf(buf, cap, "[");
  for (uint32_t j = 0; j < nd && k < cap; j++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, j ? ", " : "", shape[j]);
  if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* One expected tensor: present, loadable as f32, of the parameter's shape. */
static int check_tensor(const lmn_st *f, const lmn_net_desc *d, const lmn_param_info *p, const char *name,
                        const char *path, lmn_err *err) {
  const lmn_st_tensor *t = lmn_st_find(f, name);
  if (!t) return lmn_errf(err, "%s: tensor '%s' is missing (network '%s' has it)", path, name, d->name);
  if (t->dtype == LMN_ST_OTHER)
    return lmn_errf(err, "%s: tensor '%s' has dtype %s; expected F32, F16 or BF16", path, name,
                    t->dtype_name);
  int64_t shape[2];
  uint32_t nd = param_shape(p, shape);
  int same = t->n_dims == nd;
  for (uint32_t j = 0; same && j < nd; j++) same = t->shape[j] == shape[j];
  if (same) return 0;
  char got[160], want[64];
  format_shape(got, sizeof got, t->n_dims, t->shape);
  format_shape(want, sizeof want, nd, shape);
  return lmn_errf(err, "%s: tensor '%s' has shape %s but network '%s' expects %s", path, name, got, d->name,
                  want);
}

/* The parameter a checkpoint tensor name belongs to (moments too), or NULL. */
static const lmn_param_info *owner_of(const lmn_net_desc *d, const char *name) {
  int moment = (name[0] == 'm' || name[0] == 'v') && name[1] == '.';
  for (int pass = 0; pass < 1 + moment; pass++) {
    const char *base = pass ? name + 2 : name;
    for (int i = 0; i < d->n_params; i++) {
      const lmn_param_info *p = &d->params[i];
      if (strcmp(p->name, base) == 0 && (pass ? p->trainable : param_saved(p))) return p;
    }
  }
  return NULL;
}

static int check_tensors(const lmn_st *f, const lmn_net_desc *d, const char *path, lmn_err *err) {
  static const char *const prefixes[3] = {"", "m.", "v."};
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < d->n_params; i++) {
      const lmn_param_info *p = &d->params[i];
      if (k == 0 ? !param_saved(p) : !p->trainable) continue;
      char *name = prefixed(prefixes[k], p->name);
      if (!name) return lmn_errf(err, "%s: out of memory", path);
      int rc = check_tensor(f, d, p, name, path, err);
      free(name);
      if (rc) return -1;
    }
  for (size_t i = 0; i < lmn_st_n_tensors(f); i++) {
    const lmn_st_tensor *t = lmn_st_tensor_at(f, i);
    if (!owner_of(d, t->name))
      return lmn_errf(err, "%s: tensor '%s' is not a saved tensor of network '%s'", path, t->name, d->name);
  }
  return 0;
}

/* The checksum "crc32c.NAME" of tensor t: present (when the file says it carries them) and equal. */
static int check_sum(const lmn_st *f, const lmn_st_tensor *t, const void *bytes, const char *path,
                     lmn_err *err) {
  char *key = prefixed(LMN_CKPT_CRC_PREFIX, t->name);
  if (!key) return lmn_errf(err, "%s: out of memory", LMN_SHORT(path));
  const char *want = lmn_st_meta(f, key);
  free(key);
  uint32_t got = lmn_crc32c(0, bytes, (size_t)(t->end - t->begin)), w = 0;
  uint8_t b[4];
  if (!want || lmn_hex_decode(want, b, 4))
    return lmn_errf(err, "%s: tensor '%s' has no valid checksum (metadata '%s%s'): the checkpoint is corrupt",
                    LMN_SHORT(path), t->name, LMN_CKPT_CRC_PREFIX, t->name);
  w = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  if (got != w)
    return lmn_errf(err,
                    "%s: tensor '%s' fails its checksum (CRC32C %08" PRIx32 ", written as %08" PRIx32
                    "): the checkpoint is corrupt",
                    LMN_SHORT(path), t->name, got, w);
  return 0;
}

/* No NaN or infinity in tensor t (F32 read in place, F16 and BF16 through a buffer). */
static int check_values(const lmn_st *f, const lmn_st_tensor *t, const void *bytes, const char *path,
                        lmn_err *err) {
  size_t n = (size_t)t->nelems, i = n;
  if (t->dtype == LMN_ST_F32) {
    i = lmn_first_nonfinite_f32(bytes, n);
  } else {
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (!x) return lmn_errf(err, "%s: out of memory checking tensor '%s'", LMN_SHORT(path), t->name);
    int rc = lmn_st_load_f32(f, t->name, t->n_dims, t->shape, x, err) ||
             lmn_check_finite(x, n, path, t->name, err);
    free(x);
    return rc ? -1 : 0;
  }
  if (i == n) return 0;
  float v;
  memcpy(&v, (const char *)bytes + 4 * i, 4);
  return lmn_errf(err, "%s: tensor '%s' holds %s at index %zu: the checkpoint is corrupt", LMN_SHORT(path),
                  t->name, isnan(v) ? "a NaN" : "an infinity", i);
}

/* Every tensor's bytes: its checksum (when the file carries them: metadata checksum = crc32c) and its values
 * (all finite). */
static int check_integrity(const lmn_st *f, const char *path, lmn_err *err) {
  const char *kind = lmn_st_meta(f, "checksum");
  if (kind && strcmp(kind, "crc32c") != 0)
    return lmn_errf(err, "%s: checkpoint metadata 'checksum' is '%s'; this lmnet knows 'crc32c'",
                    LMN_SHORT(path), kind);
  for (size_t i = 0; i < lmn_st_n_tensors(f); i++) {
    const lmn_st_tensor *t = lmn_st_tensor_at(f, i);
    const void *bytes = lmn_st_tensor_data(f, t, err);
    if (!bytes && t->end > t->begin) return -1;
    if ((kind && check_sum(f, t, bytes, path, err)) || check_values(f, t, bytes, path, err)) return -1;
  }
  return 0;
}

static int load_tensors(const lmn_st *f, lmn_net *net, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  static const char *const prefixes[3] = {"", "m.", "v."};
  float *bufs[3] = {net->params, net->m, net->v};
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < d->n_params; i++) {
      const lmn_param_info *p = &d->params[i];
      if (k == 0 ? !param_saved(p) : !p->trainable) continue;
      int64_t shape[2];
      uint32_t nd = param_shape(p, shape);
      char *name = prefixed(prefixes[k], p->name);
      float *x = k == 0 ? bufs[0] + net->poff[i] : bufs[k] + p->offset;
      int rc = name ? lmn_st_load_f32(f, name, nd, shape, x, err)
                    : lmn_errf(err, "out of memory");
      free(name);
      if (rc) return -1;
    }
  return 0;
}

/* Every check of a checkpoint against a network, nothing loaded: identity, run state, tensors, integrity. */
static int check_all(const lmn_st *f, const lmn_net_desc *d, const char *path, lmn_ckpt_state *st,
                     long *opt_step, lmn_err *err) {
  return check_identity(f, d, path, err) || parse_state(f, path, st, opt_step, err) ||
                 check_tensors(f, d, path, err) || check_integrity(f, path, err)
             ? -1
             : 0;
}

int lmn_checkpoint_verify(const lmn_net_desc *d, const char *path, lmn_ckpt_state *st, lmn_err *err) {
  lmn_st *f = NULL;
  if (lmn_st_open(path, LMN_ST_MMAP, &f, err)) return -1;
  lmn_ckpt_state tmp;
  long opt_step = 0;
  int rc = check_all(f, d, path, &tmp, &opt_step, err);
  lmn_st_close(f);
  if (!rc && st) *st = tmp;
  return rc;
}

int lmn_checkpoint_config_text(const char *path, char **text, lmn_err *err) {
  lmn_st *f = NULL;
  *text = NULL;
  if (lmn_st_open(path, LMN_ST_META, &f, err)) return -1;
  const char *v = lmn_st_meta(f, "config_yaml");
  int rc = v && !(*text = strdup(v)) ? lmn_errf(err, "%s: out of memory", LMN_SHORT(path)) : 0;
  lmn_st_close(f);
  return rc;
}

int lmn_checkpoint_load_state(lmn_net *net, const char *path, lmn_ckpt_state *st, lmn_err *err) {
  lmn_st *f = NULL;
  if (lmn_st_open(path, LMN_ST_MMAP, &f, err)) return -1; /* atomic writers never change a file in place */
  lmn_ckpt_state tmp;
  long opt_step = 0;
  int rc = check_all(f, net->desc, path, &tmp, &opt_step, err);
  /* every check passed: the moments need somewhere to go (zeros until now, so nothing else changes) */
  if (!rc && (lmn_net_enable_moments(net, err) || load_tensors(f, net, err))) {
    char m[sizeof err->msg];
    snprintf(m, sizeof m, "%s", err ? err->msg : "");
    rc = lmn_errf(err, "%s: %s", LMN_SHORT(path), m);
  }
  lmn_st_close(f);
  if (rc) return -1;
  net->step = opt_step;
  if (st) *st = tmp;
  return 0;
}

int lmn_checkpoint_load(lmn_net *net, const char *path, lmn_err *err) {
  return lmn_checkpoint_load_state(net, path, NULL, err);
}

/* ---- warm start ---------------------------------------------------------------------------------- */

/* Whether the file's tensor t can fill parameter p: a float type and p's shape. */
static int fits(const lmn_st_tensor *t, const lmn_param_info *p, char *why, size_t cap) {
  int64_t shape[2];
  uint32_t nd = param_shape(p, shape);
  int same = t->dtype != LMN_ST_OTHER && t->n_dims == nd;
  for (uint32_t j = 0; same && j < nd; j++) same = t->shape[j] == shape[j];
  if (same) return 1;
  char got[160], want[64];
  format_shape(got, sizeof got, t->n_dims, t->shape);
  format_shape(want, sizeof want, nd, shape);
  snprintf(why, cap, "%s %s in the checkpoint, %s here: left as initialised", t->dtype_name, got, want);
  return 0;
}

/* Whether the file's tensor t is a saved tensor of d (an AdamW moment never is, for a warm start). */
static int wanted(const lmn_net_desc *d, const lmn_st_tensor *t) {
  for (int i = 0; i < d->n_params; i++)
    if (param_saved(&d->params[i]) && strcmp(d->params[i].name, t->name) == 0) return 1;
  return 0;
}

int lmn_checkpoint_warm_start(lmn_net *net, const char *path, lmn_warm_report_fn report, void *ctx, int *saved,
                              lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  *saved = 0;
  lmn_st *f = NULL;
  if (lmn_st_open(path, LMN_ST_MMAP, &f, err)) return -1;
  int loaded = check_integrity(f, path, err) ? -1 : 0;
  for (int i = 0; i < d->n_params && loaded >= 0; i++) {
    const lmn_param_info *p = &d->params[i];
    if (!param_saved(p)) continue;
    ++*saved;
    const lmn_st_tensor *t = lmn_st_find(f, p->name);
    char why[320] = "not in the checkpoint: left as initialised";
    if (!t || !fits(t, p, why, sizeof why)) {
      if (report) report(ctx, p->name, why);
      continue;
    }
    int64_t shape[2];
    uint32_t nd = param_shape(p, shape);
    loaded = lmn_st_load_f32(f, p->name, nd, shape, net->params + net->poff[i], err) ? -1 : loaded + 1;
  }
  for (size_t i = 0; i < lmn_st_n_tensors(f) && loaded >= 0 && report; i++) {
    const lmn_st_tensor *t = lmn_st_tensor_at(f, i);
    /* AdamW's moments "m.X" and "v.X" of the file's own tensor X are not weights (a model may be named m) */
    int moment = (t->name[0] == 'm' || t->name[0] == 'v') && t->name[1] == '.' && lmn_st_find(f, t->name + 2);
    if (!moment && !wanted(d, t)) report(ctx, t->name, "in the checkpoint only: not used");
  }
  lmn_st_close(f);
  return loaded;
}

/* ---- checkpoint directories ---------------------------------------------------------------------- */

/* The step of a file name "step-<digits>.safetensors" spelt as lmn_checkpoint_path spells it, or -1. */
static long parse_step_name(const char *name) {
  const char *pre = "step-", *suf = ".safetensors";
  size_t n = strlen(name), np = strlen(pre), ns = strlen(suf);
  if (n <= np + ns || strncmp(name, pre, np) != 0 || strcmp(name + n - ns, suf) != 0) return -1;
  long step = 0;
  for (size_t i = np; i < n - ns; i++) {
    if (!isdigit((unsigned char)name[i]) || step > (LONG_MAX - 9) / 10) return -1;
    step = step * 10 + (name[i] - '0');
  }
  char canon[64];
  snprintf(canon, sizeof canon, "step-%06ld.safetensors", step);
  return strcmp(canon, name) == 0 ? step : -1;
}

int lmn_checkpoint_path(const char *dir, long step, char *buf, size_t cap, lmn_err *err) {
  int n = snprintf(buf, cap, "%s/step-%06ld.safetensors", dir, step);
  if (n < 0 || (size_t)n >= cap) return lmn_errf(err, "%s: checkpoint path too long", dir);
  return 0;
}

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

int lmn_checkpoint_list(const char *dir, long **steps, size_t *n, lmn_err *err) {
  *steps = NULL;
  *n = 0;
  DIR *dh = opendir(dir);
  if (!dh)
    return errno == ENOENT
               ? 0
               : lmn_errf(err, "%s: cannot open the checkpoint directory: %s", dir, strerror(errno));
  size_t cap = 0;
  struct dirent *e;
  while ((e = readdir(dh)) != NULL) {
    long s = parse_step_name(e->d_name);
    if (s < 0) continue;
    if (*n == cap) {
      size_t nc = cap ? 2 * cap : 16;
      long *g = realloc(*steps, nc * sizeof *g);
      if (!g) {
        closedir(dh);
        free(*steps);
        *steps = NULL;
        *n = 0;
        return lmn_errf(err, "%s: out of memory listing checkpoints", dir);
      }
      *steps = g;
      cap = nc;
    }
    (*steps)[(*n)++] = s;
  }
  closedir(dh);
  if (*n) qsort(*steps, *n, sizeof **steps, cmp_long);
  return 0;
}

static int is_file(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The step `dir/latest` names when it is valid and its file exists, or -1. */
static long read_latest(const char *dir) {
  char path[LMN_CKPT_PATH_MAX], name[256];
  if (snprintf(path, sizeof path, "%s/latest", dir) >= (int)sizeof path) return -1;
  int fd = lmn_open_regular(path, NULL, NULL); /* never blocks: a FIFO named latest is ignored */
  if (fd < 0) return -1;
  ssize_t got = read(fd, name, sizeof name - 1);
  close(fd);
  size_t len = got > 0 ? (size_t)got : 0;
  name[len] = '\0';
  while (len && isspace((unsigned char)name[len - 1])) name[--len] = '\0';
  long step = parse_step_name(name);
  char file[LMN_CKPT_PATH_MAX];
  return step < 0 || lmn_checkpoint_path(dir, step, file, sizeof file, NULL) || !is_file(file) ? -1 : step;
}

int lmn_checkpoint_latest(const char *dir, char *path, size_t cap, long *step, lmn_err *err) {
  long s = read_latest(dir);
  if (s < 0) {
    long *steps;
    size_t n;
    if (lmn_checkpoint_list(dir, &steps, &n, err)) return -1;
    for (size_t i = n; i-- > 0 && s < 0;) {
      char file[LMN_CKPT_PATH_MAX];
      if (!lmn_checkpoint_path(dir, steps[i], file, sizeof file, NULL) && is_file(file)) s = steps[i];
    }
    free(steps);
    if (s < 0) return 0;
  }
  if (lmn_checkpoint_path(dir, s, path, cap, err)) return -1;
  if (step) *step = s;
  return 1;
}

int lmn_checkpoint_mkdir(const char *dir, lmn_err *err) {
  char buf[LMN_CKPT_PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return lmn_errf(err, "%s: path too long", dir);
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p != '\0') continue;
    char c = *p;
    *p = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
      return lmn_errf(err, "%s: cannot create the directory: %s", buf, strerror(errno));
    *p = c;
    if (!c) break;
  }
  struct stat sb;
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return lmn_errf(err, "%s: not a directory", dir);
  return 0;
}

static int emit_text(FILE *f, const void *ctx, lmn_err *err) {
  const char *s = ctx;
  return fputs(s, f) < 0 ? lmn_errf(err, "write failed: %s", strerror(errno)) : 0;
}

int lmn_checkpoint_write_latest(const char *dir, long step, lmn_err *err) {
  char path[LMN_CKPT_PATH_MAX], line[64];
  if (snprintf(path, sizeof path, "%s/latest", dir) >= (int)sizeof path)
    return lmn_errf(err, "%s: path too long", dir);
  snprintf(line, sizeof line, "step-%06ld.safetensors\n", step);
  if (lmn_write_atomic(path, emit_text, line, err) == 0) return 0;
  if (err && strncmp(err->msg, path, strlen(path)) != 0) {
    char m[sizeof err->msg];
    snprintf(m, sizeof m, "%s", err->msg);
    lmn_errf(err, "%s: %s", path, m);
  }
  return -1;
}

int lmn_checkpoint_prune(const char *dir, long keep, long upto, lmn_err *err) {
  if (keep <= 0) return 0;
  long *steps;
  size_t n, mine = 0;
  if (lmn_checkpoint_list(dir, &steps, &n, err)) return -1;
  while (mine < n && steps[mine] <= upto) mine++;
  int rc = 0;
  for (size_t i = 0; mine > (size_t)keep && i < mine - (size_t)keep; i++) {
    char file[LMN_CKPT_PATH_MAX];
    if (lmn_checkpoint_path(dir, steps[i], file, sizeof file, err))
      rc = -1;
    else if (unlink(file) != 0 && errno != ENOENT)
      rc = lmn_errf(err, "%s: cannot delete: %s", file, strerror(errno));
  }
  free(steps);
  return rc;
}

/* ---- temporaries and writability ----------------------------------------------------------------- */

/* Whether name is a temporary of lmn_write_atomic in a checkpoint directory ("step-NNNNNN.safetensors",
 * "latest" or a file of the run's record, then ".tmp." and the six characters of mkstemp) or of
 * lmn_checkpoint_writable. */
static int is_temporary(const char *name) {
  if (strncmp(name, ".lmn-write-test.", 16) == 0 && strlen(name + 16) == 6) return 1;
  const char *tmp = strstr(name, ".tmp.");
  if (!tmp || strlen(tmp + 5) != 6 || strchr(tmp + 5, '/')) return 0;
  char base[256];
  size_t n = (size_t)(tmp - name);
  if (n >= sizeof base) return 0;
  memcpy(base, name, n);
  base[n] = '\0';
  static const char *const record[] = {"latest", LMN_RUNLOG_FILES};
  for (size_t i = 0; i < sizeof record / sizeof *record; i++)
    if (strcmp(base, record[i]) == 0) return 1;
  return parse_step_name(base) >= 0;
}

int lmn_checkpoint_clean(const char *dir, lmn_ckpt_report_fn report, void *ctx, lmn_err *err) {
  DIR *dh = opendir(dir);
  if (!dh)
    return errno == ENOENT ? 0
                           : lmn_errf(err, "%s: cannot open the checkpoint directory: %s", LMN_SHORT(dir),
                                      strerror(errno));
  int removed = 0, rc = 0;
  struct dirent *e;
  while ((e = readdir(dh)) != NULL && rc == 0) {
    if (!is_temporary(e->d_name)) continue;
    char path[LMN_CKPT_PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (unlink(path) != 0 && errno != ENOENT)
      rc = lmn_errf(err, "%s: cannot remove the temporary of an interrupted write: %s", LMN_SHORT(path),
                    strerror(errno));
    else if (++removed, report)
      report(ctx, path);
  }
  closedir(dh);
  return rc ? -1 : removed;
}

int lmn_checkpoint_writable(const char *dir, lmn_err *err) {
  char path[LMN_CKPT_PATH_MAX + 32];
  if (snprintf(path, sizeof path, "%s/.lmn-write-test.XXXXXX", dir) >= (int)sizeof path)
    return lmn_errf(err, "%s: path too long", LMN_SHORT(dir));
  int fd = mkstemp(path);
  if (fd < 0)
    return lmn_errf(err, "%s: the checkpoint directory is not writable: %s", LMN_SHORT(dir), strerror(errno));
  int bad = write(fd, "x", 1) != 1, e = errno;
  close(fd);
  unlink(path);
  return bad ? lmn_errf(err, "%s: the checkpoint directory is not writable: %s", LMN_SHORT(dir), strerror(e))
             : 0;
}
