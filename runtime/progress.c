/* progress.c: the per-step and validation progress lines, number formatting and the monotonic clock. */
#include "progress.h"

#include <math.h>
#include <time.h>

#define LMN_ETA_ALPHA 0.1 /* weight of the newest step in the moving average of step time */

double lmn_clock_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void lmn_progress_init(lmn_progress *p, long total_steps, double tokens_per_step, double flops_per_step,
                       double peak_flops) {
  p->total_steps = total_steps;
  p->tokens_per_step = tokens_per_step;
  p->flops_per_step = flops_per_step;
  p->peak_flops = peak_flops;
  p->avg_step_s = 0.0;
}

int lmn_format_thousands(long long n, char *buf, size_t cap) {
  char digits[32];
  unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
  int nd = snprintf(digits, sizeof digits, "%llu", u);
  char out[48];
  int k = 0;
  if (n < 0) out[k++] = '-';
  for (int i = 0; i < nd; i++) {
    if (i > 0 && (nd - i) % 3 == 0) out[k++] = ',';
    out[k++] = digits[i];
  }
  out[k] = '\0';
  return snprintf(buf, cap, "%s", out);
}

int lmn_format_duration(double seconds, char *buf, size_t cap) {
  if (!(seconds >= 0.0) || !isfinite(seconds) || seconds > 1e15) return snprintf(buf, cap, "-:--:--");
  long long s = llround(seconds);
  return snprintf(buf, cap, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
}

/* Tokens per second as a whole number, 0 when the step time is not positive. */
static long long tokens_per_s(const lmn_progress *p, double step_s) {
  double r = step_s > 0.0 ? p->tokens_per_step / step_s : 0.0;
  return isfinite(r) && r < 9e18 ? llround(r) : 0;
}

int lmn_progress_format(const lmn_progress *p, long step, double loss, double lr, double norm, double step_s,
                        char *buf, size_t cap) {
  char tps[48], eta[48], mfu[32] = "", gn[32] = "";
  if (norm >= 0.0) snprintf(gn, sizeof gn, " | norm %.3g", norm);
  lmn_format_thousands(tokens_per_s(p, step_s), tps, sizeof tps);
  double avg = p->avg_step_s > 0.0 ? p->avg_step_s : step_s;
  lmn_format_duration(avg * (double)(p->total_steps - step), eta, sizeof eta);
  if (p->flops_per_step > 0.0 && p->peak_flops > 0.0 && step_s > 0.0)
    snprintf(mfu, sizeof mfu, " | MFU %.1f%%", 100.0 * p->flops_per_step / step_s / p->peak_flops);
  return snprintf(buf, cap, "step %ld/%ld | loss %.4f | lr %.2e%s | %s tok/s | %.1f ms/step%s | ETA %s", step,
                  p->total_steps, loss, lr, gn, tps, 1e3 * step_s, mfu, eta);
}

void lmn_progress_step(lmn_progress *p, FILE *out, long step, double loss, double lr, double norm,
                       double step_s) {
  if (step_s > 0.0 && isfinite(step_s))
    p->avg_step_s =
        p->avg_step_s > 0.0 ? (1.0 - LMN_ETA_ALPHA) * p->avg_step_s + LMN_ETA_ALPHA * step_s : step_s;
  char line[256];
  lmn_progress_format(p, step, loss, lr, norm, step_s, line, sizeof line);
  fprintf(out, "%s\n", line);
  fflush(out);
}

int lmn_progress_format_val(const lmn_progress *p, long step, double val_loss, double seconds, char *buf,
                            size_t cap) {
  double ppl = val_loss < 700.0 ? exp(val_loss) : INFINITY;
  return snprintf(buf, cap, "val step %ld/%ld | val loss %.4f | ppl %.2f | %.1f s", step, p->total_steps,
                  val_loss, ppl, seconds);
}

void lmn_progress_val(const lmn_progress *p, FILE *out, long step, double val_loss, double seconds) {
  char line[256];
  lmn_progress_format_val(p, step, val_loss, seconds, line, sizeof line);
  fprintf(out, "%s\n", line);
  fflush(out);
}
