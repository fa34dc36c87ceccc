"""Tests of :mod:`causal_mixtures.scm`: a causal graph compiled into a Pyro program."""

from __future__ import annotations

import numpy as np
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

from causal_mixtures.graph.core import CausalGraph
from causal_mixtures.simulate.datasets import make_front_door_linear
from causal_mixtures.simulate.scm import StructuralCausalModel

FRONT_DOOR = "Y [cause]; Z [mechanism]; X [effect]; Y -> Z -> X; Y <-> X"
U = "U_X_Y"  # CausalGraph.latent_name("Y", "X")


def front_door_scm(
    a0=0.0, a1=1.0, b=0.5, c0=2.0, c1=1.5, d0=0.0, sigma_y=1.0, sigma_z=1.0, sigma_x=1.0, **kw
):
    """The SCM of datasets.make_front_door_linear, compiled from the front-door graph."""
    return StructuralCausalModel(
        FRONT_DOOR,
        mechanisms={
            "Y": {"intercept": a0, U: a1, "noise_scale": sigma_y},
            "Z": {"Y": b, "noise_scale": sigma_z},
            "X": {"intercept": d0, U: c0, "Z": c1, "noise_scale": sigma_x},
        },
        **kw,
    )


def _within_4se(samples, mean, var):
    # 4 Monte-Carlo standard errors: sd / sqrt(n) for a mean, var * sqrt(2 / (n - 1)) for
    # the variance of Gaussian draws. False-alarm rate below 1e-4 per comparison.
    n = samples.size
    assert abs(samples.mean() - mean) < 4 * np.sqrt(var / n), (samples.mean(), mean)
    assert abs(samples.var(ddof=1) - var) < 4 * var * np.sqrt(2 / (n - 1)), (
        samples.var(ddof=1),
        var,
    )


# ------------------------------------------------------------------------ the program


def test_latent_site_per_bidirected_edge_and_topological_order():
    scm = StructuralCausalModel(FRONT_DOOR, random_state=0)
    assert scm.latent_nodes == (CausalGraph.from_string(FRONT_DOOR).latent_name("Y", "X"),)
    assert scm.observed_nodes == ("Y", "Z", "X")
    assert scm.parents("X") == ("Z", U) and scm.parents("Y") == (U,)
    trace = poutine.trace(scm.model).get_trace(11)
    sites = [name for name in trace.stochastic_nodes if name != "rows"]  # "rows": the plate
    assert sites == [U, "Y", "Z", "X"]
    assert all(trace.nodes[s]["value"].shape == (11,) for s in sites)
    latent = trace.nodes[U]["fn"]  # N(0, 1), expanded over the plate of rows
    assert latent.batch_shape == (11,)
    assert torch.all(latent.loc == 0) and torch.all(latent.scale == 1)


def test_graph_object_and_string_give_the_same_model():
    graph = CausalGraph.from_string(FRONT_DOOR)
    a = StructuralCausalModel(graph, random_state=3)
    b = StructuralCausalModel(FRONT_DOOR, random_state=3)
    assert a.coefficients.keys() == b.coefficients.keys()
    for node in a.coefficients:
        assert a.coefficients[node] == b.coefficients[node]
    for key, value in a.sample(50, random_state=1).items():
        np.testing.assert_array_equal(value, b.sample(50, random_state=1)[key])
    assert "StructuralCausalModel(" in repr(a)


def test_poutine_do_on_the_model():
    scm = front_door_scm()
    y = torch.full((20,), 3.0, dtype=torch.float64)
    values = poutine.do(scm.model, data={"Y": y})(20)
    assert torch.equal(values["Y"], y)


def test_same_as_make_front_door_linear_at_the_same_seed():
    # Same program, same order of draws, same seed: the same numbers (up to the order of
    # the floating-point additions in the mean of X).
    params = dict(a0=0.3, a1=1.2, b=0.5, c0=2.0, c1=1.5, d0=-0.5, sigma_y=0.8, sigma_z=1.1)
    data = make_front_door_linear(500, random_state=7, **params)
    out = front_door_scm(**params).sample(500, include_latent=True, random_state=7)
    np.testing.assert_allclose(out["Y"], data.y, rtol=1e-12)
    np.testing.assert_allclose(out["Z"], data.mechanism, rtol=1e-12)
    np.testing.assert_allclose(out["X"], data.X[:, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out[U], data.confounder, rtol=1e-12)


# -------------------------------------------------------------------- exact moments


@pytest.mark.parametrize(
    "params",
    [
        {},
        dict(a0=2.0, a1=1.0, b=1.5, c0=5.0, c1=1.0),  # the paper's regression
        dict(a0=-1.0, a1=0.4, b=-0.7, c0=0.5, c1=2.5, d0=3.0, sigma_y=2.0, sigma_z=0.3),
    ],
)
def test_exact_moments_equal_front_door_closed_form(params):
    data = make_front_door_linear(5, random_state=0, **params)
    scm = front_door_scm(**params)
    for y in (-1.0, 0.0, 2.5):
        mean, var = scm.interventional_moments_exact("X", do={"Y": y})
        assert mean == pytest.approx(float(data.interventional_mean(y)), abs=1e-12)
        assert var == pytest.approx(data.interventional_var, rel=1e-12)
    # Z | do(Y = y) ~ N(b y, sigma_z^2); Y | do(Y = y) is the constant y.
    p = data.params
    assert scm.interventional_moments_exact("Z", do={"Y": 2.0}) == pytest.approx(
        (2 * p["b"], p["sigma_z"] ** 2)
    )
    assert scm.interventional_moments_exact("Y", do={"Y": 2.0}) == (2.0, 0.0)


def test_exact_observational_moments():
    # Observational: X = (c0 + c1 b a1) U + c1 b sigma_y e_Y + c1 sigma_z e_Z + sigma_x e_X.
    scm = front_door_scm()
    mean, var = scm.interventional_moments_exact("X")
    assert mean == 0.0
    assert var == pytest.approx(2.75**2 + 0.75**2 + 1.5**2 + 1.0)


@pytest.mark.parametrize("y", [-1.0, 2.0])
def test_exact_moments_match_monte_carlo(y):
    scm = front_door_scm(a0=0.5, d0=1.0, sigma_z=0.8)
    mean, var = scm.interventional_moments_exact("X", do={"Y": y})
    draws = scm.sample(40_000, do={"Y": y}, random_state=11)
    assert np.all(draws["Y"] == y)
    _within_4se(draws["X"], mean, var)
    mc_mean = scm.interventional_mean("X", {"Y": y}, n=40_000, random_state=11)
    assert mc_mean == pytest.approx(draws["X"].mean(), abs=1e-12)  # same seed, same draws


def test_exact_moments_match_monte_carlo_with_two_latents():
    # A graph with two bidirected edges, a chain and a direct edge, random coefficients.
    scm = StructuralCausalModel("A -> B -> C; A -> C; A <-> C; B <-> C", random_state=5)
    assert len(scm.latent_nodes) == 2
    draws = scm.sample(40_000, random_state=2)
    _within_4se(draws["C"], *scm.interventional_moments_exact("C"))
    draws = scm.sample(40_000, do={"B": 0.5}, random_state=3)
    _within_4se(draws["C"], *scm.interventional_moments_exact("C", do={"B": 0.5}))


def test_exact_moments_with_intervened_discrete_ancestor():
    # A discrete node cut by do() is a constant, so the exact moments still exist.
    scm = StructuralCausalModel(
        "W -> Y -> X",
        discrete=["W"],
        mechanisms={"Y": {"W": 2.0, "intercept": 1.0}, "X": {"Y": -1.0, "noise_scale": 0.5}},
    )
    assert scm.interventional_moments_exact("X", do={"W": 1}) == pytest.approx((-3.0, 1.25))
    with pytest.raises(ValueError, match=r"'W'.*discrete mechanism; use interventional_mean"):
        scm.interventional_moments_exact("X")
    assert not scm.is_linear_gaussian
    assert front_door_scm().is_linear_gaussian


def test_exact_moments_reject_callable_ancestor_but_not_other_nodes():
    scm = StructuralCausalModel(
        "A -> B; A -> C", mechanisms={"C": lambda pa: dist.Normal(pa["A"] ** 2, 1.0)}
    )
    scm.interventional_moments_exact("B")  # C is not an ancestor of B
    with pytest.raises(ValueError, match=r"'C'.*callable mechanism"):
        scm.interventional_moments_exact("C")


# ---------------------------------------------------------------------- sampling


def test_sample_dtypes_shapes_and_do_arrays():
    scm = StructuralCausalModel(FRONT_DOOR, discrete={"Y": 3}, random_state=0)
    out = scm.sample(200, random_state=0)
    assert list(out) == ["Y", "Z", "X"]
    assert out["Y"].dtype == np.int64 and set(np.unique(out["Y"])) <= {0, 1, 2}
    assert out["X"].dtype == np.float64 and out["X"].shape == (200,)
    codes = np.arange(200) % 3
    out = scm.sample(200, do={"Y": codes}, include_latent=True, random_state=0)
    np.testing.assert_array_equal(out["Y"], codes)
    assert out[U].shape == (200,)


def test_categorical_frequencies_follow_softmax():
    logits = np.array([0.0, 1.0, -0.5])
    scm = StructuralCausalModel(
        "Y -> X", discrete={"Y": 3}, mechanisms={"Y": {"intercept": logits}}
    )
    y = scm.sample(30_000, random_state=0)["Y"]
    p = np.exp(logits) / np.exp(logits).sum()
    # 4 binomial standard errors per category.
    se = np.sqrt(p * (1 - p) / y.size)
    assert np.all(np.abs(np.bincount(y, minlength=3) / y.size - p) < 4 * se)


def test_binary_logistic_with_parent():
    # P(Y = 1 | U) = sigmoid(2 U); E over U ~ N(0, 1) is 0.5; given U > 0 it is > 0.5.
    scm = StructuralCausalModel("Y -> X; Y <-> X", discrete=["Y"], mechanisms={"Y": {U: 2.0}})
    assert np.allclose(scm.coefficients["Y"][U], [0.0, 2.0])
    out = scm.sample(20_000, include_latent=True, random_state=1)
    assert abs(out["Y"].mean() - 0.5) < 4 * np.sqrt(0.25 / 20_000)
    assert out["Y"][out[U] > 0].mean() > 0.75


def test_reproducibility_and_global_rng_untouched():
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state is the point)
    torch_state = torch.get_rng_state().clone()
    a = StructuralCausalModel(FRONT_DOOR, random_state=4)
    b = StructuralCausalModel(FRONT_DOOR, random_state=4)
    first, second = a.sample(30), a.sample(30)
    assert not np.array_equal(first["X"], second["X"])  # the model's stream advances
    np.testing.assert_array_equal(first["X"], b.sample(30)["X"])
    np.testing.assert_array_equal(second["X"], b.sample(30)["X"])
    np.testing.assert_array_equal(
        a.sample(30, random_state=9)["Z"], b.sample(30, random_state=9)["Z"]
    )
    StructuralCausalModel(FRONT_DOOR).sample(10)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_default_coefficients_are_drawn_once_and_copied():
    scm = StructuralCausalModel(FRONT_DOOR, random_state=0)
    coefs = scm.coefficients
    assert set(coefs) == {"Y", "Z", "X"}
    assert set(coefs["X"]) == {"intercept", "Z", U, "noise_scale"}
    assert 0.5 <= abs(coefs["X"]["Z"]) <= 1.5 and -1 <= coefs["X"]["intercept"] <= 1
    coefs["X"]["Z"] = 100.0
    assert scm.coefficients["X"]["Z"] != 100.0


# --------------------------------------------------------------------- callables


def test_callable_mechanisms_distribution_tensor_and_vector():
    scm = StructuralCausalModel(
        "A -> B -> C; A -> V",
        mechanisms={
            "B": lambda pa: torch.exp(pa["A"]),  # deterministic: a Delta site
            "C": lambda pa: dist.Normal(torch.log(pa["B"]), 0.1),
            "V": lambda pa: dist.MultivariateNormal(
                torch.stack([pa["A"], -pa["A"]], -1), torch.eye(2, dtype=torch.float64)
            ),
        },
        random_state=0,
    )
    out = scm.sample(1000, random_state=0)
    np.testing.assert_allclose(out["B"], np.exp(out["A"]))
    assert out["V"].shape == (1000, 2)
    # do() reaches deterministic nodes too: C | do(B = e) ~ N(1, 0.1^2).
    out = scm.sample(5000, do={"B": np.e}, random_state=1)
    np.testing.assert_allclose(out["B"], np.e)
    _within_4se(out["C"], 1.0, 0.01)
    mean = scm.interventional_mean("V", {"A": 2.0}, n=4000, random_state=0)
    assert mean.shape == (2,)
    # 4 standard errors of a unit-variance mean over 4000 draws.
    np.testing.assert_allclose(mean, [2.0, -2.0], atol=4 / np.sqrt(4000))


def test_linear_child_of_vector_parent_is_an_error():
    scm = StructuralCausalModel(
        "V -> X",
        mechanisms={
            "V": lambda pa: dist.Normal(torch.zeros(2, dtype=torch.float64), 1.0).to_event(1)
        },
        random_state=0,
    )
    with pytest.raises(ValueError, match=r"needs scalar parents, but 'V' has values of shape"):
        scm.sample(5)


def test_callable_returning_garbage_is_an_error():
    scm = StructuralCausalModel("A -> B", mechanisms={"B": lambda pa: 3.0}, random_state=0)
    with pytest.raises(TypeError, match=r"must return a torch Distribution or a Tensor; got float"):
        scm.sample(5)


def test_node_named_like_the_plate_and_quoted_names():
    scm = StructuralCausalModel('rows -> "lesion mask"', random_state=0)
    out = scm.sample(7, random_state=0)
    assert out["rows"].shape == (7,) and out["lesion mask"].shape == (7,)


# -------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(mechanisms={"Q": {}}), ValueError, r"mechanisms names the node 'Q'.*expected one of"),
        (dict(mechanisms={U: {}}), ValueError, r"mechanisms names the node 'U_X_Y'"),
        (dict(mechanisms={"X": {"Z": 1.0}}), ValueError, r"missing coefficients for the parent"),
        (
            dict(mechanisms={"Z": {"Y": 1.0, "X": 2.0}}),
            ValueError,
            r"unknown coefficient\(s\) \['X'\]",
        ),
        (
            dict(mechanisms={"Z": {"Y": 1.0, "noise_scale": 0.0}}),
            ValueError,
            r"noise_scale'\] must be > 0",
        ),
        (dict(mechanisms={"Z": {"Y": float("nan")}}), ValueError, r"must be a finite real number"),
        (dict(mechanisms={"Z": 3}), TypeError, r"must be a callable or a mapping"),
        (dict(mechanisms=[1]), TypeError, r"mechanisms must be a mapping"),
        (dict(discrete={"Y": 1}), ValueError, r"discrete\['Y'\] must be an int >= 2.*got 1"),
        (dict(discrete="Y"), TypeError, r"Write discrete=\['Y'\]"),
        (dict(discrete=["W"]), ValueError, r"discrete names the node 'W'"),
        (
            dict(discrete={"Y": 3}, mechanisms={"Y": {U: 1.0}}),
            ValueError,
            r"must be 3 finite logits",
        ),
        (
            dict(discrete=["Y"], mechanisms={"Y": lambda pa: dist.Bernoulli(0.5)}),
            ValueError,
            r"listed in discrete and has a callable mechanism",
        ),
    ],
)
def test_invalid_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        StructuralCausalModel(FRONT_DOOR, **kwargs)


def test_invalid_graph_type():
    with pytest.raises(TypeError, match=r"graph must be a CausalGraph.*got int"):
        StructuralCausalModel(3)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s: s.sample(0), ValueError, r"n must be an int >= 1; got 0"),
        (lambda s: s.sample(5, do={"Q": 1.0}), ValueError, r"do names 'Q'"),
        (lambda s: s.sample(5, do={"Y": np.ones(4)}), ValueError, r"n = 5 rows; got shape \(4,\)"),
        (lambda s: s.sample(5, do={"Y": np.nan}), ValueError, r"do\['Y'\] must be finite"),
        (lambda s: s.sample(5, do={"Y": "a"}), ValueError, r"do\['Y'\] must be numeric"),
        (lambda s: s.sample(5, do=[("Y", 1)]), TypeError, r"do must be a mapping"),
        (lambda s: s.interventional_mean("Q"), ValueError, r"node names the node 'Q'"),
        (
            lambda s: s.interventional_moments_exact("X", do={"Y": np.ones(3)}),
            ValueError,
            r"do\['Y'\] must be a finite real number",
        ),
        (lambda s: s.interventional_moments_exact("X", do={"Q": 1.0}), ValueError, r"do names 'Q'"),
    ],
)
def test_invalid_calls(call, error, match):
    with pytest.raises(error, match=match):
        call(front_door_scm(random_state=0))


def test_invalid_discrete_do_codes():
    scm = StructuralCausalModel(FRONT_DOOR, discrete={"Y": 3}, random_state=0)
    with pytest.raises(ValueError, match=r"category codes in 0..2"):
        scm.sample(4, do={"Y": 3})
    with pytest.raises(ValueError, match=r"category codes in 0..2"):
        scm.sample(4, do={"Y": 0.5})
