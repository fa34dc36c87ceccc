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
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.utils.metaestimators import available_if

from ._utils import (
    RandomState,
    as_2d_float,
    check_random_state,
    derive_seed,
    feature_names,
    resolve_device,
)
from .em import (
    COVARIANCE_TYPES,
    EMResult,
    MixtureParams,
    log_likelihood,
    n_parameters,
    params_from_responsibilities,
    weighted_em,
)
from .exceptions import ConvergenceWarning
from .weights import CausalWeights, _as_cause, causal_weights

__all__ = ["CausalBootstrap", "CausalGaussianMixture", "MechanismLearner"]

INFERENCE = ("em", "svi", "bayes")
INIT_PARAMS = ("kmeans", "k-means++", "random_from_data")
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
        Fitting method. ``"em"`` is the production fitter.
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
        Weighted log-likelihood ``Σ_n w̃_n log q(x_n)`` of the final parameters.
    lower_bounds_ : ndarray of shape (n_iter, n_do)
        Objective trace of the best restart.
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
        X_arr, y_arr, names = _check_fit_inputs(X, y, weights)
        if self.inference != "em":
            raise NotImplementedError(
                f"inference={self.inference!r} is not available in this version; use "
                "inference='em'."
            )
        cw = self._causal_weights(X_arr, y_arr, mechanism, covariates, do, weights)
        W = cw.values.T.copy()  # (n_do, n)
        n_pos = (W > 0).sum(1)
        rng = check_random_state(self.random_state)
        device = resolve_device(self.device)
        Xt = torch.tensor(X_arr, dtype=torch.float64, device=device)
        d = X_arr.shape[1]
        if self.n_components == "auto":
            grid = np.asarray(
                self.n_components_range
                if self.n_components_range is not None
                else range(1, min(_DEFAULT_MAX_AUTO_K, int(n_pos.min())) + 1)
            )
        else:
            grid = np.asarray([self.n_components])
        too_big = int(grid.max())
        if too_big > n_pos.min():
            j = int(n_pos.argmin())
            raise ValueError(
                f"n_components={too_big} is larger than the number of rows with positive weight "
                f"({int(n_pos[j])}) for do value {cw.do_values[j]!r}: expected n_samples with "
                "positive weight >= n_components. Use fewer components."
            )
        progress = None
        if self.verbose:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(grid) * self.max_iter, desc="weighted EM", leave=False)
        try:
            results, bics = [], []
            for k in grid.tolist():
                res = self._fit_k(X_arr, Xt, W, int(k), rng, progress)
                results.append(res)
                bics.append(self._bic(res, int(k), d, cw.ess))
        finally:
            if progress is not None:
                progress.close()
        bics_arr = np.asarray(bics)
        best = int(bics_arr.sum(1).argmin())
        res = results[best]
        if self.n_components == "auto":
            self.n_components_grid_ = grid
            self.bic_grid_ = bics_arr
        self._store(res, cw, int(grid[best]), bics_arr[best], X_arr, names)
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

    def _sample_index(self, j: int, n: int, rng: np.random.Generator) -> np.ndarray:
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

    Parameters
    ----------
    estimator : estimator object
        Any scikit-learn classifier or regressor.
    resampler : CausalGaussianMixture or CausalBootstrap, optional
        Cloned before use; default ``CausalGaussianMixture()``.

    Attributes
    ----------
    estimator_ : estimator
        The fitted downstream model.
    resampler_ : the fitted resampler
    classes_ : ndarray
        For classifiers.
    """

    def __init__(self, estimator: Any, *, resampler: Any = None) -> None:
        self.estimator = estimator
        self.resampler = resampler

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
            Draws per intervention value for the deconfounded training set.

        Returns
        -------
        self
        """
        resampler = clone(self.resampler) if self.resampler is not None else CausalGaussianMixture()
        X_new, y_new = resampler.fit_resample(
            X, y, mechanism=mechanism, covariates=covariates, do=do, n_samples=n_samples
        )
        self.resampler_ = resampler
        self.estimator_ = clone(self.estimator).fit(X_new, y_new)
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        self.n_features_in_ = resampler.n_features_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predict with the downstream estimator."""
        return self.estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities from the downstream estimator."""
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision function of the downstream estimator."""
        return self.estimator_.decision_function(X)

    def score(self, X: Any, y: Any) -> float:
        """Score of the downstream estimator (accuracy or R²) on ``(X, y)``."""
        return self.estimator_.score(X, y)
