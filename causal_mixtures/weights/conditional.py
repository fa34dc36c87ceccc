"""Conditional Gaussian mixtures ``p(target | cond)``: the conditional of one full-covariance
Gaussian mixture over ``[cond, target]`` (Gaussian mixture regression), with the number of
components chosen by the BIC of the conditional likelihood; and :class:`CellConditional`,
one such model per cell of discrete conditioning variables.

Details: ``docs/weights.md``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture

from causal_mixtures.exceptions import PositivityError

__all__ = [
    "BIC_PATIENCE",
    "draw_by_component",
    "total_covariance",
    "CellConditional",
    "ConditionalGaussianMixture",
    "as_rows",
    "bic_search",
    "bic_turned",
    "check_n_components",
]

_LOG_2PI = math.log(2.0 * math.pi)

BIC_PATIENCE = 2  #: "auto" K search: stop after this many K without a better BIC


def bic_turned(totals: list[float], patience: int = BIC_PATIENCE) -> bool:
    """Whether the BICs of K = 1, 2, ... stopped improving for ``patience`` K."""
    if len(totals) <= patience:
        return False
    best_before = min(totals[:-patience])
    return all(not (t < best_before) for t in totals[-patience:])


def as_rows(name: str, a: Any, n: int | None = None) -> np.ndarray:
    """``a`` as a finite float array of rows (n, d), with ``n`` rows when given."""
    arr = np.asarray(a, dtype=float)
    arr = arr.reshape(len(arr), -1)
    if n is not None and len(arr) != n:
        raise ValueError(
            f"{name} must have one row per row of the other argument ({n}); got {len(arr)}. "
            "Pass arrays of the same length."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got NaN or inf. Drop or impute those rows.")
    return arr


def check_n_components(k: Any) -> None:
    """``n_components`` of a conditional model: an int >= 1 or ``"auto"``."""
    if k != "auto" and (isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1):
        raise ValueError(f"n_components must be an int >= 1 or 'auto'; got {k!r}. Try 'auto'.")


def bic_search(
    n: int, search_rows: int | None, random_state: int, rows_per_component: int,
    fit: Callable[[int, np.ndarray], tuple[Any, float, int]],
) -> tuple[np.ndarray, int, Any, dict[int, float]]:
    """The ``"auto"`` K search of the conditional models: K = 1, 2, ... fitted on at most
    ``search_rows`` rows (a seeded subsample), while ``K <= rows / rows_per_component``,
    until the conditional BIC ``-2 log L + (P - 1) log rows`` has not improved for
    :data:`BIC_PATIENCE` K (:func:`bic_turned`). ``fit(k, rows)`` returns the fitted model,
    its conditional log-likelihood on those rows and its free parameters ``P``.

    Returns
    -------
    rows, best K, its model, the BIC per K tried
    """
    sub = np.arange(n)
    if search_rows is not None and n > search_rows:
        sub = np.sort(np.random.default_rng(random_state).choice(n, search_rows, replace=False))
    ns = len(sub)
    bics: dict[int, float] = {}
    best, best_model = 0, None
    for k in range(1, max(1, ns // rows_per_component) + 1):
        model, loglik, n_params = fit(k, sub)
        bics[k] = -2.0 * loglik + (n_params - 1) * math.log(ns)
        if best_model is None or bics[k] < bics[best]:
            best, best_model = k, model
        if bic_turned(list(bics.values())):
            break
    return sub, best, best_model, bics


def _component_parameters(d: int) -> int:
    """Free parameters of one full-covariance component in ``d`` dimensions (with its weight)."""
    return 1 + d + d * (d + 1) // 2


class ConditionalGaussianMixture:
    """``p(target | cond)`` from a full-covariance Gaussian mixture over ``[cond, target]``.

    The joint mixture ``Σ_k π_k N([c, t]; μ_k, Σ_k)`` has the conditional
    ``p(t | c) = Σ_k r_k(c) N(t; μ_t,k + Σ_tc,k Σ_cc,k⁻¹ (c − μ_c,k), Σ_t|c,k)`` with
    ``r_k(c) ∝ π_k N(c; μ_c,k, Σ_cc,k)``. The mixture is fitted on standardised columns (so
    ``reg_covar`` is relative to each column's variance) and mapped back. ``cond`` may have
    no columns: then it is a plain mixture of ``target``.

    Parameters
    ----------
    n_components : int or "auto", default="auto"
        Components of the joint mixture. ``"auto"``: K = 1, 2, ... are fitted (EM on the
        joint rows) and the K with the smallest BIC of the *conditional* likelihood,
        ``-2 Σ_n log p̂(t_n | c_n) + P(K) log n`` (``P(K)`` all free parameters of the joint
        mixture), is kept; the search stops once the BIC has not improved on the best for two
        consecutive K, or at the bound of the rows ``K <= n / (2 P(1))`` (no other cap). The
        conditional criterion matters: a curved or skewed ``cond`` needs components of the
        joint that ``p(t | c)`` does not, and surplus components make the local regressions
        collinear and poor where the plug-in evaluates them (off the observed ``(y, z)``).
        With no ``cond`` columns it is the ordinary BIC.
    search_rows : int or None, default=10000
        ``"auto"``: the K search runs on at most this many rows (a seeded subsample), then
        the chosen K is refitted on all rows; this bounds the cost at large ``n`` (the
        subsample's BIC may choose a smaller K than all rows would; the refit starts from the
        subsample's fit). ``None``: all rows.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance, on the standardised scale.
    random_state : int, default=0
        Seed of the mixture's k-means initialisation (the fit is deterministic given it).

    Attributes
    ----------
    n_components_ : int
        The K used.
    bic_ : dict of int to float
        BIC per K tried (``n_components="auto"``).
    weights_, means_, covariances_ : ndarray
        The joint mixture on the data's scale, columns ``[cond, target]``.
    """

    def __init__(
        self,
        n_components: int | str = "auto",
        *,
        search_rows: int | None = 10_000,
        reg_covar: float = 1e-6,
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.search_rows = search_rows
        self.reg_covar = reg_covar
        self.random_state = random_state

    def fit(self, cond: Any, target: Any) -> ConditionalGaussianMixture:
        """Fit the joint mixture on the rows ``[cond, target]``.

        Parameters
        ----------
        cond : array-like of shape (n, d_c)
            Conditioning variables (``d_c`` may be 0).
        target : array-like of shape (n, d_t)
        """
        k = self.n_components
        check_n_components(k)
        target = as_rows("target", target)
        cond = as_rows("cond", cond, len(target)) if np.size(cond) else np.empty((len(target), 0))
        if len(target) < 2:
            raise ValueError(
                f"a conditional mixture needs at least 2 rows; got {len(target)}. Collect more "
                "rows or merge sparse cells."
            )
        joint = np.column_stack([cond, target])
        loc = joint.mean(0)
        scale = joint.std(0)
        scale = np.where(scale > 0, scale, 1.0)
        std = (joint - loc) / scale
        n, d = std.shape
        p1 = _component_parameters(d)
        k_max = max(1, n // (2 * p1))
        dc = cond.shape[1]

        def fit(k: int, rows: np.ndarray) -> GaussianMixture:
            return GaussianMixture(
                k, covariance_type="full", reg_covar=self.reg_covar,
                random_state=self.random_state,
            ).fit(rows)

        self.bic_ = {}
        if k != "auto":
            self._set_params(fit(max(1, min(int(k), k_max, n)), std), loc, scale, dc)
            return self

        def fit_scored(kk: int, rows: np.ndarray) -> tuple[GaussianMixture, float, int]:
            model = fit(kk, std[rows])
            self._set_params(model, loc, scale, dc)
            return model, float(self.log_prob(target[rows], cond[rows]).sum()), kk * p1

        sub, best, gm, self.bic_ = bic_search(n, self.search_rows, self.random_state, 2 * p1,
                                              fit_scored)
        ns = len(sub)
        assert gm is not None
        if ns < n:  # refit on all rows, started from the subsample's fit
            gm = GaussianMixture(
                best, covariance_type="full", reg_covar=self.reg_covar,
                random_state=self.random_state, weights_init=gm.weights_, means_init=gm.means_,
                precisions_init=gm.precisions_,
            ).fit(std)
        self._set_params(gm, loc, scale, dc)
        return self

    def _set_params(self, gm: GaussianMixture, loc: np.ndarray, scale: np.ndarray, dc: int) -> None:
        self.n_components_ = int(gm.n_components)
        self.weights_ = gm.weights_
        self.means_ = loc + scale * gm.means_
        self.covariances_ = gm.covariances_ * np.outer(scale, scale)
        self._set_conditional(dc)

    def _set_conditional(self, dc: int) -> None:
        mu, cov = self.means_, self.covariances_
        k, d = mu.shape
        self.dc_, self.dt_ = dc, d - dc
        self.log_weights_ = np.log(self.weights_)
        self.mu_c_, self.mu_t_ = mu[:, :dc], mu[:, dc:]
        s_cc, s_ct, s_tt = cov[:, :dc, :dc], cov[:, :dc, dc:], cov[:, dc:, dc:]
        if dc:
            self.gain_ = np.linalg.solve(s_cc, s_ct)  # Σ_cc⁻¹ Σ_ct, (K, dc, dt)
            cc_chol = np.linalg.cholesky(s_cc)
            self.cc_prec_ = np.linalg.inv(cc_chol)  # L⁻¹, (K, dc, dc)
            self.cc_logdet_ = np.log(np.diagonal(cc_chol, axis1=1, axis2=2)).sum(-1)
            cond_cov = s_tt - np.einsum("kct,kcs->kts", s_ct, self.gain_)
        else:
            self.gain_ = np.zeros((k, 0, self.dt_))
            cond_cov = s_tt
        self.cond_cov_ = 0.5 * (cond_cov + np.swapaxes(cond_cov, 1, 2))
        self.cond_chol_ = np.linalg.cholesky(self.cond_cov_)
        self.cond_prec_ = np.linalg.inv(self.cond_chol_)
        self.cond_logdet_ = np.log(np.diagonal(self.cond_chol_, axis1=1, axis2=2)).sum(-1)

    def _cond(self, cond: Any, m: int | None = None) -> np.ndarray:
        if self.dc_ == 0:
            n = m if m is not None else len(cond)
            return np.empty((n, 0))
        c = as_rows("cond", cond, m)
        if c.shape[1] != self.dc_:
            raise ValueError(
                f"cond must have {self.dc_} column(s) as when fitted; got {c.shape[1]}."
            )
        return c

    def log_resp(self, cond: Any) -> np.ndarray:
        """``log r_k(c)``: log-probability of each component given ``cond``, shape (m, K)."""
        c = self._cond(cond)
        if self.dc_ == 0:
            return np.broadcast_to(self.log_weights_ - logsumexp(self.log_weights_), (len(c), len(self.weights_)))
        sol = np.einsum("kde,mke->mkd", self.cc_prec_, c[:, None, :] - self.mu_c_[None])
        lp = (
            self.log_weights_ - self.cc_logdet_
            - 0.5 * (sol**2).sum(-1) - 0.5 * self.dc_ * _LOG_2PI
        )
        return lp - logsumexp(lp, axis=1, keepdims=True)

    def component_means(self, cond: Any) -> np.ndarray:
        """``E[target | cond, component k]``, shape (m, K, d_t)."""
        c = self._cond(cond)
        return self.mu_t_[None] + np.einsum("mkc,kct->mkt", c[:, None, :] - self.mu_c_[None], self.gain_)

    def log_prob(self, target: Any, cond: Any = None) -> np.ndarray:
        """``log p(target_i | cond_i)`` for every row, shape (m,)."""
        t = as_rows("target", target)
        if t.shape[1] != self.dt_:
            raise ValueError(f"target must have {self.dt_} column(s) as when fitted; got {t.shape[1]}.")
        c = self._cond(cond, len(t))
        diff = t[:, None, :] - self.component_means(c)  # (m, K, dt)
        sol = np.einsum("kde,mke->mkd", self.cond_prec_, diff)
        comp = -0.5 * (sol**2).sum(-1) - self.cond_logdet_ - 0.5 * self.dt_ * _LOG_2PI
        return logsumexp(self.log_resp(c) + comp, axis=1)

    def sample(self, cond: Any, rng: np.random.Generator) -> np.ndarray:
        """One draw of ``target`` for every row of ``cond``: shape (m, d_t). For ``d_c = 0``
        pass ``cond`` of shape (m, 0)."""
        c = self._cond(cond)
        return draw_by_component(
            np.exp(self.log_resp(c)), self.cond_chol_, rng,
            lambda k, rows: self.mu_t_[k] + (c[rows] - self.mu_c_[k]) @ self.gain_[k],
        )

    def mean(self, cond: Any) -> np.ndarray:
        """``E[target | cond]``, shape (m, d_t)."""
        c = self._cond(cond)
        return np.einsum("mk,mkt->mt", np.exp(self.log_resp(c)), self.component_means(c))

    def covariance(self, cond: Any) -> np.ndarray:
        """``Cov[target | cond]`` (law of total covariance over the components), (m, d_t, d_t)."""
        c = self._cond(cond)
        return total_covariance(np.exp(self.log_resp(c)), self.component_means(c), self.cond_cov_)


def draw_by_component(
    resp: np.ndarray, chol: np.ndarray, rng: np.random.Generator,
    mean_of: Callable[[int, np.ndarray], np.ndarray],
) -> np.ndarray:
    """One draw per row of a conditional Gaussian mixture: a component ``k`` from the row's
    probabilities ``resp`` (m, K), then ``mean_of(k, rows) + chol[k] ε``. One component at a
    time: gathering a (d_t, d_t) factor per row would be an (m, d_t, d_t) array (3 GB at
    m = 1e5, d_t = 64)."""
    m, dt = len(resp), chol.shape[-1]
    u = rng.uniform(size=(m, 1))
    comp = np.minimum((resp.cumsum(1) < u).sum(1), resp.shape[1] - 1)
    eps = rng.standard_normal((m, dt))
    out = np.empty((m, dt))
    for k in np.unique(comp).tolist():
        rows = comp == k
        out[rows] = mean_of(k, rows) + eps[rows] @ chol[k].T
    return out


def total_covariance(r: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """Law of total covariance over mixture components: probabilities ``r`` (m, K), component
    means (m, K, d) and covariances (K, d, d) → (m, d, d)."""
    mean = np.einsum("mk,mkt->mt", r, means)
    second = np.einsum("mk,kts->mts", r, covs) + np.einsum("mk,mkt,mks->mts", r, means, means)
    return second - mean[:, :, None] * mean[:, None, :]


class _Categorical:
    """``p(level | cont)`` of a discrete target within one cell: smoothed counts, or a
    multinomial logistic regression on the continuous conditioning columns."""

    def __init__(self, n_levels: int, alpha: float) -> None:
        self.n_levels = n_levels
        self.alpha = alpha

    def fit(self, cont: np.ndarray, codes: np.ndarray) -> _Categorical:
        self.present_ = np.unique(codes)
        self.model_ = None
        if cont.shape[1] and len(self.present_) > 1:
            self.loc_, sd = cont.mean(0), cont.std(0)
            self.scale_ = np.where(sd > 0, sd, 1.0)
            self.model_ = LogisticRegression(C=1e4, max_iter=1000).fit(
                (cont - self.loc_) / self.scale_, codes
            )
        counts = np.bincount(codes, minlength=self.n_levels) + self.alpha
        self.probs_ = counts / counts.sum()
        return self

    def proba(self, cont: np.ndarray) -> np.ndarray:
        if self.model_ is None:
            return np.broadcast_to(self.probs_, (len(cont), self.n_levels))
        out = np.zeros((len(cont), self.n_levels))
        out[:, self.model_.classes_] = self.model_.predict_proba((cont - self.loc_) / self.scale_)
        return out

    def sample(self, cont: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self.proba(cont)
        u = rng.uniform(size=(len(cont), 1))
        return np.minimum((p.cumsum(1) < u).sum(1), self.n_levels - 1)


class CellConditional:
    """``p(target | disc, cont)``: one model per cell of the discrete conditioning codes,
    conditioned on the continuous columns inside the cell — a
    :class:`~causal_mixtures.weights.conditional.ConditionalGaussianMixture` for a continuous
    target, smoothed counts or a logistic regression for a discrete one (level codes).

    Parameters
    ----------
    n_components : int, "auto" or dict
        Components of each conditional mixture (``"auto"``: K by BIC); a dict maps a
        cell's key to its K (cells it does not name: ``"auto"``), e.g.
        :meth:`components` of a fitted model, to refit the same model on other rows.
    n_levels : int or None
        Levels of a discrete target; ``None`` for a continuous target.
    alpha : float
        Pseudo-count of a discrete target's counts.
    random_state : int
    factory : callable, optional
        ``factory(n_components, random_state)`` -> an unfitted model of a continuous target
        with the methods ``fit(cond, target)``, ``sample(cond, rng)``, ``mean(cond)`` and
        ``log_prob(target, cond)`` (e.g. a
        :class:`~causal_mixtures.weights.experts.GatedExpertsMixture`); default
        :class:`ConditionalGaussianMixture`.
    """

    def __init__(
        self, n_components: int | str, n_levels: int | None, alpha: float, random_state: int,
        factory: Callable[[int | str, int], Any] | None = None,
    ) -> None:
        self.n_components = n_components
        self.n_levels = n_levels
        self.alpha = alpha
        self.random_state = random_state
        self.factory = factory

    def _keys(self, disc: np.ndarray) -> np.ndarray:
        return disc @ self.radix_ if disc.shape[1] else np.zeros(len(disc), dtype=np.int64)

    def components(self) -> dict[int, int]:
        """The fitted K of every cell's mixture (cells of a discrete target: none)."""
        return {key: int(m.n_components_) for key, m in self.models_.items()
                if hasattr(m, "n_components_")}

    def fit(self, target: np.ndarray, disc: np.ndarray, cont: np.ndarray) -> CellConditional:
        """Fit one model per cell of ``disc`` (integer codes, (n, a)) given ``cont`` (n, b)."""
        disc = disc.astype(np.int64)
        sizes = disc.max(0) + 1 if disc.shape[1] else np.zeros(0, dtype=np.int64)
        self.radix_ = np.cumprod(np.concatenate([[1], sizes[:-1]])).astype(np.int64)
        keys = self._keys(disc)
        self.models_: dict[int, Any] = {}
        self.rows_: dict[int, int] = {}
        for key in np.unique(keys).tolist():
            rows = keys == key
            self.rows_[key] = int(rows.sum())
            if self.n_levels is not None:
                self.models_[key] = _Categorical(self.n_levels, self.alpha).fit(
                    cont[rows], target[rows]
                )
            elif rows.sum() >= 2:
                k = (self.n_components.get(key, "auto") if isinstance(self.n_components, dict)
                     else self.n_components)
                model = (
                    ConditionalGaussianMixture(k, random_state=self.random_state)
                    if self.factory is None else self.factory(k, self.random_state)
                )
                self.models_[key] = model.fit(cont[rows], target[rows])
        return self

    def _each(self, disc: np.ndarray, describe: Any) -> list[tuple[np.ndarray, Any]]:
        keys = self._keys(disc.astype(np.int64))
        out = []
        for key in np.unique(keys).tolist():
            model = self.models_.get(key)
            rows = keys == key
            if model is None:
                # A positivity failure of the plug-in: these discrete values are (almost)
                # never observed together, so the formula's conditional there is unknown.
                raise PositivityError(
                    f"the plug-in needs {describe(disc[np.flatnonzero(rows)[0]])}, but the "
                    f"training data have {self.rows_.get(key, 0)} row(s) there, too few to "
                    "model that conditional: those values of the cause and the mechanism are "
                    "(almost) never observed together. Use strategy='weighting' (whose "
                    "diagnostics then check positivity), or merge rare levels."
                )
            out.append((rows, model))
        return out

    def sample(
        self, disc: np.ndarray, cont: np.ndarray, rng: np.random.Generator, describe: Any
    ) -> np.ndarray:
        """One draw per row (codes for a discrete target)."""
        width = 1 if self.n_levels is not None else None
        out = None
        for rows, model in self._each(disc, describe):
            draw = model.sample(cont[rows], rng)
            if out is None:
                shape = (len(disc),) if width else (len(disc), draw.shape[1])
                out = np.empty(shape, dtype=draw.dtype)
            out[rows] = draw
        assert out is not None
        return out

    def mean(self, disc: np.ndarray, cont: np.ndarray, describe: Any) -> np.ndarray:
        """``E[target | disc, cont]`` per row (continuous targets)."""
        out = None
        for rows, model in self._each(disc, describe):
            m = model.mean(cont[rows])
            if out is None:
                out = np.empty((len(disc), m.shape[1]))
            out[rows] = m
        assert out is not None
        return out

    def log_prob(
        self, target: np.ndarray, disc: np.ndarray, cont: np.ndarray, describe: Any
    ) -> np.ndarray:
        """``log p(target_i | disc_i, cont_i)`` per row (continuous targets)."""
        out = np.empty(len(target))
        for rows, model in self._each(disc, describe):
            out[rows] = model.log_prob(target[rows], cont[rows])
        return out
