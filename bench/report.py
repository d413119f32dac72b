"""Print seconds per epoch, ratios and the FLOP/byte floor: ``python bench/report.py``.

Options: ``--problems ml100k,amazon`` ``--repeats 2`` ``--numpy-fraction 0.05`` (share of the
Amazon-shaped epoch the NumPy reference runs; its time is scaled to a full epoch).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import load_ml100k, synthetic_amazon  # noqa: E402
from epochs import MODELS, Epoch, available, epoch_floor, machine_peaks, triples_for  # noqa: E402


def time_epoch(ep, repeats):
    ep.warm_up()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = ep.run()
        dt = time.perf_counter() - t
        if ep.backend == "cornac":
            dt = out
        best = min(best, dt)
    return best / ep.fraction


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", default="ml100k,amazon")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--numpy-fraction", type=float, default=0.05)
    ap.add_argument("--backends", default="numpy,numba,torch,cornac")
    args = ap.parse_args(argv)
    gflops, bw = machine_peaks()
    print(f"machine: measured float32 GEMM {gflops / 1e9:.0f} GFLOP/s, copy {bw / 1e9:.1f} GB/s")
    backends = [b for b in args.backends.split(",") if available(b)]
    for problem in args.problems.split(","):
        data = load_ml100k() if problem == "ml100k" else synthetic_amazon()
        if data is None:
            print(f"{problem}: data not found, skipped")
            continue
        split, features = data
        triples = triples_for(split)
        n, D = len(triples[0]), features.shape[1]
        print(f"\n## {problem}: {split.n_users} users, {split.n_items} items, {n} triples, "
              f"D = {D}, K = 64, batch 512")
        print("| model | numpy s | numba s | torch s | cornac s | numba/numpy | numba/torch "
              "| GFLOP | GB | floor s | numba/floor |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        secs = {}
        for kind in MODELS:
            row = {}
            for be in backends:
                if be == "cornac" and (kind != "mf" or problem != "ml100k"):
                    continue
                frac = args.numpy_fraction if (be == "numpy" and problem == "amazon") else 1.0
                row[be] = time_epoch(Epoch(be, kind, split, features, triples, frac),
                                     1 if be in ("numpy", "torch") else args.repeats)
            secs[kind] = row
            fl, by = epoch_floor(kind, n, D)
            floor = max(fl / gflops, by / bw)

            def f(be):
                return f"{row[be]:.4f}" if be in row else "–"

            def r(a, b):
                return f"{row[a] / row[b]:.3f}" if a in row and b in row else "–"
            print(f"| {kind} | {f('numpy')} | {f('numba')} | {f('torch')} | {f('cornac')} "
                  f"| {r('numba', 'numpy')} | {r('numba', 'torch')} | {fl / 1e9:.2f} "
                  f"| {by / 1e9:.2f} | {floor:.4f} | {row['numba'] / floor:.1f}× |", flush=True)
        for be in ("numba", "torch", "numpy"):
            if be in secs["amr"] and be in secs["vbpr"]:
                print(f"AMR/VBPR ({be}): {secs['amr'][be] / secs['vbpr'][be]:.3f}")
        if "cornac" in secs["mf"]:
            print(f"MF numba/cornac: {secs['mf']['numba'] / secs['mf']['cornac']:.2f}")
        if problem == "amazon" and "numpy" in backends:
            print(f"(numpy on the Amazon-shaped set: {args.numpy_fraction:.0%} of the epoch, "
                  "scaled to a full epoch)")


if __name__ == "__main__":
    main()
