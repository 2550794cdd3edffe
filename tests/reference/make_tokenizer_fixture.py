#!/usr/bin/env python3
"""make_tokenizer_fixture.py: writes tests/fixtures/tokenizer/smollm2_ids.txt, the token ids that an
OUTSIDE implementation, llama.cpp's tokenizer (through the PyPI package llama-cpp-python), gives for hard
strings with the vocabulary of models/SmolLM2-135M-Instruct.Q4_1.gguf (tokenizer.ggml.pre = smollm) and,
in further sections, with the same vocabulary relabelled tokenizer.ggml.pre = gpt-2, qwen2 and llama-bpe.
tests/test_tokenizer.c checks that runtime/tokenizer_bpe.c gives exactly the same ids.

    python3 -m venv /tmp/lcpp && /tmp/lcpp/bin/pip install llama-cpp-python gguf tokenizers  # builds llama.cpp
    make models
    /tmp/lcpp/bin/python tests/reference/make_tokenizer_fixture.py \\
        models/SmolLM2-135M-Instruct.Q4_1.gguf > tests/fixtures/tokenizer/smollm2_ids.txt

Ids come from Llama(model_path, vocab_only=True).tokenize(text, add_bos=False, special=True): special
tokens such as <|im_start|> are matched in the text, no BOS is added. The relabelled vocabularies are
written with the `gguf` package's GGUFWriter (the tokenizer keys and the few llama.* keys llama.cpp's
loader wants; no tensors). Only valid UTF-8 is written: llama.cpp
replaces invalid bytes by U+FFFD (lmnet keeps them), so invalid input is tested by round trips instead.

As a second, independent check the same ids are computed with Hugging Face's `tokenizers` (Rust), set up
from the GGUF vocabulary the way the models' tokenizer.json files are (smollm: Digits(individual_digits)
+ ByteLevel; gpt-2: ByteLevel; qwen2 / llama-bpe: Split(regex) + ByteLevel, llama-bpe with
ignore_merges); every case where the two disagree is reported on stderr (the fixture keeps llama.cpp's).
`--ref hf` writes Hugging Face's ids instead (for when llama-cpp-python cannot be built).

File format (UTF-8 text): lines starting with '#' are comments (each case is preceded by one showing the
text with Python's ascii()); "@pre NAME" starts the section of another pre-tokenizer (the first section is
smollm, the file's own); each case is one line "HEX<TAB>ID ID ...", HEX being the text's UTF-8 bytes in
lower-case hex.
"""
import argparse
import hashlib
import os
import random
import sys
import tempfile

CASES = [
    # digits: SmolLM splits every digit (formats.md §2.4)
    "12345 3.14159 1,000,000",
    "3141592653589793238462643383279502884197",
    "Hello world! 123",
    "x=-42; y=+7.5e-3; z=0x1F; v1.2.3-rc4",
    "x\u00b2\u00b3 \u00bd \u2460\u2461 \u216b \u0663\u0664\u0665 \u0967\u0968\u0969 \uff13\uff14\uff15 \U0001d7d9",
    # white space
    "   leading spaces",
    "trailing spaces   ",
    "a  b   c    d",
    "tabs\tand\t\ttabs \t x",
    "new\nlines\n\n\nmany\n",
    "\r\n windows\r\nline\r\n",
    " \n \n ",
    "x \t\n y",
    " ",
    "\n",
    "\n\n\n\n",
    "                                        forty spaces",
    "\u00a0nbsp\u00a0 \u3000ideographic\u2028line\u2029para \x0b\x0c\u0085next\u1680\u2003",
    # accents, scripts, combining marks
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00dcn\u00efc\u00f6d\u00e9 Stra\u00dfe",
    "cafe\u0301 n\u0303 a\u0308\u0304 Z\u0351\u0352\u0353alg\u0300o",
    "\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5\uff0c\u8fd9\u662f\u4e00\u4e2a\u53e5\u5b50\u3002",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e2\u05d1\u05e8\u05d9\u05ea \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442",
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22 \u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8",
    # emoji, ZWJ sequences, modifiers, flags
    "\U0001f600",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family",
    "\U0001f3f3\ufe0f\u200d\U0001f308 \U0001f44d\U0001f3fd \U0001f1eb\U0001f1f7 I \u2764\ufe0f NY",
    "a\u200bb\u200dc\ufeffd\u2060e",
    # code
    "def f(x):\n    return x ** 2\n\n\tif x:\n\t\tpass\n",
    "int main(void) { return 0; }",
    "for (int i = 0; i < n; i++) {\n        a[i] = b[i] * 2;\n}\n",
    "    \n        \n\t\n",
    "#include <stdio.h>\n// comment\n/* block */ x->y && z || !w;",
    "email@example.com https://example.org/path?q=1&r=2#frag",
    "\"quoted\" 'single' `back` (paren) [bracket] {brace} <angle>",
    "Hello!!! ??? ... --- *** ___ === ~~~",
    # special tokens
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "a<|endoftext|>b",
    "<|im_start|><|im_end|><|im_start|>",
    "<|im_start",
    "< |im_start|>",
    "<repo_name>x<file_sep>y<filename>z.py<gh_stars>10",
    "<jupyter_code>print(1)<jupyter_output>1<empty_output>",
    # contractions, case
    "don't I'll we've they're she'd it's I'm",
    "DON'T I'LL WE'VE THEY'RE",
    "'s 's 't 're 've 'm 'll 'd ' '",
    "rock'n'roll o'clock ''quoted''",
    "HeLLo WoRLD iPhone McDonald's",
    "CamelCaseIdentifierName snake_case_name SCREAMING_CASE",
    # control characters
    "\x00nul\x01\x02\x1b[31mred\x1b[0m\x7f",
    # long runs
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
]

# Random strings drawn from a pool that mixes every class the pre-tokenizer tells apart.
POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") +
        list(" \t\n\r  '.,;:!?-_()[]{}<>/\\|\"#$%&*+=@^`~") +
        ["'s", "'ll", "'T", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "\u00e9", "\u00df", "\u00a0",
         "\u0301", "\u4e2d", "\u6587", "\u3042", "\u0627", "\u05d0", "\u03b1", "\u0436", "\u00b2", "\u0663",
         "\u2167", "\u3000", "\u2028", "\u200d", "\ufe0f", "\U0001f600", "\U0001f44d", "\U0001f3fd", "\u20ac",
         "\u2014", "\u00ab", "\x00", "\x1f", "\x7f", "\u0085", "\U00010348", "\U00020000"])


def random_cases(n, seed=20240607):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 40)
        out.append("".join(rng.choice(POOL) for _ in range(k)))
    for _ in range(n // 4):  # random code points of the BMP and the supplementary planes
        k = rng.randint(1, 12)
        cps = []
        while len(cps) < k:
            c = rng.choice([rng.randint(0x20, 0x7FF), rng.randint(0x800, 0xFFFD), rng.randint(0x10000, 0x2FFFF)])
            if not 0xD800 <= c <= 0xDFFF:
                cps.append(chr(c))
        out.append("".join(cps))
    return out


PRES = ["smollm", "gpt-2", "qwen2", "llama-bpe"]
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
            r"\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_RE = QWEN2_RE.replace(r"\p{N}|", r"\p{N}{1,3}|")


def gguf_vocab(path):
    from gguf import GGUFReader
    r = GGUFReader(path)

    def strs(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    f = r.fields["tokenizer.ggml.token_type"]
    types = [int(f.parts[i][0]) for i in f.data]
    return strs("tokenizer.ggml.tokens"), types, strs("tokenizer.ggml.merges")


def write_relabelled(vocab, pre, path):
    """The tokenizer keys of the model with tokenizer.ggml.pre = pre (no tensors)."""
    import gguf
    toks, types, merges = vocab
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    w.add_vocab_size(len(toks))
    w.add_context_length(8192)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(64)
    w.add_head_count(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_cpp_tokenizer(path):
    from llama_cpp import Llama
    llm = Llama(model_path=path, vocab_only=True, verbose=False)
    return lambda text: llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def hf_tokenizer(vocab, pre):
    from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers
    toks, types, merges = vocab
    bpe = models.BPE(vocab={t: i for i, t in enumerate(toks)}, merges=[tuple(m.split(" ", 1)) for m in merges],
                     ignore_merges=(pre == "llama-bpe"))
    tk = Tokenizer(bpe)
    if pre == "smollm":
        tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                    pre_tokenizers.ByteLevel(add_prefix_space=False)])
    elif pre == "gpt-2":
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tk.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_RE if pre == "qwen2" else LLAMA3_RE), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False)
                           for t, ty in zip(toks, types) if ty in (2, 3, 4)])
    return lambda text: tk.encode(text, add_special_tokens=False).ids


def main():
    ap = argparse.ArgumentParser(description="writes the tokenizer fixture to stdout")
    ap.add_argument("gguf", help="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--ref", choices=["llama.cpp", "hf"], default="llama.cpp", help="whose ids the fixture holds")
    opt = ap.parse_args()
    ref, path = opt.ref, opt.gguf
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    vocab = gguf_vocab(path)
    texts = CASES + random_cases(200)
    w = sys.stdout.write
    if ref == "llama.cpp":
        import llama_cpp
        version = "llama.cpp tokenizer via llama-cpp-python %s" % llama_cpp.__version__
    else:
        import tokenizers
        version = "Hugging Face tokenizers %s (llama-cpp-python was not available)" % tokenizers.__version__
    w("# smollm2_ids.txt: GENERATED by tests/reference/make_tokenizer_fixture.py; do not edit.\n")
    w("# reference: %s; tokenize(add_bos=False, special=True)\n" % version)
    w("# vocabulary: SmolLM2-135M-Instruct.Q4_1.gguf sha256 %s\n" % digest)
    w("# format: '# ascii(text)' then 'HEX<TAB>IDS' (HEX = UTF-8 bytes of the text); '@pre NAME': same vocabulary,\n")
    w("# tokenizer.ggml.pre relabelled NAME\n")
    tmp = tempfile.mkdtemp()
    disagree = 0
    for pre in PRES:
        if pre == "smollm":
            gpath = path
        else:
            gpath = os.path.join(tmp, pre + ".gguf")
            write_relabelled(vocab, pre, gpath)
            w("@pre %s\n" % pre)
        hf = hf_tokenizer(vocab, pre)
        main_ref = llama_cpp_tokenizer(gpath) if ref == "llama.cpp" else hf
        if pre == "smollm" and ref == "llama.cpp":  # third-party vectors of formats.md §2.4
            assert main_ref("Hello world! 123") == [19556, 905, 17, 216, 33, 34, 35]
        for text in (texts if pre == "smollm" else texts[: len(CASES)] + texts[len(CASES):len(CASES) + 60]):
            ids = main_ref(text)
            other = hf(text)
            if other != ids:
                disagree += 1
                sys.stderr.write("%s: %s and HF disagree on %s:\n  %s\n  %s\n" % (pre, ref, ascii(text), ids, other))
            w("# %s\n" % ascii(text))
            w("%s\t%s\n" % (text.encode("utf-8").hex(), " ".join(str(i) for i in ids)))
    sys.stderr.write("%d cases where %s and Hugging Face tokenizers disagree\n" % (disagree, ref))


if __name__ == "__main__":
    main()
