"""The phenomena the benchmark exists to show, on the default cow scenario (issue 2's acceptance tests)."""

import numpy as np
import pytest

import cowbench as cb
from cowbench.jobs import ReplicateSpec, prepare
from cowbench.model_truth import reliance_units
from cowbench.models import accuracy
from cowbench.subject import SubjectConfig

SEEDS = range(5)
# these tests build eight distinct replicates about 26 times over (`prepare`, `cb.evaluate`): build each once
pytestmark = pytest.mark.usefixtures("each_replicate_built_once")


@pytest.fixture(scope="module")
def cow():
    return cb.make_scenario("cow")


@pytest.mark.parametrize("seed", SEEDS)
def test_erm_loses_at_least_15_points_out_of_distribution(cow, seed):
    rep = prepare(ReplicateSpec(cow.spec, 0, seed, SubjectConfig().to_dict()))
    acc_id = accuracy(rep.subject, rep.data.test_id.x, rep.data.test_id.y)
    acc_ood = accuracy(rep.subject, rep.data.test_ood.x, rep.data.test_ood.y)
    assert acc_id - acc_ood >= 0.15
    # the oracle, trained with grass independent of cow, does not collapse (within 4 binomial sd)
    oracle_ood = accuracy(rep.oracle, rep.data.test_ood.x, rep.data.test_ood.y)
    assert oracle_ood > acc_ood + 0.15


def grass_share_of_the_oracle(cow, seed: int) -> float:
    """The oracle's spurious share of reliance relative to the subject's: what ``residual_spurious`` gives a model
    trained with grass independent of cow. It is the score's noise floor at this n_train (0.02 to 0.13 on seeds
    0-7), so an edit cannot be asked to go below it."""
    rep = prepare(ReplicateSpec(cow.spec, 0, seed, SubjectConfig().to_dict()))

    def share(model) -> float:
        ace = {v: float(np.mean(u)) for v, u in reliance_units(model, cow, rep.data.test_id, seed=0).items()}
        return sum(abs(ace[v]) for v in cow.truth.of_role("spurious")) / sum(abs(a) for a in ace.values())

    return share(rep.oracle) / share(rep.subject)


@pytest.mark.parametrize("seed", SEEDS)
def test_erase_spurious_removes_grass_and_recovers_ood_accuracy(cow, seed):
    m = cb.evaluate(cow, cb.get_method("erase_spurious")(), seed=seed)
    # residual_spurious is a share of the edited model's reliance (issue 16): measured against the grass-blind
    # oracle's share on the same seed, the edit leaves at most 0.1 more (measured 0.00-0.14 against 0.02-0.07)
    assert m["residual_spurious"] <= grass_share_of_the_oracle(cow, seed) + 0.1
    assert m["residual_spurious"] < 1.0
    assert m["edit_score"] >= 0.5
    # causal_kept sees magnitude (it was a cosine, > 0.99): erasing grass also moves the reliance on the causes,
    # which are correlated with grass in training, by a few percent (0.94 to 0.98 measured on these seeds)
    assert m["causal_kept"] > 0.9


def test_env_instability_ranks_grass_above_the_causes(cow):
    aurocs = [cb.evaluate(cow, cb.get_method("env_instability")(), seed=s)["detect_auroc"] for s in SEEDS]
    assert sum(a == 1.0 for a in aurocs) >= 4, aurocs


def test_env_instability_abstains_with_a_single_environment():
    scn = cb.make_scenario("cow", agreement_train=(0.9,))
    m = cb.evaluate(scn, cb.get_method("env_instability")(), seed=0)
    # the collider at cow identifies grass from pooled data, so declining is worth chance, not full credit
    assert m["abstained"] == 1.0 and m["abstain_correct"] == 0.0 and m["detect_score"] == 0.5
    # with one effective cause there is no collider: only interventions identify grass, and abstaining is right;
    # the primary is not defined there (nothing the method read can answer), abstain_right credits the abstention
    scn = cb.make_scenario("cow", agreement_train=(0.9,), coef_tail=0.0)
    m = cb.evaluate(scn, cb.get_method("env_instability")(), seed=0)
    assert m["abstained"] == 1.0 and m["abstain_correct"] == 1.0 and m["detect_score"] is None
    assert m["abstain_right"] == 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_logistic_regression_absorbs_grass(cow, seed):
    m = cb.evaluate(cow, cb.get_method("logistic")(), seed=seed)
    assert m["world_spurious_mass"] >= 0.2


def test_group_reweighting_removes_most_of_the_reliance(cow):
    ms = [cb.evaluate(cow, cb.get_method("group_reweight")(), seed=s) for s in range(3)]
    assert np.mean([m["residual_spurious"] for m in ms]) < 0.2
    assert np.mean([m["edit_score"] for m in ms]) > 0.5


def test_input_gradient_of_a_linear_subject_is_its_reliance(cow):
    m = cb.evaluate(cow, cb.get_method("input_gradient")(), seed=0, subject={"arch": "linear"})
    assert m["model_err"] == pytest.approx(0.0, abs=1e-4) and m["model_rank"] == pytest.approx(1.0)


def test_evaluate_equals_the_harness_job(cow, tmp_path):
    from cowbench.jobs import make_job, run_job
    from cowbench.store import job_path, read_json

    spec = make_job(ReplicateSpec(cow.spec, 0, 3, SubjectConfig().to_dict()), "logistic", {})
    assert run_job(spec, tmp_path) == "ok"
    stored = read_json(job_path(tmp_path, spec.id))["metrics"]
    assert stored == cb.evaluate(cow, cb.get_method("logistic")(), seed=3)
