#!/usr/bin/env bash
# The test command: installs dependencies, builds the release (gcc) and the
# sanitizer (clang, ASan + UBSan) configurations and runs every test in both;
# builds the gcc -O0 configuration (warnings only);
# builds every fuzz target in every mode (replay, libFuzzer, AFL++ with CMPLOG)
# and runs each libFuzzer target for a bounded time (ci/fuzz-smoke.sh); builds
# every registered target the OSS-Fuzz way for each engine and sanitizer of
# docker/oss-fuzz/project.yaml, replays its seed zip and fuzzes it briefly
# (ci/docker-check.sh oss-fuzz); checks the corpus coverage of vm/ against its floor
# (ci/coverage.sh: lines >= 92%, branches >= 75%).
#   CPVM_SMOKE_SECONDS   seconds of fuzzing per target (default 60; 0 skips the smoke run)
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/deps.sh fuzz
export CPVM_CONFORMANCE_DIR="${CPVM_CONFORMANCE_DIR:-$(cd .. && pwd)/shared/conformance}"
if [[ ! -d $CPVM_CONFORMANCE_DIR ]]; then
  echo "ci/test.sh: conformance vectors not found at $CPVM_CONFORMANCE_DIR (set CPVM_CONFORMANCE_DIR)" >&2
  exit 1
fi

jobs=$(nproc)
for preset in release asan; do
  echo "=== $preset: configure and build"
  cmake --preset "$preset" -DCPVM_CONFORMANCE_DIR="$CPVM_CONFORMANCE_DIR" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== $preset: test"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allow_user_segv_handler=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --preset "$preset" -j "$jobs"
done

echo "=== gcc-debug: build only (gcc at -O0 warns where -O2 does not)"
cmake --preset gcc-debug >/dev/null
cmake --build --preset gcc-debug -j "$jobs"

echo "=== AFL++ targets (persistent mode and CMPLOG)"
cmake --preset afl-cmplog >/dev/null
cmake --build --preset afl-cmplog -j "$jobs"

smoke=${CPVM_SMOKE_SECONDS:-60}
if [[ $smoke != 0 ]]; then
  echo "=== libFuzzer targets: $smoke s each"
  bash ci/fuzz-smoke.sh "$smoke"
fi
if [[ $smoke != 0 ]]; then
  echo "=== external PVMs (cpvm serve, anan-as, typeberry): $smoke s each"
  bash ci/external-smoke.sh "$smoke" build/release
fi
echo "=== OSS-Fuzz build.sh: every target, engine and sanitizer; seeds replayed, fuzzed briefly"
t0=$SECONDS
bash ci/docker-check.sh oss-fuzz
echo "(oss-fuzz check: $((SECONDS - t0)) s)"

echo "=== coverage of vm/ from the shipped corpus"
t0=$SECONDS
bash ci/coverage.sh --min-lines 92 --min-branches 75 all
echo "(coverage: $((SECONDS - t0)) s)"
echo "=== all tests passed (release + asan, fuzz targets built in every mode and smoke-fuzzed)"
