"""The Pyro model of the CW-GMM (causal_mixtures.mixture): agreement with EM, weights as
scale and mask, parameter conversions, and the fast mixture sampler."""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO, config_enumerate

import causal_mixtures as cm
from causal_mixtures._random import torch_rng
from causal_mixtures.mixture.model import (
    CausalMixtureModel,
    GaussianMixture,
    MixturePrior,
    params_to_sites,
    sites_to_params,
    weighted_log_likelihood,
)

F64 = torch.float64


def _t(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=F64)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_em_lower_bound_equals_model_log_likelihood(blobs: np.ndarray, covariance_type: str) -> None:
    """Issue 3.6: EM's objective is the Pyro model's weighted log-likelihood at EM's fit."""
    rng = np.random.default_rng(0)
    w = rng.exponential(1.0, (len(blobs), 3))
    w[:25, 0] = 0.0  # zero-weight rows are masked in the model, skipped by EM
    est = cm.CausalGaussianMixture(
        None, 3, covariance_type=covariance_type, tol=1e-8, max_iter=500, random_state=0
    ).fit(blobs, weights=w)
    ll = weighted_log_likelihood(
        _t(blobs), _t(w.T), _t(est.weights_), _t(est.means_), _t(est.covariances_),
        covariance_type,
    ).numpy()
    # Both are float64 sums of the same n = 330 terms; 1e-8 relative is the contract, the
    # observed difference is at rounding level (~1e-15).
    np.testing.assert_allclose(ll, est.lower_bound_, rtol=1e-8)


def _enumerated_model(X, w, locs, probs, scale):
    """The mixture written with an explicit, enumerated assignment site."""
    with pyro.plate("data", len(X)), poutine.scale(scale=scale):
        z = pyro.sample("z", dist.Categorical(probs))
        pyro.sample("obs", dist.Normal(locs[z], 1.0), obs=X)


def test_trace_enum_rejects_per_row_scale_pyro_issue_1897() -> None:
    """Why the model marginalises with MixtureSameFamily instead of enumerating: TraceEnum_ELBO
    rejects a per-row ``poutine.scale`` (pyro issue 1897). If this test starts failing, Pyro
    has lifted the restriction and enumeration becomes an option again."""
    rng = np.random.default_rng(1)
    X = _t(rng.normal(0, 2, 50))
    locs, probs = _t([-1.0, 2.0]), _t([0.3, 0.7])
    model = config_enumerate(_enumerated_model)
    w = _t(rng.uniform(0.5, 1.5, 50))
    with pytest.raises(ValueError, match="enumeration only supports scalar poutine.scale"):
        TraceEnum_ELBO(max_plate_nesting=1).loss(model, lambda *a: None, X, w, locs, probs, w)
    # With a scalar scale enumeration works, and it is the same objective as the
    # MixtureSameFamily form used by CausalMixtureModel (to rounding).
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(
        model, lambda *a: None, X, w, locs, probs, 2.5
    )
    msf = dist.MixtureSameFamily(dist.Categorical(probs), dist.Normal(locs, 1.0))
    assert loss == pytest.approx(-2.5 * float(msf.log_prob(X.unsqueeze(-1)).sum()), rel=1e-12)


def test_zero_weight_rows_are_masked_not_scaled() -> None:
    """poutine.scale rejects 0; the model masks zero-weight rows, which then behave exactly
    like dropped rows (value and gradient), even for a far outlier."""
    with pytest.raises(ValueError, match="Expected scale > 0"):
        with poutine.scale(scale=torch.tensor([1.0, 0.0])):
            pass
    rng = np.random.default_rng(2)
    X = rng.normal(0, 1, (40, 2))
    X[0] = [1e6, -1e6]  # zero weight: must contribute nothing
    w = rng.uniform(0.5, 1.5, (1, 40))
    w[0, 0] = 0.0
    sites = params_to_sites(_t([[0.4, 0.6]]), _t([[[0.0, 0.0], [1.0, 1.0]]]),
                            _t(np.eye(2)[None, None].repeat(2, 1)), "full")
    model = CausalMixtureModel(1, 2, 2, "full", mass=torch.tensor([40.0], dtype=F64))

    def value_and_grad(X_, w_):
        means = sites["means"].clone().requires_grad_(True)
        data = dict(sites, means=means)
        tr = poutine.trace(poutine.condition(model, data=data)).get_trace(_t(X_), _t(w_ / w_.sum()))
        lp = tr.log_prob_sum(site_filter=lambda name, site: name == "obs")
        lp.backward()
        return float(lp.detach()), means.grad.clone()

    full_v, full_g = value_and_grad(X, w)
    drop_v, drop_g = value_and_grad(X[1:], w[:, 1:])
    assert np.isfinite(full_v)
    assert full_v == pytest.approx(drop_v, rel=1e-12)
    torch.testing.assert_close(full_g, drop_g, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
@pytest.mark.parametrize("k, d", [(1, 1), (3, 1), (1, 3), (3, 3)])
def test_sites_params_round_trip(covariance_type: str, k: int, d: int) -> None:
    rng = np.random.default_rng(3)
    n_do = 2
    weights = rng.dirichlet(np.ones(k), n_do)
    means = rng.normal(size=(n_do, k, d))
    if covariance_type == "full":
        a = rng.normal(size=(n_do, k, d, d))
        cov = a @ np.swapaxes(a, -1, -2) + np.eye(d)
    elif covariance_type == "diag":
        cov = rng.uniform(0.5, 2.0, (n_do, k, d))
    else:
        cov = rng.uniform(0.5, 2.0, (n_do, k))
    sites = params_to_sites(_t(weights), _t(means), _t(cov), covariance_type)
    model = CausalMixtureModel(n_do, k, d, covariance_type)
    assert sorted(sites) == sorted(model.latent_sites)
    w2, m2, c2 = sites_to_params(sites, covariance_type)
    np.testing.assert_allclose(w2.numpy(), weights, rtol=1e-14)
    np.testing.assert_allclose(m2.numpy(), means, rtol=1e-14)
    np.testing.assert_allclose(c2.numpy(), cov, rtol=1e-12)
    # The sites satisfy the supports of the model's (flat and proper) priors.
    X = _t(rng.normal(size=(20, d)))
    for prior in (None, MixturePrior.from_data(X)):
        m = CausalMixtureModel(n_do, k, d, covariance_type, prior=prior)
        tr = poutine.trace(poutine.condition(m, data=sites)).get_trace(X, torch.full((n_do, 20), 0.05, dtype=F64))
        assert np.isfinite(float(tr.log_prob_sum()))
        assert tr.nodes["obs"]["fn"].batch_shape == (n_do, 20)


def test_generative_mode_and_fast_sampler_moments() -> None:
    """model(None, None, n_rows=m) draws (n_do, m, d); the per-component sampler has the
    mixture's first two moments (and is the distribution of torch's sampler)."""
    rng = np.random.default_rng(4)
    n_do, k, d, m = 2, 3, 3, 60_000
    weights = _t(rng.dirichlet(np.ones(k) * 3, n_do))
    means = _t(rng.normal(0, 3, (n_do, k, d)))
    a = rng.normal(size=(n_do, k, d, d))
    cov = _t(a @ np.swapaxes(a, -1, -2) / d + np.eye(d))
    model = CausalMixtureModel(n_do, k, d, "full")
    sites = params_to_sites(weights, means, cov, "full")
    with torch_rng(np.random.default_rng(5)):
        tr = poutine.trace(poutine.condition(model, data=sites)).get_trace(None, None, n_rows=m)
    obs = tr.nodes["obs"]["value"]
    assert obs.shape == (n_do, m, d)
    for j in range(n_do):
        mu = weights[j] @ means[j]
        dev = means[j] - mu
        total = (weights[j, :, None, None] * (cov[j] + dev.unsqueeze(-1) * dev.unsqueeze(-2))).sum(0)
        x = obs[j]
        sd = torch.sqrt(torch.diagonal(total))
        # 4.5 Monte-Carlo standard errors of a mean (sd / sqrt(m)) over 6 checks.
        assert torch.all((x.mean(0) - mu).abs() < 4.5 * sd / m**0.5)
        # Covariance entries: SE of a sample covariance <= sqrt(2/m) · sd_i sd_j (Gaussian)
        # inflated to 3× for the mixture's heavier tails; 4.5 of those.
        emp = torch.cov(x.T)
        tol = 4.5 * 3 * (2 / m) ** 0.5 * sd.unsqueeze(-1) * sd.unsqueeze(-2)
        assert torch.all((emp - total).abs() < tol), (emp, total)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_fast_sampler_independent_components(covariance_type: str) -> None:
    rng = np.random.default_rng(6)
    w = _t([[0.2, 0.8]])
    means = _t([[[-5.0, 0.0], [5.0, 1.0]]])
    cov = _t([[[1.0, 4.0], [0.25, 1.0]]]) if covariance_type == "diag" else _t([[1.0, 0.25]])
    model = CausalMixtureModel(1, 2, 2, covariance_type)
    sites = params_to_sites(w, means, cov, covariance_type)
    with torch_rng(rng):
        x = poutine.condition(model, data=sites)(None, None, n_rows=40_000)[0]
    left = x[:, 0] < 0
    # Component frequencies: binomial SE sqrt(0.2·0.8/40000) = 0.002; 4.5 SE.
    assert abs(float(left.double().mean()) - 0.2) < 0.009
    var = cov[0] if covariance_type == "diag" else cov[0].unsqueeze(-1).expand(2, 2)
    np.testing.assert_allclose(x[left].var(0).numpy(), var[0].numpy(), rtol=0.06)
    np.testing.assert_allclose(x[~left].var(0).numpy(), var[1].numpy(), rtol=0.06)


def test_subsample_scale_is_unbiased() -> None:
    """With subsample_size, the minibatch (uniform rows, with replacement) log-likelihood is
    scaled by n / b, so its average over minibatches is the full one, on top of mass · w̃."""
    rng = np.random.default_rng(7)
    X = _t(rng.normal(0, 1, (200, 1)))
    W = _t(rng.exponential(1.0, (2, 200)))
    W = W / W.sum(-1, keepdim=True)
    w, mu, cov = _t([[1.0], [1.0]]), _t([[[0.1]], [[-0.2]]]), _t([[[[1.2]]], [[[0.8]]]])
    sites = params_to_sites(w, mu, cov, "full")
    mass = _t([200.0, 57.0])
    mini = CausalMixtureModel(2, 1, 1, "full", mass=mass, subsample_size=20)
    with torch_rng(np.random.default_rng(8)):
        tr = poutine.trace(poutine.condition(mini, data=sites)).get_trace(X, W)
    tr.compute_log_prob()
    idx = tr.nodes["data"]["value"]
    assert idx.shape == (20,) and 0 <= int(idx.min()) and int(idx.max()) < 200
    logq = torch.distributions.Normal(mu[:, 0, 0, None], cov[:, 0, 0, 0, None].sqrt()).log_prob(X[idx, 0])
    expected = (200 / 20) * mass[:, None] * W[:, idx] * logq
    torch.testing.assert_close(tr.nodes["obs"]["log_prob"], expected, rtol=1e-12, atol=0)


def test_prior_is_data_scaled_and_affine_equivariant() -> None:
    rng = np.random.default_rng(9)
    X = _t(rng.normal([10.0, -3.0], [2.0, 0.5], (500, 2)))
    p = MixturePrior.from_data(X)
    np.testing.assert_allclose(p.mean_loc.numpy(), X.mean(0).numpy())
    np.testing.assert_allclose(p.mean_scale.numpy(), 2 * X.std(0, unbiased=False).numpy())
    q = MixturePrior.from_data(5.0 + 3.0 * X)
    r = p.affine(torch.full((2,), 5.0, dtype=F64), 3.0)
    np.testing.assert_allclose(q.mean_loc.numpy(), r.mean_loc.numpy(), rtol=1e-12)
    np.testing.assert_allclose(q.scale_scale.numpy(), r.scale_scale.numpy(), rtol=1e-12)


def test_fast_sampler_is_a_mixture_same_family() -> None:
    d = GaussianMixture(dist.Categorical(torch.ones(2) / 2), dist.Normal(torch.zeros(2, 3), 1.0).to_event(1))
    assert isinstance(d, dist.MixtureSameFamily)
    e = d.expand((4, 5))
    assert isinstance(e, GaussianMixture) and e.sample().shape == (4, 5, 3)


def test_marginal_quantiles_match_closed_forms() -> None:
    """One component: normal quantiles; two equal-weight, well separated components: the
    median lies between them and the mixture CDF at each quantile is the probability."""
    from scipy.stats import norm

    from causal_mixtures.mixture.params import Mixture

    probs = np.array([0.05, 0.5, 0.9])
    one = Mixture(np.ones((1, 1)), np.array([[[2.0, -1.0]]]), np.array([[[4.0, 0.25]]]), "diag")
    q = one.marginal_quantiles(probs)
    np.testing.assert_allclose(q[0, 0], norm.ppf(probs, 2.0, 2.0), atol=1e-8)
    np.testing.assert_allclose(q[0, 1], norm.ppf(probs, -1.0, 0.5), atol=1e-8)
    two = Mixture(np.full((1, 2), 0.5), np.array([[[-5.0], [5.0]]]), np.ones((1, 2, 1)), "diag")
    q2 = two.marginal_quantiles(probs)
    assert abs(q2[0, 0, 1]) < 1e-6
    np.testing.assert_allclose(two.marginal_cdf(q2)[0, 0], probs, atol=1e-9)
