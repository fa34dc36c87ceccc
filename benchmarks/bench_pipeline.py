"""End to end with default settings: the whole deconfounding step against scikit-learn's one
unweighted ``GaussianMixture`` fit of the same K and iterations.

``bench_em.py`` times the weighted EM alone (same initial parameters for both sides). This
benchmark times what a user runs:

* **ours**: ``CausalGaussianMixture(n_components=K, max_iter=iters, tol=0,
  random_state=seed).fit_resample(X, y, mechanism=z)``, every other setting at its default
  (front-door graph, ``density="auto"`` for the continuous mechanism, ``strategy="auto"``
  with its plug-in check, ``covariance_type="full"``, k-means initialisation): the weights,
  the strategy's checks, the initialisation, EM for both do values and the draws of the
  deconfounded set (``n`` rows);
* **sklearn**: ``GaussianMixture(K, max_iter=iters, tol=0, random_state=seed).fit(X)``, its
  own k-means initialisation included: one mixture.

Data: a binary cause ``y`` confounded with the effect through ``u``, a continuous 1-D
mechanism ``z = y + 0.7 ε``, and ``d`` effect columns (``x_1 = z + u + ε``, the others
``0.3 z + 0.5 u + ε``). ``tol=0`` so that both sides run exactly ``iters`` EM iterations.

Each side runs in its own forked child with ``--threads`` torch/BLAS threads (default 1), after
a warm-up fit on 2 000 rows; times are CPU seconds of the child (``time.process_time``: the
machine is shared, and with one thread CPU time is what the work costs), wall seconds
recorded too; peak memory above the RSS at the start of the fit (``VmHWM``). The stages of
ours are timed by wrappers installed in the child only: weights (``estimate_weights``), the
strategy (``resolve_strategy``: the plug-in check and, where chosen, the plug-in fit), k-means
and EM; *other* is the rest (validation, initial M-step, sampling).

Goal (issue 12): ratio ours / sklearn ≤ 1.0 at n = 1e5 and 1e6, d = 2 and 64.

Run ``python benchmarks/bench_pipeline.py --help``; ``make bench`` runs it through
``run_all.py``.
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
    MEMORY_METHOD,
    RESULTS_DIR,
    ChildError,
    PeakMemory,
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

NAME = "bench_pipeline"
TITLE = "End to end with default settings vs scikit-learn's GaussianMixture"
K = 5
DEFAULT_SIZES = (100_000, 1_000_000)
QUICK_SIZES = (20_000, 100_000)
DEFAULT_DIMS = (2, 64)
GOAL_RATIO = 1.0
MEMORY_SIZES = (1_000_000, 10_000_000)
MEMORY_GOAL = 3.0
#: Effect dimensions from which the same fit with ``dtype="float64"`` is measured too.
F32_MIN_D = 32
#: Iterations: the default, and fewer where one iteration is expensive (n·d² ≥ LARGE_COST),
#: so that ``make bench`` stays short; the ratio hardly depends on it.
LARGE_COST = 5e8


def make_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, z)``: a confounded front-door problem with ``d`` effect columns."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=n)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-1.5 * u))).astype(int)
    z = y + 0.7 * rng.normal(size=n)
    X = np.empty((n, d))
    rng.standard_normal(out=X)
    X[:, 0] += z + u
    if d > 1:
        X[:, 1:] += (0.3 * z + 0.5 * u)[:, None]
    return X, y, z.reshape(-1, 1)


class _Timers:
    """CPU time of the estimator's stages (wrappers installed in the benchmark child)."""

    KEYS = ("weights", "strategy", "kmeans", "em")

    def __init__(self) -> None:
        self.times = dict.fromkeys(self.KEYS, 0.0)

    def install(self) -> None:
        import causal_mixtures.estimators.fitting as fitting
        import causal_mixtures.estimators.gaussian_mixture as gm
        import causal_mixtures.mixture.init as init

        timers = self

        def timed(key: str, fn):
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                t0 = time.process_time()
                try:
                    return fn(*args, **kwargs)
                finally:
                    timers.times[key] += time.process_time() - t0

            return wrapper

        class TimedKMeans(init.KMeans):
            def fit(self, *args: Any, **kwargs: Any) -> Any:
                t0 = time.process_time()
                try:
                    return super().fit(*args, **kwargs)
                finally:
                    timers.times["kmeans"] += time.process_time() - t0

        gm.estimate_weights = timed("weights", gm.estimate_weights)
        gm.resolve_strategy = timed("strategy", gm.resolve_strategy)
        fitting.weighted_em = timed("em", fitting.weighted_em)
        init.KMeans = TimedKMeans


def _side(side: str, n: int, d: int, k: int, iters: int, seed: int, threads: int) -> dict:
    """One side's fit in a child process: times, peak memory and what was fitted."""
    limit_threads(threads)
    from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning

    import causal_mixtures as cm

    warnings.simplefilter("ignore", SkConvergenceWarning)
    warnings.simplefilter("ignore", cm.ConvergenceWarning)  # tol=0: never "converged"
    X, y, z = make_data(n, d, seed)
    out: dict[str, Any] = {}
    if side == "sklearn":
        from sklearn.mixture import GaussianMixture

        def fit(rows: slice = slice(None), n_iter: int = iters):
            return GaussianMixture(k, max_iter=n_iter, tol=0.0, random_state=seed).fit(X[rows])
    else:
        timers = _Timers()

        extra = {"dtype": "float64"} if side == "ours_f64" else {}

        def fit(rows: slice = slice(None), n_iter: int = iters):
            est = cm.CausalGaussianMixture(n_components=k, max_iter=n_iter, tol=0.0,
                                           random_state=seed, **extra)
            est.fit_resample(X[rows], y[rows], mechanism=z[rows])
            return est

    fit(slice(0, 2000), 1)  # warm-up: thread pools, kernel dispatch, lazy imports
    if side != "sklearn":
        timers.install()
    with PeakMemory() as pm:
        t0, c0 = time.perf_counter(), time.process_time()
        model = fit()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out.update({"cpu_s": cpu, "wall_s": wall, "peak_mib": pm.peak_mib,
                "data_mib": X.nbytes / 2**20})
    if side != "sklearn":
        stages = dict(timers.times)
        stages["other"] = max(0.0, cpu - sum(stages.values()))
        cw = model.causal_weights_
        out.update({
            "stages_s": stages, "strategy": model.strategy_,
            "dtype": getattr(model, "dtype_", None),
            "density": type(cw.density).__name__ if getattr(cw, "density", None) is not None
            else None,
            "ess": [float(e) for e in np.atleast_1d(cw.ess)],
            "n_iter": np.asarray(model.n_iter_).tolist(),
            "means_sd": (model.means_ / X.std(0)).tolist(),
            "lower_bound": np.asarray(model.lower_bound_).tolist(),
        })
    else:
        out["n_iter"] = [int(model.n_iter_)]
    return out


def _memory(n: int, d: int, k: int, iters: int, seed: int, threads: int) -> dict:
    """Peak memory of a fit of ``n × d`` rows, K full components, two do values (unit
    weights: the EM's own memory, no density), above the RSS with the data in memory."""
    limit_threads(threads)
    import causal_mixtures as cm

    warnings.simplefilter("ignore", cm.ConvergenceWarning)
    rng = np.random.default_rng(seed)
    X = np.empty((n, d))
    rng.standard_normal(out=X)
    X[:, 0] += 3.0 * (rng.random(n) < 0.5)
    W = np.ones((n, 2))
    cm.CausalGaussianMixture(None, k, max_iter=1).fit(X[:2000], weights=W[:2000])
    with PeakMemory() as pm:
        c0 = time.process_time()
        cm.CausalGaussianMixture(None, k, max_iter=iters, tol=0.0,
                                 random_state=seed).fit(X, weights=W)
        cpu = time.process_time() - c0
    data = (X.nbytes + W.nbytes) / 2**20
    return {"n": n, "d": d, "k": k, "iters": iters, "data_mib": data, "peak_mib": pm.peak_mib,
            "ratio": pm.peak_mib / data, "cpu_s": cpu, "memory_method": pm.method}


def run(args: argparse.Namespace) -> dict:
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    rows = []
    for n in sizes:
        for d in args.dims:
            iters = args.large_iters if n * d * d >= LARGE_COST else args.iters
            row: dict[str, Any] = {"n": n, "d": d, "k": args.k, "iters": iters}
            sides = ("sklearn", "ours") + (("ours_f64",) if d >= F32_MIN_D else ())
            for side in sides:
                try:
                    row[side] = run_forked(_side, side, n, d, args.k, iters, args.seed,
                                           args.threads, timeout=args.timeout)
                except ChildError as exc:
                    row[side] = {"error": str(exc)[-2000:]}
            a, b = row["ours"].get("cpu_s"), row["sklearn"].get("cpu_s")
            row["ratio"] = None if a is None or not b else a / b
            row["goal"] = None if row["ratio"] is None else (
                "PASS" if row["ratio"] <= GOAL_RATIO else "FAIL")
            f64 = row.get("ours_f64")
            if f64 is not None and "cpu_s" in f64 and "cpu_s" in row["ours"]:
                row["ratio_f64"] = f64["cpu_s"] / b if b else None
                row["auto_max_mean_diff_sd"] = float(np.max(np.abs(
                    np.asarray(f64["means_sd"]) - np.asarray(row["ours"]["means_sd"]))))
                row["auto_max_objective_diff"] = float(np.max(np.abs(
                    np.asarray(f64["lower_bound"]) - np.asarray(row["ours"]["lower_bound"]))))
            rows.append(row)
            print(f"[{NAME}] n={fmt_n(n)} d={d}: ours {fmt_s(a)} s, sklearn {fmt_s(b)} s, "
                  f"ratio {fmt_num(row['ratio'])}", file=sys.stderr, flush=True)
    memory = []
    for n in args.memory_sizes:
        try:
            memory.append(run_forked(_memory, n, 10, 10, 3, args.seed, args.threads,
                                     timeout=args.timeout))
        except ChildError as exc:
            memory.append({"n": n, "d": 10, "k": 10, "error": str(exc)[-2000:]})
        m = memory[-1]
        print(f"[{NAME}] memory n={fmt_n(n)}: " + (f"peak {m['peak_mib']:.0f} MiB above the "
              f"data ({m['ratio']:.2f}x)" if "error" not in m else "FAILED"),
              file=sys.stderr, flush=True)
    return {"rows": rows, "memory": memory}


def render_markdown(result: dict) -> str:
    s = result["settings"]
    judged = [r for r in result["rows"] if r["goal"] is not None]
    verdict = "PASS" if judged and all(r["goal"] == "PASS" for r in judged) else "FAIL"
    parts = [
        f"**Goal** (weights + checks + initialisation + EM for two do values + sampling, with "
        f"default settings, cost no more than scikit-learn's one unweighted mixture of the "
        f"same K and iterations; CPU-time ratio ≤ {GOAL_RATIO}): **{verdict}**, "
        f"{sum(r['goal'] == 'PASS' for r in judged)}/{len(judged)} configurations.",
        f"K = {s['k']}, `tol=0` ({s['iters']} iterations, {s['large_iters']} where "
        f"n·d² ≥ {LARGE_COST:.0e}), {s['threads']} thread, seed {s['seed']}. CPU seconds of "
        f"each side's child process. Peak MiB: {MEMORY_METHOD}",
    ]
    header = ["n", "d", "iters", "ours (s)", "sklearn (s)", "ratio", "goal", "weights",
              "strategy", "k-means", "EM", "other", "chosen", "density", "ESS",
              "peak MiB ours", "peak MiB sklearn"]
    body = []
    for r in result["rows"]:
        o, sk = r["ours"], r["sklearn"]
        st = o.get("stages_s", {})
        body.append([
            fmt_n(r["n"]), r["d"], r["iters"], fmt_s(o.get("cpu_s")), fmt_s(sk.get("cpu_s")),
            fmt_num(r["ratio"]), r["goal"] or "error",
            *(fmt_s(st.get(key)) for key in ("weights", "strategy", "kmeans", "em", "other")),
            o.get("strategy", "—"), o.get("density", "—"),
            " / ".join(f"{e:.0f}" for e in o.get("ess", [])) or "—",
            fmt_num(o.get("peak_mib"), 0), fmt_num(sk.get("peak_mib"), 0),
        ])
    parts.append(md_table(header, body, ["r"] * 7 + ["r"] * 5 + ["l", "l", "r", "r", "r"]))
    mem = result.get("memory") or []
    if mem:
        parts.append(
            f"**Memory** (goal: peak above the data within {MEMORY_GOAL:g}x the data at 1e6 x "
            "10, K = 10 full; 1e7 x 10 within the machine's memory). "
            "`CausalGaussianMixture(None, 10, max_iter=3, tol=0).fit(X, weights=np.ones((n, "
            "2)))`: the EM's memory for two do values, no density; data = X and the weights; "
            "peak above the RSS with the data loaded. What remains is O(n·d), not O(n·K·d): "
            "the validated copy of X (user data are never mutated), the standardised copy the "
            "fit runs on, and the weights' copies; everything per component is by chunks.")
        parts.append(md_table(
            ["n", "d", "K", "iters", "data MiB", "peak MiB above", "× data", "CPU s"],
            [[fmt_n(m["n"]), m["d"], m["k"], m.get("iters", "—"),
              fmt_num(m.get("data_mib"), 0), fmt_num(m.get("peak_mib"), 0),
              fmt_num(m.get("ratio")), fmt_s(m.get("cpu_s"))] if "error" not in m else
             [fmt_n(m["n"]), m["d"], m["k"], "—", "—", "failed", "—", "—"] for m in mem],
            ["r"] * 8))
    f64 = [r for r in result["rows"] if r.get("ratio_f64") is not None]
    if f64:
        parts.append(
            "**Precision.** The default `dtype=\"auto\"` runs the EM in float32 where it is fast "
            "and safe (at least 2e6 entries and 16 features, condition numbers at most 1e4; "
            "`estimators/precision.py`); the same fit with `dtype=\"float64\"`, against "
            "scikit-learn and against the default fit of the same run (largest difference of "
            "the interventional mixtures' means, in sd of the features, and of the per-row "
            "objective):")
        parts.append(md_table(
            ["n", "d", "default's EM", "ours float64 (s)", "float64 ratio to sklearn",
             "max abs Δ mean (sd)", "max abs Δ objective per row"],
            [[fmt_n(r["n"]), r["d"], r["ours"].get("dtype", "—"), fmt_s(r["ours_f64"]["cpu_s"]),
              fmt_num(r["ratio_f64"]), f"{r['auto_max_mean_diff_sd']:.1e}",
              f"{r['auto_max_objective_diff']:.1e}"]
             for r in f64], ["r"] * 7))
    errors = [f"n={fmt_n(r['n'])} d={r['d']} {side}: {r[side]['error'][-200:]}"
              for r in result["rows"] for side in ("ours", "ours_f64", "sklearn")
              if side in r and "error" in r[side]]
    if errors:
        parts.append("Errors: " + "; ".join(errors))
    parts.append(f"Total wall time of this benchmark: {result['wall_s'] / 60:.1f} min.")
    return "\n\n".join(parts)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench_pipeline.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"n in {QUICK_SIZES}")
    p.add_argument("--sizes", type=lambda t: [int(float(v)) for v in t.split(",")],
                   default=None, help="comma-separated row counts, e.g. 1e5,1e6")
    p.add_argument("--dims", type=lambda t: [int(v) for v in t.split(",")],
                   default=list(DEFAULT_DIMS))
    p.add_argument("--k", type=int, default=K)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--large-iters", type=int, default=5)
    p.add_argument("--memory-sizes", type=lambda t: [int(float(v)) for v in t.split(",") if v],
                   default=list(MEMORY_SIZES), help="row counts of the memory rows ('' none)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1200.0)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / f"{NAME}.json")
    p.add_argument("--no-docs", action="store_true")
    return p


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    import sklearn.mixture  # noqa: F401 - imported once, before the children fork
    import torch  # noqa: F401

    import causal_mixtures  # noqa: F401

    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "name": NAME, "title": TITLE, "command": command_line(NAME, argv),
        "machine": machine_info(), "settings": {
            "k": args.k, "iters": args.iters, "large_iters": args.large_iters,
            "threads": args.threads, "seed": args.seed},
    }
    result.update(run(args))
    result["wall_s"] = time.perf_counter() - t0
    result["markdown"] = render_markdown(result)
    write_outputs(result, args.out, args.no_docs)
    return result


if __name__ == "__main__":
    main()
