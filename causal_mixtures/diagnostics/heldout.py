"""Held-out weighted log-likelihood per number of components (weighted k-fold).

:func:`heldout_loglik` refits a model on folds dealt so that each gets its share of the
large causal weights, and scores the held-out rows under every do value's mixture.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from causal_mixtures._random import check_random_state
from causal_mixtures.diagnostics.fitted import check_X, unwrap, weights_of
from causal_mixtures.exceptions import ConvergenceWarning, DegenerateFitError

__all__ = ["heldout_loglik"]


def _weighted_folds(W: np.ndarray, n_splits: int, rng: np.random.Generator) -> np.ndarray:
    """Fold of every row such that each fold gets about 1/n_splits of the large weights:
    rows sorted by their largest normalised weight are dealt out in blocks of
    ``n_splits``, each block in a random order."""
    n = W.shape[0]
    key = (W / W.sum(0)).max(1)
    order = np.argsort(-key, kind="stable")
    folds = np.empty(n, dtype=np.int64)
    for start in range(0, n, n_splits):
        block = order[start : start + n_splits]
        folds[block] = rng.permutation(n_splits)[: len(block)]
    return folds


def heldout_loglik(
    model: Any,
    X: Any,
    *,
    n_components: Sequence[int] | None = None,
    n_splits: int = 5,
    random_state: Any = None,
) -> Any:
    """Held-out weighted log-likelihood per number of components (weighted k-fold).

    For each candidate ``K`` and fold, a clone of ``model`` is refitted by EM on the other
    folds with the model's own causal weights (so the weights are not re-estimated), and
    every held-out row is scored under each do value's mixture. The estimate per do value
    is ``Σ_n w̃_n log q_K(x_n)`` over all (held-out) rows, with the self-normalised
    importance-sampling standard error ``sqrt(Σ_n w̃_n² (log q_K(x_n) − L)²)``; the table
    reports their average over do values. Folds are dealt so that each receives about the
    same share of the largest weights.

    Parameters
    ----------
    model : fitted CausalGaussianMixture
    X : array-like of shape (n_samples, n_features)
        The training features.
    n_components : sequence of int, optional
        Candidates; default ``1 .. K + 2`` for the fitted ``K``.
    n_splits : int, default=5
    random_state : int, Generator or None

    Returns
    -------
    pandas.DataFrame
        One row per candidate, with columns ``n_components``, ``heldout_loglik`` (average
        over do values), ``se`` (its standard error), ``se_diff`` (standard error of the
        paired difference from the best candidate: the rows are shared, so differences are
        much more precise than levels), ``heldout_loglik_per_do`` (an array per row) and
        ``supported``: a candidate that some training fold cannot support (fewer effective
        rows than its components need, :class:`~causal_mixtures.DegenerateFitError`) is
        reported with ``supported=False``, a log-likelihood of ``-inf`` and no standard
        errors, and is never the best.

    Raises
    ------
    DegenerateFitError
        When no candidate is supported on the folds.
    """
    import pandas as pd
    from sklearn.base import clone

    model = unwrap(model)
    cw = weights_of(model)
    if not hasattr(model, "means_"):
        raise ValueError("heldout_loglik needs a fitted CausalGaussianMixture.")
    X_arr = check_X(X, cw.n_samples, model.n_features_in_)
    if not isinstance(n_splits, numbers.Integral) or n_splits < 2:
        raise ValueError(f"n_splits must be an int >= 2; got {n_splits!r}.")
    grid = (
        list(n_components) if n_components is not None else list(range(1, model.n_components_ + 3))
    )
    rng = check_random_state(random_state)
    W = cw.values
    folds = _weighted_folds(W, int(n_splits), rng)
    Wn = W / W.sum(0)
    lls, failures = [], []
    for k in grid:
        ll = np.empty_like(W)
        failure = None
        params = {"n_components": int(k)}
        if "inference" in model.get_params():
            params["inference"] = "em"
        for f in range(int(n_splits)):
            test = folds == f
            est = clone(model).set_params(**params)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    est.fit(X_arr[~test], weights=W[~test], do=cw.do_values)
            except DegenerateFitError as exc:
                # A fold has fewer effective rows than all of them: a K the full data
                # support may not fit on it. The candidate is unsupported, not an error.
                failure = exc
                break
            for j, v in enumerate(cw.do_values.tolist()):
                ll[test, j] = est.score_samples(X_arr[test], do=v)
        lls.append(None if failure is not None else ll)
        failures.append(failure)
    if all(f is not None for f in failures):
        raise DegenerateFitError(
            f"no candidate in n_components={grid} can be fitted on {int(n_splits)} folds of "
            f"these rows: {failures[0]}"
        )
    J = W.shape[1]

    def level_and_se(values: np.ndarray) -> tuple[np.ndarray, float, float]:
        per_do = (Wn * values).sum(0)
        se_do = np.sqrt((Wn**2 * (values - per_do) ** 2).sum(0))
        return per_do, float(per_do.mean()), float(np.sqrt((se_do**2).sum()) / J)

    nan = float("nan")
    levels = [None if ll is None else level_and_se(ll) for ll in lls]
    best = int(np.argmax([-np.inf if lv is None else lv[1] for lv in levels]))
    rows = []
    for k, ll, lv in zip(grid, lls, levels, strict=True):
        if lv is None:
            rows.append((int(k), -np.inf, nan, nan, np.full(J, -np.inf), False))
            continue
        per_do, mean, se = lv
        se_diff = level_and_se(lls[best] - ll)[2]
        rows.append((int(k), mean, se, se_diff, per_do, True))
    return pd.DataFrame(
        rows, columns=["n_components", "heldout_loglik", "se", "se_diff",
                       "heldout_loglik_per_do", "supported"],
    )
