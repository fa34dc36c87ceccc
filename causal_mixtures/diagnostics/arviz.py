"""The one adapter between :mod:`causal_mixtures` and ArviZ.

Every ArviZ call of the package lives here, behind four small functions on plain NumPy
arrays and dicts (:func:`from_groups`, :func:`rhat`, :func:`ess`, :func:`psislw_khat`), so
that moving to ArviZ 1.x touches this file only; the mapping and the conventions pinned by
the tests are in ``docs/diagnostics.md``. ArviZ is imported lazily.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from causal_mixtures.weights.psis import tail_length

__all__ = ["ess", "from_groups", "psislw_khat", "rhat"]

#: Groups :func:`from_groups` accepts (the InferenceData schema of ArviZ 0.x, which ignores
#: any other group name given to ``from_dict``).
GROUPS = (
    "posterior",
    "posterior_predictive",
    "sample_stats",
    "observed_data",
    "constant_data",
    "log_likelihood",
)


def _az() -> Any:
    import arviz as az

    return az


def from_groups(
    groups: Mapping[str, Mapping[str, np.ndarray]],
    *,
    dims: Mapping[str, Sequence[str]] | None = None,
    coords: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> Any:
    """Build an ArviZ ``InferenceData`` from plain arrays with ``from_dict``.

    Parameters
    ----------
    groups : mapping of group name to mapping of variable name to ndarray
        Variables of the sample groups (``posterior``, ``posterior_predictive``,
        ``sample_stats``, ``log_likelihood``) have leading ``(chain, draw)`` axes; those of
        ``observed_data`` and ``constant_data`` do not. Empty groups are dropped.
    dims : mapping of variable name to list of dimension names, optional
        Names of the axes after ``(chain, draw)``. A variable name shared by two groups
        must have the same dims in both.
    coords : mapping of dimension name to coordinate values, optional
    attrs : mapping, optional
        Attributes stored on every group.

    Returns
    -------
    arviz.InferenceData
    """
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(
            f"unknown InferenceData group(s) {sorted(unknown)}; expected some of {list(GROUPS)}."
        )
    kwargs = {name: dict(vars_) for name, vars_ in groups.items() if vars_}
    return _az().from_dict(
        **kwargs,
        dims={k: list(v) for k, v in (dims or {}).items()},
        coords=dict(coords or {}),
        attrs=dict(attrs or {}),
    )


def _as_dataset(draws: np.ndarray) -> Any:
    arr = np.asarray(draws, dtype=float)
    if arr.ndim < 2:
        raise ValueError(
            f"draws must have leading (chain, draw) axes; got an array of shape {arr.shape}."
        )
    return _az().convert_to_dataset({"q": arr})


def rhat(draws: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat (Vehtari et al. 2021) of every trailing element.

    Parameters
    ----------
    draws : ndarray of shape (n_chains, n_draws, *shape)
        One chain is allowed: it is split in halves (split R-hat detects drift).

    Returns
    -------
    ndarray of shape ``shape``
        NaN where undefined (a constant quantity, or fewer than 8 draws in one chain).
    """
    arr = np.asarray(draws, dtype=float)
    if arr.ndim < 2:
        raise ValueError(
            f"draws must have leading (chain, draw) axes; got an array of shape {arr.shape}."
        )
    shape = arr.shape[2:]
    if arr.shape[0] == 1:
        # ArviZ 0.23 refuses one chain (it logs a warning and returns NaN). Split R-hat is
        # defined for one chain: cut it in two halves first (ArviZ then splits each again,
        # comparing four quarters, which is slightly stricter).
        half = arr.shape[1] // 2
        arr = np.stack([arr[0, :half], arr[0, half : 2 * half]])
    if arr.shape[1] < 4:
        return np.full(shape, np.nan)
    with np.errstate(all="ignore"):
        out = _az().rhat(_as_dataset(arr), method="rank")["q"].to_numpy()
    return np.asarray(out, dtype=float).reshape(shape)


def ess(draws: np.ndarray, method: str = "bulk") -> np.ndarray:
    """Effective sample size (``method="bulk"`` or ``"tail"``) of every trailing element.

    Parameters
    ----------
    draws : ndarray of shape (n_chains, n_draws, *shape)
    method : {"bulk", "tail"}

    Returns
    -------
    ndarray of shape ``shape``
    """
    if method not in ("bulk", "tail"):
        raise ValueError(f"method must be 'bulk' or 'tail'; got {method!r}.")
    arr = np.asarray(draws, dtype=float)
    if arr.ndim >= 2 and arr.shape[1] < 4:
        return np.full(arr.shape[2:], np.nan)
    with np.errstate(all="ignore"):
        out = _az().ess(_as_dataset(arr), method=method)["q"].to_numpy()
    return np.asarray(out, dtype=float).reshape(arr.shape[2:])


def _has_tail(log_weights: np.ndarray) -> bool:
    """Whether at least five distinct weights lie above the PSIS tail cut-off (the same
    rule as :func:`causal_mixtures.pareto_khat`)."""
    n = len(log_weights)
    m = tail_length(n)
    if m < 5 or n <= m:
        return False
    srt = np.sort(log_weights)
    return int(np.count_nonzero(srt[-m:] > srt[-m - 1])) >= 5


def psislw_khat(weights: np.ndarray, *, log: bool = False) -> float:
    """Pareto ``k̂`` of importance weights computed by ArviZ's PSIS (``az.psislw``).

    The independent cross-check of :func:`causal_mixtures.pareto_khat`, with the same
    conventions: the argument is the weights themselves (or their logarithm with
    ``log=True``), *not* ``-log w``; zero weights are ignored.

    Parameters
    ----------
    weights : array-like of shape (n,)
    log : bool, default=False

    Returns
    -------
    float
        ``k̂``; ``-inf`` when the weights have no tail (bounded weights of a discrete
        mechanism); NaN with fewer than ten positive weights.
    """
    arr = np.asarray(weights, dtype=float).reshape(-1)
    if log:
        lw = arr[np.isfinite(arr)]
    else:
        if np.any(arr < 0) or not np.all(np.isfinite(arr)):
            raise ValueError("weights must be finite and non-negative.")
        lw = np.log(arr[arr > 0])
    if len(lw) < 10:
        return math.nan
    if not _has_tail(lw):
        return -math.inf
    try:
        _, k = _az().psislw(lw - lw.max())  # psislw may edit its input: pass a fresh array
    except (ValueError, FloatingPointError, ZeroDivisionError):  # pragma: no cover - 1.x
        return -math.inf
    k = float(np.asarray(k).reshape(-1)[0])
    return -math.inf if math.isinf(k) else k
