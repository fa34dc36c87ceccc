"""Smoke test of the EM benchmark (benchmarks/bench_em.py): it runs end to end on a tiny
problem and our unit-weight fit equals scikit-learn's. No timing is asserted anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench_em(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    from _common import load_bench_module

    return load_bench_module(BENCH_DIR / "bench_em.py")


def test_bench_em_smoke(bench_em, tmp_path: Path) -> None:
    out = tmp_path / "bench_em.json"
    docs = tmp_path / "benchmarks.md"
    result = bench_em.main(
        [
            "--sizes",
            "500",
            "--dims",
            "2",
            "--cov",
            "full",
            "--iters",
            "2",
            "--repeats",
            "1",
            "--no-extra-threads",
            "--no-reference",
            "--out",
            str(out),
            "--docs",
            str(docs),
        ]
    )
    data = json.loads(out.read_text())
    assert data["rows"] == result["rows"]
    for key in (
        "name",
        "title",
        "command",
        "machine",
        "settings",
        "rows",
        "goals",
        "markdown",
        "memory_method",
        "wall_s",
    ):
        assert key in data, key
    (row,) = data["rows"]
    assert "errors" not in row, row.get("errors")
    for key in (
        "config",
        "n",
        "d",
        "cov",
        "k",
        "iters",
        "threads",
        "ours_2do_s",
        "ours_2do_expw_s",
        "ours_1do_s",
        "sklearn_s",
        "ratio_2do",
        "ratio_1do",
        "peak_mib_ours_2do",
        "peak_mib_sklearn",
        "max_abs_mean_diff",
        "goal",
    ):
        assert key in row, key
    assert (row["n"], row["d"], row["cov"], row["iters"]) == (500, 2, "full", 2)
    # tol=0: every fitter ran exactly the requested number of EM iterations.
    assert row["iters_ok"], row["n_iter"]
    # Same algorithm from the same initial parameters: our unit-weight fit equals
    # scikit-learn's up to float64 rounding; 1e-6 is the package's equivalence contract.
    assert row["max_abs_mean_diff"] <= 1e-6
    assert data["goals"]["equivalence"]["passed"]
    assert row["goal"] is None  # the time-ratio goal is only judged at n >= 1e5
    text = docs.read_text()
    assert "em-500-d2-full-t1" in text and "### Machine" in text


@pytest.mark.slow
@pytest.mark.parametrize(
    "script, args",
    [
        ("bench_continuous", ["--sizes", "600", "--seeds", "1", "--grid", "3", "--no-downstream"]),
        (
            "bench_paper",
            [
                "--seeds",
                "1",
                "--ks",
                "1",
                "2",
                "--n",
                "600",
                "--svi-seeds",
                "0",
                "--heldout-seeds",
                "0",
            ],
        ),
        (
            "bench_scale",
            ["--n", "400", "--k", "3", "--thread-list", "1", "--digit-sizes", "--class-sizes"],
        ),
        (
            "bench_accuracy",
            ["--seeds", "1", "--n-ring", "1200", "--n-cont", "800", "--n-cov", "600",
             "--eff-sizes", "600", "--bound-draws", "20000"],
        ),
    ],
)
def test_issue6_benchmarks_smoke(script: str, args: list[str], tmp_path) -> None:
    """Each issue-6 benchmark runs end to end at a tiny size and writes its JSON (no
    timings are asserted; the numbers live in docs/results.md)."""
    import subprocess
    import sys

    out = tmp_path / f"{script}.json"
    cmd = [
        sys.executable,
        str(BENCH_DIR / f"{script}.py"),
        "--quick",
        *args,
        "--out",
        str(out),
        "--no-docs",
        "--results-page",
        str(tmp_path / "results.md"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert {"name", "title", "command", "machine", "markdown"} <= set(result)


def test_pages_keep_the_sections_of_benchmarks_not_run_here(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Results JSONs are not committed: regenerating a page on a clone that ran one
    benchmark must keep every other benchmark's section (and target rows) as they were."""
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    import _common

    paper = _common.load_bench_module(BENCH_DIR / "bench_paper.py")
    results = tmp_path / "results"
    results.mkdir()
    docs = tmp_path / "benchmarks.md"
    kept = "## Weighted EM vs scikit-learn GaussianMixture\n\nmeasured: 0.97x\n"
    docs.write_text("# Benchmarks\n\n" + kept)
    text = _common.render_docs(docs, results)
    assert kept in text and "## bench_svi\n\nNot run yet" in text
    page = tmp_path / "results.md"
    cont = "## " + _common.load_bench_module(BENCH_DIR / "bench_continuous.py").TITLE
    page.write_text(
        "# Results\n\n## Targets (issue 6)\n\n| target | measured | verdict | from |\n"
        "| :--- | :--- | :--- | :--- |\n| slope within 5 % | 1.50 | PASS | `bench_continuous` |\n\n"
        f"{cont}\n\nslope table\n"
    )
    monkeypatch.setattr(paper, "RESULTS_DIR", results)
    text = paper.write_results_page(page)
    assert "| slope within 5 % | 1.50 | PASS | `bench_continuous` |" in text
    assert f"{cont}\n\nslope table\n" in text
    assert "## bench_scale\n\nNot run yet" in text


@pytest.mark.slow
def test_bench_pipeline_smoke(tmp_path) -> None:
    """The end-to-end benchmark runs at a tiny size, both sides, and judges the ratio."""
    import subprocess
    import sys

    out = tmp_path / "bench_pipeline.json"
    cmd = [sys.executable, str(BENCH_DIR / "bench_pipeline.py"), "--sizes", "3000", "--dims",
           "2", "--iters", "2", "--memory-sizes", "5000", "--out", str(out), "--no-docs"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(out.read_text())["rows"][0]
    assert row["ours"]["cpu_s"] > 0 and row["sklearn"]["cpu_s"] > 0
    assert row["ratio"] == pytest.approx(row["ours"]["cpu_s"] / row["sklearn"]["cpu_s"])
    assert set(row["ours"]["stages_s"]) == {"weights", "strategy", "kmeans", "em", "other"}
    assert row["ours"]["n_iter"] == [2, 2] and row["sklearn"]["n_iter"] == [2]
    assert row["ours"]["dtype"] == "float64"  # dtype="auto" at 3000 x 2: float64
    mem = json.loads(out.read_text())["memory"][0]
    assert mem["n"] == 5000 and mem["peak_mib"] >= 0 and mem["ratio"] == pytest.approx(
        mem["peak_mib"] / mem["data_mib"])


@pytest.mark.slow
def test_bench_images_smoke(tmp_path) -> None:
    """The head-CT benchmark runs end to end at a tiny size (numbers are not asserted: they
    live in docs/benchmarks.md) and writes its JSON and its sample figure."""
    import subprocess
    import sys

    out = tmp_path / "bench_images.json"
    cmd = [
        sys.executable, str(BENCH_DIR / "bench_images.py"), "--quick", "--n", "400",
        "--n-test", "60", "--epochs", "1", "--pca", "16", "--out", str(out), "--no-docs",
        "--img-dir", str(tmp_path / "img"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert {"name", "title", "command", "machine", "markdown", "summary"} <= set(result)
    table = result["runs"][0]["table"]
    assert {"classical", "classical_weighted", "oracle"} <= set(table)
    for method in ("bootstrap", "cwgmm"):
        assert "macro_f1_nc" in table[method] or "error" in table[method]
    assert (tmp_path / "img" / "images_samples.png").is_file()


def test_bench_gpu_records_its_absence_and_renders_a_measured_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import torch

    monkeypatch.syspath_prepend(str(BENCH_DIR))
    from _common import load_bench_module

    bench = load_bench_module(BENCH_DIR / "bench_gpu.py")
    if not torch.cuda.is_available():
        out = tmp_path / "bench_gpu.json"
        result = bench.main(["--out", str(out), "--no-docs"])
        assert result["rows"] == [] and "no CUDA device" in result["skipped"]
        assert json.loads(out.read_text())["markdown"].startswith("**Not measured**")
    # The table of a measured run (what a GPU machine writes), rendered here.
    row = {"n": 1_000_000, "d": 64, "k": 5, "iters": 5, "dtype": "float64",
           "cpu": {"cpu_s": 110.9}, "gpu": {"wall_s": 2.2, "gpu": "NVIDIA H200",
                                            "gpu_peak_mib": 5300.0},
           "speedup": 50.4, "max_mean_diff_sd": 3e-12, "max_objective_diff": 1e-13}
    text = bench.render_markdown({"settings": {"k": 5, "iters": 5, "seed": 0},
                                  "rows": [row]})
    assert "NVIDIA H200" in text
    assert "| 1e6 | 64 | float64 | 111 | 2.20 | 50.40 | 3.0e-12 | 1.0e-13 | 5300.00 |" in text
