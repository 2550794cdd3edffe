/* test_hostile.c: CUnit suite for hostile inputs to the runtime's readers (issue 16): special files (FIFOs,
 * character devices, directories) given as model file, corpus, labelled data, config or checkpoint are
 * refused at once with the kind named; a model file's hyper-parameters are all compared with the compiled
 * ones (context length, eps, rope_theta too) and its non-finite weights are refused by tensor and file; a
 * checkpoint with a flipped float fails its checksum, a zeroed RNG state is refused; temporaries of killed
 * writes are removed; long paths are shortened in the middle so that a message keeps its cause. A hang is
 * caught by an alarm: the suite fails instead of blocking. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "config.h"
#include "data.h"
#include "dequant.h"
#include "gguf.h"
#include "harness.h"
#include "lmn_file.h"
#include "net.h"
#include "rng.h"
#include "safetensors.h"
#include "tokenizer_bpe.h"

/* ---- a hand-written network with one model file (as test_load.c) ----------------------------------------
 */

enum { D = 8, V = 16, F = 12 };

static size_t arena_floats(int B, int T, int nt) {
  (void)nt;
  return (size_t)B * T;
}
static size_t cache_floats(int ctx, int nt) {
  (void)nt;
  return (size_t)ctx;
}

static const lmn_param_info params[] = {
    {"e0.m0.weight", 0, D, D, 1, 0, "e0", LMN_INIT_NORMAL, 0, -1, -1, NULL, 0},
    {"m.token_embd.weight", 64, V, D, 0, -1, "m", LMN_INIT_NORMAL, 1, -1, 0, "token_embd.weight", 0},
    {"m.blk.0.ffn_up.weight", 192, F, D, 0, -1, "m", LMN_INIT_NORMAL, 1, -1, 0, "blk.0.ffn_up.weight", 0},
    {"m.output_norm.weight", 288, D, 0, 0, -1, "m", LMN_INIT_ONE, 1, -1, 0, "output_norm.weight", 0},
};

static char model_path[256];
static lmn_model_info models[1] = {
    {"m", model_path, "", 1, {LMN_ARCH_LLAMA, D, 1, 2, 2, F, V, 64, 1e-5, 10000, 1, 0}, -1}};

static lmn_net_desc desc = {.name = "hostile",
                            .source = "test",
                            .hash = 0x1234,
                            .vocab = V,
                            .ctx = 48,
                            .n_params = 4,
                            .params = params,
                            .n_models = 1,
                            .models = models,
                            .n_floats = 296,
                            .n_train = 64,
                            .n_train_decay = 64,
                            .arena_floats = arena_floats,
                            .cache_floats = cache_floats};

/* What write_model writes: the keys a test changes, and a NaN at one place of token_embd (-1: none). */
typedef struct model_opts {
  uint32_t ctx;
  float eps, theta;
  int nan_at;
} model_opts;

static const model_opts good = {64, 1e-5f, 10000.0f, -1};

static int write_model(const char *path, model_opts o) {
  static float emb[V * D], norm[D];
  static uint16_t up[F * D];
  for (int i = 0; i < V * D; i++) emb[i] = i == o.nan_at ? NAN : (float)i / 100.0f;
  for (int i = 0; i < F * D; i++) up[i] = lmn_f32_to_fp16((float)(i % 7) - 3.0f);
  for (int i = 0; i < D; i++) norm[i] = 2.0f;
  lmn_gguf_writer *w;
  lmn_err err;
  if (lmn_gguf_writer_new(&w, &err)) return -1;
  lmn_gguf_writer_add_str(w, "general.architecture", "llama", &err);
  lmn_gguf_writer_add_u32(w, "llama.context_length", o.ctx, &err);
  lmn_gguf_writer_add_u32(w, "llama.embedding_length", D, &err);
  lmn_gguf_writer_add_u32(w, "llama.block_count", 1, &err);
  lmn_gguf_writer_add_u32(w, "llama.feed_forward_length", F, &err);
  lmn_gguf_writer_add_u32(w, "llama.attention.head_count", 2, &err);
  lmn_gguf_writer_add_u32(w, "llama.attention.head_count_kv", 2, &err);
  lmn_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", o.eps, &err);
  lmn_gguf_writer_add_f32(w, "llama.rope.freq_base", o.theta, &err);
  int64_t ne_emb[2] = {D, V}, ne_up[2] = {D, F}, ne_norm[1] = {D};
  int rc = lmn_gguf_writer_add_tensor_f32(w, "token_embd.weight", 2, ne_emb, emb, &err) ||
           lmn_gguf_writer_add_tensor(w, "blk.0.ffn_up.weight", LMN_GGML_F16, 2, ne_up, up, &err) ||
           lmn_gguf_writer_add_tensor_f32(w, "output_norm.weight", 1, ne_norm, norm, &err) ||
           lmn_gguf_writer_write(w, path, &err);
  lmn_gguf_writer_free(w);
  return rc;
}

static char tmp[64]; /* this suite's directory */

static void in_tmp(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", tmp, name);
}

/* Creates the network from a model file written with o; returns lmn_net_create's status, err filled. */
static int create_with(model_opts o, lmn_err *err) {
  in_tmp(model_path, sizeof model_path, "m.gguf");
  if (write_model(model_path, o)) return -2;
  lmn_net *net = NULL;
  int rc = lmn_net_create(&net, &desc, 1, 4, 1, 5, err);
  lmn_net_destroy(net);
  unlink(model_path);
  return rc;
}

static int has(const lmn_err *err, const char *what) {
  if (strstr(err->msg, what)) return 1;
  fprintf(stderr, "\n  message: %s\n  lacks:   %s\n", err->msg, what);
  return 0;
}

/* ---- hang guard ------------------------------------------------------------------------------------------
 */

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "\ntest_hostile: FAIL: a reader blocked for 10 s (hang)\n";
  if (write(2, msg, sizeof msg - 1)) _exit(1);
  _exit(1);
}

static void guard(void) {
  signal(SIGALRM, on_alarm);
  alarm(10);
}

/* ---- model files -----------------------------------------------------------------------------------------
 */

static void test_hparams_all(void) {
  lmn_err err;
  CU_ASSERT_EQUAL(create_with(good, &err), 0);
  model_opts o = good;
  o.ctx = 2147483647u; /* absurd: no model has 2^31 positions */
  CU_ASSERT_EQUAL(create_with(o, &err), -1);
  CU_ASSERT(has(&err, "context_length 2147483647") && has(&err, "m.gguf"));
  o.ctx = 32; /* fewer positions than the network uses (48) */
  CU_ASSERT_EQUAL(create_with(o, &err), -1);
  CU_ASSERT(has(&err, "context_length 32") && has(&err, "48"));
  o = good;
  o.eps = 1e-6f;
  CU_ASSERT_EQUAL(create_with(o, &err), -1);
  CU_ASSERT(has(&err, "eps") && has(&err, "1e-05") && has(&err, "1e-06"));
  o = good;
  o.theta = 500000.0f;
  CU_ASSERT_EQUAL(create_with(o, &err), -1);
  CU_ASSERT(has(&err, "rope_theta") && has(&err, "500000"));
  o = good;
  o.ctx = 4096; /* more positions than the network uses is fine */
  CU_ASSERT_EQUAL(create_with(o, &err), 0);
}

static void test_model_nan(void) {
  lmn_err err;
  model_opts o = good;
  o.nan_at = 37;
  CU_ASSERT_EQUAL(create_with(o, &err), -1);
  CU_ASSERT(has(&err, "m.gguf") && has(&err, "token_embd.weight") && has(&err, "NaN"));
}

static void test_model_fifo(void) {
  in_tmp(model_path, sizeof model_path, "fifo.gguf");
  CU_ASSERT_EQUAL_FATAL(mkfifo(model_path, 0600), 0);
  guard();
  lmn_net *net = NULL;
  lmn_err err;
  CU_ASSERT_NOT_EQUAL(lmn_net_create(&net, &desc, 1, 4, 1, 5, &err), 0);
  alarm(0);
  CU_ASSERT(has(&err, "fifo.gguf") && has(&err, "FIFO"));
  lmn_net_destroy(net);
  unlink(model_path);
}

/* ---- special files and large files as data, config and checkpoint ------------------------------------ */

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
}

static int open_data(const char *train, int classes, lmn_data *d, lmn_err *err) {
  lmn_data_opts o = {.train_path = train, .val_fraction = 0.1, .seq_len = 8, .tok = NULL};
  return lmn_data_open_classes(d, &o, classes, err);
}

static void test_special_files(void) {
  char fifo[128];
  in_tmp(fifo, sizeof fifo, "fifo");
  CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
  guard();
  lmn_data d;
  lmn_err err;
  for (int classes = 0; classes <= 2; classes += 2) { /* a corpus, labelled data */
    CU_ASSERT_EQUAL(open_data(fifo, classes, &d, &err), -1);
    CU_ASSERT(has(&err, "fifo: is a FIFO, not a regular file"));
  }
  CU_ASSERT_EQUAL(open_data("/dev/zero", 0, &d, &err), -1);
  CU_ASSERT(has(&err, "/dev/zero: is a character device, not a regular file"));
  CU_ASSERT_EQUAL(open_data(tmp, 0, &d, &err), -1);
  CU_ASSERT(has(&err, "is a directory, not a regular file"));
  lmn_train_config cfg;
  CU_ASSERT_EQUAL(lmn_config_load(fifo, &cfg, &err), -1);
  CU_ASSERT(has(&err, "fifo: error: is a FIFO, not a regular file"));
  lmn_st *st = NULL;
  CU_ASSERT_EQUAL(lmn_st_open(fifo, LMN_ST_MMAP, &st, &err), -1);
  CU_ASSERT(has(&err, "is a FIFO"));
  lmn_gguf *g = NULL;
  CU_ASSERT_EQUAL(lmn_gguf_open(fifo, LMN_GGUF_META, &g, &err), -1);
  CU_ASSERT(has(&err, "is a FIFO"));
  /* a FIFO named `latest` in a checkpoint directory is ignored, not waited on */
  char dir[128], latest[160], path[256];
  in_tmp(dir, sizeof dir, "ck-fifo");
  snprintf(latest, sizeof latest, "%s/latest", dir);
  CU_ASSERT_EQUAL(mkdir(dir, 0700), 0);
  CU_ASSERT_EQUAL(mkfifo(latest, 0600), 0);
  CU_ASSERT_EQUAL(lmn_checkpoint_latest(dir, path, sizeof path, NULL, &err), 0);
  alarm(0);
  unlink(latest);
  rmdir(dir);
  unlink(fifo);
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f && fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
  if (f) fclose(f);
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A 4 GiB sparse corpus is mapped, not read: drawing batches from it leaves the resident size as it was. */
static void test_sparse_corpus(void) {
  char path[128];
  in_tmp(path, sizeof path, "sparse.txt");
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 4L << 30), 0);
  close(fd);
  long before = rss_kib();
  lmn_data d;
  lmn_err err;
  CU_ASSERT_EQUAL_FATAL(open_data(path, 0, &d, &err), 0);
  CU_ASSERT_EQUAL(lmn_data_tokens(&d, LMN_SPLIT_TRAIN) + lmn_data_tokens(&d, LMN_SPLIT_VAL), 4UL << 30);
  lmn_data_state st;
  lmn_data_state_init(&st, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, 3);
  int32_t x[4 * 8], y[4 * 8];
  for (int i = 0; i < 1000; i++) CU_ASSERT_EQUAL_FATAL(lmn_data_next(&d, &st, 4, 8, x, y, &err), 0);
  long grew = rss_kib() - before;
  if (grew > 65536) fprintf(stderr, "\n  resident size grew by %ld KiB\n", grew);
  CU_ASSERT(grew < 65536);
  lmn_data_close(&d);
  unlink(path);
}

/* Chunked tokenisation (and the token cache file) gives exactly the ids of the whole text. */
static void test_chunked_tokens(void) {
  const char *model = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  lmn_tokenizer tok;
  lmn_err err;
  if (access(model, R_OK) != 0 || lmn_tokenizer_load_gguf(&tok, model, &err) != 0) {
    fprintf(stderr, "(skipped: %s is absent; make models) ", model);
    return;
  }
  static const char *const pieces[] = {"Hello world! 123\n",
                                       "x=-42; y=+7.5e-3;\n\n",
                                       "   leading spaces\n",
                                       "trailing spaces   \n",
                                       "it's they'll we've I'M\r\n",
                                       "caf\xc3\xa9 \xe2\x80\x8d na\xc3\xafve \xf0\x9f\x98\x80\n",
                                       "<|im_start|>user\n",
                                       "hi<|im_end|>\n",
                                       "\t\ttabs\n \n",
                                       "1,000,000 3.14159\n",
                                       "(paren)\n[x]\n",
                                       "'quote'\n'\n",
                                       "a\n\nb\n"};
  char path[128];
  in_tmp(path, sizeof path, "text.txt");
  FILE *f = fopen(path, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  lmn_rng r;
  lmn_rng_seed(&r, 11);
  for (int i = 0; i < 3000; i++) fputs(pieces[lmn_rng_below(&r, sizeof pieces / sizeof *pieces)], f);
  fclose(f);
  lmn_data_opts o = {.train_path = path, .val_path = path, .seq_len = 8, .tok = &tok};
  lmn_data whole, cut;
  CU_ASSERT_EQUAL_FATAL(lmn_data_open(&whole, &o, &err), 0);
  static const size_t chunks[] = {1, 7, 100, 4096}, memory[] = {0, 50};
  for (size_t c = 0; c < 4; c++)
    for (size_t m = 0; m < 2; m++) {
      CU_ASSERT_EQUAL_FATAL(lmn_data_open_tuned(&cut, &o, 0, chunks[c], memory[m], &err), 0);
      size_t n = lmn_data_tokens(&whole, LMN_SPLIT_TRAIN);
      CU_ASSERT_EQUAL(lmn_data_tokens(&cut, LMN_SPLIT_TRAIN), n);
      CU_ASSERT(n == lmn_data_tokens(&cut, LMN_SPLIT_TRAIN) &&
                !memcmp(whole.split[0].ids, cut.split[0].ids, n * sizeof(int32_t)));
      CU_ASSERT_EQUAL(memory[m] > 0, cut.map[0] != NULL); /* the token cache file, mapped */
      lmn_data_close(&cut);
    }
  lmn_data_close(&whole);
  lmn_tokenizer_free(&tok);
  unlink(path);
}

/* ---- checkpoints -----------------------------------------------------------------------------------------
 */

static const lmn_param_info ck_params[] = {
    {"w", 0, 4, 4, 1, 0, "e0", LMN_INIT_NORMAL, 0, -1, -1, NULL, 0},
    {"b", 16, 4, 0, 0, -1, "m", LMN_INIT_NORMAL, 0, -1, -1, NULL, 0},
};
static const lmn_net_desc ck_desc = {.name = "ck",
                                     .source = "test",
                                     .hash = 0x77,
                                     .vocab = 4,
                                     .ctx = 8,
                                     .n_params = 2,
                                     .params = ck_params,
                                     .n_floats = 20,
                                     .n_train = 16,
                                     .n_train_decay = 16,
                                     .arena_floats = arena_floats,
                                     .cache_floats = cache_floats};

/* Offset in the file at path of float k of tensor name. */
static long float_at(const char *path, const char *name, int k) {
  FILE *f = fopen(path, "rb");
  uint64_t n = 0;
  if (!f || fread(&n, 8, 1, f) != 1 || n > 100000) return f ? fclose(f), -1 : -1;
  char *h = calloc(1, n + 1);
  long off = -1;
  if (h && fread(h, 1, n, f) == n) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\":{", name);
    const char *t = strstr(h, key), *o = t ? strstr(t, "\"data_offsets\":[") : NULL;
    if (o) off = 8 + (long)n + atol(o + 16) + 4L * k;
  }
  free(h);
  fclose(f);
  return off;
}

static void poke(const char *path, long off, const void *bytes, size_t n) {
  int fd = open(path, O_WRONLY);
  CU_ASSERT_FATAL(fd >= 0 && off > 0);
  CU_ASSERT_EQUAL(pwrite(fd, bytes, n, off), (ssize_t)n);
  close(fd);
}

static void save_ck(const char *path, lmn_net **net) {
  lmn_err err;
  CU_ASSERT_EQUAL_FATAL(lmn_net_create(net, &ck_desc, 1, 4, 1, 9, &err), 0);
  lmn_ckpt_state st = {.step = 3, .has_run = 1, .batch = 1, .seq_len = 4, .seed = 9};
  lmn_data_state_init(&st.data, LMN_SPLIT_TRAIN, LMN_ORDER_RANDOM, 9);
  st.data.batches = 3;
  lmn_rng_seed(&st.rng, 5);
  CU_ASSERT_EQUAL_FATAL(lmn_checkpoint_save(*net, path, &st, &err), 0);
}

static void test_checkpoint_checksum(void) {
  char path[128];
  in_tmp(path, sizeof path, "c.safetensors");
  lmn_net *net = NULL, *fresh = NULL;
  save_ck(path, &net);
  lmn_err err;
  CU_ASSERT_EQUAL(lmn_checkpoint_verify(&ck_desc, path, NULL, &err), 0);
  float v = 1000.0f;
  poke(path, float_at(path, "w", 5), &v, 4);
  CU_ASSERT_EQUAL_FATAL(lmn_net_create(&fresh, &ck_desc, 1, 4, 1, 10, &err), 0);
  float before = fresh->params[0];
  CU_ASSERT_EQUAL(lmn_checkpoint_load(fresh, path, &err), -1);
  CU_ASSERT(has(&err, "c.safetensors: tensor 'w' fails its checksum") && has(&err, "corrupt"));
  CU_ASSERT(fresh->params[0] == before && fresh->m == NULL); /* nothing changed */
  lmn_net_destroy(fresh);
  lmn_net_destroy(net);
  unlink(path);
}

static void test_checkpoint_state(void) {
  char path[128];
  in_tmp(path, sizeof path, "s.safetensors");
  lmn_net *net = NULL;
  save_ck(path, &net);
  lmn_err err;
  lmn_ckpt_state st;
  CU_ASSERT_EQUAL(lmn_checkpoint_verify(&ck_desc, path, &st, &err), 0);
  CU_ASSERT(st.has_run && st.step == 3 && lmn_rng_valid(&st.data.rng));
  /* zero the hex of data_state in place (same length, so the header stays valid) */
  FILE *f = fopen(path, "r+b");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  char head[4096] = {0};
  size_t got = fread(head, 1, sizeof head - 1, f);
  for (size_t i = 0; i < got; i++) head[i] = head[i] ? head[i] : ' ';
  const char *at = strstr(head, "\"data_state\":\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(at);
  char zeros[112];
  memset(zeros, '0', sizeof zeros);
  fseek(f, (long)(at - head) + 14, SEEK_SET);
  fwrite(zeros, 1, sizeof zeros, f);
  fclose(f);
  CU_ASSERT_EQUAL(lmn_checkpoint_verify(&ck_desc, path, &st, &err), -1);
  CU_ASSERT(has(&err, "s.safetensors: checkpoint metadata 'data_state' holds an all-zero generator"));
  /* a zeroed state reaching the data loader is an error, and the generator itself never spins */
  lmn_data_state zero;
  memset(&zero, 0, sizeof zero);
  lmn_data d;
  char text[128];
  in_tmp(text, sizeof text, "t.txt");
  FILE *t = fopen(text, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  for (int i = 0; i < 40; i++) fputs("abcdefghijklmnopqrstuvwxyz\n", t);
  fclose(t);
  CU_ASSERT_EQUAL_FATAL(open_data(text, 0, &d, &err), 0);
  int32_t x[8], y[8];
  guard();
  CU_ASSERT_EQUAL(lmn_data_next(&d, &zero, 1, 8, x, y, &err), -1);
  CU_ASSERT(has(&err, "all zeros"));
  lmn_rng r = {{0, 0, 0, 0}};
  CU_ASSERT_EQUAL(lmn_rng_below(&r, 3), 0);
  alarm(0);
  lmn_data_close(&d);
  lmn_net_destroy(net);
  unlink(path);
  unlink(text);
}

static void count_removed(void *ctx, const char *path) {
  (void)path;
  ++*(int *)ctx;
}

static void test_checkpoint_litter(void) {
  char dir[128], p[256];
  in_tmp(dir, sizeof dir, "ck-litter");
  CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
  static const char *const names[] = {/* three temporaries, then files that are not */
                                      "step-000004.safetensors.tmp.Ab12Cd",
                                      "latest.tmp.Zz99Yy",
                                      ".lmn-write-test.q1W2e3",
                                      "step-000004.safetensors",
                                      "notes.tmp.txt",
                                      "step-4.safetensors.tmp.Ab12Cd",
                                      "latest.tmp.toolong"};
  for (int i = 0; i < 7; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, names[i]);
    write_text(p, "x");
  }
  int removed = 0;
  lmn_err err;
  CU_ASSERT_EQUAL(lmn_checkpoint_clean(dir, count_removed, &removed, &err), 3);
  CU_ASSERT_EQUAL(removed, 3);
  for (int i = 0; i < 7; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, names[i]);
    CU_ASSERT_EQUAL(access(p, F_OK) == 0, i >= 3); /* only the temporaries are gone */
    unlink(p);
  }
  CU_ASSERT_EQUAL(lmn_checkpoint_writable(dir, &err), 0);
  rmdir(dir);
  CU_ASSERT_EQUAL(lmn_checkpoint_writable(dir, &err), -1);
  CU_ASSERT(has(&err, "ck-litter: the checkpoint directory is not writable: No such file or directory"));
}

/* ---- messages ---------------------------------------------------------------------------------------------
 */

static void test_long_paths(void) {
  char *path = malloc(5001);
  CU_ASSERT_PTR_NOT_NULL_FATAL(path);
  memset(path, 'd', 5000);
  path[0] = '/';
  path[5000] = '\0';
  lmn_err err;
  lmn_errf(&err, "%s: cannot open: No such file or directory", path);
  size_t n = strlen(err.msg);
  CU_ASSERT(n < sizeof err.msg && strstr(err.msg, "...") != NULL);
  CU_ASSERT(n > 30 && !strcmp(err.msg + n - 30, "open: No such file or directory" + 1));
  /* several long paths: still the cause at the end */
  lmn_errf(&err, "%s -> %s -> %s: the cause", path, path, path);
  n = strlen(err.msg);
  CU_ASSERT(n < sizeof err.msg && n > 9 && !strcmp(err.msg + n - 9, "the cause"));
  /* a short message is untouched */
  lmn_errf(&err, "%s: %d", "x.txt", 7);
  CU_ASSERT_STRING_EQUAL(err.msg, "x.txt: 7");
  CU_ASSERT_EQUAL(strlen(LMN_SHORT(path)), (size_t)LMN_PATH_SHOWN);
  /* a checkpoint.dir of 5000 characters: the config names its line and the cause */
  char yaml[128];
  in_tmp(yaml, sizeof yaml, "long.yaml");
  FILE *f = fopen(yaml, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "data: {train: a.txt}\nbatch: 1\nseq_len: 8\nsteps: 1\ncheckpoint:\n  dir: %s\n", path + 1);
  fclose(f);
  lmn_train_config cfg;
  CU_ASSERT_EQUAL(lmn_config_load(yaml, &cfg, &err), -1);
  CU_ASSERT(has(&err, "long.yaml:6:8: error: 'checkpoint.dir' is too long: a path of") && has(&err, "..."));
  free(path);
  unlink(yaml);
}

static void test_crc32c(void) {
  CU_ASSERT_EQUAL(lmn_crc32c(0, "123456789", 9), 0xE3069283u);
  CU_ASSERT_EQUAL(lmn_crc32c(lmn_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
  CU_ASSERT_EQUAL(lmn_crc32c(0, "", 0), 0u);
  static unsigned char zeros[32];
  CU_ASSERT_EQUAL(lmn_crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
}

static CU_TestInfo tests[] = {
    {"a model file's hyper-parameters: context length, eps and rope_theta too", test_hparams_all},
    {"a non-finite weight in a model file names the tensor and the file", test_model_nan},
    {"a FIFO as model file: an error, no hang", test_model_fifo},
    {"FIFOs, devices and directories as data, config, checkpoint", test_special_files},
    {"a 4 GiB sparse corpus is mapped, not read", test_sparse_corpus},
    {"chunked tokenisation and the token cache give the whole text's ids", test_chunked_tokens},
    {"a flipped float fails the checkpoint's checksum", test_checkpoint_checksum},
    {"a zeroed RNG state is refused, and never spins", test_checkpoint_state},
    {"temporaries of killed writes are removed; writability", test_checkpoint_litter},
    {"long paths are shortened in the middle; the cause stays", test_long_paths},
    {"CRC32C check values", test_crc32c},
    CU_TEST_INFO_NULL,
};

static int run(void) {
  snprintf(tmp, sizeof tmp, "/tmp/lmn-hostile-XXXXXX");
  if (!mkdtemp(tmp)) return 2;
  int rc = lmn_test_run("hostile", tests);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd)) rc = rc ? rc : 2;
  return rc;
}

int main(void) {
  return run();
}
