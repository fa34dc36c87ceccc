"""Execute every notebook in ``notebooks/`` and check that the committed copies are clean.

Kernel choice
-------------
The notebooks declare the ``python3`` kernel. Resolving that name through the normal Jupyter
search path can pick a kernelspec from the user's home (``~/.local/share/jupyter``), which
may point at another interpreter without this package. Instead each run writes a private
kernelspec into a temporary folder whose ``argv`` is *this* interpreter
(``sys.executable -m ipykernel_launcher``) and whose ``env`` sets ``CI=1`` (the notebooks'
smoke switch, ``smoke = "CI" in os.environ``), and hands nbclient a kernel manager that
only looks in that folder. Nothing is installed and nothing outside ``tmp_path`` is touched;
the kernel otherwise inherits this process's environment.

New notebooks added to ``notebooks/`` are picked up automatically.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL_NAME = "causal-mixtures-tests"
# Per-cell limit. In smoke mode every notebook runs in seconds; the limit only turns a hang
# into a failure.
CELL_TIMEOUT_S = 600


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _kernel_manager(spec_root: Path) -> AsyncKernelManager:
    """A kernel manager that launches this interpreter's ipykernel with ``CI=1``."""
    spec_dir = spec_root / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python {sys.version_info.major}.{sys.version_info.minor} (tests)",
        "language": "python",
        "env": {"CI": "1"},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    specs = KernelSpecManager(kernel_dirs=[str(spec_root)], ensure_native_kernel=False)
    # Asynchronous, like nbclient's own default kernel manager class.
    return AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name}: code cell {index} has outputs; strip them"
        assert cell.execution_count is None, (
            f"{path.name}: code cell {index} has an execution count; strip outputs"
        )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_executes(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    # A last cell (in memory only) that reports where and how the kernel ran.
    nb.cells.append(nbformat.v4.new_code_cell(
        "import os, sys; print(sys.executable); print(os.environ.get('CI'))"
    ))
    client = nbclient.NotebookClient(
        nb,
        km=_kernel_manager(tmp_path / "kernels"),
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},  # run from notebooks/
    )
    # Raises CellExecutionError, with the failing cell and its traceback, on any error.
    # nbclient leaves a kernel it did not create running; cleanup_kc=True shuts it down
    # and closes the client's sockets.
    client.execute(cleanup_kc=True)
    errors = [
        output
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors
    # The kernel ran this interpreter, in smoke mode.
    report = "".join(o.get("text", "") for o in nb.cells[-1].outputs).split()
    assert report == [sys.executable, "1"]
