"""Causal weights: the importance weights that turn observational rows into an estimate of
the interventional distribution ``p(x | do(y))``.

Front-door: ``w_n(y) = p(z_n | y) / p(z_n | y_n)``, one column per
intervention value, normalised to sum to one over the rows. For any ``f``,
``Σ_n w_n(y) f(x_n)`` estimates ``E[f(x) | do(y)]``.

Weight quality is the main failure mode of the method, so every :class:`CausalWeights`
carries its Kish effective sample size and the Pareto ``k̂`` of each column.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import logsumexp

from causal_mixtures._validation import check_finite
from causal_mixtures.exceptions import PositivityError, PositivityWarning
from causal_mixtures.weights.adjustment import adjusted_log_weights
from causal_mixtures.weights.density import ConditionalDensity, is_discrete
from causal_mixtures.weights.overlap import POSITIVITY, cause_overlap, check_positivity
from causal_mixtures.weights.psis import pareto_khat, psis_smooth
from causal_mixtures.weights.selection import resolve_density

__all__ = ["CausalWeights", "causal_weights", "kish_ess", "resolve_graph", "validate_weights"]

WEIGHT_SMOOTHING = (None, "psis")


def kish_ess(weights: np.ndarray, axis: int = 0) -> np.ndarray:
    """Kish effective sample size ``(Σ w)² / Σ w²`` along ``axis``."""
    w = np.asarray(weights, dtype=float)
    return w.sum(axis) ** 2 / (w * w).sum(axis)


@dataclass(frozen=True, eq=False)
class CausalWeights:
    """Normalised causal weights, one column per intervention value.

    Attributes
    ----------
    values : ndarray of shape (n_samples, n_do)
        Non-negative weights; every column sums to one.
    do_values : ndarray of shape (n_do,)
        The intervention values, in column order.
    ess : ndarray of shape (n_do,)
        Kish effective sample size of each column.
    khat : ndarray of shape (n_do,)
        Pareto ``k̂`` of each column (of the raw weights, before any smoothing); ``-inf``
        when the weights are bounded (no tail), NaN when there are too few rows.
    estimand : object or None
        The :class:`~causal_mixtures.identification.Estimand` the weights implement, when
        computed from a graph.
    density : ConditionalDensity or None
        The fitted density estimator of the weight factors.
    smoothing : str or None
        ``"psis"`` when the weights were Pareto-smoothed.
    raw_ess : ndarray of shape (n_do,) or None
        Smoothed weights only: the Kish ESS of the raw weights before smoothing (``ess`` is
        that of the smoothed ones). Smoothing trades variance for a bias its standard
        errors do not count, so ``mean_uncertainty`` scales them by
        ``sqrt(ess / raw_ess)`` (docs/diagnostics.md).
    overlap : CauseOverlap or None
        Front-door estimands: the weight share of each stratum of the cause per intervention
        value (the positivity check of :mod:`causal_mixtures.weights.overlap`).
    """

    values: np.ndarray
    do_values: np.ndarray
    ess: np.ndarray = field(init=False)
    khat: np.ndarray
    estimand: Any = None
    density: ConditionalDensity | None = None
    smoothing: str | None = None
    overlap: Any = None
    density_choice: Any = None
    raw_ess: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ess", kish_ess(self.values, axis=0))

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(self.values.shape[0])

    @property
    def n_do(self) -> int:
        """Number of intervention values."""
        return int(self.values.shape[1])

    @property
    def ess_ratio(self) -> np.ndarray:
        """ESS divided by the number of rows, per intervention value."""
        return self.ess / self.n_samples

    @property
    def max_ratio(self) -> np.ndarray:
        """Largest weight divided by the mean weight, per intervention value."""
        return self.values.max(0) * self.n_samples

    @classmethod
    def from_array(cls, weights: Any, do_values: Any = None) -> CausalWeights:
        """Wrap user-supplied weights after validation (see :func:`validate_weights`).

        Parameters
        ----------
        weights : array-like of shape (n_samples,) or (n_samples, n_do)
        do_values : array-like of shape (n_do,), optional
            Defaults to ``0, 1, ..., n_do - 1``.
        """
        w = validate_weights(weights)
        if do_values is None:
            do_values = np.arange(w.shape[1])
        do_values = np.asarray(do_values).reshape(-1)
        if len(do_values) != w.shape[1]:
            raise ValueError(
                f"do_values must have one entry per weight column ({w.shape[1]}); got "
                f"{len(do_values)}."
            )
        khat = np.array([pareto_khat(w[:, j]) for j in range(w.shape[1])])
        return cls(w / w.sum(0), do_values, khat)

    def to_frame(self):
        """A :class:`pandas.DataFrame` summary: one row per intervention value."""
        import pandas as pd

        return pd.DataFrame(
            {
                "do": self.do_values,
                "ess": self.ess,
                "ess_ratio": self.ess_ratio,
                "khat": self.khat,
                "max/mean": self.max_ratio,
            }
        )

    def __repr__(self) -> str:
        lines = [
            f"CausalWeights(n_samples={self.n_samples}, n_do={self.n_do}"
            + (f", smoothing={self.smoothing!r}" if self.smoothing else "")
            + ")"
        ]
        shown = (
            range(self.n_do)
            if self.n_do <= 12
            else [*range(5), -1, *range(self.n_do - 5, self.n_do)]
        )
        lines.append(f"  {'do':>10}  {'ESS':>9}  {'ESS/n':>6}  {'k-hat':>6}  {'max/mean':>9}")
        for j in shown:
            if j == -1:
                lines.append("  ...")
                continue
            lines.append(
                f"  {_fmt(self.do_values[j]):>10}  {self.ess[j]:9.1f}  {self.ess_ratio[j]:6.3f}  "
                f"{self.khat[j]:6.2f}  {self.max_ratio[j]:9.1f}"
            )
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return f"{v:.4g}"
    return str(v)


def validate_weights(weights: Any, name: str = "weights") -> np.ndarray:
    """Check explicit weights: finite, non-negative, at least one positive per column.

    Returns a float64 copy of shape (n_samples, n_do).
    """
    w = np.array(weights, dtype=np.float64, copy=True)
    if w.ndim == 1:
        w = w.reshape(-1, 1)
    if w.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n_samples,) or (n_samples, n_do); got shape {w.shape}."
        )
    check_finite(name, w, hint="Weights must be finite; check the densities that produced them.")
    if (w < 0).any():
        r, c = np.argwhere(w < 0)[0]
        raise ValueError(
            f"{name} must be non-negative; got {float(w[r, c])!r} at row {r}, column {c}. "
            "Importance weights are ratios of densities and cannot be negative."
        )
    empty = np.flatnonzero(w.sum(0) <= 0)
    if len(empty):
        raise ValueError(
            f"{name} column(s) {empty.tolist()} are all zero: no row carries any weight for "
            "that intervention value, so nothing can be fitted. Drop that intervention value "
            "or check the densities."
        )
    return w


def resolve_graph(graph: Any) -> Any:
    """A :class:`~causal_mixtures.CausalGraph` from a graph, a registered name, a path to a
    spec file, or a DSL string (anything containing an edge such as ``->`` or ``<->``)."""
    from causal_mixtures.graph.core import CausalGraph
    from causal_mixtures.graph.specs import load_graph

    if isinstance(graph, CausalGraph):
        return graph
    if isinstance(graph, str) and ("->" in graph or "<-" in graph):
        return CausalGraph.from_string(graph)
    if graph is None:
        raise ValueError(
            "graph is required: pass a registered name such as 'front_door' (see "
            "causal_mixtures.list_graphs()), a spec file path, or a CausalGraph."
        )
    return load_graph(graph)


def as_cause(y: Any) -> np.ndarray:
    arr = np.array(y, copy=True)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"y must be 1-D of shape (n_samples,); got shape {arr.shape}. Pass a single "
            "cause column."
        )
    if arr.dtype.kind in "fc":
        check_finite("y", arr)
    elif arr.dtype.kind == "O":
        missing = [i for i, v in enumerate(arr.tolist()) if _is_missing(v)]
        if missing:
            raise ValueError(
                f"y must not contain missing values; found {len(missing)} None/NaN entries "
                f"(first at index {missing[0]}). Drop or impute those rows before fitting."
            )
    return arr


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def as_mechanism(mechanism: Any, n: int) -> np.ndarray:
    if mechanism is None:
        raise ValueError(
            "mechanism is required for the front-door graph: pass the mechanism (the "
            "variable z that carries all of y's effect on x) as mechanism=z."
        )
    z = np.array(mechanism, copy=True)
    if z.ndim == 1:
        z = z.reshape(-1, 1)
    if z.ndim != 2:
        raise ValueError(
            f"mechanism must have shape (n_samples,) or (n_samples, n_mechanism_features); got "
            f"shape {z.shape}."
        )
    if z.shape[0] != n:
        raise ValueError(
            f"mechanism must have one row per sample: expected {n} rows (as y), got {z.shape[0]}."
        )
    if z.dtype.kind in "fc":
        check_finite("mechanism", z)
    if z.dtype.kind == "O":
        bad = [i for i, v in enumerate(z.reshape(-1).tolist()) if _is_missing(v)]
        if bad:
            raise ValueError(
                f"mechanism must not contain missing values; found {len(bad)} None/NaN "
                "entries. Drop or impute those rows before fitting."
            )
    return z


def resolve_do(y: np.ndarray, do: Any, *, discrete_cause: bool) -> np.ndarray:
    """The intervention values: ``do`` validated, or the classes of a discrete ``y``."""
    if do is None:
        if not discrete_cause:
            raise ValueError(
                "y is continuous, so the intervention values must be given: pass a grid, e.g. "
                "do=np.linspace(np.quantile(y, 0.05), np.quantile(y, 0.95), 20)."
            )
        return np.unique(y)
    values = np.array(do, copy=True).reshape(-1)
    if len(values) == 0:
        raise ValueError("do must hold at least one intervention value; got an empty array.")
    if len(np.unique(values)) != len(values):
        raise ValueError(f"do must not repeat values; got {values.tolist()}.")
    if values.dtype.kind in "fc":
        check_finite("do", values)
    if discrete_cause:
        classes = np.unique(y)
        missing = [v for v in values.tolist() if v not in set(classes.tolist())]
        if missing:
            raise PositivityError(
                f"do value(s) {missing} have no support: no training row has y equal to them "
                f"(observed values of y: {classes.tolist()}). Remove them from do."
            )
    else:
        lo, hi = float(np.min(y)), float(np.max(y))
        outside = [v for v in values.tolist() if not lo <= float(v) <= hi]
        if outside:
            warnings.warn(
                f"do value(s) {outside} lie outside the observed range of y [{lo:.4g}, "
                f"{hi:.4g}]: the weights there rely on extrapolated densities and will be "
                "unreliable. Use a grid inside the data, e.g. its 5-95% quantiles.",
                PositivityWarning,
                stacklevel=3,
            )
    return values


def _normalise_columns(log_w: np.ndarray) -> np.ndarray:
    return np.exp(log_w - logsumexp(log_w, axis=0, keepdims=True))


def causal_weights(
    graph: Any = "front_door",
    X: Any = None,
    y: Any = None,
    *,
    mechanism: Any = None,
    covariates: Any = None,
    do: Any = None,
    density: str | ConditionalDensity = "auto",
    weight_smoothing: str | None = None,
    positivity: str = "raise",
) -> CausalWeights:
    """Causal weights for every intervention value, by the formula the graph identifies.

    Front door: ``w_n(y) = p(z_n | y) / p(z_n | y_n)``; front door with covariates and
    back door: see :mod:`causal_mixtures.adjustment`.

    Parameters
    ----------
    graph : str or CausalGraph, default="front_door"
        The assumed causal graph (a name from :func:`~causal_mixtures.list_graphs`, a path to
        a spec file, or a :class:`~causal_mixtures.CausalGraph`). It decides the weight
        formula through :func:`~causal_mixtures.identification.identify`.
    X : array-like of shape (n_samples, n_features) or None
        The effect. Only its length is checked: front-door weights do not depend on ``x``.
    y : array-like of shape (n_samples,)
        The cause.
    mechanism : array-like of shape (n_samples,) or (n_samples, n_mechanism_features)
        The mechanism ``z``.
    covariates : array-like of shape (n_samples,) or (n_samples, n_covariates), optional
        Observed covariates, for graphs that declare them: one column per covariate node,
        in the graph's order.
    do : array-like of shape (n_do,), optional
        Intervention values. Defaults to the classes of a discrete ``y``; required for a
        continuous ``y``.
    density : str or ConditionalDensity, default="auto"
        Estimator of the conditional density in the weights (``p(z | y)`` for the front door);
        see :mod:`causal_mixtures.density` and :mod:`causal_mixtures.adjustment`. For the
        front door with a continuous mechanism, ``"auto"`` chooses among "gaussian",
        "mixture" and "kde" by held-out log-likelihood and records the choice in
        ``density_choice`` (:func:`~causal_mixtures.weights.selection.choose_density`).
    weight_smoothing : {None, "psis"}, default=None
        Pareto-smooth each column's tail (PSIS); reduces the variance of heavy-tailed weights.
    positivity : {"raise", "warn"}, default="raise"
        What to do when the weights show that positivity fails (front-door estimands: under
        some intervention a stratum of the cause keeps almost none of its weight share, see
        :mod:`causal_mixtures.weights.overlap`): raise :class:`PositivityError`, or warn
        with a :class:`PositivityWarning` and return the weights.

    Returns
    -------
    CausalWeights

    Raises
    ------
    PositivityError
        When ``p̂(z_n | y_n)`` is zero for an observed row, a ``do`` value has no support, or
        (``positivity="raise"``) the weights collapse onto the rows of one cause value.
    NotIdentifiableError
        When the graph does not identify ``p(x | do(y))`` with these weights.

    Examples
    --------
    >>> import causal_mixtures as cm
    >>> data = cm.datasets.make_classification_2d(1000, random_state=0)
    >>> w = cm.causal_weights("front_door", data.X, data.y, mechanism=data.mechanism)
    >>> w.values.shape
    (1000, 2)
    """
    from causal_mixtures.graph.identify import identify

    g = resolve_graph(graph)
    estimand = identify(g)
    if estimand.reduction is not None and mechanism is None:
        # The roles were found by the front-door reduction: say which columns it needs.
        raise ValueError(
            f"mechanism is required: the graph is front-door reducible and its estimand uses "
            f"the mechanism super-node {', '.join(estimand.mechanisms)}; pass their columns, "
            "in this order, as mechanism=..."
            + (
                f" (and {', '.join(estimand.covariates)} as covariates=...)"
                if estimand.covariates
                else ""
            )
            + "."
        )
    y_arr = as_cause(y) if y is not None else None
    if y_arr is None:
        raise ValueError("y (the cause) is required; got None.")
    n = len(y_arr)
    if X is not None and len(X) != n:
        raise ValueError(f"X and y must have the same number of rows; got {len(X)} and {n}.")
    if weight_smoothing not in WEIGHT_SMOOTHING:
        raise ValueError(
            f"weight_smoothing must be one of {list(WEIGHT_SMOOTHING)}; got {weight_smoothing!r}."
        )
    if positivity not in POSITIVITY:
        raise ValueError(
            f"positivity must be one of {list(POSITIVITY)}; got {positivity!r}. Use 'warn' to "
            "fit despite a failed positivity check."
        )
    if "covariate" in estimand.required_roles and covariates is None:
        raise ValueError(
            f"covariates is required for the {estimand.kind.replace('_', '-')} graph: it adjusts "
            f"for the covariate role ({', '.join(estimand.covariates)}); pass them as "
            "covariates=W."
        )
    discrete_cause = is_discrete(y_arr)
    do_values = resolve_do(y_arr, do, discrete_cause=discrete_cause)
    if estimand.kind != "front_door":
        log_num, log_den, dens = adjusted_log_weights(
            estimand,
            y_arr,
            do_values,
            mechanism=mechanism,
            covariates=covariates,
            density=density,
            discrete_cause=discrete_cause,
        )
    else:
        z = as_mechanism(mechanism, n)
        dens, _ = resolve_density(density, z, y_arr, discrete_cause=discrete_cause)
        log_num, log_den = front_door_log_weights(dens, z, y_arr, do_values,
                                                  discrete_cause=discrete_cause)
    cw = finish_weights(
        log_num,
        log_den,
        do_values,
        y=y_arr,
        estimand=estimand,
        density=dens,
        weight_smoothing=weight_smoothing,
    )
    object.__setattr__(cw, "density_choice", getattr(dens, "choice_", None))
    if estimand.kind in ("front_door", "front_door_covariates"):
        overlap = cause_overlap(cw.values, y_arr, cw.ess, discrete_cause=discrete_cause)
        object.__setattr__(cw, "overlap", overlap)
        if discrete_cause:
            # A continuous cause's strata thin out smoothly with the strength of y -> z (the
            # paper's regression keeps 0.1-0.3 % at the grid ends without any support gap);
            # there the weights' ESS and k-hat carry the warning instead.
            check_positivity(overlap, do_values, positivity)
    return cw


def front_door_log_weights(
    density: ConditionalDensity, z: np.ndarray, y: np.ndarray, do_values: np.ndarray, *,
    discrete_cause: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The numerators ``log p(z_n | do value)`` (n, n_do) and denominators ``log p(z_n |
    y_n)`` (n,) of the front-door weights under a fitted ``density`` (for any rows: the
    out-of-core fit evaluates them chunk by chunk)."""
    log_num = density.log_prob_grid(z, do_values)  # (n, n_do)
    if discrete_cause and set(np.unique(y).tolist()) <= set(do_values.tolist()):
        # p(z_n | y_n) is already a column of the grid: reuse it instead of re-evaluating.
        col = {v: j for j, v in enumerate(do_values.tolist())}
        return log_num, log_num[np.arange(len(y)), [col[v] for v in y.tolist()]]
    return log_num, density.log_prob(z, y)


def check_log_weights(
    log_num: np.ndarray, log_den: np.ndarray, y: np.ndarray, *, first_row: int = 0
) -> None:
    """Refuse infinite weights (a zero denominator) and NaN numerators; rows are numbered
    from ``first_row`` (the chunk's position in a stream)."""
    bad_den = ~np.isfinite(log_den)
    if bad_den.any():
        rows = np.flatnonzero(bad_den)
        raise PositivityError(
            f"the estimated density in the weight denominator (p(z_n | y_n), or p(y_n | w_n) for "
            f"the back door) is zero (or undefined) for {len(rows)} row(s), e.g. rows "
            f"{(rows[:5] + first_row).tolist()} with y = "
            f"{y[rows[:5]].tolist()}: their weights would be infinite. Use a smoother density "
            "(density='kde' or 'gaussian', or DiscreteDensity(alpha=1)) or drop those rows."
        )
    if np.isnan(log_num).any():
        raise PositivityError("the density p(z | do value) evaluated to NaN; check the inputs.")


def check_support(alive: np.ndarray, do_values: np.ndarray) -> None:
    """Refuse do values where no row has a positive weight (``alive``: (n_do,) bool)."""
    dead = np.flatnonzero(~np.asarray(alive))
    if len(dead):
        raise PositivityError(
            f"do value(s) {do_values[dead].tolist()} have no support: every row has zero weight "
            "there (the mechanism never takes values that are likely under them). Remove them "
            "from do or use a smoother density."
        )


def finish_weights(
    log_num: np.ndarray,
    log_den: np.ndarray,
    do_values: np.ndarray,
    *,
    y: np.ndarray,
    estimand: Any,
    density: Any,
    weight_smoothing: str | None,
) -> CausalWeights:
    """Positivity checks, optional smoothing and normalisation of ``log_num - log_den``."""
    check_log_weights(log_num, log_den, y)
    log_w = log_num - log_den[:, None]
    check_support(np.isfinite(log_w).any(0), do_values)
    khat = np.array([pareto_khat(log_w[:, j], log=True) for j in range(log_w.shape[1])])
    raw_ess = None
    if weight_smoothing == "psis":
        raw_ess = kish_ess(_normalise_columns(log_w), axis=0)
        log_w = np.column_stack([psis_smooth(log_w[:, j])[0] for j in range(log_w.shape[1])])
    values = _normalise_columns(log_w)
    return CausalWeights(values, do_values, khat, estimand, density, weight_smoothing,
                         raw_ess=raw_ess)
