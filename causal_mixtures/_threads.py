"""The thread policy: ``causal_mixtures.threads(n)``, a context manager that limits torch's
intra-op threads and every BLAS/OpenMP pool threadpoolctl sees, and restores them after.

The library never changes thread counts by itself (an application owns its process); the
command line is an application and runs each command inside ``threads(--threads)``, 1 by
default. On a small shared machine one thread per process is usually fastest: on 2 cores
under load torch's default of two threads made ``deconfound`` 13-44 s against 1.1 s with
one, and a Bayesian fit 99 s against 14 s (docs/guide.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["threads"]


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch and BLAS/OpenMP threads, then restore the previous
    settings.

    Parameters
    ----------
    n : int
        Threads, at least 1.

    Examples
    --------
    >>> import causal_mixtures as cm
    >>> with cm.threads(1):
    ...     pass  # fits here use one thread
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1 (threads); got {n!r}. Use threads(1).")
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)
