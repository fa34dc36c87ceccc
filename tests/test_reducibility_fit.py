"""The estimators on front-door reducible graphs: weighting, plug-in and bootstrap recover
``E[x | do(y)]`` on two reducible specs with continuous, linear-Gaussian data (truth from
:meth:`StructuralCausalModel.interventional_moments_exact`), and an estimand they cannot fit
is refused with the reason."""

from __future__ import annotations

import numpy as np
import pytest

import causal_mixtures as cm
from causal_mixtures.exceptions import NotIdentifiableError
from causal_mixtures.simulate.scm import StructuralCausalModel

U = "U_X_Y"
DO = np.array([-1.0, 0.0, 1.0])
N = 4000
# A mechanism super-node of two confounded mediators (A = ∅), and a cause super-node {Y, R}
# whose extra node R enters the fit as a covariate.
CASES = {
    "reducible_confounded_chain": {
        "Y": {U: 1.0},
        "M1": {"Y": 0.4, "U_M1_M2": 0.8},
        "M2": {"M1": 1.0, "U_M1_M2": 0.8},
        "S": {"M1": 0.7},
        "X": {U: 2.0, "M2": 1.0, "S": 1.0},
    },
    "reducible_cause_parent": {
        "R": {},
        "Y": {"R": 0.6, U: 0.8},
        "M": {"Y": 0.4, "R": 1.0},
        "X": {U: 1.5, "M": 2.0},
    },
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    name = request.param
    graph = cm.load_graph(name)
    scm = StructuralCausalModel(graph, mechanisms=CASES[name])
    data = scm.sample(N, random_state=1)
    estimand = cm.identify(graph)
    roles = {"mechanism": np.column_stack([data[v] for v in estimand.mechanisms])}
    if estimand.covariates:
        roles["covariates"] = np.column_stack([data[v] for v in estimand.covariates])
    truth = [scm.interventional_moments_exact("X", do={"Y": v}) for v in DO]
    naive = np.polyfit(data["Y"], data["X"], 1)[0]
    return name, data, roles, estimand, truth, naive


def test_reduced_estimand_has_the_super_nodes(case) -> None:
    name, _, roles, estimand, truth, naive = case
    assert estimand.criterion == "front_door_reducible"
    assert estimand.mechanisms == estimand.reduction.mechanism_set
    assert estimand.covariates == estimand.reduction.adjustment
    # Confounded: the observed slope of X on Y is far from the causal one.
    causal = (truth[2][0] - truth[0][0]) / 2
    assert abs(naive - causal) > 0.5, (naive, causal)


def test_weighting_and_plugin_recover_the_interventional_mean(case) -> None:
    name, data, roles, _, truth, _ = case
    for strategy in ("weighting", "plugin"):
        model = cm.CausalGaussianMixture(
            name,
            n_components=1,
            density="gaussian",
            strategy=strategy,
            plugin_components=1,
            plugin_draws=20_000,
            random_state=0,
        ).fit(data["X"][:, None], data["Y"], do=DO, **roles)
        for j, (mean, var) in enumerate(truth):
            # Weighting: the K = 1 mean is the weighted mean (4 MC s.e. at the Kish ESS).
            # Plug-in: the draws' MC error plus the fitted conditionals' error (4 s.e. each).
            ess = model.causal_weights_.ess[j]
            se = np.sqrt(var / ess) if strategy == "weighting" else np.sqrt(var / 20_000 + var / N)
            assert abs(model.means_[j, 0, 0] - mean) < 4 * se, (
                strategy,
                j,
                model.means_[j, 0, 0],
                mean,
            )


def test_bootstrap_recovers_the_interventional_mean(case) -> None:
    name, data, roles, _, truth, _ = case
    boot = cm.CausalBootstrap(name, density="gaussian", random_state=0)
    X_new, y_new = boot.fit_resample(data["X"][:, None], data["Y"], do=DO, n_samples=N, **roles)
    for j, (mean, var) in enumerate(truth):
        drawn = X_new[y_new == DO[j], 0]
        ess = boot.causal_weights_.ess[j]
        # Resampling adds the noise of N draws to the weighted mean's.
        se = np.sqrt(var / ess + var / len(drawn))
        assert abs(drawn.mean() - mean) < 4 * se, (j, drawn.mean(), mean)


def test_missing_super_node_data_is_refused_with_the_nodes(case) -> None:
    name, data, roles, estimand, _, _ = case
    with pytest.raises(
        ValueError, match=r"mechanism is required.*" + ", ".join(estimand.mechanisms)
    ):
        cm.CausalGaussianMixture(name, n_components=1, density="gaussian").fit(
            data["X"][:, None], data["Y"], do=DO
        )


def test_identified_but_not_reducible_is_refused() -> None:
    """The napkin graph: identifiable by ID, but no estimator fits its formula."""
    graph = cm.CausalGraph("Y [cause]; X [effect]; W -> Z -> Y -> X; W <-> Y; W <-> X")
    rng = np.random.default_rng(0)
    with pytest.raises(NotIdentifiableError, match="identified by the ID algorithm.*cannot fit it"):
        cm.CausalGaussianMixture(graph).fit(rng.normal(size=(50, 1)), rng.normal(size=50), do=DO)
