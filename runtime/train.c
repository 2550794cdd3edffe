/* train.c: the training loop behind `NAME train` (lmn_train): config, network, data (next-token text, or
 * labelled examples for a classification network), stage selection, AdamW steps on the config's schedule,
 * progress lines with MFU, periodic validation (loss, and accuracy for a classifier), rotating atomic
 * checkpoints and exact resumption; and the validation loss that `NAME eval` shares (lmn_eval_loss). */
#include <cblas.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bgemm.h"
#include "blasrate.h"
#include "dist.h"
#include "driver.h"
#include "lmn_file.h"
#include "progress.h"
#include "runlog.h"

#define LMN_RUN_STREAM 0x72756eULL /* "run": the stream of the run's own generator */

/* ---- validation ---------------------------------------------------------------------------------- */

/* The validation pieces of an evaluation of `batches` batches of G rows (fewer rows when the split has fewer
 * windows), cut into pieces of P rows, piece k evaluated when k % ranks == rank: into part[0] the sum of each
 * piece's loss weighted by its rows / P, part[1] the rows, part[2] the pieces (summed over the ranks, then
 * eval_mean). */
static int eval_pieces(lmn_net *net, const lmn_data *data, long batches, long G, long P, long T, int rank,
                       int ranks, double part[3], lmn_err *err) {
  size_t n = (size_t)P * (size_t)T, windows = lmn_data_windows(data, LMN_SPLIT_VAL, T);
  size_t rows = windows && windows / (size_t)G < (size_t)batches ? windows : (size_t)batches * (size_t)G;
  int32_t *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  int rc = x && y ? 0 : lmn_errf(err, "%s: out of memory for a validation batch", net->desc->name);
  lmn_data_state st;
  lmn_data_state_init(&st, LMN_SPLIT_VAL, LMN_ORDER_SEQUENTIAL, 0);
  part[0] = part[1] = part[2] = 0.0;
  for (size_t done = 0, b, k = 0; done < rows && !rc; done += b, k++) {
    b = rows - done < (size_t)P ? rows - done : (size_t)P;
    rc = lmn_data_next(data, &st, (long)b, T, x, y, err);
    if (rc || k % (size_t)ranks != (size_t)rank) continue;
    double l = net->desc->forward(net, x, y, (int)b, (int)T, 0);
    part[0] += b == (size_t)P ? l : l * (double)b / (double)P;
    part[1] += (double)b;
    part[2] += 1.0;
  }
  free(x);
  free(y);
  return rc;
}

/* The mean loss of the pieces: the plain mean of whole pieces (what an uncapped evaluation computes), or
 * weighted by rows when one piece is short. Every row of next-token text has T targets. */
static double eval_mean(const double part[3], long P) {
  if ((size_t)part[1] % (size_t)P) return part[0] * (double)P / part[1];
  return part[2] > 0 ? part[0] / part[2] : 0.0;
}

int lmn_eval_loss(lmn_net *net, const lmn_data *data, long batches, long B, long T, double *loss,
                  lmn_err *err) {
  if (batches < 1 || B < 1 || T < 1 || B > net->B || T > net->T)
    return lmn_errf(err, "%s: cannot evaluate %ld batches of %ld x %ld (planned for %d x %d)",
                    net->desc->name, batches, B, T, net->B, net->T);
  double part[3];
  if (eval_pieces(net, data, batches, B, B, T, 0, 1, part, err)) return -1;
  *loss = eval_mean(part, B);
  return 0;
}

/* ---- one run ------------------------------------------------------------------------------------- */

typedef struct run {
  const lmn_net_desc *d;
  const lmn_train_opts *o;
  lmn_train_config cfg;
  lmn_tokenizer tok;
  lmn_data data;
  lmn_net *net;
  int32_t *x, *y;
  lmn_data_state stream; /* the training batches */
  lmn_rng rng;           /* the run's own generator (saved and restored; for stochastic modules) */
  long step;             /* steps completed */
  long end;              /* this invocation stops after this step */
  int stage;             /* selected stage, -1 before the first */
  int threads;
  lmn_progress prog;
  char last_ckpt[LMN_CKPT_PATH_MAX]; /* newest checkpoint of this run, "" before the first */
  char *settings;  /* the effective config as text (lmn_config_text), recorded in checkpoints */
  double saved_at; /* lmn_clock_s() of the last checkpoint, or of the start */
  double started;  /* lmn_clock_s() when the loop began */
  lmn_runlog log;  /* metrics.jsonl and the copies in checkpoint.dir */
  lmn_bpack *bpack; /* precision bf16 on AMX: the weights packed once per step (bgemm.h), else NULL */
  /* data parallelism (dist.h): this process is rank `rank` of `ranks` and trains on rows
   * [rank * rows, (rank + 1) * rows) of every batch of cfg.batch rows; one process: 0, 1, cfg.batch */
  const lmn_dist *dist;
  int rank, ranks;
  long rows;
  double waited, stepped; /* seconds of the steps spent waiting for the other ranks, and of the steps */
  struct bucket *buckets; /* the trainable gradients cut for their sums over the ranks */
  int n_buckets;
  int overlap;     /* the buckets go while the backward pass runs (desc->grad_done; one micro-batch a step) */
  double scale;    /* what a bucket is multiplied by before it goes: the rank's loss targets */
  int send_failed; /* a bucket could not be sent during the backward pass: send_err says why */
  lmn_err send_err;
  int stop_all; /* some rank was interrupted before the last gradient sum: every rank stops after it */
} run;

/* Consecutive trainable tensors of about LMN_BUCKET_FLOATS floats, summed over the ranks as one. */
#define LMN_BUCKET_FLOATS ((size_t)1 << 20)
typedef struct bucket {
  size_t at, n; /* floats of the gradient buffer */
  int ready;    /* the backward step after which all its gradients are final */
  int sent;
} bucket;

/* Where progress goes: the caller's log, on rank 0 only (NULL: nowhere). */
static FILE *log_of(const run *r) {
  return r->rank > 0 ? NULL : r->o->log;
}

static void note(const run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const run *r, const char *fmt, ...) {
  FILE *log = log_of(r);
  if (!log) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(log, fmt, ap);
  va_end(ap);
  fputc('\n', log);
  fflush(log);
}

/* Prefixes err's message with the config file: "train.yaml: <message>". */
static int cfg_err(const run *r, lmn_err *err) {
  char m[sizeof err->msg];
  snprintf(m, sizeof m, "%s", err ? err->msg : "");
  return lmn_errf(err, "%s: %s", r->cfg.path, m);
}

static int select_stage(run *r, int i, lmn_err *err) {
  const lmn_stage *s = &r->cfg.stages[i];
  int names = s->train == LMN_TRAIN_NAMES;
  return lmn_net_select(r->net, s->train == LMN_TRAIN_EDGES, names ? s->names : NULL, names ? s->n_names : 0,
                        err);
}

static int stage_trains_something(const run *r) {
  for (int i = 0; i < r->d->n_params; i++)
    if (r->d->params[i].trainable && r->net->trainable_mask[i]) return 1;
  return 0;
}

/* Every stage names existing groups and trains something: checked before the first step, not hours later. */
static int check_stages(run *r, lmn_err *err) {
  const lmn_train_config *c = &r->cfg;
  for (int i = 0; i < c->n_stages; i++) {
    const lmn_stage *s = &c->stages[i];
    for (int k = 0; k < s->n_names; k++)
      if (lmn_net_select(r->net, 0, &s->names[k], 1, err))
        return lmn_errf(err,
                        "%s:%d:%d: error: '%s' is not a trainable vertex, model or edge type of network '%s'",
                        c->path, s->name_pos[k].line, s->name_pos[k].col, s->names[k], r->d->name);
    if (select_stage(r, i, err)) return cfg_err(r, err);
    if (!stage_trains_something(r)) {
      const char *what = s->train == LMN_TRAIN_EDGES ? "edge tensors" : "tensors";
      if (s->pos.line > 0)
        return lmn_errf(err, "%s:%d:%d: error: stage %d trains nothing: network '%s' has no trainable %s",
                        c->path, s->pos.line, s->pos.col, i + 1, r->d->name, what);
      return lmn_errf(err, "%s: network '%s' has no trainable %s: nothing to train", c->path, r->d->name,
                      what);
    }
  }
  return 0;
}

static int open_data(run *r, lmn_err *err) {
  if (lmn_net_tokenizer(r->d, &r->tok, err)) return -1;
  lmn_data_opts o;
  lmn_data_opts_from_config(&o, &r->cfg, &r->tok);
  if (lmn_data_open_classes(&r->data, &o, r->d->classes, err)) return -1;
  size_t n = (size_t)r->cfg.batch * (size_t)r->cfg.seq_len;
  r->x = malloc(n * sizeof *r->x);
  r->y = malloc(n * sizeof *r->y);
  return r->x && r->y ? 0 : lmn_errf(err, "%s: out of memory for a batch of %zu tokens", r->cfg.path, n);
}

static void warn_if_changed(const run *r, const lmn_ckpt_state *st) {
  const lmn_train_config *c = &r->cfg;
  if (st->batch == c->batch && st->seq_len == c->seq_len && st->seed == c->seed) return;
  note(r,
       "note: the checkpoint was trained with batch %ld x %ld, seed %" PRIu64
       "; the config now says %ld x %ld, seed "
       "%" PRIu64 ": the resumed run will not repeat an uninterrupted one",
       st->batch, st->seq_len, st->seed, c->batch, c->seq_len, c->seed);
}

/* A checkpoint's run state fits this run: a training stream that served one batch a step, from a position
 * inside this run's data, at a step within the config's; otherwise the file is corrupt or another run's. */
static int check_run_state(const run *r, const char *path, const lmn_ckpt_state *st, lmn_err *err) {
  if (!st->has_run)
    return lmn_errf(err, "%s: the checkpoint has no training state (data position, RNG) to resume from",
                    LMN_SHORT(path));
  if (st->data.split != LMN_SPLIT_TRAIN || st->data.order != LMN_ORDER_RANDOM)
    return lmn_errf(err, "%s: the checkpoint's data state is not a training stream", LMN_SHORT(path));
  /* one batch a step, or `accumulate` (of the run that wrote it) */
  if (st->step == 0 ? st->data.batches != 0
                    : st->data.batches < (uint64_t)st->step || st->data.batches % (uint64_t)st->step != 0)
    return lmn_errf(
        err,
        "%s: checkpoint metadata 'data_state' has served %" PRIu64
        " batches at step %ld (a whole number of micro-batches a step): the checkpoint is corrupt",
        LMN_SHORT(path), st->data.batches, st->step);
  size_t most = r->d->classes ? lmn_data_examples(&r->data, LMN_SPLIT_TRAIN) : 0;
  if (st->data.pos > most)
    return lmn_errf(err,
                    "%s: checkpoint metadata 'data_state' stands at example %" PRIu64
                    " of %zu: the "
                    "checkpoint is corrupt or of other data",
                    LMN_SHORT(path), st->data.pos, most);
  if (st->step > r->cfg.steps)
    return lmn_errf(err, "%s: the checkpoint is at step %ld but %s trains %ld steps", LMN_SHORT(path),
                    st->step, LMN_SHORT(r->cfg.path), r->cfg.steps);
  return 0;
}

static void count_change(void *ctx, const char *key, const char *was, const char *now, int breaking) {
  (void)key, (void)was, (void)now, (void)breaking;
  ++*(int *)ctx;
}

static void list_change(void *ctx, const char *key, const char *was, const char *now, int breaking) {
  note(ctx, "  %s: %s -> %s%s", key, was, now, breaking ? "" : " (does not change the computation)");
}

/* The checkpoint's recorded settings against this run's: every difference listed; those that change the
 * computation refused unless --force. A checkpoint without recorded settings gets the older check of
 * batch, seq_len and seed only. */
static int compare_settings(run *r, const char *path, const lmn_ckpt_state *st, lmn_err *err) {
  char *was;
  if (lmn_checkpoint_config_text(path, &was, err)) return -1;
  if (!was) return warn_if_changed(r, st), 0;
  int changes = 0, breaking = 0;
  lmn_config_compare(was, r->settings, count_change, &changes);
  if (changes) {
    note(r, "%s differs from the run that wrote %s:", LMN_SHORT(r->cfg.path), LMN_SHORT(path));
    breaking = lmn_config_compare(was, r->settings, list_change, r);
  }
  free(was);
  if (breaking && !r->o->force)
    return lmn_errf(err,
                    "%s: %d setting%s differ%s from the run that wrote %s (listed above) and change what is "
                    "computed: the resumed run would not repeat an uninterrupted one; restore them, or pass "
                    "--force to resume anyway",
                    LMN_SHORT(r->cfg.path), breaking, breaking == 1 ? "" : "s", breaking == 1 ? "s" : "",
                    LMN_SHORT(path));
  if (breaking) note(r, "note: --force: resuming with the changed settings");
  return 0;
}

/* Loads the checkpoint at path into the run, all its checks first: -1 when the file fails them, -2 when
 * the settings differ (not the file's fault: no fallback to an older one). */
static int resume_at(run *r, const char *path, lmn_err *err) {
  lmn_ckpt_state st;
  if (lmn_checkpoint_verify(r->d, path, &st, err) || check_run_state(r, path, &st, err)) return -1;
  if (compare_settings(r, path, &st, err)) return -2;
  if (lmn_checkpoint_load_state(r->net, path, &st, err)) return -1;
  r->step = st.step;
  r->stream = st.data;
  r->rng = st.rng;
  snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s", path);
  note(r, "resumed from %s at step %ld/%ld", LMN_SHORT(path), r->step, r->cfg.steps);
  return 0;
}

/* The newest checkpoint before step `below` that passes every check, into prev (*step its step); 0 none. */
static int previous_good(const run *r, long below, char *prev, size_t cap, long *step) {
  long *steps;
  size_t n;
  lmn_err ignored;
  if (lmn_checkpoint_list(r->cfg.checkpoint.dir, &steps, &n, &ignored)) return 0;
  int found = 0;
  for (size_t i = n; i-- > 0 && !found;) {
    lmn_ckpt_state st;
    if (steps[i] >= below || lmn_checkpoint_path(r->cfg.checkpoint.dir, steps[i], prev, cap, &ignored))
      continue;
    found = !lmn_checkpoint_verify(r->d, prev, &st, &ignored) && !check_run_state(r, prev, &st, &ignored);
    *step = steps[i];
  }
  free(steps);
  return found;
}

/* The newest checkpoint failed (err says why): name the previous good one, and resume from it when told. */
static int fall_back(run *r, const char *path, long step, lmn_err *err) {
  char why[sizeof err->msg], prev[LMN_CKPT_PATH_MAX], aside[LMN_CKPT_PATH_MAX + 16];
  snprintf(why, sizeof why, "%s", err->msg);
  long pstep = 0;
  if (!previous_good(r, step, prev, sizeof prev, &pstep))
    return lmn_errf(err, "%s; no earlier checkpoint in %s passes its checks", why,
                    LMN_SHORT(r->cfg.checkpoint.dir));
  if (!r->o->resume_fallback)
    return lmn_errf(err,
                    "%s; the previous checkpoint %s (step %ld) is intact: pass --resume-fallback to resume "
                    "from it",
                    why, LMN_SHORT(prev), pstep);
  note(r, "warning: %s", why);
  snprintf(aside, sizeof aside, "%s.rejected", path);
  if (r->rank == 0 && rename(path, aside) == 0)
    note(r, "moved %s aside to %s", LMN_SHORT(path), LMN_SHORT(aside));
  note(r, "falling back to %s (step %ld), as --resume-fallback asks", LMN_SHORT(prev), pstep);
  return resume_at(r, prev, err) ? -1 : 0;
}

/* A run killed between writing a checkpoint and naming it in `latest` left a newer complete one (a rename
 * is atomic and follows an fsync): resume from that, so that no step is done twice and the directory holds
 * no more than checkpoint.keep once pruned. Into path (and *step) when it passes every check. */
static void prefer_newer(const run *r, char *path, size_t cap, long *step) {
  long *steps;
  size_t n;
  lmn_err ignored;
  char newer[LMN_CKPT_PATH_MAX];
  lmn_ckpt_state st;
  if (lmn_checkpoint_list(r->cfg.checkpoint.dir, &steps, &n, &ignored)) return;
  long top = n ? steps[n - 1] : -1;
  free(steps);
  if (top <= *step || lmn_checkpoint_path(r->cfg.checkpoint.dir, top, newer, sizeof newer, &ignored) ||
      lmn_checkpoint_verify(r->d, newer, &st, &ignored) || check_run_state(r, newer, &st, &ignored))
    return;
  note(r, "note: %s is newer than the one `latest` names (step %ld): resuming from it", LMN_SHORT(newer),
       *step);
  snprintf(path, cap, "%s", newer);
  *step = top;
}

/* A fresh run must not mix its checkpoints with another run's. */
static int check_fresh_dir(const run *r, lmn_err *err) {
  long *steps;
  size_t n;
  if (lmn_checkpoint_list(r->cfg.checkpoint.dir, &steps, &n, err)) return -1;
  long newest = n ? steps[n - 1] : -1;
  free(steps);
  if (!n) return 0;
  return lmn_errf(
      err,
      "%s: already holds checkpoints (newest step-%06ld.safetensors); pass --resume to continue from "
      "it, or set another checkpoint.dir in %s",
      r->cfg.checkpoint.dir, newest, r->cfg.path);
}

static int resume_from(run *r, lmn_err *err) {
  const char *dir = r->cfg.checkpoint.dir;
  char path[LMN_CKPT_PATH_MAX];
  long step = 0;
  int found = lmn_checkpoint_latest(dir, path, sizeof path, &step, err);
  if (found < 0) return -1;
  if (!found) {
    note(r, "no checkpoint in %s to resume from: starting at step 0", LMN_SHORT(dir));
    return check_fresh_dir(r, err);
  }
  prefer_newer(r, path, sizeof path, &step);
  int rc = resume_at(r, path, err);
  return rc == -1 ? fall_back(r, path, step, err) : rc ? -1 : 0;
}

static void report_removed(void *ctx, const char *path) {
  note(ctx, "removed %s: the temporary of an interrupted checkpoint write", LMN_SHORT(path));
}

/* Before the first step: the checkpoint directory exists and takes files, and holds no temporaries. */
static int prepare_dir(run *r, lmn_err *err) {
  const char *dir = r->cfg.checkpoint.dir;
  if (lmn_checkpoint_mkdir(dir, err) || lmn_checkpoint_writable(dir, err) ||
      lmn_checkpoint_clean(dir, report_removed, r, err) < 0)
    return cfg_err(r, err);
  return 0;
}

static void report_warm(void *ctx, const char *name, const char *why) {
  note(ctx, "  %s: %s", name, why);
}

/* init_from: a fresh run starts from the tensors of another run's checkpoint that fit, saying which do not.
 */
static int warm_start(run *r, lmn_err *err) {
  int total = 0;
  note(r, "init_from %s:", LMN_SHORT(r->cfg.init_from));
  int n = lmn_checkpoint_warm_start(r->net, r->cfg.init_from, report_warm, r, &total, err);
  if (n < 0) return cfg_err(r, err);
  note(r, "init_from: %d of %d tensors loaded from %s", n, total, LMN_SHORT(r->cfg.init_from));
  return 0;
}

static int start_state(run *r, lmn_err *err) {
  lmn_data_state_init(&r->stream, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, r->cfg.seed);
  lmn_rng_seed_stream(&r->rng, r->cfg.seed, LMN_RUN_STREAM);
  r->step = 0;
  /* rank 0 alone prepares the directory (the others wait for it), writes checkpoints and the run's record;
   * every rank reads the checkpoint it resumes from (checkpoint.dir on a file system they all see) */
  if (r->rank == 0 && prepare_dir(r, err)) return -1;
  if (r->dist && r->dist->sum_doubles(&(double){0}, 1, err)) return -1;
  if (r->o->resume ? resume_from(r, err) : check_fresh_dir(r, err)) return -1;
  if (r->step == 0 && r->cfg.init_from && warm_start(r, err)) return -1;
  lmn_err perr; /* a run killed between a checkpoint and its pruning left one too many */
  if (r->rank == 0 && r->o->resume &&
      lmn_checkpoint_prune(r->cfg.checkpoint.dir, r->cfg.checkpoint.keep, r->step, &perr))
    note(r, "warning: %s", perr.msg);
  r->end = r->o->stop_at > 0 && r->o->stop_at < r->cfg.steps ? r->o->stop_at : r->cfg.steps;
  if (r->rank > 0) return 0;
  return lmn_runlog_open(&r->log, r->cfg.checkpoint.dir, r->step, r->settings, r->d->source_text, err);
}

static int check_sample(const run *r, lmn_err *err);
static int plan_buckets(run *r, lmn_err *err);

/* memory.budget: the arena planned anew for it (recompute.h); the plan is printed when anything recomputes.
 */
static int plan_memory(run *r, lmn_err *err) {
  static char from[4096 + 32];
  if (r->cfg.memory_budget > 0) {
    snprintf(from, sizeof from, "memory.budget of %s", r->cfg.path);
    if (lmn_net_plan_memory(r->net, r->cfg.memory_budget, from, err)) return -1;
  }
  if (r->rank == 0)
    lmn_print_plan(stdout, r->d, (int)r->rows, (int)r->cfg.seq_len, r->threads, r->net->recompute,
                   r->net->budget, r->net->budget_from, r->cfg.memory_budget > 0);
  return 0;
}

/* Data parallelism: every rank takes batch / ranks rows of each batch. */
static int split_batch(run *r, lmn_err *err) {
  r->dist = lmn_dist_get();
  r->rank = lmn_dist_rank();
  r->ranks = lmn_dist_size();
  r->rows = r->cfg.batch / r->ranks;
  if (r->cfg.batch % r->ranks == 0) return 0;
  return lmn_errf(err,
                  "%s: batch %ld does not split over %d ranks: give a multiple of %d (the batch is the "
                  "global one, each rank trains on batch / ranks rows)",
                  r->cfg.path, r->cfg.batch, r->ranks, r->ranks);
}

/* FNV-1a of a text. */
static uint64_t text_hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}

/* The first line of `a` that differs from `b`'s same line, into buf ("" when none does). */
static void first_difference(const char *a, const char *b, char *buf, size_t cap) {
  buf[0] = '\0';
  while (*a || *b) {
    size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
    if (la != lb || memcmp(a, b, la)) {
      snprintf(buf, cap, "'%.*s' here, '%.*s' on rank 0", (int)la, a, (int)lb, b);
      return;
    }
    a += la + (a[la] == '\n');
    b += lb + (b[lb] == '\n');
  }
}

/* Every rank must run the same network on the same settings: the network hash and the settings' hash of
 * each rank against rank 0's; a rank that differs stops the job, naming itself and the difference. */
static int check_ranks(run *r, lmn_err *err) {
  if (!r->dist) return 0;
  uint64_t mine[2] = {r->d->hash, text_hash(r->settings)}, *all = calloc((size_t)r->ranks, sizeof mine);
  if (!all) return lmn_errf(err, "rank %d: out of memory", r->rank);
  int rc = r->dist->gather(mine, all, sizeof mine, err), differs = 0;
  for (int k = 1; k < r->ranks && !rc && !differs; k++) {
    if (all[2 * k] != all[0])
      rc = lmn_errf(err,
                    "rank %d's network (hash %016" PRIx64 ") differs from rank 0's (hash %016" PRIx64
                    "): every rank must run the same network (rank %d runs '%s')",
                    k, all[2 * k], all[0], r->rank, r->d->name);
    else if (all[2 * k + 1] != all[1])
      differs = k, rc = -2;
  }
  if (rc == -2) { /* the settings differ somewhere: the differing ranks say where */
    size_t len = strlen(r->settings) + 1, len0 = r->rank == 0 ? len : 0;
    char *text = NULL, diff[512];
    rc = r->dist->bcast(&len0, sizeof len0, err);
    if (!rc && !(text = calloc(len0 + 1, 1))) rc = lmn_errf(err, "rank %d: out of memory", r->rank);
    if (!rc && r->rank == 0) memcpy(text, r->settings, len);
    if (!rc) rc = r->dist->bcast(text, len0, err);
    if (!rc) {
      first_difference(r->settings, text, diff, sizeof diff);
      if (diff[0])
        rc = lmn_errf(err, "rank %d: its configuration %s differs from rank 0's: %s", r->rank, r->cfg.path,
                      diff);
      else
        rc = lmn_errf(err,
                      "rank %d's configuration differs from rank 0's (%s): every rank must train on the same "
                      "settings",
                      differs, r->cfg.path);
    }
    free(text);
  }
  free(all);
  return rc ? -1 : 0;
}

static int setup(run *r, lmn_err *err) {
  if (lmn_config_load(r->o->config, &r->cfg, err)) return -1;
  if (!(r->settings = lmn_config_text(&r->cfg))) return lmn_errf(err, "%s: out of memory", r->cfg.path);
  if (split_batch(r, err) || check_ranks(r, err) || (r->dist && plan_buckets(r, err))) return -1;
  r->threads = lmn_threads_resolve(r->cfg.threads);
  openblas_set_num_threads(r->threads);
  /* the network's pool splits the work (lmn_pool_splits), as in an embedding program; training starts here:
   * gradients and moments are allocated before a checkpoint is resumed into them */
  if (lmn_net_create(&r->net, r->d, (int)r->rows, (int)r->cfg.seq_len, r->threads, r->cfg.seed, err) ||
      plan_memory(r, err) || lmn_net_enable_training(r->net, err))
    return cfg_err(r, err);
  r->net->no_decay = r->cfg.optimizer.no_decay;
  if (check_stages(r, err) || check_sample(r, err) || open_data(r, err) || start_state(r, err)) return -1;
  return 0;
}

static void run_free(run *r) {
  free(r->buckets);
  lmn_bpack_free(r->bpack);
  lmn_net_destroy(r->net);
  lmn_data_close(&r->data);
  lmn_tokenizer_free(&r->tok);
  lmn_config_free(&r->cfg);
  lmn_runlog_close(&r->log);
  free(r->settings);
  free(r->x);
  free(r->y);
}

/* ---- the loop ------------------------------------------------------------------------------------ */

static double flops_per_step(const lmn_net_desc *d, double B, double T) {
  return d->flops_bt * B * T + d->flops_btt * B * T * T + d->flops_b * B;
}

/* The peak behind MFU: the GEMM rate of the run's precision on every thread of the run (OpenBLAS's own
 * sgemm, or lmn_bgemm on `threads` threads at once), the best of a few medians (a single short median is at
 * the mercy of whatever else runs on the machine at that moment). */
static double peak_gemm_gflops(const run *r) {
  double best = 0.0;
  for (int i = 0; i < 3; i++) {
    double g = r->cfg.precision == LMN_PREC_BF16 ? lmn_measure_bgemm_gflops(512, 5, r->threads)
                                                 : lmn_measure_sgemm_gflops(512, 5);
    best = g > best ? g : best;
  }
  return best;
}

/* A step that ran faster than the peak says the peak was measured while the machine was busy: it is measured
 * again (some tens of ms, OpenBLAS on the run's threads as at the start) and the larger rate kept. Should the
 * step still beat it, MFU is left out of the progress lines from then on rather than shown above 100%. */
static void refresh_peak(run *r, double step_s) {
  lmn_progress *p = &r->prog;
  if (p->peak_flops <= 0.0 || step_s <= 0.0 || p->flops_per_step / step_s <= p->peak_flops) return;
  openblas_set_num_threads(r->threads);
  double g = 1e9 * peak_gemm_gflops(r) * r->ranks;
  openblas_set_num_threads(1);
  if (g > p->peak_flops) p->peak_flops = g;
  if (p->flops_per_step / step_s <= p->peak_flops) return;
  note(r, "note: step %ld ran at %.1f GFLOP/s, above the GEMM rate measured (%.1f GFLOP/s): MFU is left out",
       r->step, 1e-9 * p->flops_per_step / step_s, 1e-9 * p->peak_flops);
  p->peak_flops = 0.0;
}

/* " (4 micro-batches a step)", or "" without accumulation. */
static const char *accum_text(const lmn_train_config *c) {
  static _Thread_local char buf[48];
  if (c->accumulate <= 1) return "";
  snprintf(buf, sizeof buf, " (%ld micro-batches a step)", c->accumulate);
  return buf;
}

/* " x 2 ranks of 4 rows", or "" for one process. */
static const char *ranks_text(const run *r) {
  static _Thread_local char buf[64];
  if (r->ranks <= 1) return "";
  snprintf(buf, sizeof buf, " x %d ranks of %ld rows", r->ranks, r->rows);
  return buf;
}

/* "sgemm", or "bf16 GEMM (amx)": the GEMMs of the run and the rate MFU is against. */
static const char *gemm_text(const lmn_train_config *c) {
  static _Thread_local char buf[48];
  if (c->precision != LMN_PREC_BF16) return "sgemm";
  snprintf(buf, sizeof buf, "bf16 GEMM (%s)", lmn_bgemm_isa_name(lmn_bgemm_isa()));
  return buf;
}

static void start_progress(run *r) {
  const lmn_train_config *c = &r->cfg;
  double B = (double)c->batch * (double)c->accumulate, T = (double)c->seq_len; /* a whole step */
  const char *given =
      getenv("LMN_PEAK_GFLOPS"); /* a rate to start from instead of measuring (docs/config.md) */
  double gflops = given && strtod(given, NULL) > 0.0 ? strtod(given, NULL) : peak_gemm_gflops(r);
  /* From here on the network's pool spreads the work (modules.c splits the blocks' GEMMs into per-thread
   * tasks) and OpenBLAS runs on the calling thread: threads of its own would compete with the pool's for
   * the same cores, and its idle workers spin (sched_yield) after every threaded GEMM. */
  openblas_set_num_threads(1);
  /* with several ranks: the whole batch's tokens and FLOPs against the GEMM rate of as many processes */
  lmn_progress_init(&r->prog, c->steps, B * T, flops_per_step(r->d, B, T), gflops * 1e9 * r->ranks);
  char params[32];
  lmn_format_thousands((long long)r->d->n_train, params, sizeof params);
  note(r,
       "%s: %s trainable parameters | batch %ld x %ld%s | steps %ld..%ld of %ld | %d threads%s | %s %.1f "
       "GFLOP/s",
       r->d->name, params, c->batch, c->seq_len, accum_text(c), r->step + 1, r->end, c->steps, r->threads,
       ranks_text(r), gemm_text(c), gflops);
  if (r->bpack)
    note(r, "bf16: the weight matrices are packed into AMX tiles once per step (%.1f MiB)",
         (double)lmn_bpack_bytes(r->bpack) / (1 << 20));
}

static int enter_stage(run *r, long s, lmn_err *err) {
  long first;
  int i = lmn_config_stage_at(&r->cfg, s, &first);
  if (i == r->stage) return 0;
  if (select_stage(r, i, err)) return cfg_err(r, err);
  r->stage = i;
  if (r->cfg.n_stages > 1) {
    const lmn_stage *st = &r->cfg.stages[i];
    note(r, "stage %d/%d (steps %ld..%ld): train %s", i + 1, r->cfg.n_stages, first + 1, first + st->steps,
         st->train == LMN_TRAIN_ALL     ? "all"
         : st->train == LMN_TRAIN_EDGES ? "edges"
                                        : "named groups");
  }
  return 0;
}

static int bad_value(const run *r, long step, const char *what, double v, lmn_err *err) {
  const char *last = r->last_ckpt[0] ? r->last_ckpt : "none written";
  return lmn_errf(err, "%s: step %ld: the %s is %s; stopping without writing a checkpoint (the last one: %s)",
                  r->cfg.path, step, what, isnan(v) ? "NaN" : "infinite", last);
}

/* Loss targets of a batch's targets y: labels of a classifier, next tokens (not -1) of a language model. */
static double count_targets(const run *r, const int32_t *y, int B, int T) {
  long n = 0, rows = r->d->classes > 0 ? B : (long)B * T;
  for (long i = 0; i < rows; i++) n += y[i] >= 0;
  return (double)n;
}

static int cmp_offset(const void *a, const void *b) {
  const bucket *x = a, *y = b;
  return x->at < y->at ? -1 : x->at > y->at;
}

/* The buckets: every trainable tensor in buffer order, cut after LMN_BUCKET_FLOATS; a bucket is ready after
 * the last backward step that finishes one of its gradients. */
static int plan_buckets(run *r, lmn_err *err) {
  const lmn_net_desc *d = r->d;
  bucket *t = calloc((size_t)d->n_params + 1, sizeof *t);
  r->buckets = calloc((size_t)d->n_params + 1, sizeof *r->buckets);
  if (!t || !r->buckets) return free(t), lmn_errf(err, "rank %d: out of memory", r->rank);
  int n = 0;
  for (int i = 0; i < d->n_params; i++) /* the tensors, by offset */
    if (d->params[i].trainable)
      t[n++] = (bucket){d->params[i].offset, lmn_param_numel(&d->params[i]),
                        d->grad_done ? d->grad_done[i] : 0, 0};
  qsort(t, (size_t)n, sizeof *t, cmp_offset);
  for (int i = 0; i < n; i++) {
    bucket *b = r->n_buckets ? &r->buckets[r->n_buckets - 1] : NULL;
    if (!b || b->n >= LMN_BUCKET_FLOATS || t[i].at != b->at + b->n) {
      r->buckets[r->n_buckets++] = t[i];
      continue;
    }
    b->n += t[i].n;
    if (t[i].ready > b->ready) b->ready = t[i].ready;
  }
  free(t);
  r->overlap = d->grad_done != NULL && r->cfg.accumulate == 1;
  return 0;
}

/* Sends every bucket not yet sent that is ready after backward step `step` (INT_MAX: all), each multiplied by
 * r->scale first, and lets the sums in flight move on. The hook of the backward pass (net->on_grads). */
static void send_ready(void *ctx, int step) {
  run *r = ctx;
  for (int i = 0; i < r->n_buckets && !r->send_failed; i++) {
    bucket *b = &r->buckets[i];
    if (b->sent || b->ready > step) continue;
    float *g = r->net->grads + b->at, s = (float)r->scale;
    for (size_t k = 0; k < b->n; k++) g[k] *= s;
    r->send_failed = r->dist->sum_start(g, b->n, &r->send_err) != 0;
    b->sent = 1;
  }
  if (!r->send_failed) r->send_failed = r->dist->progress(&r->send_err) != 0;
}

/* Every bucket unsent, each to be multiplied by the rank's n loss targets as it goes. */
static void reset_buckets(run *r, double n) {
  for (int i = 0; i < r->n_buckets; i++) r->buckets[i].sent = 0;
  r->scale = n;
}

/* Before a backward pass whose buckets go as they become ready (r->overlap). */
static void start_sending(run *r, double n) {
  reset_buckets(r, n);
  r->net->on_grads = send_ready;
  r->net->on_grads_ctx = r;
}

/* Data parallelism after the backward pass: the gradients (a mean over this rank's acc->seen targets) and the
 * loss sum become those of the whole batch, the mean over every rank's targets: the sum over the ranks of
 * seen_r * g_r, divided by the targets of all. With r->overlap the buckets went during the backward pass;
 * the rest go now. Frozen tensors are not in the trainable prefix and never travel. */
static int reduce_ranks(run *r, lmn_accum *acc, double *sum, lmn_err *err) {
  r->net->on_grads = NULL;
  if (!r->overlap) reset_buckets(r, acc->seen);
  send_ready(r, INT_MAX);
  if (r->send_failed) return *err = r->send_err, -1;
  double v[3] = {acc->seen, *sum, r->o->interrupt && *r->o->interrupt};
  if (r->dist->sum_finish(err) || r->dist->sum_doubles(v, 3, err)) return -1;
  r->stop_all = v[2] > 0;
  if (v[0] > 0) lmn_net_scale_grads(r->net, 1.0 / v[0]);
  acc->seen = v[0];
  *sum = v[1];
  return 0;
}

/* One optimizer step (0-based s); *loss receives the batch loss: the mean over every loss target of its
 * micro-batches, whose gradients accumulate as one batch's (lmn_accum). */
/* bf16 on AMX: the weights packed for the products while they hold still (fixed = 1: packed from their
 * current values and in use; 0: no longer in use, before they change). */
static void weights_fixed(run *r, int fixed) {
  if (!r->bpack) return;
  if (fixed) lmn_bpack_refresh(r->bpack, r->net->pool);
  lmn_bpack_use(fixed ? r->bpack : NULL);
}

static int train_step(run *r, long s, float *loss, double *lr, double *norm, lmn_err *err) {
  const lmn_train_config *c = &r->cfg;
  int B = (int)r->rows, T = (int)c->seq_len;
  /* this rank's rows of each batch (all of them for one process) */
  const int32_t *x = r->x + (size_t)r->rank * B * T,
                *y = r->y + (size_t)r->rank * B * (r->d->classes > 0 ? 1 : T);
  if (enter_stage(r, s, err)) return -1;
  *lr = lmn_lr_at(c, s);
  if (lmn_net_zero_grad(r->net)) return lmn_errf(err, "%s: out of memory for the gradients", r->d->name);
  lmn_accum acc = {0};
  double sum = 0.0;
  weights_fixed(r, 1); /* from here to the update the weights hold still */
  for (long m = 0; m < c->accumulate; m++) {
    if (lmn_data_next(&r->data, &r->stream, c->batch, T, r->x, r->y, err)) return -1;
    double n = count_targets(r, y, B, T);
    float l = r->d->forward(r->net, x, y, B, T, 1);
    if (!isfinite(l)) return bad_value(r, s + 1, "loss", l, err);
    lmn_accum_before(r->net, &acc, n);
    if (r->dist && r->overlap) start_sending(r, n); /* one micro-batch: its gradients are the step's */
    r->d->backward(r->net, x, B, T);
    lmn_accum_after(r->net, &acc, n);
    sum += (double)l * n;
  }
  weights_fixed(r, 0);
  if (r->dist && reduce_ranks(r, &acc, &sum, err)) return -1;
  *loss = acc.seen > 0 ? (float)(sum / acc.seen) : 0.0f;
  *norm = lmn_net_update(r->net, (float)*lr, (float)c->optimizer.betas[0], (float)c->optimizer.betas[1],
                         (float)c->optimizer.eps, (float)c->optimizer.weight_decay, (float)c->grad_clip);
  if (!isfinite(*norm)) return bad_value(r, s + 1, "gradient norm", *norm, err);
  r->step = s + 1;
  return 0;
}

/* A classifier's validation: "val step 100/200 | val loss 0.4312 | accuracy 87.5% (35/40) | 0.2 s". */
static int evaluate_classes(run *r, double t0, double *loss, lmn_err *err) {
  const lmn_train_config *c = &r->cfg;
  lmn_class_eval ev;
  double part[3]; /* several ranks: each its share of pieces of its rows, the sums added over the ranks */
  if (!r->dist ? lmn_eval_classes(r->net, &r->data, c->eval.batches, c->batch, c->seq_len, &ev, err)
               : lmn_eval_classes_part(r->net, &r->data, c->eval.batches, c->batch, c->seq_len, r->rank,
                                       r->ranks, part, err) ||
                     r->dist->sum_doubles(part, 3, err))
    return -1;
  if (r->dist) lmn_class_eval_of(part, &ev);
  *loss = ev.loss;
  note(r, "val step %ld/%ld | val loss %.4f | accuracy %.1f%% (%ld/%ld) | %.1f s", r->step, c->steps, ev.loss,
       100.0 * ev.accuracy, ev.correct, ev.examples, lmn_clock_s() - t0);
  lmn_runlog_eval(&r->log, r->step, ev.loss, ev.accuracy, lmn_clock_s() - r->started);
  return 0;
}

/* The validation loss of the run: with several ranks, each evaluates its share of pieces of its own rows, and
 * the sums are added over the ranks. */
static int eval_loss(run *r, double *loss, lmn_err *err) {
  const lmn_train_config *c = &r->cfg;
  if (!r->dist) return lmn_eval_loss(r->net, &r->data, c->eval.batches, c->batch, c->seq_len, loss, err);
  double part[3];
  if (eval_pieces(r->net, &r->data, c->eval.batches, c->batch, r->rows, c->seq_len, r->rank, r->ranks, part,
                  err) ||
      r->dist->sum_doubles(part, 3, err))
    return -1;
  *loss = eval_mean(part, r->rows);
  return 0;
}

static int evaluate(run *r, lmn_err *err) {
  double t0 = lmn_clock_s(), loss;
  weights_fixed(r, 1);
  int rc = r->d->classes > 0 ? evaluate_classes(r, t0, &loss, err) : eval_loss(r, &loss, err);
  weights_fixed(r, 0);
  if (rc) return -1;
  if (r->d->classes == 0) {
    if (log_of(r)) lmn_progress_val(&r->prog, log_of(r), r->step, loss, lmn_clock_s() - t0);
    lmn_runlog_eval(&r->log, r->step, loss, -1.0, lmn_clock_s() - r->started);
  }
  if (r->o->hooks.on_eval) r->o->hooks.on_eval(r->o->hooks.ctx, r->step, loss);
  return 0;
}

static int save(run *r, lmn_err *err) {
  const lmn_train_config *c = &r->cfg;
  const char *dir = c->checkpoint.dir;
  char path[LMN_CKPT_PATH_MAX];
  if (r->rank > 0) { /* rank 0 writes the checkpoints: every rank holds the same weights and data position */
    r->saved_at = lmn_clock_s();
    return 0;
  }
  if (lmn_checkpoint_mkdir(dir, err) || lmn_checkpoint_path(dir, r->step, path, sizeof path, err)) return -1;
  lmn_ckpt_state st = {.step = r->step,
                       .has_run = 1,
                       .data = r->stream,
                       .rng = r->rng,
                       .batch = c->batch,
                       .seq_len = c->seq_len,
                       .seed = c->seed};
  snprintf(st.config, sizeof st.config, "%s", c->path);
  st.config_text = r->settings;
  if (lmn_checkpoint_save(r->net, path, &st, err) || lmn_checkpoint_write_latest(dir, r->step, err))
    return -1;
  snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s", path);
  r->saved_at = lmn_clock_s();
  lmn_err perr;
  if (lmn_checkpoint_prune(dir, c->checkpoint.keep, r->step, &perr)) note(r, "warning: %s", perr.msg);
  note(r, "checkpoint %s", path);
  return 0;
}

static int due(long step, long every, long end) {
  return step == end || (every > 0 && step % every == 0);
}

/* Ctrl-C (or SIGTERM) arrived. With several ranks, only what they agreed at the last gradient sum: a rank
 * that stopped a step before the others would leave them waiting for it. */
static int interrupted(const run *r) {
  if (r->dist) return r->stop_all;
  return r->o->interrupt && *r->o->interrupt;
}

/* sample.every on a network that generates no text is refused before the first step. */
static int check_sample(const run *r, lmn_err *err) {
  if (r->cfg.sample.every == 0 || (r->d->classes == 0 && r->d->decode && r->d->cache_floats)) return 0;
  return lmn_errf(err, "%s: sample.every: network '%s' %s; leave 'sample' out", r->cfg.path, r->d->name,
                  r->d->classes > 0 ? "is a classifier and generates no text" : "cannot generate text");
}

static int put_bytes(void *ctx, int32_t id, const char *bytes, size_t len) {
  (void)id;
  return fwrite(bytes, 1, len, ctx) == len ? 0 : -1;
}

/* sample: text from the current weights, after sample.prompt, on the log and into the run's record. Its
 * own KV caches and random stream (seed and step): the training's state and numbers are untouched. */
static int sample(run *r, lmn_err *err) {
  const lmn_train_config *c = &r->cfg;
  lmn_sample_opts so = {(float)c->sample.temperature, (int)c->sample.top_k, (float)c->sample.top_p};
  const char *prompt = c->sample.prompt ? c->sample.prompt : "";
  char *text = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&text, &len);
  if (!m) return lmn_errf(err, "%s: out of memory for a sample", r->d->name);
  int rc = lmn_generate_stream(r->net, &r->tok, prompt, strlen(prompt), (int)c->sample.tokens, &so,
                               c->seed ^ (uint64_t)r->step * 0x9e3779b97f4a7c15ULL, put_bytes, m, NULL, err);
  if (fclose(m) != 0 && !rc) rc = lmn_errf(err, "%s: out of memory for a sample", r->d->name);
  if (!rc) {
    note(r, "sample step %ld/%ld | %s%s", r->step, c->steps, prompt, text);
    lmn_runlog_sample(&r->log, r->step, prompt, text, lmn_clock_s() - r->started);
  }
  free(text);
  return rc;
}

/* checkpoint.minutes of training have passed since the last checkpoint (or the start). */
static int time_to_save(const run *r) {
  return r->cfg.checkpoint.minutes > 0 && lmn_clock_s() - r->saved_at >= 60.0 * r->cfg.checkpoint.minutes;
}

/* The run was interrupted after step r->step: a checkpoint (unless the step just wrote one), then 1. */
static int stop_interrupted(run *r, int saved, lmn_err *err) {
  if (!saved && save(r, err)) return -1;
  note(r, "interrupted after step %ld/%ld: %s holds the run; continue with --resume", r->step, r->cfg.steps,
       LMN_SHORT(r->last_ckpt));
  return 1;
}

static int loop(run *r, lmn_err *err) {
  const lmn_train_config *c = &r->cfg;
  r->stage = -1;
  r->saved_at = r->started = lmn_clock_s();
  if (interrupted(r)) return note(r, "interrupted before the first step: nothing to save"), 1;
  for (long s = r->step; s < r->end; s++) {
    float loss = 0;
    double lr = 0, norm = 0, t0 = lmn_clock_s();
    if (r->dist) r->dist->wait_s(); /* count the step's waits only */
    if (train_step(r, s, &loss, &lr, &norm, err)) return -1;
    double dt = lmn_clock_s() - t0;
    if (r->dist) r->waited += r->dist->wait_s(), r->stepped += dt;
    if (r->o->hooks.on_step) r->o->hooks.on_step(r->o->hooks.ctx, r->step, loss, lr, norm);
    double tokens = (double)c->batch * (double)c->accumulate * (double)c->seq_len; /* a whole step */
    lmn_runlog_step(&r->log, r->step, loss, lr, norm, dt > 0 ? tokens / dt : 0.0, lmn_clock_s() - r->started);
    if (log_of(r) && due(r->step, c->log.every, r->end)) {
      refresh_peak(r, dt);
      lmn_progress_step(&r->prog, log_of(r), r->step, loss, lr, norm, dt);
    }
    if (due(r->step, c->eval.every, r->end) && !interrupted(r) && evaluate(r, err)) return -1;
    if (r->rank == 0 && c->sample.every > 0 && due(r->step, c->sample.every, r->end) && !interrupted(r) &&
        sample(r, err))
      return -1;
    int saved = due(r->step, c->checkpoint.every, r->end) || time_to_save(r);
    if (saved && save(r, err)) return -1;
    if (interrupted(r) && r->step < r->end) return stop_interrupted(r, saved, err);
  }
  return 0;
}

int lmn_train(const lmn_net_desc *desc, const lmn_train_opts *opts, lmn_err *err) {
  if (!desc || !opts || !opts->config) return lmn_errf(err, "train: no network or config given");
  run r;
  memset(&r, 0, sizeof r);
  r.d = desc;
  r.o = opts;
  lmn_precision before = lmn_gemm_precision();
  int rc = setup(&r, err);
  if (!rc) lmn_set_gemm_precision((lmn_precision)r.cfg.precision); /* for this run only: restored below */
  if (!rc && r.cfg.precision == LMN_PREC_BF16) r.bpack = lmn_net_bpack(r.net);
  if (!rc && r.step >= r.end) {
    note(&r, "%s: nothing to do: the run is at step %ld of %ld", r.cfg.path, r.step, r.cfg.steps);
  } else if (!rc) {
    start_progress(&r);
    rc = loop(&r, err);
    if (rc == 0 && r.dist && r.stepped > 0)
      note(&r, "%d ranks: %.2f s of %.2f s of steps waiting for the gradient sums (%.1f%%, rank 0)", r.ranks,
           r.waited, r.stepped, 100.0 * r.waited / r.stepped);
    openblas_set_num_threads(r.threads); /* as setup left it, for whatever the caller runs next */
  }
  lmn_bpack_use(NULL); /* an error may have left the set in use */
  run_free(&r);
  lmn_set_gemm_precision(before);
  return rc;
}
