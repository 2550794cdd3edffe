/* schedule.h: the schedule pass: the IR turned into the program code generation prints and `lmnc info` sizes.
 * It lays out the parameter buffer (trainable tensors first), groups calls of one shared weight set into
 * batches, makes three schedules of steps (training forward, backward, cached decoding), gives every buffer a
 * row kind, a width and a lifetime, and plans them with plan.c into the arena and the decoding cache. The
 * block shapes and scratch needs it builds are the runtime's own structs (arena.h), so the generated code
 * and lmnc evaluate one layout. Arrays are sized from the IR's counts: the pass has no fixed limits. */
#ifndef LMNC_SCHEDULE_H
#define LMNC_SCHEDULE_H

#include <stdint.h>

#include "arena.h"
#include "ir.h"
#include "lmn_error.h"

/* What a buffer holds: an op's output, the gradient of its output, what its backward keeps (or its
 * workspace), or (decoding) its KV caches. */
typedef enum { BUF_OUT, BUF_DOUT, BUF_SAVED, BUF_KV } BufRole;
/* Rows: B*T positions (decoding: ctx positions), or B sequences. */
typedef enum { ROWS_BT, ROWS_B } RowKind;

typedef struct Buffer {
  BufRole role;
  int op;
  RowKind rows;
  long width;  /* floats per row */
  int lo, hi;  /* lifetime in schedule time: forward of op i at i, its backward at 2n - 1 - i */
  long at;     /* planned offset within its region, in floats per row */
} Buffer;

typedef enum { STEP_EMBED, STEP_SUM, STEP_LINEAR, STEP_MLP, STEP_BLOCK, STEP_VERTEX, STEP_HEAD, STEP_CLASSIFY, STEP_LOSS, STEP_COUNT } StepKind;

typedef struct Step {
  StepKind kind;
  int op;
  int *calls, n_calls; /* STEP_VERTEX: the vertex ops run as one batch, op first; else op alone */
  int *zero, n_zero;   /* backward: the gradient buffers this step writes first (zeroed before it) */
} Step;

typedef struct Schedule {
  Step *steps;
  int n;
} Schedule;

/* The buffers of one region (the training arena, or the decoding cache) and their plan. */
typedef struct Layout {
  Buffer *bufs;
  int n;
  int *out, *dout, *saved; /* per op: its buffer, or -1 (decoding: saved is the KV cache) */
  long row_floats;         /* the region's size in floats per row */
  long seq_floats;         /* [B]-row buffers, floats per sequence */
  lmn_scratch *scratch;    /* per step that needs scratch */
  int n_scratch;
  lmn_keep *keep; /* training: the ops whose saved activations the run may recompute (arena.h) */
  int n_keep;
  int *keep_of;           /* per op: its index in keep, or -1 (its saved buffer, if any, is planned) */
  char (*keep_what)[160]; /* [n_keep]: keep[j].what */
} Layout;

typedef struct Sched {
  const Ir *ir;
  const Net *net;
  int *order;      /* generated parameter index -> IR parameter (trainable tensors first) */
  int *gen;        /* IR parameter -> generated index */
  long *offset;    /* generated index -> offset in the parameter buffer, in floats */
  uint64_t hash;   /* of the parameter names, shapes, trainability and the aggregation */
  int *group;      /* per op: the first op of its batch of shared vertex calls, or -1 */
  int *members_at, *members; /* a batch leader f's calls: members[members_at[f] .. members_at[f + 1]) */
  int primary;     /* the op whose output the first loss reads */
  lmn_block_cfg *blk;  /* per op: block shape (vertices, decoder and gpt2 edges), else zeroed */
  lmn_vertex_cfg *vtx; /* per vertex op: its shape and bindings (generated indices in vbind) */
  int *vbind;          /* per op's layers: [layers][LMN_BM_COUNT] generated indices */
  int *vbind_at;       /* per op: its first row in vbind, or -1 */
  Schedule fwd, bwd, dec;
  Layout train, cache;
  int *rope_hd;        /* per model */
  double *rope_theta;
} Sched;

/* Builds the program; 0, or -1 with err set (out of memory). */
int sched_build(Sched *p, const Ir *ir, lmn_err *err);
void sched_free(Sched *p);

/* The arena (cached = 0) or cache (cached = 1) layout data, pointing into p. */
lmn_arena_desc sched_arena(const Sched *p, int cached);

/* The ops whose outputs op reads (through an aggregation, its inputs); n at most ir->n_ops entries. */
int sched_reads(const Ir *ir, const Op *op, int *ins);
/* Whether op i's output gradient is kept (some op upstream is trainable and i is not a sink). */
int sched_needs_dout(const Op *op);

#endif
