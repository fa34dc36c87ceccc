"""What every estimator shares: checking ``fit``'s inputs, estimating the causal weights,
matching a ``do`` value, counting draws per do value, clearing an earlier fit, and giving the
output the user's DataFrame columns, and what to say when a fit did not converge."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from causal_mixtures._validation import as_2d_float, feature_names
from causal_mixtures.mixture.result import FitResult
from causal_mixtures.weights.conditional import BIC_PATIENCE, bic_turned
from causal_mixtures.weights.core import CausalWeights, as_cause, causal_weights
from causal_mixtures.weights.kde import kernel_device

__all__ = [
    "BIC_PATIENCE",
    "bic_turned",
    "as_frame",
    "check_feature_names",
    "check_fit_inputs",
    "clear_fit",
    "draws_per_do",
    "estimate_weights",
    "match_do",
    "not_converged_message",
]


def clear_fit(est: Any) -> None:
    """Drop every fitted attribute (names ending in ``_``, and the private fit state
    ``_fit_*``) so that a refit leaves nothing of the previous fit behind."""
    for name in list(vars(est)):
        if (name.endswith("_") and not name.startswith("__")) or name.startswith("_fit_"):
            delattr(est, name)


def check_fit_inputs(
    X: Any, y: Any, weights: Any
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``X`` as a private float64 copy, ``y`` as a 1-D copy and ``X``'s column names."""
    X_arr = as_2d_float("X", X)
    names = feature_names(X)
    y_arr = None
    if y is not None:
        y_arr = as_cause(y)
        if len(y_arr) != len(X_arr):
            raise ValueError(
                f"X and y must have the same number of rows; got {len(X_arr)} rows in X and "
                f"{len(y_arr)} in y."
            )
    elif weights is None:
        raise ValueError(
            "y (the cause) is required: this estimator requires y to be passed, but the "
            "target y is None. Pass y, or explicit weights=."
        )
    return X_arr, y_arr, names


def estimate_weights(
    graph: Any,
    X: np.ndarray,
    y: np.ndarray | None,
    *,
    mechanism: Any,
    covariates: Any,
    do: Any,
    weights: Any,
    density: Any,
    weight_smoothing: str | None,
    positivity: str = "raise",
    device: Any = None,
) -> CausalWeights:
    """The causal weights of ``(X, y)``: the given ``weights`` (validated) or estimated,
    the exact kernel sums of a KDE on ``device`` (``weights.kde.kernel_device``)."""
    if weights is not None:
        cw = weights if isinstance(weights, CausalWeights) else CausalWeights.from_array(weights, do)
        if cw.n_samples != len(X):
            raise ValueError(
                f"weights must have one row per sample of X ({len(X)}); got {cw.n_samples}."
            )
        return cw
    if y is None:  # pragma: no cover - check_fit_inputs refuses this
        raise ValueError("y (the cause) is required unless explicit weights are given.")
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"y must take at least two distinct values to define interventions; got a "
            f"single value {np.unique(y).tolist()}. Mechanism learning contrasts "
            "interventions on the cause."
        )
    with kernel_device(device):
        return causal_weights(
            graph, X, y, mechanism=mechanism, covariates=covariates, do=do,
            density=density, weight_smoothing=weight_smoothing, positivity=positivity,
        )


def match_do(do: Any, do_values: np.ndarray) -> int:
    """Index of the intervention value ``do`` among the fitted ones."""
    if isinstance(do, np.ndarray) and do.ndim > 0:
        if do.size != 1:
            raise ValueError(f"do must be a single intervention value here; got {do!r}.")
        do = do.reshape(-1)[0]
    for j, v in enumerate(do_values.tolist()):
        if v == do:
            return j
    if isinstance(do, numbers.Real) and do_values.dtype.kind in "fiu":
        close = np.flatnonzero(np.isclose(do_values.astype(float), float(do), rtol=1e-9, atol=1e-12))
        if len(close):
            return int(close[0])
    shown = do_values.tolist() if len(do_values) <= 12 else f"{do_values[:6].tolist()}..."
    raise ValueError(
        f"do={do!r} is not one of the intervention values the model was fitted for: {shown}. "
        "Refit with it included in do=, or pick one of these."
    )


def draws_per_do(n_rows: int, n_samples: Any, n_do: int) -> np.ndarray:
    """Draws per intervention value: ``None`` means ``n_rows // n_do`` each (balanced)."""
    if n_samples is None:
        return np.full(n_do, max(1, n_rows // n_do))
    scalar = isinstance(n_samples, numbers.Integral) and not isinstance(n_samples, bool | np.bool_)
    sequence = (
        isinstance(n_samples, list | tuple | np.ndarray)
        and np.asarray(n_samples).dtype.kind in "iu"
    )
    if not (scalar or sequence):
        raise TypeError(
            f"n_samples must be None, a positive int (draws per intervention value) or "
            f"{n_do} positive ints; got {n_samples!r} (type {type(n_samples).__name__}). "
            "Try n_samples=1000."
        )
    counts = np.asarray(n_samples).reshape(-1)
    if counts.size == 1:
        counts = np.full(n_do, int(counts[0]))
    if counts.size != n_do or np.any(counts < 1) or counts.dtype.kind not in "iu":
        raise ValueError(
            f"n_samples must be None, a positive int (draws per intervention value) or "
            f"{n_do} positive ints; got {n_samples!r}."
        )
    return counts


def check_feature_names(est: Any, X: Any) -> None:
    """Refuse a DataFrame whose columns are not the ones seen in ``fit`` (renamed or
    reordered columns would otherwise be taken by position)."""
    fitted = getattr(est, "feature_names_in_", None)
    cols = getattr(X, "columns", None)
    if fitted is None or cols is None:
        return
    names = [str(c) for c in cols]
    if names != list(fitted):
        raise ValueError(
            "The feature names should match those that were passed during fit: expected "
            f"{list(fitted)}, got {names}. Reorder or rename the columns (X[{list(fitted)}])."
        )


def as_frame(template: Any, X_new: np.ndarray) -> Any:
    """``X_new`` as a DataFrame with ``template``'s columns when it has any."""
    cols = getattr(template, "columns", None)
    if cols is None:
        return X_new
    import pandas as pd

    return pd.DataFrame(X_new, columns=cols)


def not_converged_message(est: Any, res: FitResult, cw: CausalWeights) -> str:
    """What to tell the user when a fit did not converge for some do values."""
    bad = cw.do_values[~res.converged.cpu().numpy()].tolist()
    if est.inference == "em":
        msg = (
            f"weighted EM did not converge for do value(s) {bad} within max_iter="
            f"{est.max_iter} iterations (tol={est.tol}). Increase max_iter or tol, or "
            "check the weights (causal_weights_)."
        )
    elif res.info.get("guide") == "nuts":
        msg = (
            "NUTS had divergent transitions, so its draws may miss parts of the posterior. "
            "Increase n_posterior_draws (longer warm-up), or use an SVI guide."
        )
    else:
        what = "SVI" if est.inference == "svi" else "SVI (posterior)"
        msg = (
            f"{what} did not converge for do value(s) {bad} within n_steps={est.n_steps} "
            f"(tol={est.tol}). Increase n_steps or learning_rate, or check the weights "
            "(causal_weights_)."
        )
    return msg


