#!/usr/bin/env bash
# Throughput on the benchmark programs in ci/bench/ (a baseline, not a test): the
# interpreter, the compiler in its zygote sandbox and the compiler unsandboxed
# (--sandbox none, the fuzzing configuration); then what the sandbox costs
# (`cpvm bench --sandbox-costs`: instance start, host call round trips, memory);
# then the fuzz targets' rates (ci/bench-fuzz.sh; CPVM_BENCH_FUZZ_SECONDS=0
# skips its libFuzzer runs).
# Usage: ci/bench.sh [build-dir]   (default build/release; builds it if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
if [[ ! -x $build/cpvm ]]; then
  cmake --preset release >/dev/null && cmake --build --preset release >/dev/null
  build=build/release
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for src in ci/bench/*.asm; do
  name=$(basename "$src" .asm)
  "$build/cpvm" asm "$src" -o "$tmp/$name.polkavm"
  # The compiler does not count instructions: its rate uses the interpreter's count.
  n=
  for mode in interpreter zygote none; do
    case $mode in
      interpreter) args=(--backend interpreter) ;;
      *) args=(--backend compiler --sandbox "$mode") ;;
    esac
    out=$("$build/cpvm" bench "$tmp/$name.polkavm" --gas 100000000000 --iterations 3 "${args[@]}")
    [[ -z $n ]] && n=$(awk '/^instructions:/ {print $2}' <<<"$out")
    printf '%-10s %-12s ' "$name" "$mode"
    awk -v n="$n" '/^backend:/ {sub(/^backend: */, ""); b=$0} /^best time:/ {t=$3}
         END {printf "%12d instructions  %.3f s  %8.1f M instructions/s  (%s)\n", n, t, n/t/1e6, b}' <<<"$out"
  done
done
echo
"$build/cpvm" bench --sandbox-costs
echo
bash ci/bench-fuzz.sh
