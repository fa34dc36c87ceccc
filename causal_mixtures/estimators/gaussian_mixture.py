"""Estimators: the causally weighted Gaussian mixture, the causal bootstrap and the
mechanism-learning meta-estimator.

Assumed graph (the default, ``graph="front_door"``)::

        U (unobserved)
       ↙          ↘
      Y  →  Z  →   X          y: cause / label, z: mechanism, x: effect / features

References
----------
J. Mao and M. A. Little (2024). Mechanism learning: reverse causal inference in the presence of
multiple unknown confounding through front-door causal bootstrapping. arXiv:2410.20057.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.utils.metaestimators import available_if

from causal_mixtures._random import RandomState, check_random_state, derive_seed
from causal_mixtures._validation import as_2d_float, feature_names, resolve_device
from causal_mixtures.exceptions import ConvergenceWarning
from causal_mixtures.mixture import svi as _svi
from causal_mixtures.mixture.em import (
    COVARIANCE_TYPES,
    EMResult,
    MixtureParams,
    log_likelihood,
    n_parameters,
    params_from_responsibilities,
    weighted_em,
)
from causal_mixtures.weights.core import (
    CausalWeights,
    _as_cause,
    causal_weights,
    check_n_components,
)

__all__ = ["CausalBootstrap", "CausalGaussianMixture", "MechanismLearner"]

INFERENCE = ("em", "svi", "bayes")
INIT_PARAMS = ("kmeans", "k-means++", "random_from_data")
STRATEGIES = ("weighting", "plugin")
_DEFAULT_MAX_AUTO_K = 10


def _check_fit_inputs(
    X: Any, y: Any, weights: Any
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    X_arr = as_2d_float("X", X)
    names = feature_names(X)
    y_arr = None
    if y is not None:
        y_arr = _as_cause(y)
        if len(y_arr) != len(X_arr):
            raise ValueError(
                f"X and y must have the same number of rows; got {len(X_arr)} rows in X and "
                f"{len(y_arr)} in y."
            )
    elif weights is None:
        raise ValueError("y (the cause) is required unless explicit weights are given.")
    return X_arr, y_arr, names


def _match_do(do: Any, do_values: np.ndarray) -> int:
    """Index of the intervention value ``do`` among the fitted ones."""
    if isinstance(do, np.ndarray) and do.ndim > 0:
        if do.size != 1:
            raise ValueError(f"do must be a single intervention value here; got {do!r}.")
        do = do.reshape(-1)[0]
    for j, v in enumerate(do_values.tolist()):
        if v == do:
            return j
    if isinstance(do, numbers.Real) and do_values.dtype.kind in "fiu":
        close = np.flatnonzero(np.isclose(do_values.astype(float), float(do), rtol=1e-9, atol=1e-12))
        if len(close):
            return int(close[0])
    shown = do_values.tolist() if len(do_values) <= 12 else f"{do_values[:6].tolist()}..."
    raise ValueError(
        f"do={do!r} is not one of the intervention values the model was fitted for: {shown}. "
        "Refit with it included in do=, or pick one of these."
    )


def _batch(arr: Any, b: int, shape_tail: tuple[int, ...], name: str, dtype, device) -> torch.Tensor:
    t = torch.tensor(np.asarray(arr, dtype=np.float64), dtype=dtype, device=device)
    if t.shape == shape_tail:
        t = t.expand((b, *shape_tail)).clone()
    if tuple(t.shape[1:]) != shape_tail:
        raise ValueError(
            f"{name} must have shape {shape_tail} or (n_do, *{shape_tail}); got {tuple(t.shape)}."
        )
    return t


class CausalGaussianMixture(BaseEstimator):
    """Causally weighted Gaussian mixture (CW-GMM): one mixture ``q_y(x)`` per intervention
    value ``y``, fitted to the observational rows with the causal weights ``w_n(y)``, so that
    ``q_y`` estimates the interventional distribution ``p(x | do(y))``.

    All intervention values (and all ``n_init`` restarts) are fitted at once, batched on a
    leading axis, by weighted EM in float64 (:mod:`causal_mixtures.em`).

    Parameters
    ----------
    graph : str or CausalGraph, default="front_door"
        The assumed causal graph: a registered name (see :func:`~causal_mixtures.list_graphs`),
        a spec file path or a :class:`~causal_mixtures.CausalGraph`.
    n_components : int or "auto", default=1
        Components per mixture. ``"auto"`` chooses ``K`` by the weighted BIC (computed on the
        Kish effective sample size, summed over intervention values) among
        ``n_components_range``.
    covariance_type : {"full", "diag", "spherical"}, default="full"
    inference : {"em", "svi", "bayes"}, default="em"
        Fitting method; all three fit the same Pyro model
        (:class:`~causal_mixtures.mixture.CausalMixtureModel`). ``"em"`` (weighted EM) is the
        production fitter. ``"svi"``: MAP under flat priors (the same weighted
        maximum-likelihood optimum) by stochastic variational inference with an
        ``AutoDelta`` guide, warm-started from EM; it supports minibatches
        (``subsample_size``) and serves as a cross-check of EM. ``"bayes"``: a posterior over
        the mixture parameters under weakly informative, data-scaled priors (SVI with a
        Gaussian guide, or NUTS with ``guide="nuts"``); then :meth:`sample` draws from the
        posterior predictive and :meth:`posterior_datasets` gives many plausible
        deconfounded datasets. See :mod:`causal_mixtures.svi`.
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
        Candidates for ``n_components="auto"``; default ``1 .. 10``.
    random_state : int, numpy.random.Generator or None, default=None
        The only source of randomness (initialisation and sampling).
    device : {"cpu", "cuda"}, default="cpu"
        Where the EM tensors live.
    verbose : bool, default=False
        Show a progress bar.
    strategy : {"weighting", "plugin"}, default="weighting"
        How the interventional distribution is estimated. ``"weighting"`` (the paper's
        method): the observational rows, weighted by the causal weights. ``"plugin"``
        (front-door graphs only): fit Gaussian-mixture conditionals ``p(z | y)`` and
        ``p(x | y', z)`` and sample the front-door formula itself
        (:class:`~causal_mixtures.plugin.PluginFrontDoor`), then fit the mixture for each
        intervention value to those draws. No importance weights are involved, so
        intervention values far from the bulk of the data keep their precision; the price
        is that the conditionals must be well specified. Use it for continuous causes under
        strong confounding (``docs/results.md``); keep ``"weighting"`` when ``x`` given
        ``(y, z)`` is hard to model (e.g. step functions of ``z``, images).
    plugin_components : int, default=3
        ``strategy="plugin"``: components of each conditional mixture.
    plugin_draws : int or None, default=None
        ``strategy="plugin"``: draws per intervention value the mixtures are fitted to;
        ``None`` means ``max(n_samples, 5000)``.
    weight_mass : {"n", "ess"} or None, default=None
        ``inference="bayes"`` only: the sample size the normalised weighted likelihood is
        scaled to before it meets the prior. ``"n"`` (the number of rows) overstates the
        information in importance-weighted data; ``"ess"`` (the Kish effective sample size
        of each intervention value) makes the posterior width honest. ``None`` means
        ``"ess"``. It does not change the optimum of ``"em"`` or ``"svi"`` (flat priors).
    n_steps : int, default=1000
        ``"svi"``/``"bayes"``: maximum number of optimisation steps (they stop earlier once
        the objective has plateaued, see ``tol``).
    learning_rate : float, default=0.01
        Initial Adam learning rate (on standardised data), decayed geometrically to a tenth
        over ``n_steps``.
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
        ``"svi"``/``"bayes"``: start from the EM fit (the default: SVI is 50-1000× slower
        than EM for the same optimum), or from the ``init_params`` initialisation (an
        independent cross-check of EM; needs an int ``n_components``).

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
    lower_bound_ : ndarray of shape (n_do,)
        Weighted log-likelihood ``Σ_n w̃_n log q(x_n)`` of the final parameters (for
        ``"bayes"``: of the posterior-mean parameters).
    lower_bounds_ : ndarray
        Objective trace. ``"em"``: shape (n_iter, n_do), of the best restart. ``"svi"``:
        shape (n_steps_run, n_do), the minibatch estimate of ``Σ_n w̃_n log q(x_n)`` at
        every step. ``"bayes"`` with an SVI guide: shape (n_steps_run,), the ELBO of the
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
    n_components_ : int
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
        verbose: bool = False,
        weight_mass: str | None = None,
        n_steps: int = 1000,
        learning_rate: float = 0.01,
        subsample_size: int | None = None,
        n_posterior_draws: int = 200,
        guide: str = "auto",
        svi_init: str = "em",
        strategy: str = "weighting",
        plugin_components: int = 3,
        plugin_draws: int | None = None,
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

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        k = self.n_components
        if not (k == "auto" or (isinstance(k, numbers.Integral) and not isinstance(k, bool) and k >= 1)):
            raise ValueError(f"n_components must be a positive int or 'auto'; got {k!r}.")
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {list(COVARIANCE_TYPES)}; got "
                f"{self.covariance_type!r}."
            )
        if self.inference not in INFERENCE:
            raise ValueError(
                f"inference must be one of {list(INFERENCE)}; got {self.inference!r}."
            )
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {list(STRATEGIES)}; got {self.strategy!r}."
            )
        if self.strategy == "plugin" and self.inference != "em":
            raise ValueError(
                f"strategy='plugin' is fitted by EM only; got inference={self.inference!r}. "
                "Use inference='em' or strategy='weighting'."
            )
        if self.init_params not in INIT_PARAMS:
            raise ValueError(
                f"init_params must be one of {list(INIT_PARAMS)}; got {self.init_params!r}."
            )
        for name, lo, integer in (
            ("tol", 0.0, False), ("reg_covar", 0.0, False), ("max_iter", 1, True), ("n_init", 1, True)
        ):
            v = getattr(self, name)
            ok = isinstance(v, numbers.Integral) if integer else isinstance(v, numbers.Real)
            if not ok or isinstance(v, bool) or v < lo:
                kind = "an int" if integer else "a number"
                raise ValueError(f"{name} must be {kind} >= {lo}; got {v!r}.")

    # ------------------------------------------------------------------ weights
    def _causal_weights(
        self, X: np.ndarray, y: np.ndarray | None, mechanism: Any, covariates: Any, do: Any, weights: Any
    ) -> CausalWeights:
        if weights is not None:
            if isinstance(weights, CausalWeights):
                cw = weights
            else:
                cw = CausalWeights.from_array(weights, do)
            if cw.n_samples != len(X):
                raise ValueError(
                    f"weights must have one row per sample of X ({len(X)}); got {cw.n_samples}."
                )
            return cw
        assert y is not None
        if len(np.unique(y)) < 2:
            raise ValueError(
                f"y must take at least two distinct values to define interventions; got a "
                f"single value {np.unique(y).tolist()}. Mechanism learning contrasts "
                "interventions on the cause."
            )
        return causal_weights(
            self.graph, X, y, mechanism=mechanism, covariates=covariates, do=do,
            density=self.density, weight_smoothing=self.weight_smoothing,
        )

    # ------------------------------------------------------------------ initialisation
    def _initial_params(
        self, X: np.ndarray, Xt: torch.Tensor, Wt: torch.Tensor, W: np.ndarray, k: int,
        n_init: int, rng: np.random.Generator,
    ) -> MixtureParams:
        """Initial parameters for the batch ``[restart 0: do 0..J-1, restart 1: ...]``."""
        n_do, n = W.shape
        d = X.shape[1]
        b = n_do * n_init
        ct = self.covariance_type
        dtype, device = Xt.dtype, Xt.device
        user = (self.weights_init, self.means_init, self.precisions_init)
        resp = None
        if not all(v is not None for v in user):
            labels = np.empty((b, n), dtype=np.int64)
            for r in range(n_init):
                for j in range(n_do):
                    w = W[j]
                    seed = derive_seed(rng) % (2**32 - 1)
                    if self.init_params == "kmeans":
                        lab = KMeans(k, n_init=1, random_state=seed).fit(X, sample_weight=w).labels_
                    else:
                        if self.init_params == "k-means++":
                            centres, _ = kmeans_plusplus(X, k, sample_weight=w, random_state=seed)
                        else:
                            idx = rng.choice(n, size=k, replace=False, p=w / w.sum())
                            centres = X[idx]
                        lab = ((X[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
                    labels[r * n_do + j] = lab
            resp = torch.nn.functional.one_hot(torch.as_tensor(labels, device=device), k).to(dtype)
        Wb = Wt.repeat(n_init, 1)
        if resp is not None:
            params = params_from_responsibilities(Xt, Wb / Wb.sum(-1, keepdim=True), resp, self.reg_covar, ct)
        else:
            params = None
        tail_cov = {"full": (k, d, d), "diag": (k, d), "spherical": (k,)}[ct]
        weights = params.weights if params is not None else None
        means = params.means if params is not None else None
        prec_chol = params.precisions_cholesky if params is not None else None
        covs = params.covariances if params is not None else None
        if self.weights_init is not None:
            weights = _batch(self.weights_init, n_do, (k,), "weights_init", dtype, device).repeat(n_init, 1)
        if self.means_init is not None:
            means = _batch(self.means_init, n_do, (k, d), "means_init", dtype, device).repeat(n_init, 1, 1)
        if self.precisions_init is not None:
            prec = _batch(self.precisions_init, n_do, tail_cov, "precisions_init", dtype, device)
            prec = prec.repeat((n_init,) + (1,) * len(tail_cov))
            if ct == "full":
                covs = torch.linalg.inv(prec)
                prec_chol = torch.linalg.cholesky(prec)
            else:
                covs = 1.0 / prec
                prec_chol = torch.sqrt(prec)
        return MixtureParams(weights, means, covs, prec_chol, ct)

    # ------------------------------------------------------------------ fitting
    def _fit_k(
        self, X: np.ndarray, Xt: torch.Tensor, W: np.ndarray, k: int, rng: np.random.Generator,
        progress: Any = None,
    ) -> EMResult:
        n_do = W.shape[0]
        n_init = self.n_init
        Wt = torch.tensor(W, dtype=Xt.dtype, device=Xt.device)
        init = self._initial_params(X, Xt, Wt, W, k, n_init, rng)

        def callback(it: int, objective: torch.Tensor) -> None:
            if progress is not None:
                progress.update(1)
                progress.set_postfix(K=k, objective=f"{float(objective.mean()):.4f}")

        res = weighted_em(
            Xt, Wt.repeat(n_init, 1), init, reg_covar=self.reg_covar, tol=self.tol,
            max_iter=self.max_iter, callback=callback,
        )
        if n_init == 1:
            return res
        lb = res.lower_bound.reshape(n_init, n_do)
        best = lb.argmax(0) * n_do + torch.arange(n_do, device=lb.device)
        history = [h[best] for h in res.history]
        return EMResult(res.params.select(best), res.lower_bound[best], res.converged[best],
                        res.n_iter[best], history)

    def _plugin_draws(
        self, X: np.ndarray, y: np.ndarray | None, mechanism: Any, cw: CausalWeights,
        weights: Any, rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draws of the front-door formula for every do value, stacked, with indicator
        weights (row block j belongs to do value j), so one batched EM fits them all."""
        from causal_mixtures.estimators.plugin import PluginFrontDoor
        from causal_mixtures.weights.core import _as_mechanism
        from causal_mixtures.weights.density import is_discrete

        if weights is not None or cw.estimand is None or cw.estimand.kind != "front_door":
            kind = "explicit weights" if cw.estimand is None else cw.estimand.kind
            raise ValueError(
                f"strategy='plugin' samples the front-door formula and needs a front-door "
                f"graph with the mechanism data; got {kind}. Use strategy='weighting'."
            )
        z = _as_mechanism(mechanism, len(X))
        m = int(self.plugin_draws or max(len(X), 5000))
        sampler = PluginFrontDoor(
            self.plugin_components,
            discrete_cause=is_discrete(y),
            discrete_mechanism=is_discrete(z),
            random_state=int(rng.integers(0, 2**31 - 1)),
        ).fit(X, y, z)
        self.plugin_ = sampler
        n_do = cw.n_do
        draws = np.concatenate([sampler.sample(m, v, rng) for v in cw.do_values.tolist()])
        W = np.kron(np.eye(n_do), np.ones(m))  # (n_do, n_do * m) block indicators
        return draws, W

    def _bic(self, res: EMResult, k: int, d: int, ess: np.ndarray) -> np.ndarray:
        # DESIGN §2: put the weighted log-likelihood on the scale of the data (Kish ESS).
        total = ess * res.lower_bound.cpu().numpy()
        return -2.0 * total + n_parameters(k, d, self.covariance_type) * np.log(ess)

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
        self._check_params()
        _svi.check_params(self)  # also drops the attributes of an earlier svi/bayes fit
        X_arr, y_arr, names = _check_fit_inputs(X, y, weights)
        if self.inference != "em":
            return _svi.fit_estimator(
                self, X, y, mechanism=mechanism, covariates=covariates, do=do, weights=weights
            )
        cw = self._causal_weights(X_arr, y_arr, mechanism, covariates, do, weights)
        rng = check_random_state(self.random_state)
        X_obs = X_arr
        if self.strategy == "plugin":
            X_arr, W = self._plugin_draws(X_arr, y_arr, mechanism, cw, weights, rng)
        else:
            W = cw.values.T.copy()  # (n_do, n)
        n_pos = (W > 0).sum(1)
        ess = W.sum(1) ** 2 / (W * W).sum(1)
        device = resolve_device(self.device)
        # X_arr is already a private float64 copy: share its memory instead of copying again.
        Xt = torch.from_numpy(X_arr).to(device)
        d = X_arr.shape[1]
        if self.n_components == "auto":
            grid = np.asarray(
                self.n_components_range
                if self.n_components_range is not None
                else range(1, min(_DEFAULT_MAX_AUTO_K, int(n_pos.min())) + 1)
            )
        else:
            grid = np.asarray([self.n_components])
        check_n_components(int(grid.max()), W, cw.do_values)
        progress = None
        if self.verbose:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(grid) * self.max_iter, desc="weighted EM", leave=False)
        try:
            results, bics = [], []
            for k in grid.tolist():
                res = self._fit_k(X_arr, Xt, W, int(k), rng, progress)
                results.append(res)
                bics.append(self._bic(res, int(k), d, ess))
        finally:
            if progress is not None:
                progress.close()
        bics_arr = np.asarray(bics)
        best = int(bics_arr.sum(1).argmin())
        res = results[best]
        if self.n_components == "auto":
            self.n_components_grid_ = grid
            self.bic_grid_ = bics_arr
        self._store(res, cw, int(grid[best]), bics_arr[best], X_obs, names)
        if not bool(res.converged.all()):
            bad = cw.do_values[~res.converged.cpu().numpy()].tolist()
            warnings.warn(
                f"weighted EM did not converge for do value(s) {bad} within max_iter="
                f"{self.max_iter} iterations (tol={self.tol}). Increase max_iter or tol, or "
                "check the weights (causal_weights_).",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _store(
        self, res: EMResult, cw: CausalWeights, k: int, bic: np.ndarray, X: np.ndarray, names: Any
    ) -> None:
        p = res.params
        self.do_values_ = np.asarray(cw.do_values)
        self.causal_weights_ = cw
        self.n_components_ = k
        self.weights_ = p.weights.cpu().numpy()
        self.means_ = p.means.cpu().numpy()
        self.covariances_ = p.covariances.cpu().numpy()
        self.precisions_cholesky_ = p.precisions_cholesky.cpu().numpy()
        if self.covariance_type == "full":
            pc = self.precisions_cholesky_
            self.precisions_ = pc @ np.swapaxes(pc, -1, -2)
        else:
            self.precisions_ = self.precisions_cholesky_**2
        self.converged_ = res.converged.cpu().numpy()
        self.n_iter_ = res.n_iter.cpu().numpy()
        self.lower_bound_ = res.lower_bound.cpu().numpy()
        self.lower_bounds_ = torch.stack(res.history).cpu().numpy()
        self.bic_ = bic
        self.n_features_in_ = X.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    # ------------------------------------------------------------------ using the fit
    def _check_fitted(self) -> None:
        if not hasattr(self, "means_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' first."
            )

    def _params_for(self, j: int, device: torch.device) -> MixtureParams:
        def t(a: np.ndarray) -> torch.Tensor:
            return torch.tensor(a[j : j + 1], dtype=torch.float64, device=device)

        return MixtureParams(
            t(self.weights_), t(self.means_), t(self.covariances_), t(self.precisions_cholesky_),
            self.covariance_type,
        )

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
        from causal_mixtures.diagnostics.checks import to_inference_data

        self._check_fitted()
        return to_inference_data(self, X, y, **kwargs)

    def score_samples(self, X: Any, *, do: Any) -> np.ndarray:
        """Log-density ``log q(x | do(y))`` of each row of ``X`` under the mixture for ``do``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        do : scalar
            One of ``do_values_``.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        self._check_fitted()
        X_arr = as_2d_float("X", X)
        if X_arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X_arr.shape[1]} features, but the model was fitted with "
                f"{self.n_features_in_}."
            )
        j = _match_do(do, self.do_values_)
        device = resolve_device(self.device)
        Xt = torch.tensor(X_arr, dtype=torch.float64, device=device)
        return log_likelihood(Xt, self._params_for(j, device))[0].cpu().numpy()

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
            Rows in random order (not grouped by component).
        """
        self._check_fitted()
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int; got {n_samples!r}.")
        j = _match_do(do, self.do_values_)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        return self._sample_index(j, int(n_samples), rng)

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
            Rows per intervention value in each dataset; ``None`` means
            ``n_samples_in // n_do`` (balanced classes), as in :meth:`fit_resample`.
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
        return _svi.posterior_datasets(self, n_datasets, n_samples, random_state)

    def _sample_index(self, j: int, n: int, rng: np.random.Generator) -> np.ndarray:
        posterior = _svi.fitted_posterior(self)
        if posterior is not None:  # inference="bayes": the posterior predictive
            return _svi.sample_posterior_predictive(posterior, self.covariance_type, j, n, rng)
        counts = rng.multinomial(n, self.weights_[j] / self.weights_[j].sum())
        d = self.n_features_in_
        out = []
        for k, m in enumerate(counts.tolist()):
            if m == 0:
                continue
            eps = rng.standard_normal((m, d))
            mu = self.means_[j, k]
            if self.covariance_type == "full":
                chol = np.linalg.cholesky(self.covariances_[j, k])
                out.append(mu + eps @ chol.T)
            elif self.covariance_type == "diag":
                out.append(mu + eps * np.sqrt(self.covariances_[j, k]))
            else:
                out.append(mu + eps * math.sqrt(self.covariances_[j, k]))
        X = np.concatenate(out, axis=0)
        return X[rng.permutation(n)]

    def _n_per_do(self, n_rows: int, n_samples: Any) -> np.ndarray:
        n_do = len(self.do_values_)
        if n_samples is None:
            m = max(1, n_rows // n_do)
            return np.full(n_do, m)
        counts = np.asarray(n_samples).reshape(-1)
        if counts.size == 1:
            counts = np.full(n_do, int(counts[0]))
        if counts.size != n_do or np.any(counts < 1) or counts.dtype.kind not in "iu":
            raise ValueError(
                f"n_samples must be None, a positive int (draws per intervention value) or "
                f"{n_do} positive ints; got {n_samples!r}."
            )
        return counts

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
            Draws per intervention value. ``None``: ``n_samples_in // n_do`` each (balanced
            classes).

        Returns
        -------
        X_new : ndarray (or DataFrame when ``X`` was one) of shape (n_new, n_features)
        y_new : ndarray of shape (n_new,)
        """
        self.fit(X, y, mechanism=mechanism, covariates=covariates, do=do)
        return self.resample(n_samples=n_samples, n_rows=len(X), template=X)

    def resample(self, n_samples: Any = None, *, n_rows: int | None = None, template: Any = None,
                 random_state: RandomState = None) -> tuple[Any, Any]:
        """Draw a deconfounded dataset from the fitted mixtures (see :meth:`fit_resample`).

        Parameters
        ----------
        n_samples : int, sequence of int or None
            Draws per intervention value; ``None`` means ``n_rows // n_do``.
        n_rows : int, optional
            Number of training rows (default: the number of rows seen in ``fit``).
        template : DataFrame, optional
            When given, ``X_new`` is a DataFrame with its columns.
        random_state : int, Generator or None
            Overrides the estimator's ``random_state``.
        """
        self._check_fitted()
        n_rows = n_rows if n_rows is not None else self.causal_weights_.n_samples
        counts = self._n_per_do(n_rows, n_samples)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        parts = [self._sample_index(j, int(m), rng) for j, m in enumerate(counts)]
        X_new = np.concatenate(parts, axis=0)
        y_new = np.repeat(self.do_values_, counts)
        order = rng.permutation(len(y_new))
        X_new, y_new = X_new[order], y_new[order]
        return _like(template, X_new), y_new


def _like(template: Any, X_new: np.ndarray) -> Any:
    cols = getattr(template, "columns", None)
    if cols is None:
        return X_new
    import pandas as pd

    return pd.DataFrame(X_new, columns=cols)


class CausalBootstrap(BaseEstimator):
    """Front-door causal bootstrap: resample the observed rows with probabilities given by
    the causal weights (the baseline of Mao & Little). It can only repeat observed points.

    Parameters
    ----------
    graph : str or CausalGraph, default="front_door"
    density : str or ConditionalDensity, default="auto"
    weight_smoothing : {None, "psis"}, default=None
    random_state : int, Generator or None, default=None

    Attributes
    ----------
    causal_weights_ : CausalWeights
    do_values_ : ndarray of shape (n_do,)
    sample_indices_ : ndarray of shape (n_new,)
        Source row of every resampled row, in output order.
    """

    def __init__(
        self,
        graph: Any = "front_door",
        *,
        density: Any = "auto",
        weight_smoothing: str | None = None,
        random_state: RandomState = None,
    ) -> None:
        self.graph = graph
        self.density = density
        self.weight_smoothing = weight_smoothing
        self.random_state = random_state

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
            Draws per intervention value; ``None`` means ``n_samples_in // n_do``.

        Returns
        -------
        X_new, y_new
        """
        X_arr, y_arr, _ = _check_fit_inputs(X, y, None)
        helper = CausalGaussianMixture(
            self.graph, density=self.density, weight_smoothing=self.weight_smoothing
        )
        cw = helper._causal_weights(X_arr, y_arr, mechanism, covariates, do, None)
        self.causal_weights_ = cw
        self.do_values_ = np.asarray(cw.do_values)
        helper.do_values_ = self.do_values_
        counts = helper._n_per_do(len(X_arr), n_samples)
        rng = check_random_state(self.random_state)
        idx = np.concatenate(
            [rng.choice(len(X_arr), size=int(m), p=cw.values[:, j]) for j, m in enumerate(counts)]
        )
        y_new = np.repeat(self.do_values_, counts)
        order = rng.permutation(len(idx))
        self.sample_indices_ = idx[order]
        self.n_features_in_ = X_arr.shape[1]
        return _like(X, X_arr[self.sample_indices_]), y_new[order]


def _estimator_has(attr: str):
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
        m = self.n_resamples
        if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 1:
            raise ValueError(f"n_resamples must be an int >= 1; got {m!r}.")
        from causal_mixtures.diagnostics.checks import CHECK_MODES, check_fit

        if self.check not in CHECK_MODES:
            raise ValueError(f"check must be one of {list(CHECK_MODES)}; got {self.check!r}.")
        resampler = clone(self.resampler) if self.resampler is not None else CausalGaussianMixture()
        if m == 1:
            datasets = [
                resampler.fit_resample(
                    X, y, mechanism=mechanism, covariates=covariates, do=do, n_samples=n_samples
                )
            ]
        elif isinstance(resampler, CausalGaussianMixture):
            resampler.fit(X, y, mechanism=mechanism, covariates=covariates, do=do)
            if _svi.fitted_posterior(resampler) is not None:
                datasets = resampler.posterior_datasets(m, n_samples=n_samples)
            else:
                rng = check_random_state(resampler.random_state)
                datasets = [
                    resampler.resample(n_samples, n_rows=len(X), template=X, random_state=rng)
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
        self.diagnostics_ = check_fit(resampler, self.check, X, stacklevel=3)
        self.estimators_ = [clone(self.estimator).fit(X_new, y_new) for X_new, y_new in datasets]
        self.estimator_ = self.estimators_[0]
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        self.n_features_in_ = resampler.n_features_in_
        return self

    def _check_std(self, return_std: bool) -> None:
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
        if len(self.estimators_) == 1:
            return self.estimator_.decision_function(X)
        return np.mean([e.decision_function(X) for e in self.estimators_], axis=0)

    def score(self, X: Any, y: Any) -> float:
        """Accuracy (classifiers) or R² (regressors) of :meth:`predict` on ``(X, y)``."""
        if len(self.estimators_) == 1:
            return self.estimator_.score(X, y)
        from sklearn.metrics import accuracy_score, r2_score

        if is_classifier(self.estimator_):
            return float(accuracy_score(y, self.predict(X)))
        return float(r2_score(y, self.predict(X)))
