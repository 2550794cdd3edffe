/* k_loss.c: softmax + cross-entropy (label smoothing, ignore index, loss weight, mean over valid rows) and
 * its gradient, fused and in place over the logits. Each row is read in one sweep that keeps an online
 * max, the sum of exponentials and the sum of logits (blocks of LOSS_BLOCK logits: the block's max first,
 * then its exponentials, while the block sits in L1), then written once with the gradient. */
#include <math.h>

#include "kernels.h"

#define LOSS_BLOCK 512 /* logits per online-softmax block */
#define LOSS_TASKS 256 /* at most this many row ranges (partial sums live on the stack) */

typedef struct row_stats {
  float lse;  /* log sum_j exp(x_j) */
  float sumx; /* sum_j x_j */
} row_stats;

static row_stats row_sweep(const float *x, int V) {
  float M = -INFINITY, s = 0.0f;
  lmn_vf sx = {0};
  for (int j0 = 0; j0 < V; j0 += LOSS_BLOCK) {
    int n = V - j0 < LOSS_BLOCK ? V - j0 : LOSS_BLOCK;
    const float *b = x + j0;
    lmn_vf mv = lmn_vset(-INFINITY);
    int j = 0;
    for (; j + LMN_VL <= n; j += LMN_VL) {
      lmn_vf v = lmn_vload(b + j);
      mv = lmn_vmax(v, mv);
      sx += v;
    }
    if (j < n) {
      mv = lmn_vmax(lmn_vload_part(b + j, n - j, -INFINITY), mv);
      sx += lmn_vload_part(b + j, n - j, 0.0f);
    }
    float bm = lmn_vhmax(mv);
    if (bm > M) { /* the running sum was relative to the old max */
      s *= expf(M - bm);
      M = bm;
    }
    lmn_vf e = {0};
    for (j = 0; j + LMN_VL <= n; j += LMN_VL) e += lmn_vexp(lmn_vload(b + j) - M);
    if (j < n) e += lmn_vexp(lmn_vload_part(b + j, n - j, -INFINITY) - M);
    s += lmn_vhsum(e);
  }
  row_stats r = {M + logf(s), lmn_vhsum(sx)};
  return r;
}

typedef struct loss_ctx {
  float *logits; /* NULL: forward only */
  const float *clogits;
  const int *targets;
  float *row_loss;
  int N, V, n_tasks;
  float eps, gscale; /* gradient scale weight / n_valid */
  double partial[LOSS_TASKS];
} loss_ctx;

static void loss_task(void *ctxp, int task, int thread) {
  (void)thread;
  loss_ctx *c = ctxp;
  int n0 = (int)((long)c->N * task / c->n_tasks), n1 = (int)((long)c->N * (task + 1) / c->n_tasks);
  int V = c->V;
  double acc = 0.0;
  for (int n = n0; n < n1; n++) {
    const float *x = c->clogits + (size_t)n * V;
    int y = c->targets[n];
    float loss = 0.0f;
    if (y >= 0) {
      row_stats st = row_sweep(x, V);
      loss = y < V ? (1.0f - c->eps) * (st.lse - x[y]) + c->eps * (st.lse - st.sumx / (float)V) : NAN;
      acc += loss;
      if (c->logits) { /* write pass: dx = gscale * (softmax - (1 - eps) onehot - eps / V) */
        float *d = c->logits + (size_t)n * V, g = c->gscale, off = c->eps / (float)V, lse = st.lse;
        float xy = y < V ? d[y] : 0.0f;
        int j = 0;
        for (; j + LMN_VL <= V; j += LMN_VL) lmn_vstore(d + j, (lmn_vexp(lmn_vload(d + j) - lse) - off) * g);
        if (j < V) lmn_vstore_part(d + j, (lmn_vexp(lmn_vload_part(d + j, V - j, 0.0f) - lse) - off) * g, V - j);
        if (y < V)
          d[y] = (expf(xy - lse) - off - (1.0f - c->eps)) * g;
        else
          memset(d, 0, (size_t)V * sizeof *d);
      }
    } else if (c->logits) {
      memset(c->logits + (size_t)n * V, 0, (size_t)V * sizeof(float));
    }
    if (c->row_loss) c->row_loss[n] = loss;
  }
  c->partial[task] = acc;
}

static float xent(float *logits, const float *clogits, const int *targets, int N, int V, float smoothing,
                  float weight, float *row_loss, int *n_valid, lmn_pool *pool) {
  int valid = 0;
  for (int n = 0; n < N; n++) valid += targets[n] >= 0;
  if (n_valid) *n_valid = valid;
  loss_ctx c;
  c.logits = logits;
  c.clogits = clogits;
  c.targets = targets;
  c.row_loss = row_loss;
  c.N = N;
  c.V = V;
  c.eps = smoothing;
  c.gscale = valid ? weight / (float)valid : 0.0f;
  c.n_tasks = N < LOSS_TASKS ? N : LOSS_TASKS;
  lmn_pool_run(pool, c.n_tasks, loss_task, &c);
  double sum = 0.0;
  for (int i = 0; i < c.n_tasks; i++) sum += c.partial[i]; /* fixed order: independent of thread count */
  return valid ? (float)(sum / valid) : 0.0f;
}

float lmn_xent_forward_backward(float *logits, const int *targets, int N, int V, float smoothing, float weight,
                                float *row_loss, int *n_valid, lmn_pool *pool) {
  return xent(logits, logits, targets, N, V, smoothing, weight, row_loss, n_valid, pool);
}

float lmn_xent_forward(const float *logits, const int *targets, int N, int V, float smoothing, float *row_loss,
                       int *n_valid, lmn_pool *pool) {
  return xent(NULL, logits, targets, N, V, smoothing, 0.0f, row_loss, n_valid, pool);
}
