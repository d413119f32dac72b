"""What only the Numba backend has: its gradients against finite differences, the closed-form
adversary against the reference's explicit D-dimensional Γ → Δ (float64, rel. err < 1e-10), the
sampler's chunked seeding (uniform, independent of the thread count), results independent of
numba's on-disk cache, and chunked rank counting.

Parity with the reference — one step and three epochs (float32 ≤ 2e-6·max|θ| per block, float64
≤ 1e-10), λ = 0 ⇒ VBPR bit for bit, same seed ⇒ same parameters, identical ranks, eALS — is
tests/test_parity.py, for every backend at once.
"""
import numpy as np
import pytest

from amrlite.gradcheck import TOLERANCE, check_model, tiny_problem
from amrlite.kernels import cpu, cpu_ranking
from amrlite.kernels import reference as ref
from amrlite.models import ModelSpec, init_params
from amrlite.train import TrainConfig
from helpers import random_split

MODELS = [("mf", "eq4"), ("duif", "eq4"), ("vbpr", "eq4"), ("vbpr", "hm"), ("amr", "eq4"),
          ("amr", "hm")]
F32_TOL = 2e-6


def problem(kind, form, dtype, seed=0, n_users=40, n_items=70, dim=8, n_features=24, n=300,
            zero_gamma=True):
    """Random parameters and triples with repeated items, unused (cold) items and, for content
    models, one user with a zero content vector (its items get Γ = 0 in the Eq. 4 form)."""
    spec = ModelSpec(kind, form)
    rng = np.random.default_rng(seed)
    params = init_params(spec, n_users, n_items, dim, n_features if spec.has_content else 0,
                         seed=seed, std=0.3, dtype=dtype)
    for name in ("b", "w"):
        if name in params:
            params[name] = (rng.standard_normal(params[name].shape) * 0.3).astype(dtype)
    features = rng.standard_normal((n_items, n_features)).astype(dtype)
    u = rng.integers(0, n_users - 1, n).astype(np.int32)
    i = rng.integers(0, n_items - 10, n).astype(np.int32)          # items ≥ n_items−10: cold
    j = rng.integers(0, n_items - 10, n).astype(np.int32)
    if zero_gamma and spec.has_content:
        params["H" if spec.separate_content_user else "P"][n_users - 1] = 0
        u[5], i[5], j[5] = n_users - 1, n_items - 10, n_items - 9   # items seen only by it
    hp = TrainConfig(reg=0.01, reg_e=0.02, eps=0.3, lmd=0.7, lr=0.05, batch_size=64,
                     dtype=np.dtype(dtype).name)
    return spec, params, features, (u, i, j), hp


def dense(g, shape):
    if isinstance(g, tuple):
        out = np.zeros(shape, dtype=np.float64)
        out[g[0]] = g[1]
        return out
    return g


@pytest.mark.parametrize("kind,form", MODELS)
def test_gradcheck_numba(kind, form):
    for block, err in check_model(kind, form, "numba").items():
        assert err < TOLERANCE, (block, err)




def _run(backend, spec, params, features, triples, hp, epochs):
    p = {k: v.copy() for k, v in params.items()}
    acc = {k: np.zeros_like(v) for k, v in params.items()}
    losses = [backend.train_epoch(spec, p, acc, features, triples, hp) for _ in range(epochs)]
    return p, acc, losses




@pytest.mark.parametrize("form", ["eq4", "hm"])
def test_closed_form_equals_explicit_delta(form):
    """‖Γ_k‖, E Δ_k and w·Δ_k from K×K algebra equal the explicit D-dim Γ → Δ (float64)."""
    for seed in range(3):
        spec, params, features, (u, i, j), hp = problem("amr", form, np.float64, seed=seed,
                                                        n_features=50, dim=6)
        u, i, j = u[:64], i[:64], j[:64]
        items, gamma = ref.content_gradient(spec, params, features, u, i, j)
        delta = ref.adversarial_perturbation(gamma, hp.eps)
        c_items, norm, e_delta, w_delta = cpu.adversarial_closed_form(spec, params, features,
                                                                       u, i, j, hp.eps)
        np.testing.assert_array_equal(items, c_items)
        true_norm = np.linalg.norm(gamma, axis=1)
        assert np.abs(norm - true_norm).max() <= 1e-10 * true_norm.max()
        if form == "eq4":
            assert (true_norm == 0).any() and np.all(norm[true_norm == 0] == 0)
        explicit = delta @ params["E"].T
        assert np.linalg.norm(e_delta - explicit) <= 1e-10 * np.linalg.norm(explicit)
        w_explicit = delta @ params["w"] if form == "hm" else np.zeros(len(items))
        assert np.abs(w_delta - w_explicit).max() <= 1e-10 * max(np.abs(w_explicit).max(), 1)
        # and Γ itself through Γ = V E + a wᵀ
        _, gamma_nb = cpu.content_gradient(spec, params, features, u, i, j)
        assert np.linalg.norm(gamma_nb - gamma) <= 1e-10 * np.linalg.norm(gamma)


def test_zero_gamma_item_of_tiny_problem_gets_no_perturbation():
    spec = ModelSpec("amr")
    params, features, (u, i, j) = tiny_problem(spec)
    items, norm, e_delta, _ = cpu.adversarial_closed_form(spec, params, features, u, i, j, 0.3)
    k = list(items).index(6)
    assert norm[k] == 0 and np.all(e_delta[k] == 0)








def test_sampler_is_uniform_over_the_pool_and_chunked():
    """Many chunks (≥ 2 seeds): the negatives of a user with one positive are uniform."""
    n = 3 * cpu.SAMPLE_CHUNK + 17
    users = np.zeros(n, np.int32)
    items = np.zeros(n, np.int32)
    indptr, indices = np.array([0, 1]), np.array([0], np.int32)
    pool = np.arange(10, dtype=np.int32)
    _, _, j = cpu.sample_epoch(users, items, indptr, indices, pool, np.random.default_rng(5))
    counts = np.bincount(j, minlength=10)
    assert counts[0] == 0
    expected = n / 9
    assert np.all(np.abs(counts[1:] - expected) < 5 * np.sqrt(expected))


def test_sampler_does_not_depend_on_the_thread_count():
    import numba
    split, _ = random_split(n_users=30, n_items=50, per_user=8, seed=2)
    indptr, indices = split.train_csr
    pool = np.flatnonzero(split.warm_items)
    args = (split.train_users, split.train_items, indptr, indices, pool)
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one thread only")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = cpu.sample_epoch(*args, np.random.default_rng(9))
        numba.set_num_threads(2)
        two = cpu.sample_epoch(*args, np.random.default_rng(9))
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(x, y) for x, y in zip(one, two))


# the script each subprocess runs: two epochs of every fused content model on a small random
# problem, printing a hash of the parameters per model
_CACHE_SCRIPT = r'''
import hashlib, sys
import numpy as np
from amrlite.kernels import cpu
from amrlite.models import ModelSpec, init_params
from amrlite.train import TrainConfig
rng = np.random.default_rng(0)
n_users, n_items, D, K = 300, 400, 384, 64
u = rng.integers(0, n_users, 2048).astype(np.int32)
i = rng.integers(0, n_items, 2048).astype(np.int32)
j = rng.integers(0, n_items, 2048).astype(np.int32)
F = rng.standard_normal((n_items, D)).astype(np.float32)
hp = TrainConfig(dim=K, batch_size=512, lr=0.05, reg=1e-3, eps=0.5, lmd=1.0)
for kind, form in (("duif", "eq4"), ("vbpr", "eq4"), ("vbpr", "hm"), ("amr", "eq4"), ("amr", "hm")):
    spec = ModelSpec(kind, form)
    params = init_params(spec, n_users, n_items, K, D, seed=1, std=0.1, dtype=np.dtype("float32"))
    acc = {k: np.zeros_like(v) for k, v in params.items()}
    for _ in range(2):
        cpu.train_epoch(spec, params, acc, F, (u, i, j), hp)
    print(kind, form, hashlib.sha1(b"".join(params[k].tobytes() for k in sorted(params))).hexdigest())
'''


def test_results_do_not_depend_on_the_numba_cache(tmp_path):
    """The same epoch gives the same bits whether numba compiles its kernels afresh or loads them
    from its on-disk cache: two processes share an empty ``NUMBA_CACHE_DIR``, the first compiles
    (and fills it), the second loads. (With fastmath on the row-gradient loops, the code numba
    loaded for ``_batch`` differed from the code it had just compiled, by an ulp in ∂P, so a
    run's numbers depended on whether the cache was warm.)"""
    import os
    import subprocess
    import sys
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    runs = [subprocess.run([sys.executable, "-c", _CACHE_SCRIPT], env=env, capture_output=True,
                           text=True, check=True, timeout=600).stdout for _ in range(2)]
    assert len(runs[0].splitlines()) == 5
    assert runs[0] == runs[1]






@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_full_rank_kernel_chunks_equal_the_reference(dtype):
    """The Numba full ranking counts chunk by chunk (a size the face keeps internal): a chunk
    that does not divide the rows gives the reference's ranks (tests/test_parity.py checks the
    face with its default chunk)."""
    split, _ = random_split(n_users=40, n_items=90, per_user=10, seed=4, n_neg=30)
    rng = np.random.default_rng(1)
    rows = split.test
    indptr, indices = split.train_csr
    Ur, Vr = rng.standard_normal((40, 7)).astype(dtype), rng.standard_normal((90, 7)).astype(dtype)
    np.testing.assert_array_equal(
        cpu_ranking.full_ranks(Ur, Vr, rows.users, rows.items, indptr, indices, chunk=7),
        ref.full_ranks(Ur, Vr, rows.users, rows.items, indptr, indices))


