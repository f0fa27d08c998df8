"""Attribution methods against the closed-form identities of a linear logit (catalog O8, O16).

Hand-set linear subjects make the identities exact (up to float32 logits): gradient x input is ``w_j mean(x_j)``,
integrated gradients is ``w_j (x_j - x'_j)``, occlusion is ``w_j (x_j - b_j)``, interventional Shapley is
``w_j (x_j - E_b x_j)``; resampling ablation and observational Shapley are checked against population values
with tolerances of about 4 standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import cowbench as cb
from cowbench.access import Task
from cowbench.methods.integrated_gradients import integrated_gradients, quadrature
from cowbench.methods.shapley import shapley_values

ALL = ("pooled", "internals", "concept", "counterfactual")
W = np.array([1.5, -0.7, 0.9, 0.3])  # cow's inputs: moo, tail, grass, sky
BIAS = 0.2


def linear_model(w, bias: float = 0.0) -> nn.Sequential:
    model = nn.Sequential(nn.Linear(len(w), 1), nn.Flatten(0))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(np.asarray(w, dtype=np.float32)[None, :]))
        model[0].bias.fill_(bias)
    return model


def task_of(scn, data, model, arch: str = "linear") -> Task:
    return Task(scn, data, model, ALL, subject_config={"arch": arch})


@pytest.fixture(scope="module")
def linear_task(cow, cow_data):
    return task_of(cow, cow_data, linear_model(W, BIAS))


def column(task, v):
    return np.asarray(task.train.x, dtype=np.float64)[:, task.input_map[v]]


def test_grad_x_input_linear_is_weight_times_mean_input(linear_task):
    out = cb.get_method("grad_x_input")().run(linear_task)
    for j, v in enumerate(linear_task.variables):
        assert out.model_coef[v] == pytest.approx(W[j] * column(linear_task, v).mean(), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("rule", ["trapezoid", "midpoint", "gausslegendre"])
def test_integrated_gradients_linear_identity(linear_task, rule):
    x = np.asarray(linear_task.train.x[:500], dtype=np.float64)
    ref = np.asarray(linear_task.train.x, dtype=np.float64).mean(0)
    ig = integrated_gradients(linear_task.model, x, ref, n_steps=7, rule=rule)
    np.testing.assert_allclose(ig, W * (x - ref), rtol=1e-5, atol=1e-5)  # O16, exact for any n_steps


@pytest.mark.parametrize("baseline", ["zero", "mean"])
def test_integrated_gradients_slope_is_the_weight(linear_task, baseline):
    out = cb.get_method("integrated_gradients")(baseline=baseline, n_steps=16).run(linear_task)
    np.testing.assert_allclose([out.model_coef[v] for v in linear_task.variables], W, rtol=1e-5)
    assert out.details["completeness_gap"] < 1e-5


def test_quadrature_weights_sum_to_one():
    for rule in ("trapezoid", "midpoint", "gausslegendre"):
        alphas, weights = quadrature(9, rule)
        assert weights.sum() == pytest.approx(1.0) and alphas.min() >= 0 and alphas.max() <= 1
        assert float(weights @ alphas**2) == pytest.approx(1 / 3, abs=0.01)  # integrates a^2 on [0, 1]
    with pytest.raises(ValueError, match="n_steps"):
        quadrature(0, "midpoint")


def test_integrated_gradients_completeness_on_mlp(cow, cow_data, mlp_subject):
    """sum_j IG_j(x) = f(x) - f(x') up to quadrature error, which shrinks as n_steps grows (O16)."""
    task = task_of(cow, cow_data, mlp_subject, arch="mlp")
    x = np.asarray(cow_data.train.x[:1000], dtype=np.float64)
    ref = np.zeros(x.shape[1])
    target = task.predict_logit(x) - task.predict_logit(ref[None])[0]
    spread = target.std()
    gaps = {}
    for n_steps in (4, 16, 64, 256):
        ig = integrated_gradients(task.model, x, ref, n_steps=n_steps, rule="midpoint", chunk_rows=5000)
        gaps[n_steps] = float(np.mean(np.abs(ig.sum(1) - target)) / spread)
    assert gaps[256] < 0.01, gaps
    assert gaps[256] < gaps[16] < gaps[4], gaps


def test_integrated_gradients_chunking_does_not_change_the_answer(cow_data, mlp_subject):
    x = np.asarray(cow_data.train.x[:300])
    before = [None if p.grad is None else p.grad.clone() for p in mlp_subject.parameters()]
    a = integrated_gradients(mlp_subject, x, np.zeros(4), n_steps=32, chunk_rows=100)
    b = integrated_gradients(mlp_subject, x, np.zeros(4), n_steps=32, chunk_rows=1 << 20)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    after = [p.grad for p in mlp_subject.parameters()]  # parameter gradients are left untouched
    assert all((g0 is None and g1 is None) or torch.equal(g0, g1) for g0, g1 in zip(before, after, strict=True))


@pytest.mark.parametrize("baseline", ["mean", "zero"])
def test_occlusion_linear_is_the_weight(linear_task, baseline):
    out = cb.get_method("occlusion")(baseline=baseline).run(linear_task)
    np.testing.assert_allclose([out.model_coef[v] for v in linear_task.variables], W, rtol=1e-5)
    if baseline == "mean":  # mean Delta_j = w_j (mean of explained x_j - training mean) = 0: all units explained
        np.testing.assert_allclose(list(out.details["mean_delta"].values()), 0.0, atol=1e-5)


def test_resample_ablation_linear_closed_form(linear_task):
    """E|w_j (x_pi,j - x_j)| = |w_j| 2 sd / sqrt(pi) for a Gaussian column, |w_j| 2 p (1 - p) for a binary one."""
    out = cb.get_method("resample_ablation")(n_repeats=3, random_state=0).run(linear_task)
    n = len(linear_task.train)
    for j, v in enumerate(linear_task.variables):
        col = column(linear_task, v)
        if linear_task.variable_kinds[v] == "binary":
            p = col.mean()
            expected, se = abs(W[j]) * 2 * p * (1 - p), abs(W[j]) * 0.5 / math.sqrt(3 * n)  # |x' - x| in {0, 1}
        else:
            # |N(0, 2 sd^2)| has mean 2 sd / sqrt(pi) and sd sd sqrt(2 - 4 / pi) = 0.85 sd
            expected = abs(W[j]) * 2 * col.std() / math.sqrt(math.pi)
            se = abs(W[j]) * 0.85 * col.std() / math.sqrt(3 * n)
        assert out.model_coef[v] == pytest.approx(expected, abs=4 * se), v
        assert out.details["slope"][v] == pytest.approx(W[j], rel=1e-5)  # the change is exactly w_j (x'_j - x_j)


def test_interventional_shapley_linear_identity(linear_task):
    """phi_j = w_j (x_j - E_b x_j) exactly for a linear logit on identity rendering (O8)."""
    pool = linear_task.concepts.to_numpy(dtype=np.float64)
    x_e, x_b = pool[:50], pool[100:160]
    phi, values = shapley_values(linear_task, x_e, x_b, value_function="interventional")
    np.testing.assert_allclose(phi, W * (x_e - x_b.mean(0)), atol=1e-4)
    np.testing.assert_allclose(phi.sum(1), values[-1] - values[0], atol=1e-9)  # efficiency
    out = cb.get_method("shapley")(n_explain=100, n_background=50, random_state=0).run(linear_task)
    np.testing.assert_allclose([out.model_coef[v] for v in linear_task.variables], W, rtol=1e-4)


def test_observational_shapley_credits_an_unused_correlated_variable():
    """O8: f = w_C x_C, (x_C, x_S) standard normal with correlation rho: phi_S = w_C rho x_S / 2.

    cow_proxy with one environment has grass = 0.8 moo + 0.6 e (standard normal), tail and sky independent.
    Slope of phi_grass on grass: w rho / 2 = 0.8; of phi_moo on moo: w - w rho^2 / 2 = 1.36. Interventional:
    (0, 2). The conditional slopes are fitted on n = 1000 concept units (se of rho about (1 - rho^2)/sqrt(n)
    = 0.011, times w), the slopes read off 1000 explained units (se about w rho sqrt(1 - rho^2) / (2 sqrt(n))
    = 0.015): tolerance 0.08 (about 4 se).
    """
    scn = cb.make_scenario("cow_proxy", rho_train=(0.8,), n_train=2000, n_val=100, n_test=100)
    data = scn.sample(1)
    w = np.zeros(len(scn.variables))
    w[scn.input_map["moo"]] = 2.0
    task = task_of(scn, data, linear_model(w))
    obs = cb.get_method("shapley")(value_function="observational", n_explain=1000, n_background=200,
                                   random_state=0).run(task)
    itv = cb.get_method("shapley")(value_function="interventional", n_explain=1000, n_background=200,
                                   random_state=0).run(task)
    assert obs.model_coef["grass"] == pytest.approx(0.8, abs=0.08)
    assert obs.model_coef["moo"] == pytest.approx(1.36, abs=0.08)
    assert abs(itv.model_coef["grass"]) < 1e-6
    assert itv.model_coef["moo"] == pytest.approx(2.0, rel=1e-4)
    assert obs.details["completeness_gap"] < 1e-9


def test_shapley_refuses_too_many_variables():
    scn = cb.make_scenario("cow", n_nuisance=11)
    assert "2^k" in cb.get_method("shapley").applicable(scn)
    assert cb.get_method("shapley").applicable(cb.make_scenario("cow", rendering="rotation")) is None
