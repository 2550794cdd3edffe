/* fuzz_chattpl.c: libFuzzer target for the chat templates (runtime/chat_template.c). The input up to its
 * first NUL is a template text, the rest the contents of a conversation's messages (split at further NULs).
 * A refused template must say why, naming it; an accepted one renders the conversation, with and without
 * a system message, and the snprintf contract must hold: the length without a buffer, the whole text in
 * length + 1 bytes, a cut prefix of it in a smaller buffer. Built and run by tests/fuzz/fuzz-formats.sh
 * (target chattpl), seeded with the real templates of SmolLM2, Qwen2.5, Llama-3 and Gemma. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"

static void check_render(const lmn_chat_template *t, const lmn_chat_msg *m, int n) {
  lmn_err e;
  long len = lmn_chat_render(t, m, n, 1, "<s>", NULL, 0, &e);
  if (len < 0) abort(); /* the conversation is well-formed */
  char *full = malloc((size_t)len + 1), small[7];
  if (!full) abort();
  if (lmn_chat_render(t, m, n, 1, "<s>", full, (size_t)len + 1, &e) != len || full[len] != '\0') abort();
  if (lmn_chat_render(t, m, n, 1, "<s>", small, sizeof small, &e) != len) abort();
  size_t cut = (size_t)len < sizeof small - 1 ? (size_t)len : sizeof small - 1;
  if (memcmp(small, full, cut) != 0 || small[cut] != '\0') abort();
  free(full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size + 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  size_t tlen = strlen(buf);
  lmn_chat_template t;
  lmn_err e;
  if (lmn_chat_template_parse(buf, tlen, "fuzz.tpl", &t, &e) != 0) {
    if (strncmp(e.msg, "fuzz.tpl: ", 10) != 0) abort();
    free(buf);
    return 0;
  }
  if (t.has_default_system && strlen(t.default_system) >= LMN_CHAT_MAX_SYSTEM) abort();
  const char *parts[4] = {"", "", "", ""};
  const char *at = buf + tlen;
  for (int i = 0; i < 4 && at < buf + size; i++) {
    parts[i] = at + 1;
    at += 1 + strlen(at + 1);
  }
  lmn_chat_msg conv[5] = {
      {"system", parts[0]}, {"user", parts[1]}, {"assistant", parts[2]}, {"user", parts[3]}};
  check_render(&t, conv, 4);
  check_render(&t, conv + 1, 3);
  conv[4] = (lmn_chat_msg){"system", "late"}; /* refused: a system message after the first */
  if (lmn_chat_render(&t, conv, 5, 1, NULL, NULL, 0, &e) != -1) abort();
  free(buf);
  return 0;
}
