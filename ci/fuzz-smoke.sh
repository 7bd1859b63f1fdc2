#!/usr/bin/env bash
# CI fuzz smoke test: builds the fuzz preset (libFuzzer + ASan + UBSan) and runs
# every target for a bounded time from the shipped corpus, regressions and
# dictionary. Fails on any crash, leak, timeout or out-of-memory, and then
# shows `cpvm repro` of what it found (the input is kept for CI artifacts).
#
#   ci/fuzz-smoke.sh [SECONDS]      per target, default 60 (or $CPVM_SMOKE_SECONDS)
#
# Targets run side by side, as many at a time as there are CPUs, so the wall
# time is about SECONDS x ceil(targets / CPUs), plus the build.
set -euo pipefail
cd "$(dirname "$0")/.."
source fuzz/common.sh

secs=${1:-${CPVM_SMOKE_SECONDS:-60}}
[[ $secs =~ ^[1-9][0-9]*$ ]] || die "usage: ci/fuzz-smoke.sh [SECONDS]"
bash ci/deps.sh
build=${CPVM_BUILD_PREFIX}fuzz
t0=$SECONDS
echo "=== fuzz smoke: building the fuzz preset in $build"
build_preset fuzz "$build"
echo "=== built in $((SECONDS - t0)) s"
sanitizer_env

keep=${CPVM_BUILD_PREFIX}fuzz-smoke
rm -rf "$keep"
mkdir -p "$keep"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mapfile -t targets < <(fuzz_targets)
slots=$(nproc)
declare -A pid_of
run_one() { # target: libFuzzer in its plain (non-fork) mode stops at the first failure
  local t=$1
  local -a args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
                 -artifact_prefix="$keep/$t-")
  [[ -f corpus/$t.dict ]] && args+=(-dict="corpus/$t.dict")
  mkdir -p "$work/$t"
  args+=("$work/$t") # new inputs land here, not in the shipped corpus
  local d
  for d in "corpus/$t" "corpus/regressions/$t"; do [[ -d $d ]] && args+=("$d"); done
  "$build/fuzz/fuzz_$t" "${args[@]}" >"$keep/$t.log" 2>&1
}

failed=()
i=0
while ((i < ${#targets[@]})); do
  batch=("${targets[@]:i:slots}")
  echo "=== fuzzing ${batch[*]} for $secs s each"
  for t in "${batch[@]}"; do
    run_one "$t" &
    pid_of[$t]=$!
  done
  for t in "${batch[@]}"; do
    if wait "${pid_of[$t]}"; then
      stats=$(grep -a -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb):' "$keep/$t.log" |
        sed 's/^stat:://' | xargs)
      cov=$(grep -a -E '^#[0-9]+.*cov: ' "$keep/$t.log" | tail -n 1 | grep -o -E 'cov: [0-9]+ ft: [0-9]+ corp: [0-9/A-Za-z]+' || true)
      echo "ok      $t: $stats; $cov"
    else
      echo "FAILED  $t (log: $keep/$t.log)"
      failed+=("$t")
    fi
  done
  i=$((i + slots))
done

if ((${#failed[@]})); then
  for t in "${failed[@]}"; do
    echo "=== $t: its report"
    # From just before the first ERROR to the SUMMARY, without ASan's shadow map.
    grep -a -v -E '^#[0-9]+|^  0x[0-9a-f]+:|^=>0x' "$keep/$t.log" |
      awk '/ERROR: / && !s { s = 1; for (i = NR - 3; i < NR; i++) if (i in l) print l[i] } { l[NR] = $0 }
           s && n++ < 60 { print } /^SUMMARY: / && s { exit }'
    grep -a -q 'ERROR: ' "$keep/$t.log" || tail -n 30 "$keep/$t.log"
    for a in "$keep/$t"-*; do
      [[ -f $a ]] || continue
      echo "=== cpvm repro $a"
      "$build/cpvm" repro --build "$build" --target "$t" "$a" || true
    done
  done
  echo "=== fuzz smoke FAILED: ${failed[*]} ($((SECONDS - t0)) s)"
  exit 1
fi
echo "=== fuzz smoke passed: ${targets[*]}, $secs s each ($((SECONDS - t0)) s in all)"
