#!/usr/bin/env bash
# bench/run.sh: `make bench`. lmnet's compiled networks (bench/bench_step.c) against the PyTorch twin
# (bench/twin_bench.py, float32) on the same network, batch, sequence and threads, in ONE invocation:
# for each case the two sides alternate, ours then the twin's, for BENCH_ROUNDS rounds (>= 5); each round
# is a fresh process (warm-up steps, then timed steps; the round's value is the median of its timed steps),
# and the table gives the median over rounds. Writes bench/results.md and bench/results.png; raw output of
# every process under build/bench/raw/.
#
# Cases: bench_tiny edges-trainable and all-trainable (4 x 128), smol_pair (real SmolLM2-135M from models/,
# 1 x 128; the twin cannot read GGUF and times random weights of the same shapes), and single-stream
# generation of smol.lmn (ours: KV cache; the twin has none and recomputes the whole sequence per token).
# Environment: BENCH_THREADS (2), BENCH_ROUNDS (5), TWIN_PYTHON (/usr/bin/python3: Debian's python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-5}
PY=${TWIN_PYTHON:-/usr/bin/python3}
B=build/bench
RAW=$B/raw
BLAS_INC=/usr/include/x86_64-linux-gnu/openblas-pthread
CFLAGS="-std=c11 -O2 -g -Wall -Wextra -Werror -Wno-unused-function -Wno-format-truncation -D_GNU_SOURCE"
[ "$ROUNDS" -ge 5 ] || { echo "bench: BENCH_ROUNDS must be at least 5" >&2; exit 2; }
"$PY" -c 'import torch' 2>/dev/null || { echo "bench: $PY has no torch (apt-get install python3-torch)" >&2; exit 1; }
command -v gnuplot > /dev/null || { echo "bench: no gnuplot (apt-get install gnuplot-nox, or make deps)" >&2; exit 1; }
test -f models/SmolLM2-135M-Instruct.Q4_1.gguf || { echo "bench: no models/SmolLM2-135M-Instruct.Q4_1.gguf (make models)" >&2; exit 1; }
rm -rf "$RAW" && mkdir -p "$RAW"

# ---- build: each case network compiled by lmnc and linked with the driver ------------------------------
build() { # NAME FILE.lmn
  local n=$1 src=$2
  mkdir -p "$B/$n"
  bin/lmnc compile "$src" -o "$B/$n" > /dev/null 2> "$B/$n/lmnc.log" || { cat "$B/$n/lmnc.log"; exit 1; }
  bin/lmnc ir --json "$src" > "$B/$n/ir.json" 2> /dev/null
  gcc $CFLAGS -Iruntime/include -Iruntime -I"$B/$n" -I$BLAS_INC -DBENCH_DESC="${n}_desc" -o "$B/$n/bench_step" \
    bench/bench_step.c "$B/$n/$n.c" lib/liblmn.a -lopenblas -lyaml -lm -lpthread
}
build bench_tiny_edges bench/nets/bench_tiny_edges.lmn
build bench_tiny_all bench/nets/bench_tiny_all.lmn
build smol_pair dsl-examples/smol_pair.lmn
build smol dsl-examples/smol.lmn

# ---- the cases: ours and the twin's command lines (exactly what runs; recorded in results.md) -----------
CASES=(tiny_edges tiny_all smol_pair smol_gen)
declare -A OURS TWIN KIND
OURS[tiny_edges]="$B/bench_tiny_edges/bench_step train $THREADS 4 128 2 3"
TWIN[tiny_edges]="$PY bench/twin_bench.py train --ir $B/bench_tiny_edges/ir.json --threads $THREADS --batch 4 --seq 128 --warmup 1 --steps 1"
OURS[tiny_all]="$B/bench_tiny_all/bench_step train $THREADS 4 128 2 3"
TWIN[tiny_all]="$PY bench/twin_bench.py train --ir $B/bench_tiny_all/ir.json --threads $THREADS --batch 4 --seq 128 --warmup 1 --steps 1"
OURS[smol_pair]="$B/smol_pair/bench_step train $THREADS 1 128 1 2"
TWIN[smol_pair]="$PY bench/twin_bench.py train --ir $B/smol_pair/ir.json --threads $THREADS --batch 1 --seq 128 --warmup 1 --steps 1"
OURS[smol_gen]="$B/smol/bench_step decode $THREADS 16 64 2"
TWIN[smol_gen]="$PY bench/twin_bench.py decode --ir $B/smol/ir.json --threads $THREADS --prompt 16 --new 8 --reps 1"

t_start=$(date +%s)
for c in "${CASES[@]}"; do
  for r in $(seq 1 "$ROUNDS"); do
    echo "== $c round $r/$ROUNDS: ours"
    ${OURS[$c]} > "$RAW/$c.ours.$r.txt"
    echo "== $c round $r/$ROUNDS: twin"
    ${TWIN[$c]} > "$RAW/$c.twin.$r.txt"
  done
done
t_end=$(date +%s)

# ---- where our step's time goes: perf on the tiny edges-trainable step -----------------------------------
PERF_CMD="perf record -F 999 -g -o $B/perf.data $B/bench_tiny_edges/bench_step train $THREADS 4 128 0 8"
if command -v perf > /dev/null && $PERF_CMD > "$RAW/perf.txt" 2> "$RAW/perf.err"; then
  perf report -i $B/perf.data --no-children --sort symbol --stdio 2> /dev/null | grep -E '^ +[0-9.]+%' \
    | head -30 > "$B/perf_top.txt" || true
else
  echo "(perf unavailable: $(tail -1 "$RAW/perf.err" 2>/dev/null))" > "$B/perf_top.txt"
fi

# ---- environment, then the table and the chart --------------------------------------------------------
{
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "cpus=$(nproc) online ($(lscpu | sed -n 's/^Core(s) per socket: *//p' | head -1) cores per socket, $(lscpu | sed -n 's/^Thread(s) per core: *//p' | head -1) threads per core)"
  echo "gcc=$(gcc --version | head -1)"
  echo "openblas=$(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || echo unknown) (openblas-pthread)"
  echo "torch=$("$PY" -c 'import torch; print(torch.__version__)') (Debian python3-torch $(dpkg-query -W -f='${Version}' python3-torch 2>/dev/null || echo '?'))"
  echo "python=$("$PY" -c 'import sys; print(sys.version.split()[0])')"
  echo "load=$(cut -d' ' -f1-3 /proc/loadavg) at the end"
  echo "wall=$((t_end - t_start)) s for all rounds"
  echo "threads=$THREADS"
  echo "rounds=$ROUNDS"
  echo "perf_cmd=$PERF_CMD"
  for c in "${CASES[@]}"; do echo "cmd_ours_$c=${OURS[$c]}"; echo "cmd_twin_$c=${TWIN[$c]}"; done
} > "$B/env.txt"
"$PY" bench/summarize.py "$RAW" "$B/env.txt" "$B/perf_top.txt" bench/results.md "$B/chart.dat"
gnuplot -e "datafile='$B/chart.dat'; outfile='bench/results.png'" bench/chart.gp
echo "bench: wrote bench/results.md and bench/results.png"
