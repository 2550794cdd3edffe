/* lmn.h: the public C API of liblmn for programs that embed a network compiled by lmnc. Installed as
 * <lmn/lmn.h>; it needs only <stdint.h> and lmn_error.h (lmn_err), and shows nothing of a network's
 * insides: lmn_net (one instance: weights, buffers, threads) and lmn_net_desc (what lmnc compiled) are
 * opaque. The generated NAME.h includes this header, declares `extern const lmn_net_desc NAME_desc;` and
 * wraps lmn_create/lmn_destroy as NAME_create/NAME_destroy.
 *
 * A sketch (a language model, then a classifier):
 *   lmn_net *net; lmn_err err;
 *   if (lmn_create(&net, &tiny_desc, 4, 64, 2, 1337, &err)) { fprintf(stderr, "%s\n", err.msg); exit(1); }
 *   float loss; const float *logits;
 *   lmn_forward(net, tokens, targets, 4, 64, 0, &loss, &err);   // targets NULL: outputs only
 *   lmn_logits(net, 4, 64, &logits, &err);                      // [4 * 64, lmn_vocab(net)]
 *   lmn_forward(net, tokens, targets, 4, 64, 1, &loss, &err);   // a training step:
 *   lmn_backward(net, tokens, 4, 64, &err);                     //   gradients accumulate
 *   lmn_adamw opt = LMN_ADAMW_DEFAULT;
 *   lmn_update(net, &opt, NULL, &err);                          //   AdamW step, gradients zeroed
 *   float next[256];
 *   lmn_decode(net, prompt, n, 0, next, &err);                  // KV-cached: logits after the prompt
 *   lmn_decode(net, &id, 1, n, next, &err);                     //   and after each new token
 *   lmn_destroy(net);
 * Link with liblmn (pkg-config --cflags --libs lmn), OpenBLAS and libyaml.
 *
 * Errors: every function that can fail returns 0 on success and -1 on failure, with a one-line message in
 * *err (err may be NULL). Every argument is checked first (NULL pointers, B and T against the sizes given to
 * lmn_create, token ids against the vocabulary, targets and labels against the vocabulary or classes, the
 * order of calls): a bad argument is an error, never a crash, and leaves the network as it was.
 *
 * Threads: one network runs one call at a time. Functions marked "one call at a time per network" must not
 * run concurrently on the same network (guard it with your own lock); any number of networks may run at
 * once on different threads. Functions marked "any thread" only read facts fixed at creation and may run
 * at any time, concurrently with anything but lmn_destroy of that network. Each network runs its work on
 * `threads` threads of its own (the caller's included), which exist from lmn_create to lmn_destroy; it cuts
 * every module into tasks on those threads and calls OpenBLAS from them, one GEMM per thread: the same code
 * path as `NAME train`, whatever OpenBLAS's own thread count is. That count is process-wide and liblmn
 * leaves it alone: with threads > 1, set it to 1 (openblas_set_num_threads(1) or OPENBLAS_NUM_THREADS=1) so
 * that OpenBLAS's threads do not compete with the network's for the same cores. */
#ifndef LMN_LMN_H
#define LMN_LMN_H

#include <stddef.h>
#include <stdint.h>

#include "lmn_error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lmn_net lmn_net;
typedef struct lmn_net_desc lmn_net_desc;

/* The version of liblmn: LMN_VERSION of the headers compiled against, lmn_version() of the library linked.
 * Any thread. */
#define LMN_VERSION "0.1.0"
const char *lmn_version(void);

/* Creates an instance of the network desc (NAME_desc) for batches of up to B sequences of up to T tokens
 * (1 <= T <= lmn_desc_ctx(desc)) on `threads` threads (0: one per online CPU); from-scratch tensors are
 * drawn from seed and pre-trained ones are read from the model files compiled in (or from the directory
 * $LMN_MODEL_DIR names). Memory for activations is planned here for B x T; gradients and optimizer moments
 * are allocated only when training starts (the first lmn_forward with train = 1). *net is NULL on failure.
 * Thread-safe: creates nothing shared (reads $LMN_MODEL_DIR). */
int lmn_create(lmn_net **net, const lmn_net_desc *desc, int B, int T, int threads, uint64_t seed,
               lmn_err *err);
/* Frees everything of net (NULL is allowed). Not while another call on net runs. */
void lmn_destroy(lmn_net *net);

/* Facts of a compiled network, before any instance exists. Any thread. NULL desc: 0 or "". */
const char *lmn_desc_name(const lmn_net_desc *desc);
int lmn_desc_vocab(const lmn_net_desc *desc);
int lmn_desc_classes(const lmn_net_desc *desc);
int lmn_desc_ctx(const lmn_net_desc *desc);

/* Facts of an instance. Any thread. NULL net: 0 or "".
 *   lmn_vocab    token ids are in [0, vocab)
 *   lmn_classes  > 0 for a classification network (labels in [0, classes), one per sequence), else 0
 *   lmn_ctx      the longest sequence the network supports (the bound of lmn_decode's positions)
 *   lmn_prefix   positions of a fixed learned prefix the network puts before every sequence (0: none)
 *   lmn_max_batch, lmn_max_seq  B and T given to lmn_create
 *   lmn_threads  threads the network runs on
 *   lmn_step     AdamW steps taken (from lmn_update and loaded checkpoints); not while lmn_update runs */
const char *lmn_name(const lmn_net *net);
int lmn_vocab(const lmn_net *net);
int lmn_classes(const lmn_net *net);
int lmn_ctx(const lmn_net *net);
int lmn_prefix(const lmn_net *net);
int lmn_max_batch(const lmn_net *net);
int lmn_max_seq(const lmn_net *net);
int lmn_threads(const lmn_net *net);
long lmn_step(const lmn_net *net);

/* The forward pass over tokens [B*T] (B sequences of T ids, 1 <= B <= lmn_max_batch, 1 <= T <=
 * lmn_max_seq). targets: for a language model [B*T] next-token ids (or -1: that position has no loss), for
 * a classifier [B] labels (or -1: that sequence has no loss); NULL: no loss, outputs only. *loss (loss may
 * be NULL) receives the mean loss over the positions or sequences that have a target, 0 without targets.
 * train = 0: the outputs stay readable with lmn_logits. train = 1 (targets required): training starts
 * (gradients and moments are allocated the first time) and what lmn_backward needs is kept; the outputs
 * are consumed (lmn_logits fails until the next forward with train = 0). One call at a time per network. */
int lmn_forward(lmn_net *net, const int32_t *tokens, const int32_t *targets, int B, int T, int train,
                float *loss, lmn_err *err);
/* The primary output of the last lmn_forward, which must have had train = 0 and the same B and T: for a
 * language model the logits [B*(lmn_prefix + T), lmn_vocab] (per sequence its prefix rows first, then one
 * row per token: row b*(prefix+T) + prefix + t follows token t of sequence b), for a classifier the class
 * logits [B, lmn_classes]. *out points into the network and stays valid until the next lmn_forward,
 * lmn_backward, lmn_decode or lmn_destroy on it. One call at a time per network. */
int lmn_logits(lmn_net *net, int B, int T, const float **out, lmn_err *err);
/* The backward pass of the last lmn_forward, which must have had train = 1, the same B, T and the same
 * tokens: the gradient of its loss is ADDED to the network's gradients (so several forward/backward pairs
 * accumulate before one lmn_update). Frozen tensors get no gradient. One call at a time per network. */
int lmn_backward(lmn_net *net, const int32_t *tokens, int B, int T, lmn_err *err);
/* Zeroes the accumulated gradients (training must have started). One call at a time per network. */
int lmn_zero_grad(lmn_net *net, lmn_err *err);

/* AdamW (decoupled weight decay, as PyTorch's AdamW) with global-norm gradient clipping. */
typedef struct lmn_adamw {
  float lr, beta1, beta2, eps, weight_decay;
  float max_norm; /* clip the global gradient norm to this; <= 0: no clipping */
} lmn_adamw;
/* The defaults of a training config (`NAME train`): lr 3e-4, betas 0.9 and 0.95, eps 1e-8, no weight decay,
 * clipping at norm 1. */
#define LMN_ADAMW_DEFAULT \
  { 3e-4f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f }
/* One AdamW step on every trainable tensor with the accumulated gradients, which are then zeroed;
 * *grad_norm (grad_norm may be NULL) receives the global gradient norm before clipping (a NaN or infinite
 * norm is an error: the step has spoiled the weights). Needs training to have started (a forward with
 * train = 1). The KV caches of lmn_decode are emptied (they hold the old weights' keys and values). One
 * call at a time per network. */
int lmn_update(lmn_net *net, const lmn_adamw *opt, float *grad_norm, lmn_err *err);

/* Reserves the KV caches of lmn_decode for positions [0, ctx) (1 <= ctx <= lmn_ctx), emptying them; without
 * it the first lmn_decode reserves lmn_ctx positions. One call at a time per network. */
int lmn_reserve_cache(lmn_net *net, int ctx, lmn_err *err);
/* Cached decoding of a language model (batch 1): feeds tokens [T] at positions pos0 .. pos0+T-1 through the
 * network, keeping their keys and values, and writes the logits after the last of them into logits
 * [lmn_vocab] (logits may be NULL: a prefill only). Positions before pos0 must have been fed by earlier
 * calls since the caches were reserved or the weights last changed (lmn_update, lmn_load_checkpoint):
 * pos0 = 0 starts a new sequence, a smaller pos0 rewinds. pos0 + T must fit the caches. What lmn_logits
 * returned is no longer valid afterwards. One call at a time per network. */
int lmn_decode(lmn_net *net, const int32_t *tokens, int T, int pos0, float *logits, lmn_err *err);

/* Chat (a language model whose model file has a chat template: ChatML, Llama-3 or Gemma). A conversation
 * keeps its history in the network's KV caches: each lmn_chat_send renders the whole conversation with the
 * model's template, finds the part the caches already hold and feeds only the rest (the new user message),
 * then samples the reply, which ends at the template's end of turn, the model's end-of-sequence token, a
 * stop string or max_tokens. The reply holds no template markup. While a conversation is open it owns the
 * network's caches (do not lmn_decode in between). One call at a time per conversation; any number of
 * conversations on different networks at once. */
typedef struct lmn_chat lmn_chat;

typedef struct lmn_chat_opts {
  int max_tokens;           /* the reply's length at most, in tokens (>= 0) */
  float temperature;        /* 0: greedy */
  int top_k;                /* 0: off */
  float top_p;              /* 1 (or 0): off */
  uint64_t seed;            /* of the sampling; each reply draws from seed + its turn number */
  const char *const *stop;  /* strings that end the reply besides the template's own (not part of it) */
  int n_stop;
  /* the reply's text as it comes (may be NULL); a non-zero return stops the reply there */
  int (*on_text)(void *ctx, const char *text, size_t len);
  void *ctx;
} lmn_chat_opts;
#define LMN_CHAT_OPTS_DEFAULT {256, 0.8f, 40, 0.95f, 1337, NULL, 0, NULL, NULL}

/* What the last reply cost. */
typedef struct lmn_chat_stats {
  int prompt_tokens;  /* tokens of the rendered conversation */
  int reused_tokens;  /* of which the caches already held these (not fed again) */
  int reply_tokens;
  double prefill_s;   /* feeding prompt_tokens - reused_tokens */
  double decode_s;
  int finish;         /* LMN_CHAT_FINISH_* */
} lmn_chat_stats;
enum { LMN_CHAT_FINISH_STOP = 0, LMN_CHAT_FINISH_LENGTH, LMN_CHAT_FINISH_CONTEXT, LMN_CHAT_FINISH_CANCELLED };

/* Opens a conversation on net with a system message (NULL: the template's default, if it has one) and KV
 * caches of ctx positions (0: the network's context). Fails for classifiers, byte-level networks and models
 * without a recognised template (the message names the file and the template). */
int lmn_chat_open(lmn_chat **chat, lmn_net *net, const char *system, int ctx, lmn_err *err);
/* Adds the user's message, generates the reply and adds it; *reply (may be NULL) points at the reply's text
 * (NUL-terminated, valid until the next call on the conversation). Fails, leaving the conversation as it was,
 * when the conversation would not fit the context. */
int lmn_chat_send(lmn_chat *chat, const char *user, const lmn_chat_opts *opts, const char **reply, lmn_err *err);
/* Starts over with a system message (NULL: the default) and empty caches. */
int lmn_chat_reset(lmn_chat *chat, const char *system, lmn_err *err);
/* The conversation so far: n messages; role and content of message i (system first when there is one). */
int lmn_chat_messages(const lmn_chat *chat);
const char *lmn_chat_role(const lmn_chat *chat, int i);
const char *lmn_chat_content(const lmn_chat *chat, int i);
/* The template's name ("ChatML", "Llama-3", "Gemma"). */
const char *lmn_chat_template_name(const lmn_chat *chat);
void lmn_chat_last_stats(const lmn_chat *chat, lmn_chat_stats *stats);
/* Writes the conversation as JSON {"template", "messages": [{"role", "content"}...]} to path atomically. */
int lmn_chat_save(const lmn_chat *chat, const char *path, lmn_err *err);
void lmn_chat_close(lmn_chat *chat);

/* Checkpoints (safetensors, see checkpoint.h): the trainable and from-scratch tensors, AdamW moments and
 * step. lmn_load_checkpoint checks everything (network hash, every tensor's shape) before it changes the
 * network. One call at a time per network (saving only reads the network). */
int lmn_load_checkpoint(lmn_net *net, const char *path, lmn_err *err);
int lmn_save_checkpoint(const lmn_net *net, const char *path, lmn_err *err);

#ifdef __cplusplus
}
#endif

#endif
