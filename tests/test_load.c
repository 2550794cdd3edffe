/* test_load.c: CUnit suite for loading a compiled network's tensors from its model file: a GGUF written
 * with known values (f32 and f16) is loaded into a hand-written network descriptor; hyper-parameter and
 * shape mismatches and missing files are errors naming the file and the tensor; the fixed prefix is
 * re-drawn from the loaded embedding's statistics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dequant.h"
#include "gguf.h"
#include "harness.h"
#include "net.h"
#include "qnet.h"

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
    {"m.prefix", 296, 4, D, 0, -1, "m", LMN_INIT_EMBED_STATS, 0, 1, -1, NULL, 0},
};

static char model_path[256];
static lmn_model_info models[1] = {{"m", model_path, "", 1, {LMN_ARCH_LLAMA, D, 1, 2, 2, F, V, 64, 1e-5, 10000, 1, 0}, -1}};

static lmn_net_desc desc = {.name = "loadtest", .source = "test", .vocab = V, .ctx = 64, .n_params = 5,
                            .params = params, .n_models = 1, .models = models, .n_floats = 328, .n_train = 64,
                            .n_train_decay = 64, .arena_floats = arena_floats, .cache_floats = cache_floats};

/* Writes the model file: token_embd as f32 (value = index/100), ffn_up as f16, output_norm f32. */
static int write_model(const char *path, long ffn, const char *arch) {
  static float emb[V * D], norm[D];
  static uint16_t up[F * D + 64];
  for (int i = 0; i < V * D; i++) emb[i] = (float)i / 100.0f;
  for (int i = 0; i < F * D; i++) up[i] = lmn_f32_to_fp16((float)(i % 7) - 3.0f);
  for (int i = 0; i < D; i++) norm[i] = 2.0f;
  lmn_gguf_writer *w;
  lmn_err err;
  if (lmn_gguf_writer_new(&w, &err)) return -1;
  lmn_gguf_writer_add_str(w, "general.architecture", arch, &err);
  lmn_gguf_writer_add_u32(w, "llama.context_length", 64, &err);
  lmn_gguf_writer_add_u32(w, "llama.embedding_length", D, &err);
  lmn_gguf_writer_add_u32(w, "llama.block_count", 1, &err);
  lmn_gguf_writer_add_u32(w, "llama.feed_forward_length", (uint32_t)ffn, &err);
  lmn_gguf_writer_add_u32(w, "llama.attention.head_count", 2, &err);
  lmn_gguf_writer_add_u32(w, "llama.attention.head_count_kv", 2, &err);
  lmn_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &err);
  int64_t ne_emb[2] = {D, V}, ne_up[2] = {D, F}, ne_norm[1] = {D};
  int rc = lmn_gguf_writer_add_tensor_f32(w, "token_embd.weight", 2, ne_emb, emb, &err) ||
           lmn_gguf_writer_add_tensor(w, "blk.0.ffn_up.weight", LMN_GGML_F16, 2, ne_up, up, &err) ||
           lmn_gguf_writer_add_tensor_f32(w, "output_norm.weight", 1, ne_norm, norm, &err) ||
           lmn_gguf_writer_write(w, path, &err);
  lmn_gguf_writer_free(w);
  return rc;
}

static void test_load_values(void) {
  char dir[] = "/tmp/lmn-load-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  snprintf(model_path, sizeof model_path, "%s/m.gguf", dir);
  CU_ASSERT_EQUAL_FATAL(write_model(model_path, F, "llama"), 0);
  lmn_net *net;
  lmn_err err;
  int rc = lmn_net_create(&net, &desc, 1, 4, 1, 5, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  /* the frozen matrices stay in the file's format (F32 and F16, read in place), the rest closes up */
  CU_ASSERT_PTR_NOT_NULL_FATAL(lmn_q(net, 1));
  CU_ASSERT_PTR_NOT_NULL_FATAL(lmn_q(net, 2));
  CU_ASSERT_EQUAL(lmn_q(net, 1)->type, LMN_GGML_F32);
  CU_ASSERT_EQUAL(lmn_q(net, 2)->type, LMN_GGML_F16);
  CU_ASSERT_PTR_NULL(lmn_w(net, 1));
  CU_ASSERT_EQUAL(net->n_f32, 328 - V * D - F * D);
  static float emb[V * D], up[F * D];
  lmn_net_param_rows(net, 1, 0, V, emb);
  lmn_net_param_rows(net, 2, 0, F, up);
  const float *norm = lmn_w(net, 3), *prefix = lmn_w(net, 4);
  CU_ASSERT_PTR_EQUAL(prefix, net->params + 64 + D);
  for (int i = 0; i < V * D; i++) CU_ASSERT_EQUAL(emb[i], (float)i / 100.0f);
  for (int i = 0; i < F * D; i++) CU_ASSERT_EQUAL(up[i], (float)(i % 7) - 3.0f);
  for (int i = 0; i < D; i++) CU_ASSERT_EQUAL(norm[i], 2.0f);
  /* the prefix follows the embedding's statistics: mean 0.635, std ~0.37 */
  double mean = 0;
  for (int i = 0; i < 4 * D; i++) mean += prefix[i] / (4.0 * D);
  CU_ASSERT(fabs(mean - 0.635) < 0.25);
  lmn_net_destroy(net);

  /* the same file under another directory, through $LMN_MODEL_DIR */
  char other[] = "/tmp/lmn-load2-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(other));
  char moved[300];
  snprintf(moved, sizeof moved, "%s/m.gguf", other);
  CU_ASSERT_EQUAL(rename(model_path, moved), 0);
  CU_ASSERT_NOT_EQUAL(lmn_net_create(&net, &desc, 1, 4, 1, 5, &err), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "m.gguf"));
  setenv("LMN_MODEL_DIR", other, 1);
  CU_ASSERT_EQUAL(lmn_net_create(&net, &desc, 1, 4, 1, 5, &err), 0);
  unsetenv("LMN_MODEL_DIR");
  if (net) lmn_net_destroy(net);
  unlink(moved);
  rmdir(other);
  rmdir(dir);
}

static void test_load_mismatch(void) {
  char dir[] = "/tmp/lmn-load-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  snprintf(model_path, sizeof model_path, "%s/m.gguf", dir);
  lmn_net *net;
  lmn_err err;
  CU_ASSERT_EQUAL_FATAL(write_model(model_path, F + 4, "llama"), 0); /* ffn differs from the compiled one */
  CU_ASSERT_NOT_EQUAL(lmn_net_create(&net, &desc, 1, 4, 1, 5, &err), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "ffn is 16 in the file but the network was compiled for 12"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, model_path));
  unlink(model_path);
  rmdir(dir);
}

static CU_TestInfo tests[] = {
    {"tensors from a GGUF, prefix from its statistics, model dir override", test_load_values},
    {"hyper-parameter mismatch names the file and the key", test_load_mismatch},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("load", tests)
