#!/usr/bin/env bash
# Checks docker/ for real, without Docker Hub or OSS-Fuzz's registry:
#   1. docker/oss-fuzz/build.sh with OSS-Fuzz's environment for libFuzzer
#      (clang-19, -fsanitize=fuzzer) and for AFL++ (afl-clang-fast, libAFLDriver.a);
#      then every target runs its seed corpus and fuzzes briefly, as OSS-Fuzz's
#      build check does (CPVM_OSS_FUZZ_SECONDS per target, default 3: CI's
#      smoke run fuzzes every target for longer); the engine + sanitizer pairs
#      build and run side by side;
#   2. .clusterfuzzlite/Dockerfile built with podman on a stand-in for
#      OSS-Fuzz's base-builder (the debootstrap base + clang-19), build.sh run
#      inside it and every seed corpus replayed there (as build steps);
#   3. docker/Dockerfile built with podman on a base image imported from a
#      debootstrap of Debian 12 (from apt's own mirror), and a short campaign
#      run in the image (as a build step on top of it).
#
#   ci/docker-check.sh [oss-fuzz | cflite | image | all]     default all; as root
#
# Work files: ${CPVM_BUILD_PREFIX}docker-check/ (the debootstrap root is kept as a
# tarball there and as the podman image cpvm-base; delete both to redo it).
set -euo pipefail
cd "$(dirname "$0")/.."
source fuzz/common.sh

what=${1:-all}
[[ $what =~ ^(oss-fuzz|cflite|image|all)$ ]] || die "usage: ci/docker-check.sh [oss-fuzz|cflite|image|all]"
[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap and podman need it)"
if [[ $what == oss-fuzz ]]; then bash ci/deps.sh fuzz; else bash ci/deps.sh fuzz docker; fi
work=${CPVM_BUILD_PREFIX}docker-check
mkdir -p "$work"

# --- 1. OSS-Fuzz build.sh -------------------------------------------------------------
# project.yaml's lists: every engine with every sanitizer it lists (AFL++ runs
# with ASan only, as on OSS-Fuzz).
yaml_list() { sed -n "/^$1:/,/^[^ -]/p" docker/oss-fuzz/project.yaml | sed -n -E 's/^ *- *([a-z_]+).*/\1/p'; }
mapfile -t engines < <(yaml_list fuzzing_engines)
mapfile -t sanitizers < <(yaml_list sanitizers)
# The flags OSS-Fuzz's compile script sets per sanitizer.
common="-O1 -fno-omit-frame-pointer -gline-tables-only -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"
declare -A san_flags=(
  [address]="-fsanitize=address -fsanitize-address-use-after-scope"
  [undefined]="-fsanitize=array-bounds,bool,builtin,enum,function,integer-divide-by-zero,null,object-size,return,returns-nonnull-attribute,shift,signed-integer-overflow,unreachable,vla-bound -fno-sanitize-recover=array-bounds,bool,builtin,enum,function,integer-divide-by-zero,null,object-size,return,returns-nonnull-attribute,shift,signed-integer-overflow,unreachable,vla-bound"
)

oss_build() { # engine sanitizer: runs build.sh the way OSS-Fuzz's compile does, into $work/oss-<engine>-<sanitizer>/out
  local engine=$1 sanitizer=$2 root=$work/oss-$1-$2 flags
  flags="$common ${san_flags[$sanitizer]:?unknown sanitizer $sanitizer}"
  rm -rf "$root"
  mkdir -p "$root/src" "$root/out" "$root/work"
  # CPVM_SRC: the checkout stands in for $SRC/cpvm (a symlink there would put
  # the tree inside itself, which CMake's try_compile trips over).
  local -a env=(CPVM_SRC="$CPVM_ROOT" SRC="$root/src" OUT="$root/out" WORK="$root/work" SANITIZER="$sanitizer"
                ARCHITECTURE=x86_64 FUZZING_ENGINE="$engine" FUZZING_LANGUAGE=c)
  if [[ $engine == libfuzzer ]]; then
    env+=(CC=clang-19 CXX=clang++-19 CFLAGS="$flags -fsanitize=fuzzer-no-link" CXXFLAGS="$flags -fsanitize=fuzzer-no-link"
          LIB_FUZZING_ENGINE=-fsanitize=fuzzer)
  else
    # OSS-Fuzz's compile_afl: afl-clang-fast with the sanitizer flags, and the
    # AFL++ driver (Debian ships it as /usr/lib/afl/libAFLDriver.a).
    env+=(CC=afl-clang-fast CXX=afl-clang-fast++ CFLAGS="$flags" CXXFLAGS="$flags"
          LIB_FUZZING_ENGINE=/usr/lib/afl/libAFLDriver.a AFL_QUIET=1)
  fi
  echo "=== oss-fuzz build.sh, $engine + $sanitizer"
  local t0=$SECONDS
  (cd "$CPVM_ROOT" && env "${env[@]}" bash -eu docker/oss-fuzz/build.sh) >"$root/build.log" 2>&1 ||
    { tail -n 40 "$root/build.log"; die "build.sh failed for $engine + $sanitizer (log: $root/build.log)"; }
  grep '^build.sh: ' "$root/build.log"
  local t
  for t in $(fuzz_targets "$engine"); do
    for f in "$t" "${t}_seed_corpus.zip" "$t.options"; do
      [[ -s $root/out/$f ]] || die "$engine: \$OUT/$f missing"
    done
    [[ ! -f corpus/$t.dict || -s $root/out/$t.dict ]] || die "$engine: \$OUT/$t.dict missing"
    grep -q '^allow_user_segv_handler = 1' "$root/out/$t.options" || die "$engine: $t.options lacks the [asan] option"
  done
  echo "built in $((SECONDS - t0)) s"
}

fuzz_secs=${CPVM_OSS_FUZZ_SECONDS:-3}
[[ $fuzz_secs =~ ^[1-9][0-9]*$ ]] || die "CPVM_OSS_FUZZ_SECONDS: a whole number of seconds, at least 1"
oss_run() { # engine sanitizer: every target replays its seeds and fuzzes for a few seconds
  local engine=$1 sanitizer=$2 root=$work/oss-$1-$2 t seeds t0=$SECONDS
  for t in $(fuzz_targets "$engine"); do
    seeds=$root/seeds/$t
    rm -rf "$seeds"
    mkdir -p "$seeds"
    unzip -q "$root/out/${t}_seed_corpus.zip" -d "$seeds"
    if [[ $engine == libfuzzer ]]; then
      # The seeds first (-runs=0: each once), then a short fuzzing run; no
      # ASAN_OPTIONS: the binary's built-in default must carry the segv option.
      env -u ASAN_OPTIONS "$root/out/$t" -runs=0 -timeout=25 "$seeds" >"$root/$t.replay.log" 2>&1 ||
        { tail -n 30 "$root/$t.replay.log"; die "libfuzzer + $sanitizer: $t fails on its seed corpus"; }
      local dict=()
      [[ -f $root/out/$t.dict ]] && dict=(-dict="$root/out/$t.dict")
      env -u ASAN_OPTIONS "$root/out/$t" "${dict[@]}" -max_total_time="$fuzz_secs" -timeout=25 "$seeds" \
        >"$root/$t.run.log" 2>&1 || { tail -n 30 "$root/$t.run.log"; die "libfuzzer + $sanitizer: $t failed"; }
      echo "ok  libfuzzer+$sanitizer $t: $(unzip -Z1 "$root/out/${t}_seed_corpus.zip" | wc -l) seeds replayed; $(grep -a -E '^#[0-9]+' "$root/$t.run.log" | tail -n 1)"
    else
      rm -rf "$root/afl-$t" "$root/afl-in-$t"
      local xdict=()
      [[ -f $root/out/$t.dict ]] && xdict=(-x "$root/out/$t.dict")
      # Every seed through the AFL++ driver's own replay (its files-as-arguments
      # mode, one process), as libFuzzer's -runs=0 above; then afl-fuzz, in
      # persistent mode under its fork server, from a sample of the seeds
      # (afl-fuzz runs each input first and fails on a crashing one;
      # AFL_FAST_CAL: one calibration run per input is enough for a check).
      find "$seeds" -type f -print0 | sort -z | xargs -0 -r timeout 900 env -u ASAN_OPTIONS -u UBSAN_OPTIONS "$root/out/$t" \
        >"$root/$t.replay.log" 2>&1 || { tail -n 30 "$root/$t.replay.log"; die "afl + $sanitizer: $t fails on its seed corpus"; }
      mkdir -p "$root/afl-in-$t"
      # (awk takes the first 32 itself: a `head` closing the pipe early can kill awk
      # with SIGPIPE once the list outgrows one pipe write, and pipefail fails the check)
      find "$seeds" -type f | sort | awk 'NR % 25 == 1 && n++ < 32' | xargs -r cp -t "$root/afl-in-$t"
      env -u ASAN_OPTIONS -u UBSAN_OPTIONS AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_FAST_CAL=1 \
        AFL_NO_AFFINITY=1 afl-fuzz -i "$root/afl-in-$t" -o "$root/afl-$t" "${xdict[@]}" -m none -t 10000+ \
        -V "$fuzz_secs" -- "$root/out/$t" >"$root/$t.run.log" 2>&1 || { tail -n 30 "$root/$t.run.log"; die "afl: $t failed"; }
      local crashes
      crashes=$(find "$root/afl-$t" -path '*/crashes/id:*' | wc -l)
      ((crashes == 0)) || die "afl: $t found $crashes crash(es) in $root/afl-$t"
      echo "ok  afl+$sanitizer $t: $(unzip -Z1 "$root/out/${t}_seed_corpus.zip" | wc -l) seeds replayed; $(grep -a -E 'Statistics|corpus items' "$root/$t.run.log" | tail -n 1 | sed 's/\x1b\[[0-9;]*m//g')"
    fi
  done
  echo "replayed and fuzzed in $((SECONDS - t0)) s"
}

if [[ $what == oss-fuzz || $what == all ]]; then
  # Side by side, one log each (shown in order): one pair's single-threaded
  # steps (configure, the targets' compiles and links, seed replays, the timed
  # fuzzing) overlap another's parallel build.
  pids=() logs=()
  t0=$SECONDS
  for engine in "${engines[@]}"; do
    for sanitizer in "${sanitizers[@]}"; do
      [[ $engine == afl && $sanitizer != address ]] && continue # OSS-Fuzz runs AFL++ with ASan only
      logs+=("$work/oss-$engine-$sanitizer.log")
      (
        oss_build "$engine" "$sanitizer"
        oss_run "$engine" "$sanitizer"
      ) >"${logs[-1]}" 2>&1 &
      pids+=($!)
    done
  done
  failed=0
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed=1
    cat "${logs[$i]}"
  done
  ((failed == 0)) || die "the OSS-Fuzz check failed (see above)"
  echo "oss-fuzz check in $((SECONDS - t0)) s"
fi

# --- the debootstrap base image (kept: tarball + podman image cpvm-base) ---------------
podman=(podman --cgroup-manager=cgroupfs)
base_image() {
  "${podman[@]}" image exists cpvm-base && return 0
  # apt's own mirror: the one place this machine may download Debian from.
  local mirror
  mirror=$(grep -h -o -E '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v -E 'security|updates' | grep -E 'debian/?$' | head -n 1 |
    awk '{ print $NF }' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
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
}

# --- 2. ClusterFuzzLite: .clusterfuzzlite/Dockerfile, its build.sh, the seeds --------
# OSS-Fuzz's base-builder comes from a registry this check does not use; a
# stand-in on the debootstrap base gives what build.sh expects of it (clang with
# libFuzzer, the OSS-Fuzz environment: $SRC $OUT $WORK $CC $CFLAGS
# $LIB_FUZZING_ENGINE ...). .clusterfuzzlite/Dockerfile is built on it as is;
# build.sh and the seed replay run as build steps (`podman run` may be refused).
if [[ $what == cflite || $what == all ]]; then
  base_image
  ctx=$work/cflite-ctx
  rm -rf "$ctx"
  mkdir -p "$ctx"
  t0=$SECONDS
  cat >"$ctx/Containerfile.builder" <<EOC
FROM cpvm-base
RUN apt-get update && apt-get install -y --no-install-recommends clang-19 libclang-rt-19-dev lld-19 llvm-19 \\
    git zip unzip ca-certificates && rm -rf /var/lib/apt/lists/*
ENV SRC=/src OUT=/out WORK=/work CC=clang-19 CXX=clang++-19 SANITIZER=address FUZZING_ENGINE=libfuzzer \\
    FUZZING_LANGUAGE=c ARCHITECTURE=x86_64 LIB_FUZZING_ENGINE=-fsanitize=fuzzer \\
    CFLAGS="${common} ${san_flags[address]} -fsanitize=fuzzer-no-link" \\
    CXXFLAGS="${common} ${san_flags[address]} -fsanitize=fuzzer-no-link"
RUN mkdir -p /src /out /work
WORKDIR /src
EOC
  echo "=== podman build: the base-builder stand-in (cpvm-oss-builder)"
  "${podman[@]}" build --isolation=chroot -f "$ctx/Containerfile.builder" -t cpvm-oss-builder "$ctx" \
    >"$work/cflite-builder.log" 2>&1 || { tail -n 40 "$work/cflite-builder.log"; die "the builder image failed"; }
  echo "=== podman build .clusterfuzzlite/Dockerfile (BASE=cpvm-oss-builder)"
  "${podman[@]}" build --isolation=chroot --build-arg BASE=cpvm-oss-builder -f .clusterfuzzlite/Dockerfile \
    -t cpvm-cflite . >"$work/cflite-image.log" 2>&1 ||
    { tail -n 40 "$work/cflite-image.log"; die "podman build .clusterfuzzlite/Dockerfile failed"; }
  echo "=== build.sh inside the image, then every target replays its seed corpus"
  cat >"$ctx/Containerfile.run" <<'EOC'
FROM cpvm-cflite
RUN bash -eu $SRC/build.sh && cd $OUT && for z in *_seed_corpus.zip; do \
      t=${z%_seed_corpus.zip}; mkdir -p $WORK/seeds/$t && unzip -q -o $z -d $WORK/seeds/$t && \
      ./$t -runs=0 $WORK/seeds/$t > $WORK/$t.log 2>&1 || { tail -n 30 $WORK/$t.log; exit 1; }; \
      echo "cflite replay: $t: $(ls $WORK/seeds/$t | wc -l) seeds, $(grep -a -o 'DONE.*' $WORK/$t.log | head -n 1)"; \
    done
EOC
  "${podman[@]}" build --isolation=chroot --no-cache -f "$ctx/Containerfile.run" -t cpvm-cflite-run "$ctx" \
    >"$work/cflite-run.log" 2>&1 || { tail -n 60 "$work/cflite-run.log"; die "build.sh or the seed replay failed in the image"; }
  grep -E '^(build.sh|cflite replay): ' "$work/cflite-run.log"
  "${podman[@]}" rmi cpvm-cflite-run >/dev/null
  echo "cflite check in $((SECONDS - t0)) s"
fi

# --- 3. the campaign image ------------------------------------------------------------
if [[ $what == image || $what == all ]]; then
  base_image
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
