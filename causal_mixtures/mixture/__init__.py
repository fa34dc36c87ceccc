"""Mixtures and their fitters: the one mixture object batched over do values, the Pyro model,
and the fitters of one shape (weighted EM, SVI-MAP, variational posterior, NUTS), each taking
rows, per-do weights and an initial mixture and returning a :class:`FitResult`."""

from causal_mixtures.mixture.params import Mixture
from causal_mixtures.mixture.result import FitResult

__all__ = ["FitResult", "Mixture"]
