/* threads.c: lmn_pool, a persistent pthread pool whose only operation is a parallel-for (see threads.h).
 * A run publishes (fn, ctx, n_tasks) and bumps an atomic generation counter; every thread (the caller too)
 * then claims task indices from one atomic counter until they run out, and the caller waits until every
 * worker has left the run. Runs come in quick succession when decoding (a few hundred per token, each a
 * few microseconds long), so a worker spins for a while (POOL_SPIN_NS) watching the generation before it
 * sleeps on a condition variable, and the caller spins on the count of busy workers: a run then costs well
 * under a microsecond of hand-over instead of a wake-up through the kernel. */
#include "threads.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#ifndef POOL_SPIN_NS
#define POOL_SPIN_NS 200000L /* how long an idle worker watches for the next run before sleeping */
#endif

struct lmn_pool {
  int n_threads; /* caller included */
  atomic_int split; /* the network's strategy: cut modules into tasks on this pool (see threads.h) */
  pthread_t *workers;
  int n_started;
  pthread_mutex_t mu;
  pthread_cond_t wake;         /* sleeping workers wait here for a new generation (or stop) */
  atomic_ulong generation;     /* bumped once per run (and to stop) */
  atomic_int sleepers;         /* workers waiting on wake */
  atomic_int stop;
  atomic_int busy;             /* workers still inside the current run */
  /* the current run, written before generation is bumped */
  lmn_task_fn fn;
  void *ctx;
  int n_tasks;
  atomic_int next;
};

typedef struct worker_arg {
  lmn_pool *pool;
  int thread;
} worker_arg;

static void drain(lmn_pool *p, lmn_task_fn fn, void *ctx, int n_tasks, int thread) {
  for (;;) {
    int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
    if (t >= n_tasks) return;
    fn(ctx, t, thread);
  }
}

static long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/* The generation after `seen`: spins for POOL_SPIN_NS (only while the pool splits: otherwise OpenBLAS's
 * threads want the cores between runs), then sleeps until a run (or stop) bumps it. */
static unsigned long wait_generation(lmn_pool *p, unsigned long seen) {
  unsigned long g;
  long t0 = 0, spin = atomic_load_explicit(&p->split, memory_order_relaxed) ? POOL_SPIN_NS : 0;
  for (int i = 0;; i++) {
    g = atomic_load_explicit(&p->generation, memory_order_acquire);
    if (g != seen) return g;
    CPU_RELAX();
    if ((i & 255) != 255) continue;
    if (!t0) t0 = now_ns();
    else if (now_ns() - t0 > spin) break;
  }
  pthread_mutex_lock(&p->mu);
  atomic_fetch_add(&p->sleepers, 1); /* seq_cst: the runner sees it, or this sees its generation */
  while ((g = atomic_load(&p->generation)) == seen) pthread_cond_wait(&p->wake, &p->mu);
  atomic_fetch_sub(&p->sleepers, 1);
  pthread_mutex_unlock(&p->mu);
  return g;
}

static void *worker_main(void *argp) {
  worker_arg a = *(worker_arg *)argp;
  free(argp);
  lmn_pool *p = a.pool;
  unsigned long seen = 0;
  for (;;) {
    seen = wait_generation(p, seen);
    if (atomic_load(&p->stop)) break;
    drain(p, p->fn, p->ctx, p->n_tasks, a.thread);
    atomic_fetch_sub_explicit(&p->busy, 1, memory_order_release);
  }
  return NULL;
}

/* Makes generation g + 1 visible and wakes the workers that sleep. */
static void bump(lmn_pool *p) {
  atomic_fetch_add(&p->generation, 1); /* seq_cst, paired with the sleepers count */
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
  }
}

lmn_pool *lmn_pool_create(int n_threads, lmn_err *err) {
  if (n_threads <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    n_threads = n > 0 ? (int)n : 1;
  }
  lmn_pool *p = calloc(1, sizeof *p);
  if (!p) {
    lmn_errf(err, "threads: pool of %d threads: out of memory", n_threads);
    return NULL;
  }
  p->n_threads = n_threads;
  atomic_init(&p->split, 1);
  atomic_init(&p->next, 0);
  atomic_init(&p->generation, 0);
  atomic_init(&p->sleepers, 0);
  atomic_init(&p->stop, 0);
  atomic_init(&p->busy, 0);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  if (n_threads > 1) {
    p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
    if (!p->workers) {
      lmn_errf(err, "threads: pool of %d threads: out of memory", n_threads);
      lmn_pool_destroy(p);
      return NULL;
    }
  }
  for (int i = 1; i < n_threads; i++) {
    worker_arg *a = malloc(sizeof *a);
    int rc = a ? 0 : ENOMEM;
    if (a) {
      a->pool = p;
      a->thread = i;
      rc = pthread_create(&p->workers[i - 1], NULL, worker_main, a);
      if (rc) free(a);
    }
    if (rc) {
      lmn_errf(err, "threads: starting worker %d of %d: %s", i, n_threads - 1, strerror(rc));
      lmn_pool_destroy(p);
      return NULL;
    }
    p->n_started++;
  }
  return p;
}

void lmn_pool_run(lmn_pool *p, int n_tasks, lmn_task_fn fn, void *ctx) {
  if (n_tasks <= 0) return;
  if (!p || p->n_threads == 1 || n_tasks == 1) {
    for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
    return;
  }
  p->fn = fn;
  p->ctx = ctx;
  p->n_tasks = n_tasks;
  atomic_store_explicit(&p->next, 0, memory_order_relaxed);
  atomic_store_explicit(&p->busy, p->n_started, memory_order_relaxed);
  bump(p);
  drain(p, fn, ctx, n_tasks, 0);
  for (int i = 0; atomic_load_explicit(&p->busy, memory_order_acquire) > 0; i++)
    if ((i & 1023) == 1023)
      sched_yield(); /* a worker was descheduled: let it run */
    else
      CPU_RELAX();
}

int lmn_pool_threads(const lmn_pool *p) { return p ? p->n_threads : 1; }

int lmn_threads_resolve(long threads) {
  if (threads > 0) return threads > LMN_MAX_THREADS ? LMN_MAX_THREADS : (int)threads;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > LMN_MAX_THREADS ? LMN_MAX_THREADS : (int)n;
}

void lmn_pool_set_split(lmn_pool *p, int split) {
  if (p) atomic_store(&p->split, split != 0);
}

int lmn_pool_splits(const lmn_pool *p) { return p && atomic_load(&p->split) && p->n_threads > 1; }

void lmn_pool_destroy(lmn_pool *p) {
  if (!p) return;
  atomic_store(&p->stop, 1);
  bump(p);
  for (int i = 0; i < p->n_started; i++) pthread_join(p->workers[i], NULL);
  pthread_cond_destroy(&p->wake);
  pthread_mutex_destroy(&p->mu);
  free(p->workers);
  free(p);
}
