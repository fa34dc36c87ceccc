"""Estimators: the causally weighted Gaussian mixture, the causal bootstrap, the
mechanism-learning meta-estimator, the plug-in front-door sampler and the linear MSM."""

from causal_mixtures.estimators.bootstrap import CausalBootstrap
from causal_mixtures.estimators.gaussian_mixture import CausalGaussianMixture
from causal_mixtures.estimators.learner import MechanismLearner
from causal_mixtures.estimators.msm import fit_linear_msm

__all__ = ["CausalBootstrap", "CausalGaussianMixture", "MechanismLearner", "fit_linear_msm"]
