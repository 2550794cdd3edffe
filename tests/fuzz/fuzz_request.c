/* fuzz_request.c: libFuzzer target for the request bodies of `NAME serve` (runtime/serve_request.c): the
 * first byte picks the kind (completion, chat, classification), the rest is the body. A body is either
 * refused with a reason, holding nothing, or accepted with every field in its documented range: sampling
 * values within their bounds, at most 4 stop strings and a free place after them, a prompt of the stated
 * length, messages that lmn_chat_check accepts, non-empty inputs. Built and run by tests/fuzz/fuzz-runtime.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_request.h"

static _Noreturn void fail(const char *what, const char *why) {
  fprintf(stderr, "fuzz_request: %s\n  %s\n", what, why ? why : "");
  abort();
}

static void check_generation(const lmn_serve_request *r) {
  if (!(r->sample.temperature >= 0.0f && r->sample.temperature <= 1e6f) ||
      !(r->sample.top_p >= 0.0f && r->sample.top_p <= 1.0f) || r->sample.top_k < 0 || r->max_tokens < 0)
    fail("a sampling field outside its range", NULL);
  if (r->n_stop < 0 || r->n_stop > LMN_SERVE_MAX_STOP || r->stop[LMN_SERVE_MAX_STOP] != NULL)
    fail("stop strings beyond their places", NULL);
  for (int i = 0; i < r->n_stop; i++)
    if (!r->stop[i] || strlen(r->stop[i]) > LMN_SERVE_BODY_MAX) fail("a stop string that is no string", NULL);
  if (r->kind == LMN_SERVE_COMPLETION) {
    if (!r->prompt) fail("an accepted completion without a prompt", NULL);
    char *copy = malloc(r->prompt_len + 1); /* every byte of the stated length is readable (ASan checks) */
    if (copy) memcpy(copy, r->prompt, r->prompt_len);
    free(copy);
    return;
  }
  lmn_err err = {{0}};
  if (r->n_msgs < 1 || !r->msgs || lmn_chat_check(r->msgs, r->n_msgs, &err) != 0)
    fail("accepted messages that lmn_chat_check refuses", err.msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const lmn_serve_kind kind = (lmn_serve_kind)(data[0] % 3);
  lmn_serve_request r;
  char why[256];
  why[0] = '\0';
  if (lmn_serve_request_parse((const char *)data + 1, size - 1, kind, &r, why, sizeof why) != 0) {
    if (!why[0]) fail("a refusal without a reason", NULL);
    if (r.root || r.msgs || r.inputs || r.stop[0]) fail("a refused request still holds memory", why);
    return 0;
  }
  if (r.kind != kind || !r.root) fail("an accepted request of another kind or without its body", NULL);
  if (kind == LMN_SERVE_CLASSIFY) {
    if (r.n_inputs < 1 || !r.inputs) fail("an accepted classification without inputs", NULL);
    for (size_t i = 0; i < r.n_inputs; i++)
      if (!r.inputs[i] || !r.inputs[i][0]) fail("an empty input accepted", NULL);
  } else {
    check_generation(&r);
  }
  lmn_serve_request_free(&r);
  return 0;
}
