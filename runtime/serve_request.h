/* serve_request.h: the JSON body of a request to `NAME serve` (docs/serve.md), read and checked apart from
 * the server: completions and chats (sampling, length, stop strings, the prompt or the messages) and
 * classifications (the input texts). serve.c answers from it; tests/fuzz/fuzz_request.c feeds it any bytes.
 */
#ifndef LMN_SERVE_REQUEST_H
#define LMN_SERVE_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "chat_template.h"
#include "sample.h"

#define LMN_SERVE_BODY_MAX (1 << 20) /* bytes of a request body */
#define LMN_SERVE_MAX_STOP 4         /* stop strings of a request, as OpenAI's API allows */

typedef enum lmn_serve_kind { LMN_SERVE_COMPLETION, LMN_SERVE_CHAT, LMN_SERVE_CLASSIFY } lmn_serve_kind;

typedef struct lmn_serve_request {
  lmn_serve_kind kind;
  /* completions and chats */
  int stream, fresh; /* "stream": true; "cache_prompt": false (nothing of a slot's caches is reused) */
  lmn_sample_opts sample;
  int max_tokens;
  uint64_t seed;
  char
      *stop[LMN_SERVE_MAX_STOP + 1]; /* malloc'ed; the last place is free (a chat's end of turn goes there) */
  int n_stop;
  const char *prompt; /* a completion's prompt: prompt_len bytes (it may hold NUL bytes) */
  size_t prompt_len;
  lmn_chat_msg *msgs; /* a chat's messages (malloc'ed; lmn_chat_check passed) */
  int n_msgs;
  /* classifications: the texts, each non-empty */
  const char **inputs;
  size_t n_inputs;
  json_t *root, *keep; /* the parsed body and the joined message texts, which the pointers above point into */
} lmn_serve_request;

/* Reads body (len bytes; no NUL needed) as a request of the given kind into *r: 0, or -1 with the reason for
 * the client (a 400 answer) in why[why_len] and nothing held. OpenAI's defaults: temperature 1, top_p 1, no
 * top_k, 16 tokens for a completion and the rest of the context (1 << 30) for a chat, a seed from the clock.
 */
int lmn_serve_request_parse(const char *body, size_t len, lmn_serve_kind kind, lmn_serve_request *r,
                            char *why, size_t why_len);
/* Frees what *r holds (also after a failed parse) and zeroes it. */
void lmn_serve_request_free(lmn_serve_request *r);

#endif
