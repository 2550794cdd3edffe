/* sema.h: the resolved network that semantic analysis builds from the AST: models with their
 * hyper-parameters, vertices, edges (each a chain of modules from sources to a destination),
 * outputs and losses, with every name resolved and every width checked. IR lowering consumes it. */
#ifndef LMNC_SEMA_H
#define LMNC_SEMA_H

#include "ast.h"
#include "diag.h"
#include "hparams.h"

typedef enum { SRC_NONE, SRC_GGUF, SRC_SAFETENSORS } ModelSource;

typedef struct Model {
  const char *name;
  Loc at;
  ModelSource source;
  const char *path;  /* file path as written (resolved relative to the .lmn file in `file`) */
  const char *file;  /* path used to open the file */
  int declared;      /* hyper-parameters declared inline (a file is then verified at run time) */
  lmn_hparams hp;
  int used_shared;   /* some vertex, embed or head uses the model's own weight set */
} Model;

typedef struct Vertex {
  const char *name;
  Loc at;
  int model;      /* index into Net.models */
  int shared;     /* calls the model's weight set (else its own copy) */
  int trainable;
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

typedef struct Module {
  ModKind kind;
  Loc at;
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
  int srcs[8];
  int n_src;
  EndKind dst_kind;  /* END_VERTEX or END_OUTPUT */
  int dst;
  Module *mods;
  int n_mods;
  char label[160];   /* "a -> b" */
} Edge;

typedef enum { OUT_LM, OUT_CLASS } OutKind;

typedef struct Output {
  const char *name;
  Loc at;
  OutKind kind;
  long width;   /* vocabulary or classes */
  int edge;     /* the edge that produces it */
  int used;     /* read by some loss */
} Output;

typedef enum { TGT_NEXT_TOKENS, TGT_LABELS } Target;

typedef struct Loss {
  const char *name;
  Loc at;
  double weight;
  int output;
  Target target;
  double smoothing;
} Loss;

typedef enum { AGG_MEAN, AGG_SUM } Aggregate;

#define NET_MAX 4096

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
} Net;

/* Checks the program and builds net. `dir` is the .lmn file's directory (model paths are relative to
 * the current directory first, then to it). Returns the number of errors (0 = ok). */
int sema_check(const Program *prog, Net *net, Arena *arena, Diag *diag, const char *dir);

const char *mod_kind_name(ModKind kind);
/* "decoder_layer(smol) >> linear(576 -> 576, bias)" into buf. */
void module_describe(const Net *net, const Module *m, char *buf, size_t size);
void edge_describe(const Net *net, const Edge *e, char *buf, size_t size);

#endif
