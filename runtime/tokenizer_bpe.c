/* tokenizer_bpe.c: the byte-level BPE tokenizer of a GGUF file (see tokenizer_bpe.h for what it does).
 * Layout: UTF-8 and Unicode classes; the pre-tokenizer scanners (llama.cpp's unicode.cpp custom splitters,
 * transcribed to byte positions); rank-ordered merges with a binary heap; special-token partition;
 * loading and checking of the tokenizer.ggml.* keys; the chat prompt. No global mutable state: encode
 * keeps its scratch memory per call, so one tokenizer may be used from several threads. */
#include "tokenizer_bpe.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_bpe_int.h"
#include "tokenizer_ucd.h"

/* ---------------------------------------------------------------- UTF-8 and Unicode classes */

enum { C_L = 1, C_N = 2, C_S = 4, C_O = 8 }; /* letter, number, white space, other; 0: past the end */
#define CP_END 0xFFFFFFFFu                   /* no code point: past the end of the fragment */
#define CP_BAD 0xFFFFFFFEu                   /* an invalid UTF-8 byte (classed like U+FFFD) */

typedef struct cpi {
  uint32_t c;   /* code point, CP_END or CP_BAD */
  unsigned cls; /* C_* */
  size_t len;   /* bytes */
} cpi;

static int in_sorted(const uint32_t *v, size_t n, uint32_t c) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v[mid] == c) return 1;
    if (v[mid] < c)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

static unsigned ucd_class(uint32_t c) {
  size_t lo = 0, hi = sizeof lmn_ucd_ranges / sizeof lmn_ucd_ranges[0];
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c < lmn_ucd_ranges[mid].lo)
      hi = mid;
    else if (c > lmn_ucd_ranges[mid].hi)
      lo = mid + 1;
    else
      return lmn_ucd_ranges[mid].cls == 'L' ? C_L : C_N;
  }
  return C_O;
}

static inline unsigned cp_class(uint32_t c) {
  if (c < 128) {
    if ((c | 32) >= 'a' && (c | 32) <= 'z') return C_L;
    if (c >= '0' && c <= '9') return C_N;
    return c == ' ' || (c >= 9 && c <= 13) ? C_S : C_O;
  }
  if (c > 0x10FFFF) return C_O;
  if (in_sorted(lmn_ucd_space, sizeof lmn_ucd_space / sizeof lmn_ucd_space[0], c)) return C_S;
  return ucd_class(c);
}

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF), or 0; *cp receives its code point. */
static size_t utf8_seq(const uint8_t *s, size_t n, uint32_t *cp) {
  uint8_t b = s[0];
  size_t len = b < 0x80                 ? 1
               : b >= 0xC2 && b <= 0xDF ? 2
               : b >= 0xE0 && b <= 0xEF ? 3
               : b >= 0xF0 && b <= 0xF4 ? 4
                                        : 0;
  if (len == 0 || len > n) return 0;
  if (len == 1) return *cp = b, 1;
  uint32_t c = b & (0x7F >> len);
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    c = c << 6 | (s[i] & 0x3F);
  }
  static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < min[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  *cp = c;
  return len;
}

/* The code point at byte pos of a fragment ending at byte end. */
static inline cpi cp_at(const uint8_t *s, size_t pos, size_t end) {
  cpi r = {CP_END, 0, 0};
  if (pos >= end) return r;
  if (s[pos] < 0x80) {
    r.c = s[pos], r.len = 1, r.cls = cp_class(r.c);
    return r;
  }
  r.len = utf8_seq(s + pos, end - pos, &r.c);
  if (r.len == 0) r.c = CP_BAD, r.len = 1;
  r.cls = r.c == CP_BAD ? C_O : cp_class(r.c);
  return r;
}

/* The end of the run of code points whose class is in mask, from pos. */
static size_t run_of(const uint8_t *s, size_t pos, size_t end, unsigned mask) {
  for (cpi c; (c = cp_at(s, pos, end)).cls & mask;) pos += c.len;
  return pos;
}

/* ---------------------------------------------------------------- the tokenizer */

typedef struct merge_slot {
  uint64_t key;   /* (left id << 32) | right id */
  int32_t rank;   /* -1: empty slot */
  int32_t result; /* id of the merged token */
} merge_slot;

typedef struct bpe {
  int32_t n;        /* vocabulary size */
  char *text;       /* every token's string as stored in the file, concatenated */
  size_t *text_off; /* n + 1 offsets into text */
  char *bytes;      /* every token's decoded bytes, concatenated */
  size_t *bytes_off;
  uint8_t *type;        /* LMN_TOKTYPE_* */
  int32_t *tok_slot;    /* open addressing over text: id or -1 */
  size_t tok_mask;      /* slots - 1 */
  merge_slot *merge;    /* open addressing over id pairs */
  size_t merge_mask;    /* slots - 1 */
  int32_t n_merges;     /* merges in the table */
  int32_t byte_id[256]; /* the token of each single byte, or -1 */
  int32_t *special;     /* ids matched verbatim, longest text first */
  int32_t n_special;
  lmn_bpe_pre pre;
  lmn_bpe_info info;
} bpe;

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t key) {
  key *= 0x9E3779B97F4A7C15ull;
  return key ^ (key >> 31);
}

/* The id of the token whose stored string is s[0..n), or -1. */
static int32_t token_id(const bpe *b, const char *s, size_t n) {
  for (size_t i = hash_bytes(s, n) & b->tok_mask;; i = (i + 1) & b->tok_mask) {
    int32_t id = b->tok_slot[i];
    if (id < 0) return -1;
    size_t len = b->text_off[id + 1] - b->text_off[id];
    if (len == n && memcmp(b->text + b->text_off[id], s, n) == 0) return id;
  }
}

static const merge_slot *merge_find(const bpe *b, int32_t left, int32_t right) {
  uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
  for (size_t i = hash_pair(key) & b->merge_mask;; i = (i + 1) & b->merge_mask) {
    const merge_slot *m = &b->merge[i];
    if (m->rank < 0) return NULL;
    if (m->key == key) return m;
  }
}

/* ---------------------------------------------------------------- GPT-2 bytes_to_unicode */

/* The code point GPT-2's bytes_to_unicode gives byte v (formats.md §2.3). */
static uint32_t byte_cp(unsigned v) {
  if ((v >= 33 && v <= 126) || (v >= 161 && v <= 172) || v >= 174) return v;
  if (v <= 32) return 256 + v;
  if (v <= 160) return 256 + 33 + (v - 127);
  return 256 + 33 + 34; /* 173 */
}

/* The byte whose bytes_to_unicode code point is c, or -1. */
static int cp_byte(uint32_t c) {
  if (c < 256) return byte_cp(c) == c ? (int)c : -1;
  if (c < 256 + 33) return (int)(c - 256);
  if (c < 256 + 33 + 34) return (int)(c - 256 - 33 + 127);
  return c == 256 + 33 + 34 ? 173 : -1;
}

/* Writes the UTF-8 of byte v's bytes_to_unicode code point (1 or 2 bytes) to out; returns its length. */
static size_t byte_utf8(unsigned v, char *out) {
  uint32_t c = byte_cp(v);
  if (c < 0x80) return out[0] = (char)c, 1;
  out[0] = (char)(0xC0 | (c >> 6));
  out[1] = (char)(0x80 | (c & 0x3F));
  return 2;
}

/* ---------------------------------------------------------------- encoding state */

/* One symbol of a piece being merged: 12 bytes per byte of the piece. */
typedef struct sym {
  int32_t id; /* current token; -1: a byte no token holds (never merged, dropped); DEAD: merged away */
  int32_t prev, next; /* neighbours in the piece, -1 at the ends */
} sym;
#define DEAD INT32_MIN

/* A queued merge of the symbol at left with its right neighbour; at most 3 per byte of the piece. When
 * popped it still applies if that pair's merge has this rank (a rank names one pair of tokens). */
typedef struct bigram {
  int32_t rank, left;
} bigram;

typedef struct enc {
  const bpe *b;
  int32_t *ids; /* output: the first cap ids */
  size_t cap, n;
  int failed;
  sym *sy;
  size_t sy_cap;
  bigram *heap;
  size_t heap_n, heap_cap;
  char *buf; /* a piece in bytes_to_unicode form (ignore_merges) */
  size_t buf_cap;
} enc;

/* Outputs id; -1 (a byte no token holds) outputs nothing, as in llama.cpp. */
static void out_id(enc *e, int32_t id) {
  if (id < 0) return;
  if (e->n < e->cap) e->ids[e->n] = id;
  e->n++;
}

/* Grows *p (elements of size sz) to hold at least want; 0 on success. */
static int grow(void **p, size_t *cap, size_t want, size_t sz) {
  if (want <= *cap) return 0;
  size_t c = *cap ? *cap : 64;
  while (c < want) {
    if (c > SIZE_MAX / 2 / sz) return -1;
    c *= 2;
  }
  void *q = realloc(*p, c * sz);
  if (!q) return -1;
  *p = q;
  *cap = c;
  return 0;
}

/* ---------------------------------------------------------------- merges (llm_tokenizer_bpe_session) */

static int bigram_less(const bigram *x, const bigram *y) {
  return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

static void heap_push(enc *e, bigram g) {
  size_t i = e->heap_n++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!bigram_less(&g, &e->heap[parent])) break;
    e->heap[i] = e->heap[parent];
    i = parent;
  }
  e->heap[i] = g;
}

static bigram heap_pop(enc *e) {
  bigram top = e->heap[0], last = e->heap[--e->heap_n];
  size_t i = 0, n = e->heap_n;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && bigram_less(&e->heap[c + 1], &e->heap[c])) c++;
    if (!bigram_less(&e->heap[c], &last)) break;
    e->heap[i] = e->heap[c];
    i = c;
  }
  if (n) e->heap[i] = last;
  return top;
}

/* The merge of the pair at left (and its right neighbour), or NULL. */
static const merge_slot *pair_merge(const enc *e, int32_t left) {
  if (left < 0) return NULL;
  const sym *l = &e->sy[left];
  if (l->id < 0 || l->next < 0 || e->sy[l->next].id < 0) return NULL;
  return merge_find(e->b, l->id, e->sy[l->next].id);
}

static void add_bigram(enc *e, int32_t left) {
  const merge_slot *m = pair_merge(e, left);
  if (!m) return;
  if (grow((void **)&e->heap, &e->heap_cap, e->heap_n + 1, sizeof *e->heap) != 0) {
    e->failed = 1;
    return;
  }
  bigram g = {m->rank, left};
  heap_push(e, g);
}

/* Lowest rank first, leftmost on ties, until no pair of neighbours has a merge (llama.cpp's queue order). */
static void merge_all(enc *e) {
  while (e->heap_n > 0 && !e->failed) {
    bigram g = heap_pop(e);
    const merge_slot *m = pair_merge(e, g.left);
    if (!m || m->rank != g.rank) continue; /* outdated */
    sym *l = &e->sy[g.left], *r = &e->sy[l->next];
    l->id = m->result;
    r->id = DEAD;
    l->next = r->next;
    if (r->next >= 0) e->sy[r->next].prev = g.left;
    add_bigram(e, l->prev);
    add_bigram(e, g.left);
  }
}

/* A piece of text as it leaves the pre-tokenizer: bytes_to_unicode, merges, ids out. */
static void bpe_piece(enc *e, const uint8_t *p, size_t n) {
  const bpe *b = e->b;
  if (n == 0 || e->failed) return;
  if (n == 1) return out_id(e, b->byte_id[p[0]]);
  if (b->info.ignore_merges) {
    if (n > SIZE_MAX / 2 || grow((void **)&e->buf, &e->buf_cap, 2 * n, 1) != 0) return (void)(e->failed = 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += byte_utf8(p[i], e->buf + m);
    int32_t id = token_id(b, e->buf, m);
    if (id >= 0) return out_id(e, id);
  }
  if (n > INT32_MAX || grow((void **)&e->sy, &e->sy_cap, n, sizeof *e->sy) != 0) return (void)(e->failed = 1);
  for (size_t i = 0; i < n; i++) {
    sym s = {b->byte_id[p[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1};
    e->sy[i] = s;
  }
  e->heap_n = 0;
  for (size_t i = 0; i + 1 < n; i++) add_bigram(e, (int32_t)i);
  merge_all(e);
  for (int32_t i = 0; i >= 0 && !e->failed; i = e->sy[i].next) out_id(e, e->sy[i].id);
}

/* ---------------------------------------------------------------- pre-tokenizers */

/* The end of 's 't 're 've 'm 'll 'd at pos (s[pos] is '\''), or pos; fold: ASCII case-insensitive. */
static size_t contraction(const uint8_t *s, size_t pos, size_t end, int fold) {
  if (pos + 1 >= end) return pos;
  unsigned a = s[pos + 1], c;
  if (fold && a >= 'A' && a <= 'Z') a |= 32;
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return pos + 2;
  if (pos + 2 >= end) return pos;
  c = s[pos + 2];
  if (fold && c >= 'A' && c <= 'Z') c |= 32;
  if ((a == 'r' && c == 'e') || (a == 'v' && c == 'e') || (a == 'l' && c == 'l')) return pos + 3;
  return pos;
}

/* A run of white space from pos: its end, the start of its last code point, whether it holds \r or \n
 * and the end of the last of those. */
typedef struct ws_run {
  size_t count, end, last, nl_end;
  int has_nl;
} ws_run;

static ws_run white_space(const uint8_t *s, size_t pos, size_t end) {
  ws_run w = {0, pos, pos, 0, 0};
  for (cpi c; (c = cp_at(s, w.end, end)).cls & C_S; w.count++) {
    w.last = w.end;
    w.end += c.len;
    if (c.c == '\r' || c.c == '\n') w.has_nl = 1, w.nl_end = w.end;
  }
  return w;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ — the end of the
 * piece at pos (llama.cpp unicode_regex_split_custom_gpt2). */
static size_t gpt2_next(const uint8_t *s, size_t pos, size_t end) {
  cpi c = cp_at(s, pos, end);
  if (c.c == '\'') {
    size_t q = contraction(s, pos, end, 0);
    if (q > pos) return q;
  }
  int sp = c.c == ' ';
  unsigned f2 = sp ? cp_at(s, pos + 1, end).cls : c.cls;
  if (f2 & (C_L | C_N | C_O)) return run_of(s, pos + (size_t)sp, end, f2);
  ws_run w = white_space(s, pos, end);
  if (w.count > 1 && w.end < end) return w.last; /* \s+(?!\S): leave the last one to the next piece */
  if (w.count > 0) return w.end;
  return pos + c.len;
}

/* llama 3 (max_digits 3) and Qwen2 (max_digits 1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,k}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
 * \s+(?!\S)|\s+ — the end of the piece at pos (llama.cpp unicode_regex_split_custom_llama3 / _qwen2). */
static size_t llama3_next(const uint8_t *s, size_t pos, size_t end, int max_digits) {
  cpi c = cp_at(s, pos, end);
  if (c.c == '\'') {
    size_t q = contraction(s, pos, end, 1);
    if (q > pos) return q;
  }
  if (!(c.c == '\r' || c.c == '\n' || (c.cls & C_N)))
    if ((c.cls & C_L) || (cp_at(s, pos + c.len, end).cls & C_L)) return run_of(s, pos + c.len, end, C_L);
  if (c.cls & C_N) {
    size_t q = pos;
    for (int k = 0; k < max_digits; k++) {
      cpi d = cp_at(s, q, end);
      if (!(d.cls & C_N)) break;
      q += d.len;
    }
    return q;
  }
  int sp = c.c == ' ';
  unsigned f2 = sp ? cp_at(s, pos + 1, end).cls : c.cls;
  if (!(f2 & (C_S | C_L | C_N))) { /* f2 may be 0: a space at the very end */
    size_t q = run_of(s, pos + (size_t)sp, end, C_O);
    while (q < end && (s[q] == '\r' || s[q] == '\n')) q++;
    return q;
  }
  ws_run w = white_space(s, pos, end);
  if (w.has_nl) return w.nl_end;
  if (w.count > 1 && w.end < end) return w.last;
  if (w.count > 0) return w.end;
  return pos + c.len;
}

static void split_gpt2(enc *e, const uint8_t *s, size_t pos, size_t end) {
  while (pos < end && !e->failed) {
    size_t q = gpt2_next(s, pos, end);
    bpe_piece(e, s + pos, q - pos);
    pos = q;
  }
}

/* SmolLM: first "\p{N}" (every number code point alone, the text between kept whole), then GPT-2's. */
static void split_smollm(enc *e, const uint8_t *s, size_t pos, size_t end) {
  while (pos < end && !e->failed) {
    size_t q = pos;
    cpi c;
    while ((c = cp_at(s, q, end)).len && !(c.cls & C_N)) q += c.len;
    split_gpt2(e, s, pos, q);
    if (c.len) bpe_piece(e, s + q, c.len);
    pos = q + c.len;
  }
}

static void split_llama3(enc *e, const uint8_t *s, size_t pos, size_t end, int max_digits) {
  while (pos < end && !e->failed) {
    size_t q = llama3_next(s, pos, end, max_digits);
    bpe_piece(e, s + pos, q - pos);
    pos = q;
  }
}

static void encode_raw(enc *e, const uint8_t *s, size_t len) {
  switch (e->b->pre) {
    case LMN_PRE_SMOLLM: split_smollm(e, s, 0, len); break;
    case LMN_PRE_GPT2: split_gpt2(e, s, 0, len); break;
    case LMN_PRE_QWEN2: split_llama3(e, s, 0, len, 1); break;
    case LMN_PRE_LLAMA3: split_llama3(e, s, 0, len, 3); break;
  }
}

/* ---------------------------------------------------------------- special tokens and encode */

/* A span of the text still to encode with special tokens k.. (k == n_special: raw text), or, when
 * emit >= 0, a special token to output. */
typedef struct frame {
  size_t pos, end;
  int32_t k, emit;
} frame;

/* llama.cpp's tokenizer_st_partition: special token k splits every raw span at each of its leftmost,
 * non-overlapping occurrences before token k + 1 is tried on what is left between them. */
static void encode_special(enc *e, const char *text, size_t len) {
  const bpe *b = e->b;
  size_t cap = 2 * (size_t)b->n_special + 2, top = 0;
  frame *st = malloc(cap * sizeof *st);
  if (!st) return (void)(e->failed = 1);
  st[top++] = (frame){0, len, 0, -1};
  while (top > 0 && !e->failed) {
    frame *f = &st[top - 1];
    if (f->emit >= 0 || f->pos >= f->end || f->k == b->n_special) {
      if (f->emit >= 0)
        out_id(e, f->emit);
      else if (f->pos < f->end)
        encode_raw(e, (const uint8_t *)text + f->pos, f->end - f->pos);
      top--;
      continue;
    }
    int32_t id = b->special[f->k];
    size_t n = b->text_off[id + 1] - b->text_off[id];
    const char *m = memmem(text + f->pos, f->end - f->pos, b->text + b->text_off[id], n);
    if (!m) {
      f->k++;
      continue;
    }
    size_t at = (size_t)(m - text);
    frame before = {f->pos, at, f->k + 1, -1}, tok = {0, 0, 0, id};
    f->pos = at + n; /* the rest, still with token k */
    st[top++] = tok;
    st[top++] = before;
  }
  free(st);
}

static long bpe_encode(const void *self, const char *text, size_t len, int32_t *ids, size_t cap) {
  enc e;
  memset(&e, 0, sizeof e);
  e.b = self;
  e.ids = ids;
  e.cap = cap;
  if (len) encode_special(&e, text, len);
  free(e.sy);
  free(e.heap);
  free(e.buf);
  return e.failed || e.n > LONG_MAX ? -1 : (long)e.n;
}

static const char *bpe_decode_token(const void *self, int32_t id, size_t *len) {
  const bpe *b = self;
  if (id < 0 || id >= b->n) return NULL;
  *len = b->bytes_off[id + 1] - b->bytes_off[id];
  return b->bytes + b->bytes_off[id];
}

static void bpe_free(bpe *b) {
  if (!b) return;
  free(b->text);
  free(b->text_off);
  free(b->bytes);
  free(b->bytes_off);
  free(b->type);
  free(b->tok_slot);
  free(b->merge);
  free(b->special);
  free(b);
}

static void bpe_destroy(void *self) {
  bpe_free(self);
}

static const lmn_tokenizer_ops bpe_ops = {bpe_encode, bpe_decode_token, bpe_destroy};

/* ---------------------------------------------------------------- loading */

/* ---------------------------------------------------------------- pre-tokenizer names */

/* The pre-tokenizer names of llama.cpp's llama_vocab::impl::load whose regexes are one of the four done
 * here, with the flags llama.cpp sets for them. The first name of each kind is the canonical one. */
typedef struct pre_name {
  const char *name;
  lmn_bpe_pre kind;
  int ignore_merges, add_bos;
} pre_name;

static const pre_name pre_names[] = {
    {"smollm", LMN_PRE_SMOLLM, 0, 0},
    {"starcoder", LMN_PRE_SMOLLM, 0, 0},
    {"refact", LMN_PRE_SMOLLM, 0, 0},
    {"command-r", LMN_PRE_SMOLLM, 0, 0},
    {"codeshell", LMN_PRE_SMOLLM, 0, 0},
    {"exaone", LMN_PRE_SMOLLM, 0, 0},
    {"minerva-7b", LMN_PRE_SMOLLM, 0, 0},
    {"mellum2", LMN_PRE_SMOLLM, 0, 0},
    {"gpt-2", LMN_PRE_GPT2, 0, 0},
    {"phi-2", LMN_PRE_GPT2, 0, 0},
    {"mpt", LMN_PRE_GPT2, 0, 0},
    {"olmo", LMN_PRE_GPT2, 0, 0},
    {"jais", LMN_PRE_GPT2, 0, 0},
    {"trillion", LMN_PRE_GPT2, 0, 0},
    {"roberta-bpe", LMN_PRE_GPT2, 0, 0},
    {"qwen2", LMN_PRE_QWEN2, 0, 0},
    {"deepseek-r1-qwen", LMN_PRE_QWEN2, 0, 0},
    {"stablelm2", LMN_PRE_QWEN2, 0, 0},
    {"hunyuan", LMN_PRE_QWEN2, 0, 0},
    {"llama-bpe", LMN_PRE_LLAMA3, 1, 1},
    {"llama3", LMN_PRE_LLAMA3, 1, 1},
    {"llama-v3", LMN_PRE_LLAMA3, 1, 1},
    {"falcon3", LMN_PRE_LLAMA3, 1, 1},
    {"pixtral", LMN_PRE_LLAMA3, 1, 1},
    {"dbrx", LMN_PRE_LLAMA3, 0, 0},
    {"smaug-bpe", LMN_PRE_LLAMA3, 0, 0},
};

static const pre_name *pre_canonical(lmn_bpe_pre k) {
  for (size_t i = 0; i < sizeof pre_names / sizeof *pre_names; i++)
    if (pre_names[i].kind == k) return &pre_names[i];
  return &pre_names[0];
}

const char *lmn_bpe_pre_name(lmn_bpe_pre pre) {
  return pre_canonical(pre)->name;
}

int lmn_bpe_pre_ignore_merges(lmn_bpe_pre pre) {
  return pre_canonical(pre)->ignore_merges;
}

int lmn_bpe_pre_add_bos(lmn_bpe_pre pre) {
  return pre_canonical(pre)->add_bos;
}

/* ---------------------------------------------------------------- building from a file's parts */

/* Copies the token strings into one block and the types beside them. */
static int copy_tokens(bpe *b, const lmn_bpe_parts *p, lmn_err *err) {
  size_t total = 0;
  for (int32_t i = 0; i < p->n; i++) total += p->tokens[i].len; /* each bounded by its file's size */
  b->n = p->n;
  b->text = malloc(total ? total : 1);
  b->text_off = malloc(((size_t)p->n + 1) * sizeof *b->text_off);
  b->type = malloc((size_t)p->n);
  if (!b->text || !b->text_off || !b->type) return lmn_errf(err, "%s: tokenizer: out of memory", p->name);
  b->text_off[0] = 0;
  for (int32_t i = 0; i < p->n; i++) {
    memcpy(b->text + b->text_off[i], p->tokens[i].s, p->tokens[i].len);
    b->text_off[i + 1] = b->text_off[i] + p->tokens[i].len;
  }
  memcpy(b->type, p->types, (size_t)p->n);
  return 0;
}

static int is_special_type(int t) {
  return t == LMN_TOKTYPE_CONTROL || t == LMN_TOKTYPE_USER_DEFINED || t == LMN_TOKTYPE_UNKNOWN;
}

/* Decodes a normal token's string: each code point of bytes_to_unicode becomes its byte; anything else
 * (not UTF-8, or a code point outside the table) is kept as it is. Returns the length written to out. */
static size_t decode_text(const char *t, size_t n, char *out) {
  size_t m = 0;
  for (size_t i = 0; i < n;) {
    uint32_t c;
    size_t len = utf8_seq((const uint8_t *)t + i, n - i, &c);
    int v = len ? cp_byte(c) : -1;
    if (len == 0) len = 1;
    if (v >= 0)
      out[m++] = (char)v;
    else
      memcpy(out + m, t + i, len), m += len;
    i += len;
  }
  return m;
}

static int make_bytes(bpe *b, lmn_err *err) {
  size_t total = b->text_off[b->n];
  b->bytes = malloc(total ? total : 1); /* decoding never lengthens a string */
  b->bytes_off = malloc(((size_t)b->n + 1) * sizeof *b->bytes_off);
  if (!b->bytes || !b->bytes_off) return lmn_errf(err, "tokenizer: out of memory");
  b->bytes_off[0] = 0;
  for (int32_t i = 0; i < b->n; i++) {
    const char *t = b->text + b->text_off[i];
    size_t n = b->text_off[i + 1] - b->text_off[i], m;
    if (is_special_type(b->type[i]))
      memcpy(b->bytes + b->bytes_off[i], t, m = n);
    else
      m = decode_text(t, n, b->bytes + b->bytes_off[i]);
    b->bytes_off[i + 1] = b->bytes_off[i] + m;
  }
  return 0;
}

static size_t table_size(size_t n) {
  size_t s = 16;
  while (s < 2 * n) s *= 2;
  return s;
}

/* The string → id table; a string stored twice maps to its last id, as in llama.cpp's token_to_id. */
static int make_token_table(bpe *b, lmn_err *err) {
  size_t size = table_size((size_t)b->n);
  b->tok_slot = malloc(size * sizeof *b->tok_slot);
  if (!b->tok_slot) return lmn_errf(err, "tokenizer: out of memory");
  memset(b->tok_slot, 0xFF, size * sizeof *b->tok_slot);
  b->tok_mask = size - 1;
  for (int32_t id = 0; id < b->n; id++) {
    const char *s = b->text + b->text_off[id];
    size_t n = b->text_off[id + 1] - b->text_off[id], i = hash_bytes(s, n) & b->tok_mask;
    for (;; i = (i + 1) & b->tok_mask) {
      int32_t o = b->tok_slot[i];
      if (o < 0 || (b->text_off[o + 1] - b->text_off[o] == n && memcmp(b->text + b->text_off[o], s, n) == 0))
        break;
    }
    b->tok_slot[i] = id;
  }
  char u[2];
  for (unsigned v = 0; v < 256; v++) {
    b->byte_id[v] = token_id(b, u, byte_utf8(v, u));
    b->info.byte_missing[v] = b->byte_id[v] < 0;
    b->info.n_bytes_missing += b->byte_id[v] < 0;
  }
  return 0;
}

/* One merge of parts l and r: parts and result must be tokens, else the merge can never apply to this
 * vocabulary and is left out. The first (lowest) rank of a pair wins. */
static int add_merge(bpe *b, lmn_bpe_str ls, lmn_bpe_str rs, int32_t rank, char **buf, size_t *cap) {
  if (!ls.s || !rs.s) return 0;
  int32_t l = token_id(b, ls.s, ls.len), r = token_id(b, rs.s, rs.len);
  if (l < 0 || r < 0) return 0;
  if (grow((void **)buf, cap, ls.len + rs.len, 1) != 0) return -1;
  memcpy(*buf, ls.s, ls.len);
  memcpy(*buf + ls.len, rs.s, rs.len);
  int32_t res = token_id(b, *buf, ls.len + rs.len);
  if (res < 0) return 0;
  uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
  size_t i = hash_pair(key) & b->merge_mask;
  while (b->merge[i].rank >= 0 && b->merge[i].key != key) i = (i + 1) & b->merge_mask;
  if (b->merge[i].rank >= 0) return 0;
  b->merge[i] = (merge_slot){key, rank, res};
  b->n_merges++;
  return 0;
}

static int add_merges(bpe *b, const lmn_bpe_parts *p, lmn_err *err) {
  size_t size = table_size(p->n_merges);
  b->merge = malloc(size * sizeof *b->merge);
  if (!b->merge) return lmn_errf(err, "%s: merges: out of memory", p->name);
  for (size_t i = 0; i < size; i++) b->merge[i].rank = -1;
  b->merge_mask = size - 1;
  char *buf = NULL;
  size_t cap = 0;
  int rc = 0;
  for (size_t i = 0; i < p->n_merges && rc == 0; i++)
    if (add_merge(b, p->merges[2 * i], p->merges[2 * i + 1], (int32_t)i, &buf, &cap) != 0)
      rc = lmn_errf(err, "%s: merges: out of memory", p->name);
  free(buf);
  b->info.n_merges = b->n_merges;
  return rc;
}

/* Longest text first, then lowest id. qsort's context-free comparator gets the block through a pair. */
typedef struct spec_key {
  size_t len;
  int32_t id;
} spec_key;

static int spec_cmp(const void *x, const void *y) {
  const spec_key *a = x, *c = y;
  if (a->len != c->len) return a->len > c->len ? -1 : 1;
  return (a->id > c->id) - (a->id < c->id);
}

static int make_specials(bpe *b, lmn_err *err) {
  int32_t n = 0;
  for (int32_t i = 0; i < b->n; i++) n += is_special_type(b->type[i]) && b->text_off[i + 1] > b->text_off[i];
  spec_key *k = malloc(((size_t)n + 1) * sizeof *k);
  b->special = malloc(((size_t)n + 1) * sizeof *b->special);
  if (!k || !b->special) return free(k), lmn_errf(err, "tokenizer: out of memory");
  n = 0;
  for (int32_t i = 0; i < b->n; i++) {
    size_t len = b->text_off[i + 1] - b->text_off[i];
    if (is_special_type(b->type[i]) && len > 0) k[n++] = (spec_key){len, i};
  }
  qsort(k, (size_t)n, sizeof *k, spec_cmp);
  for (int32_t i = 0; i < n; i++) {
    b->special[i] = k[i].id;
    const char *text = b->bytes + b->bytes_off[k[i].id];
    if (memchr(text, '\n', b->bytes_off[k[i].id + 1] - b->bytes_off[k[i].id])) b->info.special_line_break = 1;
  }
  b->n_special = b->info.n_special = n;
  free(k);
  return 0;
}

int lmn_tokenizer_from_parts(lmn_tokenizer *t, const lmn_bpe_parts *p, lmn_err *err) {
  memset(t, 0, sizeof *t);
  bpe *b = calloc(1, sizeof *b);
  if (!b) return lmn_errf(err, "%s: out of memory", p->name);
  b->pre = p->pre;
  b->info = (lmn_bpe_info){.pre = lmn_bpe_pre_name(p->pre),
                           .add_bos = p->add_bos,
                           .add_eos = p->add_eos,
                           .unk = p->unk,
                           .pad = p->pad,
                           .eot = p->eot,
                           .ignore_merges = p->ignore_merges};
  if (copy_tokens(b, p, err) != 0 || make_bytes(b, err) != 0 || make_token_table(b, err) != 0 ||
      add_merges(b, p, err) != 0 || make_specials(b, err) != 0) {
    bpe_free(b);
    return -1;
  }
  t->ops = &bpe_ops;
  t->self = b;
  t->kind = LMN_TOK_BPE;
  t->vocab_size = b->n;
  t->bos = p->bos;
  t->eos = p->eos;
  return 0;
}

/* ---------------------------------------------------------------- the tokenizer.ggml.* keys of a GGUF file
 */

#define K_MODEL "tokenizer.ggml.model"
#define K_PRE "tokenizer.ggml.pre"
#define K_TOKENS "tokenizer.ggml.tokens"
#define K_TYPES "tokenizer.ggml.token_type"
#define K_MERGES "tokenizer.ggml.merges"

/* What the parts of a GGUF file point to (the strings stay in the open file). */
typedef struct gguf_store {
  lmn_bpe_str *tokens, *merges;
  uint8_t *types;
} gguf_store;

static int str_is(lmn_gguf_str s, const char *z) {
  return s.len == strlen(z) && memcmp(s.s, z, s.len) == 0;
}

static const pre_name *pre_find(lmn_gguf_str s) {
  for (size_t i = 0; i < sizeof pre_names / sizeof *pre_names; i++)
    if (str_is(s, pre_names[i].name)) return &pre_names[i];
  return NULL;
}

static int read_model(lmn_bpe_parts *p, const lmn_gguf *g, lmn_err *err) {
  const char *name = lmn_gguf_name(g);
  lmn_gguf_str s;
  if (lmn_gguf_get_str(g, K_MODEL, &s, err) != 0) return -1;
  if (!str_is(s, "gpt2"))
    return lmn_errf(err, "%s: key '" K_MODEL "': '%.*s' is not supported (only 'gpt2', byte-level BPE)", name,
                    (int)(s.len > 64 ? 64 : s.len), s.s);
  if (!lmn_gguf_find_kv(g, K_PRE))
    return lmn_errf(err, "%s: key '" K_PRE "' is missing (the pre-tokenizer must be named)", name);
  if (lmn_gguf_get_str(g, K_PRE, &s, err) != 0) return -1;
  const pre_name *pn = pre_find(s);
  if (!pn)
    return lmn_errf(err,
                    "%s: key '" K_PRE
                    "': pre-tokenizer '%.*s' is not supported (smollm, gpt-2, qwen2, "
                    "llama-bpe and their aliases are)",
                    name, (int)(s.len > 64 ? 64 : s.len), s.s);
  p->pre = pn->kind;
  p->ignore_merges = pn->ignore_merges;
  p->add_bos = pn->add_bos; /* tokenizer.ggml.add_bos_token overrides it */
  return 0;
}

static int read_tokens(lmn_bpe_parts *p, gguf_store *st, const lmn_gguf *g, lmn_err *err) {
  const char *name = lmn_gguf_name(g);
  lmn_gguf_vtype et;
  uint64_t n;
  if (lmn_gguf_get_arr(g, K_TOKENS, &et, &n, err) != 0) return -1;
  if (et != LMN_GGUF_STRING)
    return lmn_errf(err, "%s: key '" K_TOKENS "': an ARRAY of STRING is expected", name);
  if (n == 0 || n > LMN_BPE_MAX_VOCAB)
    return lmn_errf(err, "%s: key '" K_TOKENS "': %" PRIu64 " tokens (1 to %d expected)", name, n,
                    LMN_BPE_MAX_VOCAB);
  p->n = (int32_t)n;
  st->tokens = malloc(n * sizeof *st->tokens);
  if (!st->tokens) return lmn_errf(err, "%s: key '" K_TOKENS "': out of memory", name);
  for (uint64_t i = 0; i < n; i++) {
    lmn_gguf_str s;
    if (lmn_gguf_get_arr_str(g, K_TOKENS, i, &s, err) != 0) return -1;
    st->tokens[i] = (lmn_bpe_str){s.s, s.len};
  }
  p->tokens = st->tokens;
  return 0;
}

/* Token types: all NORMAL when the key is absent. */
static int read_types(lmn_bpe_parts *p, gguf_store *st, const lmn_gguf *g, lmn_err *err) {
  const char *name = lmn_gguf_name(g);
  p->types = st->types = malloc((size_t)p->n);
  if (!st->types) return lmn_errf(err, "%s: key '" K_TYPES "': out of memory", name);
  memset(st->types, LMN_TOKTYPE_NORMAL, (size_t)p->n);
  if (!lmn_gguf_find_kv(g, K_TYPES)) return 0;
  uint64_t n;
  if (lmn_gguf_get_arr(g, K_TYPES, NULL, &n, err) != 0) return -1;
  if (n != (uint64_t)p->n)
    return lmn_errf(err, "%s: key '" K_TYPES "': %" PRIu64 " types for %d tokens", name, n, (int)p->n);
  for (uint64_t i = 0; i < n; i++) {
    int64_t v;
    if (lmn_gguf_get_arr_int(g, K_TYPES, i, &v, err) != 0) return -1;
    if (v < LMN_TOKTYPE_NORMAL || v > LMN_TOKTYPE_BYTE)
      return lmn_errf(err, "%s: key '" K_TYPES "': token %" PRIu64 " has type %" PRId64 " (1 to 6 expected)",
                      name, i, v);
    st->types[i] = (uint8_t)v;
  }
  return 0;
}

/* Merges "left right", split at the first space after the first byte as llama.cpp does (one without such a
 * space can never apply and is left out). */
static int read_merges(lmn_bpe_parts *p, gguf_store *st, const lmn_gguf *g, lmn_err *err) {
  const char *name = lmn_gguf_name(g);
  lmn_gguf_vtype et;
  uint64_t n;
  if (lmn_gguf_get_arr(g, K_MERGES, &et, &n, err) != 0) return -1;
  if (et != LMN_GGUF_STRING)
    return lmn_errf(err, "%s: key '" K_MERGES "': an ARRAY of STRING is expected", name);
  if (n > LMN_BPE_MAX_MERGES)
    return lmn_errf(err, "%s: key '" K_MERGES "': %" PRIu64 " merges is too many", name, n);
  st->merges = malloc((2 * n + 1) * sizeof *st->merges);
  if (!st->merges) return lmn_errf(err, "%s: key '" K_MERGES "': out of memory", name);
  for (uint64_t i = 0; i < n; i++) {
    lmn_gguf_str s;
    if (lmn_gguf_get_arr_str(g, K_MERGES, i, &s, err) != 0) return -1;
    const char *sp = s.len > 1 ? memchr(s.s + 1, ' ', s.len - 1) : NULL;
    size_t ln = sp ? (size_t)(sp - s.s) : 0;
    st->merges[2 * i] = (lmn_bpe_str){sp ? s.s : NULL, ln};
    st->merges[2 * i + 1] = (lmn_bpe_str){sp ? sp + 1 : NULL, sp ? s.len - ln - 1 : 0};
  }
  p->n_merges = (size_t)n;
  p->merges = st->merges;
  return 0;
}

/* An optional token id key: -1 when absent, an error when outside the vocabulary. */
static int read_id(const lmn_gguf *g, const char *key, int32_t n, int32_t *out, lmn_err *err) {
  int64_t v;
  *out = -1;
  if (!lmn_gguf_find_kv(g, key)) return 0;
  if (lmn_gguf_get_int(g, key, 0, INT64_MAX, &v, err) != 0) return -1;
  if (v >= n)
    return lmn_errf(err, "%s: key '%s': token id %" PRId64 " is outside the vocabulary of %d tokens",
                    lmn_gguf_name(g), key, v, (int)n);
  *out = (int32_t)v;
  return 0;
}

static int read_flag(const lmn_gguf *g, const char *key, int *out, lmn_err *err) {
  if (!lmn_gguf_find_kv(g, key)) return 0;
  return lmn_gguf_get_bool(g, key, out, err);
}

static int read_special_ids(lmn_bpe_parts *p, const lmn_gguf *g, lmn_err *err) {
  if (read_id(g, "tokenizer.ggml.bos_token_id", p->n, &p->bos, err) != 0 ||
      read_id(g, "tokenizer.ggml.eos_token_id", p->n, &p->eos, err) != 0 ||
      read_id(g, "tokenizer.ggml.unknown_token_id", p->n, &p->unk, err) != 0 ||
      read_id(g, "tokenizer.ggml.padding_token_id", p->n, &p->pad, err) != 0 ||
      read_id(g, "tokenizer.ggml.eot_token_id", p->n, &p->eot, err) != 0)
    return -1;
  if (read_flag(g, "tokenizer.ggml.add_bos_token", &p->add_bos, err) != 0 ||
      read_flag(g, "tokenizer.ggml.add_eos_token", &p->add_eos, err) != 0)
    return -1;
  return 0;
}

int lmn_tokenizer_from_gguf(lmn_tokenizer *t, const lmn_gguf *g, lmn_err *err) {
  if (!t || !g) return lmn_errf(err, "tokenizer: no tokenizer or file given");
  memset(t, 0, sizeof *t);
  lmn_bpe_parts p = {.name = lmn_gguf_name(g)};
  gguf_store st = {0};
  int rc = read_model(&p, g, err) != 0 || read_tokens(&p, &st, g, err) != 0 ||
                   read_types(&p, &st, g, err) != 0 || read_merges(&p, &st, g, err) != 0 ||
                   read_special_ids(&p, g, err) != 0
               ? -1
               : lmn_tokenizer_from_parts(t, &p, err);
  free(st.tokens);
  free(st.types);
  free(st.merges);
  return rc;
}

int lmn_tokenizer_load_gguf(lmn_tokenizer *t, const char *path, lmn_err *err) {
  lmn_gguf *g;
  if (t) memset(t, 0, sizeof *t);
  if (!t || !path) return lmn_errf(err, "tokenizer: no tokenizer or path given");
  if (lmn_gguf_open(path, LMN_GGUF_META, &g, err) != 0) return -1;
  int rc = lmn_tokenizer_from_gguf(t, g, err);
  lmn_gguf_close(g);
  return rc;
}

static const bpe *as_bpe(const lmn_tokenizer *t) {
  return t && t->ops == &bpe_ops && t->self ? (const bpe *)t->self : NULL;
}

int lmn_tokenizer_bpe_info(const lmn_tokenizer *t, lmn_bpe_info *info) {
  const bpe *b = as_bpe(t);
  if (!b || !info) return -1;
  *info = b->info;
  return 0;
}

int lmn_tokenizer_token_type(const lmn_tokenizer *t, int32_t id) {
  const bpe *b = as_bpe(t);
  return b && id >= 0 && id < b->n ? b->type[id] : -1;
}

