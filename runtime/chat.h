/* chat.h: the parts of chat that the conversation API (lmn_chat_*, lmn.h), `NAME chat` and `NAME serve`
 * share: a conversation rendered with the model's template and encoded into prompt ids. */
#ifndef LMN_CHAT_H
#define LMN_CHAT_H

#include "chat_template.h"
#include "generate.h"

/* The ids of msgs[0..n) rendered with t and the start of the assistant's turn (*n_ids of them, malloc'ed);
 * fails when they are more than max_tokens. */
int lmn_chat_encode(const lmn_chat_template *t, const lmn_tokenizer *tok, const lmn_net_desc *d,
                    const lmn_chat_msg *msgs, int n, int max_tokens, int32_t **ids, int *n_ids, lmn_err *err);

/* The chat template of a Hugging Face model directory: DIR/tokenizer_config.json's "chat_template", a string
 * or a list of {"name", "template"} (the one named "default", else the first), recognised as
 * lmn_chat_template_parse does. Fails when the file or the key is missing. */
int lmn_chat_template_hf(const char *dir, lmn_chat_template *t, lmn_err *err);

#endif
