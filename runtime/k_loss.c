/* k_loss.c: softmax + cross-entropy (label smoothing, ignore index, loss weight, mean over valid rows) and
 * its gradient, fused and in place over the logits. A row is swept once in blocks (each block's max, then
 * its exponentials relative to the running max, while the block sits in L1), keeping the running max, the
 * sum of exponentials and the sum of logits; the in-place kernel stores the exponentials over the logits
 * during that sweep, so the write pass needs one multiply per logit instead of a second exp. */
#include <math.h>

#include "k_isa.h"
#include "kernels.h"

#define LOSS_BLOCK 512 /* logits per online-softmax block (more when V > LOSS_BLOCK * LOSS_MAX_BLOCKS) */
#define LOSS_MAX_BLOCKS 1024 /* per-block reference maxima kept on the stack */
#define LOSS_TASKS 256       /* at most this many row ranges (their partial sums live in the context) */

typedef struct row_stats {
  float lse;  /* log sum_j exp(x_j) */
  float sumx; /* sum_j x_j */
} row_stats;

static int block_size(int V) {
  int bs = LOSS_BLOCK;
  if (V > LOSS_BLOCK * LOSS_MAX_BLOCKS) bs = (V + LOSS_MAX_BLOCKS - 1) / LOSS_MAX_BLOCKS;
  return (bs + LMN_VL - 1) / LMN_VL * LMN_VL;
}

/* One sweep over the row. With `store`, x[j] is replaced by exp(x[j] - ref[block of j]) and ref[] receives
 * each block's reference (the running max when the block was processed). */
LMN_CLONES
static row_stats row_sweep(float *x, const float *cx, int V, int store, float *ref) {
  int bs = block_size(V);
  float M = -INFINITY, s = 0.0f;
  lmn_vf sx = {0};
  for (int j0 = 0, blk = 0; j0 < V; j0 += bs, blk++) {
    int n = V - j0 < bs ? V - j0 : bs, j = 0;
    const float *b = cx + j0;
    lmn_vf mv = lmn_vset(-INFINITY);
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
    if (store) {
      float *w = x + j0;
      ref[blk] = M;
      for (j = 0; j + LMN_VL <= n; j += LMN_VL) {
        lmn_vf t = lmn_vexp_le88(lmn_vload(w + j) - M);
        lmn_vstore(w + j, t);
        e += t;
      }
      if (j < n) {
        lmn_vf t = lmn_vexp_le88(lmn_vload_part(w + j, n - j, -INFINITY) - M);
        lmn_vstore_part(w + j, t, n - j);
        e += t;
      }
    } else {
      for (j = 0; j + LMN_VL <= n; j += LMN_VL) e += lmn_vexp_le88(lmn_vload(b + j) - M);
      if (j < n) e += lmn_vexp_le88(lmn_vload_part(b + j, n - j, -INFINITY) - M);
    }
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

LMN_CLONES
static void loss_task(void *ctxp, int task, int thread) {
  (void)thread;
  loss_ctx *c = ctxp;
  int n0 = (int)((long)c->N * task / c->n_tasks), n1 = (int)((long)c->N * (task + 1) / c->n_tasks);
  int V = c->V, bs = block_size(V);
  float ref[LOSS_MAX_BLOCKS];
  double acc = 0.0;
  for (int n = n0; n < n1; n++) {
    const float *x = c->clogits + (size_t)n * V;
    float *d = c->logits ? c->logits + (size_t)n * V : NULL;
    int y = c->targets[n];
    float loss = 0.0f;
    if (y >= V) { /* a bad target: NaN loss, no gradient */
      loss = NAN;
      acc += loss;
      if (d) memset(d, 0, (size_t)V * sizeof *d);
    } else if (y >= 0) {
      float xy = x[y];
      row_stats st = row_sweep(d, x, V, d != NULL, ref);
      loss = (1.0f - c->eps) * (st.lse - xy) + c->eps * (st.lse - st.sumx / (float)V);
      acc += loss;
      if (d) { /* d holds exp(x - ref): dx = g * (softmax - eps / V - (1 - eps) onehot(y)) */
        float g = c->gscale, off = c->eps / (float)V * g;
        for (int j0 = 0, blk = 0; j0 < V; j0 += bs, blk++) {
          int m = V - j0 < bs ? V - j0 : bs, j = 0;
          float f = expf(ref[blk] - st.lse) * g, *w = d + j0;
          for (; j + LMN_VL <= m; j += LMN_VL) lmn_vstore(w + j, lmn_vload(w + j) * f - off);
          for (; j < m; j++) w[j] = w[j] * f - off;
        }
        d[y] -= (1.0f - c->eps) * g;
      }
    } else if (d) {
      memset(d, 0, (size_t)V * sizeof *d);
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

float lmn_xent_forward_backward(float *logits, const int *targets, int N, int V, float smoothing,
                                float weight, float *row_loss, int *n_valid, lmn_pool *pool) {
  return xent(logits, logits, targets, N, V, smoothing, weight, row_loss, n_valid, pool);
}

float lmn_xent_forward(const float *logits, const int *targets, int N, int V, float smoothing,
                       float *row_loss, int *n_valid, lmn_pool *pool) {
  return xent(NULL, logits, targets, N, V, smoothing, 0.0f, row_loss, n_valid, pool);
}
