"""SVI (the Pyro path) against weighted EM on the same CW-GMM, and minibatch SVI's memory.

What is measured, on the features of the paper's synthetic 2-D classification data
(``make_classification_2d``) with two columns of i.i.d. Exponential(1) weights (two
intervention values; a well-posed weighted fit, see ``_prepare``), K = 6 full-covariance
components:

* **EM, reference**: ``CausalGaussianMixture(None, K, weights_init=…, means_init=…,
  precisions_init=…, tol=1e-6, max_iter=2000).fit(X, weights=W)``: the production fitter
  run to a tight tolerance gives the reference objective ``Σ_n w̃_n log q(x_n)`` (mean over
  do values); **EM, default** the same at ``tol=1e-3``;
* **SVI from init**: ``inference="svi", svi_init="init_params"`` from the *same* initial
  parameters: MAP under flat priors by SVI (AutoDelta), full batch: how long SVI takes to
  find EM's optimum by itself;
* **SVI from EM** (the default ``svi_init="em"``): EM (default tol) then SVI with default
  settings: what the Pyro cross-check costs in practice; its wall and CPU time against the
  default EM fit and the tol=1e-6 EM fit of the same run, and its objective's gap to the
  reference (``svi_cost``, the scale issue's target: 1e-6 relative within 10× the default
  EM fit);
* **minibatch SVI**: ``subsample_size=1000`` from the same initial parameters;
* at n = 1e6, minibatch SVI for its **peak memory** (with EM's for reference). That child
  calls :func:`causal_mixtures.svi.fit_map` directly, so the measured block is the SVI fit
  alone (data and initial parameters exist before it).

Every (n, fitter) runs in a fresh child process with one BLAS/torch thread; wall times are
``time.perf_counter`` seconds of the whole ``fit`` (or ``fit_map``). The initial parameters
come from a weighted k-means++ seeding on a 20 000-row subsample, shared by all fitters.

Run ``python benchmarks/bench_svi.py --help``; ``make bench`` runs it through ``run_all.py``.
``main(argv)`` returns the result dictionary; its ``"markdown"`` entry (also
:func:`render_markdown`) is this benchmark's section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    DOCS_FILE,
    RESULT_MARKER,
    RESULTS_DIR,
    ChildError,
    PeakMemory,
    emit_result,
    fmt_n,
    fmt_s,
    limit_threads,
    machine_info,
    md_table,
    thread_env,
    write_json,
)

NAME = "bench_svi"
TITLE = "SVI (Pyro) vs weighted EM on the same CW-GMM"

K = 6
DEFAULT_SIZES = (10_000, 100_000)
MEMORY_N = 1_000_000
QUICK_SIZES = (10_000,)
QUICK_MEMORY_N = 100_000
SUBSAMPLE = 1000
SIDES = ("em", "em_default", "svi_init", "svi_em", "svi_minibatch")
SIDE_LABELS = {
    "em": "EM, tol=1e-6 (reference)",
    "em_default": "EM, default tol=1e-3",
    "svi_init": "SVI-MAP from init, full batch",
    "svi_em": "SVI-MAP from EM (default svi_init)",
    "svi_minibatch": f"SVI-MAP from init, minibatch {SUBSAMPLE} rows/step",
    "svi_minibatch_only": f"SVI-MAP from init, minibatch {SUBSAMPLE} rows/step (fit_map only)",
    "em_only": "EM, default tol=1e-3",
}
MEMORY_TEXT = (
    "every (n, fitter) runs in a fresh child process; it loads the data and the initial "
    "parameters, resets the kernel's peak-RSS counter (`/proc/self/clear_refs`) and reads its "
    "RSS, runs the fit, then reads the peak RSS (`VmHWM`). Reported: peak minus pre-fit RSS, "
    "the memory the fit needs on top of the data (torch and NumPy allocations alike)."
)


# =============================================================================== children


def _run_child(argv: list[str], env: dict[str, str], timeout: float | None) -> dict:
    """Run ``python argv...`` in a fresh process; return the JSON it printed after the marker
    (a fresh process per fit, so that each fit's peak memory is its own)."""
    proc = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    tail = (proc.stderr or proc.stdout)[-3000:]
    raise ChildError(f"benchmark child exited with {proc.returncode} and no result:\n{tail}")


# =============================================================================== worker
def _prepare(spec: dict) -> dict:
    """Data, causal weights and a shared initialisation, saved to ``spec['path']``."""
    import causal_mixtures as cm
    from causal_mixtures.mixture.em import params_from_responsibilities

    t0 = time.perf_counter()
    data = cm.datasets.make_classification_2d(spec["n"], n_test=10, random_state=spec["seed"])
    rng = np.random.default_rng(spec["seed"])
    # i.i.d. Exponential(1) weights, two columns: a well-posed weighted fit. (The paper's
    # front-door weights on these data have Pareto k̂ ≈ 0.9 with a Gaussian p(z | y), ESS
    # ~1.5 % of n, and K = 6 fits then chase near-degenerate components; a KDE density
    # tames them but costs minutes at 1e5 rows.)
    cw = cm.CausalWeights.from_array(rng.exponential(1.0, (spec["n"], 2)), [1, 2])
    weights_s = time.perf_counter() - t0
    import torch
    from sklearn.cluster import kmeans_plusplus

    sub = rng.choice(spec["n"], size=min(spec["n"], 20_000), replace=False)
    Xs = data.X[sub]
    Ws = cw.values[sub].T  # (n_do, m)
    labels = []
    for j in range(Ws.shape[0]):
        centres, _ = kmeans_plusplus(Xs, K, sample_weight=Ws[j], random_state=spec["seed"] + j)
        labels.append(((Xs[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1))
    resp = torch.nn.functional.one_hot(torch.tensor(np.stack(labels)), K).double()
    Wt = torch.tensor(Ws / Ws.sum(1, keepdims=True))
    init = params_from_responsibilities(torch.tensor(Xs), Wt, resp, 1e-6, "full")
    prec = np.linalg.inv(init.covariances.numpy())
    np.savez(spec["path"], X=data.X, W=cw.values, weights=init.weights.numpy(),
             means=init.means.numpy(), precisions=prec, do_values=cw.do_values,
             ess=cw.ess)
    return {"weights_s": weights_s, "ess": cw.ess.tolist()}


def _fit(spec: dict) -> dict:
    threads = limit_threads(spec["threads"])
    import torch

    import causal_mixtures as cm
    from causal_mixtures.mixture import svi
    from causal_mixtures.mixture.params import Mixture

    z = np.load(spec["path"])
    X, W = z["X"], z["W"]
    side = spec["side"]
    common = dict(weights_init=z["weights"], means_init=z["means"], precisions_init=z["precisions"],
                  random_state=spec["seed"])
    res: dict[str, Any] = {"side": side, "n": len(X), "threads": threads}
    if side == "svi_minibatch_only":
        Xt = torch.tensor(X)
        Wt = torch.tensor(W.T.copy())
        cov = torch.tensor(np.linalg.inv(z["precisions"]))
        init = Mixture(torch.tensor(z["weights"]), torch.tensor(z["means"]), cov, "full")
        with PeakMemory() as pm:
            t0, c0 = time.perf_counter(), time.process_time()
            out = svi.fit_map(Xt, Wt, init, subsample_size=SUBSAMPLE, n_steps=spec["n_steps"],
                              learning_rate=spec["lr"], random_state=spec["seed"])
            res["time_s"] = time.perf_counter() - t0
            res["cpu_s"] = time.process_time() - c0
        Wn = Wt / Wt.sum(-1, keepdim=True)
        ll = out.mixture.log_prob(Xt)
        res["objective"] = (Wn * ll).sum(-1).tolist()
        res["n_iter"] = out.n_iter.tolist()
        res["converged"] = out.converged.tolist()
    else:
        if side in ("em", "em_only", "em_default"):
            est = cm.CausalGaussianMixture(
                None, K, tol=1e-6 if side == "em" else 1e-3, max_iter=2000, **common
            )
        elif side == "svi_init":
            est = cm.CausalGaussianMixture(
                None, K, inference="svi", svi_init="init_params", n_steps=spec["n_steps"],
                learning_rate=spec["lr"], tol=spec["svi_tol"], **common,
            )
        elif side == "svi_em":
            est = cm.CausalGaussianMixture(None, K, inference="svi", **common)
        else:
            est = cm.CausalGaussianMixture(
                None, K, inference="svi", svi_init="init_params", subsample_size=SUBSAMPLE,
                n_steps=spec["n_steps"], learning_rate=spec["lr"], **common,
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with PeakMemory() as pm:
                t0, c0 = time.perf_counter(), time.process_time()
                est.fit(X, weights=W)
                res["time_s"] = time.perf_counter() - t0
                res["cpu_s"] = time.process_time() - c0
        res["warnings"] = sorted({str(w.message)[:160] for w in caught})
        res["objective"] = est.lower_bound_.tolist()
        res["n_iter"] = est.n_iter_.tolist()
        res["converged"] = est.converged_.tolist()
    res["peak_mib"] = pm.peak_mib
    res["memory_method"] = pm.method
    res["data_mib"] = (X.nbytes + W.nbytes) / 2**20
    return res


def _worker(payload: str) -> None:
    spec = json.loads(payload)
    if spec["job"] == "prepare":
        emit_result(_prepare(spec))
    else:
        emit_result(_fit(spec))


# =============================================================================== driver
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true",
                   help=f"n = {fmt_n(QUICK_SIZES[0])} only, memory row at {fmt_n(QUICK_MEMORY_N)}")
    p.add_argument("--sizes", type=lambda s: [int(float(x)) for x in s.split(",")],
                   default=list(DEFAULT_SIZES), help="rows for the time/objective comparison")
    p.add_argument("--memory-n", type=lambda s: int(float(s)), default=MEMORY_N,
                   help="rows for the minibatch peak-memory row")
    p.add_argument("--n-steps", type=int, default=3000, help="SVI steps (from init, minibatch)")
    p.add_argument("--lr", type=float, default=0.05, help="SVI learning rate from init")
    p.add_argument("--svi-tol", type=float, default=1e-5,
                   help="SVI plateau tolerance for the full-batch run from init")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600.0, help="per child process, seconds")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / f"{NAME}.json", help="JSON output")
    p.add_argument("--docs", type=Path, default=None,
                   help="markdown file to regenerate (default: docs/benchmarks.md when --out "
                        "is the default results file, otherwise none)")
    p.add_argument("--no-docs", action="store_true", help="do not regenerate any markdown")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p


def _log(msg: str) -> None:
    print(f"[{NAME}] {msg}", file=sys.stderr, flush=True)


def _mean(x: list[float] | None) -> float | None:
    return None if x is None else float(np.mean(x))


def _row(result: dict, n: int, side: str) -> dict | None:
    return next((r for r in result["rows"] if r["n"] == n and r["side"] == side
                 and "time_s" in r), None)


def svi_cost(result: dict, n: int) -> dict | None:
    """The target of the scale issue at ``n``: SVI-MAP from EM (default settings), whole fit,
    against the default EM fit and the tol=1e-6 EM fit of the same run, in wall and CPU
    seconds, and its objective's gap to the tol=1e-6 EM's (relative)."""
    svi_em, em_default, em = (_row(result, n, x) for x in ("svi_em", "em_default", "em"))
    if svi_em is None or em_default is None or em is None:
        return None
    out = {"n": n, "gap": (_mean(em["objective"]) - _mean(svi_em["objective"]))
           / abs(_mean(em["objective"]))}
    for clock in ("time_s", "cpu_s"):
        if all(clock in r for r in (svi_em, em_default, em)):
            out[clock] = {"svi_em": svi_em[clock], "em_default": em_default[clock],
                          "em": em[clock], "vs_default": svi_em[clock] / em_default[clock],
                          "vs_reference": svi_em[clock] / em[clock]}
    return out


def _target_lines(result: dict) -> list[str]:
    lines = []
    for n in result["settings"]["sizes"]:
        c = svi_cost(result, n)
        if c is None:
            continue
        parts = []
        for clock, label in (("time_s", "wall"), ("cpu_s", "CPU")):
            t = c.get(clock)
            if t is not None:
                parts.append(
                    f"{label}: {t['svi_em']:.2f} s = **{t['vs_default']:.1f}× the default EM "
                    f"fit** ({t['em_default']:.2f} s) and {t['vs_reference']:.2f}× the tol=1e-6 "
                    f"EM fit ({t['em']:.2f} s)"
                )
        met = c["gap"] <= 1e-6 and all(
            c[k]["vs_default"] <= 10 for k in ("time_s", "cpu_s") if k in c
        )
        lines.append(
            f"**SVI cost at n = {fmt_n(n)}** (the scale issue's target: SVI-MAP from EM, "
            "default settings, reaches the tol=1e-6 EM objective to 1e-6 relative in at most "
            f"10× the default EM fit's time): gap {c['gap']:.1e}; " + "; ".join(parts)
            + f". Target {'met' if met else 'not met'}."
        )
    load = result.get("load_average_end")
    if load is not None:
        lines.append(
            "Load average (1, 5, 15 min) at the start "
            f"{result['machine'].get('load_average')}, at the end {load}."
        )
    return lines


def render_markdown(result: dict) -> str:
    """The body of this benchmark's section in docs/benchmarks.md."""
    s = result["settings"]
    parts = [
        "**Question**: what does fitting the CW-GMM through its Pyro model by SVI cost, "
        "compared with weighted EM on the same model, and does it reach the same optimum? "
        f"Data: the features of `make_classification_2d(n)` with two columns of i.i.d. "
        f"Exponential(1) weights (2 do values), K = {s['k']} full covariances; all fitters "
        "start from the same weighted k-means++ initialisation. Full-batch SVI takes "
        "trust-region Newton steps on the Pyro ELBO (`fit_map(optimizer='auto')`: gradient "
        "from the traces on all rows, curvature from the ELBO's Hessian on 5000 rows with SR1 "
        "updates; stops when the Newton decrement is below min(tol, 1e-6 · |objective|); "
        f"from init: at most {s['n_steps']} steps, tol {s['svi_tol']}); minibatch runs are "
        f"Adam, learning rate {s['lr']} (decayed to a tenth), {s['subsample']} rows per step, "
        f"all {s['n_steps']} steps; *from EM* is the estimator's default (EM at its default "
        "tol, then SVI with default settings). *steps / iters*: ELBO evaluations (SVI) or EM "
        "iterations per do value. *objective* = Σ w̃ log q (mean over do values) at the final "
        "parameters, on all rows; *gap* = (EM reference − fitter) / |EM reference| (negative: "
        "better than the reference). *CPU (s)*: the child's `time.process_time` over the fit "
        "(one thread; the honest figure when the machine is shared). Peak MiB: "
        + result["memory_method"],
    ]
    header = ["n", "fitter", "wall (s)", "CPU (s)", "× EM", "steps / iters", "converged",
              "objective", "gap vs EM", "peak MiB"]
    rows = []
    for r in result["rows"]:
        em = next((x for x in result["rows"] if x["n"] == r["n"] and x["side"] == "em"), None)
        em = em or next(
            (x for x in result["rows"] if x["n"] == r["n"] and x["side"] == "em_only"), None
        )
        obj = _mean(r.get("objective"))
        ref = _mean(em.get("objective")) if em else None
        gap = None if obj is None or ref is None else (ref - obj) / abs(ref)
        ratio = (None if em is None or r.get("time_s") is None or em.get("time_s") is None
                 else r["time_s"] / em["time_s"])
        rows.append([
            fmt_n(r["n"]), SIDE_LABELS.get(r["side"], r["side"]), fmt_s(r.get("time_s")),
            fmt_s(r.get("cpu_s")),
            "—" if ratio is None else f"{ratio:.0f}×" if ratio >= 10
            else f"{ratio:.1f}×" if ratio >= 0.1 else f"{ratio:.2f}×",
            " / ".join(str(i) for i in r.get("n_iter", [])),
            " / ".join(str(c) for c in r.get("converged", [])),
            "—" if obj is None else f"{obj:.5f}",
            "—" if gap is None else f"{gap:.1e}",
            "—" if r.get("peak_mib") is None else f"{r['peak_mib']:.0f}",
        ])
    parts.append(md_table(header, rows, ["r", "l", "r", "r", "r", "r", "l", "r", "r", "r"]))
    parts.extend(_target_lines(result))
    errors = [r for r in result["rows"] if r.get("error")]
    if errors:
        parts.append("Failures: " + "; ".join(f"{fmt_n(r['n'])} {r['side']}" for r in errors))
    mem = [r for r in result["rows"] if r["side"] == "svi_minibatch_only" and "peak_mib" in r]
    if mem:
        r = mem[0]
        parts.append(
            f"Minibatch SVI at n = {fmt_n(r['n'])}: the data (X and the weights) take "
            f"{r['data_mib']:.0f} MiB; the fit needs {r['peak_mib']:.0f} MiB on top (standardised "
            "copies of X and the weights plus the final full-data objective, computed in "
            "chunks); each step touches only its minibatch."
        )
    parts.append(f"Total wall time of this benchmark: {result['wall_s'] / 60:.1f} min.")
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns (and writes to ``--out``) the result dictionary, whose
    ``"markdown"`` entry is this benchmark's section of docs/benchmarks.md."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.worker:
        _worker(args.worker)
        return {}
    t_start = time.perf_counter()
    sizes = list(QUICK_SIZES) if args.quick else args.sizes
    memory_n = min(args.memory_n, QUICK_MEMORY_N) if args.quick else args.memory_n
    shown = [a for a in argv if a != "--no-docs"]
    if "--out" in shown:
        i = shown.index("--out")
        del shown[i : i + 2]
    result: dict[str, Any] = {
        "name": NAME, "title": TITLE,
        "command": "python benchmarks/bench_svi.py" + ("" if not shown else " " + shlex.join(shown)),
        "argv": argv, "machine": machine_info(), "memory_method": MEMORY_TEXT,
        "settings": {"k": K, "sizes": sizes, "memory_n": memory_n, "n_steps": args.n_steps,
                     "lr": args.lr, "svi_tol": args.svi_tol, "subsample": SUBSAMPLE,
                     "threads": args.threads, "seed": args.seed},
        "rows": [],
    }
    env = thread_env(args.threads)
    jobs = [(n, side) for n in sizes for side in SIDES]
    jobs += [(memory_n, "svi_minibatch_only"), (memory_n, "em_only")]
    prepared: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench_svi_") as tmp:
        for n, side in jobs:
            if n not in prepared:
                path = os.path.join(tmp, f"data_{n}.npz")
                spec = {"job": "prepare", "n": n, "seed": args.seed, "path": path}
                prep = _run_child([__file__, "--worker", json.dumps(spec)], env, args.timeout)
                prepared[n] = path
                _log(f"n={fmt_n(n)}: weights {prep['weights_s']:.1f} s, ESS {prep['ess']}")
            spec = {"job": "fit", "side": side, "path": prepared[n], "seed": args.seed,
                    "threads": args.threads, "n_steps": args.n_steps, "lr": args.lr,
                    "svi_tol": args.svi_tol}
            try:
                row = _run_child([__file__, "--worker", json.dumps(spec)], env, args.timeout)
            except (ChildError, OSError) as exc:
                row = {"side": side, "n": n, "error": str(exc)[-1500:]}
                _log(f"n={fmt_n(n)} {side} FAILED: {str(exc)[-300:]}")
            else:
                _log(f"n={fmt_n(n)} {side}: {fmt_s(row['time_s'])} s, objective "
                     f"{_mean(row['objective']):.5f}, peak {row['peak_mib']:.0f} MiB")
            result["rows"].append(row)
            write_json(args.out, result)  # partial results survive an interruption
    result["wall_s"] = time.perf_counter() - t_start
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["svi_cost"] = [c for c in (svi_cost(result, n) for n in sizes) if c is not None]
    result["markdown"] = render_markdown(result)
    write_json(args.out, result)
    docs = args.docs
    if docs is None and Path(args.out).resolve() == (RESULTS_DIR / f"{NAME}.json").resolve():
        docs = DOCS_FILE
    if docs is not None and not args.no_docs:
        from _common import render_docs

        render_docs(Path(docs))
        _log(f"wrote {args.out} and {docs}")
    else:
        _log(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
