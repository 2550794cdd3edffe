/* sema_graph.c: semantic analysis, part 3: losses (`loss NAME = [W *] cross_entropy(OUT, TARGET)`, one
 * loss per output) and whole-graph checks: cycles, vertices without input or not reaching a loss, the
 * embedding and head vocabularies, consistent sharing and trainability, nothing trainable, a `weights`
 * format on a model with nothing frozen. Every check is linear in the vertices and edges (adjacency arrays,
 * searches without recursion). */
#include <stdio.h>
#include <string.h>

#include "sema_int.h"

static int loss_target(Sema *s, const Arg *a, Target *t) {
  const Value *v = &a->a;
  if (a->kind == ARG_VALUE && v->kind == VAL_IDENT && !strcmp(v->s, "labels")) {
    *t = TGT_LABELS;
    return 0;
  }
  if (a->kind == ARG_VALUE && v->kind == VAL_CALL && !strcmp(v->call->name, "next") && v->call->args.n == 1) {
    const Arg *in = v->call->args.items[0];
    if (in->kind == ARG_VALUE && in->a.kind == VAL_IDENT && !strcmp(in->a.s, "tokens")) {
      *t = TGT_NEXT_TOKENS;
      return 0;
    }
  }
  diag_error(s->diag, a->at, "the target of cross_entropy is next(tokens) or labels");
  diag_hint(s->diag,
            "token outputs (after head) take next(tokens); class outputs (after classify) take labels");
  return -1;
}

/* A chain that forgot to name its head's output was reported; an unknown output that resembles no
 * defined one is most likely that output. */
static int probably_unnamed(Sema *s, const char *name) {
  if (!s->unnamed_outputs) return 0;
  for (int i = 0; i < s->net->n_outputs; i++) {
    const char *cand = s->net->outputs[i].name;
    if (closest_name(name, &cand, 1)) return 0;
  }
  return 1;
}

/* The output the first argument of a loss names, or -1 (after an error, unless one was reported before). */
static int loss_output(Sema *s, const Arg *out) {
  const Net *net = s->net;
  if (out->kind != ARG_VALUE || out->a.kind != VAL_IDENT) {
    diag_error(s->diag, out->at, "the first argument of cross_entropy names an output");
    return -1;
  }
  Sym *sym = sym_find(s, out->a.s);
  if (!sym || sym->kind != SYM_OUTPUT) {
    if (sym) wrong_kind(s, sym, out->at, "an output");
    else if (!probably_unnamed(s, out->a.s))
      unknown_name(s, "output", out->a.s, out->at, KIND(SYM_OUTPUT), NULL, 0);
    if (sym && sym->kind == SYM_VERTEX && !failed_name_quiet(s, sym->name))
      diag_hint(s->diag, "a loss reads an output: add '%s -> head(%s) -> NAME' and use NAME here", out->a.s,
                sym->index >= 0 ? net->models[net->vertices[sym->index].model].name : "MODEL");
    return -1;
  }
  return sym->index; /* -1 when the chain that defines it had errors */
}

/* The optional arguments after the target (smoothing X); returns -1 after an error. */
static int loss_options(Sema *s, const Call *c, Loss *l) {
  for (int i = 2; i < c->args.n; i++) {
    const Arg *a = c->args.items[i];
    if (a->kind == ARG_KEYWORD && !strcmp(a->key, "smoothing") &&
        (a->a.kind == VAL_FLOAT || a->a.kind == VAL_INT)) {
      if (!(a->a.f >= 0 && a->a.f < 1)) {
        diag_error(s->diag, a->a.at, "label smoothing must be in [0, 1)");
        return -1;
      }
      l->smoothing = a->a.f;
    } else {
      diag_error(s->diag, a->at, "cross_entropy: unexpected argument");
      diag_hint(s->diag, "usage: cross_entropy(OUTPUT, next(tokens) | labels [, smoothing X])");
      return -1;
    }
  }
  return 0;
}

/* The output fits the loss: its kind matches the target and no other loss reads it. */
static int loss_fits(Sema *s, const Loss *l, const Arg *target) {
  const Net *net = s->net;
  const Output *o = &net->outputs[l->output];
  if (o->kind == OUT_LM && l->target != TGT_NEXT_TOKENS) {
    diag_error(s->diag, target->at, "output '%s' holds token logits; its target is next(tokens)", o->name);
    diag_note(s->diag, o->at, "'%s' is the output of a head() here", o->name);
    return 0;
  }
  if (o->kind == OUT_CLASS && l->target != TGT_LABELS) {
    diag_error(s->diag, target->at, "output '%s' holds class logits; its target is labels", o->name);
    diag_note(s->diag, o->at, "'%s' is the output of a classify() here", o->name);
    return 0;
  }
  if (o->loss < 0) return 1;
  const Loss *first = &net->losses[o->loss];
  const Edge *e = &net->edges[o->edge];
  char head[128];
  module_describe(net, &e->mods[e->n_mods - 1], head, sizeof head);
  const char *arrow = strstr(e->label, " -> ");
  int plain = arrow && e->n_mods == 1 && e->src_kind != END_TOKENS; /* "a -> head(m) -> logits" */
  diag_error(s->diag, l->output_at, "output '%s' is read by two losses, '%s' and '%s'", o->name, first->name,
             l->name);
  diag_note(s->diag, first->output_at, "loss '%s' reads '%s' first here", first->name, o->name);
  diag_hint(s->diag,
            "an output feeds one loss: give '%s' an output of its own ('%.*s -> %s -> %s_%s'), or fold both "
            "into one weighted loss",
            l->name, plain ? (int)(arrow - e->label) : 3, plain ? e->label : "...", head, o->name, l->name);
  return 0;
}

static void sema_loss(Sema *s, const Stmt *st) {
  Net *net = s->net;
  const Call *c = st->loss;
  if (strcmp(c->name, "cross_entropy") != 0) {
    const char *known[] = {"cross_entropy"};
    unknown_word(s, c->at, "loss", c->name, known, 1);
    diag_hint(s->diag, "losses are cross_entropy(OUTPUT, next(tokens)) and cross_entropy(OUTPUT, labels)");
    return;
  }
  Loss l = {
      .name = st->name.name, .at = st->name.at, .weight = st->has_weight ? st->weight : 1.0, .output = -1};
  if (st->has_weight && !(st->weight > 0 && st->weight <= 1e6)) {
    diag_error(s->diag, st->weight_at, "a loss weight must be positive (and at most 1e6)");
    return;
  }
  if (c->args.n < 2) {
    diag_error(s->diag, c->at,
               "cross_entropy takes an output and a target, e.g. cross_entropy(logits, next(tokens))");
    return;
  }
  const Arg *out = c->args.items[0];
  if ((l.output = loss_output(s, out)) < 0) return;
  l.output_at = out->at;
  if (loss_target(s, c->args.items[1], &l.target) != 0 || loss_options(s, c, &l) != 0) return;
  if (!loss_fits(s, &l, c->args.items[1])) return;
  if (!sym_define(s, st->name.name, SYM_LOSS, net->n_losses, st->name.at)) return;
  Output *o = &net->outputs[l.output];
  o->used = 1;
  o->loss = net->n_losses;
  GROW(s, net->losses, net->n_losses, s->cap_losses);
  net->losses[net->n_losses++] = l;
}

void sema_losses(Sema *s, const Program *prog) {
  for (int i = 0; i < prog->stmts.n && !diag_stopped(s->diag); i++) {
    const Stmt *st = prog->stmts.items[i];
    if (st->kind == ST_LOSS) sema_loss(s, st);
  }
}

/* ---- graph ----------------------------------------------------------------------------------- */

/* The vertex-to-vertex edges by one end: for vertex v, edge[start[v] .. start[v + 1]) are the indices of its
 * edges, in edge order (a vertex summed twice into one edge counts once). */
typedef struct Adj {
  int *start, *edge;
} Adj;

/* Whether source k of edge e is a vertex not summed into e before. */
static int distinct_src(const Edge *e, int k) {
  if (e->src_kind == END_TOKENS) return 0;
  for (int j = 0; j < k; j++)
    if (e->srcs[j] == e->srcs[k]) return 0;
  return 1;
}

/* Out-edges of each vertex (by_src) or in-edges (by destination) of the edges between vertices. */
static Adj adjacency(Sema *s, int by_src) {
  const Net *net = s->net;
  Adj a;
  int *at = arena_alloc(s->arena, sizeof(int) * (size_t)(net->n_vertices + 1));
  a.start = arena_alloc(s->arena, sizeof(int) * (size_t)(net->n_vertices + 1));
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < net->n_edges; i++) {
      const Edge *e = &net->edges[i];
      if (e->dst_kind != END_VERTEX || e->src_kind == END_TOKENS) continue;
      for (int k = 0; k < (by_src ? e->n_src : 1); k++) {
        if (by_src && !distinct_src(e, k)) continue;
        int v = by_src ? e->srcs[k] : e->dst;
        if (pass == 0) a.start[v + 1]++;
        else a.edge[at[v]++] = i;
      }
    }
    if (pass == 1) break;
    for (int v = 0; v < net->n_vertices; v++) a.start[v + 1] += a.start[v];
    memcpy(at, a.start, sizeof(int) * (size_t)net->n_vertices);
    a.edge = arena_alloc(s->arena, sizeof(int) * (size_t)(a.start[net->n_vertices] + 1));
  }
  return a;
}

/* Depth-first search from vertex root, without recursion; state 1 = on the stack, 2 = done. On a cycle,
 * returns the depth of the path in stack[] (its last vertex repeats an earlier one) and the closing edge. */
static int find_cycle(const Net *net, const Adj *out, int root, char *state, int *stack, int *pos,
                      int *cycle_edge) {
  int depth = 0;
  stack[0] = root, pos[0] = out->start[root], state[root] = 1;
  while (depth >= 0) {
    int v = stack[depth];
    if (pos[depth] == out->start[v + 1]) {
      state[v] = 2;
      depth--;
      continue;
    }
    int e = out->edge[pos[depth]++], w = net->edges[e].dst;
    if (state[w] == 1) {
      *cycle_edge = e;
      stack[depth + 1] = w;
      return depth + 2;
    }
    if (state[w] == 0) {
      depth++;
      stack[depth] = w, pos[depth] = out->start[w], state[w] = 1;
    }
  }
  return 0;
}

static void report_cycle(Sema *s, const int *stack, int n, int edge) {
  const Net *net = s->net;
  int start = 0;
  while (stack[start] != stack[n - 1]) start++;
  char msg[512];
  size_t len = 0;
  for (int i = start; i < n && len < sizeof msg; i++)
    len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s", i > start ? " -> " : "",
                            net->vertices[stack[i]].name);
  if (len >= sizeof msg) memcpy(msg + sizeof msg - 5, " ...", 5);
  diag_error(s->diag, net->edges[edge].at, "cycle: %s", msg);
  diag_hint(s->diag, "a network must be a directed acyclic graph: remove or reverse one of these edges");
}

static int check_cycles(Sema *s) {
  const Net *net = s->net;
  size_t n = (size_t)net->n_vertices + 2;
  Adj out = adjacency(s, 1);
  char *state = arena_alloc(s->arena, n);
  int *stack = arena_alloc(s->arena, sizeof(int) * n), *pos = arena_alloc(s->arena, sizeof(int) * n);
  for (int v = 0; v < net->n_vertices; v++) {
    int edge = -1, depth = state[v] ? 0 : find_cycle(net, &out, v, state, stack, pos, &edge);
    if (depth) {
      report_cycle(s, stack, depth, edge);
      return 1;
    }
  }
  return 0;
}

/* Marks the source vertices of edge e not marked yet and queues them; returns the new end of the queue. */
static int mark_sources(const Edge *e, char *reach, int *queue, int tail) {
  if (e->src_kind == END_TOKENS) return tail;
  for (int k = 0; k < e->n_src; k++)
    if (!reach[e->srcs[k]]) reach[e->srcs[k]] = 1, queue[tail++] = e->srcs[k];
  return tail;
}

/* Marks the vertices from which an output read by a loss can be reached: a search backwards from the
 * sources of the outputs' edges, each vertex visited once. */
static void mark_reaching(Sema *s, char *reach) {
  const Net *net = s->net;
  Adj in = adjacency(s, 0);
  int *queue = arena_alloc(s->arena, sizeof(int) * ((size_t)net->n_vertices + 1)), tail = 0;
  for (int i = 0; i < net->n_edges; i++) {
    const Edge *e = &net->edges[i];
    if (e->dst_kind == END_OUTPUT && net->outputs[e->dst].used) tail = mark_sources(e, reach, queue, tail);
  }
  for (int head = 0; head < tail; head++) {
    int v = queue[head];
    for (int j = in.start[v]; j < in.start[v + 1]; j++) tail = mark_sources(&net->edges[in.edge[j]], reach, queue, tail);
  }
}

static void check_reach(Sema *s) {
  const Net *net = s->net;
  char *reach = arena_alloc(s->arena, (size_t)net->n_vertices + 1);
  mark_reaching(s, reach);
  for (int v = 0; v < net->n_vertices && !diag_stopped(s->diag); v++) {
    const Vertex *x = &net->vertices[v];
    if (x->n_in == 0) {
      diag_error(s->diag, x->at, "vertex '%s' has no input", x->name);
      diag_hint(s->diag, "connect it, e.g. 'tokens -> embed(%s) -> %s' or 'SOURCE -> EDGE -> %s'",
                net->models[x->model].name, x->name, x->name);
    } else if (!reach[v]) {
      diag_error(s->diag, x->at, "vertex '%s' does not reach the output", x->name);
      diag_hint(s->diag, "connect it to a vertex that does, or read it through a head with a loss");
    }
  }
}

/* Embeddings and heads of one model agree; the vocabulary of the tokens matches every LM head. */
static void check_boundary(Sema *s) {
  Net *net = s->net;
  const Module *embed = NULL;
  for (int i = 0; i < net->n_edges; i++) {
    const Edge *e = &net->edges[i];
    for (int j = 0; j < e->n_mods; j++) {
      const Module *m = &e->mods[j];
      if (m->kind != MOD_EMBED) continue;
      if (!embed) {
        embed = m;
        net->embed_model = m->model;
        net->prefix = m->prefix;
      } else if (net->models[m->model].hp.vocab != net->models[embed->model].hp.vocab ||
                 m->prefix != embed->prefix) {
        diag_error(s->diag, m->at, "all embeddings of the tokens must share one vocabulary and prefix");
        diag_note(s->diag, embed->at, "the first embedding is here");
      }
    }
  }
  if (!embed) {
    diag_error(s->diag, net->name_at, "nothing reads the tokens");
    diag_hint(s->diag, "add a chain like 'tokens -> embed(MODEL) -> VERTEX'");
    return;
  }
  long vocab = net->models[embed->model].hp.vocab;
  for (int i = 0; i < net->n_edges; i++) {
    const Edge *e = &net->edges[i];
    const Module *m = e->n_mods ? &e->mods[e->n_mods - 1] : NULL;
    if (!m || m->kind != MOD_HEAD || net->models[m->model].hp.vocab == vocab) continue;
    diag_error(
        s->diag, m->at, "head(%s) predicts a vocabulary of %ld but the tokens come from embed(%s) with %ld",
        net->models[m->model].name, net->models[m->model].hp.vocab, net->models[embed->model].name, vocab);
    diag_note(s->diag, embed->at, "the tokens are embedded here");
  }
}

/* What the uses of one model's own weight set say about being trainable: the first shared vertex and the
 * first vertex disagreeing with it, the first embedding (or tied head) and the first disagreeing with it. */
typedef struct Sharing {
  const Vertex *first, *conflict;
  const Module *tie, *tie_conflict;
} Sharing;

/* One pass over the vertices and one over the edges, whatever the number of models. */
static void collect_sharing(Net *net, Sharing *sh) {
  for (int v = 0; v < net->n_vertices; v++) {
    const Vertex *x = &net->vertices[v];
    Sharing *h = &sh[x->model];
    if (!x->shared) continue;
    net->models[x->model].used_shared = 1;
    if (!h->first) h->first = x;
    else if ((h->first->trainable != x->trainable || h->first->frozen_layers != x->frozen_layers) &&
             !h->conflict)
      h->conflict = x;
  }
  for (int i = 0; i < net->n_edges; i++)
    for (int j = 0; j < net->edges[i].n_mods; j++) {
      const Module *m = &net->edges[i].mods[j];
      if (m->model < 0 || (m->kind != MOD_EMBED && m->kind != MOD_HEAD)) continue;
      Sharing *h = &sh[m->model];
      net->models[m->model].used_shared = 1;
      if (m->kind == MOD_HEAD && !net->models[m->model].hp.tied) continue;
      if (!h->tie) h->tie = m;
      else if (h->tie->trainable != m->trainable && !h->tie_conflict) h->tie_conflict = m;
    }
}

const char *sema_vertex_training(const Net *net, const Vertex *x, char *buf, size_t cap) {
  long n = net->models[x->model].hp.layers - x->frozen_layers;
  if (!x->trainable || !x->frozen_layers)
    snprintf(buf, cap, "%s", x->trainable ? "trainable" : "frozen");
  else
    snprintf(buf, cap, "trainable, last %ld layer%s", n, n == 1 ? "" : "s");
  return buf;
}

/* The trainable flag of a model's own weight set: shared vertices, embeddings and tied heads agree. Reports
 * the first model whose uses disagree. */
static void check_sharing(Sema *s) {
  Net *net = s->net;
  Sharing *sh = arena_alloc(s->arena, sizeof *sh * ((size_t)net->n_models + 1));
  collect_sharing(net, sh);
  for (int mi = 0; mi < net->n_models; mi++) {
    const Model *model = &net->models[mi];
    const Sharing *h = &sh[mi];
    if (h->conflict) {
      const Vertex *x = h->conflict;
      char a[64], b[64];
      diag_error(s->diag, x->at, "vertex '%s' (%s) shares the weights of '%s' with vertex '%s' (%s)", x->name,
                 sema_vertex_training(net, x, a, sizeof a), model->name, h->first->name,
                 sema_vertex_training(net, h->first, b, sizeof b));
      diag_note(s->diag, h->first->at, "a vertex sharing them is declared here");
      diag_hint(s->diag, "make them agree, or declare one 'unshared' to give it its own copy");
      return;
    }
    if (h->tie_conflict) {
      const Module *m = h->tie_conflict, *tie = h->tie;
      diag_error(s->diag, m->at, "%s(%s) is %s but %s(%s), whose weights it %s, is %s", mod_kind_name(m->kind),
                 model->name, m->trainable ? "trainable" : "frozen", mod_kind_name(tie->kind), model->name,
                 m->kind == MOD_HEAD ? "is tied to" : "shares", tie->trainable ? "trainable" : "frozen");
      diag_note(s->diag, tie->at, "%s(%s) is here", mod_kind_name(tie->kind), model->name);
      diag_hint(s->diag, "they are one matrix: mark both 'frozen' or both 'trainable'");
      return;
    }
  }
}

static int anything_trainable(const Net *net) {
  for (int v = 0; v < net->n_vertices; v++)
    if (net->vertices[v].trainable) return 1;
  for (int i = 0; i < net->n_edges; i++)
    for (int j = 0; j < net->edges[i].n_mods; j++) {
      const Module *m = &net->edges[i].mods[j];
      if (m->kind == MOD_IDENTITY) continue;
      if (m->trainable || (m->kind != MOD_EMBED && m->kind != MOD_HEAD)) return 1;
    }
  return 0;
}

/* Whether model m's file gives the network a frozen tensor: a frozen vertex of m (or frozen layers of a `last
 * N` one), a frozen embed(m) or head(m). */
static int has_frozen_file_tensor(const Net *net, int m) {
  for (int v = 0; v < net->n_vertices; v++)
    if (net->vertices[v].model == m && (!net->vertices[v].trainable || net->vertices[v].frozen_layers))
      return 1;
  for (int i = 0; i < net->n_edges; i++)
    for (int j = 0; j < net->edges[i].n_mods; j++) {
      const Module *mod = &net->edges[i].mods[j];
      if ((mod->kind == MOD_EMBED || mod->kind == MOD_HEAD) && mod->model == m && !mod->trainable) return 1;
    }
  return 0;
}

/* `weights FORMAT` changes nothing on a used model with no frozen tensor: trainable tensors are f32. */
static void check_weights_format(Sema *s) {
  const Net *net = s->net;
  for (int m = 0; m < net->n_models; m++) {
    const Model *md = &net->models[m];
    const Sym *sym = sym_find(s, md->name);
    if (md->weights == WEIGHTS_FILE || !sym || !sym->used || has_frozen_file_tensor(net, m)) continue;
    diag_warning(s->diag, md->weights_at,
                 "'weights %s' changes nothing: every tensor of model '%s' is trainable",
                 weights_format_name(md->weights), md->name);
    diag_hint(s->diag,
              "trainable tensors are always kept in f32; the option applies to frozen vertices and a "
              "frozen embed() or head()");
  }
}

/* A tokenizer borrowed by a model that does not embed the tokens reads nothing. */
static void check_borrowed_tokenizers(Sema *s) {
  const Net *net = s->net;
  for (int m = 0; m < net->n_models; m++) {
    const Model *md = &net->models[m];
    const Sym *sym = sym_find(s, md->name);
    if (!md->tok_file || m == net->embed_model || !sym || !sym->used) continue;
    diag_warning(s->diag, md->tok_at,
                 "the tokenizer of model '%s' is never used: the tokens are embedded by '%s'", md->name,
                 net->embed_model >= 0 ? net->models[net->embed_model].name : "?");
    diag_hint(s->diag,
              "the model of embed(...) reads the text; give the tokenizer to it, or remove this one");
  }
}

void sema_graph(Sema *s) {
  Net *net = s->net;
  check_boundary(s);
  check_sharing(s);
  if (net->n_losses == 0) {
    diag_error(s->diag, net->name_at, "network '%s' has no loss", net->name);
    diag_hint(s->diag, "add e.g. 'loss lm = cross_entropy(%s, next(tokens))'",
              net->n_outputs ? net->outputs[0].name : "logits");
    return; /* what reaches a loss, and which outputs are read, means nothing without one */
  }
  if (!check_cycles(s)) check_reach(s);
  for (int i = 0; i < net->n_outputs; i++)
    if (!net->outputs[i].used) {
      diag_warning(s->diag, net->outputs[i].at, "output '%s' is not read by any loss", net->outputs[i].name);
      diag_hint(s->diag, "add e.g. 'loss %s_loss = cross_entropy(%s, %s)', or remove the chain",
                net->outputs[i].name, net->outputs[i].name,
                net->outputs[i].kind == OUT_LM ? "next(tokens)" : "labels");
    }
  for (int i = 0; i < s->n_syms; i++) {
    const Sym *sym = &s->syms[i];
    if (!sym->used && (sym->kind == SYM_MODEL || sym->kind == SYM_EDGE_TYPE))
      diag_warning(s->diag, sym->at, "%s '%s' is never used", sym_kind_name(sym->kind), sym->name);
  }
  check_weights_format(s);
  check_borrowed_tokenizers(s);
  if (!anything_trainable(net)) {
    diag_warning(s->diag, net->name_at, "nothing in network '%s' is trainable", net->name);
    diag_hint(s->diag,
              "training would change nothing: add an edge with weights (linear, mlp, decoder_layer) or mark "
              "something 'trainable'");
  }
}
