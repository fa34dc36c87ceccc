"""Whether ``p(effect | do(cause))`` is identifiable at all, and a hedge when it is not.

Tian and Pearl's decomposition: with ``D`` the ancestors of the effect once the cause is
removed, ``p(effect | do(cause))`` is identifiable iff every c-component of ``G[D]`` is
identifiable from the c-component of ``G`` that holds it, which a purely graphical
recursion decides (Tian & Pearl 2002; complete by Shpitser & Pearl 2006 and Huang &
Valtorta 2006). When the recursion fails it stops at a pair ``F' ⊂ F`` of c-components, the
hedge of Shpitser & Pearl, which :class:`Hedge` records. No formula is built: the formula
of a graph this module calls identifiable but that is not front-door reducible is outside
the estimators' reach anyway (``docs/identification.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from causal_mixtures.graph.core import CausalGraph

__all__ = ["Hedge", "find_hedge", "is_identifiable", "not_reducible_message"]


@dataclass(frozen=True)
class Hedge:
    """Two nested c-components that block the identification of ``p(effect | do(cause))``.

    Parameters
    ----------
    cause, effect : str
        The query ``p(effect | do(cause))``.
    f : tuple of str
        The larger c-component ``F``: it holds the cause, and every node of ``F`` is an
        ancestor (inside ``G[F]``) of ``F'``.
    f_prime : tuple of str
        The smaller c-component ``F' ⊂ F``: no cause, only ancestors of the effect.
    """

    cause: str
    effect: str
    f: tuple[str, ...]
    f_prime: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"hedge for p({self.effect} | do({self.cause})): F = {{{', '.join(self.f)}}} ⊃ "
            f"F' = {{{', '.join(self.f_prime)}}}"
        )


def _ancestors_within(obs: nx.DiGraph, nodes: set[str], targets: set[str]) -> set[str]:
    """``targets`` and their ancestors in the subgraph induced by ``nodes``."""
    seen = set(targets)
    stack = list(seen)
    while stack:
        for p in obs.predecessors(stack.pop()):
            if p in nodes and p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def _c_components(graph: CausalGraph, nodes: set[str]) -> list[set[str]]:
    """The c-components (bidirected-connected sets) of the subgraph induced by ``nodes``."""
    ug = nx.Graph()
    ug.add_nodes_from(nodes)
    ug.add_edges_from((a, b) for a, b in graph.bidirected if a in nodes and b in nodes)
    return [set(c) for c in nx.connected_components(ug)]


def _component_of(graph: CausalGraph, nodes: set[str], member: set[str]) -> set[str]:
    for comp in _c_components(graph, nodes):
        if member <= comp:
            return comp
    raise AssertionError("a c-connected set lies in one c-component")  # pragma: no cover


def find_hedge(graph: CausalGraph, cause: str, effect: str) -> Hedge | None:
    """Return a hedge for ``p(effect | do(cause))``, or None if the effect is identifiable.

    Parameters
    ----------
    graph : CausalGraph
        The causal graph; bidirected edges are latent confounders.
    cause, effect : str
        Two different nodes of the graph.

    Returns
    -------
    Hedge or None

    Raises
    ------
    ValueError
        If a node is unknown or the two are the same.

    Examples
    --------
    >>> find_hedge(CausalGraph("Y -> X; Y <-> X"), "Y", "X").f
    ('Y', 'X')
    >>> find_hedge(CausalGraph("Y -> Z -> X; Y <-> X"), "Y", "X") is None
    True
    """
    for role, node in (("cause", cause), ("effect", effect)):
        if not isinstance(node, str) or node not in graph:
            raise ValueError(
                f"the {role} {node!r} is not a node of the graph; its nodes are "
                f"{', '.join(graph.nodes)}"
            )
    if cause == effect:
        raise ValueError(f"the cause and the effect must be different nodes; both are {cause!r}")
    obs = nx.DiGraph()
    obs.add_nodes_from(graph.nodes)
    obs.add_edges_from(graph.directed)
    everything = set(graph.nodes)
    d = _ancestors_within(obs, everything - {cause}, {effect})
    rank = {n: i for i, n in enumerate(graph.nodes)}
    for c in _c_components(graph, d):
        t = _component_of(graph, everything, c)
        while True:
            a = _ancestors_within(obs, t, c)
            if a == c:
                break
            if a == t:
                return Hedge(
                    cause=cause,
                    effect=effect,
                    f=tuple(sorted(t, key=rank.__getitem__)),
                    f_prime=tuple(sorted(c, key=rank.__getitem__)),
                )
            t = _component_of(graph, a, c)
    return None


def is_identifiable(graph: CausalGraph, cause: str, effect: str) -> bool:
    """Whether ``p(effect | do(cause))`` is identifiable from the observed distribution.

    Parameters
    ----------
    graph : CausalGraph
    cause, effect : str

    Returns
    -------
    bool
        The verdict of the (complete) ID algorithm, as decided by :func:`find_hedge`.
    """
    return find_hedge(graph, cause, effect) is None


def not_reducible_message(graph: CausalGraph, cause: str, effect: str) -> str:
    """Say why no front-door reduction identifies ``p(effect | do(cause))``, with ID's verdict.

    Parameters
    ----------
    graph : CausalGraph
    cause, effect : str

    Returns
    -------
    str
        Either that ID identifies the effect by another formula that the estimators do not
        fit, or that no formula identifies it, with the hedge.
    """
    hedge = find_hedge(graph, cause, effect)
    q = f"p({effect} | do({cause}))"
    obs = nx.DiGraph()
    obs.add_nodes_from(graph.nodes)
    obs.add_edges_from(graph.directed)
    if cause not in nx.ancestors(obs, effect):
        return (
            f"No front-door reduction is needed or possible: {cause} is not an ancestor of "
            f"{effect}, so {q} = p({effect}), which the ID algorithm identifies; the "
            "estimators do not fit this case (there is no causal path to deconfound)."
        )
    if hedge is None:
        return (
            f"No front-door reduction exists: {q} is identified by the ID algorithm, but by a "
            "formula that is not front-door reducible, so the estimators (front-door, "
            "conditional front-door and back-door weights) cannot fit it."
        )
    return (
        f"No front-door reduction exists, and {q} is not identifiable by any formula: the "
        f"graph contains the {hedge}."
    )
