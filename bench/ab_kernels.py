"""Old vs new Numba epochs, alternated in one process on the same triples.

Separate runs of the same code differ by up to 30% on a shared machine; alternating the two
versions round by round in one process and comparing their fastest rounds is far steadier.
The old kernels are the ``kernels/`` folder of a git revision, extracted into a temporary
directory and imported as a second package (the kernels import nothing from ``amrlite``).

    python bench/ab_kernels.py --base 69b50ed --problems ml100k,amazon --rounds 9
    NUMBA_NUM_THREADS=1 python bench/ab_kernels.py --base 69b50ed --clock cpu --rounds 15

Prints, per problem and model: fastest round old / new, new/old, and the medians.
"""
from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import load_ml100k, synthetic_amazon  # noqa: E402
from epochs import MODELS, Epoch, triples_for  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def old_kernels(rev, into):
    """``kernels/`` of ``rev`` as the package ``kernels_base`` under ``into``; its cpu module."""
    blob = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "kernels"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    pkg = Path(into) / "kernels_base"
    (Path(into) / "kernels").rename(pkg)
    # before the redesign kernels/__init__.py imported from amrlite (the layering issue 9
    # removed): the old modules are imported one by one, not through it
    (pkg / "__init__.py").write_text("")
    sys.path.insert(0, str(into))
    return importlib.import_module("kernels_base.cpu")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="git revision of the old kernels")
    ap.add_argument("--problems", default="ml100k,amazon")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    a = ap.parse_args()
    clock = time.process_time if a.clock == "cpu" else time.perf_counter
    from amrlite.kernels import cpu as new
    with tempfile.TemporaryDirectory() as tmp:
        base = old_kernels(a.base, tmp)
        for problem in a.problems.split(","):
            split, feats = load_ml100k() if problem == "ml100k" else synthetic_amazon()
            triples = triples_for(split)
            print(f"## {problem} ({a.clock} clock, {a.rounds} rounds)\n"
                  "| model | old s | new s | new/old | old median | new median |\n"
                  "|---|---|---|---|---|---|", flush=True)
            for kind in a.models.split(","):
                epochs = {}
                for name, module in (("old", base), ("new", new)):
                    ep = Epoch("numba", kind, split, feats, triples)
                    ep.module = module
                    ep.warm_up()
                    epochs[name] = ep
                times = {"old": [], "new": []}
                for r in range(a.rounds):
                    for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
                        t = clock()
                        epochs[name].run()
                        times[name].append(clock() - t)
                o, n = min(times["old"]), min(times["new"])
                print(f"| {kind} | {o:.4f} | {n:.4f} | {n / o:.3f} | "
                      f"{np.median(times['old']):.4f} | {np.median(times['new']):.4f} |",
                      flush=True)


if __name__ == "__main__":
    main()
