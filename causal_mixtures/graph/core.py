"""The causal graph: :class:`CausalGraph`, an immutable mixed graph with node roles.

Directed edges are causal effects, bidirected edges latent common causes, and roles say which
data column plays which part. Graphs are built from the text language (parsed in
:mod:`causal_mixtures.graph.dsl`) or from edge lists; ``docs/graphs.md`` describes both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import networkx as nx

from causal_mixtures.graph import dsl, render
from causal_mixtures.graph.dsl import quote_name
from causal_mixtures.graph.roles import KNOWN_ROLES, check_role

__all__ = ["KNOWN_ROLES", "CausalGraph"]


# --------------------------------------------------------------------------------------
# Validation of names and edges
# --------------------------------------------------------------------------------------


def _check_name(name: Any) -> str:
    """Return ``name`` if it can name a node (a non-empty one-line string), else raise."""
    if not isinstance(name, str):
        raise TypeError(f"node names must be strings, got {name!r} ({type(name).__name__})")
    if not name.strip() or "\n" in name:
        raise ValueError(f"invalid node name {name!r}: names must be non-empty and fit on one line")
    return name


def _check_pair(edge: Any, kind: str) -> tuple[str, str]:
    """Return ``edge`` as a pair of valid node names, else raise."""
    try:
        a, b = edge
    except (TypeError, ValueError):
        raise ValueError(f"each {kind} edge must be a pair of node names, got {edge!r}") from None
    return _check_name(a), _check_name(b)


def _check_many(value: Any, argument: str, example: str) -> Any:
    """Return ``value`` if it is a non-string iterable (a list of names or pairs), else raise."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(
            f"{argument} must be a list, got {type(value).__name__} {value!r:.60}; "
            f"pass e.g. {argument}={example}"
        )
    return value


def _format_cycle(cycle: list[tuple[Any, Any]]) -> str:
    """Write a cycle of edges as ``A -> B -> A``."""
    names = [str(u) for u, _ in cycle] + [str(cycle[0][0])]
    return " -> ".join(names)


# --------------------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------------------


def _rebuild(
    nodes: tuple[str, ...],
    directed: tuple[tuple[str, str], ...],
    bidirected: tuple[tuple[str, str], ...],
    roles: dict[str, tuple[str, ...]],
) -> CausalGraph:
    """Unpickle a :class:`CausalGraph` (module level so that pickle can find it)."""
    return CausalGraph.from_edges(
        nodes=nodes, directed=directed, bidirected=bidirected, roles=roles
    )


class CausalGraph:
    """An immutable causal graph: directed edges, latent confounders and node roles.

    Parameters
    ----------
    spec : str, default=""
        A graph in the text language described in ``docs/graphs.md``, for example
        ``"Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X"``. Same as
        :meth:`from_string`; use :meth:`from_edges` to build a graph from edge lists.

    Attributes
    ----------
    nodes : tuple of str
        The observed nodes, in order of first appearance.
    directed : tuple of (str, str)
        The directed edges ``(parent, child)``, in order of first appearance.
    bidirected : tuple of (str, str)
        The bidirected edges (latent common causes), each pair sorted by name.
    roles : mapping of str to tuple of str
        The roles of every node (an empty tuple when the node has none).

    Raises
    ------
    GraphSyntaxError
        If ``spec`` cannot be parsed; ``.line`` and ``.column`` locate the problem.
    ValueError
        If the directed edges form a cycle.

    See Also
    --------
    causal_mixtures.load_graph : Load a named graph from the ``models/`` registry.
    causal_mixtures.identify : Decide which estimand (front-door, back-door) applies.

    Notes
    -----
    Two graphs are equal when they have the same nodes, edges and roles, whatever the
    order in which these were written; graphs are hashable and can be dictionary keys.
    ``CausalGraph.from_string(g.to_string()) == g`` for every graph ``g``.

    Examples
    --------
    >>> g = CausalGraph("Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X")
    >>> g.cause, g.mechanisms, g.effect
    ('Y', ('Z',), 'X')
    >>> g.parents("X")
    ('Z',)
    >>> g.bidirected
    (('X', 'Y'),)
    """

    __slots__ = (
        "_nodes",
        "_directed",
        "_bidirected",
        "_bidirected_written",
        "_roles",
        "_parents",
        "_children",
        "_latent_names",
        "_key",
    )

    _nodes: tuple[str, ...]
    _directed: tuple[tuple[str, str], ...]
    _bidirected: tuple[tuple[str, str], ...]
    _bidirected_written: tuple[tuple[str, str], ...]
    _roles: Mapping[str, tuple[str, ...]]
    _parents: dict[str, tuple[str, ...]]
    _children: dict[str, tuple[str, ...]]
    _latent_names: dict[tuple[str, str], str]
    _key: tuple[frozenset[Any], ...]

    def __init__(self, spec: str = "") -> None:
        if not isinstance(spec, str):
            raise TypeError(
                f"CausalGraph expects a graph specification string, got {type(spec).__name__}; "
                "use CausalGraph.from_edges(directed=..., bidirected=..., roles=...) to build "
                "a graph from edge lists"
            )
        parsed = dsl.parse(spec)
        self._set_parts(
            nodes=tuple(parsed.nodes),
            directed=parsed.directed,
            bidirected=parsed.bidirected,
            roles={name: (role,) for name, role in parsed.roles.items()},
        )

    # ----------------------------------------------------------------------------- builders

    @classmethod
    def from_string(cls, spec: str) -> CausalGraph:
        """Parse a graph written in the graph language.

        Parameters
        ----------
        spec : str
            The specification, e.g. ``"Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X;
            Y <-> X"``. See ``docs/graphs.md`` for the syntax.

        Returns
        -------
        CausalGraph

        Raises
        ------
        GraphSyntaxError
            If ``spec`` is not valid; the error's ``line`` and ``column`` (1-based) point at
            the offending token and its message says what was expected and what was found.
        ValueError
            If the directed edges form a cycle (the message names it).
        """
        return cls(spec)

    @classmethod
    def from_edges(
        cls,
        *,
        directed: Iterable[tuple[str, str]] = (),
        bidirected: Iterable[tuple[str, str]] = (),
        roles: Mapping[str, str | Iterable[str]] | None = None,
        nodes: Iterable[str] | None = None,
    ) -> CausalGraph:
        """Build a graph from edge lists.

        Parameters
        ----------
        directed : iterable of (str, str), default=()
            Directed edges ``(parent, child)``.
        bidirected : iterable of (str, str), default=()
            Latent common causes ``(a, b)``; the order within a pair does not matter.
        roles : mapping of str to str or iterable of str, optional
            The role(s) of some nodes, e.g. ``{"Y": "cause", "X": "effect"}``. Nodes named
            here but absent from the edges are added as isolated nodes.
        nodes : iterable of str, optional
            Nodes to include (first, in this order), e.g. isolated ones.

        Returns
        -------
        CausalGraph

        Raises
        ------
        ValueError
            On a self loop, a cycle, an unknown role, or a node given two roles.
        TypeError
            If a node name is not a string, or an argument is not a list (``roles``: a
            mapping); a bare string is not taken as a list of one-letter names.

        Examples
        --------
        >>> g = CausalGraph.from_edges(
        ...     directed=[("Y", "Z"), ("Z", "X")], bidirected=[("Y", "X")],
        ...     roles={"Y": "cause", "Z": "mechanism", "X": "effect"})
        >>> g == CausalGraph("Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X")
        True
        """
        order: dict[str, None] = {}
        for name in _check_many(() if nodes is None else nodes, "nodes", "['Y', 'X']"):
            order.setdefault(_check_name(name), None)
        pairs = "[('Y', 'X')]"
        directed = [_check_pair(e, "directed") for e in _check_many(directed, "directed", pairs)]
        bidirected = [
            _check_pair(e, "bidirected") for e in _check_many(bidirected, "bidirected", pairs)
        ]
        if roles is not None and not isinstance(roles, Mapping):
            raise TypeError(
                f"roles must be a mapping from node name to role, got {type(roles).__name__}; "
                "pass e.g. roles={'Y': 'cause', 'X': 'effect'}"
            )
        for a, b in (*directed, *bidirected):
            order.setdefault(a, None)
            order.setdefault(b, None)
        role_map: dict[str, tuple[str, ...]] = {}
        for name, value in (roles or {}).items():
            name = _check_name(name)
            order.setdefault(name, None)
            if not isinstance(value, str | Iterable):
                raise TypeError(
                    f"the role of {name!r} must be a role name or a list of them, got "
                    f"{value!r}; the known roles are {', '.join(KNOWN_ROLES)}"
                )
            values = (value,) if isinstance(value, str) else tuple(value)
            checked = tuple(dict.fromkeys(check_role(v) for v in values))
            if len(checked) > 1:
                raise ValueError(
                    f"node {name!r} was given the roles {', '.join(map(repr, checked))}: a node "
                    "plays at most one role"
                )
            role_map[name] = checked
        graph = cls.__new__(cls)
        graph._set_parts(
            nodes=tuple(order), directed=directed, bidirected=bidirected, roles=role_map
        )
        return graph

    def _set_parts(
        self,
        *,
        nodes: tuple[str, ...],
        directed: Iterable[tuple[str, str]],
        bidirected: Iterable[tuple[str, str]],
        roles: Mapping[str, tuple[str, ...]],
    ) -> None:
        set_ = object.__setattr__
        directed = tuple(dict.fromkeys(directed))
        written: dict[tuple[str, str], tuple[str, str]] = {}
        for a, b in bidirected:
            if a == b:
                raise ValueError(f"self loop {a} <-> {b}: an edge must join two different nodes")
            written.setdefault((min(a, b), max(a, b)), (a, b))
        for a, b in directed:
            if a == b:
                raise ValueError(f"self loop {a} -> {b}: an edge must join two different nodes")
        dag = nx.DiGraph()
        dag.add_nodes_from(nodes)
        dag.add_edges_from(directed)
        if not nx.is_directed_acyclic_graph(dag):  # a fast check; find_cycle names the cycle
            cycle = nx.find_cycle(dag)
            raise ValueError(
                f"the directed edges form a cycle {_format_cycle(list(cycle))}: a causal graph "
                "must be acyclic. Remove one of these edges, or write A <-> B if two variables "
                "share an unobserved common cause"
            )
        set_(self, "_nodes", nodes)
        set_(self, "_directed", directed)
        set_(self, "_bidirected", tuple(written))
        set_(self, "_bidirected_written", tuple(written.values()))
        set_(self, "_roles", MappingProxyType({n: tuple(roles.get(n, ())) for n in nodes}))
        parents: dict[str, list[str]] = {n: [] for n in nodes}
        children: dict[str, list[str]] = {n: [] for n in nodes}
        for p, c in directed:
            parents[c].append(p)
            children[p].append(c)
        set_(self, "_parents", {n: tuple(ps) for n, ps in parents.items()})
        set_(self, "_children", {n: tuple(cs) for n, cs in children.items()})
        latent: dict[tuple[str, str], str] = {}
        taken = set(nodes)
        for a, b in written:
            base = f"U_{a}_{b}"
            name, k = base, 2
            while name in taken:
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
            latent[(a, b)] = name
        set_(self, "_latent_names", latent)
        set_(
            self,
            "_key",
            (
                frozenset(nodes),
                frozenset(directed),
                frozenset(written),
                frozenset((n, r) for n, r in self._roles.items() if r),
            ),
        )

    def with_roles(self, roles: Mapping[str, str | Iterable[str]]) -> CausalGraph:
        """Return the same graph with its roles replaced by ``roles``.

        Parameters
        ----------
        roles : mapping of str to str or iterable of str
            The complete new role assignment, e.g. ``{"Y": "cause", "X": "effect"}``;
            nodes not named here get no role.

        Returns
        -------
        CausalGraph
        """
        for name in roles:
            self._check_node(name)
        return CausalGraph.from_edges(
            nodes=self._nodes,
            directed=self._directed,
            bidirected=self._bidirected_written,
            roles=roles,
        )

    # -------------------------------------------------------------------------- structure

    @property
    def nodes(self) -> tuple[str, ...]:
        """The observed nodes, in order of first appearance."""
        return self._nodes

    @property
    def directed(self) -> tuple[tuple[str, str], ...]:
        """The directed edges ``(parent, child)``, in order of first appearance."""
        return self._directed

    @property
    def bidirected(self) -> tuple[tuple[str, str], ...]:
        """The bidirected edges (latent common causes), each pair sorted by name."""
        return self._bidirected

    @property
    def roles(self) -> Mapping[str, tuple[str, ...]]:
        """Read-only mapping from every node to its roles (empty tuple if none)."""
        return self._roles

    def _check_node(self, node: str) -> str:
        if node not in self._roles:
            raise ValueError(
                f"unknown node {node!r}: the graph's nodes are "
                f"{', '.join(map(repr, self._nodes)) or '(none)'}"
            )
        return node

    def __contains__(self, node: object) -> bool:
        return node in self._roles

    def parents(self, node: str) -> tuple[str, ...]:
        """Return the observed parents of ``node`` (latent confounders excluded).

        Parameters
        ----------
        node : str

        Returns
        -------
        tuple of str

        Raises
        ------
        ValueError
            If ``node`` is not in the graph.
        """
        return self._parents[self._check_node(node)]

    def children(self, node: str) -> tuple[str, ...]:
        """Return the children of ``node``.

        Parameters
        ----------
        node : str

        Returns
        -------
        tuple of str

        Raises
        ------
        ValueError
            If ``node`` is not in the graph.
        """
        return self._children[self._check_node(node)]

    def topological_order(self) -> tuple[str, ...]:
        """Return the nodes so that every parent comes before its children.

        Ties are broken by order of first appearance, so the result is deterministic.

        Returns
        -------
        tuple of str
        """
        dag = nx.DiGraph()
        dag.add_nodes_from(self._nodes)
        dag.add_edges_from(self._directed)
        rank = {n: i for i, n in enumerate(self._nodes)}
        return tuple(nx.lexicographical_topological_sort(dag, key=rank.__getitem__))

    def latent_name(self, a: str, b: str) -> str:
        """Return the name of the latent common cause behind the edge ``a <-> b``.

        The name (``"U_<a>_<b>"`` with the pair sorted, made unique if it clashes with an
        observed node) is the one used by :meth:`to_networkx`.

        Parameters
        ----------
        a, b : str
            The two ends of a bidirected edge, in either order.

        Returns
        -------
        str

        Raises
        ------
        ValueError
            If the graph has no bidirected edge between ``a`` and ``b``.
        """
        self._check_node(a)
        self._check_node(b)
        key = (min(a, b), max(a, b))
        if key not in self._latent_names:
            edges = ", ".join(f"{u} <-> {v}" for u, v in self._bidirected) or "(none)"
            raise ValueError(
                f"the graph has no bidirected edge {a} <-> {b}; its bidirected edges are {edges}"
            )
        return self._latent_names[key]

    # ------------------------------------------------------------------------------- roles

    def nodes_with_role(self, role: str) -> tuple[str, ...]:
        """Return the nodes that have ``role``, in node order.

        Parameters
        ----------
        role : {"cause", "effect", "mechanism", "covariate"}

        Returns
        -------
        tuple of str
            Possibly empty.

        Raises
        ------
        ValueError
            If ``role`` is not a known role.
        """
        check_role(role)
        return tuple(n for n in self._nodes if role in self._roles[n])

    def _unique_role(self, role: str) -> str:
        found = self.nodes_with_role(role)
        if len(found) == 1:
            return found[0]
        example = next(
            (n for n in self._nodes if not self._roles[n]), "Y" if role == "cause" else "X"
        )
        if not found:
            raise ValueError(
                f"the graph declares no node with the role {role!r}; declare one with a role "
                f"statement such as `{quote_name(example)} [{role}]` in the graph "
                f"specification (graph: {self.to_string()!r})"
            )
        raise ValueError(
            f"the graph declares {len(found)} nodes with the role {role!r} "
            f"({', '.join(found)}) but exactly one is needed; keep the role on one of them"
        )

    @property
    def cause(self) -> str:
        """The node with the role ``cause`` (the label ``y``).

        Raises
        ------
        ValueError
            If no node, or more than one, has the role (the message says how to declare it).
        """
        return self._unique_role("cause")

    @property
    def effect(self) -> str:
        """The node with the role ``effect`` (the features ``x``).

        Raises
        ------
        ValueError
            If no node, or more than one, has the role (the message says how to declare it).
        """
        return self._unique_role("effect")

    @property
    def mechanisms(self) -> tuple[str, ...]:
        """The nodes with the role ``mechanism`` (possibly none)."""
        return self.nodes_with_role("mechanism")

    @property
    def covariates(self) -> tuple[str, ...]:
        """The nodes with the role ``covariate`` (possibly none)."""
        return self.nodes_with_role("covariate")

    # -------------------------------------------------------------------------- conversion

    def to_networkx(self) -> nx.DiGraph:
        """Return the graph as a DAG with every latent confounder made explicit.

        Each bidirected edge ``a <-> b`` becomes a latent node (named by
        :meth:`latent_name`) with edges to ``a`` and ``b``.

        Returns
        -------
        networkx.DiGraph
            A new graph. Every node has the attributes ``latent`` (bool) and ``roles``
            (tuple of str); latent nodes also have ``confounds`` (the pair of nodes).
        """
        dag = nx.DiGraph()
        for n in self._nodes:
            dag.add_node(n, latent=False, roles=self._roles[n])
        dag.add_edges_from(self._directed)
        for (a, b), u in self._latent_names.items():
            dag.add_node(u, latent=True, roles=(), confounds=(a, b))
            dag.add_edge(u, a)
            dag.add_edge(u, b)
        return dag

    def to_string(self) -> str:
        """Write the graph in the graph language.

        Role declarations come first, then isolated nodes, then directed edges (joined into
        chains where possible), then bidirected edges; non-identifier names are quoted.

        Returns
        -------
        str
            A specification ``s`` with ``CausalGraph.from_string(s) == self``.
        """
        statements = [
            f"{quote_name(n)} [{', '.join(self._roles[n])}]" for n in self._nodes if self._roles[n]
        ]
        touched = {n for edge in (*self._directed, *self._bidirected) for n in edge}
        statements += [
            quote_name(n) for n in self._nodes if not self._roles[n] and n not in touched
        ]
        # Each chain starts at the first unwritten edge and goes on, while it can, with the
        # first unwritten edge out of its last node.
        out_edges: dict[str, list[int]] = {}
        for i, (parent, _) in enumerate(self._directed):
            out_edges.setdefault(parent, []).append(i)
        next_out = dict.fromkeys(out_edges, 0)  # where to look next in out_edges[node]
        written = [False] * len(self._directed)
        for first, (parent, child) in enumerate(self._directed):
            if written[first]:
                continue
            written[first] = True
            chain = [parent, child]
            while True:
                edges = out_edges.get(chain[-1], [])
                k = next_out.get(chain[-1], 0)
                while k < len(edges) and written[edges[k]]:
                    k += 1
                if k == len(edges):
                    break
                next_out[chain[-1]] = k + 1
                written[edges[k]] = True
                chain.append(self._directed[edges[k]][1])
            statements.append(" -> ".join(map(quote_name, chain)))
        statements += [f"{quote_name(a)} <-> {quote_name(b)}" for a, b in self._bidirected_written]
        return "; ".join(statements)

    def to_mermaid(self) -> str:
        """Write the graph as a Mermaid flowchart.

        Directed edges are ``-->`` and latent confounders dashed double-headed ``<-.->``
        links; nodes are styled by role.

        Returns
        -------
        str
            Mermaid source, e.g. for a Markdown ```` ```mermaid ```` block.
        """
        return render.render_mermaid(
            self._nodes, self._roles, self._directed, self._bidirected_written
        )

    def to_svg(self) -> str:
        """Draw the graph as a standalone SVG image (no Graphviz needed).

        Nodes are laid out left to right in layers of the topological order and coloured by
        role (the role is also written under the name); directed edges are solid arrows and
        latent confounders dashed, curved, double-headed arrows.

        Returns
        -------
        str
            An ``<svg>`` document.
        """
        return render.render_svg(
            nodes=self._nodes,
            roles=self._roles,
            directed=self._directed,
            bidirected=self._bidirected_written,
            parents=self._parents,
            order=self.topological_order(),
            text=self.to_string(),
            seed=repr(self),
        )

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, str]:
        """Rich display for Jupyter: plain text and an SVG drawing."""
        bundle = {"text/plain": repr(self), "image/svg+xml": self.to_svg()}
        if include is not None:
            wanted = set(include)
            bundle = {k: v for k, v in bundle.items() if k in wanted}
        if exclude is not None:
            unwanted = set(exclude)
            bundle = {k: v for k, v in bundle.items() if k not in unwanted}
        return bundle

    # ----------------------------------------------------------------------- dunder methods

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CausalGraph):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"CausalGraph({self.to_string()!r})"

    def __str__(self) -> str:
        return self.to_string()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"CausalGraph is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"CausalGraph is immutable; cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (self._nodes, self._directed, self._bidirected_written, dict(self._roles)),
        )

    def __copy__(self) -> CausalGraph:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> CausalGraph:
        return self
