"""Epoch times of several models (Numba) in ONE process on one synthetic data set of
bench/scale.py's generator, to tell one-off first-epoch costs (compilation, first touch of the
memory-mapped features, the first allocation of the tables) from the kernels' own per-epoch
time.

    python bench/epochs_one_process.py DIR [--size 1] [--generate] [--kinds vbpr,amr,vbpr]
                                           [--epochs 2]

``--generate`` writes the data set into DIR first (1 × the paper's Amazon: 2.45 GB of features;
delete DIR afterwards). Prints one line per epoch: kind, epoch, seconds, and the microseconds
per training triple.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import amrlite  # noqa: E402
from scale import generate, shape_of  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--size", default="1")
    ap.add_argument("--generate", action="store_true")
    ap.add_argument("--kinds", default="vbpr,amr,vbpr")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args(argv)
    if args.generate:
        generate(args.folder, **shape_of(args.size))
    ds = amrlite.load_dataset(args.folder)
    sp = ds.split("loo")
    n = len(sp.train_users)
    for kind in args.kinds.split(","):
        model = amrlite.Model(kind, backend="numba", epochs=args.epochs, eval_every=0, seed=0)
        t = time.perf_counter()
        model.fit(sp, features=ds.features, callback=lambda info: print(
            kind, "epoch", info.epoch, f"{info.seconds:.2f} s",
            f"{info.seconds / n * 1e6:.2f} us/triple", flush=True))
        print(kind, f"whole fit {time.perf_counter() - t:.2f} s", flush=True)


if __name__ == "__main__":
    main()
