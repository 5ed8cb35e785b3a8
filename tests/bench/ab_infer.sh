#!/usr/bin/env bash
# A/B inference throughput of two bench_train binaries (e.g. one built from
# the base of a change, one from the change), side by side from one run.
#
#   tests/bench/ab_infer.sh A_BIN B_BIN WORKDIR [ROUNDS] [MODES] [MODELS] [THREADS]
#
# WORKDIR holds train.npy and test.npy (`bench_train export --data DIR --out
# WORKDIR`). Each round runs, for every mode (encode, predict), model and
# binary in turn, `bench_train MODE --out WORKDIR --model M --threads T
# --reps 5`, alternating A and B so both see the same machine load; the table
# keeps each configuration's best images/s over the rounds.
# Defaults: ROUNDS 3, MODES encode, MODELS simple,deep,conv, THREADS 1,2.
set -euo pipefail

if [ $# -lt 3 ]; then
    sed -n '2,13p' "$0" >&2
    exit 2
fi
A=$1 B=$2 WORK=$3 ROUNDS=${4:-3} MODES=${5:-encode} MODELS=${6:-simple,deep,conv}
THREADS=${7:-1,2}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

for ((r = 1; r <= ROUNDS; r++)); do
    for mode in ${MODES//,/ }; do
        for model in ${MODELS//,/ }; do
            for side in A B; do
                bin=$A
                [ "$side" = B ] && bin=$B
                "$bin" "$mode" --out "$WORK" --model "$model" --threads "$THREADS" --reps 5 \
                    2>/dev/null | sed "s/^{/{\"ab\": \"$side\", /" >>"$OUT"
            done
        done
    done
done

/usr/bin/python3 - "$OUT" "$A" "$B" <<'EOF'
import json, sys
best = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = (r["kind"], r["model"], r["threads"])
    best.setdefault(key, {})
    best[key][r["ab"]] = max(best[key].get(r["ab"], 0), r["images_per_second"])
print(f"A = {sys.argv[2]}\nB = {sys.argv[3]}")
print(f"{'mode':8} {'model':7} {'T':>2} {'A img/s':>11} {'B img/s':>11} {'B/A':>6}")
for (kind, model, t), v in sorted(best.items()):
    a, b = v.get("A", 0), v.get("B", 0)
    print(f"{kind:8} {model:7} {t:>2} {a:>11.0f} {b:>11.0f} {b / a if a else 0:>6.2f}")
EOF
