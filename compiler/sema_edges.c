/* sema_edges.c: semantic analysis, part 2: edge modules (identity, linear, mlp, decoder_layer,
 * gpt2_block, embed, head, classify), `edge NAME = ...` types, and chains `a -> module -> b`, with
 * the width of every wire checked and a projection suggested where widths differ. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sema_int.h"

static const char *const module_names[] = {"identity",   "linear", "mlp",  "decoder_layer",
                                           "gpt2_block", "embed",  "head", "classify"};
#define N_MODULE_NAMES 8

const char *mod_kind_name(ModKind kind) { return module_names[kind]; }

/* linear's `init` words, in ModInit order */
static const char *const init_names[] = {"normal", "zero", "identity", NULL};

const char *mod_init_name(ModInit init) { return init_names[init]; }

/* Reports an argument a module does not take (or a missing one when a == NULL), with a did-you-mean over the
 * flags or keywords it does take (a NULL-terminated list). */
static void bad_arg(Sema *s, const Call *c, const Arg *a, const char *usage, const char *const *words) {
  int n = 0;
  while (words && words[n]) n++;
  const char *word = !a                                               ? NULL
                     : a->kind == ARG_KEYWORD                         ? a->key
                     : a->kind == ARG_VALUE && a->a.kind == VAL_IDENT ? a->a.s
                                                                      : NULL;
  const char *best = word ? closest_name(word, words, n) : NULL;
  if (!a) diag_error(s->diag, c->at, "%s: missing argument", c->name);
  else if (best)
    diag_error(s->diag, a->at, "%s: unknown argument '%s'; did you mean '%s'?", c->name, word, best);
  else if (word) diag_error(s->diag, a->at, "%s: unknown argument '%s'", c->name, word);
  else
    diag_error(s->diag, a->at, "%s: unexpected %s", c->name,
               a->kind == ARG_ARROW      ? "'IN -> OUT' argument"
               : a->a.kind == VAL_STRING ? "string argument"
               : a->a.kind == VAL_CALL   ? "call as an argument"
                                         : "number argument");
  diag_hint(s->diag, "usage: %s", usage);
}

/* A model named by an identifier argument, or -1 with an error. */
static int model_arg(Sema *s, const Value *v) {
  if (v->kind != VAL_IDENT) {
    diag_error(s->diag, v->at, "expected a model name");
    return -1;
  }
  Sym *sym = sym_find(s, v->s);
  if (!sym || sym->kind != SYM_MODEL) {
    if (sym) wrong_kind(s, sym, v->at, "a model");
    else unknown_name(s, "model", v->s, v->at, KIND(SYM_MODEL), NULL, 0);
    return -1;
  }
  sym->used = 1;
  return s->net->models[sym->index].hp.arch == LMN_ARCH_NONE ? -1 : sym->index;
}

/* A width: a positive integer, or a model name standing for its width. */
static long width_arg(Sema *s, const Value *v) {
  if (v->kind == VAL_INT) {
    if (v->i < 1) {
      diag_error(s->diag, v->at, "width must be between 1 and %lld", sema_limits[LIM_DIM].max);
      return -1;
    }
    return over_limit(s, LIM_DIM, v->i, v->at, "width %ld is too large", v->i) ? -1 : v->i;
  }
  if (v->kind == VAL_IDENT) {
    int m = model_arg(s, v);
    return m < 0 ? -1 : s->net->models[m].hp.dim;
  }
  diag_error(s->diag, v->at, "expected a width (an integer or a model name)");
  return -1;
}

/* A positive integer within the limit `id`, or -1 with an error. */
static long positive_int(Sema *s, const Value *v, const char *what, LimitId id) {
  if (v->kind != VAL_INT || v->i < 1) {
    diag_error(s->diag, v->at, "%s must be an integer between 1 and %lld", what, sema_limits[id].max);
    return -1;
  }
  return over_limit(s, id, v->i, v->at, "%s %ld is too large", what, v->i) ? -1 : v->i;
}

/* `frozen` / `trainable` flags shared by embed, head and classify. */
static int train_flag(const Arg *a, int *trainable, int *given) {
  if (a->kind != ARG_VALUE || a->a.kind != VAL_IDENT) return 0;
  if (!strcmp(a->a.s, "frozen")) *trainable = 0;
  else if (!strcmp(a->a.s, "trainable")) *trainable = 1;
  else return 0;
  *given = 1;
  return 1;
}

/* `init zero | identity | normal` of linear: the weight's start (identity needs a square matrix, checked once
 * the widths are known). */
static int init_arg(Sema *s, const Call *c, const Arg *a, Module *m, const char *usage) {
  for (int k = 0; init_names[k]; k++)
    if (a->a.kind == VAL_IDENT && !strcmp(a->a.s, init_names[k])) {
      m->init = (ModInit)k;
      m->init_at = a->at;
      return 0;
    }
  const char *best = a->a.kind == VAL_IDENT ? closest_name(a->a.s, init_names, 3) : NULL;
  if (best)
    diag_error(s->diag, a->a.at, "%s: unknown init '%s'; did you mean '%s'?", c->name, a->a.s, best);
  else
    diag_error(s->diag, a->a.at, "%s: init must be normal, zero or identity", c->name);
  diag_hint(s->diag, "usage: %s", usage);
  return -1;
}

static int linear_module(Sema *s, const Call *c, Module *m) {
  const char *usage = "linear, linear(bias), linear(OUT), linear(IN -> OUT, bias), linear(bias, init zero | "
                      "identity | normal); a width is a number or a model";
  static const char *const flags[] = {"bias", "nobias", "init", NULL};
  for (int i = 0; i < c->args.n; i++) {
    const Arg *a = c->args.items[i];
    int ident = a->kind == ARG_VALUE && a->a.kind == VAL_IDENT;
    if (a->kind == ARG_KEYWORD && !strcmp(a->key, "init")) {
      if (init_arg(s, c, a, m, usage)) return -1;
    } else if (ident && !strcmp(a->a.s, "bias")) m->bias = 1;
    else if (ident && !strcmp(a->a.s, "nobias")) m->bias = 0;
    else if (ident && !sym_find(s, a->a.s) && closest_name(a->a.s, flags, 3)) {
      bad_arg(s, c, a, usage, flags); /* a misspelt flag, not an unknown model */
      return -1;
    } else if (a->kind == ARG_ARROW) {
      if ((m->din = width_arg(s, &a->a)) < 0 || (m->dout = width_arg(s, &a->b)) < 0) return -1;
    } else if (a->kind == ARG_VALUE && (a->a.kind == VAL_INT || a->a.kind == VAL_IDENT)) {
      if ((m->dout = width_arg(s, &a->a)) < 0) return -1;
    } else {
      bad_arg(s, c, a, usage, flags);
      return -1;
    }
  }
  return 0;
}

/* Module kinds that take exactly a model plus flags. */
static int model_module(Sema *s, const Call *c, Module *m) {
  const char *usage = m->kind == MOD_DECODER     ? "decoder_layer(MODEL)"
                      : m->kind == MOD_GPT2_EDGE ? "gpt2_block(MODEL) or gpt2_block(MODEL, unscaled)"
                      : m->kind == MOD_EMBED ? "embed(MODEL), embed(MODEL, prefix N), embed(MODEL, trainable)"
                                             : "head(MODEL), head(MODEL, trainable)";
  static const char *const words[] = {"frozen", "trainable", "unscaled", "prefix", NULL};
  if (c->args.n == 0) {
    diag_error(s->diag, c->at, "%s() needs a model: %s(MODEL)", c->name, c->name);
    return -1;
  }
  const Arg *first = c->args.items[0];
  if (first->kind != ARG_VALUE) {
    bad_arg(s, c, first, usage, NULL);
    return -1;
  }
  if ((m->model = model_arg(s, &first->a)) < 0) return -1;
  const Model *md = &s->net->models[m->model];
  m->trainable = md->source == SRC_NONE;
  int given = 0;
  for (int i = 1; i < c->args.n; i++) {
    const Arg *a = c->args.items[i];
    if ((m->kind == MOD_EMBED || m->kind == MOD_HEAD) && train_flag(a, &m->trainable, &given)) continue;
    if (m->kind == MOD_GPT2_EDGE && a->kind == ARG_VALUE && a->a.kind == VAL_IDENT &&
        !strcmp(a->a.s, "unscaled")) {
      m->unscaled = 1;
      continue;
    }
    if (m->kind == MOD_EMBED && a->kind == ARG_KEYWORD && !strcmp(a->key, "prefix")) {
      if ((m->prefix = positive_int(s, &a->a, "prefix", LIM_PREFIX)) < 0) return -1;
      continue;
    }
    bad_arg(s, c, a, usage, words);
    return -1;
  }
  m->din = m->kind == MOD_EMBED ? 0 : md->hp.dim;
  m->dout = m->kind == MOD_HEAD ? md->hp.vocab : md->hp.dim;
  return 0;
}

static int classify_module(Sema *s, const Call *c, Module *m) {
  const char *usage = "classify(N) or classify(classes N), optionally frozen";
  static const char *const words[] = {"classes", "frozen", "trainable", NULL};
  int given = 0;
  m->trainable = 1;
  m->dout = -1;
  for (int i = 0; i < c->args.n; i++) {
    const Arg *a = c->args.items[i];
    if (train_flag(a, &m->trainable, &given)) continue;
    const Value *v = a->kind == ARG_VALUE                                   ? &a->a
                     : a->kind == ARG_KEYWORD && !strcmp(a->key, "classes") ? &a->a
                                                                            : NULL;
    if (!v || m->dout > 0) {
      bad_arg(s, c, a, usage, words);
      return -1;
    }
    if ((m->dout = positive_int(s, v, "the number of classes", LIM_VOCAB)) < 0) return -1;
  }
  if (m->dout < 0) {
    diag_error(s->diag, c->at, "classify() needs the number of classes: classify(N)");
    return -1;
  }
  if (m->dout < 2) {
    diag_error(s->diag, c->at, "a classification head needs at least 2 classes");
    return -1;
  }
  return 0;
}

/* Builds the module template of one builtin term. Returns 0, or -1 after an error. */
static int builtin_module(Sema *s, const Call *c, int kind, Module *m) {
  memset(m, 0, sizeof *m);
  m->kind = (ModKind)kind;
  m->at = c->at;
  m->din = m->dout = -1;
  m->model = -1;
  switch (m->kind) {
    case MOD_IDENTITY:
      if (c->args.n) {
        bad_arg(s, c, c->args.items[0], "identity (it takes no arguments)", NULL);
        return -1;
      }
      return 0;
    case MOD_LINEAR: return linear_module(s, c, m);
    case MOD_MLP:
      for (int i = 0; i < c->args.n; i++) {
        const Arg *a = c->args.items[i];
        if (a->kind == ARG_KEYWORD && !strcmp(a->key, "hidden")) {
          if ((m->hidden = positive_int(s, &a->a, "hidden", LIM_FFN)) < 0) return -1;
        } else {
          static const char *const words[] = {"hidden", NULL};
          bad_arg(s, c, a, "mlp or mlp(hidden N)", words);
          return -1;
        }
      }
      return 0;
    case MOD_CLASSIFY: return classify_module(s, c, m);
    default: return model_module(s, c, m);
  }
}

/* Records that module `i` of the edge being built comes from edge type `type` (-1: written out). */
static void set_origin(Sema *s, int i, int type) {
  GROW(s, s->origin, i, s->cap_origin);
  s->origin[i] = type;
}

/* Whether an edge of n modules, as term c makes it, is past the limit (reported). */
static int too_many_modules(Sema *s, const Call *c, long long n) {
  return over_limit(s, LIM_MODULES, n, c->at, "'%s' makes an edge of %lld modules", c->name, n);
}

/* Appends the modules of one edge expression to (mods, n); returns -1 after an error. The modules of an
 * edge type are placed where the type is used, so that diagnostics point at the use. */
static int expand_expr(Sema *s, const EdgeExpr *ex, Module **mods, int *n, int *cap) {
  for (int t = 0; t < ex->terms.n; t++) {
    const Call *c = ex->terms.items[t];
    int kind = -1;
    for (int k = 0; k < N_MODULE_NAMES; k++)
      if (!strcmp(c->name, module_names[k])) kind = k;
    if (kind < 0) {
      Sym *sym = sym_find(s, c->name);
      if (sym && sym->kind == SYM_EDGE_TYPE && !c->has_parens) {
        sym->used = 1;
        const EdgeType *et = &s->types[sym->index];
        if (et->n_mods < 0) return -1; /* already reported */
        if (too_many_modules(s, c, (long long)*n + et->n_mods)) return -1;
        for (int i = 0; i < et->n_mods; i++) {
          GROW(s, *mods, *n, *cap);
          set_origin(s, *n, sym->index);
          (*mods)[*n] = et->mods[i];
          (*mods)[(*n)++].at = c->at;
        }
        continue;
      }
      if (sym && sym->kind == SYM_EDGE_TYPE)
        diag_error(s->diag, c->at, "edge type '%s' takes no arguments", c->name);
      else if (sym) wrong_kind(s, sym, c->at, "an edge module");
      else
        unknown_name(s, "edge module", c->name, c->at, KIND(SYM_EDGE_TYPE) | KIND(SYM_VERTEX), module_names,
                     N_MODULE_NAMES);
      return -1;
    }
    if (kind == MOD_IDENTITY || kind == MOD_MLP || kind == MOD_LINEAR || kind == MOD_CLASSIFY) {
      /* bare names are fine for modules whose arguments are optional */
    } else if (!c->has_parens) {
      diag_error(s->diag, c->at, "%s() needs a model: %s(MODEL)", c->name, c->name);
      return -1;
    }
    if (too_many_modules(s, c, *n + 1LL)) return -1;
    GROW(s, *mods, *n, *cap);
    set_origin(s, *n, -1);
    if (builtin_module(s, c, kind, &(*mods)[*n]) != 0) return -1;
    (*n)++;
  }
  return 0;
}

int sema_edge_type(Sema *s, const Stmt *st) {
  EdgeType et = {.name = st->name.name, .at = st->name.at};
  int cap = 0;
  int rc = expand_expr(s, st->edge, &et.mods, &et.n_mods, &cap);
  for (int i = 0; rc == 0 && i < et.n_mods; i++)
    if (et.mods[i].kind == MOD_EMBED || et.mods[i].kind == MOD_HEAD || et.mods[i].kind == MOD_CLASSIFY) {
      diag_error(s->diag, et.mods[i].at, "%s() belongs at the boundary of a chain, not in an edge type",
                 mod_kind_name(et.mods[i].kind));
      rc = -1;
    }
  GROW(s, s->types, s->n_types, s->cap_types);
  s->types[s->n_types] = et;
  Sym *sym = sym_define(s, st->name.name, SYM_EDGE_TYPE, s->n_types, st->name.at);
  if (sym && rc != 0) sym->used = 1;
  s->n_types++;
  if (rc != 0) s->types[s->n_types - 1].n_mods = -1; /* poisoned: uses report nothing more */
  return rc;
}

/* ---- edges ----------------------------------------------------------------------------------- */

static const char *end_name(const Net *net, EndKind kind, int index) {
  if (kind == END_TOKENS) return "tokens";
  if (kind == END_OUTPUT) return net->outputs[index].name;
  return net->vertices[index].name;
}

static void edge_label(const Net *net, Edge *e) {
  size_t n = 0;
  e->label[0] = 0;
  for (int i = 0; i < e->n_src; i++)
    n += (size_t)snprintf(e->label + n, sizeof e->label - n, "%s%s", i ? " + " : "",
                          end_name(net, e->src_kind == END_SUM ? END_VERTEX : e->src_kind, e->srcs[i]));
  if (n < sizeof e->label)
    snprintf(e->label + n, sizeof e->label - n, " -> %s",
             e->dst < 0 ? "?" : end_name(net, e->dst_kind, e->dst));
}

static long vertex_width(const Net *net, int v) { return net->models[net->vertices[v].model].hp.dim; }

/* After an error at module i of the edge being built: where its edge type is defined, if it has one. */
static void origin_note(Sema *s, int i) {
  if (i >= s->cap_origin || s->origin[i] < 0) return;
  const EdgeType *t = &s->types[s->origin[i]];
  diag_note(s->diag, t->at, "edge type '%s' is defined here", t->name);
}

/* embed() must open an edge from tokens, and an edge from tokens must open with embed(). */
static int check_embed(Sema *s, const Edge *e, int i) {
  const Module *m = &e->mods[i];
  if (m->kind == MOD_EMBED && e->src_kind != END_TOKENS) {
    diag_error(s->diag, m->at, "embed() reads tokens, but this edge starts at vertex '%s'",
               s->net->vertices[e->srcs[0]].name);
    diag_hint(s->diag, "embeddings open the input chain: tokens -> embed(%s) -> VERTEX",
              s->net->models[m->model].name);
    return -1;
  }
  if (m->kind == MOD_EMBED && i != 0) {
    diag_error(s->diag, m->at, "embed() must be the first module of an edge from 'tokens'");
    origin_note(s, 0);
    return -1;
  }
  if (m->kind == MOD_EMBED || e->src_kind != END_TOKENS || i != 0) return 0;
  diag_error(s->diag, m->at, "an edge from 'tokens' must start with embed(MODEL)");
  for (int j = i + 1; j < e->n_mods; j++)
    if (e->mods[j].kind == MOD_EMBED) {
      diag_hint(s->diag, "move embed(%s) to the front", s->net->models[e->mods[j].model].name);
      return -1;
    }
  if (e->dst_kind == END_VERTEX) {
    const char *model = s->net->models[s->net->vertices[e->dst].model].name;
    diag_hint(s->diag, "insert embed(%s) first: tokens -> embed(%s) -> ...", model, model);
  }
  return -1;
}

/* Checks module i of an edge against the incoming width w; fills in its widths. */
static int module_width(Sema *s, Edge *e, int i, long w) {
  Module *m = &e->mods[i];
  if ((m->kind == MOD_HEAD || m->kind == MOD_CLASSIFY) && i != e->n_mods - 1) {
    diag_error(s->diag, e->mods[i + 1].at, "nothing may follow %s(): it produces an output",
               mod_kind_name(m->kind));
    diag_hint(s->diag, "end the chain with the output's name: ... -> %s(...) -> NAME",
              mod_kind_name(m->kind));
    return -1;
  }
  if (m->kind == MOD_LINEAR || m->kind == MOD_MLP || m->kind == MOD_IDENTITY || m->kind == MOD_CLASSIFY) {
    if (m->din > 0 && m->din != w) {
      diag_error(s->diag, m->at, "linear(%ld -> %ld) takes width %ld but receives %ld", m->din, m->dout,
                 m->din, w);
      origin_note(s, i);
      diag_hint(s->diag, "write linear(%ld -> %ld)", w, m->dout);
      return -1;
    }
    m->din = w;
    if (m->kind != MOD_CLASSIFY && m->dout < 0) m->dout = w;
    if (m->kind == MOD_MLP) {
      m->dout = w;
      if (!m->hidden) m->hidden = w / 2 > 0 ? w / 2 : 1;
    }
    if (m->init == INIT_IDENTITY && m->din != m->dout) {
      diag_error(s->diag, m->init_at, "linear(%ld -> %ld): init identity needs a square weight", m->din, m->dout);
      origin_note(s, i);
      diag_hint(s->diag, "init identity keeps a width; use init zero or normal for a projection");
      return -1;
    }
  } else if (m->din != w) {
    diag_error(s->diag, m->at, "%s(%s) takes width %ld but receives %ld", mod_kind_name(m->kind),
               s->net->models[m->model].name, m->din, w);
    origin_note(s, i);
    diag_hint(s->diag, "add linear(%ld -> %ld) before it", w, m->din);
    return -1;
  }
  return 0;
}

/* Resolves the widths along the edge's modules; reports the first mismatch. */
static int flow_widths(Sema *s, Edge *e) {
  Net *net = s->net;
  long w = e->src_kind == END_TOKENS ? 0 : vertex_width(net, e->srcs[0]);
  for (int i = 0; i < e->n_mods; i++) {
    if (check_embed(s, e, i) != 0) return -1;
    if (e->mods[i].kind != MOD_EMBED && module_width(s, e, i, w) != 0) return -1;
    w = e->mods[i].dout;
  }
  if (e->src_kind == END_TOKENS && e->n_mods == 0) {
    diag_error(s->diag, e->at, "an edge from 'tokens' must start with embed(MODEL)");
    return -1;
  }
  if (e->dst_kind == END_VERTEX && w != vertex_width(net, e->dst)) {
    diag_error(s->diag, e->at, "edge '%s' yields width %ld but vertex '%s' takes %ld", e->label, w,
               net->vertices[e->dst].name, vertex_width(net, e->dst));
    diag_hint(s->diag, "add linear(%ld -> %ld) before '%s'", w, vertex_width(net, e->dst),
              net->vertices[e->dst].name);
    return -1;
  }
  return 0;
}

static Edge *new_edge(Sema *s, Loc at) {
  Net *net = s->net;
  if (net->n_edges >= sema_limits[LIM_EDGES].max) {
    if (!s->edges_full)
      over_limit(s, LIM_EDGES, net->n_edges + 1LL, at, "too many edges: this is edge %d", net->n_edges + 1);
    s->edges_full = 1;
    return NULL;
  }
  GROW(s, net->edges, net->n_edges, s->cap_edges);
  Edge *e = &net->edges[net->n_edges];
  memset(e, 0, sizeof *e);
  e->id = net->n_edges;
  e->at = at;
  e->dst = -1;
  return e;
}

/* One more input into vertex v, by edge e: past the limit, reports it (once) and returns -1. */
static int add_input(Sema *s, const Edge *e, int v) {
  Vertex *x = &s->net->vertices[v];
  if (x->n_in++ < sema_limits[LIM_INPUTS].max) return 0;
  if (x->n_in == sema_limits[LIM_INPUTS].max + 1 &&
      over_limit(s, LIM_INPUTS, x->n_in, e->at, "too many inputs: edge '%s' is input %d of vertex '%s'", e->label,
                 x->n_in, x->name))
    diag_note(s->diag, x->at, "'%s' is declared here", x->name);
  return -1;
}

/* Finishes an edge whose sources, modules and destination are set; returns 0 when it is valid. */
static int commit_edge(Sema *s, Edge *e) {
  edge_label(s->net, e);
  if (flow_widths(s, e) != 0) return -1;
  if (e->dst_kind == END_VERTEX && add_input(s, e, e->dst) != 0) return -1;
  count_edge(s, e);
  s->net->n_edges++;
  return 0;
}

int sema_add_layer_edge(Sema *s, int src, int dst, const EdgeExpr *ex, Loc at) {
  Edge *e = new_edge(s, at);
  if (!e) return -1;
  int cap = 0;
  if (ex->terms.n == 1) {
    const Call *c = ex->terms.items[0];
    Sym *sym = sym_find(s, c->name);
    if (sym && sym->kind == SYM_EDGE_TYPE) e->type = c->name;
  }
  if (expand_expr(s, ex, &e->mods, &e->n_mods, &cap) != 0) return -1;
  e->src_kind = END_VERTEX;
  e->srcs[0] = src;
  e->n_src = 1;
  e->dst_kind = END_VERTEX;
  e->dst = dst;
  return commit_edge(s, e);
}

/* Modules in the edge type a symbol names. */
static int type_mods(const Sema *s, const Sym *sym) { return s->types[sym->index].n_mods; }

/* Resolves a chain's sources: `tokens`, a vertex, or vertices joined by `+`. */
static int chain_sources(Sema *s, const Stmt *st, Edge *e) {
  if (st->sources.n > SEMA_MAX_SUMMED) {
    const NameRef *r = st->sources.items[SEMA_MAX_SUMMED];
    over_limit(s, LIM_SUMMED, st->sources.n, r->at, "too many sources: %d vertices are summed", st->sources.n);
    return -1;
  }
  for (int i = 0; i < st->sources.n; i++) {
    const NameRef *r = st->sources.items[i];
    if (!strcmp(r->name, "tokens")) {
      if (st->sources.n > 1) {
        diag_error(s->diag, r->at, "'tokens' cannot be summed with vertices");
        return -1;
      }
      e->src_kind = END_TOKENS;
      e->n_src = 1;
      return 0;
    }
    Sym *sym = sym_find(s, r->name);
    if (!sym || sym->kind != SYM_VERTEX) {
      if (sym && sym->kind == SYM_OUTPUT) {
        diag_error(s->diag, r->at, "'%s' is an output: outputs end chains and cannot feed edges", r->name);
        diag_note(s->diag, sym->at, "'%s' is defined here", r->name);
        diag_hint(s->diag, "start the chain at the vertex that feeds the head instead");
      } else if (sym) {
        wrong_kind(s, sym, r->at, "a vertex or 'tokens'");
      } else {
        const char *extra[] = {"tokens"};
        unknown_name(s, "vertex", r->name, r->at, KIND(SYM_VERTEX), extra, 1);
      }
      return -1;
    }
    if (sym->index < 0) return -1;
    e->srcs[e->n_src++] = sym->index;
    long w0 = vertex_width(s->net, e->srcs[0]), w = vertex_width(s->net, sym->index);
    if (w != w0) {
      diag_error(s->diag, r->at, "summed vertices must have one width: '%s' has %ld but '%s' has %ld",
                 r->name, w, s->net->vertices[e->srcs[0]].name, w0);
      diag_hint(s->diag, "sum vertices of one width, or join them through edges with linear(%ld -> %ld)", w,
                w0);
      return -1;
    }
  }
  e->src_kind = e->n_src > 1 ? END_SUM : END_VERTEX;
  return 0;
}

/* Defines the output a chain ends in (its last module is head or classify). */
static int define_output(Sema *s, Edge *e, const Call *c) {
  Net *net = s->net;
  const Module *last = &e->mods[e->n_mods - 1];
  if (!sym_define(s, c->name, SYM_OUTPUT, net->n_outputs, c->at)) return -1;
  GROW(s, net->outputs, net->n_outputs, s->cap_outputs);
  Output *o = &net->outputs[net->n_outputs];
  *o = (Output){.name = c->name,
                .at = c->at,
                .kind = last->kind == MOD_HEAD ? OUT_LM : OUT_CLASS,
                .width = last->dout,
                .edge = e->id,
                .loss = -1};
  e->dst_kind = END_OUTPUT;
  e->dst = net->n_outputs++;
  return 0;
}

static int ends_in_output(const Edge *e) {
  return e->n_mods &&
         (e->mods[e->n_mods - 1].kind == MOD_HEAD || e->mods[e->n_mods - 1].kind == MOD_CLASSIFY);
}

/* A chain into an output that exists: allowed for head() outputs of the same head (the chains' vectors are
 * summed before that one head, so the logits are the sum of each chain's); 1 when e joins it, 0 when it is not
 * such a chain (nothing reported), -1 after an error. */
static int join_output(Sema *s, Edge *e, const Call *c, const Sym *sym) {
  Net *net = s->net;
  if (!sym || sym->kind != SYM_OUTPUT || sym->index < 0 || e->mods[e->n_mods - 1].kind != MOD_HEAD) return 0;
  Output *o = &net->outputs[sym->index];
  const Module *head = &e->mods[e->n_mods - 1], *first = &net->edges[o->edge].mods[net->edges[o->edge].n_mods - 1];
  if (o->kind != OUT_LM || first->model != head->model || first->trainable != head->trainable) {
    char want[160];
    module_describe(net, first, want, sizeof want);
    if (first->model == head->model) /* the same model, another trainability: say which it must be */
      snprintf(want + strlen(want) - 1, sizeof want - strlen(want) + 1, ", %s)", first->trainable ? "trainable" : "frozen");
    if (o->kind != OUT_LM)
      diag_error(s->diag, c->at, "'%s' is the output of classify(); only head() outputs take more chains", c->name);
    else
      diag_error(s->diag, c->at, "'%s' is the output of %s; a second chain into it must end in the same head",
                 c->name, want);
    diag_note(s->diag, o->at, "'%s' is defined here", c->name);
    if (o->kind != OUT_LM)
      diag_hint(s->diag, "give the output of head() a new name");
    else
      diag_hint(s->diag, "chains into one output are summed before its one head: end this one with %s too", want);
    return -1;
  }
  e->dst_kind = END_OUTPUT;
  e->dst = sym->index;
  edge_label(net, e);
  if (flow_widths(s, e) != 0) return -1;
  if (o->n_more + 1 >= sema_limits[LIM_INPUTS].max) {
    over_limit(s, LIM_INPUTS, o->n_more + 2LL, e->at, "too many chains into output '%s'", o->name);
    return -1;
  }
  if ((o->n_more & (o->n_more - 1)) == 0) { /* 0, 1, 2, 4, ...: room for twice as many */
    int *more = arena_alloc(net->arena, sizeof(int) * (size_t)(o->n_more ? 2 * o->n_more : 1));
    if (o->n_more) memcpy(more, o->more, sizeof(int) * (size_t)o->n_more);
    o->more = more;
  }
  o->more[o->n_more++] = e->id;
  count_edge(s, e);
  net->n_edges++;
  return 1;
}

/* The last hop of a chain that ends after head() or classify(): the name of a new output, or an output that
 * exists (join_output). */
static int chain_output(Sema *s, Edge *e, const Call *c, const Sym *sym) {
  int joined = join_output(s, e, c, sym);
  if (joined) return joined > 0 ? 0 : -1;
  if (sym) {
    if (failed_name_quiet(s, c->name)) return -1;
    diag_error(s->diag, c->at, "'%s' is already %s; give the output of %s() a new name", c->name,
               sym_kind_article(sym->kind), mod_kind_name(e->mods[e->n_mods - 1].kind));
    diag_note(s->diag, sym->at, "'%s' is defined here", c->name);
    remember_failed(s, c->name); /* the losses that read it meant this output */
    return -1;
  }
  edge_label(s->net, e);
  if (flow_widths(s, e) != 0 || define_output(s, e, c) != 0) return -1;
  edge_label(s->net, e);
  count_edge(s, e);
  s->net->n_edges++;
  return 0;
}

/* The last hop is neither a vertex nor an output name. */
static int bad_chain_end(Sema *s, const EdgeExpr *ex, const Call *c, const Sym *sym) {
  if (ex->terms.n == 1 && !c->has_parens && !sym) {
    int is_module = 0;
    for (int k = 0; k < N_MODULE_NAMES; k++) is_module |= !strcmp(c->name, module_names[k]);
    if (!is_module) {
      if (unknown_name(s, "vertex", c->name, c->at, KIND(SYM_VERTEX), NULL, 0))
        diag_hint(s->diag,
                  "a chain ends at a vertex, or at a new output name after head(MODEL) or classify(N)");
      return -1;
    }
  }
  const Call *end = ex->terms.items[ex->terms.n - 1];
  if (!strcmp(end->name, "head") || !strcmp(end->name, "classify")) {
    diag_error(s->diag, end->at, "the output of %s() needs a name", end->name);
    s->unnamed_outputs++;
    diag_hint(s->diag, "end the chain with it: ... -> %s(...) -> NAME, and read NAME in a loss", end->name);
    return -1;
  }
  diag_error(s->diag, c->at, "a chain must end at a vertex, or at an output name after head() or classify()");
  return -1;
}

/* Builds the edges of a chain `SOURCES -> HOP -> ... -> END`: a hop that names a vertex ends one edge and
 * starts the next; the others are modules of the edge being built. */
static int chain_edges(Sema *s, const Stmt *st) {
  Edge *e = new_edge(s, st->at);
  if (!e || chain_sources(s, st, e) != 0) return -1;
  int cap = 0;
  for (int h = 0; h < st->hops.n; h++) {
    const EdgeExpr *ex = st->hops.items[h];
    const Call *c = ex->terms.items[0];
    Sym *sym = ex->terms.n == 1 && !c->has_parens ? sym_find(s, c->name) : NULL;
    int last = h == st->hops.n - 1;
    int names_end = last && ex->terms.n == 1 && !c->has_parens;
    if (ends_in_output(e) && names_end) return chain_output(s, e, c, sym);
    if (ends_in_output(e)) {
      diag_error(s->diag, c->at, "nothing may follow %s(): it produces an output",
                 mod_kind_name(e->mods[e->n_mods - 1].kind));
      diag_hint(s->diag, "end the chain with the output's name: ... -> %s(...) -> NAME",
                mod_kind_name(e->mods[e->n_mods - 1].kind));
      return -1;
    }
    if (sym && sym->kind == SYM_VERTEX) {
      if (sym->index < 0) return -1;
      e->dst_kind = END_VERTEX;
      e->dst = sym->index;
      e->at.len = c->at.line == e->at.line ? c->at.col + c->at.len - e->at.col : e->at.len;
      if (commit_edge(s, e) != 0) return -1;
      if (last) return 0;
      int src = sym->index;
      if (!(e = new_edge(s, c->at))) return -1;
      cap = 0;
      e->src_kind = END_VERTEX;
      e->srcs[0] = src;
      e->n_src = 1;
      continue;
    }
    if (last) return bad_chain_end(s, ex, c, sym);
    if (expand_expr(s, ex, &e->mods, &e->n_mods, &cap) != 0) return -1;
    Sym *type = ex->terms.n == 1 && !c->has_parens ? sym_find(s, c->name) : NULL;
    e->type = type && type->kind == SYM_EDGE_TYPE && e->n_mods == type_mods(s, type) ? c->name : NULL;
  }
  return -1;
}

static int names_output_module(const EdgeExpr *ex) {
  for (int t = 0; t < ex->terms.n; t++) {
    const Call *c = ex->terms.items[t];
    if (!strcmp(c->name, "head") || !strcmp(c->name, "classify")) return 1;
  }
  return 0;
}

/* A chain with errors that ends in head() or classify() and a new name still defines that name, as an
 * unusable output, so that the losses reading it report nothing more. */
static void poison_output(Sema *s, const Stmt *st) {
  const EdgeExpr *ex = st->hops.items[st->hops.n - 1];
  const Call *c = ex->terms.items[0];
  if (ex->terms.n != 1 || c->has_parens || sym_find(s, c->name) || sym_reserved(c->name)) return;
  for (int h = 0; h + 1 < st->hops.n; h++)
    if (names_output_module(st->hops.items[h])) {
      sym_define(s, c->name, SYM_OUTPUT, -1, c->at);
      return;
    }
}

int sema_chain(Sema *s, const Stmt *st) {
  if (chain_edges(s, st) == 0) return 0;
  poison_output(s, st);
  return -1;
}

/* ---- descriptions ----------------------------------------------------------------------------- */

void module_describe(const Net *net, const Module *m, char *buf, size_t size) {
  const char *model = m->model >= 0 ? net->models[m->model].name : "";
  switch (m->kind) {
    case MOD_IDENTITY: snprintf(buf, size, "identity"); break;
    case MOD_LINEAR:
      snprintf(buf, size, "linear(%ld -> %ld%s%s%s)", m->din, m->dout, m->bias ? ", bias" : "",
               m->init != INIT_NORMAL ? ", init " : "", m->init != INIT_NORMAL ? mod_init_name(m->init) : "");
      break;
    case MOD_MLP: snprintf(buf, size, "mlp(%ld -> %ld -> %ld)", m->din, m->hidden, m->dout); break;
    case MOD_DECODER: snprintf(buf, size, "decoder_layer(%s)", model); break;
    case MOD_GPT2_EDGE:
      snprintf(buf, size, "gpt2_block(%s%s)", model, m->unscaled ? ", unscaled" : "");
      break;
    case MOD_EMBED:
      if (m->prefix) snprintf(buf, size, "embed(%s, prefix %ld)", model, m->prefix);
      else snprintf(buf, size, "embed(%s)", model);
      break;
    case MOD_HEAD: snprintf(buf, size, "head(%s)", model); break;
    case MOD_CLASSIFY: snprintf(buf, size, "classify(%ld)", m->dout); break;
  }
}

void edge_describe(const Net *net, const Edge *e, char *buf, size_t size) {
  size_t n = 0;
  buf[0] = 0;
  if (e->type) {
    snprintf(buf, size, "%s", e->type);
    return;
  }
  if (e->n_mods == 0) snprintf(buf, size, "identity");
  for (int i = 0; i < e->n_mods && n < size; i++) {
    char one[128];
    module_describe(net, &e->mods[i], one, sizeof one);
    n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? " >> " : "", one);
  }
}

/* ---- stable edge names ------------------------------------------------------------------------ */

/* "TYPE.SRC+SRC->DST" into buf (size SEMA_MAX_EDGE_KEY + 1); "TYPE.eN" when that does not fit. */
static void edge_key_base(const Net *net, const Edge *e, char *buf) {
  const size_t size = SEMA_MAX_EDGE_KEY + 1;
  const char *type = e->type ? e->type : "edge";
  size_t n = (size_t)snprintf(buf, size, "%s.", type);
  for (int i = 0; i < e->n_src && n < size; i++)
    n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "+" : "",
                          end_name(net, e->src_kind == END_SUM ? END_VERTEX : e->src_kind, e->srcs[i]));
  if (n < size) n += (size_t)snprintf(buf + n, size - n, "->%s", end_name(net, e->dst_kind, e->dst));
  if (n + 4 >= size) snprintf(buf, size, "%s.e%d", type, e->id); /* room left for "#NN" keeps keys distinct */
}

static const Net *sort_net;
static int by_key_then_id(const void *a, const void *b) {
  const Edge *x = &sort_net->edges[*(const int *)a], *y = &sort_net->edges[*(const int *)b];
  int c = strcmp(x->key, y->key);
  return c ? c : (x->id > y->id) - (x->id < y->id);
}

void sema_edge_keys(Net *net) {
  char buf[SEMA_MAX_EDGE_KEY + 16];
  for (int i = 0; i < net->n_edges; i++) {
    edge_key_base(net, &net->edges[i], buf);
    net->edges[i].key = arena_strndup(net->arena, buf, strlen(buf));
  }
  int *order = arena_alloc(net->arena, sizeof(int) * (size_t)(net->n_edges ? net->n_edges : 1));
  for (int i = 0; i < net->n_edges; i++) order[i] = i;
  sort_net = net;
  qsort(order, (size_t)net->n_edges, sizeof *order, by_key_then_id); /* O(n log n): 262144 edges stay fast */
  int *rank = arena_alloc(net->arena, sizeof(int) * (size_t)(net->n_edges ? net->n_edges : 1));
  for (int i = 0; i < net->n_edges; i++)
    rank[order[i]] = i && !strcmp(net->edges[order[i]].key, net->edges[order[i - 1]].key) ? rank[order[i - 1]] + 1 : 1;
  for (int i = 0; i < net->n_edges; i++) {
    if (rank[i] == 1) continue;
    snprintf(buf, sizeof buf, "%s#%d", net->edges[i].key, rank[i]);
    net->edges[i].key = arena_strndup(net->arena, buf, strlen(buf));
  }
}
