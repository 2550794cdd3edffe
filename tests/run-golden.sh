#!/usr/bin/env bash
# run-golden.sh: golden diagnostics for lmnc. Usage: tests/run-golden.sh LMNC [--update]
#
# tests/bad/NN-name.lmn   one mistake each; `LMNC check` must print exactly NN-name.err on stderr, nothing on
#                         stdout, and exit 1 (or the status in NN-name.status)
# tests/warn/NN-name.lmn  valid networks that warn: exit 0, stderr exactly NN-name.err
# Every bad file is also fed through stdin, and every file of tests/bad, tests/warn and dsl-examples goes
# through `info`, `ir --json` and `dot`: each must exit 0 or 1 (2 only where a .status file says so), write
# nothing on stdout when it fails, and never crash, hang or trip a sanitizer.
# --update rewrites the .err files from the current output (review the diff before committing it).
# Prints one line per failure and ends with `golden: N passed, M failed`; exits 1 on any failure.
set -u

if [ $# -lt 1 ]; then
  echo "usage: $0 LMNC [--update]" >&2
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

echo "golden: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
