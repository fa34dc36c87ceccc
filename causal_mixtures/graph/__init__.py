"""Causal graphs: the graph language, :class:`CausalGraph`, identification, named specs.

Text is parsed by :mod:`.dsl` into a :class:`CausalGraph` (:mod:`.core`, drawn by
:mod:`.render`); :mod:`.identify` derives the estimand (finding front-door super-nodes with
:mod:`.reduce` and the ID verdict with :mod:`.hedge`), :mod:`.report` explains it and
:mod:`.specs` loads the graphs of the ``models/`` registry. See ``docs/graphs.md`` and
``docs/identification.md``.
"""

from causal_mixtures.graph.core import KNOWN_ROLES, CausalGraph
from causal_mixtures.graph.hedge import Hedge, find_hedge
from causal_mixtures.graph.identify import Estimand, identify
from causal_mixtures.graph.reduce import FrontDoorReduction, check_reduction, find_reduction
from causal_mixtures.graph.report import IdentificationReport, identification_report
from causal_mixtures.graph.specs import GraphSpec, list_graphs, load_graph, load_spec

__all__ = [
    "KNOWN_ROLES",
    "CausalGraph",
    "Estimand",
    "FrontDoorReduction",
    "GraphSpec",
    "Hedge",
    "IdentificationReport",
    "check_reduction",
    "find_hedge",
    "find_reduction",
    "identification_report",
    "identify",
    "list_graphs",
    "load_graph",
    "load_spec",
]
