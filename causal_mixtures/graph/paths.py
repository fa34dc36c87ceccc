"""Open (d-connecting) paths of a DAG, found by one breadth-first search.

The search walks states (node, entered along an edge into it) and so decides at each node
whether it is a collider; it gives d-connection from a source to every node in O(V + E),
and the shortest open path to each, which :mod:`causal_mixtures.graph.identify` names in
its messages. Edges out of a set of nodes can be cut (Pearl's G with those nodes
underlined) without copying the graph.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import networkx as nx

__all__ = [
    "State",
    "first_states",
    "format_path",
    "open_path",
    "open_search",
    "trace",
    "upward_closure",
]

# A state of the path search: a node and whether it was entered along an edge into it
# (``prev -> node``); that, with the next step, says whether the node is a collider.
State = tuple[str, bool]


def upward_closure(dag: nx.DiGraph, nodes: Iterable[str], cut: set[str]) -> set[str]:
    """``nodes`` and their ancestors in ``dag`` without the edges out of ``cut`` (one pass)."""
    seen = set(nodes)
    stack = list(seen)
    while stack:
        for p in dag.predecessors(stack.pop()):
            if p not in cut and p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def open_search(
    dag: nx.DiGraph,
    source: str,
    given: set[str],
    cut: set[str],
    stop: set[str] | None = None,
) -> tuple[dict[State, State | None], State | None]:
    """Breadth-first search over the paths from ``source`` that are open given ``given``.

    The graph searched is ``dag`` without the edges out of ``cut`` (Pearl's G with the cut
    nodes underlined). Each state is visited once, so the search is O(V + E). Neighbours are
    taken parents first, then children, in ``dag``'s order; the state first reached is the
    end of the shortest, first-in-that-order open path to it (shortest open walks never
    repeat a node, so they are paths). Returns the parent of every state reached (``None``
    for the source's neighbours) and, if ``stop`` is given, the first state popped whose
    node is in ``stop`` (None if there is none; the search then ends there).
    """
    ancestors_of_given = upward_closure(dag, given, cut)
    parent: dict[State, State | None] = {}
    queue: deque[State] = deque()

    def push(state: State, prev: State | None) -> None:
        if state[0] != source and state not in parent:
            parent[state] = prev
            queue.append(state)

    for p in dag.predecessors(source):
        if p not in cut:
            push((p, False), None)
    if source not in cut:
        for c in dag.successors(source):
            push((c, True), None)
    while queue:
        state = queue.popleft()
        node, entered = state
        if stop is not None and node in stop:
            return parent, state
        # Towards a parent: ``node`` is a collider iff it was entered along an edge into it.
        if (node in ancestors_of_given) if entered else (node not in given):
            for p in dag.predecessors(node):
                if p not in cut:
                    push((p, False), state)
        if node not in given and node not in cut:
            for c in dag.successors(node):
                push((c, True), state)
    return parent, None


def trace(source: str, parent: dict[State, State | None], state: State) -> list[str]:
    """The path from ``source`` to ``state`` recorded by :func:`open_search`."""
    path: list[str] = []
    current: State | None = state
    while current is not None:
        path.append(current[0])
        current = parent[current]
    path.append(source)
    return path[::-1]


def first_states(parent: dict[State, State | None]) -> dict[str, State]:
    """The first state reached for each node (the search records states in BFS order)."""
    first: dict[str, State] = {}
    for state in parent:
        first.setdefault(state[0], state)
    return first


def open_path(
    dag: nx.DiGraph, source: str, targets: set[str], given: set[str], cut: set[str]
) -> list[str] | None:
    """A shortest path from ``source`` to one of ``targets`` that is open given ``given``.

    ``cut`` holds ``source`` (or the mechanisms), so every path found is a back-door path;
    returns None if every such path is blocked.
    """
    parent, hit = open_search(dag, source, given, cut, stop=targets)
    return None if hit is None else trace(source, parent, hit)


def format_path(dag: nx.DiGraph, path: list[str]) -> str:
    """Write a path of the latent-augmented DAG with each ``a <- U -> b`` as ``a <-> b``."""
    out = [path[0]]
    i = 0
    while i < len(path) - 1:
        a, b = path[i], path[i + 1]
        if dag.nodes[b].get("latent") and i + 2 < len(path):
            out += ["<->", path[i + 2]]
            i += 2
            continue
        out += ["->" if dag.has_edge(a, b) else "<-", b]
        i += 1
    return " ".join(out)
