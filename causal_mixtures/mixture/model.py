"""The Pyro model of the causally weighted Gaussian mixture (CW-GMM), shared by every fitter.

Details: ``docs/inference.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions import constraints

from causal_mixtures.mixture.params import (
    COVARIANCE_TYPES,
    LogProbKernel,
    Mixture,
    quadratic_features,
)

__all__ = [
    "CausalMixtureModel",
    "GaussianMixture",
    "MixturePrior",
    "params_to_sites",
    "sites_to_params",
    "weighted_log_likelihood",
]


class GaussianMixture(dist.MixtureSameFamily):
    """``MixtureSameFamily`` of Gaussians with a fast, memory-bounded ``sample``.

    The components must be a :class:`~pyro.distributions.MultivariateNormal` or an
    ``Independent`` :class:`~pyro.distributions.Normal` with one event dimension. ``sample``
    draws the component index of every row, then one standard normal vector per row, and
    transforms it with the chosen component's factor: memory ``O(rows · d)`` (torch's
    generic sampler allocates ``O(rows · K · d²)``).
    """

    def sample(self, sample_shape: torch.Size | tuple = ()) -> torch.Tensor:
        with torch.no_grad():
            idx = self.mixture_distribution.sample(torch.Size(sample_shape))  # S + B
            comp = self.component_distribution
            d = self.event_shape[-1]
            shape = idx.shape
            base = comp.base_dist if isinstance(comp, dist.Independent) else comp
            loc = base.loc  # (B, K, d) possibly expanded
            dtype, device = loc.dtype, loc.device
            eps = torch.randn(shape + (d,), dtype=dtype, device=device)
            gidx = idx.unsqueeze(-1).unsqueeze(-1).expand(shape + (1, d))
            loc_g = torch.gather(loc.expand(shape + loc.shape[-2:]), -2, gidx).squeeze(-2)
            if isinstance(comp, dist.Independent):
                scale = base.scale.expand(shape + loc.shape[-2:])
                return loc_g + torch.gather(scale, -2, gidx).squeeze(-2) * eps
            tril = comp._unbroadcasted_scale_tril  # (P, K, d, d), P broadcastable to B
            out = torch.zeros_like(eps)
            for k in range(tril.shape[-3]):
                z = _batched_mv(tril[..., k, :, :], eps)
                out = torch.where((idx == k).unsqueeze(-1), z, out)
            return loc_g + out

    def __init__(
        self,
        mixture_distribution: dist.Categorical,
        component_distribution: dist.Distribution,
        validate_args: bool | None = None,
    ) -> None:
        super().__init__(mixture_distribution, component_distribution, validate_args)
        # The parameters before any expand (pyro.plate broadcasts the distribution along
        # the rows): the fast log_prob reads them, so that its gradient never materialises
        # a per-row copy of them.
        loc = getattr(component_distribution, "loc", None)
        self._unexpanded = (loc, mixture_distribution.probs)

    def expand(self, batch_shape: torch.Size | tuple, _instance: GaussianMixture | None = None):
        new = self._get_checked_instance(GaussianMixture, _instance)
        super().expand(batch_shape, _instance=new)
        new._unexpanded = self._unexpanded
        return new

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``log Σ_k π_k N(x; μ_k, Σ_k)``, the value of ``MixtureSameFamily.log_prob``.

        Fast path for float64 full covariances in the model's layout (component parameters
        ``(..., 1, K)`` shared along the rows, and the same rows ``(n, d)`` for every batch
        member, i.e. ``value`` an ``expand`` of one matrix): the log-densities are EM's
        :class:`~causal_mixtures.mixture.params.LogProbKernel`, one matrix product of the
        rows with all components' factors, where ``MultivariateNormal.log_prob`` solves a
        triangular system per row and component. Same value to rounding, differentiable.
        """
        comp = self.component_distribution
        loc = comp.loc if isinstance(comp, dist.MultivariateNormal) else None
        if (
            loc is None
            or value.dtype != torch.float64  # the expanded quadratic form wants float64
            or loc.dim() < 3
            or value.dim() != loc.dim() - 1
            or any(st != 0 for st in value.stride()[:-2])
            or not _shared_along_rows(loc, -3)
            or not _shared_along_rows(comp._unbroadcasted_scale_tril, -4)
            or not _shared_along_rows(self.mixture_distribution.probs, -2)
        ):
            return super().log_prob(value)
        if self._validate_args:
            self._validate_sample(value)
        rows = value[(0,) * (value.dim() - 2)]  # (n, d), shared by every batch member
        # Parameters expanded along the rows (pyro.plate's broadcasting) are views with
        # stride 0 there: one copy of each is enough, the unexpanded one where it fits.
        loc0, probs0 = getattr(self, "_unexpanded", (None, None))
        if loc0 is not None and loc0.dim() == loc.dim() and loc0.shape[-3] == 1:
            loc = loc0
        else:
            loc = loc[..., :1, :, :]
        d = loc.shape[-1]
        batch = torch.broadcast_shapes(value.shape[:-2], loc.shape[:-3])
        k = loc.shape[-2]
        tril = comp._unbroadcasted_scale_tril
        if tril.dim() >= 4 and tril.shape[-4] != 1:
            tril = tril[..., :1, :, :, :]
        tril = tril.expand(batch + (1, k, d, d)).reshape(-1, k, d, d)
        eye = torch.eye(d, dtype=tril.dtype, device=tril.device)
        prec_chol = torch.linalg.solve_triangular(tril, eye, upper=False).transpose(-1, -2)
        probs = probs0 if probs0 is not None else self.mixture_distribution.probs
        if probs.dim() >= 2 and probs.shape[-2] != 1:
            probs = probs[..., :1, :]
        probs = probs.expand(batch + (1, k)).reshape(-1, k)
        means = loc.expand(batch + (1, k, d)).reshape(-1, k, d)
        mixture = Mixture(probs, means, tril @ tril.transpose(-1, -2), "full", prec_chol)
        # The expansion centre does not change the value: detached, no gradient reaches
        # the (n, d) features.
        center = means.detach().reshape(-1, d).mean(0)
        kernel = LogProbKernel(mixture, center=center)
        if not kernel.quadratic:
            log_comp = kernel(rows)  # (B, n, K)
            return torch.logsumexp(log_comp, dim=-1).reshape(batch + rows.shape[:1])
        # The kernel's quadratic-feature product, kept in the rows-first layout (n, B, K)
        # with contiguous coefficients: its gradient is then one plain matrix product (the
        # kernel's (B, n, K) view made the backward copy and transpose the (n, B·K) block).
        b = probs.shape[0]
        maha = quadratic_features(rows - center) @ kernel.coef.contiguous()  # (n, B·K)
        log_comp = kernel.const.reshape(b, k) - 0.5 * maha.view(-1, b, k)
        return torch.logsumexp(log_comp, dim=-1).T.reshape(batch + rows.shape[:1])


def _shared_along_rows(t: torch.Tensor, dim: int) -> bool:
    """Whether ``t`` is constant along ``dim`` (absent, of size 1, or an expanded view)."""
    return t.dim() < -dim or t.shape[dim] == 1 or t.stride(dim) == 0


def _batched_mv(tril: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``tril @ eps`` row by row, where ``tril``'s batch shape broadcasts to ``eps``'s.

    The batch dimensions in which ``tril`` is constant (size 1) are folded into the rows of
    one matrix product, so the ``d × d`` factors are never copied per row.
    """
    batch = eps.shape[:-1]
    d = eps.shape[-1]
    pb = (1,) * (len(batch) - (tril.dim() - 2)) + tuple(tril.shape[:-2])
    vary = [i for i in range(len(batch)) if pb[i] != 1]
    const = [i for i in range(len(batch)) if pb[i] == 1]
    perm = vary + const + [len(batch)]
    e = eps.permute(perm)
    vsizes = [batch[i] for i in vary]
    csizes = [batch[i] for i in const]
    nv = 1
    for s in vsizes:
        nv *= s
    e = e.reshape(nv, -1, d)
    t = tril.reshape(pb + (d, d))
    t = t.permute(vary + const + [len(batch), len(batch) + 1]).reshape(nv, d, d)
    z = torch.matmul(e, t.transpose(-1, -2)).reshape(vsizes + csizes + [d])
    inverse = [0] * len(perm)
    for pos, src in enumerate(perm):
        inverse[src] = pos
    return z.permute(inverse)


@dataclass
class MixturePrior:
    """Hyperparameters of the weakly informative priors of the Bayesian CW-GMM.

    Attributes
    ----------
    concentration : float
        Symmetric Dirichlet concentration of the mixing weights (1 = uniform on the simplex).
    mean_loc, mean_scale : Tensor of shape (d,)
        ``μ_k ~ N(mean_loc, diag(mean_scale²))``.
    scale_scale : Tensor of shape (d,)
        ``σ_kj ~ HalfNormal(scale_scale_j)`` for the component standard deviations (for
        ``"spherical"`` the mean of ``scale_scale`` is used).
    lkj_concentration : float
        ``C_k ~ LKJCholesky(d, lkj_concentration)`` for full covariances (1 = uniform over
        correlation matrices; 2 mildly favours weak correlations).
    """

    concentration: float
    mean_loc: torch.Tensor
    mean_scale: torch.Tensor
    scale_scale: torch.Tensor
    lkj_concentration: float = 2.0

    @classmethod
    def from_data(
        cls,
        X: torch.Tensor,
        *,
        concentration: float = 1.0,
        mean_scale_factor: float = 2.0,
        scale_scale_factor: float = 2.0,
        lkj_concentration: float = 2.0,
    ) -> MixturePrior:
        """Data-scaled defaults: ``μ ~ N(x̄, (2 s)²)``, ``σ ~ HalfNormal(2 s)``, where ``x̄``
        and ``s`` are the column means and standard deviations of ``X`` (``s`` floored at a
        tiny positive value); Dirichlet(1) weights, LKJ(2) correlations.

        A prior mean within two prior standard deviations of any component covers the data
        range several times over, so the priors only rule out absurd values; their weight
        is that of a handful of rows against the likelihood mass.
        """
        sd = X.std(0, unbiased=False)
        sd = torch.where(sd > 0, sd, torch.ones_like(sd))
        return cls(
            concentration=float(concentration),
            mean_loc=X.mean(0).clone(),
            mean_scale=(mean_scale_factor * sd).clone(),
            scale_scale=(scale_scale_factor * sd).clone(),
            lkj_concentration=float(lkj_concentration),
        )

    def affine(self, shift: torch.Tensor, scale: float) -> MixturePrior:
        """The same prior for the data ``shift + scale · x`` (exact: every family is closed
        under this map and LKJ is invariant to rescaling)."""
        return MixturePrior(
            self.concentration,
            shift + scale * self.mean_loc,
            scale * self.mean_scale,
            scale * self.scale_scale,
            self.lkj_concentration,
        )


def latent_sites(n_components: int, n_features: int, covariance_type: str) -> list[str]:
    """Names of the parameter sites of the model, in order."""
    names = ["weights"] if n_components > 1 else []
    names += ["means", "scales"]
    if covariance_type == "full" and n_features > 1:
        names.append("corr_cholesky")
    return names


class CausalMixtureModel:
    """The CW-GMM as a Pyro model (a callable ``model(X, W, *, n_rows=None)``).

    Parameters
    ----------
    n_do : int
        Number of intervention values (mixtures).
    n_components : int
        Components per mixture ``K``.
    n_features : int
        Dimension ``d``.
    covariance_type : {"full", "diag", "spherical"}, default="full"
    prior : MixturePrior or None, default=None
        ``None``: improper flat priors (MAP = weighted maximum likelihood, as EM). A
        :class:`MixturePrior`: the Bayesian model.
    mass : Tensor of shape (n_do,) or float, default=1.0
        Likelihood mass per intervention value: the observation of row ``n`` for ``do_j``
        has its log-density scaled by ``mass_j · w̃_jn``.
    subsample_size : int or None, default=None
        Rows per step: a uniform minibatch (drawn with replacement, so a step costs
        ``O(subsample_size)`` whatever ``n``) is passed to ``pyro.plate("data", n,
        subsample=...)``, which scales its log-likelihood by ``n / subsample_size``
        (unbiased).

    Notes
    -----
    Call as ``model(X, W)`` to condition on data: ``X`` of shape (n, d), ``W`` of shape
    (n_do, n) with rows summing to one (zero entries are masked). Call as
    ``model(None, None, n_rows=m)`` to generate ``m`` rows per intervention value (site
    ``"obs"`` of shape (n_do, m, d)), e.g. under :class:`~pyro.infer.Predictive`.
    """

    def __init__(
        self,
        n_do: int,
        n_components: int,
        n_features: int,
        covariance_type: str = "full",
        *,
        prior: MixturePrior | None = None,
        mass: torch.Tensor | float = 1.0,
        subsample_size: int | None = None,
    ) -> None:
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {list(COVARIANCE_TYPES)}; got {covariance_type!r}."
            )
        self.n_do = int(n_do)
        self.n_components = int(n_components)
        self.n_features = int(n_features)
        self.covariance_type = covariance_type
        self.prior = prior
        self.mass = mass
        self.subsample_size = subsample_size

    @property
    def latent_sites(self) -> list[str]:
        """Names of the parameter sites."""
        return latent_sites(self.n_components, self.n_features, self.covariance_type)

    # ------------------------------------------------------------------ priors
    def _priors(self, dtype: torch.dtype, device: torch.device) -> dict[str, dist.Distribution]:
        j, k, d = self.n_do, self.n_components, self.n_features
        ct = self.covariance_type
        p = self.prior
        out: dict[str, dist.Distribution] = {}
        if p is None:
            if k > 1:
                out["weights"] = dist.ImproperUniform(constraints.simplex, (j, 1), (k,))
            out["means"] = dist.ImproperUniform(constraints.real, (j, k), (d,))
            if ct == "spherical":
                out["scales"] = dist.ImproperUniform(constraints.positive, (j, k), ())
            else:
                out["scales"] = dist.ImproperUniform(constraints.positive, (j, k), (d,))
            if ct == "full" and d > 1:
                out["corr_cholesky"] = dist.ImproperUniform(constraints.corr_cholesky, (j, k), (d, d))
            return out

        def t(v: torch.Tensor | float) -> torch.Tensor:
            return torch.as_tensor(v, dtype=dtype, device=device)

        if k > 1:
            out["weights"] = dist.Dirichlet(t(p.concentration).expand(k))
        out["means"] = dist.Normal(t(p.mean_loc), t(p.mean_scale)).to_event(1)
        if ct == "spherical":
            out["scales"] = dist.HalfNormal(t(p.scale_scale).mean())
        else:
            out["scales"] = dist.HalfNormal(t(p.scale_scale)).to_event(1)
        if ct == "full" and d > 1:
            out["corr_cholesky"] = dist.LKJCholesky(d, t(p.lkj_concentration))
        return out

    # ------------------------------------------------------------------ likelihood
    def observation_distribution(
        self,
        weights: torch.Tensor,
        means: torch.Tensor,
        scales: torch.Tensor,
        corr_cholesky: torch.Tensor | None = None,
    ) -> GaussianMixture:
        """The mixtures as one distribution with batch shape (..., n_do, 1), event (d,).

        Parameters are site values: ``weights`` (..., n_do, 1, K), ``means`` (..., n_do, K, d),
        ``scales`` (..., n_do, K, d) or (..., n_do, K), ``corr_cholesky`` (..., n_do, K, d, d).
        """
        mix = dist.Categorical(probs=weights)
        loc = means.unsqueeze(-3)  # (..., n_do, 1, K, d)
        ct = self.covariance_type
        if ct == "full":
            tril = scales.unsqueeze(-1) * corr_cholesky if corr_cholesky is not None else scales.unsqueeze(-1)
            comp = dist.MultivariateNormal(loc, scale_tril=tril.unsqueeze(-4))
        elif ct == "diag":
            comp = dist.Normal(loc, scales.unsqueeze(-3)).to_event(1)
        else:
            comp = dist.Normal(loc, scales.unsqueeze(-1).unsqueeze(-3).expand(loc.shape)).to_event(1)
        return GaussianMixture(mix, comp)

    def __call__(
        self, X: torch.Tensor | None = None, W: torch.Tensor | None = None, *, n_rows: int | None = None
    ) -> torch.Tensor:
        ref = X if X is not None else (self.prior.mean_loc if self.prior is not None else None)
        dtype = ref.dtype if ref is not None else torch.get_default_dtype()
        device = ref.device if ref is not None else torch.device("cpu")
        priors = self._priors(dtype, device)
        j, k = self.n_do, self.n_components
        do_plate = pyro.plate("do", j, dim=-2)
        comp_plate = pyro.plate("components", k, dim=-1)
        with do_plate:
            if k > 1:
                weights = pyro.sample("weights", priors["weights"])
            else:
                weights = None
            with comp_plate:
                means = pyro.sample("means", priors["means"])
                scales = pyro.sample("scales", priors["scales"])
                corr = pyro.sample("corr_cholesky", priors["corr_cholesky"]) if "corr_cholesky" in priors else None
        if weights is None:
            weights = torch.ones(means.shape[:-2] + (1, 1), dtype=means.dtype, device=means.device)
        obs_dist = self.observation_distribution(weights, means, scales, corr)
        if X is None:
            if n_rows is None:
                raise ValueError("n_rows is required to generate data (X is None).")
            with do_plate, pyro.plate("data", int(n_rows), dim=-1):
                return pyro.sample("obs", obs_dist)
        if W is None:
            raise ValueError("W (the normalised causal weights, shape (n_do, n)) is required with X.")
        n = X.shape[0]
        mass = torch.as_tensor(self.mass, dtype=X.dtype, device=X.device).reshape(-1, 1)
        if self.subsample_size is not None and self.subsample_size < n:
            # Uniform rows with replacement: O(b) per step, where pyro.plate's own
            # subsampling draws a permutation of all n rows (O(n)) every step.
            sub = torch.randint(0, n, (int(self.subsample_size),), device=X.device)
            data_plate = pyro.plate("data", n, subsample=sub, dim=-1)
        else:
            data_plate = pyro.plate("data", n, dim=-1, device=X.device)
        with do_plate, data_plate as idx:
            x = X[idx]
            w = W[:, idx]
            positive = w > 0
            # poutine.scale rejects scale <= 0: zero-weight rows are masked instead.
            scale = torch.where(positive, mass * w, torch.ones_like(w))
            with poutine.mask(mask=positive), poutine.scale(scale=scale):
                return pyro.sample("obs", obs_dist, obs=x.expand((j,) + x.shape))


# ---------------------------------------------------------------------- conversions
def params_to_sites(
    weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor, covariance_type: str
) -> dict[str, torch.Tensor]:
    """Site values of :class:`CausalMixtureModel` from mixture parameters.

    Parameters
    ----------
    weights : Tensor of shape (..., n_do, K)
    means : Tensor of shape (..., n_do, K, d)
    covariances : Tensor of shape (..., n_do, K, d, d), (..., n_do, K, d) or (..., n_do, K)
    covariance_type : {"full", "diag", "spherical"}

    Returns
    -------
    dict
        ``"weights"`` (..., n_do, 1, K) when K > 1, ``"means"``, ``"scales"`` and, for full
        covariances with d > 1, ``"corr_cholesky"``. New tensors (never views of the inputs).
    """
    k = weights.shape[-1]
    d = means.shape[-1]
    sites: dict[str, torch.Tensor] = {}
    if k > 1:
        sites["weights"] = weights.unsqueeze(-2).clone()
    sites["means"] = means.clone()
    if covariance_type == "full":
        tril = torch.linalg.cholesky(covariances)
        scales = torch.sqrt(torch.diagonal(covariances, dim1=-2, dim2=-1))
        sites["scales"] = scales
        if d > 1:
            sites["corr_cholesky"] = tril / scales.unsqueeze(-1)
    else:
        sites["scales"] = torch.sqrt(covariances)
    return sites


def sites_to_params(
    sites: dict[str, torch.Tensor], covariance_type: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mixture parameters ``(weights, means, covariances)`` from site values (the inverse of
    :func:`params_to_sites`; any leading sample dimensions are kept)."""
    means = sites["means"]
    if "weights" in sites:
        weights = sites["weights"].squeeze(-2)
    else:
        weights = torch.ones(means.shape[:-1], dtype=means.dtype, device=means.device)
    scales = sites["scales"]
    if covariance_type == "full":
        if "corr_cholesky" in sites:
            tril = scales.unsqueeze(-1) * sites["corr_cholesky"]
        else:
            tril = scales.unsqueeze(-1)
        cov = tril @ tril.transpose(-1, -2)
    else:
        cov = scales * scales
    return weights, means, cov


def weighted_log_likelihood(
    X: torch.Tensor,
    W: torch.Tensor,
    weights: torch.Tensor,
    means: torch.Tensor,
    covariances: torch.Tensor,
    covariance_type: str,
) -> torch.Tensor:
    """``Σ_n w̃_jn log q_j(x_n)`` for every intervention value, computed *through the model*.

    The model is conditioned on the parameters and traced with ``mass = 1``; the scaled and
    masked log-probability of the observation site, summed over rows, is returned. This is
    the quantity EM maximises (its ``lower_bound``), so the two fitters can be checked
    against each other.

    Parameters
    ----------
    X : Tensor of shape (n, d)
    W : Tensor of shape (n_do, n)
        Non-negative weights; each row is normalised to sum to one here.
    weights, means, covariances
        Mixture parameters with leading dimension n_do (as :class:`~causal_mixtures.em.MixtureParams`).
    covariance_type : str

    Returns
    -------
    Tensor of shape (n_do,)
    """
    W = W / W.sum(-1, keepdim=True)
    n_do, k = weights.shape
    model = CausalMixtureModel(n_do, k, X.shape[-1], covariance_type)
    sites = params_to_sites(weights, means, covariances, covariance_type)
    trace = poutine.trace(poutine.condition(model, data=sites)).get_trace(X, W)
    trace.compute_log_prob(site_filter=lambda name, site: name == "obs")
    return trace.nodes["obs"]["log_prob"].sum(-1)
