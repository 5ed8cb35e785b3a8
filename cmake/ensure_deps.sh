# shellcheck shell=bash
# Shared by tests/run.sh, examples/run.sh and the benchmarks (sourced, not run): makes sure
# the Debian packages a script needs are installed.
#
#   ae_ensure_packages PKG...
#
# Installs only what is missing, so a second run costs one dpkg-query:
# `apt-get update` once, then
# `apt-get install -y --no-install-recommends <missing packages>`.
# Needs root (or sudo) only when something is missing. Set AE_SKIP_APT=1 to
# never touch apt (the build then fails later if a tool is really missing).

# Every package tests/run.sh needs; examples/run.sh needs a subset.
# abigail-tools: abidw/abidiff for the ABI test; doxygen: the docs pass.
# shellcheck disable=SC2034  # used by the scripts that source this file
# libopenmpi-dev/openmpi-bin: the optional MPI component and its mpirun tests.
AE_TEST_PACKAGES=(build-essential cmake pkg-config libopenblas-dev libcmocka-dev libpng-dev
                  valgrind g++ abigail-tools doxygen libopenmpi-dev openmpi-bin)
AE_EXAMPLE_PACKAGES=(build-essential cmake pkg-config libopenblas-dev libpng-dev xz-utils)
# The peers the benchmarks in tests/bench compare with (never needed to build
# or test); they import under /usr/bin/python3.
AE_BENCH_PACKAGES=(build-essential cmake pkg-config libopenblas-dev xz-utils python3-torch
                   python3-sklearn python3-faiss python3-hnswlib)

ae_ensure_packages() {
    if [ "${AE_SKIP_APT:-0}" = 1 ]; then
        return 0
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "ensure_deps: not a Debian-like system; install by hand: $*" >&2
        return 0
    fi
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "ensure_deps: missing packages (${missing[*]}); run as root or install them" >&2
            return 1
        fi
    fi
    echo "ensure_deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
}
