"""The fitted model seen as arrays, for the diagnostics.

Finds the fitted mixture of a model (point fit or posterior draws) as a
:class:`~causal_mixtures.mixture.params.Mixture`, its causal weights, its feature names, and
validates the training data passed back for checking. Also the label-invariant quantities
of a mixture (interventional moments and log-densities at probe points), the only ones on
which R-hat and ESS of a posterior mean anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from causal_mixtures.mixture.params import COVARIANCE_TYPES, Mixture
from causal_mixtures.weights.core import CausalWeights

__all__ = [
    "N_PROBE_AXES",
    "check_X",
    "current_posterior",
    "feature_names",
    "flat_quantities",
    "label_invariant_draws",
    "mixture",
    "posterior_mixture",
    "unwrap",
    "weights_of",
]


def posterior_mixture(model: Any, post: dict[str, Any]) -> Mixture:
    ct = getattr(model, "covariance_type", "full")
    missing = [k for k in ("weights", "means", "covariances") if k not in post]
    if missing:
        raise ValueError(
            f"model.posterior_ must hold 'weights', 'means' and 'covariances' arrays with "
            f"leading (chain, draw) axes; {missing} missing."
        )
    w = np.asarray(post["weights"], dtype=float)
    m = np.asarray(post["means"], dtype=float)
    c = np.asarray(post["covariances"], dtype=float)
    tail = {"full": 3, "diag": 2, "spherical": 1}[ct]
    if w.ndim != 4 or m.ndim != 5 or c.ndim != 3 + tail or c.shape[:4] != w.shape:
        raise ValueError(
            "model.posterior_ has inconsistent shapes: expected weights (chain, draw, n_do, "
            f"K), means (..., K, d) and covariances for covariance_type={ct!r}; got "
            f"{w.shape}, {m.shape}, {c.shape}."
        )
    return Mixture(w, m, c, ct, is_posterior=True)


def current_posterior(model: Any) -> dict[str, Any] | None:
    """``model.posterior_``: every fit clears the previous fit's attributes, so a posterior
    is present exactly when the last fit was Bayesian."""
    return getattr(model, "posterior_", None)


def mixture(model: Any) -> Mixture | None:
    """The model's mixture parameters, or ``None`` when it has none (a bootstrap)."""
    post = current_posterior(model)
    if post is not None:
        return posterior_mixture(model, post)
    if not hasattr(model, "means_"):
        return None
    ct = model.covariance_type
    if ct not in COVARIANCE_TYPES:  # pragma: no cover - validated by the estimator
        raise ValueError(f"unknown covariance_type {ct!r}")
    return Mixture(
        np.asarray(model.weights_, dtype=float),
        np.asarray(model.means_, dtype=float),
        np.asarray(model.covariances_, dtype=float),
        ct,
    ).with_draw_axes()


def unwrap(model: Any) -> Any:
    """A MechanismLearner is diagnosed through its fitted resampler."""
    inner = getattr(model, "resampler_", None)
    return inner if inner is not None else model


def weights_of(model: Any) -> CausalWeights:
    if isinstance(model, CausalWeights):
        return model
    cw = getattr(model, "causal_weights_", None)
    if cw is None:
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(
            f"{type(model).__name__} has no causal_weights_: diagnose a fitted "
            "CausalGaussianMixture, CausalBootstrap or MechanismLearner (call fit first), or "
            "a CausalWeights object."
        )
    return cw


def check_X(X: Any, n: int, d: int | None) -> np.ndarray:
    arr = np.array(X, dtype=np.float64, copy=True)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(
            f"X must be the training data the model was fitted on, of shape ({n}, "
            f"{d if d is not None else 'n_features'}); got shape {arr.shape}."
        )
    if d is not None and arr.shape[1] != d:
        raise ValueError(f"X has {arr.shape[1]} features, but the model was fitted with {d}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError("X must contain only finite values.")
    return arr


def feature_names(model: Any, d: int) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    if names is not None and len(names) == d:
        return [str(n) for n in names]
    return [f"x{j}" for j in range(d)]



# --------------------------------------------------------------------------------------
# label-invariant quantities


N_PROBE_AXES = 2


def _probe_points(mix: Mixture) -> np.ndarray:
    """Label-invariant probe points per do value: the predictive mean, and the mean plus or
    minus one standard deviation along the (up to) two leading principal axes of the
    predictive covariance. Shape (n_do, 1 + 2 min(d, 2), d)."""
    mean, cov = mix.predictive_moments()
    vals, vecs = np.linalg.eigh(cov)  # ascending
    m = min(mix.n_features, N_PROBE_AXES)
    axes = vecs[..., ::-1][..., :m] * np.sqrt(np.maximum(vals[..., ::-1][..., :m], 0.0))[:, None, :]
    steps = np.concatenate([np.swapaxes(axes, -1, -2), -np.swapaxes(axes, -1, -2)], axis=1)
    return np.concatenate([mean[:, None, :], mean[:, None, :] + steps], axis=1)


def label_invariant_draws(mix: Mixture) -> dict[str, np.ndarray]:
    """Quantities that do not change when components are relabelled, per draw:
    ``interventional_mean`` (C, D, n_do, d), ``interventional_cov`` (C, D, n_do, d, d) and
    ``log_density`` at probe points (C, D, n_do, 1 + 2 min(d, 2)): the predictive mean and
    ± one standard deviation along the leading principal axes."""
    mean, cov = mix.moments()
    return {
        "interventional_mean": mean,
        "interventional_cov": cov,
        "log_density": mix.log_prob_at(_probe_points(mix)),
    }


def flat_quantities(mix: Mixture) -> np.ndarray:
    """Label-invariant quantities, flattened per do value: (C, D, n_do, m)."""
    q = label_invariant_draws(mix)
    c, dr, j, d = q["interventional_mean"].shape
    iu = np.triu_indices(d)
    cov = q["interventional_cov"][..., iu[0], iu[1]]
    return np.concatenate([q["interventional_mean"], cov, q["log_density"]], axis=-1)
