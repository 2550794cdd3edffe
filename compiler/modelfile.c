/* modelfile.c: hyper-parameters of a model file for the compiler: GGUF headers are read (metadata
 * only, no tensor data); safetensors directories need an inline declaration for now. */
#include "modelfile.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf.h"

int modelfile_hparams(ModelSource source, const char *path, lmn_hparams *hp, lmn_err *err) {
  if (source == SRC_SAFETENSORS)
    return lmn_errf(err, "%s: reading config.json is not supported by lmnc yet; declare the hyper-parameters", path);
  struct stat st;
  if (stat(path, &st) != 0) return lmn_errf(err, "%s: cannot open: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return lmn_errf(err, "%s: not a regular file", path);
  lmn_gguf *g = NULL;
  if (lmn_gguf_open(path, LMN_GGUF_META, &g, err) != 0) return -1;
  int rc = lmn_gguf_hparams(g, hp, err);
  lmn_gguf_close(g);
  return rc;
}
