/* chat_template.c: recognising ChatML, Llama-3 and Gemma chat templates in a Jinja text, and rendering a
 * conversation the way those templates do. */
#include "chat_template.h"

#include <string.h>

typedef struct style_info {
  const char *name;
  const char *markers[2]; /* both occur in a template of this style */
  const char *end_of_turn;
} style_info;

static const style_info styles[] = {
    {"ChatML", {"<|im_start|>", "<|im_end|>"}, "<|im_end|>"},
    {"Llama-3", {"<|start_header_id|>", "<|eot_id|>"}, "<|eot_id|>"},
    {"Gemma", {"<start_of_turn>", "<end_of_turn>"}, "<end_of_turn>"},
};
_Static_assert(sizeof styles / sizeof *styles == LMN_CHAT_STYLES, "a style_info for every lmn_chat_style");

static const char *find(const char *s, size_t len, const char *what) {
  size_t n = strlen(what);
  for (size_t i = 0; n <= len && i <= len - n; i++)
    if (!memcmp(s + i, what, n)) return s + i;
  return NULL;
}

/* A ChatML template's default system message: the literal text between "<|im_start|>system" + a line
 * break (written "\n" or as the escape \n) and "<|im_end|>", when it is plain text (no quote, brace or +,
 * which would make it an expression). */
static void default_system(const char *s, size_t len, lmn_chat_template *t) {
  static const char open[] = "<|im_start|>system";
  for (const char *p = find(s, len, open); p; p = find(p + 1, len - (size_t)(p + 1 - s), open)) {
    const char *q = p + sizeof open - 1, *end = s + len;
    if (q < end && *q == '\n')
      q++;
    else if (q + 1 < end && q[0] == '\\' && q[1] == 'n')
      q += 2;
    else
      continue;
    const char *close = find(q, (size_t)(end - q), "<|im_end|>");
    if (!close || close == q) continue;
    size_t o = 0, bad = 0;
    for (const char *c = q; c < close && !bad; c++) {
      bad = strchr("'\"{}+", *c) != NULL || o + 2 >= sizeof t->default_system;
      if (c + 1 < close && c[0] == '\\' && c[1] == 'n')
        t->default_system[o++] = '\n', c++;
      else
        t->default_system[o++] = *c;
    }
    if (bad) continue;
    t->default_system[o] = '\0';
    t->has_default_system = 1;
    return;
  }
}

int lmn_chat_template_parse(const char *text, size_t len, const char *what, lmn_chat_template *t,
                            lmn_err *err) {
  memset(t, 0, sizeof *t);
  for (int k = 0; k < LMN_CHAT_STYLES; k++) {
    if (!find(text, len, styles[k].markers[0]) || !find(text, len, styles[k].markers[1])) continue;
    t->style = (lmn_chat_style)k;
    t->name = styles[k].name;
    t->end_of_turn = styles[k].end_of_turn;
    t->bos = find(text, len, "bos_token") != NULL || find(text, len, "<|begin_of_text|>") != NULL;
    if (t->style == LMN_CHAT_CHATML) default_system(text, len, t);
    return 0;
  }
  char head[61];
  size_t n = 0;
  for (; n < len && n < sizeof head - 1; n++) head[n] = text[n] == '\n' ? ' ' : text[n];
  head[n] = '\0';
  return lmn_errf(err,
                  "%s: the chat template is none that lmnet recognises (ChatML, Llama-3, Gemma); it begins "
                  "'%s%s'",
                  what, head, len > n ? "..." : "");
}

int lmn_chat_check(const lmn_chat_msg *msgs, int n, lmn_err *err) {
  if (n < 1) return lmn_errf(err, "chat: the conversation has no message");
  for (int i = 0; i < n; i++) {
    const char *r = msgs[i].role;
    if (!r || !msgs[i].content) return lmn_errf(err, "chat: message %d has no %s", i, r ? "content" : "role");
    if (strcmp(r, "user") && strcmp(r, "assistant") && strcmp(r, "system"))
      return lmn_errf(err, "chat: message %d has role '%s' (system, user or assistant)", i, r);
    if (!strcmp(r, "system") && i > 0)
      return lmn_errf(err, "chat: message %d: only the first may be the system's", i);
  }
  return 0;
}

/* Appends pieces to out as snprintf would; the total length so far in *len. */
static void put(char *out, size_t cap, size_t *len, const char *s) {
  size_t n = strlen(s);
  if (cap && *len < cap - 1) memcpy(out + *len, s, n < cap - 1 - *len ? n : cap - 1 - *len);
  *len += n;
}

/* Llama-3 strips the content of each message. */
static void put_trimmed(char *out, size_t cap, size_t *len, const char *s) {
  while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
  size_t n = strlen(s);
  while (n && strchr(" \n\t\r", s[n - 1])) n--;
  if (cap && *len < cap - 1) memcpy(out + *len, s, n < cap - 1 - *len ? n : cap - 1 - *len);
  *len += n;
}

static void render_turn(const lmn_chat_template *t, const char *role, const char *content, const char *system,
                        char *out, size_t cap, size_t *len) {
  switch (t->style) {
    case LMN_CHAT_CHATML:
      put(out, cap, len, "<|im_start|>"), put(out, cap, len, role), put(out, cap, len, "\n");
      put(out, cap, len, content), put(out, cap, len, "<|im_end|>\n");
      break;
    case LMN_CHAT_LLAMA3:
      put(out, cap, len, "<|start_header_id|>"), put(out, cap, len, role);
      put(out, cap, len, "<|end_header_id|>\n\n"), put_trimmed(out, cap, len, content),
          put(out, cap, len, "<|eot_id|>");
      break;
    default: /* Gemma: the model's role is "model"; a system text goes before the first user message */
      put(out, cap, len, "<start_of_turn>"), put(out, cap, len, strcmp(role, "assistant") ? "user" : "model");
      put(out, cap, len, "\n");
      if (system && system[0]) put_trimmed(out, cap, len, system), put(out, cap, len, "\n\n");
      put_trimmed(out, cap, len, content), put(out, cap, len, "<end_of_turn>\n");
      break;
  }
}

static const char *const generation_prompt[LMN_CHAT_STYLES] = {
    "<|im_start|>assistant\n", "<|start_header_id|>assistant<|end_header_id|>\n\n", "<start_of_turn>model\n"};

long lmn_chat_render(const lmn_chat_template *t, const lmn_chat_msg *msgs, int n, int add_generation_prompt,
                     const char *bos_text, char *out, size_t cap, lmn_err *err) {
  if (lmn_chat_check(msgs, n, err)) return -1;
  if (!out && cap) return lmn_errf(err, "chat: no output buffer");
  size_t len = 0;
  if (t->bos && bos_text) put(out, cap, &len, bos_text);
  int first = 0;
  const char *system = NULL;
  if (!strcmp(msgs[0].role, "system"))
    system = msgs[0].content, first = 1;
  else if (t->has_default_system)
    system = t->default_system;
  if (system && t->style != LMN_CHAT_GEMMA) render_turn(t, "system", system, NULL, out, cap, &len);
  for (int i = first; i < n; i++) {
    int gemma_system = t->style == LMN_CHAT_GEMMA && i == first && system;
    render_turn(t, msgs[i].role, msgs[i].content, gemma_system ? system : NULL, out, cap, &len);
  }
  if (add_generation_prompt) put(out, cap, &len, generation_prompt[t->style]);
  if (cap) out[len < cap - 1 ? len : cap - 1] = '\0';
  return (long)len;
}
