"""Front-door reducibility (graph/reduce.py) and the ID verdict (graph/hedge.py), by exact
arithmetic on random discrete SCMs and against y0's ID algorithm.

Each SCM has binary or ternary observed variables and one binary latent parent per
bidirected edge, with random conditional probability tables (Dirichlet(1)); its joint
distribution is enumerated exactly with ``numpy.einsum``. The truth ``p(x | do(y))`` comes
from the mutilated model; the estimand is evaluated from the observed joint alone.
"""

from __future__ import annotations

import itertools
import string
import time

import networkx as nx
import numpy as np
import pytest
from y0.algorithm.identify import identify_outcomes
from y0.dsl import Variable
from y0.graph import NxMixedGraph

from causal_mixtures.exceptions import NotIdentifiableError
from causal_mixtures.graph.core import CausalGraph
from causal_mixtures.graph.hedge import find_hedge, is_identifiable
from causal_mixtures.graph.identify import Estimand, check_front_door, identify
from causal_mixtures.graph.reduce import FrontDoorReduction, check_reduction, find_reduction
from causal_mixtures.graph.report import identification_report
from causal_mixtures.graph.specs import list_graphs, load_graph, load_spec

TOL = 1e-10
NEW_SPECS = sorted(n for n in list_graphs() if n.startswith(("reducible_", "unreducible_")))


def y0_identifiable(graph: CausalGraph, cause: str, effect: str) -> bool:
    g = NxMixedGraph.from_edges(
        nodes=[Variable(n) for n in graph.nodes],
        directed=[(Variable(a), Variable(b)) for a, b in graph.directed],
        undirected=[(Variable(a), Variable(b)) for a, b in graph.bidirected],
    )
    return identify_outcomes(g, treatments=Variable(cause), outcomes=Variable(effect)) is not None


# --------------------------------------------------------------------------------------
# Exact discrete SCMs
# --------------------------------------------------------------------------------------


class DiscreteSCM:
    """A random discrete SCM on a graph, its latents explicit, enumerated exactly."""

    def __init__(self, graph: CausalGraph, rng: np.random.Generator) -> None:
        self.graph = graph
        self.dag = graph.to_networkx()
        self.order = list(nx.topological_sort(self.dag))
        self.observed = list(graph.nodes)
        self.card = {
            n: 2 if self.dag.nodes[n]["latent"] else int(rng.integers(2, 4)) for n in self.order
        }
        self.letter = dict(zip(self.order, string.ascii_letters, strict=False))
        assert len(self.order) <= len(string.ascii_letters)
        self.cpt = {}
        for n in self.order:
            parents = list(self.dag.predecessors(n))
            shape = [self.card[p] for p in parents]
            table = rng.dirichlet(np.ones(self.card[n]), size=int(np.prod(shape, dtype=int)))
            self.cpt[n] = (parents, table.reshape(*shape, self.card[n]))

    def joint(self, do: dict[str, int] | None = None) -> np.ndarray:
        """The observed joint (axes in graph node order), under ``do`` if given."""
        do = do or {}
        operands, subscripts = [], []
        for n in self.order:
            parents, table = self.cpt[n]
            if n in do:
                one_hot = np.zeros(self.card[n])
                one_hot[do[n]] = 1.0
                operands.append(one_hot)
                subscripts.append(self.letter[n])
            else:
                operands.append(table)
                subscripts.append("".join(self.letter[p] for p in parents) + self.letter[n])
        out = "".join(self.letter[n] for n in self.observed)
        return np.einsum(",".join(subscripts) + "->" + out, *operands, optimize="greedy")


def marginal(p: np.ndarray, nodes: list[str], keep: list[str]) -> np.ndarray:
    """The marginal of ``keep`` (axes in that order)."""
    drop = tuple(i for i, n in enumerate(nodes) if n not in keep)
    m = p.sum(axis=drop)
    kept = [n for n in nodes if n in keep]
    return np.transpose(m, [kept.index(n) for n in keep])


def grouped(p: np.ndarray, nodes: list[str], groups: list[list[str]]) -> np.ndarray:
    """The marginal of the concatenated groups, each group flattened into one axis."""
    flat = [n for g in groups for n in g]
    m = marginal(p, nodes, flat)
    sizes, i = [], 0
    for g in groups:
        sizes.append(int(np.prod(m.shape[i : i + len(g)], dtype=int)))
        i += len(g)
    return m.reshape(sizes)


def front_door_formula(p: np.ndarray, nodes: list[str], c, ms, e, ws=()) -> np.ndarray:
    """Σ_w p(w) Σ_m p(m | c, w) Σ_c' p(e | c', m, w) p(c' | w), as an array (c, e).

    ``c``, ``ms``, ``e`` and ``ws`` are lists of nodes (each flattened into one axis); with
    ``ws`` empty this is the front-door formula for sets.
    """
    ws = list(ws) or []
    if not ws:
        t = grouped(p, nodes, [list(c), list(ms), list(e)])  # (c, m, e)
        p_c = t.sum((1, 2))
        p_m_c = t.sum(2) / p_c[:, None]
        p_e_cm = t / t.sum(2, keepdims=True)
        return np.einsum("am,bme,b->ae", p_m_c, p_e_cm, p_c)
    t = grouped(p, nodes, [list(c), list(ms), ws, list(e)])  # (c, m, w, e)
    p_cw = t.sum((1, 3))
    p_w = p_cw.sum(0)
    p_m_cw = t.sum(3) / p_cw[:, None, :]
    p_e_cmw = t / t.sum(3, keepdims=True)
    return np.einsum("w,amw,bmwe,bw->ae", p_w, p_m_cw, p_e_cmw, p_cw / p_w)


def evaluate(estimand: Estimand, p: np.ndarray, nodes: list[str]) -> np.ndarray:
    """The estimand's formula for ``p(effect | do(cause))`` from the observed joint."""
    y, x = [estimand.cause], [estimand.effect]
    if estimand.kind in ("front_door", "front_door_covariates"):
        return front_door_formula(p, nodes, y, estimand.mechanisms, x, estimand.covariates)
    ws = list(estimand.covariates)
    if not ws:
        t = grouped(p, nodes, [y, x])
        return t / t.sum(1, keepdims=True)
    t = grouped(p, nodes, [y, ws, x])  # Σ_w p(x | y, w) p(w)
    return np.einsum("ywx,w->yx", t / t.sum(2, keepdims=True), t.sum((0, 2)))


def truth(scm: DiscreteSCM, causes: list[str], effects: list[str]) -> np.ndarray:
    """p(effects | do(causes)) from the mutilated SCM, as an array (causes flat, effects flat)."""
    rows = []
    for values in itertools.product(*(range(scm.card[c]) for c in causes)):
        q = scm.joint(dict(zip(causes, values, strict=True)))
        rows.append(grouped(q, scm.observed, [list(effects)]))
    return np.array(rows)


def exact_errors(graph: CausalGraph, estimand: Estimand, rng: np.random.Generator) -> float:
    """Largest |estimand - truth| over p(x | do(y)) and, for a reduction, p(E* | do(C*))."""
    scm = DiscreteSCM(graph, rng)
    p = scm.joint()
    err = float(
        np.max(
            np.abs(
                evaluate(estimand, p, scm.observed)
                - truth(scm, [estimand.cause], [estimand.effect])
            )
        )
    )
    red = estimand.reduction
    if red is not None:
        sets = front_door_formula(p, scm.observed, red.cause_set, red.mechanism_set, red.effect_set)
        err = max(
            err, float(np.max(np.abs(sets - truth(scm, list(red.cause_set), list(red.effect_set)))))
        )
    return err


# --------------------------------------------------------------------------------------
# Random ADMGs
# --------------------------------------------------------------------------------------


def random_admg(rng: np.random.Generator) -> CausalGraph:
    """Y, X and 2-4 other nodes; Y early, X last; front-door-like more often than not."""
    others = [f"V{j}" for j in range(int(rng.integers(2, 5)))]
    order = list(rng.permutation(others))
    order.insert(int(rng.integers(0, len(order) // 2 + 1)), "Y")
    order.append("X")
    pairs = [p for p in itertools.combinations(order, 2) if p != ("Y", "X")]
    directed = [p for p in pairs if rng.random() < 0.4]
    if rng.random() < 0.6:  # a front-door seed: Y -> V -> X through a node after Y
        v = order[int(rng.integers(order.index("Y") + 1, len(order) - 1))]
        directed += [("Y", v), (v, "X")]
    if rng.random() < 0.1:
        directed.append(("Y", "X"))
    bidirected = [p for p in pairs if rng.random() < 0.15]
    if rng.random() < 0.7:
        bidirected.append(("Y", "X"))
    return CausalGraph.from_edges(
        nodes=order, directed=directed, bidirected=bidirected, roles={"Y": "cause", "X": "effect"}
    )


def observed(graph: CausalGraph) -> nx.DiGraph:
    obs = nx.DiGraph(graph.directed)
    obs.add_nodes_from(graph.nodes)
    return obs


def brute_force(graph: CausalGraph, y: str, x: str) -> tuple | None:
    """Any admissible triple with C* = {y} ∪ A, A non-descendants of y, by plain enumeration."""
    obs = observed(graph)
    nd = [n for n in graph.nodes if n not in nx.descendants(obs, y) and n not in (y, x)]
    for k in range(len(nd) + 1):
        for adj in itertools.combinations(nd, k):
            rest = [n for n in graph.nodes if n not in (y, x, *adj)]
            for j in range(1, len(rest) + 1):
                for ms in itertools.combinations(rest, j):
                    if not check_reduction(graph, (y, *adj), ms, (x,)):
                        return (y, *adj), ms
    return None


def test_random_admgs_exact_and_agree_with_y0() -> None:
    """240 seeded ADMGs: exact estimands, the search exact, verdicts as y0's ID algorithm."""
    rng = np.random.default_rng(20261201)
    counts = dict(reducible=0, with_adjustment=0, back_door=0, id_not_fdr=0, not_id=0)
    worst = 0.0
    for _ in range(240):
        graph = random_admg(rng)
        y0_says = y0_identifiable(graph, "Y", "X")
        assert is_identifiable(graph, "Y", "X") == y0_says, graph
        reduction = find_reduction(graph)
        if "Y" in nx.ancestors(
            observed(graph), "X"
        ):  # the pruned search finds a triple iff plain enumeration does
            assert (reduction is None) == (brute_force(graph, "Y", "X") is None), graph
        try:
            estimand = identify(graph)
        except NotIdentifiableError as err:
            assert reduction is None
            text = str(err)
            if y0_says:
                counts["id_not_fdr"] += 1
                if "Y" in nx.ancestors(observed(graph), "X"):
                    assert (
                        "is identified by the ID algorithm, but by a formula that is not "
                        "front-door reducible" in text
                    ), text
                else:
                    assert "Y is not an ancestor of X, so p(X | do(Y)) = p(X)" in text, text
            else:
                counts["not_id"] += 1
                assert "is not identifiable by any formula" in text and "hedge" in text, text
            continue
        assert y0_says, graph  # FDR (or the back door) never claims too much
        if estimand.reduction is None:
            counts["back_door"] += 1
            assert estimand.kind == "back_door" and estimand.criterion == "back_door"
        else:
            counts["reducible"] += 1
            counts["with_adjustment"] += bool(reduction.adjustment)
            assert estimand.reduction == reduction
            assert estimand.criterion == "front_door_reducible"
            assert estimand.mechanisms == reduction.mechanism_set
            assert estimand.covariates == reduction.adjustment
            assert check_reduction(graph, *reduction.super_nodes.values()) == []
            # Theorem 2: the mechanism super-node is a conditional front door given A.
            assert (
                check_front_door(graph, "Y", "X", reduction.mechanism_set, reduction.adjustment)
                == []
            )
        for _ in range(2):
            worst = max(worst, exact_errors(graph, estimand, rng))
    assert worst < TOL, worst
    # The sample exercises every verdict.
    assert counts["reducible"] >= 60 and counts["with_adjustment"] >= 5, counts
    assert counts["id_not_fdr"] >= 20 and counts["not_id"] >= 40, counts


@pytest.mark.parametrize("name", NEW_SPECS)
def test_new_specs_exact(name: str) -> None:
    spec = load_spec(name)
    graph = spec.graph
    assert spec.criterion in ("front_door_reducible", "none")
    assert y0_identifiable(graph, graph.cause, graph.effect) == spec.identifiable
    if not spec.identifiable:
        assert find_reduction(graph) is None and find_hedge(graph, graph.cause, graph.effect)
        with pytest.raises(NotIdentifiableError, match="not identifiable by any formula"):
            identify(graph)
        return
    estimand = identify(graph)
    assert estimand.criterion == spec.criterion == "front_door_reducible"
    assert estimand.expression == spec.estimand
    rng = np.random.default_rng(sum(map(ord, name)))
    worst = max(exact_errors(graph, estimand, rng) for _ in range(5))
    assert worst < TOL, worst
    # The formula is not trivially right: the naive p(x | y) differs from the truth.
    scm = DiscreteSCM(graph, rng)
    p = scm.joint()
    naive = grouped(p, scm.observed, [["Y"], ["X"]])
    naive = naive / naive.sum(1, keepdims=True)
    assert np.max(np.abs(naive - truth(scm, ["Y"], ["X"]))) > 1e-4


# --------------------------------------------------------------------------------------
# The search and the criterion
# --------------------------------------------------------------------------------------


def test_search_is_fast_on_15_node_graphs() -> None:
    """Worst of 20 random 15-node ADMGs (front-door-like), timed."""
    rng = np.random.default_rng(7)
    worst, found = 0.0, 0
    for _ in range(20):
        names = ["Y", *(f"V{j}" for j in range(13)), "X"]
        pairs = [p for p in itertools.combinations(names, 2) if p != ("Y", "X")]
        directed = [p for p in pairs if rng.random() < 0.18]
        bidirected = [p for p in pairs if rng.random() < 0.06] + [("Y", "X")]
        graph = CausalGraph.from_edges(nodes=names, directed=directed, bidirected=bidirected)
        start = time.perf_counter()
        reduction = find_reduction(graph, "Y", "X")
        worst = max(worst, time.perf_counter() - start)
        if reduction is not None:
            found += 1
            assert check_reduction(graph, *reduction.super_nodes.values()) == []
    assert worst < 5.0, worst
    # An adversarial 15-node graph: every subset of the 13 mediators intercepts the chain and
    # fails condition 3 (each mediator is confounded with X), so all 2^13 - 1 are tested.
    chain = " -> ".join(f"V{i}" for i in range(13))
    latents = "; ".join(f"V{i} <-> X" for i in range(13))
    graph = CausalGraph(f"Y -> {chain} -> X; {latents}; Y <-> X")
    start = time.perf_counter()
    assert find_reduction(graph, "Y", "X") is None
    assert time.perf_counter() - start < 10.0  # about 0.9 s on one core


def test_check_reduction_names_the_paths() -> None:
    g = CausalGraph("Y -> M1 -> M2 -> X; Y <-> X; M1 <-> M2; Y -> S -> X")
    problems = check_reduction(g, ["Y"], ["M1"], ["X"])
    assert problems[0].startswith("there is a directed path Y -> S -> X that does not go")
    assert "the back-door path M1 <-> M2 -> X from M1 to X is not blocked by {Y}" in problems[1]
    assert check_reduction(g, ["Y"], ["M2", "S"], ["X"]) == []
    g2 = CausalGraph("Y -> M -> X; Y <-> M; Y <-> X")
    problems = check_reduction(g2, ["Y"], ["M"], ["X"])
    assert problems[0] == (
        "the back-door path Y <-> M from Y to M is open (condition 2: no back-door path from "
        "the cause super-node to {M} may be open)."
    )
    # Conditioning on Y, a collider between two latents, opens M <-> Y <-> X.
    assert problems[1].startswith("the back-door path M <-> Y <-> X from M to X is not blocked")


def test_effect_super_node_marginalises() -> None:
    """An admissible triple with E* = {X, B} identifies p(x, b | do(y)); its marginal is exact."""
    g = CausalGraph("Y -> M -> X; M -> B; Y <-> X; Y <-> B")
    assert check_reduction(g, ["Y"], ["M"], ["X", "B"]) == []
    scm = DiscreteSCM(g, np.random.default_rng(3))
    p = scm.joint()
    sets = front_door_formula(p, scm.observed, ["Y"], ["M"], ["X", "B"])  # (y, x * b)
    joint_truth = truth(scm, ["Y"], ["X", "B"])
    assert np.max(np.abs(sets - joint_truth)) < TOL
    marg = sets.reshape(scm.card["Y"], scm.card["X"], scm.card["B"]).sum(2)
    assert np.max(np.abs(marg - truth(scm, ["Y"], ["X"]))) < TOL


def test_bad_input() -> None:
    g = CausalGraph("Y -> M -> X; Y <-> X")
    with pytest.raises(ValueError, match="mechanism_set must hold at least one node"):
        check_reduction(g, ["Y"], [], ["X"])
    with pytest.raises(ValueError, match="'Q' is in both cause_set and mechanism_set"):
        check_reduction(CausalGraph("Y -> Q -> X"), ["Y", "Q"], ["Q"], ["X"])
    with pytest.raises(ValueError, match="names 'Z', which is not a node"):
        check_reduction(g, ["Y"], ["Z"], ["X"])
    with pytest.raises(TypeError, match="mechanism_set must be a list of node names"):
        check_reduction(g, ["Y"], "M", ["X"])
    with pytest.raises(ValueError, match="no node with the role 'cause'"):
        find_reduction(g)
    with pytest.raises(ValueError, match="must be different nodes"):
        find_reduction(g, "Y", "Y")
    with pytest.raises(ValueError, match="max_candidates=2"):
        find_reduction(CausalGraph("Y -> A -> B -> C -> X"), "Y", "X", max_candidates=2)
    with pytest.raises(TypeError, match="expects a CausalGraph"):
        find_reduction("Y -> X")  # type: ignore[arg-type]


def test_declared_roles_are_checked_and_hinted() -> None:
    """Declared roles are checked as before; a failure says which reduction would work."""
    g = CausalGraph(
        "Y [cause]; M1 [mechanism]; X [effect]; Y -> M1 -> X; Y -> M2 -> X; M1 <-> M2; Y <-> X"
    )
    with pytest.raises(NotIdentifiableError, match=r"front-door reducible: mechanisms \{M1, M2\}"):
        identify(g)
    est = identify(g.with_roles({"Y": "cause", "X": "effect"}))
    assert est.mechanisms == ("M1", "M2") and est.reduction is not None
    assert isinstance(est.reduction, FrontDoorReduction)
    assert "found by front-door reduction" in str(est)


def test_hedge_structure() -> None:
    """Every hedge returned: F' ⊂ F, the cause in F only, both c-connected, F ancestral."""
    rng = np.random.default_rng(11)
    seen = 0
    for _ in range(150):
        g = random_admg(rng)
        hedge = find_hedge(g, "Y", "X")
        if hedge is None:
            continue
        seen += 1
        f, fp = set(hedge.f), set(hedge.f_prime)
        assert fp < f and "Y" in f - fp
        for part in (f, fp):
            ug = nx.Graph([e for e in g.bidirected if set(e) <= part])
            ug.add_nodes_from(part)
            assert nx.is_connected(ug)
        sub = nx.DiGraph([e for e in g.directed if set(e) <= f])
        sub.add_nodes_from(f)
        assert all(n in fp or nx.descendants(sub, n) & fp for n in f)
        assert fp <= nx.ancestors(observed(g), "X") | {"X"}
    assert seen >= 20


# --------------------------------------------------------------------------------------
# The identification report
# --------------------------------------------------------------------------------------

NAPKIN = "Y [cause]; X [effect]; W -> Z -> Y -> X; W <-> Y; W <-> X"


@pytest.mark.parametrize(
    ("graph", "criterion"),
    [
        ("front_door", "front_door"),
        ("front_door_covariates", "conditional_front_door"),
        ("back_door", "back_door"),
        ("reducible_cause_parent", "front_door_reducible"),
        ("reducible_confounded_chain", "front_door_reducible"),
        ("unreducible_confounded_branch", "none"),
    ],
)
def test_report_criteria(graph: str, criterion: str) -> None:
    import xml.etree.ElementTree as ET

    spec = load_spec(graph)
    report = identification_report(spec.graph)
    assert report.criterion == criterion
    assert report.identifiable == spec.identifiable
    text = str(report)
    assert text.startswith("p(X | do(Y)): criterion ")
    ET.fromstring(report.to_svg())  # well-formed SVG
    assert report.to_svg() in report._repr_html_()
    assert report._repr_markdown_().startswith("**p(X | do(Y)): criterion")
    if spec.identifiable:
        assert report.expression == spec.estimand and report.expression in text
        assert report.latex.startswith(r"p(X \mid \mathrm{do}(Y)) = ")
        assert "$$" + report.latex + "$$" in report._repr_markdown_()
        assert report.super_nodes["effect"] == ("X",)
        assert report.super_nodes["cause"][0] == "Y"
        assert report.hedge is None and report.problems == ()
        for role, nodes in report.super_nodes.items():
            if role == "mechanism" or nodes != ("Y",):
                assert f"{role} super-node: {{{', '.join(nodes)}}}" in text
    else:
        assert report.hedge is not None and not report.id_identifiable
        assert str(report.hedge) in text
        assert any("M2 <-> X" in p for p in report.problems)
        assert report.latex.endswith(r"\text{not identifiable}")


def test_report_of_a_reduction_with_a_cause_super_node() -> None:
    report = identification_report(load_graph("reducible_cause_parent"))
    assert report.super_nodes == {"cause": ("Y", "R"), "mechanism": ("M",), "effect": ("X",)}
    assert report.estimand.covariates == ("R",) and report.estimand.kind == "front_door_covariates"
    assert "p(X | do(Y, R)) = Σ_M p(M | Y, R) Σ_{Y', R'} p(X | Y', R', M) p(Y', R')" in str(report)
    assert r"p(X \mid \mathrm{do}(Y, R))" in report.latex
    svg = report.to_svg()
    assert svg.count("class='super-node'") == 4 and ">C*<" in svg and ">M*<" in svg


def test_report_identified_by_id_but_not_reducible() -> None:
    """The napkin graph: ID identifies p(x | do(y)), no front-door reduction exists."""
    graph = CausalGraph(NAPKIN)
    assert y0_identifiable(graph, "Y", "X")
    report = identification_report(graph)
    assert report.criterion == "none" and report.id_identifiable and report.hedge is None
    assert "identified by the ID algorithm, but by a formula that is not front-door reducible" in (
        report.message
    )
    assert "identified by ID, not front-door reducible" in report.latex
    with pytest.raises(NotIdentifiableError, match="estimators .* cannot fit it"):
        identify(graph)


def test_report_draws_with_matplotlib() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = identification_report(load_graph("reducible_confounded_chain"))
    ax = report.draw()
    labels = {t.get_text() for t in ax.texts}
    assert {"Y", "M1", "M2", "S", "X"} <= labels
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [
        "C* (cause super-node)",
        "M* (mechanism super-node)",
        "E* (effect super-node)",
    ]
    plt.close(ax.figure)


def test_report_bad_input() -> None:
    with pytest.raises(TypeError, match="expects a CausalGraph"):
        identification_report("Y -> X")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no node with the role 'cause'"):
        identification_report(CausalGraph("Y -> X"))


def test_a_descendant_in_the_cause_super_node_is_not_enough() -> None:
    """({Y, A}, {M}, {X}) is admissible, so p(x | do(y, a)) is identified (exactly), but A
    descends from Y and p(x | do(y)) is not identifiable: the search leaves A out."""
    g = CausalGraph("Y [cause]; X [effect]; Y -> A; Y -> M; A -> M; M -> X; Y <-> X; A <-> X")
    assert check_reduction(g, ["Y", "A"], ["M"], ["X"]) == []
    scm = DiscreteSCM(g, np.random.default_rng(5))
    p = scm.joint()
    sets = front_door_formula(p, scm.observed, ["Y", "A"], ["M"], ["X"])
    assert np.max(np.abs(sets - truth(scm, ["Y", "A"], ["X"]))) < TOL
    assert find_reduction(g) is None
    assert find_hedge(g, "Y", "X") is not None and not y0_identifiable(g, "Y", "X")
