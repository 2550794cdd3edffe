#!/usr/bin/env bash
# resume-test.sh LMNC: kill -9 in the middle of training, then --resume, must end bit-identical to an
# uninterrupted run: same final checkpoint (weights, AdamW moments, step, data position) and the same
# printed losses for the steps after the restart and the same record (metrics.jsonl, every step once). Uses
# dsl-examples/dag.lmn on a tiny corpus.
set -euo pipefail
lmnc=${1:-bin/lmnc}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$lmnc" compile dsl-examples/dag.lmn -o "$dir/dag" > /dev/null
make -s -C "$dir/dag" LMNET="$PWD" CFLAGS="-std=c11 -O2 -Wall -Wextra -Werror -Wno-format-truncation" > /dev/null
for i in $(seq 1 400); do echo "line $i: the quick brown fox jumps over the lazy dog, $((i * 7919 % 1000))."; done > "$dir/corpus.txt"
config() { # config NAME: a 40-step run checkpointing every 4 steps into NAME/
  cat > "$dir/$1.yaml" <<YAML
data: {train: corpus.txt, val_fraction: 0.1}
batch: 4
seq_len: 32
steps: 40
optimizer: {lr: 0.003}
schedule: {warmup: 4, decay: cosine, min_lr: 0.0003}
eval: {every: 20, batches: 2}
checkpoint: {dir: $1, every: 4, keep: 0}
seed: 7
threads: 1
log: {every: 1}
YAML
}
config straight
config killed
"$dir/dag/dag" train -c "$dir/straight.yaml" > "$dir/straight.log" 2>&1
# the second run is killed as soon as its step-12 checkpoint exists, then resumed
"$dir/dag/dag" train -c "$dir/killed.yaml" > "$dir/killed1.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -f "$dir/killed/step-000012.safetensors" ] && break
  sleep 0.05
done
kill -9 "$pid" 2> /dev/null || true
wait "$pid" 2> /dev/null || true
written=$(ls "$dir/killed" | grep -c safetensors || true)
"$dir/dag/dag" train -c "$dir/killed.yaml" --resume > "$dir/killed2.log" 2>&1
pass=0 fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*"; fi; }
first=$(grep -o '^step [0-9]*' "$dir/killed2.log" | head -n 1 | cut -d' ' -f2)
echo "resume-test: killed -9 with $written checkpoints written; resumed at step $first"
# the tensors (weights and moments) must be bit-identical; the metadata names the config, which differs
tensors() { local n; n=$(od -An -t u8 -N8 "$1" | tr -d ' '); tail -c +$((n + 9)) "$1"; }
check cmp -s <(tensors "$dir/straight/step-000040.safetensors") <(tensors "$dir/killed/step-000040.safetensors")
check test "$(tensors "$dir/straight/step-000040.safetensors" | wc -c)" -gt 1000
grep '^step ' "$dir/killed2.log" | sed 's/ | [0-9,]* tok\/s.*//' > "$dir/resumed.txt"
grep '^step ' "$dir/straight.log" | sed 's/ | [0-9,]* tok\/s.*//' | tail -n "$(wc -l < "$dir/resumed.txt")" > "$dir/expected.txt"
check diff -u "$dir/expected.txt" "$dir/resumed.txt"
check test "$(wc -l < "$dir/resumed.txt")" -gt 0
# the run's record (metrics.jsonl): the killed run's steps after its checkpoint are dropped at the resume,
# so every step is there once, with the numbers of the straight run (less the timings)
record() { grep '^{"step"' "$1" | sed 's/, "tokens_per_s".*//; s/, "time_s".*//'; }
check test "$(grep -o '^{"step": [0-9]*, "loss"' "$dir/killed/metrics.jsonl" | grep -o '[0-9]*')" = "$(seq 1 40)"
check diff -u <(record "$dir/straight/metrics.jsonl") <(record "$dir/killed/metrics.jsonl")
echo "resume: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
