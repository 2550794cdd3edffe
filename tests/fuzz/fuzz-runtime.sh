#!/usr/bin/env bash
# fuzz-runtime.sh: builds the libFuzzer targets of the runtime's readers with clang
# -fsanitize=fuzzer,address,undefined into build-fuzz/ and runs each for SECONDS seconds (default 60):
#   config      the YAML training configuration (tests/fuzz/fuzz_config.c)
#   data        corpora and labelled TSV files, raw bytes (tests/fuzz/fuzz_data.c)
#   checkpoint  checkpoints into a small network (tests/fuzz/fuzz_checkpoint.c)
#   tokens      a corpus tokenised whole and in chunks by the SmolLM2 BPE tokenizer (tests/fuzz/fuzz_tokens.c;
#               skipped without models/SmolLM2-135M-Instruct.Q4_1.gguf: `make models`)
#   request     the JSON bodies of `NAME serve`'s requests (tests/fuzz/fuzz_request.c)
# Each is seeded from tests/fuzz/corpus/NAME/ (committed, small files; NAME.dict there when present); the
# corpus grows in tests/fuzz/corpus-NAME/ and a crash lands in tests/fuzz/crash-NAME-* (both git-ignored).
# liblmn is built once into build-fuzz/rt/ with the same sanitizers. Prints the executions of each run; exits non-zero when a target
# crashed.
#   usage: tests/fuzz/fuzz-runtime.sh [SECONDS] [config|data|checkpoint|tokens|request ...]
set -eu
secs=${1:-60}
shift || true
targets=${*:-config data checkpoint tokens request}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build-fuzz
cd "$root"
mkdir -p "$out/rt"
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cflags="-std=c11 -g -O1 -D_GNU_SOURCE -Wall -Wextra -Werror $san"
cflags="$cflags -Iruntime -Iruntime/include -I/usr/include/x86_64-linux-gnu/openblas-pthread"

echo "== building liblmn for fuzzing (build-fuzz/rt/)"
objs=()
for c in runtime/*.c; do
  o=$out/rt/$(basename "$c" .c).o
  if [ ! -f "$o" ] || [ "$c" -nt "$o" ] || [ -n "$(find runtime -name '*.h' -newer "$o" | head -n 1)" ]; then
    clang $cflags -fsanitize=fuzzer-no-link -c -o "$o" "$c"
  fi
  objs+=("$o")
done

# fuzz_tokens is about data.c's cutting of a corpus into chunks: the BPE merges below it (fuzz_tokenizer's
# subject, fully instrumented there) are built without comparison tracing, which took half its time, and its
# inputs are at most 1 KiB (the chunks are 1 to 256 bytes), so that 10^7 executions take about an hour.
nocmp=$out/rt/tokenizer_bpe.nocmp.o
if [ ! -f "$nocmp" ] || [ runtime/tokenizer_bpe.c -nt "$nocmp" ] || [ -n "$(find runtime -name '*.h' -newer "$nocmp" | head -n 1)" ]; then
  clang $cflags -fsanitize=fuzzer-no-link -fno-sanitize-coverage=trace-cmp -c -o "$nocmp" runtime/tokenizer_bpe.c
fi

status=0
for t in $targets; do
  if [ "$t" = tokens ] && [ ! -r models/SmolLM2-135M-Instruct.Q4_1.gguf ]; then
    echo "fuzz_tokens: models/SmolLM2-135M-Instruct.Q4_1.gguf is absent (make models): skipped"
    continue
  fi
  echo "== building fuzz_$t"
  link=("${objs[@]}") maxlen=4096
  [ "$t" = tokens ] && link=("${objs[@]/$out\/rt\/tokenizer_bpe.o/$nocmp}") maxlen=1024
  clang $cflags -fsanitize=fuzzer -o "$out/fuzz_$t" "tests/fuzz/fuzz_$t.c" "${link[@]}" -lopenblas -lyaml -ljansson -lm -lpthread
  corpus=$root/tests/fuzz/corpus-$t
  mkdir -p "$corpus"
  dict=()
  [ -f "tests/fuzz/corpus/$t.dict" ] && dict=(-dict="tests/fuzz/corpus/$t.dict")
  bash tests/fuzz/run-target.sh "$t" "$secs" -max_len=$maxlen "${dict[@]}" "$corpus" "tests/fuzz/corpus/$t" || status=1
done
exit $status
