"""Diagnostic plots: the causal weights, the weighted posterior-predictive check and the
objective / chain traces.

Every function builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot`` state, so
nothing accumulates in long sessions and it works headless) and returns it. In a notebook
the returned figure displays itself; elsewhere call ``fig.savefig(path)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from causal_mixtures.diagnostics.checks import (
    MAX_PPC_DRAWS,
    PPC_PROBS,
    weight_checks,
    weighted_quantiles,
)
from causal_mixtures.diagnostics.fitted import (
    check_X,
    feature_names,
    label_invariant_draws,
    mixture,
    unwrap,
    weights_of,
)
from causal_mixtures.diagnostics.report import Thresholds, format_value
from causal_mixtures.weights.core import CausalWeights

__all__ = ["plot_ppc", "plot_trace", "plot_weights"]

_STATUS_COLOUR = {"pass": "#1a7f37", "warn": "#bf8700", "fail": "#cf222e"}


def _figure(figsize: tuple[float, float]) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _pick(n: int, max_n: int) -> list[int]:
    """At most ``max_n`` evenly spaced indices of ``range(n)``, always with both ends."""
    if n <= max_n:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, max_n).round().astype(int).tolist()))


def _do_indices(do_values: np.ndarray, do: Any, max_do: int) -> list[int]:
    if do is None:
        return _pick(len(do_values), max_do)
    wanted = np.atleast_1d(np.asarray(do, dtype=do_values.dtype))
    idx = []
    for v in wanted.tolist():
        hits = np.flatnonzero(do_values == v)
        if len(hits) == 0 and do_values.dtype.kind in "fiu":
            hits = np.flatnonzero(np.isclose(do_values.astype(float), float(v)))
        if len(hits) == 0:
            raise ValueError(f"do={v!r} is not a fitted intervention value; fitted: "
                             f"{do_values.tolist()}.")
        idx.append(int(hits[0]))
    return idx


def plot_weights(
    model: Any,
    *,
    thresholds: Thresholds | None = None,
    figsize: tuple[float, float] = (12.0, 3.6),
) -> Any:
    """The causal weights of every intervention value, with their ESS and Pareto ``k̂``.

    Three panels: (1) the weights sorted in decreasing order, as multiples of the mean
    weight, on log-log axes (one line per do value; a heavy tail is a line that stays high
    for the first few ranks); (2) the Kish ESS per do value against the ESS floor of the
    fitted model; (3) ``k̂`` per do value against 0.7. Markers are coloured by the status of
    the corresponding check (green pass, amber warn, red fail).

    Parameters
    ----------
    model : fitted CausalGaussianMixture, CausalBootstrap, MechanismLearner or CausalWeights
    thresholds : Thresholds, optional
    figsize : (float, float), default=(12, 3.6)

    Returns
    -------
    matplotlib.figure.Figure
    """
    th = thresholds if thresholds is not None else Thresholds()
    model = unwrap(model)
    cw: CausalWeights = weights_of(model)
    checks = weight_checks(model, thresholds=th)
    ess_checks = [c for c in checks if c.name == "weight_ess"]
    khat_checks = [c for c in checks if c.name == "weight_khat"]
    fig = _figure(figsize)
    ax_w, ax_ess, ax_k = fig.subplots(1, 3)
    n = cw.n_samples
    ranks = np.arange(1, n + 1)
    cmap = _colormap()
    for j in range(cw.n_do):
        w = np.sort(cw.values[:, j])[::-1] * n
        w = w[w > 0]
        colour = cmap(j / max(cw.n_do - 1, 1))
        ax_w.loglog(ranks[: len(w)], w, color=colour, lw=1.2, label=f"do={format_value(cw.do_values[j], 3)}")
    ax_w.axhline(1.0, color="0.5", ls=":", lw=1)
    # Weights below a thousandth of the mean carry nothing; do not let them set the scale.
    ax_w.set_ylim(bottom=1e-3)
    ax_w.set_xlabel("rank")
    ax_w.set_ylabel("weight / mean weight")
    ax_w.set_title("Sorted causal weights")
    if cw.n_do <= 8:
        ax_w.legend(fontsize="small")

    x = np.arange(cw.n_do)
    ticks = _pick(cw.n_do, 8)
    labels = [format_value(cw.do_values[j], 3) for j in ticks]
    for ax, checks, ylabel, title in (
        (ax_ess, ess_checks, "Kish ESS", "Effective sample size"),
        (ax_k, khat_checks, "Pareto k-hat", "Pareto k-hat"),
    ):
        vals = np.array([c.value for c in checks], dtype=float)
        shown = np.where(np.isfinite(vals), vals, np.nan)
        ax.plot(x, shown, color="0.6", lw=1, zorder=1)
        ax.scatter(x, shown, c=[_STATUS_COLOUR[c.status] for c in checks], zorder=2, s=30)
        ax.set_xticks(ticks, labels, rotation=45 if cw.n_do > 4 else 0)
        ax.set_xlabel("do")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
    floors = np.array([c.threshold for c in ess_checks])
    if np.allclose(floors, floors[0]):
        ax_ess.axhline(floors[0], color=_STATUS_COLOUR["warn"], ls="--", lw=1,
                       label=f"floor {floors[0]:.0f}")
    else:  # pragma: no cover - one mixture size for every do value today
        ax_ess.step(x, floors, where="mid", color=_STATUS_COLOUR["warn"], ls="--", lw=1, label="floor")
    ax_ess.set_yscale("log")
    ax_ess.legend(fontsize="small")
    ax_k.axhline(th.khat, color=_STATUS_COLOUR["warn"], ls="--", lw=1, label=f"k-hat {th.khat:g}")
    ax_k.legend(fontsize="small")
    fig.suptitle(
        f"Causal weights ({n} rows"
        + (f", {cw.smoothing}-smoothed; k-hat of the raw weights" if cw.smoothing else "")
        + ")"
    )
    return fig


def _colormap() -> Any:
    from matplotlib import colormaps

    return colormaps["viridis"]


def plot_ppc(
    model: Any,
    X: Any,
    *,
    do: Any = None,
    features: Any = None,
    max_do: int = 4,
    max_features: int = 4,
    bins: int = 40,
    figsize: tuple[float, float] | None = None,
) -> Any:
    """Weighted posterior-predictive check: the weighted data against the mixture, per
    intervention value and feature.

    Each panel shows the histogram of one feature of the training data weighted by that do
    value's causal weights (the target the mixture estimates; *not* the raw, confounded
    histogram) and the mixture's marginal density, averaged over posterior draws for a
    Bayesian fit. Vertical ticks mark the weighted 5/25/50/75/95 % data quantiles.

    Parameters
    ----------
    model : fitted CausalGaussianMixture or MechanismLearner
    X : array-like of shape (n_samples, n_features)
        The training features.
    do : scalar or sequence, optional
        Intervention values to show; default up to ``max_do`` evenly spaced ones.
    features : int or sequence of int, optional
        Feature indices; default the first ``max_features``.
    max_do, max_features : int, default=4
    bins : int, default=40
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    model = unwrap(model)
    cw = weights_of(model)
    mix = mixture(model)
    if mix is None:
        raise ValueError(f"{type(model).__name__} has no fitted mixture to check; plot_ppc "
                         "needs a fitted CausalGaussianMixture.")
    X_arr = check_X(X, cw.n_samples, mix.n_features)
    mix = mix.thin(MAX_PPC_DRAWS)
    do_values = np.asarray(cw.do_values)
    rows = _do_indices(do_values, do, max_do)
    if features is None:
        cols = list(range(min(mix.n_features, max_features)))
    else:
        cols = [int(f) for f in np.atleast_1d(features)]
        bad = [f for f in cols if not 0 <= f < mix.n_features]
        if bad:
            raise ValueError(f"features {bad} out of range for {mix.n_features} features.")
    names = feature_names(model, mix.n_features)
    if figsize is None:
        figsize = (max(3.2 * len(cols) + 0.5, 5.0), 2.5 * len(rows) + 0.6)
    fig = _figure(figsize)
    axes = np.atleast_2d(fig.subplots(len(rows), len(cols), squeeze=False))
    lo = X_arr.min(0)
    hi = X_arr.max(0)
    pad = 0.05 * (hi - lo + 1e-12)
    grid = np.linspace(lo - pad, hi + pad, 200).T  # (d, 200)
    for r, j in enumerate(rows):
        w = cw.values[:, j]
        for c, f in enumerate(cols):
            ax = axes[r, c]
            ax.hist(X_arr[:, f], bins=bins, range=(grid[f, 0], grid[f, -1]), weights=w,
                    density=True, color="0.75", edgecolor="0.6", lw=0.3, label="weighted data")
            ax.plot(grid[f], mix.marginal_pdf_1d(j, f, grid[f]), color="#0969da", lw=1.6,
                    label="posterior predictive" if mix.is_posterior else "mixture")
            qs = weighted_quantiles(X_arr[:, f], w, PPC_PROBS)
            ax.plot(qs, np.zeros_like(qs), "|", color="k", ms=10, mew=1.5)
            if r == len(rows) - 1:
                ax.set_xlabel(names[f])
            if c == 0:
                ax.set_ylabel(f"do={format_value(do_values[j], 3)}\ndensity")
            if r == 0 and c == 0:
                ax.legend(fontsize="small")
            ax.set_title(f"ESS {cw.ess[j]:.0f}", fontsize="small", loc="right")
    fig.suptitle("Weighted posterior-predictive check")
    return fig


def plot_trace(
    model: Any,
    *,
    do: Any = None,
    max_do: int = 4,
    figsize: tuple[float, float] | None = None,
) -> Any:
    """The fitter's objective trace and, for a Bayesian fit, chain traces.

    The first panel shows the objective (for EM the weighted mean log-likelihood, which
    must never decrease) against the iteration, one line per do value, with non-converged
    do values dashed. For a Bayesian fit (``model.posterior_``) one panel per shown do value
    follows, with the trace of each chain of the label-invariant interventional mean of the
    first feature (raw component parameters switch labels) and its R-hat in the title.

    Parameters
    ----------
    model : fitted CausalGaussianMixture or MechanismLearner
    do : scalar or sequence, optional
        Intervention values for the chain panels; default up to ``max_do`` of them.
    max_do : int, default=4
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.ticker import MaxNLocator

    from causal_mixtures.diagnostics import arviz as _arviz

    model = unwrap(model)
    mix = mixture(model)
    if mix is None:
        raise ValueError(f"{type(model).__name__} has no fitted mixture; plot_trace needs a "
                         "fitted CausalGaussianMixture.")
    do_values = np.asarray(model.do_values_)
    trace = getattr(model, "lower_bounds_", None)
    rows = _do_indices(do_values, do, max_do) if mix.is_posterior else []
    n_panels = (trace is not None) + len(rows)
    if n_panels == 0:
        raise ValueError("the model has neither an objective trace (lower_bounds_) nor "
                         "posterior draws to plot.")
    if figsize is None:
        figsize = (min(4.2 * n_panels, 16.0), 3.4)
    fig = _figure(figsize)
    axes = np.atleast_1d(fig.subplots(1, n_panels, squeeze=False)[0])
    k = 0
    if trace is not None:
        ax = axes[0]
        tr = np.asarray(trace, dtype=float)
        if tr.ndim == 1:  # one objective for every do value (the ELBO of a Bayesian fit)
            ax.plot(np.arange(1, len(tr) + 1), tr, color="#0969da", lw=1.2, label="all do values")
            tr = tr[:, None][:, :0]
        conv = np.asarray(getattr(model, "converged_", np.ones(tr.shape[1], bool)), dtype=bool)
        n_iter = np.asarray(getattr(model, "n_iter_", np.full(tr.shape[1], tr.shape[0])))
        cmap = _colormap()
        for j in range(tr.shape[1]):
            m = max(1, min(int(n_iter[j]), tr.shape[0]))
            ax.plot(np.arange(1, m + 1), tr[:m, j], color=cmap(j / max(tr.shape[1] - 1, 1)),
                    ls="-" if conv[j] else "--", lw=1.2,
                    label=f"do={format_value(do_values[j], 3)}" + ("" if conv[j] else " (not converged)"))
        inference = getattr(model, "inference", "em")
        ax.set_xlabel("iteration" if inference == "em" else
                      "draw" if getattr(model, "guide_", None) == "nuts" else "step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("objective")
        ax.set_title("Objective trace")
        if 0 < tr.shape[1] <= 8 or not conv.all():
            ax.legend(fontsize="small")
        k = 1
    if rows:
        mean = label_invariant_draws(mix)["interventional_mean"][..., 0]  # C D J
        rh = _arviz.rhat(mean) if mix.n_chains >= 2 and mix.n_draws >= 4 else np.full(mix.n_do, math.nan)
        draws = np.arange(mix.n_draws)
        names = feature_names(model, mix.n_features)
        for j in rows:
            ax = axes[k]
            for c in range(mix.n_chains):
                ax.plot(draws, mean[c, :, j], lw=0.7, alpha=0.8, label=f"chain {c}")
            ax.set_title(f"do={format_value(do_values[j], 3)}: R-hat {format_value(float(rh[j]), 3)}")
            ax.set_xlabel("draw")
            ax.set_ylabel(f"E[{names[0]} | do]")
            k += 1
        axes[len(axes) - len(rows)].legend(fontsize="small")
    if rows:
        fig.suptitle("Traces")
    return fig
