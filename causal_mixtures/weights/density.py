"""Conditional density estimators ``p(z | y)`` for the factors of the causal weights.

Details: ``docs/weights.md``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture

from causal_mixtures.exceptions import PositivityError
from causal_mixtures.weights.conditional import ConditionalGaussianMixture
from causal_mixtures.weights.kde import BinnedKDE, ExactKDE, binned_feasible

__all__ = [
    "DENSITIES",
    "ConditionalDensity",
    "ConditionalMixtureDensity",
    "DiscreteDensity",
    "GaussianDensity",
    "GaussianMixtureDensity",
    "HistogramDensity",
    "KernelDensityEstimate",
    "LogisticDensity",
    "check_cause_type",
    "is_discrete",
    "make_density",
    "make_named",
]

DENSITIES = ("auto", "discrete", "gaussian", "kde", "histogram", "gmm", "logistic", "mixture")
_MAX_DISCRETE_LEVELS = 20


def is_discrete(values: np.ndarray, *, max_levels: int = _MAX_DISCRETE_LEVELS) -> bool:
    """Whether a variable should be treated as discrete.

    Integer, boolean, string and object arrays are discrete; a float array is discrete when
    every entry is a whole number and it takes at most ``max_levels`` distinct values (rows).
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "biuOUSb":
        return True
    if arr.dtype.kind != "f":
        return False
    if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
        return False
    rows = arr.reshape(len(arr), -1)
    return len(unique_rows(rows)[0]) <= max_levels


def _no_support(value: Any, classes: np.ndarray) -> PositivityError:
    return PositivityError(
        f"do value {value!r} has no support: no training row has y == {value!r} "
        f"(observed classes: {classes.tolist()}). Remove it from `do`."
    )


def unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a 2-D array and the index of each row among them, for any dtype
    (``np.unique(axis=0)`` refuses object arrays: strings, mixed labels)."""
    if rows.dtype.kind != "O":
        if rows.shape[1] == 1:  # one column: a plain sort (axis=0 sorts structured rows)
            levels, codes = np.unique(rows[:, 0], return_inverse=True)
            return levels.reshape(-1, 1), codes.reshape(-1)
        levels, codes = np.unique(rows, axis=0, return_inverse=True)
        return levels, codes.reshape(-1)
    keys = [tuple(r) for r in rows.tolist()]
    distinct = sorted(set(keys), key=lambda k: tuple((type(v).__name__, repr(v)) for v in k))
    index = {k: i for i, k in enumerate(distinct)}
    levels = np.empty((len(distinct), rows.shape[1]), dtype=object)
    for i, k in enumerate(distinct):
        levels[i] = k
    return levels, np.array([index[k] for k in keys], dtype=np.int64)


def rows_as_codes(
    z: np.ndarray, levels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Map each row of ``z`` to the index of its distinct value (-1 when unseen)."""
    rows = z.reshape(len(z), -1)
    if levels is None:
        return unique_rows(rows)
    if (rows.shape[1] == 1 and levels.shape[1] == 1 and rows.dtype.kind in "biuf"
            and levels.dtype.kind in "biuf" and len(levels)
            and bool(np.all(levels[1:, 0] > levels[:-1, 0]))):
        # One numeric column and sorted levels (unique_rows sorts them): a binary search
        # per row instead of a dict lookup (the same codes, ~50x faster).
        col, lv = rows[:, 0], levels[:, 0]
        idx = np.minimum(np.searchsorted(lv, col), len(lv) - 1)
        return levels, np.where(lv[idx] == col, idx, -1).astype(np.int64)
    lookup = {tuple(r): i for i, r in enumerate(levels.tolist())}
    codes = np.array([lookup.get(tuple(r), -1) for r in rows.tolist()], dtype=np.int64)
    return levels, codes


class ConditionalDensity:
    """Base class: a conditional density ``p(z | y)`` with the protocol of the module.

    Subclasses implement ``fit`` and either ``log_prob`` or ``log_prob_grid``.
    """

    #: whether the estimator needs a discrete cause (one model per class)
    requires_discrete_cause: bool = False
    #: whether the estimator needs a continuous cause
    requires_continuous_cause: bool = False

    def fit(self, z: np.ndarray, y: np.ndarray) -> ConditionalDensity:  # pragma: no cover
        raise NotImplementedError

    def log_prob(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``log p(z_i | y_i)`` for each row, shape (m,)."""
        y = np.asarray(y)
        out = np.empty(len(z))
        for value in np.unique(y):
            rows = y == value
            out[rows] = self.log_prob_grid(z[rows], np.asarray([value]))[:, 0]
        return out

    def log_prob_grid(self, z: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``log p(z_i | y = values_j)``, shape (m, J)."""
        z = np.asarray(z)
        cols = [self.log_prob(z, np.full(len(z), v)) for v in np.asarray(values)]
        return np.stack(cols, axis=1)

    def __repr__(self) -> str:
        params = {k: v for k, v in vars(self).items() if not k.endswith("_")}
        inner = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return f"{type(self).__name__}({inner})"


class _PerClassDensity(ConditionalDensity):
    """A density of ``z`` fitted separately for every class of a discrete cause."""

    requires_discrete_cause = True

    def _fit_one(self, z: np.ndarray) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score_one(self, model: Any, z: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _prepare(self, z: np.ndarray) -> None:
        """Hook for state shared by all classes (bin edges, levels)."""

    def fit(self, z: np.ndarray, y: np.ndarray) -> _PerClassDensity:
        z = np.asarray(z)
        y = np.asarray(y)
        self._prepare(z)
        self.classes_ = np.unique(y)
        self.models_ = {}
        for c in self.classes_.tolist():
            self.models_[c] = self._fit_one(z[y == c])
        return self

    def log_prob_grid(self, z: np.ndarray, values: np.ndarray) -> np.ndarray:
        cols = []
        for v in np.asarray(values).tolist():
            if v not in self.models_:
                raise _no_support(v, self.classes_)
            cols.append(self._score_one(self.models_[v], np.asarray(z)))
        return np.stack(cols, axis=1)


class DiscreteDensity(_PerClassDensity):
    """Additively smoothed counts ``(count(z, y) + alpha) / (count(y) + alpha · L)``.

    Parameters
    ----------
    alpha : float, default=1.0
        Pseudo-count added to every level of ``z`` (Laplace smoothing); ``alpha=0`` gives
        the raw empirical frequencies.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def _check_alpha(self) -> None:
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0; got {self.alpha!r}.")

    def _prepare(self, z: np.ndarray) -> None:
        self._check_alpha()
        self.levels_, _ = rows_as_codes(z)

    def _fit_one(self, z: np.ndarray) -> np.ndarray:
        _, codes = rows_as_codes(z, self.levels_)
        return self._log_frequencies(np.bincount(codes, minlength=len(self.levels_)))

    def _log_frequencies(self, counts: np.ndarray) -> np.ndarray:
        counts = np.asarray(counts, dtype=float) + self.alpha
        with np.errstate(divide="ignore"):
            return np.log(counts) - math.log(counts.sum())

    def fit_counts(
        self, levels: np.ndarray, counts: dict[Any, np.ndarray]
    ) -> DiscreteDensity:
        """Fit from counts instead of rows (the out-of-core fit sums them over chunks).

        Parameters
        ----------
        levels : ndarray of shape (L, d_z)
            The distinct mechanism rows, in the order of :func:`unique_rows`.
        counts : dict
            ``{class of y: counts of shape (L,)}``, the rows of each level in that class.

        Returns
        -------
        self
        """
        self._check_alpha()
        self.levels_ = np.asarray(levels)
        self.classes_ = np.asarray(sorted(counts))
        self.models_ = {c: self._log_frequencies(counts[c]) for c in self.classes_.tolist()}
        return self

    def _score_one(self, model: np.ndarray, z: np.ndarray) -> np.ndarray:
        _, codes = rows_as_codes(z, self.levels_)
        out = np.full(len(codes), -np.inf)
        seen = codes >= 0
        out[seen] = model[codes[seen]]
        return out


class GaussianDensity(ConditionalDensity):
    """Gaussian ``p(z | y)``: one Gaussian per class (discrete ``y``), or the conditional of a
    joint Gaussian over ``(y, z)`` (continuous ``y``), which is the reference experiments'
    choice for the linear-Gaussian regression.

    Parameters
    ----------
    discrete_cause : bool, default=True
        Whether ``y`` is discrete (set by :func:`make_density`).
    reg : float, default=1e-9
        Added to the covariance diagonal (relative to its scale) for numerical safety.
    """

    def __init__(self, discrete_cause: bool = True, reg: float = 1e-9) -> None:
        self.discrete_cause = discrete_cause
        self.reg = reg

    @staticmethod
    def _gauss_logpdf(z: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
        d = z.shape[1]
        chol = np.linalg.cholesky(cov)
        diff = np.linalg.solve(chol, (z - mean).T)  # (d, m)
        maha = (diff * diff).sum(0)
        return -0.5 * (d * math.log(2 * math.pi) + maha) - np.log(np.diag(chol)).sum()

    def _regularised(self, cov: np.ndarray) -> np.ndarray:
        cov = np.atleast_2d(cov)
        return cov + self.reg * max(float(np.trace(cov)) / len(cov), 1e-300) * np.eye(len(cov))

    def fit(self, z: np.ndarray, y: np.ndarray) -> GaussianDensity:
        z = np.asarray(z, dtype=float)
        y = np.asarray(y)
        if self.discrete_cause:
            moments = {}
            for c in np.unique(y).tolist():
                zc = z[y == c]
                moments[c] = (len(zc), zc.mean(0) if len(zc) else None,
                              np.cov(zc, rowvar=False, bias=True) if len(zc) >= 2 else None)
            return self.fit_moments(moments)
        joint = np.column_stack([np.asarray(y, dtype=float), z])
        return self.fit_moments((len(joint), joint.mean(0),
                                 np.cov(joint, rowvar=False, bias=True)))

    def fit_moments(self, moments: Any) -> GaussianDensity:
        """Fit from moments instead of rows (the out-of-core fit sums them over chunks).

        Parameters
        ----------
        moments : dict or tuple
            Discrete cause: ``{class of y: (rows, mean (d_z,), covariance (d_z, d_z))}``;
            continuous cause: ``(rows, mean, covariance)`` of the joint ``(y, z)``. The
            covariances are the biased (divide-by-rows) ones.

        Returns
        -------
        self
        """
        if self.discrete_cause:
            self.classes_ = np.asarray(sorted(moments))
            self.params_ = {}
            for c in self.classes_.tolist():
                count, mean, cov = moments[c]
                if count < 2:
                    raise PositivityError(
                        f"class y == {c!r} has {count} row(s); a Gaussian density of the "
                        "mechanism needs at least 2. Use density='discrete' or 'kde', or "
                        "drop that class."
                    )
                self.params_[c] = (np.asarray(mean), self._regularised(cov))
        else:
            _, mean, cov = moments
            cov = self._regularised(cov)
            syy, szy, szz = cov[0, 0], cov[1:, 0], cov[1:, 1:]
            self.mean_y_, self.mean_z_ = mean[0], mean[1:]
            self.slope_ = szy / syy
            self.cond_cov_ = szz - np.outer(szy, szy) / syy
        return self

    def log_prob_grid(self, z: np.ndarray, values: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        cols = []
        for v in np.asarray(values).tolist():
            if self.discrete_cause:
                if v not in self.params_:
                    raise _no_support(v, self.classes_)
                mean, cov = self.params_[v]
            else:
                mean = self.mean_z_ + self.slope_ * (float(v) - self.mean_y_)
                cov = self.cond_cov_
            cols.append(self._gauss_logpdf(z, mean, cov))
        return np.stack(cols, axis=1)

    def log_prob(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.discrete_cause:
            return super().log_prob(z, y)
        z = np.asarray(z, dtype=float)
        mean = self.mean_z_ + np.outer(np.asarray(y, dtype=float) - self.mean_y_, self.slope_)
        chol = np.linalg.cholesky(self.cond_cov_)
        diff = np.linalg.solve(chol, (z - mean).T)
        d = z.shape[1]
        return (
            -0.5 * (d * math.log(2 * math.pi) + (diff * diff).sum(0)) - np.log(np.diag(chol)).sum()
        )


#: Reference points of an exact KDE with ``max_points="auto"``.
EXACT_MAX_POINTS = 5000


class KernelDensityEstimate(ConditionalDensity):
    """Gaussian kernel density estimate of ``p(z | y)``.

    For a discrete cause, one KDE of ``z`` per class; for a continuous cause,
    ``p(z | y) = p̂(y, z) / p̂(y)`` from a joint KDE and the marginal KDE that shares its
    kernel in ``y`` (a kernel-weighted conditional density, integrating to one over ``z``).
    Every dimension is standardised first, then Scott's rule ``m^(-1/(d+4))`` sets the
    bandwidth, ``m`` being the number of reference points.

    Parameters
    ----------
    discrete_cause : bool, default=True
    bandwidth : float or None, default=None
        Bandwidth on the standardised scale; ``None`` means Scott's rule.
    max_points : int, None or "auto", default="auto"
        At most this many reference points per KDE (evenly spaced rows), which bounds the
        exact sum's cost at ``n × max_points`` kernel evaluations; ``None`` uses every row.
        ``"auto"``: every row where the KDE is binned (its cost is then ``O(n)``), else
        :data:`EXACT_MAX_POINTS`. A cap matters beyond its cost: rows outside the span of
        the reference points sit in a single kernel's tail, where the ratio of two classes'
        densities explodes (binary cause, ``n = 1e5``: Kish ESS 1 at the 5 000-point cap,
        26 000 with every row, 25 000 for the true densities).
    method : {"auto", "exact", "binned"}, default="auto"
        How the kernel sums are evaluated (:mod:`causal_mixtures.weights.kde`): ``"exact"``
        sums every kernel; ``"binned"`` bins the points on a grid, convolves by FFT and
        interpolates ``log p`` (one or two dimensions; ``|Δ log p| ≤``
        :data:`~causal_mixtures.weights.kde.TOLERANCE` against the exact sum, the tails
        exact); ``"auto"`` bins wherever a grid fine enough for that bound fits (a KDE of at
        most two dimensions: for a discrete cause a mechanism of one or two columns, for a
        continuous cause a one-column mechanism), else sums exactly.
    """

    def __init__(
        self,
        discrete_cause: bool = True,
        bandwidth: float | None = None,
        max_points: int | str | None = "auto",
        method: str = "auto",
    ) -> None:
        self.discrete_cause = discrete_cause
        self.bandwidth = bandwidth
        self.max_points = max_points
        self.method = method

    def _kde(
        self, a: np.ndarray, bandwidth: float | None = None, cap: Any = "unset"
    ) -> ExactKDE | BinnedKDE:
        """The KDE of rows ``a``; ``cap`` forces the reference-point cap (the marginal of a
        continuous cause must use the joint's points)."""
        if self.method not in ("auto", "exact", "binned"):
            raise ValueError(
                f"method must be 'auto', 'exact' or 'binned'; got {self.method!r}. Use 'auto'."
            )
        mp = self.max_points
        if not (mp is None or mp == "auto" or (isinstance(mp, numbers.Integral) and mp >= 2)):
            raise ValueError(
                f"max_points must be an integer >= 2, None or 'auto'; got {mp!r}. Use 'auto'."
            )
        bandwidth = bandwidth or self.bandwidth
        if cap == "unset" and mp == "auto":
            if self.method != "exact":
                exact = ExactKDE(a, bandwidth, None)
                if self.method == "binned" or binned_feasible(exact.points, exact.bandwidth):
                    return BinnedKDE(exact)
            cap = EXACT_MAX_POINTS
        elif cap == "unset":
            cap = mp
        exact = ExactKDE(a, bandwidth, cap)
        if self.method == "binned" or (
            self.method == "auto" and binned_feasible(exact.points, exact.bandwidth)
        ):
            return BinnedKDE(exact)
        return exact

    def set_models(
        self, models: dict[Any, BinnedKDE] | None = None, *, joint: BinnedKDE | None = None,
        marginal: BinnedKDE | None = None,
    ) -> KernelDensityEstimate:
        """KDEs built elsewhere (the out-of-core fit sums their binned grids over chunks,
        :mod:`causal_mixtures.weights.streamed`): ``models`` ``{class of y: BinnedKDE}``
        for a discrete cause, ``joint`` (of ``(y, z)``) and ``marginal`` (of ``y``, with
        the joint's kernel) for a continuous one. Returns ``self``."""
        if models is not None:
            self.classes_ = np.asarray(sorted(models))
            self.models_ = dict(models)
        else:
            self.joint_, self.marginal_ = joint, marginal
        return self

    @staticmethod
    def _exact(model: ExactKDE | BinnedKDE) -> ExactKDE:
        return model.exact if isinstance(model, BinnedKDE) else model

    @staticmethod
    def _score(model: ExactKDE | BinnedKDE, a: np.ndarray) -> np.ndarray:
        return model.score(a)

    def fit(self, z: np.ndarray, y: np.ndarray) -> KernelDensityEstimate:
        z = np.asarray(z, dtype=float)
        y = np.asarray(y)
        if self.discrete_cause:
            self.classes_ = np.unique(y)
            self.models_ = {c: self._kde(z[y == c]) for c in self.classes_.tolist()}
        else:
            yf = np.asarray(y, dtype=float).reshape(-1, 1)
            self.joint_ = self._kde(np.column_stack([yf, z]))
            # The marginal uses the joint's kernel in y (same points, bandwidth and scaling),
            # so the ratio is an exact conditional density: it integrates to one over z.
            joint = self._exact(self.joint_)
            self.marginal_ = self._kde(yf, joint.bandwidth, cap=len(joint.points))
        return self

    def log_prob_grid(self, z: np.ndarray, values: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        cols = []
        for v in np.asarray(values).tolist():
            if self.discrete_cause:
                if v not in self.models_:
                    raise _no_support(v, self.classes_)
                cols.append(self._score(self.models_[v], z))
            else:
                yv = np.full((len(z), 1), float(v))
                joint = self._score(self.joint_, np.column_stack([yv, z]))
                cols.append(joint - self._score(self.marginal_, yv[:1])[0])
        return np.stack(cols, axis=1)

    def log_prob(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.discrete_cause:
            return super().log_prob(z, y)
        z = np.asarray(z, dtype=float)
        yf = np.asarray(y, dtype=float).reshape(-1, 1)
        return self._score(self.joint_, np.column_stack([yf, z])) - self._score(self.marginal_, yf)


class HistogramDensity(_PerClassDensity):
    """1-D histogram of ``z`` per class on bin edges shared by all classes (the reference
    implementation's estimator, 10 bins).

    Parameters
    ----------
    bins : int, default=10
    alpha : float, default=0.0
        Pseudo-count per bin; with 0 an empty bin has zero density.
    """

    def __init__(self, bins: int = 10, alpha: float = 0.0) -> None:
        self.bins = bins
        self.alpha = alpha

    def _prepare(self, z: np.ndarray) -> None:
        if z.ndim != 2 or z.shape[1] != 1:
            raise ValueError(
                f"density='histogram' supports a 1-D mechanism only; got mechanism with "
                f"shape {z.shape}. Use density='kde' or 'gaussian' for a multivariate one."
            )
        bins = self.bins
        if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 1:
            raise ValueError(
                f"HistogramDensity(bins=...) must be an int >= 1; got {bins!r}. Try bins=10."
            )
        self.edges_ = np.histogram_bin_edges(z[:, 0], bins=int(bins))

    def _fit_one(self, z: np.ndarray) -> np.ndarray:
        counts, _ = np.histogram(z[:, 0], bins=self.edges_)
        counts = counts.astype(float) + self.alpha
        with np.errstate(divide="ignore"):
            return np.log(counts) - math.log(counts.sum()) - np.log(np.diff(self.edges_))

    def _score_one(self, model: np.ndarray, z: np.ndarray) -> np.ndarray:
        x = z[:, 0]
        idx = np.clip(np.searchsorted(self.edges_, x, side="right") - 1, 0, len(model) - 1)
        inside = (x >= self.edges_[0]) & (x <= self.edges_[-1])
        return np.where(inside, model[idx], -np.inf)


class GaussianMixtureDensity(_PerClassDensity):
    """A :class:`~sklearn.mixture.GaussianMixture` of ``z`` per class.

    Parameters
    ----------
    n_components : int, default=3
    random_state : int, default=0
        Seed of the mixture initialisation (the fit is deterministic given it).
    """

    def __init__(self, n_components: int = 3, random_state: int = 0) -> None:
        self.n_components = n_components
        self.random_state = random_state

    def _fit_one(self, z: np.ndarray) -> GaussianMixture:
        k = min(self.n_components, len(z))
        return GaussianMixture(k, random_state=self.random_state).fit(z)

    def _score_one(self, model: GaussianMixture, z: np.ndarray) -> np.ndarray:
        return model.score_samples(z)


class ConditionalMixtureDensity(ConditionalDensity):
    """``p(z | y)`` from a Gaussian mixture with K chosen by BIC: the conditional of a joint
    mixture over ``(y, z)`` for a continuous cause
    (:class:`~causal_mixtures.weights.conditional.ConditionalGaussianMixture`), one mixture of
    ``z`` per class for a discrete one. It follows a nonlinear ``E[z | y]`` and a
    heteroscedastic or multimodal ``z`` where the joint Gaussian cannot.

    Parameters
    ----------
    discrete_cause : bool, default=False
    n_components : int or "auto", default="auto"
        Components of each mixture; ``"auto"`` chooses K by BIC.
    random_state : int, default=0
        Seed of the mixtures' initialisation.
    """

    def __init__(
        self, discrete_cause: bool = False, n_components: int | str = "auto", random_state: int = 0
    ) -> None:
        self.discrete_cause = discrete_cause
        self.n_components = n_components
        self.random_state = random_state

    def _cgm(self) -> ConditionalGaussianMixture:
        return ConditionalGaussianMixture(self.n_components, random_state=self.random_state)

    def fit(self, z: np.ndarray, y: np.ndarray) -> ConditionalMixtureDensity:
        z = np.asarray(z, dtype=float).reshape(len(z), -1)
        y = np.asarray(y)
        if self.discrete_cause:
            self.classes_ = np.unique(y)
            self.models_ = {
                c: self._cgm().fit(np.empty((int((y == c).sum()), 0)), z[y == c])
                for c in self.classes_.tolist()
            }
        else:
            self.model_ = self._cgm().fit(np.asarray(y, dtype=float).reshape(-1, 1), z)
        return self

    def log_prob_grid(self, z: np.ndarray, values: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float).reshape(len(z), -1)
        cols = []
        for v in np.asarray(values).tolist():
            if self.discrete_cause:
                if v not in self.models_:
                    raise _no_support(v, self.classes_)
                cols.append(self.models_[v].log_prob(z, np.empty((len(z), 0))))
            else:
                cols.append(self.model_.log_prob(z, np.full((len(z), 1), float(v))))
        return np.stack(cols, axis=1)

    def log_prob(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.discrete_cause:
            return super().log_prob(z, y)
        z = np.asarray(z, dtype=float).reshape(len(z), -1)
        return self.model_.log_prob(z, np.asarray(y, dtype=float).reshape(-1, 1))


class LogisticDensity(ConditionalDensity):
    """``p(z | y)`` for a discrete mechanism and a continuous cause: multinomial logistic
    regression of the level of ``z`` on ``y``.

    Parameters
    ----------
    C : float, default=1e4
        Inverse regularisation strength (weak by default).
    """

    requires_continuous_cause = True

    def __init__(self, C: float = 1e4) -> None:
        self.C = C

    def fit(self, z: np.ndarray, y: np.ndarray) -> LogisticDensity:
        self.levels_, codes = rows_as_codes(np.asarray(z))
        if len(self.levels_) < 2:
            raise ValueError("mechanism takes a single value; it cannot carry any effect of y.")
        self.model_ = LogisticRegression(C=self.C, max_iter=1000).fit(
            np.asarray(y, dtype=float).reshape(-1, 1), codes
        )
        return self

    def log_prob(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        _, codes = rows_as_codes(np.asarray(z), self.levels_)
        logp = self.model_.predict_log_proba(np.asarray(y, dtype=float).reshape(-1, 1))
        out = np.full(len(codes), -np.inf)
        seen = codes >= 0
        out[seen] = logp[np.flatnonzero(seen), codes[seen]]
        return out


def _factory(name: str, discrete_cause: bool) -> ConditionalDensity:
    factories = {
        "discrete": DiscreteDensity,
        "gaussian": lambda: GaussianDensity(discrete_cause=discrete_cause),
        "kde": lambda: KernelDensityEstimate(discrete_cause=discrete_cause),
        "histogram": HistogramDensity,
        "gmm": GaussianMixtureDensity,
        "logistic": LogisticDensity,
        "mixture": lambda: ConditionalMixtureDensity(discrete_cause=discrete_cause),
    }
    return factories[name]()


def make_density(
    density: str | ConditionalDensity, z: np.ndarray, *, discrete_cause: bool
) -> ConditionalDensity:
    """Resolve the ``density`` argument to an unfitted :class:`ConditionalDensity`.

    ``"auto"`` is resolved here without looking at the data beyond ``z``'s type (a discrete
    mechanism: "discrete" for a discrete cause, "logistic" for a continuous one; a continuous
    mechanism: "kde" / "gaussian"); :func:`causal_mixtures.weights.selection.resolve_density`
    chooses a continuous mechanism's density by held-out likelihood instead.

    Parameters
    ----------
    density : str or ConditionalDensity
        One of :data:`DENSITIES` or an instance (used as is, after a compatibility check).
    z : ndarray of shape (n, d_z)
        The mechanism (only its type and shape are looked at).
    discrete_cause : bool
        Whether the cause ``y`` is discrete.
    """
    if isinstance(density, ConditionalDensity):
        est = density
    elif not isinstance(density, str) or density not in DENSITIES:
        raise ValueError(
            f"density must be one of {list(DENSITIES)} or a ConditionalDensity instance; got "
            f"{density!r}."
        )
    else:
        name = density
        if name == "auto":
            if is_discrete(z):
                name = "discrete" if discrete_cause else "logistic"
            else:
                name = "kde" if discrete_cause else "gaussian"
        est = make_named(name, discrete_cause)
    check_cause_type(est, discrete_cause)
    return est


def make_named(name: str, discrete_cause: bool) -> ConditionalDensity:
    """A fresh estimator of the :data:`DENSITIES` name ``name`` (not ``"auto"``)."""
    return _factory(name, discrete_cause)


def check_cause_type(est: ConditionalDensity, discrete_cause: bool) -> None:
    """Refuse an estimator that cannot model this type of cause."""
    if discrete_cause and est.requires_continuous_cause:
        raise ValueError(
            f"density={type(est).__name__} needs a continuous cause but y is discrete. "
            "Use density='discrete' (discrete mechanism) or 'kde'."
        )
    if not discrete_cause and est.requires_discrete_cause:
        raise ValueError(
            f"density={type(est).__name__} fits one model per class and needs a discrete "
            "cause, but y is continuous. Use density='gaussian', 'mixture', 'kde' or 'logistic'."
        )
