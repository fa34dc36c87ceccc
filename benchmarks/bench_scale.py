"""The paper's MNIST configuration at its scale: time and memory of the deconfounding step.

The paper's background-MNIST experiment used 100 features (3×3 max-pooled 28×28 images),
two classes, diagonal CW-GMMs with K = 300 per class, about 9000 training rows. MNIST cannot
be downloaded here, so the data have the same shape: ``make_background_digits`` (8×8 digits
2 and 6 with the confounded background) upsampled to 10 × 10 (bilinear), every image
shifted by a random integer offset in {-1, 0, 1}² and given N(0, 0.5²) pixel noise, clipped
to [0, 16] (:func:`upsample_digits`).

**Measured block** (the whole deconfounding step): ``CausalGaussianMixture(
n_components=300, covariance_type="diag").fit(X, y, mechanism=z)`` (front-door weights from
the discrete mechanism, weighted k-means initialisation and weighted EM for both classes)
and ``resample(n_samples=10_000)`` (20 000 draws). Wall time (``time.perf_counter``) and
peak resident memory (``VmHWM`` after resetting it, :class:`_common.PeakMemory`; reported
both as the process's absolute peak and as the increase over the RSS before the block).
Breakdown: the estimator's calls to ``causal_weights``, ``KMeans.fit`` and ``weighted_em``
are timed by wrappers installed in the benchmark child only (library code is untouched);
*other* is the rest of ``fit`` (validation, initial parameters from the k-means labels,
storing the result). Each configuration runs in a child process forked from this one, with
``--threads`` torch/BLAS threads (1 and 2: the machine has 2 cores). Target (issue 6):
under 30 s and under 2 GB.

After the timed block the child also scores a KNN (k = 3) trained on the draws, on the
observational rows and on non-confounded rows (oracle), on the non-confounded and the
confounded test sets (upsampled the same way): one seed, a sanity check of the configuration,
not part of the timing.

**Fit time versus n**: the same step at several n (K = 300 diag, 100 features), and the 2-D
classification (``make_classification_2d(n)``, K = 6 full, 2 do values, ``density="auto"``:
a KDE of the mechanism) at n = 1e3 … 1e5, one thread.

Run ``python benchmarks/bench_scale.py --help``; ``make bench`` runs it through
``run_all.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    ChildError,
    PeakMemory,
    fmt_n,
    fmt_s,
    limit_threads,
    machine_info,
    md_table,
    run_forked,
    write_json,
)
from bench_paper import add_output_args, command_line, finish

NAME = "bench_scale"
TITLE = "The paper's MNIST configuration at its scale (100 features, K = 300, 9000 rows)"
N_MNIST = 9000
K_MNIST = 300
DRAWS = 20_000
TIME_TARGET_S = 30.0
MEM_TARGET_MIB = 2048.0
DIGIT_SIZES = (2250, 4500, 9000, 18000)
QUICK_DIGIT_SIZES = ()
CLASS_SIZES = (1000, 10_000, 100_000)
QUICK_CLASS_SIZES = (1000, 10_000)
FIGURE = "scale_fit_time.png"


def _log(msg: str) -> None:
    print(f"[{NAME}] {msg}", file=sys.stderr, flush=True)


# =============================================================================== data
def upsample_digits(X: np.ndarray, rng: np.random.Generator, *, size: int = 10,
                    max_shift: int = 1, noise: float = 0.5) -> np.ndarray:
    """8×8 images (rows of 64) to ``size × size`` (rows of ``size**2``): bilinear zoom, a
    random integer shift per image in ``[-max_shift, max_shift]²`` (wrapping; the borders
    are background) and N(0, noise²) pixel noise, clipped to [0, 16]."""
    from scipy.ndimage import zoom

    imgs = zoom(X.reshape(-1, 8, 8), (1, size / 8, size / 8), order=1)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(len(imgs), 2))
    out = np.empty_like(imgs)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            rows = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            out[rows] = np.roll(imgs[rows], (dy, dx), axis=(1, 2))
    out += rng.normal(0.0, noise, out.shape)
    return np.clip(out, 0.0, 16.0).reshape(len(imgs), size * size)


def mnist_shaped(n: int, seed: int) -> dict[str, np.ndarray]:
    """The background-digits data at 100 features (train, tests, oracle)."""
    import causal_mixtures as cm

    d = cm.datasets.make_background_digits(n_samples=n, n_test=1000, random_state=seed)
    rng = np.random.default_rng(seed + 7919)
    out = {"y": d.y, "z": d.mechanism}
    for key in ("X", "X_test", "X_test_confounded", "X_oracle"):
        out[key] = upsample_digits(d[key], rng)
    for key in ("y_test", "y_test_confounded", "y_oracle"):
        out[key] = d[key]
    return out


# =============================================================================== children
class _Timers:
    """Wrap ``causal_weights`` (where the estimators call it), ``KMeans`` (the
    initialisation's) and ``weighted_em`` (where the estimator's fitting steps call it) with timers (in the benchmark
    child only)."""

    def __init__(self) -> None:
        self.times = {"weights": 0.0, "kmeans": 0.0, "em": 0.0}
        self.calls = {"weights": 0, "kmeans": 0, "em": 0}

    def install(self) -> None:
        import causal_mixtures.estimators.common as common
        import causal_mixtures.estimators.fitting as est
        import causal_mixtures.mixture.init as init

        timers = self

        def timed(key: str, fn):
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    timers.times[key] += time.perf_counter() - t0
                    timers.calls[key] += 1
            return wrapper

        class TimedKMeans(init.KMeans):
            def fit(self, *args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return super().fit(*args, **kwargs)
                finally:
                    timers.times["kmeans"] += time.perf_counter() - t0
                    timers.calls["kmeans"] += 1

        common.causal_weights = timed("weights", common.causal_weights)
        est.weighted_em = timed("em", est.weighted_em)
        init.KMeans = TimedKMeans


def _deconfound(X: np.ndarray, y: np.ndarray, z: np.ndarray, *, k: int, cov: str,
                draws_per_do: int, seed: int) -> tuple[dict, Any, np.ndarray, np.ndarray]:
    """The measured block: fit and draw, with its breakdown, wall time and peak memory."""
    import warnings

    import causal_mixtures as cm

    timers = _Timers()
    timers.install()
    with warnings.catch_warnings(record=True) as caught, PeakMemory() as pm:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        model = cm.CausalGaussianMixture(n_components=k, covariance_type=cov,
                                         random_state=seed).fit(X, y, mechanism=z)
        t_fit = time.perf_counter() - t0
        Xn, yn = model.resample(n_samples=draws_per_do)
        total = time.perf_counter() - t0
    row = {
        "total_s": total, "fit_s": t_fit, "sample_s": total - t_fit,
        "weights_s": timers.times["weights"], "kmeans_s": timers.times["kmeans"],
        "em_s": timers.times["em"],
        "other_s": t_fit - sum(timers.times.values()),
        "calls": timers.calls,
        "n_iter": model.n_iter_.tolist(), "converged": model.converged_.tolist(),
        "peak_mib": pm.peak_mib, "peak_abs_mib": pm.peak_kib / 1024.0,
        "rss_before_mib": pm.start_mib, "memory_method": pm.method,
        "warnings": sorted({f"{w.category.__name__}: {str(w.message)[:90]}" for w in caught}),
    }
    row["em_s_per_iter"] = row["em_s"] / max(1, int(np.max(model.n_iter_)))
    return row, model, Xn, yn


def mnist_job(spec: dict) -> dict:
    """One child: build the data, run the measured block, then (untimed) the accuracies."""
    threads = limit_threads(spec["threads"])
    d = mnist_shaped(spec["n"], spec["seed"])
    row, _, Xn, yn = _deconfound(d["X"], d["y"], d["z"], k=spec["k"], cov="diag",
                                 draws_per_do=spec["draws"] // 2, seed=spec["seed"])
    row.update({"n": spec["n"], "k": spec["k"], "d": int(d["X"].shape[1]),
                "threads": spec["threads"], "torch_threads": threads.get("torch_num_threads"),
                "series": "mnist"})
    if spec.get("accuracy"):
        from sklearn.neighbors import KNeighborsClassifier

        acc = {}
        for name, (Xtr, ytr) in {"cwgmm": (Xn, yn), "classical": (d["X"], d["y"]),
                                 "oracle": (d["X_oracle"], d["y_oracle"])}.items():
            knn = KNeighborsClassifier(3).fit(Xtr, ytr)
            acc[name] = {"acc_nc": float(knn.score(d["X_test"], d["y_test"])),
                         "acc_conf": float(knn.score(d["X_test_confounded"],
                                                     d["y_test_confounded"]))}
        row["accuracy"] = acc
    return row


def classification_job(spec: dict) -> dict:
    import causal_mixtures as cm

    threads = limit_threads(spec["threads"])
    d = cm.datasets.make_classification_2d(spec["n"], n_test=10, random_state=spec["seed"])
    row, *_ = _deconfound(d.X, d.y, d.mechanism, k=6, cov="full",
                          draws_per_do=spec["n"] // 2, seed=spec["seed"])
    row.update({"n": spec["n"], "k": 6, "d": 2, "threads": spec["threads"],
                "torch_threads": threads.get("torch_num_threads"), "series": "classification"})
    return row


def _run(job, spec: dict, timeout: float) -> dict:
    try:
        return run_forked(job, spec, timeout=timeout)
    except ChildError as exc:
        series = "mnist" if job is mnist_job else "classification"
        return {**spec, "series": series, "error": str(exc)[-1500:]}


# =============================================================================== summary
def summarise(result: dict) -> None:
    heads = [r for r in result["rows"] if r.get("headline") and "error" not in r]
    goals = []
    if heads:
        best = min(heads, key=lambda r: r["total_s"])
        goals.append({
            "target": f"MNIST-shaped deconfounding step (n = {N_MNIST}, d = 100, K = "
                      f"{K_MNIST} diag, {DRAWS} draws) under 30 s",
            "measured": "; ".join(f"{r['threads']} thread(s): {r['total_s']:.1f} s"
                                  for r in heads) + " (best counts)",
            "passed": bool(best["total_s"] < TIME_TARGET_S),
        })
        worst = max(heads, key=lambda r: r["peak_abs_mib"])
        goals.append({
            "target": "... and under 2 GB peak memory",
            "measured": f"process peak {worst['peak_abs_mib']:.0f} MiB (of which "
                        f"{worst['peak_mib']:.0f} MiB during the step)",
            "passed": bool(worst["peak_abs_mib"] < MEM_TARGET_MIB),
        })
    result["goals"] = goals


# =============================================================================== rendering
def _breakdown_table(rows: list[dict]) -> str:
    header = ["series", "n", "d", "K", "threads", "total (s)", "weights", "k-means init",
              "EM (iters)", "EM s/iter", "other fit", "sampling", "peak MiB (abs / step)"]
    out = []
    for r in rows:
        if "error" in r:
            out.append([r.get("series", "?"), fmt_n(r["n"]), "", "", str(r.get("threads")),
                        "error", "", "", "", "", "", "", ""])
            continue
        out.append([
            r["series"], fmt_n(r["n"]), str(r["d"]), str(r["k"]), str(r["threads"]),
            fmt_s(r["total_s"]), fmt_s(r["weights_s"]), fmt_s(r["kmeans_s"]),
            f"{fmt_s(r['em_s'])} ({'/'.join(str(i) for i in r['n_iter'])})",
            fmt_s(r["em_s_per_iter"]), fmt_s(r["other_s"]), fmt_s(r["sample_s"]),
            f"{r['peak_abs_mib']:.0f} / {r['peak_mib']:.0f}",
        ])
    return md_table(header, out, ["l"] + ["r"] * 12)


def _error_summary(text: str) -> str:
    """The exception and the innermost package frame of a child's traceback."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    frames = [ln for ln in lines if ln.startswith("File ") and "causal_mixtures" in ln]
    where = ""
    if frames:
        f = frames[-1]
        path = f.split('"')[1] if '"' in f else f
        where = (f" (raised under `{path[path.find('causal_mixtures'):]}`"
                 f"{', ' + f.split(', ')[-1] if ', in ' in f else ''})")
    return f"`{lines[-1] if lines else 'unknown error'}`{where}."


def render_markdown(result: dict, img_prefix: str | None = None) -> str:
    rows = result["rows"]
    heads = [r for r in rows if r.get("headline")]
    parts = [
        "Data: `make_background_digits(n_samples=9000)` upsampled to 10×10 with pixel "
        "jitter (random ±1 pixel shift, N(0, 0.5²) noise): 100 features, two classes, a "
        "discrete mechanism. Measured block: `CausalGaussianMixture(n_components=300, "
        "covariance_type=\"diag\").fit(X, y, mechanism=z)` then `resample(n_samples=10000)` "
        "(20 000 draws), in a forked child process per row. *weights*, *k-means init*, *EM*: "
        "time inside the estimator's calls to `causal_weights`, `KMeans.fit` and "
        "`weighted_em` (EM iterations per class in brackets); *other fit*: the rest of `fit`; "
        "*peak MiB*: the process's peak RSS (interpreter, torch and data included) / its "
        "increase during the block. Target: < 30 s and < 2 GB.",
        _breakdown_table(heads),
    ]
    acc = next((r["accuracy"] for r in heads if "accuracy" in r), None)
    if acc:
        parts.append(
            "KNN (k = 3) accuracy on this configuration, one seed (non-confounded / "
            "confounded test): " + "; ".join(
                f"{name} {v['acc_nc']:.3f} / {v['acc_conf']:.3f}" for name, v in acc.items())
            + ". (The paper, on MNIST: mechanism learning 0.932 / 0.935, classical "
            "0.722 / 0.964, oracle 0.938 / 0.930.)"
        )
    scale = sorted((r for r in rows if not r.get("headline")),
                   key=lambda r: (r.get("series", ""), r["n"]))
    if scale:
        parts.append(
            "**Fit time versus n** (one thread): the same step on the MNIST-shaped data at "
            "K = 300, and the 2-D classification (K = 6 full, KDE weights, n/2 draws per "
            "class)."
        )
        if img_prefix is not None:
            parts.append(f"![fit time versus n]({img_prefix}/{FIGURE})")
        parts.append(_breakdown_table(scale))
    for r in rows:
        if "error" in r:
            parts.append(f"**{r.get('series', 'run')} n = {fmt_n(r['n'])} failed**: "
                         + _error_summary(r["error"]))
    warn = sorted({w.split(":")[0] for r in rows for w in r.get("warnings", [])})
    if warn:
        parts.append("Warnings raised during the measured blocks: " + ", ".join(warn) + ".")
    parts.append(f"Total wall time of this benchmark: {result['wall_s'] / 60:.1f} min.")
    return "\n\n".join(parts)


def results_section(result: dict, img_prefix: str = "img") -> str:
    return render_markdown(result, img_prefix=img_prefix)


def write_figures(result: dict, img_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if "error" not in r and r["threads"] == 1]
    series = {}
    for r in rows:
        series.setdefault(r["series"], {})[r["n"]] = r  # last one per (series, n) wins
    if not series:
        return []
    fig, ax = plt.subplots(figsize=(5.2, 3.5))
    labels = {"mnist": "MNIST-shaped: d = 100, K = 300 diag",
              "classification": "2-D classification: K = 6 full, KDE weights"}
    for i, (name, by_n) in enumerate(sorted(series.items())):
        ns = sorted(by_n)
        tot = [by_n[n]["total_s"] for n in ns]
        em = [by_n[n]["em_s"] for n in ns]
        ax.plot(ns, tot, marker="o", color=f"C{i}", label=f"{labels[name]}: total")
        ax.plot(ns, em, marker=".", ls="--", color=f"C{i}", alpha=0.7, label="  of which EM")
    ax.axhline(TIME_TARGET_S, color="C3", ls=":", lw=1, label="30 s target (n = 9000)")
    ax.axvline(N_MNIST, color="0.6", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training rows n")
    ax.set_ylabel("seconds (1 thread)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6.5, loc="lower right")
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
                   help="the headline configuration at 1 thread and a short 2-D series; no "
                        "results page unless --results-page is given")
    p.add_argument("--n", type=int, default=N_MNIST, help="rows of the headline run")
    p.add_argument("--k", type=int, default=K_MNIST, help="components of the headline run")
    p.add_argument("--thread-list", type=int, nargs="+", default=None,
                   help="thread counts of the headline run (default 1 2; --quick: 1)")
    p.add_argument("--digit-sizes", type=int, nargs="*", default=None,
                   help=f"n of the MNIST-shaped series ({DIGIT_SIZES})")
    p.add_argument("--class-sizes", type=lambda s: int(float(s)), nargs="*", default=None,
                   help=f"n of the 2-D series ({CLASS_SIZES})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=300.0, help="per child, seconds")
    add_output_args(p, NAME)
    return p


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    t_start = time.perf_counter()
    import causal_mixtures  # noqa: F401 - imported once here; the forked children share it

    thread_list = args.thread_list or ([1] if args.quick else [1, 2])
    digit_sizes = (args.digit_sizes if args.digit_sizes is not None
                   else (QUICK_DIGIT_SIZES if args.quick else DIGIT_SIZES))
    class_sizes = (args.class_sizes if args.class_sizes is not None
                   else (QUICK_CLASS_SIZES if args.quick else CLASS_SIZES))
    result: dict[str, Any] = {
        "name": NAME, "title": TITLE, "command": command_line(NAME, argv), "argv": argv,
        "machine": machine_info(), "quick": bool(args.quick),
        "settings": {"n": args.n, "k": args.k, "draws": DRAWS, "threads": thread_list,
                     "digit_sizes": list(digit_sizes), "class_sizes": list(class_sizes),
                     "seed": args.seed},
        "rows": [],
    }
    jobs: list[tuple[Any, dict]] = []
    for i, t in enumerate(thread_list):
        jobs.append((mnist_job, {"n": args.n, "k": args.k, "threads": t, "seed": args.seed,
                                 "draws": DRAWS, "accuracy": i == 0, "headline": True}))
    for n in digit_sizes:
        if n == args.n and 1 in thread_list and args.k == K_MNIST:
            continue  # the headline 1-thread run is this point
        jobs.append((mnist_job, {"n": n, "k": K_MNIST, "threads": 1, "seed": args.seed,
                                 "draws": DRAWS}))
    for n in class_sizes:
        jobs.append((classification_job, {"n": n, "threads": 1, "seed": args.seed}))
    for job, spec in jobs:
        row = _run(job, spec, args.timeout)
        row["headline"] = bool(spec.get("headline"))
        result["rows"].append(row)
        if "error" in row:
            _log(f"{job.__name__} {spec}: FAILED {row['error'][-300:]}")
        else:
            _log(f"{row['series']} n={fmt_n(row['n'])} threads={row['threads']}: "
                 f"{row['total_s']:.1f} s (weights {row['weights_s']:.1f}, k-means "
                 f"{row['kmeans_s']:.1f}, EM {row['em_s']:.1f}, sampling "
                 f"{row['sample_s']:.2f}), peak {row['peak_abs_mib']:.0f} MiB")
        write_json(args.out, result)
    # The headline 1-thread run doubles as the n = 9000 point of the MNIST-shaped series.
    for r in list(result["rows"]):
        if r.get("headline") and r.get("threads") == 1 and args.n in digit_sizes:
            result["rows"].append({**r, "headline": False})
    result["rows"].sort(key=lambda r: (not r["headline"], r.get("series", ""), r["n"],
                                       r.get("threads", 0)))
    summarise(result)
    result["wall_s"] = time.perf_counter() - t_start
    result["markdown"] = render_markdown(result)
    finish(result, args)
    return result


if __name__ == "__main__":
    main()
