/* test_hf.c: CUnit suite for Hugging Face model directories: one set of random weights per architecture
 * (tests/reference/make_hf_fixture.py) written both as a GGUF and as config.json + model.safetensors is
 * loaded into the same hand-written network descriptor, once per format, and the parameter buffers must be
 * bit-identical (name mapping, llama q/k permutation, gpt2 Conv1D transposition, shards); config.json is
 * read into hyper-parameters (also by the compiler, without an inline block), and bad configs, JSON and
 * mismatches are errors naming the file and the key or tensor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "front.h"
#include "harness.h"
#include "net.h"
#include "qnet.h"
#include "safetensors.h"

#define FIX "tests/fixtures/hf/"

static size_t arena_floats(int B, int T, int nt) {
  (void)nt;
  return (size_t)B * T;
}
static size_t cache_floats(int ctx, int nt) {
  (void)nt;
  return (size_t)ctx;
}

/* ---- a network descriptor holding every tensor of one model, in the compiler's GGUF naming ---- */

enum { MAX_PARAMS = 64 };

typedef struct model_desc {
  lmn_param_info params[MAX_PARAMS];
  char names[MAX_PARAMS][2][64];
  lmn_model_info model;
  char path[512];
  lmn_net_desc desc;
} model_desc;

static void add(model_desc *m, const char *tensor, long rows, long cols) {
  int i = m->desc.n_params++;
  snprintf(m->names[i][0], 64, "m.%s", tensor);
  snprintf(m->names[i][1], 64, "%s", tensor);
  lmn_param_info p = {m->names[i][0], m->desc.n_floats, rows, cols, 0, -1, "m", LMN_INIT_NORMAL, 1, -1, 0,
                      m->names[i][1], 0};
  m->params[i] = p;
  m->desc.n_floats += (size_t)rows * (size_t)(cols ? cols : 1);
}

static void add_block(model_desc *m, long l, const lmn_hparams *hp) {
  long d = hp->dim, kvd = hp->kv_heads * (d / hp->heads), f = hp->ffn;
  char t[64];
#define T(name) (snprintf(t, sizeof t, "blk.%ld.%s", l, name), t)
  if (hp->arch == LMN_ARCH_GPT2) {
    const char *names[] = {"attn_norm.weight",   "attn_norm.bias",   "attn_qkv.weight", "attn_qkv.bias",
                           "attn_output.weight", "attn_output.bias", "ffn_norm.weight", "ffn_norm.bias",
                           "ffn_up.weight",      "ffn_up.bias",      "ffn_down.weight", "ffn_down.bias"};
    long shapes[][2] = {{d, 0}, {d, 0}, {3 * d, d}, {3 * d, 0}, {d, d}, {d, 0},
                        {d, 0}, {d, 0}, {f, d},     {f, 0},     {d, f}, {d, 0}};
    for (int i = 0; i < 12; i++) add(m, T(names[i]), shapes[i][0], shapes[i][1]);
    return;
  }
  add(m, T("attn_norm.weight"), d, 0);
  add(m, T("attn_q.weight"), d, d);
  if (hp->qkv_bias) add(m, T("attn_q.bias"), d, 0);
  add(m, T("attn_k.weight"), kvd, d);
  if (hp->qkv_bias) add(m, T("attn_k.bias"), kvd, 0);
  add(m, T("attn_v.weight"), kvd, d);
  if (hp->qkv_bias) add(m, T("attn_v.bias"), kvd, 0);
  add(m, T("attn_output.weight"), d, d);
  add(m, T("ffn_norm.weight"), d, 0);
  add(m, T("ffn_gate.weight"), f, d);
  add(m, T("ffn_up.weight"), f, d);
  add(m, T("ffn_down.weight"), d, f);
#undef T
}

static void build_desc(model_desc *m, const lmn_hparams *hp, int format, const char *path) {
  memset(m, 0, sizeof *m);
  snprintf(m->path, sizeof m->path, "%s", path);
  m->model = (lmn_model_info){"m", m->path, "", format, *hp, -1};
  m->desc = (lmn_net_desc){.name = "hftest",
                           .source = "test",
                           .vocab = (int)hp->vocab,
                           .ctx = (int)hp->ctx,
                           .params = m->params,
                           .n_models = 1,
                           .models = &m->model,
                           .tokenizer_model = -1,
                           .arena_floats = arena_floats,
                           .cache_floats = cache_floats};
  add(m, "token_embd.weight", hp->vocab, hp->dim);
  if (hp->arch == LMN_ARCH_GPT2) add(m, "position_embd.weight", hp->ctx, hp->dim);
  for (long l = 0; l < hp->layers; l++) add_block(m, l, hp);
  add(m, "output_norm.weight", hp->dim, 0);
  if (hp->arch == LMN_ARCH_GPT2) add(m, "output_norm.bias", hp->dim, 0);
  if (!hp->tied) add(m, "output.weight", hp->vocab, hp->dim);
}

/* ---- fixtures: copied under their real names (the repository ignores *.gguf and *.safetensors) ---- */

static int copy_file(const char *src, const char *dst) {
  FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wb") : NULL;
  char buf[8192];
  size_t n;
  int rc = in && out ? 0 : -1;
  while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
    if (fwrite(buf, 1, n, out) != n) rc = -1;
  if (in) fclose(in);
  if (out && fclose(out) != 0) rc = -1;
  return rc;
}

static char tmp[64];

/* tmp/NAME.gguf and tmp/NAME/{config.json, *.safetensors} from FIX; files: the .dat names in FIX/NAME. */
static void stage(const char *name, const char *const *files) {
  char src[512], dst[512];
  snprintf(dst, sizeof dst, "%s/%s", tmp, name);
  mkdir(dst, 0755);
  snprintf(src, sizeof src, FIX "%s.gguf.dat", name);
  snprintf(dst, sizeof dst, "%s/%s.gguf", tmp, name);
  CU_ASSERT_EQUAL_FATAL(copy_file(src, dst), 0);
  snprintf(src, sizeof src, FIX "%s/config.json", name);
  snprintf(dst, sizeof dst, "%s/%s/config.json", tmp, name);
  CU_ASSERT_EQUAL_FATAL(copy_file(src, dst), 0);
  for (int i = 0; files[i]; i++) {
    snprintf(src, sizeof src, FIX "%s/%s.dat", name, files[i]);
    snprintf(dst, sizeof dst, "%s/%s/%s", tmp, name, files[i]);
    CU_ASSERT_EQUAL_FATAL(copy_file(src, dst), 0);
  }
}

static void unstage(const char *name, const char *const *files) {
  char p[512];
  for (int i = 0; files[i]; i++) snprintf(p, sizeof p, "%s/%s/%s", tmp, name, files[i]), unlink(p);
  snprintf(p, sizeof p, "%s/%s/config.json", tmp, name), unlink(p);
  snprintf(p, sizeof p, "%s/%s", tmp, name), rmdir(p);
  snprintf(p, sizeof p, "%s/%s.gguf", tmp, name), unlink(p);
}

/* The parameters a descriptor loads (NULL on error, message in err). */
static float *load(const lmn_net_desc *desc, uint64_t seed, lmn_err *err) {
  lmn_net *net = NULL;
  if (lmn_net_create(&net, desc, 1, 4, 1, seed, err) != 0) return NULL;
  float *p = malloc(sizeof(float) * desc->n_floats);
  for (int i = 0; i < desc->n_params; i++) /* f32 or kept in the file's format alike, in the desc's layout */
    lmn_net_param_rows(net, i, 0, desc->params[i].cols ? desc->params[i].rows : 1, p + desc->params[i].offset);
  lmn_net_destroy(net);
  return p;
}

/* GGUF and HF copies of one model load bit-identically (different seeds: nothing is left unloaded). */
static void same_weights(const char *name, const char *const *files) {
  stage(name, files);
  char gguf[512], dir[512];
  snprintf(gguf, sizeof gguf, "%s/%s.gguf", tmp, name);
  snprintf(dir, sizeof dir, "%s/%s", tmp, name);
  lmn_hparams hp;
  lmn_err err;
  int rc = lmn_hf_hparams(dir, &hp, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  static model_desc a, b;
  build_desc(&a, &hp, 1, gguf);
  build_desc(&b, &hp, 2, dir);
  float *pa = load(&a.desc, 5, &err);
  if (!pa) fprintf(stderr, "%s\n", err.msg);
  float *pb = load(&b.desc, 6, &err);
  if (!pb) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_PTR_NOT_NULL(pa);
  CU_ASSERT_PTR_NOT_NULL(pb);
  if (pa && pb) CU_ASSERT_EQUAL(memcmp(pa, pb, sizeof(float) * a.desc.n_floats), 0);
  free(pa);
  free(pb);
  unstage(name, files);
}

static const char *const one_file[] = {"model.safetensors", NULL};

static void test_llama(void) {
  same_weights("llama", one_file);
}
static void test_qwen2(void) {
  same_weights("qwen2", one_file);
}
static void test_gpt2(void) {
  same_weights("gpt2", one_file);
}

static void test_sharded(void) {
  static const char *const shards[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                       NULL};
  /* llama_sharded has the llama weights: compare against llama.gguf */
  char src[512], dst[512];
  snprintf(dst, sizeof dst, "%s/llama_sharded", tmp);
  mkdir(dst, 0755);
  snprintf(src, sizeof src, FIX "llama.gguf.dat");
  snprintf(dst, sizeof dst, "%s/llama_sharded.gguf", tmp);
  CU_ASSERT_EQUAL_FATAL(copy_file(src, dst), 0);
  snprintf(dst, sizeof dst, "%s/llama_sharded/config.json", tmp);
  CU_ASSERT_EQUAL_FATAL(copy_file(FIX "llama_sharded/config.json", dst), 0);
  for (int i = 0; shards[i]; i++) {
    snprintf(src, sizeof src, FIX "llama_sharded/%s.dat", shards[i]);
    snprintf(dst, sizeof dst, "%s/llama_sharded/%s", tmp, shards[i]);
    CU_ASSERT_EQUAL_FATAL(copy_file(src, dst), 0);
  }
  /* stage() would copy llama_sharded.gguf.dat, which does not exist: the same_weights body, inline */
  char gguf[512], dir[512];
  snprintf(gguf, sizeof gguf, "%s/llama_sharded.gguf", tmp);
  snprintf(dir, sizeof dir, "%s/llama_sharded", tmp);
  lmn_hparams hp;
  lmn_err err;
  CU_ASSERT_EQUAL_FATAL(lmn_hf_hparams(dir, &hp, &err), 0);
  static model_desc a, b;
  build_desc(&a, &hp, 1, gguf);
  build_desc(&b, &hp, 2, dir);
  float *pa = load(&a.desc, 5, &err), *pb = load(&b.desc, 6, &err);
  if (!pb) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_PTR_NOT_NULL(pa);
  CU_ASSERT_PTR_NOT_NULL(pb);
  if (pa && pb) CU_ASSERT_EQUAL(memcmp(pa, pb, sizeof(float) * a.desc.n_floats), 0);
  free(pa);
  free(pb);
  unstage("llama_sharded", shards);
}

/* ---- config.json ---- */

static void test_config_values(void) {
  lmn_hparams hp;
  lmn_err err;
  CU_ASSERT_EQUAL_FATAL(lmn_hf_hparams(FIX "llama", &hp, &err), 0);
  CU_ASSERT(hp.arch == LMN_ARCH_LLAMA && hp.dim == 16 && hp.layers == 2 && hp.heads == 4 && hp.kv_heads == 2);
  CU_ASSERT(hp.ffn == 24 && hp.vocab == 32 && hp.ctx == 32 && hp.eps == 1e-5 && hp.rope_theta == 10000.0);
  CU_ASSERT(hp.tied == 0 && hp.qkv_bias == 0);
  CU_ASSERT_EQUAL_FATAL(lmn_hf_hparams(FIX "qwen2", &hp, &err), 0);
  CU_ASSERT(hp.arch == LMN_ARCH_QWEN2 && hp.layers == 1 && hp.ffn == 20 && hp.tied == 1 && hp.qkv_bias == 1);
  CU_ASSERT(hp.eps == 1e-6 && hp.rope_theta == 1e6);
  CU_ASSERT_EQUAL_FATAL(lmn_hf_hparams(FIX "gpt2", &hp, &err), 0);
  /* n_inner null: 4 * n_embd; tie_word_embeddings absent: tied */
  CU_ASSERT(hp.arch == LMN_ARCH_GPT2 && hp.dim == 16 && hp.heads == 4 && hp.kv_heads == 4 && hp.ffn == 64);
  CU_ASSERT(hp.tied == 1 && hp.qkv_bias == 0 && hp.ctx == 32 && hp.eps == 1e-5);
}

/* Writes tmp/cfg/config.json and expects lmn_hf_hparams to fail with a message holding want. */
static void bad_config(const char *json, const char *want) {
  char dir[128], path[160];
  snprintf(dir, sizeof dir, "%s/cfg", tmp);
  mkdir(dir, 0755);
  snprintf(path, sizeof path, "%s/config.json", dir);
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(json, f);
  fclose(f);
  lmn_hparams hp;
  lmn_err err;
  int rc = lmn_hf_hparams(dir, &hp, &err);
  CU_ASSERT_NOT_EQUAL(rc, 0);
  if (rc == 0) return;
  if (!strstr(err.msg, want) || !strstr(err.msg, "config.json")) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
  unlink(path);
  rmdir(dir);
}

#define LLAMA_OK                                                                                           \
  "\"hidden_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 24, " \
  "\"vocab_size\": 32, \"max_position_embeddings\": 32, \"rms_norm_eps\": 1e-5, \"tie_word_embeddings\": " \
  "true"

static void test_config_errors(void) {
  bad_config("{" LLAMA_OK "}", "key 'model_type' is missing");
  bad_config("{\"model_type\": \"mamba\", " LLAMA_OK "}", "'mamba' is not supported");
  bad_config("{\"model_type\": 3, " LLAMA_OK "}", "key 'model_type' must be a string");
  bad_config("{\"model_type\": \"llama\", \"num_hidden_layers\": 2}", "key 'hidden_size' is missing");
  bad_config("{\"model_type\": \"llama\", \"hidden_size\": 16.5, \"num_hidden_layers\": 2}",
             "key 'hidden_size' must be a positive integer");
  bad_config("{\"model_type\": \"llama\", \"hidden_size\": -16}",
             "key 'hidden_size' must be a positive integer");
  bad_config("{\"model_type\": \"llama\", \"hidden_size\": \"16\"}",
             "key 'hidden_size' must be a positive integer");
  bad_config(
      "{\"model_type\": \"gpt2\", \"n_embd\": 16, \"n_layer\": 2, \"n_head\": 4, \"vocab_size\": 32, "
      "\"n_positions\": 32}",
      "key 'rms_norm_eps' is missing");
  bad_config(
      "{\"model_type\": \"llama\", \"rms_norm_eps\": 0, \"hidden_size\": 16, \"num_hidden_layers\": 2, "
      "\"num_attention_heads\": 4, \"intermediate_size\": 24, \"vocab_size\": 32, "
      "\"max_position_embeddings\": 32}",
      "key 'rms_norm_eps' must be a positive number");
  bad_config("{\"model_type\": \"llama\", " LLAMA_OK ", \"num_key_value_heads\": 3}",
             "key 'num_key_value_heads': 3 does not divide");
  bad_config("{\"model_type\": \"llama\", " LLAMA_OK ", \"rope_scaling\": {\"type\": \"linear\"}}",
             "key 'rope_scaling' is not supported");
  bad_config("{\"model_type\": \"llama\", " LLAMA_OK ", \"head_dim\": 8}", "key 'head_dim': 8 differs");
  bad_config("{\"model_type\": \"llama\", " LLAMA_OK ", \"mlp_bias\": true}", "key 'mlp_bias'");
  bad_config("{\"model_type\": \"llama\", " LLAMA_OK ", \"attention_bias\": 1}",
             "key 'attention_bias' must be true or false");
  bad_config(
      "{\"model_type\": \"llama\", \"hidden_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": "
      "4, "
      "\"intermediate_size\": 24, \"vocab_size\": 32, \"max_position_embeddings\": 32, \"rms_norm_eps\": "
      "1e-5}",
      "key 'tie_word_embeddings' is missing");
  /* JSON errors carry the offset */
  bad_config("{\"model_type\": \"llama\", \"model_type\": \"llama\"}", "duplicate key 'model_type'");
  bad_config("{\"a\": [1, 2,]}", "JSON at offset");
  bad_config("{\"a\": {\"b\": }}", "JSON at offset");
  bad_config("{\"a\": 01}", "leading zero");
  bad_config("{\"a\": tru}", "expected a value");
  bad_config("{\"a\": 1e999}", "number out of range");
  bad_config("{\"a\": 1} x", "unexpected data after the object");
  bad_config("[1]", "expected '{'");
  bad_config("", "expected '{'");
  char deep[300] = "{\"a\": ";
  for (int i = 0; i < 70; i++) strcat(deep, "[");
  bad_config(deep, "nested more than 64 deep");
  char dir[128];
  snprintf(dir, sizeof dir, "%s/none", tmp);
  lmn_hparams hp;
  lmn_err err;
  CU_ASSERT_NOT_EQUAL(lmn_hf_hparams(dir, &hp, &err), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "none/config.json: cannot open"));
}

static void test_json_values(void) {
  const char *doc =
      "{\"s\": \"a\\u00e9\\n\", \"i\": -12, \"f\": 2.5e-3, \"t\": true, \"n\": null, "
      "\"o\": {\"x\": [1, {\"y\": []}, \"z\"], \"e\": {}}, \"a\": [[], [[]]]}";
  lmn_json *j = NULL;
  lmn_err err;
  CU_ASSERT_EQUAL_FATAL(lmn_json_parse(doc, strlen(doc), "doc", &j, &err), 0);
  const lmn_json_value *v = lmn_json_get(j, "s");
  CU_ASSERT(v && v->kind == LMN_JSON_STRING && strcmp(v->str, "a\xc3\xa9\n") == 0);
  v = lmn_json_get(j, "i");
  CU_ASSERT(v && v->kind == LMN_JSON_NUMBER && v->num == -12 && v->is_int);
  v = lmn_json_get(j, "f");
  CU_ASSERT(v && v->kind == LMN_JSON_NUMBER && v->num == 2.5e-3 && !v->is_int);
  v = lmn_json_get(j, "t");
  CU_ASSERT(v && v->kind == LMN_JSON_BOOL && v->boolean);
  CU_ASSERT(lmn_json_get(j, "n") && lmn_json_get(j, "n")->kind == LMN_JSON_NULL);
  CU_ASSERT(lmn_json_get(j, "o") && lmn_json_get(j, "o")->kind == LMN_JSON_OBJECT);
  CU_ASSERT(lmn_json_get(j, "a") && lmn_json_get(j, "a")->kind == LMN_JSON_ARRAY);
  CU_ASSERT_PTR_NULL(lmn_json_get(j, "x"));
  /* nested values are kept: o.x = [1, {"y": []}, "z"], o.e = {} */
  const lmn_json_value *x = lmn_json_member(lmn_json_get(j, "o"), "x");
  CU_ASSERT_FATAL(x && x->kind == LMN_JSON_ARRAY && x->n == 3);
  CU_ASSERT(x->items[0].kind == LMN_JSON_NUMBER && x->items[0].num == 1 && !x->items[0].key);
  const lmn_json_value *y = lmn_json_member(&x->items[1], "y");
  CU_ASSERT(y && y->kind == LMN_JSON_ARRAY && y->n == 0 && strcmp(y->key, "y") == 0);
  CU_ASSERT(x->items[2].kind == LMN_JSON_STRING && strcmp(x->items[2].str, "z") == 0);
  const lmn_json_value *e = lmn_json_member(lmn_json_get(j, "o"), "e");
  CU_ASSERT(e && e->kind == LMN_JSON_OBJECT && e->n == 0);
  CU_ASSERT_PTR_NULL(lmn_json_member(x, "y")); /* not an object */
  const lmn_json_value *a = lmn_json_get(j, "a");
  CU_ASSERT(a && a->n == 2 && a->items[1].n == 1 && a->items[1].items[0].kind == LMN_JSON_ARRAY);
  lmn_json_free(j);
  /* a key twice in a nested object is an error too */
  const char *dup = "{\"o\": {\"k\": 1, \"b\": 2, \"k\": 3}}";
  CU_ASSERT_NOT_EQUAL(lmn_json_parse(dup, strlen(dup), "doc", &j, &err), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "duplicate key 'k'"));
  /* every prefix of the document is rejected without a crash */
  for (size_t n = 0; n < strlen(doc); n++) {
    CU_ASSERT_NOT_EQUAL(lmn_json_parse(doc, n, "doc", &j, &err), 0);
    CU_ASSERT_PTR_NULL(j);
  }
}

/* ---- loading errors ---- */

static void test_load_errors(void) {
  stage("llama", one_file);
  char dir[512];
  snprintf(dir, sizeof dir, "%s/llama", tmp);
  lmn_hparams hp;
  lmn_err err;
  CU_ASSERT_EQUAL_FATAL(lmn_hf_hparams(dir, &hp, &err), 0);
  static model_desc m;
  /* compiled for another ffn: the config's value is named */
  lmn_hparams other = hp;
  other.ffn = 28;
  build_desc(&m, &other, 2, dir);
  CU_ASSERT_PTR_NULL(load(&m.desc, 1, &err));
  CU_ASSERT_PTR_NOT_NULL(
      strstr(err.msg, "config.json: ffn is 24 in the file but the network was compiled for 28"));
  /* a tensor the file lacks, and one without an HF name */
  build_desc(&m, &hp, 2, dir);
  m.names[1][1][4] = '7'; /* blk.0.attn_norm.weight -> blk.7.attn_norm.weight */
  CU_ASSERT_PTR_NULL(load(&m.desc, 1, &err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "tensor 'model.layers.7.input_layernorm.weight' (for 'blk.7."));
  build_desc(&m, &hp, 2, dir);
  snprintf(m.names[1][1], 64, "blk.0.ffn_mystery.weight");
  CU_ASSERT_PTR_NULL(load(&m.desc, 1, &err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "tensor 'blk.0.ffn_mystery.weight' has no Hugging Face llama name"));
  /* a shape mismatch names the file and the tensor */
  build_desc(&m, &hp, 2, dir);
  m.params[m.desc.n_params - 1].rows = 31, m.desc.n_floats -= 16; /* output.weight [31, 16] */
  CU_ASSERT_PTR_NULL(load(&m.desc, 1, &err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "lm_head.weight"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "model.safetensors"));
  /* no weights at all */
  char p[600];
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  unlink(p);
  build_desc(&m, &hp, 2, dir);
  CU_ASSERT_PTR_NULL(load(&m.desc, 1, &err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no model.safetensors and no model-*-of-*.safetensors shards"));
  unstage("llama", one_file);
}

/* ---- the compiler reads config.json when no block is declared ---- */

static void test_lmnc_reads_config(void) {
  char cwd[512], src[1400];
  CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
  snprintf(src, sizeof src,
           "network t\nmodel m = safetensors(\"%s/" FIX
           "llama\")\nvertex v = m\n"
           "tokens -> embed(m) -> v\nv -> head(m) -> logits\nloss lm = cross_entropy(logits, next(tokens))\n",
           cwd);
  Front f;
  int rc = front_load_mem(&f, "hf.lmn", src, strlen(src), stderr);
  CU_ASSERT_EQUAL(rc, 0);
  if (rc == 0 && f.net.n_models == 1) {
    const lmn_hparams *hp = &f.net.models[0].hp;
    CU_ASSERT(hp->arch == LMN_ARCH_LLAMA && hp->dim == 16 && hp->layers == 2 && hp->kv_heads == 2 &&
              !hp->tied);
  }
  front_free(&f);
  FILE *devnull = fopen("/dev/null", "w");
  snprintf(src, sizeof src, "network t\nmodel m = safetensors(\"%s/" FIX "gpt2/config.json\")\n", cwd);
  CU_ASSERT_NOT_EQUAL(front_load_mem(&f, "hf.lmn", src, strlen(src), devnull), 0);
  front_free(&f);
  fclose(devnull);
}

static int suite_init(void) {
  snprintf(tmp, sizeof tmp, "/tmp/lmn-hf-XXXXXX");
  return mkdtemp(tmp) ? 0 : -1;
}

static CU_TestInfo tests[] = {
    {"llama: HF (permuted q/k) == GGUF, bit for bit", test_llama},
    {"qwen2: HF (biases, no permutation) == GGUF", test_qwen2},
    {"gpt2: HF (Conv1D transposed, transformer. prefix) == GGUF", test_gpt2},
    {"llama in two shards == GGUF", test_sharded},
    {"config.json into hyper-parameters (llama, qwen2, gpt2 defaults)", test_config_values},
    {"bad config.json: errors name the file and the key", test_config_errors},
    {"the JSON reader: values, nesting, truncations", test_json_values},
    {"loading errors name the file and the tensor", test_load_errors},
    {"the compiler reads config.json without an inline block", test_lmnc_reads_config},
    CU_TEST_INFO_NULL,
};

int main(void) {
  if (suite_init() != 0) return 2;
  int rc = lmn_test_run("hf", tests);
  rmdir(tmp);
  return rc;
}
