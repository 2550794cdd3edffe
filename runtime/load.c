/* load.c: filling a compiled network's tensors from its model files: each GGUF is opened once (mapped),
 * its hyper-parameters are checked against the ones the network was compiled for, and every tensor that
 * comes from it is dequantised into the parameter buffer with its shape checked, except the frozen matrices,
 * which stay in the file's format (qnet.h: the file then stays mapped). A Hugging Face directory
 * (config.json + model.safetensors, or model-XXXXX-of-YYYYY.safetensors shards) is checked the same way;
 * each GGUF tensor name is mapped to its HF name, llama q/k rows are permuted into GGUF order and gpt2
 * Conv1D weights ([in, out]) are transposed. */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat.h"
#include "dequant.h"
#include "gguf.h"
#include "lmn_file.h"
#include "modules.h"
#include "net.h"
#include "qnet.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "tokenizer_bpe.h"

#define LMN_CTX_MAX 16777216L /* the most positions a model may have (the compiler's limit on `ctx`) */

/* a and b agree as floats do: relative difference within a few float roundings. */
static int close_enough(double a, double b) {
  return fabs(a - b) <= 1e-6 * fmax(fabs(a), fabs(b));
}

/* The file's context length: at least the positions the network uses (its sequences plus its prefix), and
 * not beyond what any model has (a corrupt header, or a value meant as "unlimited"). */
static int check_ctx(const char *path, const lmn_net_desc *d, long got, lmn_err *err) {
  long used = (long)d->ctx + d->prefix;
  if (got > LMN_CTX_MAX)
    return lmn_errf(err,
                    "%s: context_length %ld in the file is beyond the %ld positions a model may have: the "
                    "header is corrupt",
                    LMN_SHORT(path), got, LMN_CTX_MAX);
  if (got < used)
    return lmn_errf(err,
                    "%s: context_length %ld in the file is shorter than the %ld positions network '%s' "
                    "uses; recompile the .lmn file",
                    LMN_SHORT(path), got, used, d->name);
  return 0;
}

/* Compares the file's hyper-parameters with the compiled ones, naming the first that differs: the integers
 * exactly, the context length as check_ctx says, eps and rope_theta (not used by gpt2) within float
 * tolerance. */
static int check_hparams(const char *path, const lmn_net_desc *d, const lmn_hparams *want,
                         const lmn_hparams *got, lmn_err *err) {
  struct {
    const char *key;
    long want, got;
  } fields[] = {{"architecture", want->arch, got->arch}, {"dim", want->dim, got->dim},
                {"layers", want->layers, got->layers},   {"heads", want->heads, got->heads},
                {"kv_heads", want->kv_heads, got->kv_heads}, {"ffn", want->ffn, got->ffn},
                {"vocab", want->vocab, got->vocab},      {"tied", want->tied, got->tied},
                {"qkv_bias", want->qkv_bias, got->qkv_bias}};
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
    if (fields[i].want != fields[i].got)
      return lmn_errf(
          err, "%s: %s is %ld in the file but the network was compiled for %ld; recompile the .lmn file",
          LMN_SHORT(path), fields[i].key, fields[i].got, fields[i].want);
  if (check_ctx(path, d, got->ctx, err)) return -1;
  struct {
    const char *key;
    double want, got;
  } reals[] = {{"eps", want->eps, got->eps}, {"rope_theta", want->rope_theta, got->rope_theta}};
  for (size_t i = 0; i < (got->arch == LMN_ARCH_GPT2 ? 1u : 2u); i++)
    if (!close_enough(reals[i].want, reals[i].got))
      return lmn_errf(err,
                      "%s: %s is %g in the file but the network was compiled for %g; recompile the .lmn file",
                      LMN_SHORT(path), reals[i].key, reals[i].got, reals[i].want);
  return 0;
}

/* Where the network's tokenizer comes from: the file of a borrowed one (`tokenizer "PATH"`), else the file
 * of the model whose embedding reads the tokens; NULL: neither (raw bytes). */
static const lmn_model_info *tokenizer_source(const lmn_net_desc *d) {
  if (d->tokenizer) return d->tokenizer;
  if (d->tokenizer_model >= 0 && d->tokenizer_model < d->n_models) return &d->models[d->tokenizer_model];
  return NULL;
}

/* The tokenizer's vocabulary against the network's: a model's own GGUF tokenizer has exactly its vocabulary;
 * a borrowed one, or a Hugging Face directory's (whose embedding may have padding rows: Qwen2 has 151,936
 * for 151,665 tokens), may have fewer, and the ids beyond are never produced. */
static int check_vocab(const lmn_net_desc *d, const lmn_model_info *m, const char *path, int32_t n,
                       lmn_err *err) {
  if (!d->tokenizer && m->format == 1 && n != d->vocab)
    return lmn_errf(err, "%s: the tokenizer has %d tokens but the network was compiled for %d", path, (int)n,
                    d->vocab);
  if (n > d->vocab)
    return lmn_errf(err,
                    "%s: the tokenizer has %d tokens, more than the vocabulary of %d that network '%s' "
                    "was compiled for",
                    path, (int)n, d->vocab, d->name);
  return 0;
}

int lmn_net_tokenizer(const lmn_net_desc *desc, lmn_tokenizer *tok, lmn_err *err) {
  const lmn_model_info *m = tokenizer_source(desc);
  if (!m) {
    if (desc->vocab != 256)
      return lmn_errf(
          err,
          "%s: a from-scratch vocabulary of %d tokens has no tokenizer (raw bytes need 256; borrow "
          "one with `tokenizer \"FILE\"` on the model)",
          desc->name, desc->vocab);
    lmn_tokenizer_init_bytes(tok);
    return 0;
  }
  char path[4096];
  const char *dir = getenv("LMN_MODEL_DIR");
  lmn_model_path(m, dir, path, sizeof path);
  if (lmn_model_check_exists(desc, m, dir, path, err)) return -1;
  if (m->format != 1 && m->format != 2)
    return lmn_errf(err, "%s: unknown tokenizer file format %d", path, m->format);
  if ((m->format == 2 ? lmn_tokenizer_load_hf(tok, path, err) : lmn_tokenizer_load_gguf(tok, path, err)) != 0)
    return -1;
  if (check_vocab(desc, m, path, tok->vocab_size, err) != 0) {
    lmn_tokenizer_free(tok);
    return -1;
  }
  return 0;
}

int lmn_net_chat_template(const lmn_net_desc *desc, lmn_chat_template *t, lmn_err *err) {
  const lmn_model_info *m = tokenizer_source(desc);
  if (!m)
    return lmn_errf(err, "%s: a byte-level network has no chat template (chat needs a model file with one)",
                    desc->name);
  char path[4096];
  const char *dir = getenv("LMN_MODEL_DIR");
  lmn_model_path(m, dir, path, sizeof path);
  if (lmn_model_check_exists(desc, m, dir, path, err)) return -1;
  if (m->format == 2) return lmn_chat_template_hf(path, t, err);
  lmn_gguf *g = NULL;
  if (lmn_gguf_open(path, LMN_GGUF_META, &g, err)) return -1;
  lmn_gguf_str s;
  int rc = 0;
  if (!lmn_gguf_find_kv(g, "tokenizer.chat_template"))
    rc = lmn_errf(err, "%s: the model has no chat template (tokenizer.chat_template); use generate", path);
  else if (lmn_gguf_get_str(g, "tokenizer.chat_template", &s, err) == 0)
    rc = lmn_chat_template_parse(s.s, s.len, path, t, err);
  else
    rc = -1;
  lmn_gguf_close(g);
  return rc;
}

/* m->from_build from the folder of the running executable into buf; 0 when there is no such path. */
static int beside_executable(const lmn_model_info *m, char *buf, size_t n) {
  char exe[4096];
  ssize_t len = m->from_build && m->from_build[0] ? readlink("/proc/self/exe", exe, sizeof exe - 1) : -1;
  if (len <= 0) return 0;
  exe[len] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash) return 0;
  *slash = '\0';
  return snprintf(buf, n, "%s/%s", exe, m->from_build) < (int)n;
}

void lmn_model_path(const lmn_model_info *m, const char *dir, char *buf, size_t n) {
  const char *base = strrchr(m->path, '/');
  if (dir) {
    snprintf(buf, n, "%s/%s", dir, base ? base + 1 : m->path);
    return;
  }
  if (m->path[0] != '/' && beside_executable(m, buf, n) && access(buf, F_OK) == 0) return;
  snprintf(buf, n, "%s", m->path);
}

int lmn_model_check_exists(const lmn_net_desc *d, const lmn_model_info *m, const char *dir, const char *path,
                           lmn_err *err) {
  if (access(path, F_OK) == 0) return 0;
  char what[200];
  snprintf(what, sizeof what, "%s '%s'", m == d->tokenizer ? "the tokenizer of model" : "model", m->name);
  if (dir)
    return lmn_errf(err,
                    "%s: no such file: %s of network '%s' looked for in %s, which --model-dir or "
                    "$LMN_MODEL_DIR names",
                    path, what, d->name, dir);
  char beside[4096] = "";
  if (m->path[0] != '/' && beside_executable(m, beside, sizeof beside))
    return lmn_errf(err,
                    "%s: no such file: %s of network '%s' (compiled from %s) is neither at %s (beside "
                    "the executable) nor at %s (from the working directory); give its folder with "
                    "--model-dir DIR or $LMN_MODEL_DIR",
                    path, what, d->name, d->source ? d->source : "?", beside, m->path);
  return lmn_errf(err,
                  "%s: no such file: %s of network '%s' (compiled from %s); give its folder with "
                  "--model-dir DIR or $LMN_MODEL_DIR",
                  path, what, d->name, d->source ? d->source : "?");
}

static int load_hf(lmn_net *net, int mi, const char *path, lmn_err *err);

static int load_model(lmn_net *net, int mi, const char *dir, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  const lmn_model_info *m = &d->models[mi];
  char path[4096];
  lmn_model_path(m, dir, path, sizeof path);
  if (lmn_model_check_exists(d, m, dir, path, err)) return -1;
  if (m->format == 2) return load_hf(net, mi, path, err);
  if (m->format != 1) return lmn_errf(err, "%s: unknown model file format %d", path, m->format);
  lmn_gguf *g = NULL;
  if (lmn_gguf_open(path, LMN_GGUF_MMAP, &g, err) != 0) return -1;
  lmn_hparams hp;
  int rc = lmn_gguf_hparams(g, &hp, err);
  if (rc == 0) rc = check_hparams(path, d, &m->hp, &hp, err);
  int mapped = 0;
  for (int i = 0; rc == 0 && i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    if (!p->from_file || p->model != mi) continue;
    if (lmn_param_kept(d, i)) {
      rc = lmn_qnet_take_gguf(net, i, g, path, &mapped, err);
      continue;
    }
    /* GGUF dims are the PyTorch shape reversed: ne0 = columns (or the vector length) */
    float *x = net->params + net->poff[i];
    rc = lmn_gguf_load_f32(g, p->tensor, p->cols ? p->cols : p->rows, p->cols ? p->rows : 1, x, err);
    /* a NaN or an infinity in a weight: a corrupt file, said now rather than as a NaN loss later */
    if (rc == 0)
      rc = lmn_check_finite(x, (size_t)p->rows * (size_t)(p->cols ? p->cols : 1), path, p->tensor, err);
  }
  if (rc == 0 && mapped)
    net->files[mi] = g; /* frozen weights point into it: closed with the network */
  else
    lmn_gguf_close(g);
  return rc;
}

int lmn_net_load_models(lmn_net *net, const char *dir, uint64_t seed, lmn_err *err) {
  for (int mi = 0; mi < net->desc->n_models; mi++)
    if (load_model(net, mi, dir, err) != 0) return -1;
  lmn_net_init_derived(net, seed);
  return 0;
}

/* ---------------------------------------------------------------- Hugging Face directories */

enum { HF_MAX_SHARDS = 256 };

typedef struct hf_files {
  lmn_st *st[HF_MAX_SHARDS];
  int n;
} hf_files;

static void hf_close(hf_files *f) {
  for (int i = 0; i < f->n; i++) lmn_st_close(f->st[i]);
  f->n = 0;
}

/* DIR/model.safetensors, else every DIR/model-*-of-*.safetensors shard (mapped). */
static int hf_open(const char *dir, hf_files *f, lmn_err *err) {
  char one[4200], pat[4200];
  snprintf(one, sizeof one, "%s/model.safetensors", dir);
  f->n = 0;
  if (access(one, F_OK) == 0)
    return lmn_st_open(one, LMN_ST_MMAP, &f->st[f->n++], err) == 0 ? 0 : (f->n = 0, -1);
  snprintf(pat, sizeof pat, "%s/model-*-of-*.safetensors", dir);
  glob_t g;
  if (glob(pat, 0, NULL, &g) != 0)
    return lmn_errf(err, "%s: no model.safetensors and no model-*-of-*.safetensors shards", dir);
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) {
    if (f->n == HF_MAX_SHARDS)
      rc = lmn_errf(err, "%s: more than %d shards", dir, HF_MAX_SHARDS);
    else if (lmn_st_open(g.gl_pathv[i], LMN_ST_MMAP, &f->st[f->n], err) != 0)
      rc = -1;
    else
      f->n++;
  }
  globfree(&g);
  if (rc != 0) hf_close(f);
  return rc;
}

/* The shard that holds name (NULL when none). */
static const lmn_st *hf_find(const hf_files *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (lmn_st_find(f->st[i], name)) return f->st[i];
  return NULL;
}

/* How a tensor is stored in HF layout relative to ours. */
typedef enum hf_fix { HF_AS_IS = 0, HF_PERMUTE_Q, HF_PERMUTE_K, HF_TRANSPOSE } hf_fix;

typedef struct hf_rule {
  const char *gguf, *hf;
  hf_fix fix;
} hf_rule;

static const hf_rule llama_top[] = {{"token_embd.weight", "model.embed_tokens.weight", HF_AS_IS},
                                    {"output_norm.weight", "model.norm.weight", HF_AS_IS},
                                    {"output.weight", "lm_head.weight", HF_AS_IS},
                                    {NULL, NULL, HF_AS_IS}};
static const hf_rule gpt2_top[] = {{"token_embd.weight", "wte.weight", HF_AS_IS},
                                   {"position_embd.weight", "wpe.weight", HF_AS_IS},
                                   {"output_norm.weight", "ln_f.weight", HF_AS_IS},
                                   {"output_norm.bias", "ln_f.bias", HF_AS_IS},
                                   {NULL, NULL, HF_AS_IS}};

/* HF names of the block members inside "model.layers.N." (llama/qwen2) and "h.N." (gpt2), from modules.h's
 * member list ("": the architecture has no such tensor). */
#define HF_BLK_NAMES_(m, gguf, hf, hf_gpt2) {hf, hf_gpt2},
static const char *const hf_blk_names[LMN_BM_COUNT][2] = {LMN_BLOCK_MEMBER_LIST(HF_BLK_NAMES_)};
#undef HF_BLK_NAMES_

/* How a block member is stored in HF layout: llama q/k rows (weights and biases) are interleaved differently,
 * gpt2's Conv1D weights (every 2-D one) are transposed. */
static hf_fix hf_blk_fix(int m, int gpt2) {
  if (gpt2)
    return m == LMN_BM_wqkv || m == LMN_BM_wo || m == LMN_BM_w_up || m == LMN_BM_w_down ? HF_TRANSPOSE
                                                                                        : HF_AS_IS;
  if (m == LMN_BM_wq || m == LMN_BM_bq) return HF_PERMUTE_Q;
  return m == LMN_BM_wk || m == LMN_BM_bk ? HF_PERMUTE_K : HF_AS_IS;
}

/* The member with GGUF name `name` (inside "blk.N.") that the architecture has, or -1. */
static int hf_blk_member(const char *name, int gpt2) {
  for (int m = 0; m < LMN_BM_COUNT; m++)
    if (strcmp(lmn_block_member_gguf[m], name) == 0) return hf_blk_names[m][gpt2][0] ? m : -1;
  return -1;
}

static const hf_rule *hf_rule_find(const hf_rule *r, const char *gguf) {
  for (; r->gguf; r++)
    if (strcmp(r->gguf, gguf) == 0) return r;
  return NULL;
}

/* GGUF name -> HF name (without gpt2's optional "transformer." prefix) and fix; -1 when unknown. */
static int hf_name(lmn_arch arch, const char *gguf, char *out, size_t n, hf_fix *fix) {
  static const hf_rule gpt2_head = {"output.weight", "lm_head.weight", HF_AS_IS};
  int gpt2 = arch == LMN_ARCH_GPT2;
  unsigned long blk = 0;
  int used = 0;
  if (sscanf(gguf, "blk.%lu.%n", &blk, &used) == 1 && used > 0) {
    int m = hf_blk_member(gguf + used, gpt2);
    if (m < 0) return -1;
    snprintf(out, n, gpt2 ? "h.%lu.%s" : "model.layers.%lu.%s", blk, hf_blk_names[m][gpt2]);
    *fix = hf_blk_fix(m, gpt2);
  } else {
    const hf_rule *r = hf_rule_find(gpt2 ? gpt2_top : llama_top, gguf);
    if (!r && gpt2 && strcmp(gguf, gpt2_head.gguf) == 0) r = &gpt2_head;
    if (!r) return -1;
    snprintf(out, n, "%s", r->hf);
    *fix = r->fix;
  }
  if (arch != LMN_ARCH_LLAMA && (*fix == HF_PERMUTE_Q || *fix == HF_PERMUTE_K))
    *fix = HF_AS_IS; /* qwen2: NEOX */
  return 0;
}

/* HF q/k rows -> GGUF rows per head (formats.md 1.6): gguf[h*hd + 2j] = hf[h*hd + j],
 * gguf[h*hd + 2j + 1] = hf[h*hd + hd/2 + j]; cols = 1 for a bias. */
static void hf_permute(const float *src, float *dst, long rows, long cols, long n_head) {
  long hd = rows / n_head, c = cols ? cols : 1;
  for (long h = 0; h < n_head; h++)
    for (long j = 0; j < hd / 2; j++) {
      memcpy(dst + (h * hd + 2 * j) * c, src + (h * hd + j) * c, sizeof(float) * (size_t)c);
      memcpy(dst + (h * hd + 2 * j + 1) * c, src + (h * hd + hd / 2 + j) * c, sizeof(float) * (size_t)c);
    }
}

/* Conv1D [in = cols, out = rows] -> [rows, cols]. */
static void hf_transpose(const float *src, float *dst, long rows, long cols) {
  for (long i = 0; i < cols; i++)
    for (long o = 0; o < rows; o++) dst[o * cols + i] = src[i * rows + o];
}

/* Loads one HF tensor into dst ([rows, cols] ours), through a temporary when it must be rearranged. */
static int hf_load(const lmn_st *st, const char *name, const lmn_param_info *p, hf_fix fix,
                   const lmn_hparams *hp, float *dst, lmn_err *err) {
  long heads = fix == HF_PERMUTE_Q ? hp->heads : hp->kv_heads;
  int64_t shape[2] = {p->rows, p->cols};
  if (fix == HF_TRANSPOSE) shape[0] = p->cols, shape[1] = p->rows;
  uint32_t nd = p->cols ? 2 : 1;
  if (fix == HF_AS_IS) return lmn_st_load_f32(st, name, nd, shape, dst, err);
  if (fix == HF_TRANSPOSE && !p->cols)
    return lmn_errf(err, "%s: tensor '%s': expected a matrix", lmn_st_name(st), name);
  if (fix != HF_TRANSPOSE && (p->rows % heads != 0 || (p->rows / heads) % 2 != 0))
    return lmn_errf(err, "%s: tensor '%s': %ld rows do not split into %ld heads of even size",
                    lmn_st_name(st), name, p->rows, heads);
  size_t count = (size_t)p->rows * (size_t)(p->cols ? p->cols : 1);
  float *tmp = malloc(sizeof(float) * count);
  if (!tmp) return lmn_errf(err, "%s: tensor '%s': out of memory", lmn_st_name(st), name);
  int rc = lmn_st_load_f32(st, name, nd, shape, tmp, err);
  if (rc == 0 && fix == HF_TRANSPOSE)
    hf_transpose(tmp, dst, p->rows, p->cols);
  else if (rc == 0)
    hf_permute(tmp, dst, p->rows, p->cols, heads);
  free(tmp);
  return rc;
}

/* One parameter: its HF name (gpt2 files may prefix "transformer."), the shard holding it, the load. */
static int hf_param(const hf_files *f, const char *dir, const lmn_param_info *p, const lmn_hparams *hp,
                    float *dst, lmn_err *err) {
  char name[300], prefixed[320];
  hf_fix fix;
  if (hf_name(hp->arch, p->tensor, name, sizeof name, &fix) != 0)
    return lmn_errf(err, "%s: tensor '%s' has no Hugging Face %s name", dir, p->tensor,
                    lmn_arch_name(hp->arch));
  snprintf(prefixed, sizeof prefixed, "transformer.%s", name);
  const lmn_st *st = hf_find(f, name);
  const char *use = name;
  if (!st && hp->arch == LMN_ARCH_GPT2 && (st = hf_find(f, prefixed)) != NULL) use = prefixed;
  if (!st) return lmn_errf(err, "%s: tensor '%s' (for '%s') not found", dir, name, p->tensor);
  return hf_load(st, use, p, fix, hp, dst, err);
}

/* Tensors the blocks cannot use (llama o_proj bias) are an error rather than silently dropped. */
static int hf_extra(const hf_files *f, const char *dir, const lmn_hparams *hp, lmn_err *err) {
  if (hp->arch != LMN_ARCH_GPT2 && hf_find(f, "model.layers.0.self_attn.o_proj.bias"))
    return lmn_errf(
        err, "%s: tensor 'model.layers.0.self_attn.o_proj.bias': output projection biases are not supported",
        dir);
  return 0;
}

static int load_hf(lmn_net *net, int mi, const char *path, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  lmn_hparams hp;
  char cfg[4200];
  snprintf(cfg, sizeof cfg, "%s/config.json", path);
  if (lmn_hf_hparams(path, &hp, err) != 0 || check_hparams(cfg, d, &d->models[mi].hp, &hp, err) != 0)
    return -1;
  hf_files f;
  if (hf_open(path, &f, err) != 0) return -1;
  int rc = hf_extra(&f, path, &hp, err);
  for (int i = 0; rc == 0 && i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    if (!p->from_file || p->model != mi) continue;
    size_t n = (size_t)p->rows * (size_t)(p->cols ? p->cols : 1);
    int kept = lmn_param_kept(d, i);
    float *x = kept ? malloc(n * sizeof *x) : net->params + net->poff[i];
    if (!x) {
      rc = lmn_errf(err, "%s: tensor '%s': out of memory", LMN_SHORT(path), p->tensor);
      break;
    }
    rc = hf_param(&f, path, p, &hp, x, err);
    if (rc == 0) /* a NaN or an infinity in a weight: a corrupt file (the tensor names its shard) */
      rc = lmn_check_finite(x, n, path, p->tensor, err);
    if (kept) rc = rc == 0 ? lmn_qnet_take_f32(net, i, x, err) : (free(x), rc);
  }
  hf_close(&f);
  return rc;
}
