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
