#!/usr/bin/env bash
# demo.sh: the default demo on dsl-examples/tiny.lmn (needs nothing but the build): checks the network,
# prints its summary and writes its picture to demo/tiny.png.
set -euo pipefail
mkdir -p demo
echo "== bin/lmnc check dsl-examples/tiny.lmn"
bin/lmnc check dsl-examples/tiny.lmn
echo "== bin/lmnc info dsl-examples/tiny.lmn --batch 8 --seq 128"
bin/lmnc info dsl-examples/tiny.lmn --batch 8 --seq 128
bin/lmnc dot dsl-examples/tiny.lmn | dot -Tpng -o demo/tiny.png
echo "== wrote demo/tiny.png"
