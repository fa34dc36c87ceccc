"""Representations: the effect (and the mechanism) mapped into a space where a Gaussian
mixture, or a density of the mechanism, can be fitted, and the draws mapped back.

``CausalGaussianMixture(representation=...)`` fits its mixtures to ``T(X)`` for a
scikit-learn transformer ``T`` with ``inverse_transform`` and returns draws as
``T⁻¹(draws)`` in the columns of ``X``, optionally clipped to the range of the training
rows. ``mechanism_representation=...`` embeds a many-column mechanism (an image-valued
``z``, e.g. a lesion mask) before the weight density ``p(z | y)`` is estimated.

The ``"auto"`` rules leave every data set with at most :data:`AUTO_MIN_COLUMNS` columns
untouched (so no existing low-dimensional use changes):

* effect: ``PCA(n_components=0.95, svd_solver="full")`` (the components that keep 95 % of
  the variance) when ``X`` has more than :data:`AUTO_MIN_COLUMNS` columns;
* mechanism: ``PCA(n_components=MECHANISM_COMPONENTS, svd_solver="randomized")`` when the
  mechanism has more than :data:`AUTO_MIN_COLUMNS` columns: a density in more than a handful
  of dimensions cannot be estimated from a few thousand rows, whatever share of the
  variance the components keep. With an embedded mechanism and a discrete cause,
  ``density="auto"`` means the classifier ratio
  (:class:`~causal_mixtures.weights.classifier.ClassifierDensity`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone

from causal_mixtures._random import check_random_state
from causal_mixtures._validation import HasMethods, Options
from causal_mixtures.weights.classifier import ClassifierDensity
from causal_mixtures.weights.density import is_discrete

__all__ = [
    "AUTO_MIN_COLUMNS",
    "CLIP_OPTIONS",
    "MECHANISM_COMPONENTS",
    "EFFECT_CONSTRAINT",
    "MECHANISM_CONSTRAINT",
    "EmbeddedMechanism",
    "auto_effect_representation",
    "auto_mechanism_representation",
    "clip_bounds",
    "embed_mechanism",
    "mechanism_density",
    "fit_effect_representation",
    "to_original",
]

#: ``"auto"`` maps the data into a representation only above this many columns (an 16 × 16
#: image has 256 pixels; the 8 × 8 digits, 64, and the 100-feature MNIST configuration are
#: fitted as they are).
AUTO_MIN_COLUMNS = 256
#: Components of the ``"auto"`` mechanism representation.
MECHANISM_COMPONENTS = 8
#: ``clip``: ``"auto"`` clips draws to the training range only when they come back through a
#: representation.
CLIP_OPTIONS = ("auto",)

EFFECT_CONSTRAINT = [None, Options("auto"), HasMethods("fit", "transform", "inverse_transform")]
MECHANISM_CONSTRAINT = [None, Options("auto"), HasMethods("fit", "transform")]


def _seed(random_state: Any) -> int | None:
    """An int seed for a transformer, without consuming a caller's Generator (which would
    change every later draw of the fit)."""
    if random_state is None or isinstance(
        random_state, np.random.Generator | np.random.RandomState
    ):
        return 0 if random_state is not None else None
    return int(check_random_state(random_state).integers(0, 2**31 - 1))


def auto_effect_representation(n_columns: int, random_state: Any = None) -> Any:
    """The ``"auto"`` representation of an effect with ``n_columns`` columns: ``None`` up to
    :data:`AUTO_MIN_COLUMNS`, else ``PCA(n_components=0.95, svd_solver="full")``."""
    if n_columns <= AUTO_MIN_COLUMNS:
        return None
    from sklearn.decomposition import PCA

    return PCA(n_components=0.95, svd_solver="full", random_state=_seed(random_state))


def auto_mechanism_representation(n_columns: int, n_rows: int, random_state: Any = None) -> Any:
    """The ``"auto"`` representation of a mechanism: ``None`` up to
    :data:`AUTO_MIN_COLUMNS` columns, else the leading :data:`MECHANISM_COMPONENTS` principal
    components (randomized SVD, seeded)."""
    if n_columns <= AUTO_MIN_COLUMNS:
        return None
    from sklearn.decomposition import PCA

    k = int(min(MECHANISM_COMPONENTS, n_columns, n_rows))
    return PCA(n_components=k, svd_solver="randomized", random_state=_seed(random_state) or 0)


def _resolve(spec: Any, auto: Any) -> Any:
    if spec is None:
        return None
    if isinstance(spec, str):  # "auto" (the parameter table refuses any other string)
        return auto
    return clone(spec)


def _as_float_rows(name: str, T: Any, n: int) -> np.ndarray:
    out = np.asarray(T, dtype=np.float64)
    if out.ndim == 1:
        out = out.reshape(-1, 1)
    if out.ndim != 2 or out.shape[0] != n or not np.all(np.isfinite(out)):
        raise ValueError(
            f"the {name} must map the n = {n} rows to a finite array of shape (n, k); got "
            f"shape {out.shape}. Check the transformer (transform must return one row per row)."
        )
    return out


def fit_effect_representation(
    spec: Any, X: np.ndarray, random_state: Any
) -> tuple[Any, np.ndarray]:
    """The fitted effect representation (``None`` for none) and ``X`` in it (float64)."""
    rep = _resolve(
        spec, None if spec is None else auto_effect_representation(X.shape[1], random_state)
    )
    if rep is None:
        return None, X
    Z = rep.fit(X).transform(X)
    return rep, np.ascontiguousarray(_as_float_rows("representation", Z, len(X)))


class EmbeddedMechanism:
    """The mechanism as the weights see it: ``values`` (embedded or as given) and the fitted
    transformer (``None`` when the mechanism was used as it is)."""

    def __init__(self, values: Any, transformer: Any) -> None:
        self.values = values
        self.transformer = transformer


def embed_mechanism(spec: Any, mechanism: Any, random_state: Any) -> EmbeddedMechanism:
    """Embed a many-column mechanism (``spec``: ``None``, ``"auto"`` or a transformer)."""
    if mechanism is None or spec is None:
        return EmbeddedMechanism(mechanism, None)
    z = np.asarray(mechanism)
    if z.ndim > 2:  # images given as (n, h, w): flatten each row
        z = z.reshape(len(z), -1)
    if z.ndim != 2 or z.dtype.kind not in "biuf":
        if isinstance(spec, str):
            return EmbeddedMechanism(mechanism, None)  # "auto": a 1-D or categorical z stays
        raise ValueError(
            "mechanism_representation needs a numeric mechanism of shape (n_samples, "
            f"n_mechanism_features); got an array of shape {z.shape} and dtype {z.dtype}. "
            "Pass mechanism_representation=None for a 1-D or categorical mechanism."
        )
    auto = auto_mechanism_representation(z.shape[1], len(z), random_state)
    rep = _resolve(spec, auto)
    if rep is None:
        return EmbeddedMechanism(mechanism, None)
    zf = z.astype(np.float64)
    emb = _as_float_rows("mechanism_representation", rep.fit(zf).transform(zf), len(z))
    return EmbeddedMechanism(emb, rep)


def mechanism_density(density: Any, embedded: EmbeddedMechanism, y: Any) -> Any:
    """The weight density: ``density="auto"`` with an embedded mechanism and a discrete
    cause means :class:`~causal_mixtures.weights.classifier.ClassifierDensity` (a kernel
    density of an embedded mask image from the few rows of a rare class is far too peaked);
    anything else is left as given."""
    if (
        isinstance(density, str)
        and density == "auto"
        and embedded.transformer is not None
        and y is not None
        and is_discrete(np.asarray(y))
    ):
        return ClassifierDensity()
    return density


def clip_bounds(
    clip: Any, representation: Any, X: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """The per-column range of the training rows when draws are to be clipped to it
    (``clip=True``, or ``"auto"`` with a representation), else ``None``."""
    on = bool(clip) if not isinstance(clip, str) else representation is not None
    if not on:
        return None
    return X.min(axis=0), X.max(axis=0)


def to_original(representation: Any, Z: np.ndarray, bounds: Any) -> np.ndarray:
    """Draws ``Z`` of the fitted space in the columns of the data: ``inverse_transform``
    through the representation (when there is one), then clipped to ``bounds``."""
    X = Z
    if representation is not None:
        X = np.asarray(representation.inverse_transform(Z), dtype=np.float64)
    if bounds is not None:
        X = np.clip(X, bounds[0], bounds[1])
    return X
