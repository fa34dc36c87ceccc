"""Diagnostics of a fitted deconfounding model: checks, the gate, reports, held-out
criteria, ArviZ conversion and plots."""

from causal_mixtures.diagnostics.checks import (
    CHECK_MODES,
    DiagnosticsReport,
    Thresholds,
    check_fit,
    diagnose,
    heldout_loglik,
    to_inference_data,
)

__all__ = [
    "CHECK_MODES",
    "DiagnosticsReport",
    "Thresholds",
    "check_fit",
    "diagnose",
    "heldout_loglik",
    "to_inference_data",
]
