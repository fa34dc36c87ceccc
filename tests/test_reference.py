"""The weighted reference the diagnostics keep at fit: closed forms and a Monte-Carlo check of
its standard errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from causal_mixtures.diagnostics.data_checks import uncertainty_bound
from causal_mixtures.diagnostics.reference import (
    MAX_COVARIANCE_FEATURES,
    PPC_PROBS,
    weighted_quantiles,
    weighted_reference,
)


def test_unit_weights_closed_forms() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    ref = weighted_reference(X, np.ones((4000, 2)), [0, 1])
    n = len(X)
    np.testing.assert_allclose(ref.ess, n)
    np.testing.assert_allclose(ref.mean[0], X.mean(0), atol=1e-12)
    np.testing.assert_allclose(ref.sd[1], X.std(0), atol=1e-12)
    np.testing.assert_allclose(ref.cov[0], np.cov(X, rowvar=False, bias=True), atol=1e-12)
    # se of a mean of n rows is sd / sqrt(n): 1 / sqrt(n) in sd units, exactly.
    np.testing.assert_allclose(ref.mean_se, 1 / np.sqrt(n), rtol=1e-12)
    # se of the sd of Gaussian rows: sqrt(m4 - s^4) / (2 s^2 sqrt(n)) ~ 1 / sqrt(2 n).
    np.testing.assert_allclose(ref.sd_se, 1 / np.sqrt(2 * n), rtol=0.08)
    q = np.stack([weighted_quantiles(X[:, f], np.ones(n), PPC_PROBS) for f in range(3)])
    np.testing.assert_allclose(ref.quantiles[0], q)


def test_zero_weight_rows_are_dropped() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    w = rng.exponential(size=300)
    w[:100] = 0.0
    a = weighted_reference(X, w[:, None], [0])
    b = weighted_reference(X[100:], w[100:, None], [0])
    for f in ("ess", "mean", "sd", "cov", "quantiles", "mean_se", "sd_se"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=1e-12, atol=1e-14)


def test_integer_weights_are_repeated_rows_for_the_moments() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 2))
    k = rng.integers(1, 4, size=200)
    a = weighted_reference(X, k[:, None].astype(float), [0])
    b = weighted_reference(np.repeat(X, k, axis=0), np.ones((k.sum(), 1)), [0])
    np.testing.assert_allclose(a.mean, b.mean, atol=1e-12)
    np.testing.assert_allclose(a.cov, b.cov, atol=1e-12)


def test_standard_errors_match_the_monte_carlo_spread() -> None:
    """Self-normalised importance sampling of N(0, 1) from N(0.7, 1.3^2): the delta-method
    standard errors match the sd of the estimates over repeated samples."""
    rng = np.random.default_rng(3)
    reps, n = 400, 1500
    means, sds, se_m, se_s = [], [], [], []
    for _ in range(reps):
        x = rng.normal(0.7, 1.3, size=n)
        w = stats.norm.pdf(x) / stats.norm.pdf(x, 0.7, 1.3)
        ref = weighted_reference(x[:, None], w[:, None], [0])
        means.append(ref.mean[0, 0])
        sds.append(ref.sd[0, 0])
        se_m.append(ref.mean_se[0, 0] * ref.sd[0, 0])
        se_s.append(ref.sd_se[0, 0] * ref.sd[0, 0])
    # The sd of an sd over 400 replicates is known to ~ 1 / sqrt(2 * 400) = 3.5 %.
    assert np.std(means) == pytest.approx(np.mean(se_m), rel=0.12)
    assert np.std(sds) == pytest.approx(np.mean(se_s), rel=0.15)
    assert abs(np.mean(means)) < 4 * np.std(means) / np.sqrt(reps)


def test_uncertainty_bound_aggregates_like_the_suite_errors() -> None:
    """Up to 8 features: Bonferroni over features and do values times the worst standard
    error; above: the root mean square over features (Bonferroni over do values)."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(2500, 4))
    ref = weighted_reference(X, rng.exponential(size=(2500, 3)), [0, 1, 2])
    u = np.maximum(ref.mean_se, ref.sd_se)
    z = stats.norm.ppf(1 - 0.025 / 12)
    np.testing.assert_allclose(uncertainty_bound(ref), z * u.max(1), rtol=1e-12)
    X = rng.normal(size=(2500, 9))
    ref = weighted_reference(X, np.ones((2500, 1)), [0])
    u = np.maximum(ref.mean_se, ref.sd_se)[0]
    assert uncertainty_bound(ref)[0] == pytest.approx(
        stats.norm.ppf(0.975) * np.sqrt(np.mean(u**2)), rel=1e-12)
    # Unit weights: the bound is z / sqrt(n) times the larger of 1 and the sd's factor.
    assert uncertainty_bound(ref)[0] == pytest.approx(1.96 / np.sqrt(2500), rel=0.02)


def test_cdf_range_at_an_atom() -> None:
    """A feature that is exactly 0 in 60 % of the rows: at its 5-50 % quantiles (all 0) the
    data's CDF spans [0, 0.6]; elsewhere the range is one row wide."""
    rng = np.random.default_rng(6)
    x = np.where(rng.uniform(size=1000) < 0.6, 0.0, rng.exponential(size=1000))
    ref = weighted_reference(x[:, None], np.ones((1000, 1)), [0])
    p = np.asarray(PPC_PROBS)
    atom = ref.quantiles[0, 0] == 0.0
    assert atom.tolist() == (p <= 0.6).tolist()
    np.testing.assert_allclose(ref.cdf_below[0, 0][atom], 0.0)
    np.testing.assert_allclose(ref.cdf_at[0, 0][atom], np.mean(x == 0.0))
    assert np.all(ref.cdf_at[0, 0][~atom] - ref.cdf_below[0, 0][~atom] <= 1e-3 + 1e-12)


def test_many_features_keep_variances_only() -> None:
    X = np.random.default_rng(5).normal(size=(50, MAX_COVARIANCE_FEATURES + 1))
    ref = weighted_reference(X, np.ones((50, 1)), [0])
    assert ref.cov is None and ref.sd.shape == (1, MAX_COVARIANCE_FEATURES + 1)


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match="one row per row of X"):
        weighted_reference(np.zeros((5, 1)), np.ones((4, 1)), [0])


def test_reference_quantiles_from_a_row_subsample_above_quantile_rows(monkeypatch) -> None:
    """Above QUANTILE_ROWS rows the quantiles (and the CDF at them) come from evenly spaced
    rows; the moments still from every row. With 4 000 of 40 000 rows the quantiles of a
    normal sample move by less than 4 binomial standard errors in CDF."""
    from scipy.stats import norm

    import causal_mixtures.diagnostics.reference as ref

    rng = np.random.default_rng(3)
    X = rng.normal(size=(40_000, 2))
    W = rng.exponential(size=(40_000, 2))
    full = ref.weighted_reference(X, W, [0, 1])
    monkeypatch.setattr(ref, "QUANTILE_ROWS", 4000)
    sub = ref.weighted_reference(X, W, [0, 1])
    np.testing.assert_array_equal(sub.mean, full.mean)
    np.testing.assert_array_equal(sub.sd, full.sd)
    p = np.asarray(ref.PPC_PROBS)
    se = np.sqrt(p * (1 - p) / 4000 * 2)  # Kish ESS of Exponential weights is about n / 2
    assert np.all(np.abs(norm.cdf(sub.quantiles) - norm.cdf(full.quantiles)) < 4 * se)
