#!/usr/bin/env bash
# CTest fuzz_repro_regressions: `cpvm repro` on every file under
# corpus/regressions/ must name the target (from the path), describe the input
# (the target's fuzz_describe(), which must not fail) and give a verdict, and
# the verdict must be "no crash": every regression is fixed.
#
#   repro-regressions.sh CPVM BUILD_DIR REGRESSIONS_DIR
set -uo pipefail
cpvm=$1 build=$2 dir=$3
fail=0 n=0
while IFS= read -r f; do
  t=$(basename "$(dirname "$f")")
  out=$("$cpvm" repro --build "$build" "$f" 2>&1)
  rc=$?
  n=$((n + 1))
  why=""
  grep -q "^target:  $t (from the path)" <<<"$out" || why+=" no target line naming $t;"
  grep -q '^input: ' <<<"$out" || why+=" no description;"
  grep -q 'describing the input failed' <<<"$out" && why+=" the description failed;"
  grep -q '^verdict: no crash' <<<"$out" || why+=" verdict is not 'no crash';"
  ((rc == 1)) || why+=" exit status $rc (1 expected: no crash);"
  if [[ -n $why ]]; then
    printf 'FAIL %s:%s\n%s\n' "$f" "$why" "$out" >&2
    fail=$((fail + 1))
  fi
done < <(find "$dir" -mindepth 2 -type f ! -name 'README*' ! -name '.*' | sort)
echo "cpvm repro: $n regression input(s), $fail failure(s)"
((n > 0 && fail == 0))
