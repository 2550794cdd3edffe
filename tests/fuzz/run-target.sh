#!/usr/bin/env bash
# run-target.sh: runs one libFuzzer target already built into build-fuzz/ (by fuzz.mk or a fuzz-*.sh script)
# for SECONDS seconds, or for FUZZ_RUNS executions when that is set in the environment (the long runs that
# tests/fuzz/README.md records); the log goes to build-fuzz/fuzz_NAME.log and a crash, leak, timeout (10 s, or $FUZZ_TIMEOUT)
# or memory blow-up (2 GiB) to tests/fuzz/crash-NAME-*. Prints the executions and peak RSS; exits 1 when
# the target failed.
#   usage: tests/fuzz/run-target.sh NAME SECONDS [libFuzzer options] CORPUS_DIR [SEED_DIR ...]
set -eu
name=$1 secs=$2
shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
limit=(-max_total_time="$secs")
what="${secs}s"
if [ -n "${FUZZ_RUNS:-}" ]; then
  limit=(-runs="$FUZZ_RUNS")
  what="$FUZZ_RUNS executions"
fi
log=build-fuzz/fuzz_$name.log
echo "== running fuzz_$name for $what"
status=0
if ! "build-fuzz/fuzz_$name" "${limit[@]}" -timeout=${FUZZ_TIMEOUT:-10} -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$root/tests/fuzz/crash-$name-" "$@" >"$log" 2>&1; then
  status=1
  echo "fuzz_$name: CRASH (see $log and tests/fuzz/crash-$name-*)"
  tail -n 40 "$log"
fi
grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$log" | sed "s/^/fuzz_$name: /" || true
exit $status
