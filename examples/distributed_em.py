"""Weighted EM with the rows sharded over processes: ``torch.distributed`` and ``torchrun``.

Run on one machine with two processes (gloo on CPUs)::

    torchrun --nproc-per-node 2 examples/distributed_em.py --rows 200000

On a cluster, the same script on every node (``--nnodes``, ``--node-rank``,
``--rdzv-endpoint``; docs/distributed.md), with ``--backend nccl`` on GPUs. Ray Train's
``TorchTrainer`` and Spark's ``TorchDistributor`` launch the same function with the
environment ``torchrun`` sets.

Each process builds (here: simulates; in practice reads, e.g. its row groups of a Parquet
dataset) its own shard of rows and their causal weights, and every process starts from the
same initial mixture (here: a k-means start on a sample that every process draws with the
same seed). ``weighted_em_distributed`` all-reduces the statistics of every pass, so every
process ends with the result ``weighted_em`` would give on all the rows. The whole
estimator (density, weights, start, EM) on shards: ``examples/distributed_fit.py``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.distributed as dist

from causal_mixtures.mixture.em import weighted_em_distributed
from causal_mixtures.mixture.init import initial_mixture


def shard(rank: int, world: int, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """This process's rows and weights (two do values): a stand-in for reading a shard."""
    rng = np.random.default_rng([seed, rank])
    n = rows // world + (rank < rows % world)
    centres = np.array([[0.0, 0.0], [4.0, 1.0], [-3.0, 3.0]])
    X = centres[rng.integers(0, 3, n)] + rng.normal(size=(n, 2))
    W = rng.exponential(size=(2, n))
    return X, W


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--backend", default="gloo")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        X, W = shard(rank, world, args.rows, args.seed)
        # The same start everywhere: rank 0's shard prefix, broadcast to every process.
        head = torch.from_numpy(np.ascontiguousarray(X[:5000]))
        head_w = torch.from_numpy(np.ascontiguousarray(W[:, :5000]))
        dist.broadcast(head, src=0)
        dist.broadcast(head_w, src=0)
        init = initial_mixture(head.numpy(), head, head_w.numpy(), args.k,
                               covariance_type="full", init_params="kmeans", n_init=1,
                               reg_covar=1e-6, rng=np.random.default_rng(args.seed))
        res = weighted_em_distributed(torch.from_numpy(X), torch.from_numpy(W), init,
                                      tol=1e-6, max_iter=200)
        if rank == 0:
            print(f"{world} processes, {args.rows} rows: converged {res.converged.tolist()} "
                  f"after {res.n_iter.tolist()} iterations; weighted log-likelihood per row "
                  f"{res.lower_bound.tolist()}")
            print("means of do value 0:\n", res.mixture.means[0].numpy().round(3))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
