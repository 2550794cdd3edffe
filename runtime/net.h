/* net.h: the contract between code that lmnc generates for one network and the generic parts of the
 * runtime (net.c: parameter buffers, initialisation, AdamW step, checkpoints; driver.c: the `NAME train /
 * generate / eval / info` command line). The generated NAME.c fills an lmn_net_desc with compile-time
 * facts (the parameter table, widths, FLOP coefficients) and the functions that are specific to the
 * network (forward, backward, cached decode); everything else is shared here. */
#ifndef LMN_NET_H
#define LMN_NET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hparams.h"
#include "lmn.h"
#include "lmn_error.h"
#include "qmat.h"
#include "threads.h"

/* NORMAL: N(0, 0.02); ZERO; ONE; EMBED_STATS: N(mean, std) of the tensor `like` (the fixed random prefix is
 * drawn from the statistics of the token embedding); IDENTITY: the identity matrix (square weights). */
typedef enum lmn_init {
  LMN_INIT_NORMAL = 0,
  LMN_INIT_ZERO,
  LMN_INIT_ONE,
  LMN_INIT_EMBED_STATS,
  LMN_INIT_IDENTITY
} lmn_init;

/* What a tensor is, for `optimizer.no_decay` (flags: a LayerNorm bias is both a bias and a norm). */
enum { LMN_PARAM_BIAS = 1, LMN_PARAM_NORM = 2, LMN_PARAM_EMBEDDING = 4 };
#define LMN_NO_DECAY_DEFAULT LMN_PARAM_BIAS /* the official LMNet path (HF Trainer) exempts every bias */

/* One parameter tensor. Trainable tensors come first in the parameter buffer, so gradients and AdamW
 * moments cover exactly [0, n_train). */
typedef struct lmn_param_info {
  const char *name;   /* e.g. "block.a->b.m0.attn_q.weight", "byte.token_embd.weight" */
  size_t offset;      /* into the parameter buffer (floats) */
  long rows, cols;    /* [rows, cols] as nn.Linear's [out, in]; cols = 0 for a vector */
  int trainable;      /* compiled with gradient kernels (can still be held still by a training stage) */
  int edge;           /* owning edge index, or -1 (vertex or model weights): `train: edges` selects >= 0 */
  const char *owner;  /* owner name for `train: [names]`: a vertex, model or edge-type name */
  lmn_init init;      /* from-scratch initialisation */
  int from_file;      /* comes from a model file (not saved in checkpoints unless trainable) */
  int like;           /* LMN_INIT_EMBED_STATS: the parameter whose statistics it takes, else -1 */
  int model;          /* from_file: index into lmn_net_desc.models, else -1 */
  const char *tensor; /* from_file: the tensor's name in the model file (GGUF naming), else NULL */
  unsigned kind;      /* LMN_PARAM_ flags; 0: a weight matrix (or another tensor that is none of those) */
} lmn_param_info;

/* Floats of a tensor: rows x cols, or rows for a vector. */
static inline size_t lmn_param_numel(const lmn_param_info *p) {
  return (size_t)p->rows * (size_t)(p->cols ? p->cols : 1);
}

/* A model whose weights come from a file, with the hyper-parameters the network was compiled for. */
typedef struct lmn_model_info {
  const char *name;
  const char *path;   /* as resolved when lmnc ran (relative to its working directory, or absolute) */
  const char *from_build; /* relative path from the folder lmnc wrote the code into (where its Makefile
                             builds the executable) to the file, or "" */
  int format;         /* 1 GGUF, 2 safetensors */
  lmn_hparams hp;
  int weights;        /* frozen matrices kept as: -1 as stored in the file, else a ggml type (lmn_ggml_type in dequant.h) */
} lmn_model_info;

/* lmn_net and lmn_net_desc are declared (opaque) in lmn.h, the public API; here are their insides. */
struct lmn_net_desc {
  const char *name;         /* network name */
  const char *source;       /* the .lmn file it was compiled from */
  const char *source_text;  /* its text (copied next to a training run's checkpoints), or NULL */
  const char *ir_json;      /* the network as JSON (`lmnc ir --json` less the ops), written by `export`, or NULL */
  uint64_t hash;            /* hash of the network description: checkpoints must match */
  int aggregate_mean;       /* 1 mean, 0 sum */
  int vocab;                /* token vocabulary (256 = raw bytes) */
  int classes;              /* > 0 for classification networks (labels are targets) */
  int ctx;                  /* longest sequence the network supports (prefix excluded) */
  int prefix;               /* fixed random prefix positions prepended inside the network (0 = none) */
  int n_params;
  const lmn_param_info *params;
  int n_models;                 /* models read from files */
  const lmn_model_info *models;
  int tokenizer_model;          /* the model (index into models) whose tokenizer reads the text; -1 (or no
                                 * such model): raw bytes */
  const lmn_model_info *tokenizer; /* a borrowed tokenizer (`tokenizer "FILE"` on a from-scratch model), used
                                    * instead: its name (the model's), path, from_build and format (1 GGUF, 2
                                    * a Hugging Face directory's tokenizer.json); NULL: none */
  size_t n_floats;          /* parameter buffer size */
  size_t n_train;           /* trainable floats (prefix of the buffer) */
  size_t n_train_decay;     /* of which the first n_train_decay take weight decay */
  double flops_bt, flops_btt; /* training FLOPs per step = flops_bt*B*T + flops_btt*B*T*T (+ flops_b*B) */
  double flops_b;
  double fwd_bt, fwd_btt, fwd_b; /* forward FLOPs, same form */
  /* Network-specific functions, generated. */
  size_t (*arena_floats)(int B, int T, int n_threads); /* activations + saved + gradients + scratch, every
                                                        * activation kept */
  const struct lmn_arena_desc *arena; /* the training arena's layout (arena.h), or NULL: arena_floats only,
                                       * and nothing recomputes */
  size_t (*cache_floats)(int ctx, int n_threads);        /* KV caches + decode buffers for generation */
  /* loss of a batch: tokens [B*T], targets [B*T] (next tokens, -1 = ignore) or labels [B], or NULL (no loss:
   * outputs only, returns 0); with train set
   * the loss gradients are left in place for backward. */
  float (*forward)(lmn_net *net, const int32_t *tokens, const int32_t *targets, int B, int T, int train);
  void (*backward)(lmn_net *net, const int32_t *tokens, int B, int T);
  /* generation: feeds T tokens at positions pos0.. through every cached module; writes the logits of the
   * last position into logits [vocab]. */
  void (*decode)(lmn_net *net, const int32_t *tokens, int T, int pos0, float *logits);
  /* the primary output of the last forward with train = 0: logits [B*(prefix+T), vocab] (per sequence the
   * prefix rows first) or class logits [B, classes] */
  float *(*output)(lmn_net *net, int B, int T);
  /* [n_params]: the step of the backward pass (0, 1, ... in the order it runs them) after which the tensor's
   * gradient is final, -1 for frozen tensors; backward calls lmn_net_grads_done after each step. NULL in code
   * generated before it (data parallelism then sends the gradients after the backward pass). */
  const int *grad_done;
};

/* The state of one network instance. Generated code reads params/grads/arena through it. */
struct lmn_net {
  const lmn_net_desc *desc;
  float *params;    /* [n_floats] */
  float *grads;     /* [n_train], or NULL until training starts (lmn_net_enable_training) */
  float *m, *v;     /* [n_train] AdamW moments, or NULL until training starts or a checkpoint brings them */
  float *arena;     /* [arena_n = lmn_net_arena_floats(desc, B, T, threads, recompute)], zero pages mapped on
                     * demand */
  size_t arena_n;
  char *recompute; /* [desc->arena->n_keep]: the keep ops that recompute (recompute.h), or NULL: none */
  double budget;   /* the memory budget the plan was made for, bytes */
  const char *budget_from; /* where it came from: "80% of the machine's memory", "memory.budget", ... */
  float *cache;     /* [cache_floats(ctx, threads)] or NULL before lmn_net_enable_cache */
  int B, T;         /* the largest batch and sequence the arena was planned for */
  int cache_ctx;
  int n_threads;
  lmn_pool *pool;   /* its strategy (lmn_pool_splits) is the network's, chosen by whoever created it */
  float *rope;      /* RoPE tables, laid out by the generated code */
  long step;        /* optimizer steps taken */
  char *trainable_mask; /* [n_params]: 1 where the current stage trains the tensor */
  unsigned no_decay;    /* LMN_PARAM_ flags of the tensors AdamW does not decay (LMN_NO_DECAY_DEFAULT) */
  /* What the checked API (lmn.h, api.c) knows of the buffers' contents; the lmn_net_* functions and the
   * generated ones ignore it. */
  int fwd_state;      /* the last lmn_forward: LMN_FWD_NONE, _OUTPUTS (train = 0) or _TRAIN */
  int fwd_B, fwd_T;   /* its batch shape */
  uint64_t fwd_hash;  /* a hash of its tokens, which lmn_backward must repeat */
  int cache_len;      /* positions lmn_decode has fed since the caches were reserved */
  /* Frozen weights (qnet.c): the frozen matrices of model files (lmn_param_kept) are not in params but
   * kept in their file's format, or the model's `weights` format, as qw[i] (data != NULL), read by the
   * kernels of qmat.h without being expanded. */
  size_t *poff;       /* [n_params] offset of each f32 tensor in params (the desc's offsets, closed up) */
  size_t n_f32;       /* floats in params */
  lmn_qtensor *qw;    /* [n_params] */
  struct lmn_gguf **files; /* [n_models] GGUF files kept mapped while qw points into them, or NULL */
  void **owned;       /* [n_params] buffers of converted tensors (another format than the file's), or NULL */
  float *qwork;       /* per-thread panels of lmn_q_matmul: qwork_floats floats for each of n_threads */
  size_t qwork_floats;
  const lmn_net *weights_of; /* a decoding sibling (lmn_net_share): every weight belongs to this network */
  int q_f32act;       /* cached decoding multiplies kept weights with f32 activations (exact) instead of
                       * activations rounded to 8 bits per block (the default: faster, as llama.cpp does) */
  /* Told after each step of the backward pass (lmn_net_grads_done), or NULL: data parallelism (train.c) sends
   * the gradients that have become final while the backward pass goes on. */
  void (*on_grads)(void *ctx, int step);
  void *on_grads_ctx;
  /* allocated with the gradients, one per task of lmn_net_update: each task's sum of squares of its
   * gradients when no clipping needs the norm first (AdamW's own pass then gives the returned norm) */
  double *norm_parts;
};

/* Step `step` of the backward pass is done (desc->grad_done says which gradients that finished). */
static inline void lmn_net_grads_done(lmn_net *net, int step) {
  if (net->on_grads) net->on_grads(net->on_grads_ctx, step);
}

enum { LMN_FWD_NONE = 0, LMN_FWD_OUTPUTS, LMN_FWD_TRAIN };

/* Allocates buffers for batches up to B x T, initialises from-scratch tensors from seed and loads the
 * tensors of model files (lmn_net_load_models; $LMN_MODEL_DIR replaces the compiled-in directories). The
 * network's pool splits modules into tasks when n_threads > 1 (threads.h; `NAME eval` and `NAME generate`
 * turn that off with lmn_pool_set_split(net->pool, 0) before running anything). Gradients and optimizer
 * moments are not allocated yet: see lmn_net_enable_training. */
int lmn_net_create(lmn_net **out, const lmn_net_desc *desc, int B, int T, int n_threads, uint64_t seed,
                   lmn_err *err);
void lmn_net_destroy(lmn_net *net);
/* Floats of the training arena for B x T with the keep ops of rc recomputing (NULL: none). */
size_t lmn_net_arena_floats(const lmn_net_desc *d, int B, int T, int n_threads, const char *rc);
/* Plans the arena anew for a memory budget (recompute.h: what does not fit recomputes; the parameters,
 * gradients and AdamW moments count against it) and reallocates it when the plan changed. from says where the
 * budget came from, for the printout. Fails, changing nothing, when the run does not fit even recomputing
 * every op it can. */
int lmn_net_plan_memory(lmn_net *net, double budget_bytes, const char *from, lmn_err *err);
/* Sets which keep ops recompute (rc [desc->arena->n_keep], NULL: none) and reallocates the arena: tests and
 * benchmarks compare the two ways. */
int lmn_net_set_recompute(lmn_net *net, const char *rc, lmn_err *err);
/* The bytes the memory plan counts besides the arena: parameters in f32, the frozen weights kept in their
 * files' formats (kept_bytes), gradients and AdamW moments. */
double lmn_net_fixed_bytes(const lmn_net_desc *d, double kept_bytes);
/* The memory plan of d at B x T on nt threads for budget_bytes (<= 0: 80% of the machine's memory) into rc
 * [arena->n_keep] (recompute.h); 0 when d has no keep ops. Returns the arena's floats with it. */
size_t lmn_desc_plan(const lmn_net_desc *d, int B, int T, int nt, double budget_bytes, double kept_bytes, char *rc);
/* The plan's lines (lmn_recompute_print) when some op recomputes or `always` is set; nothing for a network
 * without keep ops. */
void lmn_print_plan(FILE *f, const lmn_net_desc *d, int B, int T, int nt, const char *rc, double budget_bytes,
                    const char *from, int always);
/* A sibling of src for decoding only (lmn_net_enable_cache, desc->decode): it reads src's weights (no copy)
 * and has KV caches, weight panels and n_threads threads of its own, so several siblings decode different
 * sequences at once on different threads. src must outlive it and its weights must not change meanwhile. */
int lmn_net_share(const lmn_net *src, int n_threads, lmn_net **out, lmn_err *err);
/* Training starts: allocates the gradients and the AdamW moments (zeroed) that are still missing. Until
 * then net->grads, net->m and net->v are NULL, lmn_g() returns NULL (the backward computes no weight
 * gradient) and lmn_net_update does nothing. Idempotent. */
int lmn_net_enable_training(lmn_net *net, lmn_err *err);
/* Allocates only the AdamW moments (zeroed) when they are missing: what a checkpoint's moments load into. */
int lmn_net_enable_moments(lmn_net *net, lmn_err *err);
/* Loads every tensor that comes from a model file (dequantised to f32), after checking each file's
 * hyper-parameters against the compiled ones; dir, when not NULL, replaces the directory of each path.
 * Then re-draws the tensors initialised from others' statistics. Errors name the file and the tensor. */
int lmn_net_load_models(lmn_net *net, const char *dir, uint64_t seed, lmn_err *err);
/* The file (or directory) of model m: its base name under dir when dir is set; else its compiled-in path
 * when that is absolute; else, when it exists, m->from_build taken from the folder of the running
 * executable (so a compiled network finds its model from any working directory); else the compiled-in path
 * (relative to the working directory, as lmnc saw it). */
void lmn_model_path(const lmn_model_info *m, const char *dir, char *buf, size_t n);
/* A model file that is not there: err says which model, the path(s) looked at, where they came from and
 * how to point at the file (-1). 0 when path exists. */
int lmn_model_check_exists(const lmn_net_desc *d, const lmn_model_info *m, const char *dir, const char *path,
                           lmn_err *err);
/* The tokenizer that reads the network's text: a borrowed one (desc->tokenizer: a GGUF file or a Hugging Face
 * directory's tokenizer.json), else the byte-level BPE of the embedding model's file (desc->tokenizer_model:
 * its GGUF, or its directory's tokenizer.json), else raw bytes for a from-scratch vocabulary of 256;
 * $LMN_MODEL_DIR applies. A model's own GGUF tokenizer must have the network's vocabulary; a borrowed or a
 * Hugging Face one at most that many tokens (the ids beyond are never produced). Release it with
 * lmn_tokenizer_free. */
struct lmn_tokenizer;
int lmn_net_tokenizer(const lmn_net_desc *desc, struct lmn_tokenizer *tok, lmn_err *err);
/* The chat template of the network's tokenizer file (its GGUF's tokenizer.chat_template), recognised;
 * fails for byte-level networks, files without one and templates of an unknown style. */
struct lmn_chat_template;
int lmn_net_chat_template(const lmn_net_desc *desc, struct lmn_chat_template *t, lmn_err *err);
/* Re-draws the tensors initialised from others' statistics (after loading those others from a file). */
void lmn_net_init_derived(lmn_net *net, uint64_t seed);
/* Reserves KV caches for generation up to ctx positions (their contents start empty). */
int lmn_net_enable_cache(lmn_net *net, int ctx, lmn_err *err);
/* Sets which trainable tensors a stage trains: "all", "edges", or a list of owner names. */
int lmn_net_select(lmn_net *net, int edges_only, char *const *names, int n_names, lmn_err *err);
/* Zeroes the gradients, first allocating them and the moments when training has not started
 * (lmn_net_enable_training); -1 only when that allocation fails. */
int lmn_net_zero_grad(lmn_net *net);
/* Gradient accumulation over micro-batches (`accumulate: N`): the gradients of micro-batches with n_1, n_2,
 * ... loss targets add up to those of one batch holding them all, the mean over every target, when each
 * backward runs between lmn_accum_before and lmn_accum_after with its n (zero the gradients and the
 * lmn_accum first). The running mean keeps the gradients at the scale of one batch all along: before a
 * backward they are scaled by seen / n, after it by n / (seen + n). */
typedef struct lmn_accum {
  double seen; /* targets of the micro-batches so far */
} lmn_accum;
void lmn_accum_before(lmn_net *net, const lmn_accum *a, double n);
void lmn_accum_after(lmn_net *net, lmn_accum *a, double n);
/* Multiplies every trainable tensor's gradient by s (0: zeroes them); data parallelism (train.c) turns the
 * ranks' summed gradient into the batch's mean with it. */
void lmn_net_scale_grads(lmn_net *net, double s);
/* The network's weight matrices as a packed set for bf16 training on AMX (bgemm.h): every 2-D tensor not kept
 * in a file format, in both layouts (embedding tables only in the input-gradient layout, which a tied head
 * uses), frozen ones packed once. NULL when the AMX path is not in use or memory runs out (products then
 * pack their operands per call). Free with lmn_bpack_free before the network. */
struct lmn_bpack;
struct lmn_bpack *lmn_net_bpack(const lmn_net *net);

/* Global-norm clipping (max_norm <= 0: none) and one AdamW step on the selected tensors; returns the norm
 * (with clipping from a pass of its own before AdamW's; without, from AdamW's own pass over each chunk).
 * Weight decay skips the tensors whose kind is in net->no_decay (set it directly; lmn_net_create sets
 * LMN_NO_DECAY_DEFAULT). Before training has started (no gradients or moments) it does nothing and
 * returns 0. */
double lmn_net_update(lmn_net *net, float lr, float beta1, float beta2, float eps, float weight_decay,
                      float max_norm);
/* Threads for eval and generate, after lmn_net_create: a network whose frozen weights stay in their files'
 * formats runs their products (and everything else) on its pool with OpenBLAS on one thread; any other
 * runs each GEMM on OpenBLAS's `threads` threads with the pool not splitting modules. */
void lmn_net_set_inference_threads(lmn_net *net, int threads);
/* Pointer to a parameter by name, or NULL. */
float *lmn_net_param(lmn_net *net, const char *name, const lmn_param_info **info);


/* ---- helpers for generated code ---------------------------------------------------------------- */
#ifndef LMN_NET_HELPERS
#define LMN_NET_HELPERS
#include "modules.h"
/* Weight of parameter i as f32 (i < 0, or a frozen matrix kept in another format: NULL; see lmn_q). */
static inline const float *lmn_w(const lmn_net *net, int i) {
  return i < 0 || net->qw[i].data ? NULL : net->params + net->poff[i];
}
/* Parameter i when it is a frozen matrix kept in its file's format, else NULL (it is f32: lmn_w). */
static inline const lmn_qtensor *lmn_q(const lmn_net *net, int i) {
  return i < 0 || !net->qw[i].data ? NULL : &net->qw[i];
}
/* Gradient of parameter i, or NULL when it is frozen, not trained by the current stage, or training has
 * not started (no gradient buffer yet). */
static inline float *lmn_g(const lmn_net *net, int i) {
  return (i < 0 || !net->grads || !net->desc->params[i].trainable || !net->trainable_mask[i])
             ? NULL
             : net->grads + net->desc->params[i].offset;
}
#endif

#endif
