"""The reduction hook of the out-of-core fit (:mod:`causal_mixtures.estimators.out_of_core`):
every pass of :meth:`CausalGaussianMixture.fit_stream
<causal_mixtures.CausalGaussianMixture.fit_stream>` sums statistics over chunks, and a
:class:`Reducer` combines those sums across the processes that each hold a shard of the
rows. :class:`Reducer` is the identity (one process, ``fit_stream``);
:class:`ProcessGroupReducer` all-reduces over a ``torch.distributed`` process group
(:meth:`CausalGaussianMixture.fit_distributed
<causal_mixtures.CausalGaussianMixture.fit_distributed>`): ``sum`` for totals and
moments, ``max`` for maxima, ``gather`` (in rank order) for the scan's counts, the tails
of the largest log weights and the rows of the k-means start; with ``inference="svi"``,
``sum`` also adds up every step's gradients, objective and Newton Hessian (tensors, returned
in their dtype and on their device). Details: ``docs/distributed.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["ProcessGroupReducer", "Reducer"]


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
                "(GPUs) in every process first, e.g. under torchrun, or fit in one process "
                "(fit_stream, or fit for inference='svi')."
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
