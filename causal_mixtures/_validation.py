"""Input validation: arrays, devices and the estimators' parameter-constraint tables.

Private module: the public API re-exports nothing from here.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Validate the ``device`` argument; ``None`` means CPU."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {device!r}.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} was requested but torch.cuda.is_available() is False on "
            "this machine. Use device='cpu'."
        )
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda'; got {device!r}.")
    return dev


def check_finite(name: str, values: np.ndarray, *, hint: str = "") -> None:
    """Raise ``ValueError`` naming ``name`` when ``values`` holds NaN or infinity."""
    if values.dtype.kind in "fc":
        bad = ~np.isfinite(values)
        if bad.any():
            idx = np.argwhere(bad)[0]
            where = tuple(int(i) for i in idx)
            raise ValueError(
                f"{name} must contain only finite values; found {int(bad.sum())} NaN or "
                f"infinite entries (first at index {where if len(where) > 1 else where[0]}). "
                + (hint or "Drop or impute those rows before fitting.")
            )


def as_2d_float(name: str, values: Any, *, allow_1d: bool = False) -> np.ndarray:
    """Convert to a finite float64 2-D array (a copy, never a view of the user's data)."""
    if hasattr(values, "toarray") or type(values).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} is a sparse matrix, but dense data is required. Convert it with "
            f"{name}.toarray() (or reduce it first, e.g. with TruncatedSVD)."
        )
    if np.asarray(values).dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has a complex dtype. Pass the real part "
            f"({name}.real) or split real and imaginary parts into columns."
        )
    arr = np.array(values, dtype=np.float64, copy=True)
    if arr.ndim == 1:
        if not allow_1d:
            raise ValueError(
                f"{name} must be 2-D of shape (n_samples, n_features); got a 1-D array of "
                f"shape {arr.shape}. Reshape it with {name}.reshape(-1, 1) if it holds a "
                "single feature."
            )
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, n_features); got shape {arr.shape}."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must have at least one row; got shape {arr.shape}.")
    check_finite(name, arr)
    return arr


def feature_names(values: Any) -> np.ndarray | None:
    """Column names of a pandas DataFrame (as an object array), else ``None``."""
    cols = getattr(values, "columns", None)
    if cols is None:
        return None
    names = np.asarray([str(c) for c in cols], dtype=object)
    return names


def check_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an ``int`` of at least ``minimum``; ``ValueError`` naming ``name`` else."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ValueError(
            f"{name} must be an int >= {minimum}; got {value!r} (type {type(value).__name__})."
        )
    return int(value)


# ---------------------------------------------------------------------- parameter tables
# Each estimator declares ``_parameter_constraints``: a dict from constructor parameter to a
# list of constraints, any one of which the value must satisfy (``None`` in the list allows
# None). ``validate_params`` checks the table at ``fit`` time, as scikit-learn does, and the
# error names the parameter, what it accepts and what it got.


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)


class Interval:
    """Numbers of a kind (``"int"`` or ``"real"``) in ``[low, high]`` (ends inclusive unless
    ``closed`` says otherwise: "both", "left", "right" or "neither"; ``None`` is unbounded)."""

    def __init__(
        self, kind: str, low: float | None, high: float | None, *, closed: str = "both"
    ) -> None:
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def is_satisfied_by(self, v: Any) -> bool:
        if not (_is_int(v) if self.kind == "int" else _is_real(v)):
            return False
        if isinstance(v, float | np.floating) and not np.isfinite(v):
            return False
        lo_ok = self.low is None or (v >= self.low if self.closed in ("both", "left") else v > self.low)
        hi_ok = self.high is None or (
            v <= self.high if self.closed in ("both", "right") else v < self.high
        )
        return bool(lo_ok and hi_ok)

    def __str__(self) -> str:
        kind = "an int" if self.kind == "int" else "a number"
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        lo = "-inf" if self.low is None else repr(self.low)
        hi = "inf" if self.high is None else repr(self.high)
        return f"{kind} in the range {left}{lo}, {hi}{right}"


class Options:
    """One of a fixed set of values (strings, usually)."""

    def __init__(self, *values: Any) -> None:
        self.values = values

    def is_satisfied_by(self, v: Any) -> bool:
        return isinstance(v, str | bool | type(None)) and any(
            type(v) is type(o) and v == o for o in self.values
        )

    def __str__(self) -> str:
        return "one of {" + ", ".join(repr(v) for v in self.values) + "}"


class InstanceOf:
    """An instance of one of ``types`` (described by ``description``)."""

    def __init__(self, types: type | tuple[type, ...], description: str) -> None:
        self.types, self.description = types, description

    def is_satisfied_by(self, v: Any) -> bool:
        return isinstance(v, self.types)

    def __str__(self) -> str:
        return self.description


class Boolean:
    """``True`` or ``False`` (Python or NumPy booleans)."""

    def is_satisfied_by(self, v: Any) -> bool:
        return isinstance(v, bool | np.bool_)

    def __str__(self) -> str:
        return "a bool"


class SequenceOf:
    """A non-empty list, tuple, range or 1-D array whose items all satisfy ``item``."""

    def __init__(self, item: Interval) -> None:
        self.item = item

    def is_satisfied_by(self, v: Any) -> bool:
        if isinstance(v, str | bytes) or not isinstance(v, list | tuple | range | np.ndarray):
            return False
        items = list(np.asarray(v).reshape(-1).tolist()) if isinstance(v, np.ndarray) else list(v)
        if isinstance(v, np.ndarray) and v.ndim != 1:
            return False
        return len(items) > 0 and all(self.item.is_satisfied_by(i) for i in items)

    def __str__(self) -> str:
        return f"a non-empty sequence of {str(self.item).replace('an int', 'ints', 1)}"


class HasMethods:
    """An object with all the methods ``names``."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def is_satisfied_by(self, v: Any) -> bool:
        return all(callable(getattr(v, n, None)) for n in self.names)

    def __str__(self) -> str:
        return "an object with " + " and ".join(f"'{n}'" for n in self.names)


def validate_params(owner: Any, constraints: dict[str, list[Any]]) -> None:
    """Check every constructor parameter of ``owner`` against its constraint list.

    Raises
    ------
    InvalidParameterError
        (a ``ValueError`` and a ``TypeError``) naming the parameter, what it accepts, the
        value received and, where the estimator gives one, what to try.
    """
    from causal_mixtures.exceptions import InvalidParameterError

    hints = getattr(owner, "_parameter_hints", {})
    for name, allowed in constraints.items():
        value = getattr(owner, name)
        if any(
            (c is None and value is None) or (c is not None and c.is_satisfied_by(value))
            for c in allowed
        ):
            continue
        described = [str(c) if c is not None else "None" for c in allowed]
        accepts = described[0] if len(described) == 1 else (
            ", ".join(described[:-1]) + " or " + described[-1]
        )
        hint = hints.get(name, "")
        raise InvalidParameterError(
            f"The {name!r} parameter of {type(owner).__name__} must be {accepts}; got "
            f"{value!r} (type {type(value).__name__})." + (f" {hint}" if hint else "")
        )
