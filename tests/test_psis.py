"""Pareto k-hat and PSIS: control tests with known tails and an independent reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import causal_mixtures as cm


def test_khat_of_pareto_weights() -> None:
    # Pareto(α) weights have k = 1/α. Across 30 seeds (n = 10 000) our k̂ of α = 0.8 had
    # mean 1.23 and sd 0.11, so 0.3 is about 3 sd.
    w = np.random.default_rng(0).pareto(0.8, 10_000) + 1.0
    assert abs(cm.pareto_khat(w) - 1.25) < 0.3
    w2 = np.random.default_rng(1).pareto(4.0, 10_000) + 1.0
    assert abs(cm.pareto_khat(w2) - 0.25) < 0.15


def test_khat_of_light_and_bounded_weights() -> None:
    rng = np.random.default_rng(2)
    assert cm.pareto_khat(rng.uniform(size=10_000)) < 0.0
    assert np.isneginf(cm.pareto_khat(rng.choice([0.5, 2.0], 1000)))
    # log=True reads log-weights: the same answer as on the weights themselves.
    w = rng.lognormal(0, 1, 5000)
    assert cm.pareto_khat(np.log(w), log=True) == pytest.approx(cm.pareto_khat(w), abs=1e-12)


def test_matches_arviz_psislw() -> None:
    import arviz as az
    from scipy.special import logsumexp

    lw = np.log(np.random.default_rng(3).pareto(1.5, 4000) + 1.0)
    ref, ref_k = az.psislw(lw.copy())
    ours, k = cm.psis_smooth(lw)
    assert k == pytest.approx(float(ref_k), abs=1e-10)
    np.testing.assert_allclose(ours - logsumexp(ours), ref - logsumexp(ref), atol=1e-10)


def test_smoothing_leaves_tailless_weights_unchanged() -> None:
    lw = np.log(np.random.default_rng(4).choice([0.5, 1.0, 2.0], 3000))
    out, k = cm.psis_smooth(lw)
    np.testing.assert_array_equal(out, lw)
    assert np.isneginf(k)


def test_input_not_modified_and_zero_weights_kept() -> None:
    lw = np.log(np.random.default_rng(5).pareto(1.0, 1000) + 1.0)
    lw[:10] = -np.inf
    before = lw.copy()
    out, _ = cm.psis_smooth(lw)
    np.testing.assert_array_equal(lw, before)
    assert np.all(np.isneginf(out[:10]))


def test_identical_tail_weights_do_not_crash() -> None:
    """A discrete mechanism gives a handful of distinct weights; the top M can all be equal
    (this crashed the GPD fit with a division by zero before)."""
    w = np.r_[np.full(900, 1.0), np.full(100, 7.0)]
    assert np.isneginf(cm.pareto_khat(w))
    out, k = cm.psis_smooth(np.log(w))
    np.testing.assert_array_equal(out, np.log(w))


def test_bounded_tail_is_not_smoothed() -> None:
    lw = np.log(np.random.default_rng(6).uniform(size=5000))
    out, k = cm.psis_smooth(lw)
    assert k < 0
    np.testing.assert_array_equal(out, lw)


@given(
    w=st.lists(st.sampled_from([0.0, 0.25, 1.0, 2.0, 7.5]) | st.floats(0, 10), min_size=2,
               max_size=80),
    frac=st.floats(0.0, 1.0),
)
@settings(max_examples=300, deadline=None)
def test_largest_is_the_tail_of_a_stable_argsort(w: list[float], frac: float) -> None:
    """The O(n) tail selection equals the last m entries of a stable argsort, ties and
    order included, and the cut-off is the value just below them."""
    from causal_mixtures.weights.psis import largest

    arr = np.asarray(w)
    n = len(arr)
    m = 1 + int(frac * (n - 1))
    order = np.argsort(arr, kind="stable")
    idx, cutoff = largest(arr, m)
    np.testing.assert_array_equal(idx, order[n - m:])
    assert cutoff == (float(arr[order[n - m - 1]]) if n > m else 0.0)


def test_smoothing_cannot_make_the_answer_look_more_certain_than_the_raw_weights() -> None:
    """PSIS raises the ESS of heavy-tailed weights (here at the grid's upper end, 16 raw
    effective rows become 55) and its delta-method standard errors would shrink with it;
    ``mean_uncertainty`` scales them back by sqrt(ESS_smoothed / ESS_raw), so a PSIS fit's
    bound is the raw weights' (within 10 %, the two SEs are not the same sum), not 60 % of
    it, and the raw ESS the weights keep is exactly the unsmoothed weights' ESS."""
    import warnings

    from causal_mixtures.diagnostics.data_checks import smoothing_adjusted, uncertainty_bound

    d = cm.datasets.make_regression_linear(3000, random_state=0)
    do = np.quantile(d.y, [0.1, 0.5, 0.9])
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for smoothing in (None, "psis"):
            fits[smoothing] = cm.CausalGaussianMixture(
                n_components=1, strategy="weighting", weight_smoothing=smoothing,
                density="gaussian", positivity="warn", random_state=0,
            ).fit(d.X, d.y, mechanism=d.mechanism, do=do)
    raw, smoothed = fits[None].causal_weights_, fits["psis"].causal_weights_
    assert raw.raw_ess is None
    np.testing.assert_allclose(smoothed.raw_ess, raw.ess, rtol=1e-10)
    assert smoothed.ess[2] > 3 * smoothed.raw_ess[2]  # the tail this is about

    def bounds(model: object) -> np.ndarray:
        return np.array([c.value for c in cm.diagnose(model).checks
                         if c.name == "mean_uncertainty"])

    b_raw, b_psis = bounds(fits[None]), bounds(fits["psis"])
    assert b_psis[2] == pytest.approx(b_raw[2], rel=0.1)
    unadjusted = uncertainty_bound(fits["psis"].weighted_reference_)
    assert unadjusted[2] < 0.6 * b_raw[2]
    adjusted = smoothing_adjusted(fits["psis"].weighted_reference_, smoothed)
    np.testing.assert_allclose(uncertainty_bound(adjusted), b_psis, rtol=1e-12)
    np.testing.assert_allclose(adjusted.ess, np.minimum(smoothed.ess, smoothed.raw_ess))
    # Unsmoothed weights: the reference itself.
    assert smoothing_adjusted(fits[None].weighted_reference_, raw) is fits[None].weighted_reference_
