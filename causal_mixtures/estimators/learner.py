"""Mechanism learning: train any scikit-learn estimator on deconfounded data drawn from a
fitted resampler, after the diagnostics gate has passed the fit."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from causal_mixtures._random import check_random_state, derive_seed
from causal_mixtures._validation import HasMethods, Interval, Options, validate_params
from causal_mixtures.diagnostics import CHECK_MODES, check_fit
from causal_mixtures.estimators.common import clear_fit
from causal_mixtures.estimators.gaussian_mixture import CausalGaussianMixture

__all__ = ["MechanismLearner"]


def _estimator_has(attr: str) -> Any:
    def check(self: MechanismLearner) -> bool:
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


class MechanismLearner(MetaEstimatorMixin, BaseEstimator):
    """Train any scikit-learn estimator on a deconfounded dataset (mechanism learning).

    ``fit`` resamples the observational data with ``resampler`` (by default a
    :class:`CausalGaussianMixture`) into draws from ``p(x | do(y))`` labelled with ``y``, then
    fits a clone of ``estimator`` on them. The fitted model predicts ``y`` from ``x`` through
    the causal relationship rather than through the confounders.

    With ``n_resamples = M > 1`` it trains an ensemble of ``M`` models on ``M`` deconfounded
    datasets and reports the spread of their predictions, like
    ``GaussianProcessRegressor.predict(return_std=True)``. With a resampler fitted with
    ``inference="bayes"`` the datasets come from ``M`` different posterior draws
    (:meth:`CausalGaussianMixture.posterior_datasets`), so the spread reflects the
    uncertainty of the deconfounding fit; with any other resampler they are independent
    resamples of one fit, and the spread reflects resampling noise only.

    Parameters
    ----------
    estimator : estimator object
        Any scikit-learn classifier or regressor.
    resampler : CausalGaussianMixture or CausalBootstrap, optional
        Cloned before use; default ``CausalGaussianMixture()``.
    n_resamples : int, default=1
        Number of deconfounded datasets, hence of downstream models.
    check : {"raise", "warn", "off"}, default="warn"
        Diagnostics gate (:func:`causal_mixtures.diagnose`) run on the fitted resampler
        before the downstream model is trained. ``"raise"``: refuse to train on a fit that
        fails a check (:class:`~causal_mixtures.DiagnosticsError` naming the failed checks
        and what to try). ``"warn"``: train, with a
        :class:`~causal_mixtures.DiagnosticsWarning`. ``"off"``: skip the checks.

    Attributes
    ----------
    estimator_ : estimator
        The fitted downstream model (the first one when ``n_resamples > 1``).
    estimators_ : list of estimator
        The ``n_resamples`` fitted downstream models.
    resampler_ : the fitted resampler
    diagnostics_ : DiagnosticsReport
        The gate's report (empty with ``check="off"``).
    classes_ : ndarray
        For classifiers.
    """

    def __init__(
        self, estimator: Any, *, resampler: Any = None, n_resamples: int = 1,
        check: str = "warn",
    ) -> None:
        self.estimator = estimator
        self.resampler = resampler
        self.n_resamples = n_resamples
        self.check = check

    _parameter_constraints: dict[str, list[Any]] = {
        "estimator": [HasMethods("fit", "predict")],
        "resampler": [None, HasMethods("fit_resample")],
        "n_resamples": [Interval("int", 1, None)],
        "check": [Options(*CHECK_MODES)],
    }

    def __sklearn_tags__(self) -> Any:
        """The downstream estimator's type and target tags (so ``is_classifier`` /
        ``is_regressor`` and scorers treat the learner as the model it trains)."""
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = copy.deepcopy(inner.classifier_tags)
        tags.regressor_tags = copy.deepcopy(inner.regressor_tags)
        tags.target_tags.required = True
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        mechanism: Any = None,
        covariates: Any = None,
        do: Any = None,
        n_samples: Any = None,
    ) -> MechanismLearner:
        """Deconfound ``(X, y)`` with the resampler, then fit the estimator on the result.

        Parameters
        ----------
        X, y, mechanism, covariates, do
            As in :meth:`CausalGaussianMixture.fit`.
        n_samples : int or None
            Draws per intervention value for each deconfounded training set.

        Returns
        -------
        self
        """
        clear_fit(self)
        validate_params(self, self._parameter_constraints)
        m = self.n_resamples
        resampler = clone(self.resampler) if self.resampler is not None else CausalGaussianMixture()
        if m == 1:
            datasets = [
                resampler.fit_resample(
                    X, y, mechanism=mechanism, covariates=covariates, do=do, n_samples=n_samples
                )
            ]
        elif isinstance(resampler, CausalGaussianMixture):
            resampler.fit(X, y, mechanism=mechanism, covariates=covariates, do=do)
            if hasattr(resampler, "posterior_"):
                datasets = resampler.posterior_datasets(m, n_samples=n_samples)
            else:
                rng = check_random_state(resampler.random_state)
                datasets = [
                    resampler.resample(n_samples, template=X, random_state=rng)
                    for _ in range(m)
                ]
        else:
            rng = check_random_state(getattr(resampler, "random_state", None))
            datasets = []
            for _ in range(m):
                r = clone(resampler).set_params(random_state=derive_seed(rng) % (2**32 - 1))
                datasets.append(
                    r.fit_resample(
                        X, y, mechanism=mechanism, covariates=covariates, do=do,
                        n_samples=n_samples,
                    )
                )
                resampler = r
        self.resampler_ = resampler
        # A resampler fitted in a representation checks itself on what it kept of its
        # training rows (in that space); the rows in the data's columns would not match.
        X_gate = X if getattr(resampler, "representation_", None) is None else None
        self.diagnostics_ = check_fit(resampler, self.check, X_gate, stacklevel=3)
        self.estimators_ = [clone(self.estimator).fit(X_new, y_new) for X_new, y_new in datasets]
        self.estimator_ = self.estimators_[0]
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        self.n_features_in_ = resampler.n_features_in_
        return self

    def _check_std(self, return_std: bool) -> None:
        check_is_fitted(self, "estimators_")
        if return_std and len(self.estimators_) < 2:
            raise ValueError(
                "return_std=True needs an ensemble to measure the spread across models: got "
                f"n_resamples={self.n_resamples}. Refit with n_resamples >= 2 (and a resampler "
                "with inference='bayes' for the uncertainty of the deconfounding)."
            )

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Predict with the downstream estimator(s).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Regressors with ``n_resamples >= 2`` only: also return the standard deviation
            (ddof=1) of the ensemble's predictions.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            One model: its prediction. An ensemble: the mean prediction (regressors), or the
            class with the largest mean probability (classifiers; majority vote without
            ``predict_proba``).
        y_std : ndarray of shape (n_samples,)
            Only when ``return_std=True``.
        """
        self._check_std(return_std)
        if is_classifier(self.estimator_):
            if return_std:
                raise ValueError(
                    "predict(X, return_std=True) is for regressors; for a classifier use "
                    "predict_proba(X, return_std=True)."
                )
            if len(self.estimators_) == 1:
                return self.estimator_.predict(X)
            if hasattr(self.estimator_, "predict_proba"):
                return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
            votes = np.stack([np.searchsorted(self.classes_, e.predict(X)) for e in self.estimators_])
            counts = np.apply_along_axis(np.bincount, 0, votes, minlength=len(self.classes_))
            return self.classes_[np.argmax(counts, axis=0)]
        if len(self.estimators_) == 1:
            return self.estimator_.predict(X)
        preds = np.stack([np.asarray(e.predict(X), dtype=float) for e in self.estimators_])
        mean = preds.mean(0)
        return (mean, preds.std(0, ddof=1)) if return_std else mean

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any, return_std: bool = False) -> Any:
        """Class probabilities from the downstream estimator(s).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            With ``n_resamples >= 2``: also return the standard deviation (ddof=1) of each
            probability across the ensemble.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            The (mean) probabilities.
        proba_std : ndarray of shape (n_samples, n_classes)
            Only when ``return_std=True``.
        """
        self._check_std(return_std)
        if len(self.estimators_) == 1:
            return self.estimator_.predict_proba(X)
        probas = np.stack([e.predict_proba(X) for e in self.estimators_])
        mean = probas.mean(0)
        return (mean, probas.std(0, ddof=1)) if return_std else mean

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision function of the downstream estimator (ensemble mean)."""
        check_is_fitted(self, "estimators_")
        if len(self.estimators_) == 1:
            return self.estimator_.decision_function(X)
        return np.mean([e.decision_function(X) for e in self.estimators_], axis=0)

    def score(self, X: Any, y: Any) -> float:
        """Accuracy (classifiers) or R² (regressors) of :meth:`predict` on ``(X, y)``."""
        check_is_fitted(self, "estimators_")
        if len(self.estimators_) == 1:
            return self.estimator_.score(X, y)
        from sklearn.metrics import accuracy_score, r2_score

        if is_classifier(self.estimator_):
            return float(accuracy_score(y, self.predict(X)))
        return float(r2_score(y, self.predict(X)))
