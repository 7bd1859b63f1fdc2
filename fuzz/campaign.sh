#!/usr/bin/env bash
# A fuzzing campaign in one command: builds what it needs, fuzzes each target
# in turn with N jobs from the shipped corpus and dictionary, shows progress,
# stops after the time limit, triages the crashes into regression files
# (fuzz/triage/triage.sh) and merges the new inputs back into corpus/<target>/.
#
#   fuzz/campaign.sh [options] [TARGET... | all] [-- ENGINE_FLAGS...]
#     --engine E      libfuzzer (default): -fork=N jobs of the ASan+UBSan build;
#                     afl: AFL++, one main (-M, explore) and secondaries (-S): a
#                     CMPLOG one (-c), an ASan+UBSan one, then other power schedules
#     --jobs N        fuzzing processes per target (default 2)
#     --time S        fuzzing seconds in all, split evenly over the targets (default 160)
#     --per-target S  fuzzing seconds per target instead
#     --timeout S     an input running longer is a hang (default 10)
#     --out DIR       campaign directory (default ${CPVM_BUILD_PREFIX}campaigns/<date>-<engine>)
#     --no-merge      leave corpus/<target>/ untouched
#     --no-build      use the existing builds
#     -- FLAGS...     passed to every fuzzer as they are (libFuzzer: e.g.
#                     -use_value_profile=1 -max_len=4096; afl-fuzz: e.g. -L 0)
#
# Results in OUT: summary.json (per target: execs, execs/s, coverage,
# features, corpus size, crashes with dedup key and regression file; from the
# engines' own statistics, fuzz/campaign_summary.py), plots (libFuzzer:
# <t>/progress.png, coverage and execs/s over time with gnuplot; AFL++:
# <t>/plot/ by afl-plot), logs and queues. The merge into corpus/<t>/ is a
# set-cover merge against what is there (libFuzzer -set_cover_merge=1 with the
# shipped corpus first, afl-cmin over both), so the corpus stays minimal.
#
# With no arguments: every target, libFuzzer, 2 jobs, 160 s of fuzzing in all
# (about 5 minutes with the build, the triage and the merge on 2 CPUs).
# Exit 0: done, no new crash; 1: done, new crashes (see OUT/regressions/);
# 2: usage or build error.
set -euo pipefail
source "$(dirname "$0")/common.sh"

engine=libfuzzer jobs=2 total=160 per="" timeout=10 out="" merge=1 build=1
targets=() engine_flags=()
while (($#)); do
  case $1 in
    --engine) engine=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --time) total=$2; shift 2 ;;
    --per-target) per=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-merge) merge=0; shift ;;
    --no-build) build=0; shift ;;
    --) shift; engine_flags=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (--help)" ;;
    all) mapfile -t targets < <(fuzz_targets); shift ;;
    *) is_target "$1" || die "unknown target $1 (known: $(fuzz_targets | xargs))"; targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || mapfile -t targets < <(fuzz_targets)
[[ $engine == libfuzzer || $engine == afl ]] || die "--engine: libfuzzer or afl"
for v in "$jobs" "$total" "$timeout" ${per:+"$per"}; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || die "--jobs, --time, --per-target and --timeout take positive numbers"
done
[[ -n $per ]] || per=$((total / ${#targets[@]}))
((per >= 10)) || die "at least 10 seconds per target, please"
stamp=$(date +%Y%m%d-%H%M%S)
out=${out:-${CPVM_BUILD_PREFIX}campaigns/$stamp-$engine}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$CPVM_ROOT"

# --- tools and builds ---------------------------------------------------------------
t0=$SECONDS
if ((build)); then
  if [[ $engine == afl ]]; then bash ci/deps.sh fuzz; else bash ci/deps.sh; fi
fi
fuzz_build=${CPVM_BUILD_PREFIX}fuzz
afl_build=${CPVM_BUILD_PREFIX}afl-cmplog
afl_asan_build=${CPVM_BUILD_PREFIX}afl-asan
if ((build)); then
  say "campaign: building (${engine}) ..."
  if [[ $engine == libfuzzer ]]; then
    build_preset fuzz "$fuzz_build"
  else
    build_afl afl-cmplog "$afl_build"
    # The sanitizer secondary: the same targets with ASan + UBSan compiled in.
    build_afl afl "$afl_asan_build" -DCPVM_SANITIZE=ON
  fi
  say "campaign: built in $((SECONDS - t0)) s"
fi
sanitizer_env

tty=0
[[ -t 1 ]] && tty=1
pids=()
stop=0
# Ctrl-C ends the fuzzing early; triage and merge still run.
on_interrupt() {
  stop=1
  local p
  for p in "${pids[@]}"; do kill -INT -- "-$p" 2>/dev/null || true; done
}
trap on_interrupt INT TERM

alive() {
  local p
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done
  return 1
}

# k/M/G-suffixed numbers from the AFL++ screen to plain integers, and back.
human() { awk -v n="$1" 'BEGIN { if (n >= 1e9) printf "%.1fG", n/1e9; else if (n >= 1e6) printf "%.1fM", n/1e6; else if (n >= 1e4) printf "%.0fk", n/1e3; else printf "%d", n }'; }

# --- libFuzzer ----------------------------------------------------------------------
lf_status() { # $1 log: the latest "#N: cov: ..." line of -fork mode
  local line re='^#([0-9]+): cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+) exec/s: ([0-9]+) oom/timeout/crash: ([0-9]+)/([0-9]+)/([0-9]+)'
  line=$(grep -a -E '^#[0-9]+: cov: ' "$1" 2>/dev/null | tail -n 1) || true
  [[ $line =~ $re ]] || { echo "starting"; return; }
  local m=("${BASH_REMATCH[@]}")
  printf '%s execs (%s/s)  cov %s  ft %s  corpus %s  crashes %d  timeouts %d  ooms %d' "${m[1]}" "${m[5]}" "${m[2]}" \
    "${m[3]}" "${m[4]}" "${m[8]}" "${m[7]}" "${m[6]}"
}

run_libfuzzer() { # $1 target, $2 work dir
  local t=$1 work=$2 bin=$fuzz_build/fuzz/fuzz_$1
  [[ -x $bin ]] || die "$bin missing (build the fuzz preset, or drop --no-build)"
  mkdir -p "$work/queue" "$work/crashes"
  local -a args=(-fork="$jobs" -max_total_time="$per" -timeout="$timeout" -rss_limit_mb=2048
                 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -print_final_stats=1
                 -artifact_prefix="$work/crashes/")
  [[ -f corpus/$t.dict ]] && args+=(-dict="$CPVM_ROOT/corpus/$t.dict")
  args+=("${engine_flags[@]}")
  # New inputs go to the first directory; the shipped corpus is only read here.
  args+=("$work/queue")
  local d
  for d in "corpus/$t" "corpus/regressions/$t"; do [[ -d $d ]] && args+=("$CPVM_ROOT/$d"); done
  echo "$bin ${args[*]}" >"$work/command"
  setsid "$bin" "${args[@]}" >"$work/fuzzer.log" 2>&1 </dev/null &
  pids=($!)
  watch_progress "$t" lf_status "$work/fuzzer.log"
}

lf_merge() { # $1 target, $2 work dir: inputs that add coverage join corpus/<t>
  local t=$1 work=$2 before after
  mkdir -p "corpus/$t"
  before=$(find "corpus/$t" -type f | wc -l)
  # set_cover_merge: of the inputs with new features, a smallest set covering them
  # (plain -merge=1 adds about half again as many files).
  "$fuzz_build/fuzz/fuzz_$t" -set_cover_merge=1 -timeout="$timeout" -rss_limit_mb=2048 \
    "corpus/$t" "$work/queue" >"$work/merge.log" 2>&1 || say "campaign: merge for $t failed (see $work/merge.log)"
  after=$(find "corpus/$t" -type f | wc -l)
  echo $((after - before))
}

# --- AFL++ --------------------------------------------------------------------------
afl_status() { # $1 work dir: the instances' screens, summed
  local ui execs=0 speed=0 crashes=0 hangs=0 corpus=0 cov="" s
  for ui in "$1"/*.ui; do
    [[ -f $ui ]] || continue
    s=$(tail -c 16000 "$ui" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1b[()][0-9A-B]//g' | tr -d '\016\017\r' | awk '
      function num(x) { m = 1; if (x ~ /k$/) m = 1e3; else if (x ~ /M$/) m = 1e6; else if (x ~ /G$/) m = 1e9; sub(/[kMG]$/, "", x); return x * m }
      /total execs :/ { sub(/.*total execs : /, ""); e = num($1) }
      /exec speed :/ { sub(/.*exec speed : /, ""); sub(/\/sec.*/, ""); sp = num($1) }
      /saved crashes :/ { sub(/.*saved crashes : /, ""); c = $1 }
      /saved hangs :/ { sub(/.*saved hangs : /, ""); h = $1 }
      /corpus count :/ { sub(/.*corpus count : /, ""); q = $1 }
      /map density :/ { sub(/.*map density : [^\/]*\/ */, ""); d = $1 } # "2.1% / 20.6%": the whole map
      END { printf "%d %d %d %d %d %s", e, sp, c, h, q, d }')
    read -r e sp c h q d <<<"$s"
    execs=$((execs + ${e:-0})) speed=$((speed + ${sp:-0})) crashes=$((crashes + ${c:-0}))
    hangs=$((hangs + ${h:-0}))
    # The main instance's corpus and map density speak for the campaign.
    if [[ $ui == */main.ui ]]; then corpus=${q:-0} cov=${d:-}; fi
    # The screen redraws 5 times a second: keep the file small.
    (($(stat -c %s "$ui") < 4000000)) || : >"$ui"
  done
  printf '%s execs (%s/s)  map %s  corpus %s  crashes %d  hangs %d' "$(human "$execs")" "$(human "$speed")" \
    "${cov:-?}" "$corpus" "$crashes" "$hangs"
}

run_afl() { # $1 target, $2 work dir
  local t=$1 work=$2 bin=$afl_build/fuzz/afl_$1
  local cmplog=$afl_build/fuzz/afl_$1.cmplog asan=$afl_asan_build/fuzz/afl_$1
  [[ -x $bin ]] || die "$bin missing (drop --no-build)"
  mkdir -p "$work/seeds" "$work/afl"
  local d f
  for d in "corpus/$t" "corpus/regressions/$t"; do
    [[ -d $d ]] || continue
    find "$d" -type f ! -name 'README*' ! -name '.*' -size -1024k -exec cp -t "$work/seeds" {} + 2>/dev/null || true
  done
  [[ -n $(ls -A "$work/seeds") ]] || printf '\0\0\0\0' >"$work/seeds/empty"
  local -a common=(-i "$work/seeds" -o "$work/afl" -V "$per" -t $((timeout * 1000)) -m none)
  [[ -f corpus/$t.dict ]] && common+=(-x "$CPVM_ROOT/corpus/$t.dict")
  common+=("${engine_flags[@]}")
  local schedules=(exploit rare mmopt seek lin quad)
  pids=()
  local i name
  for ((i = 0; i < jobs; i++)); do
    local -a role
    if ((i == 0)); then name=main; role=(-M main -p explore -- "$bin")
    elif ((i == 1)) && [[ -x $cmplog ]]; then name=cmplog; role=(-S cmplog -p fast -c "$cmplog" -l 2 -- "$bin")
    elif ((i == 2)) && [[ -x $asan ]]; then name=asan; role=(-S asan -p coe -- "$asan")
    else name=s$i; role=(-S "s$i" -p "${schedules[i % ${#schedules[@]}]}" -- "$bin"); fi
    local cmd
    cmd=$(printf '%q ' afl-fuzz "${common[@]}" "${role[@]}")
    echo "$cmd" >>"$work/command"
    # afl-fuzz refreshes its statistics files once a minute but its screen five
    # times a second, so it runs on a pseudo-terminal (script) and the status
    # line reads the screen. afl-fuzz sets its own sanitizer options.
    (
      unset ASAN_OPTIONS UBSAN_OPTIONS
      export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CRASHES=1 AFL_NO_WARN_INSTABILITY=1
      (($(nproc) >= jobs)) || export AFL_NO_AFFINITY=1
      exec setsid script -qefc "$cmd" /dev/null >>"$work/$name.ui" 2>&1 </dev/null
    ) &
    pids+=($!)
    sleep 1 # the main instance creates the sync directory first
  done
  watch_progress "$t" afl_status "$work"
}

afl_merge() { # $1 target, $2 work dir: afl-cmin over corpus + queues; the queue files it keeps join corpus/<t>
  local t=$1 work=$2 in=$2/merge-in min=$2/merge-out n=0 f d
  rm -rf "$in" "$min"
  mkdir -p "$in" "corpus/$t"
  for f in "corpus/$t"/*; do [[ -f $f ]] && cp "$f" "$in/c_$(basename "$f")"; done
  for d in "$work"/afl/*/queue; do
    for f in "$d"/id:*; do [[ -f $f ]] && cp "$f" "$in/q_$(basename "$(dirname "$d")")_$(basename "$f" | cut -c1-9)"; done
  done
  # AFL_ALLOW_TMP: the directories are this campaign's own, even under /tmp.
  if ! env -u ASAN_OPTIONS -u UBSAN_OPTIONS AFL_QUIET=1 AFL_ALLOW_TMP=1 afl-cmin -i "$in" -o "$min" -m none -t $((timeout * 1000)) -- "$afl_build/fuzz/afl_$t" \
      >"$work/merge.log" 2>&1; then
    say "campaign: afl-cmin for $t failed (see $work/merge.log)"
    echo 0
    return
  fi
  for f in "$min"/q_*; do
    [[ -f $f ]] || continue
    local sum
    sum=$(sha1sum "$f" | cut -c1-40)
    [[ -e corpus/$t/$sum ]] || { cp "$f" "corpus/$t/$sum"; n=$((n + 1)); }
  done
  echo "$n"
}

# --- progress -------------------------------------------------------------------------
watch_progress() { # $1 target, $2 status function, $3 its argument
  local t=$1 fn=$2 arg=$3 start=$SECONDS last_print=-100 line el
  while alive; do
    sleep 2
    el=$((SECONDS - start))
    line="[$t] $(mmss "$el")/$(mmss "$per")  $($fn "$arg")"
    if ((tty)); then
      printf '\r\033[K%s' "${line:0:$(($(tput cols 2>/dev/null || echo 200) - 1))}"
    elif ((el - last_print >= 15)); then
      printf '%s\n' "$line"
      last_print=$el
    fi
    # The engines stop themselves; this only catches one that does not.
    if ((el > per + 120)); then
      say "campaign: $t still running $((el - per)) s past its time, stopping it"
      local p
      for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
    fi
  done
  wait "${pids[@]}" 2>/dev/null || true
  line="[$t] done in $(mmss $((SECONDS - start)))  $($fn "$arg")"
  if ((tty)); then printf '\r\033[K%s\n' "$line"; else printf '%s\n' "$line"; fi
  pids=()
}

# --- the campaign ---------------------------------------------------------------------
say "campaign: ${targets[*]}; $engine, $jobs job(s) each, $(mmss "$per") per target; in $out"
declare -A summary
new_bugs=0
for t in "${targets[@]}"; do
  ((stop)) && break
  work=$out/$t
  mkdir -p "$work"
  if [[ $engine == libfuzzer ]]; then run_libfuzzer "$t" "$work"; else run_afl "$t" "$work"; fi

  # Crashes (and libFuzzer's timeouts, leaks, ooms) into regression files.
  crash_dirs=()
  if [[ $engine == libfuzzer ]]; then
    crash_dirs=("$work/crashes")
    tri=(--build "$fuzz_build" --minimize libfuzzer)
  else
    for d in "$work"/afl/*/crashes; do [[ -d $d ]] && crash_dirs+=("$d"); done
    tri=(--build "$afl_asan_build" --afl-build "$afl_asan_build" --minimize afl)
  fi
  # Each timeout costs two full timeouts to reproduce and they are mostly one
  # hang: the three smallest stand for the rest (which stay in the crash folder).
  crash_files=()
  if ((${#crash_dirs[@]})); then
    mapfile -t crash_files < <(find "${crash_dirs[@]}" -type f ! -name 'README*' ! -name 'timeout-*' | sort)
    mapfile -t timeouts < <(find "${crash_dirs[@]}" -type f -name 'timeout-*' -printf '%s %p\n' |
      sort -n | head -n 3 | cut -d' ' -f2-)
    crash_files+=("${timeouts[@]}")
  fi
  n_crash=${#crash_files[@]}
  tri_line="no crashes"
  if ((n_crash > 0)); then
    say "campaign: triaging $n_crash crash file(s) of $t"
    fuzz/triage/triage.sh "${tri[@]}" --target "$t" --timeout "$timeout" --out "$out/regressions" \
      --known corpus/regressions "${crash_files[@]}" | tee "$work/triage.log" ||
      say "campaign: triage of $t failed; its crashes stay in $work"
    tri_line=$(tail -n 1 "$work/triage.log" | sed 's/^triage: //; s/; files in .*//')
    n=$(grep -c '^new ' "$work/triage.log" || true)
    new_bugs=$((new_bugs + n))
  fi
  hangs=""
  if [[ $engine == afl ]]; then
    h=$(find "$work"/afl/*/hangs -type f -name 'id:*' 2>/dev/null | wc -l)
    ((h == 0)) || hangs=", $h hang(s) in $work/afl/*/hangs"
  fi

  added="not merged"
  if ((merge)); then
    if [[ $engine == libfuzzer ]]; then n=$(lf_merge "$t" "$work"); else n=$(afl_merge "$t" "$work"); fi
    echo "$n" >"$work/merged"
    added="+$n corpus files"
  fi
  summary[$t]="$tri_line$hangs; $added"
done

python3 - "$engine" "$jobs" "$per" $((SECONDS - t0)) "$out/campaign.json" "${engine_flags[@]}" <<'PY'
import json, sys
e, j, p, a, path = sys.argv[1:6]
json.dump({"engine": e, "jobs": int(j), "seconds_per_target": int(p), "seconds_in_all": int(a),
           "engine_flags": sys.argv[6:]}, open(path, "w"))
PY
json=$(python3 fuzz/campaign_summary.py "$out" "$engine" "${targets[@]}") || json="(summary failed)"

echo
echo "campaign summary ($engine, $jobs job(s), $(mmss "$per") per target, $(mmss $((SECONDS - t0))) in all):"
for t in "${targets[@]}"; do
  [[ -n ${summary[$t]+set} ]] && printf '  %-16s %s\n' "$t" "${summary[$t]}"
done
echo "  logs and queues: $out"
echo "  JSON summary: $json; plots: $(cd "$out" && ls -d ./*/progress.png ./*/plot 2>/dev/null | sed 's|^\./||' | xargs)"
if ((new_bugs > 0)); then
  echo "  NEW crashes: $out/regressions/ ('cpvm repro FILE' explains each one;"
  echo "  after the fix: cp -r $out/regressions/* corpus/regressions/)"
  exit 1
fi
((merge)) && echo "  corpus changes: git status corpus/"
exit 0
