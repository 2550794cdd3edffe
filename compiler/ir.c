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

static void oom(void) {
  fprintf(stderr, "lmnc: out of memory\n");
  exit(2);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) oom();
  return q;
}

#define PUSH(arr, n, cap) ((n) == (cap) ? ((cap) = (cap) ? (cap) * 2 : 16, (arr) = xrealloc((arr), sizeof *(arr) * (size_t)(cap))) : (arr), &(arr)[(n)++])

/* ---- parameters ------------------------------------------------------------------------------ */

typedef struct Owner {
  OwnerKind kind;
  int index, module, trainable;
  const char *group;
} Owner;

/* A block member's from-scratch initialisation: norm gains one, biases zero, weights N(0, 0.02). */
static lmn_init member_init(int member) {
  switch (member) {
    case LMN_BM_attn_norm:
    case LMN_BM_ffn_norm: return LMN_INIT_ONE;
    case LMN_BM_attn_norm_b:
    case LMN_BM_bq:
    case LMN_BM_bk:
    case LMN_BM_bv:
    case LMN_BM_bqkv:
    case LMN_BM_bo:
    case LMN_BM_ffn_norm_b:
    case LMN_BM_b_up:
    case LMN_BM_b_down: return LMN_INIT_ZERO;
    default: return LMN_INIT_NORMAL;
  }
}

static lmn_init role_init(ParamRole role, int member) {
  switch (role) {
    case ROLE_BLOCK: return member_init(member);
    case ROLE_OUTPUT_NORM: return LMN_INIT_ONE;
    case ROLE_OUTPUT_NORM_B:
    case ROLE_BIAS: return LMN_INIT_ZERO;
    case ROLE_PREFIX: return LMN_INIT_EMBED_STATS;
    default: return LMN_INIT_NORMAL;
  }
}

/* The LMN_PARAM_ flags of a tensor (what `optimizer.no_decay` selects by). */
static unsigned role_kind(ParamRole role, int member) {
  if (role == ROLE_BLOCK) {
    int norm = member == LMN_BM_attn_norm || member == LMN_BM_ffn_norm || member == LMN_BM_attn_norm_b ||
               member == LMN_BM_ffn_norm_b;
    int bias = member_init(member) == LMN_INIT_ZERO; /* every bias, the LayerNorm ones too, starts at zero */
    return (norm ? LMN_PARAM_NORM : 0u) | (bias ? LMN_PARAM_BIAS : 0u);
  }
  switch (role) {
    case ROLE_OUTPUT_NORM: return LMN_PARAM_NORM;
    case ROLE_OUTPUT_NORM_B: return LMN_PARAM_NORM | LMN_PARAM_BIAS;
    case ROLE_BIAS: return LMN_PARAM_BIAS;
    case ROLE_TOKEN_EMBD:
    case ROLE_POS_EMBD:
    case ROLE_PREFIX: return LMN_PARAM_EMBEDDING;
    default: return 0;
  }
}

/* What a new tensor is: its role, and for blocks the member and layer (for weights/biases: which one). */
typedef struct Role {
  ParamRole role;
  int member, layer;
} Role;

/* The model whose file holds a tensor of this owner and role, or -1. */
static int owner_file_model(const Ir *ir, const Owner *o, ParamRole role) {
  const Net *net = ir->net;
  int m = o->kind == OWN_MODEL ? o->index : o->kind == OWN_VERTEX ? net->vertices[o->index].model : -1;
  if (m < 0 || net->models[m].source == SRC_NONE || role == ROLE_PREFIX) return -1;
  return m;
}

static int add_param(Ir *ir, const Owner *o, Role r, long rows, long cols, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int add_param(Ir *ir, const Owner *o, Role r, long rows, long cols, const char *fmt, ...) {
  Param *p = PUSH(ir->params, ir->n_params, ir->cap_params);
  memset(p, 0, sizeof *p);
  p->role = r.role;
  p->member = r.member;
  p->layer = r.layer;
  p->init = role_init(r.role, r.member);
  p->kind = role_kind(r.role, r.member);
  p->like = -1;
  p->file_model = owner_file_model(ir, o, r.role);
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

/* The widths of one transformer block; edge: LMNet's GPT-2 attention-block edge (no pre-norm, d -> d MLP). */
typedef struct Block {
  long d, heads, kv_heads, ffn;
  int gpt2, qkv_bias, edge;
} Block;

static Block model_block(const lmn_hparams *hp) {
  Block b = {hp->dim, hp->heads, hp->kv_heads, hp->ffn, hp->arch == LMN_ARCH_GPT2, hp->qkv_bias, 0};
  return b;
}

static void op_param(Op *op, int p) {
  op->params = xrealloc(op->params, sizeof(int) * (size_t)(op->n_params + 1));
  op->params[op->n_params++] = p;
}

/* The shape of block member m, [rows, cols] (cols 0: a vector); 0 when the block kind has no such tensor. */
static int member_shape(const Block *b, int m, long shape[2]) {
  long d = b->d, kvd = b->kv_heads * (d / b->heads), f = b->edge ? d : b->ffn;
  long rows = 0, cols = 0;
  switch (m) {
    case LMN_BM_attn_norm: rows = b->edge ? 0 : d; break;
    case LMN_BM_attn_norm_b: rows = b->gpt2 && !b->edge ? d : 0; break;
    case LMN_BM_wq: rows = b->gpt2 ? 0 : d, cols = d; break;
    case LMN_BM_wk:
    case LMN_BM_wv: rows = b->gpt2 ? 0 : kvd, cols = d; break;
    case LMN_BM_bq: rows = b->qkv_bias ? d : 0; break;
    case LMN_BM_bk:
    case LMN_BM_bv: rows = b->qkv_bias ? kvd : 0; break;
    case LMN_BM_wqkv: rows = b->gpt2 ? 3 * d : 0, cols = d; break;
    case LMN_BM_bqkv: rows = b->gpt2 ? 3 * d : 0; break;
    case LMN_BM_wo: rows = d, cols = d; break;
    case LMN_BM_bo:
    case LMN_BM_ffn_norm_b: rows = b->gpt2 ? d : 0; break;
    case LMN_BM_ffn_norm: rows = d; break;
    case LMN_BM_w_gate: rows = b->gpt2 ? 0 : f, cols = d; break;
    case LMN_BM_w_up: rows = f, cols = d; break;
    case LMN_BM_b_up: rows = b->gpt2 ? f : 0; break;
    case LMN_BM_w_down: rows = b->edge ? 0 : d, cols = f; break;
    case LMN_BM_b_down: rows = b->gpt2 && !b->edge ? d : 0; break;
    default: break;
  }
  shape[0] = rows;
  shape[1] = rows ? cols : 0;
  return rows > 0;
}

/* Adds the tensors of block `layer` under `prefix` (e.g. "qwen.blk.3."), in GGUF naming and member order. */
static void block_params(Ir *ir, Op *op, const Owner *o, const Block *b, const char *prefix, int layer) {
  for (int m = 0; m < LMN_BM_COUNT; m++) {
    long shape[2];
    if (!member_shape(b, m, shape)) continue;
    Role r = {ROLE_BLOCK, m, layer};
    op_param(op, add_param(ir, o, r, shape[0], shape[1], "%s%s", prefix, lmn_block_member_gguf[m]));
  }
}

/* Multiply-adds per token of a block's GEMMs, and the floats it keeps for the backward pass. */
static double block_gemm(const Block *b) {
  long d = b->d, kvd = b->kv_heads * (d / b->heads);
  if (b->edge) return (double)(5 * d * d);
  if (b->gpt2) return (double)(3 * d * d + d * d + 2 * d * b->ffn);
  return (double)(2 * d * d + 2 * d * kvd + 3 * d * b->ffn);
}

static double block_saved(const Block *b) {
  long d = b->d, kvd = b->kv_heads * (d / b->heads);
  if (b->edge) return (double)(8 * d + b->heads + 2);
  if (b->gpt2) return (double)(8 * d + 2 * b->ffn + b->heads + 4);
  return (double)(6 * d + 2 * kvd + 3 * b->ffn + b->heads + 2);
}

/* FLOPs of `times` blocks: GEMMs (2 per multiply-add) and causal attention over T(T+1)/2 pairs; their
 * backward computes the data gradient when dx, the weight gradients when dw (none: the backward stops above
 * them), and keeps their activations whenever the op has a backward. */
static void block_cost(Op *op, const Block *b, double times, int dx, int dw) {
  double attn = 2.0 * (double)b->d; /* 4d FLOPs per (query, key) pair, T(T+1)/2 pairs per sequence */
  op->fwd.bt += times * (2.0 * block_gemm(b) + attn);
  op->fwd.btt += times * attn;
  if (!op->backward) return;
  double bwd_attn = dx || dw ? 2.5 * attn : 0.0;
  op->bwd.bt += times * (2.0 * block_gemm(b) * (dx + dw) + bwd_attn);
  op->bwd.btt += times * bwd_attn;
  op->saved.bt += times * block_saved(b);
}

/* ---- ops ------------------------------------------------------------------------------------- */

static Op *new_op(Ir *ir, OpKind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static Op *new_op(Ir *ir, OpKind kind, const char *fmt, ...) {
  Op *op = PUSH(ir->ops, ir->n_ops, ir->cap_ops);
  memset(op, 0, sizeof *op);
  op->id = ir->n_ops - 1;
  op->kind = kind;
  op->edge = op->module = op->vertex = op->loss = op->model = op->norm_w = op->norm_b = -1;
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
  int *in_at, *in_list;   /* edges into vertex v: in_list[in_at[v] .. in_at[v + 1]), in edge order */
  int *out_at, *out_list; /* edges reading vertex v (once per source slot), in edge order */
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

static const Role R_TOKEN = {ROLE_TOKEN_EMBD, 0, 0}, R_POS = {ROLE_POS_EMBD, 0, 0}, R_PREFIX = {ROLE_PREFIX, 0, 0},
                  R_HEAD = {ROLE_HEAD, 0, 0}, R_NORM = {ROLE_OUTPUT_NORM, 0, 0}, R_NORM_B = {ROLE_OUTPUT_NORM_B, 0, 0},
                  R_W0 = {ROLE_WEIGHT, 0, 0}, R_B0 = {ROLE_BIAS, 0, 0}, R_W1 = {ROLE_WEIGHT, 1, 0},
                  R_B1 = {ROLE_BIAS, 1, 0};

static int model_embedding(Lower *lw, int m, int trainable) {
  Ir *ir = lw->ir;
  const Model *md = &lw->net->models[m];
  if (lw->embed_param[m] < 0) {
    Owner o = {OWN_MODEL, m, -1, trainable, "embedding"};
    lw->embed_param[m] = add_param(ir, &o, R_TOKEN, md->hp.vocab, md->hp.dim, "%s.token_embd.weight", md->name);
    if (md->hp.arch == LMN_ARCH_GPT2)
      lw->pos_param[m] = add_param(ir, &o, R_POS, md->hp.ctx, md->hp.dim, "%s.position_embd.weight", md->name);
  }
  return lw->embed_param[m];
}

/* The parameters of each module kind; returns the multiply-adds per row of its GEMMs. */
static double embed_params(Lower *lw, Op *op, const Module *m) {
  Ir *ir = lw->ir;
  const Model *md = &lw->net->models[m->model];
  op_param(op, model_embedding(lw, m->model, m->trainable));
  if (lw->pos_param[m->model] >= 0) op_param(op, lw->pos_param[m->model]);
  if (m->prefix) {
    if (lw->prefix_param[m->model] < 0) {
      Owner o = {OWN_MODEL, m->model, -1, 0, "prefix"}; /* fixed: drawn once, never trained */
      int p = add_param(ir, &o, R_PREFIX, m->prefix, md->hp.dim, "%s.prefix", md->name);
      ir->params[p].like = lw->embed_param[m->model];
      lw->prefix_param[m->model] = p;
    }
    op_param(op, lw->prefix_param[m->model]);
  }
  return 0;
}

static double head_params(Lower *lw, Op *op, const Module *m) {
  const Model *md = &lw->net->models[m->model];
  if (md->hp.tied) {
    op_param(op, model_embedding(lw, m->model, m->trainable));
  } else {
    if (lw->out_param[m->model] < 0) {
      Owner o = {OWN_MODEL, m->model, -1, m->trainable, "head"};
      lw->out_param[m->model] = add_param(lw->ir, &o, R_HEAD, md->hp.vocab, md->hp.dim, "%s.output.weight", md->name);
    }
    op_param(op, lw->out_param[m->model]);
  }
  return (double)(m->din * m->dout);
}

/* linear and classify: weight [out, in] and (when there is one) bias [out]. */
static double linear_params(Lower *lw, Op *op, const Owner *o, const Module *m, int bias, const char *prefix) {
  int w = add_param(lw->ir, o, R_W0, m->dout, m->din, "%sweight", prefix);
  if (m->init != INIT_NORMAL) lw->ir->params[w].init = m->init == INIT_ZERO ? LMN_INIT_ZERO : LMN_INIT_IDENTITY;
  op_param(op, w);
  if (bias) op_param(op, add_param(lw->ir, o, R_B0, m->dout, 0, "%sbias", prefix));
  return (double)(m->din * m->dout);
}

static double mlp_params(Lower *lw, Op *op, const Owner *o, const Module *m, const char *prefix) {
  op_param(op, add_param(lw->ir, o, R_W0, m->hidden, m->din, "%sfc1.weight", prefix));
  op_param(op, add_param(lw->ir, o, R_B0, m->hidden, 0, "%sfc1.bias", prefix));
  op_param(op, add_param(lw->ir, o, R_W1, m->dout, m->hidden, "%sfc2.weight", prefix));
  op_param(op, add_param(lw->ir, o, R_B1, m->dout, 0, "%sfc2.bias", prefix));
  return 2.0 * (double)(m->din * m->hidden);
}

/* Floats per row a module's backward keeps (linear-like modules: their input and output). */
static double module_saved(const Module *m) {
  if (m->kind == MOD_HEAD || m->kind == MOD_CLASSIFY) return (double)(m->din + m->dout);
  if (m->kind == MOD_MLP) return 2.0 * (double)(m->din + m->hidden);
  return (double)m->din;
}

/* Costs of a GEMM module: rows B*T (B for classify), 2 FLOPs per multiply-add, the backward's data and weight
 * GEMMs only where needed. */
static void gemm_cost(Op *op, const Module *m, double gemm) {
  if (m->kind == MOD_CLASSIFY) {
    op->fwd.b = 2.0 * gemm;
    if (op->backward) op->bwd.b = op->fwd.b * ((op->grad_in || op->trainable) + op->trainable);
    op->saved.b = module_saved(m);
    return;
  }
  op->fwd.bt = 2.0 * gemm;
  if (!op->backward) return;
  op->bwd.bt = 2.0 * gemm * (op->grad_in + op->trainable);
  op->saved.bt = module_saved(m);
}

/* A decoder_layer or gpt2 edge: one block of the model's shape. */
static void block_module(Lower *lw, Op *op, const Owner *o, const Module *m, const char *prefix) {
  const Model *md = &lw->net->models[m->model];
  Block b = model_block(&md->hp);
  if (m->kind == MOD_GPT2_EDGE) b = (Block){m->din, md->hp.heads, md->hp.heads, m->din, 1, 0, 1};
  block_params(lw->ir, op, o, &b, prefix, 0);
  op->layers = 1;
  finish_op(lw->ir, op);
  block_cost(op, &b, 1.0, op->grad_in || op->trainable, op->trainable);
}

static void module_op(Lower *lw, const Edge *e, int j, int *prev) {
  Ir *ir = lw->ir;
  const Module *m = &e->mods[j];
  if (m->kind == MOD_IDENTITY) return;
  char desc[160], prefix[SEMA_MAX_EDGE_KEY + 32];
  module_describe(lw->net, m, desc, sizeof desc);
  snprintf(prefix, sizeof prefix, "%s.m%d.", e->key, j);
  OpKind kind = m->kind == MOD_EMBED ? OP_EMBED : m->kind == MOD_HEAD ? OP_HEAD : m->kind == MOD_CLASSIFY ? OP_CLASSIFY : OP_MODULE;
  Op *op = new_op(ir, kind, "e%d.m%d %s [%s]", e->id, j, desc, e->label);
  op->edge = e->id;
  op->module = j;
  op->width = m->dout;
  op->model = m->model;
  if (*prev >= 0) op_input(op, *prev);
  Owner o = {OWN_EDGE, e->id, j, m->kind == MOD_CLASSIFY ? m->trainable : 1, mod_kind_name(m->kind)};
  *prev = op->id;
  if (m->kind == MOD_DECODER || m->kind == MOD_GPT2_EDGE) {
    block_module(lw, op, &o, m, prefix);
    return;
  }
  double gemm = m->kind == MOD_EMBED ? embed_params(lw, op, m)
                : m->kind == MOD_HEAD ? head_params(lw, op, m)
                : m->kind == MOD_MLP  ? mlp_params(lw, op, &o, m, prefix)
                                      : linear_params(lw, op, &o, m, m->kind == MOD_CLASSIFY || m->bias, prefix);
  finish_op(ir, op);
  if (m->kind != MOD_EMBED) gemm_cost(op, m, gemm);
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
  /* a chain into an output that several chains end in stops before its head (joined_heads) */
  int n = e->dst_kind == END_OUTPUT && lw->net->outputs[e->dst].n_more > 0 ? e->n_mods - 1 : e->n_mods;
  for (int j = 0; j < n; j++) module_op(lw, e, j, &prev);
  lw->edge_done[e->id] = 1;
  return prev;
}

/* Outputs that several chains end in: the chains' vectors summed, then the one head they all name. */
static void joined_heads(Lower *lw) {
  const Net *net = lw->net;
  for (int i = 0; i < net->n_outputs; i++) {
    const Output *o = &net->outputs[i];
    if (o->n_more == 0) continue;
    const Edge *first = &net->edges[o->edge];
    Op *sum = new_op(lw->ir, OP_SUM, "%s: sum of %d chains before the head", o->name, o->n_more + 1);
    sum->edge = first->id;
    sum->width = first->mods[first->n_mods - 1].din;
    op_input(sum, lw->edge_last[o->edge]);
    for (int k = 0; k < o->n_more; k++) op_input(sum, lw->edge_last[o->more[k]]);
    finish_op(lw->ir, sum);
    int prev = sum->id;
    module_op(lw, first, first->n_mods - 1, &prev);
    lw->edge_last[o->edge] = prev;
    for (int k = 0; k < o->n_more; k++) lw->edge_last[o->more[k]] = prev;
  }
}

/* The layers and final norm of a vertex: its own, or (shared) its model's, created by the first call. */
static void vertex_params(Lower *lw, Op *op, const Vertex *x) {
  Ir *ir = lw->ir;
  const Model *md = &lw->net->models[x->model];
  if (x->shared && lw->model_params[x->model] >= 0) {
    const Op *first = &ir->ops[lw->model_params[x->model]];
    for (int k = 0; k < first->n_params; k++) op_param(op, first->params[k]);
    return;
  }
  if (x->shared) lw->model_params[x->model] = op->id;
  Block b = model_block(&md->hp);
  Owner o = {x->shared ? OWN_MODEL : OWN_VERTEX, x->shared ? x->model : (int)(x - lw->net->vertices), -1, x->trainable,
             "vertex"};
  const char *owner_name = x->shared ? md->name : x->name;
  for (int l = 0; l < md->hp.layers; l++) {
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s.blk.%d.", owner_name, l);
    Owner ol = o; /* `last N`: the layers before the last N stay frozen */
    ol.trainable = x->trainable && l >= x->frozen_layers;
    block_params(ir, op, &ol, &b, prefix, l);
  }
  op_param(op, add_param(ir, &o, R_NORM, md->hp.dim, 0, "%s.output_norm.weight", owner_name));
  if (b.gpt2) op_param(op, add_param(ir, &o, R_NORM_B, md->hp.dim, 0, "%s.output_norm.bias", owner_name));
}

static void vertex_ops(Lower *lw, int v) {
  Ir *ir = lw->ir;
  const Net *net = lw->net;
  const Vertex *x = &net->vertices[v];
  const Model *md = &net->models[x->model];
  int n_in = lw->in_at[v + 1] - lw->in_at[v], in = n_in ? lw->edge_last[lw->in_list[lw->in_at[v + 1] - 1]] : -1;
  if (n_in > 1) {
    Op *agg = new_op(ir, OP_AGGREGATE, "%s %s of %d inputs", x->name, net->aggregate == AGG_MEAN ? "mean" : "sum", n_in);
    agg->vertex = v;
    agg->width = md->hp.dim;
    for (int k = lw->in_at[v]; k < lw->in_at[v + 1]; k++) op_input(agg, lw->edge_last[lw->in_list[k]]);
    finish_op(ir, agg);
    in = agg->id;
  }
  char how[48];
  Op *op = new_op(ir, OP_VERTEX, "%s = %s(%s, %s)", x->name, md->name, x->shared ? "shared" : "own copy",
                  sema_vertex_training(net, x, how, sizeof how));
  op->vertex = v;
  op->width = md->hp.dim;
  op->model = x->model;
  op->layers = (int)md->hp.layers;
  op_input(op, in);
  vertex_params(lw, op, x);
  finish_op(ir, op);
  Block b = model_block(&md->hp);
  /* Trainable layers take weight gradients, and a data gradient unless nothing below wants one (the lowest
   * trainable layer passes it down only when an input takes a gradient); frozen layers (all of a frozen
   * vertex, the ones before the last N otherwise) take a data gradient only for an input. */
  double frozen = x->trainable ? x->frozen_layers : (double)md->hp.layers,
         trained = (double)md->hp.layers - frozen;
  if (trained > 0) {
    block_cost(op, &b, trained - 1, 1, 1);
    block_cost(op, &b, 1, op->grad_in, 1);
  }
  block_cost(op, &b, frozen, op->grad_in, 0);
  if (op->backward) op->saved.bt += (double)(md->hp.dim + 1);
  lw->vertex_op[v] = op->id;
}

/* Edges into and out of every vertex as index lists (counting sort, edge order kept). */
static void adjacency(Lower *lw) {
  const Net *net = lw->net;
  int nv = net->n_vertices, ne = net->n_edges;
  lw->in_at = calloc((size_t)nv + 2, sizeof(int));
  lw->out_at = calloc((size_t)nv + 2, sizeof(int));
  lw->in_list = malloc(sizeof(int) * (size_t)(ne + 1));
  lw->out_list = malloc(sizeof(int) * (size_t)(ne * SEMA_MAX_SUMMED + 1));
  if (!lw->in_at || !lw->out_at || !lw->in_list || !lw->out_list) oom();
  for (int i = 0; i < ne; i++) {
    const Edge *e = &net->edges[i];
    if (e->dst_kind == END_VERTEX) lw->in_at[e->dst + 1]++;
    for (int s = 0; e->src_kind != END_TOKENS && s < e->n_src; s++) lw->out_at[e->srcs[s] + 1]++;
  }
  for (int v = 0; v < nv; v++) lw->in_at[v + 1] += lw->in_at[v], lw->out_at[v + 1] += lw->out_at[v];
  int *fill_in = calloc((size_t)nv + 1, sizeof(int)), *fill_out = calloc((size_t)nv + 1, sizeof(int));
  if (!fill_in || !fill_out) oom();
  for (int i = 0; i < ne; i++) {
    const Edge *e = &net->edges[i];
    if (e->dst_kind == END_VERTEX) lw->in_list[lw->in_at[e->dst] + fill_in[e->dst]++] = i;
    for (int s = 0; e->src_kind != END_TOKENS && s < e->n_src; s++)
      lw->out_list[lw->out_at[e->srcs[s]] + fill_out[e->srcs[s]]++] = i;
  }
  free(fill_in);
  free(fill_out);
}

/* A min-heap of vertex indices: the ready vertex with the lowest index comes first. */
static void heap_push(int *h, int *n, int v) {
  int i = (*n)++;
  for (; i > 0 && h[(i - 1) / 2] > v; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
  h[i] = v;
}

static int heap_pop(int *h, int *n) {
  int top = h[0], last = h[--*n], i = 0;
  for (;;) {
    int c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && h[c + 1] < h[c]) c++;
    if (h[c] >= last) break;
    h[i] = h[c];
    i = c;
  }
  if (*n > 0) h[i] = last;
  return top;
}

/* Kahn's algorithm over vertices, lowest index first among the ready ones: O((V + E) log V). */
static void topo_order(const Lower *lw, int *order) {
  const Net *net = lw->net;
  int nv = net->n_vertices, n = 0;
  int *indeg = calloc((size_t)nv + 1, sizeof(int)), *heap = malloc(sizeof(int) * (size_t)(nv + 1));
  if (!indeg || !heap) oom();
  for (int i = 0; i < net->n_edges; i++)
    if (net->edges[i].dst_kind == END_VERTEX && net->edges[i].src_kind != END_TOKENS) indeg[net->edges[i].dst] += net->edges[i].n_src;
  for (int v = 0; v < nv; v++)
    if (!indeg[v]) heap_push(heap, &n, v);
  for (int k = 0; k < nv && n > 0; k++) { /* sema rejects cycles */
    int v = heap_pop(heap, &n);
    order[k] = v;
    for (int j = lw->out_at[v]; j < lw->out_at[v + 1]; j++) {
      const Edge *e = &net->edges[lw->out_list[j]];
      if (e->dst_kind == END_VERTEX && --indeg[e->dst] == 0) heap_push(heap, &n, e->dst);
    }
  }
  free(indeg);
  free(heap);
}

static int sources_ready(const Lower *lw, const Edge *e) {
  if (e->src_kind == END_TOKENS) return 1;
  for (int k = 0; k < e->n_src; k++)
    if (lw->vertex_op[e->srcs[k]] < 0) return 0;
  return 1;
}

/* After vertex v (or at the start, v < 0: the token edges): every edge whose sources are now all computed,
 * in edge order. */
static void emit_ready_edges(Lower *lw, int v) {
  const Net *net = lw->net;
  if (v < 0) {
    for (int i = 0; i < net->n_edges; i++)
      if (!lw->edge_done[i] && sources_ready(lw, &net->edges[i])) lw->edge_last[i] = edge_ops(lw, &net->edges[i]);
    return;
  }
  for (int j = lw->out_at[v]; j < lw->out_at[v + 1]; j++) { /* out_list is in edge order */
    int i = lw->out_list[j];
    if (!lw->edge_done[i] && sources_ready(lw, &net->edges[i])) lw->edge_last[i] = edge_ops(lw, &net->edges[i]);
  }
}

/* Each block op's binding table and each vertex's final norm, from the roles of its parameters. */
static void bind_blocks(Ir *ir) {
  for (int i = 0; i < ir->n_ops; i++) {
    Op *op = &ir->ops[i];
    if (op->layers > 0) {
      op->bind = xrealloc(NULL, sizeof(int) * (size_t)op->layers * LMN_BM_COUNT);
      for (int k = 0; k < op->layers * LMN_BM_COUNT; k++) op->bind[k] = -1;
    }
    for (int k = 0; k < op->n_params; k++) {
      const Param *p = &ir->params[op->params[k]];
      if (p->role == ROLE_BLOCK && op->bind) op->bind[p->layer * LMN_BM_COUNT + p->member] = op->params[k];
      if (p->role == ROLE_OUTPUT_NORM && op->kind == OP_VERTEX) op->norm_w = op->params[k];
      if (p->role == ROLE_OUTPUT_NORM_B && op->kind == OP_VERTEX) op->norm_b = op->params[k];
    }
  }
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
  adjacency(&lw);
  topo_order(&lw, ir->vertex_order);
  emit_ready_edges(&lw, -1);
  for (int k = 0; k < nv; k++) {
    vertex_ops(&lw, ir->vertex_order[k]);
    emit_ready_edges(&lw, ir->vertex_order[k]);
  }
  joined_heads(&lw);
  for (int l = 0; l < net->n_losses; l++) {
    const Loss *loss = &net->losses[l];
    const Output *o = &net->outputs[loss->output];
    Op *op = new_op(ir, OP_LOSS, "%s = %g * cross_entropy(%s, %s%s)", loss->name, loss->weight, o->name,
                    loss->target == TGT_LABELS ? "labels" : "next(tokens)", loss->smoothing > 0 ? ", smoothed" : "");
    op->loss = l;
    op_input(op, lw.edge_last[o->edge]);
    finish_op(ir, op);
  }
  bind_blocks(ir);
  free(lw.vertex_op);
  free(lw.model_params);
  free(lw.embed_param);
  free(lw.pos_param);
  free(lw.out_param);
  free(lw.prefix_param);
  free(lw.edge_done);
  free(lw.edge_last);
  free(lw.in_at);
  free(lw.in_list);
  free(lw.out_at);
  free(lw.out_list);
}

void ir_free(Ir *ir) {
  for (int i = 0; i < ir->n_ops; i++) {
    free(ir->ops[i].inputs);
    free(ir->ops[i].params);
    free(ir->ops[i].bind);
  }
  free(ir->ops);
  free(ir->params);
  free(ir->vertex_order);
  memset(ir, 0, sizeof *ir);
}

void ir_flops(const Ir *ir, Cost *fwd, Cost *train) {
  memset(fwd, 0, sizeof *fwd);
  memset(train, 0, sizeof *train);
  for (int i = 0; i < ir->n_ops; i++) {
    const Op *op = &ir->ops[i];
    fwd->b += op->fwd.b, fwd->bt += op->fwd.bt, fwd->btt += op->fwd.btt;
    train->b += op->fwd.b + op->bwd.b, train->bt += op->fwd.bt + op->bwd.bt,
        train->btt += op->fwd.btt + op->bwd.btt;
  }
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

const char *param_file_name(const Param *p) {
  const char *dot = strchr(p->name, '.');
  return dot ? dot + 1 : p->name;
}
