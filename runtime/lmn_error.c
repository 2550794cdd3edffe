/* lmn_error.c: formatting of lmn_err messages. */
#include "lmn_error.h"

#include <stdio.h>

int lmn_verrf(lmn_err *err, const char *fmt, va_list ap) {
  if (err) vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  return -1;
}

int lmn_errf(lmn_err *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lmn_verrf(err, fmt, ap);
  va_end(ap);
  return -1;
}
