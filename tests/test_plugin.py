"""Plug-in front-door sampler (strategy="plugin") against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

import causal_mixtures as cm
from causal_mixtures.estimators.plugin import ConditionalGaussianMixture


def test_plugin_matches_closed_form_linear_gaussian() -> None:
    n, m = 20_000, 20_000
    data = cm.datasets.make_front_door_linear(n, b=0.5, c0=2.0, c1=1.5, random_state=3)
    do = np.array([-1.0, 0.0, 1.0])
    est = cm.CausalGaussianMixture(
        n_components=1, strategy="plugin", plugin_components=1, plugin_draws=m, random_state=0
    ).fit(data.X, data.y, mechanism=data.mechanism, do=do)
    var = data.interventional_var
    truth = data.interventional_mean(do).reshape(-1)
    # Error = Monte-Carlo error of m draws + estimation error of the fitted conditionals
    # (bounded by that of a mean over n rows): 4 standard errors of each, combined.
    tol_mean = 4 * np.sqrt(var / m + var / n)
    tol_var = 4 * var * np.sqrt(2 / m + 2 / n)
    np.testing.assert_array_less(np.abs(est.means_[:, 0, 0] - truth), tol_mean)
    np.testing.assert_array_less(np.abs(est.covariances_[:, 0, 0, 0] - var), tol_var)
    assert isinstance(est.plugin_, cm.plugin.PluginFrontDoor)


def test_plugin_beats_weighting_under_strong_confounding() -> None:
    """PAPER's regression: true slope 1.5, confounded 4.0; the weights' ESS is tiny."""
    data = cm.datasets.make_regression_linear(5000, random_state=1)
    grid = np.linspace(*np.quantile(data.y, [0.05, 0.95]), 8)
    slopes = {}
    for strategy in ("weighting", "plugin"):
        est = cm.CausalGaussianMixture(
            n_components=1,
            density="gaussian",
            strategy=strategy,
            plugin_components=1,
            random_state=0,
        ).fit(data.X, data.y, mechanism=data.mechanism, do=grid)
        slopes[strategy] = np.polyfit(grid, est.means_[:, 0, 0], 1)[0]
    # Front-door plug-in slope sd at n = 5000 is about 0.08 (error of the Z coefficient,
    # sqrt(13.5 / 5000) x 1.5): 4 sd = 0.32.
    assert abs(slopes["plugin"] - 1.5) < 0.32
    assert abs(slopes["weighting"] - 1.5) > abs(slopes["plugin"] - 1.5)


def test_conditional_gaussian_mixture_regression(rng: np.random.Generator) -> None:
    c = rng.normal(size=(30_000, 1))
    t = 2.0 * c + 0.5 * rng.normal(size=(30_000, 1))
    cgm = ConditionalGaussianMixture(1).fit(c, t)
    np.testing.assert_allclose(cgm.mean(np.array([[0.0], [1.0]]))[:, 0], [0.0, 2.0], atol=0.02)
    draws = cgm.sample(np.full((40_000, 1), 1.0), rng)
    # sd of the draws is 0.5: 4 SE of the mean = 0.01, of the sd ≈ 0.007.
    assert abs(draws.mean() - 2.0) < 0.02 and abs(draws.std() - 0.5) < 0.01


def test_plugin_discrete_mechanism_and_errors() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    u = rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-u))).astype(int)
    z = (rng.uniform(size=n) < np.where(y == 1, 0.8, 0.2)).astype(int)
    X = (2.0 * z + u + rng.normal(size=n)).reshape(-1, 1)
    est = cm.CausalGaussianMixture(
        n_components=1, strategy="plugin", plugin_components=1, random_state=0
    ).fit(X, y, mechanism=z)
    # E[X | do(y)] = 2 P(z=1 | y) + E[U] = 1.6 (y=1) or 0.4 (y=0). SE ≈ 0.045: fitted
    # E[x | y', z] (≈0.03), p(z | y) (≈0.02) and 5 000 draws of var ≈ 3 (≈0.025). 4 SE:
    np.testing.assert_allclose(est.means_[:, 0, 0], [0.4, 1.6], atol=0.18)
    with pytest.raises(ValueError, match="'strategy' parameter of CausalGaussianMixture must be one of"):
        cm.CausalGaussianMixture(strategy="magic").fit(X, y, mechanism=z)
    with pytest.raises(ValueError, match="strategy='plugin' samples the front-door formula"):
        cm.CausalGaussianMixture(strategy="plugin").fit(X, weights=np.ones((n, 2)))


def test_diagnostics_skip_weight_checks_for_plugin() -> None:
    data = cm.datasets.make_regression_linear(2000, random_state=0)
    grid = np.quantile(data.y, [0.05, 0.95])
    est = cm.CausalGaussianMixture(
        n_components=1, strategy="plugin", plugin_components=1, random_state=0
    ).fit(data.X, data.y, mechanism=data.mechanism, do=grid)
    report = cm.diagnose(est, data.X)
    names = {c.name for c in report.checks}
    assert not names & {"weight_ess", "weight_khat", "ppc_moments", "ppc_quantiles"}
    assert "convergence" in names and report.ok
    assert any("strategy='plugin'" in note for note in report.notes)
    # The same data by weighting: the weights at the grid's ends are flagged (k-hat > 0.7).
    weighted = cm.CausalGaussianMixture(n_components=1, density="gaussian", random_state=0)
    weighted.fit(data.X, data.y, mechanism=data.mechanism, do=grid)
    flagged = [c for c in cm.diagnose(weighted, data.X).checks if c.name == "weight_khat"]
    assert flagged and all(c.status != "pass" for c in flagged)
