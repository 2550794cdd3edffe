/* lmn_error.c: formatting of lmn_err messages, and the nearest candidate for "did you mean". A message never loses its cause to the size of msg: a run of
 * more than LMN_PATH_SHOWN (+ a little) characters without white space (a long path, with its ":line:col:")
 * keeps its first and last LMN_PATH_KEEP characters (+ that little) with "..." between, and a message still
 * too long is shortened further in its long runs, then in its middle, so that its start (the file) and its
 * end (the cause) remain. */
#include "lmn_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmn_file.h"

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* What a shortened run keeps beyond its last keep characters: room for the ":line:col:" after a path, so
 * that a path already shortened by LMN_SHORT passes unchanged. */
#define SLACK 24

/* Shortens in place every run of s longer than 2 * keep + 3 + SLACK non-space characters to its first keep
 * and last keep + SLACK characters with "..." between; returns the new length. */
static size_t shorten_runs(char *s, size_t keep) {
  size_t r = 0, w = 0, n = strlen(s);
  while (r < n) {
    size_t start = r;
    if (is_space(s[r])) {
      s[w++] = s[r++];
      continue;
    }
    while (r < n && !is_space(s[r])) r++;
    size_t len = r - start;
    if (len > 2 * keep + 3 + SLACK) {
      memmove(s + w, s + start, keep);
      memcpy(s + w + keep, "...", 3);
      memmove(s + w + keep + 3, s + r - keep - SLACK, keep + SLACK);
      w += 2 * keep + 3 + SLACK;
    } else {
      memmove(s + w, s + start, len);
      w += len;
    }
  }
  s[w] = '\0';
  return w;
}

/* Copies the message s (which it may change) into out[cap], shortened as the top comment says. */
static void fit(char *s, char *out, size_t cap) {
  static const size_t keeps[] = {LMN_PATH_KEEP, 100, 40, 16};
  size_t n = strlen(s);
  for (size_t i = 0; i < sizeof keeps / sizeof *keeps && (i == 0 || n >= cap); i++)
    n = shorten_runs(s, keeps[i]);
  if (n < cap) {
    memcpy(out, s, n + 1);
    return;
  }
  size_t head = (cap - 4) / 2, tail = cap - 4 - head; /* head + "..." + tail + NUL */
  memcpy(out, s, head);
  memcpy(out + head, "...", 3);
  memcpy(out + head + 3, s + n - tail, tail + 1);
}

int lmn_verrf(lmn_err *err, const char *fmt, va_list ap) {
  if (!err) return -1;
  char small[sizeof err->msg];
  va_list aq;
  va_copy(aq, ap);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  if (n < 0) {
    snprintf(err->msg, sizeof err->msg, "(an error message could not be formatted: %s)", fmt);
  } else if ((size_t)n <= LMN_PATH_SHOWN + SLACK) {
    memcpy(err->msg, small, (size_t)n + 1); /* short: no run can be too long */
  } else {
    char *full = malloc((size_t)n + 1);
    if (full) {
      vsnprintf(full, (size_t)n + 1, fmt, aq);
      fit(full, err->msg, sizeof err->msg);
      free(full);
    } else {
      fit(small, err->msg, sizeof err->msg);
    }
  }
  va_end(aq);
  return -1;
}

int lmn_errf(lmn_err *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lmn_verrf(err, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- did you mean ------------------------------------------------------------------------------- */

/* Edit distance of two short strings (case-insensitive); a large number when either is long. */
static int distance(const char *a, size_t la, const char *b) {
  size_t lb = strlen(b);
  if (la > 32 || lb > 32) return 99;
  int row[33];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int up = row[j], same = (a[i - 1] | 0x20) == (b[j - 1] | 0x20);
      int best = diag + !same;
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      diag = up;
      row[j] = best;
    }
  }
  return row[lb];
}

const char *lmn_nearest(const char *s, size_t len, const char *const *cands, int n) {
  const char *best = NULL;
  int bd = 99;
  for (int i = 0; i < n; i++) {
    int d = distance(s, len, cands[i]), lim = (int)strlen(cands[i]) / 2;
    if (d <= (lim < 1 ? 1 : lim > 2 ? 2 : lim) && d < bd) bd = d, best = cands[i];
  }
  return best;
}
