/* serve_request.c: the JSON body of a request to `NAME serve` read with jansson and checked field by field
 * (serve_request.h): every type and range, with a message naming the field for a 400 answer. */
#include "serve_request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A reason for the client; -1. */
typedef struct bad {
  char *msg;
  size_t n;
} bad;

static int badf(bad *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int badf(bad *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (b->n) vsnprintf(b->msg, b->n, fmt, ap);
  va_end(ap);
  return -1;
}

static int get_number(json_t *body, const char *key, double lo, double hi, double *out, bad *b) {
  json_t *v = json_object_get(body, key);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_number(v)) return badf(b, "'%s' must be a number", key);
  double x = json_number_value(v);
  if (!(x >= lo && x <= hi)) return badf(b, "'%s' is %g, outside [%g, %g]", key, x, lo, hi);
  *out = x;
  return 0;
}

static int get_int(json_t *body, const char *key, json_int_t lo, json_int_t hi, json_int_t *out, bad *b) {
  json_t *v = json_object_get(body, key);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_integer(v)) return badf(b, "'%s' must be an integer", key);
  json_int_t x = json_integer_value(v);
  if (x < lo || x > hi) return badf(b, "'%s' is %lld, outside [%lld, %lld]", key, x, lo, hi);
  *out = x;
  return 0;
}

/* true, false, or absent/null (then *out keeps its value). */
static int get_bool(json_t *body, const char *key, int *out, bad *b) {
  json_t *v = json_object_get(body, key);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_boolean(v)) return badf(b, "'%s' must be true or false", key);
  *out = json_is_true(v);
  return 0;
}

static int get_stop(json_t *body, lmn_serve_request *r, bad *b) {
  json_t *v = json_object_get(body, "stop");
  if (!v || json_is_null(v)) return 0;
  if (json_is_string(v)) {
    r->stop[r->n_stop++] = strdup(json_string_value(v));
  } else if (json_is_array(v) && json_array_size(v) <= LMN_SERVE_MAX_STOP) {
    for (size_t i = 0; i < json_array_size(v); i++) {
      json_t *s = json_array_get(v, i);
      if (!json_is_string(s)) return badf(b, "'stop' must hold strings");
      r->stop[r->n_stop++] = strdup(json_string_value(s));
    }
  } else {
    return badf(b, "'stop' must be a string or an array of at most %d strings", LMN_SERVE_MAX_STOP);
  }
  for (int i = 0; i < r->n_stop; i++)
    if (!r->stop[i]) return badf(b, "out of memory");
  return 0;
}

static int get_sampling(json_t *body, lmn_serve_request *r, bad *b) {
  double t = 1.0, p = 1.0;
  json_int_t k = 0, n = r->kind == LMN_SERVE_CHAT ? 1 << 30 : 16, seed = (json_int_t)time(NULL), choices = 1;
  int cache = 1;
  if (get_bool(body, "cache_prompt", &cache, b) || get_bool(body, "stream", &r->stream, b) ||
      get_number(body, "temperature", 0, 1e6, &t, b) || get_number(body, "top_p", 0, 1, &p, b) ||
      get_int(body, "top_k", 0, 1 << 30, &k, b) || get_int(body, "max_tokens", 0, 1 << 30, &n, b) ||
      get_int(body, "max_completion_tokens", 0, 1 << 30, &n, b) ||
      get_int(body, "seed", INT64_MIN, INT64_MAX, &seed, b) || get_int(body, "n", 1, 1, &choices, b) ||
      get_stop(body, r, b))
    return -1;
  r->fresh = !cache;
  r->sample = (lmn_sample_opts){(float)t, (int)k, (float)p};
  r->max_tokens = (int)n;
  r->seed = (uint64_t)seed;
  return 0;
}

/* The prompt of a completion: a string, or an array of one string. */
static int get_prompt(json_t *body, lmn_serve_request *r, bad *b) {
  json_t *v = json_object_get(body, "prompt");
  if (json_is_array(v) && json_array_size(v) == 1) v = json_array_get(v, 0);
  if (!json_is_string(v)) return badf(b, "'prompt' must be a string (or an array of one string)");
  r->prompt = json_string_value(v);
  r->prompt_len = json_string_length(v);
  return 0;
}

/* A message's content: a string, or an array of {"type": "text", "text": ...} parts, joined (the joined text
 * is kept in keep). NULL when it is neither. */
static const char *content_text(json_t *v, json_t *keep) {
  if (json_is_string(v)) return json_string_value(v);
  if (!json_is_array(v)) return NULL;
  json_t *joined = json_string("");
  for (size_t i = 0; i < json_array_size(v) && joined; i++) {
    json_t *part = json_array_get(v, i), *t = json_object_get(part, "text");
    if (!json_is_string(t)) return json_decref(joined), NULL;
    char *s = NULL;
    if (asprintf(&s, "%s%s", json_string_value(joined), json_string_value(t)) < 0)
      return json_decref(joined), NULL;
    json_string_set(joined, s);
    free(s);
  }
  json_array_append_new(keep, joined);
  return joined ? json_string_value(joined) : NULL;
}

static int get_messages(json_t *body, lmn_serve_request *r, bad *b) {
  json_t *v = json_object_get(body, "messages");
  if (!json_is_array(v) || json_array_size(v) == 0) return badf(b, "'messages' must be a non-empty array");
  size_t count = json_array_size(v);
  if (count > 100000) return badf(b, "too many messages");
  if (!(r->keep = json_array()) || !(r->msgs = calloc(count, sizeof *r->msgs)))
    return badf(b, "out of memory");
  for (size_t i = 0; i < count; i++) {
    json_t *msg = json_array_get(v, i), *role = json_object_get(msg, "role");
    r->msgs[i].role = json_is_string(role) ? json_string_value(role) : NULL;
    r->msgs[i].content = content_text(json_object_get(msg, "content"), r->keep);
    if (!json_is_object(msg) || !r->msgs[i].role || !r->msgs[i].content)
      return badf(b, "message %zu must be an object with a string 'role' and a text 'content'", i);
  }
  lmn_err err = {{0}};
  if (lmn_chat_check(r->msgs, (int)count, &err)) return badf(b, "%s", err.msg);
  r->n_msgs = (int)count;
  return 0;
}

/* A classification's input: a string, or a non-empty array of non-empty strings. */
static int get_inputs(json_t *body, lmn_serve_request *r, bad *b) {
  json_t *in = json_object_get(body, "input");
  const int one = json_is_string(in);
  if (!one && !(json_is_array(in) && json_array_size(in) > 0))
    return badf(b, "'input' must be a string or a non-empty array of strings");
  const size_t n = one ? 1 : json_array_size(in);
  if (!(r->inputs = calloc(n, sizeof *r->inputs))) return badf(b, "out of memory");
  for (size_t i = 0; i < n; i++) {
    json_t *t = one ? in : json_array_get(in, i);
    if (!json_is_string(t) || json_string_length(t) == 0)
      return badf(b, "input %zu must be a non-empty string", i);
    r->inputs[i] = json_string_value(t);
  }
  r->n_inputs = n;
  return 0;
}

int lmn_serve_request_parse(const char *body, size_t len, lmn_serve_kind kind, lmn_serve_request *r,
                            char *why, size_t why_len) {
  memset(r, 0, sizeof *r);
  r->kind = kind;
  bad b = {why, why_len};
  json_error_t je;
  r->root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &je);
  int rc;
  if (!r->root)
    rc = badf(&b, "the body is not valid JSON: line %d, column %d: %s", je.line, je.column, je.text);
  else if (!json_is_object(r->root))
    rc = badf(&b, "the body must be a JSON object");
  else if (kind == LMN_SERVE_CLASSIFY)
    rc = get_inputs(r->root, r, &b);
  else
    rc = get_sampling(r->root, r, &b) ||
                 (kind == LMN_SERVE_CHAT ? get_messages(r->root, r, &b) : get_prompt(r->root, r, &b))
             ? -1
             : 0;
  if (rc) lmn_serve_request_free(r);
  return rc;
}

void lmn_serve_request_free(lmn_serve_request *r) {
  for (int i = 0; i <= LMN_SERVE_MAX_STOP; i++) free(r->stop[i]);
  free(r->msgs);
  free(r->inputs);
  json_decref(r->keep);
  json_decref(r->root);
  memset(r, 0, sizeof *r);
}
