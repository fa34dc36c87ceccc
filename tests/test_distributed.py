"""Weighted EM sharded over two processes (torch.distributed, gloo on loopback) equals the
single-process EM on the concatenated rows; so does the estimator's
``CausalGaussianMixture.fit_distributed`` (unequal shards; discrete, Gaussian and KDE
densities; a discrete and a continuous cause): ``fit_stream`` and ``fit`` on the union of the shards, to 1e-10."""

from __future__ import annotations

import multiprocessing as mp
import socket

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
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        X, W = _data()
        init = _init(X, W, ct)  # the same start in every process
        rows = np.array_split(np.arange(len(X)), world)[rank]  # unequal shards
        res = weighted_em_distributed(torch.from_numpy(X[rows]), torch.from_numpy(W[:, rows]),
                                      init, tol=1e-9, max_iter=60)
        out.put((rank, res.mixture.means.numpy(), res.mixture.covariances.numpy(),
                 res.lower_bound.numpy(), res.n_iter.numpy()))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_two_process_em_equals_one_process(ct: str) -> None:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, ct, out)) for r in range(2)]
    for p in procs:
        p.start()
    got = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
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

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        for case, (density, discrete_z, continuous_y) in enumerate(CASES):
            X, y, z = _front_door(2000, 1, discrete_z, continuous_y)
            rows = _shard(len(X), rank)
            src = cm.ChunkedSource.from_arrays(X[rows], y[rows], z[rows], chunk_rows=250)
            model = cm.CausalGaussianMixture(n_components=_k(continuous_y), random_state=0,
                                             density=density,
                                             strategy="weighting", tol=1e-4)
            out.put((rank, case, _summary(model.fit_distributed(src, do=_do(continuous_y)))))
    finally:
        dist.destroy_process_group()


def test_two_process_estimator_equals_fit_stream_and_fit() -> None:
    import causal_mixtures as cm

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_estimator_worker, args=(r, 2, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    got = [out.get(timeout=240) for _ in range(2 * len(CASES))]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
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
