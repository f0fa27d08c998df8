"""The conformance kit over every registered method, and the kit itself on deliberately broken methods."""

import numpy as np
import pytest

import cowbench as cb
from cowbench.conformance import _blind_inputs_function, check_method
from cowbench.method import Method, MethodOutput

# Until the blinded Task (`cowbench.blinding.blind_inputs`) is merged, the kit hands the method process today's
# Task pieces, which hold the dataset: the truth scan then fails for every method, as it must. Once it exists the
# check is strict.
BLIND = _blind_inputs_function() is not None


def _failures(results, *, strict_truth: bool = BLIND) -> list[str]:
    return [f"{r.name}: {r.message}" for r in results if not r.passed
            and (strict_truth or r.name != "blind_process_holds_no_truth")]


# The full kit on every method takes about 22 min on a loaded 2-core machine (the four learned-dictionary discovery
# methods alone 13 min), so it runs with the slow tests. By default it runs on these representatives, which together
# cover every family, every output (including an abstention), every access level and every scenario the kit picks
# for some method: cow, linear_sem (icp) and cow_planted (pca_directions). Every method still gets the two static
# checks by default (below).
REPRESENTATIVE = {
    "ols": "estimation; pooled; world and model coefficients",
    "group_gap": "estimation; group labels; detection scores",
    "icp": "causal; environments; the linear_sem scenario",
    "env_instability": "causal; environments; detection scores",
    "always_abstain": "causal control; concept, counterfactual and env access; an abstention",
    "grad_x_input": "attribution; internals; model coefficients",
    "leace": "editing; concepts and internals; an edited model",
    "cf_augment": "editing; reads counterfactuals; a retrained edited model",
    "dfr": "robust_training; validation group labels and internals; an edited model",
    "pca_directions": "discovery; the cow_planted scenario; discovered directions",
}
STATIC_CHECKS = ("declaration", "constructor")  # neither needs a fixture or runs the method


def test_the_representatives_cover_every_family_output_access_and_kit_scenario():
    from cowbench.conformance import _pick_scenario
    from cowbench.method import FAMILIES, OUTPUTS

    classes = [cb.get_method(name) for name in REPRESENTATIVE]
    assert {c.family for c in classes} == set(FAMILIES)
    assert set().union(*(c.outputs for c in classes)) == set(OUTPUTS)
    every_access = set().union(*(cb.get_method(name).access for name in cb.list_methods()))
    assert set().union(*(c.access for c in classes)) == every_access
    assert {_pick_scenario(c) for c in classes} == {_pick_scenario(cb.get_method(name)) for name in cb.list_methods()}


@pytest.mark.parametrize("name", [
    name if name in REPRESENTATIVE else pytest.param(name, marks=pytest.mark.slow)  # fast ones: REPRESENTATIVE
    for name in cb.list_methods()])
def test_every_registered_method_passes_the_kit(name):
    failed = _failures(check_method(name))
    assert not failed, failed


@pytest.mark.parametrize("name", cb.list_methods())
def test_every_registered_method_passes_the_static_checks(name):
    from cowbench.conformance import CHECKS

    cls = cb.get_method(name)
    failed = [f"{check}: {problem}" for check in STATIC_CHECKS if (problem := CHECKS[check](cls, None))]
    assert not failed, failed


class _Base(Method):
    """A test double.

    References
    ----------
    None.
    """

    name = "double"
    family = "estimation"
    access = frozenset({"pooled"})
    outputs = frozenset({"world"})

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def run(self, task):
        return MethodOutput(world_coef={v: 1.0 for v in task.variables})


class _Peeks(_Base):
    def run(self, task):
        task.train.env  # noqa: B018 - reads environment labels without declaring 'env'
        return super().run(task)


class _Random(_Base):
    def run(self, task):
        return MethodOutput(world_coef={v: float(np.random.default_rng().normal()) for v in task.variables})


class _Mutates(_Base):
    access = frozenset({"pooled", "internals"})

    def run(self, task):
        task.train.x[0, 0] = 99.0
        return super().run(task)


class _BadKeys(_Base):
    def run(self, task):
        return MethodOutput(world_coef={"mud": 1.0})


@pytest.mark.parametrize(("cls", "check"), [
    (_Peeks, "access_respected"), (_Random, "deterministic"), (_Mutates, "no_mutation"), (_BadKeys, "outputs"),
])
def test_the_kit_catches_broken_methods(cls, check):
    results = {r.name: r for r in check_method(cls)}
    assert not results[check].passed
    assert results["declaration"].passed and results["constructor"].passed


def test_a_correct_double_passes():
    assert not _failures(check_method(_Base))


class _SwallowsAccessError(_Base):
    """Asks for group labels it did not declare, catches the refusal and carries on: the run itself succeeds."""

    def run(self, task):
        from cowbench.errors import AccessError

        try:
            task.val.group  # noqa: B018 - validation group labels, undeclared
        except AccessError:
            pass
        return super().run(task)


class _DeclaresGroupVal(_Base):
    access = frozenset({"pooled", "group_val"})

    def run(self, task):
        task.val.group  # noqa: B018 - declared: validation group labels only
        return super().run(task)


def test_reads_within_access_catches_a_swallowed_access_error():
    results = {r.name: r for r in check_method(_SwallowsAccessError)}
    assert results["access_respected"].passed  # the run raised nothing: the old check cannot see it
    assert not results["reads_within_access"].passed
    assert "group labels of 'val'" in results["reads_within_access"].message


def test_reads_within_access_passes_a_declared_read():
    results = {r.name: r for r in check_method(_DeclaresGroupVal)}
    assert results["reads_within_access"].passed and results["access_respected"].passed


# -- the method in its real (blind) job process --------------------------------------------------------------


class _PlainTask:
    """A Task stand-in holding nothing but names: what a blind method process may hold."""

    access = frozenset({"pooled"})
    variables = ["v0", "v1"]


class _InBlindProcess(_Base):
    pass


class _WalksGc(_Base):
    def run(self, task):
        import gc

        gc.get_objects()
        return super().run(task)


def test_the_truth_scan_passes_a_clean_process_and_fails_one_that_holds_the_dataset(monkeypatch):
    import cowbench.conformance as kit
    from cowbench.sandbox import LegacyInputs

    monkeypatch.setattr(kit, "_blind_inputs", lambda fx, cls: _PlainTask())
    results = {r.name: r for r in check_method(_InBlindProcess)}
    assert results["blind_process_holds_no_truth"].passed and results["audit_clean"].passed

    class _Handed(_Base):  # a new class: the kit caches one blind run per class
        pass

    monkeypatch.setattr(kit, "_blind_inputs", lambda fx, cls: LegacyInputs(
        fx.scenario.spec, fx.data, fx.subject, cls.access, fx.config, 200))
    results = {r.name: r for r in check_method(_Handed)}
    assert not results["blind_process_holds_no_truth"].passed
    assert "cowbench.data.Dataset" in results["blind_process_holds_no_truth"].message


def test_the_audit_check_catches_a_gc_walk():
    results = {r.name: r for r in check_method(_WalksGc)}
    assert not results["audit_clean"].passed and "audit:gc" in results["audit_clean"].message
    assert results["access_respected"].passed  # in its own process the walk raises nothing
