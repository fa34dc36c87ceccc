"""The plug-in's standard errors: a bootstrap of its conditionals, against the spread of
the plug-in's answer over repeated datasets of a closed-form SCM."""

from __future__ import annotations

import numpy as np

import causal_mixtures as cm
from causal_mixtures.diagnostics.data_checks import plugin_uncertainty, uncertainty_bound
from causal_mixtures.estimators.plugin import PluginFrontDoor
from causal_mixtures.estimators.plugin_uncertainty import plugin_bootstrap
from causal_mixtures.estimators.strategy import plugin_means

DO = np.array([0.0, 3.0])  # the bulk of the cause (sd 1.4) and beyond its 98th percentile


def _fit(n: int, seed: int) -> tuple[PluginFrontDoor, object]:
    data = cm.datasets.make_front_door_linear(n, random_state=seed)
    pl = PluginFrontDoor(1, discrete_cause=False).fit(data.X, data.y, data.mechanism)
    return pl, data


def test_bootstrap_standard_error_matches_the_spread_over_datasets() -> None:
    n, reps, draws = 400, 30, 10_000
    est, boot = [], []
    for seed in range(reps):
        pl, data = _fit(n, seed)
        rng = np.random.default_rng(100 + seed)
        mean, sd, _ = plugin_means(pl, DO, n, rng, draws)
        est.append(mean[:, 0] / np.sqrt(data.interventional_var))
        boot.append(plugin_bootstrap(pl, data.X, data.y, data.mechanism, DO, rng)["mean_se"][:, 0])
    est, boot = np.array(est), np.array(boot)
    # The estimates' own sd over datasets, less the Monte-Carlo part of `draws` draws.
    spread = np.sqrt(est.var(0, ddof=1) - 1.0 / draws)
    ratio = boot.mean(0) / spread
    # The sd of 30 estimates is known to 1 / sqrt(58) = 13 %: 3.5 of those either way.
    assert np.all((ratio > 0.6) & (ratio < 1.55)), ratio
    # The least uncertainty of a mean of n rows understates it, most at the grid end.
    floor = 1.0 / np.sqrt(n)
    assert boot.mean(0)[1] > 1.5 * floor and boot.mean(0)[1] > boot.mean(0)[0]


def test_m_out_of_n_bootstrap_scales_to_the_full_sample() -> None:
    pl, data = _fit(2000, 7)
    full, sub = [], []
    for s in range(3):
        rng = np.random.default_rng(s)
        full.append(plugin_bootstrap(pl, data.X, data.y, data.mechanism, DO, rng)["mean_se"])
        part = plugin_bootstrap(pl, data.X, data.y, data.mechanism, DO, rng, max_rows=500)
        assert part["rows"] == 500 and part["n"] == 2000
        sub.append(part["mean_se"])
    # Three bootstraps of 16 refits each: their mean SE known to about 10 %.
    ratio = np.mean(sub, 0) / np.mean(full, 0)
    assert np.all((ratio > 0.7) & (ratio < 1.4)), ratio


def test_refit_keeps_the_chosen_components_and_outcome_model() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    y = rng.normal(size=n)
    z = y + rng.normal(size=n)
    x = np.where(z > 0.5, 3.0, -3.0)[:, None] + 0.3 * rng.normal(size=(n, 1))
    pl = PluginFrontDoor("auto", discrete_cause=False).fit(x, y, z)
    k_x = pl.x_model_.components()
    assert max(k_x.values()) >= 2  # the two-level effect needs two components
    idx = rng.integers(0, n, n)
    again = pl.refit(x[idx], y[idx], z[idx], random_state=5)
    assert again.x_model_.components() == k_x
    assert again.z_model_.components() == pl.z_model_.components()
    assert again.outcome_model_ == pl.outcome_model_ and again.outcome_choice_ is None


def test_diagnose_reads_the_bootstrap_and_falls_back_to_the_floor() -> None:
    data = cm.datasets.make_front_door_linear(1500, random_state=2)
    est = cm.CausalGaussianMixture(n_components=1, strategy="plugin", plugin_components=1,
                                   random_state=0).fit(data.X, data.y,
                                                       mechanism=data.mechanism, do=DO)
    boot = est.plugin_check_["bootstrap"]
    assert boot["mean_se"].shape == (2, 1) and boot["n_boot"] == 16
    again = cm.CausalGaussianMixture(n_components=1, strategy="plugin", plugin_components=1,
                                     random_state=0).fit(data.X, data.y,
                                                         mechanism=data.mechanism, do=DO)
    # All its randomness flows from random_state: the same seed, the same bootstrap.
    np.testing.assert_array_equal(again.plugin_check_["bootstrap"]["mean_se"], boot["mean_se"])
    ref = plugin_uncertainty(est.plugin_reference_, est.plugin_check_, 1500)
    expected = uncertainty_bound(ref)
    rows = [c for c in cm.diagnose(est).checks if c.name == "mean_uncertainty"]
    np.testing.assert_allclose([c.value for c in rows], expected, rtol=1e-12)
    assert all("bootstrap of the plug-in" in c.message for c in rows)
    # The bound is 1.96 (Bonferroni over 2 do values: 2.24) bootstrap SEs, never below
    # the floor of a mean of all the rows.
    se = np.maximum(np.maximum(boot["mean_se"], boot["sd_se"]), 1 / np.sqrt(1500))[:, 0]
    np.testing.assert_allclose(expected, 2.2414 * se, rtol=1e-3)
    del est.plugin_check_["bootstrap"]
    rows = [c for c in cm.diagnose(est).checks if c.name == "mean_uncertainty"]
    np.testing.assert_allclose([c.value for c in rows], 2.2414 / np.sqrt(1500), rtol=1e-3)
    assert all("at least: a mean of all the rows" in c.message for c in rows)


def _front_door_binary(n: int, sep: float, seed: int) -> tuple[np.ndarray, ...]:
    """A binary cause confounded with the effect: ``E[x | do(y)] = sep · y``, sd
    ``sqrt(0.36 + 2)``. The larger ``sep``, the less the classes' mechanisms overlap and the
    fewer effective rows the weights keep."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=n)
    y = (u + rng.normal(size=n) > 0).astype(int)
    z = sep * y + 0.6 * rng.normal(size=n)
    x = (z + u + rng.normal(size=n))[:, None]
    return x, y, z


def test_auto_takes_a_more_precise_plugin_that_agrees_with_passing_weights() -> None:
    from causal_mixtures.estimators.strategy import PLUGIN_PRECISION_RATIO

    sd, sep = np.sqrt(2.36), 1.4
    err: dict[str, list[float]] = {"auto": [], "weighting": []}
    switched = 0
    for seed in range(8):
        x, y, z = _front_door_binary(1000, sep, seed)
        for strategy in err:
            est = cm.CausalGaussianMixture(n_components=1, strategy=strategy,
                                           random_state=0).fit(x, y, mechanism=z)
            err[strategy].append(np.abs(est.means_[:, 0, 0] - sep * np.array([0, 1])).max() / sd)
            if strategy == "auto" and "both estimators pass" in est.strategy_reason_:
                switched += 1
                assert est.strategy_ == "plugin"
                # The plug-in's bound (its bootstrap) is below the ratio times the weights'.
                ref = plugin_uncertainty(est.weighted_reference_, est.plugin_check_, 1000)
                w_bound = uncertainty_bound(est.weighted_reference_).max()
                assert uncertainty_bound(ref).max() < PLUGIN_PRECISION_RATIO * w_bound
    assert switched >= 2
    # Over the seeds the default is at least as accurate as the weighting alone.
    rmse = {k: float(np.sqrt(np.mean(np.square(v)))) for k, v in err.items()}
    assert rmse["auto"] <= rmse["weighting"], rmse


def test_auto_keeps_a_precise_weighting_estimate() -> None:
    x, y, z = _front_door_binary(3000, 0.3, 0)
    est = cm.CausalGaussianMixture(n_components=1, random_state=0).fit(x, y, mechanism=z)
    assert est.strategy_ == "weighting" and "both estimators" not in est.strategy_reason_
    assert uncertainty_bound(est.weighted_reference_).max() <= 0.1
