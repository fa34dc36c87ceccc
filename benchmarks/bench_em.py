"""Weighted EM (``CausalGaussianMixture``) against ``sklearn.mixture.GaussianMixture``.

What is compared, per configuration (n rows, d dimensions, covariance type, K = 5):

* **ours, 2 do values**: ``CausalGaussianMixture(graph=None, ...).fit(X, weights=W)`` with
  ``W`` of shape (n, 2): two mixtures fitted at once (unit weights; and, as a control that
  the weights do not change the cost, i.i.d. Exponential(1) weights);
* **ours, 1 do value**: the same with ``W = ones((n, 1))``;
* **sklearn**: ``GaussianMixture(...).fit(X)``: one unweighted mixture.

Fairness: the same data, the same initial parameters for every fitter (a k-means on the
data, run once per (n, d) in its own process and excluded from all timings, turned into
``weights_init / means_init / precisions_init``; with all three given, scikit-learn skips its
own initialisation), ``tol=0`` and ``max_iter=N`` so that every fitter runs exactly N EM
iterations, the same thread settings (environment variables, ``torch.set_num_threads`` and
threadpoolctl in the child process), and a warm-up fit on a few rows before timing. Each
(configuration, fitter) runs in a fresh child process so that peak memory is measured in
isolation. Times are the child's CPU seconds (``time.process_time``) with one thread and
``time.perf_counter`` wall-clock seconds with more, best of ``--repeats``.

Run ``python benchmarks/bench_em.py --help``; ``make bench`` runs it through ``run_all.py``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shlex
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    DOCS_FILE,
    MEMORY_METHOD,
    RESULTS_DIR,
    ChildError,
    PeakMemory,
    emit_result,
    fmt_n,
    fmt_num,
    fmt_s,
    limit_threads,
    load_average,
    machine_info,
    md_table,
    render_docs,
    run_forked,
    stream_child,
    thread_env,
    write_json,
)

NAME = "bench_em"
TITLE = "Weighted EM vs scikit-learn GaussianMixture"

K = 5
REG_COVAR = 1e-6
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_MAX_N = 100_000
DEFAULT_DIMS = (2, 64)
DEFAULT_COVS = ("full", "diag")
# Fewer EM iterations where one iteration is expensive, so that the default run fits in about
# 15 minutes on 2 shared cores (the time ratio does not depend on the iteration count, up to
# the fixed per-fit costs, which only penalise the side with more of them). Cost proxy:
# n·K·d² (full) or n·K·d (diag). "large" (--large-iters): n >= LARGE_N or cost >= LARGE_COST
# (n = 1e6; n = 1e5, d = 64, full); "heavy" (--heavy-iters): cost >= HEAVY_COST
# (n = 1e6, d = 64, full: ~1e11 flops per iteration).
LARGE_N = 1_000_000
LARGE_COST = 1e9
HEAVY_COST = 1e10
GOAL_RATIO = 1.0
GOAL_MIN_N = 100_000
PUBLISHED_REFERENCE_S = 208.0
SIDES = ("sklearn", "ours_2do", "ours_2do_expw", "ours_1do", "ours_2do_f64")
#: The side the unit-weight equivalence with scikit-learn is judged on: the default
#: ``dtype="auto"`` runs the EM in float32 at n·d >= 2e6 and d >= 16 (timed), and the
#: contract (1e-6) is float64's; this side is the same fit with ``dtype="float64"``, timed
#: once and not part of any ratio.
EQUIVALENCE_SIDE = "ours_2do_f64"


# =============================================================================== data
def make_data(n: int, d: int, k: int, seed: int) -> np.ndarray:
    """``n`` rows from a random ``k``-component Gaussian mixture in ``d`` dimensions
    (axis-aligned scales), generated in place so the peak is about the array itself."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, (k, d))
    scales = rng.uniform(0.5, 1.5, (k, d))
    labels = rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 5.0)))
    X = np.empty((n, d))
    rng.standard_normal(out=X)
    step = 1 << 16
    for s in range(0, n, step):
        lab = labels[s : s + step]
        X[s : s + step] *= scales[lab]
        X[s : s + step] += centres[lab]
    return X


def init_from_labels(X: np.ndarray, labels: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """scikit-learn-shaped initial parameters (full and diag) from hard cluster labels."""
    n, d = X.shape
    weights = np.empty(k)
    means = np.empty((k, d))
    prec_full = np.empty((k, d, d))
    prec_diag = np.empty((k, d))
    for j in range(k):
        Xj = X[labels == j]
        weights[j] = len(Xj) / n
        means[j] = Xj.mean(0)
        diff = Xj - means[j]
        cov = diff.T @ diff / len(Xj) + REG_COVAR * np.eye(d)
        p = np.linalg.inv(cov)
        prec_full[j] = 0.5 * (p + p.T)
        prec_diag[j] = 1.0 / (np.einsum("ij,ij->j", diff, diff) / len(Xj) + REG_COVAR)
    return {"weights": weights, "means": means, "precisions_full": prec_full,
            "precisions_diag": prec_diag}


# =============================================================================== child jobs
# A worker process (one per thread setting) imports everything and builds the data once per
# (n, d); every fit then runs in a child forked from it (``run_forked``): isolated peak
# memory without paying seconds of imports per fit. The worker itself never runs BLAS or
# OpenMP code, so the forked children start with clean thread pools.
def _info(threads: int) -> dict:
    import sklearn
    import torch

    pinned = limit_threads(threads)
    blas = []
    for ln in torch.__config__.show().splitlines():
        ln = ln.strip().lstrip("- ")
        if ln.startswith("CPU capability"):
            blas.append(ln)
        elif ln.startswith("Build settings:"):
            blas += [kv.strip() for kv in ln.split(":", 1)[1].split(",")
                     if kv.strip().split("=")[0] in ("BLAS_INFO", "LAPACK_INFO", "USE_OPENMP")]
    return {"threads": pinned, "torch_config": blas, "sklearn": sklearn.__version__}


def _prepare(X: np.ndarray, k: int, seed: int, threads: int, init_path: str) -> dict:
    from sklearn.cluster import KMeans

    limit_threads(threads)
    t0 = time.perf_counter()
    labels = KMeans(k, n_init=1, random_state=seed).fit(X).labels_
    np.savez(init_path, **init_from_labels(X, labels, k))
    return {"kmeans_s": time.perf_counter() - t0, "data_mib": X.nbytes / 2**20}


def _fitter(side: str, cfg: dict, X: np.ndarray, init: dict[str, np.ndarray], seed: int):
    """``fit(rows, n_iter)`` running one fit of ``side``, and ``summary(model)``."""
    ct, k, iters = cfg["cov"], cfg["k"], cfg["iters"]
    kw = dict(
        weights_init=init["weights"],
        means_init=init["means"],
        precisions_init=init["precisions_" + ct],
    )
    if side == "sklearn":
        from sklearn.mixture import GaussianMixture

        def fit(rows: np.ndarray = X, n_iter: int = iters):
            return GaussianMixture(k, covariance_type=ct, tol=0.0, max_iter=n_iter,
                                   reg_covar=REG_COVAR, **kw).fit(rows)

        def summary(m) -> dict:
            return {"n_iter": [int(m.n_iter_)], "means": m.means_.tolist(),
                    "lower_bound": [float(m.lower_bound_)]}

        return fit, summary

    import causal_mixtures as cm

    n = len(X)
    if side == "ours_1do":
        W = np.ones((n, 1))
    elif side in ("ours_2do", EQUIVALENCE_SIDE):
        W = np.ones((n, 2))
    elif side == "ours_2do_expw":
        W = np.random.default_rng(seed + 1).exponential(size=(n, 2))
    else:  # pragma: no cover - internal
        raise ValueError(side)
    extra = {"dtype": "float64"} if side == EQUIVALENCE_SIDE else {}

    # Our reg_covar is relative to the mean feature variance: this value adds
    # scikit-learn's absolute REG_COVAR (unit weights: the plain variance). Computed here,
    # outside the timed call (0.24 s at 1e6 x 64 that scikit-learn's side does not pay).
    reg_all = REG_COVAR / float(np.mean(X.var(0)))

    def fit_ours(rows: np.ndarray = X, n_iter: int = iters):
        reg = reg_all if rows is X else REG_COVAR / float(np.mean(rows.var(0)))
        return cm.CausalGaussianMixture(
            None, k, covariance_type=ct, tol=0.0, max_iter=n_iter, reg_covar=reg, **kw,
            **extra,
        ).fit(rows, weights=W[: len(rows)])

    def summary_ours(m) -> dict:
        return {"n_iter": m.n_iter_.tolist(), "means": m.means_[0].tolist(),
                "lower_bound": m.lower_bound_.tolist()}

    return fit_ours, summary_ours


def _timed(fit, repeats: int, budget_s: float, *, cpu: bool = False) -> dict:
    """Best-of-``repeats`` time and peak memory; stops repeating once ``budget_s`` is
    spent. ``time_s`` is the process's CPU time with ``cpu=True`` (one thread: the honest
    figure on a shared machine, where wall time also counts the other jobs), else wall
    time; both are kept. Returns the timings and the first fitted model."""
    times, cpu_times, peaks, first = [], [], [], None
    for r in range(repeats):
        gc.collect()
        with PeakMemory() as pm:
            t0, c0 = time.perf_counter(), time.process_time()
            model = fit()
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
        peaks.append(pm.peak_mib)
        if r == 0:
            first = model
        del model
        if sum(times) >= budget_s:
            break
    return {"time_s": min(cpu_times if cpu else times), "times_s": times,
            "cpu_times_s": cpu_times, "clock": "cpu" if cpu else "wall",
            "peak_mib": max(peaks), "rss_before_fit_mib": pm.start_mib,
            "memory_method": pm.method, "model": first}


def _fit_side(side: str, cfg: dict, X: np.ndarray, init_path: str, seed: int,
              budget_s: float) -> dict:
    threads = limit_threads(cfg["threads"])
    from sklearn.exceptions import ConvergenceWarning

    warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: by design never "converged"
    with np.load(init_path) as f:
        init = {key: f[key] for key in f.files}
    fit, summary = _fitter(side, cfg, X, init, seed)
    try:  # warm-up: first-call costs (thread pools, kernel dispatch) stay out of the timing
        fit(X[: min(len(X), 2000)], 1)
    except Exception:  # noqa: BLE001 - a warm-up failure must not hide the real fit's error
        pass
    repeats = 1 if side == EQUIVALENCE_SIDE else cfg["repeats"]
    out = _timed(fit, repeats, budget_s, cpu=cfg["threads"] == 1)
    out.update(summary(out.pop("model")))
    out.update({"threads": threads, "loadavg": load_average()})
    return out


def _reference(spec: dict) -> dict:
    """The published reference point: 1e5 2-D rows, K = 6, full, to convergence at the
    default tol, both intervention values of the paper's synthetic classification data."""
    threads = limit_threads(spec["threads"])
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    import causal_mixtures as cm
    from causal_mixtures.simulate.datasets import make_classification_2d

    warnings.simplefilter("ignore", ConvergenceWarning)
    data = make_classification_2d(spec["n"], n_test=10, random_state=spec["seed"])
    X = data.X
    t0 = time.perf_counter()
    # The reference implementation's own density for a 1-D continuous mechanism (10 bins).
    cw = cm.causal_weights("front_door", X, data.y, mechanism=data.mechanism,
                           density=spec["density"])
    weights_s = time.perf_counter() - t0

    def fit():
        return cm.CausalGaussianMixture(None, spec["k"], covariance_type="full",
                                        random_state=spec["seed"]).fit(X, weights=cw)

    def fit_sk():
        return GaussianMixture(spec["k"], covariance_type="full",
                               random_state=spec["seed"]).fit(X)

    cm.CausalGaussianMixture(None, spec["k"], max_iter=1, random_state=0).fit(
        X[:2000], weights=cw.values[:2000])  # warm-up
    ours = _timed(fit, spec["repeats"], spec["budget_s"])
    sk = _timed(fit_sk, spec["repeats"], spec["budget_s"])
    model, sk_model = ours["model"], sk["model"]
    return {
        "n": spec["n"], "d": X.shape[1], "k": spec["k"], "cov": "full", "tol": model.tol,
        "max_iter": model.max_iter, "density": spec["density"], "weights_s": weights_s,
        "do_values": model.do_values_.tolist(), "ess": cw.ess.tolist(),
        "ours_s": ours["time_s"], "ours_times_s": ours["times_s"],
        "ours_n_iter": model.n_iter_.tolist(), "ours_converged": model.converged_.tolist(),
        "peak_mib_ours": ours["peak_mib"], "sklearn_s": sk["time_s"],
        "sklearn_times_s": sk["times_s"], "sklearn_n_iter": int(sk_model.n_iter_),
        "sklearn_converged": bool(sk_model.converged_), "peak_mib_sklearn": sk["peak_mib"],
        "published_s": PUBLISHED_REFERENCE_S, "memory_method": ours["memory_method"],
        "threads": threads, "loadavg": load_average(),
    }


def _freeze_heap() -> None:
    """Move every live object out of the collector's reach before forking: a collection in a
    child would otherwise touch (and copy-on-write) the whole inherited heap, costing time
    and showing up as the fit's memory."""
    gc.collect()
    gc.freeze()


def _worker(spec: dict) -> None:
    """One worker process: runs ``spec["configs"]`` (all at one thread setting)."""
    # Import everything the children need once, here, before any fork.
    import sklearn.cluster  # noqa: F401
    import sklearn.mixture  # noqa: F401
    import torch  # noqa: F401

    import causal_mixtures  # noqa: F401

    threads, seed, timeout = spec["threads"], spec["seed"], spec["timeout"]
    _freeze_heap()
    if spec.get("info"):
        emit_result({"kind": "info", "result": run_forked(_info, threads, timeout=timeout)})
    X, current = None, None
    for cfg in spec["configs"]:
        key = (cfg["n"], cfg["d"])
        if key != current:
            X = None
            gc.unfreeze()
            X = make_data(cfg["n"], cfg["d"], cfg["k"], seed)
            current = key
            _freeze_heap()
        init_path = os.path.join(spec["init_dir"], f"init_{cfg['n']}_{cfg['d']}_{cfg['k']}.npz")
        if not os.path.exists(init_path):  # shared by covariance types and thread settings
            try:
                prep = run_forked(_prepare, X, cfg["k"], seed, threads, init_path,
                                  timeout=timeout)
                emit_result({"kind": "prepare", "n": cfg["n"], "d": cfg["d"], "result": prep})
            except ChildError as exc:
                for side in spec["sides"]:
                    emit_result({"kind": "fit", "config": cfg["config"], "side": side,
                                 "error": f"initialisation failed: {exc}"})
                continue
        for side in spec["sides"]:
            msg: dict[str, Any] = {"kind": "fit", "config": cfg["config"], "side": side}
            try:
                msg["result"] = run_forked(_fit_side, side, cfg, X, init_path, seed,
                                           spec["budget_s"], timeout=timeout)
            except ChildError as exc:
                msg["error"] = str(exc)[-3000:]
            emit_result(msg)
    if spec.get("reference"):
        msg = {"kind": "reference"}
        X = None
        gc.unfreeze()
        _freeze_heap()
        try:
            msg["result"] = run_forked(_reference, spec["reference"], timeout=timeout)
        except ChildError as exc:
            msg["error"] = str(exc)[-3000:]
        emit_result(msg)


# =============================================================================== parent
def _parse_n(text: str) -> int:
    v = float(text)
    if v < 1 or v != int(v):
        raise argparse.ArgumentTypeError(f"expected a positive integer row count, got {text!r}")
    return int(v)


def _csv(conv):
    def parse(text: str) -> list:
        return [conv(t) for t in text.split(",") if t.strip()]

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench_em.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true",
                   help=f"only n <= {fmt_n(QUICK_MAX_N)} (a few minutes)")
    p.add_argument("--sizes", type=_csv(_parse_n), default=list(DEFAULT_SIZES),
                   help="comma-separated row counts, e.g. 1e4,1e5")
    p.add_argument("--dims", type=_csv(int), default=list(DEFAULT_DIMS),
                   help="comma-separated dimensions")
    p.add_argument("--cov", type=_csv(str), default=list(DEFAULT_COVS),
                   help="comma-separated covariance types (full, diag, spherical)")
    p.add_argument("--k", type=int, default=K, help="components")
    p.add_argument("--iters", type=int, default=20, help="EM iterations (tol=0)")
    p.add_argument("--large-iters", type=int, default=5,
                   help=f"iterations where n >= {fmt_n(LARGE_N)} or n*K*d^2 (full) / n*K*d (diag) "
                        f">= {LARGE_COST:.0e}")
    p.add_argument("--heavy-iters", type=int, default=3,
                   help=f"iterations where n*K*d^2 (full) or n*K*d (diag) >= {HEAVY_COST:.0e}")
    p.add_argument("--repeats", type=int, default=3,
                   help="best of this many timings (1 for n >= 1e6)")
    p.add_argument("--repeat-budget", type=float, default=10.0,
                   help="stop repeating a fit once its timings add up to this many seconds")
    p.add_argument("--threads", type=int, default=1, help="threads for the headline rows")
    p.add_argument("--extra-threads", type=int, default=2,
                   help="second thread count, for the rows with n in --extra-threads-sizes")
    p.add_argument("--extra-threads-sizes", type=_csv(_parse_n), default=[100_000])
    p.add_argument("--no-extra-threads", action="store_true")
    p.add_argument("--no-reference", action="store_true",
                   help="skip the published reference point (n=1e5, d=2, K=6, to convergence)")
    p.add_argument("--reference-density", default="histogram",
                   help="density for the reference row's weights (the paper's: 10-bin histogram)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=900.0, help="per child process, seconds")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / f"{NAME}.json", help="JSON output")
    p.add_argument("--docs", type=Path, default=None,
                   help="markdown file to regenerate (default: docs/benchmarks.md when --out "
                        "is the default results file, otherwise none)")
    p.add_argument("--no-docs", action="store_true", help="do not regenerate any markdown")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p


def _cost(n: int, d: int, k: int, ct: str) -> float:
    return n * k * (d * d if ct == "full" else d)


def plan(args: argparse.Namespace) -> list[dict]:
    """The configurations to run: headline thread count first, then the extra-thread rows."""
    sizes = [n for n in args.sizes if not (args.quick and n > QUICK_MAX_N)]
    cfgs = []
    thread_sets = [args.threads]
    if not args.no_extra_threads and args.extra_threads != args.threads:
        thread_sets.append(args.extra_threads)
    for threads in thread_sets:
        for n in sizes:
            if threads != args.threads and n not in args.extra_threads_sizes:
                continue
            for d in args.dims:
                for ct in args.cov:
                    cost = _cost(n, d, args.k, ct)
                    heavy = cost >= HEAVY_COST
                    large = n >= LARGE_N or cost >= LARGE_COST
                    iters = args.heavy_iters if heavy else args.large_iters if large else args.iters
                    cfgs.append({
                        "config": f"em-{fmt_n(n)}-d{d}-{ct}-t{threads}",
                        "n": n, "d": d, "cov": ct, "k": args.k, "threads": threads,
                        "iters": iters, "reduced_iters": iters != args.iters,
                        "repeats": 1 if n >= 1_000_000 else args.repeats,
                    })
    return cfgs


def _log(msg: str) -> None:
    print(f"[{NAME}] {msg}", file=sys.stderr, flush=True)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def build_row(cfg: dict, results: dict[str, dict], errors: dict[str, str]) -> dict:
    """One table row from the per-fitter results of a configuration."""
    row: dict[str, Any] = dict(cfg)
    t = {s: results[s]["time_s"] if s in results else None for s in SIDES}
    mem = {s: results[s]["peak_mib"] if s in results else None for s in SIDES}
    row.update({
        "ours_2do_s": t["ours_2do"], "ours_2do_expw_s": t["ours_2do_expw"],
        "ours_1do_s": t["ours_1do"], "sklearn_s": t["sklearn"],
        "ratio_2do": _ratio(t["ours_2do"], t["sklearn"]),
        "ratio_2do_expw": _ratio(t["ours_2do_expw"], t["sklearn"]),
        "ratio_1do": _ratio(t["ours_1do"], t["sklearn"]),
        "peak_mib_ours_2do": mem["ours_2do"], "peak_mib_ours_2do_expw": mem["ours_2do_expw"],
        "peak_mib_ours_1do": mem["ours_1do"], "peak_mib_sklearn": mem["sklearn"],
        "data_mib": cfg["n"] * cfg["d"] * 8 / 2**20,
        "n_iter": {s: r["n_iter"] for s, r in results.items()},
        "times_s": {s: r["times_s"] for s, r in results.items()},
        "rss_before_fit_mib": {s: r["rss_before_fit_mib"] for s, r in results.items()},
        "loadavg": {s: r["loadavg"] for s, r in results.items()},
        "threads_seen": {s: r["threads"].get("torch_num_threads") for s, r in results.items()},
    })
    for key, side in (("max_abs_mean_diff", EQUIVALENCE_SIDE),
                      ("max_abs_mean_diff_default", "ours_2do")):
        if side in results and "sklearn" in results:
            a = np.asarray(results[side]["means"])
            b = np.asarray(results["sklearn"]["means"])
            row[key] = float(np.abs(a - b).max())
        else:
            row[key] = None
    row["iters_ok"] = len(results) == len(SIDES) and all(
        all(i == cfg["iters"] for i in r["n_iter"]) for r in results.values())
    row["goal"] = goal_verdict(row)
    if errors:
        row["errors"] = errors
    return row


def goal_verdict(row: dict) -> str | None:
    """PASS when both 2-do ratios (unit and random weights) are <= 1 at n >= 1e5."""
    if row["n"] < GOAL_MIN_N:
        return None
    ratios = [row.get("ratio_2do"), row.get("ratio_2do_expw")]
    if any(r is None for r in ratios):
        return "ERROR"
    return "PASS" if max(ratios) <= GOAL_RATIO else "FAIL"


def summarise_goals(rows: list[dict], threads: int) -> dict:
    judged = [r for r in rows if r["goal"] is not None and r["threads"] == threads]
    worst = max(judged, key=lambda r: max(r["ratio_2do"] or math.inf,
                                          r["ratio_2do_expw"] or math.inf), default=None)
    eq = [r["max_abs_mean_diff"] for r in rows if r.get("max_abs_mean_diff") is not None]
    return {
        "ratio_goal": {
            "statement": "ours (2 do values) / sklearn (1 mixture) <= 1.0 at n >= 1e5",
            "threshold": GOAL_RATIO, "min_n": GOAL_MIN_N, "threads": threads,
            "n_rows": len(judged), "n_pass": sum(r["goal"] == "PASS" for r in judged),
            "passed": bool(judged) and all(r["goal"] == "PASS" for r in judged),
            "worst": None if worst is None else {
                "config": worst["config"], "ratio_2do": worst["ratio_2do"],
                "ratio_2do_expw": worst["ratio_2do_expw"]},
        },
        "equivalence": {
            "statement": "unit-weight fit equals sklearn's (max |means diff| <= 1e-6)",
            "max_abs_mean_diff": max(eq) if eq else None,
            "passed": bool(eq) and max(eq) <= 1e-6,
        },
        "iterations": {"passed": all(r["iters_ok"] for r in rows)},
    }


# =============================================================================== markdown
def render_markdown(result: dict) -> str:
    """The body of this benchmark's section in docs/benchmarks.md."""
    s = result["settings"]
    g = result["goals"]["ratio_goal"]
    eq = result["goals"]["equivalence"]
    parts = []
    verdict = ("PASS" if g["passed"] else "FAIL") if g["n_rows"] else "not judged (no row with n ≥ 1e5)"
    worst = g["worst"]
    worst_txt = "" if worst is None else (
        f"; worst: `{worst['config']}` at {fmt_num(worst['ratio_2do'])} (unit weights), "
        f"{fmt_num(worst['ratio_2do_expw'])} (random weights)")
    parts.append(
        f"**Goal** (fitting two intervention values together costs no more than scikit-learn "
        f"fitting one unweighted mixture, time ratio ≤ {GOAL_RATIO} at n ≥ {fmt_n(GOAL_MIN_N)}, "
        f"headline = {g['threads']} thread): **{verdict}**"
        + (f", {g['n_pass']}/{g['n_rows']} configurations pass{worst_txt}." if g["n_rows"]
           else "."))
    if eq["max_abs_mean_diff"] is not None:
        parts[-1] += (
            f"  \n**Equivalence**: at unit weights our means equal scikit-learn's to "
            f"{eq['max_abs_mean_diff']:.1e} (max over configurations; contract 1e-6): "
            f"**{'PASS' if eq['passed'] else 'FAIL'}**.")
    reps = f"best of {s['repeats']}" if s["repeats"] > 1 else "one timing"
    parts.append("\n".join([
        "Setup:",
        "",
        f"- Data: a random {s['k']}-component Gaussian mixture; K = {s['k']}. The same "
        "initial parameters for every fitter, from one k-means on the data (not timed).",
        f"- `tol=0`, so every fitter runs exactly *iters* EM iterations: {s['iters']}, or, "
        f"marked †, {s['large_iters']} where n ≥ {fmt_n(LARGE_N)} or the per-iteration cost "
        f"n·K·d² (full; n·K·d diag) ≥ {fmt_n(int(LARGE_COST))}, and {s['heavy_iters']} where "
        f"it is ≥ {fmt_n(int(HEAVY_COST))} (keeps `make bench` near 15 min on 2 cores; fixed "
        "per-fit costs weigh more with fewer iterations).",
        f"- CPU time of the fitting process with one thread (the honest figure on a "
        f"shared machine: wall time also counts the other jobs), wall time with two; "
        f"{reps} (one at n ≥ 1e6, fewer once a fitter's timings reach "
        f"{s['repeat_budget']:.0f} s wall), after a warm-up fit on 2000 rows.",
        "- *ours 2-do*: `CausalGaussianMixture(graph=None, n_components=K, tol=0, "
        "max_iter=iters, weights_init=…, means_init=…, precisions_init=…)"
        ".fit(X, weights=np.ones((n, 2)))`: two mixtures at once. *rand-w*: the same with "
        "Exponential(1) weights (the weights must not change the cost). *ours 1-do*: "
        "`weights=np.ones((n, 1))`. *sklearn*: `GaussianMixture(K, tol=0, max_iter=iters, "
        "same inits).fit(X)`: one mixture. Our time is the whole `fit` call (weight "
        "validation, Pareto k̂ of the weights, the diagnostics reference and the tensor "
        "copy included).",
        f"- *ratio* = ours 2-do / sklearn. The goal column needs both the unit-weight and the "
        f"random-weight ratio ≤ {GOAL_RATIO}. *max Δμ*: largest absolute difference between "
        "our unit-weight means and scikit-learn's, from the same fit with "
        "`dtype=\"float64\"` (in no ratio: the default `dtype=\"auto\"` runs the EM in "
        "float32 from 2e6 entries and 16 features); *Δμ default*: the same for the timed "
        "default fit.",
        f"- Peak MiB: {MEMORY_METHOD}",
    ]))
    header = ["config", "n", "d", "cov", "K", "iters", "threads", "ours 2-do (s)",
              "ours 2-do rand-w (s)", "ours 1-do (s)", "sklearn 1 mixture (s)",
              "ratio 2-do/sklearn", "ratio rand-w", "ratio 1-do/sklearn", "peak MiB ours 2-do",
              "peak MiB sklearn", "max Δμ vs sklearn", "Δμ default", "goal ≤ 1.0"]
    align = ["l", "r", "r", "l", "r", "r", "r"] + ["r"] * 11 + ["l"]
    rows = []
    for r in result["rows"]:
        rows.append([
            f"`{r['config']}`", fmt_n(r["n"]), r["d"], r["cov"], r["k"],
            f"{r['iters']}{' †' if r['reduced_iters'] else ''}", r["threads"],
            fmt_s(r["ours_2do_s"]),
            fmt_s(r["ours_2do_expw_s"]), fmt_s(r["ours_1do_s"]), fmt_s(r["sklearn_s"]),
            fmt_num(r["ratio_2do"]), fmt_num(r["ratio_2do_expw"]), fmt_num(r["ratio_1do"]),
            fmt_num(r["peak_mib_ours_2do"], 0), fmt_num(r["peak_mib_sklearn"], 0),
            "—" if r["max_abs_mean_diff"] is None else f"{r['max_abs_mean_diff']:.0e}",
            "—" if r.get("max_abs_mean_diff_default") is None
            else f"{r['max_abs_mean_diff_default']:.0e}",
            r["goal"] or "n/a (n < 1e5)",
        ])
    parts.append(md_table(header, rows, align))
    bad = [r for r in result["rows"] if r.get("errors") or not r["iters_ok"]]
    if bad:
        parts.append("Problems: " + "; ".join(
            f"`{r['config']}`: " + (", ".join(sorted(r.get("errors", {}))) + " failed"
                                    if r.get("errors") else "iteration counts differ")
            for r in bad))
    ref = result.get("reference")
    if ref:
        parts.append(_render_reference(ref))
    parts.append(f"Total wall time of this benchmark: {result['wall_s'] / 60:.1f} min.")
    return "\n\n".join(p for p in parts if p)


def _render_reference(ref: dict) -> str:
    if "error" in ref:
        return f"Reference point: failed ({ref['error'][-300:]})."
    speedup = ref["published_s"] / ref["ours_s"] if ref["ours_s"] > 0 else math.inf
    head = (f"**Reference point** (published implementation: {ref['published_s']:.0f} s for "
            f"{fmt_n(ref['n'])} 2-D rows, K = {ref['k']}, on this kind of machine). Ours: the "
            f"paper's synthetic classification data (`make_classification_2d`, "
            f"{fmt_n(ref['n'])} rows), front-door weights with `density=\"{ref['density']}\"` "
            f"(the reference's own choice; {fmt_s(ref['weights_s'])} s, not in the fit time), "
            f"both do values {ref['do_values']} fitted at once from our weighted k-means "
            f"initialisation (included) to convergence at the default `tol={ref['tol']}`, "
            f"{ref['threads']['requested']} thread. **{speedup:.0f}× faster** than published.")
    table = md_table(
        ["fitter", "wall time (s)", "iterations", "converged", "peak MiB"],
        [
            ["published implementation", f"{ref['published_s']:.0f}", "—", "—", "—"],
            ["ours, 2 do values, K = 6, full", fmt_s(ref["ours_s"]),
             " / ".join(str(i) for i in ref["ours_n_iter"]),
             " / ".join(str(c) for c in ref["ours_converged"]), fmt_num(ref["peak_mib_ours"], 0)],
            ["sklearn, 1 unweighted mixture (k-means init)", fmt_s(ref["sklearn_s"]),
             str(ref["sklearn_n_iter"]), str(ref["sklearn_converged"]),
             fmt_num(ref.get("peak_mib_sklearn"), 0)],
        ],
        ["l", "r", "r", "l", "r"],
    )
    return head + "\n\n" + table


# =============================================================================== main
def _default_command(argv: list[str]) -> str:
    return "python benchmarks/bench_em.py" + ("" if not argv else " " + shlex.join(argv))


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns (and writes to ``--out``) the result dictionary."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.worker:
        _worker(json.loads(args.worker))
        return {}
    t_start = time.perf_counter()
    shown = [a for a in argv if a != "--no-docs"]
    if "--out" in shown:  # a custom output path is not part of how to regenerate the docs
        i = shown.index("--out")
        del shown[i : i + 2]
    result: dict[str, Any] = {
        "name": NAME, "title": TITLE, "command": _default_command(shown), "argv": argv,
        "machine": machine_info(), "memory_method": MEMORY_METHOD,
        "settings": {"k": args.k, "iters": args.iters, "large_iters": args.large_iters,
                     "heavy_iters": args.heavy_iters, "large_n": LARGE_N,
                     "large_cost": LARGE_COST, "heavy_cost": HEAVY_COST, "repeats": args.repeats,
                     "repeat_budget": args.repeat_budget, "threads": args.threads,
                     "extra_threads": None if args.no_extra_threads else args.extra_threads,
                     "seed": args.seed, "reg_covar": REG_COVAR, "goal_ratio": GOAL_RATIO,
                     "goal_min_n": GOAL_MIN_N},
        "rows": [], "reference": None,
    }
    cfgs = plan(args)
    by_name = {c["config"]: c for c in cfgs}
    pending: dict[str, dict[str, dict]] = {c["config"]: {} for c in cfgs}
    failed: dict[str, dict[str, str]] = {c["config"]: {} for c in cfgs}
    rows: dict[str, dict] = {}

    def on_result(msg: dict) -> None:
        kind = msg["kind"]
        if kind == "info":
            result["machine"]["child_threads"] = msg["result"]
        elif kind == "prepare":
            r = msg["result"]
            _log(f"data n={msg['n']} d={msg['d']}: {r['data_mib']:.0f} MiB; k-means "
                 f"initialisation {r['kmeans_s']:.1f} s (not timed)")
        elif kind == "reference":
            result["reference"] = msg.get("result") or {"error": msg.get("error")}
            ref = result["reference"]
            _log("reference point: " + (f"ours {fmt_s(ref['ours_s'])} s vs published "
                                        f"{PUBLISHED_REFERENCE_S:.0f} s" if "ours_s" in ref
                                        else f"FAILED {ref['error'][-300:]}"))
        elif kind == "fit":
            name, side = msg["config"], msg["side"]
            if "error" in msg:
                failed[name][side] = msg["error"]
                _log(f"{name} {side} FAILED: {msg['error'][-300:]}")
            else:
                pending[name][side] = msg["result"]
            if len(pending[name]) + len(failed[name]) == len(SIDES):
                rows[name] = row = build_row(by_name[name], pending[name], failed[name])
                result["rows"] = [rows[c["config"]] for c in cfgs if c["config"] in rows]
                _log(f"{len(rows)}/{len(cfgs)} {name}: ours 2-do {fmt_s(row['ours_2do_s'])} s, "
                     f"rand-w {fmt_s(row['ours_2do_expw_s'])} s, 1-do "
                     f"{fmt_s(row['ours_1do_s'])} s, sklearn {fmt_s(row['sklearn_s'])} s, "
                     f"ratio {fmt_num(row['ratio_2do'])}, goal {row['goal'] or 'n/a'}")
                write_json(args.out, result)  # partial results survive an interruption

    thread_sets = list(dict.fromkeys(c["threads"] for c in cfgs)) or [args.threads]
    if args.threads not in thread_sets:
        thread_sets.insert(0, args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_em_") as init_dir:
        for threads in thread_sets:
            headline = threads == args.threads
            spec = {
                "threads": threads, "seed": args.seed, "timeout": args.timeout,
                "budget_s": args.repeat_budget, "sides": list(SIDES), "init_dir": init_dir,
                "configs": [c for c in cfgs if c["threads"] == threads], "info": headline,
                "reference": None if args.no_reference or not headline else {
                    "n": 100_000, "k": 6, "seed": args.seed, "threads": threads,
                    "density": args.reference_density, "repeats": args.repeats,
                    "budget_s": args.repeat_budget},
            }
            rc = stream_child([__file__, "--worker", json.dumps(spec)], thread_env(threads),
                              on_result)
            if rc != 0:
                _log(f"worker for {threads} thread(s) exited with status {rc}")
    for c in cfgs:  # configurations whose worker died before reporting every fitter
        if c["config"] not in rows:
            missing = {s: "worker exited before reporting" for s in SIDES
                       if s not in pending[c["config"]] and s not in failed[c["config"]]}
            rows[c["config"]] = build_row(c, pending[c["config"]],
                                          {**failed[c["config"]], **missing})
    result["rows"] = [rows[c["config"]] for c in cfgs]
    if result["reference"] is None and not args.no_reference:
        result["reference"] = {"error": "the worker exited before the reference point"}
    result["goals"] = summarise_goals(result["rows"], args.threads)
    result["wall_s"] = time.perf_counter() - t_start
    result["markdown"] = render_markdown(result)
    write_json(args.out, result)
    docs = args.docs
    if docs is None and Path(args.out).resolve() == (RESULTS_DIR / f"{NAME}.json").resolve():
        docs = DOCS_FILE
    if docs is not None and not args.no_docs:
        render_docs(Path(docs), Path(args.out).parent)
        _log(f"wrote {args.out} and {docs}")
    else:
        _log(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
