#!/usr/bin/env bash
# bench/lmnet-1b.sh: issue 11's run of the paper's shape. bench/nets/lmnet_1b_random.lmn (LMNet-1B: layers
# [1,4,4,4,1] of a Qwen2.5-0.5B-shaped model, random and frozen, 41 trainable edges) trains 2 optimizer steps
# of B 8 x T 512 as `batch: 2, accumulate: 4` under `memory: {budget: 16GiB}` on a repeated paragraph (so
# step 2 sees the batch of step 1 again), f32, 2 threads. Records the memory plan, the peak RSS of the whole
# process (getrusage), s/step and both losses into bench/lmnet-1b.md, which bench/summarize.py copies into
# bench/results.md. About 20 minutes on a quiet 2-core machine; needs about 16 GiB of free memory.
#   usage: bench/lmnet-1b.sh [BUDGET]   (default 16GiB)
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${1:-16GiB}
W=build/lmnet-1b
rm -rf "$W" && mkdir -p "$W"
make -s all
bin/lmnc compile bench/nets/lmnet_1b_random.lmn -o "$W/net" > /dev/null
make -s -C "$W/net" LMNET="$PWD" > /dev/null
python3 - "$W/train.txt" <<'PY'
import sys
para = ("The network passes dense vectors from one language model to the next; every edge is a small trainable "
        "module, and the vertices stay frozen while the edges learn to carry what the next model needs. ")
open(sys.argv[1], "w").write(para * 400)
PY
cat > "$W/train.yaml" <<YAML
data: {train: train.txt, val_fraction: 0.1}
batch: 2
seq_len: 512
accumulate: 4
steps: 2
memory: {budget: $BUDGET}
optimizer: {lr: 1.0e-3}
schedule: {decay: constant}
threads: 2
seed: 7
eval: {every: 0, batches: 1}
checkpoint: {dir: ck}
log: {every: 1}
YAML
"$W/net/lmnet_1b_random" info -c "$W/train.yaml" > "$W/info.txt"
load0=$(cut -d' ' -f1 /proc/loadavg)
t0=$(date +%s)
python3 - "$W/net/lmnet_1b_random" "$W/train.yaml" "$W/train.log" "$W/rss.txt" <<'PY'
import resource, subprocess, sys
with open(sys.argv[3], "w") as log:
    subprocess.run([sys.argv[1], "train", "-c", sys.argv[2]], check=True, stdout=log, stderr=subprocess.STDOUT)
open(sys.argv[4], "w").write("%d\n" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024))
PY
t1=$(date +%s)
load1=$(cut -d' ' -f1 /proc/loadavg)
python3 - "$W" "$BUDGET" "$load0" "$load1" "$((t1 - t0))" > bench/lmnet-1b.md <<'PY'
import re, sys, platform
w, budget, load0, load1, wall = sys.argv[1:6]
info = open(w + "/info.txt").read()
log = open(w + "/train.log").read()
rss = int(open(w + "/rss.txt").read())
steps = re.findall(r"^step (\d+)/2 \| loss ([0-9.]+) .*?\| ([0-9.]+) (ms|s)/step", log, re.M)
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
def line(prefix):
    return next((l for l in info.splitlines() if l.startswith(prefix)), "?")
print("## LMNet-1B-shaped run: B 8 x T 512 under a %s budget (issue 11)\n" % budget)
print("`bash bench/lmnet-1b.sh` on %s (2 threads, f32): bench/nets/lmnet_1b_random.lmn, `batch: 2, accumulate: 4`, "
      "2 optimizer steps on a repeated paragraph; 1-minute load average %s before, %s after; %s s in all "
      "(initialisation, both steps, one validation batch, the checkpoint).\n" % (cpu, load0, load1, wall))
print("- plan (`NAME info -c`): %s" % line("memory plan").replace("|", "/"))
print("  - %s" % line("  activations").strip())
print("  - %s" % line("memory at"))
print("  - %s" % line("peak while training"))
print("- **peak RSS of the whole training process: %.2f GiB** (getrusage ru_maxrss)" % (rss / 2**30))
for s, loss, t, unit in steps:
    sec = float(t) / (1000.0 if unit == "ms" else 1.0)
    print("- step %s: loss %s, %.1f s/step" % (s, loss, sec))
PY
cat bench/lmnet-1b.md
