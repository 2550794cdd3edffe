/* main.c: the lmnc command line: check, info, ir, dot and compile on .lmn files; `lmnc COMMAND --help`
 * for each command, and a did-you-mean for a misspelt one.
 * Exit status: 0 ok, 1 errors in the input, 2 usage or I/O errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "emit.h"
#include "front.h"
#include "ir.h"
#include "qnet.h"
#include "recompute.h"
#include "schedule.h"

#define LMNC_VERSION "0.1.0"

static const char usage_text[] =
    "usage: lmnc COMMAND FILE.lmn [options]\n"
    "\n"
    "commands:\n"
    "  check FILE...            check the files; print diagnostics; exit 1 on any error\n"
    "  info FILE [--batch B] [--seq T] [--threads N] [--budget SIZE]\n"
    "                           parameters (total, trainable, per module kind, per vertex and edge),\n"
    "                           FLOPs per token (forward, training) and memory for B x T on N threads\n"
    "                           (default 1 x 256 on 1 thread), the same bytes `NAME info` prints\n"
    "  ir FILE [--json]         the lowered network: parameters and ops in topological order\n"
    "  dot FILE                 a Graphviz picture of the network (pipe into `dot -Tpng -o net.png`)\n"
    "  compile FILE -o DIR      write DIR/NAME.h, DIR/NAME.c, DIR/main.c and DIR/Makefile; `make -C DIR`\n"
    "                           builds the executable DIR/NAME (train, generate, eval, info)\n"
    "  COMMAND --help           that command's own help\n"
    "  --help, -h               this text\n"
    "  --version                the version\n"
    "\n"
    "exit status: 0 ok, 1 errors in the input, 2 usage or I/O errors\n";

/* Each command and its help text: one table, in the order `lmnc --help` lists them. */
typedef struct Command {
  const char *name, *help;
} Command;

static const Command commands[] = {
    {"check",
     "usage: lmnc check FILE...\n"
     "Checks each .lmn file and prints its diagnostics (gcc style: file:line:col, the source line, a caret,\n"
     "notes and hints). Exit 1 when any file has an error.\n"},
    {"info",
     "usage: lmnc info FILE [--batch B] [--seq T] [--threads N] [--budget SIZE]\n"
     "Parameters (total, trainable, per module kind, per vertex and edge), FLOPs per token for the forward\n"
     "pass and a training step, and memory at batch B x T on N threads (default 1 x 256 on 1 thread):\n"
     "parameters, gradients + AdamW moments, activations, the same line `NAME info` prints. The memory plan\n"
     "fits a budget (--budget 12GiB; default 80% of this machine's memory) by recomputing the activations\n"
     "of vertices and edge blocks in the backward pass, the largest saving per FLOP first; it is printed\n"
     "when anything recomputes or a budget is given, as `NAME info -c CFG` prints it for `memory.budget`.\n"},
    {"ir",
     "usage: lmnc ir FILE [--json]\n"
     "The lowered network: its models (file and `weights` format), every parameter tensor (shape, owner,\n"
     "trainable) and the ops in topological order with their FLOPs and saved activations; --json for tools\n"
     "(tests/reference/torch_twin.py reads it).\n"},
    {"dot",
     "usage: lmnc dot FILE\n"
     "A Graphviz picture of the network: pipe it into `dot -Tpng -o net.png`.\n"},
    {"compile",
     "usage: lmnc compile FILE -o DIR\n"
     "Writes DIR/NAME.h (the API, with a usage example), DIR/NAME.c (forward, backward and cached decoding\n"
     "of exactly this network), DIR/main.c and DIR/Makefile; DIR and its parents are created. `make -C DIR`\n"
     "builds the executable DIR/NAME (train, generate, eval, info). The back end is described in\n"
     "docs/backend.md.\n"},
};

static const Command *find_command(const char *name) {
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (!strcmp(commands[i].name, name)) return &commands[i];
  return NULL;
}

/* `lmnc COMMAND --help` (or -h) anywhere among the arguments: prints the command's help. */
static int wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
  return 0;
}

static int unknown_command(const char *cmd) {
  const char *names[sizeof commands / sizeof *commands];
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) names[i] = commands[i].name;
  const char *best = closest_name(cmd, names, (int)(sizeof names / sizeof *names));
  fprintf(stderr, "lmnc: unknown command '%s'", cmd);
  if (best) fprintf(stderr, "; did you mean '%s'?", best);
  fprintf(stderr, "\nTry 'lmnc --help'.\n");
  return 2;
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "lmnc: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nTry 'lmnc --help'.\n");
  return 2;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int cmd_check(int argc, char **argv) {
  if (argc < 1) return usage_error("%s", "check needs a FILE");
  int worst = 0;
  for (int i = 0; i < argc; i++) {
    Front f;
    int rc = front_load(&f, argv[i], stderr);
    if (rc == 0)
      printf("%s: ok: network '%s', %d %s, %d %s, %d %s%s\n", argv[i], f.net.name, f.net.n_vertices,
             f.net.n_vertices == 1 ? "vertex" : "vertices", f.net.n_edges, f.net.n_edges == 1 ? "edge" : "edges",
             f.net.n_losses, f.net.n_losses == 1 ? "loss" : "losses", f.diag.warnings ? " (with warnings)" : "");
    if (rc > worst) worst = rc;
    front_free(&f);
  }
  return worst;
}

typedef struct Opts {
  const char *file;
  long batch, seq, threads;
  int json;
  double budget; /* --budget bytes, or 0: LMN_DEFAULT_BUDGET_FRACTION of the machine's memory */
} Opts;

static int parse_opts(int argc, char **argv, Opts *o, int allow_shape, int allow_json) {
  memset(o, 0, sizeof *o);
  o->batch = 1;
  o->seq = 256;
  o->threads = 1;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (allow_shape && (!strcmp(a, "--batch") || !strcmp(a, "--seq") || !strcmp(a, "--threads"))) {
      long *dst = !strcmp(a, "--batch") ? &o->batch : !strcmp(a, "--seq") ? &o->seq : &o->threads;
      if (i + 1 >= argc) return usage_error("%s needs a value", a);
      if (parse_long(argv[++i], 1, 1 << 20, dst) != 0) return usage_error("bad value '%s' (expected 1..1048576)", argv[i]);
    } else if (allow_shape && !strcmp(a, "--budget")) {
      if (i + 1 >= argc) return usage_error("%s needs a value", a);
      if (lmn_parse_bytes(argv[++i], &o->budget) != 0 || o->budget <= 0)
        return usage_error("bad value '%s' (expected a size such as 12GiB, 512MiB or bytes)", argv[i]);
    } else if (allow_json && !strcmp(a, "--json")) {
      o->json = 1;
    } else if (a[0] == '-' && a[1]) {
      return usage_error("unknown option '%s'", a);
    } else if (o->file) {
      return usage_error("unexpected argument '%s'", a);
    } else {
      o->file = a;
    }
  }
  if (!o->file) return usage_error("%s", "missing FILE");
  return 0;
}

/* 1 when the runtime keeps parameter p in its model file's format (qnet.h's lmn_param_kept). */
static int param_kept(const Param *p) { return p->file_model >= 0 && !p->trainable && p->shape[1] > 0; }

/* The line of `NAME info` on the frozen weights kept in their files' formats, from the files' headers. */
/* The kept bytes in all (per type into bytes), -1 when a file could not be read (err says why). */
static double kept_total(const Ir *ir, double bytes[64], lmn_err *err) {
  lmn_kept_tensor *t = calloc((size_t)ir->n_params + 1, sizeof *t);
  int rc = t ? 0 : lmn_errf(err, "out of memory");
  for (int m = 0; rc == 0 && m < ir->net->n_models; m++) {
    const Model *md = &ir->net->models[m];
    int n = 0;
    for (int i = 0; i < ir->n_params; i++)
      if (param_kept(&ir->params[i]) && ir->params[i].file_model == m)
        t[n++] = (lmn_kept_tensor){param_file_name(&ir->params[i]), ir->params[i].shape[0], ir->params[i].shape[1]};
    if (n > 0) rc = lmn_kept_bytes(md->file, md->source == SRC_GGUF ? 1 : 2, md->weights, t, n, bytes, err);
  }
  free(t);
  if (rc != 0) return -1;
  double total = 0;
  for (int k = 0; k < 64; k++) total += bytes[k];
  return total;
}

/* The memory line of `NAME info`, from the same layout the generated code evaluates. */
static int print_memory(const Ir *ir, const Opts *o) {
  Sched s;
  lmn_err err = {{0}};
  if (sched_build(&s, ir, &err) != 0) {
    fprintf(stderr, "%s\n", err.msg);
    return 2;
  }
  lmn_arena_desc d = sched_arena(&s, 0);
  lmn_arena a;
  long kept = 0;
  for (int i = 0; i < ir->n_params; i++) kept += param_kept(&ir->params[i]) ? ir->params[i].count : 0;
  size_t f32 = (size_t)(ir_param_total(ir, 0) - kept), train = (size_t)ir_param_total(ir, 1);
  int T = (int)(o->seq + ir->net->prefix);
  char *rc = calloc((size_t)d.n_keep + 1, 1);
  if (!rc) {
    sched_free(&s);
    fprintf(stderr, "lmnc: out of memory\n");
    return 2;
  }
  double budget = o->budget > 0 ? o->budget : lmn_default_budget();
  double bytes[64] = {0};
  lmn_err kerr = {{0}};
  double kept_bytes = kept_total(ir, bytes, &kerr);
  if (budget > 0)
    lmn_recompute_plan(&d, (int)o->batch, T, (int)o->threads, lmn_fixed_bytes(f32, train, kept_bytes), budget,
                       rc);
  Cost fwd, step; /* per row as the generated desc's flops_bt, flops_btt, flops_b (lmn_print_plan) */
  ir_flops(ir, &fwd, &step);
  lmn_recompute_print(stdout, &d, (int)o->batch, T, (int)o->threads, rc, budget,
                      o->budget > 0 ? "--budget" : LMN_DEFAULT_BUDGET_FROM,
                      step.bt + step.btt * T + step.b / T, o->budget > 0);
  lmn_arena_layout(&d, (int)o->batch, T, (int)o->threads, rc, &a);
  lmn_print_memory(stdout, o->batch, o->seq, (int)o->threads, f32, train, a.total);
  free(rc);
  if (kept_bytes < 0)
    printf("frozen weights: %s\n", kerr.msg);
  else
    lmn_print_kept(stdout, bytes);
  lmn_print_peak(stdout, f32, train, a.total, kept_bytes);
  sched_free(&s);
  return 0;
}

static int cmd_with_ir(const char *cmd, int argc, char **argv) {
  Opts o;
  int is_info = !strcmp(cmd, "info"), is_ir = !strcmp(cmd, "ir");
  int rc = parse_opts(argc, argv, &o, is_info, is_ir);
  if (rc) return rc;
  Front f;
  rc = front_load(&f, o.file, stderr);
  if (rc == 0) {
    Ir ir;
    ir_build(&ir, &f.net);
    if (is_info) ir_print_info(&ir, stdout, o.batch, o.seq);
    if (is_info) rc = print_memory(&ir, &o);
    else if (is_ir && o.json) ir_print_json(&ir, stdout);
    else if (is_ir) ir_print_text(&ir, stdout);
    else ir_print_dot(&ir, stdout);
    ir_free(&ir);
  }
  front_free(&f);
  return rc;
}

/* The lmnet tree: two levels above this executable (bin/lmnc), where runtime/ and lib/ live. */
static void lmnet_root(char *buf, size_t n) {
  ssize_t len = readlink("/proc/self/exe", buf, n - 1);
  if (len <= 0) {
    snprintf(buf, n, ".");
    return;
  }
  buf[len] = 0;
  for (int up = 0; up < 2; up++) {
    char *slash = strrchr(buf, '/');
    if (slash && slash != buf) *slash = 0;
  }
}

static int cmd_compile(int argc, char **argv) {
  const char *file = NULL, *dir = NULL;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "-o")) {
      if (i + 1 >= argc) return usage_error("%s", "-o needs a directory");
      dir = argv[++i];
    } else if (argv[i][0] == '-') {
      return usage_error("unknown option '%s'", argv[i]);
    } else if (file) {
      return usage_error("unexpected argument '%s'", argv[i]);
    } else {
      file = argv[i];
    }
  }
  if (!file || !dir) return usage_error("%s", "usage: lmnc compile FILE -o DIR");
  Front f;
  int rc = front_load(&f, file, stderr);
  if (rc == 0) {
    Ir ir;
    ir_build(&ir, &f.net);
    char root[4096];
    lmnet_root(root, sizeof root);
    lmn_err err;
    if (emit_c(&ir, file, f.src, dir, root, &err) != 0) {
      fprintf(stderr, "lmnc: %s\n", err.msg);
      rc = 2;
    }
    ir_free(&ir);
  }
  front_free(&f);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage_text, stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    fputs(usage_text, stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version")) {
    printf("lmnc %s\n", LMNC_VERSION);
    return 0;
  }
  const Command *c = find_command(cmd);
  if (!c) return unknown_command(cmd);
  if (wants_help(argc - 2, argv + 2)) {
    fputs(c->help, stdout);
    return 0;
  }
  if (!strcmp(cmd, "check")) return cmd_check(argc - 2, argv + 2);
  if (!strcmp(cmd, "compile")) return cmd_compile(argc - 2, argv + 2);
  if (!strcmp(cmd, "info") || !strcmp(cmd, "ir") || !strcmp(cmd, "dot")) return cmd_with_ir(cmd, argc - 2, argv + 2);
  return unknown_command(cmd);
}
