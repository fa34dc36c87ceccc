"""The causally weighted Gaussian mixture (CW-GMM): one mixture per intervention value,
fitted to the observational rows with the causal weights (or to plug-in draws of the
front-door formula), then sampled into a deconfounded dataset.

The estimator orchestrates: weights → initialisation → fitter (EM, SVI-MAP, variational
posterior or NUTS, all of one shape) → K selection by the weighted BIC → fitted attributes.

References
----------
J. Mao and M. A. Little (2024). Mechanism learning: reverse causal inference in the presence of
multiple unknown confounding through front-door causal bootstrapping. arXiv:2410.20057.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from causal_mixtures._random import RandomState, check_random_state
from causal_mixtures._validation import (
    as_2d_float,
    check_int,
    resolve_device,
)
from causal_mixtures.estimators.common import (
    check_feature_names,
    check_fit_inputs,
    clear_fit,
    estimate_weights,
    match_do,
    not_converged_message,
)
from causal_mixtures.estimators.constraints import CONSTRAINTS, HINTS, check_params
from causal_mixtures.estimators.fitting import fit_mixtures, store_fit
from causal_mixtures.estimators.out_of_core import fit_distributed, fit_stream
from causal_mixtures.estimators.per_do import (
    fit_per_do,
    is_per_do,
)
from causal_mixtures.estimators.representation import (
    clip_bounds,
    embed_mechanism,
    fit_effect_representation,
    mechanism_density,
    to_original,
)
from causal_mixtures.estimators.sampling import (
    class_counts,
    draw_dataset,
    draw_posterior_datasets,
    observed_counts,
)
from causal_mixtures.estimators.strategy import resolve_strategy, store_strategy
from causal_mixtures.exceptions import ConvergenceWarning
from causal_mixtures.mixture.params import Mixture

__all__ = ["CausalGaussianMixture"]

class CausalGaussianMixture(BaseEstimator):
    """Causally weighted Gaussian mixture (CW-GMM): one mixture ``q_y(x)`` per intervention
    value ``y``, fitted to the observational rows with the causal weights ``w_n(y)``, so that
    ``q_y`` estimates the interventional distribution ``p(x | do(y))``.

    All intervention values (and all ``n_init`` restarts) are fitted at once, batched on a
    leading axis, by weighted EM in float64 (:mod:`causal_mixtures.mixture.em`).

    Parameters
    ----------
    graph : str or CausalGraph, default="front_door"
        The assumed causal graph: a registered name (see :func:`~causal_mixtures.list_graphs`),
        a spec file path or a :class:`~causal_mixtures.CausalGraph`.
    n_components : int, "auto", dict or str, default=1
        Components per mixture. ``"auto"`` chooses ``K`` by the weighted BIC (computed on the
        Kish effective sample size, summed over intervention values) among
        ``n_components_range``. One K per intervention value (imbalanced classes,
        :mod:`~causal_mixtures.estimators.per_do`): a dict ``{do value: K or "auto"}``
        (``"auto"``: that do value's own BIC), or a rule ``"n/c"`` (``K = n_y // c`` from the
        training rows of class ``y``) or ``"ess/c"`` (from the Kish ESS of its weights),
        capped at what the effective rows support; EM only.
    covariance_type : {"full", "diag", "spherical"}, default="full"
    inference : {"em", "svi", "bayes"}, default="em"
        Fitting method; all three fit the same Pyro model
        (:class:`~causal_mixtures.mixture.model.CausalMixtureModel`). ``"em"`` (weighted EM) is the
        production fitter. ``"svi"``: MAP under flat priors (the same weighted
        maximum-likelihood optimum) by stochastic variational inference with an
        ``AutoDelta`` guide, warm-started from EM; it supports minibatches
        (``subsample_size``) and serves as a cross-check of EM. ``"bayes"``: a posterior over
        the mixture parameters under weakly informative, data-scaled priors (SVI with a
        Gaussian guide, or NUTS with ``guide="nuts"``); then :meth:`sample` draws from the
        posterior predictive and :meth:`posterior_datasets` gives many plausible
        deconfounded datasets. See :mod:`causal_mixtures.mixture.bayes`.
    density : str or ConditionalDensity, default="auto"
        Estimator of the weight factors ``p(z | y)``; see :mod:`causal_mixtures.density`.
    weight_smoothing : {None, "psis"}, default=None
        Pareto-smooth the causal weights before fitting.
    tol : float, default=1e-3
        Convergence threshold on the change of the weighted mean log-likelihood.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance.
    max_iter : int, default=100
    n_init : int, default=1
        Restarts per intervention value; the best weighted log-likelihood is kept.
    init_params : {"kmeans", "k-means++", "random_from_data"}, default="kmeans"
        Weighted initialisation: weighted k-means (``KMeans(sample_weight=w)``), weighted
        k-means++ seeding, or centres drawn with probability ``w``.
    weights_init, means_init, precisions_init : array-like, optional
        User initial parameters, in scikit-learn's shapes, optionally with a leading
        intervention axis. When all three are given the fit does not depend on
        ``init_params``.
    n_components_range : sequence of int, optional
        Candidates for ``n_components="auto"``. Default: ``K = 1, 2, ...`` until the summed
        BIC has not improved for two K in a row, bounded only by the effective rows (no
        top of the range can be chosen for want of candidates).
    random_state : int, numpy.random.Generator or None, default=None
        The only source of randomness (initialisation and sampling).
    device : {"cpu", "cuda"}, default="cpu"
        Where the EM, SVI and sampling tensors and a KDE weight's exact kernel sums live.
    dtype : {"auto", "float64", "float32"}, default="auto"
        Precision of the EM's tensors (``inference="em"``; the weights, the checks and the
        fitted attributes stay float64). ``"float32"`` halves the EM's memory and roughly
        doubles its matrix-product speed where those dominate (2.7x faster at 1e5 x 64, full,
        two do values), for interventional means within 2e-4 sd and a per-row objective
        within 1e-4 of the float64 fit (benchmarks/bench_pipeline.py). ``"auto"``: float32
        iterations followed by one float64 iteration from their result where that is fast
        and safe (at least 2e6 entries and 16 features, and a standardised covariance with
        condition number at most 1e4), float64 otherwise; ``dtype_`` and ``dtype_reason_``
        say which ran and why.
    verbose : bool, default=False
        Show a progress bar.
    strategy : {"auto", "weighting", "plugin"}, default="auto"
        How the interventional distribution is estimated. ``"weighting"`` (the paper's
        method): the observational rows, weighted by the causal weights. ``"plugin"``
        (front-door graphs, with or without covariates): fit Gaussian-mixture conditionals
        ``p(z | y, w)`` and ``p(x | y', z, w)``, sample the front-door formula itself
        (:class:`~causal_mixtures.estimators.plugin.PluginFrontDoor`) and fit the mixture of
        each intervention value to those draws: no importance weights, so intervention
        values far from the bulk keep their precision, if the conditionals are well
        specified. ``"auto"``: fit the plug-in's conditionals next to the weights; take
        weighting when the weights pass their checks (a disagreement with the plug-in shows
        as a failed ``cross_check``), the plug-in when the weights fail and its conditionals
        reproduce the data; weighting where the plug-in does not apply. The choice and its reason are in ``strategy_`` and
        ``strategy_reason_`` (:mod:`causal_mixtures.estimators.strategy`).
    plugin_components : int or "auto", default="auto"
        ``strategy="plugin"``: components of each conditional mixture (``"auto"``: by BIC).
    plugin_draws : int or None, default=None
        ``strategy="plugin"``: draws per intervention value; ``None`` means ``n_samples``
        within [50 per mixture parameter, 200 000] (``docs/estimators.md``).
    positivity : {"raise", "warn"}, default="raise"
        When the causal weights show that positivity fails (under some intervention a value
        of the cause keeps almost none of its weight share, e.g. a mechanism that copies the
        cause), ``fit`` raises :class:`~causal_mixtures.PositivityError`: the front-door
        formula is not identified from the data and the weighted mixtures would be the
        confounded ``p(x | y)``. ``"warn"`` fits anyway, with a warning.
    weight_mass : {"n", "ess"} or None, default=None
        ``inference="bayes"`` only: the sample size the normalised weighted likelihood is
        scaled to before it meets the prior. ``"n"`` (the number of rows) overstates the
        information in importance-weighted data; ``"ess"`` (the Kish effective sample size
        of each intervention value) makes the posterior width honest. ``None`` means
        ``"ess"``. It does not change the optimum of ``"em"`` or ``"svi"`` (flat priors).
    n_steps : int, default=1000
        ``"svi"``/``"bayes"``: maximum number of optimisation steps (they stop earlier once
        the objective has plateaued, see ``tol``). ``"svi"`` without ``subsample_size``
        takes trust-region Newton steps on the full-batch ELBO (``n_steps`` then counts its
        evaluations) and stops when the predicted remaining gain is below
        ``min(tol, 1e-6 · |objective|)`` (``causal_mixtures.mixture.svi.fit_map``,
        ``docs/inference.md``).
    learning_rate : float, default=0.01
        Initial Adam learning rate (on standardised data), decayed geometrically to a tenth
        over ``n_steps`` (minibatch ``"svi"`` and ``"bayes"``).
    subsample_size : int or None, default=None
        ``"svi"``/``"bayes"``: rows per optimisation step (uniform minibatches drawn with
        replacement, the log-likelihood scaled up by ``n / subsample_size``), so the memory
        and the cost of a step stay bounded for any number of rows. ``None`` uses every row
        at every step.
    n_posterior_draws : int, default=200
        ``"bayes"``: posterior draws stored in ``posterior_`` (for ``guide="nuts"`` also
        the number of warm-up steps).
    guide : {"auto", "mvn", "lowrank", "diagonal", "nuts"}, default="auto"
        ``"bayes"``: variational family on the unconstrained parameters (full
        multivariate normal, low-rank plus diagonal, diagonal; ``"auto"`` is ``"mvn"`` up to
        200 parameters, ``"lowrank"`` above), or ``"nuts"`` for MCMC (exact but slow; at
        most 2000 rows).
    svi_init : {"em", "init_params"}, default="em"
        ``"svi"``/``"bayes"``: start from the EM fit (the default: EM at ``tol`` brings the
        fit close, full-batch SVI's Newton steps finish it in a handful of evaluations),
        or from the ``init_params`` initialisation (an
        independent cross-check of EM; needs an int ``n_components``).

    representation : "auto", None or transformer, default="auto"
        The space the mixtures are fitted in (:mod:`~causal_mixtures.estimators.representation`):
        any scikit-learn transformer with ``fit``, ``transform`` and ``inverse_transform``
        (e.g. ``PCA``, or :class:`~causal_mixtures.Autoencoder` where PCA is not enough),
        fitted on the training rows; ``sample``, ``resample`` and ``fit_resample`` map the
        draws back with ``inverse_transform``. ``"auto"``: ``PCA(n_components=0.95,
        svd_solver="full")`` when ``X`` has more than 256 columns (images), none otherwise
        (every fit of at most 256 columns is unchanged). ``None``: the columns as they are.
        With a representation, ``strategy="auto"`` means weighting.
    mechanism_representation : "auto", None or transformer, default="auto"
        Embedding of a many-column mechanism (an image-valued ``z``, e.g. a lesion mask)
        before its density ``p(z | y)`` is estimated. ``"auto"``: the leading 8 principal
        components when the mechanism has more than 256 columns, none otherwise. With an
        embedded mechanism and a discrete cause, ``density="auto"`` means
        :class:`~causal_mixtures.ClassifierDensity` (the weights from a classifier of ``y``
        given the embedding).
    clip : bool or "auto", default="auto"
        Clip every draw, in the data's columns, to the range of the training rows (per
        column). ``"auto"``: only when the draws come back through a representation.
    class_balance : {"balanced", "observed"}, default="balanced"
        Draws per intervention value when ``n_samples`` is not given (``fit_resample``,
        ``resample``, ``posterior_datasets``): ``"balanced"``, ``n_rows // n_do`` each
        (deconfounded classes are balanced, as a non-confounded test set with a uniform
        cause); ``"observed"``, ``n_rows`` split in the proportions of the training classes
        (the observed ``p(y)``; needs a discrete cause).

    Attributes
    ----------
    do_values_ : ndarray of shape (n_do,)
    causal_weights_ : CausalWeights
    weights_ : ndarray of shape (n_do, n_components)
        Mixing proportions.
    means_ : ndarray of shape (n_do, n_components, n_features)
    covariances_ : ndarray
        ``(n_do, K, d, d)`` full, ``(n_do, K, d)`` diag, ``(n_do, K)`` spherical.
    precisions_cholesky_ : ndarray, same shape as ``covariances_``
    converged_ : ndarray of shape (n_do,), bool
    n_iter_ : ndarray of shape (n_do,)
    dtype_, dtype_reason_ : str
        The EM's precision (``"float64"`` or ``"float32"``; EM fits) and why.
    lower_bound_ : ndarray of shape (n_do,)
        Weighted log-likelihood ``Σ_n w̃_n log q(x_n)`` of the final parameters (for
        ``"bayes"``: of the posterior-mean parameters).
    lower_bounds_ : ndarray
        Objective trace. ``"em"``: shape (n_iter, n_do), of the best restart. ``"svi"``:
        shape (n_steps_run, n_do), the minibatch estimate of ``Σ_n w̃_n log q(x_n)`` at
        every step (full batch: its value at every ELBO evaluation of the Newton steps,
        the starting point first; a rejected step repeats the value kept). ``"bayes"`` with an SVI guide: shape (n_steps_run,), the ELBO of the
        whole model (nats, likelihood scaled by the weight mass); with NUTS: shape
        (n_posterior_draws, n_do), ``Σ_n w̃_n log q(x_n)`` at every draw.
    posterior_ : dict of ndarray
        ``"bayes"`` only. Posterior draws with leading dimensions (chain, draw):
        ``"weights"`` (chain, draw, n_do, K), ``"means"`` (chain, draw, n_do, K, d),
        ``"covariances"`` (chain, draw, n_do, K, d, d) / (..., K, d) / (..., K) by
        ``covariance_type``. ``weights_``, ``means_`` and ``covariances_`` are their means.
    prior_ : MixturePrior
        ``"bayes"`` only: the priors used (NumPy hyperparameters, data coordinates).
    guide_ : str
        ``"bayes"`` only: the guide used (``"auto"`` resolved).
    weight_mass_ : str
        ``"svi"``/``"bayes"``: the weight-mass policy used.
    likelihood_mass_ : ndarray of shape (n_do,)
        ``"svi"``/``"bayes"``: the likelihood mass (``n`` or Kish ESS) per do value.
    fitted_inference_ : str
        ``"svi"``/``"bayes"``: the inference the attributes come from.
    bic_ : ndarray of shape (n_do,)
        Weighted BIC of the fitted mixtures.
    reseeded_ : ndarray of shape (n_do,), bool
        EM fits: do values whose first fit had a component resting on fewer effective rows
        than its covariance needs and were refitted from fresh k-means++ starts.
    dropped_components_ : ndarray of shape (n_do,), int
        EM fits: degenerate components that stayed so and were dropped (weight zero, the
        others refitted): the mixture of that do value has that many fewer components. A
        fit that cannot be repaired raises :class:`~causal_mixtures.DegenerateFitError`.
    strategy_ : str
        The strategy used (``"weighting"`` or ``"plugin"``), and ``strategy_reason_`` why.
    cross_check_ : dict
        ``strategy="auto"``: both estimates of every interventional mean with their
        standard errors (the ``cross_check`` diagnostic).
    plugin_check_ : dict
        Plug-in fits: the observed and the conditionals' implied mean and sd of ``x`` per
        stratum of the cause (the ``plugin_fit`` diagnostic).
    weighted_reference_ : WeightedReference
        Weighted moments, quantiles and their standard errors of the training rows per
        intervention value (:mod:`causal_mixtures.diagnostics.reference`): what
        :func:`~causal_mixtures.diagnose` needs, so it runs without the data passed back.
    plugin_reference_ : WeightedReference
        ``strategy="plugin"``: the same for the plug-in draws the mixtures were fitted to.
    n_components_ : int or ndarray of shape (n_do,)
        The fitted K; with a K per do value (dict or rule ``n_components``) one per do
        value, the mixtures of the smaller K padded with zero-weight components.
    representation_ : transformer or None
        The fitted effect representation; ``means_``, ``covariances_``, ``mixture()``,
        ``weighted_reference_`` and the diagnostics are in its coordinates.
    n_representation_features_ : int
        Dimension of the space the mixtures are fitted in.
    score_space_ : {"original", "representation"}
        The space :meth:`score_samples` scores in.
    mechanism_representation_ : transformer or None
        The fitted mechanism embedding.
    clip_range_ : tuple of ndarray or None
        Per-column (min, max) of the training rows the draws are clipped to.
    class_counts_ : ndarray of shape (n_do,) or None
        Training rows per do value (a discrete cause), for ``class_balance="observed"``
        and ``n_components="n/c"``.
    n_components_grid_, bic_grid_ : ndarray
        Candidates and their BIC (per intervention value) when ``n_components="auto"``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had column names.

    Examples
    --------
    >>> import causal_mixtures as cm
    >>> data = cm.datasets.make_classification_2d(2000, random_state=0)
    >>> cwgmm = cm.CausalGaussianMixture(n_components=6, random_state=0)
    >>> X_new, y_new = cwgmm.fit_resample(data.X, data.y, mechanism=data.mechanism)
    >>> X_new.shape
    (2000, 2)
    """

    def __init__(
        self,
        graph: Any = "front_door",
        n_components: int | str = 1,
        *,
        covariance_type: str = "full",
        inference: str = "em",
        density: Any = "auto",
        weight_smoothing: str | None = None,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        n_components_range: Any = None,
        random_state: RandomState = None,
        device: str = "cpu",
        dtype: str = "auto",
        verbose: bool = False,
        weight_mass: str | None = None,
        n_steps: int = 1000,
        learning_rate: float = 0.01,
        subsample_size: int | None = None,
        n_posterior_draws: int = 200,
        guide: str = "auto",
        svi_init: str = "em",
        strategy: str = "auto",
        plugin_components: int | str = "auto",
        plugin_draws: int | None = None,
        positivity: str = "raise",
        representation: Any = "auto",
        mechanism_representation: Any = "auto",
        clip: bool | str = "auto",
        class_balance: str = "balanced",
    ) -> None:
        self.graph = graph
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.inference = inference
        self.density = density
        self.weight_smoothing = weight_smoothing
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.n_components_range = n_components_range
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose
        self.weight_mass = weight_mass
        self.n_steps = n_steps
        self.learning_rate = learning_rate
        self.subsample_size = subsample_size
        self.n_posterior_draws = n_posterior_draws
        self.guide = guide
        self.svi_init = svi_init
        self.strategy = strategy
        self.plugin_components = plugin_components
        self.plugin_draws = plugin_draws
        self.positivity = positivity
        self.representation = representation
        self.mechanism_representation = mechanism_representation
        self.clip = clip
        self.class_balance = class_balance

    _parameter_constraints = CONSTRAINTS
    _parameter_hints = HINTS

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "density_estimator"
        tags.target_tags.required = True
        return tags

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        check_params(self)

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        mechanism: Any = None,
        covariates: Any = None,
        do: Any = None,
        weights: Any = None,
    ) -> CausalGaussianMixture:
        """Estimate the causal weights and fit one mixture per intervention value.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The effect (features). A pandas DataFrame keeps its column names.
        y : array-like of shape (n_samples,)
            The cause (label).
        mechanism : array-like of shape (n_samples,) or (n_samples, n_mechanism_features)
            The mechanism ``z`` (front-door graphs).
        covariates : array-like, optional
            Observed covariates, for graphs that declare them.
        do : array-like, optional
            Intervention values; defaults to the classes of a discrete ``y``; required for a
            continuous ``y``.
        weights : array-like of shape (n_samples, n_do) or CausalWeights, optional
            Precomputed causal weights; then ``mechanism`` is not needed and ``do`` labels the
            columns.

        Returns
        -------
        self
        """
        clear_fit(self)
        self._check_params()
        X_orig, y_arr, names = check_fit_inputs(X, y, weights)
        rep, X_arr = fit_effect_representation(self.representation, X_orig, self.random_state)
        embedded = embed_mechanism(self.mechanism_representation, mechanism, self.random_state)
        mechanism = embedded.values
        density = mechanism_density(self.density, embedded, y_arr)
        device = resolve_device(self.device)
        cw = estimate_weights(
            self.graph, X_arr, y_arr, mechanism=mechanism, covariates=covariates, do=do,
            weights=weights, density=density, weight_smoothing=self.weight_smoothing,
            positivity=self.positivity, device=device,
        )
        choice = resolve_strategy(self, X_arr, y_arr, mechanism, covariates, cw, weights,
                                  representation=rep is not None)
        per_do = is_per_do(self.n_components)
        res, k, bic, grid_info, prior, plugin = (fit_per_do if per_do else fit_mixtures)(
            self, X_arr, y_arr, mechanism, cw, weights, device, covariates=covariates,
            strategy=choice.strategy, sampler=choice.evidence.get("plugin"),
        )
        store_fit(self, res, cw, k, bic, X_arr, names, prior, None if per_do else grid_info,
                  plugin, reference=choice.evidence.get("weighted_reference"))
        if per_do and grid_info is not None:
            self.n_components_grid_ = {v: g for v, (g, _) in grid_info.items()}
            self.bic_grid_ = {v: b for v, (_, b) in grid_info.items()}
        store_strategy(self, choice, X_arr, y_arr, cw, covariates, mechanism)
        self.representation_ = rep
        self.mechanism_representation_ = embedded.transformer
        self.n_features_in_ = X_orig.shape[1]
        self.n_representation_features_ = X_arr.shape[1]
        self.score_space_ = "original" if rep is None else "representation"
        self.clip_range_ = clip_bounds(self.clip, rep, X_orig)
        self.class_counts_ = observed_counts(y_arr, self.do_values_)
        if not bool(res.converged.all()):
            warnings.warn(not_converged_message(self, res, cw), ConvergenceWarning, stacklevel=2)
        return self

    #: Fit out of core (docs/out_of_core.md), or on shards over processes (distributed.md).
    fit_stream, fit_distributed = fit_stream, fit_distributed

    # ------------------------------------------------------------------ using the fit
    def _check_fitted(self) -> None:
        if not hasattr(self, "means_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def mixture(self) -> Mixture:
        """The fitted mixtures as one :class:`~causal_mixtures.mixture.params.Mixture`
        (NumPy): the posterior draws for ``inference="bayes"``, else the point fit.

        The posterior belongs to the last fit: every ``fit`` clears the attributes of the
        previous one, so ``posterior_`` exists exactly when the last fit was Bayesian.
        """
        self._check_fitted()
        post = getattr(self, "posterior_", None)
        if post is not None:
            return Mixture(post["weights"], post["means"], post["covariances"],
                           self.covariance_type, is_posterior=True)
        return Mixture(self.weights_, self.means_, self.covariances_, self.covariance_type,
                       self.precisions_cholesky_)

    def to_inference_data(self, X: Any = None, y: Any = None, **kwargs: Any) -> Any:
        """The fit as an ArviZ ``InferenceData``; see
        :func:`causal_mixtures.diagnostics.to_inference_data` (groups posterior,
        sample_stats, posterior_predictive, constant_data with the causal weights and,
        with ``X``, observed_data).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), optional
            The training features (for ``observed_data``).
        y : array-like of shape (n_samples,), optional
            The training cause.
        **kwargs
            ``n_draws``, ``random_state``.
        """
        from causal_mixtures.diagnostics import to_inference_data

        self._check_fitted()
        return to_inference_data(self, X, y, **kwargs)

    def to_representation(self, X: Any) -> np.ndarray:
        """``X`` (rows in the data's columns) in the space the mixtures are fitted in:
        ``representation_.transform(X)``, or ``X`` itself without a representation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_representation_features_)
        """
        self._check_fitted()
        check_feature_names(self, X)
        X_arr = as_2d_float("X", X)
        if X_arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X_arr.shape[1]} features, but the model was fitted with "
                f"{self.n_features_in_}."
            )
        rep = getattr(self, "representation_", None)
        return X_arr if rep is None else np.asarray(rep.transform(X_arr), dtype=np.float64)

    def score_samples(self, X: Any, *, do: Any) -> np.ndarray:
        """Log-density ``log q(x | do(y))`` of each row of ``X`` under the mixture for ``do``.

        With a representation (``score_space_ == "representation"``) the density is that of
        the representation's coordinates ``T(x)``: for an orthonormal full-rank ``T`` (PCA
        keeping every component, unwhitened) it equals the density of ``x``; for a reduced
        one it is the density of the projection, not a density on the data's columns.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows in the data's columns (mapped into the representation here).
        do : scalar
            One of ``do_values_``.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X_arr = self.to_representation(X)
        j = match_do(do, self.do_values_)
        device = resolve_device(self.device)
        Xt = torch.tensor(X_arr, dtype=torch.float64, device=device)
        point = Mixture(self.weights_, self.means_, self.covariances_, self.covariance_type,
                        self.precisions_cholesky_)
        return point.select_do(j).to_torch(device).log_prob(Xt)[0].cpu().numpy()

    def sample(self, n_samples: int = 1, *, do: Any, random_state: RandomState = None) -> np.ndarray:
        """Draw from the fitted interventional mixture ``q(x | do(y))``.

        For ``inference="bayes"`` the draws come from the posterior predictive: each row
        from the mixture of a posterior draw picked at random.

        Parameters
        ----------
        n_samples : int, default=1
        do : scalar
            One of ``do_values_``.
        random_state : int, Generator or None, default=None
            Overrides the estimator's ``random_state`` for this call. With neither, draws are
            fresh; with an int they are bit-identical across calls.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            Rows in random order (not grouped by component), in the data's columns (mapped
            back through ``representation_`` and clipped to ``clip_range_`` where set).
        """
        self._check_fitted()
        n = check_int("n_samples", n_samples)
        j = match_do(do, self.do_values_)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        return to_original(self.representation_, self.mixture().sample(n, j, rng),
                           self.clip_range_)

    def posterior_datasets(
        self, n_datasets: int, *, n_samples: Any = None, random_state: RandomState = None
    ) -> list[tuple[Any, np.ndarray]]:
        """Many plausible deconfounded datasets, each from a different posterior draw.

        Dataset ``i`` is drawn (through :class:`pyro.infer.Predictive`) from the mixtures
        of one posterior draw of the parameters, so the spread across datasets carries the
        uncertainty of the fit, not only the sampling noise of one dataset. Needs
        ``inference="bayes"``.

        Parameters
        ----------
        n_datasets : int
            Number of datasets (at most the number of stored posterior draws).
        n_samples : int, sequence of int or None, default=None
            Rows per intervention value in each dataset; ``None`` follows ``class_balance``,
            as in :meth:`fit_resample`.
        random_state : int, Generator or None, default=None
            Overrides the estimator's ``random_state`` for this call.

        Returns
        -------
        list of (X_new, y_new)
            ``X_new`` of shape (n_new, n_features) (a DataFrame when ``X`` had column names
            at fit time), ``y_new`` of shape (n_new,), rows in random order.

        Raises
        ------
        ValueError
            When the model was not fitted with ``inference="bayes"``, or ``n_datasets``
            exceeds ``n_posterior_draws``.
        """
        self._check_fitted()
        if not hasattr(self, "posterior_"):
            raise ValueError(
                "posterior_datasets needs a posterior over the mixture parameters, but this "
                f"model was fitted with inference={getattr(self, 'fitted_inference_', 'em')!r}, "
                "which gives a single point estimate. Refit with inference='bayes'."
            )
        n_datasets = check_int("n_datasets", n_datasets)
        posterior = self.mixture()
        n_draws = posterior.n_chains * posterior.n_draws
        if n_datasets > n_draws:
            raise ValueError(
                f"n_datasets={n_datasets} exceeds the {n_draws} stored posterior draws, and "
                "each dataset comes from a different draw. Refit with n_posterior_draws >= "
                f"{n_datasets}."
            )
        counts = class_counts(self, self.causal_weights_.n_samples, n_samples)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        return draw_posterior_datasets(self, n_datasets, counts, rng, resolve_device(self.device))

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
        """Fit, then draw a deconfounded dataset: rows of ``q(x | do(y))`` labelled ``y``.

        Parameters
        ----------
        X, y, mechanism, covariates, do
            As in :meth:`fit`.
        n_samples : int, sequence of int or None, default=None
            Draws per intervention value. ``None``: ``n_samples_in`` draws in all, split by
            ``class_balance`` (default ``n_samples_in // n_do`` each: balanced classes).

        Returns
        -------
        X_new : ndarray (or DataFrame when ``X`` was one) of shape (n_new, n_features)
        y_new : ndarray of shape (n_new,)
        """
        self.fit(X, y, mechanism=mechanism, covariates=covariates, do=do)
        return self.resample(n_samples=n_samples, template=X)

    def resample(self, n_samples: Any = None, *, n_rows: int | None = None, template: Any = None,
                 random_state: RandomState = None) -> tuple[Any, Any]:
        """Draw a deconfounded dataset from the fitted mixtures (see :meth:`fit_resample`).

        Parameters
        ----------
        n_samples : int, sequence of int or None
            Draws per intervention value; ``None`` means ``n_rows`` in all, split by
            ``class_balance``.
        n_rows : int, optional
            Number of training rows (default: the number of rows seen in ``fit``).
        template : DataFrame, optional
            When given, ``X_new`` is a DataFrame with its columns.
        random_state : int, Generator or None
            Overrides the estimator's ``random_state``.
        """
        self._check_fitted()
        n_rows = n_rows if n_rows is not None else self.causal_weights_.n_samples
        counts = class_counts(self, n_rows, n_samples)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        return draw_dataset(self, counts, rng, template)


