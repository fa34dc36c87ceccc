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
    return np.concatenate(
        [
            rng.normal([0.0, 0.0], 1.0, (150, 2)),
            rng.normal([5.0, 5.0], 0.7, (100, 2)),
            rng.normal([-4.0, 6.0], 0.5, (80, 2)),
        ]
    ) + 50.0
