"""Drawing a causal graph: a standalone SVG image and Mermaid flowchart source.

The functions take the graph's parts as plain data (``CausalGraph.to_svg`` and
``CausalGraph.to_mermaid`` call them), so that this module does not depend on the graph
class. The layout is layered, left to right, by longest path from the roots.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape as _xml_escape
from xml.sax.saxutils import quoteattr as _xml_attr

from causal_mixtures.graph.roles import KNOWN_ROLES

__all__ = ["ROLE_COLOURS", "SUPER_NODE_COLOURS", "draw_matplotlib", "render_mermaid", "render_svg"]

#: Colour and label of each super-node ring drawn by ``halo`` (cause, mechanism, effect).
SUPER_NODE_COLOURS: dict[str, tuple[str, str]] = {
    "cause": ("#1f5fbf", "C*"),
    "mechanism": ("#b85c00", "M*"),
    "effect": ("#2e7d32", "E*"),
}

#: Fill and stroke colour of a node, by its (first) role.
ROLE_COLOURS: dict[str, tuple[str, str]] = {
    "cause": ("#cfe2ff", "#1f5fbf"),
    "effect": ("#d3f0d8", "#2e7d32"),
    "mechanism": ("#ffe3b8", "#b85c00"),
    "covariate": ("#e8e0f7", "#6a4fb3"),
}
_NO_ROLE_COLOURS = ("#ffffff", "#333333")
_FONT = "font-family='Helvetica, Arial, sans-serif'"

Point = tuple[float, float]
Edge = tuple[str, str]


def render_mermaid(
    nodes: Sequence[str],
    roles: Mapping[str, tuple[str, ...]],
    directed: Sequence[Edge],
    bidirected: Sequence[Edge],
) -> str:
    """Mermaid flowchart source: ``-->`` edges, dashed ``<-.->`` latent links, role styles."""
    ids = {n: f"n{i}" for i, n in enumerate(nodes)}
    lines = ["flowchart LR"]
    for n in nodes:
        label = n.replace('"', "#quot;")
        if roles[n]:
            label += f"<br/><i>{', '.join(roles[n])}</i>"
        lines.append(f'    {ids[n]}(["{label}"])')
    lines += [f"    {ids[a]} --> {ids[b]}" for a, b in directed]
    lines += [f"    {ids[a]} <-.-> {ids[b]}" for a, b in bidirected]
    for role in KNOWN_ROLES:
        fill, stroke = ROLE_COLOURS[role]
        members = [ids[n] for n in nodes if role in roles[n]]
        if members:
            lines.append(f"    classDef {role} fill:{fill},stroke:{stroke}")
            lines.append(f"    class {','.join(members)} {role}")
    return "\n".join(lines)


def _quad_point(p0: Point, c: Point, p1: Point, t: float) -> Point:
    s = 1.0 - t
    return (
        s * s * p0[0] + 2 * s * t * c[0] + t * t * p1[0],
        s * s * p0[1] + 2 * s * t * c[1] + t * t * p1[1],
    )


def _layout(
    nodes: Sequence[str],
    roles: Mapping[str, tuple[str, ...]],
    parents: Mapping[str, Sequence[str]],
    order: Sequence[str],
) -> tuple[dict[str, Point], dict[str, Point]]:
    """Node centres and ellipse radii: layers by longest path, rows by the parents' rows."""
    layer: dict[str, int] = {}
    for n in order:
        layer[n] = max((layer[p] + 1 for p in parents[n]), default=0)
    columns: list[list[str]] = [[] for _ in range(max(layer.values()) + 1)]
    for n in nodes:
        columns[layer[n]].append(n)

    # Node sizes from the label lengths (a rough width per character of 13 px text).
    size: dict[str, Point] = {}
    for n in nodes:
        role = ", ".join(roles[n])
        width = max(7.4 * len(n), 5.8 * len(role))
        size[n] = (max(30.0, width / 2 + 16), 25.0 if role else 20.0)

    # Inside a layer, order by the mean row of the parents (roots first), then node order.
    rank = {n: i for i, n in enumerate(nodes)}
    row: dict[str, float] = {}
    for members in columns:
        members.sort(
            key=lambda n: (
                sum(row[p] for p in parents[n]) / len(parents[n]) if parents[n] else -1.0,
                rank[n],
            )
        )
        for i, n in enumerate(members):
            row[n] = i - (len(members) - 1) / 2
    pos: dict[str, Point] = {}
    x = 0.0
    for k, members in enumerate(columns):
        widest = max(size[n][0] for n in members)
        if k > 0:
            x += widest + 70.0
        for n in members:
            pos[n] = (x, row[n] * 90.0)
        x += widest
    return pos, size


def render_svg(
    *,
    nodes: Sequence[str],
    roles: Mapping[str, tuple[str, ...]],
    directed: Sequence[Edge],
    bidirected: Sequence[Edge],
    parents: Mapping[str, Sequence[str]],
    order: Sequence[str],
    text: str,
    seed: str,
    halo: Mapping[str, str] | None = None,
) -> str:
    """Lay out and draw a graph as an ``<svg>`` document (see ``CausalGraph.to_svg``).

    ``order`` is a topological order of ``nodes``, ``text`` the graph in the graph language
    (for the accessible label) and ``seed`` a string identifying the graph, hashed into the
    ids of the arrow-head markers so that several drawings on one page do not clash.
    ``halo`` maps nodes to a key of :data:`SUPER_NODE_COLOURS`: those nodes get a thick ring
    of the super-node's colour and its label (``C*``, ``M*``, ``E*``) above them.
    """
    pid = "cm" + hashlib.sha1(seed.encode("utf-8")).hexdigest()[:8]
    if not nodes:
        return (
            "<svg xmlns='http://www.w3.org/2000/svg' width='160' height='40' "
            "viewBox='0 0 160 40'>"
            f"<text x='80' y='24' text-anchor='middle' font-size='13' {_FONT}>"
            "(empty graph)</text></svg>"
        )
    pos, size = _layout(nodes, roles, parents, order)

    def boundary(n: str, toward: Point) -> Point:
        cx, cy = pos[n]
        rx, ry = size[n]
        dx, dy = toward[0] - cx, toward[1] - cy
        norm = math.hypot(dx / rx, dy / ry)
        if norm == 0:
            return cx, cy
        return cx + dx / norm, cy + dy / norm

    def control_point(a: str, b: str, side: float, bow: float) -> Point:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy) or 1.0
        nx_, ny_ = -dy / length, dx / length  # unit normal
        if ny_ > 0 or (ny_ == 0 and nx_ > 0):  # make "side = +1" mean "upwards"
            nx_, ny_ = -nx_, -ny_
        offset = side * bow
        return ((x0 + x1) / 2 + nx_ * offset, (y0 + y1) / 2 + ny_ * offset)

    def inside(n: str, p: Point, pad: float) -> bool:
        (cx, cy), (rx, ry) = pos[n], size[n]
        return ((p[0] - cx) / (rx + pad)) ** 2 + ((p[1] - cy) / (ry + pad)) ** 2 < 1.0

    drawn: list[Point] = []  # sample points of the edges placed so far

    def samples(a: str, b: str, control: Point | None) -> list[Point]:
        p0, p1 = pos[a], pos[b]
        c = control if control is not None else ((p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2)
        points = (_quad_point(p0, c, p1, i / 32) for i in range(1, 32))
        return [p for p in points if not inside(a, p, 4.0) and not inside(b, p, 4.0)]

    def place(a: str, b: str, *, sides: tuple[float, ...], straight: bool) -> Point | None:
        """Choose a straight line or a bow that avoids nodes and, if possible, other edges."""
        length = math.hypot(pos[b][0] - pos[a][0], pos[b][1] - pos[a][1])
        base = max(60.0, 0.3 * length)
        candidates: list[tuple[float, Point | None]] = []
        if straight:
            candidates.append((0.0, None))
        for rank_side, side in enumerate(sides):
            for k, factor in enumerate((1.0, 1.5, 2.25, 3.4)):
                penalty = 3.0 * straight + 2.0 * k + 1.5 * rank_side
                candidates.append((penalty, control_point(a, b, side, base * factor)))

        def cost(candidate: tuple[float, Point | None]) -> float:
            pts = samples(a, b, candidate[1])
            hits = sum(inside(n, p, 6.0) for p in pts for n in nodes if n not in (a, b))
            crowd = sum(
                any(abs(p[0] - q[0]) < 9 and abs(p[1] - q[1]) < 9 for q in drawn) for p in pts
            )
            return 1000.0 * hits + crowd + candidate[0]

        best = min(candidates, key=cost)[1]
        drawn.extend(samples(a, b, best))
        return best

    shapes: list[str] = []
    extent: list[Point] = []

    def path_element(a: str, b: str, control: Point | None, *, dashed: bool, title: str) -> str:
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

    for a, b in directed:
        control = place(a, b, sides=(-1.0, 1.0), straight=True)
        shapes.append(path_element(a, b, control, dashed=False, title=f"{a} -> {b}"))
    for a, b in bidirected:
        control = place(a, b, sides=(1.0, -1.0), straight=False)
        shapes.append(path_element(a, b, control, dashed=True, title=f"{a} <-> {b} (latent)"))

    for n in nodes:
        extent += [
            (pos[n][0] - size[n][0], pos[n][1] - size[n][1]),
            (pos[n][0] + size[n][0], pos[n][1] + size[n][1]),
        ]
        shapes.append(_node_element(n, roles[n], pos[n], size[n]))
        if halo and n in halo:
            colour, label = SUPER_NODE_COLOURS[halo[n]]
            (cx, cy), (rx, ry) = pos[n], size[n]
            shapes.append(
                f"<g class='super-node'><ellipse cx='{cx:.1f}' cy='{cy:.1f}' rx='{rx + 5:.1f}' "
                f"ry='{ry + 5:.1f}' fill='none' stroke='{colour}' stroke-width='3'/>"
                f"<text x='{cx:.1f}' y='{cy - ry - 8:.1f}' text-anchor='middle' font-size='11' "
                f"font-weight='bold' fill='{colour}' {_FONT}>{label}</text></g>"
            )
            extent.append((cx, cy - ry - 22))
    return _document(shapes, extent, pid, text)


def _node_element(n: str, roles: tuple[str, ...], centre: Point, radii: Point) -> str:
    """The SVG group of one node: an ellipse coloured by role, the name and the role."""
    (cx, cy), (rx, ry) = centre, radii
    fill, stroke = ROLE_COLOURS[roles[0]] if roles else _NO_ROLE_COLOURS
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
    return "".join(parts)


def _document(shapes: list[str], extent: list[Point], pid: str, text: str) -> str:
    """Wrap the shapes in an ``<svg>`` element sized to ``extent``, with arrow heads."""
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
        f"aria-label={_xml_attr('causal graph: ' + text)}>" + defs + "".join(shapes) + "</svg>"
    )


def draw_matplotlib(
    *,
    nodes: Sequence[str],
    roles: Mapping[str, tuple[str, ...]],
    directed: Sequence[Edge],
    bidirected: Sequence[Edge],
    parents: Mapping[str, Sequence[str]],
    order: Sequence[str],
    halo: Mapping[str, str] | None = None,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Draw a graph with matplotlib (same layout as the SVG) and return the ``Axes``.

    Directed edges are solid arrows, latent confounders dashed curved double-headed arrows;
    nodes are coloured by role, and the nodes in ``halo`` get a ring of their super-node's
    colour (:data:`SUPER_NODE_COLOURS`), with a legend.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Ellipse, FancyArrowPatch

    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(nodes)), 3.2))
    if not nodes:
        ax.set_axis_off()
        return ax
    pos, size = _layout(nodes, roles, parents, order)
    for a, b in directed:
        ax.add_patch(
            FancyArrowPatch(
                pos[a],
                pos[b],
                arrowstyle="-|>",
                mutation_scale=14,
                color="#333333",
                shrinkA=24,
                shrinkB=24,
                lw=1.4,
                zorder=1,
            )
        )
    for a, b in bidirected:
        ax.add_patch(
            FancyArrowPatch(
                pos[a],
                pos[b],
                arrowstyle="<|-|>",
                mutation_scale=12,
                color="#7a1f1f",
                connectionstyle="arc3,rad=-0.35",
                linestyle="--",
                shrinkA=24,
                shrinkB=24,
                lw=1.3,
                zorder=1,
            )
        )
    for n in nodes:
        fill, stroke = ROLE_COLOURS[roles[n][0]] if roles[n] else _NO_ROLE_COLOURS
        (cx, cy), (rx, ry) = pos[n], size[n]
        ax.add_patch(
            Ellipse((cx, cy), 2 * rx, 2 * ry, facecolor=fill, edgecolor=stroke, lw=1.5, zorder=2)
        )
        if halo and n in halo:
            colour, _ = SUPER_NODE_COLOURS[halo[n]]
            ax.add_patch(
                Ellipse(
                    (cx, cy), 2 * rx + 12, 2 * ry + 12, fill=False, edgecolor=colour, lw=3, zorder=2
                )
            )
        ax.text(cx, cy, n, ha="center", va="center", fontsize=11, zorder=3)
    xs = [pos[n][0] for n in nodes]
    ys = [pos[n][1] for n in nodes]
    pad = 70.0
    ax.set_xlim(min(xs) - pad, max(xs) + pad)
    ax.set_ylim(max(ys) + pad + 30, min(ys) - pad - 30)  # y grows downwards, as in the SVG
    ax.set_aspect("equal")
    ax.set_axis_off()
    if halo:
        used = [k for k in SUPER_NODE_COLOURS if k in set(halo.values())]
        handles = [
            Line2D(
                [],
                [],
                color=SUPER_NODE_COLOURS[k][0],
                lw=3,
                label=f"{SUPER_NODE_COLOURS[k][1]} ({k} super-node)",
            )
            for k in used
        ]
        ax.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, -0.18),
            ncol=len(handles),
            frameon=False,
            fontsize=9,
        )
    if title:
        ax.set_title(title, fontsize=10)
    return ax
