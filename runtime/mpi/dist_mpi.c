/* dist_mpi.c: the collectives of dist.h on MPI (OpenMPI from Debian), built by `make` into
 * lib/liblmn_mpi.a when mpicc is there and linked only by `make MPI=1` of a generated Makefile.
 * The gradients go in buckets (train.c cuts them), each sent while the backward pass goes on. Every
 * collective is non-blocking and waited for by polling, with a timeout (LMN_MPI_TIMEOUT seconds, 600 by
 * default): a peer that died or hangs ends the job with a message instead of a hang. Errors come back as
 * return codes (MPI_ERRORS_RETURN), and a rank whose run fails aborts the whole job. */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <stdlib.h>
#include <time.h>

#include "dist.h"
#include "driver.h"
#include "progress.h"

#define MAX_BUCKETS 256 /* in flight at once; one more waits for those first */

static double waited; /* seconds in waits since the last wait_s() */

static double timeout_s(void) {
  const char *t = getenv("LMN_MPI_TIMEOUT");
  double v = t ? strtod(t, NULL) : 0.0;
  return v > 0.0 ? v : 600.0;
}

static int mpi_fail(int code, const char *what, lmn_err *err) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
  text[len] = '\0';
  return lmn_errf(err, "rank %d: %s failed: %s", lmn_dist_rank(), what, len ? text : "MPI error");
}

/* Waits for n requests, polling; fails after the timeout (a rank that died or stopped answering). */
static int wait_all(MPI_Request *req, int n, const char *what, lmn_err *err) {
  double t0 = lmn_clock_s(), limit = timeout_s();
  for (;;) {
    int done = 0, rc = MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, what, err);
    if (done) break;
    if (lmn_clock_s() - t0 > limit) {
      waited += lmn_clock_s() - t0;
      return lmn_errf(err, "rank %d: %s: no answer from the other ranks in %.0f s (LMN_MPI_TIMEOUT)",
                      lmn_dist_rank(), what, limit);
    }
    struct timespec pause = {0, 20000}; /* 20 us */
    nanosleep(&pause, NULL);
  }
  waited += lmn_clock_s() - t0;
  return 0;
}

/* One collective just started (rc its start's status), waited for. */
static int wait_one(int rc, MPI_Request *req, const char *what, lmn_err *err) {
  return rc != MPI_SUCCESS ? mpi_fail(rc, what, err) : wait_all(req, 1, what, err);
}

static int sum_doubles(double *v, int n, lmn_err *err) {
  MPI_Request req;
  return wait_one(MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &req), &req,
                  "a sum of numbers", err);
}

/* Buckets in flight: started by sum_start, moved along by progress, completed by sum_finish. */
static MPI_Request pending[MAX_BUCKETS];
static int n_pending;

static int sum_finish(lmn_err *err) {
  int rc = n_pending ? wait_all(pending, n_pending, "the gradient sums", err) : 0;
  n_pending = 0;
  return rc;
}

static int sum_start(float *v, size_t n, lmn_err *err) {
  for (size_t at = 0; at < n;) { /* a bucket past INT_MAX floats goes in pieces */
    size_t len = n - at < (size_t)1 << 30 ? n - at : (size_t)1 << 30;
    if (n_pending == MAX_BUCKETS && sum_finish(err)) return -1;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, v + at, (int)len, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                            &pending[n_pending]);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "a gradient sum", err);
    n_pending++;
    at += len;
  }
  return 0;
}

static int progress(lmn_err *err) {
  int done = 0, rc = n_pending ? MPI_Testall(n_pending, pending, &done, MPI_STATUSES_IGNORE) : MPI_SUCCESS;
  if (rc != MPI_SUCCESS) return mpi_fail(rc, "the gradient sums", err);
  if (done) n_pending = 0;
  return 0;
}

static int gather(const void *mine, void *all, size_t bytes, lmn_err *err) {
  MPI_Request req;
  return wait_one(MPI_Iallgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD, &req),
                  &req, "a gather", err);
}

static int bcast(void *buf, size_t bytes, lmn_err *err) {
  MPI_Request req;
  return wait_one(MPI_Ibcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD, &req), &req, "a broadcast", err);
}

static double wait_s(void) {
  double w = waited;
  waited = 0.0;
  return w;
}

int lmn_mpi_main(int argc, char **argv, const lmn_net_desc *desc) {
  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return 2;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  static lmn_dist table = {0, 1, sum_doubles, sum_start, progress, sum_finish, gather, bcast, wait_s};
  MPI_Comm_rank(MPI_COMM_WORLD, &table.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &table.size);
  lmn_dist_set(&table);
  int rc = lmn_main(argc, argv, desc);
  /* a failed rank ends the job (the others may wait for it); an interrupted run (128 + signal) stops on
   * every rank after the same step (train.c), and rank 0 writes its checkpoint before they finalize */
  if (rc != 0 && rc < 128 && table.size > 1) MPI_Abort(MPI_COMM_WORLD, rc);
  MPI_Finalize();
  return rc;
}
