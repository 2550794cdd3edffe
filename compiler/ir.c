/* ir.c: lowering of the checked network (sema.h) to the IR (ir.h): parameter tensors with owners and
 * trainable flags, ops in topological order, FLOPs and saved activations per op. */
#include "ir.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

double cost_eval(Cost c, long batch, long seq) {
  double b = (double)batch, t = (double)seq;
  return c.b * b + c.bt * b * t + c.btt * b * t * t;
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fprintf(stderr, "lmnc: out of memory\n");
    exit(2);
  }
  return q;
}

#define PUSH(arr, n, cap) ((n) == (cap) ? ((cap) = (cap) ? (cap) * 2 : 16, (arr) = xrealloc((arr), sizeof *(arr) * (size_t)(cap))) : (arr), &(arr)[(n)++])

/* ---- parameters ------------------------------------------------------------------------------ */

typedef struct Owner {
  OwnerKind kind;
  int index, module, trainable;
  const char *group;
} Owner;

static int add_param(Ir *ir, const Owner *o, long rows, long cols, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int add_param(Ir *ir, const Owner *o, long rows, long cols, const char *fmt, ...) {
  Param *p = PUSH(ir->params, ir->n_params, ir->cap_params);
  memset(p, 0, sizeof *p);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->name, sizeof p->name, fmt, ap);
  va_end(ap);
  p->shape[0] = rows;
  p->shape[1] = cols;
  p->count = rows * (cols ? cols : 1);
  p->owner = o->kind;
  p->owner_index = o->index;
  p->module = o->module;
  p->group = o->group;
  p->trainable = o->trainable;
  return ir->n_params - 1;
}

/* The widths of one transformer block. */
typedef struct Block {
  long d, heads, kv_heads, ffn;
  int gpt2, qkv_bias;
} Block;

static Block model_block(const lmn_hparams *hp) {
  Block b = {hp->dim, hp->heads, hp->kv_heads, hp->ffn, hp->arch == LMN_ARCH_GPT2, hp->qkv_bias};
  return b;
}

static void op_param(Op *op, int p) {
  op->params = xrealloc(op->params, sizeof(int) * (size_t)(op->n_params + 1));
  op->params[op->n_params++] = p;
}

/* Adds the tensors of one decoder block under `prefix` (e.g. "qwen.blk.3."), in GGUF naming. */
static void block_params(Ir *ir, Op *op, const Owner *o, const Block *b, const char *prefix) {
  long d = b->d, kvd = b->kv_heads * (d / b->heads), f = b->ffn;
  if (b->gpt2) {
    const char *names[] = {"attn_norm.weight", "attn_norm.bias", "attn_qkv.weight", "attn_qkv.bias",
                           "attn_output.weight", "attn_output.bias", "ffn_norm.weight", "ffn_norm.bias",
                           "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias"};
    long shapes[][2] = {{d, 0}, {d, 0}, {3 * d, d}, {3 * d, 0}, {d, d}, {d, 0},
                        {d, 0}, {d, 0}, {f, d},     {f, 0},     {d, f}, {d, 0}};
    for (int i = 0; i < 12; i++) op_param(op, add_param(ir, o, shapes[i][0], shapes[i][1], "%s%s", prefix, names[i]));
    return;
  }
  op_param(op, add_param(ir, o, d, 0, "%sattn_norm.weight", prefix));
  op_param(op, add_param(ir, o, d, d, "%sattn_q.weight", prefix));
  if (b->qkv_bias) op_param(op, add_param(ir, o, d, 0, "%sattn_q.bias", prefix));
  op_param(op, add_param(ir, o, kvd, d, "%sattn_k.weight", prefix));
  if (b->qkv_bias) op_param(op, add_param(ir, o, kvd, 0, "%sattn_k.bias", prefix));
  op_param(op, add_param(ir, o, kvd, d, "%sattn_v.weight", prefix));
  if (b->qkv_bias) op_param(op, add_param(ir, o, kvd, 0, "%sattn_v.bias", prefix));
  op_param(op, add_param(ir, o, d, d, "%sattn_output.weight", prefix));
  op_param(op, add_param(ir, o, d, 0, "%sffn_norm.weight", prefix));
  op_param(op, add_param(ir, o, f, d, "%sffn_gate.weight", prefix));
  op_param(op, add_param(ir, o, f, d, "%sffn_up.weight", prefix));
  op_param(op, add_param(ir, o, d, f, "%sffn_down.weight", prefix));
}

/* Multiply-adds per token of a block's GEMMs, and the floats it keeps for the backward pass. */
static double block_gemm(const Block *b) {
  long d = b->d, kvd = b->kv_heads * (d / b->heads);
  if (b->gpt2) return (double)(3 * d * d + d * d + 2 * d * b->ffn);
  return (double)(2 * d * d + 2 * d * kvd + 3 * d * b->ffn);
}

static double block_saved(const Block *b) {
  long d = b->d, kvd = b->kv_heads * (d / b->heads);
  if (b->gpt2) return (double)(8 * d + 2 * b->ffn + b->heads + 4);
  return (double)(6 * d + 2 * kvd + 3 * b->ffn + b->heads + 2);
}

/* FLOPs of one block: GEMMs (2 per multiply-add) and causal attention over T(T+1)/2 pairs. */
static void block_cost(Op *op, const Block *b, double times) {
  double attn = 2.0 * (double)b->d; /* 4d FLOPs per (query, key) pair, T(T+1)/2 pairs per sequence */
  op->fwd.bt += times * (2.0 * block_gemm(b) + attn);
  op->fwd.btt += times * attn;
  double gemm_bwd = 2.0 * block_gemm(b) * ((op->grad_in || op->trainable) + op->trainable);
  if (op->backward) {
    op->bwd.bt += times * (gemm_bwd + 2.5 * attn);
    op->bwd.btt += times * 2.5 * attn;
    op->saved.bt += times * block_saved(b);
  }
}

/* ---- ops ------------------------------------------------------------------------------------- */

static Op *new_op(Ir *ir, OpKind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static Op *new_op(Ir *ir, OpKind kind, const char *fmt, ...) {
  Op *op = PUSH(ir->ops, ir->n_ops, ir->cap_ops);
  memset(op, 0, sizeof *op);
  op->id = ir->n_ops - 1;
  op->kind = kind;
  op->edge = op->module = op->vertex = op->loss = -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(op->name, sizeof op->name, fmt, ap);
  va_end(ap);
  return op;
}

static void op_input(Op *op, int in) {
  op->inputs = xrealloc(op->inputs, sizeof(int) * (size_t)(op->n_inputs + 1));
  op->inputs[op->n_inputs++] = in;
}

typedef struct Lower {
  Ir *ir;
  const Net *net;
  int *vertex_op;      /* op producing each vertex's output */
  int *model_params;   /* first param of each model's shared block weights, -1 if none yet */
  int *embed_param;    /* token embedding of each model, -1 if none */
  int *pos_param;      /* gpt2 position embedding */
  int *out_param;      /* untied output head */
  int *prefix_param;   /* fixed random prefix of the embedding */
  char *edge_done;
  int *edge_last;       /* last op of each edge (or the source's op) */
} Lower;

/* A gradient must reach op's inputs when something trainable lies upstream. */
static int upstream_trainable(const Ir *ir, const Op *op) {
  for (int i = 0; i < op->n_inputs; i++) {
    const Op *in = &ir->ops[op->inputs[i]];
    if (in->trainable || in->grad_in) return 1;
  }
  return 0;
}

static void finish_op(Ir *ir, Op *op) {
  for (int i = 0; i < op->n_params; i++) op->trainable |= ir->params[op->params[i]].trainable;
  op->grad_in = upstream_trainable(ir, op);
  op->backward = op->grad_in || op->trainable;
}

static int model_embedding(Lower *lw, int m, int trainable) {
  Ir *ir = lw->ir;
  const Model *md = &lw->net->models[m];
  if (lw->embed_param[m] < 0) {
    Owner o = {OWN_MODEL, m, -1, trainable, "embedding"};
    lw->embed_param[m] = add_param(ir, &o, md->hp.vocab, md->hp.dim, "%s.token_embd.weight", md->name);
    if (md->hp.arch == LMN_ARCH_GPT2)
      lw->pos_param[m] = add_param(ir, &o, md->hp.ctx, md->hp.dim, "%s.position_embd.weight", md->name);
  }
  return lw->embed_param[m];
}

static void module_op(Lower *lw, const Edge *e, int j, int *prev) {
  Ir *ir = lw->ir;
  const Net *net = lw->net;
  const Module *m = &e->mods[j];
  if (m->kind == MOD_IDENTITY) return;
  char desc[160];
  module_describe(net, m, desc, sizeof desc);
  OpKind kind = m->kind == MOD_EMBED ? OP_EMBED : m->kind == MOD_HEAD ? OP_HEAD : m->kind == MOD_CLASSIFY ? OP_CLASSIFY : OP_MODULE;
  Op *op = new_op(ir, kind, "e%d.m%d %s [%s]", e->id, j, desc, e->label);
  op->edge = e->id;
  op->module = j;
  op->width = m->dout;
  if (*prev >= 0) op_input(op, *prev);
  Owner o = {OWN_EDGE, e->id, j, 1, mod_kind_name(m->kind)};
  double gemm = 0, saved = 0;
  const Model *md = m->model >= 0 ? &net->models[m->model] : NULL;
  switch (m->kind) {
    case MOD_EMBED:
      op_param(op, model_embedding(lw, m->model, m->trainable));
      if (lw->pos_param[m->model] >= 0) op_param(op, lw->pos_param[m->model]);
      if (m->prefix) {
        if (lw->prefix_param[m->model] < 0) {
          Owner op_owner = {OWN_MODEL, m->model, -1, 0, "prefix"}; /* fixed: drawn once, never trained */
          lw->prefix_param[m->model] = add_param(ir, &op_owner, m->prefix, md->hp.dim, "%s.prefix", md->name);
        }
        op_param(op, lw->prefix_param[m->model]);
      }
      break;
    case MOD_HEAD:
      if (md->hp.tied) op_param(op, model_embedding(lw, m->model, m->trainable));
      else {
        if (lw->out_param[m->model] < 0) {
          Owner oh = {OWN_MODEL, m->model, -1, m->trainable, "head"};
          lw->out_param[m->model] = add_param(ir, &oh, md->hp.vocab, md->hp.dim, "%s.output.weight", md->name);
        }
        op_param(op, lw->out_param[m->model]);
      }
      gemm = (double)(m->din * m->dout);
      saved = (double)(m->din + m->dout);
      break;
    case MOD_CLASSIFY:
      o.trainable = m->trainable;
      op_param(op, add_param(ir, &o, m->dout, m->din, "e%d.m%d.weight", e->id, j));
      op_param(op, add_param(ir, &o, m->dout, 0, "e%d.m%d.bias", e->id, j));
      break;
    case MOD_LINEAR:
      op_param(op, add_param(ir, &o, m->dout, m->din, "e%d.m%d.weight", e->id, j));
      if (m->bias) op_param(op, add_param(ir, &o, m->dout, 0, "e%d.m%d.bias", e->id, j));
      gemm = (double)(m->din * m->dout);
      saved = (double)m->din;
      break;
    case MOD_MLP:
      op_param(op, add_param(ir, &o, m->hidden, m->din, "e%d.m%d.fc1.weight", e->id, j));
      op_param(op, add_param(ir, &o, m->hidden, 0, "e%d.m%d.fc1.bias", e->id, j));
      op_param(op, add_param(ir, &o, m->dout, m->hidden, "e%d.m%d.fc2.weight", e->id, j));
      op_param(op, add_param(ir, &o, m->dout, 0, "e%d.m%d.fc2.bias", e->id, j));
      gemm = 2.0 * (double)(m->din * m->hidden);
      saved = 2.0 * (double)(m->din + m->hidden);
      break;
    case MOD_GPT2_EDGE: {
      long d = m->din;
      const char *names[] = {"attn_qkv.weight", "attn_qkv.bias", "attn_output.weight", "attn_output.bias",
                             "ffn_norm.weight", "ffn_norm.bias", "ffn_up.weight",      "ffn_up.bias"};
      long shapes[][2] = {{3 * d, d}, {3 * d, 0}, {d, d}, {d, 0}, {d, 0}, {d, 0}, {d, d}, {d, 0}};
      for (int i = 0; i < 8; i++)
        op_param(op, add_param(ir, &o, shapes[i][0], shapes[i][1], "e%d.m%d.%s", e->id, j, names[i]));
      finish_op(ir, op);
      Block b = {d, md->hp.heads, md->hp.heads, d, 1, 0};
      double attn = 2.0 * (double)d, g = (double)(5 * d * d);
      op->fwd.bt = 2 * g + attn;
      op->fwd.btt = attn;
      if (op->backward) {
        op->bwd.bt = 2 * g * (1 + op->trainable) + 2.5 * attn;
        op->bwd.btt = 2.5 * attn;
        op->saved.bt = (double)(8 * d + b.heads + 2);
      }
      *prev = op->id;
      return;
    }
    case MOD_DECODER: {
      Block b = model_block(&md->hp);
      char prefix[64];
      snprintf(prefix, sizeof prefix, "e%d.m%d.", e->id, j);
      block_params(ir, op, &o, &b, prefix);
      finish_op(ir, op);
      block_cost(op, &b, 1.0);
      *prev = op->id;
      return;
    }
    case MOD_IDENTITY: return;
  }
  finish_op(ir, op);
  if (m->kind == MOD_CLASSIFY) {
    op->fwd.b = 2.0 * (double)(m->din * m->dout);
    if (op->backward) op->bwd.b = op->fwd.b * ((op->grad_in || op->trainable) + op->trainable) / 1.0;
    op->saved.b = (double)(m->din + m->dout);
  } else {
    op->fwd.bt = 2.0 * gemm;
    if (op->backward) {
      op->bwd.bt = 2.0 * gemm * (op->grad_in + op->trainable);
      op->saved.bt = saved;
    }
  }
  *prev = op->id;
}

/* Emits the ops of one edge: an optional sum of its sources, then its modules. Returns the last op. */
static int edge_ops(Lower *lw, const Edge *e) {
  Ir *ir = lw->ir;
  int prev = -1;
  if (e->src_kind == END_SUM) {
    Op *op = new_op(ir, OP_SUM, "e%d sum [%s]", e->id, e->label);
    op->edge = e->id;
    op->width = lw->net->models[lw->net->vertices[e->srcs[0]].model].hp.dim;
    for (int k = 0; k < e->n_src; k++) op_input(op, lw->vertex_op[e->srcs[k]]);
    finish_op(ir, op);
    prev = op->id;
  } else if (e->src_kind == END_VERTEX) {
    prev = lw->vertex_op[e->srcs[0]];
  }
  for (int j = 0; j < e->n_mods; j++) module_op(lw, e, j, &prev);
  lw->edge_done[e->id] = 1;
  return prev;
}

static void vertex_ops(Lower *lw, int v) {
  Ir *ir = lw->ir;
  const Net *net = lw->net;
  const Vertex *x = &net->vertices[v];
  const Model *md = &net->models[x->model];
  int in = -1;
  int n_in = 0;
  for (int i = 0; i < net->n_edges; i++)
    if (net->edges[i].dst_kind == END_VERTEX && net->edges[i].dst == v) n_in++;
  if (n_in > 1) {
    Op *agg = new_op(ir, OP_AGGREGATE, "%s %s of %d inputs", x->name, net->aggregate == AGG_MEAN ? "mean" : "sum", n_in);
    agg->vertex = v;
    agg->width = md->hp.dim;
    for (int i = 0; i < net->n_edges; i++)
      if (net->edges[i].dst_kind == END_VERTEX && net->edges[i].dst == v) op_input(agg, lw->edge_last[i]);
    finish_op(ir, agg);
    in = agg->id;
  } else {
    for (int i = 0; i < net->n_edges; i++)
      if (net->edges[i].dst_kind == END_VERTEX && net->edges[i].dst == v) in = lw->edge_last[i];
  }
  Op *op = new_op(ir, OP_VERTEX, "%s = %s(%s%s)", x->name, md->name, x->shared ? "shared" : "own copy",
                  x->trainable ? ", trainable" : ", frozen");
  op->vertex = v;
  op->width = md->hp.dim;
  op_input(op, in);
  Block b = model_block(&md->hp);
  Owner o = {x->shared ? OWN_MODEL : OWN_VERTEX, x->shared ? x->model : v, -1, x->trainable, "vertex"};
  const char *owner_name = x->shared ? md->name : x->name;
  if (x->shared && lw->model_params[x->model] >= 0) {
    int first = lw->model_params[x->model];
    for (int p = first; p < ir->n_params && ir->params[p].owner == OWN_MODEL && ir->params[p].owner_index == x->model &&
                        !strcmp(ir->params[p].group, "vertex");
         p++)
      op_param(op, p);
  } else {
    if (x->shared) lw->model_params[x->model] = ir->n_params;
    for (long l = 0; l < md->hp.layers; l++) {
      char prefix[96];
      snprintf(prefix, sizeof prefix, "%s.blk.%ld.", owner_name, l);
      block_params(ir, op, &o, &b, prefix);
    }
    op_param(op, add_param(ir, &o, md->hp.dim, 0, "%s.output_norm.weight", owner_name));
    if (b.gpt2) op_param(op, add_param(ir, &o, md->hp.dim, 0, "%s.output_norm.bias", owner_name));
  }
  finish_op(ir, op);
  block_cost(op, &b, (double)md->hp.layers);
  if (op->backward) op->saved.bt += (double)(md->hp.dim + 1);
  lw->vertex_op[v] = op->id;
}

/* Kahn's algorithm over vertices, lowest index first among the ready ones. */
static void topo_order(const Net *net, int *order) {
  int *indeg = calloc((size_t)net->n_vertices + 1, sizeof(int));
  char *done = calloc((size_t)net->n_vertices + 1, 1);
  for (int i = 0; i < net->n_edges; i++)
    if (net->edges[i].dst_kind == END_VERTEX && net->edges[i].src_kind != END_TOKENS) indeg[net->edges[i].dst] += net->edges[i].n_src;
  for (int k = 0; k < net->n_vertices; k++) {
    int v = 0;
    while (v < net->n_vertices && (done[v] || indeg[v] > 0)) v++;
    if (v == net->n_vertices) break; /* sema rejects cycles */
    done[v] = 1;
    order[k] = v;
    for (int i = 0; i < net->n_edges; i++) {
      const Edge *e = &net->edges[i];
      if (e->dst_kind != END_VERTEX || e->src_kind == END_TOKENS) continue;
      for (int s = 0; s < e->n_src; s++)
        if (e->srcs[s] == v) indeg[e->dst]--;
    }
  }
  free(indeg);
  free(done);
}

static int sources_ready(const Lower *lw, const Edge *e) {
  if (e->src_kind == END_TOKENS) return 1;
  for (int k = 0; k < e->n_src; k++)
    if (lw->vertex_op[e->srcs[k]] < 0) return 0;
  return 1;
}

static void emit_ready_edges(Lower *lw) {
  for (int i = 0; i < lw->net->n_edges; i++)
    if (!lw->edge_done[i] && sources_ready(lw, &lw->net->edges[i])) lw->edge_last[i] = edge_ops(lw, &lw->net->edges[i]);
}

void ir_build(Ir *ir, const Net *net) {
  memset(ir, 0, sizeof *ir);
  ir->net = net;
  int nv = net->n_vertices, nm = net->n_models;
  Lower lw = {.ir = ir, .net = net};
  lw.vertex_op = malloc(sizeof(int) * (size_t)(nv + 1));
  lw.model_params = malloc(sizeof(int) * (size_t)(nm + 1));
  lw.embed_param = malloc(sizeof(int) * (size_t)(nm + 1));
  lw.pos_param = malloc(sizeof(int) * (size_t)(nm + 1));
  lw.out_param = malloc(sizeof(int) * (size_t)(nm + 1));
  lw.prefix_param = malloc(sizeof(int) * (size_t)(nm + 1));
  lw.edge_done = calloc((size_t)net->n_edges + 1, 1);
  lw.edge_last = malloc(sizeof(int) * (size_t)(net->n_edges + 1));
  ir->vertex_order = malloc(sizeof(int) * (size_t)(nv + 1));
  for (int i = 0; i < nv; i++) lw.vertex_op[i] = -1;
  for (int i = 0; i < nm; i++)
    lw.model_params[i] = lw.embed_param[i] = lw.pos_param[i] = lw.out_param[i] = lw.prefix_param[i] = -1;
  topo_order(net, ir->vertex_order);
  emit_ready_edges(&lw);
  for (int k = 0; k < nv; k++) {
    vertex_ops(&lw, ir->vertex_order[k]);
    emit_ready_edges(&lw);
  }
  for (int l = 0; l < net->n_losses; l++) {
    const Loss *loss = &net->losses[l];
    const Output *o = &net->outputs[loss->output];
    Op *op = new_op(ir, OP_LOSS, "%s = %g * cross_entropy(%s, %s%s)", loss->name, loss->weight, o->name,
                    loss->target == TGT_LABELS ? "labels" : "next(tokens)", loss->smoothing > 0 ? ", smoothed" : "");
    op->loss = l;
    op_input(op, lw.edge_last[o->edge]);
    finish_op(ir, op);
  }
  free(lw.vertex_op);
  free(lw.model_params);
  free(lw.embed_param);
  free(lw.pos_param);
  free(lw.out_param);
  free(lw.prefix_param);
  free(lw.edge_done);
  free(lw.edge_last);
}

void ir_free(Ir *ir) {
  for (int i = 0; i < ir->n_ops; i++) {
    free(ir->ops[i].inputs);
    free(ir->ops[i].params);
  }
  free(ir->ops);
  free(ir->params);
  free(ir->vertex_order);
  memset(ir, 0, sizeof *ir);
}

long ir_param_total(const Ir *ir, int trainable_only) {
  long n = 0;
  for (int i = 0; i < ir->n_params; i++)
    if (!trainable_only || ir->params[i].trainable) n += ir->params[i].count;
  return n;
}

const char *op_kind_name(OpKind kind) {
  static const char *const names[] = {"embed", "sum", "aggregate", "vertex", "module", "head", "classify", "loss"};
  return names[kind];
}
