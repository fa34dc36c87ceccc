"""Simulators with ground truth for mechanism learning.

Details: ``docs/simulators.md``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from sklearn.utils import Bunch

from causal_mixtures._random import RandomState, check_random_state
from causal_mixtures._validation import check_int
from causal_mixtures.simulate.cases import (
    make_covariate_front_door,
    make_front_door_binary,
    make_imbalanced_ring,
    make_nonlinear_continuous,
)
from causal_mixtures.simulate.common import (
    F64,
    GRAPH,
    as_tensor,
    check_probability,
    check_real,
    independent_labels,
    run_program,
    sign,
    two_level,
)
from causal_mixtures.simulate.digits import background_digits_scm, make_background_digits
from causal_mixtures.simulate.phantoms import head_ct_scm, make_head_ct

__all__ = [
    "background_digits_scm",
    "classification_scm",
    "front_door_linear_scm",
    "head_ct_scm",
    "make_background_digits",
    "make_classification_2d",
    "make_covariate_front_door",
    "make_front_door_binary",
    "make_front_door_linear",
    "make_head_ct",
    "make_imbalanced_ring",
    "make_nonlinear_continuous",
    "make_regression_linear",
    "regression_scm",
]

# --------------------------------------------------------------------------------------
# 1. synthetic classification (2-D)


def classification_scm(
    n: int,
    *,
    p_u2: float = 0.25,
    p_y2_given_u: tuple[float, float] = (0.2, 0.8),
    z_shift: float = 1.2,
    x1_shift: float = 1.8,
    x2_shift: float = 2.4,
) -> dict[str, torch.Tensor]:
    """Pyro program of the paper's 2-D synthetic classification SCM.

    ::

        U ~ {1, 2},  P(U = 2) = p_u2
        Y ~ {1, 2},  P(Y = 2 | U = u) = p_y2_given_u[u - 1]
        Z | Y ~ N(+z_shift, 1) if Y = 2 else N(-z_shift, 1)
        X1 = (+x1_shift if Z >= 0 else -x1_shift) + N(0, 1)
        X2 = (+x2_shift if U = 2 else -x2_shift) + N(0, 1)

    ``Y -> Z -> X1`` is the causal path, ``U`` confounds ``Y`` and ``X2``.

    Parameters
    ----------
    n : int
        Number of rows (the size of the ``"rows"`` plate).
    p_u2 : float, default=0.25
        ``P(U = 2)``.
    p_y2_given_u : tuple of 2 floats, default=(0.2, 0.8)
        ``P(Y = 2 | U = 1)`` and ``P(Y = 2 | U = 2)``.
    z_shift, x1_shift, x2_shift : float
        Location shifts of ``Z``, ``X1`` and ``X2``.

    Returns
    -------
    dict of str to torch.Tensor
        Values of the sites ``"U"``, ``"Y"``, ``"Z"`` (int64 for ``U`` and ``Y``, float64
        otherwise), ``"X1"``, ``"X2"``, each of shape ``(n,)``. Under
        ``poutine.do(classification_scm, data={"Y": y})`` the returned ``"Y"`` is ``y``.
    """
    py = as_tensor(list(p_y2_given_u))
    with pyro.plate("rows", n):
        u = pyro.sample("U", two_level(as_tensor(p_u2)))
        y = pyro.sample("Y", two_level(py[u - 1]))
        z = pyro.sample("Z", dist.Normal(sign(y == 2, z_shift), 1.0))
        x1 = pyro.sample("X1", dist.Normal(sign(z >= 0, x1_shift), 1.0))
        x2 = pyro.sample("X2", dist.Normal(sign(u == 2, x2_shift), 1.0))
    return {"U": u, "Y": y, "Z": z, "X1": x1, "X2": x2}


def _classification_split(values: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    X = np.column_stack([values["X1"], values["X2"]]).astype(np.float64)
    return X, values["Y"], values["Z"], values["U"]


def make_classification_2d(
    n_samples: int = 5000,
    *,
    n_test: int = 1000,
    p_y1_test: float = 0.35,
    random_state: RandomState = None,
) -> Bunch:
    """The paper's 2-D synthetic classification data, confounded and non-confounded.

    Runs :func:`classification_scm`. The confounder ``U`` (``P(U = 2) = 0.25``) raises
    ``P(Y = 2)`` from 0.2 to 0.8 and shifts the feature ``X2`` by ±2.4, while the causal
    path ``Y -> Z -> X1`` puts the class boundary at ``X1 = 0``. A classifier trained on the
    confounded data leans on ``X2`` and loses accuracy once ``Y`` no longer depends on ``U``.

    Parameters
    ----------
    n_samples : int, default=5000
        Number of confounded training rows (and of oracle training rows).
    n_test : int, default=1000
        Number of rows in each test set.
    p_y1_test : float, default=0.35
        ``P(Y = 1)`` in the non-confounded test set (0.35 in the paper's released files).
    random_state : int, numpy.random.Generator or None, default=None
        Source of all randomness; the same seed gives identical arrays.

    Returns
    -------
    sklearn.utils.Bunch
        With keys

        - ``X`` (n_samples, 2) float64, ``y`` (n_samples,) int64 in {1, 2},
          ``mechanism`` (n_samples,) float64, ``confounder`` (n_samples,) int64:
          confounded training rows;
        - ``X_test_confounded``, ``y_test_confounded``, ``mechanism_test_confounded``,
          ``confounder_test_confounded``: ``n_test`` rows from the same confounded SCM;
        - ``X_test``, ``y_test``, ``mechanism_test``, ``confounder_test``: ``n_test``
          non-confounded rows, ``Y`` drawn independently of ``U`` with
          ``P(Y = 1) = p_y1_test`` and set by ``do(Y)`` (``U`` still shifts ``X2``);
        - ``X_oracle``, ``y_oracle``, ``mechanism_oracle``, ``confounder_oracle``:
          ``n_samples`` interventional training rows, ``Y`` uniform on {1, 2} independent
          of ``U``;
        - ``feature_names`` ``["X1", "X2"]``, ``classes`` ``[1, 2]``,
          ``graph`` ``"front_door"``, ``scm`` (the Pyro program), ``description``.

    Examples
    --------
    >>> from causal_mixtures.simulate.datasets import make_classification_2d
    >>> data = make_classification_2d(1000, random_state=0)
    >>> data.X.shape, data.y.shape, data.mechanism.shape
    ((1000, 2), (1000,), (1000,))
    """
    n_samples = check_int("n_samples", n_samples)
    n_test = check_int("n_test", n_test)
    p_y1_test = check_probability("p_y1_test", p_y1_test)
    rng = check_random_state(random_state)

    train = _classification_split(run_program(classification_scm, n_samples, rng))
    test_conf = _classification_split(run_program(classification_scm, n_test, rng))
    y_nc = independent_labels(rng, n_test, p_y1_test)
    test = _classification_split(run_program(classification_scm, n_test, rng, do={"Y": y_nc}))
    y_or = independent_labels(rng, n_samples, 0.5)
    oracle = _classification_split(run_program(classification_scm, n_samples, rng, do={"Y": y_or}))

    out = Bunch(feature_names=["X1", "X2"], classes=np.array([1, 2], dtype=np.int64))
    for suffix, (X, y, z, u) in (
        ("", train),
        ("_test_confounded", test_conf),
        ("_test", test),
        ("_oracle", oracle),
    ):
        out["X" + suffix] = X
        out["y" + suffix] = y
        out["mechanism" + suffix] = z
        out["confounder" + suffix] = u
    out.graph = GRAPH
    out.scm = classification_scm
    out.description = (
        "Synthetic 2-D classification after Mao & Little (arXiv:2410.20057). "
        "U in {1,2}, P(U=2)=0.25; Y in {1,2}, P(Y=2|U=1)=0.2, P(Y=2|U=2)=0.8; "
        "Z|Y ~ N(+-1.2, 1); X1 = +-1.8 (sign of Z) + N(0,1); X2 = +-2.4 (U=2 / U=1) + N(0,1). "
        f"Non-confounded test: Y independent of U with P(Y=1)={p_y1_test}, then do(Y). "
        "Oracle training data: Y uniform on {1,2} independent of U, then do(Y)."
    )
    return out


# --------------------------------------------------------------------------------------
# 2./3. linear-Gaussian front-door


def front_door_linear_scm(
    n: int,
    *,
    a0: float = 0.0,
    a1: float = 1.0,
    b: float = 0.5,
    c0: float = 2.0,
    c1: float = 1.5,
    d0: float = 0.0,
    sigma_y: float = 1.0,
    sigma_z: float = 1.0,
    sigma_x: float = 1.0,
    n_features: int = 1,
) -> dict[str, torch.Tensor]:
    """Pyro program of the linear-Gaussian front-door SCM.

    ::

        U ~ N(0, 1)
        Y = a0 + a1 U + sigma_y e_Y
        Z = b Y + sigma_z e_Z
        X_j = d0 + c0 U + c1 Z + sigma_x e_Xj,   j = 1, ..., n_features

    with independent standard-normal noises. Under ``do(Y = y)``,
    ``X_j ~ N(d0 + c1 b y, c0**2 + c1**2 sigma_z**2 + sigma_x**2)``.

    Parameters
    ----------
    n : int
        Number of rows (the size of the ``"rows"`` plate).
    a0, a1, b, c0, c1, d0 : float
        Structural coefficients (see above). ``c0 = 0`` removes the edge ``U -> X``.
    sigma_y, sigma_z, sigma_x : float
        Noise scales.
    n_features : int, default=1
        Number of effect features; they share ``U`` and ``Z`` and have independent noise.

    Returns
    -------
    dict of str to torch.Tensor
        Float64 values of the sites ``"U"``, ``"Y"``, ``"Z"`` (shape ``(n,)``) and ``"X"``
        (shape ``(n, n_features)``).
    """
    with pyro.plate("rows", n):
        u = pyro.sample("U", dist.Normal(as_tensor(0.0), as_tensor(1.0)))
        y = pyro.sample("Y", dist.Normal(a0 + a1 * u, as_tensor(sigma_y)))
        z = pyro.sample("Z", dist.Normal(b * y, as_tensor(sigma_z)))
        loc = (d0 + c0 * u + c1 * z).unsqueeze(-1).expand(n, n_features)
        x = pyro.sample("X", dist.Normal(loc, as_tensor(sigma_x)).to_event(1))
    return {"U": u, "Y": y, "Z": z, "X": x}


def _linear_interventional_mean(y: Any, *, intercept: float, slope: float) -> np.ndarray:
    """``E[X_j | do(Y = y)] = intercept + slope * y`` for every feature j (shape of ``y``)."""
    return intercept + slope * np.asarray(y, dtype=np.float64)


def _front_door_do_sample(
    y_value: float,
    n: int,
    random_state: RandomState = None,
    *,
    params: dict[str, float],
    n_features: int,
) -> np.ndarray:
    """Draw ``X`` of shape ``(n, n_features)`` from the SCM under ``do(Y = y_value)``.

    Runs :func:`front_door_linear_scm` under :func:`pyro.poutine.do`.
    """
    y_value = check_real("y_value", y_value)
    n = check_int("n", n)
    rng = check_random_state(random_state)
    values = run_program(
        front_door_linear_scm,
        n,
        rng,
        do={"Y": torch.full((n,), y_value, dtype=F64)},
        n_features=n_features,
        **params,
    )
    return values["X"]


def _check_front_door_params(**params: Any) -> dict[str, float]:
    out = {}
    for name, value in params.items():
        out[name] = check_real(name, value, positive=name.startswith("sigma"))
    return out


def make_front_door_linear(
    n_samples: int = 5000,
    *,
    a0: float = 0.0,
    a1: float = 1.0,
    b: float = 0.5,
    c0: float = 2.0,
    c1: float = 1.5,
    d0: float = 0.0,
    sigma_y: float = 1.0,
    sigma_z: float = 1.0,
    sigma_x: float = 1.0,
    n_features: int = 1,
    random_state: RandomState = None,
) -> Bunch:
    """Confounded data from the linear-Gaussian front-door SCM, with its closed form.

    Runs :func:`front_door_linear_scm`::

        U ~ N(0, 1);  Y = a0 + a1 U + sigma_y e;  Z = b Y + sigma_z e;
        X = d0 + c0 U + c1 Z + sigma_x e

    for which ``X | do(Y = y) ~ N(d0 + c1 b y, c0**2 + c1**2 sigma_z**2 + sigma_x**2)``
    per feature. The defaults (``b = 0.5, c0 = 2, c1 = 1.5``) are mild enough that
    front-door weights have an adequate effective sample size.

    Parameters
    ----------
    n_samples : int, default=5000
        Number of confounded rows.
    a0, a1, b, c0, c1, d0 : float
        Structural coefficients.
    sigma_y, sigma_z, sigma_x : float, default=1.0
        Noise scales (> 0).
    n_features : int, default=1
        Number of effect features (sharing ``U`` and ``Z``, independent noise).
    random_state : int, numpy.random.Generator or None, default=None
        Source of all randomness; the same seed gives identical arrays.

    Returns
    -------
    sklearn.utils.Bunch
        With keys ``X`` (n_samples, n_features) float64, ``y`` (n_samples,) float64,
        ``mechanism`` (n_samples,) float64, ``confounder`` (n_samples,) float64;
        ``interventional_mean`` (callable ``y -> E[X_j | do(Y = y)]``, same shape as
        ``y``); ``interventional_var`` (float, the variance of each ``X_j`` under
        ``do(Y)``); ``interventional_cov`` ((n_features, n_features) covariance of ``X``
        under ``do(Y)``); ``sample_interventional`` (callable
        ``(y_value, n, random_state=None) -> ndarray (n, n_features)`` drawing from the
        program under :func:`pyro.poutine.do`); ``params`` (dict of the coefficients);
        ``feature_names``, ``graph`` ``"front_door"``, ``scm``, ``description``.

    Examples
    --------
    >>> from causal_mixtures.simulate.datasets import make_front_door_linear
    >>> data = make_front_door_linear(1000, random_state=0)
    >>> float(data.interventional_mean(2.0)), data.interventional_var
    (1.5, 7.25)
    """
    n_samples = check_int("n_samples", n_samples)
    n_features = check_int("n_features", n_features)
    params = _check_front_door_params(
        a0=a0, a1=a1, b=b, c0=c0, c1=c1, d0=d0, sigma_y=sigma_y, sigma_z=sigma_z, sigma_x=sigma_x
    )
    rng = check_random_state(random_state)
    values = run_program(front_door_linear_scm, n_samples, rng, n_features=n_features, **params)

    p = params
    shared_var = p["c0"] ** 2 + p["c1"] ** 2 * p["sigma_z"] ** 2
    var = shared_var + p["sigma_x"] ** 2
    cov = np.full((n_features, n_features), shared_var) + p["sigma_x"] ** 2 * np.eye(n_features)
    return Bunch(
        X=values["X"],
        y=values["Y"],
        mechanism=values["Z"],
        confounder=values["U"],
        interventional_mean=functools.partial(
            _linear_interventional_mean, intercept=p["d0"], slope=p["c1"] * p["b"]
        ),
        interventional_var=float(var),
        interventional_cov=cov,
        sample_interventional=functools.partial(
            _front_door_do_sample, params=dict(params), n_features=n_features
        ),
        params=dict(params),
        feature_names=[f"X{j + 1}" for j in range(n_features)] if n_features > 1 else ["X"],
        graph=GRAPH,
        scm=front_door_linear_scm,
        description=(
            "Linear-Gaussian front-door SCM: U ~ N(0,1); Y = a0 + a1 U + sigma_y e; "
            "Z = b Y + sigma_z e; X = d0 + c0 U + c1 Z + sigma_x e. "
            "X | do(Y=y) ~ N(d0 + c1 b y, c0^2 + c1^2 sigma_z^2 + sigma_x^2). "
            f"Parameters: {params}."
        ),
    )


_REGRESSION_PARAMS = {
    "a0": 2.0,
    "a1": 1.0,
    "b": 1.5,
    "c1": 1.0,
    "d0": 0.0,
    "sigma_y": 1.0,
    "sigma_z": 1.0,
    "sigma_x": 1.0,
}


def regression_scm(n: int, *, u_effect_on_x: float = 5.0) -> dict[str, torch.Tensor]:
    """Pyro program of the paper's linear-Gaussian regression SCM.

    ::

        U ~ N(0, 1);  Y = 2 + U + e;  Z = 1.5 Y + e;  X = u_effect_on_x * U + Z + e

    with independent standard-normal noises: :func:`front_door_linear_scm` with
    ``a0 = 2, a1 = 1, b = 1.5, c0 = u_effect_on_x, c1 = 1, d0 = 0`` and unit noise scales.
    ``u_effect_on_x = 5`` is the confounded SCM; ``u_effect_on_x = 0`` removes the edge
    ``U -> X`` (the paper's non-confounded test set, ``X = Z + e``).

    Parameters
    ----------
    n : int
        Number of rows.
    u_effect_on_x : float, default=5.0
        Coefficient of ``U`` in ``X``.

    Returns
    -------
    dict of str to torch.Tensor
        Float64 values of the sites ``"U"``, ``"Y"``, ``"Z"`` (shape ``(n,)``) and ``"X"``
        (shape ``(n, 1)``).
    """
    return front_door_linear_scm(n, c0=u_effect_on_x, n_features=1, **_REGRESSION_PARAMS)


def make_regression_linear(
    n_samples: int = 5000, *, n_test: int = 1000, random_state: RandomState = None
) -> Bunch:
    """The paper's linear-Gaussian regression data, confounded and non-confounded.

    Runs :func:`regression_scm`: ``U ~ N(0, 1); Y = 2 + U + e; Z = 1.5 Y + e;
    X = 5 U + Z + e``. The interventional slope ``dE[X | do(Y = y)]/dy`` is 1.5 while the
    observational regression of ``X`` on ``Y`` has slope
    ``Cov(X, Y) / Var(Y) = (5 + 1.5 * 2) / 2 = 4``.

    Parameters
    ----------
    n_samples : int, default=5000
        Number of confounded training rows.
    n_test : int, default=1000
        Number of rows in each test set.
    random_state : int, numpy.random.Generator or None, default=None
        Source of all randomness; the same seed gives identical arrays.

    Returns
    -------
    sklearn.utils.Bunch
        With keys

        - ``X`` (n_samples, 1), ``y``, ``mechanism``, ``confounder`` (n_samples,), all
          float64: confounded training rows;
        - ``X_test_confounded``, ``y_test_confounded``, ``mechanism_test_confounded``,
          ``confounder_test_confounded``: ``n_test`` rows of the same SCM;
        - ``X_test``, ``y_test``, ``mechanism_test``, ``confounder_test``: the paper's
          non-confounded test set, ``n_test`` rows of the same program with the edge
          ``U -> X`` removed (``regression_scm(n, u_effect_on_x=0)``, i.e. ``X = Z + e``;
          ``Y = 2 + U + e`` and ``Z = 1.5 Y + e`` unchanged);
        - ``true_slope`` 1.5, ``naive_slope`` 4.0;
        - ``interventional_mean`` (callable, ``E[X | do(Y = y)] = 1.5 y``, same shape as
          ``y``), ``interventional_var`` ``25 + 1 + 1 = 27``: ``X = 5 U + Z + e`` with ``Var(Z | do(y)) = 1`` (variance of ``X``
          under ``do(Y)`` in the confounded SCM), ``sample_interventional`` (callable
          ``(y_value, n, random_state=None) -> ndarray (n, 1)``);
        - ``feature_names`` ``["X"]``, ``graph`` ``"front_door"``, ``scm``,
          ``description``.
    """
    n_samples = check_int("n_samples", n_samples)
    n_test = check_int("n_test", n_test)
    rng = check_random_state(random_state)

    train = run_program(regression_scm, n_samples, rng)
    test_conf = run_program(regression_scm, n_test, rng)
    test = run_program(regression_scm, n_test, rng, u_effect_on_x=0.0)

    out = Bunch()
    for suffix, values in (("", train), ("_test_confounded", test_conf), ("_test", test)):
        out["X" + suffix] = values["X"]
        out["y" + suffix] = values["Y"]
        out["mechanism" + suffix] = values["Z"]
        out["confounder" + suffix] = values["U"]
    params = dict(_REGRESSION_PARAMS, c0=5.0)
    out.update(
        true_slope=1.5,
        naive_slope=4.0,
        interventional_mean=functools.partial(
            _linear_interventional_mean, intercept=0.0, slope=1.5
        ),
        interventional_var=25.0 + 1.0 + 1.0,
        sample_interventional=functools.partial(_front_door_do_sample, params=params, n_features=1),
        params=params,
        feature_names=["X"],
        graph=GRAPH,
        scm=regression_scm,
        description=(
            "Synthetic linear-Gaussian regression after Mao & Little (arXiv:2410.20057): "
            "U ~ N(0,1); Y = 2 + U + e; Z = 1.5 Y + e; X = 5 U + Z + e. "
            "E[X|do(Y=y)] = 1.5 y; Var[X|do(Y)] = 27; observational slope 4. "
            "Non-confounded test set: the same program with U -> X removed (X = Z + e)."
        ),
    )
    return out

