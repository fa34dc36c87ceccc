"""Positivity from the weights themselves: under ``do(y)`` the weighted rows must keep the
observed distribution of the cause; a stratum of ``y`` whose weight share collapses is one
where ``p(z | y)`` puts its mass on mechanism values never seen with that stratum.

For front-door weights ``w_n(y) = p(z_n | y) / p(z_n | y_n)`` (with or without covariates),
``E[w(y) 1{Y ∈ s}] / E[w(y)] = p(Y ∈ s) · P(Z ∈ supp p(z | s) | y) / c``: the share of stratum
``s`` equals its marginal probability exactly when positivity holds, and drops towards zero
when ``p(z | y)`` lives where stratum ``s`` has no support. Details and the measured
operating point: ``docs/weights.md`` ("Positivity").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from causal_mixtures.exceptions import PositivityError, PositivityWarning
from causal_mixtures.weights.density import unique_rows

__all__ = [
    "POSITIVITY", "CauseOverlap", "cause_overlap", "cause_strata", "check_positivity",
    "overlap_from_shares",
]

POSITIVITY = ("raise", "warn")
#: A stratum is unsupported under ``do(y)`` when its weight share is below this fraction of
#: its marginal share ...
MIN_SHARE_RATIO = 0.2
#: ... and the deficit is this many standard errors (``sqrt(p(1-p)/ESS)``) or more. Measured
#: (docs/weights.md): healthy front doors had ratios >= 0.69; a copied or disjoint mechanism
#: gives ratios <= 0.002 at 25+ standard errors.
MIN_DEFICIT_SE = 4.0
#: Quantile strata of a continuous cause.
N_STRATA = 5


@dataclass(frozen=True)
class CauseOverlap:
    """Weight share of each stratum of the cause, per intervention value.

    Attributes
    ----------
    strata : list
        The classes of a discrete cause, or ``(low, high]`` quantile bins of a continuous one.
    expected : ndarray of shape (n_strata,)
        Marginal share of each stratum among the rows.
    share : ndarray of shape (n_strata, n_do)
        Weight share of each stratum under each intervention value.
    ratio : ndarray of shape (n_strata, n_do)
        ``share / expected``: 1 under positivity (up to sampling noise), near 0 where it fails.
    z : ndarray of shape (n_strata, n_do)
        The deficit ``expected - share`` in standard errors ``sqrt(p (1 - p) / ESS)``.
    """

    strata: list
    expected: np.ndarray
    share: np.ndarray
    ratio: np.ndarray
    z: np.ndarray

    @property
    def violated(self) -> np.ndarray:
        """Boolean (n_strata, n_do): strata without support under each do value."""
        return (self.ratio < MIN_SHARE_RATIO) & (self.z >= MIN_DEFICIT_SE)


def cause_strata(y: np.ndarray, *, discrete_cause: bool) -> tuple[list, np.ndarray]:
    """The strata of the cause and each row's stratum code: the classes of a discrete
    cause, or the ``(low, high]`` quintile bins (:data:`N_STRATA`) of a continuous one."""
    y = np.asarray(y)
    if discrete_cause:
        levels, codes = unique_rows(y.reshape(-1, 1))
        return [lv[0] for lv in levels.tolist()], codes
    yf = y.astype(float)
    edges = np.unique(np.quantile(yf, np.linspace(0, 1, N_STRATA + 1)[1:-1]))
    codes = np.searchsorted(edges, yf, side="left")
    bounds = [-np.inf, *edges.tolist(), np.inf]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)], codes


def cause_overlap(
    values: np.ndarray, y: np.ndarray, ess: np.ndarray, *, discrete_cause: bool
) -> CauseOverlap:
    """The weight share of each stratum of ``y`` under each intervention value."""
    strata, codes = cause_strata(y, discrete_cause=discrete_cause)
    k = len(strata)
    share = np.stack(
        [np.bincount(codes, weights=values[:, j], minlength=k) for j in range(values.shape[1])],
        axis=1,
    )
    return overlap_from_shares(strata, np.bincount(codes, minlength=k), share, ess)


def overlap_from_shares(
    strata: list, counts: np.ndarray, share: np.ndarray, ess: np.ndarray
) -> CauseOverlap:
    """:func:`cause_overlap` from the rows of each stratum ``counts`` (n_strata,) and the
    normalised weight of each stratum under each do value ``share`` (n_strata, n_do): sums
    the out-of-core fit accumulates over chunks."""
    expected = np.asarray(counts) / float(np.sum(counts))
    ratio = share / expected[:, None]
    se = np.sqrt(expected[:, None] * (1.0 - expected[:, None]) / np.maximum(ess[None, :], 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (expected[:, None] - share) / se, 0.0)
    return CauseOverlap(strata, expected, share, ratio, z)


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):
        return f"y in ({v[0]:.4g}, {v[1]:.4g}]"
    return f"y = {v!r}"


def check_positivity(overlap: CauseOverlap, do_values: np.ndarray, mode: str) -> None:
    """Raise :class:`PositivityError` (``mode="raise"``) or warn (``"warn"``) when some
    stratum of the cause has no support under some intervention value."""
    bad = overlap.violated
    if not bad.any():
        return
    parts = []
    for j in np.flatnonzero(bad.any(0))[:4].tolist():
        strata = [_fmt(overlap.strata[s]) for s in np.flatnonzero(bad[:, j])[:3].tolist()]
        worst = float(overlap.ratio[bad[:, j], j].min())
        v = do_values[j]
        v = v.item() if hasattr(v, "item") else v
        parts.append(f"under do({v!r}) the rows with {', '.join(strata)} keep "
                     f"{worst:.1%} of their share")
    msg = (
        "positivity fails: the mechanism values likely under an intervention are (almost) "
        "never observed together with other values of the cause, so the front-door formula "
        "is not identified from these data and the weights reduce to the confounded "
        f"p(x | y). {'; '.join(parts)}. Check that the mechanism is not a copy or a "
        "deterministic function of the cause, collect data where the mechanism varies within "
        "each cause value, or use another graph. Pass positivity='warn' to fit anyway."
    )
    if mode == "raise":
        raise PositivityError(msg)
    warnings.warn(msg, PositivityWarning, stacklevel=4)
