"""The command line end to end, in temporary directories."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FAILING_PLUGIN = '''
from cowbench.methods import Method, MethodOutput, register_method

@register_method
class Broken(Method):
    """Always fails.

    References
    ----------
    None (a test double).
    """
    name = "broken_for_tests"
    family = "estimation"
    access = frozenset({"pooled"})
    outputs = frozenset({"world"})

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def run(self, task):
        raise RuntimeError("this method always fails")
'''


def cowbench(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cowbench", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def job_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "jobs").glob("*/*.json"))}


def test_smoke_runs_prints_ranked_tables_and_a_rerun_skips_every_job(tmp_path):
    out = tmp_path / "smoke"
    first = cowbench("run", "smoke", "--out", out)
    assert first.returncode == 0, first.stderr
    for title in ("World recovery — cow", "Model recovery — cow", "Detection — cow", "Edit — cow"):
        assert f"## {title}" in first.stdout
    assert "| rank | P(best) | method | access |" in first.stdout
    assert "env_instability" in first.stdout and "] (3)" in first.stdout and "±" not in first.stdout
    files = job_files(out)
    assert len(files) == 36  # 12 methods (7 of them controls) x 3 replicates
    assert all(json.loads(b)["status"] == "ok" for b in files.values())
    assert (out / "report.md").is_file()

    again = cowbench("run", "smoke", "--out", out)
    assert again.returncode == 0
    assert "36 planned: 36 done, 0 failed, 0 to run" in again.stderr
    assert job_files(out) == files

    report = cowbench("report", out)
    assert report.returncode == 0 and report.stdout.strip() == first.stdout.strip()
    status = cowbench("status", out)
    assert "36 planned, 36 ok, 0 failed, 0 not run" in status.stdout


def test_results_are_byte_identical_whatever_the_launcher(tmp_path):
    args = ["--replicates", "1", "--methods", "logistic,erase_spurious,group_reweight"]
    a = cowbench("run", "smoke", "--out", tmp_path / "a", "--launcher", "serial", *args)
    b = cowbench("run", "smoke", "--out", tmp_path / "b", "--launcher", "joblib", "--jobs", "2", *args)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert job_files(tmp_path / "a") == job_files(tmp_path / "b")
    assert len(job_files(tmp_path / "a")) == 3


def test_a_failing_method_fails_its_job_not_the_run(tmp_path):
    plugin = tmp_path / "broken.py"
    plugin.write_text(FAILING_PLUGIN)
    out = tmp_path / "out"
    run = cowbench("run", "smoke", "--out", out, "--replicates", "1", "--methods", "logistic,broken_for_tests",
                   "--plugins", plugin)
    assert run.returncode == 1
    records = [json.loads(b) for b in job_files(out).values()]
    by_method = {r["spec"]["method"]: r for r in records}
    assert by_method["logistic"]["status"] == "ok"
    assert by_method["broken_for_tests"]["status"] == "failed"
    assert "this method always fails" in by_method["broken_for_tests"]["traceback"]
    assert "Failed jobs (1)" in run.stdout
    # a rerun keeps the failure (exit 1) without rerunning anything; --retry-failed reruns it
    again = cowbench("run", "smoke", "--out", out, "--replicates", "1", "--methods", "logistic,broken_for_tests",
                     "--plugins", plugin)
    assert again.returncode == 1 and "1 failed, 0 to run" in again.stderr


BAD_SUITES = {
    "unknown_scenario": ('[[scenarios]]\nname = "caw"\n[methods]\ninclude = ["logistic"]\n', "unknown scenario 'caw'"),
    "bad_knob": ('[[scenarios]]\nname = "cow"\nknobs = { agreement_test = 3.0 }\n[methods]\ninclude = ["logistic"]\n',
                 "agreement_test=3.0"),
    "unknown_method": ('[[scenarios]]\nname = "cow"\n[methods]\ninclude = ["logistik"]\n', "unknown method 'logistik'"),
    "bad_hparam": ('[[scenarios]]\nname = "cow"\n[methods]\ninclude = [{ name = "logistic", params = { D = 1 } }]\n',
                   "method 'logistic': unknown hyperparameter 'D'; allowed: C, max_iter"),
    "malformed": ('[[scenarios]\nname = "cow"\n', "not valid TOML"),
    "unknown_table": ('[sweet]\nx = 1\n', "unknown table"),
    "bad_replicates": ('[suite]\nreplicates = 0\n[[scenarios]]\nname = "cow"\n[methods]\ninclude = ["logistic"]\n',
                       "replicates"),
}


@pytest.mark.parametrize("case", sorted(BAD_SUITES))
def test_bad_suites_exit_2_with_one_line_and_write_nothing(tmp_path, case):
    text, message = BAD_SUITES[case]
    suite = tmp_path / "bad.toml"
    suite.write_text(textwrap.dedent(text))
    out = tmp_path / "out"
    run = cowbench("run", suite, "--out", out)
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["run", "no_such_suite"], "unknown suite 'no_such_suite'"),
    (["run", "smoke", "--methods", "logistc"], "did you mean 'logistic'"),
    (["show", "cow", "agreement_test=2"], "agreement_test=2"),
    (["show", "caw"], "unknown scenario 'caw'"),
    (["report", "/no/such/dir"], "does not exist"),
])
def test_bad_command_lines_exit_2(tmp_path, args, message):
    run = cowbench(*args, cwd=tmp_path)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_list_and_show(tmp_path):
    listing = cowbench("list")
    assert listing.returncode == 0 and "erase_spurious" in listing.stdout and "smoke" in listing.stdout
    show = cowbench("show", "cow", "agreement_test=0.5", "--json")
    info = json.loads(show.stdout)
    assert info["knobs"]["agreement_test"] == 0.5 and info["identifiable_with"] == "pooled"
    assert {v["name"]: v["role"] for v in info["variables"]}["grass"] == "spurious"
