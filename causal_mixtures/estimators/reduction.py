"""The reduction hook of the out-of-core fit (:mod:`causal_mixtures.estimators.out_of_core`):
every pass of :meth:`CausalGaussianMixture.fit_stream
<causal_mixtures.CausalGaussianMixture.fit_stream>` sums statistics over chunks, and a
:class:`Reducer` combines those sums across the processes that each hold a shard of the
rows. :class:`Reducer` is the identity (one process, ``fit_stream``);
:class:`ProcessGroupReducer` all-reduces over a ``torch.distributed`` process group
(:meth:`CausalGaussianMixture.fit_distributed
<causal_mixtures.CausalGaussianMixture.fit_distributed>`): ``sum`` for totals and
moments, ``max`` for maxima, ``gather`` (in rank order) for the scan's counts, the tails
of the largest log weights and the rows of the k-means start. Details:
``docs/distributed.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from causal_mixtures.weights.streamed import MechanismScan, WeightSums, _Counts, _Moments

__all__ = ["ProcessGroupReducer", "Reducer", "merge_scans", "reduce_weight_sums"]


class Reducer:
    """The identity reduction: one process holds all the rows."""

    rank = 0
    world_size = 1

    def sum(self, *arrays: Any) -> list[Any]:
        """The sums over the processes of ``arrays`` (NumPy arrays or tensors), each
        returned as it came (type, dtype, device)."""
        return list(arrays)

    def max(self, *arrays: Any) -> list[Any]:
        """The elementwise maxima over the processes of ``arrays``."""
        return list(arrays)

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj`` (picklable), in rank order."""
        return [obj]


class ProcessGroupReducer(Reducer):
    """Reductions over a ``torch.distributed`` process group (gloo on CPUs; NCCL moves
    the flattened sums to this process's CUDA device).

    Parameters
    ----------
    group : ProcessGroup, optional
        The process group; ``None`` means the default (world) group, which must be
        initialised (``torch.distributed.init_process_group``, e.g. under ``torchrun``).

    Raises
    ------
    RuntimeError
        When ``torch.distributed`` is unavailable or not initialised.
    """

    def __init__(self, group: Any = None) -> None:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(
                "fit_distributed needs an initialised torch.distributed process group; none "
                "is. Call torch.distributed.init_process_group('gloo') (CPUs) or ('nccl') "
                "(GPUs) in every process first, e.g. under torchrun, or use fit_stream in one "
                "process."
            )
        self.dist, self.group = dist, group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        backend = str(dist.get_backend(group)).lower()
        self.device = (torch.device("cuda", torch.cuda.current_device())
                       if backend == "nccl" else torch.device("cpu"))

    def _reduce(self, arrays: tuple[Any, ...], op: Any) -> list[Any]:
        flats = [torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a)
                 for a in arrays]
        flat = torch.cat([t.reshape(-1).to(device=self.device, dtype=torch.float64)
                          for t in flats])
        self.dist.all_reduce(flat, op=op, group=self.group)
        out, i = [], 0
        for a, t in zip(arrays, flats, strict=True):
            part = flat[i : i + t.numel()].reshape(t.shape)
            i += t.numel()
            if isinstance(a, torch.Tensor):
                out.append(part.to(device=a.device, dtype=a.dtype))
            else:
                out.append(part.cpu().numpy().astype(np.asarray(a).dtype, copy=False))
        return out

    def sum(self, *arrays: Any) -> list[Any]:
        return self._reduce(arrays, self.dist.ReduceOp.SUM)

    def max(self, *arrays: Any) -> list[Any]:
        return self._reduce(arrays, self.dist.ReduceOp.MAX)

    def gather(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world_size
        self.dist.all_gather_object(out, obj, group=self.group)
        return out


# --------------------------------------------------------------------------- the scan
def _merge_moments(parts: list[_Moments]) -> _Moments:
    """Moments of the concatenated rows, about the first part's centre (the first
    chunk's mean, as in one process)."""
    parts = [p for p in parts if p.centre is not None and p.n > 0]
    if not parts:
        return _Moments()
    first = parts[0]
    out = _Moments(centre=first.centre, diagonal=first.diagonal)
    out.n, out.s1, out.s2 = 0, 0.0, 0.0
    for p in parts:
        delta = p.centre - first.centre  # x − c₀ = (x − c_p) + δ
        out.low, out.high = np.minimum(out.low, p.low), np.maximum(out.high, p.high)
        out.s1 = out.s1 + p.s1 + p.n * delta
        if not first.diagonal:
            cross = np.outer(p.s1, delta)
            out.s2 = out.s2 + p.s2 + cross + cross.T + p.n * np.outer(delta, delta)
        out.n += p.n
    return out


def _merge_counts(parts: list[_Counts]) -> _Counts:
    out = _Counts(parts[0].cap)
    out.dtype = next((p.dtype for p in parts if p.dtype is not None), None)
    for p in parts:
        if p.counts is None:
            out.counts = None
            break
        out.add(list(p.counts), np.array(list(p.counts.values()), dtype=np.int64))
    return out


def merge_scans(parts: list[MechanismScan]) -> MechanismScan:
    """The :class:`~causal_mixtures.weights.streamed.MechanismScan` of the concatenated
    shards, from every process's scan in rank order (what one process scanning all the
    rows in that order finds, to rounding)."""
    full = [p for p in parts if p.n > 0]
    if len(parts) == 1 or not full:
        return parts[0]
    out = MechanismScan()
    first = full[0]
    out.n = sum(p.n for p in full)
    out.d, out.d_z = first.d, first.d_z
    out.x_min = np.min([p.x_min for p in full], axis=0)
    out.x_max = np.max([p.x_max for p in full], axis=0)
    out.rows = _merge_moments([p.rows for p in full])
    out.rows.diagonal = True
    out.causes = _merge_counts([p.causes for p in full])
    out.levels = _merge_counts([p.levels for p in full])
    out.cells = _merge_counts([p.cells for p in full])
    out.y_range = [min(p.y_range[0] for p in full), max(p.y_range[1] for p in full)]
    for p in full:
        for c in p.per_class:
            out.per_class.setdefault(c, None)
    out.per_class = {c: _merge_moments([p.per_class[c] for p in full if c in p.per_class])
                     for c in out.per_class}
    out.joint = _merge_moments([p.joint for p in full])
    out.numeric_z = all(p.numeric_z for p in full)
    return out


def reduce_weight_sums(sums: WeightSums, reducer: Reducer) -> WeightSums:
    """The :class:`~causal_mixtures.weights.streamed.WeightSums` of all the shards (``sums``
    built with the total row count): the largest log weights ``ref`` by ``max``, every
    process's sums rescaled to them and summed, the tails of the largest log weights
    gathered and cut to the longest tail k̂ reads. Identity in one process."""
    if reducer.world_size == 1:
        return sums
    (ref,) = reducer.max(sums.ref)
    with np.errstate(invalid="ignore", over="ignore"):
        f = np.where(np.isfinite(sums.ref), np.exp(sums.ref - ref), 0.0)
    sums.total, sums.total_sq, sums.s1, sums.s2, sums.share, sums.positive = reducer.sum(
        sums.total * f, sums.total_sq * f * f, sums.s1 * f[:, None], sums.s2 * f[:, None],
        sums.share * f[None, :], sums.positive,
    )
    sums.ref = ref
    tails = reducer.gather(sums.tail)
    for j in range(sums.n_do):
        col = np.concatenate([t[j] for t in tails])
        if len(col) > sums.m_tail:
            col = np.partition(col, len(col) - sums.m_tail)[len(col) - sums.m_tail:]
        sums.tail[j] = col
    return sums
