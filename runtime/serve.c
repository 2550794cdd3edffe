/* serve.c: the HTTP server of `NAME serve` (see serve.h and docs/serve.md). libmicrohttpd runs a thread per
 * connection; a request's handler parses its JSON body with jansson, checks every field, waits for a slot
 * (bounded queue), and generates on the slot's session: inline for a plain answer, on a thread of its own
 * for a stream, whose chunks the connection's thread hands to the client as they come. */
#include "serve.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"
#include "classify.h"
#include "serve_request.h"

/* GNU libmicrohttpd is opened when a server starts (dlopen), so that liblmn links without it: its static
 * library needs GnuTLS and p11-kit, which have none, and fully static executables stay possible. */
#define MHD_LIBRARY "libmicrohttpd.so.12"
#define MHD_FUNCS(X)                   \
  X(MHD_start_daemon)                  \
  X(MHD_stop_daemon)                   \
  X(MHD_get_daemon_info)               \
  X(MHD_create_response_from_buffer)   \
  X(MHD_create_response_from_callback) \
  X(MHD_add_response_header)           \
  X(MHD_queue_response)                \
  X(MHD_destroy_response)              \
  X(MHD_lookup_connection_value)       \
  X(MHD_get_connection_info)
#define MHD_DECLARE(f) __typeof__(&f) f;
static struct { MHD_FUNCS(MHD_DECLARE) } mhd;

static int mhd_load(lmn_err *err) {
  if (mhd.MHD_start_daemon) return 0;
  void *h = dlopen(MHD_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  if (!h)
    return lmn_errf(
        err,
        "serve: cannot load GNU libmicrohttpd (%s); install it (Debian: apt-get install libmicrohttpd12)",
        dlerror());
#define MHD_LOAD(f) \
  if (!(*(void **)&mhd.f = dlsym(h, #f))) return lmn_errf(err, "serve: %s has no %s", MHD_LIBRARY, #f);
  MHD_FUNCS(MHD_LOAD)
  return 0;
}

#define BODY_MAX LMN_SERVE_BODY_MAX
#define MAX_STOP LMN_SERVE_MAX_STOP
#define MAX_CONNECTIONS 64

typedef struct slot {
  lmn_net *net; /* the server's network (slot 0) or a decoding sibling */
  lmn_session s;
  int busy;
} slot;

typedef struct server {
  const lmn_net_desc *d;
  lmn_net *net;
  const lmn_serve_opts *o;
  lmn_tokenizer tok;
  int chat_ok;
  lmn_chat_template tpl;
  char chat_why[512]; /* why there is no chat, when chat_ok is 0 */
  slot *slots;
  int n_slots;
  pthread_mutex_t mu;
  pthread_cond_t freed;
  int queued;
  long created;
  atomic_long next_id;
  pthread_mutex_t classify_mu; /* classification runs on the network itself, one request at a time */
} server;

/* ---- responses ----------------------------------------------------------------------------------- */

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, char *text, const char *type) {
  if (!text) return MHD_NO;
  struct MHD_Response *r = mhd.MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  if (!r) return free(text), MHD_NO;
  mhd.MHD_add_response_header(r, "Content-Type", type);
  enum MHD_Result ret = mhd.MHD_queue_response(c, status, r);
  mhd.MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *j) {
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  return reply_text(c, status, s, "application/json");
}

static const char *error_type(unsigned status) {
  switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 503: return "server_busy";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...) {
  char msg[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *e = json_pack("{s:{s:s%, s:s, s:i}}", "error", "message", msg, strnlen(msg, sizeof msg), "type",
                        error_type(status), "code", (int)status);
  return reply_json(c, status, e);
}

/* ---- slots --------------------------------------------------------------------------------------- */

static int common_prefix(const lmn_session *s, const int32_t *ids, int n) {
  int k = 0;
  while (k < s->n_cached && k < n && s->ids[k] == ids[k]) k++;
  return k;
}

/* An idle slot, the one whose caches share most with ids; waits in the queue when none is idle; NULL when
 * the queue is full. */
static slot *acquire(server *sv, const int32_t *ids, int n) {
  pthread_mutex_lock(&sv->mu);
  slot *best = NULL;
  for (;;) {
    int best_k = -1;
    for (int i = 0; i < sv->n_slots; i++) {
      int k = sv->slots[i].busy ? -1 : common_prefix(&sv->slots[i].s, ids, n);
      if (k > best_k) best_k = k, best = &sv->slots[i];
    }
    if (best_k >= 0) break;
    best = NULL;
    if (sv->queued >= sv->o->queue) break;
    sv->queued++;
    pthread_cond_wait(&sv->freed, &sv->mu);
    sv->queued--;
  }
  if (best) best->busy = 1;
  pthread_mutex_unlock(&sv->mu);
  return best;
}

static void release(server *sv, slot *s) {
  pthread_mutex_lock(&sv->mu);
  s->busy = 0;
  pthread_cond_broadcast(&sv->freed);
  pthread_mutex_unlock(&sv->mu);
}

/* ---- a generation request ------------------------------------------------------------------------ */

typedef struct job {
  server *sv;
  slot *sl;
  int chat, stream;
  int fresh; /* cache_prompt: false: nothing of the slot's caches is reused */
  lmn_gen_req req;
  int32_t *ids;
  char *stop[MAX_STOP + 1];
  char id[48];
  long created;
  MHD_socket fd;
  lmn_gen_stats st;
  lmn_err err;
  int failed;
  char held[4]; /* the start of a UTF-8 sequence that the next piece completes */
  size_t n_held;
  /* the text (plain answers) or the event stream (streams) so far */
  char *out;
  size_t len, cap, pos;
  int oom;
  /* streams: shared by the generating thread and the connection's */
  pthread_mutex_t mu;
  pthread_cond_t more;
  int done, gone, refs;
} job;

static void job_free(job *j) {
  free(j->ids);
  for (int i = 0; i <= MAX_STOP; i++) free(j->stop[i]);
  free(j->out);
  if (j->stream) pthread_mutex_destroy(&j->mu), pthread_cond_destroy(&j->more);
  free(j);
}

static void job_unref(job *j) {
  pthread_mutex_lock(&j->mu);
  int left = --j->refs;
  pthread_mutex_unlock(&j->mu);
  if (!left) job_free(j);
}

static void append(struct job *j, const char *s, size_t n) {
  if (j->len + n + 1 > j->cap) {
    size_t cap = 2 * (j->len + n + 1);
    char *o = realloc(j->out, cap);
    if (!o) {
      j->oom = 1;
      return;
    }
    j->out = o;
    j->cap = cap;
  }
  memcpy(j->out + j->len, s, n);
  j->len += n;
  j->out[j->len] = '\0';
}

/* ---- UTF-8 -------------------------------------------------------------------------------------- */

/* Bytes of the well-formed sequence at s[0..n) (1 to 4), 0 when it is cut short by the end of s[0..n) but
 * could still be completed, or -k when its first k bytes are a maximal ill-formed subpart (replaced by one
 * U+FFFD, as Unicode recommends and Python's decoder does). */
static int utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  int len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
  if (!len) return -1;
  unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
  for (int i = 1; i < len; i++) {
    if ((size_t)i >= n) return 0;
    if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF)) return -i;
  }
  return len;
}

/* Appends the valid UTF-8 of s[0..n) to j (ill-formed parts as U+FFFD); returns the bytes consumed: all
 * of them when final, else up to an incomplete sequence at the end, kept for the next piece. */
static void append(struct job *j, const char *s, size_t n);
static size_t append_utf8(struct job *j, const char *s, size_t n, int final) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    int k = utf8_seq(u + i, n - i);
    if (k == 0 && !final) break;
    if (k > 0)
      append(j, s + i, (size_t)k), i += (size_t)k;
    else
      append(j, "\xEF\xBF\xBD", 3), i += k ? (size_t)-k : n - i;
  }
  return i;
}

/* The client closed its side of the connection. */
static int client_gone(MHD_socket fd) {
  struct pollfd p = {.fd = fd, .events = POLLRDHUP};
  return fd != MHD_INVALID_SOCKET && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static const char *finish_reason(const lmn_gen_stats *st) {
  return st->stopped_eos || st->stopped_stop ? "stop" : "length";
}

/* One chunk of a stream: {"id", "object", "created", "model", "choices": [{...}]}; text NULL: the last
 * (finish_reason set), first: the chat's opening chunk (the role). */
static json_t *chunk(const job *j, const char *text, size_t n, int first) {
  json_t *choice;
  const char *reason = text || first ? NULL : finish_reason(&j->st);
  if (j->chat) {
    json_t *delta = first  ? json_pack("{s:s}", "role", "assistant")
                    : text ? json_pack("{s:s%}", "content", text, n)
                           : json_object();
    choice = json_pack("{s:i, s:o, s:o}", "index", 0, "delta", delta, "finish_reason",
                       reason ? json_string(reason) : json_null());
  } else {
    choice = json_pack("{s:i, s:s%, s:n, s:o}", "index", 0, "text", text ? text : "", text ? n : 0,
                       "logprobs", "finish_reason", reason ? json_string(reason) : json_null());
  }
  return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", j->id, "object",
                   j->chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)j->created,
                   "model", j->sv->d->name, "choices", choice);
}

/* Appends an event "data: JSON\n\n" to a stream and wakes its connection. */
static void push_event(job *j, json_t *ev) {
  char *s = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
  json_decref(ev);
  pthread_mutex_lock(&j->mu);
  if (s)
    append(j, "data: ", 6), append(j, s, strlen(s)), append(j, "\n\n", 2);
  else
    j->oom = 1;
  pthread_cond_signal(&j->more);
  pthread_mutex_unlock(&j->mu);
  free(s);
}

/* A piece of the text as valid UTF-8 (text NULL: the end) into piece; the start of a sequence that the next
 * piece may complete waits in j->held. */
static int utf8_piece(job *j, const char *text, size_t n, job *piece) {
  char *buf = malloc(j->n_held + n + 1);
  if (!buf) return -1;
  memcpy(buf, j->held, j->n_held);
  if (n) memcpy(buf + j->n_held, text, n);
  size_t all = j->n_held + n, used = append_utf8(piece, buf, all, text == NULL);
  j->n_held = all - used; /* fewer than 4 bytes */
  memcpy(j->held, buf + used, j->n_held);
  free(buf);
  return piece->oom ? -1 : 0;
}

/* text NULL: the end, which flushes what is held. */
static void stream_text(job *j, const char *text, size_t n) {
  job piece = {0};
  if (utf8_piece(j, text, n, &piece))
    j->oom = 1;
  else if (piece.len)
    push_event(j, chunk(j, piece.out, piece.len, 0));
  free(piece.out);
}

static int on_text(void *ctx, int32_t id, const char *bytes, size_t n) {
  (void)id;
  job *j = ctx;
  if (j->stream) {
    if (n) stream_text(j, bytes, n);
    pthread_mutex_lock(&j->mu);
    int stop = j->gone || j->oom;
    pthread_mutex_unlock(&j->mu);
    return stop;
  }
  append(j, bytes, n); /* made valid UTF-8 at the end */
  return j->oom || client_gone(j->fd);
}

static void run_job(job *j) {
  if (j->fresh) j->sl->s.n_cached = 0;
  j->failed = lmn_session_generate(&j->sl->s, &j->req, &j->st, &j->err) != 0;
  release(j->sv, j->sl);
  j->sl = NULL;
}

static void *stream_thread(void *arg) {
  job *j = arg;
  run_job(j);
  stream_text(j, NULL, 0);
  if (!j->failed) push_event(j, chunk(j, NULL, 0, 0));
  pthread_mutex_lock(&j->mu);
  if (!j->oom) append(j, "data: [DONE]\n\n", 14);
  j->done = 1;
  pthread_cond_signal(&j->more);
  pthread_mutex_unlock(&j->mu);
  job_unref(j);
  return NULL;
}

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  job *j = cls;
  pthread_mutex_lock(&j->mu);
  while (j->pos == j->len && !j->done) pthread_cond_wait(&j->more, &j->mu);
  size_t n = j->len - j->pos < max ? j->len - j->pos : max;
  memcpy(buf, j->out + j->pos, n);
  j->pos += n;
  int end = n == 0;
  pthread_mutex_unlock(&j->mu);
  return end ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void stream_closed(void *cls) {
  job *j = cls;
  pthread_mutex_lock(&j->mu);
  j->gone = 1;
  pthread_mutex_unlock(&j->mu);
  job_unref(j);
}

static enum MHD_Result start_stream(struct MHD_Connection *c, job *j) {
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->more, NULL);
  j->refs = 2;
  if (j->chat) push_event(j, chunk(j, NULL, 0, 1));
  struct MHD_Response *r =
      mhd.MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_stream, j, stream_closed);
  pthread_t t;
  if (!r || pthread_create(&t, NULL, stream_thread, j) != 0) {
    if (r) mhd.MHD_destroy_response(r);
    release(j->sv, j->sl);
    job_free(j);
    return reply_error(c, 500, "cannot start the stream");
  }
  pthread_detach(t);
  mhd.MHD_add_response_header(r, "Content-Type", "text/event-stream");
  mhd.MHD_add_response_header(r, "Cache-Control", "no-cache");
  enum MHD_Result ret = mhd.MHD_queue_response(c, 200, r);
  mhd.MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result answer(struct MHD_Connection *c, job *j) {
  run_job(j);
  if (j->failed || j->oom) {
    enum MHD_Result r = reply_error(c, 500, "%s", j->oom ? "out of memory" : j->err.msg);
    job_free(j);
    return r;
  }
  job text = {0};
  append_utf8(&text, j->out ? j->out : "", j->len, 1);
  const char *t = text.out ? text.out : "";
  json_t *choice = j->chat
                       ? json_pack("{s:i, s:{s:s, s:s%}, s:s}", "index", 0, "message", "role", "assistant",
                                   "content", t, text.len, "finish_reason", finish_reason(&j->st))
                       : json_pack("{s:i, s:s%, s:n, s:s}", "index", 0, "text", t, text.len, "logprobs",
                                   "finish_reason", finish_reason(&j->st));
  free(text.out);
  json_t *res =
      json_pack("{s:s, s:s, s:I, s:s, s:[o], s:{s:i, s:i, s:i}}", "id", j->id, "object",
                j->chat ? "chat.completion" : "text_completion", "created", (json_int_t)j->created, "model",
                j->sv->d->name, "choices", choice, "usage", "prompt_tokens", j->st.prompt_tokens,
                "completion_tokens", j->st.tokens, "total_tokens", j->st.prompt_tokens + j->st.tokens);
  job_free(j);
  return reply_json(c, 200, res);
}

/* The prompt's ids: the completion's text, or the conversation rendered with the model's template; -1 with
 * the reason in why. */
static int prompt_ids(server *sv, const lmn_serve_request *r, job *j, char *why, size_t n) {
  lmn_err err = {{0}};
  const int ctx = sv->slots[0].s.ctx;
  if (j->chat && !sv->chat_ok) return snprintf(why, n, "%s", sv->chat_why), -1;
  int rc = j->chat ? lmn_chat_encode(&sv->tpl, &sv->tok, sv->d, r->msgs, r->n_msgs, ctx, &j->ids,
                                     &j->req.n_prompt, &err)
                   : lmn_encode_prompt(sv->d, &sv->tok, r->prompt, r->prompt_len, ctx, &j->ids,
                                       &j->req.n_prompt, &err);
  if (rc) snprintf(why, n, "%s", err.msg[0] ? err.msg : "cannot encode the prompt");
  return rc;
}

/* A new job (NULL: out of memory) for a parsed request, whose stop strings move to it. */
static job *new_job(server *sv, lmn_serve_request *r, int chat) {
  job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->sv = sv;
  j->chat = chat;
  j->stream = r->stream;
  j->fresh = r->fresh;
  j->req.sample = r->sample;
  j->req.n = r->max_tokens;
  j->req.seed = r->seed;
  memcpy(j->stop, r->stop, sizeof j->stop);
  memset(r->stop, 0, sizeof r->stop);
  j->req.n_stop = r->n_stop;
  return j;
}

static enum MHD_Result complete(server *sv, struct MHD_Connection *c, const char *body, size_t len,
                                int chat) {
  lmn_serve_request r;
  char why[1024];
  if (lmn_serve_request_parse(body, len, chat ? LMN_SERVE_CHAT : LMN_SERVE_COMPLETION, &r, why, sizeof why))
    return reply_error(c, 400, "%s", why);
  if (sv->d->classes > 0) {
    lmn_serve_request_free(&r);
    return reply_error(c, 400, "%s is a classifier: use POST /v1/classify", sv->d->name);
  }
  job *j = new_job(sv, &r, chat);
  const int bad = j && prompt_ids(sv, &r, j, why, sizeof why);
  lmn_serve_request_free(&r);
  if (!j) return reply_error(c, 500, "out of memory");
  if (bad) {
    job_free(j);
    return reply_error(c, 400, "%s", why);
  }
  if (chat) j->stop[j->req.n_stop++] = strdup(sv->tpl.end_of_turn);
  j->req.prompt = j->ids;
  j->req.stop = (const char *const *)j->stop;
  j->req.hide_eos = 1;
  j->req.fn = on_text;
  j->req.ctx = j;
  j->created = (long)time(NULL);
  snprintf(j->id, sizeof j->id, "%s-%lx%lx", chat ? "chatcmpl" : "cmpl", j->created,
           atomic_fetch_add(&sv->next_id, 1));
  const union MHD_ConnectionInfo *ci = mhd.MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  j->fd = ci ? ci->connect_fd : MHD_INVALID_SOCKET;
  if (!(j->sl = acquire(sv, j->ids, j->req.n_prompt))) {
    job_free(j);
    return reply_error(c, 503, "every slot is busy and the queue (%d) is full; try again later",
                       sv->o->queue);
  }
  return j->stream ? start_stream(c, j) : answer(c, j);
}

/* ---- classification ------------------------------------------------------------------------------ */

/* Labels texts with lmn_predict (the preparation of training) through a temporary file of lines. */
static enum MHD_Result classify(server *sv, struct MHD_Connection *c, const char *body, size_t len) {
  lmn_serve_request r;
  char why[1024];
  if (lmn_serve_request_parse(body, len, LMN_SERVE_CLASSIFY, &r, why, sizeof why))
    return reply_error(c, 400, "%s", why);
  if (sv->d->classes <= 0) {
    lmn_serve_request_free(&r);
    return reply_error(c, 400, "%s generates text: /v1/classify is for classifiers", sv->d->name);
  }
  char path[] = "/tmp/lmn-classify-XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  int ok = f != NULL;
  for (size_t i = 0; ok && i < r.n_inputs; i++) {
    for (const char *p = r.inputs[i]; *p; p++) fputc(*p == '\n' || *p == '\r' ? ' ' : *p, f);
    fputc('\n', f);
  }
  size_t n_in = r.n_inputs;
  lmn_serve_request_free(&r);
  if (f && fclose(f) != 0) ok = 0;
  char *out = NULL;
  size_t out_len = 0;
  FILE *m = ok ? open_memstream(&out, &out_len) : NULL;
  lmn_err err = {{0}};
  pthread_mutex_lock(&sv->classify_mu);
  int rc = m ? lmn_predict(sv->net, &sv->tok, path, sv->o->cls_batch, sv->o->cls_seq, 1, m, &err) : -1;
  pthread_mutex_unlock(&sv->classify_mu);
  if (m) fclose(m);
  unlink(path);
  json_t *data = json_array();
  char *line = out;
  for (size_t i = 0; !rc && line && *line && i < n_in; i++) {
    char *nl = strchr(line, '\n');
    json_t *row = json_loadb(line, nl ? (size_t)(nl - line) : strlen(line), 0, NULL);
    json_t *probs = json_object(), *ps = json_object_get(row, "probs");
    char label[24];
    for (size_t k = 0; k < json_array_size(ps); k++) {
      snprintf(label, sizeof label, "%zu", k);
      json_object_set(probs, label, json_array_get(ps, k));
    }
    snprintf(label, sizeof label, "%lld", (long long)json_integer_value(json_object_get(row, "label")));
    json_t *item = json_pack("{s:i, s:s, s:o}", "index", (int)i, "label", label, "probs", probs);
    json_decref(row);
    json_array_append_new(data, item);
    line = nl ? nl + 1 : NULL;
  }
  free(out);
  if (rc) return json_decref(data), reply_error(c, 500, "%s", err.msg[0] ? err.msg : "cannot classify");
  return reply_json(c, 200,
                    json_pack("{s:s, s:s, s:o}", "object", "list", "model", sv->d->name, "data", data));
}

/* ---- routes -------------------------------------------------------------------------------------- */

static enum MHD_Result health(server *sv, struct MHD_Connection *c) {
  pthread_mutex_lock(&sv->mu);
  int idle = 0;
  for (int i = 0; i < sv->n_slots; i++) idle += !sv->slots[i].busy;
  int queued = sv->queued;
  pthread_mutex_unlock(&sv->mu);
  return reply_json(c, 200,
                    json_pack("{s:s, s:i, s:i, s:i}", "status", "ok", "slots", sv->n_slots, "slots_idle",
                              idle, "queued", queued));
}

static enum MHD_Result models(server *sv, struct MHD_Connection *c) {
  return reply_json(c, 200,
                    json_pack("{s:s, s:[{s:s, s:s, s:I, s:s, s:i}]}", "object", "list", "data", "id",
                              sv->d->name, "object", "model", "created", (json_int_t)sv->created, "owned_by",
                              "lmnet", "context_length", sv->slots[0].s.ctx));
}

typedef struct request {
  char *body;
  size_t len, cap;
  int too_big;
} request;

typedef enum route_id { R_HEALTH, R_MODELS, R_COMPLETIONS, R_CHAT, R_CLASSIFY, R_COUNT } route_id;
static const struct {
  const char *path, *method;
} routes[] = {{"/health", "GET"},
              {"/v1/models", "GET"},
              {"/v1/completions", "POST"},
              {"/v1/chat/completions", "POST"},
              {"/v1/classify", "POST"}};
_Static_assert(sizeof routes / sizeof *routes == R_COUNT, "a path for every route");

static int authorised(const server *sv, struct MHD_Connection *c) {
  if (!sv->o->api_key) return 1;
  const char *h = mhd.MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  return h && !strncmp(h, "Bearer ", 7) && !strcmp(h + 7, sv->o->api_key);
}

static enum MHD_Result dispatch(server *sv, struct MHD_Connection *c, const char *url, const char *method,
                                request *rq) {
  int r = 0;
  while (r < R_COUNT && strcmp(url, routes[r].path)) r++;
  if (r == R_COUNT) return reply_error(c, 404, "no such endpoint: %s %.200s", method, url);
  if (strcmp(method, routes[r].method))
    return reply_error(c, 405, "%s takes %s, not %s", routes[r].path, routes[r].method, method);
  if (r != R_HEALTH && !authorised(sv, c))
    return reply_error(c, 401, "a valid API key is needed (Authorization: Bearer KEY)");
  if (r == R_HEALTH) return health(sv, c);
  if (r == R_MODELS) return models(sv, c);
  if (rq->too_big) return reply_error(c, 413, "the body is larger than %d bytes", BODY_MAX);
  return r == R_CLASSIFY ? classify(sv, c, rq->body, rq->len)
                         : complete(sv, c, rq->body, rq->len, r == R_CHAT);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **state) {
  (void)version;
  request *rq = *state;
  if (!rq) { /* the headers: a body announced as too large is refused before it is read */
    if (!(rq = calloc(1, sizeof *rq))) return MHD_NO;
    *state = rq;
    const char *cl = mhd.MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > BODY_MAX) {
      rq->too_big = 1;
      return reply_error(c, 413, "the body is larger than %d bytes", BODY_MAX);
    }
    return MHD_YES;
  }
  if (*upload_size) {
    size_t n = *upload_size;
    *upload_size = 0;
    if (rq->too_big || rq->len + n > BODY_MAX) {
      rq->too_big = 1;
      return MHD_YES;
    }
    if (rq->len + n + 1 > rq->cap) {
      size_t cap = 2 * (rq->len + n + 1);
      char *b = realloc(rq->body, cap);
      if (!b) return MHD_NO;
      rq->body = b;
      rq->cap = cap;
    }
    memcpy(rq->body + rq->len, upload, n);
    rq->len += n;
    return MHD_YES;
  }
  return dispatch(cls, c, url, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode why) {
  (void)cls, (void)c, (void)why;
  request *rq = *state;
  if (rq) free(rq->body), free(rq);
  *state = NULL;
}

/* ---- start and stop ------------------------------------------------------------------------------ */

static void server_free(server *sv) {
  for (int i = 0; sv->slots && i < sv->n_slots; i++) {
    lmn_session_free(&sv->slots[i].s);
    if (sv->slots[i].net != sv->net) lmn_net_destroy(sv->slots[i].net);
  }
  free(sv->slots);
  lmn_tokenizer_free(&sv->tok);
  pthread_mutex_destroy(&sv->mu);
  pthread_cond_destroy(&sv->freed);
  pthread_mutex_destroy(&sv->classify_mu);
}

static int server_init(server *sv, lmn_net *net, const lmn_serve_opts *o, lmn_err *err) {
  memset(sv, 0, sizeof *sv);
  sv->d = net->desc;
  sv->net = net;
  sv->o = o;
  sv->created = (long)time(NULL);
  pthread_mutex_init(&sv->mu, NULL);
  pthread_cond_init(&sv->freed, NULL);
  pthread_mutex_init(&sv->classify_mu, NULL);
  if (lmn_net_tokenizer(sv->d, &sv->tok, err)) return -1;
  if (sv->d->classes > 0) return 0;
  lmn_err why = {{0}};
  sv->chat_ok = lmn_net_chat_template(sv->d, &sv->tpl, &why) == 0;
  snprintf(sv->chat_why, sizeof sv->chat_why, "%s", why.msg);
  if (!(sv->slots = calloc((size_t)o->parallel, sizeof *sv->slots))) return lmn_errf(err, "out of memory");
  int ctx = o->ctx > 0 && o->ctx < sv->d->ctx ? o->ctx : sv->d->ctx;
  for (int i = 0; i < o->parallel; i++, sv->n_slots++) {
    slot *s = &sv->slots[i];
    if (i == 0)
      s->net = net;
    else if (lmn_net_share(net, o->threads, &s->net, err))
      return -1;
    if (lmn_session_init(&s->s, s->net, &sv->tok, ctx, err)) {
      if (s->net != net) lmn_net_destroy(s->net);
      return -1;
    }
  }
  return 0;
}

static struct MHD_Daemon *listen_on(server *sv, lmn_err *err) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)sv->o->port)};
  if (inet_pton(AF_INET, sv->o->host, &addr.sin_addr) != 1)
    return lmn_errf(err, "serve: '%s' is not an IPv4 address", sv->o->host), NULL;
  struct MHD_Daemon *d = mhd.MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
      (uint16_t)sv->o->port, NULL, NULL, on_request, sv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)sv->o->timeout_s, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)MAX_CONNECTIONS, MHD_OPTION_NOTIFY_COMPLETED, on_completed, sv, MHD_OPTION_END);
  if (!d)
    lmn_errf(err, "serve: cannot listen on %s:%d (in use, or not an address of this machine)", sv->o->host,
             sv->o->port);
  return d;
}

int lmn_serve(lmn_net *net, const lmn_serve_opts *o, lmn_err *err) {
  server sv;
  memset(&sv, 0, sizeof sv);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  signal(SIGPIPE, SIG_IGN);
  pthread_sigmask(SIG_BLOCK, &stop, NULL); /* every thread started from here on leaves them to sigwait */
  int rc = mhd_load(err) || server_init(&sv, net, o, err);
  struct MHD_Daemon *d = rc ? NULL : listen_on(&sv, err);
  if (d) {
    const union MHD_DaemonInfo *di = mhd.MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    fprintf(stderr, "%s serve: listening on http://%s:%u (%d slots, queue %d)\n", sv.d->name, o->host,
            di ? di->port : (unsigned)o->port, sv.d->classes > 0 ? 1 : sv.n_slots, o->queue);
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "%s serve: %s, stopping\n", sv.d->name, sig == SIGINT ? "SIGINT" : "SIGTERM");
    mhd.MHD_stop_daemon(d);
    pthread_mutex_lock(&sv.mu); /* streams still generating end when they notice their client is gone */
    for (int busy = 1; busy;) {
      busy = 0;
      for (int i = 0; i < sv.n_slots; i++) busy |= sv.slots[i].busy;
      if (busy) pthread_cond_wait(&sv.freed, &sv.mu);
    }
    pthread_mutex_unlock(&sv.mu);
  }
  server_free(&sv);
  pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
  return d ? 0 : -1;
}
