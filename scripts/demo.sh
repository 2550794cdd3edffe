#!/usr/bin/env bash
# demo.sh: the default demo on dsl-examples/tiny.lmn, needing nothing beyond the Debian packages:
# checks the network and draws it, compiles it to C, trains it on English text from the `fortunes`
# package (about two minutes on 2 cores), and generates a few lines from a prompt.
set -euo pipefail
mkdir -p demo
echo "== bin/lmnc check dsl-examples/tiny.lmn"
bin/lmnc check dsl-examples/tiny.lmn
bin/lmnc info dsl-examples/tiny.lmn --batch 8 --seq 128 | sed -n '1,2p;/FLOPs/p'
bin/lmnc dot dsl-examples/tiny.lmn | dot -Tpng -o demo/tiny.png
echo "== wrote demo/tiny.png"

# the corpus: the English fortune files (plain text, one saying per '%' line)
if [ ! -s demo/fortunes.txt ]; then
  for f in fortunes literature people wisdom science humorists platitudes work love men-women politics \
           education computers art food goedel law linuxcookie magic medicine miscellaneous news pets \
           riddles songs-poems sports startrek translate-me zippy; do
    p=/usr/share/games/fortunes/$f
    [ -f "$p" ] && grep -v '^%$' "$p"
  done > demo/fortunes.txt
fi
echo "== corpus demo/fortunes.txt: $(wc -c < demo/fortunes.txt) bytes"
cat > demo/train.yaml <<YAML
data: {train: fortunes.txt, val_fraction: 0.02}
batch: 8
seq_len: 128
steps: ${DEMO_STEPS:-600}
optimizer: {lr: 0.003, betas: [0.9, 0.95], eps: 1.0e-8, weight_decay: 0.0}
schedule: {warmup: 30, decay: cosine, min_lr: 0.0003}
grad_clip: 1.0
eval: {every: 200, batches: 8}
checkpoint: {dir: checkpoints, every: 0, keep: 1}
seed: 1337
threads: 2
log: {every: 25}
YAML
rm -rf demo/checkpoints
echo "== bin/lmnc compile dsl-examples/tiny.lmn -o demo/tiny && make -C demo/tiny"
bin/lmnc compile dsl-examples/tiny.lmn -o demo/tiny
make -s -C demo/tiny
echo "== demo/tiny/tiny train -c demo/train.yaml"
demo/tiny/tiny train -c demo/train.yaml
echo "== demo/tiny/tiny generate -c demo/train.yaml -p 'The meaning of life is ' -n 300"
demo/tiny/tiny generate -c demo/train.yaml -p "The meaning of life is " -n 300 --temperature 0.7 --seed 7
echo
