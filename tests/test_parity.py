"""Every backend against the NumPy reference: one test per property, parametrised over the case
table of ``tests/cases.py`` × the backends ``numba``, ``numpy-arraylevel`` and ``cupy`` (marked
``gpu``; skipped without CuPy and a CUDA device). Inputs go to a backend through its
``to_device``, results come back through its ``to_host``; the tolerances (per check, per
backend) are in the table and explained in its docstring.
"""
import numpy as np
import pytest

from amrlite import Model
from amrlite.kernels import get_backend, gpu_available
from amrlite.kernels import reference as ref
from amrlite.models import ModelSpec
from cases import (BACKENDS, BATCH, cases, copy, eals_problem, problem, rank_problem, rel,
                   triples_of)
from helpers import assert_seed_decides_training, random_dataset, random_split


def _backend_param(name):
    marks = ()
    if name == "cupy":
        marks = (pytest.mark.gpu,
                 pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU"))
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(params=[_backend_param(name) for name in BACKENDS])
def backend(request):
    return get_backend(request.param)


def by_name(case_list):
    return pytest.mark.parametrize("case", case_list, ids=lambda c: c.name)


def dev(be, d):
    """Host dict → the backend's device (copies: ``to_device`` may alias host arrays)."""
    return {k: be.to_device(v.copy()) for k, v in d.items()}


def host(be, d):
    return {k: np.asarray(be.to_host(v)) for k, v in d.items()}


def host_grads(be, grads):
    return {k: tuple(np.asarray(be.to_host(x)) for x in g) if isinstance(g, tuple)
            else np.asarray(be.to_host(g)) for k, g in grads.items()}


def rng(seed, case):
    """A generator for the random adversary (None otherwise: the others must not need one)."""
    return np.random.default_rng(seed) if case.adversary == "random" else None


def assert_blocks_close(want, got, tol, dtype, what):
    assert set(want) == set(got), what
    for name in want:
        assert got[name].dtype == dtype, (what, name, got[name].dtype)
        assert np.isfinite(got[name]).all(), (what, name)
        if tol is not None:
            err = rel(want[name], got[name])
            assert err <= tol, f"{what} {name}: rel. error {err:.3g} > {tol:.3g}"


def assert_loss_close(want, got, tol, what):
    assert np.isfinite(got), what
    if tol is not None:
        assert abs(want - got) <= tol * abs(want), f"{what}: {got!r} vs reference {want!r}"


BPR = cases("bpr")


# ----------------------------------------------------------------------------------------------
# training arithmetic
# ----------------------------------------------------------------------------------------------

@by_name(BPR)
def test_one_step_matches_reference(case, backend):
    """batch_gradients (loss, rows, gradients); adagrad_update applying the reference's
    gradients; train_epoch on that one batch (the two together): each against the reference."""
    prob = problem(case)
    spec, hp, name = prob.spec, prob.hp, backend.NAME
    batch = tuple(a[:BATCH] for a in triples_of(prob, 1))
    tol, tol_loss = case.tolerance("step", name), case.tolerance("loss", name)
    feats = backend.to_device(prob.features)
    dbatch = tuple(backend.to_device(a) for a in batch)

    l_ref, g_ref = ref.batch_gradients(spec, copy(prob.params), prob.features, *batch, hp,
                                       rng(5, case))
    params = dev(backend, prob.params)
    l_be, g_be = backend.batch_gradients(spec, params, feats, *dbatch, hp, rng(5, case))
    assert_loss_close(l_ref, l_be, tol_loss, "loss")
    g_host = host_grads(backend, g_be)
    assert set(g_host) == set(g_ref)
    for block, want in g_ref.items():
        got = g_host[block]
        if isinstance(want, tuple):
            np.testing.assert_array_equal(got[0], want[0], err_msg=f"rows of {block}")
            want, got = want[1], got[1]
        assert_blocks_close({block: want}, {block: got}, tol, case.dtype, "gradient")

    # adagrad_update on its own: the reference's gradients, on the device
    p_ref, a_ref = copy(prob.params), copy(prob.accum)
    ref.adagrad_update(p_ref, a_ref, g_ref, hp.lr)
    params, accum = dev(backend, prob.params), dev(backend, prob.accum)
    g_dev = {k: tuple(backend.to_device(x) for x in g) if isinstance(g, tuple)
             else backend.to_device(g) for k, g in g_ref.items()}
    backend.adagrad_update(params, accum, g_dev, hp.lr)
    tol_ada = case.tolerance("adagrad", name)
    assert_blocks_close(p_ref, host(backend, params), tol_ada, case.dtype, "adagrad_update param")
    assert_blocks_close(a_ref, host(backend, accum), tol_ada, case.dtype, "adagrad_update accum")

    params, accum = dev(backend, prob.params), dev(backend, prob.accum)
    l_be = backend.train_epoch(spec, params, accum, feats, dbatch, hp, rng(5, case))
    assert isinstance(l_be, float)
    assert_loss_close(l_ref, l_be, tol_loss, "train_epoch loss")
    assert_blocks_close(p_ref, host(backend, params), tol, case.dtype, "train_epoch param")
    assert_blocks_close(a_ref, host(backend, accum), tol, case.dtype, "train_epoch accum")


@by_name(BPR)
def test_three_epochs_match_reference(case, backend):
    """Three train_epoch calls (320 triples in batches of 48, the last one short; fresh triples
    every epoch): losses, parameters and accumulators against the reference."""
    prob = problem(case, seed=4)
    spec, hp, name = prob.spec, prob.hp, backend.NAME
    tol, tol_loss = case.tolerance("epochs", name), case.tolerance("epoch_loss", name)
    feats = backend.to_device(prob.features)
    p_ref, a_ref = copy(prob.params), copy(prob.accum)
    params, accum = dev(backend, prob.params), dev(backend, prob.accum)
    for epoch in range(3):
        triples = triples_of(prob, 10 + epoch)
        l_ref = ref.train_epoch(spec, p_ref, a_ref, prob.features, triples, hp, rng(epoch, case))
        l_be = backend.train_epoch(spec, params, accum, feats,
                                   tuple(backend.to_device(t) for t in triples), hp,
                                   rng(epoch, case))
        assert_loss_close(l_ref, l_be, tol_loss, f"loss of epoch {epoch + 1}")
    got = host(backend, params)
    assert_blocks_close(p_ref, got, tol, case.dtype, "param")
    assert_blocks_close(a_ref, host(backend, accum), tol, case.dtype, "accum")
    for block in prob.params:
        assert not np.array_equal(got[block], prob.params[block]), f"{block} never changed"


@by_name(cases("content", exclude=("explicit-adversary",)))
def test_content_gradient_matches_reference(case, backend):
    """Γ = ∂L_BPR/∂c for every item of a batch; the rows the reference gets exactly 0 (Eq. 4
    form: items seen only by the zero-g user) are exactly 0 on the backend too."""
    prob = problem(case)
    batch = tuple(a[:BATCH] for a in triples_of(prob, 1))
    items_r, gamma_r = ref.content_gradient(prob.spec, prob.params, prob.features, *batch)
    items, gamma = backend.content_gradient(prob.spec, dev(backend, prob.params),
                                            backend.to_device(prob.features),
                                            *(backend.to_device(a) for a in batch))
    items, gamma = np.asarray(backend.to_host(items)), np.asarray(backend.to_host(gamma))
    np.testing.assert_array_equal(items, items_r)
    assert gamma.dtype == case.dtype
    tol = case.tolerance("content", backend.NAME)
    assert rel(gamma_r, gamma) <= tol, rel(gamma_r, gamma)
    zero = ~np.any(gamma_r, axis=1)
    if case.form == "eq4":
        assert zero[:2].all()                  # items 0, 1: the zero-Γ corner is reached
    assert not np.any(gamma[zero])


#: (backend, case) where λ = 0 does NOT give VBPR bit for bit in this tree: the Numba kernel's
#: E gradient differs in the last bits (kernels/cpu.py _batch/_assemble_grad_e, compiled with
#: fastmath reassoc/contract, cpu.py:146, so the adversarial terms are not simply added last)

@by_name(cases("adversarial", exclude=("explicit-adversary",)))
def test_lambda_zero_is_vbpr_bit_for_bit(case, backend):
    """AMR with λ = 0 equals VBPR of the same form bit for bit: one batch's loss and gradients,
    and losses, parameters and accumulators over two epochs — on any CPU and BLAS kernel, by
    construction, not by the luck of one machine's kernels.

    Every backend computes each VBPR quantity of the AMR batch (scores, ``s``, the content term
    ``s f``, the row gradients, ``∂Ẽ = (g̃ ⊙ s)ᵀ(c_i − c_j) + 2β_E Ẽ``, the loss) with the very
    same operations, in the same order, as the VBPR batch, and adds the adversary's terms last,
    each as a separate term: ``s + s̃``, ``+ s̃ f̃``, ``+ M Ẽ``, ``+ λ L̃`` (in the Numba kernels
    also outside fastmath, so the compiler cannot regroup them into the shared sums). λ = 0 makes
    ``s̃ = 0``, hence ``M = 0``, and each of them adds an exact zero (``x + 0 = x``)."""
    prob = problem(case)
    hp = prob.hp
    hp.lmd = 0.0
    feats = backend.to_device(prob.features)
    batch = tuple(backend.to_device(a[:BATCH]) for a in triples_of(prob, 0))
    runs = {}
    for kind in ("amr", "vbpr"):
        spec = ModelSpec(kind, case.form)
        loss, grads = backend.batch_gradients(spec, dev(backend, prob.params), feats, *batch, hp)
        params, accum = dev(backend, prob.params), dev(backend, prob.accum)
        losses = [backend.train_epoch(spec, params, accum, feats,
                                      tuple(backend.to_device(t) for t in triples_of(prob, e)),
                                      hp) for e in range(2)]
        runs[kind] = ([loss] + losses, host_grads(backend, grads), host(backend, params),
                      host(backend, accum))
    (l_amr, g_amr, p_amr, a_amr), (l_vbpr, g_vbpr, p_vbpr, a_vbpr) = runs["amr"], runs["vbpr"]
    assert l_amr == l_vbpr
    assert set(g_amr) == set(g_vbpr)
    for block in g_amr:
        for a, b in zip(*(g if isinstance(g, tuple) else (g,) for g in (g_amr[block],
                                                                          g_vbpr[block]))):
            assert np.array_equal(a, b), f"gradient of {block}"
    for block in prob.params:
        assert np.array_equal(p_amr[block], p_vbpr[block]), block
        assert np.array_equal(a_amr[block], a_vbpr[block]), block


def test_sample_epoch_is_valid_and_seeded(backend):
    """Every training pair once, each negative from the pool and never a positive of its user,
    many distinct negatives; the same generator state gives the same triples, another other
    ones."""
    split, _ = random_split(n_users=25, n_items=40, per_user=10, cold=5, seed=1)
    indptr, indices = split.train_csr
    pool = np.flatnonzero(split.warm_items).astype(np.int32)
    args = (split.train_users, split.train_items, indptr, indices, pool)
    a, b, c = (tuple(np.asarray(backend.to_host(t)) for t in
                     backend.sample_epoch(*args, np.random.default_rng(seed)))
               for seed in (0, 0, 1))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[2], c[2])
    u, i, j = a
    pairs = set(zip(split.train_users.tolist(), split.train_items.tolist()))
    assert sorted(zip(u.tolist(), i.tolist())) == sorted(pairs)
    assert not any((x, y) in pairs for x, y in zip(u.tolist(), j.tolist()))
    assert np.isin(j, pool).all() and len(set(j.tolist())) > 15


def test_same_seed_same_parameters(backend):
    assert assert_seed_decides_training(backend.NAME).backend_used == backend.NAME


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------

@by_name(cases("ranks"))
def test_ranks_equal_reference(case, backend):
    """Sampled and full ranks (ties against the positive, training items masked, U None for
    POP) are the reference's, as host int64."""
    U, V, users, items, negatives, indptr, indices = rank_problem(case)
    Ud = None if U is None else backend.to_device(U)
    Vd = backend.to_device(V)
    for got, want in [(backend.sampled_ranks(Ud, Vd, users, items, negatives),
                       ref.sampled_ranks(U, V, users, items, negatives)),
                      (backend.full_ranks(Ud, Vd, users, items, indptr, indices),
                       ref.full_ranks(U, V, users, items, indptr, indices))]:
        assert isinstance(got, np.ndarray) and got.dtype == np.int64
        np.testing.assert_array_equal(got, want)


# ----------------------------------------------------------------------------------------------
# MF-eALS
# ----------------------------------------------------------------------------------------------

@by_name(cases("eals"))
def test_eals_epochs_match_reference(case, backend):
    """eals_prepare, then four eals_epoch: objective, P, Q and the prediction cache against the
    reference (numpy-arraylevel: bit for bit; numba and cupy sum segments in another order)."""
    knobs = dict(case.params)
    split, indptr, indices, P, Q, conf, w = eals_problem(knobs["seed"], knobs["dim"])
    tol = case.tolerance("eals", backend.NAME)
    want = ref.eals_prepare(P, Q, indptr, indices, w, conf)
    got = backend.eals_prepare(P, Q, indptr, indices, w, conf)
    assert rel(want.pred, backend.to_host(got.pred)) <= max(tol, 1e-12)
    for epoch in range(4):
        l_ref = ref.eals_epoch(want, 0.1)
        l_be = backend.eals_epoch(got, 0.1)
        assert isinstance(l_be, float)
        assert abs(l_ref - l_be) <= tol * abs(l_ref), (epoch, l_ref, l_be)
        for block in ("P", "Q", "pred"):
            a = np.asarray(backend.to_host(getattr(got, block)))
            assert rel(getattr(want, block), a) <= tol, (epoch, block)
    np.testing.assert_array_equal(P, eals_problem(knobs["seed"], knobs["dim"])[3])  # not in place


# ----------------------------------------------------------------------------------------------
# end to end
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["mf", "amr"])
def test_model_fit_learns(kind, backend):
    ds, _ = random_dataset(n_users=60, n_items=80, per_user=12, seed=9)
    m = Model(kind, backend=backend.NAME, epochs=8, lr=0.05, batch_size=64, eval_every=4,
              seed=0).fit(ds, split="rand")
    assert m.backend_used == backend.NAME
    assert m.history.losses[-1] < 0.9 * m.history.losses[0]
    assert all(isinstance(v, np.ndarray) for v in m.params.values())
    assert [e["epoch"] for e in m.history.evaluations] == [4, 8]
    assert all(np.isfinite(e["NDCG@10"]) for e in m.history.evaluations)


def test_eals_fit_matches_reference(backend):
    """``Model("eals").fit`` on the backend: the objectives and the final P, Q of the numpy
    backend's fit (eALS tolerance of the backend), the objective never increasing."""
    ds, _ = random_dataset(n_users=50, n_items=70, per_user=10, seed=3)
    tol = cases("eals")[0].tolerance("eals", backend.NAME)
    kw = dict(epochs=3, dim=8, eval_every=1, dtype="float64", reg=1.0)
    a = Model("eals", backend="numpy", **kw).fit(ds, split="rand", keep="last")
    b = Model("eals", backend=backend.NAME, **kw).fit(ds, split="rand", keep="last")
    assert b.backend_used == backend.NAME
    np.testing.assert_allclose(b.history.losses, a.history.losses, rtol=tol, atol=0)
    assert all(y <= x * (1 + 1e-12) for x, y in zip(b.history.losses, b.history.losses[1:]))
    for block in ("P", "Q"):
        assert isinstance(b.params[block], np.ndarray)
        assert rel(a.params[block], b.params[block]) <= tol, block
