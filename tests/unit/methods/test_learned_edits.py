"""Expected outcomes of the learned and counterfactual edit methods: cf_augment, cf_logit_pairing, rrr,
sae_ablation and das.

Truth: the harness's own scores on a real replicate (``cow``: an MLP subject trained by ERM that leans on
grass), with the edit's gain over no edit judged against the standard error of the paired accuracy
difference on ``test_bal`` (``sd(c_edited - c_base) / sqrt(n)``); the planted superposed network's true grass
subspace (``PlantedTruth``) for DAS's localization, against the best any set of unit axes could reach and a
random line, as a mean over drawn networks (one draw's overlap depends on its embedding), and DAS's own
interchange objective evaluated at the true line; and a toy dictionary with known sparse directions for the
autoencoder fit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cowbench as cb
from cowbench import surgery
from cowbench.access import Task
from cowbench.errors import AccessError
from cowbench.jobs import ReplicateSpec, execute, prepare
from cowbench.methods._edits import counterfactual_do, factual_targets
from cowbench.methods._internals import standardized_partial
from cowbench.methods.sae_ablation import fit_sae
from cowbench.models import logits
from cowbench.scores.localize import subspace_overlap
from cowbench.subject import SubjectConfig
from cowbench.surgery import orthonormal_basis

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


@pytest.mark.parametrize("name", ("cf_augment", "rrr", "das"))
def test_edits_stay_clean_when_every_grass_unit_also_carries_a_cause(planted_poly, name):
    """planted_poly: no unit carries grass alone, so ablating units cannot separate it (neuron ablation fails
    here); counterfactual fine-tuning, the input-gradient penalty and a learnt direction still remove it
    (cf_logit_pairing: `test_cf_logit_pairing_leaves_only_its_step_size_jitter_on_planted_poly`)."""
    output, metrics, _ = execute(planted_poly, cb.get_method(name)(), fit_seed=0)
    gain, se = _gain_and_se(planted_poly, output.edited)
    assert gain > 4 * se
    assert metrics["residual_spurious"] < 0.1
    assert metrics["causal_kept"] > 0.6


SMALL_STEP = {"lr": 0.01, "epochs": 500}  # a fifth of the default step, same lr x epochs (5) as 0.05 x 100


def test_cf_logit_pairing_leaves_only_its_step_size_jitter_on_planted_poly(planted_poly):
    """cf_logit_pairing's penalty is L1: its gradient has magnitude ``lam`` whatever the gap, so full-batch Adam
    does not settle at gap 0 but keeps stepping about ``lr`` per weight around it. Planted v2's readouts carry a
    large random (cancelling) part, largest on this draw (``|w_out|`` up to 14; one step of 0.05 on every weight
    could move grass's coefficient by ``lr ||d ace_grass / d theta||_1 = 4.5``, the whole shortcut), so the grass
    left depends on where the oscillation stops: residual 0.04 to 0.18 between epochs 96 and 104 at the default
    ``lr = 0.05``, 0.19 at epoch 300; 0.004 at ``lr = 0.01`` x 500 and 0.001 at 0.002 x 1000. At the defaults
    the edit still gains, keeps the causes and removes most of the share that fine-tuning without the penalty
    keeps whole; at a fifth of the step the claim of the other edits (residual < 0.1) holds."""
    _, control, _ = execute(planted_poly, cb.get_method("cf_logit_pairing")(lam=1e-6), fit_seed=0)
    assert control["residual_spurious"] > 0.9  # the task loss alone keeps grass: the penalty does the removing
    output, metrics, _ = execute(planted_poly, cb.get_method("cf_logit_pairing")(), fit_seed=0)
    gain, se = _gain_and_se(planted_poly, output.edited)
    assert gain > 4 * se
    assert metrics["causal_kept"] > 0.6
    assert metrics["residual_spurious"] < 0.5
    output, metrics, _ = execute(planted_poly, cb.get_method("cf_logit_pairing")(**SMALL_STEP), fit_seed=0)
    gain, se = _gain_and_se(planted_poly, output.edited)
    assert gain > 4 * se
    assert metrics["causal_kept"] > 0.6
    assert metrics["residual_spurious"] < 0.1


@pytest.mark.slow
def test_cf_logit_pairing_at_a_smaller_step_is_clean_on_every_planted_poly_draw():
    """Over eight draws of planted_poly, cf_logit_pairing at a fifth of the default step leaves less grass than
    at the default on every draw (8 of 8 by chance: 1/256) and under the 0.1 of the other edits on every draw.
    Measured: default 0.011 to 0.177 (mean 0.061), small step 0.004 to 0.019."""
    scn = cb.make_scenario("planted_poly")
    for replicate in range(8):
        rep = prepare(ReplicateSpec(scn.spec, replicate, 0, SubjectConfig().to_dict()))
        default = execute(rep, cb.get_method("cf_logit_pairing")(), fit_seed=0)[1]["residual_spurious"]
        small = execute(rep, cb.get_method("cf_logit_pairing")(**SMALL_STEP), fit_seed=0)[1]["residual_spurious"]
        assert small < default, replicate
        assert small < 0.1, replicate


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


SUPERPOSED_DRAWS = range(10)  # replicates of planted_superposed, each with its own drawn embedding, offsets and norm


def _interchange_errors(rep, bases: list[np.ndarray], seed: int = 1) -> list[np.ndarray]:
    """Per training unit ``i``, the squared error of DAS's objective for each line in ``bases``: the subject run
    from ``h_i`` with its coordinate along the line swapped for unit ``pi(i)``'s, against the subject's own
    ``f(x_i | do(grass = grass_pi(i)))``. The pairing ``pi`` is the test's own (``seed``), not the one DAS fitted."""
    task = Task(rep.scenario, rep.data, rep.subject, cb.get_method("das").access, subject_config=rep.subject_config)
    x = np.array(task.train.x)
    pairing = np.random.default_rng(seed).permutation(len(x))
    factual = factual_targets(task, task.edit_target)
    target = logits(rep.subject, task.intervene({t: v[pairing] for t, v in factual.items()}, "train").x)
    h = surgery.activations(rep.subject, "hidden.0", x)
    errors = []
    for basis in bases:
        q = orthonormal_basis(basis)
        swapped = torch.as_tensor(h + ((h[pairing] - h) @ q) @ q.T, dtype=torch.float32)
        with torch.no_grad():
            out = surgery.forward_from(rep.subject, "hidden.0", swapped).reshape(-1).double().numpy()
        errors.append((out - target) ** 2)
    return errors


def test_das_minimises_its_objective_at_least_as_well_as_the_planted_grass_line():
    """Under superposition (four variables in three hidden directions) no line carries grass alone: swapping the
    planted grass line also swaps the parts of moo, tail and sky that overlap it, so that line does not minimise
    the interchange objective and DAS's line need not be it (overlap 0.65 on this draw; 0.24 to 1.00 over ten).
    What DAS must do is minimise its objective: on pairs it did not fit, its line's error is no larger than the
    planted line's (paired, within 4 standard errors) and far below a random line's; the planted line's own
    error is measurably above 0 (the superposition's leak)."""
    rep = _replicate("planted_superposed")
    das_out, _, _ = execute(rep, cb.get_method("das")(), fit_seed=0)
    assert das_out.localized["point"] == "hidden.0"
    true = rep.unit_truth.subspace("hidden.0")
    rand = np.random.default_rng(0).standard_normal((true.shape[0], 1))
    found_err, true_err, rand_err = _interchange_errors(rep, [das_out.localized["subspace"], true, rand])

    def mean_se(d):
        return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))

    diff, se = mean_se(found_err - true_err)
    assert diff < 4 * se
    diff, se = mean_se(rand_err - found_err)
    assert diff > 4 * se
    leak, se = mean_se(true_err)
    assert leak > 4 * se


@pytest.mark.slow
def test_das_finds_the_superposed_grass_direction_where_unit_axes_cannot():
    """Over ten draws of planted_superposed, DAS's line overlaps the planted grass line more than the best set of
    unit axes can and more than a random line, and its mean-ablation leaves less grass than a random line's.

    Per draw the claims do not hold (the interchange objective's minimum moves off the grass line by how much
    the drawn embedding makes the other variables overlap it: DAS's overlap was below the unit axes' ceiling
    on one draw of ten, 0.24 against 0.40), so they are on the mean over draws, by 4 standard errors of the
    per-draw values (measured: overlap 0.81 +- 0.27 sd against a ceiling of 0.35; residual grass 0.34 +- 0.30
    against a random line's 0.87). The direction-level edit does not beat neuron ablation on residual grass
    by 4 SE over these draws (0.34 against 0.43), so that is not claimed.
    """
    das_minus_ceiling, das_overlap, rand_minus_das = [], [], []
    for replicate in SUPERPOSED_DRAWS:
        rep = prepare(ReplicateSpec(cb.make_scenario("planted_superposed").spec, replicate, 0,
                                    SubjectConfig().to_dict()))
        true = rep.unit_truth.subspace("hidden.0")  # (width, 1)
        # any span of k unit axes overlaps the true line by (sum of their squared loadings) / k, at most the
        # largest squared loading; the line loads +a and -a on the two units of each pair, so that is <= 1/2
        ceiling = float(np.max(true[:, 0] ** 2))
        assert ceiling <= 0.5 + 1e-12
        _, neuron_metrics, _ = execute(rep, cb.get_method("neuron_ablation")(), fit_seed=0)
        assert neuron_metrics["loc_overlap"] <= ceiling + 1e-9
        _, das_metrics, _ = execute(rep, cb.get_method("das")(), fit_seed=0)
        das_overlap.append(das_metrics["loc_overlap"])
        das_minus_ceiling.append(das_metrics["loc_overlap"] - ceiling)
        rand = [execute(rep, cb.get_method("random_direction_ablation")(random_state=s), fit_seed=0)[1]
                for s in range(5)]
        rand_minus_das.append(np.mean([m["residual_spurious"] for m in rand]) - das_metrics["residual_spurious"])
    width = true.shape[0]
    n = len(SUPERPOSED_DRAWS)

    def mean_se(values):
        values = np.asarray(values)
        return float(values.mean()), float(values.std(ddof=1) / np.sqrt(n))

    gain, se = mean_se(das_minus_ceiling)
    assert gain > 4 * se
    # a random line's overlap is Beta(1/2, (w-1)/2): mean 1/w exactly
    mean, se = mean_se(das_overlap)
    assert mean - 1 / width > 4 * se
    gain, se = mean_se(rand_minus_das)
    assert gain > 4 * se


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
