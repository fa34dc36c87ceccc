"""The accuracy cases of issue 13 (causal_mixtures/simulate/cases.py): closed forms against
their oracle samplers within Monte-Carlo tolerance, and the confounded regression differs
from the truth."""

from __future__ import annotations

import numpy as np
import pytest

import causal_mixtures as cm

N_MC = 100_000


def _within(sample: np.ndarray, truth: np.ndarray, k: float = 4.0) -> None:
    se = sample.std(axis=0, ddof=1) / np.sqrt(len(sample))
    assert np.all(np.abs(sample.mean(axis=0) - truth) < k * se + 1e-12), (
        sample.mean(axis=0), truth, se)


def test_ring_oracle_matches_closed_form_and_shortcut_exists() -> None:
    d = cm.datasets.make_imbalanced_ring(8000, n_test=4000, random_state=0)
    assert d.X.shape == (8000, 6) and d.mechanism.shape == (8000, 2)
    for y in range(4):
        _within(d.sample_do(N_MC, y, random_state=y), d.interventional_mean(y))
    # class priors 0.1 / 0.2 / 0.3 / 0.4 in the training and in the non-confounded test set
    np.testing.assert_allclose(np.bincount(d.y) / len(d.y), d.priors, atol=0.02)
    np.testing.assert_allclose(np.bincount(d.y_test) / len(d.y_test), d.priors, atol=0.03)
    # confounding 0.9: Y = U in ~ 0.9 + 0.1 * sum(p²) = 0.93 of the observational rows
    assert abs(np.mean(d.y == d.confounder) - (0.9 + 0.1 * np.sum(d.priors**2))) < 0.015
    # feature 5 under do(y) has mean 0; observationally E[X5 | Y = 3] = 3 E[U - EU | Y = 3] > 0
    obs = d.X[d.y == 3, 4].mean()
    assert obs > 2.0 and abs(d.interventional_mean(3)[4]) == 0.0
    # mechanism radius: class 3's ring at radius 1 + 0.6 * 3
    r = np.linalg.norm(d.mechanism[d.y == 3], axis=1)
    assert abs(r.mean() - 2.8) < 0.05


def test_nonlinear_continuous_truth() -> None:
    d = cm.datasets.make_nonlinear_continuous(20_000, random_state=1)
    for v in (-1.0, 0.0, 0.7):
        _within(d.sample_do(N_MC, v, random_state=5), d.interventional_mean(v))
    grid = np.linspace(-1.5, 1.5, 7)
    h = 1e-5
    fd = (d.interventional_mean(grid + h)[:, 0] - d.interventional_mean(grid - h)[:, 0]) / (2 * h)
    np.testing.assert_allclose(fd, d.interventional_slope(grid), rtol=1e-6)
    assert d.interventional_mean(grid).shape == (7, 2)
    # the confounded least-squares slope of X1 on Y is far above the causal one:
    # Cov(X1, Y) / Var(Y) ≈ E[m'(Y)] + u_effect Var(U) / Var(Y) = E[m'] + 2 / 1.25
    naive = np.polyfit(d.y, d.X[:, 0], 1)[0]
    causal = np.polyfit(d.y, 1.5 * np.tanh(d.y) + 0.3 * d.y, 1)[0]
    assert naive - causal > 1.4
    assert d.X_test.shape == (2000, 2)


def test_covariate_front_door_truth() -> None:
    d = cm.datasets.make_covariate_front_door(20_000, random_state=2)
    assert d.covariates.shape == (20_000, 1) and d.graph == "front_door_covariates"
    for v in (0, 1):
        _within(d.sample_do(N_MC, v, random_state=v), d.interventional_mean(v))
    np.testing.assert_allclose(d.do_difference, [1.5, 0.5])
    naive = d.X[d.y == 1].mean(axis=0) - d.X[d.y == 0].mean(axis=0)
    assert np.all(np.abs(naive - d.do_difference) > 0.3)
    # the non-confounded test set: Y independent of W, its contrast is the causal one
    t = cm.datasets.make_covariate_front_door(10, n_test=100_000, random_state=3)
    assert abs(np.corrcoef(t.y_test, t.X_test[:, 0])[0, 1]) > 0.1  # y still acts through z
    contrast = t.X_test[t.y_test == 1].mean(axis=0) - t.X_test[t.y_test == 0].mean(axis=0)
    np.testing.assert_allclose(contrast, t.do_difference, atol=0.05)


def test_front_door_binary_nuisances() -> None:
    d = cm.datasets.make_front_door_binary(200_000, random_state=3)
    nu = d.nuisances
    assert abs(d.y.mean() - nu["p1"]) < 0.01
    assert abs(d.confounder[d.y == 1].mean() - nu["u_mean"][1]) < 0.01
    assert abs(d.confounder[d.y == 1].var() - nu["u_var"]) < 0.01
    for v in (0, 1):
        _within(d.sample_do(N_MC, v, random_state=v), d.interventional_mean(v))
    naive = d.X[d.y == 1, 0].mean() - d.X[d.y == 0, 0].mean()
    assert naive - d.do_difference[0] > 1.0
    t = cm.datasets.make_front_door_binary(10, n_test=200_000, random_state=4)
    contrast = t.X_test[t.y_test == 1, 0].mean() - t.X_test[t.y_test == 0, 0].mean()
    se = np.sqrt(4 * t.X_test[:, 0].var() / len(t.y_test))
    assert abs(contrast - t.do_difference[0]) < 4 * se


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cm.datasets.make_imbalanced_ring(100, confounding=1.5), "confounding"),
        (lambda: cm.datasets.make_imbalanced_ring(100).sample_do(10, 7), "do must be one of"),
        (lambda: cm.datasets.make_nonlinear_continuous(100, sigma_z=0.0), "sigma_z"),
        (lambda: cm.datasets.make_nonlinear_continuous(100).sample_do(10, "a"), "do must be"),
        (lambda: cm.datasets.make_covariate_front_door(0), "n_samples"),
        (lambda: cm.datasets.make_covariate_front_door(100).sample_do(10, 2), "do must be"),
        (lambda: cm.datasets.make_front_door_binary(100, sigma_x=-1.0), "sigma_x"),
    ],
)
def test_bad_input(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_seeded() -> None:
    a = cm.datasets.make_imbalanced_ring(300, n_test=10, random_state=4)
    b = cm.datasets.make_imbalanced_ring(300, n_test=10, random_state=4)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.sample_do(5, 1, random_state=0), b.sample_do(5, 1, random_state=0))
