"""Exceptions and warnings raised by :mod:`causal_mixtures`.

Every exception subclasses a built-in (``ValueError`` or ``RuntimeError``) so code that
catches the built-in keeps working; messages say what was expected, what was received and
what to try.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # at run time: __getattr__ below
    from sklearn.exceptions import ConvergenceWarning

__all__ = [
    "CausalMixturesError",
    "ConvergenceWarning",
    "DegenerateFitError",
    "DiagnosticsError",
    "DiagnosticsWarning",
    "GraphSyntaxError",
    "InvalidParameterError",
    "NotIdentifiableError",
    "PositivityError",
    "PositivityWarning",
]


class CausalMixturesError(Exception):
    """Base class of every error raised on purpose by this package."""


class GraphSyntaxError(CausalMixturesError, ValueError):
    """A causal-graph specification could not be parsed.

    Parameters
    ----------
    message : str
        What is wrong.
    line, column : int
        1-based position of the offending token in the specification.
    """

    def __init__(self, message: str, *, line: int, column: int) -> None:
        self.line = line
        self.column = column
        self.bare_message = message
        super().__init__(f"line {line}, column {column}: {message}")


class InvalidParameterError(CausalMixturesError, ValueError, TypeError):
    """A constructor parameter has a value or type the estimator does not accept (raised at
    ``fit``, as in scikit-learn; both a ``ValueError`` and a ``TypeError``)."""


class DegenerateFitError(CausalMixturesError, ValueError):
    """The data cannot support the mixture asked for: too few effective rows for its
    components, or a component collapsed onto the ``reg_covar`` floor where the data vary,
    so its samples would be copies of training rows."""


class NotIdentifiableError(CausalMixturesError, ValueError):
    """The causal effect of the cause on the effect cannot be identified from this graph
    with the estimator requested (for example the front-door criterion fails)."""


class PositivityError(CausalMixturesError, ValueError):
    """An estimated density needed by the weights is zero (or has no support) where it
    must be positive, so the causal weights would be infinite or undefined."""


class PositivityWarning(UserWarning):
    """Near-violations of positivity: some weights are extreme but finite."""


class DiagnosticsWarning(UserWarning):
    """A fitted model failed a diagnostic check (see
    :func:`~causal_mixtures.diagnostics.check_fit` with ``check="warn"``)."""


class DiagnosticsError(CausalMixturesError, RuntimeError):
    """A fitted model failed its diagnostics and training on its samples was refused."""


def __getattr__(name: str) -> Any:
    # ``ConvergenceWarning`` is scikit-learn's own class (so that scikit-learn's warning
    # filters and ours are one), imported on first use: importing scikit-learn costs about
    # a second, and the command line's ``graphs`` / ``--help`` read this module without
    # needing it (tests/test_cli.py checks their imports in a fresh interpreter).
    if name == "ConvergenceWarning":
        from sklearn.exceptions import ConvergenceWarning

        return ConvergenceWarning
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
