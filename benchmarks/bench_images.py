"""Images in, deconfounded images out: the semi-synthetic head-CT benchmark.

``cm.datasets.make_head_ct`` (64 × 64 phantoms, six lesion classes as imbalanced as the
paper's 2093 / 52 / 171 / 56 / 21 / 18, the lesion mask as the mechanism, an unmeasured
scanner site as the confounder), ``--seeds`` seeds (5), every method on the same data per
seed, the oracle in the same run, a small CNN (torch, in this file) trained on each
training set:

* **classical**: the confounded training images as they are;
* **classical, class-weighted**: the same with a loss weighted by inverse class frequency
  (separates the class imbalance from the confounding);
* **causal bootstrap**: ``CausalBootstrap`` resampling of the observed images with the
  front-door weights (mask embedded by 8 principal components, classifier weights);
* **CW-GMM**: ``CausalGaussianMixture(representation=PCA(512), n_components="n/20",
  covariance_type="diag")``: mixtures fitted in the PCA space, draws mapped back and clipped;
* **plug-in** (``strategy="plugin"``) where it applies: it needs a mixture regression of the
  representation on (class, embedded mask); tried at the benchmark's size and reported as
  not applicable when it does not fit within the time limit;
* **oracle**: training images simulated from the SCM under ``do(y)``.

Accuracy, macro-F1 and weighted-F1 on the non-confounded test set (``Y`` uniform and
independent of the site, then ``do(Y)``) and on the confounded one; the deconfounding time
and its peak memory (RSS above the start, in a forked child); the gate's verdicts; a
figure of deconfounded sample images next to real ones per class (``docs/img``).

Run ``python benchmarks/bench_images.py --help``; ``make bench`` runs it through
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
    REPO,
    PeakMemory,
    fmt_s,
    machine_info,
    md_table,
    run_forked,
    write_json,
)
from bench_paper import command_line

NAME = "bench_images"
TITLE = "Images: semi-synthetic head CT (64 × 64, six imbalanced classes)"
FIGURE = "images_samples.png"
DEFAULT_SEEDS = 5
QUICK_SEEDS = 1
TARGET_PP = 0.02  # mechanism learning within 2 pp macro-F1 of the oracle
METHODS = ("classical", "classical_weighted", "bootstrap", "cwgmm", "plugin", "oracle")
LABELS = {
    "classical": "classical (confounded images)",
    "classical_weighted": "classical, class-weighted loss",
    "bootstrap": "causal bootstrap",
    "cwgmm": "CW-GMM in PCA({pca}), K = {k_rule} per class, diag",
    "plugin": "plug-in front door (PCA space)",
    "oracle": "oracle (images simulated under do(y))",
}
METRICS = ("acc", "macro_f1", "weighted_f1")


def _log(msg: str) -> None:
    print(f"[{NAME}] {msg}", file=sys.stderr, flush=True)


# =============================================================================== the CNN
def train_cnn(
    X: np.ndarray,
    y: np.ndarray,
    *,
    size: int,
    epochs: int,
    seed: int,
    class_weight: np.ndarray | None = None,
):
    """A small CNN (3 strided convolutions, 8-16-32 channels, one linear layer), Adam,
    ``epochs`` passes, batches of 64; returns a predict function."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # benchmark process only: the package never seeds torch globally
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 5, stride=2, padding=2),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * (size // 8) ** 2, 6),
    )
    Xt = torch.tensor(X, dtype=torch.float32).reshape(-1, 1, size, size)
    yt = torch.tensor(y, dtype=torch.long)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    wt = None if class_weight is None else torch.tensor(class_weight, dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=wt)
    n = len(yt)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, 64):
            idx = order[start : start + 64]
            opt.zero_grad()
            loss_fn(net(Xt[idx]), yt[idx]).backward()
            opt.step()
    net.eval()

    def predict(Xe: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = net(torch.tensor(Xe, dtype=torch.float32).reshape(-1, 1, size, size))
        return out.argmax(1).numpy()

    return predict


def scores(predict, d: Any) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    out = {}
    for key, (Xe, ye) in {
        "nc": (d.X_test, d.y_test),
        "conf": (d.X_test_confounded, d.y_test_confounded),
    }.items():
        p = predict(Xe)
        out[f"acc_{key}"] = float(accuracy_score(ye, p))
        out[f"macro_f1_{key}"] = float(
            f1_score(ye, p, average="macro", labels=range(6), zero_division=0)
        )
        out[f"weighted_f1_{key}"] = float(
            f1_score(ye, p, average="weighted", labels=range(6), zero_division=0)
        )
    return out


def gate(model: Any) -> dict:
    import causal_mixtures as cm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = cm.diagnose(model)
    return {
        "status": rep.status,
        "failed": [c.label for c in rep.failed],
        "warned": sorted({c.name for c in rep.warned}),
    }


# =============================================================================== deconfounding
def deconfound(method: str, d: Any, seed: int, pca: int, k_rule: str) -> dict:
    """One deconfounding step (fit and draw), timed, its peak memory measured; runs in a
    forked child (:func:`_common.run_forked`) so the peak is its own."""
    from sklearn.decomposition import PCA

    import causal_mixtures as cm

    def make() -> Any:
        if method == "bootstrap":
            return cm.CausalBootstrap(random_state=seed, positivity="warn")
        return cm.CausalGaussianMixture(
            n_components=k_rule,
            covariance_type="diag",
            random_state=seed,
            representation=PCA(n_components=pca, svd_solver="randomized", random_state=seed),
            strategy="plugin" if method == "plugin" else "weighting",
            plugin_components=2,
            positivity="warn",
        )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            model = make()
            Xn, yn = model.fit_resample(d.X, d.y, mechanism=d.mechanism)
            elapsed = time.perf_counter() - t0
    out = {
        "time_s": elapsed,
        "peak_mib": mem.peak_mib,
        "warnings": sorted({f"{w.category.__name__}: {str(w.message)[:90]}" for w in caught}),
        "draws": _save_draws(Xn, yn),
        "ess": [float(e) for e in model.causal_weights_.ess],
        "gate": gate(model),
    }
    if method != "bootstrap":
        out["k"] = np.asarray(model.n_components_).tolist()
        out["n_representation_features"] = int(model.n_representation_features_)
    return out


def _save_draws(X: np.ndarray, y: np.ndarray) -> str:
    """The draws go back to the parent through a file (a JSON pipe of 10^7 floats is slow)."""
    import tempfile

    fd, path = tempfile.mkstemp(prefix="bench_images_", suffix=".npz")
    with open(fd, "wb") as fh:
        np.savez(fh, X=np.asarray(X, dtype=np.float32), y=np.asarray(y))
    return path


def _load_draws(path: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as f:
        X, y = f["X"], f["y"]
    Path(path).unlink(missing_ok=True)
    return X, y


def run_seed(
    seed: int,
    *,
    n: int,
    n_test: int,
    epochs: int,
    pca: int,
    k_rule: str,
    plugin: bool,
    plugin_limit: float,
    keep_samples: bool,
) -> dict:
    import causal_mixtures as cm

    t = time.perf_counter()
    d = cm.datasets.make_head_ct(n, n_test=n_test, random_state=seed)
    size = d.images_shape[0]
    out: dict[str, Any] = {
        "seed": seed,
        "n": n,
        "gen_s": time.perf_counter() - t,
        "size": size,
        "class_counts": np.bincount(d.y, minlength=6).tolist(),
        "table": {},
    }
    table = out["table"]

    def fit_score(method: str, X: np.ndarray, y: np.ndarray, **kw: Any) -> None:
        t0 = time.perf_counter()
        predict = train_cnn(X, y, size=size, epochs=epochs, seed=seed, **kw)
        table.setdefault(method, {}).update(scores(predict, d))
        table[method]["cnn_s"] = time.perf_counter() - t0

    fit_score("classical", d.X, d.y)
    counts = np.bincount(d.y, minlength=6).astype(float)
    fit_score("classical_weighted", d.X, d.y, class_weight=counts.sum() / (6 * counts))
    methods = ["bootstrap", "cwgmm"] + (["plugin"] if plugin else [])
    for method in methods:
        try:
            res = run_forked(
                deconfound,
                method,
                d,
                seed,
                pca,
                k_rule,
                timeout=plugin_limit if method == "plugin" else None,
            )
        except Exception as exc:  # noqa: BLE001 - recorded in the table (plug-in: timeout)
            table[method] = {"error": str(exc).strip().splitlines()[-1][:300]}
            continue
        Xn, yn = _load_draws(res.pop("draws"))
        table[method] = res
        fit_score(method, Xn, yn)
        if keep_samples and method == "cwgmm":
            out["samples"] = {int(c): Xn[yn == c][:4].tolist() for c in range(6)}
            out["real"] = {
                int(c): d.X_test[d.y_test == c][:4].astype(np.float32).tolist() for c in range(6)
            }
    fit_score("oracle", d.X_oracle, d.y_oracle)
    return out


# =============================================================================== summary
def stats(values: list[float]) -> dict:
    a = np.asarray(values, float)
    return {
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        "n_seeds": len(a),
    }


def pm(st: dict | None) -> str:
    return "—" if not st else f"{st['mean']:.3f} ± {st['sd']:.3f}"


def summarise(result: dict) -> None:
    s: dict[str, Any] = {}
    for method in METHODS:
        rows = [r["table"][method] for r in result["runs"] if method in r["table"]]
        ok = [r for r in rows if "error" not in r]
        if not rows:
            continue
        e: dict[str, Any] = {
            "n_ok": len(ok),
            "errors": sorted({r["error"] for r in rows if "error" in r}),
        }
        for m in METRICS:
            for key in ("nc", "conf"):
                if ok:
                    e[f"{m}_{key}"] = stats([r[f"{m}_{key}"] for r in ok])
        for k in ("time_s", "peak_mib", "cnn_s"):
            vals = [r[k] for r in ok if k in r]
            if vals:
                e[k] = {"mean": float(np.mean(vals)), "max": float(np.max(vals))}
        gates = [r["gate"]["status"] for r in ok if "gate" in r]
        if gates:
            e["gate"] = {g: gates.count(g) for g in sorted(set(gates))}
            e["failed"] = sorted({c.split("[")[0] for r in ok for c in r["gate"]["failed"]})
        if ok and "k" in ok[0]:
            e["k"] = ok[0]["k"]
            e["n_representation_features"] = ok[0]["n_representation_features"]
        s[method] = e
    result["summary"] = s
    goals = []
    if {"cwgmm", "oracle", "classical"} <= set(s) and s["cwgmm"]["n_ok"]:
        ml = s["cwgmm"]["macro_f1_nc"]["mean"]
        orc = s["oracle"]["macro_f1_nc"]["mean"]
        cls = s["classical"]["macro_f1_nc"]["mean"]
        goals.append(
            {
                "target": "images: CW-GMM within 2 pp macro-F1 of the oracle and clearly above "
                "classical (non-confounded test)",
                "measured": f"{ml:.3f}; oracle {orc:.3f} ({100 * (ml - orc):+.1f} pp); classical "
                f"{cls:.3f} ({100 * (ml - cls):+.1f} pp)",
                "passed": bool(ml >= orc - TARGET_PP and ml >= cls + 0.10),
            }
        )
    if "cwgmm" in s and "time_s" in s["cwgmm"]:
        goals.append(
            {
                "target": "images: deconfounding (CW-GMM fit + draws) under 60 s",
                "measured": f"{s['cwgmm']['time_s']['max']:.1f} s (slowest seed), peak "
                f"{s['cwgmm']['peak_mib']['max']:.0f} MiB",
                "passed": bool(s["cwgmm"]["time_s"]["max"] < 60),
            }
        )
    result["goals"] = goals


def render_markdown(result: dict, img_prefix: str | None = "img") -> str:
    st = result["settings"]
    s = result["summary"]
    header = [
        "training data",
        "macro-F1 non-conf.",
        "acc. non-conf.",
        "weighted-F1 non-conf.",
        "macro-F1 conf.",
        "acc. conf.",
        "deconfounding (s)",
        "peak (MiB)",
        "gate",
    ]
    rows = []
    for method in METHODS:
        e = s.get(method)
        if e is None:
            continue
        label = LABELS[method].format(pca=st["pca"], k_rule=st.get("k_rule", "n/20"))
        if e["n_ok"] == 0:
            rows.append([label, "not applicable: " + "; ".join(e["errors"])[:160]] + [""] * 7)
            continue
        gtxt = "—" if "gate" not in e else ", ".join(f"{k} {v}" for k, v in e["gate"].items())
        if e.get("failed"):
            gtxt += f" ({', '.join(e['failed'])})"
        rows.append(
            [
                label,
                pm(e["macro_f1_nc"]),
                pm(e["acc_nc"]),
                pm(e["weighted_f1_nc"]),
                pm(e["macro_f1_conf"]),
                pm(e["acc_conf"]),
                fmt_s(e["time_s"]["mean"]) if "time_s" in e else "—",
                f"{e['peak_mib']['max']:.0f}" if "peak_mib" in e else "—",
                gtxt,
            ]
        )
    counts = [r["class_counts"] for r in result["runs"]]
    parts = [
        f"{st['seeds']} seeds, mean ± sd. `make_head_ct({st['n']}, n_test={st['n_test']})`: "
        f"class counts of the confounded training set {counts[0]} (seed 0); test sets of "
        f"{st['n_test']} images (non-confounded: classes uniform, independent of the site). "
        f"Downstream: a 3-layer CNN, {st['epochs']} epochs, trained on each training set "
        "(deconfounded sets: as many images as the training set, balanced classes). "
        "*Deconfounding*: fit and draws of the resampler (forked child, one thread), "
        "*peak*: its RSS above the start. *gate*: `cm.diagnose(model)` per seed.",
        md_table(header, rows, ["l"] + ["r"] * 7 + ["l"]),
    ]
    cw = s.get("cwgmm", {})
    if "k" in cw:
        parts.append(
            f"CW-GMM: {cw['n_representation_features']} PCA dimensions, K per class "
            f'{cw["k"]} (seed 0; rule `n_components="{st.get("k_rule")}"`).'
        )
    if result.get("goals"):
        parts.append(
            md_table(
                ["target", "measured", "verdict"],
                [
                    [g["target"], g["measured"], "PASS" if g["passed"] else "FAIL"]
                    for g in result["goals"]
                ],
                ["l", "l", "l"],
            )
        )
    if img_prefix is not None and result.get("figure"):
        parts.append(f"![deconfounded samples next to real images]({img_prefix}/{FIGURE})")
    parts.append(f"Total wall time of this benchmark: {result['wall_s'] / 60:.1f} min.")
    return "\n\n".join(parts)


def write_figure(result: dict, img_dir: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = next((r for r in result["runs"] if "samples" in r), None)
    if run is None:
        return None
    import causal_mixtures as cm

    names = cm.datasets.make_head_ct.__globals__["CT_CLASS_NAMES"]
    size = int(run["size"])
    fig, axes = plt.subplots(4, 6, figsize=(9, 6.4))
    for c in range(6):
        real = run["real"].get(str(c), run["real"].get(c, []))
        samp = run["samples"].get(str(c), run["samples"].get(c, []))
        for r in range(4):
            ax = axes[r, c]
            src = real if r < 2 else samp
            i = r % 2
            if i < len(src):
                ax.imshow(np.asarray(src[i]).reshape(size, size), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{c}: {names[c]}", fontsize=7)
        axes[0, 0].set_ylabel("real (do)", fontsize=7)
        axes[2, 0].set_ylabel("CW-GMM draws", fontsize=7)
    fig.tight_layout()
    img_dir.mkdir(parents=True, exist_ok=True)
    path = img_dir / FIGURE
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


# =============================================================================== main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help=f"{QUICK_SEEDS} seed, n = 1200, 3 epochs, no plug-in"
    )
    p.add_argument("--seeds", type=int, default=None, help=f"seeds ({DEFAULT_SEEDS})")
    p.add_argument("--n", type=int, default=None, help="training images (2400)")
    p.add_argument("--n-test", type=int, default=None, help="images per test set (1200)")
    p.add_argument("--epochs", type=int, default=None, help="CNN epochs (8)")
    p.add_argument("--pca", type=int, default=512, help="PCA components of the CW-GMM (512)")
    p.add_argument("--k-rule", default="n/20", help="n_components rule of the CW-GMM (n/20)")
    p.add_argument("--no-plugin", action="store_true", help="skip the plug-in")
    p.add_argument(
        "--plugin-limit",
        type=float,
        default=120.0,
        help="seconds the plug-in may take before it is reported as not applicable",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / f"{NAME}.json")
    p.add_argument("--no-docs", action="store_true")
    p.add_argument("--docs", type=Path, default=None)
    p.add_argument("--img-dir", type=Path, default=REPO / "docs" / "img")
    p.add_argument("--no-figure", action="store_true")
    return p


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    t_start = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)
    from _common import limit_threads

    threads = limit_threads(args.threads)
    seeds = args.seeds or (QUICK_SEEDS if args.quick else DEFAULT_SEEDS)
    n = args.n or (1200 if args.quick else 2400)
    n_test = args.n_test or (600 if args.quick else 1200)
    epochs = args.epochs or (3 if args.quick else 8)
    plugin = not (args.no_plugin or args.quick)
    result: dict[str, Any] = {
        "name": NAME,
        "title": TITLE,
        "command": command_line(NAME, argv),
        "machine": machine_info() | {"threads": threads},
        "quick": bool(args.quick),
        "settings": {
            "seeds": seeds,
            "n": n,
            "n_test": n_test,
            "epochs": epochs,
            "pca": args.pca,
            "k_rule": args.k_rule,
            "plugin": plugin,
            "plugin_limit_s": args.plugin_limit,
        },
        "runs": [],
    }
    for seed in range(seeds):
        run = run_seed(
            seed,
            n=n,
            n_test=n_test,
            epochs=epochs,
            pca=args.pca,
            k_rule=args.k_rule,
            plugin=plugin and seed == 0,
            plugin_limit=args.plugin_limit,
            keep_samples=seed == 0,
        )
        result["runs"].append(run)
        _log(
            f"seed {seed}: {time.perf_counter() - t_start:.0f} s; "
            + ", ".join(
                f"{m} {v['macro_f1_nc']:.3f}" for m, v in run["table"].items() if "macro_f1_nc" in v
            )
        )
        write_json(args.out, result)
    summarise(result)
    if not args.no_figure:
        result["figure"] = str(write_figure(result, args.img_dir))
    for r in result["runs"]:  # the pixels stay out of the JSON
        r.pop("samples", None)
        r.pop("real", None)
    result["wall_s"] = time.perf_counter() - t_start
    result["markdown"] = render_markdown(result)
    write_json(args.out, result)
    if not args.no_docs:
        from _common import DOCS_FILE, render_docs

        render_docs(Path(args.docs) if args.docs else DOCS_FILE)
    _log(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
