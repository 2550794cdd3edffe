/* front.h: the front end in one call: read a .lmn file, parse it, check it, keep the diagnostics. */
#ifndef LMNC_FRONT_H
#define LMNC_FRONT_H

#include <stdio.h>

#include "ast.h"
#include "diag.h"
#include "sema.h"

typedef struct Front {
  char *src;     /* the file's bytes, NUL-terminated */
  size_t len;
  char *dir;     /* the file's directory */
  Program prog;
  Arena arena;   /* sema's allocations */
  Diag diag;
  Net net;
} Front;

#define FRONT_MAX_SOURCE (16 << 20)

/* Returns 0 when the network is valid, 1 when the input has errors, 2 when the file cannot be read. */
int front_load(Front *f, const char *path, FILE *diag_out);
/* Same from a buffer (tests, fuzzing); `name` stands for the file in diagnostics. */
int front_load_mem(Front *f, const char *name, const char *src, size_t len, FILE *diag_out);
void front_free(Front *f);

#endif
