"""The ``deconfound`` subcommand: fit a CW-GMM to a table and write deconfounded rows.

Reads a table (CSV, TSV or Parquet), fits a causally weighted Gaussian mixture for the chosen
cause / mechanism / covariate / effect columns and writes draws of ``p(effect | do(cause))``
labelled with the cause. The graph's estimand says which of ``--mechanism`` and
``--covariates`` are needed. All input and output-path checks run before the fit.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from causal_mixtures.cli.errors import EXIT_OK, CLIError
from causal_mixtures.cli.format import (
    MAX_TABLE_ROWS,
    format_float,
    format_value,
    khat_flag,
    shown_rows,
    weights_cells,
    weights_header,
)
from causal_mixtures.cli.io import check_out_path, read_table, write_table
from causal_mixtures.cli.options import (
    DENSITY_CHOICES,
    MAX_ROWS,
    THREADS_HELP,
    check_rows,
    n_components,
    positive_int,
    seed,
    separator,
    split_list,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``deconfound`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    dec = subparsers.add_parser(
        "deconfound",
        help="fit a CW-GMM to a CSV/Parquet table and write deconfounded rows",
        description="Fit a causally weighted Gaussian mixture to a table and write draws of "
        "p(effect | do(cause)) for every intervention value, labelled with the cause: a "
        "deconfounded training set. Formats follow the file extensions (.csv, .tsv, "
        ".parquet, .pq).",
    )
    dec.add_argument("input", help="input table (.csv, .tsv, .parquet or .pq)")
    dec.add_argument("--out", required=True,
                     help="output table (.csv, .tsv, .parquet or .pq); never the input")
    dec.add_argument("--sep", type=separator, default=None,
                     help="field separator of a text input table, one character or '\\t' "
                     "(default: comma for .csv, tab for .tsv)")
    dec.add_argument("--graph", default="front_door",
                     help="named graph (see 'causal-mixtures graphs'), .toml spec or graph "
                     "text (default: front_door)")
    dec.add_argument("--cause", required=True, help="the cause column (the label)")
    dec.add_argument("--mechanism", default=None,
                     help="the mechanism column(s), comma-separated; needed when the graph's "
                     "estimand has a mechanism (front-door graphs), refused otherwise")
    dec.add_argument("--covariates", default=None, metavar="COLS",
                     help="the covariate column(s), comma-separated; needed when the graph's "
                     "estimand adjusts for covariates (e.g. back_door, "
                     "front_door_covariates), refused otherwise")
    dec.add_argument("--effect", required=True, help="the effect (feature) columns, comma-separated")
    dec.add_argument("--do", default=None,
                     help="intervention values, comma-separated (default: the classes of a "
                     "discrete cause; required for a continuous one)")
    dec.add_argument("--n-components", type=n_components, default="auto",
                     help="mixture components K, or 'auto' for the weighted BIC (default: auto)")
    dec.add_argument("--covariance-type", choices=("full", "diag", "spherical"), default="full",
                     help="covariance of each component (default: full)")
    dec.add_argument("--n-samples", type=positive_int, default=None,
                     help="draws per intervention value (default: rows // number of do values)")
    dec.add_argument("--density", choices=DENSITY_CHOICES, default="auto",
                     help="estimator of p(mechanism | cause) (default: auto)")
    dec.add_argument("--weight-smoothing", choices=("none", "psis"), default="none",
                     help="Pareto-smooth the causal weights (default: none)")
    dec.add_argument("--max-iter", type=positive_int, default=100,
                     help="EM iterations at most (default: 100)")
    dec.add_argument("--n-init", type=positive_int, default=1,
                     help="EM restarts per do value (default: 1)")
    dec.add_argument("--seed", type=seed, default=0, help="seed of all randomness (default: 0)")
    dec.add_argument("--threads", type=positive_int, default=1, help=THREADS_HELP)
    dec.add_argument("--chunk-rows", type=positive_int, default=None, metavar="N",
                     help="fit out of core: read the input N rows at a time (Parquet by row "
                     "groups, each in batches of at most N rows; CSV by pandas chunks) and "
                     "never hold it whole; the weighted EM from statistics summed over the "
                     "chunks, the in-memory fit's with strategy='weighting'; --density auto "
                     "means discrete (discrete mechanism) or gaussian (continuous), kde "
                     "streams for one or two mechanism columns (one with a continuous "
                     "cause); see docs/out_of_core.md "
                     "(default: read the table into memory)")
    dec.add_argument("--force", action="store_true",
                     help=f"allow more than {MAX_ROWS:,} output rows")
    dec.set_defaults(handler=run)
    return dec


def _parse_do(text: str, cause: Any) -> np.ndarray:
    """Parse the comma-separated ``--do`` values to the dtype of the cause column."""
    import pandas as pd

    items = split_list(text, "--do")
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


def _load_graph(text: str) -> Any:
    """The graph of ``--graph``: graph text if it holds an edge, else a name or a spec file.

    The same rule as the estimator's (``causal_mixtures.weights.core.resolve_graph``), without
    importing the estimators.
    """
    from causal_mixtures.graph.core import CausalGraph
    from causal_mixtures.graph.specs import load_graph

    if "->" in text or "<-" in text:
        return CausalGraph.from_string(text)
    return load_graph(text)


def _role_columns(args: argparse.Namespace, estimand: Any) -> tuple[list[str], list[str]]:
    """The ``--mechanism`` and ``--covariates`` columns, checked against the estimand.

    An option is required when the estimand has nodes of its role and refused when it has
    none (the estimator would ignore those columns).
    """
    kind = estimand.kind.replace("_", "-")
    options = (
        ("--mechanism", args.mechanism, "mechanism", estimand.mechanisms),
        ("--covariates", args.covariates, "covariate", estimand.covariates),
    )
    for option, value, role, nodes in options:  # a missing option first, then an extra one
        if nodes and value is None:
            raise CLIError(
                f"the graph {args.graph!r} ({kind} estimand) needs the {role} column(s) for "
                f"{', '.join(nodes)}: pass {option} COLS, e.g. {option} {','.join(nodes)}"
            )
    for option, value, role, nodes in options:
        if not nodes and value is not None:
            raise CLIError(
                f"the graph {args.graph!r} ({kind} estimand) has no {role} node, so {option} "
                f"{value!r} would be ignored: drop {option}, or pick a --graph with a {role} "
                "role (see 'causal-mixtures graphs -v')"
            )
    return (
        [] if args.mechanism is None else split_list(args.mechanism, "--mechanism"),
        [] if args.covariates is None else split_list(args.covariates, "--covariates"),
    )


def _check_columns(frame: Any, columns: Sequence[str], role: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns))
        raise CLIError(
            f"{role} column(s) {', '.join(map(repr, missing))} not in the table; available "
            f"columns: {available}"
        )


def _check_numeric(frame: Any, columns: Sequence[str], role: str, why: str) -> None:
    import pandas as pd

    non_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise CLIError(
            f"{role} column(s) {', '.join(map(repr, non_numeric))} are not numeric (dtype "
            f"{', '.join(str(frame[c].dtype) for c in non_numeric)}); {why}"
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
    args: argparse.Namespace, n_in: int, model: Any, n_out: int, out: TextIO,
    effect: Sequence[str], mechanism: Sequence[str], covariates: Sequence[str], elapsed: float,
) -> None:
    cw = model.causal_weights_
    k_note = (f"chosen by weighted BIC from {int(model.n_components_grid_[0])}.."
              f"{int(model.n_components_grid_[-1])}" if args.n_components == "auto" else "fixed")
    conv = np.asarray(model.converged_, dtype=bool)
    print(f"causal-mixtures deconfound: {args.input} -> {args.out}", file=out)
    print(f"  graph        {args.graph}", file=out)
    read = (f", read {args.chunk_rows} at a time (out of core)"
            if getattr(args, "chunk_rows", None) else "")
    print(f"  rows         {n_in} in{read}, {n_out} out", file=out)
    print(f"  cause        {args.cause}; do values: "
          f"{', '.join(format_value(v) for v in model.do_values_[:MAX_TABLE_ROWS])}"
          f"{' ...' if len(model.do_values_) > MAX_TABLE_ROWS else ''}", file=out)
    density = type(cw.density).__name__ if cw.density is not None else args.density
    weighted = f"(density: {density}{', PSIS-smoothed' if cw.smoothing else ''})"
    if mechanism:
        print(f"  mechanism    {', '.join(mechanism)} {weighted}", file=out)
    if covariates:
        print(f"  covariates   {', '.join(covariates)}{'' if mechanism else ' ' + weighted}",
              file=out)
    print(f"  effect       {', '.join(effect)}", file=out)
    print(f"  mixture      K = {model.n_components_} ({k_note}), {model.covariance_type} "
          f"covariance, seed {args.seed}", file=out)
    print(f"  converged    {'yes' if conv.all() else f'NO for {int((~conv).sum())} do value(s)'}"
          f"; fit took {elapsed:.1f} s", file=out)
    print(f"{weights_header()}  {'converged':>9}  {'iter':>4}  {'lower bound':>11}", file=out)
    for j in shown_rows(cw.n_do):
        if j < 0:
            print(f"  {'...':>10}", file=out)
            continue
        print(
            f"  {weights_cells(cw, j)}  "
            f"{'yes' if conv[j] else 'NO':>9}  {int(model.n_iter_[j]):>4}  "
            f"{format_float(float(model.lower_bound_[j]), 11, 4)}{khat_flag(cw.khat[j])}",
            file=out,
        )
    flagged = [j for j in range(cw.n_do) if khat_flag(cw.khat[j])]
    if flagged and not cw.smoothing:
        print(f"  note: k-hat > 0.7 for {len(flagged)} do value(s): a few rows carry most of the "
              "weight there; try --weight-smoothing psis or a smoother --density", file=out)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
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
        On bad input; :func:`causal_mixtures.cli.main.main` turns them into one ``error:``
        line.
    """
    from causal_mixtures.graph.identify import identify

    in_path, out_path = Path(args.input), Path(args.out)
    check_out_path(out_path, input_path=in_path)
    effect = split_list(args.effect, "--effect")
    estimand = identify(_load_graph(args.graph))
    mechanism, covariates = _role_columns(args, estimand)
    if args.chunk_rows is not None:
        return _run_stream(args, out, in_path, out_path, effect, mechanism, covariates)
    frame = read_table(in_path, sep=args.sep)
    _check_table(frame, args, effect, mechanism, covariates, in_path)
    roles = [args.cause, *mechanism, *covariates, *effect]
    _check_complete(frame, roles)

    # The estimators (and torch) are imported only once the input is known to be usable.
    import pandas as pd

    from causal_mixtures.estimators.gaussian_mixture import CausalGaussianMixture
    from causal_mixtures.weights.density import is_discrete

    cause = frame[args.cause]
    y = cause.to_numpy()
    if args.do is not None:
        do = _parse_do(args.do, cause)
        n_do = len(do)
    else:
        if not is_discrete(y):
            q = np.quantile(y.astype(float), np.linspace(0.05, 0.95, 5))
            raise CLIError(
                f"the cause column {args.cause!r} is continuous ({len(np.unique(y))} distinct "
                f"values): pass the intervention values with --do, e.g. --do "
                f"{','.join(f'{v:.3g}' for v in q)}"
            )
        do = None
        n_do = len(pd.unique(cause))
    if args.n_samples is not None:
        check_rows(args.n_samples * n_do, f"--n-samples {args.n_samples} x {n_do} do values",
                   args.force)
    z = frame[mechanism].to_numpy() if mechanism else None
    if z is not None and len(mechanism) == 1:
        z = z[:, 0]
    w = frame[covariates].to_numpy() if covariates else None
    X = frame[effect].astype(np.float64)

    model = _model(args, CausalGaussianMixture)
    start = time.perf_counter()
    X_new, y_new = model.fit_resample(
        X, y, mechanism=z, covariates=w, do=do, n_samples=args.n_samples
    )
    return _write(args, out, out_path, model, X_new, y_new, len(frame), effect, mechanism,
                  covariates, start)


def _write(
    args: argparse.Namespace, out: TextIO, out_path: Path, model: Any, X_new: Any,
    y_new: Any, n_in: int, effect: list[str], mechanism: list[str], covariates: list[str],
    start: float,
) -> int:
    """Write the deconfounded rows (effect columns, then the cause) and the summary."""
    import pandas as pd

    elapsed = time.perf_counter() - start
    result = pd.DataFrame(X_new, columns=effect)
    result[args.cause] = y_new
    write_table(result, out_path)
    _fit_summary(args, n_in, model, len(result), out, effect, mechanism, covariates, elapsed)
    return EXIT_OK


def _model(args: argparse.Namespace, cls: Any, **extra: Any) -> Any:
    """The estimator of the command line's options."""
    return cls(
        args.graph,
        n_components=args.n_components,
        covariance_type=args.covariance_type,
        density=args.density,
        weight_smoothing=None if args.weight_smoothing == "none" else args.weight_smoothing,
        max_iter=args.max_iter,
        n_init=args.n_init,
        random_state=args.seed,
        **extra,
    )


def _check_table(
    frame: Any, args: argparse.Namespace, effect: Sequence[str], mechanism: Sequence[str],
    covariates: Sequence[str], in_path: Path,
) -> None:
    """The role columns exist, are distinct and numeric, and the table has rows (``frame``:
    the table, or its first rows when it is streamed)."""
    _check_columns(frame, [args.cause], "cause")
    _check_columns(frame, mechanism, "mechanism")
    _check_columns(frame, covariates, "covariate")
    _check_columns(frame, effect, "effect")
    roles = [args.cause, *mechanism, *covariates, *effect]
    dup = sorted({c for c in roles if roles.count(c) > 1})
    if dup:
        raise CLIError(f"column(s) {', '.join(map(repr, dup))} given more than one role")
    if len(frame) == 0:
        raise CLIError(f"{str(in_path)!r} has no data rows")
    _check_numeric(frame, effect, "effect", "the mixture models numeric features only")
    _check_numeric(frame, mechanism, "mechanism",
                   "the mechanism must be numeric: encode categories as integer codes")
    _check_numeric(frame, covariates, "covariate",
                   "covariates must be numeric: encode categories as integer codes")


#: Rows of a streamed input read up front for the column checks and the cause's dtype.
_HEAD_ROWS = 1000


def _run_stream(
    args: argparse.Namespace, out: TextIO, in_path: Path, out_path: Path,
    effect: list[str], mechanism: list[str], covariates: list[str],
) -> int:
    """``--chunk-rows``: the out-of-core fit (``CausalGaussianMixture.fit_stream``)."""
    if covariates:
        raise CLIError(
            "--chunk-rows fits the front-door graph out of core, without covariates: drop "
            "--chunk-rows to fit in memory, or use a front-door --graph"
        )
    head = read_table(in_path, sep=args.sep, nrows=_HEAD_ROWS)
    _check_table(head, args, effect, mechanism, covariates, in_path)

    from causal_mixtures.estimators.gaussian_mixture import CausalGaussianMixture
    from causal_mixtures.estimators.out_of_core import ChunkedSource

    do = _parse_do(args.do, head[args.cause]) if args.do is not None else None
    cols = dict(effect=effect, cause=args.cause, mechanism=mechanism)
    if in_path.suffix.lower() in (".parquet", ".pq"):
        source = ChunkedSource.from_parquet(in_path, batch_rows=args.chunk_rows, **cols)
    else:
        sep = args.sep if args.sep is not None else ("\t" if in_path.suffix.lower() == ".tsv"
                                                     else ",")
        source = ChunkedSource.from_csv(in_path, chunk_rows=args.chunk_rows, sep=sep, **cols)
    model = _model(args, CausalGaussianMixture, strategy="weighting")
    start = time.perf_counter()
    model.fit_stream(source, do=do)
    n_do = len(model.do_values_)
    if args.n_samples is not None:
        check_rows(args.n_samples * n_do, f"--n-samples {args.n_samples} x {n_do} do values",
                   args.force)
    X_new, y_new = model.resample(n_samples=args.n_samples)
    return _write(args, out, out_path, model, X_new, y_new, model.causal_weights_.n_samples,
                  effect, mechanism, covariates, start)
