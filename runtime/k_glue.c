/* k_glue.c: the small element-wise steps generated code runs between modules: adding buffers (edge sums and
 * their gradients), the fixed random prefix (its token and target arrays, its vectors added to the
 * embedding), and a classifier's last positions (gathered for the head, their gradient added back). */
#include <string.h>

#include "k_isa.h"
#include "kernels.h"

LMN_CLONES
void lmn_add(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void lmn_prefix_tokens(int32_t *tokens, int32_t *targets, const int32_t *tokens_in, const int32_t *targets_in, int B,
                       int T_in, int prefix) {
  int T = T_in + prefix;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      size_t at = (size_t)b * T + t, from = (size_t)b * T_in + (size_t)(t - prefix);
      tokens[at] = t < prefix ? -1 : tokens_in[from];
      if (targets) targets[at] = t < prefix || !targets_in ? -1 : targets_in[from];
    }
}

void lmn_prefix_add(float *y, const float *prefix_w, int B, int T, int pos0, int C, int prefix) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T && pos0 + t < prefix; t++)
      for (int c = 0; c < C; c++) y[((size_t)b * T + t) * C + c] += prefix_w[(size_t)(pos0 + t) * C + c];
}

void lmn_last_rows(float *dst, const float *src, int B, int T, int C) {
  for (int b = 0; b < B; b++) memcpy(dst + (size_t)b * C, src + ((size_t)b * T + T - 1) * C, sizeof(float) * (size_t)C);
}

void lmn_add_last_rows(float *dst, const float *src, int B, int T, int C) {
  for (int b = 0; b < B; b++)
    for (int c = 0; c < C; c++) dst[((size_t)b * T + T - 1) * C + c] += src[(size_t)b * C + c];
}
