/* hparams.c: architecture names and defaults for lmn_hparams. */
#include "hparams.h"

#include <string.h>

static const char *const arch_names[] = {"none", "llama", "qwen2", "gpt2"};

const char *lmn_arch_name(lmn_arch arch) {
  return (arch >= LMN_ARCH_NONE && arch <= LMN_ARCH_GPT2) ? arch_names[arch] : "none";
}

lmn_arch lmn_arch_from_name(const char *name) {
  for (int a = LMN_ARCH_LLAMA; a <= LMN_ARCH_GPT2; a++)
    if (strcmp(name, arch_names[a]) == 0) return (lmn_arch)a;
  return LMN_ARCH_NONE;
}

void lmn_hparams_defaults(lmn_hparams *hp, lmn_arch arch) {
  memset(hp, 0, sizeof *hp);
  hp->arch = arch;
  hp->eps = arch == LMN_ARCH_QWEN2 ? 1e-6 : 1e-5;
  hp->rope_theta = arch == LMN_ARCH_QWEN2 ? 1000000.0 : 10000.0;
  hp->qkv_bias = arch == LMN_ARCH_QWEN2;
  hp->tied = 1;
}
