"""The checks of a fitted model, and :func:`diagnose`, which runs them.

The data checks (positivity, weights, uncertainty of the answer, posterior-predictive,
cross-check, plug-in conditionals) live in :mod:`causal_mixtures.diagnostics.data_checks`;
here are convergence, R-hat / ESS of a posterior and the optional held-out choice of K.
What every check measures and how its threshold was chosen on the ground-truth calibration
suite is in ``docs/diagnostics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from causal_mixtures.diagnostics import arviz as _arviz
from causal_mixtures.diagnostics.data_checks import (
    MAX_PPC_DRAWS,
    corroboration_bound,
    cross_checks,
    plugin_checks,
    plugin_uncertainty,
    positivity_checks,
    ppc_checks,
    smoothing_adjusted,
    uncertainty_bound,
    uncertainty_checks,
    weight_checks_of,
)
from causal_mixtures.diagnostics.fitted import (
    check_X,
    flat_quantities,
    mixture,
    unwrap,
    weights_of,
)
from causal_mixtures.diagnostics.heldout import heldout_loglik
from causal_mixtures.diagnostics.reference import (
    PPC_PROBS,
    WeightedReference,
    weighted_quantiles,
    weighted_reference,
)
from causal_mixtures.diagnostics.report import Check, DiagnosticsReport, Thresholds
from causal_mixtures.mixture.params import Mixture, n_parameters
from causal_mixtures.weights.core import CausalWeights

__all__ = [
    "MAX_PPC_DRAWS",
    "PPC_PROBS",
    "diagnose",
    "weight_checks",
    "weighted_quantiles",
]


def _convergence_checks(model: Any, do_values: np.ndarray) -> list[Check]:
    conv = getattr(model, "converged_", None)
    if conv is None:
        return []
    conv = np.asarray(conv, dtype=bool).reshape(-1)
    n_iter = np.asarray(getattr(model, "n_iter_", np.full(len(conv), -1))).reshape(-1)
    trace = getattr(model, "lower_bounds_", None)
    inference = str(getattr(model, "inference", "em"))
    is_em = inference == "em"
    limit_name = "max_iter" if is_em else "n_steps"
    limit = float(getattr(model, limit_name, np.nan))
    out = []
    for j, v in enumerate(do_values.tolist()):
        drop = 0.0
        if trace is not None and is_em and np.ndim(trace) == 2 and np.shape(trace)[0] > 1:
            t = np.asarray(trace, dtype=float)[:, j]
            t = t[np.isfinite(t)]
            # EM never decreases its objective; allow rounding (1e-8 relative).
            tol = 1e-8 * (1.0 + np.abs(t[:-1]))
            drops = t[:-1] - t[1:] - tol
            drop = float(max(0.0, drops.max())) if len(drops) else 0.0
        if drop > 0:
            out.append(
                Check(
                    "convergence",
                    v,
                    "warn",
                    drop,
                    0.0,
                    "<=",
                    f"The EM objective decreased by {drop:.3g} during the fit, which EM never does "
                    "in exact arithmetic: a covariance is close to singular.",
                    "Increase reg_covar, use fewer components, or smooth the weights.",
                )
            )
        elif not conv[j]:
            out.append(
                Check(
                    "convergence",
                    v,
                    "warn",
                    float(n_iter[j]),
                    limit,
                    "<=",
                    f"The fitter ({inference}) did not report convergence for this do value "
                    f"(after {int(n_iter[j])} {'iterations' if is_em else 'steps'}).",
                    "Increase max_iter (EM) or n_steps / learning_rate (SVI); for NUTS (divergent "
                    "transitions) use fewer components; or check the weights of this do value.",
                )
            )
        else:
            out.append(
                Check(
                    "convergence",
                    v,
                    "pass",
                    float(n_iter[j]),
                    limit,
                    "<=",
                    f"Converged after {int(n_iter[j])} {'iterations' if is_em else 'steps'}.",
                )
            )
    return out



def _posterior_checks(mix: Mixture, do_values: np.ndarray, th: Thresholds) -> list[Check]:
    q = flat_quantities(mix)
    n_chains = mix.n_chains
    rh = _arviz.rhat(q) if mix.n_draws >= 4 else np.full(q.shape[2:], np.nan)
    ess_b = _arviz.ess(q, "bulk") if mix.n_draws >= 4 else np.full(q.shape[2:], np.nan)
    ess_t = _arviz.ess(q, "tail") if mix.n_draws >= 4 else np.full(q.shape[2:], np.nan)
    out = []
    for j, v in enumerate(do_values.tolist()):
        r = rh[j][np.isfinite(rh[j])]
        if len(r) == 0:
            out.append(
                Check(
                    "rhat",
                    v,
                    "warn",
                    math.nan,
                    th.rhat,
                    "<=",
                    "R-hat is undefined for every label-invariant quantity (constant or too few "
                    "draws).",
                    "Draw more samples.",
                )
            )
        else:
            worst = float(r.max())
            status = "pass" if worst <= th.rhat else "warn" if worst <= th.rhat_fail else "fail"
            out.append(
                Check(
                    "rhat",
                    v,
                    status,
                    worst,
                    th.rhat,
                    "<=",
                    f"The largest R-hat of the interventional mean, covariance and log-density "
                    f"is {worst:.3f}"
                    + (
                        "."
                        if status == "pass"
                        else ": the chains have not mixed, so the posterior draws disagree."
                    ),
                    ""
                    if status == "pass"
                    else (
                        "Run longer chains (more warm-up and draws), start them from the EM fit, "
                        "or use fewer components."
                    ),
                )
            )
        e = np.minimum(ess_b[j], ess_t[j])
        e = e[np.isfinite(e)]
        floor = th.posterior_ess_per_chain * n_chains
        fail_floor = th.posterior_ess_per_chain_fail * n_chains
        if len(e) == 0:
            out.append(
                Check(
                    "posterior_ess",
                    v,
                    "warn",
                    math.nan,
                    floor,
                    ">=",
                    "The posterior ESS is undefined (too few draws).",
                    "Draw more samples.",
                )
            )
            continue
        worst = float(e.min())
        status = "pass" if worst >= floor else "warn" if worst >= fail_floor else "fail"
        out.append(
            Check(
                "posterior_ess",
                v,
                status,
                worst,
                floor,
                ">=",
                f"The smallest bulk / tail ESS of the label-invariant quantities is {worst:.0f} "
                f"over {n_chains} chain(s) of {mix.n_draws} draws.",
                "" if status == "pass" else "Draw more samples per chain, or thin less.",
            )
        )
    return out


def _heldout_check(
    model: Any, X: np.ndarray, cv: int, n_components: Any, th: Thresholds, random_state: Any
) -> Check:
    table = heldout_loglik(
        model, X, n_components=n_components, n_splits=cv, random_state=random_state
    )
    k_fit = int(model.n_components_)
    best_k = int(table.loc[table["heldout_loglik"].idxmax(), "n_components"])
    gap = table["heldout_loglik"].max() - table["heldout_loglik"]
    within = gap <= th.heldout_se * table["se_diff"]
    one_se = int(table.loc[within, "n_components"].min())
    row = table.loc[table["n_components"] == k_fit]
    if len(row) == 0:
        raise ValueError(
            f"n_components must include the fitted K = {k_fit}; got "
            f"{table['n_components'].tolist()}."
        )
    se = float(row["se_diff"].iloc[0])
    g = float(gap[row.index[0]])
    deficit = 0.0 if g == 0 else (g / se if se > 0 else math.inf)
    status = "pass" if deficit <= th.heldout_se else "warn"
    fitted = (
        f"the fitted K = {k_fit} is {deficit:.1f} standard errors (of the paired difference) "
        "below it." if bool(row["supported"].iloc[0]) else
        f"the fitted K = {k_fit} cannot even be fitted on the training folds (too few "
        "effective rows), so it rests on too few rows for its components."
    )
    return Check(
        "heldout_k",
        None,
        status,
        float(deficit),
        th.heldout_se,
        "<=",
        f"With {cv}-fold weighted cross-validation the held-out weighted log-likelihood is "
        f"best at K = {best_k} (one-standard-error choice K = {one_se}); {fitted}",
        "" if status == "pass" else f"Refit with n_components={one_se}.",
    )


def _model_size(
    mix: Mixture | None, n_do: int, d: int | None, override: Any
) -> tuple[np.ndarray, str]:
    """Free parameters per do value for the ESS floor, and a description of the model."""
    if override is not None:
        return np.broadcast_to(np.asarray(override, dtype=float), (n_do,)), "the model"
    if mix is not None:
        p = n_parameters(mix.n_components, mix.n_features, mix.covariance_type)
        what = f"a {mix.n_components}-component {mix.covariance_type} mixture in {mix.n_features}-D"
        return np.full(n_do, p), what
    if d is not None:
        return np.full(n_do, d + d * (d + 1) // 2), f"one Gaussian in {d}-D"
    return np.full(n_do, 2), "one 1-D Gaussian"


def weight_checks(
    model: Any, *, thresholds: Thresholds | None = None, n_parameters_per_do: Any = None
) -> list[Check]:
    """The ``positivity``, ``weight_ess`` and ``weight_khat`` checks of :func:`diagnose`
    alone (cheap: no data, no posterior)."""
    th = thresholds if thresholds is not None else Thresholds()
    model = unwrap(model)
    cw = weights_of(model)
    mix = None if isinstance(model, CausalWeights) else mixture(model)
    d = mix.n_features if mix is not None else getattr(model, "n_features_in_", None)
    n_params, what = _model_size(mix, cw.n_do, d, n_parameters_per_do)
    ref = None if isinstance(model, CausalWeights) else getattr(model, "weighted_reference_", None)
    u = uncertainty_bound(ref) if ref is not None and ref.source == "weighted rows" else None
    return positivity_checks(cw, th) + weight_checks_of(
        cw, n_params, what, th, mix.covariance_type if mix else None, u
    )


def _references(
    model: Any, cw: CausalWeights, X_arr: np.ndarray | None
) -> tuple[WeightedReference | None, WeightedReference | None]:
    """The weighted rows' reference (for the uncertainty of the weighting estimate) and the
    reference the mixture was fitted to (the same, or the plug-in draws')."""
    stored = getattr(model, "weighted_reference_", None)
    plugin_ref = getattr(model, "plugin_reference_", None)
    if X_arr is not None:
        weighted = weighted_reference(X_arr, cw.values, cw.do_values)
    else:
        weighted = stored
    return weighted, plugin_ref if plugin_ref is not None else weighted


def diagnose(
    model: Any,
    X: Any = None,
    *,
    thresholds: Thresholds | None = None,
    cv: int | None = None,
    n_components: Sequence[int] | None = None,
    n_parameters_per_do: Any = None,
    random_state: Any = None,
) -> DiagnosticsReport:
    """Check whether a fitted model can be trusted, per intervention value.

    Parameters
    ----------
    model : CausalGaussianMixture, CausalBootstrap, MechanismLearner or CausalWeights
        A fitted model (a MechanismLearner is diagnosed through its ``resampler_``), or the
        weights alone (weight checks only).
    X : array-like of shape (n_samples, n_features), optional
        The training features. Not needed for a model fitted by this package (it keeps the
        weighted summaries the checks need, ``weighted_reference_``); needed for ``cv``
        and for bare weights.
    thresholds : Thresholds, optional
        Defaults to :class:`Thresholds` ``()``, the operating point chosen on the
        calibration suite.
    cv : int, optional
        Number of folds of the held-out weighted log-likelihood check (``heldout_k``); it
        refits the mixture ``cv × len(n_components)`` times, so it is off by default.
    n_components : sequence of int, optional
        Candidates for ``cv``; default ``1 .. K + 2``.
    n_parameters_per_do : int or array-like of shape (n_do,), optional
        Free parameters for the ESS floor. Default: those of the fitted mixture; for a
        model without one (a bootstrap, bare weights) those of one full Gaussian on the
        features (``d + d(d+1)/2``; ``2`` when the number of features is unknown).
    random_state : int, Generator or None
        Fold assignment of ``cv``.

    Returns
    -------
    DiagnosticsReport
    """
    th = thresholds if thresholds is not None else Thresholds()
    model = unwrap(model)
    cw = weights_of(model)
    mix = None if isinstance(model, CausalWeights) else mixture(model)
    notes: list[str] = []
    d = mix.n_features if mix is not None else getattr(model, "n_features_in_", None)
    X_arr = check_X(X, cw.n_samples, d) if X is not None else None
    if d is None and X_arr is not None:
        d = X_arr.shape[1]
    names = getattr(model, "feature_names_in_", None)
    n_params, what = _model_size(mix, cw.n_do, d, n_parameters_per_do)
    strategy = getattr(model, "strategy_", getattr(model, "strategy", "weighting"))
    plugin = strategy == "plugin"
    weighted, fitted_to = (None, None) if isinstance(model, CausalWeights) else _references(
        model, cw, X_arr
    )
    checks = positivity_checks(cw, th, plugin=plugin)
    if plugin:
        # The mixtures are fitted to draws of the front-door formula: the weights play no
        # part in them. The plug-in's own conditionals, and the cross-check against the
        # weighting estimate, judge the answer instead.
        checks += plugin_checks(getattr(model, "plugin_check_", None), th, names=names)
        if fitted_to is not None:
            checks += uncertainty_checks(
                plugin_uncertainty(fitted_to, getattr(model, "plugin_check_", None),
                                   cw.n_samples), th, names=names, strategy="plugin")
        if getattr(model, "plugin_check_", None) is None:
            notes.append("strategy='plugin': the conditionals' check (plugin_fit) is missing; "
                         "refit the model.")
    else:
        bounded = smoothing_adjusted(weighted, cw) if weighted is not None else None
        u = uncertainty_bound(bounded) if bounded is not None else None
        vouched = corroboration_bound(getattr(model, "cross_check_", None))
        checks += weight_checks_of(cw, n_params, what, th,
                                   mix.covariance_type if mix else None, u, vouched)
        if bounded is not None:
            checks += uncertainty_checks(bounded, th, names=names, strategy=strategy,
                                         corroborated=vouched,
                                         tailed=np.isfinite(np.asarray(cw.khat, float)))
        else:
            notes.append("mean_uncertainty skipped: pass the training X (bare weights).")
    checks += cross_checks(getattr(model, "cross_check_", None), th, names=names)
    do_values = np.asarray(cw.do_values)
    if mix is not None:
        if mix.n_do != cw.n_do:
            raise ValueError(
                f"the model has {mix.n_do} mixtures but {cw.n_do} weight columns; refit it."
            )
        checks += _convergence_checks(model, do_values)
        if mix.is_posterior:
            guide = getattr(model, "guide_", None)
            if guide is None or guide == "nuts":
                checks += _posterior_checks(mix, do_values, th)
            else:
                notes.append(
                    f"R-hat and posterior ESS skipped: the posterior draws are independent "
                    f"draws from a variational guide ({guide!r}), which cannot fail to mix; "
                    "these checks cannot judge how well the variational family fits."
                )
        if fitted_to is not None:
            checks += ppc_checks(mix, fitted_to, th, names=names)
        else:
            notes.append("posterior-predictive checks skipped: pass the training X to run them.")
        if cv is not None:
            if X_arr is None:
                raise ValueError("cv needs the training data: pass X.")
            checks.append(_heldout_check(model, X_arr, int(cv), n_components, th, random_state))
    elif not isinstance(model, CausalWeights):
        notes.append(f"{type(model).__name__} has no mixture: no posterior-predictive checks.")

    # Order: per do value, then the model-wide checks.
    order = {v: i for i, v in enumerate(do_values.tolist())}
    checks.sort(key=lambda c: (c.do is None, order.get(c.do, 0) if c.do is not None else 0))
    title = _title(model, cw, mix)
    return DiagnosticsReport(checks, title=title, notes=notes)


def _title(model: Any, cw: CausalWeights, mix: Mixture | None) -> str:
    name = type(model).__name__
    bits = [f"{cw.n_samples} rows", f"{cw.n_do} do value{'s' if cw.n_do != 1 else ''}"]
    if mix is not None:
        bits.insert(0, f"K={mix.n_components}, {mix.covariance_type}")
        if mix.is_posterior:
            bits.append(f"posterior {mix.n_chains} x {mix.n_draws}")
    if cw.smoothing:
        bits.append(f"{cw.smoothing}-smoothed weights")
    return f"{name} ({', '.join(bits)})"
