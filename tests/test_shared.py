"""The linear marginal structural model pooled over the do-grid (causal_mixtures.shared)."""

from __future__ import annotations

import numpy as np
import pytest

import causal_mixtures as cm
from causal_mixtures.estimators.msm import fit_linear_msm


def _expanded_wls(W: np.ndarray, X: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Reference: weighted least squares on the explicit (row, do value) pairs."""
    n, J = W.shape
    rows = np.repeat(np.arange(n), J)
    ys = np.tile(grid, n)
    w = W.reshape(-1)
    design = np.column_stack([np.ones(n * J), ys]) * np.sqrt(w)[:, None]
    target = X[rows] * np.sqrt(w)[:, None]
    return np.linalg.lstsq(design, target, rcond=None)[0]  # (2, d)


def test_matches_weighted_least_squares_on_the_pairs(rng: np.random.Generator) -> None:
    n, J, d = 300, 7, 3
    W = rng.exponential(1.0, (n, J))
    X = rng.normal(size=(n, d)) + 10.0
    grid = np.sort(rng.normal(size=J))
    c = rng.uniform(0.5, 2.0, J)
    msm = fit_linear_msm(W, X, grid, column_weights=c)
    ref = _expanded_wls(W * c, X, grid)
    # Same linear system solved two ways: agreement to float64 rounding.
    np.testing.assert_allclose(msm.intercept, ref[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(msm.slope, ref[1], rtol=1e-10, atol=1e-10)
    # The residual covariance equals its definition on the explicit pairs.
    r = X[:, None, :] - msm.intercept - grid[None, :, None] * msm.slope  # (n, J, d)
    omega = W * c
    cov = np.einsum("nj,nja,njb->ab", omega, r, r) / omega.sum()
    np.testing.assert_allclose(msm.cov, cov, rtol=1e-10, atol=1e-12)
    # ... and is what the fit's mean function implies.
    np.testing.assert_allclose(msm.mean(grid), msm.intercept + grid[:, None] * msm.slope)


def test_indicator_weights_give_ordinary_least_squares(rng: np.random.Generator) -> None:
    # Every row belongs to exactly one do value (as in interventional data): the pooled MSM
    # is then OLS of x on y, with the textbook HC0 sandwich covariance.
    grid = np.linspace(-2.0, 3.0, 6)
    group = rng.integers(0, len(grid), 500)
    y = grid[group]
    x = 1.0 + 1.5 * y + rng.normal(size=500) * (1 + 0.3 * np.abs(y))
    W = np.zeros((500, len(grid)))
    W[np.arange(500), group] = 1.0
    msm = fit_linear_msm(W, x[:, None], grid)
    slope, intercept = np.polyfit(y, x, 1)
    assert msm.slope[0] == pytest.approx(slope, rel=1e-10)
    assert msm.intercept[0] == pytest.approx(intercept, rel=1e-10)
    resid = x - intercept - slope * y
    assert msm.cov[0, 0] == pytest.approx(np.mean(resid**2), rel=1e-10)
    Z = np.column_stack([np.ones_like(y), y])
    bread = np.linalg.inv(Z.T @ Z)
    hc0 = bread @ (Z.T * resid**2) @ Z @ bread
    np.testing.assert_allclose(msm.coef_cov[:, :, 0], hc0, rtol=1e-9)
    assert msm.slope_se[0] == pytest.approx(np.sqrt(hc0[1, 1]), rel=1e-9)


def test_normalised_weights_equal_ols_of_the_per_value_means(rng: np.random.Generator) -> None:
    # The identity the module docstring states: column-normalised weights make the pooled fit
    # the OLS line through (y_j, weighted mean_j), i.e. through the means of K = 1 CW-GMMs.
    data = cm.datasets.make_front_door_linear(1500, random_state=1)
    grid = np.quantile(data.y, [0.1, 0.3, 0.5, 0.7, 0.9])
    cw = cm.causal_weights("front_door", data.X, data.y, mechanism=data.mechanism, do=grid,
                           density="gaussian")
    msm = fit_linear_msm(cw, data.X)
    means = cw.values.T @ data.X[:, 0]
    slope, intercept = np.polyfit(grid, means, 1)
    assert msm.slope[0] == pytest.approx(slope, rel=1e-10)
    assert msm.intercept[0] == pytest.approx(intercept, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(msm.column_means[:, 0], means, rtol=1e-12)
    np.testing.assert_allclose(msm.column_mass, 1.0)
    gmm = cm.CausalGaussianMixture(n_components=1, random_state=0).fit(data.X, weights=cw, do=grid)
    np.testing.assert_allclose(gmm.means_[:, 0, 0], means, rtol=1e-9, atol=1e-9)
    # Rescaling the columns of a raw array changes nothing once they are normalised...
    same = fit_linear_msm(cw.values * np.arange(1.0, 6.0), data.X, grid,
                          column_weights=1.0 / np.arange(1.0, 6.0))
    np.testing.assert_allclose(same.slope, msm.slope, rtol=1e-10)


def test_recovers_the_interventional_slope_of_a_mild_front_door() -> None:
    # The mild linear-Gaussian front door (b = 0.5, c1 = 1.5, c0 = 2): true
    # E[x | do(y)] slope c1 * b = 0.75. Over seeds 0-19 at n = 20 000 the pooled slope had
    # mean 0.758 and sd 0.040 (largest k̂ 0.73 on this grid); 0.16 is 4 sd.
    data = cm.datasets.make_front_door_linear(20_000, random_state=3)
    grid = np.linspace(*np.quantile(data.y, [0.1, 0.9]), 7)
    cw = cm.causal_weights("front_door", data.X, data.y, mechanism=data.mechanism, do=grid,
                           density="gaussian")
    msm = fit_linear_msm(cw, data.X)
    assert abs(msm.slope[0] - 0.75) < 0.16
    naive = np.polyfit(data.y, data.X[:, 0], 1)[0]  # 0.75 + c0 * a1 / Var(y) = 1.75
    assert abs(naive - 1.75) < 0.1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"do_values": None}, "do_values is required"),
        ({"do_values": np.array(["a", "b", "c"])}, "numeric scalars"),
        ({"do_values": np.arange(4.0)}, "one entry per weight column"),
        ({"column_weights": np.ones(2)}, "column_weights must have shape"),
        ({"column_weights": np.array([1.0, -1.0, 1.0])}, "non-negative"),
        ({"column_weights": np.array([1.0, 0.0, 0.0])}, "two distinct intervention values"),
        ({"do_values": np.ones(3)}, "two distinct intervention values"),
    ],
)
def test_input_validation(kwargs: dict, match: str) -> None:
    W = np.ones((10, 3))
    X = np.arange(10.0).reshape(-1, 1)
    args = {"do_values": np.arange(3.0)} | kwargs
    with pytest.raises(ValueError, match=match):
        fit_linear_msm(W, X, args.pop("do_values"), **args)


def test_rejects_mismatched_rows_and_bad_weights() -> None:
    with pytest.raises(ValueError, match="one row per sample"):
        fit_linear_msm(np.ones((9, 3)), np.ones((10, 1)), np.arange(3.0))
    with pytest.raises(ValueError, match="non-negative"):
        fit_linear_msm(-np.ones((10, 3)), np.ones((10, 1)), np.arange(3.0))
