#!/usr/bin/env bash
# preserve-test.sh LMNC: a function-preserving start (issue 15): dsl-examples/smol_preserve.lmn, the paper's
# [1,2,1] of frozen SmolLM2-135M calls whose second chain into `logits` goes through linear(init zero),
# against dsl-examples/smol.lmn (SmolLM2 alone), both untrained:
#   - the logits of a 64-token sequence (export's test_data) agree within 1e-6 (they are the same floats);
#   - the validation losses agree, and greedy generation through the KV caches gives the same text;
#   - 6 AdamW steps at lr 1e-4 lower the validation loss below SmolLM2's own.
# Needs models/SmolLM2-135M-Instruct.Q4_1.gguf (make models).
set -euo pipefail
lmnc=$(cd "$(dirname "${1:-bin/lmnc}")" && pwd)/$(basename "${1:-bin/lmnc}")
root=$PWD
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*"; fi; }
cd "$dir"
for n in smol smol_preserve; do
  "$lmnc" compile "$root/dsl-examples/$n.lmn" -o $n > /dev/null 2>&1
  make -s -C $n LMNET="$root" CFLAGS="-std=c11 -O2 -Wall -Wextra -Werror -Wno-format-truncation" > /dev/null
done
# a fixed paragraph repeated (not a file of the repository, whose edits would change what 6 steps learn): the
# validation tail holds the same text, so a few steps on it lower the validation loss whenever training works
para='A language model network joins pre-trained language models, stripped of their embeddings and output
heads, with small trainable modules that pass dense vectors from one model to the next. Tokens enter at the
first model and logits leave the last; everything between them is differentiable and trained end to end.
The frozen models keep what they learned, and the links learn to carry meaning between them.'
for i in $(seq 1 120); do printf '%s\n\n' "$para"; done > corpus.txt
printf 'data: {train: corpus.txt, val_fraction: 0.1}\nbatch: 1\nseq_len: 64\nsteps: 6\noptimizer: {lr: 0.0001}\n' > p.yaml
printf 'checkpoint: {dir: ck}\nthreads: 2\neval: {every: 0, batches: 4}\nlog: {every: 100}\n' >> p.yaml

for n in smol smol_preserve; do
  $n/$n export -c p.yaml -o $n.export > /dev/null
  $n/$n eval -c p.yaml 2> /dev/null | grep -o 'val loss [0-9.]*' > $n.val
  $n/$n generate -c p.yaml -p "The capital of France is" -n 16 --temperature 0 > $n.gen 2> /dev/null
done
check python3 - smol.export/test_data.safetensors smol_preserve.export/test_data.safetensors << 'PY'
import json, struct, sys
def output(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    t = json.loads(b[8:8 + n])["output"]
    lo, hi = (8 + n + o for o in t["data_offsets"])
    return t["shape"], struct.unpack("<%df" % ((hi - lo) // 4), b[lo:hi])
(sa, a), (sb, b) = output(sys.argv[1]), output(sys.argv[2])
worst = max(abs(x - y) for x, y in zip(a, b))
print("preserve: logits of SmolLM2 alone and of the [1,2,1] network at step 0: %s, max |diff| %.3e (tol 1e-6)"
      % ("x".join(map(str, sa)), worst))
assert sa == sb and worst <= 1e-6
PY
check test -s smol.val
check cmp -s smol.val smol_preserve.val
check test -s smol.gen
check cmp -s smol.gen smol_preserve.gen
smol_preserve/smol_preserve train -c p.yaml > train.log 2>&1
smol_preserve/smol_preserve eval -c p.yaml 2> /dev/null | grep -o 'val loss [0-9.]*' > trained.val
echo "preserve: SmolLM2 $(cat smol.val), the network at step 0 $(cat smol_preserve.val), after 6 steps $(cat trained.val)"
check awk -v a="$(cut -d' ' -f3 smol.val)" -v b="$(cut -d' ' -f3 trained.val)" 'BEGIN { exit !(b < a) }'
echo "preserve: $pass passed, $fail failed"
[ "$fail" = 0 ]
