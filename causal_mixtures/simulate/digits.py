"""The semi-synthetic background-digits SCM (scikit-learn's ``load_digits`` images, no
download): the digit is the cause, a background mask the mechanism, an unmeasured
confounder shifts the background intensity."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from sklearn.datasets import load_digits
from sklearn.utils import Bunch

from causal_mixtures._random import RandomState, check_random_state
from causal_mixtures._validation import check_int
from causal_mixtures.simulate.common import (
    F64,
    GRAPH,
    as_tensor,
    check_probability,
    check_real,
    image_splits,
    independent_labels,
    run_program,
    two_level,
)

__all__ = ["background_digits_scm", "make_background_digits"]


def background_digits_scm(
    n: int,
    images: Sequence[torch.Tensor],
    *,
    quy: float = 0.8,
    b: float = 100.0 / 255.0 * 16.0,
    p_z_equals_y: float = 0.95,
    max_value: float = 16.0,
) -> dict[str, torch.Tensor]:
    """Pyro program of the semi-synthetic background-brightness SCM.

    ::

        U ~ N(0, 5**2)
        Y ~ {1, 2},  P(Y = 2 | U) = 1 / (1 + exp(q U)),  q = log((1 - quy) / quy)
        Z ~ {1, 2},  P(Z = Y) = p_z_equals_y            (the digit actually drawn)
        I | Z ~ uniform over the images of digit Z       (site "image_index")
        X = clip(image I + (0.5 tanh(0.2 U) + 0.5) b, 0, max_value)

    For ``quy > 0.5`` bright backgrounds go with ``Y = 2``; ``quy = 0.5`` makes ``Y``
    independent of ``U``.

    Parameters
    ----------
    n : int
        Number of rows.
    images : sequence of 2 torch.Tensor
        Pools of flattened images of the digits coded ``Z = 1`` and ``Z = 2``, each of
        shape ``(n_images_k, n_pixels)``.
    quy : float, default=0.8
        Confounding strength, in (0, 1).
    b : float, default=100 / 255 * 16
        Background brightness scale, on the scale of the images.
    p_z_equals_y : float, default=0.95
        Probability that the digit drawn matches the label.
    max_value : float, default=16.0
        Upper clip of the pixel values (16 for :func:`sklearn.datasets.load_digits`).

    Returns
    -------
    dict of str to torch.Tensor
        Sites ``"U"`` (float64), ``"Y"``, ``"Z"``, ``"image_index"`` (int64, index into
        the pool of digit ``Z``), each ``(n,)``, and ``"X"`` (float64, ``(n, n_pixels)``).
    """
    if len(images) != 2:
        raise ValueError(f"images must hold 2 image pools; got {len(images)}.")
    counts = [int(pool.shape[0]) for pool in images]
    n_pix = int(images[0].shape[1])
    width = max(counts)
    pools = torch.zeros((2, width, n_pix), dtype=F64)
    choose = torch.zeros((2, width), dtype=F64)
    for k, pool in enumerate(images):
        pools[k, : counts[k]] = pool.to(F64)
        choose[k, : counts[k]] = 1.0 / counts[k]
    q = math.log((1.0 - quy) / quy)
    with pyro.plate("rows", n):
        u = pyro.sample("U", dist.Normal(as_tensor(0.0), as_tensor(5.0)))
        y = pyro.sample("Y", two_level(torch.sigmoid(-q * u)))
        z = pyro.sample(
            "Z", two_level(torch.where(y == 2, as_tensor(p_z_equals_y), as_tensor(1.0 - p_z_equals_y)))
        )
        idx = pyro.sample("image_index", dist.Categorical(probs=choose[z - 1]))
        background = (0.5 * torch.tanh(0.2 * u) + 0.5) * b
        x = torch.clamp(pools[z - 1, idx] + background.unsqueeze(-1), 0.0, max_value)
        x = pyro.deterministic("X", x, event_dim=1)
    return {"U": u, "Y": y, "Z": z, "image_index": idx, "X": x}


def make_background_digits(
    *,
    n_samples: int | None = None,
    n_test: int = 1000,
    quy: float = 0.8,
    b: float | None = None,
    digits: tuple[int, int] = (2, 6),
    random_state: RandomState = None,
) -> Bunch:
    """Semi-synthetic digits after Mao & Little, on scikit-learn's bundled 8x8 digits.

    The paper's background-brightness experiment (MNIST digits 2 and 6) rebuilt offline on
    :func:`sklearn.datasets.load_digits` (no download): an unmeasured ``U ~ N(0, 5**2)``
    brightens the background of every image and, under confounding, makes label ``Y = 2``
    more likely; the digit drawn ``Z`` (``P(Z = Y) = 0.95``) is the mechanism. Runs
    :func:`background_digits_scm`.

    The images of each digit are split once, at random from ``random_state``, into a
    training half and a test half: training sets (``X``, ``X_oracle``) draw only from
    the training half, test sets only from the test half, so no image appears in both.
    Images are drawn with replacement, so any ``n_samples`` is allowed.

    Parameters
    ----------
    n_samples : int or None, default=None
        Number of confounded training rows (and of oracle rows); ``None`` means 2000.
    n_test : int, default=1000
        Number of rows in each test set.
    quy : float, default=0.8
        Confounding strength of the training data and of the confounded test set, in
        (0, 1); 0.5 means no confounding.
    b : float or None, default=None
        Background brightness scale on the 0-16 scale of ``load_digits``; ``None`` means
        ``100 / 255 * 16`` (the paper's ``b = 100`` on the 0-255 scale).
    digits : tuple of 2 int, default=(2, 6)
        The digits coded ``Z = 1`` and ``Z = 2`` (and the matching labels ``Y``).
    random_state : int, numpy.random.Generator or None, default=None
        Source of all randomness (image split and draws); the same seed gives identical
        arrays.

    Returns
    -------
    sklearn.utils.Bunch
        With keys

        - ``X`` (n_samples, 64) float64, ``y`` (n_samples,) int64 in {1, 2},
          ``mechanism`` (n_samples,) int64 in {1, 2}, ``confounder`` (n_samples,)
          float64: confounded training rows (training image pool);
        - ``X_test_confounded``, ``y_test_confounded``, ... : ``n_test`` rows of the same
          confounded SCM on the test image pool;
        - ``X_test``, ``y_test``, ... : ``n_test`` non-confounded rows on the test pool,
          ``Y`` uniform on {1, 2} independent of ``U`` and set by ``do(Y)`` (the same
          distribution as ``quy = 0.5``);
        - ``X_oracle``, ``y_oracle``, ... : ``n_samples`` non-confounded training rows;
        - ``images_shape`` ``(8, 8)``, ``digits``, ``classes`` ``[1, 2]``,
          ``train_images`` / ``test_images`` (indices into ``load_digits`` of each
          pool), ``b``, ``quy``, ``feature_names``, ``graph`` ``"front_door"``, ``scm``,
          ``description``.
    """
    n_samples = 2000 if n_samples is None else check_int("n_samples", n_samples)
    n_test = check_int("n_test", n_test)
    quy = check_probability("quy", quy)
    b = 100.0 / 255.0 * 16.0 if b is None else check_real("b", b, nonnegative=True)
    digits = _check_digits(digits)
    rng = check_random_state(random_state)

    images, target = load_digits(return_X_y=True)
    train_pool: list[np.ndarray] = []
    test_pool: list[np.ndarray] = []
    for digit in digits:
        idx = np.flatnonzero(target == digit)
        idx = idx[rng.permutation(idx.size)]
        half = idx.size // 2
        train_pool.append(np.sort(idx[:half]))
        test_pool.append(np.sort(idx[half:]))
    train_images = [torch.tensor(images[i], dtype=F64) for i in train_pool]
    test_images = [torch.tensor(images[i], dtype=F64) for i in test_pool]

    def draw(n: int, pool: list[torch.Tensor], do_y: torch.Tensor | None) -> dict[str, np.ndarray]:
        return run_program(
            background_digits_scm,
            n,
            rng,
            do=None if do_y is None else {"Y": do_y},
            images=pool,
            quy=quy,
            b=b,
        )

    train = draw(n_samples, train_images, None)
    test_conf = draw(n_test, test_images, None)
    test = draw(n_test, test_images, independent_labels(rng, n_test, 0.5))
    oracle = draw(n_samples, train_images, independent_labels(rng, n_samples, 0.5))

    out = Bunch(**image_splits((train, test_conf, test, oracle),
                               {"X": "X", "y": "Y", "mechanism": "Z", "confounder": "U"}))
    out.update(
        images_shape=(8, 8),
        digits=digits,
        classes=np.array([1, 2], dtype=np.int64),
        train_images=train_pool,
        test_images=test_pool,
        b=b,
        quy=quy,
        feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
        graph=GRAPH,
        scm=background_digits_scm,
        description=(
            "Semi-synthetic digits after Mao & Little (arXiv:2410.20057) on scikit-learn's "
            f"8x8 digits {digits[0]} (Y/Z = 1) and {digits[1]} (Y/Z = 2): U ~ N(0, 25); "
            "P(Y=2|U) = 1/(1+exp(qU)), q = log((1-quy)/quy), "
            f"quy = {quy}; P(Z=Y) = 0.95; "
            f"X = clip(image of Z + (0.5 tanh(0.2U) + 0.5) * {b:.4g}, 0, 16). "
            "Test sets draw from a held-out half of the images; the non-confounded test and "
            "oracle sets draw Y uniformly, independent of U, and set it by do(Y)."
        ),
    )
    return out


def _check_digits(digits: Any) -> tuple[int, int]:
    try:
        pair = tuple(digits)
    except TypeError:
        pair = ()
    if (
        len(pair) != 2
        or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) for d in pair)
        or any(not 0 <= int(d) <= 9 for d in pair)
        or int(pair[0]) == int(pair[1])
    ):
        raise ValueError(
            f"digits must be a pair of two different ints in 0-9, e.g. (2, 6); got {digits!r}."
        )
    return int(pair[0]), int(pair[1])
