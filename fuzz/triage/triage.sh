#!/usr/bin/env bash
# Triage crash files: reproduce each (cpvm repro), minimize it with the
# engine's own tool, and keep one file per bug, named for what it was:
# OUT/<target>/<kind>-<function>-<hash8> (the name `cpvm repro --brief` gives;
# the hash covers the top stack frames or the invariant message, so two inputs
# with the same name are the same bug). The files are ready to commit under
# corpus/regressions/, where CTest replays them.
#
#   fuzz/triage/triage.sh [options] CRASH_FILE_OR_DIR...
#     --build DIR     build with cpvm, replay_<t> and fuzz_<t> (default ${CPVM_BUILD_PREFIX}fuzz,
#                     built with the fuzz preset when missing)
#     --afl-build DIR AFL++ build for afl-tmin (default ${CPVM_BUILD_PREFIX}afl-asan)
#     --minimize E    libfuzzer (fuzz_<t> -minimize_crash=1), afl (afl-tmin) or none;
#                     default: libfuzzer when fuzz_<t> exists, else afl, else none
#     --target T      skip target detection
#     --out DIR       where the files go (default corpus/regressions)
#     --known DIR     already committed regressions (default corpus/regressions)
#     --runs N        libFuzzer minimization runs (default 20000)
#     --timeout S     per-run timeout in seconds (default 10)
#
# Prints one line per input and a summary; exit 0 when every input was handled
# (whether or not it reproduced), 2 on usage or build errors.
set -euo pipefail
source "$(dirname "$0")/../common.sh"

build=${CPVM_BUILD_PREFIX}fuzz
afl_build=${CPVM_BUILD_PREFIX}afl-asan
minimize=auto target="" runs=20000 timeout=10
out=$CPVM_ROOT/corpus/regressions
known=$CPVM_ROOT/corpus/regressions
inputs=()
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --afl-build) afl_build=$2; shift 2 ;;
    --minimize) minimize=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --known) known=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (--help)" ;;
    *) inputs+=("$1"); shift ;;
  esac
done
((${#inputs[@]})) || die "no crash files given (--help)"
[[ $minimize =~ ^(auto|libfuzzer|afl|none)$ ]] || die "--minimize: libfuzzer, afl, none or auto"
[[ -z $target ]] || is_target "$target" || die "unknown target $target (known: $(fuzz_targets | xargs))"
[[ $runs =~ ^[0-9]+$ && $timeout =~ ^[1-9][0-9]*$ ]] || die "--runs and --timeout take numbers"

if [[ ! -x $build/cpvm ]]; then
  say "triage: building the fuzz preset in $build"
  build_preset fuzz "$build"
fi
build=$(cd "$build" && pwd)
cpvm=$build/cpvm
sanitizer_env
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

# Crash files only: dotfiles and AFL's README.txt are not inputs.
mapfile -t files < <(for p in "${inputs[@]}"; do
  [[ -e $p ]] || { say "triage: $p: no such file or directory"; continue; }
  find "$p" -type f ! -name 'README*' ! -name '.*' ! -path '*/.*/*' | sort
done)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n_new=0 n_dup=0 n_known=0 n_gone=0 n_err=0
declare -A seen_size

for f in "${files[@]}"; do
  sig_args=(--brief --build "$build" --timeout "$timeout")
  [[ -n $target ]] && sig_args+=(--target "$target")
  rc=0
  line=$("$cpvm" repro "${sig_args[@]}" "$f" 2>"$tmp/err") || rc=$?
  if ((rc == 1)); then
    printf 'no crash   %s\n' "$f"
    n_gone=$((n_gone + 1))
    continue
  elif ((rc != 0)); then
    printf 'error      %s: %s\n' "$f" "$(head -c 300 "$tmp/err")"
    n_err=$((n_err + 1))
    continue
  fi
  read -r t name verdict <<<"$line"
  dest=$out/$t/$name

  # Known and duplicate bugs first: minimizing them would be wasted time.
  if [[ -z ${seen_size[$dest]+set} ]] && [[ -e $known/$t/$name || -e $dest ]]; then
    printf 'known      %-60s %s\n' "$t/$name" "$verdict"
    n_known=$((n_known + 1))
    continue
  fi
  if [[ -n ${seen_size[$dest]+set} ]]; then
    # Within this run: keep the smaller input.
    size=$(stat -c %s "$f")
    if ((size < seen_size[$dest])); then cp "$f" "$dest"; seen_size[$dest]=$size; fi
    printf 'duplicate  %-60s (%s)\n' "$t/$name" "$f"
    n_dup=$((n_dup + 1))
    continue
  fi

  # A new bug: minimize it with the engine, and keep the result only if it is
  # still the same bug.
  how=$minimize
  if [[ $how == auto ]]; then
    if [[ -x $build/fuzz/fuzz_$t ]]; then how=libfuzzer
    elif [[ -x $afl_build/fuzz/afl_$t ]] && command -v afl-tmin >/dev/null; then how=afl
    else how=none; fi
  fi
  best=$f
  min=$tmp/min
  rm -f "$min"
  # Timeouts do not minimize: every try would take the whole timeout.
  if [[ $name != timeout-* ]]; then
    case $how in
      libfuzzer)
        [[ -x $build/fuzz/fuzz_$t ]] && "$build/fuzz/fuzz_$t" -minimize_crash=1 -runs="$runs" -timeout="$timeout" \
          -exact_artifact_path="$min" "$f" >"$tmp/min.log" 2>&1 || true ;;
      afl)
        # afl-tmin sets its own sanitizer options and rejects others.
        [[ -x $afl_build/fuzz/afl_$t ]] && env -u ASAN_OPTIONS -u UBSAN_OPTIONS AFL_QUIET=1 \
          afl-tmin -m none -t $((timeout * 1000)) -i "$f" -o "$min" -- "$afl_build/fuzz/afl_$t" >"$tmp/min.log" 2>&1 ||
          true ;;
    esac
  fi
  if [[ -s $min ]] && (($(stat -c %s "$min") < $(stat -c %s "$f"))); then
    rc=0
    mline=$("$cpvm" repro --brief --build "$build" --target "$t" --timeout "$timeout" "$min" 2>/dev/null) || rc=$?
    read -r _ mname _ <<<"$mline"
    if ((rc == 0)) && [[ $mname == "$name" ]]; then
      best=$min
    else
      say "triage: the minimized $f is a different crash (${mname:-none}); keeping the original"
    fi
  fi
  size=$(stat -c %s "$best")
  mkdir -p "$out/$t"
  cp "$best" "$dest"
  seen_size[$dest]=$size
  printf 'new        %-60s %s (%s -> %s bytes, minimized with %s)\n' "$t/$name" "$verdict" \
    "$(stat -c %s "$f")" "$size" "$how"
  n_new=$((n_new + 1))
done

printf 'triage: %d input(s): %d new bug(s), %d duplicate(s), %d known, %d did not reproduce, %d error(s); files in %s\n' \
  "${#files[@]}" "$n_new" "$n_dup" "$n_known" "$n_gone" "$n_err" "$out"
