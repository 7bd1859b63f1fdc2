# shellcheck shell=bash
# Shared by fuzz/campaign.sh, fuzz/triage/triage.sh, ci/fuzz-smoke.sh, ci/coverage.sh and
# ci/docker-check.sh.
# Sourced, not run.
#
# Build directories are "${CPVM_BUILD_PREFIX}<kind>" with kinds fuzz, afl-cmplog,
# afl-asan and coverage; the default prefix "build/" gives the presets' own
# directories (build/fuzz, build/afl-cmplog, build/coverage). Set CPVM_BUILD_PREFIX=build/mine- to keep a second
# set apart.

CPVM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CPVM_BUILD_PREFIX=${CPVM_BUILD_PREFIX:-build/}
case $CPVM_BUILD_PREFIX in /*) ;; *) CPVM_BUILD_PREFIX=$CPVM_ROOT/$CPVM_BUILD_PREFIX ;; esac

say() { printf '%s\n' "$*" >&2; }
die() {
  say "$(basename "$0"): $*"
  exit 2
}

# The registry: fuzz/targets.def, one FUZZ_TARGET(name, needs, engines) row each
# (fuzz/CMakeLists.txt reads the same rows).
fuzz_target_rows() { grep -E '^FUZZ_TARGET\(' "$CPVM_ROOT/fuzz/targets.def"; }

# fuzz_target_field TARGET N: field N (1 name, 2 needs, 3 engines) of its row,
# blanks squeezed ("HARNESS | COMPILER").
fuzz_target_field() {
  fuzz_target_rows | sed -E 's/^FUZZ_TARGET\((.*)\).*/\1/; s/ +/ /g; s/ *, */,/g' |
    awk -F, -v t="$1" -v n="$2" '$1 == t { print $n }'
}

# fuzz_targets [ENGINE]: every registered target, or those built for ENGINE
# (libfuzzer, afl: OSS-Fuzz's names).
fuzz_targets() {
  local t
  for t in $(fuzz_target_rows | sed -E 's/^FUZZ_TARGET\( *([a-z0-9_]+).*/\1/'); do
    [[ -z ${1:-} || " $(fuzz_target_field "$t" 3 | tr -d '|') " == *" ${1^^} "* ]] && echo "$t"
  done
}

# fuzz_target_needs TARGET WHAT: true if its row lists WHAT (HARNESS, COMPILER, SANDBOX, EXTERNAL).
fuzz_target_needs() { [[ " $(fuzz_target_field "$1" 2 | tr -d '|') " == *" $2 "* ]]; }

is_target() {
  local t
  for t in $(fuzz_targets); do [[ $t == "$1" ]] && return 0; done
  return 1
}

# build_preset PRESET DIR [-DVAR=VALUE...]: configure DIR from PRESET (plus the
# given cache entries) and build everything in it. Quiet unless it fails.
build_preset() {
  local preset=$1 dir=$2 log
  shift 2
  log=$(mktemp)
  if ! (cd "$CPVM_ROOT" && cmake --preset "$preset" -B "$dir" "$@" && cmake --build "$dir" -j "$(nproc)") >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    die "building preset $preset in $dir failed"
  fi
  rm -f "$log"
}

# build_afl PRESET DIR [-DVAR=VALUE...]: an AFL++ preset (afl, afl-cmplog) built
# in DIR.
build_afl() {
  command -v afl-clang-fast >/dev/null || die "afl-clang-fast not found (bash ci/deps.sh fuzz installs afl++)"
  # AFL_QUIET: afl-cc's banner on every compile would bury real errors.
  AFL_QUIET=1 build_preset "$@"
}

# Symbolized sanitizer stacks, in every child. llvm-19 puts llvm-symbolizer
# outside PATH on Debian.
sanitizer_env() {
  if [[ -z ${ASAN_SYMBOLIZER_PATH:-} ]] && ! command -v llvm-symbolizer >/dev/null; then
    [[ -x /usr/lib/llvm-19/bin/llvm-symbolizer ]] && export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-19/bin/llvm-symbolizer
  fi
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
}

# Seconds as m:ss.
mmss() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }
