"""The parameter table of :class:`~causal_mixtures.CausalGaussianMixture` (checked at
``fit``, scikit-learn's contract) and the checks that involve several parameters."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from causal_mixtures._validation import (
    Boolean,
    HasMethods,
    InstanceOf,
    Interval,
    Options,
    SequenceOf,
    validate_params,
)
from causal_mixtures.estimators.per_do import ComponentsPerDo, is_per_do
from causal_mixtures.estimators.representation import (
    CLIP_OPTIONS,
    EFFECT_CONSTRAINT,
    MECHANISM_CONSTRAINT,
)
from causal_mixtures.estimators.sampling import CLASS_BALANCE
from causal_mixtures.estimators.strategy import STRATEGIES
from causal_mixtures.graph.core import CausalGraph
from causal_mixtures.mixture.bayes import GUIDES, WEIGHT_MASS
from causal_mixtures.mixture.init import INIT_PARAMS
from causal_mixtures.mixture.params import COVARIANCE_TYPES
from causal_mixtures.weights.adjustment import ADJUSTED_DENSITIES
from causal_mixtures.weights.density import DENSITIES, ConditionalDensity
from causal_mixtures.weights.overlap import POSITIVITY

__all__ = ["CONSTRAINTS", "HINTS", "INFERENCE", "SVI_INITS", "check_params"]

INFERENCE = ("em", "svi", "bayes")
SVI_INITS = ("em", "init_params")

ARRAY_LIKE = InstanceOf((np.ndarray, list, tuple, torch.Tensor), "an array-like")
RANDOM_STATE = [
    None,
    Interval("int", 0, None),
    InstanceOf((np.random.Generator, np.random.RandomState), "a numpy Generator or RandomState"),
]

# One table, checked at fit (scikit-learn's contract): any one constraint must hold.
CONSTRAINTS: dict[str, list[Any]] = {
    "graph": [
        None,
        InstanceOf((str, os.PathLike, CausalGraph), "a graph name, a path or a CausalGraph"),
    ],
    "n_components": [ComponentsPerDo(), Interval("int", 1, None), Options("auto")],
    "covariance_type": [Options(*COVARIANCE_TYPES)],
    "inference": [Options(*INFERENCE)],
    "density": [
        Options(*dict.fromkeys(DENSITIES + ADJUSTED_DENSITIES)),
        InstanceOf(ConditionalDensity, "a ConditionalDensity"),
        HasMethods("fit", "log_prob"),
    ],
    "weight_smoothing": [None, Options("psis")],
    "tol": [Interval("real", 0, None)],
    "reg_covar": [Interval("real", 0, None)],
    "max_iter": [Interval("int", 1, None)],
    "n_init": [Interval("int", 1, None)],
    "init_params": [Options(*INIT_PARAMS)],
    "weights_init": [None, ARRAY_LIKE],
    "means_init": [None, ARRAY_LIKE],
    "precisions_init": [None, ARRAY_LIKE],
    "n_components_range": [None, SequenceOf(Interval("int", 1, None))],
    "random_state": RANDOM_STATE,
    "device": [InstanceOf((str, torch.device), "'cpu', 'cuda', 'cuda:N' or a torch.device")],
    "dtype": [Options("auto", "float64", "float32")],
    "verbose": [Boolean(), Interval("int", 0, None)],
    "weight_mass": [None, Options(*WEIGHT_MASS)],
    "n_steps": [Interval("int", 1, None)],
    "learning_rate": [Interval("real", 0, None, closed="neither")],
    "subsample_size": [None, Interval("int", 1, None)],
    "n_posterior_draws": [Interval("int", 2, None)],
    "guide": [Options(*GUIDES)],
    "svi_init": [Options(*SVI_INITS)],
    "strategy": [Options(*STRATEGIES)],
    "plugin_components": [Interval("int", 1, None), Options("auto")],
    "plugin_draws": [None, Interval("int", 1, None)],
    "positivity": [Options(*POSITIVITY)],
    "representation": EFFECT_CONSTRAINT,
    "mechanism_representation": MECHANISM_CONSTRAINT,
    "clip": [Boolean(), Options(*CLIP_OPTIONS)],
    "class_balance": [Options(*CLASS_BALANCE)],
}
HINTS = {
    "n_components": "Try n_components=3, 'auto' to choose K by the weighted BIC, or "
    "'n/5' for a K per class.",
    "representation": "Try representation=PCA(n_components=0.95), 'auto' or None.",
    "n_components_range": "Try n_components_range=range(1, 11).",
    "random_state": "Try random_state=0.",
}


def check_params(est: Any) -> None:
    """The parameter table, then the combinations it cannot express."""
    validate_params(est, est._parameter_constraints)
    if est.strategy == "plugin" and est.inference != "em":
        raise ValueError(
            f"strategy='plugin' is fitted by EM only; got inference={est.inference!r}. "
            "Use inference='em' or strategy='weighting'."
        )
    if is_per_do(est.n_components) and est.inference != "em":
        raise ValueError(
            f"a K per intervention value (n_components={est.n_components!r}) is fitted by "
            f"EM only; got inference={est.inference!r}. Use inference='em' or an int K."
        )
    if est.dtype == "float32" and est.inference != "em":
        raise ValueError(
            f"dtype='float32' applies to the EM fit; got inference={est.inference!r}, which "
            "runs in float64. Use dtype='float64' or inference='em'."
        )
    if est.guide == "nuts" and est.inference == "bayes" and est.subsample_size is not None:
        raise ValueError(
            "guide='nuts' uses every row at every step and cannot subsample; got "
            f"subsample_size={est.subsample_size!r}. Use subsample_size=None, or an SVI guide."
        )
