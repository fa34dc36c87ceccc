"""Drawing deconfounded datasets from a fitted CausalGaussianMixture: how many rows per
intervention value (the ``class_balance`` policy), the draws of the point fit or of the
posterior, and their way back through the representation into the data's columns."""

from __future__ import annotations

from typing import Any

import numpy as np

from causal_mixtures.estimators.common import as_frame, draws_per_do
from causal_mixtures.estimators.representation import to_original
from causal_mixtures.mixture.bayes import posterior_predictive

__all__ = [
    "CLASS_BALANCE",
    "class_counts",
    "draw_dataset",
    "draw_posterior_datasets",
    "observed_counts",
]

#: ``class_balance``: ``"balanced"`` (``n_rows // n_do`` draws per do value, the default and
#: the behaviour before the parameter existed) or ``"observed"`` (draws in proportion to the
#: rows of each class in the training data).
CLASS_BALANCE = ("balanced", "observed")


def observed_counts(y: np.ndarray | None, do_values: np.ndarray) -> np.ndarray | None:
    """Rows of each do value among the training causes (``None`` without ``y``, or when the
    do values are not the classes of ``y``: a continuous cause's grid)."""
    if y is None:
        return None
    y = np.asarray(y)
    counts = np.array([int(np.sum(y == d)) for d in do_values.tolist()], dtype=np.int64)
    return counts if counts.sum() == len(y) else None


def _largest_remainder(total: int, share: np.ndarray) -> np.ndarray:
    raw = total * share / share.sum()
    out = np.floor(raw).astype(np.int64)
    rest = total - int(out.sum())
    if rest > 0:
        out[np.argsort(-(raw - out), kind="stable")[:rest]] += 1
    return np.maximum(out, 1)


def class_counts(est: Any, n_rows: int, n_samples: Any) -> np.ndarray:
    """Draws per intervention value: ``n_samples`` when given; otherwise ``n_rows`` in all,
    split by ``class_balance``: equally (``"balanced"``: ``n_rows // n_do`` each) or in the
    proportions of the observed classes (``"observed"``; largest-remainder rounding, at
    least one draw per do value)."""
    n_do = len(est.do_values_)
    if n_samples is not None or getattr(est, "class_balance", "balanced") == "balanced":
        return draws_per_do(n_rows, n_samples, n_do)
    observed = getattr(est, "class_counts_", None)
    if observed is None:
        raise ValueError(
            "class_balance='observed' draws in proportion to the training rows of each class, "
            "but this fit has no classes to count (a continuous cause's do grid, or explicit "
            "weights without y). Use class_balance='balanced' or pass n_samples."
        )
    return _largest_remainder(int(n_rows), np.asarray(observed, dtype=float))


def _original(est: Any, X_new: np.ndarray) -> np.ndarray:
    return to_original(
        getattr(est, "representation_", None), X_new, getattr(est, "clip_range_", None)
    )


def draw_dataset(
    est: Any, counts: np.ndarray, rng: np.random.Generator, template: Any = None
) -> tuple[Any, np.ndarray]:
    """``counts[j]`` draws of do value ``j`` from the fitted mixtures, shuffled, in the
    data's columns (a DataFrame with ``template``'s columns when it has any)."""
    mixture = est.mixture()
    parts = [mixture.sample(int(m), j, rng) for j, m in enumerate(counts)]
    X_new = np.concatenate(parts, axis=0)
    y_new = np.repeat(est.do_values_, counts)
    order = rng.permutation(len(y_new))
    X_new, y_new = X_new[order], y_new[order]
    return as_frame(template, _original(est, X_new)), y_new


def draw_posterior_datasets(
    est: Any, n_datasets: int, counts: np.ndarray, rng: np.random.Generator, device: Any
) -> list[tuple[Any, np.ndarray]]:
    """One dataset per posterior draw chosen at random (``counts`` rows per do value)."""
    posterior = est.mixture()
    n_draws = posterior.n_chains * posterior.n_draws
    chosen = rng.choice(n_draws, size=n_datasets, replace=False)
    obs = posterior_predictive(
        posterior, est.prior_, chosen, int(counts.max()), rng, device
    )  # (n_datasets, n_do, m, d)
    names = getattr(est, "feature_names_in_", None)
    out = []
    for i in range(n_datasets):
        X_new = np.concatenate([obs[i, j, : int(c)] for j, c in enumerate(counts)], axis=0)
        y_new = np.repeat(est.do_values_, counts)
        order = rng.permutation(len(y_new))
        X_new, y_new = _original(est, X_new[order]), y_new[order]
        if names is not None:
            import pandas as pd

            X_new = pd.DataFrame(X_new, columns=list(names))
        out.append((X_new, y_new))
    return out
