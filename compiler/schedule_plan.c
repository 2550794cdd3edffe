/* schedule_plan.c: the buffers of the schedule pass (schedule.h) with their row kinds, widths and lifetimes, their
 * placement by the memory planner (plan.c), and the scratch each op needs. Time runs over the forward steps
 * (op i at i) and then the backward steps (op j at 2n - 1 - j); a batch of shared calls runs at its first.
 * Sizes per row come from the runtime's own size functions, evaluated for one row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "schedule.h"

static int lead(const Sched *p, int i) { return p->group[i] >= 0 ? p->group[i] : i; }
static int back_time(const Sched *p, int j) { return 2 * p->ir->n_ops - 1 - j; }

static const Module *op_module(const Sched *p, const Op *op) {
  return op->kind == OP_MODULE || op->kind == OP_CLASSIFY ? &p->net->edges[op->edge].mods[op->module] : NULL;
}

static int is_kind(const Sched *p, const Op *op, ModKind k) {
  const Module *m = op_module(p, op);
  return m && m->kind == k;
}

/* Whether op j's backward reads its input's forward output (for a weight gradient). */
static int backward_reads_input(const Sched *p, const Op *j) {
  if (!j->backward) return 0;
  return j->kind == OP_HEAD || is_kind(p, j, MOD_LINEAR) || is_kind(p, j, MOD_MLP);
}

/* Calls in op i's batch (1 when it runs alone; 0 for a member its leader runs). */
static int batch_size(const Sched *p, int i) {
  if (p->group[i] < 0) return 1;
  return p->group[i] == i ? p->members_at[i + 1] - p->members_at[i] : 0;
}

/* Floats per row a size function gives, checked linear in the rows (f(2, 3) = 6 f(1, 1)). */
typedef size_t (*rows_fn)(const Sched *p, int i, int B, int T);

static size_t vertex_last(const Sched *p, int i, int B, int T) {
  return lmn_vertex_last_floats(&p->vtx[i], batch_size(p, i), B, T);
}
static size_t mlp_saved(const Sched *p, int i, int B, int T) {
  const Module *m = op_module(p, &p->ir->ops[i]);
  return lmn_mlp_saved_floats((int)m->din, (int)m->hidden, B * T);
}

static long per_row(const Sched *p, int i, rows_fn f, lmn_err *err) {
  size_t one = f(p, i, 1, 1), six = f(p, i, 2, 3);
  if (six != 6 * one) {
    lmn_errf(err, "lmnc: internal error: the saved size of op %d is not proportional to B*T", i);
    return -1;
  }
  return (long)one;
}

/* ---- the training arena ------------------------------------------------------------------------- */

static Buffer *add_buf(Layout *l, BufRole role, int op, RowKind rows, long width, int lo, int hi) {
  Buffer *b = &l->bufs[l->n++];
  *b = (Buffer){role, op, rows, width, lo, hi, -1};
  return b;
}

static void add_scratch(Layout *l, lmn_scratch s) { l->scratch[l->n_scratch++] = s; }

static void train_outputs(Sched *p, Layout *l, int *ins) {
  const Ir *ir = p->ir;
  int n = ir->n_ops;
  for (int i = 0; i < n; i++) {
    const Op *op = &ir->ops[i];
    l->out[i] = -1;
    if (op->kind == OP_LOSS || op->kind == OP_AGGREGATE) continue;
    int whole = op->kind == OP_HEAD || i == p->primary;
    if (op->kind == OP_CLASSIFY) l->out[i] = (int)(add_buf(l, BUF_OUT, i, ROWS_B, op->width, 0, 2 * n) - l->bufs);
    else l->out[i] = (int)(add_buf(l, BUF_OUT, i, ROWS_BT, op->width, lead(p, i), whole ? 2 * n : i) - l->bufs);
  }
  for (int j = 0; j < n; j++) {
    int k = sched_reads(ir, &ir->ops[j], ins), t = backward_reads_input(p, &ir->ops[j]) ? back_time(p, j) : j;
    for (int r = 0; r < k; r++) {
      Buffer *b = &l->bufs[l->out[ins[r]]];
      if (t > b->hi) b->hi = t;
    }
  }
}

/* Output gradients live from the backward of their last reader (which zeroes and first writes them) to
 * their own backward (a batch's: its leader's). */
static void train_gradients(Sched *p, Layout *l, int *first_use, int *ins) {
  const Ir *ir = p->ir;
  for (int i = 0; i < ir->n_ops; i++) first_use[i] = -1;
  for (int j = 0; j < ir->n_ops; j++) {
    int k = sched_reads(ir, &ir->ops[j], ins);
    for (int r = 0; r < k; r++)
      if (sched_needs_dout(&ir->ops[ins[r]]) && j > first_use[ins[r]]) first_use[ins[r]] = j;
  }
  for (int i = 0; i < ir->n_ops; i++) {
    l->dout[i] = -1;
    if (first_use[i] >= 0)
      l->dout[i] = (int)(add_buf(l, BUF_DOUT, i, ROWS_BT, ir->ops[i].width, back_time(p, first_use[i]),
                                 back_time(p, lead(p, i))) - l->bufs);
  }
}

/* The name a keep op has in the memory plan: "vertex a", "vertices b+c" (a batch of shared calls), or the
 * edge module's op name. */
static void keep_name(const Sched *p, int i, char *buf, size_t cap) {
  const Op *op = &p->ir->ops[i];
  if (op->kind != OP_VERTEX) {
    snprintf(buf, cap, "edge %s", op->name);
    return;
  }
  int K = batch_size(p, i);
  size_t n = (size_t)snprintf(buf, cap, "%s", K > 1 ? "vertices " : "vertex ");
  for (int j = 0; j < K && n < cap; j++) {
    int c = K > 1 ? p->members[p->members_at[i] + j] : i;
    n +=
        (size_t)snprintf(buf + n, cap - n, "%s%s", j ? "+" : "", p->net->vertices[p->ir->ops[c].vertex].name);
  }
}

/* Forward FLOPs per row of op i's batch (its calls together). */
static void keep_flops(const Sched *p, int i, lmn_keep *k) {
  int K = batch_size(p, i);
  k->flops_bt = k->flops_btt = 0;
  for (int j = 0; j < K; j++) {
    const Op *c = &p->ir->ops[K > 1 ? p->members[p->members_at[i] + j] : i];
    k->flops_bt += c->fwd.bt;
    k->flops_btt += c->fwd.btt;
  }
}

/* Op i's saved region is laid out at run time, whole or as its input alone (arena.h). */
static void add_keep(Sched *p, Layout *l, int i) {
  int j = l->n_keep++;
  lmn_keep *k = &l->keep[j];
  *k = (lmn_keep){0};
  if (p->ir->ops[i].kind == OP_VERTEX)
    k->vtx = &p->vtx[i], k->K = batch_size(p, i);
  else
    k->blk = &p->blk[i], k->K = 1;
  keep_flops(p, i, k);
  keep_name(p, i, l->keep_what[j], sizeof l->keep_what[j]);
  k->what = l->keep_what[j];
  l->keep_of[i] = j;
}

/* What each op keeps for its backward (or, without one, uses as workspace during its forward), and scratch.
 * Vertices and blocks with a backward pass are keep ops: their saved regions are laid out at run time;
 * without one, a block saves nothing and a vertex only its final norm's input. */
static int train_saved(Sched *p, Layout *l, lmn_err *err) {
  for (int i = 0; i < p->ir->n_ops; i++) {
    const Op *op = &p->ir->ops[i];
    const Module *m = op_module(p, op);
    int lo = lead(p, i), hi = op->backward ? back_time(p, lo) : lo, K = batch_size(p, i);
    long w = 0;
    l->saved[i] = -1;
    l->keep_of[i] = -1;
    if (op->kind == OP_VERTEX && K > 0) {
      if (op->backward)
        add_keep(p, l, i);
      else
        w = per_row(p, i, vertex_last, err); /* lmn_vertex_forward_only */
      add_scratch(l, (lmn_scratch){LMN_SCRATCH_VERTEX, NULL, &p->vtx[i], K, 0, 0});
    } else if (op->kind == OP_MODULE && op->layers > 0) {
      if (op->backward) add_keep(p, l, i); /* without a backward, the block saves nothing (NULL) */
      add_scratch(l, (lmn_scratch){LMN_SCRATCH_BLOCK, &p->blk[i], NULL, 0, 0, 0});
    } else if (is_kind(p, op, MOD_MLP)) {
      w = per_row(p, i, mlp_saved, err);
      add_scratch(l, (lmn_scratch){LMN_SCRATCH_MLP, NULL, NULL, 0, (int)m->din, (int)m->hidden});
    } else if (op->kind == OP_CLASSIFY) {
      l->saved[i] = (int)(add_buf(l, BUF_SAVED, i, ROWS_B, m->din, 0, 2 * p->ir->n_ops) - l->bufs);
      add_scratch(l, (lmn_scratch){LMN_SCRATCH_CLASSIFY, NULL, NULL, 0, (int)m->din, 0});
    }
    if (w < 0) return -1;
    if (w > 0) l->saved[i] = (int)(add_buf(l, BUF_SAVED, i, ROWS_BT, w, lo, hi) - l->bufs);
  }
  return 0;
}

/* ---- the decoding cache -------------------------------------------------------------------------- */

static size_t vertex_kv(const Sched *p, int i, int B, int T) {
  return lmn_vertex_cache_floats(&p->vtx[i], B * T);
}

static int cache_buffers(Sched *p, Layout *l, const char *need, int *ins, lmn_err *err) {
  const Ir *ir = p->ir;
  int n = ir->n_ops;
  for (int i = 0; i < n; i++) {
    const Op *op = &ir->ops[i];
    l->out[i] = l->dout[i] = l->saved[i] = -1;
    if (!need[i] || op->kind == OP_LOSS || op->kind == OP_AGGREGATE || op->kind == OP_HEAD) continue;
    l->out[i] = (int)(add_buf(l, BUF_OUT, i, ROWS_BT, op->width, i, i) - l->bufs);
    long kv = op->kind == OP_VERTEX ? per_row(p, i, vertex_kv, err)
              : op->layers > 0      ? 2L * p->blk[i].kv_heads * p->blk[i].hd
                                    : 0;
    if (kv < 0) return -1;
    if (kv > 0) l->saved[i] = (int)(add_buf(l, BUF_KV, i, ROWS_BT, kv, 0, n) - l->bufs);
    const Module *m = op_module(p, op);
    if (op->kind == OP_VERTEX) add_scratch(l, (lmn_scratch){LMN_SCRATCH_VERTEX_CACHED, NULL, &p->vtx[i], 1, 0, 0});
    else if (op->layers > 0) add_scratch(l, (lmn_scratch){LMN_SCRATCH_BLOCK_CACHED, &p->blk[i], NULL, 0, 0, 0});
    else if (is_kind(p, op, MOD_MLP))
      add_scratch(l, (lmn_scratch){LMN_SCRATCH_MLP_CACHED, NULL, NULL, 0, (int)m->din, (int)m->hidden});
  }
  for (int j = 0; j < n; j++) {
    if (!need[j]) continue;
    int k = sched_reads(ir, &ir->ops[j], ins);
    for (int r = 0; r < k; r++)
      if (l->out[ins[r]] >= 0 && j > l->bufs[l->out[ins[r]]].hi) l->bufs[l->out[ins[r]]].hi = j;
  }
  return 0;
}

/* ---- placement ----------------------------------------------------------------------------------- */

static int alloc_layout(Layout *l, int n_ops) {
  size_t no = (size_t)n_ops + 1;
  l->bufs = calloc(4 * no, sizeof(Buffer));
  l->out = calloc(no, sizeof(int));
  l->dout = calloc(no, sizeof(int));
  l->saved = calloc(no, sizeof(int));
  l->scratch = calloc(no, sizeof(lmn_scratch));
  l->keep = calloc(no, sizeof(lmn_keep));
  l->keep_of = calloc(no, sizeof(int));
  l->keep_what = calloc(no, sizeof *l->keep_what);
  for (size_t i = 0; l->keep_of && i < no; i++) l->keep_of[i] = -1;
  return l->bufs && l->out && l->dout && l->saved && l->scratch && l->keep && l->keep_of && l->keep_what ? 0
                                                                                                         : -1;
}

/* [B*T]-row buffers by the planner; [B]-row buffers one after another. */
static int place(Layout *l) {
  PlanBuf *pb = malloc(sizeof(PlanBuf) * (size_t)(l->n + 1));
  long *at = malloc(sizeof(long) * (size_t)(l->n + 1));
  if (!pb || !at) {
    free(pb);
    free(at);
    return -1;
  }
  for (int i = 0; i < l->n; i++) {
    const Buffer *b = &l->bufs[i];
    pb[i] = (PlanBuf){b->rows == ROWS_BT ? b->width : 0, b->lo, b->hi};
  }
  l->row_floats = plan_offsets(pb, l->n, at);
  l->seq_floats = 0;
  for (int i = 0; i < l->n; i++) {
    Buffer *b = &l->bufs[i];
    if (b->rows == ROWS_BT) b->at = at[i];
    else b->at = l->seq_floats, l->seq_floats += b->width;
  }
  free(pb);
  free(at);
  return l->row_floats < 0 ? -1 : 0;
}

int sched_plan(Sched *p, const char *need, int *first_use, int *ins, lmn_err *err);
int sched_plan(Sched *p, const char *need, int *first_use, int *ins, lmn_err *err) {
  if (alloc_layout(&p->train, p->ir->n_ops) || alloc_layout(&p->cache, p->ir->n_ops)) return -1;
  train_outputs(p, &p->train, ins);
  train_gradients(p, &p->train, first_use, ins);
  if (train_saved(p, &p->train, err) || cache_buffers(p, &p->cache, need, ins, err)) return -1;
  return place(&p->train) || place(&p->cache) ? -1 : 0;
}
