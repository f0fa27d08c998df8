"""The loeo refits run blind, as the job's own run: a method that looks for the harness's replicate through the
garbage collector finds it only in the in-process debugger mode (issue 20's review of the job path: the refits
used to run in the harness's process with an unblinded Task)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cowbench as cb

PLUGIN = Path(__file__).with_name("_loeo_cheat_plugin.py")
KNOBS = {"n_train": 300, "n_val": 150, "n_test": 300, "agreement_train": [0.95, 0.85, 0.7]}
SUITE = """
[suite]
name = "tiny_loeo"
replicates = 1
selection = ["defaults", "loeo"]

[subject]
arch = "linear"
epochs = 20

[[scenarios]]
name = "cow"
knobs = { n_train = 300, n_val = 150, n_test = 300, agreement_train = [0.95, 0.85, 0.7] }

[methods]
include = ["test_gc_cheat_edit", "test_gc_forward_edit"]
"""


def _loeo_acc(tmp: Path, launcher: str) -> float:
    out = tmp / launcher
    done = subprocess.run([sys.executable, "-m", "cowbench", "run", tmp / "tiny.toml", "--out", out, "--plugins",
                           PLUGIN, "--launcher", launcher], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    records = {r["spec"]["method"]: r for r in (json.loads(p.read_text()) for p in (out / "jobs").glob("*/*.json"))}
    record = records["test_gc_cheat_edit"]
    assert record["status"] == "ok" and record["spec"]["loeo"] is True, record
    if launcher != "inprocess":  # its run() does not walk gc, its edited model's forward does: on the record too
        assert "audit:gc" in records["test_gc_forward_edit"]["told"], records["test_gc_forward_edit"]["told"]
        # the refits' method processes are counted with the methods' CPU, one per training environment
        (run_record,) = [json.loads(p.read_text()) for p in (out / "runs").glob(f"*/{record['job_id']}.json")]
        assert run_record["loeo_method_cpu_s"] > 0 and run_record["sandbox_cpu_s"] > run_record["loeo_method_cpu_s"]
    return record["metrics"]["loeo_acc"]


def _share(positive: bool) -> float:
    """The loeo accuracy of a constant prediction: the mean over training environments of its share there."""
    from cowbench.jobs import ReplicateSpec, prepare
    from cowbench.subject import SubjectConfig

    scn = cb.make_scenario("cow", **{**KNOBS, "agreement_train": tuple(KNOBS["agreement_train"])})
    train = prepare(ReplicateSpec(scn.spec, 0, 0, SubjectConfig(arch="linear", epochs=20).to_dict())).data.train
    return float(np.mean([np.mean((train.y[train.env == e] == 1) == positive) for e in np.unique(train.env)]))


def test_loeo_refits_cannot_reach_the_harness_but_the_debugger_mode_can(tmp_path):
    (tmp_path / "tiny.toml").write_text(SUITE)
    negative, positive = _share(False), _share(True)
    assert abs(negative - positive) > 0.01  # the two outcomes are told apart (both exact: no noise)
    assert _loeo_acc(tmp_path, "serial") == pytest.approx(negative, abs=1e-12)  # blind: no replicate in sight
    # the contrast that makes the check able to fail: in the debugger mode the method runs in the harness's process
    assert _loeo_acc(tmp_path, "inprocess") == pytest.approx(positive, abs=1e-12)
