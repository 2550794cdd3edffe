/* config.c: strict loading of the YAML training configuration (libyaml document API) against a table-driven
 * schema, the checks that span several keys, printing back to YAML, and the learning-rate schedule. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "lmn_file.h"
#include "net.h" /* LMN_PARAM_ flags */
#include "recompute.h"

#define LMN_CFG_MAX_BYTES (1L << 20) /* a training configuration is a few hundred bytes */
#define LMN_BIG 1e15                 /* upper bound of counts (steps, every, ...) */
#define LMN_SHOW 48                  /* longest piece of user text quoted in a message */
#define LMN_CFG_PATH_MAX                                                                            \
  4000                       /* longest resolved path: PATH_MAX (4096) less room for the file names \
                                written inside checkpoint.dir ("step-000000.safetensors.tmp.XXXXXX") */
#define LMN_CFG_NAME_MAX 255 /* longest component of a path (NAME_MAX) */

/* ---- schema ---------------------------------------------------------------------------------------- */

typedef enum kind {
  K_LONG,
  K_SEED,
  K_DOUBLE,
  K_PATH,
  K_TEXT,
  K_DECAY,
  K_PRECISION,
  K_BYTES,
  K_BETAS,
  K_NO_DECAY,
  K_MAP,
  K_STAGES,
  K_TRAIN
} kind;

/* Values remembered for the checks that span keys. */
typedef enum slot {
  S_NONE = 0,
  S_STEPS,
  S_STAGES,
  S_LR,
  S_WARMUP,
  S_MIN_LR,
  S_VAL,
  S_VAL_FRACTION,
  S_COUNT
} slot;

typedef struct range {
  double lo, hi;
  unsigned char lo_open, hi_open;
} range;

typedef struct table table;
typedef struct field {
  const char *key;
  kind kind;
  size_t off; /* offset of the value in the base struct */
  range r;
  int required;
  slot slot;
  const table *sub; /* K_MAP: the keys of the nested mapping (same base struct) */
} field;

struct table {
  const field *f;
  int n;
};

#define RANGE(lo, hi) \
  { lo, hi, 0, 0 }
#define OPEN01 \
  { 0, 1, 1, 1 }
#define CFG(member) offsetof(lmn_train_config, member)
#define NF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const field data_f[] = {
    {"train", K_PATH, CFG(data.train), RANGE(0, 0), 1, S_NONE, NULL},
    {"val", K_PATH, CFG(data.val), RANGE(0, 0), 0, S_VAL, NULL},
    {"val_fraction", K_DOUBLE, CFG(data.val_fraction), OPEN01, 0, S_VAL_FRACTION, NULL},
};
static const field opt_f[] = {
    {"lr", K_DOUBLE, CFG(optimizer.lr), RANGE(0, INFINITY), 0, S_LR, NULL},
    {"betas", K_BETAS, CFG(optimizer.betas), {0, 1, 0, 1}, 0, S_NONE, NULL},
    {"eps", K_DOUBLE, CFG(optimizer.eps), RANGE(0, INFINITY), 0, S_NONE, NULL},
    {"weight_decay", K_DOUBLE, CFG(optimizer.weight_decay), RANGE(0, INFINITY), 0, S_NONE, NULL},
    {"no_decay", K_NO_DECAY, CFG(optimizer.no_decay), RANGE(0, 0), 0, S_NONE, NULL},
};
static const field sched_f[] = {
    {"warmup", K_LONG, CFG(schedule.warmup), RANGE(0, LMN_BIG), 0, S_WARMUP, NULL},
    {"decay", K_DECAY, CFG(schedule.decay), RANGE(0, 0), 0, S_NONE, NULL},
    {"min_lr", K_DOUBLE, CFG(schedule.min_lr), RANGE(0, INFINITY), 0, S_MIN_LR, NULL},
};
static const field eval_f[] = {
    {"every", K_LONG, CFG(eval.every), RANGE(0, LMN_BIG), 0, S_NONE, NULL},
    {"batches", K_LONG, CFG(eval.batches), RANGE(1, 1e9), 0, S_NONE, NULL},
};
static const field ckpt_f[] = {
    {"dir", K_PATH, CFG(checkpoint.dir), RANGE(0, 0), 0, S_NONE, NULL},
    {"every", K_LONG, CFG(checkpoint.every), RANGE(0, LMN_BIG), 0, S_NONE, NULL},
    {"keep", K_LONG, CFG(checkpoint.keep), RANGE(0, 1e6), 0, S_NONE, NULL},
    {"minutes", K_DOUBLE, CFG(checkpoint.minutes), RANGE(0, 1e9), 0, S_NONE, NULL},
};
static const field log_f[] = {
    {"every", K_LONG, CFG(log.every), RANGE(1, LMN_BIG), 0, S_NONE, NULL},
};
static const field sample_f[] = {
    {"every", K_LONG, CFG(sample.every), RANGE(0, LMN_BIG), 0, S_NONE, NULL},
    {"prompt", K_TEXT, CFG(sample.prompt), RANGE(0, 0), 0, S_NONE, NULL},
    {"tokens", K_LONG, CFG(sample.tokens), RANGE(1, 4096), 0, S_NONE, NULL},
    {"temperature", K_DOUBLE, CFG(sample.temperature), RANGE(0, 1e6), 0, S_NONE, NULL},
    {"top_k", K_LONG, CFG(sample.top_k), RANGE(0, 1 << 30), 0, S_NONE, NULL},
    {"top_p", K_DOUBLE, CFG(sample.top_p), RANGE(0, 1), 0, S_NONE, NULL},
};
static const field memory_f[] = {
    {"budget", K_BYTES, CFG(memory_budget), RANGE(1, 1e18), 0, S_NONE, NULL},
};
static const table data_t = {data_f, NF(data_f)}, memory_t = {memory_f, NF(memory_f)},
                   opt_t = {opt_f, NF(opt_f)}, sched_t = {sched_f, NF(sched_f)},
                   eval_t = {eval_f, NF(eval_f)}, ckpt_t = {ckpt_f, NF(ckpt_f)}, log_t = {log_f, NF(log_f)},
                   sample_t = {sample_f, NF(sample_f)};

static const field top_f[] = {
    {"data", K_MAP, 0, RANGE(0, 0), 1, S_NONE, &data_t},
    {"batch", K_LONG, CFG(batch), RANGE(1, 1 << 20), 1, S_NONE, NULL},
    {"seq_len", K_LONG, CFG(seq_len), RANGE(1, 1 << 24), 1, S_NONE, NULL},
    {"accumulate", K_LONG, CFG(accumulate), RANGE(1, 1 << 20), 0, S_NONE, NULL},
    {"precision", K_PRECISION, CFG(precision), RANGE(0, 0), 0, S_NONE, NULL},
    {"memory", K_MAP, 0, RANGE(0, 0), 0, S_NONE, &memory_t},
    {"steps", K_LONG, CFG(steps), RANGE(1, LMN_BIG), 0, S_STEPS, NULL},
    {"stages", K_STAGES, 0, RANGE(0, 0), 0, S_STAGES, NULL},
    {"optimizer", K_MAP, 0, RANGE(0, 0), 0, S_NONE, &opt_t},
    {"schedule", K_MAP, 0, RANGE(0, 0), 0, S_NONE, &sched_t},
    {"grad_clip", K_DOUBLE, CFG(grad_clip), RANGE(0, INFINITY), 0, S_NONE, NULL},
    {"eval", K_MAP, 0, RANGE(0, 0), 0, S_NONE, &eval_t},
    {"checkpoint", K_MAP, 0, RANGE(0, 0), 0, S_NONE, &ckpt_t},
    {"seed", K_SEED, CFG(seed), RANGE(0, 0), 0, S_NONE, NULL},
    {"threads", K_LONG, CFG(threads), RANGE(0, 4096), 0, S_NONE, NULL},
    {"log", K_MAP, 0, RANGE(0, 0), 0, S_NONE, &log_t},
    {"init_from", K_PATH, CFG(init_from), RANGE(0, 0), 0, S_NONE, NULL},
    {"sample", K_MAP, 0, RANGE(0, 0), 0, S_NONE, &sample_t},
};
static const table top_t = {top_f, NF(top_f)};

static const field stage_f[] = {
    {"steps", K_LONG, offsetof(lmn_stage, steps), RANGE(1, LMN_BIG), 1, S_NONE, NULL},
    {"train", K_TRAIN, 0, RANGE(0, 0), 0, S_NONE, NULL},
};
static const table stage_t = {stage_f, NF(stage_f)};

#define LMN_MAX_KEYS 20 /* the most keys of one mapping in the schema */
_Static_assert(NF(top_f) <= LMN_MAX_KEYS, "room for every top-level key");

static const char *const decay_names[] = {"cosine", "linear", "constant"};
static const char *const precision_names[] = {"f32", "bf16"}; /* lmn_precision order (bgemm.h) */
/* optimizer.no_decay words, bit i of the flags (LMN_PARAM_BIAS, _NORM, _EMBEDDING) */
static const char *const no_decay_names[] = {"bias", "norm", "embedding"};
_Static_assert(LMN_PARAM_BIAS == 1 && LMN_PARAM_NORM == 2 && LMN_PARAM_EMBEDDING == 4,
               "no_decay_names order");

/* ---- parse context and messages --------------------------------------------------------------------- */

typedef struct ctx {
  const char *file; /* as given, for messages */
  char *dir;        /* directory of the file ("" for the current one), for relative paths */
  yaml_document_t *doc;
  lmn_train_config *cfg;
  lmn_err *err;
  yaml_mark_t marks[S_COUNT]; /* where the remembered values are */
  unsigned char seen[S_COUNT];
} ctx;

/* Reports "file:line:col: error: ..." at mark m; returns -1. */
__attribute__((format(printf, 3, 4))) static int fail_at(ctx *c, yaml_mark_t m, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return lmn_errf(c->err, "%s:%zu:%zu: error: %s", LMN_SHORT(c->file), m.line + 1, m.column + 1, msg);
}

/* Copies user text for a message: at most LMN_SHOW bytes, control characters as '?', "..." when cut. */
static void show(char *out, const char *s, size_t len) {
  size_t n = len < LMN_SHOW ? len : LMN_SHOW, k = 0;
  for (size_t i = 0; i < n; i++) out[k++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
  if (len > n) memcpy(out + k, "...", 3), k += 3;
  out[k] = '\0';
}

static const char *sval(const yaml_node_t *n) {
  return (const char *)n->data.scalar.value;
}
static size_t slen(const yaml_node_t *n) {
  return n->data.scalar.length;
}
static int plain(const yaml_node_t *n) {
  return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE || !plain(n)) return 0;
  const char *s = sval(n);
  return slen(n) == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* How a value looks to the user, for "got ...": 'abc', the string "32", a mapping, a list, nothing. */
static void describe(const yaml_node_t *n, char *out, size_t cap) {
  char s[LMN_SHOW + 4];
  if (n->type == YAML_MAPPING_NODE)
    snprintf(out, cap, "a mapping");
  else if (n->type == YAML_SEQUENCE_NODE)
    snprintf(out, cap, "a list");
  else if (is_null(n))
    snprintf(out, cap, "nothing");
  else {
    show(s, sval(n), slen(n));
    snprintf(out, cap, plain(n) ? "'%s'" : "the string \"%s\"", s);
  }
}

static int type_error(ctx *c, const yaml_node_t *n, const char *name, const char *what) {
  char got[LMN_SHOW + 32];
  describe(n, got, sizeof got);
  return fail_at(c, n->start_mark, "'%s' must be %s, got %s", name, what, got);
}

/* "a, b, c or d" into out. */
static void list_keys(const char *const *keys, int n, char *out, size_t cap) {
  size_t k = 0;
  out[0] = '\0';
  for (int i = 0; i < n && k < cap; i++)
    k += (size_t)snprintf(out + k, cap - k, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", keys[i]);
}

/* ---- scalars ----------------------------------------------------------------------------------------- */

/* Copies a plain scalar of at most 63 bytes into buf; 0 when it cannot be a number. */
static int numeric_text(const yaml_node_t *n, char *buf) {
  if (n->type != YAML_SCALAR_NODE || !plain(n) || slen(n) == 0 || slen(n) > 63) return 0;
  memcpy(buf, sval(n), slen(n) + 1);
  return strlen(buf) == slen(n);
}

static int parse_long(const yaml_node_t *n, long *out) {
  char buf[64], *end;
  if (!numeric_text(n, buf)) return 0;
  for (const char *p = buf + (buf[0] == '-' || buf[0] == '+');; p++) {
    if (*p == '\0') break;
    if (*p < '0' || *p > '9') return 0;
  }
  errno = 0;
  long v = strtol(buf, &end, 10);
  if (errno || *end || end == buf) return 0;
  *out = v;
  return 1;
}

static int parse_double(const yaml_node_t *n, double *out) {
  char buf[64], *end;
  if (!numeric_text(n, buf) || strspn(buf, "0123456789+-.eE") != strlen(buf)) return 0;
  errno = 0;
  double v = strtod(buf, &end);
  if (*end || end == buf || !isfinite(v)) return 0;
  *out = v;
  return 1;
}

/* Checks v against r, naming the key; the interval is spelled out for fractions. */
static int check_range(ctx *c, const yaml_node_t *n, const char *name, double v, range r) {
  char got[LMN_SHOW + 4];
  int below = r.lo_open ? !(v > r.lo) : !(v >= r.lo), above = r.hi_open ? !(v < r.hi) : !(v <= r.hi);
  if (!below && !above) return 0;
  show(got, sval(n), slen(n));
  if (r.hi <= 1.0)
    return fail_at(c, n->start_mark, "'%s' must be in %c%g, %g%c, got %s", name, r.lo_open ? '(' : '[', r.lo,
                   r.hi, r.hi_open ? ')' : ']', got);
  if (below)
    return fail_at(c, n->start_mark, "'%s' must be %s %g, got %s", name,
                   r.lo_open ? "greater than" : "at least", r.lo, got);
  return fail_at(c, n->start_mark, "'%s' must be %s %.0f, got %s", name, r.hi_open ? "less than" : "at most",
                 r.hi, got);
}

static int get_long(ctx *c, const yaml_node_t *n, const char *name, range r, long *out) {
  if (!parse_long(n, out)) return type_error(c, n, name, "an integer");
  return check_range(c, n, name, (double)*out, r);
}

static int get_double(ctx *c, const yaml_node_t *n, const char *name, range r, double *out) {
  if (!parse_double(n, out)) return type_error(c, n, name, "a number");
  return check_range(c, n, name, *out, r);
}

static int get_seed(ctx *c, const yaml_node_t *n, const char *name, uint64_t *out) {
  char buf[64], *end;
  if (!numeric_text(n, buf) || strspn(buf, "0123456789") != strlen(buf))
    return type_error(c, n, name, "an unsigned integer");
  errno = 0;
  unsigned long long v = strtoull(buf, &end, 10);
  if (errno) return fail_at(c, n->start_mark, "'%s' does not fit in 64 bits, got '%s'", name, buf);
  *out = (uint64_t)v;
  return 0;
}

/* A non-empty string without NUL bytes (the value of a path or a name); NULL after reporting otherwise. */
static const char *get_text(ctx *c, const yaml_node_t *n, const char *name, const char *what) {
  if (n->type != YAML_SCALAR_NODE || is_null(n) || slen(n) == 0) return type_error(c, n, name, what), NULL;
  if (strlen(sval(n)) != slen(n)) return fail_at(c, n->start_mark, "'%s' contains a NUL byte", name), NULL;
  return sval(n);
}

static char *dup_str(ctx *c, const char *s) {
  char *d = strdup(s);
  if (!d) lmn_errf(c->err, "%s: error: out of memory", c->file);
  return d;
}

/* s joined to the YAML file's directory unless it is absolute; NULL after reporting when memory runs out. */
static char *resolve(ctx *c, const char *s) {
  if (s[0] == '/' || c->dir[0] == '\0') return dup_str(c, s);
  size_t ld = strlen(c->dir), ls = strlen(s);
  int slash = c->dir[ld - 1] != '/';
  char *p = malloc(ld + (size_t)slash + ls + 1);
  if (!p) return lmn_errf(c->err, "%s: error: out of memory", c->file), NULL;
  memcpy(p, c->dir, ld);
  if (slash) p[ld] = '/';
  memcpy(p + ld + (size_t)slash, s, ls + 1);
  return p;
}

/* A path the system can open: at most LMN_CFG_PATH_MAX characters, none of its components longer than
 * LMN_CFG_NAME_MAX; checked here, where the line is known, rather than at the first use hours later. */
static int check_path_len(ctx *c, const yaml_node_t *n, const char *name, const char *p) {
  size_t len = strlen(p), run = 0, longest = 0;
  for (const char *q = p; *q; q++) {
    run = *q == '/' ? 0 : run + 1;
    if (run > longest) longest = run;
  }
  if (len > LMN_CFG_PATH_MAX)
    return fail_at(c, n->start_mark, "'%s' is too long: a path of %zu characters (at most %d): %s", name, len,
                   LMN_CFG_PATH_MAX, LMN_SHORT(p));
  if (longest > LMN_CFG_NAME_MAX)
    return fail_at(c, n->start_mark, "'%s' is too long: a path component of %zu characters (at most %d): %s",
                   name, longest, LMN_CFG_NAME_MAX, LMN_SHORT(p));
  return 0;
}

static int get_path(ctx *c, const yaml_node_t *n, const char *name, char **out) {
  const char *s = get_text(c, n, name, "a path");
  if (!s) return -1;
  char *p = resolve(c, s);
  if (!p) return -1;
  if (check_path_len(c, n, name, p)) return free(p), -1;
  free(*out);
  *out = p;
  return 0;
}

/* A piece of text kept as written (a prompt). */
static int get_string(ctx *c, const yaml_node_t *n, const char *name, char **out) {
  const char *s = get_text(c, n, name, "a text");
  char *d = s ? dup_str(c, s) : NULL;
  if (!d) return -1;
  free(*out);
  *out = d;
  return 0;
}

/* The index of scalar n among words (each "what" of 'name'), with a did-you-mean; -1 after reporting. */
static int get_word(ctx *c, const yaml_node_t *n, const char *name, const char *const *words, int n_words,
                    const char *what, const char *expected) {
  if (n->type != YAML_SCALAR_NODE || is_null(n)) return type_error(c, n, name, expected), -1;
  for (int i = 0; i < n_words; i++)
    if (!strcmp(sval(n), words[i]) && strlen(words[i]) == slen(n)) return i;
  char got[LMN_SHOW + 4];
  show(got, sval(n), slen(n));
  const char *near = lmn_nearest(sval(n), slen(n), words, n_words);
  if (near) return fail_at(c, n->start_mark, "unknown %s '%s' (did you mean '%s'?)", what, got, near), -1;
  return fail_at(c, n->start_mark, "unknown %s '%s' (expected %s)", what, got, expected), -1;
}

static int get_decay(ctx *c, const yaml_node_t *n, const char *name, lmn_decay *out) {
  int i = get_word(c, n, name, decay_names, 3, "decay", "cosine, linear or constant");
  return i < 0 ? -1 : (*out = (lmn_decay)i, 0);
}

static int get_precision(ctx *c, const yaml_node_t *n, const char *name, int *out) {
  int i = get_word(c, n, name, precision_names, 2, "precision", "f32 or bf16");
  return i < 0 ? -1 : (*out = i, 0);
}

/* A size in bytes: a number, or a number with a unit (12GiB, 512 MiB, 800MB: recompute.h). */
static int get_bytes(ctx *c, const yaml_node_t *n, const char *name, range r, double *out) {
  if (n->type != YAML_SCALAR_NODE || is_null(n) || strlen(sval(n)) != slen(n) ||
      lmn_parse_bytes(sval(n), out))
    return type_error(c, n, name, "a size such as 12GiB, 512MiB, 800MB or a number of bytes");
  return check_range(c, n, name, *out, r);
}

/* optimizer.no_decay: a list of tensor kinds, as LMN_PARAM_ flags (bit i for no_decay_names[i]). */
static int get_no_decay(ctx *c, const yaml_node_t *n, const char *name, unsigned *out) {
  if (n->type != YAML_SEQUENCE_NODE) return type_error(c, n, name, "a list of bias, norm, embedding (or [])");
  unsigned flags = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
    const yaml_node_t *item = yaml_document_get_node(c->doc, *it);
    int i = get_word(c, item, name, no_decay_names, 3, "tensor kind", "bias, norm or embedding");
    if (i < 0) return -1;
    if (flags & (1u << i))
      return fail_at(c, item->start_mark, "'%s' lists '%s' twice", name, no_decay_names[i]);
    flags |= 1u << i;
  }
  *out = flags;
  return 0;
}

static int get_betas(ctx *c, const yaml_node_t *n, const char *name, range r, double *out) {
  if (n->type != YAML_SEQUENCE_NODE) return type_error(c, n, name, "a list of two numbers [beta1, beta2]");
  yaml_node_item_t *items = n->data.sequence.items.start;
  long count = n->data.sequence.items.top - items;
  if (count != 2)
    return fail_at(c, n->start_mark, "'%s' must be a list of two numbers [beta1, beta2], got %ld item%s",
                   name, count, count == 1 ? "" : "s");
  for (int i = 0; i < 2; i++) {
    char item[160];
    snprintf(item, sizeof item, "%s[%d]", name, i);
    if (get_double(c, yaml_document_get_node(c->doc, items[i]), item, r, &out[i])) return -1;
  }
  return 0;
}

/* ---- stages --------------------------------------------------------------------------------------- */

static lmn_cfg_pos pos_of(yaml_mark_t m) {
  return (lmn_cfg_pos){(int)m.line + 1, (int)m.column + 1};
}

static int get_names(ctx *c, const yaml_node_t *n, const char *name, lmn_stage *st) {
  yaml_node_item_t *items = n->data.sequence.items.start;
  long count = n->data.sequence.items.top - items;
  if (count == 0) return fail_at(c, n->start_mark, "'%s' lists no names", name);
  st->names = calloc((size_t)count, sizeof *st->names);
  st->name_pos = calloc((size_t)count, sizeof *st->name_pos);
  if (!st->names || !st->name_pos) return lmn_errf(c->err, "%s: error: out of memory", c->file);
  for (long i = 0; i < count; i++) {
    const yaml_node_t *it = yaml_document_get_node(c->doc, items[i]);
    const char *s = get_text(c, it, name, "a list of names");
    if (!s) return -1;
    for (int j = 0; j < st->n_names; j++)
      if (!strcmp(st->names[j], s)) {
        char shown[LMN_SHOW + 4];
        show(shown, s, strlen(s));
        return fail_at(c, it->start_mark, "'%s' lists '%s' twice", name, shown);
      }
    if (!(st->names[i] = dup_str(c, s))) return -1;
    st->name_pos[i] = pos_of(it->start_mark);
    st->n_names = (int)i + 1;
  }
  return 0;
}

static int get_train(ctx *c, const yaml_node_t *n, const char *name, lmn_stage *st) {
  static const char *const words[] = {"all", "edges"};
  st->pos = pos_of(n->start_mark);
  if (n->type == YAML_SEQUENCE_NODE) return st->train = LMN_TRAIN_NAMES, get_names(c, n, name, st);
  if (n->type != YAML_SCALAR_NODE || is_null(n))
    return type_error(c, n, name, "edges, all or a list of names such as [a, b]");
  for (int i = 0; i < 2; i++)
    if (!strcmp(sval(n), words[i]) && strlen(words[i]) == slen(n)) return st->train = (lmn_train_what)i, 0;
  char got[LMN_SHOW + 4];
  show(got, sval(n), slen(n));
  const char *near = lmn_nearest(sval(n), slen(n), words, 2);
  if (near)
    return fail_at(c, n->start_mark,
                   "'%s' must be edges, all or a list of names, got '%s' (did you mean '%s'?)", name, got,
                   near);
  return fail_at(c, n->start_mark, "'%s' must be edges, all or a list of names such as [%s], got '%s'", name,
                 got, got);
}

static int parse_map(ctx *c, const yaml_node_t *map, const table *t, void *base, const char *section);

static int get_stages(ctx *c, const yaml_node_t *n, const char *name) {
  if (n->type != YAML_SEQUENCE_NODE)
    return type_error(c, n, name, "a list of stages such as [{steps: 100, train: edges}]");
  yaml_node_item_t *items = n->data.sequence.items.start;
  long count = n->data.sequence.items.top - items;
  if (count == 0) return fail_at(c, n->start_mark, "'%s' lists no stages", name);
  if (count > 1000000) return fail_at(c, n->start_mark, "'%s' lists too many stages (%ld)", name, count);
  c->cfg->stages = calloc((size_t)count, sizeof *c->cfg->stages);
  if (!c->cfg->stages) return lmn_errf(c->err, "%s: error: out of memory", c->file);
  c->cfg->n_stages = (int)count;
  for (long i = 0; i < count; i++) {
    char sec[160];
    snprintf(sec, sizeof sec, "%s[%ld]", name, i);
    c->cfg->stages[i].train = LMN_TRAIN_ALL;
    c->cfg->stages[i].pos = pos_of(yaml_document_get_node(c->doc, items[i])->start_mark);
    if (parse_map(c, yaml_document_get_node(c->doc, items[i]), &stage_t, &c->cfg->stages[i], sec)) return -1;
  }
  return 0;
}

/* ---- mappings -------------------------------------------------------------------------------------- */

static int parse_value(ctx *c, const field *f, const yaml_node_t *v, void *base, const char *name) {
  char *p = (char *)base + f->off;
  switch (f->kind) {
    case K_LONG: return get_long(c, v, name, f->r, (long *)(void *)p);
    case K_SEED: return get_seed(c, v, name, (uint64_t *)(void *)p);
    case K_DOUBLE: return get_double(c, v, name, f->r, (double *)(void *)p);
    case K_PATH: return get_path(c, v, name, (char **)(void *)p);
    case K_TEXT: return get_string(c, v, name, (char **)(void *)p);
    case K_DECAY: return get_decay(c, v, name, (lmn_decay *)(void *)p);
    case K_PRECISION: return get_precision(c, v, name, (int *)(void *)p);
    case K_BYTES: return get_bytes(c, v, name, f->r, (double *)(void *)p);
    case K_BETAS: return get_betas(c, v, name, f->r, (double *)(void *)p);
    case K_NO_DECAY: return get_no_decay(c, v, name, (unsigned *)(void *)p);
    case K_MAP: return parse_map(c, v, f->sub, base, name);
    case K_STAGES: return get_stages(c, v, name);
    case K_TRAIN: return get_train(c, v, name, (lmn_stage *)base);
  }
  return -1;
}

static int unknown_key(ctx *c, const yaml_node_t *k, const table *t, const char *section) {
  const char *keys[LMN_MAX_KEYS];
  char got[LMN_SHOW + 4], in[96] = "", hint[320];
  for (int i = 0; i < t->n; i++) keys[i] = t->f[i].key;
  show(got, sval(k), slen(k));
  if (section[0]) snprintf(in, sizeof in, " in '%s'", section);
  const char *near = lmn_nearest(sval(k), slen(k), keys, t->n);
  if (near)
    snprintf(hint, sizeof hint, "did you mean '%s'?", near);
  else {
    snprintf(hint, sizeof hint, "expected ");
    list_keys(keys, t->n, hint + 9, sizeof hint - 9);
  }
  return fail_at(c, k->start_mark, "unknown key '%s'%s (%s)", got, in, hint);
}

/* The field of table t named by key node k, or NULL. */
static const field *lookup(const table *t, const yaml_node_t *k) {
  for (int i = 0; i < t->n; i++)
    if (strlen(t->f[i].key) == slen(k) && !memcmp(t->f[i].key, sval(k), slen(k))) return &t->f[i];
  return NULL;
}

static int missing(ctx *c, const yaml_node_t *map, const table *t, const yaml_mark_t *seen,
                   const char *section) {
  for (int i = 0; i < t->n; i++)
    if (t->f[i].required && seen[i].index == (size_t)-1) {
      if (!section[0]) return fail_at(c, map->start_mark, "missing required key '%s'", t->f[i].key);
      return fail_at(c, map->start_mark, "missing required key '%s' in '%s'", t->f[i].key, section);
    }
  return 0;
}

/* Parses mapping node map against table t into base; section is its dotted name ("" at the top). */
static int parse_map(ctx *c, const yaml_node_t *map, const table *t, void *base, const char *section) {
  if (map->type != YAML_MAPPING_NODE)
    return type_error(c, map, section[0] ? section : "the configuration", "a mapping of keys to values");
  yaml_mark_t seen[LMN_MAX_KEYS];
  for (int i = 0; i < t->n; i++) seen[i].index = (size_t)-1;
  for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
    const yaml_node_t *k = yaml_document_get_node(c->doc, pr->key),
                      *v = yaml_document_get_node(c->doc, pr->value);
    if (k->type != YAML_SCALAR_NODE) return fail_at(c, k->start_mark, "a key must be a plain name");
    const field *f = lookup(t, k);
    if (!f) return unknown_key(c, k, t, section);
    int i = (int)(f - t->f);
    if (seen[i].index != (size_t)-1)
      return fail_at(c, k->start_mark, "duplicate key '%s' (first given at %zu:%zu)", f->key,
                     seen[i].line + 1, seen[i].column + 1);
    seen[i] = k->start_mark;
    char name[128];
    snprintf(name, sizeof name, "%s%s%s", section, section[0] ? "." : "", f->key);
    if (parse_value(c, f, v, base, name)) return -1;
    if (f->slot) c->marks[f->slot] = v->start_mark, c->seen[f->slot] = 1;
  }
  return missing(c, map, t, seen, section);
}

/* ---- checks across keys ---------------------------------------------------------------------------- */

static int settle_steps(ctx *c, const yaml_node_t *root) {
  lmn_train_config *cfg = c->cfg;
  if (!c->seen[S_STAGES]) {
    if (!c->seen[S_STEPS]) return fail_at(c, root->start_mark, "missing required key 'steps' (or 'stages')");
    cfg->stages = calloc(1, sizeof *cfg->stages);
    if (!cfg->stages) return lmn_errf(c->err, "%s: error: out of memory", c->file);
    cfg->n_stages = 1;
    cfg->stages[0].steps = cfg->steps;
    cfg->stages[0].train = LMN_TRAIN_ALL;
    return 0;
  }
  long total = 0;
  for (int i = 0; i < cfg->n_stages; i++) {
    if (total > (long)LMN_BIG - cfg->stages[i].steps)
      return fail_at(c, c->marks[S_STAGES], "the stages add up to more than %.0f steps", LMN_BIG);
    total += cfg->stages[i].steps;
  }
  if (c->seen[S_STEPS] && cfg->steps != total)
    return fail_at(c, c->marks[S_STEPS],
                   "'steps' is %ld but the stages add up to %ld (give one, or make them agree)", cfg->steps,
                   total);
  cfg->steps = total;
  return 0;
}

static int settle(ctx *c, const yaml_node_t *root) {
  lmn_train_config *cfg = c->cfg;
  if (settle_steps(c, root)) return -1;
  if (c->seen[S_VAL] && c->seen[S_VAL_FRACTION])
    return fail_at(c, c->marks[S_VAL_FRACTION], "give 'data.val' or 'data.val_fraction', not both");
  if (cfg->data.val) cfg->data.val_fraction = 0.0;
  if (cfg->schedule.warmup > cfg->steps)
    return fail_at(c, c->marks[S_WARMUP], "'schedule.warmup' (%ld) exceeds the total steps (%ld)",
                   cfg->schedule.warmup, cfg->steps);
  if (cfg->schedule.min_lr > cfg->optimizer.lr)
    return fail_at(c, c->marks[c->seen[S_MIN_LR] ? S_MIN_LR : S_LR],
                   "'schedule.min_lr' (%g) exceeds 'optimizer.lr' (%g)", cfg->schedule.min_lr,
                   cfg->optimizer.lr);
  if (!cfg->checkpoint.dir && !(cfg->checkpoint.dir = resolve(c, "checkpoints"))) return -1;
  return 0;
}

/* ---- loading --------------------------------------------------------------------------------------- */

/* Reads the whole file (at most LMN_CFG_MAX_BYTES) into a NUL-terminated buffer. */
/* err holds "FILE: cause" from a reader of liblmn: make it "FILE: error: cause", as the messages here are. */
static int tag_error(const char *path, lmn_err *err) {
  const char *shown = LMN_SHORT(path);
  size_t k = strlen(shown);
  if (err && strncmp(err->msg, shown, k) == 0 && err->msg[k] == ':' && err->msg[k + 1] == ' ') {
    char cause[sizeof err->msg];
    snprintf(cause, sizeof cause, "%s", err->msg + k + 2);
    lmn_errf(err, "%s: error: %s", shown, cause);
  }
  return -1;
}

static int read_text(const char *path, char **text, size_t *len, lmn_err *err) {
  int fd = lmn_open_regular(path, NULL, err);
  if (fd < 0) return tag_error(path, err);
  FILE *f = fdopen(fd, "rb");
  if (!f) return close(fd), lmn_errf(err, "%s: error: cannot open: %s", LMN_SHORT(path), strerror(errno));
  char *buf = malloc(LMN_CFG_MAX_BYTES + 1);
  if (!buf) return fclose(f), lmn_errf(err, "%s: error: out of memory", LMN_SHORT(path));
  size_t n = fread(buf, 1, LMN_CFG_MAX_BYTES + 1, f);
  int bad = ferror(f), en = errno;
  fclose(f);
  if (bad) return free(buf), lmn_errf(err, "%s: error: cannot read: %s", LMN_SHORT(path), strerror(en));
  if (n > LMN_CFG_MAX_BYTES)
    return free(buf), lmn_errf(err, "%s: error: too large for a training configuration (over %ld bytes)",
                               LMN_SHORT(path), LMN_CFG_MAX_BYTES);
  buf[n] = '\0';
  *text = buf;
  *len = n;
  return 0;
}

static int yaml_fail(const char *path, const yaml_parser_t *p, lmn_err *err) {
  if (p->error == YAML_MEMORY_ERROR) return lmn_errf(err, "%s: error: out of memory", path);
  if (p->error == YAML_READER_ERROR)
    return lmn_errf(err, "%s: error: %s at byte %zu", path, p->problem ? p->problem : "cannot read",
                    p->problem_offset);
  yaml_mark_t m = p->problem_mark;
  if (p->context)
    return lmn_errf(err, "%s:%zu:%zu: error: %s (%s at %zu:%zu)", path, m.line + 1, m.column + 1,
                    p->problem ? p->problem : "syntax error", p->context, p->context_mark.line + 1,
                    p->context_mark.column + 1);
  return lmn_errf(err, "%s:%zu:%zu: error: %s", path, m.line + 1, m.column + 1,
                  p->problem ? p->problem : "syntax error");
}

/* Loads the first document of text into doc and checks that no second one follows. */
static int load_document(const char *path, const char *text, size_t len, yaml_document_t *doc, lmn_err *err) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return lmn_errf(err, "%s: error: out of memory", path);
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  if (!yaml_parser_load(&p, doc)) return yaml_fail(path, &p, err), yaml_parser_delete(&p), -1;
  yaml_document_t next;
  int rc = 0;
  if (!yaml_parser_load(&p, &next))
    rc = yaml_fail(path, &p, err);
  else {
    yaml_node_t *r = yaml_document_get_root_node(&next);
    if (r)
      rc = lmn_errf(err, "%s:%zu:1: error: a second YAML document; a configuration is one document", path,
                    next.start_mark.line + 1);
    yaml_document_delete(&next);
  }
  yaml_parser_delete(&p);
  if (rc) yaml_document_delete(doc);
  return rc;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t n = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
  char *d = malloc(n + 1);
  if (d) memcpy(d, path, n), d[n] = '\0';
  return d;
}

static int parse_document(ctx *c, const char *path) {
  yaml_node_t *root = yaml_document_get_root_node(c->doc);
  if (!root || is_null(root))
    return lmn_errf(
        c->err, "%s: error: empty configuration (expected a mapping with data, batch, seq_len, steps)", path);
  if (parse_map(c, root, &top_t, c->cfg, "")) return -1;
  return settle(c, root);
}

int lmn_config_load(const char *path, lmn_train_config *cfg, lmn_err *err) {
  lmn_config_defaults(cfg);
  if (!path) return lmn_errf(err, "(null): error: no configuration file given");
  char *text = NULL;
  size_t len = 0;
  if (read_text(path, &text, &len, err)) return -1;
  yaml_document_t doc;
  int rc = load_document(path, text, len, &doc, err);
  free(text);
  if (rc) return -1;
  ctx c = {.file = path, .dir = dir_of(path), .doc = &doc, .cfg = cfg, .err = err};
  cfg->path = strdup(path);
  if (!c.dir || !cfg->path)
    rc = lmn_errf(err, "%s: error: out of memory", path);
  else
    rc = parse_document(&c, path);
  yaml_document_delete(&doc);
  free(c.dir);
  if (rc) lmn_config_free(cfg);
  return rc;
}

/* ---- defaults, freeing, printing -------------------------------------------------------------------- */

void lmn_config_defaults(lmn_train_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->data.val_fraction = 0.05;
  cfg->optimizer.lr = 3e-4;
  cfg->optimizer.betas[0] = 0.9;
  cfg->optimizer.betas[1] = 0.95;
  cfg->optimizer.eps = 1e-8;
  cfg->optimizer.weight_decay = 0.0;
  cfg->optimizer.no_decay = LMN_NO_DECAY_DEFAULT;
  cfg->schedule.decay = LMN_DECAY_COSINE;
  cfg->grad_clip = 1.0;
  cfg->accumulate = 1;
  cfg->eval.every = 100;
  cfg->eval.batches = 20;
  cfg->checkpoint.keep = 3;
  cfg->checkpoint.minutes = 15;
  cfg->seed = 1337;
  cfg->log.every = 1;
  cfg->sample.tokens = 64;
  cfg->sample.temperature = 0.8;
  cfg->sample.top_k = 40;
  cfg->sample.top_p = 0.95;
}

void lmn_config_free(lmn_train_config *cfg) {
  if (!cfg) return;
  for (int i = 0; cfg->stages && i < cfg->n_stages; i++) {
    for (int j = 0; cfg->stages[i].names && j < cfg->stages[i].n_names; j++) free(cfg->stages[i].names[j]);
    free(cfg->stages[i].names);
    free(cfg->stages[i].name_pos);
  }
  free(cfg->stages);
  free(cfg->path);
  free(cfg->data.train);
  free(cfg->data.val);
  free(cfg->checkpoint.dir);
  free(cfg->sample.prompt);
  free(cfg->init_from);
  memset(cfg, 0, sizeof *cfg);
}

const char *lmn_no_decay_text(unsigned flags, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i < 3; i++)
    if (flags & (1u << i))
      n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", n ? ", " : "", no_decay_names[i]);
  return buf;
}

const char *lmn_decay_name(lmn_decay decay) {
  return decay >= LMN_DECAY_COSINE && decay <= LMN_DECAY_CONSTANT ? decay_names[decay] : "?";
}

/* A double-quoted YAML string with the escapes it needs. */
static void print_quoted(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf(out, "\\x%02x", *p);
    else
      fputc(*p, out);
  }
  fputc('"', out);
}

static void print_stage(const lmn_stage *st, FILE *out) {
  fprintf(out, "  - {steps: %ld, train: ", st->steps);
  if (st->train != LMN_TRAIN_NAMES)
    fputs(st->train == LMN_TRAIN_EDGES ? "edges" : "all", out);
  else {
    fputc('[', out);
    for (int j = 0; j < st->n_names; j++) {
      if (j) fputs(", ", out);
      print_quoted(out, st->names[j]);
    }
    fputc(']', out);
  }
  fputs("}\n", out);
}

void lmn_config_print(const lmn_train_config *cfg, FILE *out) {
  fputs("data:\n  train: ", out);
  print_quoted(out, cfg->data.train ? cfg->data.train : "");
  if (cfg->data.val)
    fputs("\n  val: ", out), print_quoted(out, cfg->data.val);
  else
    fprintf(out, "\n  val_fraction: %.17g", cfg->data.val_fraction);
  fprintf(out, "\nbatch: %ld\nseq_len: %ld\n", cfg->batch, cfg->seq_len);
  if (cfg->accumulate > 1)
    fprintf(out, "accumulate: %ld\n", cfg->accumulate); /* 1 as before the key existed */
  if (cfg->precision) fprintf(out, "precision: %s\n", precision_names[cfg->precision]); /* likewise f32 */
  if (cfg->memory_budget > 0) fprintf(out, "memory:\n  budget: %.17g\n", cfg->memory_budget); /* bytes */
  fprintf(out, "steps: %ld\nstages:\n", cfg->steps);
  for (int i = 0; i < cfg->n_stages; i++) print_stage(&cfg->stages[i], out);
  fprintf(out, "optimizer:\n  lr: %.17g\n  betas: [%.17g, %.17g]\n  eps: %.17g\n  weight_decay: %.17g\n",
          cfg->optimizer.lr, cfg->optimizer.betas[0], cfg->optimizer.betas[1], cfg->optimizer.eps,
          cfg->optimizer.weight_decay);
  char nd[64];
  fprintf(out, "  no_decay: [%s]\n", lmn_no_decay_text(cfg->optimizer.no_decay, nd, sizeof nd));
  fprintf(out, "schedule:\n  warmup: %ld\n  decay: %s\n  min_lr: %.17g\n", cfg->schedule.warmup,
          lmn_decay_name(cfg->schedule.decay), cfg->schedule.min_lr);
  fprintf(out, "grad_clip: %.17g\neval:\n  every: %ld\n  batches: %ld\ncheckpoint:\n  dir: ", cfg->grad_clip,
          cfg->eval.every, cfg->eval.batches);
  print_quoted(out, cfg->checkpoint.dir ? cfg->checkpoint.dir : "checkpoints");
  fprintf(out,
          "\n  every: %ld\n  keep: %ld\n  minutes: %.17g\nseed: %llu\nthreads: %ld\nlog:\n  every: %ld\n",
          cfg->checkpoint.every, cfg->checkpoint.keep, cfg->checkpoint.minutes, (unsigned long long)cfg->seed,
          cfg->threads, cfg->log.every);
  if (cfg->init_from) fputs("init_from: ", out), print_quoted(out, cfg->init_from), fputc('\n', out);
  fprintf(out, "sample:\n  every: %ld\n", cfg->sample.every);
  if (cfg->sample.prompt) fputs("  prompt: ", out), print_quoted(out, cfg->sample.prompt), fputc('\n', out);
  fprintf(out, "  tokens: %ld\n  temperature: %.17g\n  top_k: %ld\n  top_p: %.17g\n", cfg->sample.tokens,
          cfg->sample.temperature, cfg->sample.top_k, cfg->sample.top_p);
}

char *lmn_config_text(const lmn_train_config *cfg) {
  char *text = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&text, &n);
  if (!f) return NULL;
  lmn_config_print(cfg, f);
  if (fclose(f) != 0) {
    free(text);
    return NULL;
  }
  return text;
}

/* ---- comparing two runs' settings ------------------------------------------------------------------ */

/* The keys (and sections, ending in '.') that do not change what a run computes: how often it evaluates,
 * logs and saves, where it saves, its thread count (results do not depend on it) and its memory budget
 * (recomputed activations are bit-identical). */
static const char *const harmless_keys[] = {"eval.",   "checkpoint.", "threads", "log.",
                                            "sample.", "init_from",   "memory."};

static int harmless(const char *key) {
  for (size_t i = 0; i < sizeof harmless_keys / sizeof *harmless_keys; i++) {
    size_t n = strlen(harmless_keys[i]);
    if (harmless_keys[i][n - 1] == '.' ? strncmp(key, harmless_keys[i], n) == 0
                                       : strcmp(key, harmless_keys[i]) == 0)
      return 1;
  }
  return 0;
}

/* One setting of a printed configuration: its key ("optimizer.lr"; the stages list is one setting, "stages")
 * and its value text (stages: every line of the list, joined by ';'). */
typedef struct setting {
  char key[64];
  char value[512];
} setting;

/* The next setting of text from *at (lmn_config_print's layout: sections at column 0 ending in ':', their
 * keys indented by two spaces); 0 at the end. */
static int next_setting(const char **at, char *section, size_t cap, setting *s) {
  while (**at) {
    const char *line = *at, *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    *at = line + len + (end != NULL);
    const char *colon = memchr(line, ':', len);
    if (!colon) continue;
    int nested = line[0] == ' ';
    const char *key = line + (nested ? 2 : 0);
    size_t klen = (size_t)(colon - key), vlen = len - (size_t)(colon + 1 - line);
    const char *value = colon + 1;
    if (!nested && vlen == 0) { /* a section: "optimizer:" (or the stages list) */
      snprintf(section, cap, "%.*s", (int)klen, key);
      if (strcmp(section, "stages") != 0) continue;
      snprintf(s->key, sizeof s->key, "stages");
      s->value[0] = '\0';
      while (**at == ' ') { /* every line of the list */
        const char *e = strchr(*at, '\n'), *item = *at;
        size_t n = e ? (size_t)(e - *at) : strlen(*at), used = strlen(s->value);
        *at += n + (e != NULL);
        while (n && (*item == ' ' || *item == '-')) item++, n--;
        snprintf(s->value + used, sizeof s->value - used, "%s%.*s", used ? "; " : "", (int)n, item);
      }
      return 1;
    }
    if (nested && *section)
      snprintf(s->key, sizeof s->key, "%s.%.*s", section, (int)klen, key);
    else
      snprintf(s->key, sizeof s->key, "%.*s", (int)klen, key);
    if (!nested) section[0] = '\0';
    while (vlen && *value == ' ') value++, vlen--;
    snprintf(s->value, sizeof s->value, "%.*s", (int)vlen, value);
    return 1;
  }
  return 0;
}

/* The value of key in text into s (an empty value when text lacks the key). */
static void find_setting(const char *text, const char *key, setting *s) {
  char section[64] = "";
  while (next_setting(&text, section, sizeof section, s))
    if (strcmp(s->key, key) == 0) return;
  snprintf(s->key, sizeof s->key, "%s", key);
  s->value[0] = '\0';
}

int lmn_config_compare(const char *was, const char *now, lmn_cfg_change_fn on_change, void *ctx) {
  int breaking = 0;
  char section[64] = "";
  setting a, b;
  const char *at = was;
  while (next_setting(&at, section, sizeof section, &a)) { /* every key of the old text ... */
    find_setting(now, a.key, &b);
    if (strcmp(a.value, b.value) == 0) continue;
    int harm = !harmless(a.key);
    breaking += harm;
    if (on_change) on_change(ctx, a.key, a.value, b.value, harm);
  }
  at = now;
  section[0] = '\0';
  while (next_setting(&at, section, sizeof section, &b)) { /* ... and those only the new one has */
    find_setting(was, b.key, &a);
    if (a.value[0] || !b.value[0]) continue;
    int harm = !harmless(b.key);
    breaking += harm;
    if (on_change) on_change(ctx, b.key, "(absent)", b.value, harm);
  }
  return breaking;
}

/* ---- schedule -------------------------------------------------------------------------------------- */

double lmn_lr_at(const lmn_train_config *cfg, long step) {
  double lr = cfg->optimizer.lr, lo = cfg->schedule.min_lr;
  long total = cfg->steps, warm = cfg->schedule.warmup;
  if (step < 0) step = 0;
  if (step > total) step = total;
  if (step < warm) return lr * (double)step / (double)warm;
  if (cfg->schedule.decay == LMN_DECAY_CONSTANT) return lr;
  if (total <= warm) return step >= total ? lo : lr;
  double p = (double)(step - warm) / (double)(total - warm);
  if (cfg->schedule.decay == LMN_DECAY_LINEAR) return lr + (lo - lr) * p;
  return lo + (lr - lo) * 0.5 * (1.0 + cos(3.14159265358979323846 * p));
}

int lmn_config_stage_at(const lmn_train_config *cfg, long step, long *first) {
  long start = 0;
  int i = 0;
  for (; i + 1 < cfg->n_stages && step >= start + cfg->stages[i].steps; i++) start += cfg->stages[i].steps;
  if (first) *first = start;
  return i;
}
