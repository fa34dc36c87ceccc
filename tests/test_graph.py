"""Tests for :mod:`causal_mixtures.graph`: the graph language, the graph object, rendering."""

from __future__ import annotations

import copy
import pickle
import re
import xml.etree.ElementTree as ET

import networkx as nx
import numpy as np
import pytest

from causal_mixtures.exceptions import GraphSyntaxError, NotIdentifiableError
from causal_mixtures.graph.core import KNOWN_ROLES, CausalGraph
from causal_mixtures.graph.identify import identify

FRONT_DOOR = "Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X"
SVG_NS = "{http://www.w3.org/2000/svg}"


# ------------------------------------------------------------------------------ language

ROUND_TRIP_SPECS = [
    FRONT_DOOR,
    "",
    "A",
    "A; B; C",
    "A -> B -> C -> D",
    "A <- B <- C",
    "A <-> B <-> C",
    "A -> B <- C; A <-> C",
    # comments, blank lines, newlines as separators, a chain continued after an arrow
    """
    # the front door, written over several lines
    Y [cause]   # the label
    Z [mechanism]
    X [effect]

    Y ->
       Z -> X   # the mechanism carries the whole effect
    Y <-> X
    """,
    # quoted names, with spaces, quotes and backslashes
    '"lesion mask" [mechanism]; "age (years)" -> "lesion mask" -> X; "say \\"hi\\"" <-> X',
    '"a\\\\b" -> c',
    # multi-character identifiers with dots and underscores
    "scanner.type -> image_x; label_y -> image_x; scanner.type <-> label_y",
    # roles inside an edge statement
    "Y [cause] -> Z [mechanism] -> X [effect]; Y <-> X",
    "W [covariate]; Y [cause]; Z1 [mechanism]; Z2 [mechanism]; X [effect]; "
    "W -> Y -> Z1 -> X; Y -> Z2 -> X; W -> X; Y <-> X",
    # duplicates are harmless
    "A -> B; A -> B; A <-> B; B <-> A; A [cause]; A [cause, cause]",
]


@pytest.mark.parametrize("spec", ROUND_TRIP_SPECS)
def test_round_trip(spec: str) -> None:
    g = CausalGraph.from_string(spec)
    text = g.to_string()
    again = CausalGraph.from_string(text)
    assert again == g
    assert hash(again) == hash(g)
    assert again.to_string() == text  # printing is a fixed point
    assert eval(repr(g), {"CausalGraph": CausalGraph}) == g


def test_to_string_joins_edges_into_chains() -> None:
    g = CausalGraph.from_string("A -> B; C -> D; B -> C; A -> E; B -> F; E -> F; D [effect]")
    # each chain starts at the first edge not yet written and follows the first unwritten
    # edge out of its last node
    assert g.to_string() == "D [effect]; A -> B -> C -> D; A -> E -> F; B -> F"


def test_long_chain_parses_and_round_trips() -> None:
    # parsing and construction are linear in the size of the graph (this took ~13 s when
    # they were quadratic); the test checks the result, not the time
    n = 10_000
    spec = " -> ".join(f"A{i}" for i in range(n))
    g = CausalGraph.from_string(spec)
    assert len(g.nodes) == n
    assert len(g.directed) == n - 1
    assert g.parents("A0") == ()
    assert g.parents(f"A{n - 1}") == (f"A{n - 2}",)
    assert g.children("A5000") == ("A5001",)
    assert g.to_string() == spec
    assert CausalGraph.from_string(g.to_string()) == g
    assert g.topological_order() == g.nodes


def test_parse_front_door() -> None:
    g = CausalGraph.from_string(FRONT_DOOR)
    assert g.nodes == ("Y", "Z", "X")
    assert g.directed == (("Y", "Z"), ("Z", "X"))
    assert g.bidirected == (("X", "Y"),)  # sorted pair
    assert dict(g.roles) == {"Y": ("cause",), "Z": ("mechanism",), "X": ("effect",)}
    assert (g.cause, g.effect, g.mechanisms, g.covariates) == ("Y", "X", ("Z",), ())
    assert g.to_string() == FRONT_DOOR
    assert str(g) == FRONT_DOOR
    assert repr(g) == f"CausalGraph({FRONT_DOOR!r})"
    assert CausalGraph(FRONT_DOOR) == g


def test_parse_details() -> None:
    g = CausalGraph.from_string('A <- B; "lesion mask" -> A # comment -> ignored\nC')
    assert g.nodes == ("A", "B", "lesion mask", "C")
    assert g.directed == (("B", "A"), ("lesion mask", "A"))
    assert g.parents("A") == ("B", "lesion mask")
    assert g.children("B") == ("A",)
    assert g.roles["C"] == ()
    assert '"lesion mask" -> A' in g.to_string()


@pytest.mark.parametrize(
    ("spec", "message", "line", "column"),
    [
        ("Y -> ", "expected a node name after '->' but found the end of the specification", 1, 6),
        ("A -> B\nB - C", "unexpected character '-': edges are written", 2, 3),
        ("A -> B C", "expected '->', '<-', '<->', .* after B but found the name C", 1, 8),
        ('A -> "lesion\nB', "unterminated quoted name: expected a closing '\"'", 1, 6),
        (
            "Y [cause, exposure]",
            r"unknown role 'exposure': the known roles are cause, effect, mechanism, covariate"
            r" \(for 'exposure' use 'cause'\)",
            1,
            11,
        ),
        ("Y [cause", "expected ',' or ']' in the role list but found the end of", 1, 9),
        ("Y []", r"expected a role \(cause, effect, mechanism, covariate\) but found ']'", 1, 4),
        ("\n  A -> A", "self loop A -> A", 2, 8),
        ("A <-> B <-> B", "self loop B <-> B", 1, 13),
        ("1st -> X", 'names must start with an ASCII letter .* e.g. "1st"', 1, 1),
        ("dag { A -> B }", "unexpected character '{': braces are not part", 1, 5),
        (
            "Y [cause]; Y [effect]",
            "already has the role 'cause' and cannot also be 'effect'",
            1,
            15,
        ),
        ('A -> ""', "expected a node name inside the quotes but found '\"\"'", 1, 6),
        ("-> X", "expected a node name but found '->'", 1, 1),
        ("A ->\n\n; B", "expected a node name after '->' but found ';'", 3, 1),
        ("A [cause] [effect]", r"expected '->', .* after A but found '\['", 1, 11),
    ],
)
def test_syntax_errors(spec: str, message: str, line: int, column: int) -> None:
    with pytest.raises(GraphSyntaxError, match=message) as info:
        CausalGraph.from_string(spec)
    assert (info.value.line, info.value.column) == (line, column)
    assert str(info.value).startswith(f"line {line}, column {column}: ")
    assert isinstance(info.value, ValueError)


def test_cycle_is_named() -> None:
    with pytest.raises(ValueError, match="cycle A -> B -> C -> A: a causal graph must be acyclic"):
        CausalGraph.from_string("A -> B -> C; C -> A")
    with pytest.raises(ValueError, match="cycle"):
        CausalGraph.from_edges(directed=[("A", "B"), ("B", "A")])


def test_type_errors() -> None:
    with pytest.raises(TypeError, match="from_edges"):
        CausalGraph(["A", "B"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="node names must be strings"):
        CausalGraph.from_edges(directed=[("A", 1)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="must be a pair of node names"):
        CausalGraph.from_edges(directed=[("A", "B", "C")])  # type: ignore[list-item]


# ------------------------------------------------------------------------------ from_edges


def test_from_edges_matches_from_string() -> None:
    g = CausalGraph.from_edges(
        directed=[("Y", "Z"), ("Z", "X")],
        bidirected=[("X", "Y")],
        roles={"Y": "cause", "Z": ["mechanism"], "X": ("effect",)},
    )
    assert g == CausalGraph.from_string(FRONT_DOOR)
    assert g.nodes == ("Y", "Z", "X")


def test_from_edges_nodes_and_roles_add_isolated_nodes() -> None:
    g = CausalGraph.from_edges(directed=[("A", "B")], nodes=["C", "A"], roles={"D": "covariate"})
    assert g.nodes == ("C", "A", "B", "D")
    assert g.covariates == ("D",)
    assert CausalGraph.from_string(g.to_string()) == g


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"directed": [("A", "A")]}, ValueError, "self loop A -> A"),
        ({"bidirected": [("A", "A")]}, ValueError, "self loop A <-> A"),
        ({"roles": {"A": "exposure"}}, ValueError, "unknown role 'exposure'.*use 'cause'"),
        ({"roles": {"A": "treated"}}, ValueError, "known roles are cause, effect"),
        ({"roles": {"A": ["cause", "effect"]}}, ValueError, "plays at most one role"),
        ({"nodes": ["  "]}, ValueError, "invalid node name"),
        ({"nodes": ["a\nb"]}, ValueError, "fit on one line"),
    ],
)
def test_from_edges_errors(kwargs: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        CausalGraph.from_edges(**kwargs)


# ------------------------------------------------------------------------ equality, hashing


def test_equality_ignores_order_and_orientation_of_bidirected() -> None:
    a = CausalGraph.from_string("Y [cause]; X [effect]; Y -> X; W -> X; W -> Y; Y <-> X")
    b = CausalGraph.from_string("W -> Y; X <-> Y; W -> X; X [effect]; Y -> X; Y [cause]")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1


@pytest.mark.parametrize(
    "other",
    [
        "Y [cause]; X [effect]; Y -> X",  # an edge fewer
        "Y [cause]; Z [mechanism]; X; Y -> Z -> X; Y <-> X",  # a role fewer
        "Y [cause]; Z [covariate]; X [effect]; Y -> Z -> X; Y <-> X",  # another role
        "Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X; Q",  # an extra node
        "Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y -> X",  # directed, not latent
    ],
)
def test_inequality(other: str) -> None:
    assert CausalGraph(FRONT_DOOR) != CausalGraph(other)


def test_not_equal_to_other_types() -> None:
    g = CausalGraph(FRONT_DOOR)
    assert g != FRONT_DOOR
    assert g != 1


def test_immutable_and_copyable() -> None:
    g = CausalGraph(FRONT_DOOR)
    with pytest.raises(AttributeError, match="immutable"):
        g._nodes = ()  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del g._nodes
    with pytest.raises(AttributeError):
        g.nodes = ("A",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        g.roles["Y"] = ("effect",)  # type: ignore[index]
    assert copy.copy(g) is g
    assert copy.deepcopy(g) is g
    restored = pickle.loads(pickle.dumps(g))
    assert restored == g
    assert restored.to_string() == g.to_string()


# ----------------------------------------------------------------------------------- roles


def test_role_lookups() -> None:
    g = CausalGraph(
        "W [covariate]; V [covariate]; Y [cause]; Z1 [mechanism]; Z2 [mechanism]; X [effect]; "
        "W -> Y; V -> X; Y -> Z1 -> X; Y -> Z2 -> X"
    )
    assert g.mechanisms == ("Z1", "Z2")
    assert g.covariates == ("W", "V")
    assert g.nodes_with_role("cause") == ("Y",)
    assert set(KNOWN_ROLES) == {"cause", "effect", "mechanism", "covariate"}
    with pytest.raises(ValueError, match="unknown role 'outcome'.*use 'effect'"):
        g.nodes_with_role("outcome")


def test_missing_and_ambiguous_roles() -> None:
    g = CausalGraph("Y -> Z -> X")
    with pytest.raises(
        ValueError, match=r"no node with the role 'cause'; declare one .*`Y \[cause\]`"
    ):
        _ = g.cause
    with pytest.raises(ValueError, match=r"no node with the role 'effect'.*\[effect\]"):
        _ = g.effect
    assert g.mechanisms == ()
    two = CausalGraph("A [cause]; B [cause]; A -> X; B -> X")
    with pytest.raises(ValueError, match=r"2 nodes with the role 'cause' \(A, B\) but exactly one"):
        _ = two.cause


def test_with_roles() -> None:
    g = CausalGraph("Y -> Z -> X; Y <-> X")
    h = g.with_roles({"Y": "cause", "Z": "mechanism", "X": "effect"})
    assert h == CausalGraph(FRONT_DOOR)
    assert g.roles["Y"] == ()  # the original is unchanged
    with pytest.raises(ValueError, match="unknown node 'Q'"):
        g.with_roles({"Q": "cause"})


def test_unknown_node() -> None:
    g = CausalGraph(FRONT_DOOR)
    assert "Y" in g and "Q" not in g
    with pytest.raises(ValueError, match="unknown node 'Q': the graph's nodes are 'Y', 'Z', 'X'"):
        g.parents("Q")
    with pytest.raises(ValueError, match="unknown node"):
        g.children("Q")


# -------------------------------------------------------------------------------- latents


def test_latent_names() -> None:
    g = CausalGraph(FRONT_DOOR)
    assert g.latent_name("Y", "X") == g.latent_name("X", "Y") == "U_X_Y"
    with pytest.raises(
        ValueError, match="no bidirected edge Y <-> Z; its bidirected edges are X <-> Y"
    ):
        g.latent_name("Y", "Z")
    clash = CausalGraph("U_A_B -> A; A <-> B")
    assert clash.latent_name("A", "B") == "U_A_B_2"


def test_to_networkx_makes_latents_explicit() -> None:
    g = CausalGraph(
        "W [covariate]; Y [cause]; Z [mechanism]; X [effect]; W -> Y -> Z -> X; Y <-> X; Z <-> X"
    )
    dag = g.to_networkx()
    assert isinstance(dag, nx.DiGraph)
    assert nx.is_directed_acyclic_graph(dag)
    latents = [n for n, latent in dag.nodes(data="latent") if latent]
    assert sorted(latents) == ["U_X_Y", "U_X_Z"]
    assert set(dag.successors("U_X_Y")) == {"X", "Y"}
    assert dag.nodes["U_X_Z"]["confounds"] == ("X", "Z")
    assert dag.in_degree("U_X_Y") == 0
    for n in g.nodes:
        assert dag.nodes[n]["latent"] is False
        assert dag.nodes[n]["roles"] == g.roles[n]
    assert set(g.directed) <= set(dag.edges)
    assert dag.number_of_edges() == len(g.directed) + 2 * len(g.bidirected)


def test_topological_order() -> None:
    g = CausalGraph("X [effect]; Z -> X; Y -> Z; W -> Y; W -> X")
    order = g.topological_order()
    assert order == ("W", "Y", "Z", "X")
    assert all(order.index(a) < order.index(b) for a, b in g.directed)


# ------------------------------------------------------------------------------ rendering


@pytest.mark.parametrize(
    "spec",
    [
        FRONT_DOOR,
        "W [covariate]; Y [cause]; X [effect]; W -> Y -> X; W -> X",
        "Y [cause]; Z1 [mechanism]; Z2 [mechanism]; X [effect]; Y -> Z1 -> X; Y -> Z2 -> X; "
        "Y <-> X; Z1 <-> X; Y <-> Z2",
        "\"a <b> & 'c'\" [cause] -> X; \"a <b> & 'c'\" <-> X; lonely",
        "",
    ],
)
def test_svg_is_xml_with_one_dashed_path_per_latent(spec: str) -> None:
    g = CausalGraph(spec)
    svg = g.to_svg()
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    paths = list(root.iter(f"{SVG_NS}path"))
    dashed = [p for p in paths if p.get("stroke-dasharray")]
    assert len(dashed) == len(g.bidirected)
    assert all("marker-start" in p.attrib and "marker-end" in p.attrib for p in dashed)
    solid_edges = [p for p in paths if p.get("marker-end") and not p.get("stroke-dasharray")]
    assert len(solid_edges) == len(g.directed)
    assert len(list(root.iter(f"{SVG_NS}ellipse"))) == len(g.nodes)
    texts = {t.text for t in root.iter(f"{SVG_NS}text")}
    for n in g.nodes:
        assert n in texts
        for role in g.roles[n]:
            assert role in texts
    assert float(root.get("width", "0")) > 0 and float(root.get("height", "0")) > 0


def test_svg_is_deterministic() -> None:
    assert CausalGraph(FRONT_DOOR).to_svg() == CausalGraph(FRONT_DOOR).to_svg()


def test_mimebundle() -> None:
    g = CausalGraph(FRONT_DOOR)
    bundle = g._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "image/svg+xml"}
    assert bundle["text/plain"] == repr(g)
    assert bundle["image/svg+xml"] == g.to_svg()
    assert set(g._repr_mimebundle_(include=["text/plain"])) == {"text/plain"}
    assert set(g._repr_mimebundle_(exclude=["text/plain"])) == {"image/svg+xml"}


def test_mermaid() -> None:
    g = CausalGraph(
        'Y [cause]; "say \\"hi\\"" [mechanism]; X [effect]; Y -> "say \\"hi\\"" -> X; Y <-> X'
    )
    text = g.to_mermaid()
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert sum("-->" in line for line in lines) == len(g.directed)
    assert sum("<-.->" in line for line in lines) == len(g.bidirected)
    assert "#quot;" in text and '"say "hi""' not in text
    assert re.search(r"class n0 cause", text)


def test_package_reexports() -> None:
    import causal_mixtures.graph as graph
    from causal_mixtures.graph.identify import Estimand, identify
    from causal_mixtures.graph.specs import GraphSpec, list_graphs, load_graph, load_spec

    assert graph.CausalGraph is CausalGraph
    assert graph.KNOWN_ROLES is KNOWN_ROLES
    assert graph.identify is identify  # the function (it shadows the submodule's name)
    assert graph.Estimand is Estimand
    assert (graph.GraphSpec, graph.list_graphs, graph.load_graph, graph.load_spec) == (
        GraphSpec,
        list_graphs,
        load_graph,
        load_spec,
    )
    assert sorted(graph.__all__) == sorted(
        ["CausalGraph", "KNOWN_ROLES", "Estimand", "GraphSpec", "identify", "list_graphs"]
        + ["load_graph", "load_spec"]
    )


# ----------------------------------------------------------- identification on large graphs
def _chain(prefix: str, n: int) -> str:
    return " -> ".join(f"{prefix}{i}" for i in range(n))


def test_identify_a_10000_node_chain() -> None:
    """identify is O(V + E) per query: a 10,000-node chain takes well under a second."""
    n = 9_999
    g = CausalGraph(f"Y [cause]; Z0 [mechanism]; Y -> {_chain('Z', n)} -> X; X [effect]; Y <-> X")
    est = identify(g)
    assert est.kind == "front_door" and est.mechanisms == ("Z0",)
    assert est.expression == "p(X | do(Y)) = Σ_{Z0} p(Z0 | Y) Σ_Y' p(X | Y', Z0) p(Y')"
    # Every node of the chain a mechanism (before: one d-separation test per mechanism).
    roles = "; ".join(f"Z{i} [mechanism]" for i in range(n))
    g = CausalGraph(f"Y [cause]; {roles}; Y -> {_chain('Z', n)} -> X; X [effect]; Y <-> X")
    assert identify(g).mechanisms == tuple(f"Z{i}" for i in range(n))


def test_identify_large_back_door_graphs() -> None:
    n = 10_000
    covs = "; ".join(f"A{i} [covariate]" for i in range(n))
    g = CausalGraph(f"Y [cause]; X [effect]; Y -> X; {covs}; X <- {_chain('A', n)} -> Y")
    assert identify(g).covariates == tuple(f"A{i}" for i in range(n))
    # The open back-door path is named in full (one search, not a path enumeration).
    g = CausalGraph(f"Y [cause]; X [effect]; Y -> X; X <- {_chain('A', n)} -> Y")
    with pytest.raises(NotIdentifiableError) as info:
        identify(g)
    path = " <- ".join(["Y", *(f"A{i}" for i in reversed(range(n)))]) + " -> X"
    assert f"the back-door path {path} from Y to X is not blocked by the empty set" in str(
        info.value
    )


def test_identify_many_descendant_covariates_is_summarised() -> None:
    n = 10_000
    covs = "; ".join(f"W{i} [covariate]" for i in range(n))
    g = CausalGraph(
        f"Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X; {covs}; Z -> {_chain('W', n)}"
    )
    with pytest.raises(NotIdentifiableError) as info:
        identify(g)
    text = str(info.value)
    assert "the covariate W0 is a descendant of the mechanism Z (Z -> W0)" in text
    assert "The covariate W9 is a descendant of the mechanism Z (Z -> W0 -> W1" in text
    assert "The covariates {W10, W11," in text and "W9999} are descendants of the mechanism too" in text
    assert len(text) < 200_000  # before: one full path per covariate, O(n^2) characters


def test_open_path_search_agrees_with_networkx_d_separation() -> None:
    """The one-pass search decides d-connection exactly as networkx does, node by node."""
    import itertools

    from causal_mixtures.graph.paths import open_search

    rng = np.random.default_rng(0)
    for _ in range(300):
        names = [f"N{i}" for i in range(int(rng.integers(3, 9)))]
        pairs = list(itertools.combinations(names, 2))
        g = CausalGraph.from_edges(
            nodes=names,
            directed=[p for p in pairs if rng.random() < 0.4],
            bidirected=[p for p in pairs if rng.random() < 0.2],
        )
        dag = g.to_networkx()
        src = names[int(rng.integers(len(names)))]
        given = {n for n in dag if n != src and rng.random() < 0.3}
        cut = {src} if rng.random() < 0.5 else set()
        cut_dag = dag.copy()
        cut_dag.remove_edges_from([(u, v) for u in cut for v in dag.successors(u)])
        reached = {node for node, _ in open_search(dag, src, given, cut)[0]}
        for v in dag:
            if v != src and v not in given:
                assert (v in reached) != nx.is_d_separator(cut_dag, {src}, {v}, given), (g, v)
