"""A suite records which knobs each grid sweeps (for the dose-response curves) without changing its hash."""

from cowbench.reports.plots import sweeps
from cowbench.reports.table import RunResults, scenario_label
from cowbench.suite import parse_suite


def suite(grid=None, knobs=None):
    entry = {"name": "cow", **({"grid": grid} if grid else {}), **({"knobs": knobs} if knobs else {})}
    return parse_suite({"suite": {"name": "s"}, "scenarios": [{"name": "cow"}, entry],
                        "methods": {"include": ["logistic"]}})


def test_each_grid_scenario_is_recorded_with_its_entry_and_values():
    s = suite(grid={"agreement_train": [0.6, 0.9], "agreement_test": [0.1, 0.3]})
    assert len(s.scenarios) == 1 + 4 and len(s.sweeps) == 4
    assert {(r["entry"], r["generator"], tuple(r["knobs"])) for r in s.sweeps} == {
        (1, "cow", ("agreement_train", "agreement_test"))}
    assert [r["values"] for r in s.sweeps] == [{"agreement_train": a, "agreement_test": b}
                                               for a in (0.6, 0.9) for b in (0.1, 0.3)]
    assert [r["scenario"] for r in s.sweeps] == list(s.scenarios[1:])
    assert suite(knobs={"agreement_test": 0.3}).sweeps == ()


def test_the_sweeps_leave_the_suite_hash_alone():
    s = suite(grid={"agreement_test": [0.2, 0.3]})
    assert "sweeps" not in s.to_dict()
    fixed = parse_suite({"suite": {"name": "s"}, "scenarios": [
        {"name": "cow"}, {"name": "cow", "knobs": {"agreement_test": 0.2}},
        {"name": "cow", "knobs": {"agreement_test": 0.3}}], "methods": {"include": ["logistic"]}})
    assert fixed.sweeps == () and fixed.hash == s.hash  # the same jobs, listed instead of swept


def test_a_two_knob_grid_gives_one_curve_per_knob_and_value_of_the_other():
    s = suite(grid={"agreement_train": [0.6, 0.9], "agreement_test": [0.1, 0.2, 0.3]})
    empty = RunResults(frame=None, jobs=None, missing=None, manifest={"sweeps": list(s.sweeps)})
    found = sweeps(empty)
    by_knob = {}
    for sw in found:
        by_knob.setdefault(sw.knob, []).append(sw)
    assert len(by_knob["agreement_train"]) == 3 and len(by_knob["agreement_test"]) == 2
    for sw in by_knob["agreement_test"]:
        assert [v for _, v in sw.points] == [0.1, 0.2, 0.3] and sw.fixed[0][0] == "agreement_train"
        assert all(lab == scenario_label(r["scenario"]) for (lab, _), r in zip(
            sw.points, [r for r in s.sweeps if r["values"]["agreement_train"] == sw.fixed[0][1]], strict=True))
    assert len({sw.stem for sw in found}) == len(found)  # one file each
