/* threads.c: lmn_pool, a persistent pthread pool whose only operation is a parallel-for (see threads.h).
 * Workers sleep on a condition variable between runs; a run publishes (fn, ctx, n_tasks) under the mutex,
 * bumps a generation counter, and every thread (the caller too) then claims task indices from one atomic
 * counter until they run out. The caller waits until every worker has left the run. */
#include "threads.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lmn_pool {
  int n_threads; /* caller included */
  int split;     /* the network's strategy: cut modules into tasks on this pool (see threads.h) */
  pthread_t *workers;
  int n_started;
  pthread_mutex_t mu;
  pthread_cond_t wake; /* workers wait here for a new generation (or stop) */
  pthread_cond_t done; /* the caller waits here for busy == 0 */
  unsigned long generation;
  int stop;
  int busy; /* workers still inside the current run */
  /* the current run */
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

static void *worker_main(void *argp) {
  worker_arg a = *(worker_arg *)argp;
  free(argp);
  lmn_pool *p = a.pool;
  unsigned long seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
    if (p->stop) break;
    seen = p->generation;
    lmn_task_fn fn = p->fn;
    void *ctx = p->ctx;
    int n_tasks = p->n_tasks;
    pthread_mutex_unlock(&p->mu);
    drain(p, fn, ctx, n_tasks, a.thread);
    pthread_mutex_lock(&p->mu);
    if (--p->busy == 0) pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
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
  p->split = 1;
  atomic_init(&p->next, 0);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
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
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->ctx = ctx;
  p->n_tasks = n_tasks;
  atomic_store_explicit(&p->next, 0, memory_order_relaxed);
  p->busy = p->n_started;
  p->generation++;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  drain(p, fn, ctx, n_tasks, 0);
  pthread_mutex_lock(&p->mu);
  while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

int lmn_pool_threads(const lmn_pool *p) { return p ? p->n_threads : 1; }

int lmn_threads_resolve(long threads) {
  if (threads > 0) return threads > LMN_MAX_THREADS ? LMN_MAX_THREADS : (int)threads;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > LMN_MAX_THREADS ? LMN_MAX_THREADS : (int)n;
}

void lmn_pool_set_split(lmn_pool *p, int split) {
  if (p) p->split = split != 0;
}

int lmn_pool_splits(const lmn_pool *p) { return p && p->split && p->n_threads > 1; }

void lmn_pool_destroy(lmn_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->n_started; i++) pthread_join(p->workers[i], NULL);
  pthread_cond_destroy(&p->done);
  pthread_cond_destroy(&p->wake);
  pthread_mutex_destroy(&p->mu);
  free(p->workers);
  free(p);
}
