/* emit_c.c: the printer of a network's forward, backward and cached-decode functions: one printer per step
 * kind and phase (a table checked against the step count), each writing one call of the runtime's fused
 * kernels and modules with the buffers the schedule planned. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "emit_int.h"

void out(Printer *pr, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(pr->o, fmt, ap);
  va_end(ap);
}

/* ---- references ---------------------------------------------------------------------------------- */

typedef struct Ref {
  char s[96];
} Ref;

/* A buffer of the current layout, "BUF(at)" ([B*T] rows) or "SEQ(at)" ([B] rows), or "NULL". */
static Ref buf(const Printer *pr, int b) {
  Ref r;
  if (b < 0) snprintf(r.s, sizeof r.s, "NULL");
  else snprintf(r.s, sizeof r.s, "%s(%ld)", pr->l->bufs[b].rows == ROWS_B ? "SEQ" : "BUF", pr->l->bufs[b].at);
  return r;
}

static Ref out_of(const Printer *pr, int op) { return buf(pr, pr->l->out[op]); }
static Ref dout_of(const Printer *pr, int op) { return buf(pr, pr->l->dout[op]); }

static const Op *op_of(const Printer *pr, const Step *st) { return &pr->ir->ops[st->op]; }
static const Module *mod_of(const Printer *pr, const Op *op) { return &pr->net->edges[op->edge].mods[op->module]; }
static int in_of(const Op *op) { return op->n_inputs ? op->inputs[0] : -1; }
static int dec(const Printer *pr) { return pr->phase == PH_DEC; }

/* Keep ops (arena.h) find their saved region at run time: SAVED(j), and KEPT(j) their input or NULL. */
static int keep_of(const Printer *pr, int op) {
  return dec(pr) ? -1 : pr->l->keep_of[op];
}
static Ref saved_of(const Printer *pr, int op) {
  Ref r;
  if (keep_of(pr, op) >= 0)
    snprintf(r.s, sizeof r.s, "SAVED(%d)", keep_of(pr, op));
  else
    r = buf(pr, pr->l->saved[op]);
  return r;
}

static Ref rope_of(const Printer *pr, const Op *op) {
  Ref r;
  if (pr->p->rope_hd[op->model] > 0) snprintf(r.s, sizeof r.s, "&ropes[%d]", op->model);
  else snprintf(r.s, sizeof r.s, "NULL");
  return r;
}

/* ---- embedding, sums, linear layers -------------------------------------------------------------- */

static void embed_fwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  const lmn_hparams *hp = &pr->net->models[op->model].hp;
  const char *b = dec(pr) ? "1" : "B", *pos0 = dec(pr) ? "pos0" : "0";
  out(pr, "  lmn_net_embed(net, %s, %s, %s, tokens, %s, T, %ld, %ld, %s);\n",
      pref(pr, op_role(pr->ir, op, ROLE_TOKEN_EMBD, 0)), pref(pr, op_role(pr->ir, op, ROLE_POS_EMBD, 0)),
      out_of(pr, st->op).s, b, hp->dim, hp->vocab, pos0);
  int prefix = op_role(pr->ir, op, ROLE_PREFIX, 0);
  if (prefix >= 0)
    out(pr, "  lmn_prefix_add(%s, lmn_w(net, %s), %s, T, %s, %ld, PREFIX);\n", out_of(pr, st->op).s, pref(pr, prefix), b,
        pos0, hp->dim);
}

static void embed_bwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  const lmn_hparams *hp = &pr->net->models[op->model].hp;
  out(pr, "  lmn_embed_backward(lmn_g(net, %s), lmn_g(net, %s), %s, tokens, B, T, %ld, %ld, 0);\n",
      pref(pr, op_role(pr->ir, op, ROLE_TOKEN_EMBD, 0)), pref(pr, op_role(pr->ir, op, ROLE_POS_EMBD, 0)),
      dout_of(pr, st->op).s, hp->dim, hp->vocab);
}

static void sum_fwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  out(pr, "  memcpy(%s, %s, sizeof(float) * N * %ld);\n", out_of(pr, st->op).s, out_of(pr, op->inputs[0]).s, op->width);
  for (int k = 1; k < op->n_inputs; k++)
    out(pr, "  lmn_add(%s, %s, N * %ld);\n", out_of(pr, st->op).s, out_of(pr, op->inputs[k]).s, op->width);
}

static void sum_bwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  for (int k = 0; k < op->n_inputs; k++)
    if (pr->l->dout[op->inputs[k]] >= 0)
      out(pr, "  lmn_add(%s, %s, N * %ld);\n", dout_of(pr, op->inputs[k]).s, dout_of(pr, st->op).s, op->width);
}

static void linear_fwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  const Module *m = mod_of(pr, op);
  int head = op->kind == OP_HEAD, w = head ? op->params[0] : op_role(pr->ir, op, ROLE_WEIGHT, 0);
  if (head && dec(pr)) {
    out(pr, "  if (logits) lmn_net_linear_forward(net, %s, logits, %s + (size_t)(T - 1) * %ld, 1, %ld, %ld, 1);\n",
        pref(pr, w), out_of(pr, in_of(op)).s, m->din, m->din, m->dout);
    return;
  }
  if (head) { /* the head's weight may be a frozen matrix kept in its file's format */
    out(pr, "  lmn_net_linear_forward(net, %s, %s, %s, N, %ld, %ld, 0);\n", pref(pr, w), out_of(pr, st->op).s,
        out_of(pr, in_of(op)).s, m->din, m->dout);
    return;
  }
  out(pr, "  lmn_linear_forward(%s, %s, lmn_w(net, %s), lmn_w(net, %s), N, %ld, %ld);\n", out_of(pr, st->op).s,
      out_of(pr, in_of(op)).s, pref(pr, w), pref(pr, op_role(pr->ir, op, ROLE_BIAS, 0)), m->din, m->dout);
}

static void linear_bwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  const Module *m = mod_of(pr, op);
  int head = op->kind == OP_HEAD, w = head ? op->params[0] : op_role(pr->ir, op, ROLE_WEIGHT, 0);
  /* the head's gradient is its logits buffer, which the loss turned into dL/dlogits in place */
  Ref dy = head ? out_of(pr, st->op) : dout_of(pr, st->op);
  if (head) {
    out(pr, "  lmn_net_linear_backward(net, %s, %s, %s, %s, N, %ld, %ld);\n", dout_of(pr, in_of(op)).s, pref(pr, w),
        dy.s, out_of(pr, in_of(op)).s, m->din, m->dout);
    return;
  }
  out(pr, "  lmn_linear_backward(%s, lmn_g(net, %s), lmn_g(net, %s), %s, %s, lmn_w(net, %s), N, %ld, %ld);\n",
      dout_of(pr, in_of(op)).s, pref(pr, w), pref(pr, op_role(pr->ir, op, ROLE_BIAS, 0)), dy.s,
      out_of(pr, in_of(op)).s, pref(pr, w), m->din, m->dout);
}

static void mlp_weights(Printer *pr, const Op *op, const char *type, const char *fn) {
  out(pr, "    %slmn_mlp_%s %s = {%s(net, %s), %s(net, %s), %s(net, %s), %s(net, %s)};\n", type[0] == 'w' ? "const " : "", type, type,
      fn, pref(pr, op_role(pr->ir, op, ROLE_WEIGHT, 0)), fn, pref(pr, op_role(pr->ir, op, ROLE_BIAS, 0)), fn,
      pref(pr, op_role(pr->ir, op, ROLE_WEIGHT, 1)), fn, pref(pr, op_role(pr->ir, op, ROLE_BIAS, 1)));
}

static void mlp_fwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  const Module *m = mod_of(pr, op);
  out(pr, "  {\n");
  mlp_weights(pr, op, "w", "lmn_w");
  out(pr, "    lmn_mlp_forward(&w, %s, %s, %s, %ld, %ld, (int)N);\n  }\n", out_of(pr, st->op).s, out_of(pr, in_of(op)).s,
      dec(pr) ? "scratch" : saved_of(pr, st->op).s, m->din, m->hidden);
}

static void mlp_bwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  const Module *m = mod_of(pr, op);
  out(pr, "  {\n");
  mlp_weights(pr, op, "w", "lmn_w");
  mlp_weights(pr, op, "g", "lmn_g");
  out(pr, "    lmn_mlp_backward(&w, &g, %s, %s, %s, %s, %ld, %ld, (int)N, scratch);\n  }\n", dout_of(pr, in_of(op)).s,
      dout_of(pr, st->op).s, out_of(pr, in_of(op)).s, saved_of(pr, st->op).s, m->din, m->hidden);
}

/* ---- blocks and vertices ------------------------------------------------------------------------- */

static void bind_block(Printer *pr, const Step *st) {
  out(pr, "  {\n    lmn_block_w w;\n    lmn_block_g g;\n    lmn_block_bind(net, bind[%d], &w, &g);\n",
      pr->p->vbind_at[st->op]);
}

static void block_fwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  bind_block(pr, st);
  out(pr, "    const float *xs[1] = {%s};\n", out_of(pr, in_of(op)).s);
  if (dec(pr))
    out(pr, "    lmn_block_forward_cached(&blk_op%d, &w, %s, %s, xs, 1, 1.0f, %s, %s + (size_t)ctx * %d, pos0, T, scratch, pool);\n  }\n",
        st->op, rope_of(pr, op).s, out_of(pr, st->op).s, saved_of(pr, st->op).s, saved_of(pr, st->op).s,
        pr->p->blk[st->op].kv_heads * pr->p->blk[st->op].hd);
  else
    out(pr, "    lmn_block_forward(&blk_op%d, &w, %s, %s, xs, 1, 1.0f, %s, B, T, scratch, pool);\n", st->op,
        rope_of(pr, op).s, out_of(pr, st->op).s, saved_of(pr, st->op).s);
  int j = keep_of(pr, st->op);
  if (!dec(pr) && j >= 0)
    out(pr, "    if (KEPT(%d)) lmn_block_keep_input(&blk_op%d, KEPT(%d), SAVED(%d), B, T);\n", j, st->op, j,
        j);
  if (!dec(pr)) out(pr, "  }\n");
}

static void block_bwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  bind_block(pr, st);
  out(pr, "    float *dxs[1] = {%s};\n", dout_of(pr, in_of(op)).s);
  int j = keep_of(pr, st->op);
  if (j >= 0)
    out(pr,
        "    if (KEPT(%d)) lmn_block_recompute(&blk_op%d, &w, %s, KEPT(%d), SAVED(%d), B, T, scratch, "
        "pool);\n",
        j, st->op, rope_of(pr, op).s, j, j);
  out(pr, "    lmn_block_backward(&blk_op%d, &w, %s, &g, dxs[0] ? dxs : NULL, 1, 1.0f, %s, %s, B, T, scratch, pool);\n  }\n",
      st->op, rope_of(pr, op).s, dout_of(pr, st->op).s, saved_of(pr, st->op).s);
}

/* Whether any input of vertex call c needs a gradient; fills ins and k. */
static int call_inputs(const Printer *pr, int c, int *ins, int *k) {
  int any = 0;
  *k = sched_reads(pr->ir, &pr->ir->ops[c], ins); /* a vertex reads its aggregation's inputs */
  for (int r = 0; r < *k; r++) any |= pr->l->dout[ins[r]] >= 0;
  return any;
}

/* One lmn_vertex_io per call: its inputs (forward) or their gradients (backward), its scale, y or dy. */
static void vertex_io(Printer *pr, const Step *st, int backward) {
  int *ins = malloc(sizeof(int) * (size_t)(pr->ir->n_ops + 1)), k;
  if (!ins) return;
  for (int j = 0; j < st->n_calls; j++) {
    int any = call_inputs(pr, st->calls[j], ins, &k);
    if (backward && !any) continue;
    out(pr, "    %sx%d[%d] = {", backward ? "float *" : "const float *", j, k);
    for (int r = 0; r < k; r++) out(pr, "%s%s", r ? ", " : "", backward ? dout_of(pr, ins[r]).s : out_of(pr, ins[r]).s);
    out(pr, "};\n");
  }
  out(pr, "    const lmn_vertex_io io[%d] = {", st->n_calls);
  for (int j = 0; j < st->n_calls; j++) {
    int c = st->calls[j], any = call_inputs(pr, c, ins, &k);
    char scale[32] = "1.0f", xs[16] = "NULL";
    if (k > 1 && pr->net->aggregate == AGG_MEAN) snprintf(scale, sizeof scale, "1.0f / %d", k);
    if (!backward || any) snprintf(xs, sizeof xs, "x%d", j);
    if (backward) out(pr, "%s{NULL, %d, %s, NULL, %s, %s}", j ? ", " : "", k, scale, dout_of(pr, c).s, xs);
    else out(pr, "%s{%s, %d, %s, %s, NULL, NULL}", j ? ", " : "", xs, k, scale, out_of(pr, c).s);
  }
  out(pr, "};\n");
  free(ins);
}

static void vertex_fwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  if (!st->n_calls) {
    out(pr, "  /* runs with its batch, op%d */\n", pr->p->group[st->op]);
    return;
  }
  out(pr, "  {\n");
  vertex_io(pr, st, 0);
  if (dec(pr))
    out(pr, "    lmn_vertex_forward_cached(net, &vtx_op%d, %s, io, %s, ctx, pos0, T, scratch);\n  }\n", st->op,
        rope_of(pr, op).s, saved_of(pr, st->op).s);
  else if (!op->backward)
    out(pr, "    lmn_vertex_forward_only(net, &vtx_op%d, %s, io, %d, %s, B, T, scratch);\n  }\n", st->op,
        rope_of(pr, op).s, st->n_calls, saved_of(pr, st->op).s);
  else if (keep_of(pr, st->op) >= 0)
    out(pr, "    lmn_vertex_forward_kept(net, &vtx_op%d, %s, io, %d, %s, KEPT(%d), B, T, scratch);\n  }\n",
        st->op, rope_of(pr, op).s, st->n_calls, saved_of(pr, st->op).s, keep_of(pr, st->op));
  else
    out(pr, "    lmn_vertex_forward(net, &vtx_op%d, %s, io, %d, %s, B, T, scratch);\n  }\n", st->op, rope_of(pr, op).s,
        st->n_calls, saved_of(pr, st->op).s);
}

static void vertex_bwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  if (!st->n_calls) {
    out(pr, "  /* backward with its batch, op%d */\n", pr->p->group[st->op]);
    return;
  }
  out(pr, "  {\n");
  vertex_io(pr, st, 1);
  if (keep_of(pr, st->op) >= 0) {
    out(pr, "    lmn_vertex_backward_kept(net, &vtx_op%d, %s, io, %d, %s, KEPT(%d), B, T, scratch);\n  }\n",
        st->op, rope_of(pr, op).s, st->n_calls, saved_of(pr, st->op).s, keep_of(pr, st->op));
    return;
  }
  out(pr, "    lmn_vertex_backward(net, &vtx_op%d, %s, io, %d, %s, B, T, scratch);\n  }\n", st->op, rope_of(pr, op).s,
      st->n_calls, saved_of(pr, st->op).s);
}

/* ---- classification head and losses -------------------------------------------------------------- */

static void classify_fwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  const Module *m = mod_of(pr, op);
  out(pr, "  lmn_last_rows(%s, %s, B, T, %ld);\n", saved_of(pr, st->op).s, out_of(pr, in_of(op)).s, m->din);
  out(pr, "  lmn_linear_forward(%s, %s, lmn_w(net, %s), lmn_w(net, %s), B, %ld, %ld);\n", out_of(pr, st->op).s,
      saved_of(pr, st->op).s, pref(pr, op_role(pr->ir, op, ROLE_WEIGHT, 0)), pref(pr, op_role(pr->ir, op, ROLE_BIAS, 0)),
      m->din, m->dout);
}

static void classify_bwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  const Module *m = mod_of(pr, op);
  const char *w = pref(pr, op_role(pr->ir, op, ROLE_WEIGHT, 0)), *b = pref(pr, op_role(pr->ir, op, ROLE_BIAS, 0));
  out(pr, "  {\n    float *dx = scratch; /* [B, %ld] */\n    memset(dx, 0, sizeof(float) * B * %ld);\n", m->din, m->din);
  out(pr, "    lmn_linear_backward(dx, lmn_g(net, %s), lmn_g(net, %s), %s, %s, lmn_w(net, %s), B, %ld, %ld);\n", w, b,
      out_of(pr, st->op).s, saved_of(pr, st->op).s, w, m->din, m->dout);
  if (pr->l->dout[in_of(op)] >= 0) out(pr, "    lmn_add_last_rows(%s, dx, B, T, %ld);\n", dout_of(pr, in_of(op)).s, m->din);
  out(pr, "  }\n");
}

static void loss_fwd(Printer *pr, const Step *st) {
  const Op *op = op_of(pr, st);
  const Loss *l = &pr->net->losses[op->loss];
  const Op *head = &pr->ir->ops[in_of(op)];
  const char *rows = head->kind == OP_CLASSIFY ? "B" : "(int)N";
  Ref logits = out_of(pr, in_of(op));
  out(pr, "  if (!targets_in)\n    ; /* no targets: outputs only */\n");
  out(pr, "  else if (train)\n    loss += (float)%.17g * lmn_xent_forward_backward(%s, targets, %s, %ld, (float)%.9g, (float)%.17g, NULL, NULL, pool);\n",
      l->weight, logits.s, rows, head->width, l->smoothing, l->weight);
  out(pr, "  else\n    loss += (float)%.17g * lmn_xent_forward(%s, targets, %s, %ld, (float)%.9g, NULL, NULL, pool);\n", l->weight,
      logits.s, rows, head->width, l->smoothing);
}

static void none(Printer *pr, const Step *st) {
  (void)pr;
  (void)st;
}

/* ---- the printers and the functions ------------------------------------------------------------- */

typedef void (*print_fn)(Printer *pr, const Step *st);
static const struct {
  print_fn fwd, bwd; /* decoding prints with fwd */
} printers[] = {
    [STEP_EMBED] = {embed_fwd, embed_bwd},     [STEP_SUM] = {sum_fwd, sum_bwd},
    [STEP_LINEAR] = {linear_fwd, linear_bwd},  [STEP_MLP] = {mlp_fwd, mlp_bwd},
    [STEP_BLOCK] = {block_fwd, block_bwd},     [STEP_VERTEX] = {vertex_fwd, vertex_bwd},
    [STEP_HEAD] = {linear_fwd, linear_bwd},    [STEP_CLASSIFY] = {classify_fwd, classify_bwd},
    [STEP_LOSS] = {loss_fwd, none},
};
_Static_assert(sizeof printers / sizeof printers[0] == STEP_COUNT, "one printer per step kind");

static void print_steps(Printer *pr, const Schedule *s) {
  for (int i = 0; i < s->n; i++) {
    const Step *st = &s->steps[i];
    const Op *op = &pr->ir->ops[st->op];
    for (int z = 0; z < st->n_zero; z++)
      out(pr, "  memset(%s, 0, sizeof(float) * N * %ld); /* d op%d */\n", dout_of(pr, st->zero[z]).s,
          pr->ir->ops[st->zero[z]].width, st->zero[z]);
    out(pr, "  /* op%d %s: %s", st->op, op_kind_name(op->kind), op->name);
    int b = pr->phase == PH_BWD ? pr->l->dout[st->op] : pr->l->out[st->op];
    if (b >= 0)
      out(pr, "\n   * %s%s [%s, %ld] */\n", pr->phase == PH_BWD ? "d: " : "-> ", buf(pr, b).s,
          pr->l->bufs[b].rows == ROWS_B ? "B" : pr->phase == PH_DEC ? "T" : "B*T", pr->l->bufs[b].width);
    else
      out(pr, " */\n");
    (pr->phase == PH_BWD ? printers[st->kind].bwd : printers[st->kind].fwd)(pr, st);
    if (pr->phase == PH_BWD) out(pr, "  lmn_net_grads_done(net, %d);\n", i);
  }
}

/* The start of every function: the layout for B x T (or the cache for ctx), scratch, pool, RoPE tables. */
static void prologue(Printer *pr, const char *desc, const char *B, const char *T, const char *base, int build_rope) {
  out(pr, "  lmn_arena L;\n  lmn_arena_layout(&%s, %s, %s, net->n_threads, %s, &L);\n", desc, B, T,
      strcmp(desc, "arena") == 0 ? "net->recompute" : "NULL");
  out(pr, "  float *A = %s, *scratch = A + L.scratch;\n  lmn_pool *pool = net->pool;\n", base);
  out(pr, "  lmn_rope ropes[NMODELS];\n  lmn_arena_ropes(&%s, &L, A, %s, %s, ropes);\n", desc, T, build_rope ? "1" : "pos0 == 0");
  out(pr, "  (void)scratch;\n  (void)pool;\n  (void)ropes;\n  (void)R;\n");
}

/* Forward and backward: T counts the prefix positions too; the arena holds B*T rows. */
static void train_prologue(Printer *pr) {
  out(pr, "  const int T = T_in + PREFIX;\n  const size_t N = (size_t)B * T, R = N;\n");
  prologue(pr, "arena", "B", "T", "net->arena", 1);
}

static int has_labels(const Printer *pr) {
  return pr->p->primary >= 0 && pr->ir->ops[pr->p->primary].kind == OP_CLASSIFY;
}

static void emit_forward(Printer *pr) {
  out(pr, "static float forward(lmn_net *net, const int32_t *tokens_in, const int32_t *targets_in, int B, int T_in, int train) {\n");
  train_prologue(pr);
  if (pr->net->prefix) {
    out(pr, "  int32_t *tokens = (int32_t *)(A + L.tokens), *prefixed = tokens + N;\n");
    out(pr, "  const int32_t *targets = %s;\n", has_labels(pr) ? "targets_in; /* labels [B] */\n  (void)prefixed" : "prefixed");
    out(pr, "  lmn_prefix_tokens(tokens, %s, tokens_in, targets_in, B, T_in, PREFIX);\n", has_labels(pr) ? "NULL" : "prefixed");
  } else {
    out(pr, "  const int32_t *tokens = tokens_in, *targets = targets_in;\n");
  }
  out(pr, "  float loss = 0;\n  (void)train;\n  (void)targets;\n");
  pr->phase = PH_FWD;
  print_steps(pr, &pr->p->fwd);
  out(pr, "  return loss;\n}\n\n");
}

static void emit_backward(Printer *pr) {
  out(pr, "static void backward(lmn_net *net, const int32_t *tokens_in, int B, int T_in) {\n");
  train_prologue(pr);
  if (pr->net->prefix) out(pr, "  const int32_t *tokens = (const int32_t *)(A + L.tokens); /* made by forward */\n  (void)tokens_in;\n");
  else out(pr, "  const int32_t *tokens = tokens_in;\n");
  out(pr, "  (void)tokens;\n");
  pr->phase = PH_BWD;
  print_steps(pr, &pr->p->bwd);
  out(pr, "}\n\n");
}

static void emit_decode(Printer *pr) {
  out(pr, "static void decode(lmn_net *net, const int32_t *tokens_in, int T_in, int pos0_in, float *logits) {\n");
  out(pr, "  /* the prefix goes in with the prefill; later positions shift by PREFIX */\n");
  out(pr, "  const int ctx = net->cache_ctx + PREFIX;\n");
  out(pr, "  const int T = T_in + (pos0_in == 0 ? PREFIX : 0), pos0 = pos0_in == 0 ? 0 : pos0_in + PREFIX;\n");
  out(pr, "  const size_t N = (size_t)T, R = (size_t)ctx;\n");
  prologue(pr, "cache", "1", "ctx", "net->cache", 0);
  out(pr, "  const int32_t *tokens = tokens_in;\n");
  if (pr->net->prefix)
    out(pr, "  if (pos0 == 0) {\n    lmn_prefix_tokens((int32_t *)(A + L.tokens), NULL, tokens_in, NULL, 1, T_in, PREFIX);\n"
            "    tokens = (const int32_t *)(A + L.tokens);\n  }\n");
  out(pr, "  (void)tokens;\n  (void)N;\n  (void)logits;\n");
  pr->phase = PH_DEC;
  print_steps(pr, &pr->p->dec);
  out(pr, "}\n\n");
}

static void emit_output(Printer *pr) {
  const Buffer *b = &pr->p->train.bufs[pr->p->train.out[pr->p->primary]];
  out(pr, "/* Rows: [B, PREFIX + T] positions (the prefix rows first), or [B] for class logits. */\n");
  out(pr, "static float *output(lmn_net *net, int B, int T) {\n  lmn_arena L;\n");
  out(pr, "  lmn_arena_layout(&arena, B, T + PREFIX, net->n_threads, net->recompute, &L);\n");
  if (b->rows == ROWS_B) out(pr, "  return net->arena + L.seq + (size_t)B * %ld;\n}\n\n", b->at);
  else out(pr, "  return net->arena + (size_t)B * (T + PREFIX) * %ld;\n}\n\n", b->at);
}

void emit_functions(Printer *pr) {
  out(pr, "/* Buffers: BUF(at) is `at` floats per row into the planned region of R rows (B*T, or ctx when decoding);\n"
          " * SEQ(at) the [B]-row region. The planner gave each its place by lifetime; each step names its output. */\n");
  out(pr, "#define BUF(at) (A + R * (size_t)(at))\n#define SEQ(at) (A + L.seq + (size_t)B * (size_t)(at))\n");
  out(pr,
      "/* Keep op j (arena_keep): its saved activations, in its own region or, when it recomputes, in the "
      "shared\n"
      " * workspace; KEPT(j) its kept input while it recomputes, else NULL. */\n");
  out(pr,
      "#define SAVED(j) lmn_arena_saved(&arena, &L, A, j)\n#define KEPT(j) lmn_arena_kept(&arena, &L, A, "
      "j)\n\n");
  pr->l = &pr->p->train;
  emit_forward(pr);
  emit_backward(pr);
  pr->l = &pr->p->cache;
  emit_decode(pr);
  pr->l = &pr->p->train;
  emit_output(pr);
}
