"""Plan only what can score (issue 16): a (scenario, method) pair is planned only where some track the method
outputs has a primary metric that can be defined there, and pairs that cannot run by construction are skipped
at plan time with the reason; every built-in suite runs the controls of the tracks its methods cover."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

import cowbench as cb
from cowbench.registries import METHODS
from cowbench.suite import builtin_suites, parse_suite, track_undefined, unscorable

CONTROLS = {"world": {"zero_world", "random_world"}, "model": {"constant_attribution", "random_attribution"},
            "detect": {"random_detect", "always_abstain"},
            "edit": {"no_edit", "random_direction_ablation", "random_neuron_ablation"},
            "discover": {"random_directions", "unit_axes"}}


def _suite(methods, scenarios):
    return parse_suite({"suite": {"name": "t", "replicates": 1}, "scenarios": scenarios,
                        "methods": {"include": methods}})


def test_no_edit_job_is_planned_on_a_continuous_label_and_the_skip_says_why():
    suite = _suite(["erase_spurious", "no_edit", "ols"], [{"name": "linear_sem"}, {"name": "cow"}])
    planned = {(j.replicate.scenario["generator"], j.method) for j in suite.plan()}
    assert ("linear_sem", "erase_spurious") not in planned and ("linear_sem", "no_edit") not in planned
    assert {("cow", "erase_spurious"), ("cow", "no_edit"), ("linear_sem", "ols"), ("cow", "ols")} <= planned
    reasons = {s["method"]: s["reason"] for s in suite.skipped() if s["scenario"]["generator"] == "linear_sem"}
    assert "edit_score needs a binary label" in reasons["no_edit"]


def test_a_method_is_planned_where_any_of_its_tracks_can_score():
    linear_sem, cow = cb.make_scenario("linear_sem"), cb.make_scenario("cow")
    assert track_undefined("edit", linear_sem) and track_undefined("edit", cow) is None
    assert unscorable(frozenset({"edit"}), linear_sem) is not None
    assert unscorable(frozenset({"edit", "model"}), linear_sem) is None
    assert "every world coefficient is 0" in track_undefined("world", cb.make_scenario("cow_xor"))
    undefined = cb.make_scenario("cow", causal_form="and", sparsity=0.5)  # world truth undefined
    assert not undefined.truth.world_defined
    assert "world truth is undefined" in unscorable(frozenset({"world"}), undefined)
    assert unscorable(frozenset({"world", "detect"}), undefined) is None


def test_group_subsample_on_cow_separable_is_skipped_at_plan_time_as_a_scenario_property():
    separable = cb.make_scenario("cow_separable")
    assert separable.missing_train_groups == (1, 2)  # agreement_train 1.0: no (cow, no grass), (no cow, grass)
    assert cb.make_scenario("cow").missing_train_groups == ()
    suite = _suite(["group_subsample", "group_reweight"], [{"name": "cow_separable"}, {"name": "cow"}])
    planned = {(j.replicate.scenario["generator"], j.method) for j in suite.plan()}
    assert ("cow", "group_subsample") in planned and ("cow", "group_reweight") in planned
    assert ("cow", "group_subsample") in planned and ("cow_separable", "group_reweight") in planned
    skipped = suite.skipped()
    assert [(s["scenario"]["generator"], s["method"]) for s in skipped] == [("cow_separable", "group_subsample")]
    assert "group(s) 1, 2" in skipped[0]["reason"] and "by construction" in skipped[0]["reason"]


@pytest.mark.parametrize("name", builtin_suites())
def test_every_builtin_suite_runs_the_controls_of_the_tracks_its_methods_cover(name):
    raw = tomllib.loads((resources.files("cowbench") / "suites" / f"{name}.toml").read_text(encoding="utf-8"))
    methods = {m if isinstance(m, str) else m["name"] for m in raw["methods"]["include"]}
    competitors = [m for m in methods if not METHODS.get(m).control]
    covered = set().union(*(METHODS.get(m).outputs for m in competitors))
    for track in covered:
        missing = CONTROLS[track] - methods
        if name == "smoke" or name == "dose":  # the small suites: the edit track's no_edit is enough
            missing -= {"random_direction_ablation", "random_neuron_ablation"}
        assert not missing, f"suite {name} covers {track} but lacks its control(s) {sorted(missing)}"
    assert all(METHODS.get(m).control for c in CONTROLS.values() for m in c)


@pytest.mark.slow
def test_the_standard_suite_plans_no_job_that_cannot_score():
    """The standard suite (planning only, about 30 s): no edit-only method on a continuous label, no
    group_subsample on cow_separable, every control of every track planned on every scenario it can score."""
    from cowbench.jobs import scenario_from_spec
    from cowbench.suite import load_suite

    suite = load_suite("standard")
    kinds = {}
    for job in suite.plan():
        spec = job.replicate.scenario
        key = repr(spec)
        if key not in kinds:
            kinds[key] = scenario_from_spec(spec)
        outputs = METHODS.get(job.method).outputs
        if kinds[key].scm.label_kind == "continuous":
            assert outputs != frozenset({"edit"}), (job.method, spec["generator"])
        assert not (job.method == "group_subsample" and spec["generator"] == "cow_separable")
    planned = {(repr(j.replicate.scenario), j.method) for j in suite.plan()}
    for key, scn in kinds.items():
        for track in ("world", "model", "detect"):
            for control in CONTROLS[track]:
                assert ((key, control) in planned) == (track_undefined(track, scn) is None), (key, control)
    assert any(track_undefined("world", scn) for scn in kinds.values())  # cow_xor: no linear world truth
