/* sema_limits.c: the limits of a network in one table (what each bounds, and a hint for a network past
 * it), their diagnostic, and the network's size, counted from the hyper-parameters as vertices and edges
 * are added: parameters (as ir.c lays them out) and decoder blocks plus modules. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include "sema_int.h"

const Limit sema_limits[] = {
    [LIM_LAYERS] = {"layers", 1024, "decoder blocks of one model (its `layers`)",
                    "each call of a model runs all its decoder blocks; released models have at most a few hundred"},
    [LIM_DIM] = {"dim", 65536, "width of a model, and a width written in linear()",
                 "one weight matrix of width 65536 is already 2^32 floats (16 GiB); use a smaller width"},
    [LIM_HEADS] = {"heads", 1024, "query heads of a model", "use fewer, wider heads"},
    [LIM_KV_HEADS] = {"kv_heads", 1024, "key/value heads of a model",
                      "use fewer key/value heads; grouped-query attention shares one among several query heads"},
    [LIM_FFN] = {"ffn", 262144, "MLP width of a model, and mlp(hidden N)",
                 "use a narrower MLP; released models use 2.5 to 4 times their width"},
    [LIM_VOCAB] = {"vocab", 4194304, "vocabulary of a model, and the classes of classify()",
                   "the logits alone take this many floats per token; use a smaller vocabulary or fewer classes"},
    [LIM_CTX] = {"ctx", 16777216, "positions of a model (`ctx`)",
                 "declare a shorter context; the sequence length of training and generation is chosen at run time"},
    [LIM_PREFIX] = {"prefix", 4096, "vectors of embed(M, prefix N)", "use a shorter prefix"},
    [LIM_LAYER_LIST] = {"layers list", 64, "layers of one `layers [...]` statement",
                        "split it into several `layers` statements joined by chains"},
    [LIM_LAYER_SIZE] = {"layer size", 256, "vertices in one layer of a `layers` statement",
                        "consecutive layers are connected completely; join wider layers with chains"},
    [LIM_VERTICES] = {"vertices", 262144, "vertices of the network",
                      "every vertex is a full call of its model; use fewer vertices"},
    [LIM_EDGES] = {"edges", 262144, "edges of the network",
                   "every edge has its own weights, and `layers` connects consecutive layers completely"},
    [LIM_MODULES] = {"modules", 64, "modules of one edge",
                     "an edge type used inside another brings all its modules; compose fewer"},
    [LIM_INPUTS] = {"inputs", 4096, "incoming edges of one vertex",
                    "aggregate the inputs in stages, through intermediate vertices"},
    [LIM_SUMMED] = {"summed sources", SEMA_MAX_SUMMED, "sources summed with + at the start of a chain",
                    "sum fewer vertices, or send them into one vertex through edges, which aggregates them"},
    [LIM_BLOCKS] = {"blocks", 1048576, "decoder blocks and modules of the network, every call counted",
                    "each vertex runs all the decoder blocks of its model; use fewer vertices or shallower models"},
    [LIM_PARAMS] = {"parameters", 68719476736LL, "parameters of the network (2^36 floats, 256 GiB), frozen ones included",
                    "2^36 floats are 256 GiB; use smaller models, or let vertices share one weight set (only `unshared` ones copy it)"},
};
_Static_assert(sizeof sema_limits / sizeof sema_limits[0] == LIM_COUNT, "one row per LimitId");
_Static_assert(SEMA_MAX_SUMMED == sizeof ((Edge *)0)->srcs / sizeof(int), "Edge.srcs holds the summed sources");

/* " (2^k)" for a large power of two, else "". */
static const char *power_of_two(long long v, char *buf, size_t size) {
  int k = 0;
  buf[0] = 0;
  while (k < 62 && (1LL << k) < v) k++;
  if ((1LL << k) == v && k >= 18) snprintf(buf, size, " (2^%d)", k);
  return buf;
}

int over_limit(Sema *s, LimitId id, long long value, Loc at, const char *fmt, ...) {
  const Limit *l = &sema_limits[id];
  if (value <= l->max) return 0;
  char msg[512], pow[16];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_error(s->diag, at, "%s; the limit is %lld%s", msg, l->max, power_of_two(l->max, pow, sizeof pow));
  diag_hint(s->diag, "%s", l->hint);
  return 1;
}

/* ---- parameters -------------------------------------------------------------------------------- */

static long long sat_add(long long a, long long b) { return a > LLONG_MAX - b ? LLONG_MAX : a + b; }

/* One decoder block shaped like model hp (the tensors of ir.c's block_params). */
static long long block_params(const lmn_hparams *hp) {
  long long d = hp->dim, f = hp->ffn, kvd = hp->kv_heads * (hp->dim / hp->heads);
  if (hp->arch == LMN_ARCH_GPT2) return 4 * d * d + 2 * d * f + 9 * d + f;
  return 2 * d + 2 * d * d + 2 * kvd * d + 3 * f * d + (hp->qkv_bias ? d + 2 * kvd : 0);
}

/* The weight set a vertex calls: all decoder blocks and the final norm. */
static long long vertex_params(const lmn_hparams *hp) {
  return hp->layers * block_params(hp) + (hp->arch == LMN_ARCH_GPT2 ? 2 : 1) * hp->dim;
}

static long long embedding_params(const lmn_hparams *hp) {
  return hp->vocab * hp->dim + (hp->arch == LMN_ARCH_GPT2 ? hp->ctx * hp->dim : 0);
}

/* Everything a model's file holds; the hyper-parameters are within their limits. */
long long model_params(const lmn_hparams *hp) {
  return vertex_params(hp) + embedding_params(hp) + (hp->tied ? 0 : hp->vocab * hp->dim);
}

enum { COUNTED_WEIGHTS = 1, COUNTED_EMBEDDING = 2, COUNTED_HEAD = 4, COUNTED_PREFIX = 8 };

/* Whether the weight set `what` of model m is counted yet; marks it counted. */
static int first_use(Sema *s, int m, int what) {
  while (m >= s->cap_counted) s->counted = grow(s->arena, s->counted, s->cap_counted, &s->cap_counted, 1);
  int first = !(s->counted[m] & what);
  s->counted[m] |= (unsigned char)what;
  return first;
}

static long long module_params(Sema *s, const Module *m) {
  const lmn_hparams *hp = m->model >= 0 ? &s->net->models[m->model].hp : NULL;
  switch (m->kind) {
    case MOD_IDENTITY: return 0;
    case MOD_LINEAR: return m->dout * m->din + (m->bias ? m->dout : 0);
    case MOD_MLP: return m->hidden * m->din + m->hidden + m->dout * m->hidden + m->dout;
    case MOD_DECODER: return block_params(hp);
    case MOD_GPT2_EDGE: return 5 * (long long)m->din * m->din + 7 * (long long)m->din;
    case MOD_CLASSIFY: return m->dout * m->din + m->dout;
    case MOD_EMBED:
      return (first_use(s, m->model, COUNTED_EMBEDDING) ? embedding_params(hp) : 0) +
             (m->prefix && first_use(s, m->model, COUNTED_PREFIX) ? m->prefix * hp->dim : 0);
    case MOD_HEAD:
      if (hp->tied) return first_use(s, m->model, COUNTED_EMBEDDING) ? embedding_params(hp) : 0;
      return first_use(s, m->model, COUNTED_HEAD) ? hp->vocab * hp->dim : 0;
  }
  return 0;
}

/* Adds to the network's parameters and blocks; reports the first item that goes past either limit. */
static void add_size(Sema *s, long long params, long long blocks, Loc at, const char *what, const char *name) {
  s->params = sat_add(s->params, params);
  s->blocks = sat_add(s->blocks, blocks);
  if (!s->params_full && s->params > sema_limits[LIM_PARAMS].max)
    s->params_full = over_limit(s, LIM_PARAMS, s->params, at, "too many parameters: %s '%s' brings the network to %lld",
                                what, name, s->params);
  if (!s->blocks_full && s->blocks > sema_limits[LIM_BLOCKS].max)
    s->blocks_full = over_limit(s, LIM_BLOCKS, s->blocks, at,
                                "too many decoder blocks and modules: %s '%s' brings the network to %lld", what,
                                name, s->blocks);
}

void count_vertex(Sema *s, const Vertex *v) {
  const lmn_hparams *hp = &s->net->models[v->model].hp;
  long long params = !v->shared || first_use(s, v->model, COUNTED_WEIGHTS) ? vertex_params(hp) : 0;
  add_size(s, params, hp->layers, v->at, "vertex", v->name);
}

void count_edge(Sema *s, const Edge *e) {
  long long params = 0, blocks = 0;
  for (int i = 0; i < e->n_mods; i++) {
    params = sat_add(params, module_params(s, &e->mods[i]));
    blocks += e->mods[i].kind != MOD_IDENTITY;
  }
  add_size(s, params, blocks, e->at, "edge", e->label);
}
