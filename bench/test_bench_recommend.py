"""All-users top-10 on a small synthetic model, pytest-benchmark (not timed assertions).

    pytest bench/test_bench_recommend.py --benchmark-enable -q
    python bench/recommend.py                     # the Amazon-sized figure against its floor
"""
import pytest

from recommend import synthetic_model


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_recommend_all_users_small(benchmark, backend):
    model = synthetic_model(4096, 20_000, 40_000, 64)
    list(model.recommend_many(None, 10, backend=backend, chunk_size=512))     # compile, warm

    def run():
        return sum(len(c) for c in model.recommend_many(None, 10, backend=backend))
    assert benchmark.pedantic(run, rounds=2, iterations=1) == 4096
