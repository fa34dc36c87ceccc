"""The front-door CW-GMM fitted on rows sharded over processes: ``fit_distributed`` under
``torchrun``.

Run on one machine with two processes (gloo on CPUs)::

    torchrun --nproc-per-node 2 examples/distributed_fit.py --rows 20000 --check

Every process holds one shard of the rows (here: its slice of a simulated data set; in
practice its row groups of a Parquet dataset, ``ChunkedSource.from_parquet``, or its slice
of a memmap) and calls ``CausalGaussianMixture.fit_distributed`` with the same parameters.
Every pass of the out-of-core fit sums statistics over its chunks; those sums are
all-reduced over the process group, so every process ends with the same model: the one
``fit_stream`` would fit in one process on all the rows. ``--check`` fits that one on
rank 0 and prints the largest difference. ``--inference svi`` continues with the SVI-MAP
from the EM fit, every step's gradients all-reduced; ``--check`` then compares with
``fit(..., inference="svi")`` on all the rows::

    torchrun --nproc-per-node 2 examples/distributed_fit.py --inference svi --check
 On a cluster: the same command on every node
(``--nnodes``, ``--node-rank``, ``--rdzv-endpoint``; docs/distributed.md).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.distributed as dist

import causal_mixtures as cm


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--chunk-rows", type=int, default=5_000)
    p.add_argument("--backend", default="gloo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inference", choices=["em", "svi"], default="em",
                   help="'svi': SVI-MAP from the EM fit, the gradients all-reduced")
    p.add_argument("--check", action="store_true",
                   help="also fit all the rows on rank 0 (fit_stream; fit for --inference "
                   "svi) and print the difference")
    args = p.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        data = cm.datasets.make_classification_2d(args.rows, random_state=args.seed)
        rows = np.array_split(np.arange(args.rows), world)[rank]  # this process's shard
        src = cm.ChunkedSource.from_arrays(data.X[rows], data.y[rows], data.mechanism[rows],
                                           chunk_rows=args.chunk_rows)
        params = dict(n_components=args.k, random_state=args.seed, inference=args.inference)
        model = cm.CausalGaussianMixture(**params).fit_distributed(src)
        if rank == 0:
            print(f"{world} processes, {args.rows} rows; ESS {model.causal_weights_.ess.round(1)},"
                  f" k-hat {model.causal_weights_.khat.round(3)}")
            print(f"means of do={model.do_values_[0]}:\n", model.means_[0].round(4))
            if args.check and args.inference == "svi":
                # The streamed density="auto" is the Gaussian one for this continuous
                # mechanism; fit's "auto" chooses otherwise, so it is named here.
                one = cm.CausalGaussianMixture(**params, density="gaussian").fit(
                    data.X, data.y, mechanism=data.mechanism)
                sd = np.sqrt(np.diagonal(one.covariances_, axis1=-2, axis2=-1))
                print("largest difference to fit(inference='svi') in one process: means "
                      f"{np.max(np.abs(model.means_ - one.means_) / sd):.1e} sd, objective "
                      f"{np.max(np.abs(model.lower_bound_ / one.lower_bound_ - 1)):.1e} "
                      "relative")
            elif args.check:
                full = cm.ChunkedSource.from_arrays(data.X, data.y, data.mechanism,
                                                    chunk_rows=args.chunk_rows)
                one = cm.CausalGaussianMixture(**params).fit_stream(full)
                diff = max(float(np.max(np.abs(getattr(model, a) - getattr(one, a))))
                           for a in ("weights_", "means_", "covariances_", "lower_bound_"))
                print(f"largest difference to fit_stream in one process: {diff:.1e}")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
