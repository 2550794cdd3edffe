/* sema_int.h: state shared by the files of semantic analysis (sema_names.c: names and the symbol table,
 * sema.c: declarations and models, sema_edges.c: modules and chains, sema_graph.c: losses and whole-graph
 * checks, sema_limits.c: the limits and the network's size). */
#ifndef LMNC_SEMA_INT_H
#define LMNC_SEMA_INT_H

#include "sema.h"

typedef enum { SYM_MODEL, SYM_EDGE_TYPE, SYM_VERTEX, SYM_OUTPUT, SYM_LOSS, SYM_LAYERS } SymKind;

typedef struct Sym {
  const char *name;
  SymKind kind;
  int index; /* into the Net array of its kind; for SYM_EDGE_TYPE into Sema.types */
  Loc at;
  int used;
} Sym;

typedef struct EdgeType {
  const char *name;
  Loc at;
  Module *mods; /* templates: widths resolved per edge (din/dout -1 = from the incoming width) */
  int n_mods;
} EdgeType;

/* A `layers NAME = [...]` group: its vertices are NAME<layer>_<index>. count == NULL when the statement
 * had errors: its vertex names are then known but unusable (no cascade of "unknown vertex"). */
typedef struct LayerGroup {
  const char *name;
  int n_layers;
  const int *count;
} LayerGroup;

/* A hash map from names (arena strings, not copied) to non-negative ints. */
typedef struct NameMap {
  const char **keys;
  int *vals;
  int n, cap;
} NameMap;

int map_get(const NameMap *m, const char *key); /* -1 when absent */
void map_put(Arena *a, NameMap *m, const char *key, int val);

typedef struct Sema {
  Net *net;
  Arena *arena;
  Diag *diag;
  const char *dir;
  const Program *prog;
  Sym *syms;
  int n_syms, cap_syms;
  NameMap sym_map; /* name -> index into syms */
  EdgeType *types;
  int n_types, cap_types;
  LayerGroup *groups;
  int n_groups, cap_groups;
  NameMap failed; /* names whose definition was rejected: later misuses of them stay quiet */
  int *origin; /* per module of the edge being built: the edge type it came from, or -1 */
  int cap_origin;
  int cap_models, cap_vertices, cap_edges, cap_outputs, cap_losses;
  int seen_network, seen_aggregate;
  Loc aggregate_at;
  int vertices_full, edges_full; /* the limit was reported */
  /* the network's size as vertices and edges are added (sema_limits.c) */
  long long params, blocks;
  int params_full, blocks_full;
  unsigned char *counted; /* per model: which of its weight sets are already counted (COUNTED_*) */
  int cap_counted;
  int unnamed_outputs;           /* chains that end in head() or classify() without a name */
} Sema;

/* Grows an arena array of `elem` bytes so that index n fits. */
void *grow(Arena *a, void *items, int n, int *cap, size_t elem);
#define GROW(s, arr, n, cap) ((arr) = grow((s)->arena, (arr), (n), &(cap), sizeof *(arr)))

Sym *sym_find(Sema *s, const char *name);
/* Defines a name; on redefinition reports an error with a note at the first one and returns NULL. */
Sym *sym_define(Sema *s, const char *name, SymKind kind, int index, Loc at);
const char *sym_kind_name(SymKind kind);
/* "a model", "an edge type", ... */
const char *sym_kind_article(SymKind kind);
int sym_reserved(const char *name);
/* Reports "'x' is a vertex, not a model" (with a note at its definition), unless x's own definition
 * failed: then the user's intent is unknown and the first error said enough. */
void wrong_kind(Sema *s, const Sym *sym, Loc at, const char *what);
/* Reports "unknown WHAT 'name'" with a did-you-mean over the symbols of the given kinds (bit mask); a name
 * declared further down is reported as used before its declaration, and a name whose definition failed
 * (or a vertex name of a `layers` group that had errors) is not reported at all. Returns 1 if it reported. */
int unknown_name(Sema *s, const char *what, const char *name, Loc at, unsigned kinds,
                 const char *const *extra, int n_extra);
/* Whether the definition of `name` was rejected (a redefinition or a reserved name); remember_failed()
 * records one. */
void remember_failed(Sema *s, const char *name);
int failed_name_quiet(const Sema *s, const char *name);
#define KIND(k) (1u << (k))
/* Reports "unknown WHAT 'word'" with a did-you-mean over a fixed list of n words. */
void unknown_word(Sema *s, Loc at, const char *what, const char *word, const char *const *words, int n);

int sema_edge_type(Sema *s, const Stmt *st);
int sema_chain(Sema *s, const Stmt *st);
/* Adds an edge src -> dst (vertex indices) made of the given edge expression (layers sugar). */
int sema_add_layer_edge(Sema *s, int src, int dst, const EdgeExpr *ex, Loc at);
void sema_losses(Sema *s, const Program *prog);
void sema_graph(Sema *s);

/* ---- limits (sema_limits.c) ---- */
/* Reports `value` beyond the limit `id` at `at`: "MESSAGE; the limit is MAX" and the limit's hint. Returns 1
 * when the value is beyond the limit (and 0, reporting nothing, when it is within). */
int over_limit(Sema *s, LimitId id, long long value, Loc at, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The parameters a model's file holds (decoder blocks, final norm, embedding, untied head), for
 * hyper-parameters within their limits. */
long long model_params(const lmn_hparams *hp);
/* Adds a vertex or a committed edge to the network's parameter and block counts, reporting the first that
 * goes past a limit. */
void count_vertex(Sema *s, const Vertex *v);
void count_edge(Sema *s, const Edge *e);

#endif
