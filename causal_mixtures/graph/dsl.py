"""The graph text language: tokenizer, parser and name quoting.

:func:`parse` turns a specification such as ``"Y [cause]; Y -> Z -> X; Y <-> X"`` into a
:class:`ParsedGraph` of plain nodes, edges and roles, from which
:class:`~causal_mixtures.graph.core.CausalGraph` is built. The syntax is described in
``docs/graphs.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NoReturn

from causal_mixtures.exceptions import GraphSyntaxError
from causal_mixtures.graph.roles import KNOWN_ROLES, check_role

__all__ = ["EDGE_OPS", "ParsedGraph", "Token", "parse", "quote_name", "tokenize"]

#: The edge operators, longest first (so that ``<->`` is not read as ``<-``).
EDGE_OPS: tuple[str, ...] = ("<->", "->", "<-")

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_IDENT_FULL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


def quote_name(name: str) -> str:
    """Write ``name`` as the graph language reads it: bare if an identifier, else quoted."""
    if _IDENT_FULL_RE.match(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """One token of a graph specification (``kind`` is the token type)."""

    kind: str  # "name", "->", "<-", "<->", "[", "]", ",", ";", "newline", "eof"
    value: str
    line: int
    column: int

    def describe(self) -> str:
        """Say what this token is, for error messages."""
        if self.kind == "name":
            return f"the name {quote_name(self.value)}"
        if self.kind == "newline":
            return "the end of the line"
        if self.kind == "eof":
            return "the end of the specification"
        return repr(self.kind)


def _syntax_error(token: Token, message: str) -> NoReturn:
    raise GraphSyntaxError(message, line=token.line, column=token.column)


def _unexpected_character_hint(spec: str, i: int) -> str:
    """Say what would have been valid instead of the character ``spec[i]``."""
    c = spec[i]
    if c == "-":
        return "edges are written '->', '<-' or '<->'"
    if c == "<":
        return "edges are written '<-' or '<->'"
    if c.isdigit() or c.isalpha():
        word = re.match(r"[^\s;#\[\],<>\-\"]+", spec[i:])
        example = word.group() if word else c
        return (
            "names must start with an ASCII letter or '_' and contain only letters, "
            f"digits, '_' and '.'; quote other names, e.g. \"{example}\""
        )
    if c in "{}":
        return "braces are not part of the language (no `dag { ... }` wrapper is needed)"
    return (
        "expected a node name, an edge ('->', '<-', '<->'), a role list '[...]', ';' or a new line"
    )


def _quoted_name(spec: str, i: int, line: int, column: int) -> tuple[str, int]:
    """Read the quoted name that starts at ``spec[i] == '"'``; return it and the end index."""
    n = len(spec)
    j = i + 1
    chars: list[str] = []
    while True:
        if j >= n or spec[j] == "\n":
            raise GraphSyntaxError(
                "unterminated quoted name: expected a closing '\"' before "
                + ("the end of the line" if j < n else "the end of the specification"),
                line=line,
                column=column,
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
            column=column,
        )
    return name, j + 1


def tokenize(spec: str) -> list[Token]:
    """Split ``spec`` into tokens, raising :class:`GraphSyntaxError` on bad characters."""
    tokens: list[Token] = []
    i, line, col = 0, 1, 1
    n = len(spec)
    while i < n:
        c = spec[i]
        if c == "\n":
            tokens.append(Token("newline", "\n", line, col))
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
            tokens.append(Token(";", c, line, col))
            i, col = i + 1, col + 1
            continue
        op = next((o for o in EDGE_OPS if spec.startswith(o, i)), None)
        if op is not None:
            tokens.append(Token(op, op, line, col))
            i, col = i + len(op), col + len(op)
            continue
        if c in "[],":
            tokens.append(Token(c, c, line, col))
            i, col = i + 1, col + 1
            continue
        if c == '"':
            name, end = _quoted_name(spec, i, line, col)
            tokens.append(Token("name", name, line, col))
            col += end - i
            i = end
            continue
        m = _IDENT_RE.match(spec, i)
        if m is not None:
            tokens.append(Token("name", m.group(), line, col))
            col += m.end() - i
            i = m.end()
            continue
        hint = _unexpected_character_hint(spec, i)
        raise GraphSyntaxError(f"unexpected character {c!r}: {hint}", line=line, column=col)
    tokens.append(Token("eof", "", line, col))
    return tokens


# --------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------


@dataclass
class ParsedGraph:
    """The plain content of a specification, in order of first appearance.

    ``bidirected`` keeps each pair as written; ``roles`` maps a node to its one role.
    """

    nodes: dict[str, None] = field(default_factory=dict)
    directed: list[tuple[str, str]] = field(default_factory=list)
    bidirected: list[tuple[str, str]] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)


def parse(spec: str) -> ParsedGraph:
    """Parse a specification of the graph language.

    Parameters
    ----------
    spec : str
        The specification.

    Returns
    -------
    ParsedGraph

    Raises
    ------
    GraphSyntaxError
        If ``spec`` is not valid; ``line`` and ``column`` locate the offending token.
    """
    parser = _Parser(tokenize(spec))
    parser.parse()
    return parser.result


class _Parser:
    """Recursive-descent parser over the tokens of one specification."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.result = ParsedGraph()

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
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
        while self.peek().kind in EDGE_OPS:
            op = self.advance()
            while self.peek().kind == "newline":  # a chain may continue on the next line
                self.advance()
            right_token = self.peek()
            right = self.node(after=op)
            if right == left:
                _syntax_error(
                    right_token,
                    f"self loop {quote_name(left)} {op.kind} {quote_name(right)}: an edge "
                    "must join two different nodes",
                )
            if op.kind == "->":
                self.result.directed.append((left, right))
            elif op.kind == "<-":
                self.result.directed.append((right, left))
            else:
                self.result.bidirected.append((left, right))
            left = right
        token = self.peek()
        if token.kind not in (";", "newline", "eof"):
            _syntax_error(
                token,
                f"expected '->', '<-', '<->', a role list '[...]', ';' or a new line after "
                f"{quote_name(left)} but found {token.describe()}",
            )

    def node(self, after: Token | None = None) -> str:
        token = self.advance()
        if token.kind != "name":
            where = f" after {after.kind!r}" if after is not None else ""
            _syntax_error(token, f"expected a node name{where} but found {token.describe()}")
        self.result.nodes.setdefault(token.value, None)
        if self.peek().kind == "[":
            self.role_list(token.value)
        return token.value

    def role_list(self, name: str) -> None:
        self.advance()  # "["
        roles = self.result.roles
        while True:
            token = self.advance()
            if token.kind != "name":
                _syntax_error(
                    token,
                    f"expected a role ({', '.join(KNOWN_ROLES)}) but found {token.describe()}",
                )
            try:
                check_role(token.value)
            except ValueError as err:
                unknown: str | None = str(err)
            else:
                unknown = None
            if unknown is not None:  # raised here, not in the handler, to keep no context
                _syntax_error(token, unknown)
            previous = roles.get(name)
            if previous is not None and previous != token.value:
                _syntax_error(
                    token,
                    f"node {quote_name(name)} already has the role {previous!r} and cannot "
                    f"also be {token.value!r}: a node plays at most one role",
                )
            roles[name] = token.value
            token = self.advance()
            if token.kind == "]":
                return
            if token.kind != ",":
                _syntax_error(
                    token, f"expected ',' or ']' in the role list but found {token.describe()}"
                )
