#!/bin/bash -eu
# OSS-Fuzz build script: every fuzz/targets/<t>.c into $OUT/<t>, linked with
# $LIB_FUZZING_ENGINE, with $OUT/<t>_seed_corpus.zip (corpus/<t>/ plus the
# regressions), $OUT/<t>.dict and $OUT/<t>.options.
#
# Honours OSS-Fuzz's CC, CXX, CFLAGS, CXXFLAGS, LIB_FUZZING_ENGINE, OUT, SRC and
# WORK. The source is $SRC/cpvm (override with CPVM_SRC); ci/docker-check.sh runs
# this outside OSS-Fuzz for libFuzzer and AFL++.

src=${CPVM_SRC:-$SRC/cpvm}
build=${WORK:-/tmp}/cpvm-oss-fuzz-build

# Only the library and the generator come from CMake, compiled with $CC and
# $CFLAGS (sanitizers, the engine's instrumentation, coverage flags):
# fuzz/CMakeLists.txt's own fuzz_<t> builds pick their sanitizers themselves,
# which OSS-Fuzz does per build.
rm -rf "$build"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE= -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$CFLAGS" \
  -DCPVM_TESTS=OFF -DCPVM_FUZZ=OFF -DCPVM_AFL=OFF
# cpvm_gen pulls in libcpvm.a; "cpvm" alone would name the CLI executable to ninja.
cmake --build "$build" --target cpvm_gen
libs=("$build/fuzz/libcpvm_gen.a" "$build/libcpvm.a")
for lib in "${libs[@]}"; do [[ -f $lib ]] || { echo "build.sh: $lib was not built" >&2; exit 1; }; done

# libFuzzer and libAFLDriver are linked the OSS-Fuzz way: with $CXX.
link=${CXX:-$CC}
link_flags=${CXXFLAGS:-$CFLAGS}
for path in "$src"/fuzz/targets/*.c; do
  t=$(basename "$path" .c)
  $CC $CFLAGS -std=gnu17 -I"$src/vm/include" -I"$src/vm" -I"$src/fuzz/gen" -c "$path" -o "$build/$t.o"
  # shellcheck disable=SC2086 # the flags are word lists
  $link $link_flags "$build/$t.o" -o "$OUT/$t" $LIB_FUZZING_ENGINE "${libs[@]}"

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
    done < <(find "$d" -type f ! -name 'README*' ! -name '.*')
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
  } >"$OUT/$t.options"
  echo "build.sh: $OUT/$t (${#seeds[@]} seeds)"
done
