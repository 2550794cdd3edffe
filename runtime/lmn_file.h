/* lmn_file.h: what every reader of liblmn does before and after it reads a file: open only regular files
 * (a FIFO, a device, a socket or a directory is refused at once, without blocking), show a long path in a
 * message shortened in the middle, check loaded floats for non-finite values, and the CRC32C of the bytes
 * a checkpoint stores; a text file written whole and atomically. */
#ifndef LMN_FILE_H
#define LMN_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lmn_error.h"

/* Opens path read-only, refusing anything but a regular file before a read could block or never end (a
 * FIFO without a writer, /dev/zero): open with O_NONBLOCK, then fstat. "c.txt: is a FIFO, not a regular
 * file". Returns the descriptor (blocking again, close-on-exec), or -1 with err set. The size goes into
 * *size when it is not NULL. */
int lmn_open_regular(const char *path, off_t *size, lmn_err *err);
/* "a FIFO", "a character device", "a directory", ... for a file type from st_mode. */
const char *lmn_file_kind(mode_t mode);

/* The longest path a message shows whole; a longer one keeps its first and last LMN_PATH_KEEP characters
 * with "..." between. */
#define LMN_PATH_KEEP 200
#define LMN_PATH_SHOWN (2 * LMN_PATH_KEEP + 3)
/* path, shortened as above into buf (LMN_PATH_SHOWN + 1 bytes) when it is longer; returns buf. */
const char *lmn_path_short(char *buf, const char *path);
/* The same into a buffer of the enclosing full expression: lmn_errf(err, "%s: ...", LMN_SHORT(path)). */
#define LMN_SHORT(path) lmn_path_short((char[LMN_PATH_SHOWN + 1]){0}, (path))

/* 0 when x[0..n) holds only finite values; otherwise an error naming file, tensor, the first bad index and
 * whether it is a NaN or an infinity. */
int lmn_check_finite(const float *x, size_t n, const char *file, const char *tensor, lmn_err *err);
/* The index of the first non-finite value among n little-endian f32 values at p (any alignment), or n. */
size_t lmn_first_nonfinite_f32(const void *p, size_t n);

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78) of n bytes, continuing from crc (0 to start):
 * lmn_crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t lmn_crc32c(uint32_t crc, const void *data, size_t n);

/* "dir/name" into buf; -1 with "dir/name: path too long" when it does not fit in cap. */
int lmn_path_join(char *buf, size_t cap, const char *dir, const char *name, lmn_err *err);
/* Writes text as dir/name atomically (lmn_write_atomic); errors name the path. */
int lmn_write_text_atomic(const char *dir, const char *name, const char *text, lmn_err *err);

#endif
