"""Runs that say what happened: a failed job is named on its own line when it fails, and callback-driven work
(verify, reliability) gets the same lines with an ETA instead of one carriage-return counter."""

from __future__ import annotations

import io
import re
import subprocess
import sys

from cowbench.progress import Meter, Progress, job_label


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_failure_is_named_when_it_happens_not_only_counted():
    stream = io.StringIO()
    p = Progress(10, "jobs", stream=stream, clock=Clock(), interval=1e9, step=0.5)
    p.update()
    p.update(failed=1, failures=["irm_linear on cow replicate 2 (job 3f2a9c0d1e4b)"])
    lines = stream.getvalue().splitlines()
    assert lines[-1] == "[run] failed: irm_linear on cow replicate 2 (job 3f2a9c0d1e4b)"  # before the 5/10 line
    assert p.failed == 1 and p.done == 2


def test_a_meter_learns_the_total_from_the_callback_and_writes_lines_with_an_eta():
    clock, stream = Clock(), io.StringIO()
    meter = Meter("jobs rerun", tag="verify", stream=stream, clock=clock, interval=1e9, step=0.25)
    for done in range(1, 9):
        clock.now = 3.0 * done
        meter(done, 8)
        if done == 3:
            meter.failure("ols on cow replicate 0 (job abc): ValueError: boom")
    meter.close()
    text = stream.getvalue()
    assert "\r" not in text
    assert "[verify] jobs rerun 2/8 done, 0 failed, ETA 18s" in text  # 6 left x 3 s
    assert "[verify] failed: ols on cow replicate 0 (job abc): ValueError: boom" in text
    assert text.splitlines()[-1] == "[verify] jobs rerun 8/8 done, 1 failed, in 24s"


def test_job_label_names_method_scenario_replicate_and_job():
    import cowbench as cb
    from cowbench.jobs import ReplicateSpec, make_job

    spec = make_job(ReplicateSpec(cb.make_scenario("cow").spec, 2, 0, {"arch": "linear"}), "ols", {})
    assert job_label(spec) == f"ols on cow replicate 2 (job {spec.id[:12]})"


PLUGIN = '''
from cowbench.methods import Method, MethodOutput, register_method


@register_method
class Broken(Method):
    """Always fails (a test's method).

    References
    ----------
    None.
    """

    name = "always_broken"
    family = "estimation"
    access = frozenset({"pooled"})
    outputs = frozenset({"world"})

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def run(self, task):
        raise RuntimeError("broken on purpose")
'''

SUITE = """
[suite]
name = "failing"
replicates = 1

[subject]
arch = "linear"

[[scenarios]]
name = "cow"
knobs = { n_train = 300, n_val = 100, n_test = 300 }

[methods]
include = ["always_broken"]
"""


def test_a_run_names_the_failed_job_on_stderr_as_it_fails(tmp_path):
    (tmp_path / "broken.py").write_text(PLUGIN)
    (tmp_path / "failing.toml").write_text(SUITE)
    done = subprocess.run([sys.executable, "-m", "cowbench", "run", "failing.toml", "--plugins", "broken.py",
                           "--launcher", "inprocess", "--out", "out"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 1
    assert re.search(r"^\[run\] failed: always_broken on cow replicate 0 \(job [0-9a-f]{12}\)$", done.stderr,
                     flags=re.M), done.stderr
    assert "[run] failed:" not in done.stdout
