/* api.c: a user's program on the public API of liblmn alone: it includes <lmn/lmn.h> and nothing else of
 * lmnet, declares the descriptors of two networks compiled by lmnc (dsl-examples/tiny.lmn, a language model
 * on bytes, and tests/networks/classify_small.lmn, a 3-way classifier), and links their generated .c files
 * and liblmn. It checks, for both: creation and its facts; forward with and without targets (the same
 * outputs either way), lmn_logits; training steps (forward, backward, update) that lower the loss; for tiny
 * decoding with KV caches (the same logits as the forward, prefilled at once or token by token) and a
 * checkpoint round trip; and that every bad argument or call order (B or T beyond the created sizes, a
 * token id = vocab, a target = vocab, a label = classes, NULL pointers, backward without a training
 * forward, decoding past the caches, ...) returns -1 with a message, leaves the network as it was and does
 * not crash. Prints `api: N passed, M failed`; exit status 1 on a failure. Run by `make embed-test` (also
 * under valgrind) and by tests/install-test.sh against an installed tree and liblmn.so. */
#define _POSIX_C_SOURCE 200809L

#include <lmn/lmn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const lmn_net_desc tiny_desc;
extern const lmn_net_desc classify_small_desc;

#define B 2
#define T 16
#define V 256

static int passed, failed;

static void check(int ok, const char *what, const char *detail) {
  if (ok) {
    passed++;
    return;
  }
  failed++;
  fprintf(stderr, "api: FAIL: %s%s%s\n", what, detail && *detail ? ": " : "", detail ? detail : "");
}

/* rc must be -1 with a message (containing want, when given); the message is shown, then cleared. */
static void expect_error(int rc, lmn_err *err, const char *what, const char *want) {
  int ok = rc == -1 && err->msg[0] != 0 && (!want || strstr(err->msg, want));
  if (ok) printf("  error as expected: %-44s %s\n", what, err->msg);
  check(ok, what, rc == -1 ? err->msg : "returned 0");
  err->msg[0] = 0;
}

static float max_abs_diff(const float *a, const float *b, size_t n) {
  float m = 0.0f;
  for (size_t i = 0; i < n; i++) {
    float d = fabsf(a[i] - b[i]);
    m = d > m || d != d ? d : m;
  }
  return m;
}

static float *copy_floats(const float *x, size_t n) {
  float *y = malloc(n * sizeof *y);
  if (y && x) memcpy(y, x, n * sizeof *y);
  return y;
}

/* ---- creation ---------------------------------------------------------------------------------------- */

static void test_create_errors(void) {
  lmn_err err = {{0}};
  lmn_net *net = (lmn_net *)&err; /* must come back NULL */
  expect_error(lmn_create(NULL, &tiny_desc, B, T, 1, 1, &err), &err, "lmn_create: net NULL", NULL);
  expect_error(lmn_create(&net, NULL, B, T, 1, 1, &err), &err, "lmn_create: desc NULL", NULL);
  check(net == NULL, "a failed lmn_create leaves *net NULL", NULL);
  expect_error(lmn_create(&net, &tiny_desc, 0, T, 1, 1, &err), &err, "lmn_create: batch 0", "batch 0");
  expect_error(lmn_create(&net, &tiny_desc, B, 0, 1, 1, &err), &err, "lmn_create: length 0", "length 0");
  expect_error(lmn_create(&net, &tiny_desc, B, lmn_desc_ctx(&tiny_desc) + 1, 1, 1, &err), &err,
               "lmn_create: length ctx + 1", "257");
  expect_error(lmn_create(&net, &tiny_desc, B, T, -1, 1, &err), &err, "lmn_create: -1 threads", NULL);
  check(net == NULL, "a failed lmn_create leaves *net NULL", NULL);
  lmn_destroy(NULL);
  check(lmn_vocab(NULL) == 0 && lmn_ctx(NULL) == 0 && strcmp(lmn_name(NULL), "") == 0,
        "the facts of no network are 0 and \"\"", NULL);
  check(strcmp(lmn_version(), LMN_VERSION) == 0, "lmn_version() is the headers' LMN_VERSION", lmn_version());
}

/* ---- the language model ------------------------------------------------------------------------------ */

typedef struct lm {
  lmn_net *net;
  int32_t tok[B * T], tgt[B * T];
  float *logits; /* [B*T, V]: outputs of the forward without targets */
} lm;

static void lm_batch(lm *m) {
  const char *text = "Once upon a time there was a tiny network that learnt to read bytes. The end.";
  for (int i = 0; i < B * T; i++) m->tok[i] = (unsigned char)text[i];
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) m->tgt[b * T + t] = t + 1 < T ? m->tok[b * T + t + 1] : -1;
}

static void test_lm_forward(lm *m) {
  lmn_err err = {{0}};
  lmn_net *net = m->net;
  check(strcmp(lmn_name(net), "tiny") == 0 && lmn_vocab(net) == V && lmn_classes(net) == 0 &&
            lmn_ctx(net) == 256 && lmn_prefix(net) == 0 && lmn_max_batch(net) == B && lmn_max_seq(net) == T &&
            lmn_threads(net) == 2 && lmn_step(net) == 0,
        "tiny's facts", NULL);
  check(lmn_desc_vocab(&tiny_desc) == V && lmn_desc_classes(&tiny_desc) == 0 &&
            strcmp(lmn_desc_name(&tiny_desc), "tiny") == 0,
        "tiny_desc's facts", NULL);
  const float *out = NULL;
  expect_error(lmn_logits(net, B, T, &out, &err), &err, "lmn_logits before any forward", "no outputs");

  float loss = -1.0f;
  int rc = lmn_forward(net, m->tok, NULL, B, T, 0, &loss, &err);
  check(rc == 0 && loss == 0.0f, "forward without targets", err.msg);
  rc = lmn_logits(net, B, T, &out, &err);
  check(rc == 0 && out != NULL, "lmn_logits after a forward without targets", err.msg);
  m->logits = copy_floats(out, (size_t)B * T * V);

  rc = lmn_forward(net, m->tok, m->tgt, B, T, 0, &loss, &err);
  check(rc == 0 && fabsf(loss - logf(V)) < 0.5f, "forward with targets: about ln 256 untrained", err.msg);
  printf("  tiny: loss %.4f (ln 256 = %.4f)\n", loss, logf(V));
  rc = lmn_logits(net, B, T, &out, &err);
  check(rc == 0 && out && memcmp(out, m->logits, (size_t)B * T * V * sizeof *out) == 0,
        "the same logits with and without targets", err.msg);
  rc = lmn_forward(net, m->tok, m->tgt, B, T, 0, NULL, &err);
  check(rc == 0, "forward with loss NULL", err.msg);

  /* a smaller batch and length: causal, so the first positions agree */
  rc = lmn_forward(net, m->tok, NULL, 1, T / 2, 0, NULL, &err);
  const float *small = NULL;
  if (rc == 0) rc = lmn_logits(net, 1, T / 2, &small, &err);
  check(rc == 0 && small && max_abs_diff(small, m->logits, (size_t)(T / 2) * V) < 1e-4f,
        "a 1 x 8 forward agrees with the first 8 positions of 2 x 16", err.msg);
  expect_error(lmn_logits(net, B, T, &out, &err), &err, "lmn_logits of another shape", "1 x 8");

  /* every bad argument is an error that changes nothing */
  rc = lmn_forward(net, m->tok, m->tgt, B, T, 0, &loss, &err);
  int32_t bad[B * T], badt[B * T];
  memcpy(bad, m->tok, sizeof bad);
  memcpy(badt, m->tgt, sizeof badt);
  bad[5] = V;
  badt[7] = V;
  expect_error(lmn_forward(net, m->tok, m->tgt, B + 1, T, 0, &loss, &err), &err, "forward: B + 1", "batch 3");
  expect_error(lmn_forward(net, m->tok, m->tgt, B, T + 1, 0, &loss, &err), &err, "forward: T + 1",
               "length 17");
  expect_error(lmn_forward(net, m->tok, m->tgt, 0, T, 0, &loss, &err), &err, "forward: B = 0", NULL);
  expect_error(lmn_forward(net, bad, m->tgt, B, T, 0, &loss, &err), &err, "forward: a token id = vocab",
               "tokens[5] = 256");
  bad[5] = -1;
  expect_error(lmn_forward(net, bad, m->tgt, B, T, 0, &loss, &err), &err, "forward: a token id = -1",
               "tokens[5] = -1");
  expect_error(lmn_forward(net, m->tok, badt, B, T, 0, &loss, &err), &err, "forward: a target = vocab",
               "targets[7] = 256");
  badt[7] = -2;
  expect_error(lmn_forward(net, m->tok, badt, B, T, 1, &loss, &err), &err, "forward: a target = -2", NULL);
  expect_error(lmn_forward(net, NULL, m->tgt, B, T, 0, &loss, &err), &err, "forward: tokens NULL", NULL);
  expect_error(lmn_forward(NULL, m->tok, m->tgt, B, T, 0, &loss, &err), &err, "forward: net NULL", NULL);
  expect_error(lmn_forward(net, m->tok, NULL, B, T, 1, &loss, &err), &err, "forward: train without targets",
               NULL);
  expect_error(lmn_forward(net, m->tok, m->tgt, B, T, 2, &loss, &err), &err, "forward: train = 2", NULL);
  expect_error(lmn_logits(net, B, T, NULL, &err), &err, "lmn_logits: out NULL", NULL);
  expect_error(lmn_logits(net, B + 1, T, &out, &err), &err, "lmn_logits: B + 1", NULL);
  expect_error(lmn_backward(net, m->tok, B, T, &err), &err, "backward after a forward that did not train",
               NULL);
  lmn_adamw opt = LMN_ADAMW_DEFAULT;
  expect_error(lmn_update(net, &opt, NULL, &err), &err, "update before training starts", "no gradients");
  check(lmn_forward(net, bad, m->tgt, B, T, 0, &loss, NULL) == -1, "errors without an lmn_err", NULL);
  rc = lmn_logits(net, B, T, &out, &err);
  check(rc == 0 && out && memcmp(out, m->logits, (size_t)B * T * V * sizeof *out) == 0,
        "failed calls leave the last outputs in place", err.msg);
}

static void test_lm_decode(lm *m) {
  lmn_err err = {{0}};
  lmn_net *net = m->net;
  float a[V], b[V];
  /* one prefill of 16 positions: the logits of the last one */
  int rc = lmn_decode(net, m->tok, T, 0, a, &err);
  float d = rc == 0 ? max_abs_diff(a, m->logits + (size_t)(T - 1) * V, V) : INFINITY;
  printf("  tiny: decode vs forward, position 15: max |diff| %.2e\n", d);
  check(rc == 0 && d < 1e-4f, "decode of 16 positions = the forward's last row", err.msg);
  /* prefill 8, then one token at a time */
  rc = lmn_decode(net, m->tok, 8, 0, NULL, &err);
  float worst = 0.0f;
  for (int t = 8; t < T && rc == 0; t++) {
    rc = lmn_decode(net, m->tok + t, 1, t, b, &err);
    float e = max_abs_diff(b, m->logits + (size_t)t * V, V);
    worst = e > worst ? e : worst;
  }
  check(rc == 0 && worst < 1e-4f, "decoding token by token = the forward's rows", err.msg);
  printf("  tiny: token-by-token decode vs forward: max |diff| %.2e\n", worst);
  /* rewinding is allowed, skipping is not */
  rc = lmn_decode(net, m->tok + 4, 1, 4, b, &err);
  check(rc == 0 && max_abs_diff(b, m->logits + 4 * V, V) < 1e-4f, "decode rewinds to position 4", err.msg);
  expect_error(lmn_decode(net, m->tok, 1, 6, b, &err), &err, "decode skips positions", "position 6");
  int32_t bad = V;
  expect_error(lmn_decode(net, &bad, 1, 0, b, &err), &err, "decode: a token id = vocab", "256");
  expect_error(lmn_decode(net, m->tok, 0, 0, b, &err), &err, "decode: T = 0", NULL);
  expect_error(lmn_decode(net, NULL, 1, 0, b, &err), &err, "decode: tokens NULL", NULL);
  expect_error(lmn_decode(net, m->tok, 1, -1, b, &err), &err, "decode: pos0 = -1", NULL);
  expect_error(lmn_reserve_cache(net, 0, &err), &err, "reserve_cache: 0 positions", NULL);
  expect_error(lmn_reserve_cache(net, lmn_ctx(net) + 1, &err), &err, "reserve_cache: ctx + 1", NULL);
  rc = lmn_reserve_cache(net, 20, &err);
  check(rc == 0, "reserve_cache: 20 positions", err.msg);
  expect_error(lmn_decode(net, m->tok, 8, 4, b, &err), &err, "decode into emptied caches", "position 4");
  int32_t many[24];
  for (int i = 0; i < 24; i++) many[i] = m->tok[i % (B * T)];
  expect_error(lmn_decode(net, many, 24, 0, b, &err), &err, "decode past the caches", "do not fit");
  rc = lmn_decode(net, many, 20, 0, b, &err);
  check(rc == 0, "decode fills the 20 positions", err.msg);
  expect_error(lmn_decode(net, many, 1, 20, b, &err), &err, "decode one position past the caches",
               "do not fit");
  const float *out;
  expect_error(lmn_logits(net, B, T, &out, &err), &err, "lmn_logits after decoding", NULL);
  /* chat needs a model file with a chat template: refused for a byte-level network, *chat left NULL */
  lmn_chat *chat = (lmn_chat *)1;
  expect_error(lmn_chat_open(&chat, net, NULL, 0, &err), &err, "chat on a byte-level network",
               "no chat template");
  check(chat == NULL, "a failed lmn_chat_open leaves *chat NULL", NULL);
  lmn_chat_opts co = LMN_CHAT_OPTS_DEFAULT;
  expect_error(lmn_chat_send(NULL, "hi", &co, NULL, &err), &err, "lmn_chat_send without a conversation",
               NULL);
  check(lmn_chat_messages(NULL) == 0 && lmn_chat_role(NULL, 0) == NULL, "lmn_chat_* accept NULL", NULL);
  lmn_chat_close(NULL);
}

static void test_lm_train(lm *m) {
  lmn_err err = {{0}};
  lmn_net *net = m->net;
  float first = 0.0f, loss = 0.0f, norm = 0.0f;
  int rc = lmn_forward(net, m->tok, m->tgt, B, T, 1, &first, &err);
  check(rc == 0 && isfinite(first), "a training forward", err.msg);
  const float *out;
  expect_error(lmn_logits(net, B, T, &out, &err), &err, "lmn_logits after a training forward", "consumes");
  int32_t other[B * T];
  memcpy(other, m->tok, sizeof other);
  other[3] ^= 1;
  expect_error(lmn_backward(net, other, B, T, &err), &err, "backward with other tokens", "differ");
  expect_error(lmn_backward(net, m->tok, B, T - 1, &err), &err, "backward with another length", NULL);
  expect_error(lmn_backward(net, m->tok, B + 1, T, &err), &err, "backward with B + 1", NULL);
  rc = lmn_backward(net, m->tok, B, T, &err);
  check(rc == 0, "backward", err.msg);
  expect_error(lmn_backward(net, m->tok, B, T, &err), &err, "a second backward of one forward", NULL);
  lmn_adamw opt = LMN_ADAMW_DEFAULT;
  expect_error(lmn_update(net, NULL, &norm, &err), &err, "update: settings NULL", NULL);
  opt.lr = NAN;
  expect_error(lmn_update(net, &opt, &norm, &err), &err, "update: lr NaN", NULL);
  opt.lr = 1e-2f;
  opt.beta2 = 1.0f;
  expect_error(lmn_update(net, &opt, &norm, &err), &err, "update: beta2 = 1", NULL);
  opt.beta2 = 0.95f;
  rc = lmn_update(net, &opt, &norm, &err);
  check(rc == 0 && norm > 0.0f && lmn_step(net) == 1, "update: one AdamW step", err.msg);
  for (int s = 1; s < 30 && rc == 0; s++) {
    rc = lmn_forward(net, m->tok, m->tgt, B, T, 1, &loss, &err) || lmn_backward(net, m->tok, B, T, &err) ||
                 lmn_update(net, &opt, &norm, &err)
             ? -1
             : 0;
  }
  if (rc == 0) rc = lmn_forward(net, m->tok, m->tgt, B, T, 0, &loss, &err);
  printf("  tiny: loss %.4f -> %.4f after 30 steps\n", first, loss);
  check(rc == 0 && lmn_step(net) == 30 && loss < first - 1.0f, "30 steps on one batch lower the loss",
        err.msg);
  /* gradients accumulate over backward passes until an update or lmn_zero_grad */
  rc = lmn_zero_grad(net, &err);
  check(rc == 0, "lmn_zero_grad", err.msg);
  expect_error(lmn_zero_grad(NULL, &err), &err, "lmn_zero_grad: net NULL", NULL);
}

/* A second instance with another seed gets the first one's weights from a checkpoint. */
static void test_lm_checkpoint(lm *m) {
  lmn_err err = {{0}};
  char dir[] = "/tmp/lmn-api-XXXXXX", path[64];
  if (!mkdtemp(dir)) {
    check(0, "mkdtemp", NULL);
    return;
  }
  snprintf(path, sizeof path, "%s/tiny.safetensors", dir);
  lmn_net *other = NULL;
  int rc = lmn_create(&other, &tiny_desc, 1, T, 2, 7, &err);
  check(rc == 0, "a second tiny (seed 7)", err.msg);
  if (rc) return;
  const float *x = NULL, *y = NULL;
  rc = lmn_save_checkpoint(m->net, path, &err);
  check(rc == 0, "lmn_save_checkpoint", err.msg);
  expect_error(lmn_load_checkpoint(other, "/nonexistent/tiny.safetensors", &err), &err,
               "load a missing checkpoint", "nonexistent");
  expect_error(lmn_load_checkpoint(other, NULL, &err), &err, "load: path NULL", NULL);
  expect_error(lmn_save_checkpoint(NULL, path, &err), &err, "save: net NULL", NULL);
  rc = lmn_load_checkpoint(other, path, &err);
  check(rc == 0 && lmn_step(other) == lmn_step(m->net), "lmn_load_checkpoint", err.msg);
  rc = lmn_forward(m->net, m->tok, NULL, 1, T, 0, NULL, &err) || lmn_logits(m->net, 1, T, &x, &err) ||
               lmn_forward(other, m->tok, NULL, 1, T, 0, NULL, &err) || lmn_logits(other, 1, T, &y, &err)
           ? -1
           : 0;
  check(rc == 0 && x && y && memcmp(x, y, (size_t)T * V * sizeof *x) == 0,
        "the loaded network computes the same logits bit for bit", err.msg);
  lmn_net *cls = NULL;
  if (lmn_create(&cls, &classify_small_desc, 1, 4, 1, 1, &err) == 0)
    expect_error(lmn_load_checkpoint(cls, path, &err), &err, "load tiny's checkpoint into a classifier",
                 "does not match");
  lmn_destroy(cls);
  lmn_destroy(other);
  unlink(path);
  check(rmdir(dir) == 0, "the temp dir holds nothing else", dir);
}

/* ---- the classifier ---------------------------------------------------------------------------------- */

#define CB 3
#define CT 10

static void test_classifier(void) {
  lmn_err err = {{0}};
  lmn_net *net = NULL;
  int rc = lmn_create(&net, &classify_small_desc, CB, CT, 1, 42, &err);
  check(rc == 0, "lmn_create classify_small", err.msg);
  if (rc) return;
  int vocab = lmn_vocab(net), classes = lmn_classes(net);
  check(vocab == 64 && classes == 3 && lmn_ctx(net) == 32, "classify_small's facts", NULL);
  int32_t tok[CB * CT], labels[CB] = {0, 1, 2}, bad[CB * CT];
  for (int i = 0; i < CB * CT; i++) tok[i] = (i * 11 + i / CT * 5) % vocab;
  float loss = -1.0f;
  const float *out = NULL;
  rc = lmn_forward(net, tok, NULL, CB, CT, 0, &loss, &err) || lmn_logits(net, CB, CT, &out, &err) ? -1 : 0;
  check(rc == 0 && out && loss == 0.0f, "classifier: forward without labels, class logits", err.msg);
  float *plain = copy_floats(out, (size_t)CB * classes);
  rc = lmn_forward(net, tok, labels, CB, CT, 0, &loss, &err) || lmn_logits(net, CB, CT, &out, &err) ? -1 : 0;
  check(rc == 0 && fabsf(loss - logf(3.0f)) < 0.3f, "classifier: forward with labels, about ln 3", err.msg);
  check(rc == 0 && plain && memcmp(out, plain, (size_t)CB * classes * sizeof *out) == 0,
        "classifier: the same class logits with and without labels", NULL);
  printf("  classify_small: loss %.4f (ln 3 = %.4f), logits of sequence 0: %.4f %.4f %.4f\n", loss,
         logf(3.0f), plain ? plain[0] : 0, plain ? plain[1] : 0, plain ? plain[2] : 0);
  int32_t bl[CB] = {0, 3, 1};
  expect_error(lmn_forward(net, tok, bl, CB, CT, 0, &loss, &err), &err, "classifier: a label = classes",
               "labels[1] = 3");
  bl[1] = -2;
  expect_error(lmn_forward(net, tok, bl, CB, CT, 1, &loss, &err), &err, "classifier: a label = -2", NULL);
  bl[1] = -1;
  rc = lmn_forward(net, tok, bl, CB, CT, 0, &loss, &err);
  check(rc == 0 && isfinite(loss), "classifier: label -1 (no loss for that sequence)", err.msg);
  memcpy(bad, tok, sizeof bad);
  bad[CT + 2] = vocab;
  expect_error(lmn_forward(net, bad, labels, CB, CT, 0, &loss, &err), &err, "classifier: a token id = vocab",
               "tokens[12] = 64");
  expect_error(lmn_forward(net, tok, labels, CB + 1, CT, 0, &loss, &err), &err, "classifier: B + 1", NULL);
  expect_error(lmn_forward(net, tok, labels, CB, CT + 1, 0, &loss, &err), &err, "classifier: T + 1", NULL);
  float logits[64];
  expect_error(lmn_decode(net, tok, 1, 0, logits, &err), &err, "classifier: decode", "classification");
  expect_error(lmn_reserve_cache(net, 8, &err), &err, "classifier: reserve_cache", "classification");
  /* training lowers the loss */
  lmn_adamw opt = LMN_ADAMW_DEFAULT;
  opt.lr = 1e-2f;
  float first = 0.0f;
  rc = lmn_forward(net, tok, labels, CB, CT, 1, &first, &err);
  for (int s = 0; s < 20 && rc == 0; s++)
    rc = lmn_backward(net, tok, CB, CT, &err) || lmn_update(net, &opt, NULL, &err) ||
                 lmn_forward(net, tok, labels, CB, CT, s < 19, &loss, &err)
             ? -1
             : 0;
  printf("  classify_small: loss %.4f -> %.4f after 20 steps\n", first, loss);
  check(rc == 0 && loss < first - 0.3f, "classifier: 20 steps lower the loss", err.msg);
  free(plain);
  lmn_destroy(net);
}

int main(void) {
  test_create_errors();
  lm m = {.net = NULL, .logits = NULL};
  lm_batch(&m);
  lmn_err err = {{0}};
  int rc = lmn_create(&m.net, &tiny_desc, B, T, 2, 1337, &err);
  check(rc == 0, "lmn_create tiny 2 x 16 on 2 threads", err.msg);
  if (rc == 0) {
    test_lm_forward(&m);
    if (m.logits) test_lm_decode(&m);
    test_lm_train(&m);
    test_lm_checkpoint(&m);
  }
  free(m.logits);
  lmn_destroy(m.net);
  test_classifier();
  printf("api: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
