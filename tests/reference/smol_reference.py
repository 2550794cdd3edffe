#!/usr/bin/env python3
"""smol_reference.py: writes tests/fixtures/smol/reference.dat, the reference that tests/test_smol_parity.c
holds the compiled dsl-examples/smol.lmn to: logits and greedy decoding of SmolLM2-135M-Instruct.Q4_1.gguf
computed by llama.cpp (through the PyPI package llama-cpp-python), an implementation independent of ours.

Tooling only (CI never runs it); tests/fixtures/smol/README.md gives the commands and the versions used.

What llama.cpp runs: by default (--mode f32) the same file re-encoded with every tensor dequantised to F32
by llama.cpp's own quantizer (llama_model_quantize, ftype ALL_F32, allow_requantize). The weights are then
exactly the dequantised Q4_1/Q8_0 values that lmnet computes with, and llama.cpp's CPU matmuls run in f32
(on quantized weights it would first round every activation row to 8 bits, Q8_0/Q8_1, a deviation of its
own that lmnet does not make). KV cache in f32, flash attention off. --mode quant runs the Q4_1 file as it
is, for comparison (tests/test_smol_parity reads another fixture through $LMN_SMOL_FIXTURE).

Token ids come from llama.cpp's tokenizer of the same file (the GGUF's BPE vocabulary, `smollm`
pre-tokenizer, special tokens parsed). Greedy decoding is llama.cpp's: argmax of its last logits row, fed
back through its KV cache.

Fixture layout (little-endian):
  char magic[8] = "LMNSMOL1"; u32 vocab; u32 n_seq; u32 n_top; u32 n_gen
  per sequence: u32 T; i32 ids[T];
                per position: f32 min_logit; i32 top_id[n_top]; f32 top_logit[n_top]   (descending)
                u32 n_full; per full row: u32 pos; f32 logits[vocab]
                i32 greedy[n_gen]   (continuation of the whole sequence)

--bench N also times N greedy tokens after the prefill (the Q4_1 file and the F32 one; --threads, default 2).
"""
import argparse
import os
import struct
import sys
import tempfile
import time

import numpy as np
import llama_cpp
from llama_cpp import Llama

N_TOP = 20
N_GEN = 32
N_THREADS = 2

TEXT = (
    "The history of the printing press begins in the fifteenth century. Around 1440, Johannes Gutenberg "
    "combined movable metal type, oil-based ink and a wooden screw press, and within fifty years more than "
    "250 European cities had printing shops. By 1500 they had produced some 20 million volumes. Books became "
    "cheaper, literacy spread, and"
)
CHAT = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nExplain in two or three short sentences why the sky looks blue during the day and "
    "red or orange at sunset, and say what Rayleigh scattering has to do with it.<|im_end|>\n<|im_start|>assistant\n"
)
# full logits rows: (sequence, position), position -1 = last
FULL = {0: [None], 1: [0, -1]}  # None: middle of the sequence


def f32_copy(src, dst):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_ALL_F32
    params.allow_requantize = True
    params.nthread = N_THREADS
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    if rc != 0:
        sys.exit(f"llama_model_quantize failed with {rc}")


def load(path, threads=N_THREADS):
    return Llama(
        model_path=path,
        n_ctx=512,
        n_batch=512,
        n_ubatch=512,
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=True,
        type_k=0,  # GGML_TYPE_F32
        type_v=0,
        flash_attn=False,
        verbose=False,
    )


def run(llm, ids):
    """Logits [T, vocab] of ids and the greedy continuation of N_GEN tokens."""
    llm.reset()
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float32)
    gen = []
    for _ in range(N_GEN):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        gen.append(tok)
        llm.eval([tok])
    return logits, gen


def bench(path, ids, n, threads):
    llm = load(path, threads)
    llm.reset()
    llm.eval(ids)
    t0 = time.perf_counter()
    for _ in range(n):
        llm.eval([int(np.argmax(llm.scores[llm.n_tokens - 1]))])
    dt = time.perf_counter() - t0
    return n / dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--model", default=os.path.join(root, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "smol", "reference.dat"))
    ap.add_argument("--mode", choices=["f32", "quant"], default="f32")
    ap.add_argument("--bench", type=int, default=0, help="also time N greedy tokens after the prefill")
    ap.add_argument("--threads", type=int, default=N_THREADS, help="threads of the --bench runs")
    a = ap.parse_args()

    tok = Llama(model_path=a.model, vocab_only=True, verbose=False)
    seqs = [tok.tokenize(TEXT.encode(), add_bos=False, special=True),
            tok.tokenize(CHAT.encode(), add_bos=False, special=True)]
    for s in seqs:
        assert len(s) >= 64, [len(s) for s in seqs]

    with tempfile.TemporaryDirectory() as tmp:
        path = a.model
        if a.mode == "f32" or a.bench:
            f32 = os.path.join(tmp, "smol-f32.gguf")
            f32_copy(a.model, f32)
            if a.mode == "f32":
                path = f32
        llm = load(path)
        vocab = llm.n_vocab()
        out = [struct.pack("<8s4I", b"LMNSMOL1", vocab, len(seqs), N_TOP, N_GEN)]
        for si, ids in enumerate(seqs):
            logits, gen = run(llm, ids)
            T = len(ids)
            out.append(struct.pack(f"<I{T}i", T, *ids))
            for t in range(T):
                row = logits[t]
                top = np.argsort(-row, kind="stable")[:N_TOP]
                out.append(struct.pack("<f", float(row.min())))
                out.append(np.asarray(top, dtype="<i4").tobytes())
                out.append(np.asarray(row[top], dtype="<f4").tobytes())
            full = [T // 2 if p is None else (p % T) for p in FULL[si]]
            out.append(struct.pack("<I", len(full)))
            for p in full:
                out.append(struct.pack("<I", p) + np.asarray(logits[p], dtype="<f4").tobytes())
            out.append(np.asarray(gen, dtype="<i4").tobytes())
            print(f"sequence {si}: {T} tokens; greedy: {tok.detokenize(gen).decode(errors='replace')!r}")
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        with open(a.out, "wb") as f:
            f.write(b"".join(out))
        print(f"wrote {a.out} ({sum(map(len, out))} bytes) with llama-cpp-python {llama_cpp.__version__}, "
              f"mode {a.mode}")
        if a.bench:
            for name, p in (("Q4_1", a.model), ("F32", f32)):
                print(f"llama.cpp {name}: {bench(p, seqs[1], a.bench, a.threads):.1f} tokens/s after a "
                      f"{len(seqs[1])}-token prefill, {a.threads} threads")


if __name__ == "__main__":
    main()
