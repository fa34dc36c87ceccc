"""The individual diagnostic checks of a fitted model, and :func:`diagnose`, which runs them.

Weight checks (effective sample size and Pareto k-hat per do value), convergence of the
fitter, R-hat / ESS of a posterior, the weighted posterior-predictive check and the
optional held-out choice of K; each returns :class:`~causal_mixtures.diagnostics.report.Check`
rows. What every check measures and why its thresholds are what they are is in
``docs/diagnostics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from causal_mixtures.diagnostics import arviz as _arviz
from causal_mixtures.diagnostics.fitted import (
    check_X,
    flat_quantities,
    mixture,
    unwrap,
    weights_of,
)
from causal_mixtures.diagnostics.heldout import heldout_loglik
from causal_mixtures.diagnostics.report import Check, DiagnosticsReport, Thresholds, format_value
from causal_mixtures.mixture.params import Mixture, n_parameters
from causal_mixtures.weights.core import CausalWeights

__all__ = [
    "MAX_PPC_DRAWS",
    "PPC_PROBS",
    "diagnose",
    "weight_checks",
    "weighted_quantiles",
]

PPC_PROBS = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_PPC_DRAWS = 200


# --------------------------------------------------------------------------------------
# weighted data summaries


def weighted_quantiles(x: np.ndarray, weights: np.ndarray, probs: Sequence[float]) -> np.ndarray:
    """Weighted quantiles of ``x`` for every weight column.

    The weighted empirical CDF is interpolated linearly between the mid-points of the
    weight of each sorted observation (the weighted analogue of the Hazen definition).

    Parameters
    ----------
    x : ndarray of shape (n,)
    weights : ndarray of shape (n,) or (n, n_do)
        Non-negative; each column is normalised here. Zero-weight rows are ignored.
    probs : sequence of float in [0, 1]

    Returns
    -------
    ndarray of shape (len(probs),) or (n_do, len(probs))
    """
    x = np.asarray(x, dtype=float).reshape(-1)
    w = np.asarray(weights, dtype=float)
    one = w.ndim == 1
    w = w.reshape(len(x), -1)
    p = np.asarray(probs, dtype=float)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    ws = w[order] / w.sum(0)
    mid = np.cumsum(ws, 0) - 0.5 * ws
    out = np.stack(
        [np.interp(p, mid[ws[:, j] > 0, j], xs[ws[:, j] > 0]) for j in range(w.shape[1])]
    )
    return out[0] if one else out


def _weighted_moments(X: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (n_do, d) and covariance (n_do, d, d) of X under every weight column of W."""
    mean = W.T @ X
    cov = np.stack([(W[:, j, None] * (X - mean[j])).T @ (X - mean[j]) for j in range(W.shape[1])])
    return mean, cov


# --------------------------------------------------------------------------------------
# the checks


def _weight_checks(
    cw: CausalWeights,
    n_params: np.ndarray,
    what: str,
    th: Thresholds,
    covariance_type: str | None = None,
) -> list[Check]:
    simpler = {
        "full": "use fewer components or covariance_type='diag'",
        "diag": "use fewer components or covariance_type='spherical'",
        "spherical": "use fewer components",
    }.get(covariance_type or "", "use a simpler model")
    out = []
    for j, v in enumerate(cw.do_values.tolist()):
        ess = float(cw.ess[j])
        ratio = float(cw.ess_ratio[j])
        floor = th.ess_per_parameter * float(n_params[j])
        maxr = float(cw.max_ratio[j])
        ok_ess = ess >= floor
        msg = (
            f"The weights for this do value have an effective sample size of {ess:.1f} rows "
            f"({100 * ratio:.1f} % of {cw.n_samples}; the largest weight is {maxr:.0f} times "
            f"the mean), against a floor of {th.ess_per_parameter:g} x {int(n_params[j])} "
            f"free parameters of {what} = {floor:.0f}."
        )
        remedy = (
            ""
            if ok_ess
            else (
                f"Too few effective rows for this model: {simpler}, drop this intervention "
                "value or move it toward the bulk of the observed cause, smooth the weights "
                "(weight_smoothing='psis') or use a smoother density for p(z | y), or collect "
                "more data."
            )
        )
        out.append(
            Check("weight_ess", v, "pass" if ok_ess else "fail", ess, floor, ">=", msg, remedy)
        )

        k = float(cw.khat[j])
        smoothed = " (before the PSIS smoothing applied to the fit)" if cw.smoothing else ""
        if math.isnan(k):
            status = "warn" if ok_ess else "fail"
            msg = "Pareto k-hat could not be estimated (fewer than ten rows carry weight)."
            remedy = "Use more data or a smoother density for p(z | y)."
        elif k <= th.khat:
            status = "pass"
            msg = f"Pareto k-hat of the weights{smoothed} is {format_value(k, 3)}: " + (
                "the weights are bounded (no tail)."
                if math.isinf(k)
                else "the importance weights are reliable."
            )
            remedy = ""
        else:
            status = "warn" if ok_ess else "fail"
            msg = (
                f"Pareto k-hat of the weights{smoothed} is {k:.2f} > {th.khat:g}: a few rows "
                "dominate, so weighted estimates converge slowly and can change a lot with the "
                "data"
                + (
                    f"; the ESS ({ess:.0f}) is above the floor, so the fit is usable with care."
                    if ok_ess
                    else f", and the ESS ({ess:.1f}) is below the floor ({floor:.0f})."
                )
            )
            remedy = (
                "Try weight_smoothing='psis', a smoother density for p(z | y) "
                "(density='gaussian' or 'kde'), intervention values nearer the bulk of the "
                "observed cause, or more data."
            )
        out.append(Check("weight_khat", v, status, k, th.khat, "<=", msg, remedy))
    return out


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


def _ppc_checks(mix: Mixture, X: np.ndarray, cw: CausalWeights, th: Thresholds) -> list[Check]:
    W = cw.values
    mix = mix.thin(MAX_PPC_DRAWS)
    d_mean, d_cov = _weighted_moments(X, W)
    m_mean, m_cov = mix.predictive_moments()
    d_sd = np.sqrt(np.maximum(np.diagonal(d_cov, axis1=-2, axis2=-1), 1e-300))
    m_sd = np.sqrt(np.maximum(np.diagonal(m_cov, axis1=-2, axis2=-1), 1e-300))
    mean_gap = np.abs(m_mean - d_mean) / d_sd  # (n_do, d)
    sd_gap = np.abs(m_sd / d_sd - 1.0)
    d_corr = d_cov / (d_sd[:, :, None] * d_sd[:, None, :])
    m_corr = m_cov / (m_sd[:, :, None] * m_sd[:, None, :])
    corr_gap = np.abs(m_corr - d_corr).max((-1, -2))  # 0 in 1-D
    probs = np.asarray(PPC_PROBS)
    q = np.stack([weighted_quantiles(X[:, f], W, probs) for f in range(X.shape[1])], axis=1)
    cdf = mix.marginal_cdf(q)  # (n_do, d, P)
    q_gap = np.abs(cdf - probs)
    out = []
    for j, v in enumerate(cw.do_values.tolist()):
        ess = max(float(cw.ess[j]), 1.0)
        se = 1.0 / math.sqrt(ess)  # sd units for a mean; ~ for an sd ratio or a correlation
        parts = {"mean": mean_gap[j].max(), "sd": sd_gap[j].max(), "correlation": corr_gap[j]}
        which = max(parts, key=lambda k: parts[k])
        val = float(parts[which])
        warn_at = max(th.moments, th.mc_se * se)
        fail_at = max(th.moments_fail, th.mc_se_fail * se)
        status = "pass" if val <= warn_at else "warn" if val <= fail_at else "fail"
        f_idx = (
            int(np.argmax(mean_gap[j] if which == "mean" else sd_gap[j]))
            if which != "correlation"
            else None
        )
        where = f" of feature {f_idx}" if f_idx is not None and X.shape[1] > 1 else ""
        out.append(
            Check(
                "ppc_moments",
                v,
                status,
                val,
                warn_at,
                "<=",
                f"The largest gap between the mixture's and the weighted data's moments is in the "
                f"{which}{where}: {val:.3f}"
                + (
                    " data standard deviations."
                    if which == "mean"
                    else " (relative)."
                    if which == "sd"
                    else "."
                ),
                ""
                if status == "pass"
                else (
                    "The mixture does not reproduce the weighted data: check convergence, use more "
                    "components or covariance_type='full'."
                ),
            )
        )
        se_q = 0.5 / math.sqrt(ess)  # binomial sd of a CDF value at p = 0.5
        gap = q_gap[j]
        f_idx, p_idx = np.unravel_index(int(np.argmax(gap)), gap.shape)
        val = float(gap[f_idx, p_idx])
        warn_at = max(th.quantiles, th.mc_se * se_q)
        fail_at = max(th.quantiles_fail, th.mc_se_fail * se_q)
        status = "pass" if val <= warn_at else "warn" if val <= fail_at else "fail"
        out.append(
            Check(
                "ppc_quantiles",
                v,
                status,
                val,
                warn_at,
                "<=",
                f"At the weighted {100 * probs[p_idx]:g} % quantile of feature {int(f_idx)} the "
                f"mixture's CDF is {cdf[j, f_idx, p_idx]:.3f} (gap {val:.3f}).",
                ""
                if status == "pass"
                else (
                    "The mixture's shape misses the weighted data (skew, several modes, heavy "
                    "tails): use more components (n_components='auto') or check the fit with "
                    "plot_ppc."
                ),
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
    return Check(
        "heldout_k",
        None,
        status,
        float(deficit),
        th.heldout_se,
        "<=",
        f"With {cv}-fold weighted cross-validation the held-out weighted log-likelihood is "
        f"best at K = {best_k} (one-standard-error choice K = {one_se}); the fitted K = {k_fit} "
        f"is {deficit:.1f} standard errors (of the paired difference) below it.",
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
    """The ``weight_ess`` and ``weight_khat`` checks of :func:`diagnose` alone (cheap: no
    data, no posterior)."""
    th = thresholds if thresholds is not None else Thresholds()
    model = unwrap(model)
    cw = weights_of(model)
    mix = None if isinstance(model, CausalWeights) else mixture(model)
    d = mix.n_features if mix is not None else getattr(model, "n_features_in_", None)
    n_params, what = _model_size(mix, cw.n_do, d, n_parameters_per_do)
    return _weight_checks(cw, n_params, what, th, mix.covariance_type if mix else None)


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
        The training features the model was fitted on. Needed for the weighted
        posterior-predictive checks and ``cv``; without it those are skipped (and listed in
        ``report.notes``).
    thresholds : Thresholds, optional
        Defaults to :class:`Thresholds` ``()``.
    cv : int, optional
        Number of folds of the held-out weighted log-likelihood check (``heldout_k``); it
        refits the mixture ``cv × len(n_components)`` times, so it is off by default.
    n_components : sequence of int, optional
        Candidates for ``cv``; default ``1 .. K + 2``.
    n_parameters_per_do : int or array-like of shape (n_do,), optional
        Free parameters for the ESS floor. Default: those of the fitted mixture; for a
        model without one (a bootstrap, bare weights) those of one full Gaussian on the
        features (``d + d(d+1)/2``; ``2`` when the number of features is unknown), the
        least a downstream model fitted to the weighted rows needs.
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
    n_params, what = _model_size(mix, cw.n_do, d, n_parameters_per_do)
    # strategy="plugin" samples the front-door formula from fitted conditionals: the causal
    # weights play no part in the mixtures, so neither the weight checks nor a comparison
    # with the weighted data can judge them.
    plugin = getattr(model, "strategy", "weighting") == "plugin"
    if plugin:
        checks = []
        notes.append(
            "strategy='plugin': weight and weighted posterior-predictive checks skipped (the "
            "mixtures are fitted to draws of the front-door formula, not to weighted rows); "
            "check the conditionals instead (model.plugin_)."
        )
    else:
        checks = _weight_checks(cw, n_params, what, th, mix.covariance_type if mix else None)
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
        if plugin:
            pass
        elif X_arr is not None:
            checks += _ppc_checks(mix, X_arr, cw, th)
        else:
            notes.append("posterior-predictive checks skipped: pass the training X to run them.")
        if cv is not None:
            if X_arr is None:
                raise ValueError("cv needs the training data: pass X.")
            checks.append(_heldout_check(model, X_arr, int(cv), n_components, th, random_state))
    elif not isinstance(model, CausalWeights):
        notes.append(f"{type(model).__name__} has no mixture: weight checks only.")

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
