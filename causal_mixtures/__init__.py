"""causal_mixtures: mechanism learning with causally weighted Gaussian mixtures.

Train ordinary ML predictors that learn causal rather than spurious relationships when the
data are confounded by factors nobody measured (Mao & Little, arXiv:2410.20057).
"""

from . import datasets
from .density import ConditionalDensity
from .diagnostics import (
    DiagnosticsReport,
    DiagnosticsWarning,
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
    GraphSyntaxError,
    NotIdentifiableError,
    PositivityError,
    PositivityWarning,
)
from .graph import CausalGraph
from .identification import Estimand, identify
from .library import list_graphs, load_graph
from .plotting import plot_ppc, plot_trace, plot_weights
from .psis import pareto_khat, psis_smooth
from .weights import CausalWeights, causal_weights

__version__ = "0.1.0"

__all__ = [
    "to_inference_data",
    "plot_weights",
    "plot_trace",
    "plot_ppc",
    "heldout_loglik",
    "diagnose",
    "check_fit",
    "Thresholds",
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
    "GraphSyntaxError",
    "MechanismLearner",
    "NotIdentifiableError",
    "PositivityError",
    "PositivityWarning",
    "causal_weights",
    "datasets",
    "identify",
    "list_graphs",
    "load_graph",
    "pareto_khat",
    "psis_smooth",
]
