"""The ``graphs`` subcommand: list the named causal-graph specs.

It needs only :mod:`causal_mixtures.graph` (no torch).
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from causal_mixtures.cli.errors import EXIT_OK

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``graphs`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    parser = subparsers.add_parser("graphs", help="list the named causal-graph specs",
                                   description="List the named causal-graph specs.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print each graph, estimand and reference")
    # no model is fitted: main() need not load scikit-learn for its ConvergenceWarning filter
    parser.set_defaults(handler=run, fits_models=False)
    return parser


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print the named graph specs, one per line, with their titles and graphs.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``graphs`` options (``verbose``).
    out, err : text streams

    Returns
    -------
    int
        The exit status.
    """
    from causal_mixtures.graph.specs import list_graphs, load_spec

    names = list_graphs()
    width = max((len(n) for n in names), default=0)
    for name in names:
        spec = load_spec(name)
        ident = "" if spec.identifiable else "  [not identifiable]"
        print(f"{name:<{width}}  {spec.title}{ident}", file=out)
        if args.verbose:
            print(f"{'':<{width}}  graph: {spec.graph.to_string()}", file=out)
            if spec.estimand:
                print(f"{'':<{width}}  estimand: {spec.estimand}", file=out)
            print(f"{'':<{width}}  reference: {spec.reference}", file=out)
    return EXIT_OK
