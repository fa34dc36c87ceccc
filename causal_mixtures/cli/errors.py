"""Errors and exit statuses of the command line: :class:`CLIError` and its one-line text."""

from __future__ import annotations

__all__ = ["EXIT_ERROR", "EXIT_OK", "CLIError", "one_line"]

EXIT_OK = 0
EXIT_ERROR = 2


class CLIError(Exception):
    """Bad input detected by the command line itself; printed as one ``error:`` line."""


def one_line(exc: BaseException) -> str:
    """The text of ``exc`` on one line (whitespace collapsed), or its type name if empty."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
