/* test_smol_parity.c: SmolLM2-135M-Instruct as compiled by lmnc (dsl-examples/smol.lmn, one frozen vertex
 * with the model's own embedding and tied head) computes what llama.cpp computes on the same GGUF file.
 * The reference is the fixture tests/fixtures/smol/reference.dat written by tests/reference/smol_reference.py
 * (README.md beside it): for fixed token sequences (a plain text and a chat-formatted prompt), the top-20
 * logits of every position, the full logits of three positions and llama.cpp's greedy continuation.
 *   logits   forward(train = 0) with B = 1: at every position the top-1 token equals the reference's and
 *            max |ours - ref| over the compared logits <= LOGIT_TOL * (max - min of the reference row);
 *   greedy   cached decoding (desc->decode: prefill, then one token at a time) continues every sequence
 *            with exactly the reference's greedy tokens; the prefill's last row equals the forward's.
 * Without models/SmolLM2-135M-Instruct.Q4_1.gguf (`make models`) the suite prints a notice and passes.
 * $LMN_MODEL_DIR replaces the model directory, $LMN_SMOL_FIXTURE the fixture. Prints the worst errors and
 * the decoding speed (tokens/s after the prefill, 2 threads). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"
#include "harness.h"
#include "net.h"
#include "sample.h"
#include "smol.h"

#define FIXTURE "tests/fixtures/smol/reference.dat"
#define LOGIT_TOL 1e-3   /* relative to the logit range of the position */
#define PREFILL_TOL 1e-4 /* cached prefill vs forward, relative to the range */
#define THREADS 2
#define MAX_SEQ 8

typedef struct Seq {
  int T, n_full;
  int32_t *ids;
  float *min;        /* [T] smallest reference logit of each position */
  int32_t *top_id;   /* [T, n_top] */
  float *top_logit;  /* [T, n_top] */
  int32_t *full_pos; /* [n_full] */
  float *full;       /* [n_full, vocab] */
  int32_t *gen;      /* [n_gen] */
} Seq;

typedef struct Ref {
  int vocab, n_seq, n_top, n_gen;
  Seq seq[MAX_SEQ];
} Ref;

static Ref ref;
static int ref_loaded;      /* 1 loaded, -1 failed */
static lmn_net *net;        /* one network for every test */
static int have_model = -1; /* -1 not looked yet */
static int max_T;

static int rd(FILE *f, void *p, size_t size, size_t n) {
  return fread(p, size, n, f) == n;
}

static uint32_t rd_u32(FILE *f, int *ok) {
  uint32_t v = 0;
  if (!rd(f, &v, sizeof v, 1)) *ok = 0;
  return v;
}

static void *alloc(size_t n, size_t size) {
  return calloc(n ? n : 1, size);
}

static void free_ref(void) {
  for (int s = 0; s < ref.n_seq; s++) {
    Seq *q = &ref.seq[s];
    free(q->ids), free(q->min), free(q->top_id), free(q->top_logit), free(q->full_pos), free(q->full);
    free(q->gen);
  }
  memset(&ref, 0, sizeof ref);
}

/* Reads the fixture (layout in tests/reference/smol_reference.py); 0 on success. */
static int read_ref(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    return -1;
  }
  char magic[8];
  int ok = rd(f, magic, 1, 8) && memcmp(magic, "LMNSMOL1", 8) == 0;
  ref.vocab = (int)rd_u32(f, &ok);
  ref.n_seq = (int)rd_u32(f, &ok);
  ref.n_top = (int)rd_u32(f, &ok);
  ref.n_gen = (int)rd_u32(f, &ok);
  if (!ok || ref.n_seq < 1 || ref.n_seq > MAX_SEQ || ref.n_top < 1 || ref.n_top > 1000 || ref.n_gen < 0 ||
      ref.n_gen > 4096 || ref.vocab != smol_desc.vocab) {
    fprintf(stderr, "%s: bad header\n", path);
    ref.n_seq = 0;
    fclose(f);
    return -1;
  }
  for (int s = 0; s < ref.n_seq && ok; s++) {
    Seq *q = &ref.seq[s];
    q->T = (int)rd_u32(f, &ok);
    if (!ok || q->T < 1 || q->T > 4096) {
      ok = 0;
      break;
    }
    size_t T = (size_t)q->T, K = (size_t)ref.n_top;
    q->ids = alloc(T, sizeof *q->ids);
    q->min = alloc(T, sizeof *q->min);
    q->top_id = alloc(T * K, sizeof *q->top_id);
    q->top_logit = alloc(T * K, sizeof *q->top_logit);
    q->gen = alloc((size_t)ref.n_gen, sizeof *q->gen);
    ok = q->ids && q->min && q->top_id && q->top_logit && q->gen && rd(f, q->ids, sizeof *q->ids, T);
    for (size_t t = 0; t < T && ok; t++)
      ok = rd(f, &q->min[t], sizeof(float), 1) && rd(f, q->top_id + t * K, sizeof(int32_t), K) &&
           rd(f, q->top_logit + t * K, sizeof(float), K);
    q->n_full = (int)rd_u32(f, &ok);
    if (!ok || q->n_full < 0 || q->n_full > q->T) {
      ok = 0;
      break;
    }
    q->full_pos = alloc((size_t)q->n_full, sizeof *q->full_pos);
    q->full = alloc((size_t)q->n_full * ref.vocab, sizeof *q->full);
    ok = q->full_pos && q->full;
    for (int i = 0; i < q->n_full && ok; i++) {
      uint32_t pos = rd_u32(f, &ok);
      ok = ok && pos < (uint32_t)q->T &&
           rd(f, q->full + (size_t)i * ref.vocab, sizeof(float), (size_t)ref.vocab);
      q->full_pos[i] = (int32_t)pos;
    }
    ok = ok && rd(f, q->gen, sizeof *q->gen, (size_t)ref.n_gen);
    for (size_t t = 0; t < T && ok; t++) ok = q->ids[t] >= 0 && q->ids[t] < ref.vocab;
    for (size_t t = 0; t < T * K && ok; t++) ok = q->top_id[t] >= 0 && q->top_id[t] < ref.vocab;
    if (q->T > max_T) max_T = q->T;
  }
  char extra;
  if (ok && fread(&extra, 1, 1, f) != 0) ok = 0;
  fclose(f);
  if (!ok) {
    fprintf(stderr, "%s: truncated or malformed\n", path);
    free_ref();
    return -1;
  }
  return 0;
}

static void cleanup(void) {
  if (net) lmn_net_destroy(net);
  net = NULL;
  free_ref();
}

/* The path the network will load the model from, as lmn_net_load_models resolves it. */
static void model_path(char *buf, size_t n) {
  const char *dir = getenv("LMN_MODEL_DIR");
  const char *p = smol_desc.models[0].path, *base = strrchr(p, '/');
  if (dir)
    snprintf(buf, n, "%s/%s", dir, base ? base + 1 : p);
  else
    snprintf(buf, n, "%s", p);
}

/* 1 when the test can run: the model file exists, the fixture is read and the network created. */
static int setup(void) {
  if (have_model < 0) {
    char path[4096];
    model_path(path, sizeof path);
    FILE *f = fopen(path, "rb");
    have_model = f != NULL;
    if (f) fclose(f);
    if (!have_model)
      printf("\n  NOTICE: %s is absent (run `make models`): SmolLM2 parity not checked\n  ", path);
  }
  if (!have_model) return 0;
  if (!ref_loaded) {
    const char *fx = getenv("LMN_SMOL_FIXTURE");
    ref_loaded = read_ref(fx ? fx : FIXTURE) == 0 ? 1 : -1;
    atexit(cleanup);
  }
  CU_ASSERT_FATAL(ref_loaded == 1);
  if (!net) {
    lmn_err err = {{0}};
    if (lmn_net_create(&net, &smol_desc, 1, max_T, THREADS, 1, &err) != 0) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_FATAL(net != NULL);
    /* the reference ran llama.cpp with f32 activations (--mode f32): decode the same way; an 8-bit
     * activation fixture (--mode quant) is read with LMN_SMOL_ACT=8 */
    const char *act = getenv("LMN_SMOL_ACT");
    net->q_f32act = !(act && !strcmp(act, "8"));
  }
  return 1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_logits(void) {
  if (!setup()) return;
  const int V = ref.vocab, K = ref.n_top;
  double worst_rel = 0, worst_abs = 0, min_margin = INFINITY;
  int n_pos = 0, n_top1_bad = 0;
  for (int s = 0; s < ref.n_seq; s++) {
    const Seq *q = &ref.seq[s];
    const int T = q->T;
    int32_t *targets = malloc((size_t)T * sizeof *targets);
    CU_ASSERT_FATAL(targets != NULL);
    for (int t = 0; t < T; t++) targets[t] = t + 1 < T ? q->ids[t + 1] : -1;
    double t0 = now();
    float loss = smol_desc.forward(net, q->ids, targets, 1, T, 0);
    double dt = now() - t0;
    free(targets);
    const float *out = smol_desc.output(net, 1, T);
    double seq_rel = 0, seq_abs = 0;
    for (int t = 0; t < T; t++) {
      const float *row = out + (size_t)t * V;
      const int32_t *id = q->top_id + (size_t)t * K;
      const float *lg = q->top_logit + (size_t)t * K;
      double range = (double)lg[0] - q->min[t];
      int ours = lmn_sample_argmax(row, V);
      if (ours != id[0]) {
        n_top1_bad++;
        printf("\n  sequence %d position %d: top-1 %d (%.5f), reference %d (%.5f; ours %.5f)", s, t, ours,
               row[ours], id[0], lg[0], row[id[0]]);
      }
      if (K > 1 && lg[0] - lg[1] < min_margin) min_margin = lg[0] - lg[1];
      double e = 0;
      for (int k = 0; k < K; k++) e = fmax(e, fabs((double)row[id[k]] - lg[k]));
      for (int i = 0; i < q->n_full; i++)
        if (q->full_pos[i] == t)
          for (int v = 0; v < V; v++) e = fmax(e, fabs((double)row[v] - q->full[(size_t)i * V + v]));
      CU_ASSERT(e <= LOGIT_TOL * range);
      seq_abs = fmax(seq_abs, e);
      seq_rel = fmax(seq_rel, e / range);
      n_pos++;
    }
    printf(
        "\n  sequence %d (%d tokens): loss %.4f, max |ours - ref| %.3g, max relative to the row's range %.3g"
        " (tolerance %.0e), forward %.2f s",
        s, T, loss, seq_abs, seq_rel, LOGIT_TOL, dt);
    worst_abs = fmax(worst_abs, seq_abs);
    worst_rel = fmax(worst_rel, seq_rel);
  }
  printf(
      "\n  %d positions: top-1 disagreements %d, worst |diff| %.3g, worst |diff|/range %.3g, smallest "
      "reference top-1 margin %.3g\n  ",
      n_pos, n_top1_bad, worst_abs, worst_rel, min_margin);
  CU_ASSERT_EQUAL(n_top1_bad, 0);
}

static void test_greedy(void) {
  if (!setup()) return;
  const int V = ref.vocab, G = ref.n_gen;
  float *logits = malloc((size_t)V * sizeof *logits);
  int32_t *gen = malloc(((size_t)G + 1) * sizeof *gen);
  CU_ASSERT_FATAL(logits != NULL && gen != NULL);
  for (int s = 0; s < ref.n_seq; s++) {
    const Seq *q = &ref.seq[s];
    const int T = q->T;
    lmn_err err = {{0}};
    if (lmn_net_enable_cache(net, T + G, &err) != 0) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_FATAL(net->cache != NULL);
    /* the prefill's last row against a full forward's */
    int32_t *none = malloc((size_t)T * sizeof *none);
    CU_ASSERT_FATAL(none != NULL);
    for (int t = 0; t < T; t++) none[t] = -1;
    smol_desc.forward(net, q->ids, none, 1, T, 0);
    free(none);
    const float *last = smol_desc.output(net, 1, T) + (size_t)(T - 1) * V;
    double t0 = now();
    smol_desc.decode(net, q->ids, T, 0, logits);
    double t_prefill = now() - t0;
    float lo = last[0], hi = last[0];
    double e = 0;
    for (int v = 0; v < V; v++) {
      lo = fminf(lo, last[v]), hi = fmaxf(hi, last[v]);
      e = fmax(e, fabs((double)logits[v] - last[v]));
    }
    CU_ASSERT(e <= PREFILL_TOL * (hi - lo));
    int diverged = -1;
    t0 = now();
    for (int i = 0; i < G; i++) {
      gen[i] = lmn_sample_argmax(logits, V);
      if (diverged < 0 && gen[i] != q->gen[i]) diverged = i;
      if (i + 1 < G) smol_desc.decode(net, &gen[i], 1, T + i, logits);
    }
    double dt = now() - t0;
    printf(
        "\n  sequence %d: prefill of %d tokens %.3f s (last row vs forward %.3g); %d greedy tokens %s the "
        "reference's; %.1f tokens/s after the prefill (%d threads)",
        s, T, t_prefill, e, G, diverged < 0 ? "equal" : "differ from", (G - 1) / dt, THREADS);
    if (diverged >= 0) {
      printf("\n  first difference at %d:", diverged);
      for (int i = 0; i < G; i++) printf(" %d/%d", gen[i], q->gen[i]);
    }
    CU_ASSERT_EQUAL(diverged, -1);
  }
  printf("\n  ");
  free(logits);
  free(gen);
}

/* llama.cpp's default decoding rounds activations to 8 bits, as ours does unless q_f32act: greedy
 * continuations of five chat prompts, 128 tokens each (tests/reference/smol_greedy8.py), by two builds of
 * llama.cpp (tests/fixtures/smol/README.md): greedy8.dat (AVX2, an AMD EPYC) and greedy8_avx512.dat (AVX-512
 * VNNI, a Xeon), against ours with q_f32act = 0. The roundings differ in detail (llama.cpp also rounds the
 * prefill's activations, keeps fp16 activation scales and an f16 KV cache), so greedy continuations part at
 * the first near-tie, and so do the two llama.cpp builds with each other (they differ only in the order of
 * f32 additions): where each pair first diverges is reported. Asserted: every first token of ours equals the
 * AVX2 build's (the prefill and the 8-bit head). */
#define GREEDY8 "tests/fixtures/smol/greedy8.dat"
#define GREEDY8_AVX512 "tests/fixtures/smol/greedy8_avx512.dat"
#define G8_PROMPTS 8
#define G8_GEN 128

typedef struct g8_file {
  uint32_t np, T[G8_PROMPTS];
  int32_t ids[G8_PROMPTS][256], gen[G8_PROMPTS][G8_GEN];
} g8_file;

/* Reads a greedy8 file (layout in tests/fixtures/smol/README.md); 0 when it is absent. */
static int g8_read(const char *path, g8_file *g) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    printf("\n  %s absent (tests/reference/smol_greedy8.py writes it): skipped", path);
    return 0;
  }
  char magic[8];
  uint32_t G = 0;
  CU_ASSERT_FATAL(fread(magic, 1, 8, f) == 8 && !memcmp(magic, "LMNGRDY1", 8));
  CU_ASSERT_FATAL(fread(&g->np, 4, 1, f) == 1 && fread(&G, 4, 1, f) == 1 && g->np <= G8_PROMPTS &&
                  G == G8_GEN);
  for (uint32_t p = 0; p < g->np; p++) {
    CU_ASSERT_FATAL(fread(&g->T[p], 4, 1, f) == 1 && g->T[p] >= 1 && g->T[p] <= 256);
    CU_ASSERT_FATAL(fread(g->ids[p], 4, g->T[p], f) == g->T[p] && fread(g->gen[p], 4, G, f) == G);
  }
  fclose(f);
  return 1;
}

/* The first index where a and b differ, -1 when all n agree. */
static int g8_diverge(const int32_t *a, const int32_t *b, int n) {
  for (int i = 0; i < n; i++)
    if (a[i] != b[i]) return i;
  return -1;
}

/* One line: where each continuation of a first diverges from b's (128 = never); the count of equal ones. */
static int g8_line(const char *what, int32_t gen[][G8_GEN], const g8_file *ref) {
  int equal = 0;
  printf("\n  %-36s", what);
  for (uint32_t p = 0; p < ref->np; p++) {
    const int d = g8_diverge(gen[p], ref->gen[p], G8_GEN);
    equal += d < 0;
    printf(" %3d", d < 0 ? G8_GEN : d);
  }
  printf("   (%d of %u equal)", equal, ref->np);
  return equal;
}

static void test_greedy8(void) {
  if (!setup()) return;
  static g8_file avx2, avx512;
  static int32_t ours[G8_PROMPTS][G8_GEN];
  if (!g8_read(GREEDY8, &avx2)) return;
  const int have512 = g8_read(GREEDY8_AVX512, &avx512);
  const int V = smol_desc.vocab, saved = net->q_f32act;
  net->q_f32act = 0;
  float *logits = malloc((size_t)V * sizeof *logits);
  CU_ASSERT_FATAL(logits != NULL);
  int first_equal = 0;
  for (uint32_t p = 0; p < avx2.np; p++) {
    const uint32_t T = avx2.T[p];
    lmn_err err = {{0}};
    CU_ASSERT_FATAL(lmn_net_enable_cache(net, (int)(T + G8_GEN), &err) == 0);
    smol_desc.decode(net, avx2.ids[p], (int)T, 0, logits);
    for (int i = 0; i < G8_GEN; i++) {
      int32_t tok = ours[p][i] = lmn_sample_argmax(logits, V);
      if (i + 1 < G8_GEN) smol_desc.decode(net, &tok, 1, (int)(T + i), logits);
    }
    first_equal += ours[p][0] == avx2.gen[p][0];
    if (have512) CU_ASSERT(avx512.T[p] == T && !memcmp(avx512.ids[p], avx2.ids[p], T * sizeof(int32_t)));
  }
  printf("\n  first divergence per prompt (of %d tokens; %d = none):", G8_GEN, G8_GEN);
  g8_line("ours vs llama.cpp AVX2", ours, &avx2);
  if (have512) {
    g8_line("ours vs llama.cpp AVX-512", ours, &avx512);
    g8_line("llama.cpp AVX2 vs llama.cpp AVX-512", avx2.gen, &avx512);
  }
  printf("\n  %d of %u first tokens equal the AVX2 build's (8-bit activations both sides)\n  ", first_equal,
         avx2.np);
  CU_ASSERT_EQUAL(first_equal, (int)avx2.np);
  net->q_f32act = saved;
  free(logits);
}

/* Appends generated text to a NUL-terminated buffer of 512 bytes. */
static int append_piece(void *ctx, int32_t id, const char *bytes, size_t len) {
  (void)id;
  char *s = ctx;
  size_t n = strlen(s);
  if (n + len < 512) memcpy(s + n, bytes, len), s[n + len] = '\0';
  return 0;
}

/* The conversation API on the real model: replies without markup; the first equals a one-shot generation
 * of the rendered conversation (what `generate --chat` prints); the second turn feeds only what is new (the
 * first turn stays in the KV caches) and its first token comes after that short prefill. */
static void test_chat(void) {
  if (!setup()) return;
  lmn_err err = {{0}};
  lmn_chat *chat = NULL;
  CU_ASSERT_FATAL(lmn_chat_open(&chat, net, NULL, 1024, &err) == 0);
  CU_ASSERT_STRING_EQUAL(lmn_chat_template_name(chat), "ChatML");
  lmn_chat_opts o = LMN_CHAT_OPTS_DEFAULT;
  o.temperature = 0.0f;
  o.max_tokens = 24;
  const char *reply = NULL;
  CU_ASSERT_FATAL(lmn_chat_send(chat, "What is the capital of France?", &o, &reply, &err) == 0);
  char first[512];
  snprintf(first, sizeof first, "%s", reply);
  lmn_chat_stats s1, s2;
  lmn_chat_last_stats(chat, &s1);
  CU_ASSERT(first[0] && !strstr(first, "<|im_") && !strstr(first, "<|endoftext|>"));
  /* the same turn as a one-shot generation */
  lmn_chat_template t;
  lmn_tokenizer tok;
  CU_ASSERT_FATAL(lmn_net_chat_template(&smol_desc, &t, &err) == 0 &&
                  lmn_net_tokenizer(&smol_desc, &tok, &err) == 0);
  lmn_chat_msg m = {"user", "What is the capital of France?"};
  char prompt[1024], once[512] = "";
  long n = lmn_chat_render(&t, &m, 1, 1, NULL, prompt, sizeof prompt, &err);
  const char *stop[] = {t.end_of_turn};
  lmn_gen_req r = {.n = 24, .stop = stop, .n_stop = 1, .hide_eos = 1, .fn = append_piece, .ctx = once};
  CU_ASSERT(n > 0 && lmn_generate_text(net, &tok, prompt, (size_t)n, &r, NULL, &err) == 0);
  CU_ASSERT_STRING_EQUAL(once, first);
  lmn_tokenizer_free(&tok);
  /* the second turn: the first one (prompt and reply) is not fed again */
  lmn_chat_close(chat);
  CU_ASSERT_FATAL(lmn_chat_open(&chat, net, NULL, 1024, &err) == 0);
  CU_ASSERT_FATAL(lmn_chat_send(chat, "What is the capital of France?", &o, &reply, &err) == 0);
  CU_ASSERT_STRING_EQUAL(reply, first);
  CU_ASSERT_FATAL(lmn_chat_send(chat, "And the capital of Germany?", &o, &reply, &err) == 0);
  lmn_chat_last_stats(chat, &s2);
  CU_ASSERT(reply[0] && !strstr(reply, "<|im_"));
  CU_ASSERT(s2.reused_tokens >= s1.prompt_tokens);
  CU_ASSERT(s2.prompt_tokens - s2.reused_tokens < s1.prompt_tokens / 2);
  CU_ASSERT_EQUAL(lmn_chat_messages(chat), 4);
  printf(
      "\n  turn 1: %d prompt tokens fed, first token after %.1f ms; turn 2: %d of %d prompt tokens were in "
      "the "
      "caches, %d fed, first token after %.1f ms\n  reply 1: %s\n  reply 2: %s\n  ",
      s1.prompt_tokens, 1e3 * s1.prefill_s, s2.reused_tokens, s2.prompt_tokens,
      s2.prompt_tokens - s2.reused_tokens, 1e3 * s2.prefill_s, first, reply);
  /* saved as JSON; reset keeps nothing but the new system message */
  char path[] = "/tmp/lmn-chat-XXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  CU_ASSERT_EQUAL(lmn_chat_save(chat, path, &err), 0);
  FILE *f = fopen(path, "r");
  char saved[4096] = "";
  CU_ASSERT_FATAL(f != NULL);
  CU_ASSERT(fread(saved, 1, sizeof saved - 1, f) > 0);
  fclose(f);
  unlink(path);
  CU_ASSERT_PTR_NOT_NULL(strstr(saved, "\"content\": \"And the capital of Germany?\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(saved, "\"template\": \"ChatML\""));
  CU_ASSERT_EQUAL(lmn_chat_reset(chat, "Be brief.", &err), 0);
  CU_ASSERT_EQUAL(lmn_chat_messages(chat), 1);
  CU_ASSERT_STRING_EQUAL(lmn_chat_role(chat, 0), "system");
  o.max_tokens = -1;
  CU_ASSERT_EQUAL(lmn_chat_send(chat, "x", &o, &reply, &err), -1);
  CU_ASSERT_EQUAL(lmn_chat_messages(chat), 1); /* a failed turn leaves the conversation as it was */
  lmn_chat_close(chat);
}

static CU_TestInfo tests[] = {
    {"logits: top-1 everywhere, |diff| <= 1e-3 x range", test_logits},
    {"greedy decoding with the KV cache", test_greedy},
    {"8-bit activations: greedy continuations of 5 prompts vs llama.cpp's default", test_greedy8},
    {"chat: replies without markup, the second turn prefills only what is new", test_chat},
    CU_TEST_INFO_NULL,
};

LMN_TEST_MAIN("smol parity (llama.cpp reference)", tests)
