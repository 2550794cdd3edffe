/* sema.h: the resolved network that semantic analysis builds from the AST: models with their
 * hyper-parameters, vertices, edges (each a chain of modules from sources to a destination),
 * outputs and losses, with every name resolved and every width checked. IR lowering consumes it. */
#ifndef LMNC_SEMA_H
#define LMNC_SEMA_H

#include "ast.h"
#include "diag.h"
#include "hparams.h"

/* The limits of a network (one table, sema_limits[], in sema_limits.c; docs/language.md lists them). Each
 * is enforced by `lmnc check` with a located diagnostic and a hint; past them the compiler and the
 * generated code could not hold the network, so nothing beyond them reaches the back end. */
typedef enum {
  LIM_LAYERS,     /* decoder blocks of one model */
  LIM_DIM,        /* width of a model, and a width written in linear() */
  LIM_HEADS,      /* query heads of a model */
  LIM_KV_HEADS,   /* key/value heads of a model */
  LIM_FFN,        /* MLP width of a model, and mlp(hidden N) */
  LIM_VOCAB,      /* vocabulary of a model, and the classes of classify() */
  LIM_CTX,        /* positions of a model */
  LIM_PREFIX,     /* fixed random prefix of embed(M, prefix N) */
  LIM_LAYER_LIST, /* layers of one `layers [...]` statement */
  LIM_LAYER_SIZE, /* vertices in one layer of a `layers` statement */
  LIM_VERTICES,   /* vertices of the network */
  LIM_EDGES,      /* edges of the network */
  LIM_MODULES,    /* modules of one edge */
  LIM_INPUTS,     /* incoming edges of one vertex */
  LIM_SUMMED,     /* sources summed with + at the start of a chain */
  LIM_BLOCKS,     /* decoder blocks (of vertices and edges) and other modules of the network */
  LIM_PARAMS,     /* parameters (floats) of the network, frozen ones included */
  LIM_COUNT
} LimitId;

typedef struct Limit {
  const char *name;   /* short name, as docs/language.md lists it */
  long long max;
  const char *bounds; /* what it bounds */
  const char *hint;   /* what to do past it */
} Limit;

extern const Limit sema_limits[]; /* LIM_COUNT rows, indexed by LimitId */

#define SEMA_MAX_SUMMED 8 /* sema_limits[LIM_SUMMED].max: the size of Edge.srcs */

typedef enum { SRC_NONE, SRC_GGUF, SRC_SAFETENSORS } ModelSource;

/* `weights FORMAT`: how a model's frozen matrices are kept in memory. WEIGHTS_FILE keeps the format of the
 * file; the others are ggml type ids (lmn_ggml_type in runtime/dequant.h), the values of
 * lmn_model_info.weights in generated code. */
#define WEIGHTS_FILE (-1)

typedef struct Model {
  const char *name;
  Loc at;
  ModelSource source;
  const char *path;  /* file path as written (resolved relative to the .lmn file in `file`) */
  const char *file;  /* path used to open the file */
  int declared;      /* hyper-parameters declared inline (a file is then verified at run time) */
  lmn_hparams hp;
  int used_shared;   /* some vertex, embed or head uses the model's own weight set */
  int weights;       /* WEIGHTS_FILE (the default, and always for a model without a file) or a ggml type */
  Loc weights_at;    /* the `weights FORMAT` option (line 0 when absent) */
  /* `tokenizer "PATH"` (a from-scratch model borrows the tokenizer of a GGUF file or a Hugging Face
   * directory) */
  const char *tok_path; /* as written, or NULL */
  const char *tok_file; /* resolved relative to the .lmn file */
  int tok_format;       /* 1 GGUF file, 2 Hugging Face directory (its tokenizer.json) */
  long tok_vocab;       /* tokens of the borrowed tokenizer */
  Loc tok_at;           /* the option (line 0 when absent) */
} Model;

typedef struct Vertex {
  const char *name;
  Loc at;
  int model;      /* index into Net.models */
  int shared;     /* calls the model's weight set (else its own copy) */
  int trainable;
  int frozen_layers; /* trainable `last N`: its first layers - N layers stay frozen (else 0) */
  int layer;      /* layer index for `layers` sugar, else -1 */
  int n_in;       /* incoming edges */
} Vertex;

typedef enum {
  MOD_IDENTITY,
  MOD_LINEAR,
  MOD_MLP,
  MOD_DECODER,    /* decoder_layer(model): a block shaped like the model's (llama/qwen2 or gpt2) */
  MOD_GPT2_EDGE,  /* gpt2_block(model): x + MHA(x) (no pre-norm), then x + gelu(W LN(x)) */
  MOD_EMBED,      /* embed(model): token (+ position) embedding, optional fixed random prefix */
  MOD_HEAD,       /* head(model): language-model head (tied or not) */
  MOD_CLASSIFY,   /* classify(N): linear d -> N on the last position */
} ModKind;

typedef enum { INIT_NORMAL, INIT_ZERO, INIT_IDENTITY } ModInit; /* linear's `init` (order as written) */

typedef struct Module {
  ModKind kind;
  Loc at;
  ModInit init;   /* linear: how its weight starts (INIT_NORMAL: N(0, 0.02), the paper's) */
  Loc init_at;    /* the `init` argument (line 0 when absent) */
  long din, dout;
  int bias;       /* linear */
  int model;      /* decoder, gpt2 edge, embed, head: index into Net.models, else -1 */
  int unscaled;   /* gpt2 edge: attention without 1/sqrt(hd) */
  long hidden;    /* mlp hidden width */
  long prefix;    /* embed: fixed random prefix vectors */
  int trainable;  /* embed, head, classify; edge modules are always trainable */
} Module;

typedef enum { END_TOKENS, END_VERTEX, END_SUM, END_OUTPUT } EndKind;

typedef struct Edge {
  int id;
  Loc at;
  const char *type;  /* edge type name when declared with `edge NAME = ...`, else NULL */
  EndKind src_kind;  /* END_TOKENS, END_VERTEX (one source) or END_SUM (several, summed) */
  int srcs[SEMA_MAX_SUMMED];
  int n_src;
  EndKind dst_kind;  /* END_VERTEX or END_OUTPUT */
  int dst;
  Module *mods;
  int n_mods;
  char label[160];   /* "a -> b" */
  const char *key;   /* stable name of its tensors: "block.a->b", "edge.tokens->a", "block.a->b#2" (sema_edge_keys) */
} Edge;

typedef enum { OUT_LM, OUT_CLASS } OutKind;

typedef struct Output {
  const char *name;
  Loc at;
  OutKind kind;
  long width;   /* vocabulary or classes */
  int edge;     /* the (first) edge that produces it */
  int *more;    /* the other chains that end in it (n_more): their pre-head vectors are summed, then one head */
  int n_more;
  int used;     /* read by a loss */
  int loss;     /* the loss that reads it (one at most), or -1 */
} Output;

typedef enum { TGT_NEXT_TOKENS, TGT_LABELS } Target;

typedef struct Loss {
  const char *name;
  Loc at;
  double weight;
  int output;
  Loc output_at; /* where the loss names its output */
  Target target;
  double smoothing;
} Loss;

typedef enum { AGG_MEAN, AGG_SUM } Aggregate;

typedef struct Net {
  Arena *arena;
  const char *name;
  Loc name_at;
  Model *models;
  int n_models;
  Vertex *vertices;
  int n_vertices;
  Edge *edges;
  int n_edges;
  Output *outputs;
  int n_outputs;
  Loss *losses;
  int n_losses;
  Aggregate aggregate;
  int embed_model;   /* model whose embedding (and tokenizer) reads the tokens; -1 if none */
  long prefix;       /* fixed random prefix length (0 = none) */
  long long params;  /* parameters (floats) of the network as sema counts them, frozen ones included */
} Net;

/* Checks the program and builds net. `dir` is the .lmn file's directory (model paths are relative to
 * the current directory first, then to it). Returns the number of errors (0 = ok). */
int sema_check(const Program *prog, Net *net, Arena *arena, Diag *diag, const char *dir);

const char *mod_kind_name(ModKind kind);
/* "normal", "zero", "identity": linear's `init` as written in .lmn files. */
const char *mod_init_name(ModInit init);
/* The name of a `weights` format as written in .lmn files ("file", "q8_0", ...); "?" for another value. */
const char *weights_format_name(int weights);
/* "decoder_layer(smol) >> linear(576 -> 576, bias)" into buf. */
void module_describe(const Net *net, const Module *m, char *buf, size_t size);
void edge_describe(const Net *net, const Edge *e, char *buf, size_t size);
/* How a vertex trains: "frozen", "trainable" or "trainable, last N layers" (written into buf). */
const char *sema_vertex_training(const Net *net, const Vertex *x, char *buf, size_t cap);
/* Names every edge from the source rather than its position: "TYPE.SRC->DST" (TYPE "edge" for an edge that is
 * not exactly one `edge NAME = ...` type, sources joined by '+'), "#2", "#3", ... on the second and later edges
 * with the same name, "TYPE.eN" when the name would pass SEMA_MAX_EDGE_KEY characters. */
void sema_edge_keys(Net *net);
#define SEMA_MAX_EDGE_KEY 160

#endif
