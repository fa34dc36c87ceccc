"""Shared fixtures. Every test seeds its own generators; nothing touches global RNG state."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

SMOKE = "CI" in os.environ


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def blobs(rng: np.random.Generator) -> np.ndarray:
    """Three 2-D blobs, shifted far from the origin to exercise the centring."""
    return (
        np.concatenate(
            [
                rng.normal([0.0, 0.0], 1.0, (150, 2)),
                rng.normal([5.0, 5.0], 0.7, (100, 2)),
                rng.normal([-4.0, 6.0], 0.5, (80, 2)),
            ]
        )
        + 50.0
    )


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Torch with 2 threads on the 2-core CI machine ran small EM fits up to 50x slower under
    load (docs/benchmarks.md, threads); the suite pins 1 thread. Library code never does this."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
