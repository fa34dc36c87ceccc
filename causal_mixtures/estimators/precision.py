"""The EM's precision: ``dtype="auto"`` (float32 where it is fast and safe, float64
otherwise) and the float64 refit of a float32 fit whose components are ill-conditioned.

The thresholds were measured against float64 fits (see :data:`AUTO_FLOAT32_MAX_CONDITION`
and ``tests/test_em.py``); ``docs/benchmarks.md`` has what float32 buys end to end.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from causal_mixtures.estimators.standardize import Standardization
from causal_mixtures.mixture.em import weighted_em
from causal_mixtures.mixture.result import FitResult, result_in_float64
from causal_mixtures.weights.streamed import keep_positions

__all__ = [
    "AUTO_FLOAT32_MAX_CONDITION",
    "AUTO_FLOAT32_MIN_ENTRIES",
    "AUTO_FLOAT32_MIN_FEATURES",
    "refine_if_ill_conditioned",
    "resolve_dtype",
]

#: ``dtype="auto"`` runs the EM in float32 when the data have at least this many entries
#: (rows x features) ...
AUTO_FLOAT32_MIN_ENTRIES = 2_000_000
#: ... and this many features (below, the matrix products that float32 speeds up are not
#: where the time goes) ...
AUTO_FLOAT32_MIN_FEATURES = 16
#: ... and the standardised data's covariance, and then every fitted component's, has a
#: condition number of at most this. Measured (64 features, 4e4 rows, K = 3, against the
#: float64 fit): the interventional means within 5e-5 sd at condition number 1e3, 1.5e-4
#: at 1e4, 2.4e-3 at 1e5 and 0.1 at 1e6.
AUTO_FLOAT32_MAX_CONDITION = 1e4
#: Rows (evenly spaced) on which the data's condition number is computed.
AUTO_CONDITION_ROWS = 20_000


def _condition(cov: np.ndarray) -> float:
    """The largest condition number of a stack of covariance matrices ``(..., d, d)``."""
    ev = np.linalg.eigvalsh(cov)
    lo, hi = ev[..., 0], ev[..., -1]
    return float(np.max(np.where(lo > 0, hi / np.where(lo > 0, lo, 1.0), np.inf)))


def _data_condition(X: np.ndarray) -> float:
    """The condition number of the covariance of at most :data:`AUTO_CONDITION_ROWS`
    evenly spaced rows of ``X``."""
    return _condition(np.cov(X[keep_positions(len(X), AUTO_CONDITION_ROWS)], rowvar=False))


def resolve_dtype(est: Any, X: np.ndarray) -> tuple[str, str]:
    """The EM's precision and why: ``dtype`` when it names one, else (``"auto"``) float32
    where it is fast and safe (:data:`AUTO_FLOAT32_MIN_ENTRIES`,
    :data:`AUTO_FLOAT32_MIN_FEATURES`, :data:`AUTO_FLOAT32_MAX_CONDITION`; EM only)."""
    dtype = getattr(est, "dtype", "float64")
    n, d = X.shape
    if dtype == "float32":
        cond = _data_condition(X) if d > 1 else 1.0
        if cond > 10 * AUTO_FLOAT32_MAX_CONDITION:
            warnings.warn(
                f"dtype='float32' on features whose covariance has condition number "
                f"{cond:.2g}: float32 EM loses digits there (measured: interventional means "
                "off by 2e-3 sd at 1e5, 0.1 sd at 1e6). Use dtype='auto' or 'float64'.",
                UserWarning, stacklevel=4,
            )
    if dtype != "auto":
        return dtype, f"dtype={dtype!r}"
    if est.inference != "em":
        return "float64", f"inference={est.inference!r} runs in float64"
    if d < AUTO_FLOAT32_MIN_FEATURES or n * d < AUTO_FLOAT32_MIN_ENTRIES:
        return "float64", (f"{n} x {d} is under float32's size ({AUTO_FLOAT32_MIN_ENTRIES:.0e} "
                           f"entries and {AUTO_FLOAT32_MIN_FEATURES} features)")
    cond = _data_condition(X)
    if cond > AUTO_FLOAT32_MAX_CONDITION:
        return "float64", (f"the features' covariance has condition number {cond:.2g} "
                           f"(> {AUTO_FLOAT32_MAX_CONDITION:.0e}: float32 would lose digits)")
    return "float32", f"{n} x {d}, condition number {cond:.2g}"


def refine_if_ill_conditioned(
    est: Any, X: np.ndarray, W: np.ndarray, std: Standardization, res: FitResult
) -> FitResult:
    """A ``dtype="auto"`` float32 fit, in float64; refitted by float64 EM from its
    parameters when a fitted component's covariance is conditioned worse than
    :data:`AUTO_FLOAT32_MAX_CONDITION` (float32 is accurate for the data as a whole but not
    for that component). Dropped components stay dropped."""
    res = result_in_float64(res)
    mix = res.mixture
    if mix.covariance_type == "full":
        cov = mix.covariances.cpu().numpy()
        live = mix.weights.cpu().numpy() > 0
        cond = _condition(cov[live]) if live.any() else 1.0
    elif mix.covariance_type == "diag":
        c = mix.covariances.cpu().numpy()[mix.weights.cpu().numpy() > 0]
        cond = float((c.max(-1) / c.min(-1)).max()) if c.size else 1.0
    else:
        cond = 1.0
    if cond <= AUTO_FLOAT32_MAX_CONDITION:
        return res
    X64 = torch.from_numpy(X).to(mix.means.device)
    W64 = torch.as_tensor(W, dtype=torch.float64, device=X64.device)
    dropped = mix.weights == 0
    again = weighted_em(X64, W64, mix, reg_covar=std.reg_covar(est.reg_covar, 1, X64),
                        tol=est.tol, max_iter=est.max_iter,
                        dropped=dropped if bool(dropped.any()) else None)
    again.n_iter = again.n_iter + res.n_iter
    again.info = {**res.info, "dtype": "float64",
                  "dtype_refined": f"a component's covariance has condition number {cond:.2g}"}
    return again
