/* emit.h: C code generation: `lmnc compile FILE -o DIR` writes DIR/NAME.h (the API and its manual),
 * DIR/NAME.c (forward, backward and cached decoding of exactly this network, widths as constants),
 * DIR/main.c and DIR/Makefile. */
#ifndef LMNC_EMIT_H
#define LMNC_EMIT_H

#include "ir.h"
#include "lmn_error.h"

/* root: the lmnet tree (holding runtime/ and lib/) the generated Makefile builds against. */
int emit_c(const Ir *ir, const char *source, const char *source_text, const char *dir, const char *root, lmn_err *err);

#endif
