#!/usr/bin/env bash
# demo.sh: the default demo on dsl-examples/tiny.lmn, needing nothing beyond the Debian packages:
# checks the network and draws it, compiles it to C, trains it on English text from the `fortunes`
# package (2000 steps, about a minute and a half on 2 cores), and generates a few lines from a prompt.
set -euo pipefail
mkdir -p demo
echo "== bin/lmnc check dsl-examples/tiny.lmn"
bin/lmnc check dsl-examples/tiny.lmn
bin/lmnc info dsl-examples/tiny.lmn --batch 8 --seq 128 | sed -n '1,2p;/FLOPs/p'
bin/lmnc dot dsl-examples/tiny.lmn | dot -Tpng -o demo/tiny.png
echo "== wrote demo/tiny.png"

# The corpus: the English fortune files, every 50th saying of each file held out (scripts/corpus.sh).
if [ ! -s demo/train.txt ] || [ ! -s demo/val.txt ]; then
  bash scripts/corpus.sh demo/train.txt demo/val.txt 50
fi
echo "== corpus: demo/train.txt $(wc -c < demo/train.txt) bytes, demo/val.txt $(wc -c < demo/val.txt) bytes"
cat > demo/train.yaml <<YAML
data: {train: train.txt, val: val.txt}
batch: 8
seq_len: 128
steps: ${DEMO_STEPS:-2000}
optimizer: {lr: 0.004, betas: [0.9, 0.95], eps: 1.0e-8, weight_decay: 0.0}
schedule: {warmup: 30, decay: cosine, min_lr: 0.0004}
grad_clip: 1.0
eval: {every: 500, batches: 32}
checkpoint: {dir: checkpoints, every: 0, keep: 1}
seed: 1337
threads: 2
log: {every: 100}
YAML
rm -rf demo/checkpoints
echo "== bin/lmnc compile dsl-examples/tiny.lmn -o demo/tiny && make -C demo/tiny"
bin/lmnc compile dsl-examples/tiny.lmn -o demo/tiny
make -s -C demo/tiny
echo "== demo/tiny/tiny train -c demo/train.yaml"
demo/tiny/tiny train -c demo/train.yaml
# 100 bytes after the 23 of the prompt: positions the model was trained on (seq_len 128; RoPE does not carry
# it much beyond them)
echo "== demo/tiny/tiny generate -c demo/train.yaml -p 'The meaning of life is ' -n 100"
demo/tiny/tiny generate -c demo/train.yaml -p "The meaning of life is " -n 100 --temperature 0.7 --seed 7
echo
