#!/usr/bin/env bash
# mpi-test.sh LMNC: data-parallel training over OpenMPI ranks (docs/scaling.md), on dsl-examples/tiny.lmn and
# on tests/mpi/frozen_pair.lmn (frozen vertices), each built with `make MPI=1`:
# - 2 ranks x 2 rows against 1 process x 4 rows (the same global batch of 4), 20 steps: every step's loss
#   within a relative 1e-5 (not bit for bit: 2 ranks add two partial gradient sums where one process
#   accumulates one batch; the order of the additions differs), validation losses too;
# - checkpoints interchangeable: 2 ranks stopped at step 10 and resumed by 1 process, and the reverse, follow
#   the 1-process run within the same tolerance; 2 ranks stopped and resumed by 2 ranks end bit-identical to
#   an uninterrupted 2-rank run;
# - kill -9 of rank 1 mid-run ends the job within 60 s, and its last checkpoint resumes;
# - a classifier's losses and sharded validation agree with one process (the same accuracy);
# - Ctrl-C to mpirun stops every rank after the same step and rank 0 checkpoints it;
# - a rank with another configuration or another network is refused at the start, naming the rank and the
#   difference; a batch that does not split over the ranks is refused.
set -euo pipefail
lmnc=${1:-bin/lmnc}
root=$PWD
dir=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$dir"' EXIT
echo "mpi-test: in $dir"
command -v mpirun > /dev/null || { echo "mpi-test: no mpirun (scripts/install-deps.sh installs OpenMPI)" >&2; exit 1; }
# as root in CI and in containers: allowed, more ranks than cores allowed, no cross-memory attach
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi() { timeout 300 mpirun -np "$@"; }
fails=0 passes=0
ok() { echo "  ok    $*"; passes=$((passes + 1)); }
bad() { echo "  FAIL  $*"; fails=$((fails + 1)); }

for i in $(seq 1 600); do echo "line $i: the quick brown fox jumps over the lazy dog, $((i * 7919 % 1000))."; done > "$dir/corpus.txt"
config() { # config NAME: 20 steps of a global batch of 4 into NAME/
  cat > "$dir/$1.yaml" << YAML
data: {train: corpus.txt, val_fraction: 0.1}
batch: 4
seq_len: 32
steps: 20
optimizer: {lr: 0.003}
eval: {every: 10, batches: 3}
checkpoint: {dir: $1, every: 10, keep: 0}
seed: 7
threads: 1
log: {every: 1}
YAML
}
losses() { sed -n 's/.*"step": \([0-9]*\), "\(val_\)\{0,1\}loss": \([^,]*\),.*/\1 \2loss \3/p' "$dir/$1/metrics.jsonl"; }
# a checkpoint's tensors (weights, AdamW moments) without its header, which names the config file
tensors() { local n; n=$(od -An -t u8 -N8 "$1" | tr -d ' '); tail -c +$((n + 9)) "$1"; }
# close A B: the same steps, every loss within a relative 1e-5
close() {
  python3 - "$dir/$1.txt" "$dir/$2.txt" << 'PY'
import sys
a = [l.split() for l in open(sys.argv[1])]
b = [l.split() for l in open(sys.argv[2])]
assert [x[:-1] for x in a] == [y[:-1] for y in b] and a, "different steps"
worst = max(abs(float(x[-1]) - float(y[-1])) / abs(float(x[-1])) for x, y in zip(a, b))
print("%d losses, worst relative difference %.2e" % (len(a), worst))
sys.exit(0 if worst <= 1e-5 else 1)
PY
}

for net in dsl-examples/tiny.lmn tests/mpi/frozen_pair.lmn; do
  n=$(basename "$net" .lmn)
  "$lmnc" compile "$net" -o "$dir/$n" > /dev/null
  make -s -C "$dir/$n" LMNET="$root" MPI=1 > /dev/null
  exe=$dir/$n/$n
  (
    cd "$dir"
    for c in one two two_stop one_stop two_then_one one_then_two; do config "$n-$c"; done
    "$exe" train -c "$n-one.yaml" > "$n-one.log" 2>&1
    mpi 2 "$exe" train -c "$n-two.yaml" > "$n-two.log" 2>&1
    # stopped at step 10, resumed by the other kind of run; and 2 ranks stopped and resumed by 2 ranks
    mpi 2 "$exe" train -c "$n-two_then_one.yaml" --stop-at 10 > /dev/null 2>&1
    "$exe" train -c "$n-two_then_one.yaml" --resume > /dev/null 2>&1
    "$exe" train -c "$n-one_then_two.yaml" --stop-at 10 > /dev/null 2>&1
    mpi 2 "$exe" train -c "$n-one_then_two.yaml" --resume > /dev/null 2>&1
    mpi 2 "$exe" train -c "$n-two_stop.yaml" --stop-at 10 > /dev/null 2>&1
    mpi 2 "$exe" train -c "$n-two_stop.yaml" --resume > /dev/null 2>&1
  ) || { bad "$n: a run failed (logs in $dir)"; continue; }
  for c in one two two_then_one one_then_two two_stop; do losses "$n-$c" > "$dir/$n-$c.txt"; done
  if out=$(close "$n-one" "$n-two"); then ok "$n: 2 ranks x 2 rows vs 1 process x 4 rows: $out"; else bad "$n: 2 ranks vs 1 process: $out"; fi
  grep -q "waiting for the gradient sums" "$dir/$n-two.log" && ok "$n: rank 0 reports the time spent waiting: $(grep -o '[0-9.]* s of [0-9.]* s of steps waiting.*' "$dir/$n-two.log")" ||
    bad "$n: no report of the time waiting for the gradient sums"
  for c in two_then_one one_then_two; do
    if out=$(close "$n-one" "$n-$c"); then ok "$n: checkpoint of step 10, $c: $out"; else bad "$n: $c: $out"; fi
  done
  if cmp -s "$dir/$n-two.txt" "$dir/$n-two_stop.txt" &&
    cmp -s <(tensors "$dir/$n-two/step-000020.safetensors") <(tensors "$dir/$n-two_stop/step-000020.safetensors"); then
    ok "$n: 2 ranks stopped at step 10 and resumed by 2 ranks: losses and final checkpoint bit-identical"
  else
    bad "$n: 2 ranks stopped and resumed differ from the uninterrupted 2-rank run"
  fi
done

# a classifier (dsl-examples/classify.lmn on tests/fixtures/classify/toy.tsv): its training losses and its
# sharded validation (loss within 1e-5, the same accuracy) agree with one process
"$lmnc" compile dsl-examples/classify.lmn -o "$dir/classify" > /dev/null
make -s -C "$dir/classify" LMNET="$root" MPI=1 > /dev/null
cp tests/fixtures/classify/toy.tsv "$dir/toy.tsv"
for c in one two; do
  printf 'data: {train: toy.tsv, val_fraction: 0.2}\nbatch: 8\nseq_len: 32\nsteps: 12\noptimizer: {lr: 0.002}\neval: {every: 6, batches: 3}\ncheckpoint: {dir: cls-%s, every: 0}\nseed: 3\nthreads: 1\nlog: {every: 1}\n' "$c" > "$dir/cls-$c.yaml"
done
(cd "$dir" && ./classify/classify train -c cls-one.yaml > cls-one.log 2>&1 && mpi 2 ./classify/classify train -c cls-two.yaml > cls-two.log 2>&1) ||
  bad "classify: a run failed"
for c in one two; do
  sed -n 's/.*"step": \([0-9]*\), "\(val_\)\{0,1\}loss": \([^,]*\),.*/\1 \2loss \3/p' "$dir/cls-$c/metrics.jsonl" > "$dir/cls-$c.txt"
  grep -o 'accuracy [0-9.]*% ([0-9]*/[0-9]*)' "$dir/cls-$c.log" > "$dir/cls-$c.acc" || true
done
if out=$(close cls-one cls-two) && [ -s "$dir/cls-one.acc" ] && cmp -s "$dir/cls-one.acc" "$dir/cls-two.acc"; then
  ok "classify: 2 ranks vs 1 process: $out; sharded validation: $(tr '\n' ' ' < "$dir/cls-two.acc")"
else
  bad "classify: 2 ranks vs 1 process: ${out:-} $(cat "$dir/cls-one.acc" "$dir/cls-two.acc" 2> /dev/null | tr '\n' ' ')"
fi

# kill -9 of rank 1 mid-run: the job ends, the last checkpoint resumes
exe=$dir/tiny/tiny
(cd "$dir" && config killed && sed -i -e 's/^steps: 20$/steps: 100000/' -e 's/every: 10, keep: 0}/every: 5, keep: 0}/' killed.yaml)
(cd "$dir" && exec timeout 300 mpirun -np 2 "$exe" train -c killed.yaml > killed.log 2>&1) &
job=$!
for _ in $(seq 1 600); do [ -f "$dir/killed/step-000010.safetensors" ] && break; sleep 0.1; done
rank1=$(pgrep -f "^$exe train -c killed.yaml" | sed -n 2p || true)
t0=$(date +%s)
[ -n "$rank1" ] && kill -9 "$rank1"
rc=0
wait "$job" || rc=$?
took=$(($(date +%s) - t0))
if [ -n "$rank1" ] && [ "$rc" != 0 ] && [ "$took" -le 60 ]; then
  ok "kill -9 of rank 1: the job ended in $took s (status $rc)"
else
  bad "kill -9 of rank 1: pid '$rank1', status $rc after $took s"
fi
step=$(sed -n 's/^step-0*\([0-9][0-9]*\).*/\1/p' "$dir/killed/latest")
if [ -n "$step" ] && (cd "$dir" && mpi 2 "$exe" train -c killed.yaml --resume --stop-at $((step + 3)) > resumed.log 2>&1) &&
  grep -q "resumed from killed/step-0*$step.safetensors" "$dir/resumed.log"; then
  ok "the last checkpoint (step $step) resumes with 2 ranks and trains on"
else
  bad "the last checkpoint (step '$step') does not resume: $(tail -2 "$dir/resumed.log" 2> /dev/null)"
fi

# Ctrl-C to mpirun: every rank stops after the same step, rank 0 checkpoints it, the job exits cleanly
(cd "$dir" && config ctrlc && sed -i -e 's/^steps: 20$/steps: 100000/' -e 's/every: 10, keep: 0}/every: 0, keep: 0}/' ctrlc.yaml)
(cd "$dir" && exec timeout 300 mpirun -np 2 "$exe" train -c ctrlc.yaml > ctrlc.log 2>&1) &
job=$!
for _ in $(seq 1 600); do grep -q '"step": 5,' "$dir/ctrlc/metrics.jsonl" 2> /dev/null && break; sleep 0.1; done
pkill -INT -f "^mpirun -np 2 $exe train -c ctrlc.yaml" || true
wait "$job" || true
step=$(sed -n 's/^interrupted after step \([0-9]*\)\/.*/\1/p' "$dir/ctrlc.log")
if [ -n "$step" ] && [ -f "$dir/ctrlc/step-$(printf %06d "$step").safetensors" ] &&
  (cd "$dir" && mpi 2 "$exe" train -c ctrlc.yaml --resume --stop-at $((step + 2)) > ctrlc2.log 2>&1) &&
  grep -q "resumed from ctrlc/step-0*$step.safetensors" "$dir/ctrlc2.log"; then
  ok "Ctrl-C to mpirun: both ranks stopped after step $step, its checkpoint resumes"
else
  bad "Ctrl-C to mpirun: step '$step': $(tail -3 "$dir/ctrlc.log")"
fi

# a rank with other settings, another network, a batch that does not split
(cd "$dir" && config other && sed -i 's/^seed: 7/seed: 8/' other.yaml && config same && sed -i 's/dir: same/dir: other/' same.yaml)
out=$(cd "$dir" && mpi 1 "$exe" train -c same.yaml : -np 1 "$exe" train -c other.yaml 2>&1 || true)
grep -q "rank 1: its configuration other.yaml differs from rank 0's: 'seed: 8' here, 'seed: 7' on rank 0" <<< "$out" &&
  ok "other settings on rank 1 refused: $(grep -m1 -o "rank 1: its configuration.*" <<< "$out")" || bad "other settings on rank 1: $out"
out=$(cd "$dir" && mpi 1 "$exe" train -c same.yaml : -np 1 "$dir/frozen_pair/frozen_pair" train -c same.yaml 2>&1 || true)
grep -q "rank 1's network (hash [0-9a-f]*) differs from rank 0's (hash [0-9a-f]*)" <<< "$out" &&
  ok "another network on rank 1 refused: $(grep -m1 -o "rank 1's network.*" <<< "$out")" || bad "another network on rank 1: $out"
(cd "$dir" && config odd && sed -i 's/^batch: 4/batch: 3/' odd.yaml)
out=$(cd "$dir" && mpi 2 "$exe" train -c odd.yaml 2>&1 || true)
grep -q "batch 3 does not split over 2 ranks" <<< "$out" && ok "batch 3 over 2 ranks refused" || bad "batch 3 over 2 ranks: $out"

echo "mpi: $passes passed, $fails failed"
[ "$fails" = 0 ]
