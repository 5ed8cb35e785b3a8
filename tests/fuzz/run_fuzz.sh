#!/usr/bin/env bash
# Bounded libFuzzer campaign over the three loaders (outside CI):
#
#   FUZZ_SECONDS=600 bash tests/fuzz/run_fuzz.sh [npy model index checkpoint]
#
# Builds the harnesses with clang (build_fuzzers.sh), writes seed corpora made
# by the library (make_seeds; the index and model harnesses also get
# tests/data/index-v1 to index-v3 and tests/data/model-v1),
# then runs each harness for FUZZ_SECONDS
# (default 600) with -timeout=10 and -rss_limit_mb=2048. Work lives in
# FUZZ_DIR (default build/fuzz in the repository): build/, seeds/, corpus-<h>/ (grows between
# runs), artifacts/<h>-crash-* etc. Harnesses run one after another unless
# FUZZ_PARALLEL=1. Exit status is non-zero if any harness found a crash, a
# leak or a timeout; add the artifact to tests/fuzz/regressions/<h>/ once
# fixed (the ctest fuzz_replay_<h> tests replay that folder in every pass).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FUZZ_DIR=${FUZZ_DIR:-$ROOT/build/fuzz}
SECONDS_PER=${FUZZ_SECONDS:-600}
CLANG=${CLANG:-clang}
harnesses=("$@")
[ "${#harnesses[@]}" -eq 0 ] && harnesses=(npy model index checkpoint)
command -v "$CLANG" >/dev/null || { echo "run_fuzz: $CLANG not found" >&2; exit 2; }

bash "$ROOT/tests/fuzz/build_fuzzers.sh" "$FUZZ_DIR/build" "$CLANG"
"$FUZZ_DIR/build/make_seeds" "$FUZZ_DIR/seeds"
mkdir -p "$FUZZ_DIR/artifacts"

run_one() {
    local h=$1 extra=()
    # the index and model loaders also read version-1 files: start from the committed ones
    if [ "$h" = index ]; then extra=("$ROOT/tests/data/index-v1" "$ROOT/tests/data/index-v2" "$ROOT/tests/data/index-v3"); fi
    if [ "$h" = model ]; then extra=("$ROOT/tests/data/model-v1"); fi
    mkdir -p "$FUZZ_DIR/corpus-$h"
    echo "run_fuzz: $h for ${SECONDS_PER}s"
    # corpus-<h> first (new inputs go there), then seeds and known regressions
    "$FUZZ_DIR/build/fuzz_$h" -max_total_time="$SECONDS_PER" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/artifacts/$h-" \
        "$FUZZ_DIR/corpus-$h" "$FUZZ_DIR/seeds/$h" "$ROOT/tests/fuzz/regressions/$h" \
        "${extra[@]}" >"$FUZZ_DIR/$h.log" 2>&1
}

rc=0
if [ "${FUZZ_PARALLEL:-0}" = 1 ]; then
    pids=()
    for h in "${harnesses[@]}"; do run_one "$h" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
else
    for h in "${harnesses[@]}"; do run_one "$h" || rc=1; done
fi
for h in "${harnesses[@]}"; do
    printf 'run_fuzz: %-6s %s\n' "$h" \
        "$(grep -E '^stat::number_of_executed_units|^Done' "$FUZZ_DIR/$h.log" | tr '\n' ' ')"
done
ls "$FUZZ_DIR/artifacts" 2>/dev/null | sed 's/^/run_fuzz: artifact: /'
exit $rc
