"""The gate before training on samples: :func:`check_fit` runs
:func:`~causal_mixtures.diagnostics.diagnose` and raises, warns or does nothing on failed
checks, as chosen by one of :data:`CHECK_MODES`.
"""

from __future__ import annotations

import warnings
from typing import Any

from causal_mixtures.diagnostics.checks import diagnose
from causal_mixtures.diagnostics.report import DiagnosticsReport
from causal_mixtures.exceptions import DiagnosticsError, DiagnosticsWarning

__all__ = ["CHECK_MODES", "check_fit"]

CHECK_MODES = ("raise", "warn", "off")


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
