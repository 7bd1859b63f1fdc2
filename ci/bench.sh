#!/usr/bin/env bash
# Interpreter throughput on the benchmark programs in ci/bench/ (a baseline, not a test).
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
  printf '%-10s ' "$name"
  "$build/cpvm" bench "$tmp/$name.polkavm" --gas 100000000000 --iterations 3 |
    awk '/^instructions:/ {n=$2} /^best time:/ {t=$3} /^instructions\/s:/ {r=$2}
         END {printf "%12d instructions  %.3f s  %.1f M instructions/s\n", n, t, r/1e6}'
done
