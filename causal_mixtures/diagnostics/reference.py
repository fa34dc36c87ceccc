"""What the data say about each interventional distribution, kept at fit time.

:class:`WeightedReference` holds, per intervention value, the weighted moments and
quantiles of the rows a mixture was fitted to (the observational rows under the causal
weights, or the plug-in sampler's draws) and the standard errors of the weighted mean and
standard deviation of every feature. The posterior-predictive checks compare the mixture
with it, and the ``mean_uncertainty`` check reports its standard errors, so
:func:`~causal_mixtures.diagnostics.diagnose` needs no training data passed back. The
standard errors are the delta-method ones of self-normalised importance sampling
(``docs/diagnostics.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from causal_mixtures.weights.streamed import keep_positions

__all__ = [
    "MAX_COVARIANCE_FEATURES",
    "PPC_PROBS",
    "QUANTILE_ROWS",
    "WeightedReference",
    "reference_from_moments",
    "reference_moments",
    "weighted_quantiles",
    "weighted_reference",
]

#: Probabilities of the quantiles the posterior-predictive check compares.
PPC_PROBS = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Above this many features the reference keeps variances only (no correlation check).
MAX_COVARIANCE_FEATURES = 256


#: Elements of the centred (chunk, d) copies in :func:`weighted_reference`.
_CHUNK_ELEMENTS = 2**20
#: Rows (evenly spaced) that :func:`weighted_reference`'s quantiles are computed from.
QUANTILE_ROWS = 200_000


def weighted_quantiles(
    x: np.ndarray, weights: np.ndarray, probs: Sequence[float], *, order: np.ndarray | None = None
) -> np.ndarray:
    """Weighted quantiles of ``x`` for every weight column.

    The weighted empirical CDF is interpolated linearly between the mid-points of the
    weight of each sorted observation (the weighted analogue of the Hazen definition).

    Parameters
    ----------
    x : ndarray of shape (n,)
    weights : ndarray of shape (n,) or (n, n_do)
        Non-negative; each column is normalised here. Zero-weight rows are ignored.
    probs : sequence of float in [0, 1]
    order : ndarray of shape (n,), optional
        ``np.argsort(x, kind="stable")`` when the caller has it.

    Returns
    -------
    ndarray of shape (len(probs),) or (n_do, len(probs))
    """
    x = np.asarray(x, dtype=float).reshape(-1)
    w = np.asarray(weights, dtype=float)
    one = w.ndim == 1
    w = w.reshape(len(x), -1)
    p = np.asarray(probs, dtype=float)
    if order is None:
        order = np.argsort(x, kind="stable")
    xs = x[order]
    ws = w[order] / w.sum(0)
    mid = np.cumsum(ws, 0) - 0.5 * ws
    out = np.stack(
        [np.interp(p, mid[ws[:, j] > 0, j], xs[ws[:, j] > 0]) for j in range(w.shape[1])]
    )
    return out[0] if one else out


@dataclass(frozen=True)
class WeightedReference:
    """Weighted summaries of the rows behind each fitted mixture.

    Attributes
    ----------
    do_values : ndarray of shape (n_do,)
    ess : ndarray of shape (n_do,)
        Kish effective sample size of each weight column.
    mean : ndarray of shape (n_do, d)
        Weighted mean of every feature.
    sd : ndarray of shape (n_do, d)
        Weighted standard deviation of every feature.
    cov : ndarray of shape (n_do, d, d) or None
        Weighted covariance (``None`` above :data:`MAX_COVARIANCE_FEATURES` features).
    quantiles : ndarray of shape (n_do, d, len(PPC_PROBS))
        Weighted quantiles of every feature at :data:`PPC_PROBS`.
    cdf_below, cdf_at : ndarray of shape (n_do, d, len(PPC_PROBS))
        The weighted share of rows strictly below and at or below each quantile: the
        range a model's CDF must reach there (wide at an atom, e.g. a pixel that is often
        exactly 0).
    mean_se : ndarray of shape (n_do, d)
        Standard error of the weighted mean, in units of the weighted sd:
        ``sqrt(Σ w̃² (x - μ)²) / σ`` (``w̃`` normalised to sum one).
    sd_se : ndarray of shape (n_do, d)
        Relative standard error of the weighted sd: ``sqrt(Σ w̃² ((x - μ)² - σ²)²) / (2σ²)``.
    source : str
        What the rows are (``"weighted rows"`` or ``"plug-in draws"``).
    """

    do_values: np.ndarray
    ess: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    cov: np.ndarray | None
    quantiles: np.ndarray
    cdf_below: np.ndarray
    cdf_at: np.ndarray
    mean_se: np.ndarray
    sd_se: np.ndarray
    source: str = "weighted rows"

    @property
    def n_do(self) -> int:
        """Number of intervention values."""
        return int(len(self.do_values))

    @property
    def n_features(self) -> int:
        """Number of features."""
        return int(self.mean.shape[1])

    @property
    def uncertainty(self) -> np.ndarray:
        """Per do value and feature, the larger of the mean's and the sd's standard error
        (sd units), shape (n_do, d)."""
        return np.maximum(self.mean_se, self.sd_se)


def weighted_reference(
    X: np.ndarray, W: np.ndarray, do_values: Any, *, source: str = "weighted rows"
) -> WeightedReference:
    """Summaries of ``X`` under every weight column of ``W``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    W : ndarray of shape (n, n_do)
        Non-negative weights; each column is normalised here.
    do_values : array-like of shape (n_do,)
    source : str, default="weighted rows"

    Returns
    -------
    WeightedReference
    """
    X = np.asarray(X, dtype=float)
    W = np.asarray(W, dtype=float)
    if W.ndim == 1:
        W = W[:, None]
    if W.shape[0] != X.shape[0]:
        raise ValueError(
            f"W must have one row per row of X ({X.shape[0]}); got shape {W.shape}."
        )
    W = W / W.sum(0)
    d = X.shape[1]
    # By chunks of rows: the centred copies are (chunk, d), not (n, d) (three of those were
    # 230 MB at n = 1e6, d = 10). Zero-weight rows add nothing to any sum.
    step = max(1, _CHUNK_ELEMENTS // max(d, 1))
    mean = W.T @ X  # (n_do, d)
    moments = reference_moments(
        lambda: ((X[s : s + step], W[s : s + step]) for s in range(0, len(X), step)), mean
    )
    # Quantiles and the CDF at them from at most QUANTILE_ROWS evenly spaced rows (a sort
    # per feature: 64 sorts of 1e6 rows were most of the diagnostics' cost; the quantile
    # checks' thresholds, 0.03 in CDF, are far above the subsample's ~0.002 noise).
    if len(X) > QUANTILE_ROWS:
        keep = keep_positions(len(X), QUANTILE_ROWS)
        Xq, Wq = X[keep], W[keep]
    else:
        Xq, Wq = X, W
    return reference_from_moments(do_values, 1.0 / (W**2).sum(0), mean, *moments, Xq, Wq,
                                  source=source)


def reference_moments(
    chunks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], mean: np.ndarray,
    reduce: Callable[..., Any] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """The sums behind a :class:`WeightedReference`, over two passes of ``chunks()`` (rows
    (c, d), normalised weights (c, n_do)) about the weighted means ``mean`` (n_do, d): the
    weighted variances and covariances (``None`` above :data:`MAX_COVARIANCE_FEATURES`),
    ``Σ w̃² (x − μ)²`` and ``Σ w̃² ((x − μ)² − σ²)²``, each (n_do, d) (the out-of-core fit
    streams them; ``reduce(*arrays)``, when given, sums each pass's sums over the processes
    streaming other rows: the distributed fit)."""
    n_do, d = mean.shape
    var, sq_sum = np.zeros((n_do, d)), np.zeros((n_do, d))
    cov = np.zeros((n_do, d, d)) if d <= MAX_COVARIANCE_FEATURES else None
    for xc, wc in chunks():
        for j in range(n_do):
            wj, c = wc[:, j], xc - mean[j]
            sq = c * c
            var[j] += wj @ sq
            sq_sum[j] += (wj * wj) @ sq
            if cov is not None:
                cov[j] += (wj[:, None] * c).T @ c
    if reduce is not None:
        var, sq_sum = reduce(var, sq_sum)
        cov = None if cov is None else reduce(cov)[0]
    m4 = np.zeros((n_do, d))
    for xc, wc in chunks():
        for j in range(n_do):
            wj, c = wc[:, j], xc - mean[j]
            m4[j] += (wj * wj) @ (c * c - var[j]) ** 2
    if reduce is not None:
        (m4,) = reduce(m4)
    return var, cov, sq_sum, m4


def reference_from_moments(
    do_values: Any, ess: np.ndarray, mean: np.ndarray, var: np.ndarray,
    cov: np.ndarray | None, sq_sum: np.ndarray, m4: np.ndarray, Xq: np.ndarray,
    Wq: np.ndarray, *, source: str = "weighted rows",
) -> WeightedReference:
    """A :class:`WeightedReference` from :func:`reference_moments` and the rows ``Xq``
    with their weights ``Wq`` (n_q, n_do) that the quantiles are read from (every row, or
    at most :data:`QUANTILE_ROWS` evenly spaced ones; normalised here)."""
    n_do, d = mean.shape
    v = np.maximum(var, 1e-300)
    mean_se = np.sqrt(sq_sum / v)
    sd_se = np.sqrt(m4) / (2.0 * v)
    tot = Wq.sum(0)
    Wq = Wq / np.where(tot > 0, tot, 1.0)
    probs = np.asarray(PPC_PROBS)
    quantiles = np.empty((n_do, d, len(probs)))
    below = np.empty_like(quantiles)
    at = np.empty_like(quantiles)
    # Columns and weight columns contiguous: the loop reads one feature and one do value
    # at a time.
    cols = np.asarray(Xq, dtype=float).T.copy()
    wcols = Wq.T.copy()
    sparse = [bool((wcols[j] <= 0).any()) for j in range(n_do)]
    for f in range(d):
        # One sort per feature serves the quantiles (as weighted_quantiles computes them)
        # and the CDF on either side of them. Not a stable sort (4x faster at 1e5 rows; it
        # was most of a fit's cost at d = 64): ties are one atom of the CDF, the same
        # whichever way they are ordered within it.
        order = np.argsort(cols[f])
        xs = cols[f][order]
        for j in range(n_do):
            ws = wcols[j][order]
            cum = np.cumsum(ws)
            mid = cum - 0.5 * ws
            if sparse[j]:
                pos = ws > 0
                q = np.interp(probs, mid[pos], xs[pos])
            else:
                q = np.interp(probs, mid, xs)
            quantiles[j, f] = q
            lo = np.searchsorted(xs, q, side="left")
            hi = np.searchsorted(xs, q, side="right")
            below[j, f] = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0.0)
            at[j, f] = np.where(hi > 0, cum[np.maximum(hi - 1, 0)], 0.0)
    return WeightedReference(
        np.asarray(do_values).reshape(-1), ess, mean, np.sqrt(np.maximum(var, 0.0)), cov,
        quantiles, below, at, mean_se, sd_se, source,
    )
