#!/bin/sh
# ABI check of libautoenc.so against the committed baseline
# docs/abi/libautoenc.abi (an abidw dump of the released interface), and the
# deliberate update of that baseline. Run by ctest as `abi_baseline`
# (tests/cmake/abi.cmake); by hand see docs/abi/README.md.
#
#   sh cmake/abi_check.sh [OPTIONS] [LIBRARY]            compare (default)
#   sh cmake/abi_check.sh --update [OPTIONS] [LIBRARY]   rewrite the baseline
#
# LIBRARY is a built libautoenc.so with DWARF debug info, best from a Debug
# build (-g -O0). When LIBRARY is not given, or has no .debug_info section
# (a Release build has none), the script builds a private Debug copy of the
# shared library from the source tree in WORK/build (incremental on later
# runs, about 3 s of compiling from scratch at -j2) and uses that. Why Debug:
# the ABI does not depend on the optimisation level, but abidw 2.2 fails to
# tie some functions of an optimised -O3 -g build to their ELF symbols
# (ae_tensor_data_const, which -O3 compiles to the same code as
# ae_tensor_data), and the check refuses a dump that does not describe every
# exported function with its type.
#
# OPTIONS
#   --source DIR     source tree (default: the tree holding this script)
#   --baseline FILE  default SOURCE/docs/abi/libautoenc.abi
#   --work DIR       dumps, report and the private build (default SOURCE/build/abi)
#   --cmake EXE      cmake for the private build (default: $CMAKE or cmake)
#   --cc EXE         C compiler for the private build (default: cmake's choice)
#   --jobs N         parallel jobs for the private build (default: $AE_JOBS or 2)
#
# The dump: abidw --headers-dir SOURCE/include/autoenc --drop-private-types
# --exported-interfaces-only, so only the exported functions and the types of
# the public headers count (the handles are opaque: their struct layouts are
# not ABI), without locations or build paths so that the committed file does
# not depend on the machine.
#
# Verdict (abidiff's exit status is a bit field: 1 error, 2 usage error,
# 4 ABI change, 8 incompatible ABI change). abidiff sets bit 8 only for sure
# breaks such as a removed function; a changed parameter or return type or a
# renumbered enum value sets bit 4 only, and so do added functions. So the
# verdict comes from `abidiff --no-added-syms`, which leaves additions out:
#   - any change left (bit 4 or 8) fails;
#   - additions only (functions; enumerators appended, which abidiff files
#     as harmless) pass, and the full report shows them;
#   - a symbol that is not in the baseline but carries one of the baseline's
#     (released) version nodes fails: new functions go into a new node of
#     lib/autoenc.map (see docs/versioning.md);
#   - errors of abidw/abidiff fail.
# Exit status: 0 pass, 1 fail, 77 abidw or abidiff not installed (ctest
# SKIP_RETURN_CODE), 2 usage.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
mode=check
baseline=
work=
cmake=${CMAKE:-cmake}
cc=
jobs=${AE_JOBS:-2}
lib=

usage() { sed -n '2,20p' "$0" >&2; exit 2; }
die() { printf 'abi_check: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --update) mode=update ;;
        --check) mode=check ;;
        --source) src=$(cd "${2:?}" && pwd); shift ;;
        --baseline) baseline=${2:?}; shift ;;
        --work) work=${2:?}; shift ;;
        --cmake) cmake=${2:?}; shift ;;
        --cc) cc=${2:?}; shift ;;
        --jobs) jobs=${2:?}; shift ;;
        -h|--help) usage ;;
        -*) printf 'abi_check: unknown option %s\n' "$1" >&2; usage ;;
        *) [ -z "$lib" ] || usage; lib=$1 ;;
    esac
    shift
done
baseline=${baseline:-$src/docs/abi/libautoenc.abi}
work=${work:-$src/build/abi}
headers=$src/include/autoenc

for tool in abidw abidiff; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "abi_check: SKIP: $tool not found (Debian package abigail-tools)"
        exit 77
    fi
done
mkdir -p "$work"

has_dwarf() {
    # readelf is in binutils, always beside a C toolchain; objdump as fallback
    if command -v readelf >/dev/null 2>&1; then
        readelf -S "$1" 2>/dev/null | grep -q '\.debug_info'
    else
        objdump -h "$1" 2>/dev/null | grep -q '\.debug_info'
    fi
}

if [ -n "$lib" ] && [ ! -f "$lib" ]; then
    die "no such library: $lib"
fi
if [ -n "$lib" ] && has_dwarf "$lib"; then
    echo "abi_check: using $lib (has DWARF)"
else
    if [ -n "$lib" ]; then
        echo "abi_check: $lib has no DWARF debug info (a Release build);" \
             "building a Debug copy of the shared library in $work/build"
    else
        echo "abi_check: building a Debug copy of the shared library in $work/build"
    fi
    set -- -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Debug \
        "-DCMAKE_C_FLAGS=-fdebug-prefix-map=$src=." \
        -DAE_BUILD_TESTS=OFF -DAE_BUILD_EXAMPLES=OFF -DAE_SANITIZE=
    if [ -n "$cc" ]; then
        set -- "$@" "-DCMAKE_C_COMPILER=$cc"
    fi
    log=$work/build.log
    if ! { "$cmake" "$@" && "$cmake" --build "$work/build" --target autoenc --parallel "$jobs"; } \
            >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "the debug-info build failed (log: $log)"
    fi
    lib=$work/build/lib/libautoenc.so
    [ -f "$lib" ] || die "the debug-info build made no $lib"
    has_dwarf "$lib" || die "$lib still has no DWARF debug info"
fi

dump=$work/libautoenc.abi
echo "+ abidw --headers-dir $headers --drop-private-types --exported-interfaces-only" \
     "--no-corpus-path --no-comp-dir-path --no-show-locs --type-id-style hash" \
     "--out-file $dump $lib"
abidw --headers-dir "$headers" --drop-private-types --exported-interfaces-only \
      --no-corpus-path --no-comp-dir-path --no-show-locs --type-id-style hash \
      --out-file "$dump" "$lib" ||
    die "abidw failed on $lib"

# Sanity: the dump must describe every exported function with its type (a
# dump made without usable DWARF lists bare symbols and compares only names).
sed -n "s/.*<elf-symbol name='\([^']*\)'.*type='func-type'.*/\1/p" "$dump" | sort -u \
    >"$work/funcs.all"
sed -n "s/.*<function-decl .*elf-symbol-id='\([^'@]*\)[@'].*/\1/p" "$dump" | sort -u \
    >"$work/funcs.typed"
untyped=$(comm -23 "$work/funcs.all" "$work/funcs.typed")
n_syms=$(grep -c '<elf-symbol ' "$dump" || true)
n_typed=$(wc -l <"$work/funcs.typed")
if [ -n "$untyped" ]; then
    die "abidw described $n_typed functions of $lib with types, but not:" \
        "$(echo "$untyped" | tr '\n' ' ')(give a Debug build, or no LIBRARY)"
fi
echo "abi_check: $n_syms exported symbols, every function ($n_typed) described with its type"

if [ "$mode" = update ]; then
    mkdir -p "$(dirname "$baseline")"
    cp "$dump" "$baseline"
    echo "abi_check: baseline written: $baseline"
    echo "abi_check: review it with 'git diff -- docs/abi/' and commit it with the release"
    exit 0
fi

[ -f "$baseline" ] || die "no baseline $baseline (create it with: sh cmake/abi_check.sh --update)"

# Two runs: the full report (additions included) for the log, and the
# verdict with --no-added-syms, so that any remaining change is a change to
# the released interface.
report=$work/abidiff.txt
echo "+ abidiff $baseline $dump"
set +e
abidiff "$baseline" "$dump" >"$report" 2>&1
rc_full=$?
abidiff --no-added-syms "$baseline" "$dump" >"$work/abidiff-verdict.txt" 2>&1
rc=$?
set -e
cat "$report"
if [ $((rc_full & 4)) -ne 0 ] && [ "$rc" -eq 0 ]; then
    echo "abi_check: additions only (abidiff exit status $rc_full, $rc with --no-added-syms): allowed"
fi

fail=0
if [ $((rc & 3)) -ne 0 ] || [ $((rc_full & 3)) -ne 0 ]; then
    echo "abi_check: FAIL: abidiff reported an error (exit status $rc_full / $rc)" >&2
    fail=1
elif [ $((rc & 12)) -ne 0 ]; then
    if [ $((rc & 8)) -ne 0 ]; then
        kind="ABI-incompatible change (abidiff: removed symbol or the like)"
    else
        kind="ABI change to a released function or type"
    fi
    echo "abi_check: FAIL: $kind against $baseline" \
         "(abidiff --no-added-syms exit status $rc)." >&2
    echo "  A program built against the released headers may break. Either restore the" >&2
    echo "  interface, or make the break deliberate: bump AE_VERSION_MAJOR (the SONAME)," >&2
    echo "  then update the baseline (docs/abi/README.md)." >&2
    fail=1
fi

# Version-node rule: a symbol absent from the baseline must not be bound to
# a node the baseline already has (a released node never grows).
sym_versions() {
    sed -n "s/.*<elf-symbol name='\([^']*\)' version='\([^']*\)'.*/\1 \2/p" "$1" | sort -u
}
sym_versions "$baseline" >"$work/baseline.syms"
sym_versions "$dump" >"$work/new.syms"
cut -d' ' -f2 "$work/baseline.syms" | sort -u >"$work/baseline.nodes"
cut -d' ' -f1 "$work/baseline.syms" | sort -u >"$work/baseline.names"
misplaced=$(awk -v nodes="$work/baseline.nodes" -v names="$work/baseline.names" '
    BEGIN { while ((getline l < nodes) > 0) node[l] = 1
            while ((getline l < names) > 0) old[l] = 1 }
    !($1 in old) && ($2 in node) { print "  " $1 "@" $2 }' "$work/new.syms")
if [ -n "$misplaced" ]; then
    echo "abi_check: FAIL: new symbols in a released version node (lib/autoenc.map):" >&2
    printf '%s\n' "$misplaced" >&2
    echo "  Put new functions into a new node, e.g. AUTOENC_0.2 { global: ae_new; } AUTOENC_0.1;" >&2
    fail=1
fi

if [ "$fail" -ne 0 ]; then
    echo "abi_check: report: $report" >&2
    exit 1
fi
echo "abi_check: PASS: no ABI-incompatible change against $baseline"
