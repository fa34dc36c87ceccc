"""Accuracy cases of issue 13 with oracles: an imbalanced multi-class ring, a nonlinear
continuous cause, a front door with an observed covariate and a binary linear-Gaussian front
door.

Details: ``docs/simulators.md``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.utils import Bunch

from causal_mixtures._random import RandomState, check_random_state
from causal_mixtures._validation import check_int
from causal_mixtures.simulate.common import GRAPH, check_probability, check_real

__all__ = [
    "make_covariate_front_door",
    "make_front_door_binary",
    "make_imbalanced_ring",
    "make_nonlinear_continuous",
]

RING_PRIORS = (0.1, 0.2, 0.3, 0.4)


def _check_do(do: Any, allowed: tuple | None = None) -> Any:
    if allowed is not None:
        if isinstance(do, bool) or not isinstance(do, int | np.integer) or int(do) not in allowed:
            raise ValueError(
                f"do must be one of the cause's values {list(allowed)}; got {do!r}. "
                f"Try do={allowed[0]}."
            )
        return int(do)
    return check_real("do", do)


# --------------------------------------------------------------------------------------
# 1. imbalanced multi-class, ring-shaped continuous mechanism


def _ring_program(
    rng: np.random.Generator, n: int, *, do: int | None, confounded: bool, p: dict
) -> dict[str, np.ndarray]:
    priors = np.asarray(RING_PRIORS)
    u = rng.choice(4, size=n, p=priors)
    if do is not None:
        y = np.full(n, do, dtype=np.int64)
    elif confounded:
        y = np.where(rng.random(n) < p["confounding"], u, rng.choice(4, size=n, p=priors))
    else:
        y = rng.choice(4, size=n, p=priors)
    radius = p["radius0"] + p["radius_step"] * y + p["radius_noise"] * rng.standard_normal(n)
    theta = rng.uniform(0.0, 2.0 * np.pi, size=n)
    z = np.column_stack([radius * np.cos(theta), radius * np.sin(theta)])
    x = _ring_features(z)
    shift = p["u_shift"] * (u - float(priors @ np.arange(4)))
    x[:, 4] += shift
    x[:, 5] -= shift
    x += p["noise"] * rng.standard_normal(x.shape)
    return {"X": x, "y": y.astype(np.int64), "mechanism": z, "confounder": u.astype(np.int64)}


def _ring_features(z: np.ndarray) -> np.ndarray:
    z1, z2 = z[:, 0], z[:, 1]
    return np.column_stack([z1, z2, z1**2 + z2**2, z1 * z2, z1**2 - z2**2, z1 + z2])


def _ring_mean(do: Any, *, p: dict) -> np.ndarray:
    y = _check_do(do, (0, 1, 2, 3))
    r = p["radius0"] + p["radius_step"] * y
    return np.array([0.0, 0.0, r**2 + p["radius_noise"] ** 2, 0.0, 0.0, 0.0])


def _ring_do(n: int, do: Any, random_state: RandomState = None, *, p: dict) -> np.ndarray:
    n = check_int("n", n)
    do = _check_do(do, (0, 1, 2, 3))
    return _ring_program(check_random_state(random_state), n, do=do, confounded=False, p=p)["X"]


def make_imbalanced_ring(
    n_samples: int = 10_000,
    *,
    n_test: int = 2000,
    confounding: float = 0.9,
    radius0: float = 1.0,
    radius_step: float = 0.6,
    radius_noise: float = 0.3,
    u_shift: float = 3.0,
    noise: float = 0.5,
    random_state: RandomState = None,
) -> Bunch:
    """Imbalanced 4-class data with a ring-shaped 2-D mechanism and a strong confounder.

    ::

        U ~ Cat(0.1, 0.2, 0.3, 0.4)
        Y = U with probability ``confounding``, else Y ~ Cat(0.1, 0.2, 0.3, 0.4)
        R = radius0 + radius_step Y + radius_noise e,  Θ ~ U(0, 2π),  Z = R (cos Θ, sin Θ)
        X = g(Z) + u_shift (U − E U) (0, 0, 0, 0, 1, −1) + noise e,
        g(z) = (z1, z2, z1² + z2², z1 z2, z1² − z2², z1 + z2)

    The class priors are 0.1 / 0.2 / 0.3 / 0.4 in every set. Features 5 and 6 carry the
    confounder, which equals the label in most observational rows: a classifier trained on
    them learns the shortcut and fails on the non-confounded test set, where ``Y`` is drawn
    independently of ``U``. Under ``do(Y = y)``: ``E[X] = (0, 0, r_y² + radius_noise², 0, 0,
    0)`` with ``r_y = radius0 + radius_step y``.

    Parameters
    ----------
    n_samples : int, default=10000
        Confounded training rows.
    n_test : int, default=2000
        Rows of each test set (non-confounded, confounded) and of the oracle's training set.
    confounding : float, default=0.9
        ``P(Y = U)`` in the observational data (strictly between 0 and 1).
    radius0, radius_step, radius_noise : float
        Ring radius of class ``y``: ``radius0 + radius_step y``; its noise sd (> 0).
    u_shift, noise : float
        Shift of features 5 and 6 per unit of ``U``; feature noise sd (> 0).
    random_state : int, numpy.random.Generator or None, default=None
        Source of all randomness.

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` (n_samples, 6), ``y`` (int, 0-3), ``mechanism`` (n_samples, 2), ``confounder``;
        ``X_test``, ``y_test``, ``mechanism_test`` (non-confounded); ``X_test_confounded``,
        ``y_test_confounded``; ``X_oracle``, ``y_oracle`` (``n_samples`` non-confounded
        training rows); ``priors``; ``sample_do(n, do, random_state=None)``, interventional
        rows of ``X``; ``interventional_mean(do)``; ``graph`` ``"front_door"``, ``params``,
        ``description``.
    """
    n_samples = check_int("n_samples", n_samples)
    n_test = check_int("n_test", n_test)
    p = {
        "confounding": check_probability("confounding", confounding),
        "radius0": check_real("radius0", radius0, positive=True),
        "radius_step": check_real("radius_step", radius_step, positive=True),
        "radius_noise": check_real("radius_noise", radius_noise, positive=True),
        "u_shift": check_real("u_shift", u_shift),
        "noise": check_real("noise", noise, positive=True),
    }
    rng = check_random_state(random_state)
    train = _ring_program(rng, n_samples, do=None, confounded=True, p=p)
    test = _ring_program(rng, n_test, do=None, confounded=False, p=p)
    test_conf = _ring_program(rng, n_test, do=None, confounded=True, p=p)
    oracle = _ring_program(rng, n_samples, do=None, confounded=False, p=p)
    return Bunch(
        **train,
        X_test=test["X"], y_test=test["y"], mechanism_test=test["mechanism"],
        X_test_confounded=test_conf["X"], y_test_confounded=test_conf["y"],
        X_oracle=oracle["X"], y_oracle=oracle["y"],
        priors=np.asarray(RING_PRIORS),
        sample_do=functools.partial(_ring_do, p=dict(p)),
        interventional_mean=functools.partial(_ring_mean, p=dict(p)),
        params=dict(p),
        graph=GRAPH,
        description=(
            "Imbalanced 4-class ring: U ~ Cat(.1,.2,.3,.4); Y = U w.p. confounding else "
            "Y ~ Cat; Z on a ring of radius r0 + step Y (noisy), uniform angle; "
            "X = (z1, z2, |z|², z1 z2, z1² − z2², z1 + z2) + u_shift (U − EU)(0,0,0,0,1,−1) "
            f"+ noise. Parameters: {p}."
        ),
    )


# --------------------------------------------------------------------------------------
# 2. nonlinear continuous cause


def _nonlinear_program(
    rng: np.random.Generator, n: int, *, do: float | None, p: dict
) -> dict[str, np.ndarray]:
    u = rng.standard_normal(n)
    y = np.full(n, do) if do is not None else p["y_mean"] + u + p["sigma_y"] * rng.standard_normal(n)
    z = 1.5 * np.tanh(y) + 0.3 * y + p["sigma_z"] * rng.standard_normal(n)
    x = np.column_stack([
        z + p["u_effect"] * u,
        np.sin(z) - 0.5 * p["u_effect"] * u,
    ]) + p["sigma_x"] * rng.standard_normal((n, 2))
    return {"X": x, "y": y, "mechanism": z, "confounder": u}


def _nonlinear_mean(do: Any, *, p: dict) -> np.ndarray:
    """``E[X | do(Y = y)]``, shape ``(*y.shape, 2)``."""
    y = np.asarray(do, dtype=np.float64)
    m = 1.5 * np.tanh(y) + 0.3 * y
    return np.stack([m, np.sin(m) * np.exp(-0.5 * p["sigma_z"] ** 2)], axis=-1)


def _nonlinear_slope(do: Any) -> np.ndarray:
    """``dE[X_1 | do(Y = y)]/dy = 1.5 sech²(y) + 0.3``."""
    y = np.asarray(do, dtype=np.float64)
    return 1.5 / np.cosh(y) ** 2 + 0.3


def _nonlinear_do(n: int, do: Any, random_state: RandomState = None, *, p: dict) -> np.ndarray:
    n = check_int("n", n)
    do = _check_do(do)
    return _nonlinear_program(check_random_state(random_state), n, do=do, p=p)["X"]


def make_nonlinear_continuous(
    n_samples: int = 10_000,
    *,
    n_test: int = 2000,
    y_mean: float = 0.0,
    sigma_y: float = 0.5,
    sigma_z: float = 0.3,
    sigma_x: float = 0.5,
    u_effect: float = 2.0,
    random_state: RandomState = None,
) -> Bunch:
    """A continuous cause with a nonlinear mechanism and a 2-D effect, with its truth.

    ::

        U ~ N(0, 1);  Y = y_mean + U + sigma_y e
        Z = 1.5 tanh(Y) + 0.3 Y + sigma_z e
        X = (Z + u_effect U,  sin Z − u_effect U / 2) + sigma_x e

    Under ``do(Y = y)``, with ``m(y) = 1.5 tanh(y) + 0.3 y``:
    ``E[X | do(y)] = (m(y), sin(m(y)) exp(−sigma_z² / 2))`` and
    ``dE[X_1 | do(y)]/dy = 1.5 sech²(y) + 0.3`` (exact), while the observational regression
    of ``X_1`` on ``Y`` is pulled up by ``u_effect Cov(U, Y) / Var(Y)``.

    Parameters
    ----------
    n_samples : int, default=10000
    n_test : int, default=2000
        Rows of the non-confounded test set (``Y`` as observed, independent of ``U``).
    y_mean, sigma_y, sigma_z, sigma_x, u_effect : float
        See above (scales > 0).
    random_state : int, numpy.random.Generator or None, default=None

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` (n, 2), ``y``, ``mechanism``, ``confounder``; ``X_test``, ``y_test``;
        ``sample_do(n, do, random_state=None)``; ``interventional_mean(y)`` (shape
        ``(*y.shape, 2)``); ``interventional_slope(y)`` (of the first feature);
        ``graph``, ``params``, ``description``.
    """
    n_samples = check_int("n_samples", n_samples)
    n_test = check_int("n_test", n_test)
    p = {
        "y_mean": check_real("y_mean", y_mean),
        "sigma_y": check_real("sigma_y", sigma_y, positive=True),
        "sigma_z": check_real("sigma_z", sigma_z, positive=True),
        "sigma_x": check_real("sigma_x", sigma_x, positive=True),
        "u_effect": check_real("u_effect", u_effect),
    }
    rng = check_random_state(random_state)
    train = _nonlinear_program(rng, n_samples, do=None, p=p)
    y_test = p["y_mean"] + np.sqrt(1.0 + p["sigma_y"] ** 2) * rng.standard_normal(n_test)
    x_test = _nonlinear_test(rng, y_test, p)
    return Bunch(
        **train,
        X_test=x_test, y_test=y_test,
        sample_do=functools.partial(_nonlinear_do, p=dict(p)),
        interventional_mean=functools.partial(_nonlinear_mean, p=dict(p)),
        interventional_slope=_nonlinear_slope,
        params=dict(p),
        graph=GRAPH,
        description=(
            "Nonlinear continuous cause: U ~ N(0,1); Y = y_mean + U + sigma_y e; "
            "Z = 1.5 tanh(Y) + 0.3 Y + sigma_z e; X = (Z + u U, sin Z − u U / 2) + sigma_x e. "
            f"Parameters: {p}."
        ),
    )


def _nonlinear_test(rng: np.random.Generator, y: np.ndarray, p: dict) -> np.ndarray:
    """Rows of ``X`` under ``do(Y = y_i)``, one per value (a fresh ``U`` each)."""
    n = len(y)
    u = rng.standard_normal(n)
    z = 1.5 * np.tanh(y) + 0.3 * y + p["sigma_z"] * rng.standard_normal(n)
    x = np.column_stack([z + p["u_effect"] * u, np.sin(z) - 0.5 * p["u_effect"] * u])
    return x + p["sigma_x"] * rng.standard_normal((n, 2))


# --------------------------------------------------------------------------------------
# 3. front door with an observed covariate


def _covariate_program(
    rng: np.random.Generator, n: int, *, do: Any, p: dict
) -> dict[str, np.ndarray]:
    w = rng.standard_normal(n)
    u = rng.standard_normal(n)
    if do is None:
        y = (rng.random(n) < expit(p["w_effect_y"] * w + p["u_effect_y"] * u)).astype(np.int64)
    else:
        y = np.broadcast_to(np.asarray(do, dtype=np.int64), (n,)).copy()
    z = p["b"] * y + p["w_effect_z"] * w + p["sigma_z"] * rng.standard_normal(n)
    x = np.column_stack([
        p["c"] * z + p["w_effect_x"] * w + p["u_effect_x"] * u,
        0.5 * z**2 + 0.5 * w**2 - p["u_effect_x"] * u,
    ]) + rng.standard_normal((n, 2))
    return {"X": x, "y": y, "mechanism": z, "covariates": w[:, None], "confounder": u}


def _covariate_mean(do: Any, *, p: dict) -> np.ndarray:
    y = _check_do(do, (0, 1))
    ez2 = (p["b"] * y) ** 2 + p["w_effect_z"] ** 2 + p["sigma_z"] ** 2
    return np.array([p["c"] * p["b"] * y, 0.5 * ez2 + 0.5])


def _covariate_do(n: int, do: Any, random_state: RandomState = None, *, p: dict) -> np.ndarray:
    n = check_int("n", n)
    do = _check_do(do, (0, 1))
    return _covariate_program(check_random_state(random_state), n, do=do, p=p)["X"]


def make_covariate_front_door(
    n_samples: int = 5000,
    *,
    n_test: int = 2000,
    b: float = 1.0,
    c: float = 1.5,
    sigma_z: float = 1.0,
    w_effect_y: float = 1.0,
    w_effect_z: float = 0.5,
    w_effect_x: float = 1.0,
    u_effect_y: float = 1.5,
    u_effect_x: float = 2.0,
    random_state: RandomState = None,
) -> Bunch:
    """The front door with an observed covariate ``W`` (graph ``front_door_covariates``).

    ::

        W ~ N(0, 1);  U ~ N(0, 1)
        P(Y = 1 | W, U) = expit(w_effect_y W + u_effect_y U)
        Z = b Y + w_effect_z W + sigma_z e
        X = (c Z + w_effect_x W + u_effect_x U,  Z² / 2 + W² / 2 − u_effect_x U) + e

    ``W`` confounds ``Y``, ``Z`` and ``X``; ``U`` (latent) confounds ``Y`` and ``X``. Under
    ``do(Y = y)``: ``E[X_1] = c b y`` and ``E[X_2] = ((b y)² + w_effect_z² + sigma_z²) / 2 +
    1/2``, so the do-difference ``E[X | do(1)] − E[X | do(0)]`` is ``(c b, b² / 2)``.

    Parameters
    ----------
    n_samples : int, default=5000
    n_test : int, default=2000
        Rows of the non-confounded test set: ``Y`` ~ Bernoulli(½) (its observational
        marginal) independently of ``W`` and ``U``, then ``do(Y)``.
    b, c, sigma_z, w_effect_y, w_effect_z, w_effect_x, u_effect_y, u_effect_x : float
        See above (``sigma_z`` > 0).
    random_state : int, numpy.random.Generator or None, default=None

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` (n, 2), ``y`` (0/1), ``mechanism`` (n,), ``covariates`` (n, 1),
        ``confounder``; ``X_test``, ``y_test``, ``mechanism_test`` (non-confounded);
        ``sample_do(n, do, random_state=None)``; ``interventional_mean(do)`` (shape (2,)); ``do_difference`` (shape (2,)); ``graph`` ``"front_door_covariates"``,
        ``params``, ``description``.
    """
    n_samples = check_int("n_samples", n_samples)
    n_test = check_int("n_test", n_test)
    p = {name: check_real(name, value, positive=name == "sigma_z") for name, value in {
        "b": b, "c": c, "sigma_z": sigma_z, "w_effect_y": w_effect_y, "w_effect_z": w_effect_z,
        "w_effect_x": w_effect_x, "u_effect_y": u_effect_y, "u_effect_x": u_effect_x,
    }.items()}
    rng = check_random_state(random_state)
    train = _covariate_program(rng, n_samples, do=None, p=p)
    test = _covariate_program(rng, n_test, do=(rng.random(n_test) < 0.5).astype(np.int64), p=p)
    mean = functools.partial(_covariate_mean, p=dict(p))
    return Bunch(
        **train,
        X_test=test["X"], y_test=test["y"], mechanism_test=test["mechanism"],
        sample_do=functools.partial(_covariate_do, p=dict(p)),
        interventional_mean=mean,
        do_difference=mean(1) - mean(0),
        params=dict(p),
        graph="front_door_covariates",
        description=(
            "Front door with a covariate: W, U ~ N(0,1); P(Y=1|W,U) = expit(a W + a_u U); "
            "Z = b Y + b_w W + sigma_z e; X = (c Z + c_w W + c_u U, Z²/2 + W²/2 − c_u U) + e. "
            f"Parameters: {p}."
        ),
    )


# --------------------------------------------------------------------------------------
# 4. binary cause, linear-Gaussian front door


def _binary_program(
    rng: np.random.Generator, n: int, *, do: Any, p: dict
) -> dict[str, np.ndarray]:
    u = rng.standard_normal(n)
    if do is None:
        y = (p["a1"] * u + p["sigma_y"] * rng.standard_normal(n) > 0).astype(np.int64)
    else:
        y = np.broadcast_to(np.asarray(do, dtype=np.int64), (n,)).copy()
    z = p["b"] * y + p["sigma_z"] * rng.standard_normal(n)
    x = p["c0"] * u + p["c1"] * z + p["sigma_x"] * rng.standard_normal(n)
    return {"X": x[:, None], "y": y, "mechanism": z, "confounder": u}


def _binary_do(n: int, do: Any, random_state: RandomState = None, *, p: dict) -> np.ndarray:
    n = check_int("n", n)
    do = _check_do(do, (0, 1))
    return _binary_program(check_random_state(random_state), n, do=do, p=p)["X"]


def _binary_mean(do: Any, *, slope: float) -> np.ndarray:
    return np.array([slope * _check_do(do, (0, 1))])


def make_front_door_binary(
    n_samples: int = 5000,
    *,
    n_test: int = 2000,
    a1: float = 1.0,
    b: float = 1.0,
    c0: float = 2.0,
    c1: float = 1.5,
    sigma_y: float = 1.0,
    sigma_z: float = 1.0,
    sigma_x: float = 1.0,
    random_state: RandomState = None,
) -> Bunch:
    """The linear-Gaussian front door with a binary cause, with its nuisances in closed form.

    ::

        U ~ N(0, 1);  Y = 1[a1 U + sigma_y e > 0];  Z = b Y + sigma_z e
        X = c0 U + c1 Z + sigma_x e

    ``E[X | do(Y = y)] = c1 b y``. The nuisances of the front-door influence function are
    closed-form: ``E[U | Y = 1] = −E[U | Y = 0] = a1 / s · φ(0) / ½`` with
    ``s = √(a1² + sigma_y²)``, ``E[X | y, z] = c1 z + c0 E[U | y]``,
    ``Var(X | y, z) = c0² Var(U | y) + sigma_x²`` and ``p(z | y) = N(b y, sigma_z²)``
    (returned as ``nuisances``, for efficiency bounds).

    Parameters
    ----------
    n_samples : int, default=5000
    n_test : int, default=2000
        Rows of the non-confounded test set: ``Y`` ~ Bernoulli(½) (its observational
        marginal) independently of ``U``, then ``do(Y)``.
    a1, b, c0, c1, sigma_y, sigma_z, sigma_x : float
        See above (scales > 0).
    random_state : int, numpy.random.Generator or None, default=None

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` (n, 1), ``y`` (0/1), ``mechanism``, ``confounder``; ``X_test``, ``y_test``,
        ``mechanism_test`` (non-confounded); ``sample_do``;
        ``interventional_mean(do)`` (shape (1,)); ``do_difference`` (shape (1,));
        ``nuisances`` (dict: ``p1``, ``u_mean`` (E[U | Y = 0], E[U | Y = 1]), ``u_var``);
        ``graph``, ``params``, ``description``.
    """
    n_samples = check_int("n_samples", n_samples)
    n_test = check_int("n_test", n_test)
    p = {name: check_real(name, value, positive=name.startswith("sigma")) for name, value in {
        "a1": a1, "b": b, "c0": c0, "c1": c1, "sigma_y": sigma_y, "sigma_z": sigma_z,
        "sigma_x": sigma_x,
    }.items()}
    rng = check_random_state(random_state)
    train = _binary_program(rng, n_samples, do=None, p=p)
    test = _binary_program(rng, n_test, do=(rng.random(n_test) < 0.5).astype(np.int64), p=p)
    s = np.hypot(p["a1"], p["sigma_y"])
    rho = p["a1"] / s  # corr(U, latent index)
    m1 = rho * np.sqrt(2.0 / np.pi)  # E[U | index > 0] = rho φ(0) / Φ(0)
    u_var = 1.0 - m1**2  # Var(U | Y) (same for both halves by symmetry)
    return Bunch(
        **train,
        X_test=test["X"], y_test=test["y"], mechanism_test=test["mechanism"],
        sample_do=functools.partial(_binary_do, p=dict(p)),
        interventional_mean=functools.partial(_binary_mean, slope=p["c1"] * p["b"]),
        do_difference=np.array([p["c1"] * p["b"]]),
        nuisances={"p1": 0.5, "u_mean": (-m1, m1), "u_var": u_var},
        params=dict(p),
        graph=GRAPH,
        description=(
            "Binary-cause linear-Gaussian front door: U ~ N(0,1); Y = 1[a1 U + sigma_y e > 0]; "
            f"Z = b Y + sigma_z e; X = c0 U + c1 Z + sigma_x e. Parameters: {p}."
        ),
    )
