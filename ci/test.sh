#!/usr/bin/env bash
# The test command: installs dependencies, builds the release (gcc) and the
# sanitizer (clang, ASan + UBSan) configurations, and runs every test in both.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/deps.sh
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
echo "=== all tests passed (release + asan)"
