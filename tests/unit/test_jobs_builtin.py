"""Every built-in method runs blind: through the job flow (neutral names, shuffled rows and relabelled ids,
permuted input columns, unblinded answer, row-independence check) on the first small scenario it applies to."""

from __future__ import annotations

import numpy as np
import pytest

import cowbench as cb
from cowbench.conformance import CANDIDATES, SMALL_KNOBS
from cowbench.jobs import ReplicateSpec, execute, prepare
from cowbench.subject import SubjectConfig


def _replicate(cls):
    for name, knobs in CANDIDATES:
        scn = cb.make_scenario(name, **SMALL_KNOBS, **dict(knobs))
        if cls.applicable(scn) is None:
            return prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig(arch="mlp", epochs=100).to_dict()))
    pytest.skip(f"{cls.name} applies to none of the conformance scenarios")


@pytest.mark.slow
@pytest.mark.parametrize("name", cb.list_methods())
def test_every_built_in_method_runs_blind(name):
    cls = cb.get_method(name)
    rep = _replicate(cls)
    output, metrics, resources = execute(rep, cls(), 0)
    real = set(rep.scenario.variables)
    for field in ("world_coef", "model_coef", "spurious_score"):
        value = getattr(output, field)
        assert value is None or set(value) <= real, (field, value)
    if output.edited is not None:
        assert metrics["acc_id"] is not None or rep.scenario.scm.label_kind != "binary"
        assert np.isfinite(metrics["edit_score"]) if metrics["edit_score"] is not None else True
    assert set(resources["told"]) <= {"edit_target", "group", "group_val"}
    assert set(resources["read_log"]), "a method reads something"
