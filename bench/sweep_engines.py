"""Sweep throughput of the local engine vs Ray on this machine, in one run, and Ray's per-task
overhead.

    python bench/sweep_engines.py [--data ../shared/data/ml100k --split sparse3] [--tasks 12]
                                  [--epochs 40] [--backend numpy] [--workers 2]
                                  [--rounds 2] [--out bench/results/sweep_engines.json]

Both engines run the same batch of AMR sweep tasks (``--tasks`` settings of ε, one seed,
``--epochs`` epochs each, from one VBPR checkpoint) with ``--workers`` worker processes / CPUs,
into fresh output folders (nothing reused). Reported per engine: wall time, tasks per minute,
the sum of in-task seconds (fit + evaluation, measured inside the task), and the overhead per
task = (wall × workers − Σ in-task seconds) / tasks, i.e. the worker-seconds per task not
spent on the task's own work (process start, imports, shipping data and checkpoint, result
return, scheduling). The engines alternate for ``--rounds`` rounds (local, ray, local, ray, …)
so that a change in the machine's load (it is shared) hits both; the ratio is that of the
total throughputs. Ray's cluster start is timed separately and not part of its throughput;
a no-op task round trip (100 tasks) gives the engine's bare per-task cost. The load average
before and after is recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _noop(job, data, init):
    return job["name"]


def _run(engine, ds, split, init, eps, args, out):
    from amrlite.experiments import sweep
    t0 = time.perf_counter()
    res = sweep(ds, split, init=init, eps_list=eps, lmd_list=[1.0],
                base_config={"epochs": args.epochs, "eval_every": 0, "seed": 0},
                out_dir=out, processes=args.workers, progress=False, backend=args.backend,
                engine=engine)
    wall = time.perf_counter() - t0
    inside = sum(r["seconds"] for r in res["runs"])
    n = len(res["runs"])
    return {"engine": engine, "tasks": n, "wall_s": round(wall, 2),
            "tasks_per_min": round(60 * n / wall, 2), "in_task_fit_s": round(inside, 2),
            "overhead_per_task_s": round((wall * args.workers - inside) / n, 3),
            "test_HR@10": [r["test"]["HR@10"] for r in res["runs"]]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="a data set folder (default: synthetic)")
    ap.add_argument("--split", default="loo")
    ap.add_argument("--tasks", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sweep_engines.json"))
    args = ap.parse_args(argv)
    from amrlite.experiments.engine import ray_cluster, run_tasks
    from amrlite.experiments.store import load_data
    from amrlite.recommender import Model
    ds = load_data(args.data)
    sp = ds.split(args.split)
    eps = [round(0.05 * (k + 1), 2) for k in range(args.tasks)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        init = tmp / "vbpr.npz"
        Model("vbpr", backend=args.backend, epochs=5).fit(ds, split=sp).save(init)
        rows = []
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        with ray_cluster(processes=args.workers):
            start = time.perf_counter() - t0
            for k in range(args.rounds):
                for engine in ("local", "ray"):
                    rows.append(dict(_run(engine, ds, sp.name, init, eps, args,
                                          tmp / f"{engine}{k}"), round=k))
            jobs = [{"name": f"noop{k}", "data": None, "init": None} for k in range(100)]
            t1 = time.perf_counter()
            run_tasks(_noop, jobs, engine="ray", progress=False)
            noop = (time.perf_counter() - t1) / len(jobs)
        load1 = os.getloadavg()
    total = {e: sum(r["tasks"] for r in rows if r["engine"] == e) * 60
             / sum(r["wall_s"] for r in rows if r["engine"] == e) for e in ("local", "ray")}
    overhead = {e: sum(r["overhead_per_task_s"] for r in rows if r["engine"] == e) / args.rounds
                for e in ("local", "ray")}
    same = all(r["test_HR@10"] == rows[0]["test_HR@10"] for r in rows)
    out = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
           "data": args.data or "synthetic", "split": sp.name, "epochs": args.epochs,
           "backend": args.backend, "workers": args.workers, "rows": rows,
           "rounds": args.rounds, "tasks_per_min": {e: round(v, 2) for e, v in total.items()},
           "overhead_per_task_s": {e: round(v, 3) for e, v in overhead.items()},
           "ray_over_local_throughput": round(total["ray"] / total["local"], 3),
           "loadavg_before": load0, "loadavg_after": load1,
           "ray_cluster_start_s": round(start, 2), "ray_noop_task_s": round(noop, 4),
           "same_results": same}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    for r in rows:
        print(f"round {r['round']} {r['engine']:<6} {r['tasks']} tasks in {r['wall_s']:.1f}s: {r['tasks_per_min']:.1f} "
              f"tasks/min, overhead {r['overhead_per_task_s']:.2f} worker-s/task")
    print(f"total: local {total['local']:.2f}, ray {total['ray']:.2f} tasks/min; overhead "
          f"local {overhead['local']:.2f}, ray {overhead['ray']:.2f} worker-s/task; load "
          f"{load0[0]:.1f} -> {load1[0]:.1f}")
    print(f"ray/local throughput {out['ray_over_local_throughput']:.2f}; Ray start "
          f"{start:.1f}s (not counted); no-op Ray task {1000 * noop:.1f} ms; same results: {same}")
    return out


if __name__ == "__main__":
    main()
