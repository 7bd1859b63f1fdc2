#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script (.clusterfuzzlite/build.sh runs this
# one): every target fuzz/targets.def registers for $FUZZING_ENGINE into
# $OUT/<t>, linked with $LIB_FUZZING_ENGINE, with $OUT/<t>_seed_corpus.zip
# (corpus/<t>/ plus the regressions), $OUT/<t>.dict and $OUT/<t>.options.
#
# Honours OSS-Fuzz's CC, CXX, CFLAGS, CXXFLAGS, LIB_FUZZING_ENGINE,
# FUZZING_ENGINE, SANITIZER, ARCHITECTURE, OUT, SRC and WORK. The source is
# $SRC/cpvm (override with CPVM_SRC); ci/docker-check.sh runs it for every
# engine and sanitizer docker/oss-fuzz/project.yaml lists.

src=${CPVM_SRC:-$SRC/cpvm}
build=${WORK:-/tmp}/cpvm-oss-fuzz-build
engine=${FUZZING_ENGINE:-libfuzzer}
# shellcheck source=../../fuzz/common.sh
source "$src/fuzz/common.sh"
mapfile -t targets < <(fuzz_targets "$engine")
((${#targets[@]})) || { echo "build.sh: fuzz/targets.def registers no target for $engine" >&2; exit 1; }

# The library, the generator and the harness come from CMake, compiled with
# $CC and $CFLAGS (sanitizer, the engine's instrumentation, coverage flags);
# the targets are compiled and linked here, as OSS-Fuzz links: with $CXX and
# $LIB_FUZZING_ENGINE.
rm -rf "$build"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE= -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$CFLAGS" \
  -DCPVM_TESTS=OFF -DCPVM_FUZZ=OFF -DCPVM_AFL=OFF >"$build.cmake.log" || { cat "$build.cmake.log" >&2; exit 1; }
cmake --build "$build" --target cpvm_harness cpvm_external
libs=("$build/fuzz/libcpvm_harness.a" "$build/fuzz/libcpvm_gen.a" "$build/libcpvm.a")
# EXTERNAL targets (the external-target protocol) also link its library and cJSON.
external_libs=("$build/fuzz/libcpvm_external.a")
for lib in "${libs[@]}" "${external_libs[@]}"; do [[ -f $lib ]] || { echo "build.sh: $lib was not built" >&2; exit 1; }; done
read -ra cjson <<<"$(pkg-config --libs libcjson)"
# libcpvm's one dependency besides libc.
read -ra seccomp <<<"$(pkg-config --libs libseccomp)"
includes=(-I"$src/vm/include" -I"$src/vm" -I"$src/fuzz/gen" -I"$src/fuzz/harness")
# allow_user_segv_handler=1 built into every binary (the compiler backend's
# fault handler), besides the .options [asan] section below.
$CC $CFLAGS -std=gnu17 -c "$src/fuzz/harness/asan_options.c" -o "$build/asan_options.o"

link=${CXX:-$CC}
link_flags=${CXXFLAGS:-$CFLAGS}
for t in "${targets[@]}"; do
  if fuzz_target_needs "$t" COMPILER && [[ ${ARCHITECTURE:-x86_64} != x86_64 ]]; then
    echo "build.sh: $t skipped (needs the x86-64 compiler; ARCHITECTURE=$ARCHITECTURE)"
    continue
  fi
  extra_inc=() extra_libs=()
  if fuzz_target_needs "$t" EXTERNAL; then
    extra_inc=(-I"$src/fuzz/external")
    extra_libs=("${external_libs[@]}" "${cjson[@]}")
  fi
  $CC $CFLAGS -std=gnu17 "${includes[@]}" "${extra_inc[@]}" -c "$src/fuzz/targets/$t.c" -o "$build/$t.o"
  # shellcheck disable=SC2086 # the flags are word lists
  $link $link_flags "$build/$t.o" "$build/asan_options.o" -o "$OUT/$t" $LIB_FUZZING_ENGINE "${extra_libs[@]}" "${libs[@]}" \
    "${seccomp[@]}"

  rm -f "$OUT/${t}_seed_corpus.zip"
  seeds=()
  declare -A named=()
  for d in "$src/corpus/$t" "$src/corpus/regressions/$t"; do
    [[ -d $d ]] || continue
    while IFS= read -r f; do
      # zip -j stores base names, which must not repeat.
      [[ -n ${named[$(basename "$f")]+set} ]] && continue
      named[$(basename "$f")]=1
      seeds+=("$f")
    done < <(find "$d" -type f ! -name 'README*' ! -name '.*' | sort)
  done
  unset named
  ((${#seeds[@]} == 0)) || printf '%s\n' "${seeds[@]}" | zip -q -j -@ "$OUT/${t}_seed_corpus.zip"
  [[ -f $src/corpus/$t.dict ]] && cp "$src/corpus/$t.dict" "$OUT/$t.dict"
  {
    echo "[libfuzzer]"
    [[ -f $src/corpus/$t.dict ]] && echo "dict = $t.dict"
    # Inputs are a mode byte or two and a program; the generator caps its records.
    echo "max_len = 16384"
    echo "timeout = 25"
    echo "[asan]"
    echo "allow_user_segv_handler = 1"
  } >"$OUT/$t.options"
  echo "build.sh: $OUT/$t ($engine, ${SANITIZER:-address}, ${#seeds[@]} seeds)"
done
