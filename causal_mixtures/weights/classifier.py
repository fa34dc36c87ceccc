"""``p(z | y)`` of a many-dimensional mechanism and a discrete cause, through a classifier.

Front-door weights need only ratios over the cause at the same mechanism value,
``w_n(y) = p(z_n | y) / p(z_n | y_n)``, and by Bayes' rule
``p(z | y) = P(y | z) p(z) / P(y)``: the factor ``p(z)`` cancels. So a probabilistic
classifier of ``y`` from ``z`` gives the weights without a density of ``z`` at all:
``log p(z | y) = log P̂(y | z) − log P̂(y) + log p(z)``, and :class:`ClassifierDensity`
returns the first two terms (its ``log_prob`` is the log-density *up to an additive term
that depends on z only*). This is what an embedded mask image needs: a kernel density in 8
dimensions from the 18 rows of a rare class is far too peaked (its weights put everything on
a handful of rows), while a multinomial logistic regression on the same embedding separates
the lesion types and pools the rows of every class (measured in ``docs/images.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from causal_mixtures.weights.density import ConditionalDensity

__all__ = ["ClassifierDensity"]


class ClassifierDensity(ConditionalDensity):
    """``log p(z | y)`` up to a term in ``z`` alone, from a probabilistic classifier.

    Only for a discrete cause and for uses where that term cancels (the front-door weights:
    ratios over ``y`` at the same ``z``). Not comparable with the log-likelihoods of the
    other densities (``density="auto"`` does not offer it).

    Parameters
    ----------
    classifier : estimator with ``predict_proba``, optional
        Cloned and fitted on ``(z, y)``; default ``KNeighborsClassifier(n_neighbors=30)``
        on standardised ``z``: probabilities that are constant where the classes are
        (a lesion type's cluster) and stay small where a rare class is absent, which is
        what the weights of a rare class need (a logistic regression's smooth tails put
        too much of a rare class's weight on the many rows of the common one).
    shrinkage : float, default=0.1
        The probabilities are shrunk towards the class frequencies,
        ``(1 - shrinkage) P̂(y | z) + shrinkage P̂(y)``, so that a class a row's neighbours
        happen to lack keeps a share in proportion to its frequency (an unshrunk zero would
        give that row an unbounded weight under every other do value). 0.1 was the best of
        0, 1/61, 1/31 and 0.1 on the head-CT phantoms (distance of the weights to the
        true ones, ``docs/images.md``).
    min_proba : float, default=1e-12
        Floor of the shrunk probabilities (numerical safety only).
    cv : int, default=5
        Folds of the cross-fitting: at the rows it was fitted on, the probabilities are
        out-of-fold predictions (a classifier that has seen a row overstates ``P(y_n | z_n)``
        there: a nearest-neighbour classifier counts the row itself among its neighbours,
        and a rare class's off-type rows would lose most of their weight). Folds are
        stratified and fixed (``random_state=0``); ``cv=1`` turns cross-fitting off.

    Attributes
    ----------
    classes_ : ndarray
    prior_ : ndarray of shape (n_classes,)
        The class frequencies ``P̂(y)``.
    classifier_ : the fitted classifier
    """

    requires_discrete_cause = True

    def __init__(
        self,
        classifier: Any = None,
        shrinkage: float = 0.1,
        min_proba: float = 1e-12,
        cv: int = 5,
    ) -> None:
        self.classifier = classifier
        self.shrinkage = shrinkage
        self.min_proba = min_proba
        self.cv = cv

    def fit(self, z: np.ndarray, y: np.ndarray) -> ClassifierDensity:
        from sklearn.base import clone
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        z = np.asarray(z, dtype=float).reshape(len(z), -1)
        y = np.asarray(y)
        self.classes_, counts = np.unique(y, return_counts=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"ClassifierDensity needs at least two classes of the cause; got "
                f"{self.classes_.tolist()}."
            )
        self.prior_ = counts / counts.sum()
        model = (
            make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=min(30, len(y))))
            if self.classifier is None
            else clone(self.classifier)
        )
        self.classifier_ = clone(model).fit(z, y)
        order = list(np.asarray(self.classifier_.classes_).tolist())
        self._columns = [order.index(c) for c in self.classes_.tolist()]
        self._z_fit = z
        self.oof_proba_ = None
        folds = int(min(int(self.cv), counts.min()))
        if folds >= 2:
            from sklearn.model_selection import StratifiedKFold

            split = StratifiedKFold(folds, shuffle=True, random_state=0)
            oof = np.zeros((len(z), len(self.classes_)))
            for tr, ev in split.split(z, y):
                fold = clone(model).fit(z[tr], y[tr])
                cols = list(np.asarray(fold.classes_).tolist())
                p = np.asarray(fold.predict_proba(z[ev]))
                for k, c in enumerate(self.classes_.tolist()):
                    if c in cols:
                        oof[ev, k] = p[:, cols.index(c)]
            self.oof_proba_ = oof
        return self

    def log_prob_grid(self, z: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``log P̂(y = values_j | z_i) − log P̂(y = values_j)``, shape (m, J)."""
        z = np.asarray(z, dtype=float).reshape(len(z), -1)
        if (
            self.oof_proba_ is not None
            and z.shape == self._z_fit.shape
            and np.array_equal(z, self._z_fit)
        ):
            proba = self.oof_proba_  # the rows it was fitted on: cross-fitted probabilities
        else:
            proba = np.asarray(self.classifier_.predict_proba(z))[:, self._columns]
        s = float(self.shrinkage)
        proba = np.maximum((1.0 - s) * proba + s * self.prior_, float(self.min_proba))
        cls = self.classes_.tolist()
        out = np.empty((len(z), len(values)))
        for j, v in enumerate(np.asarray(values).tolist()):
            if v not in cls:
                raise ValueError(
                    f"do value {v!r} is not a class of the cause the ClassifierDensity was "
                    f"fitted on ({cls})."
                )
            k = cls.index(v)
            out[:, j] = np.log(proba[:, k]) - np.log(self.prior_[k])
        return out
