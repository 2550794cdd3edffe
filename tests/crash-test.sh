#!/usr/bin/env bash
# crash-test.sh LMNC: 20 kill -9 at random moments of a small training run that writes a checkpoint every
# step (so that many land inside a checkpoint write), each followed by `train --resume` (a fresh start while
# no checkpoint exists yet). After every kill the checkpoint folder holds at most checkpoint.keep checkpoints
# plus the one being written; at the end the final checkpoint's tensors and the last losses equal those of an
# uninterrupted run, exactly checkpoint.keep checkpoints remain and no temporary does. Uses
# dsl-examples/tiny.lmn; the kill times come from a fixed seed, so every run of the test kills at the same
# moments (what lands in a write still depends on the machine's speed).
set -euo pipefail
lmnc=${1:-bin/lmnc}
kills=${KILLS:-20}
steps=400 # enough that 20 kills come before the end on a fast machine (a step here takes a few ms)
keep=2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$lmnc" compile dsl-examples/tiny.lmn -o "$dir/tiny" > /dev/null
make -s -C "$dir/tiny" LMNET="$PWD" CFLAGS="-std=c11 -O2 -Wall -Wextra -Werror -Wno-format-truncation" > /dev/null
cd "$dir"
for i in $(seq 1 300); do echo "line $i: the quick brown fox jumps over the lazy dog, $((i * 7919 % 1000))."; done > corpus.txt
config() { # config NAME: $steps steps, a checkpoint after every one into NAME/, the newest $keep kept
  cat > "$1.yaml" << YAML
data: {train: corpus.txt, val_fraction: 0.1}
batch: 2
seq_len: 32
steps: $steps
optimizer: {lr: 0.003}
eval: {every: 0, batches: 2}
checkpoint: {dir: $1, every: 1, keep: $keep}
seed: 7
threads: 1
log: {every: 1}
YAML
}
config straight
config crash
tiny/tiny train -c straight.yaml > straight.log 2>&1

pass=0 fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*"; fi; }
count() { find crash -maxdepth 1 -name "$1" 2> /dev/null | wc -l; }
RANDOM=1337
killed=0 in_write=0 runs=0 over=0
while [ "$killed" -lt "$kills" ]; do
  resume=()
  [ "$(count 'step-*.safetensors')" -gt 0 ] && resume=(--resume)
  tiny/tiny train -c crash.yaml "${resume[@]}" > "run$runs.log" 2>&1 &
  pid=$!
  runs=$((runs + 1))
  sleep "0.$(printf '%03d' $((30 + RANDOM % 200)))"
  if ! kill -9 "$pid" 2> /dev/null; then # it ended first: the run is complete
    wait "$pid" || { echo "FAIL: run $runs exited with an error"; cat "run$((runs - 1)).log"; exit 1; }
    break
  fi
  wait "$pid" 2> /dev/null || true
  killed=$((killed + 1))
  tmps=$(count 'step-*.safetensors.tmp.*')
  [ "$tmps" -gt 0 ] && in_write=$((in_write + 1))
  # keep checkpoints plus the one being written (a temporary, or a renamed one not yet pruned)
  [ $(($(count 'step-*.safetensors') + tmps)) -gt $((keep + 1)) ] && over=$((over + 1))
done
tiny/tiny train -c crash.yaml --resume > final.log 2>&1
runs=$((runs + 1))
echo "crash-test: $killed kill -9 in $runs runs ($in_write inside a checkpoint write, the temporary left behind)"
tensors() { local n; n=$(od -An -t u8 -N8 "$1" | tr -d ' '); tail -c +$((n + 9)) "$1"; }
last=$(printf 'step-%06d.safetensors' "$steps")
check cmp -s <(tensors "straight/$last") <(tensors "crash/$last")
losses() { grep -h -E "^(val )?step $steps/$steps" "$@" | sed 's/ | [0-9,]* tok\/s.*//; s/ | [0-9.]* s$//'; }
check test -n "$(losses straight.log)"
check test "$(losses straight.log)" = "$(losses run*.log final.log | tail -n 2)"
check test "$killed" -eq "$kills"
check test "$over" -eq 0
check test "$(count 'step-*.safetensors')" -eq "$keep"
check test "$(count '*.tmp.*')" -eq 0
grep -h '^removed ' run*.log final.log | sed 's/^/  /' | head -n 3
echo "crash: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
