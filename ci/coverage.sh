#!/usr/bin/env bash
# Coverage of the fuzz corpus: builds the replay drivers with clang source-based
# coverage (the coverage preset), replays corpus/<target>/ and
# corpus/regressions/<target>/, and writes an HTML report plus a one-line
# summary of the lines and branches covered in vm/.
#
#   ci/coverage.sh [TARGET | all]     default all (one report over every target)
#
# Report: ${CPVM_BUILD_PREFIX}coverage/report/<TARGET>/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
source fuzz/common.sh

what=${1:-all}
if [[ $what == all ]]; then
  mapfile -t targets < <(fuzz_targets)
else
  is_target "$what" || die "usage: ci/coverage.sh [TARGET|all] (targets: $(fuzz_targets | xargs))"
  targets=("$what")
fi
bash ci/deps.sh
build=${CPVM_BUILD_PREFIX}coverage
build_preset coverage "$build"
for tool in llvm-profdata-19 llvm-cov-19; do command -v "$tool" >/dev/null || die "$tool not found (llvm-19)"; done

prof=$build/profiles/$what
rm -rf "$prof"
mkdir -p "$prof"
objects=()
for t in "${targets[@]}"; do
  bin=$build/fuzz/replay_$t
  objects+=(-object "$bin")
  dirs=()
  for d in "corpus/$t" "corpus/regressions/$t"; do [[ -d $d ]] && dirs+=("$d"); done
  ((${#dirs[@]})) || { say "coverage: no corpus for $t"; continue; }
  # %p: one profile per process. A crashing input (an unfixed regression)
  # loses its process's profile, so then every file runs on its own.
  if ! LLVM_PROFILE_FILE="$prof/$t-%p.profraw" "$bin" -q "${dirs[@]}" >/dev/null 2>"$prof/$t.err"; then
    say "coverage: $t: an input crashes the replay; replaying file by file"
    rm -f "$prof/$t"-*.profraw
    while IFS= read -r f; do
      LLVM_PROFILE_FILE="$prof/$t-%p.profraw" "$bin" -q "$f" >/dev/null 2>&1 || say "coverage: $t: $f crashes"
    done < <(find "${dirs[@]}" -type f ! -name 'README*' ! -name '.*' | sort)
  fi
done
compgen -G "$prof/*.profraw" >/dev/null || die "no profiles written"
llvm-profdata-19 merge -sparse "$prof"/*.profraw -o "$prof.profdata"

# The first -object is the binary itself for llvm-cov.
objects=("${objects[@]:1}")
report=$build/report/$what
rm -rf "$report"
llvm-cov-19 show -format=html -output-dir "$report" -instr-profile "$prof.profdata" -show-branches=count \
  -show-line-counts-or-regions -project-title="cpvm fuzz corpus: $what" "${objects[@]}" \
  "$CPVM_ROOT/vm" "$CPVM_ROOT/fuzz/targets" "$CPVM_ROOT/fuzz/gen"
# The summary counts vm/ only: the VM, not the harness.
llvm-cov-19 export -summary-only -instr-profile "$prof.profdata" "${objects[@]}" "$CPVM_ROOT/vm" >"$prof.json"
python3 - "$prof.json" "$what" "$report/index.html" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["data"][0]["totals"]
l, b, f = t["lines"], t["branches"], t["functions"]
print(f"coverage ({sys.argv[2]}): vm/ lines {l['covered']}/{l['count']} ({l['percent']:.1f}%), "
      f"branches {b['covered']}/{b['count']} ({b['percent']:.1f}%), "
      f"functions {f['covered']}/{f['count']} ({f['percent']:.1f}%); report {sys.argv[3]}")
PY
