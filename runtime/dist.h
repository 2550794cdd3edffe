/* dist.h: training over several processes (data parallelism): the few collectives a run needs, behind a
 * table that the MPI build fills in (runtime/mpi/dist_mpi.c, lib/liblmn_mpi.a, linked by a generated
 * Makefile's `make MPI=1`). liblmn itself links no MPI: without the table a run is one process.
 *
 * Every rank holds the whole network and draws every global batch of the single-process order; rank r
 * trains on its slice of rows (batch / ranks of them), the gradients of the trainable tensors are summed over
 * the ranks, and every rank applies the same AdamW update (docs/scaling.md). */
#ifndef LMN_DIST_H
#define LMN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "lmn_error.h"

typedef struct lmn_net_desc lmn_net_desc;

typedef struct lmn_dist {
  int rank, size;
  /* In-place sums over all ranks (every rank gets the same bits); 0, or -1 with err set (a peer that failed
   * or a collective past its timeout). sum_doubles waits for its result. */
  int (*sum_doubles)(double *v, int n, lmn_err *err);
  /* The gradients' sums: sum_start sends one bucket (v[0..n) must not change until sum_finish), progress
   * lets MPI move the buckets in flight along without waiting, sum_finish waits for all of them. */
  int (*sum_start)(float *v, size_t n, lmn_err *err);
  int (*progress)(lmn_err *err);
  int (*sum_finish)(lmn_err *err);
  /* all[r * bytes ..] = rank r's `mine` on every rank. */
  int (*gather)(const void *mine, void *all, size_t bytes, lmn_err *err);
  /* rank 0's buf[0..bytes) on every rank. */
  int (*bcast)(void *buf, size_t bytes, lmn_err *err);
  /* Seconds spent waiting in collectives since the last call (what the backward pass did not hide). */
  double (*wait_s)(void);
} lmn_dist;

/* The table in force (NULL: one process). Set once, before a run. */
void lmn_dist_set(const lmn_dist *d);
const lmn_dist *lmn_dist_get(void);
/* Rank and number of ranks (0 and 1 without a table). */
int lmn_dist_rank(void);
int lmn_dist_size(void);

/* The MPI build's entry point (lib/liblmn_mpi.a; a generated main.c calls it when compiled with -DLMN_MPI):
 * MPI_Init, the table, lmn_main, MPI_Finalize; a rank that fails aborts the job. */
int lmn_mpi_main(int argc, char **argv, const lmn_net_desc *desc);

#endif
