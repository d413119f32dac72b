"""Per-epoch training time, pytest-benchmark (not timed assertions).

    pytest bench --benchmark-enable -q            # every problem/model/backend
    python bench/report.py                        # the table with ratios and the floor

Compilation and allocation happen in ``warm_up`` outside the timed rounds. The NumPy reference
runs 5% of the Amazon-shaped epoch (see ``extra_info['fraction']``); torch and cornac are skipped
when absent.
"""
import pytest

from epochs import MODELS, Epoch, available


def _bench(benchmark, backend, kind, data, fraction=1.0, rounds=2):
    if not available(backend):
        pytest.skip(f"{backend} not installed")
    split, features, triples = data
    ep = Epoch(backend, kind, split, features, triples, fraction)
    ep.warm_up()
    benchmark.extra_info["fraction"] = ep.fraction
    benchmark.pedantic(ep.run, rounds=rounds, iterations=1)


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("backend", ["numba", "numpy", "torch"])
def test_epoch_ml100k(benchmark, ml100k, backend, kind):
    _bench(benchmark, backend, kind, ml100k, rounds=1 if backend == "numpy" else 3)


def test_epoch_ml100k_cornac_bpr(benchmark, ml100k):
    if not available("cornac"):
        pytest.skip("cornac not installed")
    ep = Epoch("cornac", "mf", *ml100k)
    ep.warm_up()
    benchmark.pedantic(ep.cornac._fit, args=(1,), rounds=3, iterations=1)


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("backend", ["numba", "numpy", "torch"])
def test_epoch_amazon_shaped(benchmark, amazon, backend, kind):
    _bench(benchmark, backend, kind, amazon, fraction=0.05 if backend == "numpy" else 1.0,
           rounds=1 if backend != "numba" else 2)
