/* embed.c: a user's program embedding a compiled network, built outside the generator the way a service
 * would be: it includes the generated tiny.h (lmnc compile dsl-examples/tiny.lmn, into the build folder) and
 * the runtime headers it uses as <lmn/...>, links liblmn.a, and uses the embedding API of the runtime:
 * tiny_create/tiny_destroy, lmn_checkpoint_save/load, lmn_tokenizer_init_bytes, lmn_generate and
 * lmn_generate_stream (tests/embed/api.c is the same on the checked API of <lmn/lmn.h> alone). It saves the
 * seeded weights of one instance, loads them into a second one created with another seed, checks both
 * generate the same text greedily and with seeded sampling, checks that failures come back as messages (and
 * leave the network as it was), that an instance that only generates never allocates gradients, frees
 * everything, and prints `embed: N passed, M failed`; exit status 1 on any failure.
 * `make embed-test` runs it normally and under valgrind. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmn/checkpoint.h>
#include <lmn/generate.h>
#include <lmn/net.h>
#include <lmn/threads.h>
#include <lmn/tokenizer.h>

#include "tiny.h"

#define GEN_TOKENS 16
#define PROMPT "Once upon a time"

static int passed, failed;

static void check(int ok, const char *what, const char *detail) {
  if (ok) {
    passed++;
    return;
  }
  failed++;
  fprintf(stderr, "embed: FAIL: %s%s%s\n", what, detail && *detail ? ": " : "", detail ? detail : "");
}

/* Bytes of the parameter buffer that differ between two instances of the same network. */
static size_t params_differ(const lmn_net *a, const lmn_net *b) {
  size_t diff = 0;
  for (size_t i = 0; i < a->desc->n_floats; i++) diff += memcmp(&a->params[i], &b->params[i], sizeof(float)) != 0;
  return diff;
}

/* Collects what lmn_generate_stream hands over, to compare with lmn_generate's text. */
typedef struct stream_text {
  char buf[GEN_TOKENS + 1];
  size_t len;
  int bad;
} stream_text;

static int on_token(void *ctx, int32_t id, const char *bytes, size_t len) {
  stream_text *s = ctx;
  if (!bytes || len != 1 || (unsigned char)bytes[0] != (unsigned)id || s->len >= GEN_TOKENS) s->bad = 1;
  else s->buf[s->len++] = bytes[0];
  return 0;
}

/* Copies the first `keep` bytes of src into dst (a truncated checkpoint). */
static int copy_prefix(const char *src, const char *dst, long keep) {
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  int rc = in && out ? 0 : -1;
  for (long i = 0; rc == 0 && i < keep; i++) {
    int c = fgetc(in);
    if (c == EOF || fputc(c, out) == EOF) rc = -1;
  }
  if (in) fclose(in);
  if (out && fclose(out) != 0) rc = -1;
  return rc;
}

static long file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  fclose(f);
  return n;
}

int main(void) {
  lmn_err err = {{0}};
  lmn_net *a = NULL, *b = NULL;
  lmn_tokenizer tok;
  lmn_tokenizer_init_bytes(&tok);
  char dir[] = "/tmp/lmn-embed-XXXXXX", ckpt[64], bad[64];
  if (!mkdtemp(dir)) {
    perror("embed: mkdtemp");
    return 1;
  }
  snprintf(ckpt, sizeof ckpt, "%s/tiny.safetensors", dir);
  snprintf(bad, sizeof bad, "%s/truncated.safetensors", dir);

  /* Two instances with different seeds: their weights differ until the checkpoint is loaded. */
  int rc = tiny_create(&a, 1, 64, 2, 1337, &err);
  check(rc == 0, "tiny_create (seed 1337)", err.msg);
  if (rc == 0) {
    rc = tiny_create(&b, 1, 64, 2, 7, &err);
    check(rc == 0, "tiny_create (seed 7)", err.msg);
  }
  if (rc != 0) goto done;
  check(a->desc == &tiny_desc && tiny_desc.vocab == 256, "the network is tiny on raw bytes", NULL);
  check(params_differ(a, b) > 0, "different seeds give different weights", NULL);
  check(!a->grads && !a->m && !a->v, "no gradients or moments before training starts", NULL);
  check(lmn_pool_splits(a->pool) == 1, "2 threads: the pool splits the work, as `tiny train` does", NULL);

  rc = lmn_checkpoint_save(a, ckpt, NULL, &err);
  check(rc == 0, "lmn_checkpoint_save", err.msg);
  if (rc != 0) goto done;

  /* Failures are messages, and a failed load leaves the network as it was. */
  float before = b->params[0];
  size_t diff = params_differ(a, b);
  err.msg[0] = 0;
  check(lmn_checkpoint_load(b, "/nonexistent/tiny.safetensors", &err) == -1 && strstr(err.msg, "nonexistent"),
        "loading a missing checkpoint fails naming the file", err.msg);
  long size = file_size(ckpt);
  check(size > 1000 && copy_prefix(ckpt, bad, size / 2) == 0, "truncated copy of the checkpoint", NULL);
  err.msg[0] = 0;
  check(lmn_checkpoint_load(b, bad, &err) == -1 && err.msg[0] != 0, "loading a truncated checkpoint fails",
        err.msg);
  check(b->params[0] == before && params_differ(a, b) == diff, "a failed load leaves the weights alone", NULL);
  unlink(bad);

  rc = lmn_checkpoint_load(b, ckpt, &err);
  check(rc == 0, "lmn_checkpoint_load", err.msg);
  check(params_differ(a, b) == 0, "the loaded weights equal the saved ones", NULL);
  check(b->m && b->v && !b->grads, "a loaded checkpoint brings moments, not gradients", NULL);

  /* Greedy generation: the same text from both instances, one byte per token. */
  lmn_sample_opts greedy = {.temperature = 0.0f, .top_k = 0, .top_p = 0.0f};
  char ga[256], gb[256];
  int na = lmn_generate(a, &tok, PROMPT, GEN_TOKENS, &greedy, 1, ga, sizeof ga, &err);
  check(na == GEN_TOKENS, "lmn_generate greedy (original)", na < 0 ? err.msg : NULL);
  int nb = lmn_generate(b, &tok, PROMPT, GEN_TOKENS, &greedy, 2, gb, sizeof gb, &err);
  check(nb == GEN_TOKENS, "lmn_generate greedy (loaded)", nb < 0 ? err.msg : NULL);
  check(na == nb && na > 0 && memcmp(ga, gb, (size_t)na) == 0, "greedy generations are identical", NULL);

  /* Seeded sampling: reproducible for one seed, the same on both instances, different for another seed. */
  lmn_sample_opts samp = {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f};
  char s1[256], s2[256], s3[256];
  int n1 = lmn_generate(a, &tok, PROMPT, GEN_TOKENS, &samp, 42, s1, sizeof s1, &err);
  check(n1 == GEN_TOKENS, "lmn_generate sampled, seed 42", n1 < 0 ? err.msg : NULL);
  int n2 = lmn_generate(b, &tok, PROMPT, GEN_TOKENS, &samp, 42, s2, sizeof s2, &err);
  check(n2 == n1 && n1 > 0 && memcmp(s1, s2, (size_t)n1) == 0, "sampling with seed 42 is reproducible", NULL);
  int n3 = lmn_generate(b, &tok, PROMPT, GEN_TOKENS, &samp, 43, s3, sizeof s3, &err);
  check(n3 == GEN_TOKENS && memcmp(s1, s3, GEN_TOKENS) != 0, "another seed samples other text", NULL);

  /* The streaming form hands over the same tokens, one byte each. */
  stream_text st = {.len = 0};
  lmn_gen_stats stats;
  rc = lmn_generate_stream(b, &tok, PROMPT, strlen(PROMPT), GEN_TOKENS, &samp, 42, on_token, &st, &stats, &err);
  check(rc == 0 && !st.bad && st.len == (size_t)n1 && memcmp(st.buf, s1, st.len) == 0 &&
            stats.tokens == GEN_TOKENS && stats.prompt_tokens == (int)strlen(PROMPT),
        "lmn_generate_stream matches lmn_generate", rc ? err.msg : NULL);

  /* A small buffer cuts the text, not the generation. */
  char small[8];
  int ns = lmn_generate(a, &tok, PROMPT, GEN_TOKENS, &samp, 42, small, sizeof small, &err);
  check(ns == n1 && strlen(small) <= sizeof small - 1 && memcmp(small, s1, strnlen(small, sizeof small)) == 0,
        "a short buffer gets the start of the text", NULL);
  err.msg[0] = 0;
  check(lmn_generate(a, &tok, "", GEN_TOKENS, &samp, 42, small, sizeof small, &err) == -1 && err.msg[0] != 0,
        "an empty prompt is an error", err.msg);

  check(!a->grads && !a->m, "generating allocates no gradients or moments", NULL);

  /* Printable output of the sampled text, for the log. */
  for (int i = 0; i < n1; i++)
    if ((unsigned char)s1[i] < 32 || (unsigned char)s1[i] > 126) s1[i] = '.';
  s1[n1 > 0 ? n1 : 0] = 0;
  printf("embed: sampled (seed 42, untrained weights): \"%s\"\n", s1);

done:
  tiny_destroy(a);
  tiny_destroy(b);
  lmn_tokenizer_free(&tok);
  unlink(ckpt);
  check(rmdir(dir) == 0, "the temp dir holds nothing else (no stray temp files)", dir);
  printf("embed: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
