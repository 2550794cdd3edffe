/* runlog.c: the record a training run keeps next to its checkpoints (metrics.jsonl, config.yaml,
 * network.lmn) and its picture through gnuplot; see runlog.h. */
#include "runlog.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lmn_file.h"

/* The step of a metrics line ({"step": N, ...}), or -1. */
static long line_step(const char *line) {
  long step;
  return sscanf(line, "{\"step\": %ld", &step) == 1 ? step : -1;
}

static double line_time(const char *line) {
  const char *t = strstr(line, "\"time_s\": ");
  return t ? strtod(t + 10, NULL) : 0.0;
}

/* The lines of the old record up to resume_step, into a new string (*kept; "" when there is no record). */
static int kept_lines(const char *path, long resume_step, char **kept, double *time0, lmn_err *err) {
  size_t len = 0;
  FILE *out = open_memstream(kept, &len);
  if (!out) return lmn_errf(err, "%s: out of memory", path);
  int fd = access(path, F_OK) == 0 ? lmn_open_regular(path, NULL, err) : -2;
  FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
  char *line = NULL;
  size_t cap = 0;
  while (f && getline(&line, &cap, f) >= 0) {
    long step = line_step(line);
    if (step < 0 || step > resume_step || !strchr(line, '\n')) continue;
    fputs(line, out);
    *time0 = line_time(line);
  }
  free(line);
  if (f) fclose(f);
  if (fclose(out) != 0) return lmn_errf(err, "%s: out of memory", path);
  if (fd == -1) return free(*kept), *kept = NULL, -1;
  return 0;
}

int lmn_runlog_open(lmn_runlog *l, const char *dir, long resume_step, const char *settings, const char *source,
                    lmn_err *err) {
  memset(l, 0, sizeof *l);
  if (snprintf(l->path, sizeof l->path, "%s/metrics.jsonl", dir) >= (int)sizeof l->path)
    return lmn_errf(err, "%s: path too long", dir);
  if (lmn_write_text_atomic(dir, "config.yaml", settings, err) ||
      (source && lmn_write_text_atomic(dir, "network.lmn", source, err)))
    return -1;
  char *kept = NULL;
  if (resume_step > 0 ? kept_lines(l->path, resume_step, &kept, &l->time0, err) : !(kept = strdup("")))
    return kept ? -1 : lmn_errf(err, "%s: out of memory", l->path);
  int rc = lmn_write_text_atomic(dir, "metrics.jsonl", kept, err);
  free(kept);
  if (rc) return -1;
  if (!(l->f = fopen(l->path, "a"))) return lmn_errf(err, "%s: cannot append: %s", l->path, strerror(errno));
  return 0;
}

/* Ends the record after a failed write: once, with the cause. */
static void check_write(lmn_runlog *l) {
  if (fflush(l->f) == 0 && !ferror(l->f)) return;
  fprintf(stderr, "warning: %s: cannot write (%s): the run goes on without its metrics record\n", l->path,
          strerror(errno));
  fclose(l->f);
  l->f = NULL;
}

/* A number for JSON: non-finite values (which no line should hold) as null. */
static void put_number(FILE *f, const char *key, double v) {
  if (isfinite(v)) fprintf(f, ", \"%s\": %.9g", key, v);
  else fprintf(f, ", \"%s\": null", key);
}

/* A line starts with its step and ends with the run's time; 0 when the record is off. */
static int line_begin(lmn_runlog *l, long step) {
  if (l->f) fprintf(l->f, "{\"step\": %ld", step);
  return l->f != NULL;
}

static void line_end(lmn_runlog *l, double elapsed) {
  put_number(l->f, "time_s", l->time0 + elapsed);
  fputs("}\n", l->f);
  check_write(l);
}

void lmn_runlog_step(lmn_runlog *l, long step, double loss, double lr, double norm, double tokens_per_s,
                     double elapsed) {
  if (!line_begin(l, step)) return;
  put_number(l->f, "loss", loss);
  put_number(l->f, "lr", lr);
  put_number(l->f, "grad_norm", norm);
  put_number(l->f, "tokens_per_s", tokens_per_s);
  line_end(l, elapsed);
}

void lmn_runlog_eval(lmn_runlog *l, long step, double val_loss, double accuracy, double elapsed) {
  if (!line_begin(l, step)) return;
  put_number(l->f, "val_loss", val_loss);
  if (accuracy >= 0) put_number(l->f, "val_accuracy", accuracy);
  line_end(l, elapsed);
}

/* The length of the valid UTF-8 character at s (1-4 bytes), or 0. */
static int utf8_len(const unsigned char *s) {
  int n = 0;
  if (s[0] < 0x80) return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf) n = 2;
  else if ((s[0] & 0xf0) == 0xe0) n = 3;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4) n = 4;
  for (int i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0; /* overlong, surrogate */
  if (n == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))) return 0; /* overlong, > U+10FFFF */
  return n;
}

/* s as a JSON string. */
static void put_string(FILE *f, const char *key, const char *s) {
  fprintf(f, ", \"%s\": \"", key);
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    int n = utf8_len(p);
    if (n == 0) fputs("\\ufffd", f), p++;
    else if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p), p++;
    else if (*p < 0x20) fprintf(f, "\\u%04x", *p), p++;
    else fwrite(p, 1, (size_t)n, f), p += n;
  }
  fputc('"', f);
}

void lmn_runlog_sample(lmn_runlog *l, long step, const char *prompt, const char *text, double elapsed) {
  if (!line_begin(l, step)) return;
  put_string(l->f, "prompt", prompt);
  put_string(l->f, "sample", text);
  line_end(l, elapsed);
}

void lmn_runlog_close(lmn_runlog *l) {
  if (l->f) fclose(l->f);
  l->f = NULL;
}

/* ---- plot ---------------------------------------------------------------------------------------- */

/* metrics.jsonl as two gnuplot data blocks (training loss, then validation loss), separated by two blank
 * lines (gnuplot's "index"); the counts of each. */
static int write_series(const char *metrics, FILE *out, long *n_train, long *n_val, lmn_err *err) {
  int fd = lmn_open_regular(metrics, NULL, err);
  FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
  if (!f) return fd >= 0 ? (close(fd), lmn_errf(err, "%s: %s", metrics, strerror(errno))) : -1;
  char *line = NULL;
  size_t cap = 0;
  *n_train = *n_val = 0;
  for (int pass = 0; pass < 2; pass++) {
    rewind(f);
    while (getline(&line, &cap, f) >= 0) {
      const char *key = pass == 0 ? "\"loss\": " : "\"val_loss\": ", *at = strstr(line, key);
      long step = line_step(line);
      if (!at || step < 0) continue;
      fprintf(out, "%ld %s", step, at + strlen(key));
      long *n = pass == 0 ? n_train : n_val;
      ++*n;
    }
    fputs(pass == 0 ? "0 NaN\n\n\n" : "0 NaN\n", out); /* a block is never empty */
  }
  free(line);
  fclose(f);
  return 0;
}

/* Runs gnuplot on the two series of file data, drawing into file out. */
static int gnuplot(const char *data, const char *out, const char *title, lmn_err *err) {
  FILE *g = popen("gnuplot 2>&1", "w");
  if (!g) return lmn_errf(err, "gnuplot: cannot start it: %s", strerror(errno));
  fprintf(g,
          "set terminal pngcairo size 900,500 noenhanced\nset output '%s'\nset title '%s'\n"
          "set xlabel 'step'\nset ylabel 'loss'\nset grid\nset key top right\n"
          "plot '%s' index 0 using 1:2 with lines title 'train loss', '' index 1 using 1:2 with "
          "linespoints title 'val loss'\n",
          out, title, data);
  int status = pclose(g);
  if (status != 0)
    return lmn_errf(err,
                    "gnuplot failed (exit status %d): is it installed? (apt-get install gnuplot-nox; "
                    "scripts/install-deps.sh does)",
                    status);
  return 0;
}

/* Whether s can stand between single quotes in a gnuplot script. */
static int quotable(const char *s) { return !strpbrk(s, "'\n\r"); }

int lmn_runlog_plot(const char *dir, const char *title, char *png, size_t cap, lmn_err *err) {
  char metrics[4200], data[4200], tmp_png[4300];
  if (snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir) >= (int)sizeof metrics ||
      snprintf(png, cap, "%s/loss.png", dir) >= (int)cap ||
      snprintf(tmp_png, sizeof tmp_png, "%s/loss.png.tmp.XXXXXX", dir) >= (int)sizeof tmp_png)
    return lmn_errf(err, "%s: path too long", dir);
  if (!quotable(dir) || !quotable(title))
    return lmn_errf(err, "%s: a name that holds a quote or a line break cannot be handed to gnuplot", dir);
  const char *tmpdir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(data, sizeof data, "%s/lmn-plot-XXXXXX", tmpdir);
  int fd = mkstemp(data);
  if (fd < 0) return lmn_errf(err, "%s: cannot create a temporary file: %s", data, strerror(errno));
  FILE *f = fdopen(fd, "w");
  long n_train = 0, n_val = 0;
  int rc = f ? write_series(metrics, f, &n_train, &n_val, err) : lmn_errf(err, "%s: %s", data, strerror(errno));
  if (f && fclose(f) != 0 && !rc) rc = lmn_errf(err, "%s: cannot write: %s", data, strerror(errno));
  if (!f) close(fd);
  if (!rc && n_train == 0) rc = lmn_errf(err, "%s: no training steps recorded yet", metrics);
  int pfd = rc ? -1 : mkstemp(tmp_png); /* gnuplot draws into it, then it is renamed: whole or absent */
  if (!rc && pfd < 0) rc = lmn_errf(err, "%s: cannot create: %s", tmp_png, strerror(errno));
  if (pfd >= 0) close(pfd);
  if (!rc) rc = gnuplot(data, tmp_png, title, err);
  if (!rc && rename(tmp_png, png) != 0) rc = lmn_errf(err, "%s: cannot rename into place: %s", png, strerror(errno));
  if (rc && pfd >= 0) unlink(tmp_png);
  unlink(data);
  return rc;
}
