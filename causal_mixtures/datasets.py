"""Simulators with ground truth (``cm.datasets``); see :mod:`causal_mixtures.simulate.datasets`."""

from causal_mixtures.simulate.datasets import *  # noqa: F403
from causal_mixtures.simulate.datasets import __all__  # noqa: F401
