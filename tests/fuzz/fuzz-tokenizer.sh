#!/usr/bin/env bash
# fuzz-tokenizer.sh: builds the libFuzzer target of the BPE tokenizer (tests/fuzz/fuzz_tokenizer.c) with
# clang -fsanitize=fuzzer,address,undefined into build-fuzz/ and runs it for SECONDS seconds (default 60),
# seeded with the texts of tests/fixtures/tokenizer/smollm2_ids.txt. Needs the real vocabulary
# (models/SmolLM2-135M-Instruct.Q4_1.gguf, `make models`); without it, says so and exits 0. The corpus
# grows in tests/fuzz/corpus-tokenizer/ and a crash lands in tests/fuzz/crash-tokenizer-* (both git-ignored).
#   usage: tests/fuzz/fuzz-tokenizer.sh [SECONDS]
set -eu
secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build-fuzz
cd "$root"
if [ ! -r models/SmolLM2-135M-Instruct.Q4_1.gguf ]; then
  echo "fuzz_tokenizer: models/SmolLM2-135M-Instruct.Q4_1.gguf is absent (make models): skipped"
  exit 0
fi
mkdir -p "$out" tests/fuzz/corpus-tokenizer
cflags="-std=c11 -g -O1 -D_GNU_SOURCE -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined"
cflags="$cflags -fno-sanitize-recover=all -fno-omit-frame-pointer -Iruntime"
srcs="runtime/tokenizer_bpe.c runtime/tokenizer.c runtime/gguf.c runtime/dequant.c runtime/hparams.c runtime/lmn_error.c runtime/lmn_file.c"
echo "== building fuzz_tokenizer"
clang $cflags tests/fuzz/fuzz_tokenizer.c $srcs -lm -o "$out/fuzz_tokenizer"
seeds=$out/seeds-tokenizer
rm -rf "$seeds" && mkdir -p "$seeds"
# one seed per fixture text, for each of the 4 pre-tokenizers (first byte)
i=0
grep -v '^[#@]' tests/fixtures/tokenizer/smollm2_ids.txt | cut -f1 | sort -u | while read -r hex; do
  for p in 0 1 2 3; do
    printf '%b' "\\x0$p$(printf '%s' "$hex" | sed 's/../\\x&/g')" >"$seeds/s$i-$p"
  done
  i=$((i + 1))
done
printf '"<|im_start|>"\n"<|im_end|>"\n"<|endoftext|>"\n"\\x27s"\n"\\x27ll"\n"\\xc3\\xa9"\n"\\xe2\\x80\\x8d"\n"\\xf0\\x9f\\x98\\x80"\n"\\x0d\\x0a"\n"    "\n' >"$out/tokenizer.dict"
exec bash tests/fuzz/run-target.sh tokenizer "$secs" -max_len=4096 -dict="$out/tokenizer.dict" tests/fuzz/corpus-tokenizer "$seeds"
