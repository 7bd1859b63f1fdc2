#!/usr/bin/env bash
# Throughput on the benchmark programs in ci/bench/ (a baseline, not a test): the
# interpreter, the compiler in its zygote sandbox and the compiler unsandboxed
# (--sandbox none, the fuzzing configuration); module creation with the compiler
# and DOOM's time per tick (../shared/bench: doom.polkavm, quake.polkavm) with the
# reference PolkaVM 0.35's figures beside cpvm's (../shared/bench/README.md and
# doom-host.md, measured on this machine kind); then what the sandbox costs
# (`cpvm bench --sandbox-costs`: instance start, host call round trips, memory);
# then the fuzz targets' rates (ci/bench-fuzz.sh; CPVM_BENCH_FUZZ_SECONDS=0
# skips its libFuzzer runs).
# Usage: ci/bench.sh [build-dir]   (default build/release; builds it if missing)
#   CPVM_BENCH_DIR      the real programs (default ../shared/bench)
#   CPVM_DOOM_TICKS     DOOM ticks per run (default 2000, as the reference's figures)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
if [[ ! -x $build/cpvm ]]; then
  cmake --preset release >/dev/null && cmake --build --preset release >/dev/null
  build=build/release
fi
benchdir=${CPVM_BENCH_DIR:-../shared/bench}
ticks=${CPVM_DOOM_TICKS:-2000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The reference's figures (run() only, seconds; best of 5 on this machine kind).
declare -A ref=([sieve:interpreter]=0.348 [sieve:compiler]=0.058 [alu_loop:interpreter]=1.36
                [alu_loop:compiler]=0.170)
echo "== ci/bench programs: run() only, best of 3 (reference 0.35 beside: best of 5)"
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
    r=${ref[$name:${args[1]}]:-}
    awk -v n="$n" -v r="$r" '/^backend:/ {sub(/^backend: */, ""); b=$0} /^best time:/ {t=$3}
         END {printf "%12d instructions  %.3f s  %8.1f M instructions/s  reference %s s = %.2fx  (%s)\n",
                     n, t, n/t/1e6, r, t/r, b}' <<<"$out"
  done
done

echo
echo "== module creation, compiler (parse + compile), best of 10 (reference 0.35: best of 5, idle core)"
declare -A mref=([doom]=6.1 [quake]=3.3)
for name in doom quake; do
  blob=$benchdir/$name.polkavm
  if [[ ! -f $blob ]]; then echo "$name: $blob not found"; continue; fi
  out=$("$build/cpvm" bench --compile "$blob" --iterations 10)
  awk -v name="$name" -v r="${mref[$name]}" '/^best time:/ {b=$3*1e3} /^median time:/ {m=$3*1e3}
       END {printf "%-6s best %6.2f ms  median %6.2f ms  reference %.1f ms = %.2fx\n", name, b, m, r, b/r}' <<<"$out"
done

echo
echo "== DOOM, $ticks ticks: ms per tick inside ext_tick (reference 0.35 from doom-host.md, one core busy)"
declare -A dref=([compiler:none]="3.4-3.7" [compiler:sync]="4.7-5.0" [interpreter:none]="26.0-26.1"
                 [interpreter:sync]="27.2")
doom=$build/hosts/doom/cpvm-doom
if [[ -x $doom && -f $benchdir/doom.polkavm ]]; then
  for mode in compiler:zygote compiler:none interpreter:none; do
    backend=${mode%%:*} sandbox=${mode#*:}
    for gas in none sync async; do
      out=$("$doom" --program "$benchdir/doom.polkavm" --ticks "$ticks" --backend "$backend" --sandbox "$sandbox" \
            --gas "$gas" | tail -1)
      python3 - "$out" "$backend" "$sandbox" "$gas" "${dref[$backend:$gas]:-n/a}" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
print(f"{sys.argv[2]:<11} {sys.argv[3]:<6} gas {sys.argv[4]:<5} {j['ms_per_tick']:7.2f} ms/tick  reference {sys.argv[5]:>9}"
      f"  (module {j['module_ms']:.1f} ms, frames {j['frames']}, video {j['video_hash']}, audio {j['audio_hash']},"
      f" gas used {j['gas_used']})")
PY
    done
  done
else
  echo "cpvm-doom or $benchdir/doom.polkavm not found"
fi
echo
"$build/cpvm" bench --sandbox-costs
echo
bash ci/bench-fuzz.sh
