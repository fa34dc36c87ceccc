"""The front-door CW-GMM out of core: rows on disk (NumPy memmaps), read in chunks.

Writes ``--rows`` rows of a confounded front door (binary cause, discrete mechanism, two
features) to ``.npy`` files chunk by chunk, then fits them either streamed
(``--mode stream``: ``CausalGaussianMixture.fit_stream`` over
``ChunkedSource.from_arrays`` of the memmaps) or in memory (``--mode memory``: the arrays
loaded, ``fit``), and prints the wall time, the peak anonymous resident memory of the fit
above what the process held before it (``RssAnon`` sampled every 5 ms: the memmap's pages
are file-backed page cache, not the fit's memory) and the fitted interventional means. Run
each mode in its own process::

    python examples/out_of_core.py --rows 1000000 --mode stream
    python examples/out_of_core.py --rows 1000000 --mode memory

Details: docs/out_of_core.md.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import causal_mixtures as cm


def write_front_door(folder: Path, n: int, seed: int, chunk: int = 100_000) -> None:
    """``X.npy``, ``y.npy``, ``z.npy`` of ``n`` rows, generated one chunk at a time."""
    rng = np.random.default_rng(seed)
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float64, shape=(n, 2))
    y = np.lib.format.open_memmap(folder / "y.npy", mode="w+", dtype=np.int64, shape=(n,))
    z = np.lib.format.open_memmap(folder / "z.npy", mode="w+", dtype=np.int64, shape=(n,))
    for s in range(0, n, chunk):
        c = min(chunk, n - s)
        u = rng.normal(size=c)
        yc = (rng.random(c) < 1 / (1 + np.exp(-1.5 * u))).astype(np.int64)
        zc = (rng.random(c) < np.where(yc == 1, 0.75, 0.25)).astype(np.int64)
        X[s : s + c, 0] = zc + u + rng.normal(size=c)
        X[s : s + c, 1] = -0.5 * u + rng.normal(size=c)
        y[s : s + c], z[s : s + c] = yc, zc
    for a in (X, y, z):
        a.flush()


def _rss_anon_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")  # not Linux


class PeakAnon:
    """The largest ``RssAnon`` seen while the block runs, above its value at the start."""

    def __enter__(self) -> PeakAnon:
        self.start = self.peak = _rss_anon_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_anon_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_anon_mib())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--mode", choices=("stream", "memory"), default="stream")
    parser.add_argument("--chunk-rows", type=int, default=65_536)
    parser.add_argument("--components", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_front_door(folder, args.rows, seed=0)
        X, y, z = (np.load(folder / f"{name}.npy", mmap_mode="r") for name in "Xyz")
        model = cm.CausalGaussianMixture(n_components=args.components, random_state=0,
                                         strategy="weighting")
        start = time.perf_counter()
        with PeakAnon() as mem:
            if args.mode == "stream":
                src = cm.ChunkedSource.from_arrays(X, y, z, chunk_rows=args.chunk_rows)
                model.fit_stream(src)
            else:
                model.fit(np.array(X), np.array(y), mechanism=np.array(z))
        elapsed = time.perf_counter() - start
    data = args.rows * 4 * 8 / 2**20
    means = (model.weights_[..., None] * model.means_).sum(1)
    print(f"{args.mode}: {args.rows} rows ({data:.0f} MiB of data), {elapsed:.1f} s, peak "
          f"memory of the fit {mem.peak - mem.start:.0f} MiB, EM iterations "
          f"{model.n_iter_.tolist()}")
    print("E[x | do(y)]:", np.round(means, 4).tolist())


if __name__ == "__main__":
    main()
