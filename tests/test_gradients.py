"""Every analytic gradient against central finite differences (float64, rel. err < 1e-6)."""
import numpy as np
import pytest

from amrlite import gradcheck
from amrlite.gradcheck import TOLERANCE, check_model, tiny_problem
from amrlite.kernels import reference as ref
from amrlite.models import ModelSpec


@pytest.mark.parametrize("kind,form", gradcheck.CHECKED)
def test_gradients_match_finite_differences(kind, form):
    errors = check_model(kind, form, "numpy")
    expected = set(ModelSpec(kind, form).blocks) | ({"Gamma"} if kind != "mf" else set())
    assert set(errors) == expected
    for block, err in errors.items():
        assert err < TOLERANCE, f"{kind}/{form} block {block}: relative error {err:.2e}"


def test_gradcheck_detects_a_wrong_gradient(monkeypatch):
    """The checker must be able to fail: break dℓ/dx and see it reported."""
    real = ref.sigmoid
    monkeypatch.setattr(ref, "sigmoid", lambda x: real(x) * 1.01)
    errors = check_model("vbpr", "eq4", "numpy")
    assert max(errors.values()) > 1e-4


def test_tiny_problem_has_its_corner_cases():
    spec = ModelSpec("amr")
    params, features, (u, i, j) = tiny_problem(spec)
    items, gamma = ref.content_gradient(spec, params, features, u, i, j)
    occurrences = np.bincount(np.concatenate([i, j]), minlength=10)
    assert occurrences.max() >= 3                       # repeated within the batch
    assert set(np.flatnonzero(occurrences == 0)) >= {7, 8, 9}   # cold items never occur
    norms = np.linalg.norm(gamma, axis=1)
    assert norms[list(items).index(6)] == 0.0           # an exactly-zero Γ row
    assert (norms > 0).sum() >= 5
    delta = ref.adversarial_perturbation(gamma, 0.3)
    assert np.all(delta[list(items).index(6)] == 0)
    np.testing.assert_allclose(np.linalg.norm(delta[norms > 0], axis=1), 0.3)
