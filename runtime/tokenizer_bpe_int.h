/* tokenizer_bpe_int.h: inside liblmn, what a reader of a tokenizer file hands to the byte-level BPE builder
 * of tokenizer_bpe.c (lmn_tokenizer_from_parts): the GGUF reader there and the Hugging Face tokenizer.json
 * reader of tokenizer_hf.c. The readers check every key of their files; the builder only copies. */
#ifndef LMN_TOKENIZER_BPE_INT_H
#define LMN_TOKENIZER_BPE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "lmn_error.h"
#include "tokenizer.h"

/* The pre-tokenizers (tokenizer_bpe.h): llama.cpp's "smollm", "gpt-2", "qwen2" and "llama-bpe" regexes. */
typedef enum lmn_bpe_pre { LMN_PRE_SMOLLM = 0, LMN_PRE_GPT2, LMN_PRE_QWEN2, LMN_PRE_LLAMA3 } lmn_bpe_pre;

typedef struct lmn_bpe_str {
  const char *s;
  size_t len;
} lmn_bpe_str;

/* A tokenizer as its file describes it (borrowed: the builder copies what it keeps). */
typedef struct lmn_bpe_parts {
  const char *name; /* the file, in messages */
  lmn_bpe_pre pre;
  int ignore_merges;               /* a piece that is a whole token is not merged */
  int add_bos, add_eos;            /* lmn_bpe_info */
  int32_t n;                       /* tokens, 1 to LMN_BPE_MAX_VOCAB */
  const lmn_bpe_str *tokens;       /* [n] as stored: bytes_to_unicode form, special tokens as their text */
  const uint8_t *types;            /* [n] LMN_TOKTYPE_* */
  size_t n_merges;                 /* at most LMN_BPE_MAX_MERGES */
  const lmn_bpe_str *merges;       /* [2 * n_merges]: left and right part of each merge, lowest rank first */
  int32_t bos, eos, unk, pad, eot; /* ids in [0, n), or -1 */
} lmn_bpe_parts;

#define LMN_BPE_MAX_VOCAB (1 << 24) /* far above any real vocabulary; keeps every size computation small */
#define LMN_BPE_MAX_MERGES (INT32_MAX / 4)

/* The pre-tokenizer's canonical llama.cpp name, and the flags llama.cpp sets for it. */
const char *lmn_bpe_pre_name(lmn_bpe_pre pre);
int lmn_bpe_pre_ignore_merges(lmn_bpe_pre pre);
int lmn_bpe_pre_add_bos(lmn_bpe_pre pre);

/* Builds t from p (merges whose parts or result are not tokens are left out, as llama.cpp does; the first
 * rank of a pair wins). On failure (out of memory) t is left zeroed. */
int lmn_tokenizer_from_parts(lmn_tokenizer *t, const lmn_bpe_parts *p, lmn_err *err);

#endif
