#!/usr/bin/env bash
# paper.sh [--smoke | --check K]: `make paper`, the LMNet claim in miniature on the real SmolLM2-135M-Instruct
# (issue 15). One corpus (English sayings of the Debian `fortunes` package, every 20th saying of each file held
# out and never trained on: scripts/corpus.sh), one seed, one token budget, one optimizer setting; five variants:
#   (a) base        dsl-examples/smol.lmn            SmolLM2 as it is: its held-out loss, nothing trained
#   (b) lmnet       bench/paper/lmnet121.lmn         the paper's [1,2,1] of frozen SmolLM2 calls, the paper's
#                                                    edges and initialisation, edges trained
#   (c) preserve    dsl-examples/smol_preserve.lmn   the same graph with a function-preserving start
#   (d) lastlayers  bench/paper/lastlayers.lmn       SmolLM2 fine-tuned in its last 5 layers (as many trainable
#                                                    weights as the edges of (b) and (c))
#   (e) finetune    bench/paper/finetune.lmn         SmolLM2 fine-tuned, every weight
# For each: held-out loss and perplexity after training, trainable parameters, tokens, wall time and peak RSS
# (GNU time), and the loss curves (each run's metrics.jsonl) drawn with gnuplot. The full run writes
# docs/paper.md, docs/paper.png and docs/paper-losses.tsv (every step's loss and gradient norm; about 90
# minutes on a quiet 2-core machine; PAPER_STEPS overrides the budget); --smoke runs the same pipeline on a
# tiny budget into build/paper-smoke/ (a few minutes) and checks that the table came out with five finite
# rows; --check K (make paper-check) retrains every variant of the full run up to step K into
# build/paper-check/ and compares each step's loss and gradient norm with docs/paper-losses.tsv, digit for
# digit (same seed and thread count: the training is deterministic).
set -euo pipefail
smoke=0 check=0
[ "${1:-}" = "--smoke" ] && smoke=1
[ "${1:-}" = "--check" ] && check=${2:-40}
root=$PWD
if [ $smoke = 1 ]; then
  out=build/paper-smoke steps=${PAPER_STEPS:-4} batch=1 seq=32 eval_batches=2 eval_every=0
else
  out=build/paper steps=${PAPER_STEPS:-400} batch=2 seq=128 eval_batches=40 eval_every=100
  [ "$check" != 0 ] && out=build/paper-check
fi
threads=${PAPER_THREADS:-2}
warmup=$((steps / 10))
mkdir -p "$out"
bash scripts/corpus.sh "$out/train.txt" "$out/val.txt" 20
echo "== paper: corpus $(wc -c < "$out/train.txt") bytes of training text, $(wc -c < "$out/val.txt") held out"

names=(base lmnet preserve lastlayers finetune)
files=(dsl-examples/smol.lmn bench/paper/lmnet121.lmn dsl-examples/smol_preserve.lmn bench/paper/lastlayers.lmn
       bench/paper/finetune.lmn)
labels=("(a) SmolLM2-135M-Instruct as it is" "(b) LMNet [1,2,1], the paper's edges and init"
        "(c) the same, function-preserving start" "(d) SmolLM2 fine-tuned, its last 5 layers"
        "(e) SmolLM2 fine-tuned, every weight")

config() { # the one configuration every variant trains with
  cat << YAML
data: {train: train.txt, val: val.txt}
batch: $batch
seq_len: $seq
steps: $steps
optimizer: {lr: 1.0e-4, betas: [0.9, 0.95], eps: 1.0e-8, weight_decay: 0.01}
schedule: {warmup: $warmup, decay: cosine, min_lr: 1.0e-5}
grad_clip: 1.0
eval: {every: $eval_every, batches: $eval_batches}
checkpoint: {dir: $1, every: 0, keep: 1, minutes: 0}
seed: 20250518
threads: $threads
log: {every: 10}
YAML
}

build() { # build NAME FILE: compiles the variant into $out/NAME and writes its configuration
  bin/lmnc compile "$2" -o "$out/$1" > /dev/null 2>&1
  make -s -C "$out/$1" LMNET="$root" > /dev/null
  rm -rf "$out/ck-$1"
  config "ck-$1" > "$out/$1.yaml"
}

if [ "$check" != 0 ]; then # retrain every variant up to step $check; compare with the committed losses
  want=docs/paper-losses.tsv
  [ -f $want ] || { echo "paper-check: no $want (run make paper first)" >&2; exit 1; }
  status=0
  for i in "${!names[@]}"; do
    n=${names[$i]}
    [ "$n" = base ] && continue
    build "$n" "${files[$i]}"
    echo "== paper-check: ${labels[$i]}, steps 1..$check"
    "$out/$n/$(basename "${files[$i]}" .lmn)" train -c "$out/$n.yaml" --stop-at "$check" > "$out/$n.log" 2>&1 ||
      { echo "paper-check: $n did not train (see $out/$n.log)" >&2; exit 1; }
    python3 scripts/paper_report.py --losses "$out/ck-$n/metrics.jsonl" "$n" > "$out/$n.losses"
    awk -F'\t' -v n="$n" -v k="$check" '$1 == n && $2 <= k' $want > "$out/$n.want"
    if [ ! -s "$out/$n.want" ]; then
      echo "   $n: $want has no steps of this variant" >&2
      status=1
    elif cmp -s "$out/$n.want" "$out/$n.losses"; then
      echo "   identical: the loss and gradient norm of all $(wc -l < "$out/$n.want") steps"
    else
      echo "   DIFFERENT from $want:" >&2
      diff "$out/$n.want" "$out/$n.losses" | head -5 >&2
      status=1
    fi
  done
  exit $status
fi

printf 'variant\tlabel\ttrainable\ttokens\twall_s\tpeak_mib\tval_loss\tppl\n' > "$out/results.tsv"
for i in "${!names[@]}"; do
  n=${names[$i]}
  echo "== paper: ${labels[$i]} (${files[$i]})"
  build "$n" "${files[$i]}"
  exe=$out/$n/$(basename "${files[$i]}" .lmn)
  trainable=$("$exe" info | sed -n 's/^parameters: .* | \([0-9,]*\) trainable.*/\1/p' | tr -d ,)
  tokens=0 wall=0 peak=0
  if [ "$n" != base ]; then
    /usr/bin/time -f "%e %M" -o "$out/$n.time" "$exe" train -c "$out/$n.yaml" 2>&1 | tee "$out/$n.log" |
      grep --line-buffered -E '^(step [0-9]*0/|val )' || true
    [ -f "$out/ck-$n/metrics.jsonl" ] || { echo "paper: $n did not train (see $out/$n.log)" >&2; exit 1; }
    read -r wall peak < "$out/$n.time"
    tokens=$((steps * batch * seq))
  fi
  line=$("$exe" eval -c "$out/$n.yaml" 2> /dev/null | grep -m1 'val loss')
  val=$(sed -n 's/^val loss \([0-9.]*\) | ppl \([0-9.]*\).*/\1/p' <<< "$line")
  ppl=$(sed -n 's/^val loss \([0-9.]*\) | ppl \([0-9.]*\).*/\2/p' <<< "$line")
  echo "   held-out: $line"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "${labels[$i]}" "$trainable" "$tokens" "$wall" \
    "$((peak / 1024))" "$val" "$ppl" >> "$out/results.tsv"
done

python3 scripts/paper_report.py "$out" "$steps" "$batch" "$seq" "$threads" "$([ $smoke = 1 ] && echo smoke || echo full)"
if [ $smoke = 1 ]; then
  rows=$(awk -F'\t' 'NR > 1 && $7 ~ /^[0-9]+\.[0-9]+$/' "$out/results.tsv" | wc -l)
  [ "$rows" = 5 ] || { echo "paper-smoke: the table has $rows of 5 finite rows: $out/results.tsv" >&2; exit 1; }
  echo "paper-smoke: 5 variants trained and evaluated; $out/paper.md, $out/paper.png"
fi
