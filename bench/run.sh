#!/usr/bin/env bash
# bench/run.sh: `make bench`. Training steps of lmnet's compiled networks (bench/bench_step.c) against what a
# user would otherwise run: PyTorch from PyPI (the newest that installs, in the git-ignored venv
# build/bench/torch-venv that this script makes) driving the same network (bench/twin_bench.py over
# tests/reference/torch_twin.py, float32) three ways: eager, torch.compile, and eager under bf16 autocast.
# Same network, batch, sequence, threads, optimizer and clipping on every side.
#
# One loop: every round runs every case on every side, one after the other, each a fresh process (warm-up
# steps, then timed steps; the process's value is the median of its timed steps), so that a slow spell of
# the machine hits all sides alike. Before each process the 1-minute load average and the number of other
# runnable processes (the running count of /proc/loadavg less the reader, sampled three times over 0.2 s)
# are recorded; a process that started with another runnable process is "loaded". The 1-minute average
# counts this benchmark's own previous process, so it is recorded, not used to judge. Medians come from the
# quiet rounds (all rounds, marked LOADED, when fewer than 3 are quiet); results.md gives every round's value
# with its load. MFU: the step's FLOPs / its time / the OpenBLAS sgemm rate measured in the same process
# before and after the steps (the larger), so it cannot pass 100%.
#
# Cases: bench_tiny edges-trainable and all-trainable (4 x 128), GPT-2-124M from random initialisation
# (bench/nets/bench_gpt2.lmn, 4 x 64), smol_pair (4 x 128; ours reads the real SmolLM2-135M Q4_1 GGUF and
# keeps it quantized, PyTorch cannot read GGUF and runs random f32 weights of the same shapes).
# Environment: BENCH_THREADS (2), BENCH_ROUNDS (5, at least 5), BENCH_CASES (tiny_edges tiny_all gpt2
# smol_pair) and BENCH_SIDES (ours ours_rc ours_f32w eager compile bf16 ours_bf16; bf16 by default only on a
# CPU with AVX512_BF16, ours_bf16 (lmnet with `precision: bf16`) only on one with AMX-BF16; ours_rc is lmnet f32
# with every vertex recomputing its activations in the backward pass, the memory plan's recomputation;
# ours_f32w, smol_pair only, is lmnet with the model's frozen weights expanded to f32 at load (`weights f32`,
# what every frozen weight was before issue 9)),
# space-separated, TORCH_PYTHON (a python with torch; default: the venv).
# Writes bench/results.md and bench/results.png; the raw output of every process goes to build/bench/raw/.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-5}
CASES=(${BENCH_CASES:-tiny_edges tiny_all gpt2 smol_pair})
# bf16 autocast only where the CPU has bf16 instructions: elsewhere PyTorch emulates them (about 30x slower than
# its f32 on an AVX2-only machine, which would say nothing about a bf16 that users would pick)
default_sides="ours ours_rc ours_f32w eager compile"
grep -q -w avx512_bf16 /proc/cpuinfo && default_sides="$default_sides bf16"
# lmnet's own bf16 (`precision: bf16`) where it runs on AMX; elsewhere its portable path is no faster than f32
grep -q -w amx_bf16 /proc/cpuinfo && default_sides="$default_sides ours_bf16"
SIDES=(${BENCH_SIDES:-$default_sides})
B=build/bench
RAW=$B/raw
VENV=$B/torch-venv
PY=${TORCH_PYTHON:-$VENV/bin/python}
BLAS_INC=/usr/include/x86_64-linux-gnu/openblas-pthread
CFLAGS="-std=c11 -O2 -g -Wall -Wextra -Werror -Wno-unused-function -Wno-format-truncation -D_GNU_SOURCE"
[ "$ROUNDS" -ge 5 ] || { echo "bench: BENCH_ROUNDS must be at least 5" >&2; exit 2; }
command -v gnuplot > /dev/null || { echo "bench: no gnuplot (apt-get install gnuplot-nox, or make deps)" >&2; exit 1; }
test -f models/SmolLM2-135M-Instruct.Q4_1.gguf || { echo "bench: no models/SmolLM2-135M-Instruct.Q4_1.gguf (make models)" >&2; exit 1; }

# ---- PyTorch from PyPI in a git-ignored venv (the CPU side of the default wheel; a few GiB) ----------------
if [ -z "${TORCH_PYTHON:-}" ] && ! "$PY" -c "import torch, numpy" 2> /dev/null; then
  echo "bench: installing the newest torch and numpy from PyPI into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch numpy
fi
"$PY" -c 'import torch' 2> /dev/null || { echo "bench: $PY has no torch" >&2; exit 1; }

# ---- build: each case network compiled by lmnc and linked with the driver ------------------------------
build() { # NAME FILE.lmn
  local n=$1 src=$2
  mkdir -p "$B/$n"
  bin/lmnc compile "$src" -o "$B/$n" > /dev/null 2> "$B/$n/lmnc.log" || { cat "$B/$n/lmnc.log"; exit 1; }
  bin/lmnc ir --json "$src" > "$B/$n/ir.json" 2> /dev/null
  gcc $CFLAGS -Iruntime/include -Iruntime -I"$B/$n" -I$BLAS_INC -DBENCH_DESC="${n}_desc" -o "$B/$n/bench_step" \
    bench/bench_step.c "$B/$n/$n.c" lib/liblmn.a -lopenblas -lyaml -ljansson -lm -lpthread
}
declare -A NET SHAPE STEPS
NET=([tiny_edges]=bench_tiny_edges [tiny_all]=bench_tiny_all [gpt2]=bench_gpt2 [smol_pair]=smol_pair)
SHAPE=([tiny_edges]="4 128" [tiny_all]="4 128" [gpt2]="4 64" [smol_pair]="4 128")
STEPS=([tiny_edges]="2 5" [tiny_all]="2 5" [gpt2]="1 3" [smol_pair]="1 3") # warm-up, timed
for c in "${CASES[@]}"; do
  [ -n "${NET[$c]:-}" ] || { echo "bench: unknown case '$c' (tiny_edges tiny_all gpt2 smol_pair)" >&2; exit 2; }
  n=${NET[$c]}
  src=bench/nets/$n.lmn
  [ -f "$src" ] || src=dsl-examples/$n.lmn
  build "$n" "$src"
done
# 0 when SIDE runs for CASE: ours_f32w only for smol_pair, the one case with a model file
applies() { # CASE SIDE
  [ "$2" != ours_f32w ] || [ "$1" = smol_pair ]
}
# ours_f32w: smol_pair renamed, its model file named by absolute path, its frozen weights kept as f32
if [[ " ${CASES[*]} " == *" smol_pair "* ]]; then
  mkdir -p "$B/nets"
  sed -e 's/^network smol_pair$/network smol_pair_f32w/' -e "s|\"\.\./models/|\"$PWD/models/|" -e 's/^}$/} weights f32/' \
    dsl-examples/smol_pair.lmn > "$B/nets/smol_pair_f32w.lmn"
  [ "$(grep -c -e '^network smol_pair_f32w$' -e '^} weights f32$' "$B/nets/smol_pair_f32w.lmn")" = 2 ] ||
    { echo "bench: could not make the weights-f32 variant of dsl-examples/smol_pair.lmn" >&2; exit 1; }
  build smol_pair_f32w "$B/nets/smol_pair_f32w.lmn"
fi
rm -rf "$RAW" && mkdir -p "$RAW"

# The command line of one process. torch.compile compiles during the warm-up, so it gets one more warm-up step.
command_of() { # CASE SIDE
  local c=$1 side=$2 n=${NET[$1]} w s bt b t
  read -r w s <<< "${STEPS[$c]}"
  read -r b t <<< "${SHAPE[$c]}"
  if [ "$side" = ours ]; then
    echo "$B/$n/bench_step train $THREADS $b $t $w $s"
  elif [ "$side" = ours_bf16 ]; then
    echo "$B/$n/bench_step train $THREADS $b $t $w $s 1 bf16"
  elif [ "$side" = ours_rc ]; then
    echo "$B/$n/bench_step train $THREADS $b $t $w $s 1 f32 vertices"
  elif [ "$side" = ours_f32w ]; then
    echo "$B/${n}_f32w/bench_step train $THREADS $b $t $w $s"
  else
    [ "$side" = compile ] && w=$((w + 1))
    echo "$PY bench/twin_bench.py train --ir $B/$n/ir.json --threads $THREADS --batch $b --seq $t --warmup $w --steps $s --impl $side"
  fi
}

t_start=$(date +%s)
for r in $(seq 1 "$ROUNDS"); do
  for c in "${CASES[@]}"; do
    for side in "${SIDES[@]}"; do
      applies "$c" "$side" || continue
      load=$(cut -d' ' -f1 /proc/loadavg)
      others=0 # runnable processes besides this shell, read without forking
      for i in 1 2 3; do
        read -r _ _ _ run _ < /proc/loadavg
        [ $((${run%/*} - 1)) -gt $others ] && others=$((${run%/*} - 1))
        sleep 0.1
      done
      cmd=$(command_of "$c" "$side")
      { echo "load $load"; echo "others $others"; $cmd 2>&1; } > "$RAW/$c.$side.$r.txt"
      echo "== round $r/$ROUNDS $c $side (load $load, other runnable $others): $(grep -c '^step_s' "$RAW/$c.$side.$r.txt") timed steps"
    done
  done
done
t_end=$(date +%s)

# ---- environment, then the table and the chart --------------------------------------------------------
{
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cpus"
  echo "flags=$(grep -o -w -E 'avx2|fma|avx512f|avx512_vnni|avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "gcc=$(gcc --version | head -1)"
  echo "openblas=$(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || echo unknown) (openblas-pthread)"
  echo "torch=$("$PY" -c 'import torch; print(torch.__version__, "CPU capability", torch.backends.cpu.get_cpu_capability())') from $PY"
  echo "python=$("$PY" -c 'import sys; print(sys.version.split()[0])')"
  echo "wall=$((t_end - t_start)) s for all rounds"
  echo "threads=$THREADS"
  echo "rounds=$ROUNDS"
  echo "cases=${CASES[*]}"
  echo "sides=${SIDES[*]}"
  for c in "${CASES[@]}"; do
    echo "shape_$c=${SHAPE[$c]}"
    for side in "${SIDES[@]}"; do
      applies "$c" "$side" || continue
      echo "cmd_${c}_$side=$(command_of "$c" "$side")"
    done
  done
} > "$B/env.txt"
python3 bench/summarize.py "$RAW" "$B/env.txt" bench/results.md "$B/chart.dat"
gnuplot -e "datafile='$B/chart.dat'; outfile='bench/results.png'" bench/chart.gp
echo "bench: wrote bench/results.md and bench/results.png"
