"""What is specific to the CuPy backend (skipped without CuPy and a CUDA GPU): the fused epoch
(kernels/fused.py) against the array-level one on the device, the device sampler against its
NumPy twin, and the closed-form adversary on the device. Its parity with the reference (one
step, epochs, Γ, λ = 0, seed, ranks, eALS, Model.fit) is tests/test_parity.py's.

Tolerances: fused vs array-level within twice the cupy epochs tolerance of tests/cases.py (each
is within it of the reference: float64 1e-10, float32 5e-3); the sampler equals its NumPy twin
bit for bit; the closed-form adversary equals the explicit one to rel. 1e-10 in float64.
"""
import numpy as np
import pytest

from amrlite.kernels import arraylevel as al
from amrlite.kernels import gpu_available
from cases import CASE, cases, problem, rel, triples_of
from helpers import random_split

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")]


@pytest.fixture(scope="module")
def gpu():
    from amrlite.kernels import gpu
    return gpu


def dev(gpu, d):
    return {k: gpu.to_device(v.copy()) for k, v in d.items()}


def host(gpu, d):
    return {k: gpu.to_host(v) for k, v in d.items()}


@pytest.mark.parametrize("case", cases("bpr", exclude=("explicit-adversary",)),
                         ids=lambda c: c.name)
def test_fused_epochs_equal_arraylevel_epochs(gpu, case):
    prob = problem(case, seed=4)
    tol = 2 * case.tolerance("epochs", "cupy")
    feats = gpu.to_device(prob.features)
    runs = {}
    for fused in (True, False):
        params, accum = dev(gpu, prob.params), dev(gpu, prob.accum)
        losses = []
        for epoch in range(3):
            triples = tuple(gpu.to_device(t) for t in triples_of(prob, 10 + epoch))
            loss = gpu.train_epoch_queued(prob.spec, params, accum, feats, triples, prob.hp,
                                          fused=fused)
            assert not isinstance(loss, float)          # queued: a device scalar
            losses.append(float(loss))
        runs[fused] = losses, host(gpu, params), host(gpu, accum)
    (l_f, p_f, a_f), (l_a, p_a, a_a) = runs[True], runs[False]
    np.testing.assert_allclose(l_f, l_a, rtol=tol)
    for name in prob.params:
        assert p_f[name].dtype == case.dtype
        assert rel(p_a[name], p_f[name]) <= tol, name
        assert rel(a_a[name], a_f[name]) <= tol, name


def test_sampler_matches_numpy_twin(gpu):
    split, _ = random_split(n_users=25, n_items=40, per_user=10, seed=1)
    indptr, indices = split.train_csr
    pool = np.flatnonzero(split.warm_items).astype(np.int32)
    args = (split.train_users, split.train_items, indptr, indices, pool)
    for seed in (0, 12345, 2 ** 62 + 7):
        want = al.sample_epoch(*args, seed, np)
        got = gpu.sample_epoch_seeded(*args, seed)
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, gpu.to_host(b))


@pytest.mark.parametrize("form", ["eq4", "hm"])
def test_closed_form_equals_explicit_on_gpu(gpu, form):
    import cupy
    prob = problem(CASE[f"amr-{form}-float64"])
    u, i, j = (cupy.asarray(a[:128]) for a in triples_of(prob, 3))
    hp = prob.hp
    hp.eps, hp.lmd = 0.5, 1.0
    f = cupy.asarray(prob.features)
    l1, g1 = al.batch_gradients(prob.spec, dev(gpu, prob.params), f, u, i, j, hp, xp=cupy,
                                closed_form=True)
    l2, g2 = al.batch_gradients(prob.spec, dev(gpu, prob.params), f, u, i, j, hp, xp=cupy,
                                closed_form=False)
    assert abs(l1 - l2) < 1e-10 * abs(l1)
    for name in g1:
        a, b = g1[name], g2[name]
        a, b = (a[1], b[1]) if isinstance(a, tuple) else (a, b)
        assert rel(gpu.to_host(a), gpu.to_host(b)) < 1e-10, name


@pytest.mark.parametrize("n_users,n_items,n", [(7, 9, 12), (300, 5000, 10)])
def test_top_items_on_the_device_equal_the_reference(gpu, n_users, n_items, n):
    """The CuPy top-n (cuBLAS products, masked exclusions, a stable sort per row) returns the
    reference's lists: integer-valued factors make every score exact in float32, so equality is
    exact whatever order cuBLAS sums in; ties go to the smaller item index, padding is -1/-inf."""
    from amrlite.kernels import reference
    rng = np.random.default_rng(n_items)
    U = rng.integers(-2, 3, (n_users, 3)).astype(np.float32)
    V = rng.integers(-2, 3, (n_items, 3)).astype(np.float32)
    mask = rng.random((n_users, n_items)) < 0.3
    indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int64)
    indices = np.nonzero(mask)[1].astype(np.int32)
    users = rng.integers(0, n_users, 2 * n_users)
    want = reference.top_items(U, V, users, n, indptr, indices)
    got = gpu.top_items(gpu.to_device(U), gpu.to_device(V), users, n, indptr, indices)
    for w, g in zip(want, got):                 # factors on the device, lists on the host
        np.testing.assert_array_equal(g, w)
