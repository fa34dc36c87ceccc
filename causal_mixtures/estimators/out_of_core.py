"""The out-of-core fit of the front-door CW-GMM: rows streamed in chunks from a source that
does not fit in memory (a NumPy memmap, a Parquet file or dataset read by row groups, a CSV
file read by pandas chunks, or any re-iterable of arrays), never all loaded.

:class:`ChunkedSource` yields ``(X, y, z)`` chunks, a fresh pass per call;
:meth:`CausalGaussianMixture.fit_stream <causal_mixtures.CausalGaussianMixture.fit_stream>`
(:func:`fit_stream`) reads it in passes, each summing statistics over the chunks:

1. *scan*: the rows, the classes of the cause, the levels of the mechanism and the
   statistics of the mechanism's density (``density="discrete"``: the rows of every
   (y, z) cell; ``density="gaussian"``: each class's, or the joint (y, z), mean and
   covariance), the column range of ``X``;
2. *weights*: every chunk's front-door log weights under that density; summed: the weight
   totals and ``Σ w²`` (Kish ESS), the weight share of every class of the cause (the
   positivity check, :mod:`~causal_mixtures.weights.overlap`), the largest log weights of
   every do value (Pareto ``k̂``), the weighted column moments (the standardisation),
   and an evenly spaced subsample: :data:`INIT_ROWS` rows for the k-means start,
   :data:`~causal_mixtures.diagnostics.reference.QUANTILE_ROWS` for the reference
   quantiles;
3. two passes for the weighted reference of the diagnostics (moments about the weighted
   means, then the fourth moments);
4. per K: one pass labelling every row by its nearest k-means centre (the start's M-step),
   then :func:`~causal_mixtures.mixture.em.weighted_em_stream` (one pass per EM iteration
   plus two), then one pass for the components' effective rows (degeneracy).

The weights are recomputed chunk by chunk from the density in every pass, never stored.
Every sum is the in-memory fit's quantity summed in another order, so the fit equals
``fit(X, y, mechanism=z)`` to rounding whenever the start is the same: always for at most
:data:`INIT_ROWS` rows (the k-means runs on all of them), and for a start passed as
``weights_init``, ``means_init`` and ``precisions_init`` (tested to 1e-10). Details and
what is not streamed yet: ``docs/out_of_core.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causal_mixtures._random import check_random_state
from causal_mixtures._validation import check_finite, check_int, resolve_device
from causal_mixtures.diagnostics.reference import (
    QUANTILE_ROWS,
    WeightedReference,
    reference_from_moments,
    reference_moments,
)
from causal_mixtures.estimators.common import clear_fit, not_converged_message
from causal_mixtures.estimators.fitting import (
    EM_DTYPES,
    best_restart,
    k_grid,
    raw_bic,
    search_k,
    store_fit,
)
from causal_mixtures.estimators.per_do import is_per_do
from causal_mixtures.estimators.representation import AUTO_MIN_COLUMNS, clip_bounds
from causal_mixtures.estimators.standardize import Standardization
from causal_mixtures.exceptions import ConvergenceWarning
from causal_mixtures.mixture.degeneracy import component_ess_chunks, degeneracy_of
from causal_mixtures.mixture.em import params_from_label_chunks, weighted_em_stream
from causal_mixtures.mixture.init import KMEANS_ROWS, nearest_centre, start_labels, user_init
from causal_mixtures.mixture.result import FitResult
from causal_mixtures.weights.core import (
    CausalWeights,
    check_log_weights,
    check_support,
    front_door_log_weights,
    resolve_do,
    resolve_graph,
)
from causal_mixtures.weights.density import (
    ConditionalDensity,
    DiscreteDensity,
    GaussianDensity,
    check_cause_type,
    is_discrete,
    rows_as_codes,
    unique_rows,
)
from causal_mixtures.weights.overlap import check_positivity, overlap_from_shares
from causal_mixtures.weights.psis import pareto_khat, tail_length

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "INIT_ROWS",
    "ChunkedSource",
    "StreamedWeights",
    "fit_stream",
]

#: Rows per chunk of :meth:`ChunkedSource.from_arrays` and :meth:`ChunkedSource.from_csv`.
DEFAULT_CHUNK_ROWS = 65_536
#: Rows (evenly spaced) that the k-means start of an out-of-core fit runs on, with their
#: weights: every row up to this many (then the start is the in-memory fit's), else this
#: many evenly spaced rows. The in-memory k-means subsamples above the same count.
INIT_ROWS = KMEANS_ROWS
#: Distinct classes of the cause, or (cause, mechanism) cells, that the scan counts: more
#: means a continuous variable (or a discrete density that would not fit in memory).
MAX_CELLS = 100_000
#: A float cause or mechanism with at most this many whole-number values is discrete (as
#: :func:`~causal_mixtures.weights.density.is_discrete`).
MAX_LEVELS = 20

Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]


# --------------------------------------------------------------------------- sources
def _rows(a: Any, start: int, stop: int) -> Any:
    return a.iloc[start:stop] if hasattr(a, "iloc") else a[start:stop]


def _columns(value: str | Sequence[str], name: str) -> list[str]:
    cols = [value] if isinstance(value, str) else list(value)
    if not cols or not all(isinstance(c, str) for c in cols):
        raise ValueError(
            f"{name} must be a column name or a non-empty list of column names; got "
            f"{value!r}. Try {name}=['x0', 'x1']."
        )
    return cols


def _check_chunk(chunk: Any, index: int, d: int | None, d_z: int | None) -> Chunk:
    if not isinstance(chunk, tuple | list) or len(chunk) != 3:
        raise TypeError(
            f"chunk {index} of the source must be a tuple (X, y, mechanism) of arrays; got "
            f"{type(chunk).__name__}"
            + (f" of length {len(chunk)}" if isinstance(chunk, tuple | list) else "")
            + ". Yield (X_chunk, y_chunk, z_chunk) from the source."
        )
    X, y, z = chunk
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"X in chunk {index} must be numeric; got {np.asarray(X).dtype}. Encode "
            "categories as numbers before fitting."
        ) from None
    if X.ndim != 2:
        raise ValueError(f"X in chunk {index} must be 2-D (rows, features); got shape {X.shape}.")
    check_finite("X", X)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    z = np.asarray(z)
    if z.ndim == 1:
        z = z.reshape(-1, 1)
    if y.ndim != 1 or len(y) != len(X) or z.ndim != 2 or len(z) != len(X):
        raise ValueError(
            f"chunk {index} must hold one cause value and one mechanism row per row of X: X "
            f"has shape {X.shape}, y {y.shape}, mechanism {z.shape}."
        )
    if d is not None and (X.shape[1] != d or z.shape[1] != d_z):
        raise ValueError(
            f"every chunk must have the columns of the first: chunk 0 had {d} feature(s) and "
            f"{d_z} mechanism column(s), chunk {index} has {X.shape[1]} and {z.shape[1]}."
        )
    if y.dtype.kind in "fc":
        check_finite("y", y)
    if z.dtype.kind in "fc":
        check_finite("mechanism", z)
    return X, y, z


class ChunkedSource:
    """Rows ``(X, y, mechanism)`` read chunk by chunk, a fresh pass at every iteration:
    the input of :meth:`CausalGaussianMixture.fit_stream
    <causal_mixtures.CausalGaussianMixture.fit_stream>`.

    Parameters
    ----------
    chunks : callable or sequence
        A callable returning a fresh iterable of ``(X (c, d), y (c,), mechanism (c,) or
        (c, d_z))`` chunks, in the same order at every call (e.g. a generator function
        reading a file), or a list of such chunks. A one-shot iterator (a generator object)
        is refused: the fit reads the rows several times.

    Notes
    -----
    Every chunk is checked (shapes, finite values) as it is read, and never modified: the
    fit works on its own standardised copies of one chunk at a time.

    Examples
    --------
    >>> import numpy as np, causal_mixtures as cm
    >>> data = cm.datasets.make_classification_2d(1000, random_state=0)
    >>> src = cm.ChunkedSource.from_arrays(data.X, data.y, data.mechanism, chunk_rows=256)
    >>> sum(len(X) for X, _, _ in src)
    1000
    """

    def __init__(self, chunks: Callable[[], Iterable[Any]] | Sequence[Any]) -> None:
        if isinstance(chunks, Iterator):
            raise TypeError(
                "chunks is a one-shot iterator (e.g. a generator object), but the out-of-core "
                "fit reads the rows several times. Pass the generator function itself (a "
                "callable returning a fresh iterator), e.g. ChunkedSource(lambda: read(path)), "
                "or a list of chunks."
            )
        if callable(chunks):
            self._factory = chunks
        elif isinstance(chunks, Sequence):
            seq = chunks
            self._factory = lambda: iter(seq)
        else:
            raise TypeError(
                "chunks must be a callable returning an iterable of (X, y, mechanism) chunks, "
                f"or a list of them; got {type(chunks).__name__}."
            )

    def __iter__(self) -> Iterator[Chunk]:
        d = d_z = None
        for i, chunk in enumerate(self._factory()):
            X, y, z = _check_chunk(chunk, i, d, d_z)
            d, d_z = X.shape[1], z.shape[1]
            if len(X):
                yield X, y, z

    @classmethod
    def from_arrays(
        cls, X: Any, y: Any, mechanism: Any, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> ChunkedSource:
        """Chunks of ``chunk_rows`` rows of arrays (a ``numpy.memmap`` is read one chunk at a
        time, never loaded whole; pandas objects by position).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        mechanism : array-like of shape (n_samples,) or (n_samples, n_mechanism_features)
        chunk_rows : int, default=65536

        Returns
        -------
        ChunkedSource
        """
        chunk_rows = check_int("chunk_rows", chunk_rows)
        n = len(X)
        if len(y) != n or len(mechanism) != n:
            raise ValueError(
                f"X, y and mechanism must have the same number of rows; got {n}, {len(y)} and "
                f"{len(mechanism)}."
            )

        def chunks() -> Iterator[tuple[Any, Any, Any]]:
            for s in range(0, n, chunk_rows):
                yield (_rows(X, s, s + chunk_rows), _rows(y, s, s + chunk_rows),
                       _rows(mechanism, s, s + chunk_rows))

        return cls(chunks)

    @classmethod
    def from_parquet(
        cls, path: str | Path, *, effect: str | Sequence[str], cause: str,
        mechanism: str | Sequence[str], batch_rows: int | None = None,
    ) -> ChunkedSource:
        """The columns of a Parquet file, or of a dataset (a folder of ``.parquet`` files,
        read in sorted order), one row group at a time (or ``batch_rows`` rows at a time)
        with :class:`pyarrow.parquet.ParquetFile`.

        Parameters
        ----------
        path : str or Path
            A Parquet file or a folder of them.
        effect : str or list of str
            The effect (feature) columns.
        cause : str
            The cause column.
        mechanism : str or list of str
            The mechanism column(s).
        batch_rows : int, optional
            Rows per chunk (``ParquetFile.iter_batches``); default: one row group per chunk.

        Returns
        -------
        ChunkedSource
        """
        try:
            import pyarrow.parquet as pq
        except ImportError:  # pragma: no cover - pyarrow is in the dev and parquet extras
            raise ImportError(
                "ChunkedSource.from_parquet needs pyarrow: pip install 'causal-mixtures[parquet]'."
            ) from None
        path = Path(path)
        files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
        if not files or not files[0].exists():
            raise FileNotFoundError(
                f"no Parquet file at {str(path)!r}: pass a .parquet file or a folder of them."
            )
        effect, mech = _columns(effect, "effect"), _columns(mechanism, "mechanism")
        columns = [*effect, cause, *mech]
        names = pq.ParquetFile(files[0]).schema_arrow.names
        missing = [c for c in columns if c not in names]
        if missing:
            raise ValueError(
                f"column(s) {missing} are not in {str(files[0])!r}; its columns are {names}."
            )
        if batch_rows is not None:
            batch_rows = check_int("batch_rows", batch_rows)

        def chunks() -> Iterator[tuple[Any, Any, Any]]:
            for f in files:
                pf = pq.ParquetFile(f)
                parts = (
                    (pf.read_row_group(i, columns=columns) for i in range(pf.num_row_groups))
                    if batch_rows is None
                    else pf.iter_batches(batch_size=batch_rows, columns=columns)
                )
                for part in parts:
                    yield _split(part.to_pandas(), effect, cause, mech)

        return cls(chunks)

    @classmethod
    def from_csv(
        cls, path: str | Path, *, effect: str | Sequence[str], cause: str,
        mechanism: str | Sequence[str], chunk_rows: int = DEFAULT_CHUNK_ROWS, sep: str = ",",
    ) -> ChunkedSource:
        """The columns of a CSV (or other delimited text) file, ``chunk_rows`` rows at a
        time (``pandas.read_csv(chunksize=...)``).

        Parameters
        ----------
        path : str or Path
        effect, cause, mechanism
            Column names, as in :meth:`from_parquet`.
        chunk_rows : int, default=65536
        sep : str, default=","

        Returns
        -------
        ChunkedSource
        """
        import pandas as pd

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {str(path)!r}.")
        effect, mech = _columns(effect, "effect"), _columns(mechanism, "mechanism")
        columns = [*effect, cause, *mech]
        chunk_rows = check_int("chunk_rows", chunk_rows)
        names = list(pd.read_csv(path, sep=sep, nrows=0).columns)
        missing = [c for c in columns if c not in names]
        if missing:
            raise ValueError(f"column(s) {missing} are not in {str(path)!r}; its columns are {names}.")

        def chunks() -> Iterator[tuple[Any, Any, Any]]:
            with pd.read_csv(path, sep=sep, usecols=columns, chunksize=chunk_rows) as reader:
                for frame in reader:
                    yield _split(frame, effect, cause, mech)

        return cls(chunks)


def _split(frame: Any, effect: list[str], cause: str, mechanism: list[str]) -> tuple:
    z = frame[mechanism].to_numpy()
    return frame[effect].to_numpy(dtype=np.float64), frame[cause].to_numpy(), z


def as_source(source: Any) -> ChunkedSource:
    """``source`` as a :class:`ChunkedSource` (a callable or a list of chunks is wrapped)."""
    return source if isinstance(source, ChunkedSource) else ChunkedSource(source)


# --------------------------------------------------------------------------- pass 1: scan
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

    def add(self, a: np.ndarray) -> None:
        if self.centre is None:
            self.centre = a.mean(0)
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
class _Scan:
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
                self.cells.add([(ylev[i // len(zlev), 0].item() if hasattr(ylev[i // len(zlev), 0], "item")
                                 else ylev[i // len(zlev), 0], keys[i % len(zlev)]) for i in nz],
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
        return is_discrete(values, max_levels=MAX_LEVELS)

    def classes(self) -> np.ndarray:
        """The sorted classes of a discrete cause (as ``np.unique(y)``)."""
        assert self.causes.counts is not None
        values = _level_array(((k,) for k in self.causes.counts), self.causes.dtype, 1)
        return unique_rows(values)[0][:, 0]

    def discrete_mechanism(self) -> bool:
        c = self.levels.counts
        if c is None:
            return False
        return is_discrete(_level_array(c, self.levels.dtype, self.d_z), max_levels=MAX_LEVELS)


def _density(est: Any, scan: _Scan, discrete_cause: bool) -> ConditionalDensity:
    """The density of the out-of-core fit, fitted from the scan's statistics."""
    density = est.density
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
    if not isinstance(density, DiscreteDensity | GaussianDensity):
        what = density if isinstance(density, str) else type(density).__name__
        raise ValueError(
            f"density={what!r} is not streamed: the out-of-core fit estimates p(z | y) from "
            "statistics summed over chunks, which density='discrete' (counts per cell: a "
            "discrete mechanism and a discrete cause) and density='gaussian' (means and "
            "covariances, any mechanism, discrete or continuous cause) have"
            + ("; 'auto' here means 'discrete' for a discrete mechanism and cause, 'gaussian' "
               "for a continuous mechanism (a discrete mechanism of a continuous cause would "
               "need 'logistic')" if what == "auto" else "")
            + ". A KDE (the in-memory density='kde') needs every point for its tails, and "
            "'mixture', 'gmm', 'histogram' and 'logistic' are fitted by optimisation on the "
            "rows. Use density='gaussian' or 'discrete', or fit in memory (CausalGaussian"
            "Mixture.fit) on the rows or an evenly spaced subsample of them."
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


# --------------------------------------------------------------------------- pass 2: weights
class _Weigher:
    """The front-door log weights of any chunk under the fitted density."""

    def __init__(self, density: ConditionalDensity, do_values: np.ndarray, discrete_cause: bool) -> None:
        self.density, self.do_values, self.discrete_cause = density, do_values, discrete_cause

    def log_weights(self, y: np.ndarray, z: np.ndarray, first_row: int = 0) -> np.ndarray:
        log_num, log_den = front_door_log_weights(self.density, z, y, self.do_values,
                                                  discrete_cause=self.discrete_cause)
        check_log_weights(log_num, log_den, y, first_row=first_row)
        return log_num - log_den[:, None]  # (c, n_do)


def _keep_positions(n: int, rows: int) -> np.ndarray:
    """Evenly spaced positions of ``rows`` of ``n`` rows (all when ``n <= rows``)."""
    if n <= rows:
        return np.arange(n)
    return np.linspace(0, n - 1, rows).round().astype(np.int64)


@dataclass
class _WeightSums:
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
    def ess_ratio(self) -> np.ndarray:
        """ESS divided by the number of rows, per intervention value."""
        return self.ess / self.n_samples

    @property
    def max_ratio(self) -> np.ndarray:
        """Largest weight divided by the mean weight, per intervention value."""
        return self.max_weight * self.n_samples

    to_frame = CausalWeights.to_frame
    __repr__ = CausalWeights.__repr__


def _reference(
    src: ChunkedSource, weigher: _Weigher, sums: _WeightSums, means: np.ndarray,
    ess: np.ndarray, X_kept: np.ndarray, W_kept: np.ndarray, keep: np.ndarray, n: int,
    do_values: np.ndarray,
) -> WeightedReference:
    """The diagnostics' :class:`WeightedReference` of the weighted rows: two more passes
    (:func:`~causal_mixtures.diagnostics.reference.reference_moments`), the quantiles
    from the rows the in-memory reference reads them from."""
    norm = 1.0 / sums.total

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for X, y, z in src:
            yield X, _chunk_weights(weigher.log_weights(y, z), sums.ref, norm).T

    moments = reference_moments(chunks, means)
    rows = np.searchsorted(keep, _keep_positions(n, QUANTILE_ROWS))
    return reference_from_moments(do_values, ess, means, *moments, X_kept[rows],
                                  W_kept[:, rows].T)


# --------------------------------------------------------------------------- the fit
def _check_supported(est: Any) -> None:
    """Refuse the settings the out-of-core fit does not stream, saying what to use."""
    refusals = [
        (est.inference != "em", f"inference={est.inference!r}", "inference='em'"),
        (est.strategy == "plugin", "strategy='plugin'", "strategy='weighting' (or 'auto', "
         "which means weighting out of core)"),
        (est.weight_smoothing is not None, f"weight_smoothing={est.weight_smoothing!r}",
         "weight_smoothing=None (Pareto smoothing rewrites the largest weights of every "
         "column in place)"),
        (is_per_do(est.n_components), f"n_components={est.n_components!r}",
         "one K for all do values (an int or 'auto')"),
        (not (est.representation is None or est.representation == "auto"),
         "a representation transformer", "representation=None, with the rows transformed "
         "in the source (e.g. by an IncrementalPCA fitted on a subsample)"),
        (not (est.mechanism_representation is None or est.mechanism_representation == "auto"),
         "a mechanism_representation transformer", "mechanism_representation=None, with "
         "the mechanism embedded in the source"),
    ]
    for bad, what, use in refusals:
        if bad:
            raise ValueError(
                f"fit_stream does not support {what}: the out-of-core fit is the weighted EM of "
                f"the front-door CW-GMM from statistics summed over chunks. Use {use}, or fit "
                "in memory with fit()."
            )


def _front_door_estimand(graph: Any) -> Any:
    from causal_mixtures.graph.identify import identify

    estimand = identify(resolve_graph(graph))
    if estimand.kind != "front_door":
        raise ValueError(
            f"fit_stream fits front-door graphs; the graph {graph!r} gives a "
            f"{estimand.kind.replace('_', '-')} estimand, whose weights need covariates or "
            "another density. Use a front-door graph, or fit in memory with fit()."
        )
    return estimand


def _chunk_weights(lw: np.ndarray, ref: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Weights ``exp(lw − ref) · scale`` of a chunk, do values first: (n_do, c)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(lw), np.exp(lw - ref), 0.0).T * scale[:, None]


def fit_stream(est: Any, source: Any, *, do: Any = None) -> Any:
    """The out-of-core fit of a :class:`~causal_mixtures.CausalGaussianMixture`
    (:meth:`~causal_mixtures.CausalGaussianMixture.fit_stream`); see the module."""
    clear_fit(est)
    est._check_params()
    _check_supported(est)
    src = as_source(source)
    estimand = _front_door_estimand(est.graph)
    scan = _Scan()
    for X, y, z in src:
        scan.add(X, y, z)
    if scan.n == 0:
        raise ValueError("the source yielded no rows. Pass a source over at least one chunk.")
    for name, cols, auto in (("representation", scan.d, est.representation),
                             ("mechanism_representation", scan.d_z,
                              est.mechanism_representation)):
        if auto == "auto" and cols > AUTO_MIN_COLUMNS:
            raise ValueError(
                f"{name}='auto' would fit a PCA to the {cols} columns, which needs the rows "
                f"in memory. Pass {name}=None with the rows reduced in the source, or fit in "
                "memory."
            )
    discrete_cause = scan.discrete_cause()
    if discrete_cause and len(scan.causes.counts or {}) < 2:
        raise ValueError(
            "y must take at least two distinct values to define interventions; got a single "
            "value. Mechanism learning contrasts interventions on the cause."
        )
    classes = scan.classes() if discrete_cause else None
    do_values = resolve_do(classes if discrete_cause else np.asarray(scan.y_range), do,
                           discrete_cause=discrete_cause)
    density = _density(est, scan, discrete_cause)
    weigher = _Weigher(density, do_values, discrete_cause)
    n_do, d = len(do_values), scan.d
    centre = scan.rows.mean()  # the weighted moments are taken about the rows' mean
    sums = _WeightSums(n_do, d, scan.n, centre, 0 if classes is None else len(classes))
    class_levels = None if classes is None else classes.reshape(-1, 1)
    keep = np.union1d(_keep_positions(scan.n, INIT_ROWS), _keep_positions(scan.n, QUANTILE_ROWS))
    kept_x, kept_lw, offset = [], [], 0
    for X, y, z in src:
        lw = weigher.log_weights(y, z, offset)
        codes = None if class_levels is None else rows_as_codes(y.reshape(-1, 1), class_levels)[1]
        sums.add(lw, X, codes)
        sel = keep[(keep >= offset) & (keep < offset + len(X))] - offset
        kept_x.append(X[sel])
        kept_lw.append(lw[sel])
        offset += len(X)
    check_support(sums.positive > 0, do_values)
    ess = sums.total**2 / sums.total_sq
    overlap = None
    if discrete_cause:
        counts = np.array([scan.causes.counts[c] for c in classes.tolist()])
        overlap = overlap_from_shares(classes.tolist(), counts, sums.share / sums.total, ess)
        check_positivity(overlap, do_values, est.positivity)
    summary = StreamedWeights(
        do_values, ess,
        np.array([pareto_khat(sums.tail[j], log=True, n=int(sums.positive[j]))
                  for j in range(n_do)]),
        1.0 / sums.total, scan.n, estimand, density, overlap,
    )
    means = centre + sums.s1 / sums.total[:, None]
    std = Standardization.from_moments(centre, means, sums.s2 / sums.total[:, None])
    X_kept, lw_kept = np.concatenate(kept_x), np.concatenate(kept_lw)
    W_kept = _chunk_weights(lw_kept, sums.ref, 1.0 / sums.total)  # (n_do, kept), normalised
    reference = _reference(src, weigher, sums, means, ess, X_kept, W_kept, keep, scan.n,
                           do_values)

    device = resolve_device(est.device)
    dtype = EM_DTYPES[getattr(est, "dtype", "float64")]
    n_init = est.n_init
    init_rows = np.searchsorted(keep, _keep_positions(scan.n, INIT_ROWS))
    X_init = std.data(X_kept[init_rows])
    W_init = W_kept[:, init_rows]
    # The rows' mean in the fit's coordinates: the start's moments are taken about it.
    row_mean = torch.as_tensor(std.means(centre), dtype=dtype, device=device)
    rng = check_random_state(est.random_state)
    norm = 1.0 / sums.total

    def chunks(scale: np.ndarray) -> Iterator[tuple[np.ndarray, torch.Tensor, np.ndarray]]:
        for X, y, z in src:
            w = _chunk_weights(weigher.log_weights(y, z), sums.ref, scale)
            xs = std.data(X)
            yield xs, torch.as_tensor(xs, dtype=dtype, device=device), w

    def fit_k(k: int) -> FitResult:
        like = torch.empty(0, dtype=dtype, device=device)
        reg = std.reg_covar(est.reg_covar, n_init, like)
        params = None
        if est.weights_init is None or est.means_init is None or est.precisions_init is None:
            centres = start_labels(X_init, W_init, k, init_params=est.init_params,
                                   n_init=n_init, rng=rng, centres_only=True)

            def labelled() -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
                for xs, xt, w in chunks(norm):
                    lab = np.stack([nearest_centre(xs, c) for c in centres])
                    yield (xt, torch.as_tensor(lab, device=device),
                           torch.as_tensor(np.tile(w, (n_init, 1)), dtype=dtype, device=device))

            params = params_from_label_chunks(labelled(), row_mean, k, reg,
                                              est.covariance_type)
        init = user_init(
            params, n_do, n_init, k, d, est.covariance_type, dtype, device, est.weights_init,
            None if est.means_init is None else std.means(est.means_init),
            None if est.precisions_init is None else std.precisions(est.precisions_init),
        )
        res = weighted_em_stream(
            lambda: ((xt, np.tile(w, (n_init, 1))) for _, xt, w in chunks(norm)), init,
            reg_covar=reg, tol=est.tol, max_iter=est.max_iter,
        )
        res = best_restart(res, n_init, n_do)
        rows = component_ess_chunks(
            res.mixture,
            ((xt, torch.as_tensor(w, dtype=dtype, device=device)) for _, xt, w in chunks(norm)),
        )
        res.info["reseeded"] = np.zeros(n_do, dtype=bool)
        res.info["dropped"] = np.zeros(n_do, dtype=np.int64)
        res.info["degeneracy"] = degeneracy_of(res.mixture, rows)
        return res

    grid = k_grid(est, ess, None, d, do_values, n_positive=sums.positive)
    res, k, _, grid_info = search_k(est, grid, fit_k, ess, d, do_values)
    res = std.result_to_raw(res, d)
    bic, grid_info = raw_bic(est, res, k, d, ess, grid_info, std)
    store_fit(est, res, summary, k, bic, np.empty((0, d)), None, None, grid_info, None,
              reference=reference)
    est.strategy_ = "weighting"
    est.strategy_reason_ = ("weighting: the out-of-core fit (the plug-in's conditionals need "
                            "the rows in memory)")
    est.representation_ = None
    est.mechanism_representation_ = None
    est.n_representation_features_ = d
    est.score_space_ = "original"
    est.clip_range_ = clip_bounds(est.clip, None, np.stack([scan.x_min, scan.x_max]))
    est.class_counts_ = None
    if discrete_cause:
        observed = np.array([scan.causes.counts.get(v, 0) for v in do_values.tolist()])
        est.class_counts_ = observed if observed.sum() == scan.n else None
    if not bool(res.converged.all()):
        import warnings

        warnings.warn(not_converged_message(est, res, summary), ConvergenceWarning, stacklevel=3)
    return est
