/* data.c: reading, tokenising and splitting the training text, and serving reproducible batches. */
#include "data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const split_names[2] = {"training", "validation"};

/* Reads the whole file at path into a malloc'ed buffer (*len bytes, NUL-terminated for convenience). */
static int read_file(const char *path, char **out, size_t *len, lmn_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return lmn_errf(err, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode))
    return fclose(f), lmn_errf(err, "%s: is a directory", path);
  size_t cap = sb.st_size > 0 ? (size_t)sb.st_size + 1 : 65536, n = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap || ferror(f)) break;
    char *bigger = cap < ((size_t)-1) / 4 ? realloc(buf, 2 * cap + 1) : NULL;
    if (!bigger) free(buf);
    buf = bigger;
    cap *= 2;
  }
  int bad = buf && ferror(f), e = errno;
  fclose(f);
  if (!buf) return lmn_errf(err, "%s: out of memory reading the file", path);
  if (bad) return free(buf), lmn_errf(err, "%s: cannot read: %s", path, strerror(e));
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

/* Tokenises text into a new int32 array, checking every id against the vocabulary. */
static int tokenize(const lmn_tokenizer *tok, const char *path, const char *text, size_t len, int32_t **ids,
                    size_t *n, lmn_err *err) {
  size_t cap = len + 16;
  if (cap > ((size_t)-1) / sizeof(int32_t)) return lmn_errf(err, "%s: too large to tokenise", path);
  int32_t *v = malloc(cap * sizeof *v);
  long r = v ? lmn_tokenizer_encode(tok, text, len, v, cap) : 0;
  if (v && r > 0 && (size_t)r > cap) { /* the tokenizer needs more room than one id per byte */
    int32_t *w = (size_t)r <= ((size_t)-1) / sizeof(int32_t) ? realloc(v, (size_t)r * sizeof *v) : NULL;
    if (!w) free(v);
    v = w;
    cap = (size_t)r;
    if (v && lmn_tokenizer_encode(tok, text, len, v, cap) != r) r = -1;
  }
  if (!v) return lmn_errf(err, "%s: out of memory tokenising %zu bytes", path, len);
  if (r < 0) return free(v), lmn_errf(err, "%s: the tokenizer failed", path);
  for (size_t i = 0; i < (size_t)r; i++)
    if (v[i] < 0 || v[i] >= tok->vocab_size) {
      int bad = (int)v[i];
      free(v);
      return lmn_errf(err, "%s: the tokenizer produced id %d outside its vocabulary of %d (token %zu)", path,
                      bad, (int)tok->vocab_size, i);
    }
  *ids = v;
  *n = (size_t)r;
  return 0;
}

static int keeps_bytes(const lmn_tokenizer *tok) { return !tok || tok->kind == LMN_TOK_BYTES; }

/* Loads one file into buffer slot i of d and describes it as split s. */
static int load_file(lmn_data *d, int i, const char *path, const lmn_tokenizer *tok, lmn_err *err) {
  char *text = NULL;
  size_t len = 0;
  if (!(d->path[i] = strdup(path))) return lmn_errf(err, "%s: out of memory", path);
  if (read_file(path, &text, &len, err)) return -1;
  if (len == 0) return free(text), lmn_errf(err, "%s: empty file", path);
  lmn_data_split *s = &d->split[i];
  s->path = d->path[i];
  if (keeps_bytes(tok)) {
    d->buf[i] = text;
    s->bytes = (const uint8_t *)text;
    s->n = len;
  } else {
    int32_t *ids = NULL;
    int rc = tokenize(tok, path, text, len, &ids, &s->n, err);
    free(text);
    if (rc) return -1;
    d->buf[i] = ids;
    s->ids = ids;
  }
  if (s->n < (size_t)d->seq_len + 1)
    return lmn_errf(err,
                    "%s: too short: %zu tokens (%zu bytes) but one sequence of seq_len %ld needs %ld tokens",
                    path, s->n, len, d->seq_len, d->seq_len + 1);
  return 0;
}

/* Splits the training file's tokens: validation is the tail val_fraction of them. */
static int split_tail(lmn_data *d, double fraction, lmn_err *err) {
  lmn_data_split *tr = &d->split[LMN_SPLIT_TRAIN], *va = &d->split[LMN_SPLIT_VAL];
  size_t n = tr->n, nv = (size_t)((double)n * fraction), need = (size_t)d->seq_len + 1;
  const char *which = nv < need ? "validation tail" : "training part";
  size_t has = nv < need ? nv : n - nv;
  if (nv < need || n - nv < need)
    return lmn_errf(
        err,
        "%s: the %s (val_fraction %g) holds %zu of %zu tokens but one sequence of seq_len %ld needs "
        "%zu; change val_fraction or give a separate val file",
        tr->path, which, fraction, has, n, d->seq_len, need);
  *va = *tr;
  tr->n = n - nv;
  va->n = nv;
  if (va->ids)
    va->ids += tr->n;
  else
    va->bytes += tr->n;
  return 0;
}

void lmn_data_opts_from_config(lmn_data_opts *opts, const lmn_train_config *cfg, const lmn_tokenizer *tok) {
  opts->train_path = cfg->data.train;
  opts->val_path = cfg->data.val;
  opts->val_fraction = cfg->data.val_fraction;
  opts->seq_len = cfg->seq_len;
  opts->tok = tok;
}

static int check_opts(const lmn_data_opts *o, lmn_err *err) {
  if (!o || !o->train_path) return lmn_errf(err, "data: no training file given");
  if (o->seq_len < 1 || o->seq_len > (1L << 30))
    return lmn_errf(err, "data: seq_len %ld is out of range", o->seq_len);
  if (!o->val_path && !(o->val_fraction > 0.0 && o->val_fraction < 1.0))
    return lmn_errf(err, "data: val_fraction must be in (0, 1), got %g", o->val_fraction);
  if (o->tok && (!o->tok->ops || o->tok->vocab_size < 1))
    return lmn_errf(err, "data: the tokenizer is not set up");
  return 0;
}

int lmn_data_open(lmn_data *d, const lmn_data_opts *o, lmn_err *err) {
  memset(d, 0, sizeof *d);
  if (check_opts(o, err)) return -1;
  d->seq_len = o->seq_len;
  int rc = load_file(d, LMN_SPLIT_TRAIN, o->train_path, o->tok, err);
  if (!rc)
    rc = o->val_path ? load_file(d, LMN_SPLIT_VAL, o->val_path, o->tok, err)
                     : split_tail(d, o->val_fraction, err);
  if (rc) lmn_data_close(d);
  return rc;
}

void lmn_data_close(lmn_data *d) {
  if (!d) return;
  for (int i = 0; i < 2; i++) {
    free(d->buf[i]);
    free(d->path[i]);
  }
  memset(d, 0, sizeof *d);
}

size_t lmn_data_tokens(const lmn_data *d, lmn_split split) {
  return d && (split == LMN_SPLIT_TRAIN || split == LMN_SPLIT_VAL) ? d->split[split].n : 0;
}

size_t lmn_data_windows(const lmn_data *d, lmn_split split, long T) {
  size_t n = lmn_data_tokens(d, split);
  return T >= 1 && n >= (size_t)T + 1 ? (n - 1) / (size_t)T : 0;
}

void lmn_data_state_init(lmn_data_state *st, lmn_split split, lmn_order order, uint64_t seed) {
  memset(st, 0, sizeof *st);
  lmn_rng_seed_stream(&st->rng, seed, 0x64617461ULL /* "data" */ + (uint64_t)split);
  st->split = (uint32_t)split;
  st->order = (uint32_t)order;
}

/* Start of the next window of T+1 tokens in a split of n tokens (n >= T + 1). */
static size_t next_start(lmn_data_state *s, size_t n, size_t T) {
  if (s->order == LMN_ORDER_RANDOM) return (size_t)lmn_rng_below(&s->rng, (uint64_t)(n - T));
  if (s->pos > n - T - 1) s->pos = 0;
  size_t start = (size_t)s->pos;
  s->pos += T;
  return start;
}

static int check_next(const lmn_data *d, const lmn_data_state *st, long B, long T, const int32_t *in,
                      const int32_t *tg, lmn_err *err) {
  if (!d || !st || !in || !tg) return lmn_errf(err, "data: no loader, state or batch buffers given");
  if (st->split > LMN_SPLIT_VAL || st->order > LMN_ORDER_SEQUENTIAL)
    return lmn_errf(err, "data: invalid stream state (split %u, order %u)", st->split, st->order);
  if (B < 1 || T < 1 || B > (1L << 30) / T) return lmn_errf(err, "data: invalid batch shape %ld x %ld", B, T);
  const lmn_data_split *sp = &d->split[st->split];
  if (sp->n < (size_t)T + 1)
    return lmn_errf(err, "%s: the %s split holds %zu tokens but one sequence of %ld needs %ld",
                    sp->path ? sp->path : "data", split_names[st->split], sp->n, T, T + 1);
  return 0;
}

int lmn_data_next(const lmn_data *d, lmn_data_state *st, long B, long T, int32_t *inputs, int32_t *targets,
                  lmn_err *err) {
  if (check_next(d, st, B, T, inputs, targets, err)) return -1;
  const lmn_data_split *sp = &d->split[st->split];
  lmn_data_state s = *st;
  size_t t1 = (size_t)T;
  for (size_t b = 0; b < (size_t)B; b++) {
    size_t start = next_start(&s, sp->n, t1);
    int32_t *in = inputs + b * t1, *tg = targets + b * t1;
    if (sp->ids) {
      memcpy(in, sp->ids + start, t1 * sizeof *in);
      memcpy(tg, sp->ids + start + 1, t1 * sizeof *tg);
    } else {
      for (size_t t = 0; t < t1; t++) in[t] = sp->bytes[start + t], tg[t] = sp->bytes[start + t + 1];
    }
  }
  s.batches++;
  *st = s;
  return 0;
}
