/* diag.h: gcc/clang-style diagnostics for lmnc: `file:line:col: error: message`, the source line
 * (shortened around the caret when it is long), a caret under the offending range, then optional
 * `note:` / `hint:` lines. Each diagnostic is built in memory and written with one fwrite. Counts errors
 * and warnings; after max_errors errors it prints one fatal line and stops (diag_stopped() turns true, and
 * the parser and sema stop early). Also the edit-distance helper behind "did you mean". */
#ifndef LMNC_DIAG_H
#define LMNC_DIAG_H

#include <stdio.h>

typedef struct Loc {
  int line, col; /* 1-based; line 0 means "no position" */
  int len;       /* columns to underline (>= 1) */
} Loc;

static inline Loc loc_make(int line, int col, int len) {
  Loc l = {line, col, len < 1 ? 1 : len};
  return l;
}

#define DIAG_MAX_ERRORS 100 /* the default of max_errors */
#define DIAG_SHOW_COLS 200  /* a longer source line is shown as a window around the caret */

typedef struct Diag {
  const char *file;   /* path as the user wrote it */
  const char *src;    /* whole source text (NUL-terminated), may be NULL */
  FILE *out;          /* where diagnostics go (stderr) */
  int errors, warnings;
  int max_errors;     /* stop after this many errors (0 = unlimited) */
  int stopped;        /* too many errors: nothing more is reported */
  int line_no;        /* the last source line looked up (0 = none), its start and length: */
  const char *line_at;/* consecutive diagnostics on nearby lines cost no rescan of the source */
  int line_len;
} Diag;

void diag_init(Diag *d, const char *file, const char *src, FILE *out);
/* Whether the error limit was reached: callers stop their work. */
static inline int diag_stopped(const Diag *d) { return d->stopped; }
void diag_error(Diag *d, Loc at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(Diag *d, Loc at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A note or hint attached to the previous error/warning; printed with its own location when at.line > 0. */
void diag_note(Diag *d, Loc at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_hint(Diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Levenshtein distance, capped: returns cap+1 once the distance exceeds cap. */
int edit_distance(const char *a, const char *b, int cap);
/* The closest of n candidate names to `name` (within a distance that scales with its length), or NULL. */
const char *closest_name(const char *name, const char *const *cands, int n);

#endif
