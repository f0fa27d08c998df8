"""The robust-training loop and penalties against closed forms and against the subject's own ERM loop."""

import numpy as np
import pytest
import torch

import cowbench as cb
from cowbench.access import Task
from cowbench.methods._robust import (
    as_float64,
    group_means,
    penultimate,
    train_objective,
    unit_loss,
    with_last_layer,
)
from cowbench.models import build_model, logits
from cowbench.subject import SubjectConfig, fit_fresh
from cowbench.training import fit_logit_model

SMALL = {"n_train": 400, "n_val": 200, "n_test": 200}
CONFIG = {"arch": "mlp", "hidden": 8, "epochs": 60, "lr": 0.02, "weight_decay": 0.0}


@pytest.fixture(scope="module")
def small():
    scn = cb.make_scenario("four_groups", **SMALL)
    data = scn.sample(0)
    subject = fit_fresh(SubjectConfig(**CONFIG), data.train.x, data.train.y, 0)
    return scn, data, subject


def _task(small, access):
    scn, data, subject = small
    return Task(scn, data, subject, access, subject_config={**CONFIG, "version": "2"})


@pytest.mark.parametrize("arch", ["linear", "mlp"])
def test_the_loop_with_the_mean_loss_is_the_subjects_erm(small, arch):
    # the shared loop differs from fit_logit_model only in how it is told the objective: same steps
    _, data, _ = small
    x, y = data.train.x, data.train.y
    ref = fit_logit_model(build_model(arch, 3, hidden=8, seed=3), x, y, epochs=60, lr=0.02)
    xt, yt = as_float64(x), as_float64(y)
    ours = train_objective(build_model(arch, 3, hidden=8, seed=3), lambda m, step: unit_loss(m(xt), yt,
                           "logistic").mean(), epochs=60, lr=0.02)
    np.testing.assert_allclose(logits(ours, data.test_id.x), logits(ref, data.test_id.x), atol=1e-4)


def test_group_means_is_the_mean_within_each_group():
    values = torch.tensor([1.0, 2.0, 3.0, 10.0], dtype=torch.float64)
    np.testing.assert_allclose(group_means(values, torch.tensor([0, 0, 1, 2]), 3).numpy(), [1.5, 3.0, 10.0])


def test_group_dro_without_weight_updates_is_group_reweighting(small):
    # eta = 0 keeps q uniform: the objective is mean_g L_g, i.e. ERM with w_i = 1/(G n_g) (group_reweight)
    dro = cb.get_method("group_dro")(eta=0.0, weight_decay=0.0, random_state=5).run(_task(small, {"pooled", "group"}))
    rew = cb.get_method("group_reweight")(random_state=5).run(_task(small, {"pooled", "group"}))
    x = small[1].test_id.x
    np.testing.assert_allclose(logits(dro.edited, x), logits(rew.edited, x), atol=1e-3)
    assert dro.details["group_weights"] == [0.25] * 4


def test_group_dro_weights_follow_the_exponentiated_group_losses(small):
    # Sagawa et al. Algorithm 1, first step from uniform q: q_g proportional to exp(eta L_g(theta_0))
    _, data, _ = small
    out = cb.get_method("group_dro")(eta=2.0, epochs=1, random_state=4).run(_task(small, {"pooled", "group"}))
    init = build_model("mlp", 3, hidden=8, seed=4).double()
    losses = unit_loss(init(as_float64(data.train.x)), as_float64(data.train.y), "logistic").detach().numpy()
    group_loss = np.array([losses[data.train.group == g].mean() for g in range(4)])
    want = np.exp(2.0 * group_loss) / np.exp(2.0 * group_loss).sum()
    np.testing.assert_allclose(out.details["group_weights"], want, atol=2e-6)  # stored rounded to 6 decimals


def test_irm_penalty_is_the_squared_scale_gradient_in_closed_form():
    # d/dw mean BCE(w f, y) at w = 1 is mean((sigmoid(f) - y) f)
    rng = np.random.default_rng(0)
    f = [torch.tensor(rng.normal(size=50)), torch.tensor(rng.normal(size=70))]
    y = [torch.tensor((rng.random(50) < 0.5).astype(float)), torch.tensor((rng.random(70) < 0.5).astype(float))]
    got = cb.get_method("irm_mlp")().penalty(f, y, None, None, "logistic")
    want = np.mean([float(((torch.sigmoid(fe) - ye) * fe).mean()) ** 2 for fe, ye in zip(f, y, strict=True)])
    assert float(got.detach()) == pytest.approx(want, rel=1e-12)


def test_vrex_penalty_is_the_variance_of_the_risks():
    losses = torch.tensor([0.2, 0.6], dtype=torch.float64)
    assert float(cb.get_method("vrex_mlp")().penalty(None, None, None, losses, "logistic")) == pytest.approx(0.04)
    assert float(cb.get_method("vrex_mlp")().penalty(None, None, None, losses[:1], "logistic")) == 0.0


def test_coral_penalty_is_zero_for_equal_moments_and_sees_a_mean_shift():
    h = torch.tensor(np.random.default_rng(0).normal(size=(100, 3)))
    coral = cb.get_method("coral")()
    assert float(coral.penalty(None, None, [h, h.clone()], None, "logistic")) == 0.0
    assert float(coral.penalty(None, None, [h, h + 1.0], None, "logistic")) == pytest.approx(1.0)  # mean((1)^2)
    assert float(coral.penalty(None, None, [h], None, "logistic")) == 0.0  # one environment: no pair


def test_the_last_layer_reads_the_penultimate_features(small):
    _, data, subject = small
    model = build_model("mlp", 3, hidden=8, seed=1)
    model.load_state_dict(subject.state_dict())
    z = penultimate(subject, data.val.x)
    w, b = np.random.default_rng(0).normal(size=8), 0.3
    edited = with_last_layer(model, w, b)
    np.testing.assert_allclose(logits(edited, data.val.x), z @ w + b, atol=1e-5)


def test_dfr_reads_only_validation_group_labels(small):
    task = _task(small, {"pooled", "internals", "group_val"})
    out = cb.get_method("dfr")(random_state=0).run(task)
    assert task.told == ["group_val"]
    with pytest.raises(cb.AccessError):
        _ = task.train.group
    assert out.details["fits"] == 10
    # the shared subject is untouched: the edit is of a copy
    assert not torch.equal(out.edited[2].weight, small[2][2].weight)


def test_jtt_and_afr_read_no_group_labels_and_jtt_can_identify_with_the_subject(small):
    _, data, subject = small
    task = _task(small, {"pooled"})
    out = cb.get_method("jtt")(id_epochs=None, random_state=0).run(task)
    assert task.used == set()
    assert out.details["error_set"] == int(np.sum((logits(subject, data.train.x) > 0) != (data.train.y == 1)))
    task = _task(small, {"pooled", "internals"})
    cb.get_method("afr")(random_state=0).run(task)
    assert task.used == {"internals"}


def test_afr_with_a_strong_pull_keeps_the_erm_last_layer(small):
    out = cb.get_method("afr")(lambda_reg=1e4, random_state=0).run(_task(small, {"pooled", "internals"}))
    np.testing.assert_allclose(out.edited[2].weight.detach().numpy(), small[2][2].weight.detach().numpy(), atol=0.05)


def test_group_subsample_trains_on_equal_groups(small):
    out = cb.get_method("group_subsample")(random_state=0).run(_task(small, {"pooled", "group"}))
    assert out.details["per_group"] == min(np.bincount(small[1].train.group))


def test_the_l2_term_is_coupled_into_the_objective_over_every_parameter(small):
    # V-REx with penalty weight 0 from step 0 minimises mean_e R_e + l2 * sum ||theta||^2: the same loop
    # on that objective written out here (weights and biases alike, not Adam's decoupled weight decay)
    _, data, _ = small
    x, y, env = as_float64(data.train.x), as_float64(data.train.y), np.asarray(data.train.env)
    masks = [torch.as_tensor(env == e) for e in np.unique(env)]
    assert len(masks) > 1

    def objective(m, step):
        risks = torch.stack([unit_loss(m(x[k]), y[k], "logistic").mean() for k in masks])
        return risks.mean() + 0.05 * sum(p.pow(2).sum() for p in m.parameters())

    ref = train_objective(build_model("mlp", 3, hidden=8, seed=3), objective, epochs=60, lr=0.02)
    vrex = cb.get_method("vrex_mlp")
    task = _task(small, {"pooled", "env"})
    ours = vrex(penalty_weight=0.0, penalty_anneal_iters=0, l2_weight=0.05, random_state=3).run(task).edited
    without = vrex(penalty_weight=0.0, penalty_anneal_iters=0, l2_weight=0.0, random_state=3).run(task).edited
    np.testing.assert_allclose(logits(ours, data.test_id.x), logits(ref, data.test_id.x), atol=1e-4)
    assert np.abs(logits(without, data.test_id.x) - logits(ref, data.test_id.x)).max() > 1e-2


def test_adam_is_kept_at_the_switch_unless_restart_adam(small):
    # with penalty weight 1 the objective does not change at the switch, so without a restart the anneal
    # point cannot matter (identical trajectories); with a restart it must
    task = _task(small, {"pooled", "env"})
    irm = cb.get_method("irm_mlp")
    x = small[1].test_id.x

    def run(anneal, restart):
        return logits(irm(penalty_weight=1.0, penalty_anneal_iters=anneal, restart_adam=restart,
                          random_state=0).run(task).edited, x)

    np.testing.assert_array_equal(run(0, False), run(30, False))
    assert np.abs(run(30, True) - run(30, False)).max() > 1e-3
