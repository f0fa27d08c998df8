"""The conformance kit over every registered method, and the kit itself on deliberately broken methods."""

import numpy as np
import pytest

import cowbench as cb
from cowbench.conformance import check_method
from cowbench.method import Method, MethodOutput


@pytest.mark.parametrize("name", cb.list_methods())
def test_every_registered_method_passes_the_kit(name):
    failed = [f"{r.name}: {r.message}" for r in check_method(name) if not r.passed]
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
    assert all(r.passed for r in check_method(_Base))


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
