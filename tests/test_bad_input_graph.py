"""Bad input to the graph layer: one table per entry point, plus property tests.

Every bad input must raise the package's exception (``GraphSyntaxError`` / ``ValueError``,
``TypeError`` for a wrong type) with a message naming what was wrong; random graph text may
only parse to a graph that round-trips or raise ``GraphSyntaxError`` / ``ValueError``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from causal_mixtures.exceptions import GraphSyntaxError
from causal_mixtures.graph.core import CausalGraph
from causal_mixtures.graph.identify import check_back_door, check_front_door
from causal_mixtures.graph.specs import load_graph, load_spec

GOOD_SPEC = (
    'name = "mine"\ntitle = "Mine"\nreference = "me"\n'
    'graph = "Y [cause]; X [effect]; Y -> X"\nestimand = "p(X | do(Y)) = p(X | Y)"\n'
)

# ---------------------------------------------------------------------------- from_string

FROM_STRING = [
    ("A ->", GraphSyntaxError, ["line 1, column 5", "expected a node name after '->'"]),
    ("-> A", GraphSyntaxError, ["expected a node name", "'->'"]),
    ("A [cause", GraphSyntaxError, ["expected ',' or ']'"]),
    ("A [foo]", GraphSyntaxError, ["unknown role 'foo'", "cause, effect"]),
    ("A [treatment]", GraphSyntaxError, ["use 'cause'"]),
    ("A [cause, effect]", GraphSyntaxError, ["at most one role"]),
    ("A -> B -> A", ValueError, ["cycle A -> B -> A", "acyclic"]),
    ("A <-> A", GraphSyntaxError, ["self loop"]),
    ('""', GraphSyntaxError, ["must not be empty"]),
    ('"a', GraphSyntaxError, ["unterminated quoted name"]),
    ("A B", GraphSyntaxError, ["after A but found the name B"]),
    ("é -> B", GraphSyntaxError, ["unexpected character 'é'", 'quote other names']),
    ("dag { A -> B }", GraphSyntaxError, ["braces are not part of the language"]),
    ("A - B", GraphSyntaxError, ["edges are written"]),
    ("A\x00B", GraphSyntaxError, ["unexpected character"]),
    ("A [cause]\n[effect]", GraphSyntaxError, ["line 2, column 1"]),
    (None, TypeError, ["expects a graph specification string", "from_edges"]),
    (b"A -> B", TypeError, ["got bytes"]),
]


@pytest.mark.parametrize(("spec", "error", "words"), FROM_STRING)
def test_from_string_bad_input(spec: Any, error: type[Exception], words: list[str]) -> None:
    with pytest.raises(error) as info:
        CausalGraph.from_string(spec)
    for word in words:
        assert word in str(info.value), str(info.value)


# ---------------------------------------------------------------------------- from_edges

FROM_EDGES: list[tuple[dict[str, Any], type[Exception], list[str]]] = [
    ({"directed": [("A",)]}, ValueError, ["pair of node names", "('A',)"]),
    ({"directed": [("A", "B", "C")]}, ValueError, ["pair of node names"]),
    ({"directed": [("A", 1)]}, TypeError, ["node names must be strings", "1 (int)"]),
    ({"directed": [("A", "A")]}, ValueError, ["self loop A -> A"]),
    ({"bidirected": [("A", "A")]}, ValueError, ["self loop A <-> A"]),
    ({"directed": [("A", "B"), ("B", "A")]}, ValueError, ["cycle", "acyclic"]),
    ({"nodes": [""]}, ValueError, ["invalid node name ''", "non-empty"]),
    ({"nodes": ["a\nb"]}, ValueError, ["fit on one line"]),
    ({"roles": {"A": "Cause"}}, ValueError, ["unknown role 'Cause'"]),
    ({"roles": {"A": ["cause", "effect"]}}, ValueError, ["at most one role"]),
    # Wrong types: clear TypeErrors naming the argument, not raw Python ones.
    ({"directed": None}, TypeError, ["directed must be a list", "NoneType", "directed=[("]),
    ({"directed": 3}, TypeError, ["directed must be a list", "int"]),
    ({"bidirected": 5}, TypeError, ["bidirected must be a list"]),
    ({"nodes": 3}, TypeError, ["nodes must be a list", "int 3"]),
    # A string is not silently split into one-letter nodes.
    ({"nodes": "ABC"}, TypeError, ["nodes must be a list", "'ABC'", "nodes=['Y', 'X']"]),
    ({"directed": "AB"}, TypeError, ["directed must be a list", "str 'AB'"]),
    ({"roles": ["A"]}, TypeError, ["roles must be a mapping", "list", "roles={'Y': 'cause'"]),
    ({"roles": {"A": None}}, TypeError, ["the role of 'A'", "None", "known roles"]),
    ({"roles": {"A": 3}}, TypeError, ["the role of 'A'", "got 3"]),
    ({"roles": {3: "cause"}}, TypeError, ["node names must be strings"]),
]


@pytest.mark.parametrize(("kwargs", "error", "words"), FROM_EDGES)
def test_from_edges_bad_input(
    kwargs: dict[str, Any], error: type[Exception], words: list[str]
) -> None:
    with pytest.raises(error) as info:
        CausalGraph.from_edges(**kwargs)
    for word in words:
        assert word in str(info.value), str(info.value)


# ---------------------------------------------------------------------- spec files

SPEC_FILES: list[tuple[str, bytes, type[Exception], list[str]]] = [
    (
        "deep_array",
        b"a = " + b"[" * 10_000 + b"]" * 10_000 + b"\n",
        ValueError,
        ["deep_array.toml", "nests arrays or tables too deeply"],
    ),
    (
        "deep_table",
        b"a = " + b"{b = " * 5_000 + b"1" + b"}" * 5_000 + b"\n",
        ValueError,
        ["deep_table.toml", "too deeply"],
    ),
    (
        "latin1",
        GOOD_SPEC.replace('"Mine"', '"Caf\xe9"').encode("latin-1"),
        ValueError,
        ["latin1.toml", "not UTF-8", "0xe9", "line 2", "save the file as UTF-8"],
    ),
    (
        "syntax",
        b'name = "x\ntitle = 3 4\n',
        ValueError,
        ["syntax.toml", "not valid TOML", "line 1", "fix the syntax"],
    ),
    ("empty", b"", ValueError, ["empty.toml", "misses the required keys 'name', 'title'"]),
    (
        "missing",
        b'name = "missing"\ngraph = "Y -> X"\n',
        ValueError,
        ["missing.toml", "'title', 'reference', 'estimand'", 'e.g. title = "..."'],
    ),
    (
        "badgraph",
        GOOD_SPEC.replace("Y -> X", "Y -> -> X").encode(),
        GraphSyntaxError,
        ["in the 'graph' key of", "badgraph.toml", "expected a node name after '->'"],
    ),
    (
        "graphint",
        GOOD_SPEC.replace('"Y [cause]; X [effect]; Y -> X"', "3").encode(),
        ValueError,
        ["graphint.toml", "graph = 3; expected a string"],
    ),
]


@pytest.mark.parametrize(
    ("stem", "content", "error", "words"), SPEC_FILES, ids=[row[0] for row in SPEC_FILES]
)
def test_bad_spec_files(
    tmp_path: Path, stem: str, content: bytes, error: type[Exception], words: list[str]
) -> None:
    path = tmp_path / f"{stem}.toml"
    path.write_bytes(content)
    for loader in (load_spec, load_graph):
        with pytest.raises(error) as info:
            loader(path)
        # The package's exception, not a RecursionError / UnicodeDecodeError.
        assert type(info.value).__module__.startswith(("builtins", "causal_mixtures"))
        for word in words:
            assert word in str(info.value), str(info.value)
    assert path.read_bytes() == content  # never modified


def test_spec_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_SPEC.encode())
    assert load_spec(path).name == "mine"


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("nope", ValueError, ["unknown graph 'nope'", "front_door"]),
        ("front_dor", ValueError, ["Did you mean 'front_door'?"]),
        ("Y -> X", ValueError, ["looks like a graph specification", "from_string"]),
        ("no/such.toml", FileNotFoundError, ["no graph spec file at 'no/such.toml'"]),
        (3, TypeError, ["registered graph name or the path", "int"]),
    ],
)
def test_load_spec_bad_names(name: Any, error: type[Exception], words: list[str]) -> None:
    with pytest.raises(error) as info:
        load_spec(name)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_load_spec_on_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "specs.toml"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"is a folder, not a graph spec file.*front_door"):
        load_spec(folder)


# --------------------------------------------------------------- check_* with overlapping roles

FRONT_DOOR = CausalGraph("Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X")


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: check_front_door(FRONT_DOOR, "Y", "X", ["Z"], ["Z"]), ["Z cannot be both a mech"]),
        (lambda: check_front_door(FRONT_DOOR, "Y", "X", ["Z"], ["Y"]), ["Y cannot be both the c"]),
        (lambda: check_front_door(FRONT_DOOR, "Y", "X", ["X"]), ["X cannot be both the cause/"]),
        (lambda: check_front_door(FRONT_DOOR, "Y", "Y", ["Z"]), ["must be different nodes"]),
        (lambda: check_back_door(FRONT_DOOR, "Y", "X", ["X"]), ["X cannot be both the cause/"]),
        (lambda: check_back_door(FRONT_DOOR, "Y", "Y"), ["must be different nodes"]),
        (lambda: check_front_door(FRONT_DOOR, "Y", "X", ["Q"]), ["the mechanism 'Q' is not a"]),
    ],
)
def test_check_functions_with_overlapping_roles(call: Any, words: list[str]) -> None:
    # Before: networkx's NetworkXError / NodeNotFound ("The sets are not disjoint").
    with pytest.raises(ValueError) as info:
        call()
    for word in words:
        assert word in str(info.value), str(info.value)


# ---------------------------------------------------------------- property tests

NAMES = ["A", "B", "C", "Y", "X", "Z1", "_w.2", '"a b"', '"q\\"x"', '"é"']
TOKENS = [
    *NAMES, "->", "<-", "<->", "-", "<", ">", "[", "]", ",", ";", "\n", " ", "#c\n",
    "cause", "effect", "mechanism", "covariate", "foo", '"', '""', "{", "}", "é", "\x00",
    "\\", "1", "\t",
]


def _outcome(spec: str) -> None:
    """The only allowed outcomes: a graph that round-trips, or the package's error."""
    try:
        graph = CausalGraph.from_string(spec)
    except (GraphSyntaxError, ValueError) as err:
        assert type(err).__module__ in ("causal_mixtures.exceptions", "builtins"), type(err)
        assert str(err)
        return
    again = CausalGraph.from_string(graph.to_string())
    assert again == graph, (spec, graph.to_string())
    assert again.to_string() == graph.to_string()


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))
def test_random_token_strings(spec: str) -> None:
    _outcome(spec)


@settings(deadline=None, max_examples=300)
@given(st.text(max_size=40))
def test_random_text(spec: str) -> None:
    _outcome(spec)


ROLE = st.sampled_from(["", " [cause]", " [effect]", " [mechanism]", " [covariate]", " [x]"])


@st.composite
def _graph_text(draw: st.DrawFn) -> str:
    """Statements of well-formed pieces in random combinations (edges, chains, roles)."""
    statements = []
    for _ in range(draw(st.integers(0, 8))):
        chain = draw(st.lists(st.sampled_from(NAMES[:7]), min_size=1, max_size=4))
        ops = draw(st.lists(st.sampled_from(["->", "<-", "<->"]), min_size=len(chain) - 1,
                            max_size=len(chain) - 1))
        parts = [chain[0] + draw(ROLE)]
        for op, name in zip(ops, chain[1:], strict=True):
            parts += [op, name + draw(ROLE)]
        statements.append(" ".join(parts))
    return draw(st.sampled_from(["; ", "\n", ";\n"])).join(statements)


@settings(deadline=None, max_examples=400)
@given(_graph_text())
def test_random_graphs(spec: str) -> None:
    _outcome(spec)


@settings(deadline=None, max_examples=200)
@given(
    st.lists(st.tuples(st.sampled_from("ABCDEF"), st.sampled_from("ABCDEF")), max_size=8),
    st.lists(st.tuples(st.sampled_from("ABCDEF"), st.sampled_from("ABCDEF")), max_size=4),
    st.dictionaries(st.sampled_from("ABCDEF"), st.sampled_from(
        ["cause", "effect", "mechanism", "covariate", "label"]), max_size=4),
)
def test_random_edge_lists(directed: list, bidirected: list, roles: dict) -> None:
    try:
        graph = CausalGraph.from_edges(directed=directed, bidirected=bidirected, roles=roles)
    except ValueError as err:
        assert re.search(r"self loop|cycle|unknown role", str(err)), err
        return
    assert CausalGraph.from_string(graph.to_string()) == graph
