/* test_tokenizer.c: the byte-level BPE tokenizer (runtime/tokenizer_bpe.c) with the real SmolLM2 vocabulary:
 * exact ids against tests/fixtures/tokenizer/smollm2_ids.txt, made by llama.cpp's tokenizer (an outside
 * implementation, see tests/reference/make_tokenizer_fixture.py) for the smollm pre-tokenizer and, on the
 * same vocabulary with tokenizer.ggml.pre replaced, for gpt-2, qwen2 and llama-bpe; decode(encode(s)) == s
 * for all single bytes, random byte strings and invalid UTF-8; output capacity; the chat prompt; files
 * that must be refused with the file and key named; and the encoding speed on a large text. The same
 * fixture through Hugging Face tokenizer.json files holding the GGUF's vocabulary and merges (written by
 * tests/reference/make_tokenizer_json.py into $LMN_TOKJSON), which must also match the GGUF tokenizer. Tests
 * that need models/SmolLM2-135M-Instruct.Q4_1.gguf (`make models`) pass with a notice when it is absent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat_template.h"
#include "gguf.h"
#include "harness.h"
#include "tokenizer.h"
#include "tokenizer_bpe.h"
#include "tokenizer_ucd.h"

#define MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#define FIXTURE "tests/fixtures/tokenizer/smollm2_ids.txt"

/* ---------------------------------------------------------------- helpers */

static int model_absent(void) {
  if (access(MODEL, R_OK) == 0) return 0;
  printf("\n    NOTE: %s is absent (run `make models`): test skipped ", MODEL);
  CU_PASS("model absent: skipped");
  return 1;
}

static int load_model(lmn_tokenizer *t) {
  lmn_err e;
  int rc = lmn_tokenizer_load_gguf(t, MODEL, &e);
  if (rc != 0) printf("\n    load failed: %s\n", e.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  return rc;
}

/* xorshift64*: the tests' own random numbers (a local state, reproducible). */
static uint64_t rnd(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static int32_t *encode_all(const lmn_tokenizer *t, const char *s, size_t n, long *count) {
  long need = lmn_tokenizer_encode(t, s, n, NULL, 0);
  *count = need;
  if (need < 0) return NULL;
  int32_t *ids = malloc(((size_t)need + 1) * sizeof *ids);
  long again = lmn_tokenizer_encode(t, s, n, ids, (size_t)need);
  CU_ASSERT_EQUAL(again, need);
  return ids;
}

/* decode(encode(s)) == s less the bytes no token holds (SmolLM2 lacks 21, which encode drops, as llama.cpp
 * does); when none was dropped, encoding the decoded text gives the same ids. Returns 1 when it holds. */
static int round_trip(const lmn_tokenizer *t, const char *s, size_t n) {
  lmn_bpe_info info;
  CU_ASSERT_EQUAL_FATAL(lmn_tokenizer_bpe_info(t, &info), 0);
  char *want = malloc(n + 1), *out = malloc(n + 1);
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (!info.byte_missing[(unsigned char)s[i]]) want[m++] = s[i];
  long count;
  int32_t *ids = encode_all(t, s, n, &count);
  int ok =
      ids && lmn_tokenizer_decode(t, ids, (size_t)count, out, n + 1) == (long)m && memcmp(out, want, m) == 0;
  if (ok && m == n) {
    long count2;
    int32_t *ids2 = encode_all(t, out, n, &count2);
    ok = ids2 && count2 == count && memcmp(ids, ids2, (size_t)count * sizeof *ids) == 0;
    free(ids2);
  }
  free(ids);
  free(want);
  free(out);
  return ok;
}

static void print_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%02x", (unsigned char)s[i]);
}

/* ---------------------------------------------------------------- a copy of the vocabulary with another pre
 */

/* Writes path: the tokenizer keys of MODEL with tokenizer.ggml.pre set to pre (no tensors). */
static int write_variant(const char *path, const char *pre) {
  lmn_gguf *g;
  lmn_gguf_writer *w;
  lmn_err e;
  uint64_t nt, nm;
  if (lmn_gguf_open(MODEL, LMN_GGUF_META, &g, &e) != 0) return -1;
  lmn_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &nt, &e);
  lmn_gguf_get_arr(g, "tokenizer.ggml.merges", NULL, &nm, &e);
  char **tok = calloc(nt, sizeof *tok), **mer = calloc(nm, sizeof *mer);
  int32_t *types = calloc(nt, sizeof *types);
  for (uint64_t i = 0; i < nt; i++) {
    lmn_gguf_str s;
    int64_t v;
    lmn_gguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &s, &e);
    tok[i] = strndup(s.s, s.len);
    lmn_gguf_get_arr_int(g, "tokenizer.ggml.token_type", i, &v, &e);
    types[i] = (int32_t)v;
  }
  for (uint64_t i = 0; i < nm; i++) {
    lmn_gguf_str s;
    lmn_gguf_get_arr_str(g, "tokenizer.ggml.merges", i, &s, &e);
    mer[i] = strndup(s.s, s.len);
  }
  int rc = lmn_gguf_writer_new(&w, &e);
  rc |= lmn_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", &e);
  rc |= lmn_gguf_writer_add_str(w, "tokenizer.ggml.pre", pre, &e);
  rc |= lmn_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, nt, &e);
  rc |= lmn_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", LMN_GGUF_INT32, types, nt, &e);
  rc |= lmn_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", (const char *const *)mer, nm, &e);
  rc |= lmn_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1, &e);
  rc |= lmn_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2, &e);
  rc |= lmn_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 0, &e);
  rc |= lmn_gguf_writer_write(w, path, &e);
  lmn_gguf_writer_free(w);
  for (uint64_t i = 0; i < nt; i++) free(tok[i]);
  for (uint64_t i = 0; i < nm; i++) free(mer[i]);
  free(tok);
  free(mer);
  free(types);
  lmn_gguf_close(g);
  if (rc) printf("\n    writing %s: %s\n", path, e.msg);
  return rc ? -1 : 0;
}

/* Loads MODEL itself for "smollm", else a copy with that pre written to a temporary file. */
static int load_pre(lmn_tokenizer *t, const char *pre) {
  if (strcmp(pre, "smollm") == 0) return load_model(t);
  char path[] = "/tmp/lmn_tok_XXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  int rc = write_variant(path, pre);
  lmn_err e;
  if (rc == 0) rc = lmn_tokenizer_load_gguf(t, path, &e);
  if (rc != 0) printf("\n    %s: %s\n", path, e.msg);
  unlink(path);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  lmn_bpe_info info;
  CU_ASSERT_EQUAL(lmn_tokenizer_bpe_info(t, &info), 0);
  CU_ASSERT_STRING_EQUAL(info.pre, pre);
  return 0;
}

/* ---------------------------------------------------------------- the fixture */

static int hexval(int c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

/* One "HEX<TAB>IDS" line: 1 when the ids match. */
static int check_case(const lmn_tokenizer *t, const char *pre, char *line, int lineno) {
  char *tab = strchr(line, '\t');
  CU_ASSERT_PTR_NOT_NULL_FATAL(tab);
  size_t n = (size_t)(tab - line) / 2;
  char *text = malloc(n + 1);
  for (size_t i = 0; i < n; i++) text[i] = (char)(hexval(line[2 * i]) * 16 + hexval(line[2 * i + 1]));
  int32_t want[4096];
  size_t nw = 0;
  for (char *p = tab + 1, *q; nw < 4096; p = q) {
    long v = strtol(p, &q, 10);
    if (q == p) break;
    want[nw++] = (int32_t)v;
  }
  long count;
  int32_t *got = encode_all(t, text, n, &count);
  int ok = got && count == (long)nw && memcmp(got, want, nw * sizeof *want) == 0;
  if (!ok) {
    printf("\n    %s line %d (%s): text ", FIXTURE, lineno, pre);
    print_hex(text, n);
    printf("\n      want");
    for (size_t i = 0; i < nw; i++) printf(" %d", want[i]);
    printf("\n      got ");
    for (long i = 0; got && i < count; i++) printf(" %d", got[i]);
    printf("\n");
  }
  CU_ASSERT(round_trip(t, text, n));
  free(got);
  free(text);
  return ok;
}

/* The directory of tokenizer.json files made from MODEL by tests/reference/make_tokenizer_json.py
 * ($LMN_TOKJSON, set by `make unit`), or NULL with a notice when it is not there. */
static const char *tokjson_dir(void) {
  const char *d = getenv("LMN_TOKJSON");
  char probe[4200];
  snprintf(probe, sizeof probe, "%s/smollm/tokenizer.json", d ? d : "build/tokjson");
  if (access(probe, R_OK) == 0) return d ? d : "build/tokjson";
  printf(
      "\n    NOTE: %s is absent (make unit writes it with tests/reference/make_tokenizer_json.py): test "
      "skipped ",
      probe);
  CU_PASS("tokenizer.json absent: skipped");
  return NULL;
}

/* Loads the tokenizer.json directory made for pre (see tokjson_dir). */
static int load_hf(lmn_tokenizer *t, const char *pre) {
  char dir[4200];
  lmn_err e;
  snprintf(dir, sizeof dir, "%s/%s", tokjson_dir(), pre);
  int rc = lmn_tokenizer_load(t, dir, &e);
  if (rc != 0) printf("\n    %s: %s\n", dir, e.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  lmn_bpe_info info;
  CU_ASSERT_EQUAL(lmn_tokenizer_bpe_info(t, &info), 0);
  CU_ASSERT_STRING_EQUAL(info.pre, strcmp(pre, "smollm-pairs") == 0 ? "smollm" : pre);
  return 0;
}

/* Every case of the fixture through the tokenizers that load(pre) gives for its sections. */
static void run_fixture(int (*load)(lmn_tokenizer *, const char *)) {
  FILE *f = fopen(FIXTURE, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  lmn_tokenizer t = {0};
  char pre[64] = "smollm";
  load(&t, pre);
  static char line[1 << 16];
  int lineno = 0, cases = 0, bad = 0, sections = 1;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    line[strcspn(line, "\n")] = '\0';
    if (line[0] == '#' || line[0] == '\0') continue;
    if (strncmp(line, "@pre ", 5) == 0) {
      lmn_tokenizer_free(&t);
      snprintf(pre, sizeof pre, "%s", line + 5);
      load(&t, pre);
      sections++;
      continue;
    }
    cases++;
    bad += !check_case(&t, pre, line, lineno);
  }
  fclose(f);
  lmn_tokenizer_free(&t);
  printf("\n    %d cases in %d pre-tokenizer sections, %d mismatches ", cases, sections, bad);
  CU_ASSERT(cases >= 200);
  CU_ASSERT_EQUAL(bad, 0);
}

static void test_fixture(void) {
  if (!model_absent()) run_fixture(load_pre);
}

/* The same ids from tokenizer.json files holding MODEL's vocabulary and merges, one per section. */
static void test_fixture_hf(void) {
  if (!model_absent() && tokjson_dir()) run_fixture(load_hf);
}

/* tokenizer.json (merges as strings, and as pairs with the digits as a Split) against the GGUF itself: the
 * same tokens, types, merges in use, special tokens, BOS/EOS (from tokenizer_config.json) and ids. */
static void test_hf_same_as_gguf(void) {
  if (model_absent() || !tokjson_dir()) return;
  lmn_tokenizer g, h;
  load_model(&g);
  lmn_bpe_info gi, hi;
  lmn_tokenizer_bpe_info(&g, &gi);
  static const char *const dirs[] = {"smollm", "smollm-pairs"};
  uint64_t seed = 7;
  for (int d = 0; d < 2; d++) {
    load_hf(&h, dirs[d]);
    lmn_tokenizer_bpe_info(&h, &hi);
    CU_ASSERT(h.vocab_size == g.vocab_size && h.bos == g.bos && h.eos == g.eos);
    CU_ASSERT(hi.n_merges == gi.n_merges && hi.n_special == gi.n_special && hi.add_bos == gi.add_bos &&
              hi.ignore_merges == gi.ignore_merges && hi.n_bytes_missing == gi.n_bytes_missing);
    int same = 1;
    for (int32_t id = 0; id < g.vocab_size; id++) {
      size_t gl = 0, hl = 0;
      const char *gs = lmn_tokenizer_decode_token(&g, id, &gl), *hs = lmn_tokenizer_decode_token(&h, id, &hl);
      same &= gl == hl && memcmp(gs, hs, gl) == 0 &&
              lmn_tokenizer_token_type(&g, id) == lmn_tokenizer_token_type(&h, id);
    }
    CU_ASSERT(same);
    char text[512];
    for (int k = 0; k < 200; k++) { /* random printable text, digits, spaces and special tokens */
      size_t n = 0;
      while (n < sizeof text - 16) {
        uint64_t r = rnd(&seed) % 100;
        n += r < 3 ? (size_t)snprintf(text + n, 16, "<|im_end|>") : (text[n] = (char)(32 + r % 95), 1);
      }
      long gn, hn;
      int32_t *gids = encode_all(&g, text, n, &gn), *hids = encode_all(&h, text, n, &hn);
      CU_ASSERT(gids && hids && gn == hn && memcmp(gids, hids, (size_t)gn * sizeof *gids) == 0);
      free(gids);
      free(hids);
    }
    lmn_tokenizer_free(&h);
  }
  lmn_tokenizer_free(&g);
}

/* Self-check vectors of formats.md §2.4 (third-party, confirmed by the fixture). */
static void test_known_vectors(void) {
  if (model_absent()) return;
  lmn_tokenizer t;
  load_model(&t);
  static const struct {
    const char *text;
    int32_t ids[8];
    int n;
  } v[] = {{"Hello, we can use", {19556, 28, 392, 416, 722}, 5},
           {"The capital of France is", {504, 3575, 282, 4649, 314}, 5},
           {"Hello world! 123", {19556, 905, 17, 216, 33, 34, 35}, 7},
           {"\n", {198}, 1},
           {"<|im_start|>user\n", {1, 4093, 198}, 3}};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
    int32_t ids[16];
    long n = lmn_tokenizer_encode(&t, v[i].text, strlen(v[i].text), ids, 16);
    CU_ASSERT_EQUAL(n, v[i].n);
    CU_ASSERT(n == v[i].n && memcmp(ids, v[i].ids, (size_t)n * sizeof *ids) == 0);
  }
  CU_ASSERT_EQUAL(t.vocab_size, 49152);
  CU_ASSERT_EQUAL(t.bos, 1);
  CU_ASSERT_EQUAL(t.eos, 2);
  CU_ASSERT_EQUAL(t.kind, LMN_TOK_BPE);
  lmn_bpe_info info;
  CU_ASSERT_EQUAL(lmn_tokenizer_bpe_info(&t, &info), 0);
  CU_ASSERT_STRING_EQUAL(info.pre, "smollm");
  CU_ASSERT_EQUAL(info.add_bos, 0);
  CU_ASSERT_EQUAL(info.n_special, 17);
  CU_ASSERT_EQUAL(info.n_merges, 48900);
  CU_ASSERT_EQUAL(lmn_tokenizer_token_type(&t, 2), LMN_TOKTYPE_CONTROL);
  CU_ASSERT_EQUAL(lmn_tokenizer_token_type(&t, 100), LMN_TOKTYPE_NORMAL);
  CU_ASSERT_EQUAL(lmn_tokenizer_token_type(&t, 49152), -1);
  lmn_tokenizer b;
  lmn_tokenizer_init_bytes(&b);
  CU_ASSERT_EQUAL(lmn_tokenizer_bpe_info(&b, &info), -1);
  lmn_tokenizer_free(&t);
}

/* ---------------------------------------------------------------- round trips */

static void test_single_bytes(void) {
  if (model_absent()) return;
  lmn_tokenizer t;
  load_model(&t);
  lmn_bpe_info info;
  lmn_tokenizer_bpe_info(&t, &info);
  static const unsigned char missing[] = {4,   6,   19,  20,  22,  29,  192, 193, 241, 242, 245,
                                          246, 247, 248, 249, 250, 251, 252, 253, 254, 255};
  CU_ASSERT_EQUAL(info.n_bytes_missing, (int)sizeof missing);
  for (size_t i = 0; i < sizeof missing; i++) CU_ASSERT(info.byte_missing[missing[i]]);
  for (int v = 0; v < 256; v++) {
    char c = (char)v;
    int32_t id = -1;
    long n = lmn_tokenizer_encode(&t, &c, 1, &id, 1);
    CU_ASSERT(round_trip(&t, &c, 1));
    if (info.byte_missing[v]) {
      CU_ASSERT_EQUAL(n, 0);
      continue;
    }
    CU_ASSERT_EQUAL(n, 1);
    size_t len = 0;
    const char *s = lmn_tokenizer_decode_token(&t, id, &len);
    CU_ASSERT(s && len == 1 && s[0] == c);
  }
  lmn_tokenizer_free(&t);
}

static void test_every_token_decodes(void) {
  if (model_absent()) return;
  lmn_tokenizer t;
  load_model(&t);
  size_t total = 0;
  for (int32_t id = 0; id < t.vocab_size; id++) {
    size_t len = 0;
    const char *s = lmn_tokenizer_decode_token(&t, id, &len);
    CU_ASSERT_PTR_NOT_NULL(s);
    total += len;
  }
  size_t len;
  const char *s = lmn_tokenizer_decode_token(&t, 2, &len);
  CU_ASSERT(len == 10 && memcmp(s, "<|im_end|>", 10) == 0);
  s = lmn_tokenizer_decode_token(&t, 216, &len); /* "Ġ" */
  CU_ASSERT(len == 1 && s[0] == ' ');
  CU_ASSERT_PTR_NULL(lmn_tokenizer_decode_token(&t, -1, &len));
  CU_ASSERT_PTR_NULL(lmn_tokenizer_decode_token(&t, t.vocab_size, &len));
  CU_ASSERT(total > 0);
  lmn_tokenizer_free(&t);
}

static void test_random_bytes(void) {
  if (model_absent()) return;
  lmn_tokenizer t;
  load_model(&t);
  static const char *const bits[] = {"a",
                                     "Z",
                                     "7",
                                     " ",
                                     "  ",
                                     "\t",
                                     "\n",
                                     "\r\n",
                                     "'s",
                                     "'",
                                     "\xc3\xa9",
                                     "\xe4\xb8\xad",
                                     "\xf0\x9f\x98\x80",
                                     "\xe2\x80\x8d",
                                     "\xcc\x81",
                                     "<|im_end|>",
                                     "<|endoftext|>",
                                     "<|im_",
                                     "\x80",
                                     "\xff",
                                     "\xc0\x80",
                                     "\xed\xa0\x80",
                                     "\xf4\x90\x80\x80",
                                     "\xe4\xb8",
                                     "\x00",
                                     "\xc2\xa0",
                                     "\xe3\x80\x80",
                                     "."};
  uint64_t st = 0x1234567887654321ull;
  char buf[512];
  int bad = 0;
  for (int it = 0; it < 3000; it++) {
    size_t n = 0, want = rnd(&st) % 300;
    if (it % 2) { /* arbitrary bytes */
      for (; n < want; n++) buf[n] = (char)rnd(&st);
    } else { /* pieces that stress the pre-tokenizer */
      while (n < want) {
        const char *b = bits[rnd(&st) % (sizeof bits / sizeof *bits)];
        size_t l = strcmp(b, "\x00") == 0 ? 1 : strlen(b);
        if (n + l > sizeof buf) break;
        memcpy(buf + n, b, l);
        n += l;
      }
    }
    if (!round_trip(&t, buf, n)) {
      if (bad++ < 3) printf("\n    round trip failed for "), print_hex(buf, n);
    }
  }
  CU_ASSERT_EQUAL(bad, 0);
  lmn_tokenizer_free(&t);
}

static void test_invalid_utf8(void) {
  if (model_absent()) return;
  lmn_tokenizer t;
  load_model(&t);
  static const char *const cases[] = {"\x80",
                                      "\xbf\xbf",
                                      "\xc0\x80",
                                      "\xc1\xbf",
                                      "\xe0\x80\x80",
                                      "\xed\xa0\x80",
                                      "\xed\xbf\xbf",
                                      "\xf4\x90\x80\x80",
                                      "\xf5\x80\x80\x80",
                                      "\xf8\x88\x80\x80\x80",
                                      "\xfe\xff",
                                      "\xe4\xb8",
                                      "\xf0\x9f\x98",
                                      "a\x80"
                                      "b",
                                      "caf\xe9 au lait",
                                      "\xe2<|im_end|>",
                                      "<|im_end|>\x98\x80",
                                      "1\xff"
                                      "2\xfe"
                                      "3",
                                      " \x80 \x81  \x82"};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    CU_ASSERT(round_trip(&t, cases[i], strlen(cases[i])));
  /* an invalid byte is classed like U+FFFD (a symbol): the piece boundaries match */
  int32_t a[8], b[8];
  long na = lmn_tokenizer_encode(&t,
                                 "x\x80"
                                 "y",
                                 3, a, 8),
       nb = lmn_tokenizer_encode(&t, "x\xef\xbf\xbdy", 5, b, 8);
  CU_ASSERT(na >= 3 && nb >= 3 && a[0] == b[0] && a[na - 1] == b[nb - 1]);
  lmn_tokenizer_free(&t);
}

static void test_capacity_and_edges(void) {
  if (model_absent()) return;
  lmn_tokenizer t;
  load_model(&t);
  const char *s = "<|im_start|>user\nThe quick brown fox 123<|im_end|>";
  long count;
  int32_t *all = encode_all(&t, s, strlen(s), &count);
  CU_ASSERT(count > 5);
  for (long cap = 0; cap <= count; cap++) {
    int32_t part[64];
    memset(part, 0xAB, sizeof part);
    CU_ASSERT_EQUAL(lmn_tokenizer_encode(&t, s, strlen(s), part, (size_t)cap), count);
    CU_ASSERT(memcmp(part, all, (size_t)cap * sizeof *part) == 0);
    CU_ASSERT_EQUAL(part[cap], (int32_t)0xABABABAB);
  }
  free(all);
  int32_t id;
  CU_ASSERT_EQUAL(lmn_tokenizer_encode(&t, "", 0, &id, 1), 0);
  CU_ASSERT_EQUAL(lmn_tokenizer_encode(&t, NULL, 0, NULL, 0), 0);
  CU_ASSERT_EQUAL(lmn_tokenizer_encode(&t, "\0\0", 2, NULL, 0), 2);
  lmn_tokenizer_free(&t);
  lmn_tokenizer_free(&t); /* twice is harmless */
}

/* ---------------------------------------------------------------- the Unicode table */

static char ucd_class(uint32_t c) {
  for (size_t i = 0; i < sizeof lmn_ucd_ranges / sizeof *lmn_ucd_ranges; i++)
    if (c >= lmn_ucd_ranges[i].lo && c <= lmn_ucd_ranges[i].hi) return lmn_ucd_ranges[i].cls;
  return 0;
}

static void test_unicode_table(void) {
  size_t n = sizeof lmn_ucd_ranges / sizeof *lmn_ucd_ranges;
  for (size_t i = 0; i < n; i++) {
    CU_ASSERT(lmn_ucd_ranges[i].lo <= lmn_ucd_ranges[i].hi && lmn_ucd_ranges[i].hi <= 0x10FFFF);
    CU_ASSERT(lmn_ucd_ranges[i].cls == 'L' || lmn_ucd_ranges[i].cls == 'N');
    if (i) CU_ASSERT(lmn_ucd_ranges[i - 1].hi < lmn_ucd_ranges[i].lo); /* sorted, disjoint */
  }
  for (size_t i = 1; i < sizeof lmn_ucd_space / sizeof *lmn_ucd_space; i++)
    CU_ASSERT(lmn_ucd_space[i - 1] < lmn_ucd_space[i]);
  static const struct {
    uint32_t c;
    char cls;
  } known[] = {{'A', 'L'},
               {'z', 'L'},
               {'0', 'N'},
               {' ', 0},
               {'_', 0},
               {0xE9, 'L'},
               {0xB2, 'N'},
               {0xBD, 'N'},
               {0x301, 0},
               {0x4E2D, 'L'},
               {0x663, 'N'},
               {0x216B, 'N'},
               {0xFF13, 'N'},
               {0x1F600, 0},
               {0x200D, 0},
               {0x3042, 'L'},
               {0xAC00, 'L'},
               {0x1D7D9, 'N'},
               {0x31350, 'L'} /* CJK extension H: Unicode 15.0 */,
               {0x2EBF0, 'L'} /* extension I: 15.1 */};
  for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
    if (ucd_class(known[i].c) != known[i].cls)
      printf("\n    U+%04X: class %d", (unsigned)known[i].c, ucd_class(known[i].c));
    CU_ASSERT_EQUAL(ucd_class(known[i].c), known[i].cls);
  }
  CU_ASSERT_STRING_EQUAL(LMN_UCD_VERSION, "15.1.0");
}

/* ---------------------------------------------------------------- chat templates */

/* SmolLM2-Instruct's tokenizer.chat_template, as its GGUF holds it (real line breaks inside the strings). */
static const char smol_template[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

static long render(const char *tpl, const lmn_chat_msg *m, int n, char *out, size_t cap) {
  lmn_chat_template t;
  lmn_err err = {{0}};
  if (lmn_chat_template_parse(tpl, strlen(tpl), "t", &t, &err)) return -2;
  return lmn_chat_render(&t, m, n, 1, "<BOS>", out, cap, &err);
}

static void test_chat_format(void) {
  const char *want =
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
  lmn_chat_msg q = {"user", "What is 2+2?"};
  char out[512];
  long n = render(smol_template, &q, 1, out, sizeof out);
  CU_ASSERT_EQUAL(n, (long)strlen(want));
  CU_ASSERT_STRING_EQUAL(out, want);
  CU_ASSERT_EQUAL(render(smol_template, &q, 1, NULL, 0), n);
  char small[20];
  CU_ASSERT_EQUAL(render(smol_template, &q, 1, small, sizeof small), n);
  CU_ASSERT(strlen(small) == 19 && memcmp(small, want, 19) == 0);
  /* a system message of one's own, and a whole conversation */
  lmn_chat_msg conv[] = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}};
  render(smol_template, conv, 4, out, sizeof out);
  CU_ASSERT_STRING_EQUAL(out,
                         "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                         "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
                         "<|im_start|>assistant\n");
  /* Qwen2.5's default system message, written with the escape \n, after a tools branch it must skip */
  render(
      "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, "
      "created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}",
      &q, 1, out, sizeof out);
  CU_ASSERT_PTR_NOT_NULL(strstr(out,
                                "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a "
                                "helpful assistant.<|im_end|>\n<|im_start|>user\n"));
  /* Llama-3: BOS, headers, stripped contents, no default system message */
  lmn_chat_msg padded = {"user", "  Hi there \n"};
  render(
      "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
      "{{ m['content'] | trim }}<|eot_id|>{% endfor %}",
      &padded, 1, out, sizeof out);
  CU_ASSERT_STRING_EQUAL(out,
                         "<BOS><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                         "<|start_header_id|>assistant<|end_header_id|>\n\n");
  /* Gemma: the system text goes before the first user message; the assistant is "model" */
  render("{{ bos_token }}<start_of_turn>{{ role }}\n{{ content }}<end_of_turn>", conv, 4, out, sizeof out);
  CU_ASSERT_STRING_EQUAL(
      out,
      "<BOS><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
      "Hello!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
  /* refused: an unknown template (named with its start), bad roles, a late system message, no message */
  lmn_chat_template t;
  lmn_err err = {{0}};
  const char *alpaca = "### Instruction:\n{{ messages[0]['content'] }}\n### Response:";
  CU_ASSERT_EQUAL(lmn_chat_template_parse(alpaca, strlen(alpaca), "m.gguf", &t, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "m.gguf: the chat template is none that lmnet recognises"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "### Instruction:"));
  lmn_chat_msg bad_role = {"tool", "x"}, late[] = {{"user", "a"}, {"system", "b"}},
               no_content = {"user", NULL};
  CU_ASSERT_EQUAL(render(smol_template, &bad_role, 1, out, sizeof out), -1);
  CU_ASSERT_EQUAL(render(smol_template, late, 2, out, sizeof out), -1);
  CU_ASSERT_EQUAL(render(smol_template, &no_content, 1, out, sizeof out), -1);
  CU_ASSERT_EQUAL(render(smol_template, &q, 0, out, sizeof out), -1);
  if (model_absent()) return;
  lmn_tokenizer tk;
  load_model(&tk);
  n = render(smol_template, &q, 1, out, sizeof out);
  int32_t ids[128];
  long m = lmn_tokenizer_encode(&tk, out, (size_t)n, ids, 128);
  int starts = 0, ends = 0;
  for (long i = 0; i < m; i++) starts += ids[i] == 1, ends += ids[i] == 2;
  CU_ASSERT(m > 10 && ids[0] == 1 && starts == 3 && ends == 2); /* <|im_start|> x3, <|im_end|> x2 */
  CU_ASSERT_EQUAL(ids[m - 1], 198);                             /* "\n" */
  lmn_tokenizer_free(&tk);
}

/* ---------------------------------------------------------------- refused files */

/* GPT-2's bytes_to_unicode (formats.md §2.3), written out again for the synthetic vocabularies. */
static void byte_token(unsigned v, char out[3]) {
  unsigned c = v, n = 0;
  if (!((v >= 33 && v <= 126) || (v >= 161 && v <= 172) || v >= 174)) {
    for (unsigned b = 0; b < v; b++) n += !((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174);
    c = 256 + n;
  }
  if (c < 0x80)
    out[0] = (char)c, out[1] = 0;
  else
    out[0] = (char)(0xC0 | (c >> 6)), out[1] = (char)(0x80 | (c & 0x3F)), out[2] = 0;
}

typedef enum fault {
  F_NONE,
  F_MODEL,
  F_PRE,
  F_NO_PRE,
  F_NO_TOKENS,
  F_TYPES_LEN,
  F_TYPE_VALUE,
  F_BOS,
  F_MERGES_TYPE,
  F_NO_MERGES
} fault;

/* A small vocabulary: the 256 bytes, "ab", "abc", "<|s|>" (CONTROL), merges "a b", "ab c"; one fault. */
static int write_small(const char *path, fault f, lmn_err *e) {
  static char bytes[256][3];
  const char *tok[260];
  int32_t types[260];
  for (unsigned v = 0; v < 256; v++) byte_token(v, bytes[v]), tok[v] = bytes[v], types[v] = 1;
  tok[256] = "ab", tok[257] = "abc", tok[258] = "<|s|>";
  types[256] = types[257] = 1, types[258] = 3;
  const char *merges[] = {"a b", "ab c", "nospace", "x y"};
  lmn_gguf_writer *w;
  int rc = lmn_gguf_writer_new(&w, e);
  rc |= lmn_gguf_writer_add_str(w, "tokenizer.ggml.model", f == F_MODEL ? "llama" : "gpt2", e);
  if (f != F_NO_PRE)
    rc |= lmn_gguf_writer_add_str(w, "tokenizer.ggml.pre", f == F_PRE ? "nonesuch" : "gpt-2", e);
  if (f != F_NO_TOKENS) rc |= lmn_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", tok, 259, e);
  if (f == F_TYPE_VALUE) types[5] = 9;
  rc |= lmn_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", LMN_GGUF_INT32, types,
                                f == F_TYPES_LEN ? 258 : 259, e);
  if (f == F_MERGES_TYPE)
    rc |= lmn_gguf_writer_add_arr(w, "tokenizer.ggml.merges", LMN_GGUF_INT32, types, 4, e);
  else if (f != F_NO_MERGES)
    rc |= lmn_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", merges, 4, e);
  rc |= lmn_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", f == F_BOS ? 259 : 258, e);
  rc |= lmn_gguf_writer_write(w, path, e);
  lmn_gguf_writer_free(w);
  return rc ? -1 : 0;
}

static void test_refused_files(void) {
  static const struct {
    fault f;
    const char *key;
  } cases[] = {{F_MODEL, "'tokenizer.ggml.model'"},          {F_PRE, "'tokenizer.ggml.pre'"},
               {F_NO_PRE, "'tokenizer.ggml.pre'"},           {F_NO_TOKENS, "'tokenizer.ggml.tokens'"},
               {F_TYPES_LEN, "'tokenizer.ggml.token_type'"}, {F_TYPE_VALUE, "'tokenizer.ggml.token_type'"},
               {F_BOS, "'tokenizer.ggml.bos_token_id'"},     {F_MERGES_TYPE, "'tokenizer.ggml.merges'"},
               {F_NO_MERGES, "'tokenizer.ggml.merges'"}};
  char path[] = "/tmp/lmn_tok_XXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  lmn_err e;
  lmn_tokenizer t;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    CU_ASSERT_EQUAL_FATAL(write_small(path, cases[i].f, &e), 0);
    memset(&t, 0x5A, sizeof t);
    CU_ASSERT_EQUAL(lmn_tokenizer_load_gguf(&t, path, &e), -1);
    CU_ASSERT_PTR_NULL(t.ops);
    if (!strstr(e.msg, path) || !strstr(e.msg, cases[i].key)) printf("\n    unexpected message: %s", e.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].key));
  }
  CU_ASSERT_EQUAL(lmn_tokenizer_load_gguf(&t, "/nonexistent/x.gguf", &e), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "/nonexistent/x.gguf"));
  /* the small vocabulary itself loads and merges by rank; the merges naming no tokens are left out */
  CU_ASSERT_EQUAL_FATAL(write_small(path, F_NONE, &e), 0);
  CU_ASSERT_EQUAL_FATAL(lmn_tokenizer_load_gguf(&t, path, &e), 0);
  lmn_bpe_info info;
  lmn_tokenizer_bpe_info(&t, &info);
  CU_ASSERT_EQUAL(info.n_merges, 2);
  CU_ASSERT_EQUAL(info.n_special, 1);
  CU_ASSERT_EQUAL(t.bos, 258);
  CU_ASSERT_EQUAL(t.eos, -1);
  int32_t ids[8];
  CU_ASSERT_EQUAL(lmn_tokenizer_encode(&t, "abc<|s|>ab", 10, ids, 8), 3);
  CU_ASSERT(ids[0] == 257 && ids[1] == 258 && ids[2] == 256);
  CU_ASSERT(round_trip(&t, "abc<|s|>ab \xff", 12));
  lmn_tokenizer_free(&t);
  unlink(path);
}

/* ---------------------------------------------------------------- speed */

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 8 MiB of this repository's C sources and docs (prose, code, digits, Unicode), or of a built-in
 * paragraph where they are missing; prints the rate in CPU time (wall time suffers on a busy machine). */
static void test_speed(void) {
  if (model_absent()) return;
  lmn_tokenizer t;
  load_model(&t);
  static const char *const files[] = {"runtime/tokenizer_bpe.c", "runtime/gguf.c", "README.md",
                                      "tests/test_tokenizer.c", "runtime/tokenizer_ucd.h"};
  static const char para[] =
      "The tokenizer splits text into pieces with the SmolLM pre-tokenizer, then merges bytes by rank. "
      "In 2024, 3.5 million people read 12,345 pages; don't they'll? Caf\xc3\xa9 na\xc3\xafve "
      "\xe4\xb8\xad\xe6\x96\x87 "
      "def f(x):\n    return x ** 2  # comment\n\n<|im_start|>user\nHello!<|im_end|>\n";
  size_t n = 8u << 20, have = 0;
  char *text = malloc(n);
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    FILE *f = fopen(files[i], "rb");
    if (!f) continue;
    have += fread(text + have, 1, n / 2 - have, f);
    fclose(f);
  }
  if (have == 0) memcpy(text, para, have = sizeof para - 1);
  for (size_t i = have; i < n; i++) text[i] = text[i % have];
  double a = cpu_seconds();
  long count = lmn_tokenizer_encode(&t, text, n, NULL, 0);
  double s = cpu_seconds() - a;
  printf("\n    encode: %zu bytes -> %ld tokens in %.3f s CPU: %.2f M tokens/s, %.1f MB/s ", n, count, s,
         count / s / 1e6, n / s / 1e6);
  CU_ASSERT(count > 0);
  free(text);
  lmn_tokenizer_free(&t);
}

static CU_TestInfo tests[] = {
    {"fixture ids (llama.cpp)", test_fixture},
    {"fixture ids from tokenizer.json", test_fixture_hf},
    {"tokenizer.json same as the GGUF", test_hf_same_as_gguf},
    {"known vectors and info", test_known_vectors},
    {"all 256 single bytes", test_single_bytes},
    {"every token decodes", test_every_token_decodes},
    {"random byte strings round-trip", test_random_bytes},
    {"invalid UTF-8 round-trips", test_invalid_utf8},
    {"output capacity and edges", test_capacity_and_edges},
    {"Unicode table", test_unicode_table},
    {"chat templates: ChatML, Llama-3, Gemma recognised and rendered", test_chat_format},
    {"refused files name file and key", test_refused_files},
    {"encode speed", test_speed},
    CU_TEST_INFO_NULL};

LMN_TEST_MAIN("tokenizer", tests)
