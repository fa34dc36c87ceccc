"""Bad input to the estimators and to causal_weights: one table of (call, exception type,
words the message must contain), plus property-based tests over shapes, dtypes, NaN/inf
positions and label types. The only outcomes allowed are a correct fit or one of the
package's documented exceptions; never an internal numpy/torch error, a NaN in an output,
or a mutated input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import causal_mixtures as cm
from causal_mixtures.exceptions import InvalidParameterError
from causal_mixtures.weights.density import HistogramDensity

D = cm.datasets.make_classification_2d(300, n_test=10, random_state=0)
X, Y, Z = D.X, D.y, D.mechanism.ravel()


def cgm(**kw):
    return cm.CausalGaussianMixture(random_state=0, **kw)


def fitted(**kw):
    return cgm(**kw).fit(X, Y, mechanism=Z)


def _obj_with_none(a):
    out = a.astype(object)
    out[5] = None
    return out


def _bad_precisions():
    p = np.tile(np.eye(2), (2, 1, 1))
    p[1] = [[1.0, 2.0], [2.0, 1.0]]  # not positive definite
    return p


CASES = [
    # --- fit: data
    ("X with NaN", lambda: cgm().fit(np.where(np.arange(600).reshape(300, 2) == 7, np.nan, X), Y, mechanism=Z), ValueError, "X must contain only finite values"),
    ("X sparse", lambda: cgm().fit(sp.csr_matrix(X), Y, mechanism=Z), TypeError, "dense data is required"),
    ("X complex", lambda: cgm().fit(X + 1j, Y, mechanism=Z), ValueError, "Complex data not supported"),
    ("X 1-D", lambda: cgm().fit(X[:, 0], Y, mechanism=Z), ValueError, "must be 2-D"),
    ("X empty", lambda: cgm().fit(np.empty((0, 2)), [], mechanism=[]), ValueError, "at least one row"),
    ("y length", lambda: cgm().fit(X, Y[:-1], mechanism=Z), ValueError, "same number of rows"),
    ("y None entries", lambda: cgm().fit(X, _obj_with_none(Y), mechanism=Z), ValueError, "y must not contain missing values"),
    ("y one class", lambda: cgm().fit(X, np.ones(300, int), mechanism=Z), ValueError, "at least two distinct values"),
    ("y missing", lambda: cgm().fit(X, mechanism=Z), ValueError, "requires y to be passed"),
    ("mechanism missing", lambda: cgm().fit(X, Y), ValueError, "mechanism is required"),
    ("mechanism None entries", lambda: cgm().fit(X, Y, mechanism=_obj_with_none(np.where(Z > 0, "a", "b"))), ValueError, "mechanism must not contain missing values"),
    ("mechanism inf", lambda: cgm().fit(X, Y, mechanism=np.where(np.arange(300) == 3, np.inf, Z)), ValueError, "mechanism must contain only finite values"),
    ("mechanism = y", lambda: cgm(n_components=2).fit(X, Y, mechanism=Y), cm.PositivityError, "positivity fails"),
    ("continuous y, no do", lambda: cgm().fit(X, Z, mechanism=Z + 1.0), ValueError, "pass a grid"),
    ("unknown graph", lambda: cgm(graph="front_dor").fit(X, Y, mechanism=Z), ValueError, "front_door"),
    # --- fit: parameters
    ("n_components_range []", lambda: cgm(n_components="auto", n_components_range=[]).fit(X, Y, mechanism=Z), InvalidParameterError, "n_components_range"),
    ("n_components_range [0, 3]", lambda: cgm(n_components="auto", n_components_range=[0, 3]).fit(X, Y, mechanism=Z), InvalidParameterError, "ints in the range [1, inf)"),
    ("verbose='yes'", lambda: cgm(verbose="yes").fit(X, Y, mechanism=Z), InvalidParameterError, "'verbose'"),
    ("plugin_components=-3", lambda: cgm(plugin_components=-3).fit(X, Y, mechanism=Z), InvalidParameterError, "'plugin_components'"),
    ("plugin_components=0", lambda: cgm(strategy="plugin", plugin_components=0).fit(X, Y, mechanism=Z), InvalidParameterError, "'plugin_components'"),
    ("plugin_draws=-3", lambda: cgm(strategy="plugin", plugin_draws=-3).fit(X, Y, mechanism=Z), InvalidParameterError, "'plugin_draws'"),
    ("positivity='ignore'", lambda: cgm(positivity="ignore").fit(X, Y, mechanism=Z), InvalidParameterError, "'positivity'"),
    ("precisions_init not PD", lambda: cm.CausalGaussianMixture(None, 2, weights_init=[0.5, 0.5], means_init=[[0, 0], [1, 1]], precisions_init=_bad_precisions()).fit(X, weights=np.ones(300)), ValueError, "precisions_init must hold symmetric positive-definite"),
    ("means_init wrong shape", lambda: cm.CausalGaussianMixture(None, 2, means_init=np.zeros((3, 2))).fit(X, weights=np.ones(300)), ValueError, "means_init must have shape"),
    ("HistogramDensity(bins=0)", lambda: cgm(density=HistogramDensity(bins=0)).fit(X, Y, mechanism=Z), ValueError, "bins=...) must be an int >= 1"),
    ("too few rows for full", lambda: cgm(n_components=2, strategy="weighting").fit(X[:8], Y[:8], mechanism=Z[:8]), cm.DegenerateFitError, "effective rows"),
    ("weights wrong length", lambda: cm.CausalGaussianMixture(None).fit(X, weights=np.ones(10)), ValueError, "one row per sample"),
    ("weights negative", lambda: cm.CausalGaussianMixture(None).fit(X, weights=-np.ones(300)), ValueError, "weights"),
    # --- sample / resample / score_samples
    ("sample(True)", lambda: fitted().sample(True, do=1), ValueError, "n_samples must be an int >= 1"),
    ("sample(0)", lambda: fitted().sample(0, do=1), ValueError, "n_samples must be an int >= 1"),
    ("sample unknown do", lambda: fitted().sample(3, do=7), ValueError, "is not one of the intervention values"),
    ("resample('5')", lambda: fitted().resample("5"), TypeError, "n_samples must be None, a positive int"),
    ("resample(2.5)", lambda: fitted().resample(2.5), TypeError, "n_samples must be None, a positive int"),
    ("resample(True)", lambda: fitted().resample(True), TypeError, "n_samples must be None, a positive int"),
    ("resample([1, 2, 3])", lambda: fitted().resample([1, 2, 3]), ValueError, "2 positive ints"),
    ("score_samples wrong width", lambda: fitted().score_samples(X[:, :1], do=1), ValueError, "features"),
    ("score_samples reordered columns", lambda: cgm().fit(pd.DataFrame(X, columns=["a", "b"]), Y, mechanism=Z).score_samples(pd.DataFrame(X, columns=["b", "a"]), do=1), ValueError, "feature names should match"),
    ("score_samples renamed columns", lambda: cgm().fit(pd.DataFrame(X, columns=["a", "b"]), Y, mechanism=Z).score_samples(pd.DataFrame(X, columns=["a", "c"]), do=1), ValueError, "feature names should match"),
    ("posterior_datasets after EM", lambda: fitted().posterior_datasets(2), ValueError, "inference='bayes'"),
    # --- causal_weights
    ("causal_weights positivity='no'", lambda: cm.causal_weights("front_door", X, Y, mechanism=Z, positivity="no"), ValueError, "positivity must be one of"),
    ("causal_weights y None", lambda: cm.causal_weights("front_door", X, None, mechanism=Z), ValueError, "y (the cause) is required"),
    ("causal_weights bad density", lambda: cm.causal_weights("front_door", X, Y, mechanism=Z, density="parzen"), ValueError, "density"),
    # --- the bootstrap and the learner
    ("bootstrap mechanism = y", lambda: cm.CausalBootstrap().fit_resample(X, Y, mechanism=Y), cm.PositivityError, "positivity fails"),
    ("learner predict before fit", lambda: cm.MechanismLearner(cm.CausalGaussianMixture()).predict(X), Exception, "not fitted"),
]


@pytest.mark.parametrize("what, call, exc, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_table(what, call, exc, words) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc) as info:
            call()
    assert words in str(info.value), str(info.value)


def test_learner_refuses_reordered_columns_at_predict() -> None:
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(X, columns=["a", "b"])
    learner = cm.MechanismLearner(LogisticRegression(), check="off").fit(frame, Y, mechanism=Z)
    with pytest.raises(ValueError, match="feature names"):
        learner.predict(frame[["b", "a"]])


def test_string_and_categorical_labels_fit() -> None:
    zs = np.where(Z > 0, "hi", "lo").astype(object)
    for z in (zs, pd.Categorical(zs)):
        m = cgm(n_components=2).fit(X, Y, mechanism=z)
        assert np.all(np.isfinite(m.means_))
    ys = np.where(Y == 1, "healthy", "sick")
    m = cgm(n_components=2).fit(X, ys, mechanism=Z)
    assert m.do_values_.tolist() == ["healthy", "sick"]


# ---------------------------------------------------------------------- properties
DOCUMENTED = (ValueError, TypeError, cm.PositivityError, cm.DegenerateFitError,
              cm.NotIdentifiableError)
LABELS = st.sampled_from([
    np.array([1, 2]), np.array(["a", "b"]), np.array([0.5, 2.5]), np.array([True, False]),
    np.array(["x", 3], dtype=object),
])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 60),
    d=st.integers(1, 4),
    labels=LABELS,
    n_bad=st.integers(0, 2),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
    where=st.sampled_from(["X", "mechanism"]),
    ct=st.sampled_from(["full", "diag", "spherical"]),
    k=st.one_of(st.integers(1, 4), st.just("auto")),
    seed=st.integers(0, 2**16),
)
def test_fit_either_works_or_raises_a_documented_error(
    n, d, labels, n_bad, bad, where, ct, k, seed
) -> None:
    rng = np.random.default_rng(seed)
    Xp = rng.normal(size=(n, d))
    y = labels[rng.integers(0, 2, n)]
    z = rng.normal(size=n) + (y == labels[0])
    if n_bad:
        target = Xp if where == "X" else z
        flat = target.reshape(-1)
        flat[rng.integers(0, flat.size, n_bad)] = bad
    X0, y0, z0 = Xp.copy(), y.copy(), z.copy()
    est = cm.CausalGaussianMixture(n_components=k, covariance_type=ct, random_state=0,
                                   positivity="warn", max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(Xp, y, mechanism=z)
        except DOCUMENTED as exc:
            assert type(exc).__module__.startswith(("causal_mixtures", "builtins")), exc
        else:
            assert np.all(np.isfinite(est.means_)) and np.all(np.isfinite(est.covariances_))
            draws = est.sample(20, do=est.do_values_[0], random_state=0)
            assert draws.shape == (20, d) and np.all(np.isfinite(draws))
    # The user's arrays are never modified.
    np.testing.assert_array_equal(Xp, X0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(z, z0)
