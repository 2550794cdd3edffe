#!/usr/bin/env python3
"""serve_openai.py --port P [--chat] [--api-key K] [--prompt TEXT]: a running `NAME serve` through the
official openai Python client (tests/serve-test.sh runs it in the venv build/serve-venv): the model list,
plain and streamed completions (the streamed pieces concatenated equal the plain text), a refused request
raising the client's BadRequestError; with --chat plain and streamed chat completions without template
markup; with --api-key a wrong key raising AuthenticationError. Prints `openai: N passed, M failed`, exits 1
on a failure."""
import argparse
import sys

import openai
from openai import OpenAI

MARKUP = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
# exact comparisons ask for a fresh prefill: reusing KV caches may change greedy text at a near-tie
NOCACHE = {"cache_prompt": False}

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--chat", action="store_true")
ap.add_argument("--api-key", default="")
ap.add_argument("--prompt", default="Once upon a time")
a = ap.parse_args()

passed = failed = 0


def check(cond, what, detail=None):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: openai: %s%s" % (what, "" if detail is None else " (%s)" % (detail,)))
    sys.stdout.flush()
    return cond


def attempt(what, fn):
    """Runs fn(); an exception is a failed check (and None)."""
    try:
        return fn()
    except Exception as ex:  # any client error is a finding, not a crash of the suite
        check(False, what, "%s: %s" % (type(ex).__name__, str(ex)[:300]))
        return None


base = "http://127.0.0.1:%d/v1" % a.port
client = OpenAI(base_url=base, api_key=a.api_key or "none", max_retries=0, timeout=60)

models = attempt("models.list()", lambda: list(client.models.list()))
model = "x"
if models is not None:
    check(len(models) == 1 and isinstance(models[0].id, str), "models.list(): one model", models)
    if models:
        model = models[0].id
        check(models[0].owned_by == "lmnet", "models.list(): owned_by lmnet", models[0].owned_by)

r = attempt("completions.create()", lambda: client.completions.create(
    model=model, prompt=a.prompt, max_tokens=12, temperature=0, extra_body=NOCACHE))
plain = None
if r is not None:
    plain = r.choices[0].text
    check(isinstance(plain, str), "completions.create(): a text")
    check(r.object == "text_completion" and r.model == model, "completions.create(): object and model",
          (r.object, r.model))
    check(r.choices[0].finish_reason in ("stop", "length"), "completions.create(): finish_reason",
          r.choices[0].finish_reason)
    check(r.usage is not None and r.usage.completion_tokens <= 12
          and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, "completions.create(): usage",
          r.usage)
    r2 = attempt("completions.create() again", lambda: client.completions.create(
        model=model, prompt=[a.prompt], max_tokens=12, temperature=0, extra_body=NOCACHE))
    if r2 is not None:
        check(r2.choices[0].text == plain, "greedy twice (prompt as a list): the same text")


def streamed_completion():
    pieces, fins = [], []
    for ch in client.completions.create(model=model, prompt=a.prompt, max_tokens=12, temperature=0, stream=True, extra_body=NOCACHE):
        pieces.append(ch.choices[0].text or "")
        fins.append(ch.choices[0].finish_reason)
    return pieces, fins


s = attempt("completions.create(stream=True)", streamed_completion)
if s is not None and plain is not None:
    pieces, fins = s
    check("".join(pieces) == plain, "streamed completion: the pieces concatenated equal the plain text",
          ("".join(pieces)[:80], plain[:80]))
    check(fins and fins[-1] in ("stop", "length") and all(f is None for f in fins[:-1]),
          "streamed completion: finish_reason only on the last chunk", fins[-3:])

try:
    client.completions.create(model=model, prompt=a.prompt, max_tokens=-1)
    check(False, "max_tokens -1: BadRequestError", "no exception")
except openai.BadRequestError as ex:
    check(ex.status_code == 400, "max_tokens -1: BadRequestError with status 400", ex.status_code)
except Exception as ex:
    check(False, "max_tokens -1: BadRequestError", "%s: %s" % (type(ex).__name__, ex))

if a.api_key:
    bad = OpenAI(base_url=base, api_key=a.api_key + "x", max_retries=0, timeout=30)
    try:
        bad.completions.create(model=model, prompt=a.prompt, max_tokens=2)
        check(False, "a wrong API key: AuthenticationError", "no exception")
    except openai.AuthenticationError as ex:
        check(ex.status_code == 401, "a wrong API key: AuthenticationError (401)")
    except Exception as ex:
        check(False, "a wrong API key: AuthenticationError", "%s: %s" % (type(ex).__name__, ex))

if a.chat:
    msgs = [{"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "Name three colours."}]
    r = attempt("chat.completions.create()", lambda: client.chat.completions.create(
        model=model, messages=msgs, max_tokens=30, temperature=0, extra_body=NOCACHE))
    content = None
    if r is not None:
        m = r.choices[0].message
        content = m.content
        check(m.role == "assistant" and isinstance(content, str) and content.strip() != "",
              "chat: an assistant message", m)
        check(r.object == "chat.completion", "chat: object chat.completion", r.object)
        check(content is not None and not any(x in content for x in MARKUP), "chat: no template markup", content)

    def streamed_chat():
        roles, pieces, fins = [], [], []
        for ch in client.chat.completions.create(model=model, messages=msgs, max_tokens=30, temperature=0, stream=True, extra_body=NOCACHE):
            if not ch.choices:
                continue
            d = ch.choices[0].delta
            if d.role:
                roles.append(d.role)
            if d.content:
                pieces.append(d.content)
            fins.append(ch.choices[0].finish_reason)
        return roles, pieces, fins

    s = attempt("chat.completions.create(stream=True)", streamed_chat)
    if s is not None and content is not None:
        roles, pieces, fins = s
        check(roles == ["assistant"], "streamed chat: the role once", roles)
        check("".join(pieces) == content, "streamed chat: the pieces concatenated equal the plain reply",
              ("".join(pieces)[:80], content[:80]))
        check(fins and fins[-1] in ("stop", "length"), "streamed chat: a finish_reason at the end", fins[-3:])

print("openai: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
