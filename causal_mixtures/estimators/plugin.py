"""Plug-in front-door sampler: the front-door formula itself, with no importance weights.

Details: ``docs/estimators.md``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture

from causal_mixtures.weights.density import unique_rows

__all__ = ["ConditionalGaussianMixture", "PluginFrontDoor"]


class ConditionalGaussianMixture:
    """``p(target | cond)`` from a full-covariance Gaussian mixture over ``[cond, target]``.

    Parameters
    ----------
    n_components : int
    reg_covar : float
    random_state : int
        Seed of the mixture's k-means initialisation.
    """

    def __init__(
        self, n_components: int = 1, reg_covar: float = 1e-6, random_state: int = 0
    ) -> None:
        self.n_components = n_components
        self.reg_covar = reg_covar
        self.random_state = random_state

    def fit(self, cond: np.ndarray, target: np.ndarray) -> ConditionalGaussianMixture:
        """Fit the joint mixture on rows ``[cond, target]``."""
        cond = np.asarray(cond, dtype=float).reshape(len(cond), -1)
        target = np.asarray(target, dtype=float).reshape(len(target), -1)
        joint = np.column_stack([cond, target])
        k = max(1, min(self.n_components, len(joint) // 2))
        gm = GaussianMixture(
            k, covariance_type="full", reg_covar=self.reg_covar, random_state=self.random_state
        ).fit(joint)
        dc = cond.shape[1]
        self.dc_, self.dt_ = dc, target.shape[1]
        self.weights_ = gm.weights_
        mu, cov = gm.means_, gm.covariances_
        self.mu_c_, self.mu_t_ = mu[:, :dc], mu[:, dc:]
        s_cc, s_ct, s_tt = cov[:, :dc, :dc], cov[:, :dc, dc:], cov[:, dc:, dc:]
        self.gain_ = np.linalg.solve(s_cc, s_ct)  # Σ_cc⁻¹ Σ_ct, (K, dc, dt)
        cond_cov = s_tt - np.einsum("kct,kcs->kts", s_ct, self.gain_)
        self.cond_chol_ = np.linalg.cholesky(0.5 * (cond_cov + np.swapaxes(cond_cov, 1, 2)))
        self.cc_chol_ = np.linalg.cholesky(s_cc)
        return self

    def _log_resp(self, cond: np.ndarray) -> np.ndarray:
        """log p(component | cond), shape (m, K)."""
        diff = cond[:, None, :] - self.mu_c_[None]  # (m, K, dc)
        sol = np.linalg.solve(self.cc_chol_[None], diff[..., None])[..., 0]
        log_det = np.log(np.diagonal(self.cc_chol_, axis1=1, axis2=2)).sum(-1)
        lp = (
            np.log(self.weights_)
            - log_det
            - 0.5 * (sol**2).sum(-1)
            - 0.5 * self.dc_ * math.log(2 * math.pi)
        )
        return lp - logsumexp(lp, axis=1, keepdims=True)

    def sample(self, cond: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One draw of ``target`` for every row of ``cond``: shape (m, dt)."""
        cond = np.asarray(cond, dtype=float).reshape(len(cond), -1)
        resp = np.exp(self._log_resp(cond))
        u = rng.uniform(size=(len(cond), 1))
        comp = np.minimum((resp.cumsum(1) < u).sum(1), resp.shape[1] - 1)
        mean = self.mu_t_[comp] + np.einsum("mc,mct->mt", cond - self.mu_c_[comp], self.gain_[comp])
        eps = rng.standard_normal((len(cond), self.dt_))
        return mean + np.einsum("mts,ms->mt", self.cond_chol_[comp], eps)

    def mean(self, cond: np.ndarray) -> np.ndarray:
        """``E[target | cond]``, shape (m, dt)."""
        cond = np.asarray(cond, dtype=float).reshape(len(cond), -1)
        resp = np.exp(self._log_resp(cond))  # (m, K)
        means = self.mu_t_[None] + np.einsum(
            "mkc,kct->mkt", cond[:, None, :] - self.mu_c_[None], self.gain_
        )
        return np.einsum("mk,mkt->mt", resp, means)


class PluginFrontDoor:
    """Ancestral sampler of the front-door formula from fitted conditionals.

    Parameters
    ----------
    n_components : int, default=3
        Components of each joint mixture.
    discrete_cause, discrete_mechanism : bool
        How to model ``y`` and ``z`` (see the module docstring).
    alpha : float, default=1.0
        Pseudo-count of the discrete ``p(z | y)``.
    random_state : int, default=0
        Seed of the mixtures' initialisation (sampling takes its own generator).
    """

    def __init__(
        self,
        n_components: int = 3,
        *,
        discrete_cause: bool = True,
        discrete_mechanism: bool = False,
        alpha: float = 1.0,
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.discrete_cause = discrete_cause
        self.discrete_mechanism = discrete_mechanism
        self.alpha = alpha
        self.random_state = random_state

    def _cgm(self) -> ConditionalGaussianMixture:
        return ConditionalGaussianMixture(self.n_components, random_state=self.random_state)

    def fit(self, X: np.ndarray, y: np.ndarray, z: np.ndarray) -> PluginFrontDoor:
        """Fit ``p(z | y)`` and ``p(x | y', z)`` on the observational rows."""
        X = np.asarray(X, dtype=float)
        z = np.asarray(z).reshape(len(z), -1)
        y = np.asarray(y)
        self.y_ = y.copy()
        self.n_features_ = X.shape[1]
        if self.discrete_mechanism:
            self.z_levels_, z_codes = unique_rows(z)
        if self.discrete_cause:
            self.classes_ = np.unique(y)
            self.z_given_y_, self.x_given_yz_ = {}, {}
            for c in self.classes_.tolist():
                rows = y == c
                if self.discrete_mechanism:
                    counts = np.bincount(z_codes[rows], minlength=len(self.z_levels_)) + self.alpha
                    self.z_given_y_[c] = counts / counts.sum()
                    for lv in range(len(self.z_levels_)):
                        cell = rows & (z_codes == lv)
                        if cell.sum() >= 2:
                            self.x_given_yz_[(c, lv)] = _MarginalMixture(
                                self.n_components, self.random_state
                            ).fit(X[cell])
                else:
                    zc = z[rows].astype(float)
                    self.z_given_y_[c] = _MarginalMixture(self.n_components, self.random_state).fit(
                        zc
                    )
                    self.x_given_yz_[c] = self._cgm().fit(zc, X[rows])
        else:
            yf = y.astype(float).reshape(-1, 1)
            zf = z.astype(float)
            self.z_given_y_ = self._cgm().fit(yf, zf)
            self.x_given_yz_ = self._cgm().fit(np.column_stack([yf, zf]), X)
        return self

    def sample(self, n: int, do: object, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of ``x ~ p(x | do(y = do))``."""
        y_prime = self.y_[rng.integers(0, len(self.y_), n)]
        if self.discrete_cause:
            if self.discrete_mechanism:
                codes = rng.choice(len(self.z_levels_), size=n, p=self.z_given_y_[do])
                out = np.empty((n, self.n_features_))
                for key in set(zip(y_prime.tolist(), codes.tolist(), strict=True)):
                    rows = (y_prime == key[0]) & (codes == key[1])
                    model = self.x_given_yz_.get(key)
                    if model is None:
                        raise ValueError(
                            f"no training rows with y = {key[0]!r} and mechanism level "
                            f"{self.z_levels_[key[1]].tolist()}: the plug-in sampler cannot "
                            "model p(x | y', z) there. Use strategy='weighting'."
                        )
                    out[rows] = model.sample(int(rows.sum()), rng)
                return out
            z = self.z_given_y_[do].sample(n, rng)
            out = np.empty((n, self.n_features_))
            for c in self.classes_.tolist():
                rows = y_prime == c
                if rows.any():
                    out[rows] = self.x_given_yz_[c].sample(z[rows], rng)
            return out
        z = self.z_given_y_.sample(np.full((n, 1), float(do)), rng)
        return self.x_given_yz_.sample(np.column_stack([y_prime.astype(float), z]), rng)


class _MarginalMixture:
    """A plain Gaussian mixture with a seeded ``sample(n, rng)``."""

    def __init__(self, n_components: int, random_state: int) -> None:
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, a: np.ndarray) -> _MarginalMixture:
        k = max(1, min(self.n_components, len(a) // 2))
        self.gm_ = GaussianMixture(k, covariance_type="full", random_state=self.random_state).fit(a)
        self.chol_ = np.linalg.cholesky(self.gm_.covariances_)
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        comp = rng.choice(len(self.gm_.weights_), size=n, p=self.gm_.weights_)
        eps = rng.standard_normal((n, self.gm_.means_.shape[1]))
        return self.gm_.means_[comp] + np.einsum("mts,ms->mt", self.chol_[comp], eps)
