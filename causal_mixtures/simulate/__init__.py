"""Ground truth: a causal graph compiled to a Pyro program with ``do``, and simulators of the
paper's experiments with their interventional test sets."""

from causal_mixtures.simulate.scm import StructuralCausalModel

__all__ = ["StructuralCausalModel"]
