"""Causal weights from statistics summed over chunks of rows (the out-of-core fit,
:mod:`causal_mixtures.estimators.out_of_core`): the scan that fits the mechanism's density
(counts per (y, z) cell for :class:`~causal_mixtures.weights.density.DiscreteDensity`,
means and covariances for :class:`~causal_mixtures.weights.density.GaussianDensity`), the
front-door log weights of any chunk under it, the weights' sums (an online log-sum-exp:
totals, ``Σ w²``, class shares, largest log weights, weighted column moments) and
:class:`StreamedWeights`, what is kept of them; and the merges of the scans and weight sums
of the shards of a distributed fit (:func:`merge_scans`, :func:`reduce_weight_sums`).
Details: ``docs/out_of_core.md``, ``docs/distributed.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from causal_mixtures.weights.core import CausalWeights, check_log_weights, front_door_log_weights
from causal_mixtures.weights.density import (
    ConditionalDensity,
    DiscreteDensity,
    GaussianDensity,
    KernelDensityEstimate,
    check_cause_type,
    is_discrete,
    rows_as_codes,
    unique_rows,
)
from causal_mixtures.weights.kde import (
    BINNED_MAX_DIM,
    BinnedKDE,
    ExactKDE,
    grid_of_range,
    grid_shape,
    kernel_logsumexp,
    linear_binning,
)
from causal_mixtures.weights.psis import tail_length

__all__ = [
    "MAX_CELLS",
    "MechanismScan",
    "StreamedWeights",
    "TailTable",
    "WeightSums",
    "Weigher",
    "chunk_weights",
    "density_from_scan",
    "fit_streamed_kde",
    "keep_positions",
    "merge_scans",
    "reduce_weight_sums",
]

#: Distinct classes of the cause, or (cause, mechanism) cells, that the scan counts: more
#: means a continuous variable (or a discrete density that would not fit in memory).
MAX_CELLS = 100_000


class _Counts:
    """Counts of distinct values (rows) until there are too many, then ``None``."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.counts: dict[Any, int] | None = {}
        self.dtype: Any = None

    def add(self, keys: list, counts: np.ndarray) -> None:
        if self.counts is None:
            return
        for key, c in zip(keys, counts.tolist(), strict=True):
            self.counts[key] = self.counts.get(key, 0) + c
        if len(self.counts) > self.cap:
            self.counts = None


def _discrete_possible(a: np.ndarray) -> bool:
    """Whether values of this chunk may still belong to a discrete variable."""
    return a.dtype.kind != "f" or bool(np.all(a == np.round(a)))


def _level_array(keys: Iterable[Any], dtype: Any, width: int) -> np.ndarray:
    keys = list(keys)
    if dtype.kind in "US":  # the width of the longest string, not of the first chunk's
        return np.array(keys, dtype=dtype.kind).reshape(len(keys), width)
    out = np.empty((len(keys), width), dtype=object if dtype.kind == "O" else dtype)
    for i, k in enumerate(keys):
        out[i] = k
    return out


@dataclass
class _Moments:
    """Count, sum and sum of outer products of rows about a fixed centre (the first rows')."""

    centre: np.ndarray | None = None
    n: int = 0
    s1: Any = 0.0
    s2: Any = 0.0
    #: Only the count and the sum (the rows' mean), no outer products.
    diagonal: bool = False
    low: Any = np.inf
    high: Any = -np.inf

    def add(self, a: np.ndarray) -> None:
        if self.centre is None:
            self.centre = a.mean(0)
        self.low, self.high = np.minimum(self.low, a.min(0)), np.maximum(self.high, a.max(0))
        c = a - self.centre
        self.n += len(a)
        self.s1 = self.s1 + c.sum(0)
        if not self.diagonal:
            self.s2 = self.s2 + c.T @ c

    def mean(self) -> np.ndarray:
        return self.centre + self.s1 / self.n

    def mean_cov(self) -> tuple[int, np.ndarray, np.ndarray]:
        m = self.s1 / self.n
        return self.n, self.centre + m, self.s2 / self.n - np.outer(m, m)


@dataclass
class MechanismScan:
    """Pass 1: what the density, the do values and the checks need."""

    n: int = 0
    d: int = 0
    d_z: int = 0
    x_min: Any = None
    x_max: Any = None
    rows: _Moments = field(default_factory=lambda: _Moments(diagonal=True))
    causes: _Counts = field(default_factory=lambda: _Counts(MAX_CELLS))
    levels: _Counts = field(default_factory=lambda: _Counts(MAX_CELLS))
    cells: _Counts = field(default_factory=lambda: _Counts(MAX_CELLS))
    y_range: list = field(default_factory=lambda: [np.inf, -np.inf])
    per_class: dict = field(default_factory=dict)
    joint: _Moments = field(default_factory=_Moments)
    numeric_z: bool = True

    def add(self, X: np.ndarray, y: np.ndarray, z: np.ndarray) -> None:
        if self.n == 0:
            self.d, self.d_z = X.shape[1], z.shape[1]
            self.x_min, self.x_max = X.min(0), X.max(0)
            self.causes.dtype, self.levels.dtype = y.dtype, z.dtype
        self.n += len(X)
        self.x_min, self.x_max = np.minimum(self.x_min, X.min(0)), np.maximum(self.x_max, X.max(0))
        self.rows.add(X)
        numeric_y = y.dtype.kind in "biuf"
        if numeric_y:
            self.y_range = [min(self.y_range[0], float(y.min())), max(self.y_range[1], float(y.max()))]
        if not _discrete_possible(y):
            self.causes.counts = None
        if not _discrete_possible(z):
            self.levels.counts = None
            self.cells.counts = None
        self.numeric_z = self.numeric_z and z.dtype.kind in "biuf"
        y_codes = None
        if self.causes.counts is not None:
            ylev, y_codes = unique_rows(y.reshape(-1, 1))
            self.causes.add(ylev[:, 0].tolist(), np.bincount(y_codes, minlength=len(ylev)))
        if self.levels.counts is not None:
            zlev, z_codes = unique_rows(z)
            keys = [tuple(r) for r in zlev.tolist()]
            self.levels.add(keys, np.bincount(z_codes, minlength=len(zlev)))
            if y_codes is not None and self.cells.counts is not None:
                pair = y_codes * len(zlev) + z_codes
                cnt = np.bincount(pair, minlength=len(ylev) * len(zlev))
                nz = np.flatnonzero(cnt)
                causes = ylev[:, 0].tolist()
                self.cells.add([(causes[i // len(zlev)], keys[i % len(zlev)]) for i in nz],
                               cnt[nz])
        if self.numeric_z:
            zf = z.astype(np.float64)
            if y_codes is not None:
                for i, v in enumerate(ylev[:, 0].tolist()):
                    self.per_class.setdefault(v, _Moments()).add(zf[y_codes == i])
            if numeric_y:
                self.joint.add(np.column_stack([y.astype(np.float64), zf]))

    def discrete_cause(self) -> bool:
        c = self.causes.counts
        if c is None:
            return False
        values = _level_array(((k,) for k in c), self.causes.dtype, 1)[:, 0]
        return is_discrete(values)

    def classes(self) -> np.ndarray:
        """The sorted classes of a discrete cause (as ``np.unique(y)``)."""
        assert self.causes.counts is not None
        values = _level_array(((k,) for k in self.causes.counts), self.causes.dtype, 1)
        return unique_rows(values)[0][:, 0]

    def discrete_mechanism(self) -> bool:
        c = self.levels.counts
        if c is None:
            return False
        return is_discrete(_level_array(c, self.levels.dtype, self.d_z))


def density_from_scan(density: Any, scan: MechanismScan, discrete_cause: bool) -> ConditionalDensity:
    """The estimator's ``density`` argument, fitted from the scan's statistics."""
    discrete_z = scan.discrete_mechanism()
    if isinstance(density, str) and density == "auto":
        if discrete_z and discrete_cause:
            density = "discrete"
        elif not discrete_z:
            density = "gaussian"
    if isinstance(density, str) and density == "discrete":
        density = DiscreteDensity()
    elif isinstance(density, str) and density == "gaussian":
        density = GaussianDensity(discrete_cause=discrete_cause)
    elif isinstance(density, str) and density == "kde":
        density = KernelDensityEstimate(discrete_cause=discrete_cause)
    if isinstance(density, KernelDensityEstimate):
        _check_streamed_kde(density, scan, discrete_cause)
        return density  # fitted by fit_streamed_kde, which needs passes over the rows
    if not isinstance(density, DiscreteDensity | GaussianDensity):
        what = density if isinstance(density, str) else type(density).__name__
        raise ValueError(
            f"density={what!r} is not streamed: the out-of-core fit estimates p(z | y) from "
            "statistics summed over chunks, which density='discrete' (counts per cell: a "
            "discrete mechanism and a discrete cause) and density='gaussian' (means and "
            "covariances, any mechanism, discrete or continuous cause) and density='kde' "
            "(binned grids and exact tails: a mechanism of one or two columns, one with a "
            "continuous cause) have"
            + ("; 'auto' here means 'discrete' for a discrete mechanism and cause, 'gaussian' "
               "for a continuous mechanism (a discrete mechanism of a continuous cause would "
               "need 'logistic')" if what == "auto" else "")
            + ". 'mixture', 'gmm', 'histogram' and 'logistic' are fitted by optimisation "
            "or on bin edges from all the rows. Use density='gaussian', 'discrete' or 'kde', "
            "or fit in memory (CausalGaussianMixture.fit) on the rows or an evenly spaced "
            "subsample of them."
        )
    check_cause_type(density, discrete_cause)
    if isinstance(density, DiscreteDensity):
        if scan.cells.counts is None:
            raise ValueError(
                "density='discrete' needs a discrete mechanism with a discrete cause, but "
                + ("the cause" if scan.causes.counts is None else "the mechanism")
                + f" takes non-integer values or more than {MAX_CELLS} distinct ones. Use "
                "density='gaussian'."
            )
        levels = unique_rows(_level_array(scan.levels.counts, scan.levels.dtype, scan.d_z))[0]
        index = {k: i for i, k in enumerate(tuple(r) for r in levels.tolist())}
        counts: dict[Any, np.ndarray] = {
            c: np.zeros(len(levels)) for c in scan.classes().tolist()
        }
        for (c, key), m in scan.cells.counts.items():
            counts[c][index[key]] += m
        return density.fit_counts(levels, counts)
    if not scan.numeric_z:
        raise ValueError(
            "density='gaussian' needs a numeric mechanism; got non-numeric mechanism values. "
            "Encode them as numbers, or use density='discrete'."
        )
    if discrete_cause:
        return density.fit_moments({c: m.mean_cov() for c, m in scan.per_class.items()})
    return density.fit_moments(scan.joint.mean_cov())


class Weigher:
    """The front-door log weights of any chunk under the fitted density."""

    def __init__(self, density: ConditionalDensity, do_values: np.ndarray, discrete_cause: bool) -> None:
        self.density, self.do_values, self.discrete_cause = density, do_values, discrete_cause

    def log_weights(self, y: np.ndarray, z: np.ndarray, first_row: int = 0) -> np.ndarray:
        log_num, log_den = front_door_log_weights(self.density, z, y, self.do_values,
                                                  discrete_cause=self.discrete_cause)
        check_log_weights(log_num, log_den, y, first_row=first_row)
        return log_num - log_den[:, None]  # (c, n_do)


def keep_positions(n: int, rows: int) -> np.ndarray:
    """Evenly spaced positions of ``rows`` of ``n`` rows (all when ``n <= rows``)."""
    if n <= rows:
        return np.arange(n)
    return np.linspace(0, n - 1, rows).round().astype(np.int64)


@dataclass
class WeightSums:
    """Pass 2: sums over chunks of the weights ``exp(lw − ref)``, rescaled whenever the
    largest log weight ``ref`` of a column grows (an online log-sum-exp)."""

    n_do: int
    d: int
    n: int
    centre: np.ndarray
    n_classes: int
    ref: np.ndarray = field(init=False)
    total: np.ndarray = field(init=False)
    total_sq: np.ndarray = field(init=False)
    s1: np.ndarray = field(init=False)
    s2: np.ndarray = field(init=False)
    share: np.ndarray = field(init=False)
    positive: np.ndarray = field(init=False)
    tail: list = field(init=False)

    def __post_init__(self) -> None:
        self.ref = np.full(self.n_do, -np.inf)
        self.total = np.zeros(self.n_do)
        self.total_sq = np.zeros(self.n_do)
        self.s1 = np.zeros((self.n_do, self.d))
        self.s2 = np.zeros((self.n_do, self.d))
        self.share = np.zeros((max(self.n_classes, 1), self.n_do))
        self.positive = np.zeros(self.n_do, dtype=np.int64)
        self.tail = [np.empty(0) for _ in range(self.n_do)]
        self.m_tail = tail_length(self.n) + 1

    def add(self, lw: np.ndarray, X: np.ndarray, codes: np.ndarray | None) -> None:
        finite = np.isfinite(lw)
        top = np.where(finite.any(0), np.where(finite, lw, -np.inf).max(0), -np.inf)
        new = np.maximum(self.ref, top)
        with np.errstate(invalid="ignore"):
            f = np.where(np.isfinite(self.ref), np.exp(self.ref - new), 0.0)
        self.total *= f
        self.total_sq *= f * f
        self.s1 *= f[:, None]
        self.s2 *= f[:, None]
        self.share *= f[None, :]
        self.ref = new
        with np.errstate(invalid="ignore"):
            w = np.where(finite, np.exp(lw - np.where(np.isfinite(new), new, 0.0)), 0.0)  # (c, n_do)
        c = X - self.centre
        self.total += w.sum(0)
        self.total_sq += (w * w).sum(0)
        self.s1 += w.T @ c
        self.s2 += w.T @ (c * c)
        if codes is not None:
            for j in range(self.n_do):
                self.share[:, j] += np.bincount(codes, weights=w[:, j], minlength=self.n_classes)
        self.positive += finite.sum(0)
        for j in range(self.n_do):
            col = np.concatenate([self.tail[j], lw[finite[:, j], j]])
            if len(col) > self.m_tail:
                col = np.partition(col, len(col) - self.m_tail)[len(col) - self.m_tail:]
            self.tail[j] = col


# ------------------------------------------------- combining the shards (fit_distributed)
def _merge_moments(parts: list[_Moments]) -> _Moments:
    """Moments of the concatenated rows, about the first part's centre (the first
    chunk's mean, as in one process)."""
    parts = [p for p in parts if p.centre is not None and p.n > 0]
    if not parts:
        return _Moments()
    first = parts[0]
    out = _Moments(centre=first.centre, diagonal=first.diagonal)
    out.n, out.s1, out.s2 = 0, 0.0, 0.0
    for p in parts:
        delta = p.centre - first.centre  # x − c₀ = (x − c_p) + δ
        out.low, out.high = np.minimum(out.low, p.low), np.maximum(out.high, p.high)
        out.s1 = out.s1 + p.s1 + p.n * delta
        if not first.diagonal:
            cross = np.outer(p.s1, delta)
            out.s2 = out.s2 + p.s2 + cross + cross.T + p.n * np.outer(delta, delta)
        out.n += p.n
    return out


def _merge_counts(parts: list[_Counts]) -> _Counts:
    out = _Counts(parts[0].cap)
    out.dtype = next((p.dtype for p in parts if p.dtype is not None), None)
    for p in parts:
        if p.counts is None:
            out.counts = None
            break
        out.add(list(p.counts), np.array(list(p.counts.values()), dtype=np.int64))
    return out


def merge_scans(parts: list[MechanismScan]) -> MechanismScan:
    """The :class:`~causal_mixtures.weights.streamed.MechanismScan` of the concatenated
    shards, from every process's scan in rank order (what one process scanning all the
    rows in that order finds, to rounding)."""
    full = [p for p in parts if p.n > 0]
    if len(parts) == 1 or not full:
        return parts[0]
    out = MechanismScan()
    first = full[0]
    out.n = sum(p.n for p in full)
    out.d, out.d_z = first.d, first.d_z
    out.x_min = np.min([p.x_min for p in full], axis=0)
    out.x_max = np.max([p.x_max for p in full], axis=0)
    out.rows = _merge_moments([p.rows for p in full])
    out.rows.diagonal = True
    out.causes = _merge_counts([p.causes for p in full])
    out.levels = _merge_counts([p.levels for p in full])
    out.cells = _merge_counts([p.cells for p in full])
    out.y_range = [min(p.y_range[0] for p in full), max(p.y_range[1] for p in full)]
    for p in full:
        for c in p.per_class:
            out.per_class.setdefault(c, None)
    out.per_class = {c: _merge_moments([p.per_class[c] for p in full if c in p.per_class])
                     for c in out.per_class}
    out.joint = _merge_moments([p.joint for p in full])
    out.numeric_z = all(p.numeric_z for p in full)
    return out


def reduce_weight_sums(sums: WeightSums, reducer: Any) -> WeightSums:
    """The :class:`~causal_mixtures.weights.streamed.WeightSums` of all the shards (``sums``
    built with the total row count): the largest log weights ``ref`` by ``max``, every
    process's sums rescaled to them and summed, the tails of the largest log weights
    gathered and cut to the longest tail k̂ reads. ``reducer``: a
    :class:`~causal_mixtures.estimators.reduction.Reducer`; identity in one process."""
    if reducer.world_size == 1:
        return sums
    (ref,) = reducer.max(sums.ref)
    with np.errstate(invalid="ignore", over="ignore"):
        f = np.where(np.isfinite(sums.ref), np.exp(sums.ref - ref), 0.0)
    sums.total, sums.total_sq, sums.s1, sums.s2, sums.share, sums.positive = reducer.sum(
        sums.total * f, sums.total_sq * f * f, sums.s1 * f[:, None], sums.s2 * f[:, None],
        sums.share * f[None, :], sums.positive,
    )
    sums.ref = ref
    tails = reducer.gather(sums.tail)
    for j in range(sums.n_do):
        col = np.concatenate([t[j] for t in tails])
        if len(col) > sums.m_tail:
            col = np.partition(col, len(col) - sums.m_tail)[len(col) - sums.m_tail:]
        sums.tail[j] = col
    return sums


@dataclass(frozen=True, eq=False)
class StreamedWeights:
    """What an out-of-core fit keeps of its causal weights: their summaries, not the
    (n_samples, n_do) values (``causal_weights_`` of :meth:`CausalGaussianMixture.fit_stream
    <causal_mixtures.CausalGaussianMixture.fit_stream>`). The attributes of
    :class:`~causal_mixtures.CausalWeights` that need no rows, computed from sums over
    the chunks: equal to the in-memory ones to rounding.

    Attributes
    ----------
    do_values : ndarray of shape (n_do,)
    ess : ndarray of shape (n_do,)
        Kish effective sample size of each column.
    khat : ndarray of shape (n_do,)
        Pareto ``k̂`` of each column (from its largest weights, kept while streaming).
    max_weight : ndarray of shape (n_do,)
        The largest normalised weight of each column.
    n_samples : int
        Number of rows.
    estimand : object
    density : ConditionalDensity
    overlap : CauseOverlap or None
        The weight share of each class of a discrete cause (the positivity check).
    smoothing : None
        The out-of-core fit does not smooth its weights.
    density_choice : None
    """

    do_values: np.ndarray
    ess: np.ndarray
    khat: np.ndarray
    max_weight: np.ndarray
    n_samples: int
    estimand: Any = None
    density: ConditionalDensity | None = None
    overlap: Any = None
    smoothing: str | None = None
    density_choice: Any = None

    @property
    def n_do(self) -> int:
        """Number of intervention values."""
        return int(len(self.do_values))

    @property
    def max_ratio(self) -> np.ndarray:
        """Largest weight divided by the mean weight, per intervention value."""
        return self.max_weight * self.n_samples

    ess_ratio = CausalWeights.ess_ratio
    to_frame = CausalWeights.to_frame
    __repr__ = CausalWeights.__repr__


def _check_streamed_kde(kde: KernelDensityEstimate, scan: MechanismScan, discrete: bool) -> None:
    """Refuse the KDEs that cannot be streamed, saying what to use."""
    why = None
    if not discrete and scan.d_z > BINNED_MAX_DIM - 1:
        why = (f"a continuous cause with a mechanism of {scan.d_z} columns (the joint (y, z) "
               f"KDE would have more than {BINNED_MAX_DIM} dimensions, beyond a binned grid)")
    elif scan.d_z > BINNED_MAX_DIM:
        why = (f"a mechanism of {scan.d_z} columns (the binned grid, a sum over chunks, has "
               f"at most {BINNED_MAX_DIM} dimensions; the exact KDE needs every point)")
    elif kde.method == "exact" or kde.max_points not in ("auto", None):
        why = (f"method={kde.method!r}, max_points={kde.max_points!r} (the out-of-core KDE "
               "is the binned one on every point: method='auto' or 'binned', max_points="
               "'auto' or None)")
    elif not scan.numeric_z:
        why = "a non-numeric mechanism"
    if why is not None:
        raise ValueError(
            f"density='kde' is not streamed for {why}. Use density='gaussian' (means and "
            "covariances summed over chunks), density='discrete' for a discrete mechanism, "
            "or fit in memory (CausalGaussianMixture.fit) on the rows or an evenly spaced "
            "subsample of them."
        )


class TailTable(ExactKDE):
    """The exact KDE's log density at the queries a binned grid cannot interpolate (its
    tails), from a table filled by a pass over the points: a query not in the table yet is
    recorded (``pending``) and scores NaN until :meth:`fill_from` has summed its kernels.

    Parameters
    ----------
    m : int
        Number of points.
    loc, sd : ndarray of shape (d,)
        The points' mean and standard deviation.
    bandwidth : float or None
        On the standardised scale; ``None`` means Scott's rule.
    """

    #: Tail queries kept at most (each a distinct mechanism row in a KDE's tails).
    MAX_QUERIES = 1_000_000

    def __init__(self, m: int, loc: np.ndarray, sd: np.ndarray, bandwidth: float | None) -> None:
        self._standardisation(m, loc, sd, bandwidth)
        self.table: dict[bytes, float] = {}
        self.pending: dict[bytes, np.ndarray] = {}
        self._lse: np.ndarray | None = None

    def score_standardised(self, q: np.ndarray) -> np.ndarray:
        out = np.empty(len(q))
        for i, row in enumerate(np.ascontiguousarray(q, dtype=float)):
            key = row.tobytes()
            value = self.table.get(key)
            if value is None:
                self.pending.setdefault(key, row.copy())
                value = np.nan
            out[i] = value
        if len(self.pending) > self.MAX_QUERIES:
            raise ValueError(
                f"more than {self.MAX_QUERIES} distinct mechanism values lie in the tails of a "
                "KDE, where the out-of-core KDE evaluates every kernel. Use density='gaussian'."
            )
        return out

    def add_points(self, points: np.ndarray) -> None:
        """Add the kernels of a chunk of standardised points to the pending queries' sums."""
        if not self.pending or not len(points):
            return
        q = np.stack(list(self.pending.values()))
        part = kernel_logsumexp(q, points, self.bandwidth)
        self._lse = part if self._lse is None else np.logaddexp(self._lse, part)

    def finish(self) -> None:
        """Move the pending queries, their sums complete, into the table."""
        if self.pending and self._lse is not None:
            for key, value in zip(self.pending, (self._lse + self.const).tolist(), strict=True):
                self.table[key] = value
        self.pending, self._lse = {}, None


def _kde_specs(
    kde: KernelDensityEstimate, scan: MechanismScan, classes: np.ndarray | None
) -> dict[Any, tuple]:
    """Per KDE to build: its :class:`TailTable`, the standardised range of its points and
    a function of a chunk's ``(y, z)`` (and class codes) giving its points."""
    specs: dict[Any, tuple] = {}
    if classes is not None:  # one KDE of z per class
        for i, c in enumerate(classes.tolist()):
            mom = scan.per_class[c]
            count, mean, cov = mom.mean_cov()
            sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
            specs[c] = (TailTable(count, mean, sd, kde.bandwidth), mom.low, mom.high,
                        lambda y, z, k, i=i: z[k == i])
        return specs
    # A continuous cause: p(z | y) = p(y, z) / p(y), the marginal with the joint's kernel in y.
    count, mean, cov = scan.joint.mean_cov()
    sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
    joint = TailTable(count, mean, sd, kde.bandwidth)
    specs["joint"] = (joint, scan.joint.low, scan.joint.high,
                      lambda y, z, k: np.column_stack([y.astype(np.float64), z]))
    specs["marginal"] = (TailTable(count, mean[:1], sd[:1], joint.bandwidth),
                         scan.joint.low[:1], scan.joint.high[:1],
                         lambda y, z, k: y.astype(np.float64).reshape(-1, 1))
    return specs


def _gathered(reducer: Any, tables: list[TailTable], attr: str) -> list[tuple[TailTable, tuple]]:
    """Every table with the values of its attribute ``attr`` in every process, rank order."""
    per_rank = reducer.gather([getattr(t, attr) for t in tables])
    return [(t, tuple(part[i] for part in per_rank)) for i, t in enumerate(tables)]


def fit_streamed_kde(
    kde: KernelDensityEstimate, scan: MechanismScan, source: Any, classes: np.ndarray | None,
    do_values: np.ndarray, reducer: Any = None,
) -> KernelDensityEstimate:
    """The binned KDEs of ``kde`` (one per class of a discrete cause; for a continuous
    cause the joint (y, z) and the marginal of y) from passes over ``source`` (chunks of
    ``(X, y, z)``): one pass bins every KDE's standardised points on its grid (linear
    binning adds up over chunks), one finds the queries of the weights that a grid cannot
    interpolate (the tails, where the weights are largest), one sums their kernels
    exactly; the in-memory ``KernelDensityEstimate`` on every point, to rounding.
    ``reducer`` (:class:`~causal_mixtures.estimators.reduction.Reducer`), when given,
    combines the grids, the tail queries and their kernel sums of the processes holding
    other rows (the distributed fit)."""
    specs = _kde_specs(kde, scan, classes)
    layouts = {}
    for key, (table, low, high, _) in specs.items():
        lo_s, hi_s = table.standardise(low), table.standardise(high)
        grid = grid_of_range(lo_s, hi_s, table.bandwidth)
        if grid is None:
            raise ValueError(
                f"density='kde' is not streamed here: the points of the KDE {key!r} span "
                "too many bandwidths for a binned grid (the in-memory KDE falls back to an "
                "exact sum over 5000 points). Use density='gaussian', or fit in memory."
            )
        layouts[key] = (lo_s, hi_s, grid[0], grid[1],
                        grid_shape(hi_s, grid[0], grid[1], table.bandwidth))
    counts = {key: np.zeros(int(np.prod(lay[4]))) for key, lay in layouts.items()}
    levels = None if classes is None else classes.reshape(-1, 1)

    def points() -> Iterable[tuple[Any, np.ndarray]]:
        for _, y, z in source:
            k = None if levels is None else rows_as_codes(y.reshape(-1, 1), levels)[1]
            for key, (table, _, _, of) in specs.items():
                pts = of(y, z, k)
                if len(pts):
                    yield key, table.standardise(pts)

    for key, pts in points():
        counts[key] += linear_binning(pts, *layouts[key][2:])
    if reducer is not None:
        counts.update(zip(list(counts), reducer.sum(*counts.values()), strict=True))
    models = {key: BinnedKDE(specs[key][0], low=lay[0], high=lay[1],
                             counts=lambda *_, key=key: counts[key])
              for key, lay in layouts.items()}
    if classes is not None:
        kde.set_models(models)
    else:
        kde.set_models(joint=models["joint"], marginal=models["marginal"])
    tables = [spec[0] for spec in specs.values()]
    for _, y, z in source:  # the tail queries of the weights
        front_door_log_weights(kde, z, y, do_values, discrete_cause=classes is not None)
    if reducer is not None:  # every process sums the kernels at the union of the queries
        for t, parts in _gathered(reducer, tables, "pending"):
            t.pending = {k: v for part in parts for k, v in part.items()}
    if any(t.pending for t in tables):
        for key, pts in points():
            specs[key][0].add_points(pts)
        if reducer is not None:
            for t, parts in _gathered(reducer, tables, "_lse"):
                parts = [p for p in parts if p is not None]
                t._lse = np.logaddexp.reduce(np.stack(parts), axis=0) if parts else None
        for t in tables:
            t.finish()
    return kde


def chunk_weights(lw: np.ndarray, ref: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Weights ``exp(lw − ref) · scale`` of a chunk's log weights ``lw`` (c, n_do), do
    values first: (n_do, c)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(lw), np.exp(lw - ref), 0.0).T * scale[:, None]
