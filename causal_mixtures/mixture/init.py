"""Weighted initialisation of batched mixtures: weighted k-means, k-means++ seeding or centres
drawn with probability ``w``, then one M-step; user parameters override any part."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.cluster import KMeans, kmeans_plusplus

from causal_mixtures._random import derive_seed
from causal_mixtures.mixture.em import params_from_labels
from causal_mixtures.mixture.params import Mixture

__all__ = ["INIT_PARAMS", "KMEANS_ROWS", "initial_mixture", "nearest_centre", "start_labels",
           "user_init"]

INIT_PARAMS = ("kmeans", "k-means++", "random_from_data")

#: Above this many rows the k-means of ``init_params="kmeans"`` runs on this many rows
#: drawn with probability ``w`` (the weighted rows' distribution), and every row takes the
#: label of its nearest centre: the start of EM, not its answer, so a subsample's centres
#: serve as well, and the full k-means cost as much as the EM at 1e6 rows. At or below it
#: the k-means is the weighted one on all rows, as before.
KMEANS_ROWS = 100_000


#: Rows per block when every row takes its nearest centre.
_NEAREST_ROWS = 65_536


def nearest_centre(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of each row's nearest centre (Euclidean; ties to the lower index), by blocks of
    rows: scikit-learn's ``pairwise_distances_argmin`` sizes its blocks by a 1 GiB working
    memory, i.e. all 1e6 rows at once for 10 centres (80 MB)."""
    cc = (centres * centres).sum(1)
    out = np.empty(len(X), dtype=np.int64)
    for s in range(0, len(X), _NEAREST_ROWS):
        block = X[s : s + _NEAREST_ROWS]
        out[s : s + _NEAREST_ROWS] = (cc - 2.0 * block @ centres.T).argmin(1)
    return out


def _kmeans_labels(X: np.ndarray, w: np.ndarray, k: int, seed: int) -> np.ndarray:
    n = len(X)
    if n > KMEANS_ROWS:
        sub = np.random.default_rng(seed).choice(n, size=KMEANS_ROWS, replace=True,
                                                 p=w / w.sum())
        if len(np.unique(sub)) >= 2 * k:  # else the weight sits on a few rows: use them all
            km = KMeans(k, n_init=1, random_state=seed).fit(X[sub])
            return nearest_centre(X, km.cluster_centers_)
    return KMeans(k, n_init=1, random_state=seed).fit(X, sample_weight=w).labels_


def start_labels(
    X: np.ndarray, W: np.ndarray, k: int, *, init_params: str, n_init: int,
    rng: np.random.Generator, centres_only: bool = False,
) -> list[np.ndarray]:
    """The starting partition of every batch member ``[restart 0: do 0..J-1, restart 1:
    ...]``: the labels of the rows of ``X`` (n, d) under the weights ``W`` (n_do, n), or
    with ``centres_only`` the (k, d) centres whose nearest rows make the partition (for
    the out-of-core fit, which labels its chunks with :func:`nearest_centre`). One seed is
    drawn from ``rng`` per member, in that order."""
    n_do, n = W.shape
    out = []
    for _ in range(n_init):
        for j in range(n_do):
            w = W[j]
            seed = derive_seed(rng) % (2**32 - 1)
            if init_params == "kmeans":
                if centres_only:
                    out.append(KMeans(k, n_init=1, random_state=seed)
                               .fit(X, sample_weight=w).cluster_centers_)
                    continue
                out.append(_kmeans_labels(X, w, k, seed))
                continue
            if init_params == "k-means++":
                centres, _ = kmeans_plusplus(X, k, sample_weight=w, random_state=seed)
            else:
                idx = rng.choice(n, size=k, replace=False, p=w / w.sum())
                centres = X[idx]
            # Chunked: no (n, k, d) array of differences.
            out.append(centres if centres_only else nearest_centre(X, centres))
    return out


def _batch(arr: Any, b: int, shape_tail: tuple[int, ...], name: str, dtype, device) -> torch.Tensor:
    t = torch.tensor(np.asarray(arr, dtype=np.float64), dtype=dtype, device=device)
    if t.shape == shape_tail:
        t = t.expand((b, *shape_tail)).clone()
    if tuple(t.shape[1:]) != shape_tail or t.shape[0] != b:
        raise ValueError(
            f"{name} must have shape {shape_tail} or ({b}, *{shape_tail}) (one per "
            f"intervention value); got {tuple(t.shape)}."
        )
    return t


def initial_mixture(
    X: np.ndarray,
    Xt: torch.Tensor,
    W: np.ndarray,
    n_components: int,
    *,
    covariance_type: str,
    init_params: str,
    n_init: int,
    reg_covar: float | torch.Tensor,
    rng: np.random.Generator,
    weights_init: Any = None,
    means_init: Any = None,
    precisions_init: Any = None,
) -> Mixture:
    """Initial mixtures for the batch ``[restart 0: do 0..J-1, restart 1: ...]``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        The rows (NumPy, for scikit-learn's k-means).
    Xt : Tensor of shape (n, d)
        The same rows as a tensor (device and dtype of the fit).
    W : ndarray of shape (n_do, n)
        Non-negative weights per do value.
    n_components : int
    covariance_type, init_params, n_init, reg_covar
        As in :class:`~causal_mixtures.CausalGaussianMixture` (``reg_covar`` may be one value
        per batch member).
    rng : numpy.random.Generator
        One seed is drawn per (restart, do value), in that order.
    weights_init, means_init, precisions_init : array-like, optional
        scikit-learn shapes, optionally with a leading do axis; when all three are given no
        k-means runs.

    Returns
    -------
    Mixture
        Torch, batch ``n_init * n_do``.
    """
    n_do, n = W.shape
    params = None
    if weights_init is None or means_init is None or precisions_init is None:
        labels = np.stack(start_labels(X, W, n_components, init_params=init_params,
                                       n_init=n_init, rng=rng)).astype(np.int64)
        Wt = torch.tensor(W, dtype=Xt.dtype, device=Xt.device)
        Wt /= Wt.sum(-1, keepdim=True)
        params = params_from_labels(Xt, Wt if n_init == 1 else Wt.repeat(n_init, 1),
                                    torch.as_tensor(labels, device=Xt.device), n_components,
                                    reg_covar, covariance_type)
    return user_init(params, n_do, n_init, n_components, X.shape[1], covariance_type,
                     Xt.dtype, Xt.device, weights_init, means_init, precisions_init)


def user_init(
    params: Mixture | None, n_do: int, n_init: int, k: int, d: int, covariance_type: str,
    dtype: torch.dtype, device: torch.device, weights_init: Any = None, means_init: Any = None,
    precisions_init: Any = None,
) -> Mixture:
    """``params`` (batch ``n_init * n_do``; ``None`` when all three user parts are given)
    with the user's ``weights_init``, ``means_init`` and ``precisions_init`` in their
    place."""
    ct = covariance_type
    tail_cov = {"full": (k, d, d), "diag": (k, d), "spherical": (k,)}[ct]
    weights = params.weights if params is not None else None
    means = params.means if params is not None else None
    if weights_init is not None:
        weights = _batch(weights_init, n_do, (k,), "weights_init", dtype, device).repeat(n_init, 1)
    if means_init is not None:
        means = _batch(means_init, n_do, (k, d), "means_init", dtype, device).repeat(n_init, 1, 1)
    if precisions_init is not None:
        prec = _batch(precisions_init, n_do, tail_cov, "precisions_init", dtype, device)
        prec = prec.repeat((n_init,) + (1,) * len(tail_cov))
        return Mixture.from_precisions(weights, means, prec, ct)
    assert params is not None
    return Mixture(weights, means, params.covariances, ct, params.precisions_cholesky)
