/* classify.c: per-class reports (confusion matrix, precision, recall, F1) and `predict` for classification
 * networks; see classify.h. predict writes the input's texts as a labelled file (runtime/data.h's format)
 * and evaluates it, so a text is prepared exactly as in training. */
#include "classify.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lmn_file.h"

int lmn_confusion_init(lmn_confusion *c, int classes, lmn_err *err) {
  c->classes = classes;
  c->counts = classes > 0 ? calloc((size_t)classes * (size_t)classes, sizeof *c->counts) : NULL;
  return c->counts ? 0 : lmn_errf(err, "out of memory for a %d x %d confusion matrix", classes, classes);
}

void lmn_confusion_free(lmn_confusion *c) {
  free(c->counts);
  c->counts = NULL;
}

int lmn_argmax(const float *x, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return best;
}

void lmn_confusion_add(void *ctx, long index, const float *logits, int classes, int32_t label) {
  lmn_confusion *c = ctx;
  (void)index;
  if (label >= 0 && label < c->classes && classes == c->classes)
    c->counts[(size_t)label * (size_t)classes + (size_t)lmn_argmax(logits, classes)]++;
}

static double ratio(long a, long b) { return b > 0 ? (double)a / (double)b : 0.0; }

void lmn_confusion_print(const lmn_confusion *c, FILE *out) {
  int k = c->classes;
  double sum_p = 0, sum_r = 0, sum_f = 0;
  long total = 0;
  fprintf(out, "class  precision  recall     f1  support\n");
  for (int i = 0; i < k; i++) {
    long tp = c->counts[(size_t)i * (size_t)k + (size_t)i], predicted = 0, support = 0;
    for (int j = 0; j < k; j++) {
      predicted += c->counts[(size_t)j * (size_t)k + (size_t)i];
      support += c->counts[(size_t)i * (size_t)k + (size_t)j];
    }
    double p = ratio(tp, predicted), r = ratio(tp, support), f = p + r > 0 ? 2 * p * r / (p + r) : 0.0;
    fprintf(out, "%5d  %9.3f  %6.3f  %5.3f  %7ld\n", i, p, r, f, support);
    sum_p += p, sum_r += r, sum_f += f, total += support;
  }
  fprintf(out, "macro  %9.3f  %6.3f  %5.3f  %7ld\n", sum_p / k, sum_r / k, sum_f / k, total);
  if (k > 20) return;
  fprintf(out, "confusion (rows: label, columns: predicted)\n      ");
  for (int j = 0; j < k; j++) fprintf(out, " %6d", j);
  fputc('\n', out);
  for (int i = 0; i < k; i++) {
    fprintf(out, "%5d ", i);
    for (int j = 0; j < k; j++) fprintf(out, " %6ld", c->counts[(size_t)i * (size_t)k + (size_t)j]);
    fputc('\n', out);
  }
}

/* ---- predict ------------------------------------------------------------------------------------- */

/* The input's texts, as written to the labelled temporary file. */
typedef struct inputs {
  const char *name;  /* the input as given ("standard input" for "-") */
  long n, cap;       /* texts */
  long *line;        /* the input line of each */
  int32_t *label;    /* its label, or -1 */
  long labelled;     /* texts with a label */
} inputs;

/* The label of "LABEL<TAB>TEXT" when LABEL is an integer in [0, classes), else -1. */
static int32_t label_of(const char *s, size_t len, int classes) {
  const char *tab = memchr(s, '\t', len);
  if (!tab || tab == s || tab - s > 9) return -1;
  long v = 0;
  for (const char *c = s; c < tab; c++) {
    if (*c < '0' || *c > '9') return -1;
    v = v * 10 + (*c - '0');
  }
  return v < classes ? (int32_t)v : -1;
}

static int add_text(inputs *in, long line, int32_t label, lmn_err *err) {
  if (in->n == in->cap) {
    long cap = in->cap ? 2 * in->cap : 256;
    long *l = realloc(in->line, (size_t)cap * sizeof *l);
    if (l) in->line = l;
    int32_t *b = l ? realloc(in->label, (size_t)cap * sizeof *b) : NULL;
    if (!b) return lmn_errf(err, "%s: out of memory for %ld texts", in->name, cap);
    in->label = b, in->cap = cap;
  }
  in->line[in->n] = line, in->label[in->n++] = label;
  in->labelled += label >= 0;
  return 0;
}

/* Copies the lines of f into tmp as labelled examples (label 0 for unlabelled texts). */
static int copy_lines(FILE *f, FILE *tmp, inputs *in, int classes, lmn_err *err) {
  char *buf = NULL;
  size_t cap = 0;
  ssize_t len;
  int rc = 0;
  for (long line = 1; rc == 0 && (len = getline(&buf, &cap, f)) >= 0; line++) {
    size_t n = (size_t)len;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    if (n == 0) continue;
    if (memchr(buf, '\0', n)) {
      rc = lmn_errf(err, "%s:%ld: a NUL byte in the text", in->name, line);
      break;
    }
    int32_t label = label_of(buf, n, classes);
    const char *text = label >= 0 ? (const char *)memchr(buf, '\t', n) + 1 : buf;
    size_t tn = n - (size_t)(text - buf);
    if (tn == 0) rc = lmn_errf(err, "%s:%ld: empty text after the label", in->name, line);
    if (!rc) rc = add_text(in, line, label, err);
    if (!rc && fprintf(tmp, "%d\t%.*s\n", label >= 0 ? label : 0, (int)tn, text) < 0)
      rc = lmn_errf(err, "%s: cannot write a temporary file: %s", in->name, strerror(errno));
  }
  if (!rc && ferror(f)) rc = lmn_errf(err, "%s: read error: %s", in->name, strerror(errno));
  free(buf);
  return rc;
}

/* The input's texts into a new temporary file (its path into path, already unlinked when this fails). */
static int write_inputs(const char *input, char *path, size_t cap, inputs *in, int classes, lmn_err *err) {
  const char *dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  if (snprintf(path, cap, "%s/lmn-predict-XXXXXX", dir) >= (int)cap) return lmn_errf(err, "%s: path too long", dir);
  int fd = mkstemp(path);
  if (fd < 0) return lmn_errf(err, "%s: cannot create a temporary file: %s", path, strerror(errno));
  FILE *tmp = fdopen(fd, "w");
  FILE *f = strcmp(input, "-") == 0 ? stdin : NULL;
  int rc = 0;
  if (!tmp) rc = lmn_errf(err, "%s: %s", path, strerror(errno)), close(fd);
  if (!rc && !f) {
    int in_fd = lmn_open_regular(input, NULL, err);
    if (in_fd < 0 || !(f = fdopen(in_fd, "r"))) rc = in_fd < 0 ? -1 : lmn_errf(err, "%s: %s", input, strerror(errno));
  }
  if (!rc) rc = copy_lines(f, tmp, in, classes, err);
  if (f && f != stdin) fclose(f);
  if (tmp && fclose(tmp) != 0 && !rc) rc = lmn_errf(err, "%s: cannot write: %s", path, strerror(errno));
  if (!rc && in->n == 0) rc = lmn_errf(err, "%s: no texts to label (only blank lines)", in->name);
  if (rc) unlink(path);
  return rc;
}

typedef struct printer {
  const inputs *in;
  int json;
  FILE *out;
  lmn_confusion *confusion;
} printer;

static void print_row(void *ctx, long index, const float *logits, int classes, int32_t label) {
  printer *p = ctx;
  double max = logits[lmn_argmax(logits, classes)], sum = 0.0;
  for (int j = 0; j < classes; j++) sum += exp((double)logits[j] - max);
  int best = lmn_argmax(logits, classes);
  if (p->json) fprintf(p->out, "{\"line\": %ld, \"label\": %d, \"probs\": [", p->in->line[index], best);
  else fprintf(p->out, "%d\t", best);
  for (int j = 0; j < classes; j++)
    fprintf(p->out, "%s%.6g", j ? (p->json ? ", " : " ") : "", exp((double)logits[j] - max) / sum);
  if (p->json && p->in->label[index] >= 0) fprintf(p->out, "], \"true\": %d}\n", (int)p->in->label[index]);
  else fputs(p->json ? "]}\n" : "\n", p->out);
  if (p->confusion) lmn_confusion_add(p->confusion, index, logits, classes, label);
}

int lmn_predict(lmn_net *net, const lmn_tokenizer *tok, const char *input, long B, long T, int json, FILE *out,
                lmn_err *err) {
  int classes = net->desc->classes;
  if (classes <= 0)
    return lmn_errf(err, "%s: predict labels texts with a classification network; use generate", net->desc->name);
  inputs in = {.name = strcmp(input, "-") == 0 ? "standard input" : input};
  char path[4200];
  if (write_inputs(input, path, sizeof path, &in, classes, err)) return free(in.line), free(in.label), -1;
  lmn_data_opts o = {.train_path = path, .val_path = path, .seq_len = T, .tok = tok};
  lmn_data data = {0};
  lmn_confusion confusion = {0};
  int all = in.labelled == in.n;
  int rc = lmn_data_open_classes(&data, &o, classes, err);
  unlink(path);
  if (!rc && all) rc = lmn_confusion_init(&confusion, classes, err);
  printer p = {&in, json, out, all ? &confusion : NULL};
  lmn_class_eval ev;
  if (!rc) rc = lmn_eval_classes_each(net, &data, (in.n + B - 1) / B, B, T, &ev, print_row, &p, err);
  if (!rc && all) {
    fprintf(stderr, "%ld labelled texts: accuracy %.2f%% (%ld correct) | loss %.4f\n", ev.examples,
            100.0 * ev.accuracy, ev.correct, ev.loss);
    lmn_confusion_print(&confusion, stderr);
  }
  lmn_confusion_free(&confusion);
  lmn_data_close(&data);
  free(in.line);
  free(in.label);
  return rc;
}
