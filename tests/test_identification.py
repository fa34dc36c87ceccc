"""Tests for :mod:`causal_mixtures.identification`, cross-checked against y0's ID algorithm."""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from y0.algorithm.identify import identify_outcomes
from y0.dsl import Variable
from y0.graph import NxMixedGraph

from causal_mixtures.exceptions import NotIdentifiableError
from causal_mixtures.graph.core import CausalGraph
from causal_mixtures.graph.identify import (
    ESTIMAND_KINDS,
    Estimand,
    check_back_door,
    check_front_door,
    identify,
)
from causal_mixtures.graph.specs import load_spec

MODELS = Path(__file__).resolve().parent.parent / "models"
SPEC_FILES = sorted(MODELS.glob("*.toml"))
FRONT_DOOR = "Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X"


def to_y0(graph: CausalGraph) -> NxMixedGraph:
    """The same mixed graph in y0's representation."""
    return NxMixedGraph.from_edges(
        nodes=[Variable(n) for n in graph.nodes],
        directed=[(Variable(a), Variable(b)) for a, b in graph.directed],
        undirected=[(Variable(a), Variable(b)) for a, b in graph.bidirected],
    )


def y0_identifiable(graph: CausalGraph, cause: str, effect: str) -> bool:
    """Whether y0's ID algorithm identifies p(effect | do(cause)) (by any formula)."""
    result = identify_outcomes(to_y0(graph), treatments=Variable(cause), outcomes=Variable(effect))
    return result is not None


# ------------------------------------------------------------------------- the registry


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_agrees_with_y0(path: Path) -> None:
    """Our verdict ("identifiable by this estimator family") matches y0's general verdict.

    For every spec in ``models/`` the two coincide: each unidentifiable spec contains a hedge
    for p(X | do(Y)), so no formula at all identifies it. (A graph identifiable only by
    another formula, e.g. the napkin graph, would make them differ; no spec is like that.)
    """
    spec = load_spec(path)
    graph = spec.graph
    try:
        identify(graph)
    except NotIdentifiableError:
        ours = False
    else:
        ours = True
    assert ours == spec.identifiable
    assert y0_identifiable(graph, graph.cause, graph.effect) == ours


EXPECTED = {
    "front_door": ("front_door", ("Z",), (), "w_n(y) = p(z_n | y) / p(z_n | y_n)"),
    "front_door_multi": ("front_door", ("Z1", "Z2"), (), "w_n(y) = p(z_n | y) / p(z_n | y_n)"),
    "front_door_covariates": (
        "front_door_covariates",
        ("Z",),
        ("W",),
        "w_n(y) = p(z_n | w_n, y) / p(z_n | w_n, y_n)",
    ),
    "back_door": ("back_door", (), ("W",), "w_n(y) = 1[y_n = y] / p(y | w_n)"),
    "unconfounded": ("back_door", (), (), "w_n(y) = 1[y_n = y] / p(y)"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_identifiable_specs(name: str) -> None:
    kind, mechanisms, covariates, weight = EXPECTED[name]
    est = identify(load_spec(name).graph)
    assert isinstance(est, Estimand)
    assert est.kind == kind and kind in ESTIMAND_KINDS
    assert (est.cause, est.effect) == ("Y", "X")
    assert est.mechanisms == mechanisms
    assert est.covariates == covariates
    assert est.weight_formula == weight
    assert est.expression.startswith("p(X | do(Y)) = ")
    roles = {"cause", "effect"} | ({"mechanism"} if mechanisms else set())
    roles |= {"covariate"} if covariates else set()
    assert set(est.required_roles) == roles
    assert est.density_of == ("mechanism" if mechanisms else "cause")
    assert set(est.density_given) == (
        ({"cause"} if mechanisms else set()) | ({"covariate"} if covariates else set())
    )


def test_front_door_estimand() -> None:
    est = identify(CausalGraph(FRONT_DOOR))
    assert est == Estimand(
        kind="front_door",
        cause="Y",
        effect="X",
        mechanisms=("Z",),
        covariates=(),
        expression="p(X | do(Y)) = Σ_Z p(Z | Y) Σ_Y' p(X | Y', Z) p(Y')",
        weight_formula="w_n(y) = p(z_n | y) / p(z_n | y_n)",
        required_roles=("cause", "effect", "mechanism"),
        density_of="mechanism",
        density_given=("cause",),
    )
    text = str(est)
    assert text.splitlines()[0] == "front_door estimand for Y (cause), X (effect), {Z} (mechanism)"
    assert est.expression in text and est.weight_formula in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.kind = "back_door"  # type: ignore[misc]


def test_multi_character_names() -> None:
    g = CausalGraph(
        '"lesion label" [cause]; "lesion mask" [mechanism]; image [effect]; '
        '"lesion label" -> "lesion mask" -> image; "lesion label" <-> image'
    )
    est = identify(g)
    assert est.expression == (
        "p(image | do(lesion label)) = Σ_{lesion mask} p(lesion mask | lesion label) "
        "Σ_{lesion label'} p(image | lesion label', lesion mask) p(lesion label')"
    )


# ------------------------------------------------------------------------------ failures


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (  # condition 3 broken by a latent confounder
            FRONT_DOOR + "; Z <-> X",
            r"Z and X share a latent confounder \(Z <-> X\), so \{Z\} does not satisfy the "
            r"front-door criterion: the back-door path Z <-> X from Z to X is not blocked by Y\.",
        ),
        (  # condition 3 broken by an observed confounder
            FRONT_DOOR + "; W -> Z; W -> X",
            r"the back-door path Z <- W -> X from Z to X is not blocked by Y\.",
        ),
        (  # condition 2 broken by a latent confounder
            FRONT_DOOR + "; Y <-> Z",
            r"Y and Z share a latent confounder \(Y <-> Z\), so \{Z\} does not satisfy the "
            r"front-door criterion: the back-door path Y <-> Z from Y to the mechanism Z is open\.",
        ),
        (  # condition 2 broken by an observed confounder
            FRONT_DOOR + "; W -> Y; W -> Z",
            r"the back-door path Y <- W -> Z from Y to the mechanism Z is open\.",
        ),
        (  # condition 1
            FRONT_DOOR + "; Y -> X",
            r"there is a directed path Y -> X that does not go through the mechanism \{Z\}",
        ),
        (  # condition 1, longer path
            FRONT_DOOR + "; Y -> M -> X",
            r"there is a directed path Y -> M -> X that does not go through the mechanism \{Z\}",
        ),
        (  # one of two mechanisms alone does not intercept everything
            "Y [cause]; Z1 [mechanism]; X [effect]; Y -> Z1 -> X; Y -> Z2 -> X; Y <-> X",
            r"directed path Y -> Z2 -> X that does not go through the mechanism \{Z1\}",
        ),
        (  # covariates conditioned on: a collider opened
            "W [covariate]; Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> W; W <-> Z",
            r"the back-door path Y <-> W <-> Z from Y to the mechanism Z is open given W "
            r"\(conditioning on W, a collider on this path, opens it\)",
        ),
        (  # a covariate downstream of the cause
            "W [covariate]; Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y -> W",
            r"the covariate W is a descendant of the cause Y \(Y -> W\)",
        ),
        (  # a covariate downstream of the mechanism
            "W [covariate]; Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Z -> W",
            r"the covariate W is a descendant of the mechanism Z \(Z -> W\)",
        ),
    ],
)
def test_front_door_failures(spec: str, message: str) -> None:
    with pytest.raises(
        NotIdentifiableError, match="cannot identify p\\(X \\| do\\(Y\\)\\) with the front-door"
    ) as info:
        identify(CausalGraph(spec))
    assert re.search(message, str(info.value), flags=re.IGNORECASE), str(info.value)
    assert isinstance(info.value, ValueError)


def test_front_door_failure_suggests_back_door() -> None:
    g = CausalGraph(
        "W [covariate]; Y [cause]; Z [mechanism]; X [effect]; W -> Y; W -> X; Y -> Z -> X; Z <-> X"
    )
    with pytest.raises(
        NotIdentifiableError, match="remove the mechanism role to use the back-door"
    ):
        identify(g)
    assert (
        identify(g.with_roles({"W": "covariate", "Y": "cause", "X": "effect"})).kind == "back_door"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "Y [cause]; X [effect]; Y -> X; Y <-> X",
            r"without a mechanism or covariates: Y and X share a latent confounder \(Y <-> X\), "
            r"so no set of observed covariates can block the back-door path Y <-> X; declare a "
            r"mechanism",
        ),
        (
            "W [covariate]; Y [cause]; X [effect]; W -> Y -> X; W -> X; Y <-> X",
            r"with the back-door estimator and the covariates \{W\}: Y and X share a latent",
        ),
        (
            "Y [cause]; X [effect]; W -> Y -> X; W -> X",
            r"the back-door path Y <- W -> X from Y to X is not blocked by the empty set; "
            r"declaring W a covariate \(`W \[covariate\]`\) would block it",
        ),
        (
            "V [covariate]; Y [cause]; X [effect]; W -> Y -> X; W -> X; V -> Y",
            r"the back-door path Y <- W -> X from Y to X is not blocked by V; declaring W",
        ),
        (
            "W [covariate]; Y [cause]; X [effect]; Y -> X; Y -> W -> X",
            r"the covariate W is a descendant of the cause Y \(Y -> W\)",
        ),
        (
            "W [covariate]; Y [cause]; X [effect]; Y -> X; Y <-> W; W <-> X",
            r"the back-door path Y <-> W <-> X from Y to X is not blocked by W \(conditioning on "
            r"W, a collider on this path, opens it\)",
        ),
    ],
)
def test_back_door_failures(spec: str, message: str) -> None:
    with pytest.raises(NotIdentifiableError, match=message):
        identify(CausalGraph(spec))


def test_missing_roles() -> None:
    g = CausalGraph("Y -> Z -> X; Y <-> X")
    with pytest.raises(
        ValueError, match=r"no node with the role 'cause'.*or pass cause='<node name>'"
    ):
        identify(g)
    with pytest.raises(ValueError, match=r"no node with the role 'effect'.*\[effect\]"):
        identify(g, cause="Y")
    est = identify(g, cause="Y", effect="X", mechanisms=["Z"])
    assert est.kind == "front_door" and est.mechanisms == ("Z",)


def test_invalid_arguments() -> None:
    g = CausalGraph(FRONT_DOOR)
    with pytest.raises(TypeError, match="expects a CausalGraph"):
        identify(FRONT_DOOR)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="the cause 'Q' is not a node of the graph"):
        identify(g, cause="Q")
    with pytest.raises(ValueError, match="must be different nodes"):
        identify(g, cause="X")
    with pytest.raises(ValueError, match="cannot be both the cause/effect and a mechanism"):
        identify(g, mechanisms=["Z", "X"])
    with pytest.raises(ValueError, match="cannot be both a mechanism and a covariate"):
        identify(g, covariates=["Z"])
    with pytest.raises(ValueError, match="at least one mechanism"):
        check_front_door(g, "Y", "X", [])


def test_check_functions() -> None:
    g = CausalGraph(FRONT_DOOR)
    assert check_front_door(g, "Y", "X", ["Z"]) == []
    problems = check_front_door(CausalGraph(FRONT_DOOR + "; Z <-> X; Y -> X"), "Y", "X", ["Z"])
    assert len(problems) == 2
    assert problems[0].startswith("there is a directed path Y -> X")
    assert problems[1].startswith("Z and X share a latent confounder")
    assert check_back_door(CausalGraph("W -> Y -> X; W -> X"), "Y", "X", ["W"]) == []
    assert len(check_back_door(g, "Y", "X")) == 1


# ---------------------------------------------------------------- soundness against y0


def _random_graphs(n_graphs: int, seed: int) -> list[CausalGraph]:
    """Small random mixed graphs over Y, Z, X, W with roles (fixed seed: deterministic)."""
    rng = np.random.default_rng(seed)
    order = ["W", "Y", "Z", "X"]
    pairs = list(itertools.combinations(order, 2))
    graphs = []
    while len(graphs) < n_graphs:
        directed = [p for p in pairs if rng.random() < 0.45]
        bidirected = [p for p in pairs if rng.random() < 0.25]
        roles = {"Y": "cause", "X": "effect"}
        if rng.random() < 0.7:
            roles["Z"] = "mechanism"
        if rng.random() < 0.5:
            roles["W"] = "covariate"
        graphs.append(
            CausalGraph.from_edges(
                nodes=order, directed=directed, bidirected=bidirected, roles=roles
            )
        )
    return graphs


def test_identify_is_sound_on_random_graphs() -> None:
    """Whenever identify() succeeds, y0's complete ID algorithm must also succeed.

    (The converse need not hold: a graph may be identifiable by a formula outside the
    front-door / back-door family, or with roles that do not fit it.)
    """
    n_ours = 0
    for graph in _random_graphs(150, seed=0):
        try:
            identify(graph)
        except NotIdentifiableError:
            continue
        n_ours += 1
        assert y0_identifiable(graph, "Y", "X"), graph
    assert n_ours >= 20  # the sample must exercise the positive verdicts
