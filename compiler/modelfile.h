/* modelfile.h: reading a model's hyper-parameters from its file header (GGUF metadata; for
 * safetensors the HF config.json beside it), without loading any tensor data. */
#ifndef LMNC_MODELFILE_H
#define LMNC_MODELFILE_H

#include "hparams.h"
#include "lmn_error.h"
#include "sema.h"

int modelfile_hparams(ModelSource source, const char *path, lmn_hparams *hp, lmn_err *err);

#endif
