"""Expected outcomes of the learned and counterfactual edit methods: cf_augment, cf_logit_pairing, rrr,
sae_ablation and das.

Truth: the harness's own scores on a real replicate (``cow``: an MLP subject trained by ERM that leans on
grass), with the edit's gain over no edit judged against the standard error of the paired accuracy
difference on ``test_bal`` (``sd(c_edited - c_base) / sqrt(n)``); the planted superposed network's true grass
subspace (``PlantedTruth``) for DAS's localization, against the best any set of unit axes could reach; and
a toy dictionary with known sparse directions for the autoencoder fit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cowbench as cb
from cowbench.access import Task
from cowbench.errors import AccessError
from cowbench.jobs import ReplicateSpec, execute, prepare
from cowbench.methods._edits import counterfactual_do
from cowbench.methods._internals import standardized_partial
from cowbench.methods.sae_ablation import fit_sae
from cowbench.models import logits
from cowbench.scores.localize import subspace_overlap
from cowbench.subject import SubjectConfig

METHODS = ("cf_augment", "cf_logit_pairing", "rrr", "sae_ablation", "das")
COUNTERFACTUAL = ("cf_augment", "cf_logit_pairing", "das")


def _replicate(name: str):
    scn = cb.make_scenario(name)
    return prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig().to_dict()))


@pytest.fixture(scope="module")
def cow():
    return _replicate("cow")


@pytest.fixture(scope="module")
def cow_runs(cow):
    return {name: execute(cow, cb.get_method(name)(), fit_seed=0)[:2] for name in METHODS}


@pytest.mark.parametrize("name", METHODS)
def test_edit_beats_no_edit_by_four_standard_errors_on_cow(cow, cow_runs, name):
    output, metrics = cow_runs[name]
    gain, se = _gain_and_se(cow, output.edited)
    assert gain > 4 * se  # no edit gains exactly 0 here: the check can fail
    assert metrics["edit_score"] is not None and metrics["edit_score"] > 0
    # causal reliance kept: a method that deleted moo and tail would score 0, a no-op 1
    assert metrics["causal_kept"] > 0.7
    assert metrics["residual_spurious"] < (0.9 if name == "sae_ablation" else 0.25)


def _gain_and_se(rep, edited) -> tuple[float, float]:
    """Mean paired accuracy gain of ``edited`` over the subject on test_bal, and its standard error."""
    bal = rep.data.test_bal
    truth = np.asarray(bal.y) == 1
    diff = (((logits(edited, bal.x) > 0) == truth).astype(float)
            - ((logits(rep.subject, bal.x) > 0) == truth).astype(float))
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(diff.size))


@pytest.mark.slow
@pytest.mark.parametrize("name", ("cf_augment", "cf_logit_pairing", "rrr", "das"))
def test_edits_work_on_a_convolutional_subject(name):
    """cow_image with the cnn subject: hidden.0 is a convolutional map (handed out flattened)."""
    scn = cb.make_scenario("cow_image")
    rep = prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig(arch="cnn").to_dict()))
    output, metrics, _ = execute(rep, cb.get_method(name)(), fit_seed=0)
    gain, se = _gain_and_se(rep, output.edited)
    assert gain > 4 * se
    assert metrics["causal_kept"] > 0.7


@pytest.fixture(scope="module")
def planted_poly():
    return _replicate("planted_poly")


@pytest.mark.parametrize("name", ("cf_augment", pytest.param("cf_logit_pairing", marks=pytest.mark.xfail(
    reason="on planted v2's planted_poly cf_logit_pairing leaves more grass than the claim; re-measure next round",
    strict=True)), "rrr", "das"))
def test_edits_stay_clean_when_every_grass_unit_also_carries_a_cause(planted_poly, name):
    """planted_poly: no unit carries grass alone, so ablating units cannot separate it (neuron ablation fails
    here); counterfactual fine-tuning, the input-gradient penalty and a learnt direction still remove it."""
    output, metrics, _ = execute(planted_poly, cb.get_method(name)(), fit_seed=0)
    gain, se = _gain_and_se(planted_poly, output.edited)
    assert gain > 4 * se
    assert metrics["residual_spurious"] < 0.1
    assert metrics["causal_kept"] > 0.6


@pytest.mark.parametrize("name", ("sae_ablation", "das"))
def test_internals_edits_report_where_they_edited(cow_runs, name):
    output, _ = cow_runs[name]
    loc = output.localized
    assert loc["point"] == "hidden.0"  # the default layer of an MLP subject
    width = loc["unit_scores"].shape[0]
    assert loc["subspace"].shape[0] == width and loc["subspace"].shape[1] >= 1


@pytest.mark.parametrize("name", COUNTERFACTUAL)
def test_counterfactual_methods_need_and_use_counterfactual_access(cow, name):
    cls = cb.get_method(name)
    assert "counterfactual" in cls.access
    without = Task(cow.scenario, cow.data, cow.subject, cls.access - {"counterfactual"},
                   subject_config=cow.subject_config)
    with pytest.raises(AccessError):
        cls().run(without)


def test_methods_read_only_what_they_declare(cow):
    for name in METHODS:
        cls = cb.get_method(name)
        task = Task(cow.scenario, cow.data, cow.subject, cls.access, subject_config=cow.subject_config)
        cls(**({"steps": 2} if name in ("das", "sae_ablation") else {"epochs": 2})).run(task)
        assert task.used <= set(cls.access) | {"edit_target"}
        assert ("counterfactual" in task.used) == (name in COUNTERFACTUAL)


def test_counterfactual_do_flips_binary_and_permutes_continuous(cow):
    task = Task(cow.scenario, cow.data, cow.subject, {"pooled", "counterfactual"}, subject_config=cow.subject_config)
    rng = np.random.default_rng(0)
    grass = np.array([0.0, 1.0, 1.0, 0.0])
    moo = np.array([0.3, -1.2, 2.0, 0.5])
    do = counterfactual_do(task, {"grass": grass, "moo": moo}, rng)
    assert np.array_equal(do["grass"], 1 - grass)
    assert np.array_equal(np.sort(do["moo"]), np.sort(moo))


@pytest.mark.xfail(reason="planted v2 (one drawn norm under superposition): DAS's overlap 0.58 falls short of the claim; re-measure next round", strict=True)  # noqa: E501
def test_das_finds_the_superposed_grass_direction_where_unit_axes_cannot():
    rep = _replicate("planted_superposed")
    das_out, das_metrics, _ = execute(rep, cb.get_method("das")(), fit_seed=0)
    point = das_out.localized["point"]
    true = rep.unit_truth.subspace(point)  # (width, 1)
    n_fit = min(cb.get_method("das")().n_fit, len(rep.data.train))
    assert subspace_overlap(true, das_out.localized["subspace"]) > 1 - 4 / np.sqrt(n_fit)
    assert das_metrics["loc_overlap"] > 1 - 4 / np.sqrt(n_fit)
    # any span of k unit axes overlaps the true line by (sum of their squared loadings) / k, at most the
    # largest squared loading of the unit-norm direction: superposition keeps that ceiling far below 1
    ceiling = float(np.max(true[:, 0] ** 2))
    assert ceiling < 0.6
    _, neuron_metrics, _ = execute(rep, cb.get_method("neuron_ablation")(), fit_seed=0)
    assert neuron_metrics["loc_overlap"] <= ceiling + 1e-9
    # no hidden-layer edit reaches C = 0 under superposition (the variables' directions overlap), and how
    # close one gets depends on the drawn embedding: the direction-level edit beats the unit-level one
    assert das_metrics["residual_spurious"] < neuron_metrics["residual_spurious"]


def test_das_without_fitting_is_a_random_subspace():
    """steps=0 (one start) keeps the random (Haar) initial rotation: its line's overlap with the true grass line is
    Beta(1/2, (w-1)/2), mean 1/w, variance (w-1)/(w^2 (w/2+1)); over 16 seeds the mean stays within 4 SE of
    1/w, far below the fitted DAS, so the learning, not the ablation machinery, does the work."""
    rep = _replicate("planted_superposed")
    width = rep.unit_truth.subspace("hidden.0").shape[0]
    overlaps = [execute(rep, cb.get_method("das")(steps=0, n_init=1, random_state=seed), fit_seed=0)[1]["loc_overlap"]
                for seed in range(16)]
    se = np.sqrt((width - 1) / (width ** 2 * (width / 2 + 1)) / len(overlaps))
    assert abs(np.mean(overlaps) - 1 / width) < 4 * se
    assert np.mean(overlaps) + 4 * se < 0.9


def test_sae_recovers_known_sparse_directions():
    """Six sparse features along random unit directions in 8 dimensions: each has a latent whose decoder
    direction it is (|cos| near 1), and that latent is the one the target association picks."""
    rng = np.random.default_rng(0)
    n, width, m = 2000, 8, 6
    directions = rng.standard_normal((m, width))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    active = (rng.random((n, m)) < 0.15).astype(float)
    h = (active * rng.uniform(0.5, 1.5, (n, m))) @ directions
    sae = fit_sae(h, expansion=2, l1=0.1, steps=600, lr=0.01, seed=0)
    with torch.no_grad():
        z = sae.encode(torch.as_tensor(h, dtype=torch.float32)).double().numpy()
    decoder = sae.w_dec.detach().double().numpy()
    cosines = [abs(float(decoder[np.argmax(standardized_partial(z, active, [f]))] @ directions[f]))
               for f in range(m)]
    assert min(cosines) > 0.9, cosines


def test_das_on_a_linear_subject_finds_the_grass_input():
    """Linear subject, identity rendering: the input coordinate of grass is the one line whose interchange
    reproduces every counterfactual (one random start can stall in a mixture of the causes; n_init restarts)."""
    scn = cb.make_scenario("cow")
    rep = prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig(arch="linear").to_dict()))
    method = cb.get_method("das")()
    output, metrics, _ = execute(rep, method, fit_seed=0)
    assert output.localized["point"] == "input"
    axis = np.zeros((len(scn.feature_names), 1))
    axis[scn.input_map["grass"], 0] = 1.0
    assert subspace_overlap(axis, output.localized["subspace"]) > 1 - 4 / np.sqrt(method.n_fit)
    assert metrics["residual_spurious"] < 4 / np.sqrt(method.n_fit)


@pytest.mark.parametrize("name", ("sae_ablation", "das"))
def test_unknown_layer_is_refused_naming_the_hook_points(cow, name):
    cls = cb.get_method(name)
    task = Task(cow.scenario, cow.data, cow.subject, cls.access, subject_config=cow.subject_config)
    with pytest.raises(ValueError, match=r"hidden\.7.*hidden\.0|hidden\.0.*hidden\.7"):
        cls(layer="hidden.7").run(task)
