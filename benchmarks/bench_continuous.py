"""Continuous cause: recovering E[x | do(y)] on the paper's linear-Gaussian regression.

Data: ``make_regression_linear(n)`` (the paper's regression): ``U ~ N(0,1); Y = 2 + U + e; Z = 1.5 Y + e;
X = 5 U + Z + e``. The interventional slope ``dE[X | do(y)]/dy`` is 1.5, the observational
one 4.0. The do-grid is ``--grid`` (10) evenly spaced values between the 5 % and 95 %
quantiles of the training ``y``; the recovered slope is the least-squares slope of the
recovered ``E[x | do(y_j)]`` on ``y_j``. Every method sees the same data per seed.

Methods (``strategy`` / ``weight_smoothing`` are :class:`CausalGaussianMixture` options):

* **naive**: OLS of x on y (no deconfounding);
* **(a) weighting**: the paper's per-value CW-GMM, ``n_components=1``, front-door weights from
  a joint Gaussian over (y, z) (``density="gaussian"``, the paper's choice). The mixture
  mean equals the weighted mean of x for any K (an EM identity), so K = 1 loses nothing;
* **(b) PSIS**: the same with ``weight_smoothing="psis"``;
* **(c) plug-in**: ``strategy="plugin", plugin_components=1`` (Gaussian conditionals, the
  true model class here); **(c') plug-in, 3 comp.**: the default ``plugin_components=3``;
* **(d) pooled MSM**: :func:`causal_mixtures.shared.fit_linear_msm` on the weights of (a):
  ``E[x | do(y)] = a + B y`` by weighted least squares over every (row, grid value) pair;
* **oracle**: OLS of x on y over ``n // grid`` true interventional draws per grid value
  (the SCM under ``do``), the same design as the estimators target.

The target (issue 6): mean slope within 5 % of 1.5 and sd below 5 % over 10 seeds. The
front-door lower bound on the sd is derived in the rendered section (``_bound``).

A second part repeats the paper's downstream table at n = ``--downstream-n``: a
``LinearRegression`` predicting y from x, trained on the observational rows (classical), on a
deconfounded dataset from each method (``n // 30`` draws at each of 30 grid values), on true
interventional draws at the same grid (ideal deconfounder) and on non-confounded rows
(oracle), scored by MSE and R² on the non-confounded and the confounded test sets.

Run ``python benchmarks/bench_continuous.py --help``; ``make bench`` runs it through
``run_all.py``. ``main(argv)`` returns the result dictionary; the section of
``docs/results.md`` it produces (with the figure ``docs/img/continuous_do_curve.png``) is
:func:`results_section`.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import fmt_n, fmt_s, machine_info, md_table, write_json
from bench_paper import add_output_args, command_line, finish, start
from bench_paper import gate as _gate
from bench_paper import gate_text as _gate_text
from bench_paper import pm as _pm
from bench_paper import recorded as _recorded
from bench_paper import stats as _stats

NAME = "bench_continuous"
TITLE = "Continuous cause: E[x | do(y)] on the linear-Gaussian regression"
TRUE_SLOPE = 1.5
NAIVE_SLOPE = 4.0
TOL = 0.05  # issue 6: within 5 % on average, sd below 5 %
DEFAULT_SIZES = (5000, 20000, 100000)
QUICK_SIZES = (5000,)
DEFAULT_SEEDS = 10
QUICK_SEEDS = 3
N_GRID = 10
DOWNSTREAM_GRID = 30
# Var(x | y, z) = 25 Var(U | y) + 1 = 25 / 2 + 1; Var(z | y) = 1; Var(y) = 2; b = 1.5.
RESID_VAR_X = 13.5
VAR_Y = 2.0

METHODS = ("naive", "weighting", "psis", "plugin", "plugin3", "msm", "oracle")
LABELS = {
    "naive": "naive: OLS of x on y",
    "weighting": "(a) CW-GMM, per-value weights (paper)",
    "psis": "(b) CW-GMM, PSIS-smoothed weights",
    "plugin": "(c) plug-in front door, 1-comp. conditionals",
    "plugin3": "(c') plug-in front door, 3-comp. conditionals (default)",
    "msm": "(d) pooled linear MSM over the grid",
    "oracle": "oracle: OLS on interventional draws",
}
DOWN_METHODS = ("classical", "bootstrap", "weighting", "psis", "plugin", "msm", "ideal", "oracle")
DOWN_LABELS = {
    "classical": "classical (observational rows)",
    "bootstrap": "causal bootstrap",
    "weighting": "CW-GMM EM, K = 3 (paper)",
    "psis": "CW-GMM EM, K = 3, PSIS weights",
    "plugin": "plug-in front door (1-comp.)",
    "msm": "pooled MSM, Gaussian draws",
    "ideal": "ideal deconfounder (true draws of x under do(y))",
    "oracle": "oracle (non-confounded training rows)",
}
PAPER_DOWN = {  # the paper's non-confounded MSE / R²
    "classical": "1.162 / 0.419",
    "bootstrap": "0.652 / 0.674",
    "weighting": "0.647 / 0.677",
}
FIGURE = "continuous_do_curve.png"


def _log(msg: str) -> None:
    print(f"[{NAME}] {msg}", file=sys.stderr, flush=True)


# =============================================================================== theory
def front_door_sd(n: int) -> float:
    """Asymptotic sd of the front-door slope estimate b̂·ĉ₁ at n rows (see ``_bound``)."""
    rel_c = math.sqrt(RESID_VAR_X / n)  # SE(ĉ₁) / c₁ with c₁ = 1
    rel_b = math.sqrt(1.0 / (n * VAR_Y)) / 1.5  # SE(b̂) / b
    return TRUE_SLOPE * math.sqrt(rel_c**2 + rel_b**2)


def front_door_min_n(rel_sd: float = TOL) -> int:
    """Smallest n at which the front-door bound on the relative sd is below ``rel_sd``."""
    return math.ceil((RESID_VAR_X + 1.0 / (VAR_Y * 1.5**2)) / rel_sd**2)


# =============================================================================== runs
def _mixture_means(g: Any) -> np.ndarray:
    """E[x | do(y_j)] of the fitted mixtures, shape (n_do,) (first feature)."""
    return (g.weights_[..., None] * g.means_).sum(1)[:, 0]


def _slope(grid: np.ndarray, values: np.ndarray) -> float:
    return float(np.polyfit(grid, values, 1)[0])


def slope_seed(n: int, seed: int, n_grid: int = N_GRID) -> dict:
    """Every method's recovered E[x | do(y)] on one dataset."""
    import causal_mixtures as cm
    from causal_mixtures.estimators.msm import fit_linear_msm

    d = cm.datasets.make_regression_linear(n, n_test=10, random_state=seed)
    X, y, z = d.X, d.y, d.mechanism
    grid = np.linspace(*np.quantile(y, [0.05, 0.95]), n_grid)
    out: dict[str, Any] = {"n": n, "seed": seed, "grid": grid.tolist()}

    def record(name: str, curve: np.ndarray, slope: float, t: float, msgs: list[str],
               **extra: Any) -> None:
        out[name] = {"slope": slope, "curve": np.asarray(curve, float).tolist(),
                     "time_s": t, "warnings": msgs, **extra}

    t0 = time.perf_counter()
    naive = _slope(y, X[:, 0])
    record("naive", naive * grid + (X[:, 0].mean() - naive * y.mean()), naive,
           time.perf_counter() - t0, [])
    base = {"n_components": 1, "density": "gaussian", "random_state": seed}
    cw = None
    for name, extra in (("weighting", {"strategy": "weighting"}),
                        ("psis", {"strategy": "weighting", "weight_smoothing": "psis"}),
                        ("plugin", {"strategy": "plugin", "plugin_components": 1}),
                        ("plugin3", {"strategy": "plugin", "plugin_components": 3})):
        g, msgs, t = _recorded(
            cm.CausalGaussianMixture(**base, **extra).fit, X, y, mechanism=z, do=grid)
        curve = _mixture_means(g)
        weights = g.causal_weights_
        record(name, curve, _slope(grid, curve), t, msgs, gate=_gate(g, X),
               ess_min=float(weights.ess.min()), khat_max=float(np.nanmax(weights.khat)))
        if name == "weighting":
            cw = weights
    msm, msgs, t = _recorded(fit_linear_msm, cw, X)
    record("msm", msm.mean(grid)[:, 0], float(msm.slope[0]), t, msgs,
           slope_se=float(msm.slope_se[0]), gate=_gate(cw, None))
    rng = np.random.default_rng(10_000 + seed)
    m = n // n_grid
    t0 = time.perf_counter()
    draws = [d.sample_interventional(float(v), m, random_state=rng)[:, 0] for v in grid]
    curve = np.array([a.mean() for a in draws])
    oracle = _slope(np.repeat(grid, m), np.concatenate(draws))
    record("oracle", curve, oracle, time.perf_counter() - t0, [])
    return out


DESIGNS = ("paper", "inside")
DESIGN_TEXT = {
    "paper": "the paper's grid: 30 values on mean(y) ± 0.95·range(y), mostly outside the data",
    "inside": "30 values on the 5-95 % quantiles of y",
}


def downstream_grid(y: np.ndarray, design: str, n_grid: int = DOWNSTREAM_GRID) -> np.ndarray:
    """The do-grid of the downstream table: the paper's (``mean ± 0.95 range``,
    read literally) or one inside the data."""
    if design == "paper":
        r = float(np.ptp(y))
        return np.linspace(y.mean() - 0.95 * r, y.mean() + 0.95 * r, n_grid)
    return np.linspace(*np.quantile(y, [0.05, 0.95]), n_grid)


def downstream_seed(n: int, seed: int, design: str = "paper",
                    n_grid: int = DOWNSTREAM_GRID) -> dict:
    """The paper's downstream regression table on one dataset."""
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import mean_squared_error, r2_score

    import causal_mixtures as cm
    from causal_mixtures.estimators.msm import fit_linear_msm

    d = cm.datasets.make_regression_linear(n, n_test=1000, random_state=seed)
    X, y, z = d.X, d.y, d.mechanism
    grid = downstream_grid(y, design, n_grid)
    m = n // n_grid
    rng = np.random.default_rng(20_000 + seed)
    out: dict[str, Any] = {"n": n, "seed": seed, "design": design}

    def score(name: str, Xtr: np.ndarray, ytr: np.ndarray, t: float, msgs: list[str],
              **extra: Any) -> None:
        reg = LinearRegression().fit(Xtr, ytr)
        row = {"time_s": t, "warnings": msgs, "coef": float(reg.coef_[0]), **extra}
        for key, (Xt, yt) in {"nc": (d.X_test, d.y_test),
                              "conf": (d.X_test_confounded, d.y_test_confounded)}.items():
            pred = reg.predict(Xt)
            row[f"mse_{key}"] = float(mean_squared_error(yt, pred))
            row[f"r2_{key}"] = float(r2_score(yt, pred))
        out[name] = row

    score("classical", X, y, 0.0, [])
    boot = cm.CausalBootstrap(density="gaussian", random_state=seed)
    (Xb, yb), msgs, t = _recorded(boot.fit_resample, X, y, mechanism=z, do=grid)
    score("bootstrap", Xb, yb, t, msgs, gate=_gate(boot, X))
    cw = cm.causal_weights("front_door", X, y, mechanism=z, do=grid, density="gaussian")
    for name, kw in (("weighting", {"n_components": 3, "strategy": "weighting"}),
                     ("psis", {"n_components": 3, "strategy": "weighting",
                               "weight_smoothing": "psis"}),
                     ("plugin", {"n_components": 1, "strategy": "plugin",
                                 "plugin_components": 1})):
        g = cm.CausalGaussianMixture(density="gaussian", random_state=seed, **kw)
        try:
            (Xn, yn), msgs, t = _recorded(g.fit_resample, X, y, mechanism=z, do=grid)
        except cm.DegenerateFitError as exc:  # a grid end with a handful of effective rows
            out.setdefault("refused", {})[name] = str(exc)
            continue
        score(name, Xn, yn, t, msgs, gate=_gate(g, X))
    msm, msgs, t = _recorded(fit_linear_msm, cw, X)
    sd = math.sqrt(float(msm.cov[0, 0]))
    ym = np.repeat(grid, m)
    Xm = (msm.mean(ym)[:, 0] + sd * rng.standard_normal(len(ym)))[:, None]
    score("msm", Xm, ym, t, msgs)
    Xi = np.concatenate([d.sample_interventional(float(v), m, random_state=rng) for v in grid])
    score("ideal", Xi, ym, 0.0, [])
    nc = cm.datasets.make_regression_linear(10, n_test=n, random_state=50_000 + seed)
    score("oracle", nc.X_test, nc.y_test, 0.0, [])
    return out


# =============================================================================== summary
def summarise(result: dict) -> None:
    """Mean ± sd per (n, method), the goals and the curves for the figure (in place)."""
    summary = []
    for n in result["settings"]["sizes"]:
        runs = [r for r in result["slope_runs"] if r["n"] == n]
        if not runs:
            continue
        for method in METHODS:
            rows = [r[method] for r in runs if method in r]
            if not rows:
                continue
            st = _stats([r["slope"] for r in rows])
            rel_bias = (st["mean"] - TRUE_SLOPE) / TRUE_SLOPE
            rel_sd = st["sd"] / TRUE_SLOPE
            gates = [r["gate"]["status"] for r in rows if "gate" in r]
            summary.append({
                "n": n, "method": method, **st, "rel_bias": rel_bias, "rel_sd": rel_sd,
                "rmse": float(np.sqrt(np.mean((np.array([r["slope"] for r in rows])
                                               - TRUE_SLOPE) ** 2))),
                "passes": bool(abs(rel_bias) < TOL and rel_sd < TOL),
                "time_s": float(np.mean([r["time_s"] for r in rows])),
                "gate": {s: gates.count(s) for s in sorted(set(gates))} if gates else None,
                "ess_min": (float(np.median([r["ess_min"] for r in rows]))
                            if "ess_min" in rows[0] else None),
                "khat_max": (float(np.median([r["khat_max"] for r in rows]))
                             if "khat_max" in rows[0] else None),
                "slope_se": (float(np.mean([r["slope_se"] for r in rows]))
                             if "slope_se" in rows[0] else None),
                "warnings": sorted({w for r in rows for w in r.get("warnings", [])}),
            })
    result["summary"] = summary
    goals = []
    for n in result["settings"]["sizes"]:
        rows = {s["method"]: s for s in summary if s["n"] == n}
        best = min((s for m, s in rows.items() if m not in ("naive", "oracle")),
                   key=lambda s: abs(s["rel_bias"]) + s["rel_sd"], default=None)
        if best is None:
            continue
        goals.append({
            "target": f"slope of E[x \\| do(y)] within 5 % of 1.5, sd < 5 % (n = {fmt_n(n)})",
            "measured": f"best: {LABELS[best['method']]} {best['mean']:.3f} ± {best['sd']:.3f} "
                        f"({100 * best['rel_bias']:+.1f} %, sd {100 * best['rel_sd']:.1f} %); "
                        f"front-door bound on the sd {100 * front_door_sd(n) / TRUE_SLOPE:.1f} %",
            "passed": best["passes"],
            "method": best["method"],
            "n": n,
        })
    result["goals"] = goals
    if result.get("downstream_runs"):
        down = []
        for design in DESIGNS:
            runs = [r for r in result["downstream_runs"] if r.get("design", "paper") == design]
            for method in DOWN_METHODS:
                rows = [r[method] for r in runs if method in r]
                refused = sum(method in r.get("refused", {}) for r in runs)
                if not rows:
                    if refused:
                        down.append({"design": design, "method": method, "n_seeds": 0,
                                     "refused": refused})
                    continue
                entry = {"design": design, "method": method, "n_seeds": len(rows),
                         "refused": refused}
                for key in ("mse_nc", "r2_nc", "mse_conf", "r2_conf", "coef", "time_s"):
                    entry[key] = _stats([r[key] for r in rows])
                gates = [r["gate"]["status"] for r in rows if "gate" in r]
                entry["gate"] = ({s: gates.count(s) for s in sorted(set(gates))}
                                 if gates else None)
                entry["warnings"] = sorted({w.split(":")[0] for r in rows
                                            for w in r.get("warnings", [])})
                down.append(entry)
        result["downstream_summary"] = down


# =============================================================================== rendering
def _bound() -> str:
    n5 = 5000
    return (
        "**Why sd < 5 % is out of reach at n = 5000.** Under the linear-Gaussian SCM the "
        "observed (y, z, x) are jointly Gaussian and the front-door model is saturated: "
        "z = b y + e_z and x = c₀ + c₁ z + γ y + ν with ν independent of (y, z) (γ absorbs the "
        "confounding through U). The maximum-likelihood estimate of the interventional slope "
        "is b̂·ĉ₁ (the plug-in estimate), and in a saturated Gaussian model its asymptotic "
        "variance is the Cramér-Rao bound for every regular estimator of the front-door "
        "functional. Here Var(z | y) = 1, Var(y) = 2 and "
        "Var(x | y, z) = 25·Var(U | y) + 1 = 25·½ + 1 = 13.5, so\n\n"
        f"* SE(ĉ₁) = √(13.5 / n) = {math.sqrt(RESID_VAR_X / n5):.4f} at n = 5000 "
        f"(c₁ = 1: {100 * math.sqrt(RESID_VAR_X / n5):.1f} % relative);\n"
        f"* SE(b̂) = √(1 / (2n)) = {math.sqrt(1 / (2 * n5)):.4f} (b = 1.5: "
        f"{100 * math.sqrt(1 / (2 * n5)) / 1.5:.2f} % relative);\n"
        "* the two regressions are asymptotically independent, so "
        "sd(b̂ĉ₁)/1.5 = √(13.5/n + 1/(4.5 n)) = "
        f"{100 * front_door_sd(n5) / TRUE_SLOPE:.2f} % → sd ≈ {front_door_sd(n5):.3f} "
        "at n = 5000.\n\n"
        f"sd < 5 % needs n ≥ (13.5 + 1/4.5) / 0.05² = {front_door_min_n()}: no front-door "
        "estimator meets the sd target at n = 5000 without assumptions beyond the front-door "
        f"graph. At n = 20 000 the bound is {100 * front_door_sd(20000) / TRUE_SLOPE:.1f} %. "
        "(The oracle, which sees interventional draws, is not bound by this: its sd is "
        "√(27 / (n · Var(grid))) ≈ 3.3 % at n = 5000.)"
    )


def _slope_table(result: dict) -> str:
    header = ["n", "method", "slope (mean ± sd)", "bias", "sd", "target", "fit (s)",
              "gate verdicts", "median min ESS", "median max k̂"]
    rows = []
    for s in result["summary"]:
        rows.append([
            fmt_n(s["n"]), LABELS[s["method"]], f"{s['mean']:.3f} ± {s['sd']:.3f}",
            f"{100 * s['rel_bias']:+.1f} %", f"{100 * s['rel_sd']:.1f} %",
            "—" if s["method"] in ("naive", "oracle") else ("PASS" if s["passes"] else "fail"),
            fmt_s(s["time_s"]), _gate_text(s["gate"]),
            "—" if s["ess_min"] is None else f"{s['ess_min']:.0f}",
            "—" if s["khat_max"] is None else f"{s['khat_max']:.2f}",
        ])
    return md_table(header, rows, ["r", "l", "r", "r", "r", "l", "r", "l", "r", "r"])


def _downstream_table(result: dict, design: str) -> str:
    header = ["training data", "MSE non-conf.", "R² non-conf.", "MSE conf.", "R² conf.",
              "paper (non-conf. MSE / R²)", "gate verdicts", "warnings"]
    rows = []
    for e in result["downstream_summary"]:
        if e["design"] != design:
            continue
        label = DOWN_LABELS[e["method"]]
        if not e["n_seeds"]:
            rows.append([f"{label} (refused in all {e['refused']} seeds: too few effective "
                         "rows at the grid's ends)"] + ["—"] * 7)
            continue
        if e.get("refused"):
            label += (f" (refused in {e['refused']} of {e['refused'] + e['n_seeds']} seeds: "
                      "too few effective rows at the grid's ends; mean of the others)")
        rows.append([
            label, _pm(e["mse_nc"]), _pm(e["r2_nc"]), _pm(e["mse_conf"]),
            _pm(e["r2_conf"]), PAPER_DOWN.get(e["method"], "—") if design == "paper" else "—",
            _gate_text(e["gate"]), ", ".join(e.get("warnings", [])) or "—",
        ])
    return md_table(header, rows, ["l", "r", "r", "r", "r", "r", "l", "l"])


def render_markdown(result: dict, img_prefix: str | None = None) -> str:
    """This benchmark's section (docs/benchmarks.md; with ``img_prefix``, docs/results.md)."""
    s = result["settings"]
    parts = [
        f"Data: `make_regression_linear(n)` (true slope 1.5, observational 4.0), "
        f"{s['seeds']} seeds per n, do-grid of {s['grid']} values on the 5-95 % quantiles of "
        "y, weights from a joint Gaussian over (y, z). *bias* and *sd* are relative to 1.5; "
        "*target*: |bias| < 5 % and sd < 5 %. *gate verdicts*: `cm.diagnose(model, X)` "
        "status per seed (the check `MechanismLearner(check=\"warn\")` runs; for the MSM, the "
        "weight checks alone; for the plug-in they include weight checks on weights it does "
        "not use). ESS and k̂ are of the causal weights (median over seeds of the smallest "
        "ESS / largest k̂ across the grid).",
        _slope_table(result),
    ]
    if img_prefix is not None:
        parts.append(f"![recovered E[x | do(y)] across the do-grid]({img_prefix}/{FIGURE})")
    parts.append(_bound())
    parts.append(
        "**Why the weighting estimators fail here, at any n we tried.** The weights "
        "w_n(y) = p(z_n | y) / p(z_n | y_n) must make y' independent of z, and "
        "corr(y, z) = 1.5·√2/√5.5 ≈ 0.90: the variance of these weights is infinite at "
        "*every* grid value. (They are the density ratio of the target p(y') p(z | y_j), "
        "covariance Σ_q = diag(2, 1), to the observed p(y', z), Σ_p = [[2, 3], [3, 5.5]]; "
        "for Gaussians the second moment ∫q²/p is finite only when 2Σ_q⁻¹ − Σ_p⁻¹ is "
        "positive definite, and here it is [[−1.75, 1.5], [1.5, 1]], whatever y_j.) The "
        "tail index is then k ≥ ½ everywhere and the estimated k̂ exceeds 0.7 at most grid "
        "values. The self-normalised estimate converges very slowly and is biased "
        "towards the confounded regression: the rare rows that carry the correction are "
        "missing from any finite sample. PSIS trims exactly those rows (lower variance, "
        "more bias). Pooling the grid in an MSM (d) is algebraically OLS through the "
        "per-value means of (a) (`causal_mixtures/shared.py`), so it inherits their bias: it "
        "smooths grid-to-grid noise and gives a parametric curve with standard errors, not "
        "better weights. The plug-in sampler (c) models p(z | y) and p(x | y', z) and "
        "borrows strength from every row, so it is unbiased whenever those conditionals "
        "are well specified, and its sd sits at the front-door bound."
    )
    if result.get("downstream_summary"):
        parts.append(
            f"**Downstream regression (the paper's table), n = {fmt_n(s['downstream_n'])}, "
            f"{s['downstream_seeds']} seeds.** `LinearRegression` predicting y from x, trained "
            f"on each method's deconfounded dataset ({s['downstream_n'] // DOWNSTREAM_GRID} "
            f"draws at each of {DOWNSTREAM_GRID} do values), mean ± sd over seeds. *Ideal "
            "deconfounder*: true draws of p(x | do(y)) at the same do values, i.e. what a "
            "perfect CW-GMM would produce; *oracle*: the same number of non-confounded rows "
            "(the test distribution). On the confounded test the classical model wins, as in "
            "the paper: it exploits the confounder."
        )
        for design in DESIGNS:
            if any(e["design"] == design for e in result["downstream_summary"]):
                parts.append(f"Do-grid: {DESIGN_TEXT[design]}.")
                parts.append(_downstream_table(result, design))
        parts.append(
            "Read these MSEs with care: they are driven by the *design* of the do-grid more "
            "than by how faithful the deconfounded p(x | do(y)) is. Under do(y) the feature "
            "still carries the confounder's variance (Var(x | do(y)) = 27), so a regression "
            "of y on x trained on it is attenuated unless the do values are spread far beyond "
            "the data; the paper's grid (read literally) does that, and then all methods "
            "approach the oracle. With a grid inside the data even the ideal deconfounder "
            "scores worse than the classical model on the non-confounded test. The slope table "
            "above is the direct measure of deconfounding."
        )
    parts.append(f"Total wall time of this benchmark: {result['wall_s'] / 60:.1f} min.")
    return "\n\n".join(parts)


def results_section(result: dict, img_prefix: str = "img") -> str:
    """The section of docs/results.md."""
    return render_markdown(result, img_prefix=img_prefix)


def write_figures(result: dict, img_dir: Path) -> list[Path]:
    """Recovered E[x | do(y)] across the do-grid against the truth (one panel per n)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [n for n in result["settings"]["sizes"]
             if any(r["n"] == n for r in result["slope_runs"])]
    sizes = sizes[:1] + sizes[-1:] if len(sizes) > 1 else sizes  # smallest and largest n
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.6 * len(sizes), 3.6), squeeze=False,
                             sharey=True)
    styles = {"naive": ("0.6", ":"), "weighting": ("C3", "-"), "psis": ("C1", "-"),
              "msm": ("C4", "--"), "plugin": ("C0", "-"), "oracle": ("k", "-.")}
    for ax, n in zip(axes[0], sizes, strict=True):
        runs = [r for r in result["slope_runs"] if r["n"] == n]
        grid = np.mean([r["grid"] for r in runs], axis=0)
        ax.plot(grid, TRUE_SLOPE * grid, color="g", lw=3, alpha=0.35, label="truth 1.5 y")
        for method, (color, ls) in styles.items():
            curves = np.array([r[method]["curve"] for r in runs])
            mean, sd = curves.mean(0), curves.std(0)
            ax.plot(grid, mean, color=color, ls=ls, lw=1.4, label=method)
            ax.fill_between(grid, mean - sd, mean + sd, color=color, alpha=0.12, lw=0)
        ax.set_title(f"n = {fmt_n(n)}, {len(runs)} seeds (band: ±1 sd)", fontsize=9)
        ax.set_xlabel("do(y)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("recovered E[x | do(y)]")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    img_dir.mkdir(parents=True, exist_ok=True)
    path = img_dir / FIGURE
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return [path]


# =============================================================================== main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"n = {QUICK_SIZES}, {QUICK_SEEDS} seeds; no results page unless "
                        "--results-page is given")
    p.add_argument("--sizes", type=lambda s: int(float(s)), nargs="+", default=None,
                   help=f"training sizes (default {DEFAULT_SIZES})")
    p.add_argument("--seeds", type=int, default=None, help=f"seeds per size ({DEFAULT_SEEDS})")
    p.add_argument("--grid", type=int, default=N_GRID, help="do-grid size")
    p.add_argument("--downstream-n", type=int, default=5000)
    p.add_argument("--no-downstream", action="store_true")
    add_output_args(p, NAME)
    return p


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns (and writes to ``--out``) the result dictionary."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    t_start = time.perf_counter()
    threads = start(args)
    sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    seeds = args.seeds or (QUICK_SEEDS if args.quick else DEFAULT_SEEDS)
    result: dict[str, Any] = {
        "name": NAME, "title": TITLE, "command": command_line(NAME, argv), "argv": argv,
        "machine": machine_info() | {"threads": threads}, "quick": bool(args.quick),
        "settings": {"sizes": sizes, "seeds": seeds, "grid": args.grid,
                     "downstream_n": args.downstream_n,
                     "downstream_seeds": 0 if args.no_downstream else seeds},
        "slope_runs": [], "downstream_runs": [],
    }
    for n in sizes:
        t = time.perf_counter()
        for seed in range(seeds):
            result["slope_runs"].append(slope_seed(n, seed, args.grid))
        runs = [r for r in result["slope_runs"] if r["n"] == n]
        _log(f"n={fmt_n(n)}: {time.perf_counter() - t:.0f} s; " + ", ".join(
            f"{m} {np.mean([r[m]['slope'] for r in runs]):.3f}" for m in METHODS))
        write_json(args.out, result)
    if not args.no_downstream:
        t = time.perf_counter()
        for design in DESIGNS:
            for seed in range(seeds):
                result["downstream_runs"].append(
                    downstream_seed(args.downstream_n, seed, design))
        _log(f"downstream: {time.perf_counter() - t:.0f} s")
    summarise(result)
    result["wall_s"] = time.perf_counter() - t_start
    result["markdown"] = render_markdown(result)
    finish(result, args)
    return result


if __name__ == "__main__":
    main()
