"""Representations (``representation=``, ``mechanism_representation=``), the autoencoder, a K
per do value and the class-balance policy of the draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA

import causal_mixtures as cm
from causal_mixtures.exceptions import InvalidParameterError


class Rotation(TransformerMixin, BaseEstimator):
    """A fixed orthonormal map ``x -> (x - 1) Q`` (full rank)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, X, y=None):
        d = np.asarray(X).shape[1]
        q, _ = np.linalg.qr(np.random.default_rng(self.seed).normal(size=(d, d)))
        self.q_ = q
        return self

    def transform(self, X):
        return (np.asarray(X) - 1.0) @ self.q_

    def inverse_transform(self, Z):
        return np.asarray(Z) @ self.q_.T + 1.0


def _two_classes(n: int = 3000, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 3.0 * y[:, None]
    return X, y


def _low_rank(n: int = 4000, d: int = 30, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    Z = rng.normal(size=(n, k)) * np.array([3.0, 2.0, 1.0])[:k] + 2.0 * y[:, None]
    A = np.linalg.qr(rng.normal(size=(d, k)))[0].T  # (k, d), orthonormal rows
    return Z @ A + 5.0 + 0.01 * rng.normal(size=(n, d)), y


def test_pca_round_trip_draws_have_the_moments_of_the_data() -> None:
    X, y = _low_rank()
    W = np.ones((len(X), 1))
    model = cm.CausalGaussianMixture(
        "unconfounded", n_components=1, representation=PCA(n_components=3), random_state=0
    ).fit(X, weights=W, do=[0])
    assert model.representation_.n_components_ == 3
    assert model.n_features_in_ == 30 and model.n_representation_features_ == 3
    assert model.means_.shape == (1, 1, 3)
    draws = model.sample(40_000, do=0, random_state=1)
    assert draws.shape == (40_000, 30)
    np.testing.assert_allclose(draws.mean(0), X.mean(0), atol=0.03)
    cov_x, cov_d = np.cov(X, rowvar=False), np.cov(draws, rowvar=False)
    # Three components keep all but the 0.01-sd noise: the covariances agree to ~1e-2.
    assert np.abs(cov_d - cov_x).max() < 0.06 * np.abs(cov_x).max()
    # The class means of a deconfounded dataset come back in the data's columns.
    Xn, yn = (
        cm.CausalGaussianMixture(
            "unconfounded", n_components=1, representation=PCA(n_components=3), random_state=0
        )
        .fit(X, weights=np.column_stack([y == 0, y == 1]).astype(float), do=[0, 1])
        .resample(n_samples=20_000)
    )
    for c in (0, 1):
        np.testing.assert_allclose(Xn[yn == c].mean(0), X[y == c].mean(0), atol=0.06)


@pytest.mark.parametrize("representation", [Rotation(3), PCA(n_components=4)])
def test_orthonormal_full_rank_representation_equals_the_fit_in_the_original_space(
    representation,
) -> None:
    X, y = _two_classes()
    W = np.column_stack([y == 0, y == 1]).astype(float) + 0.1
    kw = dict(graph="unconfounded", n_components=2, covariance_type="full", random_state=0)
    plain = cm.CausalGaussianMixture(representation=None, **kw).fit(X, weights=W, do=[0, 1])
    rep = cm.CausalGaussianMixture(representation=representation, **kw).fit(X, weights=W, do=[0, 1])
    assert rep.score_space_ == "representation" and plain.score_space_ == "original"
    # Same optimum: the same weighted log-likelihood (the Jacobian of an orthonormal map is
    # 1), the same mixing weights, and the same density of every row.
    np.testing.assert_allclose(rep.lower_bound_, plain.lower_bound_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(np.sort(rep.weights_, 1), np.sort(plain.weights_, 1), atol=1e-8)
    for do in (0, 1):
        np.testing.assert_allclose(
            rep.score_samples(X[:200], do=do), plain.score_samples(X[:200], do=do), atol=1e-7
        )
    # Means map back onto the original-space means.
    back = np.sort(rep.representation_.inverse_transform(rep.means_[1]), 0)
    np.testing.assert_allclose(back, np.sort(plain.means_[1], 0), atol=1e-7)


def test_auto_representation_leaves_few_columns_untouched() -> None:
    X, y = _two_classes(800, 4)
    W = np.column_stack([y == 0, y == 1]).astype(float)
    kw = dict(graph="unconfounded", n_components=2, random_state=0)
    auto = cm.CausalGaussianMixture(**kw).fit(X, weights=W, do=[0, 1])
    none = cm.CausalGaussianMixture(representation=None, **kw).fit(X, weights=W, do=[0, 1])
    assert auto.representation_ is None and auto.clip_range_ is None
    assert auto.score_space_ == "original"
    np.testing.assert_array_equal(auto.means_, none.means_)
    np.testing.assert_array_equal(
        auto.sample(50, do=1, random_state=0), none.sample(50, do=1, random_state=0)
    )


def test_auto_representation_is_pca_above_256_columns_and_draws_are_clipped() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=400)
    base = rng.uniform(size=(2, 300))
    X = np.clip(base[y] + 0.05 * rng.normal(size=(400, 300)), 0, 1)
    model = cm.CausalGaussianMixture("unconfounded", n_components=1, random_state=0)
    Xn, yn = model.fit_resample(X, y)
    assert isinstance(model.representation_, PCA)
    assert model.representation_.n_components == 0.95
    assert model.n_representation_features_ < 300
    assert Xn.shape == (400, 300)
    assert Xn.min() >= X.min() and Xn.max() <= X.max()  # clip="auto" with a representation
    lo, hi = model.clip_range_
    np.testing.assert_array_equal(lo, X.min(0))
    # clip=False lets the draws leave the range.
    free = cm.CausalGaussianMixture("unconfounded", n_components=1, clip=False, random_state=0)
    Xf, _ = free.fit_resample(X, y)
    assert free.clip_range_ is None and (Xf.min() < X.min() or Xf.max() > X.max())
    # score_samples maps rows of the data's columns into the representation.
    assert model.score_samples(X[:5], do=1).shape == (5,)


def test_user_data_are_not_mutated_and_bad_representations_are_refused() -> None:
    X, y = _low_rank(500, 30)
    X0 = X.copy()
    cm.CausalGaussianMixture("unconfounded", representation=PCA(3), random_state=0).fit(X, y)
    np.testing.assert_array_equal(X, X0)
    with pytest.raises(InvalidParameterError, match="'representation'.*inverse_transform"):
        cm.CausalGaussianMixture("unconfounded", representation="pca").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'clip'"):
        cm.CausalGaussianMixture("unconfounded", clip="yes").fit(X, y)


@pytest.fixture(scope="module")
def ct():
    return cm.datasets.make_head_ct(2400, n_test=30, random_state=0)


def test_image_valued_mechanism_is_embedded_before_the_weights(ct) -> None:
    data = ct
    boot = cm.CausalBootstrap(random_state=0)
    Xn, yn = boot.fit_resample(data.X, data.y, mechanism=data.mechanism)
    assert isinstance(boot.mechanism_representation_, PCA)
    assert boot.mechanism_representation_.n_components == 8
    assert Xn.shape == data.X.shape and np.isfinite(boot.causal_weights_.values).all()


# ------------------------------------------------------------------------- K per do value
def test_a_k_per_class_from_a_dict_and_from_the_n_rule() -> None:
    X, y = _two_classes(3000, 2)
    y = np.where(np.arange(3000) < 2600, 0, 1)  # imbalanced: 2600 / 400
    W = np.column_stack([y == 0, y == 1]).astype(float)
    kw = dict(graph="unconfounded", covariance_type="diag", random_state=0)
    m = cm.CausalGaussianMixture(n_components={0: 4, 1: 1}, **kw).fit(X, weights=W, do=[0, 1])
    np.testing.assert_array_equal(m.n_components_, [4, 1])
    assert m.weights_.shape == (2, 4)
    np.testing.assert_array_equal(m.weights_[1, 1:], 0.0)  # padding: never drawn
    assert abs(m.weights_[1, 0] - 1.0) < 1e-12
    # Do value 1 alone with K = 1: the same fit as a separate one-component mixture.
    one = cm.CausalGaussianMixture(n_components=1, **kw).fit(
        X[y == 1], weights=np.ones((400, 1)), do=[1]
    )
    np.testing.assert_allclose(m.means_[1, 0], one.means_[0, 0], atol=1e-8)
    np.testing.assert_allclose(
        m.score_samples(X[:50], do=1), one.score_samples(X[:50], do=1), atol=1e-8
    )
    draws = m.sample(2000, do=1, random_state=0)
    np.testing.assert_allclose(draws.mean(0), X[y == 1].mean(0), atol=0.1)
    rule = cm.CausalGaussianMixture(n_components="n/200", **kw).fit(X, y)
    np.testing.assert_array_equal(rule.n_components_, [13, 2])  # 2600 / 200, 400 / 200
    ess = cm.CausalGaussianMixture(n_components="ess/200", **kw).fit(X, weights=W, do=[0, 1])
    np.testing.assert_array_equal(ess.n_components_, [13, 2])


def test_auto_k_per_class_follows_each_class_bic() -> None:
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], [1500, 1500])
    centres = np.array([[-6.0, 0.0], [0.0, 0.0], [6.0, 0.0]])
    X = np.where(
        (y == 0)[:, None], centres[rng.integers(0, 3, 3000)], np.array([[0.0, 5.0]])
    ) + rng.normal(size=(3000, 2))
    W = np.column_stack([y == 0, y == 1]).astype(float)
    m = cm.CausalGaussianMixture(
        "unconfounded", n_components={0: "auto", 1: "auto"}, random_state=0
    ).fit(X, weights=W, do=[0, 1])
    np.testing.assert_array_equal(m.n_components_, [3, 1])
    assert set(m.n_components_grid_) == {0, 1}
    with pytest.raises(ValueError, match="do value"):
        cm.CausalGaussianMixture("unconfounded", n_components={0: 2}).fit(X, weights=W, do=[0, 1])
    with pytest.raises(InvalidParameterError, match="'n_components'"):
        cm.CausalGaussianMixture("unconfounded", n_components="n/0").fit(X, weights=W, do=[0, 1])
    with pytest.raises(ValueError, match="EM only"):
        cm.CausalGaussianMixture("unconfounded", n_components="n/5", inference="svi").fit(X, y)


def test_class_balance_observed_follows_the_training_classes() -> None:
    X, _ = _two_classes(1000, 2)
    y = np.where(np.arange(1000) < 800, 0, 1)
    m = cm.CausalGaussianMixture(
        "unconfounded", n_components=1, class_balance="observed", random_state=0
    )
    _, yn = m.fit_resample(X, y)
    np.testing.assert_array_equal(np.bincount(yn), [800, 200])
    np.testing.assert_array_equal(m.class_counts_, [800, 200])
    _, yb = m.set_params(class_balance="balanced").fit_resample(X, y)
    np.testing.assert_array_equal(np.bincount(yb), [500, 500])  # the default, unchanged
    _, yo = cm.CausalBootstrap(
        "unconfounded", class_balance="observed", random_state=0
    ).fit_resample(X, y)
    np.testing.assert_array_equal(np.bincount(yo), [800, 200])


# ------------------------------------------------------------------------- autoencoder
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_autoencoder_is_deterministic_per_seed(device: str) -> None:
    X, _ = _low_rank(300, 20)
    state = torch.get_rng_state()
    kw = dict(n_components=3, hidden=(16,), max_epochs=60, learning_rate=1e-2, device=device)
    a = cm.Autoencoder(random_state=0, **kw).fit(X)
    b = cm.Autoencoder(random_state=0, **kw).fit(X)
    c = cm.Autoencoder(random_state=1, **kw).fit(X)
    assert torch.equal(torch.get_rng_state(), state)  # the global torch RNG is untouched
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    assert not np.allclose(a.transform(X), c.transform(X))
    Z = a.transform(X)
    assert Z.shape == (300, 3) and Z.dtype == np.float64
    back = a.inverse_transform(Z)
    assert back.shape == X.shape
    # Training lowers the reconstruction error well below that of the mean image.
    assert a.loss_curve_[-1] < 0.5 * a.loss_curve_[0]
    with pytest.raises(ValueError, match="features"):
        a.transform(X[:, :5])


def test_autoencoder_as_the_representation_of_a_mixture() -> None:
    X, y = _low_rank(600, 20)
    ae = cm.Autoencoder(n_components=3, hidden=(16,), max_epochs=20, random_state=0)
    m = cm.CausalGaussianMixture("unconfounded", n_components=1, representation=ae, random_state=0)
    Xn, yn = m.fit_resample(X, y)
    assert Xn.shape == (600, 20) and m.n_representation_features_ == 3
    assert m.representation_ is not ae  # cloned, the user's object is left unfitted
    assert not hasattr(ae, "encoder_")
    with pytest.raises(InvalidParameterError, match="'n_components'"):
        cm.Autoencoder(n_components=0).fit(X)
    with pytest.raises(InvalidParameterError, match="'hidden'"):
        cm.Autoencoder(hidden=(0,)).fit(X)
    linear = cm.Autoencoder(n_components=2, hidden=(), max_epochs=2, random_state=0).fit(X)
    assert linear.transform(X).shape == (600, 2)


def test_mechanism_learner_gates_and_predicts_through_a_representation() -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = _low_rank(2000, 30)
    learner = cm.MechanismLearner(
        LogisticRegression(max_iter=500),
        resampler=cm.CausalGaussianMixture(
            "unconfounded", n_components=1, representation=PCA(3), random_state=0
        ),
        check="raise",  # the gate runs on the representation's summaries, without X
    )
    learner.fit(X, y)
    assert learner.n_features_in_ == 30
    assert learner.diagnostics_.status in ("pass", "warn")
    assert learner.score(X, y) > 0.8


def test_auto_strategy_takes_weighting_in_a_representation(ct) -> None:
    data = ct
    model = cm.CausalGaussianMixture(
        n_components=1,
        covariance_type="diag",
        random_state=0,
        representation=PCA(8, svd_solver="randomized", random_state=0),
    )
    model.fit(data.X, data.y, mechanism=data.mechanism)
    assert model.strategy_ == "weighting"
    assert "representation" in model.strategy_reason_
