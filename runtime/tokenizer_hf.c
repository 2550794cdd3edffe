/* tokenizer_hf.c: the byte-level BPE tokenizer of a Hugging Face model directory (DIR/tokenizer.json, with
 * BOS/EOS from DIR/tokenizer_config.json and DIR/config.json), built by tokenizer_bpe.c exactly as the GGUF
 * tokenizer is. The pre-tokenizer is recognised by its structure: ByteLevel alone (GPT-2's regex), Digits
 * + ByteLevel (SmolLM / StarCoder), or Split on a known regex + ByteLevel (GPT-2, Llama 3, Qwen2); anything
 * else is refused, quoting the pattern. Every error names the file and the JSON key. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmn_file.h"
#include "safetensors.h"
#include "tokenizer_bpe.h"
#include "tokenizer_bpe_int.h"

typedef struct hf_tok {
  const char *path; /* the file being read, in messages */
  lmn_err *err;
  lmn_bpe_parts p;
  lmn_bpe_str *tokens; /* [p.n]: borrowed from the JSON tree */
  uint8_t *types;      /* [p.n] */
  lmn_bpe_str *merges; /* [2 * p.n_merges] */
} hf_tok;

/* "PATH: key 'KEY': cause"; returns -1. */
static int bad(const hf_tok *h, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(const hf_tok *h, const char *key, const char *fmt, ...) {
  char cause[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cause, sizeof cause, fmt, ap);
  va_end(ap);
  return lmn_errf(h->err, "%s: key '%s': %s", LMN_SHORT(h->path), key, cause);
}

/* A string from the file, shortened and with control characters as '?', for messages. */
static const char *shown(char *buf, size_t cap, const char *s) {
  size_t n = 0, len = strlen(s), max = cap - 4;
  for (size_t i = 0; i < len && n < max; i++) buf[n++] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
  if (len > max) memcpy(buf + n, "...", 3), n += 3;
  buf[n] = 0;
  return buf;
}
#define SHOWN(s) shown((char[120]){0}, 120, (s))

static const char *const kind_names[] = {"null",     "a boolean", "a number",
                                         "a string", "an object", "an array"};

/* Member key of obj, which must be of kind want (or absent when optional); *out NULL when absent. */
static int member(const hf_tok *h, const lmn_json_value *obj, const char *name, const char *key,
                  lmn_json_kind want, int optional, const lmn_json_value **out) {
  *out = lmn_json_member(obj, key);
  if (*out && (*out)->kind == LMN_JSON_NULL && optional) *out = NULL;
  if (!*out) return optional ? 0 : bad(h, name, "missing");
  if ((*out)->kind != want)
    return bad(h, name, "%s is expected, not %s", kind_names[want], kind_names[(*out)->kind]);
  return 0;
}

/* A token id: an integer in [0, LMN_BPE_MAX_VOCAB). */
static int token_id_value(const hf_tok *h, const lmn_json_value *v, const char *key, int32_t *id) {
  if (v->kind != LMN_JSON_NUMBER || !v->is_int || v->num < 0 || v->num >= LMN_BPE_MAX_VOCAB)
    return bad(h, key, "a token id (an integer from 0 to %d) is expected", LMN_BPE_MAX_VOCAB - 1);
  *id = (int32_t)v->num;
  return 0;
}

/* ---------------------------------------------------------------- vocabulary and added tokens */

/* The largest id of model.vocab and added_tokens, plus one: the vocabulary size. */
static int count_tokens(hf_tok *h, const lmn_json_value *vocab, const lmn_json_value *added) {
  int32_t n = 0, id = 0;
  char key[300];
  for (size_t i = 0; i < vocab->n; i++) {
    snprintf(key, sizeof key, "model.vocab.%s", SHOWN(vocab->items[i].key));
    if (token_id_value(h, &vocab->items[i], key, &id) != 0) return -1;
    if (id >= n) n = id + 1;
  }
  for (size_t i = 0; added && i < added->n; i++) {
    const lmn_json_value *v;
    snprintf(key, sizeof key, "added_tokens[%zu]", i);
    if (added->items[i].kind != LMN_JSON_OBJECT)
      return bad(h, key, "an object is expected, not %s", kind_names[added->items[i].kind]);
    snprintf(key, sizeof key, "added_tokens[%zu].id", i);
    if (member(h, &added->items[i], key, "id", LMN_JSON_NUMBER, 0, &v) != 0 ||
        token_id_value(h, v, key, &id) != 0)
      return -1;
    if (id >= n) n = id + 1;
  }
  if (n == 0) return bad(h, "model.vocab", "no tokens");
  if ((size_t)n > vocab->n + (added ? added->n : 0)) /* before allocating for ids that cannot all be there */
    return bad(h, "model.vocab",
               "ids run to %d but model.vocab and added_tokens give only %zu tokens (every id "
               "from 0 must have one)",
               (int)n - 1, vocab->n + (added ? added->n : 0));
  h->p.n = n;
  h->tokens = calloc((size_t)n, sizeof *h->tokens);
  h->types = malloc((size_t)n);
  if (!h->tokens || !h->types) return bad(h, "model.vocab", "out of memory for %d tokens", (int)n);
  memset(h->types, LMN_TOKTYPE_NORMAL, (size_t)n);
  return 0;
}

/* Token id gets text s; the same id with another text is an error. */
static int set_token(hf_tok *h, const char *key, int32_t id, const char *s) {
  lmn_bpe_str *t = &h->tokens[id];
  size_t len = strlen(s);
  if (t->s && (t->len != len || memcmp(t->s, s, len) != 0))
    return bad(h, key, "id %d is '%s' here but '%s' elsewhere", (int)id, SHOWN(s), SHOWN(t->s));
  *t = (lmn_bpe_str){s, len};
  return 0;
}

static int read_vocab(hf_tok *h, const lmn_json_value *vocab) {
  for (size_t i = 0; i < vocab->n; i++)
    if (set_token(h, "model.vocab", (int32_t)vocab->items[i].num, vocab->items[i].key) != 0) return -1;
  return 0;
}

/* added_tokens: special ones are CONTROL tokens, the others USER_DEFINED (as llama.cpp's converter does);
 * both are matched verbatim in the text. */
static int read_added(hf_tok *h, const lmn_json_value *added) {
  char key[80];
  for (size_t i = 0; added && i < added->n; i++) {
    const lmn_json_value *o = &added->items[i], *content, *special;
    snprintf(key, sizeof key, "added_tokens[%zu].content", i);
    if (member(h, o, key, "content", LMN_JSON_STRING, 0, &content) != 0) return -1;
    if (!content->str[0]) return bad(h, key, "an empty token");
    snprintf(key, sizeof key, "added_tokens[%zu].special", i);
    if (member(h, o, key, "special", LMN_JSON_BOOL, 1, &special) != 0) return -1;
    int32_t id = (int32_t)lmn_json_member(o, "id")->num;
    snprintf(key, sizeof key, "added_tokens[%zu]", i);
    if (set_token(h, key, id, content->str) != 0) return -1;
    h->types[id] = special && special->boolean ? LMN_TOKTYPE_CONTROL : LMN_TOKTYPE_USER_DEFINED;
  }
  return 0;
}

/* Every id from 0 to n - 1 names a token. */
static int check_no_gaps(const hf_tok *h) {
  for (int32_t i = 0; i < h->p.n; i++)
    if (!h->tokens[i].s)
      return bad(h, "model.vocab",
                 "no token has id %d (model.vocab and added_tokens must give every id from 0 "
                 "to %d)",
                 (int)i, (int)h->p.n - 1);
  return 0;
}

/* ---------------------------------------------------------------- merges */

/* One merge: "left right" (split at the first space after the first byte, as llama.cpp does) or
 * ["left", "right"]. */
static int read_merge(hf_tok *h, const lmn_json_value *m, size_t i) {
  char key[80];
  snprintf(key, sizeof key, "model.merges[%zu]", i);
  lmn_bpe_str *out = &h->merges[2 * i];
  if (m->kind == LMN_JSON_STRING) {
    size_t len = strlen(m->str);
    const char *sp = len > 1 ? memchr(m->str + 1, ' ', len - 1) : NULL;
    if (!sp || sp[1] == '\0')
      return bad(h, key, "'%s' is not two tokens separated by a space", SHOWN(m->str));
    out[0] = (lmn_bpe_str){m->str, (size_t)(sp - m->str)};
    out[1] = (lmn_bpe_str){sp + 1, len - (size_t)(sp - m->str) - 1};
    return 0;
  }
  if (m->kind != LMN_JSON_ARRAY || m->n != 2 || m->items[0].kind != LMN_JSON_STRING ||
      m->items[1].kind != LMN_JSON_STRING)
    return bad(h, key, "a string \"left right\" or a pair [\"left\", \"right\"] of strings is expected");
  for (int k = 0; k < 2; k++) {
    if (!m->items[k].str[0]) return bad(h, key, "an empty token");
    out[k] = (lmn_bpe_str){m->items[k].str, strlen(m->items[k].str)};
  }
  return 0;
}

static int read_merges(hf_tok *h, const lmn_json_value *merges) {
  if (merges->n > LMN_BPE_MAX_MERGES) return bad(h, "model.merges", "%zu merges is too many", merges->n);
  h->merges = malloc((2 * merges->n + 1) * sizeof *h->merges);
  if (!h->merges) return bad(h, "model.merges", "out of memory");
  for (size_t i = 0; i < merges->n; i++)
    if (read_merge(h, &merges->items[i], i) != 0) return -1;
  h->p.n_merges = merges->n;
  return 0;
}

/* ---------------------------------------------------------------- the model */

/* Options of model that would change what BPE computes: byte fallback, subword prefixes and suffixes,
 * dropout. */
static int check_model_options(const hf_tok *h, const lmn_json_value *model) {
  static const char *const strs[][2] = {{"continuing_subword_prefix", "model.continuing_subword_prefix"},
                                        {"end_of_word_suffix", "model.end_of_word_suffix"}};
  const lmn_json_value *v;
  if (member(h, model, "model.byte_fallback", "byte_fallback", LMN_JSON_BOOL, 1, &v) != 0) return -1;
  if (v && v->boolean)
    return bad(h, "model.byte_fallback", "true is not supported (byte-level BPE needs none)");
  for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
    if (member(h, model, strs[i][1], strs[i][0], LMN_JSON_STRING, 1, &v) != 0) return -1;
    if (v && v->str[0]) return bad(h, strs[i][1], "'%s' is not supported (only an empty one)", SHOWN(v->str));
  }
  if (member(h, model, "model.dropout", "dropout", LMN_JSON_NUMBER, 1, &v) != 0) return -1;
  if (v && v->num != 0) return bad(h, "model.dropout", "%g is not supported (only none)", v->num);
  return 0;
}

/* The id of the token whose text is s, or -1. */
static int32_t find_token(const hf_tok *h, const char *s) {
  size_t len = strlen(s);
  for (int32_t i = h->p.n - 1; i >= 0; i--)
    if (h->tokens[i].len == len && memcmp(h->tokens[i].s, s, len) == 0) return i;
  return -1;
}

static int read_model(hf_tok *h, const lmn_json *j) {
  const lmn_json_value *model, *type, *vocab, *merges, *added, *v;
  if (member(h, lmn_json_root(j), "model", "model", LMN_JSON_OBJECT, 0, &model) != 0 ||
      member(h, model, "model.type", "type", LMN_JSON_STRING, 0, &type) != 0)
    return -1;
  if (strcmp(type->str, "BPE") != 0)
    return bad(h, "model.type", "'%s' is not supported (only 'BPE', byte-level)", SHOWN(type->str));
  if (check_model_options(h, model) != 0 ||
      member(h, model, "model.vocab", "vocab", LMN_JSON_OBJECT, 0, &vocab) != 0 ||
      member(h, model, "model.merges", "merges", LMN_JSON_ARRAY, 0, &merges) != 0 ||
      member(h, lmn_json_root(j), "added_tokens", "added_tokens", LMN_JSON_ARRAY, 1, &added) != 0 ||
      count_tokens(h, vocab, added) != 0 || read_vocab(h, vocab) != 0 || read_added(h, added) != 0 ||
      check_no_gaps(h) != 0 || read_merges(h, merges) != 0)
    return -1;
  if (member(h, model, "model.ignore_merges", "ignore_merges", LMN_JSON_BOOL, 1, &v) != 0) return -1;
  h->p.ignore_merges = v ? v->boolean : lmn_bpe_pre_ignore_merges(h->p.pre);
  if (member(h, model, "model.unk_token", "unk_token", LMN_JSON_STRING, 1, &v) != 0) return -1;
  if (v && (h->p.unk = find_token(h, v->str)) < 0)
    return bad(h, "model.unk_token", "'%s' is not a token", SHOWN(v->str));
  return 0;
}

/* ---------------------------------------------------------------- normalizer and pre-tokenizer */

/* No normalizer, or NFC, which llama.cpp does not apply either (text in NFC, as most is, is unchanged). */
static int check_normalizer(const hf_tok *h, const lmn_json *j) {
  const lmn_json_value *n, *type;
  if (member(h, lmn_json_root(j), "normalizer", "normalizer", LMN_JSON_OBJECT, 1, &n) != 0) return -1;
  if (!n) return 0;
  if (member(h, n, "normalizer.type", "type", LMN_JSON_STRING, 0, &type) != 0) return -1;
  if (strcmp(type->str, "NFC") != 0)
    return bad(h, "normalizer.type", "'%s' is not supported (none, or NFC)", SHOWN(type->str));
  return 0;
}

/* The Split regexes whose scanners tokenizer_bpe.c has (llama.cpp's unicode_regex_split_custom_*). */
static const struct {
  const char *regex;
  lmn_bpe_pre pre;
} known_regexes[] = {
    {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", LMN_PRE_GPT2},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     LMN_PRE_LLAMA3},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     LMN_PRE_QWEN2},
};
#define SMOLLM_DIGITS "\\p{N}" /* SmolLM's first Split (each number code point alone), before GPT-2's */

/* A pre-tokenizer of type want at key (an object with "type"): 0 when it is that type, 1 when another. */
static int pre_is(const hf_tok *h, const lmn_json_value *pt, const char *key, const char *want) {
  char k[120];
  const lmn_json_value *type;
  snprintf(k, sizeof k, "%s.type", key);
  if (pt->kind != LMN_JSON_OBJECT) return bad(h, key, "an object is expected, not %s", kind_names[pt->kind]);
  if (member(h, pt, k, "type", LMN_JSON_STRING, 0, &type) != 0) return -1;
  return strcmp(type->str, want) == 0 ? 0 : 1;
}

/* ByteLevel at key: no prefix space; *use_regex receives use_regex (default true). */
static int byte_level(const hf_tok *h, const lmn_json_value *pt, const char *key, int *use_regex) {
  char k[120];
  const lmn_json_value *v;
  int r = pre_is(h, pt, key, "ByteLevel");
  if (r != 0) return r < 0 ? -1 : bad(h, key, "ByteLevel is expected last (byte-level BPE)");
  snprintf(k, sizeof k, "%s.add_prefix_space", key);
  if (member(h, pt, k, "add_prefix_space", LMN_JSON_BOOL, 1, &v) != 0) return -1;
  if (v && v->boolean) return bad(h, k, "true is not supported");
  snprintf(k, sizeof k, "%s.use_regex", key);
  if (member(h, pt, k, "use_regex", LMN_JSON_BOOL, 1, &v) != 0) return -1;
  *use_regex = v ? v->boolean : 1;
  return 0;
}

/* The regex of a Split (Regex pattern, behavior Isolated, not inverted) at key into *re. */
static int split_regex(const hf_tok *h, const lmn_json_value *pt, const char *key, const char **re) {
  char k[120];
  const lmn_json_value *pat, *rx, *v;
  snprintf(k, sizeof k, "%s.pattern", key);
  if (member(h, pt, k, "pattern", LMN_JSON_OBJECT, 0, &pat) != 0) return -1;
  snprintf(k, sizeof k, "%s.pattern.Regex", key);
  if (member(h, pat, k, "Regex", LMN_JSON_STRING, 0, &rx) != 0) return -1;
  snprintf(k, sizeof k, "%s.behavior", key);
  if (member(h, pt, k, "behavior", LMN_JSON_STRING, 0, &v) != 0) return -1;
  if (strcmp(v->str, "Isolated") != 0)
    return bad(h, k, "'%s' is not supported (only Isolated)", SHOWN(v->str));
  snprintf(k, sizeof k, "%s.invert", key);
  if (member(h, pt, k, "invert", LMN_JSON_BOOL, 1, &v) != 0) return -1;
  if (v && v->boolean) return bad(h, k, "true is not supported");
  *re = rx->str;
  return 0;
}

/* The first step of a Sequence before ByteLevel: Digits (individual) or Split on a known regex. */
static int first_step(hf_tok *h, const lmn_json_value *pt, int use_regex) {
  const char *key = "pre_tokenizer.pretokenizers[0]", *re = "";
  const lmn_json_value *v;
  int r = pre_is(h, pt, key, "Digits");
  if (r < 0) return -1;
  if (r == 0) {
    if (member(h, pt, "pre_tokenizer.pretokenizers[0].individual_digits", "individual_digits", LMN_JSON_BOOL,
               1, &v) != 0)
      return -1;
    if (!v || !v->boolean || !use_regex)
      return bad(h, key,
                 "Digits is supported with individual_digits true, before a ByteLevel with use_regex");
    return h->p.pre = LMN_PRE_SMOLLM, 0;
  }
  if ((r = pre_is(h, pt, key, "Split")) != 0)
    return r < 0 ? -1 : bad(h, key, "Split or Digits is expected before ByteLevel");
  if (split_regex(h, pt, key, &re) != 0) return -1;
  if (use_regex && strcmp(re, SMOLLM_DIGITS) == 0) return h->p.pre = LMN_PRE_SMOLLM, 0;
  for (size_t i = 0; !use_regex && i < sizeof known_regexes / sizeof *known_regexes; i++)
    if (strcmp(re, known_regexes[i].regex) == 0) return h->p.pre = known_regexes[i].pre, 0;
  return bad(
      h, "pre_tokenizer.pretokenizers[0].pattern.Regex",
      "the pattern \"%s\"%s is not one of the supported pre-tokenizers (GPT-2, SmolLM, Llama 3, Qwen2)",
      SHOWN(re), use_regex ? " followed by a ByteLevel with use_regex" : "");
}

static int read_pre_tokenizer(hf_tok *h, const lmn_json *j) {
  const lmn_json_value *pt, *seq;
  int use_regex;
  if (member(h, lmn_json_root(j), "pre_tokenizer", "pre_tokenizer", LMN_JSON_OBJECT, 0, &pt) != 0) return -1;
  int r = pre_is(h, pt, "pre_tokenizer", "Sequence");
  if (r < 0) return -1;
  if (r == 1) { /* ByteLevel alone: GPT-2's regex */
    if (byte_level(h, pt, "pre_tokenizer", &use_regex) != 0) return -1;
    if (!use_regex) return bad(h, "pre_tokenizer.use_regex", "false leaves the text unsplit: not supported");
    return h->p.pre = LMN_PRE_GPT2, 0;
  }
  if (member(h, pt, "pre_tokenizer.pretokenizers", "pretokenizers", LMN_JSON_ARRAY, 0, &seq) != 0) return -1;
  if (seq->n != 2)
    return bad(h, "pre_tokenizer.pretokenizers", "%zu steps: a Split or Digits, then ByteLevel, is expected",
               seq->n);
  if (byte_level(h, &seq->items[1], "pre_tokenizer.pretokenizers[1]", &use_regex) != 0) return -1;
  return first_step(h, &seq->items[0], use_regex);
}

/* ---------------------------------------------------------------- BOS and EOS */

/* A token named in tokenizer_config.json (a string, or an object with "content"); -2 when absent. */
static int config_token(hf_tok *h, const lmn_json *cfg, const char *key, int32_t *id) {
  const lmn_json_value *v = lmn_json_get(cfg, key);
  *id = -2;
  if (!v || v->kind == LMN_JSON_NULL) return 0;
  if (v->kind == LMN_JSON_OBJECT) v = lmn_json_member(v, "content");
  if (!v || v->kind != LMN_JSON_STRING)
    return bad(h, key, "a token (a string, or an object with a string \"content\") is expected");
  if ((*id = find_token(h, v->str)) < 0) return bad(h, key, "'%s' is not a token", SHOWN(v->str));
  return 0;
}

/* An id in config.json (an integer, or a list whose first is taken); -2 when absent. */
static int config_id(hf_tok *h, const lmn_json *cfg, const char *key, int32_t *id) {
  const lmn_json_value *v = lmn_json_get(cfg, key);
  *id = -2;
  if (!v || v->kind == LMN_JSON_NULL || (v->kind == LMN_JSON_ARRAY && v->n == 0)) return 0;
  if (v->kind == LMN_JSON_ARRAY) v = &v->items[0];
  if (token_id_value(h, v, key, id) != 0) return -1;
  if (*id >= h->p.n)
    return bad(h, key, "token id %d is outside the vocabulary of %d tokens", (int)*id, (int)h->p.n);
  return 0;
}

/* DIR/NAME read when it exists; *j NULL when it does not. */
static int optional_json(hf_tok *h, const char *dir, const char *name, char *path, size_t cap, lmn_json **j) {
  *j = NULL;
  snprintf(path, cap, "%s/%s", dir, name);
  h->path = path;
  if (access(path, F_OK) != 0) return 0;
  return lmn_json_read_file(path, j, h->err);
}

/* BOS and EOS: tokenizer_config.json's bos_token / eos_token win (as llama.cpp's converter has it), then
 * config.json's bos_token_id / eos_token_id; add_bos_token / add_eos_token from tokenizer_config.json. */
static int read_special(hf_tok *h, const char *dir) {
  char tc_path[4200], c_path[4200];
  lmn_json *tc, *c;
  int32_t *ids[2] = {&h->p.bos, &h->p.eos}, got;
  static const char *const tok_keys[2] = {"bos_token", "eos_token"},
                           *const id_keys[2] = {"bos_token_id", "eos_token_id"},
                           *const add_keys[2] = {"add_bos_token", "add_eos_token"};
  if (optional_json(h, dir, "tokenizer_config.json", tc_path, sizeof tc_path, &tc) != 0) return -1;
  int rc = 0;
  for (int i = 0; i < 2 && rc == 0 && tc; i++) {
    const lmn_json_value *v = lmn_json_get(tc, add_keys[i]);
    if ((rc = config_token(h, tc, tok_keys[i], &got)) == 0 && got >= 0) *ids[i] = got;
    if (rc == 0 && v && v->kind != LMN_JSON_NULL)
      rc = v->kind == LMN_JSON_BOOL ? (*(i ? &h->p.add_eos : &h->p.add_bos) = v->boolean, 0)
                                    : bad(h, add_keys[i], "true or false is expected");
  }
  lmn_json_free(tc);
  if (rc != 0 || optional_json(h, dir, "config.json", c_path, sizeof c_path, &c) != 0) return -1;
  for (int i = 0; i < 2 && rc == 0 && c; i++)
    if ((rc = config_id(h, c, id_keys[i], &got)) == 0 && got >= 0 && *ids[i] < 0) *ids[i] = got;
  lmn_json_free(c);
  h->path = h->p.name;
  return rc;
}

/* ---------------------------------------------------------------- loading */

static int read_tokenizer_json(hf_tok *h, const lmn_json *j) {
  if (read_pre_tokenizer(h, j) != 0 || check_normalizer(h, j) != 0) return -1;
  h->p.add_bos = lmn_bpe_pre_add_bos(h->p.pre);
  if (read_model(h, j) != 0) return -1;
  h->p.tokens = h->tokens;
  h->p.types = h->types;
  h->p.merges = h->merges;
  return 0;
}

/* Builds t from a tokenizer.json document named path (read from a file, or given), then, with dir set, BOS
 * and EOS from that directory's configuration files. */
static int load_hf(lmn_tokenizer *t, const char *path, const char *text, size_t n, const char *dir,
                   lmn_err *err) {
  hf_tok h = {
      .path = path, .err = err, .p = {.name = path, .bos = -1, .eos = -1, .unk = -1, .pad = -1, .eot = -1}};
  lmn_json *j = NULL;
  int rc = (text ? lmn_json_parse(text, n, path, &j, err) : lmn_json_read_file(path, &j, err)) != 0 ||
                   read_tokenizer_json(&h, j) != 0 || (dir && read_special(&h, dir) != 0)
               ? -1
               : lmn_tokenizer_from_parts(t, &h.p, err);
  lmn_json_free(j);
  free(h.tokens);
  free(h.types);
  free(h.merges);
  return rc;
}

int lmn_tokenizer_load_hf(lmn_tokenizer *t, const char *dir, lmn_err *err) {
  if (t) memset(t, 0, sizeof *t);
  if (!t || !dir) return lmn_errf(err, "tokenizer: no tokenizer or directory given");
  char path[4200];
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  return load_hf(t, path, NULL, 0, dir, err);
}

int lmn_tokenizer_parse_hf(lmn_tokenizer *t, const char *text, size_t n, const char *name, lmn_err *err) {
  if (t) memset(t, 0, sizeof *t);
  if (!t || (!text && n) || !name) return lmn_errf(err, "tokenizer: no tokenizer, text or name given");
  return load_hf(t, name, text ? text : "", n, NULL, err);
}

int lmn_tokenizer_load(lmn_tokenizer *t, const char *path, lmn_err *err) {
  struct stat sb;
  if (path && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return lmn_tokenizer_load_hf(t, path, err);
  return lmn_tokenizer_load_gguf(t, path, err);
}
