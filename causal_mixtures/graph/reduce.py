"""Front-door reducibility: super-nodes that satisfy the front-door criterion for sets.

A triple of disjoint node sets (``C*`` around the cause, ``M*`` the mechanism super-node,
``E*`` around the effect) is *admissible* when it satisfies the front-door criterion at the
level of the sets. :func:`check_reduction` lists the conditions a triple violates, with the
offending path; :func:`find_reduction` finds an admissible triple for a cause and an effect
by an exact, pruned search. ``docs/identification.md`` states the criterion, proves the
pruning rules and says what each triple identifies.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import networkx as nx

from causal_mixtures.graph.core import CausalGraph
from causal_mixtures.graph.paths import first_states, format_path, open_search, trace

__all__ = ["MAX_CANDIDATES", "FrontDoorReduction", "check_reduction", "find_reduction"]

#: The default limit on the candidate nodes of :func:`find_reduction` (3^20 triples at most).
MAX_CANDIDATES = 20


def _sub(names: Sequence[str]) -> str:
    """Subscript of a sum: ``Z`` for a one-letter name, ``{Z1, Z2}`` otherwise."""
    text = ", ".join(names)
    return text if len(names) == 1 and len(text.rstrip("'")) == 1 else "{" + text + "}"


def _fmt_set(names: Iterable[str]) -> str:
    return "{" + ", ".join(names) + "}"


@dataclass(frozen=True)
class FrontDoorReduction:
    """An admissible triple of super-nodes for ``p(effect | do(cause))``.

    Parameters
    ----------
    cause, effect : str
        The nodes whose effect is wanted: ``p(effect | do(cause))``.
    cause_set : tuple of str
        The cause super-node ``C*`` (the cause first, then the other nodes in graph order).
    mechanism_set : tuple of str
        The mechanism super-node ``M*`` (graph order).
    effect_set : tuple of str
        The effect super-node ``E*`` (the effect first).
    candidates_checked : int
        How many candidate mechanism sets the search tested (0 when the triple was given).

    Notes
    -----
    The triple satisfies the front-door criterion for sets, so ``p(E* | do(C*))`` is the
    formula :attr:`set_expression`. When ``C*`` holds nodes besides the cause (the
    :attr:`adjustment` nodes ``A``, none of them a descendant of the cause), ``M*`` also
    satisfies the conditional front-door criterion for the cause and the effect given ``A``,
    and ``p(effect | do(cause))`` is the conditional front-door formula with covariates
    ``A`` (``docs/identification.md``, theorem 2).
    """

    cause: str
    effect: str
    cause_set: tuple[str, ...]
    mechanism_set: tuple[str, ...]
    effect_set: tuple[str, ...]
    candidates_checked: int = 0

    @property
    def adjustment(self) -> tuple[str, ...]:
        """The nodes of the cause super-node other than the cause (covariates of the fit)."""
        return tuple(n for n in self.cause_set if n != self.cause)

    @property
    def effect_extras(self) -> tuple[str, ...]:
        """The nodes of the effect super-node other than the effect (marginalised out)."""
        return tuple(n for n in self.effect_set if n != self.effect)

    @property
    def super_nodes(self) -> dict[str, tuple[str, ...]]:
        """``{"cause": C*, "mechanism": M*, "effect": E*}``."""
        return {
            "cause": self.cause_set,
            "mechanism": self.mechanism_set,
            "effect": self.effect_set,
        }

    @property
    def set_expression(self) -> str:
        """The front-door formula for the sets: ``p(E* | do(C*)) = Σ_M* p(M* | C*) ...``."""
        c, m, e = (", ".join(s) for s in (self.cause_set, self.mechanism_set, self.effect_set))
        primed = [f"{n}'" for n in self.cause_set]
        cp = ", ".join(primed)
        return (
            f"p({e} | do({c})) = Σ_{_sub(self.mechanism_set)} p({m} | {c}) "
            f"Σ_{_sub(primed)} p({e} | {cp}, {m}) p({cp})"
        )

    def __str__(self) -> str:
        return (
            f"front-door reduction for p({self.effect} | do({self.cause})): cause super-node "
            f"{_fmt_set(self.cause_set)}, mechanism super-node {_fmt_set(self.mechanism_set)}, "
            f"effect super-node {_fmt_set(self.effect_set)}\n  {self.set_expression}"
        )


# --------------------------------------------------------------------------------------
# The criterion for sets
# --------------------------------------------------------------------------------------


def _observed(graph: CausalGraph) -> nx.DiGraph:
    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    dag.add_edges_from(graph.directed)
    return dag


def _unblocked_directed(
    obs: nx.DiGraph, sources: Iterable[str], targets: set[str], avoid: set[str]
) -> list[str] | None:
    """A shortest directed path from ``sources`` to ``targets`` avoiding ``avoid``, or None."""
    parent: dict[str, str | None] = {}
    queue: deque[str] = deque()
    for s in sources:
        parent[s] = None
        queue.append(s)
    while queue:
        node = queue.popleft()
        if node in targets and parent[node] is not None:
            path = [node]
            while parent[path[-1]] is not None:
                path.append(parent[path[-1]])  # type: ignore[arg-type]
            return path[::-1]
        for child in obs.successors(node):
            if child not in parent and child not in avoid:
                parent[child] = node
                queue.append(child)
    return None


def _check_sets(
    graph: CausalGraph, sets: Sequence[tuple[str, Sequence[str]]]
) -> list[tuple[str, ...]]:
    out = []
    seen: dict[str, str] = {}
    for what, names in sets:
        if isinstance(names, str) or not isinstance(names, Iterable):
            raise TypeError(
                f"{what} must be a list of node names, got {type(names).__name__} "
                f"{names!r:.60}; pass e.g. {what}=['Z']"
            )
        names = tuple(dict.fromkeys(names))
        if not names:
            raise ValueError(f"{what} must hold at least one node; got an empty set")
        for n in names:
            if n not in graph:
                raise ValueError(
                    f"{what} names {n!r}, which is not a node of the graph; its nodes are "
                    f"{', '.join(graph.nodes)}"
                )
            if n in seen:
                raise ValueError(
                    f"{n!r} is in both {seen[n]} and {what}: the super-nodes must be disjoint"
                )
            seen[n] = what
        out.append(names)
    return out


def check_reduction(
    graph: CausalGraph,
    cause_set: Sequence[str],
    mechanism_set: Sequence[str],
    effect_set: Sequence[str],
) -> list[str]:
    """List the conditions of the front-door criterion for sets that a triple violates.

    The conditions, for the cause super-node ``C*``, the mechanism super-node ``M*`` and the
    effect super-node ``E*``:

    1. ``M*`` intercepts every directed path from ``C*`` to ``E*``;
    2. no back-door path from ``C*`` to ``M*`` is open (given the empty set);
    3. every back-door path from ``M*`` to ``E*`` is blocked by ``C*``.

    Parameters
    ----------
    graph : CausalGraph
        The causal graph; bidirected edges are latent confounders.
    cause_set, mechanism_set, effect_set : sequence of str
        Three non-empty, disjoint sets of nodes.

    Returns
    -------
    list of str
        One sentence per violation, naming the path; empty if the triple is admissible.

    Raises
    ------
    ValueError
        If a set is empty, names an unknown node, or the sets overlap.
    TypeError
        If a set is a bare string instead of a list.

    Examples
    --------
    >>> g = CausalGraph("Y -> M1 -> M2 -> X; Y <-> X; M1 <-> M2")
    >>> check_reduction(g, ["Y"], ["M1", "M2"], ["X"])
    []
    >>> check_reduction(g, ["Y"], ["M1"], ["X"])[0][:40]
    'the back-door path M1 <-> M2 -> X from M'
    """
    if not isinstance(graph, CausalGraph):
        raise TypeError(f"check_reduction expects a CausalGraph, got {type(graph).__name__}")
    cs, ms, es = _check_sets(
        graph,
        [("cause_set", cause_set), ("mechanism_set", mechanism_set), ("effect_set", effect_set)],
    )
    dag = graph.to_networkx()
    problems: list[str] = []
    c_set, m_set = set(cs), set(ms)
    label = _fmt_set(ms)

    path = _unblocked_directed(_observed(graph), cs, set(es), avoid=m_set)
    if path is not None:
        problems.append(
            f"there is a directed path {' -> '.join(path)} that does not go through the "
            f"mechanism super-node {label} (condition 1: {label} must intercept every directed "
            f"path from {_fmt_set(cs)} to {_fmt_set(es)})."
        )
    for c in cs:
        parent, _ = open_search(dag, c, set(), c_set)
        reached = first_states(parent)
        for m in ms:
            if m in reached:
                shown = format_path(dag, trace(c, parent, reached[m]))
                problems.append(
                    f"the back-door path {shown} from {c} to {m} is open (condition 2: no "
                    f"back-door path from the cause super-node to {label} may be open)."
                )
    for e in es:
        parent, _ = open_search(dag, e, c_set, m_set)
        reached = first_states(parent)
        for m in ms:
            if m in reached:
                shown = format_path(dag, trace(e, parent, reached[m])[::-1])
                problems.append(
                    f"the back-door path {shown} from {m} to {e} is not blocked by "
                    f"{_fmt_set(cs)} (condition 3: the cause super-node must block every "
                    f"back-door path from {label} to the effect super-node)."
                )
    return problems


# --------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------


def _node(graph: CausalGraph, role: str, given: str | None) -> str:
    if given is None:
        return graph.cause if role == "cause" else graph.effect
    if not isinstance(given, str) or given not in graph:
        raise ValueError(
            f"the {role} {given!r} is not a node of the graph; its nodes are "
            f"{', '.join(graph.nodes)}"
        )
    return given


def find_reduction(
    graph: CausalGraph,
    cause: str | None = None,
    effect: str | None = None,
    *,
    max_candidates: int = MAX_CANDIDATES,
) -> FrontDoorReduction | None:
    """Find an admissible triple of super-nodes for ``p(effect | do(cause))``, if any.

    The search is exact over triples ``(C*, M*, E*)`` with ``C* = {cause} ∪ A``, where ``A``
    holds ancestors of the effect that are not descendants of the cause, ``E* = {effect}``
    and ``M*`` any non-empty set of the other nodes; ``docs/identification.md`` proves that
    fixing ``E*`` and keeping ``M*`` among the effect's ancestors loses no triple.
    Candidates are tried by increasing ``|A|``, then increasing ``|M*|`` (graph order
    within a size), so the first triple found has the fewest extra cause nodes and then the
    smallest mechanism super-node.

    Pruning: for each ``A``, every node that a back-door path from ``C*`` reaches is dropped
    from the candidates of ``M*`` (condition 2 holds for a set iff it holds for each of its
    nodes), and ``A`` is skipped when even all remaining candidates together do not
    intercept the directed paths (condition 1 is monotone in ``M*``).

    Parameters
    ----------
    graph : CausalGraph
        The causal graph; its roles are ignored apart from supplying defaults for ``cause``
        and ``effect``.
    cause, effect : str, optional
        The nodes; default the graph's nodes with the roles ``cause`` and ``effect``.
    max_candidates : int, default=20
        The most candidate nodes (see Notes) the exhaustive search accepts.

    Returns
    -------
    FrontDoorReduction or None
        None when no admissible triple exists in the search space, and when the cause is
        not an ancestor of the effect (then ``p(effect | do(cause)) = p(effect)`` needs no
        mechanism).

    Raises
    ------
    ValueError
        If the cause or effect is missing or unknown, or they are the same node, or the
        graph has more than ``max_candidates`` candidate nodes (the message says so and what
        to do instead: declare the mechanisms, or raise the limit).

    Notes
    -----
    Complexity: with ``k`` candidate nodes (ancestors of the effect other than the cause
    and the effect), each candidate is in ``A``, in ``M*`` or in neither, so at most
    ``3^k`` triples are tested, each in O(V + E) (three breadth-first searches).
    Exponential in the worst case; the pruning keeps graphs of up to ~15 nodes well under
    a second in practice (``tests/test_reducibility.py`` measures it).

    Examples
    --------
    >>> g = CausalGraph("Y [cause]; X [effect]; Y -> M1 -> M2 -> X; Y <-> X; M1 <-> M2")
    >>> find_reduction(g).mechanism_set
    ('M2',)
    """
    if not isinstance(graph, CausalGraph):
        raise TypeError(f"find_reduction expects a CausalGraph, got {type(graph).__name__}")
    y = _node(graph, "cause", cause)
    x = _node(graph, "effect", effect)
    if y == x:
        raise ValueError(f"the cause and the effect must be different nodes; both are {y!r}")
    obs = _observed(graph)
    below_y = nx.descendants(obs, y) | {y}
    above_x = nx.ancestors(obs, x)
    if y not in above_x:
        return None
    order = [n for n in graph.nodes if n in above_x and n != y]
    # Condition 1 is monotone in M*: if all candidates together leave a directed path from the
    # cause to the effect open (a direct edge, say), no triple exists. One pass, O(V + E).
    if _unblocked_directed(obs, {y}, {x}, set(order)) is not None:
        return None
    if len(order) > max_candidates:
        raise ValueError(
            f"the front-door reduction search would test up to 3^{len(order)} triples: the "
            f"graph has {len(order)} candidate nodes (ancestors of {x} other than {y}), more "
            f"than max_candidates={max_candidates}. Declare the mechanisms (`Z [mechanism]`) "
            "to have them checked instead, or pass a larger max_candidates."
        )
    dag = graph.to_networkx()
    extras = [n for n in order if n not in below_y]
    checked = 0
    for k in range(len(extras) + 1):
        for adjustment in itertools.combinations(extras, k):
            c_set = {y, *adjustment}
            reached: set[str] = set()
            for c in c_set:
                reached |= set(first_states(open_search(dag, c, set(), c_set)[0]))
            allowed = [n for n in order if n not in c_set and n not in reached]
            if _unblocked_directed(obs, c_set, {x}, set(allowed)) is not None:
                continue
            for size in range(1, len(allowed) + 1):
                for ms in itertools.combinations(allowed, size):
                    checked += 1
                    m_set = set(ms)
                    if _unblocked_directed(obs, c_set, {x}, m_set) is not None:
                        continue
                    hits = first_states(open_search(dag, x, c_set, m_set)[0])
                    if not m_set & hits.keys():
                        return FrontDoorReduction(
                            cause=y,
                            effect=x,
                            cause_set=(y, *adjustment),
                            mechanism_set=ms,
                            effect_set=(x,),
                            candidates_checked=checked,
                        )
    return None
