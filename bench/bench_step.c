/* bench_step.c: `make bench` driver, linked with one compiled network (BENCH_DESC, e.g.
 * -DBENCH_DESC=smol_desc).
 *
 *   bench_step train  THREADS B T WARMUP STEPS [SEED [PRECISION [RECOMPUTE]]]   time training steps on
 *                                                       random tokens, PRECISION f32 (default) or bf16
 *                                                       (`precision: bf16`), RECOMPUTE none (default),
 *                                                       vertices (every vertex recomputes its activations in
 *                                                       the backward pass) or all (edge blocks too)
 *   bench_step decode THREADS PROMPT N [REPS]           time cached generation: prefill PROMPT random
 *                                                       tokens, then N greedy single-token decodes
 *
 * Threads as the executable sets them: `train` follows runtime/train.c (OpenBLAS on THREADS threads while
 * the network is created and the sgemm rate is measured, then OpenBLAS on the calling thread and the
 * network's pool of THREADS spreading the blocks' GEMMs); `decode` follows `NAME generate` (driver.c
 * gen_setup: OpenBLAS on THREADS threads, pool of THREADS).
 * A training step is what train.c's train_step does: lmn_net_zero_grad, (bf16 on AMX: the weights packed,
 * lmn_net_bpack,) forward (train = 1), backward,
 * lmn_net_update (AdamW, lr 1e-3, betas 0.9/0.95, eps 1e-8, weight decay 0, clip 1.0), every tensor the
 * network compiles as trainable selected. Output: one `key value...` line per fact, read by bench/run.sh:
 *   sgemm_gflops G (before the steps) | flops_per_step F | step_s S, zero_s Z, update_s U (one each per timed
 *   step: the whole step; its lmn_net_zero_grad; its lmn_net_update, gradient norm and AdamW) | loss L |
 *   sgemm_gflops_after G (after them) | prefill_s S | decode_tok_s R | peak_rss_kib K (getrusage ru_maxrss,
 *   the whole process). MFU's denominator is the larger sgemm rate, so a rate measured while the machine
 *   was briefly busy cannot push MFU past 100%. */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "arena.h"
#include "bgemm.h"
#include "blasrate.h"
#include "net.h"

#ifndef BENCH_DESC
#error "compile with -DBENCH_DESC=NAME_desc"
#endif
extern const lmn_net_desc BENCH_DESC;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long peak_rss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss; /* KiB on Linux */
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32);
}

static int die(const char *what, const lmn_err *err) {
  fprintf(stderr, "bench_step: %s: %s\n", what, err ? err->msg : "");
  return 1;
}

static int argmax(const float *x, int n) {
  int b = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[b]) b = i;
  return b;
}

/* The GEMM rate (512^3) of the precision on `threads` threads: best of three medians of 5 (OpenBLAS's sgemm,
 * or lmn_bgemm on that many threads at once); OpenBLAS is left on one thread, as the training step runs it.
 */
static double sgemm_rate(int threads) {
  openblas_set_num_threads(threads);
  double g = 0.0;
  for (int i = 0; i < 3; i++) {
    double x = lmn_gemm_precision() == LMN_PREC_BF16 ? lmn_measure_bgemm_gflops(512, 5, threads)
                                                     : lmn_measure_sgemm_gflops(512, 5);
    g = x > g ? x : g;
  }
  openblas_set_num_threads(1);
  return g;
}

/* The keep ops that recompute: "vertices", "all" or none; prints how many and the arena's bytes. */
static int set_recompute(lmn_net *net, const char *what, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  int n = d->arena ? d->arena->n_keep : 0, k = 0;
  char rc[4096] = {0};
  if (n > (int)sizeof rc) return -1;
  for (int j = 0; j < n; j++) {
    rc[j] = !strcmp(what, "all") || (!strcmp(what, "vertices") && d->arena->keep[j].vtx);
    k += rc[j];
  }
  if (lmn_net_set_recompute(net, rc, err)) return -1;
  printf("recompute_ops %d of %d (%s)\n", k, n, what);
  printf("arena_bytes %zu\n", 4 * lmn_net_arena_floats(d, net->B, net->T, net->n_threads, net->recompute));
  return 0;
}

static int bench_train(const lmn_net_desc *d, int threads, int B, int T, int warmup, int steps, uint64_t seed,
                       const char *recompute) {
  lmn_err err = {{0}};
  lmn_net *net = NULL;
  openblas_set_num_threads(threads);
  if (lmn_net_create(&net, d, B, T, threads, seed, &err)) return die("create", &err);
  if (lmn_net_select(net, 0, NULL, 0, &err)) return die("select", &err);
  if (set_recompute(net, recompute, &err)) return die("recompute", &err);
  lmn_bpack *packed = lmn_gemm_precision() == LMN_PREC_BF16 ? lmn_net_bpack(net) : NULL;
  printf("packed_weight_bytes %zu\n", lmn_bpack_bytes(packed));
  /* the MFU denominator as train.c measures it: best of three medians, OpenBLAS on every thread of the run */
  printf("sgemm_gflops %.3f\n", sgemm_rate(threads));
  printf("flops_per_step %.6e\n", d->flops_bt * B * T + d->flops_btt * (double)B * T * T + d->flops_b * B);
  printf("trainable_floats %zu\n", d->n_train);
  size_t n = (size_t)B * (size_t)T;
  int32_t *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  if (!x || !y) return die("out of memory", NULL);
  rng_state ^= seed * 0x100000001b3ULL;
  for (int s = 0; s < warmup + steps; s++) {
    for (size_t i = 0; i < n; i++) x[i] = (int32_t)(rnd() % (uint32_t)d->vocab);
    for (int b = 0; b < B; b++)
      for (int t = 0; t < T; t++) y[(size_t)b * T + t] = t + 1 < T ? x[(size_t)b * T + t + 1] : -1;
    double t0 = now();
    lmn_net_zero_grad(net);
    double t1 = now();
    if (packed) lmn_bpack_refresh(packed, net->pool), lmn_bpack_use(packed); /* as train.c's train_step */
    float loss = d->forward(net, x, y, B, T, 1);
    d->backward(net, x, B, T);
    lmn_bpack_use(NULL);
    double t2 = now();
    lmn_net_update(net, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f);
    double dt = now() - t0;
    if (s >= warmup) /* the step, and its parts: zeroing the gradients, the gradient norm with AdamW */
      printf("step_s %.6f\nzero_s %.6f\nupdate_s %.6f\n", dt, t1 - t0, t0 + dt - t2);
    else
      printf("warmup_s %.6f\n", dt);
    if (s + 1 == warmup + steps) printf("loss %.6f\n", loss);
    fflush(stdout);
  }
  printf("sgemm_gflops_after %.3f\n", sgemm_rate(threads));
  printf("peak_rss_kib %ld\n", peak_rss_kib());
  free(x);
  free(y);
  lmn_bpack_free(packed);
  lmn_net_destroy(net);
  return 0;
}

static int bench_decode(const lmn_net_desc *d, int threads, int P, int N, int reps) {
  lmn_err err = {{0}};
  lmn_net *net = NULL;
  if (!d->decode || !d->cache_floats) return die("decode", &(lmn_err){.msg = "the network has no decode"});
  openblas_set_num_threads(threads);
  if (lmn_net_create(&net, d, 1, 1, threads, 1337, &err)) return die("create", &err);
  lmn_net_set_inference_threads(net, threads); /* as `NAME generate` */
  if (lmn_net_enable_cache(net, P + N, &err)) return die("cache", &err);
  int32_t *ids = malloc((size_t)(P + N) * sizeof *ids);
  float *logits = malloc((size_t)d->vocab * sizeof *logits);
  if (!ids || !logits) return die("out of memory", NULL);
  for (int r = 0; r < reps; r++) {
    for (int i = 0; i < P; i++) ids[i] = (int32_t)(rnd() % (uint32_t)d->vocab);
    double t0 = now();
    d->decode(net, ids, P, 0, logits); /* prefill: the cache is rewritten from position 0 */
    double t1 = now();
    int pos = P;
    for (int g = 0; g < N; g++) {
      int32_t id = argmax(logits, d->vocab);
      ids[pos] = id;
      d->decode(net, &id, 1, pos++, logits);
    }
    double t2 = now();
    printf("prefill_s %.6f\n", t1 - t0);
    printf("decode_tok_s %.4f\n", N / (t2 - t1));
    fflush(stdout);
  }
  printf("peak_rss_kib %ld\n", peak_rss_kib());
  free(ids);
  free(logits);
  lmn_net_destroy(net);
  return 0;
}

int main(int argc, char **argv) {
  const lmn_net_desc *d = &BENCH_DESC;
  if (argc >= 9 && !strcmp(argv[8], "bf16")) lmn_set_gemm_precision(LMN_PREC_BF16);
  if (argc >= 7 && !strcmp(argv[1], "train"))
    return bench_train(d, atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]),
                       argc > 7 ? strtoull(argv[7], NULL, 10) : 1, argc > 9 ? argv[9] : "none");
  if (argc >= 5 && !strcmp(argv[1], "decode"))
    return bench_decode(d, atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), argc > 5 ? atoi(argv[5]) : 1);
  fprintf(stderr,
          "usage: %s train THREADS B T WARMUP STEPS [SEED [f32|bf16]] | decode THREADS PROMPT N [REPS]   "
          "(network %s)\n",
          argv[0], d->name);
  return 2;
}
