"""The out-of-core fit (:mod:`causal_mixtures.estimators.out_of_core`): on the same rows it
equals the in-memory fit to 1e-10 whatever the source (a read-only memmap in chunks of 77
rows, Parquet row groups, a folder of Parquet files, a list of chunks, CSV chunks), and it
refuses what the in-memory fit refuses (positivity) or what it does not stream (with what
to use)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import causal_mixtures as cm
from causal_mixtures.cli import main
from causal_mixtures.estimators import out_of_core
from causal_mixtures.weights.density import DiscreteDensity
from causal_mixtures.weights.kde import BinnedKDE

ATTRS = ("weights_", "means_", "covariances_", "precisions_cholesky_", "lower_bound_")


def _front_door(n: int, seed: int, *, discrete_z: bool) -> tuple[np.ndarray, ...]:
    """A confounded front door y -> z -> x with u -> y and u -> x."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-1.5 * u))).astype(np.int64)
    if discrete_z:
        z = (rng.random(n) < np.where(y == 1, 0.75, 0.25)).astype(np.int64) + 2 * (
            rng.random(n) < 0.5
        )
    else:
        z = 1.2 * y + rng.normal(size=n)
    X = np.column_stack([z + u + rng.normal(size=n), -0.5 * u + rng.normal(size=n)]) + 10.0
    return X, y, z


def _assert_same_fit(a: cm.CausalGaussianMixture, b: cm.CausalGaussianMixture) -> None:
    assert a.n_components_ == b.n_components_
    np.testing.assert_array_equal(a.n_iter_, b.n_iter_)
    np.testing.assert_array_equal(a.do_values_, b.do_values_)
    for name in ATTRS:
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=0, atol=1e-10,
                                   err_msg=name)
    np.testing.assert_allclose(b.bic_, a.bic_, rtol=1e-12)
    # The same repair of degenerate components: reseeded, then dropped (none or the same).
    np.testing.assert_array_equal(b.reseeded_, a.reseeded_)
    np.testing.assert_array_equal(b.dropped_components_, a.dropped_components_)
    np.testing.assert_allclose(b.causal_weights_.ess, a.causal_weights_.ess, rtol=1e-12)
    np.testing.assert_allclose(b.causal_weights_.max_ratio, a.causal_weights_.max_ratio,
                               rtol=1e-12)
    np.testing.assert_allclose(b.causal_weights_.khat, a.causal_weights_.khat, rtol=1e-10)
    ra, rb = a.weighted_reference_, b.weighted_reference_
    for name in ("mean", "sd", "cov", "mean_se", "sd_se", "quantiles"):
        np.testing.assert_allclose(getattr(rb, name), getattr(ra, name), rtol=0, atol=1e-10,
                                   err_msg=name)


def test_memmap_in_chunks_of_77_rows_equals_the_in_memory_fit(tmp_path: Path) -> None:
    X, y, z = _front_door(3000, 0, discrete_z=True)
    for name, arr in (("X", X), ("y", y), ("z", z)):
        np.save(tmp_path / f"{name}.npy", arr)
    Xm, ym, zm = (np.load(tmp_path / f"{name}.npy", mmap_mode="r") for name in "Xyz")
    assert not Xm.flags.writeable
    params = dict(n_components=2, random_state=0, strategy="weighting")
    a = cm.CausalGaussianMixture(**params).fit(X, y, mechanism=z)
    src = cm.ChunkedSource.from_arrays(Xm, ym, zm, chunk_rows=77)
    b = cm.CausalGaussianMixture(**params).fit_stream(src)
    _assert_same_fit(a, b)
    # The k-means start ran on all 3000 rows (<= INIT_ROWS), as in memory; EM iterated.
    assert b.n_iter_.min() >= 3
    assert b.causal_weights_.n_samples == 3000
    assert isinstance(b.causal_weights_.density, DiscreteDensity)
    np.testing.assert_allclose(b.causal_weights_.overlap.share, a.causal_weights_.overlap.share,
                               rtol=1e-12)
    np.testing.assert_array_equal(b.class_counts_, np.bincount(y))
    draws = b.sample(5, do=1, random_state=0)
    np.testing.assert_allclose(draws, a.sample(5, do=1, random_state=0), rtol=0, atol=1e-10)
    assert cm.diagnose(b).ok
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), X)  # the data untouched


@pytest.mark.parametrize("settings", [
    dict(n_init=3, init_params="k-means++"),
    dict(covariance_type="diag"),
    dict(covariance_type="spherical", init_params="random_from_data"),
])
def test_restarts_starts_and_covariance_types_equal_the_in_memory_fit(settings: dict) -> None:
    X, y, z = _front_door(1500, 9, discrete_z=True)
    params = dict(n_components=3, random_state=0, strategy="weighting", **settings)
    a = cm.CausalGaussianMixture(**params).fit(X, y, mechanism=z)
    b = cm.CausalGaussianMixture(**params).fit_stream(
        cm.ChunkedSource.from_arrays(X, y, z, chunk_rows=200)
    )
    _assert_same_fit(a, b)


def test_parquet_row_groups_and_a_parquet_folder_equal_the_in_memory_fit(
    tmp_path: Path,
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    X, y, z = _front_door(2400, 1, discrete_z=False)
    frame = pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "y": y, "z": z})
    frame.to_parquet(tmp_path / "data.parquet", index=False, row_group_size=700)
    assert pq.ParquetFile(tmp_path / "data.parquet").num_row_groups == 4
    folder = tmp_path / "dataset"
    folder.mkdir()
    frame.iloc[:1000].to_parquet(folder / "part-0.parquet", index=False, row_group_size=300)
    frame.iloc[1000:].to_parquet(folder / "part-1.parquet", index=False, row_group_size=500)
    params = dict(n_components=2, density="gaussian", random_state=0, strategy="weighting")
    a = cm.CausalGaussianMixture(**params).fit(X, y, mechanism=z)
    cols = dict(effect=["x1", "x2"], cause="y", mechanism="z")
    for path in (tmp_path / "data.parquet", folder):
        b = cm.CausalGaussianMixture(**params).fit_stream(
            cm.ChunkedSource.from_parquet(path, **cols)
        )
        _assert_same_fit(a, b)
    # Batches of 333 rows instead of row groups: the same fit.
    b = cm.CausalGaussianMixture(**params).fit_stream(
        cm.ChunkedSource.from_parquet(tmp_path / "data.parquet", batch_rows=333, **cols)
    )
    _assert_same_fit(a, b)
    assert np.isfinite(b.causal_weights_.khat).all()  # a continuous mechanism: a real tail


def test_list_of_chunks_with_a_given_start_equals_the_in_memory_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # More rows than the k-means start keeps (here 500): the streamed start runs on a
    # subsample; with the start given, the fits are the same again.
    monkeypatch.setattr(out_of_core, "INIT_ROWS", 500)
    X, y, z = _front_door(2000, 2, discrete_z=True)
    rng = np.random.default_rng(0)
    means = X[rng.choice(len(X), 2, replace=False)]
    start = dict(weights_init=np.full(2, 1 / 2), means_init=means,
                 precisions_init=np.stack([np.eye(2)] * 2))
    params = dict(n_components=2, random_state=0, strategy="weighting", tol=1e-6,
                  max_iter=2000, **start)
    a = cm.CausalGaussianMixture(**params).fit(X, y, mechanism=z)
    cuts = [0, 5, 400, 401, 1337, 2000]  # uneven chunks, one of a single row
    chunks = [(X[s:e], y[s:e], z[s:e]) for s, e in zip(cuts[:-1], cuts[1:], strict=True)]
    b = cm.CausalGaussianMixture(**params).fit_stream(chunks)
    _assert_same_fit(a, b)
    assert b.n_iter_.min() > 10
    # A callable returning a fresh generator is a source too; the k-means start on the
    # 500-row subsample gives a fit of the same quality.
    c = cm.CausalGaussianMixture(n_components=2, random_state=0, strategy="weighting", tol=1e-6,
                                 max_iter=2000).fit_stream(lambda: iter(chunks))
    assert np.all(np.abs(c.lower_bound_ - a.lower_bound_) < 0.05)


@pytest.mark.parametrize("d_z", [1, 2])
def test_binned_kde_with_exact_tails_equals_the_in_memory_fit(d_z: int) -> None:
    # Heavy-tailed mechanisms (Student t, 3 dof): some rows lie where a class's binned
    # grid cannot interpolate, and their kernels are summed exactly in a pass over the
    # points, as in memory.
    rng = np.random.default_rng(5)
    n = 2000
    u = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-1.5 * u))).astype(np.int64)
    z = 2.0 * y + rng.standard_t(3, size=n)
    if d_z == 2:
        z = np.column_stack([z, 0.5 * z + rng.standard_t(3, size=n)])
    X = np.column_stack([z.reshape(n, -1)[:, 0] + u + rng.normal(size=n), -0.5 * u])
    params = dict(n_components=2, density="kde", random_state=0, strategy="weighting")
    a = cm.CausalGaussianMixture(**params).fit(X, y, mechanism=z)
    b = cm.CausalGaussianMixture(**params).fit_stream(
        cm.ChunkedSource.from_arrays(X, y, z, chunk_rows=250)
    )
    _assert_same_fit(a, b)
    models = b.causal_weights_.density.models_
    assert all(isinstance(m, BinnedKDE) for m in models.values())
    assert sum(len(m.exact.table) for m in models.values()) >= 1  # exact tails were needed


@pytest.mark.parametrize("density", ["gaussian", "kde"])
def test_continuous_cause_equals_the_in_memory_fit(density: str) -> None:
    # "kde": p(z | y) = p(y, z) / p(y), a binned 2-D joint KDE and the 1-D marginal with its
    # kernel, a heavy-tailed mechanism (exact tails needed).
    rng = np.random.default_rng(3)
    n = 2000
    u = rng.normal(size=n)
    y = rng.normal(size=n) + 0.5 * u
    z = y + (rng.standard_t(3, size=n) if density == "kde" else rng.normal(size=n))
    X = np.column_stack([z + u, u + rng.normal(size=n)])
    do = np.array([-1.0, 0.0, 1.0])
    params = dict(n_components=2, density=density, random_state=0, strategy="weighting")
    a = cm.CausalGaussianMixture(**params).fit(X, y, mechanism=z, do=do)
    b = cm.CausalGaussianMixture(**params).fit_stream(
        cm.ChunkedSource.from_arrays(X, y, z, chunk_rows=300), do=do
    )
    _assert_same_fit(a, b)
    assert b.class_counts_ is None
    # The quintile strata of the cause and their weight shares, as in memory.
    assert b.causal_weights_.overlap.strata == a.causal_weights_.overlap.strata
    np.testing.assert_allclose(b.causal_weights_.overlap.ratio, a.causal_weights_.overlap.ratio,
                               rtol=1e-10)
    if density == "kde":
        assert len(b.causal_weights_.density.joint_.exact.table) >= 1
    else:  # a component collapsed at do = 1 and was refitted from k-means++ starts
        assert b.reseeded_.tolist() == [False, False, True]


def test_string_labels_stream_as_in_memory() -> None:
    # A cause and a mechanism given as strings (the levels sorted as in memory, the widths
    # of all chunks kept: "mid" is longer than the first chunk's "lo").
    X, y, z = _front_door(900, 8, discrete_z=True)
    ys = np.array(["no", "yes"])[y]
    zs = np.array(["lo", "mid", "high", "top"])[z]
    chunks = [(X[:300], ys[:300], np.where(zs[:300] == "mid", "lo", zs[:300])),
              (X[300:], ys[300:], zs[300:])]
    zz = np.concatenate([c[2] for c in chunks])
    params = dict(n_components=1, random_state=0, strategy="weighting")
    a = cm.CausalGaussianMixture(**params).fit(X, ys, mechanism=zz)
    b = cm.CausalGaussianMixture(**params).fit_stream(chunks)
    _assert_same_fit(a, b)
    assert b.do_values_.tolist() == ["no", "yes"]
    assert b.causal_weights_.density.levels_[:, 0].tolist() == ["high", "lo", "mid", "top"]


def test_auto_k_and_csv_chunks(tmp_path: Path) -> None:
    X, y, z = _front_door(1500, 4, discrete_z=True)
    path = tmp_path / "data.csv"
    pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "y": y, "z": z}).to_csv(path, index=False)
    params = dict(n_components="auto", n_components_range=[1, 2, 3], random_state=0,
                  strategy="weighting")
    a = cm.CausalGaussianMixture(**params).fit(X, y, mechanism=z)
    src = cm.ChunkedSource.from_csv(path, effect=["x1", "x2"], cause="y", mechanism="z",
                                    chunk_rows=256)
    b = cm.CausalGaussianMixture(**params).fit_stream(src)
    # CSV text round-trips the floats to within 1 ulp: the fits agree to 1e-10 still.
    _assert_same_fit(a, b)
    np.testing.assert_allclose(b.bic_grid_, a.bic_grid_, rtol=1e-10)


def test_positivity_failure_is_refused_as_in_memory() -> None:
    X, y, _ = _front_door(1000, 5, discrete_z=True)
    z = y.copy()  # a mechanism that copies the cause
    with pytest.raises(cm.PositivityError, match="positivity fails"):
        cm.CausalGaussianMixture(n_components=2).fit(X, y, mechanism=z)
    with pytest.raises(cm.PositivityError, match="positivity fails"):
        cm.CausalGaussianMixture(n_components=2).fit_stream(cm.ChunkedSource.from_arrays(X, y, z))
    with pytest.warns(cm.PositivityWarning):
        cm.CausalGaussianMixture(n_components=1, positivity="warn").fit_stream(
            cm.ChunkedSource.from_arrays(X, y, z)
        )


def test_what_is_not_streamed_is_refused_with_what_to_use() -> None:
    X, y, z = _front_door(400, 6, discrete_z=False)
    src = cm.ChunkedSource.from_arrays(X, y, z, chunk_rows=100)
    z3 = cm.ChunkedSource.from_arrays(X, y, np.column_stack([z, z, z]), chunk_rows=100)
    with pytest.raises(ValueError, match="not streamed for a mechanism of 3 columns.*'gaussian'"):
        cm.CausalGaussianMixture(n_components=1, density="kde").fit_stream(z3)
    with pytest.raises(ValueError, match="density='mixture' is not streamed.*'kde'"):
        cm.CausalGaussianMixture(n_components=1, density="mixture").fit_stream(src)
    with pytest.raises(ValueError, match="inference='svi'.*Use inference='em'"):
        cm.CausalGaussianMixture(n_components=1, inference="svi").fit_stream(src)
    with pytest.raises(ValueError, match="weight_smoothing='psis'"):
        cm.CausalGaussianMixture(n_components=1, weight_smoothing="psis").fit_stream(src)
    with pytest.raises(TypeError, match="one-shot iterator"):
        cm.ChunkedSource(iter([(X, y, z)]))
    with pytest.raises(ValueError, match="chunk 1 has 3"):
        cm.CausalGaussianMixture(n_components=1).fit_stream([(X, y, z), (np.ones((2, 3)), y[:2], z[:2])])
    with pytest.raises(ValueError, match="front-door graphs"):
        cm.CausalGaussianMixture("back_door", n_components=1).fit_stream(src)


def test_cli_chunk_rows_streams_parquet_and_csv(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyarrow")
    X, y, z = _front_door(1200, 7, discrete_z=True)
    frame = pd.DataFrame({"Y": y, "Z": z, "X1": X[:, 0], "X2": X[:, 1]})
    frame.to_parquet(tmp_path / "in.parquet", index=False, row_group_size=250)
    frame.to_csv(tmp_path / "in.csv", index=False)
    args = ["--cause", "Y", "--mechanism", "Z", "--effect", "X1,X2", "--n-components", "2",
            "--n-samples", "2000", "--seed", "0"]
    outs = {}
    for name, extra in (("in.parquet", ["--chunk-rows", "250"]), ("in.csv", ["--chunk-rows", "100"]),
                        ("in.csv", [])):
        out = tmp_path / f"out-{name}-{len(extra)}.csv"
        assert main(["deconfound", str(tmp_path / name), "--out", str(out), *args, *extra]) == 0
        outs[(name, len(extra))] = pd.read_csv(out)
    text = capsys.readouterr().out
    assert "out of core" in text
    streamed = outs[("in.parquet", 2)]
    assert list(streamed.columns) == ["X1", "X2", "Y"]
    assert (streamed["Y"].value_counts().sort_index() == [2000, 2000]).all()
    # The same fit and the same seed: the same draws whichever way the rows were read
    # (in memory here, by strategy="weighting" in both: a stream is always weighting).
    np.testing.assert_allclose(outs[("in.csv", 2)].to_numpy(), streamed.to_numpy(), atol=1e-9)
    model = cm.CausalGaussianMixture(n_components=2, random_state=0, strategy="weighting").fit(
        X, y, mechanism=z)
    means = streamed.groupby("Y")[["X1", "X2"]].mean().to_numpy()
    mixture_means = (model.weights_[..., None] * model.means_).sum(1)
    np.testing.assert_allclose(means, mixture_means, atol=0.12)
    # What is not streamed: one error line that says what to use.
    status = main(["deconfound", str(tmp_path / "in.parquet"), "--out", str(tmp_path / "o.csv"),
                   *args, "--chunk-rows", "250", "--density", "mixture"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status != 0 and len(err) == 1 and err[0].startswith("error: ")
    assert "density='mixture' is not streamed" in err[0] and "density='gaussian'" in err[0]
