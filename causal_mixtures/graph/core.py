"""Causal graphs with latent confounders and node roles.

A :class:`CausalGraph` is an immutable *mixed graph*: directed edges ``A -> B`` (direct
causal effects), bidirected edges ``A <-> B`` (an unobserved common cause of ``A`` and
``B``) and, for some nodes, a *role* that tells the estimators which data column plays which
part:

``cause``
    The prediction target ``y`` (the label); the intervention ``do(y)`` is applied to it.
``effect``
    The features ``x`` whose interventional distribution ``p(x | do(y))`` is modelled.
``mechanism``
    The mediator ``z`` of the front-door criterion (``y -> z -> x``).
``covariate``
    Observed pre-treatment variables ``w`` that are adjusted for.

Graphs are written in a small text language (GRAPL-compatible, with dagitty-style roles)::

    # the front-door graph of mechanism learning
    Y [cause]; Z [mechanism]; X [effect]
    Y -> Z -> X       # chains are allowed
    Y <-> X           # latent confounder
    "lesion mask" <- Y

Statements are separated by ``;`` or new lines and ``#`` starts a comment. A statement is a
chain of node names joined by ``->``, ``<-`` or ``<->``; any node name may be followed by
a role list ``[role, ...]``; a bare name declares a node. Names are identifiers
(``[A-Za-z_][A-Za-z0-9_.]*``) or double-quoted strings (``\\"`` and ``\\\\`` escape a quote
and a backslash). Because the graph is data, the canonical way to build one is
:meth:`CausalGraph.from_string` (or :func:`causal_mixtures.load_graph` for a named spec);
:meth:`CausalGraph.from_edges` builds one from edge lists.

References
----------
J. Pearl, *Causality*, 2nd ed., Cambridge University Press, 2009 (mixed graphs, p. 81).
J. Mao and M. A. Little, "Mechanism learning: reverse causal inference in the presence of
multiple unknown confounding through front-door causal bootstrapping", arXiv:2410.20057.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NoReturn
from xml.sax.saxutils import escape as _xml_escape
from xml.sax.saxutils import quoteattr as _xml_attr

import networkx as nx

from causal_mixtures.exceptions import GraphSyntaxError

__all__ = ["KNOWN_ROLES", "CausalGraph"]

#: The roles a node may play, in canonical order.
KNOWN_ROLES: tuple[str, ...] = ("cause", "effect", "mechanism", "covariate")

# Words from other tools that users are likely to type, mapped to our role names.
_ROLE_HINTS: dict[str, str] = {
    "exposure": "cause",
    "treatment": "cause",
    "label": "cause",
    "outcome": "effect",
    "features": "effect",
    "mediator": "mechanism",
    "adjusted": "covariate",
    "confounder": "covariate",
}

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_IDENT_FULL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")

_EDGE_OPS = ("<->", "->", "<-")


# --------------------------------------------------------------------------------------
# Lexer and parser of the graph language
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    """One token of a graph specification (``kind`` is the token type)."""

    kind: str  # "name", "->", "<-", "<->", "[", "]", ",", ";", "newline", "eof"
    value: str
    line: int
    column: int

    def describe(self) -> str:
        """Say what this token is, for error messages."""
        if self.kind == "name":
            return f"the name {_quote_name(self.value)}"
        if self.kind == "newline":
            return "the end of the line"
        if self.kind == "eof":
            return "the end of the specification"
        return repr(self.kind)


def _syntax_error(token: _Token, message: str) -> NoReturn:
    raise GraphSyntaxError(message, line=token.line, column=token.column)


def _tokenize(spec: str) -> list[_Token]:
    """Split ``spec`` into tokens, raising :class:`GraphSyntaxError` on bad characters."""
    tokens: list[_Token] = []
    i, line, col = 0, 1, 1
    n = len(spec)
    while i < n:
        c = spec[i]
        if c == "\n":
            tokens.append(_Token("newline", "\n", line, col))
            i, line, col = i + 1, line + 1, 1
            continue
        if c in " \t\r\f\v":
            i, col = i + 1, col + 1
            continue
        if c == "#":
            while i < n and spec[i] != "\n":
                i, col = i + 1, col + 1
            continue
        if c == ";":
            tokens.append(_Token(";", c, line, col))
            i, col = i + 1, col + 1
            continue
        op = next((o for o in _EDGE_OPS if spec.startswith(o, i)), None)
        if op is not None:
            tokens.append(_Token(op, op, line, col))
            i, col = i + len(op), col + len(op)
            continue
        if c in "[],":
            tokens.append(_Token(c, c, line, col))
            i, col = i + 1, col + 1
            continue
        if c == '"':
            start_col = col
            j = i + 1
            chars: list[str] = []
            while True:
                if j >= n or spec[j] == "\n":
                    raise GraphSyntaxError(
                        "unterminated quoted name: expected a closing '\"' before "
                        + ("the end of the line" if j < n else "the end of the specification"),
                        line=line,
                        column=start_col,
                    )
                ch = spec[j]
                if ch == "\\" and j + 1 < n and spec[j + 1] in '"\\':
                    chars.append(spec[j + 1])
                    j += 2
                    continue
                if ch == '"':
                    break
                chars.append(ch)
                j += 1
            name = "".join(chars)
            if not name.strip():
                raise GraphSyntaxError(
                    f"expected a node name inside the quotes but found {spec[i : j + 1]!r}; "
                    "node names must not be empty",
                    line=line,
                    column=start_col,
                )
            tokens.append(_Token("name", name, line, start_col))
            col += j + 1 - i
            i = j + 1
            continue
        m = _IDENT_RE.match(spec, i)
        if m is not None:
            tokens.append(_Token("name", m.group(), line, col))
            col += m.end() - i
            i = m.end()
            continue
        # An unexpected character: say what would have been valid here.
        if c == "-":
            hint = "edges are written '->', '<-' or '<->'"
        elif c == "<":
            hint = "edges are written '<-' or '<->'"
        elif c.isdigit() or c.isalpha():
            word = re.match(r"[^\s;#\[\],<>\-\"]+", spec[i:])
            example = word.group() if word else c
            hint = (
                "names must start with an ASCII letter or '_' and contain only letters, "
                f"digits, '_' and '.'; quote other names, e.g. \"{example}\""
            )
        elif c in "{}":
            hint = "braces are not part of the language (no `dag { ... }` wrapper is needed)"
        else:
            hint = (
                "expected a node name, an edge ('->', '<-', '<->'), a role list '[...]', "
                "';' or a new line"
            )
        raise GraphSyntaxError(f"unexpected character {c!r}: {hint}", line=line, column=col)
    tokens.append(_Token("eof", "", line, col))
    return tokens


class _Parser:
    """Recursive-descent parser for the graph language (see the module docstring)."""

    def __init__(self, spec: str) -> None:
        self.tokens = _tokenize(spec)
        self.pos = 0
        self.nodes: dict[str, None] = {}
        self.directed: list[tuple[str, str]] = []
        self.bidirected: list[tuple[str, str]] = []
        self.roles: dict[str, str] = {}

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> None:
        while True:
            token = self.peek()
            if token.kind in (";", "newline"):
                self.advance()
                continue
            if token.kind == "eof":
                return
            self.statement()

    def statement(self) -> None:
        left = self.node()
        while self.peek().kind in _EDGE_OPS:
            op = self.advance()
            while self.peek().kind == "newline":  # a chain may continue on the next line
                self.advance()
            right_token = self.peek()
            right = self.node(after=op)
            if right == left:
                _syntax_error(
                    right_token,
                    f"self loop {_quote_name(left)} {op.kind} {_quote_name(right)}: an edge "
                    "must join two different nodes",
                )
            if op.kind == "->":
                self.directed.append((left, right))
            elif op.kind == "<-":
                self.directed.append((right, left))
            else:
                self.bidirected.append((left, right))
            left = right
        token = self.peek()
        if token.kind not in (";", "newline", "eof"):
            _syntax_error(
                token,
                f"expected '->', '<-', '<->', a role list '[...]', ';' or a new line after "
                f"{_quote_name(left)} but found {token.describe()}",
            )

    def node(self, after: _Token | None = None) -> str:
        token = self.advance()
        if token.kind != "name":
            where = f" after {after.kind!r}" if after is not None else ""
            _syntax_error(token, f"expected a node name{where} but found {token.describe()}")
        self.nodes.setdefault(token.value, None)
        if self.peek().kind == "[":
            self.role_list(token.value)
        return token.value

    def role_list(self, name: str) -> None:
        self.advance()  # "["
        while True:
            token = self.advance()
            if token.kind != "name":
                _syntax_error(
                    token,
                    f"expected a role ({', '.join(KNOWN_ROLES)}) but found {token.describe()}",
                )
            _check_role(token.value, on_error=lambda msg, t=token: _syntax_error(t, msg))
            previous = self.roles.get(name)
            if previous is not None and previous != token.value:
                _syntax_error(
                    token,
                    f"node {_quote_name(name)} already has the role {previous!r} and cannot "
                    f"also be {token.value!r}: a node plays at most one role",
                )
            self.roles[name] = token.value
            token = self.advance()
            if token.kind == "]":
                return
            if token.kind != ",":
                _syntax_error(
                    token, f"expected ',' or ']' in the role list but found {token.describe()}"
                )


def _check_role(role: Any, *, on_error: Any = None) -> str:
    """Validate one role name; ``on_error(message)`` raises (default: ``ValueError``)."""
    if isinstance(role, str) and role in KNOWN_ROLES:
        return role
    message = f"unknown role {role!r}: the known roles are {', '.join(KNOWN_ROLES)}"
    if isinstance(role, str) and role.lower() in _ROLE_HINTS:
        message += f" (for {role!r} use {_ROLE_HINTS[role.lower()]!r})"
    if on_error is not None:
        on_error(message)
    raise ValueError(message)


def _quote_name(name: str) -> str:
    """Write ``name`` as the graph language reads it: bare if an identifier, else quoted."""
    if _IDENT_FULL_RE.match(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format_cycle(cycle: list[tuple[Any, Any]]) -> str:
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
        A graph in the text language described in :mod:`causal_mixtures.graph`, for example
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
        parser = _Parser(spec)
        parser.parse()
        self._set_parts(
            nodes=tuple(parser.nodes),
            directed=parser.directed,
            bidirected=parser.bidirected,
            roles={name: (role,) for name, role in parser.roles.items()},
        )

    # ----------------------------------------------------------------------------- builders

    @classmethod
    def from_string(cls, spec: str) -> CausalGraph:
        """Parse a graph written in the graph language.

        Parameters
        ----------
        spec : str
            The specification, e.g. ``"Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X;
            Y <-> X"``. See :mod:`causal_mixtures.graph` for the syntax.

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
            If a node name is not a string.

        Examples
        --------
        >>> g = CausalGraph.from_edges(
        ...     directed=[("Y", "Z"), ("Z", "X")], bidirected=[("Y", "X")],
        ...     roles={"Y": "cause", "Z": "mechanism", "X": "effect"})
        >>> g == CausalGraph("Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X")
        True
        """
        order: dict[str, None] = {}
        for name in nodes or ():
            order.setdefault(_check_name(name), None)
        directed = [_check_pair(edge, "directed") for edge in directed]
        bidirected = [_check_pair(edge, "bidirected") for edge in bidirected]
        for a, b in (*directed, *bidirected):
            order.setdefault(a, None)
            order.setdefault(b, None)
        role_map: dict[str, tuple[str, ...]] = {}
        for name, value in (roles or {}).items():
            name = _check_name(name)
            order.setdefault(name, None)
            values = (value,) if isinstance(value, str) else tuple(value)
            checked = tuple(dict.fromkeys(_check_role(v) for v in values))
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
        try:
            cycle = nx.find_cycle(dag)
        except nx.NetworkXNoCycle:
            pass
        else:
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
        set_(self, "_parents", {n: tuple(p for p, c in directed if c == n) for n in nodes})
        set_(self, "_children", {n: tuple(c for p, c in directed if p == n) for n in nodes})
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
        _check_role(role)
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
                f"statement such as `{_quote_name(example)} [{role}]` in the graph "
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
            f"{_quote_name(n)} [{', '.join(self._roles[n])}]" for n in self._nodes if self._roles[n]
        ]
        touched = {n for edge in (*self._directed, *self._bidirected) for n in edge}
        statements += [
            _quote_name(n) for n in self._nodes if not self._roles[n] and n not in touched
        ]
        remaining = list(self._directed)
        while remaining:
            parent, child = remaining.pop(0)
            chain = [parent, child]
            while True:
                nxt = next((e for e in remaining if e[0] == chain[-1]), None)
                if nxt is None:
                    break
                remaining.remove(nxt)
                chain.append(nxt[1])
            statements.append(" -> ".join(map(_quote_name, chain)))
        statements += [
            f"{_quote_name(a)} <-> {_quote_name(b)}" for a, b in self._bidirected_written
        ]
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
        ids = {n: f"n{i}" for i, n in enumerate(self._nodes)}
        lines = ["flowchart LR"]
        for n in self._nodes:
            label = n.replace('"', "#quot;")
            if self._roles[n]:
                label += f"<br/><i>{', '.join(self._roles[n])}</i>"
            lines.append(f'    {ids[n]}(["{label}"])')
        lines += [f"    {ids[a]} --> {ids[b]}" for a, b in self._directed]
        lines += [f"    {ids[a]} <-.-> {ids[b]}" for a, b in self._bidirected_written]
        for role in KNOWN_ROLES:
            fill, stroke = _ROLE_COLOURS[role]
            members = [ids[n] for n in self.nodes_with_role(role)]
            if members:
                lines.append(f"    classDef {role} fill:{fill},stroke:{stroke}")
                lines.append(f"    class {','.join(members)} {role}")
        return "\n".join(lines)

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
        return _render_svg(self)

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


def _check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"node names must be strings, got {name!r} ({type(name).__name__})")
    if not name.strip() or "\n" in name:
        raise ValueError(f"invalid node name {name!r}: names must be non-empty and fit on one line")
    return name


def _check_pair(edge: Any, kind: str) -> tuple[str, str]:
    try:
        a, b = edge
    except (TypeError, ValueError):
        raise ValueError(f"each {kind} edge must be a pair of node names, got {edge!r}") from None
    return _check_name(a), _check_name(b)


# --------------------------------------------------------------------------------------
# SVG rendering
# --------------------------------------------------------------------------------------

_ROLE_COLOURS: dict[str, tuple[str, str]] = {
    "cause": ("#cfe2ff", "#1f5fbf"),
    "effect": ("#d3f0d8", "#2e7d32"),
    "mechanism": ("#ffe3b8", "#b85c00"),
    "covariate": ("#e8e0f7", "#6a4fb3"),
}
_NO_ROLE_COLOURS = ("#ffffff", "#333333")
_FONT = "font-family='Helvetica, Arial, sans-serif'"


def _quad_point(
    p0: tuple[float, float], c: tuple[float, float], p1: tuple[float, float], t: float
) -> tuple[float, float]:
    s = 1.0 - t
    return (
        s * s * p0[0] + 2 * s * t * c[0] + t * t * p1[0],
        s * s * p0[1] + 2 * s * t * c[1] + t * t * p1[1],
    )


def _render_svg(graph: CausalGraph) -> str:
    """Lay out and draw ``graph`` (see :meth:`CausalGraph.to_svg`)."""
    pid = "cm" + hashlib.sha1(repr(graph).encode("utf-8")).hexdigest()[:8]
    if not graph.nodes:
        return (
            "<svg xmlns='http://www.w3.org/2000/svg' width='160' height='40' "
            "viewBox='0 0 160 40'>"
            f"<text x='80' y='24' text-anchor='middle' font-size='13' {_FONT}>"
            "(empty graph)</text></svg>"
        )

    # Layers: longest path from the roots, in topological order.
    layer: dict[str, int] = {}
    for n in graph.topological_order():
        layer[n] = max((layer[p] + 1 for p in graph.parents(n)), default=0)
    n_layers = max(layer.values()) + 1

    # Node sizes from the label lengths (a rough width per character of 13 px text).
    size: dict[str, tuple[float, float]] = {}
    for n in graph.nodes:
        role = ", ".join(graph.roles[n])
        width = max(7.4 * len(n), 5.8 * len(role))
        size[n] = (max(30.0, width / 2 + 16), 25.0 if role else 20.0)

    # Positions: layer -> x; inside a layer order by the mean row of the parents.
    rank = {n: i for i, n in enumerate(graph.nodes)}
    row: dict[str, float] = {}
    columns: list[list[str]] = []
    for k in range(n_layers):
        members = [n for n in graph.nodes if layer[n] == k]
        members.sort(
            key=lambda n: (
                sum(row[p] for p in graph.parents(n)) / len(graph.parents(n))
                if graph.parents(n)
                else -1.0,
                rank[n],
            )
        )
        for i, n in enumerate(members):
            row[n] = i - (len(members) - 1) / 2
        columns.append(members)
    pos: dict[str, tuple[float, float]] = {}
    x = 0.0
    for k, members in enumerate(columns):
        widest = max(size[n][0] for n in members)
        if k > 0:
            x += widest + 70.0
        for n in members:
            pos[n] = (x, row[n] * 90.0)
        x += widest

    def boundary(n: str, toward: tuple[float, float]) -> tuple[float, float]:
        cx, cy = pos[n]
        rx, ry = size[n]
        dx, dy = toward[0] - cx, toward[1] - cy
        norm = math.hypot(dx / rx, dy / ry)
        if norm == 0:
            return cx, cy
        return cx + dx / norm, cy + dy / norm

    def control_point(a: str, b: str, side: float, bow: float) -> tuple[float, float]:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy) or 1.0
        nx_, ny_ = -dy / length, dx / length  # unit normal
        if ny_ > 0 or (ny_ == 0 and nx_ > 0):  # make "side = +1" mean "upwards"
            nx_, ny_ = -nx_, -ny_
        offset = side * bow
        return ((x0 + x1) / 2 + nx_ * offset, (y0 + y1) / 2 + ny_ * offset)

    def inside(n: str, p: tuple[float, float], pad: float) -> bool:
        (cx, cy), (rx, ry) = pos[n], size[n]
        return ((p[0] - cx) / (rx + pad)) ** 2 + ((p[1] - cy) / (ry + pad)) ** 2 < 1.0

    drawn: list[tuple[float, float]] = []  # sample points of the edges placed so far

    def samples(a: str, b: str, control: tuple[float, float] | None) -> list[tuple[float, float]]:
        p0, p1 = pos[a], pos[b]
        c = control if control is not None else ((p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2)
        points = (_quad_point(p0, c, p1, i / 32) for i in range(1, 32))
        return [p for p in points if not inside(a, p, 4.0) and not inside(b, p, 4.0)]

    def place(
        a: str, b: str, *, sides: tuple[float, ...], straight: bool
    ) -> tuple[float, float] | None:
        """Choose a straight line or a bow that avoids nodes and, if possible, other edges."""
        length = math.hypot(pos[b][0] - pos[a][0], pos[b][1] - pos[a][1])
        base = max(60.0, 0.3 * length)
        candidates: list[tuple[float, tuple[float, float] | None]] = []
        if straight:
            candidates.append((0.0, None))
        for rank_side, side in enumerate(sides):
            for k, factor in enumerate((1.0, 1.5, 2.25, 3.4)):
                penalty = 3.0 * straight + 2.0 * k + 1.5 * rank_side
                candidates.append((penalty, control_point(a, b, side, base * factor)))

        def cost(candidate: tuple[float, tuple[float, float] | None]) -> float:
            pts = samples(a, b, candidate[1])
            hits = sum(inside(n, p, 6.0) for p in pts for n in graph.nodes if n not in (a, b))
            crowd = sum(
                any(abs(p[0] - q[0]) < 9 and abs(p[1] - q[1]) < 9 for q in drawn) for p in pts
            )
            return 1000.0 * hits + crowd + candidate[0]

        best = min(candidates, key=cost)[1]
        drawn.extend(samples(a, b, best))
        return best

    shapes: list[str] = []
    extent: list[tuple[float, float]] = []

    def path_element(
        a: str, b: str, control: tuple[float, float] | None, *, dashed: bool, title: str
    ) -> str:
        p0 = boundary(a, control if control is not None else pos[b])
        p1 = boundary(b, control if control is not None else pos[a])
        if control is None:
            d = f"M {p0[0]:.1f} {p0[1]:.1f} L {p1[0]:.1f} {p1[1]:.1f}"
        else:
            d = (
                f"M {p0[0]:.1f} {p0[1]:.1f} Q {control[0]:.1f} {control[1]:.1f} "
                f"{p1[0]:.1f} {p1[1]:.1f}"
            )
            extent.extend(_quad_point(p0, control, p1, i / 8) for i in range(9))
        style = (
            f"stroke='#7a1f1f' stroke-dasharray='6 4' marker-start='url(#{pid}-head-start)' "
            f"marker-end='url(#{pid}-head-latent)'"
            if dashed
            else f"stroke='#333333' marker-end='url(#{pid}-head)'"
        )
        return (
            f"<g class='{'latent' if dashed else 'edge'}'><title>{_xml_escape(title)}</title>"
            f"<path d='{d}' fill='none' stroke-width='1.5' {style}/></g>"
        )

    for a, b in graph.directed:
        control = place(a, b, sides=(-1.0, 1.0), straight=True)
        shapes.append(path_element(a, b, control, dashed=False, title=f"{a} -> {b}"))
    for a, b in graph._bidirected_written:
        control = place(a, b, sides=(1.0, -1.0), straight=False)
        shapes.append(path_element(a, b, control, dashed=True, title=f"{a} <-> {b} (latent)"))

    for n in graph.nodes:
        cx, cy = pos[n]
        rx, ry = size[n]
        extent += [(cx - rx, cy - ry), (cx + rx, cy + ry)]
        roles = graph.roles[n]
        fill, stroke = _ROLE_COLOURS[roles[0]] if roles else _NO_ROLE_COLOURS
        title = f"{n} ({', '.join(roles)})" if roles else n
        label_y = cy - 2 if roles else cy + 4.5
        parts = [
            f"<g class='node'><title>{_xml_escape(title)}</title>",
            f"<ellipse cx='{cx:.1f}' cy='{cy:.1f}' rx='{rx:.1f}' ry='{ry:.1f}' "
            f"fill='{fill}' stroke='{stroke}' stroke-width='1.5'/>",
            f"<text x='{cx:.1f}' y='{label_y:.1f}' text-anchor='middle' font-size='13' "
            f"{_FONT}>{_xml_escape(n)}</text>",
        ]
        if roles:
            parts.append(
                f"<text x='{cx:.1f}' y='{cy + 12:.1f}' text-anchor='middle' font-size='10' "
                f"font-style='italic' fill='{stroke}' {_FONT}>{_xml_escape(', '.join(roles))}"
                "</text>"
            )
        parts.append("</g>")
        shapes.append("".join(parts))

    margin = 12.0
    x_min = min(p[0] for p in extent) - margin
    y_min = min(p[1] for p in extent) - margin
    width = max(p[0] for p in extent) + margin - x_min
    height = max(p[1] for p in extent) + margin - y_min
    defs = (
        "<defs>"
        f"<marker id='{pid}-head' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='7' "
        "markerHeight='7' orient='auto'><path d='M 0 0 L 10 5 L 0 10 z' fill='#333333'/></marker>"
        f"<marker id='{pid}-head-latent' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='7' "
        "markerHeight='7' orient='auto'><path d='M 0 0 L 10 5 L 0 10 z' fill='#7a1f1f'/></marker>"
        f"<marker id='{pid}-head-start' viewBox='0 0 10 10' refX='0' refY='5' markerWidth='7' "
        "markerHeight='7' orient='auto'><path d='M 10 0 L 0 5 L 10 10 z' fill='#7a1f1f'/></marker>"
        "</defs>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' "
        f"viewBox='{x_min:.1f} {y_min:.1f} {width:.1f} {height:.1f}' role='img' "
        f"aria-label={_xml_attr('causal graph: ' + graph.to_string())}>"
        + defs
        + "".join(shapes)
        + "</svg>"
    )
