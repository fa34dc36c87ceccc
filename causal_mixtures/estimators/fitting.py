"""How a CausalGaussianMixture is fitted, step by step: the K grid, the initialisation, EM
with restarts, the weighted BIC, the Pyro fits started from EM, and the plug-in draws.

Each function reads the estimator's constructor parameters (never its fitted state) and
returns what the estimator stores; the fitters in :mod:`causal_mixtures.mixture` know
nothing of estimators.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from causal_mixtures._random import check_random_state
from causal_mixtures.estimators.plugin import PluginFrontDoor
from causal_mixtures.exceptions import ConvergenceWarning
from causal_mixtures.mixture.bayes import (
    check_nuts_size,
    fit_nuts,
    fit_posterior,
    likelihood_mass,
)
from causal_mixtures.mixture.em import weighted_em
from causal_mixtures.mixture.init import initial_mixture
from causal_mixtures.mixture.model import MixturePrior
from causal_mixtures.mixture.params import Mixture, n_parameters
from causal_mixtures.mixture.result import FitResult
from causal_mixtures.mixture.svi import fit_map
from causal_mixtures.weights.core import CausalWeights, as_mechanism, check_n_components, kish_ess
from causal_mixtures.weights.density import is_discrete

__all__ = ["bic_per_do", "fit_em", "fit_pyro", "not_converged_message", "plugin_rows"]

DEFAULT_MAX_AUTO_K = 10


def k_grid(est: Any, W: np.ndarray) -> np.ndarray:
    """Candidate K: the fixed ``n_components``, ``n_components_range``, or 1..10 bounded by
    the rows with positive weight."""
    if est.n_components != "auto":
        return np.asarray([est.n_components])
    if est.n_components_range is not None:
        return np.asarray(list(est.n_components_range))
    n_pos = (W > 0).sum(1)
    return np.arange(1, min(DEFAULT_MAX_AUTO_K, int(n_pos.min())) + 1)


def initial(
    est: Any, X: np.ndarray, Xt: torch.Tensor, W: np.ndarray, k: int, n_init: int,
    rng: np.random.Generator,
) -> Mixture:
    """The estimator's initialisation of ``n_init`` restarts per do value."""
    return initial_mixture(
        X, Xt, W, k, covariance_type=est.covariance_type, init_params=est.init_params,
        n_init=n_init, reg_covar=est.reg_covar, rng=rng, weights_init=est.weights_init,
        means_init=est.means_init, precisions_init=est.precisions_init,
    )


def fit_em_k(
    est: Any, X: np.ndarray, Xt: torch.Tensor, W: np.ndarray, k: int, rng: np.random.Generator,
    progress: Any,
) -> FitResult:
    """Weighted EM with ``n_init`` restarts for every do value at once; the best restart
    (largest weighted log-likelihood) of each do value is kept."""
    n_do, n_init = W.shape[0], est.n_init
    Wt = torch.tensor(W, dtype=Xt.dtype, device=Xt.device)
    init = initial(est, X, Xt, W, k, n_init, rng)

    def callback(it: int, objective: torch.Tensor) -> None:
        if progress is not None:
            progress.update(1)
            progress.set_postfix(K=k, objective=f"{float(objective.mean()):.4f}")

    res = weighted_em(
        Xt, Wt.repeat(n_init, 1), init, reg_covar=est.reg_covar, tol=est.tol,
        max_iter=est.max_iter, callback=callback,
    )
    if n_init == 1:
        return res
    lb = res.lower_bound.reshape(n_init, n_do)
    return res.select(lb.argmax(0) * n_do + torch.arange(n_do, device=lb.device))


def bic_per_do(est: Any, res: FitResult, k: int, d: int, ess: np.ndarray) -> np.ndarray:
    # The weighted log-likelihood is put on the scale of the data by the Kish ESS.
    total = ess * res.lower_bound.cpu().numpy()
    return -2.0 * total + n_parameters(k, d, est.covariance_type) * np.log(ess)


def fit_em(
    est: Any, X: np.ndarray, W: np.ndarray, rng: np.random.Generator, device: torch.device,
    verbose: bool, do_values: np.ndarray,
) -> tuple[FitResult, int, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """EM over the K grid: the result with the smallest BIC summed over do values, its K,
    its BIC per do value and, for ``n_components="auto"``, the grid and its BICs."""
    ess = kish_ess(W, axis=1)
    # X is a private float64 copy: share its memory instead of copying again.
    Xt = torch.from_numpy(X).to(device)
    grid = k_grid(est, W)
    check_n_components(int(grid.max()), W, do_values)
    progress = None
    if verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=len(grid) * est.max_iter, desc="weighted EM", leave=False)
    try:
        results, bics = [], []
        for k in grid.tolist():
            res = fit_em_k(est, X, Xt, W, int(k), rng, progress)
            results.append(res)
            bics.append(bic_per_do(est, res, int(k), X.shape[1], ess))
    finally:
        if progress is not None:
            progress.close()
    bics_arr = np.asarray(bics)
    best = int(bics_arr.sum(1).argmin())
    grid_info = (grid, bics_arr) if est.n_components == "auto" else None
    return results[best], int(grid[best]), bics_arr[best], grid_info


def fit_pyro(
    est: Any, X: np.ndarray, W: np.ndarray, device: torch.device, do_values: np.ndarray
) -> tuple[FitResult, int, MixturePrior | None, tuple | None]:
    """SVI-MAP, variational posterior or NUTS from the EM fit (``svi_init="em"``) or
    from the ``init_params`` initialisation."""
    if est.inference == "bayes" and est.guide == "nuts":
        check_nuts_size(len(X))
    if est.svi_init == "em":
        with warnings.catch_warnings():
            # EM is only the starting point here; convergence is judged on this fit.
            warnings.simplefilter("ignore", ConvergenceWarning)
            em, k, _, grid_info = fit_em(
                est, X, W, check_random_state(est.random_state), device, False, do_values
            )
        init = em.mixture
        rng = check_random_state(est.random_state)
    else:
        grid_info = None
        if est.n_components == "auto":
            raise ValueError(
                "n_components='auto' chooses K by the weighted BIC of EM fits; use "
                "svi_init='em' with it, or pass an int n_components."
            )
        rng = check_random_state(est.random_state)
        k = int(est.n_components)
        check_n_components(k, W, do_values)
        Xt0 = torch.tensor(X, dtype=torch.float64, device=device)
        init = initial(est, X, Xt0, W, k, 1, rng)
    Xt = torch.tensor(X, dtype=torch.float64, device=device)
    Wt = torch.tensor(W, dtype=torch.float64, device=device)
    mass = likelihood_mass(W, est.weight_mass if est.weight_mass is not None else "ess")
    common = dict(random_state=rng, verbose=bool(est.verbose))
    svi_opts = dict(
        subsample_size=est.subsample_size, n_steps=est.n_steps,
        learning_rate=est.learning_rate, tol=est.tol,
    )
    prior = None
    if est.inference == "svi":
        res = fit_map(Xt, Wt, init, **svi_opts, **common)
    else:
        prior = MixturePrior.from_data(Xt)
        if est.guide == "nuts":
            res = fit_nuts(Xt, Wt, init, mass=mass, prior=prior,
                           n_draws=est.n_posterior_draws, **common)
        else:
            res = fit_posterior(Xt, Wt, init, mass=mass, prior=prior, guide=est.guide,
                                n_draws=est.n_posterior_draws, **svi_opts, **common)
    return res, k, prior, grid_info


def plugin_rows(
    est: Any, X: np.ndarray, y: np.ndarray | None, mechanism: Any, cw: CausalWeights,
    weights: Any, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, PluginFrontDoor]:
    """Draws of the front-door formula for every do value, stacked, with indicator
    weights (row block j belongs to do value j), so one batched EM fits them all, and the
    fitted sampler."""
    if weights is not None or cw.estimand is None or cw.estimand.kind != "front_door":
        kind = "explicit weights" if cw.estimand is None else cw.estimand.kind
        raise ValueError(
            f"strategy='plugin' samples the front-door formula and needs a front-door "
            f"graph with the mechanism data; got {kind}. Use strategy='weighting'."
        )
    z = as_mechanism(mechanism, len(X))
    m = int(est.plugin_draws or max(len(X), 5000))
    sampler = PluginFrontDoor(
        est.plugin_components,
        discrete_cause=is_discrete(y),
        discrete_mechanism=is_discrete(z),
        random_state=int(rng.integers(0, 2**31 - 1)),
    ).fit(X, y, z)
    draws = np.concatenate([sampler.sample(m, v, rng) for v in cw.do_values.tolist()])
    return draws, np.kron(np.eye(cw.n_do), np.ones(m)), sampler  # (n_do, n_do * m) indicators


def not_converged_message(est: Any, res: FitResult, cw: CausalWeights) -> str:
    """What to tell the user when a fit did not converge for some do values."""
    bad = cw.do_values[~res.converged.cpu().numpy()].tolist()
    if est.inference == "em":
        msg = (
            f"weighted EM did not converge for do value(s) {bad} within max_iter="
            f"{est.max_iter} iterations (tol={est.tol}). Increase max_iter or tol, or "
            "check the weights (causal_weights_)."
        )
    elif res.info.get("guide") == "nuts":
        msg = (
            "NUTS had divergent transitions, so its draws may miss parts of the posterior. "
            "Increase n_posterior_draws (longer warm-up), or use an SVI guide."
        )
    else:
        what = "SVI" if est.inference == "svi" else "SVI (posterior)"
        msg = (
            f"{what} did not converge for do value(s) {bad} within n_steps={est.n_steps} "
            f"(tol={est.tol}). Increase n_steps or learning_rate, or check the weights "
            "(causal_weights_)."
        )
    return msg
