/* diag.c: printing of lmnc diagnostics with source line and caret, and the did-you-mean helper. */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void diag_init(Diag *d, const char *file, const char *src, FILE *out) {
  memset(d, 0, sizeof *d);
  d->file = file;
  d->src = src;
  d->out = out;
  d->max_errors = 50;
}

/* Start and length of 1-based line `line` in the source, or NULL. */
static const char *source_line(const Diag *d, int line, int *len) {
  if (!d->src || line < 1) return NULL;
  const char *p = d->src;
  for (int l = 1; l < line; l++) {
    p = strchr(p, '\n');
    if (!p) return NULL;
    p++;
  }
  const char *e = strchr(p, '\n');
  *len = e ? (int)(e - p) : (int)strlen(p);
  return p;
}

/* Prints a source line; a carriage return at its end is dropped and control bytes show as '?', so that
 * a binary or CRLF file cannot garble the terminal. */
static void print_source(Diag *d, const char *line, int len) {
  for (int i = 0; i < len; i++) {
    unsigned char c = (unsigned char)line[i];
    fputc(c == '\t' || (c >= 0x20 && c != 0x7f) ? c : '?', d->out);
  }
}

static void print_excerpt(Diag *d, Loc at) {
  int len;
  const char *line = source_line(d, at.line, &len);
  if (!line) return;
  if (len > 0 && line[len - 1] == '\r') len--;
  fprintf(d->out, "%5d | ", at.line);
  print_source(d, line, len);
  fprintf(d->out, "\n      | ");
  int col = at.col < 1 ? 1 : at.col;
  for (int i = 1; i < col && i <= len; i++) fputc(line[i - 1] == '\t' ? '\t' : ' ', d->out);
  fputc('^', d->out);
  int under = at.len;
  if (col - 1 + under > len) under = len - col + 1;
  for (int i = 1; i < under; i++) fputc('~', d->out);
  fputc('\n', d->out);
}

static void vreport(Diag *d, const char *kind, Loc at, const char *fmt, va_list ap) {
  if (at.line > 0) fprintf(d->out, "%s:%d:%d: %s: ", d->file, at.line, at.col, kind);
  else fprintf(d->out, "%s: %s: ", d->file, kind);
  vfprintf(d->out, fmt, ap);
  fputc('\n', d->out);
  if (at.line > 0) print_excerpt(d, at);
}

void diag_error(Diag *d, Loc at, const char *fmt, ...) {
  d->errors++;
  if (d->max_errors && d->errors > d->max_errors) return;
  va_list ap;
  va_start(ap, fmt);
  vreport(d, "error", at, fmt, ap);
  va_end(ap);
  if (d->max_errors && d->errors == d->max_errors)
    fprintf(d->out, "%s: note: too many errors; stopping here\n", d->file);
}

void diag_warning(Diag *d, Loc at, const char *fmt, ...) {
  d->warnings++;
  va_list ap;
  va_start(ap, fmt);
  vreport(d, "warning", at, fmt, ap);
  va_end(ap);
}

void diag_note(Diag *d, Loc at, const char *fmt, ...) {
  if (d->max_errors && d->errors > d->max_errors) return;
  va_list ap;
  va_start(ap, fmt);
  vreport(d, "note", at, fmt, ap);
  va_end(ap);
}

void diag_hint(Diag *d, const char *fmt, ...) {
  if (d->max_errors && d->errors > d->max_errors) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(d->out, "      = hint: ");
  vfprintf(d->out, fmt, ap);
  fputc('\n', d->out);
  va_end(ap);
}

int edit_distance(const char *a, const char *b, int cap) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (abs(la - lb) > cap) return cap + 1;
  if (lb > 63) return cap + 1;
  int prev[64], cur[64];
  for (int j = 0; j <= lb; j++) prev[j] = j;
  for (int i = 1; i <= la; i++) {
    cur[0] = i;
    int row_min = cur[0];
    for (int j = 1; j <= lb; j++) {
      int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
      int del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
      if (cur[j] < row_min) row_min = cur[j];
    }
    if (row_min > cap) return cap + 1;
    memcpy(prev, cur, sizeof(int) * (size_t)(lb + 1));
  }
  return prev[lb];
}

const char *closest_name(const char *name, const char *const *cands, int n) {
  int cap = strlen(name) < 4 ? 1 : 2;
  const char *best = NULL;
  int best_d = cap + 1;
  for (int i = 0; i < n; i++) {
    if (!cands[i] || strcmp(cands[i], name) == 0) continue;
    int dist = edit_distance(name, cands[i], cap);
    if (dist < best_d) best_d = dist, best = cands[i];
  }
  return best;
}
