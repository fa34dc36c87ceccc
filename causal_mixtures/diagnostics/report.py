"""The diagnostics report: its thresholds, its rows and how it prints.

:class:`Thresholds` holds every bound of :func:`~causal_mixtures.diagnostics.diagnose`,
:class:`Check` is one row (a status, a value against its threshold, and what to try), and
:class:`DiagnosticsReport` collects the rows and renders them as text, HTML or a DataFrame.
The thresholds are justified in ``docs/diagnostics.md``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["STATUSES", "Check", "DiagnosticsReport", "Thresholds", "format_value"]

STATUSES = ("pass", "warn", "fail")


# --------------------------------------------------------------------------------------
# thresholds and the report


@dataclass(frozen=True)
class Thresholds:
    """Thresholds of :func:`~causal_mixtures.diagnostics.diagnose`. Each one was chosen on
    the ground-truth calibration suite (``benchmarks/bench_gate.py``); ``docs/diagnostics.md``
    shows its ROC and the operating point.

    Attributes
    ----------
    uncertainty : float
        ``mean_uncertainty`` fails when the 95 % bound on the error of the worst feature's
        interventional mean or sd (in sd units) exceeds this ...
    tolerance : float, default=0.2
        ... and warns above this: the error in sd units that the calibration suite calls
        acceptable (``docs/diagnostics.md``, "What counts as right"), so a bound above it
        says the answer may be off by more than the tolerance. ``cross_check`` warns when
        two estimates differ by more than this, beyond their noise, and the other estimate
        passes its own checks (then at least one of them is off by half the gap).
    positivity_ratio, positivity_se : float, default=0.2, 4
        ``positivity`` fails when a class of a discrete cause keeps less than
        ``positivity_ratio`` of its share under an intervention, ``positivity_se`` standard
        errors below it ...
    positivity_continuous, positivity_plugin : float
        ... or when a quintile of a continuous cause keeps less than this share (the
        second for the plug-in, whose answer there is an extrapolation of its conditionals
        rather than a weighted average of a few rows).
    khat : float, default=0.7
        Pareto ``k̂`` above which the weights are heavy-tailed (warn) ...
    khat_uncertainty : float
        ... and fail, when the ``mean_uncertainty`` value is above this as well.
    ess_per_parameter : float, default=1
        ``weight_ess`` warns below this many effective rows per free mixture parameter
        (informational: ``mean_uncertainty`` judges whether the answer is precise enough).
    rhat, rhat_fail : float, default=1.01, 1.1
        R-hat passes at or below ``rhat``, warns up to ``rhat_fail``, fails above.
    posterior_ess_per_chain, posterior_ess_per_chain_fail : float, default=100, 10
        Bulk / tail ESS per chain to pass; below the second it fails.
    ppc_se : float
        Posterior-predictive and plug-in gaps smaller than this many standard errors of the
        reference rows count as zero.
    moments : float
        ``ppc_moments`` fails when the mixture's interventional mean or sd misses the
        weighted rows' by more than this (sd units, or relative for the sd).
    correlation : float
        ``ppc_correlation`` fails when the mixture's correlations between features miss the
        weighted rows' by more than this (root mean square over pairs of features).
    quantiles : float
        ``ppc_quantiles`` fails when the mixture's CDF misses a weighted quantile's
        probability by more than this.
    cross_se, cross_gap : float
        ``cross_check`` fails when two estimates of an interventional mean differ by more
        than ``cross_se`` combined standard errors and more than ``cross_gap`` sd, and the
        other estimate passes its own checks.
    plugin_gap : float
        ``plugin_fit`` fails when the plug-in's conditionals miss the observed mean or sd of
        ``x`` given a stratum of the cause by more than this (sd units).
    plugin_quantiles : float, default=0.1
        ``plugin_quantiles`` warns when the conditionals' implied CDF misses an observed
        quantile's probability by more than ``quantiles`` beyond the noise band, and fails
        above this: the CDF error an acceptable answer may have (``docs/diagnostics.md``).
    heldout_se : float, default=1
        ``heldout_k`` warns when the fitted ``K`` is more than this many standard errors
        below the best held-out log-likelihood.
    """

    uncertainty: float = 0.3
    tolerance: float = 0.2
    positivity_ratio: float = 0.2
    positivity_se: float = 4.0
    positivity_continuous: float = 0.05
    positivity_plugin: float = 0.003
    khat: float = 0.7
    khat_uncertainty: float = 0.2
    ess_per_parameter: float = 1.0
    rhat: float = 1.01
    rhat_fail: float = 1.1
    posterior_ess_per_chain: float = 100.0
    posterior_ess_per_chain_fail: float = 10.0
    ppc_se: float = 3.0
    moments: float = 0.1
    correlation: float = 0.25
    quantiles: float = 0.03
    cross_se: float = 3.0
    cross_gap: float = 0.3
    plugin_gap: float = 0.1
    plugin_quantiles: float = 0.1
    heldout_se: float = 1.0


@dataclass(frozen=True)
class Check:
    """One row of a :class:`DiagnosticsReport`.

    Attributes
    ----------
    name : str
        The check (``"positivity"``, ``"weight_ess"``, ``"weight_khat"``,
        ``"mean_uncertainty"``, ``"convergence"``, ``"rhat"``, ``"posterior_ess"``,
        ``"ppc_moments"``, ``"ppc_correlation"``, ``"ppc_quantiles"``, ``"cross_check"``, ``"plugin_fit"``,
        ``"heldout_k"``).
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
        return self.name if self.do is None else f"{self.name}[do={format_value(self.do)}]"

    @property
    def advice(self) -> str:
        """The finding and what to try, as one sentence."""
        return self.message if not self.remedy else f"{self.message} {self.remedy}"


def format_value(v: Any, digits: int = 4) -> str:
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
    """The result of :func:`~causal_mixtures.diagnostics.diagnose`: one :class:`Check` per row.

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
    >>> from causal_mixtures.diagnostics import diagnose
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
                "threshold": [f"{c.comparison} {format_value(c.threshold)}" for c in self.checks],
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
            where = ", ".join(format_value(c.do) for c in group if c.do is not None)
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
                    format_value(c.do),
                    c.status.upper(),
                    format_value(c.value),
                    f"{c.comparison} {format_value(c.threshold)}",
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
                where = ", ".join(f"{format_value(c.do)} ({format_value(c.value, 3)})" for c in group)
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
                f"<tr><td>{e(c.name)}</td><td>{e(format_value(c.do))}</td>"
                f"<td style='color:{colour[c.status]};font-weight:bold'>{c.status}</td>"
                f"<td>{e(format_value(c.value))}</td><td>{e(c.comparison)} {e(format_value(c.threshold))}</td>"
                f"<td style='text-align:left'>{e(c.advice)}</td></tr>"
            )
        out.append("</tbody></table>")
        for note in self.notes:
            out.append(f"<p><i>note: {e(note)}</i></p>")
        out.append("</div>")
        return "".join(out)
