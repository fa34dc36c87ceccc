"""A small torch autoencoder as a scikit-learn transformer (``fit`` / ``transform`` /
``inverse_transform``), for representations PCA cannot give in a few dimensions.

PCA is the best *linear* map to ``k`` dimensions. Images whose variation is a few nonlinear
factors (a blob that moves, a mask whose position and size vary) spread over many principal
components: the moving blob needs dozens of components for what two numbers (its position)
describe, and a density of the mechanism in dozens of dimensions cannot be estimated from a
few thousand rows. An autoencoder learns such factors. ``docs/images.md`` measures when
this pays and when PCA is enough.

The network is a multilayer perceptron: ``d → hidden... → n_components`` and back, ReLU
between layers, trained by Adam on the mean squared reconstruction error of the
standardised rows (column means removed, one common scale). Every draw (initial weights,
minibatch order) comes from ``random_state`` through a forked torch RNG, so the same seed
gives the same fit on the same device, and the global torch RNG is untouched.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

from causal_mixtures._random import RandomState, check_random_state, torch_rng
from causal_mixtures._validation import (
    InstanceOf,
    Interval,
    SequenceOf,
    as_2d_float,
    resolve_device,
    validate_params,
)

__all__ = ["Autoencoder"]


class _NoHiddenLayer:
    """Constraint: an empty tuple or list (a linear autoencoder, no hidden layer)."""

    def is_satisfied_by(self, v: Any) -> bool:
        return isinstance(v, tuple | list) and len(v) == 0

    def __str__(self) -> str:
        return "an empty tuple (no hidden layer)"


def _mlp(sizes: list[int]) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


class Autoencoder(TransformerMixin, BaseEstimator):
    """Multilayer-perceptron autoencoder with the scikit-learn transformer interface.

    Use it as ``CausalGaussianMixture(representation=Autoencoder(...))`` or
    ``mechanism_representation=Autoencoder(...)``, or on its own.

    Parameters
    ----------
    n_components : int, default=8
        Dimension of the code (the representation).
    hidden : sequence of int, default=(128,)
        Widths of the hidden layers of the encoder (the decoder mirrors them).
    max_epochs : int, default=200
        Passes over the rows at most.
    batch_size : int, default=128
        Rows per Adam step.
    learning_rate : float, default=1e-3
    weight_decay : float, default=0.0
        Adam's L2 penalty.
    tol : float, default=1e-4
        Training stops when the epoch's loss has not improved by a relative ``tol`` for
        ``patience`` epochs.
    patience : int, default=10
    random_state : int, numpy.random.Generator or None, default=None
        The only source of randomness (initial weights, minibatch order).
    device : {"cpu", "cuda"} or torch.device, default="cpu"
        Where the network is trained and run.

    Attributes
    ----------
    encoder_, decoder_ : torch.nn.Sequential
        The trained networks (float32, on ``device``).
    mean_ : ndarray of shape (n_features,)
    scale_ : float
        The standardisation ``(x - mean_) / scale_`` the networks see.
    loss_curve_ : ndarray of shape (n_iter_,)
        Mean squared reconstruction error (standardised units) per epoch.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from causal_mixtures import Autoencoder
    >>> X = np.random.default_rng(0).normal(size=(200, 20))
    >>> ae = Autoencoder(n_components=3, max_epochs=5, random_state=0).fit(X)
    >>> ae.transform(X).shape, ae.inverse_transform(ae.transform(X)).shape
    ((200, 3), (200, 20))
    """

    def __init__(
        self,
        n_components: int = 8,
        *,
        hidden: Any = (128,),
        max_epochs: int = 200,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        tol: float = 1e-4,
        patience: int = 10,
        random_state: RandomState = None,
        device: Any = "cpu",
    ) -> None:
        self.n_components = n_components
        self.hidden = hidden
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.tol = tol
        self.patience = patience
        self.random_state = random_state
        self.device = device

    _parameter_constraints: dict[str, list[Any]] = {
        "n_components": [Interval("int", 1, None)],
        "hidden": [SequenceOf(Interval("int", 1, None)), _NoHiddenLayer()],
        "max_epochs": [Interval("int", 1, None)],
        "batch_size": [Interval("int", 1, None)],
        "learning_rate": [Interval("real", 0, None, closed="neither")],
        "weight_decay": [Interval("real", 0, None)],
        "tol": [Interval("real", 0, None)],
        "patience": [Interval("int", 1, None)],
        "random_state": [
            None,
            Interval("int", 0, None),
            InstanceOf((np.random.Generator, np.random.RandomState), "a numpy Generator"),
        ],
        "device": [InstanceOf((str, torch.device), "'cpu', 'cuda', 'cuda:N' or a torch.device")],
    }
    _parameter_hints = {
        "n_components": "Try n_components=8.",
        "random_state": "Try random_state=0.",
    }

    def fit(self, X: Any, y: Any = None) -> Autoencoder:
        """Train the autoencoder on the rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        validate_params(self, self._parameter_constraints)
        X_arr = as_2d_float("X", X)
        n, d = X_arr.shape
        if n < 2:
            raise ValueError(f"Autoencoder needs at least 2 rows to fit; got {n}.")
        device = resolve_device(self.device)
        self.mean_ = X_arr.mean(axis=0)
        var = float(np.mean((X_arr - self.mean_) ** 2))
        self.scale_ = math.sqrt(var) if var > 0 else 1.0
        Xt = torch.tensor((X_arr - self.mean_) / self.scale_, dtype=torch.float32, device=device)
        widths = [int(h) for h in self.hidden]
        rng = check_random_state(self.random_state)
        bs = min(int(self.batch_size), n)
        losses: list[float] = []
        with torch_rng(rng, device):
            enc = _mlp([d, *widths, int(self.n_components)]).to(device)
            dec = _mlp([int(self.n_components), *widths[::-1], d]).to(device)
            opt = torch.optim.Adam(
                list(enc.parameters()) + list(dec.parameters()),
                lr=float(self.learning_rate),
                weight_decay=float(self.weight_decay),
            )
            best, stale = math.inf, 0
            for _ in range(int(self.max_epochs)):
                order = torch.randperm(n, device=device)
                total = 0.0
                for start in range(0, n, bs):
                    batch = Xt[order[start : start + bs]]
                    opt.zero_grad()
                    loss = torch.mean((dec(enc(batch)) - batch) ** 2)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(batch)
                losses.append(total / n)
                if losses[-1] < best * (1.0 - float(self.tol)):
                    best, stale = losses[-1], 0
                else:
                    stale += 1
                    if stale >= int(self.patience):
                        break
        enc.eval()
        dec.eval()
        self.encoder_, self.decoder_ = enc, dec
        self.loss_curve_ = np.asarray(losses)
        self.n_iter_ = len(losses)
        self.n_features_in_ = d
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "encoder_"):
            raise NotFittedError(
                "This Autoencoder instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using this estimator."
            )

    def _run(self, net: torch.nn.Module, A: np.ndarray) -> np.ndarray:
        device = next(net.parameters()).device
        out = []
        with torch.no_grad():
            for start in range(0, len(A), 4096):
                chunk = torch.tensor(A[start : start + 4096], dtype=torch.float32, device=device)
                out.append(net(chunk).double().cpu().numpy())
        return np.concatenate(out, axis=0) if out else np.zeros((0, 0))

    def transform(self, X: Any) -> np.ndarray:
        """The codes of the rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components), float64
        """
        self._check_fitted()
        X_arr = as_2d_float("X", X)
        if X_arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X_arr.shape[1]} features, but the Autoencoder was fitted with "
                f"{self.n_features_in_}. Pass rows with the columns it was fitted on."
            )
        return self._run(self.encoder_, (X_arr - self.mean_) / self.scale_)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Rows decoded from codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes (e.g. draws of a mixture fitted to :meth:`transform`'s output).

        Returns
        -------
        ndarray of shape (n_samples, n_features), float64
        """
        self._check_fitted()
        Z = as_2d_float("X", X)
        if Z.shape[1] != int(self.n_components):
            raise ValueError(
                f"codes must have n_components={self.n_components} columns; got {Z.shape[1]}."
            )
        return self._run(self.decoder_, Z) * self.scale_ + self.mean_
