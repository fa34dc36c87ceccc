"""The paper's classification and background-digits experiments, and automatic K.

Reproduces the tables of Mao & Little (arXiv:2410.20057) with every method in the
same run, ``--seeds`` seeds (10), mean ± sd, and sweeps the number of components K:

* **2-D classification** (``make_classification_2d(5000)``): a linear SVM
  (``SVC(kernel="linear", C=5)``) trained on the observational rows (*classical*), on a
  deconfounded dataset from the causal bootstrap, from CW-GMMs (EM: K = 6 full as in the
  paper, K = auto, PSIS weights; SVI on the first ``--svi-seeds`` seeds), from the plug-in
  front-door sampler, and on non-confounded rows (*oracle*); accuracy on the non-confounded
  and the confounded test sets. Deconfounded datasets have ``n // 2`` draws per class (the
  paper drew 5000 per class; a linear SVC on 10 000 overlapping rows costs 5× more and
  changed no accuracy by more than 0.3 pp in our trials).
* **Background digits** (``make_background_digits``: scikit-learn's 8×8 digits 2 and 6,
  2000 training rows): KNN (k = 3), diagonal CW-GMMs, the same rows of methods (no SVI: one
  64-D SVI fit took over 10 minutes here).
* **Automatic K**: for each data set, a CW-GMM per K in ``--ks`` (1 … 50) on the same
  weights, its downstream accuracy, ``n_components="auto"`` (weighted BIC) over the same
  candidates and over the default range 1-10, and the held-out weighted log-likelihood
  (:func:`causal_mixtures.heldout_loglik`, 3 folds, on the first ``--heldout-seeds`` seeds).
  Target: auto within 1 pp of the best fixed K (mean accuracy over seeds).

This module also owns ``docs/results.md``: :func:`write_results_page` assembles it from the
JSON results of ``bench_paper``, ``bench_continuous`` and ``bench_scale`` (each writes its own
figures into ``docs/img``), and holds the helpers those scripts share.

Run ``python benchmarks/bench_paper.py --help``; ``make bench`` runs it through
``run_all.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    BENCH_DIR,
    DOCS_FILE,
    REPO,
    RESULTS_DIR,
    fmt_s,
    kept_section,
    limit_threads,
    load_bench_module,
    machine_info,
    md_table,
    page_sections,
    render_machine,
    write_json,
)

NAME = "bench_paper"
TITLE = "Paper experiments: 2-D classification, background digits, automatic K"
RESULTS_PAGE = REPO / "docs" / "results.md"
PAGE_ORDER = ("bench_paper", "bench_continuous", "bench_scale", "bench_accuracy")
KS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 50)
QUICK_KS = (1, 2, 4, 8)
DEFAULT_SEEDS = 10
QUICK_SEEDS = 2
TOL_K = 0.01  # issue 6: auto K within 1 pp of the best fixed K
FIGURE = "autok_accuracy.png"

DATASETS = {
    "classification": {
        "title": "2-D classification (make_classification_2d, n = 5000)",
        "model": "SVC(kernel='linear', C=5)",
        "cov": "full",
        "k_paper": 6,
        "paper": {"classical": (0.782, 0.853), "bootstrap": (0.853, 0.857),
                  "em": (0.854, 0.858)},
    },
    "digits": {
        "title": "Background digits (make_background_digits, 8×8 digits 2/6, n = 2000)",
        "model": "KNeighborsClassifier(3)",
        "cov": "diag",
        "k_paper": 20,
        "paper": {"classical": (0.722, 0.964), "bootstrap": (0.926, 0.938),
                  "em": (0.932, 0.935), "oracle": (0.938, 0.930)},
    },
}
METHODS = ("classical", "bootstrap", "em", "em_auto", "default", "psis", "svi", "plugin",
           "oracle")
LABELS = {
    "classical": "classical (observational rows)",
    "bootstrap": "causal bootstrap",
    "em": "CW-GMM EM, K = {k} ({cov})",
    "em_auto": "CW-GMM EM, K = auto (BIC, 1-10)",
    "default": "CW-GMM, K = {k}, default strategy='auto'",
    "psis": "CW-GMM EM, K = {k}, PSIS weights",
    "svi": "CW-GMM SVI-MAP (from EM), K = {k}",
    "plugin": "plug-in front door, K = {k}",
    "oracle": "oracle (non-confounded training rows)",
}


def _log(msg: str) -> None:
    print(f"[{NAME}] {msg}", file=sys.stderr, flush=True)


# =============================================================================== shared helpers
def recorded(fn, *args: Any, **kwargs: Any) -> tuple[Any, list[str], float]:
    """``fn(...)`` with every warning caught and recorded; returns (value, messages, seconds)."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    elapsed = time.perf_counter() - t0
    msgs = sorted({f"{w.category.__name__}: {str(w.message)[:90]}" for w in caught})
    return out, msgs, elapsed


def gate(model: Any, X: Any) -> dict:
    """The verdict of the diagnostics gate (``cm.diagnose``; what
    ``MechanismLearner(check=...)`` acts on): status, failed checks, warned check names."""
    import causal_mixtures as cm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = cm.diagnose(model, X)
    return {"status": rep.status, "failed": [c.label for c in rep.failed],
            "warned": sorted({c.name for c in rep.warned})}


def stats(values: list[float]) -> dict:
    a = np.asarray(values, float)
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "n_seeds": len(a)}


def pm(st: dict | None, digits: int = 3) -> str:
    if not st:
        return "—"
    return f"{st['mean']:.{digits}f} ± {st['sd']:.{digits}f}"


def gate_text(counts: dict | None) -> str:
    return "—" if not counts else ", ".join(f"{k} {v}" for k, v in counts.items())


def gate_counts(rows: list[dict]) -> dict | None:
    statuses = [r["gate"]["status"] for r in rows if r.get("gate")]
    return {s: statuses.count(s) for s in sorted(set(statuses))} if statuses else None


def command_line(name: str, argv: list[str]) -> str:
    """The command that regenerates a result (output paths left out)."""
    shown = [a for a in argv if a not in ("--no-docs", "--no-results-page", "--no-figure")]
    for flag in ("--out", "--docs", "--results-page", "--img-dir"):
        if flag in shown:
            i = shown.index(flag)
            del shown[i : i + 2]
    return f"python benchmarks/{name}.py" + ("" if not shown else " " + shlex.join(shown))


def add_output_args(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("--threads", type=int, default=1, help="BLAS/torch threads (default 1)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / f"{name}.json", help="JSON output")
    p.add_argument("--docs", type=Path, default=None,
                   help="benchmarks page to regenerate (default: docs/benchmarks.md when "
                        "--out is the default results file)")
    p.add_argument("--no-docs", action="store_true",
                   help="do not regenerate docs/benchmarks.md (run_all.py does it)")
    p.add_argument("--results-page", type=Path, default=None,
                   help="results page to regenerate, figures in its img/ folder (default: "
                        "docs/results.md, unless --quick or a non-default --out)")
    p.add_argument("--no-results-page", action="store_true",
                   help="write neither docs/results.md nor its figures")


def finish(result: dict, args: argparse.Namespace) -> None:
    """Write the JSON, then docs/benchmarks.md and docs/results.md (with this result's
    figures), following the flags of :func:`add_output_args`."""
    name = result["name"]
    write_json(args.out, result)
    default_out = Path(args.out).resolve() == (RESULTS_DIR / f"{name}.json").resolve()
    docs = args.docs if args.docs is not None else (DOCS_FILE if default_out else None)
    if docs is not None and not args.no_docs:
        from _common import render_docs

        render_docs(Path(docs))
        print(f"[{name}] wrote {docs}", file=sys.stderr, flush=True)
    page = args.results_page
    if page is None and default_out and not args.quick:
        page = RESULTS_PAGE
    if page is not None and not args.no_results_page:
        write_results_page(Path(page), current=result)
        print(f"[{name}] wrote {page}", file=sys.stderr, flush=True)
    print(f"[{name}] wrote {args.out}", file=sys.stderr, flush=True)


def start(args: argparse.Namespace) -> dict:
    """Pin this benchmark process's threads (torch imported first so that it is pinned too)."""
    import torch  # noqa: F401

    return limit_threads(args.threads)


# =============================================================================== experiments
def _load(name: str, n: int | None, seed: int):
    import causal_mixtures as cm

    if name == "classification":
        return cm.datasets.make_classification_2d(n or 5000, random_state=seed)
    return cm.datasets.make_background_digits(n_samples=n or 2000, random_state=seed)


def _downstream(name: str):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    return SVC(kernel="linear", C=5) if name == "classification" else KNeighborsClassifier(3)


def _score(name: str, Xtr: Any, ytr: Any, d: Any) -> dict:
    clf = _downstream(name).fit(Xtr, ytr)
    return {"acc_nc": float(clf.score(d.X_test, d.y_test)),
            "acc_conf": float(clf.score(d.X_test_confounded, d.y_test_confounded))}


def run_seed(name: str, seed: int, *, n: int | None, ks: tuple[int, ...], svi: bool,
             heldout: bool) -> dict:
    """Every method, the K sweep and the automatic choices on one data set and seed."""
    import causal_mixtures as cm

    spec = DATASETS[name]
    cov, k0 = spec["cov"], spec["k_paper"]
    d = _load(name, n, seed)
    X, y, z = d.X, d.y, d.mechanism
    out: dict[str, Any] = {"dataset": name, "seed": seed, "n": len(X), "table": {},
                           "sweep": {}, "auto": {}}
    table = out["table"]

    def fit_score(method: str, make) -> Any:
        """Time ``make()`` (fit and draw: returns X_new, y_new, fitted model), score the
        downstream model on its draws, record warnings and the gate's verdict."""
        (Xn, yn, model), msgs, t = recorded(make)
        table[method] = {"time_s": t, "warnings": msgs, **_score(name, Xn, yn, d),
                         "gate": gate(model, X)}
        return model

    def cwgmm(**kw: Any):
        def make():
            model = cm.CausalGaussianMixture(covariance_type=cov, random_state=seed, **kw)
            Xn, yn = model.fit_resample(X, y, mechanism=z)
            return Xn, yn, model
        return make

    def boot():
        model = cm.CausalBootstrap(random_state=seed)
        Xn, yn = model.fit_resample(X, y, mechanism=z)
        return Xn, yn, model

    table["classical"] = {"time_s": 0.0, "warnings": [], **_score(name, X, y, d)}
    fit_score("bootstrap", boot)
    weighting = {"strategy": "weighting"}  # the paper's estimator; "default" is "auto"
    em = fit_score("em", cwgmm(n_components=k0, **weighting))
    cw = em.causal_weights_
    auto = fit_score("em_auto", cwgmm(n_components="auto", **weighting))
    table["em_auto"]["k"] = int(auto.n_components_)
    default = fit_score("default", cwgmm(n_components=k0))
    table["default"]["strategy"] = default.strategy_
    fit_score("psis", cwgmm(n_components=k0, weight_smoothing="psis", **weighting))
    if svi:
        fit_score("svi", cwgmm(n_components=k0, inference="svi"))
    fit_score("plugin", cwgmm(n_components=k0, strategy="plugin"))
    table["oracle"] = {"time_s": 0.0, "warnings": [], **_score(name, d.X_oracle, d.y_oracle, d)}
    base = {"covariance_type": cov, "random_state": seed}

    # ---- K sweep on the same weights
    for k in ks:
        try:
            model, msgs, t = recorded(lambda k=k: cm.CausalGaussianMixture(
                n_components=k, **base).fit(X, weights=cw, do=cw.do_values))
        except cm.DegenerateFitError as exc:  # more components than the effective rows hold
            out.setdefault("sweep_refused", {})[str(k)] = str(exc)
            continue
        Xn, yn = model.resample(n_rows=len(X), random_state=seed)
        out["sweep"][str(k)] = {"time_s": t, "warnings": msgs, "bic": float(model.bic_.sum()),
                                "n_iter": model.n_iter_.tolist(), **_score(name, Xn, yn, d)}
    model, msgs, t = recorded(lambda: cm.CausalGaussianMixture(
        n_components="auto", n_components_range=list(ks), **base).fit(
            X, weights=cw, do=cw.do_values))
    Xn, yn = model.resample(n_rows=len(X), random_state=seed)
    out["auto"]["bic"] = {"k": int(model.n_components_), "time_s": t, "warnings": msgs,
                          **_score(name, Xn, yn, d)}
    if heldout:
        table_h, msgs, t = recorded(cm.heldout_loglik, model, X, n_components=list(ks),
                                    n_splits=3, random_state=seed)
        ll = table_h["heldout_loglik"].to_numpy()
        se_diff = table_h["se_diff"].to_numpy()
        kk = table_h["n_components"].to_numpy()
        best = int(np.argmax(ll))
        one_se = int(np.flatnonzero(ll >= ll[best] - se_diff)[0])  # smallest K within 1 SE
        for key, idx in (("heldout", best), ("heldout_1se", one_se)):
            k = int(kk[idx])
            out["auto"][key] = {"k": k, "time_s": t, "warnings": msgs,
                                **{m: out["sweep"][str(k)][m] for m in ("acc_nc", "acc_conf")}}
    return out


# =============================================================================== summary
def summarise(result: dict) -> None:
    summary: dict[str, Any] = {}
    goals = []
    for name in result["settings"]["datasets"]:
        runs = [r for r in result["runs"] if r["dataset"] == name]
        if not runs:
            continue
        s: dict[str, Any] = {"table": {}, "sweep": {}, "auto": {}}
        for method in METHODS:
            rows = [r["table"][method] for r in runs if method in r["table"]]
            if rows:
                s["table"][method] = {
                    "acc_nc": stats([r["acc_nc"] for r in rows]),
                    "acc_conf": stats([r["acc_conf"] for r in rows]),
                    "time_s": float(np.mean([r["time_s"] for r in rows])),
                    "gate": gate_counts(rows),
                    "failed": sorted({c.split("[")[0] for r in rows
                                      for c in r.get("gate", {}).get("failed", [])}),
                    "warnings": sorted({w.split(":")[0] for r in rows for w in r["warnings"]}),
                    "k": [r["k"] for r in rows] if "k" in rows[0] else None,
                    "strategy": ([r["strategy"] for r in rows] if "strategy" in rows[0]
                                 else None),
                }
        for k in result["settings"]["ks"]:
            rows = [r["sweep"][str(k)] for r in runs if str(k) in r["sweep"]]
            if rows:
                s["sweep"][str(k)] = {"acc_nc": stats([r["acc_nc"] for r in rows]),
                                      "acc_conf": stats([r["acc_conf"] for r in rows]),
                                      "time_s": float(np.mean([r["time_s"] for r in rows])),
                                      "n_seeds": len(rows)}
        for key in ("bic", "heldout", "heldout_1se"):
            rows = [r["auto"][key] for r in runs if key in r["auto"]]
            if rows:
                s["auto"][key] = {"acc_nc": stats([r["acc_nc"] for r in rows]),
                                  "ks": [r["k"] for r in rows], "n_seeds": len(rows)}
                if key != "bic":  # compare with the fixed Ks on the same seeds
                    seeds = [r["seed"] for r in runs if key in r["auto"]]
                    s["auto"][key]["best_fixed_same_seeds"] = max(
                        float(np.mean([r["sweep"][str(k)]["acc_nc"] for r in runs
                                       if r["seed"] in seeds]))
                        for k in result["settings"]["ks"]
                        if all(str(k) in r["sweep"] for r in runs if r["seed"] in seeds))
        # The best fixed K among those every seed's effective rows support (a K refused on
        # some seed has its mean over the others only).
        complete = [k for k in s["sweep"] if s["sweep"][k]["n_seeds"] == len(runs)]
        if complete:
            best_k = max(complete, key=lambda k: s["sweep"][k]["acc_nc"]["mean"])
            s["best_k"] = int(best_k)
            best = s["sweep"][best_k]["acc_nc"]["mean"]
            if "bic" in s["auto"]:
                got = s["auto"]["bic"]["acc_nc"]["mean"]
                goals.append({
                    "target": f"{name}: n_components='auto' (BIC) within 1 pp of the best "
                              "fixed K",
                    "measured": f"auto {got:.3f} (K chosen: "
                                f"{_k_summary(s['auto']['bic']['ks'])}) vs best fixed K = "
                                f"{best_k}: {best:.3f} ({100 * (got - best):+.1f} pp)",
                    "passed": bool(got >= best - TOL_K),
                })
        t = s["table"]
        if name == "digits" and {"em", "oracle", "classical"} <= set(t):
            for method in ("em", "em_auto"):
                ml = t[method]["acc_nc"]["mean"]
                orc, cls = t["oracle"]["acc_nc"]["mean"], t["classical"]["acc_nc"]["mean"]
                label = LABELS[method].format(k=DATASETS[name]["k_paper"], cov="diag")
                goals.append({
                    "target": f"digits, {label}: within 1 pp of the oracle and >= 15 pp "
                              "above classical (non-confounded test)",
                    "measured": f"{ml:.3f}; oracle {orc:.3f} "
                                f"({100 * (ml - orc):+.1f} pp); classical {cls:.3f} "
                                f"({100 * (ml - cls):+.1f} pp)",
                    "passed": bool(ml >= orc - 0.01 and ml >= cls + 0.15),
                })
        summary[name] = s
    result["summary"] = summary
    result["goals"] = goals


def _k_summary(ks: list[int]) -> str:
    vals, counts = np.unique(ks, return_counts=True)
    return ", ".join(f"{v}×{c}" if c > 1 else f"{v}" for v, c in zip(vals, counts, strict=True))


# =============================================================================== rendering
def _table(result: dict, name: str) -> str:
    spec = DATASETS[name]
    s = result["summary"][name]
    header = ["training data", "acc. non-conf.", "acc. conf.", "paper (non-conf. / conf.)",
              "fit (s)", "gate verdicts (failed checks)"]
    rows = []
    for method in METHODS:
        e = s["table"].get(method)
        if e is None:
            continue
        label = LABELS[method].format(k=spec["k_paper"], cov=spec["cov"])
        if method == "em_auto" and e.get("k"):
            label += f"; chose {_k_summary(e['k'])}"
        if e.get("strategy"):
            names, counts = np.unique(e["strategy"], return_counts=True)
            label += "; chose " + ", ".join(f"{a} {c}" for a, c in zip(names, counts,
                                                                     strict=True))
        if e["acc_nc"]["n_seeds"] != result["settings"]["seeds"]:
            label += f" ({e['acc_nc']['n_seeds']} seeds)"
        paper = spec["paper"].get(method)
        gtxt = gate_text(e["gate"])
        if e["failed"]:
            gtxt += f" ({', '.join(e['failed'])})"
        rows.append([label, pm(e["acc_nc"]), pm(e["acc_conf"]),
                     "—" if paper is None else f"{paper[0]:.3f} / {paper[1]:.3f}",
                     "—" if method in ("classical", "oracle") else fmt_s(e["time_s"]), gtxt])
    return md_table(header, rows, ["l", "r", "r", "r", "r", "l"])


def _autok_table(result: dict) -> str:
    header = ["data", "best fixed K (acc.)", "auto: BIC over the sweep", "held-out log-lik.",
              "held-out, 1-SE rule", "auto: BIC 1-10 (default)"]
    rows = []
    for name, s in result["summary"].items():
        if not s.get("sweep") or "best_k" not in s:
            continue
        best_k = str(s["best_k"])

        def cell(key: str, s: dict = s) -> str:
            a = s["auto"].get(key)
            if a is None:
                return "—"
            txt = f"{pm(a['acc_nc'])} (K: {_k_summary(a['ks'])})"
            if "best_fixed_same_seeds" in a:
                txt += (f"; best fixed on these {a['n_seeds']} seeds "
                        f"{a['best_fixed_same_seeds']:.3f}")
            return txt

        auto_default = s["table"].get("em_auto")
        rows.append([
            name, f"K = {best_k}: {pm(s['sweep'][best_k]['acc_nc'])}", cell("bic"),
            cell("heldout"), cell("heldout_1se"),
            "—" if auto_default is None else
            f"{pm(auto_default['acc_nc'])} (K: {_k_summary(auto_default['k'])})",
        ])
    return md_table(header, rows, ["l", "r", "r", "r", "r", "r"])


def _sweep_table(result: dict) -> str:
    names = [n for n, s in result["summary"].items() if s.get("sweep")]
    header = ["K"] + [f"{n} acc. non-conf." for n in names] + [f"{n} fit (s)" for n in names]
    rows = []
    seeds = result["settings"]["seeds"]

    def acc(n: str, k: Any) -> str:
        e = result["summary"][n]["sweep"].get(str(k))
        if e is None:
            return "refused (too few effective rows)"
        short = e.get("n_seeds", seeds) < seeds
        return pm(e["acc_nc"]) + (f" ({e['n_seeds']} seeds; refused on the others)"
                                  if short else "")

    def secs(n: str, k: Any) -> str:
        e = result["summary"][n]["sweep"].get(str(k))
        return "—" if e is None else fmt_s(e["time_s"])

    for k in result["settings"]["ks"]:
        rows.append([str(k)] + [acc(n, k) for n in names] + [secs(n, k) for n in names])
    return md_table(header, rows, ["r"] * len(header))


def render_markdown(result: dict, img_prefix: str | None = None) -> str:
    """This benchmark's section (docs/benchmarks.md; with ``img_prefix``, docs/results.md)."""
    st = result["settings"]
    parts = [
        f"{st['seeds']} seeds, mean ± sd of the accuracy on the non-confounded and the "
        "confounded test sets (1000 rows each). Every method sees the same data per seed. "
        "*gate verdicts*: status of `cm.diagnose(model, X)` per seed, the check "
        "`MechanismLearner(check=\"warn\")` runs before training (pass / warn / fail; the "
        "failed checks in brackets). Deconfounded datasets: n/2 draws per class."
    ]
    for name in result["summary"]:
        spec = DATASETS[name]
        parts.append(f"**{spec['title']}**, downstream `{spec['model']}`.")
        parts.append(_table(result, name))
    if any(s.get("sweep") for s in result["summary"].values()):
        parts.append(
            "**Automatic K.** One CW-GMM per K on the same causal weights (per seed), "
            "downstream accuracy on the non-confounded test; *auto*: "
            "`n_components=\"auto\", n_components_range=<the sweep>` (weighted BIC on the "
            "Kish ESS); *held-out*: `cm.heldout_loglik(model, X, n_components=<the sweep>, "
            f"n_splits=3)` on the first {st['heldout_seeds']} seeds, K with the best held-out "
            "weighted log-likelihood, or the smallest K within one paired SE of it; the "
            "accuracy is that of the sweep's fit at the chosen K. Target: auto within 1 pp of "
            "the best fixed K."
        )
        parts.append(_autok_table(result))
        if img_prefix is not None:
            parts.append(f"![accuracy versus K]({img_prefix}/{FIGURE})")
        parts.append(_sweep_table(result))
    parts.append(f"Total wall time of this benchmark: {result['wall_s'] / 60:.1f} min.")
    return "\n\n".join(parts)


def results_section(result: dict, img_prefix: str = "img") -> str:
    return render_markdown(result, img_prefix=img_prefix)


def write_figures(result: dict, img_dir: Path) -> list[Path]:
    """Accuracy versus K with the automatic choices marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, s in result["summary"].items() if s.get("sweep")]
    if not names:
        return []
    fig, axes = plt.subplots(1, len(names), figsize=(4.4 * len(names), 3.3), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        s = result["summary"][name]
        ks = [int(k) for k in s["sweep"]]
        mean = np.array([s["sweep"][str(k)]["acc_nc"]["mean"] for k in ks])
        sd = np.array([s["sweep"][str(k)]["acc_nc"]["sd"] for k in ks])
        ax.errorbar(ks, mean, yerr=sd, marker="o", ms=3, capsize=2, lw=1, label="fixed K")
        t = s["table"]
        for key, colour, label in (("classical", "C3", "classical"), ("oracle", "k", "oracle")):
            if key in t:
                ax.axhline(t[key]["acc_nc"]["mean"], color=colour, ls=":", lw=1, label=label)
        a = s["auto"].get("bic")
        if a:
            ks_auto = np.array(a["ks"])
            acc = a["acc_nc"]["mean"]
            ax.scatter([np.median(ks_auto)], [acc], marker="*", s=140, color="C2", zorder=5,
                       label=f"auto (BIC), K {_k_summary(a['ks'])}")
        h = s["auto"].get("heldout")
        if h:
            ax.scatter([np.median(h["ks"])], [h["acc_nc"]["mean"]], marker="D", s=40,
                       color="C1", zorder=5, label=f"held-out, K {_k_summary(h['ks'])}")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(ks)
        ax.set_xticklabels([str(k) for k in ks], fontsize=7)
        ax.set_xlabel("K (components per do value)")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    axes[0][0].set_ylabel("accuracy, non-confounded test")
    fig.tight_layout()
    img_dir.mkdir(parents=True, exist_ok=True)
    path = img_dir / FIGURE
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return [path]


# =============================================================================== results page
PAGE_HEADER = """# Results

Generated by the benchmark scripts `benchmarks/bench_paper.py`, `bench_continuous.py`,
`bench_scale.py` and `bench_accuracy.py` (each run rewrites this page from the JSON results in `benchmarks/results/`
and its own figures in `docs/img/`); do not edit by hand. `make bench` runs them all. Every
experiment runs every method, the oracle included, on the same data in the same run, with
10 seeds (mean ± sd) unless stated. Timings come from a shared 2-core machine, one thread.
"""

GUIDE = """## Which estimator when

* **The default, `strategy="auto"`, chooses and says why** (`strategy_reason_`): for a
  discrete cause the paper's weighting CW-GMM where its weights pass the calibrated checks,
  the plug-in front door where they fail and the plug-in's conditionals reproduce the data,
  and never the plug-in where positivity fails (it would extrapolate `p(x | y', z)`); for a
  continuous cause the plug-in wherever its conditionals reproduce the data
  (docs/estimators.md).
* **Discrete cause, continuous or low-cardinality mechanism** (the 2-D classification, the
  digits): the weighting CW-GMM (`strategy="weighting"`, what `"auto"` takes here). With
  two or a few do values every weight column has hundreds of effective rows and the
  weighting matches the oracle ({cls_line}). K matters little for the downstream model;
  `n_components="auto"` is safe. The plug-in sampler is as good on these data but needs
  a model of x given (y, z) that is easy here and hard in general (images, step functions of
  z). On the digits its gate fails (`plugin_quantiles`), and rightly by the calibration
  suite's definition: its Gaussian conditionals smear the clipped pixels, so its draws'
  marginal CDFs are 0.08-0.11 off the truth's where the weighting's are 0.04-0.06 (seed 0,
  against the oracle rows); the 3-NN downstream does not see it, a model of the pixel
  values would.
* **Continuous cause** (a do-grid): the weights p(z | y) / p(z | y_n) have infinite variance
  when the mechanism is strongly tied to the cause (corr(y, z) ≈ 0.9 in the paper's
  regression: infinite variance at every grid value, k̂ > 0.7 at most) and the weighted
  estimates stay biased towards
  the confounded regression even at n = 100 000 ({reg_line}). PSIS smoothing lowers the
  variance and raises the bias; pooling the grid in a linear MSM
  (`causal_mixtures.shared.fit_linear_msm`) is OLS through the same per-value means and
  changes nothing on average. The **plug-in** front-door sampler
  (`strategy="plugin"`, which `"auto"` takes for a continuous cause) is unbiased when
  p(z | y) and p(x | y', z) can be modelled (here: Gaussian, `plugin_components=1`) and
  its sd is at the front-door bound.
* **Check the fit before training on it**: `cm.diagnose(model)` (the check
  `MechanismLearner(check=...)` runs) is calibrated against ground truth on a suite of
  simulated problems (docs/diagnostics.md): a *fail* says which interventional mean or
  shape is wrong or uncertain, and by how much{gate_line}.
* **Use the MSM** for what it is: a parametric summary of E[x | do(y)] with standard
  errors and a value at every y (interpolation between grid values), on top of weights
  that are already good.
* **PSIS only for heavy tails.** With a discrete mechanism the weights take a handful of
  bounded values (k̂ ≈ −5); `psis_smooth` leaves such weights (k̂ ≤ 0) unchanged, since
  smoothing them would only distort them{psis_line}. Use `weight_smoothing="psis"` when
  k̂ > 0.7 and a little bias is an acceptable price for variance.
"""


def _guide(results: dict) -> str:
    cls_line = "see the tables above"
    paper = results.get("bench_paper", {}).get("summary", {})
    t = paper.get("classification", {}).get("table", {})
    if "em" in t and "oracle" in t:
        cls_line = (f"classification: CW-GMM {t['em']['acc_nc']['mean']:.3f} vs oracle "
                    f"{t['oracle']['acc_nc']['mean']:.3f}")
        td = paper.get("digits", {}).get("table", {})
        if "em" in td and "oracle" in td:
            cls_line += (f"; digits {td['em']['acc_nc']['mean']:.3f} vs "
                         f"{td['oracle']['acc_nc']['mean']:.3f}")
    reg_line = "see the continuous-cause section"
    cont = results.get("bench_continuous", {}).get("summary", [])
    rows = {(s["n"], s["method"]): s for s in cont}
    bits = []
    for n in sorted({s["n"] for s in cont}):
        w, p = rows.get((n, "weighting")), rows.get((n, "plugin"))
        if w and p:
            bits.append(f"n = {n}: weighting {w['mean']:.2f}, plug-in {p['mean']:.2f}")
    if bits:
        reg_line = "true slope 1.5; " + "; ".join(bits)
    gate_line = ""
    w = rows.get((5000, "weighting"))
    if w and w.get("gate"):
        let = sum(v for k, v in w["gate"].items() if k != "fail")
        gate_line = (f" (on the regression at n = 5000 it failed "
                     f"{w['gate'].get('fail', 0)} of {w['n_seeds']} weighting fits, which were "
                     f"{100 * w['rel_bias']:+.0f} % off on average, and let {let} through)")
    psis_line = ""
    td = paper.get("digits", {}).get("table", {})
    if "em" in td and "psis" in td:
        psis_line = (f" (digits: {td['psis']['acc_nc']['mean']:.3f} ± "
                     f"{td['psis']['acc_nc']['sd']:.3f} with weight_smoothing='psis', "
                     f"{td['em']['acc_nc']['mean']:.3f} ± {td['em']['acc_nc']['sd']:.3f} "
                     "without)")
    verdicts = []
    for name, label in (("classification", "2-D classification"), ("digits", "digits")):
        e = paper.get(name, {}).get("table", {}).get("em")
        if e and e.get("gate"):
            verdicts.append(f"{label}: " + ", ".join(
                f"{k} {v}" for k, v in sorted(e["gate"].items())) + " of "
                f"{e['acc_nc']['n_seeds']} weighting fits that match the oracle")
    if verdicts:
        gate_line += "; " + "; ".join(verdicts)
    return GUIDE.format(cls_line=cls_line, reg_line=reg_line, gate_line=gate_line,
                        psis_line=psis_line)


def _goal_rows(results: dict) -> list[list[str]]:
    rows = []
    for name in PAGE_ORDER:
        if name == "bench_accuracy":  # issue 13's targets: a table in its own section
            continue
        for g in results.get(name, {}).get("goals", []):
            rows.append([g["target"], g["measured"], "PASS" if g["passed"] else "FAIL",
                         f"`{name}`"])
    return rows


def _kept_goal_rows(old: dict[str, str], results: dict) -> list[list[str]]:
    """Rows of the current targets table from benchmarks whose JSON is not here."""
    rows = []
    for line in old.get("Targets (issue 6)", "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 4 and cells[3].startswith("`bench_"):
            if cells[3].strip("`") in PAGE_ORDER and cells[3].strip("`") not in results:
                rows.append(cells)
    return rows


def write_results_page(page: Path = RESULTS_PAGE, current: dict | None = None) -> str:
    """Rebuild docs/results.md from the JSON results (``current`` replaces its own JSON) and
    write ``current``'s figures into the page's ``img/`` folder. Returns the text."""
    page = Path(page)
    img_dir = page.parent / "img"
    results: dict[str, dict] = {}
    for name in PAGE_ORDER:
        if current is not None and current.get("name") == name:
            results[name] = current
            continue
        path = RESULTS_DIR / f"{name}.json"
        if path.exists():
            loaded = json.loads(path.read_text())
            if "markdown" in loaded:  # else a run in progress: keep the page's section
                results[name] = loaded
    modules = {name: load_bench_module(BENCH_DIR / f"{name}.py") for name in results}
    if current is not None:
        modules[current["name"]].write_figures(current, img_dir)
    prefix = os.path.relpath(img_dir, page.parent)
    sections = [PAGE_HEADER]
    old = page_sections(page)
    goal_rows = _goal_rows(results) + _kept_goal_rows(old, results)
    if goal_rows:
        sections.append("## Targets (issue 6)\n\n" + md_table(
            ["target", "measured", "verdict", "from"], goal_rows, ["l", "l", "l", "l"]) + "\n")
    for name in PAGE_ORDER:
        if name not in results:
            sections.append(kept_section(old, BENCH_DIR / f"{name}.py"))
            continue
        r = results[name]
        quick = " **(quick run: not the reference configuration)**" if r.get("quick") else ""
        try:
            body = modules[name].results_section(r, img_prefix=prefix)
        except (KeyError, TypeError, ValueError):  # a partial JSON (a run in progress)
            sections.append(kept_section(old, BENCH_DIR / f"{name}.py"))
            continue
        sections.append(
            f"## {r.get('title', name)}\n\nRegenerate: `{r.get('command')}`{quick}.\n\n"
            f"{body}\n\n"
            f"<details><summary>Machine</summary>\n\n{render_machine(r.get('machine', {}))}"
            "\n\n</details>\n"
        )
    sections.append(_guide(results))
    text = "\n".join(sections)
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text)
    return text


# =============================================================================== main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_SEEDS} seeds, K in {QUICK_KS}, no SVI/held-out; no results "
                        "page unless --results-page is given")
    p.add_argument("--seeds", type=int, default=None, help=f"seeds ({DEFAULT_SEEDS})")
    p.add_argument("--ks", type=int, nargs="+", default=None, help=f"K sweep ({KS})")
    p.add_argument("--datasets", nargs="+", choices=tuple(DATASETS), default=tuple(DATASETS))
    p.add_argument("--n", type=int, default=None,
                   help="training rows (default: 5000 classification, 2000 digits)")
    p.add_argument("--svi-seeds", type=int, default=2,
                   help="SVI fits (classification only; ~20 s each) on this many seeds")
    p.add_argument("--heldout-seeds", type=int, default=5,
                   help="held-out log-likelihood K choice on this many seeds")
    add_output_args(p, NAME)
    return p


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns (and writes to ``--out``) the result dictionary."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    t_start = time.perf_counter()
    threads = start(args)
    seeds = args.seeds or (QUICK_SEEDS if args.quick else DEFAULT_SEEDS)
    ks = tuple(args.ks or (QUICK_KS if args.quick else KS))
    svi_seeds = 0 if args.quick and "--svi-seeds" not in argv else args.svi_seeds
    heldout_seeds = 0 if args.quick and "--heldout-seeds" not in argv else args.heldout_seeds
    result: dict[str, Any] = {
        "name": NAME, "title": TITLE, "command": command_line(NAME, argv), "argv": argv,
        "machine": machine_info() | {"threads": threads}, "quick": bool(args.quick),
        "settings": {"seeds": seeds, "ks": list(ks), "datasets": list(args.datasets),
                     "n": args.n, "svi_seeds": svi_seeds, "heldout_seeds": heldout_seeds},
        "runs": [],
    }
    for name in args.datasets:
        t = time.perf_counter()
        for seed in range(seeds):
            run = run_seed(name, seed, n=args.n, ks=ks,
                           svi=name == "classification" and seed < svi_seeds,
                           heldout=seed < heldout_seeds)
            result["runs"].append(run)
            _log(f"{name} seed {seed}: {time.perf_counter() - t:.0f} s; "
                 + ", ".join(f"{m} {v['acc_nc']:.3f}" for m, v in run["table"].items()))
            write_json(args.out, result)
    summarise(result)
    result["wall_s"] = time.perf_counter() - t_start
    result["markdown"] = render_markdown(result)
    finish(result, args)
    return result


if __name__ == "__main__":
    main()
