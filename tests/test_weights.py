"""Front-door weights: exact formula on discrete data, interventional moments, positivity."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import norm

import causal_mixtures as cm
from causal_mixtures.weights.density import ConditionalDensity, DiscreteDensity


def test_discrete_weights_match_formula(rng: np.random.Generator) -> None:
    y = rng.integers(0, 2, 500)
    z = (rng.uniform(size=500) < np.where(y == 1, 0.8, 0.3)).astype(int) + rng.integers(0, 2, 500)
    X = rng.normal(size=(500, 1))
    cw = cm.causal_weights("front_door", X, y, mechanism=z, density=DiscreteDensity(alpha=0.0))
    p = {(zz, yy): np.mean(z[y == yy] == zz) for zz in np.unique(z) for yy in (0, 1)}
    for j, yv in enumerate(cw.do_values):
        raw = np.array([p[(zi, yv)] / p[(zi, yi)] for zi, yi in zip(z, y, strict=True)])
        np.testing.assert_allclose(cw.values[:, j], raw / raw.sum(), rtol=1e-12)
    np.testing.assert_allclose(cw.values.sum(0), 1.0)
    np.testing.assert_allclose(cw.ess, 1 / (cw.values**2).sum(0))
    assert np.all(cw.khat < 0)  # bounded weights: no heavy tail


def test_weighted_means_recover_interventional_means() -> None:
    """Paper classification: E[X | do(Y)] in closed form vs Σ w_n x_n."""
    data = cm.datasets.make_classification_2d(20_000, random_state=5)
    cw = cm.causal_weights(
        "front_door", data.X, data.y, mechanism=data.mechanism, density="gaussian"
    )
    # X1 = ±1.8 by the sign of Z ~ N(±1.2, 1); X2 = ±2.4 by U with P(U=2) = 0.25.
    p_pos = {1: norm.sf(1.2), 2: norm.sf(-1.2)}
    for j, yv in enumerate(cw.do_values.tolist()):
        truth = np.array([1.8 * (2 * p_pos[yv] - 1), 2.4 * (2 * 0.25 - 1)])
        est = cw.values[:, j] @ data.X
        sd = data.X.std(0)
        # 4 Monte-Carlo standard errors at the weights' Kish ESS.
        assert np.all(np.abs(est - truth) < 4 * sd / np.sqrt(cw.ess[j])), (yv, est, truth)
    # Observationally X2 | Y=2 is shifted by the confounder: the weights undo it.
    obs = data.X[data.y == 2, 1].mean()
    assert abs(obs - (-1.2)) > 1.0


def test_repr_and_frame() -> None:
    data = cm.datasets.make_classification_2d(1000, random_state=0)
    cw = cm.causal_weights("front_door", data.X, data.y, mechanism=data.mechanism)
    text = repr(cw)
    assert "CausalWeights(n_samples=1000, n_do=2)" in text and "ESS" in text
    frame = cw.to_frame()
    assert list(frame.columns) == ["do", "ess", "ess_ratio", "khat", "max/mean"]
    np.testing.assert_allclose(frame["ess_ratio"], cw.ess / 1000)


def test_psis_smoothing_touches_only_the_tail() -> None:
    data = cm.datasets.make_regression_linear(4000, random_state=0)
    do = np.quantile(data.y, [0.02, 0.5, 0.98])
    kw = dict(mechanism=data.mechanism, do=do, density="gaussian")
    raw = cm.causal_weights("front_door", data.X, data.y, **kw)
    smooth = cm.causal_weights("front_door", data.X, data.y, weight_smoothing="psis", **kw)
    np.testing.assert_array_equal(raw.khat, smooth.khat)
    assert smooth.smoothing == "psis"
    tail = int(min(np.ceil(0.2 * 4000), np.ceil(3 * np.sqrt(4000))))  # PSIS tail length M
    for j in range(3):
        ratio = smooth.values[:, j] / raw.values[:, j]
        # Outside the M largest weights, smoothing only rescales (normalisation).
        assert np.sum(~np.isclose(ratio, np.median(ratio), rtol=1e-9)) <= tail
        assert not np.allclose(ratio, np.median(ratio))


def test_heavy_tails_are_reported() -> None:
    """The strongly confounded regression (PAPER) has heavy-tailed weights everywhere; the
    mild linear-Gaussian front door does not. k-hat and ESS tell them apart."""
    strong = cm.datasets.make_regression_linear(3000, random_state=1)
    do = np.quantile(strong.y, [0.5, 0.999])
    cw = cm.causal_weights(
        "front_door", strong.X, strong.y, mechanism=strong.mechanism, do=do, density="gaussian"
    )
    assert np.all(cw.khat > 0.7) and np.all(cw.ess_ratio < 0.02)
    mild = cm.datasets.make_front_door_linear(5000, random_state=0)
    cw = cm.causal_weights(
        "front_door",
        mild.X,
        mild.y,
        mechanism=mild.mechanism,
        do=[-1.0, 0.0, 1.0],
        density="gaussian",
    )
    assert np.all(cw.khat < 0.7) and np.all(cw.ess_ratio > 0.3)


def test_do_outside_range_warns() -> None:
    data = cm.datasets.make_regression_linear(500, random_state=0)
    with pytest.warns(cm.PositivityWarning, match=r"outside the observed range of y"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Pareto k-hat")
            cm.causal_weights(
                "front_door",
                data.X,
                data.y,
                mechanism=data.mechanism,
                do=[100.0],
                density="gaussian",
            )


class _Holes(ConditionalDensity):
    """A density that is zero at two observed rows (to exercise the positivity check)."""

    def fit(self, z, y):
        return self

    def log_prob_grid(self, z, values):
        out = np.zeros((len(z), len(values)))
        out[[3, 9]] = -np.inf
        return out


def test_zero_density_at_observed_rows_raises(rng: np.random.Generator) -> None:
    y = np.repeat([0, 1], 50)
    with pytest.raises(
        cm.PositivityError, match=r"zero \(or undefined\) for 2 row\(s\), e.g. rows \[3, 9\]"
    ):
        cm.causal_weights("front_door", None, y, mechanism=rng.normal(size=100), density=_Holes())


def test_from_array_validates() -> None:
    cw = cm.CausalWeights.from_array(np.array([[1.0, 0.0], [3.0, 2.0]]), do_values=["a", "b"])
    np.testing.assert_allclose(cw.values, [[0.25, 0.0], [0.75, 1.0]])
    with pytest.raises(ValueError, match="do_values must have one entry per weight column"):
        cm.CausalWeights.from_array(np.ones((3, 2)), do_values=[1])
