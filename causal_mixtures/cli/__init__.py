"""The ``causal-mixtures`` command line."""

from causal_mixtures.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
