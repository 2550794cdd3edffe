/* emit_c.c: writes the C code of one network from its IR: the parameter table (trainable tensors first),
 * block configurations and weight bindings as constants, an activation plan, and straight-line forward,
 * backward and cached-decode functions calling the runtime's fused kernels and modules. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "emit.h"

typedef struct Emit {
  const Ir *ir;
  const Net *net;
  FILE *o;
  int *gen;       /* IR param index -> generated param index */
  int *order;     /* generated index -> IR param index */
  long *offset;   /* generated index -> float offset */
  int *blk_first; /* op -> first block row (vertex layers or the module's one block), -1 */
  int n_blk;
  int *group;        /* vertex op -> first op of its group of shared instances run as one batch, or -1 */
} Emit;

static void out(Emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(Emit *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(e->o, fmt, ap);
  va_end(ap);
}

static int primary_output_op(const Emit *e);

/* ---- parameter table --------------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !strcmp(s + n - m, suffix);
}

static const char *init_kind(const Param *p) {
  if (ends_with(p->name, ".prefix")) return "LMN_INIT_EMBED_STATS";
  if (ends_with(p->name, "norm.weight")) return "LMN_INIT_ONE";
  if (ends_with(p->name, ".bias")) return "LMN_INIT_ZERO";
  return "LMN_INIT_NORMAL";
}

static const char *owner_name(const Emit *e, const Param *p, char *buf, size_t n) {
  const Net *net = e->net;
  if (p->owner == OWN_MODEL) return net->models[p->owner_index].name;
  if (p->owner == OWN_VERTEX) return net->vertices[p->owner_index].name;
  const Edge *ed = &net->edges[p->owner_index];
  if (ed->type) return ed->type;
  snprintf(buf, n, "e%d", ed->id);
  return buf;
}

/* The model whose file holds a tensor, or -1 (edges, from-scratch models, the fixed prefix). */
static int file_model(const Emit *e, const Param *p) {
  const Net *net = e->net;
  int m = p->owner == OWN_MODEL ? p->owner_index : p->owner == OWN_VERTEX ? net->vertices[p->owner_index].model : -1;
  if (m < 0 || net->models[m].source == SRC_NONE || ends_with(p->name, ".prefix")) return -1;
  return m;
}

static int from_file(const Emit *e, const Param *p) { return file_model(e, p) >= 0; }

/* Index of a model among those read from files (the desc's model table). */
static int file_model_index(const Emit *e, int m) {
  int k = 0;
  for (int i = 0; i < m; i++) k += e->net->models[i].source != SRC_NONE;
  return k;
}

/* For the fixed prefix "M.prefix": the generated index of "M.token_embd.weight", else -1. */
static int like_param(const Emit *e, const Param *p) {
  if (!ends_with(p->name, ".prefix")) return -1;
  char want[128];
  snprintf(want, sizeof want, "%.*s.token_embd.weight", (int)(strlen(p->name) - strlen(".prefix")), p->name);
  for (int i = 0; i < e->ir->n_params; i++)
    if (!strcmp(e->ir->params[i].name, want)) return e->gen[i];
  return -1;
}

static void layout_params(Emit *e) {
  const Ir *ir = e->ir;
  int n = 0;
  long off = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < ir->n_params; i++) {
      if (ir->params[i].trainable != (pass == 0)) continue;
      e->gen[i] = n;
      e->order[n] = i;
      e->offset[n] = off;
      off += ir->params[i].count;
      n++;
    }
}

static uint64_t network_hash(const Emit *e) {
  uint64_t h = 1469598103934665603ULL;
  const Ir *ir = e->ir;
  char buf[256];
  for (int i = 0; i < ir->n_params; i++) {
    const Param *p = &ir->params[ir->n_params ? e->order[i] : 0];
    int n = snprintf(buf, sizeof buf, "%s:%ld:%ld:%d;", p->name, p->shape[0], p->shape[1], p->trainable);
    for (int k = 0; k < n; k++) h = (h ^ (unsigned char)buf[k]) * 1099511628211ULL;
  }
  h = (h ^ (uint64_t)e->net->aggregate) * 1099511628211ULL;
  return h;
}

static void emit_param_table(Emit *e) {
  const Ir *ir = e->ir;
  out(e, "/* The parameter table: trainable tensors first (gradients and AdamW moments cover exactly those). */\n");
  out(e, "static const lmn_param_info params[%d] = {\n", ir->n_params ? ir->n_params : 1);
  for (int k = 0; k < ir->n_params; k++) {
    const Param *p = &ir->params[e->order[k]];
    char ob[32];
    int fm = file_model(e, p);
    out(e, "    {\"%s\", %ld, %ld, %ld, %d, %d, \"%s\", %s, %d, %d, %d, ", p->name, e->offset[k], p->shape[0], p->shape[1],
        p->trainable, p->owner == OWN_EDGE ? p->owner_index : -1, owner_name(e, p, ob, sizeof ob), init_kind(p),
        from_file(e, p), like_param(e, p), fm >= 0 ? file_model_index(e, fm) : -1);
    if (fm >= 0) out(e, "\"%s\"}, /* p%d */\n", strchr(p->name, '.') + 1, k); /* the file's name: without the owner */
    else out(e, "NULL}, /* p%d */\n", k);
  }
  out(e, "};\n\n");
  int n = 0;
  for (int m = 0; m < e->net->n_models; m++) n += e->net->models[m].source != SRC_NONE;
  out(e, "/* Models read from files, with the hyper-parameters this code was compiled for. */\n");
  out(e, "static const lmn_model_info models[%d] = {\n", n ? n : 1);
  for (int m = 0; m < e->net->n_models; m++) {
    const Model *md = &e->net->models[m];
    if (md->source == SRC_NONE) continue;
    const lmn_hparams *h = &md->hp;
    out(e, "    {\"%s\", \"%s\", %d, {%d, %ld, %ld, %ld, %ld, %ld, %ld, %ld, %.17g, %.17g, %d, %d}},\n", md->name, md->file,
        md->source == SRC_GGUF ? 1 : 2, (int)h->arch, h->dim, h->layers, h->heads, h->kv_heads, h->ffn, h->vocab,
        h->ctx, h->eps, h->rope_theta, h->tied, h->qkv_bias);
  }
  if (!n) out(e, "    {0},\n");
  out(e, "};\n\n");
}

/* ---- blocks ------------------------------------------------------------------------------------ */

static const char *const member_suffix[19] = {
    "attn_norm.weight", "attn_norm.bias", "attn_q.weight",   "attn_q.bias",        "attn_k.weight",
    "attn_k.bias",      "attn_v.weight",  "attn_v.bias",     "attn_qkv.weight",    "attn_qkv.bias",
    "attn_output.weight", "attn_output.bias", "ffn_norm.weight", "ffn_norm.bias", "ffn_gate.weight",
    "ffn_up.weight",    "ffn_up.bias",    "ffn_down.weight", "ffn_down.bias"};

static int is_block_op(const Emit *e, const Op *op) {
  if (op->kind == OP_VERTEX) return 1;
  if (op->kind != OP_MODULE) return 0;
  ModKind k = e->net->edges[op->edge].mods[op->module].kind;
  return k == MOD_DECODER || k == MOD_GPT2_EDGE;
}

/* The model whose shape an op's blocks take. */
static const Model *op_model(const Emit *e, const Op *op) {
  const Net *net = e->net;
  if (op->kind == OP_VERTEX) return &net->models[net->vertices[op->vertex].model];
  int m = net->edges[op->edge].mods[op->module].model;
  return m >= 0 ? &net->models[m] : NULL;
}

static long op_layers(const Emit *e, const Op *op) { return op->kind == OP_VERTEX ? op_model(e, op)->hp.layers : 1; }

static void emit_blocks(Emit *e) {
  const Ir *ir = e->ir;
  out(e, "/* Weight bindings of every block instance (vertex layers, decoder and gpt2 edges): parameter indices in\n"
         " * lmn_block_w member order, -1 where the block kind has no such tensor. */\n");
  int rows = 0;
  for (int i = 0; i < ir->n_ops; i++) rows += is_block_op(e, &ir->ops[i]) ? (int)op_layers(e, &ir->ops[i]) : 0;
  out(e, "static const int blk[%d][19] = {\n", rows ? rows : 1);
  for (int i = 0; i < ir->n_ops; i++) {
    const Op *op = &ir->ops[i];
    e->blk_first[i] = -1;
    if (!is_block_op(e, op)) continue;
    e->blk_first[i] = e->n_blk;
    for (long l = 0; l < op_layers(e, op); l++) {
      char tag[48];
      snprintf(tag, sizeof tag, ".blk.%ld.", l);
      int idx[19];
      for (int j = 0; j < 19; j++) idx[j] = -1;
      for (int k = 0; k < op->n_params; k++) {
        const Param *p = &ir->params[op->params[k]];
        if (op->kind == OP_VERTEX && !strstr(p->name, tag)) continue;
        for (int j = 0; j < 19; j++)
          if (ends_with(p->name, member_suffix[j])) idx[j] = e->gen[op->params[k]];
      }
      out(e, "    {");
      for (int j = 0; j < 19; j++) out(e, "%s%d", j ? ", " : "", idx[j]);
      out(e, "}, /* op%d layer %ld */\n", i, l);
      e->n_blk++;
    }
  }
  if (!rows) out(e, "    {0},\n");
  out(e, "};\n\n");
  for (int i = 0; i < ir->n_ops; i++) {
    const Op *op = &ir->ops[i];
    if (!is_block_op(e, op)) continue;
    const Model *m = op_model(e, op);
    const lmn_hparams *hp = &m->hp;
    const char *kind = hp->arch == LMN_ARCH_GPT2 ? "LMN_BLOCK_GPT2" : hp->arch == LMN_ARCH_QWEN2 ? "LMN_BLOCK_QWEN2" : "LMN_BLOCK_LLAMA";
    long hd = hp->dim / hp->heads, ffn = hp->ffn, kv = hp->kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    if (op->kind == OP_MODULE && e->net->edges[op->edge].mods[op->module].kind == MOD_GPT2_EDGE) {
      kind = "LMN_BLOCK_GPT2_EDGE";
      ffn = hp->dim;
      kv = hp->heads;
      if (e->net->edges[op->edge].mods[op->module].unscaled) scale = 1.0f;
    }
    /* a grouped call's own configuration serves only cached decoding, which class networks lack */
    const char *unused = e->group[i] >= 0 && e->group[i] != i ? "__attribute__((unused)) " : "";
    out(e, "static const lmn_block_cfg %scfg%d = {%s, %ld, %ld, %ld, %ld, %ld, (float)%.9g, %d, (float)%.9g};\n", unused, i,
        kind, hp->dim, hp->heads, kv, hd, ffn, hp->eps, hp->qkv_bias, scale);
  }
  out(e, "\n");
}

/* ---- plan -------------------------------------------------------------------------------------- */

static int needs_dout(const Op *op) {
  return op->backward && op->kind != OP_HEAD && op->kind != OP_CLASSIFY && op->kind != OP_LOSS &&
         op->kind != OP_AGGREGATE;
}

/* The ops whose output `op` reads (through an aggregation, its inputs). */
static int op_reads(const Ir *ir, const Op *op, int *ins) {
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

/* The members of op f's group (f first), or 0 when op f leads no group. */
static int group_members(const Emit *e, int f, int *members) {
  int k = 0;
  for (int i = 0; i < e->ir->n_ops; i++)
    if (e->group[i] == f) members[k++] = i;
  return k;
}

/* Vertex calls of one shared weight set (same trainability) whose inputs all exist before the first of them
 * run as one batch of k*B sequences: every GEMM is one call over all their rows. */
static void find_groups(Emit *e) {
  const Ir *ir = e->ir;
  int ins[512];
  for (int i = 0; i < ir->n_ops; i++) e->group[i] = -1;
  for (int f = 0; f < ir->n_ops; f++) {
    const Op *a = &ir->ops[f];
    if (a->kind != OP_VERTEX || e->group[f] >= 0 || !e->net->vertices[a->vertex].shared) continue;
    int size = 1;
    for (int m = f + 1; m < ir->n_ops; m++) {
      const Op *b = &ir->ops[m];
      if (b->kind != OP_VERTEX || e->group[m] >= 0) continue;
      const Vertex *va = &e->net->vertices[a->vertex], *vb = &e->net->vertices[b->vertex];
      if (!vb->shared || vb->model != va->model || vb->trainable != va->trainable || a->backward != b->backward) continue;
      int ready = 1, k = op_reads(ir, b, ins);
      for (int r = 0; r < k; r++) ready &= ins[r] < f;
      if (!ready || size >= 64) continue;
      e->group[m] = f;
      size++;
    }
    if (size > 1) e->group[f] = f;
  }
}

/* First fit of buffers with lifetimes [lo, hi] (inclusive, lo < 0: no buffer) and sizes w (in units of B*T
 * floats): in order of lo, each at the lowest offset clear of every placed buffer whose lifetime overlaps.
 * Fills coef (-1 where there is no buffer) and returns the region size. */
static long first_fit(int n, const int *lo, const int *hi, const long *w, long *coef) {
  long size = 0;
  for (int i = 0; i < n; i++) coef[i] = -1;
  for (int t = 0; t <= 2 * n; t++)
    for (int i = 0; i < n; i++) {
      if (lo[i] != t || w[i] <= 0) continue;
      long at = 0;
      for (int moved = 1; moved;) {
        moved = 0;
        for (int o = 0; o < n; o++) {
          if (coef[o] < 0 || lo[o] > hi[i] || lo[i] > hi[o]) continue;
          if (at < coef[o] + w[o] && coef[o] < at + w[i]) at = coef[o] + w[o], moved = 1;
        }
      }
      coef[i] = at;
      if (at + w[i] > size) size = at + w[i];
    }
  return size;
}

/* Output gradients live from the backward of their last reader (which zeroes and first writes them) to
 * their own backward; time runs backwards here (step n - j is the backward of op j). Fills first_use[i]
 * (the reader whose backward writes dout[i] first) and coef[i]; returns the region size in B*T floats. */
static long plan_douts(const Emit *e, int *first_use, long *coef) {
  const Ir *ir = e->ir;
  int ins[512], n = ir->n_ops;
  int *lo = calloc((size_t)n + 1, sizeof(int)), *hi = calloc((size_t)n + 1, sizeof(int));
  long *w = calloc((size_t)n + 1, sizeof(long));
  for (int i = 0; i < n; i++) first_use[i] = -1;
  for (int j = 0; j < n; j++) {
    int k = op_reads(ir, &ir->ops[j], ins);
    for (int r = 0; r < k; r++)
      if (needs_dout(&ir->ops[ins[r]]) && j > first_use[ins[r]]) first_use[ins[r]] = j;
  }
  for (int i = 0; i < n; i++) {
    lo[i] = first_use[i] < 0 ? -1 : n - first_use[i];
    hi[i] = n - (e->group[i] >= 0 ? e->group[i] : i); /* a group reads its members' gradients at its first */
    w[i] = first_use[i] < 0 ? 0 : ir->ops[i].width;
  }
  long size = first_fit(n, lo, hi, w, coef);
  free(lo);
  free(hi);
  free(w);
  return size;
}

/* Whether op j's backward reads the forward output of its input (for a weight gradient). Blocks and vertices
 * keep their own copy of what they need; sums, embeddings and class heads read none. */
static int backward_reads_input(const Emit *e, const Op *j) {
  if (!j->backward) return 0;
  if (j->kind == OP_HEAD) return 1;
  if (j->kind != OP_MODULE) return 0;
  ModKind k = e->net->edges[j->edge].mods[j->module].kind;
  return k == MOD_LINEAR || k == MOD_MLP;
}

/* Forward outputs live from their op to their last reader in the forward pass, or to the backward of a reader
 * that needs them (time 2n-1-j), or to the end for outputs read after the forward (the primary output) and
 * for the logits the loss turns into their gradient in place. Class logits ([B] rows) are not shared. */
static long plan_outs(const Emit *e, long *coef) {
  const Ir *ir = e->ir;
  int ins[512], n = ir->n_ops, prim = primary_output_op(e);
  int *lo = calloc((size_t)n + 1, sizeof(int)), *hi = calloc((size_t)n + 1, sizeof(int));
  long *w = calloc((size_t)n + 1, sizeof(long));
  for (int i = 0; i < n; i++) {
    const Op *op = &ir->ops[i];
    int shared = op->kind != OP_LOSS && op->kind != OP_AGGREGATE && op->kind != OP_CLASSIFY;
    lo[i] = shared ? (e->group[i] >= 0 ? e->group[i] : i) : -1; /* a group writes all members at its first */
    hi[i] = i;
    w[i] = shared ? op->width : 0;
    if (op->kind == OP_HEAD) hi[i] = 2 * n; /* logits, then their gradient until the head's backward */
    if (i == prim) hi[i] = 2 * n;
  }
  for (int j = 0; j < n; j++) {
    int k = op_reads(ir, &ir->ops[j], ins);
    int back = backward_reads_input(e, &ir->ops[j]);
    for (int r = 0; r < k; r++) {
      int t = back ? 2 * n - 1 - j : j;
      if (t > hi[ins[r]]) hi[ins[r]] = t;
    }
  }
  long size = first_fit(n, lo, hi, w, coef);
  free(lo);
  free(hi);
  free(w);
  return size;
}

static long model_dim(const Emit *e, const Op *op) { return op_model(e, op)->hp.dim; }

/* Emits `size` as a C expression of B, T (rows = B*T, or B for classify) for op i's saved region. */
static void saved_expr(Emit *e, const Op *op, int i) {
  const Net *net = e->net;
  int members[64], K = e->group[i] == i ? group_members(e, i, members) : 0;
  if (op->kind == OP_VERTEX && e->group[i] >= 0 && !K) {
    out(e, "0 /* in its group's region */");
  } else if (K) {
    out(e, "(size_t)%ld * lmn_block_saved_floats(&cfg%d, %d * B, T) + (size_t)%d * B * T * %ld + 2 * (size_t)%d * B * T",
        op_layers(e, op), i, K, K, model_dim(e, op), K);
  } else if (op->kind == OP_VERTEX) {
    out(e, "(size_t)%ld * lmn_block_saved_floats(&cfg%d, B, T) + (size_t)B * T * %ld + 2 * (size_t)B * T", op_layers(e, op), i,
        model_dim(e, op));
  } else if (is_block_op(e, op)) {
    out(e, "lmn_block_saved_floats(&cfg%d, B, T)", i);
  } else if (op->kind == OP_MODULE && net->edges[op->edge].mods[op->module].kind == MOD_MLP) {
    const Module *m = &net->edges[op->edge].mods[op->module];
    out(e, "lmn_mlp_saved_floats(%ld, %ld, B * T)", m->din, m->hidden);
  } else if (op->kind == OP_CLASSIFY) {
    out(e, "(size_t)B * %ld", net->edges[op->edge].mods[op->module].din);
  } else {
    out(e, "0");
  }
}

static void scratch_expr(Emit *e, const Op *op, int i) {
  const Net *net = e->net;
  int members[64], K = e->group[i] == i ? group_members(e, i, members) : 0;
  if (op->kind == OP_VERTEX && e->group[i] >= 0 && !K) {
    out(e, "0");
  } else if (K) {
    out(e, "lmn_block_scratch_floats(&cfg%d, %d * B, T, nt) + (size_t)4 * %d * B * T * %ld", i, K, K, model_dim(e, op));
  } else if (op->kind == OP_VERTEX) {
    out(e, "lmn_block_scratch_floats(&cfg%d, B, T, nt) + 2 * (size_t)B * T * %ld", i, model_dim(e, op));
  } else if (is_block_op(e, op)) {
    out(e, "lmn_block_scratch_floats(&cfg%d, B, T, nt)", i);
  } else if (op->kind == OP_MODULE && net->edges[op->edge].mods[op->module].kind == MOD_MLP) {
    const Module *m = &net->edges[op->edge].mods[op->module];
    out(e, "(size_t)B * T * %ld", 2 * m->hidden + m->din);
  } else if (op->kind == OP_CLASSIFY) {
    out(e, "(size_t)B * %ld", net->edges[op->edge].mods[op->module].din);
  } else {
    out(e, "0");
  }
}

/* Models whose blocks use RoPE get a table each. */
static int uses_rope(const Model *m) { return m->hp.arch == LMN_ARCH_LLAMA || m->hp.arch == LMN_ARCH_QWEN2; }

static void emit_plan(Emit *e) {
  const Ir *ir = e->ir;
  const Net *net = e->net;
  out(e, "/* The activation plan: per op its output, the gradient of its output, and what its backward keeps;\n"
         " * then one scratch region reused by every op, and the RoPE tables. Offsets in floats. */\n");
  out(e, "typedef struct Plan {\n  size_t out[NOPS], dout[NOPS], saved[NOPS];\n  size_t scratch, rope[%d], tok, tgt, total;\n} Plan;\n\n",
      net->n_models ? net->n_models : 1);
  out(e, "/* T counts the positions inside the network (the fixed prefix included). */\n");
  out(e, "static void plan(int B, int T, int nt, Plan *p) {\n  size_t off = 0, scratch = 0, s;\n  (void)nt;\n");
  int *first_use = calloc((size_t)ir->n_ops + 1, sizeof(int));
  long *coef = calloc((size_t)ir->n_ops + 1, sizeof(long));
  long dsize = plan_douts(e, first_use, coef);
  out(e, "  /* output gradients, sharing memory where their lifetimes in the backward pass don't overlap */\n");
  for (int i = 0; i < ir->n_ops; i++)
    out(e, "  p->dout[%d] = %s%ld;\n", i, coef[i] >= 0 ? "(size_t)B * T * " : "", coef[i] >= 0 ? coef[i] : 0L);
  out(e, "  off += (size_t)B * T * %ld;\n", dsize);
  free(first_use);
  free(coef);
  out(e, "  p->tok = off;\n  off += PREFIX ? (size_t)B * T : 0; /* tokens with the prefix positions (int32) */\n");
  out(e, "  p->tgt = off;\n  off += PREFIX ? (size_t)B * T : 0;\n");
  long *ocoef = calloc((size_t)ir->n_ops + 1, sizeof(long));
  long osize = plan_outs(e, ocoef);
  out(e, "  /* forward outputs, sharing memory where their lifetimes (forward, and backward readers) don't overlap */\n");
  for (int i = 0; i < ir->n_ops; i++)
    if (ocoef[i] >= 0) out(e, "  p->out[%d] = off + (size_t)B * T * %ld;\n", i, ocoef[i]);
  out(e, "  off += (size_t)B * T * %ld;\n", osize);
  free(ocoef);
  for (int i = 0; i < ir->n_ops; i++) {
    const Op *op = &ir->ops[i];
    if (op->kind == OP_CLASSIFY) out(e, "  p->out[%d] = off;\n  off += (size_t)B * %ld;\n", i, op->width);
    else if (op->kind == OP_LOSS || op->kind == OP_AGGREGATE) out(e, "  p->out[%d] = 0; /* no output */\n", i);
    out(e, "  p->saved[%d] = off;\n  off += ", i);
    saved_expr(e, op, i);
    out(e, ";\n  s = ");
    scratch_expr(e, op, i);
    out(e, ";\n  if (s > scratch) scratch = s;\n");
  }
  out(e, "  p->scratch = off;\n  off += scratch;\n");
  for (int m = 0; m < net->n_models; m++) {
    out(e, "  p->rope[%d] = off;\n", m);
    if (uses_rope(&net->models[m]))
      out(e, "  off += (size_t)T * %ld; /* cos and sin, [T, hd/2] each */\n", net->models[m].hp.dim / net->models[m].hp.heads);
  }
  out(e, "  p->total = off;\n}\n\n");
  out(e, "static size_t arena_floats(int B, int T, int nt) {\n  Plan p;\n  plan(B, T + PREFIX, nt, &p);\n  return p.total;\n}\n\n");
}

/* ---- forward ----------------------------------------------------------------------------------- */

/* The ops a vertex reads: the inputs of its aggregation (fused into its first norm), or its one input. */
static int vertex_inputs(const Emit *e, const Op *op, int *ins) {
  const Op *in = &e->ir->ops[op->inputs[0]];
  if (in->kind == OP_AGGREGATE) {
    for (int k = 0; k < in->n_inputs; k++) ins[k] = in->inputs[k];
    return in->n_inputs;
  }
  ins[0] = op->inputs[0];
  return 1;
}

/* The token (and target) arrays the ops read: with a fixed prefix, the user's [B, T_in] behind PREFIX
 * positions of token -1 (a zero embedding row plus the prefix vector) and target -1 (ignored). */
static void emit_prefix_tokens(Emit *e, const char *B, int with_targets) {
  int prim = primary_output_op(e);
  int labels = prim >= 0 && e->ir->ops[prim].kind == OP_CLASSIFY;
  if (!e->net->prefix) {
    out(e, "  const int32_t *tokens = tokens_in;\n");
    if (with_targets) out(e, "  const int32_t *targets = targets_in;\n");
    return;
  }
  out(e, "  int32_t *tokens = (int32_t *)(A + p.tok)%s;\n", with_targets && !labels ? ", *targets = (int32_t *)(A + p.tgt)" : "");
  if (with_targets && labels) out(e, "  const int32_t *targets = targets_in; /* labels [B] */\n");
  out(e, "  for (int b = 0; b < %s; b++)\n    for (int t = 0; t < T; t++) {\n", B);
  out(e, "      tokens[(size_t)b * T + t] = t < PREFIX ? -1 : tokens_in[(size_t)b * T_in + t - PREFIX];\n");
  if (with_targets && !labels)
    out(e, "      targets[(size_t)b * T + t] = t < PREFIX || !targets_in ? -1 : targets_in[(size_t)b * T_in + t - PREFIX];\n");
  out(e, "    }\n");
}

/* What the forward and backward of a vertex op both need: its model, the ops it aggregates, its final norm. */
typedef struct VertexShape {
  const Model *model;
  int ins[64], k;
  int gpt2, norm_w, norm_b; /* generated indices of the final norm's weight and (gpt2) bias */
} VertexShape;

static VertexShape vertex_shape(const Emit *e, const Op *op) {
  VertexShape vs;
  vs.model = op_model(e, op);
  vs.k = vertex_inputs(e, op, vs.ins);
  vs.gpt2 = vs.model->hp.arch == LMN_ARCH_GPT2;
  vs.norm_w = e->gen[op->params[op->n_params - 1 - vs.gpt2]];
  vs.norm_b = vs.gpt2 ? e->gen[op->params[op->n_params - 1]] : -1;
  return vs;
}

static void emit_rope_setup(Emit *e, const char *npos, const char *base) {
  const Net *net = e->net;
  for (int m = 0; m < net->n_models; m++) {
    if (!uses_rope(&net->models[m])) continue;
    long hd = net->models[m].hp.dim / net->models[m].hp.heads;
    out(e, "  float *rope%d_cos = %s + p.rope[%d], *rope%d_sin = rope%d_cos + (size_t)%s * %ld;\n", m, base, m, m, m, npos, hd / 2);
    out(e, "  lmn_rope_table(rope%d_cos, rope%d_sin, %s, %ld, %.17g);\n", m, m, npos, hd, net->models[m].hp.rope_theta);
    out(e, "  const lmn_rope rope%d = {rope%d_cos, rope%d_sin, %s};\n  (void)rope%d;\n", m, m, m, npos, m);
  }
}

static int model_index(const Emit *e, const Model *m) { return (int)(m - e->net->models); }

static void rope_arg(Emit *e, const Op *op) {
  const Model *m = op_model(e, op);
  if (uses_rope(m)) out(e, "&rope%d", model_index(e, m));
  else out(e, "NULL");
}

/* ---- groups of shared vertex calls ------------------------------------------------------------------ */

/* Forward of a group led by op f: each member's aggregated input becomes slice j of one [K*B*T, d] batch, the
 * layers run once over K*B sequences, and the final norm's rows are copied out to the members. */
static void emit_group_forward(Emit *e, int f) {
  const Ir *ir = e->ir;
  int members[64], K = group_members(e, f, members);
  const Op *op = &ir->ops[f];
  VertexShape vs = vertex_shape(e, op);
  const Model *md = vs.model;
  long d = md->hp.dim, L = md->hp.layers;
  out(e, "  /* op%d vertex group: %d calls of %s as one batch of %d x B sequences */\n  {\n", f, K, md->name, K);
  out(e, "    const size_t n = (size_t)B * T * %ld, N = %d * n, rows = (size_t)%d * B * T;\n", d, K, K);
  out(e, "    float *gin = scratch, *h[2] = {scratch + N, scratch + 2 * N}, *normed = scratch + 3 * N;\n");
  out(e, "    float *blk_scratch = scratch + 4 * N;\n    (void)rows;\n");
  for (int j = 0; j < K; j++) {
    VertexShape mj = vertex_shape(e, &ir->ops[members[j]]);
    double scale = mj.k > 1 && e->net->aggregate == AGG_MEAN ? 1.0 / mj.k : 1.0;
    out(e, "    memcpy(gin + %d * n, A + p.out[%d], sizeof(float) * n); /* %s */\n", j, mj.ins[0],
        ir->ops[members[j]].name);
    for (int r = 1; r < mj.k; r++)
      out(e, "    for (size_t x = 0; x < n; x++) gin[%d * n + x] += A[p.out[%d] + x];\n", j, mj.ins[r]);
    if (scale != 1.0) out(e, "    for (size_t x = 0; x < n; x++) gin[%d * n + x] *= 1.0f / %d;\n", j, mj.k);
  }
  out(e, "    const size_t bs = lmn_block_saved_floats(&cfg%d, %d * B, T);\n", f, K);
  out(e, "    float *last = A + p.saved[%d] + (size_t)%ld * bs;\n    const float *cur = gin;\n", f, L);
  out(e, "    for (int l = 0; l < %ld; l++) {\n      lmn_block_w w;\n      lmn_block_g g;\n      lmn_block_bind(net, blk[%d + l], &w, &g);\n",
      L, e->blk_first[f]);
  out(e, "      float *y = l == %ld ? last : h[l & 1];\n      const float *xs[1] = {cur};\n", L - 1);
  out(e, "      lmn_block_forward(&cfg%d, &w, ", f);
  rope_arg(e, op);
  out(e, ", y, xs, 1, 1.0f, A + p.saved[%d] + (size_t)l * bs, %d * B, T, blk_scratch, pool);\n      cur = y;\n    }\n", f, K);
  if (vs.gpt2)
    out(e, "    lmn_layernorm_forward(normed, last + N, last + N + rows, last, lmn_w(net, %d), lmn_w(net, %d), (int)rows, %ld, (float)%.9g);\n",
        vs.norm_w, vs.norm_b, d, md->hp.eps);
  else
    out(e, "    lmn_rmsnorm_forward(normed, last + N + rows, last, lmn_w(net, %d), (int)rows, %ld, (float)%.9g);\n", vs.norm_w, d,
        md->hp.eps);
  for (int j = 0; j < K; j++) out(e, "    memcpy(A + p.out[%d], normed + %d * n, sizeof(float) * n);\n", members[j], j);
  out(e, "  }\n");
}

/* Backward of a group: the members' output gradients are gathered into one batch, the layers run backward once,
 * and the input gradient of each slice is scattered to that member's inputs with its aggregation scale. */
static void emit_group_backward(Emit *e, int f) {
  const Ir *ir = e->ir;
  int members[64], K = group_members(e, f, members);
  const Op *op = &ir->ops[f];
  VertexShape vs = vertex_shape(e, op);
  const Model *md = vs.model;
  long d = md->hp.dim, L = md->hp.layers;
  int any_in = 0;
  for (int j = 0; j < K; j++) {
    VertexShape mj = vertex_shape(e, &ir->ops[members[j]]);
    for (int r = 0; r < mj.k; r++) any_in |= needs_dout(&ir->ops[mj.ins[r]]);
  }
  out(e, "  /* op%d vertex group: %d calls of %s, one backward over %d x B sequences */\n  {\n", f, K, md->name, K);
  out(e, "    const size_t n = (size_t)B * T * %ld, N = %d * n, rows = (size_t)%d * B * T;\n", d, K, K);
  out(e, "    const size_t bs = lmn_block_saved_floats(&cfg%d, %d * B, T);\n", f, K);
  out(e, "    float *last = A + p.saved[%d] + (size_t)%ld * bs;\n", f, L);
  out(e, "    float *dY = scratch, *dh[2] = {scratch + N, scratch + 2 * N}, *dgin = scratch + 3 * N, *blk_scratch = scratch + 4 * N;\n");
  for (int j = 0; j < K; j++) out(e, "    memcpy(dY + %d * n, A + p.dout[%d], sizeof(float) * n);\n", j, members[j]);
  out(e, "    memset(dh[0], 0, sizeof(float) * N);\n");
  if (vs.gpt2)
    out(e, "    lmn_layernorm_backward(dh[0], lmn_g(net, %d), lmn_g(net, %d), dY, last, lmn_w(net, %d), last + N, last + N + rows, (int)rows, %ld);\n",
        vs.norm_w, vs.norm_b, vs.norm_w, d);
  else
    out(e, "    lmn_rmsnorm_backward(dh[0], lmn_g(net, %d), dY, last, lmn_w(net, %d), last + N + rows, (int)rows, %ld);\n",
        vs.norm_w, vs.norm_w, d);
  if (any_in) out(e, "    memset(dgin, 0, sizeof(float) * N);\n");
  else out(e, "    (void)dgin;\n");
  out(e, "    for (int l = %ld; l >= 0; l--) {\n      lmn_block_w w;\n      lmn_block_g g;\n      lmn_block_bind(net, blk[%d + l], &w, &g);\n",
      L - 1, e->blk_first[f]);
  out(e, "      float *dy = dh[(%ld - l) & 1], *dprev = dh[(%ld - l + 1) & 1];\n", L - 1, L - 1);
  out(e, "      if (l > 0) memset(dprev, 0, sizeof(float) * N);\n");
  out(e, "      float *const *dxs = l > 0 ? &dprev : %s;\n", any_in ? "&dgin" : "NULL");
  out(e, "      lmn_block_backward(&cfg%d, &w, ", f);
  rope_arg(e, op);
  out(e, ", &g, dxs, 1, 1.0f, dy, A + p.saved[%d] + (size_t)l * bs, %d * B, T, blk_scratch, pool);\n    }\n", f, K);
  for (int j = 0; j < K; j++) {
    VertexShape mj = vertex_shape(e, &ir->ops[members[j]]);
    int mean = mj.k > 1 && e->net->aggregate == AGG_MEAN;
    for (int r = 0; r < mj.k; r++)
      if (needs_dout(&ir->ops[mj.ins[r]]))
      {
        char sc[32] = "";
        if (mean) snprintf(sc, sizeof sc, "(1.0f / %d) * ", mj.k);
        out(e, "    for (size_t x = 0; x < n; x++) A[p.dout[%d] + x] += %sdgin[%d * n + x];\n", mj.ins[r], sc, j);
      }
  }
  out(e, "  }\n");
}

static void emit_op_forward(Emit *e, int i, int cached) {
  const Ir *ir = e->ir;
  const Net *net = e->net;
  const Op *op = &ir->ops[i];
  const char *A = cached ? "C" : "A";
  const char *rows = cached ? "T" : "B * T";
  out(e, "  /* op%d %s: %s */\n", i, op_kind_name(op->kind), op->name);
  const Module *m = op->edge >= 0 && op->module >= 0 ? &net->edges[op->edge].mods[op->module] : NULL;
  int in = op->n_inputs ? op->inputs[0] : -1;
  switch (op->kind) {
    case OP_EMBED: {
      const Model *md = &net->models[m->model];
      int pos = md->hp.arch == LMN_ARCH_GPT2 ? e->gen[op->params[1]] : -1;
      out(e, "  lmn_embed_forward(%s + p.out[%d], tokens, lmn_w(net, %d), lmn_w(net, %d), %s, T, %ld, %ld, %s);\n", A, i,
          e->gen[op->params[0]], pos, cached ? "1" : "B", md->hp.dim, md->hp.vocab, cached ? "pos0" : "0");
      if (m->prefix)
        out(e, "  for (int b = 0; b < %s; b++)\n    for (int t = 0; t < T && %s + t < PREFIX; t++)\n"
               "      for (int c = 0; c < %ld; c++) %s[p.out[%d] + ((size_t)b * T + t) * %ld + c] += lmn_w(net, %d)[(size_t)(%s + t) * %ld + c];\n",
            cached ? "1" : "B", cached ? "pos0" : "0", md->hp.dim, A, i, md->hp.dim, e->gen[op->params[op->n_params - 1]],
            cached ? "pos0" : "0", md->hp.dim);
      break;
    }
    case OP_SUM:
      out(e, "  memcpy(%s + p.out[%d], %s + p.out[%d], sizeof(float) * %s * %ld);\n", A, i, A, op->inputs[0], rows, op->width);
      for (int k = 1; k < op->n_inputs; k++)
        out(e, "  for (size_t k = 0; k < (size_t)%s * %ld; k++) %s[p.out[%d] + k] += %s[p.out[%d] + k];\n", rows, op->width, A, i,
            A, op->inputs[k]);
      break;
    case OP_AGGREGATE: out(e, "  /* fused into the first norm of the vertex that reads it */\n"); break;
    case OP_LOSS: break;
    case OP_HEAD:
    case OP_MODULE:
      if (op->kind == OP_HEAD || m->kind == MOD_LINEAR) {
        int b = op->kind == OP_MODULE && m->bias ? e->gen[op->params[1]] : -1;
        if (cached && op->kind == OP_HEAD) {
          out(e, "  if (logits) lmn_linear_forward(logits, %s + p.out[%d] + (size_t)(T - 1) * %ld, lmn_w(net, %d), NULL, 1, %ld, %ld);\n", A, in,
              m->din, e->gen[op->params[0]], m->din, m->dout);
          break;
        }
        out(e, "  lmn_linear_forward(%s + p.out[%d], %s + p.out[%d], lmn_w(net, %d), lmn_w(net, %d), %s, %ld, %ld);\n", A, i, A,
            in, e->gen[op->params[0]], b, rows, m->din, m->dout);
      } else if (m->kind == MOD_MLP) {
        out(e, "  {\n    const lmn_mlp_w w = {lmn_w(net, %d), lmn_w(net, %d), lmn_w(net, %d), lmn_w(net, %d)};\n",
            e->gen[op->params[0]], e->gen[op->params[1]], e->gen[op->params[2]], e->gen[op->params[3]]);
        char saved[48];
        snprintf(saved, sizeof saved, cached ? "scratch" : "A + p.saved[%d]", i);
        out(e, "    lmn_mlp_forward(&w, %s + p.out[%d], %s + p.out[%d], %s, %ld, %ld, %s);\n  }\n", A, i, A, in, saved,
            m->din, m->hidden, rows);
      } else {
        out(e, "  {\n    lmn_block_w w;\n    lmn_block_g g;\n    lmn_block_bind(net, blk[%d], &w, &g);\n", e->blk_first[i]);
        out(e, "    const float *xs[1] = {%s + p.out[%d]};\n", A, in);
        if (cached)
          out(e, "    lmn_block_forward_cached(&cfg%d, &w, ", i);
        else
          out(e, "    lmn_block_forward(&cfg%d, &w, ", i);
        rope_arg(e, op);
        if (cached)
          out(e, ", C + p.out[%d], xs, 1, 1.0f, C + p.kv[%d], C + p.kv[%d] + (size_t)ctx * %ld, pos0, T, scratch, pool);\n  }\n", i,
              e->blk_first[i], e->blk_first[i], op_model(e, op)->hp.kv_heads * (op_model(e, op)->hp.dim / op_model(e, op)->hp.heads));
        else
          out(e, ", A + p.out[%d], xs, 1, 1.0f, A + p.saved[%d], B, T, scratch, pool);\n  }\n", i, i);
      }
      break;
    case OP_CLASSIFY:
      out(e, "  for (int b = 0; b < B; b++)\n    memcpy(A + p.saved[%d] + (size_t)b * %ld, A + p.out[%d] + ((size_t)b * T + T - 1) * %ld, sizeof(float) * %ld);\n",
          i, m->din, in, m->din, m->din);
      out(e, "  lmn_linear_forward(A + p.out[%d], A + p.saved[%d], lmn_w(net, %d), lmn_w(net, %d), B, %ld, %ld);\n", i, i,
          e->gen[op->params[0]], e->gen[op->params[1]], m->din, m->dout);
      break;
    case OP_VERTEX: {
      if (!cached && e->group[i] >= 0) {
        if (e->group[i] == i) emit_group_forward(e, i);
        else out(e, "  /* computed with its group, op%d */\n", e->group[i]);
        break;
      }
      VertexShape vs = vertex_shape(e, op);
      const Model *md = vs.model;
      int *ins = vs.ins, k = vs.k, gpt2 = vs.gpt2, norm_w = vs.norm_w, norm_b = vs.norm_b;
      long d = md->hp.dim, L = md->hp.layers;
      out(e, "  {\n    const float *xs[%d] = {", k);
      for (int j = 0; j < k; j++) out(e, "%s%s + p.out[%d]", j ? ", " : "", A, ins[j]);
      out(e, "};\n    const float *const *in = xs;\n    int k = %d;\n    float scale = %s;\n", k,
          k > 1 && net->aggregate == AGG_MEAN ? "1.0f / (float)k" : "1.0f");
      out(e, "    float *h[3] = {scratch, scratch + (size_t)%s * %ld, scratch + (size_t)2 * %s * %ld};\n", rows, d, rows, d);
      out(e, "    float *blk_scratch = h[%d];\n", cached ? 2 : 1);
      out(e, "    blk_scratch += (size_t)%s * %ld;\n", rows, d);
      if (!cached) out(e, "    float *last = A + p.saved[%d] + (size_t)%ld * lmn_block_saved_floats(&cfg%d, B, T);\n", i, L, i);
      else out(e, "    float *last = h[2];\n");
      out(e, "    const float *cur;\n");
      out(e, "    for (int l = 0; l < %ld; l++) {\n      lmn_block_w w;\n      lmn_block_g g;\n      lmn_block_bind(net, blk[%d + l], &w, &g);\n",
          L, e->blk_first[i]);
      out(e, "      float *y = l == %ld ? last : h[l & 1];\n", L - 1);
      if (cached) {
        long kvd = md->hp.kv_heads * (d / md->hp.heads);
        out(e, "      lmn_block_forward_cached(&cfg%d, &w, ", i);
        rope_arg(e, op);
        out(e, ", y, in, k, scale, C + p.kv[%d + l], C + p.kv[%d + l] + (size_t)ctx * %ld, pos0, T, blk_scratch, pool);\n",
            e->blk_first[i], e->blk_first[i], kvd);
      } else {
        out(e, "      lmn_block_forward(&cfg%d, &w, ", i);
        rope_arg(e, op);
        out(e, ", y, in, k, scale, A + p.saved[%d] + (size_t)l * lmn_block_saved_floats(&cfg%d, B, T), B, T, blk_scratch, pool);\n", i, i);
      }
      out(e, "      cur = y;\n      in = &cur;\n      k = 1;\n      scale = 1.0f;\n    }\n");
      if (gpt2) {
        if (cached) out(e, "    lmn_layernorm_forward(%s + p.out[%d], blk_scratch, blk_scratch + T, last, lmn_w(net, %d), lmn_w(net, %d), T, %ld, (float)%.9g);\n",
                          A, i, norm_w, norm_b, d, md->hp.eps);
        else out(e, "    lmn_layernorm_forward(A + p.out[%d], last + (size_t)B * T * %ld, last + (size_t)B * T * %ld + (size_t)B * T, last, lmn_w(net, %d), lmn_w(net, %d), B * T, %ld, (float)%.9g);\n",
                 i, d, d, norm_w, norm_b, d, md->hp.eps);
      } else {
        if (cached) out(e, "    lmn_rmsnorm_forward(%s + p.out[%d], blk_scratch, last, lmn_w(net, %d), T, %ld, (float)%.9g);\n", A, i, norm_w, d, md->hp.eps);
        else out(e, "    lmn_rmsnorm_forward(A + p.out[%d], last + (size_t)B * T * %ld + (size_t)B * T, last, lmn_w(net, %d), B * T, %ld, (float)%.9g);\n",
                 i, d, norm_w, d, md->hp.eps);
      }
      out(e, "  }\n");
      break;
    }
  }
}

static void emit_forward(Emit *e) {
  const Ir *ir = e->ir;
  const Net *net = e->net;
  out(e, "static float forward(lmn_net *net, const int32_t *tokens_in, const int32_t *targets_in, int B, int T_in, int train) {\n");
  out(e, "  const int T = T_in + PREFIX;\n  Plan p;\n  plan(B, T, net->n_threads, &p);\n  float *A = net->arena, *scratch = A + p.scratch;\n  lmn_pool *pool = net->pool;\n");
  emit_prefix_tokens(e, "B", 1);
  out(e, "  float loss = 0;\n");
  emit_rope_setup(e, "T", "A");
  for (int i = 0; i < ir->n_ops; i++) {
    const Op *op = &ir->ops[i];
    if (op->kind == OP_LOSS) {
      const Loss *l = &net->losses[op->loss];
      const Op *head = &ir->ops[op->inputs[0]];
      const char *rows = head->kind == OP_CLASSIFY ? "B" : "B * T";
      out(e, "  /* op%d loss: %s */\n", i, op->name);
      out(e, "  if (!targets_in)\n    ; /* no targets: outputs only */\n  else if (train)\n    loss += (float)%.17g * lmn_xent_forward_backward(A + p.out[%d], targets, %s, %ld, (float)%.9g, (float)%.17g, NULL, NULL, pool);\n",
          l->weight, op->inputs[0], rows, head->width, l->smoothing, l->weight);
      out(e, "  else\n    loss += (float)%.17g * lmn_xent_forward(A + p.out[%d], targets, %s, %ld, (float)%.9g, NULL, NULL, pool);\n", l->weight,
          op->inputs[0], rows, head->width, l->smoothing);
      continue;
    }
    emit_op_forward(e, i, 0);
  }
  out(e, "  return loss;\n}\n\n");
}

/* ---- backward ---------------------------------------------------------------------------------- */

/* "A + p.dout[i]" for an op whose output gradient is kept, else "NULL". */
static void dout_ptr(Emit *e, int i) {
  const Op *op = &e->ir->ops[i];
  if (needs_dout(op)) out(e, "A + p.dout[%d]", i);
  else out(e, "NULL");
}

static void emit_op_backward(Emit *e, int i) {
  const Ir *ir = e->ir;
  const Net *net = e->net;
  const Op *op = &ir->ops[i];
  if (!op->backward || op->kind == OP_LOSS || op->kind == OP_AGGREGATE) return;
  const Module *m = op->edge >= 0 && op->module >= 0 ? &net->edges[op->edge].mods[op->module] : NULL;
  int in = op->n_inputs ? op->inputs[0] : -1;
  out(e, "  /* op%d %s: %s */\n", i, op_kind_name(op->kind), op->name);
  switch (op->kind) {
    case OP_EMBED: {
      const Model *md = &net->models[m->model];
      int pos = md->hp.arch == LMN_ARCH_GPT2 ? e->gen[op->params[1]] : -1;
      out(e, "  lmn_embed_backward(lmn_g(net, %d), lmn_g(net, %d), A + p.dout[%d], tokens, B, T, %ld, %ld, 0);\n",
          e->gen[op->params[0]], pos, i, md->hp.dim, md->hp.vocab);
      break;
    }
    case OP_SUM:
      for (int k = 0; k < op->n_inputs; k++)
        if (needs_dout(&ir->ops[op->inputs[k]]))
          out(e, "  for (size_t k = 0; k < (size_t)B * T * %ld; k++) A[p.dout[%d] + k] += A[p.dout[%d] + k];\n", op->width,
              op->inputs[k], i);
      break;
    case OP_HEAD:
      out(e, "  lmn_linear_backward(");
      dout_ptr(e, in);
      out(e, ", lmn_g(net, %d), NULL, A + p.out[%d], A + p.out[%d], lmn_w(net, %d), B * T, %ld, %ld);\n", e->gen[op->params[0]], i, in,
          e->gen[op->params[0]], m->din, m->dout);
      break;
    case OP_CLASSIFY:
      out(e, "  {\n    float *dx = scratch;\n    memset(dx, 0, sizeof(float) * B * %ld);\n", m->din);
      out(e, "    lmn_linear_backward(dx, lmn_g(net, %d), lmn_g(net, %d), A + p.out[%d], A + p.saved[%d], lmn_w(net, %d), B, %ld, %ld);\n",
          e->gen[op->params[0]], e->gen[op->params[1]], i, i, e->gen[op->params[0]], m->din, m->dout);
      if (needs_dout(&ir->ops[in]))
        out(e, "    for (int b = 0; b < B; b++)\n      for (int c = 0; c < %ld; c++) A[p.dout[%d] + ((size_t)b * T + T - 1) * %ld + c] += dx[(size_t)b * %ld + c];\n",
            m->din, in, m->din, m->din);
      out(e, "  }\n");
      break;
    case OP_MODULE:
      if (m->kind == MOD_LINEAR) {
        int b = m->bias ? e->gen[op->params[1]] : -1;
        out(e, "  lmn_linear_backward(");
        dout_ptr(e, in);
        out(e, ", lmn_g(net, %d), lmn_g(net, %d), A + p.dout[%d], A + p.out[%d], lmn_w(net, %d), B * T, %ld, %ld);\n",
            e->gen[op->params[0]], b, i, in, e->gen[op->params[0]], m->din, m->dout);
      } else if (m->kind == MOD_MLP) {
        int g0 = e->gen[op->params[0]], g1 = e->gen[op->params[1]], g2 = e->gen[op->params[2]], g3 = e->gen[op->params[3]];
        out(e, "  {\n    const lmn_mlp_w w = {lmn_w(net, %d), lmn_w(net, %d), lmn_w(net, %d), lmn_w(net, %d)};\n", g0, g1, g2, g3);
        out(e, "    lmn_mlp_g g = {lmn_g(net, %d), lmn_g(net, %d), lmn_g(net, %d), lmn_g(net, %d)};\n", g0, g1, g2, g3);
        out(e, "    lmn_mlp_backward(&w, &g, ");
        dout_ptr(e, in);
        out(e, ", A + p.dout[%d], A + p.out[%d], A + p.saved[%d], %ld, %ld, B * T, scratch);\n  }\n", i, in, i, m->din, m->hidden);
      } else {
        out(e, "  {\n    lmn_block_w w;\n    lmn_block_g g;\n    lmn_block_bind(net, blk[%d], &w, &g);\n", e->blk_first[i]);
        out(e, "    float *dxs[1] = {");
        dout_ptr(e, in);
        out(e, "};\n    lmn_block_backward(&cfg%d, &w, ", i);
        rope_arg(e, op);
        out(e, ", &g, dxs[0] ? dxs : NULL, 1, 1.0f, A + p.dout[%d], A + p.saved[%d], B, T, scratch, pool);\n  }\n", i, i);
      }
      break;
    case OP_VERTEX: {
      if (e->group[i] >= 0) {
        if (e->group[i] == i) emit_group_backward(e, i);
        else out(e, "  /* backward with its group, op%d */\n", e->group[i]);
        break;
      }
      VertexShape vs = vertex_shape(e, op);
      const Model *md = vs.model;
      int *ins = vs.ins, k = vs.k, gpt2 = vs.gpt2, norm_w = vs.norm_w, norm_b = vs.norm_b;
      long d = md->hp.dim, L = md->hp.layers;
      out(e, "  {\n    const size_t bs = lmn_block_saved_floats(&cfg%d, B, T), n = (size_t)B * T * %ld;\n", i, d);
      out(e, "    float *last = A + p.saved[%d] + (size_t)%ld * bs;\n", i, L);
      out(e, "    float *dh[2] = {scratch, scratch + n};\n    float *blk_scratch = dh[1] + n;\n");
      out(e, "    memset(dh[0], 0, sizeof(float) * n);\n");
      if (gpt2)
        out(e, "    lmn_layernorm_backward(dh[0], lmn_g(net, %d), lmn_g(net, %d), A + p.dout[%d], last, lmn_w(net, %d), last + n, last + n + (size_t)B * T, B * T, %ld);\n",
            norm_w, norm_b, i, norm_w, d);
      else
        out(e, "    lmn_rmsnorm_backward(dh[0], lmn_g(net, %d), A + p.dout[%d], last, lmn_w(net, %d), last + n + (size_t)B * T, B * T, %ld);\n",
            norm_w, i, norm_w, d);
      out(e, "    float *dins[%d] = {", k);
      int any = 0;
      for (int j = 0; j < k; j++) {
        if (j) out(e, ", ");
        dout_ptr(e, ins[j]);
        any |= needs_dout(&ir->ops[ins[j]]);
      }
      out(e, "};\n");
      out(e, "    for (int l = %ld; l >= 0; l--) {\n      lmn_block_w w;\n      lmn_block_g g;\n      lmn_block_bind(net, blk[%d + l], &w, &g);\n",
          L - 1, e->blk_first[i]);
      out(e, "      float *dy = dh[(%ld - l) & 1], *dprev = dh[(%ld - l + 1) & 1];\n", L - 1, L - 1);
      out(e, "      if (l > 0) memset(dprev, 0, sizeof(float) * n);\n");
      out(e, "      float *const *dxs = l > 0 ? &dprev : %s;\n", any ? "dins" : "NULL");
      out(e, "      lmn_block_backward(&cfg%d, &w, ", i);
      rope_arg(e, op);
      char scale[32];
      snprintf(scale, sizeof scale, k > 1 && net->aggregate == AGG_MEAN ? "1.0f / %d" : "1.0f", k);
      out(e, ", &g, dxs, l > 0 ? 1 : %d, l > 0 ? 1.0f : %s, dy, A + p.saved[%d] + (size_t)l * bs, B, T, blk_scratch, pool);\n    }\n  }\n",
          k, scale, i);
      break;
    }
    default: break;
  }
}

static void emit_backward(Emit *e) {
  const Ir *ir = e->ir;
  out(e, "static void backward(lmn_net *net, const int32_t *tokens_in, int B, int T_in) {\n");
  out(e, "  const int T = T_in + PREFIX;\n");
  out(e, "  Plan p;\n  plan(B, T, net->n_threads, &p);\n  float *A = net->arena, *scratch = A + p.scratch;\n  lmn_pool *pool = net->pool;\n  (void)pool;\n  (void)scratch;\n");
  if (e->net->prefix) out(e, "  const int32_t *tokens = (const int32_t *)(A + p.tok); /* made by forward */\n  (void)tokens_in;\n");
  else out(e, "  const int32_t *tokens = tokens_in;\n");
  out(e, "  (void)tokens;\n");
  emit_rope_setup(e, "T", "A");
  int *first_use = calloc((size_t)ir->n_ops + 1, sizeof(int));
  long *coef = calloc((size_t)ir->n_ops + 1, sizeof(long));
  plan_douts(e, first_use, coef);
  for (int j = ir->n_ops - 1; j >= 0; j--) {
    for (int i = 0; i < ir->n_ops; i++) /* gradients that op j's backward writes first */
      if (first_use[i] == j && ir->ops[j].backward)
        out(e, "  memset(A + p.dout[%d], 0, sizeof(float) * B * T * %ld);\n", i, ir->ops[i].width);
    emit_op_backward(e, j);
  }
  free(first_use);
  free(coef);
  out(e, "}\n\n");
}

/* ---- cached decoding ------------------------------------------------------------------------- */

/* Marks the ops the primary output depends on (decoding computes nothing else). */
static void mark_needed(const Emit *e, int op, char *need) {
  if (need[op]) return;
  need[op] = 1;
  const Op *o = &e->ir->ops[op];
  for (int k = 0; k < o->n_inputs; k++) mark_needed(e, o->inputs[k], need);
}

static long kv_width(const Emit *e, const Op *op) {
  const Model *m = op_model(e, op);
  const ModKind k = op->kind == OP_MODULE ? e->net->edges[op->edge].mods[op->module].kind : MOD_DECODER;
  long heads = k == MOD_GPT2_EDGE ? m->hp.heads : m->hp.kv_heads;
  return heads * (m->hp.dim / m->hp.heads);
}

static void emit_cplan(Emit *e, const char *need) {
  const Ir *ir = e->ir;
  const Net *net = e->net;
  out(e, "/* The decoding plan: KV caches of every block instance, per-op rows for up to ctx positions, scratch. */\n");
  out(e, "typedef struct CPlan {\n  size_t out[NOPS], kv[%d], scratch, rope[%d], tok, total;\n} CPlan;\n\n", e->n_blk ? e->n_blk : 1,
      net->n_models ? net->n_models : 1);
  out(e, "/* ctx counts positions inside the network (the fixed prefix included). */\n");
  out(e, "static void cplan(int ctx, int nt, CPlan *p) {\n  size_t off = 0, scratch = 0, s;\n  const int T = ctx;\n  (void)nt;\n");
  out(e, "  p->tok = off;\n  off += PREFIX ? (size_t)ctx : 0;\n");
  for (int i = 0; i < ir->n_ops; i++) {
    const Op *op = &ir->ops[i];
    out(e, "  p->out[%d] = off;\n", i);
    if (!need[i] || op->kind == OP_LOSS || op->kind == OP_AGGREGATE || op->kind == OP_HEAD || op->kind == OP_CLASSIFY) continue;
    out(e, "  off += (size_t)T * %ld;\n", op->width);
    if (is_block_op(e, op)) {
      for (long l = 0; l < op_layers(e, op); l++)
        out(e, "  p->kv[%ld] = off;\n  off += (size_t)2 * ctx * %ld;\n", e->blk_first[i] + l, kv_width(e, op));
      out(e, "  s = lmn_block_cache_scratch_floats(&cfg%d, T, nt) + (size_t)3 * T * %ld + 2 * (size_t)T;\n", i, model_dim(e, op));
      out(e, "  if (s > scratch) scratch = s;\n");
    } else if (op->kind == OP_MODULE && net->edges[op->edge].mods[op->module].kind == MOD_MLP) {
      const Module *m = &net->edges[op->edge].mods[op->module];
      out(e, "  s = lmn_mlp_saved_floats(%ld, %ld, T);\n  if (s > scratch) scratch = s;\n", m->din, m->hidden);
    }
  }
  out(e, "  p->scratch = off;\n  off += scratch;\n  (void)s;\n  (void)T;\n");
  for (int m = 0; m < net->n_models; m++) {
    out(e, "  p->rope[%d] = off;\n", m);
    if (uses_rope(&net->models[m])) out(e, "  off += (size_t)ctx * %ld;\n", net->models[m].hp.dim / net->models[m].hp.heads);
  }
  out(e, "  p->total = off;\n}\n\n");
  out(e, "static size_t cache_floats(int ctx, int nt) {\n  CPlan p;\n  cplan(ctx + PREFIX, nt, &p);\n  return p.total;\n}\n\n");
}

static int primary_output_op(const Emit *e) {
  const Ir *ir = e->ir;
  for (int i = 0; i < ir->n_ops; i++)
    if (ir->ops[i].kind == OP_LOSS && ir->ops[i].loss == 0) return ir->ops[i].inputs[0];
  return -1;
}

static void emit_decode(Emit *e) {
  const Ir *ir = e->ir;
  const Net *net = e->net;
  char *need = calloc((size_t)ir->n_ops + 1, 1);
  int prim = primary_output_op(e);
  if (prim >= 0 && ir->ops[prim].kind == OP_HEAD) mark_needed(e, prim, need);
  emit_cplan(e, need);
  out(e, "static void decode(lmn_net *net, const int32_t *tokens_in, int T_in, int pos0_in, float *logits) {\n");
  out(e, "  CPlan p;\n  const int ctx = net->cache_ctx + PREFIX;\n  cplan(ctx, net->n_threads, &p);\n");
  out(e, "  float *C = net->cache, *scratch = C + p.scratch;\n  lmn_pool *pool = net->pool;\n  (void)scratch;\n  (void)pool;\n");
  out(e, "  /* the prefix goes in with the prefill; later positions shift by PREFIX */\n");
  out(e, "  const int T = T_in + (pos0_in == 0 ? PREFIX : 0), pos0 = pos0_in == 0 ? 0 : pos0_in + PREFIX;\n");
  if (net->prefix) {
    out(e, "  int32_t *tokens = (int32_t *)(C + p.tok);\n");
    out(e, "  for (int t = 0; t < T; t++) tokens[t] = pos0 + t < PREFIX ? -1 : tokens_in[t - (pos0 == 0 ? PREFIX : 0)];\n");
  } else {
    out(e, "  const int32_t *tokens = tokens_in;\n");
  }
  out(e, "  (void)tokens;\n  (void)pos0;\n");
  for (int m = 0; m < net->n_models; m++) {
    if (!uses_rope(&net->models[m])) continue;
    long hd = net->models[m].hp.dim / net->models[m].hp.heads;
    out(e, "  float *rope%d_cos = C + p.rope[%d], *rope%d_sin = rope%d_cos + (size_t)ctx * %ld;\n", m, m, m, m, hd / 2);
    out(e, "  if (pos0 == 0) lmn_rope_table(rope%d_cos, rope%d_sin, ctx, %ld, %.17g);\n", m, m, hd, net->models[m].hp.rope_theta);
    out(e, "  const lmn_rope rope%d = {rope%d_cos, rope%d_sin, ctx};\n  (void)rope%d;\n", m, m, m, m);
  }
  out(e, "  (void)T;\n");
  if (prim < 0 || ir->ops[prim].kind != OP_HEAD) out(e, "  (void)logits;\n");
  for (int i = 0; i < ir->n_ops; i++)
    if (need[i] && ir->ops[i].kind != OP_LOSS) emit_op_forward(e, i, 1);
  out(e, "}\n\n");
  free(need);
}

/* ---- descriptor, header, main, Makefile --------------------------------------------------------- */

static void emit_desc(Emit *e, const char *source) {
  const Ir *ir = e->ir;
  const Net *net = e->net;
  double fb = 0, fbt = 0, fbtt = 0, tb = 0, tbt = 0, tbtt = 0;
  for (int i = 0; i < ir->n_ops; i++) {
    const Op *op = &ir->ops[i];
    fb += op->fwd.b, fbt += op->fwd.bt, fbtt += op->fwd.btt;
    tb += op->fwd.b + op->bwd.b, tbt += op->fwd.bt + op->bwd.bt, tbtt += op->fwd.btt + op->bwd.btt;
  }
  long n_floats = 0, n_train = 0, ctx = 1L << 30;
  for (int i = 0; i < ir->n_params; i++) {
    n_floats += ir->params[i].count;
    if (ir->params[i].trainable) n_train += ir->params[i].count;
  }
  for (int m = 0; m < net->n_models; m++)
    if (net->models[m].hp.ctx < ctx) ctx = net->models[m].hp.ctx;
  int prim = primary_output_op(e);
  long classes = prim >= 0 && ir->ops[prim].kind == OP_CLASSIFY ? ir->ops[prim].width : 0;
  out(e, "const lmn_net_desc %s_desc = {\n", net->name);
  out(e, "    .name = \"%s\",\n    .source = \"%s\",\n    .hash = 0x%016llxULL,\n    .aggregate_mean = %d,\n", net->name, source,
      (unsigned long long)network_hash(e), net->aggregate == AGG_MEAN);
  out(e, "    .vocab = %ld,\n    .classes = %ld,\n    .ctx = %ld,\n    .prefix = %ld,\n", net->models[net->embed_model].hp.vocab, classes,
      ctx - net->prefix, net->prefix);
  int n_models = 0;
  for (int m = 0; m < net->n_models; m++) n_models += net->models[m].source != SRC_NONE;
  int em = net->embed_model;
  out(e, "    .n_models = %d,\n    .models = models,\n    .tokenizer_model = %d,\n", n_models,
      em >= 0 && net->models[em].source != SRC_NONE ? file_model_index(e, em) : -1);
  out(e, "    .n_params = %d,\n    .params = params,\n    .n_floats = %ld,\n    .n_train = %ld,\n    .n_train_decay = %ld,\n",
      ir->n_params, n_floats, n_train, n_train);
  out(e, "    .flops_bt = %.17g,\n    .flops_btt = %.17g,\n    .flops_b = %.17g,\n", tbt, tbtt, tb);
  out(e, "    .fwd_bt = %.17g,\n    .fwd_btt = %.17g,\n    .fwd_b = %.17g,\n", fbt, fbtt, fb);
  out(e, "    .arena_floats = arena_floats,\n    .cache_floats = cache_floats,\n    .forward = forward,\n    .backward = backward,\n    .decode = decode,\n    .output = output,\n};\n");
}

static int open_out(const char *dir, const char *name, FILE **f, lmn_err *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  *f = fopen(path, "w");
  if (!*f) return lmn_errf(err, "%s: cannot write: %s", path, strerror(errno));
  return 0;
}

static int close_out(FILE *f, const char *dir, const char *name, lmn_err *err) {
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) return lmn_errf(err, "%s/%s: write error", dir, name);
  return 0;
}

static void emit_header(Emit *e, const char *source) {
  const char *n = e->net->name;
  long total = ir_param_total(e->ir, 0), train = ir_param_total(e->ir, 1);
  out(e, "/* %s.h: the network '%s', generated by lmnc from %s. Do not edit; recompile instead.\n *\n", n, n, source);
  out(e, " * %ld parameters, %ld trainable. The code in %s.c computes the forward pass, the backward pass (weight\n"
         " * gradients only for trainable tensors) and cached decoding of exactly this network; it links against\n"
         " * liblmn (lib/liblmn.a), OpenBLAS and libyaml.\n *\n", total, train, n);
  out(e, " * Use it from C:\n"
         " *   lmn_net *net;  lmn_err err;\n"
         " *   if (%s_create(&net, 1, 64, 2, 1337, &err) != 0) { fprintf(stderr, \"%%s\\n\", err.msg); return 1; }\n"
         " *   lmn_checkpoint_load(net, \"checkpoints/step-000100.safetensors\", &err);   // trained weights\n"
         " *   char text[4096];\n"
         " *   lmn_sample_opts opts = {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f};\n"
         " *   lmn_generate(net, &tokenizer, \"Once upon a time\", 200, &opts, 42, text, sizeof text, &err);\n"
         " *   %s_destroy(net);\n"
         " * Train: fill tokens/targets [B*T], then per step\n"
         " *   lmn_net_zero_grad(net); loss = %s_desc.forward(net, tok, tgt, B, T, 1);\n"
         " *   %s_desc.backward(net, tok, B, T); lmn_net_update(net, lr, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f);\n"
         " * The standalone executable (main.c) does all of this from a YAML config: `%s train -c train.yaml`,\n"
         " * `%s generate -p TEXT`, `%s eval -c train.yaml`, `%s info`. Errors come back as lmn_err messages.\n */\n",
      n, n, n, n, n, n, n, n);
  out(e, "#ifndef %s_NET_H\n#define %s_NET_H\n\n#include \"driver.h\"\n#include \"net.h\"\n\n", n, n);
  out(e, "extern const lmn_net_desc %s_desc;\n\n", n);
  out(e, "/* Buffers for batches up to B x T on `threads` threads; from-scratch tensors initialised from seed. */\n");
  out(e, "static inline int %s_create(lmn_net **net, int B, int T, int threads, uint64_t seed, lmn_err *err) {\n"
         "  return lmn_net_create(net, &%s_desc, B, T, threads, seed, err);\n}\n\n", n, n);
  out(e, "static inline void %s_destroy(lmn_net *net) { lmn_net_destroy(net); }\n\n#endif\n", n);
}

static void emit_output(Emit *e) {
  out(e, "/* Rows: [B, PREFIX + T] positions (the prefix rows first), or [B] for class logits. */\n");
  out(e, "static float *output(lmn_net *net, int B, int T) {\n  Plan p;\n  plan(B, T + PREFIX, net->n_threads, &p);\n  return net->arena + p.out[%d];\n}\n\n",
      primary_output_op(e));
}

static void emit_source(Emit *e, const char *source) {
  const Ir *ir = e->ir;
  const Net *net = e->net;
  out(e, "/* %s.c: generated by lmnc from %s. Do not edit; recompile instead.\n", net->name, source);
  out(e, " * Network '%s': %d ops in topological order, %d parameter tensors. Every width, head count and layer count\n"
         " * is a constant; batch B and length T are planned at creation. */\n", net->name, ir->n_ops, ir->n_params);
  out(e, "#include \"%s.h\"\n\n#include <math.h>\n#include <stdint.h>\n#include <string.h>\n\n#include \"kernels.h\"\n#include \"modules.h\"\n\n",
      net->name);
  out(e, "#define NOPS %d\n#define PREFIX %ld /* fixed random prefix positions */\n\n", ir->n_ops, net->prefix);
  emit_param_table(e);
  emit_blocks(e);
  emit_plan(e);
  emit_forward(e);
  emit_backward(e);
  emit_decode(e);
  emit_output(e);
  emit_desc(e, source);
}

static int write_file(Emit *e, const char *dir, const char *name, void (*fn)(Emit *, const char *), const char *source,
                      lmn_err *err) {
  FILE *f;
  if (open_out(dir, name, &f, err) != 0) return -1;
  e->o = f;
  fn(e, source);
  return close_out(f, dir, name, err);
}

static void emit_main(Emit *e, const char *source) {
  out(e, "/* main.c: the standalone executable of network '%s' (generated by lmnc from %s): train, generate, eval, info. */\n",
      e->net->name, source);
  out(e, "#include \"%s.h\"\n\nint main(int argc, char **argv) { return lmn_main(argc, argv, &%s_desc); }\n", e->net->name,
      e->net->name);
}

static void emit_makefile(Emit *e, const char *root) {
  const char *n = e->net->name;
  out(e, "# Makefile of network '%s', generated by lmnc. LMNET is the lmnet tree (runtime/ headers) or an install\n"
         "# prefix (include/lmn/ headers), each with lib/liblmn.a.\n", n);
  out(e, "LMNET  ?= %s\nCC     ?= cc\nCFLAGS ?= -std=c11 -O2 -march=native -Wall -Wextra -Werror -Wno-format-truncation\n", root);
  out(e, "INC    := -I$(LMNET)/runtime -I$(LMNET)/include/lmn -I/usr/include/x86_64-linux-gnu/openblas-pthread\n");
  out(e, "LIBS   := $(LMNET)/lib/liblmn.a -lopenblas -lyaml -lm -lpthread\n\n");
  out(e, "%s: %s.c %s.h main.c $(LMNET)/lib/liblmn.a\n\t$(CC) $(CFLAGS) $(INC) -o $@ %s.c main.c $(LIBS)\n\n", n, n, n, n);
  out(e, "clean:\n\trm -f %s\n.PHONY: clean\n", n);
}

/* The lmnet root relative to dir when both resolve, so generated Makefiles work from any clone. */
static void relative_root(const char *dir, const char *root, char *buf, size_t n) {
  char rd[4096], rr[4096];
  if (!realpath(dir, rd) || !realpath(root, rr)) {
    snprintf(buf, n, "%s", root);
    return;
  }
  size_t common = 0, i = 0;
  while (rd[i] && rr[i] && rd[i] == rr[i]) {
    i++;
    if (rd[i] == '/' || rd[i] == 0) common = i;
  }
  if (rr[common] && rr[common] != '/') common = 0;
  size_t len = 0;
  buf[0] = 0;
  for (const char *p = rd + common; *p; p++)
    if (*p == '/') len += (size_t)snprintf(buf + len, n - len, "%s..", len ? "/" : "");
  if (rr[common]) snprintf(buf + len, n - len, "%s%s", len ? "" : ".", rr + common);
  if (!buf[0]) snprintf(buf, n, ".");
}

int emit_c(const Ir *ir, const char *source, const char *dir, const char *root, lmn_err *err) {
  const Net *net = ir->net;
  for (int l = 0; l < net->n_losses; l++)
    for (int k = 0; k < l; k++)
      if (net->losses[l].output == net->losses[k].output)
        return lmn_errf(err, "%s: output '%s' is read by two losses; lmnc compile needs one loss per output", source,
                        net->outputs[net->losses[l].output].name);
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) return lmn_errf(err, "%s: cannot create: %s", dir, strerror(errno));
  Emit e = {.ir = ir, .net = net};
  int np = ir->n_params + 1;
  e.gen = calloc((size_t)np, sizeof(int));
  e.order = calloc((size_t)np, sizeof(int));
  e.offset = calloc((size_t)np, sizeof(long));
  e.blk_first = calloc((size_t)ir->n_ops + 1, sizeof(int));
  e.group = calloc((size_t)ir->n_ops + 1, sizeof(int));
  layout_params(&e);
  find_groups(&e);
  char hname[128], cname[128], rel[4096];
  snprintf(hname, sizeof hname, "%s.h", net->name);
  snprintf(cname, sizeof cname, "%s.c", net->name);
  relative_root(dir, root, rel, sizeof rel);
  int rc = write_file(&e, dir, hname, emit_header, source, err);
  if (!rc) rc = write_file(&e, dir, cname, emit_source, source, err);
  if (!rc) rc = write_file(&e, dir, "main.c", emit_main, source, err);
  if (!rc) rc = write_file(&e, dir, "Makefile", emit_makefile, rel, err);
  free(e.gen);
  free(e.order);
  free(e.offset);
  free(e.blk_first);
  free(e.group);
  return rc;
}
