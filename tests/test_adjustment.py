"""Covariate-adjusted weights (back door, front door with covariates).

The weight formula of every estimand is pinned against exact enumeration of small discrete
structural causal models: the true ``p(x | do(y))`` comes from the do-operator applied to the
full joint (latent confounder included), and the weights are computed by the package on a
*population* dataset in which every observed cell appears exactly ``p_obs(cell) · 5^k``
times (every conditional probability is a multiple of 1/5, so these counts are integers and
empirical frequencies equal the population conditionals).
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import causal_mixtures as cm
from causal_mixtures.exceptions import PositivityError
from causal_mixtures.simulate.scm import StructuralCausalModel
from causal_mixtures.weights.adjustment import (
    ConditioningSet,
    KernelRatioDensity,
    LinearGaussianDensity,
    adjusted_log_weights,
    kernel_bandwidth,
)
from causal_mixtures.weights.density import DiscreteDensity, GaussianDensity

# --------------------------------------------------------------------------------------
# Exact enumeration of discrete SCMs
# --------------------------------------------------------------------------------------

GRID = 5  # every conditional probability is a multiple of 1 / GRID


@dataclass
class DiscreteSCM:
    """Nodes in topological order; ``cpt[node]`` has shape (*parent cards, card)."""

    cards: dict[str, int]
    parents: dict[str, tuple[str, ...]]
    cpt: dict[str, np.ndarray]
    latent: tuple[str, ...]

    @property
    def nodes(self) -> list[str]:
        return list(self.cards)

    def joint(self, do: dict[str, int] | None = None) -> np.ndarray:
        """The joint over all nodes (latent included), one axis per node."""
        do = do or {}
        out = np.ones([self.cards[v] for v in self.nodes])
        for index in itertools.product(*(range(self.cards[v]) for v in self.nodes)):
            value = dict(zip(self.nodes, index, strict=True))
            p = 1.0
            for v in self.nodes:
                if v in do:
                    p *= float(value[v] == do[v])
                else:
                    p *= self.cpt[v][tuple(value[q] for q in self.parents[v]) + (value[v],)]
            out[index] = p
        return out

    def marginal(self, joint: np.ndarray, keep: list[str]) -> np.ndarray:
        drop = tuple(i for i, v in enumerate(self.nodes) if v not in keep)
        m = joint.sum(axis=drop)
        order = [v for v in self.nodes if v in keep]
        return np.moveaxis(m, [order.index(v) for v in keep], list(range(len(keep))))

    def p_do(self, effect: str, cause: str, value: int) -> float:
        """``p(effect = 1 | do(cause = value))`` by enumeration."""
        return float(self.marginal(self.joint({cause: value}), [effect])[1])

    def population(self) -> dict[str, np.ndarray]:
        """One row per unit of probability mass 1 / GRID^k over the observed cells."""
        observed = [v for v in self.nodes if v not in self.latent]
        p_obs = self.marginal(self.joint(), observed)
        counts = p_obs * GRID ** len(self.nodes)
        rounded = np.rint(counts)
        assert np.allclose(counts, rounded, atol=1e-9), "CPTs must be multiples of 1/GRID"
        cells = np.array(list(itertools.product(*(range(self.cards[v]) for v in observed))))
        reps = rounded.reshape(-1).astype(int)
        rows = np.repeat(cells, reps, axis=0)
        return {v: rows[:, i] for i, v in enumerate(observed)}


def _random_cpt(rng: np.random.Generator, parent_cards: tuple[int, ...], card: int) -> np.ndarray:
    """A CPT whose entries are positive multiples of 1 / GRID."""
    compositions = [c for c in itertools.product(range(1, GRID), repeat=card) if sum(c) == GRID]
    out = np.empty((*parent_cards, card))
    for index in itertools.product(*(range(k) for k in parent_cards)):
        out[index] = np.array(compositions[rng.integers(len(compositions))]) / GRID
    return out


def _scm(
    rng: np.random.Generator,
    edges: dict[str, tuple[str, ...]],
    cards: dict[str, int] | None = None,
    latent: tuple[str, ...] = ("U",),
) -> DiscreteSCM:
    cards = {v: (cards or {}).get(v, 2) for v in edges}
    cpt = {v: _random_cpt(rng, tuple(cards[p] for p in ps), cards[v]) for v, ps in edges.items()}
    return DiscreteSCM(cards, edges, cpt, latent)


# name: (graph spec, SCM edges in topological order, cards, role columns)
EXACT_CASES: dict[str, tuple[str, dict[str, tuple[str, ...]], dict[str, int], dict[str, list]]] = {
    "front_door": (
        "front_door",
        {"U": (), "Y": ("U",), "Z": ("Y",), "X": ("Z", "U")},
        {},
        {"mechanism": ["Z"]},
    ),
    "front_door_multi": (
        "front_door_multi",
        {"U": (), "Y": ("U",), "Z1": ("Y",), "Z2": ("Y",), "X": ("Z1", "Z2", "U")},
        {},
        {"mechanism": ["Z1", "Z2"]},
    ),
    "back_door": (
        "back_door",
        {"W": (), "Y": ("W",), "X": ("W", "Y")},
        {"W": 3, "Y": 3},
        {"covariates": ["W"]},
    ),
    "back_door_two_covariates": (
        "W1 [covariate]; W2 [covariate]; Y [cause]; X [effect]; "
        "W1 -> Y; W2 -> Y; W1 -> X; W2 -> X; W1 -> W2; Y -> X",
        {"W1": (), "W2": ("W1",), "Y": ("W1", "W2"), "X": ("W1", "W2", "Y")},
        {},
        {"covariates": ["W1", "W2"]},
    ),
    "unconfounded": ("unconfounded", {"Y": (), "X": ("Y",)}, {"Y": 3}, {}),
    # W also drives Z: the conditional front door holds, the plain front door does not.
    "front_door_covariates": (
        "W [covariate]; Y [cause]; Z [mechanism]; X [effect]; "
        "W -> Y; W -> Z; W -> X; Y -> Z -> X; Y <-> X",
        {"U": (), "W": (), "Y": ("U", "W"), "Z": ("Y", "W"), "X": ("Z", "W", "U")},
        {"W": 3},
        {"mechanism": ["Z"], "covariates": ["W"]},
    ),
}


def _confounding(scm: DiscreteSCM, data: dict[str, np.ndarray]) -> float:
    """Largest gap between the observational p(x = 1 | y) and p(x = 1 | do(y))."""
    return max(
        abs(np.mean(data["X"][data["Y"] == v] == 1) - scm.p_do("X", "Y", v))
        for v in range(scm.cards["Y"])
    )


def _exact_case(name: str, seed: int = 0):
    """The case's SCM with CPTs drawn from ``seed`` (the first seed from there on whose
    CPTs give visible confounding, when the graph is confounded)."""
    spec, edges, cards, roles = EXACT_CASES[name]
    latent = tuple(v for v in edges if v == "U")
    rng = np.random.default_rng(seed)
    while True:
        scm = _scm(rng, edges, cards, latent)
        data = scm.population()
        if name == "unconfounded" or _confounding(scm, data) > 0.02:
            break
    kwargs = {role: np.column_stack([data[v] for v in nodes]) for role, nodes in roles.items()}
    return scm, spec, data, kwargs


def _population_formula(scm: DiscreteSCM, name: str, y_value: int) -> float:
    """``Σ_cells p_obs · w · 1[x = 1] / Σ_cells p_obs · w`` with the estimand's weight written
    out on the population conditionals (independent of the package)."""
    observed = [v for v in scm.nodes if v not in scm.latent]
    p = scm.marginal(scm.joint(), observed)
    ax = {v: i for i, v in enumerate(observed)}

    def cond(target: list[str], given: list[str]) -> np.ndarray:
        """p(target | given) broadcast to the full observed grid."""
        keep = target + given
        num = p.sum(axis=tuple(ax[v] for v in observed if v not in keep), keepdims=True)
        den = p.sum(axis=tuple(ax[v] for v in observed if v not in given), keepdims=True)
        return num / den

    def at_y(arr: np.ndarray) -> np.ndarray:
        return np.take(arr, [y_value], axis=ax["Y"])

    zs = [v for v in observed if v.startswith("Z")]
    ws = [v for v in observed if v.startswith("W")]
    if zs and ws:  # front door with covariates
        w = at_y(cond(zs, ["Y", *ws])) / cond(zs, ["Y", *ws])
    elif zs:  # front door
        w = at_y(cond(zs, ["Y"])) / cond(zs, ["Y"])
    else:  # back door: 1[y_n = y] / p(y_n | w_n)
        indicator = (np.arange(scm.cards["Y"]) == y_value).astype(float)
        shape = [1] * p.ndim
        shape[ax["Y"]] = -1
        w = indicator.reshape(shape) / cond(["Y"], ws)
    w = np.broadcast_to(w, p.shape)
    x1 = np.take(p * w, [1], axis=ax["X"]).sum()
    return float(x1 / (p * w).sum())


@pytest.mark.parametrize("name", sorted(EXACT_CASES))
def test_weight_formula_matches_exact_enumeration(name: str) -> None:
    scm, spec, data, kwargs = _exact_case(name)
    do = np.arange(scm.cards["Y"])
    truth = np.array([scm.p_do("X", "Y", int(v)) for v in do])
    # The formula itself, on the population conditionals.
    formula = np.array([_population_formula(scm, name, int(v)) for v in do])
    np.testing.assert_allclose(formula, truth, rtol=0, atol=1e-12)  # float rounding only
    # The package on the population dataset, with unsmoothed counts (exact conditionals).
    cw = cm.causal_weights(
        spec, data["X"][:, None], data["Y"], density=DiscreteDensity(alpha=0.0), **kwargs
    )
    np.testing.assert_array_equal(cw.do_values, do)
    np.testing.assert_allclose(cw.values.T @ (data["X"] == 1), truth, rtol=0, atol=1e-10)
    # The observational p(x | y) differs (the case exercises confounding), except without it.
    assert (_confounding(scm, data) > 0.02) == (name != "unconfounded")


@pytest.mark.parametrize("name", ["back_door", "back_door_two_covariates", "unconfounded"])
def test_back_door_discrete_default_is_the_stratified_estimate(name: str) -> None:
    """density='auto' on discrete covariates uses raw frequencies: exact on the population."""
    scm, spec, data, kwargs = _exact_case(name, seed=1)
    truth = [scm.p_do("X", "Y", int(v)) for v in range(scm.cards["Y"])]
    cw = cm.causal_weights(spec, data["X"][:, None], data["Y"], **kwargs)
    np.testing.assert_allclose(cw.values.T @ (data["X"] == 1), truth, rtol=0, atol=1e-10)


def test_wrong_graph_is_wrong_on_the_population() -> None:
    """With W -> Z, dropping W (plain front door) is biased even with infinite data."""
    scm, _, data, kwargs = _exact_case("front_door_covariates", seed=2)
    truth = np.array([scm.p_do("X", "Y", v) for v in (0, 1)])
    cw = cm.causal_weights(
        "front_door",
        data["X"][:, None],
        data["Y"],
        mechanism=kwargs["mechanism"],
        density=DiscreteDensity(alpha=0.0),
    )
    assert np.max(np.abs(cw.values.T @ (data["X"] == 1) - truth)) > 1e-3


def test_front_door_covariates_weights_row_by_row() -> None:
    """Each weight is p(z_n | w_n, y) / p(z_n | w_n, y_n), up to the column normalisation."""
    rng = np.random.default_rng(3)
    n = 600
    w = rng.integers(0, 3, n)
    y = (rng.uniform(size=n) < 0.3 + 0.2 * w).astype(int)
    z = (rng.uniform(size=n) < 0.2 + 0.3 * y + 0.1 * w).astype(int)
    X = rng.normal(size=(n, 1))
    cw = cm.causal_weights(
        "front_door_covariates",
        X,
        y,
        mechanism=z,
        covariates=w,
        density=DiscreteDensity(alpha=0.5),
    )

    def p(zz: int, ww: int, yy: int) -> float:
        cell = (w == ww) & (y == yy)
        return (np.sum(cell & (z == zz)) + 0.5) / (cell.sum() + 2 * 0.5)

    for j, yv in enumerate(cw.do_values.tolist()):
        raw = np.array([p(a, b, yv) / p(a, b, c) for a, b, c in zip(z, w, y, strict=True)])
        np.testing.assert_allclose(cw.values[:, j], raw / raw.sum(), rtol=1e-12)


# --------------------------------------------------------------------------------------
# Continuous data: recovery of E[x | do(y)] from weighted means
# --------------------------------------------------------------------------------------


def _continuous_back_door(n: int, seed: int):
    scm = StructuralCausalModel(
        "W [covariate]; Y [cause]; X [effect]; W -> Y; W -> X; Y -> X",
        # W -> Y at 0.6 with unit noise: 1 / p(y | w) has finite variance (0.6² < 1).
        mechanisms={"W": {}, "Y": {"W": 0.6}, "X": {"W": 2.0, "Y": 1.0}},
    )
    return scm, scm.sample(n, random_state=seed)


def test_kernel_back_door_recovers_linear_gaussian_truth() -> None:
    scm, d = _continuous_back_door(4000, seed=1)
    do = np.array([-1.0, 0.0, 1.0])
    cw = cm.causal_weights("back_door", d["X"][:, None], d["Y"], covariates=d["W"], do=do)
    assert isinstance(cw.density, LinearGaussianDensity)
    assert cw.density.kernel_bandwidth_ == pytest.approx(kernel_bandwidth(d["Y"]))
    for j, v in enumerate(do):
        mean, var = scm.interventional_moments_exact("X", do={"Y": v})
        # 4 Monte-Carlo standard errors at the Kish ESS; E[x | y, w] is linear in y, so the
        # kernel adds no smoothing bias.
        assert abs(cw.values[:, j] @ d["X"] - mean) < 4 * np.sqrt(var / cw.ess[j])
    # Unadjusted, the confounder shifts the slope (2 · 0.6 / (1 + 0.36) extra per unit y).
    naive = cm.causal_weights("unconfounded", d["X"][:, None], d["Y"], do=do)
    assert naive.values[:, 2] @ d["X"] - naive.values[:, 0] @ d["X"] > 3.0


def test_logistic_back_door_with_continuous_covariate() -> None:
    """Binary cause, continuous covariate: p(y | w) from logistic regression."""
    scm = StructuralCausalModel(
        "W [covariate]; Y [cause]; X [effect]; W -> Y; W -> X; Y -> X",
        mechanisms={"W": {}, "Y": {"W": 1.0}, "X": {"W": 2.0, "Y": 1.0}},
        discrete=["Y"],
    )
    d = scm.sample(4000, random_state=0)
    cw = cm.causal_weights("back_door", d["X"][:, None], d["Y"], covariates=d["W"])
    assert type(cw.density).__name__ == "MultinomialLogitDensity"
    for j, v in enumerate(cw.do_values.tolist()):
        mean, var = scm.interventional_moments_exact("X", do={"Y": v})
        # 4 Monte-Carlo standard errors at the Kish ESS.
        assert abs(cw.values[:, j] @ d["X"] - mean) < 4 * np.sqrt(var / cw.ess[j])


@pytest.mark.parametrize(
    "density", [LinearGaussianDensity(), KernelRatioDensity()], ids=["gaussian", "kde"]
)
def test_conditional_densities_integrate_to_one(density) -> None:
    rng = np.random.default_rng(0)
    n = 400
    w = rng.normal(size=n)
    y = rng.integers(0, 2, n)
    v = (0.5 * w + y + rng.normal(size=n)).reshape(-1, 1)
    given = ConditioningSet((y, w), (True, False), ("Y", "W"))
    fitted = copy.deepcopy(density).fit(v, given)
    grid = np.linspace(-12, 12, 4001)
    for yv, wv in ((0, -1.0), (1, 0.3)):
        at = ConditioningSet(
            (np.full(len(grid), yv), np.full(len(grid), wv)), (True, False), ("Y", "W")
        )
        dens = np.exp(fitted.log_prob(grid[:, None], at))
        # trapezoid rule on a fine grid: error far below 1e-6
        assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-6)


def test_front_door_covariates_continuous_kde_runs() -> None:
    rng = np.random.default_rng(0)
    n = 500
    w = rng.normal(size=n)
    y = w + rng.normal(size=n)
    z = 0.5 * y + rng.normal(size=n)
    cw = cm.causal_weights(
        "front_door_covariates",
        None,
        y,
        mechanism=z,
        covariates=w,
        do=[0.0, 1.0],
        density="kde",
    )
    assert isinstance(cw.density, KernelRatioDensity)
    assert np.all(np.isfinite(cw.values)) and np.all(cw.ess > 50)


def test_front_door_covariates_logistic_for_discrete_mechanism() -> None:
    rng = np.random.default_rng(1)
    n = 800
    w = rng.normal(size=n)
    y = rng.integers(0, 2, n)
    z = (rng.uniform(size=n) < 1 / (1 + np.exp(-(y - 0.5 + w)))).astype(int)
    log_num, log_den, dens = adjusted_log_weights(
        cm.identify(cm.load_graph("front_door_covariates")),
        y,
        np.array([0, 1]),
        mechanism=z,
        covariates=w,
        density="auto",
        discrete_cause=True,
    )
    assert type(dens).__name__ == "MultinomialLogitDensity"
    # the numerator at the observed cause is the denominator
    np.testing.assert_allclose(log_num[np.arange(n), y], log_den, rtol=1e-12)
    # the probabilities of the two mechanism levels sum to one
    given = ConditioningSet((y, w), (True, False), ("Y", "W"))
    other = dens.log_prob((1 - z).reshape(-1, 1), given)
    np.testing.assert_allclose(np.exp(log_den) + np.exp(other), 1.0, rtol=1e-12)


# --------------------------------------------------------------------------------------
# Categorical data and inputs
# --------------------------------------------------------------------------------------


def test_string_labels_and_dataframe_covariates() -> None:
    scm, spec, data, kwargs = _exact_case("back_door_two_covariates", seed=4)
    codes = cm.causal_weights(spec, data["X"][:, None], data["Y"], **kwargs)
    labels = np.array(["no", "yes"])[data["Y"]]
    frame = pd.DataFrame({"W1": np.array(["a", "b"])[data["W1"]], "W2": data["W2"].astype(float)})
    named = cm.causal_weights(spec, data["X"][:, None], labels, covariates=frame)
    np.testing.assert_array_equal(named.do_values, ["no", "yes"])
    np.testing.assert_allclose(named.values, codes.values, rtol=1e-12)


def test_user_density_is_not_modified() -> None:
    scm, spec, data, kwargs = _exact_case("back_door", seed=5)
    dens = DiscreteDensity(alpha=0.0)
    cw = cm.causal_weights(spec, None, data["Y"], density=dens, **kwargs)
    assert not hasattr(dens, "levels_") and cw.density.base is dens


def _fdc(**overrides):
    rng = np.random.default_rng(0)
    n = 200
    w = rng.integers(0, 2, n)
    y = rng.integers(0, 2, n)
    z = rng.integers(0, 2, n)
    kwargs = {"mechanism": z, "covariates": w}
    kwargs.update(overrides)
    return lambda: cm.causal_weights("front_door_covariates", None, y, **kwargs)


def _bd(graph: str = "back_door", y=None, **overrides):
    rng = np.random.default_rng(0)
    n = 200
    kwargs = {"covariates": rng.integers(0, 2, n)}
    kwargs.update(overrides)
    y = rng.integers(0, 2, n) if y is None else y
    return lambda: cm.causal_weights(graph, None, y, **kwargs)


BAD_INPUTS: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    (
        "no mechanism",
        _fdc(mechanism=None),
        ValueError,
        "mechanism is required for the front-door-covariates graph: it needs the mechanism role (Z)",
    ),
    ("no covariates", _fdc(covariates=None), ValueError, "covariates is required"),
    (
        "NaN covariate",
        _fdc(covariates=np.r_[np.nan, np.zeros(199)]),
        ValueError,
        "covariates must contain only finite values; found 1 NaN",
    ),
    (
        "NaN mechanism",
        _fdc(mechanism=np.r_[np.zeros(199), np.inf]),
        ValueError,
        "mechanism must contain only finite values",
    ),
    (
        "missing object covariate",
        _fdc(covariates=np.array(["a", None] * 100, dtype=object)),
        ValueError,
        "covariates must not contain missing values; found 100 (first at row 1",
    ),
    (
        "wrong rows",
        _fdc(covariates=np.zeros(10)),
        ValueError,
        "covariates must have one row per sample: expected 200 rows (as y), got 10",
    ),
    (
        "3-D",
        _fdc(mechanism=np.zeros((200, 1, 1))),
        ValueError,
        "mechanism must have shape (n_samples,) or (n_samples, n_columns)",
    ),
    (
        "too few columns",
        _bd(
            "W1 [covariate]; W2 [covariate]; Y [cause]; X [effect]; W1 -> Y; W2 -> Y; "
            "W1 -> X; W2 -> X; Y -> X"
        ),
        ValueError,
        "covariates has 1 column(s) but the graph declares 2 covariate node(s) (W1, W2)",
    ),
    (
        "gaussian for a discrete cause",
        _bd(density="gaussian"),
        ValueError,
        "density='gaussian' models a continuous cause, but y is discrete",
    ),
    (
        "discrete with a continuous covariate",
        _bd(covariates=np.linspace(0, 1, 200), density="discrete"),
        ValueError,
        "density='discrete' fits one model per cell of discrete conditioning variables, but W is "
        "continuous. Use density='logistic'.",
    ),
    (
        "instance with a continuous covariate",
        _bd(covariates=np.linspace(0, 1, 200), density=GaussianDensity()),
        ValueError,
        "a GaussianDensity instance is fitted once per cell of discrete conditioning variables, "
        "but W is continuous",
    ),
    (
        "discrete for a continuous cause",
        _bd(y=np.linspace(0, 1, 200), density="discrete", do=[0.5]),
        ValueError,
        "density='discrete' models a discrete cause, but it is continuous",
    ),
    (
        "unknown name",
        _bd(density="parzen"),
        ValueError,
        "density must be one of ['auto', 'discrete', 'logistic', 'gaussian', 'kde', 'histogram', "
        "'gmm'] or a ConditionalDensity instance for the back-door graph; got 'parzen'",
    ),
    (
        "stratum without a treated row",
        _bd(
            y=np.r_[np.zeros(100, int), np.ones(100, int)],
            covariates=np.r_[np.zeros(150), 2 * np.ones(50)],
        ),
        PositivityError,
        "no training row has Y = 0 in 1 stratum/strata of the covariates (W = 2.0)",
    ),
    (
        "front door cell never observed",
        lambda: cm.causal_weights(
            "front_door_covariates",
            None,
            np.r_[np.zeros(150, int), np.ones(50, int)],
            mechanism=np.arange(200) % 2,
            covariates=np.r_[np.zeros(100), np.ones(100)],
        ),
        PositivityError,
        "no training row has Y = 1, W = 0.0, so the conditional density",
    ),
]


@pytest.mark.parametrize(
    "call, error, message", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_inputs_raise_with_a_message(call, error, message) -> None:
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_estimator_instances_of_this_module_are_accepted() -> None:
    _, d = _continuous_back_door(500, seed=2)
    kw = {"covariates": d["W"], "do": [0.0, 1.0]}
    by_name = cm.causal_weights("back_door", None, d["Y"], density="gaussian", **kw)
    template = LinearGaussianDensity()
    by_instance = cm.causal_weights("back_door", None, d["Y"], density=template, **kw)
    np.testing.assert_array_equal(by_name.values, by_instance.values)
    assert not hasattr(template, "coef_")  # copied, not fitted in place


def test_unused_roles_are_ignored() -> None:
    scm, spec, data, kwargs = _exact_case("back_door", seed=6)
    a = cm.causal_weights(spec, None, data["Y"], **kwargs)
    b = cm.causal_weights(spec, None, data["Y"], mechanism=np.zeros(len(data["Y"])), **kwargs)
    np.testing.assert_array_equal(a.values, b.values)


def test_front_door_kind_is_not_handled_here() -> None:
    est = cm.identify(cm.load_graph("front_door"))
    with pytest.raises(ValueError, match="front-door weights are computed by causal_weights"):
        adjusted_log_weights(est, np.zeros(3), np.zeros(1), discrete_cause=True)
