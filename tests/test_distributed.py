"""Weighted EM sharded over two processes (torch.distributed, gloo on loopback) equals the
single-process EM on the concatenated rows; so does the estimator's
``CausalGaussianMixture.fit_distributed`` (unequal shards; discrete, Gaussian and KDE
densities; a discrete and a continuous cause): ``fit_stream`` and ``fit`` on the union of
the shards, to 1e-10; with ``inference="svi"`` (the gradients, objectives and Newton
Hessians all-reduced) the same optimum as ``fit(inference="svi")``."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import socket
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from causal_mixtures.mixture.em import weighted_em, weighted_em_distributed
from causal_mixtures.mixture.init import initial_mixture

dist = pytest.importorskip("torch.distributed")


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, -2.0], [-3.0, 3.0, 1.0]])
    X = centres[rng.integers(0, 3, 3001)] + rng.normal(size=(3001, 3)) + 20.0
    W = rng.exponential(size=(2, len(X)))
    return X, W


def _init(X: np.ndarray, W: np.ndarray, ct: str):
    return initial_mixture(X, torch.from_numpy(X), W, 3, covariance_type=ct,
                           init_params="kmeans", n_init=1, reg_covar=1e-6,
                           rng=np.random.default_rng(0))


def _worker(rank: int, world: int, port: int, ct: str, out: mp.Queue) -> None:
    with _gloo(rank, world, port):
        X, W = _data()
        init = _init(X, W, ct)  # the same start in every process
        rows = np.array_split(np.arange(len(X)), world)[rank]  # unequal shards
        res = weighted_em_distributed(torch.from_numpy(X[rows]), torch.from_numpy(W[:, rows]),
                                      init, tol=1e-9, max_iter=60)
        out.put((rank, res.mixture.means.numpy(), res.mixture.covariances.numpy(),
                 res.lower_bound.numpy(), res.n_iter.numpy()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _gloo(rank: int, world: int, port: int) -> Iterator[None]:
    """A worker's process group (gloo on loopback, one torch thread), destroyed after."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _spawn_two(target, n_results: int, *args) -> list:
    """Run ``target(rank, 2, port, *args, queue)`` in two spawned processes; the
    ``n_results`` items they put on the queue, once both exited cleanly."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=target, args=(r, 2, port, *args, out)) for r in range(2)]
    for p in procs:
        p.start()
    got = [out.get(timeout=240) for _ in range(n_results)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return got


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_two_process_em_equals_one_process(ct: str) -> None:
    got = _spawn_two(_worker, 2, ct)
    X, W = _data()
    ref = weighted_em(torch.from_numpy(X), torch.from_numpy(W), _init(X, W, ct), tol=1e-9,
                      max_iter=60)
    for _, means, cov, lb, n_iter in got:  # every process holds the same result
        np.testing.assert_array_equal(n_iter, ref.n_iter.numpy())
        np.testing.assert_allclose(means, ref.mixture.means.numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(cov, ref.mixture.covariances.numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(lb, ref.lower_bound.numpy(), rtol=0, atol=1e-10)


# ------------------------------------------------------- the estimator: fit_distributed
#: The fitted attributes compared (with ESS, k̂, the largest weight and the reference).
FIT_ATTRS = ("weights_", "means_", "covariances_", "precisions_cholesky_", "lower_bound_",
             "n_iter_", "bic_")
#: (density, discrete mechanism, continuous cause)
CASES = (("discrete", True, False), ("gaussian", False, False), ("kde", False, False),
         ("gaussian", False, True))


def _front_door(n: int, seed: int, discrete_z: bool, continuous_y: bool = False
                ) -> tuple[np.ndarray, ...]:
    """A confounded front door y -> z -> x with u -> y and u -> x."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-1.5 * u))).astype(np.int64)
    if continuous_y:
        y = u + rng.normal(size=n)
    if discrete_z:
        z = (rng.random(n) < np.where(y == 1, 0.75, 0.25)).astype(np.int64) + 2 * (
            rng.random(n) < 0.5)
    else:
        z = 1.2 * y + rng.normal(size=n)
    X = np.column_stack([z + u + rng.normal(size=n), -0.5 * u + rng.normal(size=n)]) + 10.0
    return X, y, z


def _do(continuous_y: bool) -> list[float] | None:
    return [-1.0, 1.0] if continuous_y else None


def _k(continuous_y: bool) -> int:
    """One component for the continuous cause (its weights are heavy enough at these do
    values that two components collapse, and the EM crawls): the passes of the continuous
    cause (the joint density, the strata's shares) are what that case tests."""
    return 1 if continuous_y else 2


def _summary(model) -> dict[str, np.ndarray]:
    out = {name: np.asarray(getattr(model, name), dtype=float) for name in FIT_ATTRS}
    cw, ref = model.causal_weights_, model.weighted_reference_
    out.update(ess=cw.ess, khat=cw.khat, max_ratio=cw.max_ratio, ref_mean=ref.mean,
               ref_sd=ref.sd, ref_cov=ref.cov, ref_quantiles=ref.quantiles,
               ref_mean_se=ref.mean_se, ref_sd_se=ref.sd_se)
    return out


def _shard(n: int, rank: int) -> np.ndarray:
    """Unequal shards: 43% of the rows in rank 0, the rest in rank 1."""
    cut = int(0.43 * n)
    return np.arange(cut) if rank == 0 else np.arange(cut, n)


def _estimator_worker(rank: int, world: int, port: int, out: mp.Queue) -> None:
    import causal_mixtures as cm

    with _gloo(rank, world, port):
        for case, (density, discrete_z, continuous_y) in enumerate(CASES):
            X, y, z = _front_door(2000, 1, discrete_z, continuous_y)
            rows = _shard(len(X), rank)
            src = cm.ChunkedSource.from_arrays(X[rows], y[rows], z[rows], chunk_rows=250)
            model = cm.CausalGaussianMixture(n_components=_k(continuous_y), random_state=0,
                                             density=density,
                                             strategy="weighting", tol=1e-4)
            out.put((rank, case, _summary(model.fit_distributed(src, do=_do(continuous_y)))))


def test_two_process_estimator_equals_fit_stream_and_fit() -> None:
    import causal_mixtures as cm

    got = _spawn_two(_estimator_worker, 2 * len(CASES))
    for case, (density, discrete_z, continuous_y) in enumerate(CASES):
        X, y, z = _front_door(2000, 1, discrete_z, continuous_y)
        params = dict(n_components=_k(continuous_y), random_state=0, density=density,
                      strategy="weighting",
                      tol=1e-4)
        src = cm.ChunkedSource.from_arrays(X, y, z, chunk_rows=250)
        # fit_stream on the shards concatenated, and fit (exact here: fewer rows than
        # INIT_ROWS, so the same k-means start; measured within 2e-13 but for ESS, 1e-10).
        do = _do(continuous_y)
        refs = [_summary(cm.CausalGaussianMixture(**params).fit_stream(src, do=do)),
                _summary(cm.CausalGaussianMixture(**params).fit(X, y, mechanism=z, do=do))]
        fits = [s for _, c, s in got if c == case]
        assert len(fits) == 2
        for ref in refs:
            for fit in fits:  # every process holds the same model, the one-process one
                np.testing.assert_array_equal(fit["n_iter_"], ref["n_iter_"])
                for name, value in ref.items():
                    np.testing.assert_allclose(fit[name], value, rtol=1e-12, atol=1e-10,
                                               err_msg=f"{CASES[case]}: {name}")


def test_fit_distributed_without_a_process_group_says_what_to_do() -> None:
    import causal_mixtures as cm

    X, y, z = _front_door(200, 2, True)
    src = cm.ChunkedSource.from_arrays(X, y, z, chunk_rows=100)
    if dist.is_available() and dist.is_initialized():  # pragma: no cover
        pytest.skip("a process group is initialised in this process")
    with pytest.raises(RuntimeError, match="init_process_group"):
        cm.CausalGaussianMixture(n_components=2, random_state=0).fit_distributed(src)


# ------------------------------------------- inference="svi": the gradients all-reduced
#: fit_distributed(inference="svi") cases: (density, discrete mechanism, estimator params).
#: Full-batch SVI takes trust-region Newton steps (the default); the last case is minibatch
#: Adam, whose minibatches are every process's own (so only close to one process's).
SVI_CASES = (
    ("discrete", True, dict(covariance_type="full")),
    ("gaussian", False, dict(covariance_type="diag", weight_mass="n")),
    ("discrete", True, dict(covariance_type="full", subsample_size=400, n_steps=300)),
)


def _svi_params(extra: dict) -> dict:
    return dict(n_components=2, random_state=0, strategy="weighting", inference="svi",
                **extra)


def _svi_summary(model) -> dict[str, np.ndarray]:
    return {name: np.asarray(getattr(model, name), dtype=float) for name in
            ("weights_", "means_", "covariances_", "lower_bound_", "n_iter_", "bic_",
             "converged_", "likelihood_mass_")}


def _map_summary(res) -> dict[str, np.ndarray]:
    return dict(means=res.mixture.means.numpy(), covariances=res.mixture.covariances.numpy(),
                lower_bound=res.lower_bound.numpy(), n_iter=res.n_iter.numpy(),
                history=res.history.numpy())


def _svi_worker(rank: int, world: int, port: int, out: mp.Queue) -> None:
    import causal_mixtures as cm
    from causal_mixtures.estimators.reduction import ProcessGroupReducer
    from causal_mixtures.mixture.sharded import Shard
    from causal_mixtures.mixture.svi import fit_map

    with _gloo(rank, world, port):
        for case, (density, discrete_z, extra) in enumerate(SVI_CASES):
            X, y, z = _front_door(2000, 1, discrete_z)
            rows = _shard(len(X), rank)
            src = cm.ChunkedSource.from_arrays(X[rows], y[rows], z[rows], chunk_rows=250)
            model = cm.CausalGaussianMixture(density=density, **_svi_params(extra))
            out.put((rank, case, _svi_summary(model.fit_distributed(src))))
        # fit_map itself, the Hessian on a subsample of 1000 of the 3001 rows
        X, W = _data()
        rows = _shard(len(X), rank)
        shard = Shard(int(rows[0]), len(rows), len(X), rank, ProcessGroupReducer().sum)
        res = fit_map(torch.from_numpy(X[rows]), torch.from_numpy(W[:, rows]),
                      _init(X, W, "full"), random_state=0, hessian_rows=1000, shard=shard)
        out.put((rank, "fit_map", _map_summary(res)))
        # a shard of 5 rows, which holds none of the Hessian's 50 rows
        rows = np.arange(5) if rank == 0 else np.arange(5, len(X))
        shard = Shard(int(rows[0]), len(rows), len(X), rank, ProcessGroupReducer().sum)
        res = fit_map(torch.from_numpy(X[rows]), torch.from_numpy(W[:, rows]),
                      _init(X, W, "full"), random_state=0, hessian_rows=50, shard=shard)
        out.put((rank, "fit_map_small", _map_summary(res)))


@pytest.fixture(scope="module")
def svi_runs() -> list[tuple]:
    """The SVI fits of both processes (one spawn for all the SVI tests)."""
    return _spawn_two(_svi_worker, 2 * (len(SVI_CASES) + 2))


def _by_rank(runs: list[tuple], case: object) -> list[dict]:
    fits = [s for _, c, s in sorted(runs, key=lambda r: r[0]) if c == case]
    assert len(fits) == 2
    for name, value in fits[0].items():  # every process holds the same fit, bit for bit
        np.testing.assert_array_equal(fits[1][name], value, err_msg=f"{case}: {name}")
    return fits


def test_two_process_svi_reaches_the_one_process_optimum(svi_runs: list[tuple]) -> None:
    import causal_mixtures as cm

    for case, (density, discrete_z, extra) in enumerate(SVI_CASES[:2]):
        fit = _by_rank(svi_runs, case)[0]
        X, y, z = _front_door(2000, 1, discrete_z)
        ref = _svi_summary(cm.CausalGaussianMixture(density=density, **_svi_params(extra))
                           .fit(X, y, mechanism=z))
        # The same EM start (fewer rows than INIT_ROWS) and the same number of Newton
        # steps, the sums in another order. Measured: full covariances 6e-14 sd (means),
        # 5e-13 relative (covariances), 2e-14 (weights); diagonal ones 9e-9 sd, 8e-9, 6e-9
        # (the stopping rule, a Newton decrement below 1e-6 of the objective, leaves the
        # parameters free to that order: rounding moves the last step); the objective
        # 2e-16 relative in both (second order in the parameters), BIC 3e-14.
        cov = ref["covariances_"]
        sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1) if cov.ndim == 4 else cov)
        assert np.max(np.abs(fit["means_"] - ref["means_"]) / sd) < 1e-6
        np.testing.assert_allclose(fit["covariances_"], cov, rtol=1e-6)
        np.testing.assert_allclose(fit["weights_"], ref["weights_"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(fit["lower_bound_"], ref["lower_bound_"], rtol=1e-10)
        np.testing.assert_allclose(fit["bic_"], ref["bic_"], rtol=1e-10)
        np.testing.assert_allclose(fit["likelihood_mass_"], ref["likelihood_mass_"],
                                   rtol=1e-12)
        np.testing.assert_array_equal(fit["n_iter_"], ref["n_iter_"])
        assert fit["converged_"].all()


def test_two_process_minibatch_svi_is_close_to_one_process(svi_runs: list[tuple]) -> None:
    import causal_mixtures as cm

    density, discrete_z, extra = SVI_CASES[2]
    fit = _by_rank(svi_runs, 2)[0]
    X, y, z = _front_door(2000, 1, discrete_z)
    ref = _svi_summary(cm.CausalGaussianMixture(density=density, **_svi_params(extra))
                       .fit(X, y, mechanism=z))
    # Other minibatches than one process's (each process draws its share from its rows):
    # equal within the minibatch noise. Measured: means 0.024 sd apart, objective 3.1e-5
    # relative; one process with random_state 1, 2, 3 against 0: objective 2.7e-5 to
    # 5.3e-5 relative.
    sd = np.sqrt(np.diagonal(ref["covariances_"], axis1=-2, axis2=-1))
    assert np.max(np.abs(fit["means_"] - ref["means_"]) / sd) < 0.25
    np.testing.assert_allclose(fit["lower_bound_"], ref["lower_bound_"], rtol=3e-4)
    np.testing.assert_allclose(fit["likelihood_mass_"], ref["likelihood_mass_"], rtol=1e-12)
    assert fit["n_iter_"].tolist() == [300, 300]


def test_two_process_fit_map_with_a_hessian_subsample(svi_runs: list[tuple]) -> None:
    from causal_mixtures.mixture.svi import fit_map

    X, W = _data()
    # The same Hessian rows drawn in both processes as in one: 1000 of the 3001 rows
    # (measured 6e-14 on the means, 3e-13 on the covariances, 9e-16 on the objective, the
    # same 6 evaluations), and 50 of them where rank 0 holds 5 rows, none of them (3.6e-14,
    # 1.6e-13, 9e-16, the same 17 evaluations).
    for case, hessian_rows in (("fit_map", 1000), ("fit_map_small", 50)):
        fit = _by_rank(svi_runs, case)[0]
        ref = fit_map(torch.from_numpy(X), torch.from_numpy(W), _init(X, W, "full"),
                      random_state=0, hessian_rows=hessian_rows)
        np.testing.assert_array_equal(fit["n_iter"], ref.n_iter.numpy())
        np.testing.assert_allclose(fit["means"], ref.mixture.means.numpy(), rtol=0,
                                   atol=1e-10)
        np.testing.assert_allclose(fit["covariances"], ref.mixture.covariances.numpy(),
                                   rtol=0, atol=1e-10)
        np.testing.assert_allclose(fit["lower_bound"], ref.lower_bound.numpy(), rtol=0,
                                   atol=1e-12)
        np.testing.assert_allclose(fit["history"], ref.history.numpy(), rtol=0, atol=1e-12)


def test_fit_distributed_refuses_bayes_and_says_what_to_use() -> None:
    import causal_mixtures as cm

    X, y, z = _front_door(200, 2, True)
    src = cm.ChunkedSource.from_arrays(X, y, z, chunk_rows=100)
    with pytest.raises(ValueError, match="fit_distributed does not support inference='bayes'"
                       ".*Use inference='em' or 'svi'"):
        cm.CausalGaussianMixture(n_components=2, inference="bayes").fit_distributed(src)
    with pytest.raises(ValueError, match="svi_init='init_params'.*Use svi_init='em'"):
        cm.CausalGaussianMixture(n_components=2, inference="svi",
                                 svi_init="init_params").fit_distributed(src)


def test_a_shard_of_all_the_rows_is_the_one_process_fit_and_bad_shards_are_refused() -> None:
    from causal_mixtures.mixture.sharded import Shard
    from causal_mixtures.mixture.svi import fit_map

    X, W = _data()
    Xt, Wt = torch.from_numpy(X), torch.from_numpy(W)
    init = _init(X, W, "full")
    ref = fit_map(Xt, Wt, init, random_state=0, hessian_rows=1000)
    one = fit_map(Xt, Wt, init, random_state=0, hessian_rows=1000,
                  shard=Shard(0, len(X), len(X)))
    # The same steps; only the standardisation's sums are taken in another order (measured
    # 4e-15 on the means, 1.5e-14 on the covariances, 9e-16 on the objective).
    np.testing.assert_array_equal(one.n_iter.numpy(), ref.n_iter.numpy())
    np.testing.assert_allclose(one.mixture.means.numpy(), ref.mixture.means.numpy(), rtol=0,
                               atol=1e-10)
    np.testing.assert_allclose(one.lower_bound.numpy(), ref.lower_bound.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="offset \\+ n_rows <= n_total; got offset=2990"):
        Shard(2990, 100, 3001)
    with pytest.raises(ValueError, match="shard.n_rows must be this process's rows"):
        fit_map(Xt, Wt, init, shard=Shard(0, 100, len(X)))


def test_the_prior_and_guide_terms_are_counted_by_rank_0_only() -> None:
    import pyro
    from pyro.infer.autoguide import AutoDelta, init_to_value

    from causal_mixtures.mixture.model import CausalMixtureModel, MixturePrior, params_to_sites
    from causal_mixtures.mixture.optim import elbo_trace, shard_elbo
    from causal_mixtures.mixture.sharded import Shard

    X, W = _data()
    X, W = torch.from_numpy(X[:200]), torch.from_numpy(W[:, :200])
    W = W / W.sum(-1, keepdim=True)
    init = _init(X.numpy(), W.numpy(), "full")
    sites = params_to_sites(init.weights, init.means, init.covariances, "full")
    # A proper prior: its log-density is not zero, so counting it twice would show.
    model = CausalMixtureModel(2, 3, 3, "full", prior=MixturePrior.from_data(X))
    with pyro.get_param_store().scope():
        guide = AutoDelta(model, init_loc_fn=init_to_value(values=sites, fallback=None))
        full, trace = elbo_trace(model, guide, (X, W))
        rank0, _ = shard_elbo(model, guide, (X, W), Shard(0, 200, 400, rank=0))
        rank1, _ = shard_elbo(model, guide, (X, W), Shard(200, 200, 400, rank=1))
    obs = float(trace.nodes["obs"]["log_prob_sum"].detach())
    full, rank0, rank1 = (float(t.detach()) for t in (full, rank0, rank1))
    assert rank0 == full
    assert rank1 == obs
    # the prior terms, counted on rank 0 alone (measured: ELBO −87.1, likelihood −10.2)
    assert abs(full - obs) > 1.0
