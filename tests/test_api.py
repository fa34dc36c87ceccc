"""The public API contract (docs/architecture.md, "Public API"): names and signatures that notebooks, the README
and outside checks call. Extending is fine; renaming or dropping fails here."""

from __future__ import annotations

import inspect

import numpy as np

import causal_mixtures as cm


def _params(func) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(func).parameters)


def test_all_names_resolve() -> None:
    for name in cm.__all__:
        assert getattr(cm, name) is not None, name


def test_cw_gmm_contract() -> None:
    p = _params(cm.CausalGaussianMixture.__init__)
    assert p["graph"].default == "front_door" and p["n_components"].default == 1
    for name, default in dict(
        covariance_type="full",
        inference="em",
        density="auto",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        random_state=None,
    ).items():
        assert p[name].kind is inspect.Parameter.KEYWORD_ONLY and p[name].default == default, name
    fit = _params(cm.CausalGaussianMixture.fit)
    for name in ("mechanism", "covariates", "do"):
        assert fit[name].kind is inspect.Parameter.KEYWORD_ONLY and fit[name].default is None
    assert _params(cm.CausalGaussianMixture.sample)["do"].kind is inspect.Parameter.KEYWORD_ONLY
    assert (
        _params(cm.CausalGaussianMixture.score_samples)["do"].kind is inspect.Parameter.KEYWORD_ONLY
    )
    fr = _params(cm.CausalGaussianMixture.fit_resample)
    assert {"mechanism", "covariates", "do", "n_samples"} <= set(fr)


def test_fitted_attributes() -> None:
    data = cm.datasets.make_classification_2d(600, random_state=0)
    est = cm.CausalGaussianMixture(n_components=2, random_state=0).fit(
        data.X, data.y, mechanism=data.mechanism
    )
    for name in (
        "do_values_",
        "weights_",
        "means_",
        "covariances_",
        "causal_weights_",
        "converged_",
        "n_iter_",
        "lower_bound_",
    ):
        assert hasattr(est, name), name
    assert est.means_.shape == (2, 2, 2) and est.covariances_.shape == (2, 2, 2, 2)
    cw = est.causal_weights_
    assert cw.values.shape == (600, 2)
    assert cw.do_values.tolist() == [1, 2] and cw.ess.shape == (2,) and cw.khat.shape == (2,)


def test_other_entry_points() -> None:
    cw = _params(cm.causal_weights)
    assert list(cw)[:3] == ["graph", "X", "y"]
    assert cw["density"].default == "auto"
    assert {"mechanism", "covariates", "do"} <= set(cw)
    cb = _params(cm.CausalBootstrap.__init__)
    assert cb["graph"].default == "front_door" and cb["random_state"].default is None
    assert {"mechanism", "covariates", "do", "n_samples"} <= set(
        _params(cm.CausalBootstrap.fit_resample)
    )
    ml = _params(cm.MechanismLearner.__init__)
    assert (
        ml["resampler"].kind is inspect.Parameter.KEYWORD_ONLY and ml["resampler"].default is None
    )
    for method in ("fit", "predict", "predict_proba", "score"):
        assert hasattr(cm.MechanismLearner, method)
    assert "front_door" in cm.list_graphs()
    g = cm.load_graph("front_door")
    assert cm.CausalGraph.from_string(g.to_string()) == g
    assert (
        cm.CausalGraph.from_edges(
            directed=[("Y", "Z"), ("Z", "X")],
            bidirected=[("Y", "X")],
            roles={"Y": "cause", "Z": "mechanism", "X": "effect"},
        )
        == g
    )
    bunch = cm.datasets.make_classification_2d(200, random_state=0)
    for key in ("X", "y", "mechanism", "X_test", "y_test"):
        assert isinstance(bunch[key], np.ndarray), key
