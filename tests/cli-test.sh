#!/usr/bin/env bash
# cli-test.sh LMNC: the command line of a compiled network (issue 13). `NAME CMD --help` prints that
# command's help; a misspelt command or option gets "did you mean"; and it finds its model file from any
# working directory:
# `lmnc compile -o` creates missing folders; the executable run from / finds the model beside itself (the
# path from the output folder is compiled in); moved where neither that nor the working-directory path
# leads, it names the model, both places and --model-dir; --model-dir and $LMN_MODEL_DIR point at it.
# Needs models/SmolLM2-135M-Instruct.Q4_1.gguf (make models).
set -euo pipefail
lmnc=$(cd "$(dirname "${1:-bin/lmnc}")" && pwd)/$(basename "${1:-bin/lmnc}")
root=$PWD
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*"; fi; }
"$lmnc" compile dsl-examples/smol.lmn -o "$dir/new/deep/smol" > /dev/null 2>&1
check test -f "$dir/new/deep/smol/smol.c"
make -s -C "$dir/new/deep/smol" LMNET="$root" > /dev/null
exe=$dir/new/deep/smol/smol
(cd / && "$exe" generate -p "The capital of France is" -n 4 --temperature 0 > "$dir/from-root.txt" 2>&1)
check grep -q 'tokens at' "$dir/from-root.txt"
mkdir -p "$dir/a/b/c/d/e/f/g/h"
cp "$exe" "$dir/a/b/c/d/e/f/g/h/smol"
rc=0
(cd / && "$dir/a/b/c/d/e/f/g/h/smol" generate -p Hi -n 2 > "$dir/moved.txt" 2>&1) || rc=$?
check test "$rc" = 1
check grep -q "model 'smol' of network 'smol' (compiled from dsl-examples/smol.lmn) is neither at .*beside the executable.* nor at dsl-examples/../models/SmolLM2-135M-Instruct.Q4_1.gguf .*--model-dir DIR" "$dir/moved.txt"
(cd / && "$dir/a/b/c/d/e/f/g/h/smol" info --model-dir "$root/models" > "$dir/flag.txt" 2>&1)
check grep -q 'frozen weights kept as' "$dir/flag.txt"
(cd / && LMN_MODEL_DIR="$root/models" "$dir/a/b/c/d/e/f/g/h/smol" generate -p Hi -n 2 > "$dir/env.txt" 2>&1)
check grep -q 'tokens at' "$dir/env.txt"
rc=0
(cd / && "$dir/a/b/c/d/e/f/g/h/smol" generate -p Hi --model-dir /nonexistent > "$dir/bad.txt" 2>&1) || rc=$?
check test "$rc" = 1
check grep -q '/nonexistent/SmolLM2-135M-Instruct.Q4_1.gguf: no such file' "$dir/bad.txt"
out=$("$exe" train --help)
check grep -q '^usage: .*smol train \[options\]' <<< "$out"
check grep -q -- '--resume-fallback' <<< "$out"
check test "$(grep -c -- '--temperature' <<< "$out")" = 0
rc=0
"$exe" trian > "$dir/typo.txt" 2>&1 || rc=$?
check test "$rc" = 2
check grep -q "unknown command 'trian'; did you mean 'train'?" "$dir/typo.txt"
rc=0
"$exe" generate -p x --temprature 0 > "$dir/typo2.txt" 2>&1 || rc=$?
check test "$rc" = 2
check grep -q "unknown option '--temprature' for 'generate'; did you mean '--temperature'?" "$dir/typo2.txt"
echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
