"""Gaussian kernel sums for :class:`~causal_mixtures.weights.density.KernelDensityEstimate`:
exact, and binned on a grid for one or two dimensions.

Both evaluate the same estimator: an isotropic Gaussian KDE of the reference points after
standardising every column, ``log p(q) = logsumexp_i(-‖q − a_i‖² / 2h²) − log m − d log h −
(d/2) log 2π − Σ log s``. :class:`ExactKDE` sums every kernel (one matrix product per chunk of
queries: ``O(n m d)``). :class:`BinnedKDE` spreads the ``m`` points onto a regular grid by
linear binning, convolves the grid with the Gaussian kernel (FFT, kernel truncated at
``8.5 h`` where it is below double precision) and interpolates the *log* density between grid
nodes (``O(m + G log G + n)`` for ``G`` grid nodes). Its error is set by ``ρ = h / δ`` kernel
widths per grid step: linear binning and linear interpolation of ``log p`` each err by
``O((δ / h)²)``; at the default ``ρ = 10`` the measured maximum of ``|Δ log p|`` against
:class:`ExactKDE` is below ``2e-3`` (``tests/test_density.py``). Queries outside the grid, or
where the binned density is below ``1e-10`` of its maximum (where the FFT's rounding and the
interpolation lose relative accuracy: the tails, which carry the largest weights), are
evaluated exactly, so the error bound holds everywhere.

KDEpy's ``FFTKDE`` does the binning and the convolution too, but truncates the Gaussian at
kernel value ``1e-4`` (about 3.9 h): the density is then zero a few bandwidths from the
data and off by a large factor just inside that, which is exactly where the front-door
weights are largest. Hence SciPy's FFT convolution with our own truncation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import torch
from scipy.ndimage import map_coordinates
from scipy.signal import fftconvolve

__all__ = [
    "BINNED_MAX_DIM",
    "BINNED_MAX_NODES",
    "BinnedKDE",
    "ExactKDE",
    "binned_feasible",
    "grid_of_range",
    "grid_shape",
    "kernel_device",
    "kernel_logsumexp",
    "linear_binning",
]

#: Binned evaluation for KDEs of at most this many dimensions (above, a grid fine enough for
#: the error bound would not fit in :data:`BINNED_MAX_NODES`).
BINNED_MAX_DIM = 2
#: At most this many grid nodes (8 bytes each, a few copies: ~100 MiB at most).
BINNED_MAX_NODES = 2**21
#: Grid steps per bandwidth ``ρ``: the target, and the coarsest accepted before falling back
#: to the exact sum (the error grows as ``1 / ρ²``; on a coarse grid more of the tail is
#: evaluated exactly to keep :data:`TOLERANCE`).
RHO_TARGET = 40.0
RHO_MIN = 6.0
#: The kernel is truncated where ``exp(-r² / 2h²)`` is below double precision (``r = 8.5 h``).
_TRUNCATE = 8.5
#: The bound on ``|Δ log p|`` that the binned evaluation keeps (measured, tests).
TOLERANCE = 5e-3
#: Below this fraction of the grid's maximum density, queries are always evaluated exactly
#: (the FFT's rounding, about 1e-16 of the maximum, would show).
_FLOOR = 1e-10


#: The device of the exact kernel sums where none is given: set by :func:`kernel_device`.
_DEVICE: ContextVar[torch.device | str | None] = ContextVar("kernel_device", default=None)


@contextmanager
def kernel_device(device: torch.device | str | None) -> Iterator[None]:
    """Run the exact kernel sums (:func:`kernel_logsumexp`) of every KDE evaluated inside
    the block on ``device`` (``None``: the CPU). ``CausalGaussianMixture(device="cuda")``
    wraps its weights in it, so a kernel density of a mechanism of three or more columns
    (the exact ``O(n m d)`` sum) runs on the GPU; the binned KDE's grid is ``O(n)`` on the
    CPU either way."""
    token = _DEVICE.set(device)
    try:
        yield
    finally:
        _DEVICE.reset(token)


def scott_factor(n: int, d: int) -> float:
    """Scott's rule ``n^(-1/(d+4))`` for standardised data."""
    return float(n) ** (-1.0 / (d + 4))


class ExactKDE:
    """Isotropic Gaussian KDE on standardised data, every kernel summed in log space.

    Parameters
    ----------
    a : ndarray of shape (m, d)
        The reference points.
    bandwidth : float or None
        On the standardised scale; ``None`` means Scott's rule.
    max_points : int or None
        At most this many reference points (evenly spaced rows: deterministic, and
        stratified when the rows are ordered by value).
    """

    _CHUNK = 2**22  # query × reference pairs per chunk

    def __init__(self, a: np.ndarray, bandwidth: float | None, max_points: int | None) -> None:
        a = np.asarray(a, dtype=float)
        if max_points is not None and len(a) > max_points:
            a = a[np.linspace(0, len(a) - 1, max_points).round().astype(int)]
        self._standardisation(len(a), a.mean(0), a.std(0), bandwidth)
        self.points = (a - self.loc) / self.scale
        self.sq = (self.points**2).sum(1)

    def _standardisation(
        self, m: int, loc: np.ndarray, scale: np.ndarray, bandwidth: float | None
    ) -> None:
        """The estimator's scales and constant from the points' count, mean and sd."""
        self.loc = loc
        self.scale = np.where(scale > 0, scale, 1.0)
        d = len(loc)
        self.bandwidth = float(bandwidth or scott_factor(m, d))
        self.const = (
            -math.log(m)
            - d * math.log(self.bandwidth)
            - 0.5 * d * math.log(2 * math.pi)
            - float(np.log(self.scale).sum())
        )

    def standardise(self, q: np.ndarray) -> np.ndarray:
        """Queries on the standardised scale of the reference points."""
        return (np.asarray(q, dtype=float) - self.loc) / self.scale

    def score_standardised(self, q: np.ndarray) -> np.ndarray:
        """``log p`` at standardised queries ``q`` of shape (n, d)."""
        return kernel_logsumexp(q, self.points, self.bandwidth, self.sq) + self.const

    def score(self, q: np.ndarray) -> np.ndarray:
        """``log p(q)`` for queries of shape (n, d) on the original scale."""
        return self.score_standardised(self.standardise(q))


def kernel_logsumexp(
    q: np.ndarray, points: np.ndarray, bandwidth: float, sq: np.ndarray | None = None,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """``logsumexp_i(−‖q − a_i‖² / 2h²)`` of standardised queries ``q`` (n, d) over the
    standardised ``points`` (m, d) (``sq``: their squared norms), by chunks of queries: the
    kernel sum of :class:`ExactKDE` without its constant (the out-of-core KDE adds up such
    sums over chunks of points). Computed in float64 on ``device`` (default: the one
    :func:`kernel_device` set, else the CPU); the result is a NumPy array."""
    dev = torch.device(device if device is not None else _DEVICE.get() or "cpu")
    q = torch.from_numpy(np.ascontiguousarray(q, dtype=float)).to(dev)
    pts = torch.from_numpy(np.ascontiguousarray(points, dtype=float)).to(dev)
    sq = (pts * pts).sum(1) if sq is None else torch.from_numpy(np.asarray(sq)).to(dev)
    out = torch.empty(len(q), dtype=torch.float64, device=dev)
    step = max(1, ExactKDE._CHUNK // max(len(pts), 1))
    scale = -0.5 / bandwidth**2
    for s in range(0, len(q), step):
        qc = q[s : s + step]
        d2 = torch.addmm(sq.unsqueeze(0), qc, pts.T, alpha=-2.0).add_(
            (qc * qc).sum(1, keepdim=True)
        )
        out[s : s + step] = torch.logsumexp(d2.clamp_(min=0.0).mul_(scale), dim=1)
    return out.cpu().numpy()


def _grid(points: np.ndarray, h: float) -> tuple[np.ndarray, float] | None:
    """Lower corner and step of a grid over the points ± the kernel's support, or ``None``
    when no step of at least ``h / RHO_MIN`` fits in :data:`BINNED_MAX_NODES` nodes."""
    return grid_of_range(points.min(0), points.max(0), h)


def grid_of_range(
    low: np.ndarray, high: np.ndarray, h: float
) -> tuple[np.ndarray, float] | None:
    """:func:`_grid` from the points' per-column minimum ``low`` and maximum ``high``."""
    lo = low - _TRUNCATE * h
    span = high + _TRUNCATE * h - lo
    d = len(low)
    # Nodes per axis at step δ: span / δ + 1; the same δ on every axis (isotropic kernel).
    step = max(h / RHO_TARGET, float(np.prod(span) / BINNED_MAX_NODES) ** (1.0 / d))
    while np.prod(np.floor(span / step) + 2) > BINNED_MAX_NODES:
        step *= 1.01
    if step > h / RHO_MIN:
        return None
    return lo, float(step)


def binned_feasible(points: np.ndarray, bandwidth: float) -> bool:
    """Whether :class:`BinnedKDE` can represent a KDE of these standardised points."""
    return points.shape[1] <= BINNED_MAX_DIM and _grid(points, bandwidth) is not None


def grid_shape(high: np.ndarray, lo: np.ndarray, step: float, h: float) -> tuple[int, ...]:
    """Nodes per axis of the grid from ``lo`` by ``step`` over points up to ``high``."""
    return tuple(int(s) for s in np.floor((high + _TRUNCATE * h - lo) / step) + 2)


def linear_binning(
    points: np.ndarray, lo: np.ndarray, step: float, shape: tuple[int, ...]
) -> np.ndarray:
    """Linear binning: each standardised point spreads its unit mass over the ``2^d``
    corners of its cell of the grid (``lo``, ``step``, ``shape``); flat counts (additive
    over chunks of points)."""
    d = len(shape)
    pos = (points - lo) / step
    base = np.floor(pos).astype(np.int64)
    frac = pos - base
    counts = np.zeros(int(np.prod(shape)))
    strides = np.array([int(np.prod(shape[j + 1 :])) for j in range(d)], dtype=np.int64)
    for corner in range(2**d):
        bits = np.array([(corner >> j) & 1 for j in range(d)])
        w = np.prod(np.where(bits, frac, 1.0 - frac), axis=1)
        idx = ((base + bits) * strides).sum(1)
        counts += np.bincount(idx, weights=w, minlength=counts.size)
    return counts


class BinnedKDE:
    """The KDE of an :class:`ExactKDE`, evaluated by linear binning, FFT convolution and
    interpolation of ``log p`` on a grid (``d ≤ 2``), exactly where the grid cannot.

    Parameters
    ----------
    exact : ExactKDE
        The estimator to approximate (its points, bandwidth and standardisation are shared,
        and it evaluates the queries the grid does not cover).
    low, high : ndarray of shape (d,), optional
        The standardised points' minimum and maximum per column (default: from
        ``exact.points``).
    counts : callable, optional
        ``counts(lo, step, shape)``: the points' linear-binning counts on that grid, flat
        (default: :func:`linear_binning` of ``exact.points``). With ``low``, ``high`` and
        ``counts`` the points need not be in memory: the out-of-core KDE sums the counts
        over chunks of points (binning is additive) and ``exact`` evaluates the tails.
    """

    def __init__(
        self, exact: ExactKDE, *, low: np.ndarray | None = None,
        high: np.ndarray | None = None, counts: Callable[..., np.ndarray] | None = None,
    ) -> None:
        h = exact.bandwidth
        if low is None or high is None:
            low, high = exact.points.min(0), exact.points.max(0)
        d = len(low)
        grid = grid_of_range(low, high, h) if d <= BINNED_MAX_DIM else None
        if grid is None:
            raise ValueError(
                f"a binned KDE needs at most {BINNED_MAX_DIM} dimensions and a grid of at most "
                f"{BINNED_MAX_NODES} nodes at {RHO_MIN} steps per bandwidth; got "
                f"{d} dimension(s). Use the exact KDE (method='exact')."
            )
        self.exact = exact
        self.lo, self.step = grid
        shape = grid_shape(high, self.lo, self.step, h)
        if counts is None:
            flat = linear_binning(exact.points, self.lo, self.step, shape)
        else:
            flat = counts(self.lo, self.step, shape)
        dens = flat.reshape(shape)
        # Separable Gaussian kernel sampled at the grid steps, truncated at 8.5 h.
        half = int(math.ceil(_TRUNCATE * h / self.step))
        taps = np.exp(-0.5 * (np.arange(-half, half + 1) * self.step / h) ** 2)
        for axis in range(d):
            kshape = [1] * d
            kshape[axis] = taps.size
            dens = fftconvolve(dens, taps.reshape(kshape), mode="same", axes=axis)
        # Binning and interpolation err by about (r / h)² / (8 ρ²) at r bandwidths from the
        # nearest point, i.e. by L / (4 ρ²) where the density is e^-L of its maximum: below
        # the level where that reaches TOLERANCE, queries are evaluated exactly.
        rho = h / self.step
        floor = max(_FLOOR, math.exp(-4.0 * rho**2 * TOLERANCE))
        top = float(dens.max())
        keep = dens > floor * top
        # Nodes below the floor hold the floor: a query whose cell touches one is evaluated
        # exactly (``self.floored`` interpolates to > 0 there).
        self.log_grid = np.log(np.maximum(dens, floor * top))
        self.floored = (~keep).astype(float)
        self.shape = shape
        # Unnormalised kernel sums → the exact estimator's normalisation.
        self.const = exact.const

    def score(self, q: np.ndarray) -> np.ndarray:
        """``log p(q)`` for queries of shape (n, d) on the original scale."""
        qs = self.exact.standardise(q)
        coords = ((qs - self.lo) / self.step).T
        upper = np.asarray(self.shape, dtype=float)[:, None] - 1.0
        inside = np.all((coords >= 0.0) & (coords <= upper), axis=0)
        out = np.full(len(qs), -np.inf)
        exact = ~inside
        if inside.any():
            c = coords[:, inside]
            out[inside] = map_coordinates(self.log_grid, c, order=1)
            exact[inside] = map_coordinates(self.floored, c, order=1) > 0.0
        out[~exact] += self.const
        if exact.any():
            out[exact] = self.exact.score_standardised(qs[exact])
        return out
