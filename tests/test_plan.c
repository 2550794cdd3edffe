/* test_plan.c: the memory planner (compiler/plan.c) on hand-made and random lifetime sets: no two buffers
 * live at the same time overlap, the region never exceeds the sum of the sizes, disjoint lifetimes share
 * memory, no-buffers are skipped, and the result is deterministic. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "plan.h"

/* Checks every pair: overlapping lifetimes -> disjoint [at, at + size); every buffer inside the region. */
static int valid(const PlanBuf *b, int n, const long *at, long size) {
  long sum = 0;
  for (int i = 0; i < n; i++) {
    int is = b[i].size > 0 && b[i].lo >= 0 && b[i].hi >= b[i].lo;
    if (!is) {
      if (at[i] != -1) return 0;
      continue;
    }
    sum += b[i].size;
    if (at[i] < 0 || at[i] + b[i].size > size) return 0;
    for (int j = 0; j < i; j++) {
      if (at[j] < 0 || b[j].lo > b[i].hi || b[i].lo > b[j].hi) continue;
      if (at[i] < at[j] + b[j].size && at[j] < at[i] + b[i].size) return 0;
    }
  }
  return size <= sum;
}

static void test_by_hand(void) {
  PlanBuf b[] = {{10, 0, 1}, {10, 1, 2}, {10, 2, 3}, {5, 3, 3}, {0, 0, 9}, {7, -1, 4}};
  long at[6];
  long size = plan_offsets(b, 6, at);
  CU_ASSERT_EQUAL(at[0], 0);
  CU_ASSERT_EQUAL(at[1], 10);
  CU_ASSERT_EQUAL(at[2], 0);  /* buffer 0 is dead by time 2 */
  CU_ASSERT_EQUAL(at[3], 10); /* beside buffer 2, in buffer 1's old place */
  CU_ASSERT_EQUAL(at[4], -1); /* empty */
  CU_ASSERT_EQUAL(at[5], -1); /* no lifetime */
  CU_ASSERT_EQUAL(size, 20);
  CU_ASSERT(valid(b, 6, at, size));
}

static void test_empty(void) {
  long at[1] = {0};
  CU_ASSERT_EQUAL(plan_offsets(NULL, 0, at), 0);
}

/* Hundreds of random sets of up to 300 buffers, lifetimes short and long, sizes 1..1000. */
static void test_random(void) {
  srand(12345);
  for (int trial = 0; trial < 400; trial++) {
    int n = 1 + rand() % 300, span = 1 + rand() % 600;
    PlanBuf *b = malloc(sizeof(PlanBuf) * (size_t)n);
    long *at = malloc(sizeof(long) * (size_t)n), *again = malloc(sizeof(long) * (size_t)n);
    for (int i = 0; i < n; i++) {
      int lo = rand() % span, len = rand() % 4 == 0 ? rand() % span : rand() % 8;
      b[i] = (PlanBuf){rand() % 16 == 0 ? 0 : 1 + rand() % 1000, rand() % 32 == 0 ? -1 : lo, lo + len};
    }
    long size = plan_offsets(b, n, at);
    CU_ASSERT(size >= 0);
    CU_ASSERT(valid(b, n, at, size));
    CU_ASSERT_EQUAL(plan_offsets(b, n, again), size); /* deterministic */
    CU_ASSERT(memcmp(at, again, sizeof(long) * (size_t)n) == 0);
    free(b);
    free(at);
    free(again);
  }
}

/* All lifetimes disjoint: everything at offset 0, the region is the largest buffer. */
static void test_disjoint(void) {
  PlanBuf b[50];
  long at[50], largest = 0;
  for (int i = 0; i < 50; i++) {
    b[i] = (PlanBuf){1 + (i * 37) % 101, 2 * i, 2 * i + 1};
    if (b[i].size > largest) largest = b[i].size;
  }
  CU_ASSERT_EQUAL(plan_offsets(b, 50, at), largest);
  for (int i = 0; i < 50; i++) CU_ASSERT_EQUAL(at[i], 0);
}

/* All lifetimes overlapping: the region is the sum, buffers packed in order. */
static void test_all_live(void) {
  PlanBuf b[20];
  long at[20], sum = 0;
  for (int i = 0; i < 20; i++) b[i] = (PlanBuf){3 + i, 0, 100}, sum += 3 + i;
  CU_ASSERT_EQUAL(plan_offsets(b, 20, at), sum);
  CU_ASSERT(valid(b, 20, at, sum));
}

static CU_TestInfo tests[] = {{"hand-made lifetimes", test_by_hand},
                              {"no buffers", test_empty},
                              {"400 random lifetime sets: no overlap, bounded, deterministic", test_random},
                              {"disjoint lifetimes share one place", test_disjoint},
                              {"overlapping lifetimes are packed", test_all_live},
                              CU_TEST_INFO_NULL};

LMN_TEST_MAIN("memory planner", tests)
