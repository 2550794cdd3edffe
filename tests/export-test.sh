#!/usr/bin/env bash
# export-test.sh LMNC: tensor names from the .lmn and `NAME export` (issue 13).
#   - names: edge tensors are named from the source ("block.a->b.m0.attn_q.weight"), and an unrelated edit
#     (a vertex and two edges added) keeps every existing name and shape;
#   - export of three twin families (LM with frozen from-scratch vertices; GPT-2 with a prefix; a
#     classifier): the files, network.json naming every tensor of model.safetensors, the weights equal to the
#     checkpoint's bytes, the self-check deterministic; usage and path errors;
#   - with a python that has torch (TWIN_PYTHON, build/bench/torch-venv, or python3): the PyTorch twin
#     rebuilds each export from its files alone and reproduces lmnet's outputs within 1e-5, and a changed
#     weight is caught. Without torch that part is skipped, and says so.
set -euo pipefail
lmnc=$(cd "$(dirname "${1:-bin/lmnc}")" && pwd)/$(basename "${1:-bin/lmnc}")
root=$PWD
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*"; fi; }
names() { "$lmnc" ir --json "$1" | python3 -c 'import json,sys; [print(p["name"], p["shape"]) for p in json.load(sys.stdin)["params"]]' | sort; }

# ---- names from the source, stable under an unrelated edit
cp tests/twin/twin_tiny.lmn "$dir/edited.lmn"
printf 'vertex d = byte shared trainable\na -> block -> d\nd -> block -> c\n' >> "$dir/edited.lmn"
names tests/twin/twin_tiny.lmn > "$dir/before.txt"
names "$dir/edited.lmn" > "$dir/after.txt"
check grep -q '^block\.a->b\.m0\.attn_q\.weight ' "$dir/before.txt"
check grep -q '^edge\.tokens->a\.m1\.attn_q\.weight ' "$dir/before.txt"
check test -z "$(comm -23 "$dir/before.txt" "$dir/after.txt")"          # nothing renamed or reshaped
check grep -q '^block\.d->c\.m0\.' "$dir/after.txt"

# ---- export of three families
torch_py=${TWIN_PYTHON:-}
for p in "$root/build/bench/torch-venv/bin/python" python3; do
  [ -n "$torch_py" ] && break
  if "$p" -c 'import torch' 2> /dev/null; then torch_py=$p; fi
done
cp tests/twin/data.txt tests/twin/classify.tsv "$dir/"
cd "$dir"
for n in twin_hetero twin_gpt2 twin_classify; do
  "$lmnc" compile "$root/tests/twin/$n.lmn" -o $n > /dev/null
  make -s -C $n LMNET="$root" CFLAGS="-std=c11 -O2 -Wall -Wextra -Werror -Wno-format-truncation" > /dev/null
  cfg=$root/tests/twin/$n.yaml
  [ -f "$cfg" ] || cfg=$root/tests/twin/twin_lm.yaml
  sed "s|^steps: .*|steps: 5|" "$cfg" > $n.yaml
  printf 'checkpoint: {dir: %s/ck}\nlog: {every: 100}\neval: {every: 0}\n' $n >> $n.yaml
  $n/$n train -c $n.yaml > $n.train.log 2>&1
  check $n/$n export -c $n.yaml -o $n/out/deep > $n.export.log 2>&1
  check grep -q "exported $n/ck/step-000005.safetensors to $n/out/deep/" $n.export.log
  for f in model.safetensors network.json network.lmn test_data.safetensors; do check test -s $n/out/deep/$f; done
  check cmp -s $n/out/deep/network.lmn "$root/tests/twin/$n.lmn"
  # every tensor of network.json in model.safetensors with the checkpoint's bytes, and nothing else
  check python3 - $n/out/deep $n/ck/step-000005.safetensors << 'PY'
import json, struct, sys
def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in head.items() if k != "__metadata__"}, head
exp, head = read(sys.argv[1] + "/model.safetensors")
ck, _ = read(sys.argv[2])
net = json.load(open(sys.argv[1] + "/network.json"))
want = [p["name"] for p in net["params"]]
assert sorted(exp) == sorted(want), (sorted(set(exp) ^ set(want)))
assert all(head[p["name"]]["shape"] == p["shape"] for p in net["params"])
assert all(exp[k] == ck[k] for k in exp if k in ck), [k for k in exp if k in ck and exp[k] != ck[k]]
assert sum(k in ck for k in exp) > 0
PY
  $n/$n export -c $n.yaml -o $n/again > /dev/null
  check cmp -s $n/out/deep/test_data.safetensors $n/again/test_data.safetensors
  if [ -n "$torch_py" ]; then
    check "$torch_py" "$root/tests/reference/torch_twin.py" --export $n/out/deep
    python3 - $n/again/model.safetensors << 'PY' # the largest tensor changed by 1%: the twin must notice
import json, struct, sys
path = sys.argv[1]
b = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
head = json.loads(b[8:8 + n])
name = max((k for k in head if k != "__metadata__"), key=lambda k: head[k]["data_offsets"][1] - head[k]["data_offsets"][0])
lo, hi = (8 + n + o for o in head[name]["data_offsets"])
for at in range(lo, hi, 4):
    b[at:at + 4] = struct.pack("<f", struct.unpack("<f", b[at:at + 4])[0] * 1.01 + 0.01)
open(path, "wb").write(bytes(b))
PY
    check test "$("$torch_py" "$root/tests/reference/torch_twin.py" --export $n/again 2> /dev/null | grep -c 'FAIL$')" = 1
  fi
done
[ -n "$torch_py" ] || echo "export: the PyTorch comparison skipped: no python with torch (TWIN_PYTHON=..., or make bench)"

# ---- usage and path errors
set +e
twin_hetero/twin_hetero export -c twin_hetero.yaml > usage.log 2>&1
check test $? = 2
check grep -q "'export' needs -c CONFIG.yaml and -o DIR" usage.log
touch afile
twin_hetero/twin_hetero export -c twin_hetero.yaml -o afile/x > path.log 2>&1
check test $? = 1
check grep -q "afile" path.log
twin_hetero/twin_hetero export --help > help.log 2>&1
check test $? = 0
check grep -q "test_data.safetensors" help.log
twin_hetero/twin_hetero exprot > typo.log 2>&1
check grep -q "did you mean 'export'" typo.log
set -e

echo "export: $pass passed, $fail failed"
[ "$fail" = 0 ]
