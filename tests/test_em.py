"""Weighted EM: equivalences with scikit-learn and with dropped / repeated rows."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

import causal_mixtures as cm
from causal_mixtures.mixture.em import weighted_em
from causal_mixtures.mixture.params import Mixture

COV_TYPES = ["full", "diag", "spherical"]


def _sklearn_init(X: np.ndarray, k: int, ct: str) -> GaussianMixture:
    """A deterministic starting point: sklearn's own k-means init after one step."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(k, covariance_type=ct, max_iter=1, random_state=0).fit(X)


def _init_kwargs(gm: GaussianMixture) -> dict:
    return dict(weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_)


def _relative(reg_covar: float, X: np.ndarray, w: np.ndarray | None = None) -> float:
    """Our ``reg_covar`` is relative to the mean feature variance of the (weighted) rows:
    the value that adds scikit-learn's absolute ``reg_covar``."""
    w = np.ones(len(X)) if w is None else np.asarray(w, dtype=float)
    w = w / w.sum()
    mean = w @ X
    return reg_covar / float(np.mean(w @ (X - mean) ** 2))


@pytest.mark.parametrize("ct", COV_TYPES)
def test_unit_weights_reproduce_sklearn(blobs: np.ndarray, ct: str) -> None:
    init = _sklearn_init(blobs, 3, ct)
    ref = GaussianMixture(
        3, covariance_type=ct, tol=1e-10, max_iter=1000, **_init_kwargs(init)
    ).fit(blobs)
    ours = cm.CausalGaussianMixture(
        None, 3, covariance_type=ct, tol=1e-10, max_iter=1000, reg_covar=_relative(1e-6, blobs),
        **_init_kwargs(init),
    ).fit(blobs, weights=np.ones(len(blobs)))
    # Same algorithm from the same start: agreement is limited by float64 rounding
    # accumulated over the iterations; 1e-6 is the contract.
    assert ours.n_iter_[0] == ref.n_iter_
    np.testing.assert_allclose(ours.weights_[0], ref.weights_, atol=1e-6)
    np.testing.assert_allclose(ours.means_[0], ref.means_, atol=1e-6)
    np.testing.assert_allclose(ours.covariances_[0], ref.covariances_, atol=1e-6)
    # Our lower bound is at the final parameters, sklearn's at the previous ones; they
    # differ by less than the tolerance that stopped both.
    np.testing.assert_allclose(ours.lower_bound_[0], ref.score(blobs), rtol=1e-9)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_zero_weight_equals_dropped_rows(
    blobs: np.ndarray, rng: np.random.Generator, ct: str
) -> None:
    w = rng.uniform(0.5, 2.0, len(blobs))
    drop = rng.choice(len(blobs), 40, replace=False)
    w[drop] = 0.0
    keep = np.setdiff1d(np.arange(len(blobs)), drop)
    init = _init_kwargs(_sklearn_init(blobs, 3, ct))
    a = cm.CausalGaussianMixture(None, 3, covariance_type=ct, tol=1e-10, max_iter=500, **init)
    b = cm.CausalGaussianMixture(None, 3, covariance_type=ct, tol=1e-10, max_iter=500, **init)
    a.fit(blobs, weights=w)
    b.fit(blobs[keep], weights=w[keep])
    np.testing.assert_allclose(a.means_, b.means_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=1e-12)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_integer_weight_equals_repeated_rows(
    blobs: np.ndarray, rng: np.random.Generator, ct: str
) -> None:
    m = rng.integers(1, 4, len(blobs))
    init = _init_kwargs(_sklearn_init(blobs, 3, ct))
    a = cm.CausalGaussianMixture(None, 3, covariance_type=ct, tol=1e-10, max_iter=500, **init)
    b = cm.CausalGaussianMixture(None, 3, covariance_type=ct, tol=1e-10, max_iter=500, **init)
    a.fit(blobs, weights=m.astype(float))
    b.fit(np.repeat(blobs, m, axis=0), weights=np.ones(int(m.sum())))
    np.testing.assert_allclose(a.means_, b.means_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=0, atol=1e-9)
    # And sklearn on the repeated rows agrees too (with its absolute reg_covar).
    reg = 1e-6 / _relative(1.0, blobs, m.astype(float))
    ref = GaussianMixture(3, covariance_type=ct, tol=1e-10, max_iter=500, reg_covar=reg,
                          **init).fit(np.repeat(blobs, m, axis=0))
    np.testing.assert_allclose(a.means_[0], ref.means_, atol=1e-6)


def test_objective_never_decreases(blobs: np.ndarray, rng: np.random.Generator) -> None:
    w = rng.exponential(1.0, (3, len(blobs)))
    est = cm.CausalGaussianMixture(None, 4, tol=0.0, max_iter=60, random_state=0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        est.fit(blobs, weights=w.T)
    trace = est.lower_bounds_
    assert trace.shape == (60, 3)
    # EM's monotonicity holds up to float64 rounding of the objective (~1e-12 here).
    assert np.all(np.diff(trace, axis=0) > -1e-10)


def test_batched_fit_equals_one_at_a_time(blobs: np.ndarray, rng: np.random.Generator) -> None:
    w = rng.exponential(1.0, (len(blobs), 3))
    init = _init_kwargs(_sklearn_init(blobs, 3, "full"))
    joint = cm.CausalGaussianMixture(None, 3, tol=1e-6, max_iter=300, **init).fit(blobs, weights=w)
    for j in range(3):
        one = cm.CausalGaussianMixture(None, 3, tol=1e-6, max_iter=300, **init).fit(
            blobs, weights=w[:, j]
        )
        assert joint.n_iter_[j] == one.n_iter_[0]
        np.testing.assert_allclose(joint.means_[j], one.means_[0], atol=1e-12)
        np.testing.assert_allclose(joint.covariances_[j], one.covariances_[0], atol=1e-12)


def test_weighted_moments_for_one_component(rng: np.random.Generator) -> None:
    """K = 1: the fit is the weighted mean and the weighted (biased) covariance, exactly."""
    X = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 3))
    w = rng.exponential(size=200)
    est = cm.CausalGaussianMixture(None, 1, reg_covar=0.0).fit(X, weights=w)
    wn = w / w.sum()
    mean = wn @ X
    cov = (X - mean).T @ ((X - mean) * wn[:, None])
    np.testing.assert_allclose(est.means_[0, 0], mean, atol=1e-12)
    np.testing.assert_allclose(est.covariances_[0, 0], cov, atol=1e-12)
    assert est.converged_.all()


def test_lower_bound_is_weighted_loglik_at_final_params(
    blobs: np.ndarray, rng: np.random.Generator
) -> None:
    w = rng.exponential(size=(len(blobs), 2))
    est = cm.CausalGaussianMixture(None, 3, random_state=0).fit(blobs, weights=w)
    for j in range(2):
        ll = est.score_samples(blobs, do=est.do_values_[j])
        wn = w[:, j] / w[:, j].sum()
        np.testing.assert_allclose(est.lower_bound_[j], wn @ ll, rtol=1e-12)


def test_singular_covariance_message() -> None:
    X = np.zeros((20, 2))
    X[:, 1] = np.arange(20)
    params = Mixture(
        torch.ones(1, 1).double(), torch.zeros(1, 1, 2).double(),
        torch.eye(2)[None, None].double(), "full",
    )
    with pytest.raises(ValueError, match="increase reg_covar"):
        weighted_em(torch.tensor(X), torch.ones(1, 20, dtype=torch.float64), params, reg_covar=0.0)


def test_initial_m_step_equals_the_broadcast_formula_without_its_memory() -> None:
    """params_from_responsibilities (the M-step from k-means responsibilities) computes the
    full-covariance second moments one component at a time; the result equals the
    all-at-once (B, K, n, d) broadcast it replaced, to rounding."""
    from causal_mixtures.mixture.em import params_from_responsibilities

    gen = torch.Generator().manual_seed(0)
    B, n, K, d = 3, 200, 4, 5
    X = torch.randn(n, d, dtype=torch.float64, generator=gen)
    W = torch.rand(B, n, dtype=torch.float64, generator=gen)
    resp = torch.softmax(torch.randn(B, n, K, dtype=torch.float64, generator=gen), -1)
    got = params_from_responsibilities(X, W, resp, 1e-6, "full")
    rt = (resp * W.unsqueeze(-1)).transpose(-1, -2)
    nk = rt.sum(-1)
    mu = (rt @ X) / nk[..., None]
    s2 = torch.matmul(rt.unsqueeze(-1).mul(X).transpose(-1, -2), X)
    cov = s2 / nk[..., None, None] - mu[..., :, None] * mu[..., None, :]
    cov = cov + 1e-6 * torch.eye(d, dtype=torch.float64)
    torch.testing.assert_close(got.means, mu, rtol=0, atol=1e-12)
    torch.testing.assert_close(got.covariances, cov, rtol=0, atol=1e-10)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_initial_m_step_from_labels_equals_one_hot_responsibilities(
    monkeypatch, ct: str
) -> None:
    """params_from_labels (chunked, centred) equals the M-step from one-hot
    responsibilities, also with rows far from the origin and chunks smaller than n."""
    import causal_mixtures.mixture.em as em

    gen = torch.Generator().manual_seed(1)
    B, n, K, d = 2, 3000, 4, 3
    X = 1e3 + torch.randn(n, d, dtype=torch.float64, generator=gen)
    W = torch.rand(B, n, dtype=torch.float64, generator=gen)
    W = W / W.sum(-1, keepdim=True)
    labels = torch.randint(0, K, (B, n), generator=gen)
    resp = torch.nn.functional.one_hot(labels, K).to(torch.float64)
    want = em.params_from_responsibilities(X, W, resp, 1e-6, ct)
    monkeypatch.setattr(em, "chunk_size", lambda *a: 256)
    got = em.params_from_labels(X, W, labels, K, 1e-6, ct)
    torch.testing.assert_close(got.weights, want.weights, rtol=0, atol=1e-14)
    torch.testing.assert_close(got.means, want.means, rtol=0, atol=1e-10)
    # The one-hot path's raw moments lose ~1e-7 to cancellation at |x| = 1e3.
    torch.testing.assert_close(got.covariances, want.covariances, rtol=0, atol=1e-6)


def test_kmeans_start_on_a_weighted_subsample_above_kmeans_rows(monkeypatch) -> None:
    """Above KMEANS_ROWS the k-means start runs on rows drawn with probability w and every
    row takes its nearest centre; on three separated blobs the EM from it reaches the same
    optimum as from the k-means on all rows."""
    import causal_mixtures as cm
    from causal_mixtures.mixture import init

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 0.5, (700, 2)) for c in ([0, 0], [6, 0], [0, 6])])
    w = rng.uniform(0.5, 1.5, (len(X), 1))

    def fit() -> cm.CausalGaussianMixture:
        return cm.CausalGaussianMixture(None, n_components=3, random_state=0).fit(X, weights=w)

    full = fit()
    labels = init._kmeans_labels(X, w[:, 0], 3, seed=1)
    monkeypatch.setattr(init, "KMEANS_ROWS", 300)
    sub_labels = init._kmeans_labels(X, w[:, 0], 3, seed=1)
    sub = fit()
    # The same three clusters (up to their names), and the same optimum.
    table = np.zeros((3, 3), dtype=int)
    np.add.at(table, (labels, sub_labels), 1)
    assert (table.max(1) >= 695).all()
    np.testing.assert_allclose(sub.lower_bound_, full.lower_bound_, rtol=1e-8)
    np.testing.assert_allclose(np.sort(sub.means_[0, :, 0]), np.sort(full.means_[0, :, 0]),
                               atol=1e-6)


@pytest.mark.parametrize("d", [1, 3, 10])
def test_quadratic_feature_kernel_equals_whitened_residuals(monkeypatch, d: int) -> None:
    # Far from the origin and with small variances: the expansion x'Px − 2x'Pμ + μ'Pμ
    # cancels badly unless centred (the kernel centres on the mean of the means).
    import causal_mixtures.mixture.params as params

    rng = np.random.default_rng(d)
    a = rng.normal(size=(2, 3, d, d))
    cov = torch.from_numpy(1e-4 * (a @ a.transpose(0, 1, 3, 2) + np.eye(d)))
    means = torch.from_numpy(1e4 + 0.05 * rng.normal(size=(2, 3, d)))
    mix = Mixture(torch.full((2, 3), 1 / 3, dtype=torch.float64), means, cov, "full")
    x = torch.from_numpy(1e4 + 0.05 * rng.normal(size=(500, d)))
    fast = params.LogProbKernel(mix)
    assert fast.quadratic
    monkeypatch.setattr(params, "QUADRATIC_MAX_D", 0)
    slow = params.LogProbKernel(mix)
    assert not slow.quadratic
    np.testing.assert_allclose(fast(x).numpy(), slow(x).numpy(), rtol=1e-9, atol=1e-7)


def test_converged_do_values_are_not_recomputed(monkeypatch, blobs: np.ndarray) -> None:
    # Two do values that converge at different iterations: the rows are passed over for
    # the unconverged member only, so the passes add up to the sum of the iterations.
    import causal_mixtures.mixture.em as em

    sizes: list[int] = []
    real = em._sufficient_statistics

    def spy(X, W, params):
        sizes.append(W.shape[0])
        return real(X, W, params)

    monkeypatch.setattr(em, "_sufficient_statistics", spy)
    w = np.column_stack([np.ones(len(blobs)), np.random.default_rng(0).exponential(size=len(blobs))])
    init = _init_kwargs(_sklearn_init(blobs, 3, "full"))
    m = cm.CausalGaussianMixture(None, 3, tol=1e-8, max_iter=500, **init).fit(blobs, weights=w)
    assert m.n_iter_[0] != m.n_iter_[1]
    # One pass per iteration of the members still active, and one for the final objective.
    assert sum(sizes) == int(np.sum(m.n_iter_)) + 2


def test_float32_em_matches_float64_and_returns_float64(blobs: np.ndarray) -> None:
    """dtype="float32": the EM runs in single precision; the fit agrees with the float64
    one to single-precision accuracy and its attributes are float64."""
    rng = np.random.default_rng(0)
    w = rng.exponential(size=(len(blobs), 2))
    init = _init_kwargs(_sklearn_init(blobs, 3, "full"))
    kw = dict(tol=1e-8, max_iter=200, **init)
    a = cm.CausalGaussianMixture(None, 3, **kw).fit(blobs, weights=w)
    b = cm.CausalGaussianMixture(None, 3, dtype="float32", **kw).fit(blobs, weights=w)
    assert b.means_.dtype == np.float64 and b.lower_bound_.dtype == np.float64
    sd = blobs.std(0)
    assert np.max(np.abs(a.means_ - b.means_) / sd) < 1e-3
    np.testing.assert_allclose(b.lower_bound_, a.lower_bound_, atol=1e-4)
    with pytest.raises(ValueError, match="dtype='float32' applies to the EM fit"):
        cm.CausalGaussianMixture(None, 3, dtype="float32", inference="svi").fit(blobs, weights=w)
    with pytest.raises(cm.InvalidParameterError, match="dtype"):
        cm.CausalGaussianMixture(None, 3, dtype="float16").fit(blobs, weights=w)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter=4
def test_auto_dtype_picks_float32_only_where_it_is_fast_and_safe() -> None:
    """dtype="auto" (the default): float64, bit for bit, under the size where float32 pays
    off and on ill-conditioned features; float32 on 32 000 x 64 well-conditioned rows,
    within 1e-3 sd of the float64 fit; refitted in float64 when a fitted component is
    ill-conditioned although the data as a whole are not; an explicit float32 on
    ill-conditioned features warns."""
    from causal_mixtures.estimators.precision import AUTO_FLOAT32_MIN_ENTRIES

    rng = np.random.default_rng(0)
    n, d = AUTO_FLOAT32_MIN_ENTRIES // 64 + 1, 64
    upper = rng.random(n) < 0.5
    X = rng.standard_normal((n, d)) + np.where(upper, 2.0, -2.0)[:, None]
    w = rng.exponential(size=(n, 2))
    kw = dict(tol=0.0, max_iter=4, random_state=0)
    small = cm.CausalGaussianMixture(None, 2, **kw).fit(X[:2000], weights=w[:2000])
    ref = cm.CausalGaussianMixture(None, 2, dtype="float64", **kw).fit(X[:2000], weights=w[:2000])
    assert small.dtype_ == "float64" and "under float32's size" in small.dtype_reason_
    np.testing.assert_array_equal(small.means_, ref.means_)

    auto = cm.CausalGaussianMixture(None, 2, **kw).fit(X, weights=w)
    f64 = cm.CausalGaussianMixture(None, 2, dtype="float64", **kw).fit(X, weights=w)
    assert auto.dtype_ == "float32" and "condition number" in auto.dtype_reason_
    assert auto.means_.dtype == np.float64
    assert np.max(np.abs(auto.means_ - f64.means_) / X.std(0)) < 1e-3

    ill = X.copy()
    ill[:, 1] = ill[:, 0] + 1e-4 * rng.standard_normal(n)  # near-duplicate columns
    m = cm.CausalGaussianMixture(None, 2, **kw).fit(ill, weights=w)
    assert m.dtype_ == "float64" and "condition number" in m.dtype_reason_
    with pytest.warns(UserWarning, match="float32 EM loses digits"):
        cm.CausalGaussianMixture(None, 2, dtype="float32", **kw).fit(ill, weights=w)

    # One cluster nearly flat along a feature: the data are well conditioned, that
    # component is not (its variance there 1e-6 of the others).
    tight = X.copy()
    tight[upper, 5] = 1e-3 * rng.standard_normal(int(upper.sum())) + 3.0
    m = cm.CausalGaussianMixture(None, 2, **kw).fit(tight, weights=w)
    assert m.dtype_ == "float64" and "refitted in float64" in m.dtype_reason_


@pytest.mark.parametrize("ct", COV_TYPES)
def test_streamed_em_equals_in_memory_em(tmp_path, blobs: np.ndarray, ct: str) -> None:
    """weighted_em_stream over a memmap read 77 rows at a time equals weighted_em on the
    rows in memory to 1e-10 (the statistics are sums over chunks), rows far from the
    origin included (the streamed pass centres them the same way)."""
    from causal_mixtures.mixture.em import array_source, weighted_em, weighted_em_stream
    from causal_mixtures.mixture.init import initial_mixture

    X = blobs + 50.0
    W = np.random.default_rng(1).exponential(size=(2, len(X)))
    path = tmp_path / "x.dat"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    Xt = torch.from_numpy(X)
    init = initial_mixture(X, Xt, W, 3, covariance_type=ct, init_params="kmeans", n_init=1,
                           reg_covar=1e-6, rng=np.random.default_rng(0))
    mem = weighted_em(Xt, torch.from_numpy(W), init, tol=1e-9, max_iter=60)
    ro = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
    out = weighted_em_stream(array_source(ro, W, chunk_rows=77), init, tol=1e-9, max_iter=60)
    assert torch.equal(out.n_iter, mem.n_iter)
    torch.testing.assert_close(out.mixture.means, mem.mixture.means, rtol=0, atol=1e-10)
    torch.testing.assert_close(out.mixture.covariances, mem.mixture.covariances, rtol=0,
                               atol=1e-10)
    torch.testing.assert_close(out.lower_bound, mem.lower_bound, rtol=0, atol=1e-10)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_em_weights_and_sampling_on_each_device(device: str) -> None:
    """The whole default fit on ``device``: the same mixtures as on the CPU (float64), and
    draws whose moments match the fitted ones within Monte-Carlo error."""
    data = cm.datasets.make_front_door_linear(4000, n_features=3, random_state=1)
    z3 = np.column_stack([data.mechanism, np.random.default_rng(2).normal(size=(4000, 2))])
    fits = {}
    for dev in ("cpu", device):
        fits[dev] = cm.CausalGaussianMixture(n_components=2, density="kde", device=dev,
                                             dtype="float64", random_state=0).fit(
            data.X, data.y, mechanism=z3, do=[-1.0, 1.0])
    a, b = fits["cpu"], fits[device]
    np.testing.assert_allclose(b.causal_weights_.values, a.causal_weights_.values, rtol=1e-10)
    np.testing.assert_allclose(b.means_, a.means_, rtol=0, atol=1e-8 * data.X.std())
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-7, atol=1e-10)
    m = 40_000
    draws = b.sample(m, do=1.0, random_state=3)
    mean = np.einsum("k,kd->d", b.weights_[1], b.means_[1])
    sd = np.sqrt(np.diag(np.cov(draws, rowvar=False)))
    # 4 Monte-Carlo standard errors of each mean.
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 4 * sd / np.sqrt(m))


@pytest.mark.parametrize(("ct", "d", "dtype"), [("diag", 20, "float64"), ("full", 12, "float64"),
                                               ("diag", 20, "float32")])
def test_no_subnormal_responsibilities_reach_a_matrix_product(monkeypatch, ct, d, dtype) -> None:
    # Far-apart clusters: most responsibilities sit at the E-step's floor (e * tiny), and
    # weights below 1 push them below the smallest normal number. On Intel CPUs a matrix
    # product over subnormal numbers is ~30x slower (one thread, 9000 x 100, K = 300 diag:
    # 4.7 s a pass against 0.15 s), so the E-step zeroes them (they change no sum).
    rng = np.random.default_rng(0)
    centres = rng.normal(0.0, 30.0, (6, d))
    X = np.concatenate([c + rng.normal(size=(150, d)) for c in centres])
    w = rng.uniform(0.01, 0.5, len(X))
    seen: list[float] = []
    real = torch.matmul

    def spy(a, b, *args, **kwargs):
        for t in (a, b):
            if t.is_floating_point():
                tiny = torch.finfo(t.dtype).tiny
                seen.append(float(((t != 0) & (t.abs() < tiny)).float().mean()))
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(torch, "matmul", spy)
    m = cm.CausalGaussianMixture(None, 6, covariance_type=ct, means_init=centres, max_iter=3,
                                 tol=0.0, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X, weights=w)
    assert seen, "the E-step's products were not observed"
    assert max(seen) == 0.0
    # Every cluster found its own component: zeroing changed nothing that matters.
    order = np.argsort(m.means_[0][:, 0])
    np.testing.assert_allclose(m.means_[0][order], centres[np.argsort(centres[:, 0])], atol=0.5)
