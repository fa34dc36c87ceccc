"""strategy='weighting' with heavy-tailed weights: the plug-in referees the answer, and a
referee that passes its own checks and puts the truth within the tolerance of the answer
turns the ``weight_khat`` / ``mean_uncertainty`` fails into warnings (``corroboration_bound``)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import causal_mixtures as cm
from causal_mixtures.diagnostics import Thresholds
from causal_mixtures.diagnostics.data_checks import (
    corroboration_bound,
    uncertainty_checks,
    weight_checks_of,
)
from causal_mixtures.estimators.strategy import cross_check_record

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import bench_gate as bg  # noqa: E402
from gate_problems import family_by_name  # noqa: E402

Z95 = 1.959963984540054


def _record(other_ok: bool = True) -> dict:
    means = (np.array([[0.0, 1.0], [2.0, 2.0]]), np.array([[0.1, 1.0], [2.0, 1.7]]))
    ses = (np.full((2, 2), 0.1), np.full((2, 2), 0.02))
    rec = cross_check_record(("weighting", "plug-in"), np.array([0.0, 1.0]), means, ses,
                             np.full((2, 2), 2.0), other_ok=other_ok)
    rec["other_se"] = {"mean_se": np.array([[0.01, 0.02], [0.03, 0.01]]),
                       "sd_se": np.array([[0.02, 0.02], [0.02, 0.02]])}
    rec["own_sd"] = np.array([[2.2, 2.0], [2.0, 2.0]])
    return rec


def test_corroboration_bound_is_the_gap_plus_the_referees_margin() -> None:
    """Per do value, the worst feature of max(|Δmean| / sd + z se_mean, |Δsd| / sd + z se_sd)
    in the referee's sd units; nothing without a passing referee and its bootstrap."""
    rec = _record()
    got = corroboration_bound(rec)
    # do 0: feature 0 mean gap 0.1/2 = 0.05 + z 0.01; sd gap 0.2/2 = 0.1 + z 0.02 (larger)
    # do 1: feature 1 mean gap 0.3/2 = 0.15 + z 0.01 (the worst)
    np.testing.assert_allclose(got, [0.1 + Z95 * 0.02, 0.15 + Z95 * 0.01], rtol=1e-12)
    assert corroboration_bound(_record(other_ok=False)) is None
    bare = _record()
    del bare["other_se"]
    assert corroboration_bound(bare) is None
    assert corroboration_bound(None) is None


@pytest.fixture(scope="module")
def heavy():
    """The paper's strongly confounded regression: heavy-tailed weights at every grid value."""
    data = cm.datasets.make_regression_linear(1500, random_state=0)
    cw = cm.causal_weights("front_door", data.X, data.y, mechanism=data.mechanism,
                           do=[-1.0, 0.0, 1.0], density="gaussian")
    return cw


def test_a_vouched_heavy_tail_warns_and_an_unvouched_one_fails(heavy) -> None:
    th = Thresholds()
    cw = heavy
    assert (cw.khat > th.khat).all()
    n_params = np.full(cw.n_do, 5)
    u = np.full(cw.n_do, 0.35)  # above both khat_uncertainty and the fail threshold
    vouched = np.array([0.1, th.tolerance, 0.15])
    k = [c for c in weight_checks_of(cw, n_params, "one Gaussian", th, "full", u, vouched)
         if c.name == "weight_khat"]
    assert [c.status for c in k] == ["warn", "warn", "warn"]
    # the referee's worst gap over every do value: it vouches for all of them or for none
    assert f"within ±{th.tolerance:.2f} sd" in k[0].message and "plug-in" in k[0].message
    partly = np.array([0.1, 0.1, 0.21])
    assert [c.status for c in weight_checks_of(cw, n_params, "one Gaussian", th, "full", u,
                                               partly) if c.name == "weight_khat"] == ["fail"] * 3
    assert [c.status for c in weight_checks_of(cw, n_params, "one Gaussian", th, "full", u)
            if c.name == "weight_khat"] == ["fail"] * 3

    from causal_mixtures.diagnostics.reference import weighted_reference

    data = cm.datasets.make_regression_linear(1500, random_state=0)
    ref = weighted_reference(data.X, cw.values, cw.do_values)
    bound = np.asarray([c.value for c in uncertainty_checks(ref, th)])
    assert (bound > th.uncertainty).all()
    got = uncertainty_checks(ref, th, corroborated=vouched)
    assert [c.status for c in got] == ["warn"] * 3
    np.testing.assert_allclose([c.value for c in got], bound)  # the bound is unchanged
    assert [c.status for c in uncertainty_checks(ref, th, corroborated=partly)] == ["fail"] * 3


def test_light_tailed_weighting_fits_no_referee() -> None:
    data = cm.datasets.make_front_door_binary(2000, random_state=0)
    model = cm.CausalGaussianMixture(n_components=1, strategy="weighting", random_state=0)
    model.fit(data.X, data.y, mechanism=data.mechanism)
    assert (model.causal_weights_.khat <= Thresholds().khat).all()
    assert getattr(model, "cross_check_", None) is None
    assert model.strategy_reason_ == "strategy='weighting' was requested"


@pytest.mark.parametrize("family", ["disc2_neardet_conf", "cont_linear_mild"])
def test_a_vouched_answer_is_within_the_tolerance_of_the_truth(family: str) -> None:
    """Heavy-tailed weighting fits of two calibration-suite families (three data sets each):
    wherever the referee vouches for a do value whose k-hat or bound fails, the fit's draws
    are within the tolerance of the truth (simulated under do), in mean and in sd; and the
    referee vouches somewhere (the rule can fire)."""
    th = Thresholds()
    fam = family_by_name(family)
    do = np.asarray(fam.problem.do_values)
    truth_rng = np.random.default_rng(5)
    truth = [fam.problem.sample_do(100_000, v, truth_rng) for v in do]
    vouched_any = False
    for seed in (7000, 7001, 13000):
        data = fam.problem.sample(3000, np.random.default_rng([seed, 1, bg._name_seed(family)]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = cm.CausalGaussianMixture(n_components=1, strategy="weighting",
                                             random_state=seed)
            model.fit(data["X"], data["y"], mechanism=data["z"], do=list(do))
        report = cm.diagnose(model, data["X"])
        c = corroboration_bound(getattr(model, "cross_check_", None))
        for j, v in enumerate(do):
            checks = [x for x in report.checks if x.do == v
                      and x.name in ("weight_khat", "mean_uncertainty")]
            rescued = [x for x in checks if x.status == "warn" and "puts the truth" in x.message]
            if not rescued:
                continue
            vouched_any = True
            assert c is not None and c.max() <= th.tolerance
            draws = model.sample(20_000, do=v, random_state=1)
            sd = truth[j].std(0)
            e_mean = np.abs(draws.mean(0) - truth[j].mean(0)) / sd
            e_sd = np.abs(draws.std(0) - sd) / sd
            assert e_mean.max() <= th.tolerance and e_sd.max() <= th.tolerance, (seed, v)
    assert vouched_any


def test_the_referee_leaves_the_weighting_fit_unchanged(monkeypatch) -> None:
    """The referee's draws come from a generator of their own: the same heavy-tailed fit
    with the referee switched off (k-hat threshold at infinity) has identical parameters."""
    import causal_mixtures.estimators.strategy as strategy

    fam = family_by_name("disc2_neardet_conf")
    data = fam.problem.sample(3000, np.random.default_rng([7000, 1, bg._name_seed(fam.name)]))

    def fit() -> cm.CausalGaussianMixture:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cm.CausalGaussianMixture(n_components=2, strategy="weighting",
                                            random_state=0).fit(
                data["X"], data["y"], mechanism=data["z"], do=list(fam.problem.do_values))

    refereed = fit()
    assert refereed.cross_check_ is not None and "referees" in refereed.strategy_reason_
    original = strategy.Thresholds
    monkeypatch.setattr(strategy, "Thresholds", lambda: original(khat=np.inf))
    alone = fit()
    assert getattr(alone, "cross_check_", None) is None
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(refereed, name), getattr(alone, name))


def test_a_referee_that_cannot_be_fitted_leaves_the_weighting_fit_alone(monkeypatch) -> None:
    """The plug-in is a second opinion: where it cannot be fitted the weighting fit asked
    for still runs, says why it has no referee, and its heavy-tailed checks fail as before."""
    import causal_mixtures.estimators.strategy as strategy

    def broken(*args, **kwargs):
        raise cm.DegenerateFitError("a cell of the plug-in has no rows")

    monkeypatch.setattr(strategy, "fit_plugin_sampler", broken)
    fam = family_by_name("disc2_neardet_conf")
    data = fam.problem.sample(3000, np.random.default_rng([7000, 1, bg._name_seed(fam.name)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cm.CausalGaussianMixture(n_components=1, strategy="weighting", random_state=0)
        model.fit(data["X"], data["y"], mechanism=data["z"], do=list(fam.problem.do_values))
    assert "could not be fitted (a cell of the plug-in has no rows)" in model.strategy_reason_
    assert getattr(model, "cross_check_", None) is None
    khat = cm.diagnose(model, data["X"]).select("weight_khat")
    assert "fail" in [c.status for c in khat]  # do = 1: k-hat 0.89 where the bound is 0.24
    with pytest.raises(cm.DegenerateFitError):  # strategy="auto" needs the plug-in
        cm.CausalGaussianMixture(n_components=1, random_state=0).fit(
            data["X"], data["y"], mechanism=data["z"], do=list(fam.problem.do_values))


def test_the_causal_bootstrap_gets_the_weighting_fits_referee(monkeypatch) -> None:
    """CausalBootstrap resamples the weighted rows of strategy='weighting': with the same
    data and seed its referee record is the weighting fit's, its resampled rows are those
    it draws without a referee, and diagnose reads the record the same way."""
    import causal_mixtures.estimators.strategy as strategy

    fam = family_by_name("disc2_neardet_conf")
    data = fam.problem.sample(3000, np.random.default_rng([7000, 1, bg._name_seed(fam.name)]))
    do = list(fam.problem.do_values)

    def resample() -> cm.CausalBootstrap:
        boot = cm.CausalBootstrap(random_state=7000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            boot.fit_resample(data["X"], data["y"], mechanism=data["z"], do=do, n_samples=2000)
        return boot

    boot = resample()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighting = cm.CausalGaussianMixture(n_components=1, strategy="weighting",
                                             random_state=7000).fit(
            data["X"], data["y"], mechanism=data["z"], do=do)
    for key in ("mean", "se"):
        for a, b in zip(boot.cross_check_[key], weighting.cross_check_[key], strict=True):
            np.testing.assert_array_equal(a, b)
    assert boot.strategy_reason_.startswith("the causal bootstrap resamples the weighted rows")
    np.testing.assert_array_equal(corroboration_bound(boot.cross_check_),
                                  corroboration_bound(weighting.cross_check_))
    khat = [c.status for c in cm.diagnose(boot, data["X"]).select("weight_khat")]
    assert "warn" in khat and "fail" not in khat  # vouched (k-hat 0.89 at do = 1)
    original = strategy.Thresholds
    monkeypatch.setattr(strategy, "Thresholds", lambda: original(khat=np.inf))
    alone = resample()
    assert getattr(alone, "cross_check_", None) is None
    np.testing.assert_array_equal(alone.sample_indices_, boot.sample_indices_)


def test_no_plugin_is_fitted_above_the_feature_limit(monkeypatch) -> None:
    """Above PLUGIN_MAX_FEATURES effect columns the plug-in is neither a referee nor a
    candidate (its mixture regression costs d³: on 4096-pixel images the referee took the
    causal bootstrap from 5 s to 278 s and 6 GB); the reasons say so and what to do."""
    import causal_mixtures.estimators.strategy as strategy

    limit = strategy.PLUGIN_MAX_FEATURES
    assert limit == 256
    fam = family_by_name("disc2_neardet_conf")
    data = fam.problem.sample(3000, np.random.default_rng([7000, 1, bg._name_seed(fam.name)]))
    noise = np.random.default_rng(5).normal(size=(3000, limit + 1 - data["X"].shape[1]))
    X = np.hstack([data["X"], noise])
    do = list(fam.problem.do_values)

    def no_plugin(*args, **kwargs):
        raise AssertionError("the plug-in was fitted")

    monkeypatch.setattr(strategy, "fit_plugin_sampler", no_plugin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = cm.CausalBootstrap(random_state=7000)
        boot.fit_resample(X, data["y"], mechanism=data["z"], do=do, n_samples=500)
        auto = cm.CausalGaussianMixture(n_components=1, covariance_type="diag",
                                        representation=None, random_state=0).fit(
            X, data["y"], mechanism=data["z"], do=do)
    assert (np.asarray(boot.causal_weights_.khat) > Thresholds().khat).any()  # heavy tails
    assert getattr(boot, "cross_check_", None) is None
    assert boot.strategy_reason_.startswith("the causal bootstrap resamples the weighted rows")
    assert f"with {limit + 1} features (more than {limit})" in boot.strategy_reason_
    assert "heavy-tailed, and no plug-in referees them" in boot.strategy_reason_
    assert auto.strategy_ == "weighting"
    assert auto.strategy_reason_.startswith(f"weighting: the effect has {limit + 1} features")
    # one column fewer: the referee is back (the limit is where it says it is)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        at = cm.CausalBootstrap(random_state=7000)
        at.fit_resample(X[:, :limit], data["y"], mechanism=data["z"], do=do, n_samples=500)
    assert at.cross_check_ is not None
