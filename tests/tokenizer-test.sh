#!/usr/bin/env bash
# tokenizer-test.sh LMNC: tokenizers of compiled networks beyond a model's own GGUF (issue 13):
#   1. a Hugging Face directory model (tests/fixtures/hf/llama, a tiny llama with vocab_size 32) with the
#      byte-level BPE tokenizer.json of tests/fixtures/hf/tokenizer/ (32 tokens; BOS/EOS from its
#      tokenizer_config.json) trains 3 steps and writes dump-state, whose batch holds the tokenizer's ids;
#   2. a from-scratch gpt2 (vocab 49,200) that borrows SmolLM2's tokenizer with `tokenizer "FILE"` (a path
#      relative to the .lmn file) trains 2 steps and generates, run from another directory; the same with
#      the tokenizer.json directory `make unit` made from the GGUF (BUILD/tokjson/smollm), when it is there,
#      whose first loss must equal the GGUF's (the same ids);
#      with the tokenizer's file gone, the error names it as the tokenizer of the model.
# Part 2 needs models/SmolLM2-135M-Instruct.Q4_1.gguf (`make models`) and is skipped with a notice without it.
set -euo pipefail
lmnc=$(cd "$(dirname "${1:-bin/lmnc}")" && pwd)/$(basename "${1:-bin/lmnc}")
root=$PWD
build=${BUILD:-build}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*"; fi; }
cflags="-std=c11 -O2 -Wall -Wextra -Werror -Wno-format-truncation"
net_tail='vertex v = m frozen
tokens -> embed(m) -> linear(bias) -> v
v -> head(m) -> logits
loss lm = cross_entropy(logits, next(tokens))'

# ---- 1. a Hugging Face directory with its tokenizer.json
mkdir -p "$dir/hf/llama"
cp "$root/tests/fixtures/hf/llama/config.json" "$dir/hf/llama/"
cp "$root/tests/fixtures/hf/llama/model.safetensors.dat" "$dir/hf/llama/model.safetensors"
cp "$root/tests/fixtures/hf/tokenizer/"* "$dir/hf/llama/"
printf 'network hft\nmodel m = safetensors("llama")\n%s\n' "$net_tail" > "$dir/hf/hft.lmn"
"$lmnc" compile "$dir/hf/hft.lmn" -o "$dir/hf/out" > /dev/null
make -s -C "$dir/hf/out" LMNET="$root" CFLAGS="$cflags" > /dev/null
for i in $(seq 40); do echo "the cat sat on the mat with the hat"; done > "$dir/hf/text.txt"
printf 'data: {train: text.txt, val_fraction: 0.1}\nbatch: 2\nseq_len: 16\nsteps: 3\nthreads: 1\neval: {every: 0, batches: 1}\ncheckpoint: {dir: ck}\nlog: {every: 1}\n' > "$dir/hf/t.yaml"
rc=0
"$dir/hf/out/hft" train -c "$dir/hf/t.yaml" > "$dir/hf/train.log" 2>&1 || rc=$?
check test "$rc" = 0
check grep -q '^step 3/3 | loss' "$dir/hf/train.log"
rc=0
"$dir/hf/out/hft" dump-state -c "$dir/hf/t.yaml" -o "$dir/hf/state.safetensors" > "$dir/hf/dump.log" 2>&1 || rc=$?
check test "$rc" = 0
check python3 - "$dir/hf/state.safetensors" << 'EOF'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
head = json.loads(data[8:8 + n])
t = head["batch:tokens"]
ids = struct.unpack("<%df" % (len(data[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]]) // 4),
                    data[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]])
# "the cat ..." in the fixture's tokens: 'th' (29) and 'Ġt' (28) merge, nothing is past 31
assert all(0 <= i < 32 for i in ids) and 29 in ids, ids
assert head["__metadata__"]["vocab"] == "32"
EOF
[ "$rc" = 0 ] || cat "$dir/hf/train.log" "$dir/hf/dump.log"

# ---- 2. a from-scratch gpt2 borrowing SmolLM2's tokenizer
smol="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -f "$smol" ]; then
  echo "tokenizer: NOTE: $smol is absent (make models): the borrowed-tokenizer part is skipped"
else
  mkdir -p "$dir/g/tok" "$dir/run"
  ln -s "$smol" "$dir/g/tok/smol.gguf"
  gpt2='model m = gpt2 { dim 64 layers 1 heads 2 ffn 128 vocab 49200 ctx 64 } tokenizer'
  printf 'network gb\n%s "tok/smol.gguf"\n%s\n' "$gpt2" "$net_tail" | sed 's/ frozen$//' > "$dir/g/gb.lmn"
  "$lmnc" info "$dir/g/gb.lmn" > "$dir/g/info.txt"
  check grep -q "^tokenizer: .*tok/smol.gguf, borrowed by model m (49,152 tokens for its vocabulary of 49,200)" "$dir/g/info.txt"
  "$lmnc" compile "$dir/g/gb.lmn" -o "$dir/g/out" > /dev/null
  make -s -C "$dir/g/out" LMNET="$root" CFLAGS="$cflags" > /dev/null
  head -c 30000 "$root/README.md" > "$dir/g/text.txt"
  printf 'data: {train: text.txt, val_fraction: 0.1}\nbatch: 2\nseq_len: 32\nsteps: 2\nthreads: 1\neval: {every: 0, batches: 1}\ncheckpoint: {dir: ck}\nlog: {every: 1}\n' > "$dir/g/t.yaml"
  rc=0
  (cd "$dir/run" && "$dir/g/out/gb" train -c "$dir/g/t.yaml") > "$dir/g/train.log" 2>&1 || rc=$?
  check test "$rc" = 0
  check grep -q '^step 2/2 | loss 10\.' "$dir/g/train.log" # ln 49200 = 10.8: the ids are SmolLM2's
  rc=0
  (cd "$dir/run" && "$dir/g/out/gb" generate -c "$dir/g/t.yaml" -p "The network" -n 6 --seed 1) > "$dir/g/gen.txt" 2>&1 || rc=$?
  check test "$rc" = 0
  check grep -q '^The network' "$dir/g/gen.txt"
  [ "$rc" = 0 ] || cat "$dir/g/train.log" "$dir/g/gen.txt"
  # the tokenizer.json directory made from the same GGUF: the same network trains
  tokjson="$root/$build/tokjson/smollm"
  if [ -f "$tokjson/tokenizer.json" ]; then
    printf 'network gh\n%s "%s"\n%s\n' "$gpt2" "$tokjson" "$net_tail" | sed 's/ frozen$//' > "$dir/g/gh.lmn"
    "$lmnc" compile "$dir/g/gh.lmn" -o "$dir/g/outh" > /dev/null
    make -s -C "$dir/g/outh" LMNET="$root" CFLAGS="$cflags" > /dev/null
    sed 's/steps: 2/steps: 1/; s/dir: ck/dir: ckh/' "$dir/g/t.yaml" > "$dir/g/h.yaml"
    rc=0
    "$dir/g/outh/gh" train -c "$dir/g/h.yaml" > "$dir/g/trainh.log" 2>&1 || rc=$?
    check test "$rc" = 0
    check grep -q '^step 1/1 | loss 10\.' "$dir/g/trainh.log"
    # the same ids as through the GGUF: the same first loss
    check test "$(grep -o '^step 1/[0-9]* | loss [0-9.]*' "$dir/g/train.log" | sed 's|/[0-9]*||')" = \
      "$(grep -o '^step 1/[0-9]* | loss [0-9.]*' "$dir/g/trainh.log" | sed 's|/[0-9]*||')"
  fi
  # the tokenizer's file gone: named as the model's tokenizer, with where it was looked for
  rm "$dir/g/tok/smol.gguf"
  rc=0
  (cd "$dir/run" && "$dir/g/out/gb" train -c "$dir/g/t.yaml") > "$dir/g/gone.log" 2>&1 || rc=$?
  check test "$rc" = 1
  check grep -q "no such file: the tokenizer of model 'm' of network 'gb'" "$dir/g/gone.log"
fi
echo "tokenizer: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
