"""A causal graph compiled into a structural causal model written as a Pyro program.

Details: ``docs/simulators.md``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine

from causal_mixtures._random import RandomState, check_random_state, torch_rng
from causal_mixtures._validation import check_int
from causal_mixtures.graph.core import CausalGraph

__all__ = ["Mechanism", "StructuralCausalModel"]

_F64 = torch.float64

#: A user mechanism: parent values -> distribution of the node (or its value).
Mechanism = Callable[[dict[str, torch.Tensor]], "torch.distributions.Distribution | torch.Tensor"]

_RESERVED = ("intercept", "noise_scale")


class StructuralCausalModel:
    """A causal graph compiled into a structural causal model (a Pyro program).

    Parameters
    ----------
    graph : CausalGraph or str
        The causal graph, or its specification in the graph language (e.g.
        ``"Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X"``). Every
        bidirected edge ``a <-> b`` becomes a latent ``N(0, 1)`` site named
        ``graph.latent_name(a, b)`` (``"U_X_Y"`` for ``Y <-> X``) feeding ``a`` and ``b``.
    mechanisms : mapping of str to callable or mapping, optional
        Mechanism of some observed nodes; the others get a default mechanism with
        coefficients drawn once from ``random_state``. A value is either

        - a callable ``f(parents: dict[str, Tensor]) -> Distribution | Tensor`` (see the
          module docstring), or
        - a mapping of coefficients of the default mechanism. For a continuous node:
          one number per parent (observed and latent, by name; use ``0.0`` to silence an
          edge), plus optional ``"intercept"`` (default 0) and ``"noise_scale"`` (> 0,
          default 1). For a discrete node with ``K`` categories: an array of ``K`` logits
          per parent and optional ``"intercept"`` (default zeros); for ``K = 2`` a number
          ``v`` stands for the logits ``(0, v)``.
    discrete : iterable of str or mapping of str to int, optional
        Nodes with a categorical-logistic default mechanism: names (2 categories each) or
        a mapping name -> number of categories (>= 2). Their values are ``int64`` codes
        ``0, ..., K - 1``.
    random_state : int, numpy.random.Generator or None, default=None
        Draws the default coefficients, and then serves as the default source of
        randomness of :meth:`sample` (successive calls continue the stream).

    Attributes
    ----------
    graph : CausalGraph
        The graph.
    latent_nodes : tuple of str
        Names of the latent confounder sites, one per bidirected edge.
    observed_nodes : tuple of str
        The observed nodes in the topological order in which they are sampled.
    coefficients : dict of str to dict
        The coefficients of every node with a default (linear-Gaussian or
        categorical-logistic) mechanism, user-given or drawn (a copy).
    n_categories : dict of str to int
        Number of categories of every discrete node.

    Raises
    ------
    ValueError
        On an unknown node, an invalid coefficient mapping (missing or unknown parents,
        non-finite values, ``noise_scale <= 0``) or an invalid ``discrete`` entry.

    See Also
    --------
    causal_mixtures.datasets.make_front_door_linear : The linear-Gaussian front-door SCM
        with its closed-form interventional distribution.

    Notes
    -----
    Defaults drawn from ``random_state``: intercepts uniform on ``[-1, 1]``, parent
    coefficients of magnitude uniform on ``[0.5, 1.5]`` with a random sign, noise scale 1;
    for discrete nodes standard-normal logits. The global NumPy and torch random states are
    never used nor modified.

    Examples
    --------
    >>> scm = StructuralCausalModel(
    ...     "Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X",
    ...     mechanisms={
    ...         "Y": {"U_X_Y": 1.0},
    ...         "Z": {"Y": 0.5},
    ...         "X": {"U_X_Y": 2.0, "Z": 1.5},
    ...     },
    ... )
    >>> scm.interventional_moments_exact("X", do={"Y": 2.0})
    (1.5, 7.25)
    >>> data = scm.sample(1000, do={"Y": 2.0}, random_state=0)
    >>> sorted(data), data["X"].shape
    (['X', 'Y', 'Z'], (1000,))
    """

    def __init__(
        self,
        graph: CausalGraph | str,
        *,
        mechanisms: Mapping[str, Mechanism | Mapping[str, Any]] | None = None,
        discrete: Iterable[str] | Mapping[str, int] | None = None,
        random_state: RandomState = None,
    ) -> None:
        if isinstance(graph, str):
            graph = CausalGraph.from_string(graph)
        if not isinstance(graph, CausalGraph):
            raise TypeError(
                "graph must be a CausalGraph or a graph specification string; got "
                f"{type(graph).__name__}."
            )
        self.graph = graph
        self._rng = check_random_state(random_state)

        latent_parents: dict[str, list[str]] = {n: [] for n in graph.nodes}
        latents: list[str] = []
        for a, b in graph.bidirected:
            name = graph.latent_name(a, b)
            latents.append(name)
            latent_parents[a].append(name)
            latent_parents[b].append(name)
        self.latent_nodes: tuple[str, ...] = tuple(latents)
        self.observed_nodes: tuple[str, ...] = tuple(graph.topological_order())
        self._parents: dict[str, tuple[str, ...]] = {
            n: tuple(graph.parents(n)) + tuple(latent_parents[n]) for n in graph.nodes
        }
        taken = set(graph.nodes) | set(latents)
        plate = "rows"
        while plate in taken:
            plate += "_"
        self._plate = plate

        self.n_categories: dict[str, int] = self._check_discrete(discrete)
        mechanisms = {} if mechanisms is None else mechanisms
        if not isinstance(mechanisms, Mapping):
            raise TypeError(
                "mechanisms must be a mapping from node name to a callable or a mapping of "
                f"coefficients; got {type(mechanisms).__name__}."
            )
        for node in mechanisms:
            self._check_observed("mechanisms", node)

        self._callables: dict[str, Mechanism] = {}
        self._coefficients: dict[str, dict[str, Any]] = {}
        for node in self.observed_nodes:
            spec = mechanisms.get(node)
            if spec is None:
                self._coefficients[node] = self._draw_coefficients(node)
            elif callable(spec):
                if node in self.n_categories:
                    raise ValueError(
                        f"node {node!r} is listed in discrete and has a callable mechanism; "
                        "a callable defines its own distribution: remove it from discrete."
                    )
                self._callables[node] = spec
            elif isinstance(spec, Mapping):
                self._coefficients[node] = self._check_coefficients(node, spec)
            else:
                raise TypeError(
                    f"mechanisms[{node!r}] must be a callable or a mapping of coefficients; "
                    f"got {type(spec).__name__}."
                )

    # ------------------------------------------------------------------ construction helpers

    def _check_observed(self, what: str, node: Any) -> str:
        if node not in self.graph:
            raise ValueError(
                f"{what} names the node {node!r}, which is not an observed node of the graph; "
                f"expected one of {list(self.observed_nodes)}."
            )
        return node

    def _check_discrete(self, discrete: Iterable[str] | Mapping[str, int] | None) -> dict[str, int]:
        if discrete is None:
            return {}
        if isinstance(discrete, str):
            raise TypeError(
                f"discrete must be an iterable of node names or a mapping name -> number of "
                f"categories; got the string {discrete!r}. Write discrete=[{discrete!r}]."
            )
        items = discrete.items() if isinstance(discrete, Mapping) else ((n, 2) for n in discrete)
        out: dict[str, int] = {}
        for node, k in items:
            self._check_observed("discrete", node)
            if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2:
                raise ValueError(
                    f"discrete[{node!r}] must be an int >= 2 (the number of categories); got {k!r}."
                )
            out[node] = int(k)
        return out

    def _draw_coefficients(self, node: str) -> dict[str, Any]:
        rng = self._rng
        if node in self.n_categories:
            k = self.n_categories[node]
            coefs: dict[str, Any] = {"intercept": rng.standard_normal(k)}
            for p in self._parents[node]:
                coefs[p] = rng.standard_normal(k)
            return coefs
        coefs = {"intercept": float(rng.uniform(-1.0, 1.0))}
        for p in self._parents[node]:
            coefs[p] = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5))
        coefs["noise_scale"] = 1.0
        return coefs

    def _check_coefficients(self, node: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        parents = self._parents[node]
        is_discrete = node in self.n_categories
        allowed = set(parents) | {"intercept"} | (set() if is_discrete else {"noise_scale"})
        unknown = [key for key in spec if key not in allowed]
        if unknown:
            raise ValueError(
                f"mechanisms[{node!r}] has unknown coefficient(s) {unknown}; expected keys "
                f"among {sorted(allowed)} (the parents of {node!r}, latent ones included, "
                f"{'and intercept' if is_discrete else 'intercept and noise_scale'})."
            )
        missing = [p for p in parents if p not in spec]
        if missing:
            raise ValueError(
                f"mechanisms[{node!r}] is missing coefficients for the parent(s) {missing}; "
                "give one per parent (0.0 to silence an edge)."
            )
        where = f"mechanisms[{node!r}]"
        if is_discrete:
            k = self.n_categories[node]
            out: dict[str, Any] = {
                "intercept": _logits(f"{where}['intercept']", spec.get("intercept", 0.0), k)
            }
            for p in parents:
                out[p] = _logits(f"{where}[{p!r}]", spec[p], k)
            return out
        out = {"intercept": _finite(f"{where}['intercept']", spec.get("intercept", 0.0))}
        for p in parents:
            out[p] = _finite(f"{where}[{p!r}]", spec[p])
        scale = _finite(f"{where}['noise_scale']", spec.get("noise_scale", 1.0))
        if scale <= 0:
            raise ValueError(f"{where}['noise_scale'] must be > 0; got {scale!r}.")
        out["noise_scale"] = scale
        return out

    # ------------------------------------------------------------------------- properties

    @property
    def coefficients(self) -> dict[str, dict[str, Any]]:
        """Coefficients of every node with a default mechanism (a deep copy)."""
        return {
            node: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in coefs.items()}
            for node, coefs in self._coefficients.items()
        }

    @property
    def is_linear_gaussian(self) -> bool:
        """Whether every observed node has a linear-Gaussian mechanism."""
        return not self._callables and not self.n_categories

    def parents(self, node: str) -> tuple[str, ...]:
        """The parents of ``node`` in the model: observed parents, then latent ones.

        Parameters
        ----------
        node : str
            An observed node.

        Returns
        -------
        tuple of str
        """
        return self._parents[self._check_observed("parents", node)]

    def __repr__(self) -> str:
        return f"StructuralCausalModel({self.graph.to_string()!r})"

    # ------------------------------------------------------------------------ the program

    def model(self, n: int) -> dict[str, torch.Tensor]:
        """The Pyro program of the SCM for ``n`` independent rows.

        Sample sites: the latents (``N(0, 1)``, float64), then the observed nodes in
        topological order, all inside a plate of size ``n``. Use it with any Pyro handler,
        e.g. ``pyro.poutine.do(scm.model, data={"Y": y})`` or ``poutine.trace``.

        Parameters
        ----------
        n : int
            Number of rows.

        Returns
        -------
        dict of str to torch.Tensor
            The value of every site (latents and observed nodes), each with leading
            dimension ``n``.
        """
        n = check_int("n", n)
        values: dict[str, torch.Tensor] = {}
        with pyro.plate(self._plate, n):
            for latent in self.latent_nodes:
                values[latent] = pyro.sample(
                    latent, dist.Normal(torch.zeros((), dtype=_F64), torch.ones((), dtype=_F64))
                )
            for node in self.observed_nodes:
                parents = {p: values[p] for p in self._parents[node]}
                values[node] = self._sample_node(node, parents, n)
        return values

    def _sample_node(self, node: str, parents: dict[str, torch.Tensor], n: int) -> torch.Tensor:
        if node in self._callables:
            out = self._callables[node](dict(parents))
            if isinstance(out, torch.distributions.Distribution):
                return pyro.sample(node, out)
            if isinstance(out, torch.Tensor):
                value = out if out.dim() >= 1 else out.expand(n)
                return pyro.sample(node, dist.Delta(value, event_dim=max(value.dim() - 1, 0)))
            raise TypeError(
                f"the mechanism of {node!r} must return a torch Distribution or a Tensor; "
                f"got {type(out).__name__}."
            )
        coefs = self._coefficients[node]
        if node in self.n_categories:
            logits = torch.tensor(coefs["intercept"], dtype=_F64).expand(n, -1)
            for p in self._parents[node]:
                value = _scalar_parent(node, p, parents[p], n)
                logits = logits + value.unsqueeze(-1) * torch.tensor(coefs[p], dtype=_F64)
            return pyro.sample(node, dist.Categorical(logits=logits))
        loc = torch.full((n,), coefs["intercept"], dtype=_F64)
        for p in self._parents[node]:
            loc = loc + coefs[p] * _scalar_parent(node, p, parents[p], n)
        scale = torch.tensor(coefs["noise_scale"], dtype=_F64)
        return pyro.sample(node, dist.Normal(loc, scale))

    # --------------------------------------------------------------------------- sampling

    def _rng_for(self, random_state: RandomState) -> np.random.Generator:
        return self._rng if random_state is None else check_random_state(random_state)

    def _interventions(self, do: Mapping[str, Any] | None, n: int) -> dict[str, torch.Tensor]:
        if do is None:
            return {}
        if not isinstance(do, Mapping):
            raise TypeError(
                f"do must be a mapping from node name to a value or an array; got "
                f"{type(do).__name__}, e.g. do={{'Y': 1.0}}."
            )
        sites = set(self.observed_nodes) | set(self.latent_nodes)
        out: dict[str, torch.Tensor] = {}
        for node, value in do.items():
            if node not in sites:
                raise ValueError(
                    f"do names {node!r}, which is not a node of the model; expected one of "
                    f"{list(self.observed_nodes) + list(self.latent_nodes)}."
                )
            arr = np.asarray(value)
            if arr.dtype.kind not in "biuf":
                raise ValueError(
                    f"do[{node!r}] must be numeric; got an array of dtype {arr.dtype}."
                )
            if arr.ndim == 0:
                arr = np.full(n, arr)
            elif arr.shape[0] != n:
                raise ValueError(
                    f"do[{node!r}] must be a scalar or an array with n = {n} rows; got shape "
                    f"{arr.shape}."
                )
            if node in self.n_categories:
                k = self.n_categories[node]
                codes = arr.astype(np.int64)
                if not np.array_equal(codes, arr) or codes.min() < 0 or codes.max() >= k:
                    raise ValueError(
                        f"do[{node!r}] must hold category codes in 0..{k - 1} (node {node!r} "
                        f"is discrete with {k} categories); got values {np.unique(arr)[:10]}."
                    )
                out[node] = torch.tensor(codes, dtype=torch.int64)
            else:
                arr = arr.astype(np.float64)
                if not np.all(np.isfinite(arr)):
                    raise ValueError(f"do[{node!r}] must be finite; got NaN or infinite values.")
                out[node] = torch.tensor(arr, dtype=_F64)
        return out

    def sample(
        self,
        n: int,
        *,
        do: Mapping[str, Any] | None = None,
        include_latent: bool = False,
        random_state: RandomState = None,
    ) -> dict[str, np.ndarray]:
        """Draw ``n`` rows from the SCM, optionally under an intervention.

        Parameters
        ----------
        n : int
            Number of rows.
        do : mapping of str to scalar or array-like, optional
            Interventions ``do(node = value)``: a scalar for all rows or an array with
            ``n`` rows. Applied with :func:`pyro.poutine.do`; the intervened node's
            descendants see the value, its own mechanism is cut. Discrete nodes take
            integer codes.
        include_latent : bool, default=False
            Also return the latent confounders (keys :attr:`latent_nodes`).
        random_state : int, numpy.random.Generator or None, default=None
            Source of randomness of this call; ``None`` continues the model's own stream
            (seeded by the constructor's ``random_state``).

        Returns
        -------
        dict of str to numpy.ndarray
            One array per observed node (and latent, if requested), with ``n`` rows:
            ``float64`` for continuous nodes, ``int64`` for discrete ones.

        Raises
        ------
        ValueError
            If ``do`` names an unknown node, has the wrong number of rows, is not finite,
            or gives an invalid category code.
        """
        n = check_int("n", n)
        interventions = self._interventions(do, n)
        program = poutine.do(self.model, data=interventions) if interventions else self.model
        with torch_rng(self._rng_for(random_state)):
            values = program(n)
        keep = self.observed_nodes + (self.latent_nodes if include_latent else ())
        return {name: _to_numpy(values[name]) for name in keep}

    def interventional_mean(
        self,
        node: str,
        do: Mapping[str, Any] | None = None,
        n: int = 200_000,
        random_state: RandomState = None,
    ) -> float | np.ndarray:
        """Monte-Carlo estimate of ``E[node | do(...)]``.

        Parameters
        ----------
        node : str
            The target node.
        do : mapping of str to scalar or array-like, optional
            Interventions, as in :meth:`sample` (``None``: observational mean).
        n : int, default=200_000
            Number of Monte-Carlo draws; the standard error is ``sd / sqrt(n)``.
        random_state : int, numpy.random.Generator or None, default=None
            As in :meth:`sample`.

        Returns
        -------
        float or numpy.ndarray
            The mean (an array over the event dimensions for a vector-valued node).
        """
        self._check_observed("node", node)
        values = self.sample(n, do=do, random_state=random_state)[node]
        mean = values.astype(np.float64).mean(axis=0)
        return float(mean) if mean.ndim == 0 else mean

    def interventional_moments_exact(
        self, target: str, do: Mapping[str, float] | None = None
    ) -> tuple[float, float]:
        """Exact mean and variance of ``target`` under ``do(...)`` in a linear-Gaussian SCM.

        Each node is written as an affine function of the independent standard-normal
        sources (latents and noises) by propagating the linear structure in topological
        order; an intervened node becomes a constant. Only ``target`` and its ancestors in
        the intervened graph need linear-Gaussian mechanisms.

        Parameters
        ----------
        target : str
            The node whose moments are wanted.
        do : mapping of str to float, optional
            Scalar interventions (``None``: the observational moments).

        Returns
        -------
        mean, variance : tuple of float

        Raises
        ------
        ValueError
            If an ancestor of ``target`` (after the intervention) is discrete or has a
            callable mechanism, or a ``do`` value is not a finite scalar.

        Examples
        --------
        >>> scm = StructuralCausalModel("Y -> X", mechanisms={"X": {"Y": 2.0}})
        >>> scm.interventional_moments_exact("X", do={"Y": 1.0})
        (2.0, 1.0)
        """
        self._check_observed("target", target)
        fixed: dict[str, float] = {}
        for node, value in (do or {}).items():
            if node not in self.graph and node not in self.latent_nodes:
                raise ValueError(
                    f"do names {node!r}, which is not a node of the model; expected one of "
                    f"{list(self.observed_nodes) + list(self.latent_nodes)}."
                )
            fixed[node] = _finite(f"do[{node!r}]", value)

        memo: dict[str, tuple[float, dict[str, float]]] = {}

        def affine(node: str) -> tuple[float, dict[str, float]]:
            if node in memo:
                return memo[node]
            if node in fixed:
                result: tuple[float, dict[str, float]] = (fixed[node], {})
            elif node in self.latent_nodes:
                result = (0.0, {node: 1.0})
            elif node in self._callables or node in self.n_categories:
                kind = "a callable" if node in self._callables else "a discrete"
                raise ValueError(
                    f"interventional_moments_exact needs linear-Gaussian mechanisms, but "
                    f"{node!r} (an ancestor of {target!r}, or {target!r} itself) has {kind} "
                    "mechanism; use interventional_mean (Monte Carlo) instead."
                )
            else:
                coefs = self._coefficients[node]
                mean = coefs["intercept"]
                loadings: dict[str, float] = {f"{node}/noise": coefs["noise_scale"]}
                for p in self._parents[node]:
                    p_mean, p_load = affine(p)
                    mean += coefs[p] * p_mean
                    for source, weight in p_load.items():
                        loadings[source] = loadings.get(source, 0.0) + coefs[p] * weight
                result = (mean, loadings)
            memo[node] = result
            return result

        mean, loadings = affine(target)
        variance = math.fsum(w * w for w in loadings.values())
        return float(mean), float(variance)


# --------------------------------------------------------------------------------------
# helpers



def _finite(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
    ):
        raise ValueError(f"{name} must be a finite real number; got {value!r}.")
    return float(value)


def _logits(name: str, value: Any, k: int) -> np.ndarray:
    if k == 2 and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return np.array([0.0, _finite(name, value)])
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (k,) or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{name} must be {k} finite logits (one per category)"
            + (" or, with 2 categories, one number" if k == 2 else "")
            + f"; got {value!r}."
        )
    return arr.copy()


def _scalar_parent(node: str, parent: str, value: torch.Tensor, n: int) -> torch.Tensor:
    if value.shape != (n,):
        raise ValueError(
            f"the default mechanism of {node!r} needs scalar parents, but {parent!r} has "
            f"values of shape {tuple(value.shape)}; give {node!r} a callable mechanism."
        )
    return value.to(_F64)


def _to_numpy(value: torch.Tensor) -> np.ndarray:
    arr = value.detach().cpu().numpy()
    if arr.dtype.kind in "biu":
        return arr.astype(np.int64, copy=True)
    return arr.astype(np.float64, copy=True)
