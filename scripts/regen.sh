#!/usr/bin/env bash
# regen.sh LMNC [--check]: writes what lmnc emits for every dsl-examples/*.lmn into generated/NAME/
# (the IR as text and JSON, the Graphviz picture source, the summary, and the compiled C: NAME.h,
# NAME.c, main.c and the Makefile). With --check, regenerates into build-regen/
# and fails when generated/ differs, so CI catches a compiler change whose output was not
# committed.
set -euo pipefail
lmnc=$1
mode=${2:-}
out=generated
if [ "$mode" = "--check" ]; then
  out=build-regen   # NAME/ sits two levels below the root, like generated/NAME: same relative paths
  rm -rf "$out"
  mkdir -p "$out"
fi
for f in dsl-examples/*.lmn; do
  name=$(basename "$f" .lmn)
  mkdir -p "$out/$name"
  "$lmnc" ir "$f" > "$out/$name/$name.ir.txt"
  "$lmnc" ir --json "$f" > "$out/$name/$name.ir.json" 2> /dev/null # warnings: once, from `ir` above
  "$lmnc" dot "$f" > "$out/$name/$name.dot" 2> /dev/null
  "$lmnc" info "$f" > "$out/$name/$name.info.txt" 2> /dev/null
  "$lmnc" compile "$f" -o "$out/$name" > /dev/null 2>&1
done
if [ "$mode" = "--check" ]; then
  if ! diff -r -x '.built-mpi*' generated "$out" > /dev/null; then # a build's stamp is not lmnc's output
    diff -ru -x '.built-mpi*' generated "$out" | head -n 40
    echo "generated/ is out of date: run 'make regen' and commit the result" >&2
    exit 1
  fi
  echo "generated/ matches what lmnc emits"
fi
