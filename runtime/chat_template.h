/* chat_template.h: the chat formats of instruction-tuned models, recognised from the Jinja text of a GGUF's
 * tokenizer.chat_template by its structure (the markers it writes), not by running Jinja: ChatML
 * (SmolLM2, Qwen2: <|im_start|>role ... <|im_end|>), Llama-3 (<|start_header_id|>role<|end_header_id|> ...
 * <|eot_id|>) and Gemma (<start_of_turn>user|model ... <end_of_turn>, the system text put before the first
 * user message). A recognised template renders a conversation into the prompt text the model was tuned on. */
#ifndef LMN_CHAT_TEMPLATE_H
#define LMN_CHAT_TEMPLATE_H

#include <stddef.h>

#include "lmn_error.h"

typedef enum lmn_chat_style {
  LMN_CHAT_CHATML = 0,
  LMN_CHAT_LLAMA3,
  LMN_CHAT_GEMMA,
  LMN_CHAT_STYLES
} lmn_chat_style;

#define LMN_CHAT_MAX_SYSTEM 1024

typedef struct lmn_chat_template {
  lmn_chat_style style;
  const char *name;        /* "ChatML", "Llama-3", "Gemma" */
  const char *end_of_turn; /* the text that closes a turn: the reply's stop string */
  int has_default_system;  /* the template adds default_system when none is given */
  char default_system[LMN_CHAT_MAX_SYSTEM];
  int bos; /* the template starts with the BOS text itself */
} lmn_chat_template;

typedef struct lmn_chat_msg {
  const char *role; /* "system", "user" or "assistant" */
  const char *content;
} lmn_chat_msg;

/* Recognises the template text[0..len) (`what` names it in errors, e.g. the file). */
int lmn_chat_template_parse(const char *text, size_t len, const char *what, lmn_chat_template *t,
                            lmn_err *err);
/* Checks that msgs[0..n) is a conversation the template renders: roles system (first only), user and
 * assistant; contents present. */
int lmn_chat_check(const lmn_chat_msg *msgs, int n, lmn_err *err);
/* Renders msgs[0..n) and, with add_generation_prompt, the start of the assistant's turn, into out
 * (snprintf-like: at most cap-1 bytes and a NUL); returns the length of the whole text, or -1 with err set.
 * bos_text is the tokenizer's BOS token text, written first when the template starts with it (NULL: none). */
long lmn_chat_render(const lmn_chat_template *t, const lmn_chat_msg *msgs, int n, int add_generation_prompt,
                     const char *bos_text, char *out, size_t cap, lmn_err *err);

#endif
