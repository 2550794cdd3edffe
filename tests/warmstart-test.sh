#!/usr/bin/env bash
# warmstart-test.sh LMNC: `init_from` (issue 13): a fresh run starts from another run's checkpoint.
#   - the same network, lr 0 for one step: every tensor loaded, and the validation loss of the new
#     checkpoint equals the old one's to the printed digit;
#   - the network with one edge's width changed (mlp hidden 48 -> 24): every other tensor loaded, the edge's
#     tensors listed with both shapes, none refused silently;
#   - a checkpoint with a flipped byte is refused before anything changes, naming the tensor.
set -euo pipefail
lmnc=$(cd "$(dirname "${1:-bin/lmnc}")" && pwd)/$(basename "${1:-bin/lmnc}")
root=$PWD
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
cat > w1.lmn << 'LMN'
network w1
model m = llama { dim 32  layers 1  heads 2  kv_heads 1  ffn 64  vocab 256  ctx 64 }
edge wide = mlp(hidden 48)
vertex a, b = m shared trainable
tokens -> embed(m, trainable) -> a
a -> wide -> b
b -> head(m, trainable) -> logits
loss lm = cross_entropy(logits, next(tokens))
LMN
sed 's/w1/w2/; s/hidden 48/hidden 24/' w1.lmn > w2.lmn
for n in w1 w2; do
  "$lmnc" compile $n.lmn -o $n > /dev/null
  make -s -C $n LMNET="$root" CFLAGS="-std=c11 -O2 -Wall -Wextra -Werror -Wno-format-truncation" > /dev/null
done
for i in $(seq 1 200); do echo "line $i: the quick brown fox jumps over the lazy dog, $((i * 7919 % 1000))."; done > corpus.txt
config() { # NAME STEPS LR [INIT_FROM]
  printf 'data: {train: corpus.txt, val_fraction: 0.1}\nbatch: 2\nseq_len: 32\nsteps: %s\noptimizer: {lr: %s}\n' "$2" "$3"
  printf 'eval: {every: 0, batches: 4}\ncheckpoint: {dir: %s}\nseed: 5\nthreads: 1\nlog: {every: 100}\n' "$1"
  [ -z "${4:-}" ] || printf 'init_from: %s\n' "$4"
}
pass=0 fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*"; fi; }
config first 20 0.003 > first.yaml
w1/w1 train -c first.yaml > first.log 2>&1
src=first/step-000020.safetensors

config same 1 0 "$src" > same.yaml
w1/w1 train -c same.yaml > same.log 2>&1
total=$(sed -n 's/^init_from: \([0-9]*\) of \([0-9]*\) tensors loaded.*/\2/p' same.log)
check test -n "$total"
check grep -q "^init_from: $total of $total tensors loaded from $src" same.log
check test "$(grep -c '^  ' same.log)" = 0
val() { "$1" eval -c "$2" | grep -o 'val loss [0-9.]*'; }
check test "$(val w1/w1 first.yaml)" = "$(val w1/w1 same.yaml)"

config wider 1 0.003 "$src" > wider.yaml
w2/w2 train -c wider.yaml > wider.log 2>&1
listed=$(grep -c '^  ' wider.log || true)
check test "$listed" -gt 0
check test "$(grep '^  ' wider.log | grep -v -c '^  wide\.a->b\.')" = 0 # only the edge whose width changed
check test "$(grep '^  ' wider.log | grep -c 'in the checkpoint, .* here: left as initialised')" = "$listed"
check grep -q "^init_from: $((total - listed)) of $total tensors loaded" wider.log

cp "$src" bad.safetensors
n=$(od -An -t u8 -N8 bad.safetensors | tr -d ' ')
printf '\x7f' | dd of=bad.safetensors bs=1 seek=$((n + 8 + 40)) conv=notrunc status=none
config bad 1 0.003 bad.safetensors > bad.yaml
rc=0
w1/w1 train -c bad.yaml > bad.log 2>&1 || rc=$?
check test "$rc" = 1
check grep -q "bad.safetensors: tensor '.*' fails its checksum" bad.log
echo "warmstart: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
