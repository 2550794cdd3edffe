/* serve.h: `NAME serve`, an OpenAI-compatible HTTP API for a compiled network, built on GNU libmicrohttpd
 * (HTTP) and jansson (JSON): POST /v1/completions and /v1/chat/completions (stream: true as server-sent
 * events), GET /v1/models and /health, POST /v1/classify for classifiers. Every slot is a decoding sibling
 * of the network (its own KV caches, shared weights); requests beyond the slots wait in a bounded queue
 * (503 when it is full); a client that goes away frees its slot. Everything is documented in docs/serve.md.
 */
#ifndef LMN_SERVE_H
#define LMN_SERVE_H

#include "lmn_error.h"
#include "net.h"

typedef struct lmn_serve_opts {
  const char *host;        /* IPv4 address to bind (default 127.0.0.1) */
  int port;                /* 0: any free port (the ready line says which) */
  int parallel;            /* slots: sequences generated at once */
  int queue;               /* requests that may wait for a slot */
  int ctx;                 /* KV cache positions per slot */
  int threads;             /* threads per slot */
  int timeout_s;           /* an idle connection is closed after this many seconds */
  const char *api_key;     /* when set, every /v1 request needs "Authorization: Bearer KEY" */
  long cls_batch, cls_seq; /* classifiers: the batch and sequence length of the training config */
} lmn_serve_opts;

/* Serves net (weights loaded) until SIGINT or SIGTERM; 0 after a clean stop. Prints one line on stderr when
 * it listens: "NAME serve: listening on http://HOST:PORT (N slots, queue Q)". */
int lmn_serve(lmn_net *net, const lmn_serve_opts *o, lmn_err *err);

#endif
