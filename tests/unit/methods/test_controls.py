"""The world, model and detection controls (issue 16): marked, seeded by random_state, reading nothing that
names the spurious variable, and scoring what a control should score through the harness."""

from __future__ import annotations

import numpy as np
import pytest

import cowbench as cb
from cowbench.access import Task
from cowbench.jobs import ReplicateSpec, execute, prepare
from cowbench.subject import SubjectConfig

CONTROLS = {"zero_world": "world", "random_world": "world", "constant_attribution": "model",
            "random_attribution": "model", "random_detect": "detect", "always_abstain": "detect"}
SMALL = {"n_train": 500, "n_val": 200, "n_test": 500}


@pytest.fixture(scope="module")
def env_rep():
    """cow_hidden: the spurious role is identifiable with environments, not from pooled data."""
    scn = cb.make_scenario("cow_hidden", **SMALL)
    assert scn.truth.identifiable_with == "env"
    return prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig(arch="linear").to_dict()))


def _task(rep, name):
    return Task(rep.scenario, rep.data, rep.subject, cb.get_method(name).access, subject_config=rep.subject_config)


@pytest.mark.parametrize(("name", "track"), CONTROLS.items())
def test_every_control_is_marked_outputs_its_track_only_and_is_told_nothing(env_rep, name, track):
    cls = cb.get_method(name)
    assert cls.control is True and cls.outputs == frozenset({track})
    assert not cls.access & {"group", "group_val", "internals"}
    task = _task(env_rep, name)
    cls(random_state=3).run(task)
    assert task.told == []


@pytest.mark.parametrize("name", ["random_world", "random_attribution", "random_detect"])
def test_random_controls_depend_on_their_seed_only(env_rep, name):
    cls = cb.get_method(name)

    def out(seed):
        o = cls(random_state=seed).run(_task(env_rep, name))
        return o.world_coef or o.model_coef or o.spurious_score

    assert out(5) == out(5) and out(5) != out(6)
    assert set(out(5)) == set(env_rep.scenario.variables)


def test_detection_controls_have_a_primary_where_the_scenario_needs_environments(env_rep):
    """They read (and ignore) the identifying levels, so detect_score is defined for them wherever it is for an
    environment-reading detector: the abstainer at chance exactly, wrong to abstain; the random one a verdict."""
    _, m, res = execute(env_rep, cb.get_method("always_abstain")(), 0)
    assert m["detect_score"] == 0.5 and m["abstain_right"] == 0.0 and res["told"] == []
    _, m, _ = execute(env_rep, cb.get_method("random_detect")(), 0)
    assert 0.0 <= m["detect_score"] <= 1.0 and m["abstain_right"] == 1.0


def test_random_detect_averages_chance(env_rep):
    cls = cb.get_method("random_detect")
    truth = env_rep.scenario.truth
    pos, neg = truth.of_role("spurious"), truth.keep
    values = []
    for seed in range(300):
        s = cls(random_state=seed).run(_task(env_rep, "random_detect")).spurious_score
        diff = np.array([[s[p] - s[q] for q in neg] for p in pos])
        values.append(float(np.mean((diff > 0) + 0.5 * (diff == 0))))
    v = np.asarray(values)
    assert abs(v.mean() - 0.5) < 4 * v.std(ddof=1) / np.sqrt(v.size)


def test_world_controls_through_the_harness(env_rep):
    _, m, _ = execute(env_rep, cb.get_method("zero_world")(), 0)
    assert m["world_err"] == 1.0 and m["world_cos"] is None
    _, m, _ = execute(env_rep, cb.get_method("random_world")(), 0)
    assert 0.0 <= m["world_err"] <= 1.0  # scale-free on a binary label: never worse than zero
