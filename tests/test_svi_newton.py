"""Full-batch SVI-MAP by trust-region Newton steps on the Pyro ELBO (fit_map's default for a
full batch): its stopping rule from a converged start, from a poor start, the honesty of its
convergence flag, and the fast observation log-density it relies on."""

from __future__ import annotations

import warnings

import numpy as np
import pyro.distributions as dist
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

import causal_mixtures as cm
from causal_mixtures.mixture import svi
from causal_mixtures.mixture.model import CausalMixtureModel, weighted_log_likelihood
from causal_mixtures.mixture.params import Mixture


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Three 2-D blobs far from the origin, two columns of Exponential(1) weights."""
    rng = np.random.default_rng(3)
    X = np.concatenate([
        rng.normal([0.0, 0.0], [1.0, 0.6], (900, 2)),
        rng.normal([4.0, 3.0], 0.7, (600, 2)),
        rng.normal([-3.0, 4.0], 0.5, (500, 2)),
    ]) + 30.0
    return X, rng.exponential(1.0, (len(X), 2))


def _tensors(X: np.ndarray, W: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(X), torch.tensor(W.T.copy())


def _em(X: np.ndarray, W: np.ndarray, **kw) -> cm.CausalGaussianMixture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a deliberately short EM
        return cm.CausalGaussianMixture(None, 3, random_state=0, **kw).fit(X, weights=W)


def _mixture(est: cm.CausalGaussianMixture) -> Mixture:
    return Mixture(est.weights_, est.means_, est.covariances_, "full").to_torch()


def test_from_em_optimum_stops_at_once_and_keeps_the_objective(data) -> None:
    """From EM run to tol=1e-10, the Newton decrement is already below the tolerance: at most
    two evaluations of the ELBO, converged, objective within 1e-6 relative of EM's."""
    X, W = data
    em = _em(X, W, tol=1e-10, max_iter=2000)
    Xt, Wt = _tensors(X, W)
    res = svi.fit_map(Xt, Wt, _mixture(em), random_state=0)
    assert res.converged.all()
    assert int(res.n_iter.max()) <= 2
    np.testing.assert_allclose(res.lower_bound.numpy(), em.lower_bound_, rtol=1e-6)
    assert res.history.shape == (int(res.n_iter[0]), 2)


def test_from_default_em_reaches_the_tight_em_objective(data) -> None:
    """The estimator's default (svi_init='em', EM at tol=1e-3): a handful of steps reach the
    objective of EM at tol=1e-10 to 1e-6 relative (or beat it), and say they converged."""
    X, W = data
    tight = _em(X, W, tol=1e-10, max_iter=2000)
    est = cm.CausalGaussianMixture(None, 3, inference="svi", random_state=0).fit(X, weights=W)
    assert est.converged_.all()
    assert int(est.n_iter_.max()) <= 30
    gap = (tight.lower_bound_ - est.lower_bound_) / np.abs(tight.lower_bound_)
    assert np.all(gap < 1e-6), gap


def test_from_poor_start_improves_and_the_trace_never_decreases(data) -> None:
    """One EM iteration from rows drawn at random is far from the optimum (objective about
    0.4 and 0.6 below it): the Newton steps climb to the tight EM objective (1e-5 relative),
    and every evaluation kept is no worse than the one before."""
    X, W = data
    tight = _em(X, W, tol=1e-10, max_iter=2000)
    start = _em(X, W, max_iter=1, init_params="random_from_data")
    Xt, Wt = _tensors(X, W)
    init = _mixture(start)
    before = weighted_log_likelihood(Xt, Wt, init.weights, init.means, init.covariances, "full")
    assert np.all(before.numpy() < tight.lower_bound_ - 0.3)
    res = svi.fit_map(Xt, Wt, init, n_steps=100, random_state=0)
    assert res.converged.all() and int(res.n_iter.max()) < 100
    np.testing.assert_allclose(res.lower_bound.numpy(), tight.lower_bound_, rtol=1e-5)
    assert torch.all(res.history.diff(dim=0) >= 0)


def test_convergence_flag_is_false_when_n_steps_runs_out(data) -> None:
    """Stopped by n_steps before the tolerance: not converged, n_iter == n_steps."""
    X, W = data
    start = _em(X, W, max_iter=1, init_params="random_from_data")
    Xt, Wt = _tensors(X, W)
    res = svi.fit_map(Xt, Wt, _mixture(start), n_steps=3, random_state=0)
    assert not res.converged.any()
    assert res.n_iter.tolist() == [3, 3]


def test_optimizer_choice_and_errors(data) -> None:
    X, W = data
    Xt, Wt = _tensors(X, W)
    init = _mixture(_em(X, W))
    adam = svi.fit_map(Xt, Wt, init, optimizer="adam", n_steps=40, random_state=0)
    assert adam.n_iter.tolist() == [40, 40]  # Adam's plateau test needs two windows of 20
    with pytest.raises(ValueError, match="optimizer must be one of"):
        svi.fit_map(Xt, Wt, init, optimizer="lbfgs")
    with pytest.raises(ValueError, match="full-batch steps"):
        svi.fit_map(Xt, Wt, init, optimizer="newton", subsample_size=100)
    with pytest.raises(ValueError, match="hessian_rows"):
        svi.fit_map(Xt, Wt, init, hessian_rows=0)


def test_fast_log_prob_equals_mixture_same_family() -> None:
    """GaussianMixture.log_prob (EM's kernel on shared rows) equals torch's generic
    MixtureSameFamily.log_prob in value and gradient, through the model's plate layout."""
    g = torch.Generator().manual_seed(0)
    j, k, d, n = 2, 4, 3, 500
    model = CausalMixtureModel(j, k, d, "full")
    w = torch.softmax(torch.randn(j, 1, k, generator=g, dtype=torch.float64), -1)
    mu = torch.randn(j, k, d, generator=g, dtype=torch.float64).requires_grad_()
    sc = (torch.rand(j, k, d, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    a = torch.randn(j, k, d, d, generator=g, dtype=torch.float64)
    corr = torch.linalg.cholesky(a @ a.transpose(-1, -2) + torch.eye(d, dtype=torch.float64))
    corr = corr / corr.norm(dim=-1, keepdim=True)
    x = (3.0 * torch.randn(n, d, generator=g, dtype=torch.float64)).expand(j, n, d)
    out = []
    for fn in (None, dist.MixtureSameFamily.log_prob):
        obs = model.observation_distribution(w, mu, sc, corr).expand((j, n))  # as pyro.plate
        lp = obs.log_prob(x) if fn is None else fn(obs, x)
        out.append((lp.detach(), *torch.autograd.grad(lp.sum(), (mu, sc))))
    for fast, generic in zip(*out, strict=True):
        torch.testing.assert_close(fast, generic, rtol=1e-11, atol=1e-10)


def test_batched_hessian_equals_the_per_coordinate_loop(data, monkeypatch) -> None:
    """The Newton Hessian of a full-covariance model, by vectorised backward passes in
    chunks of HESSIAN_BATCH coordinates, against one Hessian-vector product per
    coordinate and against a finite difference of the gradient."""
    from pyro.infer.autoguide import AutoDelta, init_to_value

    from causal_mixtures.mixture import optim
    from causal_mixtures.mixture.model import params_to_sites

    X, W = data
    Xt, Wt = _tensors((X - X.mean(0)) / X.std(0), W / W.sum(0))
    init = _mixture(_em((X - X.mean(0)) / X.std(0), W, max_iter=5))
    model = CausalMixtureModel(2, 3, 2, "full", prior=None, mass=1.0)
    sites = params_to_sites(init.weights, init.means, init.covariances, "full")
    guide = AutoDelta(model, init_loc_fn=init_to_value(values=sites, fallback=None))
    guide(Xt, Wt)
    params = [p for p in guide.parameters() if p.requires_grad]
    monkeypatch.setattr(optim, "HESSIAN_BATCH", 7)  # several chunks, the last one short
    batched = optim._hessian(model, guide, (Xt, Wt), params)
    elbo, _ = optim.shard_elbo(model, guide, (Xt, Wt), None)
    grad = optim._flat(torch.autograd.grad(elbo, params, create_graph=True), 2)
    cols = [optim._flat(torch.autograd.grad(grad[:, i].sum(), params, retain_graph=True,
                                            materialize_grads=True), 2)
            for i in range(grad.shape[1])]
    loop = torch.stack(cols, -1)
    loop = 0.5 * (loop + loop.transpose(-1, -2))
    assert batched.shape == (2, 18, 18)  # 3 x (1 weight + 2 means + 3 Cholesky) per do
    torch.testing.assert_close(batched, loop, rtol=0, atol=1e-12)
    # One column against a central difference of the gradient (h = 1e-5: error ~1e-9).
    h, j = 1e-5, 4

    def flat_grad() -> torch.Tensor:
        e, _ = optim.shard_elbo(model, guide, (Xt, Wt), None)
        return optim._flat(torch.autograd.grad(e, params), 2)

    sizes = [p[0].numel() for p in params]
    which = int(np.searchsorted(np.cumsum(sizes), j, side="right"))
    offset = j - int(np.sum(sizes[:which]))
    p = params[which]
    with torch.no_grad():
        p.view(2, -1)[:, offset] += h
    up = flat_grad()
    with torch.no_grad():
        p.view(2, -1)[:, offset] -= 2 * h
    down = flat_grad()
    with torch.no_grad():
        p.view(2, -1)[:, offset] += h
    torch.testing.assert_close(batched[:, :, j], (up - down) / (2 * h), rtol=1e-5, atol=1e-6)
