"""Sharing strength across the do-grid: a linear marginal structural model (MSM).

Details: ``docs/estimators.md``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from sklearn.utils import Bunch

from causal_mixtures._validation import as_2d_float, check_finite
from causal_mixtures.weights.core import CausalWeights, kish_ess, validate_weights

__all__ = ["fit_linear_msm"]


def _msm_mean(y: Any, *, intercept: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """``a + B y`` for every ``y``: shape ``(len(y), n_features)``."""
    yv = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    return intercept[None, :] + yv * slope[None, :]


def fit_linear_msm(
    weights: Any,
    X: Any,
    do_values: Any = None,
    *,
    column_weights: Any = None,
) -> Bunch:
    """Fit the linear marginal structural model ``E[x | do(y)] = a + B y`` by weighted
    least squares pooled over every intervention value.

    Parameters
    ----------
    weights : CausalWeights or array-like of shape (n_samples, n_do)
        Causal weights, one column per intervention value (non-negative). Columns of a
        :class:`~causal_mixtures.CausalWeights` sum to one; raw (unnormalised) importance
        ratios may be passed as an array to weight each value by its total mass instead.
    X : array-like of shape (n_samples, n_features)
        The effect.
    do_values : array-like of shape (n_do,), optional
        The (numeric, scalar) intervention value of each column. Taken from ``weights``
        when it is a :class:`~causal_mixtures.CausalWeights`; required otherwise.
    column_weights : array-like of shape (n_do,), optional
        Design weights ``c_j >= 0`` over the grid (default: all ones). The pair
        ``(x_n, y_j)`` gets weight ``c_j w_n(y_j)``.

    Returns
    -------
    sklearn.utils.Bunch
        With keys

        - ``intercept`` (n_features,) and ``slope`` (n_features,): ``a`` and ``B``;
        - ``cov`` (n_features, n_features): the pooled residual covariance
          ``Σ_jn ω_nj r_nj r_njᵀ / Σ_jn ω_nj`` with ``r_nj = x_n − a − B y_j``, the
          covariance of ``x | do(y)`` under a homoscedastic MSM;
        - ``coef_cov`` (2, 2, n_features): per feature, the sandwich covariance of
          ``(a, B)``, rows as independent units, weights treated as fixed (it ignores the
          estimation of the weights and understates the uncertainty of heavy-tailed weights,
          ``k̂ > 0.7``);
        - ``intercept_se``, ``slope_se`` (n_features,): square roots of its diagonal;
        - ``do_values`` (n_do,), ``column_means`` (n_do, n_features): the per-value weighted
          means ``x̄_j``; ``column_mass`` (n_do,): ``Ω_j = c_j Σ_n w_n(y_j)``; ``ess``
          (n_do,): Kish ESS of each column;
        - ``mean``: callable ``y -> a + B y`` of shape (len(y), n_features).

    Raises
    ------
    ValueError
        On mismatched shapes, negative or non-finite weights, non-numeric intervention
        values, or fewer than two intervention values with positive mass.

    Examples
    --------
    >>> import numpy as np
    >>> import causal_mixtures as cm
    >>> from causal_mixtures.estimators.msm import fit_linear_msm
    >>> data = cm.datasets.make_front_door_linear(4000, random_state=0)
    >>> grid = np.quantile(data.y, [0.1, 0.3, 0.5, 0.7, 0.9])
    >>> w = cm.causal_weights("front_door", data.X, data.y, mechanism=data.mechanism,
    ...                       do=grid, density="gaussian")
    >>> msm = fit_linear_msm(w, data.X)
    >>> msm.slope.shape
    (1,)
    """
    if isinstance(weights, CausalWeights):
        W = np.array(weights.values, dtype=np.float64, copy=True)
        if do_values is None:
            do_values = weights.do_values
    else:
        W = validate_weights(weights)
    if do_values is None:
        raise ValueError(
            "do_values is required when weights is an array: pass the intervention value of "
            "each weight column (or pass the CausalWeights object, which carries them)."
        )
    Xa = as_2d_float("X", X)
    n, d = Xa.shape
    if W.shape[0] != n:
        raise ValueError(
            f"weights must have one row per sample of X ({n}); got {W.shape[0]} rows."
        )
    yv = np.asarray(do_values)
    if yv.dtype.kind not in "fiu":
        raise ValueError(
            f"do_values must be numeric scalars (a continuous or integer cause) for a linear "
            f"MSM; got dtype {yv.dtype}."
        )
    yv = yv.astype(np.float64).reshape(-1)
    check_finite("do_values", yv)
    J = W.shape[1]
    if len(yv) != J:
        raise ValueError(
            f"do_values must have one entry per weight column ({J}); got {len(yv)}."
        )
    c = np.ones(J) if column_weights is None else np.array(column_weights, dtype=np.float64)
    if c.shape != (J,):
        raise ValueError(
            f"column_weights must have shape ({J},), one per intervention value; got {c.shape}."
        )
    check_finite("column_weights", c)
    if (c < 0).any():
        raise ValueError(f"column_weights must be non-negative; got {c.tolist()}.")
    omega = W * c[None, :]  # pair weights ω_nj, (n, J)
    mass = omega.sum(0)  # Ω_j
    used = mass > 0
    if used.sum() < 2 or np.ptp(yv[used]) == 0:
        raise ValueError(
            "a linear MSM needs at least two distinct intervention values with positive mass; "
            f"got do values {yv[used].tolist()} with positive mass."
        )
    col_means = np.full((J, d), np.nan)
    col_means[used] = (omega[:, used].T @ Xa) / mass[used, None]

    # Normal equations: [[S0, Sy], [Sy, Syy]] [a; B] = [Σ_j Ω_j x̄_j; Σ_j Ω_j y_j x̄_j].
    S0 = mass.sum()
    Sy = (mass * yv).sum()
    Syy = (mass * yv**2).sum()
    A = np.array([[S0, Sy], [Sy, Syy]])
    sums = omega.T @ Xa  # (J, d): Σ_n ω_nj x_n
    rhs = np.stack([sums.sum(0), (yv[:, None] * sums).sum(0)])  # (2, d)
    coef = np.linalg.solve(A, rhs)  # (2, d)
    intercept, slope = coef[0], coef[1]

    # Residual second moments, without materialising the (n, J, d) residuals:
    # Σ_j ω_nj (x_n − a − B y_j)(…)ᵀ summed over n and j.
    m0 = omega.sum(1)  # Σ_j ω_nj
    m1 = omega @ yv  # Σ_j ω_nj y_j
    m2 = omega @ yv**2
    Xc = Xa - intercept[None, :]
    cov = (
        (Xc * m0[:, None]).T @ Xc
        - np.outer(slope, (Xc * m1[:, None]).sum(0))
        - np.outer((Xc * m1[:, None]).sum(0), slope)
        + m2.sum() * np.outer(slope, slope)
    ) / S0
    cov = 0.5 * (cov + cov.T)

    # Sandwich (row-clustered) covariance of (a, B), per feature. Estimating function of row
    # n: ψ_n = Σ_j ω_nj (1, y_j)ᵀ (x_n − a − B y_j) = (m0 x̃_n − B m1, m1 x̃_n − B m2), x̃ = x − a.
    psi0 = m0[:, None] * Xc - m1[:, None] * slope[None, :]  # (n, d)
    psi1 = m1[:, None] * Xc - m2[:, None] * slope[None, :]
    meat = np.empty((2, 2, d))
    meat[0, 0] = (psi0 * psi0).sum(0)
    meat[0, 1] = meat[1, 0] = (psi0 * psi1).sum(0)
    meat[1, 1] = (psi1 * psi1).sum(0)
    Ainv = np.linalg.inv(A)
    coef_cov = np.einsum("ab,bcf,cd->adf", Ainv, meat, Ainv)

    return Bunch(
        intercept=intercept,
        slope=slope,
        cov=cov,
        coef_cov=coef_cov,
        intercept_se=np.sqrt(coef_cov[0, 0]),
        slope_se=np.sqrt(coef_cov[1, 1]),
        do_values=yv,
        column_means=col_means,
        column_mass=mass,
        ess=kish_ess(W, axis=0),
        mean=functools.partial(_msm_mean, intercept=intercept.copy(), slope=slope.copy()),
    )
