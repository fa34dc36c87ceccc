"""Named causal-graph specifications: the ``models/`` registry.

Each spec is a TOML file in the repository's ``models/`` folder (the data package
``causal_mixtures._specs`` in a wheel); :func:`load_graph` and :func:`load_spec` read one by
name or path, :func:`list_graphs` lists them. ``docs/graphs.md`` describes the keys.
"""

from __future__ import annotations

import difflib
import importlib.resources
import os
import tomllib
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

from causal_mixtures.exceptions import GraphSyntaxError
from causal_mixtures.graph.core import CausalGraph
from causal_mixtures.graph.identify import CRITERIA

__all__ = ["GraphSpec", "list_graphs", "load_graph", "load_spec"]

# In a source checkout (or an editable install) the specs are read straight from the
# repository's models/ folder; a wheel ships them as the package causal_mixtures._specs.
_REPO_ROOT = Path(__file__).resolve().parents[2]
_CHECKOUT_SPECS = _REPO_ROOT / "models"
_SPECS_PACKAGE = "causal_mixtures._specs"

_REQUIRED_KEYS = ("name", "title", "reference", "graph")
_OPTIONAL_KEYS = ("estimand", "identifiable", "reason", "description", "criterion")


@dataclass(frozen=True)
class GraphSpec:
    """A named causal graph with its expected identification result.

    Parameters
    ----------
    name : str
        The registry name (the file name without ``.toml``).
    title : str
        A one-line human-readable title.
    reference : str
        Where the graph comes from (book pages, papers).
    graph : CausalGraph
        The parsed graph, with roles.
    estimand : str
        The expected identifying formula (as :attr:`Estimand.expression`); empty for an
        unidentifiable graph.
    identifiable : bool
        Whether :func:`causal_mixtures.identify` is expected to succeed.
    reason : str
        For an unidentifiable graph, (part of) the expected error message; else empty.
    description : str
        A longer explanation; may be empty.
    criterion : str
        The criterion expected to identify the graph (``"front_door"``,
        ``"conditional_front_door"``, ``"back_door"``, ``"front_door_reducible"`` or
        ``"none"``); empty when the spec does not say.
    path : pathlib.Path or importlib.resources.abc.Traversable or None
        The file the spec was read from.
    """

    name: str
    title: str
    reference: str
    graph: CausalGraph
    estimand: str = ""
    identifiable: bool = True
    reason: str = ""
    description: str = ""
    path: Path | Traversable | None = None
    criterion: str = ""


def _specs_dir() -> Traversable:
    """The folder holding the registered specs.

    The checkout folder ``<repo>/models`` is used when this module runs from a source tree
    (recognised by a ``pyproject.toml`` next to it, so that an unrelated top-level
    ``models/`` folder in ``site-packages`` is never picked up); otherwise the installed data
    package ``causal_mixtures._specs``.
    """
    if _CHECKOUT_SPECS.is_dir() and (_REPO_ROOT / "pyproject.toml").is_file():
        return _CHECKOUT_SPECS
    try:
        return importlib.resources.files(_SPECS_PACKAGE)
    except ModuleNotFoundError as err:
        raise FileNotFoundError(
            f"cannot find the causal-graph registry: neither {_CHECKOUT_SPECS} nor the "
            f"package {_SPECS_PACKAGE} exists; reinstall causal_mixtures, or pass the path "
            "of a .toml spec file instead of a name"
        ) from err


def _registry() -> dict[str, Traversable]:
    folder = _specs_dir()
    return {
        entry.name.removesuffix(".toml"): entry
        for entry in folder.iterdir()
        if entry.name.endswith(".toml") and entry.is_file()
    }


def list_graphs() -> list[str]:
    """Return the names of the registered graph specs, sorted.

    Returns
    -------
    list of str
        For example ``["back_door", "front_door", ...]``; each works with
        :func:`load_graph` and :func:`load_spec`.
    """
    return sorted(_registry())


def _looks_like_path(value: str | os.PathLike[str]) -> bool:
    if isinstance(value, os.PathLike):
        return True
    return value.endswith(".toml") or "/" in value or os.sep in value


def _resolve(name_or_path: str | os.PathLike[str]) -> tuple[str, Path | Traversable]:
    """Return a display name and the file for a registry name or a path."""
    if not isinstance(name_or_path, str | os.PathLike):
        raise TypeError(
            "expected a registered graph name or the path of a .toml spec file, got "
            f"{type(name_or_path).__name__}"
        )
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if path.is_dir():
            raise ValueError(
                f"{str(path)!r} is a folder, not a graph spec file; pass the path of a .toml "
                "file inside it or one of the registered names: " + ", ".join(list_graphs())
            )
        if not path.is_file():
            raise FileNotFoundError(
                f"no graph spec file at {str(path)!r}; pass an existing .toml file or one of "
                f"the registered names: {', '.join(list_graphs())}"
            )
        return str(path), path
    registry = _registry()
    if name_or_path in registry:
        return name_or_path, registry[name_or_path]
    text = str(name_or_path)
    if any(token in text for token in ("->", "<-", ";", "[")):
        raise ValueError(
            f"{text!r} looks like a graph specification, not a registered name; "
            "load_graph/load_spec take a name or a .toml path. Parse graph text with "
            "CausalGraph.from_string(...) instead."
        )
    close = difflib.get_close_matches(text, list(registry), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown graph {text!r}.{hint} The registered graphs are: "
        f"{', '.join(sorted(registry))}; the path of a .toml spec file also works."
    )


def _read_toml(where: str, path: Path | Traversable) -> dict[str, object]:
    """Read and parse a spec file; every failure names the file and says what is wrong."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ValueError(
            f"cannot read the graph spec {where}: {err.strerror or err}; check that the file "
            "exists and is readable"
        ) from None
    try:
        text = raw.decode("utf-8-sig")  # a leading byte-order mark is harmless
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ValueError(
            f"the graph spec {where} is not UTF-8 text: byte {raw[err.start]:#04x} on line "
            f"{line} cannot be decoded ({err.reason}); save the file as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(
            f"the graph spec {where} is not valid TOML: {err}; fix the syntax there (the keys "
            "are described in docs/graphs.md)"
        ) from None
    except RecursionError:
        raise ValueError(
            f"the graph spec {where} nests arrays or tables too deeply to be read; a graph "
            "spec holds only flat string and boolean keys (see docs/graphs.md)"
        ) from None


def load_spec(name_or_path: str | os.PathLike[str]) -> GraphSpec:
    """Load a graph spec by registered name or from a ``.toml`` file.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A name from :func:`list_graphs` (e.g. ``"front_door"``) or the path of a ``.toml``
        file with the keys described in ``docs/graphs.md``. Graph text in the
        graph language is not accepted here: use :meth:`CausalGraph.from_string`.

    Returns
    -------
    GraphSpec

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the known names), or the file is not valid
        TOML, misses a required key or has a key of the wrong type (the message names the
        file and the key).
    GraphSyntaxError
        If the ``graph`` key does not parse (the message names the file).
    FileNotFoundError
        If a path is given and no such file exists.

    Examples
    --------
    >>> spec = load_spec("front_door")
    >>> spec.graph.mechanisms
    ('Z',)
    """
    where, path = _resolve(name_or_path)
    data = _read_toml(where, path)

    unknown = sorted(set(data) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        raise ValueError(
            f"the graph spec {where} has unknown key(s) {', '.join(map(repr, unknown))}; the "
            f"known keys are {', '.join(_REQUIRED_KEYS + _OPTIONAL_KEYS)}"
        )
    identifiable = data.get("identifiable", True)
    if not isinstance(identifiable, bool):
        raise ValueError(
            f"the graph spec {where} has identifiable = {identifiable!r}; expected true or false"
        )
    required = _REQUIRED_KEYS + (("estimand",) if identifiable else ())
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(
            f"the graph spec {where} misses the required key{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}; a spec needs {', '.join(_REQUIRED_KEYS)} (and "
            "estimand unless identifiable = false), e.g. "
            f'{missing[0]} = "..." (see docs/graphs.md)'
        )
    for key in _REQUIRED_KEYS + ("estimand", "reason", "description", "criterion"):
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"the graph spec {where} has {key} = {data[key]!r}; expected a string")
    if data.get("criterion", "") not in ("", *CRITERIA):
        raise ValueError(
            f"the graph spec {where} has criterion = {data['criterion']!r}; expected one of "
            f"{', '.join(map(repr, CRITERIA))}"
        )
    if not _looks_like_path(name_or_path) and data["name"] != name_or_path:
        raise ValueError(
            f"the graph spec file {path} is registered as {name_or_path!r} but its name key "
            f"is {data['name']!r}; make the name key match the file name"
        )
    try:
        graph = CausalGraph.from_string(data["graph"])
    except GraphSyntaxError as err:
        raise GraphSyntaxError(
            f"in the 'graph' key of {where}: {err.bare_message}", line=err.line, column=err.column
        ) from err
    except ValueError as err:
        raise ValueError(f"in the 'graph' key of {where}: {err}") from err
    return GraphSpec(
        name=data["name"],
        title=data["title"].strip(),
        reference=data["reference"].strip(),
        graph=graph,
        estimand=data.get("estimand", "").strip(),
        identifiable=identifiable,
        reason=data.get("reason", "").strip(),
        description=" ".join(data.get("description", "").split()),
        path=path,
        criterion=data.get("criterion", ""),
    )


def load_graph(name_or_path: str | os.PathLike[str]) -> CausalGraph:
    """Load a causal graph by registered name or from a ``.toml`` spec file.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A name from :func:`list_graphs` (e.g. ``"front_door"``) or the path of a ``.toml``
        spec file. Graph text is not accepted: use :meth:`CausalGraph.from_string`.

    Returns
    -------
    CausalGraph

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the known names) or the file is invalid.
    FileNotFoundError
        If a path is given and no such file exists.

    See Also
    --------
    load_spec : The whole spec, with its title, reference and expected estimand.

    Examples
    --------
    >>> load_graph("front_door")
    CausalGraph('Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X')
    """
    return load_spec(name_or_path).graph
