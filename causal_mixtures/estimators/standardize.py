"""The affine map every fit runs in: column means removed and one common scale, weighted by
the rows' total weight over the do values (translation- and scale-equivariant fits,
``reg_covar`` relative to the data)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from causal_mixtures.mixture.params import Mixture
from causal_mixtures.mixture.result import FitResult

__all__ = ["Standardization"]


@dataclass(frozen=True)
class Standardization:
    """The affine map ``x_std = (x − shift) / scale`` every fit runs in.

    ``shift`` is the column means and ``scale`` one number for all features (the root mean
    feature variance), both weighted by the rows' total weight over the do values, so that
    the fit is equivariant to any translation and any common rescaling of ``X``
    (``fit(a X + b)`` draws ``a · fit(X)`` draws ``+ b`` for ``a > 0``), a zero-weight row
    is a dropped row and an integer weight a repeated row; spherical covariances stay
    spherical, and ``reg_covar`` is relative to the data's variance: ``reg_covar · scale²``
    is added to every covariance in the data's units.
    """

    shift: np.ndarray
    scale: float
    #: Mean feature variance of each do value's weighted rows over ``scale²``: the factor of
    #: ``reg_covar`` per do value, so that a batched fit equals separate fits.
    relative_var: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray, W: np.ndarray) -> Standardization:
        """From the rows ``X`` and their weights ``W`` of shape (n_do, n)."""
        Wn = W / W.sum(1, keepdims=True)
        t = Wn.sum(0) / Wn.shape[0]
        shift = t @ X
        means = Wn @ X  # (n_do, d)
        # Centred second moments by chunks of rows (no (n, d) temporaries).
        sq_t, sq_j = np.zeros(X.shape[1]), np.zeros((W.shape[0], X.shape[1]))
        step = max(1, 2**20 // max(X.shape[1], 1))
        for s in range(0, len(X), step):
            c = X[s : s + step] - shift
            c *= c
            sq_t += t[s : s + step] @ c
            sq_j += Wn[:, s : s + step] @ c
        return cls.from_moments(shift, means, sq_j, sq_t, shift)

    @classmethod
    def from_moments(
        cls, centre: np.ndarray, means: np.ndarray, sq: np.ndarray,
        sq_total: np.ndarray | None = None, shift: np.ndarray | None = None,
    ) -> Standardization:
        """From weighted moments instead of rows (the out-of-core fit sums them over
        chunks): ``means`` (n_do, d) the weighted column means of every do value and ``sq``
        (n_do, d) their weighted mean squares about ``centre`` (d,) (any point near the
        data); ``sq_total`` the same about the shift and ``shift`` the mean of ``means``,
        when the caller has them."""
        means = np.asarray(means, dtype=float)
        if shift is None:
            shift = means.mean(0)
        delta = shift - np.asarray(centre, dtype=float)
        # Mean squares about the shift: Σ w̃ (x − s)² = Σ w̃ (x − c)² − 2 δ Σ w̃ (x − c) + δ².
        sq_j = sq - 2.0 * delta * (means - centre) + delta * delta
        if sq_total is None:
            sq_total = sq_j.mean(0)
        var = float(np.mean(sq_total))
        scale = math.sqrt(var) if var > 0 and math.isfinite(var) else 1.0
        var_j = np.mean(sq_j - (means - shift) ** 2, axis=1) / scale**2
        var_j = np.where(np.isfinite(var_j) & (var_j > 0), var_j, 1.0)
        return cls(shift, scale, var_j)

    def reg_covar(
        self, reg_covar: float, n_init: int, like: torch.Tensor, do: list[int] | None = None
    ) -> torch.Tensor:
        """``reg_covar`` in the fit's coordinates, one value per (restart, do value), for
        all do values or the ones listed in ``do``."""
        rel = self.relative_var if do is None else self.relative_var[do]
        reg = torch.tensor(reg_covar * rel, dtype=like.dtype, device=like.device)
        return reg.repeat(n_init)

    def data(self, X: np.ndarray) -> np.ndarray:
        out = X - self.shift
        out /= self.scale
        return out

    def means(self, means: Any) -> np.ndarray:
        """User means in the fit's coordinates."""
        return (np.asarray(means, dtype=float) - self.shift) / self.scale

    def precisions(self, precisions: Any) -> np.ndarray:
        """User precisions (or inverse variances) in the fit's coordinates."""
        return np.asarray(precisions, dtype=float) * self.scale**2

    def mixture_to_raw(self, mix: Mixture) -> Mixture:
        """A mixture fitted in the standardised coordinates, in the data's."""
        s = self.scale
        shift = self.shift if not mix.is_torch else torch.as_tensor(
            self.shift, dtype=mix.means.dtype, device=mix.means.device
        )
        pc = mix.precisions_cholesky
        return Mixture(
            mix.weights, shift + s * mix.means, s * s * mix.covariances, mix.covariance_type,
            None if pc is None else pc / s, is_posterior=mix.is_posterior,
            draw_axes=mix.draw_axes,
        )

    def result_to_raw(self, res: FitResult, d: int, mass: np.ndarray | None = None) -> FitResult:
        """Parameters and objectives on the data's scale: log-densities gain the Jacobian
        ``−d log(scale)`` (per unit of likelihood mass for a whole-model ELBO)."""
        jac = -d * math.log(self.scale)
        history = res.history
        if history.dim() == 1:  # the ELBO of the whole model, likelihood scaled by the mass
            history = history + jac * float(np.sum(mass if mass is not None else 1.0))
        else:
            history = history + jac
        return FitResult(
            self.mixture_to_raw(res.mixture), res.lower_bound + jac, res.converged, res.n_iter,
            history, None if res.posterior is None else self.mixture_to_raw(res.posterior),
            dict(res.info),
        )
