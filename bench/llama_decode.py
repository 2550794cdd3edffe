#!/usr/bin/env python3
"""llama_decode.py: the llama.cpp side of bench/decode_bench.sh, through llama-cpp-python (PyPI).

    llama_decode.py MODEL.gguf THREADS PROMPT NEW

Loads MODEL with THREADS threads (decode and batch), feeds PROMPT random token ids as one batch (the prefill,
timed), then NEW greedy tokens one at a time (argmax of the last logits, fed back: timed). Prints the same
`key value` lines as bench/bench_step.c: prefill_s, prefill_tok_s, decode_tok_s, peak_rss_kib (the whole
process: Python and numpy included; base_rss_kib is what the process held before the model was loaded)."""
import resource
import sys
import time

import numpy as np
import llama_cpp
from llama_cpp import Llama


def main():
    path, threads, P, N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    llm = Llama(model_path=path, n_ctx=max(512, P + N + 8), n_batch=512, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    vocab = llm.n_vocab()
    ids = [int(x) for x in np.random.default_rng(1).integers(100, vocab - 100, P)]
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(ids)
    prefill = time.perf_counter() - t0
    ctx = llm._ctx.ctx
    t0 = time.perf_counter()
    for _ in range(N):
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(vocab,))
        llm.eval([int(np.argmax(logits))])
    decode = time.perf_counter() - t0
    print(f"prefill_s {prefill:.6f}")
    print(f"prefill_tok_s {P / prefill:.4f}")
    if N:
        print(f"decode_tok_s {N / decode:.4f}")
    print(f"peak_rss_kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")
    print(f"base_rss_kib {base}")
    print(f"version {llama_cpp.__version__}")


if __name__ == "__main__":
    main()
