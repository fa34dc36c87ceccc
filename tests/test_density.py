"""Conditional densities against closed forms and independent implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, norm

import causal_mixtures as cm
from causal_mixtures.weights.density import (
    ConditionalMixtureDensity,
    DiscreteDensity,
    GaussianDensity,
    HistogramDensity,
    KernelDensityEstimate,
    LogisticDensity,
    is_discrete,
    make_density,
)
from causal_mixtures.weights.kde import TOLERANCE, BinnedKDE, ExactKDE
from causal_mixtures.weights.selection import choose_density


def test_is_discrete() -> None:
    assert is_discrete(np.array([1, 2, 3]))
    assert is_discrete(np.array([0.0, 1.0, 1.0]))
    assert is_discrete(np.array(["a", "b"]))
    assert not is_discrete(np.linspace(0, 1, 50))
    assert not is_discrete(np.arange(100.0))  # whole numbers but too many levels


def test_gaussian_per_class_matches_scipy(rng: np.random.Generator) -> None:
    y = np.repeat([1, 2], 200)
    z = rng.normal(size=(400, 2)) + y[:, None]
    dens = GaussianDensity(discrete_cause=True, reg=0.0).fit(z, y)
    got = dens.log_prob_grid(z[:5], np.array([1, 2]))
    for j, c in enumerate([1, 2]):
        zc = z[y == c]
        ref = multivariate_normal(zc.mean(0), np.cov(zc, rowvar=False, bias=True)).logpdf(z[:5])
        np.testing.assert_allclose(got[:, j], ref, rtol=1e-12)


def test_joint_gaussian_conditional(rng: np.random.Generator) -> None:
    y = rng.normal(2, 1, 50_000)
    z = 1.5 * y + rng.normal(size=50_000)
    dens = GaussianDensity(discrete_cause=False).fit(z.reshape(-1, 1), y)
    pts = np.array([[0.0], [3.0]])
    got = dens.log_prob(pts, np.array([0.0, 2.0]))
    # Population: z | y ~ N(1.5 y, 1); sample error of the fitted slope/variance ~ 1e-2.
    np.testing.assert_allclose(
        got, norm(1.5 * np.array([0.0, 2.0]), 1).logpdf(pts[:, 0]), atol=0.03
    )
    grid = dens.log_prob_grid(pts, np.array([0.0, 2.0]))
    np.testing.assert_allclose(np.diag(grid), got, rtol=1e-12)


@pytest.mark.parametrize("method", ["exact", "binned"])
def test_kde_matches_manual_sum(rng: np.random.Generator, method: str) -> None:
    y = np.repeat([0, 1], 100)
    z = rng.normal(size=(200, 1)) * 2 + y[:, None]
    dens = KernelDensityEstimate(discrete_cause=True, method=method).fit(z, y)
    q = np.array([[0.3], [1.7], [9.0], [-12.0]])  # two in the bulk, two far in the tails
    zc = z[y == 1, 0]
    s = zc.std()
    h = 100 ** (-1 / 5) * s  # Scott's rule on the standardised scale, mapped back
    ref = logsumexp(norm.logpdf((q[:, 0, None] - zc[None]) / h), axis=1) - np.log(100 * h)
    got = dens.log_prob_grid(q, np.array([1]))[:, 0]
    if method == "exact":
        np.testing.assert_allclose(got, ref, rtol=1e-10)
    else:  # the bound of the binned sums; the tails are summed exactly
        assert np.max(np.abs(got - ref)) <= TOLERANCE
        np.testing.assert_allclose(got[3], ref[3], rtol=1e-10)


@pytest.mark.parametrize(("method", "tol"), [("exact", 1e-6), ("binned", 2 * TOLERANCE)])
def test_continuous_kde_is_ratio_of_joint_and_marginal(
    rng: np.random.Generator, method: str, tol: float
) -> None:
    y = rng.normal(size=2000)
    z = y + rng.normal(size=2000)
    dens = KernelDensityEstimate(discrete_cause=False, method=method).fit(z.reshape(-1, 1), y)
    # ∫ p(z | y) dz = 1 by the ratio construction (trapezoid on a fine grid); binned, the
    # joint and the marginal each err by at most TOLERANCE in log.
    grid = np.linspace(-8, 8, 4001).reshape(-1, 1)
    for yv in (-1.0, 0.5):
        dens_vals = np.exp(dens.log_prob_grid(grid, np.array([yv]))[:, 0])
        assert np.trapezoid(dens_vals, grid[:, 0]) == pytest.approx(1.0, abs=tol)


def _kde_family(kind: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "normal":
        return rng.normal(size=(n, d))
    if kind == "t3":  # heavy tails: a wide grid, hence a coarse one
        return rng.standard_t(3, size=(n, d))
    if kind == "bimodal":
        return rng.normal(size=(n, d)) + 6.0 * (rng.random((n, 1)) < 0.3)
    if kind == "ties":
        return np.round(rng.normal(size=(n, d)), 1)
    return rng.lognormal(size=(n, d))  # skewed


@pytest.mark.parametrize("kind", ["normal", "t3", "bimodal", "ties", "skewed"])
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("m", [200, 5000])
def test_binned_kde_is_within_its_bound_of_the_exact_sum(kind: str, d: int, m: int) -> None:
    rng = np.random.default_rng(m + 10 * d)
    exact = ExactKDE(_kde_family(kind, m, d, rng), None, None)
    binned = BinnedKDE(exact)
    # The bulk, and three times wider: far tails and points outside the grid.
    q = np.vstack([_kde_family(kind, 5000, d, rng), 3.0 * _kde_family(kind, 500, d, rng)])
    err = np.abs(binned.score(q) - exact.score(q))
    assert err.max() <= TOLERANCE
    assert np.mean(err == 0.0) < 0.5  # the grid, not the exact fallback, did most of it


def test_kde_auto_uses_every_row_when_binned_and_keeps_the_weights(
    rng: np.random.Generator,
) -> None:
    # Binary cause, Gaussian mechanism: with a 5 000-point cap, rows beyond the span of
    # their class's reference points sit in one kernel's tail and the weights collapse.
    n = 40_000
    y = (rng.random(n) < 0.4).astype(int)
    z = (y + 0.7 * rng.normal(size=n)).reshape(-1, 1)

    def ess(dens) -> np.ndarray:
        g = dens.log_prob_grid(z, np.array([0, 1]))
        w = np.exp(g - g[np.arange(n), y][:, None])
        return w.sum(0) ** 2 / (w**2).sum(0)

    true = ess(GaussianDensity(discrete_cause=True).fit(z, y))
    auto = KernelDensityEstimate().fit(z, y)
    assert all(len(m.exact.points) == c for m, c in zip(auto.models_.values(), np.bincount(y), strict=True))
    capped = KernelDensityEstimate(max_points=5000, method="exact").fit(z, y)
    assert np.all(ess(auto) > 0.8 * true)
    assert ess(capped).min() < 0.5 * true.min()


def test_kde_method_and_max_points_are_checked() -> None:
    z, y = np.zeros((4, 3)) + np.arange(4)[:, None], np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="method must be"):
        KernelDensityEstimate(method="fft").fit(z, y)
    with pytest.raises(ValueError, match="max_points must be"):
        KernelDensityEstimate(max_points=1).fit(z, y)
    with pytest.raises(ValueError, match="at most 2 dimensions"):
        KernelDensityEstimate(method="binned").fit(z, y)
    # Three columns: "auto" sums exactly, on at most EXACT_MAX_POINTS reference points.
    assert isinstance(KernelDensityEstimate().fit(z, y).models_[0], ExactKDE)


def test_discrete_counts_and_smoothing() -> None:
    y = np.array([0, 0, 0, 1, 1])
    z = np.array([5, 5, 7, 7, 7])
    raw = DiscreteDensity(alpha=0.0).fit(z.reshape(-1, 1), y)
    np.testing.assert_allclose(
        np.exp(raw.log_prob_grid(np.array([[5], [7]]), np.array([0, 1]))),
        [[2 / 3, 0.0], [1 / 3, 1.0]],
    )
    lap = DiscreteDensity(alpha=1.0).fit(z.reshape(-1, 1), y)
    np.testing.assert_allclose(np.exp(lap.log_prob_grid(np.array([[5]]), np.array([1]))), [[1 / 4]])


def test_histogram_density_integrates_to_one(rng: np.random.Generator) -> None:
    y = np.repeat([0, 1], 500)
    z = rng.normal(size=(1000, 1)) + y[:, None]
    dens = HistogramDensity(bins=10).fit(z, y)
    width = np.diff(dens.edges_)
    centres = (dens.edges_[:-1] + width / 2).reshape(-1, 1)
    for c in (0, 1):
        assert np.sum(
            np.exp(dens.log_prob_grid(centres, np.array([c]))[:, 0]) * width
        ) == pytest.approx(1.0)
    assert np.isneginf(dens.log_prob_grid(np.array([[1e6]]), np.array([0]))[0, 0])
    with pytest.raises(ValueError, match="supports a 1-D mechanism only"):
        HistogramDensity().fit(rng.normal(size=(10, 2)), np.repeat([0, 1], 5))


def test_logistic_density_for_continuous_cause(rng: np.random.Generator) -> None:
    y = rng.normal(size=5000)
    z = (rng.uniform(size=5000) < 1 / (1 + np.exp(-2 * y))).astype(int)
    dens = LogisticDensity().fit(z.reshape(-1, 1), y)
    lp = dens.log_prob(np.array([[1]]), np.array([0.5]))
    # True p(z=1 | y=0.5) = σ(1); the fitted logistic is within ~0.03 at n = 5000.
    assert np.exp(lp[0]) == pytest.approx(1 / (1 + np.exp(-1.0)), abs=0.03)


def test_auto_choice_and_errors(rng: np.random.Generator) -> None:
    zc = rng.normal(size=(10, 1))
    zd = np.array([[0], [1]] * 5)
    assert isinstance(make_density("auto", zd, discrete_cause=True), DiscreteDensity)
    assert isinstance(make_density("auto", zc, discrete_cause=True), KernelDensityEstimate)
    assert isinstance(make_density("auto", zc, discrete_cause=False), GaussianDensity)
    assert isinstance(make_density("auto", zd, discrete_cause=False), LogisticDensity)
    with pytest.raises(ValueError, match="density must be one of"):
        make_density("parzen", zc, discrete_cause=True)
    with pytest.raises(ValueError, match="needs a discrete cause"):
        make_density("histogram", zc, discrete_cause=False)
    with pytest.raises(ValueError, match="needs a continuous cause"):
        make_density(LogisticDensity(), zd, discrete_cause=True)


def test_conditional_mixture_density_integrates_and_agrees_with_grid(
    rng: np.random.Generator,
) -> None:
    y = rng.normal(size=3000)
    z = (1.5 * np.tanh(y) + 0.3 * y + 0.5 * rng.normal(size=3000)).reshape(-1, 1)
    dens = ConditionalMixtureDensity().fit(z, y)
    grid = np.linspace(-6, 6, 6001).reshape(-1, 1)
    values = np.array([-1.5, 0.0, 2.0])
    lp = dens.log_prob_grid(grid, values)
    np.testing.assert_allclose(np.trapezoid(np.exp(lp), grid[:, 0], axis=0), 1.0, atol=1e-6)
    np.testing.assert_allclose(dens.log_prob(grid[::1000], np.full(7, 2.0)), lp[::1000, 2])
    # Per class for a discrete cause: one mixture of z per class, K by BIC.
    yd = (y > 0).astype(int)
    per = ConditionalMixtureDensity(discrete_cause=True).fit(z, yd)
    assert set(per.models_) == {0, 1}
    np.testing.assert_allclose(
        np.trapezoid(np.exp(per.log_prob_grid(grid, np.array([0, 1]))), grid[:, 0], axis=0),
        1.0, atol=1e-6,
    )


def _tanh_data(n: int, seed: int, nonlinear: bool) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    y = r.normal(size=n) * np.sqrt(2)
    mean = 1.5 * np.tanh(y) + 0.3 * y if nonlinear else 0.5 * y
    return (mean + 0.5 * r.normal(size=n)).reshape(-1, 1), y


def test_auto_density_is_chosen_by_heldout_likelihood_and_recorded() -> None:
    z, y = _tanh_data(4000, 0, nonlinear=True)
    w = cm.causal_weights("front_door", None, y, mechanism=z, do=[-1.0, 0.0, 1.0])
    choice = w.density_choice
    assert isinstance(w.density, ConditionalMixtureDensity) and w.density.choice_ is choice
    assert choice.name == "mixture" and choice.candidates == ("gaussian", "mixture", "kde")
    assert (choice.n_train, choice.n_heldout) == (3000, 1000)
    # The joint Gaussian misses the bend: its held-out log-likelihood per row is lower by
    # many paired standard errors.
    gap = choice.loglik["mixture"] - choice.loglik["gaussian"]
    assert gap > 10 * choice.se_diff["gaussian"] > 0
    table = choice.to_frame()
    assert table["chosen"].tolist() == [False, True, False]
    # Linear-Gaussian p(z | y): the Gaussian is kept (the mixture is a 1-component tie).
    z, y = _tanh_data(4000, 0, nonlinear=False)
    w = cm.causal_weights("front_door", None, y, mechanism=z, do=[-1.0, 0.0, 1.0])
    assert w.density_choice.name == "gaussian" and isinstance(w.density, GaussianDensity)
    lin = w.density_choice
    assert lin.loglik["mixture"] - lin.loglik["gaussian"] <= 2 * lin.se_diff["mixture"] + 1e-9
    # A name, a discrete mechanism or an instance records no choice.
    assert cm.causal_weights(
        "front_door", None, y, mechanism=z, do=[0.0], density="kde"
    ).density_choice is None
    assert cm.causal_weights(
        "front_door", None, y, mechanism=(z[:, 0] > 0).astype(int), do=[0.0]
    ).density_choice is None


def test_auto_density_for_a_discrete_cause_keeps_kde_unless_beaten(
    rng: np.random.Generator,
) -> None:
    y = rng.integers(0, 2, 4000)
    # Bimodal z within each class: the per-class mixture beats the per-class Gaussian and
    # the KDE (whose Scott bandwidth oversmooths two narrow modes).
    z = (np.where(rng.uniform(size=4000) < 0.5, -2.0, 2.0) + y + 0.2 * rng.normal(size=4000))
    choice = choose_density(z.reshape(-1, 1), y, discrete_cause=True)[1]
    assert choice.candidates == ("kde", "mixture", "gaussian") and choice.name == "mixture"
    # Unimodal Gaussian classes: no candidate beats the KDE by two paired SE on 1 000 rows.
    z = rng.normal(size=4000) + y
    choice = choose_density(z.reshape(-1, 1), y, discrete_cause=True)[1]
    assert choice.name == "kde"
    best = max(choice.loglik.values())
    assert best - choice.loglik["kde"] <= 2 * choice.se_diff["kde"]


def test_auto_density_with_covariates_follows_a_nonlinear_mechanism() -> None:
    from causal_mixtures.weights.adjustment import LinearGaussianDensity, MixtureRegressionDensity

    def weights(nonlinear: bool) -> cm.CausalWeights:
        r = np.random.default_rng(0)
        n = 4000
        w, u = r.normal(size=n), r.normal(size=n)
        y = 0.8 * w + u + r.normal(size=n)
        z = (1.5 * np.tanh(y) + 0.3 * y if nonlinear else y) + 0.5 * w + 0.5 * r.normal(size=n)
        return cm.causal_weights(
            "front_door_covariates", None, y, mechanism=z, covariates=w, do=[-1.0, 0.0, 1.0]
        )

    linear, bent = weights(False), weights(True)
    assert isinstance(linear.density, LinearGaussianDensity)
    assert linear.density_choice.name == "gaussian"
    assert isinstance(bent.density, MixtureRegressionDensity)
    c = bent.density_choice
    assert c.name == "mixture" and (c.n_train, c.n_heldout) == (3000, 1000)
    assert c.loglik["mixture"] - c.loglik["gaussian"] > 10 * c.se_diff["gaussian"]


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_exact_kernel_sums_run_on_the_estimators_device(device: str) -> None:
    """``CausalGaussianMixture(device=...)`` runs a KDE's exact kernel sums (a mechanism of
    three columns) there: the same weights as on the CPU, and on a device whose tensors
    cannot be read back ("meta") the sums fail, so they did run there."""
    from causal_mixtures.weights.kde import kernel_logsumexp

    rng = np.random.default_rng(0)
    n = 1500
    y = rng.integers(0, 2, n)
    z = y[:, None] + rng.normal(size=(n, 3))
    X = z[:, :2] + rng.normal(size=(n, 2))
    q, pts = rng.normal(size=(300, 3)), rng.normal(size=(700, 3))
    ref = kernel_logsumexp(q, pts, 0.4)
    # The sum by hand, in float64.
    d2 = ((q[:, None, :] - pts[None]) ** 2).sum(-1)
    np.testing.assert_allclose(ref, np.logaddexp.reduce(-d2 / (2 * 0.4**2), axis=1),
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(kernel_logsumexp(q, pts, 0.4, device=device), ref,
                               rtol=0, atol=1e-10)
    cw = {}
    for dev in ("cpu", device):
        est = cm.CausalGaussianMixture(n_components=1, density="kde", device=dev,
                                       random_state=0).fit(X, y, mechanism=z)
        cw[dev] = est.causal_weights_.values
    np.testing.assert_allclose(cw[device], cw["cpu"], rtol=1e-10)
    kde = KernelDensityEstimate(method="exact").fit(z, y)
    with cm.kernel_device("meta"), pytest.raises((NotImplementedError, RuntimeError)):
        kde.log_prob_grid(z, np.array([0, 1]))
    np.testing.assert_allclose(kde.log_prob_grid(z, np.array([0, 1]))[:, 0],
                               kde.log_prob(z, np.zeros(n, dtype=int)), rtol=1e-12)
