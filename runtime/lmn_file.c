/* lmn_file.c: regular-file opening that never blocks, path shortening for messages, non-finite checks of
 * loaded floats, and CRC32C (the SSE4.2 instruction where the CPU has it, bit by bit otherwise). */
#include "lmn_file.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h" /* lmn_write_atomic */

const char *lmn_file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return S_ISREG(mode) ? "a regular file" : "not a regular file";
}

int lmn_open_regular(const char *path, off_t *size, lmn_err *err) {
  /* O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return lmn_errf(err, "%s: cannot open: %s", LMN_SHORT(path), strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return lmn_errf(err, "%s: cannot stat: %s", LMN_SHORT(path), strerror(e));
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return lmn_errf(err, "%s: is %s, not a regular file", LMN_SHORT(path), lmn_file_kind(sb.st_mode));
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
    int e = errno;
    close(fd);
    return lmn_errf(err, "%s: cannot open: %s", LMN_SHORT(path), strerror(e));
  }
  if (size) *size = sb.st_size;
  return fd;
}

const char *lmn_path_short(char *buf, const char *path) {
  size_t n = path ? strlen(path) : 0;
  if (!path) return "(null)";
  if (n <= LMN_PATH_SHOWN) return path;
  memcpy(buf, path, LMN_PATH_KEEP);
  memcpy(buf + LMN_PATH_KEEP, "...", 3);
  memcpy(buf + LMN_PATH_KEEP + 3, path + n - LMN_PATH_KEEP, LMN_PATH_KEEP + 1);
  return buf;
}

size_t lmn_first_nonfinite_f32(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                 (uint32_t)b[4 * i + 3] << 24;
    if ((u & 0x7f800000u) == 0x7f800000u) return i; /* exponent all ones: an infinity or a NaN */
  }
  return n;
}

int lmn_check_finite(const float *x, size_t n, const char *file, const char *tensor, lmn_err *err) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i]))
      return lmn_errf(err, "%s: tensor '%s' holds %s at index %zu: the file is corrupt", LMN_SHORT(file),
                      tensor, isnan(x[i]) ? "a NaN" : "an infinity", i);
  return 0;
}

/* ---- CRC32C ---------------------------------------------------------------------------------------- */

static uint32_t crc32c_bits(uint32_t c, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t c, const unsigned char *p, size_t n) {
  uint64_t c64 = c;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c64 = __builtin_ia32_crc32di(c64, w);
  }
  c = (uint32_t)c64;
  for (; n > 0; n--, p++) c = __builtin_ia32_crc32qi(c, *p);
  return c;
}
#endif

uint32_t lmn_crc32c(uint32_t crc, const void *data, size_t n) {
  uint32_t c = ~crc;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2")) return ~crc32c_sse42(c, data, n);
#endif
  return ~crc32c_bits(c, data, n);
}

static int emit_text(FILE *f, const void *ctx, lmn_err *err) {
  (void)err;
  return fputs((const char *)ctx, f) < 0 ? -1 : 0;
}

int lmn_path_join(char *buf, size_t cap, const char *dir, const char *name, lmn_err *err) {
  if (snprintf(buf, cap, "%s/%s", dir, name) >= (int)cap) return lmn_errf(err, "%s/%s: path too long", dir, name);
  return 0;
}

int lmn_write_text_atomic(const char *dir, const char *name, const char *text, lmn_err *err) {
  char path[4200];
  if (lmn_path_join(path, sizeof path, dir, name, err)) return -1;
  return lmn_write_atomic(path, emit_text, text, err);
}
