"""Conditional densities against closed forms and independent implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from causal_mixtures.weights.density import (
    DiscreteDensity,
    GaussianDensity,
    HistogramDensity,
    KernelDensityEstimate,
    LogisticDensity,
    is_discrete,
    make_density,
)


def test_is_discrete() -> None:
    assert is_discrete(np.array([1, 2, 3]))
    assert is_discrete(np.array([0.0, 1.0, 1.0]))
    assert is_discrete(np.array(["a", "b"]))
    assert not is_discrete(np.linspace(0, 1, 50))
    assert not is_discrete(np.arange(100.0))  # whole numbers but too many levels


def test_gaussian_per_class_matches_scipy(rng: np.random.Generator) -> None:
    y = np.repeat([1, 2], 200)
    z = rng.normal(size=(400, 2)) + y[:, None]
    dens = GaussianDensity(discrete_cause=True, reg=0.0).fit(z, y)
    got = dens.log_prob_grid(z[:5], np.array([1, 2]))
    for j, c in enumerate([1, 2]):
        zc = z[y == c]
        ref = multivariate_normal(zc.mean(0), np.cov(zc, rowvar=False, bias=True)).logpdf(z[:5])
        np.testing.assert_allclose(got[:, j], ref, rtol=1e-12)


def test_joint_gaussian_conditional(rng: np.random.Generator) -> None:
    y = rng.normal(2, 1, 50_000)
    z = 1.5 * y + rng.normal(size=50_000)
    dens = GaussianDensity(discrete_cause=False).fit(z.reshape(-1, 1), y)
    pts = np.array([[0.0], [3.0]])
    got = dens.log_prob(pts, np.array([0.0, 2.0]))
    # Population: z | y ~ N(1.5 y, 1); sample error of the fitted slope/variance ~ 1e-2.
    np.testing.assert_allclose(
        got, norm(1.5 * np.array([0.0, 2.0]), 1).logpdf(pts[:, 0]), atol=0.03
    )
    grid = dens.log_prob_grid(pts, np.array([0.0, 2.0]))
    np.testing.assert_allclose(np.diag(grid), got, rtol=1e-12)


def test_kde_matches_manual_sum(rng: np.random.Generator) -> None:
    y = np.repeat([0, 1], 100)
    z = rng.normal(size=(200, 1)) * 2 + y[:, None]
    dens = KernelDensityEstimate(discrete_cause=True).fit(z, y)
    q = np.array([[0.3], [1.7]])
    zc = z[y == 1, 0]
    s = zc.std()
    h = 100 ** (-1 / 5) * s  # Scott's rule on the standardised scale, mapped back
    ref = np.log(norm.pdf((q[:, 0, None] - zc[None]) / h).mean(1) / h)
    np.testing.assert_allclose(dens.log_prob_grid(q, np.array([1]))[:, 0], ref, rtol=1e-10)


def test_continuous_kde_is_ratio_of_joint_and_marginal(rng: np.random.Generator) -> None:
    y = rng.normal(size=2000)
    z = y + rng.normal(size=2000)
    dens = KernelDensityEstimate(discrete_cause=False).fit(z.reshape(-1, 1), y)
    # ∫ p(z | y) dz = 1 by the ratio construction (trapezoid on a fine grid).
    grid = np.linspace(-8, 8, 4001).reshape(-1, 1)
    for yv in (-1.0, 0.5):
        dens_vals = np.exp(dens.log_prob_grid(grid, np.array([yv]))[:, 0])
        assert np.trapezoid(dens_vals, grid[:, 0]) == pytest.approx(1.0, abs=1e-6)


def test_discrete_counts_and_smoothing() -> None:
    y = np.array([0, 0, 0, 1, 1])
    z = np.array([5, 5, 7, 7, 7])
    raw = DiscreteDensity(alpha=0.0).fit(z.reshape(-1, 1), y)
    np.testing.assert_allclose(
        np.exp(raw.log_prob_grid(np.array([[5], [7]]), np.array([0, 1]))),
        [[2 / 3, 0.0], [1 / 3, 1.0]],
    )
    lap = DiscreteDensity(alpha=1.0).fit(z.reshape(-1, 1), y)
    np.testing.assert_allclose(np.exp(lap.log_prob_grid(np.array([[5]]), np.array([1]))), [[1 / 4]])


def test_histogram_density_integrates_to_one(rng: np.random.Generator) -> None:
    y = np.repeat([0, 1], 500)
    z = rng.normal(size=(1000, 1)) + y[:, None]
    dens = HistogramDensity(bins=10).fit(z, y)
    width = np.diff(dens.edges_)
    centres = (dens.edges_[:-1] + width / 2).reshape(-1, 1)
    for c in (0, 1):
        assert np.sum(
            np.exp(dens.log_prob_grid(centres, np.array([c]))[:, 0]) * width
        ) == pytest.approx(1.0)
    assert np.isneginf(dens.log_prob_grid(np.array([[1e6]]), np.array([0]))[0, 0])
    with pytest.raises(ValueError, match="supports a 1-D mechanism only"):
        HistogramDensity().fit(rng.normal(size=(10, 2)), np.repeat([0, 1], 5))


def test_logistic_density_for_continuous_cause(rng: np.random.Generator) -> None:
    y = rng.normal(size=5000)
    z = (rng.uniform(size=5000) < 1 / (1 + np.exp(-2 * y))).astype(int)
    dens = LogisticDensity().fit(z.reshape(-1, 1), y)
    lp = dens.log_prob(np.array([[1]]), np.array([0.5]))
    # True p(z=1 | y=0.5) = σ(1); the fitted logistic is within ~0.03 at n = 5000.
    assert np.exp(lp[0]) == pytest.approx(1 / (1 + np.exp(-1.0)), abs=0.03)


def test_auto_choice_and_errors(rng: np.random.Generator) -> None:
    zc = rng.normal(size=(10, 1))
    zd = np.array([[0], [1]] * 5)
    assert isinstance(make_density("auto", zd, discrete_cause=True), DiscreteDensity)
    assert isinstance(make_density("auto", zc, discrete_cause=True), KernelDensityEstimate)
    assert isinstance(make_density("auto", zc, discrete_cause=False), GaussianDensity)
    assert isinstance(make_density("auto", zd, discrete_cause=False), LogisticDensity)
    with pytest.raises(ValueError, match="density must be one of"):
        make_density("parzen", zc, discrete_cause=True)
    with pytest.raises(ValueError, match="needs a discrete cause"):
        make_density("histogram", zc, discrete_cause=False)
    with pytest.raises(ValueError, match="needs a continuous cause"):
        make_density(LogisticDensity(), zd, discrete_cause=True)
