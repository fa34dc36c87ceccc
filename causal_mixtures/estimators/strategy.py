"""``strategy="auto"``: the weighting or the plug-in estimator, chosen from the data.

Both estimate ``p(x | do(y))`` under the front door, with errors from different places:
the weighting estimator's from the importance weights (too few effective rows, heavy
tails, a wrong weight density), the plug-in's from its fitted conditionals ``p(z | y)`` and
``p(x | y', z)`` (misspecification). ``choose_strategy`` fits the plug-in's conditionals
next to the weights and measures

* the weights' health: positivity, the uncertainty of the weighted interventional mean
  and sd (``mean_uncertainty``), Pareto ``k̂`` where that uncertainty is already large;
* the conditionals' fit: the observational ``p(x | y)`` they imply against the data
  (``plugin_fit``);
* the agreement of the two estimates of every interventional mean (``cross_check``);

with the thresholds of :class:`~causal_mixtures.diagnostics.Thresholds` (the calibrated
gate). For a discrete cause it takes weighting when the weights pass (it assumes nothing
about ``p(x | y, z)``; where the plug-in disagrees the failed ``cross_check`` stays in the
report), the plug-in when the weights fail and its conditionals pass, and weighting, with a
failing report, when neither passes; and the plug-in where the passing weights leave the
answer imprecise while a plug-in that passes and agrees with them is markedly more precise
(its bootstrap bound, :func:`_more_precise_plugin`). Positivity is not a reason to switch:
where it fails the plug-in would extrapolate ``p(x | y', z)`` to mechanism values never observed with
``y'`` (one model per class, nothing shared between them), so it is not eligible. For a
continuous cause it takes the plug-in whenever its conditionals reproduce the observed
``p(x | y)``: its outcome model is smooth in ``y'``, and on the calibration suite it was
the more accurate of the two; the weights referee ``cross_check``, and where the plug-in's
positivity rule fails (an extrapolation) the report fails the fit. The choice and its
reason are recorded (``strategy_``, ``strategy_reason_``). Details: ``docs/estimators.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from causal_mixtures._random import RandomState
from causal_mixtures.diagnostics.data_checks import (
    HIGH_DIM,
    cross_checks,
    plugin_checks,
    plugin_uncertainty,
    positivity_checks,
    smoothing_adjusted,
    uncertainty_bound,
)
from causal_mixtures.diagnostics.reference import (
    PPC_PROBS,
    WeightedReference,
    weighted_reference,
)
from causal_mixtures.diagnostics.report import Thresholds
from causal_mixtures.estimators.fitting import fit_plugin_sampler
from causal_mixtures.estimators.plugin_uncertainty import (
    CROSS_CHECK_DRAWS,
    plugin_bootstrap,
    plugin_means,
)
from causal_mixtures.estimators.representation import AUTO_MIN_COLUMNS
from causal_mixtures.exceptions import DegenerateFitError, PositivityError
from causal_mixtures.weights.core import CausalWeights, as_mechanism
from causal_mixtures.weights.density import is_discrete
from causal_mixtures.weights.overlap import cause_strata

__all__ = [
    "CROSS_CHECK_DRAWS",
    "STRATEGIES",
    "StrategyChoice",
    "auxiliary_rng",
    "choose_strategy",
    "cross_check_record",
    "plugin_cross_check",
    "plugin_fit_record",
    "plugin_means",
    "resolve_strategy",
    "store_strategy",
]

STRATEGIES = ("auto", "weighting", "plugin")

#: ``strategy="auto"`` fits the plug-in of its checks on at most this many rows (a seeded
#: subsample; a chosen plug-in is refitted on every row).
PLUGIN_CHECK_ROWS = 10_000

#: Above this many effect features the plug-in is neither a candidate of ``strategy="auto"``
#: nor a referee of heavy-tailed weights: its mixture regression models the joint of every
#: feature with the mechanism, full covariances of (d + dim z)², so its cost grows as d³.
#: Measured on the 64 × 64 images of ``bench_images`` (4096 features, 2400 rows): the
#: referee took the causal bootstrap from 5 s and 248 MiB to 278 s and 6.1 GB. It is the
#: column count above which ``representation="auto"`` fits the effect in a PCA, where the
#: plug-in is not tried either (the ``representation`` branch of :func:`resolve_strategy`).
PLUGIN_MAX_FEATURES = AUTO_MIN_COLUMNS


@dataclass
class StrategyChoice:
    """The outcome of :func:`choose_strategy`."""

    strategy: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


def cross_check_record(
    names: tuple[str, str], do_values: np.ndarray, means: tuple[np.ndarray, np.ndarray],
    ses: tuple[np.ndarray, np.ndarray], sd: np.ndarray, other_ok: bool = True,
    other_imprecise: bool = False,
) -> dict[str, Any]:
    """The mapping :func:`~causal_mixtures.diagnostics.data_checks.cross_checks` reads: the
    fit's own estimate first, the other second, and whether the other passes its own
    checks (only then can a disagreement fail the fit)."""
    return {"names": names, "do_values": np.asarray(do_values), "mean": means, "se": ses,
            "sd": sd, "other_ok": bool(other_ok),
            "other_imprecise": bool(other_imprecise) and not other_ok}


def plugin_fit_record(
    plugin: Any, X: np.ndarray, y: np.ndarray, rng: np.random.Generator, *,
    discrete_cause: bool, covariates: np.ndarray | None = None,
) -> dict[str, Any]:
    """The plug-in's posterior-predictive check of the observational data: for every row
    draw ``z̃ ~ p(z | y_n)`` and ``x̃ ~ p(x | y_n, z̃)`` from the fitted conditionals, and
    compare the mean and sd of ``x̃`` with those of ``x`` per stratum of the cause. The
    mapping is what :func:`~causal_mixtures.diagnostics.data_checks.plugin_checks` reads."""
    x_sim = plugin.sample_observational(y, rng, covariates=covariates)
    strata, codes = cause_strata(y, discrete_cause=discrete_cause)
    k = len(strata)
    d = X.shape[1]
    out = {k_: np.zeros((k, d)) for k_ in ("data_mean", "model_mean", "data_sd", "model_sd",
                                          "se")}
    probs = np.asarray(PPC_PROBS)
    out["data_quantiles"] = np.zeros((k, d, len(probs)))
    out["model_cdf"] = np.zeros((k, d, len(probs)))
    # The data's CDF at its own quantile is an interval where the feature has an atom (a
    # clipped pixel that is often exactly 0): [P(X < q), P(X <= q)].
    out["data_cdf_low"] = np.zeros((k, d, len(probs)))
    out["data_cdf_high"] = np.zeros((k, d, len(probs)))
    out["n"] = np.zeros(k)
    for s in range(k):
        rows = codes == s
        n_s = int(rows.sum())
        out["n"][s] = n_s
        out["data_mean"][s] = X[rows].mean(0)
        out["model_mean"][s] = x_sim[rows].mean(0)
        out["data_sd"][s] = X[rows].std(0)
        out["model_sd"][s] = x_sim[rows].std(0)
        # Both the data and the simulated rows are samples of n_s: the difference of two
        # means has sd sqrt(2 / n_s) in sd units (about the same for a sd ratio).
        out["se"][s] = np.sqrt(2.0 / max(n_s, 1))
        q = np.quantile(X[rows], probs, axis=0).T  # (d, P)
        out["data_quantiles"][s] = q
        out["model_cdf"][s] = (x_sim[rows][:, :, None] <= q[None]).mean(0)
        out["data_cdf_low"][s] = (X[rows][:, :, None] < q[None]).mean(0)
        out["data_cdf_high"][s] = (X[rows][:, :, None] <= q[None]).mean(0)
    out["strata"] = strata
    return out


def _v(value: Any) -> str:
    v = value.item() if hasattr(value, "item") else value
    return f"{v:.4g}" if isinstance(v, float) else repr(v)


def _positivity_failure(cw: CausalWeights, th: Thresholds, *, plugin: bool = False
                        ) -> str | None:
    """The gate's own ``positivity`` check (the weighting's rule, or the plug-in's with
    ``plugin=True``): ``None`` when it passes, else where it fails, in words."""
    failed = [c for c in positivity_checks(cw, th, plugin=plugin) if c.status == "fail"]
    if not failed:
        return None
    c = min(failed, key=lambda c: c.value)
    return (f"positivity fails at do = {_v(c.do)} (a stratum of the cause keeps "
            f"{c.value:.1%} of its share)")


def _weights_ok(
    cw: CausalWeights, ref: WeightedReference, th: Thresholds
) -> tuple[bool, str, bool]:
    """Whether the weights pass their own checks, why, and whether a failure is on
    precision alone: positivity holds and their tails are light enough for the standard
    errors to be trusted (``k̂`` within ``th.khat`` wherever the answer is uncertain), only
    the bound is above the fail threshold. Such an estimate cannot fail another in
    ``cross_check`` but it can warn: its noise is in the combined standard error the gap is
    measured against."""
    bounded = smoothing_adjusted(ref, cw)
    u = uncertainty_bound(bounded)
    why = _positivity_failure(cw, th)
    if why is not None:
        return False, why, False
    heavy = (cw.khat > th.khat) & (u > th.khat_uncertainty)
    j = int(np.argmax(u))
    if u[j] > th.uncertainty:
        return False, (f"the weighted interventional mean is uncertain to ±{u[j]:.2f} sd at "
                       f"do = {_v(cw.do_values[j])} ({bounded.ess[j]:.0f} effective rows)"
                       ), not heavy.any()
    if heavy.any():
        j = int(np.flatnonzero(heavy)[0])
        return False, (f"the weights are heavy-tailed (k-hat {cw.khat[j]:.2f}) where the "
                       f"answer is already uncertain (±{u[j]:.2f} sd) at do = "
                       f"{_v(cw.do_values[j])}"), False
    return True, (f"the weights are healthy (worst uncertainty ±{u.max():.2f} sd, smallest "
                  f"ESS {cw.ess.min():.0f} rows)"), False


def _plugin_gap(record: dict[str, Any], th: Thresholds) -> float:
    checks = plugin_checks(record, th)
    # In units of their thresholds, so that one number says whether either fails.
    return max(float(c.value) / float(c.threshold) for c in checks) * th.plugin_gap


def _cross_gap(record: dict[str, Any], th: Thresholds) -> float:
    return max(float(c.value) for c in cross_checks(record, th))


#: ``strategy="auto"``, discrete cause: a weighting estimate whose bound is at most this
#: share of the tolerance is kept without looking further; above it, the plug-in's bootstrap
#: bound is computed, and the plug-in is taken when it passes its checks, agrees with the
#: weighting to within this share of the tolerance beyond their noise (``cross_check``), the
#: effect has at most ``HIGH_DIM`` features, and its bound is below
#: :data:`PLUGIN_PRECISION_RATIO` times the weighting's. Measured on the calibration suite
#: (``docs/estimators.md``, "strategy='auto'").
PRECISE_ENOUGH = 0.5
PLUGIN_PRECISION_RATIO = 0.75


def _more_precise_plugin(
    plugin: Any, ref: WeightedReference, X: np.ndarray, y: np.ndarray, mechanism: Any,
    covariates: np.ndarray | None, do_values: np.ndarray, rng: np.random.Generator,
    th: Thresholds, n_rows: int, eligible: bool,
) -> tuple[dict[str, Any], float, float] | None:
    """``(bootstrap, its bound, the weighting's bound)`` when the plug-in should replace a
    passing weighting estimate, else ``None``."""
    w_bound = float(uncertainty_bound(ref).max())
    if not eligible or mechanism is None or w_bound <= PRECISE_ENOUGH * th.tolerance:
        return None
    boot = plugin_bootstrap(plugin, X, y, mechanism, do_values, rng,
                            covariates=covariates, n_rows=n_rows)
    p_ref = plugin_uncertainty(ref, {"bootstrap": boot}, n_rows)
    if p_ref.source != "plug-in bootstrap":
        return None
    p_bound = float(uncertainty_bound(p_ref).max())
    if p_bound >= PLUGIN_PRECISION_RATIO * w_bound:
        return None
    return boot, p_bound, w_bound


def choose_strategy(
    X: np.ndarray, y: np.ndarray, cw: CausalWeights, plugin: Any, rng: np.random.Generator,
    *, discrete_cause: bool, covariates: np.ndarray | None = None,
    thresholds: Thresholds | None = None, plugin_rows: np.ndarray | None = None,
    mechanism: Any = None, requested: bool = False,
) -> StrategyChoice:
    """Weighting or plug-in for these data, with the evidence for the choice.

    Parameters
    ----------
    X, y : ndarray
        The training rows (features, cause).
    cw : CausalWeights
        The front-door weights.
    plugin : PluginFrontDoor
        The fitted plug-in sampler.
    rng : numpy.random.Generator
        Draws of the plug-in's checks.
    discrete_cause : bool
    covariates : ndarray, optional
    thresholds : Thresholds, optional
        The gate's operating point (default: the calibrated one).
    plugin_rows : ndarray of int, optional
        The rows ``plugin`` was fitted on, when not all (:data:`PLUGIN_CHECK_ROWS`): its
        checks use those rows, and its standard errors their number.
    mechanism : array-like, optional
        The mechanism of the rows ``plugin`` was fitted on: with it, a discrete cause's
        weighting estimate that is imprecise (bound above :data:`PRECISE_ENOUGH` of the
        tolerance) is weighed against the plug-in's bootstrap bound (see below).
    requested : bool, default=False
        ``strategy="weighting"`` was asked for: the plug-in only referees it (the
        ``cross_check`` record, with the plug-in's bootstrap standard errors where it passes
        its own checks) and weighting is returned.

    Returns
    -------
    StrategyChoice
        ``evidence`` holds ``weighted_reference``, ``cross_check`` and ``plugin_check``
        (the records the diagnostics read).
    """
    th = thresholds if thresholds is not None else Thresholds()
    ref = weighted_reference(X, cw.values, cw.do_values)
    w_ok, w_why, w_imprecise = _weights_ok(cw, ref, th)
    if plugin_rows is None:
        Xp, yp, cp = X, y, covariates
    else:
        Xp, yp = X[plugin_rows], y[plugin_rows]
        cp = None if covariates is None else covariates[plugin_rows]
    p_rec = plugin_fit_record(plugin, Xp, yp, rng, discrete_cause=discrete_cause,
                              covariates=cp)
    p_gap = _plugin_gap(p_rec, th)
    # Positivity is not something the plug-in repairs: where the mechanism values an
    # intervention makes likely are never seen with some value y' of the cause, the
    # plug-in evaluates p(x | y', z) there by extrapolation, which no check on the observed
    # rows can vouch for. For a discrete cause (one outcome model per class) it is eligible
    # only where its positivity rule passes; a continuous cause is the first branch below.
    p_support = _positivity_failure(cw, th, plugin=True)
    p_fits = p_gap <= th.plugin_gap
    p_ok = p_fits and p_support is None
    p_mean, p_sd, p_se = plugin_means(plugin, cw.do_values, len(Xp), rng)
    sd = np.maximum(p_sd, 1e-300)
    w_est, p_est = (ref.mean, ref.mean_se * ref.sd), (p_mean, p_se)
    cross = cross_check_record(("weighting", "plug-in"), cw.do_values, (w_est[0], p_est[0]),
                               (w_est[1], p_est[1]), sd, other_ok=p_ok)
    c_gap = _cross_gap(cross, th)
    agree = c_gap <= th.cross_gap
    if p_support is not None:
        p_why = (f"the plug-in would extrapolate p(x | y', z) to mechanism values never seen "
                 f"with some y' ({p_support})")
    elif p_ok:
        p_why = "the plug-in's conditionals reproduce the observed p(x | y)"
    else:
        p_why = f"the plug-in's conditionals miss the observed p(x | y) by {p_gap:.2f} sd"
    c_why = ("the two estimates of every interventional mean agree" if agree else
             f"the two estimates disagree by up to {c_gap:.2f} sd")
    if requested:
        # strategy='weighting' with heavy-tailed weights: the plug-in is a second opinion,
        # not a candidate. Where it passes its own checks, its bootstrap bounds how far the
        # weighting's answer can be from it (corroboration_bound, read by diagnose).
        if p_ok and mechanism is not None:
            boot = plugin_bootstrap(plugin, Xp, yp, mechanism, cw.do_values, rng,
                                    covariates=cp, n_rows=len(X))
            cross["other_se"] = {"mean_se": boot["mean_se"], "sd_se": boot["sd_se"]}
            cross["own_sd"] = ref.sd  # the plug-in's interventional sd is cross["sd"]
        return StrategyChoice("weighting", (
            f"strategy='weighting' was requested; its weights are heavy-tailed, so the "
            f"plug-in referees the answer: {p_why}; {c_why}"),
            {"weighted_reference": ref, "cross_check": cross})

    def plugin_first(other_ok: bool) -> dict[str, Any]:
        return cross_check_record(("plug-in", "weighting"), cw.do_values,
                                  (p_est[0], w_est[0]), (p_est[1], w_est[1]), sd, other_ok,
                                  w_imprecise)

    boot = None
    if not discrete_cause and p_fits:
        # A continuous cause: the plug-in borrows strength across the whole range of the
        # cause, the weights of one grid value rest on the rows near it. On the calibration
        # suite's continuous families the plug-in was at least as accurate as the weighting
        # in 15 of 16 fits (the exception: both wrong), also where the weights passed. Where
        # its positivity rule fails the answer is an extrapolation and the report fails it.
        strategy = "plugin"
        reason = (f"plug-in: the cause is continuous and the plug-in's conditionals reproduce "
                  f"the observed p(x | y); {w_why}; {c_why}"
                  + ("" if p_support is None else
                     ". The answer extrapolates p(x | y', z) to mechanism values never seen "
                     "with some y' (the plug-in's positivity rule fails): the diagnostics fail "
                     "this fit"))
        cross = plugin_first(w_ok)
    elif w_ok and (switch := _more_precise_plugin(
            plugin, smoothing_adjusted(ref, cw), Xp, yp, mechanism, cp, cw.do_values, rng, th,
            len(X),
            p_ok and c_gap <= PRECISE_ENOUGH * th.tolerance and X.shape[1] <= HIGH_DIM,
    )) is not None:
        # Both estimators pass their checks and agree, and the weights leave the answer
        # imprecise where the plug-in's conditionals pin it down (measured on the suite:
        # docs/estimators.md, "strategy='auto'").
        strategy = "plugin"
        boot, p_bound, w_bound = switch
        reason = (f"plug-in: both estimators pass their checks and agree ({c_why}); the "
                  f"plug-in's answer is uncertain to ±{p_bound:.2f} sd (bootstrap of its "
                  f"conditionals), the weighting's to ±{w_bound:.2f} sd")
        cross = plugin_first(True)
    elif w_ok:
        # Weighting assumes nothing about p(x | y, z); when the plug-in disagrees with it,
        # the failed cross_check says so in the report.
        strategy = "weighting"
        reason = f"weighting: {w_why}; {c_why}" + ("" if p_ok else f"; {p_why}")
    elif p_ok:
        strategy = "plugin"
        reason = f"plug-in: {w_why}; {p_why}; {c_why}"
        cross = plugin_first(False)
    else:
        strategy = "weighting"
        reason = (f"weighting, but neither estimator passes its checks: {w_why}; {p_why}. "
                  "The diagnostics fail this fit.")
    if boot is not None and plugin_rows is None:  # the plug-in chosen is the one checked
        p_rec["bootstrap"] = boot
    return StrategyChoice(strategy, reason, {
        "weighted_reference": ref, "cross_check": cross, "plugin_check": p_rec,
        "weights_ok": w_ok, "plugin_ok": p_ok, "agree": agree,
    })


def plugin_cross_check(
    plugin: Any, ref: WeightedReference, cw: CausalWeights, n_rows: int,
    rng: np.random.Generator, thresholds: Thresholds | None = None,
) -> dict[str, Any]:
    """``strategy="plugin"``: the plug-in's interventional means against the weighting
    estimate (``ref``, the weighted rows' summaries of the ``n_rows`` training rows), which
    referees only where the weights pass their own checks."""
    th = thresholds if thresholds is not None else Thresholds()
    w_ok, _, w_imprecise = _weights_ok(cw, ref, th)
    p_mean, p_sd, p_se = plugin_means(plugin, cw.do_values, n_rows, rng)
    return cross_check_record(("plug-in", "weighting"), cw.do_values, (p_mean, ref.mean),
                              (p_se, ref.mean_se * ref.sd), np.maximum(p_sd, 1e-300), w_ok,
                              w_imprecise)


def auxiliary_rng(random_state: RandomState) -> np.random.Generator:
    """A generator for the strategy's checks that leaves the fit's own stream untouched, so
    that a fit has the same numbers whichever way ``strategy`` resolved: an int seeds an
    independent stream of its own, a Generator spawns a child, None draws fresh entropy."""
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state.spawn(1)[0]
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    return np.random.default_rng([int(random_state), 0x5EED])


def _covariate_values(cw: CausalWeights, covariates: Any, n: int) -> np.ndarray | None:
    if cw.estimand is None or cw.estimand.kind != "front_door_covariates" or covariates is None:
        return None
    return np.asarray(covariates).reshape(n, -1)


def resolve_strategy(
    est: Any, X: np.ndarray, y: np.ndarray | None, mechanism: Any, covariates: Any,
    cw: CausalWeights, weights: Any, *, representation: bool = False,
) -> StrategyChoice:
    """The strategy a fit uses: ``est.strategy`` when it is not ``"auto"``, otherwise
    :func:`choose_strategy` where the plug-in applies (a front-door graph, with or without
    covariates, its mechanism data and EM, the effect not in a ``representation``) and
    weighting elsewhere, with the reason. ``strategy="weighting"`` whose weights are
    heavy-tailed (``k̂`` above the gate's threshold at some do value) gets the same plug-in
    as a referee where it applies (``choose_strategy(requested=True)``): the weights cannot
    vouch for their own standard errors there."""
    requested = est.strategy == "weighting"
    if est.strategy not in ("auto", "weighting"):
        return StrategyChoice(est.strategy, f"strategy={est.strategy!r} was requested")
    plain = StrategyChoice("weighting", "strategy='weighting' was requested")
    if representation:
        # The plug-in's mixture regression of every representation dimension on (y, z)
        # does not scale to images (docs/images.md): weighting, unless asked for.
        return plain if requested else StrategyChoice(
            "weighting", f"weighting: the effect is fitted in a {X.shape[1]}-dimensional "
                         "representation, where the plug-in's mixture regression does not scale")
    # heavy-tailed weights: the only case in which strategy="weighting" gets a referee
    heavy = bool(np.any(np.asarray(cw.khat) > Thresholds().khat))
    if X.shape[1] > PLUGIN_MAX_FEATURES:
        if requested:
            return plain if not heavy else StrategyChoice("weighting", (
                f"strategy='weighting' was requested; its weights are heavy-tailed, and no "
                f"plug-in referees them: with {X.shape[1]} features (more than "
                f"{PLUGIN_MAX_FEATURES}) its mixture regression does not scale"))
        return StrategyChoice(
            "weighting", f"weighting: the effect has {X.shape[1]} features, more than the "
                         f"{PLUGIN_MAX_FEATURES} the plug-in's mixture regression scales to")
    kind = None if cw.estimand is None else cw.estimand.kind
    if weights is not None or kind not in ("front_door", "front_door_covariates"):
        what = "explicit weights" if weights is not None else f"the {kind} estimand"
        return plain if requested else StrategyChoice(
            "weighting", f"weighting: the plug-in needs a front-door graph with its mechanism "
                         f"data, not {what}")
    if est.inference != "em":
        return plain if requested else StrategyChoice(
            "weighting", f"weighting: the plug-in is fitted by EM only "
                         f"(inference={est.inference!r})")
    if requested and not heavy:
        return plain
    rng = auxiliary_rng(est.random_state)
    n = len(X)
    rows = None
    mech, cov = mechanism, covariates
    if n > PLUGIN_CHECK_ROWS:
        # The plug-in of the checks on a seeded subsample: its cost is bounded whatever n
        # (at n = 1e5, d = 64 it was a third of the fit), its standard errors are those of
        # the rows it saw. A chosen plug-in is fitted again on every row (below, by the
        # fitting step) and checked there.
        rows = np.sort(rng.choice(n, PLUGIN_CHECK_ROWS, replace=False))
        mech = as_mechanism(mechanism, n)[rows]
        cov = None if covariates is None else np.asarray(covariates).reshape(n, -1)[rows]
    try:
        sampler = fit_plugin_sampler(
            est, X if rows is None else X[rows], y if rows is None else y[rows], mech, cw,
            None, rng, cov,
        )
        choice = choose_strategy(
            X, y, cw, sampler, rng, discrete_cause=is_discrete(y),
            covariates=_covariate_values(cw, covariates, n), plugin_rows=rows,
            mechanism=as_mechanism(mech, len(X) if rows is None else len(rows)),
            requested=requested,
        )
    except (DegenerateFitError, PositivityError, np.linalg.LinAlgError) as exc:
        if not requested:
            if not isinstance(exc, PositivityError):
                raise
            # Discrete values of the cause and the mechanism never observed together (a
            # mechanism that copies the cause, a rare level missing from the subsample): the
            # plug-in has no answer there; the weighting is judged by its own positivity check
            # (reached with positivity="warn" only when that check fails).
            return StrategyChoice("weighting", f"weighting: the plug-in cannot be evaluated "
                                               f"({exc})")
        # A referee is a second opinion: the fit asked for does not depend on it.
        return StrategyChoice("weighting", "strategy='weighting' was requested; its weights "
                              "are heavy-tailed, and the plug-in that would referee them "
                              f"could not be fitted ({exc})")
    chosen = choice.strategy == "plugin"
    choice.evidence["plugin"] = sampler if chosen and rows is None else None
    if chosen and rows is not None:
        # store_strategy checks the plug-in fitted on every row instead.
        del choice.evidence["plugin_check"]
    return choice


def store_strategy(
    est: Any, choice: StrategyChoice, X: np.ndarray, y: np.ndarray | None,
    cw: CausalWeights, covariates: Any, mechanism: Any = None,
) -> None:
    """``strategy_``, ``strategy_reason_`` and the records the diagnostics read:
    ``cross_check_`` (``"auto"``) and ``plugin_check_`` (whenever a plug-in was fitted;
    with the mechanism data, its ``"bootstrap"`` entry holds the standard errors of
    :func:`~causal_mixtures.estimators.plugin_uncertainty.plugin_bootstrap`)."""
    est.strategy_ = choice.strategy
    est.strategy_reason_ = choice.reason
    if "cross_check" in choice.evidence:
        est.cross_check_ = choice.evidence["cross_check"]
    if "plugin_check" in choice.evidence and choice.strategy == "plugin":
        est.plugin_check_ = choice.evidence["plugin_check"]
    elif choice.strategy == "plugin" and hasattr(est, "plugin_"):
        rng = auxiliary_rng(est.random_state)
        est.plugin_check_ = plugin_fit_record(
            est.plugin_, X, y, rng, discrete_cause=is_discrete(y),
            covariates=_covariate_values(cw, covariates, len(X)),
        )
        est.cross_check_ = plugin_cross_check(est.plugin_, est.weighted_reference_, cw,
                                              len(X), rng)
    if (choice.strategy == "plugin" and mechanism is not None and hasattr(est, "plugin_")
            and "bootstrap" not in est.plugin_check_):
        est.plugin_check_["bootstrap"] = plugin_bootstrap(
            est.plugin_, X, y, as_mechanism(mechanism, len(X)), cw.do_values,
            auxiliary_rng(est.random_state).spawn(1)[0],
            covariates=_covariate_values(cw, covariates, len(X)),
        )
