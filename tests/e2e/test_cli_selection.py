"""Trials and selection rules end to end: a tiny suite with trials = 3 and three rules, run from the command line."""

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).with_name("_selection_plugin.py")
SUITE = """
[suite]
name = "tiny_selection"
replicates = 2
trials = 3
selection = ["train_val", "worst_group_val", "loeo"]

[subject]
arch = "linear"
epochs = 30

[[scenarios]]
name = "cow"
knobs = { n_train = 450, n_val = 300, n_test = 450, agreement_train = [0.95, 0.85, 0.7] }

[methods]
include = ["test_ridge_logit_edit", "logistic"]
"""


def cowbench(*args):
    return subprocess.run([sys.executable, "-m", "cowbench", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def job_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "jobs").glob("*/*.json"))}


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("selection")
    (tmp / "tiny.toml").write_text(SUITE)
    out = tmp / "serial"
    done = cowbench("run", tmp / "tiny.toml", "--out", out, "--plugins", PLUGIN, "--launcher", "serial")
    assert done.returncode == 0, done.stderr
    return tmp, out, done


def test_every_setting_is_a_job_and_the_manifest_records_rules_and_draws(serial_run):
    _, out, _ = serial_run
    files = {k: json.loads(v) for k, v in job_files(out).items()}
    assert len(files) == 2 * (3 + 3)  # 2 replicates x (3 draws of each method)
    manifest = json.loads(next((out / "manifests").glob("*.json")).read_text())
    assert manifest["selection"] == ["train_val", "worst_group_val", "loeo"]
    assert sorted(manifest["trials"].values()) == [1, 1, 1, 1, 2, 2, 2, 2]
    edits = [r for r in files.values() if r["spec"]["method"] == "test_ridge_logit_edit"]
    assert all(r["spec"]["loeo"] is True and 0 <= r["metrics"]["loeo_acc"] <= 1 for r in edits)
    assert all("loeo" not in r["spec"] and r["metrics"]["loeo_acc"] is None
               for r in files.values() if r["spec"]["method"] == "logistic")
    # the same C in both replicates: draws depend on the method and the index, not the data
    cs = {r["spec"]["replicate"]: sorted(str(r["spec"]["hparams"]) for r in edits if r["spec"]["replicate"] == rep)
          for rep in (0, 1) for r in edits}
    assert cs[0] == cs[1]


def test_the_report_has_one_row_per_rule_and_names_the_rules(serial_run):
    _, out, done = serial_run
    for rule in ("train_val", "worst_group_val", "loeo"):
        assert f"test_ridge_logit_edit [{rule}]" in done.stdout
    assert "selection rules loeo, train_val, worst_group_val" in done.stdout
    report = cowbench("report", out, "--format", "csv")
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    edit = [r for r in rows if r["method"] == "test_ridge_logit_edit" and r["metric"] == "acc_bal"]
    assert sorted(r["selection"] for r in edit) == ["loeo", "train_val", "worst_group_val"]
    assert all(r["n"] == "2" for r in edit)  # one row gathers both replicates whatever each one chose
    access = {r["selection"]: r["access"] for r in edit}
    assert access == {"loeo": "pooled", "train_val": "pooled", "worst_group_val": "pooled+group_val"}
    # logistic returns no edited model: the rules have nothing to choose by among its 3 settings
    assert not [r for r in rows if r["method"] == "logistic"]
    data = json.loads(cowbench("report", out, "--format", "json").stdout)
    chosen = [s for s in data["selections"] if s["method"] == "test_ridge_logit_edit"]
    assert len(chosen) == 3 * 2 and all(s["trial"] in (0, 1, 2) for s in chosen)  # a rule per replicate
    assert any("no train_val row" in s["reason"] for s in data["skipped"] if s["method"] == "logistic")


def test_the_draws_and_job_files_do_not_depend_on_the_launcher(serial_run):
    tmp, out, _ = serial_run
    other = tmp / "joblib"
    done = cowbench("run", tmp / "tiny.toml", "--out", other, "--plugins", PLUGIN, "--launcher", "joblib",
                    "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert job_files(other) == job_files(out)


@pytest.mark.slow
def test_verify_reruns_every_stored_job_whichever_rule_chose_it(serial_run):
    # loeo jobs carry the flag in their spec: verify must rebuild it, and rerun unselected settings too
    _, out, _ = serial_run
    done = cowbench("verify", out, "--all", "--plugins", PLUGIN, "--jobs", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout and "of 12 stored job(s)" in done.stdout + done.stderr


def test_a_bad_trials_flag_is_refused_in_one_line(tmp_path):
    done = cowbench("run", "smoke", "--trials", "0", "--out", tmp_path / "x")
    assert done.returncode == 2 and "--trials must be a positive integer" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_run_ends_with_its_cpu_over_the_process_tree_counting_every_job(serial_run):
    import re

    _, _, done = serial_run
    lines = [line for line in done.stderr.splitlines() if line.startswith("CPU ")]
    assert len(lines) == 1 and "over the process tree" in lines[0], done.stderr[-2000:]
    per_job = re.search(r"\(jobs, ([0-9.]+) per job\)", lines[0])  # absent when no run record was counted
    assert per_job is not None and float(per_job.group(1)) > 0, lines[0]
