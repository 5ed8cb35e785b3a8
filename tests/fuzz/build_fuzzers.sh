#!/usr/bin/env bash
# Builds the libFuzzer targets with clang:
#   bash tests/fuzz/build_fuzzers.sh OUTDIR [CLANG]
# -> OUTDIR/fuzz_npy, OUTDIR/fuzz_model, OUTDIR/fuzz_index, OUTDIR/fuzz_checkpoint,
#    OUTDIR/make_seeds
# The library sources are compiled once with -fsanitize=fuzzer-no-link,
# address,undefined (UBSan without recovery) and linked into each harness.
# Used by tests/cmake/fuzz.cmake (ctest smoke runs) and run_fuzz.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${1:?usage: build_fuzzers.sh OUTDIR [CLANG]}
CC=${2:-${CLANG:-clang}}
JOBS=${AE_JOBS:-2}
mkdir -p "$OUT/obj"
CBLAS_INC=$(dirname "$(find /usr/include -name cblas.h -path '*openblas*' -print -quit 2>/dev/null ||
                        find /usr/include -name cblas.h -print -quit)")
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
# no function multi-versioning (target_clones) in the fuzz build: one code path
COMMON=(-std=c11 -g -O1 -fno-math-errno -Wno-psabi -DAE_STATIC -DAE_BUILDING_LIBRARY
        -DAE_NO_TARGET_CLONES -I"$ROOT/include" -I"$ROOT/lib" -I"$ROOT/tests/support" -I"$CBLAS_INC")
SUPPORT=("$ROOT"/tests/support/*.c) # the tests' shared helpers (tests/support/README.md)
export CC OUT
export COMMON_FLAGS="${COMMON[*]} ${SAN[*]} -fsanitize=fuzzer-no-link"
# compile the library in parallel, only what changed
ls "$ROOT"/lib/*.c | xargs -P "$JOBS" -I{} sh -c '
  src={}; obj="$OUT/obj/$(basename "$src" .c).o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find "$(dirname "$src")" -name "*.h" -newer "$obj" -print -quit)" ]; then
    $CC $COMMON_FLAGS -c "$src" -o "$obj"
  fi'
# drop objects of deleted sources, then link
for o in "$OUT"/obj/*.o; do
    [ -f "$ROOT/lib/$(basename "$o" .o).c" ] || rm -f "$o"
done
LIBS=(-lopenblas -lm -lpthread)
for h in npy model index checkpoint; do
    "$CC" "${COMMON[@]}" "${SAN[@]}" -fsanitize=fuzzer "$ROOT/tests/fuzz/fuzz_$h.c" \
        "${SUPPORT[@]}" "$OUT"/obj/*.o "${LIBS[@]}" -o "$OUT/fuzz_$h"
done
"$CC" "${COMMON[@]}" "$ROOT/tests/fuzz/make_seeds.c" "${SUPPORT[@]}" "$ROOT"/lib/*.c "${LIBS[@]}" \
    -o "$OUT/make_seeds" 2>/dev/null || true # optional: cmake builds its own
echo "build_fuzzers: $OUT/fuzz_{npy,model,index,checkpoint}"
