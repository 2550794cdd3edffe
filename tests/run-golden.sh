#!/usr/bin/env bash
# run-golden.sh: golden diagnostics for lmnc. Usage: tests/run-golden.sh LMNC [--update]
#
# tests/bad/NN-name.lmn   one mistake each; `LMNC check` must print exactly NN-name.err on stderr, nothing on
#                         stdout, and exit 1 (or the status in NN-name.status)
# tests/warn/NN-name.lmn  valid networks that warn: exit 0, stderr exactly NN-name.err
# Every bad file is also fed through stdin, and every file of tests/bad, tests/warn and dsl-examples goes
# through `info`, `ir --json` and `dot`: each must exit 0 or 1 (2 only where a .status file says so), write
# nothing on stdout when it fails, and never crash, hang or trip a sanitizer.
# Generated large inputs (100,000 vertices, 100,000 chain links, a 120 KB line, 50,000 errors, past the limits on
# vertices and inputs) must give the expected output; --times prints how long each took.
# --update rewrites the .err files from the current output (review the diff before committing it).
# Prints one line per failure and ends with `golden: N passed, M failed`; exits 1 on any failure.
set -u

if [ $# -lt 1 ]; then
  echo "usage: $0 LMNC [--update | --times]" >&2
  exit 2
fi
lmnc=$1
update=${2:-}
case $lmnc in /*) ;; *) lmnc=$PWD/$lmnc ;; esac
cd "$(dirname "$0")/.." || exit 2
if [ ! -x "$lmnc" ]; then
  echo "golden: $lmnc is not an executable" >&2
  exit 2
fi

# A sanitizer report must not pass for an ordinary input error (ASan exits 1 by default).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=99"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=99:print_stacktrace=1"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/golden.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

fail() {
  echo "FAIL $1"
  failed=$((failed + 1))
}

# run DESC CMD...: runs CMD under a 10 s timeout with stdout and stderr in $tmp; sets $status.
run() {
  timeout 10 "$@" >"$tmp/out" 2>"$tmp/err"
  status=$?
}

# The status a bad file must exit with.
want_status() {
  local st=${1%.lmn}.status
  if [ -f "$st" ]; then tr -d ' \n' <"$st"; else echo 1; fi
}

# Checks the common invariants of a run: no hang, no signal, no sanitizer report. Returns 1 after a failure.
sane() {
  local what=$1
  if [ "$status" -eq 124 ]; then
    fail "$what: timed out after 10 s"
    return 1
  fi
  if [ "$status" -gt 128 ] || [ "$status" -eq 99 ] || grep -qE 'Sanitizer|runtime error:' "$tmp/err"; then
    fail "$what: crashed (status $status)"
    sed 's/^/    /' "$tmp/err" | head -20
    return 1
  fi
  return 0
}

# golden FILE STATUS: `check FILE` exits STATUS with stderr equal to FILE's .err.
golden() {
  local file=$1 want=$2 err=${1%.lmn}.err
  run "$lmnc" check "$file"
  sane "check $file" || return
  if [ "$update" = --update ]; then
    cmp -s "$tmp/err" "$err" 2>/dev/null || echo "updated $err"
    cp "$tmp/err" "$err"
  fi
  if [ ! -f "$err" ]; then
    fail "check $file: no $err"
  elif ! cmp -s "$tmp/err" "$err"; then
    fail "check $file: stderr differs from $err"
    diff -u "$err" "$tmp/err" | sed 's/^/    /'
  elif [ "$status" -ne "$want" ]; then
    fail "check $file: exit status $status, expected $want"
  elif [ "$want" -ne 0 ] && [ -s "$tmp/out" ]; then
    fail "check $file: wrote to stdout on failure"
  else
    passed=$((passed + 1))
  fi
}

# piped FILE STATUS: the file fed on stdin gets the same exit status.
piped() {
  local file=$1 want=$2
  timeout 10 "$lmnc" check /dev/stdin <"$file" >"$tmp/out" 2>"$tmp/err"
  status=$?
  sane "check < $file" || return
  if [ "$status" -ne "$want" ]; then
    fail "check < $file: exit status $status, expected $want"
  elif [ -s "$tmp/out" ]; then
    fail "check < $file: wrote to stdout on failure"
  else
    passed=$((passed + 1))
  fi
}

# robust FILE ALLOWED: info, ir --json and dot exit with a status in ALLOWED and write nothing on failure.
robust() {
  local file=$1 allowed=$2
  local cmd
  for cmd in info "ir --json" dot; do
    # shellcheck disable=SC2086
    run "$lmnc" $cmd "$file"
    sane "$cmd $file" || continue
    if ! [[ " $allowed " == *" $status "* ]]; then
      fail "$cmd $file: exit status $status, expected one of: $allowed"
    elif [ "$status" -ne 0 ] && [ -s "$tmp/out" ]; then
      fail "$cmd $file: wrote to stdout on failure"
    else
      passed=$((passed + 1))
    fi
  done
}

shopt -s nullglob
bad=(tests/bad/*.lmn)
if [ ${#bad[@]} -eq 0 ]; then
  fail "no tests in tests/bad"
fi
for f in "${bad[@]}"; do
  want=$(want_status "$f")
  golden "$f" "$want"
  piped "$f" "$want"
  robust "$f" "0 1$([ "$want" = 2 ] && echo " 2")"
done
for f in tests/bad/*.err tests/warn/*.err; do
  [ -f "${f%.err}.lmn" ] || fail "$f: no ${f%.err}.lmn beside it"
done
for f in tests/warn/*.lmn; do
  golden "$f" 0
  robust "$f" "0"
done
for f in dsl-examples/*.lmn; do
  run "$lmnc" check "$f"
  if sane "check $f"; then
    if [ "$status" -ne 0 ]; then
      fail "check $f: exit status $status, expected 0"
      sed 's/^/    /' "$tmp/err" | head -20
    else
      passed=$((passed + 1))
    fi
  fi
  robust "$f" "0 1"
done

# ---- large inputs ---------------------------------------------------------------------------------------
# Generated sources that a quadratic pass or unbuffered diagnostics would make take minutes: each must give the
# expected output. Time is not asserted (no timed tests); `timeout 60` only catches a hang. The times are
# reported by `tests/run-golden.sh LMNC --times`.
header='network big
model m = llama { dim 8 layers 1 heads 2 kv_heads 1 ffn 16 vocab 256 ctx 64 }'
tail_lines='loss lm = cross_entropy(logits, next(tokens))'

# large NAME STATUS WANT: `check $tmp/NAME.lmn` exits STATUS and its stdout+stderr contain WANT.
large() {
  local name=$1 want_status=$2 want=$3 start=$EPOCHREALTIME
  timeout 60 "$lmnc" check "$tmp/$name.lmn" >"$tmp/out" 2>"$tmp/err"
  status=$?
  [ "$update" = --times ] && awk -v a="$start" -v b="$EPOCHREALTIME" -v n="$name" 'BEGIN { printf "time %s: %.2f s\n", n, b - a }' </dev/null
  sane "check $name" || return 1
  if [ "$status" -ne "$want_status" ]; then
    fail "check $name: exit status $status, expected $want_status"
    head -c 2000 "$tmp/err" | sed 's/^/    /'
  elif ! grep -qF -- "$want" "$tmp/out" "$tmp/err"; then
    fail "check $name: no '$want' in the output"
    head -c 2000 "$tmp/err" | sed 's/^/    /'
  else
    passed=$((passed + 1))
    return 0
  fi
  return 1
}

# 100,000 vertices, one statement each, joined in a chain of 100,000 statements.
{
  echo "$header"
  awk 'BEGIN { for (i = 0; i < 100000; i++) print "vertex v" i " = m" }'
  echo "tokens -> embed(m) -> v0"
  awk 'BEGIN { for (i = 0; i < 99999; i++) print "v" i " -> v" i + 1 }'
  echo "v99999 -> head(m) -> logits"
  echo "$tail_lines"
} >"$tmp/vertices.lmn"
large vertices 0 "vertices.lmn: ok: network 'big', 100000 vertices, 100001 edges, 1 loss"

# 100,000 links of one chain statement: a0 -> e -> a1 -> e -> a2 ... (two lines of 1.5 MB)
{
  echo "$header"
  echo "edge e = linear"
  awk 'BEGIN { printf "vertex a0"; for (i = 1; i <= 100000; i++) printf ", a%d", i; print " = m" }'
  awk 'BEGIN { printf "tokens -> embed(m) -> a0"; for (i = 1; i <= 100000; i++) printf " -> e -> a%d", i; print "" }'
  echo "a100000 -> head(m) -> logits"
  echo "$tail_lines"
} >"$tmp/links.lmn"
large links 0 "links.lmn: ok: network 'big', 100001 vertices, 100002 edges, 1 loss"

# An error at the end of a 120 KB line: the excerpt is a window of at most 200 columns around the caret.
{
  echo "$header"
  awk 'BEGIN { printf "vertex x0"; for (i = 1; i < 16385; i++) printf ", x%d", i; print " = nosuch" }'
} >"$tmp/longline.lmn"
if large longline 1 "longline.lmn:3:119979: error: unknown model 'nosuch'"; then
  if [ "$(awk '{ if (length($0) > n) n = length($0) } END { print n + 0 }' "$tmp/err")" -gt 210 ] ||
    ! grep -q '^    3 | \.\.\..* = nosuch$' "$tmp/err"; then
    fail "check longline: the excerpt is not a window around the caret"
    cut -c1-300 "$tmp/err" | sed 's/^/    /'
  fi
fi

# 50,000 errors: lmnc reports 100 and stops.
{
  echo "$header"
  awk 'BEGIN { for (i = 0; i < 50000; i++) print "vertex x = nosuch" }'
} >"$tmp/errors.lmn"
if large errors 1 "errors.lmn: fatal error: too many errors emitted, stopping now"; then
  n=$(grep -c ': error: ' "$tmp/err")
  [ "$n" -eq 100 ] || fail "check errors: $n errors reported, expected 100"
fi

# Past the limit on vertices (262,144) and on the inputs of one vertex (4096).
{
  echo "$header"
  awk 'BEGIN { for (i = 0; i <= 262144; i++) print "vertex v" i " = m" }'
} >"$tmp/too-many-vertices.lmn"
large too-many-vertices 1 "error: too many vertices: 'v262144' is vertex 262145; the limit is 262144 (2^18)"
{
  echo "$header"
  awk 'BEGIN { for (i = 0; i <= 4096; i++) print "vertex s" i " = m"; for (i = 0; i <= 4096; i++) print "s" i " -> z" }' |
    sed '1i vertex z = m'
} >"$tmp/too-many-inputs.lmn"
large too-many-inputs 1 "error: too many inputs: edge 's4096 -> z' is input 4097 of vertex 'z'; the limit is 4096"

echo "golden: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
