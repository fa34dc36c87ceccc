"""Tests of the simulators in :mod:`causal_mixtures.datasets`."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from pyro import poutine
from sklearn.datasets import load_digits
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

from causal_mixtures.simulate import datasets as datasets
from causal_mixtures.simulate.datasets import (
    classification_scm,
    front_door_linear_scm,
    make_background_digits,
    make_classification_2d,
    make_front_door_linear,
    make_regression_linear,
)

SMALL = {
    "classification": lambda seed: make_classification_2d(300, n_test=200, random_state=seed),
    "regression": lambda seed: make_regression_linear(300, n_test=200, random_state=seed),
    "front_door": lambda seed: make_front_door_linear(300, n_features=2, random_state=seed),
    "digits": lambda seed: make_background_digits(n_samples=300, n_test=200, random_state=seed),
}


def _arrays(bunch):
    return {k: v for k, v in bunch.items() if isinstance(v, np.ndarray)}


def _mean_within(samples, expected, n_se=4.0):
    # 4 Monte-Carlo standard errors of a sample mean: a false alarm rate below 1e-4.
    se = samples.std(ddof=1) / np.sqrt(samples.size)
    assert abs(samples.mean() - expected) < n_se * se, (samples.mean(), expected, se)


def _var_within(samples, expected, n_se=4.0):
    # Standard error of a Gaussian sample variance: sigma^2 sqrt(2 / (n - 1)).
    se = expected * np.sqrt(2.0 / (samples.size - 1))
    assert abs(samples.var(ddof=1) - expected) < n_se * se, (samples.var(ddof=1), expected, se)


def _prop_within(flags, p, n_se=4.0):
    # Binomial standard error sqrt(p (1 - p) / n), 4 of them.
    se = np.sqrt(p * (1 - p) / flags.size)
    assert abs(flags.mean() - p) < n_se * se, (flags.mean(), p, se)


# ----------------------------------------------------------------------------- generic


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_seed_gives_identical_arrays(name):
    a, b = SMALL[name](3), SMALL[name](3)
    arrays_a, arrays_b = _arrays(a), _arrays(b)
    assert arrays_a.keys() == arrays_b.keys()
    for key in arrays_a:
        np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=key)
    c = SMALL[name](4)
    assert not np.array_equal(a.X, c.X)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_global_rng_state_untouched(name):
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state is the point)
    torch_state = torch.get_rng_state().clone()
    SMALL[name](np.random.default_rng(0))
    SMALL[name](None)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_generator_random_state_advances():
    rng = np.random.default_rng(0)
    first = make_regression_linear(50, n_test=10, random_state=rng)
    second = make_regression_linear(50, n_test=10, random_state=rng)
    assert not np.array_equal(first.X, second.X)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_shapes_and_dtypes(name):
    data = SMALL[name](0)
    n = data.y.shape[0]
    assert data.X.ndim == 2 and data.X.shape[0] == n and data.X.dtype == np.float64
    assert data.mechanism.shape == (n,)
    assert data.graph == "front_door"
    assert isinstance(data.description, str) and data.description
    assert callable(data.scm)
    for suffix in ("_test", "_test_confounded", "_oracle"):
        if "X" + suffix in data:
            m = data["y" + suffix].shape[0]
            assert data["X" + suffix].shape == (m, data.X.shape[1])
            assert data["mechanism" + suffix].shape == (m,)
            assert data["y" + suffix].dtype == data.y.dtype
    discrete_y = name in ("classification", "digits")
    assert data.y.dtype == (np.int64 if discrete_y else np.float64)
    if discrete_y:
        assert set(np.unique(data.y)) == {1, 2}
    assert data.mechanism.dtype == (np.int64 if name == "digits" else np.float64)


def test_programs_are_pyro_programs_with_confounder_site():
    trace = poutine.trace(classification_scm).get_trace(7)
    sites = [name for name in trace.stochastic_nodes if name != "rows"]  # "rows": the plate
    assert sites == ["U", "Y", "Z", "X1", "X2"]
    y = torch.tensor([1, 2, 2, 1, 1, 2, 2], dtype=torch.int64)
    out = poutine.do(classification_scm, data={"Y": y})(7)
    assert torch.equal(out["Y"], y)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: make_classification_2d(0), r"n_samples must be an int >= 1; got 0"),
        (lambda: make_classification_2d(10.5), r"n_samples must be an int"),
        (lambda: make_classification_2d(True), r"n_samples must be an int"),
        (lambda: make_classification_2d(10, n_test=-1), r"n_test must be an int >= 1; got -1"),
        (
            lambda: make_classification_2d(10, p_y1_test=1.0),
            r"p_y1_test must be a probability.*1\.0",
        ),
        (lambda: make_regression_linear(-3), r"n_samples must be an int >= 1; got -3"),
        (lambda: make_regression_linear(5, n_test="a"), r"n_test must be an int"),
        (lambda: make_front_door_linear(10, sigma_x=0.0), r"sigma_x must be > 0; got 0\.0"),
        (lambda: make_front_door_linear(10, b=float("nan")), r"b must be a finite real number"),
        (lambda: make_front_door_linear(10, n_features=0), r"n_features must be an int >= 1"),
        (lambda: make_background_digits(quy=0.0), r"quy must be a probability.*0\.0"),
        (lambda: make_background_digits(n_samples=0), r"n_samples must be an int >= 1"),
        (lambda: make_background_digits(b=-1.0), r"b must be >= 0; got -1\.0"),
        (lambda: make_background_digits(digits=(3, 3)), r"digits must be a pair of two different"),
        (lambda: make_background_digits(digits=(3, 10)), r"digits must be a pair"),
        (lambda: make_background_digits(digits=5), r"digits must be a pair"),
    ],
)
def test_invalid_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_sample_interventional_validates():
    data = make_front_door_linear(10, random_state=0)
    with pytest.raises(ValueError, match=r"y_value must be a finite real number"):
        data.sample_interventional(float("inf"), 10)
    with pytest.raises(ValueError, match=r"n must be an int >= 1; got 0"):
        data.sample_interventional(1.0, 0)


# ----------------------------------------------------------------------------- classification


def test_classification_structure():
    data = make_classification_2d(20000, n_test=20000, p_y1_test=0.35, random_state=0)
    u, y = data.confounder, data.y
    _prop_within(u == 2, 0.25)
    _prop_within(y[u == 1] == 2, 0.2)
    _prop_within(y[u == 2] == 2, 0.8)
    # Z | Y ~ N(+-1.2, 1); X1 - (+-1.8 by sign of Z) and X2 - (+-2.4 by U) are N(0, 1).
    _mean_within(data.mechanism[y == 2], 1.2)
    _mean_within(data.mechanism[y == 1], -1.2)
    _mean_within(data.X[:, 0] - np.where(data.mechanism >= 0, 1.8, -1.8), 0.0)
    _var_within(data.X[:, 1] - np.where(u == 2, 2.4, -2.4), 1.0)
    # Non-confounded test: Y independent of U with P(Y = 1) = 0.35; U still shifts X2.
    ut, yt = data.confounder_test, data.y_test
    _prop_within(yt == 1, 0.35)
    _prop_within(yt[ut == 2] == 1, 0.35)
    _prop_within(yt[ut == 1] == 1, 0.35)
    _mean_within(data.X_test[:, 1] - np.where(ut == 2, 2.4, -2.4), 0.0)
    # Oracle training data: Y uniform, independent of U.
    _prop_within(data.y_oracle[data.confounder_oracle == 2] == 1, 0.5)
    _prop_within(data.y_oracle == 1, 0.5)


def test_classification_linear_svm_reproduces_confounding_gap():
    # The paper: a linear SVC(C=5) scores ~0.78 non-confounded vs ~0.85 confounded; an
    # oracle trained on interventional data ~0.85 non-confounded. Over seeds 0-19 at this
    # size the gaps were never below 0.04, so 0.03 leaves room for Monte-Carlo noise.
    data = make_classification_2d(2000, n_test=2000, random_state=0)
    clf = SVC(kernel="linear", C=5).fit(data.X, data.y)
    oracle = SVC(kernel="linear", C=5).fit(data.X_oracle, data.y_oracle)
    acc_nc = clf.score(data.X_test, data.y_test)
    acc_c = clf.score(data.X_test_confounded, data.y_test_confounded)
    acc_oracle = oracle.score(data.X_test, data.y_test)
    assert 0.70 < acc_nc < 0.83
    assert 0.82 < acc_c < 0.90
    assert acc_c - acc_nc > 0.03
    assert acc_oracle - acc_nc > 0.03
    # The classical model leans on X2 (the confounder's feature); the oracle barely does.
    assert abs(clf.coef_[0, 1]) > 0.3 * abs(clf.coef_[0, 0])
    assert abs(oracle.coef_[0, 1]) < 0.1 * abs(oracle.coef_[0, 0])


# ----------------------------------------------------------------------------- regression


def test_regression_slopes_and_test_sets():
    data = make_regression_linear(20000, n_test=20000, random_state=0)
    assert data.true_slope == 1.5 and data.naive_slope == 4.0
    assert data.interventional_var == pytest.approx(27.0)  # 5² Var U + Var Z|y + Var e
    np.testing.assert_allclose(data.interventional_mean(np.array([0.0, 2.0])), [0.0, 3.0])
    assert data.X.shape == (20000, 1)
    # OLS slope of X on Y: standard error sqrt(resid var / (n var Y)) ~ 0.02 here; 0.1 is 5 SE.
    slope = np.polyfit(data.y, data.X[:, 0], 1)[0]
    assert slope == pytest.approx(4.0, abs=0.1)
    slope_conf = np.polyfit(data.y_test_confounded, data.X_test_confounded[:, 0], 1)[0]
    assert slope_conf == pytest.approx(4.0, abs=0.1)
    # Non-confounded test: U -> X removed, X = Z + e, Y = 2 + U + e unchanged.
    _mean_within(data.X_test[:, 0] - data.mechanism_test, 0.0)
    _var_within(data.X_test[:, 0] - data.mechanism_test, 1.0)
    _var_within(data.y_test, 2.0)
    assert np.polyfit(data.y_test, data.X_test[:, 0], 1)[0] == pytest.approx(1.5, abs=0.05)
    # The confounded training data keeps X = 5 U + Z + e.
    _var_within(data.X[:, 0] - 5 * data.confounder - data.mechanism, 1.0)


def test_regression_sample_interventional_matches_closed_form():
    data = make_regression_linear(10, n_test=10, random_state=0)
    for i, y_value in enumerate((0.0, 3.5)):
        x = data.sample_interventional(y_value, 20000, random_state=i)[:, 0]
        _mean_within(x, float(data.interventional_mean(y_value)))
        _var_within(x, data.interventional_var)


# ----------------------------------------------------------------------------- front door


def test_front_door_do_samples_match_closed_form():
    params = dict(a0=0.5, a1=1.0, b=0.5, c0=2.0, c1=1.5, d0=-1.0, sigma_z=0.7, sigma_x=0.5)
    data = make_front_door_linear(100, random_state=0, **params)
    expected_var = 2.0**2 + 1.5**2 * 0.7**2 + 0.5**2
    assert data.interventional_var == pytest.approx(expected_var)
    assert data.params["c0"] == 2.0 and data.params["sigma_y"] == 1.0
    for i, y_value in enumerate((-2.0, 0.0, 1.0, 3.0)):
        x = data.sample_interventional(y_value, 20000, random_state=10 + i)
        assert x.shape == (20000, 1) and x.dtype == np.float64
        assert float(data.interventional_mean(y_value)) == pytest.approx(-1.0 + 1.5 * 0.5 * y_value)
        _mean_within(x[:, 0], float(data.interventional_mean(y_value)))
        _var_within(x[:, 0], data.interventional_var)


def test_front_door_observational_data_is_confounded():
    data = make_front_door_linear(20000, random_state=1)
    # Observational slope of X on Y: Cov(X, Y) / Var(Y) = (c0 a1 + c1 b Var Y) / Var Y
    # = (2 + 1.5 * 0.5 * 2) / 2 = 1.75, far from the causal 0.75. Its standard error is
    # sqrt(5.25 / (20000 * 2)) ~ 0.011; 0.06 is > 5 SE.
    assert np.polyfit(data.y, data.X[:, 0], 1)[0] == pytest.approx(1.75, abs=0.06)
    _var_within(data.X[:, 0] - 2.0 * data.confounder - 1.5 * data.mechanism, 1.0)
    _var_within(data.mechanism - 0.5 * data.y, 1.0)


def test_front_door_multiple_features_covariance():
    data = make_front_door_linear(10, n_features=3, random_state=0)
    assert data.X.shape == (10, 3)
    assert data.interventional_cov.shape == (3, 3)
    np.testing.assert_allclose(np.diag(data.interventional_cov), data.interventional_var)
    x = data.sample_interventional(1.0, 20000, random_state=5)
    assert x.shape == (20000, 3)
    # Off-diagonal covariance c0^2 + c1^2 sigma_z^2 = 6.25 of a correlated Gaussian pair:
    # its standard error is sqrt((s11 s22 + s12^2) / n) ~ 0.07; 0.3 is > 4 SE.
    emp = np.cov(x, rowvar=False)
    np.testing.assert_allclose(emp, data.interventional_cov, atol=0.3)


def test_front_door_program_under_do_has_no_u_dependence():
    # Direct use of the public program: under do(Y) the value of Y no longer follows U.
    y = torch.zeros(50, dtype=torch.float64)
    trace = poutine.trace(poutine.do(front_door_linear_scm, data={"Y": y})).get_trace(50)
    assert torch.equal(trace.nodes["_RETURN"]["value"]["Y"], y)
    # The site "Y" keeps a fresh draw from the model whose value does not propagate.
    assert not torch.equal(trace.nodes["Y"]["value"], y)


# ----------------------------------------------------------------------------- digits


def test_digits_pools_are_disjoint_and_used_as_declared():
    data = make_background_digits(n_samples=400, n_test=300, b=0.0, random_state=0)
    images, target = load_digits(return_X_y=True)
    assert data.images_shape == (8, 8) and data.X.shape == (400, 64)
    for k, digit in enumerate(data.digits):
        train, test = data.train_images[k], data.test_images[k]
        assert np.intersect1d(train, test).size == 0
        assert np.union1d(train, test).size == np.sum(target == digit)
    train_rows = {row.tobytes() for k in range(2) for row in images[data.train_images[k]]}
    test_rows = {row.tobytes() for k in range(2) for row in images[data.test_images[k]]}
    # With b = 0 every X row is an unmodified image: check which pool it came from.
    for key in ("X", "X_oracle"):
        assert all(row.tobytes() in train_rows for row in data[key])
    for key in ("X_test", "X_test_confounded"):
        assert all(row.tobytes() in test_rows for row in data[key])
    # The digit drawn is the mechanism Z.
    digit_of = {row.tobytes(): t for row, t in zip(images, target, strict=True)}
    drawn = np.array([digit_of[row.tobytes()] for row in data.X])
    np.testing.assert_array_equal(drawn, np.where(data.mechanism == 1, 2, 6))


def test_digits_structure():
    data = make_background_digits(n_samples=5000, n_test=5000, random_state=1)
    assert data.X.min() >= 0.0 and data.X.max() <= 16.0
    _var_within(data.confounder, 25.0)
    _prop_within(data.mechanism == data.y, 0.95)
    _prop_within(data.mechanism_test == data.y_test, 0.95)
    # quy = 0.8: P(Y = 2 | U) = sigmoid(log(4) U), so Y = 2 mostly where U > 0.
    assert np.mean(data.y[data.confounder > 0] == 2) > 0.85
    assert np.mean(data.y[data.confounder < 0] == 2) < 0.15
    # Non-confounded sets: Y independent of U.
    _prop_within(data.y_test[data.confounder_test > 0] == 2, 0.5)
    _prop_within(data.y_oracle[data.confounder_oracle < 0] == 2, 0.5)
    # Background brightness (0.5 tanh(0.2 U) + 0.5) b adds to every pixel before clipping.
    corner = data.X[:, 0]  # the top-left pixel is 0 in every digit image
    expected = (0.5 * np.tanh(0.2 * data.confounder) + 0.5) * data.b
    np.testing.assert_allclose(corner, expected)
    assert data.b == pytest.approx(100 / 255 * 16)


def test_digits_quy_half_is_not_confounded():
    data = make_background_digits(n_samples=4000, n_test=10, quy=0.5, random_state=2)
    _prop_within(data.y[data.confounder > 0] == 2, 0.5)
    _prop_within(data.y[data.confounder < 0] == 2, 0.5)


def test_digits_knn_is_hurt_by_confounding():
    # The paper's KNN (k = 3): 0.72 non-confounded vs 0.96 confounded. Over seeds 0-19 at
    # this size the gap was never below 0.16; the oracle scores ~0.94 on both.
    data = make_background_digits(n_samples=1000, n_test=500, random_state=0)
    knn = KNeighborsClassifier(n_neighbors=3).fit(data.X, data.y)
    acc_nc = knn.score(data.X_test, data.y_test)
    acc_c = knn.score(data.X_test_confounded, data.y_test_confounded)
    assert acc_c - acc_nc > 0.1
    oracle = KNeighborsClassifier(n_neighbors=3).fit(data.X_oracle, data.y_oracle)
    assert oracle.score(data.X_test, data.y_test) - acc_nc > 0.1


def test_digits_other_digits_and_sizes():
    data = make_background_digits(n_samples=7, n_test=3, digits=(0, 1), b=3.0, random_state=0)
    assert data.X.shape == (7, 64) and data.X_test.shape == (3, 64)
    assert data.digits == (0, 1)
    assert data.b == 3.0


def test_module_exports():
    for name in datasets.__all__:
        assert callable(getattr(datasets, name))


def test_bunches_with_callables_pickle():
    # Bunches are passed to joblib workers: their callables must pickle.
    for data in (
        make_front_door_linear(20, random_state=0),
        make_regression_linear(20, random_state=0),
    ):
        copy = pickle.loads(pickle.dumps(data))
        assert copy.interventional_mean(2.0) == data.interventional_mean(2.0)
        np.testing.assert_array_equal(
            copy.sample_interventional(1.0, 5, random_state=0),
            data.sample_interventional(1.0, 5, random_state=0),
        )
