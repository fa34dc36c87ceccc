"""Causal weights: conditional densities, the adjustment formulas of each estimand,
:class:`CausalWeights` (Kish ESS, Pareto k̂) and Pareto smoothing."""

from causal_mixtures.weights.core import CausalWeights, causal_weights, kish_ess

__all__ = ["CausalWeights", "causal_weights", "kish_ess"]
