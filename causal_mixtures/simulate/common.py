"""Shared pieces of the simulators: argument checks, float64 tensors, two-level label
distributions and running a Pyro program under ``do`` with torch seeded from a generator."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import pyro.distributions as dist
import torch
from pyro import poutine

from causal_mixtures._random import torch_rng

__all__ = [
    "F64",
    "GRAPH",
    "as_tensor",
    "check_probability",
    "check_real",
    "image_splits",
    "independent_labels",
    "run_program",
    "sign",
    "to_numpy",
    "two_level",
]

F64 = torch.float64
GRAPH = "front_door"


def check_real(
    name: str, value: Any, *, positive: bool = False, nonnegative: bool = False
) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
    ):
        raise ValueError(
            f"{name} must be a finite real number; got {value!r} (type {type(value).__name__})."
        )
    value = float(value)
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0; got {value!r}.")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0; got {value!r}.")
    return value


def check_probability(name: str, value: Any) -> float:
    value = check_real(name, value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be a probability strictly between 0 and 1; got {value!r}.")
    return value


def as_tensor(value: Any) -> torch.Tensor:
    """A float64 tensor (a copy, so NumPy inputs are never shared with torch)."""
    return torch.tensor(value, dtype=F64)


def two_level(p2: torch.Tensor) -> dist.Categorical:
    """Distribution over the labels {1, 2} with ``P(value = 2) = p2`` (int64 draws)."""
    p2 = torch.as_tensor(p2, dtype=F64)
    probs = torch.stack([torch.zeros_like(p2), 1.0 - p2, p2], dim=-1)
    return dist.Categorical(probs=probs)


def sign(condition: torch.Tensor, shift: float) -> torch.Tensor:
    """``+shift`` where ``condition`` holds, ``-shift`` elsewhere (float64)."""
    return torch.where(condition, as_tensor(shift), as_tensor(-shift))


def to_numpy(value: torch.Tensor) -> np.ndarray:
    arr = value.detach().cpu().numpy()
    if arr.dtype.kind == "f":
        return arr.astype(np.float64, copy=True)
    return arr.astype(np.int64, copy=True)


def independent_labels(rng: np.random.Generator, n: int, p_label_1: float) -> torch.Tensor:
    """Labels in {1, 2} drawn independently of everything, with ``P(label = 1)``."""
    labels = np.where(rng.random(n) < p_label_1, 1, 2).astype(np.int64)
    return torch.tensor(labels, dtype=torch.int64)


def run_program(
    program: Callable[..., dict[str, torch.Tensor]],
    n: int,
    rng: np.random.Generator,
    *,
    do: dict[str, torch.Tensor] | None = None,
    **kwargs: Any,
) -> dict[str, np.ndarray]:
    """Run a Pyro program (optionally under ``poutine.do``) with torch seeded from ``rng``."""
    fn = program if do is None else poutine.do(program, data=do)
    with torch_rng(rng):
        values = fn(n, **kwargs)
    return {name: to_numpy(value) for name, value in values.items()}


#: The four splits of the image simulators, by the suffix of their keys.
SPLIT_SUFFIXES = ("", "_test_confounded", "_test", "_oracle")


def image_splits(splits: tuple[dict, dict, dict, dict], names: dict[str, str]) -> dict:
    """The arrays of the train, confounded-test, non-confounded-test and oracle draws under
    the dataset's keys: ``names`` maps a key (``"X"``) to the SCM variable (``"X"``), and
    each split adds its suffix (``"X_test"``)."""
    return {key + suffix: values[var] for suffix, values in zip(SPLIT_SUFFIXES, splits,
                                                              strict=True)
            for key, var in names.items()}
