/* progress.h: what a long run prints while it works: one line per training step
 *   step 12/200 | loss 3.2141 | lr 3.00e-04 | norm 0.812 | 18,532 tok/s | 55.3 ms/step | MFU 41.2% | ETA 0:01:44
 * one line per validation, and the monotonic clock the timings come from. MFU is the model's FLOPs per
 * second over a given peak FLOP/s (e.g. the sgemm rate lmn_measure_sgemm_gflops measures); the MFU field is
 * left out when either is unknown (0). The ETA is the remaining steps times a moving average of step time. */
#ifndef LMN_PROGRESS_H
#define LMN_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

typedef struct lmn_progress {
  long total_steps;       /* the N of "step n/N" */
  double tokens_per_step; /* B * T (times gradient-accumulation steps) */
  double flops_per_step;  /* model FLOPs of one optimizer step (forward + backward); 0: unknown */
  double peak_flops;      /* FLOP/s taken as 100% MFU; 0: unknown */
  double avg_step_s;      /* moving average of step seconds, for the ETA; 0 before the first step */
} lmn_progress;

/* Monotonic wall-clock seconds (CLOCK_MONOTONIC); only differences are meaningful. */
double lmn_clock_s(void);
void lmn_progress_init(lmn_progress *p, long total_steps, double tokens_per_step, double flops_per_step,
                       double peak_flops);
/* Writes the step line (no newline) for completed step `step` (1-based) that took step_s seconds, with the
 * gradient norm before clipping (left out when negative), using the ETA average as it stands; returns the
 * length snprintf would have written. Does not change p. */
int lmn_progress_format(const lmn_progress *p, long step, double loss, double lr, double norm, double step_s,
                        char *buf, size_t cap);
/* Folds step_s into the ETA average, then prints the step line and a newline to out and flushes it. */
void lmn_progress_step(lmn_progress *p, FILE *out, long step, double loss, double lr, double norm,
                       double step_s);
/* Writes the validation line (no newline): "val step 100/200 | val loss 3.1024 | ppl 22.23 | 1.2 s". */
int lmn_progress_format_val(const lmn_progress *p, long step, double val_loss, double seconds, char *buf,
                            size_t cap);
/* Prints the validation line and a newline to out and flushes it. */
void lmn_progress_val(const lmn_progress *p, FILE *out, long step, double val_loss, double seconds);
/* "1,234,567": n with a comma every three digits (negative numbers keep their sign). */
int lmn_format_thousands(long long n, char *buf, size_t cap);
/* "H:MM:SS" (hours unbounded); "-:--:--" when seconds is negative or not finite. */
int lmn_format_duration(double seconds, char *buf, size_t cap);

#endif
