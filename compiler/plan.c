/* plan.c: first-fit placement of buffers with lifetimes (plan.h). Buffers are placed in order of their
 * first use; each goes at the lowest offset that does not overlap a placed buffer live at the same time.
 * O(n A) for at most A buffers live at once. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

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

/* Drops from active (sorted by offset) the buffers dead before time t; returns how many stay. */
static int drop_dead(const PlanBuf *bufs, int *active, int n_active, int t) {
  int kept = 0;
  for (int j = 0; j < n_active; j++)
    if (bufs[active[j]].hi >= t) active[kept++] = active[j];
  return kept;
}

/* The lowest offset for size clear of the active buffers (sorted by offset). */
static long lowest_free(const PlanBuf *bufs, const int *active, int n_active, const long *at, long size) {
  long lo = 0;
  for (int j = 0; j < n_active; j++) {
    long start = at[active[j]], end = start + bufs[active[j]].size;
    if (start >= lo + size) break; /* the gap before this buffer fits */
    if (end > lo) lo = end;
  }
  return lo;
}

/* Inserts buffer i into active, keeping it sorted by offset. */
static void insert_sorted(int *active, int n_active, const long *at, int i) {
  int a = 0, b = n_active;
  while (a < b) {
    int mid = (a + b) / 2;
    if (at[active[mid]] <= at[i]) a = mid + 1;
    else b = mid;
  }
  memmove(active + a + 1, active + a, sizeof(int) * (size_t)(n_active - a));
  active[a] = i;
}

long plan_offsets(const PlanBuf *bufs, int n, long *at) {
  Key *order = malloc(sizeof(Key) * (size_t)(n > 0 ? n : 1));
  int *active = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
  if (!order || !active) {
    free(order);
    free(active);
    return -1;
  }
  int m = 0, n_active = 0;
  for (int i = 0; i < n; i++) {
    at[i] = -1;
    if (live(&bufs[i])) order[m++] = (Key){bufs[i].lo, i};
  }
  qsort(order, (size_t)m, sizeof(Key), by_lo);
  long size = 0;
  for (int k = 0; k < m; k++) {
    int i = order[k].index;
    /* placed in order of lo, so a placed buffer overlaps this one exactly when it lives until its first use */
    if (k == 0 || order[k - 1].lo != order[k].lo) n_active = drop_dead(bufs, active, n_active, bufs[i].lo);
    at[i] = lowest_free(bufs, active, n_active, at, bufs[i].size);
    if (at[i] + bufs[i].size > size) size = at[i] + bufs[i].size;
    insert_sorted(active, n_active++, at, i);
  }
  free(order);
  free(active);
  return size;
}
