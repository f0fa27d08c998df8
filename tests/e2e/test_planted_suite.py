"""A suite with a planted scenario: the scenario's subject replaces the suite's, the record says so, the
localization scores are stored, and verify reruns it (the planted net is rebuilt, not loaded)."""

import json
import subprocess
import sys

import pytest

SUITE = """
[suite]
name = "planted_check"
description = "a planted preset x erase_spurious"
root_seed = 0
replicates = 1

[subject]
arch = "linear"

[[scenarios]]
name = "planted_poly"
knobs = { n_train = 300, n_val = 100, n_test = 500 }

[methods]
include = ["erase_spurious"]
"""


def _cowbench(*args, cwd):
    return subprocess.run([sys.executable, "-m", "cowbench", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.mark.slow
def test_a_planted_suite_runs_and_verifies(tmp_path):
    (tmp_path / "planted.toml").write_text(SUITE, encoding="utf-8")
    run = _cowbench("run", "planted.toml", "--out", "out", "--launcher", "serial", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "out" / "jobs").rglob("*.json")]
    records = [r for r in records if "spec" in r]
    assert len(records) == 1
    assert records[0]["spec"]["subject"]["arch"] == "planted"  # the scenario's declaration beat [subject]
    # erase_spurious localizes at the input, where grass's column is given by the layout: not scored there
    assert records[0]["metrics"].get("loc_auroc") is None
    assert "not scored at 'input'" in records[0]["missing"]["loc_auroc"]
    verify = _cowbench("verify", "out", cwd=tmp_path)
    assert verify.returncode == 0 and "PASS" in verify.stdout, verify.stdout + verify.stderr
