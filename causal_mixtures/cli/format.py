"""Number and table formatting shared by the subcommands' reports."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "MAX_TABLE_ROWS",
    "format_float",
    "format_value",
    "khat_flag",
    "shown_rows",
    "weights_cells",
    "weights_header",
]

# Tables longer than this show their first and last halves around a "..." row.
MAX_TABLE_ROWS = 12


def format_value(v: Any) -> str:
    """A table cell for a value of any type (floats to 4 significant digits)."""
    if isinstance(v, float | np.floating):
        return f"{float(v):.4g}"
    if isinstance(v, np.generic):
        return str(v.item())
    return str(v)


def format_float(v: float, width: int, digits: int) -> str:
    """``v`` right-aligned in ``width`` with ``digits`` decimals; nan / inf spelled out."""
    if not math.isfinite(v):
        return f"{'nan' if math.isnan(v) else ('inf' if v > 0 else '-inf'):>{width}}"
    return f"{v:{width}.{digits}f}"


def shown_rows(n: int) -> list[int]:
    """Row indices of an ``n``-row table to print; ``-1`` marks the elided middle."""
    if n <= MAX_TABLE_ROWS:
        return list(range(n))
    half = MAX_TABLE_ROWS // 2
    return [*range(half), -1, *range(n - half, n)]


def khat_flag(khat: float) -> str:
    """``"  (unreliable)"`` if the Pareto k-hat is over the PSIS threshold, else ``""``."""
    from causal_mixtures.weights.psis import KHAT_THRESHOLD

    return "  (unreliable)" if np.nan_to_num(khat, nan=-np.inf) > KHAT_THRESHOLD else ""


def weights_header(indent: str = "  ") -> str:
    """The header of the causal-weights columns (do value, ESS, ESS/n, k-hat)."""
    return f"{indent}{'do':>10}  {'ESS':>9}  {'ESS/n':>6}  {'k-hat':>6}"


def weights_cells(cw: Any, j: int) -> str:
    """The causal-weights cells of row ``j`` of a :class:`~causal_mixtures.CausalWeights`."""
    return (
        f"{format_value(cw.do_values[j]):>10}  {cw.ess[j]:9.1f}  "
        f"{format_float(float(cw.ess_ratio[j]), 6, 3)}  {format_float(float(cw.khat[j]), 6, 2)}"
    )
