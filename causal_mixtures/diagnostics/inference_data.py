"""A fitted model as ArviZ data: :func:`to_inference_data` builds an ``InferenceData``
(posterior, sample stats, predictive draws, causal weights, observed data) and
:func:`posterior_summary` tabulates R-hat and ESS of a Bayesian fit's label-invariant
quantities. The ArviZ calls themselves live in :mod:`causal_mixtures.diagnostics.arviz`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from causal_mixtures._random import check_random_state
from causal_mixtures.diagnostics import arviz as _arviz
from causal_mixtures.diagnostics.fitted import (
    N_PROBE_AXES,
    check_X,
    current_posterior,
    feature_names,
    flat_quantities,
    mixture,
    posterior_mixture,
    unwrap,
    weights_of,
)
from causal_mixtures.mixture.params import Mixture

__all__ = ["posterior_summary", "to_inference_data"]


def to_inference_data(
    model: Any,
    X: Any = None,
    y: Any = None,
    *,
    n_draws: int = 500,
    random_state: Any = None,
) -> Any:
    """Convert a fitted model to an ArviZ ``InferenceData`` (through ``from_dict``).

    Groups (dimension names in brackets; ``chain`` and ``draw`` lead every variable of the
    sample groups):

    ``posterior`` (Bayesian fits only, from ``model.posterior_``)
        ``weights`` [do, component], ``means`` [do, component, feature], ``covariances``
        [do, component, feature, feature_bis] (full), [do, component, feature] (diag),
        [do, component] (spherical); and the label-invariant ``interventional_mean``
        [do, feature] and ``interventional_cov`` [do, feature, feature_bis], the quantities
        to run ``az.summary`` on (raw component parameters switch labels).
    ``sample_stats``
        Point fits: ``objective`` [iteration, do] (the fitter's objective trace;
        [iteration] when the fitter has a single objective for all do values),
        ``converged`` [do], ``n_iter`` [do], with ``chain = draw = 1``. Bayesian fits: the
        arrays of ``model.sample_stats_`` when the fitter provides them.
    ``posterior_predictive``
        ``X_do`` [do, feature]: one draw of ``x ~ q(x | do(y))`` per (chain, draw) and do value;
        for a point fit ``n_draws`` independent draws (``chain = 1``).
    ``constant_data``
        ``causal_weights`` [do, row] (each do value's weights sum to one), ``weight_ess``
        [do], ``weight_khat`` [do]. (The ArviZ 0.x schema has no free-form group:
        ``from_dict`` drops unknown group names, so the weights, inputs of the weighted
        likelihood, live in ``constant_data``.)
    ``observed_data`` (when ``X`` is given)
        ``X`` [row, feature] and, when given, ``y`` [row]. The predictive draws are named
        ``X_do``, not ``X``, on purpose: they are interventional while the observed ``X`` is
        confounded, so they must be compared with the weights
        (:func:`~causal_mixtures.diagnostics.plots.plot_ppc`), never by ``az.plot_ppc``.

    Parameters
    ----------
    model : fitted CausalGaussianMixture (or MechanismLearner)
    X : array-like of shape (n_samples, n_features), optional
        The training features.
    y : array-like of shape (n_samples,), optional
        The training cause.
    n_draws : int, default=500
        Posterior-predictive draws per do value of a point fit.
    random_state : int, Generator or None
        Source of the posterior-predictive draws.

    Returns
    -------
    arviz.InferenceData
        Saved with ``.to_netcdf(path)`` (needs ``h5netcdf`` or ``netCDF4``).
    """
    model = unwrap(model)
    cw = weights_of(model)
    mix = mixture(model)
    if mix is None:
        raise ValueError(
            f"{type(model).__name__} has no fitted mixture; to_inference_data needs a fitted "
            "CausalGaussianMixture."
        )
    if not isinstance(n_draws, numbers.Integral) or n_draws < 1:
        raise ValueError(f"n_draws must be a positive int; got {n_draws!r}.")
    rng = check_random_state(random_state)
    d = mix.n_features
    names = feature_names(model, d)
    do_values = np.asarray(model.do_values_)
    coords: dict[str, Any] = {
        "do": do_values,
        "component": np.arange(mix.n_components),
        "feature": names,
        "feature_bis": names,
        "row": np.arange(cw.n_samples),
    }
    dims: dict[str, list[str]] = {
        "weights": ["do", "component"],
        "means": ["do", "component", "feature"],
        "covariances": {
            "full": ["do", "component", "feature", "feature_bis"],
            "diag": ["do", "component", "feature"],
            "spherical": ["do", "component"],
        }[mix.covariance_type],
        "interventional_mean": ["do", "feature"],
        "interventional_cov": ["do", "feature", "feature_bis"],
        "objective": ["iteration", "do"],
        "converged": ["do"],
        "n_iter": ["do"],
        "X_do": ["do", "feature"],
        "causal_weights": ["do", "row"],
        "weight_ess": ["do"],
        "weight_khat": ["do"],
    }
    groups: dict[str, dict[str, np.ndarray]] = {}
    if mix.is_posterior:
        mean, cov = mix.moments()
        groups["posterior"] = {
            "weights": mix.weights,
            "means": mix.means,
            "covariances": mix.covariances,
            "interventional_mean": mean,
            "interventional_cov": cov,
        }
        stats = getattr(model, "sample_stats_", None) or {}
        groups["sample_stats"] = {k: np.asarray(v) for k, v in stats.items()}
        predictive = mix.sample_each(rng)
    else:
        stats = {}
        trace = getattr(model, "lower_bounds_", None)
        if trace is not None:
            trace = np.asarray(trace, dtype=float)
            coords["iteration"] = np.arange(trace.shape[0])
            stats["objective"] = trace[None, None]
            if trace.ndim == 1:  # one objective for all do values (an ELBO)
                dims["objective"] = ["iteration"]
        if getattr(model, "converged_", None) is not None:
            stats["converged"] = np.asarray(model.converged_, dtype=bool)[None, None]
        if getattr(model, "n_iter_", None) is not None:
            stats["n_iter"] = np.asarray(model.n_iter_, dtype=np.int64)[None, None]
        groups["sample_stats"] = stats
        reps = Mixture(
            np.broadcast_to(mix.weights, (1, n_draws, *mix.weights.shape[2:])),
            np.broadcast_to(mix.means, (1, n_draws, *mix.means.shape[2:])),
            np.broadcast_to(mix.covariances, (1, n_draws, *mix.covariances.shape[2:])),
            mix.covariance_type,
            False,
        )
        predictive = reps.sample_each(rng)
    groups["posterior_predictive"] = {"X_do": predictive}
    groups["constant_data"] = {
        "causal_weights": np.ascontiguousarray(cw.values.T),
        "weight_ess": np.asarray(cw.ess, dtype=float),
        "weight_khat": np.asarray(cw.khat, dtype=float),
    }
    if X is not None:
        X_arr = check_X(X, cw.n_samples, d)
        observed = {"X": X_arr}
        dims["X"] = ["row", "feature"]
        if y is not None:
            y_arr = np.asarray(y).reshape(-1)
            if len(y_arr) != cw.n_samples:
                raise ValueError(
                    f"y must have one entry per training row ({cw.n_samples}); got {len(y_arr)}."
                )
            observed["y"] = y_arr
            dims["y"] = ["row"]
        groups["observed_data"] = observed
    attrs = {
        "model": type(model).__name__,
        "covariance_type": mix.covariance_type,
        "inference": str(getattr(model, "inference", "em")),
        "weight_smoothing": str(cw.smoothing),
    }
    idata = _arviz.from_groups(groups, dims=dims, coords=coords, attrs=attrs)
    return idata


def posterior_summary(model: Any) -> Any:
    """R-hat and bulk / tail ESS of the label-invariant quantities of a Bayesian fit.

    Parameters
    ----------
    model : fitted CausalGaussianMixture with a ``posterior_``

    Returns
    -------
    pandas.DataFrame
        One row per (do value, quantity), with columns ``do``, ``quantity``, ``mean``,
        ``sd``, ``rhat``, ``ess_bulk``, ``ess_tail``.
    """
    import pandas as pd

    model = unwrap(model)
    post = current_posterior(model)
    if post is None:
        raise ValueError(
            "model has no posterior_: posterior diagnostics need a Bayesian fit "
            "(inference='bayes')."
        )
    mix = posterior_mixture(model, post)
    q = flat_quantities(mix)
    d = mix.n_features
    names = feature_names(model, d)
    iu = np.triu_indices(d)
    labels = (
        [f"mean[{n}]" for n in names]
        + [f"cov[{names[a]},{names[b]}]" for a, b in zip(*iu, strict=True)]
        + ["log_q(mean)"]
        + [f"log_q(mean+sd*pc{i + 1})" for i in range(min(d, N_PROBE_AXES))]
        + [f"log_q(mean-sd*pc{i + 1})" for i in range(min(d, N_PROBE_AXES))]
    )
    rh = _arviz.rhat(q)
    eb = _arviz.ess(q, "bulk")
    et = _arviz.ess(q, "tail")
    do_values = np.asarray(model.do_values_)
    rows = []
    for j, v in enumerate(do_values.tolist()):
        for i, lab in enumerate(labels):
            vals = q[:, :, j, i]
            rows.append(
                (
                    v,
                    lab,
                    float(vals.mean()),
                    float(vals.std()),
                    float(rh[j, i]),
                    float(eb[j, i]),
                    float(et[j, i]),
                )
            )
    return pd.DataFrame(
        rows, columns=["do", "quantity", "mean", "sd", "rhat", "ess_bulk", "ess_tail"]
    )
