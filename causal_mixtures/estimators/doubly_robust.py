"""Doubly robust (one-step, cross-fitted) front-door estimator of interventional means
``ψ(v) = E[x | do(y = v)]`` for a discrete cause, with influence-function standard errors.

The estimand (front door, conditionally on observed covariates ``w`` when there are any)::

    ψ(v) = E_W Σ_z p(z | v, W) Σ_y' p(y' | W) μ(y', z, W),   μ(y, z, w) = E[x | y, z, w]

Nuisances: the outcome regression ``μ``, the mechanism ratio
``r(z, y, w) = p(z | v, w) / p(z | y, w)`` (from a classifier of ``y`` on ``(z, w)``, or
frequency tables for a discrete ``z``), the propensity ``π(y | w) = p(y | w)`` and the
nested regression ``ξ(y', w) = E[μ(y', Z, w) | Y = v, W = w]``. With
``η(z, w) = Σ_y' π(y' | w) μ(y', z, w)`` and ``ζ(w) = Σ_y' π(y' | w) ξ(y', w)``, the efficient
influence function is (Fulcher et al. 2020, Thm. 2; Guo, Benkeser & Nabi 2023)::

    φ_v(O) = 1[Y = v] / π(v | W) · (η(Z, W) − ζ(W)) + ξ(Y, W) − ζ(W)
             + r(Z, Y, W) · (X − μ(Y, Z, W)) + ζ(W) − ψ(v)

and the estimator is ``ψ̂(v) = mean_i [φ_v(O_i) + ψ(v)]`` with every nuisance fitted on the
other ``cv − 1`` folds (cross-fitting); ``se = sd(φ̂) / √n``. It is consistent when either
``(μ, ξ)`` or ``(r, π)`` is consistent, and efficient when all are. Derivation and tests:
``docs/doubly_robust.md``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler

from causal_mixtures._random import RandomState, check_random_state
from causal_mixtures._validation import as_2d_float, check_finite

__all__ = ["InterventionalMeans", "front_door_means"]

MECHANISM_TYPES = ("auto", "continuous", "discrete")
MAX_LEVELS = 50


@dataclass(frozen=True)
class InterventionalMeans:
    """Estimates of ``E[x | do(y = v)]`` with influence-function standard errors.

    Attributes
    ----------
    do_values : ndarray of shape (n_do,)
    mean : ndarray of shape (n_do, n_features)
        The cross-fitted one-step (doubly robust) estimates.
    se : ndarray of shape (n_do, n_features)
        ``sd(φ̂) / √n`` per do value and feature.
    plugin : ndarray of shape (n_do, n_features)
        The plug-in estimates ``mean_i ζ̂(W_i)`` before the correction.
    influence : ndarray of shape (n_samples, n_do, n_features)
        The estimated influence-function values ``φ̂`` (centred).
    cv : int
        Number of cross-fitting folds.
    """

    do_values: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    plugin: np.ndarray
    influence: np.ndarray
    cv: int

    @property
    def n_samples(self) -> int:
        """Number of rows the estimates were computed from."""
        return int(self.influence.shape[0])

    def _index(self, value: Any) -> int:
        hits = np.flatnonzero(self.do_values == value)
        if hits.size == 0:
            raise ValueError(
                f"do value {value!r} was not estimated; expected one of "
                f"{self.do_values.tolist()}."
            )
        return int(hits[0])

    def difference(self, a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
        """``ψ(a) − ψ(b)`` and its standard error (from the joint influence function).

        Parameters
        ----------
        a, b : scalar
            Two of ``do_values``.

        Returns
        -------
        estimate, se : ndarray of shape (n_features,)
        """
        i, j = self._index(a), self._index(b)
        phi = self.influence[:, i] - self.influence[:, j]
        return self.mean[i] - self.mean[j], phi.std(axis=0, ddof=1) / np.sqrt(self.n_samples)

    def confidence_interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Wald intervals ``mean ± z_{(1+level)/2} se``; returns (lower, upper)."""
        from scipy.stats import norm

        if not isinstance(level, numbers.Real) or not 0.0 < float(level) < 1.0:
            raise ValueError(f"level must be a probability in (0, 1); got {level!r}. Try 0.95.")
        q = norm.ppf(0.5 + float(level) / 2.0)
        return self.mean - q * self.se, self.mean + q * self.se


# ------------------------------------------------------------------------------ defaults
def default_outcome_model() -> Any:
    """Least squares on the standardised features: a linear working model of
    ``E[x | y, z, w]`` per value of ``y``, which the influence-function correction makes
    consistent whenever the mechanism model is.

    Why not a flexible default: ``μ̂(y', z)`` is needed where ``z`` is likely under the
    *other* values of ``y``, i.e. beyond most of the rows it was fitted on, and flexible
    regressors extrapolate their noisy edge slopes there. Measured on the calibration
    problems of ``benchmarks/gate_problems.py`` (20 datasets each; ``docs/doubly_robust.md``):
    with additive cubic splines and a ridge the standard errors were 1.7-6.7 times too
    small (root-mean-square ``(ψ̂ - ψ) / se`` up to 6.7) and the estimates 2-4 times less
    accurate than with this linear model, including on effects that are step functions of
    ``z``, where the correction repairs the misspecified ``μ̂``.
    """
    return make_pipeline(StandardScaler(), LinearRegression())


def default_classifier() -> Any:
    """Logistic regression on additive cubic splines (a flexible ``p(y | features)``)."""
    return make_pipeline(
        StandardScaler(), SplineTransformer(n_knots=5, degree=3),
        LogisticRegression(C=10.0, max_iter=2000),
    )


# ------------------------------------------------------------------------------ checks
def _check_levels(y: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(y)
    if y_arr.ndim != 1 or y_arr.shape[0] != n:
        raise ValueError(
            f"y must be 1-D with one value per row of X ({n}); got shape {y_arr.shape}."
        )
    if y_arr.dtype.kind == "f":
        check_finite("y", y_arr)
    levels, codes = np.unique(y_arr, return_inverse=True)
    if len(levels) < 2 or len(levels) > MAX_LEVELS:
        raise ValueError(
            f"y must be a discrete cause with 2 to {MAX_LEVELS} values; got {len(levels)} "
            "distinct values. front_door_means needs a discrete y (its efficient influence "
            "function is not defined at a point of a continuous cause); bin y, or use "
            "CausalGaussianMixture(strategy='plugin') for a continuous cause."
        )
    return levels, codes


def _mechanism_features(z: np.ndarray, kind: str) -> tuple[np.ndarray, bool]:
    if kind == "auto":
        integral = bool(np.all(z == np.round(z)))
        kind = "discrete" if z.shape[1] == 1 and integral and len(np.unique(z)) <= 20 else (
            "continuous")
    if kind == "continuous":
        return z, False
    if z.shape[1] != 1:
        raise ValueError(
            "mechanism_type='discrete' needs a 1-D mechanism (one column); got "
            f"{z.shape[1]} columns. Encode the combinations as one integer column."
        )
    values = np.unique(z[:, 0])
    return (z[:, 0][:, None] == values[None, :]).astype(np.float64), True


# ------------------------------------------------------------------------------ nuisances
def _fit_predict_per_level(model: Any, F_tr: np.ndarray, X_tr: np.ndarray, c_tr: np.ndarray,
                           F_ev: np.ndarray, n_levels: int, joint: bool = False) -> np.ndarray:
    """``μ̂_l(F_ev)`` for every level ``l`` (one fit per level and column, or one per level
    for all columns when ``joint``: least squares, whose multi-output fit is the same as
    per column); (n_ev, L, d)."""
    out = np.empty((F_ev.shape[0], n_levels, X_tr.shape[1]))
    for lev in range(n_levels):
        rows = c_tr == lev
        if joint:
            out[:, lev] = clone(model).fit(F_tr[rows], X_tr[rows]).predict(F_ev).reshape(
                F_ev.shape[0], X_tr.shape[1])
            continue
        for j in range(X_tr.shape[1]):
            m = clone(model).fit(F_tr[rows], X_tr[rows, j])
            out[:, lev, j] = m.predict(F_ev)
    return out


def _proba(model: Any, F_tr: np.ndarray, c_tr: np.ndarray, F_ev: np.ndarray, n_levels: int,
           clip: float) -> np.ndarray:
    """Class probabilities on ``F_ev`` for codes ``0..L-1`` (clipped, renormalised)."""
    m = clone(model).fit(F_tr, c_tr)
    p = np.zeros((F_ev.shape[0], n_levels))
    p[:, np.asarray(m.classes_, dtype=int)] = m.predict_proba(F_ev)
    p = np.clip(p, clip, None)
    return p / p.sum(axis=1, keepdims=True)


def _table_ratio(onehot: np.ndarray, c: np.ndarray, tr: np.ndarray, ev: np.ndarray,
                 n_levels: int, clip: float) -> np.ndarray:
    """``p̂(z_i | l)`` for the rows ``ev`` from the frequency table of ``tr``: (n_ev, L)."""
    counts = np.stack([onehot[tr][c[tr] == lev].sum(0) for lev in range(n_levels)])
    table = counts / counts.sum(axis=1, keepdims=True)
    return np.clip(onehot[ev] @ table.T, clip, None)


def _one_fold(tr: np.ndarray, ev: np.ndarray, X: np.ndarray, c: np.ndarray, Fz: np.ndarray,
              W: np.ndarray | None, do_codes: np.ndarray, models: dict, discrete_z: bool,
              n_levels: int, clip: float) -> tuple[np.ndarray, np.ndarray]:
    """Uncentred influence values and plug-in terms of the rows ``ev``: (n_ev, n_do, d) each."""
    F = Fz if W is None else np.hstack([Fz, W])
    joint = models["joint"]
    mu_ev = _fit_predict_per_level(models["outcome"], F[tr], X[tr], c[tr], F[ev], n_levels,
                                   joint["outcome"])
    c_ev = c[ev]
    n_ev = len(ev)
    if W is None:
        pi_ev = np.tile(np.bincount(c[tr], minlength=n_levels) / len(tr), (n_ev, 1))
    else:
        pi_ev = _proba(models["propensity"], W[tr], c[tr], W[ev], n_levels, clip)
    if discrete_z and W is None:
        dens = _table_ratio(Fz, c, tr, ev, n_levels, clip)  # p(z_i | l)
        ratio_base = dens
    else:
        post = _proba(models["mechanism"], F[tr], c[tr], F[ev], n_levels, clip)
        ratio_base = post / pi_ev  # ∝ p(z_i | l, w_i)
    mu_obs = mu_ev[np.arange(n_ev), c_ev]  # (n_ev, d)
    eta = np.einsum("nl,nld->nd", pi_ev, mu_ev)
    if W is not None:
        mu_tr = _fit_predict_per_level(models["outcome"], F[tr], X[tr], c[tr], F[tr], n_levels,
                                       joint["outcome"])
    out = np.empty((n_ev, len(do_codes), X.shape[1]))
    plug = np.empty_like(out)
    for k, v in enumerate(do_codes):
        r = ratio_base[:, v] / ratio_base[np.arange(n_ev), c_ev]
        if W is None:
            xi = mu_ev[c_ev == v].mean(axis=0)  # (L, d): mean over the fold's Y = v rows
            xi_ev = np.broadcast_to(xi, (n_ev, *xi.shape))
        else:
            rows = c[tr] == v
            xi_ev = _fit_predict_per_level(
                models["nested"], W[tr][rows], mu_tr[rows].reshape(rows.sum(), -1),
                np.zeros(rows.sum(), dtype=int), W[ev], 1, joint["nested"],
            ).reshape(n_ev, n_levels, X.shape[1])
        zeta = np.einsum("nl,nld->nd", pi_ev, xi_ev)
        ind = (c_ev == v)[:, None] / pi_ev[:, v][:, None]
        out[:, k] = (ind * (eta - zeta) + xi_ev[np.arange(n_ev), c_ev]
                     + r[:, None] * (X[ev] - mu_obs))
        plug[:, k] = zeta
    return out, plug


# ------------------------------------------------------------------------------ public
def front_door_means(
    X: Any,
    y: Any,
    mechanism: Any,
    *,
    do: Any = None,
    covariates: Any = None,
    cv: int = 5,
    outcome_model: Any = None,
    mechanism_model: Any = None,
    propensity_model: Any = None,
    nested_model: Any = None,
    mechanism_type: str = "auto",
    clip: float = 1e-3,
    random_state: RandomState = None,
) -> InterventionalMeans:
    """Cross-fitted doubly robust front-door estimates of ``E[x | do(y = v)]``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples,)
        The effect; every column is estimated separately.
    y : array-like of shape (n_samples,)
        The cause; discrete (2 to 50 distinct values).
    mechanism : array-like of shape (n_samples,) or (n_samples, n_mechanism_features)
        The front-door mechanism ``z``, continuous or discrete.
    do : scalar or array-like, optional
        Values of ``y`` to intervene at (default: every value of ``y``).
    covariates : array-like of shape (n_samples, n_covariates), optional
        Observed covariates ``w`` (graph ``front_door_covariates``).
    cv : int, default=5
        Cross-fitting folds (stratified by ``y``), at least 2.
    outcome_model : regressor, optional
        Model of ``E[x_j | y = l, z, w]``, cloned per value of ``y`` and per column of ``X``
        and fitted on ``[z, w]`` (``z`` one-hot when discrete). Default: least squares on
        the standardised features (continuous ``z``, or covariates; see
        :func:`default_outcome_model` for why not a flexible model), least squares
        on the one-hot ``z`` (cell means) for a discrete ``z`` without covariates.
    mechanism_model : classifier, optional
        Model of ``p(y | z, w)`` with ``predict_proba``, giving the ratio
        ``p(z | v, w) / p(z | y, w)``. Default: logistic regression on additive splines;
        for a discrete ``z`` without covariates, frequency tables are used instead.
    propensity_model : classifier, optional
        Model of ``p(y | w)`` (covariates only). Default: as ``mechanism_model``.
    nested_model : regressor, optional
        Model of ``E[μ(y', Z, w) | Y = v, W = w]`` (covariates only). Default: as
        ``outcome_model``.
    mechanism_type : {"auto", "continuous", "discrete"}, default="auto"
        ``"auto"``: discrete when ``z`` is one integer-valued column with at most 20 values.
    clip : float, default=1e-3
        Floor of the estimated class probabilities (bounds the ratios).
    random_state : int, numpy.random.Generator or None, default=None
        Seeds the fold split.

    Returns
    -------
    InterventionalMeans

    Examples
    --------
    >>> import causal_mixtures as cm
    >>> d = cm.datasets.make_front_door_binary(4000, random_state=0)
    >>> res = cm.front_door_means(d.X, d.y, d.mechanism, random_state=0)
    >>> bool(abs(res.difference(1, 0)[0][0] - d.do_difference[0]) < 0.3)
    True
    """
    X_arr = as_2d_float("X", X, allow_1d=True)
    n = X_arr.shape[0]
    levels, codes = _check_levels(y, n)
    if mechanism is None:
        raise ValueError(
            "mechanism is required: the front-door estimator needs the mechanism z; got None."
        )
    Z = as_2d_float("mechanism", mechanism, allow_1d=True)
    if Z.shape[0] != n:
        raise ValueError(
            f"mechanism must have one row per row of X ({n}); got {Z.shape[0]} rows."
        )
    W = None
    if covariates is not None:
        W = as_2d_float("covariates", covariates, allow_1d=True)
        if W.shape[0] != n:
            raise ValueError(
                f"covariates must have one row per row of X ({n}); got {W.shape[0]} rows."
            )
    if mechanism_type not in MECHANISM_TYPES:
        raise ValueError(
            f"mechanism_type must be one of {MECHANISM_TYPES}; got {mechanism_type!r}."
        )
    if isinstance(cv, bool) or not isinstance(cv, numbers.Integral) or cv < 2:
        raise ValueError(f"cv must be an int >= 2 (cross-fitting folds); got {cv!r}. Try cv=5.")
    smallest = int(np.bincount(codes).min())
    if cv > smallest:
        raise ValueError(
            f"cv={cv} folds need at least {cv} rows of every value of y; the rarest value has "
            f"{smallest}. Use a smaller cv."
        )
    if not isinstance(clip, numbers.Real) or not 0.0 < float(clip) < 1.0 / len(levels):
        raise ValueError(
            f"clip must be a probability floor in (0, 1/{len(levels)}); got {clip!r}. Try 1e-3."
        )
    if do is None:
        do_values = levels
    else:
        do_values = np.atleast_1d(np.asarray(do))
        missing = [v for v in do_values.tolist() if v not in levels.tolist()]
        if missing:
            raise ValueError(
                f"do values {missing} are not values of y; expected some of {levels.tolist()}."
            )
    do_codes = np.searchsorted(levels, do_values)
    Fz, discrete_z = _mechanism_features(Z, mechanism_type)
    outcome_model_default = outcome_model is None
    if outcome_model is None:
        outcome_model = (LinearRegression() if discrete_z and W is None
                         else default_outcome_model())
    models = {
        "outcome": outcome_model,
        "mechanism": mechanism_model if mechanism_model is not None else default_classifier(),
        "propensity": propensity_model if propensity_model is not None else default_classifier(),
        "nested": nested_model if nested_model is not None else default_outcome_model(),
        # The defaults are least squares: one multi-output fit per level instead of one per
        # column (the same numbers); a user's model is fitted per column.
        "joint": {"outcome": outcome_model_default, "nested": nested_model is None},
    }
    if mechanism_model is not None and discrete_z and W is None:
        discrete_z = False  # a user's classifier replaces the frequency tables
    rng = check_random_state(random_state)
    folds = StratifiedKFold(cv, shuffle=True, random_state=int(rng.integers(2**31 - 1)))
    values = np.empty((n, len(do_codes), X_arr.shape[1]))
    plug = np.empty_like(values)
    for tr, ev in folds.split(X_arr, codes):
        values[ev], plug[ev] = _one_fold(tr, ev, X_arr, codes, Fz, W, do_codes, models,
                                         discrete_z, len(levels), float(clip))
    mean = values.mean(axis=0)
    phi = values - mean
    se = phi.std(axis=0, ddof=1) / np.sqrt(n)
    return InterventionalMeans(do_values=np.asarray(do_values), mean=mean, se=se,
                               plugin=plug.mean(axis=0), influence=phi, cv=int(cv))
