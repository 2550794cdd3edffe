#!/usr/bin/env python3
"""serve_bad.py: the parts of tests/serve-test.sh that curl does badly, against a running `NAME serve`.

    python3 tests/serve_bad.py SUBCOMMAND --port P [options]

Subcommands (each prints its failures as `FAIL: ...`, notes as `# ...`, and ends with the line
`NAME: N passed, M failed`; the exit status is 1 when M > 0):
  js FILE EXPR [--ref F]...   one check on a saved response body: EXPR (Python) is evaluated with d = the
                              parsed JSON, raw = the bytes, refs = the reference files' bytes and same(text, i)
                              (text equals refs[i], see same_text); exit 0 when true (no summary line)
  stream --path P --body JSON [--plain FILE] [--chat]
                              a streamed request: text/event-stream, `data: {json}` events ending in
                              `data: [DONE]`, the chunk layout of the spec, the concatenation equal to the
                              text of the non-streamed response saved in FILE
  raw                         malformed HTTP: a 10 MB body (413), garbage request lines, a bad
                              Content-Length, huge headers, keep-alive; the server answers and stays up
  loris --slots N             slow clients (a byte every 0.5 s, silent connections) do not block a normal
                              request; a silent connection is closed by the server after about 10 s
  disconnect --slots N        streaming clients that go away mid-stream free their slots
  queue --slots N --queue Q   more simultaneous requests than slots + queue: the rest get 503
  load --clients C --requests R --ref PROMPT=FILE...
                              C concurrent clients x R greedy requests (max_tokens from --max-tokens), every
                              text equal to its prompt's reference
Only 127.0.0.1 is contacted; every wait is bounded.
"""
import argparse
import http.client
import json
import math
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
MARKUP = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")


# ---------------------------------------------------------------------------------------------- helpers

def loads(raw):
    """JSON of a response body: strict JSON; bytes that are not UTF-8 are kept as surrogate escapes so that
    a body with raw bytes can still be compared (utf8_ok reports them separately)."""
    if isinstance(raw, bytes):
        try:
            s = raw.decode("utf-8")
        except UnicodeDecodeError:
            s = raw.decode("utf-8", "surrogateescape")
    else:
        s = raw
    return json.loads(s)


def utf8_ok(raw):
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def same_text(text, ref):
    """The completion text equals the reference bytes (what `generate` printed after the prompt): exactly,
    or, where the reference is not valid UTF-8 (an untrained byte-level model emits any byte), with each
    invalid sequence replaced by U+FFFD as Python decodes it."""
    if not isinstance(text, str):
        return False
    if text.encode("utf-8", "surrogateescape") == ref:
        return True
    return text == ref.decode("utf-8", "replace")


def request(port, method, path, body=None, headers=None, timeout=60):
    """One HTTP request; returns (status, headers with lower-case names, body bytes)."""
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    h = {"Content-Type": "application/json"} if body is not None else {}
    h.update(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def raw_exchange(port, data, timeout=10, shut=True):
    """Sends bytes on a fresh connection and reads until the server closes (or timeout); returns the bytes
    received (b'' when the server closed without answering)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not b:
                break
            out += b
            if response_complete(out):
                break
    finally:
        s.close()
    return out


def recv_until(s, done, seconds):
    """What socket s sends until done(bytes so far), its end, an error or `seconds`."""
    got, t0 = b"", time.time()
    while time.time() - t0 < seconds:
        try:
            b = s.recv(65536)
        except OSError:
            break
        if not b:
            break
        got += b
        if done(got):
            break
    return got


def response_complete(buf):
    """True when buf holds a whole HTTP response with a Content-Length body."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            try:
                return len(body) >= int(v.strip())
            except ValueError:
                return False
    return False


def status_of(resp):
    """The status code of a raw HTTP response, or None."""
    try:
        line = resp.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) >= 2 and line[0].startswith(b"HTTP/1.") else None
    except (ValueError, IndexError):
        return None


def body_of(resp):
    return resp.partition(b"\r\n\r\n")[2]


def parse_sse(raw):
    """(chunks, done, problems): the JSON chunks of an event stream, whether it ended with [DONE] as its last
    event, and what was wrong with its framing."""
    problems, chunks, done = [], [], False
    text = raw.replace(b"\r\n", b"\n")
    events = [e for e in text.split(b"\n\n")]
    if events and events[-1].strip() == b"":
        events.pop()
    else:
        problems.append("the stream does not end with a blank line")
    for i, e in enumerate(events):
        if done:
            problems.append("an event after [DONE]: %r" % e[:80])
            break
        lines = [l for l in e.split(b"\n") if l and not l.startswith(b":")]
        data = [l for l in lines if l.startswith(b"data:")]
        if len(data) != 1 or len(lines) != 1:
            problems.append("event %d is not one data line: %r" % (i, e[:120]))
            continue
        payload = data[0][5:].lstrip(b" ")
        if payload == b"[DONE]":
            done = True
            continue
        if not utf8_ok(payload):
            problems.append("event %d is not UTF-8: %r" % (i, payload[:120]))
        try:
            chunks.append(loads(payload))
        except ValueError as ex:
            problems.append("event %d is not JSON (%s): %r" % (i, ex, payload[:120]))
    if not done:
        problems.append("no data: [DONE] at the end")
    return chunks, done, problems


def error_body_ok(raw, code):
    """An error body: {"error": {"message": non-empty string, "type": string, "code": code}}."""
    try:
        d = loads(raw)
        e = d["error"]
        return (isinstance(e["message"], str) and e["message"] != "" and isinstance(e.get("type"), str)
                and e.get("code") == code)
    except (ValueError, KeyError, TypeError):
        return False


def health(port, timeout=5):
    st, _, b = request(port, "GET", "/health", timeout=timeout)
    return loads(b) if st == 200 else None


def wait_idle(port, slots, within):
    """Polls /health until slots_idle == slots and queued == 0; returns the seconds it took, or None."""
    t0 = time.time()
    last = None
    while time.time() - t0 < within:
        try:
            last = health(port)
            if last and last.get("slots_idle") == slots and last.get("queued") == 0:
                return time.time() - t0
        except (OSError, http.client.HTTPException, ValueError):
            pass
        time.sleep(0.1)
    print("# /health after %.0f s: %s" % (within, last))
    return None


class Tally:
    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, cond, what, detail=None):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s%s" % (what, "" if detail is None else " (%s)" % detail))
        sys.stdout.flush()
        return cond

    def done(self):
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


def alive(port):
    try:
        return health(port) is not None
    except (OSError, http.client.HTTPException, ValueError):
        return False


# ---------------------------------------------------------------------------------------------- subcommands

def cmd_js(a):
    raw = open(a.file, "rb").read()
    refs = [open(f, "rb").read() for f in a.ref]
    try:
        d = loads(raw)
    except ValueError as ex:
        print("# %s: not JSON (%s): %r" % (a.file, ex, raw[:300]))
        sys.exit(1)
    env = {"d": d, "raw": raw, "refs": refs, "utf8_ok": utf8_ok, "MARKUP": MARKUP,
           "same": lambda text, i=0: same_text(text, refs[i]), "math": math, "json": json}
    try:
        ok = bool(eval(a.expr, env))
    except Exception as ex:  # a missing key is a failed check, not a crash
        print("# %s: %s: %r" % (a.expr, type(ex).__name__, ex))
        ok = False
    if not ok:
        print("# body: %r" % raw[:400])
        for i, r in enumerate(refs):
            print("# ref %d: %r" % (i, r[:200]))
    sys.exit(0 if ok else 1)


def cmd_stream(a):
    t = Tally("stream " + a.name)
    body = json.loads(a.body)
    body["stream"] = True
    c = http.client.HTTPConnection(HOST, a.port, timeout=60)
    c.request("POST", a.path, body=json.dumps(body).encode(), headers=dict(
        [("Content-Type", "application/json")] + ([("Authorization", "Bearer " + a.api_key)] if a.api_key else [])))
    r = c.getresponse()
    raw = r.read()
    c.close()
    t.check(r.status == 200, "streamed %s: status 200" % a.path, "%s: %r" % (r.status, raw[:200]))
    ctype = r.getheader("Content-Type") or ""
    t.check(ctype.startswith("text/event-stream"), "streamed: Content-Type text/event-stream", ctype)
    chunks, done, problems = parse_sse(raw)
    t.check(not problems, "streamed: well-formed events", "; ".join(problems[:3]))
    t.check(len(chunks) >= 1, "streamed: at least one chunk")
    if not chunks:
        t.done()
    obj = "chat.completion.chunk" if a.chat else "text_completion"
    prefix = "chatcmpl-" if a.chat else "cmpl-"
    t.check(all(ch.get("object") == obj for ch in chunks), "streamed: every chunk has object %s" % obj,
            [ch.get("object") for ch in chunks][:5])
    ids = {ch.get("id") for ch in chunks}
    t.check(len(ids) == 1 and str(next(iter(ids))).startswith(prefix), "streamed: one id %s... in all chunks" % prefix, ids)
    t.check(all(isinstance(ch.get("created"), int) and isinstance(ch.get("model"), str) for ch in chunks),
            "streamed: every chunk has created (int) and model")
    try:
        choices = [ch["choices"][0] for ch in chunks]
    except (KeyError, IndexError, TypeError):
        t.check(False, "streamed: every chunk has choices[0]")
        t.done()
    t.check(all(c.get("index") == 0 for c in choices), "streamed: choices[0].index 0")
    fin = [c.get("finish_reason") for c in choices]
    t.check(all(f is None for f in fin[:-1]) and fin[-1] in ("stop", "length"),
            "streamed: finish_reason null until the last chunk, then stop or length", fin[-4:])
    if a.chat:
        deltas = [c.get("delta") for c in choices]
        t.check(all(isinstance(dl, dict) for dl in deltas), "streamed chat: every chunk has a delta object")
        deltas = [dl if isinstance(dl, dict) else {} for dl in deltas]
        t.check(deltas[0] == {"role": "assistant"}, "streamed chat: the first delta is {\"role\": \"assistant\"}", deltas[0])
        t.check(deltas[-1] == {} and len(deltas) >= 2, "streamed chat: the last delta is {}", deltas[-1])
        mid = deltas[1:-1]
        t.check(all(set(dl) == {"content"} and isinstance(dl["content"], str) for dl in mid),
                "streamed chat: the deltas between are {\"content\": piece}", [dl for dl in mid if set(dl) != {"content"}][:3])
        text = "".join(dl.get("content", "") for dl in mid if isinstance(dl.get("content"), str))
        t.check(not any(m in text for m in MARKUP), "streamed chat: no template markup in the reply", repr(text[:200]))
    else:
        t.check(all(c.get("logprobs", "absent") is None for c in choices), "streamed: logprobs null in every chunk")
        t.check(all(isinstance(c.get("text"), str) for c in choices), "streamed: every chunk has a text")
        text = "".join(c.get("text") or "" for c in choices)
    if a.plain:
        plain = loads(open(a.plain, "rb").read())
        pc = plain["choices"][0]
        want = pc["message"]["content"] if a.chat else pc["text"]
        t.check(text == want, "streamed: the pieces concatenated equal the non-streamed text",
                "stream %r, plain %r" % (text[:120], want[:120]))
        t.check(fin[-1] == pc["finish_reason"], "streamed: the same finish_reason as non-streamed",
                "%s vs %s" % (fin[-1], pc["finish_reason"]))
    if a.ref:
        ref = open(a.ref, "rb").read()
        t.check(same_text(text, ref), "streamed: the text equals the generate reference", "%r vs %r" % (text[:80], ref[:80]))
    t.check(utf8_ok(raw), "streamed: the whole stream is UTF-8")
    t.done()


def cmd_raw(a):
    t = Tally("raw")
    port = a.port
    # 413: a 10 MB body, sent while the server may already have answered and closed
    big = 10 * 1024 * 1024
    head = ("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % big).encode()
    s = socket.create_connection((HOST, port), timeout=20)
    s.settimeout(1)
    got = bytearray()
    answered = threading.Event()
    t0 = time.time()

    def read_answer():
        while time.time() - t0 < 25:
            try:
                b = s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not b:
                break
            got.extend(b)
            if response_complete(bytes(got)):
                break
        answered.set()

    th = threading.Thread(target=read_answer, daemon=True)
    th.start()
    sent = 0
    try:
        s.sendall(head + b'{"prompt": "')
        filler = b"a" * (1 << 16)
        while sent < big and not answered.is_set() and time.time() - t0 < 20:
            try:
                n = s.send(filler[:min(len(filler), big - sent)])
                sent += n
            except socket.timeout:
                continue  # the server stopped reading: its answer may be on the way
    except OSError:
        pass  # reset by the server after its answer
    answered.wait(25)
    s.close()
    resp = bytes(got)
    print("# 10 MB body: %d bytes sent before the answer, answered after %.2f s" % (sent, time.time() - t0))
    t.check(status_of(resp) == 413, "a 10 MB body: 413", repr(resp[:200]))
    t.check(error_body_ok(body_of(resp), 413), "a 10 MB body: a JSON error body with code 413", repr(body_of(resp)[:200]))
    t.check(alive(port), "alive after the 10 MB body")
    # a Content-Length just over 1 MiB is refused from the header alone
    resp = raw_exchange(port, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 1048577\r\n\r\n{", timeout=10, shut=False)
    t.check(status_of(resp) == 413, "Content-Length 1048577 (1 MiB + 1): 413", repr(resp[:200]))
    # garbage: whatever the server answers, it answers 4xx or closes, and stays up
    cases = [
        ("a garbage request line", b"HELLO\r\n\r\n"),
        ("binary garbage", bytes(range(256)) * 4 + b"\r\n\r\n"),
        ("HTTP/9.9", b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n"),
        ("Content-Length not a number", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n{}"),
        ("a negative Content-Length", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}"),
        ("a huge Content-Length", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n{}"),
        ("a 100 KB header", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100000 + b"\r\n\r\n"),
        ("10000 headers", b"GET /health HTTP/1.1\r\n" + b"X-A: b\r\n" * 10000 + b"\r\n"),
        ("a 100 KB path", b"GET /" + b"p" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("a body shorter than Content-Length, then EOF", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\""),
        ("a raw NUL in a JSON string", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n{\"prompt\": \"a\x00\"}"),
    ]
    for what, data in cases:
        resp = raw_exchange(port, data, timeout=15)
        st = status_of(resp)
        t.check(resp == b"" or (st is not None and (400 <= st < 500 or st == 505)),
                "%s: a 4xx (505) answer or a closed connection" % what, repr(resp[:160]))
        # libmicrohttpd answers requests it refuses before they reach the server (bad request lines, headers
        # too large) with its own small HTML page; every answer of the server itself is JSON
        if st is not None and 400 <= st < 500 and body_of(resp) and b"<html>" not in body_of(resp):
            t.check(error_body_ok(body_of(resp), st), "%s: the %d has a JSON error body" % (what, st), repr(body_of(resp)[:160]))
    # a header line without a colon: refused (400) or ignored (200), never a crash
    resp = raw_exchange(port, b"GET /health HTTP/1.1\r\nHost x\r\nnonsense\r\n\r\n", timeout=15)
    t.check(resp == b"" or status_of(resp) in (200, 400), "a header without a colon: 200, 400 or a closed connection",
            repr(resp[:160]))
    # a chunked body: served (200) or refused (411/400/501); never a crash
    chunked = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"%x\r\n%s\r\n0\r\n\r\n")
    payload = b'{"prompt": "abc", "max_tokens": 2, "temperature": 0}'
    resp = raw_exchange(port, chunked % (len(payload), payload), timeout=15)
    t.check(status_of(resp) in (200, 400, 411, 501), "a chunked body: 200, 400, 411 or 501", repr(resp[:160]))
    t.check(alive(port), "alive after the malformed requests")
    # keep-alive: three requests over one connection (or a Connection: close the client follows)
    c = http.client.HTTPConnection(HOST, port, timeout=30)
    sts = []
    try:
        for _ in range(3):
            c.request("POST", "/v1/completions", body=payload, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            sts.append(r.status)
    except (OSError, http.client.HTTPException) as ex:
        sts.append(repr(ex))
    finally:
        c.close()
    t.check(sts == [200, 200, 200], "three requests on one HTTP/1.1 connection", sts)
    # pipelined: two requests in one write, two answers in order
    one = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
           % (len(payload), payload))
    s = socket.create_connection((HOST, port), timeout=15)
    try:
        s.sendall(one + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = recv_until(s, lambda got: got.count(b"HTTP/1.1 ") >= 2 or b'"status"' in got, 15)
    finally:
        s.close()
    # a server that answers only the first and closes is acceptable; a wrong answer is not
    first = status_of(got)
    t.check(first == 200, "pipelined: the first answer is 200", repr(got[:120]))
    print("# pipelined: %d answers to 2 requests" % got.count(b"HTTP/1.1 "))
    # a client that connects and closes at once, many times
    for _ in range(50):
        try:
            socket.create_connection((HOST, port), timeout=5).close()
        except OSError:
            pass
    t.check(alive(port), "alive after 50 empty connections")
    t.done()


def cmd_loris(a):
    t = Tally("loris")
    port = a.port
    silent = []
    t_open = time.time()
    for _ in range(a.silent):
        s = socket.create_connection((HOST, port), timeout=30)
        silent.append(s)
    partial = socket.create_connection((HOST, port), timeout=30)
    partial.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro")
    stop = threading.Event()
    trickled = [0]

    def trickle():
        s = socket.create_connection((HOST, port), timeout=30)
        msg = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"z" * 200
        try:
            for ch in msg:
                if stop.is_set():
                    break
                s.sendall(bytes([ch]))
                trickled[0] += 1
                stop.wait(0.5)
        except OSError:
            pass
        finally:
            s.close()

    th = threading.Thread(target=trickle, daemon=True)
    th.start()
    time.sleep(1.0)
    body = {"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}
    times = []
    for i in range(3):
        t0 = time.time()
        try:
            st, _, b = request(port, "POST", "/v1/completions", body, timeout=10)
        except (OSError, http.client.HTTPException) as ex:
            st, b = repr(ex), b""
        times.append(time.time() - t0)
        t.check(st == 200, "a completion while %d silent, one half-sent and one trickling connection are open: 200"
                % a.silent, st)
        time.sleep(0.5)
    t.check(max(times) < 5, "... within 5 s each", ["%.2f" % x for x in times])
    print("# completions beside the slow clients took %s s" % ", ".join("%.3f" % x for x in times))
    st = None
    try:
        hh = health(port, timeout=5)
        st = hh is not None
    except (OSError, http.client.HTTPException, ValueError):
        st = False
    t.check(st, "/health answers beside the slow clients")
    # the silent connections are closed by the server after about 10 s idle (bounded wait: 20 s from their start)
    t0 = time.time()
    closed = 0
    for s in silent + [partial]:
        s.settimeout(max(0.1, 20 - (time.time() - t0)))
        try:
            b = s.recv(4096)
            # an answer (408, or 400 for the half-sent body) followed by the close is fine too
            while b:
                b = s.recv(4096)
            closed += 1
        except socket.timeout:
            pass
        except OSError:
            closed += 1  # reset by the server
        finally:
            s.close()
    elapsed = time.time() - t_open
    t.check(closed == a.silent + 1, "idle connections closed by the server within 20 s", "%d of %d" % (closed, a.silent + 1))
    print("# %d idle connections closed, the last %.1f s after they were opened" % (closed, elapsed))
    stop.set()
    th.join(5)
    print("# the trickling client sent %d bytes" % trickled[0])
    t.check(alive(port), "alive after the slow clients")
    t.done()


def cmd_disconnect(a):
    t = Tally("disconnect")
    port = a.port
    for i in range(a.times):
        body = {"prompt": a.prompt, "max_tokens": a.max_tokens, "temperature": 1.0, "seed": i, "stream": True}
        if a.chat:
            body = {"messages": [{"role": "user", "content": a.prompt}], "max_tokens": a.max_tokens,
                    "temperature": 1.0, "seed": i, "stream": True}
        data = json.dumps(body).encode()
        path = "/v1/chat/completions" if a.chat else "/v1/completions"
        s = socket.create_connection((HOST, port), timeout=30)
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  % (path.encode(), len(data), data))
        got = b""
        t0 = time.time()
        while got.count(b"data: ") < 3 and time.time() - t0 < 30:
            try:
                b = s.recv(4096)
            except OSError:
                break
            if not b:
                break
            got += b
        t.check(got.count(b"data: ") >= 1, "disconnect %d: the stream started" % i, repr(got[:120]))
        if i % 2 == 0:  # half of them reset the connection (RST) instead of closing it
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    took = wait_idle(port, a.slots, a.within)
    t.check(took is not None, "after %d streams dropped mid-way, /health slots_idle returns to %d within %d s"
            % (a.times, a.slots, a.within))
    if took is not None:
        print("# slots idle again %.2f s after the last disconnect" % took)
    st, _, b = request(port, "POST", "/v1/completions", {"prompt": "abc", "max_tokens": 2, "temperature": 0}, timeout=30)
    t.check(st == 200, "a completion after the disconnects", st)
    t.done()


def cmd_queue(a):
    """More simultaneous requests than slots + queue: every connection is opened first, then all requests
    are written in one burst, so they reach the server while the first ones are still generating."""
    t = Tally("queue")
    port = a.port
    n = a.slots + a.queue + a.extra
    body = json.dumps({"prompt": a.prompt, "max_tokens": a.max_tokens, "temperature": 0}).encode()
    req = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    socks = [socket.create_connection((HOST, port), timeout=60) for _ in range(n)]
    for s in socks:
        s.sendall(req)
    results = [b""] * n

    def reader(i):
        results[i] = recv_until(socks[i], response_complete, 60)
        socks[i].close()

    ths = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(n)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(70)
    sts = [status_of(r) for r in results]
    n200, n503 = sts.count(200), sts.count(503)
    print("# %d simultaneous requests at %d slots, queue %d: %d x 200, %d x 503, others %s"
          % (n, a.slots, a.queue, n200, n503, [x for x in sts if x not in (200, 503)]))
    t.check(n200 + n503 == n, "every request got 200 or 503", sts)
    t.check(n503 >= 1, "at least one 503 when slots and queue are full")
    t.check(n200 >= a.slots + a.queue, "at least slots + queue requests were served", n200)
    bad = [r for r, st in zip(results, sts) if st == 503 and not error_body_ok(body_of(r), 503)]
    t.check(not bad, "every 503 has a JSON error body with code 503", repr(bad[0][:200]) if bad else None)
    texts = set()
    for r, st in zip(results, sts):
        if st == 200:
            try:
                texts.add(loads(body_of(r))["choices"][0]["text"])
            except (ValueError, KeyError, IndexError, TypeError):
                texts.add(None)
    t.check(len(texts) == 1 and None not in texts, "the served requests all have the same (greedy) text", len(texts))
    took = wait_idle(port, a.slots, 10)
    t.check(took is not None, "afterwards /health shows every slot idle and nothing queued")
    t.done()


def cmd_load(a):
    t = Tally("load")
    refs = []
    for spec in a.ref:
        p, _, f = spec.partition("=")
        refs.append((p, open(f, "rb").read()))
    results = []
    lock = threading.Lock()

    def client(ci):
        c = http.client.HTTPConnection(HOST, a.port, timeout=60)
        for j in range(a.requests):
            p, ref = refs[(ci + j) % len(refs)]
            stream = (j % 4 == 3)
            body = json.dumps({"prompt": p, "max_tokens": a.max_tokens, "temperature": 0, "stream": stream}).encode()
            t0 = time.time()
            try:
                c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
                r = c.getresponse()
                raw = r.read()
                st = r.status
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
            except (OSError, http.client.HTTPException) as ex:
                st, raw = repr(ex), b""
                c.close()
                c = http.client.HTTPConnection(HOST, a.port, timeout=60)
            dt = time.time() - t0
            text, err = None, None
            if st == 200:
                try:
                    if stream:
                        chunks, done, problems = parse_sse(raw)
                        if problems:
                            err = problems[0]
                        text = "".join(ch["choices"][0]["text"] for ch in chunks)
                    else:
                        text = loads(raw)["choices"][0]["text"]
                except (ValueError, KeyError, IndexError, TypeError) as ex:
                    err = repr(ex)
            ok = st == 200 and err is None and same_text(text, ref)
            with lock:
                results.append((ok, ci, j, p, st, text, ref, err, dt))
        c.close()

    t0 = time.time()
    ths = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(a.clients)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(max(1, a.limit - (time.time() - t0)))
    wall = time.time() - t0
    n = a.clients * a.requests
    bad = [r for r in results if not r[0]]
    for r in bad[:5]:
        print("# client %d request %d prompt %r: status %s, text %r, want %r%s" % (
            r[1], r[2], r[3], r[4], (r[5] or "")[:60], r[6][:60], ", " + r[7] if r[7] else ""))
    t.check(len(results) == n, "load: all %d requests finished within %d s" % (n, a.limit), len(results))
    t.check(all(r[4] == 200 for r in results), "load: every request answered 200",
            sorted({str(r[4]) for r in results}))
    t.check(not bad, "load: every text equals the generate reference of its prompt", "%d wrong" % len(bad))
    lat = sorted(r[8] for r in results) or [0]
    print("# load: %d clients x %d requests (max_tokens %d, every 4th streamed) in %.2f s: %.1f requests/s, "
          "latency median %.3f s, max %.3f s" % (a.clients, a.requests, a.max_tokens, wall, len(results) / max(wall, 1e-9),
                                                  lat[len(lat) // 2], lat[-1]))
    t.check(wait_idle(a.port, a.slots, 10) is not None, "load: afterwards every slot idle and nothing queued")
    t.done()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("js")
    p.add_argument("file")
    p.add_argument("expr")
    p.add_argument("--ref", action="append", default=[])
    for name in ("stream", "raw", "loris", "disconnect", "queue", "load"):
        p = sub.add_parser(name)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--slots", type=int, default=2)
        if name == "stream":
            p.add_argument("--path", default="/v1/completions")
            p.add_argument("--body", required=True)
            p.add_argument("--plain")
            p.add_argument("--ref")
            p.add_argument("--chat", action="store_true")
            p.add_argument("--api-key")
            p.add_argument("--name", default="")
        if name == "loris":
            p.add_argument("--silent", type=int, default=20)
        if name == "disconnect":
            p.add_argument("--times", type=int, default=6)
            p.add_argument("--prompt", default="Once upon a time")
            p.add_argument("--max-tokens", type=int, default=200)
            p.add_argument("--chat", action="store_true")
            p.add_argument("--within", type=int, default=5)
        if name == "queue":
            p.add_argument("--queue", type=int, required=True)
            p.add_argument("--extra", type=int, default=12)
            p.add_argument("--prompt", default="Once upon a time")
            p.add_argument("--max-tokens", type=int, default=200)
        if name == "load":
            p.add_argument("--clients", type=int, default=8)
            p.add_argument("--requests", type=int, default=20)
            p.add_argument("--max-tokens", type=int, default=8)
            p.add_argument("--ref", action="append", required=True)
            p.add_argument("--limit", type=int, default=120)
    a = ap.parse_args()
    {"js": cmd_js, "stream": cmd_stream, "raw": cmd_raw, "loris": cmd_loris, "disconnect": cmd_disconnect,
     "queue": cmd_queue, "load": cmd_load}[a.cmd](a)


if __name__ == "__main__":
    main()
