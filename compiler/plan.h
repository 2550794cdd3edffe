/* plan.h: the memory planner: offsets for buffers with lifetimes in one region, so that no two buffers live
 * at the same time share a float. A pure function of its input; sched.c calls it for the training arena and
 * the decoding cache, and tests/test_plan.c checks it on random lifetime sets. */
#ifndef LMNC_PLAN_H
#define LMNC_PLAN_H

/* One buffer: size (any unit, e.g. floats per row), live over the times [lo, hi] inclusive. size <= 0 or
 * lo < 0: no buffer. */
typedef struct PlanBuf {
  long size;
  int lo, hi;
} PlanBuf;

/* First fit in order of lo (ties by index): each buffer at the lowest offset clear of every placed buffer
 * whose lifetime overlaps its own. Writes at[i] (-1 for no buffer) and returns the region's size, which
 * never exceeds the sum of the sizes. Returns -1 when out of memory. */
long plan_offsets(const PlanBuf *bufs, int n, long *at);

#endif
