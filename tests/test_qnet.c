/* test_qnet.c: frozen weights kept in their file's format (runtime/qnet.h) in a whole compiled network.
 * tests/frozenq/frozenq.lmn (a frozen llama between a trainable edge and the tied head) reads a GGUF file
 * this suite writes with random weights, the matrices stored as Q4_1, Q8_0, Q4_0, F16 or BF16; the reference
 * is tests/frozenq/frozenq_f.lmn, the same network with the vertex trainable (so its blocks run in f32), on
 * a file holding exactly the dequantized values as F32. Per format:
 *   - what is kept: the vertex's and the embedding's matrices, in the file's format; the f32 buffer closes up;
 *   - forward: loss and logits equal the reference's within 1e-5 of the logits' range (the products are
 *     exact panel products in f32 on bit-exact dequantized weights);
 *   - backward: the trainable edge's gradients, which flow back through every kept matrix (q_matmul_dx),
 *     equal the reference's within 1e-4 (relative L2), and central differences of the loss (h = 1e-2) agree
 *     with them within 5e-2 (relative, 1e-3 floor) at four weights;
 *   - decoding: the prefill's last row equals the forward's; single tokens with f32 activations equal the
 *     reference within 1e-4 of the range, with 8-bit activations within 2e-2 of the range (qmat.h);
 *   - `weights`: an F32 file converted to Q8_0 at load is bit-identical to the Q8_0 file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dequant.h"
#include "gguf.h"
#include "harness.h"
#include "net.h"
#include "qnet.h"
#include "quantize.h"

extern const lmn_net_desc frozenq_desc, frozenq_f_desc;

enum { D = 64, LAYERS = 2, HEADS = 4, KV = 2, HD = D / HEADS, F = 128, V = 256, B = 2, T = 12 };

static uint64_t rng_state = 0x243f6a8885a308d3ULL;
static float urand(void) { /* uniform in [-1, 1) */
  rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (float)((rng_state >> 40) * (1.0 / (1 << 23))) - 1.0f;
}

/* One tensor of the model: name, shape, values. */
typedef struct tensor {
  char name[48];
  int64_t rows, cols; /* cols 0: a vector of rows values */
  float *x;
} tensor;

static tensor model[64];
static int n_tensors;

static void add(const char *name, int64_t rows, int64_t cols, float scale, float center) {
  tensor *t = &model[n_tensors++];
  snprintf(t->name, sizeof t->name, "%s", name);
  t->rows = rows, t->cols = cols;
  size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
  t->x = malloc(n * sizeof *t->x);
  for (size_t i = 0; i < n; i++) t->x[i] = center + scale * urand();
}

static void make_model(void) {
  if (n_tensors) return;
  char name[48];
  add("token_embd.weight", V, D, 0.5f, 0.0f);
  add("output_norm.weight", D, 0, 0.1f, 1.0f);
  static const struct {
    const char *name;
    int rows, cols;
  } blk[] = {{"attn_norm.weight", D, 0}, {"attn_q.weight", D, D},   {"attn_k.weight", KV * HD, D},
             {"attn_v.weight", KV * HD, D}, {"attn_output.weight", D, D}, {"ffn_norm.weight", D, 0},
             {"ffn_gate.weight", F, D},  {"ffn_up.weight", F, D},    {"ffn_down.weight", D, F}};
  for (int l = 0; l < LAYERS; l++)
    for (size_t i = 0; i < sizeof blk / sizeof *blk; i++) {
      snprintf(name, sizeof name, "blk.%d.%s", l, blk[i].name);
      if (blk[i].cols)
        add(name, blk[i].rows, blk[i].cols, 0.7f / sqrtf((float)blk[i].cols) * 1.7f, 0.0f);
      else
        add(name, blk[i].rows, 0, 0.1f, 1.0f);
    }
}

/* Writes the model with its matrices as `type` (vectors F32) to dir/frozenq.gguf; dequant: the matrices
 * as F32 holding exactly the values `type` represents (the reference file). */
static int write_model(const char *dir, uint32_t type, int dequant) {
  lmn_gguf_writer *w;
  lmn_err err;
  if (lmn_gguf_writer_new(&w, &err)) return -1;
  lmn_gguf_writer_add_str(w, "general.architecture", "llama", &err);
  lmn_gguf_writer_add_u32(w, "llama.context_length", 64, &err);
  lmn_gguf_writer_add_u32(w, "llama.embedding_length", D, &err);
  lmn_gguf_writer_add_u32(w, "llama.block_count", LAYERS, &err);
  lmn_gguf_writer_add_u32(w, "llama.feed_forward_length", F, &err);
  lmn_gguf_writer_add_u32(w, "llama.attention.head_count", HEADS, &err);
  lmn_gguf_writer_add_u32(w, "llama.attention.head_count_kv", KV, &err);
  lmn_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &err);
  int rc = 0;
  void *keep[2 * 64] = {0}; /* the writer reads the tensors' bytes when it writes */
  for (int i = 0; rc == 0 && i < n_tensors; i++) {
    const tensor *t = &model[i];
    if (!t->cols) {
      int64_t ne[1] = {t->rows};
      rc = lmn_gguf_writer_add_tensor_f32(w, t->name, 1, ne, t->x, &err);
      continue;
    }
    int64_t ne[2] = {t->cols, t->rows};
    uint64_t row;
    lmn_ggml_row_size(type, t->cols, &row, &err);
    uint8_t *q = malloc((size_t)row * (size_t)t->rows);
    float *f = malloc((size_t)t->rows * (size_t)t->cols * sizeof *f);
    for (int64_t r = 0; r < t->rows; r++) {
      lmn_quantize_row(type, t->x + r * t->cols, q + r * row, t->cols);
      lmn_dequant_row(type, q + r * row, f + r * t->cols, t->cols, &err);
    }
    rc = dequant ? lmn_gguf_writer_add_tensor_f32(w, t->name, 2, ne, f, &err)
                 : lmn_gguf_writer_add_tensor(w, t->name, type, 2, ne, q, &err);
    keep[2 * i] = q;
    keep[2 * i + 1] = f;
  }
  char path[512];
  snprintf(path, sizeof path, "%s/frozenq.gguf", dir);
  if (rc == 0) rc = lmn_gguf_writer_write(w, path, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  lmn_gguf_writer_free(w);
  for (int i = 0; i < 2 * 64; i++) free(keep[i]);
  return rc;
}

/* The network of desc on the model file in dir. */
static lmn_net *create(const lmn_net_desc *desc, const char *dir) {
  lmn_net *net = NULL;
  lmn_err err = {{0}};
  setenv("LMN_MODEL_DIR", dir, 1);
  if (lmn_net_create(&net, desc, B, T, 2, 7, &err) != 0) fprintf(stderr, "%s\n", err.msg);
  unsetenv("LMN_MODEL_DIR");
  if (net && lmn_net_enable_training(net, &err) != 0) fprintf(stderr, "%s\n", err.msg);
  return net;
}

/* Copies the edge's tensors of a into b by name (the two descs order their tensors differently). */
static void copy_edges(const lmn_net *a, lmn_net *b) {
  for (int i = 0; i < a->desc->n_params; i++) {
    const lmn_param_info *p = &a->desc->params[i];
    if (p->edge < 0) continue;
    const lmn_param_info *q;
    float *dst = lmn_net_param(b, p->name, &q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dst);
    memcpy(dst, lmn_w(a, i), (size_t)p->rows * (size_t)(p->cols ? p->cols : 1) * sizeof *dst);
  }
}

static int32_t tokens[B * T], targets[B * T];

static void make_batch(void) {
  for (int i = 0; i < B * T; i++) tokens[i] = (int32_t)(((unsigned)(urand() + 1.0f) * 1000u) % V);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) targets[b * T + t] = t + 1 < T ? tokens[b * T + t + 1] : -1;
}

static float loss_of(lmn_net *net, int train) { return net->desc->forward(net, tokens, targets, B, T, train); }

/* Largest |a - b| over n values, relative to the range of b. */
static double rel_range_diff(const float *a, const float *b, size_t n) {
  float lo = b[0], hi = b[0];
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    lo = fminf(lo, b[i]), hi = fmaxf(hi, b[i]);
    worst = fmax(worst, fabs((double)a[i] - b[i]));
  }
  return worst / (hi > lo ? hi - lo : 1.0f);
}

/* The edge's gradient by name from net. */
static const float *edge_grad(const lmn_net *net, const char *name, size_t *n) {
  for (int i = 0; i < net->desc->n_params; i++)
    if (!strcmp(net->desc->params[i].name, name)) {
      *n = (size_t)net->desc->params[i].rows * (size_t)(net->desc->params[i].cols ? net->desc->params[i].cols : 1);
      return lmn_g(net, i);
    }
  return NULL;
}

static void check_type(uint32_t type) {
  make_model();
  char dq[] = "/tmp/lmn-qnet-XXXXXX", df[] = "/tmp/lmn-qnetf-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dq));
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(df));
  CU_ASSERT_EQUAL_FATAL(write_model(dq, type, 0), 0);
  CU_ASSERT_EQUAL_FATAL(write_model(df, type, 1), 0);
  lmn_net *q = create(&frozenq_desc, dq), *f = create(&frozenq_f_desc, df);
  CU_ASSERT_PTR_NOT_NULL_FATAL(q);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  copy_edges(q, f);
  make_batch();

  /* what is kept: every matrix of the model, in the file's format; the f32 buffer holds the rest */
  size_t kept = 0;
  int n_kept = 0;
  for (int i = 0; i < q->desc->n_params; i++) {
    const lmn_param_info *p = &q->desc->params[i];
    int matrix_of_model = p->from_file && p->cols > 0;
    CU_ASSERT_EQUAL(lmn_q(q, i) != NULL, matrix_of_model);
    if (lmn_q(q, i)) {
      CU_ASSERT_EQUAL(lmn_q(q, i)->type, type);
      kept += (size_t)p->rows * (size_t)p->cols;
      n_kept++;
    }
  }
  CU_ASSERT_EQUAL(n_kept, 1 + LAYERS * 7);
  CU_ASSERT_EQUAL(q->n_f32, q->desc->n_floats - kept);

  /* forward: exact products on exactly dequantized weights */
  float lq = loss_of(q, 0), lf = loss_of(f, 0);
  CU_ASSERT(fabsf(lq - lf) <= 1e-5f * fabsf(lf));
  double dl = rel_range_diff(q->desc->output(q, B, T), f->desc->output(f, B, T), (size_t)B * T * V);
  CU_ASSERT(dl <= 1e-5);

  /* backward through the kept matrices into the trainable edge */
  lmn_net_zero_grad(q);
  lmn_net_zero_grad(f);
  loss_of(q, 1);
  q->desc->backward(q, tokens, B, T);
  loss_of(f, 1);
  f->desc->backward(f, tokens, B, T);
  double worst_grad = 0;
  for (int i = 0; i < q->desc->n_params; i++) {
    const lmn_param_info *p = &q->desc->params[i];
    if (p->edge < 0) continue;
    size_t n, nf;
    const float *gq = lmn_g(q, i), *gf = edge_grad(f, p->name, &nf);
    n = (size_t)p->rows * (size_t)(p->cols ? p->cols : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gq);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gf);
    CU_ASSERT_EQUAL_FATAL(n, nf);
    double num = 0, den = 0;
    for (size_t k = 0; k < n; k++) num += ((double)gq[k] - gf[k]) * ((double)gq[k] - gf[k]), den += (double)gf[k] * gf[k];
    worst_grad = fmax(worst_grad, sqrt(num / (den > 0 ? den : 1)));
  }
  CU_ASSERT(worst_grad <= 1e-4);

  /* central differences of the loss along the edge weight's largest gradients */
  int w = -1;
  for (int i = 0; i < q->desc->n_params; i++)
    if (q->desc->params[i].edge >= 0 && q->desc->params[i].cols > 0) w = i;
  CU_ASSERT_FATAL(w >= 0);
  float *x = (float *)lmn_w(q, w);
  const float *g = lmn_g(q, w);
  size_t nw = (size_t)q->desc->params[w].rows * (size_t)q->desc->params[w].cols;
  double worst_fd = 0;
  size_t top = 0;
  for (size_t j = 1; j < nw; j++)
    if (fabsf(g[j]) > fabsf(g[top])) top = j;
  for (int probe = 0; probe < 4; probe++) { /* the largest gradient, then three others */
    size_t k = (top + (size_t)probe * 977) % nw;
    const float h = 1e-2f, x0 = x[k];
    x[k] = x0 + h;
    double lp = loss_of(q, 0);
    x[k] = x0 - h;
    double lm = loss_of(q, 0);
    x[k] = x0;
    double fd = (lp - lm) / (2 * h);
    worst_fd = fmax(worst_fd, fabs(fd - g[k]) / (fabs(g[k]) + 1e-3));
  }
  CU_ASSERT(worst_fd <= 5e-2);

  /* decoding: prefill, then single tokens with f32 and with 8-bit activations */
  lmn_err err = {{0}};
  CU_ASSERT_EQUAL_FATAL(lmn_net_enable_cache(q, T, &err), 0);
  CU_ASSERT_EQUAL_FATAL(lmn_net_enable_cache(f, T, &err), 0);
  float last_q[V], last_f[V];
  double pre = 0, dec32 = 0, dec8 = 0;
  for (int act = 0; act < 2; act++) {
    q->q_f32act = act == 0;
    q->desc->decode(q, tokens, T - 4, 0, last_q);
    f->desc->decode(f, tokens, T - 4, 0, last_f);
    /* the prefill's rows are exact products; its logits come from the head on one row, like a token's */
    double e = rel_range_diff(last_q, last_f, V);
    if (act == 0) pre = e;
    else dec8 = e;
    for (int t = T - 4; t < T; t++) {
      q->desc->decode(q, tokens + t, 1, t, last_q);
      f->desc->decode(f, tokens + t, 1, t, last_f);
      e = rel_range_diff(last_q, last_f, V);
      if (act == 0) dec32 = fmax(dec32, e);
      else dec8 = fmax(dec8, e);
    }
  }
  CU_ASSERT(pre <= 1e-4);
  CU_ASSERT(dec32 <= 1e-4);
  CU_ASSERT(dec8 <= 2e-2);
  printf("\n  %s: loss %.5f (f32 %.5f) | logits %.2g | edge gradients %.2g | finite differences %.2g | "
         "prefill %.2g | decode f32 activations %.2g, 8-bit %.2g (of the range)",
         lmn_ggml_type_name(type), lq, lf, dl, worst_grad, worst_fd, pre, dec32, dec8);
  lmn_net_destroy(q);
  lmn_net_destroy(f);
  char path[512];
  snprintf(path, sizeof path, "%s/frozenq.gguf", dq), unlink(path), rmdir(dq);
  snprintf(path, sizeof path, "%s/frozenq.gguf", df), unlink(path), rmdir(df);
}

static void test_q4_1(void) { check_type(LMN_GGML_Q4_1); }
static void test_q8_0(void) { check_type(LMN_GGML_Q8_0); }
static void test_q4_0(void) { check_type(LMN_GGML_Q4_0); }
static void test_f16(void) { check_type(LMN_GGML_F16); }
static void test_bf16(void) { check_type(LMN_GGML_BF16); }

/* `weights q8_0` on an F32 file: converted at load into exactly the blocks of the Q8_0 file. */
static void test_convert(void) {
  make_model();
  char d8[] = "/tmp/lmn-qnet8-XXXXXX", d32[] = "/tmp/lmn-qnet32-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(d8));
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(d32));
  CU_ASSERT_EQUAL_FATAL(write_model(d8, LMN_GGML_Q8_0, 0), 0);
  CU_ASSERT_EQUAL_FATAL(write_model(d32, LMN_GGML_F32, 0), 0);
  lmn_model_info m = frozenq_desc.models[0];
  m.weights = LMN_GGML_Q8_0;
  lmn_net_desc d = frozenq_desc;
  d.models = &m;
  lmn_net *a = create(&frozenq_desc, d8), *c = create(&d, d32);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  copy_edges(a, c);
  for (int i = 0; i < a->desc->n_params; i++) {
    if (!lmn_q(a, i)) continue;
    CU_ASSERT_PTR_NOT_NULL_FATAL(lmn_q(c, i));
    CU_ASSERT_EQUAL(lmn_q(c, i)->type, LMN_GGML_Q8_0);
    CU_ASSERT_EQUAL(memcmp(lmn_q(a, i)->data, lmn_q(c, i)->data, lmn_q(a, i)->row_bytes * (size_t)lmn_q(a, i)->rows), 0);
  }
  make_batch();
  CU_ASSERT_EQUAL(loss_of(a, 0), loss_of(c, 0));
  lmn_net_destroy(a);
  lmn_net_destroy(c);
  char path[512];
  snprintf(path, sizeof path, "%s/frozenq.gguf", d8), unlink(path), rmdir(d8);
  snprintf(path, sizeof path, "%s/frozenq.gguf", d32), unlink(path), rmdir(d32);
}

static CU_TestInfo tests[] = {
    {"Q4_1 weights kept: forward, backward, finite differences, decoding", test_q4_1},
    {"Q8_0 weights kept", test_q8_0},
    {"Q4_0 weights kept", test_q4_0},
    {"F16 weights kept", test_f16},
    {"BF16 weights kept", test_bf16},
    {"weights q8_0: an F32 file converted at load equals the Q8_0 file", test_convert},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("frozen weights kept in their file's format", tests)
