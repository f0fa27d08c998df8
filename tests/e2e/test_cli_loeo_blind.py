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


def test_a_model_that_reads_its_batch_only_on_a_loeo_fold_gets_no_loeo_acc(tmp_path):
    """The folds' held-out rows get the scored batches' row-independence checks: a method whose edited model is
    row-independent on the job's own Task (3 environments) but centres each batch on its mean when refit on a fold
    (2 environments) gets no ``loeo_acc`` (so the loeo rule never selects it), and the record names the refit and
    the check; its own run's scores stand (that model passed the same checks). With the threshold out of reach
    (row-independent on the folds too) the same job gets its ``loeo_acc``, so the check can fail and pass."""
    entries = ", ".join(f'{{ name = "test_fold_batch_reader", params = {{ n_envs = {k} }} }}' for k in (3, 2))
    (tmp_path / "reader.toml").write_text(SUITE.replace(
        'include = ["test_gc_cheat_edit", "test_gc_forward_edit"]', f"include = [{entries}]"))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "cowbench", "run", tmp_path / "reader.toml", "--out", out,
                           "--plugins", PLUGIN, "--launcher", "serial"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    names = {3: "reads_on_folds", 2: "never_reads"}
    records = {names[r["spec"]["hparams"]["n_envs"]]: r for r in (json.loads(p.read_text())
               for p in (out / "jobs").glob("*/*.json")) if r["spec"]["loeo"]}
    record = records["reads_on_folds"]
    assert record["status"] == "ok" and record["metrics"]["loeo_acc"] is None, record
    reason = record["missing"]["loeo_acc"]
    assert "BatchDependent" in reason and "loeo refit" in reason and "one row at a time" in reason, reason
    assert np.isfinite(record["metrics"]["acc_bal"])
    record = records["never_reads"]
    assert record["status"] == "ok" and np.isfinite(record["metrics"]["loeo_acc"]), record
    assert "loeo_acc" not in record["missing"], record["missing"]
