/* lmn_error.h: the error value every liblmn function fills instead of aborting.
 * Functions that can fail return 0 on success and -1 on failure, writing a one-line message
 * ("file: place: cause") into an lmn_err the caller owns. */
#ifndef LMN_ERROR_H
#define LMN_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lmn_err {
  char msg[1024]; /* NUL-terminated message of the last failure */
} lmn_err;

/* Formats a message into err (when err is not NULL) and returns -1. */
int lmn_errf(lmn_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int lmn_verrf(lmn_err *err, const char *fmt, va_list ap);
/* For "did you mean": the candidate closest to s[0..len) (case-insensitive edit distance) when it is close
 * enough to be a likely typo (at most 1 for short candidates, 2 for longer ones), else NULL. */
const char *lmn_nearest(const char *s, size_t len, const char *const *cands, int n);

#ifdef __cplusplus
}
#endif

#endif
