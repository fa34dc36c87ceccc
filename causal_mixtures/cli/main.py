"""The ``causal-mixtures`` command line.

Subcommands
-----------
``demo``
    The synthetic 2-D classification experiment of Mao & Little (arXiv:2410.20057) end to
    end: simulate confounded data, compute front-door weights, fit a CW-GMM, draw a
    deconfounded training set, and compare a linear SVM trained classically, on the causal
    bootstrap, on the CW-GMM draws and on interventional (oracle) data.
``deconfound``
    Read a table (CSV or Parquet), fit a CW-GMM for the chosen cause / mechanism / effect
    columns and write the deconfounded rows (effect columns + cause column).
``graphs``
    List the named causal-graph specs.

This is the only module of the package that prints. Bad input ends with a one-line
``error: ...`` on stderr and exit status 2, never a traceback; warnings raised by the package
(positivity, convergence) are reported as ``warning: ...`` lines.

Examples
--------
.. code-block:: console

    $ causal-mixtures demo
    $ causal-mixtures deconfound data.csv --cause Y --mechanism Z --effect X1,X2 --out deconf.csv
    $ causal-mixtures graphs
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import numpy as np

__all__ = ["main"]

PROG = "causal-mixtures"
EXIT_OK = 0
EXIT_ERROR = 2

_CSV_SUFFIXES = (".csv", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_MAX_TABLE_ROWS = 12

# Reported accuracy of the reference experiment (PAPER.md, synthetic classification):
# (non-confounded test, confounded test).
PAPER_ACCURACY: dict[str, tuple[float, float] | None] = {
    "classical supervised": (0.782, 0.853),
    "causal bootstrap": (0.853, 0.857),
    "CW-GMM (EM)": (0.854, 0.858),
    "oracle (interventional)": None,
}


class CLIError(Exception):
    """Bad input detected by the command line itself; printed as one ``error:`` line."""


class _ArgumentParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose usage errors are one line on stderr."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"error: {message} (see '{self.prog} --help')\n")


# ---------------------------------------------------------------------------------- helpers
def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _fmt_value(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.4g}"
    if isinstance(v, np.generic):
        return str(v.item())
    return str(v)


def _fmt_float(v: float, width: int, digits: int) -> str:
    if not math.isfinite(v):
        return f"{'nan' if math.isnan(v) else ('inf' if v > 0 else '-inf'):>{width}}"
    return f"{v:{width}.{digits}f}"


def _split_list(text: str, option: str) -> list[str]:
    items = [s.strip() for s in text.split(",")]
    if not items or any(not s for s in items):
        raise CLIError(f"{option} expects a comma-separated list without empty items; got {text!r}")
    return items


def _n_components(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive int; got {text!r}") from None
    if k < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive int; got {k}")
    return k


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int; got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int; got {v}")
    return v


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative int; got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative int; got {v}")
    return v


def _child_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent integer seeds derived from ``seed`` (all randomness comes from it)."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def _emit_warnings(caught: Sequence[warnings.WarningMessage], stream: TextIO) -> None:
    seen: set[str] = set()
    for w in caught:
        text = f"warning: {w.category.__name__}: {' '.join(str(w.message).split())}"
        if text not in seen:
            seen.add(text)
            print(text, file=stream)


# ---------------------------------------------------------------------------------- I/O
def _read_table(path: Path) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in _CSV_SUFFIXES + _PARQUET_SUFFIXES:
        raise CLIError(
            f"cannot tell the format of {str(path)!r} from its extension {suffix or '(none)'!r}; "
            f"use .csv or .tsv (text) or .parquet / .pq"
        )
    if not path.exists():
        raise CLIError(f"no such file: {str(path)!r}")
    if not path.is_file():
        raise CLIError(f"not a file: {str(path)!r}")
    if suffix in _PARQUET_SUFFIXES:
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")


def _check_out_path(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in _CSV_SUFFIXES + _PARQUET_SUFFIXES:
        raise CLIError(
            f"cannot tell the output format of {str(path)!r} from its extension "
            f"{suffix or '(none)'!r}; use .csv, .tsv, .parquet or .pq"
        )
    parent = path.resolve().parent
    if not parent.is_dir():
        raise CLIError(f"the output folder {str(parent)!r} does not exist")


def _write_table(frame: Any, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix in _PARQUET_SUFFIXES:
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)


# ---------------------------------------------------------------------------------- demo
def _accuracies(model: Any, data: Any) -> tuple[float, float]:
    return (
        float(model.score(data.X_test, data.y_test)),
        float(model.score(data.X_test_confounded, data.y_test_confounded)),
    )


def _weights_table(cw: Any, out: TextIO, indent: str = "  ") -> None:
    print(f"{indent}{'do':>10}  {'ESS':>9}  {'ESS/n':>6}  {'k-hat':>6}", file=out)
    for j in _shown_rows(cw.n_do):
        if j < 0:
            print(f"{indent}{'...':>10}", file=out)
            continue
        print(
            f"{indent}{_fmt_value(cw.do_values[j]):>10}  {cw.ess[j]:9.1f}  "
            f"{_fmt_float(float(cw.ess_ratio[j]), 6, 3)}  {_fmt_float(float(cw.khat[j]), 6, 2)}"
            f"{_khat_flag(cw.khat[j])}",
            file=out,
        )


def _khat_flag(khat: float) -> str:
    from causal_mixtures.weights.psis import KHAT_THRESHOLD

    return "  (unreliable)" if np.nan_to_num(khat, nan=-np.inf) > KHAT_THRESHOLD else ""


def _shown_rows(n: int) -> list[int]:
    if n <= _MAX_TABLE_ROWS:
        return list(range(n))
    half = _MAX_TABLE_ROWS // 2
    return [*range(half), -1, *range(n - half, n)]


def run_demo(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run the paper's synthetic classification experiment and print the comparison.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``demo`` options: ``n_samples``, ``n_test``, ``seed``, ``n_components``,
        ``draws_per_class``, ``density``, ``no_progress``.
    out, err : text streams
        Where the report and the progress bar / warnings go.

    Returns
    -------
    int
        The exit status.
    """
    from sklearn.svm import SVC
    from tqdm import tqdm

    import causal_mixtures as cm

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
        data = cm.datasets.make_classification_2d(
            args.n_samples, n_test=args.n_test, random_state=seed_data
        )
        stage(1)
        cw = cm.causal_weights(
            data.graph, data.X, data.y, mechanism=data.mechanism, density=args.density
        )
        stage(2)
        cwgmm = cm.CausalGaussianMixture(
            data.graph, n_components=args.n_components, covariance_type="full",
            density=args.density, random_state=seed_gmm,
        ).fit(data.X, data.y, weights=cw)
        X_gmm, y_gmm = cwgmm.resample(n_samples=per_class)
        stage(3)
        X_boot, y_boot = cm.CausalBootstrap(
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
    print(f"  graph       {data.graph}: {cm.load_graph(data.graph).to_string()}", file=out)
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


# ---------------------------------------------------------------------------------- deconfound
def _parse_do(text: str, cause: Any) -> np.ndarray:
    """Parse the comma-separated ``--do`` values to the dtype of the cause column."""
    import pandas as pd

    items = _split_list(text, "--do")
    dtype = cause.dtype
    try:
        if pd.api.types.is_bool_dtype(dtype):
            table = {"true": True, "1": True, "false": False, "0": False}
            values: list[Any] = [table[s.lower()] for s in items]
            return np.asarray(values, dtype=bool)
        if pd.api.types.is_integer_dtype(dtype):
            return np.asarray([int(s) for s in items], dtype=np.asarray(cause).dtype)
        if pd.api.types.is_float_dtype(dtype):
            return np.asarray([float(s) for s in items], dtype=np.float64)
    except (KeyError, ValueError):
        raise CLIError(
            f"--do values {items} do not parse as the dtype {dtype} of the cause column "
            f"{cause.name!r}"
        ) from None
    return np.asarray(items, dtype=object)


def _check_columns(frame: Any, columns: Sequence[str], role: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns))
        raise CLIError(
            f"{role} column(s) {', '.join(map(repr, missing))} not in the table; available "
            f"columns: {available}"
        )


def _check_complete(frame: Any, columns: Sequence[str]) -> None:
    for c in columns:
        missing = frame[c].isna().to_numpy()
        if missing.any():
            first = int(np.flatnonzero(missing)[0])
            raise CLIError(
                f"column {c!r} has {int(missing.sum())} missing value(s) (first at data row "
                f"{first}); drop or impute them first"
            )


def _fit_summary(
    args: argparse.Namespace, frame: Any, model: Any, n_out: int, out: TextIO,
    effect: Sequence[str], mechanism: Sequence[str], elapsed: float,
) -> None:
    cw = model.causal_weights_
    k_note = (f"chosen by weighted BIC from {int(model.n_components_grid_[0])}.."
              f"{int(model.n_components_grid_[-1])}" if args.n_components == "auto" else "fixed")
    conv = np.asarray(model.converged_, dtype=bool)
    print(f"causal-mixtures deconfound: {args.input} -> {args.out}", file=out)
    print(f"  graph        {args.graph}", file=out)
    print(f"  rows         {len(frame)} in, {n_out} out", file=out)
    print(f"  cause        {args.cause}; do values: "
          f"{', '.join(_fmt_value(v) for v in model.do_values_[:_MAX_TABLE_ROWS])}"
          f"{' ...' if len(model.do_values_) > _MAX_TABLE_ROWS else ''}", file=out)
    density = type(cw.density).__name__ if cw.density is not None else args.density
    print(f"  mechanism    {', '.join(mechanism)} (density: {density}"
          f"{', PSIS-smoothed' if cw.smoothing else ''})", file=out)
    print(f"  effect       {', '.join(effect)}", file=out)
    print(f"  mixture      K = {model.n_components_} ({k_note}), {model.covariance_type} "
          f"covariance, seed {args.seed}", file=out)
    print(f"  converged    {'yes' if conv.all() else f'NO for {int((~conv).sum())} do value(s)'}"
          f"; fit took {elapsed:.1f} s", file=out)
    print(f"  {'do':>10}  {'ESS':>9}  {'ESS/n':>6}  {'k-hat':>6}  {'converged':>9}  "
          f"{'iter':>4}  {'lower bound':>11}", file=out)
    for j in _shown_rows(cw.n_do):
        if j < 0:
            print(f"  {'...':>10}", file=out)
            continue
        print(
            f"  {_fmt_value(cw.do_values[j]):>10}  {cw.ess[j]:9.1f}  "
            f"{_fmt_float(float(cw.ess_ratio[j]), 6, 3)}  {_fmt_float(float(cw.khat[j]), 6, 2)}  "
            f"{'yes' if conv[j] else 'NO':>9}  {int(model.n_iter_[j]):>4}  "
            f"{_fmt_float(float(model.lower_bound_[j]), 11, 4)}{_khat_flag(cw.khat[j])}",
            file=out,
        )
    flagged = [j for j in range(cw.n_do) if _khat_flag(cw.khat[j])]
    if flagged and not cw.smoothing:
        print(f"  note: k-hat > 0.7 for {len(flagged)} do value(s): a few rows carry most of the "
              "weight there; try --weight-smoothing psis or a smoother --density", file=out)


def run_deconfound(
    args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Fit a CW-GMM to a table and write the deconfounded rows.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``deconfound`` options.
    out, err : text streams
        Where the summary and the warnings go.

    Returns
    -------
    int
        The exit status.

    Raises
    ------
    CLIError, ValueError, OSError
        On bad input; :func:`main` turns them into one ``error:`` line.
    """
    import pandas as pd

    import causal_mixtures as cm
    from causal_mixtures.weights.density import is_discrete

    in_path, out_path = Path(args.input), Path(args.out)
    _check_out_path(out_path)
    effect = _split_list(args.effect, "--effect")
    mechanism = _split_list(args.mechanism, "--mechanism")
    frame = _read_table(in_path)
    _check_columns(frame, [args.cause], "cause")
    _check_columns(frame, mechanism, "mechanism")
    _check_columns(frame, effect, "effect")
    roles = [args.cause, *mechanism, *effect]
    dup = sorted({c for c in roles if roles.count(c) > 1})
    if dup:
        raise CLIError(f"column(s) {', '.join(map(repr, dup))} given more than one role")
    if len(frame) == 0:
        raise CLIError(f"{str(in_path)!r} has no data rows")
    non_numeric = [c for c in effect if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise CLIError(
            f"effect column(s) {', '.join(map(repr, non_numeric))} are not numeric (dtype "
            f"{', '.join(str(frame[c].dtype) for c in non_numeric)}); the mixture models "
            "numeric features only"
        )
    _check_complete(frame, roles)

    cause = frame[args.cause]
    y = cause.to_numpy()
    if args.do is not None:
        do = _parse_do(args.do, cause)
    else:
        if not is_discrete(y):
            q = np.quantile(y.astype(float), np.linspace(0.05, 0.95, 5))
            raise CLIError(
                f"the cause column {args.cause!r} is continuous ({len(np.unique(y))} distinct "
                f"values): pass the intervention values with --do, e.g. --do "
                f"{','.join(f'{v:.3g}' for v in q)}"
            )
        do = None
    z = frame[mechanism].to_numpy()
    if len(mechanism) == 1:
        z = z[:, 0]
    X = frame[effect].astype(np.float64)

    model = cm.CausalGaussianMixture(
        args.graph,
        n_components=args.n_components,
        covariance_type=args.covariance_type,
        density=args.density,
        weight_smoothing=None if args.weight_smoothing == "none" else args.weight_smoothing,
        max_iter=args.max_iter,
        n_init=args.n_init,
        random_state=args.seed,
    )
    start = time.perf_counter()
    X_new, y_new = model.fit_resample(X, y, mechanism=z, do=do, n_samples=args.n_samples)
    elapsed = time.perf_counter() - start
    result = pd.DataFrame(X_new, columns=effect)
    result[args.cause] = y_new
    _write_table(result, out_path)
    _fit_summary(args, frame, model, len(result), out, effect, mechanism, elapsed)
    return EXIT_OK


# ---------------------------------------------------------------------------------- graphs
def run_graphs(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Print the named graph specs, one per line, with their titles and graphs.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``graphs`` options (``verbose``).
    out, err : text streams

    Returns
    -------
    int
        The exit status.
    """
    import causal_mixtures as cm

    try:
        from causal_mixtures.graph.specs import load_spec
    except ImportError:  # pragma: no cover - the registry module without specs
        load_spec = None
    names = cm.list_graphs()
    width = max((len(n) for n in names), default=0)
    for name in names:
        if load_spec is None:
            print(name, file=out)
            continue
        spec = load_spec(name)
        ident = "" if spec.identifiable else "  [not identifiable]"
        print(f"{name:<{width}}  {spec.title}{ident}", file=out)
        if args.verbose:
            print(f"{'':<{width}}  graph: {spec.graph.to_string()}", file=out)
            if spec.estimand:
                print(f"{'':<{width}}  estimand: {spec.estimand}", file=out)
            print(f"{'':<{width}}  reference: {spec.reference}", file=out)
    return EXIT_OK


# ---------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``causal-mixtures`` command.

    Returns
    -------
    argparse.ArgumentParser
    """
    from causal_mixtures import __version__
    from causal_mixtures.weights.density import DENSITIES

    parser = _ArgumentParser(
        prog=PROG,
        description="Mechanism learning: deconfound training data with causally weighted "
        "Gaussian mixtures (Mao & Little, arXiv:2410.20057).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="run the paper's synthetic classification experiment end to end",
        description="Simulate the paper's confounded 2-D classification data, deconfound it "
        "with the causal bootstrap and a CW-GMM, and compare linear SVMs trained classically, "
        "on the deconfounded data and on interventional (oracle) data.",
    )
    demo.add_argument("--n-samples", type=_positive_int, default=5000,
                      help="confounded training rows (default: 5000, as the paper)")
    demo.add_argument("--n-test", type=_positive_int, default=1000,
                      help="rows in each test set (default: 1000)")
    demo.add_argument("--seed", type=_seed, default=0, help="seed of all randomness (default: 0)")
    demo.add_argument("--n-components", type=_n_components, default=6,
                      help="CW-GMM components K, or 'auto' (default: 6, as the paper)")
    demo.add_argument("--draws-per-class", type=_positive_int, default=None,
                      help="draws per class for the CW-GMM and the bootstrap (default: "
                      "n-samples // 2; the paper used 5000)")
    demo.add_argument("--density", choices=DENSITIES, default="histogram",
                      help="estimator of p(z | y) (default: histogram, as the paper)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo.set_defaults(handler=run_demo)

    dec = sub.add_parser(
        "deconfound",
        help="fit a CW-GMM to a CSV/Parquet table and write deconfounded rows",
        description="Fit a causally weighted Gaussian mixture to a table and write draws of "
        "p(effect | do(cause)) for every intervention value, labelled with the cause: a "
        "deconfounded training set. Formats follow the file extensions (.csv, .tsv, "
        ".parquet, .pq).",
    )
    dec.add_argument("input", help="input table (.csv, .tsv, .parquet or .pq)")
    dec.add_argument("--out", required=True, help="output table (.csv, .tsv, .parquet or .pq)")
    dec.add_argument("--graph", default="front_door",
                     help="named graph (see 'causal-mixtures graphs'), .toml spec or graph "
                     "text (default: front_door)")
    dec.add_argument("--cause", required=True, help="the cause column (the label)")
    dec.add_argument("--mechanism", required=True,
                     help="the mechanism column(s), comma-separated")
    dec.add_argument("--effect", required=True, help="the effect (feature) columns, comma-separated")
    dec.add_argument("--do", default=None,
                     help="intervention values, comma-separated (default: the classes of a "
                     "discrete cause; required for a continuous one)")
    dec.add_argument("--n-components", type=_n_components, default="auto",
                     help="mixture components K, or 'auto' for the weighted BIC (default: auto)")
    dec.add_argument("--covariance-type", choices=("full", "diag", "spherical"), default="full",
                     help="covariance of each component (default: full)")
    dec.add_argument("--n-samples", type=_positive_int, default=None,
                     help="draws per intervention value (default: rows // number of do values)")
    dec.add_argument("--density", choices=DENSITIES, default="auto",
                     help="estimator of p(mechanism | cause) (default: auto)")
    dec.add_argument("--weight-smoothing", choices=("none", "psis"), default="none",
                     help="Pareto-smooth the causal weights (default: none)")
    dec.add_argument("--max-iter", type=_positive_int, default=100,
                     help="EM iterations at most (default: 100)")
    dec.add_argument("--n-init", type=_positive_int, default=1,
                     help="EM restarts per do value (default: 1)")
    dec.add_argument("--seed", type=_seed, default=0, help="seed of all randomness (default: 0)")
    dec.set_defaults(handler=run_deconfound)

    graphs = sub.add_parser("graphs", help="list the named causal-graph specs",
                            description="List the named causal-graph specs.")
    graphs.add_argument("-v", "--verbose", action="store_true",
                        help="also print each graph, estimand and reference")
    graphs.set_defaults(handler=run_graphs)
    return parser


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout without a fd
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``causal-mixtures`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments, without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 on bad input (after a one-line ``error: ...`` on stderr).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_ERROR)
    handler: Callable[..., int] = args.handler
    from causal_mixtures.exceptions import ConvergenceWarning, PositivityWarning

    with warnings.catch_warnings(record=True) as caught:
        # The package's own warnings are reported as one line each; any other warning keeps
        # the caller's filters (so the test suite's "error" filter still applies to it).
        warnings.simplefilter("always", PositivityWarning)
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            status = handler(args, sys.stdout, sys.stderr)
        except BrokenPipeError:  # e.g. `causal-mixtures graphs | head -1`
            _silence_stdout()
            return EXIT_OK
        except (CLIError, ValueError, OSError, ImportError) as exc:
            sys.stdout.flush()
            _emit_warnings(caught, sys.stderr)
            message = _one_line(exc)
            if isinstance(exc, ImportError) and "parquet" in message.lower():
                message += " (install pyarrow: pip install 'causal_mixtures[parquet]')"
            print(f"error: {message}", file=sys.stderr)
            return EXIT_ERROR
    sys.stdout.flush()
    _emit_warnings(caught, sys.stderr)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
