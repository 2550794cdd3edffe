/* arena.h: the layout of a compiled network's activation arena (training and evaluation) and of its decoding
 * cache, from data the compiler writes. lmnc plans every buffer whose size is a multiple of the rows (B*T
 * positions, or ctx when decoding: outputs, their gradients, what the backward keeps, KV caches) into one
 * region at compile time; what depends on B, T and the thread count otherwise (the largest scratch any op
 * needs, the fixed prefix's token arrays, RoPE tables) is laid out here at run time. The generated code and
 * lmnc evaluate the same function on the same data, so `lmnc info` and `NAME info` print the same bytes. */
#ifndef LMN_ARENA_H
#define LMN_ARENA_H

#include <stddef.h>
#include <stdio.h>

#include "modules.h"
#include "vertex.h"

/* What one op needs as scratch (reused by every op in turn). */
typedef enum lmn_scratch_kind {
  LMN_SCRATCH_BLOCK,         /* lmn_block_scratch_floats(blk, B, T, nt) */
  LMN_SCRATCH_VERTEX,        /* lmn_vertex_scratch_floats(vtx, K, B, T, nt) */
  LMN_SCRATCH_MLP,           /* lmn_mlp_scratch_floats(d, h, B*T) */
  LMN_SCRATCH_CLASSIFY,      /* B * d: the input gradient of the last positions */
  LMN_SCRATCH_BLOCK_CACHED,  /* decoding T positions: lmn_block_cache_scratch_floats + 3*T*d + 2*T */
  LMN_SCRATCH_VERTEX_CACHED, /* lmn_vertex_cache_scratch_floats(vtx, T, nt) */
  LMN_SCRATCH_MLP_CACHED,    /* lmn_mlp_saved_floats(d, h, T): the MLP's forward workspace */
  LMN_SCRATCH_KINDS
} lmn_scratch_kind;

typedef struct lmn_scratch {
  lmn_scratch_kind kind;
  const lmn_block_cfg *blk;   /* BLOCK kinds */
  const lmn_vertex_cfg *vtx;  /* VERTEX kinds */
  int K;                      /* VERTEX: calls run as one batch */
  int d, h;                   /* MLP: widths; CLASSIFY: d */
} lmn_scratch;

/* An op whose saved activations may be recomputed instead of kept (a vertex with a backward pass, or an
 * edge's decoder or GPT-2 block): recomputing, it keeps only the inputs of its layers (vertex.h) and, just
 * before each layer's backward, runs that layer's forward again into the arena's one shared workspace. Which
 * ops recompute is the run's choice (recompute.c, from a memory budget); `recompute` masks below are [n_keep]
 * flags, NULL = keep all. */
typedef struct lmn_keep {
  const lmn_block_cfg *blk;  /* a block op, or NULL */
  const lmn_vertex_cfg *vtx; /* a vertex op (K calls as one batch), or NULL */
  int K;
  double flops_bt, flops_btt; /* forward FLOPs per row (B*T rows): flops_bt + flops_btt * T, what recomputing
                               * it costs */
  const char *what;           /* its name in the plan's printout */
} lmn_keep;

typedef struct lmn_arena_desc {
  long row_floats;            /* the planned region, floats per row (B*T rows; ctx rows for the cache) */
  long seq_floats;            /* floats per sequence: [B]-row buffers (class logits, a classifier's inputs) */
  int token_arrays;           /* int32 arrays of B*T each after them (the fixed prefix's tokens, targets) */
  int n_scratch;
  const lmn_scratch *scratch; /* the region is the largest of these */
  int n_rope;
  const int *rope_hd;         /* per model: head size of its RoPE table (cos and sin, [T, hd/2] each), or 0 */
  const double *rope_theta;   /* per model: its RoPE base */
  int n_keep;
  const lmn_keep *keep; /* saved regions laid out at run time (kept whole, or only the input) */
} lmn_arena_desc;

/* Offsets in floats: the planned region starts at 0. */
typedef struct lmn_arena {
  size_t seq, tokens, scratch, keep, work, rope, total;
  int B, T;
  const char *recompute; /* the mask it was laid out with (NULL: every keep op kept whole) */
} lmn_arena;

/* Floats of keep op j at B x T: its whole saved region, its kept input, and its recompute workspace. */
size_t lmn_keep_saved_floats(const lmn_keep *k, int B, int T);
size_t lmn_keep_input_floats(const lmn_keep *k, int B, int T);
size_t lmn_keep_work_floats(const lmn_keep *k, int B, int T);
/* Keep op j's saved activations in the arena at base: its own region, or the shared workspace when it
 * recomputes. */
float *lmn_arena_saved(const lmn_arena_desc *d, const lmn_arena *a, float *base, int j);
/* Where keep op j keeps its input while it recomputes; NULL when it keeps everything. */
float *lmn_arena_kept(const lmn_arena_desc *d, const lmn_arena *a, float *base, int j);

/* Floats one op's scratch needs for B x T on n_threads threads. */
size_t lmn_scratch_floats(const lmn_scratch *s, int B, int T, int n_threads);
/* Lays out B x T (T counts every position inside the network, a fixed prefix included) with the keep ops
 * of `recompute` (NULL: none) recomputing. */
void lmn_arena_layout(const lmn_arena_desc *d, int B, int T, int n_threads, const char *recompute,
                      lmn_arena *a);
/* The RoPE tables of every model in the arena at base (ropes[m] for m < n_rope; n_pos 0 where a model has
 * none), filled for positions 0..T-1 when build is set. */
void lmn_arena_ropes(const lmn_arena_desc *d, const lmn_arena *a, float *base, int T, int build, lmn_rope *ropes);

/* The memory line of `info`: parameters, gradients + AdamW moments of n_train floats, activations. */
void lmn_print_memory(FILE *f, long B, long T, int threads, size_t n_floats, size_t n_train, size_t arena_floats);
/* "12.0 KiB", "3.4 MiB", "1.48 GiB". */
void lmn_bytes_text(double bytes, char *buf, size_t cap);
/* The bytes a training run holds besides its arena: n_floats parameters in f32, the frozen weights kept in
 * their files' formats (kept_bytes; < 0: unknown, counted as 0), gradients and AdamW moments of n_train. */
double lmn_fixed_bytes(size_t n_floats, size_t n_train, double kept_bytes);
/* "peak while training: about 1.48 GiB (...)": parameters in f32, the kept frozen weights (kept_bytes < 0:
 * unknown, said so), gradients and AdamW moments of n_train floats and the arena; what a training process's
 * peak RSS comes to, less the process's own pages (code, libraries, OpenBLAS's buffers: tens of MiB). */
void lmn_print_peak(FILE *f, size_t n_floats, size_t n_train, size_t arena_floats, double kept_bytes);
/* "frozen weights kept as Q4_1 52.1 MiB | Q8_0 20.3 MiB (72.4 MiB)": bytes[type] per ggml type (nothing
 * when all are zero). */
void lmn_print_kept(FILE *f, const double bytes[64]);

#endif
