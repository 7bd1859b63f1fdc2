#!/usr/bin/env bash
# How fast the fuzz targets run (a benchmark, not a test), per target:
#   - replay: inputs/s replaying the shipped corpus/<target> on one core
#     (release build, taskset -c 0): the best of 3 wall-clock times, and the
#     CPU time (perf stat task-clock, sandbox workers included) of that run;
#   - syscalls/input: strace -c -f over one replay (the driver's file reading
#     and the sandbox workers included), with the three most frequent calls;
#   - libFuzzer: execs/s of one single-job libFuzzer + ASan + UBSan run of
#     CPVM_BENCH_FUZZ_SECONDS (default 60; 0 skips) from a copy of the corpus.
# Timing on a shared machine is noisy: compare runs made back to back.
#
#   ci/bench-fuzz.sh [TARGET...]      default: every target with a corpus
set -euo pipefail
cd "$(dirname "$0")/.."
source fuzz/common.sh

secs=${CPVM_BENCH_FUZZ_SECONDS:-60}
release=build/release
if [[ ! -x $release/fuzz/replay_blob_parse ]]; then
  cmake --preset release >/dev/null && cmake --build --preset release >/dev/null
fi
if (($#)); then targets=("$@"); else mapfile -t targets < <(fuzz_targets); fi
for t in "${targets[@]}"; do is_target "$t" || die "unknown target $t"; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "replay of corpus/<target> on one core (release), best of 3; syscalls per input (strace -c -f)"
printf '%-24s %7s %10s %10s %12s %9s  %s\n' target inputs "wall s" "inputs/s" "per cpu s" syscalls "most frequent, per input"
for t in "${targets[@]}"; do
  [[ -d corpus/$t ]] || continue
  n=$(find "corpus/$t" -type f ! -name 'README*' ! -name '.*' | wc -l)
  ((n)) || continue
  best= cpu=
  for _ in 1 2 3; do
    t0=$EPOCHREALTIME
    perf stat -x, -e task-clock -o "$tmp/cpu" taskset -c 0 "$release/fuzz/replay_$t" -q "corpus/$t" >/dev/null 2>&1
    wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
    if [[ -z $best ]] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then
      best=$wall
      cpu=$(awk -F, '$3 == "task-clock" { print $1 / 1000 }' "$tmp/cpu")
    fi
  done
  strace -c -f -o "$tmp/strace" taskset -c 0 "$release/fuzz/replay_$t" -q "corpus/$t" >/dev/null 2>&1
  # columns: % time, seconds, usecs/call, calls, [errors,] syscall
  calls=$(awk '$NF == "total" { print $4 }' "$tmp/strace")
  top=$(awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $4, $NF }' "$tmp/strace" | sort -rn | head -n 3 |
    awk -v n="$n" '{ printf "%s%s %.1f", (NR > 1 ? ", " : ""), $2, $1 / n }')
  awk -v t="$t" -v n="$n" -v w="$best" -v c="$cpu" -v k="${calls:-0}" -v top="$top" 'BEGIN {
    printf "%-24s %7d %10.3f %10.0f %12.0f %9.1f  %s\n", t, n, w, (w > 0 ? n / w : 0), (c > 0 ? n / c : 0), k / n, top }'
done

if [[ $secs != 0 ]]; then
  echo
  echo "libFuzzer + ASan + UBSan, one job, $secs s, from a copy of corpus/<target>"
  build=${CPVM_BUILD_PREFIX}fuzz
  build_preset fuzz "$build"
  sanitizer_env
  printf '%-24s %12s %10s %8s\n' target executions "execs/s" "cov"
  for t in "${targets[@]}"; do
    mkdir -p "$tmp/$t"
    [[ -d corpus/$t ]] && cp -r "corpus/$t/." "$tmp/$t/"
    args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$tmp/$t-")
    [[ -f corpus/$t.dict ]] && args+=(-dict="corpus/$t.dict")
    "$build/fuzz/fuzz_$t" "${args[@]}" "$tmp/$t" >"$tmp/$t.log" 2>&1 || echo "($t: the run stopped early, see a rerun's log)"
    awk -v t="$t" '/^stat::number_of_executed_units:/ { n = $2 } /^stat::average_exec_per_sec:/ { r = $2 }
      /cov: / { for (i = 1; i < NF; i++) if ($i == "cov:") c = $(i + 1) }
      END { printf "%-24s %12d %10d %8s\n", t, n, r, c }' "$tmp/$t.log"
  done
fi
