"""Expected outcomes of the attribution methods, as the literature describes them.

* Observational (conditional) Shapley credits a variable the model ignores when it is correlated with the
  variables the model uses; interventional (marginal) Shapley does not (catalog §5.4 and O8; Janzing,
  Minorics & Blöbaum 2020, arXiv:1910.13413; Chen, Janizek, Lundberg & Lee 2020, "True to the model or
  true to the data?").
* Gradient x input is not invariant to a constant input shift that leaves the model's function unchanged,
  while occlusion against the training mean is (catalog §5.2; Kindermans et al. 2019, "The (un)reliability
  of saliency methods", arXiv:1711.00867).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cowbench as cb
from cowbench.access import Task

ALL = ("pooled", "internals", "concept", "counterfactual")


def linear_model(w, bias: float = 0.0) -> nn.Sequential:
    model = nn.Sequential(nn.Linear(len(w), 1), nn.Flatten(0))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(np.asarray(w, dtype=np.float32)[None, :]))
        model[0].bias.fill_(bias)
    return model


def test_observational_shapley_credits_ignored_grass_interventional_does_not(cow, cow_data):
    """A linear subject that ignores grass (and sky) on the default cow, where grass = cow w.p. 0.9/0.8 and
    so correlates with moo and tail through cow: the observational value function fills grass's absence
    with E[moo, tail | grass] and credits grass; the interventional one gives it exactly nothing."""
    w = np.zeros(len(cow.variables))
    w[cow.input_map["moo"]] = w[cow.input_map["tail"]] = 1.0
    task = Task(cow, cow_data, linear_model(w), ALL, subject_config={"arch": "linear"})
    obs = cb.get_method("shapley")(value_function="observational", random_state=0).run(task)
    itv = cb.get_method("shapley")(value_function="interventional", random_state=0).run(task)
    assert abs(itv.model_coef["grass"]) < 1e-6 and itv.details["mean_abs_phi"]["grass"] < 1e-6
    assert obs.model_coef["grass"] > 0.3  # 0.79 at this seed: grass stands in for moo + tail when they are absent (O8)
    assert obs.details["mean_abs_phi"]["grass"] > 0.1
    # the ignored, independent nuisance variable gets (nearly) nothing from either
    assert abs(obs.model_coef["sky"]) < 0.1 and abs(itv.model_coef["sky"]) < 1e-6
    # interventional recovers the weights (the model's reliance) exactly
    assert itv.model_coef["moo"] == pytest.approx(1.0, rel=1e-4)
    assert itv.model_coef["tail"] == pytest.approx(1.0, rel=1e-4)


def _answers(method: str, scn, data, model) -> np.ndarray:
    task = Task(scn, data, model, ALL, subject_config={"arch": "linear"})
    out = cb.get_method(method)().run(task)
    return np.array([out.model_coef[v] for v in scn.variables])


@pytest.mark.parametrize("offset", [-5.0, 5.0])
def test_kindermans_shift_moves_grad_x_input_not_occlusion(offset):
    """Kindermans et al.'s construction: inputs x + c (cow's input_offset knob, same seed, same units) and
    the model f(x - c) (bias moved), the same function of the data. Gradient x input gains exactly w_j c on
    every variable, the unused nuisance sky included; occlusion against the training mean does not move."""
    knobs = {"n_train": 1000, "n_val": 100, "n_test": 100}
    scn0, scn1 = cb.make_scenario("cow", **knobs), cb.make_scenario("cow", input_offset=offset, **knobs)
    d0, d1 = scn0.sample(3), scn1.sample(3)
    np.testing.assert_allclose(d1.train.x, d0.train.x + offset, atol=1e-4)
    w = np.array([1.0, 1.0, 1.2, 0.0])  # a subject leaning on grass, ignoring sky
    f0, f1 = linear_model(w, 0.1), linear_model(w, 0.1 - offset * w.sum())
    np.testing.assert_allclose(cb.models.logits(f1, d1.train.x), cb.models.logits(f0, d0.train.x), atol=1e-4)
    gxi0, gxi1 = _answers("grad_x_input", scn0, d0, f0), _answers("grad_x_input", scn1, d1, f1)
    np.testing.assert_allclose(gxi1 - gxi0, w * offset, atol=1e-3)
    occ0, occ1 = _answers("occlusion", scn0, d0, f0), _answers("occlusion", scn1, d1, f1)
    np.testing.assert_allclose(occ1, occ0, atol=1e-4)
    np.testing.assert_allclose(occ0, w, rtol=1e-4)


def test_offset_knob_flips_grad_x_input_but_not_occlusion_on_trained_subjects():
    """Through the harness (subject retrained per scenario): with input_offset = -5 gradient x input points the
    wrong way (model_cos about -1), with 0 it is off (the centred causes get ~0), with +5 it looks right;
    occlusion matches the model's reliance at every offset."""
    knobs = {"n_train": 1000, "n_val": 200, "n_test": 500}
    metrics = {}
    for offset in (-5.0, 0.0, 5.0):
        scn = cb.make_scenario("cow", input_offset=offset, **knobs)
        for method in ("grad_x_input", "occlusion"):
            metrics[method, offset] = cb.evaluate(scn, cb.get_method(method)(), seed=0, subject={"arch": "linear"})
    assert metrics["grad_x_input", -5.0]["model_cos"] < -0.9
    assert metrics["grad_x_input", 0.0]["model_err"] > 0.15
    assert metrics["grad_x_input", 5.0]["model_err"] < 0.1
    for offset in (-5.0, 0.0, 5.0):
        assert metrics["occlusion", offset]["model_err"] < 0.05, offset
        assert metrics["occlusion", offset]["model_cos"] > 0.99, offset
