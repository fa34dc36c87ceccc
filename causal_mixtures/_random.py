"""Randomness: ``random_state`` to a local NumPy generator, and torch draws seeded from it.

The global NumPy and torch generators are never used as sources nor left modified.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["RandomState", "check_random_state", "derive_seed", "torch_rng"]

RandomState = int | np.random.Generator | np.random.RandomState | None


def check_random_state(random_state: RandomState) -> np.random.Generator:
    """Turn ``random_state`` into a local :class:`numpy.random.Generator`.

    The global NumPy RNG is never used nor modified. A ``Generator`` is returned as is (so
    successive calls advance it), an ``int`` seeds a fresh generator, ``None`` draws fresh
    OS entropy, and a legacy ``RandomState`` seeds a generator from one of its draws.
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(
                f"random_state must be a non-negative int, a numpy Generator or None; "
                f"got {random_state!r}. Try random_state=0."
            )
        return np.random.default_rng(int(random_state))
    raise TypeError(
        "random_state must be an int, a numpy.random.Generator, a numpy.random.RandomState "
        f"or None; got {type(random_state).__name__}. Try random_state=0."
    )


def derive_seed(rng: np.random.Generator) -> int:
    """Draw a 63-bit seed from ``rng`` (used to seed torch inside :func:`torch_rng`)."""
    return int(rng.integers(0, 2**63 - 1))


@contextlib.contextmanager
def torch_rng(rng: np.random.Generator, device: torch.device | str | None = None) -> Iterator[None]:
    """Run torch / Pyro draws seeded from ``rng`` without touching the global torch state.

    The global torch generator (CPU, and CUDA where used) is forked, seeded from ``rng``,
    and restored on exit, so the caller's torch RNG state is unchanged afterwards.
    """
    devices: list[int] = []
    if device is not None and torch.device(device).type == "cuda":
        dev = torch.device(device)
        devices = [dev.index if dev.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        seed = derive_seed(rng)
        # The only seeding of torch in the package, and it is local: fork_rng saved the
        # global state above and restores it on exit (tested in test_estimator.py).
        torch.manual_seed(seed)
        yield
