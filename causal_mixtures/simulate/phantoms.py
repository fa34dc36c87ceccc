"""A semi-synthetic head-CT benchmark built offline: procedural head phantoms with lesions of
six types, their masks as the mechanism and an unmeasured scanner site as the confounder
(after the paper's intracranial-haemorrhage experiment, with real interventional test data).

The structural causal model (NumPy; every draw from ``random_state``)::

    U ~ Categorical(p_site)                       scanner / site (unmeasured)
    Y | U ~ p(y | u) ∝ p(y) q(u | y)              lesion class, imbalanced like the paper's
    T | Y: T = Y with prob. p_type_match, else one of the other 5 types uniformly
    M = mask(T, shape noise)                      the lesion mask image: the mechanism
    A ~ anatomy (pose, skull, brain texture, ventricles), independent of everything
    X = scanner_U(render(A) + contrast · M) + noise_U

so ``Y -> M -> X`` with ``Y <- U -> X``: the front door, with the mask carrying all of the
class's effect on the image. The site changes the image's gain, offset, noise level, blur and
streak artefacts, and shifts the class balance (``p(y | u)``), so a classifier trained on the
confounded images can read the class off the scanner. The non-confounded test set and the
oracle training set draw ``Y`` independently of ``U`` (uniform over the classes by default) and
run the same mechanisms: ground truth from the SCM, never from a fitted model.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.utils import Bunch

from causal_mixtures._random import RandomState, check_random_state
from causal_mixtures._validation import check_int
from causal_mixtures.simulate.common import GRAPH, check_probability, image_splits

__all__ = ["CT_CLASS_NAMES", "CT_PAPER_COUNTS", "head_ct_scm", "make_head_ct"]

#: The six lesion classes (types); 0 is the common one.
CT_CLASS_NAMES = (
    "intraparenchymal",
    "intraventricular",
    "subarachnoid",
    "subdural",
    "epidural",
    "multifocal",
)
#: The paper's class counts (2411 head-CT slices).
CT_PAPER_COUNTS = (2093, 52, 171, 56, 21, 18)
#: ``p(site)`` and ``q(site | class)``: site 0 scans almost all class-0 slices, site 1 the
#: classes 1-2, site 2 the classes 3-5.
P_SITE_GIVEN_CLASS = np.array(
    [
        [0.90, 0.07, 0.03],
        [0.03, 0.94, 0.03],
        [0.03, 0.94, 0.03],
        [0.03, 0.03, 0.94],
        [0.03, 0.03, 0.94],
        [0.03, 0.03, 0.94],
    ]
)
#: Scanner of each site: gain, offset, noise sd, box-blur radius (pixels at 64 px), streaks.
SITES = (
    {"gain": 1.00, "offset": 0.00, "noise": 0.02, "blur": 0, "streaks": 0.00},
    {"gain": 0.80, "offset": 0.08, "noise": 0.06, "blur": 1, "streaks": 0.00},
    {"gain": 1.12, "offset": -0.03, "noise": 0.03, "blur": 0, "streaks": 0.12},
)
_CHUNK = 512


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    t = ((np.arange(size) + 0.5) / size * 2.0 - 1.0).astype(np.float32)
    yy, xx = np.meshgrid(t, t, indexing="ij")
    return xx[None], yy[None]


def _ellipse(xx, yy, cx, cy, ax, ay, angle) -> np.ndarray:
    """Inside-ellipse indicator per row: parameters of shape (n,) (float32 arithmetic)."""

    def col(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=np.float32)[:, None, None]

    c, s = col(np.cos(angle)), col(np.sin(angle))
    dx, dy = xx - col(cx), yy - col(cy)
    u = (c * dx + s * dy) / col(ax)
    v = (c * dy - s * dx) / col(ay)
    return u * u + v * v <= 1.0


def _band(xx, yy, radius, width, phi, span) -> np.ndarray:
    """An arc of a ring around the image centre: radius ``radius ± width/2``, angles within
    ``span / 2`` of ``phi`` (image y axis pointing down)."""
    r = np.hypot(xx, yy)
    ang = np.arctan2(yy, xx)
    dphi = np.angle(np.exp(1j * (ang - phi[:, None, None])))
    return (np.abs(r - radius[:, None, None]) <= width[:, None, None] / 2) & (
        np.abs(dphi) <= span[:, None, None] / 2
    )


def lesion_masks(types: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Masks (n, size, size) of lesions of the given types, shape, size and position random
    (absolute positions: the mask does not depend on the anatomy)."""
    xx, yy = _grid(size)
    n = len(types)
    out = np.zeros((n, size, size), dtype=bool)
    u = rng.uniform(size=(n, 8))

    def lerp(col: int, lo: float, hi: float, rows: np.ndarray) -> np.ndarray:
        return lo + (hi - lo) * u[rows, col]

    for t in range(6):
        rows = np.flatnonzero(types == t)
        if rows.size == 0:
            continue
        if t == 0:  # a round bleed in the left hemisphere
            r = lerp(2, 0.10, 0.15, rows)
            m = _ellipse(
                xx,
                yy,
                lerp(0, -0.38, -0.24, rows),
                lerp(1, -0.06, 0.12, rows),
                r * lerp(3, 0.8, 1.2, rows),
                r,
                lerp(4, 0.0, math.pi, rows),
            )
        elif t == 1:  # two small bleeds next to the ventricles
            r1, r2 = lerp(2, 0.04, 0.07, rows), lerp(3, 0.04, 0.07, rows)
            cy = lerp(1, -0.12, 0.08, rows)
            zero = np.zeros(rows.size)
            m = _ellipse(xx, yy, lerp(0, 0.07, 0.15, rows), cy, r1, r1, zero) | _ellipse(
                xx, yy, -lerp(4, 0.07, 0.15, rows), cy + lerp(5, -0.04, 0.04, rows), r2, r2, zero
            )
        elif t == 2:  # a thin arc in the upper left sulci
            m = _band(
                xx,
                yy,
                lerp(0, 0.40, 0.50, rows),
                lerp(1, 0.06, 0.09, rows),
                lerp(2, -2.5, -1.9, rows),
                lerp(3, 0.6, 1.0, rows),
            )
        elif t == 3:  # a crescent along the right inner skull
            m = _band(
                xx,
                yy,
                lerp(0, 0.53, 0.58, rows),
                lerp(1, 0.06, 0.10, rows),
                lerp(2, -0.3, 0.3, rows),
                lerp(3, 1.0, 1.5, rows),
            )
        elif t == 4:  # a lens under the skull at the back (bottom of the image)
            m = _ellipse(
                xx,
                yy,
                lerp(0, -0.1, 0.1, rows),
                lerp(1, 0.55, 0.62, rows),
                lerp(2, 0.14, 0.20, rows),
                lerp(3, 0.05, 0.08, rows),
                lerp(4, -0.2, 0.2, rows),
            )
        else:  # two small bleeds in the lower right (occipital) brain
            r1, r2 = lerp(2, 0.07, 0.10, rows), lerp(3, 0.07, 0.10, rows)
            zero = np.zeros(rows.size)
            m = _ellipse(
                xx, yy, lerp(0, 0.25, 0.36, rows), lerp(1, 0.12, 0.26, rows), r1, r1, zero
            ) | _ellipse(xx, yy, lerp(4, 0.0, 0.1, rows), lerp(5, 0.3, 0.4, rows), r2, r2, zero)
        out[rows] = m
    return out


def _box_blur(img: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur of radius ``radius`` along the last two axes (edges replicated)."""
    if radius <= 0:
        return img
    k = 2 * radius + 1
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (radius + 1, radius)
        c = np.cumsum(np.pad(img, pad, mode="edge"), axis=axis)
        img = (
            np.take(c, np.arange(k, c.shape[axis]), axis=axis)
            - np.take(c, np.arange(0, c.shape[axis] - k), axis=axis)
        ) / k
    return img


def render_heads(masks: np.ndarray, sites: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Images (n, size, size) in [0, 1]: a random head with the lesions of ``masks``, seen
    by the scanners of ``sites``."""
    n, size, _ = masks.shape
    xx, yy = _grid(size)
    p = rng.uniform(size=(n, 10))
    cx, cy = 0.06 * p[:, 0] - 0.03, 0.06 * p[:, 1] - 0.03
    ang = 0.2 * p[:, 2] - 0.1
    scale = 0.96 + 0.08 * p[:, 3]
    ax, ay = 0.72 * scale, 0.86 * scale
    thick = 0.06 + 0.03 * p[:, 4]
    head = _ellipse(xx, yy, cx, cy, ax, ay, ang)
    brain = _ellipse(xx, yy, cx, cy, ax - thick, ay - thick, ang)
    vr = 0.05 + 0.04 * p[:, 5]
    vent = _ellipse(xx, yy, cx + 0.09, cy - 0.02, vr, 1.8 * vr, ang + 0.3 * (p[:, 6] - 0.5)) | (
        _ellipse(xx, yy, cx - 0.09, cy - 0.02, vr, 1.8 * vr, ang - 0.3 * (p[:, 7] - 0.5))
    )
    coarse = rng.normal(size=(n, size // 8, size // 8))
    texture = _box_blur(np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2), 3)
    img = np.where(head, 1.0, 0.0)
    img = np.where(brain, 0.35 + 0.04 * texture, img)
    img = np.where(vent & brain, 0.15, img)
    contrast = 0.32 + 0.12 * p[:, 8]
    img = img + np.where(brain, contrast[:, None, None] * masks, 0.0)
    out = np.empty_like(img)
    for s, spec in enumerate(SITES):
        rows = np.flatnonzero(sites == s)
        if rows.size == 0:
            continue
        x = spec["gain"] * img[rows] + spec["offset"] * head[rows]
        x = _box_blur(x, int(round(spec["blur"] * size / 64)))
        if spec["streaks"] > 0:
            theta = rng.uniform(0, math.pi, size=(rows.size, 2))
            for k in range(2):
                c, sn = np.cos(theta[:, k])[:, None, None], np.sin(theta[:, k])[:, None, None]
                dist = np.abs(xx[0] * sn - yy[0] * c)
                x = x + spec["streaks"] * np.exp(-((dist / 0.03) ** 2)) * head[rows]
        out[rows] = x + spec["noise"] * rng.normal(size=x.shape)
    return np.clip(out, 0.0, 1.0)


def head_ct_scm(
    n: int,
    rng: np.random.Generator,
    *,
    do: np.ndarray | None = None,
    class_proportions: np.ndarray,
    p_type_match: float = 0.9,
    image_size: int = 64,
) -> dict[str, np.ndarray]:
    """Run the SCM for ``n`` rows (observationally, or under ``do(Y = do)`` with ``do`` an
    array of ``n`` classes; then ``U`` keeps its marginal and is independent of ``Y``).

    Returns
    -------
    dict of str to ndarray
        ``"U"`` (site), ``"Y"`` (class), ``"T"`` (lesion type drawn), ``"M"`` (n, size²)
        float64 masks, ``"X"`` (n, size²) float64 images.
    """
    joint = class_proportions[:, None] * P_SITE_GIVEN_CLASS  # p(y, u)
    p_site = joint.sum(0)
    u = rng.choice(3, size=n, p=p_site)
    if do is None:
        p_y_given_u = (joint / p_site)[:, u].T  # (n, 6)
        y = (p_y_given_u.cumsum(1) > rng.uniform(size=(n, 1))).argmax(1)
    else:
        y = np.asarray(do, dtype=np.int64)
    other = (y + rng.integers(1, 6, size=n)) % 6
    t = np.where(rng.uniform(size=n) < p_type_match, y, other)
    X = np.empty((n, image_size * image_size))
    M = np.empty((n, image_size * image_size))
    for start in range(0, n, _CHUNK):
        sl = slice(start, start + _CHUNK)
        masks = lesion_masks(t[sl], image_size, rng)
        X[sl] = render_heads(masks, u[sl], rng).reshape(masks.shape[0], -1)
        M[sl] = masks.reshape(masks.shape[0], -1)
    return {
        "U": u.astype(np.int64),
        "Y": y.astype(np.int64),
        "T": t.astype(np.int64),
        "M": M,
        "X": X,
    }


def make_head_ct(
    n_samples: int = 2400,
    *,
    n_test: int = 1200,
    image_size: int = 64,
    class_proportions: Any = None,
    p_type_match: float = 0.9,
    test_balance: str = "uniform",
    random_state: RandomState = None,
) -> Bunch:
    """Semi-synthetic head-CT slices with six imbalanced lesion classes, the lesion mask as
    the mechanism and an unmeasured scanner site as the confounder (:func:`head_ct_scm`).

    After the intracranial-haemorrhage experiment of Mao & Little (2411 slices, classes
    2093 / 52 / 171 / 56 / 21 / 18), rebuilt offline: procedural phantoms (skull, brain with
    texture, ventricles; random pose), lesions of six types (round bleed, bleeds by the
    ventricles, thin sulcal arc, crescent along the skull, lens under the skull, two frontal
    bleeds) inserted with their masks, and three scanner sites that change gain, offset,
    noise, blur and streak artefacts and scan different classes. Unlike the paper's, the
    non-confounded test set and the oracle training set are simulated from the same SCM
    under ``do(Y)``.

    Parameters
    ----------
    n_samples : int, default=2400
        Confounded training rows (and oracle training rows).
    n_test : int, default=1200
        Rows in each test set.
    image_size : int, default=64
        Images are ``image_size × image_size`` (a multiple of 8, at least 32).
    class_proportions : array-like of 6 floats, optional
        ``p(y)`` of the confounded data; default the paper's counts normalised.
    p_type_match : float, default=0.9
        Probability that the lesion drawn is of the class's type (the others share the rest).
    test_balance : {"uniform", "observed"}, default="uniform"
        ``p(y)`` of the non-confounded test set and of the oracle training set: uniform
        over the six classes, or ``class_proportions``; ``Y`` independent of the site.
    random_state : int, numpy.random.Generator or None, default=None

    Returns
    -------
    sklearn.utils.Bunch
        With keys

        - ``X`` (n_samples, size²) float64 images in [0, 1], ``y`` (n_samples,) int64 in
          0-5, ``mechanism`` (n_samples, size²) float64 0/1 masks, ``confounder``
          (n_samples,) int64 site, ``lesion_type`` (n_samples,): confounded training rows;
        - ``X_test_confounded``, ``y_test_confounded``, ...: ``n_test`` rows of the same SCM;
        - ``X_test``, ``y_test``, ...: ``n_test`` non-confounded rows (``Y`` drawn by
          ``test_balance`` independently of the site, then ``do(Y)``);
        - ``X_oracle``, ``y_oracle``, ...: ``n_samples`` non-confounded training rows;
        - ``sample_do`` (callable ``(n, do, random_state=None) -> X`` of shape (n, size²)),
          ``images_shape``, ``classes``, ``class_names``, ``class_proportions``,
          ``p_site`` (the site marginal), ``p_site_given_class``, ``sites`` (the scanner
          settings), ``p_type_match``, ``feature_names``, ``graph`` ``"front_door"``,
          ``scm``, ``description``.

    Examples
    --------
    >>> from causal_mixtures.datasets import make_head_ct
    >>> data = make_head_ct(300, n_test=60, random_state=0)
    >>> data.X.shape, data.mechanism.shape, data.images_shape
    ((300, 4096), (300, 4096), (64, 64))
    """
    n_samples = check_int("n_samples", n_samples)
    n_test = check_int("n_test", n_test)
    image_size = check_int("image_size", image_size)
    if image_size < 32 or image_size % 8:
        raise ValueError(
            f"image_size must be a multiple of 8 and at least 32; got {image_size}. Try 64."
        )
    p_type_match = check_probability("p_type_match", p_type_match)
    if class_proportions is None:
        props = np.asarray(CT_PAPER_COUNTS, dtype=float)
    else:
        props = np.asarray(class_proportions, dtype=float).reshape(-1)
        if props.shape != (6,) or not np.all(np.isfinite(props)) or np.any(props <= 0):
            raise ValueError(
                "class_proportions must be 6 positive numbers (one per lesion class); got "
                f"{class_proportions!r}. Try the paper's counts, {list(CT_PAPER_COUNTS)}."
            )
    props = props / props.sum()
    if test_balance not in ("uniform", "observed"):
        raise ValueError(f"test_balance must be 'uniform' or 'observed'; got {test_balance!r}.")
    rng = check_random_state(random_state)
    p_test = np.full(6, 1 / 6) if test_balance == "uniform" else props
    opts = {"class_proportions": props, "p_type_match": p_type_match, "image_size": image_size}

    train = head_ct_scm(n_samples, rng, **opts)
    test_conf = head_ct_scm(n_test, rng, **opts)
    test = head_ct_scm(n_test, rng, do=rng.choice(6, size=n_test, p=p_test), **opts)
    oracle = head_ct_scm(n_samples, rng, do=rng.choice(6, size=n_samples, p=p_test), **opts)

    def sample_do(n: int, do: int, random_state: RandomState = None) -> np.ndarray:
        """``n`` images from the SCM under ``do(Y = do)``."""
        n = check_int("n", n)
        if do not in range(6):
            raise ValueError(f"do must be a class in 0-5; got {do!r}.")
        r = check_random_state(random_state)
        return head_ct_scm(n, r, do=np.full(n, int(do)), **opts)["X"]

    out = Bunch(**image_splits((train, test_conf, test, oracle), {
        "X": "X", "y": "Y", "mechanism": "M", "confounder": "U", "lesion_type": "T"}))
    joint = props[:, None] * P_SITE_GIVEN_CLASS
    out.update(
        sample_do=sample_do,
        images_shape=(image_size, image_size),
        classes=np.arange(6, dtype=np.int64),
        class_names=list(CT_CLASS_NAMES),
        class_proportions=props,
        p_test=p_test,
        p_site=joint.sum(0),
        p_site_given_class=P_SITE_GIVEN_CLASS.copy(),
        sites=[dict(s) for s in SITES],
        p_type_match=p_type_match,
        feature_names=[f"pixel_{r}_{c}" for r in range(image_size) for c in range(image_size)],
        graph=GRAPH,
        scm=head_ct_scm,
        description=(
            "Semi-synthetic head CT after Mao & Little (arXiv:2410.20057): U = scanner site "
            "(3), Y | U imbalanced lesion class (6; p(y) the paper's 2093/52/171/56/21/18), "
            f"lesion type T = Y with prob. {p_type_match}, mechanism = lesion mask of type T, "
            f"X = {image_size}x{image_size} phantom (random pose, texture) + lesion, seen by "
            "the site's scanner (gain, offset, noise, blur, streaks). Non-confounded test "
            f"and oracle sets: Y ~ {test_balance} independent of U, then do(Y)."
        ),
    )
    return out
