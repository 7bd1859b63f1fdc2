#!/usr/bin/env bash
# Checks docker/ for real, without Docker Hub or OSS-Fuzz's registry:
#   1. docker/oss-fuzz/build.sh with OSS-Fuzz's environment for libFuzzer
#      (clang-19, -fsanitize=fuzzer) and for AFL++ (afl-clang-fast, libAFLDriver.a);
#      then every target runs its seed corpus and fuzzes briefly, as OSS-Fuzz's
#      build check does;
#   2. docker/Dockerfile built with podman on a base image imported from a
#      debootstrap of Debian 12 (from apt's own mirror), and a short campaign
#      run in the image (as a build step on top of it).
#
#   ci/docker-check.sh [oss-fuzz | image | all]     default all; as root
#
# Work files: ${CPVM_BUILD_PREFIX}docker-check/ (the debootstrap root is kept as a
# tarball there and as the podman image cpvm-base; delete both to redo it).
set -euo pipefail
cd "$(dirname "$0")/.."
source fuzz/common.sh

what=${1:-all}
[[ $what =~ ^(oss-fuzz|image|all)$ ]] || die "usage: ci/docker-check.sh [oss-fuzz|image|all]"
[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap and podman need it)"
bash ci/deps.sh fuzz docker
work=${CPVM_BUILD_PREFIX}docker-check
mkdir -p "$work"
mapfile -t targets < <(fuzz_targets)

# --- 1. OSS-Fuzz build.sh -------------------------------------------------------------
# The flags OSS-Fuzz's compile script sets for the address sanitizer.
san="-O1 -fno-omit-frame-pointer -gline-tables-only -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"
san+=" -fsanitize=address -fsanitize-address-use-after-scope"

oss_build() { # engine: runs build.sh the way OSS-Fuzz's compile does, into $work/oss-<engine>/out
  local engine=$1 root=$work/oss-$1
  rm -rf "$root"
  mkdir -p "$root/src" "$root/out" "$root/work"
  # CPVM_SRC: the checkout stands in for $SRC/cpvm (a symlink there would put
  # the tree inside itself, which CMake's try_compile trips over).
  local -a env=(CPVM_SRC="$CPVM_ROOT" SRC="$root/src" OUT="$root/out" WORK="$root/work" SANITIZER=address ARCHITECTURE=x86_64
                FUZZING_ENGINE="$engine" FUZZING_LANGUAGE=c)
  if [[ $engine == libfuzzer ]]; then
    env+=(CC=clang-19 CXX=clang++-19 CFLAGS="$san -fsanitize=fuzzer-no-link" CXXFLAGS="$san -fsanitize=fuzzer-no-link"
          LIB_FUZZING_ENGINE=-fsanitize=fuzzer)
  else
    # OSS-Fuzz's compile_afl: afl-clang-fast with the sanitizer flags, and the
    # AFL++ driver (Debian ships it as /usr/lib/afl/libAFLDriver.a).
    env+=(CC=afl-clang-fast CXX=afl-clang-fast++ CFLAGS="$san" CXXFLAGS="$san"
          LIB_FUZZING_ENGINE=/usr/lib/afl/libAFLDriver.a AFL_QUIET=1)
  fi
  echo "=== oss-fuzz build.sh, $engine"
  (cd "$CPVM_ROOT" && env "${env[@]}" bash -eu docker/oss-fuzz/build.sh) >"$root/build.log" 2>&1 ||
    { tail -n 40 "$root/build.log"; die "build.sh failed for $engine (log: $root/build.log)"; }
  grep '^build.sh: ' "$root/build.log"
  local t
  for t in "${targets[@]}"; do
    for f in "$t" "${t}_seed_corpus.zip" "$t.options"; do
      [[ -s $root/out/$f ]] || die "$engine: \$OUT/$f missing"
    done
    [[ ! -f corpus/$t.dict || -s $root/out/$t.dict ]] || die "$engine: \$OUT/$t.dict missing"
  done
  ls -la "$root/out"
}

oss_run() { # engine: every target replays its seeds and fuzzes for a few seconds
  local engine=$1 root=$work/oss-$1 t seeds
  for t in "${targets[@]}"; do
    seeds=$root/seeds/$t
    rm -rf "$seeds"
    mkdir -p "$seeds"
    unzip -q "$root/out/${t}_seed_corpus.zip" -d "$seeds"
    if [[ $engine == libfuzzer ]]; then
      "$root/out/$t" -dict="$root/out/$t.dict" -max_total_time=5 -timeout=25 "$seeds" >"$root/$t.run.log" 2>&1 ||
        { tail -n 30 "$root/$t.run.log"; die "libfuzzer: $t failed"; }
      echo "ok  libfuzzer $t: $(grep -a -E '^#[0-9]+' "$root/$t.run.log" | tail -n 1)"
    else
      rm -rf "$root/afl-$t"
      # The driver's main runs under afl-fuzz's fork server, in persistent mode.
      env -u ASAN_OPTIONS -u UBSAN_OPTIONS AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
        AFL_SKIP_CRASHES=1 afl-fuzz -i "$seeds" -o "$root/afl-$t" -x "$root/out/$t.dict" -m none -V 5 -- "$root/out/$t" \
        >"$root/$t.run.log" 2>&1 || { tail -n 30 "$root/$t.run.log"; die "afl: $t failed"; }
      echo "ok  afl $t: $(grep -a -E 'Statistics|corpus items' "$root/$t.run.log" | tail -n 1 | sed 's/\x1b\[[0-9;]*m//g')"
    fi
  done
}

if [[ $what == oss-fuzz || $what == all ]]; then
  for engine in libfuzzer afl; do
    oss_build "$engine"
    oss_run "$engine"
  done
fi

# --- 2. the campaign image ------------------------------------------------------------
if [[ $what == image || $what == all ]]; then
  # apt's own mirror: the one place this machine may download Debian from.
  mirror=$(grep -h -o -E '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v -E 'security|updates' | grep -E 'debian/?$' | head -n 1 |
    awk '{ print $NF }' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  podman=(podman --cgroup-manager=cgroupfs)
  if ! "${podman[@]}" image exists cpvm-base; then
    if [[ ! -s $work/bookworm-root.tar ]]; then
      echo "=== debootstrap bookworm from $mirror"
      rm -rf "$work/root"
      debootstrap --variant=minbase bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 20 "$work/debootstrap.log"; die "debootstrap failed"; }
      tar -C "$work/root" -cf "$work/bookworm-root.tar" .
      rm -rf "$work/root"
    fi
    echo "=== podman import cpvm-base"
    "${podman[@]}" import --quiet "$work/bookworm-root.tar" cpvm-base >/dev/null
  fi
  echo "=== podman build docker/Dockerfile (BASE=cpvm-base)"
  t0=$SECONDS
  "${podman[@]}" build --isolation=chroot --build-arg BASE=cpvm-base -f docker/Dockerfile -t cpvm-campaign . \
    >"$work/podman-build.log" 2>&1 || { tail -n 40 "$work/podman-build.log"; die "podman build failed (log: $work/podman-build.log)"; }
  echo "built cpvm-campaign in $((SECONDS - t0)) s: $("${podman[@]}" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' cpvm-campaign)"
  # A short campaign in the image, as one more build step: `podman run` needs
  # rights (setrlimit, cgroups) that CI containers often lack, chroot builds do not.
  echo "=== a short campaign inside the image (every target, 10 s each)"
  mkdir -p "$work/run-ctx"
  printf 'FROM cpvm-campaign\nRUN fuzz/campaign.sh --per-target 10 --no-merge\n' >"$work/run-ctx/Containerfile"
  "${podman[@]}" build --isolation=chroot --no-cache -t cpvm-campaign-run "$work/run-ctx" >"$work/podman-run.log" 2>&1 ||
    { tail -n 40 "$work/podman-run.log"; die "the campaign failed in the image (log: $work/podman-run.log)"; }
  sed -n '/^\[/p; /^campaign summary/,/logs and queues/p' "$work/podman-run.log"
  "${podman[@]}" rmi cpvm-campaign-run >/dev/null
fi
echo "=== docker check passed ($what)"
