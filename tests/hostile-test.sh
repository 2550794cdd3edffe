#!/usr/bin/env bash
# hostile-test.sh LMNC: the hostile inputs of issue 16, each against a compiled network
# (dsl-examples/tiny.lmn) run as a user runs it, under a watchdog (a time limit and a cap on resident
# memory) so that a hang or a memory bomb fails the check instead of the machine:
#   fifo-corpus, fifo-model     a FIFO with no writer as corpus or as model file: a clear error, no hang
#   dev-zero, dev-urandom       character devices as corpus: a clear error, no memory bomb
#   sparse-20g                  a 20 GiB sparse corpus trains in under 500 MiB of resident memory
#   corrupt-float               one float of a checkpoint set to 1000.0: --resume names the tensor, the file
#                               and the previous good checkpoint; --resume-fallback resumes from it and
#                               ends bit-identical to an uninterrupted run
#   zero-data-state             a checkpoint whose data_state is zeroed: an error, not a spin
#   litter                      temporaries of a killed checkpoint write: removed and reported by the next run
#   eval-capped                 eval.batches beyond the validation data: each window evaluated once
#   long-dir                    a 5,000-character checkpoint.dir: the message keeps its place and its cause
#   read-only-dir               a checkpoint folder that cannot be written: an error before step 1
set -uo pipefail
lmnc=${1:-bin/lmnc}
lmnc=$(cd "$(dirname "$lmnc")" && pwd)/$(basename "$lmnc")
root=$PWD
dir=$(mktemp -d)
trap 'chmod -R u+w "$dir" 2> /dev/null; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
"$lmnc" compile dsl-examples/tiny.lmn -o "$dir/tiny" > /dev/null
make -s -C "$dir/tiny" LMNET="$root" CFLAGS="-std=c11 -O2 -Wall -Wextra -Werror -Wno-format-truncation" > /dev/null
tiny=$dir/tiny/tiny
cd "$dir" || exit 1
for i in $(seq 1 300); do echo "line $i: the quick brown fox jumps over the lazy dog, $((i * 7919 % 1000))."; done > corpus.txt

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; [ -f "${3:-/dev/null}" ] && sed 's/^/     | /' "$3" | cut -c1-300 | tail -n 8; }

# config NAME TRAIN DIR [STEPS EVERY KEEP]: a small run of tiny on TRAIN, checkpoints into DIR
config() {
  cat > "$1.yaml" << YAML
data: {train: $2, val_fraction: 0.1}
batch: 2
seq_len: 32
steps: ${4:-6}
optimizer: {lr: 0.003}
eval: {every: 0, batches: 2}
checkpoint: {dir: $3, every: ${5:-2}, keep: ${6:-0}}
seed: 7
threads: 1
log: {every: 1}
YAML
}

# guard SECONDS MIB LOG CMD...: runs CMD with its output in LOG; kills it (-9) once it runs longer than
# SECONDS or holds more than MIB MiB resident. Sets rc (124: too long, 137: too much memory) and peak (MiB).
guard() {
  local secs=$1 mib=$2 log=$3 n=0 rss
  shift 3
  "$@" > "$log" 2>&1 &
  local pid=$!
  rc='' peak=0
  while kill -0 "$pid" 2> /dev/null; do
    rss=$(awk '/^VmHWM:/ {print int($2 / 1024)}' "/proc/$pid/status" 2> /dev/null || echo 0)
    [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
    if [ "$peak" -gt "$mib" ]; then kill -9 "$pid" 2> /dev/null; rc=137; break; fi
    if [ $n -ge $((secs * 20)) ]; then kill -9 "$pid" 2> /dev/null; rc=124; break; fi
    sleep 0.05
    n=$((n + 1))
  done
  wait "$pid" 2> /dev/null
  local got=$?
  [ -z "$rc" ] && rc=$got
  return 0
}

# --- fifo-corpus, fifo-model --------------------------------------------------------------------------
mkfifo fifo.txt
config fifo fifo.txt ck-fifo
guard 10 1000 fifo.log "$tiny" train -c fifo.yaml
if [ "$rc" = 1 ] && grep -q 'fifo.txt.*FIFO' fifo.log; then ok fifo-corpus; else bad fifo-corpus "exit $rc" fifo.log; fi
# the model file of a compiled network replaced by a FIFO ($LMN_MODEL_DIR): `eval` loads it first
printf 'network f\nmodel m = gguf("%s")\nvertex a = m frozen\ntokens -> embed(m) -> a\na -> head(m) -> logits\nloss lm = cross_entropy(logits, next(tokens))\n' \
  "$root/tests/fixtures/hf/llama.gguf.dat" > f.lmn
"$lmnc" compile f.lmn -o fnet > /dev/null 2>&1
make -s -C fnet LMNET="$root" CFLAGS="-std=c11 -O2 -Wall -Wextra -Werror -Wno-format-truncation" > /dev/null
mkdir fifo-models && mkfifo fifo-models/llama.gguf.dat
guard 10 1000 fifo-model.log env LMN_MODEL_DIR=fifo-models fnet/f eval -c fifo.yaml
if [ "$rc" = 1 ] && grep -q 'llama.gguf.dat.*FIFO' fifo-model.log; then ok fifo-model; else bad fifo-model "exit $rc" fifo-model.log; fi

# --- dev-zero, dev-urandom ----------------------------------------------------------------------------
for dev in zero urandom; do
  config "dev-$dev" "/dev/$dev" "ck-$dev"
  guard 20 1000 "dev-$dev.log" "$tiny" train -c "dev-$dev.yaml"
  if [ "$rc" = 1 ] && grep -q "/dev/$dev.*character device" "dev-$dev.log"; then ok "dev-$dev"
  else bad "dev-$dev" "exit $rc, peak ${peak} MiB" "dev-$dev.log"; fi
done

# --- sparse-20g ---------------------------------------------------------------------------------------
truncate -s 20G sparse.txt
config sparse sparse.txt ck-sparse 3 0
guard 120 600 sparse.log "$tiny" train -c sparse.yaml
if [ "$rc" = 0 ] && [ "$peak" -lt 500 ] && grep -q '^step 3/3' sparse.log; then ok "sparse-20g (peak ${peak} MiB resident)"
else bad sparse-20g "exit $rc, peak ${peak} MiB" sparse.log; fi
rm -f sparse.txt

# --- corrupt-float ------------------------------------------------------------------------------------
tensors() { local n; n=$(od -An -t u8 -N8 "$1" | tr -d ' '); tail -c +$((n + 9)) "$1"; }
# byte_offset FILE TENSOR: where the first float of TENSOR is in FILE
byte_offset() {
  local n off
  n=$(od -An -t u8 -N8 "$1" | tr -d ' ')
  off=$(head -c $((n + 8)) "$1" | grep -ao "\"$2\":{[^}]*}" | sed 's/.*"data_offsets":\[\([0-9]*\),.*/\1/')
  echo $((8 + n + off))
}
config straight corpus.txt ck-straight
"$tiny" train -c straight.yaml > straight.log 2>&1
config corrupt corpus.txt ck-corrupt
"$tiny" train -c corrupt.yaml --stop-at 4 > corrupt1.log 2>&1
f=ck-corrupt/step-000004.safetensors
printf '\000\000\172\104' | dd of="$f" bs=1 seek="$(byte_offset "$f" byte.token_embd.weight)" conv=notrunc 2> /dev/null
guard 30 1000 corrupt2.log "$tiny" train -c corrupt.yaml --resume
if [ "$rc" = 1 ] && grep -q "step-000004.safetensors.*byte.token_embd.weight.*checksum" corrupt2.log &&
  grep -q 'step-000002.safetensors.*--resume-fallback' corrupt2.log; then ok "corrupt-float (refused)"
else bad "corrupt-float (refused)" "exit $rc" corrupt2.log; fi
guard 30 1000 corrupt3.log "$tiny" train -c corrupt.yaml --resume --resume-fallback
if [ "$rc" = 0 ] && grep -q 'resumed from .*step-000002.safetensors' corrupt3.log &&
  cmp -s <(tensors ck-straight/step-000006.safetensors) <(tensors ck-corrupt/step-000006.safetensors); then
  ok "corrupt-float (fallback, bit-identical)"
else bad "corrupt-float (fallback, bit-identical)" "exit $rc" corrupt3.log; fi

# --- eval-capped: more validation batches asked for than the data holds: each window once -----------------
sed 's/batches: 2/batches: 1000/' straight.yaml > eval.yaml
guard 60 1000 eval.log "$tiny" eval -c eval.yaml
n=$(sed -n 's/.* | \([0-9]*\) batches of 2 x 32 .*/\1/p' eval.log)
if [ "$rc" = 0 ] && [ -n "$n" ] && [ "$n" -gt 0 ] && [ "$n" -lt 1000 ]; then ok "eval-capped ($n batches)"
else bad eval-capped "exit $rc" eval.log; fi

# --- zero-data-state ----------------------------------------------------------------------------------
config zero corpus.txt ck-zero
"$tiny" train -c zero.yaml --stop-at 2 > zero1.log 2>&1
f=ck-zero/step-000002.safetensors
at=$(grep -abo '"data_state":"[0-9a-f]*"' "$f" | head -n 1 | cut -d: -f1)
printf '%0112d' 0 | dd of="$f" bs=1 seek=$((at + 14)) conv=notrunc 2> /dev/null
guard 20 1000 zero2.log "$tiny" train -c zero.yaml --resume
if [ "$rc" = 1 ] && grep -q "step-000002.safetensors.*data_state" zero2.log; then ok zero-data-state
else bad zero-data-state "exit $rc" zero2.log; fi

# --- litter -------------------------------------------------------------------------------------------
config litter corpus.txt ck-litter 6 1 2
"$tiny" train -c litter.yaml --stop-at 3 > litter1.log 2>&1
cp ck-litter/step-000003.safetensors ck-litter/step-000004.safetensors.tmp.Ab12Cd
echo step-000004.safetensors > ck-litter/latest.tmp.Zz99Yy
guard 30 1000 litter2.log "$tiny" train -c litter.yaml --resume
left=$(ls ck-litter | grep -c '\.tmp\.' || true)
steps=$(ls ck-litter | grep -c '^step-[0-9]*\.safetensors$' || true)
if [ "$rc" = 0 ] && [ "$left" = 0 ] && [ "$steps" = 2 ] && grep -q 'removed .*step-000004.safetensors.tmp.Ab12Cd' litter2.log; then
  ok litter
else bad litter "exit $rc, $left temporaries and $steps checkpoints left" litter2.log; fi

# --- long-dir -----------------------------------------------------------------------------------------
long=$(printf 'd%.0s' $(seq 1 5000))
config long corpus.txt "$long"
guard 20 1000 long.log "$tiny" train -c long.yaml
msg=$(head -n 1 long.log)
if [ "$rc" = 1 ] && [[ "$msg" == *long.yaml:7:* ]] && [[ "$msg" == *"..."* ]] && [[ "$msg" == *"too long"* ]] &&
  [ "${#msg}" -lt 1023 ]; then ok "long-dir (${#msg} characters)"
else bad long-dir "exit $rc, ${#msg} characters" long.log; fi

# --- read-only-dir ------------------------------------------------------------------------------------
mkdir ck-ro && chmod 555 ck-ro
config ro corpus.txt ck-ro
as_user=()
if [ "$(id -u)" = 0 ]; then as_user=(capsh --drop=cap_dac_override --); fi
if [ "$(id -u)" = 0 ] && ! command -v capsh > /dev/null; then
  echo "skip read-only-dir: running as root without capsh"
else
  if [ ${#as_user[@]} -gt 0 ]; then guard 20 1000 ro.log capsh --drop=cap_dac_override -- -c "'$tiny' train -c ro.yaml"
  else guard 20 1000 ro.log "$tiny" train -c ro.yaml; fi
  if [ "$rc" = 1 ] && grep -q 'ck-ro.*not writable' ro.log && ! grep -q '^step 1/' ro.log; then ok read-only-dir
  else bad read-only-dir "exit $rc" ro.log; fi
fi

echo "hostile: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
