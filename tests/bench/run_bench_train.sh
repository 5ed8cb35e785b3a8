#!/usr/bin/env bash
# Training / encoding benchmark: libautoenc against PyTorch, side by side in one
# run, on the QuickDraw-10 training split. Prints a table and, as its LAST
# line, one JSON object with every ratio (and the raw numbers behind them).
#
#   tests/bench/run_bench_train.sh [options]
#     --data DIR        QuickDraw-10 folder of <category>.npy files (default:
#                       $AUTOENC_DATA, else the archive below is unpacked into
#                       the work folder)
#     --archive FILE    archive to unpack (../shared/quickdraw10.tar.xz from
#                       the repository, as examples/run.sh)
#     --models LIST     comma list of simple,deep,conv (the default: the
#                       tutorial's three) and conv_bn8 (issue 11's
#                       retrieval-grade model: conv + batch norm, strided and
#                       transposed convolutions, batch 128; its PyTorch epochs
#                       take a minute or more here, so it runs only when asked)
#     --torch-layouts L memory formats PyTorch's training tries for the image
#                       models (conv, conv_bn8): 1 channels_last, 0 contiguous
#                       NCHW (1; 1,0 adds every NCHW configuration to the
#                       search, doubling PyTorch's training time). Encoding,
#                       a few seconds a pass, always tries both.
#     --threads LIST    thread counts of every configuration (1,2)
#     --epochs N        epochs per training configuration (3: a warm-up epoch,
#                       then 2 timed epochs, whose median counts; the
#                       equal-work check compares the validation BCE after N)
#     --rounds N        training rounds (3; 1 with --quick): every round runs
#                       each configuration of both sides once, interleaved
#                       (C, PyTorch, C, PyTorch, ...), so a slow spell of the
#                       machine hits both; the report gives each side's min
#                       and median over the rounds and the ratios of both
#     --quick           smoke run: 2 epochs (1 timed), 1 encoding pass,
#                       PyTorch chunks 64,256, 1 GEMM repetition, 60 s cap
#     --time-cap S      seconds after which a PyTorch training configuration
#                       stops (150, conv_bn8 600; 60 and 150 with --quick):
#                       a pathologically slow one (OpenMP threads spinning on
#                       a loaded machine) must not eat the budget; the table
#                       marks it with '*'
#     --build-dir DIR   CMake build folder (build/bench in the repository);
#                       bench_train is
#                       (re)built there with -DCMAKE_BUILD_TYPE=Release
#     --bin FILE        use this bench_train binary, build nothing
#     --work DIR        work folder (default: a new temporary folder, removed
#                       at the end unless --keep)
#     --results FILE    also keep every raw JSON line of the run in FILE
#     --keep            keep the work folder
#
# Environment: the PyTorch processes run /usr/bin/python3 (Debian's
# python3-torch) with MALLOC_MMAP_THRESHOLD_=33554432 and
# MALLOC_TRIM_THRESHOLD_=1073741824 (freeing and re-faulting large blocks is
# very expensive on this machine); with more than one thread PyTorch runs
# twice, with OpenMP's default wait policy and with OMP_WAIT_POLICY=PASSIVE,
# and the faster counts. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are
# left as they are and reported. Every configuration runs in its own process,
# so each max RSS is that configuration's own.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
BENCH_PY=$HERE/bench_train.py
DATA=${AUTOENC_DATA:-}
ARCHIVE=$SRC/../shared/quickdraw10.tar.xz
MODELS=simple,deep,conv
LAYOUTS=1
THREADS=1,2
EPOCHS=
ROUNDS=
TIME_CAP=
QUICK=0
BUILD=$SRC/build/bench
BIN=
WORK=
RESULTS_COPY=
KEEP=0

die() { echo "run_bench_train.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA=${2:?}; shift 2 ;;
    --archive) ARCHIVE=${2:?}; shift 2 ;;
    --models) MODELS=${2:?}; shift 2 ;;
    --torch-layouts) LAYOUTS=${2:?}; shift 2 ;;
    --threads) THREADS=${2:?}; shift 2 ;;
    --epochs) EPOCHS=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --time-cap) TIME_CAP=${2:?}; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --build-dir) BUILD=${2:?}; shift 2 ;;
    --bin) BIN=${2:?}; shift 2 ;;
    --work) WORK=${2:?}; shift 2 ;;
    --results) RESULTS_COPY=${2:?}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for m in ${MODELS//,/ }; do
  case "$m" in simple|deep|conv|conv_bn8) ;; *) die "unknown model '$m' (simple, deep, conv, conv_bn8)" ;; esac
done
for l in ${LAYOUTS//,/ }; do
  case "$l" in 0|1) ;; *) die "bad --torch-layouts entry '$l' (1 channels_last, 0 NCHW)" ;; esac
done
for t in ${THREADS//,/ }; do
  case "$t" in ''|*[!0-9]*) die "bad thread count '$t'" ;; esac
done
# TIME_CAP_BIG: conv_bn8's cap when --time-cap is not given; its PyTorch
# epochs (56,180 images) took 40-500 s here (the slowest with OpenMP's
# default wait policy on a busy machine), and the equal-work check needs
# all of its epochs from at least one configuration
TIME_CAP_BIG=$TIME_CAP
if [ "$QUICK" = 1 ]; then
  : "${EPOCHS:=2}"; : "${ROUNDS:=1}"; ENC_REPS=1; GEMM_REPS=1; CHUNKS=64,256
  : "${TIME_CAP_BIG:=150}"; : "${TIME_CAP:=60}"
else
  : "${EPOCHS:=3}"; : "${ROUNDS:=3}"; ENC_REPS=2; GEMM_REPS=3; CHUNKS=64,128,256
  : "${TIME_CAP_BIG:=600}"; : "${TIME_CAP:=150}"
fi
case "$ROUNDS" in ''|*[!0-9]*|0) die "bad round count '$ROUNDS'" ;; esac
# shellcheck source=cmake/ensure_deps.sh
source "$SRC/cmake/ensure_deps.sh"
ae_ensure_packages "${AE_BENCH_PACKAGES[@]}" >&2 || die "installing the benchmark peers failed"
[ -x "$PY" ] || die "$PY not found (Debian's python3-torch is needed)"

T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

# ---- the C program -----------------------------------------------------------------
if [ -z "$BIN" ]; then
  BIN=$BUILD/tests/bench_train
  echo "== building bench_train in $BUILD" >&2
  if ! { [ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >&2; } ||
     ! cmake --build "$BUILD" --target bench_train -j2 >&2; then
    [ -x "$BIN" ] || die "building bench_train failed"
    echo "run_bench_train.sh: WARNING: the build failed; using the existing $BIN" >&2
  fi
fi
[ -x "$BIN" ] || die "no bench_train binary at $BIN"

# ---- work folder and data -------------------------------------------------------------
if [ -z "$WORK" ]; then
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-train.XXXXXX")
  [ "$KEEP" = 1 ] || trap 'rm -rf "$WORK"' EXIT
else
  mkdir -p "$WORK"
fi
if [ -z "$DATA" ]; then
  [ -f "$ARCHIVE" ] || die "no --data/AUTOENC_DATA and no archive $ARCHIVE"
  if [ ! -d "$WORK/quickdraw10" ]; then
    echo "== unpacking $ARCHIVE into $WORK" >&2
    tar -xJf "$ARCHIVE" -C "$WORK"
  fi
  DATA=$WORK/quickdraw10
fi
[ -d "$DATA" ] || die "data folder $DATA does not exist"
RES=$WORK/results.jsonl
: > "$RES"

# Runs one step: its JSON lines go to the results, anything else on its
# stdout and all of its stderr (progress) to our stderr.
collect() {
  local rc=0
  "$@" > "$WORK/step.out" || rc=$?
  grep '^{' "$WORK/step.out" >> "$RES" || true
  grep -v '^{' "$WORK/step.out" >&2 || true
  return $rc
}
run_c() { collect "$BIN" "$@"; }
# PY_ENV: extra VAR=value settings for one PyTorch process
PY_ENV=()
run_py() {
  collect env MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 \
    ${PY_ENV[@]+"${PY_ENV[@]}"} "$PY" "$BENCH_PY" "$@"
}

echo "== data: $DATA; models $MODELS; threads $THREADS; $EPOCHS epochs per configuration, $ROUNDS rounds" >&2
run_c flops || die "bench_train flops failed"
echo "== GEMM peak (start)" >&2
run_c gemm --threads "$THREADS" --reps "$GEMM_REPS" || die "bench_train gemm failed"
echo "== writing the training rows for PyTorch" >&2
run_c export --data "$DATA" --out "$WORK" || die "bench_train export failed"

for m in ${MODELS//,/ }; do
  BEAT=0
  CAP=$TIME_CAP
  [ "$m" != conv_bn8 ] || CAP=$TIME_CAP_BIG
  # the memory formats to try: only the image models have a choice
  case "$m" in conv|conv_bn8) M_LAYOUTS=$LAYOUTS; ENC_LAYOUTS=1,0 ;; *) M_LAYOUTS=1; ENC_LAYOUTS=1 ;; esac
  for round in $(seq 1 "$ROUNDS"); do
    echo "== $m: training, round $round of $ROUNDS" >&2
    for t in ${THREADS//,/ }; do
      run_c train --data "$DATA" --model "$m" --threads "$t" --epochs "$EPOCHS" ||
        die "bench_train train $m T=$t failed"
      # --beat: a PyTorch configuration projected > 3x slower than the fastest
      # one already measured stops early (it cannot be the best)
      for layout in ${M_LAYOUTS//,/ }; do
        for policy in default PASSIVE; do
          [ "$policy" = default ] || [ "$t" -gt 1 ] || continue
          # OpenMP's default wait policy spins; on a loaded machine that can make
          # several threads far slower than one, so with several threads PyTorch
          # also gets a run with OMP_WAIT_POLICY=PASSIVE
          PY_ENV=()
          [ "$policy" = default ] || PY_ENV=(OMP_WAIT_POLICY=PASSIVE)
          run_py train --work "$WORK" --model "$m" --threads "$t" --epochs "$EPOCHS" \
            --channels-last "$layout" --time-cap "$CAP" --beat "$BEAT" ||
            die "bench_train.py train $m T=$t failed"
          BEAT=$("$PY" -c 'import json, statistics, sys
best = float(sys.argv[3])
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("kind") == "train" and r["side"] == "pytorch" and r["model"] == sys.argv[2]:
        s = r["seconds"][1:] or r["seconds"]
        v = statistics.median(s)
        best = v if best == 0 else min(best, v)
print(best)' "$RES" "$m" "$BEAT")
        done
      done
    done
  done
  echo "== $m: encoding" >&2
  run_c encode --out "$WORK" --model "$m" --threads "$THREADS" --reps "$ENC_REPS" ||
    die "bench_train encode $m failed"
  PY_ENV=()
  run_py encode --work "$WORK" --model "$m" --threads "$THREADS" --chunks "$CHUNKS" \
    --channels-last "$ENC_LAYOUTS" --reps "$ENC_REPS" || die "bench_train.py encode $m failed"
  MULTI=$(echo "${THREADS//,/ }" | tr ' ' '\n' | awk '$1 > 1' | paste -sd, -)
  if [ -n "$MULTI" ]; then
    PY_ENV=(OMP_WAIT_POLICY=PASSIVE)
    run_py encode --work "$WORK" --model "$m" --threads "$MULTI" --chunks "$CHUNKS" \
      --channels-last "$ENC_LAYOUTS" --reps "$ENC_REPS" || die "bench_train.py encode $m (passive) failed"
  fi
  # PyTorch's figure is the best of all its (layout, policy, threads, chunk)
  # passes, spread over minutes of a shared machine's changing load; ours
  # runs again after them, so both sides' best passes see the same spells
  run_c encode --out "$WORK" --model "$m" --threads "$THREADS" --reps "$ENC_REPS" ||
    die "bench_train encode $m failed"
done
echo "== GEMM peak (end)" >&2
run_c gemm --threads "$THREADS" --reps "$GEMM_REPS" || die "bench_train gemm failed"

printf '{"kind": "meta", "cores": %s, "load_start": %s, "load_end": %s, "openblas_coretype": "%s", "openblas_l2_size": "%s", "elapsed_s": %s}\n' \
  "$(nproc)" "$LOAD_START" "$(cut -d' ' -f1 /proc/loadavg)" \
  "${OPENBLAS_CORETYPE:-unset}" "${OPENBLAS_L2_SIZE:-unset}" "$(( $(date +%s) - T_START ))" >> "$RES"
[ -z "$RESULTS_COPY" ] || cp "$RES" "$RESULTS_COPY"
if [ "$KEEP" = 1 ]; then echo "== work folder kept: $WORK" >&2; fi
QFLAG=()
if [ "$QUICK" = 1 ]; then QFLAG=(--quick); fi
"$PY" "$BENCH_PY" report "$RES" "${QFLAG[@]}"
