"""Diagnostic plots render headless (Agg) and hold the expected artists."""

from __future__ import annotations

import copy
import io

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

import causal_mixtures as cm
from causal_mixtures.diagnostics import Thresholds
from causal_mixtures.diagnostics.plots import plot_ppc, plot_trace, plot_weights
from causal_mixtures.mixture.params import n_parameters

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(11)
    X = np.concatenate(
        [rng.normal([-3.0, 0.0], 1.0, (250, 2)), rng.normal([3.0, 1.0], 0.7, (250, 2))]
    )
    w = np.column_stack([rng.uniform(0.5, 1.5, 500), rng.pareto(0.7, 500) + 1.0, np.ones(500)])
    model = cm.CausalGaussianMixture(None, n_components=2, random_state=0)
    model.fit(X, weights=w, do=[10, 20, 30])
    return model, X


def render(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    return buf.getvalue()


def test_plot_weights(fitted) -> None:
    model, _ = fitted
    fig = plot_weights(model)
    assert isinstance(fig, Figure)
    ax_w, ax_ess, ax_k = fig.axes
    # one sorted-weight line per do value plus the "mean weight" reference line
    assert len(ax_w.get_lines()) == 3 + 1
    assert [t.get_text() for t in ax_w.get_legend().get_texts()] == ["do=10", "do=20", "do=30"]
    assert ax_w.get_xscale() == "log" and ax_w.get_yscale() == "log"
    # ESS and k-hat panels: one marker per do value, and the threshold line
    for ax in (ax_ess, ax_k):
        assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) == 3
    floor = Thresholds().ess_per_parameter * n_parameters(2, 2, "full")
    assert any(np.allclose(line.get_ydata(), floor) for line in ax_ess.get_lines())
    assert any(np.allclose(line.get_ydata(), 0.7) for line in ax_k.get_lines())
    # markers coloured by the checks' statuses (weight_ess is informational: pass or warn)
    colour = {"pass": "#1a7f37", "warn": "#bf8700", "fail": "#cf222e"}
    status = [c.status for c in cm.diagnostics.weight_checks(model) if c.name == "weight_ess"]
    np.testing.assert_allclose(ax_ess.collections[0].get_facecolors(),
                               [matplotlib.colors.to_rgba(colour[s]) for s in status])
    k_status = [c.status for c in cm.diagnostics.weight_checks(model) if c.name == "weight_khat"]
    np.testing.assert_allclose(ax_k.collections[0].get_facecolors(),
                               [matplotlib.colors.to_rgba(colour[s]) for s in k_status])
    assert render(fig).startswith(b"\x89PNG")


def test_plot_weights_of_bare_weights() -> None:
    w = np.random.default_rng(0).uniform(size=(300, 12))
    fig = plot_weights(cm.CausalWeights.from_array(w))
    assert len(fig.axes[0].get_lines()) == 12 + 1
    assert fig.axes[0].get_legend() is None  # more than 8 do values: no legend
    render(fig)


def test_plot_ppc(fitted) -> None:
    model, X = fitted
    fig = plot_ppc(model, X)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 * 2  # do values x features
    ax = fig.axes[0]
    assert len(ax.patches) == 40  # weighted histogram bars
    labels = [line.get_label() for line in ax.get_lines()]
    assert "mixture" in labels
    curve = next(line for line in ax.get_lines() if line.get_label() == "mixture")
    x, y = curve.get_data()
    assert np.trapezoid(y, x) == pytest.approx(1.0, abs=0.02)  # a density over the data range
    assert ax.get_ylabel().startswith("do=10")
    fig = plot_ppc(model, X, do=[20], features=1, bins=10)
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == 10
    render(fig)
    with pytest.raises(ValueError, match="not a fitted intervention value"):
        plot_ppc(model, X, do=99)
    with pytest.raises(ValueError, match="out of range"):
        plot_ppc(model, X, features=5)


def test_plot_trace(fitted) -> None:
    model, _ = fitted
    fig = plot_trace(model)
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 3
    y = ax.get_lines()[0].get_ydata()
    assert np.all(np.diff(y) >= -1e-9)  # EM's objective never decreases
    assert ax.get_xlabel() == "iteration"
    render(fig)


def test_plot_trace_with_posterior(fitted) -> None:
    model, X = fitted
    bayes = copy.deepcopy(model)
    rng = np.random.default_rng(0)
    bayes.posterior_ = {
        "weights": np.broadcast_to(model.weights_, (3, 40, 3, 2)).copy(),
        "means": model.means_ + 0.02 * rng.normal(size=(3, 40, 3, 2, 2)),
        "covariances": np.broadcast_to(model.covariances_, (3, 40, 3, 2, 2, 2)).copy(),
    }
    fig = plot_trace(bayes, do=[10, 30])
    assert len(fig.axes) == 1 + 2
    chains = fig.axes[1].get_lines()
    assert len(chains) == 3 and len(chains[0].get_xdata()) == 40
    assert "R-hat" in fig.axes[1].get_title()
    fig = plot_ppc(bayes, X, do=10)
    assert "posterior predictive" in [line.get_label() for line in fig.axes[0].get_lines()]
    render(fig)
    del bayes.lower_bounds_
    assert len(plot_trace(bayes).axes) == 3  # chains only: up to max_do=4 of 3 do values


def test_plots_need_a_mixture(fitted) -> None:
    model, X = fitted
    with pytest.raises(ValueError, match="no fitted mixture"):
        plot_ppc(model.causal_weights_, X)
    with pytest.raises(ValueError, match="no fitted mixture"):
        plot_trace(model.causal_weights_)
