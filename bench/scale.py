"""How every stage grows with the data: the paper's Amazon size and beyond, on this machine.

    python bench/scale.py                              # sizes 1/8, 1/4, 1/2, 1 × Amazon
    python bench/scale.py --sizes 1/8,1,10             # ... and the "beyond" point
    python bench/scale.py --sizes 1/64 --out /tmp/s    # a quick try (results elsewhere)

For each size a synthetic data set is written (``--data-root``, default the system's temporary
folder; deleted afterwards unless ``--keep-data``): the native folder layout
(``interactions.csv``, ``features.npy`` float32 [n_items, 2048]) and the same interactions as a
raw log with string ids (``orders.csv``: ``customer_id,sku``). Size 1 is the paper's Amazon set
(83,337 users, 299,555 items, 706,944 interactions, D = 2048); "10" is 833,370 users, 1,000,000
items and 7,069,490 interactions (8.2 GB of features).

Every stage runs in a fresh Python process, which first builds what the stage needs (loads the
data, the stored split, the trained model: not timed) and then runs the stage once under the
timer; ``--repeats N`` runs it in N fresh processes and keeps the fastest (all N times are
recorded, with the load average before each). Peak RSS is the process's ``VmHWM`` with the high-water mark reset (``/proc/self/
clear_refs``) after that setup: the most resident memory while the stage ran, its inputs
included (pages of the memory-mapped features count once touched). ``process peak`` is the
whole process's ``ru_maxrss``, setup included. Stages:

* ``load-native`` / ``load-raw``: :func:`amrlite.load_dataset` of the folder (features
  memory-mapped and checked) / of ``orders.csv`` (string ids mapped to indices; no features);
  ``load-l2``: the folder with ``normalize="l2"`` (the normalised features built in a
  memory-mapped scratch file);
* ``split-99`` / ``split-999``: the leave-one-out split with 99 / 999 sampled negatives per
  held-out row (the 99 one is stored as ``split-bench/`` for the later stages);
* ``epoch-mf`` / ``epoch-vbpr`` / ``epoch-amr``: ``Model(kind, backend="numba").fit`` for one
  epoch, no validation (Numba compiled beforehand, on a tiny set);
* ``eval-sampled`` / ``eval-full``: the AMR model's test metrics among the 99 negatives / among
  all items (``full_ranking``; Numba backend), with the GEMM floor of the scoring products
  (rows × items × F multiply-adds at the measured sgemm rate of this machine);
* ``attack``: the feature-level FGSM attack at ε = 0.1 on the sampled test rows;
* ``recommend``: ``Model.recommend_many`` top 10 for every user (where this amrlite has it);
* ``save`` / ``load``: the AMR model to/from ``.npz``;
* ``cli-fit`` (``--cli``, size 1 by default): ``amrlite fit --data DIR --split loo --model amr
  --no-pretrain --epochs 1``, start to metrics, as one process.

At the "10" point, full ranking and recommend serve a seeded 10% sample of the users (marked in
the table). Results: ``bench/results/scale-<stamp>.json``, ``.md`` (the table) and ``.png``
(log-log seconds against interactions), with the machine, the commit and the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

AMAZON = dict(n_users=83_337, n_items=299_555, n_inter=706_944)
BEYOND = dict(n_users=833_370, n_items=1_000_000, n_inter=7_069_490)
D = 2048
SIZES = {"1/64": 1 / 64, "1/8": 1 / 8, "1/4": 1 / 4, "1/2": 1 / 2, "1": 1.0, "10": None}
STAGES = ("load-native", "load-raw", "load-l2", "split-99", "split-999", "epoch-mf", "epoch-vbpr",
          "epoch-amr", "eval-sampled", "eval-full", "attack", "recommend", "save", "load")
SAMPLE_SHARE = 0.1                      # users served by full ranking / recommend at "10"
GB = 1 << 30


def shape_of(size):
    if SIZES[size] is None:
        return dict(BEYOND)
    f = SIZES[size]
    return {k: int(round(v * f)) for k, v in AMAZON.items()}


# ----------------------------------------------------------------------------------------------
# the generator
# ----------------------------------------------------------------------------------------------

def _interactions(n_users, n_items, n_inter, rng):
    """Distinct (user, item) pairs: every user at least 3 (so leave-one-out holds each one out),
    the rest spread log-normally over users; items popularity-skewed (∝ (rank + 50)^-0.7)."""
    extra = n_inter - 3 * n_users
    w = rng.lognormal(0.0, 1.0, n_users)
    per_user = 3 + rng.multinomial(extra, w / w.sum())
    per_user = np.minimum(per_user, n_items // 2)
    pop = (np.arange(n_items) + 50.0) ** -0.7
    cdf = np.cumsum(pop / pop.sum())
    item_of_rank = rng.permutation(n_items)
    keys = np.zeros(0, dtype=np.int64)
    need = per_user.copy()
    while need.sum() > 0:
        u = np.repeat(np.arange(n_users), need)
        i = item_of_rank[np.minimum(np.searchsorted(cdf, rng.random(len(u))), n_items - 1)]
        keys = np.unique(np.concatenate([keys, u.astype(np.int64) * n_items + i]))
        have = np.bincount(keys // n_items, minlength=n_users)
        over = have - per_user                       # drop the surplus of each user, at random
        if (over > 0).any():
            order = np.lexsort((rng.random(len(keys)), keys // n_items))
            keys = keys[order]
            users_k = keys // n_items
            rank = np.arange(len(keys)) - np.searchsorted(users_k, users_k)
            keys = np.sort(keys[rank < per_user[users_k]])
            have = np.bincount(keys // n_items, minlength=n_users)
        need = per_user - have
    keys = rng.permutation(keys)                     # a log's order, not sorted by user
    return keys // n_items, keys % n_items


def _write_csv(path, header, cols, fmt):
    with open(path, "w") as f:
        f.write(header + "\n")
        for s in range(0, len(cols[0]), 1 << 20):
            rows = zip(*(c[s:s + (1 << 20)].tolist() for c in cols))
            f.write("".join(fmt % r for r in rows))


def generate(folder, n_users, n_items, n_inter, n_features=D, seed=0):
    """Write the native folder layout and ``orders.csv`` (string ids) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    users, items = _interactions(n_users, n_items, n_inter, rng)
    _write_csv(folder / "interactions.csv", "user,item", (users, items), "%d,%d\n")
    cust = rng.permutation(n_users) + 100_000        # string ids: not the indices, not in order
    sku = rng.permutation(n_items)
    _write_csv(folder / "orders.csv", "customer_id,sku", (cust[users], sku[items]),
               "C-%07d,SKU-%06X\n")
    feats = np.lib.format.open_memmap(folder / "features.npy", mode="w+", dtype=np.float32,
                                      shape=(n_items, n_features))
    for s in range(0, n_items, 16_384):
        e = min(n_items, s + 16_384)
        feats[s:e] = rng.random((e - s, n_features), dtype=np.float32)
    feats.flush()
    del feats


# ----------------------------------------------------------------------------------------------
# one stage, in its own process
# ----------------------------------------------------------------------------------------------

def reset_peak():
    """Reset this process's RSS high-water mark (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _sample(rows, share, seed=0):
    from amrlite import EvalRows
    idx = np.sort(np.random.default_rng(seed).permutation(len(rows))[:int(len(rows) * share)])
    return EvalRows(rows.users[idx], rows.items[idx], None)


def sgemm_rate(n_rows, n_features, n_items, repeats=3):
    """Multiply-adds per second of ``(n_rows × F) @ (F × n_items)`` float32 products."""
    rng = np.random.default_rng(0)
    a = rng.random((n_rows, n_features), dtype=np.float32)
    b = rng.random((n_items, n_features), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b.T
        best = min(best, time.perf_counter() - t)
    return n_rows * n_features * n_items / best


def run_stage(stage, folder, sampled):
    import amrlite
    from amrlite.attack import attack
    from amrlite.data import save_split
    from amrlite.kernels.reference import score_rows
    folder = Path(folder)
    model_path = folder / "amr.npz"
    out = {}
    loads = ("load-native", "load-raw", "load-l2", "load")
    ds = None if stage in loads else amrlite.load_dataset(folder)

    def fit(kind):
        m = amrlite.Model(kind, backend="numba", epochs=1, eval_every=0, seed=0)
        return m.fit(ds, split="bench")

    if stage.startswith("epoch-"):               # compile outside the timing: a few users
        sp = ds.split("bench")
        few = sp.train_users < 50
        tiny = amrlite.Split("tiny", sp.n_users, sp.n_items, sp.train_users[few],
                             sp.train_items[few], None, amrlite.EvalRows(
                                 sp.test.users[:5], sp.test.items[:5], sp.test.negatives[:5]))
        amrlite.Model(stage[6:], backend="numba", epochs=1, eval_every=0).fit(
            tiny, features=ds.features)
    if stage in ("eval-sampled", "eval-full", "attack", "recommend", "save"):
        model = amrlite.Model.load(model_path)
        sp = ds.split("bench")
        _compile_ranking(model._V.dtype, model._V.shape[1])
    if stage == "recommend":
        if not hasattr(amrlite.Model, "recommend_many"):
            return {"seconds": None, "note": "not available (Model.recommend_many)"}
        for _ in model.recommend_many([0], n=10, backend="numba"):   # compile the kernel
            pass
    reset_peak()
    t = time.perf_counter()
    if stage == "load-native":
        ds = amrlite.load_dataset(folder)
        out["n"] = [ds.n_users, ds.n_items, ds.n_interactions]
    elif stage == "load-l2":
        ds = amrlite.load_dataset(folder, normalize="l2")
        out["n"] = [ds.n_users, ds.n_items, ds.n_interactions]
    elif stage == "load-raw":
        ds = amrlite.load_dataset(folder / "orders.csv")
        out["n"] = [ds.n_users, ds.n_items, ds.n_interactions]
    elif stage in ("split-99", "split-999"):
        sp = ds.split("loo", n_negatives=int(stage[6:]))
        seconds = time.perf_counter() - t          # the saving below is not part of the stage
        if stage == "split-99":
            save_split(sp, folder / "split-bench", overwrite=True)
        out["rows"] = int(len(sp.test) + len(sp.valid))
        return _finish(out, seconds)
    elif stage.startswith("epoch-"):
        m = fit(stage[6:])
        seconds = time.perf_counter() - t          # the saving below is not part of the stage
        if stage == "epoch-amr":
            m.save(model_path)
        return _finish(out, seconds)
    elif stage == "eval-sampled":
        out["metrics"] = _metrics(amrlite.evaluate(model, sp, features=ds.features,
                                                   backend="numba"))
    elif stage == "eval-full":
        rows = _sample(sp.test, SAMPLE_SHARE) if sampled else sp.test
        sub = amrlite.Split(sp.name, sp.n_users, sp.n_items, sp.train_users, sp.train_items,
                            None, rows)
        out["metrics"] = _metrics(amrlite.evaluate(model, sub, features=ds.features,
                                                   full_ranking=True, backend="numba"))
        seconds = time.perf_counter() - t
        F = model._V.shape[1]
        rate = sgemm_rate(min(len(rows), score_rows(sp.n_items)), F, sp.n_items)
        out.update(rows=int(len(rows)), factors=int(F), sgemm_gmacs=rate / 1e9,
                   floor_seconds=len(rows) * sp.n_items * F / rate)
        return _finish(out, seconds)
    elif stage == "attack":
        res = attack(model, ds, "bench", [0.1], kind="adversarial", objective="test")
        out["ndcg10"] = [res["clean"]["NDCG@10"], res["eps"]["0.1"]["NDCG@10"]]
    elif stage == "recommend":
        users = None                             # every user
        if sampled:
            idx = np.sort(np.random.default_rng(0).permutation(ds.n_users)[
                :int(ds.n_users * SAMPLE_SHARE)])
            users = idx if model.user_ids is None else model.user_ids[idx]
        served = 0
        for chunk in model.recommend_many(users, n=10, backend="numba"):
            served += len(chunk.user_index)
        out["users"] = served
    elif stage == "save":
        model.save(folder / "amr-copy.npz")
    elif stage == "load":
        amrlite.Model.load(model_path)
    return _finish(out, time.perf_counter() - t)


def _compile_ranking(dtype, F):
    """Run the Numba rank counting once on a tiny problem (compilation outside the timing)."""
    from amrlite.backends import get_backend
    b = get_backend("numba")
    U, V = np.ones((2, F), dtype), np.ones((5, F), dtype)
    b.full_ranks(U, V, [0, 1], [0, 1], np.array([0, 1, 2]), np.array([2, 3]))
    b.sampled_ranks(U, V, [0, 1], [0, 1], np.array([[2, 3], [3, 4]]))


def _metrics(m):
    return {k: m[k] for k in ("HR@10", "NDCG@10")}


def _finish(out, seconds):
    out["seconds"] = seconds
    out["peak_rss_gb"] = status_kb("VmHWM") / (1 << 20)
    out["process_peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)
    return out


def _child(argv, timeout):
    """Run ``argv``; (its last JSON line or None, wall seconds, stderr's last line on failure)."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=REPO)
    try:
        stdout, stderr = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        stdout, stderr = p.communicate()
        stderr += f"\ntimed out after {timeout} s"
    wall = time.perf_counter() - t
    line = next((ln for ln in reversed(stdout.splitlines()) if ln.startswith("{")), None)
    return (json.loads(line) if line and p.returncode == 0 else None), wall, \
        stderr.strip().splitlines()[-1:] if p.returncode else []


# ----------------------------------------------------------------------------------------------
# the driver
# ----------------------------------------------------------------------------------------------

def machine():
    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":(exclude)bench/results"],            # not its own output files
                           cwd=REPO, capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem, 1),
            "python": platform.python_version(), "numpy": np.__version__,
            "commit": commit + ("+dirty" if dirty else ""), "host": platform.node()}


def table(results, sizes=None, stages=None):
    """The markdown table: one row per size × stage (``sizes``/``stages``: only these, in this
    order; one the results lack is a ``KeyError``)."""
    base = {st: v["seconds"] / (r["shape"]["n_inter"] / 1e6) for r in results
            if r["size"] == "1/8" for st, v in r["stages"].items() if v.get("seconds")}
    lines = ["| size | users | items | interactions | stage | seconds | s / M inter. | × 1/8 "
             "| peak RSS GB | process peak GB | note |", "|" + "---|" * 11]
    by_size = {r["size"]: r for r in results}
    for size in by_size if sizes is None else sizes:
        r = by_size[size]
        n = r["shape"]
        for st in r["stages"] if stages is None else stages:
            v = r["stages"][st]
            s = v.get("seconds")
            per = None if s is None else s / (n["n_inter"] / 1e6)
            ratio = f"{per / base[st]:.2f}" if per is not None and base.get(st) else "–"
            note = v.get("note", "")
            if "floor_seconds" in v:
                note = (note + "; " if note else "") + (
                    f"GEMM floor {v['floor_seconds']:.1f} s ({v['sgemm_gmacs']:.0f} G mult-add/s)"
                    f", {s / v['floor_seconds']:.2f}× floor")
            lines.append(
                f"| {r['size']} | {n['n_users']:,} | {n['n_items']:,} | {n['n_inter']:,} | {st} | "
                + ("–" if s is None else f"{s:.2f}") + " | "
                + ("–" if per is None else f"{per:.2f}") + f" | {ratio} | "
                + (f"{v['peak_rss_gb']:.2f}" if "peak_rss_gb" in v else "–") + " | "
                + (f"{v['process_peak_gb']:.2f}" if "process_peak_gb" in v else "–") + f" | {note} |")
    return "\n".join(lines)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 6))
    stages = [st for st in STAGES + ("cli-fit",)
              if any(r["stages"].get(st, {}).get("seconds") for r in results)]
    colors = plt.get_cmap("tab20").colors
    for k, st in enumerate(stages):
        pts = [(r["shape"]["n_inter"], r["stages"][st]["seconds"]) for r in results
               if r["stages"].get(st, {}).get("seconds")]
        x, y = zip(*pts)
        ax.plot(x, y, marker="osD^v<>ph*"[k % 10], color=colors[k % 20], ls="-", label=st)
    xs = np.array(sorted({r["shape"]["n_inter"] for r in results}), dtype=float)
    if len(xs) > 1:
        ax.plot(xs, 1.0 * xs / xs[0], color="gray", ls=":", label="linear (slope 1)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("interactions")
    ax.set_ylabel("seconds")
    ax.set_title("amrlite stage times against data size (one process per stage)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1/8,1/4,1/2,1")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--cli", default="1", help="sizes at which to time the whole `amrlite fit` "
                    "(comma-separated; empty: none)")
    ap.add_argument("--data-root", default=tempfile.gettempdir())
    ap.add_argument("--keep-data", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--stamp", default=datetime.now(timezone.utc).strftime("%Y%m%d-%H%M"))
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--repeats", type=int, default=1, help="run each stage this many times (a "
                    "fresh process each) and keep the fastest; all times are recorded")
    ap.add_argument("--resume", action="store_true", help="add the sizes and stages to the run "
                    "of the same --stamp (replacing the stages of a size it already has) instead "
                    "of starting a new one")
    args = ap.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        ap.error(f"--sizes: unknown {unknown[0]!r}; choose among {', '.join(SIZES)}")
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    cli_sizes = {s.strip() for s in args.cli.split(",") if s.strip()}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"scale-{args.stamp}"
    this_machine = machine()
    report = {"machine": this_machine, "started": datetime.now(timezone.utc).isoformat(),
              "load_average_start": os.getloadavg(), "sizes": []}
    if args.resume and stem.with_suffix(".json").exists():     # add to an earlier run
        report = json.loads(stem.with_suffix(".json").read_text())
        report.setdefault("runs", []).append({"machine": this_machine, "started": datetime.now(
            timezone.utc).isoformat(), "load_average_start": os.getloadavg(), "sizes": sizes,
            "stages": stages})
    print(f"machine: {this_machine}; load average {os.getloadavg()}", flush=True)
    for size in sizes:
        shape = shape_of(size)
        sampled = SIZES[size] is None
        folder = Path(tempfile.mkdtemp(prefix=f"amrlite-scale-{size.replace('/', '_')}-",
                                       dir=args.data_root))
        entry = next((r for r in report["sizes"] if r["size"] == size), None)
        if entry is None:
            entry = {"size": size, "shape": shape, "load_average": [],
                     "sampled_users": SAMPLE_SHARE if sampled else None, "stages": {}}
            report["sizes"].append(entry)
        entry["load_average"].append(os.getloadavg())
        try:
            t = time.perf_counter()
            generate(folder, shape["n_users"], shape["n_items"], shape["n_inter"])
            entry["generate_seconds"] = time.perf_counter() - t
            print(f"[{size}] generated {shape} in {entry['generate_seconds']:.1f} s", flush=True)
            for st in stages:
                runs = []
                for _ in range(args.repeats):
                    load = os.getloadavg()[0]          # other work on the machine shows here
                    res, wall, err = _child([sys.executable, __file__, "--stage", st,
                                             str(folder)] + (["--sampled"] if sampled else []),
                                            args.timeout)
                    res = res or {"seconds": None, "note": "failed: " + " ".join(err)}
                    res.update(wall_seconds=wall, load_average_1min=load)
                    runs.append(res)
                    if res["seconds"] is None:
                        break
                res = min(runs, key=lambda r: (r["seconds"] is None, r["seconds"] or 0))
                if len(runs) > 1:                      # the fastest run is the stage's time
                    res["all_seconds"] = [r["seconds"] for r in runs]
                res["commit"] = this_machine["commit"]
                if sampled and st in ("eval-full", "recommend") and res.get("seconds"):
                    res["note"] = (res.get("note", "") + f" {SAMPLE_SHARE:.0%} of the users").strip()
                entry["stages"][st] = res
                print(f"[{size}] {st}: {res.get('seconds')} s, peak "
                      f"{res.get('peak_rss_gb', 0):.2f} GB {res.get('note', '')}", flush=True)
                _save(report, stem)
            if size in cli_sizes:
                argv_cli = [str(Path(sys.executable).with_name("amrlite")), "fit", "--data",
                            str(folder), "--split", "loo", "--model", "amr", "--no-pretrain",
                            "--epochs", "1", "--out", str(folder / "cli.npz")]
                res = _cli(argv_cli, args.timeout)
                entry["stages"]["cli-fit"] = res
                print(f"[{size}] cli-fit: {res}", flush=True)
            entry["load_average"].append(os.getloadavg())
            _save(report, stem)
        finally:
            if not args.keep_data:
                shutil.rmtree(folder, ignore_errors=True)
    report["finished"] = datetime.now(timezone.utc).isoformat()
    report["load_average_end"] = os.getloadavg()
    report["sizes"].sort(key=lambda r: r["shape"]["n_inter"])
    _save(report, stem)
    print(table(report["sizes"]))


def _cli(argv, timeout):
    """Time a whole command (killed after ``timeout`` seconds); its peak RSS from ``wait4``.
    Its output goes to a file, so a long output cannot stall it."""
    with tempfile.TemporaryFile("w+") as log:
        t = time.perf_counter()
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.DEVNULL, text=True)
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t > timeout:
                p.kill()
            time.sleep(0.05)
        wall = time.perf_counter() - t
        log.seek(0)
        stdout = log.read()
    ok = os.waitstatus_to_exitcode(status) == 0
    return {"seconds": wall if ok else None, "peak_rss_gb": usage.ru_maxrss / (1 << 20),
            "note": "whole command" if ok else f"failed: {stdout.strip().splitlines()[-1:]}",
            "stdout_tail": stdout.strip().splitlines()[-3:]}


def _save(report, stem):
    from amrlite.jsonio import dumps
    stem.with_suffix(".json").write_text(dumps(report, indent=1) + "\n")
    loads = "\n".join(f"* size {r['size']}: load average (1, 5, 15 min) "
                      + " → ".join(f"({', '.join(f'{x:.1f}' for x in la)})"
                                   for la in r["load_average"]) for r in report["sizes"])
    stem.with_suffix(".md").write_text(
        f"machine: {report['machine']}\n\n{loads}\n\n" + table(report["sizes"]) + "\n")
    if any(r["stages"] for r in report["sizes"]):
        plot(report["sizes"], stem.with_suffix(".png"))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--stage":
        res = run_stage(sys.argv[2], sys.argv[3], "--sampled" in sys.argv[4:])
        print(json.dumps(res))
    else:
        main()
