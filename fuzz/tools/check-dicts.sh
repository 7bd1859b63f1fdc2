#!/usr/bin/env bash
# CTest fuzz_dicts_fresh: the committed dictionaries are what
# fuzz/tools/make_dicts.c writes today (regenerate and diff). A dictionary that
# says it is "a copy of corpus/X.dict" must equal X's, header aside.
#
#   check-dicts.sh MAKE_DICTS CORPUS_DIR
set -euo pipefail
make_dicts=$1 corpus=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$make_dicts" "$tmp"
stale=0
for d in "$tmp"/*.dict; do
  name=$(basename "$d")
  if ! cmp -s "$d" "$corpus/$name"; then
    echo "stale: corpus/$name differs from what make_dicts writes (run: make_dicts corpus)"
    diff "$corpus/$name" "$d" | head -n 10 || true
    stale=1
  fi
done
for d in "$corpus"/*.dict; do
  src=$(head -n 1 "$d" | sed -n -E 's|.*a copy of corpus/([a-z0-9_]+\.dict).*|\1|p')
  [[ -n $src ]] || continue
  if ! cmp -s <(tail -n +2 "$d") <(tail -n +2 "$corpus/$src"); then
    echo "stale: corpus/$(basename "$d") is no longer a copy of corpus/$src"
    stale=1
  fi
done
((stale == 0)) && echo "dictionaries: $(ls "$tmp" | wc -l) generated and the copies match"
exit $stale
