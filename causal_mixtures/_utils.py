"""Small shared helpers: randomness, array validation and torch conversion.

Private module: the public API re-exports nothing from here.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

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


def torch_generator(
    rng: np.random.Generator, device: torch.device | str = "cpu"
) -> torch.Generator:
    """A fresh :class:`torch.Generator` on ``device`` seeded from ``rng``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(rng))
    return gen


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Validate the ``device`` argument; ``None`` means CPU."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {device!r}.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} was requested but torch.cuda.is_available() is False on "
            "this machine. Use device='cpu'."
        )
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda'; got {device!r}.")
    return dev


def check_finite(name: str, values: np.ndarray, *, hint: str = "") -> None:
    """Raise ``ValueError`` naming ``name`` when ``values`` holds NaN or infinity."""
    if values.dtype.kind in "fc":
        bad = ~np.isfinite(values)
        if bad.any():
            idx = np.argwhere(bad)[0]
            where = tuple(int(i) for i in idx)
            raise ValueError(
                f"{name} must contain only finite values; found {int(bad.sum())} NaN or "
                f"infinite entries (first at index {where if len(where) > 1 else where[0]}). "
                + (hint or "Drop or impute those rows before fitting.")
            )


def as_2d_float(name: str, values: Any, *, allow_1d: bool = False) -> np.ndarray:
    """Convert to a finite float64 2-D array (a copy, never a view of the user's data)."""
    arr = np.array(values, dtype=np.float64, copy=True)
    if arr.ndim == 1:
        if not allow_1d:
            raise ValueError(
                f"{name} must be 2-D of shape (n_samples, n_features); got a 1-D array of "
                f"shape {arr.shape}. Reshape it with {name}.reshape(-1, 1) if it holds a "
                "single feature."
            )
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, n_features); got shape {arr.shape}."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must have at least one row; got shape {arr.shape}.")
    check_finite(name, arr)
    return arr


def feature_names(values: Any) -> np.ndarray | None:
    """Column names of a pandas DataFrame (as an object array), else ``None``."""
    cols = getattr(values, "columns", None)
    if cols is None:
        return None
    names = np.asarray([str(c) for c in cols], dtype=object)
    return names
