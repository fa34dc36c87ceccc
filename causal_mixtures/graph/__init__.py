"""Causal graphs: the graph language, :class:`CausalGraph`, identification, named specs.

Text is parsed by :mod:`.dsl` into a :class:`CausalGraph` (:mod:`.core`, drawn by
:mod:`.render`); :mod:`.identify` derives the estimand (finding front-door super-nodes with
:mod:`.reduce` and the ID verdict with :mod:`.hedge`), :mod:`.report` explains it and
:mod:`.specs` loads the graphs of the ``models/`` registry. See ``docs/graphs.md`` and
``docs/identification.md``. The public names of :mod:`.reduce`, :mod:`.hedge` and
:mod:`.report` are exported by the top-level package (``causal_mixtures.find_reduction``, ...).
"""

from causal_mixtures.graph.core import KNOWN_ROLES, CausalGraph
from causal_mixtures.graph.identify import Estimand, identify
from causal_mixtures.graph.specs import GraphSpec, list_graphs, load_graph, load_spec

__all__ = [
    "KNOWN_ROLES",
    "CausalGraph",
    "Estimand",
    "GraphSpec",
    "identify",
    "list_graphs",
    "load_graph",
    "load_spec",
]
