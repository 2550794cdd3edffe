/* emit_int.h: what the three parts of C emission share: the printer state, buffer and parameter references.
 * emit_c.c prints the steps of forward, backward and decode; emit_tables.c the tables and descriptor;
 * emit_files.c the header, main.c, the Makefile and the files themselves. */
#ifndef LMNC_EMIT_INT_H
#define LMNC_EMIT_INT_H

#include <stdio.h>

#include "emit.h"
#include "schedule.h"

typedef enum { PH_FWD, PH_BWD, PH_DEC } Phase;

typedef struct Printer {
  const Sched *p;
  const Ir *ir;
  const Net *net;
  FILE *o;
  char **pname;    /* generated parameter index -> its enum name */
  const Layout *l; /* the layout of the function being printed */
  Phase phase;
  const char *out_dir;     /* the folder the code is written into */
  const char *source_text; /* the .lmn text compiled (kept in the description), or NULL */
  const char *ir_json;     /* ir_json_compact: what `NAME export` writes as network.json, or NULL */
} Printer;

/* The path from folder dir to target (a file that need not exist) as "../../models/x.gguf", worked out on the
 * absolute paths (dir through realpath, target lexically from the working directory); "" when dir does not
 * resolve. */
void relative_path(const char *dir, const char *target, char *buf, size_t n);
void out(Printer *pr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "NAME_P_..." of an IR parameter, or "-1". */
const char *pref(const Printer *pr, int ir_param);
/* The IR parameter of op with this role (and member/index for weights and biases), or -1. */
int op_role(const Ir *ir, const Op *op, ParamRole role, int member);

/* Tables (emit_tables.c). */
int emit_names(Printer *pr);
void emit_tables(Printer *pr);
void emit_desc(Printer *pr, const char *source);
/* Functions (emit_c.c). */
void emit_functions(Printer *pr);

#endif
