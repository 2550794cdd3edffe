/* dump.h: `NAME dump-state`, the starting point of a run written for another implementation (the PyTorch
 * twin of tests/reference/torch_twin.py) so that it starts from exactly the same place: every parameter
 * tensor of the network (frozen ones and model-file ones too) under its parameter name, and one batch.
 *
 * The file is safetensors, every tensor F32:
 *   NAME             [rows, cols] or [rows]: each parameter tensor, as lmn_param_info names and shapes it
 *   batch:tokens     [B, T]: the input tokens (int32 values stored as F32: exact below 2^24)
 *   batch:targets    [B, T] next-token targets (-1 = ignored), or [B] class labels for a classifier
 * and string metadata: format "lmnet-state", version "1", network, source, hash (16 hex digits), aggregate
 * ("mean" | "sum"), batch, seq, prefix, vocab, classes, step (optimizer steps the weights have taken),
 * targets ("next_tokens" | "labels"), batch_dtype ("int32-as-f32"); plus whatever extra pairs the caller adds
 * (the command adds the config's optimizer, schedule and first stage: see lmn_dump_state_run). */
#ifndef LMN_DUMP_H
#define LMN_DUMP_H

#include <stdint.h>
#include <stdio.h>

#include "lmn_error.h"
#include "net.h"

#define LMN_DUMP_FORMAT "lmnet-state"
#define LMN_DUMP_VERSION 1

/* Writes net's parameters and the batch tokens [B*T], targets [B*T] (or [B] labels when the network is a
 * classifier) to path atomically. Fails on a token outside [0, vocab), a target outside [-1, vocab) (labels:
 * [0, classes)), or a value that F32 cannot hold exactly. */
int lmn_dump_state(lmn_net *net, const int32_t *tokens, const int32_t *targets, int B, int T,
                   const char *path, lmn_err *err);

/* As lmn_dump_state, with n_meta extra metadata pairs meta[2i] = key, meta[2i+1] = value (keys must not
 * repeat the ones above). */
int lmn_dump_state_meta(lmn_net *net, const int32_t *tokens, const int32_t *targets, int B, int T,
                        const char *const *meta, int n_meta, const char *path, lmn_err *err);

/* The `dump-state -c CONFIG [--ckpt PATH] -o FILE` command: loads the config, creates the network as `eval`
 * does (batch x seq_len of the config; weights from ckpt, else the newest checkpoint of checkpoint.dir,
 * else the seeded initialisation), selects the first stage, takes the first training batch (the one step 1
 * of `train` sees) and writes the state with the config's optimizer settings as metadata: config, seed,
 * weights, lr, beta1, beta2, eps, weight_decay, grad_clip, schedule, warmup, min_lr, steps, stage_train
 * ("all" | "edges" | "names"), stage_names (comma-separated, for "names"). threads: 0 = the config's. A line
 * saying what was written goes to log (may be NULL). */
int lmn_dump_state_run(const lmn_net_desc *desc, const char *config, const char *ckpt, long threads,
                       const char *out, FILE *log, lmn_err *err);

/* The `export -c CONFIG [--ckpt PATH] [--all] -o DIR` command: the network (weights as dump-state picks them)
 * written to DIR (created) for use outside lmnet, each file atomically:
 *   model.safetensors      every parameter as F32 under its lmnc name ("block.a->b.m0.attn_q.weight"); the
 *                          frozen tensors read from model files only with all (else they stay in those files,
 *                          named in network.json), metadata format "lmnet-export", network, hash, step, weights
 *   network.json           the network as `lmnc ir --json` gives it, less the ops
 *   network.lmn            the source it was compiled from
 *   test_data.safetensors  "tokens" [1, T] (the first training sequence, T = min(seq_len, 32), int32 values as
 *                          F32) and "output": the primary output lmnet computes for it ([1, T, vocab] logits, or
 *                          [1, classes]); tests/reference/torch_twin.py --export DIR rebuilds the network in
 *                          PyTorch and checks it against this
 * A line saying what was written goes to log (may be NULL). */
int lmn_export_run(const lmn_net_desc *desc, const char *config, const char *ckpt, int all, long threads,
                   const char *dir, FILE *log, lmn_err *err);

#endif
