/* test_tokenizer_hf.c: the Hugging Face tokenizer.json reader (runtime/tokenizer_hf.c) on a small vocabulary
 * written here (no model file needed): what it builds (tokens, merges in both forms, added tokens, BOS/EOS
 * from tokenizer_config.json and config.json, the pre-tokenizer recognised by structure), and every
 * malformed field refused with the file and the JSON key named, never a crash (also under ASan on random
 * mutations of the document). The real vocabulary is checked in test_tokenizer.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat.h"
#include "harness.h"
#include "tokenizer.h"
#include "tokenizer_bpe.h"

/* "Ġ" is the space of bytes_to_unicode. Ids: a b ab Ġ <s> Ġa; merges a+b, Ġ+a. */
#define VOCAB "{\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3, \"<s>\": 4, \"\\u0120a\": 5}"
#define PRE_BL "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}"
#define BASE                                                                                          \
  "{\"added_tokens\": [{\"id\": 4, \"content\": \"<s>\", \"special\": true}], \"normalizer\": null, " \
  "\"pre_tokenizer\": " PRE_BL                                                                        \
  ", \"model\": {\"type\": \"BPE\", \"byte_fallback\": false, \"vocab\": " VOCAB                      \
  ", \"merges\": [\"a b\", \"\\u0120 a\"]}}"

static char dir[64];

static void write_file(const char *name, const char *text) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (!text) {
    unlink(path);
    return;
  }
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
}

/* BASE with the first occurrence of from replaced by to (from NULL: BASE itself). */
static char *variant(const char *from, const char *to) {
  static char buf[4096];
  const char *at = from ? strstr(BASE, from) : NULL;
  CU_ASSERT_FATAL(!from || at);
  if (!at) return snprintf(buf, sizeof buf, "%s", BASE), buf;
  snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - BASE), BASE, to, at + strlen(from));
  return buf;
}

static int load(lmn_tokenizer *t, lmn_err *e) {
  return lmn_tokenizer_load(t, dir, e);
}

static void test_builds(void) {
  write_file("tokenizer.json", BASE);
  write_file("tokenizer_config.json", NULL);
  write_file("config.json", "{\"bos_token_id\": 4, \"eos_token_id\": [3, 4]}");
  lmn_tokenizer t;
  lmn_err e;
  CU_ASSERT_EQUAL_FATAL(load(&t, &e), 0);
  CU_ASSERT(t.vocab_size == 6 && t.kind == LMN_TOK_BPE && t.bos == 4 && t.eos == 3);
  int32_t ids[16];
  long n = lmn_tokenizer_encode(&t, "ab a<s>ba", 9, ids, 16); /* ab | Ġa | <s> | b | a */
  CU_ASSERT_EQUAL(n, 5);
  CU_ASSERT(n == 5 && ids[0] == 2 && ids[1] == 5 && ids[2] == 4 && ids[3] == 1 && ids[4] == 0);
  CU_ASSERT_EQUAL(lmn_tokenizer_token_type(&t, 4), LMN_TOKTYPE_CONTROL);
  lmn_bpe_info info;
  CU_ASSERT_EQUAL(lmn_tokenizer_bpe_info(&t, &info), 0);
  CU_ASSERT(strcmp(info.pre, "gpt-2") == 0 && info.n_merges == 2 && info.n_special == 1 &&
            !info.ignore_merges);
  lmn_tokenizer_free(&t);
  /* merges as pairs give the same; tokenizer_config.json wins over config.json */
  write_file("tokenizer.json", variant("[\"a b\", \"\\u0120 a\"]", "[[\"a\", \"b\"], [\"\\u0120\", \"a\"]]"));
  write_file("tokenizer_config.json",
             "{\"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"ab\", "
             "\"add_bos_token\": true}");
  CU_ASSERT_EQUAL_FATAL(load(&t, &e), 0);
  n = lmn_tokenizer_encode(&t, "ab a", 4, ids, 16);
  CU_ASSERT(n == 2 && ids[0] == 2 && ids[1] == 5);
  lmn_tokenizer_bpe_info(&t, &info);
  CU_ASSERT(t.bos == 4 && t.eos == 2 && info.add_bos == 1);
  lmn_tokenizer_free(&t);
  /* a non-special added token is USER_DEFINED, still matched verbatim */
  write_file("tokenizer.json", variant("\"special\": true", "\"special\": false"));
  CU_ASSERT_EQUAL_FATAL(load(&t, &e), 0);
  CU_ASSERT_EQUAL(lmn_tokenizer_token_type(&t, 4), LMN_TOKTYPE_USER_DEFINED);
  lmn_tokenizer_free(&t);
}

/* The pre-tokenizers recognised by their structure. */
static void test_pre_tokenizers(void) {
  static const struct {
    const char *pre, *name;
  } cases[] = {
      {"{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": "
       "true}, " PRE_BL "]}",
       "smollm"},
      {"{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
       "\"\\\\p{N}\"}, \"behavior\": \"Isolated\", \"invert\": false}, " PRE_BL "]}",
       "smollm"},
      {"{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
       "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| "
       "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}, \"behavior\": "
       "\"Isolated\"}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}",
       "llama-bpe"},
      {"{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
       "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| "
       "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}, \"behavior\": "
       "\"Isolated\"}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}",
       "qwen2"},
      {"{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
       "\"'s|'t|'re|'ve|'m|'ll|'d| ?\\\\p{L}+| ?\\\\p{N}+| "
       "?[^\\\\s\\\\p{L}\\\\p{N}]+|\\\\s+(?!\\\\S)|\\\\s+\"}, "
       "\"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}",
       "gpt-2"},
  };
  write_file("tokenizer_config.json", NULL);
  write_file("config.json", NULL);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    write_file("tokenizer.json", variant(PRE_BL, cases[i].pre));
    lmn_tokenizer t;
    lmn_err e;
    lmn_bpe_info info;
    int rc = load(&t, &e);
    if (rc != 0) printf("\n    case %zu: %s\n", i, e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    lmn_tokenizer_bpe_info(&t, &info);
    CU_ASSERT_STRING_EQUAL(info.pre, cases[i].name);
    CU_ASSERT_EQUAL(info.ignore_merges, strcmp(cases[i].name, "llama-bpe") == 0);
    CU_ASSERT(t.bos == -1 && t.eos == -1);
    lmn_tokenizer_free(&t);
  }
}

typedef struct bad_case {
  const char *file, *from, *to; /* file written with the variant (from NULL: the text `to` as it is) */
  const char *want;             /* in the message, after "DIR/" */
} bad_case;

static const bad_case bad_cases[] = {
    {"tokenizer.json", "\"type\": \"BPE\"", "\"type\": \"WordPiece\"",
     "tokenizer.json: key 'model.type': 'WordPiece' is not supported"},
    {"tokenizer.json", "\"type\": \"BPE\", ", "", "tokenizer.json: key 'model.type': missing"},
    {"tokenizer.json", "\"model\":", "\"modle\":", "tokenizer.json: key 'model': missing"},
    {"tokenizer.json", "\"vocab\": {", "\"vocab\": [1], \"x\": {",
     "key 'model.vocab': an object is expected, not an array"},
    {"tokenizer.json", "\"a\": 0", "\"a\": -1", "key 'model.vocab.a': a token id"},
    {"tokenizer.json", "\"a\": 0", "\"a\": 0.5", "key 'model.vocab.a': a token id"},
    {"tokenizer.json", "\"a\": 0", "\"a\": \"0\"", "key 'model.vocab.a': a token id"},
    {"tokenizer.json", "\"ab\": 2", "\"ab\": 7",
     "key 'model.vocab': ids run to 7 but model.vocab and added_tokens give only 7"},
    {"tokenizer.json", "\"ab\": 2", "\"ab\": 16777215", "key 'model.vocab': ids run to 16777215"},
    {"tokenizer.json", "\"ab\": 2", "\"ab\": 16777216", "key 'model.vocab.ab': a token id"},
    {"tokenizer.json", "\"ab\": 2", "\"ab\": 6", "key 'model.vocab': no token has id 2"},
    {"tokenizer.json", "\"b\": 1", "\"b\": 0", "key 'model.vocab': id 0 is 'b' here but 'a' elsewhere"},
    {"tokenizer.json", "\"vocab\": {", "\"vocab\": {\"a\": 9, ", "duplicate key 'a'"},
    {"tokenizer.json", "\"merges\": [", "\"merges\": 3, \"m\": [",
     "key 'model.merges': an array is expected, not a number"},
    {"tokenizer.json", "\"a b\"", "\"ab\"",
     "key 'model.merges[0]': 'ab' is not two tokens separated by a space"},
    {"tokenizer.json", "\"a b\"", "\"a \"", "key 'model.merges[0]': 'a ' is not two tokens"},
    {"tokenizer.json", "\"a b\"", "[\"a\"]", "key 'model.merges[0]': a string \"left right\" or a pair"},
    {"tokenizer.json", "\"a b\"", "[\"a\", 1]", "key 'model.merges[0]': a string \"left right\" or a pair"},
    {"tokenizer.json", "\"a b\"", "[\"a\", \"\"]", "key 'model.merges[0]': an empty token"},
    {"tokenizer.json", "\"\\u0120 a\"", "null", "key 'model.merges[1]'"},
    {"tokenizer.json", "[{\"id\": 4,", "[1, {\"id\": 4,",
     "key 'added_tokens[0]': an object is expected, not a number"},
    {"tokenizer.json", "\"id\": 4", "\"id\": 3", "key 'added_tokens[0]': id 3 is '<s>' here but"},
    {"tokenizer.json", "\"id\": 4", "\"id\": 1e3", "key 'added_tokens[0].id': a token id"},
    {"tokenizer.json", "\"id\": 4,", "", "key 'added_tokens[0].id': missing"},
    {"tokenizer.json", "\"content\": \"<s>\"", "\"content\": 4",
     "key 'added_tokens[0].content': a string is expected"},
    {"tokenizer.json", "\"content\": \"<s>\"", "\"content\": \"\"",
     "key 'added_tokens[0].content': an empty token"},
    {"tokenizer.json", "\"special\": true", "\"special\": 1",
     "key 'added_tokens[0].special': a boolean is expected"},
    {"tokenizer.json", "\"added_tokens\": [", "\"added_tokens\": {}, \"x\": [",
     "key 'added_tokens': an array is expected"},
    {"tokenizer.json", "\"pre_tokenizer\": " PRE_BL ", ", "", "key 'pre_tokenizer': missing"},
    {"tokenizer.json", "\"type\": \"ByteLevel\"", "\"type\": \"Whitespace\"",
     "key 'pre_tokenizer': ByteLevel is expected"},
    {"tokenizer.json", "\"type\": \"ByteLevel\"", "\"type\": 3",
     "key 'pre_tokenizer.type': a string is expected"},
    {"tokenizer.json", "\"add_prefix_space\": false", "\"add_prefix_space\": true",
     "key 'pre_tokenizer.add_prefix_space': true is not supported"},
    {"tokenizer.json", "\"use_regex\": true", "\"use_regex\": false", "key 'pre_tokenizer.use_regex'"},
    {"tokenizer.json", PRE_BL,
     "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
     "\"\\\\w+\"}, "
     "\"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}",
     "key 'pre_tokenizer.pretokenizers[0].pattern.Regex': the pattern \"\\w+\" is not one of the supported"},
    {"tokenizer.json", PRE_BL,
     "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"String\": \" \"}, "
     "\"behavior\": \"Isolated\"}, " PRE_BL "]}",
     "key 'pre_tokenizer.pretokenizers[0].pattern.Regex': missing"},
    {"tokenizer.json", PRE_BL,
     "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
     "\"\\\\p{N}\"}, "
     "\"behavior\": \"Removed\"}, " PRE_BL "]}",
     "key 'pre_tokenizer.pretokenizers[0].behavior': 'Removed' is not supported"},
    {"tokenizer.json", PRE_BL,
     "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": "
     "false}, " PRE_BL "]}",
     "key 'pre_tokenizer.pretokenizers[0]': Digits is supported with individual_digits true"},
    {"tokenizer.json", PRE_BL, "{\"type\": \"Sequence\", \"pretokenizers\": [" PRE_BL "]}",
     "key 'pre_tokenizer.pretokenizers': 1 steps"},
    {"tokenizer.json", PRE_BL, "{\"type\": \"Sequence\", \"pretokenizers\": [" PRE_BL ", " PRE_BL "]}",
     "key 'pre_tokenizer.pretokenizers[0]': Split or Digits is expected before ByteLevel"},
    {"tokenizer.json", PRE_BL, "{\"type\": \"Sequence\", \"pretokenizers\": [7, " PRE_BL "]}",
     "key 'pre_tokenizer.pretokenizers[0]': an object is expected, not a number"},
    {"tokenizer.json", "\"normalizer\": null", "\"normalizer\": {\"type\": \"Lowercase\"}",
     "key 'normalizer.type': 'Lowercase' is not supported"},
    {"tokenizer.json", "\"normalizer\": null", "\"normalizer\": 1",
     "key 'normalizer': an object is expected"},
    {"tokenizer.json", "\"byte_fallback\": false", "\"byte_fallback\": true",
     "key 'model.byte_fallback': true"},
    {"tokenizer.json", "\"byte_fallback\": false", "\"continuing_subword_prefix\": \"##\"",
     "key 'model.continuing_subword_prefix': '##' is not supported"},
    {"tokenizer.json", "\"byte_fallback\": false", "\"dropout\": 0.1", "key 'model.dropout': 0.1"},
    {"tokenizer.json", "\"byte_fallback\": false", "\"unk_token\": \"<unk>\"",
     "key 'model.unk_token': '<unk>' is not a token"},
    {"tokenizer.json", "\"byte_fallback\": false", "\"ignore_merges\": 1",
     "key 'model.ignore_merges': a boolean"},
    {"tokenizer.json", "\"vocab\": ", "\"vocab\" ", "tokenizer.json: JSON at offset"},
    {"tokenizer.json", NULL, "[]", "tokenizer.json: JSON at offset 0: expected '{'"},
    {"tokenizer_config.json", NULL, "{\"bos_token\": \"<x>\"}",
     "tokenizer_config.json: key 'bos_token': '<x>' is not a token"},
    {"tokenizer_config.json", NULL, "{\"eos_token\": 4}", "tokenizer_config.json: key 'eos_token': a token"},
    {"tokenizer_config.json", NULL, "{\"eos_token\": {\"id\": 4}}",
     "tokenizer_config.json: key 'eos_token': a token"},
    {"tokenizer_config.json", NULL, "{\"add_bos_token\": \"yes\"}",
     "tokenizer_config.json: key 'add_bos_token'"},
    {"tokenizer_config.json", NULL, "{", "tokenizer_config.json: JSON at offset"},
    {"config.json", NULL, "{\"eos_token_id\": 99}",
     "config.json: key 'eos_token_id': token id 99 is outside"},
    {"config.json", NULL, "{\"bos_token_id\": -1}", "config.json: key 'bos_token_id': a token id"},
    {"config.json", NULL, "{\"bos_token_id\": [\"x\"]}", "config.json: key 'bos_token_id': a token id"},
};

static void test_refused(void) {
  char want[600];
  for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
    const bad_case *c = &bad_cases[i];
    int main_file = strcmp(c->file, "tokenizer.json") == 0;
    write_file("tokenizer.json", main_file ? (c->from ? variant(c->from, c->to) : c->to) : BASE);
    write_file("tokenizer_config.json", strcmp(c->file, "tokenizer_config.json") == 0 ? c->to : NULL);
    write_file("config.json", strcmp(c->file, "config.json") == 0 ? c->to : NULL);
    lmn_tokenizer t;
    lmn_err e;
    snprintf(want, sizeof want, "%s/%s", dir, c->want);
    int rc = load(&t, &e);
    int named = rc != 0 && (strstr(e.msg, want) || (strstr(c->want, "JSON") == NULL &&
                                                    strstr(e.msg, c->want) && strstr(e.msg, dir)));
    if (!named) printf("\n    case %zu: want '%s', got %s\n", i, want, rc ? e.msg : "success");
    CU_ASSERT(named);
    CU_ASSERT_PTR_NULL(t.self);
  }
  write_file("tokenizer.json", NULL);
  lmn_tokenizer t;
  lmn_err e;
  CU_ASSERT_NOT_EQUAL(load(&t, &e), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "tokenizer.json"));
}

/* Random byte changes of the document: loaded or refused with a message, never a crash. */
static void test_mutations(void) {
  write_file("tokenizer_config.json", NULL);
  write_file("config.json", NULL);
  uint64_t s = 12345;
  size_t n = strlen(BASE);
  char *doc = malloc(n + 1);
  static const char alphabet[] = "{}[]\",:0123456789-. abtrue\\nul";
  int loaded = 0;
  for (int k = 0; k < 1500; k++) {
    memcpy(doc, BASE, n + 1);
    for (int m = 0; m < 3; m++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      doc[(s >> 33) % n] = alphabet[(s >> 20) % (sizeof alphabet - 1)];
    }
    write_file("tokenizer.json", doc);
    lmn_tokenizer t;
    lmn_err e = {{0}};
    if (load(&t, &e) == 0) {
      loaded++;
      int32_t ids[64];
      CU_ASSERT(lmn_tokenizer_encode(&t, "ab ab<s> a", 10, ids, 64) >= 0);
      lmn_tokenizer_free(&t);
    } else {
      CU_ASSERT(strstr(e.msg, dir) != NULL);
    }
  }
  printf("\n    1500 mutations: %d loaded, the others refused ", loaded);
  free(doc);
}

static int setup(void) {
  snprintf(dir, sizeof dir, "/tmp/lmn_tokhf_XXXXXX");
  return mkdtemp(dir) ? 0 : 1;
}

/* tokenizer_config.json's chat_template: a string, or a list whose "default" wins; absent: refused. */
static void test_chat_template(void) {
  char path[128];
  snprintf(path, sizeof path, "%s", dir);
  lmn_chat_template t;
  lmn_err e = {{0}};
  write_file(
      "tokenizer_config.json",
      "{\"chat_template\": \"{% for m in messages %}<|im_start|>{{ m.role }}\\n{{ m.content }}<|im_end|>\\n"
      "{% endfor %}\"}");
  CU_ASSERT_EQUAL(lmn_chat_template_hf(path, &t, &e), 0);
  CU_ASSERT(t.style == LMN_CHAT_CHATML && !t.has_default_system);
  write_file("tokenizer_config.json",
             "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"<|im_start|><|im_end|>\"},"
             " {\"name\": \"default\", \"template\": \"{{ bos_token }}<start_of_turn><end_of_turn>\"}]}");
  CU_ASSERT_EQUAL(lmn_chat_template_hf(path, &t, &e), 0);
  CU_ASSERT(t.style == LMN_CHAT_GEMMA && t.bos);
  write_file("tokenizer_config.json", "{\"bos_token\": \"<s>\"}");
  CU_ASSERT_EQUAL(lmn_chat_template_hf(path, &t, &e), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "tokenizer_config.json: the model has no chat template"));
  write_file("tokenizer_config.json", NULL);
  CU_ASSERT_EQUAL(lmn_chat_template_hf(path, &t, &e), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "tokenizer_config.json"));
}

static int teardown(void) {
  static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "config.json"};
  for (size_t i = 0; i < 3; i++) write_file(files[i], NULL);
  return rmdir(dir);
}

static void test_all(void) {
  CU_ASSERT_EQUAL_FATAL(setup(), 0);
  test_builds();
  test_pre_tokenizers();
  test_refused();
  test_mutations();
  test_chat_template();
  CU_ASSERT_EQUAL(teardown(), 0);
}

static CU_TestInfo tests[] = {{"tokenizer.json: builds, refuses, survives mutations", test_all},
                              CU_TEST_INFO_NULL};

LMN_TEST_MAIN("tokenizer_hf", tests)
