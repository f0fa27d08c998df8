import numpy as np
import pytest

import cowbench as cb
from cowbench.access import Task, identifiable


@pytest.fixture
def make_task(cow, cow_data, linear_subject):
    def make(access):
        return Task(cow, cow_data, linear_subject, access, subject_config={"arch": "linear"})
    return make


def test_pooled_sees_inputs_and_labels_only(make_task):
    task = make_task({"pooled"})
    assert task.train.x.shape[1] == 4 and len(task.train.y) == len(task.train)
    for read in (lambda: task.train.env, lambda: task.train.group, lambda: task.concepts,
                 lambda: task.model, lambda: task.edit_target, lambda: task.intervene({"grass": 0.0})):
        with pytest.raises(cb.AccessError):
            read()


def test_declared_levels_open_their_parts(make_task, cow_data):
    task = make_task({"pooled", "env", "group", "concept", "internals", "counterfactual"})
    assert np.array_equal(task.train.env, cow_data.train.env)
    assert np.array_equal(task.val.group, cow_data.val.group)
    assert list(task.concepts.columns) == ["moo", "tail", "grass", "sky"]  # no label, no hidden
    assert len(task.concepts) == task.n_concept == 1000
    # the labelled subset spans the training environments in proportion, and concepts line up with inputs
    assert np.array_equal(np.bincount(cow_data.train.env[task.concept_index]), [500, 500])
    assert np.array_equal(task.concept_x[:, 2], task.concepts["grass"].to_numpy(np.float32))
    assert task.edit_target == ["grass"]
    assert task.intervene({"grass": 1.0}).concepts["grass"].eq(1).all()
    assert {"env", "group", "concept", "edit_target", "counterfactual"} <= task.used


def test_arrays_are_read_only_and_the_model_is_a_private_copy(make_task, linear_subject):
    task = make_task({"pooled", "internals"})
    with pytest.raises(ValueError, match="read-only"):
        task.train.x[0, 0] = 1.0
    model = task.model
    model[0].weight.data.zero_()
    assert linear_subject[0].weight.abs().sum() > 0


def test_access_sets_are_validated():
    from cowbench.access import check_access

    with pytest.raises(ValueError, match="unknown access level"):
        check_access({"pooled", "oracle"})
    with pytest.raises(ValueError, match="pooled"):
        check_access({"env"})


def test_identifiability_follows_the_access_order():
    assert identifiable("env", frozenset({"pooled", "env"}))
    assert identifiable("env", frozenset({"pooled", "counterfactual"}))
    assert not identifiable("env", frozenset({"pooled", "internals"}))
    assert not identifiable("group", frozenset({"pooled", "env"}))
    assert not identifiable("never", frozenset({"pooled", "counterfactual"}))


def test_spread_subsets_cover_every_environment_and_stay_aligned(make_task, cow_data):
    task = make_task({"pooled", "env"})
    sub = task.train.spread(1000)
    assert len(sub) == 1000
    assert np.array_equal(np.bincount(sub.env), [500, 500])  # the first 1000 rows would all be env 0
    rows = np.round(np.linspace(0, len(cow_data.train) - 1, 1000)).astype(int)
    assert np.array_equal(sub.x, cow_data.train.x[rows]) and np.array_equal(sub.y, cow_data.train.y[rows])
    assert len(task.train.spread(10**9)) == len(cow_data.train)
    with pytest.raises(cb.AccessError):
        _ = make_task({"pooled"}).train.spread(10).env
