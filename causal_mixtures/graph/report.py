"""The identification report: which criterion identifies ``p(x | do(y))``, and how.

:func:`identification_report` runs :func:`~causal_mixtures.graph.identify.identify` and, when
it fails, collects the blocking structure (the violated conditions with their paths, and a
hedge when no formula at all identifies the effect). :class:`IdentificationReport` reads as
text, Markdown, HTML (with the graph drawn and the super-nodes ringed) and LaTeX, and draws
itself with matplotlib. ``docs/identification.md`` explains the criteria.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from causal_mixtures.exceptions import NotIdentifiableError
from causal_mixtures.graph import render
from causal_mixtures.graph.core import CausalGraph
from causal_mixtures.graph.hedge import Hedge, find_hedge
from causal_mixtures.graph.identify import (
    Estimand,
    check_back_door,
    check_front_door,
    identify,
)
from causal_mixtures.graph.reduce import FrontDoorReduction, check_reduction

__all__ = ["IdentificationReport", "estimand_latex", "identification_report"]

_CRITERION_TEXT = {
    "front_door": "front door",
    "conditional_front_door": "conditional front door",
    "back_door": "back door",
    "front_door_reducible": "front-door reducible",
    "none": "none",
}


def _tex_name(name: str) -> str:
    """A node name in LaTeX: ``Y``, ``M_{1}``, ``Y'``, ``\\mathrm{age}``."""
    prime = "'" * (len(name) - len(name.rstrip("'")))
    base = name.rstrip("'")
    if re.fullmatch(r"[A-Za-z]", base):
        out = base
    elif re.fullmatch(r"[A-Za-z]\d+", base):
        out = f"{base[0]}_{{{base[1:]}}}"
    else:
        escaped = re.sub(r"([_&%$#{}])", r"\\\1", base).replace(" ", r"\ ")
        out = rf"\mathrm{{{escaped}}}"
    return out + prime


def _tex_list(names: Sequence[str]) -> str:
    return ", ".join(_tex_name(n) for n in names)


def estimand_latex(estimand: Estimand) -> str:
    """The identifying formula of ``estimand`` in LaTeX (no surrounding ``$``).

    Parameters
    ----------
    estimand : Estimand

    Returns
    -------
    str
        E.g. ``p(X \\mid \\mathrm{do}(Y)) = \\sum_{Z} p(Z \\mid Y) \\sum_{Y'} p(X \\mid Y', Z)
        p(Y')`` for the front door.
    """
    y, x = _tex_name(estimand.cause), _tex_name(estimand.effect)
    yp = _tex_name(f"{estimand.cause}'")
    lhs = rf"p({x} \mid \mathrm{{do}}({y}))"
    zs, ws = _tex_list(estimand.mechanisms), _tex_list(estimand.covariates)
    if estimand.kind == "front_door":
        rhs = rf"\sum_{{{zs}}} p({zs} \mid {y}) \sum_{{{yp}}} p({x} \mid {yp}, {zs})\, p({yp})"
    elif estimand.kind == "front_door_covariates":
        rhs = (
            rf"\sum_{{{ws}}} p({ws}) \sum_{{{zs}}} p({zs} \mid {y}, {ws}) \sum_{{{yp}}} "
            rf"p({x} \mid {yp}, {zs}, {ws})\, p({yp} \mid {ws})"
        )
    elif ws:
        rhs = rf"\sum_{{{ws}}} p({x} \mid {y}, {ws})\, p({ws})"
    else:
        rhs = rf"p({x} \mid {y})"
    return f"{lhs} = {rhs}"


def _reduction_latex(reduction: FrontDoorReduction) -> str:
    c, m, e = (
        _tex_list(s) for s in (reduction.cause_set, reduction.mechanism_set, reduction.effect_set)
    )
    cp = _tex_list([f"{n}'" for n in reduction.cause_set])
    return (
        rf"p({e} \mid \mathrm{{do}}({c})) = \sum_{{{m}}} p({m} \mid {c}) "
        rf"\sum_{{{cp}}} p({e} \mid {cp}, {m})\, p({cp})"
    )


@dataclass(frozen=True)
class IdentificationReport:
    """How (and whether) ``p(effect | do(cause))`` is identified from a graph.

    Display it in a notebook (Markdown or HTML with the graph drawn), print it, or take its
    :attr:`latex`. Build it with :func:`identification_report`.

    Parameters
    ----------
    graph : CausalGraph
        The graph examined.
    cause, effect : str
        The query ``p(effect | do(cause))``.
    criterion : str
        One of ``"front_door"``, ``"conditional_front_door"``, ``"back_door"``,
        ``"front_door_reducible"`` or ``"none"``.
    estimand : Estimand or None
        The estimand the estimators fit; None when ``criterion == "none"``.
    id_identifiable : bool
        Whether the (complete) ID algorithm identifies the effect by any formula.
    problems : tuple of str
        For ``criterion == "none"``: the violated conditions, each naming its path.
    hedge : Hedge or None
        For an effect that no formula identifies: the hedge that blocks it.
    message : str
        A one-paragraph verdict (the error ``identify`` raised, for ``"none"``).
    """

    graph: CausalGraph
    cause: str
    effect: str
    criterion: str
    estimand: Estimand | None
    id_identifiable: bool
    problems: tuple[str, ...] = ()
    hedge: Hedge | None = None
    message: str = ""

    @property
    def identifiable(self) -> bool:
        """Whether the estimators can fit the effect (a criterion other than ``"none"``)."""
        return self.criterion != "none"

    @property
    def reduction(self) -> FrontDoorReduction | None:
        """The front-door reduction, for ``criterion == "front_door_reducible"``."""
        return None if self.estimand is None else self.estimand.reduction

    @property
    def super_nodes(self) -> dict[str, tuple[str, ...]]:
        """``{"cause": ..., "mechanism": ..., "effect": ...}`` (empty for ``"none"``).

        For a reduction, its super-nodes; for declared roles, the cause with the covariates,
        the mechanisms and the effect.
        """
        if self.reduction is not None:
            return self.reduction.super_nodes
        if self.estimand is None:
            return {}
        return {
            "cause": (self.cause, *self.estimand.covariates),
            "mechanism": self.estimand.mechanisms,
            "effect": (self.effect,),
        }

    @property
    def expression(self) -> str:
        """The estimand in plain text (empty for ``"none"``)."""
        return "" if self.estimand is None else self.estimand.expression

    @property
    def latex(self) -> str:
        """The estimand in LaTeX; for a reduction whose cause super-node holds more than the
        cause, also the formula for the super-nodes (Theorem 1 of docs/identification.md)."""
        if self.estimand is None:
            y, x = _tex_name(self.cause), _tex_name(self.effect)
            verdict = (
                "identified by ID, not front-door reducible"
                if self.id_identifiable
                else "not identifiable"
            )
            return rf"p({x} \mid \mathrm{{do}}({y}))\ \text{{{verdict}}}"
        text = estimand_latex(self.estimand)
        if self._intervenes_on_more():
            text += r" \qquad " + _reduction_latex(self.reduction)  # type: ignore[arg-type]
        return text

    def _intervenes_on_more(self) -> bool:
        """Whether the reduction's set formula differs from the estimand (extra nodes)."""
        red = self.reduction
        return red is not None and (bool(red.adjustment) or bool(red.effect_extras))

    def _lines(self) -> list[str]:
        name = _CRITERION_TEXT[self.criterion]
        lines = [f"p({self.effect} | do({self.cause})): criterion {name}"]
        if self.estimand is not None:
            lines.append(f"estimand: {self.expression}")
            lines.append(f"weights: {self.estimand.weight_formula}")
        for role, nodes in self.super_nodes.items():
            lines.append(f"{role} super-node: {{{', '.join(nodes)}}}")
        if self.reduction is not None and self._intervenes_on_more():
            lines.append(f"reduced front door: {self.reduction.set_expression}")
            if self.reduction.adjustment:
                lines.append(
                    f"the cause super-node's other nodes {{{', '.join(self.reduction.adjustment)}"
                    "} are not descendants of the cause: they enter the fit as covariates "
                    "(conditional front door given them)"
                )
        lines += [f"violated: {p}" for p in self.problems]
        if self.hedge is not None:
            lines.append(str(self.hedge))
        if self.message:
            lines.append(self.message)
        return lines

    def __str__(self) -> str:
        return "\n".join(self._lines())

    def _repr_markdown_(self) -> str:
        head, *rest = self._lines()
        out = [f"**{head}**", ""]
        if self.estimand is not None:
            out += [f"$${self.latex}$$", ""]
        out += [f"- {line}" for line in rest]
        return "\n".join(out)

    def to_svg(self) -> str:
        """The graph as SVG, with the super-nodes ringed and labelled ``C*``, ``M*``, ``E*``."""
        g = self.graph
        return render.render_svg(
            **self._layout(), text=g.to_string(), seed=repr(g) + self.criterion
        )

    def _layout(self) -> dict[str, Any]:
        """What both drawings take: the graph's structure and the super-node rings."""
        g = self.graph
        return dict(
            nodes=g.nodes,
            roles=g.roles,
            directed=g.directed,
            bidirected=g.bidirected,
            parents={n: g.parents(n) for n in g.nodes},
            order=g.topological_order(),
            halo={n: role for role, nodes in self.super_nodes.items() for n in nodes},
        )

    def _repr_html_(self) -> str:
        head, *rest = self._lines()
        items = "".join(f"<li>{html.escape(line)}</li>" for line in rest)
        return (
            f"<div class='cm-identification'><p><b>{html.escape(head)}</b></p>"
            f"{self.to_svg()}<ul>{items}</ul></div>"
        )

    def draw(self, ax: Any = None) -> Any:
        """Draw the graph with matplotlib, super-nodes ringed; returns the ``Axes``.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; a new figure if None.

        Returns
        -------
        matplotlib.axes.Axes
        """
        return render.draw_matplotlib(
            **self._layout(), ax=ax,
            title=f"p({self.effect} | do({self.cause})): {_CRITERION_TEXT[self.criterion]}",
        )


def _blocking(
    graph: CausalGraph, y: str, x: str, zs: Sequence[str], ws: Sequence[str]
) -> list[str]:
    """The violated conditions to show for a graph that no criterion identifies."""
    if zs:
        return check_front_door(graph, y, x, zs, ws)
    problems = check_back_door(graph, y, x, ws)
    if ws:
        return problems
    # Only a cause and an effect: also show why the nodes between them fail as M*.
    obs = nx.DiGraph(graph.directed)
    obs.add_nodes_from(graph.nodes)
    between = [
        n
        for n in graph.nodes
        if n not in (y, x) and n in nx.descendants(obs, y) and n in nx.ancestors(obs, x)
    ]
    if between:
        problems += [
            f"with the mechanism super-node {{{', '.join(between)}}} (every node between "
            f"{y} and {x}): {p}"
            for p in check_reduction(graph, [y], between, [x])
        ]
    return problems


def identification_report(
    graph: CausalGraph,
    *,
    cause: str | None = None,
    effect: str | None = None,
    mechanisms: Sequence[str] | None = None,
    covariates: Sequence[str] | None = None,
) -> IdentificationReport:
    """Report which criterion identifies ``p(effect | do(cause))`` from ``graph``, and how.

    Parameters
    ----------
    graph : CausalGraph
        The graph; declared roles are checked, a graph with only a cause and an effect gets
        its roles found (:func:`~causal_mixtures.graph.identify.identify`).
    cause, effect : str, optional
        Override the nodes with the roles ``cause`` and ``effect``.
    mechanisms, covariates : sequence of str, optional
        Override the declared mechanisms and covariates.

    Returns
    -------
    IdentificationReport
        Never raises for an unidentifiable graph: the report says ``criterion == "none"``,
        why, and whether the ID algorithm identifies the effect by another formula.

    Raises
    ------
    ValueError
        If the cause or the effect is missing, or the roles overlap (as ``identify``).
    TypeError
        If ``graph`` is not a :class:`~causal_mixtures.CausalGraph`.

    Examples
    --------
    >>> g = CausalGraph("Y [cause]; X [effect]; R -> Y -> M -> X; R -> M; Y <-> X")
    >>> report = identification_report(g)
    >>> report.criterion, report.super_nodes["cause"]
    ('front_door_reducible', ('Y', 'R'))
    """
    try:
        estimand = identify(
            graph, cause=cause, effect=effect, mechanisms=mechanisms, covariates=covariates
        )
    except NotIdentifiableError as err:
        y = cause if cause is not None else graph.cause
        x = effect if effect is not None else graph.effect
        zs = graph.mechanisms if mechanisms is None else tuple(mechanisms)
        ws = graph.covariates if covariates is None else tuple(covariates)
        hedge = find_hedge(graph, y, x)
        return IdentificationReport(
            graph=graph,
            cause=y,
            effect=x,
            criterion="none",
            estimand=None,
            id_identifiable=hedge is None,
            problems=tuple(_blocking(graph, y, x, zs, ws)),
            hedge=hedge,
            message=str(err),
        )
    return IdentificationReport(
        graph=graph,
        cause=estimand.cause,
        effect=estimand.effect,
        criterion=estimand.criterion,
        estimand=estimand,
        id_identifiable=True,
        message=f"identified by the {_CRITERION_TEXT[estimand.criterion]} criterion",
    )
