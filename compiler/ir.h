/* ir.h: the lowered network that code generation consumes: every parameter tensor (shape, owner,
 * trainable flag) and the ops in topological order, each with its inputs, output width, parameters,
 * and costs as functions of batch B and sequence length T (FLOPs forward and backward, floats kept
 * for the backward pass). */
#ifndef LMNC_IR_H
#define LMNC_IR_H

#include <stdio.h>

#include "modules.h"
#include "net.h"
#include "sema.h"

/* c_b*B + c_bt*B*T + c_btt*B*T*T */
typedef struct Cost {
  double b, bt, btt;
} Cost;

double cost_eval(Cost c, long batch, long seq);

typedef enum { OWN_MODEL, OWN_VERTEX, OWN_EDGE } OwnerKind;

/* What a tensor is to the code that uses it: a member of a transformer block (member and layer say which),
 * or one of the tensors around the blocks. Set where the tensor is created; nothing downstream reads names. */
typedef enum {
  ROLE_BLOCK,       /* member (lmn_block_member) of block `layer` of a vertex, or of a decoder/gpt2 edge */
  ROLE_TOKEN_EMBD,  /* [vocab, d], also the tied head */
  ROLE_POS_EMBD,    /* [ctx, d], GPT-2 */
  ROLE_PREFIX,      /* [prefix, d], the fixed random prefix */
  ROLE_HEAD,        /* [vocab, d], an untied output head */
  ROLE_OUTPUT_NORM, /* [d], a vertex's final norm gain */
  ROLE_OUTPUT_NORM_B,
  ROLE_WEIGHT,      /* [out, in] of linear, classify, or mlp (index 0: fc1, 1: fc2) */
  ROLE_BIAS,        /* [out] */
  ROLE_COUNT
} ParamRole;

typedef struct Param {
  char name[SEMA_MAX_EDGE_KEY + 64]; /* "qwen.blk.3.attn_q.weight", "block.a->b.m0.ffn_up.weight", "edge.b->c.m1.weight" */
  long shape[2];   /* PyTorch order [out, in]; shape[1] == 0 for a vector */
  long count;
  OwnerKind owner;
  int owner_index; /* model, vertex or edge index */
  int module;      /* edge module index (OWN_EDGE), else -1 */
  const char *group; /* what kind of module it belongs to: "embedding", "vertex", "head", "decoder_layer", ... */
  int trainable;
  ParamRole role;
  int member, layer; /* ROLE_BLOCK: lmn_block_member and layer; ROLE_WEIGHT/BIAS: 0, or 1 for an MLP's fc2 */
  lmn_init init;     /* from-scratch initialisation */
  unsigned kind;     /* LMN_PARAM_ flags (bias, norm, embedding) */
  int like;          /* LMN_INIT_EMBED_STATS: the tensor whose statistics it takes, else -1 */
  int file_model;    /* the model whose file holds it, or -1 (edges, from-scratch models, the prefix) */
  const char *file_name; /* file_model >= 0: its name in the file (GGUF naming), a suffix of name */
} Param;

typedef enum {
  OP_EMBED,     /* tokens -> [B,T,d] (plus positions, prefix) */
  OP_SUM,       /* sum of several vertex outputs feeding one edge */
  OP_AGGREGATE, /* mean/sum of a vertex's incoming edges (fused into its first norm) */
  OP_VERTEX,    /* all decoder layers + final norm of one vertex call */
  OP_MODULE,    /* one edge module: linear, mlp, decoder_layer, gpt2_block */
  OP_HEAD,      /* logits over the vocabulary */
  OP_CLASSIFY,  /* class logits from the last position */
  OP_LOSS,      /* cross-entropy of an output against its target */
} OpKind;

typedef struct Op {
  int id;
  OpKind kind;
  char name[200];
  int *inputs;
  int n_inputs;
  long width;       /* output floats per token (per sequence for OP_CLASSIFY; 0 for OP_LOSS) */
  int edge, module; /* OP_EMBED/OP_MODULE/OP_HEAD/OP_CLASSIFY/OP_SUM: the edge and module (or -1) */
  int vertex;       /* OP_AGGREGATE/OP_VERTEX */
  int loss;         /* OP_LOSS */
  int *params;
  int n_params;
  int model;        /* OP_VERTEX, blocks, embed, head: the model whose shape it takes, else -1 */
  int layers;       /* OP_VERTEX: the model's layers; decoder_layer and gpt2 edges: 1; else 0 */
  int *bind;        /* blocks: [layers][LMN_BM_COUNT] parameter indices (-1: none), else NULL */
  int norm_w, norm_b; /* OP_VERTEX: the final norm's gain and (LayerNorm) bias, else -1 */
  int trainable;    /* some parameter of the op is trainable */
  int grad_in;      /* a gradient must flow back into the op's inputs */
  int backward;     /* the op has a backward pass (grad_in or trainable) */
  Cost fwd, bwd;    /* FLOPs */
  Cost saved;       /* floats kept for the backward pass */
} Op;

typedef struct Ir {
  const Net *net;
  Param *params;
  int n_params, cap_params;
  Op *ops;
  int n_ops, cap_ops;
  int *vertex_order; /* vertices in topological order */
} Ir;

void ir_build(Ir *ir, const Net *net);
void ir_free(Ir *ir);

long ir_param_total(const Ir *ir, int trainable_only);
/* The network's FLOPs: the forward pass and a training step (forward + backward), summed over its ops. */
void ir_flops(const Ir *ir, Cost *fwd, Cost *train);
/* A tensor's name in its model file: its name without the owner ("blk.3.attn_q.weight"). */
const char *param_file_name(const Param *p);

void ir_print_text(const Ir *ir, FILE *out);
void ir_print_json(const Ir *ir, FILE *out);
/* The JSON an exported network carries (`NAME export`): as ir_print_json without the ops, each parameter with
 * its name, shape and trainable flag only. malloc'd; NULL when out of memory. */
char *ir_json_compact(const Ir *ir);
void ir_print_info(const Ir *ir, FILE *out, long batch, long seq);
void ir_print_dot(const Ir *ir, FILE *out);

const char *op_kind_name(OpKind kind);

#endif
