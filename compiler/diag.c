/* diag.c: printing of lmnc diagnostics with source line and caret, and the did-you-mean helper.
 * A diagnostic is assembled in a fixed buffer and written with one fwrite: stderr is unbuffered, so
 * character-by-character output would cost one write() per byte. */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void diag_init(Diag *d, const char *file, const char *src, FILE *out) {
  memset(d, 0, sizeof *d);
  d->file = file;
  d->src = src;
  d->out = out;
  d->max_errors = DIAG_MAX_ERRORS;
}

/* ---- an output buffer for one diagnostic -------------------------------------------------------- */

typedef struct Out {
  FILE *f;
  size_t n;
  char buf[4096];
} Out;

static void out_flush(Out *o) {
  if (o->n) fwrite(o->buf, 1, o->n, o->f);
  o->n = 0;
}

static void out_putc(Out *o, char c) {
  if (o->n == sizeof o->buf) out_flush(o);
  o->buf[o->n++] = c;
}

static void out_puts(Out *o, const char *s) {
  while (*s) out_putc(o, *s++);
}

static void out_vprintf(Out *o, const char *fmt, va_list ap) {
  va_list again;
  va_copy(again, ap);
  int k = vsnprintf(o->buf + o->n, sizeof o->buf - o->n, fmt, ap);
  if (k >= 0 && (size_t)k >= sizeof o->buf - o->n) { /* did not fit: flush, then write it whole */
    out_flush(o);
    if ((size_t)k < sizeof o->buf) k = vsnprintf(o->buf, sizeof o->buf, fmt, again);
    else vfprintf(o->f, fmt, again), k = 0;
  }
  va_end(again);
  if (k > 0) o->n += (size_t)k;
}

static void out_printf(Out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(Out *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  out_vprintf(o, fmt, ap);
  va_end(ap);
}

/* ---- source excerpts ---------------------------------------------------------------------------- */

/* Start and length of 1-based line `line` in the source, or NULL. Walks from the line looked up last (up or
 * down), so that a run of diagnostics on nearby lines does not rescan the file from its start. */
static const char *source_line(Diag *d, int line, int *len) {
  if (!d->src || line < 1) return NULL;
  const char *p = d->line_no ? d->line_at : d->src;
  int l = d->line_no ? d->line_no : 1;
  if (d->line_no == line) {
    *len = d->line_len;
    return p;
  }
  if (line < l - line) p = d->src, l = 1; /* nearer the start than the last line */
  for (; l > line; l--) {
    p--; /* the '\n' ending the line before */
    while (p > d->src && p[-1] != '\n') p--;
  }
  for (; l < line; l++) {
    p = strchr(p, '\n');
    if (!p) return NULL;
    p++;
  }
  const char *e = strchr(p, '\n');
  size_t n = e ? (size_t)(e - p) : strlen(p);
  *len = n > 0x7fffffff ? 0x7fffffff : (int)n;
  d->line_no = line, d->line_at = p, d->line_len = *len;
  return p;
}

/* Appends a stretch of a source line; control bytes show as '?', so that a binary file cannot garble the
 * terminal. */
static void put_source(Out *o, const char *s, int n) {
  for (int i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    out_putc(o, c == '\t' || (c >= 0x20 && c != 0x7f) ? (char)c : '?');
  }
}

/* The columns [*from, *to) of a line of `len` bytes shown for a caret at byte `at`: all of a short line, else
 * a window around the caret that starts and ends on whole UTF-8 characters. */
static void excerpt_window(const char *line, int len, int at, int *from, int *to) {
  int w = DIAG_SHOW_COLS - 6; /* room for "..." on both sides */
  *from = 0, *to = len;
  if (len <= DIAG_SHOW_COLS) return;
  *from = at - w / 3 > 0 ? at - w / 3 : 0;
  if (*from + w > len) *from = len - w;
  *to = *from + w;
  int a = *from, b = *to; /* bytes that are not UTF-8 may be continuation bytes all the way: then no moving */
  while (a > 0 && a < b && ((unsigned char)line[a] & 0xc0) == 0x80) a++;
  while (b > a && b < len && ((unsigned char)line[b] & 0xc0) == 0x80) b--;
  if (a < b) *from = a, *to = b;
}

static void put_excerpt(Diag *d, Out *o, Loc at) {
  int len;
  const char *line = source_line(d, at.line, &len);
  if (!line) return;
  if (len > 0 && line[len - 1] == '\r') len--;
  int col = at.col < 1 ? 1 : at.col, from, to;
  excerpt_window(line, len, col - 1, &from, &to);
  out_printf(o, "%5d | %s", at.line, from > 0 ? "..." : "");
  put_source(o, line + from, to - from);
  out_puts(o, to < len ? "...\n      | " : "\n      | ");
  if (from > 0) out_puts(o, "   ");
  for (int i = from + 1; i < col && i <= to; i++) out_putc(o, line[i - 1] == '\t' ? '\t' : ' ');
  out_putc(o, '^');
  int under = at.len;
  if (col - 1 + under > to) under = to - col + 1;
  for (int i = 1; i < under; i++) out_putc(o, '~');
  out_putc(o, '\n');
}

static void report(Diag *d, const char *kind, Loc at, const char *fmt, va_list ap) {
  Out o = {.f = d->out};
  if (at.line > 0) out_printf(&o, "%s:%d:%d: %s: ", d->file, at.line, at.col, kind);
  else out_printf(&o, "%s: %s: ", d->file, kind);
  out_vprintf(&o, fmt, ap);
  out_putc(&o, '\n');
  if (at.line > 0) put_excerpt(d, &o, at);
  out_flush(&o);
}

void diag_error(Diag *d, Loc at, const char *fmt, ...) {
  if (d->stopped) return;
  d->errors++;
  if (d->max_errors && d->errors > d->max_errors) {
    d->stopped = 1;
    fprintf(d->out, "%s: fatal error: too many errors emitted, stopping now\n", d->file);
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  report(d, "error", at, fmt, ap);
  va_end(ap);
}

void diag_warning(Diag *d, Loc at, const char *fmt, ...) {
  if (d->stopped) return;
  d->warnings++;
  va_list ap;
  va_start(ap, fmt);
  report(d, "warning", at, fmt, ap);
  va_end(ap);
}

void diag_note(Diag *d, Loc at, const char *fmt, ...) {
  if (d->stopped) return;
  va_list ap;
  va_start(ap, fmt);
  report(d, "note", at, fmt, ap);
  va_end(ap);
}

void diag_hint(Diag *d, const char *fmt, ...) {
  if (d->stopped) return;
  Out o = {.f = d->out};
  va_list ap;
  va_start(ap, fmt);
  out_puts(&o, "      = hint: ");
  out_vprintf(&o, fmt, ap);
  va_end(ap);
  out_putc(&o, '\n');
  out_flush(&o);
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
