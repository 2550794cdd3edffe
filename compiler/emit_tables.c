/* emit_tables.c: the data half of a network's C code: an enum of parameter indices, the parameter table
 * with designated initializers, the models read from files (with the format of their frozen matrices), block
 * and vertex shapes with their bindings, the scratch needs and layouts of the arena and the decoding cache,
 * and the network's descriptor. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "emit_int.h"

const char *pref(const Printer *pr, int ir_param) { return ir_param < 0 ? "-1" : pr->pname[pr->p->gen[ir_param]]; }

int op_role(const Ir *ir, const Op *op, ParamRole role, int member) {
  for (int k = 0; k < op->n_params; k++) {
    const Param *p = &ir->params[op->params[k]];
    if (p->role == role && (role != ROLE_WEIGHT && role != ROLE_BIAS ? 1 : p->member == member)) return op->params[k];
  }
  return -1;
}

/* ---- names --------------------------------------------------------------------------------------- */

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* NET_P_NAME in upper case with '_' for anything else; a name met twice gets its index appended. */
int emit_names(Printer *pr) {
  const Ir *ir = pr->ir;
  int n = ir->n_params;
  pr->pname = calloc((size_t)n + 1, sizeof(char *));
  char **sorted = calloc((size_t)n + 1, sizeof(char *));
  if (!pr->pname || !sorted) return free(sorted), -1;
  for (int g = 0; g < n; g++) {
    const char *name = ir->params[pr->p->order[g]].name;
    size_t len = strlen(pr->net->name) + strlen(name) + 24;
    char *s = malloc(len);
    if (!s) return free(sorted), -1;
    int at = snprintf(s, len, "%s_P_", pr->net->name);
    for (const char *c = name; *c; c++) s[at++] = isalnum((unsigned char)*c) ? (char)toupper((unsigned char)*c) : '_';
    s[at] = 0;
    for (char *c = s; *c; c++) *c = (char)toupper((unsigned char)*c);
    pr->pname[g] = sorted[g] = s;
  }
  qsort(sorted, (size_t)n, sizeof(char *), by_name);
  for (int k = 1; k < n; k++)
    if (!strcmp(sorted[k], sorted[k - 1])) {
      for (int g = 0; g < n; g++)
        if (!strcmp(pr->pname[g], sorted[k])) snprintf(pr->pname[g] + strlen(pr->pname[g]), 16, "_%d", g);
    }
  free(sorted);
  return 0;
}

/* ---- parameters and models ----------------------------------------------------------------------- */

static const char *owner_name(const Printer *pr, const Param *p, char *buf, size_t n) {
  const Net *net = pr->net;
  if (p->owner == OWN_MODEL) return net->models[p->owner_index].name;
  if (p->owner == OWN_VERTEX) return net->vertices[p->owner_index].name;
  const Edge *ed = &net->edges[p->owner_index];
  if (ed->type) return ed->type;
  snprintf(buf, n, "e%d", ed->id);
  return buf;
}

/* Index of a model among those read from files (the descriptor's model table). */
static int file_model_index(const Net *net, int m) {
  int k = 0;
  for (int i = 0; i < m; i++) k += net->models[i].source != SRC_NONE;
  return k;
}

static const char *const init_names[] = {"LMN_INIT_NORMAL", "LMN_INIT_ZERO", "LMN_INIT_ONE", "LMN_INIT_EMBED_STATS",
                                         "LMN_INIT_IDENTITY"};
/* lmn_param_info.kind by its LMN_PARAM_ flags */
static const char *const kind_names[8] = {"0",
                                          "LMN_PARAM_BIAS",
                                          "LMN_PARAM_NORM",
                                          "LMN_PARAM_NORM | LMN_PARAM_BIAS",
                                          "LMN_PARAM_EMBEDDING",
                                          "LMN_PARAM_EMBEDDING | LMN_PARAM_BIAS",
                                          "LMN_PARAM_EMBEDDING | LMN_PARAM_NORM",
                                          "LMN_PARAM_EMBEDDING | LMN_PARAM_NORM | LMN_PARAM_BIAS"};

static void emit_params(Printer *pr) {
  const Ir *ir = pr->ir;
  out(pr, "/* Parameter indices, trainable tensors first (gradients and AdamW moments cover exactly those). */\nenum {\n");
  for (int g = 0; g < ir->n_params; g++) out(pr, "  %s = %d,\n", pr->pname[g], g);
  out(pr, "  NPARAMS = %d\n};\n\n", ir->n_params);
  out(pr, "static const lmn_param_info params[%d] = {\n", ir->n_params ? ir->n_params : 1);
  for (int g = 0; g < ir->n_params; g++) {
    const Param *p = &ir->params[pr->p->order[g]];
    char ob[32], tensor[200] = "NULL";
    if (p->file_model >= 0) snprintf(tensor, sizeof tensor, "\"%s\"", param_file_name(p));
    out(pr, "    [%s] = {\"%s\", %ld, %ld, %ld, %d, %d, \"%s\", %s, %d, %s, %d, %s, %s},\n", pr->pname[g], p->name,
        pr->p->offset[g], p->shape[0], p->shape[1], p->trainable, p->owner == OWN_EDGE ? p->owner_index : -1,
        owner_name(pr, p, ob, sizeof ob), init_names[p->init], p->file_model >= 0, pref(pr, p->like),
        p->file_model >= 0 ? file_model_index(pr->net, p->file_model) : -1, tensor, kind_names[p->kind & 7]);
  }
  out(pr, "};\n\n");
}

/* `.weights = 8` with a comment naming the format and its LMN_GGML_ enum: the generated file does not include
 * dequant.h, so the ggml type is written as a number. */
static void emit_weights(Printer *pr, int weights) {
  if (weights == WEIGHTS_FILE) {
    out(pr, ".weights = -1 /* as stored in the file */");
    return;
  }
  const char *name = weights_format_name(weights);
  char upper[16];
  size_t i = 0;
  for (; name[i] && i + 1 < sizeof upper; i++) upper[i] = (char)toupper((unsigned char)name[i]);
  upper[i] = 0;
  out(pr, ".weights = %d /* %s: LMN_GGML_%s */", weights, name, upper);
}

static void emit_models(Printer *pr) {
  const Net *net = pr->net;
  int n = 0;
  out(pr,
      "/* Models read from files: the hyper-parameters this code was compiled for, and the format their\n"
      " * frozen matrices are kept in (weights: -1 as stored in the file, else an lmn_ggml_type). */\n");
  out(pr, "static const lmn_model_info models[%d] = {\n", file_model_index(net, net->n_models) ? file_model_index(net, net->n_models) : 1);
  for (int m = 0; m < net->n_models; m++) {
    const Model *md = &net->models[m];
    if (md->source == SRC_NONE) continue;
    const lmn_hparams *h = &md->hp;
    char from_build[4096] = "";
    if (pr->out_dir) relative_path(pr->out_dir, md->file, from_build, sizeof from_build);
    out(pr,
        "    {.name = \"%s\", .path = \"%s\", .from_build = \"%s\", .format = %d, .hp = {%d, %ld, %ld, %ld, %ld, "
        "%ld, %ld, %ld, %.17g, %.17g, %d, %d}, ",
        md->name, md->file, from_build, md->source == SRC_GGUF ? 1 : 2, (int)h->arch, h->dim, h->layers, h->heads,
        h->kv_heads, h->ffn, h->vocab, h->ctx, h->eps, h->rope_theta, h->tied, h->qkv_bias);
    emit_weights(pr, md->weights);
    out(pr, "},\n");
    n++;
  }
  if (!n) out(pr, "    {0},\n");
  out(pr, "};\n\n");
}

/* ---- blocks, vertices, layouts ------------------------------------------------------------------- */

static const char *const block_kinds[] = {"LMN_BLOCK_LLAMA", "LMN_BLOCK_QWEN2", "LMN_BLOCK_GPT2", "LMN_BLOCK_GPT2_EDGE"};

static void emit_bind(Printer *pr) {
  const Ir *ir = pr->ir;
  int rows = 0;
  for (int i = 0; i < ir->n_ops; i++) rows += ir->ops[i].layers > 0 ? ir->ops[i].layers : 0;
  out(pr, "/* Weight bindings of every block (vertex layers, decoder and gpt2 edges): parameter indices in\n"
          " * lmn_block_member order, -1 where the block kind has no such tensor. */\n");
  out(pr, "static const int bind[%d][LMN_BM_COUNT] = {\n", rows ? rows : 1);
  for (int i = 0; i < ir->n_ops; i++)
    for (int l = 0; l < ir->ops[i].layers; l++) {
      const int *row = &pr->p->vbind[(size_t)(pr->p->vbind_at[i] + l) * LMN_BM_COUNT];
      out(pr, "    {");
      for (int j = 0; j < LMN_BM_COUNT; j++) out(pr, "%s%d", j ? ", " : "", row[j]);
      out(pr, "}, /* op%d layer %d */\n", i, l);
    }
  if (!rows) out(pr, "    {0},\n");
  out(pr, "};\n\n");
}

static void block_init(Printer *pr, const lmn_block_cfg *c) {
  out(pr, "{%s, %d, %d, %d, %d, %d, (float)%.9g, %d, (float)%.9g}", block_kinds[c->kind], c->d, c->heads, c->kv_heads,
      c->hd, c->ffn, c->eps, c->qkv_bias, c->scale);
}

/* A vertex's shape is printed where some step or scratch entry names it. */
static int vertex_used(const Printer *pr, int i) {
  return pr->p->group[i] < 0 || pr->p->group[i] == i || pr->p->cache.out[i] >= 0;
}

static void emit_blocks(Printer *pr) {
  const Ir *ir = pr->ir;
  for (int i = 0; i < ir->n_ops; i++) {
    const Op *op = &ir->ops[i];
    if (op->layers <= 0 || (op->kind == OP_VERTEX && !vertex_used(pr, i))) continue;
    out(pr, "static const %s %s_op%d = ", op->kind == OP_VERTEX ? "lmn_vertex_cfg" : "lmn_block_cfg",
        op->kind == OP_VERTEX ? "vtx" : "blk", i);
    if (op->kind == OP_VERTEX) {
      const lmn_vertex_cfg *v = &pr->p->vtx[i];
      out(pr, "{");
      block_init(pr, &v->blk);
      out(pr, ", %d, &bind[%d], %s, %s}; /* %s */\n", v->layers, pr->p->vbind_at[i], v->norm_w < 0 ? "-1" : pr->pname[v->norm_w],
          v->norm_b < 0 ? "-1" : pr->pname[v->norm_b], op->name);
    } else {
      block_init(pr, &pr->p->blk[i]);
      out(pr, "; /* %s */\n", op->name);
    }
  }
  out(pr, "\n");
}

static const char *const scratch_kinds[] = {"LMN_SCRATCH_BLOCK",        "LMN_SCRATCH_VERTEX",        "LMN_SCRATCH_MLP",
                                            "LMN_SCRATCH_CLASSIFY",     "LMN_SCRATCH_BLOCK_CACHED", "LMN_SCRATCH_VERTEX_CACHED",
                                            "LMN_SCRATCH_MLP_CACHED"};
_Static_assert(sizeof scratch_kinds / sizeof scratch_kinds[0] == LMN_SCRATCH_KINDS, "a name per scratch kind");

/* The op a scratch entry's shape belongs to (the shapes are arrays indexed by op). */
static int op_of_scratch(const Printer *pr, const lmn_scratch *s) {
  return s->blk ? (int)(s->blk - pr->p->blk) : (int)(s->vtx - pr->p->vtx);
}

static void out_c_string(Printer *pr, const char *s);

/* The keep ops (arena.h): shape, forward FLOPs per row, name. */
static void emit_keep(Printer *pr, const char *name, const lmn_arena_desc *d) {
  out(pr, "/* %s: ops whose saved activations the run may recompute (its memory plan, recompute.h) */\n",
      name);
  out(pr, "static const lmn_keep %s_keep[%d] = {\n", name, d->n_keep);
  for (int j = 0; j < d->n_keep; j++) {
    const lmn_keep *k = &d->keep[j];
    char blk[32] = "NULL", vtx[32] = "NULL";
    if (k->blk) snprintf(blk, sizeof blk, "&blk_op%d", (int)(k->blk - pr->p->blk));
    if (k->vtx) snprintf(vtx, sizeof vtx, "&vtx_op%d", (int)(k->vtx - pr->p->vtx));
    out(pr, "    {%s, %s, %d, %.17g, %.17g, ", blk, vtx, k->K, k->flops_bt, k->flops_btt);
    out_c_string(pr, k->what);
    out(pr, "},\n");
  }
  out(pr, "};\n");
}

static void emit_layout(Printer *pr, const char *name, int cached) {
  lmn_arena_desc d = sched_arena(pr->p, cached);
  out(pr, "static const lmn_scratch %s_scratch[%d] = {\n", name, d.n_scratch ? d.n_scratch : 1);
  for (int k = 0; k < d.n_scratch; k++) {
    const lmn_scratch *s = &d.scratch[k];
    char blk[32] = "NULL", vtx[32] = "NULL";
    if (s->blk) snprintf(blk, sizeof blk, "&blk_op%d", op_of_scratch(pr, s));
    if (s->vtx) snprintf(vtx, sizeof vtx, "&vtx_op%d", op_of_scratch(pr, s));
    out(pr, "    {%s, %s, %s, %d, %d, %d},\n", scratch_kinds[s->kind], blk, vtx, s->K, s->d, s->h);
  }
  if (!d.n_scratch) out(pr, "    {0},\n");
  out(pr, "};\n");
  out(pr, "/* %s: %ld floats per row planned (outputs, gradients, saved, KV caches), %ld per sequence */\n", name,
      d.row_floats, d.seq_floats);
  char keep[32] = "0, NULL";
  if (d.n_keep) {
    emit_keep(pr, name, &d);
    snprintf(keep, sizeof keep, "%d, %s_keep", d.n_keep, name);
  }
  out(pr,
      "static const lmn_arena_desc %s = {%ld, %ld, %d, %d, %s_scratch, NMODELS, rope_hd, rope_theta, "
      "%s};\n\n",
      name, d.row_floats, d.seq_floats, d.token_arrays, d.n_scratch, name, keep);
}

void emit_tables(Printer *pr) {
  emit_params(pr);
  emit_models(pr);
  emit_bind(pr);
  emit_blocks(pr);
  out(pr, "/* RoPE tables per model: head size (0: none) and base. */\nstatic const int rope_hd[NMODELS] = {");
  for (int m = 0; m < pr->net->n_models; m++) out(pr, "%s%d", m ? ", " : "", pr->p->rope_hd[m]);
  out(pr, "};\nstatic const double rope_theta[NMODELS] = {");
  for (int m = 0; m < pr->net->n_models; m++) out(pr, "%s%.17g", m ? ", " : "", pr->p->rope_theta[m]);
  out(pr, "};\n\n");
  emit_layout(pr, "arena", 0);
  emit_layout(pr, "cache", 1);
  out(pr,
      "static size_t arena_floats(int B, int T, int nt) {\n  lmn_arena L;\n"
      "  lmn_arena_layout(&arena, B, T + PREFIX, nt, NULL, &L);\n  return L.total;\n}\n\n");
  out(pr,
      "static size_t cache_floats(int ctx, int nt) {\n  lmn_arena L;\n"
      "  lmn_arena_layout(&cache, 1, ctx + PREFIX, nt, NULL, &L);\n  return L.total;\n}\n\n");
}

/* ---- the descriptor ------------------------------------------------------------------------------ */

/* s as a C string expression, a literal per source line; NULL when s is. Bytes outside printable ASCII are
 * octal escapes and '?' is escaped, so that no trigraph forms. */
static void out_c_string(Printer *pr, const char *s) {
  if (!s) {
    out(pr, "NULL");
    return;
  }
  out(pr, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '\n') out(pr, p[1] ? "\\n\"\n        \"" : "\\n");
    else if (*p == '"' || *p == '\\' || *p == '?') out(pr, "\\%c", *p);
    else if (*p < 0x20 || *p >= 0x7f) out(pr, "\\%03o", *p);
    else out(pr, "%c", *p);
  }
  out(pr, "\"");
}

/* The tokenizer the embedding model borrows (`tokenizer "FILE"`), as a model file without hyper-parameters;
 * returns whether there is one. */
static int emit_tokenizer(Printer *pr) {
  const Net *net = pr->net;
  const Model *md = net->embed_model >= 0 ? &net->models[net->embed_model] : NULL;
  if (!md || !md->tok_file) return 0;
  char from_build[4096] = "";
  if (pr->out_dir) relative_path(pr->out_dir, md->tok_file, from_build, sizeof from_build);
  out(pr, "/* The tokenizer model '%s' borrows: a GGUF file (format 1) or a Hugging Face directory (2). */\n",
      md->name);
  out(pr, "static const lmn_model_info borrowed_tokenizer = {.name = \"%s\", .path = ", md->name);
  out_c_string(pr, md->tok_file);
  out(pr, ", .from_build = ");
  out_c_string(pr, from_build);
  out(pr, ", .format = %d};\n\n", md->tok_format);
  return 1;
}

/* grad_done[]: per generated parameter, the backward step after which its gradient is final (the last step
 * whose ops use it), -1 for frozen tensors. */
static void emit_grad_done(Printer *pr) {
  const Ir *ir = pr->ir;
  int *done = malloc(sizeof(int) * (size_t)(ir->n_params + 1));
  if (!done) return;
  for (int g = 0; g < ir->n_params; g++) done[g] = -1;
  const Schedule *s = &pr->p->bwd;
  for (int i = 0; i < s->n; i++) {
    const Step *st = &s->steps[i];
    int n = st->n_calls ? st->n_calls : 1;
    for (int c = 0; c < n; c++) {
      const Op *op = &ir->ops[st->n_calls ? st->calls[c] : st->op];
      for (int k = 0; k < op->n_params; k++)
        if (ir->params[op->params[k]].trainable) done[pr->p->gen[op->params[k]]] = i;
    }
  }
  out(pr, "static const int grad_done[NPARAMS + 1] = {");
  for (int g = 0; g <= ir->n_params; g++) /* one more: NPARAMS may be 0 */
    out(pr, "%s%s%d", g ? "," : "", g % 32 ? " " : "\n    ", g < ir->n_params ? done[g] : -1);
  out(pr, "};\n\n");
  free(done);
}

void emit_desc(Printer *pr, const char *source) {
  const Ir *ir = pr->ir;
  const Net *net = pr->net;
  int borrowed = emit_tokenizer(pr);
  emit_grad_done(pr);
  Cost f, t;
  ir_flops(ir, &f, &t);
  long ctx = 1L << 30, classes = pr->p->primary >= 0 && ir->ops[pr->p->primary].kind == OP_CLASSIFY ? ir->ops[pr->p->primary].width : 0;
  for (int m = 0; m < net->n_models; m++)
    if (net->models[m].hp.ctx < ctx) ctx = net->models[m].hp.ctx;
  int em = net->embed_model;
  out(pr, "const lmn_net_desc %s_desc = {\n", net->name);
  out(pr, "    .name = \"%s\",\n    .source = ", net->name);
  out_c_string(pr, source);
  out(pr, ",\n    .hash = 0x%016llxULL,\n    .aggregate_mean = %d,\n    .source_text = ", (unsigned long long)pr->p->hash,
      net->aggregate == AGG_MEAN);
  out_c_string(pr, pr->source_text);
  out(pr, ",\n    .ir_json = ");
  out_c_string(pr, pr->ir_json);
  out(pr, ",\n");
  out(pr, "    .vocab = %ld,\n    .classes = %ld,\n    .ctx = %ld,\n    .prefix = %ld,\n", net->models[em].hp.vocab, classes,
      ctx - net->prefix, net->prefix);
  out(pr, "    .n_models = %d,\n    .models = models,\n    .tokenizer_model = %d,\n", file_model_index(net, net->n_models),
      em >= 0 && net->models[em].source != SRC_NONE ? file_model_index(net, em) : -1);
  if (borrowed) out(pr, "    .tokenizer = &borrowed_tokenizer,\n");
  out(pr, "    .n_params = NPARAMS,\n    .params = params,\n    .n_floats = %ld,\n    .n_train = %ld,\n    .n_train_decay = %ld,\n",
      ir_param_total(ir, 0), ir_param_total(ir, 1), ir_param_total(ir, 1));
  out(pr, "    .flops_bt = %.17g,\n    .flops_btt = %.17g,\n    .flops_b = %.17g,\n", t.bt, t.btt, t.b);
  out(pr, "    .fwd_bt = %.17g,\n    .fwd_btt = %.17g,\n    .fwd_b = %.17g,\n", f.bt, f.btt, f.b);
  out(pr,
      "    .arena_floats = arena_floats,\n    .arena = &arena,\n    .cache_floats = cache_floats,\n    "
      ".forward = forward,\n"
      "    .backward = backward,\n    .decode = decode,\n    .output = output,\n    .grad_done = "
      "grad_done,\n};\n");
}
