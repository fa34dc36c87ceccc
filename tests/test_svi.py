"""SVI-MAP, the Bayesian CW-GMM, posterior datasets and the uncertainty-aware
MechanismLearner (causal_mixtures.svi and the estimator glue)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyro
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression

import causal_mixtures as cm
from causal_mixtures.mixture import bayes, svi
from causal_mixtures.mixture.params import Mixture

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def linear():
    """Linear-Gaussian front-door data; X | do(Y=1) ~ N(0.75, 7.25)."""
    return cm.datasets.make_front_door_linear(1500, random_state=0)


@pytest.fixture(scope="module")
def classif():
    return cm.datasets.make_classification_2d(600, random_state=0)


def _blobs3(rng: np.random.Generator) -> np.ndarray:
    return np.concatenate(
        [
            rng.normal([0.0, 0.0], 1.0, (300, 2)),
            rng.normal([5.0, 5.0], 0.7, (200, 2)),
            rng.normal([-4.0, 6.0], 0.5, (160, 2)),
        ]
    ) + 20.0


# ---------------------------------------------------------------------- SVI-MAP = EM
def test_svi_map_reaches_em_objective_linear_gaussian(linear) -> None:
    """Issue 3.6, closed-form case: from a deliberately poor start (mean 0, variance 1 vs
    the optimum's ~0.8 and ~7), SVI-MAP reaches EM's weighted log-likelihood."""
    do = np.array([-1.0, 1.0])
    kw = dict(n_components=1, density="gaussian", random_state=0)
    # The weighted EM itself (the default, "auto", takes the plug-in for a continuous cause).
    em = cm.CausalGaussianMixture(tol=1e-10, max_iter=500, strategy="weighting", **kw).fit(
        linear.X, linear.y, mechanism=linear.mechanism, do=do
    )
    est = cm.CausalGaussianMixture(
        inference="svi", svi_init="init_params", weights_init=[1.0], means_init=[[0.0]],
        precisions_init=[[[1.0]]], learning_rate=0.05, n_steps=600, tol=1e-6, **kw,
    ).fit(linear.X, linear.y, mechanism=linear.mechanism, do=do)
    # Contract: 1e-3 relative. The K = 1 optimum is the weighted mean and variance.
    np.testing.assert_allclose(est.lower_bound_, em.lower_bound_, rtol=1e-3)
    assert np.all(est.lower_bound_ <= em.lower_bound_ + 1e-12)  # EM is the exact optimum
    np.testing.assert_allclose(est.means_, em.means_, atol=0.05 * np.sqrt(7.25))
    assert est.lower_bounds_.shape == (est.n_iter_[0], 2)
    assert est.lower_bounds_[0].mean() < est.lower_bounds_[-1].mean() - 0.1  # it did climb
    assert est.converged_.all() and est.fitted_inference_ == "svi"
    assert not hasattr(est, "posterior_")


def test_svi_map_reaches_em_objective_three_components_2d() -> None:
    """Issue 3.6, 3-component 2-D case: SVI-MAP from a weighted k-means++ seeding (not from
    EM) reaches EM's objective; the components agree after matching."""
    rng = np.random.default_rng(0)
    X = _blobs3(rng)
    W = rng.exponential(1.0, (len(X), 2))
    kw = dict(n_components=3, init_params="k-means++", random_state=1)
    em = cm.CausalGaussianMixture(None, tol=1e-10, max_iter=1000, **kw).fit(X, weights=W)
    est = cm.CausalGaussianMixture(
        None, inference="svi", svi_init="init_params", learning_rate=0.03, n_steps=1500,
        tol=1e-6, **kw,
    ).fit(X, weights=W)
    np.testing.assert_allclose(est.lower_bound_, em.lower_bound_, rtol=1e-3)
    for j in range(2):
        cost = ((est.means_[j][:, None] - em.means_[j][None]) ** 2).sum(-1)
        rows, cols = linear_sum_assignment(cost)
        # Same optimum up to SVI's final jitter: means within 0.05 (blob sds 0.5-1).
        np.testing.assert_allclose(est.means_[j][rows], em.means_[j][cols], atol=0.05)
        np.testing.assert_allclose(est.weights_[j][rows], em.weights_[j][cols], atol=0.01)


def test_svi_minibatch_warm_start_and_trace() -> None:
    """subsample_size: minibatch SVI from the EM warm start stays at EM's optimum."""
    rng = np.random.default_rng(2)
    X = _blobs3(rng)
    W = rng.exponential(1.0, (len(X), 2))
    em = cm.CausalGaussianMixture(None, 3, random_state=0).fit(X, weights=W)
    est = cm.CausalGaussianMixture(
        None, 3, inference="svi", subsample_size=64, n_steps=200, random_state=0
    ).fit(X, weights=W)
    # Minibatches of 64 rows: the final parameters (averaged over the last window) keep
    # the objective within 1e-3 relative of EM's.
    np.testing.assert_allclose(est.lower_bound_, em.lower_bound_, rtol=1e-3)
    assert est.lower_bounds_.shape[1] == 2
    assert est.weight_mass_ == "ess"
    np.testing.assert_allclose(est.likelihood_mass_, est.causal_weights_.ess)


# ---------------------------------------------------------------------- Bayes
@pytest.mark.parametrize(
    "covariance_type, cov_tail", [("full", (2, 2)), ("diag", (2,)), ("spherical", ())]
)
def test_bayes_posterior_shapes_and_point_estimate(classif, covariance_type, cov_tail) -> None:
    est = cm.CausalGaussianMixture(
        n_components=2, covariance_type=covariance_type, inference="bayes", n_steps=50,
        n_posterior_draws=40, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cm.ConvergenceWarning)  # 50 steps: shapes only
        est.fit(classif.X, classif.y, mechanism=classif.mechanism)
    post = est.posterior_
    assert sorted(post) == ["covariances", "means", "weights"]
    assert post["weights"].shape == (1, 40, 2, 2)
    assert post["means"].shape == (1, 40, 2, 2, 2)
    assert post["covariances"].shape == (1, 40, 2, 2, *cov_tail)
    np.testing.assert_allclose(post["weights"].sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(est.means_, post["means"].mean((0, 1)), rtol=1e-12)
    np.testing.assert_allclose(est.covariances_, post["covariances"].mean((0, 1)), rtol=1e-12)
    assert est.guide_ == "mvn" and est.lower_bounds_.ndim == 1
    assert est.prior_.mean_loc.shape == (2,)
    # sample (posterior predictive) and score_samples (at the posterior mean) work.
    draws = est.sample(500, do=1, random_state=0)
    assert draws.shape == (500, 2) and np.isfinite(draws).all()
    assert np.isfinite(est.score_samples(draws[:10], do=1)).all()
    X_new, y_new = est.resample(random_state=0)
    assert X_new.shape == (600, 2) and set(np.unique(y_new)) == {1, 2}


@pytest.mark.slow
def test_posterior_interval_covers_closed_form_and_ess_is_wider() -> None:
    """Issue 3.6: K = 1 linear-Gaussian front door, 20 seeds: the 90 % posterior interval of
    E[X | do(Y=1)] covers the closed form (0.75) for >= 80 % of the seeds, and
    weight_mass="ess" gives wider intervals than "n", by the expected factor."""
    n, seeds = 1000, 20
    covered, ratio, calib = [], [], []
    for s in range(seeds):
        data = cm.datasets.make_front_door_linear(n, random_state=s)
        truth = float(data.interventional_mean(1.0))
        sd, width = {}, {}
        for mass in ("ess", "n"):
            est = cm.CausalGaussianMixture(
                n_components=1, density="gaussian", inference="bayes", weight_mass=mass,
                n_steps=100, n_posterior_draws=1000, random_state=s,
            ).fit(data.X, data.y, mechanism=data.mechanism, do=[1.0])
            m = est.posterior_["means"][0, :, 0, 0, 0]
            lo, hi = np.quantile(m, [0.05, 0.95])
            sd[mass], width[mass] = m.std(), hi - lo
            if mass == "ess":
                covered.append(lo <= truth <= hi)
        ess = est.causal_weights_.ess[0]
        assert width["ess"] > width["n"]
        ratio.append(sd["ess"] / sd["n"] / np.sqrt(n / ess))
        calib.append(sd["ess"] / np.sqrt(est.covariances_[0, 0, 0, 0] / ess))
    # A calibrated 90 % interval misses >= 5 of 20 with probability 4 %. (Observed: see
    # the report in the PR; 29/32 over seeds 0-31 with 400 steps.)
    assert sum(covered) >= 16, covered
    # "n" overstates the information by n / ESS: the sds differ by sqrt(n / ESS); and the
    # ESS posterior sd is the weighted mean's standard error sqrt(σ² / ESS). Averaged over
    # 20 seeds, SVI's and 1000 draws' Monte-Carlo error is ~2 %; 10 % tolerance.
    assert np.mean(ratio) == pytest.approx(1.0, abs=0.1), ratio
    assert np.mean(calib) == pytest.approx(1.0, abs=0.1), calib


def test_nuts_small_data_and_clear_error_when_large() -> None:
    data = cm.datasets.make_front_door_linear(150, random_state=3)
    est = cm.CausalGaussianMixture(
        n_components=1, density="gaussian", inference="bayes", guide="nuts",
        n_posterior_draws=30, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cm.ConvergenceWarning)  # 30 draws: shapes only
        est.fit(data.X, data.y, mechanism=data.mechanism, do=[0.0, 1.0])
    assert est.posterior_["means"].shape == (1, 30, 2, 1, 1)
    assert est.lower_bounds_.shape == (30, 2) and est.guide_ == "nuts"
    big = cm.datasets.make_front_door_linear(bayes.NUTS_MAX_ROWS + 1, random_state=0)
    with pytest.raises(ValueError, match=r"expected n_samples <= 2000, got 2001\. Use SVI"):
        clone(est).fit(big.X, big.y, mechanism=big.mechanism, do=[1.0])


# ---------------------------------------------------------------------- posterior datasets
def test_posterior_datasets(classif) -> None:
    df = pd.DataFrame(classif.X, columns=["a", "b"])
    est = cm.CausalGaussianMixture(
        n_components=2, inference="bayes", n_steps=40, n_posterior_draws=20, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cm.ConvergenceWarning)
        est.fit(df, classif.y, mechanism=classif.mechanism)
    sets = est.posterior_datasets(4, n_samples=[30, 50])
    assert len(sets) == 4
    for X_new, y_new in sets:
        assert isinstance(X_new, pd.DataFrame) and list(X_new.columns) == ["a", "b"]
        assert X_new.shape == (80, 2) and np.sum(y_new == 1) == 30 and np.sum(y_new == 2) == 50
    # Different posterior draws, different data; reproducible with a seed.
    assert not np.allclose(sets[0][0].to_numpy(), sets[1][0].to_numpy())
    a = est.posterior_datasets(2, random_state=5)
    b = est.posterior_datasets(2, random_state=5)
    np.testing.assert_array_equal(a[1][0].to_numpy(), b[1][0].to_numpy())
    assert len(a[0][1]) == 600  # n_samples=None: n // n_do per do value
    with pytest.raises(ValueError, match="exceeds the 20 stored posterior draws"):
        est.posterior_datasets(21)


def test_posterior_datasets_spread_reflects_posterior() -> None:
    """Each dataset comes from one posterior draw: the spread of the dataset means is the
    posterior spread of the mixture mean plus the sampling noise of one dataset."""
    data = cm.datasets.make_front_door_linear(1000, random_state=1)
    est = cm.CausalGaussianMixture(
        n_components=1, density="gaussian", inference="bayes", n_steps=100,
        n_posterior_draws=200, random_state=0,
    ).fit(data.X, data.y, mechanism=data.mechanism, do=[1.0])
    sets = est.posterior_datasets(200, n_samples=2000)
    means = np.array([X[:, 0].mean() for X, _ in sets])
    post_var = est.posterior_["means"][0, :, 0, 0, 0].var()
    expected = post_var + est.covariances_[0, 0, 0, 0] / 2000
    # Variance of 200 draws: relative SE sqrt(2/199) = 10 %; 40 % = 4 SE.
    assert means.var() == pytest.approx(expected, rel=0.4)
    assert means.var() > 2 * est.covariances_[0, 0, 0, 0] / 2000  # more than sampling noise


# ---------------------------------------------------------------------- MechanismLearner
def test_mechanism_learner_ensemble_classifier(classif) -> None:
    bayes = cm.CausalGaussianMixture(
        n_components=2, inference="bayes", n_steps=60, n_posterior_draws=20, random_state=0
    )
    # The gate is tested in test_diagnostics.py; here only the ensemble (check="off").
    learner = cm.MechanismLearner(LogisticRegression(), resampler=bayes, n_resamples=5,
                                  check="off")
    assert learner.get_params()["n_resamples"] == 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cm.ConvergenceWarning)
        learner.fit(classif.X, classif.y, mechanism=classif.mechanism)
    assert len(learner.estimators_) == 5
    mean, std = learner.predict_proba(classif.X_test, return_std=True)
    assert mean.shape == std.shape == (len(classif.X_test), 2)
    np.testing.assert_allclose(mean.sum(1), 1.0)
    assert np.all(std >= 0) and std.max() > 0
    np.testing.assert_allclose(mean, learner.predict_proba(classif.X_test))
    pred = learner.predict(classif.X_test)
    np.testing.assert_array_equal(pred, learner.classes_[mean.argmax(1)])
    assert 0.5 < learner.score(classif.X_test, classif.y_test) <= 1.0
    with pytest.raises(ValueError, match="for a classifier use predict_proba"):
        learner.predict(classif.X_test, return_std=True)
    # An EM resampler and the causal bootstrap give ensembles too (resampling noise only).
    for resampler in (cm.CausalGaussianMixture(n_components=2, random_state=0),
                      cm.CausalBootstrap(random_state=0)):
        other = cm.MechanismLearner(LogisticRegression(), resampler=resampler, n_resamples=3,
                                  check="off")
        other.fit(classif.X, classif.y, mechanism=classif.mechanism)
        _, s = other.predict_proba(classif.X_test, return_std=True)
        assert s.max() > 0


def test_mechanism_learner_ensemble_regressor() -> None:
    data = cm.datasets.make_regression_linear(800, random_state=0)
    do = np.linspace(np.quantile(data.y, 0.1), np.quantile(data.y, 0.9), 4)
    resampler = cm.CausalGaussianMixture(
        n_components=1, density="gaussian", inference="bayes", n_steps=60,
        n_posterior_draws=20, random_state=0,
    )
    # check="off": the regression data's extreme do values have tiny ESS; the diagnostics
    # gate is tested in test_diagnostics.py, here only the ensemble mechanics.
    learner = cm.MechanismLearner(
        LinearRegression(), resampler=resampler, n_resamples=4, check="off"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cm.ConvergenceWarning)
        warnings.simplefilter("ignore", cm.PositivityWarning)
        learner.fit(data.X, data.y, mechanism=data.mechanism, do=do)
    mean, std = learner.predict(data.X[:50], return_std=True)
    assert mean.shape == std.shape == (50,) and np.all(std > 0)
    np.testing.assert_allclose(mean, learner.predict(data.X[:50]))


def test_return_std_needs_an_ensemble(classif) -> None:
    learner = cm.MechanismLearner(
        LogisticRegression(), resampler=cm.CausalGaussianMixture(n_components=2, random_state=0),
        check="off",
    ).fit(classif.X, classif.y, mechanism=classif.mechanism)
    with pytest.raises(ValueError, match=r"return_std=True needs an ensemble.*n_resamples=1"):
        learner.predict_proba(classif.X_test, return_std=True)
    with pytest.raises(ValueError, match=r"'n_resamples' parameter of MechanismLearner must be an int in the range \[1, inf\); got 0"):
        cm.MechanismLearner(LogisticRegression(), n_resamples=0).fit(
            classif.X, classif.y, mechanism=classif.mechanism
        )


# ---------------------------------------------------------------------- contract, bad input
def test_posterior_datasets_requires_bayes(classif) -> None:
    est = cm.CausalGaussianMixture(n_components=2, random_state=0).fit(
        classif.X, classif.y, mechanism=classif.mechanism
    )
    with pytest.raises(ValueError, match=r"inference='em'.*Refit with inference='bayes'"):
        est.posterior_datasets(3)


def test_refit_with_em_drops_the_posterior(classif) -> None:
    est = cm.CausalGaussianMixture(
        n_components=1, inference="bayes", n_steps=20, n_posterior_draws=10, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cm.ConvergenceWarning)
        est.fit(classif.X, classif.y, mechanism=classif.mechanism)
    assert hasattr(est, "posterior_")
    est.set_params(inference="em").fit(classif.X, classif.y, mechanism=classif.mechanism)
    assert not hasattr(est, "posterior_")
    with pytest.raises(ValueError, match="Refit with inference='bayes'"):
        est.posterior_datasets(2)


@pytest.mark.parametrize(
    "param, value, msg",
    [
        ("weight_mass", "rows", r"'weight_mass' parameter .* None or one of \{'n', 'ess'\}"),
        ("guide", "laplace", "'guide' parameter .* one of"),
        ("svi_init", "random", "'svi_init' parameter .* one of"),
        ("n_steps", 0, r"'n_steps' parameter .* an int in the range \[1, inf\); got 0"),
        ("learning_rate", -0.1, r"'learning_rate' parameter .* a number in the range \(0, inf\)"),
        ("subsample_size", 0, r"'subsample_size' parameter .* None or an int in the range \[1"),
        ("n_posterior_draws", 1, r"'n_posterior_draws' parameter .* \[2, inf\); got 1"),
        ("inference", "mcmc", "'inference' parameter .* one of"),
    ],
)
def test_bad_svi_hyperparameters(classif, param, value, msg) -> None:
    kw = {"n_components": 2, "inference": "bayes", param: value}
    est = cm.CausalGaussianMixture(**kw)
    with pytest.raises(ValueError, match=msg):
        est.fit(classif.X, classif.y, mechanism=classif.mechanism)


def test_nuts_cannot_subsample_and_auto_needs_em_start(classif) -> None:
    with pytest.raises(ValueError, match="guide='nuts' uses every row"):
        cm.CausalGaussianMixture(inference="bayes", guide="nuts", subsample_size=10).fit(
            classif.X, classif.y, mechanism=classif.mechanism
        )
    with pytest.raises(ValueError, match="use svi_init='em'"):
        cm.CausalGaussianMixture("front_door", "auto", inference="svi", svi_init="init_params").fit(
            classif.X, classif.y, mechanism=classif.mechanism
        )


@pytest.mark.parametrize("device", DEVICES)
def test_isolation_reproducibility_and_device(classif, device) -> None:
    """Fits leave Pyro's global parameter store and the global RNGs alone, the same seed
    gives identical results, and the fit runs on the requested device (CUDA when the
    machine has one; the suite's CI machines are CPU-only)."""
    pyro.clear_param_store()
    pyro.param("user_param", torch.tensor([1.0, 2.0]))
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 - checking it is untouched
    torch_state = torch.get_rng_state().clone()
    fits = []
    for _ in range(2):
        est = cm.CausalGaussianMixture(
            n_components=2, inference="bayes", n_steps=30, n_posterior_draws=10,
            random_state=3, device=device,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cm.ConvergenceWarning)
            est.fit(classif.X, classif.y, mechanism=classif.mechanism)
        fits.append(est)
    np.testing.assert_array_equal(fits[0].posterior_["means"], fits[1].posterior_["means"])
    np.testing.assert_array_equal(fits[0].sample(20, do=1), fits[1].sample(20, do=1))
    assert list(pyro.get_param_store().keys()) == ["user_param"]
    torch.testing.assert_close(pyro.param("user_param"), torch.tensor([1.0, 2.0]))
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_state)
    pyro.clear_param_store()


def test_verbose_progress_bar(classif, capsys) -> None:
    est = cm.CausalGaussianMixture(
        n_components=1, inference="svi", n_steps=40, verbose=True, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cm.ConvergenceWarning)
        est.fit(classif.X, classif.y, mechanism=classif.mechanism)
    assert "SVI (MAP)" in capsys.readouterr().err


def test_map_matches_em_on_unit_weights_sklearn_path(blobs) -> None:
    """The svi module's functions work on tensors directly (as the benchmark uses them)."""
    X = torch.tensor(blobs)
    W = torch.ones(1, len(blobs), dtype=torch.float64)
    em = cm.CausalGaussianMixture(None, 3, tol=1e-8, max_iter=500, random_state=0).fit(
        blobs, weights=np.ones(len(blobs))
    )
    init = Mixture(em.weights_, em.means_, em.covariances_, "full").to_torch()
    res = svi.fit_map(X, W, init, n_steps=100, random_state=0)
    ll = res.mixture.log_prob(X).mean(-1)
    np.testing.assert_allclose(ll.numpy(), em.lower_bound_, rtol=1e-4)
