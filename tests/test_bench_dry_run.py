"""The GPU benchmark script at a tiny size on the CPU (array-level path on NumPy): catches typos
in bench/gpu_bench.py without a GPU."""
import importlib.util
from pathlib import Path

import numpy as np


def test_gpu_bench_dry_run(tmp_path, capsys):
    path = Path(__file__).resolve().parents[1] / "bench" / "gpu_bench.py"
    spec = importlib.util.spec_from_file_location("gpu_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.main(["--dry-run", "--xp", "numpy", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert "== summary" in out and "full ranking" in out
    for key in ("numpy-arraylevel/mf/B16", "numpy-arraylevel/amr/B16", "numpy-arraylevel/amr/B64",
                "full_ranking"):
        assert key in results
    assert all(np.isfinite(r.get("train_s", 0)) for r in results.values())
    assert (tmp_path / "r.json").exists()
