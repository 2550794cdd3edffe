/* sema_names.c: the names of semantic analysis: a hash map from names to indices, the symbol table built
 * on it (one namespace for models, edge types, vertices, outputs, losses and layers groups), the names
 * whose definition failed, and the "unknown name" diagnostics with their did-you-mean. Lookups cost O(1)
 * so that a file of 100,000 statements checks in linear time. */
#include <stdio.h>
#include <string.h>

#include "sema_int.h"

void *grow(Arena *a, void *items, int n, int *cap, size_t elem) {
  if (n < *cap) return items;
  if (*cap > (1 << 29)) out_of_memory(a->file);
  int ncap = *cap ? *cap * 2 : 8;
  void *p = arena_alloc(a, elem * (size_t)ncap);
  if (*cap) memcpy(p, items, elem * (size_t)*cap);
  *cap = ncap;
  return p;
}

/* ---- the hash map --------------------------------------------------------------------------------- */

static unsigned long name_hash(const char *s, size_t n) {
  unsigned long h = 14695981039346656037ul; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ul;
  return h;
}

/* The slot of the first n bytes of `key` in a map (its own slot, or the empty one where it would go). */
static int map_slot(const NameMap *m, const char *key, size_t n) {
  int mask = m->cap - 1, i = (int)(name_hash(key, n) & (unsigned long)mask);
  while (m->keys[i] && (strncmp(m->keys[i], key, n) != 0 || m->keys[i][n] != 0)) i = (i + 1) & mask;
  return i;
}

static int map_get_n(const NameMap *m, const char *key, size_t n) {
  if (!m->cap) return -1;
  int i = map_slot(m, key, n);
  return m->keys[i] ? m->vals[i] : -1;
}

int map_get(const NameMap *m, const char *key) { return map_get_n(m, key, strlen(key)); }

void map_put(Arena *a, NameMap *m, const char *key, int val) {
  if (2 * (m->n + 1) > m->cap) { /* at most half full */
    NameMap bigger = {.cap = m->cap ? 2 * m->cap : 64};
    if (bigger.cap > (1 << 30)) out_of_memory(a->file);
    bigger.keys = arena_alloc(a, sizeof *bigger.keys * (size_t)bigger.cap);
    bigger.vals = arena_alloc(a, sizeof *bigger.vals * (size_t)bigger.cap);
    for (int i = 0; i < m->cap; i++)
      if (m->keys[i]) map_put(a, &bigger, m->keys[i], m->vals[i]);
    *m = bigger;
  }
  int i = map_slot(m, key, strlen(key));
  if (!m->keys[i]) m->n++;
  m->keys[i] = key;
  m->vals[i] = val;
}

/* ---- symbols -------------------------------------------------------------------------------------- */

const char *sym_kind_name(SymKind kind) {
  static const char *const names[] = {"model", "edge type", "vertex", "output", "loss", "layers group"};
  return names[kind];
}

const char *sym_kind_article(SymKind kind) {
  static const char *const names[] = {"a model",   "an edge type", "a vertex",
                                      "an output", "a loss",       "a layers group"};
  return names[kind];
}

Sym *sym_find(Sema *s, const char *name) {
  int i = map_get(&s->sym_map, name);
  return i < 0 ? NULL : &s->syms[i];
}

static const char *const reserved_names[] = {
    "tokens",     "labels", "next", "identity", "linear",        "mlp",  "decoder_layer",
    "gpt2_block", "embed",  "head", "classify", "cross_entropy", "gguf", "safetensors"};

int sym_reserved(const char *name) {
  for (size_t i = 0; i < sizeof reserved_names / sizeof *reserved_names; i++)
    if (strcmp(name, reserved_names[i]) == 0) return 1;
  return 0;
}

void remember_failed(Sema *s, const char *name) { map_put(s->arena, &s->failed, name, 1); }

int failed_name_quiet(const Sema *s, const char *name) { return map_get(&s->failed, name) >= 0; }

Sym *sym_define(Sema *s, const char *name, SymKind kind, int index, Loc at) {
  if (sym_reserved(name)) {
    diag_error(s->diag, at, "'%s' is a reserved name and cannot name %s", name, sym_kind_article(kind));
    remember_failed(s, name);
    return NULL;
  }
  Sym *old = sym_find(s, name);
  if (old) {
    diag_error(s->diag, at, "redefinition of '%s'", name);
    diag_note(s->diag, old->at, "'%s' was first defined here (%s)", name, sym_kind_article(old->kind));
    remember_failed(s, name);
    return NULL;
  }
  GROW(s, s->syms, s->n_syms, s->cap_syms);
  map_put(s->arena, &s->sym_map, name, s->n_syms);
  Sym *sym = &s->syms[s->n_syms++];
  *sym = (Sym){name, kind, index, at, 0};
  return sym;
}

void wrong_kind(Sema *s, const Sym *sym, Loc at, const char *what) {
  if (failed_name_quiet(s, sym->name)) return;
  diag_error(s->diag, at, "'%s' is %s, not %s", sym->name, sym_kind_article(sym->kind), what);
  diag_note(s->diag, sym->at, "'%s' is defined here", sym->name);
  if (sym->kind == SYM_VERTEX && sym->index >= 0 && !strcmp(what, "a model"))
    diag_hint(s->diag, "vertex '%s' calls model '%s'", sym->name,
              s->net->models[s->net->vertices[sym->index].model].name);
}

/* ---- unknown names -------------------------------------------------------------------------------- */

/* The value of a run of digits, saturated far above any layer count. */
static int digits_value(const char *p, size_t n) {
  long v = 0;
  for (size_t i = 0; i < n; i++) v = v > 100000000 ? v : v * 10 + (p[i] - '0');
  return (int)v;
}

/* The vertices of a `layers` group NAME are NAME<layer>_<index>: the group a name is shaped for (the first
 * defined, when the group name itself may end in digits), or NULL. */
static const LayerGroup *layer_group_of(const Sema *s, const char *name, int *layer, int *index) {
  size_t n = strlen(name), e = n, u, d;
  while (e > 0 && name[e - 1] >= '0' && name[e - 1] <= '9') e--;
  if (e == n || e == 0 || name[e - 1] != '_') return NULL;
  u = e - 1; /* the '_' */
  for (d = u; d > 0 && name[d - 1] >= '0' && name[d - 1] <= '9'; d--) {}
  const LayerGroup *best = NULL;
  int best_index = -1;
  for (size_t k = d > 0 ? d : 1; k < u; k++) { /* the group name is name[0, k) */
    int i = map_get_n(&s->sym_map, name, k);
    if (i < 0 || s->syms[i].kind != SYM_LAYERS || s->syms[i].index < 0) continue;
    if (best && s->syms[i].index >= best_index) continue;
    best = &s->groups[s->syms[i].index];
    best_index = s->syms[i].index;
    *layer = digits_value(name + k, u - k);
  }
  if (best) *index = digits_value(name + e, n - e);
  return best;
}

/* A vertex name shaped like one of a layers group's: 0 when it is not, 1 when the group had errors (nothing
 * to say), 2 after reporting it. */
static int unknown_layer_vertex(Sema *s, const char *name, Loc at) {
  int layer, index;
  const LayerGroup *grp = layer_group_of(s, name, &layer, &index);
  if (!grp) return 0;
  if (!grp->count) return 1;
  diag_error(s->diag, at, "layers '%s' has no vertex '%s'", grp->name, name);
  if (layer >= 0 && layer < grp->n_layers)
    diag_hint(s->diag, "layer %d of '%s' holds %d vertices: %s%d_0 to %s%d_%d", layer, grp->name,
              grp->count[layer], grp->name, layer, grp->name, layer, grp->count[layer] - 1);
  else
    diag_hint(s->diag, "'%s' has %d layers: %s0_* to %s%d_*", grp->name, grp->n_layers, grp->name, grp->name,
              grp->n_layers - 1);
  return 2;
}

static SymKind stmt_sym_kind(StmtKind k) {
  return k == ST_MODEL ? SYM_MODEL : k == ST_EDGE ? SYM_EDGE_TYPE : k == ST_VERTEX ? SYM_VERTEX : SYM_LAYERS;
}

/* A declaration of `name` further down the file than `at`, or NULL. A scan of the program, but only on the
 * way to an error, of which there are at most DIAG_MAX_ERRORS. */
static const NameRef *declared_later(const Sema *s, const char *name, Loc at, SymKind *kind) {
  for (int i = 0; s->prog && i < s->prog->stmts.n; i++) {
    const Stmt *st = s->prog->stmts.items[i];
    if (st->at.line < at.line || (st->at.line == at.line && st->at.col <= at.col)) continue;
    *kind = stmt_sym_kind(st->kind);
    if (st->kind == ST_VERTEX) {
      for (int j = 0; j < st->names.n; j++) {
        const NameRef *n = st->names.items[j];
        if (!strcmp(n->name, name)) return n;
      }
    } else if (st->kind != ST_CHAIN && st->kind != ST_LOSS && st->kind != ST_NETWORK &&
               st->kind != ST_AGGREGATE && !strcmp(st->name.name, name)) {
      return &st->name;
    }
  }
  return NULL;
}

/* The symbol of one of the given kinds nearest to `name` (as closest_name() measures), or NULL. */
static const char *closest_sym(const Sema *s, const char *name, unsigned kinds, int *dist) {
  int cap = strlen(name) < 4 ? 1 : 2;
  const char *best = NULL;
  *dist = cap + 1;
  for (int i = 0; i < s->n_syms; i++) {
    const char *cand = s->syms[i].name;
    if (!(kinds & KIND(s->syms[i].kind)) || !strcmp(cand, name)) continue;
    int d = edit_distance(name, cand, cap);
    if (d < *dist) *dist = d, best = cand;
  }
  return best;
}

int unknown_name(Sema *s, const char *what, const char *name, Loc at, unsigned kinds,
                 const char *const *extra, int n_extra) {
  if (diag_stopped(s->diag) || failed_name_quiet(s, name)) return 0;
  int layered = kinds & KIND(SYM_VERTEX) ? unknown_layer_vertex(s, name, at) : 0;
  if (layered) return layered == 2;
  SymKind kind;
  const NameRef *later = declared_later(s, name, at, &kind);
  if (later && (kinds & KIND(kind))) {
    diag_error(s->diag, at, "%s '%s' is used before its declaration", sym_kind_name(kind), name);
    diag_note(s->diag, later->at, "'%s' is declared here", name);
    diag_hint(s->diag, "move the declaration of '%s' above its first use", name);
    return 1;
  }
  if (later) {
    diag_error(s->diag, at, "'%s' is %s, not %s %s", name, sym_kind_article(kind),
               strchr("aeiou", what[0]) ? "an" : "a", what);
    diag_note(s->diag, later->at, "'%s' is declared here", name);
    return 1;
  }
  int dist;
  const char *best = closest_sym(s, name, kinds, &dist);
  const char *word = closest_name(name, extra, n_extra);
  if (word && (!best || edit_distance(name, word, dist) < dist)) best = word;
  if (best) diag_error(s->diag, at, "unknown %s '%s'; did you mean '%s'?", what, name, best);
  else diag_error(s->diag, at, "unknown %s '%s'", what, name);
  return 1;
}

void unknown_word(Sema *s, Loc at, const char *what, const char *word, const char *const *words, int n) {
  const char *best = closest_name(word, words, n);
  if (best) diag_error(s->diag, at, "unknown %s '%s'; did you mean '%s'?", what, word, best);
  else diag_error(s->diag, at, "unknown %s '%s'", what, word);
}
