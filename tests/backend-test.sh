#!/usr/bin/env bash
# backend-test.sh LMNC: checks of the compiler's back end from outside.
# 1. `lmnc info` and the compiled `NAME info` print the same memory line (parameters, gradients and AdamW
#    moments, activations in bytes) for every dsl-examples/*.lmn at two (B, T, threads) shapes: both evaluate
#    the one layout of runtime/arena.c on the data lmnc planned.
# 2. Compiling the same network twice gives identical bytes; the usage example in NAME.h compiles and runs.
# 3. `lmnc COMMAND --help` for every command; a misspelt command gets a did-you-mean.
# 4. tests/wide/wide.lmn ([1, 256, 1] vertices) compiles, builds under AddressSanitizer + UBSan and trains
#    one step.
# Prints `backend: N passed, M failed`; exit 1 on a failure.
set -uo pipefail
lmnc=${1:-bin/lmnc}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmn-backend.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "  ok    $1"; }
bad() { failed=$((failed + 1)); echo "  FAIL  $1"; [ -n "${2:-}" ] && [ -s "$2" ] && sed 's/^/        | /' "$2" | tail -n 20; }
CFLAGS="-std=c11 -O0 -Wall -Wextra -Werror -Wno-format-truncation"
BLAS_INC=/usr/include/x86_64-linux-gnu/openblas-pthread

for f in "$root"/dsl-examples/*.lmn; do
  n=$(basename "$f" .lmn)
  if ! "$lmnc" compile "$f" -o "$tmp/$n" > "$tmp/log" 2>&1 ||
    ! make -s -C "$tmp/$n" LMNET="$root" CFLAGS="$CFLAGS" > "$tmp/log" 2>&1; then
    bad "$n compiles and builds" "$tmp/log"
    continue
  fi
  for shape in "1 64 1" "4 128 2"; do
    read -r B T N <<< "$shape"
    a=$("$lmnc" info "$f" --batch "$B" --seq "$T" --threads "$N" 2> /dev/null | grep '^memory')
    b=$("$tmp/$n/$n" info --batch "$B" --seq "$T" --threads "$N" 2> /dev/null | grep '^memory')
    if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "$n at $B x $T on $N threads: $a"; else
      echo "lmnc: $a" > "$tmp/diff"; echo "$n:   $b" >> "$tmp/diff"; bad "$n info at $B x $T" "$tmp/diff"; fi
  done
  # the usage example in NAME.h, as it stands
  sed -n '/^ \* BEGIN EXAMPLE$/,/^ \* END EXAMPLE$/p' "$tmp/$n/$n.h" | sed -e '1d' -e '$d' -e 's/^ \*   //' > "$tmp/$n/example.c"
  if [ -s "$tmp/$n/example.c" ] && cc $CFLAGS -I"$tmp/$n" -I"$root/runtime/include" -I"$BLAS_INC" -o "$tmp/$n/example" \
    "$tmp/$n/example.c" "$tmp/$n/$n.c" "$root/lib/liblmn.a" -lopenblas -lyaml -ljansson -lm -lpthread > "$tmp/log" 2>&1; then
    if "$tmp/$n/example" > "$tmp/log" 2>&1 && grep -q '^loss [0-9]' "$tmp/log"; then ok "$n.h: its example builds and runs: $(cat "$tmp/log")"
    elif grep -q -e 'cannot open' -e 'no such file' "$tmp/log"; then ok "$n.h: its example builds (not run: $(head -c 120 "$tmp/log"))"
    else bad "$n.h: its example runs" "$tmp/log"; fi
  else
    bad "$n.h: its example builds" "$tmp/log"
  fi
  "$lmnc" compile "$f" -o "$tmp/$n-again" > /dev/null 2>&1
  if cmp -s "$tmp/$n/$n.c" "$tmp/$n-again/$n.c" && cmp -s "$tmp/$n/$n.h" "$tmp/$n-again/$n.h"; then ok "$n: the same bytes twice"
  else bad "$n: compiling twice differs"; fi
done

# The command line: each command's own help, a did-you-mean for a misspelt one.
for c in check info ir dot compile; do
  if "$lmnc" "$c" --help > "$tmp/log" 2>&1 && grep -q "^usage: lmnc $c" "$tmp/log"; then ok "lmnc $c --help"
  else bad "lmnc $c --help" "$tmp/log"; fi
done
"$lmnc" chek x.lmn > "$tmp/log" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q "unknown command 'chek'; did you mean 'check'?" "$tmp/log"; then ok "lmnc chek: exit 2, did you mean 'check'"
else bad "lmnc chek: exit 2, did you mean 'check' (exit $rc)" "$tmp/log"; fi

# The widest layer, under the sanitizers.
w=$tmp/wide
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
for i in $(seq 1 60); do echo "line $i of a small corpus for the widest network, $((i * 31 % 97))."; done > "$tmp/corpus.txt"
printf 'data: {train: %s, val_fraction: 0.1}\nbatch: 2\nseq_len: 16\nsteps: 1\neval: {every: 0, batches: 1}\nthreads: 2\nlog: {every: 1}\n' \
  "$tmp/corpus.txt" > "$tmp/wide.yaml"
if "$lmnc" compile "$root/tests/wide/wide.lmn" -o "$w" > "$tmp/log" 2>&1 &&
  make -s -C "$w" LMNET="$root" CFLAGS="$CFLAGS $SAN" LIBS="$root/${SANLIB:-build-san/lib}/liblmn.a -lopenblas -lyaml -ljansson -lm -lpthread $SAN" > "$tmp/log" 2>&1 &&
  "$w/wide" train -c "$tmp/wide.yaml" > "$tmp/log" 2>&1 && grep -q 'step' "$tmp/log"; then
  ok "[1, 256, 1] compiles, builds and trains a step under ASan + UBSan"
else
  bad "[1, 256, 1] compiles, builds and trains a step under ASan + UBSan" "$tmp/log"
fi

echo "backend: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
