"""``python -m causal_mixtures``: the same command line as ``causal-mixtures``."""

from causal_mixtures.cli.main import main

raise SystemExit(main())
