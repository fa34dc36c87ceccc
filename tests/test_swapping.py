"""Swapping the assumed graph: every registered spec end to end with the CW-GMM.

Data come from :class:`~causal_mixtures.scm.StructuralCausalModel` compiled from each spec
(linear-Gaussian, so :meth:`interventional_moments_exact` gives the truth). A K = 1 CW-GMM
fitted with the spec's graph must recover ``E[x | do(y)]``; the same data analysed under a
wrong graph must not.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.base import clone

import causal_mixtures as cm
from causal_mixtures.exceptions import NotIdentifiableError
from causal_mixtures.graph.specs import load_spec
from causal_mixtures.simulate.scm import StructuralCausalModel

U = "U_X_Y"  # the latent of Y <-> X (CausalGraph.latent_name("Y", "X"))
DO = np.array([-1.0, 0.0, 1.0])  # inside the data: sd(Y) is about 1.2-1.4 in every case

# Coefficients chosen for adequate weights at n = 3000 (over seeds 0-39: median Kish ESS
# 450-1800 per do value, k-hat <= 0.85) with a clear confounding bias.
CASES: dict[str, tuple[str, dict, list[str] | None]] = {
    "front_door": (
        "front_door",
        {"Y": {U: 1.0}, "Z": {"Y": 0.4}, "X": {U: 2.0, "Z": 2.0}},
        None,
    ),
    "front_door_multi": (
        "front_door_multi",
        {"Y": {U: 1.0}, "Z1": {"Y": 0.4}, "Z2": {"Y": -0.3}, "X": {U: 2.0, "Z1": 1.5, "Z2": 1.0}},
        None,
    ),
    "front_door_covariates": (
        "front_door_covariates",
        {"W": {}, "Y": {"W": 0.6, U: 0.8}, "Z": {"Y": 0.4}, "X": {"W": 1.0, U: 1.5, "Z": 2.0}},
        None,
    ),
    # Continuous cause: kernel weights K_h(y_n - y) / p(y_n | w_n). E[x | y, w] is linear in
    # y here, so the kernel adds no smoothing bias. W -> Y at 0.5 (< the noise scale 1)
    # keeps 1 / p(y | w) of finite variance.
    "back_door": (
        "back_door",
        {"W": {}, "Y": {"W": 0.5}, "X": {"W": 2.0, "Y": 1.0}},
        None,
    ),
    # Binary cause (Bernoulli-logistic in W): indicator weights 1[y_n = y] / p(y | w_n)
    # with a logistic p(y | w), no kernel at all.
    "back_door_binary_cause": (
        "back_door",
        {"W": {}, "Y": {"W": 1.0}, "X": {"W": 2.0, "Y": 1.0}},
        ["Y"],
    ),
    "unconfounded": ("unconfounded", {"Y": {}, "X": {"Y": 1.0}}, None),
    # Front-door reducible graphs declared with only a cause and an effect: identify() finds
    # the mechanism super-node (and, for a cause super-node {Y, R}, the covariate R).
    "reducible_confounded_chain": (
        "reducible_confounded_chain",
        {
            "Y": {U: 1.0},
            "M1": {"Y": 0.4, "U_M1_M2": 0.8},
            "M2": {"M1": 1.0, "U_M1_M2": 0.8},
            "S": {"M1": 0.7},
            "X": {U: 2.0, "M2": 1.0, "S": 1.0},
        },
        None,
    ),
    "reducible_parallel_confounded": (
        "reducible_parallel_confounded",
        {
            "Y": {U: 1.0},
            "M1": {"Y": 0.4, "U_M1_M2": 0.8},
            "M2": {"Y": -0.3, "U_M1_M2": 0.8},
            "X": {U: 2.0, "M1": 1.5, "M2": 1.0},
        },
        None,
    ),
    "reducible_cause_parent": (
        "reducible_cause_parent",
        {"R": {}, "Y": {"R": 0.6, U: 0.8}, "M": {"Y": 0.4, "R": 1.0}, "X": {U: 1.5, "M": 2.0}},
        None,
    ),
    "reducible_cause_parent_confounded": (
        "reducible_cause_parent_confounded",
        {
            "R": {"U_R_Y": 0.8},
            "Y": {"R": 0.6, "U_R_Y": 0.6, U: 0.8},
            "M": {"Y": 0.4, "R": 1.0},
            "X": {U: 1.5, "M": 2.0},
        },
        None,
    ),
    "reducible_mechanism_confounder": (
        "reducible_mechanism_confounder",
        {"C": {}, "Y": {U: 1.0}, "M": {"Y": 0.4, "C": 1.0}, "X": {U: 2.0, "M": 2.0, "C": 1.0}},
        None,
    ),
    "reducible_chain_side_path": (
        "reducible_chain_side_path",
        {
            "Y": {"U_M2_Y": 0.7, U: 1.0},
            "M1": {"Y": 0.4},
            "S": {"Y": 0.3},
            "M2": {"M1": 1.0, "S": 1.0, "U_M2_Y": 1.0},
            "T": {"M2": 0.8},
            "X": {U: 2.0, "M2": 1.0, "T": 1.0},
        },
        None,
    ),
}


def _role_data(estimand, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    if estimand.mechanisms:
        out["mechanism"] = np.column_stack([data[v] for v in estimand.mechanisms])
    if estimand.covariates:
        out["covariates"] = np.column_stack([data[v] for v in estimand.covariates])
    return out


def test_every_identifiable_spec_has_a_case() -> None:
    identifiable = {name for name in cm.list_graphs() if load_spec(name).identifiable}
    assert identifiable == {spec for spec, _, _ in CASES.values()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cwgmm_recovers_the_interventional_mean(case: str) -> None:
    spec, mechanisms, discrete = CASES[case]
    graph = cm.load_graph(spec)
    scm = StructuralCausalModel(graph, mechanisms=mechanisms, discrete=discrete)
    data = scm.sample(3000, random_state=0)
    estimand = cm.identify(graph)
    model = cm.CausalGaussianMixture(
        spec, n_components=1, density="auto" if discrete else "gaussian", random_state=0
    )
    model.fit(
        data["X"][:, None], data["Y"], do=None if discrete else DO, **_role_data(estimand, data)
    )
    assert model.causal_weights_.estimand == estimand
    for j, value in enumerate(model.do_values_.tolist()):
        mean, var = scm.interventional_moments_exact("X", do={"Y": value})
        se = np.sqrt(var / model.causal_weights_.ess[j])
        # 4 Monte-Carlo standard errors at the weights' Kish ESS (the K = 1 mean is the
        # weighted mean of x).
        assert abs(model.means_[j, 0, 0] - mean) < 4 * se, (value, model.means_[j, 0, 0], mean)


UNIDENTIFIABLE = [name for name in cm.list_graphs() if not load_spec(name).identifiable]


@pytest.mark.parametrize("name", UNIDENTIFIABLE)
def test_unidentifiable_specs_raise_with_their_reason(name: str) -> None:
    rng = np.random.default_rng(0)
    n = 100
    model = cm.CausalGaussianMixture(name, random_state=0)
    with pytest.raises(NotIdentifiableError, match=re.escape(load_spec(name).reason)):
        model.fit(
            rng.normal(size=(n, 1)),
            rng.integers(0, 2, n),
            mechanism=rng.normal(size=n),
            covariates=rng.normal(size=n),
        )


# --------------------------------------------------------------------------------------
# One data set, several assumed graphs
# --------------------------------------------------------------------------------------

# W confounds Y and X *and* drives the mechanism Z: the front door holds only given W.
TRUE_GRAPH = (
    "W [covariate]; Y [cause]; Z [mechanism]; X [effect]; "
    "W -> Y; W -> Z; W -> X; Y -> Z -> X; Y <-> X"
)
TRUE_COEFS = {
    "W": {},
    "Y": {"W": 0.6, U: 0.8},
    "Z": {"Y": 0.4, "W": 1.5},
    "X": {"W": 1.0, U: 1.5, "Z": 2.0},
}


@pytest.fixture(scope="module")
def confounded_mechanism() -> tuple[StructuralCausalModel, dict[str, np.ndarray]]:
    scm = StructuralCausalModel(TRUE_GRAPH, mechanisms=TRUE_COEFS)
    return scm, scm.sample(5000, random_state=0)


def test_swap_the_graph_with_clone_and_set_params(confounded_mechanism) -> None:
    _, d = confounded_mechanism
    X, y, Z, W = d["X"][:, None], d["Y"], d["Z"], d["W"]
    m = cm.CausalGaussianMixture("front_door_covariates", density="gaussian", random_state=0)
    back = clone(m).set_params(graph="back_door").fit(X, y, covariates=W, do=DO)
    assert back.causal_weights_.estimand.kind == "back_door"
    assert not hasattr(m, "means_")  # the template is untouched
    fitted = {
        graph: clone(m).set_params(graph=graph).fit(X, y, mechanism=Z, covariates=W, do=DO)
        for graph in ("front_door_covariates", "front_door", "back_door", "unconfounded")
    }
    kinds = {g: f.causal_weights_.estimand.kind for g, f in fitted.items()}
    assert kinds == {
        "front_door_covariates": "front_door_covariates",
        "front_door": "front_door",
        "back_door": "back_door",
        "unconfounded": "back_door",
    }
    # roles a graph does not use are ignored: same fit as without them
    np.testing.assert_array_equal(fitted["back_door"].means_, back.means_)


@pytest.mark.parametrize(
    "graph, drop, message",
    [
        ("front_door", "mechanism", "mechanism is required for the front-door graph"),
        ("front_door_multi", "mechanism", "mechanism is required"),
        (
            "front_door_covariates",
            "mechanism",
            "mechanism is required for the front-door-covariates graph: it needs the mechanism "
            "role (Z)",
        ),
        (
            "front_door_covariates",
            "covariates",
            "covariates is required for the front-door-covariates graph: it adjusts for the "
            "covariate role (W)",
        ),
        (
            "back_door",
            "covariates",
            "covariates is required for the back-door graph: it adjusts for the covariate role (W)",
        ),
    ],
)
def test_missing_role_data_are_named(graph: str, drop: str, message: str) -> None:
    rng = np.random.default_rng(0)
    n = 50
    roles = {"mechanism": rng.normal(size=(n, 2)), "covariates": rng.normal(size=n)}
    del roles[drop]
    model = cm.CausalGaussianMixture(graph)
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(rng.normal(size=(n, 1)), rng.normal(size=n), do=[0.0], **roles)


def test_wrong_graph_is_biased_and_right_graph_is_not(confounded_mechanism) -> None:
    scm, d = confounded_mechanism
    X, y = d["X"][:, None], d["Y"]
    truth = np.array([scm.interventional_moments_exact("X", do={"Y": v}) for v in DO])
    m = cm.CausalGaussianMixture(density="gaussian", random_state=0)

    def z_scores(graph: str) -> np.ndarray:
        fit = clone(m).set_params(graph=graph).fit(X, y, mechanism=d["Z"], covariates=d["W"], do=DO)
        se = np.sqrt(truth[:, 1] / fit.causal_weights_.ess)
        return (fit.means_[:, 0, 0] - truth[:, 0]) / se

    # Over seeds 0-19 at n = 5000 the plain front door is off by 8-13 SE at do = ±1 (the
    # open path Y <- W -> Z), the conditional front door within 2.7 SE.
    right = z_scores("front_door_covariates")
    assert np.all(np.abs(right) < 4)
    for wrong in ("front_door", "unconfounded"):
        z = z_scores(wrong)
        assert abs(z[0]) > 6 and abs(z[2]) > 6, (wrong, z)


def test_covariate_of_cause_and_effect_only_needs_no_adjustment_at_the_front_door() -> None:
    """In the registered front_door_covariates graph W does not touch Z: W is then one more
    confounder of Y and X, which the plain front door removes with the latent one."""
    spec, mechanisms, _ = CASES["front_door_covariates"]
    scm = StructuralCausalModel(cm.load_graph(spec), mechanisms=mechanisms)
    d = scm.sample(3000, random_state=1)
    fit = cm.CausalGaussianMixture("front_door", density="gaussian").fit(
        d["X"][:, None], d["Y"], mechanism=d["Z"], do=DO
    )
    for j, value in enumerate(DO):
        mean, var = scm.interventional_moments_exact("X", do={"Y": value})
        # 4 Monte-Carlo standard errors at the Kish ESS
        assert abs(fit.means_[j, 0, 0] - mean) < 4 * np.sqrt(var / fit.causal_weights_.ess[j])
