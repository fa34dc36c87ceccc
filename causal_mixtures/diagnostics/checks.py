"""Can this fit be trusted? Weight, convergence, posterior and predictive diagnostics.

The weak point of mechanism learning is the causal weights: under strong confounding a few
rows carry most of the mass, the weighted fit then rests on a handful of effective rows, and
samples drawn from it look plausible while being wrong. This module measures that, per
intervention value, and turns the measurements into a :class:`DiagnosticsReport` with one
row per check (status ``"pass"``, ``"warn"`` or ``"fail"``, the value, its threshold and a
sentence saying what to try):

``weight_ess``
    Kish effective sample size ``(Σw)² / Σw²`` of the weights of each do value. **Fails**
    below ``10 ×`` the number of free parameters of that do value's mixture
    (:func:`~causal_mixtures.em.n_parameters`): nobody can fit 11 parameters on 10 effective
    rows. Never warns: above the floor the ESS is reported, not judged. The floor is
    strict on purpose: the paper's flagship (``make_classification_2d(5000)``, ``K = 6``
    full, 35 parameters) fails it at ``do = 2`` (ESS 293 < 350) although its downstream
    accuracy is fine; ``K = 2`` (floor 110) passes on seeds 0-2 with the same accuracy
    (0.857 against 0.855), so the advice "use fewer components" is the right one there.
``weight_khat``
    Pareto ``k̂`` of the raw weights (PSIS; :func:`~causal_mixtures.psis.pareto_khat`,
    cross-checked against ArviZ in the tests). ``k̂ <= 0.7`` passes. Above 0.7 the check
    **warns** when the ESS floor holds and **fails** when it does not. Why not fail at
    ``k̂ > 0.7`` outright, as the PSIS paper reads? ``k̂`` describes the tail of the weight
    *distribution*, i.e. how slowly importance-weighted estimates converge as ``n`` grows;
    it does not say that the estimate at hand is off. The paper's own flagship example
    (``make_classification_2d(5000)``, KDE weights) has ``k̂ = 0.94 / 0.80`` with an ESS of
    654 / 293 rows, and mechanism learning works there (0.85 accuracy against 0.78). A
    heavy tail *together with* too few effective rows is what breaks fits (on the paper's
    regression, ``n = 5000`` and 30 do values, the interventional means are off by 0.27 to
    2.0 sd where the weights fail and by 0.12 sd on average where they do not), and that
    combination fails.
``convergence``
    The fitter's convergence flag, and (EM) that the objective never decreased. Warns only:
    a mixture stopped at ``max_iter`` is still a valid, if sub-optimal, mixture.
``rhat`` / ``posterior_ess``
    For Bayesian fits (``model.posterior_``), rank-normalised split R-hat and bulk / tail
    ESS (Vehtari et al. 2021) of **label-invariant** quantities only: the interventional
    mean and covariance of ``q(x | do(y))`` and its log-density at probe points. Raw
    component parameters switch labels between chains and would fail R-hat on perfect
    mixing. R-hat is the split version, so a single chain (the package's NUTS) is checked
    for drift between its halves. R-hat passes ``<= 1.01`` (Vehtari et al.'s
    recommendation), warns up to 1.1 (the older Gelman-Rubin rule) and fails above; ESS
    passes at 100 per chain, warns down to 10 per chain and fails below (R-hat and ESS
    themselves are unreliable there). They run on MCMC draws (``model.guide_ == "nuts"``,
    or no ``guide_``) only: draws of a variational posterior are independent by
    construction, so these checks could only flag Monte-Carlo noise, and cannot judge how
    well the variational family fits (skipped, with a note).
``ppc_moments`` / ``ppc_quantiles``
    A *weighted* posterior-predictive check (needs ``X``): the mixture's mean, standard
    deviations and correlations against the weighted data moments, and the mixture's
    marginal CDF at the weighted 5/25/50/75/95 % data quantiles of every feature against
    those probabilities. (ArviZ's ``plot_ppc`` compares with the *unweighted*, confounded
    data, which is the wrong target.) The thresholds are the larger of a practical size
    (0.1 sd / 0.05 probability to warn; 0.25 / 0.10 to fail) and 3 (warn) or 5 (fail)
    Monte-Carlo standard errors at the weights' ESS, since the weighted data moments are
    themselves noisy estimates.
``heldout_k``
    Optional (``cv=`` folds): the held-out weighted log-likelihood of the fitted number of
    components against the best one on a grid (weighted k-fold, :func:`heldout_loglik`).
    Warns when the fitted ``K`` is more than one standard error below the best.

The gate used by :class:`~causal_mixtures.MechanismLearner` is :func:`check_fit`. ArviZ
conversion is :func:`to_inference_data`, R-hat / ESS tables of a Bayesian fit
:func:`posterior_summary`; all ArviZ calls live in :mod:`causal_mixtures._arviz`. Plots are
in :mod:`causal_mixtures.plotting`.

References
----------
A. Vehtari, D. Simpson, A. Gelman, Y. Yao, J. Gabry (2024). Pareto smoothed importance
sampling. JMLR 25(72).
A. Vehtari, A. Gelman, D. Simpson, B. Carpenter, P.-C. Bürkner (2021). Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC. Bayesian
Analysis 16(2).
L. Kish (1965). Survey Sampling. Wiley.
"""

from __future__ import annotations

import html
import math
import numbers
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from causal_mixtures._random import check_random_state
from causal_mixtures.diagnostics import arviz as _arviz
from causal_mixtures.exceptions import ConvergenceWarning, DiagnosticsError, DiagnosticsWarning
from causal_mixtures.mixture.params import COVARIANCE_TYPES, Mixture, n_parameters
from causal_mixtures.weights.core import CausalWeights

__all__ = [
    "CHECK_MODES",
    "Check",
    "DiagnosticsReport",
    "DiagnosticsWarning",
    "Thresholds",
    "check_fit",
    "diagnose",
    "heldout_loglik",
    "posterior_summary",
    "to_inference_data",
    "weight_checks",
    "weighted_quantiles",
]

STATUSES = ("pass", "warn", "fail")
CHECK_MODES = ("raise", "warn", "off")
PPC_PROBS = (0.05, 0.25, 0.5, 0.75, 0.95)
_MAX_PPC_DRAWS = 200


# --------------------------------------------------------------------------------------
# thresholds and the report


@dataclass(frozen=True)
class Thresholds:
    """Thresholds of :func:`diagnose`; see the module docstring for their justification.

    Attributes
    ----------
    khat : float, default=0.7
        Pareto ``k̂`` above which the weights are heavy-tailed (warn; fail with low ESS).
    ess_per_parameter : float, default=10
        ``weight_ess`` fails below this many effective rows per free mixture parameter.
    rhat, rhat_fail : float, default=1.01, 1.1
        R-hat passes at or below ``rhat``, warns up to ``rhat_fail``, fails above.
    posterior_ess_per_chain, posterior_ess_per_chain_fail : float, default=100, 10
        Bulk / tail ESS per chain to pass; below the second it fails.
    moments, moments_fail : float, default=0.1, 0.25
        Practical size of a moment discrepancy (in data standard deviations, or
        correlation units) to warn / fail.
    quantiles, quantiles_fail : float, default=0.05, 0.10
        Practical size of a CDF discrepancy at the weighted data quantiles to warn / fail.
    mc_se, mc_se_fail : float, default=3, 5
        Discrepancies smaller than this many Monte-Carlo standard errors (at the weights'
        ESS) never warn / fail.
    heldout_se : float, default=1
        ``heldout_k`` warns when the fitted ``K`` is more than this many standard errors
        below the best held-out log-likelihood.
    """

    khat: float = 0.7
    ess_per_parameter: float = 10.0
    rhat: float = 1.01
    rhat_fail: float = 1.1
    posterior_ess_per_chain: float = 100.0
    posterior_ess_per_chain_fail: float = 10.0
    moments: float = 0.1
    moments_fail: float = 0.25
    quantiles: float = 0.05
    quantiles_fail: float = 0.10
    mc_se: float = 3.0
    mc_se_fail: float = 5.0
    heldout_se: float = 1.0


@dataclass(frozen=True)
class Check:
    """One row of a :class:`DiagnosticsReport`.

    Attributes
    ----------
    name : str
        The check (``"weight_ess"``, ``"weight_khat"``, ``"convergence"``, ``"rhat"``,
        ``"posterior_ess"``, ``"ppc_moments"``, ``"ppc_quantiles"``, ``"heldout_k"``).
    do : object or None
        The intervention value, or ``None`` for a check of the whole model.
    status : {"pass", "warn", "fail"}
    value : float
    threshold : float
        The passing bound.
    comparison : {"<=", ">="}
        How ``value`` must compare with ``threshold`` to pass.
    message : str
        What was measured, in one sentence.
    remedy : str
        What to try (empty when the check passes).
    """

    name: str
    do: Any
    status: str
    value: float
    threshold: float
    comparison: str
    message: str
    remedy: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {list(STATUSES)}; got {self.status!r}.")
        if self.comparison not in ("<=", ">="):
            raise ValueError(f"comparison must be '<=' or '>='; got {self.comparison!r}.")

    @property
    def label(self) -> str:
        """``name`` with the intervention value, e.g. ``"weight_ess[do=2]"``."""
        return self.name if self.do is None else f"{self.name}[do={_fmt(self.do)}]"

    @property
    def advice(self) -> str:
        """The finding and what to try, as one sentence."""
        return self.message if not self.remedy else f"{self.message} {self.remedy}"


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, float | np.floating):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "-inf" if v < 0 else "inf"
        return f"{float(v):.{digits}g}"
    if isinstance(v, np.generic):
        return str(v.item())
    return str(v)


class DiagnosticsReport:
    """The result of :func:`diagnose`: one :class:`Check` per row.

    Parameters
    ----------
    checks : sequence of Check
    title : str, default=""
        Describes the diagnosed model.
    notes : sequence of str, default=()
        Checks that were not run, and why.

    Attributes
    ----------
    checks : list of Check
    notes : list of str
    ok : bool
        ``True`` when no check failed (warnings allowed).

    Examples
    --------
    >>> import causal_mixtures as cm
    >>> from causal_mixtures.diagnostics.checks import diagnose
    >>> data = cm.datasets.make_front_door_linear(2000, random_state=0)
    >>> model = cm.CausalGaussianMixture(random_state=0).fit(
    ...     data.X, data.y, mechanism=data.mechanism, do=[-1.0, 0.0, 1.0])
    >>> report = diagnose(model, data.X)
    >>> report.ok
    True
    """

    def __init__(self, checks: Sequence[Check], *, title: str = "", notes: Sequence[str] = ()):
        self.checks = list(checks)
        self.title = title
        self.notes = list(notes)

    # -------------------------------------------------------------- access
    @property
    def ok(self) -> bool:
        """``True`` when no check failed."""
        return not any(c.status == "fail" for c in self.checks)

    @property
    def status(self) -> str:
        """The worst status (``"pass"`` for an empty report)."""
        worst = 0
        for c in self.checks:
            worst = max(worst, STATUSES.index(c.status))
        return STATUSES[worst]

    @property
    def failed(self) -> list[Check]:
        """The checks with status ``"fail"``."""
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warned(self) -> list[Check]:
        """The checks with status ``"warn"``."""
        return [c for c in self.checks if c.status == "warn"]

    def __len__(self) -> int:
        return len(self.checks)

    def __iter__(self) -> Iterator[Check]:
        return iter(self.checks)

    def __getitem__(self, index: int) -> Check:
        return self.checks[index]

    def select(self, name: str) -> list[Check]:
        """The checks called ``name``, in intervention-value order."""
        return [c for c in self.checks if c.name == name]

    def to_frame(self):
        """A :class:`pandas.DataFrame` with one row per check."""
        import pandas as pd

        return pd.DataFrame(
            {
                "check": [c.name for c in self.checks],
                "do": [c.do for c in self.checks],
                "status": [c.status for c in self.checks],
                "value": [c.value for c in self.checks],
                "threshold": [f"{c.comparison} {_fmt(c.threshold)}" for c in self.checks],
                "message": [c.message for c in self.checks],
                "remedy": [c.remedy for c in self.checks],
            }
        )

    # -------------------------------------------------------------- text
    def _headline(self) -> str:
        counts = {s: sum(c.status == s for c in self.checks) for s in STATUSES}
        verdict = "OK" if self.ok else "FAILED"
        return (
            f"DiagnosticsReport{': ' + self.title if self.title else ''}\n"
            f"  {verdict}: {counts['fail']} failed, {counts['warn']} warning(s), "
            f"{counts['pass']} passed"
        )

    def _groups(self) -> list[tuple[str, str, list[Check]]]:
        """Non-passing checks grouped by (name, status), worst first."""
        groups: dict[tuple[str, str], list[Check]] = {}
        for c in self.checks:
            if c.status != "pass":
                groups.setdefault((c.name, c.status), []).append(c)
        order = sorted(groups, key=lambda k: (-STATUSES.index(k[1]), k[0]))
        return [(name, status, groups[(name, status)]) for name, status in order]

    def error_message(self) -> str:
        """One paragraph naming every failed check and what to try (used by
        :class:`~causal_mixtures.DiagnosticsError`)."""
        parts = []
        for name, status, group in self._groups():
            if status != "fail":
                continue
            where = ", ".join(_fmt(c.do) for c in group if c.do is not None)
            first = group[0]
            parts.append(
                f"{name}"
                + (f" at do = {where}" if where else "")
                + f": {first.message}"
                + (f" {first.remedy}" if first.remedy else "")
            )
        if not parts:
            return "all diagnostic checks passed."
        return (
            f"the fit failed {len(self.failed)} diagnostic check(s), so samples drawn from it "
            "are not trustworthy. " + " | ".join(parts)
        )

    def __repr__(self) -> str:
        lines = [self._headline()]
        rows = (
            self.checks
            if len(self.checks) <= 40
            else [c for c in self.checks if c.status != "pass"]
        )
        if rows:
            table = [("check", "do", "status", "value", "threshold")]
            table += [
                (
                    c.name,
                    _fmt(c.do),
                    c.status.upper(),
                    _fmt(c.value),
                    f"{c.comparison} {_fmt(c.threshold)}",
                )
                for c in rows
            ]
            widths = [max(len(r[i]) for r in table) for i in range(5)]
            for r in table:
                lines.append(
                    "  " + "  ".join(s.ljust(w) for s, w in zip(r, widths, strict=True)).rstrip()
                )
        hidden = len(self.checks) - len(rows)
        if hidden:
            lines.append(f"  ({hidden} passing checks not shown; see .to_frame())")
        groups = self._groups()
        if groups:
            lines.append("What to try:")
            for name, status, group in groups:
                if group[0].do is None:
                    lines.append(f"  - {name} {status.upper()}: {group[0].advice}")
                    continue
                where = ", ".join(f"{_fmt(c.do)} ({_fmt(c.value, 3)})" for c in group)
                lines.append(f"  - {name} {status.upper()} at do = {where}: {group[0].remedy}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e"}
        e = html.escape
        counts = {s: sum(c.status == s for c in self.checks) for s in STATUSES}
        verdict = "OK" if self.ok else "FAILED"
        out = [
            "<div class='cm-diagnostics'>",
            f"<p><b>DiagnosticsReport</b>{': ' + e(self.title) if self.title else ''}<br>",
            f"<b style='color:{colour['pass' if self.ok else 'fail']}'>{verdict}</b>: "
            f"{counts['fail']} failed, {counts['warn']} warning(s), {counts['pass']} passed</p>",
            "<table><thead><tr><th>check</th><th>do</th><th>status</th><th>value</th>"
            "<th>threshold</th><th>what it means / what to try</th></tr></thead><tbody>",
        ]
        for c in self.checks:
            out.append(
                f"<tr><td>{e(c.name)}</td><td>{e(_fmt(c.do))}</td>"
                f"<td style='color:{colour[c.status]};font-weight:bold'>{c.status}</td>"
                f"<td>{e(_fmt(c.value))}</td><td>{e(c.comparison)} {e(_fmt(c.threshold))}</td>"
                f"<td style='text-align:left'>{e(c.advice)}</td></tr>"
            )
        out.append("</tbody></table>")
        for note in self.notes:
            out.append(f"<p><i>note: {e(note)}</i></p>")
        out.append("</div>")
        return "".join(out)


# --------------------------------------------------------------------------------------
# the fitted model, seen as arrays


def _posterior_mixture(model: Any, post: dict[str, Any]) -> Mixture:
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


def _current_posterior(model: Any) -> dict[str, Any] | None:
    """``model.posterior_``: every fit clears the previous fit's attributes, so a posterior
    is present exactly when the last fit was Bayesian."""
    return getattr(model, "posterior_", None)


def _mixture(model: Any) -> Mixture | None:
    """The model's mixture parameters, or ``None`` when it has none (a bootstrap)."""
    post = _current_posterior(model)
    if post is not None:
        return _posterior_mixture(model, post)
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


def _unwrap(model: Any) -> Any:
    """A MechanismLearner is diagnosed through its fitted resampler."""
    inner = getattr(model, "resampler_", None)
    return inner if inner is not None else model


def _weights_of(model: Any) -> CausalWeights:
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


def _check_X(X: Any, n: int, d: int | None) -> np.ndarray:
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


def _feature_names(model: Any, d: int) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    if names is not None and len(names) == d:
        return [str(n) for n in names]
    return [f"x{j}" for j in range(d)]


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
            msg = f"Pareto k-hat of the weights{smoothed} is {_fmt(k, 3)}: " + (
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


_N_PROBE_AXES = 2


def _probe_points(mix: Mixture) -> np.ndarray:
    """Label-invariant probe points per do value: the predictive mean, and the mean plus or
    minus one standard deviation along the (up to) two leading principal axes of the
    predictive covariance. Shape (n_do, 1 + 2 min(d, 2), d)."""
    mean, cov = mix.predictive_moments()
    vals, vecs = np.linalg.eigh(cov)  # ascending
    m = min(mix.n_features, _N_PROBE_AXES)
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


def _flat_quantities(mix: Mixture) -> np.ndarray:
    """Label-invariant quantities, flattened per do value: (C, D, n_do, m)."""
    q = label_invariant_draws(mix)
    c, dr, j, d = q["interventional_mean"].shape
    iu = np.triu_indices(d)
    cov = q["interventional_cov"][..., iu[0], iu[1]]
    return np.concatenate([q["interventional_mean"], cov, q["log_density"]], axis=-1)


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

    model = _unwrap(model)
    post = _current_posterior(model)
    if post is None:
        raise ValueError(
            "model has no posterior_: posterior diagnostics need a Bayesian fit "
            "(inference='bayes')."
        )
    mix = _posterior_mixture(model, post)
    q = _flat_quantities(mix)
    d = mix.n_features
    names = _feature_names(model, d)
    iu = np.triu_indices(d)
    labels = (
        [f"mean[{n}]" for n in names]
        + [f"cov[{names[a]},{names[b]}]" for a, b in zip(*iu, strict=True)]
        + ["log_q(mean)"]
        + [f"log_q(mean+sd*pc{i + 1})" for i in range(min(d, _N_PROBE_AXES))]
        + [f"log_q(mean-sd*pc{i + 1})" for i in range(min(d, _N_PROBE_AXES))]
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


def _posterior_checks(mix: Mixture, do_values: np.ndarray, th: Thresholds) -> list[Check]:
    q = _flat_quantities(mix)
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
    mix = mix.thin(_MAX_PPC_DRAWS)
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
    model = _unwrap(model)
    cw = _weights_of(model)
    mix = None if isinstance(model, CausalWeights) else _mixture(model)
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
    model = _unwrap(model)
    cw = _weights_of(model)
    mix = None if isinstance(model, CausalWeights) else _mixture(model)
    notes: list[str] = []
    d = mix.n_features if mix is not None else getattr(model, "n_features_in_", None)
    X_arr = _check_X(X, cw.n_samples, d) if X is not None else None
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


# --------------------------------------------------------------------------------------
# the gate


def check_fit(
    model: Any,
    check: str = "warn",
    X: Any = None,
    *,
    stacklevel: int = 2,
    **kwargs: Any,
) -> DiagnosticsReport:
    """Run :func:`diagnose` and act on failed checks: the gate before training on samples.

    Parameters
    ----------
    model : fitted model
        As in :func:`diagnose`.
    check : {"raise", "warn", "off"}, default="warn"
        ``"raise"``: raise :class:`~causal_mixtures.DiagnosticsError` when a check fails.
        ``"warn"``: emit one :class:`DiagnosticsWarning` naming the failed checks.
        ``"off"``: run nothing and return an empty report. Checks with status ``"warn"``
        never raise nor warn; they are in the returned report.
    X : array-like, optional
        The training features (enables the posterior-predictive checks).
    stacklevel : int, default=2
        Passed to :func:`warnings.warn` (3 from inside an estimator's ``fit``).
    **kwargs
        Passed to :func:`diagnose`.

    Returns
    -------
    DiagnosticsReport

    Raises
    ------
    DiagnosticsError
        With ``check="raise"``, when a check fails; its ``report`` attribute holds the
        report.
    """
    if check not in CHECK_MODES:
        raise ValueError(f"check must be one of {list(CHECK_MODES)}; got {check!r}.")
    if check == "off":
        return DiagnosticsReport([], notes=["diagnostics were turned off (check='off')."])
    report = diagnose(model, X, **kwargs)
    if report.ok:
        return report
    message = report.error_message()
    if check == "raise":
        err = DiagnosticsError(
            f"Refusing to train on this fit: {message} (Pass check='warn' to train anyway.)"
        )
        err.report = report  # type: ignore[attr-defined]
        raise err
    warnings.warn(message, DiagnosticsWarning, stacklevel=stacklevel)
    return report


# --------------------------------------------------------------------------------------
# held-out weighted log-likelihood


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
        much more precise than levels) and ``heldout_loglik_per_do`` (an array per row).
    """
    import pandas as pd
    from sklearn.base import clone

    model = _unwrap(model)
    cw = _weights_of(model)
    if not hasattr(model, "means_"):
        raise ValueError("heldout_loglik needs a fitted CausalGaussianMixture.")
    X_arr = _check_X(X, cw.n_samples, model.n_features_in_)
    if not isinstance(n_splits, numbers.Integral) or n_splits < 2:
        raise ValueError(f"n_splits must be an int >= 2; got {n_splits!r}.")
    grid = (
        list(n_components) if n_components is not None else list(range(1, model.n_components_ + 3))
    )
    rng = check_random_state(random_state)
    W = cw.values
    folds = _weighted_folds(W, int(n_splits), rng)
    Wn = W / W.sum(0)
    lls = []
    for k in grid:
        ll = np.empty_like(W)
        params = {"n_components": int(k)}
        if "inference" in model.get_params():
            params["inference"] = "em"
        for f in range(int(n_splits)):
            test = folds == f
            est = clone(model).set_params(**params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(X_arr[~test], weights=W[~test], do=cw.do_values)
            for j, v in enumerate(cw.do_values.tolist()):
                ll[test, j] = est.score_samples(X_arr[test], do=v)
        lls.append(ll)
    J = W.shape[1]

    def level_and_se(values: np.ndarray) -> tuple[np.ndarray, float, float]:
        per_do = (Wn * values).sum(0)
        se_do = np.sqrt((Wn**2 * (values - per_do) ** 2).sum(0))
        return per_do, float(per_do.mean()), float(np.sqrt((se_do**2).sum()) / J)

    levels = [level_and_se(ll) for ll in lls]
    best = int(np.argmax([lv[1] for lv in levels]))
    rows = []
    for k, ll, (per_do, mean, se) in zip(grid, lls, levels, strict=True):
        se_diff = level_and_se(lls[best] - ll)[2]
        rows.append((int(k), mean, se, se_diff, per_do))
    return pd.DataFrame(
        rows, columns=["n_components", "heldout_loglik", "se", "se_diff", "heldout_loglik_per_do"]
    )


# --------------------------------------------------------------------------------------
# ArviZ


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
        (:func:`~causal_mixtures.plotting.plot_ppc`), never by ``az.plot_ppc``.

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
    model = _unwrap(model)
    cw = _weights_of(model)
    mix = _mixture(model)
    if mix is None:
        raise ValueError(
            f"{type(model).__name__} has no fitted mixture; to_inference_data needs a fitted "
            "CausalGaussianMixture."
        )
    if not isinstance(n_draws, numbers.Integral) or n_draws < 1:
        raise ValueError(f"n_draws must be a positive int; got {n_draws!r}.")
    rng = check_random_state(random_state)
    d = mix.n_features
    names = _feature_names(model, d)
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
        X_arr = _check_X(X, cw.n_samples, d)
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
