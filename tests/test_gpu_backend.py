"""The CuPy backend on a CUDA GPU against the NumPy reference (skipped without a GPU).

Tolerances: float64 rel. 1e-10 (one step and three epochs; cuBLAS and the fused kernels sum in
another order than NumPy); float32 rel. 5e-4 after one step, 5e-3 after three epochs (max-abs
error over a block relative to its max-abs). The closed-form adversary equals the explicit one
to rel. 1e-10 in float64; the sampler equals its NumPy twin bit for bit; the same seed gives
the same parameters bit for bit; evaluation ranks are identical to the host's.
"""
import numpy as np
import pytest

from amrlite.kernels import arraylevel as al
from amrlite.kernels import gpu_available
from amrlite.kernels import reference as ref
from amrlite.models import ModelSpec, factors
from amrlite.metrics import full_ranks as host_full_ranks
from amrlite.metrics import sampled_ranks as host_sampled_ranks
from amrlite.train import TrainConfig
from helpers import assert_seed_decides_training, random_dataset, random_split
from test_arraylevel import CASES, copy, problem, rel, triples_of

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")]


@pytest.fixture(scope="module")
def gpu():
    from amrlite.kernels import gpu
    return gpu


def dev(gpu, d):
    return {k: gpu.to_device(v) for k, v in d.items()}


def host(gpu, d):
    return {k: gpu.to_host(v) for k, v in d.items()}


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(c))
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 5e-4)])
def test_one_step_matches_reference(gpu, case, dtype, tol):
    kind, form, adversary = (case + ("grad",))[:3]
    spec, split, features, params, _ = problem(kind, form, dtype)
    u, i, j = (a[:64] for a in triples_of(split, 1))
    hp = TrainConfig(reg=0.01, reg_e=0.02, eps=0.3, lmd=0.7, adversary=adversary)
    l_ref, g_ref = ref.batch_gradients(spec, params, features, u, i, j, hp)
    l_g, g_g = gpu.batch_gradients(spec, dev(gpu, params), gpu.to_device(features),
                                   *(gpu.to_device(a) for a in (u, i, j)), hp)
    assert abs(l_ref - l_g) <= tol * abs(l_ref)
    for name in g_ref:
        a, b = g_ref[name], g_g[name]
        if isinstance(a, tuple):
            np.testing.assert_array_equal(a[0], gpu.to_host(b[0]))
            a, b = a[1], b[1]
        assert rel(a, gpu.to_host(b)) < tol, name


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("case", CASES + [("amr", "eq4", "random")], ids=lambda c: "-".join(c))
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 5e-3)])
def test_epochs_match_reference(gpu, case, dtype, tol, fused):
    kind, form, adversary = (case + ("grad",))[:3]
    spec, split, features, params, accum = problem(kind, form, dtype, seed=4)
    hp = TrainConfig(reg=0.01, reg_e=0.01, eps=0.3, lmd=0.7, adversary=adversary, batch_size=48)
    p_ref, a_ref = copy(params), copy(accum)
    p_g, a_g = dev(gpu, params), dev(gpu, accum)
    feats = gpu.to_device(features)
    for epoch in range(3):
        triples = triples_of(split, 10 + epoch)
        if adversary == "random":          # different random streams: only finiteness, change
            gpu.train_epoch(spec, p_g, a_g, feats, tuple(gpu.to_device(t) for t in triples), hp,
                            np.random.default_rng(epoch), fused=fused)
            continue
        l_ref = ref.train_epoch(spec, p_ref, a_ref, features, triples, hp)
        l_g = gpu.train_epoch(spec, p_g, a_g, feats, tuple(gpu.to_device(t) for t in triples),
                              hp, fused=fused)
        assert abs(l_ref - l_g) < tol * abs(l_ref)
    got = host(gpu, p_g)
    for name in params:
        assert np.isfinite(got[name]).all()
        if adversary != "random":
            assert rel(p_ref[name], got[name]) < tol, name
            assert rel(a_ref[name], gpu.to_host(a_g[name])) < tol, name


@pytest.mark.parametrize("form", ["eq4", "hm"])
def test_closed_form_equals_explicit_on_gpu(gpu, form):
    import cupy
    spec, split, features, params, _ = problem("amr", form, np.float64)
    u, i, j = (cupy.asarray(a[:128]) for a in triples_of(split, 3))
    hp = TrainConfig(eps=0.5, lmd=1.0, reg=0.01)
    f = cupy.asarray(features)
    l1, g1 = al.batch_gradients(spec, dev(gpu, params), f, u, i, j, hp, xp=cupy, closed_form=True)
    l2, g2 = al.batch_gradients(spec, dev(gpu, params), f, u, i, j, hp, xp=cupy, closed_form=False)
    assert abs(l1 - l2) < 1e-10 * abs(l1)
    for name in g1:
        a, b = g1[name], g2[name]
        a, b = (a[1], b[1]) if isinstance(a, tuple) else (a, b)
        assert rel(gpu.to_host(a), gpu.to_host(b)) < 1e-10, name


def test_sampler_matches_numpy_twin_and_is_valid(gpu):
    split, _ = random_split(n_users=25, n_items=40, per_user=10, seed=1)
    indptr, indices = split.train_csr
    pool = np.flatnonzero(split.warm_items).astype(np.int32)
    args = (split.train_users, split.train_items, indptr, indices, pool)
    for seed in (0, 12345, 2 ** 62 + 7):
        want = al.sample_epoch(*args, seed, np)
        got = gpu.sample_epoch_seeded(*args, seed)
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, gpu.to_host(b))
    u, i, j = (gpu.to_host(a) for a in gpu.sample_epoch(*args, np.random.default_rng(3)))
    pairs = set(zip(split.train_users.tolist(), split.train_items.tolist()))
    assert sorted(zip(u.tolist(), i.tolist())) == sorted(pairs)
    assert not any((a, b) in pairs for a, b in zip(u.tolist(), j.tolist()))


def test_same_seed_same_result(gpu):
    assert assert_seed_decides_training("cupy").backend_used == "cupy"


def test_evaluation_metrics_identical(gpu):
    import cupy
    spec, split, features, params, _ = problem("amr", "hm", np.float64)
    U, V = factors(spec, params, features, split.warm_items)
    Ud, Vd = factors(spec, dev(gpu, params), cupy.asarray(features), split.warm_items, xp=cupy)
    rows = split.test
    indptr, indices = split.train_csr
    np.testing.assert_array_equal(
        gpu.full_ranks(Ud, Vd, rows.users, rows.items, indptr, indices, chunk=7),
        host_full_ranks(U, V, rows.users, rows.items, indptr, indices))
    np.testing.assert_array_equal(
        gpu.sampled_ranks(Ud, Vd, rows.users, rows.items, rows.negatives),
        host_sampled_ranks(U, V, rows.users, rows.items, rows.negatives))


def test_model_fit_runs_on_cupy_and_learns(gpu):
    from amrlite import Model
    ds, _ = random_dataset(n_users=60, n_items=80, per_user=12, seed=9)
    m = Model("mf", backend="cupy", epochs=20, lr=0.05, batch_size=64, eval_every=10,
              seed=0).fit(ds, split="rand")
    assert m.history.losses[-1] < 0.8 * m.history.losses[0]


def test_eals_epochs_match_reference(gpu):
    """cupy eALS (kernels/gpu.py eals_*): float64, rel. 1e-10 over 4 epochs (bincount on the
    device is an atomic scatter-add: the segment sums run in another order than NumPy's)."""
    from test_eals_arraylevel import _problem
    split, indptr, indices, P, Q, conf, w = _problem(seed=0, dim=6)
    d = gpu.to_device
    Pd, Qd = d(P), d(Q)
    indptr_d, indices_d, w_d, conf_d = d(indptr), d(indices), d(w), d(conf)
    layout = gpu.eals_layout(indptr, indices, split.n_items)
    pred = ref.eals_predictions(P, Q, indptr, indices)
    pred_d = gpu.eals_predictions(Pd, Qd, indptr_d, indices_d, layout=layout)
    assert rel(pred, gpu.to_host(pred_d)) < 1e-12
    for _ in range(4):
        l1 = ref.eals_epoch(P, Q, pred, indptr, indices, w, conf, 0.1)
        l2 = gpu.eals_epoch(Pd, Qd, pred_d, indptr_d, indices_d, w_d, conf_d, 0.1, layout=layout)
        assert isinstance(l2, float) and abs(l1 - l2) < 1e-10 * abs(l1)
        assert rel(P, gpu.to_host(Pd)) < 1e-10
        assert rel(Q, gpu.to_host(Qd)) < 1e-10
        assert rel(pred, gpu.to_host(pred_d)) < 1e-10


def test_eals_model_fit_on_cupy_matches_numpy():
    from amrlite import Model
    import amrlite
    ds = amrlite.load_dataset()
    runs = {}
    for backend in ("numpy", "cupy"):
        m = Model("eals", backend=backend, epochs=3, dim=16, eval_every=1, dtype="float64")
        m.eals_options = {"reg": 1.0}
        runs[backend] = m.fit(ds)
    a, b = runs["numpy"], runs["cupy"]
    assert b.backend_used == "cupy"
    np.testing.assert_allclose(b.history.losses, a.history.losses, rtol=1e-10)
    assert all(y <= x * (1 + 1e-12) for x, y in zip(b.history.losses, b.history.losses[1:]))
    for k in ("P", "Q"):
        assert isinstance(b.params[k], np.ndarray)
        assert rel(a.params[k], b.params[k]) < 1e-9, k
