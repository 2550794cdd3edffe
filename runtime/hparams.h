/* hparams.h: the hyper-parameters of one vertex model (architecture, widths, counts), shared by the
 * compiler (which reads them from a .lmn declaration or a model file's header) and the runtime (which
 * verifies a model file against them before loading weights). */
#ifndef LMN_HPARAMS_H
#define LMN_HPARAMS_H

typedef enum lmn_arch { LMN_ARCH_NONE = 0, LMN_ARCH_LLAMA, LMN_ARCH_QWEN2, LMN_ARCH_GPT2 } lmn_arch;

typedef struct lmn_hparams {
  lmn_arch arch;
  long dim;        /* hidden width d (n_embd) */
  long layers;     /* decoder blocks (block_count) */
  long heads;      /* query heads */
  long kv_heads;   /* key/value heads (GQA); == heads for gpt2 */
  long ffn;        /* MLP hidden width */
  long vocab;      /* vocabulary size */
  long ctx;        /* maximum positions (context_length) */
  double eps;      /* RMSNorm / LayerNorm epsilon */
  double rope_theta; /* RoPE base (llama, qwen2); unused for gpt2 */
  int tied;        /* 1 when the output head reuses the token embedding */
  int qkv_bias;    /* 1 when q/k/v projections carry biases (qwen2) */
} lmn_hparams;

/* "llama", "qwen2", "gpt2" or "none". */
const char *lmn_arch_name(lmn_arch arch);
/* Architecture from its name; LMN_ARCH_NONE when unknown. */
lmn_arch lmn_arch_from_name(const char *name);
/* Fills the defaults an architecture implies (eps, rope_theta, qkv_bias, kv_heads = heads for gpt2). */
void lmn_hparams_defaults(lmn_hparams *hp, lmn_arch arch);

#endif
