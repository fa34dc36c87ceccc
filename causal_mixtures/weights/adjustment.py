"""Covariate-adjusted causal weights: the back-door and the conditional front-door estimands.

Details: ``docs/weights.md``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KernelDensity

from causal_mixtures._validation import check_finite
from causal_mixtures.exceptions import PositivityError
from causal_mixtures.weights.conditional import CellConditional
from causal_mixtures.weights.density import (
    ConditionalDensity,
    DiscreteDensity,
    GaussianMixtureDensity,
    HistogramDensity,
    is_discrete,
    rows_as_codes,
)
from causal_mixtures.weights.selection import heldout_choice

__all__ = [
    "ADJUSTED_DENSITIES",
    "AdjustmentDensity",
    "CellDensity",
    "ConditioningSet",
    "KernelRatioDensity",
    "LinearGaussianDensity",
    "MixtureRegressionDensity",
    "MultinomialLogitDensity",
    "adjusted_log_weights",
    "kernel_bandwidth",
]

#: The ``density=`` names understood for covariate-adjusted estimands.
ADJUSTED_DENSITIES = ("auto", "discrete", "logistic", "gaussian", "kde", "histogram", "gmm")
#: ``density="auto"`` for a continuous ``v``: candidates in order of preference ("mixture" is
#: :class:`MixtureRegressionDensity`, otherwise passed as an instance), and the rows they
#: are fitted and scored on (scikit-learn's tree KDE is slow to score).
ADJUSTED_AUTO_CANDIDATES = ("gaussian", "mixture", "kde")
ADJUSTED_AUTO_ROWS = (5_000, 2_000)

_LOG_2PI = math.log(2.0 * math.pi)


# --- Conditioning variables

@dataclass(frozen=True)
class ConditioningSet:
    """The variables a conditional density is conditioned on, one 1-D column each.

    Parameters
    ----------
    columns : tuple of ndarray of shape (n,)
        The values (numeric or categorical).
    discrete : tuple of bool
        Whether each column is treated as discrete.
    names : tuple of str
        Names used in messages (the graph's node names).
    """

    columns: tuple[np.ndarray, ...]
    discrete: tuple[bool, ...]
    names: tuple[str, ...]

    @property
    def all_discrete(self) -> bool:
        """Whether every column is discrete (true for an empty set)."""
        return all(self.discrete)

    def rows(self, index: np.ndarray) -> ConditioningSet:
        """The rows ``index`` of every column."""
        return ConditioningSet(tuple(c[index] for c in self.columns), self.discrete, self.names)

    def subset(self, which: Sequence[int]) -> ConditioningSet:
        """The columns at the positions ``which``."""
        return ConditioningSet(
            tuple(self.columns[i] for i in which),
            tuple(self.discrete[i] for i in which),
            tuple(self.names[i] for i in which),
        )

    def replace(self, index: int, value: Any) -> ConditioningSet:
        """A copy with column ``index`` set to ``value`` in every row."""
        col = self.columns[index]
        new = np.full(len(col), value, dtype=np.result_type(col, np.asarray(value)))
        columns = list(self.columns)
        columns[index] = new
        return ConditioningSet(tuple(columns), self.discrete, self.names)


def _describe(names: Sequence[str], values: Sequence[Any]) -> str:
    return ", ".join(f"{n} = {v!r}" for n, v in zip(names, values, strict=True))


class _CellCoder:
    """Map each row of the (discrete) conditioning variables to the index of its cell."""

    def fit(self, given: ConditioningSet) -> _CellCoder:
        self.names_ = given.names
        if not given.columns:
            self.cells_: list[tuple[Any, ...]] = [()]
            self.lookup_: dict[tuple[Any, ...], int] = {(): 0}
            return self
        keys = list(zip(*(c.tolist() for c in given.columns), strict=True))
        self.cells_ = sorted(set(keys), key=repr)
        self.lookup_ = {cell: i for i, cell in enumerate(self.cells_)}
        return self

    def transform(self, given: ConditioningSet, n: int) -> np.ndarray:
        """Cell index of every row; ``-1`` for a combination not seen when fitting."""
        if not given.columns:
            return np.zeros(n, dtype=np.int64)
        keys = zip(*(c.tolist() for c in given.columns), strict=True)
        return np.fromiter((self.lookup_.get(k, -1) for k in keys), dtype=np.int64, count=n)

    def check_seen(self, given: ConditioningSet, ids: np.ndarray, what: str) -> None:
        unseen = np.flatnonzero(ids < 0)
        if len(unseen):
            row = int(unseen[0])
            values = [c[row : row + 1].tolist()[0] for c in given.columns]
            raise PositivityError(
                f"no training row has {_describe(given.names, values)}, so {what} cannot be "
                f"estimated there ({len(unseen)} row(s) need such a combination, e.g. row "
                f"{row}). The cause must be possible in every stratum of the covariates "
                "(positivity): merge rare covariate levels, drop those rows or that "
                "intervention value."
            )


class _Features:
    """Numeric features of a conditioning set: one-hot (first level dropped) for discrete
    columns, standardised values for continuous ones."""

    def fit(self, given: ConditioningSet) -> _Features:
        self.names_ = given.names
        self.discrete_ = given.discrete
        self.levels_: list[np.ndarray | None] = []
        self.loc_: list[float] = []
        self.scale_: list[float] = []
        for col, disc in zip(given.columns, given.discrete, strict=True):
            if disc:
                self.levels_.append(np.unique(col))
                self.loc_.append(0.0)
                self.scale_.append(1.0)
            else:
                vals = np.asarray(col, dtype=float)
                sd = float(vals.std())
                self.levels_.append(None)
                self.loc_.append(float(vals.mean()))
                self.scale_.append(sd if sd > 0 else 1.0)
        return self

    def transform(self, given: ConditioningSet, n: int) -> np.ndarray:
        blocks = [np.empty((n, 0))]
        for k, col in enumerate(given.columns):
            levels = self.levels_[k]
            if levels is None:
                vals = np.asarray(col, dtype=float)
                blocks.append(((vals - self.loc_[k]) / self.scale_[k]).reshape(-1, 1))
                continue
            idx = np.searchsorted(levels, col)
            ok = (idx < len(levels)) & (levels[np.minimum(idx, len(levels) - 1)] == col)
            if not ok.all():
                row = int(np.flatnonzero(~ok)[0])
                raise PositivityError(
                    f"{self.names_[k]} = {col[row : row + 1].tolist()[0]!r} was never observed (observed values: "
                    f"{levels.tolist()[:10]}): its conditional density cannot be estimated. "
                    "Remove that value (from do=, or those rows)."
                )
            blocks.append((idx[:, None] == np.arange(1, len(levels))[None, :]).astype(float))
        return np.concatenate(blocks, axis=1)


# --- Conditional density estimators p(v | conditioning set)

class AdjustmentDensity:
    """Base class of the conditional densities ``p(v | c)`` of covariate-adjusted weights.

    ``fit(v, given)`` with ``v`` of shape (n, d_v) and ``given`` a :class:`ConditioningSet`
    of ``n`` rows; ``log_prob(v, given)`` -> (m,): ``log p(v_i | c_i)`` row by row.
    """

    #: set by :func:`adjusted_log_weights` for a continuous back-door cause
    kernel_bandwidth_: float | None = None

    def fit(self, v: np.ndarray, given: ConditioningSet) -> AdjustmentDensity:  # pragma: no cover
        raise NotImplementedError

    def log_prob(self, v: np.ndarray, given: ConditioningSet) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        params = {k: v for k, v in vars(self).items() if not k.endswith("_")}
        inner = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return f"{type(self).__name__}({inner})"


class CellDensity(AdjustmentDensity):
    """One :class:`~causal_mixtures.density.ConditionalDensity` per cell of discrete
    conditioning variables: ``p(v | c) = base(v | cell(c))``.

    Parameters
    ----------
    base : ConditionalDensity
        A per-class estimator (e.g. ``DiscreteDensity(alpha=0)``); it is copied.
    """

    def __init__(self, base: ConditionalDensity) -> None:
        self.base = base

    def fit(self, v: np.ndarray, given: ConditioningSet) -> CellDensity:
        if not given.all_discrete:
            cont = [n for n, d in zip(given.names, given.discrete, strict=True) if not d]
            raise ValueError(
                f"{type(self.base).__name__} models one distribution per cell of discrete "
                f"conditioning variables, but {', '.join(cont)} is continuous. Use "
                "density='gaussian', 'kde' or 'logistic'."
            )
        if self.base.requires_continuous_cause:
            raise ValueError(
                f"{type(self.base).__name__} needs a continuous cause; it cannot be fitted per "
                "cell of discrete covariates. Use density='discrete' or 'logistic'."
            )
        n = len(v)
        self.coder_ = _CellCoder().fit(given)
        ids = self.coder_.transform(given, n)
        self.base_ = copy.deepcopy(self.base).fit(v, ids)
        return self

    def log_prob(self, v: np.ndarray, given: ConditioningSet) -> np.ndarray:
        ids = self.coder_.transform(given, len(v))
        self.coder_.check_seen(given, ids, "the conditional density")
        return np.asarray(self.base_.log_prob(v, ids), dtype=float)


class LinearGaussianDensity(AdjustmentDensity):
    """Linear-Gaussian regression ``v | c ~ N(a + B φ(c), Σ)`` (least squares, maximum
    likelihood residual covariance); ``φ`` one-hot codes discrete conditioning variables.

    Parameters
    ----------
    reg : float, default=1e-9
        Added to the residual covariance diagonal, relative to its mean variance.
    """

    def __init__(self, reg: float = 1e-9) -> None:
        self.reg = reg

    def fit(self, v: np.ndarray, given: ConditioningSet) -> LinearGaussianDensity:
        v = np.asarray(v, dtype=float)
        self.features_ = _Features().fit(given)
        design = self._design(given, len(v))
        self.coef_ = np.linalg.lstsq(design, v, rcond=None)[0]
        resid = v - design @ self.coef_
        cov = resid.T @ resid / len(v)
        d = cov.shape[0]
        cov = cov + self.reg * max(float(np.trace(cov)) / d, 1e-300) * np.eye(d)
        self.cholesky_ = np.linalg.cholesky(cov)
        return self

    def _design(self, given: ConditioningSet, n: int) -> np.ndarray:
        return np.column_stack([np.ones(n), self.features_.transform(given, n)])

    def log_prob(self, v: np.ndarray, given: ConditioningSet) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        mean = self._design(given, len(v)) @ self.coef_
        diff = np.linalg.solve(self.cholesky_, (v - mean).T)
        d = v.shape[1]
        return -0.5 * (d * _LOG_2PI + (diff * diff).sum(0)) - np.log(np.diag(self.cholesky_)).sum()


class KernelRatioDensity(AdjustmentDensity):
    """Gaussian-kernel conditional density: within each cell of the discrete conditioning
    variables, ``p̂(g, v) / p̂(g)`` with ``g`` the continuous conditioning variables.

    Every dimension is standardised on all rows; the bandwidth (on that scale) is Scott's
    ``n_cell^(-1/(d + 4))`` with ``d`` the dimension of ``(g, v)``, shared by numerator and
    denominator so that the ratio integrates to one over ``v``.

    Parameters
    ----------
    bandwidth : float or None, default=None
        Bandwidth on the standardised scale; ``None`` means Scott's rule.
    """

    def __init__(self, bandwidth: float | None = None) -> None:
        self.bandwidth = bandwidth

    def fit(self, v: np.ndarray, given: ConditioningSet) -> KernelRatioDensity:
        v = np.asarray(v, dtype=float)
        n = len(v)
        self.discrete_idx_ = [i for i, d in enumerate(given.discrete) if d]
        self.continuous_idx_ = [i for i, d in enumerate(given.discrete) if not d]
        self.coder_ = _CellCoder().fit(given.subset(self.discrete_idx_))
        ids = self.coder_.transform(given.subset(self.discrete_idx_), n)
        a = self._stack(v, given)
        self.loc_ = a.mean(0)
        scale = a.std(0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        a = (a - self.loc_) / self.scale_
        k = len(self.continuous_idx_)
        self.models_: list[tuple[KernelDensity, KernelDensity | None]] = []
        for cell in range(len(self.coder_.cells_)):
            rows = a[ids == cell]
            bw = self.bandwidth or float(len(rows)) ** (-1.0 / (a.shape[1] + 4))
            joint = KernelDensity(bandwidth=bw).fit(rows)
            marginal = KernelDensity(bandwidth=bw).fit(rows[:, :k]) if k else None
            self.models_.append((joint, marginal))
        return self

    def _stack(self, v: np.ndarray, given: ConditioningSet) -> np.ndarray:
        cols = [np.asarray(given.columns[i], dtype=float) for i in self.continuous_idx_]
        return np.column_stack([*cols, v]) if cols else v

    def log_prob(self, v: np.ndarray, given: ConditioningSet) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        sub = given.subset(self.discrete_idx_)
        ids = self.coder_.transform(sub, len(v))
        self.coder_.check_seen(sub, ids, "the conditional density")
        a = (self._stack(v, given) - self.loc_) / self.scale_
        k = len(self.continuous_idx_)
        out = np.empty(len(v))
        for cell in np.unique(ids).tolist():
            rows = ids == cell
            joint, marginal = self.models_[cell]
            out[rows] = joint.score_samples(a[rows])
            if marginal is not None:
                out[rows] -= marginal.score_samples(a[rows, :k])
        return out - np.log(self.scale_[k:]).sum()


class MixtureRegressionDensity(AdjustmentDensity):
    """Per cell of the discrete conditioning variables, the conditional of a Gaussian
    mixture over ``(g, v)``, ``g`` the continuous ones (K by BIC; a
    :class:`~causal_mixtures.weights.conditional.CellConditional`): it follows a nonlinear
    or heteroscedastic ``v | g`` where the linear-Gaussian regression cannot.

    Parameters
    ----------
    random_state : int, default=0
    """

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def _split(self, given: ConditioningSet, n: int) -> tuple[np.ndarray, np.ndarray]:
        sub = given.subset([i for i, d in enumerate(given.discrete) if d])
        if not hasattr(self, "coder_"):
            self.coder_ = _CellCoder().fit(sub)
        ids = self.coder_.transform(sub, n)
        self.coder_.check_seen(sub, ids, "the conditional density")
        g = [np.asarray(c, dtype=float) for c, d in zip(given.columns, given.discrete, strict=True) if not d]
        return ids.reshape(-1, 1), (np.column_stack(g) if g else np.empty((n, 0)))

    def fit(self, v: np.ndarray, given: ConditioningSet) -> MixtureRegressionDensity:
        self.__dict__.pop("coder_", None)
        ids, g = self._split(given, len(v))
        self.model_ = CellConditional("auto", None, 0.0, self.random_state)
        self.model_.fit(np.asarray(v, dtype=float), ids, g)
        return self

    def log_prob(self, v: np.ndarray, given: ConditioningSet) -> np.ndarray:
        ids, g = self._split(given, len(v))
        return self.model_.log_prob(np.asarray(v, dtype=float), ids, g, lambda r: f"cell {r}")


class MultinomialLogitDensity(AdjustmentDensity):
    """Multinomial logistic regression of a discrete ``v`` (its distinct rows are the
    classes) on the conditioning variables (one-hot coded when discrete, standardised when
    continuous). Without conditioning variables, the class frequencies.

    Parameters
    ----------
    C : float, default=1e4
        Inverse regularisation strength (weak by default).
    max_iter : int, default=1000
    """

    def __init__(self, C: float = 1e4, max_iter: int = 1000) -> None:
        self.C = C
        self.max_iter = max_iter

    def fit(self, v: np.ndarray, given: ConditioningSet) -> MultinomialLogitDensity:
        self.levels_, codes = rows_as_codes(np.asarray(v))
        self.features_ = _Features().fit(given)
        feats = self.features_.transform(given, len(v))
        self.model_: LogisticRegression | None = None
        counts = np.bincount(codes, minlength=len(self.levels_)).astype(float)
        self.log_freq_ = np.log(counts) - math.log(counts.sum())
        if len(self.levels_) > 1 and feats.shape[1] > 0:
            self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(feats, codes)
        return self

    def log_prob(self, v: np.ndarray, given: ConditioningSet) -> np.ndarray:
        _, codes = rows_as_codes(np.asarray(v), self.levels_)
        m = len(codes)
        if self.model_ is None:
            logp = np.broadcast_to(self.log_freq_, (m, len(self.levels_)))
        else:
            logp = self.model_.predict_log_proba(self.features_.transform(given, m))
        out = np.full(m, -np.inf)
        seen = codes >= 0
        out[seen] = logp[np.flatnonzero(seen), codes[seen]]
        return out


# --- Input validation

def _as_role_columns(
    name: str, values: Any, n: int, nodes: Sequence[str], kind: str
) -> list[np.ndarray]:
    """Validate the data of one role: ``n`` rows, at least one column per node, no NaN."""
    if values is None:
        role = "covariate" if name == "covariates" else "mechanism"
        raise ValueError(
            f"{name} is required for the {kind.replace('_', '-')} graph: it needs the "
            f"{role} role ({', '.join(nodes)}); pass it as {name}=..."
        )
    arr = np.array(values, copy=True)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n_samples,) or (n_samples, n_columns); got shape {arr.shape}."
        )
    if arr.shape[0] != n:
        raise ValueError(
            f"{name} must have one row per sample: expected {n} rows (as y), got {arr.shape[0]}."
        )
    if arr.shape[1] < len(nodes):
        raise ValueError(
            f"{name} has {arr.shape[1]} column(s) but the graph declares {len(nodes)} "
            f"{'covariate' if name == 'covariates' else 'mechanism'} node(s) "
            f"({', '.join(nodes)}): pass one column per node, in this order."
        )
    if arr.dtype.kind in "fc":
        check_finite(name, arr)
    elif arr.dtype.kind == "O":
        missing = pd.isna(arr)
        if missing.any():
            r, c = np.argwhere(missing)[0]
            raise ValueError(
                f"{name} must not contain missing values; found {int(missing.sum())} (first "
                f"at row {int(r)}, column {int(c)}). Drop or impute those rows before fitting."
            )
    columns = []
    for k in range(arr.shape[1]):
        col = arr[:, k]
        if col.dtype.kind == "O":
            try:
                col = col.astype(np.float64)
            except (TypeError, ValueError):
                pass  # categorical: kept as is
            else:
                check_finite(name, col)
        columns.append(col)
    return columns


def _column_names(name: str, nodes: Sequence[str], n_columns: int) -> tuple[str, ...]:
    """Node names for messages; column positions when a node spans several columns."""
    if n_columns == len(nodes):
        return tuple(nodes)
    return tuple(f"{name}[:, {k}]" for k in range(n_columns))


def kernel_bandwidth(y: np.ndarray) -> float:
    """Scott's rule for a 1-D Gaussian kernel, ``sd(y) · n^(-1/5)``, used by the kernel
    back-door weights of a continuous cause."""
    y = np.asarray(y, dtype=float)
    sd = float(y.std())
    if not sd > 0:
        raise ValueError("y is constant: a continuous cause must vary to define interventions.")
    return sd * len(y) ** (-0.2)


# --- Choosing the estimator

def _make_estimator(
    density: Any, v: np.ndarray, given: ConditioningSet, *, kind: str, what: str
) -> AdjustmentDensity:
    """Resolve ``density`` for ``p(what | given)``; ``kind`` is the estimand's kind."""
    v_discrete = is_discrete(v)
    if isinstance(density, ConditionalDensity):
        if not given.all_discrete:
            cont = [n for n, d in zip(given.names, given.discrete, strict=True) if not d]
            raise ValueError(
                f"a {type(density).__name__} instance is fitted once per cell of discrete "
                f"conditioning variables, but {', '.join(cont)} is continuous. Pass "
                "density='gaussian', 'kde' or 'logistic' instead."
            )
        return CellDensity(density)
    if isinstance(density, AdjustmentDensity):
        return copy.deepcopy(density)
    if not isinstance(density, str) or density not in ADJUSTED_DENSITIES:
        raise ValueError(
            f"density must be one of {list(ADJUSTED_DENSITIES)} or a ConditionalDensity "
            f"instance for the {kind.replace('_', '-')} graph; got {density!r}."
        )
    name = density
    if name == "auto" and not v_discrete:
        return _choose(v, given)
    if name == "auto":
        name = "discrete" if given.all_discrete else "logistic"
    if name in ("discrete", "logistic") and not v_discrete:
        raise ValueError(
            f"density={name!r} models a discrete {what}, but it is continuous. Use "
            "density='gaussian' or 'kde'."
        )
    if name in ("gaussian", "kde") and kind == "back_door" and v_discrete:
        raise ValueError(
            f"density={name!r} models a continuous cause, but y is discrete: the back-door "
            "weights need p(y | w) for a discrete y. Use density='discrete' or 'logistic'."
        )
    if name in ("discrete", "histogram", "gmm"):
        base: ConditionalDensity
        if name == "discrete":
            base = DiscreteDensity(alpha=0.0 if kind == "back_door" else 1.0)
        elif name == "histogram":
            base = HistogramDensity()
        else:
            base = GaussianMixtureDensity()
        if not given.all_discrete:
            cont = [n for n, d in zip(given.names, given.discrete, strict=True) if not d]
            raise ValueError(
                f"density={name!r} fits one model per cell of discrete conditioning variables, "
                f"but {', '.join(cont)} is continuous. Use density="
                + ("'logistic'" if v_discrete else "'gaussian' or 'kde'")
                + "."
            )
        return CellDensity(base)
    return _named(name)


def _named(name: str) -> AdjustmentDensity:
    if name == "logistic":
        return MultinomialLogitDensity()
    if name == "gaussian":
        return LinearGaussianDensity()
    if name == "mixture":
        return MixtureRegressionDensity()
    return KernelRatioDensity()


def _choose(v: np.ndarray, given: ConditioningSet, random_state: int = 0) -> AdjustmentDensity:
    """``density="auto"`` for a continuous ``v``: held-out log-likelihood among
    :data:`ADJUSTED_AUTO_CANDIDATES` (:func:`~causal_mixtures.weights.selection.heldout_choice`),
    recorded as the estimator's ``choice_``."""
    v = np.asarray(v, dtype=float).reshape(len(v), -1)

    def score(name: str, train: np.ndarray, held: np.ndarray) -> np.ndarray:
        est = _named(name).fit(v[train], given.rows(train))
        return est.log_prob(v[held], given.rows(held))

    max_train, max_held = ADJUSTED_AUTO_ROWS
    choice = heldout_choice(
        ADJUSTED_AUTO_CANDIDATES, score, len(v), random_state=random_state,
        max_train=max_train, max_heldout=max_held,
    )
    est = _named(choice.name)
    est.choice_ = choice
    return est


# --- The weights

def adjusted_log_weights(
    estimand: Any,
    y: np.ndarray,
    do_values: np.ndarray,
    *,
    mechanism: Any = None,
    covariates: Any = None,
    density: Any = "auto",
    discrete_cause: bool,
) -> tuple[np.ndarray, np.ndarray, AdjustmentDensity]:
    """Unnormalised log causal weights of a back-door or conditional front-door estimand.

    Parameters
    ----------
    estimand : Estimand
        From :func:`~causal_mixtures.identification.identify`, of kind ``"back_door"`` or
        ``"front_door_covariates"``.
    y : ndarray of shape (n_samples,)
        The cause.
    do_values : ndarray of shape (n_do,)
        The intervention values (validated by the caller).
    mechanism : array-like of shape (n_samples,) or (n_samples, n_columns), optional
        The mechanism nodes' data, in the order of ``estimand.mechanisms`` (front door with
        covariates only; ignored otherwise).
    covariates : array-like of shape (n_samples,) or (n_samples, n_columns), optional
        The covariate nodes' data, in the order of ``estimand.covariates``; required when
        the estimand has covariates, ignored otherwise.
    density : str, ConditionalDensity or estimator of this module, default="auto"
        Estimator of the conditional density the weights need (see the module docstring).
    discrete_cause : bool
        Whether ``y`` is discrete.

    Returns
    -------
    log_num : ndarray of shape (n_samples, n_do)
    log_den : ndarray of shape (n_samples,)
        ``w_n(y_j) = exp(log_num[n, j] - log_den[n])``, before normalisation.
    density : fitted estimator
        The fitted conditional density; for a continuous back-door cause its
        ``kernel_bandwidth_`` holds the kernel bandwidth ``h``.

    Raises
    ------
    ValueError
        On missing or malformed role data, or a ``density`` that does not fit the data.
    PositivityError
        When an intervention value never occurs in a stratum of discrete covariates.
    """
    y = np.asarray(y)
    n = len(y)
    do_values = np.asarray(do_values)
    kind = estimand.kind
    if kind not in ("back_door", "front_door_covariates"):
        raise ValueError(
            f"adjusted_log_weights handles back-door and front-door-with-covariates "
            f"estimands; got kind={kind!r} (front-door weights are computed by causal_weights)."
        )
    w_columns: list[np.ndarray] = []
    w_names: tuple[str, ...] = ()
    if estimand.covariates:
        w_columns = _as_role_columns("covariates", covariates, n, estimand.covariates, kind)
        w_names = _column_names("covariates", estimand.covariates, len(w_columns))
    w_set = ConditioningSet(tuple(w_columns), tuple(is_discrete(c) for c in w_columns), w_names)
    if kind == "back_door":
        return _back_door(estimand, y, do_values, w_set, density, discrete_cause)
    z_cols = _as_role_columns("mechanism", mechanism, n, estimand.mechanisms, kind)
    z = np.column_stack(z_cols)
    given = ConditioningSet(
        (y, *w_set.columns), (discrete_cause, *w_set.discrete), (estimand.cause, *w_set.names)
    )
    est = _make_estimator(density, z, given, kind=kind, what="mechanism")
    est.fit(z, given)
    log_den = est.log_prob(z, given)
    log_num = np.column_stack([est.log_prob(z, given.replace(0, v)) for v in do_values.tolist()])
    return log_num, log_den, est


def _back_door(
    estimand: Any,
    y: np.ndarray,
    do_values: np.ndarray,
    w_set: ConditioningSet,
    density: Any,
    discrete_cause: bool,
) -> tuple[np.ndarray, np.ndarray, AdjustmentDensity]:
    v = y.reshape(-1, 1)
    est = _make_estimator(density, v, w_set, kind="back_door", what="cause")
    if discrete_cause and w_set.columns and w_set.all_discrete:
        _check_strata(y, do_values, w_set, estimand.cause)
    est.fit(v, w_set)
    log_den = est.log_prob(v, w_set)
    if discrete_cause:
        log_num = np.where(y[:, None] == do_values[None, :], 0.0, -np.inf)
    else:
        h = kernel_bandwidth(y)
        est.kernel_bandwidth_ = h
        diff = (np.asarray(y, dtype=float)[:, None] - do_values.astype(float)[None, :]) / h
        log_num = -0.5 * diff * diff - 0.5 * _LOG_2PI - math.log(h)
    return log_num, log_den, est


def _check_strata(y: np.ndarray, do_values: np.ndarray, w_set: ConditioningSet, cause: str) -> None:
    """Positivity of the back door with discrete covariates: every intervention value must
    occur in every stratum, else that stratum silently drops out of its estimate."""
    coder = _CellCoder().fit(w_set)
    ids = coder.transform(w_set, len(y))
    for v in do_values.tolist():
        present = set(np.unique(ids[y == v]).tolist())
        missing = [c for c in range(len(coder.cells_)) if c not in present]
        if missing:
            shown = "; ".join(_describe(w_set.names, coder.cells_[c]) for c in missing[:3])
            raise PositivityError(
                f"no training row has {cause} = {v!r} in {len(missing)} stratum/strata of the "
                f"covariates ({shown}{'; ...' if len(missing) > 3 else ''}): E[x | do({cause} = "
                f"{v!r})] cannot be adjusted there (positivity fails). Merge rare covariate "
                "levels, drop those strata, or remove that value from do."
            )
