"""All-users top-10 recommendation at the paper's Amazon size, against its GEMM floor.

``python bench/recommend.py`` builds, in memory, a model of the Amazon data set's shape —
83,337 users × 299,555 items, K = 64, float32 factors, 706,944 interactions to exclude — from
random factors (recommendation costs the same whatever the values), runs
``Model.recommend_many`` for every user (top 10, ``exclude="seen"``; Numba backend) and prints:

* seconds per run (``--repeats``, default 2) and the peak extra resident memory of a run
  (``VmHWM`` reset before it, minus the resident memory before it);
* the floor: the scoring products are ``2·U·I·K`` FLOP; the machine's float32 GEMM rate is
  measured here with numpy (both the whole-chunk product ``(1024×K)·(K×I)`` on every core, and
  the kernel's own block shape run by one thread per core), before and after the runs; the
  floor is the FLOP at the best rate measured, and the ratio is seconds / floor;
* the kernel's two halves timed apart on one thread (``TOP_ROWS`` × ``TOP_TILE`` products
  with numpy, then :func:`amrlite.kernels.cpu_ranking.merge_top` on each block, fresh top
  lists): how the top-n selection compares with the products;
* the load average before and after (the machine may be shared: the ratio is measured in one
  run, against a rate measured in the same process).

The run is written to ``bench/results/recommend.json`` (``--out``) with the machine, numpy,
numba, BLAS (threadpoolctl) and the commit. ``--users``/``--items`` shrink the problem.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from amrlite.jsonio import write_json
from amrlite.kernels import cpu_ranking
from amrlite.recommender import Model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import AMAZON, machine, reset_peak, status_kb  # noqa: E402  (the shared helpers)

ROOT = Path(__file__).resolve().parents[1]


def synthetic_model(n_users, n_items, n_interactions, dim=64, seed=0):
    """A fitted-looking MF model of the given shape: random float32 factors, a random
    interaction CSR (training = every interaction), popularity from it."""
    rng = np.random.default_rng(seed)
    model = Model("mf", dim=dim, backend="numba")
    model._U = rng.standard_normal((n_users, dim), dtype=np.float32)
    model._V = rng.standard_normal((n_items, dim), dtype=np.float32)
    keys = np.unique(rng.integers(0, n_users, n_interactions).astype(np.int64) * n_items
                     + rng.integers(0, n_items, n_interactions))
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // n_items, minlength=n_users), out=indptr[1:])
    indices = (keys % n_items).astype(np.int32)
    model._seen = model._interactions = (indptr, indices)
    model.popularity = np.bincount(indices, minlength=n_items).astype(np.float64)
    model.warm = np.ones(n_items, dtype=bool)
    model.header = {"n_users": n_users, "n_items": n_items}
    return model


def gemm_rates(U, V, seconds):
    """float32 GEMM rates (FLOP/s) measured with numpy: the whole-chunk product on every core,
    and the kernel's block shape with one BLAS thread per core, all cores at once."""
    K = U.shape[1]
    rows = min(1024, len(U))
    out = np.empty((rows, len(V)), dtype=np.float32)
    np.matmul(U[:rows], V.T, out=out)
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        np.matmul(U[:rows], V.T, out=out)
        n += 1
    chunk = 2 * rows * len(V) * K * n / (time.perf_counter() - t)
    del out
    threads = numba.get_num_threads()
    R, T = cpu_ranking.TOP_ROWS, min(cpu_ranking.TOP_TILE, len(V))

    def work(_):
        Ub = np.ascontiguousarray(U[:R])
        buf = np.empty((len(Ub), T), dtype=np.float32)
        t0, m = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            for s in range(0, len(V) - T + 1, T):
                np.matmul(Ub, V[s:s + T].T, out=buf)
                m += 1
        return 2 * len(Ub) * T * K * m, time.perf_counter() - t0
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(threads) as ex:
        done = list(ex.map(work, range(threads)))
    block = sum(f for f, _ in done) / max(s for _, s in done)
    return {"chunk_shape": [rows, K, len(V)], "chunk_gflops": chunk / 1e9,
            "block_shape": [R, K, T], "block_threads": threads, "block_gflops": block / 1e9}


def selection_vs_product(U, V, n, blocks=4):
    """Seconds of the products and of the selection of ``blocks`` user blocks over every item,
    on one thread, block by block as the kernel runs them (no excluded items)."""
    R, T = cpu_ranking.TOP_ROWS, min(cpu_ranking.TOP_TILE, len(V))
    buf = np.empty((R, T), dtype=U.dtype)
    none = np.zeros(0, dtype=np.int32)
    product = selection = 0.0
    with threadpool_limits(1, user_api="blas"):
        for b in range(blocks):
            Ub = np.ascontiguousarray(U[b * R:(b + 1) * R])
            best = np.full((len(Ub), n), -np.inf, dtype=U.dtype)
            best_items = np.full((len(Ub), n), -1, dtype=np.int64)
            cursor = stop = np.zeros(len(Ub), dtype=np.int64)
            for s in range(0, len(V) - T + 1, T):
                t = time.perf_counter()
                np.matmul(Ub, V[s:s + T].T, out=buf[:len(Ub)])
                t1 = time.perf_counter()
                cpu_ranking.merge_top(buf, len(Ub), s, best, best_items, cursor, stop, none)
                product += t1 - t
                selection += time.perf_counter() - t1
    return {"users": blocks * R, "product_seconds": product, "selection_seconds": selection,
            "share": selection / product}


def run_once(model, n):
    reset_peak()
    before = status_kb("VmRSS")
    t = time.perf_counter()
    users = lists = 0
    for chunk in model.recommend_many(None, n, exclude="seen", backend="numba"):
        users += len(chunk)
        lists += int(chunk.counts.sum())
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "users": users, "items_out": lists,
            "peak_extra_mib": (status_kb("VmHWM") - before) / 1024}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=AMAZON["n_users"])
    ap.add_argument("--items", type=int, default=AMAZON["n_items"])
    ap.add_argument("--interactions", type=int, default=AMAZON["n_inter"])
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="Duration of each GEMM rate measurement.")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "recommend.json"),
                    help="JSON result ('' to skip)")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()
    model = synthetic_model(args.users, args.items, args.interactions, args.dim)
    small = synthetic_model(300, 5000, 1000, args.dim, seed=1)    # compiles the kernels
    list(small.recommend_many(None, args.n, backend="numba"))
    selection_vs_product(small._U, small._V, args.n, blocks=1)
    flop = 2 * args.users * args.items * args.dim
    print(f"problem: {args.users:,} users × {args.items:,} items, K = {args.dim}, top {args.n}, "
          f"{len(model._interactions[1]):,} interactions excluded; products {flop / 1e12:.2f} "
          f"TFLOP; load average {load0[0]:.2f}", flush=True)
    rates = [gemm_rates(model._U, model._V, args.seconds)]
    runs = []
    for r in range(args.repeats):
        runs.append(run_once(model, args.n))
        print(f"run {r + 1}: {runs[-1]['seconds']:.1f} s, peak extra memory "
              f"{runs[-1]['peak_extra_mib']:.0f} MiB (load average {os.getloadavg()[0]:.2f})",
              flush=True)
    selection = selection_vs_product(model._U, model._V, args.n)
    print(f"one thread, {selection['users']} users × all items, block by block: products "
          f"{selection['product_seconds']:.2f} s, top-{args.n} selection "
          f"{selection['selection_seconds']:.2f} s ({selection['share']:.0%} of the products)",
          flush=True)
    rates.append(gemm_rates(model._U, model._V, args.seconds))
    best_rate = max(max(r["chunk_gflops"], r["block_gflops"]) for r in rates) * 1e9
    floor = flop / best_rate
    best = min(x["seconds"] for x in runs)
    for when, r in zip(("before", "after"), rates):
        print(f"sgemm {when} the runs: {r['chunk_gflops']:.1f} GFLOP/s on the chunk shape "
              f"{tuple(r['chunk_shape'])}, {r['block_gflops']:.1f} GFLOP/s on the block shape "
              f"{tuple(r['block_shape'])} × {r['block_threads']} threads")
    print(f"floor {floor:.1f} s (at the best rate measured); best run {best:.1f} s = {best / floor:.2f} × the floor "
          f"(target ≤ 2×); peak extra memory {max(x['peak_extra_mib'] for x in runs):.0f} MiB "
          f"(target < 2048); load average {os.getloadavg()[0]:.2f} after")
    here = machine()
    result = {
        "problem": {"users": args.users, "items": args.items, "dim": args.dim, "n": args.n,
                    "excluded_interactions": int(len(model._interactions[1])),
                    "dtype": "float32", "tflop": flop / 1e12},
        "runs": runs, "best_seconds": best, "selection_vs_product": selection,
        "gemm_before_after": rates,
        "gemm_best_gflops": best_rate / 1e9, "floor_seconds": floor,
        "ratio_to_floor": best / floor,
        "peak_extra_mib": max(x["peak_extra_mib"] for x in runs),
        "load_average": {"before": load0, "after": os.getloadavg()},
        "kernel": {"TOP_ROWS": cpu_ranking.TOP_ROWS, "TOP_TILE": cpu_ranking.TOP_TILE,
                   "TOP_LANES": cpu_ranking.TOP_LANES, "numba_threads": numba.get_num_threads()},
        "machine": {**here, "platform": platform.platform(), "numba": numba.__version__,
                    "blas": threadpool_info()},
        "commit": here["commit"],
        "command": "python bench/recommend.py " + " ".join(argv or sys.argv[1:]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if args.out:
        write_json(args.out, result)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
