"""Diagnostics: every check passes on a healthy fit and fires on a constructed failing one;
the ArviZ adapter's conventions; the report, the gate and the InferenceData round trip."""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
from scipy.stats import norm

import causal_mixtures as cm
from causal_mixtures.diagnostics import (
    Check,
    DiagnosticsReport,
    Thresholds,
    check_fit,
    diagnose,
    heldout_loglik,
    label_invariant_draws,
    posterior_summary,
    to_inference_data,
    weight_checks,
    weighted_quantiles,
)
from causal_mixtures.diagnostics import arviz as _arviz
from causal_mixtures.diagnostics.fitted import mixture
from causal_mixtures.exceptions import DiagnosticsWarning
from causal_mixtures.mixture.params import n_parameters

# --------------------------------------------------------------------------------------
# fixtures: one healthy fit, one strongly confounded fit, one mixture with K too small


@pytest.fixture(scope="module")
def healthy():
    """Mild linear-Gaussian front door: k̂ ≈ 0.5, ESS/n > 0.2 at every do value."""
    data = cm.datasets.make_front_door_linear(3000, random_state=0)
    model = cm.CausalGaussianMixture(n_components=1, density="gaussian", strategy="weighting",
                                     random_state=0)
    model.fit(data.X, data.y, mechanism=data.mechanism, do=[-1.0, 0.0, 1.0])
    return model, data.X, data.y


@pytest.fixture(scope="module")
def confounded():
    """The paper's strongly confounded regression (Mao & Little 2024): heavy-tailed Gaussian weights."""
    data = cm.datasets.make_regression_linear(1500, random_state=0)
    y = data.y
    half = 0.95 * (y.max() - y.min()) / 2
    do = np.linspace(y.mean() - half, y.mean() + half, 5)
    model = cm.CausalGaussianMixture(n_components=1, density="gaussian", strategy="weighting",
                                     random_state=0)
    model.fit(data.X, data.y, mechanism=data.mechanism, do=do)
    return model, data.X


@pytest.fixture(scope="module")
def bimodal():
    """Two well-separated 2-D blobs, mild random weights, and a 2-component full fit."""
    rng = np.random.default_rng(7)
    X = np.concatenate(
        [rng.normal([-4.0, 0.0], 1.0, (300, 2)), rng.normal([4.0, 1.0], 0.8, (300, 2))]
    )
    w = rng.uniform(0.5, 1.5, (600, 2))
    model = cm.CausalGaussianMixture(None, n_components=2, random_state=0).fit(X, weights=w)
    return model, X, w


def statuses(report: DiagnosticsReport, name: str) -> list[str]:
    return [c.status for c in report.select(name)]


# --------------------------------------------------------------------------------------
# the ArviZ adapter: k̂ conventions, R-hat / ESS


def test_arviz_khat_control() -> None:
    """Pareto(α) weights have k = 1/α; bounded weights have no tail."""
    rng = np.random.default_rng(0)
    w = rng.pareto(0.8, 10_000) + 1.0
    # Same sampling spread as tests/test_psis.py: sd 0.11 over seeds; 0.3 ≈ 3 sd.
    assert abs(_arviz.psislw_khat(w) - 1.25) < 0.3
    assert _arviz.psislw_khat(rng.uniform(size=10_000)) <= 0.0
    # az.psislw returns +inf here (ArviZ 1.x raises); the adapter says "no tail".
    assert np.isneginf(_arviz.psislw_khat(rng.choice([0.5, 2.0], 1000)))
    assert np.isneginf(_arviz.psislw_khat(np.ones(500)))
    assert math.isnan(_arviz.psislw_khat(np.ones(5)))
    # The argument is w (or log w with log=True), never -log w.
    assert _arviz.psislw_khat(np.log(w), log=True) == pytest.approx(
        _arviz.psislw_khat(w), abs=1e-12
    )
    with pytest.raises(ValueError, match="non-negative"):
        _arviz.psislw_khat(-w)


@pytest.mark.parametrize(
    "weights",
    [
        np.random.default_rng(1).pareto(1.5, 4000) + 1.0,
        np.random.default_rng(2).lognormal(0.0, 1.5, 3000),
        np.r_[np.zeros(50), np.random.default_rng(3).pareto(1.0, 2000) + 1.0],
        np.r_[np.ones(990), np.random.default_rng(4).pareto(1.0, 10) + 1.0],
    ],
)
def test_own_khat_matches_arviz(weights: np.ndarray) -> None:
    # Both fit the same generalized Pareto (Zhang & Stephens); agreement is to rounding.
    assert cm.pareto_khat(weights) == pytest.approx(_arviz.psislw_khat(weights), abs=1e-8)


def test_causal_weights_khat_matches_arviz(healthy) -> None:
    model, _, _ = healthy
    cw = model.causal_weights_
    ours = cw.khat
    ref = [_arviz.psislw_khat(cw.values[:, j]) for j in range(cw.n_do)]
    np.testing.assert_allclose(ours, ref, atol=1e-8)


def test_rhat_and_ess_adapter() -> None:
    rng = np.random.default_rng(0)
    good = rng.normal(size=(4, 300, 3))
    assert np.all(_arviz.rhat(good) < 1.01)
    assert _arviz.ess(good, "bulk").shape == (3,)
    assert np.all(_arviz.ess(good, "tail") > 600)  # iid draws: ESS near 1200
    bad = good + np.arange(4)[:, None, None]
    assert np.all(_arviz.rhat(bad) > 1.5)
    with pytest.raises(ValueError, match="chain, draw"):
        _arviz.rhat(np.zeros(10))
    with pytest.raises(ValueError, match="bulk"):
        _arviz.ess(good, "mean")


# --------------------------------------------------------------------------------------
# the mixture seen as arrays: cross-checks against the estimator


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_mixture_arrays_match_estimator(bimodal, covariance_type: str) -> None:
    _, X, w = bimodal
    model = cm.CausalGaussianMixture(
        None, n_components=2, covariance_type=covariance_type, random_state=0
    ).fit(X, weights=w)
    mix = mixture(model)
    pts = X[:7]
    logq = mix.log_prob_at(np.broadcast_to(pts, (2, 7, 2)))[0, 0]
    for j in range(2):
        np.testing.assert_allclose(logq[j], model.score_samples(pts, do=j), rtol=1e-10)
    mean, cov = mix.moments()
    # At an EM fixed point the mixture mean is the weighted data mean exactly.
    wn = w / w.sum(0)
    np.testing.assert_allclose(mean[0, 0], wn.T @ X, atol=1e-6)
    if covariance_type == "full":
        emp = np.stack(
            [(wn[:, j, None] * (X - mean[0, 0, j])).T @ (X - mean[0, 0, j]) for j in range(2)]
        )
        np.testing.assert_allclose(cov[0, 0], emp, atol=1e-4)  # + reg_covar, tol=1e-3 stop
    # Marginal CDF: one component's marginal is a normal CDF.
    single = cm.CausalGaussianMixture(
        None, n_components=1, covariance_type=covariance_type, random_state=0
    ).fit(X, weights=w)
    m1 = mixture(single)
    t = np.array([[[-1.0, 0.0, 2.0], [0.5, 1.0, 1.5]]] * 2)
    sd = np.sqrt(m1.marginal_var()[0, 0, :, 0])  # (n_do, d)
    expected = norm.cdf((t - m1.means[0, 0, :, 0, :, None]) / sd[..., None])
    np.testing.assert_allclose(m1.marginal_cdf(t), expected, rtol=1e-12)


def test_mixture_sample_moments(bimodal) -> None:
    model, _, _ = bimodal
    mix = mixture(model)
    big = type(mix)(
        np.broadcast_to(mix.weights, (1, 20_000, 2, 2)),
        np.broadcast_to(mix.means, (1, 20_000, 2, 2, 2)),
        np.broadcast_to(mix.covariances, (1, 20_000, 2, 2, 2, 2)),
        "full",
        draw_axes=True,
    )
    x = big.sample_each(np.random.default_rng(0))[0]  # (20000, n_do, d)
    mean, cov = mix.moments()
    se = np.sqrt(np.diagonal(cov[0, 0], axis1=-2, axis2=-1) / 20_000)
    assert np.all(np.abs(x.mean(0) - mean[0, 0]) < 4 * se)  # 4 Monte-Carlo standard errors


def test_weighted_quantiles() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=501)
    p = [0.05, 0.25, 0.5, 0.75, 0.95]
    # Equal weights: the mid-point definition is numpy's "hazen" quantile.
    np.testing.assert_allclose(
        weighted_quantiles(x, np.ones(501), p), np.quantile(x, p, method="hazen"), atol=1e-12
    )
    # Zero weight = dropped row; one column per do value.
    w = np.ones((501, 2))
    w[:100, 1] = 0.0
    q = weighted_quantiles(x, w, p)
    assert q.shape == (2, 5)
    np.testing.assert_allclose(q[1], np.quantile(x[100:], p, method="hazen"), atol=1e-12)


# --------------------------------------------------------------------------------------
# each check: passes on a healthy fit, fires on a constructed failing case


def test_healthy_fit_passes_everything(healthy) -> None:
    model, X, _ = healthy
    report = diagnose(model, X)
    assert report.ok
    assert report.status == "pass", report
    names = {c.name for c in report}
    assert names == {
        "positivity", "weight_ess", "weight_khat", "mean_uncertainty",
        "convergence", "ppc_moments", "ppc_quantiles",
    }  # one feature: no correlations to check
    assert len(report) == 7 * 3
    assert report.notes == []
    # The model keeps what the checks need: the report without X is the same.
    again = diagnose(model)
    assert [(c.name, c.status, c.value) for c in again] == [
        (c.name, c.status, c.value) for c in report]


def test_auto_on_the_healthy_continuous_cause_takes_a_plugin_that_passes() -> None:
    """The same data with the default strategy: a continuous cause, so the plug-in (its
    conditionals reproduce p(x | y)); healthy weights referee it and agree, and every check
    passes, its own included."""
    data = cm.datasets.make_front_door_linear(3000, random_state=0)
    model = cm.CausalGaussianMixture(n_components=1, density="gaussian", random_state=0)
    model.fit(data.X, data.y, mechanism=data.mechanism, do=[-1.0, 0.0, 1.0])
    assert model.strategy_ == "plugin" and "continuous" in model.strategy_reason_
    assert "healthy" in model.strategy_reason_ and "agree" in model.strategy_reason_
    report = diagnose(model)
    assert report.status == "pass", report
    assert {"cross_check", "plugin_fit", "plugin_quantiles"} <= {c.name for c in report}


def test_uncertainty_fails_on_strong_confounding(confounded) -> None:
    from causal_mixtures.diagnostics.data_checks import uncertainty_bound

    model, X = confounded
    th = Thresholds()
    report = diagnose(model, X)
    assert not report.ok
    unc = report.select("mean_uncertainty")
    bound = uncertainty_bound(model.weighted_reference_)
    np.testing.assert_allclose([c.value for c in unc], bound, rtol=1e-12)
    assert any(c.status == "fail" for c in unc)
    for c_u, c_k in zip(unc, report.select("weight_khat"), strict=True):
        assert (c_u.status == "fail") == (c_u.value > th.uncertainty)
        if c_k.value > th.khat:  # heavy tail: fails exactly where the answer is uncertain
            assert c_k.status == ("fail" if c_u.value > th.khat_uncertainty else "warn")
    assert "uncertain to ±" in report.error_message()
    assert "strategy='plugin'" in report.error_message()


def test_uncertainty_warns_between_the_tolerance_and_the_fail_threshold() -> None:
    """One feature, one do value, n equal weights: the bound is 1.96 sqrt(sum w^2 (x-mu)^2)
    / sd = 1.96 / sqrt(n) (x of variance one); it passes under the tolerance (0.2 sd), warns
    between it and the fail threshold (0.3) and fails above."""
    from causal_mixtures.diagnostics.data_checks import uncertainty_checks
    from causal_mixtures.diagnostics.reference import weighted_reference

    th = Thresholds()
    rng = np.random.default_rng(3)
    for n, expected in ((200, "pass"), (64, "warn"), (30, "fail")):
        x = rng.standard_normal((n, 1))
        ref = weighted_reference(x, np.ones((n, 1)), [0])
        (c,) = uncertainty_checks(ref, th)
        # mean_se = 1/sqrt(n) exactly; sd_se is the sd's (about 0.71 / sqrt(n) here)
        assert c.value == pytest.approx(1.959964 * max(ref.mean_se[0, 0], ref.sd_se[0, 0]),
                                        rel=1e-5)
        assert c.status == expected, (n, c.value)
        assert ("tolerance" in c.message) == (expected == "warn")
        assert bool(c.remedy) == (expected != "pass")


def test_khat_fails_only_where_the_answer_is_uncertain() -> None:
    """k̂ > 0.7 warns where the interventional answer is precise and fails where it is not
    (docs/diagnostics.md); bounded weights pass with k̂ = -inf."""
    from causal_mixtures.diagnostics.data_checks import weight_checks_of

    rng = np.random.default_rng(0)
    heavy = rng.pareto(1.25, 5000) + 1.0  # k = 0.8
    mild = rng.uniform(0.5, 1.5, 5000)
    cw = cm.CausalWeights.from_array(np.column_stack([heavy, mild]), [0, 1])
    assert cw.khat[0] > 0.7
    th = Thresholds()
    for u, expected in ((0.5 * th.khat_uncertainty, "warn"), (2 * th.khat_uncertainty, "fail")):
        checks = weight_checks_of(cw, np.array([5, 5]), "a model", th, None, np.array([u, u]))
        by = {(c.name, c.do): c for c in checks}
        assert by[("weight_khat", 0)].status == expected
        assert by[("weight_khat", 1)].status == "pass"
    bounded = cm.CausalWeights.from_array(rng.choice([0.5, 2.0], (1000, 1)))
    khat = weight_checks(bounded)[-1]
    assert khat.name == "weight_khat" and khat.status == "pass" and np.isneginf(khat.value)
    assert "bounded" in khat.message


def test_ess_floor_scales_with_model_size(bimodal) -> None:
    _, X, w = bimodal
    # free parameters: covariances + means + (K - 1) mixing proportions
    for k, ct, p in [(1, "spherical", 1 + 2), (2, "diag", 4 + 4 + 1), (3, "full", 9 + 6 + 2)]:
        model = cm.CausalGaussianMixture(
            None,
            n_components=k,
            covariance_type=ct,
            max_iter=5,
            init_params="random_from_data",
            random_state=0,
        )
        with warnings.catch_warnings():  # only the sizes matter here, not convergence
            warnings.simplefilter("ignore", cm.ConvergenceWarning)
            model.fit(X, weights=w)
        th = Thresholds().ess_per_parameter
        assert {c.threshold for c in diagnose(model).select("weight_ess")} == {th * p}
        assert p == n_parameters(k, 2, ct)


def test_convergence_check(bimodal) -> None:
    model, X, w = bimodal
    assert statuses(diagnose(model), "convergence") == ["pass", "pass"]
    with pytest.warns(cm.ConvergenceWarning):
        short = cm.CausalGaussianMixture(
            None, n_components=2, max_iter=1, tol=1e-12, random_state=0
        ).fit(X, weights=w)
    checks = diagnose(short).select("convergence")
    assert [c.status for c in checks] == ["warn", "warn"]
    assert "max_iter" in checks[0].remedy
    broken = copy.deepcopy(model)
    trace = broken.lower_bounds_.copy()
    trace[-1, 1] = trace[-2, 1] - 0.5  # EM never decreases its objective
    broken.lower_bounds_ = trace
    c0, c1 = diagnose(broken).select("convergence")
    assert c0.status == "pass" and c1.status == "warn"
    assert c1.value == pytest.approx(0.5, rel=1e-6)
    assert "reg_covar" in c1.remedy


def test_ppc_quantiles_fail_when_k_is_too_small(bimodal) -> None:
    model, X, w = bimodal
    assert statuses(diagnose(model, X), "ppc_quantiles") == ["pass", "pass"]
    one = cm.CausalGaussianMixture(None, n_components=1, random_state=0).fit(X, weights=w)
    report = diagnose(one, X)
    # One Gaussian over two blobs 8 sd apart: its CDF misses the weighted quartiles by
    # ~0.15, far beyond 0.10 and 5 Monte-Carlo s.e. (5 x 0.5/sqrt(ESS ~ 550) = 0.11).
    assert statuses(report, "ppc_quantiles") == ["fail", "fail"]
    # ...while the first two moments of a full Gaussian match exactly (EM fixed point).
    assert statuses(report, "ppc_moments") == ["pass", "pass"]
    assert "n_components" in report.select("ppc_quantiles")[0].remedy


def test_ppc_moments_fail_on_a_shifted_mixture(bimodal) -> None:
    model, X, _ = bimodal
    shifted = copy.deepcopy(model)
    shifted.means_ = model.means_ + np.array([0.0, 1.5])  # 1.5 sd of feature 1
    report = diagnose(shifted, X)
    assert statuses(report, "ppc_moments") == ["fail", "fail"]
    assert "mean of feature 1" in report.select("ppc_moments")[0].message
    # A diagonal mixture cannot carry a correlation the weighted data have.
    rng = np.random.default_rng(3)
    Xc = rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], 800)
    diag = cm.CausalGaussianMixture(None, 1, covariance_type="diag", random_state=0).fit(
        Xc, weights=np.ones((800, 1))
    )
    (c,) = diagnose(diag, Xc).select("ppc_correlation")
    assert c.status == "fail" and "correlation" in c.message
    assert c.value == pytest.approx(0.9, abs=0.05)
    assert diagnose(diag, Xc).select("ppc_moments")[0].status == "pass"


def test_ppc_needs_matching_data(bimodal) -> None:
    model, X, _ = bimodal
    report = diagnose(model)  # the fit kept its weighted summaries
    assert statuses(report, "ppc_quantiles") == ["pass", "pass"]
    assert report.notes == []
    bare = diagnose(model.causal_weights_)  # bare weights: no data, no mixture
    assert not bare.select("ppc_quantiles") and not bare.select("mean_uncertainty")
    with pytest.raises(ValueError, match="shape"):
        diagnose(model, X[:10])
    with pytest.raises(ValueError, match="features"):
        diagnose(model, X[:, :1])


def test_heldout_k(bimodal) -> None:
    _, X, w = bimodal
    # random_from_data: a cheap initialisation for the 18 refits below
    fits = {
        k: cm.CausalGaussianMixture(
            None, n_components=k, init_params="random_from_data", random_state=0
        ).fit(X, weights=w)
        for k in (1, 2)
    }
    table = heldout_loglik(fits[1], X, n_components=[1, 2], n_splits=3, random_state=0)
    assert list(table["n_components"]) == [1, 2]
    # Two blobs 8 sd apart: one Gaussian loses ~0.9 nats per row out of sample.
    assert table["heldout_loglik"].iloc[1] > table["heldout_loglik"].iloc[0] + 0.5
    assert np.all(table["se"] > 0) and table["se_diff"].iloc[1] == 0.0
    assert table["heldout_loglik_per_do"].iloc[0].shape == (2,)
    (bad,) = diagnose(fits[1], X, cv=3, n_components=[1, 2], random_state=0).select("heldout_k")
    assert bad.status == "warn" and bad.do is None
    assert "n_components=2" in bad.remedy
    (good,) = diagnose(fits[2], X, cv=3, n_components=[1, 2], random_state=0).select("heldout_k")
    assert good.status == "pass" and good.value == 0.0
    with pytest.raises(ValueError, match="n_splits"):
        heldout_loglik(fits[2], X, n_splits=1)
    with pytest.raises(ValueError, match="pass X"):
        diagnose(fits[2], cv=3)
    with pytest.raises(ValueError, match="must include the fitted K"):
        diagnose(fits[2], X, cv=2, n_components=[1])


# --------------------------------------------------------------------------------------
# posterior checks on synthetic posteriors attached to an EM fit


def synthetic_posterior(
    model, *, n_chains=4, n_draws=250, chain_offset=0.0, rho=0.0, label_switch=False, seed=0
) -> dict[str, np.ndarray]:
    """Draws around the EM fit, in the layout of ``model.posterior_`` (chain, draw, ...)."""
    rng = np.random.default_rng(seed)
    J, K, d = model.means_.shape

    def ar1(shape):
        e = rng.normal(size=(n_chains, n_draws, *shape))
        out = np.empty_like(e)
        out[:, 0] = e[:, 0]
        for t in range(1, n_draws):
            out[:, t] = rho * out[:, t - 1] + math.sqrt(1 - rho**2) * e[:, t]
        return out

    offset = chain_offset * np.arange(n_chains)[:, None, None, None, None]
    means = model.means_ + 0.05 * ar1((J, K, d)) + offset
    logits = np.log(model.weights_) + 0.05 * ar1((J, K))
    weights = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    scale = np.exp(0.05 * ar1((J, K)))
    covs = model.covariances_ * scale[..., None, None]
    if label_switch:  # odd chains list the components in reverse order
        weights[1::2] = weights[1::2, :, :, ::-1]
        means[1::2] = means[1::2, :, :, ::-1]
        covs[1::2] = covs[1::2, :, :, ::-1]
    return {"weights": weights, "means": means, "covariances": covs}


def with_posterior(model, **kw):
    m = copy.deepcopy(model)
    m.posterior_ = synthetic_posterior(model, **kw)
    return m


def test_posterior_checks_pass_on_mixing_chains_despite_label_switching(bimodal) -> None:
    model, X, _ = bimodal
    switched = with_posterior(model, label_switch=True)
    report = diagnose(switched, X)
    assert statuses(report, "rhat") == ["pass", "pass"], report
    assert statuses(report, "posterior_ess") == ["pass", "pass"]
    assert report.ok
    # Raw component means would fail R-hat: the labels switch between chains.
    assert np.nanmin(_arviz.rhat(switched.posterior_["means"])) > 1.5
    assert "posterior 4 x 250" in report.title


def test_rhat_fails_on_non_mixing_chains(bimodal) -> None:
    model, X, _ = bimodal
    stuck = with_posterior(model, chain_offset=0.5)  # each chain in its own place
    report = diagnose(stuck, X)
    assert statuses(report, "rhat") == ["fail", "fail"]
    assert report.select("rhat")[0].value > 1.1
    assert "chains have not mixed" in report.select("rhat")[0].message
    assert not report.ok


def test_posterior_ess_fires_on_sticky_chains(bimodal) -> None:
    model, _, _ = bimodal
    sticky = with_posterior(model, rho=0.995)
    checks = diagnose(sticky).select("posterior_ess")
    assert all(c.status == "fail" for c in checks)
    assert all(c.threshold == 400 for c in checks)  # 100 per chain x 4 chains
    # One chain (the package's NUTS and variational posteriors): split R-hat still works,
    # and ArviZ's one-chain refusal (a logged warning and NaN) is avoided.
    # (2000 draws: R-hat of ~10 quantities from four quarters of iid draws stays < 1.01.)
    one_chain = diagnose(with_posterior(model, n_chains=1, n_draws=2000)).select("rhat")
    assert [c.status for c in one_chain] == ["pass", "pass"]
    drift = with_posterior(model, n_chains=1)
    drift.posterior_["means"][0, 125:] += 0.5  # the second half sits elsewhere
    assert statuses(diagnose(drift), "rhat") == ["fail", "fail"]


def test_variational_posterior_skips_mcmc_checks(bimodal) -> None:
    model, _, _ = bimodal
    vi = with_posterior(model, n_chains=1, n_draws=20, rho=0.9)  # would fail R-hat and ESS
    vi.guide_ = "mvn"
    report = diagnose(vi)
    assert not report.select("rhat") and not report.select("posterior_ess")
    assert any("variational guide ('mvn')" in n for n in report.notes)
    vi.guide_ = "nuts"
    assert statuses(diagnose(vi), "posterior_ess") == ["fail", "fail"]


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_posterior_draw_quantities_match_estimator(bimodal, covariance_type) -> None:
    """Per-draw log-density and moments, checked draw by draw against the estimator."""
    _, X, w = bimodal
    model = cm.CausalGaussianMixture(None, 2, covariance_type=covariance_type, random_state=0).fit(
        X, weights=w
    )
    rng = np.random.default_rng(5)
    post = {
        "weights": rng.dirichlet([3.0, 3.0], (2, 3, 2)),
        "means": model.means_ + rng.normal(size=(2, 3, 2, 2, 2)),
        "covariances": model.covariances_
        * rng.uniform(0.5, 2.0, (2, 3, 2, 2))[(...,) + (None,) * (model.covariances_.ndim - 2)],
    }
    bayes = copy.deepcopy(model)
    bayes.posterior_ = post
    mix = mixture(bayes)
    pts = np.broadcast_to(X[:4], (2, 4, 2))
    logq = mix.log_prob_at(pts)
    mean, cov = mix.moments()
    c, dr, j = 1, 2, 1
    one = copy.deepcopy(model)
    one.weights_ = post["weights"][c, dr]
    one.means_ = post["means"][c, dr]
    one.covariances_ = post["covariances"][c, dr]
    prec = np.linalg.inv(one.covariances_) if covariance_type == "full" else 1 / one.covariances_
    one.precisions_cholesky_ = (
        np.linalg.cholesky(prec) if covariance_type == "full" else np.sqrt(prec)
    )
    np.testing.assert_allclose(logq[c, dr, j], one.score_samples(X[:4], do=j), rtol=1e-10)
    draws = mixture(one)
    big = type(draws)(
        *(
            np.broadcast_to(a, (1, 40_000, *a.shape[2:]))
            for a in (draws.weights, draws.means, draws.covariances)
        ),
        covariance_type,
        draw_axes=True,
    )
    x = big.sample_each(np.random.default_rng(1))[0, :, j]
    se = np.sqrt(np.diag(cov[c, dr, j]) / 40_000)
    assert np.all(np.abs(x.mean(0) - mean[c, dr, j]) < 4 * se)  # 4 Monte-Carlo s.e.
    # Variances within 4 s.e.; the s.e. of a sample variance is sd((x - m)²)/sqrt(n),
    # estimated from the draws (a mixture is not Gaussian, so not var·sqrt(2/n)).
    sq = (x - x.mean(0)) ** 2
    se_var = sq.std(0) / np.sqrt(40_000)
    assert np.all(np.abs(sq.mean(0) - np.diag(cov[c, dr, j])) < 4 * se_var)


def test_posterior_shape_errors(bimodal) -> None:
    model, _, _ = bimodal
    m = copy.deepcopy(model)
    m.posterior_ = {"weights": np.ones((2, 5, 2, 2)) / 2}
    with pytest.raises(ValueError, match="'means'"):
        diagnose(m)
    m.posterior_ = {
        "weights": np.ones((2, 5, 2, 2)) / 2,
        "means": np.zeros((2, 5, 2, 2, 2)),
        "covariances": np.ones((2, 5, 2, 2)),
    }
    with pytest.raises(ValueError, match="inconsistent shapes"):
        diagnose(m)


def test_posterior_summary(bimodal) -> None:
    model, _, _ = bimodal
    summary = posterior_summary(with_posterior(model, label_switch=True))
    # per do value: 2 means, 3 covariance entries, 1 + 2·2 probe log-densities
    assert len(summary) == 2 * (2 + 3 + 5)
    assert set(summary.columns) == {"do", "quantity", "mean", "sd", "rhat", "ess_bulk", "ess_tail"}
    assert summary["rhat"].max() < 1.01
    with pytest.raises(ValueError, match="posterior_"):
        posterior_summary(model)
    q = label_invariant_draws(mixture(with_posterior(model)))
    assert q["interventional_cov"].shape == (4, 250, 2, 2, 2)


# --------------------------------------------------------------------------------------
# report, gate


def test_report_repr_html_and_frame(confounded) -> None:
    model, X = confounded
    report = diagnose(model, X)
    text = repr(report)
    assert text.startswith("DiagnosticsReport: CausalGaussianMixture (K=1, full, 1500 rows")
    assert "FAILED" in text and "What to try:" in text and "mean_uncertainty FAIL at do =" in text
    page = report._repr_html_()
    assert page.startswith("<div") and page.count("<tr>") == len(report) + 1
    assert "#cf222e" in page  # a failed row is red
    frame = report.to_frame()
    assert list(frame.columns) == [
        "check",
        "do",
        "status",
        "value",
        "threshold",
        "message",
        "remedy",
    ]
    assert len(frame) == len(report)
    assert set(frame["status"]) <= {"pass", "warn", "fail"}
    assert report.failed and all(c.status == "fail" for c in report.failed)
    assert report[0] is report.checks[0] and list(report) == report.checks


def test_report_hides_passing_rows_when_long() -> None:
    checks = [Check("weight_ess", j, "pass", 100.0, 20.0, ">=", "ok") for j in range(45)]
    checks.append(Check("weight_khat", 3, "warn", 0.8, 0.7, "<=", "heavy", "smooth"))
    text = repr(DiagnosticsReport(checks))
    assert "45 passing checks not shown" in text
    assert "weight_khat WARN at do = 3 (0.8): smooth" in text
    with pytest.raises(ValueError, match="status"):
        Check("x", None, "ok", 1.0, 1.0, "<=", "")


def test_gate(healthy, confounded) -> None:
    good, X_good, _ = healthy
    bad, X_bad = confounded
    assert check_fit(good, "raise", X_good).ok
    with pytest.raises(cm.DiagnosticsError,
                       match="Refusing to train.*mean_uncertainty at do =") as info:
        check_fit(bad, "raise", X_bad)
    assert "uncertain to ±" in str(info.value)
    assert not info.value.report.ok
    with pytest.warns(DiagnosticsWarning, match="weight_khat"):
        report = check_fit(bad, "warn", X_bad)
    assert not report.ok
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        off = check_fit(bad, "off")
    assert len(off) == 0 and off.ok and "off" in off.notes[0]
    with pytest.raises(ValueError, match="check must be one of"):
        check_fit(good, "strict")


def test_gate_accepts_bootstrap_and_learner(healthy) -> None:
    from sklearn.linear_model import LinearRegression

    _, X, y = healthy
    data = cm.datasets.make_front_door_linear(3000, random_state=0)
    boot = cm.CausalBootstrap(density="gaussian", random_state=0)
    boot.fit_resample(data.X, data.y, mechanism=data.mechanism, do=[-1.0, 0.0, 1.0])
    report = check_fit(boot, "raise", X)
    assert {c.name for c in report} == {"positivity", "weight_ess", "weight_khat",
                                        "mean_uncertainty"}
    th = Thresholds().ess_per_parameter
    assert {c.threshold for c in report.select("weight_ess")} == {2 * th}  # one 1-D Gaussian
    assert "no posterior-predictive" in report.notes[0]
    learner = cm.MechanismLearner(
        LinearRegression(), resampler=cm.CausalGaussianMixture(density="gaussian", random_state=0)
    ).fit(data.X, data.y, mechanism=data.mechanism, do=[-1.0, 0.0, 1.0])
    assert diagnose(learner, X).ok
    with pytest.raises(Exception, match="fit first"):
        diagnose(cm.CausalGaussianMixture())


def test_custom_thresholds(healthy) -> None:
    model, X, _ = healthy
    strict = Thresholds(khat=0.3, ess_per_parameter=2000, uncertainty=0.01)
    report = diagnose(model, X, thresholds=strict)
    assert statuses(report, "weight_ess") == ["warn"] * 3  # informational
    assert statuses(report, "mean_uncertainty") == ["fail"] * 3
    assert all(c.threshold == 0.3 for c in report.select("weight_khat"))


# --------------------------------------------------------------------------------------
# ArviZ conversion


def test_inference_data_point_fit_roundtrip(healthy, tmp_path) -> None:
    import arviz as az

    model, X, y = healthy
    idata = to_inference_data(model, X, y, n_draws=50, random_state=0)
    assert set(idata.groups()) == {
        "sample_stats",
        "posterior_predictive",
        "constant_data",
        "observed_data",
    }
    pp = idata.posterior_predictive["X_do"]
    assert pp.dims == ("chain", "draw", "do", "feature") and pp.shape == (1, 50, 3, 1)
    np.testing.assert_allclose(idata.posterior_predictive["do"], [-1.0, 0.0, 1.0])
    w = idata.constant_data["causal_weights"]
    assert w.dims == ("do", "row")
    np.testing.assert_allclose(w.values, model.causal_weights_.values.T)
    obj = idata.sample_stats["objective"]
    assert obj.dims == ("chain", "draw", "iteration", "do")
    assert idata.sample_stats["converged"].values.all()
    np.testing.assert_array_equal(idata.observed_data["X"].values, X)
    assert idata.observed_data["y"].dims == ("row",)
    path = tmp_path / "fit.nc"
    idata.to_netcdf(str(path), engine="h5netcdf")
    back = az.from_netcdf(str(path), engine="h5netcdf")
    np.testing.assert_array_equal(back.constant_data["causal_weights"].values, w.values)
    np.testing.assert_array_equal(back.sample_stats["objective"].values, obj.values)
    assert back.sample_stats["converged"].dtype == bool
    np.testing.assert_array_equal(back.posterior_predictive["X_do"].values, pp.values)
    # Same seed, same draws.
    again = to_inference_data(model, n_draws=50, random_state=0)
    np.testing.assert_array_equal(again.posterior_predictive["X_do"].values, pp.values)
    assert "observed_data" not in again.groups()


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_inference_data_posterior_roundtrip(bimodal, covariance_type, tmp_path) -> None:
    import arviz as az
    import pandas as pd

    _, X, w = bimodal
    model = cm.CausalGaussianMixture(None, 2, covariance_type=covariance_type, random_state=0).fit(
        pd.DataFrame(X, columns=["a", "b"]), weights=w
    )
    rng = np.random.default_rng(0)
    model.posterior_ = {
        "weights": np.broadcast_to(model.weights_, (2, 30, 2, 2)).copy(),
        "means": model.means_ + 0.01 * rng.normal(size=(2, 30, 2, 2, 2)),
        "covariances": np.broadcast_to(
            model.covariances_, (2, 30, *model.covariances_.shape)
        ).copy(),
    }
    model.sample_stats_ = {"diverging": np.zeros((2, 30), dtype=bool)}
    idata = to_inference_data(model, X, random_state=0)
    post = idata.posterior
    assert post["means"].dims == ("chain", "draw", "do", "component", "feature")
    assert list(post["feature"].values) == ["a", "b"]
    expected = {"full": ("feature", "feature_bis"), "diag": ("feature",), "spherical": ()}[
        covariance_type
    ]
    assert post["covariances"].dims == ("chain", "draw", "do", "component", *expected)
    assert post["interventional_mean"].dims == ("chain", "draw", "do", "feature")
    assert idata.posterior_predictive["X_do"].shape == (2, 30, 2, 2)
    assert "diverging" in idata.sample_stats
    summary = az.summary(idata, var_names=["interventional_mean"], kind="diagnostics")
    assert len(summary) == 4
    path = tmp_path / "post.nc"
    idata.to_netcdf(str(path), engine="h5netcdf")
    back = az.from_netcdf(str(path), engine="h5netcdf")
    np.testing.assert_array_equal(back.posterior["covariances"].values, post["covariances"].values)


def test_inference_data_errors(healthy) -> None:
    model, X, _ = healthy
    boot = copy.deepcopy(model)
    del boot.means_
    with pytest.raises(ValueError, match="no fitted mixture"):
        to_inference_data(boot)
    with pytest.raises(ValueError, match="n_draws"):
        to_inference_data(model, n_draws=0)
    with pytest.raises(ValueError, match="one entry per training row"):
        to_inference_data(model, X, np.zeros(3))
    with pytest.raises(ValueError, match="unknown InferenceData group"):
        _arviz.from_groups({"causal_weights": {"w": np.zeros((2, 3))}})


def test_cross_check_fails_only_with_a_referee() -> None:
    """Two estimates 0.5 sd and 10 standard errors apart fail the cross-check when the other
    estimate passes its own checks, and only inform when it does not; a gap beyond the noise
    but under the fail threshold warns above the tolerance (with a referee) and passes under
    it."""
    from causal_mixtures.diagnostics.data_checks import cross_checks

    th = Thresholds()
    rec = {"names": ("weighting", "plug-in"), "do_values": np.array([0, 1]),
           "mean": (np.array([[0.0], [1.0]]), np.array([[0.5], [1.01]])),
           "se": (np.full((2, 1), 0.035), np.full((2, 1), 0.035)), "sd": np.ones((2, 1)),
           "other_ok": True}
    c0, c1 = cross_checks(rec, th)
    assert c0.status == "fail" and c0.value == pytest.approx(0.5)
    assert "at least one of them is wrong" in c0.message
    assert c1.status == "pass" and c1.value == 0.0  # 0.01 sd: within the noise
    c0, _ = cross_checks({**rec, "other_ok": False}, th)
    assert c0.status == "pass" and "cannot referee" in c0.message
    rec["mean"] = (rec["mean"][0], rec["mean"][0] + th.cross_gap * 0.9)
    c0, c1 = cross_checks(rec, th)  # 0.27 sd: above the tolerance, under the fail threshold
    assert [c0.status, c1.status] == ["warn", "warn"]
    assert "at least one is off by 0.14 sd" in c0.message
    assert all(c.status == "pass" for c in cross_checks({**rec, "other_ok": False}, th))
    rec["mean"] = (rec["mean"][0], rec["mean"][0] + th.tolerance * 0.9)
    assert all(c.status == "pass" for c in cross_checks(rec, th))  # under the tolerance


def test_an_imprecise_referee_warns_but_cannot_fail() -> None:
    """A referee that fails on precision alone (``other_imprecise``): a gap beyond both
    estimates' noise and above the tolerance warns, never fails; a gap within the noise or
    under the tolerance passes; a referee that fails for another reason only informs."""
    from causal_mixtures.diagnostics.data_checks import cross_checks
    from causal_mixtures.estimators.strategy import cross_check_record

    th = Thresholds()
    means = (np.array([[0.0], [1.0], [2.0]]), np.array([[0.5], [1.1], [2.5]]))
    ses = (np.array([[0.035], [0.035], [0.3]]), np.full((3, 1), 0.035))
    rec = cross_check_record(("plug-in", "weighting"), np.array([0, 1, 2]), means, ses,
                             np.ones((3, 1)), other_ok=False, other_imprecise=True)
    gap, small, noisy = cross_checks(rec, th)
    assert gap.status == "warn" and gap.value == pytest.approx(0.5)
    assert "imprecise" in gap.message and "off by up to 0.50 sd" in gap.message
    assert small.status == "pass"  # 0.1 sd: under the tolerance
    assert noisy.status == "pass" and noisy.value == 0.0  # 0.5 sd but 1.7 standard errors
    plain = cross_check_record(("plug-in", "weighting"), np.array([0, 1, 2]), means, ses,
                               np.ones((3, 1)), other_ok=False)
    assert [c.status for c in cross_checks(plain, th)] == ["pass"] * 3
    ok = cross_check_record(("plug-in", "weighting"), np.array([0, 1, 2]), means, ses,
                            np.ones((3, 1)), other_ok=True, other_imprecise=True)
    assert ok["other_imprecise"] is False  # a referee that passes is not "imprecise"
    assert cross_checks(ok, th)[0].status == "fail"


def test_weights_failing_on_precision_alone_are_told_apart() -> None:
    """``_weights_ok``'s third answer: weights whose bound fails with light tails and healthy
    positivity (a small sample of a well-overlapping problem) versus weights that pass, and
    versus weights whose positivity fails (a mechanism that copies the cause)."""
    from causal_mixtures.diagnostics.reference import weighted_reference
    from causal_mixtures.estimators.strategy import _weights_ok

    th = Thresholds()
    for n, expect in ((60, True), (20_000, False)):
        d = cm.datasets.make_classification_2d(n, random_state=3)
        cw = cm.causal_weights("front_door", d.X, d.y, mechanism=d.mechanism,
                               density="gaussian")
        ref = weighted_reference(d.X, cw.values, cw.do_values)
        ok, _, imprecise = _weights_ok(cw, ref, th)
        assert ok is not expect
        assert imprecise is expect
    copy = cm.datasets.make_classification_2d(3000, random_state=0)
    with pytest.warns(cm.PositivityWarning):
        cw = cm.causal_weights("front_door", copy.X, copy.y, mechanism=copy.y.astype(float),
                               positivity="warn")
    ref = weighted_reference(copy.X, cw.values, cw.do_values)
    ok, _, imprecise = _weights_ok(cw, ref, th)
    assert not ok and not imprecise


def test_positivity_check_for_discrete_and_continuous_causes() -> None:
    th = Thresholds()
    copy = cm.datasets.make_classification_2d(3000, random_state=0)
    with pytest.warns(cm.PositivityWarning):
        cw = cm.causal_weights("front_door", copy.X, copy.y, mechanism=copy.y.astype(float),
                               positivity="warn")
    checks = [c for c in weight_checks(cw) if c.name == "positivity"]
    assert [c.status for c in checks] == ["fail", "fail"]
    assert all(c.value < th.positivity_ratio for c in checks)
    assert "confounded p(x | y)" in checks[0].message
    reg = cm.datasets.make_regression_linear(3000, random_state=0)
    cw = cm.causal_weights("front_door", reg.X, reg.y, mechanism=reg.mechanism,
                           do=np.quantile(reg.y, [0.005, 0.5]), density="gaussian")
    ends, mid = [c for c in weight_checks(cw) if c.name == "positivity"]
    assert ends.status == "fail" and ends.value < th.positivity_continuous
    assert mid.status == "pass" and mid.threshold == th.positivity_continuous


def test_heldout_k_reports_a_candidate_the_folds_cannot_support() -> None:
    """60 rows, 2-D, full covariances: 15 components need 45 effective rows, which the
    whole data have but a training fold of 3 (40 rows) does not. That candidate is
    reported as unsupported (never the best), not a crash; if no candidate fits, it raises."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    model = cm.CausalGaussianMixture(None, n_components=1, random_state=0).fit(
        X, weights=np.ones((60, 1)))
    table = heldout_loglik(model, X, n_components=[1, 15], n_splits=3, random_state=0)
    assert table["supported"].tolist() == [True, False]
    assert table["heldout_loglik"].iloc[1] == -np.inf and np.isnan(table["se"].iloc[1])
    assert np.isfinite(table["heldout_loglik"].iloc[0]) and table["se_diff"].iloc[0] == 0.0
    with pytest.raises(cm.DegenerateFitError, match="no candidate"):
        heldout_loglik(model, X, n_components=[15, 18], n_splits=3, random_state=0)
