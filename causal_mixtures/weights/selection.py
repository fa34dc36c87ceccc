"""``density="auto"``: the density of a continuous mechanism chosen by held-out
log-likelihood, with the choice recorded (:class:`DensityChoice`).

Details: ``docs/weights.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from causal_mixtures.weights.density import (
    ConditionalDensity,
    is_discrete,
    make_density,
    make_named,
)

__all__ = ["AUTO_CANDIDATES", "AUTO_CLEAR_GAIN", "AUTO_ESS_RATIO", "AUTO_SE", "DensityChoice", "choose_density", "heldout_choice",
           "resolve_density"]


@dataclass(frozen=True)
class DensityChoice:
    """Which density ``density="auto"`` chose, and why: held-out log-likelihood per row.

    Attributes
    ----------
    name : str
        The chosen density (refitted on all rows).
    candidates : tuple of str
        The candidates, in order of preference.
    loglik : dict of str to float
        Mean held-out ``log p̂(z | y)`` per row of each candidate (``-inf`` when it failed
        or gave a zero density to a held-out row).
    se : dict of str to float
        Its standard error (sd of the rows' log-likelihoods over ``sqrt(n_heldout)``).
    se_diff : dict of str to float
        Standard error of each candidate's paired (row by row) difference to the best.
    n_train, n_heldout : int
        Rows the candidates were fitted on and scored on.
    rule : str
        How the choice was made.
    ess : dict of str to float or None
        When the likelihood's winner is not the preferred candidate: the smallest Kish ESS
        of the weights of the training rows (at most 5 000; at the classes, or the 5/50/95 %
        quantiles of a continuous cause) under each of the two.
    """

    name: str
    candidates: tuple[str, ...]
    loglik: dict[str, float]
    se: dict[str, float]
    se_diff: dict[str, float]
    n_train: int
    n_heldout: int
    rule: str = (
        "first candidate (in order of preference) whose held-out log-likelihood is within "
        "two paired standard errors of the best"
    )
    ess: dict[str, float] | None = None

    def to_frame(self):
        """A :class:`pandas.DataFrame`: one row per candidate."""
        import pandas as pd

        return pd.DataFrame(
            {
                "density": list(self.candidates),
                "heldout_loglik": [self.loglik[c] for c in self.candidates],
                "se": [self.se[c] for c in self.candidates],
                "se_diff_to_best": [self.se_diff[c] for c in self.candidates],
                "chosen": [c == self.name for c in self.candidates],
                **({"min_ess": [self.ess.get(c, np.nan) for c in self.candidates]}
                   if self.ess else {}),
            }
        )


#: Candidates of ``density="auto"`` for a continuous mechanism (keyed by whether the cause is
#: discrete), in order of preference: the static default of earlier versions first.
AUTO_CANDIDATES: dict[bool, tuple[str, ...]] = {
    True: ("kde", "mixture", "gaussian"),  # discrete cause: per-class models
    False: ("gaussian", "mixture", "kde"),  # continuous cause: conditionals of joint models
}
#: Paired standard errors by which a candidate must beat the preferred one to replace it.
AUTO_SE = 2.0
#: A density that fits better replaces the preferred one only if its weights keep at least
#: this share of the preferred density's (smallest held-out) ESS.
AUTO_ESS_RATIO = 0.5
#: ... unless it fits better by at least this held-out log-likelihood per row (then the
#: preferred density is plainly wrong, and its larger ESS that of wrong weights).
AUTO_CLEAR_GAIN = 0.1
#: Rows the candidates of ``density="auto"`` are fitted on and scored on (at most).
AUTO_MAX_TRAIN, AUTO_MAX_HELDOUT = 20_000, 5_000


def choose_density(
    z: np.ndarray,
    y: np.ndarray,
    *,
    discrete_cause: bool,
    candidates: tuple[str, ...] | None = None,
    random_state: int = 0,
) -> tuple[ConditionalDensity, DensityChoice]:
    """Choose the density of a continuous mechanism by held-out log-likelihood.

    A seeded split holds out 25 % of the rows (at most :data:`AUTO_MAX_HELDOUT`) and fits
    every candidate on at most :data:`AUTO_MAX_TRAIN` of the others; each is scored by its
    mean held-out ``log p̂(z | y)``. The first candidate (in order of preference) within
    :data:`AUTO_SE` paired standard errors of the best is chosen, so another density
    replaces the preferred one (the static default of earlier versions: "kde" for a
    discrete cause, "gaussian" for a continuous one) only when it fits the held-out rows
    significantly better (about 5 %, one-sided 2.3 %), not on the noise of a small
    held-out set; and, unless it is better by at least :data:`AUTO_CLEAR_GAIN` per row, only
    if its weights keep at least :data:`AUTO_ESS_RATIO` of the preferred density's smallest
    Kish ESS (the likelihood hardly sees the tails the weights evaluate).

    Parameters
    ----------
    z : ndarray of shape (n, d_z)
    y : ndarray of shape (n,)
    discrete_cause : bool
    candidates : tuple of str, optional
        Names from :data:`~causal_mixtures.weights.density.DENSITIES`, in order of
        preference; default :data:`AUTO_CANDIDATES`.
    random_state : int, default=0
        Seed of the split.

    Returns
    -------
    density : ConditionalDensity
        The chosen estimator, fitted on all rows.
    choice : DensityChoice
    """
    z = np.asarray(z, dtype=float).reshape(len(z), -1)
    y = np.asarray(y)
    candidates = tuple(candidates or AUTO_CANDIDATES[discrete_cause])

    def keep(train: np.ndarray, held: np.ndarray) -> np.ndarray:
        if not discrete_cause:
            return held
        # Score only classes every candidate can model from the training rows.
        values, counts = np.unique(y[train], return_counts=True)
        ok = set(values[counts >= 2].tolist())
        return held[np.fromiter((v in ok for v in y[held].tolist()), bool, len(held))]

    fitted: dict[str, tuple[ConditionalDensity, np.ndarray]] = {}

    def score(name: str, train: np.ndarray, held: np.ndarray) -> np.ndarray:
        est = make_named(name, discrete_cause).fit(z[train], y[train])
        fitted[name] = (est, train)
        return np.asarray(est.log_prob(z[held], y[held]), dtype=float)

    choice = heldout_choice(candidates, score, len(z), random_state=random_state, keep=keep)
    pref = candidates[0]
    if choice.name != pref and pref in fitted and choice.name in fitted:
        # The weights evaluate p(z_n | do) at rows of other causes, in the densities'
        # tails, which the held-out likelihood hardly sees: a slightly better-fitting
        # density whose weights collapse (per-class Gaussians: a ratio with exponential
        # tails) does not replace the preferred one. The weights of (at most
        # AUTO_MAX_HELDOUT of) the training rows, at the classes of a discrete cause or the
        # 5, 50 and 95 % quantiles of a continuous one.
        rows = fitted[pref][1][:AUTO_MAX_HELDOUT]
        do = np.unique(y) if discrete_cause else np.quantile(y.astype(float), [0.05, 0.5, 0.95])
        ess = {c: _ess(fitted[c][0], z[rows], y[rows], do) for c in (pref, choice.name)}
        gain = choice.loglik[choice.name] - choice.loglik[pref]
        keep_preferred = ess[choice.name] < AUTO_ESS_RATIO * ess[pref] and gain < AUTO_CLEAR_GAIN
        choice = dataclasses.replace(
            choice, name=pref if keep_preferred else choice.name, ess=ess,
            rule=choice.rule + f"; a better fit by less than {AUTO_CLEAR_GAIN:g} per row must "
            f"also keep {AUTO_ESS_RATIO:g} of the preferred density's smallest Kish ESS",
        )
    return make_named(choice.name, discrete_cause).fit(z, y), choice


def _ess(est: ConditionalDensity, z: np.ndarray, y: np.ndarray, do: np.ndarray) -> float:
    """The smallest Kish ESS over ``do`` of the front-door weights of the rows ``(z, y)``."""
    try:
        log_w = est.log_prob_grid(z, do) - est.log_prob(z, y)[:, None]
    except ValueError:
        return 0.0
    log_w = np.where(np.isnan(log_w), -np.inf, log_w)
    w = np.exp(log_w - log_w.max(0, keepdims=True))
    w = w / w.sum(0, keepdims=True)
    return float(np.min(1.0 / (w * w).sum(0)))


def heldout_choice(
    candidates: tuple[str, ...],
    score: Callable[[str, np.ndarray, np.ndarray], np.ndarray],
    n: int,
    *,
    random_state: int = 0,
    max_train: int = AUTO_MAX_TRAIN,
    max_heldout: int = AUTO_MAX_HELDOUT,
    keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> DensityChoice:
    """The held-out comparison behind every ``density="auto"``.

    Parameters
    ----------
    candidates : tuple of str
        In order of preference.
    score : callable
        ``score(name, train, held)``: fit candidate ``name`` on the rows ``train`` and return
        the log-density of each row of ``held``.
    n : int
        Number of rows.
    random_state : int, default=0
        Seed of the split (25 % held out, at most ``max_heldout``; at most ``max_train`` of
        the others for fitting).
    keep : callable, optional
        ``keep(train, held)`` -> the held-out rows that can be scored.
    """
    perm = np.random.default_rng(random_state).permutation(n)
    n_hold = int(min(max_heldout, max(1, round(0.25 * n))))
    held, train = perm[:n_hold], perm[n_hold : n_hold + max_train]
    if keep is not None:
        held = keep(train, held)
    scores: dict[str, np.ndarray] = {}
    for name in candidates:
        try:
            ll = np.asarray(score(name, train, held), dtype=float)
        except (ValueError, np.linalg.LinAlgError):  # PositivityError is a ValueError
            ll = np.full(len(held), -np.inf)
        scores[name] = ll if np.all(np.isfinite(ll)) else np.full(len(held), -np.inf)
    m = max(len(held), 1)
    loglik = {c: float(np.mean(v)) if len(v) else -np.inf for c, v in scores.items()}
    se = {
        c: float(np.std(v, ddof=1) / math.sqrt(m)) if len(v) > 1 and np.isfinite(loglik[c])
        else np.inf
        for c, v in scores.items()
    }
    best = max(candidates, key=lambda c: loglik[c])
    se_diff = {}
    for c in candidates:
        diff = scores[best] - scores[c]
        finite = np.isfinite(loglik[c]) and len(diff) > 1
        se_diff[c] = float(np.std(diff, ddof=1) / math.sqrt(m)) if finite else np.inf
    chosen = next(
        c for c in candidates
        # (1e-9 per row forgives rounding between equal models, e.g. a 1-component mixture
        # and the Gaussian.)
        if np.isfinite(loglik[c]) and loglik[best] - loglik[c] <= AUTO_SE * se_diff[c] + 1e-9
    ) if np.isfinite(loglik[best]) else candidates[0]
    return DensityChoice(chosen, candidates, loglik, se, se_diff, len(train), len(held))


def resolve_density(
    density: str | ConditionalDensity,
    z: np.ndarray,
    y: np.ndarray,
    *,
    discrete_cause: bool,
    random_state: int = 0,
) -> tuple[ConditionalDensity, DensityChoice | None]:
    """The density of the front-door weights, fitted on ``(z, y)``, and, for ``"auto"`` with
    a continuous mechanism, the record of its choice (:func:`choose_density`; the
    estimator's ``choice_`` too). Anything else resolves as in
    :func:`~causal_mixtures.weights.density.make_density`, with no record."""
    if isinstance(density, str) and density == "auto" and not is_discrete(z):
        est, choice = choose_density(
            z, y, discrete_cause=discrete_cause, random_state=random_state
        )
        est.choice_ = choice
        return est, choice
    return make_density(density, z, discrete_cause=discrete_cause).fit(z, y), None
