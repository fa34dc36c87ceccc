"""The layout is a contract: folders import only folders before them in the flow, no import
cycles, no private name imported across modules, one short docstring and at most ~700 lines
per module (docs/architecture.md)."""

from __future__ import annotations

import ast
import pathlib
import re

import networkx as nx
import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "causal_mixtures"
#: The flow: a folder may import itself, the folders before it and the shared top level.
ORDER = ["graph", "weights", "mixture", "diagnostics", "estimators", "simulate", "cli"]
TOP_LEVEL = {"_validation", "_random", "_threads", "exceptions"}
MAX_LINES = 700


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _imports(path: pathlib.Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names imported, line) for every package-internal import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
            "causal_mixtures"
        ):
            found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("causal_mixtures"):
                    found.append((a.name, [], node.lineno))
    return found


def _folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _rank(module: str) -> int | None:
    folder = _folder(module)
    return ORDER.index(folder) if folder in ORDER else None


@pytest.mark.parametrize("module", [m for m in MODULES if _rank(m) is not None])
def test_folders_import_only_earlier_folders(module: str) -> None:
    rank = _rank(module)
    for target, _, line in _imports(MODULES[module]):
        folder = _folder(target)
        if folder in TOP_LEVEL or folder is None:
            continue
        assert folder in ORDER, f"{module}:{line} imports {target}"
        assert ORDER.index(folder) <= rank, (
            f"{module}:{line} imports {target}: {folder}/ comes after {_folder(module)}/ in "
            f"the flow {ORDER}"
        )


def test_no_import_cycles() -> None:
    g = nx.DiGraph()
    for module, path in MODULES.items():
        for target, names, _ in _imports(path):
            # ``from pkg import sub`` imports the submodule pkg.sub.
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            for t in subs or [target]:
                if t in MODULES and t != module and not module.startswith(t + "."):
                    g.add_edge(module, t)
    # The package __init__ files only re-export; cycles through them are not real.
    g.remove_nodes_from([m for m in list(g) if MODULES[m].name == "__init__.py"])
    cycles = list(nx.simple_cycles(g))
    assert not cycles, cycles[:3]


@pytest.mark.parametrize("module", list(MODULES))
def test_no_private_name_imported_across_modules(module: str) -> None:
    for target, names, line in _imports(MODULES[module]):
        private = [
            n for n in names
            if n.startswith("_") and not n.endswith("__") and f"{target}.{n}" not in MODULES
        ]
        assert not private, f"{module}:{line} imports private {private} from {target}"


@pytest.mark.parametrize("module", list(MODULES))
def test_module_has_a_docstring_and_a_bounded_size(module: str) -> None:
    path = MODULES[module]
    text = path.read_text()
    tree = ast.parse(text)
    assert ast.get_docstring(tree), f"{module} has no module docstring"
    n = len(text.splitlines())
    assert n <= MAX_LINES, f"{module} has {n} lines (> {MAX_LINES}): split it by concept"


REPO = PACKAGE.parent
REPO_DOCS = {p.name for p in REPO.rglob("*.md") if ".venv" not in p.parts}


@pytest.mark.parametrize("module", list(MODULES))
def test_every_document_a_module_points_to_is_in_the_repository(module: str) -> None:
    """A user or contributor has the repository only: a module may point to a page of it
    (``docs/weights.md``), never to one that is not there."""
    text = MODULES[module].read_text()
    for ref in re.findall(r"[\w./-]+\.md\b", text):
        found = (REPO / ref).is_file() if "/" in ref else ref in REPO_DOCS
        assert found, f"{module} points to {ref}, which is not in the repository"
