#!/usr/bin/env bash
# The main-job command: bash examples/run.sh [EXTRA ARGS...]
#
# Installs missing Debian packages (cmake/ensure_deps.sh), builds the library
# and the examples in Release (<repo>/build/release), unpacks the QuickDraw-10
# data (<repo>/../shared/quickdraw10.tar.xz) into <repo>/build/data/ once,
# then runs every example program that exists, in tutorial order:
#   simple_autoencoder deep_autoencoder conv_autoencoder image_retrieval
# and then the blog's further sections: denoising_autoencoder sparse_autoencoder
#   variational_autoencoder
# each as `<prog> --data build/data/quickdraw10 --out build/out EXTRA ARGS...`.
#
# Environment: AUTOENC_DATA=<an unpacked quickdraw10/ folder> uses that data
# instead of the archive; AE_JOBS (default 2); AE_SKIP_APT=1;
# AE_EXAMPLES_LONG=1 also trains the retrieval-grade conv_bn8 model (up to
# AE_LONG_EPOCHS epochs, default 18: about 10-15 minutes on 2 cores) and
# scores it in image_retrieval beside the tutorial's conv model and PCA-32.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR/.. source=cmake/ensure_deps.sh
source "$ROOT/cmake/ensure_deps.sh"
cd "$ROOT"   # the relative paths below (build/...) are relative to the repo

JOBS=${AE_JOBS:-2}
BUILD=build/release
ARCHIVE=${AE_DATA_ARCHIVE:-$ROOT/../shared/quickdraw10.tar.xz}
EXAMPLES=(simple_autoencoder deep_autoencoder conv_autoencoder image_retrieval
          denoising_autoencoder sparse_autoencoder
          variational_autoencoder)

log() { printf '\n==> %s\n' "$*"; }

ae_ensure_packages "${AE_EXAMPLE_PACKAGES[@]}"

log "build (Release) in $BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAE_BUILD_TESTS=OFF -DAE_BUILD_EXAMPLES=ON
cmake --build "$BUILD" --parallel "$JOBS"

# ---- data -------------------------------------------------------------------
if [ -n "${AUTOENC_DATA:-}" ]; then
    DATA=$AUTOENC_DATA
    [ -d "$DATA" ] || { echo "AUTOENC_DATA=$DATA is not a folder" >&2; exit 1; }
    log "data: $DATA (AUTOENC_DATA)"
else
    DATA=build/data/quickdraw10
    [ -f "$ARCHIVE" ] || { echo "data archive not found: $ARCHIVE (or set AUTOENC_DATA)" >&2; exit 1; }
    stamp=build/data/.quickdraw10.sha256
    sum=$(sha256sum "$ARCHIVE" | cut -d' ' -f1)
    if [ -d "$DATA" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
        log "data: $DATA (already unpacked)"
    else
        log "data: unpacking $ARCHIVE into build/data/"
        mkdir -p build/data
        tmp=$(mktemp -d build/data/.unpack.XXXXXX)
        tar -xJf "$ARCHIVE" -C "$tmp"
        [ -d "$tmp/quickdraw10" ] || { echo "archive has no quickdraw10/ folder" >&2; exit 1; }
        rm -rf "$DATA"
        mv "$tmp/quickdraw10" "$DATA"
        rm -rf "$tmp"
        echo "$sum" > "$stamp"
    fi
fi
ls "$DATA"/*.npy >/dev/null 2>&1 || { echo "no .npy files in $DATA" >&2; exit 1; }

# ---- examples ---------------------------------------------------------------
mkdir -p build/out
ran=0
for name in "${EXAMPLES[@]}"; do
    prog=$(find "$BUILD" -type f -name "$name" -perm -u+x 2>/dev/null | head -n 1)
    if [ -z "$prog" ]; then
        echo "(example $name not built yet: skipped)"
        continue
    fi
    log "$prog --data $DATA --out build/out $*"
    "$prog" --data "$DATA" --out build/out "$@"
    ran=$((ran + 1))
done
if [ "${AE_EXAMPLES_LONG:-0}" = 1 ]; then
    prog=$(find "$BUILD" -type f -name image_retrieval -perm -u+x 2>/dev/null | head -n 1)
    args=(--data "$DATA" --out build/out --preset conv_bn8 --epochs "${AE_LONG_EPOCHS:-18}"
          --compare build/out/conv_autoencoder.aem "$@")
    log "$prog ${args[*]}"
    "$prog" "${args[@]}"
    ran=$((ran + 1))
fi
if [ "$ran" -eq 0 ]; then
    echo "examples/run.sh: no example program exists yet; built the library and unpacked the data only"
fi
log "done: $ran example(s) run, outputs in build/out"
