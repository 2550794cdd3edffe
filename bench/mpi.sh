#!/usr/bin/env bash
# mpi.sh: `make bench-mpi`, data parallelism on this machine (issue 12): 2 ranks x 1 thread against 1 rank x 2
# threads, the same global batch and steps, on bench_tiny (bench/nets/bench_tiny_all.lmn with a byte vocabulary,
# so that it trains on text: B 4 x T 128) and smol_pair (B 4 x T 128, real SmolLM2 weights), both built with
# `make MPI=1`. Every round runs every case and side in turn (round-robin) and records before each run the
# 1-minute load average and the share of the CPUs busy during one second with nothing of the bench running
# (/proc/stat): the load average still counts the previous run's two threads for a minute or so, the busy share
# is what else runs; a run that starts with more than a quarter of the CPUs busy is marked *loaded*. A run's
# step time is the median of its steps after the first two (metrics.jsonl).
# Writes bench/mpi.md: medians, per-round values, tokens/s, the ratio, and rank 0's time waiting for the
# gradient sums. ROUNDS (3) and STEPS (tiny 30, smol_pair 8) override.
set -euo pipefail
root=$PWD
out=build/bench-mpi
rounds=${ROUNDS:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
mkdir -p "$out"
bash scripts/corpus.sh "$out/train.txt" "$out/val.txt" 20
sed -e 's/vocab 512/vocab 256/' -e 's/^network bench_tiny_all/network bench_tiny_mpi/' bench/nets/bench_tiny_all.lmn > "$out/bench_tiny_mpi.lmn"
cp dsl-examples/smol_pair.lmn "$out/smol_pair.lmn"
sed -i 's|"../models/|"../../models/|' "$out/smol_pair.lmn"
cases=(bench_tiny_mpi smol_pair)
declare -A steps=([bench_tiny_mpi]=${STEPS:-30} [smol_pair]=${STEPS:-8})
for c in "${cases[@]}"; do
  bin/lmnc compile "$out/$c.lmn" -o "$out/$c" > /dev/null
  make -s -C "$out/$c" LMNET="$root" MPI=1 > /dev/null
done
config() { # config CASE SIDE THREADS
  cat > "$out/$1-$2.yaml" << YAML
data: {train: train.txt, val: val.txt}
batch: 4
seq_len: 128
steps: ${steps[$1]}
optimizer: {lr: 1.0e-4}
checkpoint: {dir: ck-$1-$2, every: 0, keep: 1, minutes: 0}
seed: 1
threads: $3
log: {every: 1000}
YAML
}
busy_pct() { # share of the CPUs busy during one second (all CPUs, from /proc/stat)
  local a b
  a=$(head -1 /proc/stat)
  sleep 1
  b=$(head -1 /proc/stat)
  python3 -c '
import sys
a = [int(x) for x in sys.argv[1].split()[1:]]; b = [int(x) for x in sys.argv[2].split()[1:]]
d = [y - x for x, y in zip(a, b)]; idle = d[3] + d[4]
print("%.0f" % (100.0 * (sum(d) - idle) / max(1, sum(d))))' "$a" "$b"
}
median_step() { # seconds per step of a run: the median of its steps after the first two
  python3 - "$1" << 'PY'
import json, statistics, sys
t = [json.loads(l)["time_s"] for l in open(sys.argv[1]) if '"loss"' in l and '"val_loss"' not in l]
d = [b - a for a, b in zip(t, t[1:])][1:]
print("%.4f" % statistics.median(d))
PY
}
printf 'round\tcase\tside\tload1\tbusy_pct\tstep_s\twait_pct\n' > "$out/rounds.tsv"
for r in $(seq 1 "$rounds"); do
  for c in "${cases[@]}"; do
    for side in ranks2x1 ranks1x2; do
      load=$(cut -d' ' -f1 /proc/loadavg)
      busy=$(busy_pct)
      rm -rf "$out/ck-$c-$side"
      if [ $side = ranks2x1 ]; then
        config "$c" "$side" 1
        (cd "$out" && timeout 1200 mpirun -np 2 "./$c/$c" train -c "$c-$side.yaml" > "$c-$side.log" 2>&1)
      else
        config "$c" "$side" 2
        (cd "$out" && timeout 1200 "./$c/$c" train -c "$c-$side.yaml" > "$c-$side.log" 2>&1)
      fi
      s=$(median_step "$out/ck-$c-$side/metrics.jsonl")
      w=$(sed -n 's/.*waiting for the gradient sums (\([0-9.]*\)%.*/\1/p' "$out/$c-$side.log")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$side" "$load" "$busy" "$s" "${w:--}" >> "$out/rounds.tsv"
      echo "round $r $c $side: load $load, CPUs busy $busy%, $s s/step${w:+, waiting $w%}"
    done
  done
done
python3 - "$out/rounds.tsv" > bench/mpi.md << 'PY'
import csv, statistics, subprocess, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print("# Data parallelism on one machine: 2 MPI ranks x 1 thread against 1 rank x 2 threads\n")
print("`make bench-mpi` (bench/mpi.sh) at commit `%s`, %s, OpenMPI (Debian). Same global batch (4 x 128 tokens), "
      "same steps; the step time is the median of each run's steps after the first two; rounds alternate every "
      "case and side. Before each run: the 1-minute load average (which still counts the previous run's two "
      "threads for a minute) and the share of the CPUs busy during one second with nothing of the bench running; "
      "a run that starts with more than 25%% of the CPUs busy is marked *loaded*. Waiting: rank 0's time in the "
      "gradient sums after its backward pass, as a share of its steps (communication and imbalance).\n" % (commit, cpu))
print("| case | 1 rank x 2 threads | 2 ranks x 1 thread | tokens/s (1 x 2) | tokens/s (2 x 1) | 2 x 1 / 1 x 2 | waiting (2 x 1) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for c in dict.fromkeys(r["case"] for r in rows):
    one = [float(r["step_s"]) for r in rows if r["case"] == c and r["side"] == "ranks1x2"]
    two = [float(r["step_s"]) for r in rows if r["case"] == c and r["side"] == "ranks2x1"]
    wait = [float(r["wait_pct"]) for r in rows if r["case"] == c and r["side"] == "ranks2x1" and r["wait_pct"] != "-"]
    a, b = statistics.median(one), statistics.median(two)
    print("| %s | %.4f s | %.4f s | %.0f | %.0f | %.2fx | %s |" % (c, a, b, 512 / a, 512 / b, a / b,
          "%.1f%% of the steps" % statistics.median(wait) if wait else "-"))
print("\nPer round:\n\n| round | case | side | 1-min load | CPUs busy before | s/step | waiting |")
print("|---|---|---|---:|---:|---:|---:|")
for r in rows:
    flag = " *loaded*" if float(r["busy_pct"]) > 25 else ""
    print("| %s | %s | %s | %s | %s%%%s | %s | %s |" % (r["round"], r["case"], r["side"], r["load1"], r["busy_pct"],
                                                    flag, r["step_s"], r["wait_pct"] + "%" if r["wait_pct"] != "-" else "-"))
PY
echo "bench-mpi: wrote bench/mpi.md"
