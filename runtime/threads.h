/* threads.h: lmn_pool, a small persistent pthread pool with one operation, a parallel-for over task indices.
 * The kernels (attention, cross-entropy) and the generated code use it to spread independent work over cores.
 * No global state: every pool is an object the caller creates and destroys. */
#ifndef LMN_THREADS_H
#define LMN_THREADS_H

#include "lmn_error.h"

typedef struct lmn_pool lmn_pool;

/* One task of a parallel-for: `task` in [0, n_tasks), `thread` in [0, lmn_pool_threads(pool)) names the
 * thread running it (0 is the caller), so a task may use per-thread scratch `base + thread * size`. Two
 * tasks never run on the same thread at the same time. */
typedef void (*lmn_task_fn)(void *ctx, int task, int thread);

/* Creates a pool of n_threads threads in all, the calling thread included (n_threads - 1 workers are
 * started). n_threads <= 0 means one per online CPU. Returns NULL and fills err when a thread cannot start.
 * A new pool splits (see lmn_pool_splits) whenever it has more than one thread. */
lmn_pool *lmn_pool_create(int n_threads, lmn_err *err);

/* The threading strategy of the network that owns the pool, fixed by its creator and never read from
 * OpenBLAS's process-wide state:
 *   split (the default, and what `NAME train` and the embedding API use): the work of a module is cut into
 *     tasks (GEMMs by slices of rows or columns, row-wise kernels by chunks of rows) that run on the pool,
 *     each GEMM on one thread; OpenBLAS is then best left at one thread of its own;
 *   not split (`NAME eval` and `NAME generate`): a module's phases run one after the other on the caller,
 *     each GEMM spread over OpenBLAS's own threads.
 * Both run the same tasks cut the same way, so their results agree. lmn_pool_splits is 1 when the pool
 * splits and has more than one thread. A splitting pool's idle workers spin a little while between runs
 * (runs come every few microseconds when decoding); the others sleep at once. */
void lmn_pool_set_split(lmn_pool *pool, int split);
int lmn_pool_splits(const lmn_pool *pool);

/* Runs fn(ctx, task, thread) for every task in [0, n_tasks) and returns when all have finished. Tasks are
 * handed out in increasing index order, one at a time, to whichever thread is free (put the expensive ones
 * first). The caller takes part. pool == NULL (or a 1-thread pool) runs everything on the caller, thread 0.
 * One run at a time per pool: do not call it concurrently from two threads, nor from inside a task. */
void lmn_pool_run(lmn_pool *pool, int n_tasks, lmn_task_fn fn, void *ctx);

/* A thread count as configs and options give it: n > 0 is n (at most LMN_MAX_THREADS), 0 or less means one
 * per online CPU. */
#define LMN_MAX_THREADS 4096
int lmn_threads_resolve(long threads);

/* Number of threads a run may use (1 for NULL): the factor per-thread scratch sizes are multiplied by. */
int lmn_pool_threads(const lmn_pool *pool);

/* Stops and joins the workers and frees the pool. NULL is allowed. */
void lmn_pool_destroy(lmn_pool *pool);

#endif
