/* data.c: reading, tokenising and splitting the training text or labelled examples, serving reproducible
 * batches of either, and the validation loss and accuracy of a classifier. */
#include "data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "net.h"
#include "sample.h"

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

/* Reads the file of split i of d (its path copied into d), which must not be empty. */
static int read_split(lmn_data *d, int i, const char *path, char **text, size_t *len, lmn_err *err) {
  if (!(d->path[i] = strdup(path))) return lmn_errf(err, "%s: out of memory", path);
  if (read_file(path, text, len, err)) return -1;
  if (*len == 0) return free(*text), lmn_errf(err, "%s: empty file", path);
  d->split[i].path = d->path[i];
  return 0;
}

/* Loads one file into buffer slot i of d and describes it as split s. */
static int load_file(lmn_data *d, int i, const char *path, const lmn_tokenizer *tok, lmn_err *err) {
  char *text = NULL;
  size_t len = 0;
  if (read_split(d, i, path, &text, &len, err)) return -1;
  lmn_data_split *s = &d->split[i];
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

/* ---- labelled data ------------------------------------------------------------------------------- */

/* A labelled file as it is parsed: its examples and, with a tokenizer other than bytes, the kept ids. */
typedef struct labelled {
  const char *path;
  const char *text;         /* the whole file */
  const lmn_tokenizer *tok; /* NULL: the examples index the bytes of text */
  size_t keep;              /* seq_len: tokens kept of each text */
  int classes;
  lmn_data_example *ex; /* n_ex of them */
  size_t n_ex;
  int32_t *ids; /* the kept ids: n_ids of cap_ids */
  size_t n_ids, cap_ids;
} labelled;

static int32_t pad_id(const lmn_tokenizer *tok) {
  return keeps_bytes(tok) || tok->eos < 0 ? 0 : tok->eos;
}

/* The label field s[0..len) of line `line`: a decimal integer (optional sign) in [0, classes). */
static int parse_label(const labelled *L, const char *s, size_t len, size_t line, int32_t *label,
                       lmn_err *err) {
  int shown = len > 40 ? 40 : (int)len, neg = len > 0 && s[0] == '-';
  size_t i = len > 0 && (s[0] == '-' || s[0] == '+');
  int digits = i < len;
  for (size_t k = i; k < len; k++) digits &= s[k] >= '0' && s[k] <= '9';
  if (!digits)
    return lmn_errf(err, "%s:%zu: label '%.*s' is not an integer (each line is LABEL<TAB>TEXT)", L->path,
                    line, shown, s);
  unsigned long long v = 0; /* stops growing once past classes, so it cannot overflow */
  for (size_t k = i; k < len && v <= (unsigned long long)L->classes; k++) v = v * 10 + (unsigned)(s[k] - '0');
  if ((neg && v) || v >= (unsigned long long)L->classes)
    return lmn_errf(err, "%s:%zu: label %.*s is outside [0, %d)", L->path, line, shown, s, L->classes);
  *label = (int32_t)v;
  return 0;
}

/* Room for `more` kept ids. */
static int reserve_ids(labelled *L, size_t more) {
  if (L->n_ids + more <= L->cap_ids) return 0;
  size_t cap = L->cap_ids ? L->cap_ids : 4096;
  while (cap < L->n_ids + more && cap <= ((size_t)-1) / (4 * sizeof(int32_t))) cap *= 2;
  int32_t *ids = cap >= L->n_ids + more ? realloc(L->ids, cap * sizeof *ids) : NULL;
  if (!ids) return -1;
  L->ids = ids;
  L->cap_ids = cap;
  return 0;
}

/* Tokenises text t[0..len) of line `line` and keeps its last `keep` ids as example e. */
static int keep_ids(labelled *L, const char *t, size_t len, size_t line, lmn_data_example *e, lmn_err *err) {
  char where[1024]; /* "file:line", the place tokenize's errors name */
  snprintf(where, sizeof where, "%s:%zu", L->path, line);
  int32_t *ids = NULL;
  size_t n = 0;
  if (tokenize(L->tok, where, t, len, &ids, &n, err)) return -1;
  size_t k = n < L->keep ? n : L->keep;
  int rc = !n                  ? lmn_errf(err, "%s: the text has no tokens", where)
           : reserve_ids(L, k) ? lmn_errf(err, "%s: out of memory keeping the tokens", where)
                               : 0;
  if (!rc) {
    memcpy(L->ids + L->n_ids, ids + (n - k), k * sizeof *ids);
    e->start = L->n_ids;
    e->len = (uint32_t)k;
    L->n_ids += k;
  }
  free(ids);
  return rc;
}

/* Keeps the last `keep` tokens of text t[0..len) as example e: raw bytes stay where they are in the file. */
static int keep_text(labelled *L, const char *t, size_t len, size_t line, lmn_data_example *e, lmn_err *err) {
  if (L->tok) return keep_ids(L, t, len, line, e, err);
  size_t k = len < L->keep ? len : L->keep;
  e->start = (size_t)(t - L->text) + (len - k);
  e->len = (uint32_t)k;
  return 0;
}

/* One non-blank line s[0..eol) (without its line end): LABEL<TAB>TEXT. */
static int parse_line(labelled *L, const char *s, const char *eol, size_t line, lmn_err *err) {
  const char *tab = memchr(s, '\t', (size_t)(eol - s));
  if (!tab) return lmn_errf(err, "%s:%zu: no tab: each line is LABEL<TAB>TEXT", L->path, line);
  lmn_data_example *e = &L->ex[L->n_ex];
  if (parse_label(L, s, (size_t)(tab - s), line, &e->label, err)) return -1;
  if (tab + 1 == eol) return lmn_errf(err, "%s:%zu: empty text after the label", L->path, line);
  if (keep_text(L, tab + 1, (size_t)(eol - tab - 1), line, e, err)) return -1;
  L->n_ex++;
  return 0;
}

/* Every line of the file's len bytes (a byte-order mark, blank lines and the '\r' of "\r\n" skipped). */
static int parse_examples(labelled *L, size_t len, lmn_err *err) {
  const char *p = L->text, *end = p + len;
  if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;
  for (size_t line = 1; p < end; line++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl ? nl : end;
    const char *next = nl ? nl + 1 : end;
    if (eol > p && eol[-1] == '\r') eol--;
    if (eol > p && parse_line(L, p, eol, line, err)) return -1;
    p = next;
  }
  if (!L->n_ex) return lmn_errf(err, "%s: no examples: the file holds only blank lines", L->path);
  return 0;
}

static size_t count_lines(const char *text, size_t len) {
  size_t n = 1;
  for (const char *p = text, *end = text + len; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) n++;
  return n;
}

static size_t kept_tokens(const lmn_data_split *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->n_ex; i++) n += s->ex[i].len;
  return n;
}

/* Loads one labelled file into slot i of d: its examples, and its text (raw bytes) or its kept ids. */
static int load_labelled(lmn_data *d, int i, const char *path, const lmn_tokenizer *tok, lmn_err *err) {
  char *text = NULL;
  size_t len = 0;
  if (read_split(d, i, path, &text, &len, err)) return -1;
  labelled L = {.path = d->path[i],
                .text = text,
                .tok = keeps_bytes(tok) ? NULL : tok,
                .keep = (size_t)d->seq_len,
                .classes = d->classes};
  size_t lines = count_lines(text, len);
  L.ex = lines <= ((size_t)-1) / sizeof *L.ex ? malloc(lines * sizeof *L.ex) : NULL;
  int rc =
      L.ex ? parse_examples(&L, len, err) : lmn_errf(err, "%s: out of memory for %zu lines", path, lines);
  lmn_data_split *s = &d->split[i];
  d->examples[i] = L.ex;
  if (L.tok) {
    free(text);
    d->buf[i] = L.ids;
    s->ids = L.ids;
  } else {
    d->buf[i] = text;
    s->bytes = (const uint8_t *)text;
  }
  s->ex = L.ex;
  s->n_ex = L.n_ex;
  s->n = kept_tokens(s);
  return rc;
}

/* Splits the training file's examples: validation is the last val_fraction of them. */
static int split_examples(lmn_data *d, double fraction, lmn_err *err) {
  lmn_data_split *tr = &d->split[LMN_SPLIT_TRAIN], *va = &d->split[LMN_SPLIT_VAL];
  size_t n = tr->n_ex, nv = (size_t)((double)n * fraction);
  if (nv == 0 || nv >= n)
    return lmn_errf(err,
                    "%s: val_fraction %g of %zu examples leaves no examples for %s; change val_fraction or "
                    "give a separate val file",
                    tr->path, fraction, n, nv == 0 ? "validation" : "training");
  *va = *tr;
  tr->n_ex = n - nv;
  va->ex += tr->n_ex;
  va->n_ex = nv;
  tr->n = kept_tokens(tr);
  va->n = kept_tokens(va);
  return 0;
}

/* ---- opening ------------------------------------------------------------------------------------- */

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

typedef int (*load_fn)(lmn_data *d, int i, const char *path, const lmn_tokenizer *tok, lmn_err *err);

static int open_data(lmn_data *d, const lmn_data_opts *o, int classes, lmn_err *err) {
  memset(d, 0, sizeof *d);
  if (check_opts(o, err)) return -1;
  if (classes < 0) return lmn_errf(err, "data: %d classes is not a number of classes", classes);
  d->seq_len = o->seq_len;
  d->classes = classes;
  d->pad = classes ? pad_id(o->tok) : 0;
  load_fn load = classes ? load_labelled : load_file;
  int rc = load(d, LMN_SPLIT_TRAIN, o->train_path, o->tok, err);
  if (!rc && o->val_path)
    rc = load(d, LMN_SPLIT_VAL, o->val_path, o->tok, err);
  else if (!rc)
    rc = classes ? split_examples(d, o->val_fraction, err) : split_tail(d, o->val_fraction, err);
  if (rc) lmn_data_close(d);
  return rc;
}

int lmn_data_open(lmn_data *d, const lmn_data_opts *o, lmn_err *err) {
  return open_data(d, o, 0, err);
}

int lmn_data_open_classes(lmn_data *d, const lmn_data_opts *o, int classes, lmn_err *err) {
  return open_data(d, o, classes, err);
}

void lmn_data_close(lmn_data *d) {
  if (!d) return;
  for (int i = 0; i < 2; i++) {
    free(d->buf[i]);
    free(d->path[i]);
    free(d->examples[i]);
  }
  memset(d, 0, sizeof *d);
}

static int valid_split(const lmn_data *d, lmn_split split) {
  return d && (split == LMN_SPLIT_TRAIN || split == LMN_SPLIT_VAL);
}

size_t lmn_data_tokens(const lmn_data *d, lmn_split split) {
  return valid_split(d, split) ? d->split[split].n : 0;
}

size_t lmn_data_examples(const lmn_data *d, lmn_split split) {
  return valid_split(d, split) ? d->split[split].n_ex : 0;
}

size_t lmn_data_windows(const lmn_data *d, lmn_split split, long T) {
  if (d && d->classes) return lmn_data_examples(d, split);
  size_t n = lmn_data_tokens(d, split);
  return T >= 1 && n >= (size_t)T + 1 ? (n - 1) / (size_t)T : 0;
}

void lmn_data_state_init(lmn_data_state *st, lmn_split split, lmn_order order, uint64_t seed) {
  memset(st, 0, sizeof *st);
  lmn_rng_seed_stream(&st->rng, seed, 0x64617461ULL /* "data" */ + (uint64_t)split);
  st->split = (uint32_t)split;
  st->order = (uint32_t)order;
}

/* ---- serving batches ----------------------------------------------------------------------------- */

/* Start of the next window of T+1 tokens in a split of n tokens (n >= T + 1). */
static size_t next_start(lmn_data_state *s, size_t n, size_t T) {
  if (s->order == LMN_ORDER_RANDOM) return (size_t)lmn_rng_below(&s->rng, (uint64_t)(n - T));
  if (s->pos > n - T - 1) s->pos = 0;
  size_t start = (size_t)s->pos;
  s->pos += T;
  return start;
}

/* out[0..n) = tokens start.. of a split, from its ids or its bytes. */
static void copy_tokens(const lmn_data_split *sp, size_t start, size_t n, int32_t *out) {
  if (sp->ids)
    memcpy(out, sp->ids + start, n * sizeof *out);
  else
    for (size_t t = 0; t < n; t++) out[t] = sp->bytes[start + t];
}

/* One round of a bijection of [0, 2^bits): xor with a key and multiplication by an odd key (mod 2^bits), then
 * an xorshift that carries the high bits down. */
static uint64_t mix_round(uint64_t x, uint64_t k1, uint64_t k2, unsigned bits, uint64_t mask) {
  x = (((x ^ k1) & mask) * (k2 | 1)) & mask;
  return x ^ (x >> (bits / 2 + 1));
}

/* Place i of the epoch's permutation of [0, n): four keyed rounds over [0, 2^bits), 2^bits the power of two
 * at or above n, applied again until the value falls below n (cycle walking: a bijection of [0, n) in turn,
 * under two passes on average). The keys are the first four draws of a copy of the epoch's generator. */
static size_t shuffled(const lmn_rng *epoch, uint64_t i, size_t n) {
  lmn_rng r = *epoch;
  uint64_t k[5];
  for (int j = 0; j < 4; j++) k[j] = lmn_rng_u64(&r);
  k[4] = k[0];
  unsigned bits = 1;
  while (bits < 64 && (1ULL << bits) < (uint64_t)n) bits++;
  uint64_t mask = bits == 64 ? ~0ULL : (1ULL << bits) - 1, x = i;
  do {
    for (int j = 0; j < 4; j++) x = mix_round(x, k[j], k[j + 1], bits, mask);
  } while (x >= (uint64_t)n);
  return (size_t)x;
}

/* Index of the next example of a labelled split of n examples (n >= 1); a new epoch draws new keys. */
static size_t next_example(lmn_data_state *s, size_t n) {
  if (s->pos >= n) {
    s->pos = 0;
    if (s->order == LMN_ORDER_RANDOM)
      for (int j = 0; j < 4; j++) lmn_rng_u64(&s->rng); /* past this epoch's keys */
  }
  uint64_t i = s->pos++;
  return s->order == LMN_ORDER_RANDOM ? shuffled(&s->rng, i, n) : (size_t)i;
}

/* row[0..T) = the example's last (at most T) kept tokens, left-padded. */
static void fill_row(const lmn_data *d, const lmn_data_split *sp, const lmn_data_example *e, size_t T,
                     int32_t *row) {
  size_t len = e->len < T ? e->len : T, pad = T - len;
  for (size_t t = 0; t < pad; t++) row[t] = d->pad;
  copy_tokens(sp, e->start + (e->len - len), len, row + pad);
}

static void next_examples(const lmn_data *d, lmn_data_state *s, size_t B, size_t T, int32_t *inputs,
                          int32_t *labels) {
  const lmn_data_split *sp = &d->split[s->split];
  for (size_t b = 0; b < B; b++) {
    const lmn_data_example *e = &sp->ex[next_example(s, sp->n_ex)];
    fill_row(d, sp, e, T, inputs + b * T);
    labels[b] = e->label;
  }
}

static void next_windows(const lmn_data *d, lmn_data_state *s, size_t B, size_t T, int32_t *inputs,
                         int32_t *targets) {
  const lmn_data_split *sp = &d->split[s->split];
  for (size_t b = 0; b < B; b++) {
    size_t start = next_start(s, sp->n, T);
    copy_tokens(sp, start, T, inputs + b * T);
    copy_tokens(sp, start + 1, T, targets + b * T);
  }
}

static int check_next(const lmn_data *d, const lmn_data_state *st, long B, long T, const int32_t *in,
                      const int32_t *tg, lmn_err *err) {
  if (!d || !st || !in || !tg) return lmn_errf(err, "data: no loader, state or batch buffers given");
  if (st->split > LMN_SPLIT_VAL || st->order > LMN_ORDER_SEQUENTIAL)
    return lmn_errf(err, "data: invalid stream state (split %u, order %u)", st->split, st->order);
  if (B < 1 || T < 1 || B > (1L << 30) / T) return lmn_errf(err, "data: invalid batch shape %ld x %ld", B, T);
  const lmn_data_split *sp = &d->split[st->split];
  const char *path = sp->path ? sp->path : "data";
  if (d->classes && !sp->n_ex)
    return lmn_errf(err, "%s: the %s split holds no examples", path, split_names[st->split]);
  if (!d->classes && sp->n < (size_t)T + 1)
    return lmn_errf(err, "%s: the %s split holds %zu tokens but one sequence of %ld needs %ld", path,
                    split_names[st->split], sp->n, T, T + 1);
  return 0;
}

int lmn_data_next(const lmn_data *d, lmn_data_state *st, long B, long T, int32_t *inputs, int32_t *targets,
                  lmn_err *err) {
  if (check_next(d, st, B, T, inputs, targets, err)) return -1;
  lmn_data_state s = *st;
  if (d->classes)
    next_examples(d, &s, (size_t)B, (size_t)T, inputs, targets);
  else
    next_windows(d, &s, (size_t)B, (size_t)T, inputs, targets);
  s.batches++;
  *st = s;
  return 0;
}

/* ---- evaluation of a classifier ------------------------------------------------------------------ */

long lmn_count_correct(const float *logits, const int32_t *labels, long B, int classes) {
  long hits = 0;
  for (long b = 0; b < B; b++)
    hits += lmn_sample_argmax(logits + (size_t)b * (size_t)classes, classes) == labels[b];
  return hits;
}

static int check_eval(const lmn_net *net, const lmn_data *d, long batches, long B, long T, lmn_err *err) {
  const lmn_net_desc *nd = net->desc;
  if (nd->classes < 1 || !nd->output)
    return lmn_errf(err, "%s: not a classification network: nothing to measure accuracy on", nd->name);
  if (!d || d->classes != nd->classes)
    return lmn_errf(err, "%s: the network has %d classes but the data is labelled for %d", nd->name,
                    nd->classes, d ? d->classes : 0);
  if (batches < 1 || B < 1 || T < 1 || B > net->B || T > net->T)
    return lmn_errf(err, "%s: cannot evaluate %ld batches of %ld x %ld (planned for %d x %d)", nd->name,
                    batches, B, T, net->B, net->T);
  if (!lmn_data_examples(d, LMN_SPLIT_VAL))
    return lmn_errf(err, "%s: the validation split holds no examples",
                    d->split[LMN_SPLIT_VAL].path ? d->split[LMN_SPLIT_VAL].path : "data");
  return 0;
}

int lmn_eval_classes(lmn_net *net, const lmn_data *d, long batches, long B, long T, lmn_class_eval *out,
                     lmn_err *err) {
  if (check_eval(net, d, batches, B, T, err)) return -1;
  size_t n = lmn_data_examples(d, LMN_SPLIT_VAL), b = (size_t)B;
  size_t total = (size_t)batches >= (n + b - 1) / b ? n : (size_t)batches * b;
  int32_t *x = malloc(b * (size_t)T * sizeof *x), *y = malloc(b * sizeof *y);
  int rc = x && y ? 0 : lmn_errf(err, "%s: out of memory for a validation batch", net->desc->name);
  lmn_data_state st;
  lmn_data_state_init(&st, LMN_SPLIT_VAL, LMN_ORDER_SEQUENTIAL, 0);
  double sum = 0.0;
  long correct = 0;
  for (size_t done = 0, rows; done < total && !rc; done += rows) {
    rows = total - done < b ? total - done : b;
    rc = lmn_data_next(d, &st, (long)rows, T, x, y, err);
    if (rc) break;
    sum += (double)net->desc->forward(net, x, y, (int)rows, (int)T, 0) * (double)rows;
    correct += lmn_count_correct(net->desc->output(net, (int)rows, (int)T), y, (long)rows, d->classes);
  }
  free(x);
  free(y);
  if (rc) return -1;
  *out = (lmn_class_eval){sum / (double)total, (double)correct / (double)total, (long)total, correct};
  return 0;
}
