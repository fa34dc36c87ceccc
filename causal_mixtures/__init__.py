"""causal_mixtures: mechanism learning with causally weighted Gaussian mixtures.

Train ordinary ML predictors that learn causal rather than spurious relationships when the
data are confounded by factors nobody measured (Mao & Little, arXiv:2410.20057).

The flow: graph spec → identification → densities → causal weights → weighted mixture (EM or
SVI, one Pyro model) → diagnostics gate → samples of ``p(x | do(y))`` → downstream estimator.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public names are imported on first use (PEP 562), so that light entry points (the CLI's
# --help, --version and graphs) import neither torch and Pyro nor scikit-learn (whose
# exceptions and warnings ours subclass).
_LAZY = {
    **{name: "causal_mixtures.exceptions" for name in (
        "ConvergenceWarning", "DegenerateFitError", "DiagnosticsError", "DiagnosticsWarning",
        "GraphSyntaxError", "InvalidParameterError", "NotIdentifiableError",
        "PositivityError", "PositivityWarning",
    )},
    "DiagnosticsReport": "causal_mixtures.diagnostics",
    "Thresholds": "causal_mixtures.diagnostics",
    "check_fit": "causal_mixtures.diagnostics",
    "diagnose": "causal_mixtures.diagnostics",
    "heldout_loglik": "causal_mixtures.diagnostics",
    "to_inference_data": "causal_mixtures.diagnostics",
    "plot_ppc": "causal_mixtures.diagnostics.plots",
    "plot_trace": "causal_mixtures.diagnostics.plots",
    "plot_weights": "causal_mixtures.diagnostics.plots",
    "Autoencoder": "causal_mixtures.estimators",
    "CausalBootstrap": "causal_mixtures.estimators",
    "CausalGaussianMixture": "causal_mixtures.estimators",
    "ChunkedSource": "causal_mixtures.estimators.sources",
    "MechanismLearner": "causal_mixtures.estimators",
    "fit_linear_msm": "causal_mixtures.estimators.msm",
    "InterventionalMeans": "causal_mixtures.estimators.doubly_robust",
    "front_door_means": "causal_mixtures.estimators.doubly_robust",
    "CausalGraph": "causal_mixtures.graph.core",
    "Estimand": "causal_mixtures.graph.identify",
    "identify": "causal_mixtures.graph.identify",
    "FrontDoorReduction": "causal_mixtures.graph.reduce",
    "check_reduction": "causal_mixtures.graph.reduce",
    "find_reduction": "causal_mixtures.graph.reduce",
    "Hedge": "causal_mixtures.graph.hedge",
    "find_hedge": "causal_mixtures.graph.hedge",
    "IdentificationReport": "causal_mixtures.graph.report",
    "identification_report": "causal_mixtures.graph.report",
    "GraphSpec": "causal_mixtures.graph.specs",
    "list_graphs": "causal_mixtures.graph.specs",
    "load_graph": "causal_mixtures.graph.specs",
    "load_spec": "causal_mixtures.graph.specs",
    "StructuralCausalModel": "causal_mixtures.simulate.scm",
    "CausalWeights": "causal_mixtures.weights.core",
    "ClassifierDensity": "causal_mixtures.weights.classifier",
    "causal_weights": "causal_mixtures.weights.core",
    "ConditionalDensity": "causal_mixtures.weights.density",
    "kernel_device": "causal_mixtures.weights.kde",
    "pareto_khat": "causal_mixtures.weights.psis",
    "psis_smooth": "causal_mixtures.weights.psis",
    "threads": "causal_mixtures._threads",
}
_LAZY_MODULES = {
    "datasets": "causal_mixtures.simulate.datasets",
    "plugin": "causal_mixtures.estimators.plugin",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(_LAZY_MODULES[name])
    else:
        raise AttributeError(f"module 'causal_mixtures' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

__all__ = [
    "Autoencoder",
    "CausalBootstrap",
    "CausalGaussianMixture",
    "CausalGraph",
    "CausalWeights",
    "ChunkedSource",
    "ClassifierDensity",
    "ConditionalDensity",
    "ConvergenceWarning",
    "DegenerateFitError",
    "DiagnosticsError",
    "DiagnosticsReport",
    "DiagnosticsWarning",
    "Estimand",
    "FrontDoorReduction",
    "GraphSpec",
    "GraphSyntaxError",
    "Hedge",
    "IdentificationReport",
    "InterventionalMeans",
    "InvalidParameterError",
    "MechanismLearner",
    "NotIdentifiableError",
    "PositivityError",
    "PositivityWarning",
    "StructuralCausalModel",
    "Thresholds",
    "causal_weights",
    "check_fit",
    "check_reduction",
    "datasets",
    "diagnose",
    "find_hedge",
    "find_reduction",
    "fit_linear_msm",
    "front_door_means",
    "heldout_loglik",
    "identification_report",
    "identify",
    "kernel_device",
    "list_graphs",
    "load_graph",
    "load_spec",
    "pareto_khat",
    "plot_ppc",
    "plot_trace",
    "plot_weights",
    "plugin",
    "psis_smooth",
    "threads",
    "to_inference_data",
]
