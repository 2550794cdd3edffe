/* driver.h: the generic half of a compiled network's executable and its embedding API. The generated
 * main.c is `return lmn_main(argc, argv, &NAME_desc);`, which gives every network the command line
 *   NAME info [--batch B] [--seq T] [--threads N]
 *   NAME train -c CONFIG.yaml [--resume] [--resume-fallback] [--stop-at STEP]
 *   NAME eval -c CONFIG.yaml [--ckpt PATH]
 *   NAME generate -p TEXT [-n N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--ckpt PATH]
 *                 [-c CONFIG.yaml] [--threads N]
 * Exit status: 0 success, 1 failure (the message names the file and the cause), 2 usage error.
 * The training loop, evaluation, checkpoints and generation are also callable from C: lmn_train,
 * lmn_evaluate, and (checkpoint.h, generate.h) lmn_checkpoint_save/load and lmn_generate. */
#ifndef LMN_DRIVER_H
#define LMN_DRIVER_H

#include <stdint.h>
#include <signal.h>
#include <stdio.h>

#include "checkpoint.h"
#include "config.h"
#include "generate.h"
#include "lmn_error.h"
#include "net.h"
#include "sample.h"
#include "tokenizer.h"

/* The command line of a compiled network; returns the process exit status. */
int lmn_main(int argc, char **argv, const lmn_net_desc *desc);

/* What one training run reports as it goes (every callback may be NULL). */
typedef struct lmn_train_hooks {
  void *ctx;
  /* after optimizer step `step` (1-based) with the batch loss, the learning rate and the gradient norm */
  void (*on_step)(void *ctx, long step, float loss, double lr, double grad_norm);
  /* after each validation, at step `step` */
  void (*on_eval)(void *ctx, long step, double val_loss);
} lmn_train_hooks;

typedef struct lmn_train_opts {
  const char *config; /* the YAML file */
  int resume;         /* continue from the newest checkpoint of checkpoint.dir */
  long stop_at;       /* > 0: stop after this step (with a checkpoint), as if interrupted; the schedule
                         still runs over the config's steps */
  FILE *log;          /* progress lines and notes; NULL: quiet */
  lmn_train_hooks hooks;
  int resume_fallback; /* with resume: when the newest checkpoint fails its checks (a corrupt file), resume
                          from the newest earlier one that passes them (the rejected file is renamed
                          FILE.rejected); without it that is an error naming both files */
  int force;           /* with resume: accept settings that differ from the checkpoint's run in a way that
                          changes what is computed (they are listed either way) */
  const volatile sig_atomic_t *interrupt; /* when not NULL and set (a signal handler's flag): the run ends
                                             after the step in progress with a checkpoint, returning 1 */
} lmn_train_opts;

/* Trains desc's network as the config says: stages, AdamW with schedule and clipping, progress lines,
 * periodic validation and checkpoints (see checkpoint.h). Before the first step the checkpoint directory is
 * created and checked for writability, and the temporaries of killed checkpoint writes are removed (each
 * reported); after each checkpoint only the newest checkpoint.keep remain. A checkpoint directory that
 * already holds checkpoints needs resume; resume without a checkpoint starts afresh (and says so), and
 * resume compares the checkpoint's recorded settings with the config: each difference is listed, and those
 * that change what is computed (anything but eval, checkpoint, threads and log) are refused unless force.
 * A NaN or infinite loss or gradient norm stops the run with an
 * error naming the step, and no checkpoint is written after it. Returns 0, 1 when *interrupt ended the run
 * (after its checkpoint), or -1 with err set; config errors
 * read "file:line:col: error: ...". */
int lmn_train(const lmn_net_desc *desc, const lmn_train_opts *opts, lmn_err *err);

/* Mean validation loss of net over `batches` sequential batches of B x T from the start of the validation
 * split (forward without training), capped by the data: when the split holds fewer than batches x B windows
 * of T + 1 tokens, each window is evaluated once (the last batch smaller) and the mean is per window. */
int lmn_eval_loss(lmn_net *net, const lmn_data *data, long batches, long B, long T, double *loss,
                  lmn_err *err);

/* lmn_threads_resolve (threads.h) resolves the thread count of a config or option value (0 = every online
 * core). */

#endif
