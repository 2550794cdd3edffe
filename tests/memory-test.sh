#!/usr/bin/env bash
# memory-test.sh: the memory accounting holds (issue 11): for real-model examples, the peak `NAME info -c CFG`
# prints (parameters, kept frozen weights, gradients + AdamW moments, the planned activations; `lmnc info
# --budget` prints the same plan and bytes, checked here) is within 10% of the peak RSS of `NAME train -c CFG`, with
# every activation kept and with a memory.budget that makes vertices recompute. Networks of a few MiB are left
# out: there the process's own pages (code, libraries, OpenBLAS's buffers, tens of MiB) are most of the RSS.
#   usage: tests/memory-test.sh [LMNC]
set -euo pipefail
cd "$(dirname "$0")/.."
LMNC=${1:-bin/lmnc}
if [ ! -r models/SmolLM2-135M-Instruct.Q4_1.gguf ]; then
  echo "memory-test: models/SmolLM2-135M-Instruct.Q4_1.gguf is absent (make models)" >&2
  exit 1
fi
W=build/memory-test
rm -rf "$W" && mkdir -p "$W"
head -c 300000 README.md > "$W/train.txt"
cat docs/*.md | head -c 100000 > "$W/val.txt"
fail=0
check() { # NAME NET BUDGET(or -)
  local name=$1 net=$2 budget=$3 dir=$W/$1
  mkdir -p "$dir"
  "$LMNC" compile "dsl-examples/$net.lmn" -o "$dir/net" > /dev/null
  make -s -C "$dir/net" LMNET="$PWD" > /dev/null
  {
    echo "data: {train: ../train.txt, val: ../val.txt}"
    echo "batch: 4"
    echo "seq_len: 128"
    echo "steps: 2"
    echo "threads: 2"
    echo "eval: {every: 0, batches: 1}"
    echo "checkpoint: {dir: ck}"
    [ "$budget" = - ] || echo "memory: {budget: $budget}"
  } > "$dir/train.yaml"
  local info peak rss
  info=$("$dir/net/$net" info -c "$dir/train.yaml")
  peak=$(sed -n 's/^peak while training: about .* (\([0-9]*\) bytes.*/\1/p' <<< "$info")
  rss=$(python3 - "$dir/net/$net" "$dir/train.yaml" <<'PY'
import resource, subprocess, sys
subprocess.run([sys.argv[1], "train", "-c", sys.argv[2]], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
PY
)
  local plan lmnc_info opt=()
  plan=$(grep -c '^memory plan' <<< "$info" || true)
  [ "$budget" = - ] || opt=(--budget "$budget")
  lmnc_info=$("$LMNC" info "dsl-examples/$net.lmn" --batch 4 --seq 128 --threads 2 "${opt[@]}")
  if [ "$(grep -E '^(memory at|peak|  activations)' <<< "$info")" != "$(grep -E '^(memory at|peak|  activations)' <<< "$lmnc_info")" ]; then
    echo "  FAIL  $name: lmnc info and NAME info plan different bytes:"
    diff <(grep -E '^(memory at|peak|  activations)' <<< "$lmnc_info") <(grep -E '^(memory at|peak|  activations)' <<< "$info") || true
    fail=1
  fi
  python3 - "$name" "$peak" "$rss" "$plan" <<'PY' || fail=1
import sys
name, peak, rss, plan = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
err = (rss - peak) / peak
ok = abs(err) <= 0.10
print("  %s  %-28s planned peak %7.1f MiB, measured peak RSS %7.1f MiB: %+.1f%%%s" % (
    "ok  " if ok else "FAIL", name, peak / 2**20, rss / 2**20, 100 * err, " (memory plan printed)" if plan != "0" else ""))
sys.exit(0 if ok else 1)
PY
}
echo "== memory-test: planned peak against measured peak RSS (within 10%)"
check smol_pair-kept smol_pair -
check smol_pair-recomputed smol_pair 800MiB
check smol_preserve-kept smol_preserve -
[ $fail = 0 ] && echo "memory-test: passed" || { echo "memory-test: FAILED"; exit 1; }
