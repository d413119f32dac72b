"""The GPU backend's array-level path (kernels/arraylevel.py) run on NumPy, against the reference.

Tolerances: float64 parity with the reference is checked to rel. 1e-12 per step (gradients)
and 1e-9 after several epochs; float32 to rel. 2e-4 after one step (max-abs error over the
block, relative to the block's max-abs) and 2e-3 after epochs. The closed-form adversary equals
the explicit one to rel. 1e-10 in float64. λ = 0 equals VBPR bit for bit.
"""
import numpy as np
import pytest

from amrlite import gradcheck
from amrlite.gradcheck import TOLERANCE, tiny_problem
from amrlite.kernels import arraylevel as al
from amrlite.kernels import reference as ref
from amrlite.metrics import full_ranks as metrics_full_ranks
from amrlite.metrics import sampled_ranks as metrics_sampled_ranks
from amrlite.models import ModelSpec, factors, init_params
from amrlite.train import TrainConfig
from helpers import random_split

MODELS = [("mf", "eq4"), ("duif", "eq4"), ("vbpr", "eq4"), ("vbpr", "hm"), ("amr", "eq4"),
          ("amr", "hm")]
CASES = MODELS + [("amr", "eq4", "sign"), ("amr", "hm", "sign")]
BACKEND = al.make_backend(np, "numpy-arraylevel")


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(initial=0), np.abs(b).max(initial=0))
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)


def problem(kind, form, dtype, seed=0, n_users=40, n_items=60, dim=8, n_features=12):
    spec = ModelSpec(kind, form)
    split, features = random_split(n_users=n_users, n_items=n_items, per_user=8,
                                   n_features=n_features, seed=seed)
    params = init_params(spec, n_users, n_items, dim, n_features, seed=seed, std=0.3, dtype=dtype)
    rng = np.random.default_rng(seed)
    for name in ("b", "w"):
        if name in params:
            params[name] = (rng.standard_normal(params[name].shape) * 0.3).astype(dtype)
    accum = {k: np.full_like(v, 0.1) for k, v in params.items()}
    return spec, split, features.astype(dtype), params, accum


def copy(d):
    return {k: v.copy() for k, v in d.items()}


def triples_of(split, seed):
    indptr, indices = split.train_csr
    return ref.sample_epoch(split.train_users, split.train_items, indptr, indices,
                            np.flatnonzero(split.warm_items), np.random.default_rng(seed))


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(c))
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-4)])
def test_one_step_matches_reference(case, dtype, tol):
    kind, form, adversary = (case + ("grad",))[:3]
    spec, split, features, params, _ = problem(kind, form, dtype)
    u, i, j = (a[:64] for a in triples_of(split, 1))
    hp = TrainConfig(reg=0.01, reg_e=0.02, eps=0.3, lmd=0.7, adversary=adversary)
    l_ref, g_ref = ref.batch_gradients(spec, params, features, u, i, j, hp)
    l_al, g_al = al.batch_gradients(spec, copy(params), features, u, i, j, hp)
    assert abs(l_ref - l_al) <= tol * abs(l_ref)
    assert set(g_ref) == set(g_al)
    for name in g_ref:
        a, b = g_ref[name], g_al[name]
        if isinstance(a, tuple):
            np.testing.assert_array_equal(a[0], b[0])
            a, b = a[1], b[1]
        assert b.dtype == dtype
        assert rel(a, b) < tol, (name, rel(a, b))


def test_random_adversary_with_the_same_delta_matches_reference():
    for form in ("eq4", "hm"):
        spec, split, features, params, _ = problem("amr", form, np.float64)
        u, i, j = (a[:64] for a in triples_of(split, 2))
        hp = TrainConfig(eps=0.3, lmd=0.7, adversary="random")
        l_ref, g_ref = ref.batch_gradients(spec, params, features, u, i, j, hp,
                                           np.random.default_rng(5))
        items, gamma = ref.content_gradient(spec, params, features, u, i, j)
        delta = (items, ref.adversarial_perturbation(gamma, hp.eps, "random",
                                                     np.random.default_rng(5)))
        l_al, g_al = al.batch_gradients(spec, copy(params), features, u, i, j, hp, delta=delta)
        assert abs(l_ref - l_al) < 1e-12 * abs(l_ref)
        for name in g_ref:
            a, b = g_ref[name], g_al[name]
            a, b = (a[1], b[1]) if isinstance(a, tuple) else (a, b)
            assert rel(a, b) < 1e-12, name


@pytest.mark.parametrize("form", ["eq4", "hm"])
def test_closed_form_equals_explicit_delta(form):
    spec, split, features, params, _ = problem("amr", form, np.float64)
    u, i, j = (a[:128] for a in triples_of(split, 3))
    hp = TrainConfig(eps=0.5, lmd=1.0, reg=0.01)
    l1, g1 = al.batch_gradients(spec, copy(params), features, u, i, j, hp, closed_form=True)
    l2, g2 = al.batch_gradients(spec, copy(params), features, u, i, j, hp, closed_form=False)
    assert abs(l1 - l2) < 1e-10 * abs(l1)
    for name in g1:
        a, b = g1[name], g2[name]
        a, b = (a[1], b[1]) if isinstance(a, tuple) else (a, b)
        assert rel(a, b) < 1e-10, name


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(c))
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 2e-3)])
def test_epochs_match_reference(case, dtype, tol):
    kind, form, adversary = (case + ("grad",))[:3]
    spec, split, features, params, accum = problem(kind, form, dtype, seed=4)
    hp = TrainConfig(reg=0.01, reg_e=0.01, eps=0.3, lmd=0.7, adversary=adversary, batch_size=48,
                     lr=0.05)
    p_ref, a_ref = copy(params), copy(accum)
    p_al, a_al = copy(params), copy(accum)
    for epoch in range(3):
        triples = triples_of(split, 10 + epoch)
        l_ref = ref.train_epoch(spec, p_ref, a_ref, features, triples, hp)
        l_al = al.train_epoch(spec, p_al, a_al, features, triples, hp, None, np)
        assert abs(l_ref - l_al) < tol * abs(l_ref)
    for name in params:
        assert p_al[name].dtype == dtype
        assert rel(p_ref[name], p_al[name]) < tol, name
        assert rel(a_ref[name], a_al[name]) < tol, name
        assert not np.array_equal(p_al[name], params[name])


@pytest.mark.parametrize("form", ["eq4", "hm"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lambda_zero_is_vbpr_bit_for_bit(form, dtype):
    spec, split, features, params, accum = problem("vbpr", form, dtype)
    hp0 = TrainConfig(lmd=0.0, eps=0.5, batch_size=32)
    p_v, a_v, p_a, a_a = copy(params), copy(accum), copy(params), copy(accum)
    for epoch in range(2):
        triples = triples_of(split, epoch)
        al.train_epoch(spec, p_v, a_v, features, triples, hp0, None, np)
        al.train_epoch(ModelSpec("amr", form), p_a, a_a, features, triples, hp0, None, np)
    for name in params:
        assert np.array_equal(p_v[name], p_a[name]), name
        assert np.array_equal(a_v[name], a_a[name]), name


@pytest.mark.parametrize("kind,form", gradcheck.CHECKED)
def test_gradcheck_on_the_arraylevel_backend(kind, form, monkeypatch):
    real = gradcheck.get_backend
    monkeypatch.setattr(gradcheck, "get_backend",
                        lambda name: BACKEND if name == BACKEND.NAME else real(name))
    errors = gradcheck.check_model(kind, form, BACKEND.NAME)
    expected = set(ModelSpec(kind, form).blocks) | ({"Gamma"} if kind != "mf" else set())
    assert set(errors) == expected
    for block, err in errors.items():
        assert err < TOLERANCE, f"{kind}/{form} block {block}: relative error {err:.2e}"


def test_content_gradient_and_perturbation_match_reference():
    for form in ("eq4", "hm"):
        spec = ModelSpec("amr", form)
        params, features, (u, i, j) = tiny_problem(spec)
        items_r, gamma_r = ref.content_gradient(spec, params, features, u, i, j)
        items_a, gamma_a = al.content_gradient(spec, params, features, u, i, j)
        np.testing.assert_array_equal(items_r, items_a)
        assert rel(gamma_r, gamma_a) < 1e-13
        for kind in ("grad", "sign"):
            assert rel(ref.adversarial_perturbation(gamma_r, 0.3, kind),
                       al.adversarial_perturbation(gamma_a, 0.3, kind)) < 1e-13


def test_adagrad_update_matches_reference():
    params = {"P": np.ones((4, 2)), "E": np.ones((2, 3))}
    accum = {"P": np.zeros((4, 2)), "E": np.full((2, 3), 1.0)}
    grads = {"P": (np.array([1, 3]), np.array([[0.5, -1.0], [2.0, 0.0]])),
             "E": np.full((2, 3), 2.0)}
    p2, a2 = copy(params), copy(accum)
    ref.adagrad_update(params, accum, grads, lr=0.1)
    al.adagrad_update(p2, a2, grads, lr=0.1)
    for k in params:
        np.testing.assert_array_equal(params[k], p2[k])
        np.testing.assert_array_equal(accum[k], a2[k])


# --- sampler and segments -----------------------------------------------------------------------

def test_sampler_is_seeded_and_valid():
    split, _ = random_split(n_users=25, n_items=40, per_user=10, seed=1)
    indptr, indices = split.train_csr
    pool = np.flatnonzero(split.warm_items)
    args = (split.train_users, split.train_items, indptr, indices, pool)
    u, i, j = al.sample_epoch(*args, 1234, np)
    u2, i2, j2 = al.sample_epoch(*args, 1234, np)
    u3, _, j3 = al.sample_epoch(*args, 1235, np)
    assert all(np.array_equal(a, b) for a, b in ((u, u2), (i, i2), (j, j2)))
    assert not np.array_equal(u, u3) and not np.array_equal(j, j3)
    assert u.dtype == i.dtype == j.dtype == np.int32
    pairs = set(zip(split.train_users.tolist(), split.train_items.tolist()))
    assert sorted(zip(u.tolist(), i.tolist())) == sorted(pairs)
    assert not any((a, b) in pairs for a, b in zip(u.tolist(), j.tolist()))
    assert np.isin(j, pool).all() and len(set(j.tolist())) > 15


def test_sampler_hash_is_pinned():
    """The CUDA sampler must reproduce these words bit for bit (tests/test_gpu_backend.py)."""
    h = al.counter_hash(42, 3, np.arange(3, dtype=np.uint64), np)
    again = al.counter_hash(42, 3, np.arange(3, dtype=np.uint64), np)
    np.testing.assert_array_equal(h, again)
    assert len(set(h.tolist())) == 3
    assert al.mix64(np.asarray(0, dtype=np.uint64), np) == 0
    # SplitMix64 with state 0: first output 0xE220A8397B1DCDAF
    assert int(al.counter_hash(0, 0, np.asarray(0), np)) == int(al.mix64(
        np.asarray(al.mix64(np.asarray(0, np.uint64), np) + np.uint64(al._GOLDEN)), np))
    assert int(al.mix64(np.asarray(al._GOLDEN, np.uint64), np)) == 0xE220A8397B1DCDAF


def test_permutation_is_a_permutation_and_uniformish():
    perm = al.permutation(1000, 7, np)
    assert sorted(perm.tolist()) == list(range(1000))
    first = [int(al.permutation(10, s, np)[0]) for s in range(2000)]
    counts = np.bincount(first, minlength=10)
    assert counts.min() > 140 and counts.max() < 260


def test_segments_match_unique_per_block():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 9, size=53).astype(np.int32)
    seg = al.segments(rows, 10, np)
    for b, start in enumerate(range(0, 53, 10)):
        block = rows[start:start + 10]
        uniq, inv = np.unique(block, return_inverse=True)
        np.testing.assert_array_equal(seg["inv"][start:start + 10], inv)
        assert seg["n_seg"][b] == len(uniq)
        heads = seg["heads"][seg["seg_offset"][b]:seg["seg_offset"][b] + len(uniq) + 1]
        for q in range(len(uniq)):
            members = seg["order"][heads[q]:heads[q + 1]]
            assert set(rows[members].tolist()) == {uniq[q]}
            assert sorted(members.tolist()) == members.tolist()     # stable: occurrence order
            assert set(members.tolist()) == set((start + np.flatnonzero(block == uniq[q])).tolist())


def test_occurrence_layout():
    u = np.arange(7, dtype=np.int32)
    i = np.arange(10, 17, dtype=np.int32)
    j = np.arange(20, 27, dtype=np.int32)
    occ = al.occurrence_layout(u, i, j, 3, np)
    assert occ.tolist() == [10, 11, 12, 20, 21, 22, 13, 14, 15, 23, 24, 25, 16, 26]


# --- evaluation ---------------------------------------------------------------------------------

def test_evaluation_ranks_match_metrics():
    spec, split, features, params, _ = problem("amr", "hm", np.float64)
    U, V = factors(spec, params, features, split.warm_items)
    rows = split.test
    indptr, indices = split.train_csr
    np.testing.assert_array_equal(
        BACKEND.full_ranks(U, V, rows.users, rows.items, indptr, indices, chunk=7),
        metrics_full_ranks(U, V, rows.users, rows.items, indptr, indices))
    np.testing.assert_array_equal(
        BACKEND.sampled_ranks(U, V, rows.users, rows.items, rows.negatives),
        metrics_sampled_ranks(U, V, rows.users, rows.items, rows.negatives))


def test_model_trains_end_to_end_on_the_arraylevel_backend(monkeypatch):
    from amrlite import Model
    from amrlite import recommender
    from helpers import random_dataset
    real = recommender.get_backend
    monkeypatch.setattr(recommender, "get_backend",
                        lambda name: BACKEND if name == BACKEND.NAME else real(name))
    ds, _ = random_dataset(n_users=40, n_items=60, per_user=10, seed=3)
    kw = dict(backend=BACKEND.NAME, epochs=4, batch_size=32, eval_every=2, seed=1)
    a = Model("amr", **kw).fit(ds, split="rand")
    b = Model("amr", **kw).fit(ds, split="rand")
    assert a.history.losses[-1] < a.history.losses[0]
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
