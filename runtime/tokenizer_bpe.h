/* tokenizer_bpe.h: the byte-level BPE tokenizer of a GGUF file (tokenizer.ggml.model = "gpt2") behind the
 * lmn_tokenizer vtable, and the chat prompt of SmolLM2-Instruct.
 *
 * Encoding follows llama.cpp's llama_tokenize(..., add_special = false, parse_special = true):
 *  1. special tokens (token types CONTROL, USER_DEFINED, UNKNOWN) are matched verbatim, longest first;
 *  2. the text between them is split by the pre-tokenizer named by tokenizer.ggml.pre: "smollm" (and the
 *     starcoder family sharing its regexes), "gpt-2", "qwen2" and "llama-bpe" (llama 3), each a
 *     hand-written scanner equivalent to llama.cpp's (Unicode letters/numbers from runtime/tokenizer_ucd.h);
 *  3. each piece's bytes go through GPT-2's bytes_to_unicode and are merged by rank (lowest first, leftmost
 *     on ties), as llama.cpp's llm_tokenizer_bpe_session does.
 * encode never adds BOS/EOS (see lmn_bpe_info.add_bos). Unlike llama.cpp, invalid UTF-8 is not replaced by
 * U+FFFD: each invalid byte is pre-tokenized like U+FFFD (a symbol) but keeps its value. So decoding the
 * ids of any byte string gives back exactly those bytes, except the bytes that no token of the
 * vocabulary holds (lmn_bpe_info.byte_missing): like llama.cpp and Hugging Face's BPE without byte
 * fallback, encode drops them. SmolLM2's vocabulary lacks 21 byte values: the control characters 0x04
 * 0x06 0x13 0x14 0x16 0x1D, and 0xC0 0xC1 0xF1 0xF2 0xF5..0xFF, which no UTF-8 text of assigned code
 * points contains; every other text round-trips. decode_token gives a normal token's bytes (bytes_to_unicode
 * inverted) and a special token's text as stored. */
#ifndef LMN_TOKENIZER_BPE_H
#define LMN_TOKENIZER_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "lmn_error.h"
#include "tokenizer.h"

/* Values of tokenizer.ggml.token_type. */
enum {
  LMN_TOKTYPE_NORMAL = 1,
  LMN_TOKTYPE_UNKNOWN = 2,
  LMN_TOKTYPE_CONTROL = 3,
  LMN_TOKTYPE_USER_DEFINED = 4,
  LMN_TOKTYPE_UNUSED = 5,
  LMN_TOKTYPE_BYTE = 6
};

/* Makes t the byte-level BPE tokenizer of the GGUF file at path (only its header is read). On failure t
 * is left zeroed and err names the file and the key at fault, e.g. "m.gguf: key 'tokenizer.ggml.merges':
 * ...". Free with lmn_tokenizer_free. */
int lmn_tokenizer_load_gguf(lmn_tokenizer *t, const char *path, lmn_err *err);
/* The same from a Hugging Face model directory: DIR/tokenizer.json (model.type "BPE", byte-level; the
 * pre-tokenizer ByteLevel alone, Digits + ByteLevel, or Split on the GPT-2, Llama 3 or Qwen2 regex +
 * ByteLevel; normalizer none or NFC, which is not applied, as in llama.cpp), BOS/EOS from
 * DIR/tokenizer_config.json (bos_token, eos_token), else from DIR/config.json (bos_token_id, eos_token_id).
 * Errors name the file and the JSON key ("DIR/tokenizer.json: key 'model.merges[3]': ..."). */
int lmn_tokenizer_load_hf(lmn_tokenizer *t, const char *dir, lmn_err *err);
/* The same from the text of a tokenizer.json (n bytes; name in messages), without BOS/EOS (-1). */
int lmn_tokenizer_parse_hf(lmn_tokenizer *t, const char *text, size_t n, const char *name, lmn_err *err);
/* A directory as lmn_tokenizer_load_hf, anything else as lmn_tokenizer_load_gguf. */
int lmn_tokenizer_load(lmn_tokenizer *t, const char *path, lmn_err *err);
/* The same from an already open file; g may be closed afterwards (the tokenizer copies what it needs). */
int lmn_tokenizer_from_gguf(lmn_tokenizer *t, const lmn_gguf *g, lmn_err *err);

/* What a BPE tokenizer read from its file besides the lmn_tokenizer fields. */
typedef struct lmn_bpe_info {
  const char *pre;                 /* pre-tokenizer in use: "smollm", "gpt-2", "qwen2" or "llama-bpe" */
  int add_bos;                     /* tokenizer.ggml.add_bos_token (default: 1 for llama-bpe, else 0) */
  int add_eos;                     /* tokenizer.ggml.add_eos_token (default 0) */
  int32_t unk;                     /* tokenizer.ggml.unknown_token_id, or -1 */
  int32_t pad;                     /* tokenizer.ggml.padding_token_id, or -1 */
  int32_t eot;                     /* tokenizer.ggml.eot_token_id, or -1 */
  int32_t n_merges;                /* merges in use (those whose parts and result are tokens) */
  int32_t n_special;               /* tokens matched verbatim before pre-tokenization */
  int special_line_break;          /* one of those holds a line break ('\n') */
  int ignore_merges;               /* a piece that is a whole token is not merged (llama-bpe) */
  int n_bytes_missing;             /* byte values that no token holds: encode drops them */
  unsigned char byte_missing[256]; /* 1 for each of those */
} lmn_bpe_info;

/* Fills info for a tokenizer made by lmn_tokenizer_load_gguf / _from_gguf; -1 for any other. */
int lmn_tokenizer_bpe_info(const lmn_tokenizer *t, lmn_bpe_info *info);
/* The LMN_TOKTYPE_* of id for a BPE tokenizer; -1 for another tokenizer or an id outside the vocabulary. */
int lmn_tokenizer_token_type(const lmn_tokenizer *t, int32_t id);

#endif
