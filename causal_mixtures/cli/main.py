"""The ``causal-mixtures`` command: the argument parser and :func:`main`.

:func:`main` parses the arguments, dispatches to the subcommand's ``run`` and maps failures
to exit statuses: bad input ends with one ``error: ...`` line on stderr and status 2, never a
traceback; the package's warnings (positivity, convergence) become ``warning: ...`` lines.
The subcommands live in :mod:`~causal_mixtures.cli.demo`,
:mod:`~causal_mixtures.cli.deconfound` and :mod:`~causal_mixtures.cli.graphs`; see
``docs/cli.md`` for the layout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from causal_mixtures.cli import deconfound, demo, graphs
from causal_mixtures.cli.errors import EXIT_ERROR, EXIT_OK, CLIError, one_line
from causal_mixtures.cli.options import thread_limit

__all__ = ["PROG", "build_parser", "main"]

PROG = "causal-mixtures"


class _ArgumentParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose usage errors are one line on stderr."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``causal-mixtures`` command.

    Returns
    -------
    argparse.ArgumentParser
    """
    from causal_mixtures import __version__

    parser = _ArgumentParser(
        prog=PROG,
        description="Mechanism learning: deconfound training data with causally weighted "
        "Gaussian mixtures (Mao & Little, arXiv:2410.20057).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (demo, deconfound, graphs):
        command.add_parser(sub)
    return parser


def _emit_warnings(caught: Sequence[warnings.WarningMessage], stream: TextIO) -> None:
    seen: set[str] = set()
    for w in caught:
        text = f"warning: {w.category.__name__}: {' '.join(str(w.message).split())}"
        if text not in seen:
            seen.add(text)
            print(text, file=stream)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout without a fd
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``causal-mixtures`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments, without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 on bad input (after a one-line ``error: ...`` on stderr).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_ERROR)
    handler: Callable[..., int] = args.handler
    from causal_mixtures.exceptions import PositivityWarning

    with warnings.catch_warnings(record=True) as caught:
        # The package's own warnings are reported as one line each; any other warning keeps
        # the caller's filters (so the test suite's "error" filter still applies to it).
        warnings.simplefilter("always", PositivityWarning)
        if getattr(args, "fits_models", True):
            # scikit-learn's class: importing it costs about a second, which `graphs` skips
            from causal_mixtures.exceptions import ConvergenceWarning

            warnings.simplefilter("always", ConvergenceWarning)
        try:
            threads = getattr(args, "threads", None)
            with contextlib.nullcontext() if threads is None else thread_limit(threads):
                status = handler(args, sys.stdout, sys.stderr)
        except BrokenPipeError:  # e.g. `causal-mixtures graphs | head -1`
            _silence_stdout()
            return EXIT_OK
        except (CLIError, ValueError, OSError, ImportError) as exc:
            sys.stdout.flush()
            _emit_warnings(caught, sys.stderr)
            message = one_line(exc)
            if isinstance(exc, ImportError) and "parquet" in message.lower():
                message += " (install pyarrow: pip install 'causal_mixtures[parquet]')"
            print(f"error: {message}", file=sys.stderr)
            return EXIT_ERROR
    sys.stdout.flush()
    _emit_warnings(caught, sys.stderr)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
