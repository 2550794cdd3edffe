/* sema_graph.c: semantic analysis, part 3: losses (`loss NAME = [W *] cross_entropy(OUT, TARGET)`)
 * and whole-graph checks: cycles, vertices without input or not reaching a loss, the embedding and
 * head vocabularies, consistent sharing and trainability, nothing trainable. */
#include <stdio.h>
#include <stdlib.h>
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
  for (int i = 0; i < s->n_syms; i++) {
    const char *cand = s->syms[i].name;
    if (s->syms[i].kind == SYM_OUTPUT && closest_name(name, &cand, 1)) return 0;
  }
  return 1;
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
  if (out->kind != ARG_VALUE || out->a.kind != VAL_IDENT) {
    diag_error(s->diag, out->at, "the first argument of cross_entropy names an output");
    return;
  }
  Sym *sym = sym_find(s, out->a.s);
  if (!sym || sym->kind != SYM_OUTPUT) {
    if (sym) wrong_kind(s, sym, out->at, "an output");
    else if (!probably_unnamed(s, out->a.s))
      unknown_name(s, "output", out->a.s, out->at, KIND(SYM_OUTPUT), NULL, 0);
    if (sym && sym->kind == SYM_VERTEX && !failed_name_quiet(s, sym->name))
      diag_hint(s->diag, "a loss reads an output: add '%s -> head(%s) -> NAME' and use NAME here", out->a.s,
                sym->index >= 0 ? net->models[net->vertices[sym->index].model].name : "MODEL");
    return;
  }
  if (sym->index < 0) return; /* the chain that defines it had errors */
  l.output = sym->index;
  if (loss_target(s, c->args.items[1], &l.target) != 0) return;
  for (int i = 2; i < c->args.n; i++) {
    const Arg *a = c->args.items[i];
    if (a->kind == ARG_KEYWORD && !strcmp(a->key, "smoothing") &&
        (a->a.kind == VAL_FLOAT || a->a.kind == VAL_INT)) {
      if (!(a->a.f >= 0 && a->a.f < 1)) {
        diag_error(s->diag, a->a.at, "label smoothing must be in [0, 1)");
        return;
      }
      l.smoothing = a->a.f;
    } else {
      diag_error(s->diag, a->at, "cross_entropy: unexpected argument");
      diag_hint(s->diag, "usage: cross_entropy(OUTPUT, next(tokens) | labels [, smoothing X])");
      return;
    }
  }
  Output *o = &net->outputs[l.output];
  const Arg *target = c->args.items[1];
  if (o->kind == OUT_LM && l.target != TGT_NEXT_TOKENS) {
    diag_error(s->diag, target->at, "output '%s' holds token logits; its target is next(tokens)", o->name);
    diag_note(s->diag, o->at, "'%s' is the output of a head() here", o->name);
    return;
  }
  if (o->kind == OUT_CLASS && l.target != TGT_LABELS) {
    diag_error(s->diag, target->at, "output '%s' holds class logits; its target is labels", o->name);
    diag_note(s->diag, o->at, "'%s' is the output of a classify() here", o->name);
    return;
  }
  if (!sym_define(s, st->name.name, SYM_LOSS, net->n_losses, st->name.at)) return;
  o->used = 1;
  GROW(s, net->losses, net->n_losses, s->cap_losses);
  net->losses[net->n_losses++] = l;
}

void sema_losses(Sema *s, const Program *prog) {
  for (int i = 0; i < prog->stmts.n; i++) {
    const Stmt *st = prog->stmts.items[i];
    if (st->kind == ST_LOSS) sema_loss(s, st);
  }
}

/* ---- graph ----------------------------------------------------------------------------------- */

/* Depth-first search for a cycle through vertex v; state 1 = on the stack, 2 = done. */
static int find_cycle(const Net *net, int v, char *state, int *stack, int depth, int *cycle_edge) {
  state[v] = 1;
  stack[depth] = v;
  for (int i = 0; i < net->n_edges; i++) {
    const Edge *e = &net->edges[i];
    if (e->dst_kind != END_VERTEX) continue;
    int from = 0;
    for (int k = 0; k < e->n_src; k++) from |= e->src_kind != END_TOKENS && e->srcs[k] == v;
    if (!from) continue;
    if (state[e->dst] == 1) {
      *cycle_edge = i;
      stack[depth + 1] = e->dst;
      return depth + 2;
    }
    if (state[e->dst] == 0) {
      int n = find_cycle(net, e->dst, state, stack, depth + 1, cycle_edge);
      if (n) return n;
    }
  }
  state[v] = 2;
  return 0;
}

static int check_cycles(Sema *s) {
  const Net *net = s->net;
  char *state = calloc((size_t)net->n_vertices + 1, 1);
  int *stack = calloc((size_t)net->n_vertices + 2, sizeof(int));
  int found = 0;
  for (int v = 0; v < net->n_vertices && !found; v++) {
    int edge = -1, n = state[v] ? 0 : find_cycle(net, v, state, stack, 0, &edge);
    if (!n) continue;
    int start = 0;
    while (stack[start] != stack[n - 1]) start++;
    char msg[512];
    size_t len = 0;
    for (int i = start; i < n && len < sizeof msg; i++)
      len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s", i > start ? " -> " : "",
                              net->vertices[stack[i]].name);
    diag_error(s->diag, net->edges[edge].at, "cycle: %s", msg);
    diag_hint(s->diag, "a network must be a directed acyclic graph: remove or reverse one of these edges");
    found = 1;
  }
  free(state);
  free(stack);
  return found;
}

/* Marks the vertices from which an output read by a loss can be reached. */
static void mark_reaching(const Net *net, char *reach) {
  for (int changed = 1; changed;) {
    changed = 0;
    for (int i = 0; i < net->n_edges; i++) {
      const Edge *e = &net->edges[i];
      int live = e->dst_kind == END_OUTPUT ? net->outputs[e->dst].used : reach[e->dst];
      if (!live || e->src_kind == END_TOKENS) continue;
      for (int k = 0; k < e->n_src; k++)
        if (!reach[e->srcs[k]]) reach[e->srcs[k]] = 1, changed = 1;
    }
  }
}

static void check_reach(Sema *s) {
  const Net *net = s->net;
  char *reach = calloc((size_t)net->n_vertices + 1, 1);
  mark_reaching(net, reach);
  for (int v = 0; v < net->n_vertices; v++) {
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
  free(reach);
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

/* The trainable flag of a model's own weight set: shared vertices, embeddings and tied heads agree. */
static void check_sharing(Sema *s) {
  Net *net = s->net;
  for (int mi = 0; mi < net->n_models; mi++) {
    Model *model = &net->models[mi];
    Loc first_at = {0, 0, 1};
    int first = -1;
    for (int v = 0; v < net->n_vertices; v++) {
      const Vertex *x = &net->vertices[v];
      if (x->model != mi || !x->shared) continue;
      model->used_shared = 1;
      if (first < 0) first = x->trainable, first_at = x->at;
      else if (first != x->trainable) {
        diag_error(s->diag, x->at, "vertex '%s' is %s but shares the weights of '%s' with %s vertices",
                   x->name, x->trainable ? "trainable" : "frozen", model->name,
                   first ? "trainable" : "frozen");
        diag_note(s->diag, first_at, "a vertex sharing them is declared here");
        diag_hint(s->diag, "make them agree, or declare one 'unshared' to give it its own copy");
        return;
      }
    }
    const Module *tie = NULL;
    for (int i = 0; i < net->n_edges; i++)
      for (int j = 0; j < net->edges[i].n_mods; j++) {
        const Module *m = &net->edges[i].mods[j];
        if (m->model != mi || (m->kind != MOD_EMBED && m->kind != MOD_HEAD)) continue;
        model->used_shared = 1;
        if (m->kind == MOD_HEAD && !model->hp.tied) continue;
        if (!tie) tie = m;
        else if (tie->trainable != m->trainable) {
          diag_error(s->diag, m->at, "%s(%s) is %s but %s(%s), whose weights it %s, is %s",
                     mod_kind_name(m->kind), model->name, m->trainable ? "trainable" : "frozen",
                     mod_kind_name(tie->kind), model->name, m->kind == MOD_HEAD ? "is tied to" : "shares",
                     tie->trainable ? "trainable" : "frozen");
          diag_note(s->diag, tie->at, "%s(%s) is here", mod_kind_name(tie->kind), model->name);
          diag_hint(s->diag, "they are one matrix: mark both 'frozen' or both 'trainable'");
          return;
        }
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
  if (!anything_trainable(net)) {
    diag_warning(s->diag, net->name_at, "nothing in network '%s' is trainable", net->name);
    diag_hint(s->diag,
              "training would change nothing: add an edge with weights (linear, mlp, decoder_layer) or mark "
              "something 'trainable'");
  }
}
