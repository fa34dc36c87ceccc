"""The one result type of every fitter (EM, SVI-MAP, variational posterior, NUTS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from causal_mixtures.mixture.params import Mixture

__all__ = ["FitResult", "replace_members", "result_in_float64", "weighted_objective"]


@dataclass
class FitResult:
    """What a fitter returns: the same fields whichever fitter ran.

    Attributes
    ----------
    mixture : Mixture
        Final parameters, torch, batch ``(B,)`` (one member per do value and restart); for a
        posterior, its mean parameters.
    lower_bound : Tensor of shape (B,)
        Weighted log-likelihood ``Σ_n w̃_n log q(x_n)`` at ``mixture``.
    converged : Tensor of shape (B,), bool
    n_iter : Tensor of shape (B,), long
        Steps (EM iterations, optimiser steps or MCMC transitions) run per member.
    history : Tensor of shape (T, B) or (T,)
        The objective trace: the weighted log-likelihood per member (EM, MAP, NUTS) or the
        ELBO of the whole model (variational posterior).
    posterior : Mixture or None
        Posterior draws, NumPy, batch ``(chain, draw, B)``; ``None`` for point fits.
    info : dict
        Fitter-specific facts for the estimator to record (e.g. ``{"guide": "mvn"}``).
    """

    mixture: Mixture
    lower_bound: torch.Tensor
    converged: torch.Tensor
    n_iter: torch.Tensor
    history: torch.Tensor
    posterior: Mixture | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def select(self, index: torch.Tensor) -> FitResult:
        """The batch members ``index`` (e.g. the best restart of every do value)."""
        history = self.history[:, index] if self.history.dim() == 2 else self.history
        posterior = None
        if self.posterior is not None:
            idx = index.cpu().numpy()
            posterior = self.posterior._map(lambda a: a[:, :, idx])
        return FitResult(
            self.mixture.select(index), self.lower_bound[index], self.converged[index],
            self.n_iter[index], history, posterior, dict(self.info),
        )


def result_in_float64(res: FitResult) -> FitResult:
    """``res`` with its parameters and objectives in float64 (a float32 fit's result, for
    the estimator's attributes and everything computed from them)."""
    if res.lower_bound.dtype == torch.float64:
        return res

    def f64(mix: Mixture | None) -> Mixture | None:
        return None if mix is None else mix._map(lambda a: a.to(torch.float64))

    return FitResult(f64(res.mixture), res.lower_bound.double(), res.converged, res.n_iter,
                     res.history.double(), f64(res.posterior), dict(res.info))


def replace_members(res: FitResult, index: list[int], other: FitResult) -> FitResult:
    """``res`` with its members ``index`` replaced by the members of ``other`` (in order);
    objective traces of different lengths are padded with their last value."""
    idx = torch.as_tensor(index, dtype=torch.long, device=res.lower_bound.device)

    def put(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = a.clone()
        out[idx] = b.to(out)
        return out

    m, o = res.mixture, other.mixture
    mixture = Mixture(
        put(m.weights, o.weights), put(m.means, o.means), put(m.covariances, o.covariances),
        m.covariance_type, put(m.precisions_cholesky, o.precisions_cholesky),
    )
    h, g = res.history, other.history
    steps = max(h.shape[0], g.shape[0])

    def pad(a: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, a[-1:].expand(steps - a.shape[0], -1)]) if a.shape[0] < steps else a

    h, g = pad(h), pad(g)
    history = h.clone()
    history[:, idx] = g.to(h)
    return FitResult(
        mixture, put(res.lower_bound, other.lower_bound), put(res.converged, other.converged),
        put(res.n_iter, other.n_iter), history, None, dict(res.info),
    )


def weighted_objective(X: torch.Tensor, W: torch.Tensor, mixture: Mixture) -> torch.Tensor:
    """``Σ_n w̃_n log q(x_n)`` per member (weights normalised here; zero-weight rows add
    nothing even where their density underflows)."""
    Wn = W / W.sum(-1, keepdim=True)
    ll = mixture.log_prob(X)
    return torch.where(Wn > 0, Wn * ll, torch.zeros_like(ll)).sum(-1)
