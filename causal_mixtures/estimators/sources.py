"""Sources of rows read chunk by chunk, for the out-of-core fit
(:meth:`CausalGaussianMixture.fit_stream <causal_mixtures.CausalGaussianMixture.fit_stream>`):
:class:`ChunkedSource` over arrays (a NumPy memmap is never loaded whole), a Parquet file or
dataset read by row groups, a CSV file read by pandas chunks, or any re-iterable of
``(X, y, mechanism)`` chunks. Details: ``docs/out_of_core.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from causal_mixtures._validation import check_finite, check_int

__all__ = ["DEFAULT_CHUNK_ROWS", "Chunk", "ChunkedSource", "as_source"]

#: Rows per chunk of :meth:`ChunkedSource.from_arrays` and :meth:`ChunkedSource.from_csv`.
DEFAULT_CHUNK_ROWS = 65_536

Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]


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
