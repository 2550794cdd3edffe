#!/usr/bin/env bash
# precision-curves.sh: `make precision-check`: does `precision: bf16` train as well as f32? The demo network
# (dsl-examples/tiny.lmn, batch 8 x 128, the demo's optimizer) and bench_tiny (bench/nets/bench_tiny_all.lmn
# with a byte vocabulary of 256 instead of its 512, which has no tokenizer for text; batch 4 x 128, lr 1e-3)
# train 500 steps on the demo corpus (scripts/corpus.sh) in both precisions from the
# same seeds; the validation loss after the last step (32 batches) is compared per seed and as a mean over
# the seeds, next to the spread between seeds of f32 itself (a single run's final loss moves by a few percent
# with the seed, so one pair of runs cannot tell a 1% effect). Writes bench/precision.md; the logs stay in
# build/precision/; a run whose log is there from an earlier call is not repeated (FRESH=1 repeats all).
# Environment: SEEDS (1337 1338 1339), THREADS (2), STEPS (500).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=(${SEEDS:-1337 1338 1339})
THREADS=${THREADS:-2}
STEPS=${STEPS:-500}
W=build/precision
mkdir -p "$W"
if [ ! -s "$W/train.txt" ] || [ ! -s "$W/val.txt" ]; then bash scripts/corpus.sh "$W/train.txt" "$W/val.txt" 50; fi
sed 's/network bench_tiny_all/network bench_tiny_bytes/; s/vocab 512/vocab 256/' bench/nets/bench_tiny_all.lmn \
  > "$W/bench_tiny_bytes.lmn"
declare -A SRC=([tiny]=dsl-examples/tiny.lmn [bench_tiny_bytes]=$W/bench_tiny_bytes.lmn)
declare -A BATCH=([tiny]=8 [bench_tiny_bytes]=4)
declare -A OPT=([tiny]="{lr: 0.004, betas: [0.9, 0.95], eps: 1.0e-8, weight_decay: 0.0}"
  [bench_tiny_bytes]="{lr: 0.001, betas: [0.9, 0.95], eps: 1.0e-8, weight_decay: 0.0}")
NETS=(tiny bench_tiny_bytes)
for n in "${NETS[@]}"; do
  bin/lmnc compile "${SRC[$n]}" -o "$W/$n" > /dev/null
  make -s -C "$W/$n" LMNET="$PWD" > /dev/null
done
final_val() { sed -n "s/^val step $STEPS\/$STEPS | val loss \([0-9.]*\).*/\1/p" "$1" | tail -n 1; }
for n in "${NETS[@]}"; do
  for s in "${SEEDS[@]}"; do
    for p in f32 bf16; do
      run=$W/$n-$p-$s
      if [ -n "$(final_val "$run.log" 2> /dev/null)" ] && [ -z "${FRESH:-}" ]; then # done by an earlier call
        echo "$n seed $s $p: val loss $(final_val "$run.log") (from $run.log)"
        continue
      fi
      cat > "$run.yaml" << YAML
data: {train: train.txt, val: val.txt}
batch: ${BATCH[$n]}
seq_len: 128
steps: $STEPS
precision: $p
optimizer: ${OPT[$n]}
schedule: {warmup: 30, decay: cosine, min_lr: 0.0001}
grad_clip: 1.0
eval: {every: 0, batches: 32}
checkpoint: {dir: ckpt-$n-$p-$s, every: 0, keep: 1}
seed: $s
threads: $THREADS
log: {every: 100}
YAML
      rm -rf "$W/ckpt-$n-$p-$s"
      "$W/$n/$n" train -c "$run.yaml" > "$run.log" 2>&1
      echo "$n seed $s $p: val loss $(final_val "$run.log")"
    done
  done
done
python3 - "$W" "$STEPS" "${SEEDS[@]}" << 'PY'
import re, statistics, sys, platform
w, steps, seeds = sys.argv[1], sys.argv[2], sys.argv[3:]
def val(n, p, s):
    m = re.findall(r"^val step %s/%s \| val loss ([0-9.]+)" % (steps, steps), open(f"{w}/{n}-{p}-{s}.log").read(), re.M)
    return float(m[-1])
def gemm(n, p, s):
    m = re.search(r"\| (sgemm|bf16 GEMM \(\w+\)) [0-9.]+ GFLOP/s", open(f"{w}/{n}-{p}-{s}.log").read())
    return m.group(1) if m else "?"
out = ["# bf16 against f32: validation loss after %s steps" % steps, "",
       "`make precision-check` (scripts/precision-curves.sh): the same network, data, seed and optimizer in both",
       "precisions; the validation loss (32 batches) after the last step. Machine: %s; bf16 GEMMs: %s." %
       (platform.processor() or platform.machine(), gemm("tiny", "bf16", seeds[0])), ""]
for n in ["tiny", "bench_tiny_bytes"]:
    f = [val(n, "f32", s) for s in seeds]
    b = [val(n, "bf16", s) for s in seeds]
    out += ["## %s" % n, "", "| seed | f32 | bf16 | bf16 / f32 - 1 |", "|---|---|---|---|"]
    out += ["| %s | %.4f | %.4f | %+.2f%% |" % (s, x, y, 100 * (y / x - 1)) for s, x, y in zip(seeds, f, b)]
    mf, mb = statistics.mean(f), statistics.mean(b)
    df, db = statistics.median(f), statistics.median(b)
    pair = statistics.median([100 * (y / x - 1) for x, y in zip(f, b)])
    sd = statistics.stdev(f) if len(f) > 1 else float("nan")
    out += ["| mean | %.4f | %.4f | **%+.2f%%** |" % (mf, mb, 100 * (mb / mf - 1)),
            "| median | %.4f | %.4f | %+.2f%% (median of the per-seed differences: %+.2f%%) |"
            % (df, db, 100 * (db / df - 1), pair), "",
            "Spread of f32 itself between seeds: standard deviation %.4f (%.2f%% of its mean)." % (sd, 100 * sd / mf), ""]
open("bench/precision.md", "w").write("\n".join(out))
print("\n".join(out))
PY
