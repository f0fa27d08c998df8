"""Unit tests of the internals methods (linear_probe, probe_readout, activation_patching) against closed forms.

Closed forms: catalog O16 (linear logit: ACE_S = w_S; linear two-layer network f = v'(Wx): the share of
S's effect mediated by hidden unit u is v_u W_uS / (v' W_:S)) and the least-squares standard error of
the probe directions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cowbench as cb
from cowbench.access import Task

SMALL = {"n_train": 500, "n_val": 100, "n_test": 200}


def _run(name, scn, data, model, arch="mlp", random_state=0):
    cls = cb.get_method(name)
    task = Task(scn, data, model, cls.access, subject_config={"arch": arch})
    return cls(random_state=random_state).run(task), task


def _linear_two_layer(w: np.ndarray, v: np.ndarray) -> nn.Sequential:
    """f(x) = v'(W x + b) + c: the subject MLP's shape with the ReLU replaced by the identity."""
    model = nn.Sequential(nn.Linear(w.shape[1], w.shape[0]), nn.Identity(), nn.Linear(w.shape[0], 1), nn.Flatten(0))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(w, dtype=torch.float32))
        model[0].bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
        model[2].weight.copy_(torch.tensor(v[None, :], dtype=torch.float32))
        model[2].bias.fill_(-0.5)
    return model


W = np.array([[1.0, 0.5, 2.0, 0.0], [-0.5, 1.5, 1.0, 0.3], [0.25, 0.0, -1.0, 1.0]])  # (hidden, inputs)
V = np.array([0.8, -1.2, 0.5])


@pytest.mark.parametrize("noise", [1.0, 0.0])
def test_patching_mediated_share_matches_o16_on_a_linear_two_layer_net(noise):
    scn = cb.make_scenario("cow", measurement_noise=noise, **SMALL)
    data = scn.sample(0)
    out, _ = _run("activation_patching", scn, data, _linear_two_layer(W, V))
    for j, var in enumerate(scn.variables):  # identity rendering: input column j is variable j
        total = V @ W[:, j]
        res = out.details["variables"][var]
        assert out.model_coef[var] == pytest.approx(total, rel=1e-5, abs=1e-5)  # TE slope = v'W_:S
        np.testing.assert_allclose(res["unit_shares"], V * W[:, j] / total, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(res["unit_effects"], V * W[:, j], rtol=1e-5, atol=1e-5)
        if noise == 0.0:
            # x = c exactly, so the probe direction of S is W_:S exactly and carries the whole effect
            assert res["direction_share"] == pytest.approx(1.0, abs=1e-5)


def test_patching_total_effect_equals_reliance_for_a_linear_subject(cow, cow_data, linear_subject):
    out, _ = _run("activation_patching", cow, cow_data, linear_subject, arch="linear")
    ace = cb.reliance(linear_subject, cow, cow_data.train)
    for var in cow.variables:
        assert out.model_coef[var] == pytest.approx(ace[var], rel=1e-4, abs=1e-5)
    assert out.details["layer"] == "input"
    # the input units of a linear subject on identity rendering: only v's own column carries v's effect
    for j, var in enumerate(cow.variables):
        shares = np.array(out.details["variables"][var]["unit_shares"])
        np.testing.assert_allclose(shares, np.eye(len(cow.variables))[j], atol=1e-5)


def test_patching_total_effect_equals_reliance_on_a_mixing_rendering():
    scn = cb.make_scenario("cow", rendering="rotation", **SMALL)
    data = scn.sample(0)
    model = cb.train_subject(scn, data, arch="linear", seed=0, epochs=50)
    out, _ = _run("activation_patching", scn, data, model, arch="linear")
    ace = cb.reliance(model, scn, data.train)
    for var in scn.variables:
        assert out.model_coef[var] == pytest.approx(ace[var], rel=1e-4, abs=1e-5)


def test_probe_readout_is_the_weight_vector_without_measurement_noise():
    scn = cb.make_scenario("cow", measurement_noise=0.0, **SMALL)
    data = scn.sample(0)
    model = cb.train_subject(scn, data, arch="linear", seed=0, epochs=50)
    out, _ = _run("probe_readout", scn, data, model, arch="linear")
    w = model[0].weight.detach().double().numpy().ravel()
    ace = cb.reliance(model, scn, data.test_id)
    for j, var in enumerate(scn.variables):
        assert out.model_coef[var] == pytest.approx(w[j], rel=1e-4, abs=1e-4)
        assert out.model_coef[var] == pytest.approx(ace[var], rel=1e-4, abs=1e-4)


def test_probe_readout_equals_reliance_up_to_the_decoders_estimation_noise(cow, cow_data, linear_subject):
    """Identity rendering: x_moo = moo + e, x_tail = tail + e' (sd sigma), grass and sky exact.

    The estimate is sum_j w_j B_vj with B the least-squares regression of x on the concepts, so its error
    is sum_j w_j [(C'C)^-1 C' e_j]_v with standard error sigma * sqrt(w_moo^2 + w_tail^2) * sqrt([(C'C)^-1]_vv)
    (C centred). The test allows 4 standard errors.
    """
    out, task = _run("probe_readout", cow, cow_data, linear_subject, arch="linear")
    ace = cb.reliance(linear_subject, cow, cow_data.test_id)
    c = task.concepts[cow.variables].to_numpy(dtype=np.float64)
    c = c - c.mean(0)
    inv = np.linalg.inv(c.T @ c)
    w = linear_subject[0].weight.detach().double().numpy().ravel()
    sigma = cow.spec["knobs"]["measurement_noise"]
    for i, var in enumerate(cow.variables):
        se = sigma * np.hypot(w[0], w[1]) * np.sqrt(inv[i, i])
        assert abs(out.model_coef[var] - ace[var]) <= 4 * se, (var, out.model_coef[var], ace[var], se)


def test_linear_probe_decodes_exact_inputs_and_its_control_is_at_chance(cow, cow_data, linear_subject):
    out, _ = _run("linear_probe", cow, cow_data, linear_subject, arch="linear")
    layer = out.details["layers"]["input"]  # the linear subject has no hidden layer: the inputs are probed
    assert out.details["scored_layer"] == "input"
    n_test = out.details["n_test"]
    # grass and sky are input columns without noise: perfectly decodable
    assert layer["grass"]["decodability"] == pytest.approx(1.0)
    assert layer["sky"]["decodability"] == pytest.approx(1.0, abs=1e-3)
    # moo = x_moo - e with Var(e) = Var(moo) = 1: x_moo alone gives R^2 = 1/2; the other inputs add a little
    assert layer["moo"]["decodability"] >= 0.5 - 4 / np.sqrt(n_test)
    for var in cow.variables:
        assert out.model_coef[var] == pytest.approx(max(0.0, layer[var]["decodability"]))
        if cow.kind(var) == "continuous":
            # permuted targets: nothing to decode out of sample; held-out R^2 of a fit to noise is about
            # -p/n (p = 4 inputs), well inside the sampling error 4/sqrt(n)
            assert abs(layer[var]["control"]) <= 4 / np.sqrt(n_test)
    # a binary control is noisy (the random probe's thresholded predictions still track grass, see the
    # method's docstring); it stays far below the real probe
    assert layer["grass"]["selectivity"] >= 0.5
