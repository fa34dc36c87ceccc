"""Bad input to the command line: one table of (argv, exit status, words in stderr).

Every row runs :func:`causal_mixtures.cli.main` in-process with captured output; bad input
must end with one ``error: ...`` line on stderr (status 2), no traceback, and leave the input
file untouched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal_mixtures.cli import main

ROWS = 200


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with data.csv (columns Y, Z, W, X1, X2), a bad spec and a latin-1 table."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, ROWS)
    z = y + rng.normal(size=ROWS)
    pd.DataFrame({
        "Y": y, "Z": z, "W": rng.normal(size=ROWS),
        "X1": z + rng.normal(size=ROWS), "X2": rng.normal(size=ROWS),
    }).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "deep.toml").write_text("a = " + "[" * 10_000 + "]" * 10_000 + "\n")
    (tmp_path / "latin1.toml").write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    (tmp_path / "data.tsv").write_bytes("Y\tZ\tX1\n1\tcaf\xe9\t2\n".encode("latin-1"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


BASE = ["deconfound", "data.csv", "--cause", "Y", "--effect", "X1,X2", "--n-components", "1",
        "--max-iter", "3", "--out", "out.csv"]
FD = [*BASE, "--mechanism", "Z"]


def _with(argv: list[str], option: str, value: str) -> list[str]:
    """``argv`` with ``option`` set to ``value`` (replaced if present)."""
    out = list(argv)
    if option in out:
        out[out.index(option) + 1] = value
        return out
    return [*out, option, value]


CASES: list[tuple[str, list[str], int, list[str]]] = [
    ("missing file", ["deconfound", "nope.csv", *FD[2:]], 2, ["no such file", "nope.csv"]),
    ("unknown extension", ["deconfound", "data.json", *FD[2:]], 2, ["cannot tell the format"]),
    ("undecodable table", ["deconfound", "data.tsv", "--cause", "Y", "--mechanism", "Z",
                           "--effect", "X1", "--out", "o.csv"], 2, ["data.tsv", "cannot read"]),
    ("unknown cause column", _with(FD, "--cause", "Q"), 2, ["'Q'", "available columns"]),
    ("unknown effect column", _with(FD, "--effect", "X1,X9"), 2, ["'X9'", "available"]),
    ("unknown mechanism column", _with(FD, "--mechanism", "Z9"), 2, ["'Z9'", "available"]),
    ("empty list item", _with(FD, "--effect", "X1,,X2"), 2, ["--effect", "empty items"]),
    ("a column in two roles", _with(FD, "--effect", "X1,Y"), 2, ["more than one role"]),
    ("bad --do", _with(FD, "--do", "one"), 2, ["--do", "int64"]),
    ("--do outside the data", _with(FD, "--do", "1,3"), 2, ["no support"]),
    ("--n-components 0", _with(FD, "--n-components", "0"), 2, ["--n-components", "got 0"]),
    ("--n-components word", _with(FD, "--n-components", "many"), 2, ["'auto' or a positive"]),
    ("--sep two characters", _with(FD, "--sep", ";;"), 2, ["--sep", "one character"]),
    ("output is the input", _with(FD, "--out", "data.csv"), 2,
     ["refusing to overwrite the input"]),
    ("output format", _with(FD, "--out", "o.xlsx"), 2, ["output format", ".xlsx"]),
    ("output folder missing", _with(FD, "--out", "no/dir/o.csv"), 2, ["does not exist"]),
    ("unknown graph", _with(FD, "--graph", "nope"), 2, ["unknown graph 'nope'", "front_door"]),
    ("misspelt graph", _with(FD, "--graph", "front_dor"), 2, ["Did you mean 'front_door'"]),
    ("graph text syntax", _with(FD, "--graph", "Y -> -> X"), 2, ["expected a node name"]),
    ("deeply nested spec", _with(FD, "--graph", "deep.toml"), 2, ["deep.toml", "too deeply"]),
    ("non-UTF-8 spec", _with(FD, "--graph", "latin1.toml"), 2, ["latin1.toml", "not UTF-8"]),
    ("missing spec file", _with(FD, "--graph", "none.toml"), 2, ["no graph spec file"]),
    ("unidentifiable graph", _with(FD, "--graph", "no_mechanism_confounded"), 2,
     ["cannot identify"]),
    # Role options the graph needs, or does not use.
    ("missing --mechanism", BASE, 2, ["front-door estimand", "pass --mechanism COLS",
                                      "--mechanism Z"]),
    ("missing --covariates", _with(BASE, "--graph", "back_door"), 2,
     ["back-door estimand", "pass --covariates COLS", "--covariates W"]),
    ("missing --covariates (front door)", _with(FD, "--graph", "front_door_covariates"), 2,
     ["--covariates W"]),
    ("unused --mechanism", _with(_with(FD, "--graph", "back_door"), "--covariates", "W"), 2,
     ["has no mechanism node", "drop --mechanism"]),
    ("unused --covariates", _with(FD, "--covariates", "W"), 2,
     ["has no covariate node", "drop --covariates"]),
    ("unknown covariate column", _with(_with(BASE, "--graph", "back_door"), "--covariates",
                                       "W9"), 2, ["covariate column", "'W9'"]),
    # Usage errors (argparse).
    ("no --out", ["deconfound", "data.csv", "--cause", "Y", "--effect", "X1"], 2,
     ["--out", "required"]),
    ("unknown option", [*FD, "--frobnicate"], 2, ["unrecognized arguments"]),
    ("bad --seed", _with(FD, "--seed", "-1"), 2, ["--seed"]),
    ("bad --density", _with(FD, "--density", "magic"), 2, ["--density", "invalid choice"]),
    ("unknown command", ["frobnicate"], 2, ["invalid choice"]),
]


@pytest.mark.parametrize(("argv", "status", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input(
    argv: list[str], status: int, words: list[str], workdir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = (workdir / "data.csv").read_bytes()
    assert main(argv) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err and 'File "' not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], lines[0]
    assert (workdir / "data.csv").read_bytes() == before
    assert not (workdir / "out.csv").exists()
