"""The GPU against one CPU core: the same end-to-end fit with default settings, on
``device="cuda"`` and on ``device="cpu"`` with one thread, in float64 and float32.

The fit is ``bench_pipeline``'s (``CausalGaussianMixture(n_components=K, max_iter=iters,
tol=0, random_state=seed, device=..., dtype=...).fit_resample(X, y, mechanism=z)``: the
weights, the strategy's checks, k-means, EM for both do values and the draws), on its data
(a binary cause, a 1-D continuous mechanism, ``d`` effect columns). Each configuration runs
in its own forked child after a warm-up fit on 2 000 rows (CUDA context, kernels); the GPU
side is timed in wall seconds with ``torch.cuda.synchronize()`` around the fit, the CPU side
in CPU seconds of one thread (the machine is shared). The accuracy of each GPU fit against
the CPU fit of the same dtype is recorded (means in sd units, objective per row).

Without a CUDA device the benchmark records that it did not run (``"skipped"``) and its
section of ``docs/benchmarks.md`` says so; ``scripts/gpu_check.sh`` runs it together with
the CUDA tests on a GPU machine.

Goal (issue 12): record GPU vs one CPU core at n = 1e6, d = 64 (float64 and float32).

Run ``python benchmarks/bench_gpu.py --help``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    RESULTS_DIR,
    ChildError,
    fmt_n,
    fmt_num,
    fmt_s,
    limit_threads,
    machine_info,
    md_table,
    run_forked,
    write_outputs,
)
from bench_paper import command_line
from bench_pipeline import K, make_data

NAME = "bench_gpu"
TITLE = "GPU against one CPU core, end to end with default settings"
DEFAULT_SIZES = (1_000_000,)
QUICK_SIZES = (100_000,)
DEFAULT_DIMS = (64,)
DTYPES = ("float64", "float32")


def _fit(device: str, dtype: str, n: int, d: int, k: int, iters: int, seed: int,
         threads: int) -> dict[str, Any]:
    """One configuration in a child process: time and what was fitted."""
    limit_threads(threads)
    import torch

    import causal_mixtures as cm

    warnings.simplefilter("ignore", cm.ConvergenceWarning)  # tol=0: never "converged"
    X, y, z = make_data(n, d, seed)

    def fit(rows: slice = slice(None), n_iter: int = iters) -> Any:
        est = cm.CausalGaussianMixture(n_components=k, max_iter=n_iter, tol=0.0,
                                       random_state=seed, device=device, dtype=dtype)
        est.fit_resample(X[rows], y[rows], mechanism=z[rows])
        return est

    fit(slice(0, 2000), 1)  # warm-up: CUDA context, kernel dispatch, lazy imports
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0, c0 = time.perf_counter(), time.process_time()
    model = fit()
    if cuda:
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {"wall_s": wall, "cpu_s": cpu, "strategy": model.strategy_,
           "dtype": getattr(model, "dtype_", None),
           "means_sd": (model.means_ / X.std(0)).tolist(),
           "lower_bound": np.asarray(model.lower_bound_).tolist()}
    if cuda:
        out["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        out["gpu"] = torch.cuda.get_device_name()
    return out


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def run(args: argparse.Namespace) -> dict:
    # Asked in a child: the parent must not initialise CUDA, or the forked fits cannot.
    if not run_forked(_cuda_available, timeout=120):
        return {"skipped": "no CUDA device on this machine (torch.cuda.is_available() is "
                           "False)", "rows": []}
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    rows = []
    for n in sizes:
        for d in args.dims:
            for dtype in DTYPES:
                row: dict[str, Any] = {"n": n, "d": d, "k": args.k, "iters": args.iters,
                                       "dtype": dtype}
                for side, device, threads in (("cpu", "cpu", 1), ("gpu", "cuda", 1)):
                    try:
                        row[side] = run_forked(_fit, device, dtype, n, d, args.k, args.iters,
                                               args.seed, threads, timeout=args.timeout)
                    except ChildError as exc:
                        row[side] = {"error": str(exc)[-2000:]}
                c, g = row["cpu"], row["gpu"]
                if "cpu_s" in c and "wall_s" in g:
                    row["speedup"] = c["cpu_s"] / g["wall_s"]
                    row["max_mean_diff_sd"] = float(np.max(np.abs(
                        np.asarray(g["means_sd"]) - np.asarray(c["means_sd"]))))
                    row["max_objective_diff"] = float(np.max(np.abs(
                        np.asarray(g["lower_bound"]) - np.asarray(c["lower_bound"]))))
                rows.append(row)
                print(f"[{NAME}] n={fmt_n(n)} d={d} {dtype}: CPU {fmt_s(c.get('cpu_s'))} s, "
                      f"GPU {fmt_s(g.get('wall_s'))} s", file=sys.stderr, flush=True)
    return {"rows": rows}


def _sci(v: float | None) -> str:
    return "—" if v is None else f"{v:.1e}"


def render_markdown(result: dict) -> str:
    if result.get("skipped"):
        return (f"**Not measured**: {result['skipped']}. The GPU benchmark runs where a GPU "
                "is available (`bash scripts/gpu_check.sh` runs it with the CUDA tests).")
    s = result["settings"]
    table = []
    for r in result["rows"]:
        c, g = r.get("cpu", {}), r.get("gpu", {})
        table.append([fmt_n(r["n"]), r["d"], r["dtype"], fmt_s(c.get("cpu_s")),
                      fmt_s(g.get("wall_s")), fmt_num(r.get("speedup")),
                      _sci(r.get("max_mean_diff_sd")), _sci(r.get("max_objective_diff")),
                      fmt_num(g.get("gpu_peak_mib"))])
    gpu = next((r["gpu"].get("gpu") for r in result["rows"] if "gpu" in r.get("gpu", {})), "?")
    return "\n\n".join([
        f"K = {s['k']}, `tol=0` ({s['iters']} iterations), two do values, every other setting "
        f"at its default (bench_pipeline's fit and data). CPU: CPU seconds of one thread; GPU "
        f"({gpu}): wall seconds, synchronised. Differences: the GPU fit against the CPU fit of "
        "the same dtype (largest |Δ mean| in sd units, largest |Δ objective| per row).",
        md_table(["n", "d", "dtype", "CPU 1 thread (s)", "GPU (s)", "speed-up",
                  "max Δ mean (sd)", "max Δ objective", "GPU peak (MiB)"], table),
    ])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench_gpu.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"n in {QUICK_SIZES}")
    p.add_argument("--sizes", type=lambda t: [int(float(v)) for v in t.split(",")],
                   default=None, help="comma-separated row counts, e.g. 1e5,1e6")
    p.add_argument("--dims", type=lambda t: [int(v) for v in t.split(",")],
                   default=list(DEFAULT_DIMS))
    p.add_argument("--k", type=int, default=K)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / f"{NAME}.json")
    p.add_argument("--no-docs", action="store_true")
    return p


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    import torch  # noqa: F401 - imported once, before the children fork

    import causal_mixtures  # noqa: F401

    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "name": NAME, "title": TITLE, "command": command_line(NAME, argv),
        "machine": machine_info(), "settings": {"k": args.k, "iters": args.iters,
                                                "seed": args.seed},
    }
    result.update(run(args))
    result["wall_s"] = time.perf_counter() - t0
    result["markdown"] = render_markdown(result)
    write_outputs(result, args.out, args.no_docs)
    return result


if __name__ == "__main__":
    main()
