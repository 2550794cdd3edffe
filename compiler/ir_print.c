/* ir_print.c: the IR as text (`lmnc ir`), as JSON for tools (`lmnc ir --json`: enough to rebuild
 * the network elsewhere), and the `lmnc info` summary (parameters, FLOPs per token, memory). */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* 1234567 -> "1,234,567" */
static const char *commas(long v, char *buf) {
  char tmp[32];
  int n = snprintf(tmp, sizeof tmp, "%ld", v < 0 ? -v : v), o = 0;
  if (v < 0) buf[o++] = '-';
  for (int i = 0; i < n; i++) {
    if (i && (n - i) % 3 == 0) buf[o++] = ',';
    buf[o++] = tmp[i];
  }
  buf[o] = 0;
  return buf;
}

static void shape_str(const Param *p, char *buf, size_t n) {
  if (p->shape[1]) snprintf(buf, n, "[%ld, %ld]", p->shape[0], p->shape[1]);
  else snprintf(buf, n, "[%ld]", p->shape[0]);
}

static const char *owner_str(const Ir *ir, const Param *p, char *buf, size_t n) {
  const Net *net = ir->net;
  if (p->owner == OWN_MODEL) snprintf(buf, n, "model %s", net->models[p->owner_index].name);
  else if (p->owner == OWN_VERTEX) snprintf(buf, n, "vertex %s", net->vertices[p->owner_index].name);
  else snprintf(buf, n, "edge e%d (%s)", p->owner_index, net->edges[p->owner_index].label);
  return buf;
}

static void cost_str(Cost c, char *buf, size_t n) {
  snprintf(buf, n, "%.6g*B + %.6g*B*T + %.6g*B*T^2", c.b, c.bt, c.btt);
}

/* One line per model: architecture, file and the format its frozen matrices are kept in, or from scratch. */
static void text_models(const Net *net, FILE *out) {
  fprintf(out, "models:\n");
  for (int i = 0; i < net->n_models; i++) {
    const Model *m = &net->models[i];
    fprintf(out, "  %-16s %-6s ", m->name, lmn_arch_name(m->hp.arch));
    if (m->source == SRC_NONE && m->tok_file)
      fprintf(out, "from scratch, tokenizer \"%s\" (%ld tokens)\n", m->tok_file, m->tok_vocab);
    else if (m->source == SRC_NONE)
      fprintf(out, "from scratch\n");
    else
      fprintf(out, "%s(\"%s\") weights %s\n", m->source == SRC_GGUF ? "gguf" : "safetensors", m->file,
              weights_format_name(m->weights));
  }
}

void ir_print_text(const Ir *ir, FILE *out) {
  const Net *net = ir->net;
  char a[64], b[64], c[160];
  fprintf(out, "network %s (aggregate %s)\n\n", net->name, net->aggregate == AGG_MEAN ? "mean" : "sum");
  text_models(net, out);
  fprintf(out, "\nparameters (%d tensors, %s values, %s trainable):\n", ir->n_params,
          commas(ir_param_total(ir, 0), a), commas(ir_param_total(ir, 1), b));
  for (int i = 0; i < ir->n_params; i++) {
    const Param *p = &ir->params[i];
    char shape[48];
    shape_str(p, shape, sizeof shape);
    fprintf(out, "  p%-4d %-40s %-14s %-9s %s\n", i, p->name, shape, p->trainable ? "trainable" : "frozen",
            owner_str(ir, p, c, sizeof c));
  }
  fprintf(out, "\nops in topological order (FLOPs and saved floats as functions of batch B and length T):\n");
  for (int i = 0; i < ir->n_ops; i++) {
    const Op *op = &ir->ops[i];
    fprintf(out, "  op%-3d %-9s %s\n", i, op_kind_name(op->kind), op->name);
    fprintf(out, "        in:");
    for (int k = 0; k < op->n_inputs; k++) fprintf(out, " op%d", op->inputs[k]);
    if (op->n_inputs == 0) fprintf(out, " tokens");
    fprintf(out, "  width %ld  params %d  %s%s\n", op->width, op->n_params, op->trainable ? "trainable " : "",
            op->backward ? (op->grad_in ? "backward(dx)" : "backward(dW only)") : "no backward");
    cost_str(op->fwd, c, sizeof c);
    fprintf(out, "        fwd FLOPs %s\n", c);
    if (op->backward) {
      cost_str(op->bwd, c, sizeof c);
      fprintf(out, "        bwd FLOPs %s\n", c);
      cost_str(op->saved, c, sizeof c);
      fprintf(out, "        saved floats %s\n", c);
    }
  }
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static void json_str(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
    else if (ch < 0x20) fprintf(out, "\\u%04x", ch);
    else fputc(ch, out);
  }
  fputc('"', out);
}

static void json_cost(FILE *out, const char *key, Cost c) {
  fprintf(out, "\"%s\": {\"b\": %.17g, \"bt\": %.17g, \"btt\": %.17g}", key, c.b, c.bt, c.btt);
}

static void json_module(FILE *out, const Net *net, const Module *m) {
  fprintf(out, "{\"kind\": \"%s\", \"din\": %ld, \"dout\": %ld", mod_kind_name(m->kind), m->din, m->dout);
  if (m->kind == MOD_LINEAR)
    fprintf(out, ", \"bias\": %s, \"init\": \"%s\"", m->bias ? "true" : "false", mod_init_name(m->init));
  if (m->kind == MOD_MLP) fprintf(out, ", \"hidden\": %ld", m->hidden);
  if (m->model >= 0) fprintf(out, ", \"model\": \"%s\"", net->models[m->model].name);
  if (m->kind == MOD_GPT2_EDGE) fprintf(out, ", \"scaled\": %s", m->unscaled ? "false" : "true");
  if (m->kind == MOD_EMBED) fprintf(out, ", \"prefix\": %ld", m->prefix);
  if (m->kind == MOD_EMBED || m->kind == MOD_HEAD || m->kind == MOD_CLASSIFY)
    fprintf(out, ", \"trainable\": %s", m->trainable ? "true" : "false");
  fputc('}', out);
}

static void json_models(FILE *out, const Net *net) {
  fprintf(out, "  \"models\": [\n");
  for (int i = 0; i < net->n_models; i++) {
    const Model *m = &net->models[i];
    const lmn_hparams *h = &m->hp;
    fprintf(out, "    {\"name\": \"%s\", \"arch\": \"%s\", \"source\": \"%s\", \"path\": ", m->name, lmn_arch_name(h->arch),
            m->source == SRC_GGUF ? "gguf" : m->source == SRC_SAFETENSORS ? "safetensors" : "none");
    if (m->path) json_str(out, m->file);
    else fprintf(out, "null");
    fprintf(
        out,
        ", \"dim\": %ld, \"layers\": %ld, \"heads\": %ld, \"kv_heads\": %ld, \"ffn\": %ld, \"vocab\": %ld, "
        "\"ctx\": %ld, \"eps\": %.9g, \"rope_theta\": %.9g, \"tied\": %s, \"qkv_bias\": %s, \"weights\": ",
        h->dim, h->layers, h->heads, h->kv_heads, h->ffn, h->vocab, h->ctx, h->eps, h->rope_theta,
        h->tied ? "true" : "false", h->qkv_bias ? "true" : "false");
    /* the format of the frozen matrices: null for a model without a file (its tensors are f32) */
    if (m->source == SRC_NONE)
      fprintf(out, "null");
    else
      json_str(out, weights_format_name(m->weights));
    if (m->tok_file) { /* a borrowed tokenizer: only then, so that other networks print as before */
      fprintf(out, ", \"tokenizer\": ");
      json_str(out, m->tok_file);
    }
    fprintf(out, "}%s\n", i + 1 < net->n_models ? "," : "");
  }
  fprintf(out, "  ],\n  \"vertices\": [\n");
  for (int i = 0; i < net->n_vertices; i++) {
    const Vertex *v = &net->vertices[i];
    fprintf(out, "    {\"name\": \"%s\", \"model\": \"%s\", \"shared\": %s, \"trainable\": %s}%s\n", v->name,
            net->models[v->model].name, v->shared ? "true" : "false", v->trainable ? "true" : "false",
            i + 1 < net->n_vertices ? "," : "");
  }
  fprintf(out, "  ],\n");
}

static void json_edges(FILE *out, const Net *net) {
  fprintf(out, "  \"edges\": [\n");
  for (int i = 0; i < net->n_edges; i++) {
    const Edge *e = &net->edges[i];
    fprintf(out, "    {\"id\": %d, \"type\": ", e->id);
    if (e->type) json_str(out, e->type);
    else fprintf(out, "null");
    fprintf(out, ", \"key\": ");
    json_str(out, e->key);
    fprintf(out, ", \"label\": ");
    json_str(out, e->label);
    fprintf(out, ", \"sources\": [");
    for (int k = 0; k < e->n_src; k++)
      fprintf(out, "%s\"%s\"", k ? ", " : "", e->src_kind == END_TOKENS ? "tokens" : net->vertices[e->srcs[k]].name);
    fprintf(out, "], \"dst_kind\": \"%s\", \"dst\": \"%s\", \"modules\": [", e->dst_kind == END_OUTPUT ? "output" : "vertex",
            e->dst_kind == END_OUTPUT ? net->outputs[e->dst].name : net->vertices[e->dst].name);
    for (int j = 0; j < e->n_mods; j++) {
      if (j) fprintf(out, ", ");
      json_module(out, net, &e->mods[j]);
    }
    fprintf(out, "]}%s\n", i + 1 < net->n_edges ? "," : "");
  }
  fprintf(out, "  ],\n  \"outputs\": [\n");
  for (int i = 0; i < net->n_outputs; i++) {
    const Output *o = &net->outputs[i];
    fprintf(out, "    {\"name\": \"%s\", \"kind\": \"%s\", \"width\": %ld, \"edge\": %d, \"edges\": [%d", o->name,
            o->kind == OUT_LM ? "lm" : "class", o->width, o->edge, o->edge);
    for (int k = 0; k < o->n_more; k++) fprintf(out, ", %d", o->more[k]);
    fprintf(out, "]}%s\n", i + 1 < net->n_outputs ? "," : "");
  }
  fprintf(out, "  ],\n  \"losses\": [\n");
  for (int i = 0; i < net->n_losses; i++) {
    const Loss *l = &net->losses[i];
    fprintf(out, "    {\"name\": \"%s\", \"output\": \"%s\", \"target\": \"%s\", \"weight\": %.17g, \"smoothing\": %.17g}%s\n",
            l->name, net->outputs[l->output].name, l->target == TGT_LABELS ? "labels" : "next_tokens", l->weight,
            l->smoothing, i + 1 < net->n_losses ? "," : "");
  }
  fprintf(out, "  ],\n");
}

/* The JSON of `lmnc ir --json`; without full, only what rebuilds the network elsewhere: no ops, and each
 * parameter's name, shape and trainable flag. */
static void write_json(const Ir *ir, FILE *out, int full) {
  const Net *net = ir->net;
  fprintf(out, "{\n  \"format\": \"lmnet-ir\",\n  \"version\": 1,\n  \"network\": \"%s\",\n  \"aggregate\": \"%s\",\n",
          net->name, net->aggregate == AGG_MEAN ? "mean" : "sum");
  fprintf(out, "  \"prefix\": %ld,\n  \"embed_model\": %s%s%s,\n", net->prefix, net->embed_model >= 0 ? "\"" : "",
          net->embed_model >= 0 ? net->models[net->embed_model].name : "null", net->embed_model >= 0 ? "\"" : "");
  json_models(out, net);
  json_edges(out, net);
  fprintf(out, "  \"params\": [\n");
  for (int i = 0; i < ir->n_params; i++) {
    const Param *p = &ir->params[i];
    fprintf(out, "    {\"name\": \"%s\", \"shape\": [%ld", p->name, p->shape[0]);
    if (p->shape[1]) fprintf(out, ", %ld", p->shape[1]);
    fprintf(out, "], ");
    if (full)
      fprintf(out, "\"owner\": \"%s\", \"owner_index\": %d, \"module\": %d, \"group\": \"%s\", ",
              p->owner == OWN_MODEL ? "model" : p->owner == OWN_VERTEX ? "vertex" : "edge", p->owner_index, p->module,
              p->group);
    fprintf(out, "\"trainable\": %s}%s\n", p->trainable ? "true" : "false", i + 1 < ir->n_params ? "," : "");
  }
  if (!full) {
    fprintf(out, "  ]\n}\n");
    return;
  }
  fprintf(out, "  ],\n  \"ops\": [\n");
  for (int i = 0; i < ir->n_ops; i++) {
    const Op *op = &ir->ops[i];
    fprintf(out, "    {\"id\": %d, \"kind\": \"%s\", \"name\": ", i, op_kind_name(op->kind));
    json_str(out, op->name);
    fprintf(out, ", \"inputs\": [");
    for (int k = 0; k < op->n_inputs; k++) fprintf(out, "%s%d", k ? ", " : "", op->inputs[k]);
    fprintf(out, "], \"params\": [");
    for (int k = 0; k < op->n_params; k++) fprintf(out, "%s%d", k ? ", " : "", op->params[k]);
    fprintf(out, "], \"width\": %ld, \"edge\": %d, \"module\": %d, \"vertex\": %d, \"loss\": %d, \"backward\": %s, ",
            op->width, op->edge, op->module, op->vertex, op->loss, op->backward ? "true" : "false");
    json_cost(out, "fwd_flops", op->fwd);
    fprintf(out, ", ");
    json_cost(out, "bwd_flops", op->bwd);
    fprintf(out, ", ");
    json_cost(out, "saved_floats", op->saved);
    fprintf(out, "}%s\n", i + 1 < ir->n_ops ? "," : "");
  }
  fprintf(out, "  ]\n}\n");
}

void ir_print_json(const Ir *ir, FILE *out) { write_json(ir, out, 1); }

char *ir_json_compact(const Ir *ir) {
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  if (!f) return NULL;
  write_json(ir, f, 0);
  if (fclose(f) != 0) return free(text), NULL;
  return text;
}

/* ---- info ------------------------------------------------------------------------------------ */

static void human_flops(double f, char *buf, size_t n) {
  const char *units[] = {"", "K", "M", "G", "T", "P"};
  int u = 0;
  while (f >= 1000 && u < 5) f /= 1000, u++;
  snprintf(buf, n, "%.2f %sFLOP", f, units[u]);
}

static void info_groups(const Ir *ir, FILE *out) {
  const char *groups[32];
  int n = 0;
  for (int i = 0; i < ir->n_params; i++) {
    int k = 0;
    while (k < n && strcmp(groups[k], ir->params[i].group)) k++;
    if (k == n && n < 32) groups[n++] = ir->params[i].group;
  }
  fprintf(out, "by module kind:\n");
  for (int k = 0; k < n; k++) {
    long total = 0, train = 0;
    for (int i = 0; i < ir->n_params; i++)
      if (!strcmp(groups[k], ir->params[i].group)) {
        total += ir->params[i].count;
        if (ir->params[i].trainable) train += ir->params[i].count;
      }
    char a[32], b[32];
    fprintf(out, "  %-16s %15s   trainable %15s\n", groups[k], commas(total, a), commas(train, b));
  }
}

static long owner_total(const Ir *ir, OwnerKind kind, int index, int trainable_only) {
  long n = 0;
  for (int i = 0; i < ir->n_params; i++) {
    const Param *p = &ir->params[i];
    if (p->owner == kind && p->owner_index == index && (!trainable_only || p->trainable)) n += p->count;
  }
  return n;
}

static void info_owners(const Ir *ir, FILE *out) {
  const Net *net = ir->net;
  char a[32], desc[200];
  fprintf(out, "by owner:\n");
  for (int m = 0; m < net->n_models; m++) {
    long t = owner_total(ir, OWN_MODEL, m, 0);
    if (!t) continue;
    int users = 0;
    for (int v = 0; v < net->n_vertices; v++) users += net->vertices[v].model == m && net->vertices[v].shared;
    fprintf(out, "  model %-28s %15s  %-9s (shared by %d vertices%s)\n", net->models[m].name, commas(t, a),
            owner_total(ir, OWN_MODEL, m, 1) == t ? "trainable" : owner_total(ir, OWN_MODEL, m, 1) ? "partly" : "frozen",
            users, net->models[m].hp.tied ? ", tied head" : "");
  }
  for (int v = 0; v < net->n_vertices; v++) {
    const Vertex *x = &net->vertices[v];
    char how[48];
    sema_vertex_training(net, x, how, sizeof how);
    if (x->shared) {
      fprintf(out, "  vertex %-27s %15s  %-9s (calls %s)\n", x->name, "shared", how,
              net->models[x->model].name);
      continue;
    }
    fprintf(out, "  vertex %-27s %15s  %-9s (own copy of %s)\n", x->name,
            commas(owner_total(ir, OWN_VERTEX, v, 0), a), how, net->models[x->model].name);
  }
  for (int e = 0; e < net->n_edges; e++) {
    char name[64];
    snprintf(name, sizeof name, "e%d %s", e, net->edges[e].label);
    edge_describe(net, &net->edges[e], desc, sizeof desc);
    long t = owner_total(ir, OWN_EDGE, e, 0);
    fprintf(out, "  edge %-29s %15s  %-9s %s\n", name, commas(t, a),
            t == 0 ? "-" : owner_total(ir, OWN_EDGE, e, 1) ? "trainable" : "frozen", desc);
  }
}

/* Where the text's tokens come from: the embedding model's file, a borrowed tokenizer, raw bytes, or none. */
static void info_tokenizer(const Net *net, FILE *out) {
  const Model *m = net->embed_model >= 0 ? &net->models[net->embed_model] : NULL;
  char a[32], b[32];
  if (!m) return;
  if (m->source == SRC_GGUF)
    fprintf(out, "tokenizer: byte-level BPE of model %s's file %s\n", m->name, m->file);
  else if (m->source == SRC_SAFETENSORS)
    fprintf(out, "tokenizer: byte-level BPE of model %s's directory, %s/tokenizer.json\n", m->name, m->file);
  else if (m->tok_file)
    fprintf(out, "tokenizer: %s, borrowed by model %s (%s tokens for its vocabulary of %s)\n", m->tok_file,
            m->name, commas(m->tok_vocab, a), commas(m->hp.vocab, b));
  else if (m->hp.vocab == 256)
    fprintf(out, "tokenizer: raw bytes (model %s, vocabulary 256)\n", m->name);
  else
    fprintf(out,
            "tokenizer: none: model %s has a vocabulary of %s; give it one with tokenizer \"FILE\" to train "
            "on text\n",
            m->name, commas(m->hp.vocab, a));
}

void ir_print_info(const Ir *ir, FILE *out, long batch, long seq) {
  const Net *net = ir->net;
  char a[32], b[32], c[32];
  long total = ir_param_total(ir, 0), train = ir_param_total(ir, 1);
  int trainable_edges = 0;
  for (int e = 0; e < net->n_edges; e++) trainable_edges += owner_total(ir, OWN_EDGE, e, 1) > 0;
  fprintf(out, "network %s: %d %s, %d edges (%d with trainable modules), %d %s, %d %s, aggregate %s\n", net->name,
          net->n_vertices, net->n_vertices == 1 ? "vertex" : "vertices", net->n_edges, trainable_edges,
          net->n_outputs, net->n_outputs == 1 ? "output" : "outputs", net->n_losses,
          net->n_losses == 1 ? "loss" : "losses",
          net->aggregate == AGG_MEAN ? "mean" : "sum");
  fprintf(out, "parameters: %s total, %s trainable, %s frozen\n", commas(total, a), commas(train, b),
          commas(total - train, c));
  info_tokenizer(net, out);
  info_groups(ir, out);
  info_owners(ir, out);
  double fwd = 0, bwd = 0;
  for (int i = 0; i < ir->n_ops; i++) {
    fwd += cost_eval(ir->ops[i].fwd, batch, seq);
    bwd += cost_eval(ir->ops[i].bwd, batch, seq);
  }
  double tokens = (double)batch * (double)seq;
  char f1[32], f2[32];
  human_flops(fwd / tokens, f1, sizeof f1);
  human_flops((fwd + bwd) / tokens, f2, sizeof f2);
  fprintf(out, "FLOPs per token at batch %ld x seq %ld: forward %s, training step %s (forward + backward)\n", batch, seq,
          f1, f2);
}
