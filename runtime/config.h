/* config.h: the YAML training configuration (train.yaml) that a generated executable reads for
 * `NAME train -c train.yaml`, parsed strictly with libyaml: an unknown key, a value of the wrong type, a
 * missing required key or an out-of-range value is an error naming file:line:col, e.g.
 *   train.yaml:7:3: error: unknown key 'lrr' in 'optimizer' (did you mean 'lr'?)
 *
 * Schema (defaults after '='; keys marked required have none):
 *   data:                       required
 *     train: PATH               required; the training text
 *     val: PATH                 a separate validation text, or
 *     val_fraction: F           = 0.05 when 'val' is absent; the tail of 'train' held out, F in (0, 1)
 *   batch: N                    required; sequences per step, in [1, 1048576]
 *   seq_len: N                  required; tokens per sequence, in [1, 16777216]
 *   accumulate: N               = 1; micro-batches of 'batch' sequences per optimizer step, their gradients
 *                               averaged as one batch of N x batch would have them, in [1, 1048576]
 *   precision: f32 | bf16       = f32; bf16: the GEMMs of linear layers and projections run in bf16 with f32
 *                               sums (AMX where the CPU has it), master weights and AdamW state stay f32
 *   memory:
 *     budget: SIZE              = 80% of the machine's memory; e.g. 12GiB, 512MiB, 800MB or bytes: what does
 *                               not fit recomputes its activations in the backward pass (bit-identical)
 *   steps: N                    total optimizer steps >= 1; required unless 'stages' is given, in which case
 *                               it is their sum (and must equal it when given too)
 *   stages:                     = one stage of 'steps' steps training 'all'
 *     - steps: N                required, >= 1
 *       train: edges | all | [name, name, ...]     = all (every trainable tensor; frozen ones stay frozen)
 *   optimizer:                  AdamW
 *     lr: F                     = 3e-4, >= 0 (the peak rate)
 *     betas: [B1, B2]           = [0.9, 0.95], each in [0, 1)
 *     eps: F                    = 1e-8, >= 0
 *     weight_decay: F           = 0.0, >= 0
 *     no_decay: [KIND, ...]     = [bias]; tensors weight decay skips: bias, norm (norm gains, LayerNorm's
 *                               bias too), embedding (token and position embeddings); [] decays all
 *   schedule:
 *     warmup: N                 = 0 steps, <= steps; lr rises linearly from 0
 *     decay: cosine | linear | constant     = cosine; from lr down to min_lr at the last step
 *     min_lr: F                 = 0.0, in [0, lr]
 *   grad_clip: F                = 1.0, >= 0; global gradient-norm clipping, 0 = off
 *   eval:
 *     every: N                  = 100 steps, >= 0; 0 = only after the last step
 *     batches: N                = 20, >= 1; validation batches per evaluation
 *   checkpoint:
 *     dir: PATH                 = checkpoints (next to the YAML file)
 *     every: N                  = 0 steps, >= 0; 0 = only after the last step
 *     keep: N                   = 3, >= 0; newest checkpoints kept, 0 = all
 *     minutes: F                = 15, >= 0; also a checkpoint when F minutes of training have passed since
 *                               the last one (or the start), 0 = off
 *   seed: N                     = 1337; unsigned 64-bit
 *   threads: N                  = 0, in [0, 4096]; 0 = every core
 *   log:
 *     every: N                  = 1 step, >= 1
 *   init_from: PATH             = none; a checkpoint whose tensors of the same name and shape start a fresh run
 *   sample:                     text generated with the current weights while training (language models)
 *     every: N                  = 0 steps, >= 0; 0 = never
 *     prompt: TEXT              = none (an empty prompt)
 *     tokens: N                 = 64, in [1, 4096]
 *     temperature: F            = 0.8, >= 0; 0 = greedy
 *     top_k: N                  = 40, >= 0; 0 = no cut
 *     top_p: F                  = 0.95, in [0, 1]
 * Relative paths are resolved against the directory of the YAML file. Numbers must be plain (unquoted)
 * scalars; integers are written without a decimal point. Only the first YAML document is read and a second
 * one is an error. */
#ifndef LMN_CONFIG_H
#define LMN_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "lmn_error.h"

typedef enum lmn_decay { LMN_DECAY_COSINE = 0, LMN_DECAY_LINEAR, LMN_DECAY_CONSTANT } lmn_decay;

/* What a stage trains: every trainable tensor, only the edges, or the named groups in names[]. */
typedef enum lmn_train_what { LMN_TRAIN_ALL = 0, LMN_TRAIN_EDGES, LMN_TRAIN_NAMES } lmn_train_what;

/* A place in the YAML file, 1-based (0:0 for values that came from defaults), for later errors such as an
 * unknown name in a stage's train list. */
typedef struct lmn_cfg_pos {
  int line, col;
} lmn_cfg_pos;

typedef struct lmn_stage {
  long steps;
  lmn_train_what train;
  char **names;          /* LMN_TRAIN_NAMES: the names as written, n_names of them (distinct, non-empty) */
  lmn_cfg_pos *name_pos; /* where each name is written */
  int n_names;
  lmn_cfg_pos pos; /* where the stage's 'train' value is */
} lmn_stage;

typedef struct lmn_train_config {
  char *path; /* the YAML file, as given to lmn_config_load */
  struct {
    char *train;         /* resolved path */
    char *val;           /* resolved path, or NULL: the tail val_fraction of train is validation */
    double val_fraction; /* 0 when val is set */
  } data;
  long batch;
  long seq_len;
  long accumulate; /* micro-batches per optimizer step */
  int precision;   /* of the training GEMMs: 0 f32, 1 bf16 (lmn_precision, bgemm.h) */
  double memory_budget; /* bytes the run may plan for (recompute.h), 0: 80% of the machine's memory */
  long steps; /* total, the sum of the stages */
  lmn_stage *stages;
  int n_stages; /* >= 1 after a successful load */
  struct {
    double lr;
    double betas[2];
    double eps;
    double weight_decay;
    unsigned no_decay; /* LMN_PARAM_ flags (net.h) */
  } optimizer;
  struct {
    long warmup;
    lmn_decay decay;
    double min_lr;
  } schedule;
  double grad_clip;
  struct {
    long every;
    long batches;
  } eval;
  struct {
    char *dir; /* resolved path */
    long every;
    long keep;
    double minutes; /* wall-clock interval, 0 = off */
  } checkpoint;
  uint64_t seed;
  long threads;
  struct {
    long every;
  } log;
  char *init_from; /* resolved path, or NULL */
  struct {
    long every;
    char *prompt; /* or NULL */
    long tokens;
    double temperature;
    long top_k;
    double top_p;
  } sample;
} lmn_train_config;

/* Fills cfg with the defaults above; paths and stages stay NULL, required numbers 0. Allocates nothing. */
void lmn_config_defaults(lmn_train_config *cfg);
/* Reads and checks the YAML file at path into cfg (which needs no initialisation). On failure cfg holds
 * nothing to free (lmn_config_free is still safe) and err says file:line:col: error: cause. */
int lmn_config_load(const char *path, lmn_train_config *cfg, lmn_err *err);
/* Frees what a load allocated and zeroes cfg; safe on a zeroed, defaulted or already freed config. */
void lmn_config_free(lmn_train_config *cfg);
/* Writes cfg as YAML that lmn_config_load reads back to the same values (paths as resolved), e.g. to record
 * the effective configuration of a run. */
void lmn_config_print(const lmn_train_config *cfg, FILE *out);
/* lmn_config_print into a new NUL-terminated string (free() it), or NULL when out of memory. */
char *lmn_config_text(const lmn_train_config *cfg);

/* Called by lmn_config_compare for each setting whose value differs: key as "optimizer.lr" (the stages list
 * is one setting, "stages"), the values as printed ("(absent)" for a key the old text lacks), and whether
 * the change alters what the run computes (everything but eval.*, checkpoint.*, threads, log.*, sample.* and init_from). */
typedef void (*lmn_cfg_change_fn)(void *ctx, const char *key, const char *was, const char *now, int breaking);
/* Compares two texts of lmn_config_print (e.g. a checkpoint's run against the config resuming it), calling
 * on_change (when not NULL) for each difference; returns how many of them alter the computation. */
int lmn_config_compare(const char *was, const char *now, lmn_cfg_change_fn on_change, void *ctx);

/* "cosine", "linear", "constant" ("?" otherwise). */
const char *lmn_decay_name(lmn_decay decay);
/* "bias, norm" for LMN_PARAM_ flags, into buf (cap >= 32); "" for none. */
const char *lmn_no_decay_text(unsigned flags, char *buf, size_t cap);

/* The learning rate for optimizer step `step` (0-based, in [0, steps)): lr * step / warmup while step <
 * warmup (0 at step 0), then the decay from lr at step == warmup to min_lr at step == steps (constant stays
 * at lr). Steps below 0 count as 0 and steps beyond `steps` as `steps`. */
double lmn_lr_at(const lmn_train_config *cfg, long step);
/* Index of the stage that step (0-based) belongs to; the last stage for steps beyond the total. *first (when
 * not NULL) receives the stage's first step. */
int lmn_config_stage_at(const lmn_train_config *cfg, long step, long *first);

#endif
