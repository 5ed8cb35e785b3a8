#!/usr/bin/env bash
# The test command: bash tests/run.sh [PASS...]
#
# Passes (default: all, in this order):
#   normal    Release build (library, tests, examples, the MPI component
#             libautoenc_mpi), the whole ctest suite: cmocka unit tests,
#             header tests, symbol and ABI tests (abidiff against
#             docs/abi/libautoenc.abi, the 0.1.0 old consumer),
#             installed-consumer tests (pkg-config and find_package), the
#             mpirun -np 2 tests (label mpi).
#   asan      the cmocka unit tests (label `unit`) built with
#             -DAE_SANITIZE=address,undefined (ASan + UBSan, no recovery).
#   valgrind  the cmocka unit tests under valgrind memcheck
#             (--leak-check=full --errors-for-leak-kinds=definite,indirect),
#             with AE_TEST_SMALL=1 in the environment so that heavy tests
#             can choose a smaller workload (the asan pass sets it too: the
#             crash tests' full workloads took 6 minutes under ASan).
#   docs      the API reference (`docs` target, doxygen) with
#             -DAE_DOCS_STRICT=ON: any doxygen warning, an undocumented public
#             function, type, macro or enumerator (status code) fails.
#   tsan      the tests labelled `threads` (concurrent index queries, the
#             training thread pool, threaded predict/encode) built with
#             -DAE_SANITIZE=thread; TSAN_OPTIONS uses tests/tsan.supp (only
#             OpenBLAS, which is not instrumented) and halt_on_error=1.
#
# The unit label includes the reliability tests (docs/reliability.md):
# allocation-failure injection, kill-during-save, fuzz regression replays;
# the normal pass also runs short libFuzzer smoke runs (label fuzz) when
# clang is installed.
#
# Installs missing Debian packages first (cmake/ensure_deps.sh), works from
# any directory, keeps build trees in <repo>/build/{test,asan,valgrind,tsan,docs}
# (AE_BUILD_ROOT moves them), runs every pass even after a failure and exits
# non-zero if any pass failed. Environment: AE_JOBS (default 2),
# AE_TEST_TIMEOUT (seconds per test, default 600; valgrind pass 3x),
# AE_SKIP_APT=1 (never call apt-get), ASAN_OPTIONS / UBSAN_OPTIONS (replace
# the asan pass's defaults), TSAN_OPTIONS (replaces the tsan pass's).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR/.. source=cmake/ensure_deps.sh
source "$ROOT/cmake/ensure_deps.sh"

JOBS=${AE_JOBS:-2}
BUILD_ROOT=${AE_BUILD_ROOT:-$ROOT/build}
TIMEOUT=${AE_TEST_TIMEOUT:-600}
VALGRIND_OPTS="--error-exitcode=1;--leak-check=full;--errors-for-leak-kinds=definite,indirect;--show-leak-kinds=definite,indirect;--num-callers=30;--quiet"

passes=("$@")
if [ "${#passes[@]}" -eq 0 ] || [ "${passes[0]}" = all ]; then
    passes=(normal asan valgrind docs tsan)
fi
for p in "${passes[@]}"; do
    case "$p" in
        normal|asan|valgrind|docs|tsan) ;;
        *) echo "usage: bash tests/run.sh [all | normal asan valgrind docs tsan]" >&2; exit 2 ;;
    esac
done

log() { printf '\n==> %s\n' "$*"; }

ae_ensure_packages "${AE_TEST_PACKAGES[@]}"

# configure_and_build DIR CMAKE_ARGS...: a build tree of this checkout.
configure_and_build() {
    local dir=$1; shift
    # A tree configured from another checkout (the repo was moved) is stale.
    if [ -f "$dir/CMakeCache.txt" ] &&
       ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$dir/CMakeCache.txt"; then
        rm -rf "$dir"
    fi
    cmake -S "$ROOT" -B "$dir" "$@"
    cmake --build "$dir" --parallel "$JOBS"
}

pass_normal() {
    local dir=$BUILD_ROOT/test
    configure_and_build "$dir" -DCMAKE_BUILD_TYPE=Release -DAE_BUILD_TESTS=ON \
        -DAE_BUILD_EXAMPLES=ON -DAE_BUILD_MPI=ON -DAE_SANITIZE= -DAE_TEST_LAUNCHER=
    (cd "$dir" && ctest --output-on-failure --no-tests=error -j "$JOBS" --timeout "$TIMEOUT")
}

pass_asan() {
    local dir=$BUILD_ROOT/asan
    # Debug (-O0): sanitizers see the most there, and it is the build that
    # catches vector-ABI mistakes between target clones and their helpers
    configure_and_build "$dir" -DCMAKE_BUILD_TYPE=Debug -DAE_BUILD_TESTS=ON \
        -DAE_BUILD_EXAMPLES=OFF -DAE_SANITIZE=address,undefined -DAE_TEST_LAUNCHER=
    (cd "$dir" && export AE_TEST_SMALL=1 &&
     ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1} \
     UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
     ctest -L unit --output-on-failure --no-tests=error -j "$JOBS" --timeout "$TIMEOUT")
}

pass_valgrind() {
    local dir=$BUILD_ROOT/valgrind vg
    vg=$(command -v valgrind) || { echo "valgrind not found" >&2; return 1; }
    configure_and_build "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAE_BUILD_TESTS=ON \
        -DAE_BUILD_EXAMPLES=OFF -DAE_SANITIZE= "-DAE_TEST_LAUNCHER=$vg;$VALGRIND_OPTS"
    # AE_TEST_SMALL=1 lets a heavy unit test pick a smaller workload.
    (cd "$dir" && export AE_TEST_SMALL=1 &&
     ctest -L unit --output-on-failure --no-tests=error -j "$JOBS" --timeout $((TIMEOUT * 3)))
}

pass_docs() {
    local dir=$BUILD_ROOT/docs
    command -v doxygen >/dev/null 2>&1 || { echo "doxygen not found" >&2; return 1; }
    # Only the docs target: no library, tests or examples are compiled.
    if [ -f "$dir/CMakeCache.txt" ] &&
       ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$dir/CMakeCache.txt"; then
        rm -rf "$dir"
    fi
    cmake -S "$ROOT" -B "$dir" -DAE_DOCS_STRICT=ON -DAE_BUILD_TESTS=OFF \
        -DAE_BUILD_EXAMPLES=OFF -DAE_SANITIZE=
    cmake --build "$dir" --target docs
    echo "API reference: $dir/docs/html/index.html"
}

pass_tsan() {
    local dir=$BUILD_ROOT/tsan
    configure_and_build "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAE_BUILD_TESTS=ON \
        -DAE_BUILD_EXAMPLES=OFF -DAE_SANITIZE=thread -DAE_TEST_LAUNCHER=
    # TSan exits non-zero (66) after any report; halt_on_error stops at the first
    (cd "$dir" && export AE_TEST_SMALL=1 &&
     TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp} \
     ctest -L threads --output-on-failure --no-tests=error -j "$JOBS" --timeout "$TIMEOUT")
}

failed=()
summary=()
for p in "${passes[@]}"; do
    log "pass: $p"
    start=$SECONDS
    # A subshell with errexit of its own: inside `if` bash would ignore set -e.
    set +e
    ( set -e; "pass_$p" )
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then status=ok; else status=FAILED; failed+=("$p"); fi
    summary+=("$(printf '%-9s %-6s %4ds' "$p" "$status" $((SECONDS - start)))")
done

log "summary"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "tests/run.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "tests/run.sh: all passes ok"
