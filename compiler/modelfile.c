/* modelfile.c: hyper-parameters of a model file for the compiler: GGUF headers are read (metadata
 * only, no tensor data); a Hugging Face safetensors directory's config.json is read. */
#include "modelfile.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf.h"
#include "safetensors.h"

int modelfile_hparams(ModelSource source, const char *path, lmn_hparams *hp, lmn_err *err) {
  struct stat st;
  if (source == SRC_SAFETENSORS) {
    if (stat(path, &st) != 0) return lmn_errf(err, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
      return lmn_errf(err, "%s: not a directory (a Hugging Face model directory)", path);
    return lmn_hf_hparams(path, hp, err);
  }
  if (stat(path, &st) != 0) return lmn_errf(err, "%s: cannot open: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return lmn_errf(err, "%s: not a regular file", path);
  lmn_gguf *g = NULL;
  if (lmn_gguf_open(path, LMN_GGUF_META, &g, err) != 0) return -1;
  int rc = lmn_gguf_hparams(g, hp, err);
  lmn_gguf_close(g);
  return rc;
}
