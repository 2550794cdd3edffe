/* arena.c: run-time half of the activation and cache layouts (arena.h): scratch sizes per op kind, the
 * regions after the compiler-planned one, and the memory line `lmnc info` and `NAME info` both print. */
#include "arena.h"

#include "dequant.h"

size_t lmn_scratch_floats(const lmn_scratch *s, int B, int T, int nt) {
  size_t N = (size_t)B * T;
  switch (s->kind) {
    case LMN_SCRATCH_BLOCK: return lmn_block_scratch_floats(s->blk, B, T, nt);
    case LMN_SCRATCH_VERTEX: return lmn_vertex_scratch_floats(s->vtx, s->K, B, T, nt);
    case LMN_SCRATCH_MLP: return lmn_mlp_scratch_floats(s->d, s->h, (int)N);
    case LMN_SCRATCH_CLASSIFY: return (size_t)B * s->d;
    case LMN_SCRATCH_BLOCK_CACHED:
      return lmn_block_cache_scratch_floats(s->blk, T, nt) + 3 * (size_t)T * s->blk->d + 2 * (size_t)T;
    case LMN_SCRATCH_VERTEX_CACHED: return lmn_vertex_cache_scratch_floats(s->vtx, T, nt);
    case LMN_SCRATCH_MLP_CACHED: return lmn_mlp_saved_floats(s->d, s->h, T);
    default: return 0;
  }
}

size_t lmn_keep_saved_floats(const lmn_keep *k, int B, int T) {
  return k->vtx ? lmn_vertex_saved_floats(k->vtx, k->K, B, T) : lmn_block_saved_floats(k->blk, B, T);
}

size_t lmn_keep_input_floats(const lmn_keep *k, int B, int T) {
  return k->vtx ? lmn_vertex_kept_floats(k->vtx, k->K, B, T) : (size_t)B * (size_t)T * (size_t)k->blk->d;
}

/* The recomputed forward writes its saved region there (a vertex's one layer at a time), and its output
 * after it. */
size_t lmn_keep_work_floats(const lmn_keep *k, int B, int T) {
  return k->vtx ? lmn_vertex_work_floats(k->vtx, k->K, B, T) : lmn_block_work_floats(k->blk, B, T);
}

static int recomputes(const lmn_arena *a, int j) {
  return a->recompute && a->recompute[j];
}

static size_t keep_floats(const lmn_arena_desc *d, const lmn_arena *a, int j) {
  const lmn_keep *k = &d->keep[j];
  return recomputes(a, j) ? lmn_keep_input_floats(k, a->B, a->T) : lmn_keep_saved_floats(k, a->B, a->T);
}

static float *keep_region(const lmn_arena_desc *d, const lmn_arena *a, float *base, int j) {
  size_t at = a->keep;
  for (int i = 0; i < j; i++) at += keep_floats(d, a, i);
  return base + at;
}

float *lmn_arena_saved(const lmn_arena_desc *d, const lmn_arena *a, float *base, int j) {
  return recomputes(a, j) ? base + a->work : keep_region(d, a, base, j);
}

float *lmn_arena_kept(const lmn_arena_desc *d, const lmn_arena *a, float *base, int j) {
  return recomputes(a, j) ? keep_region(d, a, base, j) : NULL;
}

void lmn_arena_layout(const lmn_arena_desc *d, int B, int T, int nt, const char *recompute, lmn_arena *a) {
  size_t N = (size_t)B * T, scratch = 0, work = 0;
  a->B = B;
  a->T = T;
  a->recompute = recompute;
  a->seq = N * (size_t)d->row_floats;
  a->tokens = a->seq + (size_t)B * (size_t)d->seq_floats;
  a->scratch = a->tokens + (size_t)d->token_arrays * N; /* int32 and float are both 4 bytes */
  for (int i = 0; i < d->n_scratch; i++) {
    size_t s = lmn_scratch_floats(&d->scratch[i], B, T, nt);
    if (s > scratch) scratch = s;
  }
  a->keep = a->scratch + scratch;
  a->work = a->keep;
  for (int j = 0; j < d->n_keep; j++) {
    a->work += keep_floats(d, a, j);
    size_t w = recomputes(a, j) ? lmn_keep_work_floats(&d->keep[j], B, T) : 0;
    if (w > work) work = w;
  }
  a->rope = a->work + work;
  a->total = a->rope;
  for (int m = 0; m < d->n_rope; m++) a->total += (size_t)T * (size_t)d->rope_hd[m];
}

void lmn_arena_ropes(const lmn_arena_desc *d, const lmn_arena *a, float *base, int T, int build, lmn_rope *ropes) {
  float *at = base + a->rope;
  for (int m = 0; m < d->n_rope; m++) {
    int hd = d->rope_hd[m];
    float *cos_t = at, *sin_t = at + (size_t)T * (size_t)(hd / 2);
    if (hd > 0 && build) lmn_rope_table(cos_t, sin_t, T, hd, d->rope_theta[m]);
    ropes[m] = (lmn_rope){cos_t, sin_t, hd > 0 ? T : 0};
    at += (size_t)T * (size_t)hd;
  }
}

void lmn_bytes_text(double b, char *buf, size_t cap) {
  if (b < 1024.0 * 1024.0)
    snprintf(buf, cap, "%.1f KiB", b / 1024.0);
  else if (b < 1024.0 * 1024.0 * 1024.0)
    snprintf(buf, cap, "%.1f MiB", b / 1048576.0);
  else
    snprintf(buf, cap, "%.2f GiB", b / 1073741824.0);
}

void lmn_print_kept(FILE *f, const double bytes[64]) {
  double total = 0;
  for (int t = 0; t < 64; t++) total += bytes[t];
  if (total <= 0) return;
  fprintf(f, "frozen weights kept as");
  const char *sep = " ";
  char m[32];
  for (int t = 0; t < 64; t++) {
    if (bytes[t] <= 0) continue;
    lmn_bytes_text(bytes[t], m, sizeof m);
    const char *name = lmn_ggml_type_name((uint32_t)t);
    fprintf(f, "%s%s %s", sep, name ? name : "?", m);
    sep = " | ";
  }
  lmn_bytes_text(total, m, sizeof m);
  fprintf(f, " (%s in all)\n", m);
}

double lmn_fixed_bytes(size_t n_floats, size_t n_train, double kept_bytes) {
  return 4.0 * ((double)n_floats + 3.0 * (double)n_train) + (kept_bytes > 0 ? kept_bytes : 0);
}

void lmn_print_peak(FILE *f, size_t n_floats, size_t n_train, size_t arena_floats, double kept_bytes) {
  char m[32];
  double b = lmn_fixed_bytes(n_floats, n_train, kept_bytes) + 4.0 * (double)arena_floats;
  lmn_bytes_text(b, m, sizeof m);
  fprintf(f, "peak while training: about %s (%.0f bytes: parameters, %sgradients + AdamW moments, activations)\n",
          m, b, kept_bytes < 0 ? "not the frozen weights kept in their file (unread), " : "frozen weights kept, ");
}

void lmn_print_memory(FILE *f, long B, long T, int threads, size_t n_floats, size_t n_train, size_t arena_floats) {
  char m1[32], m2[32], m3[32];
  lmn_bytes_text(4.0 * (double)n_floats, m1, sizeof m1);
  lmn_bytes_text(12.0 * (double)n_train, m2, sizeof m2);
  lmn_bytes_text(4.0 * (double)arena_floats, m3, sizeof m3);
  fprintf(f, "memory at batch %ld x %ld on %d thread%s: parameters %s | gradients + AdamW moments %s | activations %s (%zu bytes)\n",
          B, T, threads, threads == 1 ? "" : "s", m1, m2, m3, 4 * arena_floats);
}
