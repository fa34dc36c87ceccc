"""Tests written to kill mutants that survived the rest of the suite: each pins one
behaviour a plausible bug would change (see docs/architecture.md, "Mutation runs")."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

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
    # The BIC that chooses K is the same one: the grid's entry for the chosen K is bic_.
    auto = cm.CausalGaussianMixture(None, "auto", n_components_range=[1, 2, 3],
                                    random_state=0).fit(X, weights=w)
    chosen = list(auto.n_components_grid_).index(auto.n_components_)
    np.testing.assert_allclose(auto.bic_grid_[chosen], auto.bic_, rtol=1e-12)


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


def test_learner_hands_its_check_mode_to_the_gate() -> None:
    """The paper's strongly confounded regression with do values at the ends of the data:
    the weighted answer is uncertain to far more than the tolerance. "raise" refuses,
    "warn" warns, "off" runs no check; the report is kept on the learner."""
    from sklearn.linear_model import LinearRegression

    reg = cm.datasets.make_regression_linear(1500, random_state=0)
    grid = np.quantile(reg.y, [0.01, 0.5, 0.99])

    def learner(check: str) -> cm.MechanismLearner:
        return cm.MechanismLearner(
            LinearRegression(),
            resampler=cm.CausalGaussianMixture(density="gaussian", strategy="weighting",
                                               random_state=0),
            check=check,
        )

    fit = {"mechanism": reg.mechanism, "do": grid}
    with pytest.raises(cm.DiagnosticsError, match="mean_uncertainty"):
        learner("raise").fit(reg.X, reg.y, **fit)
    with pytest.warns(cm.DiagnosticsWarning, match="mean_uncertainty"):
        fitted = learner("warn").fit(reg.X, reg.y, **fit)
    assert not fitted.diagnostics_.ok
    with warnings.catch_warnings():
        warnings.simplefilter("error", cm.DiagnosticsWarning)
        off = learner("off").fit(reg.X, reg.y, **fit)
    assert len(off.diagnostics_.checks) == 0
    # A fit that passes is trained on under "raise".
    ok = cm.MechanismLearner(
        LinearRegression(), resampler=cm.CausalGaussianMixture(density="gaussian",
                                                               random_state=0),
        check="raise",
    ).fit(reg.X, reg.y, mechanism=reg.mechanism, do=np.quantile(reg.y, [0.4, 0.6]))
    assert ok.diagnostics_.ok


# ---------------------------------------------------------------------- round 1 survivors
def test_kish_ess_closed_forms() -> None:
    assert kish_ess(np.ones(50)) == pytest.approx(50.0, rel=1e-15)
    assert kish_ess(np.eye(1, 50)[0]) == pytest.approx(1.0, rel=1e-15)
    # (1 + 1 + 2 + 2)² / (1 + 1 + 4 + 4) = 36 / 10, on either axis of a 2-D array.
    w = np.array([[1.0, 1.0, 2.0, 2.0], [3.0, 3.0, 3.0, 3.0]])
    np.testing.assert_allclose(kish_ess(w, axis=1), [3.6, 4.0], rtol=1e-15)
    # Scale-free: the ESS of the causal weights is that of the normalised columns.
    np.testing.assert_allclose(kish_ess(7.0 * w.T, axis=0), [3.6, 4.0], rtol=1e-15)


def test_n_init_keeps_the_best_restart(rng: np.random.Generator) -> None:
    """Restarts from random rows land in different optima on five overlapping blobs; the
    fit keeps, for every do value, the restart with the largest weighted log-likelihood."""
    centres = rng.normal(0, 3, (5, 2))
    X = np.concatenate([c + rng.normal(0, 1, (120, 2)) for c in centres])
    w = rng.uniform(0.5, 1.5, (len(X), 2))
    kw = dict(init_params="random_from_data", tol=1e-5, max_iter=2000)
    one = cm.CausalGaussianMixture(None, 5, random_state=3, **kw).fit(X, weights=w)
    many = cm.CausalGaussianMixture(None, 5, n_init=8, random_state=3, **kw).fit(X, weights=w)
    # Restart 0 of the batch is the single fit (same seeds in the same order).
    assert np.all(many.lower_bound_ >= one.lower_bound_ - 1e-12)
    assert np.any(many.lower_bound_ > one.lower_bound_ + 1e-4)


def test_reg_covar_floors_a_constant_feature_relative_to_the_data(
    rng: np.random.Generator,
) -> None:
    """A feature with no variance gets exactly reg_covar times the data's mean feature
    variance (the fit's unit), in every covariance type."""
    X = np.column_stack([rng.normal(0, 3, 400), np.full(400, 2.0)])
    unit = float(np.mean(X.var(0)))
    for ct, pick in (("diag", lambda c: c[..., 1]), ("full", lambda c: c[..., 1, 1])):
        est = cm.CausalGaussianMixture(None, 2, covariance_type=ct, reg_covar=1e-3,
                                       random_state=0).fit(X, weights=np.ones(400))
        np.testing.assert_allclose(pick(est.covariances_), 1e-3 * unit, rtol=1e-9)


def test_em_stops_where_sklearn_stops_at_the_default_tol(blobs: np.ndarray) -> None:
    """Same start, unit weights, tol=1e-3: as many iterations as scikit-learn (whose
    reg_covar is absolute; ours relative to the mean feature variance)."""
    from sklearn.mixture import GaussianMixture

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init = GaussianMixture(3, max_iter=1, random_state=1).fit(blobs)
    kw = dict(weights_init=init.weights_, means_init=init.means_,
              precisions_init=init.precisions_)
    ref = GaussianMixture(3, tol=1e-3, **kw).fit(blobs)
    reg = 1e-6 / float(np.mean(blobs.var(0)))
    ours = cm.CausalGaussianMixture(None, 3, tol=1e-3, reg_covar=reg, **kw).fit(
        blobs, weights=np.ones(len(blobs))
    )
    assert ours.n_iter_[0] == ref.n_iter_
    # The trace's last entry is the objective at the last E-step, within tol of the final.
    assert abs(ours.lower_bounds_[-1, 0] - ours.lower_bound_[0]) < 1e-3
    assert np.all(np.diff(ours.lower_bounds_[:, 0]) > -1e-10)


@pytest.mark.parametrize("ct", ["full", "diag", "spherical"])
def test_one_component_draws_have_the_fitted_covariance(ct: str) -> None:
    """Sample covariance of 40 000 draws within 5 Monte-Carlo standard errors of the fitted
    one (SE of a variance: var·sqrt(2/n))."""
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (3000, 2)) * np.array([3.0, 0.5]) + np.array([1.0, -2.0])
    est = cm.CausalGaussianMixture(None, 1, covariance_type=ct, random_state=0).fit(
        X, weights=np.ones(len(X))
    )
    draws = est.sample(40_000, do=0, random_state=1)
    cov = est.covariances_[0, 0]
    var = np.diag(cov) if ct == "full" else (cov if ct == "diag" else np.full(2, cov))
    np.testing.assert_array_less(np.abs(draws.var(0) - var), 5 * var * np.sqrt(2 / 40_000))


@pytest.mark.parametrize("seed", [0, 1])
def test_em_stops_at_the_same_iteration_as_sklearn_on_a_slow_fit(seed: int) -> None:
    """Two overlapping components converge slowly (sklearn: 5 iterations at tol=1e-3, 2 at
    tol=1e-2), so an EM that stops at the wrong multiple of tol stops at another step."""
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(0, 1, (400, 2)), rng.normal(1.0, 1, (400, 2))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init = GaussianMixture(2, max_iter=1, random_state=1).fit(X)
    kw = dict(weights_init=init.weights_, means_init=init.means_,
              precisions_init=init.precisions_)
    ref = GaussianMixture(2, tol=1e-3, **kw).fit(X)
    assert ref.n_iter_ >= 4  # the case is slow enough to tell tol from 10 tol
    ours = cm.CausalGaussianMixture(
        None, 2, tol=1e-3, reg_covar=1e-6 / float(np.mean(X.var(0))), **kw
    ).fit(X, weights=np.ones(len(X)))
    assert ours.n_iter_[0] == ref.n_iter_
    np.testing.assert_allclose(ours.means_[0], ref.means_, atol=1e-9)
