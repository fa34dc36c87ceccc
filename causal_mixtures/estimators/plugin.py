"""Plug-in front-door sampler: the front-door formula itself, with no importance weights.

Details: ``docs/estimators.md``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from causal_mixtures.weights.conditional import CellConditional, ConditionalGaussianMixture
from causal_mixtures.weights.density import is_discrete, rows_as_codes, unique_rows
from causal_mixtures.weights.experts import GatedExpertsMixture
from causal_mixtures.weights.selection import DensityChoice, heldout_choice

__all__ = ["OUTCOME_CANDIDATES", "CellConditional", "ConditionalGaussianMixture",
           "GatedExpertsMixture", "PluginFrontDoor"]

#: Models of ``p(x | y', z, w)`` for a continuous cause and mechanism, in order of preference:
#: the mixture of linear experts gated on ``(z, w)`` only, then Gaussian mixture regression.
OUTCOME_CANDIDATES = ("experts", "mixture")


class PluginFrontDoor:
    """Ancestral sampler of the front-door formula from fitted conditionals.

    ``p(x | do(y)) = Σ_w p(w) Σ_z p(z | y, w) Σ_y' p(y' | w) p(x | y', z, w)``: each draw takes
    ``(w_n, y'_n)`` jointly from an observed row, ``z ~ p(z | y, w_n)`` and
    ``x ~ p(x | y'_n, z, w_n)``; without covariates ``w`` is empty. Every conditional is a
    :class:`CellConditional`: one model per cell of its discrete conditioning variables
    (discrete cause, discrete mechanism, discrete covariates), Gaussian mixture regression on
    the continuous ones (continuous cause, continuous mechanism of any dimension, continuous
    covariates); a discrete mechanism's ``p(z | ·)`` is smoothed counts per cell or a
    logistic regression on the continuous conditioning variables.

    With a continuous cause and a continuous mechanism, the outcome model ``p(x | y', z, w)``
    is evaluated at pairs ``(y', z)`` never observed together (``y'`` from its marginal,
    ``z`` from ``p(z | do(y))``), so it extrapolates in ``y'``. There it is chosen between a
    :class:`~causal_mixtures.weights.experts.GatedExpertsMixture` gated on the continuous
    mechanism and covariates with the cause as a regressor-only column ("experts": linear
    in ``y'`` within each region of ``(z, w)``) and the Gaussian mixture regression
    ("mixture", gated on ``(y', z, w)`` jointly), by held-out conditional log-likelihood
    (:func:`~causal_mixtures.weights.selection.heldout_choice`: a seeded split holding out
    25 %; "experts" unless "mixture" is better by more than two paired standard errors).

    Parameters
    ----------
    n_components : int or "auto", default="auto"
        Components of each conditional mixture; ``"auto"`` chooses K by BIC per conditional.
    discrete_cause, discrete_mechanism : bool
        How to model ``y`` and ``z``.
    alpha : float, default=1.0
        Pseudo-count of a discrete ``p(z | y, w)``.
    random_state : int, default=0
        Seed of the mixtures' initialisation and of the outcome model's held-out split
        (sampling takes its own generator).
    outcome_model : {"auto", "experts", "mixture"}, default="auto"
        ``p(x | y', z, w)`` for a continuous cause and mechanism: chosen by held-out
        likelihood ("auto"; with ``n_components=1`` both are the linear regression on
        ``(y', z, w)`` and "mixture" is used without a split), or fixed. A discrete cause or
        mechanism always uses "mixture" (cells, Gaussian mixture regression inside).

    Attributes
    ----------
    outcome_model_ : str
        The outcome model used: "experts" or "mixture".
    outcome_choice_ : DensityChoice or None
        The record of the held-out comparison (``outcome_model="auto"`` with a continuous
        cause and mechanism): mean held-out ``log p̂(x | y', z, w)`` per row of each
        candidate, standard errors, the paired standard error of each difference to the
        best, and the rule; ``None`` when no comparison was made.
    """

    def __init__(
        self,
        n_components: int | str = "auto",
        *,
        discrete_cause: bool = True,
        discrete_mechanism: bool = False,
        alpha: float = 1.0,
        random_state: int = 0,
        outcome_model: str = "auto",
    ) -> None:
        self.n_components = n_components
        self.discrete_cause = discrete_cause
        self.discrete_mechanism = discrete_mechanism
        self.alpha = alpha
        self.random_state = random_state
        self.outcome_model = outcome_model

    # ------------------------------------------------------------------ encoding
    def _encode_y(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(discrete codes (m, a), continuous columns (m, b)) of cause values."""
        if self.discrete_cause:
            pos = np.searchsorted(self.classes_, y)
            pos = np.minimum(pos, len(self.classes_) - 1)
            if not np.all(self.classes_[pos] == y):
                bad = np.asarray(y)[self.classes_[pos] != y][0]
                raise ValueError(
                    f"do={bad!r} is not an observed class of the cause "
                    f"({self.classes_.tolist()}): the plug-in has no p(z | y) there. Pass one "
                    "of the observed classes."
                )
            return pos.reshape(-1, 1), np.empty((len(y), 0))
        return np.empty((len(y), 0), dtype=np.int64), np.asarray(y, dtype=float).reshape(-1, 1)

    def _encode_w(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Covariates of the training rows ``w`` (row indices)."""
        return self.w_codes_[w], self.w_cont_[w]

    def _encode_w_values(self, values: Any, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Codes and continuous columns of covariate values (``m`` rows)."""
        if values is None:
            if self.n_covariates_:
                raise ValueError(
                    f"covariates is required: the plug-in was fitted with {self.n_covariates_} "
                    "covariate column(s); pass the covariates of these rows."
                )
            return np.empty((m, 0), np.int64), np.empty((m, 0))
        w = np.asarray(values).reshape(m, -1)
        if w.shape[1] != self.n_covariates_:
            raise ValueError(
                f"covariates must have {self.n_covariates_} column(s) as when fitted; got "
                f"{w.shape[1]}."
            )
        codes, cont = [], []
        for k, levels in enumerate(self.w_levels_):
            if levels is None:
                cont.append(w[:, k].astype(float))
                continue
            code = rows_as_codes(w[:, k].reshape(-1, 1), levels)[1]
            if (code < 0).any():
                bad = w[np.flatnonzero(code < 0)[0], k]
                raise ValueError(
                    f"covariates column {k} takes the value {bad!r}, never seen when fitting "
                    f"(levels: {levels[:, 0].tolist()[:10]}). Pass observed levels only."
                )
            codes.append(code)
        wd = np.column_stack(codes).astype(np.int64) if codes else np.empty((m, 0), np.int64)
        return wd, (np.column_stack(cont) if cont else np.empty((m, 0)))

    def _describe_x(self, row: np.ndarray) -> str:
        return f"p(x | y', z, w) in the cell of discrete codes {row.tolist()} (cause, mechanism, covariates)"

    def _describe_z(self, row: np.ndarray) -> str:
        return f"p(z | y, w) in the cell of discrete codes {row.tolist()} (cause, covariates)"

    # ------------------------------------------------------------------ fitting
    def fit(
        self, X: Any, y: Any, z: Any, covariates: Any = None
    ) -> PluginFrontDoor:
        """Fit ``p(z | y, w)`` and ``p(x | y', z, w)`` on the observational rows.

        Parameters
        ----------
        X : array-like of shape (n, d)
        y : array-like of shape (n,)
        z : array-like of shape (n,) or (n, d_z)
        covariates : array-like of shape (n,) or (n, d_w), optional
            Observed covariates ``W`` (graph ``front_door_covariates``); each column is
            discrete or continuous by :func:`~causal_mixtures.weights.density.is_discrete`.
        """
        X = np.asarray(X, dtype=float)
        X = X.reshape(len(X), -1)
        y = np.asarray(y)
        z = np.asarray(z).reshape(len(z), -1)
        n = len(X)
        self.y_ = y.copy()
        self.n_features_ = X.shape[1]
        if self.discrete_cause:
            self.classes_ = np.unique(y)
        # Covariates: codes of the discrete columns, values of the continuous ones.
        w = np.empty((n, 0)) if covariates is None else np.asarray(covariates)
        w = w.reshape(n, -1)
        codes, cont = [], []
        self.w_levels_: list[np.ndarray | None] = []
        for k in range(w.shape[1]):
            col = w[:, k]
            if is_discrete(col):
                levels, code = unique_rows(col.reshape(-1, 1))
                self.w_levels_.append(levels)
                codes.append(code)
            else:
                self.w_levels_.append(None)
                cont.append(col.astype(float))
        self.w_codes_ = np.column_stack(codes).astype(np.int64) if codes else np.empty((n, 0), np.int64)
        self.w_cont_ = np.column_stack(cont) if cont else np.empty((n, 0))
        self.n_covariates_ = w.shape[1]
        yd, yc = self._encode_y(y)
        wd, wc = self.w_codes_, self.w_cont_
        seed = self.random_state
        if self.discrete_mechanism:
            self.z_levels_, z_codes = unique_rows(z)
            self.z_model_ = CellConditional(None, len(self.z_levels_), self.alpha, seed).fit(
                z_codes, np.column_stack([yd, wd]), np.column_stack([yc, wc])
            )
            zd, zc = z_codes.reshape(-1, 1), np.empty((n, 0))
        else:
            zf = z.astype(float)
            self.z_model_ = CellConditional(self._k(0), None, self.alpha, seed).fit(
                zf, np.column_stack([yd, wd]), np.column_stack([yc, wc])
            )
            zd, zc = np.empty((n, 0), np.int64), zf
        disc, cont = np.column_stack([yd, zd, wd]), np.column_stack([yc, zc, wc])
        if self.discrete_cause or self.discrete_mechanism:
            self.outcome_model_, self.outcome_choice_ = "mixture", None
        else:
            self.outcome_model_, self.outcome_choice_ = self._choose_outcome(X, disc, cont)
        self.x_model_ = self._outcome(self.outcome_model_).fit(X, disc, cont)
        return self

    def refit(self, X: Any, y: Any, z: Any, covariates: Any = None, *,
              random_state: int = 0) -> PluginFrontDoor:
        """A new plug-in of the same model fitted on other rows (a bootstrap sample): the
        outcome model and every conditional's number of components are those this fit
        chose, not searched again."""
        new = PluginFrontDoor(self.n_components, discrete_cause=self.discrete_cause,
                              discrete_mechanism=self.discrete_mechanism, alpha=self.alpha,
                              random_state=random_state, outcome_model=self.outcome_model_)
        new.frozen_ = (self.z_model_.components(), self.x_model_.components())
        return new.fit(X, y, z, covariates=covariates)

    def _k(self, which: int) -> int | str | dict[int, int]:
        """Components of ``p(z | ·)`` (0) or ``p(x | ·)`` (1): frozen by :meth:`refit`."""
        frozen = getattr(self, "frozen_", None)
        return self.n_components if frozen is None else frozen[which]

    def _outcome(self, name: str) -> CellConditional:
        """An unfitted ``p(x | y', z, w)`` of the named kind (the cause is the first
        continuous column)."""
        factory = None
        if name == "experts":
            def factory(k: int | str, seed: int) -> GatedExpertsMixture:
                return GatedExpertsMixture(k, regressors=(0,), random_state=seed)
        return CellConditional(self._k(1), None, self.alpha, self.random_state, factory)

    def _choose_outcome(
        self, X: np.ndarray, disc: np.ndarray, cont: np.ndarray
    ) -> tuple[str, DensityChoice | None]:
        """The outcome model of a continuous cause and mechanism, and its held-out record."""
        if self.outcome_model not in ("auto", *OUTCOME_CANDIDATES):
            raise ValueError(
                f"outcome_model must be 'auto', 'experts' or 'mixture'; got "
                f"{self.outcome_model!r}. Try 'auto'."
            )
        if self.outcome_model != "auto":
            return self.outcome_model, None
        if self.n_components == 1:  # both are the linear regression on (y', z, w)
            return "mixture", None
        cell = unique_rows(disc)[1] if disc.shape[1] else np.zeros(len(X), np.int64)

        def keep(train: np.ndarray, held: np.ndarray) -> np.ndarray:
            # Score only cells that both candidates model from the training rows.
            counts = np.bincount(cell[train], minlength=int(cell.max()) + 1)
            return held[counts[cell[held]] >= 2]

        def score(name: str, train: np.ndarray, held: np.ndarray) -> np.ndarray:
            model = self._outcome(name).fit(X[train], disc[train], cont[train])
            return model.log_prob(X[held], disc[held], cont[held], self._describe_x)

        choice = heldout_choice(OUTCOME_CANDIDATES, score, len(X),
                                random_state=self.random_state, keep=keep)
        return choice.name, choice

    # ------------------------------------------------------------------ sampling
    def _draw(
        self, n: int, y_z: np.ndarray, rng: np.random.Generator,
        given: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Inputs of ``p(x | y', z, w)`` for ``n`` draws, ``z ~ p(z | y_z, w)``: with
        ``given=None``, ``(y', w)`` from uniformly drawn training rows (interventional);
        else ``y' = y_z`` and ``w`` the encoded covariates ``given`` (observational)."""
        if given is None:
            idx = rng.integers(0, len(self.y_), n)
            wd, wc = self._encode_w(idx)
        else:
            wd, wc = given
        yd, yc = self._encode_y(y_z)
        z = self.z_model_.sample(
            np.column_stack([yd, wd]), np.column_stack([yc, wc]), rng, self._describe_z
        )
        if self.discrete_mechanism:
            zd, zc = z.reshape(-1, 1), np.empty((n, 0))
        else:
            zd, zc = np.empty((n, 0), np.int64), z
        pd_, pc = self._encode_y(self.y_[idx]) if given is None else (yd, yc)
        return np.column_stack([pd_, zd, wd]), np.column_stack([pc, zc, wc])

    def sample(self, n: int, do: Any, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of ``x ~ p(x | do(y = do))``, shape (n, d)."""
        disc, cont = self._draw(n, np.full(n, do, dtype=self.y_.dtype), rng)
        return self.x_model_.sample(disc, cont, rng, self._describe_x)

    def interventional_mean(
        self, do: Any, n_draws: int = 20_000, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``E[x | do(y = do)]`` under the fitted conditionals, with its Monte-Carlo error.

        Rao-Blackwellised: the mean over ``n_draws`` draws of ``(w, y', z)`` of the fitted
        ``E[x | y', z, w]`` (no draw of ``x``). The standard error is that of the Monte-Carlo
        average only, not of the conditionals' estimation.

        Returns
        -------
        mean, se : ndarray of shape (d,)
        """
        rng = np.random.default_rng(0) if rng is None else rng
        disc, cont = self._draw(n_draws, np.full(n_draws, do, dtype=self.y_.dtype), rng)
        m = self.x_model_.mean(disc, cont, self._describe_x)
        return m.mean(0), m.std(0, ddof=1) / math.sqrt(n_draws)

    def sample_observational(
        self, y: Any, rng: np.random.Generator | None = None, covariates: Any = None
    ) -> np.ndarray:
        """One draw of ``x ~ p̂(x | y_n, w_n) = ∫ p̂(z | y_n, w_n) p̂(x | y_n, z, w_n) dz`` per
        row: the conditionals' implied observational distribution, to compare with the data
        (a posterior-predictive check of the plug-in).

        Parameters
        ----------
        y : array-like of shape (m,)
            Cause values.
        rng : numpy.random.Generator, optional
            Default ``numpy.random.default_rng(0)``.
        covariates : array-like of shape (m,) or (m, d_w), optional
            The covariates of those rows; required when the plug-in has covariates.

        Returns
        -------
        ndarray of shape (m, d)
        """
        rng = np.random.default_rng(0) if rng is None else rng
        y = np.asarray(y)
        given = self._encode_w_values(covariates, len(y))
        disc, cont = self._draw(len(y), y, rng, given)
        return self.x_model_.sample(disc, cont, rng, self._describe_x)

    def observational_mean(
        self, y: Any, covariates: Any = None, *, n_draws: int = 32,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """``E[x | y_n, w_n]`` implied by the conditionals, per row: ``n_draws`` draws of
        ``z ~ p̂(z | y_n, w_n)`` averaged over the fitted ``E[x | y_n, z, w_n]``.

        Parameters
        ----------
        y : array-like of shape (m,)
            Cause values.
        covariates : array-like of shape (m,) or (m, d_w), optional
            The covariates of those rows; required when the plug-in has covariates.
        n_draws : int, default=32
        rng : numpy.random.Generator, optional
            Default ``numpy.random.default_rng(0)``.

        Returns
        -------
        ndarray of shape (m, d)
            Compare with the data, e.g. with the class means of ``x`` (a
            posterior-predictive check of the conditionals).
        """
        rng = np.random.default_rng(0) if rng is None else rng
        y = np.asarray(y)
        given = self._encode_w_values(covariates, len(y))
        total = np.zeros((len(y), self.n_features_))
        for _ in range(n_draws):
            disc, cont = self._draw(len(y), y, rng, given)
            total += self.x_model_.mean(disc, cont, self._describe_x)
        return total / n_draws
