#!/usr/bin/env bash
# Coverage of the fuzz corpus: builds the replay drivers with clang source-based
# coverage (the coverage preset), replays corpus/<target>/ and
# corpus/regressions/<target>/, and writes an HTML report plus a one-line
# summary of the lines and branches covered in vm/.
#
#   ci/coverage.sh [--min-lines PCT] [--min-branches PCT] [TARGET | all]
#     TARGET         default all (one report over every target)
#     --min-lines    fail when vm/ line coverage is below PCT (CI: 92)
#     --min-branches fail when vm/ branch coverage is below PCT (CI: 75)
# A failed floor prints the figures and the least covered files of vm/.
#
# Report: ${CPVM_BUILD_PREFIX}coverage/report/<TARGET>/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
source fuzz/common.sh

usage="usage: ci/coverage.sh [--min-lines PCT] [--min-branches PCT] [TARGET|all]"
min_lines=0 min_branches=0 what=all
while (($#)); do
  case $1 in
    --min-lines) (($# >= 2)) || die "$usage"; min_lines=$2; shift 2 ;;
    --min-branches) (($# >= 2)) || die "$usage"; min_branches=$2; shift 2 ;;
    -*) die "$usage" ;;
    *) what=$1; shift ;;
  esac
done
for v in "$min_lines" "$min_branches"; do [[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$usage (PCT: a number)"; done
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
python3 - "$prof.json" "$what" "$report/index.html" "$min_lines" "$min_branches" <<'PY'
import json, os, sys
path, what, html, min_lines, min_branches = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
data = json.load(open(path))["data"][0]
t = data["totals"]
l, b, f = t["lines"], t["branches"], t["functions"]
print(f"coverage ({what}): vm/ lines {l['covered']}/{l['count']} ({l['percent']:.1f}%), "
      f"branches {b['covered']}/{b['count']} ({b['percent']:.1f}%), "
      f"functions {f['covered']}/{f['count']} ({f['percent']:.1f}%); report {html}", flush=True)
# The floor compares the unrounded figures: 91.96% is below 92.
short = [f"lines {l['percent']:.2f}% < {min_lines:g}%"] if l["percent"] < min_lines else []
short += [f"branches {b['percent']:.2f}% < {min_branches:g}%"] if b["percent"] < min_branches else []
if short:
    print(f"coverage ({what}): below the floor: {', '.join(short)}. Least covered files of vm/ "
          "(uncovered lines, then branches; the HTML report shows which):", file=sys.stderr)
    root = os.path.commonpath([x["filename"] for x in data["files"]]) if data["files"] else ""
    rows = sorted(data["files"], key=lambda x: -(x["summary"]["lines"]["count"] - x["summary"]["lines"]["covered"]))
    for x in rows[:15]:
        sl, sb = x["summary"]["lines"], x["summary"]["branches"]
        if sl["count"] == sl["covered"]: break
        print(f"  {os.path.relpath(x['filename'], root):28} lines {sl['count'] - sl['covered']:4} uncovered "
              f"({sl['covered']}/{sl['count']}, {sl['percent']:.1f}%), branches {sb['count'] - sb['covered']:4} "
              f"uncovered ({sb['percent']:.1f}%)", file=sys.stderr)
    sys.exit(1)
PY
