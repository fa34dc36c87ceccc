"""The doubly robust front-door estimator (causal_mixtures/estimators/doubly_robust.py):
unbiased with calibrated standard errors on a linear-Gaussian front door, exact on discrete
tables, consistent with one nuisance misspecified, and clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

import causal_mixtures as cm
from causal_mixtures.estimators.doubly_robust import InterventionalMeans, front_door_means

LINEAR = {"outcome_model": LinearRegression(), "mechanism_model": LogisticRegression()}


@pytest.mark.slow
def test_unbiased_and_se_matches_the_monte_carlo_sd() -> None:
    """40 datasets of the binary linear-Gaussian front door (truth c1 b = 1.5): the mean
    estimate is within 3 Monte-Carlo standard errors of the truth, and the average
    influence-function se matches the sd over datasets within 20 % (per do value and for
    the difference)."""
    est, ses = [], []
    for seed in range(40):
        d = cm.datasets.make_front_door_binary(2000, random_state=seed)
        r = front_door_means(d.X, d.y, d.mechanism, random_state=seed, **LINEAR)
        diff, se = r.difference(1, 0)
        est.append([r.mean[0, 0], r.mean[1, 0], diff[0]])
        ses.append([r.se[0, 0], r.se[1, 0], se[0]])
    est, ses = np.array(est), np.array(ses)
    truth = np.array([0.0, 1.5, 1.5])
    sd = est.std(axis=0, ddof=1)
    assert np.all(np.abs(est.mean(axis=0) - truth) < 3 * sd / np.sqrt(len(est)))
    ratio = ses.mean(axis=0) / sd
    assert np.all((ratio > 0.8) & (ratio < 1.2)), ratio


@pytest.mark.slow
def test_default_models_are_calibrated_where_the_classes_barely_overlap() -> None:
    """The defaults (no model passed), with a mechanism 2 sd apart between the classes
    (b = 2: the outcome model is used far from the rows it was fitted on): over 30 datasets
    the root mean square of (estimate - truth) / se is within [0.7, 1.4] for both do values
    (the previous default, additive splines with a ridge: 2.0 and 1.4), and the estimates are
    within 0.1 sd of the truth E[x | do(y)] = c1 b y = 3 y on average."""
    z, err = [], []
    for seed in range(30):
        d = cm.datasets.make_front_door_binary(1500, b=2.0, random_state=seed)
        r = front_door_means(d.X, d.y, d.mechanism, random_state=seed)
        truth = np.array([0.0, 3.0])
        z.append((r.mean[:, 0] - truth) / r.se[:, 0])
        err.append((r.mean[:, 0] - truth) / d.X[:, 0].std())
    rms = np.sqrt((np.array(z) ** 2).mean(axis=0))
    assert np.all((rms > 0.7) & (rms < 1.4)), rms
    assert np.all(np.abs(np.array(err).mean(axis=0)) < 0.1), np.array(err).mean(axis=0)


def _discrete_scm(n: int, rng: np.random.Generator) -> dict:
    """U in {0,1}; Y | U; Z in {0,1,2} | Y; X in {0,1} | Z, U."""
    p_u = 0.4
    p_y_u = np.array([0.2, 0.8])  # P(Y = 1 | U)
    p_z_y = np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]])  # P(Z | Y)
    p_x_zu = np.array([[0.1, 0.6], [0.4, 0.8], [0.7, 0.95]])  # P(X = 1 | Z, U)
    u = (rng.random(n) < p_u).astype(int)
    y = (rng.random(n) < p_y_u[u]).astype(int)
    z = (rng.random((n, 1)) > np.cumsum(p_z_y[y], axis=1)).sum(axis=1)
    x = (rng.random(n) < p_x_zu[z, u]).astype(float)
    # Exact front-door enumeration from the true tables of the observed (Y, Z, X).
    p_uy = np.array([[1 - p_u, p_u]]).T * np.stack([1 - p_y_u, p_y_u], axis=1)  # (u, y)
    p_y = p_uy.sum(axis=0)
    p_u_given_y = p_uy / p_y  # (u, y)
    mu = np.einsum("zu,uy->yz", p_x_zu, p_u_given_y)  # E[X | y, z] (Z indep. of U given Y)
    psi = np.array([p_z_y[v] @ (p_y @ mu) for v in (0, 1)])
    truth = np.array([p_z_y[v] @ (p_x_zu @ np.array([1 - p_u, p_u])) for v in (0, 1)])
    return {"X": x, "y": y, "z": z, "psi": psi, "truth": truth}


def test_discrete_tables_agree_with_exact_enumeration() -> None:
    d = _discrete_scm(20_000, np.random.default_rng(3))
    np.testing.assert_allclose(d["psi"], d["truth"], atol=1e-12)  # identification
    r = front_door_means(d["X"], d["y"], d["z"], random_state=0)
    err = np.abs(r.mean[:, 0] - d["psi"])
    assert np.all(err < 4 * r.se[:, 0]), (r.mean, d["psi"], r.se)
    # se of a proportion-like mean at n = 2e4: between 0.002 and 0.02.
    assert np.all((r.se > 0.002) & (r.se < 0.02))
    # The confounded contrast is far from the causal one.
    naive = d["X"][d["y"] == 1].mean() - d["X"][d["y"] == 0].mean()
    causal = d["psi"][1] - d["psi"][0]
    assert abs(naive - causal) > 0.1
    est, se = r.difference(1, 0)
    assert abs(est[0] - causal) < 4 * se[0]


@pytest.mark.parametrize(
    "kwargs, wrong",
    [
        ({"outcome_model": DummyRegressor(), "mechanism_model": LogisticRegression()}, "mu"),
        ({"outcome_model": LinearRegression(),
          "mechanism_model": DummyClassifier(strategy="prior")}, "ratio"),
    ],
    ids=["outcome-constant", "ratio-one"],
)
def test_double_robustness(kwargs: dict, wrong: str) -> None:
    """One nuisance misspecified (μ(y, z) = E[x | y], or p(z | v) / p(z | y) = 1): the
    estimate stays within 4 se of the truth at n = 2e4 while the misspecified plug-in (for a
    wrong μ) or the uncorrected ratio estimate is biased."""
    d = cm.datasets.make_front_door_binary(20_000, random_state=11)
    r = front_door_means(d.X, d.y, d.mechanism, random_state=0, **kwargs)
    est, se = r.difference(1, 0)
    assert abs(est[0] - 1.5) < 4 * se[0], (est, se)
    if wrong == "mu":
        # the plug-in with μ = E[x | y] is the confounded contrast, not 1.5
        plug = r.plugin[1, 0] - r.plugin[0, 0]
        assert abs(plug - 1.5) > 0.5


def test_both_nuisances_wrong_is_biased() -> None:
    d = cm.datasets.make_front_door_binary(20_000, random_state=11)
    r = front_door_means(d.X, d.y, d.mechanism, random_state=0, outcome_model=DummyRegressor(),
                         mechanism_model=DummyClassifier(strategy="prior"))
    est, se = r.difference(1, 0)
    assert abs(est[0] - 1.5) > 10 * se[0]


def test_covariate_front_door_do_difference() -> None:
    d = cm.datasets.make_covariate_front_door(6000, random_state=2)
    r = front_door_means(d.X, d.y, d.mechanism, covariates=d.covariates, random_state=0)
    est, se = r.difference(1, 0)
    assert np.all(np.abs(est - d.do_difference) < 4 * se), (est, se, d.do_difference)
    lo, hi = r.confidence_interval(0.95)
    assert np.all(hi - lo > 0) and r.mean.shape == (2, 2) and r.influence.shape == (6000, 2, 2)


def test_result_and_api() -> None:
    d = cm.datasets.make_front_door_binary(600, random_state=0)
    r = cm.front_door_means(d.X[:, 0], d.y, d.mechanism, do=1, cv=3, random_state=0, **LINEAR)
    assert isinstance(r, InterventionalMeans) and r.do_values.tolist() == [1]
    assert r.cv == 3 and r.n_samples == 600
    again = front_door_means(d.X[:, 0], d.y, d.mechanism, do=1, cv=3, random_state=0, **LINEAR)
    np.testing.assert_array_equal(r.mean, again.mean)  # seeded folds
    with pytest.raises(ValueError, match="do value 0 was not estimated"):
        r.difference(1, 0)
    with pytest.raises(ValueError, match="level"):
        r.confidence_interval(1.5)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"y": "continuous"}, "discrete cause"),
        ({"mechanism": None}, "mechanism is required"),
        ({"mechanism": "short"}, "mechanism must have one row per row"),
        ({"do": 5}, r"do values \[5\] are not values of y"),
        ({"cv": 1}, "cv must be an int >= 2"),
        ({"cv": 10_000}, "rarest value"),
        ({"mechanism_type": "ordinal"}, "mechanism_type must be one of"),
        ({"covariates": "short"}, "covariates must have one row per row"),
        ({"clip": 0.9}, "clip must be"),
    ],
)
def test_bad_input(change: dict, match: str) -> None:
    d = cm.datasets.make_front_door_binary(300, random_state=0)
    kw: dict = {"X": d.X, "y": d.y, "mechanism": d.mechanism}
    for key, value in change.items():
        if value == "continuous":
            value = d.mechanism
        elif value == "short":
            value = np.zeros((10, 1))
        kw[key] = value
    with pytest.raises(ValueError, match=match):
        front_door_means(**kw)
