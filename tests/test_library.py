"""Tests for :mod:`causal_mixtures.library`: the ``models/`` registry of named graphs."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from causal_mixtures.exceptions import GraphSyntaxError, NotIdentifiableError
from causal_mixtures.graph import specs as library
from causal_mixtures.graph.core import CausalGraph
from causal_mixtures.graph.identify import identify
from causal_mixtures.graph.specs import GraphSpec, list_graphs, load_graph, load_spec

MODELS = Path(__file__).resolve().parent.parent / "models"
SPEC_FILES = sorted(MODELS.glob("*.toml"))

REQUIRED = {
    "front_door",
    "back_door",
    "front_door_covariates",
    "front_door_multi",
    "front_door_confounded_mechanism",
}


def test_models_folder_has_the_required_specs() -> None:
    assert REQUIRED <= {p.stem for p in SPEC_FILES}


def test_list_graphs() -> None:
    names = list_graphs()
    assert names == sorted(names)
    assert names == [p.stem for p in SPEC_FILES]


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_every_spec_file(path: Path) -> None:
    spec = load_spec(path)
    assert isinstance(spec, GraphSpec)
    assert spec.name == path.stem
    assert spec.title and spec.reference and spec.description
    assert spec.path == path
    # the graph round-trips through the graph language
    assert CausalGraph.from_string(spec.graph.to_string()) == spec.graph
    # loading by name gives the same thing
    assert load_graph(spec.name) == spec.graph
    assert dataclasses.replace(load_spec(spec.name), path=path) == spec
    # the identifiable flag agrees with identify(), and so do the estimand and reason
    if spec.identifiable:
        assert identify(spec.graph).expression == spec.estimand
        assert not spec.reason
    else:
        assert spec.reason, "an unidentifiable spec must say why"
        with pytest.raises(NotIdentifiableError, match=re.escape(spec.reason)):
            identify(spec.graph)


def test_front_door_spec() -> None:
    spec = load_spec("front_door")
    assert spec.graph == CausalGraph("Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X")
    assert spec.reference == "Pearl (2009) Causality p. 81; Mao & Little (2024) arXiv:2410.20057"
    assert spec.identifiable
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


def test_load_graph_accepts_str_path() -> None:
    assert load_graph(str(MODELS / "back_door.toml")) == load_graph("back_door")


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(
        ValueError, match="unknown graph 'front_dor'. Did you mean 'front_door'?"
    ) as info:
        load_graph("front_dor")
    message = str(info.value)
    for name in list_graphs():
        assert name in message
    assert ".toml" in message
    with pytest.raises(ValueError, match="unknown graph 'nonsense'. The registered graphs are"):
        load_spec("nonsense")


def test_graph_text_is_not_a_name() -> None:
    with pytest.raises(
        ValueError, match=r"looks like a graph specification.*CausalGraph.from_string"
    ):
        load_graph("Y [cause]; X [effect]; Y -> X")


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match="no graph spec file at .*missing.toml"):
        load_graph("missing.toml")


def test_wrong_type() -> None:
    with pytest.raises(TypeError, match="registered graph name or the path"):
        load_graph(3)  # type: ignore[arg-type]


def _write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """
name = "mine"
title = "Mine"
reference = "me"
graph = "Y [cause]; X [effect]; Y -> X"
estimand = "p(X | do(Y)) = p(X | Y)"
"""


def test_user_spec_file(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, GOOD))
    assert spec.name == "mine"
    assert spec.identifiable is True
    assert spec.reason == spec.description == ""
    assert identify(spec.graph).expression == spec.estimand


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("name = ", ValueError, r"spec.toml is not valid TOML"),
        (
            GOOD.replace('title = "Mine"\n', ""),
            ValueError,
            "spec.toml misses the required key 'title'",
        ),
        (
            GOOD.replace("estimand", "estimate"),
            ValueError,
            "unknown key.*'estimate'.*known keys are",
        ),
        (
            GOOD.replace('estimand = "p(X | do(Y)) = p(X | Y)"', ""),
            ValueError,
            "misses the required key 'estimand'",
        ),
        (GOOD + "identifiable = 1\n", ValueError, "identifiable = 1; expected true or false"),
        (GOOD.replace('"me"', "3"), ValueError, "reference = 3; expected a string"),
        (
            GOOD.replace("Y -> X", "Y -> X; X -> Y"),
            ValueError,
            "in the 'graph' key of .*spec.toml: the directed edges form a cycle",
        ),
    ],
)
def test_malformed_spec_files(
    tmp_path: Path, text: str, error: type[Exception], message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(error, match=message):
        load_spec(path)


def test_spec_graph_syntax_error_names_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path, GOOD.replace('"Y [cause]; X [effect]; Y -> X"', '"""\nY [cause]\nY -> -> X"""')
    )
    with pytest.raises(
        GraphSyntaxError, match=r"in the 'graph' key of .*spec.toml: expected a node name"
    ) as info:
        load_spec(path)
    assert (info.value.line, info.value.column) == (2, 6)


def test_unidentifiable_spec_needs_no_estimand(tmp_path: Path) -> None:
    text = GOOD.replace(
        'estimand = "p(X | do(Y)) = p(X | Y)"', 'identifiable = false\nreason = "r"'
    )
    spec = load_spec(_write(tmp_path, text))
    assert spec.identifiable is False and spec.estimand == "" and spec.reason == "r"


def test_registered_name_must_match_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    _write(folder, GOOD, name="other.toml")
    monkeypatch.setattr(library, "_specs_dir", lambda: folder)
    assert list_graphs() == ["other"]
    with pytest.raises(ValueError, match="registered as 'other' but its name key is 'mine'"):
        load_graph("other")


def test_specs_found_through_importlib_resources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installed-wheel route: no checkout folder, specs read as package resources.

    In an editable install ``causal_mixtures._specs`` cannot be imported (setuptools' editable
    finder does not map a sub-package without ``__init__.py`` onto ``models/``), so this test
    recreates the wheel's layout: a package directory holding the .toml files and no
    ``__init__.py``, exactly as ``causal_mixtures/_specs/`` is in the wheel. That a built wheel
    contains the files and loads them was checked by hand (``pip wheel`` + ``pip install
    --target``).
    """
    package = tmp_path / "fake_specs"
    shutil.copytree(MODELS, package)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(library, "_CHECKOUT_SPECS", tmp_path / "no-such-folder")
    monkeypatch.setattr(library, "_SPECS_PACKAGE", "fake_specs")
    assert library._specs_dir() != MODELS
    assert list_graphs() == [p.stem for p in SPEC_FILES]
    assert load_graph("front_door") == CausalGraph(
        "Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X"
    )


def test_no_registry_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library, "_CHECKOUT_SPECS", tmp_path / "no-such-folder")
    monkeypatch.setattr(library, "_SPECS_PACKAGE", "no_such_package_for_specs")
    with pytest.raises(FileNotFoundError, match="cannot find the causal-graph registry"):
        list_graphs()
