/* k_embed.c: token embedding gather (plus GPT-2's learned positions) and its backward, a scatter-add into
 * the embedding table when it is trainable. */
#include "k_isa.h"
#include "kernels.h"

LMN_CLONES
int lmn_embed_forward(float *out, const int *tokens, const float *wte, const float *wpe, int B, int T, int C,
                      int V, int pos0) {
  int bad = 0;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      size_t n = (size_t)b * T + t;
      float *o = out + n * C;
      int tok = tokens[n];
      if (tok < 0 || tok >= V) {
        bad++;
        memset(o, 0, (size_t)C * sizeof *o);
      } else {
        memcpy(o, wte + (size_t)tok * C, (size_t)C * sizeof *o);
      }
      if (wpe) {
        const float *p = wpe + (size_t)(pos0 + t) * C;
        int j = 0;
        for (; j + LMN_VL <= C; j += LMN_VL) lmn_vstore(o + j, lmn_vload(o + j) + lmn_vload(p + j));
        for (; j < C; j++) o[j] += p[j];
      }
    }
  return bad;
}

LMN_CLONES
static void add_row(float *restrict d, const float *restrict s, int C) {
  int j = 0;
  for (; j + LMN_VL <= C; j += LMN_VL) lmn_vstore(d + j, lmn_vload(d + j) + lmn_vload(s + j));
  for (; j < C; j++) d[j] += s[j];
}

LMN_CLONES
void lmn_embed_backward(float *dwte, float *dwpe, const float *dout, const int *tokens, int B, int T, int C,
                        int V, int pos0) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      size_t n = (size_t)b * T + t;
      const float *d = dout + n * C;
      int tok = tokens[n];
      if (dwte && tok >= 0 && tok < V) add_row(dwte + (size_t)tok * C, d, C);
      if (dwpe) add_row(dwpe + (size_t)(pos0 + t) * C, d, C);
    }
}
