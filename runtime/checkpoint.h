/* checkpoint.h: training checkpoints of a compiled network, as safetensors files that other tools can read.
 * A checkpoint holds what is not in the base model files: every trainable tensor and every from-scratch
 * tensor (frozen ones too) under its parameter name, the AdamW moments of the trainable tensors as
 * "m.<name>" and "v.<name>" (same shapes), and string metadata:
 *   format "lmnet-checkpoint", version "1", network (desc->name), hash (16 hex digits of desc->hash),
 *   aggregate ("mean" | "sum"), step (training steps completed), optimizer_step (AdamW steps taken),
 *   and, from a training run: data_state (the lmn_data_state of the training stream, hex), rng_state (the
 *   run's lmn_rng, hex), config (the YAML path), config_yaml (the effective settings), batch, seq_len, seed.
 * and for every tensor NAME a checksum "crc32c.NAME" (8 hex digits: the CRC32C of its bytes as stored),
 * announced by checksum "crc32c" (files without it, from before checksums, are read unverified).
 * Vectors are stored with shape [rows], matrices with [rows, cols], all F32. Files are written atomically
 * (temp file + fsync + rename); a directory of checkpoints holds step-NNNNNN.safetensors files and a text
 * file `latest` naming the newest one, itself replaced atomically. A write killed half-way leaves a
 * temporary NAME.tmp.XXXXXX, which lmn_checkpoint_clean removes. */
#ifndef LMN_CHECKPOINT_H
#define LMN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "lmn_error.h"
#include "net.h"
#include "rng.h"

#define LMN_CKPT_FORMAT "lmnet-checkpoint"
#define LMN_CKPT_VERSION 1
#define LMN_CKPT_PATH_MAX 4096
#define LMN_CKPT_CRC_PREFIX "crc32c." /* the metadata key of a tensor's checksum: prefix + name */

/* The training run's place, saved next to the tensors so that a resumed run continues exactly. */
typedef struct lmn_ckpt_state {
  long step;           /* training steps completed */
  int has_run;         /* the fields below are set (a checkpoint of a training run) */
  lmn_data_state data; /* the training batch stream after `step` steps */
  lmn_rng rng;         /* the run's own generator */
  long batch, seq_len; /* the batch shape of the run */
  uint64_t seed;
  char config[LMN_CKPT_PATH_MAX]; /* the YAML file of the run ("" when unknown) */
  const char *config_text;        /* saving: the run's effective settings (lmn_config_text) to record, or
                                     NULL; always NULL when read (see lmn_checkpoint_config_text) */
} lmn_ckpt_state;

/* Writes net's checkpoint to path atomically. st may be NULL (an embedding program's own loop): then step
 * is net->step and no run metadata is written. Moments of a network that has not started training are
 * written as zeros. On failure path is left as it was. */
int lmn_checkpoint_save(const lmn_net *net, const char *path, const lmn_ckpt_state *st, lmn_err *err);
/* Loads a checkpoint into net: its tensors, moments (allocated first when the network has none yet, see
 * lmn_net_enable_moments) and optimizer step. Every check (format, version, hash, aggregation, the presence,
 * dtype and shape of every tensor, no tensor the network lacks, every tensor's checksum, no NaN or infinity,
 * a run state that can run: no all-zero generator) happens before anything in net changes; errors name the
 * file and the tensor or key. */
int lmn_checkpoint_load(lmn_net *net, const char *path, lmn_err *err);
/* As lmn_checkpoint_load, also returning the run state (st->has_run is 0 for checkpoints without it). */
int lmn_checkpoint_load_state(lmn_net *net, const char *path, lmn_ckpt_state *st, lmn_err *err);

/* Called by lmn_checkpoint_warm_start for each tensor not carried over: a tensor of the network left as it
 * was (absent from the file, or of another shape), or a tensor of the file that the network lacks. */
typedef void (*lmn_warm_report_fn)(void *ctx, const char *name, const char *why);
/* Warm start: copies into net every saved tensor of the checkpoint at path (weights, not AdamW moments) whose
 * name and shape match one of net's; the file may come from another network, but must pass its integrity
 * checks (every tensor's checksum, no NaN or infinity) before anything changes. Every tensor not carried
 * over, on either side, goes to report. Returns the number of tensors loaded (of *saved, the network's tensors
 * that checkpoints hold), or -1. */
int lmn_checkpoint_warm_start(lmn_net *net, const char *path, lmn_warm_report_fn report, void *ctx, int *saved,
                              lmn_err *err);

/* The effective settings a training run recorded in the checkpoint at path (metadata 'config_yaml', the
 * text of lmn_config_print) into *text (free() it), or NULL when it has none (written before they were
 * recorded, or not by a training run). -1 when the file cannot be read. */
int lmn_checkpoint_config_text(const char *path, char **text, lmn_err *err);

/* Every check of lmn_checkpoint_load_state against network d, loading nothing: 0 when path would load (st,
 * when not NULL, receives its run state), else -1 with the first fault. */
int lmn_checkpoint_verify(const lmn_net_desc *d, const char *path, lmn_ckpt_state *st, lmn_err *err);

/* "DIR/step-000123.safetensors" into buf; -1 when it does not fit. */
int lmn_checkpoint_path(const char *dir, long step, char *buf, size_t cap, lmn_err *err);
/* The newest checkpoint in dir: the file `latest` names when it exists and is valid, otherwise the
 * step-*.safetensors file with the highest step. Returns 1 and fills path (and *step when not NULL), 0 when
 * dir holds no checkpoint (or does not exist), -1 on another error. */
int lmn_checkpoint_latest(const char *dir, char *path, size_t cap, long *step, lmn_err *err);
/* Creates dir (and its parents) when missing. */
int lmn_checkpoint_mkdir(const char *dir, lmn_err *err);
/* Replaces dir/latest atomically with the file name of the checkpoint of `step`. */
int lmn_checkpoint_write_latest(const char *dir, long step, lmn_err *err);
/* Deletes all but the newest `keep` checkpoints among those with step <= upto (keep 0: delete none).
 * Checkpoints of later steps (another run's) are left alone. */
int lmn_checkpoint_prune(const char *dir, long keep, long upto, lmn_err *err);
/* Steps of the step-*.safetensors files in dir, ascending, in a malloc'ed array (*n of them; NULL when
 * none). A missing dir is an empty list. */
int lmn_checkpoint_list(const char *dir, long **steps, size_t *n, lmn_err *err);

/* Called with the path of each temporary lmn_checkpoint_clean removes. */
typedef void (*lmn_ckpt_report_fn)(void *ctx, const char *path);
/* Removes the temporaries that killed writes left in dir (step-NNNNNN.safetensors.tmp.XXXXXX,
 * latest.tmp.XXXXXX and .lmn-write-test.XXXXXX), reporting each; returns how many (0 for a missing dir), or
 * -1. */
int lmn_checkpoint_clean(const char *dir, lmn_ckpt_report_fn report, void *ctx, lmn_err *err);
/* 0 when a file can be created in dir (tried: a temporary file written and removed), else an error naming
 * dir and the cause. */
int lmn_checkpoint_writable(const char *dir, lmn_err *err);

/* Lowercase hex of n bytes into out (2n + 1 chars with the NUL). */
void lmn_hex_encode(const void *data, size_t n, char *out);
/* Decodes exactly 2n hex digits (either case) into n bytes; -1 on any other input. */
int lmn_hex_decode(const char *hex, void *data, size_t n);

#endif
