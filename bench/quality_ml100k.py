"""Train the quality-bar models on ml100k with the CLI and print the README's results table.

    python bench/quality_ml100k.py [--data ../shared/data/ml100k] [--out runs/quality] [--backend auto]

Each row is one `amrlite fit` command (printed, so it can be run by hand); finished rows are
skipped when their metrics JSON exists, so an interrupted run resumes.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROWS = [
    # (name, split, arguments after `amrlite fit --data DATA --split SPLIT`)
    ("POP", "loo", "--model pop"),
    ("MF-BPR", "loo", "--model mf --epochs 80 --lr 0.05 --reg 1e-3"),
    ("DUIF", "loo", "--model duif --epochs 80 --lr 0.05 --reg 1e-3"),
    ("MF-BPR (beta 5e-3, chosen on valid)", "loo",
     "--model mf --epochs 200 --lr 0.05 --reg 5e-3 --patience 8"),
    ("VBPR from MF-BPR", "loo", "--model vbpr --init {out}/mf-bpr_loo.npz --epochs 40 --lr 0.01 --reg 1e-4"),
    ("VBPR from MF-BPR (beta 5e-3)", "loo",
     "--model vbpr --init {out}/mf-bpr-beta-5e-3-chosen-on-valid_loo.npz --epochs 60 --lr 0.01 --reg 1e-4 --patience 6"),
    ("AMR from that VBPR (eps 0.1, lmd 1, chosen on valid)", "loo",
     "--model amr --init {out}/vbpr-from-mf-bpr-beta-5e-3_loo.npz --epochs 40 --lr 0.01 --reg 1e-4 --eps 0.1 --lmd 1"),
    ("AMR from VBPR (eps 0.05, lmd 0.1)", "loo",
     "--model amr --init {out}/vbpr-from-mf-bpr_loo.npz --epochs 40 --lr 0.01 --reg 1e-4 --eps 0.05 --lmd 0.1"),
    ("AMR from VBPR (eps 0.1, lmd 1)", "loo",
     "--model amr --init {out}/vbpr-from-mf-bpr_loo.npz --epochs 40 --lr 0.01 --reg 1e-4 --eps 0.1 --lmd 1"),
    ("POP", "cold", "--model pop"),
    ("MF-BPR", "cold", "--model mf --epochs 80 --lr 0.05 --reg 1e-3"),
    ("DUIF", "cold", "--model duif --epochs 120 --lr 0.05 --reg 1e-4"),
    ("VBPR from MF-BPR", "cold", "--model vbpr --init {out}/mf-bpr_cold.npz --epochs 40 --lr 0.01 --reg 1e-4"),
    ("VBPR from scratch", "cold", "--model vbpr --epochs 120 --lr 0.05 --reg 1e-4"),
    ("AMR from VBPR (eps 0.05, lmd 0.1)", "cold",
     "--model amr --init {out}/vbpr-from-scratch_cold.npz --epochs 40 --lr 0.01 --reg 1e-4 --eps 0.05 --lmd 0.1"),
    ("AMR from VBPR (eps 0.5, lmd 1)", "cold",
     "--model amr --init {out}/vbpr-from-scratch_cold.npz --epochs 40 --lr 0.01 --reg 1e-4 --eps 0.5 --lmd 1"),
]


def slug(name, split):
    keep = "".join(c if c.isalnum() or c in "-." else "-" for c in name.lower())
    return "-".join(filter(None, keep.split("-"))) + f"_{split}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/ml100k"))
    ap.add_argument("--out", default="runs/quality")
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = []
    for name, split, extra in ROWS:
        s = slug(name, split)
        metrics_path = out / f"{s}.json"
        cmd = (f"amrlite fit --data {args.data} --split {split} {extra.format(out=out)} "
               f"--backend {args.backend} --eval-every 5 -q --out {out}/{s}.npz "
               f"--metrics-out {metrics_path}")
        print("$", cmd, flush=True)
        if not metrics_path.exists():
            t0 = time.time()
            subprocess.run([sys.executable, "-m", "amrlite.cli", *shlex.split(cmd)[1:]], check=True,
                           stdout=subprocess.DEVNULL)
            print(f"  {time.time() - t0:.1f} s", flush=True)
        m = json.loads(metrics_path.read_text())
        table.append((split, name, m))
    print("\n| split | model | HR@10 | NDCG@10 | HR@20 | NDCG@20 | s/epoch | backend |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for split, name, m in table:
        sec = m.get("epoch_seconds") or []
        per = f"{sum(sec) / len(sec):.3f}" if sec else "–"
        print(f"| {split} | {name} | {m['HR@10']:.3f} | {m['NDCG@10']:.3f} | {m['HR@20']:.3f} | "
              f"{m['NDCG@20']:.3f} | {per} | {m['backend']} |")


if __name__ == "__main__":
    main()
