/* parse.h: the interface between the flex scanner, the bison parser and the rest of lmnc. */
#ifndef LMNC_PARSE_H
#define LMNC_PARSE_H

#include "ast.h"
#include "diag.h"

typedef struct ParseCtx {
  Program *prog;
  Diag *diag;
  int depth;        /* open ( [ { : newlines inside brackets are insignificant */
  int eof_newline;  /* the scanner already returned the NEWLINE it adds before end of input */
  int line, col;    /* scanner position of the next character (1-based) */
} ParseCtx;

/* Parses `len` bytes of source into prog; diagnostics go to diag. Returns the number of syntax errors. */
int parse_source(Program *prog, Diag *diag, const char *src, size_t len);

#endif
