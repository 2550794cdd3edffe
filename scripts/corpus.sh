#!/usr/bin/env bash
# corpus.sh TRAIN VAL [EVERY]: English text from the Debian `fortunes` package (plain text, one saying per
# '%' line), split by document: every EVERY-th saying of each file (default 50) goes to VAL, the rest to
# TRAIN, so that the held-out text is the same mix of files as the training text and no saying is in both.
# Used by `make demo` (scripts/demo.sh) and `make paper` (scripts/paper.sh).
set -euo pipefail
train=$1 val=$2 every=${3:-50}
files=()
for f in fortunes literature people wisdom science humorists platitudes work love men-women politics \
         education computers art food goedel law linuxcookie magic medicine miscellaneous news pets \
         riddles songs-poems sports startrek translate-me zippy; do
  p=/usr/share/games/fortunes/$f
  [ -f "$p" ] && files+=("$p")
done
[ ${#files[@]} -gt 0 ] || { echo "corpus: no fortune files in /usr/share/games/fortunes (apt-get install fortunes)" >&2; exit 1; }
awk -v train="$train" -v val="$val" -v every="$every" \
    'FNR == 1 { n = 0 } /^%$/ { n++; next } { if (n % every == every - 1) print > val; else print > train }' "${files[@]}"
