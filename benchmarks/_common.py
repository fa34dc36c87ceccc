"""Helpers shared by the benchmark scripts in this folder (not part of the package).

Conventions every ``bench_*.py`` follows so that ``run_all.py`` can drive it:

* ``python benchmarks/bench_<name>.py [--quick] [--out PATH]`` runs the benchmark and writes
  one JSON file (default ``benchmarks/results/<name>.json``);
* the JSON holds at least ``name``, ``title``, ``command``, ``machine`` and ``markdown`` (the
  section body for ``docs/benchmarks.md``); a module may also define
  ``render_markdown(result) -> str`` to re-render that section from the JSON.

Thread counts are set here, in the benchmark processes, never in library code
(docs/benchmarks.md).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DOCS_FILE = REPO / "docs" / "benchmarks.md"

RESULT_MARKER = "BENCH_RESULT "
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

MEMORY_METHOD = (
    "Each (configuration, fitter) runs in its own child process, forked from a worker that "
    "has imported the libraries and built the data (so every fitter starts from the same "
    "state and its peak is not mixed with another's). The child resets the kernel's "
    "peak-RSS counter (`echo 5 > /proc/self/clear_refs`) and reads its RSS just before the "
    "fit, then the peak RSS (`VmHWM` in `/proc/self/status`) after it. Reported: peak RSS "
    "during the fit minus RSS before it, i.e. the memory the fit needs on top of the data "
    "already in memory (MiB, max over repeats). RSS sees torch and NumPy allocations alike "
    "(tracemalloc sees only NumPy's). Where clear_refs is unavailable the fallback is "
    "`ru_maxrss` minus the pre-fit RSS."
)


# ----------------------------------------------------------------------------- threads
def thread_env(n_threads: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment with every BLAS/OpenMP thread variable set to ``n_threads``."""
    env = dict(os.environ if base is None else base)
    for var in THREAD_VARS:
        env[var] = str(n_threads)
    return env


def limit_threads(n_threads: int) -> dict[str, Any]:
    """Pin this (benchmark) process to ``n_threads`` for torch (if imported) and for every
    BLAS/OpenMP pool threadpoolctl can see; returns what was set, for the record."""
    from threadpoolctl import threadpool_info, threadpool_limits

    out: dict[str, Any] = {"requested": n_threads}
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(n_threads)
        out["torch_num_threads"] = torch.get_num_threads()
    # Kept alive for the life of the process on purpose: a benchmark child does one job.
    limit_threads._limiter = threadpool_limits(limits=n_threads)  # type: ignore[attr-defined]
    out["threadpools"] = [
        {k: p.get(k) for k in ("user_api", "internal_api", "version", "num_threads")}
        for p in threadpool_info()
    ]
    out["env"] = {v: os.environ.get(v) for v in THREAD_VARS if os.environ.get(v) is not None}
    return out


# ----------------------------------------------------------------------------- memory
def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _maxrss_kib() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r // 1024 if sys.platform == "darwin" else r  # bytes on macOS, KiB on Linux


class PeakMemory:
    """Peak resident memory of a block of code in this process, above the RSS at its start.

    Use as ``with PeakMemory() as pm: ...`` then read ``pm.peak_mib`` and ``pm.method``.
    """

    def __enter__(self) -> PeakMemory:
        self.method = "VmHWM after clear_refs"
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            self.method = "ru_maxrss"
        rss = _status_kib("VmRSS")
        self.start_kib = rss if rss is not None else _maxrss_kib()
        return self

    def __exit__(self, *exc: object) -> None:
        hwm = _status_kib("VmHWM") if self.method != "ru_maxrss" else None
        self.peak_kib = hwm if hwm is not None else _maxrss_kib()
        self.peak_mib = max(0.0, (self.peak_kib - self.start_kib) / 1024.0)
        self.start_mib = self.start_kib / 1024.0


# ----------------------------------------------------------------------------- machine
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Cores, CPU, memory, library versions, date: the context every result needs."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    mem_total = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_total = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": mem_total,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            d: _version(d)
            for d in ("torch", "numpy", "scipy", "scikit-learn", "threadpoolctl", "causal_mixtures")
        },
    }
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        pass
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=False, timeout=10,
        ).stdout.strip()
        info["git"] = rev + ("+dirty" if dirty else "") if rev else None
    except (OSError, subprocess.SubprocessError):
        info["git"] = None
    return info


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


# ----------------------------------------------------------------------------- children
class ChildError(RuntimeError):
    """A benchmark child process failed or printed no result."""


def stream_child(argv: list[str], env: dict[str, str], on_result) -> int:
    """Run ``python argv...``; call ``on_result(dict)`` for every line it prints after
    ``RESULT_MARKER`` (as they come); its stderr goes to ours. Returns the exit status."""
    with subprocess.Popen([sys.executable, *argv], env=env, stdout=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(RESULT_MARKER):
                on_result(json.loads(line[len(RESULT_MARKER):]))
        return proc.wait()


def emit_result(result: dict) -> None:
    """The child's half of :func:`stream_child`."""
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_forked(fn, *args: Any, timeout: float | None = None) -> Any:
    """``fn(*args)`` in a forked child; returns its (JSON-able) result.

    The child shares the parent's imported modules and data copy-on-write, so a fresh
    process costs milliseconds instead of seconds of imports, and its peak memory is its own.
    The parent must not have started BLAS/OpenMP thread pools (it only imports and builds
    data). POSIX only.
    """
    import signal
    import traceback

    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        code = 0
        try:
            if timeout:
                signal.alarm(max(1, int(timeout)))
            payload = {"ok": True, "result": fn(*args)}
        except BaseException:  # noqa: BLE001 - everything is reported to the parent
            payload = {"ok": False, "error": traceback.format_exc()[-3000:]}
            code = 1
        with os.fdopen(w, "wb") as fh:
            fh.write(json.dumps(payload).encode())
        sys.stderr.flush()
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        why = f"killed by signal {sig}" + (" (timeout)" if sig == 14 else "") if sig else (
            f"exit status {os.WEXITSTATUS(status)}")
        raise ChildError(f"benchmark child died without a result: {why}")
    payload = json.loads(data)
    if not payload["ok"]:
        raise ChildError(payload["error"])
    return payload["result"]


# ----------------------------------------------------------------------------- output
def write_json(path: Path, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def write_outputs(result: dict, out: Path, no_docs: bool = False) -> None:
    """Write ``result`` to ``out``; when ``out`` is the default results file
    (``results/<name>.json``) and not ``no_docs``, regenerate ``docs/benchmarks.md``."""
    write_json(out, result)
    default_out = Path(out).resolve() == (RESULTS_DIR / f"{result['name']}.json").resolve()
    if default_out and not no_docs:
        render_docs(DOCS_FILE)


def md_table(header: list[str], rows: list[list[Any]], align: list[str] | None = None) -> str:
    """A GitHub markdown table; ``align`` entries are 'l' or 'r'."""
    align = align or ["l"] * len(header)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def fmt_s(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 0.1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def fmt_num(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def fmt_n(n: int) -> str:
    """1e4-style for powers of ten from 1e4 up, plain otherwise."""
    s = f"{n:.0e}".replace("e+0", "e").replace("e+", "e")
    return s if n >= 10_000 and float(s) == n else str(n)


# ----------------------------------------------------------------------------- docs
def discover() -> list[Path]:
    """Every benchmark script in this folder (``bench_*.py``), sorted by name."""
    return sorted(BENCH_DIR.glob("bench_*.py"))


def load_bench_module(path: Path):
    """Import a benchmark script as a module (for its ``render_markdown``)."""
    import importlib.util

    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location(f"_benchmarks_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def render_machine(m: dict[str, Any]) -> str:
    v = m.get("versions", {})
    lines = [
        f"- Date: {m.get('date')} (git {m.get('git') or 'unknown'})",
        f"- CPU: {m.get('cpu')}; {m.get('usable_cores')} usable cores "
        f"(os.cpu_count = {m.get('cores')}); {m.get('memory_gib')} GiB RAM; "
        f"load average at start {m.get('load_average')}",
        f"- Python {m.get('python')} on {m.get('platform')}",
        "- " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
    ]
    child = m.get("child_threads")
    if child:
        th = child.get("threads", {})
        pools = ", ".join(
            f"{p.get('internal_api')} {p.get('version') or ''} ({p.get('num_threads')} thr)".replace(
                "  ", " ")
            for p in th.get("threadpools", [])
        )
        lines.append(
            f"- Threads (headline): torch.set_num_threads({th.get('requested')}) → "
            f"{th.get('torch_num_threads')}; threadpoolctl limits → {pools or 'none seen'}; "
            f"env {', '.join(f'{k}={val}' for k, val in th.get('env', {}).items())}"
        )
        if child.get("torch_config"):
            lines.append("- torch build: " + "; ".join(child["torch_config"]))
    return "\n".join(lines)


DOCS_HEADER = """# Benchmarks

Generated by `make bench` (`python benchmarks/run_all.py`); do not edit by hand. Each
section names the command that regenerates it. The raw results are the JSON files in
`benchmarks/results/` (not committed). Timings come from a shared 2-core machine: read
ratios, not absolute seconds, and compare runs only at the same thread settings.
"""


def page_sections(path: Path) -> dict[str, str]:
    """The ``## `` sections of a Markdown page by their title (empty if there is none)."""
    path = Path(path)
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    title = None
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("## "):
            title = line[3:].strip()
            out[title] = ""
        if title is not None:
            out[title] += line
    return out


def kept_section(old: dict[str, str], script: Path) -> str:
    """The page's current section of a benchmark whose JSON is not here (results are not
    committed: a clone has only what it ran), or a "not run yet" stub."""
    try:
        title = getattr(load_bench_module(script), "TITLE", script.stem)
    except Exception:  # noqa: BLE001 - an unimportable script has no section to keep
        title = script.stem
    if title in old and "Not run yet" not in old[title]:
        return old[title].rstrip("\n") + "\n"
    return f"## {script.stem}\n\nNot run yet: `python benchmarks/{script.name}`.\n"


def render_docs(docs_path: Path = DOCS_FILE, results_dir: Path = RESULTS_DIR) -> str:
    """Regenerate the benchmarks page from every ``results/<name>.json``; returns the text.
    A benchmark without its JSON keeps its current section of the page."""
    sections = [DOCS_HEADER]
    old = page_sections(docs_path)
    for script in discover():
        name = script.stem
        path = Path(results_dir) / f"{name}.json"
        if not path.exists():
            sections.append(kept_section(old, script))
            continue
        result = json.loads(path.read_text())
        if "markdown" not in result:  # a run in progress: keep the page's section
            sections.append(kept_section(old, script))
            continue
        try:
            module = load_bench_module(script)
            render = getattr(module, "render_markdown", None)
            body = render(result) if render is not None else result.get("markdown", "")
        except Exception as exc:  # noqa: BLE001 - fall back to the stored rendering
            body = result.get("markdown", "") + f"\n\n(re-rendering failed: {exc!r})"
        sections.append(
            f"## {result.get('title', name)}\n\n"
            f"Regenerate: `make bench` (all benchmarks), or this section alone: "
            f"`{result.get('command', 'python benchmarks/' + script.name)}`.\n\n"
            f"{body}\n\n### Machine\n\n{render_machine(result.get('machine', {}))}\n"
        )
    text = "\n".join(sections)
    docs_path = Path(docs_path)
    docs_path.parent.mkdir(parents=True, exist_ok=True)
    docs_path.write_text(text)
    return text
