#!/usr/bin/python3
"""Training / encoding benchmark, PyTorch side, and the report.

Run by tests/bench/run_bench_train.sh; use /usr/bin/python3 (Debian's
python3-torch). Three sub-commands:

  bench_train.py train  --work DIR --model M --threads T --epochs E [--seed S]
      The reference model M (simple, deep, conv: the tutorial's; conv_bn8:
      issue 11's retrieval-grade conv + batch norm + transposed conv model,
      libautoenc's AE_PRESET_CONV_BN8) in PyTorch, trained with the
      tutorial's recipe on DIR/train.npy (the rows libautoenc trains on,
      written by `bench_train export`): Keras' protocol, the last 20% of the
      rows are validation and never trained; Nadam (lr 1e-3, betas 0.9/0.999,
      eps 1e-7, momentum decay 0.004), binary cross-entropy, batch 64 (simple,
      deep), 32 (conv) or 128 (conv_bn8), a fresh shuffle every epoch. The
      inputs are one pre-loaded tensor; a batch is an index_select of it.
      Seconds per epoch cover the training steps only (as libautoenc's
      history does); the validation BCE (predictions clamped to [1e-7,
      1-1e-7], as Keras and libautoenc) is computed after each epoch, outside
      the timing, in eval mode (batch norm on its running statistics, as
      libautoenc's validation). --channels-last 1/0 picks the memory format
      of the image models (conv, conv_bn8).

  bench_train.py encode --work DIR --model M [--threads 1,2] [--chunks 64,128,256] [--reps R]
      Every drawing (DIR/train.npy + DIR/test.npy) through the encoder
      sub-network (up to and including the code layer; eval mode, so batch
      norm uses its running statistics) under torch.inference_mode(), in
      chunks; one line per (layout, threads, chunk), best of R passes after a
      warm-up. --channels-last takes a list (1,0: both memory formats).

  bench_train.py report RESULTS.jsonl [--quick]
      Reads every JSON line of the run (C and PyTorch) and prints the table,
      then, as the last line, one JSON object with every ratio. Needs no torch.

Every measurement is one JSON line on stdout; progress goes to stderr. Peak
memory is resource.getrusage(RUSAGE_SELF).ru_maxrss of the process, so the
driver runs each training configuration in its own process.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

VALIDATION_SPLIT = 0.2
BATCH = {"simple": 64, "deep": 64, "conv": 32, "conv_bn8": 128}
MODELS = ("simple", "deep", "conv", "conv_bn8")
# image models: (1, 28, 28) inputs, channels_last by default
CONV_MODELS = ("conv", "conv_bn8")


def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---- models --------------------------------------------------------------------------------

def build(name, logits):
    """(full model, encoder sub-network, input shape). With logits=True the
    final sigmoid is left out (the loss applies it: BCEWithLogits)."""
    import torch.nn as nn
    if name == "simple":
        enc = nn.Sequential(nn.Linear(784, 32), nn.ReLU())
        dec = [nn.Linear(32, 784)]
        shape = (784,)
    elif name == "deep":
        enc = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                            nn.Linear(64, 32), nn.ReLU())
        dec = [nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 784)]
        shape = (784,)
    elif name == "conv":
        # Keras' 'same' 2x2 pooling of 7 rounds up to 4: ceil_mode=True.
        enc = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),   # 14x14x16
            nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),   # 7x7x8
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True))    # 4x4x8
        dec = [nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),    # 8x8x8
               nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),    # 16x16x8
               nn.Conv2d(8, 16, 3, padding=0), nn.ReLU(), nn.Upsample(scale_factor=2),   # 28x28x16
               nn.Conv2d(16, 1, 3, padding=1)]                                           # 28x28x1
        shape = (1, 28, 28)
    elif name == "conv_bn8":
        # libautoenc's AE_PRESET_CONV_BN8 (issue 11's retrieval-grade model).
        # Keras 'same' shapes: a 3x3 stride-2 conv of 28 pads 1 (28 -> 14 ->
        # 7; Keras puts the pad at the bottom/right, padding=1 on both sides
        # samples one pixel earlier: same shapes and FLOPs); a 4x4 stride-2
        # transposed conv crops 1 on each side (padding=1: 7 -> 14 -> 28).
        # Batch norm as Keras' defaults: momentum 0.99 (PyTorch's 0.01), eps
        # 1e-3; convolutions keep their biases, as the preset's.
        w = 8

        def bn(c):
            return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)
        enc = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), bn(w), nn.ReLU(),                          # 28x28xw
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), bn(2 * w), nn.ReLU(),        # 14x14x2w
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), bn(4 * w), nn.ReLU(),    # 7x7x4w
            nn.Flatten(), nn.Linear(4 * w * 7 * 7, 32))                               # code
        dec = [nn.Linear(32, 4 * w * 7 * 7), nn.ReLU(), nn.Unflatten(1, (4 * w, 7, 7)),
               nn.ConvTranspose2d(4 * w, 2 * w, 4, stride=2, padding=1), bn(2 * w), nn.ReLU(),
               nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1), bn(w), nn.ReLU(),  # 28x28xw
               nn.Conv2d(w, 1, 3, padding=1)]                                           # 28x28x1
        shape = (1, 28, 28)
    else:
        raise SystemExit("unknown model %r" % name)
    if not logits:
        dec.append(nn.Sigmoid())
    full = nn.Sequential(*enc, *dec)
    # Keras' defaults, as libautoenc: Glorot-uniform kernels, zero biases
    # (batch norm: PyTorch's gamma 1, beta 0, as Keras)
    for mod in full.modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(mod.weight)
            nn.init.zeros_(mod.bias)
    return full, enc, shape


def load_rows(work, names):
    import numpy as np
    import torch
    arrays = [np.load(os.path.join(work, n), mmap_mode="r") for n in names]
    n = sum(a.shape[0] for a in arrays)
    x = torch.empty((n, arrays[0].shape[1]), dtype=torch.float32)
    view = x.numpy()  # shares x's memory: one copy of the rows, no temporaries
    at = 0
    for a in arrays:
        view[at:at + a.shape[0]] = a
        at += a.shape[0]
    del arrays
    return x


def val_bce(model, xval, logits, chunk=1024):
    """Mean BCE with predictions clamped to [1e-7, 1 - 1e-7] (Keras, libautoenc)."""
    import torch
    total = 0.0
    eps = 1e-7
    with torch.inference_mode():
        for i in range(0, xval.shape[0], chunk):
            x = xval[i:i + chunk]
            p = model(x)
            if logits:
                p = torch.sigmoid(p)
            p = p.double().clamp(eps, 1 - eps)
            t = x.double()
            total += float(-(t * torch.log(p) + (1 - t) * torch.log1p(-p)).sum())
    return total / xval.numel()


# ---- train ------------------------------------------------------------------------------------

def cmd_train(a):
    import torch
    torch.set_num_threads(a.threads)
    # flush denormals, as libautoenc's fit does: without it PyTorch's later
    # epochs slow down as small gradients and moments turn denormal
    torch.set_flush_denormal(True)
    torch.manual_seed(a.seed)
    logits = a.loss == "logits"
    t0 = time.perf_counter()
    x = load_rows(a.work, ["train.npy"])
    n = x.shape[0]
    n_fit = int(math.floor(n * (1 - VALIDATION_SPLIT)))
    model, _, shape = build(a.model, logits)
    x = x.view((n,) + shape)
    if a.channels_last and a.model in CONV_MODELS:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    xfit, xval = x[:n_fit], x[n_fit:]
    bs = BATCH[a.model]
    opt = torch.optim.NAdam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7,
                            momentum_decay=0.004, foreach=bool(a.foreach))
    lossfn = torch.nn.BCEWithLogitsLoss() if logits else torch.nn.BCELoss()
    gen = torch.Generator().manual_seed(a.seed)
    log("  pytorch %s T=%d: %d rows (%d trained, %d validation) loaded in %.2f s"
        % (a.model, a.threads, n, n_fit, n - n_fit, time.perf_counter() - t0))
    seconds, losses, vals = [], [], []
    steps = (n_fit + bs - 1) // bs
    capped = False
    t_begin = time.perf_counter()
    for epoch in range(a.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n_fit, generator=gen)
        total = torch.zeros((), dtype=torch.float64)
        done = 0
        for s in range(steps):
            idx = perm[s * bs:(s + 1) * bs]
            xb = xfit.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = lossfn(out, xb)
            loss.backward()
            opt.step()
            total += loss.detach() * idx.shape[0]
            done += idx.shape[0]
            # a pathologically slow configuration (e.g. OpenMP threads spinning
            # on a loaded machine) must not eat the run's time budget: past the
            # cap, the epoch's time is extrapolated from its finished steps
            if s % 50 == 49:
                now = time.perf_counter()
                if a.time_cap and now - t_begin > a.time_cap:
                    capped = True
                    break
                # hopeless: projected far slower than a configuration already run
                if (a.beat and now - t0 > 10 and s + 1 < steps
                        and (now - t0) * n_fit / done > 3 * a.beat):
                    capped = True
                    break
        dt = time.perf_counter() - t0
        if capped and done < n_fit:
            seconds.append(dt * n_fit / done)
            log("  pytorch %s T=%d epoch %d: stopped after %d of %d steps (time cap %g s, or "
                "over 3x the %g s/epoch of a configuration already run); epoch time "
                "extrapolated: %.2f s" % (a.model, a.threads, epoch + 1, s + 1, steps,
                                          a.time_cap, a.beat, seconds[-1]))
            break
        model.eval()
        v = val_bce(model, xval, logits)
        seconds.append(dt)
        losses.append(float(total) / n_fit)
        vals.append(v)
        log("  pytorch %s T=%d epoch %d: %d steps %.2f s %.0f img/s loss %.5f val %.5f"
            % (a.model, a.threads, epoch + 1, steps, dt, n_fit / dt, losses[-1], v))
        if a.time_cap and epoch + 1 < a.epochs and time.perf_counter() - t_begin > a.time_cap:
            capped = True
            log("  pytorch %s T=%d: time cap (%g s) reached after %d epochs"
                % (a.model, a.threads, a.time_cap, epoch + 1))
            break
    print(json.dumps({"kind": "train", "side": "pytorch", "model": a.model, "threads": a.threads,
                      "omp_wait": os.environ.get("OMP_WAIT_POLICY", "default"),
                      "batch": bs, "fit_rows": n_fit, "loss_fn": a.loss,
                      "channels_last": bool(a.channels_last and a.model in CONV_MODELS),
                      "seconds": [round(s, 4) for s in seconds],
                      "train_loss": [round(v, 6) for v in losses],
                      "val_bce": [round(v, 6) for v in vals],
                      "capped": capped,
                      "maxrss_mb": round(maxrss_mb(), 1),
                      "torch": torch.__version__}), flush=True)


# ---- encode -------------------------------------------------------------------------------------

def cmd_encode(a):
    import torch
    rows = load_rows(a.work, ["train.npy", "test.npy"])
    n = rows.shape[0]
    best_all = float("inf")  # best seconds per pass so far in this process
    layouts = [int(v) for v in a.channels_last.split(",")]
    if a.model not in CONV_MODELS:
        layouts = layouts[:1]  # no memory format to choose
    for cl in layouts:
        torch.manual_seed(a.seed)
        _, enc, shape = build(a.model, True)
        enc.eval()
        x = rows.view((n,) + shape)
        if cl and a.model in CONV_MODELS:
            enc = enc.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        best_all = encode_layout(a, torch, enc, x, bool(cl and a.model in CONV_MODELS), best_all)


def encode_layout(a, torch, enc, x, channels_last, best_all):
    """Every (threads, chunk) of one memory format; returns the best seconds
    per pass so far."""
    n = x.shape[0]
    with torch.inference_mode():
        code = enc(x[:2]).reshape(2, -1).shape[1]
    codes = torch.empty((n, code), dtype=torch.float32)
    for t in [int(v) for v in a.threads.split(",")]:
        torch.set_num_threads(t)
        for chunk in [int(v) for v in a.chunks.split(",")]:
            def one_pass(rows, give_up):
                """Seconds of one pass over rows; a pass projected over
                give_up seconds stops and returns its extrapolated time."""
                t0 = time.perf_counter()
                with torch.inference_mode():
                    for i in range(0, rows, chunk):
                        c = enc(x[i:i + chunk])
                        codes[i:i + c.shape[0]].copy_(c.reshape(c.shape[0], -1))
                        if i % (chunk * 32) == 0 and i:
                            el = time.perf_counter() - t0
                            if el > 5 and el * rows / (i + c.shape[0]) > give_up:
                                return el * rows / (i + c.shape[0]), True
                return time.perf_counter() - t0, False
            one_pass(min(n, 4096), float("inf"))  # warm-up
            times, capped = [], False
            for _ in range(a.reps):
                dt, capped = one_pass(n, 3 * best_all)
                times.append(dt)
                if capped:
                    break
            best = min(times)
            best_all = min(best_all, best)
            log("  pytorch encode %s%s T=%d chunk %d: best %.3f s (%.0f img/s)%s"
                % (a.model, "" if channels_last or a.model not in CONV_MODELS else " nchw",
                   t, chunk, best, n / best,
                   " (stopped: projected > 3x slower than the best so far)" if capped else ""))
            print(json.dumps({"kind": "encode", "side": "pytorch", "model": a.model,
                              "omp_wait": os.environ.get("OMP_WAIT_POLICY", "default"),
                              "threads": t, "chunk": chunk, "rows": n, "code": code,
                              "channels_last": channels_last,
                              "best_seconds": round(best, 4),
                              "median_seconds": round(statistics.median(times), 4),
                              "images_per_second": round(n / best, 1), "capped": capped,
                              "maxrss_mb": round(maxrss_mb(), 1)}), flush=True)
    return best_all


# ---- report -----------------------------------------------------------------------------------------

TARGET_TRAIN = {"simple": 6.0, "deep": 3.0, "conv": 2.0, "conv_bn8": 2.0}
TARGET_ENCODE = 1.5
TARGET_PEAK = 0.50
TARGET_BCE = 0.03


def timed_median(r):
    """Median seconds of the epochs after the first (warm-up) one; the only
    epoch if there is just one."""
    s = r["seconds"]
    return statistics.median(s[1:] if len(s) > 1 else s)


def label(r):
    """Side as shown in the tables: pytorch runs with OMP_WAIT_POLICY=PASSIVE
    are told apart from those with OpenMP's default policy, and image models
    run in the contiguous (NCHW) memory format from channels_last ones."""
    if r["side"] != "pytorch":
        return r["side"]
    s = "pytorch"
    if r.get("omp_wait", "default") != "default":
        s += "/" + r["omp_wait"].lower()[:7]
    if r["model"] in CONV_MODELS and not r.get("channels_last", True):
        s += "/nchw"
    return s


def config_note(r):
    """', OMP passive' and/or ', NCHW' for a PyTorch configuration other than
    the plain one"""
    s = ""
    if r.get("omp_wait", "default") != "default":
        s += ", OMP passive"
    if r["model"] in CONV_MODELS and not r.get("channels_last", True):
        s += ", NCHW"
    return s


def cmd_report(a):
    recs = []
    with open(a.results) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                recs.append(json.loads(line))
    flops = {r["model"]: r for r in recs if r["kind"] == "flops"}
    gemm = {}
    for r in recs:
        if r["kind"] == "gemm":
            gemm[r["threads"]] = max(gemm.get(r["threads"], 0.0), r["gflops"])
    meta = next((r for r in recs if r["kind"] == "meta"), {})
    export = next((r for r in recs if r["kind"] == "export"), {})
    train = [r for r in recs if r["kind"] == "train"]
    encode = [r for r in recs if r["kind"] == "encode"]
    models = [m for m in MODELS if any(r["model"] == m for r in train + encode)]
    out = {}
    misses = 0

    def verdict(ok, key):
        nonlocal misses
        if not ok:
            misses += 1
        out[key + "_pass"] = bool(ok)
        return "PASS" if ok else "MISS"

    p = print
    p("")
    p("== libautoenc vs PyTorch: training and encoding (QuickDraw-10) ==")
    p("machine: %s cores, load average at start %s / end %s; OPENBLAS_CORETYPE=%s, "
      "OPENBLAS_L2_SIZE=%s; torch %s"
      % (meta.get("cores", "?"), meta.get("load_start", "?"), meta.get("load_end", "?"),
         meta.get("openblas_coretype", "unset"), meta.get("openblas_l2_size", "unset"),
         next((r["torch"] for r in train if "torch" in r), "?")))
    if export:
        p("data: %d training rows of ae_dataset_load(10000/category, test 0.10, seed %d); "
          "an epoch trains the first %d, the last %d are validation; encoding: all %d drawings"
          % (export["train_rows"], export["seed"], export["fit_rows"], export["val_rows"],
             export["train_rows"] + export["test_rows"]))
    p("GEMM peak (cblas_sgemm 2048^3, best in the run): "
      + ", ".join("%d thread%s %.1f GFLOP/s" % (t, "" if t == 1 else "s", g)
                  for t, g in sorted(gemm.items())))
    if a.quick:
        p("QUICK RUN: few epochs/passes; numbers are a smoke test, not a measurement")
    # the 2-core peak; with other thread counts only, the largest one measured
    peak_t = 2 if 2 in gemm else (max(gemm) if gemm else 0)
    peak2 = gemm.get(peak_t, float("nan"))
    if 1 in gemm and 2 in gemm and gemm[2] < 1.5 * gemm[1]:
        p("WARNING: the 2-thread GEMM rate is under 1.5x the 1-thread one: the machine was "
          "busy, so the 2-core peak is understated and the peak shares below overstated "
          "(2 x the 1-thread rate: %.1f GFLOP/s)" % (2 * gemm[1]))

    p("")
    p("Training (seconds per epoch = median of the epochs after the warm-up one, per run; "
      "min and median over the rounds)")
    hdr = "%-8s %-20s %3s %6s %6s %10s %10s %10s %8s %9s %9s" % (
        "model", "side", "thr", "rounds", "epochs", "min s/ep", "med s/ep", "img/s", "GFLOP/s",
        "val_bce", "maxrss_MB")
    p(hdr)
    p("-" * len(hdr))
    best_train = {}
    for m in models:
        for side in ("libautoenc", "pytorch"):
            configs = {}
            for r in train:
                if r["model"] == m and r["side"] == side:
                    configs.setdefault((r["threads"], label(r)), []).append(r)
            for key in sorted(configs):
                runs = configs[key]
                per_run = [timed_median(r) for r in runs]
                sec, sec_min = statistics.median(per_run), min(per_run)
                r = runs[-1]
                ips = r["fit_rows"] / sec
                gf = ips * flops[m]["train_flops_per_image"] * 1e-9 if m in flops else float("nan")
                p("%-8s %-20s %3d %6d %6s %10.3f %10.3f %10.0f %8.2f %9s %9.1f" % (
                    m, label(r), r["threads"], len(runs),
                    "%d%s" % (len(r["seconds"]), "*" if any(x.get("capped") for x in runs) else ""),
                    sec_min, sec, ips, gf,
                    "%.5f" % r["val_bce"][-1] if r["val_bce"] else "-",
                    max(x["maxrss_mb"] for x in runs)))
                b = best_train.get((m, side))
                if b is None or sec < b[0]:
                    best_train[(m, side)] = (sec, ips, r, sec_min)
    if any(r.get("capped") for r in train):
        p("* stopped early (per-configuration time cap, or projected > 3x slower than the "
          "configuration run before it): fewer epochs, a cut epoch's time extrapolated from "
          "its finished steps")
    p("")
    p("Encoding all drawings (best pass; libautoenc: before and after PyTorch; PyTorch: best "
      "of layouts x threads x chunk sizes)")
    hdr = "%-8s %-20s %3s %5s %10s %10s %9s" % (
        "model", "side", "thr", "chunk", "seconds", "img/s", "maxrss_MB")
    p(hdr)
    p("-" * len(hdr))
    best_enc = {}
    for m in models:
        for side in ("libautoenc", "pytorch"):
            for r in sorted((r for r in encode if r["model"] == m and r["side"] == side),
                            key=lambda r: (r["threads"], label(r), r["chunk"])):
                p("%-8s %-20s %3d %5s %10.3f %10.0f %9.1f" % (
                    m, label(r), r["threads"],
                    "%s%s" % (r["chunk"] or "all", "*" if r.get("capped") else ""),
                    r["best_seconds"],
                    r["images_per_second"], r["maxrss_mb"]))
                b = best_enc.get((m, side))
                if b is None or r["images_per_second"] > b["images_per_second"]:
                    best_enc[(m, side)] = r
    p("")
    p("Targets (ratios over PyTorch's best configuration in this run)")
    for m in models:
        c, t = best_train.get((m, "libautoenc")), best_train.get((m, "pytorch"))
        if c and t:
            # the target holds on the medians over the rounds; the ratio of
            # the two sides' fastest rounds is reported beside it
            ratio = t[0] / c[0]
            out["train_speedup_" + m] = round(ratio, 3)
            out["train_speedup_min_" + m] = round(t[3] / c[3], 3)
            p("  train %-6s median libautoenc %.3f s/epoch (T=%d) vs PyTorch %.3f s/epoch (T=%d%s): "
              "%.2fx (fastest rounds: %.3f vs %.3f, %.2fx), target >= %.0fx  %s"
              % (m, c[0], c[2]["threads"], t[0], t[2]["threads"],
                 config_note(t[2]), ratio, c[3], t[3],
                 t[3] / c[3], TARGET_TRAIN[m],
                 verdict(ratio >= TARGET_TRAIN[m], "train_speedup_" + m)))
        ce, te = best_enc.get((m, "libautoenc")), best_enc.get((m, "pytorch"))
        if ce and te:
            ratio = ce["images_per_second"] / te["images_per_second"]
            out["encode_speedup_" + m] = round(ratio, 3)
            p("  encode %-5s libautoenc %.0f img/s (T=%d) vs PyTorch %.0f img/s (T=%d, chunk %d%s): "
              "%.2fx, target >= %.1fx  %s" % (m, ce["images_per_second"], ce["threads"],
                                               te["images_per_second"], te["threads"],
                                               te["chunk"],
                                               config_note(te),
                                               ratio, TARGET_ENCODE,
                                               verdict(ratio >= TARGET_ENCODE, "encode_speedup_" + m)))
        if c and m in flops:
            share = c[1] * flops[m]["train_flops_per_image"] * 1e-9 / peak2
            out["peak_share_" + m] = round(share, 4)
            if t:
                out["peak_share_pytorch_" + m] = round(
                    t[1] * flops[m]["train_flops_per_image"] * 1e-9 / peak2, 4)
            if m in ("simple", "deep"):
                p("  peak   %-5s libautoenc %.1f GFLOP/s = %.1f%% of the %d-thread GEMM peak "
                  "(%.1f GFLOP/s), target >= 50%% of the 2-thread one  %s"
                  % (m, c[1] * flops[m]["train_flops_per_image"] * 1e-9, 100 * share, peak_t,
                     peak2,
                     verdict(share >= TARGET_PEAK, "peak_share_" + m)))
            else:
                p("  peak   %-5s libautoenc %.1f%% of the %d-thread GEMM peak (no target)"
                  % (m, 100 * share, peak_t))
        # equal work: the validation BCE after the same number of epochs, with
        # the same thread count on both sides (the lowest run; OpenMP default)
        pairs = []
        for rc in train:
            if rc["model"] != m or rc["side"] != "libautoenc":
                continue
            for rt in train:
                if (rt["model"] == m and rt["side"] == "pytorch" and rt["threads"] == rc["threads"]
                        and rt.get("omp_wait", "default") == "default" and rt["val_bce"]):
                    pairs.append((rc, rt))
        if pairs:
            rc, rt = min(pairs, key=lambda p_: (-min(len(p_[0]["val_bce"]), len(p_[1]["val_bce"])),
                                                p_[0]["threads"]))
            k = min(len(rc["val_bce"]), len(rt["val_bce"]))
            vc, vt = rc["val_bce"][k - 1], rt["val_bce"][k - 1]
            rel = abs(vc - vt) / vt
            out["val_bce_rel_diff_" + m] = round(rel, 4)
            out["val_bce_epochs_" + m] = k
            p("  equal  %-5s val BCE after %d epochs (T=%d): libautoenc %.5f, PyTorch %.5f: "
              "%.2f%% apart, target <= 3%%  %s%s"
              % (m, k, rc["threads"], vc, vt, 100 * rel, verdict(rel <= TARGET_BCE, "val_bce_rel_diff_" + m),
                 "" if k >= 3 else " (fewer than the 3 epochs the check asks for)"))
    for m in models:
        for side in ("libautoenc", "pytorch"):
            b = best_train.get((m, side))
            if b:
                key = "c" if side == "libautoenc" else "torch"
                out["%s_%s_s_per_epoch" % (key, m)] = round(b[0], 4)
                out["%s_%s_train_img_s" % (key, m)] = round(b[1], 1)
                out["%s_%s_train_maxrss_mb" % (key, m)] = b[2]["maxrss_mb"]
            e = best_enc.get((m, side))
            if e:
                key = "c" if side == "libautoenc" else "torch"
                out["%s_%s_encode_img_s" % (key, m)] = e["images_per_second"]
    for t_, g in sorted(gemm.items()):
        out["gemm_gflops_%dt" % t_] = g
    out["peak_gemm_threads"] = peak_t
    out["misses"] = misses
    out["quick"] = bool(a.quick)
    out["load_start"] = meta.get("load_start")
    out["load_end"] = meta.get("load_end")
    out["openblas_coretype"] = meta.get("openblas_coretype", "unset")
    out["openblas_l2_size"] = meta.get("openblas_l2_size", "unset")
    out["elapsed_s"] = meta.get("elapsed_s")
    p("")
    print(json.dumps(out, separators=(",", ":")), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--work", required=True)
    t.add_argument("--model", required=True, choices=MODELS)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--loss", choices=("logits", "sigmoid"), default="logits",
                   help="logits: no final sigmoid + BCEWithLogitsLoss (same maths); "
                        "sigmoid: nn.Sigmoid + nn.BCELoss")
    t.add_argument("--time-cap", type=float, default=0,
                   help="stop a configuration after this many seconds of training (0: none)")
    t.add_argument("--beat", type=float, default=0,
                   help="s/epoch of a configuration already measured: stop this one once its "
                        "epoch is projected to take over 3x that (0: never)")
    t.add_argument("--foreach", type=int, default=0,
                   help="NAdam foreach implementation (1/0; 0, the default of torch 1.13 on CPU, "
                        "measured as fast or faster here)")
    t.add_argument("--channels-last", type=int, default=1,
                   help="conv, conv_bn8: channels_last model and inputs (1, default: ~1.7x "
                        "faster for conv here), 0: contiguous (NCHW)")
    e = sub.add_parser("encode")
    e.add_argument("--work", required=True)
    e.add_argument("--model", required=True, choices=MODELS)
    e.add_argument("--threads", default="1,2")
    e.add_argument("--chunks", default="64,128,256")
    e.add_argument("--reps", type=int, default=2)
    e.add_argument("--seed", type=int, default=42)
    e.add_argument("--channels-last", default="1",
                   help="conv, conv_bn8: list of memory formats to try, 1 channels_last, "
                        "0 contiguous (1)")
    r = sub.add_parser("report")
    r.add_argument("results")
    r.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    {"train": cmd_train, "encode": cmd_encode, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
