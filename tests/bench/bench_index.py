#!/usr/bin/python3
"""Index benchmark: libautoenc's backends against scikit-learn BallTree, FAISS
IndexFlatL2 / IndexHNSWFlat and hnswlib, on the same files in the same run.

Run with the system interpreter (Debian packages python3-sklearn,
python3-faiss, python3-hnswlib):

    /usr/bin/python3 tests/bench/bench_index.py \\
        --bench-bin build/bench/tests/bench_index \\
        --quickdraw build/data/quickdraw10 [--workdir build/qd-bench] [--proj random|pca]

or on existing float32 .npy files:

    /usr/bin/python3 tests/bench/bench_index.py --bench-bin ... --codes C.npy --queries Q.npy

--quickdraw builds stand-in codes until the encoder exists: every drawing's
pixels scaled to [0, 1], a stratified split of 7,802 queries (the rest,
70,226, indexed), projected to 128 dimensions (random Gaussian projection or
PCA fitted on the indexed part).

--store runs the living-store measurements instead (bench_index --store):
HNSW insert throughput against hnswlib's add_items on one thread (both start
from the same first 1,000 codes and add the rest in batches of 1,000), and
filtered search keeping 10% of the ids: HNSW's recall@k and queries/s against
the exact filtered brute force (Debian's hnswlib 0.6.2 has no filter to
compare with). Last line: a JSON object with the ratios of issue 13's bars.

Prints a table, then as the last line a JSON object with the ratios the
targets are stated in:
  balltree: sklearn ms/query / ours (target >= 2)
  brute:    our batch queries/s / FAISS IndexFlatL2's (target >= 1)
  hnsw:     at the smallest swept ef reaching recall@10 >= 0.99, our single
            query/s over hnswlib's (target >= 1), and our p99 latency (< 1 ms).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1048576.0


def prepare_quickdraw(src, workdir, proj, dim, n_queries, seed):
    from sklearn.model_selection import train_test_split

    os.makedirs(workdir, exist_ok=True)
    codes_path = os.path.join(workdir, f"codes_{proj}{dim}.npy")
    queries_path = os.path.join(workdir, f"queries_{proj}{dim}.npy")
    if os.path.exists(codes_path) and os.path.exists(queries_path):
        return codes_path, queries_path
    xs, ys = [], []
    for i, name in enumerate(sorted(f for f in os.listdir(src) if f.endswith(".npy"))):
        a = np.load(os.path.join(src, name))
        xs.append(a)
        ys.append(np.full(len(a), i))
    x = np.concatenate(xs).astype(np.float32) / 255.0
    y = np.concatenate(ys)
    xtr, xte = train_test_split(x, test_size=n_queries, stratify=y, random_state=seed)
    if proj == "pca":
        from sklearn.decomposition import PCA

        p = PCA(n_components=dim, random_state=seed).fit(xtr)
        ctr, cte = p.transform(xtr), p.transform(xte)
    else:
        r = np.random.default_rng(seed).standard_normal((x.shape[1], dim)) / np.sqrt(dim)
        ctr, cte = xtr @ r, xte @ r
    np.save(codes_path, np.ascontiguousarray(ctr, dtype=np.float32))
    np.save(queries_path, np.ascontiguousarray(cte, dtype=np.float32))
    return codes_path, queries_path


def ground_truth(x, q, k, extra=64):
    """Exact k nearest, ties by smaller index: float32 GEMM picks k + extra
    candidates per query, which are ranked again in float64."""
    x64, out = x.astype(np.float64), np.empty((len(q), k), dtype=np.int64)
    xn = (x * x).sum(1)
    for s in range(0, len(q), 1024):
        qb = q[s:s + 1024]
        d = xn[None, :] - 2.0 * (qb @ x.T)
        part = np.argpartition(d, k + extra, axis=1)[:, :k + extra]
        for i in range(len(qb)):
            c = part[i]
            dd = ((x64[c] - qb[i].astype(np.float64)) ** 2).sum(1)
            o = np.lexsort((c, dd))
            out[s + i] = c[o[:k]]
    return out


def recall(got, truth):
    k = truth.shape[1]
    return float(np.mean([len(set(g[:k]) & set(t)) / k for g, t in zip(got, truth)]))


def best_batch(fn, nq, reps=3):
    """Best of reps timings of one batch call (the machine may be shared)."""
    best, out = 0.0, None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = max(best, nq / (time.perf_counter() - t0))
    return best, out


def single_times(fn, q, n):
    lat = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn(q[i:i + 1])
        lat[i] = time.perf_counter() - t0
    return lat


def row(rows, lib, backend, param, build_s, mem_mb, lat, batch_qps, rec, note=""):
    r = {"lib": lib, "backend": backend, "param": param, "build_s": build_s, "mem_mb": mem_mb,
         "single_n": int(len(lat)) if lat is not None else 0,
         "p50_ms": float(np.percentile(lat, 50) * 1e3) if lat is not None else None,
         "p99_ms": float(np.percentile(lat, 99) * 1e3) if lat is not None else None,
         "single_qps": float(len(lat) / lat.sum()) if lat is not None else None,
         "batch_qps": batch_qps, "recall": rec, "note": note}
    rows.append(r)
    print_row(r)
    return r


def fmt(v, f):
    return f.format(v) if v is not None else "-"


def print_row(r):
    print(f"{r['lib']:<10} {r['backend']:<9} {r['param']:<9} {fmt(r['build_s'], '{:8.2f}'):>8} "
          f"{fmt(r['mem_mb'], '{:8.1f}'):>8} {fmt(r['p50_ms'], '{:8.3f}'):>8} "
          f"{fmt(r['p99_ms'], '{:8.3f}'):>8} {fmt(r['single_qps'], '{:9.1f}'):>9} "
          f"{fmt(r['batch_qps'], '{:9.1f}'):>9} {fmt(r['recall'], '{:7.4f}'):>7}  {r['note']}",
          flush=True)


def store_bench(a, x, q):
    """The --store measurements, ours and hnswlib's side by side."""
    n, d, k = x.shape[0], x.shape[1], a.k
    print(f"# store: codes {a.codes} {x.shape}, queries {q.shape}, k={k}, M={a.M}, "
          f"efc={a.efc}, cpus={os.cpu_count()}", flush=True)
    cmd = [a.bench_bin, a.codes, a.queries, "--k", str(k), "--store", "--M", str(a.M),
           "--efc", str(a.efc), "--ef", a.ef]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    for r in rows:
        print(json.dumps(r), flush=True)
    res = {"n": int(n), "d": int(d), "nq": int(q.shape[0]), "k": k}
    ins = next(r for r in rows if r["param"] == "insert")
    res["inserts_per_s"] = ins["inserts_per_s"]
    if "hnswlib" not in set(a.skip.split(",")):
        import hnswlib

        first, batch = ins["first"], 1000
        hi = hnswlib.Index(space="l2", dim=d)
        hi.init_index(max_elements=n, ef_construction=a.efc, M=a.M, random_seed=100)
        hi.add_items(x[:first], np.arange(first), num_threads=1)
        t0 = time.perf_counter()
        for at in range(first, n, batch):
            hi.add_items(x[at:at + batch], np.arange(at, min(at + batch, n)), num_threads=1)
        dt = time.perf_counter() - t0
        res["hnswlib_inserts_per_s"] = (n - first) / dt
        res["insert_ratio_vs_hnswlib"] = ins["inserts_per_s"] / res["hnswlib_inserts_per_s"]
        print(f"# hnswlib add_items: {n - first} codes in {dt:.2f} s, "
              f"{res['hnswlib_inserts_per_s']:.0f}/s (1 thread)", flush=True)
    brute = next(r for r in rows if r["backend"] == "brute")
    ok = [r for r in rows if r["param"].startswith("filter10 ef=") and r["recall"] >= 0.99]
    best = min(ok, key=lambda r: int(r["param"].split("=")[1])) if ok else None
    res["filtered_brute_qps"] = brute["single_qps"]
    if best:
        res.update(filtered_param=best["param"], filtered_recall=best["recall"],
                   filtered_qps=best["single_qps"],
                   filtered_ratio_vs_brute=best["single_qps"] / brute["single_qps"])
    res["targets"] = {
        "insert_ge_hnswlib": res.get("insert_ratio_vs_hnswlib", 0) >= 1,
        "filtered_recall_0.99_reached": best is not None,
        "filtered_5x_brute": res.get("filtered_ratio_vs_brute", 0) >= 5,
    }
    print(json.dumps(res))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench-bin", required=True, help="path to the built bench_index program")
    ap.add_argument("--codes"), ap.add_argument("--queries")
    ap.add_argument("--quickdraw", help="directory of QuickDraw-10 .npy files")
    ap.add_argument("--workdir", default=os.path.join(REPO, "build", "qd-bench"),
                    help="where --quickdraw writes its codes (default: build/qd-bench in the "
                         "repository)")
    ap.add_argument("--proj", choices=["random", "pca"], default="random")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--n-queries", type=int, default=7802)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--ef", default="16,32,64,128,192,256,320")
    ap.add_argument("--leaf", type=int, default=40)
    ap.add_argument("--single-exact", type=int, default=1000,
                    help="queries timed one by one for exact methods (all for HNSW)")
    ap.add_argument("--single-sklearn", type=int, default=200,
                    help="queries timed one by one for sklearn BallTree (slow)")
    ap.add_argument("--threads", type=int, default=0, help="threads for batch calls (0: all)")
    ap.add_argument("--skip", default="", help="comma list of peers to skip: sklearn,faiss,hnswlib")
    ap.add_argument("--store", action="store_true",
                    help="insert throughput and filtered search instead (see above)")
    a = ap.parse_args()

    if a.quickdraw:
        a.codes, a.queries = prepare_quickdraw(a.quickdraw, a.workdir, a.proj, a.dim,
                                               a.n_queries, 0)
    if not a.codes or not a.queries:
        ap.error("need --codes and --queries, or --quickdraw")
    x, q = np.load(a.codes), np.load(a.queries)
    assert x.dtype == np.float32 and q.dtype == np.float32 and x.shape[1] == q.shape[1]
    n, d, nq, k = x.shape[0], x.shape[1], q.shape[0], a.k
    if a.store:
        return store_bench(a, x, q)
    print(f"# codes {a.codes} {x.shape}, queries {a.queries} {q.shape}, k={k}, "
          f"cpus={os.cpu_count()}", flush=True)
    t0 = time.perf_counter()
    truth = ground_truth(x, q, k)
    print(f"# float64 ground truth in {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"{'lib':<10} {'backend':<9} {'param':<9} {'build_s':>8} {'mem_MB':>8} {'p50_ms':>8} "
          f"{'p99_ms':>8} {'single/s':>9} {'batch/s':>9} {'recall':>7}  note")
    rows = []
    efs = [int(e) for e in a.ef.split(",")]
    skip = set(a.skip.split(","))
    ns_exact = min(a.single_exact, nq)

    # ---- libautoenc (C program) ----
    cmd = [a.bench_bin, a.codes, a.queries, "--k", str(k), "--json", "--leaf", str(a.leaf),
           "--M", str(a.M), "--efc", str(a.efc), "--ef", a.ef, "--single", str(ns_exact)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    ours = []
    for line in out.stdout.splitlines():
        r = json.loads(line)
        r["mem_mb"] = r.pop("index_mb")
        r["note"] = f"rss+{r.pop('rss_delta_mb'):.1f}MB; build 1 thread"
        for key in ("mean_ms",):
            r.pop(key, None)
        ours.append(r)
        rows.append(r)
        print_row(r)

    # ---- scikit-learn BallTree ----
    if "sklearn" not in skip:
        from sklearn.neighbors import BallTree

        m0 = rss_mb()
        t0 = time.perf_counter()
        bt = BallTree(x, leaf_size=a.leaf)
        build = time.perf_counter() - t0
        ns = min(a.single_sklearn, nq)
        lat = single_times(lambda qq: bt.query(qq, k=k), q, ns)
        _, ind = bt.query(q[:ns], k=k)
        row(rows, "sklearn", "balltree", f"leaf={a.leaf}", build, rss_mb() - m0, lat, None,
            recall(ind, truth[:ns]), f"single on first {ns} queries; mem = RSS delta")
        del bt

    # ---- FAISS ----
    if "faiss" not in skip:
        import faiss

        if a.threads:
            faiss.omp_set_num_threads(a.threads)
        m0 = rss_mb()
        t0 = time.perf_counter()
        fl = faiss.IndexFlatL2(d)
        fl.add(x)
        build = time.perf_counter() - t0
        bq, (_, ind) = best_batch(lambda: fl.search(q, k), nq)
        batch_threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # single queries: no OpenMP wake-up per call
        lat = single_times(lambda qq: fl.search(qq, k), q, ns_exact)
        faiss.omp_set_num_threads(batch_threads)
        row(rows, "faiss", "flatL2", "-", build, rss_mb() - m0, lat, bq, recall(ind, truth),
            f"batch threads={batch_threads}; single 1 thread")
        del fl

        m0 = rss_mb()
        t0 = time.perf_counter()
        fh = faiss.IndexHNSWFlat(d, a.M)
        fh.hnsw.efConstruction = a.efc
        fh.add(x)
        build = time.perf_counter() - t0
        mem = rss_mb() - m0
        for ef in efs:
            fh.hnsw.efSearch = ef
            bq, (_, ind) = best_batch(lambda: fh.search(q, k), nq)
            faiss.omp_set_num_threads(1)
            lat = single_times(lambda qq: fh.search(qq, k), q, nq)
            faiss.omp_set_num_threads(batch_threads)
            row(rows, "faiss", "hnsw", f"ef={ef}", build, mem, lat, bq, recall(ind, truth),
                f"build+batch threads={batch_threads}; single 1 thread")
        del fh

    # ---- hnswlib ----
    if "hnswlib" not in skip:
        import hnswlib

        m0 = rss_mb()
        t0 = time.perf_counter()
        hi = hnswlib.Index(space="l2", dim=d)
        hi.init_index(max_elements=n, ef_construction=a.efc, M=a.M, random_seed=100)
        hi.add_items(x, np.arange(n), num_threads=1)
        build = time.perf_counter() - t0
        mem = rss_mb() - m0
        for ef in efs:
            hi.set_ef(max(ef, k))
            b1, _ = best_batch(lambda: hi.knn_query(q, k=k, num_threads=1), nq)
            bq, (ind, _) = best_batch(lambda: hi.knn_query(q, k=k, num_threads=a.threads or -1), nq)
            lat = single_times(lambda qq: hi.knn_query(qq, k=k, num_threads=1), q, nq)
            r = row(rows, "hnswlib", "hnsw", f"ef={ef}", build, mem, lat, bq,
                    recall(ind, truth), f"1-thread batch {b1:.0f}/s; build 1 thread")
            r["batch1_qps"] = b1
        del hi

    # ---- ratios ----
    def get(lib, backend, param=None):
        for r in rows:
            if r["lib"] == lib and r["backend"] == backend and (param is None or r["param"] == param):
                return r
        return None

    def first_at(lib, backend, target):
        c = [r for r in rows if r["lib"] == lib and r["backend"] == backend and r["recall"] >= target]
        return min(c, key=lambda r: int(r["param"].split("=")[1])) if c else None

    res = {"n": int(n), "d": int(d), "nq": int(nq), "k": k, "codes": a.codes}
    ob, sk = get("libautoenc", "balltree"), get("sklearn", "balltree")
    if ob and sk:
        res["balltree_ms_per_query"] = 1e3 / ob["single_qps"]
        res["sklearn_balltree_ms_per_query"] = 1e3 / sk["single_qps"]
        res["balltree_speedup_vs_sklearn"] = sk["single_qps"] and ob["single_qps"] / sk["single_qps"]
        res["balltree_build_s"], res["sklearn_build_s"] = ob["build_s"], sk["build_s"]
    obr, ff = get("libautoenc", "brute"), get("faiss", "flatL2")
    if obr and ff:
        res["brute_batch_qps"], res["faiss_flat_batch_qps"] = obr["batch_qps"], ff["batch_qps"]
        res["brute_batch_ratio_vs_faiss_flat"] = obr["batch_qps"] / ff["batch_qps"]
    oh, hl, fh_ = (first_at("libautoenc", "hnsw", 0.99), first_at("hnswlib", "hnsw", 0.99),
                   first_at("faiss", "hnsw", 0.99))
    if oh:
        res.update(hnsw_param=oh["param"], hnsw_recall=oh["recall"], hnsw_single_qps=oh["single_qps"],
                   hnsw_p99_ms=oh["p99_ms"], hnsw_p50_ms=oh["p50_ms"], hnsw_build_s=oh["build_s"])
    if hl:
        res.update(hnswlib_param=hl["param"], hnswlib_recall=hl["recall"],
                   hnswlib_single_qps=hl["single_qps"], hnswlib_batch1_qps=hl["batch1_qps"],
                   hnswlib_build_s=hl["build_s"])
    if fh_:
        res.update(faiss_hnsw_param=fh_["param"], faiss_hnsw_single_qps=fh_["single_qps"])
    if oh and hl:
        res["hnsw_single_ratio_vs_hnswlib"] = oh["single_qps"] / hl["single_qps"]
        res["hnsw_single_ratio_vs_hnswlib_1thread_batch"] = oh["single_qps"] / hl["batch1_qps"]
    res["targets"] = {
        "balltree_2x_sklearn": res.get("balltree_speedup_vs_sklearn", 0) >= 2,
        "brute_ge_faiss_flat": res.get("brute_batch_ratio_vs_faiss_flat", 0) >= 1,
        "hnsw_recall_0.99_reached": oh is not None,
        "hnsw_ge_hnswlib": res.get("hnsw_single_ratio_vs_hnswlib", 0) >= 1,
        "hnsw_p99_lt_1ms": oh is not None and oh["p99_ms"] < 1.0,
    }
    print(json.dumps(res))


if __name__ == "__main__":
    sys.exit(main())
