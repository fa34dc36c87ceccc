"""Option values shared by the subcommands: argparse types, list parsing and the row cap.

Nothing here imports torch, pyro or the estimators, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
from typing import Any

from causal_mixtures.cli.errors import CLIError

__all__ = [
    "DENSITY_CHOICES",
    "MAX_ROWS",
    "THREADS_HELP",
    "check_rows",
    "n_components",
    "positive_int",
    "seed",
    "separator",
    "split_list",
    "thread_limit",
]

THREADS_HELP = (
    "threads for torch and the BLAS/OpenMP pools (default: 1; on a shared or small machine "
    "more threads than free cores makes a fit several times slower: measured 13-44 s "
    "against 1.1 s on 2 busy cores; raise it for large fits on an idle machine)"
)


def thread_limit(n: int) -> Any:
    """``--threads``: the library's :func:`causal_mixtures.threads` around a command (the
    library itself never changes thread counts; the command line is an application and
    may)."""
    from causal_mixtures._threads import threads

    return threads(n)


# The names accepted by ``density=`` (causal_mixtures.weights.density.DENSITIES, which
# imports torch): spelled out here so that ``--help`` does not import it; a test keeps the two
# equal.
DENSITY_CHOICES = ("auto", "discrete", "gaussian", "kde", "histogram", "gmm", "logistic", "mixture")

# Most rows a subcommand generates without ``--force``.
MAX_ROWS = 10_000_000


def n_components(text: str) -> int | str:
    """``--n-components``: ``'auto'`` or a positive int."""
    if text == "auto":
        return "auto"
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive int; got {text!r}") from None
    if k < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive int; got {k}")
    return k


def positive_int(text: str) -> int:
    """An int >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int; got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int; got {v}")
    return v


def seed(text: str) -> int:
    """``--seed``: an int >= 0."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative int; got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative int; got {v}")
    return v


def separator(text: str) -> str:
    """``--sep``: one character; ``\\t`` or ``tab`` for a tab."""
    if text in ("\\t", "tab"):
        return "\t"
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"expected one character (or '\\t'); got {text!r}")
    return text


def split_list(text: str, option: str) -> list[str]:
    """The items of a comma-separated option value; none may be empty."""
    items = [s.strip() for s in text.split(",")]
    if not items or any(not s for s in items):
        raise CLIError(f"{option} expects a comma-separated list without empty items; got {text!r}")
    return items


def check_rows(total: int, what: str, force: bool) -> None:
    """Refuse to generate more than :data:`MAX_ROWS` rows unless ``--force`` was given.

    Parameters
    ----------
    total : int
        The rows the request would generate.
    what : str
        How they were requested, for the message (e.g. ``"--n-samples 6000000 x 2 do values"``).
    force : bool
        The ``--force`` flag.

    Raises
    ------
    CLIError
        If ``total > MAX_ROWS`` and not ``force``.
    """
    if total > MAX_ROWS and not force:
        raise CLIError(
            f"{what} = {total:,} rows is over the cap of {MAX_ROWS:,} rows; "
            "pass --force to generate them anyway"
        )
