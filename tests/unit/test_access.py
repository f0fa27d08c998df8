import itertools

import numpy as np
import pandas as pd
import pytest

import cowbench as cb
from cowbench.access import ACCESS_LEVELS, IDENTIFICATION_ORDER, Task, identifiable, spread_rows
from cowbench.conformance import reachable, reachable_leaks


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
    # group labels reveal the answer, they do not identify it: they are no identification level
    assert "group" not in IDENTIFICATION_ORDER
    assert not identifiable("env", frozenset({"pooled", "group"}))
    assert identifiable("pooled", frozenset({"pooled", "group"}))


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


OPTIONAL = tuple(a for a in ACCESS_LEVELS if a != "pooled")
ACCESS_SETS = [frozenset({"pooled", *c}) for r in range(len(OPTIONAL) + 1) for c in itertools.combinations(OPTIONAL, r)]


def _fingerprint(a: np.ndarray) -> tuple:
    a = np.ascontiguousarray(a)
    return a.shape, a.dtype.str, a.tobytes()


def _arrays(root) -> set[tuple]:
    """Every array (and DataFrame column) reachable from ``root``, by content."""
    found = set()
    for _, obj in reachable(root):
        if isinstance(obj, np.ndarray) and obj.dtype != object and obj.size:
            found.add(_fingerprint(obj))
        elif isinstance(obj, pd.DataFrame):
            found.update(_fingerprint(obj[c].to_numpy()) for c in obj.columns)
    return found


def _forbidden(data, access) -> dict[str, set[tuple]]:
    """Arrays a method with ``access`` must not reach, by what they are."""
    bad: dict[str, set[tuple]] = {"test splits": set()}
    for name in ("test_id", "test_ood", "test_bal"):
        split = data.split(name)
        bad["test splits"] |= {_fingerprint(split.x), _fingerprint(split.y)}
    for split in (data.train, data.val):
        if "group" not in access and not (split.name == "val" and "group_val" in access):
            bad.setdefault("group labels", set()).add(_fingerprint(split.group))
        if "env" not in access:
            bad.setdefault("environment labels", set()).add(_fingerprint(split.env))
        if "counterfactual" not in access:
            bad.setdefault("exogenous noise", set()).update(_fingerprint(v) for v in split.exogenous.values())
    return bad


@pytest.mark.parametrize("access", ACCESS_SETS, ids=lambda a: "+".join(sorted(a)))
def test_every_array_a_task_hands_out_is_one_the_access_allows(cow, cow_data, linear_subject, access):
    task = Task(cow, cow_data, linear_subject, access, subject_config={"arch": "linear"})
    handed = [task.train, task.val, task.train.spread(50)]
    if "counterfactual" in access:
        handed += [task.intervene({"grass": 1.0}), task.intervene({"moo": 0.0}, "val").spread(50)]
    if "concept" in access:
        handed += [task.concepts, task.concept_x, task.concept_index]
    reached = set().union(*(_arrays(obj) for obj in handed))
    for what, arrays in _forbidden(cow_data, access).items():
        if what == "environment labels" and "counterfactual" in access:
            continue  # what intervene returns is checked below; its generator needs the units' environments
        assert not reached & arrays, f"{what} reachable from what the Task hands out with {sorted(access)}"
    # the whole Task: the same, except the environments and noise the interventions re-evaluate (documented)
    everything = _arrays(task)
    for what, arrays in _forbidden(cow_data, access).items():
        if what == "environment labels" and "counterfactual" in access:
            continue
        assert not everything & arrays, f"{what} reachable from the Task's attributes with {sorted(access)}"


@pytest.mark.parametrize("access", ACCESS_SETS, ids=lambda a: "+".join(sorted(a)))
def test_no_truth_scenario_dataset_or_raw_split_is_reachable(cow, cow_data, linear_subject, access):
    task = Task(cow, cow_data, linear_subject, access, subject_config={"arch": "linear"})
    if "internals" in access:
        task.model  # noqa: B018 - make the lazy private copy
    assert reachable_leaks(task) == []


@pytest.mark.parametrize("name", cb.list_scenarios())
def test_no_family_leaks_its_truth_through_the_generator_interventions_need(name, linear_subject):
    scn = cb.make_scenario(name, n_train=50, n_val=20, n_test=20)
    data = scn.sample(0)
    task = Task(scn, data, linear_subject, ACCESS_LEVELS, subject_config={"arch": "linear"})
    assert reachable_leaks(task) == []
    # the anonymous generator intervenes exactly as the scenario does
    do = {scn.variables[0]: 0.0}
    assert np.array_equal(task.intervene(do).x, scn.intervene(data.train, do).x)


def test_the_walker_finds_truth_hidden_in_private_attributes_closures_and_bound_methods(cow, cow_data):
    class OldTask:  # what the Task was: the scenario and data behind private attributes
        access = frozenset({"pooled"})

        def __init__(self):
            self._scenario, self._data = cow, cow_data

    old = OldTask()
    leaks = reachable_leaks(old)
    assert any(path.startswith("task._scenario") for path in leaks)
    assert any(path.startswith("task._data") and "Dataset" in path for path in leaks)

    class Sneaky:
        access = frozenset({"pooled"})

        def __init__(self):
            truth = cow.truth
            self.query = lambda: truth.world_coef  # a closure
            self.method = old.__init__  # a bound method of an object holding the data

    paths = reachable_leaks(Sneaky())
    assert any("__closure__" in p and "Truth" in p for p in paths)
    assert any("__self__" in p for p in paths)
    # with counterfactual access the scenario itself (roles, world coefficients) is still a leak
    old.access = frozenset({"pooled", "counterfactual"})
    assert any("roles or world coefficients" in p for p in reachable_leaks(old))


def test_interventions_return_filtered_units(cow, cow_data, linear_subject):
    cf = Task(cow, cow_data, linear_subject, {"pooled", "counterfactual"}, subject_config={"arch": "linear"})
    out = cf.intervene({"grass": 0.0})
    assert list(out.concepts.columns) == cow.variables and out.concepts["grass"].eq(0).all()
    raw = cow.intervene(cow_data.train, {"grass": 0.0})
    assert np.array_equal(out.x, raw.x) and np.array_equal(out.y, raw.y)
    for read in (lambda: out.group, lambda: out.env):
        with pytest.raises(cb.AccessError):
            read()
    with_env = Task(cow, cow_data, linear_subject, {"pooled", "counterfactual", "env", "group"},
                    subject_config={"arch": "linear"})
    out = with_env.intervene({"moo": 1.0}, "val")
    assert np.array_equal(out.env, cow_data.val.env)
    with pytest.raises(cb.AccessError, match="group"):
        _ = out.group  # not even with group access: the intervened units are not the labelled ones
    with pytest.raises(cb.AccessError):
        with_env.intervene({"moo": 1.0}, "test_ood")
    with pytest.raises(ValueError, match="unknown variable"):
        with_env.intervene({"nope": 1.0})


def test_told_records_only_routes_that_name_the_spurious_variable(cow, cow_data, linear_subject):
    task = Task(cow, cow_data, linear_subject, ACCESS_LEVELS, subject_config={"arch": "linear"})
    task.train.env, task.concepts, task.intervene({"grass": 1.0}), task.model
    assert task.told == []
    task.val.group  # noqa: B018
    assert task.told == ["group"]
    task.edit_target  # noqa: B018
    assert task.told == ["edit_target", "group"]


def test_the_conformance_check_fails_when_truth_is_reachable_from_the_task():
    from cowbench.conformance import check_method
    from cowbench.method import Method, MethodOutput

    class Smuggler(Method):
        """Test double: leaves the scenario on the Task, as the old Task held it.

        References
        ----------
        None.
        """

        name = "smuggler"
        family = "estimation"
        access = frozenset({"pooled"})
        outputs = frozenset({"world"})

        def __init__(self, *, random_state=None):
            self.random_state = random_state

        def run(self, task):
            task._scenario = cb.make_scenario("cow")
            return MethodOutput(world_coef=dict.fromkeys(task.variables, 1.0))

    results = {r.name: r for r in check_method(Smuggler)}
    assert not results["nothing_undeclared_reachable"].passed
    assert "task._scenario" in results["nothing_undeclared_reachable"].message
    assert results["access_respected"].passed


def test_validation_group_labels_alone_are_the_finer_level_group_val(make_task, cow_data):
    task = make_task({"pooled", "group_val"})
    assert np.array_equal(task.val.group, cow_data.val.group)
    assert np.array_equal(task.val.spread(50).group, cow_data.val.group[spread_rows(len(cow_data.val), 50)])
    assert task.told == ["group_val"]  # held-out group labels still name the spurious variable
    for read in (lambda: task.train.group, lambda: task.train.spread(50).group):
        with pytest.raises(cb.AccessError, match="'group'"):
            read()
    # 'group' covers both splits and is what a read through it records
    both = make_task({"pooled", "group"})
    both.val.group  # noqa: B018
    assert both.told == ["group"]
    assert "group_val" not in IDENTIFICATION_ORDER and not identifiable("env", frozenset({"pooled", "group_val"}))


def test_group_val_is_a_declarable_level_with_its_own_report_label():
    from cowbench.access import TELLING_ROUTES, check_access

    assert check_access({"pooled", "group_val"}) == {"pooled", "group_val"}
    assert "group_val" in TELLING_ROUTES
    # reports order access labels by ACCESS_LEVELS: the finer level right before the one that contains it
    assert ACCESS_LEVELS.index("group_val") + 1 == ACCESS_LEVELS.index("group")
