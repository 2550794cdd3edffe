#!/usr/bin/env python3
"""serve_bench.py: what `NAME serve` costs on top of generation, with SmolLM2 (`make bench-serve`).

  python3 bench/serve_bench.py SMOL_EXE [--rounds 5] [--threads 2] [--tokens 128]

Each round (the machine's 1-minute load average recorded before it) measures, alternating:
  generate  `NAME generate -p PROMPT -n TOKENS -t 0`: its tokens/s (after the prefill, as it reports them);
  stream    the same completion streamed by the server (cache_prompt false, 1 slot): tokens/s from the first
            to the last piece as the client receives them;
  overhead  the round trip of a completion with max_tokens 0 (HTTP, JSON, tokenizing, no model work),
            median of 20;
  chat      a two-turn conversation streamed through /v1/chat/completions: the time to the first piece of
            turn 1 (its whole prompt prefilled) and of turn 2 (the history is in the slot's caches, only the
            new message is fed).
Prints every round and the medians; rounds whose load average was above 0.5 are marked loaded and left
out of the medians (all rounds are listed)."""
import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("exe")
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--tokens", type=int, default=128)
a = ap.parse_args()
PROMPT = "The history of the city of Paris begins"


def start_server():
    p = subprocess.Popen([a.exe, "serve", "--port", "0", "--parallel", "1", "--threads", str(a.threads)],
                         stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while time.time() - t0 < 120:
        line = p.stderr.readline()
        m = re.search(r"listening on http://[0-9.]+:(\d+)", line)
        if m:
            return p, int(m.group(1))
        if not line and p.poll() is not None:
            break
    sys.exit("serve_bench: the server did not start")


def stream(port, path, body):
    """Seconds to the first piece, seconds from the first to the last, and the pieces."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t0 = time.perf_counter()
    c.request("POST", path, json.dumps(dict(body, stream=True)), {"Content-Type": "application/json"})
    r = c.getresponse()
    times, pieces = [], []
    for line in r:
        line = line.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        ch = json.loads(line[6:])["choices"][0]
        text = ch.get("text") if "text" in ch else ch.get("delta", {}).get("content")
        if text:
            times.append(time.perf_counter() - t0)
            pieces.append(text)
    c.close()
    return times[0], times[-1] - times[0], pieces


def round_trip(port, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    c.getresponse().read()
    c.close()
    return time.perf_counter() - t0


def generate_tps():
    r = subprocess.run([a.exe, "generate", "-p", PROMPT, "-n", str(a.tokens), "-t", "0", "--threads",
                        str(a.threads)], capture_output=True, text=True, check=True)
    return float(re.search(r"(\d+) tokens at ([0-9.]+) tok/s", r.stderr).group(2))


server, port = start_server()
rows = []
try:
    for i in range(a.rounds):
        load = os.getloadavg()[0]
        g = generate_tps()
        _, span, pieces = stream(port, "/v1/completions",
                                 {"prompt": PROMPT, "max_tokens": a.tokens, "temperature": 0, "cache_prompt": False})
        s = (len(pieces) - 1) / span if span > 0 else 0
        over = statistics.median(round_trip(port, {"prompt": PROMPT, "max_tokens": 0}) for _ in range(20))
        q1 = {"role": "user", "content": "What is the capital of France? Answer in one sentence."}
        t1, _, rep = stream(port, "/v1/chat/completions", {"messages": [q1], "max_tokens": 32, "temperature": 0,
                                                           "cache_prompt": False})
        turn2 = [q1, {"role": "assistant", "content": "".join(rep)}, {"role": "user", "content": "And of Germany?"}]
        t2, _, _ = stream(port, "/v1/chat/completions", {"messages": turn2, "max_tokens": 32, "temperature": 0})
        rows.append(dict(load=load, generate=g, stream=s, overhead_ms=1e3 * over, ttft1_ms=1e3 * t1, ttft2_ms=1e3 * t2))
        r = rows[-1]
        print("round %d (load %.2f%s): generate %.1f tok/s | stream %.1f tok/s (%.3f) | overhead %.2f ms | "
              "chat first piece: turn 1 %.0f ms, turn 2 %.0f ms" % (i + 1, load, ", loaded" if load > 0.5 else "",
              r["generate"], r["stream"], r["stream"] / r["generate"], r["overhead_ms"], r["ttft1_ms"],
              r["ttft2_ms"]), flush=True)
finally:
    server.terminate()
    server.wait(30)
quiet = [r for r in rows if r["load"] <= 0.5]
if not quiet:
    print("every round ran on a loaded machine: no medians")
    sys.exit(0)
med = {k: statistics.median(r[k] for r in quiet) for k in quiet[0]}
print("medians of %d quiet rounds (%d threads, %d tokens): generate %.1f tok/s, stream %.1f tok/s (ratio %.3f), "
      "server overhead %.2f ms per request, chat first piece turn 1 %.0f ms, turn 2 %.0f ms"
      % (len(quiet), a.threads, a.tokens, med["generate"], med["stream"], med["stream"] / med["generate"],
         med["overhead_ms"], med["ttft1_ms"], med["ttft2_ms"]))
