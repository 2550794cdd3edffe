/* ast.h: the syntax tree of a .lmn file as the parser builds it: a list of statements, each with the
 * source locations sema needs for diagnostics. All nodes live in one arena freed at once. */
#ifndef LMNC_AST_H
#define LMNC_AST_H

#include <stddef.h>

#include "diag.h"

typedef struct Arena {
  struct ArenaBlock *head;
  const char *file; /* the file being processed, named when memory runs out (may be NULL) */
} Arena;

/* Prints "lmnc: FILE: out of memory" (or "lmnc: out of memory" without a file) and exits with status 2. */
_Noreturn void out_of_memory(const char *file);
void *arena_alloc(Arena *a, size_t size); /* zeroed; exits through out_of_memory() if malloc fails */
char *arena_strndup(Arena *a, const char *s, size_t n);
void arena_free(Arena *a);

/* A growable array of pointers in the arena. */
typedef struct PtrList {
  void **items;
  int n, cap;
} PtrList;
void plist_push(Arena *a, PtrList *l, void *item);

typedef struct Call Call;

typedef enum { VAL_IDENT, VAL_INT, VAL_FLOAT, VAL_STRING, VAL_CALL } ValKind;
typedef struct Value {
  ValKind kind;
  Loc at;
  const char *s; /* identifier or string text */
  long i;        /* VAL_INT */
  double f;      /* VAL_INT and VAL_FLOAT */
  Call *call;    /* VAL_CALL */
} Value;

typedef enum { ARG_VALUE, ARG_KEYWORD, ARG_ARROW } ArgKind;
typedef struct Arg {
  ArgKind kind;
  Loc at;
  const char *key; /* ARG_KEYWORD: the keyword */
  Value a;         /* the value; ARG_ARROW: the left side */
  Value b;         /* ARG_ARROW: the right side */
} Arg;

/* `name` or `name(args)`: a module, a source, a function. */
struct Call {
  const char *name;
  Loc at;
  int has_parens;
  PtrList args; /* Arg* */
};

/* `m1 >> m2 >> ...` */
typedef struct EdgeExpr {
  Loc at;
  PtrList terms; /* Call* */
} EdgeExpr;

typedef enum {
  ST_NETWORK,
  ST_MODEL,
  ST_EDGE,
  ST_VERTEX,
  ST_LAYERS,
  ST_CHAIN,
  ST_AGGREGATE,
  ST_LOSS,
} StmtKind;

typedef struct Setting {
  const char *key;
  Loc at;
  int has_value;
  Value value;
} Setting;

typedef struct NameRef {
  const char *name;
  Loc at;
  const struct Value *arg; /* a vertex option's number (`last 5`), or NULL */
} NameRef;

typedef struct Stmt {
  StmtKind kind;
  Loc at;
  NameRef name;      /* network, model, edge, layers, loss name; aggregate mode */
  /* ST_MODEL */
  Call *source;      /* gguf("path") / safetensors("path") or NULL */
  NameRef arch;      /* architecture name or name == NULL */
  PtrList settings;  /* Setting* */
  int has_block;     /* `{ ... }` present */
  PtrList model_opts; /* Setting*: `KEY VALUE` after the source or block (`weights q8_0`), VAL_IDENT */
  /* ST_EDGE, ST_LAYERS (edges ...) */
  EdgeExpr *edge;
  /* ST_VERTEX, ST_LAYERS */
  PtrList names;     /* NameRef*: vertex names */
  NameRef model;     /* the model the vertices call */
  PtrList options;   /* NameRef*: shared / unshared / frozen / trainable */
  PtrList sizes;     /* Value*: ST_LAYERS layer sizes */
  /* ST_CHAIN: sources (NameRef*, joined by +), hops (EdgeExpr*), the last hop is the target */
  PtrList sources;
  PtrList hops;
  /* ST_LOSS */
  double weight;
  int has_weight;
  Loc weight_at;
  Call *loss;
} Stmt;

typedef struct Program {
  Arena arena;
  PtrList stmts; /* Stmt* */
} Program;

Stmt *stmt_new(Program *p, StmtKind kind, Loc at);
const char *stmt_kind_name(StmtKind kind);

#endif
