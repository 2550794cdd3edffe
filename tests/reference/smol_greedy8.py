#!/usr/bin/env python3
"""smol_greedy8.py: writes tests/fixtures/smol/greedy8.dat, llama.cpp's greedy continuations of five chat
prompts on SmolLM2-135M-Instruct.Q4_1.gguf as the file is, with llama.cpp's defaults: its CPU matmuls round
every activation row to 8 bits (Q8_1 for the Q4_1 weights, Q8_0 for the Q8_0 embedding), as lmnet's decoding
does by default (runtime/qmat.h). tests/test_smol_parity.c compares lmnet's 8-bit decoding with them: at
least 4 of the 5 continuations must be equal, and the first divergence is reported.

Tooling only (CI never runs it), with llama-cpp-python from PyPI (tests/fixtures/smol/README.md):
    python3 tests/reference/smol_greedy8.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf] [--out ...]

Layout (little-endian): char magic[8] = "LMNGRDY1"; u32 n_prompts; u32 n_gen;
                        per prompt: u32 T; i32 ids[T]; i32 greedy[n_gen]
"""
import argparse
import os
import struct

import numpy as np
import llama_cpp
from llama_cpp import Llama

N_GEN = 128
SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
PROMPTS = [
    "What is the capital of France?",
    "Explain in a few sentences how plants make food from sunlight.",
    "Write a short poem about the sea.",
    "Give me three tips for learning a new language.",
    "What is the difference between a virus and a bacterium?",
]


def chat(text):
    return f"{SYSTEM}<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(root, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "smol", "greedy8.dat"))
    a = ap.parse_args()
    # logits_all: llama-cpp-python fills its scores rows only then; it changes no arithmetic
    llm = Llama(model_path=a.model, n_ctx=512, n_threads=2, n_threads_batch=2, logits_all=True, verbose=False)
    out = [struct.pack("<8s2I", b"LMNGRDY1", len(PROMPTS), N_GEN)]
    for p in PROMPTS:
        ids = llm.tokenize(chat(p).encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(ids)
        gen = []
        for _ in range(N_GEN):  # greedy, through the KV cache; no stop at end-of-turn: 128 tokens each
            tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            gen.append(tok)
            llm.eval([tok])
        out.append(struct.pack(f"<I{len(ids)}i{N_GEN}i", len(ids), *ids, *gen))
        print(f"{p!r}: {len(ids)} tokens -> {llm.detokenize(gen).decode(errors='replace')!r}")
    with open(a.out, "wb") as f:
        f.write(b"".join(out))
    print(f"wrote {a.out} with llama-cpp-python {llama_cpp.__version__}")


if __name__ == "__main__":
    main()
