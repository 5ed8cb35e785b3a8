#!/usr/bin/env bash
# Data-parallel training over MPI against threads, side by side in one run:
# for each model, 1 rank x 2 threads (batch 2B) and 2 ranks x 1 thread
# (batch B per rank, the same rows per step), interleaved over --rounds,
# with the tutorial's recipe for --epochs epochs (early stopping off).
# Prints per configuration the training images per second (median over the
# rounds), the reduction time per step and bytes per step, the per-step
# compute time of 1 rank x 1 thread, and as its last line a JSON object.
# docs/scaling.md turns these into predictions for more nodes.
#
#   tests/bench/bench_mpi.sh [--build DIR] [--data DIR] [--models simple,deep,conv]
#                            [--epochs N] [--rounds N] [--batch B]
# Needs a build with -DAE_BUILD_MPI=ON -DAE_BUILD_EXAMPLES=ON (default: builds
# one in build/bench-mpi); the data default unpacks ../shared/quickdraw10.tar.xz
# into a temporary folder, removed at the end.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=$SRC/build/bench-mpi
DATA=
MODELS=simple,deep,conv
EPOCHS=2
ROUNDS=3
BATCH=32
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench_mpi.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=cmake/ensure_deps.sh
source "$SRC/cmake/ensure_deps.sh"
ae_ensure_packages build-essential cmake libopenblas-dev libpng-dev libopenmpi-dev openmpi-bin xz-utils >&2
BIN=$BUILD/examples/distributed_train
if [ ! -x "$BIN" ]; then
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAE_BUILD_MPI=ON -DAE_BUILD_TESTS=OFF \
    -DAE_BUILD_EXAMPLES=ON >&2
  cmake --build "$BUILD" --target distributed_train -j2 >&2
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-mpi.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
if [ -z "$DATA" ]; then
  tar -xJf "$SRC/../shared/quickdraw10.tar.xz" -C "$WORK"
  DATA=$WORK/quickdraw10
fi
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --mca btl self,vader --bind-to none)
run() { # ranks threads batch model -> the example's JSON line
  "${MPIRUN[@]}" -np "$1" "$BIN" --data "$DATA" --out "$WORK/out" --model "$4" \
    --epochs "$EPOCHS" --patience 0 --threads "$2" --batch "$3" | tail -n 1
}
RES=$WORK/results.jsonl
for m in ${MODELS//,/ }; do
  for r in $(seq 1 "$ROUNDS"); do
    echo "== $m round $r: 1 rank x 2 threads, 2 ranks x 1 thread, 1 rank x 1 thread" >&2
    printf '{"config": "1x2", "model": "%s", "run": %s}\n' "$m" "$(run 1 2 $((2 * BATCH)) "$m")" >> "$RES"
    printf '{"config": "2x1", "model": "%s", "run": %s}\n' "$m" "$(run 2 1 "$BATCH" "$m")" >> "$RES"
    printf '{"config": "1x1", "model": "%s", "run": %s}\n' "$m" "$(run 1 1 $((2 * BATCH)) "$m")" >> "$RES"
  done
done
/usr/bin/python3 - "$RES" "$EPOCHS" "$BATCH" <<'PY'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
epochs, batch = int(sys.argv[2]), int(sys.argv[3])
out = {}
preds = []
print("\n== data-parallel training: 2 ranks x 1 thread vs 1 rank x 2 threads (QuickDraw-10) ==")
print("%-7s %-14s %12s %12s %14s %14s" % ("model", "config", "img/s med", "img/s min", "reduce ms/step", "fit s med"))
for m in dict.fromkeys(r["model"] for r in recs):
    med = {}
    for cfg in ("1x1", "1x2", "2x1"):
        runs = [r["run"] for r in recs if r["model"] == m and r["config"] == cfg]
        rows = 70224  # QuickDraw-10 training rows shared by the ranks
        ips = [r["epochs"] * rows * 0.8 / r["fit_seconds"] for r in runs]
        med[cfg] = statistics.median(ips)
        red = statistics.median(r["reduce_ms_per_step"] for r in runs)
        fit = statistics.median(r["fit_seconds"] for r in runs)
        print("%-7s %-14s %12.0f %12.0f %14.3f %14.2f" % (m, {"1x1": "1 rank x 1 thr", "1x2": "1 rank x 2 thr", "2x1": "2 ranks x 1 thr"}[cfg], med[cfg], min(ips), red if cfg == "2x1" else 0, fit))
        out["%s_%s_img_s" % (m, cfg)] = round(med[cfg], 1)
        if cfg == "2x1":
            out["%s_reduce_ms_per_step" % m] = round(red, 3)
        if cfg == "1x1":
            steps = epochs * int(rows * 0.8) // (2 * batch)
            out["%s_compute_ms_per_step_batch%d" % (m, 2 * batch)] = round(1e3 * fit / steps, 3)
    out["%s_ranks_over_threads" % m] = round(med["2x1"] / med["1x2"], 3)
    print("%-7s 2 ranks x 1 thread / 1 rank x 2 threads: %.2fx" % (m, med["2x1"] / med["1x2"]))
    # the model of docs/scaling.md: per-step compute of one rank at batch B
    # (the 2-rank run's step time less its reduction), gradient bytes per step
    runs2 = [r["run"] for r in recs if r["model"] == m and r["config"] == "2x1"]
    steps2 = epochs * int(70224 // 2 * 0.8) // batch
    t_c = statistics.median(1e3 * r["fit_seconds"] / steps2 - r["reduce_ms_per_step"] for r in runs2)
    grad_bytes = {"simple": 50992, "deep": 222384, "conv": 4385}[m] * 4 + 4
    out["%s_rank_compute_ms_per_step" % m] = round(t_c, 4)
    out["%s_gradient_bytes_per_step" % m] = grad_bytes
    preds.append((m, t_c, grad_bytes))
ALPHA_US = 5.0  # per-message latency of one ring hop (RDMA / tuned TCP), an assumption
print("\n== predicted efficiency of P nodes (ring allreduce, no overlap; docs/scaling.md) ==")
print("%-7s %10s %10s %5s %10s %10s %10s" % ("model", "compute", "grad KB", "P", "10 Gbit/s", "25 Gbit/s", "100 Gbit/s"))
for m, t_c, nbytes in preds:
    for P in (8, 64):
        effs = []
        for gbit in (10, 25, 100):
            t_ar = 1e3 * (2 * (P - 1) / P * nbytes * 8 / (gbit * 1e9) + 2 * (P - 1) * ALPHA_US * 1e-6)
            eff = t_c / (t_c + t_ar)
            effs.append(eff)
            out["pred_eff_%s_P%d_%dG" % (m, P, gbit)] = round(eff, 3)
        print("%-7s %8.3fms %10.1f %5d %10.2f %10.2f %10.2f" % (m, t_c, nbytes / 1024, P, *effs))
print(json.dumps(out))
PY
