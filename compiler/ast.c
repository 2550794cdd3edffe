/* ast.c: the arena behind the syntax tree and small constructors. */
#include "ast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ArenaBlock {
  struct ArenaBlock *next;
  size_t used, cap;
  max_align_t data[];
} ArenaBlock;

_Noreturn void out_of_memory(const char *file) {
  if (file) fprintf(stderr, "lmnc: %s: out of memory\n", file);
  else fprintf(stderr, "lmnc: out of memory\n");
  exit(2);
}

void *arena_alloc(Arena *a, size_t size) {
  if (size > ((size_t)1 << 40)) out_of_memory(a->file);
  size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
  ArenaBlock *b = a->head;
  if (!b || b->cap - b->used < size) {
    size_t cap = size > 65536 ? size : 65536;
    b = malloc(sizeof(ArenaBlock) + cap);
    if (!b) out_of_memory(a->file);
    b->next = a->head;
    b->used = 0;
    b->cap = cap;
    a->head = b;
  }
  void *p = (char *)b->data + b->used;
  b->used += size;
  memset(p, 0, size);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

void arena_free(Arena *a) {
  while (a->head) {
    ArenaBlock *next = a->head->next;
    free(a->head);
    a->head = next;
  }
}

void plist_push(Arena *a, PtrList *l, void *item) {
  if (l->n == l->cap) {
    if (l->cap > (1 << 29)) out_of_memory(a->file);
    int cap = l->cap ? l->cap * 2 : 4;
    void **items = arena_alloc(a, sizeof(void *) * (size_t)cap);
    if (l->n) memcpy(items, l->items, sizeof(void *) * (size_t)l->n);
    l->items = items;
    l->cap = cap;
  }
  l->items[l->n++] = item;
}

Stmt *stmt_new(Program *p, StmtKind kind, Loc at) {
  Stmt *s = arena_alloc(&p->arena, sizeof *s);
  s->kind = kind;
  s->at = at;
  plist_push(&p->arena, &p->stmts, s);
  return s;
}

const char *stmt_kind_name(StmtKind kind) {
  static const char *const names[] = {"network", "model", "edge", "vertex", "layers", "chain", "aggregate", "loss"};
  return names[kind];
}
