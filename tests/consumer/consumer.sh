#!/bin/sh
# Installed-consumer tests, run by ctest (tests/cmake/consumer.cmake):
#
#   consumer.sh install   BUILD_DIR PREFIX            cmake --install into a fresh PREFIX
#   consumer.sh pkgconfig PREFIX WORK CC [FLAGS...]   C program, pkg-config, libautoenc.so
#   consumer.sh static    PREFIX WORK CC [FLAGS...]   C program, pkg-config --static, libautoenc.a
#   consumer.sh cmake     PREFIX WORK CC CXX GENERATOR VERSION [FLAGS...]
#                                                     find_package(autoenc) project (C++ + C,
#                                                     and autoenc::autoenc_mpi when installed)
#   consumer.sh mpi       PREFIX WORK CC MPIRUN [FLAGS...]
#                                                     C program, pkg-config autoenc_mpi, mpirun
#
# FLAGS are extra compile/link flags (the sanitizer flags of a sanitizer build).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cmake=${CMAKE:-cmake}   # ctest passes the cmake that configured the build
mode=${1:?mode}
shift

say() { printf '+ %s\n' "$*"; }
die() { printf 'consumer.sh %s: %s\n' "$mode" "$*" >&2; exit 1; }

# Sets PKG_CONFIG_PATH to the prefix's pkgconfig folder and checks that
# pkg-config finds that autoenc.pc (not some system-wide one).
use_prefix_pkgconfig() {
    pcfile=$(find "$1" -name autoenc.pc -path '*/pkgconfig/*' | head -n 1)
    [ -n "$pcfile" ] || die "no autoenc.pc under $1"
    PKG_CONFIG_PATH=$(dirname "$pcfile")
    export PKG_CONFIG_PATH
    command -v pkg-config >/dev/null 2>&1 || die "pkg-config not found"
    libdir=$(pkg-config --variable=libdir autoenc)
    case "$libdir" in
        "$1"/*) ;;
        *) die "pkg-config libdir '$libdir' is not inside the prefix $1" ;;
    esac
}

case "$mode" in
install)
    build=${1:?build dir}; prefix=${2:?prefix}
    rm -rf "$prefix"
    say "$cmake" --install "$build" --prefix "$prefix"
    "$cmake" --install "$build" --prefix "$prefix"
    for f in include/autoenc/autoenc.h include/autoenc/common.h; do
        [ -f "$prefix/$f" ] || die "missing $f"
    done
    for pat in 'libautoenc.so.0' 'libautoenc.a' 'autoenc.pc' 'autoencConfig.cmake' \
               'autoencConfigVersion.cmake' 'autoencTargets.cmake'; do
        [ -n "$(find "$prefix" -name "$pat")" ] || die "missing $pat"
    done
    # The installed headers are exactly the public ones (mpi.h only with
    # libautoenc_mpi).
    want=$(cd "$here/../../include/autoenc" && ls -- *.h)
    if [ -z "$(find "$prefix" -name 'libautoenc_mpi.so.0')" ]; then
        want=$(printf '%s\n' "$want" | grep -vx 'mpi.h')
    fi
    got=$(cd "$prefix/include/autoenc" && ls -- *.h)
    [ "$want" = "$got" ] || die "installed headers differ from include/autoenc/: $got"
    find "$prefix" -type f | sed "s|^$prefix/||" | sort
    ;;

pkgconfig)
    prefix=${1:?prefix}; work=${2:?work dir}; cc=${3:?C compiler}; shift 3
    use_prefix_pkgconfig "$prefix"
    rm -rf "$work"; mkdir -p "$work"
    cflags=$(pkg-config --cflags autoenc)
    libs=$(pkg-config --libs autoenc)
    say pkg-config --cflags --libs autoenc: "$cflags" "$libs"
    # shellcheck disable=SC2086
    "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror "$@" $cflags "$here/consumer.c" \
        -o "$work/consumer_shared" $libs -Wl,-rpath,"$libdir"
    readelf -d "$work/consumer_shared" | grep -q 'NEEDED.*\[libautoenc\.so\.0\]' \
        || die "consumer_shared does not need libautoenc.so.0"
    "$work/consumer_shared" pkg-config
    ;;

static)
    prefix=${1:?prefix}; work=${2:?work dir}; cc=${3:?C compiler}; shift 3
    use_prefix_pkgconfig "$prefix"
    rm -rf "$work"; mkdir -p "$work"
    cflags=$(pkg-config --static --cflags autoenc)
    libs=$(pkg-config --static --libs autoenc)
    say pkg-config --static --cflags --libs autoenc: "$cflags" "$libs"
    case " $cflags " in *" -DAE_STATIC "*) ;; *) die "--static --cflags lacks -DAE_STATIC" ;; esac
    # -lautoenc would pick libautoenc.so next to the .a: ask for the archive.
    libs=$(printf '%s\n' "$libs" | sed 's/-lautoenc\([[:space:]]\|$\)/-l:libautoenc.a\1/')
    # shellcheck disable=SC2086
    "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror "$@" $cflags "$here/consumer.c" \
        -o "$work/consumer_static" $libs
    if readelf -d "$work/consumer_static" | grep -q 'NEEDED.*libautoenc'; then
        die "consumer_static is linked to the shared libautoenc"
    fi
    "$work/consumer_static" pkg-config-static
    ;;

cmake)
    prefix=${1:?prefix}; work=${2:?work dir}; cc=${3:?C compiler}; cxx=${4:?C++ compiler}
    generator=${5:?generator}; version=${6:?version}; shift 6
    rm -rf "$work"
    flags="$*"
    say "$cmake" -S "$here/cmake" -B "$work" -DCMAKE_PREFIX_PATH="$prefix"
    "$cmake" -S "$here/cmake" -B "$work" -G "$generator" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
        -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
        -DAE_EXPECTED_VERSION="$version"
    "$cmake" --build "$work"
    readelf -d "$work/consumer_cxx" | grep -q 'NEEDED.*\[libautoenc\.so\.0\]' \
        || die "consumer_cxx does not need libautoenc.so.0"
    if readelf -d "$work/consumer_c_static" | grep -q 'NEEDED.*libautoenc'; then
        die "consumer_c_static is linked to the shared libautoenc"
    fi
    "$work/consumer_cxx"
    "$work/consumer_c_static" cmake-static
    if [ -x "$work/consumer_mpi" ]; then
        OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$work/consumer_mpi" cmake
    fi
    ;;

mpi)
    prefix=${1:?prefix}; work=${2:?work dir}; cc=${3:?C compiler}; mpirun=${4:?mpirun}; shift 4
    use_prefix_pkgconfig "$prefix"
    rm -rf "$work"; mkdir -p "$work"
    cflags=$(pkg-config --cflags autoenc_mpi)
    libs=$(pkg-config --libs autoenc_mpi)
    say pkg-config --cflags --libs autoenc_mpi: "$cflags" "$libs"
    # shellcheck disable=SC2086
    "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror "$@" $cflags "$here/consumer_mpi.c" \
        -o "$work/consumer_mpi" $libs -Wl,-rpath,"$libdir"
    readelf -d "$work/consumer_mpi" | grep -q 'NEEDED.*\[libautoenc_mpi\.so\.0\]' \
        || die "consumer_mpi does not need libautoenc_mpi.so.0"
    "$mpirun" --allow-run-as-root --oversubscribe -np 2 "$work/consumer_mpi" pkg-config
    ;;

*)
    die "unknown mode (install, pkgconfig, static, cmake, mpi)"
    ;;
esac
