"""Mixtures of linear experts with Gaussian gating on a subset of the conditioning columns
(:class:`GatedExpertsMixture`): ``p(target | cond)`` whose gate sees the gating columns only,
so that the regressor-only columns enter every expert linearly and extrapolate linearly.

Details: ``docs/estimators.md`` (plug-in section).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.cluster import KMeans

from causal_mixtures.weights.conditional import (
    as_rows,
    bic_search,
    check_n_components,
    draw_by_component,
    total_covariance,
)

__all__ = ["GatedExpertsMixture"]

_LOG_2PI = math.log(2.0 * math.pi)


def _gauss_logpdf(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``log N(x_n; mean_k, cov_k)`` for every component and row, (K, n), with the rows as
    columns (``x`` of shape (d, n): sums over ``d`` are then contiguous). ``mean`` is (K, d)
    or (K, d, n) (per-row means), ``cov`` (K, d, d); ``d = 0`` gives zeros."""
    d, n = x.shape
    out = np.zeros((len(cov), n))
    if d == 0:
        return out
    chol = np.linalg.cholesky(cov)
    prec = np.linalg.inv(chol)  # |L⁻¹ (x − m)|² is the Mahalanobis distance
    logdet = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(-1)
    for k in range(len(cov)):
        sol = prec[k] @ (x - (mean[k] if mean.ndim == 3 else mean[k][:, None]))
        out[k] = -0.5 * (sol * sol).sum(0) - logdet[k] - 0.5 * d * _LOG_2PI
    return out


def _log_normalise(lp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(lp − logsumexp(lp, axis=0), logsumexp(lp, axis=0))`` for (K, n) arrays."""
    top = lp.max(0)
    lse = top + np.log(np.exp(lp - top).sum(0))
    return lp - lse, lse


class GatedExpertsMixture:
    """``p(target | cond)``: a mixture of linear experts whose Gaussian gate sees only some
    of the conditioning columns.

    With ``g`` the gating columns of ``cond`` and ``r`` the regressor-only columns
    (``regressors``), ::

        p(t | g, r) = Σ_k r_k(g) N(t; A_k [1, c], Ψ_k),   r_k(g) ∝ π_k N(g; μ_k, Σ_k)

    where ``c = cond`` (all its columns, in their order) enters every expert linearly and the
    gate depends on ``g`` alone. Off the observed support of ``r`` given ``g`` (the plug-in
    front door evaluates the outcome model at causes ``y'`` never observed with the drawn
    mechanism ``z``) the prediction is therefore linear in ``r`` within each region of
    ``g``, where a Gaussian mixture regression's gate, a function of ``(g, r)`` jointly,
    switches erratically.

    Fitted by EM on the joint likelihood ``Σ_k π_k N(g; μ_k, Σ_k) N(t; A_k [1, c], Ψ_k)``
    of ``(g, t)`` given ``c`` (responsibilities; weighted least squares for ``A_k`` with a
    relative ridge ``ridge`` on the slopes; weighted Gaussian for the gate; full ``Ψ_k``),
    on standardised columns, from a seeded k-means partition of ``[g, t]``. Fitted
    parameters are reported on the data's scale. With no gating column the gate is the
    constant ``π_k`` (a mixture of linear regressions); with no regressor-only column the
    model has the same form as a Gaussian mixture regression on all of ``cond``.

    Parameters
    ----------
    n_components : int or "auto", default="auto"
        Number of experts. ``"auto"``: K = 1, 2, ... are fitted and the K with the smallest
        BIC of the *conditional* likelihood, ``-2 Σ_n log p̂(t_n | c_n) + P(K) log n``
        (``P(K)`` all free parameters: weights, gate means and covariances, expert
        coefficients and covariances), is kept; the search stops once the BIC has not
        improved on the best for two consecutive K, or at the bound of the rows
        ``K <= n / (2 P(1))`` — the rule of
        :class:`~causal_mixtures.weights.conditional.ConditionalGaussianMixture`.
    regressors : sequence of int, default=()
        Indices of the columns of ``cond`` that enter the experts but not the gate.
    search_rows : int or None, default=10000
        ``"auto"``: the K search runs on at most this many rows (a seeded subsample), then
        the chosen K is refitted on all rows from the subsample's fit. ``None``: all rows.
    reg_covar : float, default=1e-6
        Added to the diagonal of every gate and expert covariance, on the standardised scale.
    ridge : float, default=1e-8
        Ridge on the standardised slopes of each expert, relative to its responsibility mass
        (the intercept is not penalised).
    max_iter : int, default=300
        EM iterations per K at most.
    tol : float, default=1e-5
        EM stops when the mean log-likelihood per row improves by less than this.
    random_state : int, default=0
        Seed of the k-means initialisation and of the search's subsample.

    Attributes
    ----------
    n_components_ : int
        The K used (components whose responsibility mass falls below ``2 + d_c`` rows
        during EM are dropped).
    bic_ : dict of int to float
        BIC per K tried (``n_components="auto"``).
    weights_ : ndarray of shape (K,)
    gate_means_, gate_covariances_ : ndarray of shape (K, d_g), (K, d_g, d_g)
        The gate on the data's scale.
    coef_ : ndarray of shape (K, d_t, 1 + d_c)
        ``A_k``: intercept, then one column per column of ``cond``, on the data's scale.
    noise_covariances_ : ndarray of shape (K, d_t, d_t)
        ``Ψ_k`` on the data's scale.
    lower_bounds_ : ndarray
        Mean joint log-likelihood per row of ``(g, t)`` given ``c`` (standardised scale)
        after each EM iteration of the final fit.
    n_iter_ : int
        EM iterations of the final fit.
    converged_ : bool
    """

    def __init__(
        self,
        n_components: int | str = "auto",
        *,
        regressors: Sequence[int] = (),
        search_rows: int | None = 10_000,
        reg_covar: float = 1e-6,
        ridge: float = 1e-8,
        max_iter: int = 300,
        tol: float = 1e-5,
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.regressors = regressors
        self.search_rows = search_rows
        self.reg_covar = reg_covar
        self.ridge = ridge
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    # ------------------------------------------------------------------ validation
    def _check_params(self, dc: int) -> np.ndarray:
        """Validate the parameters; the gating columns' indices."""
        check_n_components(self.n_components)
        for name, value in (("reg_covar", self.reg_covar), ("ridge", self.ridge),
                            ("tol", self.tol)):
            if not isinstance(value, numbers.Real) or not value >= 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite real >= 0; got {value!r}.")
        mi = self.max_iter
        if isinstance(mi, bool) or not isinstance(mi, numbers.Integral) or mi < 1:
            raise ValueError(f"max_iter must be an int >= 1; got {mi!r}. Try 300.")
        reg = np.asarray(list(self.regressors))
        if reg.size and (
            reg.dtype.kind not in "iu" or reg.min() < 0 or reg.max() >= dc
            or len(np.unique(reg)) != reg.size
        ):
            raise ValueError(
                f"regressors must be distinct column indices of cond in [0, {dc}); got "
                f"{list(self.regressors)!r}. Pass the indices of the regressor-only columns."
            )
        return np.setdiff1d(np.arange(dc), reg.astype(np.int64))

    # ------------------------------------------------------------------ fitting
    def _n_params(self, dg: int, dc: int, dt: int) -> int:
        """Free parameters of one component (with its weight)."""
        return 1 + dg + dg * (dg + 1) // 2 + dt * (1 + dc) + dt * (dt + 1) // 2

    def fit(self, cond: Any, target: Any) -> GatedExpertsMixture:
        """Fit the mixture of experts on the rows ``(cond, target)``.

        Parameters
        ----------
        cond : array-like of shape (n, d_c)
            Conditioning variables (``d_c`` may be 0).
        target : array-like of shape (n, d_t)

        Returns
        -------
        self
        """
        target = as_rows("target", target)
        n = len(target)
        cond = as_rows("cond", cond, n) if np.size(cond) else np.empty((n, 0))
        gate = self._check_params(cond.shape[1])
        if n < 2:
            raise ValueError(
                f"a mixture of experts needs at least 2 rows; got {n}. Collect more rows or "
                "merge sparse cells."
            )
        self.gate_columns_ = gate
        loc_c, loc_t = cond.mean(0), target.mean(0)
        sc, st = cond.std(0), target.std(0)
        self._loc = (loc_c, loc_t)
        self._scale = (np.where(sc > 0, sc, 1.0), np.where(st > 0, st, 1.0))
        # Rows as columns from here on: (d, n) arrays.
        c = np.ascontiguousarray(((cond - loc_c) / self._scale[0]).T)
        t = np.ascontiguousarray(((target - loc_t) / self._scale[1]).T)
        dc, dt, dg = cond.shape[1], target.shape[1], len(gate)
        p1 = self._n_params(dg, dc, dt)
        self.bic_: dict[int, float] = {}
        if self.n_components != "auto":
            k = max(1, min(int(self.n_components), n // (2 * p1), n))
            self._finish(self._em(c, t, k, None), dc)
            return self

        def fit_scored(kk: int, rows: np.ndarray) -> tuple[dict[str, Any], float, int]:
            fitted = self._em(c[:, rows], t[:, rows], kk, None)
            self._finish(fitted, dc)
            ll = float(self.log_prob(target[rows], cond[rows]).sum())
            return fitted, ll, len(fitted["weights"]) * p1

        sub, _, best_fit, self.bic_ = bic_search(n, self.search_rows, self.random_state,
                                                 2 * p1, fit_scored)
        ns = len(sub)
        assert best_fit is not None
        if ns < n:  # refit on all rows, started from the subsample's fit
            best_fit = self._em(c, t, len(best_fit["weights"]), best_fit)
        self._finish(best_fit, dc)
        return self

    def _m_step(self, c: np.ndarray, t: np.ndarray, resp: np.ndarray) -> dict[str, np.ndarray]:
        """Weighted moments of ``[1, c, t]`` per component give the gate (``g`` is a subset
        of ``c``), the ridge-regularised weighted least squares and its residual covariance.
        ``c`` (d_c, n), ``t`` (d_t, n), ``resp`` (K, n)."""
        dc, n = c.shape
        nk = resp.sum(1)
        keep = nk >= 2 + dc
        if not keep.any():
            keep = nk == nk.max()
        resp, nk = resp[keep], nk[keep]
        rows = np.vstack([np.ones((1, n)), c, t])
        k, dt, p = len(nk), t.shape[0], 1 + dc
        gi = 1 + self.gate_columns_
        dg = len(gi)
        mu, cov = np.empty((k, dg)), np.empty((k, dg, dg))
        coef, psi = np.empty((k, dt, p)), np.empty((k, dt, dt))
        pen = self.ridge * np.diag(np.r_[0.0, np.ones(dc)])
        for j in range(k):
            mom = (rows * resp[j]) @ rows.T / nk[j]  # E_j[z z'], z = [1, c, t]
            mu[j] = mom[0, gi]
            cov[j] = mom[np.ix_(gi, gi)] - np.outer(mu[j], mu[j]) + self.reg_covar * np.eye(dg)
            gram, cross, tt = mom[:p, :p], mom[:p, p:], mom[p:, p:]
            a = np.linalg.solve(gram + pen, cross)  # (1 + dc, dt)
            coef[j] = a.T
            s = tt - cross.T @ a - a.T @ cross + a.T @ gram @ a
            psi[j] = 0.5 * (s + s.T) + self.reg_covar * np.eye(dt)
        return {"weights": nk / nk.sum(), "mu": mu, "cov": cov, "coef": coef, "psi": psi}

    def _log_joint(self, c: np.ndarray, t: np.ndarray, par: dict[str, np.ndarray]) -> np.ndarray:
        """``log π_k N(g; μ_k, Σ_k) N(t; A_k [1, c], Ψ_k)`` on the standardised scale, (K, n)."""
        coef = par["coef"]
        mean_t = coef[:, :, :1] + coef[:, :, 1:] @ c  # (K, d_t, n)
        return (
            np.log(par["weights"])[:, None]
            + _gauss_logpdf(c[self.gate_columns_], par["mu"], par["cov"])
            + _gauss_logpdf(t, mean_t, par["psi"])
        )

    def _em(
        self, c: np.ndarray, t: np.ndarray, k: int, init: dict[str, np.ndarray] | None
    ) -> dict[str, Any]:
        """EM from a k-means partition of ``[g, t]`` (or from the parameters ``init``)."""
        if init is None:
            if k == 1:
                resp = np.ones((1, c.shape[1]))
            else:
                rows = np.vstack([c[self.gate_columns_], t]).T
                labels = KMeans(k, n_init=1, random_state=self.random_state).fit_predict(rows)
                resp = (labels[None, :] == np.arange(k)[:, None]).astype(float)
            par = self._m_step(c, t, resp)
        else:
            par = {key: init[key] for key in ("weights", "mu", "cov", "coef", "psi")}
        history: list[float] = []
        converged = False
        for _ in range(self.max_iter):
            log_resp, lse = _log_normalise(self._log_joint(c, t, par))
            history.append(float(lse.mean()))
            if len(history) > 1 and abs(history[-1] - history[-2]) < self.tol:
                converged = True
                break
            par = self._m_step(c, t, np.exp(log_resp))
        return {**par, "history": np.asarray(history), "converged": converged}

    def _finish(self, fitted: dict[str, Any], dc: int) -> None:
        """The fitted parameters on the data's scale, and what prediction needs."""
        (loc_c, loc_t), (sc, st) = self._loc, self._scale
        gate = self.gate_columns_
        self.n_components_ = len(fitted["weights"])
        self.weights_ = fitted["weights"]
        self.gate_means_ = loc_c[gate] + sc[gate] * fitted["mu"]
        self.gate_covariances_ = fitted["cov"] * np.outer(sc[gate], sc[gate])
        # [1, (c - loc) / s] = T [1, c]; t = loc_t + s_t A [1, c_std].
        trans = np.zeros((1 + dc, 1 + dc))
        trans[0, 0] = 1.0
        trans[1:, 0] = -loc_c / sc
        trans[1:, 1:] = np.diag(1.0 / sc)
        coef = st[None, :, None] * fitted["coef"] @ trans
        coef[:, :, 0] += loc_t
        self.coef_ = coef
        self.noise_covariances_ = fitted["psi"] * np.outer(st, st)
        self.lower_bounds_ = fitted["history"]
        self.n_iter_ = len(fitted["history"])
        self.converged_ = bool(fitted["converged"])
        self.dc_, self.dt_ = dc, len(loc_t)
        self.log_weights_ = np.log(self.weights_)
        self.noise_chol_ = np.linalg.cholesky(self.noise_covariances_)

    # ------------------------------------------------------------------ prediction
    def _cond(self, cond: Any, m: int | None = None) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise ValueError("this GatedExpertsMixture is not fitted yet; call fit first.")
        if self.dc_ == 0:
            n = m if m is not None else len(cond)
            return np.empty((n, 0))
        c = as_rows("cond", cond, m)
        if c.shape[1] != self.dc_:
            raise ValueError(
                f"cond must have {self.dc_} column(s) as when fitted; got {c.shape[1]}."
            )
        return c

    def _log_resp_t(self, c: np.ndarray) -> np.ndarray:
        """``log r_k(g)`` with rows as columns: ``c`` (d_c, m) -> (K, m)."""
        k, m = len(self.weights_), c.shape[1]
        if len(self.gate_columns_) == 0:
            return np.broadcast_to((self.log_weights_ - logsumexp(self.log_weights_))[:, None], (k, m))
        lp = self.log_weights_[:, None] + _gauss_logpdf(
            c[self.gate_columns_], self.gate_means_, self.gate_covariances_
        )
        return _log_normalise(lp)[0]

    def _means_t(self, c: np.ndarray) -> np.ndarray:
        """Each expert's mean with rows as columns: (K, d_t, m)."""
        return self.coef_[:, :, :1] + self.coef_[:, :, 1:] @ c

    def log_resp(self, cond: Any) -> np.ndarray:
        """``log r_k(g)``: log-probability of each expert given ``cond``, shape (m, K)."""
        return self._log_resp_t(self._cond(cond).T).T

    def component_means(self, cond: Any) -> np.ndarray:
        """``A_k [1, cond]``: each expert's mean of ``target``, shape (m, K, d_t)."""
        return np.moveaxis(self._means_t(self._cond(cond).T), 2, 0)

    def log_prob(self, target: Any, cond: Any = None) -> np.ndarray:
        """``log p(target_i | cond_i)`` for every row, shape (m,)."""
        t = as_rows("target", target)
        if t.shape[1] != self.dt_:
            raise ValueError(f"target must have {self.dt_} column(s) as when fitted; got {t.shape[1]}.")
        c = self._cond(cond, len(t)).T
        comp = _gauss_logpdf(t.T, self._means_t(c), self.noise_covariances_)
        return _log_normalise(self._log_resp_t(c) + comp)[1]

    def sample(self, cond: Any, rng: np.random.Generator) -> np.ndarray:
        """One draw of ``target`` for every row of ``cond``: shape (m, d_t). For ``d_c = 0``
        pass ``cond`` of shape (m, 0)."""
        c = self._cond(cond)
        return draw_by_component(
            np.exp(self.log_resp(c)), self.noise_chol_, rng,
            lambda k, rows: self.coef_[k][:, 0] + c[rows] @ self.coef_[k][:, 1:].T,
        )

    def mean(self, cond: Any) -> np.ndarray:
        """``E[target | cond]``, shape (m, d_t)."""
        c = self._cond(cond).T
        return (np.exp(self._log_resp_t(c))[:, None, :] * self._means_t(c)).sum(0).T

    def covariance(self, cond: Any) -> np.ndarray:
        """``Cov[target | cond]`` (law of total covariance over the experts), (m, d_t, d_t)."""
        c = self._cond(cond)
        return total_covariance(np.exp(self.log_resp(c)), self.component_means(c),
                                self.noise_covariances_)
