"""Weighted EM for Gaussian mixtures, batched over intervention values (and restarts).

Details: ``docs/inference.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from causal_mixtures.mixture.params import (
    QUADRATIC_MAX_D,
    LogProbKernel,
    Mixture,
    chunk_size,
    moment_features,
)
from causal_mixtures.mixture.result import FitResult

__all__ = [
    "array_source",
    "params_from_label_chunks",
    "params_from_labels",
    "params_from_responsibilities",
    "statistics",
    "weighted_em",
    "weighted_em_distributed",
    "weighted_em_stream",
]


def _sufficient_statistics(
    X: torch.Tensor, W: torch.Tensor, params: Mixture
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass over in-memory rows: :func:`statistics` of their chunks."""
    n, d = X.shape
    step = chunk_size(n, params.weights.shape[0], params.weights.shape[1], d,
                      params.covariance_type)
    return statistics(((X[s : s + step], W[:, s : s + step]) for s in range(0, n, step)),
                      params)


def statistics(
    chunks: Iterable[tuple[torch.Tensor, torch.Tensor]], params: Mixture
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass: objective at ``params`` and the weighted statistics for the next M-step,
    summed over ``chunks`` of (rows (c, d), weights (B, c)); the rows centred by the caller.

    Per chunk of rows the E-step of all ``B·K`` components is one matrix product
    (:class:`~causal_mixtures.mixture.params.LogProbKernel`) and the M-step statistics are
    batched products ``(r ⊙ X)ᵀ X``. Sums over chunks, so any split of the rows (in memory,
    streamed from disk, or sharded over processes and all-reduced) gives the same
    statistics to rounding.
    """
    b, k = params.weights.shape
    d = params.n_features
    dtype, device = params.means.dtype, params.means.device
    ct = params.covariance_type
    quadratic = ct == "full" and d <= QUADRATIC_MAX_D
    # The rows are centred by weighted_em: the quadratic features of the rows themselves
    # serve the E-step (expanded about zero) and the second moments.
    kernel = LogProbKernel(
        params, center=torch.zeros(d, dtype=dtype, device=device) if quadratic else None
    )
    nk = torch.zeros(b, k, dtype=dtype, device=device)
    s1 = torch.zeros(b, k, d, dtype=dtype, device=device)
    s2 = torch.zeros(
        (b, k) + {"full": (d, d), "diag": (d,), "spherical": ()}[ct], dtype=dtype, device=device
    )
    objective = torch.zeros(b, dtype=dtype, device=device)
    if quadratic:
        i, j = torch.triu_indices(d, d, device=device)
    tiny = torch.finfo(dtype).tiny
    log_tiny = math.log(tiny) + 1.0
    for xc, wc in chunks:
        # One feature matrix per chunk serves the E-step and the moments (no (B, K, c, d)
        # temporary), everything laid out (B, K, c): the reductions over K and the
        # products with the rows run along contiguous memory.
        phi = moment_features(xc, ct)
        wlp = kernel.by_component(xc, phi)  # (B, K, c)
        top = wlp.amax(1, keepdim=True)  # (B, 1, c)
        # Floored at e times the smallest normal number: torch's exp is 15-30x slower on
        # arguments whose result is subnormal or zero, or at the very edge (measured, one
        # thread: float32 from -87.3, float64 from -708.4), and a responsibility below
        # 1e-37 of the row's largest changes no sum.
        e = torch.exp((wlp - top).clamp_(min=log_tiny))
        tot = e.sum(1, keepdim=True)
        norm = (top + torch.log(tot)).squeeze(1)  # (B, c): log Σ_k, one exp per entry
        # Zero-weight rows contribute nothing, even where their density underflows.
        objective += torch.where(wc > 0, wc * norm, torch.zeros_like(norm)).sum(-1)
        rt = e * (wc.unsqueeze(1) / tot)  # (B, K, c): weighted responsibilities
        # Subnormal responsibilities (the floor above times a weight below 1 / tot) are
        # set to zero: they change no sum, and on Intel CPUs a matrix product over them is
        # ~30x slower (measured, one thread, 9000 x 100, K = 300 diag: 4.7 s a pass with
        # them, 0.15 s without). A NaN (from NaN parameters) is kept, not hidden.
        rt.masked_fill_(rt < tiny, 0.0)
        if phi is None:
            _add_moments(rt, xc, ct, nk, s1, s2)
            continue
        stats = torch.matmul(rt, phi)  # (B, K, D + 1); the last column: Σ r
        nk += stats[..., -1]
        s1 += stats[..., :d]
        if quadratic:
            s2[..., i, j] += stats[..., d:-1]
        elif ct == "diag":
            s2 += stats[..., d:-1]
        else:
            s2 += stats[..., d] / d
    if quadratic:
        s2[..., j, i] = s2[..., i, j]
    return objective, nk, s1, s2


def _add_moments(
    rt: torch.Tensor, xc: torch.Tensor, ct: str, nk: torch.Tensor, s1: torch.Tensor,
    s2: torch.Tensor,
) -> None:
    """Add one chunk's weighted moments: ``rt`` (B, K, c) the weighted responsibilities."""
    nk += rt.sum(-1)
    s1 += torch.matmul(rt, xc)
    if ct == "full":
        s2 += torch.matmul((rt.unsqueeze(-1) * xc).transpose(-1, -2), xc)
    elif ct == "diag":
        s2 += torch.matmul(rt, xc * xc)
    else:
        s2 += torch.matmul(rt, (xc * xc).sum(-1, keepdim=True)).squeeze(-1) / xc.shape[-1]


def _reg(reg_covar: float | torch.Tensor, ndim: int, like: torch.Tensor) -> Any:
    """``reg_covar`` (a number, or one per batch member) broadcast to ``ndim`` dimensions."""
    if isinstance(reg_covar, torch.Tensor):
        return reg_covar.to(like).reshape((-1,) + (1,) * (ndim - 1))
    return reg_covar


def _m_step(
    nk: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor, reg_covar: float | torch.Tensor,
    covariance_type: str,
) -> Mixture:
    eps = 10 * torch.finfo(nk.dtype).eps
    nk = nk + eps
    means = s1 / nk.unsqueeze(-1)
    if covariance_type == "full":
        d = means.shape[-1]
        cov = s2 / nk[..., None, None] - means.unsqueeze(-1) * means.unsqueeze(-2)
        cov = 0.5 * (cov + cov.transpose(-1, -2))
        eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
        cov = cov + _reg(reg_covar, cov.dim(), cov) * eye
    elif covariance_type == "diag":
        cov = s2 / nk.unsqueeze(-1) - means * means
        cov = cov + _reg(reg_covar, cov.dim(), cov)
    else:
        cov = s2 / nk - (means * means).mean(-1)
        cov = cov + _reg(reg_covar, cov.dim(), cov)
    weights = nk / nk.sum(-1, keepdim=True)
    return Mixture(weights, means, cov, covariance_type)


def params_from_responsibilities(
    X: torch.Tensor, W: torch.Tensor, resp: torch.Tensor, reg_covar: float | torch.Tensor,
    covariance_type: str,
) -> Mixture:
    """M-step from given responsibilities ``resp`` of shape (B, n, K) (for initialisation)."""
    r = resp * W.unsqueeze(-1)
    rt = r.transpose(-1, -2)
    nk = rt.sum(-1)
    s1 = torch.matmul(rt, X)
    d = X.shape[-1]
    if covariance_type == "full":
        # One component at a time: broadcasting all K at once materialised a (B, K, n, d)
        # tensor (4 GB at n = 1e6, d = K = 10); this holds one (B, n, d) product at a time.
        s2 = torch.stack(
            [torch.matmul((X * r[..., k : k + 1]).transpose(-1, -2), X)
             for k in range(r.shape[-1])], dim=-3,
        )
    elif covariance_type == "diag":
        s2 = torch.matmul(rt, X * X)
    else:
        s2 = torch.matmul(rt, (X * X).sum(-1, keepdim=True)).squeeze(-1) / d
    return _m_step(nk, s1, s2, reg_covar, covariance_type)


def params_from_labels(
    X: torch.Tensor, W: torch.Tensor, labels: torch.Tensor, n_components: int,
    reg_covar: float | torch.Tensor, covariance_type: str,
) -> Mixture:
    """M-step from hard labels of shape (B, n) (the k-means start), by chunks of rows: equal
    to :func:`params_from_responsibilities` with one-hot responsibilities, without their
    (B, n, K) array (160 MB at n = 1e6, K = 10, B = 2, and a few copies of it) and about the
    mean of the rows (one-pass moments exact to rounding wherever the data sit)."""
    n, d = X.shape
    step = chunk_size(n, W.shape[0], n_components, d, covariance_type)
    return params_from_label_chunks(
        ((X[s : s + step], labels[:, s : s + step], W[:, s : s + step])
         for s in range(0, n, step)),
        X.mean(0), n_components, reg_covar, covariance_type,
    )


def params_from_label_chunks(
    chunks: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], shift: torch.Tensor,
    n_components: int, reg_covar: float | torch.Tensor, covariance_type: str,
    reduce: Callable[..., Any] | None = None,
) -> Mixture:
    """:func:`params_from_labels` from chunks of ``(rows (c, d), labels (B, c), weights (B,
    c))`` (normalised weights), the moments taken about ``shift`` (d,) (the rows' mean, or
    any point near it): the out-of-core fit's start. ``reduce(*tensors)``, when given,
    returns the sums of the moments over the processes holding other rows (the
    distributed fit)."""
    k, ct = n_components, covariance_type
    nk = s1 = s2 = None
    for x, lab, w in chunks:
        if nk is None:
            b, d = lab.shape[0], x.shape[1]
            nk = torch.zeros(b, k, dtype=x.dtype, device=x.device)
            s1 = torch.zeros(b, k, d, dtype=x.dtype, device=x.device)
            s2 = torch.zeros((b, k) + {"full": (d, d), "diag": (d,), "spherical": ()}[ct],
                             dtype=x.dtype, device=x.device)
        r = torch.nn.functional.one_hot(lab, k).to(x.dtype)
        _add_moments((r * w.unsqueeze(-1)).transpose(-1, -2), x - shift, ct, nk, s1, s2)
    if nk is None:
        raise ValueError("the chunks held no rows. Pass at least one chunk of rows.")
    if reduce is not None:
        nk, s1, s2 = reduce(nk, s1, s2)
    return _shift_params(_m_step(nk, s1, s2, reg_covar, ct), shift)


def _where_params(mask: torch.Tensor, new: Mixture, old: Mixture) -> Mixture:
    """Take ``new`` where ``mask`` (shape (B,)) is True, else keep ``old``."""

    def pick(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        m = mask.reshape((-1,) + (1,) * (a.dim() - 1))
        return torch.where(m, a, b)

    return Mixture(
        pick(new.weights, old.weights),
        pick(new.means, old.means),
        pick(new.covariances, old.covariances),
        new.covariance_type,
        pick(new.precisions_cholesky, old.precisions_cholesky),
    )


def _take(params: Mixture, idx: torch.Tensor) -> Mixture:
    """The batch members ``idx`` of ``params``."""
    return Mixture(
        params.weights[idx], params.means[idx], params.covariances[idx],
        params.covariance_type, params.precisions_cholesky[idx],
    )


def _put(params: Mixture, idx: torch.Tensor, new: Mixture) -> Mixture:
    """``params`` with its batch members ``idx`` replaced by ``new``."""

    def put(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = a.clone()
        out[idx] = b
        return out

    return Mixture(
        put(params.weights, new.weights), put(params.means, new.means),
        put(params.covariances, new.covariances), params.covariance_type,
        put(params.precisions_cholesky, new.precisions_cholesky),
    )


def _hold_dropped(new: Mixture, old: Mixture, dropped: torch.Tensor) -> Mixture:
    """Dropped components keep weight zero (the others renormalised) and their old
    parameters, so they never take responsibility again (log 0 = −inf)."""
    w = torch.where(dropped, torch.zeros_like(new.weights), new.weights)
    w = w / w.sum(-1, keepdim=True)

    def keep(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        m = dropped.reshape(dropped.shape + (1,) * (a.dim() - 2))
        return torch.where(m, b, a)

    return Mixture(
        w, keep(new.means, old.means), keep(new.covariances, old.covariances),
        new.covariance_type, keep(new.precisions_cholesky, old.precisions_cholesky),
    )


def _shift_params(params: Mixture, shift: torch.Tensor) -> Mixture:
    return Mixture(
        params.weights,
        params.means + shift,
        params.covariances,
        params.covariance_type,
        params.precisions_cholesky,
    )


def weighted_em(
    X: torch.Tensor,
    W: torch.Tensor,
    init: Mixture,
    *,
    reg_covar: float | torch.Tensor = 1e-6,
    tol: float = 1e-3,
    max_iter: int = 100,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    dropped: torch.Tensor | None = None,
) -> FitResult:
    """Run weighted EM from ``init`` for every row of ``W`` at once.

    Parameters
    ----------
    X : Tensor of shape (n, d)
        The data, shared by all batch members.
    W : Tensor of shape (B, n)
        Non-negative weights; each row is normalised to sum to one here.
    init : Mixture
        Initial parameters (torch) with batch size ``B`` (in the coordinates of ``X``).
    reg_covar, tol, max_iter
        As in :class:`sklearn.mixture.GaussianMixture` (``reg_covar`` may also be a tensor of
        shape (B,), one value per member); ``tol`` applies to the change of the normalised
        objective ``Σ w̃ log q``.
    callback : callable, optional
        Called as ``callback(iteration, objective)`` after every iteration (progress bars).
    dropped : Tensor of shape (B, K), bool, optional
        Components held at weight zero (and their parameters unchanged): a member with a
        dropped component is a mixture of fewer components.

    Returns
    -------
    FitResult
        ``history`` holds the objective at the start of every iteration, shape (T, B).
    """
    W = W / W.sum(-1, keepdim=True)
    # Centre the data once: the one-pass covariance update is then exact to rounding. Rows
    # already centred (the estimators standardise them) are used as they are: with every
    # column mean within 10 sd of zero the cancellation costs at most ~100 ulp, and the
    # copy would be the largest array of the fit.
    shift = _centre(X.sum(0), torch.linalg.vector_norm(X, dim=0).square(), X.shape[0])
    Xc = X if not bool(shift.any()) else X - shift  # no (n, d) temporary above

    def one_pass(params: Mixture, idx: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        return _sufficient_statistics(Xc, W if idx is None else W[idx], params)

    return _em_loop(one_pass, init, shift, b=W.shape[0], reg_covar=reg_covar, tol=tol,
                    max_iter=max_iter, callback=callback, dropped=dropped)


def weighted_em_stream(
    source: Callable[[], Iterable[tuple[Any, Any]]],
    init: Mixture,
    *,
    reg_covar: float | torch.Tensor = 1e-6,
    tol: float = 1e-3,
    max_iter: int = 100,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    dropped: torch.Tensor | None = None,
    reduce: Callable[..., Any] | None = None,
) -> FitResult:
    """:func:`weighted_em` on rows that are never all in memory.

    ``source()`` returns a fresh iterable over all the rows, in chunks of ``(rows (c, d),
    weights (B, c))`` (tensors or arrays: a NumPy memmap, Parquet row groups, a generator),
    in the same order at every call. One pass sums the weights and the column moments;
    every EM iteration is one more pass summing the sufficient statistics (:func:`statistics`),
    so the result equals :func:`weighted_em` on the concatenated rows to rounding (tested to
    1e-10), in memory O(chunk × B × K × d). :func:`array_source` makes a source of arrays.
    ``reduce(*tensors)``, when given, returns the sums of every pass's totals and
    statistics over the processes that stream the other rows (one all-reduce per pass:
    the distributed fit, :meth:`CausalGaussianMixture.fit_distributed
    <causal_mixtures.CausalGaussianMixture.fit_distributed>`).
    """
    dtype, device = init.means.dtype, init.means.device

    def chunks() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        for xc, wc in source():
            yield (torch.as_tensor(xc, dtype=dtype, device=device),
                   torch.as_tensor(wc, dtype=dtype, device=device))

    total = None
    col, col_sq, n = 0.0, 0.0, 0
    for xc, wc in chunks():
        total = wc.sum(-1) if total is None else total + wc.sum(-1)
        col, col_sq, n = col + xc.sum(0), col_sq + (xc * xc).sum(0), n + len(xc)
    if total is None:
        raise ValueError("source() yielded no rows. Pass a source over at least one chunk.")
    if reduce is not None:
        total, col, col_sq, n_t = reduce(total, col, col_sq,
                                      torch.tensor(float(n), dtype=torch.float64))
        n = float(n_t)
    shift = _centre(col, col_sq, n)

    def one_pass(params: Mixture, idx: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        t = total if idx is None else total[idx]
        stats = statistics(
            ((xc - shift, (wc if idx is None else wc[idx]) / t.unsqueeze(-1))
             for xc, wc in chunks()), params,
        )
        return stats if reduce is None else tuple(reduce(*stats))

    return _em_loop(one_pass, init, shift, b=len(total), reg_covar=reg_covar, tol=tol,
                    max_iter=max_iter, callback=callback, dropped=dropped)


def weighted_em_distributed(
    X: torch.Tensor,
    W: torch.Tensor,
    init: Mixture,
    *,
    group: Any = None,
    reg_covar: float | torch.Tensor = 1e-6,
    tol: float = 1e-3,
    max_iter: int = 100,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    dropped: torch.Tensor | None = None,
) -> FitResult:
    """:func:`weighted_em` on rows sharded over the processes of a ``torch.distributed``
    process group (``torchrun``; gloo on CPUs, NCCL on GPUs).

    Every process passes its own shard ``X`` (n_p, d) and ``W`` (B, n_p) (weights not
    normalised: the totals are all-reduced) and the same ``init``. The weight totals, the
    column moments and every pass's statistics are summed over the group (one
    ``all_reduce`` per pass), so every process ends with the same result, equal to
    :func:`weighted_em` on the concatenated rows to rounding (tested with two processes on
    loopback to 1e-10). ``group``: the process group (default: the world).
    """
    import torch.distributed as dist

    def all_sum(*tensors: torch.Tensor) -> list[torch.Tensor]:
        flat = torch.cat([t.reshape(-1).to(X.dtype) for t in tensors])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        out, i = [], 0
        for t in tensors:
            out.append(flat[i : i + t.numel()].reshape(t.shape).to(t.dtype))
            i += t.numel()
        return out

    total, col, col_sq, n = all_sum(
        W.sum(-1), X.sum(0), torch.linalg.vector_norm(X, dim=0).square(),
        torch.tensor([float(len(X))], dtype=X.dtype, device=X.device),
    )
    shift = _centre(col, col_sq, float(n))
    Xc = X if not bool(shift.any()) else X - shift

    def one_pass(params: Mixture, idx: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        w, t = (W, total) if idx is None else (W[idx], total[idx])
        return tuple(all_sum(*_sufficient_statistics(Xc, w / t.unsqueeze(-1), params)))

    return _em_loop(one_pass, init, shift, b=len(total), reg_covar=reg_covar, tol=tol,
                    max_iter=max_iter, callback=callback, dropped=dropped)


def _centre(col: torch.Tensor, col_sq: torch.Tensor, n: float) -> torch.Tensor:
    """The shift the EM centres its rows by, from the column sums and sums of squares:
    zero when every column mean is within 10 sd of zero (rows the estimators standardised:
    the one-pass covariance then loses at most ~100 ulp, and no copy is made), else the
    column means."""
    mean = col / n
    if bool((mean.square() <= 100.0 * (col_sq / n - mean.square())).all()):
        return torch.zeros_like(mean)
    return mean


def array_source(
    X: Any, W: Any, chunk_rows: int = 65_536
) -> Callable[[], Iterable[tuple[Any, Any]]]:
    """A :func:`weighted_em_stream` source over arrays ``X`` (n, d) and ``W`` (B, n) that
    are read ``chunk_rows`` rows at a time (a ``numpy.memmap`` is never loaded whole)."""
    n = len(X)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1; got {chunk_rows!r}.")

    def source() -> Iterable[tuple[Any, Any]]:
        for s in range(0, n, chunk_rows):
            # Copies of one chunk each (a read-only memmap cannot back a tensor).
            yield np.array(X[s : s + chunk_rows]), np.array(W[:, s : s + chunk_rows])

    return source


def _em_loop(
    one_pass: Callable[[Mixture, torch.Tensor | None], tuple[torch.Tensor, ...]],
    init: Mixture, shift: torch.Tensor, *, b: int, reg_covar: float | torch.Tensor,
    tol: float, max_iter: int, callback: Callable[[int, torch.Tensor], None] | None,
    dropped: torch.Tensor | None,
) -> FitResult:
    """The EM iterations, whatever holds the rows: ``one_pass(params, idx)`` returns the
    objective and statistics of the members ``idx`` (all for ``None``) at ``params``, on
    rows centred by ``shift``."""
    params = _shift_params(init, -shift)
    device, dtype = init.means.device, init.means.dtype
    converged = torch.zeros(b, dtype=torch.bool, device=device)
    n_iter = torch.zeros(b, dtype=torch.long, device=device)
    prev = torch.full((b,), -math.inf, dtype=dtype, device=device)
    history: list[torch.Tensor] = []
    for it in range(1, max_iter + 1):
        active = ~converged
        if bool(active.all()):
            objective, nk, s1, s2 = one_pass(params, None)
            new = _m_step(nk, s1, s2, reg_covar, init.covariance_type)
            if dropped is not None:
                new = _hold_dropped(new, params, dropped)
            params = _where_params(active, new, params)
        else:
            # Converged members are frozen: no pass over the rows for them (two do values
            # cost the sum of their iterations, not twice the larger).
            idx = active.nonzero().squeeze(-1)
            sub = _take(params, idx)
            obj_a, nk, s1, s2 = one_pass(sub, idx)
            reg = reg_covar[idx] if isinstance(reg_covar, torch.Tensor) else reg_covar
            new = _m_step(nk, s1, s2, reg, init.covariance_type)
            if dropped is not None:
                new = _hold_dropped(new, sub, dropped[idx])
            params = _put(params, idx, new)
            objective = prev.clone()
            objective[idx] = obj_a
        history.append(torch.where(converged, prev, objective))
        n_iter = n_iter + active.long()
        change = (objective - prev).abs()
        newly = active & (change < tol)
        converged = converged | newly
        prev = torch.where(active, objective, prev)
        if callback is not None:
            callback(it, history[-1])
        if bool(converged.all()):
            break
    lower_bound = one_pass(params, None)[0]  # the weighted log-likelihood at the result
    return FitResult(
        _shift_params(params, shift), lower_bound, converged, n_iter, torch.stack(history)
    )
