"""Rows sharded over processes for the Pyro MAP fit (data-parallel SVI): this process's
place among all the rows and the sum over the processes, and the whole-data quantities
that :func:`~causal_mixtures.mixture.svi.fit_map` reads from its rows (the weights'
totals, the standardisation, the objective), computed from every shard's sums.

The optimisers (:func:`~causal_mixtures.mixture.optim.run_svi`,
:func:`~causal_mixtures.mixture.optim.run_newton`) take a :class:`Shard`: every process
evaluates the ELBO on its own rows (the likelihood is a sum over rows; the prior and
guide terms are counted by rank 0 only), and the gradients, objectives and Hessians are
summed with ``shard.reduce`` (an ``all_reduce``) before any step, Pyro's documented route
for data-parallel SVI (the gradients all-reduced after ``backward``, as Horovod and
``DistributedDataParallel`` do). Every process then takes the same step from the same
numbers and holds the same parameters. Details: ``docs/distributed.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from causal_mixtures.mixture.params import Mixture

__all__ = ["Shard"]


def _identity(*tensors: Any) -> list[Any]:
    return list(tensors)


@dataclass(frozen=True)
class Shard:
    """This process's rows: positions ``[offset, offset + n_rows)`` of ``n_total`` rows
    held by the processes of a group, in rank order.

    Attributes
    ----------
    offset : int
        Position of this process's first row among all the rows.
    n_rows : int
        Rows held by this process (at least one).
    n_total : int
        Rows held by all the processes.
    rank : int, default=0
        This process's rank; rank 0 counts the prior and guide terms of the ELBO.
    reduce : callable, default=identity
        ``reduce(*tensors) -> list``: each tensor summed over the processes (e.g.
        :meth:`ProcessGroupReducer.sum
        <causal_mixtures.estimators.reduction.ProcessGroupReducer.sum>`), returned with
        its dtype and device; the same in every process.
    """

    offset: int
    n_rows: int
    n_total: int
    rank: int = 0
    reduce: Callable[..., list[Any]] = _identity

    def __post_init__(self) -> None:
        if not (0 <= self.offset and 1 <= self.n_rows and self.offset + self.n_rows
                <= self.n_total):
            raise ValueError(
                "a Shard needs 0 <= offset, 1 <= n_rows and offset + n_rows <= n_total; got "
                f"offset={self.offset}, n_rows={self.n_rows}, n_total={self.n_total}. Pass "
                "this process's first row and row count among all the processes' rows."
            )

    def local_rows(self, rows: np.ndarray) -> np.ndarray:
        """The positions among this process's rows of the sorted global positions
        ``rows`` that fall in this shard."""
        lo, hi = np.searchsorted(rows, [self.offset, self.offset + self.n_rows])
        return rows[lo:hi] - self.offset

    def subsample_size(self, subsample_size: int) -> int:
        """This shard's share of a minibatch of ``subsample_size`` rows: proportional to
        its rows (at least one, at most all of them), so that the sum over the processes
        of the minibatch estimates (each scaled by ``n_rows / share``) is unbiased."""
        share = round(int(subsample_size) * self.n_rows / self.n_total)
        return int(min(self.n_rows, max(1, share)))

    def standardization(self, X: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The shift and scale of :meth:`Standardizer.from_data
        <causal_mixtures.mixture.optim.Standardizer.from_data>` of all the shards' rows
        (two sums over the processes: the column sums, then the squared deviations from
        their mean)."""
        n = torch.tensor([float(len(X))], dtype=X.dtype, device=X.device)
        col, n = self.reduce(X.sum(0), n)
        mean = col / n
        (sq,) = self.reduce(((X - mean) ** 2).sum(0))
        var = (sq / n).mean()
        scale = float(torch.sqrt(var)) if float(var) > 0 else 1.0
        return mean, scale

    def normalise(self, W: torch.Tensor) -> torch.Tensor:
        """``W`` (n_do, n_rows) divided by the totals of its rows over all the shards."""
        (total,) = self.reduce(W.sum(-1, keepdim=True))
        return W / total

    def weighted_objective(self, X: torch.Tensor, W: torch.Tensor, mixture: Mixture
                           ) -> torch.Tensor:
        """:func:`~causal_mixtures.mixture.result.weighted_objective` of all the shards'
        rows: ``Σ_n w̃_n log q(x_n)`` per member, the weights normalised over all rows."""
        Wn = self.normalise(W)
        ll = mixture.log_prob(X)
        (out,) = self.reduce(torch.where(Wn > 0, Wn * ll, torch.zeros_like(ll)).sum(-1))
        return out
