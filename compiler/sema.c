/* sema.c: semantic analysis, part 1: the symbol table, the network statement, models (declared
 * hyper-parameters or read from the file's header), vertices and the `layers` sugar. Edges, losses
 * and graph checks live in sema_edges.c and sema_graph.c. */
#include <stdio.h>
#include <string.h>

#include "modelfile.h"
#include "sema_int.h"

void *grow(Arena *a, void *items, int n, int *cap, size_t elem) {
  if (n < *cap) return items;
  int ncap = *cap ? *cap * 2 : 8;
  void *p = arena_alloc(a, elem * (size_t)ncap);
  if (*cap) memcpy(p, items, elem * (size_t)*cap);
  *cap = ncap;
  return p;
}

const char *sym_kind_name(SymKind kind) {
  static const char *const names[] = {"model", "edge type", "vertex", "output", "loss", "layers group"};
  return names[kind];
}

Sym *sym_find(Sema *s, const char *name) {
  for (int i = 0; i < s->n_syms; i++)
    if (strcmp(s->syms[i].name, name) == 0) return &s->syms[i];
  return NULL;
}

static const char *const reserved_names[] = {"tokens", "labels", "next", "identity", "linear", "mlp",
                                             "decoder_layer", "gpt2_block", "embed", "head", "classify",
                                             "cross_entropy", "gguf", "safetensors"};

Sym *sym_define(Sema *s, const char *name, SymKind kind, int index, Loc at) {
  for (size_t i = 0; i < sizeof reserved_names / sizeof *reserved_names; i++)
    if (strcmp(name, reserved_names[i]) == 0) {
      diag_error(s->diag, at, "'%s' is a reserved name and cannot name a %s", name, sym_kind_name(kind));
      return NULL;
    }
  Sym *old = sym_find(s, name);
  if (old) {
    diag_error(s->diag, at, "redefinition of '%s'", name);
    diag_note(s->diag, old->at, "'%s' was first defined here (%s)", name, sym_kind_name(old->kind));
    return NULL;
  }
  GROW(s, s->syms, s->n_syms, s->cap_syms);
  Sym *sym = &s->syms[s->n_syms++];
  *sym = (Sym){name, kind, index, at, 0};
  return sym;
}

void unknown_name(Sema *s, const char *what, const char *name, Loc at, unsigned kinds, const char *const *extra,
                  int n_extra) {
  const char *cands[512];
  int n = 0;
  for (int i = 0; i < s->n_syms && n < 480; i++)
    if (kinds & KIND(s->syms[i].kind)) cands[n++] = s->syms[i].name;
  for (int i = 0; i < n_extra && n < 512; i++) cands[n++] = extra[i];
  const char *best = closest_name(name, cands, n);
  if (best)
    diag_error(s->diag, at, "unknown %s '%s'; did you mean '%s'?", what, name, best);
  else
    diag_error(s->diag, at, "unknown %s '%s'", what, name);
}

/* ---- models ---------------------------------------------------------------------------------- */

typedef struct SettingSpec {
  const char *key;
  int kind; /* 0 positive integer, 1 positive number, 2 flag */
} SettingSpec;

static const SettingSpec setting_specs[] = {
    {"dim", 0},        {"layers", 0}, {"heads", 0}, {"kv_heads", 0}, {"ffn", 0},      {"vocab", 0}, {"ctx", 0},
    {"eps", 1},        {"rope_theta", 1}, {"tied", 2}, {"untied", 2}, {"qkv_bias", 2}, {"no_qkv_bias", 2},
};
#define N_SETTINGS ((int)(sizeof setting_specs / sizeof *setting_specs))

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
    const char *best = closest_name(set->key, keys, N_SETTINGS);
    if (best)
      diag_error(s->diag, set->at, "unknown model setting '%s'; did you mean '%s'?", set->key, best);
    else
      diag_error(s->diag, set->at, "unknown model setting '%s'", set->key);
    diag_hint(s->diag, "settings are: dim layers heads kv_heads ffn vocab ctx eps rope_theta tied untied qkv_bias");
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
    if (set->value.kind != VAL_INT || set->value.i <= 0 || set->value.i > (1L << 24)) {
      diag_error(s->diag, set->value.at, "'%s' must be a positive integer (at most 16777216)", set->key);
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

/* Checks that declared or read hyper-parameters make a runnable model. */
static void check_hparams(Sema *s, const Stmt *st, const Model *m) {
  const lmn_hparams *hp = &m->hp;
  Loc at = m->at;
  const Setting *hs = st ? find_setting(st, "heads") : NULL, *ks = st ? find_setting(st, "kv_heads") : NULL;
  if (hp->dim % hp->heads != 0) {
    diag_error(s->diag, hs ? hs->value.at : at, "%ld heads do not divide the width %ld of model '%s'", hp->heads,
               hp->dim, m->name);
    return;
  }
  if (hp->heads % hp->kv_heads != 0) {
    diag_error(s->diag, ks ? ks->value.at : at, "%ld kv_heads do not divide the %ld heads of model '%s'",
               hp->kv_heads, hp->heads, m->name);
    return;
  }
  if (hp->arch == LMN_ARCH_GPT2 && hp->kv_heads != hp->heads)
    diag_error(s->diag, ks ? ks->value.at : at, "gpt2 models have kv_heads equal to heads (%ld)", hp->heads);
  if (hp->arch != LMN_ARCH_GPT2 && (hp->dim / hp->heads) % 2 != 0)
    diag_error(s->diag, hs ? hs->value.at : at, "head width %ld of model '%s' is odd; RoPE needs an even head width",
               hp->dim / hp->heads, m->name);
}

static int model_block(Sema *s, const Stmt *st, Model *m) {
  lmn_arch arch = lmn_arch_from_name(st->arch.name);
  if (arch == LMN_ARCH_NONE) {
    const char *archs[] = {"llama", "qwen2", "gpt2"};
    const char *best = closest_name(st->arch.name, archs, 3);
    diag_error(s->diag, st->arch.at, "unknown architecture '%s'%s%s%s", st->arch.name, best ? "; did you mean '" : "",
               best ? best : "", best ? "'?" : "");
    diag_hint(s->diag, "architectures are llama, qwen2 and gpt2");
    return -1;
  }
  lmn_hparams_defaults(&m->hp, arch);
  int bad = 0;
  for (int i = 0; i < st->settings.n; i++) {
    const Setting *set = st->settings.items[i];
    for (int j = 0; j < i; j++) {
      const Setting *prev = st->settings.items[j];
      if (!strcmp(prev->key, set->key)) {
        diag_error(s->diag, set->at, "'%s' is set twice", set->key);
        diag_note(s->diag, prev->at, "first set here");
        bad = 1;
      }
    }
    if (apply_setting(s, &m->hp, set) != 0) bad = 1;
  }
  if (bad) return -1;
  static const char *const required[] = {"dim", "layers", "heads", "ffn", "vocab", "ctx"};
  for (int i = 0; i < 6; i++)
    if (!find_setting(st, required[i])) {
      diag_error(s->diag, st->arch.at, "model '%s' does not declare '%s'", m->name, required[i]);
      diag_hint(s->diag, "a declared model needs dim, layers, heads, ffn, vocab and ctx (kv_heads defaults to heads)");
      return -1;
    }
  if (!find_setting(st, "kv_heads")) m->hp.kv_heads = m->hp.heads;
  m->declared = 1;
  check_hparams(s, st, m);
  return 0;
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
    const char *best = closest_name(src->name, srcs, 2);
    diag_error(s->diag, src->at, "unknown model source '%s'%s%s%s", src->name, best ? "; did you mean '" : "",
               best ? best : "", best ? "'?" : "");
    diag_hint(s->diag, "a model is gguf(\"FILE\"), safetensors(\"DIR\") or an architecture block like llama { ... }");
    return -1;
  }
  const Arg *a = src->args.n ? src->args.items[0] : NULL;
  if (src->args.n != 1 || a->kind != ARG_VALUE || a->a.kind != VAL_STRING) {
    diag_error(s->diag, a ? a->at : src->at, "%s() takes one argument, the path of the model file as a string",
               src->name);
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
    diag_hint(s->diag, "declare them inline, e.g. gguf(\"%s\") llama { dim 576 layers 30 heads 9 kv_heads 3 ffn "
              "1536 vocab 49152 ctx 8192 }, and the file is checked when the network runs", m->path);
    return -1;
  }
  check_hparams(s, NULL, m);
  return 0;
}

static void sema_model(Sema *s, const Stmt *st) {
  Net *net = s->net;
  GROW(s, net->models, net->n_models, s->cap_models);
  Model *m = &net->models[net->n_models];
  memset(m, 0, sizeof *m);
  m->name = st->name.name;
  m->at = st->name.at;
  int rc = st->source ? model_source(s, st, m) : model_block(s, st, m);
  if (!sym_define(s, m->name, SYM_MODEL, net->n_models, m->at)) return;
  if (rc != 0) m->hp.arch = LMN_ARCH_NONE; /* keep the name defined: no cascade of "unknown model" */
  net->n_models++;
}

/* ---- vertices -------------------------------------------------------------------------------- */

typedef struct VertexOpts {
  int shared, trainable;
} VertexOpts;

/* Reads `shared|unshared frozen|trainable`; defaults: shared, frozen for a model from a file. */
static int vertex_options(Sema *s, const PtrList *opts, const Model *m, VertexOpts *out) {
  out->shared = 1;
  out->trainable = m->source == SRC_NONE;
  const NameRef *seen_share = NULL, *seen_train = NULL;
  static const char *const names[] = {"shared", "unshared", "frozen", "trainable"};
  for (int i = 0; i < opts->n; i++) {
    const NameRef *o = opts->items[i];
    int k = -1;
    for (int j = 0; j < 4; j++)
      if (!strcmp(o->name, names[j])) k = j;
    if (k < 0) {
      const char *best = closest_name(o->name, names, 4);
      diag_error(s->diag, o->at, "unknown vertex option '%s'%s%s%s", o->name, best ? "; did you mean '" : "",
                 best ? best : "", best ? "'?" : "");
      diag_hint(s->diag, "vertex options are shared or unshared, and frozen or trainable");
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
    else out->trainable = k == 3;
  }
  return 0;
}

static int lookup_model(Sema *s, const NameRef *ref) {
  Sym *sym = sym_find(s, ref->name);
  if (!sym || sym->kind != SYM_MODEL) {
    if (sym)
      diag_error(s->diag, ref->at, "'%s' is a %s, not a model", ref->name, sym_kind_name(sym->kind));
    else
      unknown_name(s, "model", ref->name, ref->at, KIND(SYM_MODEL), NULL, 0);
    return -1;
  }
  sym->used = 1;
  return s->net->models[sym->index].hp.arch == LMN_ARCH_NONE ? -2 : sym->index;
}

static int add_vertex(Sema *s, const char *name, Loc at, int model, VertexOpts o, int layer) {
  Net *net = s->net;
  if (net->n_vertices >= NET_MAX) {
    diag_error(s->diag, at, "too many vertices (the limit is %d)", NET_MAX);
    return -1;
  }
  if (!sym_define(s, name, SYM_VERTEX, net->n_vertices, at)) return -1;
  GROW(s, net->vertices, net->n_vertices, s->cap_vertices);
  Vertex *v = &net->vertices[net->n_vertices++];
  *v = (Vertex){.name = name, .at = at, .model = model, .shared = o.shared, .trainable = o.trainable, .layer = layer};
  return net->n_vertices - 1;
}

static void sema_vertex(Sema *s, const Stmt *st) {
  int model = lookup_model(s, &st->model);
  VertexOpts o = {1, 0};
  if (model >= 0 && vertex_options(s, &st->options, &s->net->models[model], &o) != 0) return;
  for (int i = 0; i < st->names.n; i++) {
    const NameRef *n = st->names.items[i];
    if (model >= 0) add_vertex(s, n->name, n->at, model, o, -1);
    else sym_define(s, n->name, SYM_VERTEX, -1, n->at); /* known name, unusable: no cascades */
  }
}

static void sema_layers(Sema *s, const Stmt *st) {
  int model = lookup_model(s, &st->model);
  VertexOpts o = {1, 0};
  if (model < 0 || vertex_options(s, &st->options, &s->net->models[model], &o) != 0) return;
  if (!sym_define(s, st->name.name, SYM_LAYERS, -1, st->name.at)) return;
  int first[64], count[64];
  if (st->sizes.n > 64) {
    diag_error(s->diag, st->at, "too many layers (%d; the limit is 64)", st->sizes.n);
    return;
  }
  for (int l = 0; l < st->sizes.n; l++) {
    const Value *v = st->sizes.items[l];
    if (v->kind != VAL_INT || v->i < 1 || v->i > 256) {
      diag_error(s->diag, v->at, "a layer holds 1 to 256 vertices");
      return;
    }
    count[l] = (int)v->i;
  }
  for (int l = 0; l < st->sizes.n; l++) {
    first[l] = s->net->n_vertices;
    for (int i = 0; i < count[l]; i++) {
      char name[96];
      snprintf(name, sizeof name, "%s%d_%d", st->name.name, l, i);
      if (add_vertex(s, arena_strndup(s->arena, name, strlen(name)), st->name.at, model, o, l) < 0) return;
    }
  }
  for (int l = 0; l + 1 < st->sizes.n; l++)
    for (int i = 0; i < count[l]; i++)
      for (int j = 0; j < count[l + 1]; j++) sema_add_layer_edge(s, first[l] + i, first[l + 1] + j, st->edge, st->at);
}

/* ---- driver ---------------------------------------------------------------------------------- */

static int is_c_keyword(const char *name) {
  static const char *const kw[] = {"auto", "break", "case", "char", "const", "continue", "default", "do", "double",
                                   "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
                                   "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
                                   "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "main"};
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
  if (is_c_keyword(st->name.name) || strlen(st->name.name) > 40)
    diag_error(s->diag, st->name.at, "network name '%s' cannot prefix C identifiers (a C keyword, or over 40 "
               "characters)", st->name.name);
}

static void sema_aggregate(Sema *s, const Stmt *st) {
  if (s->seen_aggregate) {
    diag_error(s->diag, st->at, "'aggregate' is given twice");
    return;
  }
  s->seen_aggregate = 1;
  const char *modes[] = {"mean", "sum"};
  if (!strcmp(st->name.name, "mean")) s->net->aggregate = AGG_MEAN;
  else if (!strcmp(st->name.name, "sum")) s->net->aggregate = AGG_SUM;
  else {
    const char *best = closest_name(st->name.name, modes, 2);
    diag_error(s->diag, st->name.at, "unknown aggregation '%s'%s%s%s", st->name.name, best ? "; did you mean '" : "",
               best ? best : "", best ? "'?" : "");
    diag_hint(s->diag, "aggregate mean or aggregate sum");
  }
}

int sema_check(const Program *prog, Net *net, Arena *arena, Diag *diag, const char *dir) {
  memset(net, 0, sizeof *net);
  net->arena = arena;
  net->embed_model = -1;
  net->aggregate = AGG_MEAN;
  Sema s = {.net = net, .arena = arena, .diag = diag, .dir = dir};
  int before = diag->errors;
  for (int i = 0; i < prog->stmts.n; i++) {
    const Stmt *st = prog->stmts.items[i];
    if (st->kind != ST_NETWORK && !s.seen_network && i == 0)
      diag_error(diag, st->at, "a .lmn file starts with 'network NAME'");
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
    if (prog->stmts.n == 0) diag_error(diag, loc_make(0, 0, 0), "empty network: a .lmn file starts with 'network NAME'");
    net->name = "network";
  }
  for (int i = 0; i < prog->stmts.n; i++) {
    const Stmt *st = prog->stmts.items[i];
    if (st->kind == ST_CHAIN) sema_chain(&s, st);
  }
  sema_losses(&s, prog);
  if (diag->errors == before) sema_graph(&s);
  return diag->errors - before;
}
