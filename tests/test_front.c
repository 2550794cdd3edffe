/* test_front.c: CUnit suite for the lmnc front end: lexer and parser (statements, locations, brackets,
 * error recovery), semantic checks (resolution, widths, diagnostics), the IR (parameter counts of the
 * paper's LMNet-1B, topological order, costs), reading hyper-parameters from a GGUF header, and the
 * `weights FORMAT` model option (parsed, resolved, printed, hashed only when not `file`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dequant.h"
#include "front.h"
#include "gguf.h"
#include "harness.h"
#include "ir.h"
#include "parse.h"
#include "schedule.h"

/* Loads a network from text; diagnostics are captured in diag_text (caller frees). */
static int load(Front *f, const char *src, char **diag_text) {
  size_t len = 0;
  FILE *out = open_memstream(diag_text, &len);
  int rc = front_load_mem(f, "t.lmn", src, strlen(src), out);
  fclose(out);
  return rc;
}

static int load_file(Front *f, const char *path) {
  FILE *devnull = fopen("/dev/null", "w");
  int rc = front_load(f, path, devnull);
  fclose(devnull);
  return rc;
}

static const char *tiny_src =
    "network t\n"
    "model m = llama { dim 64 layers 1 heads 4 kv_heads 2 ffn 172 vocab 256 ctx 64 }  # a comment\n"
    "edge blk = decoder_layer(m) >> linear(bias)\n"
    "vertex a, b = m shared trainable\n"
    "tokens -> embed(m) -> blk -> a\n"
    "a -> blk -> b\n"
    "b -> head(m) -> logits\n"
    "loss lm = cross_entropy(logits, next(tokens))\n";

static void test_parse_statements(void) {
  Program prog = {0};
  Diag d;
  FILE *null = fopen("/dev/null", "w");
  diag_init(&d, "t.lmn", tiny_src, null);
  CU_ASSERT_EQUAL(parse_source(&prog, &d, tiny_src, strlen(tiny_src)), 0);
  CU_ASSERT_EQUAL(prog.stmts.n, 8);
  Stmt *model = prog.stmts.items[1];
  CU_ASSERT_EQUAL(model->kind, ST_MODEL);
  CU_ASSERT_STRING_EQUAL(model->arch.name, "llama");
  CU_ASSERT_EQUAL(model->settings.n, 7);
  CU_ASSERT_EQUAL(model->name.at.line, 2);
  CU_ASSERT_EQUAL(model->name.at.col, 7);
  Stmt *edge = prog.stmts.items[2];
  CU_ASSERT_EQUAL(edge->edge->terms.n, 2);
  Stmt *chain = prog.stmts.items[4];
  CU_ASSERT_EQUAL(chain->kind, ST_CHAIN);
  CU_ASSERT_EQUAL(chain->hops.n, 3);
  Stmt *vertex = prog.stmts.items[3];
  CU_ASSERT_EQUAL(vertex->names.n, 2);
  CU_ASSERT_EQUAL(vertex->options.n, 2);
  arena_free(&prog.arena);
  fclose(null);
}

static void test_parse_brackets_and_strings(void) {
  const char *src = "network t\nmodel m = gguf(\"a\\\"b\\\\c\") llama {\n dim 64\n layers 1 }\nloss x = 0.5 * cross_entropy(\n o,\n labels)\n";
  Program prog = {0};
  Diag d;
  FILE *null = fopen("/dev/null", "w");
  diag_init(&d, "t.lmn", src, null);
  CU_ASSERT_EQUAL(parse_source(&prog, &d, src, strlen(src)), 0);
  CU_ASSERT_EQUAL(prog.stmts.n, 3);
  Stmt *m = prog.stmts.items[1];
  Arg *path = m->source->args.items[0];
  CU_ASSERT_STRING_EQUAL(path->a.s, "a\"b\\c");
  Stmt *l = prog.stmts.items[2];
  CU_ASSERT(l->has_weight && l->weight == 0.5);
  arena_free(&prog.arena);
  fclose(null);
}

static void test_parse_recovery(void) {
  Front f;
  char *text = NULL;
  const char *src = "network t\nmodel = llama {}\nvertex a b = m\nedge x = linear(\nloss l = cross_entropy(o, labels)\n";
  CU_ASSERT_EQUAL(load(&f, src, &text), 1);
  CU_ASSERT(f.diag.errors >= 2); /* several syntax errors reported in one run */
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "t.lmn:2:7: error:"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "t.lmn:3:10: error:"));
  front_free(&f);
  free(text);
}

static void test_sema_tiny(void) {
  Front f;
  char *text = NULL;
  CU_ASSERT_EQUAL_FATAL(load(&f, tiny_src, &text), 0);
  const Net *net = &f.net;
  CU_ASSERT_STRING_EQUAL(net->name, "t");
  CU_ASSERT_EQUAL(net->n_models, 1);
  CU_ASSERT_EQUAL(net->n_vertices, 2);
  CU_ASSERT_EQUAL(net->n_edges, 3);
  CU_ASSERT_EQUAL(net->edges[0].src_kind, END_TOKENS);
  CU_ASSERT_EQUAL(net->edges[0].n_mods, 3);
  CU_ASSERT_EQUAL(net->edges[1].mods[1].din, 64);
  CU_ASSERT_EQUAL(net->edges[1].mods[1].dout, 64);
  CU_ASSERT_EQUAL(net->edges[2].dst_kind, END_OUTPUT);
  CU_ASSERT_EQUAL(net->outputs[0].width, 256);
  CU_ASSERT_EQUAL(net->aggregate, AGG_MEAN);
  CU_ASSERT_EQUAL(net->models[0].hp.kv_heads, 2);
  CU_ASSERT_EQUAL(f.diag.warnings, 0);
  front_free(&f);
  free(text);
}

/* Replaces the first occurrence of `from` in tiny_src by `to` and expects an error containing `want`. */
static void expect_error(const char *from, const char *to, const char *want) {
  char src[2048];
  const char *p = strstr(tiny_src, from);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  snprintf(src, sizeof src, "%.*s%s%s", (int)(p - tiny_src), tiny_src, to, p + strlen(from));
  Front f;
  char *text = NULL;
  CU_ASSERT_EQUAL(load(&f, src, &text), 1);
  if (!strstr(text, want)) fprintf(stderr, "\nexpected '%s' in:\n%s\n", want, text);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
  front_free(&f);
  free(text);
}

static void test_sema_errors(void) {
  expect_error("= m shared", "= mm shared", "unknown model 'mm'; did you mean 'm'?");
  expect_error("a -> blk -> b", "a -> blk -> bb", "unknown vertex 'bb'; did you mean 'b'?");
  expect_error("a -> blk -> b", "a -> blk >> linear(32) -> b", "yields width 32 but vertex 'b' takes 64");
  expect_error("a -> blk -> b", "a -> blk >> linear(32) -> b", "add linear(32 -> 64)");
  expect_error("a -> blk -> b", "a -> blk -> b\nb -> blk -> a", "cycle: ");
  expect_error("heads 4 kv_heads 2", "heads 5 kv_heads 5", "5 heads do not divide the width 64");
  expect_error("kv_heads 2", "kv_heads 3", "3 kv_heads do not divide the 4 heads");
  expect_error("loss lm = cross_entropy(logits, next(tokens))\n", "", "has no loss");
  expect_error("vertex a, b", "vertex a, b, c", "vertex 'c' has no input");
  expect_error("b -> head(m)", "a -> blk -> c\nb -> head(m)", "unknown vertex 'c'");
  expect_error("edge blk", "edge a", "redefinition of 'a'");
  expect_error("shared trainable", "shared frozn", "did you mean 'frozen'?");
  expect_error("cross_entropy(logits", "cross_entropi(logits", "did you mean 'cross_entropy'?");
  expect_error("next(tokens))", "labels)", "its target is next(tokens)");
  expect_error("llama {", "lama {", "did you mean 'llama'?");
}

static void test_sema_reach_and_vocab(void) {
  Front f;
  char *text = NULL;
  const char *src = "network t\n"
                    "model m = llama { dim 64 layers 1 heads 4 ffn 172 vocab 256 ctx 64 }\n"
                    "model n = llama { dim 64 layers 1 heads 4 ffn 172 vocab 300 ctx 64 }\n"
                    "vertex a, d = m\n"
                    "tokens -> embed(m) -> a\ntokens -> embed(m) -> d\n"
                    "a -> head(n) -> logits\n"
                    "loss lm = cross_entropy(logits, next(tokens))\n";
  CU_ASSERT_EQUAL(load(&f, src, &text), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "head(n) predicts a vocabulary of 300"));
  front_free(&f);
  free(text);
  const char *src2 = "network t\n"
                     "model m = llama { dim 64 layers 1 heads 4 ffn 172 vocab 256 ctx 64 }\n"
                     "vertex a, d = m\n"
                     "tokens -> embed(m) -> a\ntokens -> embed(m) -> d\n"
                     "a -> head(m) -> logits\n"
                     "loss lm = cross_entropy(logits, next(tokens))\n";
  CU_ASSERT_EQUAL(load(&f, src2, &text), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "vertex 'd' does not reach the output"));
  front_free(&f);
  free(text);
}

/* ---- IR ---------------------------------------------------------------------------------------- */

static void test_ir_lmnet_1b_counts(void) {
  Front f;
  CU_ASSERT_EQUAL_FATAL(load_file(&f, "dsl-examples/lmnet_1b.lmn"), 0);
  Ir ir;
  ir_build(&ir, &f.net);
  CU_ASSERT_EQUAL(ir_param_total(&ir, 0), 1138392704L);
  CU_ASSERT_EQUAL(f.net.params, 1138392704LL); /* sema counts them too, for the limit */
  CU_ASSERT_EQUAL(ir_param_total(&ir, 1), 644359936L);
  int trainable_edges = 0;
  long model_total = 0;
  for (int e = 0; e < f.net.n_edges; e++) {
    long n = 0;
    for (int i = 0; i < ir.n_params; i++)
      if (ir.params[i].owner == OWN_EDGE && ir.params[i].owner_index == e) n += ir.params[i].count;
    if (n) {
      CU_ASSERT_EQUAL(n, 15716096L);
      trainable_edges++;
    }
  }
  for (int i = 0; i < ir.n_params; i++)
    if (ir.params[i].owner == OWN_MODEL) model_total += ir.params[i].count;
  CU_ASSERT_EQUAL(trainable_edges, 41);
  CU_ASSERT_EQUAL(model_total, 494032768L);
  /* topological order: every op reads only earlier ops; frozen vertices compute no weight gradients */
  for (int i = 0; i < ir.n_ops; i++) {
    const Op *op = &ir.ops[i];
    for (int k = 0; k < op->n_inputs; k++) CU_ASSERT(op->inputs[k] < i);
    if (op->kind == OP_VERTEX) {
      CU_ASSERT_FALSE(op->trainable);
      CU_ASSERT(op->grad_in);
    }
  }
  ir_free(&ir);
  front_free(&f);
}

static void test_ir_smollm2_and_gpt2_counts(void) {
  Front f;
  char *text = NULL;
  const char *src = "network s\n"
                    "model smol = llama { dim 576 layers 30 heads 9 kv_heads 3 ffn 1536 vocab 49152 ctx 8192 }\n"
                    "model g = gpt2 { dim 1024 layers 1 heads 16 ffn 4096 vocab 50257 ctx 1024 }\n"
                    "vertex v = smol frozen\n"
                    "tokens -> embed(smol) -> v\n"
                    "v -> linear(576 -> 1024) >> gpt2_block(g) >> linear(g -> smol) -> w\n"
                    "vertex w = smol unshared frozen\n"
                    "w -> head(smol) -> logits\n"
                    "loss lm = cross_entropy(logits, next(tokens))\n";
  int rc = load(&f, src, &text);
  if (rc) fprintf(stderr, "%s", text);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  Ir ir;
  ir_build(&ir, &f.net);
  long smol = 0, gpt2_edge = 0, own = 0;
  for (int i = 0; i < ir.n_params; i++) {
    const Param *p = &ir.params[i];
    if (p->owner == OWN_MODEL) smol += p->count;
    if (p->owner == OWN_EDGE && p->module == 1) gpt2_edge += p->count;
    if (p->owner == OWN_VERTEX) own += p->count;
  }
  CU_ASSERT_EQUAL(smol, 134515008L);        /* SmolLM2-135M with its tied embedding */
  CU_ASSERT_EQUAL(own, 134515008L - 28311552L); /* an unshared copy: layers + final norm */
  CU_ASSERT_EQUAL(gpt2_edge, 5250048L);     /* the E2E edge at GPT-2 Medium width */
  /* costs scale linearly in B */
  double f1 = 0, f2 = 0;
  for (int i = 0; i < ir.n_ops; i++) {
    f1 += cost_eval(ir.ops[i].fwd, 1, 64);
    f2 += cost_eval(ir.ops[i].fwd, 2, 64);
  }
  CU_ASSERT_DOUBLE_EQUAL(f2, 2 * f1, 1e-6 * f1);
  ir_free(&ir);
  front_free(&f);
  free(text);
}

static void test_ir_aggregate_and_sum(void) {
  Front f;
  CU_ASSERT_EQUAL_FATAL(load_file(&f, "dsl-examples/gpt2_e2e.lmn"), 0);
  Ir ir;
  ir_build(&ir, &f.net);
  int sums = 0, aggs = 0;
  for (int i = 0; i < ir.n_ops; i++) {
    sums += ir.ops[i].kind == OP_SUM;
    if (ir.ops[i].kind == OP_AGGREGATE) {
      aggs++;
      CU_ASSERT_EQUAL(ir.ops[i].n_inputs, 2);
    }
  }
  CU_ASSERT_EQUAL(sums, 1);
  CU_ASSERT_EQUAL(aggs, 1);
  CU_ASSERT_EQUAL(f.net.aggregate, AGG_SUM);
  CU_ASSERT_EQUAL(f.net.prefix, 32);
  ir_free(&ir);
  front_free(&f);
}

static void test_examples_check(void) {
  const char *files[] = {"tiny", "lmnet_1b", "gpt2_e2e", "smol_pair", "hetero", "dag", "classify"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char path[128];
    snprintf(path, sizeof path, "dsl-examples/%s.lmn", files[i]);
    Front f;
    CU_ASSERT_EQUAL(load_file(&f, path), 0);
    Ir ir;
    ir_build(&ir, &f.net);
    CU_ASSERT_EQUAL(f.net.params, ir_param_total(&ir, 0)); /* sema's count (for the limit) is the IR's */
    ir_free(&ir);
    front_free(&f);
  }
}

/* ---- limits and diagnostics at scale ---------------------------------------------------------------- */

/* Loads src and expects exit status `rc` and every string of the NULL-terminated list in the diagnostics. */
static void expect_diag(const char *src, int rc, const char *const *want) {
  Front f;
  char *text = NULL;
  CU_ASSERT_EQUAL(load(&f, src, &text), rc);
  for (int i = 0; want[i]; i++) {
    if (!strstr(text, want[i])) fprintf(stderr, "\nexpected '%s' in:\n%s\n", want[i], text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want[i]));
  }
  front_free(&f);
  free(text);
}

static void test_sema_limits(void) {
  for (int i = 0; i < LIM_COUNT; i++) { /* the table has a complete row for every limit */
    CU_ASSERT_PTR_NOT_NULL(sema_limits[i].name);
    CU_ASSERT_PTR_NOT_NULL(sema_limits[i].bounds);
    CU_ASSERT_PTR_NOT_NULL(sema_limits[i].hint);
    CU_ASSERT(sema_limits[i].max > 0);
  }
  CU_ASSERT_EQUAL(sema_limits[LIM_PARAMS].max, 1LL << 36);
  const char *deep = "network t\n"
                     "model m = llama { dim 8 layers 16777216 heads 2 kv_heads 1 ffn 16 vocab 256 ctx 64 }\n"
                     "vertex a = m\ntokens -> embed(m) -> a\na -> head(m) -> logits\n"
                     "loss lm = cross_entropy(logits, next(tokens))\n";
  expect_diag(deep, 1, (const char *[]){"t.lmn:2:32: error: model 'm' declares 'layers 16777216'; the limit is 1024",
                                        "= hint: ", NULL});
  const char *wide = "network t\n"
                     "model m = llama { dim 64 layers 1 heads 4 kv_heads 2 ffn 172 vocab 256 ctx 64 }\n"
                     "layers v = [1, 256, 1] of m, edges linear\n"
                     "tokens -> embed(m) -> v0_0\nv2_0 -> head(m) -> logits\n"
                     "loss lm = cross_entropy(logits, next(tokens))\n";
  expect_diag(wide, 0, (const char *[]){NULL}); /* 256 vertices in a layer are allowed */
  char two[1024];
  snprintf(two, sizeof two, "%sloss again = cross_entropy(logits, next(tokens))\n", tiny_src);
  expect_diag(two, 1, (const char *[]){"t.lmn:9:28: error: output 'logits' is read by two losses, 'lm' and 'again'",
                                       "t.lmn:8:25: note: loss 'lm' reads 'logits' first here", NULL});
}

/* A diagnostic on a very long line shows a window around the caret; after 100 errors lmnc stops. */
static void test_diag_long_line_and_error_cap(void) {
  size_t n = 120 * 1024;
  char *src = malloc(n + 256);
  CU_ASSERT_PTR_NOT_NULL_FATAL(src);
  size_t len = (size_t)sprintf(src, "network t\nvertex x0");
  for (int i = 1; len < n; i++) len += (size_t)sprintf(src + len, ", x%d", i);
  len += (size_t)sprintf(src + len, " = nosuch\n");
  Front f;
  char *text = NULL;
  CU_ASSERT_EQUAL(load(&f, src, &text), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "error: unknown model 'nosuch'"));
  for (char *line = text; *line;) {
    char *end = strchr(line, '\n');
    size_t w = end ? (size_t)(end - line) : strlen(line);
    CU_ASSERT(w <= DIAG_SHOW_COLS + 16); /* "  NNN | " and "..." around the window */
    line = end ? end + 1 : line + w;
  }
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "^~~~~~\n"));
  front_free(&f);
  free(text);
  len = (size_t)sprintf(src, "network t\n");
  for (int i = 0; i < 150; i++) len += (size_t)sprintf(src + len, "vertex x%d = nosuch\n", i);
  CU_ASSERT_EQUAL(load(&f, src, &text), 1);
  CU_ASSERT(f.diag.stopped);
  int errors = 0;
  for (const char *p = text; (p = strstr(p, ": error: ")); p++) errors++;
  CU_ASSERT_EQUAL(errors, DIAG_MAX_ERRORS);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "t.lmn: fatal error: too many errors emitted, stopping now\n"));
  front_free(&f);
  free(text);
  free(src);
}

/* A model without declared hyper-parameters reads them from the GGUF header. */
static void test_gguf_header_model(void) {
  char dir[] = "/tmp/lmnc-test-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char path[256], lmn[256];
  snprintf(path, sizeof path, "%s/m.gguf", dir);
  snprintf(lmn, sizeof lmn, "%s/net.lmn", dir);
  lmn_gguf_writer *w;
  lmn_err err;
  CU_ASSERT_EQUAL_FATAL(lmn_gguf_writer_new(&w, &err), 0);
  lmn_gguf_writer_add_str(w, "general.architecture", "llama", &err);
  lmn_gguf_writer_add_u32(w, "llama.context_length", 512, &err);
  lmn_gguf_writer_add_u32(w, "llama.embedding_length", 32, &err);
  lmn_gguf_writer_add_u32(w, "llama.block_count", 2, &err);
  lmn_gguf_writer_add_u32(w, "llama.feed_forward_length", 96, &err);
  lmn_gguf_writer_add_u32(w, "llama.attention.head_count", 4, &err);
  lmn_gguf_writer_add_u32(w, "llama.attention.head_count_kv", 2, &err);
  lmn_gguf_writer_add_u32(w, "llama.vocab_size", 100, &err);
  lmn_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &err);
  float emb[100 * 32] = {0};
  int64_t ne[2] = {32, 100};
  CU_ASSERT_EQUAL(lmn_gguf_writer_add_tensor_f32(w, "token_embd.weight", 2, ne, emb, &err), 0);
  CU_ASSERT_EQUAL_FATAL(lmn_gguf_writer_write(w, path, &err), 0);
  lmn_gguf_writer_free(w);
  FILE *fp = fopen(lmn, "w");
  fprintf(fp, "network g\nmodel m = gguf(\"m.gguf\")\nvertex a = m\ntokens -> embed(m) -> linear(bias) -> a\n"
              "a -> head(m) -> logits\nloss lm = cross_entropy(logits, next(tokens))\n");
  fclose(fp);
  Front f;
  CU_ASSERT_EQUAL(load_file(&f, lmn), 0);
  if (f.net.n_models == 1) {
    const lmn_hparams *hp = &f.net.models[0].hp;
    CU_ASSERT_EQUAL(hp->arch, LMN_ARCH_LLAMA);
    CU_ASSERT_EQUAL(hp->dim, 32);
    CU_ASSERT_EQUAL(hp->layers, 2);
    CU_ASSERT_EQUAL(hp->kv_heads, 2);
    CU_ASSERT_EQUAL(hp->vocab, 100);
    CU_ASSERT_EQUAL(hp->tied, 1);
  }
  front_free(&f);
  /* a truncated file is an error naming the file, not a crash */
  CU_ASSERT_EQUAL(truncate(path, 40), 0);
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  CU_ASSERT_EQUAL(front_load(&f, lmn, out), 1);
  fclose(out);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "cannot read the hyper-parameters of model 'm'"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "m.gguf"));
  front_free(&f);
  free(text);
  unlink(path);
  unlink(lmn);
  rmdir(dir);
}

/* A declared model from a file (the file is only opened at run time) with `OPT` after its block, and a vertex
 * named `weights`: the option's key is a plain name, not a keyword. */
static void weights_src(char *buf, size_t size, const char *opt) {
  snprintf(
      buf, size,
      "network w\nmodel m = gguf(\"m.gguf\") llama { dim 64 layers 1 heads 4 kv_heads 2 ffn 172 vocab 256 "
      "ctx 64 } %s\nvertex weights = m frozen\ntokens -> embed(m) -> linear(bias) -> weights\n"
      "weights -> head(m) -> logits\nloss lm = cross_entropy(logits, next(tokens))\n",
      opt);
}

/* Checks `weights OPT`: the model's format is `want`, `lmnc ir` text and JSON name it; returns the hash. */
static uint64_t weights_hash(const char *opt, int want, const char *name) {
  char src[512], *diag = NULL, *text = NULL, *json = NULL;
  size_t nt = 0, nj = 0;
  uint64_t hash = 0;
  Front f;
  weights_src(src, sizeof src, opt);
  CU_ASSERT_EQUAL_FATAL(load(&f, src, &diag), 0);
  CU_ASSERT_EQUAL(f.net.models[0].weights, want);
  Ir ir;
  ir_build(&ir, &f.net);
  FILE *t = open_memstream(&text, &nt), *j = open_memstream(&json, &nj);
  ir_print_text(&ir, t);
  ir_print_json(&ir, j);
  fclose(t);
  fclose(j);
  char line[64], key[64];
  snprintf(line, sizeof line, ") weights %s\n", name);
  snprintf(key, sizeof key, "\"weights\": \"%s\"}", name);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, line));
  CU_ASSERT_PTR_NOT_NULL(strstr(json, key));
  Sched p;
  lmn_err err = {0};
  CU_ASSERT_EQUAL(sched_build(&p, &ir, &err), 0);
  hash = p.hash;
  sched_free(&p);
  ir_free(&ir);
  front_free(&f);
  free(diag);
  free(text);
  free(json);
  return hash;
}

static void test_weights_option(void) {
  /* parsed: the option and its location on the model statement */
  char src[512];
  weights_src(src, sizeof src, "weights q8_0");
  int col = (int)(strstr(src, "weights q8_0") - strchr(src, '\n')); /* 1-based on line 2 */
  Program prog = {0};
  Diag d;
  FILE *null = fopen("/dev/null", "w");
  diag_init(&d, "t.lmn", src, null);
  CU_ASSERT_EQUAL(parse_source(&prog, &d, src, strlen(src)), 0);
  Stmt *model = prog.stmts.items[1];
  CU_ASSERT_EQUAL_FATAL(model->model_opts.n, 1);
  const Setting *o = model->model_opts.items[0];
  CU_ASSERT_STRING_EQUAL(o->key, "weights");
  CU_ASSERT_STRING_EQUAL(o->value.s, "q8_0");
  CU_ASSERT_EQUAL(o->at.line, 2);
  CU_ASSERT_EQUAL(o->at.col, col);
  CU_ASSERT_EQUAL(o->at.len, 7);
  CU_ASSERT_EQUAL(o->value.at.col, col + 8);
  CU_ASSERT_EQUAL(o->value.at.len, 4);
  arena_free(&prog.arena);
  fclose(null);
  /* resolved, printed and hashed: `file` (or nothing) keeps the hash of a network without the option */
  uint64_t none = weights_hash("", WEIGHTS_FILE, "file"),
           file = weights_hash("weights file", WEIGHTS_FILE, "file");
  uint64_t q8 = weights_hash("weights q8_0", LMN_GGML_Q8_0, "q8_0");
  uint64_t bf16 = weights_hash("weights bf16", LMN_GGML_BF16, "bf16");
  CU_ASSERT_NOT_EQUAL(weights_hash("weights f32", LMN_GGML_F32, "f32"), none);
  CU_ASSERT_NOT_EQUAL(weights_hash("weights f16", LMN_GGML_F16, "f16"), none);
  CU_ASSERT_NOT_EQUAL(weights_hash("weights q4_0", LMN_GGML_Q4_0, "q4_0"), none);
  CU_ASSERT_NOT_EQUAL(weights_hash("weights q4_1", LMN_GGML_Q4_1, "q4_1"), none);
  CU_ASSERT_EQUAL(none, file);
  CU_ASSERT_EQUAL(none, 0x6fc6b9d5cfa1b47bULL); /* this network's hash (edge tensors named from the .lmn) */
  CU_ASSERT_NOT_EQUAL(q8, none);
  CU_ASSERT_NOT_EQUAL(q8, bf16);
  /* errors: an unknown format, a second option, an unknown option, a model without a file */
  const char *bad[][2] = {
      {"weights q8", "unknown weights format 'q8'; did you mean 'q8_0'?"},
      {"weights q8_0 weights q8_0", "'weights' is given twice for model 'm'"},
      {"wieghts q8_0", "unknown model option 'wieghts'; did you mean 'weights'?"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *diag = NULL;
    Front f;
    weights_src(src, sizeof src, bad[i][0]);
    CU_ASSERT_EQUAL(load(&f, src, &diag), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(diag, bad[i][1]));
    front_free(&f);
    free(diag);
  }
  char *diag = NULL;
  Front f;
  const char *scratch =
      "network w\nmodel m = llama { dim 64 layers 1 heads 4 ffn 172 vocab 256 ctx 64 } weights f16\n"
      "vertex a = m\ntokens -> embed(m) -> a\na -> head(m) -> logits\n"
      "loss lm = cross_entropy(logits, next(tokens))\n";
  CU_ASSERT_EQUAL(load(&f, scratch, &diag), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(diag, "model 'm' has no file: its weights are trained from scratch in f32"));
  front_free(&f);
  free(diag);
}

static CU_TestInfo tests[] = {
    {"parse: statements and locations", test_parse_statements},
    {"parse: brackets span lines, string escapes", test_parse_brackets_and_strings},
    {"parse: recovery reports several errors", test_parse_recovery},
    {"sema: tiny network resolved", test_sema_tiny},
    {"sema: diagnostics", test_sema_errors},
    {"sema: reachability and vocabulary", test_sema_reach_and_vocab},
    {"ir: LMNet-1B parameter counts", test_ir_lmnet_1b_counts},
    {"ir: SmolLM2-135M and GPT-2 edge counts", test_ir_smollm2_and_gpt2_counts},
    {"ir: long skip sum and aggregation", test_ir_aggregate_and_sum},
    {"examples all check", test_examples_check},
    {"model hyper-parameters from a GGUF header", test_gguf_header_model},
    {"sema: limits (one table), two losses on one output", test_sema_limits},
    {"diag: long lines shortened, at most 100 errors", test_diag_long_line_and_error_cap},
    {"weights FORMAT: parsed, resolved, printed, hashed unless file", test_weights_option},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("front", tests)
