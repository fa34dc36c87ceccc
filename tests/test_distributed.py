"""Weighted EM sharded over two processes (torch.distributed, gloo on loopback) equals the
single-process EM on the concatenated rows."""

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
