"""Optimisation machinery shared by the Pyro fitters: an isolated parameter store and RNG,
standardised coordinates, a hand-written Adam, and the SVI loop with its convergence test.

Adam is hand-written to avoid importing ``torch._dynamo`` on first use of ``torch.optim``
(about 3 s). The loop tracks the objective in windows of ``n_steps // 10`` steps (20 to
100); a run has converged when the last two window means differ by less than ``tol`` or,
for a stochastic objective, by less than two standard errors of its noise. Returned
parameters are Polyak-Ruppert averages of the iterates. See ``docs/inference.md``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer.util import is_validation_enabled

from causal_mixtures._random import torch_rng
from causal_mixtures.mixture.model import CausalMixtureModel

if TYPE_CHECKING:
    from causal_mixtures.mixture.sharded import Shard

__all__ = [
    "Adam",
    "NEWTON_MAX_PARAMETERS",
    "Standardizer",
    "as_mass",
    "elbo_trace",
    "isolated",
    "normalise_weights",
    "plateaued",
    "progress_bar",
    "run_newton",
    "run_svi",
    "shard_elbo",
    "window_size",
]


@contextlib.contextmanager
def isolated(rng: np.random.Generator, device: torch.device) -> Iterator[None]:
    """Local parameter store, module-local params and forked, seeded torch RNG."""
    with (
        torch_rng(rng, device),
        pyro.get_param_store().scope(),
        pyro.settings.context(module_local_params=True),
    ):
        yield


@dataclass
class Standardizer:
    shift: torch.Tensor  # (d,)
    scale: float

    @classmethod
    def from_data(cls, X: torch.Tensor) -> Standardizer:
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


def as_mass(mass: Any, X: torch.Tensor) -> torch.Tensor:
    """The likelihood mass as a new tensor on ``X``'s device (never sharing memory)."""
    if isinstance(mass, torch.Tensor):
        return mass.detach().to(dtype=X.dtype, device=X.device).clone()
    return torch.tensor(np.asarray(mass, dtype=np.float64), dtype=X.dtype, device=X.device)


def window_size(n_steps: int) -> int:
    return int(min(100, max(20, n_steps // 10)))


def plateaued(history: list[torch.Tensor], window: int, tol: float, noisy: bool) -> torch.Tensor:
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


def progress_bar(verbose: bool, total: int, desc: str) -> Any:
    if not verbose:
        return None
    try:
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - depends on the environment
        from tqdm import tqdm
    return tqdm(total=total, desc=desc, leave=False)


class Adam:
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


def elbo_trace(model: CausalMixtureModel, guide: Any, args: tuple) -> tuple[torch.Tensor, Any]:
    """The ELBO ``log p(x, z) − log q(z)`` at one draw of the guide (``Trace_ELBO``'s
    estimator; exact for a Delta guide) and the model's trace (its log-probabilities
    computed)."""
    guide_tr = poutine.trace(guide).get_trace(*args)
    model_tr = poutine.trace(poutine.replay(model, trace=guide_tr)).get_trace(*args)
    model_tr.compute_log_prob()
    return model_tr.log_prob_sum() - guide_tr.log_prob_sum(), model_tr


def shard_elbo(
    model: CausalMixtureModel, guide: Any, args: tuple, shard: Shard | None
) -> tuple[torch.Tensor, Any]:
    """:func:`elbo_trace`, or with a ``shard`` this process's part of the ELBO of all the
    shards' rows: its rows' likelihood, and on rank 0 only the prior and guide terms (so
    that the sum over the processes counts them once)."""
    elbo, model_tr = elbo_trace(model, guide, args)
    if shard is not None and shard.rank != 0:
        elbo = model_tr.nodes["obs"]["log_prob_sum"]
    return elbo, model_tr


def run_svi(
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
    shard: Shard | None = None,
    noisy: bool | None = None,
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

    ``shard`` (:class:`~causal_mixtures.mixture.sharded.Shard`): ``args`` are this
    process's rows; after every ``backward`` the gradients, and the objective, are summed
    over the processes (``shard.reduce``), so every process takes the same step. ``noisy``:
    whether the objective is stochastic (default: a sampling guide or a minibatch of
    ``args``' rows).

    Returns the trace (per-do weighted log-likelihood or total ELBO, plus ``offset``), the
    per-series convergence flags and the number of steps run.
    """
    guide(*args)  # set up the guide's parameters (with Pyro's argument validation on)
    params = [p for p in guide.parameters() if p.requires_grad]
    loc = getattr(guide, "loc", None) if loc_scale is not None else None
    optim = Adam(params, [loc_scale if p is loc else 1.0 for p in params])
    mass = torch.as_tensor(model.mass, dtype=args[0].dtype, device=args[0].device)
    mass = mass.expand(model.n_do)
    window = window_size(n_steps)
    validate = is_validation_enabled()
    # The objective is random with a sampling guide or minibatches; a full-batch MAP's is not.
    if noisy is None:
        noisy = not per_do or (
            model.subsample_size is not None and model.subsample_size < len(args[0]))
    history: list[torch.Tensor] = []
    converged = torch.zeros(model.n_do if per_do else 1, dtype=torch.bool)
    step = 0
    average = [torch.zeros_like(p) for p in params]
    n_avg = 0
    for step in range(1, n_steps + 1):
        # Validation (support and shape checks on every distribution, ~25 % of a step) is
        # done on the first step only: the model's structure does not change afterwards.
        with pyro.validation_enabled(step == 1 and validate):
            elbo, model_tr = shard_elbo(model, guide, args, shard)
        optim.zero_grad()
        (-elbo).backward()
        if shard is not None:  # the gradients of the ELBO of all the shards' rows
            grads = shard.reduce(*[p.grad if p.grad is not None else torch.zeros_like(p)
                                   for p in params])
            for p, g in zip(params, grads, strict=True):
                p.grad = g
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
            if shard is not None:
                (value,) = shard.reduce(value)
            value = value + offset.cpu()
        history.append(value)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(objective=f"{float(value.mean()):.4f}")
        if step % window == 0 and step >= 2 * window:
            converged = plateaued(history, window, tol, noisy)
            if early_stop and bool(converged.all()):
                break
    if step < 2 * window:
        converged = torch.zeros_like(converged)
    with torch.no_grad():
        for a, p in zip(average, params, strict=True):
            p.copy_(a)
    hist = torch.stack(history)
    return (hist if per_do else hist[:, 0]), converged.expand(model.n_do).clone(), step


def normalise_weights(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    if W.dim() != 2 or W.shape[1] != X.shape[0]:
        raise ValueError(
            f"W must have shape (n_do, n_samples) = (n_do, {X.shape[0]}); got {tuple(W.shape)}."
        )
    return W / W.sum(-1, keepdim=True)


#: The largest number of unconstrained parameters per intervention value for which
#: :func:`run_newton` forms the Hessian (one Hessian-vector product per parameter).
NEWTON_MAX_PARAMETERS = 256
#: :func:`run_newton`: convergence suggested by the SR1-updated curvature is checked on a
#: freshly formed Hessian at most this often (in steps).
CONFIRM_EVERY = 5


#: Hessian-vector products per vectorised backward pass (full covariances).
HESSIAN_BATCH = 32


def _flat(tensors: Any, n_do: int) -> torch.Tensor:
    """Parameters or their gradients as one (n_do, P) matrix (every guide parameter of the
    MAP model has the do values as its leading axis)."""
    return torch.cat([t.reshape(n_do, -1) for t in tensors], 1)


def _hessian(
    model: CausalMixtureModel, guide: Any, args: tuple | None, params: list[torch.Tensor],
    shard: Shard | None = None,
) -> torch.Tensor:
    """The Hessian of the ELBO on ``args`` with respect to ``params``, one (P, P) block per do
    value (the do values share no parameter, so the off-diagonal blocks are zero and one
    Hessian-vector product per coordinate gives every block at once).

    With a ``shard``: the sum over the processes of every process's part (``args`` its
    rows of the subsample, ``None`` when it holds none of them; rank 0's part has the
    prior and guide terms)."""
    n_do = model.n_do
    if args is None:
        p = sum(t[0].numel() for t in params)
        hess = params[0].new_zeros((n_do, p, p))
    else:
        elbo, _ = shard_elbo(model, guide, args, shard)
        grad = _flat(torch.autograd.grad(elbo, params, create_graph=True,
                                         materialize_grads=True), n_do)
        p = grad.shape[1]
        hess = None
        if model.covariance_type == "full":
            # All P Hessian-vector products in one vectorised backward pass (vmap): the
            # same Hessian to the bit, 0.13 s against 0.20 s at 5000 rows, K = 6, d = 2
            # (full); for diag and spherical the batched pass was slower (0.8 s against 0.5).
            # In chunks of HESSIAN_BATCH coordinates: the batched graph's memory is that
            # many copies of one backward pass.
            eye = torch.eye(p, dtype=grad.dtype, device=grad.device)
            try:
                parts = []
                for s in range(0, p, HESSIAN_BATCH):
                    e = eye[s : s + HESSIAN_BATCH]
                    rows = torch.autograd.grad(
                        grad, params, e.unsqueeze(1).expand(len(e), n_do, p),
                        retain_graph=True, is_grads_batched=True, materialize_grads=True)
                    parts.append(torch.cat([r.reshape(len(e), n_do, -1) for r in rows], -1))
                hess = torch.cat(parts).permute(1, 2, 0).detach()
            except RuntimeError:  # an op without a batching rule: the loop below
                hess = None
        if hess is None:  # one Hessian-vector product per coordinate
            cols = [
                _flat(torch.autograd.grad(grad[:, i].sum(), params, retain_graph=True,
                                          materialize_grads=True), n_do)
                for i in range(p)
            ]
            hess = torch.stack(cols, -1).detach()
    if shard is not None:
        (hess,) = shard.reduce(hess)
    return 0.5 * (hess + hess.transpose(-1, -2))


def _trust_region_step(
    neg_hess: torch.Tensor, grad: torch.Tensor, radius: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per block: the maximiser of the quadratic model ``gᵀs − sᵀ(−H)s / 2`` within
    ``‖s‖ ≤ radius`` (the Newton step when ``−H`` is positive definite and the step fits,
    else ``(−H + μI)⁻¹ g`` on the boundary, ``μ`` found by bisection), its predicted gain,
    and the decrement ``Σ_i (v_iᵀg)² / |λ_i| / 2`` over the eigenpairs of ``−H`` (the
    Newton decrement ``gᵀ(−H)⁻¹g / 2`` at a maximum: the gain a full Newton step predicts).

    Directions of numerically zero curvature (below 1e-10 of the largest) are left out:
    the softmax parametrisation of the weights is invariant to a common shift, so its
    gradient there is zero.
    """
    evals, evecs = torch.linalg.eigh(neg_hess)  # (n_do, P), (n_do, P, P)
    top = evals.abs().amax(-1, keepdim=True).clamp(min=1e-300)
    live = evals.abs() > 1e-10 * top
    proj = torch.where(live, (evecs.transpose(-1, -2) @ grad.unsqueeze(-1)).squeeze(-1), 0.0)
    decrement = 0.5 * (proj**2 / torch.where(live, evals.abs(), 1.0)).sum(-1)

    def step_for(mu: torch.Tensor) -> torch.Tensor:  # coefficients in the eigenbasis
        return torch.where(live, proj / torch.where(live, evals + mu, 1.0), 0.0)

    newton = step_for(torch.zeros_like(top))
    fits = (evals.masked_fill(~live, math.inf).amin(-1) > 0) & (newton.norm(dim=-1) <= radius)
    lo = torch.clamp(-evals.masked_fill(~live, math.inf).amin(-1, keepdim=True), min=0.0)
    lo = torch.where(torch.isfinite(lo), lo, torch.zeros_like(lo))
    hi = lo + proj.norm(dim=-1, keepdim=True) / radius.unsqueeze(-1) + top
    for _ in range(60):  # ‖s(μ)‖ decreases in μ on (lo, ∞): bisection to 2⁻⁶⁰ of (lo, hi)
        mid = 0.5 * (lo + hi)
        too_long = step_for(mid).norm(dim=-1, keepdim=True) > radius.unsqueeze(-1)
        lo = torch.where(too_long, mid, lo)
        hi = torch.where(too_long, hi, mid)
    coef = torch.where(fits.unsqueeze(-1), newton, step_for(hi))
    step = (evecs @ coef.unsqueeze(-1)).squeeze(-1)
    predicted = (proj * coef).sum(-1) - 0.5 * (evals * coef**2).sum(-1)
    return step, predicted, decrement


def _hessian_subsample(
    X: torch.Tensor, W: torch.Tensor, rng: np.random.Generator, hessian_rows: int,
    shard: Shard | None = None,
) -> tuple | None:
    """:func:`run_newton`'s Hessian rows: a uniform subsample of ``hessian_rows`` of all the
    rows (all of them when there are fewer, or when the subsample would miss the weight of
    a do value), weights normalised over it. With a ``shard`` the same draw in every
    process (one process's draw), this process's rows of it (``None`` when it holds none),
    normalised over the whole subsample."""
    n_total = X.shape[0] if shard is None else shard.n_total
    m = min(hessian_rows, n_total)
    if m >= n_total:
        return (X, W)
    rows = np.sort(rng.choice(n_total, size=m, replace=False))
    local = torch.as_tensor(rows if shard is None else shard.local_rows(rows),
                            device=X.device)
    total = W[:, local].sum(-1)
    if shard is not None:
        (total,) = shard.reduce(total)
    if bool((total <= 0).any()):
        return (X, W)  # a do value with no weight in the subsample: the curvature of all rows
    if len(local) == 0:
        return None
    return X[local], W[:, local] / total[:, None]


def run_newton(
    model: CausalMixtureModel,
    guide: Any,
    args: tuple,
    *,
    n_steps: int,
    tol: float,
    rtol: float,
    offset: torch.Tensor,
    progress: Any,
    rng: np.random.Generator,
    hessian_rows: int = 5_000,
    shard: Shard | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Maximise a full-batch MAP ELBO by trust-region Newton steps.

    Every step evaluates the ELBO of the guide and the Pyro model on all rows and its
    gradient (the same traces as :func:`run_svi`); the curvature is the ELBO's Hessian on a
    fixed uniform subsample of ``hessian_rows`` rows (all rows when there are fewer), formed
    by Hessian-vector products at the start and again when a step fell well short of its
    predicted gain. Each do value has its own trust radius (in the guide's unconstrained
    coordinates): a step is kept only if it increased that do value's objective; the radius
    shrinks to a quarter of a step whose gain was under a quarter of the prediction and
    doubles after a boundary step that gained over three quarters of it.

    Converged (per do value): the decrement ``Σ_i (v_iᵀg)² / |λ_i| / 2`` over the
    eigenpairs of ``−H`` (at a maximum, the gain a full Newton step predicts: the distance
    to the optimum of the local quadratic model) is below ``min(tol, rtol · |objective|)``.
    The run stops when every do value has converged, when the trust radii of the others
    have shrunk below 1e-10 (no step gains anything), or after ``n_steps`` evaluations; the
    flags say which do values had converged.

    ``shard`` (:class:`~causal_mixtures.mixture.sharded.Shard`): ``args`` are this
    process's rows (``W`` normalised over all the shards); every evaluation's objective
    and gradient, and the Hessian (every process's part of one subsample of all the rows,
    drawn alike everywhere from ``rng``), are summed over the processes, so every process
    takes the same steps. The same draw of ``rng`` picks the same subsample as one process
    on all the rows.

    Returns the trace (per-do objective plus ``offset``, one row per evaluation, the
    starting point first), the convergence flags and the number of evaluations.
    """
    X, W = args
    n_do = model.n_do
    validate = is_validation_enabled()
    guide(*args)
    params = [p for p in guide.parameters() if p.requires_grad]
    mass = torch.as_tensor(model.mass, dtype=X.dtype, device=X.device).expand(n_do)
    sub = _hessian_subsample(X, W, rng, int(hessian_rows), shard)

    def evaluate(first: bool) -> tuple[torch.Tensor, torch.Tensor]:
        with pyro.validation_enabled(first and validate):
            elbo, trace = shard_elbo(model, guide, args, shard)
        grad = torch.autograd.grad(elbo, params, materialize_grads=True)
        value = trace.nodes["obs"]["log_prob"].detach().sum(-1) / mass
        if shard is None:
            return value, _flat(grad, n_do)
        value, flat = shard.reduce(value, _flat(grad, n_do))
        return value, flat

    def apply(delta: torch.Tensor) -> None:
        with torch.no_grad():
            start = 0
            for p in params:
                size = p[0].numel()
                p.add_(delta[:, start : start + size].reshape(p.shape))
                start += size

    value, grad = evaluate(True)
    history = [value.cpu() + offset.cpu()]
    neg_hess = -_hessian(model, guide, sub, params, shard)
    radius = torch.ones(n_do, dtype=X.dtype, device=X.device)
    threshold = torch.minimum(
        torch.full_like(value, float(tol)), float(rtol) * (value + offset.to(value)).abs()
    )
    steps = 1
    if progress is not None:
        progress.update(1)
    fresh = True  # neg_hess is the subsample Hessian of this point, not SR1-updated
    since = 0  # steps since the last Hessian
    while True:
        delta, predicted, decrement = _trust_region_step(neg_hess, grad, radius)
        converged = decrement <= threshold
        if bool(converged.any()) and not fresh and (since >= CONFIRM_EVERY or steps >= n_steps):
            # SR1 updates can overstate the curvature off the path: convergence is only
            # declared on the Hessian of the point itself (formed at most every
            # CONFIRM_EVERY steps, and at the last one).
            neg_hess = -_hessian(model, guide, sub, params, shard)
            fresh, since = True, 0
            delta, predicted, decrement = _trust_region_step(neg_hess, grad, radius)
            converged = decrement <= threshold
        if not fresh:
            converged = torch.zeros_like(converged)
        stalled = converged | (radius <= 1e-10)  # no representable step gains anything
        if bool(converged.all()) or bool(stalled.all()) or steps >= n_steps:
            break
        delta = torch.where(converged.unsqueeze(-1), torch.zeros_like(delta), delta)
        length = delta.norm(dim=-1)
        apply(delta)
        new_value, new_grad = evaluate(False)
        steps += 1
        gain = new_value - value
        keep = (gain > 0) & ~converged
        apply(torch.where(keep.unsqueeze(-1), torch.zeros_like(delta), -delta))
        ratio = gain / predicted.clamp(min=1e-300)
        # Symmetric rank-one update of −H from the full-batch gradients at both ends of
        # the step (kept or not): exact curvature along the step, indefinite allowed.
        diff = -(new_grad - grad) - (neg_hess @ delta.unsqueeze(-1)).squeeze(-1)
        denom = (diff * delta).sum(-1)
        ok = (denom.abs() > 1e-8 * diff.norm(dim=-1) * length) & ~converged
        ok = ok & torch.isfinite(diff).all(-1) & torch.isfinite(denom)
        update = diff.unsqueeze(-1) * diff.unsqueeze(-2) / torch.where(ok, denom, 1.0)[:, None, None]
        neg_hess = neg_hess + torch.where(ok[:, None, None], update, 0.0)
        fresh = fresh and not bool(ok.any())
        since += 1
        value = torch.where(keep, new_value, value)
        grad = torch.where(keep.unsqueeze(-1), new_grad, grad)
        poor = (ratio < 0.25) & ~converged
        good = (ratio > 0.75) & (length >= 0.99 * radius)
        radius = torch.where(poor, 0.25 * length, torch.where(good, 2.0 * radius, radius))
        radius = radius.clamp(min=1e-12)
        history.append(value.cpu() + offset.cpu())
        if progress is not None:
            progress.update(1)
            progress.set_postfix(objective=f"{float(history[-1].mean()):.6f}")
    return torch.stack(history), converged.cpu(), steps
