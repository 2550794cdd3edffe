/* dot.c: `lmnc dot`: the network as a Graphviz digraph. Vertices are boxes (frozen: grey, trainable:
 * orange), shared weights are a cylinder linked to every vertex that calls them, edges are labelled
 * with their modules, and the boundary (tokens, outputs, losses) is drawn as ellipses and notes. */
#include <string.h>

#include "ir.h"

static const char *const palette[] = {"#cfe2f3", "#d9ead3", "#fff2cc", "#ead1dc", "#d0e0e3", "#fce5cd"};

static void dot_escape(FILE *out, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', out);
    fputc(*s, out);
  }
}

static void vertex_nodes(const Net *net, FILE *out) {
  for (int m = 0; m < net->n_models; m++) {
    const Model *md = &net->models[m];
    int sharers = 0, trainable = 0;
    for (int v = 0; v < net->n_vertices; v++)
      if (net->vertices[v].model == m && net->vertices[v].shared) sharers++, trainable |= net->vertices[v].trainable;
    if (!sharers) continue;
    fprintf(out, "  w_%s [shape=cylinder, style=filled, fillcolor=\"%s\", label=\"%s weights\\n%s d=%ld x%ld layers\\n%s, shared by %d\"];\n",
            md->name, palette[m % 6], md->name, lmn_arch_name(md->hp.arch), md->hp.dim, md->hp.layers,
            trainable ? "trainable" : "frozen", sharers);
  }
  for (int v = 0; v < net->n_vertices; v++) {
    const Vertex *x = &net->vertices[v];
    const Model *md = &net->models[x->model];
    char how[48];
    fprintf(out,
            "  v_%s [shape=box, style=\"filled,rounded%s\", penwidth=%s, fillcolor=\"%s\", color=\"%s\", "
            "label=\"%s\\n%s (%s)\\n%s\"];\n",
            x->name, x->trainable ? "" : ",dashed", x->trainable ? "2" : "1", palette[x->model % 6],
            x->trainable ? "#e69138" : "#666666", x->name, md->name, x->shared ? "shared" : "own copy",
            sema_vertex_training(net, x, how, sizeof how));
    int sharers = 0;
    for (int u = 0; u < net->n_vertices; u++) sharers += net->vertices[u].model == x->model && net->vertices[u].shared;
    if (x->shared && sharers <= 4) /* beyond that the links drown the picture; the colour tells */
      fprintf(out, "  w_%s -> v_%s [style=dotted, color=\"#888888\", arrowhead=none, constraint=false];\n", md->name,
              x->name);
  }
  int max_layer = -1;
  for (int v = 0; v < net->n_vertices; v++)
    if (net->vertices[v].layer > max_layer) max_layer = net->vertices[v].layer;
  for (int l = 0; l <= max_layer; l++) {
    fprintf(out, "  { rank=same;");
    for (int v = 0; v < net->n_vertices; v++)
      if (net->vertices[v].layer == l) fprintf(out, " v_%s;", net->vertices[v].name);
    fprintf(out, " }\n");
  }
}

static void edge_lines(const Net *net, FILE *out) {
  char desc[200];
  for (int i = 0; i < net->n_edges; i++) {
    const Edge *e = &net->edges[i];
    edge_describe(net, e, desc, sizeof desc);
    char src[96];
    if (e->src_kind == END_TOKENS) snprintf(src, sizeof src, "tokens");
    else if (e->src_kind == END_VERTEX) snprintf(src, sizeof src, "v_%s", net->vertices[e->srcs[0]].name);
    else {
      snprintf(src, sizeof src, "sum_%d", i);
      fprintf(out, "  sum_%d [shape=circle, label=\"+\", width=0.3, fixedsize=true];\n", i);
      for (int k = 0; k < e->n_src; k++) fprintf(out, "  v_%s -> sum_%d;\n", net->vertices[e->srcs[k]].name, i);
    }
    const char *dst = e->dst_kind == END_OUTPUT ? net->outputs[e->dst].name : net->vertices[e->dst].name;
    int trainable = 0;
    for (int j = 0; j < e->n_mods; j++) {
      const Module *m = &e->mods[j];
      trainable |= m->kind == MOD_LINEAR || m->kind == MOD_MLP || m->kind == MOD_DECODER || m->kind == MOD_GPT2_EDGE ||
                   m->trainable;
    }
    fprintf(out, "  %s -> %s%s [label=\"", src, e->dst_kind == END_OUTPUT ? "o_" : "v_", dst);
    dot_escape(out, desc);
    fprintf(out, "\", fontsize=9, color=\"%s\"%s];\n", trainable ? "#e69138" : "#444444", trainable ? ", penwidth=1.6" : "");
  }
}

void ir_print_dot(const Ir *ir, FILE *out) {
  const Net *net = ir->net;
  char a[32];
  long total = ir_param_total(ir, 0), train = ir_param_total(ir, 1);
  snprintf(a, sizeof a, "%.1fM", (double)total / 1e6);
  fprintf(out, "digraph \"%s\" {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=11];\n"
               "  edge [fontname=\"Helvetica\"];\n  labelloc=t;\n  label=\"network %s: %s parameters, %.1fM trainable "
               "(aggregate %s)\\norange = trainable, dashed = frozen, cylinder = shared weights (same colour = same weights)\";\n",
          net->name, net->name, a, (double)train / 1e6, net->aggregate == AGG_MEAN ? "mean" : "sum");
  fprintf(out, "  tokens [shape=ellipse, style=filled, fillcolor=\"#eeeeee\", label=\"tokens%s\"];\n",
          net->prefix ? " (+ fixed prefix)" : "");
  vertex_nodes(net, out);
  for (int i = 0; i < net->n_outputs; i++)
    fprintf(out, "  o_%s [shape=ellipse, peripheries=2, style=filled, fillcolor=\"#eeeeee\", label=\"%s\\n%s %ld\"];\n",
            net->outputs[i].name, net->outputs[i].name, net->outputs[i].kind == OUT_LM ? "vocab" : "classes",
            net->outputs[i].width);
  edge_lines(net, out);
  for (int i = 0; i < net->n_losses; i++) {
    const Loss *l = &net->losses[i];
    fprintf(out, "  l_%s [shape=note, label=\"loss %s\\n%g x cross-entropy\\n%s%s\"];\n  o_%s -> l_%s [style=dashed];\n",
            l->name, l->name, l->weight, l->target == TGT_LABELS ? "labels" : "next tokens",
            l->smoothing > 0 ? ", smoothed" : "", net->outputs[l->output].name, l->name);
  }
  fprintf(out, "}\n");
}
