"""``inference="svi"`` in :meth:`CausalGaussianMixture.fit_distributed
<causal_mixtures.CausalGaussianMixture.fit_distributed>`: the SVI-MAP fit of the rows
sharded over the processes of a group, warm-started from the distributed EM, as
:func:`~causal_mixtures.estimators.fitting.fit_pyro` starts the in-memory SVI from EM.

Every process holds its shard's rows (standardised) and causal weights in memory and
runs :func:`~causal_mixtures.mixture.svi.fit_map` with a
:class:`~causal_mixtures.mixture.sharded.Shard`: every step's gradients, objective and
Newton Hessian are all-reduced (:mod:`causal_mixtures.mixture.sharded`), so every process
ends with the same fit, the optimum of the single-process SVI of all the rows.
Details: ``docs/distributed.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from causal_mixtures._random import check_random_state
from causal_mixtures.estimators.fitting import weight_mass
from causal_mixtures.estimators.reduction import Reducer
from causal_mixtures.mixture.result import FitResult
from causal_mixtures.mixture.sharded import Shard
from causal_mixtures.mixture.svi import fit_map

__all__ = ["fit_svi_sharded", "sharded_mass"]


def sharded_mass(est: Any, ess: np.ndarray, n_total: int) -> np.ndarray:
    """The likelihood mass per do value (``likelihood_mass`` of all the shards' weights):
    ``n`` or the Kish ESS, from the reduced sums."""
    if weight_mass(est) == "n":
        return np.full(len(ess), float(n_total))
    return np.asarray(ess, dtype=np.float64).copy()


def fit_svi_sharded(
    est: Any, em: FitResult, chunks: Iterable[tuple[np.ndarray, np.ndarray]],
    reducer: Reducer, offset: int, n_total: int, device: torch.device,
) -> FitResult:
    """SVI-MAP of this process's rows from the EM fit ``em`` (standardised coordinates).

    ``chunks``: this process's rows, standardised, with their causal weights (n_do, c);
    ``offset``: the position of its first row among all the shards' rows (``n_total``).
    The seed is the estimator's ``random_state`` afresh, as in the in-memory fit (with
    ``random_state=None``, one draw in rank 0 shared by all).
    """
    xs, ws = [], []
    for x, w in chunks:
        xs.append(x)
        ws.append(w)
    X = torch.as_tensor(np.concatenate(xs), dtype=torch.float64, device=device)
    W = torch.as_tensor(np.concatenate(ws, axis=1), dtype=torch.float64, device=device)
    init = em.mixture.inside_simplex()  # dropped components: Pyro's Dirichlet needs w > 0
    rng = check_random_state(est.random_state)
    if est.random_state is None and reducer.world_size > 1:  # the same seed everywhere
        rng = np.random.default_rng(reducer.gather(int(rng.integers(2**63 - 1)))[0])
    shard = Shard(offset, X.shape[0], n_total, reducer.rank, reducer.sum)
    return fit_map(
        X, W, init, subsample_size=est.subsample_size, n_steps=est.n_steps,
        learning_rate=est.learning_rate, tol=est.tol, random_state=rng,
        verbose=bool(est.verbose) and reducer.rank == 0, shard=shard,
    )
