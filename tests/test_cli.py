"""Tests of the ``causal-mixtures`` command line (:mod:`causal_mixtures.cli`).

``main([...])`` runs in-process (fast, output captured by ``capsys``); one test runs the
installed console script in a subprocess to prove the entry point works, and two run
``--help`` / ``--version`` / ``graphs`` in a fresh interpreter to check that they do not import
torch.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import causal_mixtures as cm
from causal_mixtures.cli import main
from causal_mixtures.cli.options import DENSITY_CHOICES, MAX_ROWS

# The folder holding the package under test: subprocesses import it, not another checkout.
_PACKAGE_ROOT = Path(cm.__file__).resolve().parents[1]

METHODS = ("classical supervised", "causal bootstrap", "CW-GMM (EM)", "oracle (interventional)")
_FLOAT = r"(\d\.\d{3})"


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """1000 rows of the paper's synthetic classification data, columns Y, Z, X1, X2."""
    data = cm.datasets.make_classification_2d(1000, n_test=10, random_state=0)
    return pd.DataFrame(
        {"Y": data.y, "Z": data.mechanism, "X1": data.X[:, 0], "X2": data.X[:, 1]}
    )


@pytest.fixture
def csv_path(table: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    table.to_csv(path, index=False)
    return path


# Fast settings: a fixed small K (auto K fits ten candidates).
FAST = ["--cause", "Y", "--mechanism", "Z", "--effect", "X1,X2", "--n-components", "2"]


def _assert_one_line_error(capsys: pytest.CaptureFixture[str], status: int, *needles: str) -> str:
    err = capsys.readouterr().err
    assert status != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------------ demo
def test_demo_prints_the_comparison_table(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["demo", "--n-samples", "1000", "--no-progress", "--seed", "0"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    out = captured.out
    acc: dict[str, tuple[float, float]] = {}
    for method in METHODS:
        match = re.search(rf"^{re.escape(method)}\s+{_FLOAT}\s+{_FLOAT}", out, re.MULTILINE)
        assert match, f"no row for {method!r} in:\n{out}"
        acc[method] = (float(match[1]), float(match[2]))
        assert all(0.5 <= a <= 1.0 for a in acc[method])
    # The paper's reference numbers are printed next to this run's.
    assert re.search(r"^CW-GMM \(EM\)\s+\S+\s+\S+\s+0\.854\s+0\.858", out, re.MULTILINE)
    assert "ESS" in out and "k-hat" in out
    # The point of the method: on the non-confounded test set mechanism learning beats the
    # classical model (0.86 vs 0.76 for this seed; the gap is ~10 points at any seed, far
    # above the ~1.1-point binomial standard error of an accuracy on 1000 test rows).
    assert acc["CW-GMM (EM)"][0] >= acc["classical supervised"][0]
    # --no-progress: no bar on stderr (warning lines, if any, are allowed there).
    assert "simulate" not in captured.err and "Traceback" not in captured.err


def test_demo_progress_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["demo", "--n-samples", "300", "--n-test", "100", "--n-components", "2"])
    captured = capsys.readouterr()
    assert status == 0
    for stage in ("simulate", "weights", "fit CW-GMM", "bootstrap", "train models"):
        assert stage in captured.err
    assert "simulate" not in captured.out


def test_demo_is_seeded(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["demo", "--n-samples", "300", "--n-test", "200", "--n-components", "2",
            "--no-progress", "--seed", "7"]

    def body() -> str:
        assert main(argv) == 0
        out = capsys.readouterr().out
        return "\n".join(line for line in out.splitlines() if not line.startswith("wall time"))

    assert body() == body()


# ------------------------------------------------------------------------------ deconfound
def test_deconfound_csv_round_trip(
    csv_path: Path, table: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "deconf.csv"
    status = main(["deconfound", str(csv_path), *FAST, "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    result = pd.read_csv(out)
    assert list(result.columns) == ["X1", "X2", "Y"]
    # n_samples=None: rows // n_do draws per class, balanced.
    assert len(result) == len(table)
    assert result["Y"].value_counts().to_dict() == {1: 500, 2: 500}
    assert np.isfinite(result[["X1", "X2"]].to_numpy()).all()
    summary = captured.out
    assert "1000 in, 1000 out" in summary
    assert "K = 2" in summary
    for word in ("ESS", "ESS/n", "k-hat", "converged", "lower bound"):
        assert word in summary
    assert len(summary.splitlines()) <= 24  # one screen


def test_deconfound_is_seeded(
    csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"]
    seeds = ["3", "3", "4"]
    for path, seed in zip(paths, seeds, strict=True):
        assert main(["deconfound", str(csv_path), *FAST, "--seed", seed, "--out", str(path)]) == 0
    capsys.readouterr()
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_deconfound_parquet_in_and_out(
    table: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pyarrow")
    src = tmp_path / "data.parquet"
    table.to_parquet(src)
    out = tmp_path / "deconf.parquet"
    status = main(["deconfound", str(src), *FAST, "--do", "2,1", "--n-samples", "150",
                   "--covariance-type", "diag", "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    result = pd.read_parquet(out)
    assert list(result.columns) == ["X1", "X2", "Y"]
    assert result["Y"].dtype == table["Y"].dtype  # --do parsed to the cause's dtype
    assert result["Y"].value_counts().to_dict() == {1: 150, 2: 150}


def test_deconfound_several_mechanism_columns_and_continuous_cause(
    table: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    frame = table.assign(
        Y=table["Y"] + rng.normal(0.0, 0.3, len(table)),
        Z2=table["Z"] + rng.normal(0.0, 1.0, len(table)),
    )
    src = tmp_path / "cont.csv"
    frame.to_csv(src, index=False)
    out = tmp_path / "out.tsv"
    argv = ["deconfound", str(src), "--cause", "Y", "--mechanism", "Z,Z2", "--effect", "X1,X2",
            "--n-components", "1", "--out", str(out)]
    # A continuous cause needs a grid of intervention values: one-line error naming --do.
    _assert_one_line_error(capsys, main(argv), "--do", "continuous")
    assert main([*argv, "--do", "1.25,1.5,1.75"]) == 0, capsys.readouterr().err
    assert "Z, Z2" in capsys.readouterr().out
    result = pd.read_csv(out, sep="\t")
    assert sorted(result["Y"].unique().tolist()) == [1.25, 1.5, 1.75]
    assert len(result) == 3 * (len(table) // 3)


def test_package_warnings_become_warning_lines(
    csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One EM iteration cannot converge: the ConvergenceWarning is reported, not raised.
    status = main(["deconfound", str(csv_path), *FAST, "--max-iter", "1",
                   "--out", str(tmp_path / "o.csv")])
    captured = capsys.readouterr()
    assert status == 0
    assert "converged    NO" in captured.out
    lines = captured.err.splitlines()
    assert lines and all(line.startswith("warning: ") for line in lines), captured.err
    assert "ConvergenceWarning" in captured.err and "max_iter=1" in captured.err


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"input": "missing.csv"}, ["no such file", "missing.csv"]),
        ({"--cause": "Q"}, ["'Q'", "available columns: Y, Z, X1, X2"]),
        ({"--effect": "X1,X9"}, ["'X9'", "available columns"]),
        ({"--mechanism": "Z,W"}, ["'W'", "available columns"]),
        ({"--effect": "X1,Y"}, ["more than one role"]),
        ({"--graph": "nope"}, ["unknown graph 'nope'", "front_door"]),
        ({"--graph": "back_door"}, ["back-door", "--covariates W"]),
        ({"--do": "1,3"}, ["[3]", "no support"]),  # a PositivityError from the package
        ({"--do": "one"}, ["--do", "int64"]),
        ({"--n-components": "0"}, ["--n-components"]),
        ({"--out": "deconf.xlsx"}, ["output format", ".xlsx"]),
        ({"--out": "no/such/folder/deconf.csv"}, ["does not exist"]),
        ({"input": "data.json"}, ["cannot tell the format"]),
    ],
)
def test_deconfound_bad_input_is_one_error_line(
    change: dict[str, str],
    needles: list[str],
    csv_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    options = {"--cause": "Y", "--mechanism": "Z", "--effect": "X1,X2", "--n-components": "2",
               "--out": "deconf.csv"}
    options.update({k: v for k, v in change.items() if k != "input"})
    argv = ["deconfound", change.get("input", str(csv_path))]
    for key, value in options.items():
        argv += [key, value]
    _assert_one_line_error(capsys, main(argv), *needles)


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (lambda t: t.assign(X1="text"), ["'X1'", "not numeric"]),
        (lambda t: t.assign(X2=t["X2"].where(t.index != 7)), ["'X2'", "missing", "row 7"]),
        (lambda t: t.assign(Z=t["Z"].where(t.index != 3)), ["'Z'", "missing", "row 3"]),
        (lambda t: t.iloc[:0], ["no data rows"]),
        (lambda t: t.assign(Y=1), ["at least two distinct values"]),
    ],
    ids=["non-numeric", "nan-effect", "nan-mechanism", "empty", "one-class"],
)
def test_deconfound_bad_table_is_one_error_line(
    edit, needles: list[str], table: pd.DataFrame, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = tmp_path / "bad.csv"
    edit(table).to_csv(src, index=False)
    status = main(["deconfound", str(src), *FAST, "--out", str(tmp_path / "o.csv")])
    _assert_one_line_error(capsys, status, *needles)
    assert not (tmp_path / "o.csv").exists()


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    _assert_one_line_error(capsys, main([]), "required")
    _assert_one_line_error(capsys, main(["deconfound", "x.csv"]), "required")
    _assert_one_line_error(capsys, main(["demo", "--n-samples", "many"]), "--n-samples")


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "deconfound", "graphs"):
        assert command in out
    assert main(["--version"]) == 0
    assert cm.__version__ in capsys.readouterr().out


def test_graphs_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graphs"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines()]
    assert names == cm.list_graphs()
    assert "Front door (mechanism learning)" in out
    assert main(["graphs", "--verbose"]) == 0
    assert "Y -> Z -> X" in capsys.readouterr().out


@pytest.mark.slow  # a fresh interpreter importing torch: several seconds
def test_console_script_entry_point(csv_path: Path, tmp_path: Path) -> None:
    """The installed ``causal-mixtures`` script (pyproject [project.scripts]) works."""
    script = Path(sys.executable).with_name("causal-mixtures")
    if not script.exists():
        found = shutil.which("causal-mixtures")
        assert found, "the causal-mixtures console script is not installed; pip install -e ."
        script = Path(found)
    out = tmp_path / "deconf.csv"
    proc = subprocess.run(
        [str(script), "deconfound", str(csv_path), *FAST, "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False, env=_subprocess_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert "1000 in, 1000 out" in proc.stdout
    assert len(pd.read_csv(out)) == 1000


def _subprocess_env() -> dict[str, str]:
    """The environment of a child interpreter that imports the package under test."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PACKAGE_ROOT),
                                                      env.get("PYTHONPATH")]))
    return env


# ------------------------------------------------------------------------------ lazy imports
# Run in a fresh interpreter: the commands that need no model must not import torch / pyro.
_LAZY_SCRIPT = """
import contextlib, io, sys
{preamble}
from causal_mixtures.cli import main
for argv in (["--help"], ["--version"], ["graphs"], ["graphs", "--verbose"]):
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        try:
            status = main(argv)
        except SystemExit as exc:
            status = exc.code
    assert status == 0, (argv, status)
    assert buf.getvalue(), argv
heavy = sorted(m for m in ("torch", "pyro") if m in sys.modules)
assert not heavy, heavy
"""

# Stands in for ``causal_mixtures/__init__.py`` (which imports the whole package): a bare
# package object, so only what the command line imports itself is loaded.
_BARE_PACKAGE = """
import importlib.util, types
spec = importlib.util.find_spec("causal_mixtures")
pkg = types.ModuleType("causal_mixtures")
pkg.__path__ = list(spec.submodule_search_locations)
pkg.__version__ = "0+bare"
sys.modules["causal_mixtures"] = pkg
"""


def _run_lazy_script(preamble: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(_LAZY_SCRIPT).format(preamble=textwrap.dedent(preamble))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False, env=_subprocess_env())


@pytest.mark.slow  # a fresh interpreter importing pandas and scikit-learn
def test_cli_modules_import_torch_only_in_the_model_subcommands() -> None:
    proc = _run_lazy_script(_BARE_PACKAGE)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_help_version_and_graphs_do_not_import_torch() -> None:
    proc = _run_lazy_script("")
    assert proc.returncode == 0, proc.stderr


def test_help_version_and_graphs_import_no_scientific_stack() -> None:
    """``--help``, ``--version`` and ``graphs`` answer in a fraction of a second: no torch,
    Pyro or scikit-learn (importing scikit-learn alone took 1.2 s of the 1.6 s ``graphs``
    took before its ``ConvergenceWarning`` loaded lazily)."""
    code = textwrap.dedent("""
        import contextlib, io, sys
        from causal_mixtures.cli import main
        for argv in (["--help"], ["--version"], ["graphs"], ["graphs", "--verbose"]):
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    main(argv)
                except SystemExit:
                    pass
        heavy = sorted(m for m in ("torch", "pyro", "sklearn", "scipy") if m in sys.modules)
        assert not heavy, heavy
        import causal_mixtures as cm
        assert issubclass(cm.PositivityError, ValueError) and "PositivityError" in dir(cm)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False, env=_subprocess_env())
    assert proc.returncode == 0, proc.stderr


def test_density_choices_match_the_library() -> None:
    from causal_mixtures.weights.density import DENSITIES

    assert tuple(DENSITY_CHOICES) == tuple(DENSITIES)


# ------------------------------------------------------------------------------ never overwrite
@pytest.fixture
def no_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any fit fail loudly: the checks under test must run before it."""

    def fit_resample(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was fitted")

    monkeypatch.setattr(cm.CausalGaussianMixture, "fit_resample", fit_resample)


@pytest.mark.usefixtures("no_fit")
def test_deconfound_refuses_to_overwrite_its_input(
    csv_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = csv_path.read_bytes()
    status = main(["deconfound", str(csv_path), *FAST, "--out", str(csv_path)])
    assert status == 2
    _assert_one_line_error(capsys, status, "same file", "input", f"'{csv_path}'")
    assert csv_path.read_bytes() == before


@pytest.mark.usefixtures("no_fit")
def test_deconfound_refuses_an_output_linked_to_its_input(
    csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "link.csv"
    try:
        link.symlink_to(csv_path)
    except OSError:  # pragma: no cover - no symlinks here
        pytest.skip("symbolic links are not supported")
    before = csv_path.read_bytes()
    status = main(["deconfound", str(csv_path), *FAST, "--out", str(link)])
    assert status == 2
    _assert_one_line_error(capsys, status, "link to", f"'{link}'", f"'{csv_path}'")
    assert csv_path.read_bytes() == before and link.is_symlink()
    # ... and the same when the input is given through the link.
    status = main(["deconfound", str(link), *FAST, "--out", str(csv_path)])
    _assert_one_line_error(capsys, status, "same file", f"'{link}'")
    assert csv_path.read_bytes() == before


@pytest.mark.usefixtures("no_fit")
def test_deconfound_checks_the_output_folder_before_fitting(
    csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.perf_counter()
    status = main(["deconfound", str(csv_path), *FAST,
                   "--out", str(tmp_path / "missing" / "deconf.csv")])
    assert time.perf_counter() - start < 5.0
    assert status == 2
    _assert_one_line_error(capsys, status, "output folder", "missing", "does not exist")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    status = main(["deconfound", str(csv_path), *FAST, "--out", str(folder)])
    _assert_one_line_error(capsys, status, "is a directory")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="needs POSIX permissions and a non-root user")
@pytest.mark.usefixtures("no_fit")
def test_deconfound_refuses_a_read_only_output_folder(
    csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        status = main(["deconfound", str(csv_path), *FAST, "--out", str(folder / "o.csv")])
    finally:
        folder.chmod(0o755)
    _assert_one_line_error(capsys, status, "not writable", "ro")


def test_deconfound_replaces_an_existing_output(
    csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "deconf.csv"
    out.write_text("old\n")
    out.chmod(0o640)
    link = tmp_path / "latest.csv"
    link.symlink_to(out)
    assert main(["deconfound", str(csv_path), *FAST, "--out", str(link)]) == 0
    capsys.readouterr()
    # Written through the link: the link still points at the (new) table, mode kept.
    assert link.is_symlink() and link.resolve() == out.resolve()
    assert len(pd.read_csv(out)) == 1000
    assert out.stat().st_mode & 0o777 == 0o640
    # No temporary file is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "deconf.csv", "latest.csv"]


# ------------------------------------------------------------------------------ bad tables
def test_deconfound_empty_csv_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "empty.csv"
    src.write_bytes(b"")
    status = main(["deconfound", str(src), *FAST, "--out", str(tmp_path / "o.csv")])
    _assert_one_line_error(capsys, status, f"'{src}'", "empty")


def test_deconfound_wrong_separator_suggests_sep(
    table: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "semi.csv"
    table.to_csv(src, index=False, sep=";")
    out = tmp_path / "o.csv"
    status = main(["deconfound", str(src), *FAST, "--out", str(out)])
    _assert_one_line_error(capsys, status, f"'{src}'", "semicolon", "--sep ';'")
    assert not out.exists()
    assert main(["deconfound", str(src), *FAST, "--sep", ";", "--out", str(out)]) == 0
    assert "1000 in, 1000 out" in capsys.readouterr().out
    # A .tsv reads tab-separated by default; --sep overrides it.
    tsv = tmp_path / "commas.tsv"
    table.to_csv(tsv, index=False)
    _assert_one_line_error(capsys, main(["deconfound", str(tsv), *FAST, "--out", str(out)]),
                           "comma", "--sep ','")
    assert main(["deconfound", str(tsv), *FAST, "--sep", ",", "--out", str(out)]) == 0
    capsys.readouterr()
    _assert_one_line_error(capsys, main(["deconfound", str(src), *FAST, "--sep", ";;",
                                         "--out", str(out)]), "--sep", "one character")


def test_deconfound_string_mechanism_is_one_error_line(
    table: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "strz.csv"
    table.assign(Z=table["Z"].map(lambda v: f"z{v:.2f}")).to_csv(src, index=False)
    status = main(["deconfound", str(src), *FAST, "--out", str(tmp_path / "o.csv")])
    _assert_one_line_error(capsys, status, "mechanism", "'Z'", "must be numeric")
    assert status == 2


# ------------------------------------------------------------------------------ row cap
@pytest.mark.usefixtures("no_fit")
def test_deconfound_caps_the_rows_drawn(
    csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = MAX_ROWS // 2 + 1  # x 2 do values: just over the cap
    argv = ["deconfound", str(csv_path), *FAST, "--n-samples", str(n),
            "--out", str(tmp_path / "o.csv")]
    status = main(argv)
    assert status == 2
    _assert_one_line_error(capsys, status, "10,000,000", "--force", "2 do values")
    # --force lifts the cap: the run gets as far as the fit (stubbed out here).
    with pytest.raises(AssertionError, match="the model was fitted"):
        main([*argv, "--force"])


def test_demo_caps_the_rows(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["demo", "--n-samples", str(MAX_ROWS + 1), "--no-progress"])
    assert status == 2
    _assert_one_line_error(capsys, status, "--n-samples", "10,000,000", "--force")
    status = main(["demo", "--draws-per-class", str(MAX_ROWS), "--no-progress"])
    _assert_one_line_error(capsys, status, "--draws-per-class", "10,000,000")


# ------------------------------------------------------------------ every registered graph
_IDENTIFIABLE = [n for n in cm.list_graphs() if cm.load_spec(n).identifiable]


@pytest.mark.parametrize("name", _IDENTIFIABLE)
def test_deconfound_runs_every_identifiable_spec(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every role of every identifiable spec is reachable from the command line."""
    from causal_mixtures.graph.identify import identify
    from causal_mixtures.simulate.scm import StructuralCausalModel

    graph = cm.load_spec(name).graph
    est = identify(graph)
    data = StructuralCausalModel(graph, discrete=[est.cause], random_state=0).sample(
        300, random_state=0
    )
    src, out = tmp_path / f"{name}.csv", tmp_path / "out.csv"
    pd.DataFrame(data).to_csv(src, index=False)
    argv = ["deconfound", str(src), "--graph", name, "--cause", est.cause, "--effect",
            est.effect, "--n-components", "1", "--max-iter", "5", "--out", str(out)]
    if est.mechanisms:
        argv += ["--mechanism", ",".join(est.mechanisms)]
    if est.covariates:
        argv += ["--covariates", ",".join(est.covariates)]
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    result = pd.read_csv(out)
    assert list(result.columns) == [est.effect, est.cause]
    assert set(result[est.cause]) == set(np.unique(data[est.cause]))
    if est.covariates:
        assert f"covariates   {', '.join(est.covariates)}" in captured.out
    # Leaving out a role option the graph needs is one error line naming the option.
    needed = [i for i, a in enumerate(argv) if a in ("--mechanism", "--covariates")]
    for i in needed:
        _assert_one_line_error(
            capsys, main(argv[:i] + argv[i + 2:]), f"pass {argv[i]} COLS", argv[i + 1]
        )


def test_threads_option_limits_torch_and_blas_and_restores_them(capsys) -> None:
    """``--threads`` holds while the command runs and is undone after (the CLI runs
    in-process here); a bad value is a usage error."""
    import torch
    from threadpoolctl import threadpool_info

    from causal_mixtures.cli import options

    seen = {}
    before = torch.get_num_threads()
    with options.thread_limit(1):
        seen["torch"] = torch.get_num_threads()
        seen["blas"] = {p["num_threads"] for p in threadpool_info()}
    assert seen["torch"] == 1 and seen["blas"] <= {1}
    assert torch.get_num_threads() == before
    assert main(["demo", "--threads", "0"]) == 2
    assert main(["deconfound", "--help"]) == 0
    assert "--threads" in capsys.readouterr().out


def test_threads_context_manager_sets_and_restores_and_checks_its_argument() -> None:
    import torch
    from threadpoolctl import threadpool_info

    import causal_mixtures as cm

    before = torch.get_num_threads()
    with cm.threads(1):
        assert torch.get_num_threads() == 1
        assert {p["num_threads"] for p in threadpool_info()} == {1}
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        with cm.threads(0):
            pass
