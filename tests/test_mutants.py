"""Tests written to kill mutants that survived the rest of the suite: each pins one
behaviour a plausible bug would change (see docs/architecture.md, "Mutation runs")."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import causal_mixtures as cm
from causal_mixtures.mixture.params import n_parameters
from causal_mixtures.weights.core import kish_ess


@pytest.fixture(scope="module")
def data():
    return cm.datasets.make_classification_2d(600, n_test=10, random_state=0)


def test_bic_is_on_the_kish_ess_scale_not_n(rng: np.random.Generator) -> None:
    """BIC = −2·ESS·Σw̃ log q + p·log ESS per do value, with ESS far below n here, so a BIC
    on n (the reference implementation's scale) is far from it."""
    X = np.concatenate([rng.normal(-3, 1, (400, 2)), rng.normal(3, 1, (400, 2))])
    w = rng.exponential(1.0, (800, 2)) ** 4  # heavy-tailed weights: ESS a few % of n
    est = cm.CausalGaussianMixture(None, 2, random_state=0).fit(X, weights=w)
    ess = kish_ess(w / w.sum(0), axis=0)
    assert np.all(ess < 0.25 * len(X))  # the case distinguishes ESS from n
    p = n_parameters(2, 2, "full")
    expected = -2.0 * ess * est.lower_bound_ + p * np.log(ess)
    np.testing.assert_allclose(est.bic_, expected, rtol=1e-12)
    on_n = -2.0 * len(X) * est.lower_bound_ + p * np.log(len(X))
    assert np.all(np.abs(on_n - est.bic_) > 100)


def test_bootstrap_draws_each_do_value_from_its_own_weights(data) -> None:
    """Rows resampled for do value j follow column j of the causal weights: their mean is
    the column-j weighted mean within 4 Monte-Carlo standard errors, and the two columns'
    means are many standard errors apart (so using column 0 for both would fail)."""
    boot = cm.CausalBootstrap(random_state=0)
    X_new, y_new = boot.fit_resample(data.X, data.y, mechanism=data.mechanism, n_samples=20_000)
    W = boot.causal_weights_.values
    means = []
    for j, v in enumerate(boot.do_values_.tolist()):
        w = W[:, j] / W[:, j].sum()
        mu = w @ data.X
        var = w @ (data.X - mu) ** 2
        rows = X_new[y_new == v]
        se = np.sqrt(var / len(rows))  # i.i.d. draws from the weighted empirical law
        assert np.all(np.abs(rows.mean(0) - mu) < 4 * se), (v, rows.mean(0), mu, se)
        means.append((mu, se))
    (m0, s0), (m1, s1) = means
    assert np.max(np.abs(m0 - m1) / np.hypot(s0, s1)) > 20
    # And the source rows of do value j all have positive weight in column j.
    for j, v in enumerate(boot.do_values_.tolist()):
        src = boot.sample_indices_[y_new == v]
        assert np.all(W[src, j] > 0)


def test_learner_hands_its_check_mode_to_the_gate(data) -> None:
    """K = 6 full on 600 rows fails the weight-ESS floor: "raise" refuses, "warn" warns,
    "off" runs no check; the report is kept on the learner."""
    def learner(check: str) -> cm.MechanismLearner:
        return cm.MechanismLearner(
            LogisticRegression(),
            resampler=cm.CausalGaussianMixture(n_components=6, random_state=0),
            check=check,
        )

    with pytest.raises(cm.DiagnosticsError, match="weight_ess"):
        learner("raise").fit(data.X, data.y, mechanism=data.mechanism)
    with pytest.warns(cm.DiagnosticsWarning, match="weight_ess"):
        fitted = learner("warn").fit(data.X, data.y, mechanism=data.mechanism)
    assert not fitted.diagnostics_.ok
    with warnings.catch_warnings():
        warnings.simplefilter("error", cm.DiagnosticsWarning)
        off = learner("off").fit(data.X, data.y, mechanism=data.mechanism)
    assert len(off.diagnostics_.checks) == 0
    # A fit that passes is trained on under "raise".
    ok = cm.MechanismLearner(
        LogisticRegression(), resampler=cm.CausalGaussianMixture(n_components=1, random_state=0),
        check="raise",
    ).fit(data.X, data.y, mechanism=data.mechanism)
    assert ok.diagnostics_.ok
