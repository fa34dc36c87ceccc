"""causal_mixtures: mechanism learning with causally weighted Gaussian mixtures.

Train ordinary ML predictors that learn causal rather than spurious relationships when the
data are confounded by factors nobody measured (Mao & Little, arXiv:2410.20057).

The flow: graph spec → identification → densities → causal weights → weighted mixture (EM or
SVI, one Pyro model) → diagnostics gate → samples of ``p(x | do(y))`` → downstream estimator.
"""

from . import datasets, plugin
from .density import ConditionalDensity
from .diagnostics import (
    DiagnosticsReport,
    Thresholds,
    check_fit,
    diagnose,
    heldout_loglik,
    to_inference_data,
)
from .estimator import CausalBootstrap, CausalGaussianMixture, MechanismLearner
from .exceptions import (
    ConvergenceWarning,
    DiagnosticsError,
    DiagnosticsWarning,
    GraphSyntaxError,
    NotIdentifiableError,
    PositivityError,
    PositivityWarning,
)
from .graph import CausalGraph
from .identification import Estimand, identify
from .library import GraphSpec, list_graphs, load_graph, load_spec
from .plotting import plot_ppc, plot_trace, plot_weights
from .psis import pareto_khat, psis_smooth
from .scm import StructuralCausalModel
from .shared import fit_linear_msm
from .weights import CausalWeights, causal_weights

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
