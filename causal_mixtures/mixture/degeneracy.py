"""When the data cannot support a mixture: how many components the effective rows allow,
and which fitted components are degenerate (resting on too few effective rows).

A full covariance in ``d`` dimensions is singular unless it rests on at least ``d + 1``
rows; a diagonal or spherical one needs two. With importance weights the rows that count are
the effective ones: a component holding a share ``π_k`` of do value ``j``'s mass rests on
about ``π_k · ESS_j`` rows, and after the fit exactly the Kish ESS of ``w̃_n γ_nk``. Below
the bound its covariance collapses onto the ``reg_covar`` floor (a likelihood spike on a few
heavy rows) and its draws are jittered copies of training rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from causal_mixtures.mixture.params import LogProbKernel, Mixture, chunk_size

__all__ = [
    "Degeneracy",
    "component_ess",
    "component_ess_chunks",
    "degeneracy_of",
    "find_degeneracy",
    "max_components",
    "rows_per_component",
]

def rows_per_component(n_features: int, covariance_type: str) -> int:
    """Effective rows one component needs for a non-singular covariance."""
    return n_features + 1 if covariance_type == "full" else 2


def max_components(ess: np.ndarray, n_features: int, covariance_type: str) -> int:
    """The largest K whose components can each rest on enough effective rows, for every do
    value (0 when not even one component can)."""
    # The 1e-9 forgives rounding: ESS of five unit weights is 5 - 1e-15.
    return int(np.floor(np.min(ess) / rows_per_component(n_features, covariance_type) + 1e-9))


@dataclass(frozen=True)
class Degeneracy:
    """Degenerate components of a fit: ``(do index, component, effective rows)``."""

    components: list[tuple[int, int, float]]
    rows_needed: int

    def __bool__(self) -> bool:
        return bool(self.components)


def component_ess(mixture: Mixture, X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Kish effective rows of every component, ``(Σ_n r_nk)² / Σ_n r_nk²`` with
    ``r_nk = w̃_n γ_nk``: shape (B, K). One chunked pass over the rows."""
    Wn = W / W.sum(-1, keepdim=True)
    b, k = mixture.weights.shape
    step = chunk_size(X.shape[0], b, k, mixture.n_features, mixture.covariance_type)
    return component_ess_chunks(
        mixture, ((X[s : s + step], Wn[:, s : s + step]) for s in range(0, X.shape[0], step))
    )


def component_ess_chunks(
    mixture: Mixture, chunks: Iterable[tuple[torch.Tensor, torch.Tensor]],
    reduce: Callable[..., Any] | None = None,
) -> torch.Tensor:
    """:func:`component_ess` from chunks of ``(rows (c, d), normalised weights (B, c))``
    (the out-of-core fit streams them); ``reduce(*tensors)``, when given, sums the two
    sums over the processes holding other rows (the distributed fit)."""
    kernel = LogProbKernel(mixture)
    s1 = torch.zeros(mixture.weights.shape, dtype=mixture.means.dtype,
                     device=mixture.means.device)
    s2 = torch.zeros_like(s1)
    for xc, wc in chunks:
        lp = kernel(xc)  # (B, c, K)
        r = torch.softmax(lp, -1) * wc.unsqueeze(-1)
        s1 += r.sum(1)
        s2 += (r * r).sum(1)
    if reduce is not None:
        s1, s2 = reduce(s1, s2)
    return s1 * s1 / torch.clamp(s2, min=torch.finfo(s1.dtype).tiny)


def find_degeneracy(mixture: Mixture, X: torch.Tensor, W: torch.Tensor) -> Degeneracy:
    """Components resting on fewer effective rows than their covariance needs.

    Parameters
    ----------
    mixture : Mixture
        Point fit (torch), batch (B,), in the coordinates of ``X``.
    X : Tensor of shape (n, d)
    W : Tensor of shape (B, n)
        The weights the mixtures were fitted with.
    """
    return degeneracy_of(mixture, component_ess(mixture, X, W))


def degeneracy_of(mixture: Mixture, component_rows: torch.Tensor) -> Degeneracy:
    """The :class:`Degeneracy` of ``mixture`` given its components' effective rows (B, K)."""
    need = rows_per_component(mixture.n_features, mixture.covariance_type)
    ess = component_rows.cpu().numpy()
    live = mixture.weights.cpu().numpy() > 0  # a dropped component (weight 0) is gone
    found = [
        (int(j), int(c), float(ess[j, c]))
        for j, c in np.argwhere((ess < need * (1 - 1e-9)) & live)
    ]
    return Degeneracy(found, need)
