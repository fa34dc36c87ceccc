"""Conditional Gaussian mixtures (weights/conditional.py) against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from causal_mixtures.weights.conditional import ConditionalGaussianMixture


def _correlated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    cov = np.array([[1.0, 0.3, 0.5, 0.2], [0.3, 2.0, -0.4, 0.6], [0.5, -0.4, 1.5, 0.1],
                    [0.2, 0.6, 0.1, 0.8]])
    a = rng.multivariate_normal([1.0, -2.0, 0.5, 3.0], cov, size=n)
    return a[:, :2], a[:, 2:]  # cond (2-D), target (2-D)


def test_one_component_is_the_gaussian_conditional_of_its_joint(rng: np.random.Generator) -> None:
    cond, target = _correlated(rng, 3000)
    cgm = ConditionalGaussianMixture(1).fit(cond, target)
    joint = np.column_stack([cond, target])
    # K = 1 by EM is the sample mean and the ML covariance (+ reg_covar on the standardised
    # scale, i.e. 1e-6 x each column's variance).
    np.testing.assert_allclose(cgm.means_[0], joint.mean(0), atol=1e-10)
    ml = np.cov(joint, rowvar=False, bias=True) + 1e-6 * np.diag(joint.var(0))
    np.testing.assert_allclose(cgm.covariances_[0], ml, rtol=1e-9, atol=1e-12)
    mu, S = cgm.means_[0], cgm.covariances_[0]
    gain = np.linalg.solve(S[:2, :2], S[:2, 2:])
    q = np.array([[0.0, 0.0], [1.5, -3.0], [2.0, 1.0]])
    mean = mu[2:] + (q - mu[:2]) @ gain
    cov = S[2:, 2:] - S[2:, :2] @ gain
    np.testing.assert_allclose(cgm.mean(q), mean, rtol=1e-10)
    np.testing.assert_allclose(cgm.covariance(q), np.broadcast_to(cov, (3, 2, 2)), rtol=1e-10)
    t = np.array([[0.1, 2.0], [1.0, 3.5], [-1.0, 2.5]])
    # log p(t | c) = log N([c, t]; μ, Σ) - log N(c; μ_c, Σ_cc), row by row
    ref = multivariate_normal(mu, S).logpdf(np.column_stack([q, t])) - multivariate_normal(
        mu[:2], S[:2, :2]
    ).logpdf(q)
    np.testing.assert_allclose(cgm.log_prob(t, q), ref, rtol=1e-10)


def test_sample_moments_match_mean_and_covariance(rng: np.random.Generator) -> None:
    c = rng.normal(size=(4000, 1))
    t = np.column_stack([np.sin(2 * c[:, 0]), c[:, 0] ** 2]) + 0.2 * rng.normal(size=(4000, 2))
    cgm = ConditionalGaussianMixture("auto").fit(c, t)
    assert cgm.n_components_ > 1  # a nonlinear regression needs several components
    m = 200_000
    q = np.full((m, 1), 0.7)
    draws = cgm.sample(q, rng)
    mean, cov = cgm.mean(q[:1])[0], cgm.covariance(q[:1])[0]
    # 4 standard errors of the sample mean, and of the sample variance (from the draws'
    # fourth central moment, as the conditional is a mixture, not a Gaussian).
    se_mean = np.sqrt(np.diag(cov) / m)
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 4 * se_mean)
    centred = draws - draws.mean(0)
    m4 = (centred**4).mean(0)
    se_var = np.sqrt((m4 - np.diag(cov) ** 2) / m)
    np.testing.assert_array_less(np.abs(centred.var(0) - np.diag(cov)), 4 * se_var)


def test_conditional_density_integrates_to_one(rng: np.random.Generator) -> None:
    c = rng.normal(size=(3000, 1))
    t = (np.tanh(2 * c) + 0.3 * rng.normal(size=(3000, 1)))
    cgm = ConditionalGaussianMixture().fit(c, t)
    grid = np.linspace(-4, 4, 4001).reshape(-1, 1)
    for v in (-1.0, 0.0, 0.4):
        dens = np.exp(cgm.log_prob(grid, np.full((len(grid), 1), v)))
        assert abs(np.trapezoid(dens, grid[:, 0]) - 1.0) < 1e-6


def test_bic_search_stops_two_after_the_best(rng: np.random.Generator) -> None:
    c = rng.normal(size=(2000, 1))
    gauss = ConditionalGaussianMixture().fit(c, 2 * c + rng.normal(size=(2000, 1)))
    assert gauss.n_components_ == 1 and sorted(gauss.bic_) == [1, 2, 3]
    # A bimodal conditional: t = ±3 + noise whatever c is.
    t = np.where(rng.uniform(size=(2000, 1)) < 0.5, -3.0, 3.0) + 0.5 * rng.normal(size=(2000, 1))
    two = ConditionalGaussianMixture().fit(c, t)
    best = min(two.bic_, key=two.bic_.get)
    assert two.n_components_ == best >= 2
    assert max(two.bic_) == best + 2  # stopped after two K without improvement
    assert ConditionalGaussianMixture(7).fit(c[:20], t[:20]).n_components_ == 1  # 20 // (2 * 6)


def test_no_conditioning_columns_is_a_plain_mixture(rng: np.random.Generator) -> None:
    t = rng.normal(size=(500, 2)) * [1.0, 3.0] + [2.0, -1.0]
    cgm = ConditionalGaussianMixture(1).fit(np.empty((500, 0)), t)
    ref = multivariate_normal(cgm.means_[0], cgm.covariances_[0]).logpdf(t[:5])
    np.testing.assert_allclose(cgm.log_prob(t[:5], np.empty((5, 0))), ref, rtol=1e-10)
    np.testing.assert_allclose(cgm.mean(np.empty((2, 0))), np.tile(t.mean(0), (2, 1)))


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match="n_components must be an int >= 1 or 'auto'; got 0"):
        ConditionalGaussianMixture(0).fit(np.zeros((5, 1)), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="cond must have one row per row"):
        ConditionalGaussianMixture(1).fit(np.zeros((4, 1)), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="target must be finite"):
        ConditionalGaussianMixture(1).fit(np.zeros((2, 1)), np.array([[0.0], [np.nan]]))
