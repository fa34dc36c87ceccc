"""Identification: from a causal graph and its roles to an estimand and its weights.

:func:`identify` checks the front-door or back-door criterion (by d-separation on the graph
with its latent confounders made explicit) and returns an :class:`Estimand` saying which
conditional densities the causal weights need. ``docs/graphs.md`` states the criteria.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import networkx as nx

from causal_mixtures.exceptions import NotIdentifiableError
from causal_mixtures.graph.core import CausalGraph
from causal_mixtures.graph.hedge import not_reducible_message
from causal_mixtures.graph.paths import (
    first_states,
    format_path,
    open_path,
    open_search,
    trace,
    upward_closure,
)
from causal_mixtures.graph.reduce import FrontDoorReduction, find_reduction

__all__ = [
    "CRITERIA",
    "ESTIMAND_KINDS",
    "Estimand",
    "check_back_door",
    "check_front_door",
    "identify",
]

#: The kinds of estimand :func:`identify` can return: which weights the estimators compute.
ESTIMAND_KINDS: tuple[str, ...] = ("front_door", "back_door", "front_door_covariates")

#: The criteria by which an estimand is found (:attr:`Estimand.criterion`), and ``"none"``.
CRITERIA: tuple[str, ...] = (
    "front_door",
    "conditional_front_door",
    "back_door",
    "front_door_reducible",
    "none",
)
_CRITERION_OF_KIND = {
    "front_door": "front_door",
    "front_door_covariates": "conditional_front_door",
    "back_door": "back_door",
}

# Graphs up to this many nodes get the front-door reduction searched for the hint of a
# failed criterion with declared roles (the search is exponential in the worst case).
_HINT_SEARCH_NODES = 16

# At most this many mechanisms (or covariates) per failed condition get a sentence of their
# own naming a path; the rest are listed in one sentence, so messages stay O(V + E) long.
_MAX_NAMED = 10


@dataclass(frozen=True)
class Estimand:
    """How ``p(x | do(y))`` is identified from a causal graph, and the weights it implies.

    Parameters
    ----------
    kind : {"front_door", "back_door", "front_door_covariates"}
        The identification strategy.
    cause : str
        The node ``Y`` intervened on (the label).
    effect : str
        The node ``X`` whose interventional distribution is estimated (the features).
    mechanisms : tuple of str
        The mechanism nodes ``Z`` (empty for a back-door estimand); several mechanisms are
        treated jointly as one vector ``z``.
    covariates : tuple of str
        The covariate nodes ``W`` adjusted for (possibly empty).
    expression : str
        The identifying formula with the graph's node names, e.g.
        ``"p(X | do(Y)) = Σ_Z p(Z | Y) Σ_Y' p(X | Y', Z) p(Y')"``.
    weight_formula : str
        The per-sample weight for intervention value ``y``, e.g.
        ``"w_n(y) = p(z_n | y) / p(z_n | y_n)"``.
    required_roles : tuple of str
        The roles whose data the estimator must receive, e.g.
        ``("cause", "effect", "mechanism")``.
    density_of : str
        The role of the variable whose conditional density the weights need
        (``"mechanism"`` for front-door kinds, ``"cause"`` for back-door).
    density_given : tuple of str
        The roles it is conditioned on: ``("cause",)`` (front door),
        ``("covariate", "cause")`` (front door with covariates), ``("covariate",)`` or
        ``()`` (back door).
    reduction : FrontDoorReduction or None, default=None
        For a graph declared with only a cause and an effect, the super-nodes found by the
        front-door reduction (:func:`~causal_mixtures.graph.reduce.find_reduction`); the
        mechanisms are then its mechanism super-node and the covariates the other nodes of
        its cause super-node. None when the roles were declared.

    See Also
    --------
    identify : Build an :class:`Estimand` from a :class:`~causal_mixtures.CausalGraph`.
    """

    kind: str
    cause: str
    effect: str
    mechanisms: tuple[str, ...]
    covariates: tuple[str, ...]
    expression: str
    weight_formula: str
    required_roles: tuple[str, ...]
    density_of: str
    density_given: tuple[str, ...]
    reduction: FrontDoorReduction | None = None

    @property
    def criterion(self) -> str:
        """The criterion that identified the effect: one of :data:`CRITERIA` but ``"none"``."""
        return "front_door_reducible" if self.reduction else _CRITERION_OF_KIND[self.kind]

    def __str__(self) -> str:
        parts = [f"{self.cause} (cause)", f"{self.effect} (effect)"]
        if self.mechanisms:
            parts.append(f"{_fmt_set(self.mechanisms)} (mechanism)")
        if self.covariates:
            parts.append(f"{_fmt_set(self.covariates)} (covariate)")
        text = (
            f"{self.kind} estimand for {', '.join(parts)}\n"
            f"  {self.expression}\n"
            f"  weights: {self.weight_formula}"
        )
        if self.reduction is not None:
            text += f"\n  found by front-door reduction: {self.reduction.set_expression}"
        return text


# --------------------------------------------------------------------------------------
# Small graph helpers
# --------------------------------------------------------------------------------------


def _fmt_set(names: Iterable[str]) -> str:
    return "{" + ", ".join(names) + "}"


def _fmt_blockers(names: Sequence[str]) -> str:
    """``Y`` for one node, ``{Y, W}`` for several, ``the empty set`` for none."""
    if not names:
        return "the empty set"
    return names[0] if len(names) == 1 else _fmt_set(names)


def _sub(names: Sequence[str]) -> str:
    """Subscript of a sum: ``Σ_Z`` for a one-letter name, ``Σ_{Z1, Z2}`` otherwise."""
    text = ", ".join(names)
    return text if len(names) == 1 and len(text.rstrip("'")) == 1 else "{" + text + "}"




def _join(sentences: Sequence[str]) -> str:
    """Join problem sentences, capitalising those that start a new sentence."""
    out = []
    for i, sentence in enumerate(sentences):
        if i and sentence.startswith(("the ", "there ")):
            sentence = sentence[0].upper() + sentence[1:]
        out.append(sentence)
    return " ".join(out)


def _collider_note(dag: nx.DiGraph, path: Sequence[str], given: set[str], cut: set[str]) -> str:
    """Say which conditioned colliders open ``path`` (empty string if none).

    A collider opens the path when it or one of its descendants (in ``dag`` without the
    edges out of ``cut``) is in ``given``, i.e. when it is in the upward closure of ``given``.
    """
    opened_by_given = upward_closure(dag, given, cut)
    opened = [
        n
        for i, n in enumerate(path[1:-1], start=1)
        if dag.has_edge(path[i - 1], n)
        and dag.has_edge(path[i + 1], n)
        and not dag.nodes[n].get("latent")
        and n in opened_by_given
    ]
    if not opened:
        return ""
    return f" (conditioning on {', '.join(opened)}, a collider on this path, opens it)"


def _latent_pair(bidirected: set[tuple[str, str]], a: str, b: str) -> bool:
    return (min(a, b), max(a, b)) in bidirected


def _check_nodes(graph: CausalGraph, role: str, names: Iterable[str]) -> tuple[str, ...]:
    names = tuple(names)
    for name in names:
        if name not in graph:
            raise ValueError(
                f"the {role} {name!r} is not a node of the graph; its nodes are "
                f"{', '.join(graph.nodes)}"
            )
    return names


def _check_disjoint(y: str, x: str, zs: Sequence[str], ws: Sequence[str]) -> None:
    """Raise ValueError if the cause, effect, mechanisms and covariates overlap."""
    if y == x:
        raise ValueError(f"the cause and the effect must be different nodes; both are {y!r}")
    for role, names in (("mechanism", zs), ("covariate", ws)):
        clash = {y, x} & set(names)
        if clash:
            raise ValueError(
                f"{', '.join(sorted(clash))} cannot be both the cause/effect and a {role}"
            )
    if set(zs) & set(ws):
        raise ValueError(
            f"{', '.join(sorted(set(zs) & set(ws)))} cannot be both a mechanism and a covariate"
        )


def _directed_graph(graph: CausalGraph, avoid: set[str]) -> nx.DiGraph:
    """The observed directed edges of ``graph`` without the nodes in ``avoid``."""
    dag = nx.DiGraph()
    dag.add_nodes_from(n for n in graph.nodes if n not in avoid)
    dag.add_edges_from((a, b) for a, b in graph.directed if a not in avoid and b not in avoid)
    return dag


def _shortest(dag: nx.DiGraph, source: str, target: str) -> str | None:
    try:
        return " -> ".join(nx.shortest_path(dag, source, target))
    except nx.NetworkXNoPath:
        return None


def _directed_path(graph: CausalGraph, source: str, target: str, avoid: set[str]) -> str | None:
    return _shortest(_directed_graph(graph, avoid), source, target)


def _descendant_problems(
    graph: CausalGraph, covariates: Sequence[str], roots: Sequence[tuple[str, str]]
) -> list[str]:
    if not covariates:
        return []
    dag = _directed_graph(graph, avoid=set())
    # The first root (in order) each node descends from, in one pass over the graph: a node
    # already claimed by an earlier root has all its descendants claimed by that root too.
    first_root: dict[str, int] = {}
    for i, (_, node) in enumerate(roots):
        if node in first_root:
            continue
        first_root[node] = i
        stack = [node]
        while stack:
            for child in dag.successors(stack.pop()):
                if child not in first_root:
                    first_root[child] = i
                    stack.append(child)
    problems = []
    below = [w for w in covariates if w in first_root]
    for w in below[:_MAX_NAMED]:
        role, node = roots[first_root[w]]
        problems.append(
            f"the covariate {w} is a descendant of the {role} {node} "
            f"({_shortest(dag, node, w)}), so adjusting for it would bias the estimate: "
            f"covariates must not be affected by the {role}."
        )
    if len(below) > _MAX_NAMED:
        problems.append(
            f"the covariates {_fmt_set(below[_MAX_NAMED:])} are descendants of the "
            f"{' or '.join(sorted({roots[first_root[w]][0] for w in below[_MAX_NAMED:]}))} "
            "too."
        )
    return problems


# --------------------------------------------------------------------------------------
# The criteria
# --------------------------------------------------------------------------------------


def check_front_door(
    graph: CausalGraph,
    cause: str,
    effect: str,
    mechanisms: Sequence[str],
    covariates: Sequence[str] = (),
) -> list[str]:
    """List the conditions of the (conditional) front-door criterion that fail.

    Parameters
    ----------
    graph : CausalGraph
        The causal graph; bidirected edges are latent confounders.
    cause, effect : str
        The nodes ``Y`` (intervened on) and ``X``.
    mechanisms : sequence of str
        The candidate front-door set ``Z`` (non-empty).
    covariates : sequence of str, default=()
        Observed covariates ``W`` conditioned on in conditions 2 and 3.

    Returns
    -------
    list of str
        One sentence per violated condition, naming the offending path; empty if ``Z``
        satisfies the criterion.

    Raises
    ------
    ValueError
        If a named node is not in the graph, or ``mechanisms`` is empty.

    Examples
    --------
    >>> g = CausalGraph("Y -> Z -> X; Y <-> X; Z <-> X")
    >>> check_front_door(g, "Y", "X", ["Z"])[0][:44]
    'Z and X share a latent confounder (Z <-> X),'
    """
    (y,) = _check_nodes(graph, "cause", [cause])
    (x,) = _check_nodes(graph, "effect", [effect])
    zs = _check_nodes(graph, "mechanism", mechanisms)
    ws = _check_nodes(graph, "covariate", covariates)
    if not zs:
        raise ValueError("check_front_door needs at least one mechanism node; got none")
    _check_disjoint(y, x, zs, ws)
    dag = graph.to_networkx()
    bidirected = set(graph.bidirected)
    z_set, w_set = set(zs), set(ws)
    label = _fmt_set(zs)
    problems: list[str] = []

    # 1. Z intercepts every directed path from Y to X.
    path = _directed_path(graph, y, x, avoid=z_set)
    if path is not None:
        problems.append(
            f"there is a directed path {path} that does not go through the mechanism {label}, "
            f"so {label} does not intercept every directed path from {y} to {x} (front-door "
            "condition 1: the mechanism must fully mediate the effect)."
        )

    # 2. No back-door path from Y to Z is open (given W): one search from Y over G with Y
    # underlined finds every node a back-door path from Y reaches, and the first such path.
    given = " given " + _fmt_blockers(ws) if ws else ""
    cut_y = {y}
    parent_y, _ = open_search(dag, y, w_set, cut_y)
    reached_y = first_states(parent_y)
    failing = [z for z in zs if z in reached_y]
    for z in failing[:_MAX_NAMED]:
        if _latent_pair(bidirected, y, z):
            problems.append(
                f"{y} and {z} share a latent confounder ({y} <-> {z}), so {label} does not "
                f"satisfy the front-door criterion: the back-door path {y} <-> {z} from {y} "
                f"to the mechanism {z} is open{given}."
            )
            continue
        found = trace(y, parent_y, reached_y[z])
        shown = f" {format_path(dag, found)}"
        note = _collider_note(dag, found, w_set, cut_y)
        problems.append(
            f"{label} does not satisfy the front-door criterion: the back-door path{shown} "
            f"from {y} to the mechanism {z} is open{given}{note}."
        )
    if len(failing) > _MAX_NAMED:
        problems.append(
            f"the back-door paths from {y} to the mechanisms {_fmt_set(failing[_MAX_NAMED:])} "
            f"are open{given} too."
        )

    # 3. Every back-door path from Z to X is blocked by {Y} ∪ W: d-connection is symmetric,
    # so one search from X over G with Z underlined finds the mechanisms it reaches.
    blockers = [y, *ws]
    cut_z, given_3 = set(zs), {y, *w_set}
    reached_x = first_states(open_search(dag, x, given_3, cut_z)[0])
    failing = [z for z in zs if z in reached_x]
    for z in failing[:_MAX_NAMED]:
        if _latent_pair(bidirected, z, x):
            problems.append(
                f"{z} and {x} share a latent confounder ({z} <-> {x}), so {label} does not "
                f"satisfy the front-door criterion: the back-door path {z} <-> {x} from {z} "
                f"to {x} is not blocked by {_fmt_blockers(blockers)}."
            )
            continue
        # The path is named as seen from Z (one search per mechanism that fails).
        found = open_path(dag, z, {x}, given_3, cut_z)
        shown = f" {format_path(dag, found)}" if found else ""
        note = _collider_note(dag, found, given_3, cut_z) if found else ""
        problems.append(
            f"{label} does not satisfy the front-door criterion: the back-door path{shown} "
            f"from {z} to {x} is not blocked by {_fmt_blockers(blockers)}{note}."
        )
    if len(failing) > _MAX_NAMED:
        problems.append(
            f"the back-door paths from the mechanisms {_fmt_set(failing[_MAX_NAMED:])} to {x} "
            f"are not blocked by {_fmt_blockers(blockers)} either."
        )

    # Covariates must be pre-treatment.
    problems += _descendant_problems(graph, ws, [*(("mechanism", z) for z in zs), ("cause", y)])
    return problems


def check_back_door(
    graph: CausalGraph, cause: str, effect: str, covariates: Sequence[str] = ()
) -> list[str]:
    """List the conditions of the back-door criterion that fail.

    Parameters
    ----------
    graph : CausalGraph
        The causal graph; bidirected edges are latent confounders.
    cause, effect : str
        The nodes ``Y`` (intervened on) and ``X``.
    covariates : sequence of str, default=()
        The adjustment set ``W``; empty means "no adjustment" (``p(x | do(y)) = p(x | y)``).

    Returns
    -------
    list of str
        One sentence per violated condition; empty if ``W`` satisfies the criterion.

    Raises
    ------
    ValueError
        If a named node is not in the graph.
    """
    (y,) = _check_nodes(graph, "cause", [cause])
    (x,) = _check_nodes(graph, "effect", [effect])
    ws = _check_nodes(graph, "covariate", covariates)
    _check_disjoint(y, x, (), ws)
    dag = graph.to_networkx()
    problems = _descendant_problems(graph, ws, [("cause", y)])
    # One search from Y over G with Y underlined: the verdict and the path to name.
    cut_y, w_set = {y}, set(ws)
    found = open_path(dag, y, {x}, w_set, cut_y)
    if found is None:
        return problems
    if _latent_pair(set(graph.bidirected), y, x):
        problems.append(
            f"{y} and {x} share a latent confounder ({y} <-> {x}), so no set of observed "
            f"covariates can block the back-door path {y} <-> {x}; declare a mechanism (a node "
            f"Z with {y} -> Z -> {x} that carries all of the effect, e.g. `Z [mechanism]`) to "
            "use the front-door estimator."
        )
        return problems
    message = (
        f"the back-door path {format_path(dag, found)} from {y} to {x} is not blocked by "
        f"{_fmt_blockers(ws)}{_collider_note(dag, found, w_set, cut_y)}"
    )
    below_y = nx.descendants(dag, y)
    candidates = [
        n
        for i, n in enumerate(found[1:-1], start=1)
        if not dag.nodes[n]["latent"]
        and not (dag.has_edge(found[i - 1], n) and dag.has_edge(found[i + 1], n))
        and n not in below_y
    ]
    if candidates:
        message += (
            f"; declaring {candidates[0]} a covariate (`{candidates[0]} [covariate]`) would "
            "block it"
        )
    problems.append(message + ".")
    return problems


# --------------------------------------------------------------------------------------
# identify
# --------------------------------------------------------------------------------------


def _role_node(graph: CausalGraph, role: str, override: str | None) -> str:
    if override is not None:
        return _check_nodes(graph, role, [override])[0]
    try:
        return graph.cause if role == "cause" else graph.effect
    except ValueError as err:
        raise ValueError(f"{err}; or pass {role}='<node name>' to identify().") from None


def identify(
    graph: CausalGraph,
    *,
    cause: str | None = None,
    effect: str | None = None,
    mechanisms: Sequence[str] | None = None,
    covariates: Sequence[str] | None = None,
) -> Estimand:
    """Identify ``p(effect | do(cause))`` from ``graph`` and return its estimand.

    The kind of estimand follows from the roles: mechanisms make it a front-door estimand
    (``"front_door_covariates"`` if covariates are declared too); covariates alone, or no
    confounding at all, make it a back-door estimand. The matching criterion is then
    checked on the graph. A graph with only a cause and an effect whose back door fails gets
    its roles found by the front-door reduction
    (:func:`~causal_mixtures.graph.reduce.find_reduction`): the estimand's mechanisms are the
    mechanism super-node, its covariates the cause super-node's other nodes, and
    :attr:`Estimand.reduction` holds the super-nodes (``docs/identification.md``).

    Parameters
    ----------
    graph : CausalGraph
        A graph with roles, e.g. from :func:`causal_mixtures.load_graph`.
    cause, effect : str, optional
        Override the nodes with the roles ``cause`` and ``effect``.
    mechanisms, covariates : sequence of str, optional
        Override the nodes with the roles ``mechanism`` and ``covariate``.

    Returns
    -------
    Estimand

    Raises
    ------
    NotIdentifiableError
        If the criterion for the declared roles fails; the message names the nodes and
        the path that breaks it, and what to try. For a graph with only a cause and an
        effect it also says whether the ID algorithm identifies the effect by a formula the
        estimators cannot fit, or whether no formula does (naming a hedge).
    ValueError
        If the cause or effect is missing (the message says which role to declare), or the
        roles overlap.

    Examples
    --------
    >>> g = CausalGraph("Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X")
    >>> est = identify(g)
    >>> est.kind, est.weight_formula
    ('front_door', 'w_n(y) = p(z_n | y) / p(z_n | y_n)')
    """
    if not isinstance(graph, CausalGraph):
        raise TypeError(
            f"identify expects a CausalGraph, got {type(graph).__name__}; build one with "
            "CausalGraph.from_string(...) or causal_mixtures.load_graph(name)"
        )
    y = _role_node(graph, "cause", cause)
    x = _role_node(graph, "effect", effect)
    zs = _check_nodes(graph, "mechanism", graph.mechanisms if mechanisms is None else mechanisms)
    ws = _check_nodes(graph, "covariate", graph.covariates if covariates is None else covariates)
    _check_disjoint(y, x, zs, ws)

    if zs:
        problems = check_front_door(graph, y, x, zs, ws)
        if problems:
            hint = (
                f"A mechanism must lie on every directed path from {y} to {x} and share no "
                f"latent confounder with {y} or {x}; check the graph's edges and roles."
            )
            if ws and not check_back_door(graph, y, x, ws):
                hint += (
                    f" The back-door criterion does hold with the covariates {_fmt_set(ws)}: "
                    "remove the mechanism role to use the back-door estimator."
                )
            raise NotIdentifiableError(
                f"cannot identify p({x} | do({y})) with the front-door estimator: "
                + _join(problems)
                + " "
                + hint
                + _reduction_hint(graph, y, x)
            )
        return _front_door_estimand(y, x, zs, ws)

    problems = check_back_door(graph, y, x, ws)
    if problems and not ws:
        # Only a cause and an effect: find the roles by the front-door reduction.
        try:
            reduction = find_reduction(graph, y, x)
        except ValueError as err:  # too many candidates for the exhaustive search
            raise NotIdentifiableError(
                f"cannot identify p({x} | do({y})) without a mechanism or covariates: "
                + _join(problems)
                + f" The front-door reduction was not searched: {err}"
            ) from None
        if reduction is not None:
            estimand = _front_door_estimand(y, x, reduction.mechanism_set, reduction.adjustment)
            return replace(estimand, reduction=reduction)
    if problems:
        what = (
            f"with the back-door estimator and the covariates {_fmt_set(ws)}"
            if ws
            else "without a mechanism or covariates"
        )
        hint = (
            ""  # the latent-confounder sentence already says to declare a mechanism
            if _latent_pair(set(graph.bidirected), y, x)
            else " Declare a mechanism (`Z [mechanism]`) for the front-door estimator or "
            "covariates (`W [covariate]`) that block every back-door path."
        )
        tail = " " + not_reducible_message(graph, y, x) if not ws else _reduction_hint(graph, y, x)
        raise NotIdentifiableError(
            f"cannot identify p({x} | do({y})) {what}: " + _join(problems) + hint + tail
        )
    if ws:
        wlist = ", ".join(ws)
        expression = f"p({x} | do({y})) = Σ_{_sub(ws)} p({x} | {y}, {wlist}) p({wlist})"
        weight = "w_n(y) = 1[y_n = y] / p(y | w_n)"
        roles: tuple[str, ...] = ("cause", "effect", "covariate")
        given: tuple[str, ...] = ("covariate",)
    else:
        expression = f"p({x} | do({y})) = p({x} | {y})"
        weight = "w_n(y) = 1[y_n = y] / p(y)"
        roles, given = ("cause", "effect"), ()
    return Estimand(
        kind="back_door",
        cause=y,
        effect=x,
        mechanisms=(),
        covariates=ws,
        expression=expression,
        weight_formula=weight,
        required_roles=roles,
        density_of="cause",
        density_given=given,
    )


def _front_door_estimand(y: str, x: str, zs: Sequence[str], ws: Sequence[str]) -> Estimand:
    """The front-door estimand (with covariates ``ws`` if any) of mechanisms ``zs``."""
    yp = f"{y}'"
    zs, ws = tuple(zs), tuple(ws)
    zlist = ", ".join(zs)
    if ws:
        wlist = ", ".join(ws)
        return Estimand(
            kind="front_door_covariates",
            cause=y,
            effect=x,
            mechanisms=zs,
            covariates=ws,
            expression=(
                f"p({x} | do({y})) = Σ_{_sub(ws)} p({wlist}) Σ_{_sub(zs)} p({zlist} | {y}, "
                f"{wlist}) Σ_{_sub([yp])} p({x} | {yp}, {zlist}, {wlist}) p({yp} | {wlist})"
            ),
            weight_formula="w_n(y) = p(z_n | w_n, y) / p(z_n | w_n, y_n)",
            required_roles=("cause", "effect", "mechanism", "covariate"),
            density_of="mechanism",
            density_given=("covariate", "cause"),
        )
    return Estimand(
        kind="front_door",
        cause=y,
        effect=x,
        mechanisms=zs,
        covariates=(),
        expression=(
            f"p({x} | do({y})) = Σ_{_sub(zs)} p({zlist} | {y}) "
            f"Σ_{_sub([yp])} p({x} | {yp}, {zlist}) p({yp})"
        ),
        weight_formula="w_n(y) = p(z_n | y) / p(z_n | y_n)",
        required_roles=("cause", "effect", "mechanism"),
        density_of="mechanism",
        density_given=("cause",),
    )


def _reduction_hint(graph: CausalGraph, y: str, x: str) -> str:
    """For a failed criterion with declared roles: the reduction that would work, if any."""
    if len(graph.nodes) > _HINT_SEARCH_NODES:
        return ""
    reduction = find_reduction(graph, y, x)
    if reduction is None:
        return ""
    extra = f" and covariates {_fmt_set(reduction.adjustment)}" if reduction.adjustment else ""
    return (
        f" The graph is front-door reducible: mechanisms {_fmt_set(reduction.mechanism_set)}"
        f"{extra} satisfy the front-door criterion for the sets; declare only the cause and "
        "the effect to let identify() find these roles."
    )
