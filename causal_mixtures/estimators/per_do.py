"""A number of mixture components per intervention value, for imbalanced classes.

``n_components`` may be a dict ``{do value: K or "auto"}`` or a rule string ``"n/c"`` /
``"ess/c"``: ``K_y = max(1, floor(n_y / c))`` with ``n_y`` the training rows of class ``y``
(``"n/c"``; the paper's CT experiment set K ≈ n_y / 5 by hand: 400, 10, 55, 11, 4, 3 for
2093, 52, 171, 56, 21, 18 rows) or the Kish effective sample size of the weights of do value
``y`` (``"ess/c"``, which also applies to a continuous cause's grid), capped at what those
effective rows support (:func:`~causal_mixtures.mixture.degeneracy.max_components`). A dict
value ``"auto"`` chooses that do value's K by its own weighted BIC.

Every do value is fitted on its own (EM, ``n_init`` restarts), in the shared standardised
coordinates; the mixtures are stored on one batch axis, the smaller ones padded with
zero-weight components (never drawn, adding nothing to any density).
"""

from __future__ import annotations

import re
import types
from typing import Any

import numpy as np
import torch

from causal_mixtures._random import check_random_state
from causal_mixtures.estimators.common import match_do
from causal_mixtures.estimators.fitting import (
    fit_em,
    plugin_reference,
    plugin_rows,
    plugin_standardization,
)
from causal_mixtures.estimators.standardize import Standardization
from causal_mixtures.mixture.degeneracy import Degeneracy, max_components, rows_per_component
from causal_mixtures.mixture.params import Mixture
from causal_mixtures.mixture.result import FitResult
from causal_mixtures.weights.core import CausalWeights, kish_ess

__all__ = [
    "ComponentsPerDo",
    "components_per_do",
    "fit_per_do",
    "is_per_do",
]

_RULE = re.compile(r"^\s*(n|ess)\s*/\s*([0-9]+(?:\.[0-9]+)?)\s*$")


class ComponentsPerDo:
    """Constraint: a K per do value, as a non-empty dict ``{do value: int >= 1 or "auto"}``
    or a rule string ``"n/c"`` / ``"ess/c"`` with ``c > 0``."""

    def is_satisfied_by(self, v: Any) -> bool:
        if isinstance(v, str):
            m = _RULE.match(v)
            return m is not None and float(m.group(2)) > 0
        if not isinstance(v, dict) or not v:
            return False
        return all(
            k == "auto"
            if isinstance(k, str)
            else (isinstance(k, int | np.integer) and not isinstance(k, bool) and k >= 1)
            for k in v.values()
        )

    def __str__(self) -> str:
        return "a dict {do value: K (int >= 1) or 'auto'}, a rule 'n/c' or 'ess/c' (e.g. 'n/5')"


def is_per_do(n_components: Any) -> bool:
    """Whether ``n_components`` sets K per do value (a dict or a rule string)."""
    return isinstance(n_components, dict) or (
        isinstance(n_components, str) and n_components != "auto"
    )


def components_per_do(
    est: Any, cw: CausalWeights, y: np.ndarray | None, d: int, ess: np.ndarray | None = None
) -> list[int | str]:
    """K (or ``"auto"``) for every do value of ``cw``, from ``est.n_components``."""
    spec = est.n_components
    do_values = np.asarray(cw.do_values)
    if isinstance(spec, dict):
        found: dict[int, int | str] = {}
        for key, k in spec.items():
            found[match_do(key, do_values)] = k if isinstance(k, str) else int(k)
        missing = [v for j, v in enumerate(do_values.tolist()) if j not in found]
        if missing:
            raise ValueError(
                f"n_components gives K for {sorted(spec, key=str)} but not for the do value(s) "
                f"{missing}: a dict must name every intervention value "
                f"{do_values.tolist()}. Add them (e.g. {{{missing[0]!r}: 'auto'}})."
            )
        return [found[j] for j in range(len(do_values))]
    m = _RULE.match(spec)
    assert m is not None  # the parameter table checked it
    ess = cw.ess if ess is None else ess
    if m.group(1) == "n":
        counts = None if y is None else np.array([np.sum(y == v) for v in do_values.tolist()])
        if counts is None or counts.sum() != len(y):
            raise ValueError(
                f"n_components={spec!r} sets K from the training rows of each class, but the "
                "do values are not the classes of y (a continuous cause's grid, or explicit "
                f"weights). Use n_components='ess/{m.group(2)}' (from the effective rows) or a dict."
            )
        base = counts.astype(float)
    else:
        base = np.asarray(ess, dtype=float)
    cap = [
        max_components(np.asarray([e], dtype=float), d, est.covariance_type)
        for e in np.asarray(ess, dtype=float)
    ]
    return [
        int(max(1, min(np.floor(b / float(m.group(2)) + 1e-9), c)))
        for b, c in zip(base, cap, strict=True)
    ]


def _pad(res: FitResult, k_max: int) -> FitResult:
    """A one-member result with ``k_max`` components: the extra ones have weight zero (and
    the first component's parameters, so that every density stays finite)."""
    mix = res.mixture
    k = mix.weights.shape[-1]
    if k == k_max:
        return res
    extra = k_max - k

    def grow(a: torch.Tensor) -> torch.Tensor:
        rep = a[:, :1].expand(a.shape[0], extra, *a.shape[2:])
        return torch.cat([a, rep], dim=1)

    w = torch.cat([mix.weights, torch.zeros_like(mix.weights[:, :1]).expand(-1, extra)], dim=1)
    pc = None if mix.precisions_cholesky is None else grow(mix.precisions_cholesky)
    return FitResult(
        Mixture(w, grow(mix.means), grow(mix.covariances), mix.covariance_type, pc),
        res.lower_bound,
        res.converged,
        res.n_iter,
        res.history,
        None,
        dict(res.info),
    )


def _stack(per: list[FitResult], rows_needed: int) -> FitResult:
    k_max = max(int(r.mixture.weights.shape[-1]) for r in per)
    per = [_pad(r, k_max) for r in per]
    steps = max(r.history.shape[0] for r in per)

    def hist(h: torch.Tensor) -> torch.Tensor:
        return torch.cat([h, h[-1:].expand(steps - h.shape[0], -1)]) if h.shape[0] < steps else h

    def cat(name: str) -> torch.Tensor:
        return torch.cat([getattr(r.mixture, name) for r in per])

    pcs = [r.mixture.precisions_cholesky for r in per]
    mixture = Mixture(
        cat("weights"),
        cat("means"),
        cat("covariances"),
        per[0].mixture.covariance_type,
        None if any(p is None for p in pcs) else torch.cat(pcs),
    )
    info = {
        "reseeded": np.concatenate([r.info["reseeded"] for r in per]),
        "dropped": np.concatenate([r.info["dropped"] for r in per]),
        "degeneracy": Degeneracy(
            [
                (j, c, rows)
                for j, r in enumerate(per)
                for _, c, rows in r.info["degeneracy"].components
            ],
            rows_needed,
        ),
    }
    return FitResult(
        mixture,
        torch.cat([r.lower_bound for r in per]),
        torch.cat([r.converged for r in per]),
        torch.cat([r.n_iter for r in per]),
        torch.cat([hist(r.history) for r in per], dim=1),
        None,
        info,
    )


def _view(est: Any, **changes: Any) -> Any:
    """The estimator's parameters with ``changes`` (what the fitting steps read)."""
    return types.SimpleNamespace(**{**est.get_params(deep=False), **changes})


def fit_per_do(
    est: Any,
    X: np.ndarray,
    y: np.ndarray | None,
    mechanism: Any,
    cw: CausalWeights,
    weights: Any,
    device: torch.device,
    covariates: Any = None,
    *,
    strategy: str = "weighting",
    sampler: Any = None,
) -> tuple[FitResult, np.ndarray, np.ndarray, dict | None, None, Any]:
    """:func:`~causal_mixtures.estimators.fitting.fit_mixtures` with a K per do value: the
    result (data coordinates), K per do value, the BIC per do value, the K grids and their
    BICs of the ``"auto"`` do values (or ``None``), no prior, the plug-in sampler."""
    d = X.shape[1]
    rng = check_random_state(est.random_state)
    plugin = None
    if strategy == "plugin":
        ks_guess = components_per_do(est, cw, y, d)
        top = max([k for k in ks_guess if not isinstance(k, str)] or [1])
        blocks, plugin = plugin_rows(
            _view(est, n_components=top), X, y, mechanism, cw, weights, rng, covariates, sampler
        )
        std = plugin_standardization(blocks)
        m = len(blocks[0])
        data = [(std.data(b), np.full((1, m), 1.0 / m)) for b in blocks]
        ess = np.full(cw.n_do, float(min(m, len(X))))
    else:
        W = cw.values.T.copy()
        std = Standardization.of(X, W)
        Xs = std.data(X)
        data = [(Xs, W[j : j + 1]) for j in range(cw.n_do)]
        ess = kish_ess(W, axis=1)
    ks = components_per_do(est, cw, y, d, ess)
    per, chosen, bics, grids = [], [], [], {}
    for j, k in enumerate(ks):
        Xj, Wj = data[j]
        std_j = Standardization(std.shift, std.scale, std.relative_var[j : j + 1])
        res_j, k_j, bic_j, grid_j = fit_em(
            _view(est, n_components=k), Xj, Wj, rng, device, False, cw.do_values[j : j + 1], std_j
        )
        per.append(res_j)
        chosen.append(int(k_j))
        # Back on the data's scale: the Jacobian of the standardisation, as fit_mixtures does.
        shift = 2.0 * ess[j] * d * np.log(std.scale)
        bics.append(float(bic_j[0]) + shift)
        if grid_j is not None:
            grids[
                cw.do_values[j].item() if hasattr(cw.do_values[j], "item") else cw.do_values[j]
            ] = (grid_j[0], grid_j[1][:, 0] + shift)
    res = std.result_to_raw(_stack(per, rows_per_component(d, est.covariance_type)), d)
    if plugin is not None:
        res.info["fitted_reference"] = plugin_reference(blocks, cw.do_values)
    return res, np.asarray(chosen), np.asarray(bics), grids or None, None, plugin
