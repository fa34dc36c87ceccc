"""SVI-MAP: the weighted maximum-likelihood optimum of the Pyro mixture model by stochastic
variational inference with an ``AutoDelta`` guide (MAP under flat priors), warm-started from
given parameters. Minibatches of rows (``subsample_size``) keep memory bounded; a full-batch
fit takes trust-region Newton steps on the same ELBO (``optimizer="auto"``), see
``docs/inference.md``.
"""

from __future__ import annotations

import numpy as np
import torch
from pyro.infer.autoguide import AutoDelta, init_to_value

from causal_mixtures._random import RandomState, check_random_state, derive_seed
from causal_mixtures.mixture.model import CausalMixtureModel, params_to_sites, sites_to_params
from causal_mixtures.mixture.optim import (
    NEWTON_MAX_PARAMETERS,
    Standardizer,
    isolated,
    normalise_weights,
    progress_bar,
    run_newton,
    run_svi,
)
from causal_mixtures.mixture.params import Mixture
from causal_mixtures.mixture.result import FitResult, weighted_objective
from causal_mixtures.mixture.sharded import Shard

__all__ = ["OPTIMIZERS", "fit_map"]

#: ``fit_map(optimizer=...)``: ``"auto"`` is ``"newton"`` for a full-batch fit with at most
#: ``NEWTON_MAX_PARAMETERS`` unconstrained parameters per do value, ``"adam"`` otherwise.
OPTIMIZERS = ("auto", "newton", "adam")


def fit_map(
    X: torch.Tensor,
    W: torch.Tensor,
    init: Mixture,
    *,
    subsample_size: int | None = None,
    n_steps: int = 1000,
    learning_rate: float = 0.01,
    tol: float = 1e-3,
    random_state: RandomState = None,
    verbose: bool = False,
    optimizer: str = "auto",
    rtol: float = 1e-6,
    hessian_rows: int = 5_000,
    shard: Shard | None = None,
) -> FitResult:
    """Weighted maximum likelihood (MAP under flat priors) by SVI with ``AutoDelta``.

    Parameters
    ----------
    X : Tensor of shape (n, d)
    W : Tensor of shape (n_do, n)
        Non-negative causal weights; each row is normalised here.
    init : Mixture
        Starting point (``init_to_value``), e.g. an EM fit or a weighted k-means++ seeding.
    subsample_size : int, optional
        Rows per step (uniform minibatches, log-likelihood scaled by ``n / subsample_size``).
    n_steps : int, default=1000
        Maximum number of steps (Adam steps, or full-batch evaluations of the ELBO and its
        gradient for ``"newton"``, the starting point included).
    learning_rate : float, default=0.01
        Initial Adam learning rate (in standardised coordinates); decays geometrically to a
        tenth of it over ``n_steps``. Not used by ``"newton"``.
    tol : float, default=1e-3
        Adam: convergence when, for every intervention value, the mean objective over the
        last window of steps changed by less than ``tol`` (or, with minibatches, by less
        than two standard errors of their noise). A full-batch run stops there; a minibatch
        run (``subsample_size < n``) always runs ``n_steps`` (its noise can hide a slow
        climb) and returns the parameters averaged over the second half of the run.
        ``"newton"``: convergence when the Newton decrement (the gain a full Newton step
        predicts) is below ``min(tol, rtol · |objective|)`` for every intervention value.
    random_state : int, Generator or None
    verbose : bool, default=False
        Progress bar.
    optimizer : {"auto", "newton", "adam"}, default="auto"
        ``"adam"``: Adam steps on the ELBO (minibatch or full batch). ``"newton"``:
        trust-region Newton steps on the full-batch ELBO, its gradient from the
        Pyro traces on all rows and its curvature from the Hessian of the same ELBO on
        ``hessian_rows`` rows (:func:`~causal_mixtures.mixture.optim.run_newton`).
        ``"auto"``: ``"newton"`` for a full-batch fit with at most
        ``NEWTON_MAX_PARAMETERS`` (256) unconstrained parameters per intervention value,
        ``"adam"`` otherwise.
    rtol : float, default=1e-6
        ``"newton"`` only: the relative part of the stopping rule (see ``tol``).
    hessian_rows : int, default=5000
        ``"newton"`` only: rows of the uniform subsample on which the Hessian is formed.
    shard : Shard, optional
        Data-parallel SVI: ``X`` and ``W`` are this process's rows of all the rows held by
        the processes of a group (:class:`~causal_mixtures.mixture.sharded.Shard`), the
        other arguments the same in every process. The weights' totals, the
        standardisation, every step's gradients and objective and the Newton Hessian are
        summed over the processes, so every process returns the same fit: the one of all
        the rows (to rounding; with ``subsample_size``, every process draws its share of
        each minibatch from its own rows). ``None``: one process holds all the rows.

    Returns
    -------
    FitResult
        ``history`` of shape (n_steps_run, n_do): the objective ``Σ_n w̃_jn log q_j(x_n)``.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}; got {optimizer!r}.")
    n_total = X.shape[0] if shard is None else shard.n_total
    if shard is not None and shard.n_rows != X.shape[0]:
        raise ValueError(
            f"shard.n_rows must be this process's rows, X.shape[0]={X.shape[0]}; got "
            f"{shard.n_rows}. Build the Shard from the rows passed as X."
        )
    full_batch = subsample_size is None or subsample_size >= n_total
    if optimizer == "newton" and not full_batch:
        raise ValueError(
            "optimizer='newton' takes full-batch steps; use optimizer='adam' (or 'auto') with "
            f"subsample_size={subsample_size} < n_samples={n_total}."
        )
    if int(hessian_rows) < 1:
        raise ValueError(f"hessian_rows must be a positive int; got {hessian_rows!r}.")
    W_raw = W
    W = normalise_weights(X, W)  # (checks the shape)
    if shard is not None:  # normalised over all the shards' rows
        W = shard.normalise(W_raw)
    rng = check_random_state(random_state)
    # With a shard, the minibatches are every process's own (its seed and rank), the
    # Hessian rows one draw of rng shared by all (rng is then where one process's is).
    torch_source = rng if shard is None else np.random.default_rng([derive_seed(rng),
                                                                     shard.rank])
    ct = init.covariance_type
    n_do, k = init.weights.shape
    d = X.shape[1]
    std = Standardizer.from_data(X) if shard is None else Standardizer(*shard.standardization(X))
    Xs = std.data(X)
    sites0 = params_to_sites(*std.to_std(init.weights, init.means, init.covariances), ct)
    batch = subsample_size
    if shard is not None and not full_batch:
        batch = shard.subsample_size(subsample_size)
    model = CausalMixtureModel(n_do, k, d, ct, prior=None, mass=1.0, subsample_size=batch)
    offset = torch.full((n_do,), std.log_jacobian(d), dtype=X.dtype, device=X.device)
    progress = progress_bar(verbose, n_steps, "SVI (MAP)")
    try:
        with isolated(torch_source, X.device):
            guide = AutoDelta(model, init_loc_fn=init_to_value(values=sites0, fallback=None))
            if optimizer == "auto":
                guide(Xs, W)  # sets up the unconstrained parameters
                size = sum(p[0].numel() for p in guide.parameters())
                optimizer = "newton" if full_batch and size <= NEWTON_MAX_PARAMETERS else "adam"
            if optimizer == "newton":
                history, converged, steps = run_newton(
                    model, guide, (Xs, W), n_steps=n_steps, tol=tol, rtol=rtol,
                    offset=offset.cpu(), progress=progress, rng=rng, hessian_rows=hessian_rows,
                    shard=shard,
                )
            else:
                history, converged, steps = run_svi(
                    model,
                    guide,
                    (Xs, W),
                    n_steps=n_steps,
                    learning_rate=learning_rate,
                    tol=tol,
                    per_do=True,
                    offset=offset.cpu(),
                    progress=progress,
                    early_stop=full_batch,
                    shard=shard,
                    noisy=None if shard is None else not full_batch,
                )
            with torch.no_grad():
                sites = {name: v.detach().clone() for name, v in guide.median(Xs, W).items()}
    finally:
        if progress is not None:
            progress.close()
    weights, means, covs = std.to_raw(*sites_to_params(sites, ct))
    mixture = Mixture(weights, means, covs, ct)
    return FitResult(
        mixture,
        (weighted_objective(X, W_raw, mixture) if shard is None
         else shard.weighted_objective(X, W_raw, mixture)),
        converged,
        torch.full((n_do,), steps, dtype=torch.long),
        history,
    )
