#!/usr/bin/env bash
# bench/decode_bench.sh: `make bench-decode` (and part of `make bench`). Single-stream generation of
# SmolLM2-135M-Instruct from the same Q4_1 GGUF file: lmnet (dsl-examples/smol.lmn compiled by lmnc, driven by
# bench/bench_step.c the way `smol generate` runs) against llama.cpp through llama-cpp-python from PyPI
# (bench/llama_decode.py), installed by this script into build/bench/venv (never by `make test`).
# Cases: decode (19-token prompt, then 128 greedy tokens) and prefill (230-token prompt), at 1 and 2 threads.
# Every round runs every case on both sides, alternating ours/llama.cpp, each a fresh process, with the
# 1-minute load average recorded before each run; BENCH_ROUNDS (>= 5) rounds; medians and every round's value
# go to bench/decode_results.md. The 1-minute average counts this benchmark's own previous runs, so a run is
# marked "loaded" when another process was runnable as it started (the running count of /proc/loadavg, less
# the reader itself, sampled three times over 0.2 s), and the table says how many were.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-5}
LLAMA_VERSION=0.3.36
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
B=build/bench
VENV=$B/venv
RAW=$B/decode-raw
BLAS_INC=/usr/include/x86_64-linux-gnu/openblas-pthread
CFLAGS="-std=c11 -O2 -g -Wall -Wextra -Werror -Wno-unused-function -D_GNU_SOURCE"
[ "$ROUNDS" -ge 5 ] || { echo "bench-decode: BENCH_ROUNDS must be at least 5" >&2; exit 2; }
test -f "$MODEL" || { echo "bench-decode: no $MODEL (make models)" >&2; exit 1; }

# ---- llama.cpp: llama-cpp-python from PyPI in a git-ignored venv (builds llama.cpp with cmake: minutes) ----
# Its default CPU build (GGML_NATIVE=ON) on a CPU with AMX uses ggml's AMX kernels for the Q4_1 matrices, and
# those crash (SIGSEGV in ggml_backend_amx_mul_mat, llama-cpp-python 0.3.36, Xeon with amx_int8): there the
# build names every other feature of the CPU instead (AVX-512 with VNNI/BF16/VBMI, AVX-VNNI, ...), AMX left out.
LLAMA_CMAKE="-DGGML_NATIVE=ON -DGGML_BLAS=OFF"
if grep -q -w amx_int8 /proc/cpuinfo; then
  LLAMA_CMAKE="-DGGML_NATIVE=OFF -DGGML_BLAS=OFF"
  for f in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512f:AVX512 avx512vbmi:AVX512_VBMI \
    avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    grep -q -w "${f%%:*}" /proc/cpuinfo && LLAMA_CMAKE="$LLAMA_CMAKE -DGGML_${f#*:}=ON"
  done
fi
if ! "$VENV/bin/python" -c "import llama_cpp, numpy" 2> /dev/null || [ "$(cat "$VENV/cmake-args" 2> /dev/null)" != "$LLAMA_CMAKE" ]; then
  echo "bench-decode: installing llama-cpp-python==$LLAMA_VERSION into $VENV (compiles llama.cpp: $LLAMA_CMAKE)"
  rm -rf "$VENV" && python3 -m venv "$VENV"
  CMAKE_ARGS="$LLAMA_CMAKE" "$VENV/bin/pip" install -q --no-cache-dir "llama-cpp-python==$LLAMA_VERSION" numpy
  echo "$LLAMA_CMAKE" > "$VENV/cmake-args"
fi

# ---- ours ----------------------------------------------------------------------------------------------
mkdir -p "$B/smol"
bin/lmnc compile dsl-examples/smol.lmn -o "$B/smol" > /dev/null 2> "$B/smol/lmnc.log" || { cat "$B/smol/lmnc.log"; exit 1; }
gcc $CFLAGS -Iruntime/include -Iruntime -I"$B/smol" -I$BLAS_INC -DBENCH_DESC=smol_desc -o "$B/smol/bench_step" \
  bench/bench_step.c "$B/smol/smol.c" lib/liblmn.a -lopenblas -lyaml -ljansson -lm -lpthread
rm -rf "$RAW" && mkdir -p "$RAW"

declare -A OURS LLAMA
for t in 1 2; do
  OURS[decode_$t]="$B/smol/bench_step decode $t 19 128 1"
  LLAMA[decode_$t]="$VENV/bin/python bench/llama_decode.py $MODEL $t 19 128"
  OURS[prefill_$t]="$B/smol/bench_step decode $t 230 1 1"
  LLAMA[prefill_$t]="$VENV/bin/python bench/llama_decode.py $MODEL $t 230 0"
done
CASES=(decode_1 decode_2 prefill_1 prefill_2)
for r in $(seq 1 "$ROUNDS"); do
  for c in "${CASES[@]}"; do
    for side in ours llama; do
      load=$(cut -d' ' -f1 /proc/loadavg)
      others=0 # runnable processes besides this shell, read without forking
      for i in 1 2 3; do
        read -r _ _ _ run _ < /proc/loadavg
        [ $((${run%/*} - 1)) -gt $others ] && others=$((${run%/*} - 1))
        sleep 0.1
      done
      if [ $side = ours ]; then cmd=${OURS[$c]}; else cmd=${LLAMA[$c]}; fi
      { echo "load $load"; echo "others $others"; $cmd; } > "$RAW/$c.$side.$r.txt"
      echo "== round $r/$ROUNDS $c $side (load $load, other runnable $others)"
    done
  done
done
{
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cpus"
  echo "flags=$(grep -o -w -E 'avx2|fma|f16c|avx512f|avx512_vnni|avx512_bf16|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "llama_cpp_python=$("$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)') (PyPI, built with $LLAMA_CMAKE)"
  echo "gcc=$(gcc --version | head -1)"
  echo "model=$MODEL ($(stat -c %s "$MODEL") bytes)"
  echo "rounds=$ROUNDS"
  for c in "${CASES[@]}"; do echo "cmd_ours_$c=${OURS[$c]}"; echo "cmd_llama_$c=${LLAMA[$c]}"; done
} > "$B/decode-env.txt"
python3 bench/decode_summary.py "$RAW" "$B/decode-env.txt" bench/decode_results.md
echo "bench-decode: wrote bench/decode_results.md"
