/* plan.c: first-fit placement of buffers with lifetimes (plan.h). Buffers are placed in order of their
 * first use; each goes at the lowest offset that does not overlap a placed buffer live at the same time.
 * O(n^2 log n) in the worst case, n log n when few lifetimes overlap. */
#include "plan.h"

#include <stdlib.h>

typedef struct Span {
  long at, end;
} Span;

static int by_at(const void *a, const void *b) {
  const Span *x = a, *y = b;
  return x->at < y->at ? -1 : x->at > y->at;
}

/* Placement order: by first use, then index. */
typedef struct Key {
  int lo, index;
} Key;

static int by_lo(const void *a, const void *b) {
  const Key *x = a, *y = b;
  if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static int live(const PlanBuf *b) { return b->size > 0 && b->lo >= 0 && b->hi >= b->lo; }

/* The lowest offset for a buffer of `size` among the sorted busy spans. */
static long lowest_gap(const Span *busy, int n, long size) {
  long at = 0;
  for (int k = 0; k < n; k++) {
    if (busy[k].at >= at + size) break; /* the gap before this span fits */
    if (busy[k].end > at) at = busy[k].end;
  }
  return at;
}

long plan_offsets(const PlanBuf *bufs, int n, long *at) {
  Key *order = malloc(sizeof(Key) * (size_t)(n > 0 ? n : 1));
  Span *busy = malloc(sizeof(Span) * (size_t)(n > 0 ? n : 1));
  if (!order || !busy) {
    free(order);
    free(busy);
    return -1;
  }
  int m = 0;
  for (int i = 0; i < n; i++) {
    at[i] = -1;
    if (live(&bufs[i])) order[m++] = (Key){bufs[i].lo, i};
  }
  qsort(order, (size_t)m, sizeof(Key), by_lo);
  long size = 0;
  for (int k = 0; k < m; k++) {
    int i = order[k].index, nb = 0;
    const PlanBuf *b = &bufs[i];
    for (int j = 0; j < k; j++) {
      const PlanBuf *o = &bufs[order[j].index];
      if (o->lo <= b->hi && b->lo <= o->hi) busy[nb++] = (Span){at[order[j].index], at[order[j].index] + o->size};
    }
    qsort(busy, (size_t)nb, sizeof(Span), by_at);
    at[i] = lowest_gap(busy, nb, b->size);
    if (at[i] + b->size > size) size = at[i] + b->size;
  }
  free(order);
  free(busy);
  return size;
}
