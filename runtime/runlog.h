/* runlog.h: the record a training run keeps next to its checkpoints (checkpoint.dir):
 *   metrics.jsonl   a JSON object per line, one per step and one per validation:
 *                   {"step": 12, "loss": 3.2141, "lr": 0.0003, "grad_norm": 0.812, "tokens_per_s": 18532,
 *                    "time_s": 6.64}
 *                   {"step": 100, "val_loss": 3.1024, "val_accuracy": 0.875, "time_s": 55.1}  (accuracy: classifiers)
 *                   {"step": 100, "prompt": "Once", "sample": " upon a time", "time_s": 55.3}  (sample.every)
 *                   time_s counts the run's training seconds, across resumes. A resumed run keeps the lines
 *                   up to its checkpoint's step and drops the later ones (a killed run's steps are redone).
 *   config.yaml     the effective configuration (every default filled in), rewritten at each start
 *   network.lmn     the source the network was compiled from (when the code carries it)
 * `NAME plot` draws metrics.jsonl with gnuplot into loss.png there. Every file is written atomically. */
#ifndef LMN_RUNLOG_H
#define LMN_RUNLOG_H

#include <stdio.h>

#include "lmn_error.h"

/* The files of the record (lmn_checkpoint_clean removes their temporaries after a crash). */
#define LMN_RUNLOG_FILES "metrics.jsonl", "config.yaml", "network.lmn", "loss.png"

typedef struct lmn_runlog {
  FILE *f;         /* metrics.jsonl, appending */
  char path[4200]; /* its path */
  double time0;    /* time_s of the run when this process started (the last line kept on resume) */
} lmn_runlog;

/* Starts the record in dir: config.yaml from settings, network.lmn from source (when not NULL), and
 * metrics.jsonl emptied (resume_step 0) or cut after the lines of step resume_step. */
int lmn_runlog_open(lmn_runlog *l, const char *dir, long resume_step, const char *settings, const char *source,
                    lmn_err *err);
/* Appends a step line; elapsed: seconds this process has trained. A failed write is reported once on stderr
 * and the record stops (training goes on). */
void lmn_runlog_step(lmn_runlog *l, long step, double loss, double lr, double norm, double tokens_per_s,
                     double elapsed);
/* Appends a sample line: {"step": N, "prompt": "...", "sample": "...", "time_s": T} (JSON strings; bytes that
 * are not UTF-8 become U+FFFD). */
void lmn_runlog_sample(lmn_runlog *l, long step, const char *prompt, const char *text, double elapsed);
/* Appends a validation line; accuracy < 0 for none. */
void lmn_runlog_eval(lmn_runlog *l, long step, double val_loss, double accuracy, double elapsed);
void lmn_runlog_close(lmn_runlog *l);

/* Draws dir/metrics.jsonl (training loss per step, validation loss per evaluation) into dir/loss.png with
 * gnuplot; title names the run. Errors say when gnuplot is missing or the record is empty. */
int lmn_runlog_plot(const char *dir, const char *title, char *png, size_t cap, lmn_err *err);

#endif
