"""CPU-vs-GPU benchmark of amrlite's training epoch and full-ranking evaluation.

On the GPU machine: ``python bench/gpu_bench.py`` (Amazon full size: 83,337 users, 299,555 items,
706,949 interactions, D = 2048 random float32 features, K = 64, batch 512). It times one epoch
of MF/VBPR/AMR on the cupy backend, the same with plain PyTorch autograd on the same GPU, numba
on a fraction of the epoch (scaled up), a batch-size curve 512…8192, and full ranking of all
users, then prints achieved FLOP/s and bytes/s against the card's peaks and a final table.

``python bench/gpu_bench.py --dry-run --xp numpy`` runs every part at a tiny size on the CPU
(the array-level path stands in for cupy; torch and numba parts run when installed): the CPU
test suite runs it so that typos in this script surface without a GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

# H100 SXM datasheet peaks (dense FP32 67 TFLOP/s, HBM3 3.35 TB/s): used only where the "ceil"
# part (the ceilings measured on the card in hand) did not run
PEAK_FLOPS = 67e12
PEAK_BYTES = 3.35e12
FULL = dict(n_users=83_337, n_items=299_555, n_pairs=706_949, n_features=2048, dim=64)
TINY = dict(n_users=300, n_items=500, n_pairs=3_000, n_features=32, dim=8)


def synthetic(n_users, n_items, n_pairs, n_features, seed=0):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, size=n_pairs * 2)
    items = rng.integers(0, n_items, size=n_pairs * 2)
    keys = np.unique(users.astype(np.int64) * n_items + items)[:n_pairs]
    rng.shuffle(keys)
    tu, ti = (keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32)
    order = np.lexsort((ti, tu))
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.add.at(indptr, tu.astype(np.int64) + 1, 1)
    indptr = np.cumsum(indptr)
    indices = ti[order]
    features = rng.standard_normal((n_items, n_features), dtype=np.float32)
    return tu, ti, indptr, indices, features


def epoch_cost(kind, n, B, K, D):
    """(FLOPs, bytes) of one epoch: the B×D feature gathers and the B×D·D×K products dominate."""
    content = kind in ("vbpr", "amr")
    flops = 2 * n * K * 4 + (4 * n * D * K if content else 0)        # fwd + E-gradient
    bytes_ = n * K * 4 * 8 + (2 * n * D * 4 if content else 0)
    if kind == "amr":
        batches = max(1, n // B)
        flops += batches * (4 * K * K * D) + n * 6 * K * K
    return flops, bytes_


class Timer:
    def __init__(self, xp):
        self.xp = xp

    def sync(self):
        if self.xp is not np:
            self.xp.cuda.get_current_stream().synchronize()

    def __call__(self, fn):
        self.sync()
        t = time.perf_counter()
        out = fn()
        self.sync()
        return time.perf_counter() - t, out


def run_ours(backend, xp, kind, data, B, K, fraction=1.0, seed=0, repeats=3):
    """Seconds per epoch of one of our backends: the sampling plus the median of ``repeats``
    timed training passes (scaled from ``fraction`` of the triples), after a warm-up."""
    from amrlite.models import ModelSpec, init_params
    from amrlite.train import TrainConfig
    tu, ti, indptr, indices, features = data
    spec = ModelSpec(kind)
    params = init_params(spec, len(indptr) - 1, features.shape[0], K, features.shape[1], seed=seed)
    accum = {k: np.zeros_like(v) for k, v in params.items()}
    dev = {k: backend.to_device(v) for k, v in params.items()}
    acc = {k: backend.to_device(v) for k, v in accum.items()}
    feats = backend.to_device(features) if spec.has_content else None
    hp = TrainConfig(batch_size=B, dim=K)
    pool = np.arange(features.shape[0], dtype=np.int32)
    timer = Timer(xp)
    rng = np.random.default_rng(seed)
    t_sample, triples = timer(lambda: backend.sample_epoch(tu, ti, indptr, indices, pool, rng))
    m = max(B, int(len(tu) * fraction))
    triples = tuple(t[:m] for t in triples)
    backend.train_epoch(spec, dev, acc, feats, tuple(t[:2 * B] for t in triples), hp,
                        np.random.default_rng(1))             # warm-up: compile, allocate
    runs = [timer(lambda: backend.train_epoch(spec, dev, acc, feats, triples, hp,
                                              np.random.default_rng(2)))
            for _ in range(repeats)]
    times = sorted(t * len(tu) / m for t, _ in runs)
    return {"sample_s": t_sample, "train_s": t_sample + times[len(times) // 2],
            "train_runs_s": times, "loss": float(runs[-1][1]), "n": len(tu)}


def run_torch(kind, data, B, K, device, fraction=1.0, seed=0):
    """Plain PyTorch autograd: Adagrad with sparse row gradients, Γ by autograd w.r.t. the batch
    feature rows, sampling by NumPy once per epoch."""
    import torch
    tu, ti, indptr, indices, features = data
    n_users, n_items, D = len(indptr) - 1, features.shape[0], features.shape[1]
    torch.manual_seed(seed)
    P = torch.nn.Embedding(n_users, K, sparse=True).to(device)
    Q = torch.nn.Embedding(n_items, K, sparse=True).to(device)
    for e in (P, Q):
        torch.nn.init.normal_(e.weight, std=0.01)
    content = kind in ("vbpr", "amr")
    C = torch.from_numpy(features).to(device)
    E = torch.nn.Parameter(torch.randn(K, D, device=device) * 0.01)
    opt_rows = torch.optim.Adagrad(list(P.parameters()) + list(Q.parameters()), lr=0.05)
    opt_e = torch.optim.Adagrad([E], lr=0.05) if content else None
    rng = np.random.default_rng(seed)
    m = max(B, int(len(tu) * fraction))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def epoch():
        order = rng.permutation(len(tu))[:m]
        u = torch.from_numpy(tu[order].astype(np.int64)).to(device)
        i = torch.from_numpy(ti[order].astype(np.int64)).to(device)
        j = torch.from_numpy(rng.integers(0, n_items, size=m)).to(device)
        total = torch.zeros((), device=device)
        for s in range(0, m, B):
            ub, ib, jb = u[s:s + B], i[s:s + B], j[s:s + B]
            pu = P(ub)
            x = (pu * (Q(ib) - Q(jb))).sum(1)
            if content:
                ci, cj = C[ib].requires_grad_(kind == "amr"), C[jb].requires_grad_(kind == "amr")
                x = x + (pu * ((ci - cj) @ E.T)).sum(1)
            loss = torch.nn.functional.softplus(-x).sum()
            if kind == "amr":
                gi, gj = torch.autograd.grad(loss, (ci, cj), retain_graph=True)
                di = 0.1 * torch.nn.functional.normalize(gi.detach(), dim=1)
                dj = 0.1 * torch.nn.functional.normalize(gj.detach(), dim=1)
                x_adv = (pu * (Q(ib) - Q(jb))).sum(1) + (pu * ((ci + di - cj - dj) @ E.T)).sum(1)
                loss = loss + torch.nn.functional.softplus(-x_adv).sum()
            opt_rows.zero_grad()
            if opt_e:
                opt_e.zero_grad()
            loss.backward()
            opt_rows.step()
            if opt_e:
                opt_e.step()
            total += loss.detach()
        return float(total)

    epoch()                          # warm-up
    sync()
    t = time.perf_counter()
    epoch()
    sync()
    return {"train_s": (time.perf_counter() - t) * len(tu) / m}


def full_ranking(backend, xp, data, K, n_eval_users, seed=0, chunk=2048):
    """All users against all items: factors (U, V) from the device-resident features, then the
    ranks; also the cuBLAS products alone (the part no ranking can avoid)."""
    from amrlite.models import ModelSpec, factors, init_params
    tu, ti, indptr, indices, features = data
    spec = ModelSpec("amr")
    params = init_params(spec, len(indptr) - 1, features.shape[0], K, features.shape[1], seed=seed)
    dev = {k: backend.to_device(v) for k, v in params.items()}
    feats = backend.to_device(features)
    timer = Timer(xp)
    users = np.arange(n_eval_users, dtype=np.int64)
    items = np.random.default_rng(seed).integers(0, features.shape[0], size=n_eval_users)
    t_f, (U, V) = timer(lambda: factors(spec, dev, feats, xp=xp))
    backend.full_ranks(U, V, users[:chunk], items[:chunk], indptr, indices)     # warm-up
    t_r, ranks = timer(lambda: backend.full_ranks(U, V, users, items, indptr, indices))

    def products():
        for s in range(0, n_eval_users, chunk):
            U[s:s + chunk] @ V.T
    t_p, _ = timer(products)
    return {"factors_s": t_f, "rank_s": t_r, "products_s": t_p, "users": n_eval_users,
            "items": features.shape[0]}


def ceilings(xp):
    """The card's two ceilings, measured: a 1 GiB device-to-device copy (bytes read + written)
    and a 8192³ float32 product (cuBLAS, no TF32)."""
    timer = Timer(xp)
    a = xp.ones(1 << 28, dtype=np.float32)
    b = xp.empty_like(a)
    b[...] = a
    t_copy = min(timer(lambda: b.__setitem__(Ellipsis, a))[0] for _ in range(5))
    n = 8192 if xp is not np else 256
    A = xp.asarray(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    A @ A
    t_mm = min(timer(lambda: A @ A)[0] for _ in range(3))
    return {"copy_bytes_per_s": 2 * a.nbytes / t_copy, "sgemm_flops": 2 * n ** 3 / t_mm}


def issue_profile(backend, xp, kind, data, B, K, n_batches=200, **kw):
    """Host time to *issue* ``n_batches`` batches (no sync) against the time until the device
    has finished them: issue ≈ total means the host (Python + launches) sets the pace."""
    from amrlite.models import ModelSpec, init_params
    from amrlite.train import TrainConfig
    tu, ti, indptr, indices, features = data
    spec = ModelSpec(kind)
    params = init_params(spec, len(indptr) - 1, features.shape[0], K, features.shape[1], seed=0)
    dev = {k: backend.to_device(v) for k, v in params.items()}
    acc = {k: backend.to_device(np.zeros_like(v)) for k, v in params.items()}
    feats = backend.to_device(features) if spec.has_content else None
    hp = TrainConfig(batch_size=B, dim=K)
    pool = np.arange(features.shape[0], dtype=np.int32)
    triples = backend.sample_epoch(tu, ti, indptr, indices, pool, np.random.default_rng(0))
    triples = tuple(t[:n_batches * B] for t in triples)
    # the GPU backend's queued epoch returns before the device is done; elsewhere issue = done
    queued = backend.train_epoch_queued if xp is not np else backend.train_epoch
    queued(spec, dev, acc, feats, triples, hp, np.random.default_rng(1), **kw)
    timer = Timer(xp)
    timer.sync()
    t0 = time.perf_counter()
    queued(spec, dev, acc, feats, triples, hp, np.random.default_rng(1), **kw)
    t_issue = time.perf_counter() - t0
    timer.sync()
    t_total = time.perf_counter() - t0
    return {"issue_us_per_batch": 1e6 * t_issue / n_batches,
            "total_us_per_batch": 1e6 * t_total / n_batches}


def host_breakdown(backend, xp, data, B, K, n_batches=200):
    """Host time per batch spent in each kind of launch of the fused AMR epoch (the GPU backend's
    ``_launch``/``_gemm`` wrapped with a clock), and in everything else (Python)."""
    from collections import defaultdict
    spent, calls = defaultdict(float), defaultdict(int)
    launch, gemm = backend._launch, backend._gemm

    def timed_launch(name, *args):
        t = time.perf_counter()
        launch(name, *args)
        spent[name] += time.perf_counter() - t
        calls[name] += 1

    def timed_gemm(*args):
        t = time.perf_counter()
        gemm(*args)
        spent["cublas gemm"] += time.perf_counter() - t
        calls["cublas gemm"] += 1

    backend._launch, backend._gemm = timed_launch, timed_gemm
    try:
        r = issue_profile(backend, xp, "amr", data, B, K, n_batches=n_batches)
    finally:
        backend._launch, backend._gemm = launch, gemm
    total = r["issue_us_per_batch"]
    # the warm-up epoch ran with the clocks too: both epochs count, so halve
    per = {k: 1e6 * v / (2 * n_batches) for k, v in spent.items()}
    per["python and the rest"] = total - sum(per.values())
    return {"per_batch_us": per, "calls": {k: v / (2 * n_batches) for k, v in calls.items()},
            "issue_us_per_batch": total}


def guarded(name, fn):
    """Run one part; a failure is printed (with its traceback) and the next part still runs."""
    try:
        fn()
    except Exception:                                   # noqa: BLE001 (report and go on)
        import traceback
        print(f"== part {name} FAILED:")
        traceback.print_exc(file=sys.stdout)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes, for the CPU test suite")
    ap.add_argument("--xp", choices=["cupy", "numpy"], default="cupy")
    ap.add_argument("--parts", default="ceil,profile,hostbreak,ours,torch,numba,curve,eval")
    ap.add_argument("--numba-fraction", type=float, default=0.02)
    ap.add_argument("--json", default=None, help="write results here")
    args = ap.parse_args(argv)
    size = TINY if args.dry_run else FULL
    parts = set(args.parts.split(","))
    if args.xp == "cupy":
        import cupy as xp
        from amrlite.kernels import gpu as backend
        device = "cuda"
    else:
        xp = np
        from amrlite.kernels import numpy_arraylevel as backend
        device = "cpu"
    K, B = size["dim"], (16 if args.dry_run else 512)
    t0 = time.perf_counter()
    data = synthetic(size["n_users"], size["n_items"], size["n_pairs"], size["n_features"])
    print(f"data: {size} built in {time.perf_counter() - t0:.1f}s "
          f"(features {data[4].nbytes / 1e9:.2f} GB)", flush=True)
    results = {}
    rows = []

    def part_ceil():
        r = ceilings(xp)
        results["ceilings"] = r
        print(f"ceilings: copy {r['copy_bytes_per_s'] / 1e9:.0f} GB/s, sgemm "
              f"{r['sgemm_flops'] / 1e12:.1f} TFLOP/s (datasheet {PEAK_BYTES / 1e9:.0f} GB/s, "
              f"{PEAK_FLOPS / 1e12:.0f} TFLOP/s)", flush=True)

    def part_profile():
        variants = [("fused", {})]
        if xp is not np:
            variants.append(("unfused", {"fused": False}))
        for label, kw in variants:
            for kind in ("mf", "vbpr", "amr"):
                r = issue_profile(backend, xp, kind, data, B, K,
                                  n_batches=8 if args.dry_run else 200, **kw)
                results[f"profile/{label}/{kind}"] = r
                print(f"profile  {label:8s} {kind:5s} B={B}: host issue "
                      f"{r['issue_us_per_batch']:7.1f} us/batch, done "
                      f"{r['total_us_per_batch']:7.1f} us/batch", flush=True)

    def part_hostbreak():
        if xp is np:
            print("hostbreak: the fused launcher is the GPU backend's only")
            return
        r = host_breakdown(backend, xp, data, B, K)
        results["host_breakdown/amr"] = r
        print(f"host time per AMR batch (B={B}): {r['issue_us_per_batch']:.1f} us, of which",
              flush=True)
        for name, us in sorted(r["per_batch_us"].items(), key=lambda kv: -kv[1]):
            n = r["calls"].get(name)
            print(f"  {name:22s} {us:7.1f} us" + (f"  ({n:.0f} per batch, {us / n:.1f} us each)"
                                                  if n else ""), flush=True)

    if "ceil" in parts:
        guarded("ceil", part_ceil)
    if "profile" in parts:
        guarded("profile", part_profile)
    if "hostbreak" in parts:
        guarded("hostbreak", part_hostbreak)

    def part_ours():
        for kind in ("mf", "vbpr", "amr"):
            r = run_ours(backend, xp, kind, data, B, K)
            flops, bytes_ = epoch_cost(kind, r["n"], B, K, size["n_features"])
            r.update(flops=flops / r["train_s"], bytes=bytes_ / r["train_s"])
            results[f"{backend.NAME}/{kind}/B{B}"] = r
            rows.append((f"{backend.NAME} {kind} epoch", r["train_s"]))
            ceil = results.get("ceilings", {})
            peak_f, peak_b = ceil.get("sgemm_flops", PEAK_FLOPS), ceil.get("copy_bytes_per_s",
                                                                          PEAK_BYTES)
            print(f"{backend.NAME:8s} {kind:5s} B={B}: epoch {r['train_s']:.3f}s (runs "
                  f"{', '.join(f'{t:.3f}' for t in r['train_runs_s'])})  sample "
                  f"{r['sample_s']:.3f}s  {r['flops'] / 1e12:.2f} TFLOP/s "
                  f"({100 * r['flops'] / peak_f:.1f}% of the FP32 ceiling)  "
                  f"{r['bytes'] / 1e9:.0f} GB/s ({100 * r['bytes'] / peak_b:.1f}% of the copy "
                  f"ceiling)", flush=True)
    if "ours" in parts:
        guarded("ours", part_ours)

    def part_torch():
        try:
            import torch
            dev = device if (device == "cpu" or torch.cuda.is_available()) else "cpu"
            for kind in ("mf", "vbpr", "amr"):
                r = run_torch(kind, data, B, K, dev, fraction=0.25 if args.dry_run else 0.2)
                results[f"torch/{kind}/B{B}"] = r
                rows.append((f"torch {kind} epoch", r["train_s"]))
                print(f"torch    {kind:5s} B={B}: epoch {r['train_s']:.3f}s (from 20% of one)",
                      flush=True)
        except ImportError:
            print("torch: not installed, skipped")
    if "torch" in parts:
        guarded("torch", part_torch)

    def part_numba():
        try:
            from amrlite.kernels import get_backend
            nb = get_backend("numba")
            for kind in ("mf", "vbpr", "amr"):
                r = run_ours(nb, np, kind, data, B, K, fraction=args.numba_fraction, repeats=1)
                results[f"numba/{kind}/B{B}"] = r
                rows.append((f"numba {kind} epoch", r["train_s"]))
                print(f"numba    {kind:5s} B={B}: epoch {r['train_s']:.3f}s "
                      f"(from {100 * args.numba_fraction:.0f}% of one)", flush=True)
        except Exception as exc:          # the numba backend may not be merged yet
            print(f"numba: skipped ({type(exc).__name__}: {exc})")
    if "numba" in parts:
        guarded("numba", part_numba)

    def part_curve():
        for b in ((16, 64) if args.dry_run else (512, 1024, 2048, 4096, 8192)):
            r = run_ours(backend, xp, "amr", data, b, K)
            results[f"{backend.NAME}/amr/B{b}"] = r
            rows.append((f"{backend.NAME} amr epoch B={b}", r["train_s"]))
            print(f"curve    amr   B={b}: epoch {r['train_s']:.3f}s (runs "
                  f"{', '.join(f'{t:.3f}' for t in r['train_runs_s'])})", flush=True)
    if "curve" in parts:
        guarded("curve", part_curve)

    def part_eval():
        r = full_ranking(backend, xp, data, K, size["n_users"])
        results["full_ranking"] = r
        rows.append(("full ranking, all users", r["factors_s"] + r["rank_s"]))
        flops = 2 * r["users"] * r["items"] * (K)
        print(f"eval     full ranking {r['users']} users x {r['items']} items: "
              f"{r['factors_s'] + r['rank_s']:.3f}s (factors {r['factors_s']:.3f}s, ranks "
              f"{r['rank_s']:.3f}s; the score products alone {r['products_s']:.3f}s = "
              f"{flops / r['products_s'] / 1e12:.1f} TFLOP/s)", flush=True)

    if "eval" in parts:
        guarded("eval", part_eval)

    def ratio(a, b):
        return results[a]["train_s"] / results[b]["train_s"] if a in results and b in results \
            else float("nan")

    name = backend.NAME
    print("\n== summary (seconds; ratios measured in this run) ==")
    for label, secs in rows:
        print(f"{label:32s} {secs:9.3f}")
    for kind, target in (("amr", 5.0), ("vbpr", 2.0)):
        print(f"torch/{name} {kind:5s} speed-up: {ratio(f'torch/{kind}/B{B}', f'{name}/{kind}/B{B}'):6.1f}x"
              f"   (target >= {target:.0f}x)")
    for kind in ("mf", "vbpr", "amr"):
        print(f"numba/{name} {kind:5s} speed-up: "
              f"{ratio(f'numba/{kind}/B{B}', f'{name}/{kind}/B{B}'):6.1f}x")
    if f"{name}/amr/B{B}" in results:
        print(f"{name} AMR epoch at B={B}: {results[f'{name}/amr/B{B}']['train_s']:.3f}s "
              "(target <= 0.5 s on one H100)")
    if "full_ranking" in results:
        r = results["full_ranking"]
        print(f"full ranking: {r['factors_s'] + r['rank_s']:.3f}s (target <= 2 s)")
    out = args.json or (os.path.join(os.environ["OUT"], "gpu_bench.json")
                        if os.environ.get("OUT") else None)
    if out:
        with open(out, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
