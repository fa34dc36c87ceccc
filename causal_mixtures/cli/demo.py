"""The ``demo`` subcommand: the paper's synthetic 2-D classification experiment end to end.

Simulate confounded data, compute front-door weights, fit a CW-GMM, draw a deconfounded
training set, and compare a linear SVM trained classically, on the causal bootstrap, on the
CW-GMM draws and on interventional (oracle) data (Mao & Little, arXiv:2410.20057).
"""

from __future__ import annotations

import argparse
import time
from typing import Any, TextIO

import numpy as np

from causal_mixtures.cli.errors import EXIT_OK
from causal_mixtures.cli.format import khat_flag, shown_rows, weights_cells, weights_header
from causal_mixtures.cli.options import (
    DENSITY_CHOICES,
    MAX_ROWS,
    THREADS_HELP,
    check_rows,
    n_components,
    positive_int,
    seed,
)

__all__ = ["PAPER_ACCURACY", "add_parser", "run"]

# Reported accuracy of the reference experiment (Mao & Little 2024, synthetic classification):
# (non-confounded test, confounded test).
PAPER_ACCURACY: dict[str, tuple[float, float] | None] = {
    "classical supervised": (0.782, 0.853),
    "causal bootstrap": (0.853, 0.857),
    "CW-GMM (EM)": (0.854, 0.858),
    "oracle (interventional)": None,
}
_N_CLASSES = 2  # of the simulated label


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    demo = subparsers.add_parser(
        "demo",
        help="run the paper's synthetic classification experiment end to end",
        description="Simulate the paper's confounded 2-D classification data, deconfound it "
        "with the causal bootstrap and a CW-GMM, and compare linear SVMs trained classically, "
        "on the deconfounded data and on interventional (oracle) data.",
    )
    demo.add_argument("--n-samples", type=positive_int, default=5000,
                      help="confounded training rows (default: 5000, as the paper)")
    demo.add_argument("--n-test", type=positive_int, default=1000,
                      help="rows in each test set (default: 1000)")
    demo.add_argument("--seed", type=seed, default=0, help="seed of all randomness (default: 0)")
    demo.add_argument("--threads", type=positive_int, default=1, help=THREADS_HELP)
    demo.add_argument("--n-components", type=n_components, default=6,
                      help="CW-GMM components K, or 'auto' (default: 6, as the paper)")
    demo.add_argument("--draws-per-class", type=positive_int, default=None,
                      help="draws per class for the CW-GMM and the bootstrap (default: "
                      "n-samples // 2; the paper used 5000)")
    demo.add_argument("--density", choices=DENSITY_CHOICES, default="histogram",
                      help="estimator of p(z | y) (default: histogram, as the paper)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo.add_argument("--force", action="store_true",
                      help=f"allow more than {MAX_ROWS:,} training rows or draws")
    demo.set_defaults(handler=run)
    return demo


def _child_seeds(root: int, n: int) -> list[int]:
    """``n`` independent integer seeds derived from ``root`` (all randomness comes from it)."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(root).spawn(n)]


def _accuracies(model: Any, data: Any) -> tuple[float, float]:
    return (
        float(model.score(data.X_test, data.y_test)),
        float(model.score(data.X_test_confounded, data.y_test_confounded)),
    )


def _weights_table(cw: Any, out: TextIO, indent: str = "  ") -> None:
    print(weights_header(indent), file=out)
    for j in shown_rows(cw.n_do):
        if j < 0:
            print(f"{indent}{'...':>10}", file=out)
            continue
        print(f"{indent}{weights_cells(cw, j)}{khat_flag(cw.khat[j])}", file=out)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the paper's synthetic classification experiment and print the comparison.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``demo`` options: ``n_samples``, ``n_test``, ``seed``, ``n_components``,
        ``draws_per_class``, ``density``, ``no_progress``, ``force``.
    out, err : text streams
        Where the report and the progress bar / warnings go.

    Returns
    -------
    int
        The exit status.

    Raises
    ------
    CLIError
        If the rows asked for are over :data:`~causal_mixtures.cli.options.MAX_ROWS`.
    """
    check_rows(args.n_samples, f"--n-samples {args.n_samples}", args.force)
    if args.draws_per_class is not None:
        check_rows(args.draws_per_class * _N_CLASSES,
                   f"--draws-per-class {args.draws_per_class} x {_N_CLASSES} classes", args.force)

    from sklearn.svm import SVC
    from tqdm import tqdm

    from causal_mixtures.estimators import CausalBootstrap, CausalGaussianMixture
    from causal_mixtures.graph.specs import load_graph
    from causal_mixtures.simulate import datasets
    from causal_mixtures.weights.core import causal_weights

    start = time.perf_counter()
    seed_data, seed_gmm, seed_boot = _child_seeds(args.seed, 3)
    per_class = args.draws_per_class if args.draws_per_class is not None else args.n_samples // 2
    stages = ["simulate", "weights", "fit CW-GMM", "bootstrap", "train models"]
    bar = tqdm(total=len(stages), desc=stages[0], file=err, disable=args.no_progress,
               mininterval=0, miniters=1,
               bar_format="{desc:<14}{bar:20}| {n_fmt}/{total_fmt} [{elapsed}]")

    def stage(i: int) -> None:
        # The bar counts finished stages; its label names the one running now.
        bar.set_description_str(stages[i] if i < len(stages) else "done", refresh=False)
        if i:
            bar.update(1)
        else:
            bar.refresh()

    try:
        stage(0)
        data = datasets.make_classification_2d(
            args.n_samples, n_test=args.n_test, random_state=seed_data
        )
        stage(1)
        cw = causal_weights(
            data.graph, data.X, data.y, mechanism=data.mechanism, density=args.density
        )
        stage(2)
        cwgmm = CausalGaussianMixture(
            data.graph, n_components=args.n_components, covariance_type="full",
            density=args.density, random_state=seed_gmm,
        ).fit(data.X, data.y, weights=cw)
        X_gmm, y_gmm = cwgmm.resample(n_samples=per_class)
        stage(3)
        X_boot, y_boot = CausalBootstrap(
            data.graph, density=args.density, random_state=seed_boot
        ).fit_resample(data.X, data.y, mechanism=data.mechanism, n_samples=per_class)
        stage(4)
        results: dict[str, tuple[float, float]] = {}
        for name, (X_train, y_train) in {
            "classical supervised": (data.X, data.y),
            "causal bootstrap": (X_boot, y_boot),
            "CW-GMM (EM)": (X_gmm, y_gmm),
            "oracle (interventional)": (data.X_oracle, data.y_oracle),
        }.items():
            model = SVC(kernel="linear", C=5).fit(X_train, y_train)
            results[name] = _accuracies(model, data)
        stage(5)
    finally:
        bar.close()
    wall = time.perf_counter() - start

    paper_note = " (the paper's setting)" if per_class == 5000 else (
        " (--n-samples // 2; the paper used 5000, see --draws-per-class)"
        if args.draws_per_class is None else ""
    )
    density_note = {
        "histogram": "'histogram' (10 bins of z per class, as in the paper)",
        "auto": "'auto' (Gaussian KDE of z per class; the paper used a 10-bin histogram)",
    }.get(args.density, args.density)
    print("Mechanism learning demo: synthetic 2-D classification after Mao & Little "
          "(arXiv:2410.20057)", file=out)
    print(f"  data        {args.n_samples} confounded training rows, {args.n_test} confounded "
          f"+ {args.n_test} non-confounded test rows, seed {args.seed}", file=out)
    print(f"  graph       {data.graph}: {load_graph(data.graph).to_string()}", file=out)
    print(f"  weights     front-door, density {density_note}", file=out)
    print(f"  CW-GMM      K = {cwgmm.n_components_}, full covariance, {per_class} draws per "
          f"class{paper_note}; converged: "
          f"{'yes' if bool(np.all(cwgmm.converged_)) else 'NO'} "
          f"(iterations {', '.join(str(int(i)) for i in cwgmm.n_iter_)})", file=out)
    print(f"  bootstrap   {per_class} draws per class", file=out)
    print('  model       SVC(kernel="linear", C=5) on each training set', file=out)
    print("", file=out)
    print(f"Causal weights (Kish ESS out of n = {cw.n_samples}; k-hat > 0.7 means unreliable)",
          file=out)
    _weights_table(cw, out)
    print("", file=out)
    name_w = max(len(k) for k in results)
    print(f"{'Test accuracy':<{name_w}}  {' this run ':-^27}  {' paper ':-^27}", file=out)
    head = f"{'non-confounded':>14} {'confounded':>12}"
    print(f"{'method':<{name_w}}  {head}  {head}", file=out)
    for name, (acc_nc, acc_c) in results.items():
        ref = PAPER_ACCURACY[name]
        ref_text = (f"{ref[0]:>14.3f} {ref[1]:>12.3f}" if ref is not None
                    else f"{'-':>14} {'-':>12}")
        print(f"{name:<{name_w}}  {acc_nc:>14.3f} {acc_c:>12.3f}  {ref_text}", file=out)
    print("", file=out)
    print("CW-GMM (EM) is mechanism learning: the SVM trained on draws from the fitted "
          "interventional mixtures.", file=out)
    print(f"wall time {wall:.1f} s (after start-up)", file=out)
    return EXIT_OK
