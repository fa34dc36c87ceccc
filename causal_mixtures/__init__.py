"""causal_mixtures: mechanism learning with causally weighted Gaussian mixtures.

Train ordinary ML predictors that learn causal rather than spurious relationships when the
data are confounded by factors nobody measured (Mao & Little, arXiv:2410.20057).

The flow: graph spec → identification → densities → causal weights → weighted mixture (EM or
SVI, one Pyro model) → diagnostics gate → samples of ``p(x | do(y))`` → downstream estimator.
"""

from causal_mixtures.diagnostics import (
    DiagnosticsReport,
    Thresholds,
    check_fit,
    diagnose,
    heldout_loglik,
    to_inference_data,
)
from causal_mixtures.diagnostics.plots import plot_ppc, plot_trace, plot_weights
from causal_mixtures.estimators import CausalBootstrap, CausalGaussianMixture, MechanismLearner
from causal_mixtures.estimators import plugin as plugin
from causal_mixtures.estimators.msm import fit_linear_msm
from causal_mixtures.graph.core import CausalGraph
from causal_mixtures.graph.identify import Estimand, identify
from causal_mixtures.graph.specs import GraphSpec, list_graphs, load_graph, load_spec
from causal_mixtures.simulate import datasets as datasets
from causal_mixtures.simulate.scm import StructuralCausalModel
from causal_mixtures.weights.core import CausalWeights, causal_weights
from causal_mixtures.weights.density import ConditionalDensity
from causal_mixtures.weights.psis import pareto_khat, psis_smooth

from .exceptions import (
    ConvergenceWarning,
    DiagnosticsError,
    DiagnosticsWarning,
    GraphSyntaxError,
    NotIdentifiableError,
    PositivityError,
    PositivityWarning,
)

__version__ = "0.1.0"

__all__ = [
    "CausalBootstrap",
    "CausalGaussianMixture",
    "CausalGraph",
    "CausalWeights",
    "ConditionalDensity",
    "ConvergenceWarning",
    "DiagnosticsError",
    "DiagnosticsReport",
    "DiagnosticsWarning",
    "Estimand",
    "GraphSpec",
    "GraphSyntaxError",
    "MechanismLearner",
    "NotIdentifiableError",
    "PositivityError",
    "PositivityWarning",
    "StructuralCausalModel",
    "Thresholds",
    "causal_weights",
    "check_fit",
    "datasets",
    "diagnose",
    "fit_linear_msm",
    "heldout_loglik",
    "identify",
    "list_graphs",
    "load_graph",
    "load_spec",
    "pareto_khat",
    "plot_ppc",
    "plot_trace",
    "plot_weights",
    "plugin",
    "psis_smooth",
    "to_inference_data",
]
