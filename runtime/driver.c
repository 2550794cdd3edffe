/* driver.c: lmn_main, the command line of every compiled network: option parsing and usage, and the
 * `info`, `train`, `eval`, `predict`, `generate`, `chat` and `serve` subcommands on top of lmn_train,
 * lmn_eval_loss (lmn_eval_classes for a classification network), the checkpoint functions,
 * lmn_generate_stream, the conversation API (chat.c, repl.c) and the HTTP server (serve.c). */
#include "driver.h"

#include <cblas.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "bgemm.h"
#include "chat.h"
#include "classify.h"
#include "dump.h"
#include "lmn_file.h"
#include "progress.h"
#include "qnet.h"
#include "recompute.h"
#include "repl.h"
#include "runlog.h"
#include "serve.h"
#include "tokenizer_bpe.h"

/* ---- options ------------------------------------------------------------------------------------- */

typedef enum cmd {
  CMD_INFO = 0,
  CMD_TRAIN,
  CMD_EVAL,
  CMD_PREDICT,
  CMD_GENERATE,
  CMD_DUMP,
  CMD_EXPORT,
  CMD_PLOT,
  CMD_CHAT,
  CMD_SERVE,
  CMD_COUNT
} cmd;
static const char *const cmd_names[CMD_COUNT] = {"info",       "train",  "eval", "predict", "generate",
                                                 "dump-state", "export", "plot", "chat",    "serve"};

typedef struct args {
  const char *config, *ckpt, *prompt, *out, *model_dir, *file, *system, *stop, *host, *api_key;
  long resume, resume_fallback, force, json, stop_at, n, top_k, batch, seq, threads, chat, exact, all;
  long ctx, port, parallel, queue, timeout;
  double temperature, top_p;
  uint64_t seed;
} args;

typedef enum opt_kind { OPT_FLAG, OPT_STR, OPT_LONG, OPT_DOUBLE, OPT_U64 } opt_kind;

typedef struct opt {
  const char *name; /* long name without "--" */
  char short_name;  /* or 0 */
  opt_kind kind;
  size_t offset; /* into args */
  double lo, hi; /* range of numbers */
  unsigned cmds; /* bit per cmd */
} opt;

#define BIT(c) (1u << (c))
#define SAMPLING (BIT(CMD_GENERATE) | BIT(CMD_CHAT))
#define WEIGHTS (BIT(CMD_GENERATE) | BIT(CMD_CHAT) | BIT(CMD_SERVE))
#define OFF(f) offsetof(args, f)
static const opt opts[] = {
    {"config", 'c', OPT_STR, OFF(config), 0, 0,
     BIT(CMD_INFO) | BIT(CMD_TRAIN) | BIT(CMD_EVAL) | BIT(CMD_PREDICT) | WEIGHTS | BIT(CMD_DUMP) |
         BIT(CMD_EXPORT) | BIT(CMD_PLOT)},
    {"file", 'f', OPT_STR, OFF(file), 0, 0, BIT(CMD_PREDICT) | SAMPLING},
    {"json", 0, OPT_FLAG, OFF(json), 0, 0, BIT(CMD_PREDICT)},
    {"resume", 0, OPT_FLAG, OFF(resume), 0, 0, BIT(CMD_TRAIN)},
    {"resume-fallback", 0, OPT_FLAG, OFF(resume_fallback), 0, 0, BIT(CMD_TRAIN)},
    {"force", 0, OPT_FLAG, OFF(force), 0, 0, BIT(CMD_TRAIN)},
    {"stop-at", 0, OPT_LONG, OFF(stop_at), 1, 1e15, BIT(CMD_TRAIN)},
    {"ckpt", 0, OPT_STR, OFF(ckpt), 0, 0,
     BIT(CMD_EVAL) | BIT(CMD_PREDICT) | WEIGHTS | BIT(CMD_DUMP) | BIT(CMD_EXPORT)},
    {"out", 'o', OPT_STR, OFF(out), 0, 0, BIT(CMD_DUMP) | BIT(CMD_EXPORT)},
    {"all", 0, OPT_FLAG, OFF(all), 0, 0, BIT(CMD_EXPORT)},
    {"prompt", 'p', OPT_STR, OFF(prompt), 0, 0, BIT(CMD_GENERATE)},
    {"chat", 0, OPT_FLAG, OFF(chat), 0, 0, BIT(CMD_GENERATE)},
    {"exact", 0, OPT_FLAG, OFF(exact), 0, 0, WEIGHTS},
    {"tokens", 'n', OPT_LONG, OFF(n), 0, 1 << 30, SAMPLING},
    {"temperature", 't', OPT_DOUBLE, OFF(temperature), 0, 1e6, SAMPLING},
    {"top-k", 'k', OPT_LONG, OFF(top_k), 0, 1 << 30, SAMPLING},
    {"top-p", 0, OPT_DOUBLE, OFF(top_p), 0, 1, SAMPLING},
    {"seed", 's', OPT_U64, OFF(seed), 0, 0, SAMPLING},
    {"system", 0, OPT_STR, OFF(system), 0, 0, BIT(CMD_CHAT)},
    {"stop", 0, OPT_STR, OFF(stop), 0, 0, SAMPLING},
    {"ctx", 0, OPT_LONG, OFF(ctx), 1, 1 << 24, BIT(CMD_CHAT) | BIT(CMD_SERVE)},
    {"host", 0, OPT_STR, OFF(host), 0, 0, BIT(CMD_SERVE)},
    {"port", 0, OPT_LONG, OFF(port), 0, 65535, BIT(CMD_SERVE)},
    {"parallel", 0, OPT_LONG, OFF(parallel), 1, 256, BIT(CMD_SERVE)},
    {"queue", 0, OPT_LONG, OFF(queue), 0, 100000, BIT(CMD_SERVE)},
    {"timeout", 0, OPT_LONG, OFF(timeout), 1, 86400, BIT(CMD_SERVE)},
    {"api-key", 0, OPT_STR, OFF(api_key), 0, 0, BIT(CMD_SERVE)},
    {"threads", 0, OPT_LONG, OFF(threads), 0, 4096,
     BIT(CMD_INFO) | BIT(CMD_EVAL) | BIT(CMD_PREDICT) | WEIGHTS | BIT(CMD_DUMP) | BIT(CMD_EXPORT)},
    {"model-dir", 0, OPT_STR, OFF(model_dir), 0, 0,
     BIT(CMD_INFO) | BIT(CMD_TRAIN) | BIT(CMD_EVAL) | BIT(CMD_PREDICT) | WEIGHTS | BIT(CMD_DUMP) |
         BIT(CMD_EXPORT)},
    {"batch", 'b', OPT_LONG, OFF(batch), 1, 1 << 20, BIT(CMD_INFO)},
    {"seq", 0, OPT_LONG, OFF(seq), 1, 1 << 24, BIT(CMD_INFO)},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

/* Each command's synopsis and description, in cmd order (usage prints them all, `NAME CMD --help` one). */
static const char *const cmd_help[] = {
    "  info      [--batch B] [--seq T] [--threads N] [-c CONFIG.yaml]\n"
    "            parameters, FLOPs per token and memory at batch B x T (default: the config's, else 8 x "
    "128)\n"
    "            with the memory plan of its memory.budget, the tensors\n",
    "  train     -c CONFIG.yaml [--resume] [--resume-fallback] [--force] [--stop-at STEP]\n"
    "            train as the YAML config says (every key: docs/config.md); --resume continues from the\n"
    "            newest checkpoint of checkpoint.dir (or starts at step 0 when there is none); settings\n"
    "            that differ from the checkpoint's run are listed, and those that change the computation\n"
    "            refused unless --force; --resume-fallback (implies --resume): when that checkpoint is\n"
    "            corrupt, from the newest intact one before it; --stop-at ends (with a checkpoint)\n"
    "            after STEP of the config's steps. Ctrl-C (SIGINT) or SIGTERM: a checkpoint after the\n"
    "            step in progress, then exit 130 (143); a second one exits at once\n",
    "  eval      -c CONFIG.yaml [--ckpt PATH] [--threads N]\n"
    "            validation loss and perplexity (a classifier: loss, accuracy, per-class precision,\n"
    "            recall and F1, the confusion matrix) of PATH (default: the config's newest checkpoint)\n",
    "  predict   -c CONFIG.yaml [--ckpt PATH] [-f FILE] [--json] [--threads N]\n"
    "            a classifier labels each line of FILE (default: standard input): TEXT, or LABEL<TAB>TEXT\n"
    "            (then accuracy and the per-class report on stderr); out: LABEL<TAB>probabilities per\n"
    "            line, or JSON lines {\"line\", \"label\", \"probs\", \"true\"} with --json\n",
    "  generate  -p TEXT | -f FILE [--chat] [-n N] [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
    "            [--stop STR] [--ckpt PATH | -c CONFIG.yaml] [--threads N] [--exact]\n"
    "            sample N tokens (default 256) after TEXT (-p - or -f FILE: the text of standard input or\n"
    "            FILE); defaults T 0.8, K 40, P 0.95, S 1337; T 0 is greedy; --chat: TEXT as one user turn\n"
    "            in the model's chat template; --stop: end before STR; weights from PATH or the config's\n"
    "            newest checkpoint; --exact: frozen weights kept in a file format meet f32 activations\n"
    "            (default: 8-bit ones, faster)\n",
    "  dump-state -c CONFIG.yaml [--ckpt PATH] -o FILE [--threads N]\n"
    "            every tensor and the first training batch to FILE (safetensors) for the PyTorch twin\n",
    "  export    -c CONFIG.yaml [--ckpt PATH] [--all] -o DIR [--threads N]\n"
    "            the trained network into DIR for use outside lmnet: model.safetensors (the weights under\n"
    "            their .lmn names; with --all also the frozen ones read from model files), network.json,\n"
    "            network.lmn, test_data.safetensors (a sequence and our logits for it, to check against)\n",
    "  plot      -c CONFIG.yaml\n"
    "            draw the run's training and validation loss (checkpoint.dir/metrics.jsonl, written by\n"
    "            train) into checkpoint.dir/loss.png with gnuplot\n",
    "  chat      [--system TEXT] [-f FILE] [-n N] [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
    "            [--stop STR] [--ctx N] [--ckpt PATH | -c CONFIG.yaml] [--threads N] [--exact]\n"
    "            a conversation in the model's chat template (ChatML, Llama-3, Gemma), one user turn per\n"
    "            line of standard input or FILE (a line ending in \\ goes on); replies of at most N\n"
    "            tokens (default 512) print as they come, earlier turns stay in the KV caches of --ctx\n"
    "            positions (default: the context, at most 4096); /reset starts over, /save FILE writes\n"
    "            the conversation as JSON, /quit ends; Ctrl-C stops a reply\n",
    "  serve     [--port P] [--host ADDR] [--parallel N] [--queue Q] [--ctx N] [--api-key KEY]\n"
    "            [--timeout S] [--ckpt PATH | -c CONFIG.yaml] [--threads N] [--exact]\n"
    "            an OpenAI-compatible HTTP API (docs/serve.md) on ADDR:P (default 127.0.0.1:8080; port 0:\n"
    "            any free one): /v1/completions, /v1/chat/completions, /v1/models, /health, /v1/classify;\n"
    "            N slots (default 2) of --ctx positions generate at once, Q more requests (default 16)\n"
    "            wait, then 503; idle connections close after S seconds (default 10); SIGINT stops\n",
};
_Static_assert(sizeof cmd_help / sizeof *cmd_help == CMD_COUNT, "a help text for every command");

static const char common_help[] =
    "every command: --model-dir DIR  model files from DIR (by their base names) instead of the paths\n"
    "            compiled in (beside the executable, then from the working directory); as $LMN_MODEL_DIR\n"
    "exit status: 0 success, 1 failure, 2 usage error, 128 + signal after an interrupted train\n";

static void usage(FILE *f, const char *prog, const lmn_net_desc *d) {
  fprintf(f, "usage: %s <command> [options]        network '%s' compiled from %s\ncommands:\n", prog, d->name,
          d->source ? d->source : "?");
  for (int c = 0; c < CMD_COUNT; c++) fputs(cmd_help[c], f);
  fputs(common_help, f);
}

static void command_usage(FILE *f, const char *prog, cmd c) {
  fprintf(f, "usage: %s %s [options]\n", prog, cmd_names[c]);
  fputs(cmd_help[c], f);
  fputs(common_help, f);
}

static int usage_error(const char *prog, const lmn_net_desc *d, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int usage_error(const char *prog, const lmn_net_desc *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: error: ", prog);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  usage(stderr, prog, d);
  return 2;
}

static const opt *find_opt(const char *arg, cmd c, const char **value) {
  *value = NULL;
  for (size_t i = 0; i < N_OPTS; i++) {
    const opt *o = &opts[i];
    if (!(o->cmds & BIT(c))) continue;
    if (arg[1] == '-') {
      size_t n = strlen(o->name);
      if (strncmp(arg + 2, o->name, n) != 0 || (arg[2 + n] && arg[2 + n] != '=')) continue;
      if (arg[2 + n] == '=') *value = arg + 3 + n;
      return o;
    }
    if (o->short_name && arg[1] == o->short_name && arg[2] == '\0') return o;
  }
  return NULL;
}

/* Parses a number option's value into args; 0 or -1 (bad value). */
static int set_number(const opt *o, const char *v, args *a) {
  char *end;
  errno = 0;
  if (!*v || (o->kind != OPT_DOUBLE && *v == '-')) return -1;
  if (o->kind == OPT_U64) {
    unsigned long long u = strtoull(v, &end, 10);
    if (errno || *end) return -1;
    *(uint64_t *)((char *)a + o->offset) = (uint64_t)u;
    return 0;
  }
  double x = o->kind == OPT_LONG ? (double)strtol(v, &end, 10) : strtod(v, &end);
  if (errno || *end || !(x >= o->lo && x <= o->hi)) return -1;
  if (o->kind == OPT_LONG)
    *(long *)((char *)a + o->offset) = (long)x;
  else
    *(double *)((char *)a + o->offset) = x;
  return 0;
}

static const char *range_text(const opt *o, char *buf, size_t cap) {
  if (o->kind == OPT_U64) return "an unsigned whole number";
  snprintf(buf, cap, "%s in [%.15g, %.15g]", o->kind == OPT_LONG ? "a whole number" : "a number", o->lo,
           o->hi);
  return buf;
}

/* An option cmd c does not take: the nearest one it does take, when one is near. */
static int unknown_option(const char *prog, const lmn_net_desc *d, cmd c, const char *arg) {
  const char *names[N_OPTS];
  int n = 0;
  for (size_t i = 0; i < N_OPTS; i++)
    if (opts[i].cmds & BIT(c)) names[n++] = opts[i].name;
  const char *name = arg + (arg[1] == '-' ? 2 : 1), *eq = strchr(name, '=');
  const char *near = lmn_nearest(name, eq ? (size_t)(eq - name) : strlen(name), names, n);
  if (near)
    return usage_error(prog, d, "unknown option '%s' for '%s'; did you mean '--%s'?", arg, cmd_names[c],
                       near);
  return usage_error(prog, d, "unknown option '%s' for '%s'", arg, cmd_names[c]);
}

/* Fills a from argv[2..]; returns 0, or an exit status (2 usage error, 0 after --help). */
static int parse_args(int argc, char **argv, cmd c, args *a, const lmn_net_desc *d, int *done) {
  const char *prog = argv[0];
  *done = 0;
  for (int i = 2; i < argc; i++) {
    const char *arg = argv[i], *v;
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) return *done = 1, command_usage(stdout, prog, c), 0;
    const opt *o = arg[0] == '-' && arg[1] ? find_opt(arg, c, &v) : NULL;
    if (!o && arg[0] == '-' && arg[1]) return *done = 1, unknown_option(prog, d, c, arg);
    if (!o) return *done = 1, usage_error(prog, d, "unexpected argument '%s' for '%s'", arg, cmd_names[c]);
    if (o->kind == OPT_FLAG) {
      if (v) return *done = 1, usage_error(prog, d, "option '%s' takes no value", arg);
      *(long *)((char *)a + o->offset) = 1;
      continue;
    }
    if (!v && i + 1 >= argc) return *done = 1, usage_error(prog, d, "option '%s' needs a value", arg);
    if (!v) v = argv[++i];
    if (o->kind == OPT_STR) {
      *(const char **)((char *)a + o->offset) = v;
    } else if (set_number(o, v, a)) {
      char buf[96];
      return *done = 1,
             usage_error(prog, d, "option '%s': '%s' is not %s", arg, v, range_text(o, buf, sizeof buf));
    }
  }
  return 0;
}

/* ---- info ---------------------------------------------------------------------------------------- */

/* "12.3 M" style: value with k/M/G/T/P. */
static void si(double v, const char *unit, char *buf, size_t cap) {
  static const char *const pre[] = {"", "k", "M", "G", "T", "P", "E"};
  int k = 0;
  while (fabs(v) >= 1000.0 && k < 6) v /= 1000.0, k++;
  snprintf(buf, cap, "%.3g %s%s", v, pre[k], unit);
}

static void info_params(const lmn_net_desc *d) {
  size_t total = 0, train = 0, file = 0;
  for (int i = 0; i < d->n_params; i++) {
    total += lmn_param_numel(&d->params[i]);
    if (d->params[i].trainable)
      train += lmn_param_numel(&d->params[i]);
    else if (d->params[i].from_file)
      file += lmn_param_numel(&d->params[i]);
  }
  char t[32], tr[32], fr[32], fi[32];
  lmn_format_thousands((long long)total, t, sizeof t);
  lmn_format_thousands((long long)train, tr, sizeof tr);
  lmn_format_thousands((long long)(total - train), fr, sizeof fr);
  lmn_format_thousands((long long)file, fi, sizeof fi);
  printf("parameters: %s total | %s trainable | %s frozen (%s from model files)\n", t, tr, fr, fi);
}

/* The memory plan for the config's memory.budget (cfg: -c, or NULL), else the default, and the memory line
 * with it. */
static int info_memory(const lmn_net_desc *d, const lmn_train_config *cfg, long B, long T, int threads,
                       double kept, size_t *arena_out) {
  double budget = cfg ? cfg->memory_budget : 0;
  char from[4096 + 32] = LMN_DEFAULT_BUDGET_FROM;
  if (budget > 0) snprintf(from, sizeof from, "memory.budget of %s", cfg->path);
  char *rc = calloc((size_t)(d->arena ? d->arena->n_keep : 0) + 1, 1);
  if (!rc) return fprintf(stderr, "%s: out of memory\n", d->name), -1;
  size_t arena = d->arena_floats ? lmn_desc_plan(d, (int)B, (int)T, threads, budget, kept, rc) : 0;
  lmn_print_plan(stdout, d, (int)B, (int)T, threads, rc, budget, from, budget > 0);
  lmn_print_memory(stdout, B, T, threads, lmn_desc_f32_floats(d), d->n_train, arena);
  free(rc);
  *arena_out = arena;
  return 0;
}

static void info_cost(const lmn_net_desc *d, long B, long T) {
  double b = (double)B, t = (double)T, tok = b * t;
  double fwd = (d->fwd_bt * tok + d->fwd_btt * tok * t + d->fwd_b * b) / tok;
  double trn = (d->flops_bt * tok + d->flops_btt * tok * t + d->flops_b * b) / tok;
  char f1[32], f2[32];
  si(fwd, "FLOP", f1, sizeof f1);
  si(trn, "FLOP", f2, sizeof f2);
  printf("FLOPs per token at batch %ld x %ld: forward %s | training step (forward + backward) %s\n", B, T, f1,
         f2);
}

/* The kept bytes in all (per type into kept), -1 when a file could not be read (err says why). */
static double kept_total(const lmn_net_desc *d, double kept[64], lmn_err *err) {
  double total = 0;
  if (lmn_desc_kept_bytes(d, getenv("LMN_MODEL_DIR"), kept, err) != 0) return -1;
  for (int k = 0; k < 64; k++) total += kept[k];
  return total;
}

static const char *init_name(const lmn_param_info *p) {
  if (p->from_file) return "model file";
  return p->init == LMN_INIT_ZERO ? "init zero" : p->init == LMN_INIT_ONE ? "init one" : "init normal";
}

static void info_table(const lmn_net_desc *d) {
  int w = 6;
  for (int i = 0; i < d->n_params; i++) {
    int n = (int)strlen(d->params[i].name);
    if (n > w) w = n;
  }
  printf("%-*s  %-14s %12s  %-9s  %-11s  %s\n", w, "tensor", "shape", "parameters", "kind", "source",
         "owner");
  for (int i = 0; i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    char shape[48], cnt[32], owner[96];
    if (p->cols)
      snprintf(shape, sizeof shape, "[%ld, %ld]", p->rows, p->cols);
    else
      snprintf(shape, sizeof shape, "[%ld]", p->rows);
    lmn_format_thousands((long long)lmn_param_numel(p), cnt, sizeof cnt);
    if (p->edge >= 0)
      snprintf(owner, sizeof owner, "%s (edge %d)", p->owner ? p->owner : "?", p->edge);
    else
      snprintf(owner, sizeof owner, "%s", p->owner ? p->owner : "-");
    printf("%-*s  %-14s %12s  %-9s  %-11s  %s\n", w, p->name, shape, cnt,
           p->trainable ? "trainable" : "frozen", init_name(p), owner);
  }
}

/* The precision of the training GEMMs: the config's (cfg, or NULL), else f32, and where bf16 would run. */
static void info_precision(const lmn_train_config *cfg) {
  int bf16 = cfg && cfg->precision == LMN_PREC_BF16;
  const char *path = lmn_bgemm_isa_name(lmn_bgemm_isa());
  if (bf16)
    printf("training GEMMs: bf16 with f32 sums (%s path)%s\n", path,
           lmn_bgemm_isa() == LMN_BG_AMX ? "" : ": no AMX here, so no faster than f32");
  else
    printf("training GEMMs: f32 (OpenBLAS sgemm) | `precision: bf16` would run on the %s path\n", path);
}

static int info_with(const char *prog, const lmn_net_desc *d, const args *a, const lmn_train_config *cfg) {
  long B = a->batch ? a->batch : cfg ? cfg->batch : 8, T = a->seq ? a->seq : cfg ? cfg->seq_len : 128;
  if (T > d->ctx)
    return usage_error(prog, d, "--seq %ld is too long: the network's context is %d", T, d->ctx);
  int threads = lmn_threads_resolve(a->threads);
  printf("network %s (from %s) | hash %016" PRIx64 " | aggregate %s\n", d->name, d->source ? d->source : "?",
         d->hash, d->aggregate_mean ? "mean" : "sum");
  if (d->classes > 0)
    printf("vocabulary %d | %d classes | context %d\n", d->vocab, d->classes, d->ctx);
  else
    printf("vocabulary %d | context %d\n", d->vocab, d->ctx);
  info_params(d);
  info_cost(d, B, T);
  size_t arena = 0;
  double kept[64] = {0};
  lmn_err kerr = {{0}};
  double kept_bytes = kept_total(d, kept, &kerr);
  if (info_memory(d, cfg, B, T, threads, kept_bytes, &arena)) return 1;
  if (kept_bytes < 0)
    printf("frozen weights: %s\n", kerr.msg);
  else
    lmn_print_kept(stdout, kept);
  lmn_print_peak(stdout, lmn_desc_f32_floats(d), d->n_train, arena, kept_bytes);
  info_precision(cfg);
  info_table(d);
  return 0;
}

/* The config (-c) is read once: its batch shape (unless --batch / --seq say), budget and precision. */
static int cmd_info(const char *prog, const lmn_net_desc *d, const args *a) {
  if (!a->config) return info_with(prog, d, a, NULL);
  lmn_train_config cfg;
  lmn_err err = {{0}};
  if (lmn_config_load(a->config, &cfg, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
  int rc = info_with(prog, d, a, &cfg);
  lmn_config_free(&cfg);
  return rc;
}

/* ---- train and eval ------------------------------------------------------------------------------ */

static int fail(const lmn_err *err) {
  fprintf(stderr, "%s\n", err->msg);
  return 1;
}

/* The signal that asked training to stop (SIGINT or SIGTERM), 0 before one came. The handler is reset by
 * its first call (SA_RESETHAND), so a second signal ends the process at once; that loses nothing, since
 * every checkpoint is written to a temporary and renamed (the next run removes the temporary). */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) {
  static const char msg[] =
      "\ninterrupted: finishing the step in progress, then a checkpoint (again to quit "
      "at once)\n";
  stop_signal = sig;
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
}

static void catch_stop_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

static int cmd_train(const lmn_net_desc *d, const args *a) {
  lmn_train_opts o = {.config = a->config,
                      .resume = (int)(a->resume || a->resume_fallback),
                      .resume_fallback = (int)a->resume_fallback,
                      .force = (int)a->force,
                      .stop_at = a->stop_at,
                      .log = stdout,
                      .interrupt = &stop_signal};
  lmn_err err = {{0}};
  catch_stop_signals();
  int rc = lmn_train(d, &o, &err);
  if (rc < 0) return fail(&err);
  return rc ? 128 + (int)stop_signal : 0;
}

/* The weights to use: --ckpt, else the config's newest checkpoint (when a config is given), else none. */
static int pick_ckpt(const args *a, const lmn_train_config *cfg, char *path, size_t cap, lmn_err *err) {
  path[0] = '\0';
  if (a->ckpt) {
    if (snprintf(path, cap, "%s", a->ckpt) >= (int)cap) return lmn_errf(err, "%s: path too long", a->ckpt);
    return 0;
  }
  if (!cfg || !cfg->checkpoint.dir) return 0;
  int found = lmn_checkpoint_latest(cfg->checkpoint.dir, path, cap, NULL, err);
  if (found < 0) return -1;
  if (!found) path[0] = '\0';
  return 0;
}

static int load_weights(lmn_net *net, const char *path, lmn_err *err) {
  if (!path[0]) {
    fprintf(stderr, "note: no checkpoint: using the seeded initialisation of '%s'\n", net->desc->name);
    return 0;
  }
  return lmn_checkpoint_load(net, path, err);
}

static int generating_network(const lmn_net_desc *d, const char *what, lmn_err *err) {
  if (d->classes > 0 && !strcmp(what, "generation"))
    return lmn_errf(err,
                    "%s: generation is not available for a classification network (%d classes): it scores a "
                    "whole text and writes none; use `eval` for its loss and accuracy",
                    d->name, d->classes);
  return 0;
}

/* "val loss 1.2345 | ppl 3.44 | 8 batches of 4 x 32" (no newline) */
static int eval_tokens(lmn_net *net, const lmn_data *data, const lmn_train_config *cfg, lmn_err *err) {
  double loss;
  if (lmn_eval_loss(net, data, cfg->eval.batches, cfg->batch, cfg->seq_len, &loss, err)) return -1;
  size_t windows = lmn_data_windows(data, LMN_SPLIT_VAL, cfg->seq_len), B = (size_t)cfg->batch;
  long batches = windows < (size_t)cfg->eval.batches * B ? (long)((windows + B - 1) / B) : cfg->eval.batches;
  printf("val loss %.4f | ppl %.2f | %ld batches of %ld x %ld", loss, loss < 700 ? exp(loss) : INFINITY,
         batches, cfg->batch, cfg->seq_len);
  return 0;
}

/* "val loss 0.4312 | accuracy 87.50% (35 of 40 examples) | batches of 16 x 96" (no newline) */
static int eval_classes(lmn_net *net, const lmn_data *data, const lmn_train_config *cfg, lmn_confusion *c,
                        lmn_err *err) {
  lmn_class_eval ev;
  if (lmn_confusion_init(c, data->classes, err) ||
      lmn_eval_classes_each(net, data, cfg->eval.batches, cfg->batch, cfg->seq_len, &ev, lmn_confusion_add, c,
                            err))
    return -1;
  printf("val loss %.4f | accuracy %.2f%% (%ld of %ld examples) | batches of %ld x %ld", ev.loss,
         100.0 * ev.accuracy, ev.correct, ev.examples, cfg->batch, cfg->seq_len);
  return 0;
}

/* What eval and predict start from: the config, the network at its batch shape, the weights (path: the
 * checkpoint, "" for the seeded initialisation). */
static int open_trained(const lmn_net_desc *d, const args *a, lmn_train_config *cfg, lmn_net **net,
                        char *path, size_t cap, lmn_err *err) {
  if (lmn_config_load(a->config, cfg, err)) return -1;
  int threads = lmn_threads_resolve(a->threads ? a->threads : cfg->threads);
  openblas_set_num_threads(threads);
  if (lmn_net_create(net, d, (int)cfg->batch, (int)cfg->seq_len, threads, cfg->seed, err)) {
    char m[sizeof err->msg];
    snprintf(m, sizeof m, "%s", err->msg);
    return lmn_errf(err, "%s: %s", cfg->path, m);
  }
  lmn_net_set_inference_threads(*net, threads);
  return pick_ckpt(a, cfg, path, cap, err) || load_weights(*net, path, err) ? -1 : 0;
}

static int eval_run(const lmn_net_desc *d, const args *a, lmn_train_config *cfg, lmn_net **net,
                    lmn_data *data, lmn_err *err) {
  char path[LMN_CKPT_PATH_MAX];
  if (open_trained(d, a, cfg, net, path, sizeof path, err)) return -1;
  lmn_tokenizer tok;
  if (lmn_net_tokenizer(d, &tok, err)) return -1;
  lmn_data_opts o;
  lmn_data_opts_from_config(&o, cfg, &tok);
  int rc = lmn_data_open_classes(data, &o, d->classes, err);
  lmn_tokenizer_free(&tok);
  if (rc) return -1;
  lmn_confusion c = {0};
  rc = d->classes > 0 ? eval_classes(*net, data, cfg, &c, err) : eval_tokens(*net, data, cfg, err);
  if (!rc) {
    printf(" | %s", path[0] ? path : "seeded initialisation");
    if (path[0]) printf(" (step %ld)", (*net)->step);
    printf("\n");
    if (c.counts) lmn_confusion_print(&c, stdout);
  }
  lmn_confusion_free(&c);
  return rc;
}

static int cmd_predict(const char *prog, const lmn_net_desc *d, const args *a) {
  if (!a->config) return usage_error(prog, d, "'predict' needs -c CONFIG.yaml (its batch and seq_len)");
  lmn_err err = {{0}};
  if (d->classes <= 0)
    return lmn_errf(&err, "%s: predict labels texts with a classification network; use generate", d->name),
           fail(&err);
  lmn_train_config cfg;
  lmn_net *net = NULL;
  lmn_tokenizer tok = {0};
  char path[LMN_CKPT_PATH_MAX];
  int rc =
      open_trained(d, a, &cfg, &net, path, sizeof path, &err) || lmn_net_tokenizer(d, &tok, &err) ||
      lmn_predict(net, &tok, a->file ? a->file : "-", cfg.batch, cfg.seq_len, (int)a->json, stdout, &err);
  lmn_tokenizer_free(&tok);
  lmn_net_destroy(net);
  lmn_config_free(&cfg);
  return rc ? fail(&err) : 0;
}

static int cmd_eval(const char *prog, const lmn_net_desc *d, const args *a) {
  if (!a->config) return usage_error(prog, d, "'eval' needs -c CONFIG.yaml");
  lmn_train_config cfg;
  lmn_net *net = NULL;
  lmn_data data = {0};
  lmn_err err = {{0}};
  int rc = eval_run(d, a, &cfg, &net, &data, &err);
  lmn_data_close(&data);
  lmn_net_destroy(net);
  lmn_config_free(&cfg);
  return rc ? fail(&err) : 0;
}

/* ---- generate ------------------------------------------------------------------------------------ */

/* The prompt, echoed once generation has started, then each token as it comes. */
typedef struct echo {
  const char *prompt;
  int echoed;
} echo;

static void echo_prompt(echo *e) {
  if (!e->echoed) fputs(e->prompt, stdout);
  e->echoed = 1;
}

static int print_token(void *ctx, int32_t id, const char *bytes, size_t len) {
  (void)id;
  echo_prompt(ctx);
  if (len) fwrite(bytes, 1, len, stdout);
  fflush(stdout);
  return 0;
}

static int gen_setup(const lmn_net_desc *d, const args *a, lmn_net **net, lmn_err *err) {
  lmn_train_config cfg;
  memset(&cfg, 0, sizeof cfg);
  int has_cfg = a->config != NULL;
  if (has_cfg && lmn_config_load(a->config, &cfg, err)) return -1;
  int threads = lmn_threads_resolve(a->threads ? a->threads : has_cfg ? cfg.threads : 0);
  openblas_set_num_threads(threads);
  char path[LMN_CKPT_PATH_MAX];
  int rc = lmn_net_create(net, d, 1, 1, threads, has_cfg ? cfg.seed : 1337, err);
  if (!rc) lmn_net_set_inference_threads(*net, threads);
  if (!rc && (pick_ckpt(a, has_cfg ? &cfg : NULL, path, sizeof path, err) || load_weights(*net, path, err)))
    rc = -1;
  lmn_config_free(&cfg);
  return rc;
}

/* The whole of f into a malloc'ed NUL-terminated buffer. */
static int read_all(FILE *f, const char *name, char **out, size_t *len, lmn_err *err) {
  size_t cap = 4096, n = 0, got;
  char *b = malloc(cap);
  while (b && (got = fread(b + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    char *more = n + 1 == cap ? realloc(b, cap *= 2) : b;
    if (!more) free(b);
    b = more;
  }
  if (!b) return lmn_errf(err, "%s: out of memory", name);
  if (ferror(f)) return free(b), lmn_errf(err, "%s: read error: %s", name, strerror(errno));
  b[n] = '\0';
  *out = b;
  *len = n;
  return 0;
}

/* generate's text: -p TEXT, -p - (standard input) or -f FILE. */
static int read_prompt(const args *a, char **text, size_t *len, lmn_err *err) {
  if (a->prompt && strcmp(a->prompt, "-") != 0) {
    *len = strlen(a->prompt);
    *text = strdup(a->prompt);
    return *text ? 0 : lmn_errf(err, "out of memory");
  }
  if (!a->file || !strcmp(a->file, "-")) return read_all(stdin, "standard input", text, len, err);
  int fd = lmn_open_regular(a->file, NULL, err);
  FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
  if (!f) return fd >= 0 ? (close(fd), lmn_errf(err, "%s: %s", a->file, strerror(errno))) : -1;
  int rc = read_all(f, a->file, text, len, err);
  fclose(f);
  return rc;
}

/* --chat: the text as one user turn of the model's chat template (its default system message), rendered
 * into *text; the reply ends at the template's end of turn. */
static int chat_prompt(const lmn_net_desc *d, char **text, size_t *len, lmn_chat_template *t, lmn_err *err) {
  if (lmn_net_chat_template(d, t, err)) return -1;
  lmn_chat_msg m = {"user", *text};
  long n = lmn_chat_render(t, &m, 1, 1, NULL, NULL, 0, err);
  char *out = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (!out) return n < 0 ? -1 : lmn_errf(err, "out of memory");
  lmn_chat_render(t, &m, 1, 1, NULL, out, (size_t)n + 1, err);
  free(*text);
  *text = out;
  *len = (size_t)n;
  return 0;
}

static void print_gen_stats(const lmn_gen_stats *st) {
  double tps = st->decode_s > 0 ? st->tokens / st->decode_s : 0;
  fprintf(stderr, "\n[prompt %d tokens in %.1f ms | %d tokens at %.1f tok/s%s]\n", st->prompt_tokens,
          1e3 * st->prefill_s, st->tokens, tps, st->stopped_ctx ? " | stopped at the context length" : "");
}

static int cmd_generate(const char *prog, const lmn_net_desc *d, const args *a) {
  if (!a->prompt && !a->file) return usage_error(prog, d, "'generate' needs -p TEXT (or -p - or -f FILE)");
  if (a->prompt && a->file) return usage_error(prog, d, "give -p or -f, not both");
  if (a->ckpt && a->config) return usage_error(prog, d, "give --ckpt or -c, not both");
  lmn_err err = {{0}};
  if (generating_network(d, "generation", &err)) return fail(&err);
  char *prompt = NULL;
  size_t len = 0;
  lmn_chat_template tpl;
  if (read_prompt(a, &prompt, &len, &err) || (a->chat && chat_prompt(d, &prompt, &len, &tpl, &err)))
    return free(prompt), fail(&err);
  lmn_net *net = NULL;
  lmn_tokenizer tok = {0};
  const char *stop[2];
  int n_stop = 0;
  if (a->stop) stop[n_stop++] = a->stop;
  if (a->chat) stop[n_stop++] = tpl.end_of_turn;
  lmn_gen_req r = {.n = (int)a->n,
                   .sample = {(float)a->temperature, (int)a->top_k, (float)a->top_p},
                   .seed = a->seed,
                   .stop = stop,
                   .n_stop = n_stop,
                   .hide_eos = a->chat != 0,
                   .fn = print_token};
  echo e = {a->chat ? "" : prompt, 0};
  r.ctx = &e;
  lmn_gen_stats st;
  int rc = lmn_net_tokenizer(d, &tok, &err) || gen_setup(d, a, &net, &err);
  if (!rc) net->q_f32act = a->exact != 0;
  if (!rc) rc = lmn_generate_text(net, &tok, prompt, len, &r, &st, &err);
  if (!rc) echo_prompt(&e);
  lmn_net_destroy(net);
  lmn_tokenizer_free(&tok);
  free(prompt);
  if (rc) return fail(&err);
  print_gen_stats(&st);
  return 0;
}

/* ---- chat and serve ------------------------------------------------------------------------------ */

static int cmd_chat(const char *prog, const lmn_net_desc *d, const args *a) {
  if (a->ckpt && a->config) return usage_error(prog, d, "give --ckpt or -c, not both");
  lmn_err err = {{0}};
  if (generating_network(d, "chat", &err)) return fail(&err);
  FILE *in = stdin;
  if (a->file && strcmp(a->file, "-")) {
    int fd = lmn_open_regular(a->file, NULL, &err);
    if (fd < 0 || !(in = fdopen(fd, "r"))) return fd >= 0 ? close(fd) : 0, fail(&err);
  }
  lmn_net *net = NULL;
  lmn_chat *chat = NULL;
  int ctx = (int)(a->ctx ? a->ctx : d->ctx < 4096 ? d->ctx : 4096);
  int rc = gen_setup(d, a, &net, &err) || lmn_chat_open(&chat, net, a->system, ctx, &err);
  if (!rc) {
    net->q_f32act = a->exact != 0;
    const char *stop[1] = {a->stop};
    lmn_chat_opts o = {(int)a->n,
                       (float)a->temperature,
                       (int)a->top_k,
                       (float)a->top_p,
                       a->seed,
                       stop,
                       a->stop != NULL,
                       NULL,
                       NULL};
    rc = lmn_chat_repl(chat, in, a->file ? 0 : isatty(fileno(in)), a->system, &o, stdout, &err);
  }
  lmn_chat_close(chat);
  lmn_net_destroy(net);
  if (in != stdin) fclose(in);
  return rc ? fail(&err) : 0;
}

/* A classifier's batch and sequence length: the training config's. */
static int serve_shape(const lmn_net_desc *d, const args *a, lmn_serve_opts *o, lmn_err *err) {
  if (d->classes <= 0) return 0;
  if (!a->config)
    return lmn_errf(err, "%s: serving a classifier needs -c CONFIG.yaml (its batch and seq_len)", d->name);
  lmn_train_config cfg;
  if (lmn_config_load(a->config, &cfg, err)) return -1;
  o->cls_batch = cfg.batch;
  o->cls_seq = cfg.seq_len;
  lmn_config_free(&cfg);
  return 0;
}

static int cmd_serve(const char *prog, const lmn_net_desc *d, const args *a) {
  if (a->ckpt && a->config) return usage_error(prog, d, "give --ckpt or -c, not both");
  lmn_serve_opts o = {a->host ? a->host : "127.0.0.1",
                      (int)a->port,
                      (int)a->parallel,
                      (int)a->queue,
                      (int)(a->ctx          ? a->ctx
                            : d->ctx < 4096 ? d->ctx
                                            : 4096),
                      (int)a->threads,
                      (int)a->timeout,
                      a->api_key,
                      0,
                      0};
  lmn_err err = {{0}};
  lmn_net *net = NULL;
  int rc = serve_shape(d, a, &o, &err);
  if (!rc && d->classes > 0) {
    lmn_train_config cfg;
    memset(&cfg, 0, sizeof cfg);
    char path[LMN_CKPT_PATH_MAX];
    rc = open_trained(d, a, &cfg, &net, path, sizeof path, &err);
    lmn_config_free(&cfg);
  } else if (!rc) {
    rc = gen_setup(d, a, &net, &err);
  }
  if (!rc) {
    net->q_f32act = a->exact != 0;
    o.threads = net->n_threads;
    rc = lmn_serve(net, &o, &err);
  }
  lmn_net_destroy(net);
  return rc ? fail(&err) : 0;
}

/* ---- dump-state and export (dump.c)
 * ------------------------------------------------------------------------ */

static int cmd_dump(const char *prog, const lmn_net_desc *d, const args *a) {
  if (!a->config || !a->out) return usage_error(prog, d, "'dump-state' needs -c CONFIG.yaml and -o FILE");
  lmn_err err = {{0}};
  return lmn_dump_state_run(d, a->config, a->ckpt, a->threads, a->out, stdout, &err) ? fail(&err) : 0;
}

static int cmd_export(const char *prog, const lmn_net_desc *d, const args *a) {
  if (!a->config || !a->out) return usage_error(prog, d, "'export' needs -c CONFIG.yaml and -o DIR");
  lmn_err err = {{0}};
  return lmn_export_run(d, a->config, a->ckpt, (int)a->all, a->threads, a->out, stdout, &err) ? fail(&err)
                                                                                              : 0;
}

/* ---- plot (runlog.c) ---------------------------------------------------------------------------- */

static int cmd_plot(const char *prog, const lmn_net_desc *d, const args *a) {
  if (!a->config) return usage_error(prog, d, "'plot' needs -c CONFIG.yaml");
  lmn_err err = {{0}};
  lmn_train_config cfg;
  char png[4300];
  if (lmn_config_load(a->config, &cfg, &err)) return fail(&err);
  int rc = lmn_runlog_plot(cfg.checkpoint.dir, d->name, png, sizeof png, &err);
  lmn_config_free(&cfg);
  if (rc) return fail(&err);
  printf("%s\n", png);
  return 0;
}

/* ---- main ---------------------------------------------------------------------------------------- */

int lmn_main(int argc, char **argv, const lmn_net_desc *desc) {
  const char *prog = argc > 0 && argv[0] ? argv[0] : desc->name;
  char *fake[1] = {(char *)prog};
  if (argc < 1) argc = 1, argv = fake;
  if (argc < 2) return usage_error(prog, desc, "no command given");
  const char *name = argv[1];
  if (!strcmp(name, "-h") || !strcmp(name, "--help") || !strcmp(name, "help"))
    return usage(stdout, prog, desc), 0;
  int c = 0;
  while (c < CMD_COUNT && strcmp(name, cmd_names[c]) != 0) c++;
  if (c == CMD_COUNT) {
    const char *near = lmn_nearest(name, strlen(name), cmd_names, CMD_COUNT);
    if (near) return usage_error(prog, desc, "unknown command '%s'; did you mean '%s'?", name, near);
    return usage_error(prog, desc, "unknown command '%s'", name);
  }
  args a = {.n = c == CMD_CHAT ? 512 : 256,
            .temperature = 0.8,
            .top_k = 40,
            .top_p = 0.95,
            .seed = 1337,
            .port = 8080,
            .parallel = 2,
            .queue = 16,
            .timeout = 10};
  int done, rc = parse_args(argc, argv, (cmd)c, &a, desc, &done);
  if (done) return rc;
  if (a.model_dir &&
      setenv("LMN_MODEL_DIR", a.model_dir, 1) != 0) /* what the runtime reads, before any thread */
    return usage_error(prog, desc, "--model-dir: cannot set it: %s", strerror(errno));
  switch ((cmd)c) {
    case CMD_INFO: return cmd_info(prog, desc, &a);
    case CMD_TRAIN:
      return a.config ? cmd_train(desc, &a) : usage_error(prog, desc, "'train' needs -c CONFIG.yaml");
    case CMD_EVAL: return cmd_eval(prog, desc, &a);
    case CMD_PREDICT: return cmd_predict(prog, desc, &a);
    case CMD_DUMP: return cmd_dump(prog, desc, &a);
    case CMD_EXPORT: return cmd_export(prog, desc, &a);
    case CMD_PLOT: return cmd_plot(prog, desc, &a);
    case CMD_CHAT: return cmd_chat(prog, desc, &a);
    case CMD_SERVE: return cmd_serve(prog, desc, &a);
    default: return cmd_generate(prog, desc, &a);
  }
}
