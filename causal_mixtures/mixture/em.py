"""Weighted EM for Gaussian mixtures, batched over intervention values (and restarts).

One call fits ``B`` independent mixtures at once, one per row of the weight matrix ``W`` of
shape ``(B, n_samples)``: in mechanism learning ``B`` is the number of intervention values
times the number of restarts. The data matrix ``X`` is shared by every batch member.

The maths (DESIGN.md §2): with weights ``w̃_n >= 0`` summing to one,

* E-step, in log space: ``log γ_nk = log π_k + log N(x_n; μ_k, Σ_k) − logsumexp_j(...)``;
* M-step: ``W_k = Σ_n w̃_n γ_nk``, ``π_k = W_k``, ``μ_k = Σ_n w̃_n γ_nk x_n / W_k`` and
  ``Σ_k = Σ_n w̃_n γ_nk (x_n − μ_k)(x_n − μ_k)ᵀ / W_k + reg_covar·I``;
* objective ``L = Σ_n w̃_n log Σ_k π_k N(x_n; μ_k, Σ_k)``, non-decreasing every iteration.

Implementation notes
--------------------
* Each iteration is a single pass over the rows, in chunks of bounded memory: the chunk's
  E-step produces the responsibilities, which are immediately reduced into the weighted
  sufficient statistics ``(W_k, Σ w̃γx, Σ w̃γxxᵀ)``; no ``(B, n, K, d)`` tensor is ever
  allocated. The data are centred once (column means) so that the one-pass covariance
  ``S2/W − μμᵀ`` loses no precision in float64.
* Parameters are stored as in scikit-learn: Cholesky factors of the precision matrices, so
  the log-density needs one triangular product and no inverse. The ``B·K`` components of a
  chunk are evaluated by a single matrix product against the concatenated factors.
* Batch members converge separately: a member whose objective has changed by less than
  ``tol`` keeps its parameters frozen while the others continue, so fitting ``B`` mixtures
  together gives exactly the fits obtained one at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "COVARIANCE_TYPES",
    "EMResult",
    "MixtureParams",
    "compute_precision_cholesky",
    "estimate_log_prob",
    "log_likelihood",
    "n_parameters",
    "weighted_em",
]

COVARIANCE_TYPES = ("full", "diag", "spherical")

_CHUNK_BUDGET = 2**20  # elements of the largest per-chunk intermediate (8 MiB in float64)


@dataclass
class MixtureParams:
    """Parameters of ``B`` Gaussian mixtures with ``K`` components in ``d`` dimensions.

    Attributes
    ----------
    weights : Tensor of shape (B, K)
        Mixing proportions.
    means : Tensor of shape (B, K, d)
    covariances : Tensor
        ``(B, K, d, d)`` for "full", ``(B, K, d)`` for "diag", ``(B, K)`` for "spherical".
    precisions_cholesky : Tensor
        Cholesky factors of the precisions, same shapes as ``covariances``.
    covariance_type : str
    """

    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor
    precisions_cholesky: torch.Tensor
    covariance_type: str

    def select(self, index: torch.Tensor) -> MixtureParams:
        """The batch members ``index`` (a 1-D long tensor)."""
        return MixtureParams(
            self.weights[index],
            self.means[index],
            self.covariances[index],
            self.precisions_cholesky[index],
            self.covariance_type,
        )


@dataclass
class EMResult:
    """Output of :func:`weighted_em`.

    Attributes
    ----------
    params : MixtureParams
        Final parameters (after the last M-step).
    lower_bound : Tensor of shape (B,)
        Weighted log-likelihood ``Σ_n w̃_n log q(x_n)`` at the final parameters.
    converged : Tensor of shape (B,), bool
    n_iter : Tensor of shape (B,), long
        Number of EM steps run for each member.
    history : list of Tensor of shape (B,)
        The objective at the start of every iteration (for trace plots).
    """

    params: MixtureParams
    lower_bound: torch.Tensor
    converged: torch.Tensor
    n_iter: torch.Tensor
    history: list[torch.Tensor]


def n_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Number of free parameters of one mixture (as :meth:`GaussianMixture._n_parameters`)."""
    k, d = n_components, n_features
    if covariance_type == "full":
        cov = k * d * (d + 1) // 2
    elif covariance_type == "diag":
        cov = k * d
    elif covariance_type == "spherical":
        cov = k
    else:  # pragma: no cover - validated by callers
        raise ValueError(f"unknown covariance_type {covariance_type!r}")
    return int(cov + k * d + k - 1)


def compute_precision_cholesky(covariances: torch.Tensor, covariance_type: str) -> torch.Tensor:
    """Cholesky factors of the precisions from covariances (batched).

    Raises
    ------
    ValueError
        If a covariance is not positive definite, with a message that suggests raising
        ``reg_covar`` (the same advice as scikit-learn).
    """
    msg = (
        "Fitting the mixture model failed because some components have ill-defined "
        "empirical covariance (for instance caused by singleton or collapsed samples, or by "
        "almost all weight on a few rows). Try to decrease the number of components, to "
        "increase reg_covar, or to smooth the weights (weight_smoothing='psis')."
    )
    if covariance_type == "full":
        chol, info = torch.linalg.cholesky_ex(covariances)
        if bool((info != 0).any()):
            raise ValueError(msg)
        eye = torch.eye(covariances.shape[-1], dtype=covariances.dtype, device=covariances.device)
        eye = eye.expand_as(covariances)
        inv_chol = torch.linalg.solve_triangular(chol, eye, upper=False)
        return inv_chol.transpose(-1, -2)
    if bool((covariances <= 0).any()) or not bool(torch.isfinite(covariances).all()):
        raise ValueError(msg)
    return 1.0 / torch.sqrt(covariances)


def _log_det_cholesky(
    prec_chol: torch.Tensor, covariance_type: str, n_features: int
) -> torch.Tensor:
    if covariance_type == "full":
        return torch.log(torch.diagonal(prec_chol, dim1=-2, dim2=-1)).sum(-1)
    if covariance_type == "diag":
        return torch.log(prec_chol).sum(-1)
    return n_features * torch.log(prec_chol)


class _LogProbKernel:
    """Precomputed per-component quantities for evaluating ``log π_k + log N(x; μ_k, Σ_k)``
    on chunks of rows with one matrix product per chunk.

    "full": ``X`` times the concatenated precision factors ``[P_11 … P_BK]`` gives all
    ``B·K`` whitened residuals at once; "diag"/"spherical": the Mahalanobis distance is
    expanded as ``x²·prec − 2x·(μ prec) + μ² prec``.
    """

    def __init__(self, params: MixtureParams, d: int) -> None:
        b, k = params.weights.shape
        ct = params.covariance_type
        self.shape = (b, k, d)
        self.covariance_type = ct
        log_det = _log_det_cholesky(params.precisions_cholesky, ct, d)
        self.const = (
            -0.5 * d * math.log(2 * math.pi) + log_det + torch.log(params.weights)
        ).unsqueeze(-2)
        mu = params.means
        if ct == "full":
            pc = params.precisions_cholesky  # (B, K, d, d)
            self.p_all = pc.permute(2, 0, 1, 3).reshape(d, b * k * d)
            self.offset = torch.matmul(mu.unsqueeze(-2), pc).reshape(1, b * k * d)
            return
        prec = params.precisions_cholesky**2  # (B, K, d) or (B, K)
        if ct == "diag":
            self.lin = (mu * prec).transpose(-1, -2)  # (B, d, K)
            self.quad = prec.transpose(-1, -2)  # (B, d, K)
            self.quad0 = (mu * mu * prec).sum(-1).unsqueeze(-2)  # (B, 1, K)
        else:
            self.lin = (mu * prec.unsqueeze(-1)).transpose(-1, -2)  # (B, d, K)
            self.quad = prec.unsqueeze(-2)  # (B, 1, K)
            self.quad0 = ((mu * mu).sum(-1) * prec).unsqueeze(-2)

    def __call__(self, xc: torch.Tensor) -> torch.Tensor:
        """Weighted per-component log-densities of the rows ``xc``: shape (B, c, K)."""
        b, k, d = self.shape
        if self.covariance_type == "full":
            y = (torch.matmul(xc, self.p_all) - self.offset).view(xc.shape[0], b, k, d)
            # vector_norm is ~10x faster here than einsum or (y * y).sum(-1).
            maha = torch.linalg.vector_norm(y, dim=-1).square().permute(1, 0, 2)
        elif self.covariance_type == "diag":
            maha = torch.matmul(xc * xc, self.quad) - 2.0 * torch.matmul(xc, self.lin) + self.quad0
        else:
            x2 = (xc * xc).sum(-1, keepdim=True)  # (c, 1)
            maha = x2 * self.quad - 2.0 * torch.matmul(xc, self.lin) + self.quad0
        return self.const - 0.5 * maha


def estimate_log_prob(X: torch.Tensor, params: MixtureParams) -> torch.Tensor:
    """Per-component weighted log-densities ``log π_k + log N(x_n; μ_k, Σ_k)``.

    Parameters
    ----------
    X : Tensor of shape (n, d)
    params : MixtureParams with batch size B

    Returns
    -------
    Tensor of shape (B, n, K)
    """
    return _LogProbKernel(params, X.shape[-1])(X)


def _chunk_size(n: int, batch: int, k: int, d: int, covariance_type: str) -> int:
    """Rows per chunk: small enough that the per-chunk intermediates stay in cache
    (measured: 2 000 rows at d = 64 is 1.5-2x faster than 25 000)."""
    if covariance_type == "full":
        per_row = batch * k * d + 3 * batch * k
    else:
        per_row = 2 * d + 3 * batch * k
    return max(256, min(n, _CHUNK_BUDGET // max(per_row, 1)))


def log_likelihood(X: torch.Tensor, params: MixtureParams) -> torch.Tensor:
    """``log q(x_n)`` for every batch member, shape (B, n), computed in bounded memory."""
    n, d = X.shape
    b, k = params.weights.shape
    step = _chunk_size(n, b, k, d, params.covariance_type)
    kernel = _LogProbKernel(params, d)
    return torch.cat([torch.logsumexp(kernel(X[s : s + step]), -1) for s in range(0, n, step)], -1)


def _sufficient_statistics(
    X: torch.Tensor, W: torch.Tensor, params: MixtureParams
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass: objective at ``params`` and the weighted statistics for the next M-step.

    Per chunk of rows the E-step of all ``B·K`` components is one matrix product
    (:class:`_LogProbKernel`) and the M-step statistics are batched products ``(r ⊙ X)ᵀ X``.
    """
    n, d = X.shape
    b, k = params.weights.shape
    ct = params.covariance_type
    step = _chunk_size(n, b, k, d, ct)
    dtype, device = X.dtype, X.device
    kernel = _LogProbKernel(params, d)
    nk = torch.zeros(b, k, dtype=dtype, device=device)
    s1 = torch.zeros(b, k, d, dtype=dtype, device=device)
    s2 = torch.zeros(
        (b, k) + {"full": (d, d), "diag": (d,), "spherical": ()}[ct], dtype=dtype, device=device
    )
    objective = torch.zeros(b, dtype=dtype, device=device)
    for s in range(0, n, step):
        xc = X[s : s + step]
        wc = W[:, s : s + step]  # (B, c)
        wlp = kernel(xc)  # (B, c, K)
        norm = torch.logsumexp(wlp, -1)  # (B, c)
        # Zero-weight rows contribute nothing, even where their density underflows.
        objective += torch.where(wc > 0, wc * norm, torch.zeros_like(norm)).sum(-1)
        r = torch.exp(wlp - norm.unsqueeze(-1)) * wc.unsqueeze(-1)  # (B, c, K)
        rt = r.transpose(-1, -2)  # (B, K, c)
        nk += rt.sum(-1)
        s1 += torch.matmul(rt, xc)
        if ct == "full":
            s2 += torch.matmul((rt.unsqueeze(-1) * xc).transpose(-1, -2), xc)
        elif ct == "diag":
            s2 += torch.matmul(rt, xc * xc)
        else:
            s2 += torch.matmul(rt, (xc * xc).sum(-1, keepdim=True)).squeeze(-1) / d
    return objective, nk, s1, s2


def _m_step(
    nk: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor, reg_covar: float, covariance_type: str
) -> MixtureParams:
    eps = 10 * torch.finfo(nk.dtype).eps
    nk = nk + eps
    means = s1 / nk.unsqueeze(-1)
    if covariance_type == "full":
        d = means.shape[-1]
        cov = s2 / nk[..., None, None] - means.unsqueeze(-1) * means.unsqueeze(-2)
        cov = 0.5 * (cov + cov.transpose(-1, -2))
        cov = cov + reg_covar * torch.eye(d, dtype=cov.dtype, device=cov.device)
    elif covariance_type == "diag":
        cov = s2 / nk.unsqueeze(-1) - means * means + reg_covar
    else:
        cov = s2 / nk - (means * means).mean(-1) + reg_covar
    weights = nk / nk.sum(-1, keepdim=True)
    return MixtureParams(
        weights, means, cov, compute_precision_cholesky(cov, covariance_type), covariance_type
    )


def params_from_responsibilities(
    X: torch.Tensor, W: torch.Tensor, resp: torch.Tensor, reg_covar: float, covariance_type: str
) -> MixtureParams:
    """M-step from given responsibilities ``resp`` of shape (B, n, K) (for initialisation)."""
    r = resp * W.unsqueeze(-1)
    rt = r.transpose(-1, -2)
    nk = rt.sum(-1)
    s1 = torch.matmul(rt, X)
    d = X.shape[-1]
    if covariance_type == "full":
        s2 = torch.matmul(rt.unsqueeze(-1).mul(X).transpose(-1, -2), X)
    elif covariance_type == "diag":
        s2 = torch.matmul(rt, X * X)
    else:
        s2 = torch.matmul(rt, (X * X).sum(-1, keepdim=True)).squeeze(-1) / d
    return _m_step(nk, s1, s2, reg_covar, covariance_type)


def _where_params(mask: torch.Tensor, new: MixtureParams, old: MixtureParams) -> MixtureParams:
    """Take ``new`` where ``mask`` (shape (B,)) is True, else keep ``old``."""

    def pick(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        m = mask.reshape((-1,) + (1,) * (a.dim() - 1))
        return torch.where(m, a, b)

    return MixtureParams(
        pick(new.weights, old.weights),
        pick(new.means, old.means),
        pick(new.covariances, old.covariances),
        pick(new.precisions_cholesky, old.precisions_cholesky),
        new.covariance_type,
    )


def _shift_params(params: MixtureParams, shift: torch.Tensor) -> MixtureParams:
    return MixtureParams(
        params.weights,
        params.means + shift,
        params.covariances,
        params.precisions_cholesky,
        params.covariance_type,
    )


def weighted_em(
    X: torch.Tensor,
    W: torch.Tensor,
    init: MixtureParams,
    *,
    reg_covar: float = 1e-6,
    tol: float = 1e-3,
    max_iter: int = 100,
    callback=None,
) -> EMResult:
    """Run weighted EM from ``init`` for every row of ``W`` at once.

    Parameters
    ----------
    X : Tensor of shape (n, d)
        The data, shared by all batch members.
    W : Tensor of shape (B, n)
        Non-negative weights; each row is normalised to sum to one here.
    init : MixtureParams
        Initial parameters with batch size ``B`` (in the coordinates of ``X``).
    reg_covar, tol, max_iter
        As in :class:`sklearn.mixture.GaussianMixture`; ``tol`` applies to the change of the
        normalised objective ``Σ w̃ log q``.
    callback : callable, optional
        Called as ``callback(iteration, objective)`` after every iteration (progress bars).

    Returns
    -------
    EMResult
    """
    W = W / W.sum(-1, keepdim=True)
    # Centre the data once: the one-pass covariance update is then exact to rounding.
    shift = X.mean(0)
    Xc = X - shift
    params = _shift_params(init, -shift)
    b = W.shape[0]
    converged = torch.zeros(b, dtype=torch.bool, device=X.device)
    n_iter = torch.zeros(b, dtype=torch.long, device=X.device)
    prev = torch.full((b,), -math.inf, dtype=X.dtype, device=X.device)
    history: list[torch.Tensor] = []
    for it in range(1, max_iter + 1):
        objective, nk, s1, s2 = _sufficient_statistics(Xc, W, params)
        history.append(torch.where(converged, prev, objective))
        active = ~converged
        new = _m_step(nk, s1, s2, reg_covar, init.covariance_type)
        params = _where_params(active, new, params)
        n_iter = n_iter + active.long()
        change = (objective - prev).abs()
        newly = active & (change < tol)
        converged = converged | newly
        prev = torch.where(active, objective, prev)
        if callback is not None:
            callback(it, history[-1])
        if bool(converged.all()):
            break
    final = log_likelihood(Xc, params)
    lower_bound = torch.where(W > 0, W * final, torch.zeros_like(final)).sum(-1)
    return EMResult(_shift_params(params, shift), lower_bound, converged, n_iter, history)
