"""How a CausalGaussianMixture is fitted, step by step: the K grid, the initialisation, EM
with restarts, the weighted BIC, the Pyro fits started from EM, and the plug-in draws.

Each function reads the estimator's constructor parameters (never its fitted state) and
returns what the estimator stores; the fitters in :mod:`causal_mixtures.mixture` know
nothing of estimators.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
import torch

from causal_mixtures._random import check_random_state
from causal_mixtures.diagnostics.reference import WeightedReference, weighted_reference
from causal_mixtures.estimators.common import bic_turned
from causal_mixtures.estimators.plugin import PluginFrontDoor
from causal_mixtures.estimators.precision import refine_if_ill_conditioned, resolve_dtype
from causal_mixtures.estimators.standardize import Standardization
from causal_mixtures.exceptions import ConvergenceWarning, DegenerateFitError
from causal_mixtures.mixture.bayes import (
    check_nuts_size,
    fit_nuts,
    fit_posterior,
    likelihood_mass,
)
from causal_mixtures.mixture.degeneracy import (
    Degeneracy,
    find_degeneracy,
    max_components,
    rows_per_component,
)
from causal_mixtures.mixture.em import weighted_em
from causal_mixtures.mixture.init import initial_mixture
from causal_mixtures.mixture.model import MixturePrior
from causal_mixtures.mixture.params import Mixture, n_parameters
from causal_mixtures.mixture.result import FitResult, replace_members, result_in_float64
from causal_mixtures.mixture.svi import fit_map
from causal_mixtures.weights.core import CausalWeights, as_mechanism, kish_ess
from causal_mixtures.weights.density import is_discrete

__all__ = [
    "Standardization",
    "best_of_grid",
    "best_restart",
    "bic_per_do",
    "fit_em",
    "fit_mixtures",
    "fit_pyro",
    "fit_plugin_blocks",
    "fit_plugin_sampler",
    "plugin_draw_count",
    "plugin_reference",
    "plugin_rows",
    "plugin_standardization",
    "raw_bic",
    "repair_with",
    "search_k",
    "store_fit",
    "weight_mass",
]

DEFAULT_MAX_AUTO_K = 10
#: ``dtype=`` of the EM's tensors.
EM_DTYPES = {"float64": torch.float64, "float32": torch.float32}



def k_grid(
    est: Any, ess: np.ndarray, W: np.ndarray | None, d: int, do_values: np.ndarray, *,
    n_positive: np.ndarray | None = None,
) -> np.ndarray:
    """Candidate K: the fixed ``n_components``, or ``n_components_range`` (default 1..10),
    bounded by the effective rows: every component must be able to rest on the rows its
    covariance needs (:mod:`causal_mixtures.mixture.degeneracy`); ``ess`` (n_do,) is the
    Kish ESS of ``W``'s rows (``n_positive``, (n_do,): the rows of positive weight per do
    value, in place of ``W``)."""
    k_max = max_components(ess, d, est.covariance_type)
    need = rows_per_component(d, est.covariance_type)
    j = int(np.argmin(ess))
    where = (f"do value {_item(do_values[j])!r} has {ess[j]:.1f} effective rows (Kish ESS of its "
             f"weights) and each {est.covariance_type}-covariance component in {d} "
             f"dimension(s) needs {need}")
    if est.n_components != "auto":
        k = int(est.n_components)
        if k > k_max:
            raise DegenerateFitError(
                f"n_components={k} cannot be supported: {where}, so at most {k_max} "
                "component(s) fit without collapsing onto reg_covar (their draws would be "
                f"copies of training rows). Use n_components <= {max(k_max, 1)} or 'auto'"
                + (", covariance_type='diag'" if est.covariance_type == "full" else "")
                + ", or collect more rows."
            )
        return np.asarray([k])
    if k_max < 1:
        raise DegenerateFitError(
            f"not even one mixture component can be fitted: {where}. Collect more rows, "
            "use covariance_type='diag' or 'spherical' (2 rows per component), or check the "
            "weights (a tiny ESS means the causal weights concentrate on a few rows)."
        )
    if est.n_components_range is not None:
        grid = np.asarray(list(est.n_components_range))
        kept = grid[grid <= k_max]
        if len(kept) == 0:
            raise DegenerateFitError(
                f"every candidate in n_components_range={grid.tolist()} exceeds what the "
                f"data support ({where}, so K <= {k_max}). Offer smaller K."
            )
        return kept
    # No fixed top: the callers search K = 1, 2, ... until the BIC turns (bic_turned),
    # bounded by the effective rows and the rows carrying weight.
    n_pos = (W > 0).sum(1) if n_positive is None else n_positive
    return np.arange(1, min(int(np.min(n_pos)), k_max) + 1)


def initial(
    est: Any, X: np.ndarray, Xt: torch.Tensor, W: np.ndarray, k: int, n_init: int,
    rng: np.random.Generator, std: Standardization,
) -> Mixture:
    """The estimator's initialisation of ``n_init`` restarts per do value (user means and
    precisions mapped into the fit's standardised coordinates)."""
    return initial_mixture(
        X, Xt, W, k, covariance_type=est.covariance_type, init_params=est.init_params,
        n_init=n_init, reg_covar=std.reg_covar(est.reg_covar, n_init, Xt), rng=rng,
        weights_init=est.weights_init,
        means_init=None if est.means_init is None else std.means(est.means_init),
        precisions_init=(
            None if est.precisions_init is None else std.precisions(est.precisions_init)
        ),
    )


def fit_em_k(
    est: Any, X: np.ndarray, Xt: torch.Tensor, W: np.ndarray, k: int, rng: np.random.Generator,
    progress: Any, std: Standardization,
) -> FitResult:
    """Weighted EM with ``n_init`` restarts for every do value at once; the best restart
    (largest weighted log-likelihood) of each do value is kept."""
    n_do, n_init = W.shape[0], est.n_init
    Wt = torch.tensor(W, dtype=Xt.dtype, device=Xt.device)
    init = initial(est, X, Xt, W, k, n_init, rng, std)

    def callback(it: int, objective: torch.Tensor) -> None:
        if progress is not None:
            progress.update(1)
            progress.set_postfix(K=k, objective=f"{float(objective.mean()):.4f}")

    res = weighted_em(
        Xt, Wt if n_init == 1 else Wt.repeat(n_init, 1), init, reg_covar=std.reg_covar(est.reg_covar, n_init, Xt),
        tol=est.tol,
        max_iter=est.max_iter, callback=callback,
    )
    return repair_degenerate(est, X, Xt, W, k, rng, std, best_restart(res, n_init, n_do))


def best_restart(res: FitResult, n_init: int, n_do: int) -> FitResult:
    """The restart with the largest weighted log-likelihood of every do value, from a
    batch ``[restart 0: do 0..J-1, restart 1: ...]``."""
    if n_init == 1:
        return res
    lb = res.lower_bound.reshape(n_init, n_do)
    return res.select(lb.argmax(0) * n_do + torch.arange(n_do, device=lb.device))


#: Fresh k-means++ starts tried, at most, for a do value whose fit has a degenerate
#: component (the next only while each leaves fewer degenerate components).
RESEEDS = 2


def _grouped(found: Degeneracy) -> dict[int, set[int]]:
    """``{do index: degenerate components}``."""
    out: dict[int, set[int]] = {}
    for j, c, _ in found.components:
        out.setdefault(j, set()).add(c)
    return out


def repair_degenerate(
    est: Any, X: np.ndarray, Xt: torch.Tensor, W: np.ndarray, k: int,
    rng: np.random.Generator, std: Standardization, res: FitResult,
) -> FitResult:
    """Repair collapsed fits (:func:`repair_with`) of the rows in memory."""
    Wt = torch.as_tensor(W, dtype=Xt.dtype, device=Xt.device)
    return repair_with(
        est, res, k,
        em=lambda order, init, reg, drop: weighted_em(
            Xt, Wt[order], init, reg_covar=reg, tol=est.tol, max_iter=est.max_iter,
            dropped=drop),
        find=lambda mixture, order: find_degeneracy(mixture, Xt, Wt[order]),
        reseed=lambda order, reg: initial_mixture(
            X, Xt, W[order], k, covariance_type=est.covariance_type, init_params="k-means++",
            n_init=1, reg_covar=reg, rng=rng),
        reg_of=lambda order: std.reg_covar(est.reg_covar, 1, Xt, order),
    )


def repair_with(
    est: Any, res: FitResult, k: int, *, em: Any, find: Any, reseed: Any, reg_of: Any
) -> FitResult:
    """Repair collapsed fits. A do value with a component resting on fewer effective rows
    than its covariance needs (a likelihood spike on a few heavy rows) is refitted from
    fresh weighted k-means++ starts (:data:`RESEEDS`; a reseed replaces the fit when it has
    fewer degenerate components, and the next is tried only then), then its remaining
    degenerate components are dropped (weight held at zero) and EM is rerun on the others:
    the fit then has fewer components. ``info`` records ``"reseeded"`` (do values refitted),
    ``"dropped"`` (components dropped per do value) and ``"degeneracy"`` (what is left, for
    the caller to refuse).

    Wherever the rows are: ``em(order, init, reg, dropped)`` fits the do values ``order``
    (a list of indices), ``find(mixture, order)`` is the
    :class:`~causal_mixtures.mixture.degeneracy.Degeneracy` of the fit of those (do
    indices = positions in ``order``), ``reseed(order, reg)`` a k-means++ start and ``reg_of(order)`` their
    ``reg_covar`` (in memory: :func:`repair_degenerate`; out of core, streamed)."""
    n_do = res.mixture.weights.shape[0]
    device = res.mixture.weights.device
    everything = list(range(n_do))
    bad = _grouped(find(res.mixture, everything))
    reseeded = np.zeros(n_do, dtype=bool)
    dropped = torch.zeros((n_do, k), dtype=torch.bool, device=device)

    def refit(order: list[int], init: Mixture, drop: torch.Tensor | None = None) -> None:
        """Fit ``order`` from ``init`` and keep each new fit with fewer degenerate
        components than the one in ``res`` (every drop-stage fit: its start already has
        fewer). ``bad`` stays the degeneracy of what ``res`` holds, so that component
        indices always refer to the fit they are dropped from."""
        nonlocal res
        new = em(order, init, reg_of(order), drop)
        still = _grouped(find(new.mixture, order))
        better = [i for i, j in enumerate(order)
                  if drop is not None or len(still.get(i, ())) < len(bad[j])]
        if better:
            res = replace_members(res, [order[i] for i in better],
                                  new.select(torch.tensor(better)))
        for i in better:
            if i in still:
                bad[order[i]] = still[i]
            else:
                del bad[order[i]]

    # A reseed is for a start that was unlucky; where one leaves as many degenerate
    # components as before, there are too many components for the effective rows (e.g.
    # k-means puts outlying rows in clusters of their own, and k-means++ picks the same
    # rows again) and the next reseed is not tried: the drop stage decides.
    retry = set(bad)
    for _ in range(RESEEDS):
        order = [j for j in sorted(bad) if j in retry]
        if not order:
            break
        reseeded[order] = True
        before = {j: len(bad[j]) for j in order}
        refit(order, reseed(order, reg_of(order)))
        retry = {j for j in order if j in bad and len(bad[j]) < before[j]}
    for _ in range(k - 1):
        if not bad:
            break
        for j, comps in bad.items():
            dropped[j, sorted(comps)] = True
        order = [j for j in sorted(bad) if not bool(dropped[j].all())]
        if len(order) < len(bad):
            break  # nothing left to keep for some do value
        current = res.mixture.select(torch.tensor(order))
        drop = dropped[order]
        w = torch.where(drop, torch.zeros_like(current.weights), current.weights)
        init = Mixture(w / w.sum(-1, keepdim=True), current.means, current.covariances,
                       current.covariance_type, current.precisions_cholesky)
        refit(order, init, drop)
    res.info["reseeded"] = reseeded
    res.info["dropped"] = (dropped & (res.mixture.weights == 0)).sum(-1).cpu().numpy()
    # What is left for the caller (one more pass only when the repair failed).
    res.info["degeneracy"] = (
        find(res.mixture, everything) if bad
        else Degeneracy([], rows_per_component(res.mixture.n_features, est.covariance_type))
    )
    return res


def weight_mass(est: Any) -> str:
    """The estimator's weight-mass policy (``None`` means ``"ess"``)."""
    return est.weight_mass if est.weight_mass is not None else "ess"


def bic_per_do(est: Any, res: FitResult, k: int, d: int, ess: np.ndarray) -> np.ndarray:
    # The weighted log-likelihood is put on the scale of the data by the Kish ESS.
    total = ess * res.lower_bound.cpu().numpy()
    return -2.0 * total + n_parameters(k, d, est.covariance_type) * np.log(ess)


def fit_em(
    est: Any, X: np.ndarray, W: np.ndarray, rng: np.random.Generator, device: torch.device,
    verbose: bool, do_values: np.ndarray, std: Standardization,
) -> tuple[FitResult, int, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """EM over the K grid: the result with the smallest BIC summed over do values, its K,
    its BIC per do value and, for ``n_components="auto"``, the grid and its BICs."""
    ess = kish_ess(W, axis=1)
    # X is a private float64 copy: share its memory instead of copying again (float64), or
    # one float32 copy (dtype="float32": half the memory, about twice the matrix-product
    # speed; the result is returned in float64; "auto": see resolve_dtype).
    dtype, dtype_reason = resolve_dtype(est, X)
    Xt = torch.from_numpy(X).to(device=device, dtype=EM_DTYPES[dtype])
    auto = dtype == "float32" and getattr(est, "dtype", "float64") == "auto"
    # The bound by effective rows also guarantees K rows of positive weight (ESS <= rows).
    grid = k_grid(est, ess, W, X.shape[1], do_values)
    progress = None
    if verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=None if est.n_components == "auto" else est.max_iter,
                        desc="weighted EM", leave=False)
    try:
        def fit_k(k: int) -> FitResult:
            res = fit_em_k(est, X, Xt, W, k, rng, progress, std)
            res = refine_if_ill_conditioned(est, X, W, std, res) if auto else (
                result_in_float64(res))
            res.info["dtype_reason"] = dtype_reason + (
                f"; refitted in float64: {res.info['dtype_refined']}"
                if "dtype_refined" in res.info else "")
            res.info.setdefault("dtype", dtype)
            return res

        return search_k(est, grid, fit_k, ess, X.shape[1], do_values)
    finally:
        if progress is not None:
            progress.close()


def search_k(
    est: Any, grid: np.ndarray, fit_k: Any, ess: np.ndarray, d: int, do_values: np.ndarray
) -> tuple[FitResult, int, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Fit ``fit_k(k)`` along the K ``grid`` (for ``"auto"`` without a range, until the
    BIC summed over do values turns) and keep the best (:func:`best_of_grid`): the
    in-memory and the out-of-core EM share it."""
    results, bics, totals = [], [], []
    search = est.n_components == "auto" and est.n_components_range is None
    for k in grid.tolist():
        res = result_in_float64(fit_k(int(k)))
        results.append(res)
        bics.append(bic_per_do(est, res, int(k), d, ess))
        totals.append(np.inf if res.info["degeneracy"] else float(bics[-1].sum()))
        if search and bic_turned(totals):
            break
    return best_of_grid(est, grid[: len(results)], results, bics, do_values)


def best_of_grid(
    est: Any, grid: np.ndarray, results: list[FitResult], bics: list[np.ndarray],
    do_values: np.ndarray,
) -> tuple[FitResult, int, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """The fit of the K grid with the smallest BIC summed over do values (degenerate fits
    excluded), its K, its BIC per do value and, for ``"auto"``, the grid and its BICs."""
    bics_arr = np.asarray(bics)
    degenerate = [r.info["degeneracy"] for r in results]
    total = np.where([bool(g) for g in degenerate], np.inf, bics_arr.sum(1))
    if not np.isfinite(total).any():
        raise DegenerateFitError(_degenerate_message(degenerate[0], do_values, grid[0]))
    best = int(total.argmin())
    grid_info = (grid, bics_arr) if est.n_components == "auto" else None
    return results[best], int(grid[best]), bics_arr[best], grid_info


def _item(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _degenerate_message(found: Degeneracy, do_values: np.ndarray, k: int) -> str:
    shown = "; ".join(
        f"do value {_item(do_values[j])!r}, component {c} rests on {rows:.1f} effective rows"
        for j, c, rows in found.components[:3]
    )
    return (
        f"the {k}-component fit is degenerate: {shown} (a covariance of this type needs "
        f"{found.rows_needed}); it collapsed onto reg_covar and its draws would be near-copies "
        "of a few training rows. Use fewer components (or n_components='auto'), a larger "
        "reg_covar, init_params='k-means++' with n_init > 1, or smooth heavy-tailed weights "
        "(weight_smoothing='psis')."
    )


def fit_pyro(
    est: Any, X: np.ndarray, W: np.ndarray, device: torch.device, do_values: np.ndarray,
    std: Standardization,
) -> tuple[FitResult, int, MixturePrior | None, tuple | None]:
    """SVI-MAP, variational posterior or NUTS from the EM fit (``svi_init="em"``) or
    from the ``init_params`` initialisation."""
    if est.inference == "bayes" and est.guide == "nuts":
        check_nuts_size(len(X))
    if est.svi_init == "em":
        with warnings.catch_warnings():
            # EM is only the starting point here; convergence is judged on this fit.
            warnings.simplefilter("ignore", ConvergenceWarning)
            em, k, _, grid_info = fit_em(
                est, X, W, check_random_state(est.random_state), device, False, do_values, std
            )
        init = em.mixture.inside_simplex()  # dropped components: Pyro's Dirichlet needs w > 0
        rng = check_random_state(est.random_state)
    else:
        grid_info = None
        if est.n_components == "auto":
            raise ValueError(
                "n_components='auto' chooses K by the weighted BIC of EM fits; use "
                "svi_init='em' with it, or pass an int n_components."
            )
        rng = check_random_state(est.random_state)
        k = int(k_grid(est, kish_ess(W, axis=1), W, X.shape[1], do_values)[0])
        Xt0 = torch.tensor(X, dtype=torch.float64, device=device)
        init = initial(est, X, Xt0, W, k, 1, rng, std)
    Xt = torch.tensor(X, dtype=torch.float64, device=device)
    Wt = torch.tensor(W, dtype=torch.float64, device=device)
    mass = likelihood_mass(W, weight_mass(est))
    common = dict(random_state=rng, verbose=bool(est.verbose))
    svi_opts = dict(
        subsample_size=est.subsample_size, n_steps=est.n_steps,
        learning_rate=est.learning_rate, tol=est.tol,
    )
    prior = None
    if est.inference == "svi":
        res = fit_map(Xt, Wt, init, **svi_opts, **common)
    else:
        prior = MixturePrior.from_data(Xt)
        if est.guide == "nuts":
            res = fit_nuts(Xt, Wt, init, mass=mass, prior=prior,
                           n_draws=est.n_posterior_draws, **common)
        else:
            res = fit_posterior(Xt, Wt, init, mass=mass, prior=prior, guide=est.guide,
                                n_draws=est.n_posterior_draws, **svi_opts, **common)
    res.info["mass"] = mass
    return res, k, prior, grid_info


#: ``strategy="plugin"``: the floor on the draws per do value, per free parameter of the
#: largest mixture the K grid may fit.
PLUGIN_DRAWS_PER_PARAMETER = 50
#: ``strategy="plugin"``: the cap on the draws per do value.
PLUGIN_MAX_DRAWS = 200_000


def plugin_draw_count(est: Any, n: int, d: int) -> int:
    """Draws per do value of the plug-in: ``plugin_draws``, or ``n`` (the observed rows)
    clipped to ``[50 · p(K_max), 200 000]``.

    Why ``n``: the conditionals are estimated from ``n`` rows, so the estimation error of any
    mean under them is at least that of a mean over ``n`` rows; with ``n`` draws the
    Monte-Carlo error of the draws is at most that (a fraction <= 1 of the estimation error;
    together at most ``√2`` times the estimation error alone). The floor keeps 50 draws per
    free parameter ``p(K_max)`` of the largest mixture the K grid may fit; the cap bounds the
    cost for very large ``n``."""
    if est.plugin_draws is not None:
        return int(est.plugin_draws)
    if est.n_components == "auto":
        k_max = max(est.n_components_range or range(1, DEFAULT_MAX_AUTO_K + 1))
    else:
        k_max = int(est.n_components)
    floor = PLUGIN_DRAWS_PER_PARAMETER * n_parameters(int(k_max), d, est.covariance_type)
    return int(min(PLUGIN_MAX_DRAWS, max(n, floor)))


def fit_plugin_sampler(
    est: Any, X: np.ndarray, y: np.ndarray | None, mechanism: Any, cw: CausalWeights,
    weights: Any, rng: np.random.Generator, covariates: Any = None,
) -> PluginFrontDoor:
    """The plug-in's conditionals ``p(z | y, w)`` and ``p(x | y', z, w)``, fitted."""
    kind = "explicit weights" if cw.estimand is None else cw.estimand.kind
    if weights is not None or kind not in ("front_door", "front_door_covariates"):
        raise ValueError(
            f"strategy='plugin' samples the front-door formula and needs a front-door "
            f"graph (with or without covariates) with the mechanism data; got {kind}. Use "
            "strategy='weighting'."
        )
    z = as_mechanism(mechanism, len(X))
    if kind == "front_door_covariates":
        w = np.asarray(covariates)
        w = w.reshape(len(w), -1)
        if len(w) != len(X):
            raise ValueError(
                f"covariates must have one row per sample: expected {len(X)} rows (as X), "
                f"got {len(w)}. Pass the covariates of the rows of X."
            )
    else:
        w = None
    return PluginFrontDoor(
        est.plugin_components,
        discrete_cause=is_discrete(y),
        discrete_mechanism=is_discrete(z),
        random_state=int(rng.integers(0, 2**31 - 1)),
    ).fit(X, y, z, covariates=w)


def plugin_rows(
    est: Any, X: np.ndarray, y: np.ndarray | None, mechanism: Any, cw: CausalWeights,
    weights: Any, rng: np.random.Generator, covariates: Any = None,
    sampler: PluginFrontDoor | None = None,
) -> tuple[list[np.ndarray], PluginFrontDoor]:
    """Draws of the front-door formula, one block of :func:`plugin_draw_count` rows per do
    value (each fitted on its own rows by :func:`fit_plugin_blocks`), and the fitted
    sampler (``sampler`` when given: ``strategy="auto"`` fitted it already)."""
    if sampler is None:
        sampler = fit_plugin_sampler(est, X, y, mechanism, cw, weights, rng, covariates)
    m = plugin_draw_count(est, len(X), X.shape[1])
    return [sampler.sample(m, v, rng) for v in cw.do_values.tolist()], sampler


def _stack_blocks(per: list[FitResult], rows_needed: int) -> FitResult:
    """One result with member ``j`` the (single-member) fit of block ``j``."""
    device = per[0].lower_bound.device
    res = per[0].select(torch.zeros(len(per), dtype=torch.long, device=device))
    for j in range(1, len(per)):
        res = replace_members(res, [j], per[j])
    res.info["reseeded"] = np.concatenate([p.info["reseeded"] for p in per])
    res.info["dropped"] = np.concatenate([p.info["dropped"] for p in per])
    res.info["degeneracy"] = Degeneracy(
        [(j, c, r) for j, p in enumerate(per) for _, c, r in p.info["degeneracy"].components],
        rows_needed,
    )
    return res


def plugin_standardization(blocks: list[np.ndarray]) -> Standardization:
    """:class:`Standardization` of equally weighted blocks (do value ``j`` = block ``j``),
    without the (n_do, n_do · m) indicator matrix."""
    means = np.stack([b.mean(0) for b in blocks])
    shift = means.mean(0)
    var_j = np.stack([np.mean((b - shift) ** 2) for b in blocks])
    var = float(var_j.mean())
    scale = math.sqrt(var) if var > 0 and math.isfinite(var) else 1.0
    rel = np.array([float(np.mean(b.var(0))) for b in blocks]) / scale**2
    rel = np.where(np.isfinite(rel) & (rel > 0), rel, 1.0)
    return Standardization(shift, scale, rel)


def plugin_reference(blocks: list[np.ndarray], do_values: np.ndarray) -> WeightedReference:
    """The :class:`WeightedReference` of the plug-in draws, one block per do value (each
    summarised on its own rows: no (n_do · m, n_do) indicator matrix)."""
    refs = [
        weighted_reference(b, np.ones((len(b), 1)), do_values[j : j + 1], source="plug-in draws")
        for j, b in enumerate(blocks)
    ]
    fields = {
        f.name: (
            None if getattr(refs[0], f.name) is None
            else np.concatenate([getattr(r, f.name) for r in refs])
        )
        for f in dataclasses.fields(WeightedReference) if f.name != "source"
    }
    return WeightedReference(**fields, source="plug-in draws")


def fit_plugin_blocks(
    est: Any, blocks: list[np.ndarray], rng: np.random.Generator, device: torch.device,
    do_values: np.ndarray, std: Standardization, n_rows: int,
) -> tuple[FitResult, int, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """:func:`fit_em` for the plug-in's draws: every do value's mixture is fitted on its
    own block (standardised by ``std``), so the cost is ``n_do · m`` rows, not
    ``n_do² · m``; one K for all do values, by the BIC summed over them. K is bounded by
    the ``n_rows`` observed rows the conditionals were fitted to, not by the draws."""
    m, d = blocks[0].shape
    ess = np.full(len(blocks), float(m))
    W1 = np.full((1, m), 1.0 / m)
    grid = k_grid(est, np.full(len(blocks), float(min(m, n_rows))),
                  np.broadcast_to(W1, (len(blocks), m)), d, do_values)
    data = [std.data(b) for b in blocks]
    tensors = [torch.from_numpy(a).to(device) for a in data]

    def fit_k(k: int) -> FitResult:
        per = [
            fit_em_k(
                est, data[j], tensors[j], W1, k, rng, None,
                Standardization(std.shift, std.scale, std.relative_var[j : j + 1]),
            )
            for j in range(len(blocks))
        ]
        return _stack_blocks(per, rows_per_component(d, est.covariance_type))

    return search_k(est, grid, fit_k, ess, d, do_values)


def store_fit(
    est: Any, res: FitResult, cw: CausalWeights, k: int, bic: np.ndarray, X: np.ndarray,
    names: Any, prior: MixturePrior | None, grid_info: tuple | None, plugin: Any,
    reference: WeightedReference | None = None,
) -> None:
    """Set the fitted attributes of a :class:`CausalGaussianMixture` from its fit, and what
    the diagnostics need from the training rows (``weighted_reference_``: ``reference``
    when ``strategy="auto"`` computed it already; and the plug-in draws'
    ``plugin_reference_``), so that ``diagnose(model)`` runs without the data."""
    if plugin is not None:
        est.plugin_ = plugin
    if grid_info is not None:
        est.n_components_grid_, est.bic_grid_ = grid_info
    p = res.mixture.to_numpy()
    est.do_values_ = np.asarray(cw.do_values)
    est.causal_weights_ = cw
    est.n_components_ = k
    est.weights_ = p.weights
    est.means_ = p.means
    est.covariances_ = p.covariances
    est.precisions_cholesky_ = p.precisions_cholesky
    if est.covariance_type == "full":
        pc = est.precisions_cholesky_
        est.precisions_ = pc @ np.swapaxes(pc, -1, -2)
    else:
        est.precisions_ = est.precisions_cholesky_**2
    est.converged_ = res.converged.cpu().numpy()
    est.n_iter_ = res.n_iter.cpu().numpy()
    est.lower_bound_ = res.lower_bound.cpu().numpy()
    est.lower_bounds_ = res.history.cpu().numpy()
    est.bic_ = bic
    if "dtype" in res.info:
        est.dtype_ = res.info["dtype"]
        est.dtype_reason_ = res.info["dtype_reason"]
    if "reseeded" in res.info:
        est.reseeded_ = np.asarray(res.info["reseeded"])
        est.dropped_components_ = np.asarray(res.info["dropped"])
    est.n_features_in_ = X.shape[1]
    if names is not None:
        est.feature_names_in_ = names
    if est.inference != "em":
        est.weight_mass_ = weight_mass(est)
        est.likelihood_mass_ = res.info["mass"]
        est.fitted_inference_ = est.inference
    if res.posterior is not None:
        post = res.posterior
        est.posterior_ = {"weights": post.weights, "means": post.means,
                          "covariances": post.covariances}
        est.guide_ = res.info.get("guide")
        assert prior is not None
        est.prior_ = MixturePrior(
            prior.concentration, prior.mean_loc.cpu().numpy(), prior.mean_scale.cpu().numpy(),
            prior.scale_scale.cpu().numpy(), prior.lkj_concentration,
        )
    est.weighted_reference_ = (
        reference if reference is not None else weighted_reference(X, cw.values, cw.do_values)
    )
    if "fitted_reference" in res.info:
        est.plugin_reference_ = res.info["fitted_reference"]


def fit_mixtures(
    est: Any, X: np.ndarray, y: np.ndarray | None, mechanism: Any, cw: CausalWeights,
    weights: Any, device: torch.device, covariates: Any = None, *,
    strategy: str = "weighting", sampler: PluginFrontDoor | None = None,
) -> tuple[FitResult, int, np.ndarray, tuple | None, MixturePrior | None, Any]:
    """The whole fit on standardised rows, mapped back to the data's coordinates: the
    result, K, the BIC per do value, the K grid and its BICs (``"auto"``), the prior
    (Bayesian fits) and the plug-in sampler (``strategy="plugin"``, the resolved
    strategy; ``sampler`` an already fitted one)."""
    plugin = None
    d = X.shape[1]
    # Every fit runs on standardised rows (column means removed, one common scale), so
    # it is translation- and scale-equivariant and reg_covar is relative to the data.
    prior = None
    if est.inference == "em":
        rng = check_random_state(est.random_state)
        if strategy == "plugin":
            blocks, plugin = plugin_rows(est, X, y, mechanism, cw, weights, rng, covariates,
                                         sampler)
            std = plugin_standardization(blocks)
            res, k, _, grid_info = fit_plugin_blocks(est, blocks, rng, device, cw.do_values,
                                                     std, len(X))
            ess = np.full(cw.n_do, float(len(blocks[0])))
        else:
            W = cw.values.T.copy()  # (n_do, n)
            std = Standardization.of(X, W)
            res, k, _, grid_info = fit_em(
                est, std.data(X), W, rng, device, bool(est.verbose), cw.do_values, std
            )
            ess = kish_ess(W, axis=1)
        res = std.result_to_raw(res, d)
        if plugin is not None:
            res.info["fitted_reference"] = plugin_reference(blocks, cw.do_values)
    else:
        W = cw.values.T.copy()
        std = Standardization.of(X, W)
        res, k, prior, grid_info = fit_pyro(est, std.data(X), W, device, cw.do_values, std)
        res = std.result_to_raw(res, d, res.info["mass"])
        if prior is not None:
            prior = prior.affine(torch.as_tensor(std.shift, dtype=torch.float64), std.scale)
        ess = cw.ess
    bic, grid_info = raw_bic(est, res, k, d, ess, grid_info, std)
    return res, k, bic, grid_info, prior, plugin


def raw_bic(
    est: Any, res: FitResult, k: int, d: int, ess: np.ndarray, grid_info: tuple | None,
    std: Standardization,
) -> tuple[np.ndarray, tuple | None]:
    """The BIC per do value of the result on the data's scale, and the K grid's BICs moved
    there too (the Jacobian term is the same for every K)."""
    bic = bic_per_do(est, res, k, d, ess)
    if grid_info is not None:
        grid, bics = grid_info
        grid_info = (grid, bics + 2.0 * ess * d * np.log(std.scale))
    return bic, grid_info
