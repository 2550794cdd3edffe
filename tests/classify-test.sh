#!/usr/bin/env bash
# classify-test.sh LMNC: `predict` and the per-class report of a classification network (issue 13), on
# dsl-examples/classify.lmn and tests/fixtures/classify/toy.tsv: after a short training run,
#   - eval prints per-class precision/recall/F1 and a confusion matrix whose counts add up to the examples;
#   - predict on the held-out lines (the last 20% of the file, as val_fraction 0.2 holds out) labels them
#     with the same correct count as eval (the texts are prepared as in training), each output line is
#     LABEL<TAB>probabilities that sum to 1 with LABEL their argmax, and --json lines parse;
#   - unlabelled texts are labelled without a report; bad input and a generative network are refused, and
#     so is sample.every in training (a classifier generates no text).
set -euo pipefail
lmnc=$(cd "$(dirname "${1:-bin/lmnc}")" && pwd)/$(basename "${1:-bin/lmnc}")
root=$PWD
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$lmnc" compile dsl-examples/classify.lmn -o "$dir/c" > /dev/null
make -s -C "$dir/c" LMNET="$root" CFLAGS="-std=c11 -O2 -Wall -Wextra -Werror -Wno-format-truncation" > /dev/null
cd "$dir"
cp "$root/tests/fixtures/classify/toy.tsv" .
printf 'data: {train: toy.tsv, val_fraction: 0.2}\nbatch: 8\nseq_len: 32\nsteps: 60\noptimizer: {lr: 0.002}\neval: {every: 0, batches: 100}\nseed: 3\nthreads: 1\nlog: {every: 60}\n' > c.yaml
c/classify train -c c.yaml > train.log 2>&1
pass=0 fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*"; fi; }
c/classify eval -c c.yaml > eval.txt
correct=$(sed -n 's/.*accuracy [0-9.]*% (\([0-9]*\) of \([0-9]*\) examples).*/\1/p' eval.txt)
check test "$(sed -n 's/.*(\([0-9]*\) of \([0-9]*\) examples).*/\2/p' eval.txt)" = 80
check grep -q '^macro ' eval.txt
check test "$(awk '/^confusion/ {on = 1; getline; next} on {for (i = 2; i <= NF; i++) s += $i} END {print s}' eval.txt)" = 80
tail -n 80 toy.tsv > held.tsv
c/classify predict -c c.yaml -f held.tsv > pred.txt 2> report.txt
check test "$(wc -l < pred.txt)" = 80
check grep -q "^80 labelled texts: accuracy [0-9.]*% ($correct correct)" report.txt
check awk -F'\t' '{n = split($2, p, " "); s = 0; best = 0; for (i = 1; i <= n; i++) { s += p[i]; if (p[i] > p[best + 1]) best = i - 1 }
                   if (n != 4 || s < 0.99999 || s > 1.00001 || best != $1) exit 1}' pred.txt
cut -f2 held.tsv | c/classify predict -c c.yaml --json > pred.json 2> report2.txt
check test ! -s report2.txt
check python3 -c 'import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
plain = [l.split("\t") for l in open(sys.argv[2])]
assert len(rows) == 80 and [r["line"] for r in rows] == list(range(1, 81))
assert all(r["label"] == int(p[0]) and "true" not in r for r, p in zip(rows, plain))' pred.json pred.txt
rc=0
printf '\n\n' | c/classify predict -c c.yaml > /dev/null 2> empty.txt || rc=$?
check test "$rc" = 1
check grep -q 'standard input: no texts to label' empty.txt
printf '1\t\n' > bad.tsv
rc=0
c/classify predict -c c.yaml -f bad.tsv > /dev/null 2> bad.txt || rc=$?
check grep -q 'bad.tsv:1: empty text after the label' bad.txt
"$lmnc" compile "$root/dsl-examples/tiny.lmn" -o t > /dev/null
make -s -C t LMNET="$root" > /dev/null
rc=0
echo hi | t/tiny predict -c c.yaml > /dev/null 2> gen.txt || rc=$?
check test "$rc" = 1
check grep -q 'predict labels texts with a classification network' gen.txt
# a classifier generates no text: sampling during training is refused before the first step
{ cat c.yaml; printf 'sample: {every: 10}\n'; } > s.yaml
rc=0
c/classify train -c s.yaml > s.log 2>&1 || rc=$?
check test "$rc" = 1
check grep -q "s.yaml: sample.every: network 'classify' is a classifier and generates no text" s.log
echo "classify: $pass passed, $fail failed (eval: $correct of 80 correct)"
[ "$fail" -eq 0 ]
