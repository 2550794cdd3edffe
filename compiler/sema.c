/* sema.c: semantic analysis, part 1: the network statement, models (declared hyper-parameters or read
 * from the file's header, within the limits of sema_limits.c, and the `weights` and `tokenizer` options),
 * vertices and the `layers` sugar. Names live in sema_names.c; edges, losses and graph checks in
 * sema_edges.c and sema_graph.c. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dequant.h"
#include "modelfile.h"
#include "sema_int.h"
#include "tokenizer_bpe.h"

/* ---- models ---------------------------------------------------------------------------------- */

typedef struct SettingSpec {
  const char *key;
  int kind; /* 0 positive integer, 1 positive number, 2 flag */
} SettingSpec;

static const SettingSpec setting_specs[] = {
    {"dim", 0},    {"layers", 0},   {"heads", 0},       {"kv_heads", 0},   {"ffn", 0},
    {"vocab", 0},  {"ctx", 0},      {"eps", 1},         {"rope_theta", 1}, {"tied", 2},
    {"untied", 2}, {"qkv_bias", 2}, {"no_qkv_bias", 2},
};
#define N_SETTINGS ((int)(sizeof setting_specs / sizeof *setting_specs))

/* The formats of `weights FORMAT` and the ggml types they keep frozen matrices in. */
static const struct {
  const char *name;
  int type;
} weights_formats[] = {{"file", WEIGHTS_FILE},  {"f32", LMN_GGML_F32},   {"f16", LMN_GGML_F16},
                       {"bf16", LMN_GGML_BF16}, {"q8_0", LMN_GGML_Q8_0}, {"q4_0", LMN_GGML_Q4_0},
                       {"q4_1", LMN_GGML_Q4_1}};
#define N_WEIGHTS_FORMATS ((int)(sizeof weights_formats / sizeof *weights_formats))

static int weights_format_index(const char *name) {
  for (int i = 0; i < N_WEIGHTS_FORMATS; i++)
    if (!strcmp(name, weights_formats[i].name)) return i;
  return -1;
}

const char *weights_format_name(int weights) {
  for (int i = 0; i < N_WEIGHTS_FORMATS; i++)
    if (weights_formats[i].type == weights) return weights_formats[i].name;
  return "?";
}

static long *hp_field(lmn_hparams *hp, const char *key) {
  if (!strcmp(key, "dim")) return &hp->dim;
  if (!strcmp(key, "layers")) return &hp->layers;
  if (!strcmp(key, "heads")) return &hp->heads;
  if (!strcmp(key, "kv_heads")) return &hp->kv_heads;
  if (!strcmp(key, "ffn")) return &hp->ffn;
  if (!strcmp(key, "vocab")) return &hp->vocab;
  if (!strcmp(key, "ctx")) return &hp->ctx;
  return NULL;
}

/* Applies one `key value` setting of a model block; returns 0 when it is valid. */
static int apply_setting(Sema *s, lmn_hparams *hp, const Setting *set) {
  const SettingSpec *spec = NULL;
  for (int i = 0; i < N_SETTINGS; i++)
    if (!strcmp(set->key, setting_specs[i].key)) spec = &setting_specs[i];
  if (!spec) {
    const char *keys[N_SETTINGS];
    for (int i = 0; i < N_SETTINGS; i++) keys[i] = setting_specs[i].key;
    unknown_word(s, set->at, "model setting", set->key, keys, N_SETTINGS);
    diag_hint(s->diag,
              "settings are: dim layers heads kv_heads ffn vocab ctx eps rope_theta tied untied qkv_bias");
    return -1;
  }
  if (spec->kind == 2) {
    if (set->has_value) {
      diag_error(s->diag, set->value.at, "'%s' is a flag and takes no value", set->key);
      return -1;
    }
    if (!strcmp(set->key, "tied")) hp->tied = 1;
    if (!strcmp(set->key, "untied")) hp->tied = 0;
    if (!strcmp(set->key, "qkv_bias")) hp->qkv_bias = 1;
    if (!strcmp(set->key, "no_qkv_bias")) hp->qkv_bias = 0;
    return 0;
  }
  if (!set->has_value || set->value.kind == VAL_STRING) {
    diag_error(s->diag, set->has_value ? set->value.at : set->at, "'%s' needs a %s value", set->key,
               spec->kind == 0 ? "positive integer" : "positive number");
    return -1;
  }
  if (spec->kind == 0) {
    if (set->value.kind != VAL_INT || set->value.i <= 0) {
      diag_error(s->diag, set->value.at, "'%s' must be a positive integer", set->key);
      return -1;
    }
    *hp_field(hp, set->key) = set->value.i;
  } else {
    if (!(set->value.f > 0)) {
      diag_error(s->diag, set->value.at, "'%s' must be a positive number", set->key);
      return -1;
    }
    if (!strcmp(set->key, "eps")) hp->eps = set->value.f;
    else hp->rope_theta = set->value.f;
  }
  return 0;
}

static const Setting *find_setting(const Stmt *st, const char *key) {
  for (int i = 0; i < st->settings.n; i++) {
    const Setting *set = st->settings.items[i];
    if (!strcmp(set->key, key)) return set;
  }
  return NULL;
}

/* Checks the hyper-parameters of model m against their limits, at the settings of its statement st (or at
 * the model, when they come from its file), then its parameter count. Returns 0 when all are within. */
static int model_limits(Sema *s, const Stmt *st, Model *m) {
  static const struct {
    const char *key;
    LimitId id;
  } fields[] = {{"layers", LIM_LAYERS}, {"dim", LIM_DIM}, {"heads", LIM_HEADS}, {"kv_heads", LIM_KV_HEADS},
                {"ffn", LIM_FFN},       {"vocab", LIM_VOCAB}, {"ctx", LIM_CTX}};
  int bad = 0;
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
    const Setting *set = st ? find_setting(st, fields[i].key) : NULL;
    long v = *hp_field(&m->hp, fields[i].key);
    if (set) bad |= over_limit(s, fields[i].id, v, set->value.at, "model '%s' declares '%s %ld'", m->name,
                               fields[i].key, v);
    else if (!st) /* read from the file (a declared model without kv_heads has kv_heads = heads) */
      bad |= over_limit(s, fields[i].id, v, m->at, "model '%s' has '%s %ld' in its file", m->name,
                        fields[i].key, v);
  }
  if (bad) return -1;
  long long n = model_params(&m->hp);
  return over_limit(s, LIM_PARAMS, n, m->at, "model '%s' has %lld parameters", m->name, n) ? -1 : 0;
}

/* Checks that declared or read hyper-parameters make a runnable model; returns -1 when they are past a
 * limit (the model is then unusable). */
static int check_hparams(Sema *s, const Stmt *st, Model *m) {
  const lmn_hparams *hp = &m->hp;
  Loc at = m->at;
  if (model_limits(s, st, m) != 0) return -1;
  const Setting *hs = st ? find_setting(st, "heads") : NULL, *ks = st ? find_setting(st, "kv_heads") : NULL;
  if (hp->dim % hp->heads != 0) {
    diag_error(s->diag, hs ? hs->value.at : at, "%ld heads do not divide the width %ld of model '%s'",
               hp->heads, hp->dim, m->name);
    return 0;
  }
  if (hp->heads % hp->kv_heads != 0) {
    diag_error(s->diag, ks ? ks->value.at : at, "%ld kv_heads do not divide the %ld heads of model '%s'",
               hp->kv_heads, hp->heads, m->name);
    return 0;
  }
  if (hp->arch == LMN_ARCH_GPT2 && hp->kv_heads != hp->heads)
    diag_error(s->diag, ks ? ks->value.at : at, "gpt2 models have kv_heads equal to heads (%ld)", hp->heads);
  if (hp->arch != LMN_ARCH_GPT2 && (hp->dim / hp->heads) % 2 != 0)
    diag_error(s->diag, hs ? hs->value.at : at,
               "head width %ld of model '%s' is odd; RoPE needs an even head width", hp->dim / hp->heads,
               m->name);
  return 0;
}

/* `weights FORMAT` inside the block: one error, and its format is skipped. Returns the settings it took. */
static int weights_in_block(Sema *s, const Stmt *st, int i) {
  const Setting *set = st->settings.items[i],
                *next = i + 1 < st->settings.n ? st->settings.items[i + 1] : NULL;
  diag_error(s->diag, set->at, "'weights' is not a setting of the architecture block");
  diag_hint(s->diag,
            "'weights FORMAT' follows the block of a model read from a file: gguf(\"FILE\") llama { ... } "
            "weights q8_0");
  return next && !next->has_value && weights_format_index(next->key) >= 0 ? 2 : 1;
}

/* Applies the settings of a model block; a known setting given twice is an error. Returns -1 after errors. */
static int model_settings(Sema *s, const Stmt *st, Model *m) {
  const Setting *first[N_SETTINGS] = {0};
  int bad = 0;
  for (int i = 0; i < st->settings.n && !diag_stopped(s->diag); i++) {
    const Setting *set = st->settings.items[i];
    if (!strcmp(set->key, "weights")) {
      i += weights_in_block(s, st, i) - 1;
      bad = 1;
      continue;
    }
    for (int k = 0; k < N_SETTINGS; k++) {
      if (strcmp(set->key, setting_specs[k].key) != 0) continue;
      if (first[k]) {
        diag_error(s->diag, set->at, "'%s' is set twice", set->key);
        diag_note(s->diag, first[k]->at, "first set here");
        bad = 1;
      } else {
        first[k] = set;
      }
    }
    if (apply_setting(s, &m->hp, set) != 0) bad = 1;
  }
  return bad ? -1 : 0;
}

static int model_block(Sema *s, const Stmt *st, Model *m) {
  lmn_arch arch = lmn_arch_from_name(st->arch.name);
  if (arch == LMN_ARCH_NONE) {
    const char *archs[] = {"llama", "qwen2", "gpt2"};
    unknown_word(s, st->arch.at, "architecture", st->arch.name, archs, 3);
    diag_hint(s->diag, "architectures are llama, qwen2 and gpt2");
    return -1;
  }
  lmn_hparams_defaults(&m->hp, arch);
  if (model_settings(s, st, m) != 0) return -1;
  static const char *const required[] = {"dim", "layers", "heads", "ffn", "vocab", "ctx"};
  for (int i = 0; i < 6; i++)
    if (!find_setting(st, required[i])) {
      diag_error(s->diag, st->arch.at, "model '%s' does not declare '%s'", m->name, required[i]);
      diag_hint(s->diag,
                "a declared model needs dim, layers, heads, ffn, vocab and ctx (kv_heads defaults to heads)");
      return -1;
    }
  if (!find_setting(st, "kv_heads")) m->hp.kv_heads = m->hp.heads;
  m->declared = 1;
  return check_hparams(s, st, m);
}

/* Resolves a relative path against the .lmn file's directory. */
static const char *resolve_path(Sema *s, const char *path) {
  if (path[0] == '/' || !s->dir || !s->dir[0] || !strcmp(s->dir, ".")) return path;
  size_t n = strlen(s->dir) + strlen(path) + 2;
  char *p = arena_alloc(s->arena, n);
  snprintf(p, n, "%s/%s", s->dir, path);
  return p;
}

static int model_source(Sema *s, const Stmt *st, Model *m) {
  const Call *src = st->source;
  const char *srcs[] = {"gguf", "safetensors"};
  if (!strcmp(src->name, "gguf")) m->source = SRC_GGUF;
  else if (!strcmp(src->name, "safetensors")) m->source = SRC_SAFETENSORS;
  else {
    unknown_word(s, src->at, "model source", src->name, srcs, 2);
    diag_hint(s->diag,
              "a model is gguf(\"FILE\"), safetensors(\"DIR\") or an architecture block like llama { ... }");
    return -1;
  }
  const Arg *a = src->args.n ? src->args.items[0] : NULL;
  if (src->args.n != 1 || a->kind != ARG_VALUE || a->a.kind != VAL_STRING) {
    diag_error(s->diag, a ? a->at : src->at,
               "%s() takes one argument, the path of the model file as a string", src->name);
    return -1;
  }
  if (!a->a.s[0]) {
    diag_error(s->diag, a->at, "empty model path");
    return -1;
  }
  m->path = a->a.s;
  m->file = resolve_path(s, a->a.s);
  if (st->has_block) return model_block(s, st, m);
  lmn_err err;
  if (modelfile_hparams(m->source, m->file, &m->hp, &err) != 0) {
    diag_error(s->diag, a->at, "cannot read the hyper-parameters of model '%s': %s", m->name, err.msg);
    if (access(m->file, F_OK) != 0 && m->path[0] != '/')
      diag_hint(s->diag, "a relative path is relative to the directory of the .lmn file");
    diag_hint(s->diag,
              "or declare them (the file is then checked when the network runs): %s(\"%s\") llama { dim D  "
              "layers L  heads H  ffn F  vocab V  ctx C }",
              src->name, m->path);
    return -1;
  }
  return check_hparams(s, NULL, m);
}

/* ---- model options: `weights FORMAT` ------------------------------------------------------------ */

/* An unknown format, with a did-you-mean: the format it spells in another case ("Q8_0"), else the closest by
 * edit distance ("q8_1" -> q8_0), else the formats that start with it ("q8" -> q8_0, "q4" -> q4_0, q4_1). */
static void unknown_format(Sema *s, const Value *v) {
  const char *names[N_WEIGHTS_FORMATS], *pre[N_WEIGHTS_FORMATS], *best = NULL;
  char lower[64];
  int n_pre = 0;
  size_t len = strlen(v->s);
  for (size_t i = 0; i <= len && i < sizeof lower; i++) lower[i] = (char)tolower((unsigned char)v->s[i]);
  lower[sizeof lower - 1] = 0;
  for (int i = 0; i < N_WEIGHTS_FORMATS; i++) {
    names[i] = weights_formats[i].name;
    if (!strcmp(names[i], lower)) best = names[i];
    if (!strncmp(names[i], lower, len)) pre[n_pre++] = names[i];
  }
  if (!best) best = closest_name(lower, names, N_WEIGHTS_FORMATS);
  if (best)
    diag_error(s->diag, v->at, "unknown weights format '%s'; did you mean '%s'?", v->s, best);
  else if (n_pre == 1 || n_pre == 2)
    diag_error(s->diag, v->at, "unknown weights format '%s'; did you mean '%s'%s%s%s?", v->s, pre[0],
               n_pre == 2 ? " or '" : "", n_pre == 2 ? pre[1] : "", n_pre == 2 ? "'" : "");
  else
    diag_error(s->diag, v->at, "unknown weights format '%s'", v->s);
  diag_hint(s->diag,
            "formats are file (as stored in the file, the default), f32, f16, bf16, q8_0, q4_0 and q4_1");
}

/* `weights FORMAT` from its key to its format (the key alone when they are on different lines). */
static Loc option_span(const Setting *o) {
  Loc at = o->at;
  if (o->value.at.line == at.line) at.len = o->value.at.col + o->value.at.len - at.col;
  return at;
}

/* The first `weights FORMAT` of a model: the format, for a model with a file. */
static void weights_option(Sema *s, const Stmt *st, Model *m, const Setting *o) {
  int k = weights_format_index(o->value.s);
  if (!st->source) {
    diag_error(s->diag, option_span(o), "model '%s' has no file: its weights are trained from scratch in f32",
               m->name);
    diag_hint(s->diag,
              "'weights' chooses how the frozen matrices of a model read from gguf(\"FILE\") or "
              "safetensors(\"DIR\") are kept in memory; remove it");
  } else if (k < 0) {
    unknown_format(s, &o->value);
  } else {
    m->weights = weights_formats[k].type;
    m->weights_at = option_span(o);
  }
}

/* The model's `vocab` setting (or, without one, the model), where a vocabulary problem is shown. */
static Loc vocab_at(const Stmt *st, const Model *m) {
  const Setting *set = find_setting(st, "vocab");
  return set && set->has_value ? set->value.at : m->at;
}

/* `tokenizer "PATH"`: a from-scratch model borrows the tokenizer of a GGUF file or a Hugging Face directory
 * (DIR/tokenizer.json), read now: it must load and have at most the model's vocabulary. */
static void tokenizer_option(Sema *s, const Stmt *st, Model *m, const Setting *o) {
  if (st->source) {
    diag_error(s->diag, option_span(o), "model '%s' is read from a file and uses that file's tokenizer",
               m->name);
    diag_hint(s->diag, "'tokenizer \"FILE\"' lends a tokenizer to a model trained from scratch; remove it");
    return;
  }
  if (o->value.kind == VAL_STRING && !o->value.s[0]) {
    diag_error(s->diag, o->value.at, "empty tokenizer path");
    return;
  }
  if (o->value.kind != VAL_STRING) {
    diag_error(s->diag, o->value.at, "'tokenizer' takes the path of a GGUF file or a Hugging Face directory");
    diag_hint(s->diag, "write it in quotes: tokenizer \"../models/SmolLM2-135M-Instruct.Q4_1.gguf\"");
    return;
  }
  const char *file = resolve_path(s, o->value.s);
  lmn_tokenizer tok;
  lmn_err err;
  if (lmn_tokenizer_load(&tok, file, &err) != 0) {
    diag_error(s->diag, o->value.at, "cannot read the tokenizer that model '%s' borrows: %s", m->name,
               err.msg);
    if (access(file, F_OK) != 0 && o->value.s[0] != '/')
      diag_hint(s->diag, "a relative path is relative to the directory of the .lmn file");
    else
      diag_hint(s->diag,
                "a tokenizer comes from a GGUF file or a Hugging Face directory with a tokenizer.json");
    return;
  }
  struct stat sb;
  m->tok_format = stat(file, &sb) == 0 && S_ISDIR(sb.st_mode) ? 2 : 1;
  m->tok_vocab = tok.vocab_size;
  lmn_tokenizer_free(&tok);
  if (m->hp.arch != LMN_ARCH_NONE && m->tok_vocab > m->hp.vocab) {
    diag_error(s->diag, vocab_at(st, m),
               "model '%s' has a vocabulary of %ld but the tokenizer it borrows has %ld tokens", m->name,
               m->hp.vocab, m->tok_vocab);
    diag_note(s->diag, option_span(o), "the tokenizer is borrowed here");
    diag_hint(s->diag, "make it 'vocab %ld' or more (ids beyond the tokenizer's are never produced)",
              m->tok_vocab);
    return;
  }
  m->tok_path = o->value.s;
  m->tok_file = file;
  m->tok_at = option_span(o);
}

/* The options after a model's source or block, each at most once: `weights FORMAT` (a model with a file)
 * and `tokenizer "PATH"` (a model without one). Errors leave the model usable: no cascade. */
static void model_options(Sema *s, const Stmt *st, Model *m) {
  static const char *const keys[] = {"weights", "tokenizer"};
  const Setting *seen[2] = {NULL, NULL};
  for (int i = 0; i < st->model_opts.n; i++) {
    const Setting *o = st->model_opts.items[i];
    int k = !strcmp(o->key, keys[0]) ? 0 : !strcmp(o->key, keys[1]) ? 1 : -1;
    if (k < 0) {
      unknown_word(s, o->at, "model option", o->key, keys, 2);
      diag_hint(s->diag,
                "model options are 'weights FORMAT' (a model read from a file) and 'tokenizer \"FILE\"' "
                "(a model trained from scratch)");
    } else if (seen[k]) {
      diag_error(s->diag, option_span(o), "'%s' is given twice for model '%s'", keys[k], m->name);
      diag_note(s->diag, option_span(seen[k]), "first given here");
    } else if (k == 0 && o->value.kind == VAL_STRING) {
      seen[k] = o;
      diag_error(s->diag, o->value.at, "'weights' takes a format name, not a string");
      diag_hint(s->diag, "formats are file, f32, f16, bf16, q8_0, q4_0 and q4_1: weights q8_0");
    } else {
      seen[k] = o;
      if (k == 0)
        weights_option(s, st, m, o);
      else
        tokenizer_option(s, st, m, o);
    }
  }
}

static void sema_model(Sema *s, const Stmt *st) {
  Net *net = s->net;
  GROW(s, net->models, net->n_models, s->cap_models);
  Model *m = &net->models[net->n_models];
  memset(m, 0, sizeof *m);
  m->name = st->name.name;
  m->at = st->name.at;
  m->weights = WEIGHTS_FILE;
  int rc = st->source ? model_source(s, st, m) : model_block(s, st, m);
  if (!diag_stopped(s->diag)) model_options(s, st, m);
  if (!sym_define(s, m->name, SYM_MODEL, net->n_models, m->at)) return;
  if (rc != 0) m->hp.arch = LMN_ARCH_NONE; /* keep the name defined: no cascade of "unknown model" */
  net->n_models++;
}

/* ---- vertices -------------------------------------------------------------------------------- */

typedef struct VertexOpts {
  int shared, trainable;
  int frozen_layers; /* `last N`: the first layers - N stay frozen */
} VertexOpts;

/* `last N` (N of the model's layers train, the ones before stay frozen): checks N; returns 0 or -1. */
static int last_layers(Sema *s, const NameRef *o, const Model *m, VertexOpts *out) {
  if (!o->arg || o->arg->kind != VAL_INT || o->arg->i < 1 || o->arg->i > m->hp.layers) {
    Loc at = o->arg ? o->arg->at : o->at;
    diag_error(s->diag, at, "'last' takes a number of layers from 1 to %ld (model '%s' has %ld)",
               m->hp.layers, m->name, m->hp.layers);
    diag_hint(s->diag,
              "'last N' trains a vertex's last N layers and its final norm; the layers before stay frozen");
    return -1;
  }
  out->trainable = 1;
  out->frozen_layers = (int)(m->hp.layers - o->arg->i);
  return 0;
}

/* Reads `shared|unshared frozen|trainable|last N`; defaults: shared, frozen for a model from a file. */
static int vertex_options(Sema *s, const PtrList *opts, const Model *m, VertexOpts *out) {
  out->shared = 1;
  out->trainable = m->source == SRC_NONE;
  out->frozen_layers = 0;
  const NameRef *seen_share = NULL, *seen_train = NULL;
  static const char *const names[] = {"shared", "unshared", "frozen", "trainable", "last"};
  for (int i = 0; i < opts->n; i++) {
    const NameRef *o = opts->items[i];
    int k = -1;
    for (int j = 0; j < 5; j++)
      if (!strcmp(o->name, names[j])) k = j;
    if (k < 0) {
      unknown_word(s, o->at, "vertex option", o->name, names, 5);
      diag_hint(s->diag, "vertex options are shared or unshared, and frozen, trainable or last N");
      return -1;
    }
    if (o->arg && k != 4) {
      diag_error(s->diag, o->arg->at, "vertex option '%s' takes no number", o->name);
      return -1;
    }
    const NameRef **seen = k < 2 ? &seen_share : &seen_train;
    if (*seen) {
      diag_error(s->diag, o->at, "'%s' conflicts with '%s'", o->name, (*seen)->name);
      diag_note(s->diag, (*seen)->at, "'%s' given here", (*seen)->name);
      return -1;
    }
    *seen = o;
    if (k < 2) out->shared = k == 0;
    else if (k == 4 && last_layers(s, o, m, out) != 0)
      return -1;
    else if (k < 4)
      out->trainable = k == 3;
  }
  return 0;
}

static int lookup_model(Sema *s, const NameRef *ref) {
  Sym *sym = sym_find(s, ref->name);
  if (!sym || sym->kind != SYM_MODEL) {
    if (sym) wrong_kind(s, sym, ref->at, "a model");
    else unknown_name(s, "model", ref->name, ref->at, KIND(SYM_MODEL), NULL, 0);
    return -1;
  }
  sym->used = 1;
  return s->net->models[sym->index].hp.arch == LMN_ARCH_NONE ? -2 : sym->index;
}

static int add_vertex(Sema *s, const char *name, Loc at, int model, VertexOpts o, int layer) {
  Net *net = s->net;
  if (net->n_vertices >= sema_limits[LIM_VERTICES].max) {
    if (!s->vertices_full)
      over_limit(s, LIM_VERTICES, net->n_vertices + 1LL, at, "too many vertices: '%s' is vertex %d", name,
                 net->n_vertices + 1);
    s->vertices_full = 1;
    sym_define(s, name, SYM_VERTEX, -1, at); /* known name, unusable: no cascades */
    return -1;
  }
  if (!sym_define(s, name, SYM_VERTEX, net->n_vertices, at)) return -1;
  GROW(s, net->vertices, net->n_vertices, s->cap_vertices);
  Vertex *v = &net->vertices[net->n_vertices++];
  *v = (Vertex){.name = name,
                .at = at,
                .model = model,
                .shared = o.shared,
                .trainable = o.trainable,
                .frozen_layers = o.frozen_layers,
                .layer = layer};
  count_vertex(s, v);
  return net->n_vertices - 1;
}

static void sema_vertex(Sema *s, const Stmt *st) {
  int model = lookup_model(s, &st->model);
  VertexOpts o = {1, 0, 0};
  if (model >= 0 && vertex_options(s, &st->options, &s->net->models[model], &o) != 0) model = -1;
  for (int i = 0; i < st->names.n; i++) {
    const NameRef *n = st->names.items[i];
    if (model >= 0) add_vertex(s, n->name, n->at, model, o, -1);
    else sym_define(s, n->name, SYM_VERTEX, -1, n->at); /* known name, unusable: no cascades */
  }
}

/* Reads the layer sizes of a `layers` statement into *count (arena); returns the number of layers or -1. */
static int layer_sizes(Sema *s, const Stmt *st, int **count) {
  const char *name = st->name.name;
  int n = st->sizes.n;
  if (n > sema_limits[LIM_LAYER_LIST].max) {
    const Value *v = st->sizes.items[sema_limits[LIM_LAYER_LIST].max];
    over_limit(s, LIM_LAYER_LIST, n, v->at, "layers '%s' lists %d layers", name, n);
    return -1;
  }
  long long vertices = 0, edges = 0, size_max = sema_limits[LIM_LAYER_SIZE].max;
  *count = arena_alloc(s->arena, sizeof(int) * (size_t)n);
  for (int l = 0; l < n; l++) {
    const Value *v = st->sizes.items[l];
    if (v->kind != VAL_INT || v->i < 1) {
      diag_error(s->diag, v->at, "a layer holds 1 to %lld vertices", size_max);
      return -1;
    }
    if (over_limit(s, LIM_LAYER_SIZE, v->i, v->at, "layer %d of '%s' holds %ld vertices", l, name, v->i))
      return -1;
    (*count)[l] = (int)v->i;
    vertices += v->i;
    if (l > 0) edges += (long long)(*count)[l - 1] * v->i;
  }
  vertices += s->net->n_vertices, edges += s->net->n_edges;
  if (over_limit(s, LIM_VERTICES, vertices, st->at, "too many vertices: layers '%s' brings the network to %lld",
                 name, vertices) ||
      over_limit(s, LIM_EDGES, edges, st->at, "too many edges: layers '%s' brings the network to %lld", name,
                 edges))
    return -1;
  return n;
}

/* Defines the group; count == NULL marks a group whose statement had errors. */
static void define_group(Sema *s, const Stmt *st, const int *count, int n) {
  if (!sym_define(s, st->name.name, SYM_LAYERS, s->n_groups, st->name.at)) return;
  int *copy = NULL;
  if (count) {
    copy = arena_alloc(s->arena, sizeof(int) * (size_t)n);
    memcpy(copy, count, sizeof(int) * (size_t)n);
  }
  GROW(s, s->groups, s->n_groups, s->cap_groups);
  s->groups[s->n_groups++] = (LayerGroup){st->name.name, n, copy};
}

static void sema_layers(Sema *s, const Stmt *st) {
  int model = lookup_model(s, &st->model);
  VertexOpts o = {1, 0, 0};
  int *count = NULL;
  int n = layer_sizes(s, st, &count);
  if (model >= 0 && n >= 0 && vertex_options(s, &st->options, &s->net->models[model], &o) != 0) model = -1;
  int ok = model >= 0 && n >= 0;
  define_group(s, st, ok ? count : NULL, n);
  if (!ok) return;
  int *first = arena_alloc(s->arena, sizeof(int) * (size_t)n);
  for (int l = 0; l < n; l++) {
    first[l] = s->net->n_vertices;
    for (int i = 0; i < count[l]; i++) {
      char name[96];
      snprintf(name, sizeof name, "%s%d_%d", st->name.name, l, i);
      if (add_vertex(s, arena_strndup(s->arena, name, strlen(name)), st->name.at, model, o, l) < 0) return;
    }
  }
  for (int l = 0; l + 1 < n; l++)
    for (int i = 0; i < count[l]; i++)
      for (int j = 0; j < count[l + 1]; j++)
        if (sema_add_layer_edge(s, first[l] + i, first[l + 1] + j, st->edge, st->at) != 0) return;
}

/* ---- driver ---------------------------------------------------------------------------------- */

static int is_c_keyword(const char *name) {
  static const char *const kw[] = {
      "auto",   "break",    "case",     "char",     "const", "continue", "default", "do",     "double",
      "else",   "enum",     "extern",   "float",    "for",   "goto",     "if",      "inline", "int",
      "long",   "register", "restrict", "return",   "short", "signed",   "sizeof",  "static", "struct",
      "switch", "typedef",  "union",    "unsigned", "void",  "volatile", "while",   "main"};
  for (size_t i = 0; i < sizeof kw / sizeof *kw; i++)
    if (!strcmp(name, kw[i])) return 1;
  return 0;
}

static void sema_network(Sema *s, const Stmt *st) {
  if (s->seen_network) {
    diag_error(s->diag, st->at, "a file describes one network; 'network' appears twice");
    diag_note(s->diag, s->net->name_at, "the network was named here");
    return;
  }
  s->seen_network = 1;
  s->net->name = st->name.name;
  s->net->name_at = st->name.at;
  if (is_c_keyword(st->name.name)) {
    diag_error(s->diag, st->name.at, "network name '%s' is a C keyword; it cannot name the generated C code",
               st->name.name);
    diag_hint(s->diag, "the name prefixes every C name lmnc emits; choose another, e.g. '%s_net'",
              st->name.name);
  } else if (strlen(st->name.name) > 40) {
    diag_error(s->diag, st->name.at, "network name '%s' is %zu characters long; the limit is 40",
               st->name.name, strlen(st->name.name));
  }
}

/* The first statement is not `network NAME`: say where it is, or that it is missing. */
static void network_missing(Sema *s, const Stmt *first) {
  for (int i = 1; i < s->prog->stmts.n; i++) {
    const Stmt *st = s->prog->stmts.items[i];
    if (st->kind != ST_NETWORK) continue;
    diag_error(s->diag, first->at, "'network %s' must come before the first statement", st->name.name);
    diag_note(s->diag, st->at, "the network is named here");
    return;
  }
  diag_error(s->diag, first->at, "a .lmn file starts with 'network NAME'");
  diag_hint(s->diag, "add a first line like 'network pair'; the name prefixes the generated C code");
}

static void sema_aggregate(Sema *s, const Stmt *st) {
  if (s->seen_aggregate) {
    diag_error(s->diag, st->at, "'aggregate' is given twice");
    diag_note(s->diag, s->aggregate_at, "first given here");
    return;
  }
  s->seen_aggregate = 1;
  s->aggregate_at = st->at;
  const char *modes[] = {"mean", "sum"};
  if (!strcmp(st->name.name, "mean")) s->net->aggregate = AGG_MEAN;
  else if (!strcmp(st->name.name, "sum")) s->net->aggregate = AGG_SUM;
  else {
    unknown_word(s, st->name.at, "aggregation", st->name.name, modes, 2);
    diag_hint(s->diag, "aggregate mean or aggregate sum");
  }
}

int sema_check(const Program *prog, Net *net, Arena *arena, Diag *diag, const char *dir) {
  memset(net, 0, sizeof *net);
  net->arena = arena;
  net->embed_model = -1;
  net->aggregate = AGG_MEAN;
  Sema s = {.net = net, .arena = arena, .diag = diag, .dir = dir, .prog = prog};
  int before = diag->errors;
  for (int i = 0; i < prog->stmts.n && !diag_stopped(diag); i++) {
    const Stmt *st = prog->stmts.items[i];
    if (i == 0 && st->kind != ST_NETWORK) network_missing(&s, st);
    switch (st->kind) {
      case ST_NETWORK: sema_network(&s, st); break;
      case ST_MODEL: sema_model(&s, st); break;
      case ST_EDGE: sema_edge_type(&s, st); break;
      case ST_VERTEX: sema_vertex(&s, st); break;
      case ST_LAYERS: sema_layers(&s, st); break;
      case ST_AGGREGATE: sema_aggregate(&s, st); break;
      default: break;
    }
  }
  if (!s.seen_network) {
    if (prog->stmts.n == 0)
      diag_error(diag, loc_make(0, 0, 0), "no statements: a .lmn file starts with 'network NAME'");
    net->name = "network";
  }
  for (int i = 0; i < prog->stmts.n && !diag_stopped(diag); i++) {
    const Stmt *st = prog->stmts.items[i];
    if (st->kind == ST_CHAIN) sema_chain(&s, st);
  }
  sema_losses(&s, prog);
  net->params = s.params;
  if (diag->errors == before) sema_graph(&s);
  if (diag->errors == before) sema_edge_keys(net);
  return diag->errors - before;
}
