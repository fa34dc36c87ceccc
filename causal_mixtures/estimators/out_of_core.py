"""The out-of-core fit of the front-door CW-GMM: rows streamed in chunks from a source that
does not fit in memory (a NumPy memmap, a Parquet file or dataset read by row groups, a CSV
file read by pandas chunks, or any re-iterable of arrays), never all loaded.

:class:`ChunkedSource` yields ``(X, y, z)`` chunks, a fresh pass per call;
:meth:`CausalGaussianMixture.fit_stream <causal_mixtures.CausalGaussianMixture.fit_stream>`
(:func:`fit_stream`) reads it in passes, each summing statistics over the chunks:

1. *scan*: the rows, the classes of the cause, the levels of the mechanism and the
   statistics of the mechanism's density (``density="discrete"``: the rows of every
   (y, z) cell; ``density="gaussian"``: each class's, or the joint (y, z), mean and
   covariance; ``density="kde"``: three more passes, the binned grids and their exact
   tails, :func:`~causal_mixtures.weights.streamed.fit_streamed_kde`), the column range
   of ``X``;
2. *weights*: every chunk's front-door log weights under that density; summed: the weight
   totals and ``Σ w²`` (Kish ESS), the weight share of every class of the cause (the
   positivity check, :mod:`~causal_mixtures.weights.overlap`), the largest log weights of
   every do value (Pareto ``k̂``), the weighted column moments (the standardisation),
   and an evenly spaced subsample: :data:`INIT_ROWS` rows for the k-means start,
   :data:`~causal_mixtures.diagnostics.reference.QUANTILE_ROWS` for the reference
   quantiles;
3. two passes for the weighted reference of the diagnostics (moments about the weighted
   means, then the fourth moments);
4. per K: one pass labelling every row by its nearest k-means centre (the start's M-step),
   then :func:`~causal_mixtures.mixture.em.weighted_em_stream` (one pass per EM iteration
   plus two), then one pass for the components' effective rows (degeneracy), and the
   in-memory fit's repair of a collapsed component, streamed.

The weights are recomputed chunk by chunk from the density in every pass, never stored.
Every sum is the in-memory fit's quantity summed in another order, so the fit equals
``fit(X, y, mechanism=z)`` to rounding whenever the start is the same: always for at most
:data:`INIT_ROWS` rows (the k-means runs on all of them), and for a start passed as
``weights_init``, ``means_init`` and ``precisions_init`` (tested to 1e-10). Details and
what is not streamed yet: ``docs/out_of_core.md``.

:func:`fit_distributed` runs the same passes on the shards of the rows held by the processes
of a ``torch.distributed`` group, every pass's sums combined by a
:class:`~causal_mixtures.estimators.reduction.Reducer` (the identity for :func:`fit_stream`),
and for ``inference="svi"`` the SVI-MAP from the EM fit with its gradients all-reduced
(:mod:`~causal_mixtures.estimators.sharded_svi`): ``docs/distributed.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from causal_mixtures._random import check_random_state
from causal_mixtures._validation import resolve_device
from causal_mixtures.diagnostics.reference import (
    QUANTILE_ROWS,
    WeightedReference,
    reference_from_moments,
    reference_moments,
)
from causal_mixtures.estimators.common import clear_fit, not_converged_message
from causal_mixtures.estimators.fitting import (
    EM_DTYPES,
    best_restart,
    k_grid,
    raw_bic,
    repair_with,
    search_k,
    store_fit,
)
from causal_mixtures.estimators.per_do import is_per_do
from causal_mixtures.estimators.reduction import ProcessGroupReducer, Reducer
from causal_mixtures.estimators.representation import AUTO_MIN_COLUMNS, clip_bounds
from causal_mixtures.estimators.sharded_svi import fit_svi_sharded, sharded_mass
from causal_mixtures.estimators.sources import ChunkedSource, as_source
from causal_mixtures.estimators.standardize import Standardization
from causal_mixtures.exceptions import ConvergenceWarning
from causal_mixtures.mixture.degeneracy import component_ess_chunks, degeneracy_of
from causal_mixtures.mixture.em import params_from_label_chunks, weighted_em_stream
from causal_mixtures.mixture.init import KMEANS_ROWS, nearest_centre, start_labels, user_init
from causal_mixtures.mixture.params import Mixture
from causal_mixtures.mixture.result import FitResult
from causal_mixtures.weights.core import check_support, resolve_do, resolve_graph
from causal_mixtures.weights.density import KernelDensityEstimate, rows_as_codes
from causal_mixtures.weights.overlap import (
    CauseOverlap,
    cause_strata,
    check_positivity,
    overlap_from_shares,
)
from causal_mixtures.weights.psis import pareto_khat
from causal_mixtures.weights.streamed import (
    MechanismScan,
    StreamedWeights,
    Weigher,
    WeightSums,
    chunk_weights,
    density_from_scan,
    fit_streamed_kde,
    keep_positions,
    merge_scans,
    reduce_weight_sums,
)

__all__ = ["INIT_ROWS", "ChunkedSource", "StreamedWeights", "fit_distributed", "fit_stream"]

#: Rows (evenly spaced) that the k-means start of an out-of-core fit runs on, with their
#: weights: every row up to this many (then the start is the in-memory fit's), else this
#: many evenly spaced rows. The in-memory k-means subsamples above the same count.
INIT_ROWS = KMEANS_ROWS


def _reference(
    src: ChunkedSource, weigher: Weigher, sums: WeightSums, means: np.ndarray,
    ess: np.ndarray, X_kept: np.ndarray, W_kept: np.ndarray, keep: np.ndarray, n: int,
    do_values: np.ndarray, reducer: Reducer,
) -> WeightedReference:
    """The diagnostics' :class:`WeightedReference` of the weighted rows: two more passes
    (:func:`~causal_mixtures.diagnostics.reference.reference_moments`), the quantiles
    from the rows the in-memory reference reads them from."""
    norm = 1.0 / sums.total

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for X, y, z in src:
            yield X, chunk_weights(weigher.log_weights(y, z), sums.ref, norm).T

    moments = reference_moments(chunks, means, reducer.sum)
    rows = np.searchsorted(keep, keep_positions(n, QUANTILE_ROWS))
    return reference_from_moments(do_values, ess, means, *moments, X_kept[rows],
                                  W_kept[:, rows].T)


def _scan(est: Any, src: ChunkedSource, reducer: Reducer) -> tuple[MechanismScan, int]:
    """Pass 1, and what it allows to refuse before any weight is computed; with the
    position of this process's first row among all the shards' rows (in rank order)."""
    scan = MechanismScan()
    for X, y, z in src:
        scan.add(X, y, z)
    parts = reducer.gather(scan)
    empty = [r for r, p in enumerate(parts) if p.n == 0]
    if empty and len(parts) == 1:
        raise ValueError("the source yielded no rows. Pass a source over at least one chunk.")
    if empty:
        raise ValueError(
            f"fit_distributed needs rows in every process's shard; the sources of ranks "
            f"{empty} yielded none. Split the rows so that every process holds at least one."
        )
    offset = sum(p.n for p in parts[: reducer.rank])
    scan = merge_scans(parts)
    for name, cols, auto in (("representation", scan.d, est.representation),
                             ("mechanism_representation", scan.d_z,
                              est.mechanism_representation)):
        if auto == "auto" and cols > AUTO_MIN_COLUMNS:
            raise ValueError(
                f"{name}='auto' would fit a PCA to the {cols} columns, which needs the rows "
                f"in memory. Pass {name}=None with the rows reduced in the source, or fit in "
                "memory."
            )
    discrete = scan.discrete_cause()
    distinct = len(scan.causes.counts) if discrete else 1 + int(scan.y_range[0] < scan.y_range[1])
    if distinct < 2:
        raise ValueError(
            "y must take at least two distinct values to define interventions; got a single "
            "value. Mechanism learning contrasts interventions on the cause."
        )
    return scan, offset


def _sum_weights(
    src: ChunkedSource, weigher: Weigher, scan: MechanismScan, centre: np.ndarray,
    classes: np.ndarray | None, keep: np.ndarray, reducer: Reducer, offset: int,
) -> tuple[WeightSums, np.ndarray, np.ndarray, np.ndarray]:
    """Pass 2: the weights' sums, and the rows at the positions ``keep`` with their log
    weights (of all the shards, this one's first row at ``offset``)."""
    sums = WeightSums(len(weigher.do_values), scan.d, scan.n, centre,
                      0 if classes is None else len(classes))
    levels = None if classes is None else classes.reshape(-1, 1)
    kept_x, kept_y, kept_lw = [], [], []
    for X, y, z in src:
        lw = weigher.log_weights(y, z, offset)
        sums.add(lw, X, None if levels is None else rows_as_codes(y.reshape(-1, 1), levels)[1])
        sel = keep[np.searchsorted(keep, offset):np.searchsorted(keep, offset + len(X))] - offset
        kept_x.append(X[sel])
        kept_y.append(y[sel])
        kept_lw.append(lw[sel])
        offset += len(X)
    sums = reduce_weight_sums(sums, reducer)
    check_support(sums.positive > 0, weigher.do_values)
    kept = reducer.gather([np.concatenate(k) for k in (kept_x, kept_y, kept_lw)])
    x, y, lw = (np.concatenate([p[i] for p in kept]) for i in range(3))
    return sums, x, y, lw


def _continuous_overlap(
    src: ChunkedSource, weigher: Weigher, sums: WeightSums, y_q: np.ndarray, ess: np.ndarray,
    reducer: Reducer,
) -> CauseOverlap:
    """The weight share of the quintile strata of a continuous cause (one more pass), the
    strata from the causes of the rows the quantiles are read from: all rows up to
    ``QUANTILE_ROWS``, then the in-memory strata exactly."""
    strata, _ = cause_strata(y_q, discrete_cause=False)
    edges = np.array([hi for _, hi in strata[:-1]])
    k, norm = len(strata), 1.0 / sums.total
    counts, share = np.zeros(k), np.zeros((k, len(norm)))
    for _, y, z in src:
        codes = np.searchsorted(edges, y.astype(np.float64), side="left")
        w = chunk_weights(weigher.log_weights(y, z), sums.ref, norm)
        counts += np.bincount(codes, minlength=k)
        share += np.stack([np.bincount(codes, weights=wj, minlength=k) for wj in w], axis=1)
    counts, share = reducer.sum(counts, share)
    return overlap_from_shares(strata, counts, share, ess)


# --------------------------------------------------------------------------- the fit
def _check_supported(est: Any, distributed: bool) -> None:
    """Refuse the settings the out-of-core fit does not stream (``fit_distributed``: nor
    distribute), saying what to use."""
    method = "fit_distributed" if distributed else "fit_stream"
    inference = ("em", "svi") if distributed else ("em",)
    refusals = [
        (est.inference not in inference, f"inference={est.inference!r}",
         "inference='em' (or 'svi' with fit_distributed, which holds every process's shard "
         "in memory)" if not distributed else "inference='em' or 'svi'"),
        (distributed and est.inference == "svi" and est.svi_init != "em",
         f"svi_init={est.svi_init!r}", "svi_init='em' (the SVI starts from the distributed "
         "EM fit)"),
        (est.strategy == "plugin", "strategy='plugin'", "strategy='weighting' (or 'auto', "
         "which means weighting out of core)"),
        (est.weight_smoothing is not None, f"weight_smoothing={est.weight_smoothing!r}",
         "weight_smoothing=None (Pareto smoothing rewrites the largest weights of every "
         "column in place)"),
        (is_per_do(est.n_components), f"n_components={est.n_components!r}",
         "one K for all do values (an int or 'auto')"),
        (not (est.representation is None or est.representation == "auto"),
         "a representation transformer", "representation=None, with the rows transformed "
         "in the source (e.g. by an IncrementalPCA fitted on a subsample)"),
        (not (est.mechanism_representation is None or est.mechanism_representation == "auto"),
         "a mechanism_representation transformer", "mechanism_representation=None, with "
         "the mechanism embedded in the source"),
    ]
    for bad, what, use in refusals:
        if bad:
            raise ValueError(
                f"{method} does not support {what}: the out-of-core fit is the weighted EM of "
                "the front-door CW-GMM from statistics summed over chunks"
                + (" (and the SVI-MAP from it, its gradients summed over the processes)"
                   if distributed else "") + f". Use {use}, or fit in memory with fit()."
            )


def _front_door_estimand(graph: Any) -> Any:
    from causal_mixtures.graph.identify import identify

    estimand = identify(resolve_graph(graph))
    if estimand.kind != "front_door":
        raise ValueError(
            f"fit_stream fits front-door graphs; the graph {graph!r} gives a "
            f"{estimand.kind.replace('_', '-')} estimand, whose weights need covariates or "
            "another density. Use a front-door graph, or fit in memory with fit()."
        )
    return estimand


def fit_stream(self: Any, source: Any, *, do: Any = None) -> Any:
    """Fit out of core: the rows streamed in chunks from a source that need not fit in
    memory (a NumPy memmap, a Parquet file or dataset read by row groups, CSV chunks,
    any re-iterable of arrays), for the front-door graph.

    A few passes sum what the in-memory :meth:`fit` computes from all rows: the
    mechanism density's statistics, the weights' totals, ESS, Pareto ``k̂`` and
    positivity shares, the standardisation, then the EM's sufficient statistics (one
    pass per iteration, :func:`~causal_mixtures.mixture.em.weighted_em_stream`). The
    weights are recomputed per chunk, never stored; memory is O(chunk) plus the
    k-means start's :data:`~causal_mixtures.estimators.out_of_core.INIT_ROWS`
    evenly spaced rows and the reference quantiles'
    :data:`~causal_mixtures.diagnostics.reference.QUANTILE_ROWS`. The fit equals
    ``fit(X, y, mechanism=z, do=do)`` on the same rows to rounding (tested to 1e-10)
    whenever the start is the same: with at most ``INIT_ROWS`` rows, or with
    ``weights_init``, ``means_init`` and ``precisions_init`` given. Then :meth:`sample`,
    :meth:`resample` and :func:`~causal_mixtures.diagnose` need no rows.

    Parameters
    ----------
    source : ChunkedSource, callable or list
        A :class:`~causal_mixtures.ChunkedSource` (``from_arrays``, ``from_parquet``,
        ``from_csv``), or what its constructor takes: a callable returning a fresh
        iterable of ``(X, y, mechanism)`` chunks in the same order at every call, or a
        list of chunks.
    do : array-like, optional
        Intervention values, as in :meth:`fit`.

    Returns
    -------
    self

    Raises
    ------
    ValueError
        For what is not streamed (yet): ``density`` other than ``"discrete"``,
        ``"gaussian"`` and ``"kde"`` (the binned KDE of a mechanism of one or two columns, one
        with a continuous cause; ``"auto"`` means ``"discrete"`` for a discrete mechanism and
        cause, ``"gaussian"`` for a continuous mechanism), ``inference`` other than
        ``"em"`` (:meth:`fit_distributed` fits ``"svi"``), ``strategy="plugin"``,
        ``weight_smoothing``, per-do-value K, a representation, covariates or another
        graph than the front door.
    PositivityError
        Where :meth:`fit` would refuse the weights (``positivity="raise"``).

    Notes
    -----
    A degenerate component is repaired as in :meth:`fit` (refits from fresh k-means++
    starts on the kept rows, then the component dropped). ``causal_weights_`` is a
    :class:`~causal_mixtures.estimators.out_of_core.StreamedWeights`: the summaries
    of the weights, not their values.

    Examples
    --------
    >>> import numpy as np, causal_mixtures as cm
    >>> data = cm.datasets.make_classification_2d(2000, random_state=0)
    >>> src = cm.ChunkedSource.from_arrays(data.X, data.y, data.mechanism, chunk_rows=500)
    >>> model = cm.CausalGaussianMixture(n_components=2, random_state=0).fit_stream(src)
    >>> model.sample(3, do=1).shape
    (3, 2)
    """
    return _fit_passes(self, source, do, Reducer(), distributed=False)


def fit_distributed(self: Any, source: Any, *, do: Any = None, group: Any = None) -> Any:
    """Fit on rows sharded over the processes of a ``torch.distributed`` process group
    (``torchrun``; gloo on CPUs, NCCL on GPUs): :meth:`fit_stream` on this process's
    shard, every pass's sums reduced over the group.

    Every process of the group calls it, with the same estimator parameters (the same
    ``random_state``) and ``do``, each on its own shard of the rows. Each pass of
    :meth:`fit_stream` sums statistics over the chunks; here every such sum is all-reduced
    (``sum`` for counts, totals and moments, ``max`` for the largest log weights, a
    gather in rank order for the scan's counts per value, the tails of the largest log
    weights that Pareto ``k̂`` reads and the evenly spaced rows of the k-means start and
    the reference quantiles). So every process ends with the same model, equal to
    ``fit_stream`` in one process on the shards concatenated in rank order to rounding
    (tested with two processes on loopback to 1e-10: means, covariances, weights, lower
    bound, ESS, ``k̂``).

    ``inference="svi"`` (SVI-MAP, started from that EM fit as in :meth:`fit`): every process
    holds its shard's rows and weights in memory and evaluates the ELBO on them (the prior
    and guide terms on rank 0 only); after every ``backward`` the gradients, the objective
    and, for the full-batch trust-region Newton steps, the Hessian of every process's part
    of one shared subsample of rows are all-reduced (Pyro's documented route for
    data-parallel SVI), so every process takes the same steps and ends with the same
    parameters: the optimum of ``fit(..., inference="svi")`` on all the rows (tested with
    two processes: means within 1e-8 of a standard deviation, objective 2e-16 relative).
    With ``subsample_size``, every process draws its share of each minibatch from its own
    rows (so the fit equals one process's only within the minibatch noise). Details:
    ``docs/distributed.md``.

    Parameters
    ----------
    source : ChunkedSource, callable or list
        This process's shard, as :meth:`fit_stream` takes it; at least one row.
    do : array-like, optional
        Intervention values, as in :meth:`fit` (the same in every process).
    group : ProcessGroup, optional
        The ``torch.distributed`` process group; ``None`` means the default (world)
        group.

    Returns
    -------
    self

    Raises
    ------
    RuntimeError
        When no ``torch.distributed`` process group is initialised.
    ValueError
        As :meth:`fit_stream` (but ``inference="svi"`` is supported, with
        ``svi_init="em"``; ``"bayes"`` is refused), and when a process's shard holds no
        rows.

    Notes
    -----
    The collective calls happen in the same order in every process; a process that raises
    (e.g. a bad chunk) leaves the others waiting until the group's timeout. With
    ``random_state=None`` the seed is drawn in rank 0 and shared, so that every process
    starts from the same k-means centres.

    Examples
    --------
    Under ``torchrun --nproc-per-node 2 script.py``::

        import torch.distributed as dist, causal_mixtures as cm
        dist.init_process_group("gloo")
        rows = np.array_split(np.arange(len(X)), dist.get_world_size())[dist.get_rank()]
        src = cm.ChunkedSource.from_arrays(X[rows], y[rows], z[rows], chunk_rows=10_000)
        model = cm.CausalGaussianMixture(n_components=3, random_state=0)
        model.fit_distributed(src)
        # SVI-MAP from the EM fit, its gradients all-reduced:
        cm.CausalGaussianMixture(n_components=3, inference="svi").fit_distributed(src)
    """
    self._check_params()
    _check_supported(self, True)  # a refused setting raises before the group is needed
    return _fit_passes(self, source, do, ProcessGroupReducer(group), distributed=True)


def _fit_passes(self: Any, source: Any, do: Any, reducer: Reducer, *, distributed: bool
                ) -> Any:
    """The passes of :func:`fit_stream`, every pass's sums combined by ``reducer`` (the
    identity in one process, :func:`fit_distributed`'s all-reduce over a group); then,
    for ``inference="svi"`` (``fit_distributed`` only), the SVI-MAP from the EM fit."""
    clear_fit(self)
    self._check_params()
    _check_supported(self, distributed)
    src = as_source(source)
    estimand = _front_door_estimand(self.graph)
    scan, offset = _scan(self, src, reducer)
    discrete_cause = scan.discrete_cause()
    classes = scan.classes() if discrete_cause else None
    do_values = resolve_do(classes if discrete_cause else np.asarray(scan.y_range), do,
                           discrete_cause=discrete_cause)
    density = density_from_scan(self.density, scan, discrete_cause)
    if isinstance(density, KernelDensityEstimate):
        density = fit_streamed_kde(density, scan, src, classes, do_values, reducer)
    weigher = Weigher(density, do_values, discrete_cause)
    n_do, d = len(do_values), scan.d
    centre = scan.rows.mean()  # the weighted moments are taken about the rows' mean
    keep = np.union1d(keep_positions(scan.n, INIT_ROWS), keep_positions(scan.n, QUANTILE_ROWS))
    sums, X_kept, y_kept, lw_kept = _sum_weights(src, weigher, scan, centre, classes, keep,
                                                 reducer, offset)
    ess = sums.total**2 / sums.total_sq
    overlap = None
    if discrete_cause:
        counts = np.array([scan.causes.counts[c] for c in classes.tolist()])
        overlap = overlap_from_shares(classes.tolist(), counts, sums.share / sums.total, ess)
        check_positivity(overlap, do_values, self.positivity)
    else:  # recorded for the diagnostics, not checked (as in memory)
        quantile_rows = np.searchsorted(keep, keep_positions(scan.n, QUANTILE_ROWS))
        overlap = _continuous_overlap(src, weigher, sums, y_kept[quantile_rows], ess, reducer)
    summary = StreamedWeights(
        do_values, ess,
        np.array([pareto_khat(sums.tail[j], log=True, n=int(sums.positive[j]))
                  for j in range(n_do)]),
        1.0 / sums.total, scan.n, estimand, density, overlap,
    )
    means = centre + sums.s1 / sums.total[:, None]
    std = Standardization.from_moments(centre, means, sums.s2 / sums.total[:, None])
    W_kept = chunk_weights(lw_kept, sums.ref, 1.0 / sums.total)  # (n_do, kept), normalised
    reference = _reference(src, weigher, sums, means, ess, X_kept, W_kept, keep, scan.n,
                           do_values, reducer)

    device = resolve_device(self.device)
    # dtype="auto" streams in float64: its float32 choice needs the condition of the fitted
    # components, and a streamed refit in float64 would cost every pass again.
    requested = getattr(self, "dtype", "float64")
    precision = "float64" if requested == "auto" else requested
    dtype = EM_DTYPES[precision]
    n_init = self.n_init
    init_rows = np.searchsorted(keep, keep_positions(scan.n, INIT_ROWS))
    X_init = std.data(X_kept[init_rows])
    W_init = W_kept[:, init_rows]
    # The rows' mean in the fit's coordinates: the start's moments are taken about it.
    row_mean = torch.as_tensor(std.means(centre), dtype=dtype, device=device)
    rng = check_random_state(self.random_state)
    if self.random_state is None and reducer.world_size > 1:  # the same start everywhere
        rng = np.random.default_rng(reducer.gather(int(rng.integers(2**63 - 1)))[0])
    norm = 1.0 / sums.total

    def chunks(scale: np.ndarray) -> Iterator[tuple[np.ndarray, torch.Tensor, np.ndarray]]:
        for X, y, z in src:
            w = chunk_weights(weigher.log_weights(y, z), sums.ref, scale)
            xs = std.data(X)
            yield xs, torch.as_tensor(xs, dtype=dtype, device=device), w

    like = torch.empty(0, dtype=dtype, device=device)

    def start(centres: list[np.ndarray], rows: list[int], k: int, reg: torch.Tensor) -> Mixture:
        """The M-step from the nearest of ``centres[b]`` of every row, member ``b`` weighted
        by the do value ``rows[b]``."""

        def labelled() -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
            for xs, xt, w in chunks(norm):
                lab = np.stack([nearest_centre(xs, c) for c in centres])
                yield (xt, torch.as_tensor(lab, device=device),
                       torch.as_tensor(w[rows], dtype=dtype, device=device))

        return params_from_label_chunks(labelled(), row_mean, k, reg, self.covariance_type,
                                        reducer.sum)

    def em(rows: list[int], init: Mixture, reg: torch.Tensor, drop: Any = None) -> FitResult:
        return weighted_em_stream(lambda: ((xt, w[rows]) for _, xt, w in chunks(norm)), init,
                                  reg_covar=reg, tol=self.tol, max_iter=self.max_iter,
                                  dropped=drop, reduce=reducer.sum)

    def find(mixture: Mixture, rows: list[int]) -> Any:
        weights = ((xt, torch.as_tensor(w[rows], dtype=dtype, device=device))
                   for _, xt, w in chunks(norm))
        return degeneracy_of(mixture, component_ess_chunks(mixture, weights, reducer.sum))

    def fit_k(k: int) -> FitResult:
        reg = std.reg_covar(self.reg_covar, n_init, like)
        members = list(range(n_do)) * n_init  # [restart 0: do 0..J-1, restart 1: ...]
        params = None
        if self.weights_init is None or self.means_init is None or self.precisions_init is None:
            centres = start_labels(X_init, W_init, k, init_params=self.init_params,
                                   n_init=n_init, rng=rng, centres_only=True)
            params = start(centres, members, k, reg)
        init = user_init(
            params, n_do, n_init, k, d, self.covariance_type, dtype, device, self.weights_init,
            None if self.means_init is None else std.means(self.means_init),
            None if self.precisions_init is None else std.precisions(self.precisions_init),
        )
        res = best_restart(em(members, init, reg), n_init, n_do)

        def reseed(rows: list[int], reg: torch.Tensor) -> Mixture:
            centres = start_labels(X_init, W_init[rows], k, init_params="k-means++", n_init=1,
                                   rng=rng, centres_only=True)
            return start(centres, rows, k, reg)

        return repair_with(self, res, k, em=em, find=find, reseed=reseed,
                           reg_of=lambda rows: std.reg_covar(self.reg_covar, 1, like, rows))

    grid = k_grid(self, ess, None, d, do_values, n_positive=sums.positive)
    svi = self.inference == "svi"
    with warnings.catch_warnings():
        if svi:  # EM is only the starting point: convergence is judged on the SVI fit
            warnings.simplefilter("ignore", ConvergenceWarning)
        res, k, _, grid_info = search_k(self, grid, fit_k, ess, d, do_values)
    mass = None
    if svi:
        res = fit_svi_sharded(self, res, ((xs, w) for xs, _, w in chunks(norm)), reducer,
                              offset, scan.n, device)
        mass = sharded_mass(self, ess, scan.n)
        res.info["mass"] = mass
    else:
        res.info["dtype"] = precision
        res.info["dtype_reason"] = f"dtype={requested!r}" + (
            " (streamed fits run in float64)" if requested == "auto" else "")
    res = std.result_to_raw(res, d, mass)
    bic, grid_info = raw_bic(self, res, k, d, ess, grid_info, std)
    store_fit(self, res, summary, k, bic, np.empty((0, d)), None, None, grid_info, None,
              reference=reference)
    self.strategy_ = "weighting"
    self.strategy_reason_ = ("weighting: the out-of-core fit (the plug-in's conditionals need "
                            "the rows in memory)")
    self.representation_ = None
    self.mechanism_representation_ = None
    self.n_representation_features_ = d
    self.score_space_ = "original"
    self.clip_range_ = clip_bounds(self.clip, None, np.stack([scan.x_min, scan.x_max]))
    self.class_counts_ = None
    if discrete_cause:
        observed = np.array([scan.causes.counts.get(v, 0) for v in do_values.tolist()])
        self.class_counts_ = observed if observed.sum() == scan.n else None
    if not bool(res.converged.all()):
        warnings.warn(not_converged_message(self, res, summary), ConvergenceWarning, stacklevel=3)
    return self
