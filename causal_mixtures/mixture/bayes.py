"""Bayesian fits of the Pyro mixture model: a variational posterior (multivariate-normal,
low-rank or diagonal guide, started from the Laplace approximation) or NUTS for small data,
and posterior-predictive datasets through :class:`pyro.infer.Predictive`.

The causal weights are normalised, so the likelihood is put on the scale of a sample size
(the *weight mass*) before it meets the prior: ``"n"`` (the number of rows) or ``"ess"``
(the Kish effective sample size, the default: honest posterior widths for importance-weighted
data). See ``docs/inference.md``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyro
import torch
from pyro.distributions import constraints
from pyro.infer.autoguide import (
    AutoDiagonalNormal,
    AutoLaplaceApproximation,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
    init_to_value,
)
from pyro.nn import PyroParam

from causal_mixtures._random import RandomState, check_random_state
from causal_mixtures.mixture.model import (
    CausalMixtureModel,
    MixturePrior,
    params_to_sites,
    sites_to_params,
)
from causal_mixtures.mixture.optim import (
    Standardizer,
    as_mass,
    isolated,
    normalise_weights,
    progress_bar,
    run_svi,
)
from causal_mixtures.mixture.params import Mixture
from causal_mixtures.mixture.result import FitResult, weighted_objective
from causal_mixtures.weights.core import kish_ess

__all__ = [
    "AUTO_MVN_MAX_DIM",
    "GUIDES",
    "LAPLACE_MAX_DIM",
    "NUTS_MAX_ROWS",
    "WEIGHT_MASS",
    "check_nuts_size",
    "fit_nuts",
    "fit_posterior",
    "likelihood_mass",
    "posterior_predictive",
]

GUIDES = ("auto", "mvn", "lowrank", "diagonal", "nuts")
WEIGHT_MASS = ("n", "ess")
#: Largest number of rows for ``guide="nuts"``: every leapfrog step evaluates all rows, and
#: NUTS took 100 s for 2 × 1000 draws on a 600-row 3-component mixture on 2 cores.
NUTS_MAX_ROWS = 2000
#: ``guide="auto"`` uses a full multivariate normal up to this many unconstrained
#: parameters, and a low-rank-plus-diagonal one above.
AUTO_MVN_MAX_DIM = 200
#: The Gaussian guides start from the Laplace approximation up to this many unconstrained
#: parameters (its Hessian costs one backward pass per parameter); above, from a heuristic
#: scale, and then SVI runs all ``n_steps``.
LAPLACE_MAX_DIM = 300


def likelihood_mass(W: np.ndarray, weight_mass: str) -> np.ndarray:
    """The likelihood mass per intervention value (see the module docstring).

    Parameters
    ----------
    W : ndarray of shape (n_do, n)
        Non-negative causal weights (any normalisation).
    weight_mass : {"n", "ess"}

    Returns
    -------
    ndarray of shape (n_do,)
        ``n`` for every intervention value, or the Kish ESS ``(Σ w)² / Σ w²`` of each row.
    """
    if weight_mass == "n":
        return np.full(W.shape[0], float(W.shape[1]))
    if weight_mass == "ess":
        return kish_ess(W, axis=1)
    raise ValueError(f"weight_mass must be one of {list(WEIGHT_MASS)}; got {weight_mass!r}.")


def _laplace(model: CausalMixtureModel, init_loc_fn: Any, args: tuple) -> tuple | None:
    """Laplace approximation at the starting point: ``(scale, scale_tril)`` of the inverse
    Hessian of ``−log p(x, θ)`` in the unconstrained space (as
    :meth:`AutoLaplaceApproximation.laplace_approximation`), or None when the Hessian is not
    positive definite there (e.g. a start far from a mode)."""
    lap = AutoLaplaceApproximation(model, init_loc_fn=init_loc_fn)
    lap(*args)
    try:
        gaussian = lap.laplace_approximation(*args)
    except (RuntimeError, ValueError):  # torch.linalg.LinAlgError is a RuntimeError
        return None
    scale, tril = gaussian.scale.detach().clone(), gaussian.scale_tril.detach().clone()
    if not (bool(torch.isfinite(scale).all()) and bool(torch.isfinite(tril).all())):
        return None
    return scale, tril


def _gaussian_guide(
    kind: str,
    model: CausalMixtureModel,
    init_loc_fn: Any,
    init_scale: float,
    args: tuple,
    laplace: bool = True,
) -> Any:
    """An SVI guide located at ``init_loc_fn``'s values, with its scale taken from the
    Laplace approximation there when that exists (``init_scale`` otherwise), so the
    optimisation starts close to the posterior instead of having to grow or shrink a
    guess. Returns the guide and the Laplace standard deviations (or None)."""
    laplace = _laplace(model, init_loc_fn, args) if laplace else None
    loc_scale = None
    if kind == "mvn":
        g = AutoMultivariateNormal(model, init_loc_fn=init_loc_fn, init_scale=init_scale)
    elif kind == "lowrank":
        g = AutoLowRankMultivariateNormal(model, init_loc_fn=init_loc_fn, init_scale=init_scale)
    else:
        g = AutoDiagonalNormal(model, init_loc_fn=init_loc_fn, init_scale=init_scale)
    g(*args)
    if laplace is not None:
        scale, tril = laplace
        if kind == "mvn":
            g.scale = PyroParam(scale, g.scale_constraint)
            g.scale_tril = PyroParam(tril, constraints.unit_lower_cholesky)
        elif kind == "lowrank":
            # cov = diag(s)(F Fᵀ + I)diag(s) with E[F Fᵀ] = I at initialisation.
            g.scale = PyroParam(scale * 0.5**0.5, g.scale_constraint)
        else:
            g.scale = PyroParam(scale, g.scale_constraint)
        loc_scale = scale
    return g, loc_scale


def _resolve_guide(guide: str, latent_dim: int) -> str:
    if guide == "auto":
        return "mvn" if latent_dim <= AUTO_MVN_MAX_DIM else "lowrank"
    return guide


def _bayes_setup(
    X: torch.Tensor, init: Mixture, prior: Any, mass: Any, subsample_size: int | None
) -> tuple[Standardizer, torch.Tensor, torch.Tensor, dict, CausalMixtureModel]:
    """Shared by the guide and NUTS fits: standardised data, the prior on that scale, the
    likelihood mass, the initial sites and the Pyro model."""
    n_do, k = init.weights.shape
    std = Standardizer.from_data(X)
    if prior is None:
        prior = MixturePrior.from_data(X)
    prior_s = prior.affine(-std.shift / std.scale, 1.0 / std.scale)
    mass_t = as_mass(mass, X)
    ct = init.covariance_type
    sites0 = params_to_sites(*std.to_std(init.weights, init.means, init.covariances), ct)
    model = CausalMixtureModel(
        n_do, k, X.shape[1], ct, prior=prior_s, mass=mass_t, subsample_size=subsample_size
    )
    return std, std.data(X), mass_t, sites0, model


def fit_posterior(
    X: torch.Tensor,
    W: torch.Tensor,
    init: Mixture,
    *,
    mass: np.ndarray | torch.Tensor,
    prior: MixturePrior | None = None,
    guide: str = "auto",
    subsample_size: int | None = None,
    n_steps: int = 1000,
    learning_rate: float = 0.01,
    tol: float = 1e-3,
    n_draws: int = 200,
    random_state: RandomState = None,
    verbose: bool = False,
) -> FitResult:
    """Variational posterior over the mixture parameters (SVI with a Gaussian guide).

    Parameters
    ----------
    X, W, init, subsample_size, n_steps, learning_rate, random_state, verbose
        As in :func:`fit_map`. ``init`` sets the guide's location.
    mass : array of shape (n_do,)
        Likelihood mass per intervention value (:func:`likelihood_mass`).
    prior : MixturePrior, optional
        In the coordinates of ``X``; default :meth:`MixturePrior.from_data`.
    guide : {"auto", "mvn", "lowrank", "diagonal"}, default="auto"
        :class:`~pyro.infer.autoguide.AutoMultivariateNormal`,
        :class:`~pyro.infer.autoguide.AutoLowRankMultivariateNormal` or
        :class:`~pyro.infer.autoguide.AutoDiagonalNormal`; ``"auto"`` is ``"mvn"`` up to
        ``AUTO_MVN_MAX_DIM`` unconstrained parameters, ``"lowrank"`` above.
    tol : float, default=1e-3
        Convergence when the ELBO per unit of likelihood mass changed by less than ``tol``
        between the last two windows of steps, or by less than two standard errors.
    n_draws : int, default=200
        Posterior draws stored in ``posterior``.

    Returns
    -------
    FitResult
        ``history`` of shape (n_steps_run,): the ELBO (nats) on the scale of the data;
        ``info["guide"]``: the guide used.
    """
    W_raw = W
    W = normalise_weights(X, W)
    rng = check_random_state(random_state)
    ct = init.covariance_type
    d = X.shape[1]
    n_do = init.weights.shape[0]
    std, Xs, mass_t, sites0, model = _bayes_setup(X, init, prior, mass, subsample_size)
    latent_dim = sum(int(np.prod(v.shape)) for v in sites0.values())
    guide = _resolve_guide(guide, latent_dim)
    # Fallback when the Laplace approximation fails: the posterior standard deviation of an
    # unconstrained parameter is about 1 / sqrt(mass · π_k); start a little narrower.
    init_scale = float(min(0.1, 0.5 / math.sqrt(float(mass_t.max()))))
    init_loc_fn = init_to_value(values=sites0, fallback=None)
    offset = torch.tensor([float(mass_t.sum()) * std.log_jacobian(d)], dtype=X.dtype)
    progress = progress_bar(verbose, n_steps, "SVI (posterior)")
    try:
        with isolated(rng, X.device):
            g, loc_scale = _gaussian_guide(
                guide,
                model,
                init_loc_fn,
                init_scale,
                (Xs, W),
                laplace=latent_dim <= LAPLACE_MAX_DIM,
            )
            history, converged, steps = run_svi(
                model,
                g,
                (Xs, W),
                n_steps=n_steps,
                learning_rate=learning_rate,
                tol=tol * float(mass_t.sum()),
                per_do=False,
                offset=offset,
                progress=progress,
                early_stop=loc_scale is not None,
                loc_scale=loc_scale,
            )
            with torch.no_grad():
                draws = pyro.infer.Predictive(
                    model,
                    guide=g,
                    num_samples=n_draws,
                    return_sites=model.latent_sites,
                    parallel=True,
                )(Xs, W)
                draws = {name: v.detach().clone() for name, v in draws.items()}
    finally:
        if progress is not None:
            progress.close()
    mixture, posterior = _posterior(draws, std, ct, n_chains=1)
    return FitResult(
        mixture,
        weighted_objective(X, W_raw, mixture),
        converged,
        torch.full((n_do,), steps, dtype=torch.long),
        history,
        posterior,
        {"guide": guide},
    )


def _posterior(
    draws: dict[str, torch.Tensor], std: Standardizer, ct: str, n_chains: int
) -> tuple[Mixture, Mixture]:
    """Site draws with a leading (chain · draw) dimension → the posterior-mean mixture
    (torch) and the posterior draws (NumPy, batch (chain, draw, n_do))."""
    weights, means, covs = std.to_raw(*sites_to_params(draws, ct))
    total = means.shape[0]

    def split(v: torch.Tensor) -> np.ndarray:
        return v.reshape((n_chains, total // n_chains) + tuple(v.shape[1:])).cpu().numpy().copy()

    posterior = Mixture(split(weights), split(means), split(covs), ct, is_posterior=True)
    return Mixture(weights.mean(0), means.mean(0), covs.mean(0), ct), posterior


def check_nuts_size(n: int) -> None:
    if n > NUTS_MAX_ROWS:
        raise ValueError(
            f"guide='nuts' evaluates every row at every leapfrog step and is meant for small "
            f"data: expected n_samples <= {NUTS_MAX_ROWS}, got {n}. Use SVI instead "
            "(guide='mvn' or 'lowrank', optionally with subsample_size=...)."
        )


def fit_nuts(
    X: torch.Tensor,
    W: torch.Tensor,
    init: Mixture,
    *,
    mass: np.ndarray | torch.Tensor,
    prior: MixturePrior | None = None,
    n_draws: int = 200,
    n_warmup: int | None = None,
    random_state: RandomState = None,
    verbose: bool = False,
) -> FitResult:
    """Posterior by NUTS (one chain), started at ``init``. Small data only.

    Parameters
    ----------
    X, W, init, mass, prior, random_state, verbose
        As in :func:`fit_posterior`.
    n_draws : int, default=200
        Draws kept after warm-up.
    n_warmup : int, optional
        Warm-up (adaptation) steps; default ``n_draws``.

    Returns
    -------
    SVIResult
        ``history`` of shape (n_draws, n_do): ``Σ_n w̃_jn log q_j(x_n)`` at every draw;
        ``converged`` is True when the chain had no divergent transitions.

    Raises
    ------
    ValueError
        When ``X`` has more than :data:`NUTS_MAX_ROWS` rows.
    """
    from pyro.infer import MCMC, NUTS

    check_nuts_size(X.shape[0])
    W_raw = W
    W = normalise_weights(X, W)
    rng = check_random_state(random_state)
    ct = init.covariance_type
    n_do = init.weights.shape[0]
    std, Xs, mass_t, sites0, model = _bayes_setup(X, init, prior, mass, None)
    n_warmup = n_draws if n_warmup is None else n_warmup
    with isolated(rng, X.device):
        kernel = NUTS(
            model, init_strategy=init_to_value(values=sites0, fallback=None), jit_compile=False
        )
        mcmc = MCMC(
            kernel,
            num_samples=n_draws,
            warmup_steps=n_warmup,
            num_chains=1,
            disable_progbar=not verbose,
        )
        mcmc.run(Xs, W)
        draws = {name: v.detach().clone() for name, v in mcmc.get_samples().items()}
        divergences = mcmc.diagnostics().get("divergences", {}).get("chain 0", [])
    mixture, posterior = _posterior(draws, std, ct, n_chains=1)
    with torch.no_grad():
        draws_t = posterior.select(0).to_torch(X.device, X.dtype)  # batch (draw, n_do)
        ll = draws_t.log_prob(X)  # (draw, n_do, n)
        history = torch.where(W > 0, W * ll, torch.zeros_like(ll)).sum(-1).cpu()
    return FitResult(
        mixture,
        weighted_objective(X, W_raw, mixture),
        torch.full((n_do,), len(divergences) == 0, dtype=torch.bool),
        torch.full((n_do,), n_warmup + n_draws, dtype=torch.long),
        history,
        posterior,
        {"guide": "nuts"},
    )


def posterior_predictive(
    posterior: Mixture,
    prior: MixturePrior,
    chosen: np.ndarray,
    n_rows: int,
    rng: np.random.Generator,
    device: torch.device,
) -> np.ndarray:
    """Posterior-predictive rows of the Pyro model, one dataset per chosen posterior draw.

    Parameters
    ----------
    posterior : Mixture
        Posterior draws (NumPy, batch (chain, draw, n_do)).
    prior : MixturePrior
        The prior the posterior was fitted under (NumPy or torch hyperparameters).
    chosen : ndarray of int
        Flat indices of the draws, one per dataset.
    n_rows : int
        Rows drawn per do value and dataset.
    rng : numpy.random.Generator
        Seeds the torch draws (the global RNG is untouched).
    device : torch.device

    Returns
    -------
    ndarray of shape (len(chosen), n_do, n_rows, d)
    """
    flat = posterior.flatten_draws().select(chosen).to_torch(device)
    sites = params_to_sites(flat.weights, flat.means, flat.covariances, posterior.covariance_type)

    def t(a: object) -> torch.Tensor:
        return torch.tensor(np.asarray(a), dtype=torch.float64, device=device)

    prior_t = MixturePrior(
        prior.concentration, t(prior.mean_loc), t(prior.mean_scale), t(prior.scale_scale),
        prior.lkj_concentration,
    )
    model = CausalMixtureModel(
        posterior.n_do, posterior.n_components, posterior.n_features,
        posterior.covariance_type, prior=prior_t,
    )
    with isolated(rng, device), torch.no_grad():
        obs = pyro.infer.Predictive(
            model, posterior_samples=sites, return_sites=("obs",), parallel=False
        )(None, None, n_rows=n_rows)["obs"]
    return obs.cpu().numpy()
