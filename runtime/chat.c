/* chat.c: conversations (lmn_chat_*, declared in lmn.h): the history as messages, rendered with the model's
 * chat template each turn and fed through a session, so the KV caches keep what earlier turns fed. */
#include "chat.h"

#include <jansson.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "lmn_file.h"
#include "safetensors.h"

int lmn_chat_encode(const lmn_chat_template *t, const lmn_tokenizer *tok, const lmn_net_desc *d,
                    const lmn_chat_msg *msgs, int n, int max_tokens, int32_t **ids, int *n_ids,
                    lmn_err *err) {
  size_t blen = 0;
  const char *bos = tok->bos >= 0 ? lmn_tokenizer_decode_token(tok, tok->bos, &blen) : NULL;
  char bos_text[256] = "";
  if (bos && blen < sizeof bos_text) memcpy(bos_text, bos, blen), bos_text[blen] = '\0';
  long len = lmn_chat_render(t, msgs, n, 1, bos_text[0] ? bos_text : NULL, NULL, 0, err);
  if (len < 0) return -1;
  char *text = malloc((size_t)len + 1);
  if (!text) return lmn_errf(err, "%s: out of memory for the conversation", d->name);
  lmn_chat_render(t, msgs, n, 1, bos_text[0] ? bos_text : NULL, text, (size_t)len + 1, err);
  int rc = lmn_encode_prompt(d, tok, text, (size_t)len, max_tokens, ids, n_ids, err);
  free(text);
  return rc;
}

/* The template among a list of {"name", "template"}: "default", else the first. */
static const lmn_json_value *named_template(const lmn_json_value *list) {
  const lmn_json_value *first = NULL;
  for (size_t i = 0; i < list->n; i++) {
    const lmn_json_value *name = lmn_json_member(&list->items[i], "name");
    const lmn_json_value *tpl = lmn_json_member(&list->items[i], "template");
    if (!tpl || tpl->kind != LMN_JSON_STRING) continue;
    if (name && name->kind == LMN_JSON_STRING && !strcmp(name->str, "default")) return tpl;
    if (!first) first = tpl;
  }
  return first;
}

int lmn_chat_template_hf(const char *dir, lmn_chat_template *t, lmn_err *err) {
  char path[4200];
  if (lmn_path_join(path, sizeof path, dir, "tokenizer_config.json", err)) return -1;
  lmn_json *j = NULL;
  if (lmn_json_read_file(path, &j, err)) return -1;
  const lmn_json_value *v = lmn_json_get(j, "chat_template");
  if (v && v->kind == LMN_JSON_ARRAY) v = named_template(v);
  int rc = v && v->kind == LMN_JSON_STRING
               ? lmn_chat_template_parse(v->str, strlen(v->str), path, t, err)
               : lmn_errf(err, "%s: the model has no chat template (\"chat_template\"); use generate",
                          LMN_SHORT(path));
  lmn_json_free(j);
  return rc;
}

struct lmn_chat {
  lmn_net *net;
  lmn_tokenizer tok;
  lmn_chat_template tpl;
  lmn_session session;
  lmn_chat_msg *msgs; /* role and content strings owned */
  int n, cap;
  int turns;
  lmn_chat_stats last;
};

static void pop_message(lmn_chat *c) {
  c->n--;
  free((char *)c->msgs[c->n].content);
}

static int push_message(lmn_chat *c, const char *role, const char *content, size_t len, lmn_err *err) {
  if (c->n == c->cap) {
    int cap = c->cap ? 2 * c->cap : 8;
    lmn_chat_msg *m = realloc(c->msgs, (size_t)cap * sizeof *m);
    if (!m) return lmn_errf(err, "chat: out of memory");
    c->msgs = m;
    c->cap = cap;
  }
  char *s = malloc(len + 1);
  if (!s) return lmn_errf(err, "chat: out of memory");
  memcpy(s, content, len);
  s[len] = '\0';
  c->msgs[c->n++] = (lmn_chat_msg){role, s};
  return 0;
}

static void clear_messages(lmn_chat *c) {
  while (c->n) pop_message(c);
}

int lmn_chat_reset(lmn_chat *chat, const char *system, lmn_err *err) {
  if (!chat) return lmn_errf(err, "lmn_chat_reset: no conversation");
  clear_messages(chat);
  chat->turns = 0;
  chat->session.n_cached = 0; /* a fresh start: nothing of the old conversation is reused */
  return system ? push_message(chat, "system", system, strlen(system), err) : 0;
}

int lmn_chat_open(lmn_chat **out, lmn_net *net, const char *system, int ctx, lmn_err *err) {
  if (!out) return lmn_errf(err, "lmn_chat_open: no place for the conversation");
  *out = NULL;
  if (!net) return lmn_errf(err, "lmn_chat_open: no network");
  lmn_chat *c = calloc(1, sizeof *c);
  if (!c) return lmn_errf(err, "chat: out of memory");
  c->net = net;
  const lmn_net_desc *d = net->desc;
  int rc = d->classes > 0 ? lmn_errf(err, "%s: a classifier does not chat", d->name) : 0;
  if (!rc) rc = lmn_net_chat_template(d, &c->tpl, err);
  if (!rc) rc = lmn_net_tokenizer(d, &c->tok, err);
  if (!rc) rc = lmn_session_init(&c->session, net, &c->tok, ctx > 0 && ctx < d->ctx ? ctx : d->ctx, err);
  if (!rc) rc = lmn_chat_reset(c, system, err);
  if (rc) {
    lmn_chat_close(c);
    return -1;
  }
  *out = c;
  return 0;
}

void lmn_chat_close(lmn_chat *c) {
  if (!c) return;
  clear_messages(c);
  free(c->msgs);
  lmn_session_free(&c->session);
  lmn_tokenizer_free(&c->tok);
  free(c);
}

/* The reply as it comes: kept, and passed to the caller's on_text. */
typedef struct reply_acc {
  char *text;
  size_t len, cap;
  const lmn_chat_opts *opts;
  int oom;
} reply_acc;

static int on_reply(void *ctx, int32_t id, const char *bytes, size_t len) {
  (void)id;
  reply_acc *r = ctx;
  if (r->len + len + 1 > r->cap) {
    size_t cap = 2 * (r->len + len + 1);
    char *t = realloc(r->text, cap);
    if (!t) return r->oom = 1;
    r->text = t;
    r->cap = cap;
  }
  memcpy(r->text + r->len, bytes, len);
  r->len += len;
  r->text[r->len] = '\0';
  return r->opts->on_text && len ? r->opts->on_text(r->opts->ctx, bytes, len) : 0;
}

static int generate_reply(lmn_chat *c, const lmn_chat_opts *o, reply_acc *acc, lmn_gen_stats *st,
                          lmn_err *err) {
  const lmn_net_desc *d = c->net->desc;
  if (o->max_tokens < 0) return lmn_errf(err, "chat: max_tokens %d is negative", o->max_tokens);
  if (o->n_stop < 0 || (o->n_stop > 0 && !o->stop)) return lmn_errf(err, "chat: bad stop strings");
  const char **stop = malloc(((size_t)o->n_stop + 1) * sizeof *stop);
  if (!stop) return lmn_errf(err, "chat: out of memory");
  stop[0] = c->tpl.end_of_turn;
  for (int i = 0; i < o->n_stop; i++) stop[i + 1] = o->stop[i] ? o->stop[i] : "";
  lmn_gen_req r = {.n = o->max_tokens,
                   .sample = {o->temperature, o->top_k, o->top_p},
                   .seed = o->seed + (uint64_t)c->turns,
                   .stop = stop,
                   .n_stop = o->n_stop + 1,
                   .hide_eos = 1,
                   .fn = on_reply,
                   .ctx = acc};
  int32_t *ids = NULL;
  int rc = lmn_chat_encode(&c->tpl, &c->tok, d, c->msgs, c->n, c->session.ctx, &ids, &r.n_prompt, err);
  r.prompt = ids;
  if (!rc) rc = lmn_session_generate(&c->session, &r, st, err);
  if (!rc && acc->oom) rc = lmn_errf(err, "chat: out of memory for the reply");
  c->net->cache_len = 0; /* lmn_decode must start over */
  free(ids);
  free(stop);
  return rc;
}

int lmn_chat_send(lmn_chat *c, const char *user, const lmn_chat_opts *o, const char **reply, lmn_err *err) {
  if (reply) *reply = NULL;
  if (!c || !user || !o)
    return lmn_errf(err, "lmn_chat_send: no %s", !c ? "conversation" : !user ? "message" : "options");
  if (push_message(c, "user", user, strlen(user), err)) return -1;
  reply_acc acc = {.opts = o};
  lmn_gen_stats st;
  int rc = generate_reply(c, o, &acc, &st, err);
  if (!rc) rc = push_message(c, "assistant", acc.text ? acc.text : "", acc.len, err);
  free(acc.text);
  if (rc) {
    pop_message(c);
    return -1;
  }
  c->turns++;
  c->last = (lmn_chat_stats){st.prompt_tokens,
                             st.reused,
                             st.tokens,
                             st.prefill_s,
                             st.decode_s,
                             st.cancelled                        ? LMN_CHAT_FINISH_CANCELLED
                             : st.stopped_ctx                    ? LMN_CHAT_FINISH_CONTEXT
                             : st.stopped_eos || st.stopped_stop ? LMN_CHAT_FINISH_STOP
                                                                 : LMN_CHAT_FINISH_LENGTH};
  if (reply) *reply = c->msgs[c->n - 1].content;
  return 0;
}

int lmn_chat_messages(const lmn_chat *c) {
  return c ? c->n : 0;
}
const char *lmn_chat_role(const lmn_chat *c, int i) {
  return c && i >= 0 && i < c->n ? c->msgs[i].role : NULL;
}
const char *lmn_chat_content(const lmn_chat *c, int i) {
  return c && i >= 0 && i < c->n ? c->msgs[i].content : NULL;
}
const char *lmn_chat_template_name(const lmn_chat *c) {
  return c ? c->tpl.name : NULL;
}
void lmn_chat_last_stats(const lmn_chat *c, lmn_chat_stats *s) {
  if (s) *s = c ? c->last : (lmn_chat_stats){0};
}

int lmn_chat_save(const lmn_chat *c, const char *path, lmn_err *err) {
  if (!c || !path || !path[0]) return lmn_errf(err, "lmn_chat_save: no %s", c ? "path" : "conversation");
  json_t *msgs = json_array(), *root = json_object();
  for (int i = 0; msgs && i < c->n; i++)
    json_array_append_new(msgs,
                          json_pack("{s:s, s:s}", "role", c->msgs[i].role, "content", c->msgs[i].content));
  char *text = NULL;
  if (root && msgs) {
    json_object_set_new(root, "template", json_string(c->tpl.name));
    json_object_set(root, "messages", msgs);
    text = json_dumps(root, JSON_INDENT(2) | JSON_ENSURE_ASCII);
  }
  json_decref(msgs);
  json_decref(root);
  if (!text) return lmn_errf(err, "%s: out of memory writing the conversation", path);
  char *a = strdup(path), *b = strdup(path);
  int rc = a && b ? lmn_write_text_atomic(dirname(a), basename(b), text, err)
                  : lmn_errf(err, "chat: out of memory");
  free(a), free(b), free(text);
  return rc;
}
