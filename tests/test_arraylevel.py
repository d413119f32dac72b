"""What is specific to the GPU backend's array-level code (kernels/arraylevel.py) run on NumPy:
its sampler's hash, permutation and segment bookkeeping, the closed-form adversary against the
explicit Γ → Δ on the same code path, and the gradient checker on it. Its parity with the
reference (one step, epochs, Γ, λ = 0, ranks, eALS, Model.fit) is tests/test_parity.py's.

Tolerances: the closed-form adversary equals the explicit one to rel. 1e-10 (float64); with the
reference's random Δ injected, one step equals the reference's to rel. 1e-12.
"""
import numpy as np
import pytest

from amrlite import gradcheck
from amrlite.gradcheck import TOLERANCE
from amrlite.kernels import arraylevel as al
from amrlite.kernels import reference as ref
from amrlite.models import ModelSpec
from cases import CASE, copy, problem, rank_problem, rel, triples_of


def _rows(g):
    return g[1] if isinstance(g, tuple) else g


def test_random_adversary_with_the_same_delta_matches_reference():
    """The random adversary draws its directions per occurrence here (not per unique item as
    the reference does), so inject the reference's Δ: then one step is the reference's."""
    for form in ("eq4", "hm"):
        prob = problem(CASE[f"amr-{form}-float64"])
        u, i, j = (a[:64] for a in triples_of(prob, 2))
        hp = prob.hp
        hp.adversary = "random"
        l_ref, g_ref = ref.batch_gradients(prob.spec, prob.params, prob.features, u, i, j, hp,
                                           np.random.default_rng(5))
        items, gamma = ref.content_gradient(prob.spec, prob.params, prob.features, u, i, j)
        delta = (items, ref.adversarial_perturbation(gamma, hp.eps, "random",
                                                     np.random.default_rng(5)))
        l_al, g_al = al.batch_gradients(prob.spec, copy(prob.params), prob.features, u, i, j, hp,
                                        delta=delta)
        assert abs(l_ref - l_al) < 1e-12 * abs(l_ref)
        for name in g_ref:
            assert rel(_rows(g_ref[name]), _rows(g_al[name])) < 1e-12, name


@pytest.mark.parametrize("form", ["eq4", "hm"])
def test_closed_form_equals_explicit_delta(form):
    prob = problem(CASE[f"amr-{form}-float64"])
    u, i, j = (a[:128] for a in triples_of(prob, 3))
    hp = prob.hp
    hp.eps, hp.lmd = 0.5, 1.0
    l1, g1 = al.batch_gradients(prob.spec, copy(prob.params), prob.features, u, i, j, hp,
                                closed_form=True)
    l2, g2 = al.batch_gradients(prob.spec, copy(prob.params), prob.features, u, i, j, hp,
                                closed_form=False)
    assert abs(l1 - l2) < 1e-10 * abs(l1)
    for name in g1:
        assert rel(_rows(g1[name]), _rows(g2[name])) < 1e-10, name


@pytest.mark.parametrize("kind,form", gradcheck.CHECKED)
def test_gradcheck_on_the_arraylevel_backend(kind, form):
    errors = gradcheck.check_model(kind, form, "numpy-arraylevel")
    expected = set(ModelSpec(kind, form).blocks) | ({"Gamma"} if kind != "mf" else set())
    assert set(errors) == expected
    for block, err in errors.items():
        assert err < TOLERANCE, f"{kind}/{form} block {block}: relative error {err:.2e}"


def test_full_ranks_in_chunks():
    """The training mask is sliced per chunk of users: chunk 7 (not a divisor of 40 rows)."""
    U, V, users, items, _, indptr, indices = rank_problem(CASE["ranks-random-float64"])
    np.testing.assert_array_equal(
        al.full_ranks(U, V, users, items, indptr, indices, np, chunk=7),
        ref.full_ranks(U, V, users, items, indptr, indices))


# --- sampler and segments -----------------------------------------------------------------------

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
