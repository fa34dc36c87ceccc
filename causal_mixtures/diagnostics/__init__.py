"""Diagnostics of a fitted deconfounding model: checks, the gate, reports, held-out
criteria, ArviZ conversion and plots."""

from causal_mixtures.diagnostics.checks import diagnose, weight_checks, weighted_quantiles
from causal_mixtures.diagnostics.fitted import label_invariant_draws
from causal_mixtures.diagnostics.gate import CHECK_MODES, check_fit
from causal_mixtures.diagnostics.heldout import heldout_loglik
from causal_mixtures.diagnostics.inference_data import posterior_summary, to_inference_data
from causal_mixtures.diagnostics.report import Check, DiagnosticsReport, Thresholds

__all__ = [
    "CHECK_MODES",
    "Check",
    "DiagnosticsReport",
    "Thresholds",
    "check_fit",
    "diagnose",
    "heldout_loglik",
    "label_invariant_draws",
    "posterior_summary",
    "to_inference_data",
    "weight_checks",
    "weighted_quantiles",
]
