/* sema_int.h: state shared by the files of semantic analysis (sema.c: declarations and models,
 * sema_edges.c: modules and chains, sema_graph.c: losses and whole-graph checks). */
#ifndef LMNC_SEMA_INT_H
#define LMNC_SEMA_INT_H

#include "sema.h"

typedef enum { SYM_MODEL, SYM_EDGE_TYPE, SYM_VERTEX, SYM_OUTPUT, SYM_LOSS, SYM_LAYERS } SymKind;

typedef struct Sym {
  const char *name;
  SymKind kind;
  int index;   /* into the Net array of its kind; for SYM_EDGE_TYPE into Sema.types */
  Loc at;
  int used;
} Sym;

typedef struct EdgeType {
  const char *name;
  Loc at;
  Module *mods; /* templates: widths resolved per edge (din/dout -1 = from the incoming width) */
  int n_mods;
} EdgeType;

typedef struct Sema {
  Net *net;
  Arena *arena;
  Diag *diag;
  const char *dir;
  Sym *syms;
  int n_syms, cap_syms;
  EdgeType *types;
  int n_types, cap_types;
  int cap_models, cap_vertices, cap_edges, cap_outputs, cap_losses;
  int seen_network, seen_aggregate;
} Sema;

/* Grows an arena array of `elem` bytes so that index n fits. */
void *grow(Arena *a, void *items, int n, int *cap, size_t elem);
#define GROW(s, arr, n, cap) ((arr) = grow((s)->arena, (arr), (n), &(cap), sizeof *(arr)))

Sym *sym_find(Sema *s, const char *name);
/* Defines a name; on redefinition reports an error with a note at the first one and returns NULL. */
Sym *sym_define(Sema *s, const char *name, SymKind kind, int index, Loc at);
const char *sym_kind_name(SymKind kind);
/* Reports "unknown WHAT 'name'" with a did-you-mean over the symbols of the given kinds (bit mask). */
void unknown_name(Sema *s, const char *what, const char *name, Loc at, unsigned kinds, const char *const *extra,
                  int n_extra);
#define KIND(k) (1u << (k))

int sema_edge_type(Sema *s, const Stmt *st);
int sema_chain(Sema *s, const Stmt *st);
/* Adds an edge src -> dst (vertex indices) made of the given edge expression (layers sugar). */
void sema_add_layer_edge(Sema *s, int src, int dst, const EdgeExpr *ex, Loc at);
void sema_losses(Sema *s, const Program *prog);
void sema_graph(Sema *s);

#endif
