/* load.c: filling a compiled network's tensors from its model files: each GGUF is opened once (mapped),
 * its hyper-parameters are checked against the ones the network was compiled for, and every tensor that
 * comes from it is dequantised into the parameter buffer with its shape checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dequant.h"
#include "gguf.h"
#include "net.h"
#include "tokenizer.h"
#include "tokenizer_bpe.h"

/* Compares the file's hyper-parameters with the compiled ones, naming the first that differs. */
static int check_hparams(const char *path, const lmn_hparams *want, const lmn_hparams *got, lmn_err *err) {
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
      return lmn_errf(err, "%s: %s is %ld in the file but the network was compiled for %ld; recompile the .lmn file",
                      path, fields[i].key, fields[i].got, fields[i].want);
  return 0;
}

static void model_path(const lmn_model_info *m, const char *dir, char *buf, size_t n);

int lmn_net_tokenizer(const lmn_net_desc *desc, lmn_tokenizer *tok, lmn_err *err) {
  if (desc->tokenizer_model < 0 || desc->tokenizer_model >= desc->n_models) {
    if (desc->vocab != 256)
      return lmn_errf(err, "%s: a from-scratch vocabulary of %d tokens has no tokenizer (raw bytes need 256)",
                      desc->name, desc->vocab);
    lmn_tokenizer_init_bytes(tok);
    return 0;
  }
  char path[4096];
  model_path(&desc->models[desc->tokenizer_model], getenv("LMN_MODEL_DIR"), path, sizeof path);
  if (lmn_tokenizer_load_gguf(tok, path, err)) return -1;
  if (tok->vocab_size != desc->vocab) {
    lmn_tokenizer_free(tok);
    return lmn_errf(err, "%s: the tokenizer has %d tokens but the network was compiled for %d", path,
                    (int)tok->vocab_size, desc->vocab);
  }
  return 0;
}

static void model_path(const lmn_model_info *m, const char *dir, char *buf, size_t n) {
  const char *base = strrchr(m->path, '/');
  if (dir) snprintf(buf, n, "%s/%s", dir, base ? base + 1 : m->path);
  else snprintf(buf, n, "%s", m->path);
}

static int load_model(lmn_net *net, int mi, const char *dir, lmn_err *err) {
  const lmn_net_desc *d = net->desc;
  const lmn_model_info *m = &d->models[mi];
  char path[4096];
  model_path(m, dir, path, sizeof path);
  if (m->format != 1) return lmn_errf(err, "%s: only GGUF model files can be loaded so far", path);
  lmn_gguf *g = NULL;
  if (lmn_gguf_open(path, LMN_GGUF_MMAP, &g, err) != 0) return -1;
  lmn_hparams hp;
  int rc = lmn_gguf_hparams(g, &hp, err);
  if (rc == 0) rc = check_hparams(path, &m->hp, &hp, err);
  for (int i = 0; rc == 0 && i < d->n_params; i++) {
    const lmn_param_info *p = &d->params[i];
    if (!p->from_file || p->model != mi) continue;
    /* GGUF dims are the PyTorch shape reversed: ne0 = columns (or the vector length) */
    rc = lmn_gguf_load_f32(g, p->tensor, p->cols ? p->cols : p->rows, p->cols ? p->rows : 1, net->params + p->offset,
                           err);
  }
  lmn_gguf_close(g);
  return rc;
}

int lmn_net_load_models(lmn_net *net, const char *dir, uint64_t seed, lmn_err *err) {
  for (int mi = 0; mi < net->desc->n_models; mi++)
    if (load_model(net, mi, dir, err) != 0) return -1;
  lmn_net_init_derived(net, seed);
  return 0;
}
