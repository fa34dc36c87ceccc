"""Pyro SVI, posterior and posterior-predictive fitting of the CW-GMM.

Every fitter here fits the one model of :mod:`causal_mixtures.mixture`
(:class:`~causal_mixtures.mixture.CausalMixtureModel`), the model whose log-likelihood EM
maximises:

* :func:`fit_map` (``inference="svi"``): MAP with :class:`~pyro.infer.autoguide.AutoDelta`
  under improper flat priors, i.e. the same weighted maximum-likelihood optimum as EM, found
  by stochastic gradients; minibatches of rows (``subsample_size``) keep the memory bounded
  whatever the number of rows.
* :func:`fit_posterior` (``inference="bayes"``): a posterior over the mixture parameters
  under weakly informative, data-scaled priors
  (:class:`~causal_mixtures.mixture.MixturePrior`), by SVI with a multivariate-normal,
  low-rank or diagonal guide on the unconstrained parameters.
* :func:`fit_nuts` (``inference="bayes", guide="nuts"``): NUTS, exact but slow; for small
  data only.

All three start from given mixture parameters (``init_to_value``): the EM fit by default
(SVI is 50-1000× slower than EM for the same optimum, so it should not have to find it),
or a weighted k-means / k-means++ initialisation for an independent cross-check.

Weight-mass policy
------------------
The causal weights ``w̃_jn`` are normalised (``Σ_n w̃_jn = 1``), so the likelihood has to be
put on the scale of a sample size before it meets a prior. ``weight_mass="n"`` scales it to
the number of rows: ``n · Σ_n w̃_jn log q_j(x_n)``. That overstates the information in
importance-weighted data: an estimate from weights with Kish effective sample size
``ESS_j = 1 / Σ_n w̃_jn²`` has roughly the variance of one from ``ESS_j`` unweighted rows, not
``n``. ``weight_mass="ess"`` (the default) scales it to ``ESS_j``, so the posterior width
matches the sampling variability of the weighted estimate. The mass does not move the MAP
under flat priors, so ``inference="svi"`` (and EM) ignore it.

Optimisation
------------
Adam (hand-written, to avoid importing ``torch._dynamo`` on first use of ``torch.optim``),
learning rate decayed geometrically to a tenth over ``n_steps``, objective tracked in
windows of ``n_steps // 10`` steps (20 to 100). A run has converged when the last two window
means differ by less than ``tol`` (per unit of likelihood mass) or, when the objective is
stochastic (posterior guides, minibatches), by less than two standard errors of its
step-to-step noise. The returned parameters are averages of the
iterates (Polyak-Ruppert) over the last window, or over the second half of a run that does
not stop early.

* MAP, full batch: stops at convergence.
* MAP with ``subsample_size < n``: runs all ``n_steps`` (minibatch noise can hide a slow
  climb) and averages the second half.
* Posterior: the guide starts at the initial parameters with the covariance of the
  **Laplace approximation** there (inverse Hessian of ``−log p(x, θ)`` in the unconstrained
  space, for up to ``LAPLACE_MAX_DIM`` parameters), so SVI only refines a nearly right
  Gaussian and may stop at convergence. Adam's step has a fixed size whatever the
  gradient's, so the guide's location is updated in coordinates whitened by the Laplace
  standard deviations; otherwise its jitter would exceed the posterior width when the ESS
  is large. Without a Laplace start (too many parameters, or a Hessian that is not positive
  definite at the start) the guide starts from a heuristic scale and runs all ``n_steps``.

Numerics
--------
The fitters work on standardised data ``(x − x̄) / s`` (one scalar ``s`` for all features, so
that spherical covariances stay spherical); priors are data-scaled in those coordinates, and
results are mapped back exactly. Objective traces are reported on the scale of the original
data (the Jacobian ``−d log s`` per unit of weight is added back).

Parameters are kept out of Pyro's global parameter store: every fit runs inside
``pyro.get_param_store().scope()`` and ``pyro.settings.context(module_local_params=True)``,
so fitting one estimator never clears or overwrites another's (or the user's) parameters.
The learned values are copied out as NumPy arrays before the scope closes. Randomness
(minibatches, guide draws, NUTS) is drawn under :func:`causal_mixtures._utils.torch_rng`,
seeded from the estimator's ``random_state``; the global torch RNG state is untouched.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.distributions import constraints
from pyro.infer.autoguide import (
    AutoDelta,
    AutoDiagonalNormal,
    AutoLaplaceApproximation,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
    init_to_value,
)
from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroParam

from causal_mixtures._random import RandomState, check_random_state, torch_rng
from causal_mixtures._validation import resolve_device
from causal_mixtures.exceptions import ConvergenceWarning
from causal_mixtures.mixture.em import MixtureParams, compute_precision_cholesky, log_likelihood
from causal_mixtures.mixture.model import (
    CausalMixtureModel,
    MixturePrior,
    params_to_sites,
    sites_to_params,
)
from causal_mixtures.weights.core import check_n_components

__all__ = [
    "GUIDES",
    "NUTS_MAX_ROWS",
    "SVIResult",
    "SVI_INITS",
    "WEIGHT_MASS",
    "fit_map",
    "fit_nuts",
    "fit_posterior",
    "likelihood_mass",
    "sample_posterior_predictive",
]

GUIDES = ("auto", "mvn", "lowrank", "diagonal", "nuts")
WEIGHT_MASS = ("n", "ess")
SVI_INITS = ("em", "init_params")
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


@dataclass
class SVIResult:
    """Output of :func:`fit_map`, :func:`fit_posterior` and :func:`fit_nuts`.

    Attributes
    ----------
    params : MixtureParams
        Point estimate in the coordinates of the data: the MAP (``fit_map``) or the
        posterior mean of weights, means and covariances.
    history : Tensor
        ``fit_map``: shape (n_steps, n_do), the minibatch estimate of the weighted mean
        log-likelihood ``Σ_n w̃_jn log q_j(x_n)`` at every step (EM's objective).
        ``fit_posterior``: shape (n_steps,), the single-sample ELBO of the whole model (in
        nats, with the likelihood scaled by the weight mass). ``fit_nuts``: shape
        (n_draws, n_do), ``Σ_n w̃_jn log q_j(x_n)`` at every posterior draw.
    converged : Tensor of shape (n_do,), bool
    n_iter : Tensor of shape (n_do,)
        Optimisation steps (or warm-up plus draws for NUTS).
    posterior : dict of ndarray or None
        Posterior draws with leading dimensions (chain, draw): ``"weights"`` (..., n_do, K),
        ``"means"`` (..., n_do, K, d), ``"covariances"`` (..., n_do, K, d, d) /
        (..., n_do, K, d) / (..., n_do, K).
    """

    params: MixtureParams
    history: torch.Tensor
    converged: torch.Tensor
    n_iter: torch.Tensor
    posterior: dict[str, np.ndarray] | None = None


# ---------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _isolated(rng: np.random.Generator, device: torch.device) -> Iterator[None]:
    """Local parameter store, module-local params and forked, seeded torch RNG."""
    with (
        torch_rng(rng, device),
        pyro.get_param_store().scope(),
        pyro.settings.context(module_local_params=True),
    ):
        yield


@dataclass
class _Standardizer:
    shift: torch.Tensor  # (d,)
    scale: float

    @classmethod
    def from_data(cls, X: torch.Tensor) -> _Standardizer:
        var = X.var(0, unbiased=False).mean()
        scale = float(torch.sqrt(var)) if float(var) > 0 else 1.0
        return cls(X.mean(0), scale)

    def data(self, X: torch.Tensor) -> torch.Tensor:
        return (X - self.shift) / self.scale

    def to_std(self, weights, means, covs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return weights, (means - self.shift) / self.scale, covs / self.scale**2

    def to_raw(self, weights, means, covs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return weights, self.shift + self.scale * means, covs * self.scale**2

    def log_jacobian(self, d: int) -> float:
        """``log q_raw(x) − log q_std(x_std)``."""
        return -d * math.log(self.scale)


def _as_mass(mass: Any, X: torch.Tensor) -> torch.Tensor:
    """The likelihood mass as a new tensor on ``X``'s device (never sharing memory)."""
    if isinstance(mass, torch.Tensor):
        return mass.detach().to(dtype=X.dtype, device=X.device).clone()
    return torch.tensor(np.asarray(mass, dtype=np.float64), dtype=X.dtype, device=X.device)


def _params(weights, means, covs, covariance_type: str) -> MixtureParams:
    return MixtureParams(
        weights, means, covs, compute_precision_cholesky(covs, covariance_type), covariance_type
    )


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
        return W.sum(1) ** 2 / (W * W).sum(1)
    raise ValueError(f"weight_mass must be one of {list(WEIGHT_MASS)}; got {weight_mass!r}.")


def _window(n_steps: int) -> int:
    return int(min(100, max(20, n_steps // 10)))


def _plateaued(history: list[torch.Tensor], window: int, tol: float, noisy: bool) -> torch.Tensor:
    """Per series: the mean of the last window differs from the previous one by less than
    ``tol``, or (for a stochastic objective, ``noisy``) by less than two standard errors: no
    improvement detectable above the minibatch / Monte-Carlo noise."""
    h = torch.stack(history[-2 * window :])
    a, b = h[:window], h[window:]
    delta = (b.mean(0) - a.mean(0)).abs()
    if not noisy:
        return delta < tol
    se = torch.sqrt(a.var(0) / window + b.var(0) / window)
    return delta < torch.clamp(2.0 * se, min=tol)


def _progress(verbose: bool, total: int, desc: str) -> Any:
    if not verbose:
        return None
    try:
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - depends on the environment
        from tqdm import tqdm
    return tqdm(total=total, desc=desc, leave=False)


class _Adam:
    """Adam (Kingma & Ba, 2015) on a list of leaf tensors.

    Equivalent to ``torch.optim.Adam`` with default betas for these plain parameters; kept
    here because constructing a ``torch.optim`` optimiser imports ``torch._dynamo`` (about
    3 s on first use in a process), which would dominate small fits.
    """

    def __init__(
        self,
        params: list[torch.Tensor],
        multipliers: list[Any] | None = None,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = params
        self.multipliers = multipliers or [1.0] * len(params)
        self.b1, self.b2 = betas
        self.eps = eps
        self.t = 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: float) -> None:
        self.t += 1
        c1 = 1.0 - self.b1**self.t
        c2 = 1.0 - self.b2**self.t
        for p, m, v, k in zip(self.params, self.m, self.v, self.multipliers, strict=True):
            if p.grad is None:
                continue
            g = p.grad
            m.mul_(self.b1).add_(g, alpha=1.0 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1.0 - self.b2)
            p.sub_(lr * k * (m / c1) / ((v / c2).sqrt() + self.eps))


def _run_svi(
    model: CausalMixtureModel,
    guide: Any,
    args: tuple,
    *,
    n_steps: int,
    learning_rate: float,
    tol: float,
    per_do: bool,
    offset: torch.Tensor,
    progress: Any,
    early_stop: bool = True,
    loc_scale: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Maximise the ELBO with Adam (learning rate decayed geometrically to a tenth).

    The objective is tracked in windows of steps; the series have converged when the last
    two window means differ by less than ``tol`` or two standard errors. With
    ``early_stop`` the run stops there, otherwise it runs all ``n_steps``. The parameters
    returned are the average of the iterates (Polyak-Ruppert averaging) over the last
    window, or over the second half of the run without ``early_stop``; this removes most of
    the jitter that stochastic gradients leave in the parameters.

    ``loc_scale`` (the Laplace standard deviations of a Gaussian guide) preconditions the
    guide's location: its Adam steps are multiplied by it, which is Adam in coordinates
    whitened by the Laplace approximation. Adam's steps have a fixed size whatever the
    gradient's, so without this a location whose posterior is narrow (large ESS) would
    jitter by more than its posterior width.

    Returns the trace (per-do weighted log-likelihood or total ELBO, plus ``offset``), the
    per-series convergence flags and the number of steps run.
    """
    guide(*args)  # set up the guide's parameters (with Pyro's argument validation on)
    params = [p for p in guide.parameters() if p.requires_grad]
    loc = getattr(guide, "loc", None) if loc_scale is not None else None
    optim = _Adam(params, [loc_scale if p is loc else 1.0 for p in params])
    mass = torch.as_tensor(model.mass, dtype=args[0].dtype, device=args[0].device)
    mass = mass.expand(model.n_do)
    window = _window(n_steps)
    validate = is_validation_enabled()
    # The objective is random with a sampling guide or minibatches; a full-batch MAP's is not.
    noisy = not per_do or (model.subsample_size is not None and model.subsample_size < len(args[0]))
    history: list[torch.Tensor] = []
    converged = torch.zeros(model.n_do if per_do else 1, dtype=torch.bool)
    step = 0
    average = [torch.zeros_like(p) for p in params]
    n_avg = 0
    for step in range(1, n_steps + 1):
        # Validation (support and shape checks on every distribution, ~25 % of a step) is
        # done on the first step only: the model's structure does not change afterwards.
        with pyro.validation_enabled(step == 1 and validate):
            guide_tr = poutine.trace(guide).get_trace(*args)
            model_tr = poutine.trace(poutine.replay(model, trace=guide_tr)).get_trace(*args)
            model_tr.compute_log_prob()
            elbo = model_tr.log_prob_sum() - guide_tr.log_prob_sum()
        optim.zero_grad()
        (-elbo).backward()
        optim.step(learning_rate * 0.1 ** ((step - 1) / n_steps))
        with torch.no_grad():
            if (early_stop and n_avg == window) or (not early_stop and step == n_steps // 2 + 1):
                n_avg = 0
            n_avg += 1
            for a, p in zip(average, params, strict=True):
                a.mul_((n_avg - 1) / n_avg).add_(p.detach(), alpha=1.0 / n_avg)
        with torch.no_grad():
            if per_do:
                value = (model_tr.nodes["obs"]["log_prob"].detach().sum(-1) / mass).cpu()
            else:
                value = elbo.detach().reshape(1).cpu()
            value = value + offset.cpu()
        history.append(value)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(objective=f"{float(value.mean()):.4f}")
        if step % window == 0 and step >= 2 * window:
            converged = _plateaued(history, window, tol, noisy)
            if early_stop and bool(converged.all()):
                break
    if step < 2 * window:
        converged = torch.zeros_like(converged)
    with torch.no_grad():
        for a, p in zip(average, params, strict=True):
            p.copy_(a)
    hist = torch.stack(history)
    return (hist if per_do else hist[:, 0]), converged.expand(model.n_do).clone(), step


def _check_data(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    if W.dim() != 2 or W.shape[1] != X.shape[0]:
        raise ValueError(
            f"W must have shape (n_do, n_samples) = (n_do, {X.shape[0]}); got {tuple(W.shape)}."
        )
    return W / W.sum(-1, keepdim=True)


# ---------------------------------------------------------------------- fitters
def fit_map(
    X: torch.Tensor,
    W: torch.Tensor,
    init: MixtureParams,
    *,
    subsample_size: int | None = None,
    n_steps: int = 1000,
    learning_rate: float = 0.01,
    tol: float = 1e-3,
    random_state: RandomState = None,
    verbose: bool = False,
) -> SVIResult:
    """Weighted maximum likelihood (MAP under flat priors) by SVI with ``AutoDelta``.

    Parameters
    ----------
    X : Tensor of shape (n, d)
    W : Tensor of shape (n_do, n)
        Non-negative causal weights; each row is normalised here.
    init : MixtureParams
        Starting point (``init_to_value``), e.g. an EM fit or a weighted k-means++ seeding.
    subsample_size : int, optional
        Rows per step (uniform minibatches, log-likelihood scaled by ``n / subsample_size``).
    n_steps : int, default=1000
        Maximum number of Adam steps.
    learning_rate : float, default=0.01
        Initial Adam learning rate (in standardised coordinates); decays geometrically to a
        tenth of it over ``n_steps``.
    tol : float, default=1e-3
        Convergence when, for every intervention value, the mean objective over the last
        window of steps changed by less than ``tol`` (or, with minibatches, by less than two
        standard errors of their noise). A full-batch run stops there; a minibatch run (``subsample_size < n``) always runs
        ``n_steps`` (its noise can hide a slow climb) and returns the parameters averaged
        over the second half of the run.
    random_state : int, Generator or None
    verbose : bool, default=False
        Progress bar.

    Returns
    -------
    SVIResult
        ``history`` of shape (n_steps_run, n_do): the objective ``Σ_n w̃_jn log q_j(x_n)``.
    """
    W = _check_data(X, W)
    rng = check_random_state(random_state)
    ct = init.covariance_type
    n_do, k = init.weights.shape
    d = X.shape[1]
    std = _Standardizer.from_data(X)
    Xs = std.data(X)
    sites0 = params_to_sites(*std.to_std(init.weights, init.means, init.covariances), ct)
    model = CausalMixtureModel(n_do, k, d, ct, prior=None, mass=1.0, subsample_size=subsample_size)
    offset = torch.full((n_do,), std.log_jacobian(d), dtype=X.dtype, device=X.device)
    progress = _progress(verbose, n_steps, "SVI (MAP)")
    try:
        with _isolated(rng, X.device):
            guide = AutoDelta(model, init_loc_fn=init_to_value(values=sites0, fallback=None))
            history, converged, steps = _run_svi(
                model,
                guide,
                (Xs, W),
                n_steps=n_steps,
                learning_rate=learning_rate,
                tol=tol,
                per_do=True,
                offset=offset.cpu(),
                progress=progress,
                early_stop=subsample_size is None or subsample_size >= X.shape[0],
            )
            with torch.no_grad():
                sites = {name: v.detach().clone() for name, v in guide.median(Xs, W).items()}
    finally:
        if progress is not None:
            progress.close()
    weights, means, covs = std.to_raw(*sites_to_params(sites, ct))
    return SVIResult(
        _params(weights, means, covs, ct),
        history,
        converged,
        torch.full((n_do,), steps, dtype=torch.long),
    )


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
    X: torch.Tensor, init: MixtureParams, prior: Any, mass: Any, subsample_size: int | None
) -> tuple[_Standardizer, torch.Tensor, torch.Tensor, dict, CausalMixtureModel]:
    """Shared by the guide and NUTS fits: standardised data, the prior on that scale, the
    likelihood mass, the initial sites and the Pyro model."""
    n_do, k = init.weights.shape
    std = _Standardizer.from_data(X)
    if prior is None:
        prior = MixturePrior.from_data(X)
    prior_s = prior.affine(-std.shift / std.scale, 1.0 / std.scale)
    mass_t = _as_mass(mass, X)
    ct = init.covariance_type
    sites0 = params_to_sites(*std.to_std(init.weights, init.means, init.covariances), ct)
    model = CausalMixtureModel(
        n_do, k, X.shape[1], ct, prior=prior_s, mass=mass_t, subsample_size=subsample_size
    )
    return std, std.data(X), mass_t, sites0, model


def fit_posterior(
    X: torch.Tensor,
    W: torch.Tensor,
    init: MixtureParams,
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
) -> tuple[SVIResult, str]:
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
    result : SVIResult
        ``history`` of shape (n_steps_run,): the ELBO (nats) on the scale of the data.
    guide : str
        The guide used.
    """
    W = _check_data(X, W)
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
    progress = _progress(verbose, n_steps, "SVI (posterior)")
    try:
        with _isolated(rng, X.device):
            g, loc_scale = _gaussian_guide(
                guide,
                model,
                init_loc_fn,
                init_scale,
                (Xs, W),
                laplace=latent_dim <= LAPLACE_MAX_DIM,
            )
            history, converged, steps = _run_svi(
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
    result = _posterior_result(draws, std, ct, n_chains=1)
    result.history = history
    result.converged = converged
    result.n_iter = torch.full((n_do,), steps, dtype=torch.long)
    return result, guide


def _posterior_result(
    draws: dict[str, torch.Tensor], std: _Standardizer, ct: str, n_chains: int
) -> SVIResult:
    """Site draws with a leading (chain · draw) dimension → posterior dict and point estimate."""
    weights, means, covs = std.to_raw(*sites_to_params(draws, ct))
    n_do = means.shape[-3]
    total = means.shape[0]
    posterior = {
        "weights": weights,
        "means": means,
        "covariances": covs,
    }
    posterior = {
        key: v.reshape((n_chains, total // n_chains) + tuple(v.shape[1:])).cpu().numpy().copy()
        for key, v in posterior.items()
    }
    point = _params(weights.mean(0), means.mean(0), covs.mean(0), ct)
    return SVIResult(
        point,
        torch.empty(0),
        torch.zeros(n_do, dtype=torch.bool),
        torch.zeros(n_do, dtype=torch.long),
        posterior,
    )


def _check_nuts_size(n: int) -> None:
    if n > NUTS_MAX_ROWS:
        raise ValueError(
            f"guide='nuts' evaluates every row at every leapfrog step and is meant for small "
            f"data: expected n_samples <= {NUTS_MAX_ROWS}, got {n}. Use SVI instead "
            "(guide='mvn' or 'lowrank', optionally with subsample_size=...)."
        )


def fit_nuts(
    X: torch.Tensor,
    W: torch.Tensor,
    init: MixtureParams,
    *,
    mass: np.ndarray | torch.Tensor,
    prior: MixturePrior | None = None,
    n_draws: int = 200,
    n_warmup: int | None = None,
    random_state: RandomState = None,
    verbose: bool = False,
) -> SVIResult:
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

    _check_nuts_size(X.shape[0])
    W = _check_data(X, W)
    rng = check_random_state(random_state)
    ct = init.covariance_type
    n_do = init.weights.shape[0]
    std, Xs, mass_t, sites0, model = _bayes_setup(X, init, prior, mass, None)
    n_warmup = n_draws if n_warmup is None else n_warmup
    with _isolated(rng, X.device):
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
    result = _posterior_result(draws, std, ct, n_chains=1)
    post = result.posterior
    assert post is not None
    with torch.no_grad():
        hist = []
        for s in range(n_draws):
            p = _params(
                torch.tensor(post["weights"][0, s], dtype=X.dtype, device=X.device),
                torch.tensor(post["means"][0, s], dtype=X.dtype, device=X.device),
                torch.tensor(post["covariances"][0, s], dtype=X.dtype, device=X.device),
                ct,
            )
            ll = log_likelihood(X, p)
            hist.append(torch.where(W > 0, W * ll, torch.zeros_like(ll)).sum(-1).cpu())
    result.history = torch.stack(hist)
    result.converged = torch.full((n_do,), len(divergences) == 0, dtype=torch.bool)
    result.n_iter = torch.full((n_do,), n_warmup + n_draws, dtype=torch.long)
    return result


# ---------------------------------------------------------------------- posterior predictive
def _flat_posterior(posterior: dict[str, np.ndarray], j: int) -> tuple[np.ndarray, ...]:
    w = posterior["weights"]
    lead = w.shape[:-2]
    s = int(np.prod(lead))
    weights = w.reshape((s,) + w.shape[len(lead) :])[:, j]
    means = posterior["means"].reshape((s,) + posterior["means"].shape[len(lead) :])[:, j]
    cov = posterior["covariances"]
    covs = cov.reshape((s,) + cov.shape[len(lead) :])[:, j]
    return weights, means, covs


def sample_posterior_predictive(
    posterior: dict[str, np.ndarray],
    covariance_type: str,
    j: int,
    n_samples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draws from the posterior predictive of intervention value number ``j``.

    Each row picks a posterior draw uniformly, then a component by its weight, then a
    Gaussian draw; rows are sampled per (draw, component) group, never through a
    ``(rows, d, d)`` tensor.

    Returns
    -------
    ndarray of shape (n_samples, d), rows in random order.
    """
    weights, means, covs = _flat_posterior(posterior, j)
    s_total, k = weights.shape
    d = means.shape[-1]
    s = rng.integers(0, s_total, size=n_samples)
    cum = np.cumsum(weights[s], axis=1)
    u = rng.random(n_samples) * cum[:, -1]
    comp = np.minimum((u[:, None] >= cum).sum(1), k - 1)
    eps = rng.standard_normal((n_samples, d))
    key = s * k + comp
    order = np.argsort(key, kind="stable")
    uniq, starts = np.unique(key[order], return_index=True)
    ends = np.append(starts[1:], n_samples)
    out = np.empty((n_samples, d))
    for g, a, b in zip(uniq.tolist(), starts.tolist(), ends.tolist(), strict=True):
        rows = order[a:b]
        si, ki = divmod(g, k)
        mu = means[si, ki]
        if covariance_type == "full":
            out[rows] = mu + eps[rows] @ np.linalg.cholesky(covs[si, ki]).T
        else:
            out[rows] = mu + eps[rows] * np.sqrt(covs[si, ki])
    return out


def posterior_datasets(
    est: Any, n_datasets: int, n_samples: Any = None, random_state: RandomState = None
) -> list[tuple[Any, np.ndarray]]:
    """Implementation of :meth:`CausalGaussianMixture.posterior_datasets`."""
    est._check_fitted()
    posterior = fitted_posterior(est)
    if posterior is None:
        raise ValueError(
            "posterior_datasets needs a posterior over the mixture parameters, but this model "
            f"was fitted with inference={getattr(est, 'fitted_inference_', 'em')!r}, which "
            "gives a single point estimate. Refit with inference='bayes'."
        )
    if (
        isinstance(n_datasets, bool)
        or not isinstance(n_datasets, numbers.Integral)
        or n_datasets < 1
    ):
        raise ValueError(f"n_datasets must be a positive int; got {n_datasets!r}.")
    n_draws = int(np.prod(posterior["means"].shape[:2]))
    if n_datasets > n_draws:
        raise ValueError(
            f"n_datasets={n_datasets} exceeds the {n_draws} stored posterior draws, and each "
            "dataset comes from a different draw. Refit with n_posterior_draws >= "
            f"{n_datasets}."
        )
    counts = est._n_per_do(est.causal_weights_.n_samples, n_samples)
    rng = check_random_state(est.random_state if random_state is None else random_state)
    chosen = rng.choice(n_draws, size=n_datasets, replace=False)
    device = resolve_device(est.device)
    ct = est.covariance_type

    def flat(a: np.ndarray) -> torch.Tensor:
        a = a.reshape((n_draws,) + a.shape[2:])[chosen]
        return torch.tensor(a, dtype=torch.float64, device=device)

    sites = params_to_sites(
        flat(posterior["weights"]), flat(posterior["means"]), flat(posterior["covariances"]), ct
    )
    n_do = len(est.do_values_)
    prior = est.prior_
    prior = MixturePrior(
        prior.concentration,
        torch.tensor(prior.mean_loc, dtype=torch.float64, device=device),
        torch.tensor(prior.mean_scale, dtype=torch.float64, device=device),
        torch.tensor(prior.scale_scale, dtype=torch.float64, device=device),
        prior.lkj_concentration,
    )
    model = CausalMixtureModel(n_do, est.n_components_, est.n_features_in_, ct, prior=prior)
    m = int(counts.max())
    with _isolated(rng, device), torch.no_grad():
        obs = pyro.infer.Predictive(
            model, posterior_samples=sites, return_sites=("obs",), parallel=False
        )(None, None, n_rows=m)["obs"]
    obs = obs.cpu().numpy()  # (n_datasets, n_do, m, d)
    names = getattr(est, "feature_names_in_", None)
    out = []
    for i in range(n_datasets):
        X_new = np.concatenate([obs[i, j, : int(c)] for j, c in enumerate(counts)], axis=0)
        y_new = np.repeat(est.do_values_, counts)
        order = rng.permutation(len(y_new))
        X_new, y_new = X_new[order], y_new[order]
        if names is not None:
            import pandas as pd

            X_new = pd.DataFrame(X_new, columns=list(names))
        out.append((X_new, y_new))
    return out


# ---------------------------------------------------------------------- estimator glue
def check_params(est: Any) -> None:
    """Validate the SVI / Bayes constructor parameters of a CausalGaussianMixture and drop
    the attributes of an earlier SVI / Bayes fit (called at the start of every ``fit``)."""
    if est.weight_mass not in (None, *WEIGHT_MASS):
        raise ValueError(
            f"weight_mass must be one of {list(WEIGHT_MASS)} or None (= 'ess'); got "
            f"{est.weight_mass!r}."
        )
    if est.guide not in GUIDES:
        raise ValueError(f"guide must be one of {list(GUIDES)}; got {est.guide!r}.")
    if est.svi_init not in SVI_INITS:
        raise ValueError(f"svi_init must be one of {list(SVI_INITS)}; got {est.svi_init!r}.")
    if est.guide == "nuts" and est.inference == "bayes" and est.subsample_size is not None:
        raise ValueError(
            "guide='nuts' uses every row at every step and cannot subsample; got "
            f"subsample_size={est.subsample_size!r}. Use subsample_size=None, or an SVI guide."
        )
    for name, lo in (("n_steps", 1), ("n_posterior_draws", 2)):
        v = getattr(est, name)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}; got {v!r}.")
    v = est.subsample_size
    if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1):
        raise ValueError(f"subsample_size must be None or an int >= 1; got {v!r}.")
    lr = est.learning_rate
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
        raise ValueError(f"learning_rate must be a number > 0; got {lr!r}.")
    for attr in (
        "posterior_",
        "prior_",
        "guide_",
        "weight_mass_",
        "likelihood_mass_",
        "fitted_inference_",
        "_posterior_point",
    ):
        est.__dict__.pop(attr, None)


def fitted_posterior(est: Any) -> dict[str, np.ndarray] | None:
    """The posterior draws of a Bayes fit, or None (also after a later non-Bayes refit)."""
    post = getattr(est, "posterior_", None)
    if post is None or getattr(est, "_posterior_point", None) is not getattr(est, "means_", None):
        return None
    return post


def fit_estimator(
    est: Any, X: Any, y: Any, *, mechanism: Any, covariates: Any, do: Any, weights: Any
) -> Any:
    """``CausalGaussianMixture.fit`` for ``inference in ("svi", "bayes")``."""
    from sklearn.base import clone

    from causal_mixtures.estimators.gaussian_mixture import _check_fit_inputs
    from causal_mixtures.mixture.em import EMResult

    X_arr, y_arr, names = _check_fit_inputs(X, y, weights)
    if est.inference == "bayes" and est.guide == "nuts":
        _check_nuts_size(len(X_arr))
    device = resolve_device(est.device)
    rng = check_random_state(est.random_state)
    Xt = torch.tensor(X_arr, dtype=torch.float64, device=device)
    d = X_arr.shape[1]
    grid_attrs: dict[str, Any] = {}
    if est.svi_init == "em":
        em = clone(est).set_params(inference="em", verbose=False)
        with warnings.catch_warnings():
            # EM is only the starting point here; convergence is judged on the SVI fit.
            warnings.simplefilter("ignore", ConvergenceWarning)
            em.fit(X, y, mechanism=mechanism, covariates=covariates, do=do, weights=weights)
        cw = em.causal_weights_
        k = int(em.n_components_)
        init = MixtureParams(
            *(
                torch.tensor(a, dtype=torch.float64, device=device)
                for a in (em.weights_, em.means_, em.covariances_, em.precisions_cholesky_)
            ),
            est.covariance_type,
        )
        for attr in ("n_components_grid_", "bic_grid_"):
            if hasattr(em, attr):
                grid_attrs[attr] = getattr(em, attr)
    else:
        if est.n_components == "auto":
            raise ValueError(
                "n_components='auto' chooses K by the weighted BIC of EM fits; use "
                "svi_init='em' with it, or pass an int n_components."
            )
        cw = est._causal_weights(X_arr, y_arr, mechanism, covariates, do, weights)
        k = int(est.n_components)
        W_np = cw.values.T.copy()
        check_n_components(k, W_np, cw.do_values)
        Wt0 = torch.tensor(W_np, dtype=torch.float64, device=device)
        init = est._initial_params(X_arr, Xt, Wt0, W_np, k, 1, rng)
    W_np = cw.values.T.copy()
    Wt = torch.tensor(W_np, dtype=torch.float64, device=device)
    weight_mass = est.weight_mass if est.weight_mass is not None else "ess"
    mass = likelihood_mass(W_np, weight_mass)
    common = dict(
        subsample_size=est.subsample_size,
        n_steps=est.n_steps,
        learning_rate=est.learning_rate,
        tol=est.tol,
        random_state=rng,
        verbose=est.verbose,
    )
    guide_used = None
    prior = None
    if est.inference == "svi":
        res = fit_map(Xt, Wt, init, **common)
        what = "SVI"
    elif est.guide == "nuts":
        prior = MixturePrior.from_data(Xt)
        res = fit_nuts(
            Xt,
            Wt,
            init,
            mass=mass,
            prior=prior,
            n_draws=est.n_posterior_draws,
            random_state=rng,
            verbose=est.verbose,
        )
        guide_used = "nuts"
        what = "NUTS"
    else:
        prior = MixturePrior.from_data(Xt)
        res, guide_used = fit_posterior(
            Xt,
            Wt,
            init,
            mass=mass,
            prior=prior,
            guide=est.guide,
            n_draws=est.n_posterior_draws,
            **common,
        )
        what = "SVI (posterior)"
    final = log_likelihood(Xt, res.params)
    Wn = Wt / Wt.sum(-1, keepdim=True)
    lower_bound = torch.where(Wn > 0, Wn * final, torch.zeros_like(final)).sum(-1)
    em_like = EMResult(res.params, lower_bound, res.converged, res.n_iter, list(res.history))
    bic = est._bic(em_like, k, d, cw.ess)
    est._store(em_like, cw, k, bic, X_arr, names)
    for attr in ("n_components_grid_", "bic_grid_"):
        est.__dict__.pop(attr, None)
    for attr, value in grid_attrs.items():
        setattr(est, attr, value)
    est.lower_bounds_ = res.history.cpu().numpy()
    est.weight_mass_ = weight_mass
    est.likelihood_mass_ = mass
    est.fitted_inference_ = est.inference
    if res.posterior is not None:
        est.posterior_ = res.posterior
        est.guide_ = guide_used
        assert prior is not None
        est.prior_ = MixturePrior(
            prior.concentration,
            prior.mean_loc.cpu().numpy(),
            prior.mean_scale.cpu().numpy(),
            prior.scale_scale.cpu().numpy(),
            prior.lkj_concentration,
        )
        est._posterior_point = est.means_
    if not bool(res.converged.all()):
        bad = cw.do_values[~res.converged.cpu().numpy()].tolist()
        if what == "NUTS":
            msg = (
                "NUTS had divergent transitions, so its draws may miss parts of the posterior. "
                "Increase n_posterior_draws (longer warm-up), or use an SVI guide."
            )
        else:
            msg = (
                f"{what} did not converge for do value(s) {bad} within n_steps={est.n_steps} "
                f"(tol={est.tol}). Increase n_steps or learning_rate, or check the weights "
                "(causal_weights_)."
            )
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return est
