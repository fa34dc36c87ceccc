"""Front-door problems with known truth, for calibrating the diagnostics gate.

Every problem is a structural causal model ``y -> z -> x`` with a latent ``u`` confounding
``y`` and ``x``, written directly in NumPy (fast, simple, seeded). Each exposes

* ``sample(n, rng) -> dict(X, y, z, u)``: observational (confounded) rows;
* ``sample_do(n, v, rng) -> X``: rows of the same SCM under ``do(y = v)`` (``u`` drawn from
  its marginal, ``z`` from its mechanism given ``v``), i.e. the truth ``p(x | do(y = v))``;
* ``do_values``: the intervention values (the classes of a discrete cause; the 5 %, 50 % and
  95 % population quantiles of a continuous one, computed once from 100 000 rows);
* ``closed_form(v)`` (linear-Gaussian problems only): the exact interventional mean and sd
  of every feature.

A *family* is a named setting of the structural choices (cause, confounding strength,
positivity, mechanism, effect, dimension) plus the fits run on it (strategy, K, covariance,
n); seeds vary the data only. One third of the families (every third one in the order of
:data:`FAMILIES`, which is grouped by kind, so the held-out ones are spread over the
kinds) are ``held_out``: not to be used when tuning thresholds.

The paper's simulators (``cm.datasets.make_classification_2d``, ``make_regression_linear``,
``make_background_digits``) are replicated here in NumPy from their documented programs
(``causal_mixtures/simulate/datasets.py`` and ``digits.py``); ``tests/test_gate_suite.py``
checks the replicas against the library's simulators.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

__all__ = [
    "FAMILIES",
    "Classification2D",
    "Digits64",
    "Family",
    "FitSpec",
    "FrontDoorSCM",
    "Regression",
    "family_by_name",
]

QUANTILES = (0.05, 0.5, 0.95)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


# ======================================================================================
# problems


class Problem:
    """Base: ``cause``, ``sample``, ``sample_do``, ``do_values``, ``closed_form``."""

    cause = "discrete"

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def sample_do(self, n: int, v: float, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def closed_form(self, v: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Exact (mean, sd) per feature under ``do(y = v)``, where known."""
        return None

    @cached_property
    def do_values(self) -> np.ndarray:
        if self.cause == "discrete":
            return np.asarray(self.classes)
        y = self.sample(100_000, np.random.default_rng(12345))["y"]
        return np.quantile(y, QUANTILES)


@dataclass(frozen=True, eq=False)
class FrontDoorSCM(Problem):
    """The generic front-door SCM of the suite.

    ::

        u ~ N(0, 1)
        discrete y:   P(y = k | u) ∝ exp(bias_k + conf_y · c_k · u),  c_k = k − (K−1)/2
        continuous y: y = conf_y · u + sqrt(1 − conf_y²) · e
        mechanism     linear: z = z_sep · y + z_sd · e
                      tanh:   z = z_sep · (1.5 tanh(y) + 0.3 y) + z_sd · e
                      ring:   z = (1 + z_sep · y) (cos θ, sin θ) + z_sd · e,  θ ~ U(0, 2π)
                      copy:   z = y
        effect        linear:    x = A h(z) + conf_x · c · u + x_sd · e
                      nonlinear: x = A g(z) + conf_x · c · u² ... (see _effect)
                      fourmode:  x = (3·1[z₁ > z_thr], 3·1[u > 0.674]) + 0.4 e
                      pixels:    x = A h(z) + conf_x · c · u + F w + x_sd · e,
                                 w ~ N(0, I₃) (low-rank "pixels", correlated)

    ``A``, ``c`` and ``F`` are fixed by ``structure_seed``.
    """

    cause: str = "discrete"
    n_classes: int = 2
    class_bias: tuple[float, ...] = ()
    conf_y: float = 1.0
    conf_x: float = 1.0
    mechanism: str = "linear"
    z_sep: float = 2.0
    z_sd: float = 1.0
    effect: str = "linear"
    d: int = 1
    x_sd: float = 1.0
    z_thr: float = 1.0
    structure_seed: int = 0

    # ---------------------------------------------------------------- structure
    @property
    def classes(self) -> np.ndarray:
        return np.arange(self.n_classes)

    @property
    def d_z(self) -> int:
        return 2 if self.mechanism == "ring" else 1

    @cached_property
    def _loadings(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(1000 + self.structure_seed)
        d = self.d
        n_h = 2 if self.effect == "nonlinear" or self.d_z == 2 else 1
        if self.effect == "pixels":
            side = int(round(math.sqrt(d)))
            gy, gx = np.mgrid[0:side, 0:side] / max(side - 1, 1)

            def blob() -> np.ndarray:
                cy, cx = rng.uniform(0.2, 0.8, 2)
                return np.exp(-((gy - cy) ** 2 + (gx - cx) ** 2) / 0.08).reshape(-1)

            A = np.stack([1.5 * blob() for _ in range(n_h)], 1)
            c = 1.0 + 0.5 * np.exp(-((gy - 0.5) ** 2) / 0.5).reshape(-1)  # "background"
            F = np.stack([blob() for _ in range(3)], 1)
            return {"A": A, "c": c, "F": F}
        A = rng.uniform(0.7, 1.5, (d, n_h)) * rng.choice([-1.0, 1.0], (d, n_h))
        c = rng.uniform(0.7, 1.3, d)
        return {"A": A, "c": c}

    # ---------------------------------------------------------------- pieces
    def _u(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal(n)

    def _y(self, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.cause == "continuous":
            s = self.conf_y
            return s * u + math.sqrt(max(1.0 - s * s, 0.0)) * rng.standard_normal(len(u))
        k = self.n_classes
        bias = np.asarray(self.class_bias or (0.0,) * k, float)
        codes = np.arange(k) - (k - 1) / 2.0
        logits = bias[None, :] + self.conf_y * u[:, None] * codes[None, :]
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        cum = p.cumsum(1)
        r = rng.random(len(u))[:, None]
        return np.minimum((r > cum).sum(1), k - 1).astype(np.int64)

    def _z(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        y = np.asarray(y, float)
        n = len(y)
        if self.mechanism == "copy":
            return y.copy()
        if self.mechanism == "linear":
            return self.z_sep * y + self.z_sd * rng.standard_normal(n)
        if self.mechanism == "tanh":
            return self.z_sep * (1.5 * np.tanh(y) + 0.3 * y) + self.z_sd * rng.standard_normal(n)
        if self.mechanism == "ring":
            theta = rng.uniform(0.0, 2 * math.pi, n)
            r = 1.0 + self.z_sep * y
            return np.column_stack([r * np.cos(theta), r * np.sin(theta)]) + (
                self.z_sd * rng.standard_normal((n, 2)))
        raise ValueError(self.mechanism)

    def _effect(self, z: np.ndarray, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = len(u)
        z2 = z.reshape(n, -1)
        if self.effect == "fourmode":
            x = np.column_stack([3.0 * (z2[:, 0] > self.z_thr), 3.0 * (u > 0.674)])
            return x + 0.4 * rng.standard_normal((n, 2))
        L = self._loadings
        if self.effect == "nonlinear":
            if z2.shape[1] == 2:
                h = np.column_stack([np.hypot(z2[:, 0], z2[:, 1]), np.tanh(z2[:, 0])])
            else:
                h = np.column_stack([2.0 * np.tanh(z2[:, 0]), np.sin(z2[:, 0])])
            uu = u + 0.5 * (u**2 - 1.0)  # a skewed confounding effect
        else:
            h = z2
            uu = u
        x = h @ L["A"].T + self.conf_x * uu[:, None] * L["c"][None, :]
        if self.effect == "pixels":
            x = x + rng.standard_normal((n, 3)) @ L["F"].T
        return x + self.x_sd * rng.standard_normal((n, self.d))

    # ---------------------------------------------------------------- API
    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        u = self._u(n, rng)
        y = self._y(u, rng)
        z = self._z(y, rng)
        return {"X": self._effect(z, u, rng), "y": y, "z": z, "u": u}

    def sample_do(self, n: int, v: float, rng: np.random.Generator) -> np.ndarray:
        u = self._u(n, rng)
        y = np.full(n, v, dtype=np.int64 if self.cause == "discrete" else float)
        z = self._z(y, rng)
        return self._effect(z, u, rng)

    def closed_form(self, v: float) -> tuple[np.ndarray, np.ndarray] | None:
        if self.mechanism != "linear" or self.effect not in ("linear", "pixels"):
            return None
        L = self._loadings
        a = L["A"][:, 0]
        mean = a * self.z_sep * float(v)
        var = a**2 * self.z_sd**2 + self.conf_x**2 * L["c"] ** 2 + self.x_sd**2
        if self.effect == "pixels":
            var = var + (L["F"] ** 2).sum(1)
        return mean, np.sqrt(var)


@dataclass(frozen=True, eq=False)
class Classification2D(Problem):
    """NumPy replica of ``cm.datasets.classification_scm`` (the paper's 2-D classification):
    ``U ∈ {1,2}, P(U=2)=0.25; P(Y=2|U)=(0.2, 0.8); Z|Y ~ N(±1.2, 1);
    X1 = ±1.8 (sign of Z) + N(0,1); X2 = ±2.4 (U) + N(0,1)``."""

    cause = "discrete"
    classes = (1, 2)

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        u = np.where(rng.random(n) < 0.25, 2, 1)
        y = np.where(rng.random(n) < np.where(u == 2, 0.8, 0.2), 2, 1)
        return self._rest(u, y, rng)

    def _rest(self, u: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> dict:
        n = len(u)
        z = np.where(y == 2, 1.2, -1.2) + rng.standard_normal(n)
        x1 = np.where(z >= 0, 1.8, -1.8) + rng.standard_normal(n)
        x2 = np.where(u == 2, 2.4, -2.4) + rng.standard_normal(n)
        return {"X": np.column_stack([x1, x2]), "y": y.astype(np.int64), "z": z,
                "u": u.astype(float)}

    def sample_do(self, n: int, v: float, rng: np.random.Generator) -> np.ndarray:
        u = np.where(rng.random(n) < 0.25, 2, 1)
        return self._rest(u, np.full(n, int(v)), rng)["X"]


@dataclass(frozen=True, eq=False)
class Regression(Problem):
    """NumPy replica of ``cm.datasets.regression_scm`` (the paper's regression):
    ``U ~ N(0,1); Y = 2 + U + e; Z = 1.5 Y + e; X = 5 U + Z + e``;
    ``X | do(Y=v) ~ N(1.5 v, 27)`` (25 from U, 1 from Z's noise, 1 from X's)."""

    cause = "continuous"
    c0: float = 5.0

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        u = rng.standard_normal(n)
        y = 2.0 + u + rng.standard_normal(n)
        z = 1.5 * y + rng.standard_normal(n)
        x = self.c0 * u + z + rng.standard_normal(n)
        return {"X": x[:, None], "y": y, "z": z, "u": u}

    def sample_do(self, n: int, v: float, rng: np.random.Generator) -> np.ndarray:
        u = rng.standard_normal(n)
        z = 1.5 * v + rng.standard_normal(n)
        return (self.c0 * u + z + rng.standard_normal(n))[:, None]

    def closed_form(self, v: float) -> tuple[np.ndarray, np.ndarray]:
        return np.array([1.5 * float(v)]), np.array([math.sqrt(self.c0**2 + 1.0 + 1.0)])


@dataclass(frozen=True, eq=False)
class Digits64(Problem):
    """NumPy replica of ``cm.datasets.background_digits_scm`` on scikit-learn's 8x8 digits 2
    and 6 (training half of each digit's images, split once by ``structure_seed``):
    ``U ~ N(0, 25); P(Y=2|U) = sigmoid(-qU), q = log((1-quy)/quy); P(Z=Y)=0.95;
    X = clip(image of Z + (0.5 tanh(0.2U) + 0.5) b, 0, 16)``."""

    cause = "discrete"
    classes = (1, 2)
    quy: float = 0.8
    b: float = 100.0 / 255.0 * 16.0
    structure_seed: int = 0

    @cached_property
    def pools(self) -> list[np.ndarray]:
        from sklearn.datasets import load_digits

        images, target = load_digits(return_X_y=True)
        rng = np.random.default_rng(self.structure_seed)
        out = []
        for digit in (2, 6):
            idx = np.flatnonzero(target == digit)
            idx = idx[rng.permutation(idx.size)]
            out.append(images[np.sort(idx[: idx.size // 2])].astype(float))
        return out

    def _x(self, u: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> dict:
        n = len(u)
        z = np.where(rng.random(n) < 0.95, y, 3 - y)
        X = np.empty((n, 64))
        for k, pool in enumerate(self.pools, start=1):
            m = z == k
            X[m] = pool[rng.integers(0, len(pool), int(m.sum()))]
        X = np.clip(X + ((0.5 * np.tanh(0.2 * u) + 0.5) * self.b)[:, None], 0.0, 16.0)
        return {"X": X, "y": y.astype(np.int64), "z": z.astype(np.int64), "u": u}

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        u = 5.0 * rng.standard_normal(n)
        q = math.log((1.0 - self.quy) / self.quy)
        y = np.where(rng.random(n) < _sigmoid(-q * u), 2, 1)
        return self._x(u, y, rng)

    def sample_do(self, n: int, v: float, rng: np.random.Generator) -> np.ndarray:
        u = 5.0 * rng.standard_normal(n)
        return self._x(u, np.full(n, int(v)), rng)["X"]


# ======================================================================================
# families and fits


STRATEGIES = ("weighting", "psis", "plugin", "bootstrap", "bayes", "auto")


@dataclass(frozen=True)
class FitSpec:
    """One fit of a family: strategy, K, covariance type, n, extra estimator options, and
    the smallest suite size it belongs to (``"tiny"`` ⊂ ``"small"`` ⊂ ``"full"``)."""

    strategy: str
    K: int | None = 2
    cov: str = "full"
    n: int = 3000
    options: tuple[tuple[str, Any], ...] = ()
    size: str = "small"
    seeds: int = 2  # seeds in the full suite (small and tiny use 1)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(self.strategy)

    def with_n(self, n: int) -> FitSpec:
        return FitSpec(self.strategy, self.K, self.cov, n, self.options, self.size, self.seeds)

    @property
    def label(self) -> str:
        bits = [self.strategy]
        if self.strategy != "bootstrap":
            bits.append(f"K={self.K} {self.cov}")
        bits.append(f"n={self.n}")
        bits += [f"{k}={v}" for k, v in self.options]
        return " ".join(bits)


@dataclass(frozen=True)
class Family:
    name: str
    kind: str
    description: str
    problem: Problem
    fits: tuple[FitSpec, ...]
    design: dict[str, Any] = field(default_factory=dict)
    held_out: bool = False


def _f(strategy: str, K: int | None = 2, cov: str = "full", n: int = 3000, size: str = "small",
       seeds: int = 2, **options: Any) -> FitSpec:
    return FitSpec(strategy, K, cov, n, tuple(sorted(options.items())), size, seeds)


def _design(cause: str, n_classes: int | None, conf: str, positivity: str, mechanism: str,
            d: int, effect: str) -> dict[str, Any]:
    return {"cause": cause, "n_classes": n_classes, "confounding": conf,
            "positivity": positivity, "mechanism": mechanism, "d": d, "effect": effect}


def _families() -> list[Family]:
    W, P, PL, B, BY, _ = STRATEGIES
    fams: list[Family] = []

    def add(name: str, kind: str, desc: str, problem: Problem, design: dict,
            fits: list[FitSpec]) -> None:
        fams.append(Family(name, kind, desc, problem, tuple(fits), design))

    # ------------------------------------------------------------ discrete, healthy-ish
    add("disc2_linear_mild", "discrete",
        "2 classes, mild confounding, healthy positivity, linear z, 2-D linear x",
        FrontDoorSCM(conf_y=1.0, conf_x=1.0, z_sep=2.0, z_sd=1.0, d=2),
        _design("discrete", 2, "mild", "healthy", "linear", 2, "linear"),
        [_f(W, 1, n=1000, size="tiny"), _f(W, 3), _f(P, 2), _f(PL, 2), _f(B, None, size="tiny"),
         _f(BY, 1, n=500, seeds=1), _f(W, 2, n=20000, seeds=1)])
    add("disc4_noconf_1d", "discrete",
        "4 balanced classes, no confounding, linear z, 1-D x",
        FrontDoorSCM(n_classes=4, conf_y=0.0, conf_x=1.0, z_sep=1.0, z_sd=1.0, d=1),
        _design("discrete", 4, "none", "healthy", "linear", 1, "linear"),
        [_f(W, 1, size="tiny"), _f(W, 4), _f(P, 1), _f(PL, 1), _f(B, None)])
    add("disc3_imbalanced_strong", "discrete",
        "3 imbalanced classes (60/30/10 %), strong confounding, linear z, 2-D x",
        FrontDoorSCM(n_classes=3, class_bias=(1.0, 0.3, -0.8), conf_y=2.0, conf_x=1.5,
                     z_sep=1.5, z_sd=1.0, d=2),
        _design("discrete", 3, "strong", "healthy", "linear", 2, "linear"),
        [_f(W, 1), _f(W, 3), _f(P, 2), _f(PL, 2), _f(B, None), _f(W, 2, n=500)])
    add("disc2_neardet_conf", "confounding",
        "2 classes, near-deterministic confounding (u decides y), linear z, 2-D x",
        FrontDoorSCM(conf_y=6.0, conf_x=2.0, z_sep=2.0, z_sd=1.0, d=2),
        _design("discrete", 2, "near-deterministic", "healthy", "linear", 2, "linear"),
        [_f(W, 1, size="tiny"), _f(W, 3), _f(P, 2), _f(PL, 2), _f(B, None), _f(W, 2, n=500)])
    add("disc2_strong_conf", "confounding",
        "2 classes, strong confounding, linear z, 1-D x",
        FrontDoorSCM(conf_y=3.0, conf_x=2.0, z_sep=2.0, z_sd=1.0, d=1),
        _design("discrete", 2, "strong", "healthy", "linear", 1, "linear"),
        [_f(W, 1), _f(W, 2), _f(P, 1), _f(PL, 1), _f(B, None)])
    add("cont_neardet_conf", "confounding",
        "continuous y = 0.98 u + 0.2 e (near-deterministic), linear z, 1-D x",
        FrontDoorSCM(cause="continuous", conf_y=0.98, conf_x=2.0, z_sep=1.5, z_sd=1.0, d=1),
        _design("continuous", None, "near-deterministic", "healthy", "linear", 1, "linear"),
        [_f(W, 1, size="tiny"), _f(P, 1), _f(PL, 1), _f(B, None), _f(W, 2)])
    # ------------------------------------------------------------ positivity
    add("disc2_positivity_weak", "positivity",
        "2 classes, z | y sd 0.35 against a class separation of 2 (weights near 0/inf)",
        FrontDoorSCM(conf_y=1.5, conf_x=1.0, z_sep=2.0, z_sd=0.35, d=2),
        _design("discrete", 2, "moderate", "weak", "linear", 2, "linear"),
        [_f(W, 1, size="tiny"), _f(W, 2), _f(P, 2), _f(PL, 2), _f(B, None)])
    add("disc2_copy_positivity", "positivity",
        "2 classes, z a copy of y: positivity broken (front door not identified)",
        FrontDoorSCM(conf_y=1.5, conf_x=1.5, mechanism="copy", d=2),
        _design("discrete", 2, "moderate", "broken", "copy", 2, "linear"),
        [_f(W, 2, size="tiny", positivity="warn"), _f(W, 2), _f(P, 2, positivity="warn"),
         _f(PL, 2, positivity="warn"), _f(B, None, positivity="warn")])
    add("cont_positivity_weak", "positivity",
        "continuous y, z = y + 0.05 e (almost a copy), 1-D x",
        FrontDoorSCM(cause="continuous", conf_y=0.7, conf_x=2.0, z_sep=1.0, z_sd=0.05, d=1),
        _design("continuous", None, "moderate", "weak", "linear", 1, "linear"),
        [_f(W, 1), _f(P, 1), _f(PL, 1), _f(B, None)])
    # ------------------------------------------------------------ nonlinear mechanism / effect
    add("disc2_ring", "nonlinear",
        "2 classes, ring-shaped 2-D z | y (radius 1 or 2.5), x from |z| and tanh(z1), 2-D",
        FrontDoorSCM(conf_y=1.0, conf_x=1.0, mechanism="ring", z_sep=1.5, z_sd=0.3,
                     effect="nonlinear", d=2),
        _design("discrete", 2, "mild", "healthy", "ring", 2, "nonlinear"),
        [_f(W, 1), _f(W, 4, size="tiny"), _f(P, 4), _f(PL, 4), _f(B, None)])
    add("cont_tanh_2d", "nonlinear",
        "continuous y, z = 1.5 tanh(y) + 0.3 y + noise, x nonlinear in z, skewed u effect, 2-D",
        FrontDoorSCM(cause="continuous", conf_y=0.7, conf_x=1.0, mechanism="tanh", z_sep=1.0,
                     z_sd=0.5, effect="nonlinear", d=2),
        _design("continuous", None, "moderate", "healthy", "tanh", 2, "nonlinear"),
        [_f(W, 1), _f(W, 4, size="tiny"), _f(P, 4), _f(PL, 4), _f(B, None)])
    add("cont_linear_mild", "continuous",
        "continuous y, mild confounding, linear z and x, 1-D (closed form)",
        FrontDoorSCM(cause="continuous", conf_y=0.5, conf_x=1.0, z_sep=1.0, z_sd=1.0, d=1),
        _design("continuous", None, "mild", "healthy", "linear", 1, "linear"),
        [_f(W, 1, size="tiny"), _f(W, 3), _f(P, 1), _f(PL, 1, size="tiny"), _f(B, None),
         _f(BY, 1, n=500, seeds=1), _f(W, 1, n=100000, seeds=1)])
    add("cont_noconf_2d", "continuous",
        "continuous y, no confounding, linear z, 2-D x",
        FrontDoorSCM(cause="continuous", conf_y=0.0, conf_x=1.0, z_sep=1.0, z_sd=1.0, d=2),
        _design("continuous", None, "none", "healthy", "linear", 2, "linear"),
        [_f(W, 1), _f(W, 3), _f(P, 1), _f(PL, 1), _f(B, None)])
    add("cont_8d", "continuous",
        "continuous y, moderate confounding, linear z, 8-D correlated x",
        FrontDoorSCM(cause="continuous", conf_y=0.7, conf_x=1.0, z_sep=1.0, z_sd=1.0, d=8),
        _design("continuous", None, "moderate", "healthy", "linear", 8, "linear"),
        [_f(W, 1), _f(W, 2, cov="diag"), _f(P, 1), _f(PL, 1), _f(B, None)])
    # ------------------------------------------------------------ multimodal
    add("disc2_fourmode", "multimodal",
        "2 classes, four-mode 2-D effect (modes from z > 1 and u > 0.674; skewed marginals)",
        FrontDoorSCM(conf_y=1.5, conf_x=1.0, z_sep=2.0, z_sd=1.0, effect="fourmode", d=2),
        _design("discrete", 2, "moderate", "healthy", "linear", 2, "fourmode"),
        [_f(W, 1, size="tiny"), _f(W, 4), _f(W, 8), _f(P, 4), _f(PL, 4), _f(B, None)])
    add("cont_fourmode", "multimodal",
        "continuous y, four-mode 2-D effect (modes from z > 1 and u > 0.674)",
        FrontDoorSCM(cause="continuous", conf_y=0.6, conf_x=1.0, z_sep=1.0, z_sd=0.7,
                     effect="fourmode", d=2),
        _design("continuous", None, "moderate", "healthy", "linear", 2, "fourmode"),
        [_f(W, 1), _f(W, 4), _f(P, 4), _f(PL, 4), _f(B, None)])
    # ------------------------------------------------------------ high-dimensional
    add("disc2_8d", "highdim",
        "2 classes, moderate confounding, linear z, 8-D correlated x",
        FrontDoorSCM(conf_y=1.5, conf_x=1.0, z_sep=2.0, z_sd=1.0, d=8),
        _design("discrete", 2, "moderate", "healthy", "linear", 8, "linear"),
        [_f(W, 1), _f(W, 3, cov="diag"), _f(P, 1), _f(PL, 1), _f(B, None)])
    add("disc2_pixels64", "highdim",
        "2 classes, moderate confounding, 64-D low-rank-plus-noise correlated 'pixels'",
        FrontDoorSCM(conf_y=1.5, conf_x=1.0, z_sep=2.0, z_sd=1.0, effect="pixels", d=64,
                     x_sd=0.3),
        _design("discrete", 2, "moderate", "healthy", "linear", 64, "pixels"),
        [_f(W, 1, cov="diag", size="tiny"), _f(W, 20, cov="diag"), _f(W, 1, cov="full"),
         _f(P, 20, cov="diag"), _f(B, None)])
    # ------------------------------------------------------------ the paper's problems
    add("paper_classification_2d", "paper",
        "the paper's 2-D classification (make_classification_2d replica)",
        Classification2D(),
        _design("discrete", 2, "strong", "healthy", "linear", 2, "bimodal"),
        [_f(W, 6, n=5000, size="tiny", seeds=2), _f(W, 2, n=5000), _f(W, 1, n=5000),
         _f(P, 6, n=5000), _f(PL, 2, n=5000), _f(B, None, n=5000),
         _f(W, 6, n=20000, seeds=1, density="histogram")])
    add("paper_regression", "paper",
        "the paper's linear-Gaussian regression (make_regression_linear replica); "
        "do at the 5/50/95 % quantiles of y",
        Regression(),
        _design("continuous", None, "strong", "healthy", "linear", 1, "linear"),
        [_f(P, 1, n=5000, size="tiny", density="gaussian"),
         _f(W, 1, n=5000, density="gaussian"),
         _f(PL, 1, n=5000, size="tiny", plugin_components=1),
         _f(B, None, n=5000, density="gaussian"),
         _f(P, 1, n=20000, seeds=1, density="gaussian")])
    add("paper_digits64", "paper",
        "the paper's background digits (make_background_digits replica), 64-D",
        Digits64(),
        _design("discrete", 2, "strong", "healthy", "discrete z", 64, "images"),
        [_f(W, 20, cov="diag", n=2000, size="tiny", seeds=1), _f(W, 5, cov="diag", seeds=1),
         _f(B, None, seeds=1)])
    # held out: every third family in this (kind-grouped) order
    order = sorted(range(len(fams)), key=lambda i: (fams[i].kind, fams[i].name))
    held = {order[j] for j in range(len(order)) if j % 3 == 1}
    return [Family(f.name, f.kind, f.description, f.problem, f.fits, f.design, i in held)
            for i, f in enumerate(fams)]


FAMILIES: list[Family] = _families()


def family_by_name(name: str) -> Family:
    for f in FAMILIES:
        if f.name == name:
            return f
    raise KeyError(name)
