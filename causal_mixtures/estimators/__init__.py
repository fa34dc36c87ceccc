"""Estimators: the causally weighted Gaussian mixture, the causal bootstrap, the
mechanism-learning meta-estimator, the autoencoder representation, the plug-in front-door sampler, the linear MSM and the doubly
robust front-door estimator of interventional means."""

from causal_mixtures.estimators.autoencoder import Autoencoder
from causal_mixtures.estimators.bootstrap import CausalBootstrap
from causal_mixtures.estimators.doubly_robust import InterventionalMeans, front_door_means
from causal_mixtures.estimators.gaussian_mixture import CausalGaussianMixture
from causal_mixtures.estimators.learner import MechanismLearner
from causal_mixtures.estimators.msm import fit_linear_msm

__all__ = [
    "Autoencoder",
    "CausalBootstrap",
    "CausalGaussianMixture",
    "InterventionalMeans",
    "MechanismLearner",
    "fit_linear_msm",
    "front_door_means",
]
