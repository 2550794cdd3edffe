/* sched.c: the schedule pass (schedule.h): parameter layout and hash, batches of shared vertex calls, block
 * shapes, and the three schedules; the buffers and their lifetimes are in schedule_plan.c. */
#include "schedule.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ------------------------------------------------------------------------------- */

int sched_needs_dout(const Op *op) {
  return op->backward && op->kind != OP_HEAD && op->kind != OP_CLASSIFY && op->kind != OP_LOSS &&
         op->kind != OP_AGGREGATE;
}

int sched_reads(const Ir *ir, const Op *op, int *ins) {
  int n = 0;
  for (int k = 0; k < op->n_inputs; k++) {
    const Op *in = &ir->ops[op->inputs[k]];
    if (in->kind == OP_AGGREGATE)
      for (int j = 0; j < in->n_inputs; j++) ins[n++] = in->inputs[j];
    else
      ins[n++] = op->inputs[k];
  }
  return n;
}

/* ---- parameters ---------------------------------------------------------------------------------- */

static void layout_params(Sched *p) {
  const Ir *ir = p->ir;
  int n = 0;
  long off = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < ir->n_params; i++) {
      if (ir->params[i].trainable != (pass == 0)) continue;
      p->gen[i] = n;
      p->order[n] = i;
      p->offset[n] = off;
      off += ir->params[i].count;
      n++;
    }
}

static uint64_t fnv1a(uint64_t h, const char *s, int n) {
  for (int k = 0; k < n; k++) h = (h ^ (unsigned char)s[k]) * 1099511628211ULL;
  return h;
}

/* FNV-1a over "name:rows:cols:trainable;" of every tensor in generated order, then the aggregation, then
 * "weights:MODEL:FORMAT;" of every model whose frozen matrices are not kept as stored in its file, then
 * "tokenizer:MODEL:BASENAME;" when the embedding model borrows a tokenizer: a network without these options
 * hashes as it did before they existed, so its checkpoints still load. */
static uint64_t network_hash(const Sched *p) {
  uint64_t h = 1469598103934665603ULL;
  char buf[sizeof(((Param *)0)->name) + 96];
  for (int i = 0; i < p->ir->n_params; i++) {
    const Param *q = &p->ir->params[p->order[i]];
    int n = snprintf(buf, sizeof buf, "%s:%ld:%ld:%d;", q->name, q->shape[0], q->shape[1], q->trainable);
    h = fnv1a(h, buf, n < (int)sizeof buf ? n : (int)sizeof buf);
  }
  h = (h ^ (uint64_t)p->net->aggregate) * 1099511628211ULL;
  for (int m = 0; m < p->net->n_models; m++) {
    const Model *md = &p->net->models[m];
    if (md->weights == WEIGHTS_FILE) continue;
    int n = snprintf(buf, sizeof buf, "weights:%s:%s;", md->name, weights_format_name(md->weights));
    h = fnv1a(h, buf, n < (int)sizeof buf ? n : (int)sizeof buf);
  }
  const Model *em = p->net->embed_model >= 0 ? &p->net->models[p->net->embed_model] : NULL;
  if (em && em->tok_path) { /* the ids mean other tokens: by the file's base name, so that it may move */
    const char *base = strrchr(em->tok_path, '/');
    int n =
        snprintf(buf, sizeof buf, "tokenizer:%s:%s;", em->name, base && base[1] ? base + 1 : em->tok_path);
    h = fnv1a(h, buf, n < (int)sizeof buf ? n : (int)sizeof buf);
  }
  return h;
}

/* ---- batches of shared vertex calls -------------------------------------------------------------- */

/* A shared vertex call: its weight set (model, trainability, whether it has a backward), its index and the
 * last op it reads. */
typedef struct VCall {
  int model, trainable, backward, index, maxin;
} VCall;

static int by_weights(const void *a, const void *b) {
  const VCall *x = a, *y = b;
  if (x->model != y->model) return x->model < y->model ? -1 : 1;
  if (x->trainable != y->trainable) return x->trainable < y->trainable ? -1 : 1;
  if (x->backward != y->backward) return x->backward < y->backward ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static int same_weights(const VCall *x, const VCall *y) {
  return x->model == y->model && x->trainable == y->trainable && x->backward == y->backward;
}

/* A min-heap of calls by the last op they read. */
static int call_before(const VCall *x, const VCall *y) {
  return x->maxin != y->maxin ? x->maxin < y->maxin : x->index < y->index;
}

static void call_push(VCall *h, int *n, VCall c) {
  int i = (*n)++;
  for (; i > 0 && call_before(&c, &h[(i - 1) / 2]); i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
  h[i] = c;
}

static VCall call_pop(VCall *h, int *n) {
  VCall top = h[0], last = h[--*n];
  int i = 0;
  for (int c = 1; c < *n; i = c, c = 2 * c + 1) {
    if (c + 1 < *n && call_before(&h[c + 1], &h[c])) c++;
    if (!call_before(&h[c], &last)) break;
    h[i] = h[c];
  }
  if (*n > 0) h[i] = last;
  return top;
}

/* The calls of one weight set, calls[0..n) in op order: each call not yet in a batch leads one, joined by
 * every later call of the set whose inputs all exist before it. */
static void batch_calls(Sched *p, const VCall *calls, int n, VCall *heap, char *done) {
  int nh = 0;
  for (int k = 0; k < n; k++) call_push(heap, &nh, calls[k]);
  for (int k = 0; k < n; k++) {
    int f = calls[k].index, size = 1;
    if (done[f]) continue;
    done[f] = 1;
    while (nh > 0 && heap[0].maxin < f) {
      VCall m = call_pop(heap, &nh);
      if (done[m.index] || m.index <= f) continue;
      done[m.index] = 1;
      p->group[m.index] = f;
      size++;
    }
    if (size > 1) p->group[f] = f;
  }
}

/* Calls of one shared weight set (same trainability) whose inputs all exist before the first of them run as
 * one batch of K*B sequences. O(n log n). */
static int find_groups(Sched *p, int *ins) {
  const Ir *ir = p->ir;
  int n = 0;
  VCall *calls = malloc(sizeof(VCall) * (size_t)(ir->n_ops + 1)), *heap = malloc(sizeof(VCall) * (size_t)(ir->n_ops + 1));
  char *done = calloc((size_t)ir->n_ops + 1, 1);
  if (!calls || !heap || !done) return free(calls), free(heap), free(done), -1;
  for (int i = 0; i < ir->n_ops; i++) {
    const Op *op = &ir->ops[i];
    p->group[i] = -1;
    if (op->kind != OP_VERTEX || !p->net->vertices[op->vertex].shared) continue;
    int k = sched_reads(ir, op, ins), maxin = -1;
    for (int r = 0; r < k; r++) maxin = ins[r] > maxin ? ins[r] : maxin;
    calls[n++] = (VCall){op->model, p->net->vertices[op->vertex].trainable, op->backward, i, maxin};
  }
  qsort(calls, (size_t)n, sizeof(VCall), by_weights);
  for (int a = 0, b; a < n; a = b) {
    for (b = a + 1; b < n && same_weights(&calls[a], &calls[b]); b++) {}
    batch_calls(p, calls + a, b - a, heap, done);
  }
  free(calls);
  free(heap);
  free(done);
  return 0;
}

/* Each batch's calls, leader first, as index lists: calls of leader f at members[members_at[f] ..
 * members_at[f + 1]). */
static int list_members(Sched *p) {
  int n = p->ir->n_ops;
  p->members_at = calloc((size_t)n + 2, sizeof(int));
  p->members = malloc(sizeof(int) * (size_t)(n + 1));
  int *fill = calloc((size_t)n + 1, sizeof(int));
  if (!p->members_at || !p->members || !fill) return free(fill), -1;
  for (int i = 0; i < n; i++)
    if (p->group[i] >= 0) p->members_at[p->group[i] + 1]++;
  for (int i = 0; i < n; i++) p->members_at[i + 1] += p->members_at[i];
  for (int i = 0; i < n; i++)
    if (p->group[i] >= 0) p->members[p->members_at[p->group[i]] + fill[p->group[i]]++] = i;
  free(fill);
  return 0;
}

/* ---- block shapes -------------------------------------------------------------------------------- */

static lmn_block_cfg block_cfg(const Sched *p, const Op *op) {
  const Model *m = &p->net->models[op->model];
  const lmn_hparams *hp = &m->hp;
  lmn_block_cfg c = {hp->arch == LMN_ARCH_GPT2    ? LMN_BLOCK_GPT2
                     : hp->arch == LMN_ARCH_QWEN2 ? LMN_BLOCK_QWEN2
                                                  : LMN_BLOCK_LLAMA,
                     (int)hp->dim, (int)hp->heads, (int)hp->kv_heads, (int)(hp->dim / hp->heads), (int)hp->ffn,
                     (float)hp->eps, hp->qkv_bias, 0.0f};
  c.scale = 1.0f / sqrtf((float)c.hd);
  if (op->kind == OP_MODULE && p->net->edges[op->edge].mods[op->module].kind == MOD_GPT2_EDGE) {
    c.kind = LMN_BLOCK_GPT2_EDGE;
    c.ffn = c.d;
    c.kv_heads = c.heads;
    if (p->net->edges[op->edge].mods[op->module].unscaled) c.scale = 1.0f;
  }
  return c;
}

static int gen_or_none(const Sched *p, int ir_param) { return ir_param < 0 ? -1 : p->gen[ir_param]; }

/* Block shapes and bindings (generated indices) of every op with layers. */
static void bind_blocks(Sched *p) {
  const Ir *ir = p->ir;
  int row = 0;
  for (int i = 0; i < ir->n_ops; i++) {
    const Op *op = &ir->ops[i];
    p->vbind_at[i] = -1;
    if (op->layers <= 0) continue;
    p->vbind_at[i] = row;
    for (int k = 0; k < op->layers * LMN_BM_COUNT; k++) p->vbind[(size_t)row * LMN_BM_COUNT + k] = gen_or_none(p, op->bind[k]);
    p->blk[i] = block_cfg(p, op);
    p->vtx[i] = (lmn_vertex_cfg){p->blk[i], op->layers, (const int(*)[LMN_BM_COUNT]) & p->vbind[(size_t)row * LMN_BM_COUNT],
                                 gen_or_none(p, op->norm_w), gen_or_none(p, op->norm_b)};
    row += op->layers;
  }
}

/* ---- schedules ----------------------------------------------------------------------------------- */

static StepKind step_kind(const Sched *p, const Op *op) {
  switch (op->kind) {
    case OP_EMBED: return STEP_EMBED;
    case OP_SUM: return STEP_SUM;
    case OP_VERTEX: return STEP_VERTEX;
    case OP_HEAD: return STEP_HEAD;
    case OP_CLASSIFY: return STEP_CLASSIFY;
    case OP_LOSS: return STEP_LOSS;
    default: break;
  }
  ModKind k = p->net->edges[op->edge].mods[op->module].kind;
  return k == MOD_LINEAR ? STEP_LINEAR : k == MOD_MLP ? STEP_MLP : STEP_BLOCK;
}

static Step *push_step(Schedule *s, const Sched *p, int op) {
  Step *st = &s->steps[s->n++];
  memset(st, 0, sizeof *st);
  st->kind = step_kind(p, &p->ir->ops[op]);
  st->op = op;
  return st;
}

/* The calls a step runs: a batch leader's members, a member none (its leader runs it), else itself. */
static int set_calls(Step *st, const Sched *p, int batched) {
  int op = st->op, k = 0, lead = batched && p->group[op] == op;
  int n = lead ? p->members_at[op + 1] - p->members_at[op] : 1;
  st->calls = malloc(sizeof(int) * (size_t)(n + 1));
  if (!st->calls) return -1;
  if (lead)
    for (int j = p->members_at[op]; j < p->members_at[op + 1]; j++) st->calls[k++] = p->members[j];
  else if (!batched || p->group[op] < 0)
    st->calls[k++] = op;
  st->n_calls = k;
  return 0;
}

static int forward_schedule(Sched *p) {
  const Ir *ir = p->ir;
  for (int i = 0; i < ir->n_ops; i++) {
    if (ir->ops[i].kind == OP_AGGREGATE) continue;
    if (set_calls(push_step(&p->fwd, p, i), p, 1)) return -1;
  }
  return 0;
}

/* Backward in reverse op order; each gradient buffer is zeroed before the backward of its last reader, the
 * first to write it. first_use[i]: that reader, or -1. */
static int backward_schedule(Sched *p, const int *first_use) {
  const Ir *ir = p->ir;
  int n = ir->n_ops, *at = calloc((size_t)n + 2, sizeof(int)), *list = malloc(sizeof(int) * (size_t)(n + 1));
  if (!at || !list) return free(at), free(list), -1;
  for (int i = 0; i < n; i++) /* the gradients each op's backward writes first, by counting sort */
    if (first_use[i] >= 0) at[first_use[i] + 1]++;
  for (int j = 0; j < n; j++) at[j + 1] += at[j];
  for (int i = 0, *fill = at; i < n; i++)
    if (first_use[i] >= 0) list[fill[first_use[i]]++] = i;
  for (int j = n; j > 0; j--) at[j] = at[j - 1]; /* the fills moved each start to the next one's */
  at[0] = 0;
  for (int j = n - 1; j >= 0; j--) {
    const Op *op = &ir->ops[j];
    if (!op->backward || op->kind == OP_LOSS || op->kind == OP_AGGREGATE) continue;
    Step *st = push_step(&p->bwd, p, j);
    st->zero = malloc(sizeof(int) * (size_t)(at[j + 1] - at[j] + 1));
    if (set_calls(st, p, 1) || !st->zero) return free(at), free(list), -1;
    for (int k = at[j]; k < at[j + 1]; k++) st->zero[st->n_zero++] = list[k];
  }
  free(at);
  free(list);
  return 0;
}

/* Decoding computes what the primary output (logits) depends on, each call alone with its KV caches. */
static void mark_needed(const Ir *ir, int op, char *need) {
  if (need[op]) return;
  need[op] = 1;
  for (int k = 0; k < ir->ops[op].n_inputs; k++) mark_needed(ir, ir->ops[op].inputs[k], need);
}

static int decode_schedule(Sched *p, char *need) {
  const Ir *ir = p->ir;
  if (p->primary >= 0 && ir->ops[p->primary].kind == OP_HEAD) mark_needed(ir, p->primary, need);
  for (int i = 0; i < ir->n_ops; i++) {
    if (!need[i] || ir->ops[i].kind == OP_LOSS || ir->ops[i].kind == OP_AGGREGATE) continue;
    if (set_calls(push_step(&p->dec, p, i), p, 0)) return -1;
  }
  return 0;
}

/* ---- the pass ------------------------------------------------------------------------------------ */

int sched_plan(Sched *p, const char *need, int *first_use, int *ins, lmn_err *err); /* schedule_plan.c */

static int alloc_program(Sched *p, const Ir *ir) {
  size_t np = (size_t)ir->n_params + 1, no = (size_t)ir->n_ops + 1, rows = 1, nm = (size_t)ir->net->n_models + 1;
  for (int i = 0; i < ir->n_ops; i++) rows += (size_t)(ir->ops[i].layers > 0 ? ir->ops[i].layers : 0);
  p->order = calloc(np, sizeof(int));
  p->gen = calloc(np, sizeof(int));
  p->offset = calloc(np, sizeof(long));
  p->group = calloc(no, sizeof(int));
  p->blk = calloc(no, sizeof(lmn_block_cfg));
  p->vtx = calloc(no, sizeof(lmn_vertex_cfg));
  p->vbind = calloc(rows * LMN_BM_COUNT, sizeof(int));
  p->vbind_at = calloc(no, sizeof(int));
  p->fwd.steps = calloc(no, sizeof(Step));
  p->bwd.steps = calloc(no, sizeof(Step));
  p->dec.steps = calloc(no, sizeof(Step));
  p->rope_hd = calloc(nm, sizeof(int));
  p->rope_theta = calloc(nm, sizeof(double));
  return p->order && p->gen && p->offset && p->group && p->blk && p->vtx && p->vbind && p->vbind_at && p->fwd.steps &&
                 p->bwd.steps && p->dec.steps && p->rope_hd && p->rope_theta
             ? 0
             : -1;
}

static int primary_op(const Ir *ir) {
  for (int i = 0; i < ir->n_ops; i++)
    if (ir->ops[i].kind == OP_LOSS && ir->ops[i].loss == 0) return ir->ops[i].inputs[0];
  return -1;
}

static void ropes(Sched *p) {
  for (int m = 0; m < p->net->n_models; m++) {
    const lmn_hparams *hp = &p->net->models[m].hp;
    int rope = hp->arch == LMN_ARCH_LLAMA || hp->arch == LMN_ARCH_QWEN2;
    p->rope_hd[m] = rope ? (int)(hp->dim / hp->heads) : 0;
    p->rope_theta[m] = hp->rope_theta;
  }
}

int sched_build(Sched *p, const Ir *ir, lmn_err *err) {
  memset(p, 0, sizeof *p);
  p->ir = ir;
  p->net = ir->net;
  int n = ir->n_ops;
  int *ins = malloc(sizeof(int) * (size_t)(n + 1)), *first_use = malloc(sizeof(int) * (size_t)(n + 1));
  char *need = calloc((size_t)n + 1, 1);
  int rc = !ins || !first_use || !need || alloc_program(p, ir) ? -1 : 0;
  if (!rc) {
    layout_params(p);
    p->hash = network_hash(p);
    p->primary = primary_op(ir);
    rc = find_groups(p, ins) || list_members(p) ? -1 : 0;
    bind_blocks(p);
    ropes(p);
    if (!rc) rc = forward_schedule(p);
    if (!rc) rc = decode_schedule(p, need);
    if (!rc) rc = sched_plan(p, need, first_use, ins, err);
    if (!rc) rc = backward_schedule(p, first_use);
  }
  if (rc && !err->msg[0]) lmn_errf(err, "lmnc: out of memory scheduling network '%s'", ir->net->name);
  free(ins);
  free(first_use);
  free(need);
  return rc;
}

static void free_schedule(Schedule *s) {
  for (int i = 0; i < s->n; i++) {
    free(s->steps[i].calls);
    free(s->steps[i].zero);
  }
  free(s->steps);
}

static void free_layout(Layout *l) {
  free(l->bufs);
  free(l->out);
  free(l->dout);
  free(l->saved);
  free(l->scratch);
  free(l->keep);
  free(l->keep_of);
  free(l->keep_what);
}

void sched_free(Sched *p) {
  free(p->order);
  free(p->gen);
  free(p->offset);
  free(p->group);
  free(p->members_at);
  free(p->members);
  free(p->blk);
  free(p->vtx);
  free(p->vbind);
  free(p->vbind_at);
  free_schedule(&p->fwd);
  free_schedule(&p->bwd);
  free_schedule(&p->dec);
  free_layout(&p->train);
  free_layout(&p->cache);
  free(p->rope_hd);
  free(p->rope_theta);
  memset(p, 0, sizeof *p);
}

lmn_arena_desc sched_arena(const Sched *p, int cached) {
  const Layout *l = cached ? &p->cache : &p->train;
  lmn_arena_desc d = {l->row_floats, l->seq_floats, p->net->prefix ? (cached ? 1 : 2) : 0,
                      l->n_scratch,  l->scratch,    p->net->n_models,
                      p->rope_hd,    p->rope_theta, l->n_keep,
                      l->keep};
  return d;
}
