import numpy as np
import pytest
import torch

import cowbench as cb
from cowbench.models import build_model


def test_linear_model_reliance_equals_its_weights(cow, cow_data, linear_subject):
    weights = linear_subject[0].weight.detach().double().numpy().ravel()
    ace = cb.reliance(linear_subject, cow, cow_data.test_id)
    for j, v in enumerate(cow.feature_names):
        # float32 logits: relative error of order 1e-6 per logit, averaged over the batch
        assert ace[v] == pytest.approx(weights[j], rel=1e-4, abs=1e-5)


def test_reliance_of_a_hand_built_model_with_an_interaction(cow, cow_data):
    # f(x) = 2 * grass * sky: ace[grass] = 2 E[sky] ~ 0, but cr[grass] = 2 E|grass' - grass| E|sky| > 0
    class Interaction(torch.nn.Module):
        def forward(self, x):
            return 2 * x[:, 2] * x[:, 3]

    split = cow_data.test_id
    model = Interaction()
    ace = cb.reliance(model, cow, split)
    cr = cb.reliance(model, cow, split, measure="cr")
    sky = split.concepts["sky"].to_numpy()
    assert ace["grass"] == pytest.approx(2 * sky.mean(), abs=1e-5)
    assert abs(ace["grass"]) < 4 / np.sqrt(len(split))
    assert cr["grass"] > 0.3
    assert cr["moo"] == 0.0 and ace["moo"] == 0.0


def test_reliance_is_direct_other_observed_variables_are_held(cow, cow_data):
    # a model that reads only grass: its reliance on moo is 0 even though moo causes cow causes grass
    model = build_model("linear", 4, seed=0)
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 0.0, 3.0, 0.0]]))
    ace = cb.reliance(model, cow, cow_data.test_id)
    assert ace["moo"] == 0.0 and ace["tail"] == 0.0 and ace["sky"] == 0.0
    assert ace["grass"] == pytest.approx(3.0, rel=1e-6)


def test_unknown_measure_is_rejected(cow, cow_data, linear_subject):
    with pytest.raises(ValueError, match="unknown reliance measure"):
        cb.reliance(linear_subject, cow, cow_data.test_id, measure="shap")


def test_training_is_deterministic_given_the_seed(cow, cow_data):
    a = cb.train_subject(cow, cow_data, arch="mlp", seed=3, epochs=20)
    b = cb.train_subject(cow, cow_data, arch="mlp", seed=3, epochs=20)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_oracle_is_trained_on_data_where_grass_is_independent_of_cow(cow, cow_data):
    from cowbench.subject import decorrelated_train

    cf = decorrelated_train(cow, cow_data.train, seed=0)
    agree = float(np.mean(cf.concepts["grass"] == cf.concepts["cow"]))
    p_grass, p_cow = cf.concepts["grass"].mean(), cf.concepts["cow"].mean()
    expected = p_grass * p_cow + (1 - p_grass) * (1 - p_cow)  # agreement under independence
    assert abs(agree - expected) < 4 * 0.5 / np.sqrt(len(cf))
    assert np.array_equal(cf.y, cow_data.train.y)  # the label's mechanism is untouched


@pytest.mark.parametrize("family, knobs", [("cow", {}), ("linear_sem", {}), ("cow_image", {"n_test": 200})])
def test_intervened_x_is_the_intervened_splits_inputs(family, knobs):
    scn = cb.make_scenario(family, **knobs)
    data = scn.sample(seed=1)
    held = {v: data.test_bal.concepts[v].to_numpy(dtype=np.float64) for v in scn.variables}
    for v in scn.variables:
        do = {**held, v: held[v] + 1.0}  # on test_bal: its own do (the permuted spurious variables) is kept
        expected = scn.intervene(data.test_bal, do).x
        got = scn.intervened_x(data.test_bal, do)
        assert got.dtype == expected.dtype and np.array_equal(got, expected)
    with pytest.raises(ValueError, match="unknown variable"):
        scn.intervened_x(data.test_bal, {"not_a_variable": 1.0})


def test_reliance_units_cache_returns_what_a_fresh_computation_does(cow, cow_data):
    # the intervened inputs are kept per split and keyed by variable and rule: a model scored later on the same
    # split, or with another delta, gets exactly what it would get from scratch (a fresh split object: no cache)
    import dataclasses

    from cowbench.model_truth import _INTERVENED, reliance_units

    model = build_model("mlp", 4, seed=0)  # nonlinear: its ace depends on delta, so a wrong key would show
    split = dataclasses.replace(cow_data.test_id)
    _INTERVENED.pop(split, None)
    first = {d: reliance_units(model, cow, split, delta=d) for d in (0.1, 0.5)}
    cached = _INTERVENED[split]
    # do(v=0), do(v=1) for a binary variable, whatever delta; v +- step per delta for a continuous one
    assert len(cached) == sum(2 if cow.kind(v) == "binary" else 4 for v in cow.variables)
    assert all(not x.flags.writeable for x in cached.values())
    again = {d: reliance_units(model, cow, split, delta=d) for d in (0.5, 0.1)}
    assert len(_INTERVENED[split]) == len(cached)  # nothing recomputed
    for d in (0.1, 0.5):
        fresh = reliance_units(model, cow, dataclasses.replace(cow_data.test_id), delta=d)
        for v in cow.variables:
            assert np.array_equal(first[d][v], fresh[v]) and np.array_equal(again[d][v], fresh[v])
    assert not all(np.array_equal(first[0.1][v], first[0.5][v]) for v in cow.variables if cow.kind(v) != "binary")
