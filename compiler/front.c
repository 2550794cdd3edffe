/* front.c: reads a .lmn file (size-limited), runs the parser and semantic analysis on it. Memory that runs
 * out while a file is processed is reported with the file's name. */
#include "front.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 0;
  char *d = malloc(n + 2);
  if (!d) return NULL;
  if (slash && n == 0) n = 1; /* "/x.lmn" */
  memcpy(d, slash ? path : ".", slash ? n : 1);
  d[slash ? n : 1] = 0;
  return d;
}

int front_load_mem(Front *f, const char *name, const char *src, size_t len, FILE *diag_out) {
  memset(f, 0, sizeof *f);
  f->src = malloc(len + 1);
  f->dir = dir_of(name);
  if (!f->src || !f->dir) {
    fprintf(diag_out, "lmnc: %s: out of memory\n", name);
    return 2;
  }
  f->prog.arena.file = f->arena.file = name;
  memcpy(f->src, src, len);
  f->src[len] = 0;
  f->len = len;
  diag_init(&f->diag, name, f->src, diag_out);
  parse_source(&f->prog, &f->diag, f->src, len);
  if (f->diag.errors == 0) sema_check(&f->prog, &f->net, &f->arena, &f->diag, f->dir);
  return f->diag.errors ? 1 : 0;
}

int front_load(Front *f, const char *path, FILE *diag_out) {
  memset(f, 0, sizeof *f);
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    fprintf(diag_out, "lmnc: cannot open '%s': %s\n", path, strerror(errno));
    return 2;
  }
  char *buf = malloc(FRONT_MAX_SOURCE + 1);
  if (!buf) {
    fclose(fp);
    fprintf(diag_out, "lmnc: %s: out of memory\n", path);
    return 2;
  }
  size_t n = fread(buf, 1, FRONT_MAX_SOURCE + 1, fp);
  int bad = ferror(fp);
  fclose(fp);
  if (bad || n > FRONT_MAX_SOURCE) {
    fprintf(diag_out, "lmnc: cannot read '%s': %s\n", path, bad ? "read error" : "file larger than 16 MiB");
    free(buf);
    return 2;
  }
  int rc = front_load_mem(f, path, buf, n, diag_out);
  free(buf);
  return rc;
}

void front_free(Front *f) {
  free(f->src);
  free(f->dir);
  arena_free(&f->prog.arena);
  arena_free(&f->arena);
  memset(f, 0, sizeof *f);
}
