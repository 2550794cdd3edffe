/* qnet.c: frozen matrices of model files kept in their file's format (qnet.h): the layout of the f32 buffer
 * without them, taking them from a mapped GGUF file or converting them once, and the embedding and head
 * products of generated code on them. */
#include "qnet.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bgemm.h"
#include "dequant.h"
#include "gguf.h"
#include "kernels.h"
#include "lmn_file.h"
#include "quantize.h"

static size_t numel(const lmn_param_info *p) { return (size_t)p->rows * (size_t)(p->cols ? p->cols : 1); }

int lmn_param_kept(const lmn_net_desc *d, int i) {
  const lmn_param_info *p = &d->params[i];
  return d->n_models > 0 && p->from_file && !p->trainable && p->cols > 0 && p->model >= 0 && p->model < d->n_models;
}

size_t lmn_desc_f32_floats(const lmn_net_desc *d) {
  size_t n = d->n_floats;
  for (int i = 0; i < d->n_params; i++)
    if (lmn_param_kept(d, i)) n -= numel(&d->params[i]);
  return n;
}

static const lmn_param_info *sort_params; /* qsort has no context argument */
static int by_offset(const void *a, const void *b) {
  size_t x = sort_params[*(const int *)a].offset, y = sort_params[*(const int *)b].offset;
  return x < y ? -1 : x > y;
}

int lmn_qnet_plan(lmn_net *net, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  int n = d->n_params;
  net->poff = calloc((size_t)n + 1, sizeof *net->poff);
  net->qw = calloc((size_t)n + 1, sizeof *net->qw);
  net->owned = calloc((size_t)n + 1, sizeof *net->owned);
  net->files = calloc((size_t)d->n_models + 1, sizeof *net->files);
  int *order = malloc(((size_t)n + 1) * sizeof *order);
  if (!net->poff || !net->qw || !net->owned || !net->files || !order) {
    free(order);
    return lmn_errf(err, "%s: out of memory", d->name);
  }
  for (int i = 0; i < n; i++) order[i] = i;
  sort_params = d->params;
  qsort(order, (size_t)n, sizeof *order, by_offset);
  size_t gone = 0; /* floats of kept tensors below the current offset */
  for (int k = 0; k < n; k++) {
    int i = order[k];
    net->poff[i] = d->params[i].offset - gone;
    if (lmn_param_kept(d, i)) gone += numel(&d->params[i]);
  }
  free(order);
  net->n_f32 = d->n_floats - gone;
  return 0;
}

void lmn_qnet_free(lmn_net *net) {
  const lmn_net_desc *d = net->desc;
  for (int i = 0; net->owned && i < d->n_params; i++) free(net->owned[i]);
  for (int m = 0; net->files && m < d->n_models; m++) lmn_gguf_close(net->files[m]);
  free(net->owned);
  free(net->files);
  free(net->qw);
  free(net->poff);
  free(net->qwork);
}

/* The format model m keeps its frozen matrices in, given the file's: its `weights` choice, or the file's
 * own when the kernels read it, else f32. */
static uint32_t kept_type(const lmn_model_info *m, uint32_t file_type) {
  if (m->weights >= 0) return (uint32_t)m->weights;
  return lmn_q_supported(file_type) ? file_type : LMN_GGML_F32;
}

enum { CHECK_ROWS = 64 };

/* Every value of a kept tensor finite (dequantized a few rows at a time). */
static int check_rows(const lmn_qtensor *q, const char *path, const char *tensor, lmn_err *err) {
  float *buf = malloc((size_t)CHECK_ROWS * (size_t)q->cols * sizeof *buf);
  if (!buf) return lmn_errf(err, "%s: tensor '%s': out of memory", LMN_SHORT(path), tensor);
  int rc = 0;
  for (int64_t r = 0; r < q->rows && rc == 0; r += CHECK_ROWS) {
    int64_t nr = q->rows - r < CHECK_ROWS ? q->rows - r : CHECK_ROWS;
    lmn_q_dequant(buf, q->cols, q, r, nr, 0, q->cols);
    rc = lmn_check_finite(buf, (size_t)(nr * q->cols), path, tensor, err);
  }
  free(buf);
  return rc;
}

/* Converts rows of f32 values, given one row at a time by row_fn, into a new buffer of type. */
typedef int (*row_fn)(const void *src, int64_t r, float *dst, lmn_err *err);

static int convert(lmn_net *net, int i, uint32_t type, row_fn get, const void *src, const char *path,
                   lmn_err *err) {
  const lmn_param_info *p = &net->desc->params[i];
  lmn_qtensor q;
  if (lmn_qtensor_init(&q, type, p->rows, p->cols, NULL, err) != 0) return -1;
  if (!lmn_quantize_supported(type))
    return lmn_errf(err, "%s: tensor '%s': cannot convert to %s", LMN_SHORT(path), p->tensor,
                    lmn_ggml_type_name(type));
  uint8_t *buf = malloc(q.row_bytes * (size_t)q.rows + 1);
  float *row = malloc((size_t)p->cols * sizeof *row);
  int rc = buf && row ? 0 : lmn_errf(err, "%s: tensor '%s': out of memory", LMN_SHORT(path), p->tensor);
  for (int64_t r = 0; rc == 0 && r < q.rows; r++) {
    rc = get(src, r, row, err);
    if (rc == 0) rc = lmn_check_finite(row, (size_t)p->cols, path, p->tensor, err);
    if (rc == 0) lmn_quantize_row(type, row, buf + (size_t)r * q.row_bytes, p->cols);
  }
  free(row);
  if (rc != 0) {
    free(buf);
    return -1;
  }
  q.data = buf;
  net->owned[i] = buf;
  net->qw[i] = q;
  return 0;
}

/* Repacks kept tensor i into the X16 layout (qmat.h) when the kernels in use have 16-row matrix-vector
 * products for it: a copy of the same size replaces the blocks; when they were the mapped file's, its pages
 * are let go (decoding and every other product read the copy only), else the old buffer is freed. */
static int repack(lmn_net *net, int i, int mapped, const char *path, lmn_err *err) {
  lmn_qtensor *q = &net->qw[i];
  if (!lmn_q_x16_wanted() || !lmn_q_x16_possible(q)) return 0;
  const size_t n = (size_t)q->rows * q->row_bytes, page = (size_t)sysconf(_SC_PAGESIZE);
  uint8_t *buf = aligned_alloc(64, (n + 63) / 64 * 64);
  if (!buf)
    return lmn_errf(err, "%s: tensor '%s': out of memory repacking %zu bytes", LMN_SHORT(path),
                    net->desc->params[i].tensor, n);
  const uintptr_t a = (uintptr_t)q->data, first = (a + page - 1) / page * page, end = (a + n) / page * page;
  lmn_qtensor_repack(q, q, buf);
  if (mapped) { /* the file's blocks: their pages go back (read again from the file if ever touched) */
    if (end > first) madvise((void *)first, end - first, MADV_DONTNEED);
  } else {
    free(net->owned[i]); /* a converted copy (NULL for blocks read into the file's image, which stays) */
  }
  net->owned[i] = buf;
  return 0;
}

typedef struct gguf_rows {
  const lmn_gguf_tensor *t;
  const uint8_t *data;
  size_t row_bytes;
} gguf_rows;

static int gguf_row(const void *src, int64_t r, float *dst, lmn_err *err) {
  const gguf_rows *g = src;
  return lmn_dequant_row(g->t->type, g->data + (size_t)r * g->row_bytes, dst, g->t->ne[0], err);
}

int lmn_qnet_take_gguf(lmn_net *net, int i, const lmn_gguf *g, const char *path, int *mapped, lmn_err *err) {
  const lmn_param_info *p = &net->desc->params[i];
  const lmn_gguf_tensor *t = lmn_gguf_find_tensor(g, p->tensor);
  if (!t) return lmn_errf(err, "%s: tensor '%s' not found", LMN_SHORT(path), p->tensor);
  if (lmn_gguf_check_shape(g, t, p->cols, p->rows, err) != 0) return -1;
  if (!lmn_ggml_can_dequant(t->type))
    return lmn_errf(err, "%s: tensor '%s': type %s cannot be dequantised", LMN_SHORT(path), p->tensor,
                    lmn_ggml_type_name(t->type));
  const uint8_t *data = lmn_gguf_tensor_data(g, t, err);
  if (!data) return -1;
  uint32_t type = kept_type(&net->desc->models[p->model], t->type);
  if (type == t->type) { /* in place: the kernels read the file's blocks */
    if (lmn_qtensor_init(&net->qw[i], type, p->rows, p->cols, data, err) != 0) return -1;
    *mapped = 1;
    return check_rows(&net->qw[i], path, p->tensor, err) || repack(net, i, lmn_gguf_mapped(g), path, err) ? -1
                                                                                                          : 0;
  }
  uint64_t row_bytes;
  if (lmn_ggml_row_size(t->type, t->ne[0], &row_bytes, err) != 0) return -1;
  gguf_rows src = {t, data, (size_t)row_bytes};
  return convert(net, i, type, gguf_row, &src, path, err) || repack(net, i, 0, path, err) ? -1 : 0;
}

typedef struct f32_rows {
  const float *x;
  long cols;
} f32_rows;

static int f32_row(const void *src, int64_t r, float *dst, lmn_err *err) {
  (void)err;
  const f32_rows *f = src;
  memcpy(dst, f->x + (size_t)r * (size_t)f->cols, (size_t)f->cols * sizeof *dst);
  return 0;
}

int lmn_qnet_take_f32(lmn_net *net, int i, float *values, lmn_err *err) {
  const lmn_param_info *p = &net->desc->params[i];
  const lmn_model_info *m = &net->desc->models[p->model];
  uint32_t type = kept_type(m, LMN_GGML_F32);
  if (type == LMN_GGML_F32) {
    if (lmn_qtensor_init(&net->qw[i], type, p->rows, p->cols, values, err) != 0) return free(values), -1;
    net->owned[i] = values;
    return 0;
  }
  f32_rows src = {values, p->cols};
  int rc = convert(net, i, type, f32_row, &src, m->path, err) || repack(net, i, 0, m->path, err) ? -1 : 0;
  free(values);
  return rc;
}

int lmn_qnet_finish(lmn_net *net, lmn_err *err) {
  size_t per = 0;
  for (int i = 0; i < net->desc->n_params; i++) {
    if (!net->qw[i].data) continue;
    size_t w = lmn_q_matmul_work_floats(&net->qw[i], 1);
    if (w > per) per = w;
  }
  if (per == 0) return 0;
  if (per > SIZE_MAX / sizeof(float) / (size_t)net->n_threads)
    return lmn_errf(err, "%s: panel scratch overflows", net->desc->name);
  net->qwork = malloc(per * (size_t)net->n_threads * sizeof(float));
  if (!net->qwork) return lmn_errf(err, "%s: out of memory for the weight panels", net->desc->name);
  net->qwork_floats = per;
  return 0;
}

void lmn_net_param_rows(const lmn_net *net, int i, int64_t r0, int64_t nr, float *dst) {
  const lmn_param_info *p = &net->desc->params[i];
  if (net->qw[i].data) {
    lmn_q_dequant(dst, p->cols, &net->qw[i], r0, nr, 0, p->cols);
    return;
  }
  size_t w = (size_t)(p->cols ? p->cols : p->rows); /* a vector is one row */
  if (lmn_param_kept(net->desc, i)) { /* not loaded (yet): nothing to read */
    memset(dst, 0, (size_t)nr * w * sizeof *dst);
    return;
  }
  memcpy(dst, net->params + net->poff[i] + (size_t)r0 * w, (size_t)nr * w * sizeof *dst);
}

void lmn_qnet_bytes(const lmn_net *net, double bytes[64]) {
  memset(bytes, 0, 64 * sizeof *bytes);
  for (int i = 0; i < net->desc->n_params; i++)
    if (net->qw[i].data && net->qw[i].type < 64) bytes[net->qw[i].type] += (double)net->qw[i].row_bytes * (double)net->qw[i].rows;
}

/* ---- products for generated code ---- */

int lmn_net_embed(const lmn_net *net, int tok, int pos, float *out, const int *tokens, int B, int T, int C, int V,
                  int pos0) {
  const lmn_qtensor *qt = lmn_q(net, tok), *qp = lmn_q(net, pos);
  if (!qt && !qp) return lmn_embed_forward(out, tokens, lmn_w(net, tok), lmn_w(net, pos), B, T, C, V, pos0);
  int bad = 0;
  float prow[C];
  for (size_t n = 0; n < (size_t)B * (size_t)T; n++) {
    float *o = out + n * (size_t)C;
    int t = (int)(n % (size_t)T), id = tokens[n];
    if (id < 0 || id >= V) {
      bad++;
      memset(o, 0, (size_t)C * sizeof *o);
    } else {
      lmn_net_param_rows(net, tok, id, 1, o);
    }
    if (pos < 0) continue;
    const float *p = qp ? prow : lmn_w(net, pos) + (size_t)(pos0 + t) * (size_t)C;
    if (qp) lmn_q_dequant(prow, C, qp, pos0 + t, 1, 0, C);
    for (int j = 0; j < C; j++) o[j] += p[j];
  }
  return bad;
}

/* The head's forward (the logits) stays in f32 under `precision: bf16`: measured on the demo (3 seeds, 500
 * steps), a bf16 logits GEMM costs 1.7% of validation loss and an f32 one nothing measurable, while the
 * head's backward GEMMs in bf16 cost nothing measurable (bench/precision.md).
 * The f32 head's GEMMs as pool tasks cut by shape alone (so every pool, splitting or not, computes the same
 * bits): the forward by HEAD_COLS output columns, the input gradient by HEAD_ROWS of its rows (each task
 * reads all of W, but a split by columns would read all of dy, as large, in every task), the weight gradient
 * by HEAD_COLS rows of dW. One task each would leave all but one thread idle while training (OpenBLAS
 * then runs single-threaded) on what is often the largest GEMM of the network (vocabulary x width). */
#define HEAD_COLS 1024
#define HEAD_ROWS 128

typedef struct head_job {
  const float *x, *W, *dy;
  float *y, *dx, *dW;
  int N, in, out;
} head_job;

static int span(int total, int chunk, int task, int *first) {
  *first = task * chunk;
  return total - *first < chunk ? total - *first : chunk;
}
static void head_fwd_task(void *p, int task, int thread) { /* y[:, o0:o0+n] = x W[o0:o0+n]^T */
  const head_job *j = p;
  int o0, n = span(j->out, HEAD_COLS, task, &o0);
  (void)thread;
  lmn_gemm_as(LMN_PREC_F32, 0, 1, j->N, n, j->in, 1.0f, j->x, j->in, j->W + (size_t)o0 * j->in, j->in, 0.0f,
              j->y + o0, j->out);
}
static void head_dx_task(void *p, int task, int thread) { /* dx[r0:r0+n, :] += dy[r0:r0+n, :] W */
  const head_job *j = p;
  int r0, n = span(j->N, HEAD_ROWS, task, &r0);
  (void)thread;
  lmn_gemm(0, 0, n, j->in, j->out, 1.0f, j->dy + (size_t)r0 * j->out, j->out, j->W, j->in, 1.0f,
           j->dx + (size_t)r0 * j->in, j->in);
}
static void head_dw_task(void *p, int task, int thread) { /* dW[o0:o0+n, :] += dy[:, o0:o0+n]^T x */
  const head_job *j = p;
  int o0, n = span(j->out, HEAD_COLS, task, &o0);
  (void)thread;
  lmn_gemm(1, 0, n, j->in, j->N, 1.0f, j->dy + o0, j->out, j->x, j->in, 1.0f, j->dW + (size_t)o0 * j->in,
           j->in);
}
static int tasks_of(int total, int chunk) {
  return (total + chunk - 1) / chunk;
}

void lmn_net_linear_forward(const lmn_net *net, int w, float *y, const float *x, int N, int in, int out,
                            int decode) {
  const lmn_qtensor *q = lmn_q(net, w);
  if (!q && (N == 1 || in <= 0 || out <= 0 || N <= 0)) /* one row: OpenBLAS's sgemv (decoding) */
    lmn_linear_forward(y, x, lmn_w(net, w), NULL, N, in, out);
  else if (!q) {
    head_job j = {x, lmn_w(net, w), NULL, y, NULL, NULL, N, in, out};
    lmn_pool_run(net->pool, tasks_of(out, HEAD_COLS), head_fwd_task, &j);
  } else if (decode && N <= LMN_Q_MATVEC_ROWS)
    (net->q_f32act ? lmn_q_matvec_rows_f32act : lmn_q_matvec_rows)(y, q, x, N, net->pool);
  else
    lmn_q_matmul_as(LMN_PREC_F32, y, x, q, N, 0.0f, net->qwork, net->pool);
}

void lmn_net_linear_backward(const lmn_net *net, float *dx, int w, const float *dy, const float *x, int N, int in,
                             int out) {
  const lmn_qtensor *q = lmn_q(net, w);
  if (!q && (in <= 0 || out <= 0 || N <= 0))
    return;
  else if (!q) {
    head_job j = {x, lmn_w(net, w), dy, NULL, dx, lmn_g(net, w), N, in, out};
    if (j.dW) lmn_pool_run(net->pool, tasks_of(out, HEAD_COLS), head_dw_task, &j);
    if (dx) lmn_pool_run(net->pool, tasks_of(N, HEAD_ROWS), head_dx_task, &j);
  } else if (dx)
    lmn_q_matmul_dx(dx, dy, q, N, 1.0f, net->qwork, net->pool);
}

int lmn_kept_bytes(const char *path, int format, int weights, const lmn_kept_tensor *t, int n, double bytes[64],
                   lmn_err *err) {
  lmn_gguf *g = NULL;
  if (format == 1 && lmn_gguf_open(path, LMN_GGUF_META, &g, err) != 0) return -1;
  int rc = 0;
  for (int i = 0; rc == 0 && i < n; i++) {
    uint32_t type = LMN_GGML_F32;
    if (g) {
      const lmn_gguf_tensor *gt = lmn_gguf_find_tensor(g, t[i].tensor);
      if (!gt) {
        rc = lmn_errf(err, "%s: tensor '%s' not found", LMN_SHORT(path), t[i].tensor);
        break;
      }
      type = gt->type;
    }
    lmn_model_info m = {0};
    m.weights = weights;
    type = kept_type(&m, type);
    uint64_t row;
    rc = lmn_ggml_row_size(type, t[i].cols, &row, err);
    if (rc == 0 && type < 64) bytes[type] += (double)row * (double)t[i].rows;
  }
  lmn_gguf_close(g);
  return rc;
}

int lmn_desc_kept_bytes(const lmn_net_desc *d, const char *dir, double bytes[64], lmn_err *err) {
  lmn_kept_tensor *t = malloc(((size_t)d->n_params + 1) * sizeof *t);
  if (!t) return lmn_errf(err, "%s: out of memory", d->name);
  int rc = 0;
  for (int mi = 0; rc == 0 && mi < d->n_models; mi++) {
    int n = 0;
    for (int i = 0; i < d->n_params; i++)
      if (lmn_param_kept(d, i) && d->params[i].model == mi)
        t[n++] = (lmn_kept_tensor){d->params[i].tensor, d->params[i].rows, d->params[i].cols};
    char path[4096];
    lmn_model_path(&d->models[mi], dir, path, sizeof path);
    if (n > 0 && (lmn_model_check_exists(d, &d->models[mi], dir, path, err) ||
                  lmn_kept_bytes(path, d->models[mi].format, d->models[mi].weights, t, n, bytes, err)))
      rc = -1;
  }
  free(t);
  return rc;
}
