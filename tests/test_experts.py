"""Mixtures of linear experts gated on a subset of the columns (weights/experts.py), and the
plug-in's held-out choice of its outcome model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import causal_mixtures as cm
from causal_mixtures.estimators.plugin import PluginFrontDoor
from causal_mixtures.weights.conditional import ConditionalGaussianMixture
from causal_mixtures.weights.experts import GatedExpertsMixture


def _linear(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """cond = (r, g1, g2), target (2-D) linear in cond with correlated noise."""
    g = rng.multivariate_normal([1.0, -2.0], [[1.0, 0.4], [0.4, 2.0]], size=n)
    r = 0.5 * g[:, :1] + rng.normal(size=(n, 1))
    cond = np.column_stack([r, g])
    noise = rng.multivariate_normal([0.0, 0.0], [[0.5, 0.2], [0.2, 0.3]], size=n)
    target = np.column_stack([1.0 + cond @ [2.0, -1.0, 0.5], -3.0 + cond @ [0.0, 1.5, 1.0]])
    return cond, target + noise


@pytest.mark.parametrize("reg_covar", [0.0, 1e-6])
def test_one_expert_is_ordinary_least_squares(rng: np.random.Generator, reg_covar: float) -> None:
    cond, target = _linear(rng, 3000)
    model = GatedExpertsMixture(1, regressors=(0,), reg_covar=reg_covar).fit(cond, target)
    design = np.column_stack([np.ones(len(cond)), cond])
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    resid = target - design @ coef
    # The expert is OLS of t on [1, g, r] (a 1e-8 relative ridge), its covariance the
    # residuals' MLE (+ reg_covar on the standardised scale: reg_covar x each variance).
    np.testing.assert_allclose(model.coef_[0], coef.T, atol=1e-6)
    psi = resid.T @ resid / len(resid) + reg_covar * np.diag(target.var(0))
    np.testing.assert_allclose(model.noise_covariances_[0], psi, atol=1e-6)
    # The gate is the Gaussian MLE of the gating columns (columns 1 and 2), not of r.
    g = cond[:, 1:]
    np.testing.assert_array_equal(model.gate_columns_, [1, 2])
    np.testing.assert_allclose(model.gate_means_[0], g.mean(0), atol=1e-10)
    gate_cov = np.cov(g, rowvar=False, bias=True) + reg_covar * np.diag(g.var(0))
    np.testing.assert_allclose(model.gate_covariances_[0], gate_cov, atol=1e-6)
    assert model.weights_.tolist() == [1.0] and model.converged_
    # One expert: log p(t | c) is the Gaussian of the residual; the mean is the regression.
    q, t = cond[:5], target[:5]
    mean = np.column_stack([np.ones(5), q]) @ model.coef_[0].T
    np.testing.assert_allclose(model.mean(q), mean, rtol=1e-10)
    ref = [multivariate_normal(m, model.noise_covariances_[0]).logpdf(v) for m, v in zip(mean, t, strict=True)]
    np.testing.assert_allclose(model.log_prob(t, q), ref, rtol=1e-10)
    np.testing.assert_allclose(model.covariance(q)[0], model.noise_covariances_[0], rtol=1e-10)
    # Every column gating, one component: the Gaussian conditional of the joint, as in
    # Gaussian mixture regression; no cond at all: the Gaussian MLE of the target.
    gated = GatedExpertsMixture(1, reg_covar=reg_covar).fit(cond, target)
    gmr = ConditionalGaussianMixture(1, reg_covar=reg_covar).fit(cond, target)
    np.testing.assert_allclose(gated.mean(q), gmr.mean(q), atol=1e-5)
    none = GatedExpertsMixture(1, reg_covar=reg_covar).fit(np.empty((len(target), 0)), target)
    np.testing.assert_allclose(none.mean(np.empty((2, 0))), np.tile(target.mean(0), (2, 1)))
    assert none.gate_columns_.size == 0 and none.coef_.shape == (1, 2, 1)


def _front_door(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, z) and x = (z + 2U, sin z - U) + noise: make_nonlinear_continuous's p(x | y, z)."""
    u = rng.normal(size=n)
    y = u + 0.5 * rng.normal(size=n)
    z = 1.5 * np.tanh(y) + 0.3 * y + 0.3 * rng.normal(size=n)
    x = np.column_stack([z + 2 * u, np.sin(z) - u]) + 0.5 * rng.normal(size=(n, 2))
    return np.column_stack([y, z]), x


@pytest.mark.parametrize("k", [2, 4])
def test_em_log_likelihood_is_non_decreasing(rng: np.random.Generator, k: int) -> None:
    cond, x = _front_door(rng, 3000)
    model = GatedExpertsMixture(k, regressors=(0,), tol=0.0, max_iter=150).fit(cond, x)
    history = model.lower_bounds_
    assert len(history) == 150 and model.n_components_ == k
    # EM on the joint likelihood of (g, t) given c: every iteration improves it (up to
    # rounding), and the fit beats one expert.
    assert np.diff(history).min() >= -1e-10
    assert history[-1] > history[0] + 0.01
    one = GatedExpertsMixture(1, regressors=(0,)).fit(cond, x)
    assert model.log_prob(x, cond).mean() > one.log_prob(x, cond).mean() + 0.01


def test_auto_k_follows_the_bic_rule(rng: np.random.Generator) -> None:
    cond, x = _front_door(rng, 3000)
    model = GatedExpertsMixture("auto", regressors=(0,)).fit(cond, x)
    ks = sorted(model.bic_)
    best = min(model.bic_, key=model.bic_.get)
    # K = 1, 2, ... until the BIC has not improved for two K; sin z needs several experts.
    assert ks == list(range(1, best + 3)) and model.n_components_ == best > 1
    # The rows bound: P(1) = 1 + 1 + 1 (gate) + 2 * 3 (coef) + 3 (noise) = 12, 40 // 24 = 1.
    assert GatedExpertsMixture(5, regressors=(0,)).fit(cond[:40], x[:40]).n_components_ == 1


def test_sample_moments_match_mean_and_covariance(rng: np.random.Generator) -> None:
    cond, x = _front_door(rng, 3000)
    model = GatedExpertsMixture(3, regressors=(0,)).fit(cond, x)
    m = 200_000
    q = np.tile([[0.2, 0.6]], (m, 1))  # z at the boundary of two experts' regions
    resp = np.exp(model.log_resp(q[:1]))[0]
    assert resp.max() < 0.99  # a genuine mixture there
    draws = model.sample(q, rng)
    mean, cov = model.mean(q[:1])[0], model.covariance(q[:1])[0]
    # 4 standard errors of the sample mean and of the sample variance (from the draws'
    # fourth central moment: the conditional is a mixture).
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 4 * np.sqrt(np.diag(cov) / m))
    centred = draws - draws.mean(0)
    se_var = np.sqrt(((centred**4).mean(0) - np.diag(cov) ** 2) / m)
    np.testing.assert_array_less(np.abs(centred.var(0) - np.diag(cov)), 4 * se_var)


def test_regressor_only_columns_extrapolate_linearly(rng: np.random.Generator) -> None:
    """Far outside the observed r given g, the prediction is each region's linear expert."""
    cond, x = _front_door(rng, 3000)
    model = GatedExpertsMixture(3, regressors=(0,)).fit(cond, x)
    r = np.linspace(-6.0, 6.0, 7)
    q = np.column_stack([r, np.full(7, 0.5)])
    pred = model.mean(q)
    # The gate does not move with r: the mean is exactly linear in r.
    np.testing.assert_allclose(np.diff(pred, 2, axis=0), 0.0, atol=1e-10)
    assert np.ptp(np.exp(model.log_resp(q)), axis=0).max() == 0.0


def test_bad_input() -> None:
    c, t = np.zeros((10, 2)), np.zeros((10, 1))
    with pytest.raises(ValueError, match="n_components must be an int >= 1 or 'auto'; got 0"):
        GatedExpertsMixture(0).fit(c, t)
    with pytest.raises(ValueError, match=r"regressors must be distinct column indices of cond in \[0, 2\); got \[2\]"):
        GatedExpertsMixture(1, regressors=(2,)).fit(c, t)
    with pytest.raises(ValueError, match="regressors must be distinct"):
        GatedExpertsMixture(1, regressors=(0, 0)).fit(c, t)
    with pytest.raises(ValueError, match="reg_covar must be a finite real >= 0; got -1"):
        GatedExpertsMixture(1, reg_covar=-1.0).fit(c, t)
    with pytest.raises(ValueError, match="max_iter must be an int >= 1; got 0"):
        GatedExpertsMixture(1, max_iter=0).fit(c, t)
    with pytest.raises(ValueError, match=r"cond must have one row per row of the other argument \(10\); got 9"):
        GatedExpertsMixture(1).fit(c[:9], t)
    with pytest.raises(ValueError, match="target must be finite"):
        GatedExpertsMixture(1).fit(c, np.full((10, 1), np.nan))
    with pytest.raises(ValueError, match="at least 2 rows; got 1"):
        GatedExpertsMixture(1).fit(c[:1], t[:1])
    with pytest.raises(ValueError, match="not fitted yet"):
        GatedExpertsMixture(1).mean(c)
    rng = np.random.default_rng(0)
    model = GatedExpertsMixture(1, regressors=(0,)).fit(rng.normal(size=(50, 2)),
                                                         rng.normal(size=(50, 1)))
    with pytest.raises(ValueError, match=r"cond must have 2 column\(s\) as when fitted; got 3"):
        model.mean(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"target must have 1 column\(s\) as when fitted; got 2"):
        model.log_prob(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="outcome_model must be 'auto', 'experts' or 'mixture'"):
        PluginFrontDoor(discrete_cause=False, outcome_model="magic").fit(
            rng.normal(size=(50, 1)), rng.normal(size=50), rng.normal(size=50))


def test_selection_picks_the_mixture_regression_where_x_is_nonlinear_in_the_cause() -> None:
    """x = sin(2 y') + z: nonlinear in the cause at every z, which experts linear in y'
    cannot follow; Gaussian mixture regression gates on y' and can."""
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.normal(size=n)
    z = 0.5 * y + rng.normal(size=n)
    x = np.sin(2 * y) + z + 0.2 * rng.normal(size=n)
    plugin = PluginFrontDoor(discrete_cause=False, random_state=0).fit(x, y, z)
    choice = plugin.outcome_choice_
    assert plugin.outcome_model_ == "mixture" == choice.name
    assert choice.candidates == ("experts", "mixture")
    assert (choice.n_train, choice.n_heldout) == (1500, 500)
    # Better by far more than the two paired standard errors the rule asks for.
    gain = choice.loglik["mixture"] - choice.loglik["experts"]
    assert gain > 10 * choice.se_diff["experts"] and gain > 0.3
    assert isinstance(next(iter(plugin.x_model_.models_.values())), ConditionalGaussianMixture)


def test_plugin_on_the_nonlinear_front_door_uses_the_experts() -> None:
    d = cm.datasets.make_nonlinear_continuous(10_000, random_state=0)
    grid = np.linspace(*np.quantile(d.y, [0.05, 0.95]), 10)
    plugin = PluginFrontDoor(discrete_cause=False, random_state=0).fit(d.X, d.y, d.mechanism)
    choice = plugin.outcome_choice_
    assert plugin.outcome_model_ == "experts" == choice.name
    assert choice.loglik["experts"] > choice.loglik["mixture"]
    assert isinstance(next(iter(plugin.x_model_.models_.values())), GatedExpertsMixture)
    rng = np.random.default_rng(0)
    curve = np.stack([plugin.interventional_mean(v, 20_000, rng)[0] for v in grid])
    truth = d.interventional_mean(grid)
    rmse = np.sqrt(np.mean((curve - truth) ** 2))
    # Measured over seeds 0-9 (docs/estimators.md): this curve's RMSE 0.030-0.076 (mean
    # 0.048; 0.038 at seed 0), Gaussian mixture regression's 0.089-0.176 (0.123 at seed 0);
    # the oracle's (1000 interventional draws per value) 0.031-0.064. Bound: 1.5 x the
    # oracle's typical 0.06.
    assert rmse < 0.09
    # The slope's own sd is about 3 % (the coefficient of z in E[x1 | y', z]).
    slope = np.polyfit(grid, curve[:, 0], 1)[0] / np.polyfit(grid, truth[:, 0], 1)[0]
    assert abs(slope - 1.0) < 0.05


def test_discrete_cause_and_one_component_keep_the_mixture_regression() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    y = rng.integers(0, 2, n)
    z = y + rng.normal(size=n)
    x = z + rng.normal(size=n)
    plugin = PluginFrontDoor(discrete_cause=True).fit(x, y, z)
    assert plugin.outcome_model_ == "mixture" and plugin.outcome_choice_ is None
    assert all(isinstance(m, ConditionalGaussianMixture) for m in plugin.x_model_.models_.values())
    yc = z + rng.normal(size=n)
    one = PluginFrontDoor(1, discrete_cause=False).fit(x, yc, z)
    assert one.outcome_model_ == "mixture" and one.outcome_choice_ is None
    fixed = PluginFrontDoor(discrete_cause=False, outcome_model="experts").fit(x, yc, z)
    assert fixed.outcome_model_ == "experts" and fixed.outcome_choice_ is None
