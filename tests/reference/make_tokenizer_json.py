#!/usr/bin/env python3
"""make_tokenizer_json.py: writes Hugging Face tokenizer.json directories made from the vocabulary and
merges of a GGUF file (by default models/SmolLM2-135M-Instruct.Q4_1.gguf), one per pre-tokenizer that
runtime/tokenizer_hf.c recognises, for tests/test_tokenizer_hf.c to compare with the GGUF tokenizer and
with tests/fixtures/tokenizer/smollm2_ids.txt. Only the standard library: the GGUF header is read here.

    python3 tests/reference/make_tokenizer_json.py models/SmolLM2-135M-Instruct.Q4_1.gguf build/tokjson

OUT/NAME/ for NAME in the fixture's sections (smollm, gpt-2, qwen2, llama-bpe), each set up the way the
models' own tokenizer.json files are (smollm: Digits(individual_digits) + ByteLevel; gpt-2: ByteLevel;
qwen2: NFC normalizer, Split(regex) + ByteLevel; llama-bpe: Split(regex) + ByteLevel, ignore_merges), and
OUT/smollm-pairs/ (the smollm regex written as Split("\\p{N}"), merges as ["a", "b"] pairs, non-ASCII text
unescaped). BOS/EOS: tokenizer_config.json names them (a string, or an object with "content") in smollm,
smollm-pairs and llama-bpe; config.json gives their ids in gpt-2 and qwen2. Special (CONTROL) and
USER_DEFINED tokens become added_tokens.
"""
import json
import os
import struct
import sys

GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
             r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
            r"\s*[\r\n]+|\s+(?!\S)|\s+")

SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.d, self.o = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)[0]
        self.o += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.o:self.o + n].decode("utf-8")
        self.o += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<I"), self.take("<Q")
            return [self.value(et) for _ in range(n)]
        return self.take(SCALARS[t])


def read_gguf_kv(path):
    with open(path, "rb") as f:
        data = f.read(64 << 20)  # the header of a small model is a few MB
    r = Reader(data)
    if r.take("<I") != 0x46554747:
        sys.exit(f"{path}: not a GGUF file")
    r.take("<I")
    r.take("<Q")
    kv = {}
    for _ in range(r.take("<Q")):
        key = r.string()
        kv[key] = r.value(r.take("<I"))
    return kv


def byte_level(use_regex):
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": use_regex}


def split(regex):
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


VARIANTS = {
    # name: (pre_tokenizer, normalizer, merges as pairs, ignore_merges, ensure_ascii, BOS/EOS in)
    "smollm": ({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                      byte_level(True)]}, None, False, None, True, "tokcfg"),
    "smollm-pairs": ({"type": "Sequence", "pretokenizers": [split(r"\p{N}"), byte_level(True)]}, None, True,
                     None, False, "tokcfg-object"),
    "gpt-2": (byte_level(True), None, False, None, True, "config"),
    "qwen2": ({"type": "Sequence", "pretokenizers": [split(QWEN2_RE), byte_level(False)]}, {"type": "NFC"},
              False, False, False, "config"),
    "llama-bpe": ({"type": "Sequence", "pretokenizers": [split(LLAMA3_RE), byte_level(False)]}, None, True, True,
                  True, "tokcfg"),
}


def tokenizer_json(kv, variant):
    pre, norm, pairs, ignore_merges, _, _ = VARIANTS[variant]
    tokens = kv["tokenizer.ggml.tokens"]
    types = kv.get("tokenizer.ggml.token_type", [1] * len(tokens))
    merges = kv["tokenizer.ggml.merges"]
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": ty == 3} for i, (t, ty) in enumerate(zip(tokens, types)) if ty in (3, 4)]
    model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
             "vocab": {t: i for i, t in enumerate(tokens)},
             "merges": [m.split(" ", 1) for m in merges] if pairs else merges}
    if ignore_merges is not None:
        model["ignore_merges"] = ignore_merges
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": norm,
            "pre_tokenizer": pre, "post_processor": None,
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": model}


def write(path, obj, ensure_ascii=True):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=ensure_ascii, indent=1)


def main():
    gguf = sys.argv[1] if len(sys.argv) > 1 else "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    out = sys.argv[2] if len(sys.argv) > 2 else "build/tokjson"
    kv = read_gguf_kv(gguf)
    tokens = kv["tokenizer.ggml.tokens"]
    bos, eos = kv.get("tokenizer.ggml.bos_token_id"), kv.get("tokenizer.ggml.eos_token_id")
    for name, (_, _, _, _, ensure_ascii, special_in) in VARIANTS.items():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        write(os.path.join(d, "tokenizer.json"), tokenizer_json(kv, name), ensure_ascii)
        if special_in == "config":
            write(os.path.join(d, "config.json"), {"bos_token_id": bos, "eos_token_id": [eos]})
        else:
            wrap = (lambda t: {"content": t, "special": True}) if special_in == "tokcfg-object" else (lambda t: t)
            write(os.path.join(d, "tokenizer_config.json"),
                  {"add_bos_token": False, "bos_token": wrap(tokens[bos]), "eos_token": wrap(tokens[eos])})
            write(os.path.join(d, "config.json"), {"bos_token_id": 7, "eos_token_id": 8})  # loses to the above


if __name__ == "__main__":
    main()
