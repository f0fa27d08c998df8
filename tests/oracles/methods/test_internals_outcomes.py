"""Expected outcomes of the internals methods: where each succeeds and where decodability fails as reliance.

Failure (catalog §5.1 (f); Belinkov 2022, arXiv:2102.12452; Ravichander, Belinkov & Hovy 2021; Elazar et al.
2021 amnesic probing): a "dormant" hidden unit that copies a variable the readout ignores makes the variable
perfectly decodable while the model does not use it. probe_readout (probe direction times readout) and
activation patching (interchange interventions, Geiger et al. 2021, arXiv:2106.02997) read ~0 there.
Success: on the default cow with an MLP subject, both recover the reliance ranking (grass > causes > sky).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cowbench as cb
from cowbench.access import Task


def _run(name, scn, data, model):
    cls = cb.get_method(name)
    task = Task(scn, data, model, cls.access, subject_config={"arch": "mlp"})
    return cls(random_state=0).run(task), task


def _dormant_model() -> nn.Sequential:
    """Hidden units copy (x_moo, x_tail, x_grass, x_sky) + 10 (ReLU never clips); the readout sums the first two.

    So f = x_moo + x_tail - 20 + 20 = x_moo + x_tail: reliance moo = tail = 1, grass = sky = 0 exactly, while
    grass and sky sit, undisturbed, in hidden units 3 and 4.
    """
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1), nn.Flatten(0))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(4))
        model[0].bias.fill_(10.0)
        model[2].weight.copy_(torch.tensor([[1.0, 1.0, 0.0, 0.0]]))
        model[2].bias.fill_(-20.0)
    return model


def test_a_probe_decodes_a_variable_the_model_does_not_use(cow, cow_data):
    model = _dormant_model()
    ace = cb.reliance(model, cow, cow_data.test_id)
    for var in ("grass", "sky"):
        assert abs(ace[var]) < 1e-6
    assert ace["moo"] == pytest.approx(1.0, abs=1e-4)

    probe, _ = _run("linear_probe", cow, cow_data, model)
    # decodable => "used": the unused grass and sky score highest, above the used moo and tail
    for var in ("grass", "sky"):
        assert probe.model_coef[var] >= 0.95
        assert probe.model_coef[var] > max(probe.model_coef["moo"], probe.model_coef["tail"])

    readout, task = _run("probe_readout", cow, cow_data, model)
    # error of d_v . w = sum_j w_j B_vj comes from the measurement noise on x_moo and x_tail (sd 1, readout
    # weights 1 and 1): standard error sqrt(2) * sqrt([(C'C)^-1]_vv); allow 4 of them
    c = task.concepts[cow.variables].to_numpy(dtype=np.float64)
    inv = np.linalg.inv((c - c.mean(0)).T @ (c - c.mean(0)))
    for i, var in enumerate(cow.variables):
        assert abs(readout.model_coef[var] - ace[var]) <= 4 * np.sqrt(2 * inv[i, i]), var

    patching, _ = _run("activation_patching", cow, cow_data, model)
    for var in cow.variables:
        assert patching.model_coef[var] == pytest.approx(ace[var], abs=1e-5)
    # the dormant sky unit mediates nothing; moo's effect goes through unit 0 alone
    assert patching.details["variables"]["moo"]["unit_shares"] == pytest.approx([1.0, 0.0, 0.0, 0.0], abs=1e-5)


@pytest.fixture(scope="module")
def mlp_metrics():
    scn = cb.make_scenario("cow")
    return {name: cb.evaluate(scn, cb.get_method(name)(), seed=0, subject={"arch": "mlp"})
            for name in ("linear_probe", "probe_readout", "activation_patching")}


@pytest.mark.parametrize("name", ["probe_readout", "activation_patching"])
def test_readout_and_patching_recover_the_mlp_reliance_on_the_default_cow(mlp_metrics, name):
    metrics = mlp_metrics[name]
    assert metrics["model_rank"] >= 0.8
    assert metrics["model_cos"] >= 0.99


def test_decodability_misranks_the_mlp_reliance_on_the_default_cow(mlp_metrics):
    # sky (nuisance, reliance ~0) is as decodable from the hidden layer as grass: the ranking breaks
    assert mlp_metrics["linear_probe"]["model_rank"] <= 0.5
    assert mlp_metrics["linear_probe"]["model_rank"] < mlp_metrics["probe_readout"]["model_rank"]


def test_decodability_ranks_the_unused_sky_above_the_used_causes(cow, cow_data, mlp_subject):
    ace = cb.reliance(mlp_subject, cow, cow_data.test_id)
    probe, _ = _run("linear_probe", cow, cow_data, mlp_subject)
    assert abs(ace["sky"]) < 0.2 * min(abs(ace["moo"]), abs(ace["tail"]))
    assert probe.model_coef["sky"] > max(probe.model_coef["moo"], probe.model_coef["tail"])
