"""Bad input: one test each, with a message that names the argument."""

from __future__ import annotations

import numpy as np
import pytest

import causal_mixtures as cm


@pytest.fixture
def data():
    return cm.datasets.make_classification_2d(600, random_state=0)


def fit(data, **kw):
    args = dict(X=data.X, y=data.y, mechanism=data.mechanism)
    args.update(kw)
    est_kw = args.pop("est", {})
    X = args.pop("X")
    y = args.pop("y")
    return cm.CausalGaussianMixture(**{"n_components": 2, "random_state": 0, **est_kw}).fit(
        X, y, **args
    )


@pytest.mark.parametrize("name", ["X", "y", "mechanism"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite(data, name, bad):
    arr = {"X": data.X, "y": data.y.astype(float), "mechanism": data.mechanism}[name].copy()
    arr.flat[7] = bad
    with pytest.raises(ValueError, match=rf"^{name} must contain only finite values"):
        fit(data, **{name: arr})


def test_mismatched_lengths(data):
    with pytest.raises(
        ValueError, match="X and y must have the same number of rows; got 600 rows in X and 599"
    ):
        fit(data, y=data.y[:-1])
    with pytest.raises(
        ValueError, match="mechanism must have one row per sample: expected 600 rows"
    ):
        fit(data, mechanism=data.mechanism[:-1])


def test_one_dimensional_X(data):
    with pytest.raises(
        ValueError,
        match=r"X must be 2-D .* got a 1-D array of shape \(600,\)\. Reshape it with X\.reshape\(-1, 1\)",
    ):
        fit(data, X=data.X[:, 0])


def test_single_class(data):
    with pytest.raises(ValueError, match="y must take at least two distinct values"):
        fit(data, y=np.ones(600, dtype=int))


def test_do_value_without_support(data):
    with pytest.raises(cm.PositivityError, match=r"do value\(s\) \[3\] have no support"):
        fit(data, do=[1, 3])


def test_too_many_components_for_positive_weight_rows(data):
    w = np.zeros((600, 2))
    w[:5, 0] = 1.0
    w[:, 1] = 1.0
    with pytest.raises(
        ValueError,
        match=r"n_components=6 cannot be supported: do value 0 has 5.0 effective rows",
    ):
        cm.CausalGaussianMixture(None, 6).fit(data.X, weights=w)


def test_all_zero_weight_column(data):
    w = np.ones((600, 2))
    w[:, 1] = 0.0
    with pytest.raises(ValueError, match=r"weights column\(s\) \[1\] are all zero"):
        cm.CausalGaussianMixture(None, 2).fit(data.X, weights=w)


@pytest.mark.parametrize(
    "bad, msg",
    [
        (-0.5, "weights must be non-negative; got -0.5"),
        (np.nan, "weights must contain only finite values"),
    ],
)
def test_bad_explicit_weights(data, bad, msg):
    w = np.ones(600)
    w[3] = bad
    with pytest.raises(ValueError, match=msg):
        cm.CausalGaussianMixture(None, 2).fit(data.X, weights=w)


def test_unknown_graph_lists_known(data):
    with pytest.raises(ValueError, match=r"front_doro.*front_door") as err:
        fit(data, est={"graph": "front_doro"})
    for name in cm.list_graphs():
        assert name in str(err.value)


def test_graph_missing_role(data):
    # Only the cause and the effect declared: the front door's mechanism Z is found (graph
    # reducibility), so the fit needs Z's data and says so when it is missing.
    g = cm.CausalGraph.from_string("Y [cause]; X [effect]; Y -> Z -> X; Y <-> X")
    assert cm.identify(g).mechanisms == ("Z",)
    with pytest.raises((cm.NotIdentifiableError, ValueError), match="mechanism"):
        fit(data, est={"graph": g}, mechanism=None)
    assert fit(data, est={"graph": g}).causal_weights_.estimand.mechanisms == ("Z",)


def test_missing_mechanism_data(data):
    with pytest.raises(ValueError, match="mechanism is required"):
        fit(data, mechanism=None)


def test_continuous_y_without_do():
    reg = cm.datasets.make_regression_linear(500, random_state=0)
    with pytest.raises(ValueError, match=r"y is continuous.*do=np.linspace"):
        cm.CausalGaussianMixture().fit(reg.X, reg.y, mechanism=reg.mechanism)


def test_sample_unknown_do(data):
    est = fit(data)
    with pytest.raises(
        ValueError,
        match=r"do=5 is not one of the intervention values the model was fitted for: \[1, 2\]",
    ):
        est.sample(10, do=5)


def test_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        cm.CausalGaussianMixture().sample(3, do=1)
