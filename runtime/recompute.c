/* recompute.c: the memory plan (recompute.h): a greedy choice of the keep ops that recompute, by saving per
 * recomputed FLOP, under a byte budget; its printout; sizes written as text. */
#include "recompute.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

double lmn_machine_bytes(void) {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? (double)pages * (double)size : 0.0;
}

static double arena_bytes(const lmn_arena_desc *d, int B, int T, int nt, const char *rc) {
  lmn_arena a;
  lmn_arena_layout(d, B, T, nt, rc, &a);
  return 4.0 * (double)a.total;
}

static double keep_flops(const lmn_keep *k, int T) {
  double f = k->flops_bt + k->flops_btt * (double)T;
  return f > 0 ? f : 1.0;
}

/* Floats saved per recomputed FLOP by recomputing keep op j. */
static double gain(const lmn_arena_desc *d, int j, int B, int T) {
  const lmn_keep *k = &d->keep[j];
  double saved = (double)lmn_keep_saved_floats(k, B, T) - (double)lmn_keep_input_floats(k, B, T);
  return saved / keep_flops(k, T);
}

typedef struct candidate {
  double gain;
  int j;
} candidate;

/* The largest gain first; equal gains in op order. */
static int by_gain(const void *a, const void *b) {
  const candidate *x = a, *y = b;
  if (x->gain != y->gain) return x->gain > y->gain ? -1 : 1;
  return x->j - y->j;
}

/* Sorted once, then each op that switches to recomputing changes the total by its kept input less its saved
 * region, plus whatever it adds to the shared workspace (the largest of the recomputing ops'): n log n. */
int lmn_recompute_plan(const lmn_arena_desc *d, int B, int T, int nt, double fixed_bytes, double budget_bytes,
                       char *rc) {
  if (d->n_keep > 0) memset(rc, 0, (size_t)d->n_keep);
  double total = fixed_bytes + arena_bytes(d, B, T, nt, NULL), work = 0;
  if (total <= budget_bytes) return 1;
  candidate *c = malloc(sizeof *c * (size_t)(d->n_keep + 1));
  if (!c) return 0;
  for (int j = 0; j < d->n_keep; j++) c[j] = (candidate){gain(d, j, B, T), j};
  qsort(c, (size_t)d->n_keep, sizeof *c, by_gain);
  int fits = 0;
  for (int i = 0; i < d->n_keep && !fits; i++) {
    const lmn_keep *k = &d->keep[c[i].j];
    rc[c[i].j] = 1;
    total += 4.0 * ((double)lmn_keep_input_floats(k, B, T) - (double)lmn_keep_saved_floats(k, B, T));
    double w = 4.0 * (double)lmn_keep_work_floats(k, B, T);
    if (w > work) total += w - work, work = w;
    fits = total <= budget_bytes;
  }
  free(c);
  return fits;
}

double lmn_default_budget(void) {
  return LMN_DEFAULT_BUDGET_FRACTION * lmn_machine_bytes();
}

void lmn_recompute_print(FILE *f, const lmn_arena_desc *d, int B, int T, int nt, const char *rc,
                         double budget_bytes, const char *budget_from, double step_flops_row, int always) {
  int n = 0;
  double extra = 0;
  for (int j = 0; j < d->n_keep; j++)
    if (rc && rc[j]) n++, extra += keep_flops(&d->keep[j], T);
  if (d->n_keep == 0 || (n == 0 && !always)) return;
  char b[32], with[32], without[32];
  lmn_bytes_text(budget_bytes, b, sizeof b);
  lmn_bytes_text(arena_bytes(d, B, T, nt, rc), with, sizeof with);
  lmn_bytes_text(arena_bytes(d, B, T, nt, NULL), without, sizeof without);
  fprintf(f, "memory plan: budget %s (%s): ", b, budget_from);
  if (!n) {
    fprintf(f, "every activation kept (%d op%s could recompute)\n", d->n_keep, d->n_keep == 1 ? "" : "s");
    return;
  }
  fprintf(f, "recomputing %d of %d ops:", n, d->n_keep);
  for (int j = 0, shown = 0; j < d->n_keep; j++) {
    if (!rc[j]) continue;
    if (shown++ == 8) {
      fprintf(f, " and %d more", n - 8);
      break;
    }
    fprintf(f, "%s %s", shown > 1 ? "," : "", d->keep[j].what);
  }
  fprintf(f, "\n  activations %s instead of %s; the recomputation adds %.1f%% to a training step's FLOPs\n", with,
          without, step_flops_row > 0 ? 100.0 * extra / step_flops_row : 0.0);
}

int lmn_parse_bytes(const char *s, double *bytes) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || !(v >= 0) || v > 1e18) return -1;
  while (isspace((unsigned char)*end)) end++;
  static const struct {
    const char *unit;
    double scale;
  } units[] = {{"", 1},          {"B", 1},
               {"KiB", 1024.0},  {"MiB", 1048576.0},        {"GiB", 1073741824.0}, {"TiB", 1099511627776.0},
               {"K", 1024.0},    {"M", 1048576.0},          {"G", 1073741824.0},   {"T", 1099511627776.0},
               {"KB", 1e3},      {"MB", 1e6},               {"GB", 1e9},           {"TB", 1e12}};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (strcmp(end, units[i].unit) == 0) {
      *bytes = v * units[i].scale;
      return 0;
    }
  return -1;
}
