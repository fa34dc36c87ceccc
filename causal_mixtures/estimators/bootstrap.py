"""The front-door causal bootstrap (the baseline of Mao & Little): resample the observed
rows with probabilities given by the causal weights."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from causal_mixtures._random import RandomState, check_random_state
from causal_mixtures._validation import Options, validate_params
from causal_mixtures.diagnostics.reference import weighted_reference
from causal_mixtures.estimators.common import (
    as_frame,
    check_fit_inputs,
    clear_fit,
    estimate_weights,
)
from causal_mixtures.estimators.gaussian_mixture import CausalGaussianMixture
from causal_mixtures.estimators.representation import (
    MECHANISM_CONSTRAINT,
    embed_mechanism,
    mechanism_density,
)
from causal_mixtures.estimators.sampling import CLASS_BALANCE, class_counts, observed_counts
from causal_mixtures.estimators.strategy import resolve_strategy

__all__ = ["CausalBootstrap"]


class CausalBootstrap(BaseEstimator):
    """Front-door causal bootstrap: resample the observed rows with probabilities given by
    the causal weights (the baseline of Mao & Little). It can only repeat observed points.

    Parameters
    ----------
    graph : str or CausalGraph, default="front_door"
    density : str or ConditionalDensity, default="auto"
    weight_smoothing : {None, "psis"}, default=None
    random_state : int, Generator or None, default=None
    positivity : {"raise", "warn"}, default="raise"
        As in :class:`CausalGaussianMixture`.
    mechanism_representation : "auto", None or transformer, default="auto"
        As in :class:`CausalGaussianMixture`: a many-column mechanism (more than 256
        columns, e.g. a mask image) is embedded (8 principal components) before its density
        is estimated.
    class_balance : {"balanced", "observed"}, default="balanced"
        Draws per do value when ``n_samples`` is not given: ``n // n_do`` each, or in the
        proportions of the training classes.

    Attributes
    ----------
    causal_weights_ : CausalWeights
    do_values_ : ndarray of shape (n_do,)
    sample_indices_ : ndarray of shape (n_new,)
        Source row of every resampled row, in output order.
    weighted_reference_ : WeightedReference
        The weighted summaries of the rows, for :func:`~causal_mixtures.diagnose`.
    strategy_reason_ : str
        As in :class:`CausalGaussianMixture` with ``strategy="weighting"``: where the weights
        are heavy-tailed (Pareto k-hat above 0.7 at some do value) the plug-in referees the
        resampled rows' answer ...
    cross_check_ : dict
        ... and its record is kept here for :func:`~causal_mixtures.diagnose` (only then).
    mechanism_representation_ : transformer or None
    class_counts_ : ndarray of shape (n_do,) or None
    """

    def __init__(
        self,
        graph: Any = "front_door",
        *,
        density: Any = "auto",
        weight_smoothing: str | None = None,
        random_state: RandomState = None,
        positivity: str = "raise",
        mechanism_representation: Any = "auto",
        class_balance: str = "balanced",
    ) -> None:
        self.graph = graph
        self.density = density
        self.weight_smoothing = weight_smoothing
        self.random_state = random_state
        self.positivity = positivity
        self.mechanism_representation = mechanism_representation
        self.class_balance = class_balance

    _parameter_constraints: dict[str, list[Any]] = {
        "graph": CausalGaussianMixture._parameter_constraints["graph"],
        "density": CausalGaussianMixture._parameter_constraints["density"],
        "weight_smoothing": [None, Options("psis")],
        "random_state": CausalGaussianMixture._parameter_constraints["random_state"],
        "positivity": CausalGaussianMixture._parameter_constraints["positivity"],
        "mechanism_representation": MECHANISM_CONSTRAINT,
        "class_balance": [Options(*CLASS_BALANCE)],
    }

    def fit_resample(
        self,
        X: Any,
        y: Any,
        *,
        mechanism: Any = None,
        covariates: Any = None,
        do: Any = None,
        n_samples: Any = None,
    ) -> tuple[Any, Any]:
        """Resample ``(X, y)`` into a deconfounded dataset.

        Parameters
        ----------
        X, y, mechanism, covariates, do
            As in :meth:`CausalGaussianMixture.fit`.
        n_samples : int, sequence of int or None
            Draws per intervention value; ``None`` means ``n_samples_in`` in all, split by
            ``class_balance``.

        Returns
        -------
        X_new, y_new
        """
        clear_fit(self)
        validate_params(self, self._parameter_constraints)
        X_arr, y_arr, _ = check_fit_inputs(X, y, None)
        embedded = embed_mechanism(self.mechanism_representation, mechanism, self.random_state)
        mechanism = embedded.values
        density = mechanism_density(self.density, embedded, y_arr)
        cw = estimate_weights(
            self.graph, X_arr, y_arr, mechanism=mechanism, covariates=covariates, do=do,
            weights=None, density=density, weight_smoothing=self.weight_smoothing,
            positivity=self.positivity,
        )
        self.causal_weights_ = cw
        self.do_values_ = np.asarray(cw.do_values)
        # The rows resampled are the weighted rows of strategy="weighting": the same referee
        # (its own generator, so the resampling below is unchanged).
        choice = resolve_strategy(
            SimpleNamespace(strategy="weighting", inference="em", random_state=self.random_state,
                            plugin_components=CausalGaussianMixture().plugin_components),
            X_arr, y_arr, mechanism, covariates, cw, None,
        )
        self.strategy_reason_ = choice.reason.replace(
            "strategy='weighting' was requested", "the causal bootstrap resamples the weighted "
            "rows", 1)
        if "cross_check" in choice.evidence:
            self.cross_check_ = choice.evidence["cross_check"]
        ref = choice.evidence.get("weighted_reference")  # computed already by a referee
        self.weighted_reference_ = (ref if ref is not None else
                                    weighted_reference(X_arr, cw.values, cw.do_values))
        self.mechanism_representation_ = embedded.transformer
        self.class_counts_ = observed_counts(y_arr, self.do_values_)
        counts = class_counts(self, len(X_arr), n_samples)
        rng = check_random_state(self.random_state)
        idx = np.concatenate(
            [rng.choice(len(X_arr), size=int(m), p=cw.values[:, j]) for j, m in enumerate(counts)]
        )
        y_new = np.repeat(self.do_values_, counts)
        order = rng.permutation(len(idx))
        self.sample_indices_ = idx[order]
        self.n_features_in_ = X_arr.shape[1]
        return as_frame(X, X_arr[self.sample_indices_]), y_new[order]
