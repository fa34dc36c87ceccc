"""How often the weighted rows' standard errors cover the truth.

``mean_uncertainty`` reads delta-method standard errors of the weighted interventional
means and sds (``WeightedReference.mean_se`` / ``sd_se``: ``sqrt(Σ w̃² (x − μ)²) / σ``, the
weights held fixed) and turns them into a 95 % bound on the worst error
(:func:`causal_mixtures.diagnostics.data_checks.uncertainty_bound`). This benchmark asks how
often that bound, and each standard error, actually covers the truth, on the calibration
suite's problems (``gate_problems.FAMILIES``), where the truth is known by simulation.

For every family whose front-door weights the library computes without refusing, at every
``n`` of its weighting fits (at most 20 000), ``--reps`` fresh data sets are drawn; the
default weights (``causal_weights``, ``density="auto"``) and the weighted reference are
computed exactly as a fit computes them; each is compared with ``--truth-draws`` draws of the
SCM under every ``do`` value. Reported per family:

* ``z``: the error of a feature's weighted mean (sd) over its standard error; ``rms z`` is 1
  and ``cover`` (``|z| ≤ 1.96``) 95 % when the standard errors are right;
* ``bound covers``: the share of data sets whose worst error over features and do values
  (the maximum up to 8 features, the root mean square above, as the gate's suite measures
  it) is within ``uncertainty_bound``, nominally at least 95 %;
* ``oracle rms z``: the same ``z`` with the *true* weights ``p(z | v) / p(z | y_n)`` (families
  with a linear Gaussian mechanism), which tells the weights' tails apart from the error of
  the estimated density.

Tuning and held-out families (``Family.held_out``) are pooled separately, each statistic
averaged over the (family, n) rows whose design has healthy positivity. Run ``python
benchmarks/bench_coverage.py [--quick] [--reps R]``; ``make bench`` runs it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from _common import RESULTS_DIR, limit_threads, machine_info, md_table, write_outputs  # noqa: E402
from bench_gate import _name_seed  # noqa: E402
from bench_paper import command_line  # noqa: E402
from gate_problems import FAMILIES, FrontDoorSCM  # noqa: E402

NAME = "bench_coverage"
TITLE = "Coverage of the weighted rows' standard errors"
N_MAX = 20000
Z95 = 1.959963984540054


def _log(msg: str) -> None:
    print(f"[{NAME}] {msg}", file=sys.stderr, flush=True)


def _oracle_weights(problem: Any, d: dict, do_values: np.ndarray) -> np.ndarray | None:
    """The true front-door weights of a linear Gaussian mechanism, else None."""
    if not isinstance(problem, FrontDoorSCM) or problem.mechanism != "linear":
        return None
    z = np.asarray(d["z"], float).reshape(-1)
    y = np.asarray(d["y"], float)

    def logp(v: Any) -> np.ndarray:
        return -0.5 * ((z - problem.z_sep * np.asarray(v, float)) / problem.z_sd) ** 2

    return np.exp(np.stack([logp(v) for v in do_values], 1) - logp(y)[:, None])


def _worst(err_mean: np.ndarray, err_sd: np.ndarray, high_dim: int) -> float:
    """The worst error over do values, by the suite's aggregation over features."""
    if err_mean.shape[1] > high_dim:  # the root mean square of each, as the suite's errors
        return float(np.maximum(np.sqrt((err_mean**2).mean(1)),
                                np.sqrt((err_sd**2).mean(1))).max())
    return float(np.maximum(np.abs(err_mean), np.abs(err_sd)).max())


def run_family(fam: Any, *, reps: int, truth_draws: int, quick: bool) -> list[dict]:
    import causal_mixtures as cm
    from causal_mixtures.diagnostics.data_checks import HIGH_DIM, uncertainty_bound
    from causal_mixtures.diagnostics.reference import weighted_reference

    problem = fam.problem
    do_values = np.asarray(problem.do_values)
    ns = sorted({s.n for s in fam.fits if s.strategy in ("weighting", "psis") and s.n <= N_MAX})
    if quick:
        ns = ns[:1]
    rng = np.random.default_rng(_name_seed(fam.name))
    truth = []
    for v in do_values:
        t = np.asarray(problem.sample_do(truth_draws, v, rng), float).reshape(truth_draws, -1)
        truth.append((t.mean(0), t.std(0)))
    out = []
    for n in ns:
        zm: list[float] = []
        zs: list[float] = []
        zo: list[float] = []
        covered, refused, khat, ess = [], 0, [], []
        for r in range(reps):
            d = problem.sample(n, np.random.default_rng(10_000 + r))
            X = np.asarray(d["X"], float).reshape(n, -1)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cw = cm.causal_weights("front_door", X, d["y"], mechanism=d["z"],
                                           do=do_values)
            except ValueError:  # PositivityError and the like: the fit would refuse
                refused += 1
                continue
            ref = weighted_reference(X, cw.values, do_values)
            em = np.stack([(ref.mean[j] - truth[j][0]) / truth[j][1] for j in range(len(do_values))])
            es = np.stack([ref.sd[j] / truth[j][1] - 1.0 for j in range(len(do_values))])
            keep = np.stack([t[1] > 1e-6 for t in truth])
            zm += (em / ref.mean_se)[keep].tolist()
            zs += (es / ref.sd_se)[keep].tolist()
            covered.append(_worst(np.where(keep, em, 0), np.where(keep, es, 0), HIGH_DIM)
                           <= float(uncertainty_bound(ref).max()))
            khat += np.asarray(cw.khat, float).tolist()
            ess += np.asarray(cw.ess, float).tolist()
            wo = _oracle_weights(problem, d, do_values)
            if wo is not None:
                oref = weighted_reference(X, wo, do_values)
                eo = np.stack([(oref.mean[j] - truth[j][0]) / truth[j][1]
                               for j in range(len(do_values))])
                zo += (eo / oref.mean_se)[keep].tolist()
        row = {"family": fam.name, "held_out": bool(fam.held_out), "n": n, "reps": reps,
               "positivity": fam.design.get("positivity", ""),
               "refused": refused, "z_mean": zm, "z_sd": zs, "z_oracle": zo,
               "covered": [bool(c) for c in covered],
               "khat_median": float(np.median(khat)) if khat else math.nan,
               "ess_median": float(np.median(ess)) if ess else math.nan}
        out.append(row)
        _log(f"{fam.name} n={n}: {summary(row)}")
    return out


def summary(row: dict) -> dict[str, float]:
    """Coverage statistics of one row (or of pooled rows' lists)."""
    def stats(z: list[float]) -> tuple[float, float, float]:
        if not z:
            return math.nan, math.nan, math.nan
        a = np.abs(np.asarray(z))
        return float(np.sqrt((a**2).mean())), float(np.quantile(a, 0.95)), float((a <= Z95).mean())

    rm, qm, cm_ = stats(row["z_mean"])
    rs, qs, cs = stats(row["z_sd"])
    ro, _, _ = stats(row["z_oracle"])
    cov = row["covered"]
    return {"rms_z_mean": rm, "q95_z_mean": qm, "cover_mean": cm_, "rms_z_sd": rs,
            "q95_z_sd": qs, "cover_sd": cs, "rms_z_oracle": ro,
            "bound_covers": float(np.mean(cov)) if cov else math.nan, "datasets": len(cov)}


def pooled(rows: list[dict], held_out: bool) -> dict[str, float]:
    """Each statistic averaged over the (family, n) rows of healthy positivity (every row
    weighs the same, whatever its number of features), data sets summed."""
    sel = [r["summary"] for r in rows
           if r["held_out"] == held_out and r["positivity"] == "healthy"]
    def mean(values: list[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return float(np.mean(finite)) if finite else math.nan

    out = {k: mean([s[k] for s in sel]) for k in sel[0] if k != "datasets"} if sel else {}
    out["datasets"] = int(sum(s["datasets"] for s in sel))
    out["rows"] = len(sel)
    return out


def _f(x: float, digits: int = 2) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _pct(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.0f} %"


def render_markdown(result: dict) -> str:
    rows = result["rows"]
    head = ["family", "held out", "positivity (design)", "n", "data sets", "median k̂", "median ESS", "rms z (mean)",
            "95th pct |z| (mean)", "±1.96 se covers (mean)", "rms z (sd)",
            "±1.96 se covers (sd)", "oracle weights: rms z (mean)", "bound covers the worst error"]
    body = []
    for r in rows:
        s = r["summary"]
        body.append([r["family"], "yes" if r["held_out"] else "", r["positivity"], r["n"],
                     s["datasets"],
                     _f(r["khat_median"]), f"{r['ess_median']:.0f}", _f(s["rms_z_mean"]),
                     _f(s["q95_z_mean"]), _pct(s["cover_mean"]), _f(s["rms_z_sd"]),
                     _pct(s["cover_sd"]), _f(s["rms_z_oracle"]), _pct(s["bound_covers"])])
    for label, key in (("**tuning families, healthy positivity**", "tuning"),
                       ("**held-out families, healthy positivity**", "held_out")):
        s = result["pooled"][key]
        body.append([label, "", "", "", s["datasets"], "", "", _f(s["rms_z_mean"]),
                     _f(s["q95_z_mean"]), _pct(s["cover_mean"]), _f(s["rms_z_sd"]),
                     _pct(s["cover_sd"]), _f(s["rms_z_oracle"]), _pct(s["bound_covers"])])
    t = result["pooled"]["tuning"]
    lines = [
        f"Regenerate: `make bench` (all benchmarks), or this section alone: "
        f"`{result['command']}`.",
        "",
        "**Question**: do the delta-method standard errors behind `mean_uncertainty` "
        "(weights held fixed) cover the truth? Default weights (`density=\"auto\"`) on the "
        "calibration suite's problems, "
        f"{result['settings']['reps']} fresh data sets per (family, n), truth from "
        f"{result['settings']['truth_draws']} draws of the SCM under each do value; *z* = a "
        "feature's error over its standard error (rms 1 and 95 % within ±1.96 when they "
        "are right); *bound covers*: share of data sets whose worst error over features and "
        "do values is within the 95 % `uncertainty_bound`. Families whose weights refuse "
        "(positivity) are left out.",
        "",
        "Pooled rows: each statistic averaged over the (family, n) rows whose design has "
        "healthy positivity.",
        "",
        f"**Answer**: no. On the tuning families the errors of the weighted means are "
        f"{_f(t['rms_z_mean'], 1)}x their standard errors (rms), ±1.96 se covers "
        f"{_pct(t['cover_mean'])} of them, and the bound covers the worst error of "
        f"{_pct(t['bound_covers'])} of the data sets instead of 95 %. True weights do not "
        "fix it (oracle column): the weights' lognormal-like tails make the sample variance "
        "of `w (x − μ)` too small in most data sets, and the estimated density adds its own "
        "error. The gate's operating point was chosen on the realised errors, so its "
        "verdicts already allow for this (docs/diagnostics.md); the reported bound is "
        "not a calibrated 95 % interval.",
        "",
        md_table(head, body, ["l", "l", "l"] + ["r"] * (len(head) - 3)),
        "",
        f"Total wall time of this benchmark: {result['wall_s'] / 60:.1f} min.",
    ]
    from _common import render_machine

    lines += ["", "### Machine", "", render_machine(result["machine"])]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one n per family, 4 data sets")
    p.add_argument("--reps", type=int, default=None, help="data sets per (family, n) (40)")
    p.add_argument("--truth-draws", type=int, default=None, help="truth draws per do (200000)")
    p.add_argument("--families", nargs="*", default=None, help="only these families")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / f"{NAME}.json")
    p.add_argument("--no-docs", action="store_true")
    return p


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    threads = limit_threads(1)
    reps = args.reps or (4 if args.quick else 40)
    truth_draws = args.truth_draws or (20000 if args.quick else 200000)
    fams = [f for f in FAMILIES if args.families is None or f.name in args.families]
    rows: list[dict] = []
    for fam in fams:
        rows += run_family(fam, reps=reps, truth_draws=truth_draws, quick=args.quick)
    rows = [r for r in rows if r["covered"]]  # families whose weights always refuse
    for r in rows:
        r["summary"] = summary(r)
    pools = {"tuning": pooled(rows, False), "held_out": pooled(rows, True)}
    result: dict[str, Any] = {
        "name": NAME, "title": TITLE,
        "command": command_line(NAME, argv),
        "machine": machine_info() | {"threads": threads},
        "settings": {"reps": reps, "truth_draws": truth_draws, "quick": bool(args.quick)},
        "pooled": pools,
        "rows": [{k: v for k, v in r.items() if k not in ("z_mean", "z_sd", "z_oracle",
                                                          "covered")} for r in rows],
        "wall_s": time.perf_counter() - t0,
    }
    result["markdown"] = render_markdown(result)
    write_outputs(result, args.out, args.no_docs)
    _log(f"tuning {pools['tuning']}; held-out {pools['held_out']}")
    return result


if __name__ == "__main__":
    main()
