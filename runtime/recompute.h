/* recompute.h: the memory plan of a training run: which keep ops (arena.h) recompute their saved activations
 * in the backward pass instead of keeping them, chosen from a memory budget. lmnc (`info --budget`) and the
 * generated executables (`NAME info`, `train`) call the same functions on the same tables, so they plan and
 * print the same bytes. */
#ifndef LMN_RECOMPUTE_H
#define LMN_RECOMPUTE_H

#include <stdio.h>

#include "arena.h"

/* The fraction of the machine's memory a run may plan for when no budget is given, and how the plan says so.
 */
#define LMN_DEFAULT_BUDGET_FRACTION 0.8
#define LMN_DEFAULT_BUDGET_FROM "80% of the machine's memory"

/* Physical memory of the machine in bytes (0 when unknown). */
double lmn_machine_bytes(void);
/* LMN_DEFAULT_BUDGET_FRACTION of it (0 when unknown). */
double lmn_default_budget(void);

/* Fills rc[0..d->n_keep) for B x T (T with any fixed prefix) on nt threads so that fixed_bytes plus the arena
 * fit in budget_bytes: everything kept when that fits, else the ops recompute one by one, the largest saving
 * per recomputed FLOP first, until it fits. Returns 1 when it fits, 0 when even recomputing every op does not
 * (rc then recomputes them all). */
int lmn_recompute_plan(const lmn_arena_desc *d, int B, int T, int nt, double fixed_bytes, double budget_bytes,
                       char *rc);

/* Two lines: "memory plan: budget 16.00 GiB (...): recomputing 3 of 7 ops: vertex a, ..." and what it saves
 * and costs: activations with and without, extra forward FLOPs in percent of step_flops_row (a training
 * step's FLOPs per row). Printed when some op recomputes or `always` is set; never without keep ops. */
void lmn_recompute_print(FILE *f, const lmn_arena_desc *d, int B, int T, int nt, const char *rc,
                         double budget_bytes, const char *budget_from, double step_flops_row, int always);

/* Parses a size: "12GiB", "512 MiB", "1.5G", "800MB", or bytes; 0 on success, -1 when it is not one. */
int lmn_parse_bytes(const char *s, double *bytes);

#endif
