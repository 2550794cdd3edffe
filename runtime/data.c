/* data.c: reading, tokenising and splitting the training text or labelled examples, serving reproducible
 * batches of either, and the validation loss and accuracy of a classifier. */
#include "data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmn_file.h"
#include "net.h"
#include "sample.h"
#include "tokenizer_bpe.h"

static const char *const split_names[2] = {"training", "validation"};

/* ---- reading: mapped files, tokenised in bounded chunks ----------------------------------------- */

#define LMN_DATA_CHUNK (4u << 20)       /* bytes of text tokenised at a time */
#define LMN_DATA_CUT_SEARCH (64u << 20) /* how far past a chunk's end a place to cut it is looked for */
#define LMN_DATA_MEM_TOKENS (16u << 20) /* ids kept in memory before they go to a token cache file */
#define LMN_DATA_RELEASE (64u << 20)    /* bytes of a mapping read before the pages behind are let go */
#define LMN_DATA_LINE_MAX (64u << 20)   /* the longest line of a labelled file */

/* Maps the regular file at path read-only (*len bytes); an empty file is an error. */
static int map_file(const char *path, void **addr, size_t *len, lmn_err *err) {
  off_t size = 0;
  int fd = lmn_open_regular(path, &size, err);
  if (fd < 0) return -1;
  if (size == 0) return close(fd), lmn_errf(err, "%s: empty file", LMN_SHORT(path));
  if ((uint64_t)size > SIZE_MAX / 2)
    return close(fd), lmn_errf(err, "%s: %lld bytes is too large", LMN_SHORT(path), (long long)size);
  void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd);
  if (m == MAP_FAILED)
    return lmn_errf(err, "%s: cannot map %lld bytes: %s", LMN_SHORT(path), (long long)size, strerror(e));
  madvise(m, (size_t)size, MADV_RANDOM); /* windows are read at random: no read-ahead around them */
  *addr = m;
  *len = (size_t)size;
  return 0;
}

/* Lets go of the pages of base[from, to) that a scan has read: they come back from the file when read
 * again, so that reading a large file once does not keep it resident. */
static void release(const void *base, size_t from, size_t to) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = ((uintptr_t)base + from + page - 1) & ~(page - 1);
  uintptr_t b = ((uintptr_t)base + to) & ~(page - 1);
  if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Tokenises text into a new int32 array, checking every id against the vocabulary. */
static int tokenize(const lmn_tokenizer *tok, const char *path, const char *text, size_t len, int32_t **ids,
                    size_t *n, lmn_err *err) {
  size_t cap = len + 16;
  if (cap > ((size_t)-1) / sizeof(int32_t))
    return lmn_errf(err, "%s: too large to tokenise", LMN_SHORT(path));
  int32_t *v = malloc(cap * sizeof *v);
  long r = v ? lmn_tokenizer_encode(tok, text, len, v, cap) : 0;
  if (v && r > 0 && (size_t)r > cap) { /* the tokenizer needs more room than one id per byte */
    int32_t *w = (size_t)r <= ((size_t)-1) / sizeof(int32_t) ? realloc(v, (size_t)r * sizeof *v) : NULL;
    if (!w) free(v);
    v = w;
    cap = (size_t)r;
    if (v && lmn_tokenizer_encode(tok, text, len, v, cap) != r) r = -1;
  }
  if (!v) return lmn_errf(err, "%s: out of memory tokenising %zu bytes", LMN_SHORT(path), len);
  if (r < 0) return free(v), lmn_errf(err, "%s: the tokenizer failed", LMN_SHORT(path));
  for (size_t i = 0; i < (size_t)r; i++)
    if (v[i] < 0 || v[i] >= tok->vocab_size) {
      int bad = (int)v[i];
      free(v);
      return lmn_errf(err, "%s: the tokenizer produced id %d outside its vocabulary of %d (token %zu)",
                      LMN_SHORT(path), bad, (int)tok->vocab_size, i);
    }
  *ids = v;
  *n = (size_t)r;
  return 0;
}

static int keeps_bytes(const lmn_tokenizer *tok) { return !tok || tok->kind == LMN_TOK_BYTES; }

/* What opening the data goes by: the options and the sizes of lmn_data_open_tuned. */
typedef struct open_ctx {
  const lmn_data_opts *o;
  size_t chunk_bytes, memory_tokens;
} open_ctx;

/* Whether a text may be tokenised in pieces cut at the places cut_at finds: the BPE tokenizers' pieces
 * never span such a place, unless a special token (matched verbatim) holds a line break. */
static int cuttable(const lmn_tokenizer *tok) {
  lmn_bpe_info info;
  return tok->kind == LMN_TOK_BPE && lmn_tokenizer_bpe_info(tok, &info) == 0 && !info.special_line_break;
}

static int plain_ascii(unsigned char c) {
  return c > ' ' && c < 0x7f;
}

/* The end of the chunk of text[from..len) that starts at from: len when the rest is short, else the first
 * place at or after from + chunk where a line break stands between two printable ASCII characters
 * ("x\ny": every pre-tokenizer ends a piece after such a break, and starts one at y whatever came before),
 * so that tokenising the chunks one by one gives the ids of the whole text. 0 when none comes soon. */
static size_t cut_at(const char *text, size_t len, size_t from, size_t chunk) {
  if (len - from <= chunk) return len;
  size_t p = from + chunk, limit = len - p > LMN_DATA_CUT_SEARCH ? p + LMN_DATA_CUT_SEARCH : len;
  for (; p < limit; p++) { /* p: a place after a line break, text[p - 1] == '\n' */
    const char *nl = memchr(text + p - 1, '\n', limit - (p - 1));
    if (!nl) break;
    p = (size_t)(nl - text) + 1;
    if (p >= 2 && p < len && plain_ascii((unsigned char)text[p - 2]) && plain_ascii((unsigned char)text[p]))
      return p;
  }
  return limit == len ? len : 0;
}

/* Where the ids of a text go: memory while they are few, then an unlinked temporary file (the token cache),
 * mapped once complete, so that a large corpus is never held in memory. */
typedef struct id_sink {
  const char *path; /* the text, for messages */
  int32_t *mem;
  size_t n, cap, mem_max; /* ids so far, room in mem, ids memory may hold */
  int fd;                 /* the cache file, or -1 */
} id_sink;

static int sink_spill(id_sink *s, lmn_err *err) {
  const char *dir = getenv("TMPDIR");
  char tmpl[4200];
  snprintf(tmpl, sizeof tmpl, "%s/lmn-tokens-XXXXXX", dir && *dir ? dir : "/tmp");
  s->fd = mkstemp(tmpl);
  if (s->fd < 0)
    return lmn_errf(err, "%s: cannot create a token cache file in %s: %s", LMN_SHORT(s->path),
                    LMN_SHORT(dir && *dir ? dir : "/tmp"), strerror(errno));
  unlink(tmpl); /* gone with the process, whatever happens to it */
  return 0;
}

static int sink_write(id_sink *s, const int32_t *ids, size_t k, lmn_err *err) {
  const char *p = (const char *)ids;
  for (size_t left = k * sizeof *ids; left > 0;) {
    ssize_t w = write(s->fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      return lmn_errf(err, "%s: cannot write the token cache: %s", LMN_SHORT(s->path), strerror(errno));
    p += w, left -= (size_t)w;
  }
  return 0;
}

static int sink_add(id_sink *s, const int32_t *ids, size_t k, lmn_err *err) {
  if (k == 0) return 0; /* a chunk of bytes that made no token (s->mem may still be NULL) */
  if (s->fd < 0 && s->n + k > s->mem_max) { /* too many for memory: to the cache file from now on */
    if (sink_spill(s, err) || sink_write(s, s->mem, s->n, err)) return -1;
    free(s->mem);
    s->mem = NULL;
  }
  if (s->fd >= 0) return s->n += k, sink_write(s, ids, k, err);
  if (s->n + k > s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 65536;
    while (cap < s->n + k) cap *= 2;
    int32_t *m = realloc(s->mem, cap * sizeof *m);
    if (!m) return lmn_errf(err, "%s: out of memory for %zu token ids", LMN_SHORT(s->path), cap);
    s->mem = m, s->cap = cap;
  }
  memcpy(s->mem + s->n, ids, k * sizeof *ids);
  s->n += k;
  return 0;
}

/* The ids of slot i of d: in memory (d->buf) or the mapped cache file (d->map). */
static int sink_finish(id_sink *s, lmn_data *d, int i, lmn_err *err) {
  if (s->fd < 0) {
    d->buf[i] = s->mem;
    d->split[i].ids = s->mem;
    s->mem = NULL;
    return 0;
  }
  void *m = s->n ? mmap(NULL, s->n * sizeof(int32_t), PROT_READ, MAP_PRIVATE, s->fd, 0) : MAP_FAILED;
  if (m == MAP_FAILED)
    return lmn_errf(err, "%s: cannot map the token cache of %zu ids: %s", LMN_SHORT(s->path), s->n,
                    s->n ? strerror(errno) : "empty");
  madvise(m, s->n * sizeof(int32_t), MADV_RANDOM);
  d->map[i] = m;
  d->map_len[i] = s->n * sizeof(int32_t);
  d->split[i].ids = m;
  return 0;
}

/* Tokenises the mapped text[0..len) chunk by chunk into slot i of d. */
static int tokenize_chunks(lmn_data *d, int i, const char *text, size_t len, const open_ctx *c,
                           lmn_err *err) {
  const char *path = d->path[i];
  const lmn_tokenizer *tok = c->o->tok;
  size_t chunk = c->chunk_bytes ? c->chunk_bytes : LMN_DATA_CHUNK;
  if (len > chunk && !cuttable(tok)) chunk = len; /* (the vocabulary is only searched for a text to cut) */
  id_sink s = {path, NULL, 0, 0, c->memory_tokens ? c->memory_tokens : LMN_DATA_MEM_TOKENS, -1};
  int rc = 0;
  for (size_t from = 0, to; from < len && !rc; from = to) {
    if ((to = cut_at(text, len, from, chunk)) == 0) {
      rc = lmn_errf(err,
                    "%s: no line break between printable characters in the %u MiB after byte %zu: the text "
                    "cannot be tokenised in pieces",
                    LMN_SHORT(path), LMN_DATA_CUT_SEARCH >> 20, from + chunk);
      break;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    rc = tokenize(tok, path, text + from, to - from, &ids, &n, err) || sink_add(&s, ids, n, err) ? -1 : 0;
    free(ids);
    release(text, 0, to);
  }
  d->split[i].n = s.n;
  if (!rc) rc = sink_finish(&s, d, i, err);
  free(s.mem);
  if (s.fd >= 0) close(s.fd);
  return rc;
}

/* Maps the file of split i of d (its path copied into d), which must not be empty. */
static int map_split(lmn_data *d, int i, const char *path, const char **text, size_t *len, lmn_err *err) {
  if (!(d->path[i] = strdup(path))) return lmn_errf(err, "%s: out of memory", LMN_SHORT(path));
  void *m = NULL;
  if (map_file(path, &m, len, err)) return -1;
  d->map[i] = m;
  d->map_len[i] = *len;
  d->split[i].path = d->path[i];
  *text = m;
  return 0;
}

/* Loads one file into slot i of d: raw bytes are its mapped bytes, ids are tokenised in chunks (and the
 * text unmapped afterwards). */
static int load_file(lmn_data *d, int i, const char *path, const open_ctx *c, lmn_err *err) {
  const char *text = NULL;
  size_t len = 0;
  if (map_split(d, i, path, &text, &len, err)) return -1;
  lmn_data_split *s = &d->split[i];
  if (keeps_bytes(c->o->tok)) {
    s->bytes = (const uint8_t *)text;
    s->n = len;
  } else {
    d->map[i] = NULL;
    int rc = tokenize_chunks(d, i, text, len, c, err);
    munmap((void *)text, len);
    if (rc) return -1;
  }
  if (s->n < (size_t)d->seq_len + 1)
    return lmn_errf(err,
                    "%s: too short: %zu tokens (%zu bytes) but one sequence of seq_len %ld needs %ld tokens",
                    LMN_SHORT(path), s->n, len, d->seq_len, d->seq_len + 1);
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
        LMN_SHORT(tr->path), which, fraction, has, n, d->seq_len, need);
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
  lmn_data_example *ex; /* n_ex of them, room for cap_ex */
  size_t n_ex, cap_ex;
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
    return lmn_errf(err, "%s:%zu: label '%.*s' is not an integer (each line is LABEL<TAB>TEXT)",
                    LMN_SHORT(L->path), line, shown, s);
  unsigned long long v = 0; /* stops growing once past classes, so it cannot overflow */
  for (size_t k = i; k < len && v <= (unsigned long long)L->classes; k++) v = v * 10 + (unsigned)(s[k] - '0');
  if ((neg && v) || v >= (unsigned long long)L->classes)
    return lmn_errf(err, "%s:%zu: label %.*s is outside [0, %d)", LMN_SHORT(L->path), line, shown, s,
                    L->classes);
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
  char where[LMN_PATH_SHOWN + 32]; /* "file:line", the place tokenize's errors name */
  snprintf(where, sizeof where, "%s:%zu", LMN_SHORT(L->path), line);
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
  if (!tab) return lmn_errf(err, "%s:%zu: no tab: each line is LABEL<TAB>TEXT", LMN_SHORT(L->path), line);
  if (L->n_ex == L->cap_ex) {
    size_t cap = L->cap_ex ? 2 * L->cap_ex : 1024;
    lmn_data_example *ex = cap < ((size_t)-1) / sizeof *ex ? realloc(L->ex, cap * sizeof *ex) : NULL;
    if (!ex) return lmn_errf(err, "%s:%zu: out of memory for %zu examples", LMN_SHORT(L->path), line, cap);
    L->ex = ex, L->cap_ex = cap;
  }
  lmn_data_example *e = &L->ex[L->n_ex];
  if (parse_label(L, s, (size_t)(tab - s), line, &e->label, err)) return -1;
  if (tab + 1 == eol) return lmn_errf(err, "%s:%zu: empty text after the label", LMN_SHORT(L->path), line);
  if (keep_text(L, tab + 1, (size_t)(eol - tab - 1), line, e, err)) return -1;
  L->n_ex++;
  return 0;
}

/* Every line of the file's len bytes (a byte-order mark, blank lines and the '\r' of "\r\n" skipped). */
static int parse_examples(labelled *L, size_t len, lmn_err *err) {
  const char *p = L->text, *end = p + len;
  if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;
  for (size_t line = 1; p < end; line++) {
    size_t left = (size_t)(end - p), look = left > LMN_DATA_LINE_MAX ? LMN_DATA_LINE_MAX + 1 : left;
    const char *nl = memchr(p, '\n', look), *eol = nl ? nl : end;
    if (!nl &&
        look < left) /* a line is a text of one example, not a corpus: bounded, as the memory it takes */
      return lmn_errf(err, "%s:%zu: a line longer than %u MiB", LMN_SHORT(L->path), line,
                      LMN_DATA_LINE_MAX >> 20);
    const char *next = nl ? nl + 1 : end;
    if (eol > p && eol[-1] == '\r') eol--;
    if (eol > p && parse_line(L, p, eol, line, err)) return -1;
    if ((size_t)(next - L->text) / LMN_DATA_RELEASE != (size_t)(p - L->text) / LMN_DATA_RELEASE)
      release(L->text, 0, (size_t)(next - L->text)); /* the examples' bytes come back from the file */
    p = next;
  }
  if (!L->n_ex) return lmn_errf(err, "%s: no examples: the file holds only blank lines", LMN_SHORT(L->path));
  return 0;
}

static size_t kept_tokens(const lmn_data_split *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->n_ex; i++) n += s->ex[i].len;
  return n;
}

/* Loads one labelled file into slot i of d: its examples, and its mapped text (raw bytes) or its kept ids
 * (the text unmapped afterwards). */
static int load_labelled(lmn_data *d, int i, const char *path, const open_ctx *c, lmn_err *err) {
  const lmn_data_opts *o = c->o;
  const char *text = NULL;
  size_t len = 0;
  if (map_split(d, i, path, &text, &len, err)) return -1;
  labelled L = {.path = d->path[i],
                .text = text,
                .tok = keeps_bytes(o->tok) ? NULL : o->tok,
                .keep = (size_t)d->seq_len,
                .classes = d->classes};
  int rc = parse_examples(&L, len, err);
  lmn_data_split *s = &d->split[i];
  d->examples[i] = L.ex;
  if (L.tok) {
    munmap((void *)text, len);
    d->map[i] = NULL;
    d->buf[i] = L.ids;
    s->ids = L.ids;
  } else {
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
                    LMN_SHORT(tr->path), fraction, n, nv == 0 ? "validation" : "training");
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

typedef int (*load_fn)(lmn_data *d, int i, const char *path, const open_ctx *c, lmn_err *err);

static int open_data(lmn_data *d, const open_ctx *c, int classes, lmn_err *err) {
  const lmn_data_opts *o = c->o;
  memset(d, 0, sizeof *d);
  if (check_opts(o, err)) return -1;
  if (classes < 0) return lmn_errf(err, "data: %d classes is not a number of classes", classes);
  d->seq_len = o->seq_len;
  d->classes = classes;
  d->pad = classes ? pad_id(o->tok) : 0;
  load_fn load = classes ? load_labelled : load_file;
  int rc = load(d, LMN_SPLIT_TRAIN, o->train_path, c, err);
  if (!rc && o->val_path)
    rc = load(d, LMN_SPLIT_VAL, o->val_path, c, err);
  else if (!rc)
    rc = classes ? split_examples(d, o->val_fraction, err) : split_tail(d, o->val_fraction, err);
  if (rc) lmn_data_close(d);
  return rc;
}

int lmn_data_open(lmn_data *d, const lmn_data_opts *o, lmn_err *err) {
  return open_data(d, &(open_ctx){o, 0, 0}, 0, err);
}

int lmn_data_open_classes(lmn_data *d, const lmn_data_opts *o, int classes, lmn_err *err) {
  return open_data(d, &(open_ctx){o, 0, 0}, classes, err);
}

int lmn_data_open_tuned(lmn_data *d, const lmn_data_opts *o, int classes, size_t chunk_bytes,
                        size_t memory_tokens, lmn_err *err) {
  return open_data(d, &(open_ctx){o, chunk_bytes, memory_tokens}, classes, err);
}

void lmn_data_close(lmn_data *d) {
  if (!d) return;
  for (int i = 0; i < 2; i++) {
    if (d->map[i]) munmap(d->map[i], d->map_len[i]);
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
  if (st->order == LMN_ORDER_RANDOM && !lmn_rng_valid(&st->rng))
    return lmn_errf(err,
                    "data: invalid stream state: its generator is all zeros (it would draw zeros for ever)");
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
  return lmn_eval_classes_each(net, d, batches, B, T, out, NULL, NULL, err);
}

/* The first `total` validation examples in pieces of P, piece k evaluated when k % ranks == rank: into
 * part[0] the loss summed over its examples, part[1] the correct ones, part[2] the examples. */
static int class_pieces(lmn_net *net, const lmn_data *d, size_t total, long P, long T, int rank, int ranks,
                        lmn_class_row_fn on_row, void *ctx, double part[3], lmn_err *err) {
  size_t b = (size_t)P;
  int32_t *x = malloc(b * (size_t)T * sizeof *x), *y = malloc(b * sizeof *y);
  int rc = x && y ? 0 : lmn_errf(err, "%s: out of memory for a validation batch", net->desc->name);
  lmn_data_state st;
  lmn_data_state_init(&st, LMN_SPLIT_VAL, LMN_ORDER_SEQUENTIAL, 0);
  double sum = 0.0;
  long correct = 0, seen = 0;
  for (size_t done = 0, rows, k = 0; done < total && !rc; done += rows, k++) {
    rows = total - done < b ? total - done : b;
    rc = lmn_data_next(d, &st, (long)rows, T, x, y, err);
    if (rc || k % (size_t)ranks != (size_t)rank) continue;
    sum += (double)net->desc->forward(net, x, y, (int)rows, (int)T, 0) * (double)rows;
    const float *logits = net->desc->output(net, (int)rows, (int)T);
    correct += lmn_count_correct(logits, y, (long)rows, d->classes);
    seen += (long)rows;
    for (size_t r = 0; on_row && r < rows; r++)
      on_row(ctx, (long)(done + r), logits + r * (size_t)d->classes, d->classes, y[r]);
  }
  free(x);
  free(y);
  part[0] = sum, part[1] = (double)correct, part[2] = (double)seen;
  return rc ? -1 : 0;
}

/* The examples an evaluation of `batches` batches of B takes: all when they fit, else batches * B. */
static size_t class_total(const lmn_data *d, long batches, long B) {
  size_t n = lmn_data_examples(d, LMN_SPLIT_VAL), b = (size_t)B;
  return (size_t)batches >= (n + b - 1) / b ? n : (size_t)batches * b;
}

void lmn_class_eval_of(const double part[3], lmn_class_eval *out) {
  double total = part[2] > 0 ? part[2] : 1.0;
  *out = (lmn_class_eval){part[0] / total, part[1] / total, (long)part[2], (long)part[1]};
}

int lmn_eval_classes_each(lmn_net *net, const lmn_data *d, long batches, long B, long T, lmn_class_eval *out,
                          lmn_class_row_fn on_row, void *ctx, lmn_err *err) {
  if (check_eval(net, d, batches, B, T, err)) return -1;
  double part[3];
  if (class_pieces(net, d, class_total(d, batches, B), B, T, 0, 1, on_row, ctx, part, err)) return -1;
  lmn_class_eval_of(part, out);
  return 0;
}

int lmn_eval_classes_part(lmn_net *net, const lmn_data *d, long batches, long G, long T, int rank, int ranks,
                          double part[3], lmn_err *err) {
  if (check_eval(net, d, batches, net->B, T, err)) return -1;
  return class_pieces(net, d, class_total(d, batches, G), net->B, T, rank, ranks, NULL, NULL, part, err);
}
