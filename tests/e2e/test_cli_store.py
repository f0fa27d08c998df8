"""The store end to end: it trusts only what it can verify, cleans up after killed writers, and lets two
suites share a directory. One small run (the cow scenario, logistic, 2 replicates) is made once and copied
into each test. The CLI runs in-process: the machine is shared, and each interpreter start costs seconds."""

import contextlib
import io
import json
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from cowbench.cli import main
from cowbench.seeds import stable_hash
from cowbench.store import checksum_path, read_checked

ALPHA = '[suite]\nname = "alpha"\nreplicates = 2\n[[scenarios]]\nname = "cow"\n[methods]\ninclude = ["logistic"]\n'
BETA = '[suite]\nname = "beta"\nreplicates = 1\n[[scenarios]]\nname = "cow"\n[methods]\ninclude = ["ols"]\n'


def cowbench(*args):
    """The CLI in-process (the interpreter and torch start once, not once per command), output captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def run(suite: Path, out: Path, *extra):
    return cowbench("run", suite, "--out", out, "--launcher", "serial", *extra)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    (root / "alpha.toml").write_text(ALPHA)
    (root / "beta.toml").write_text(BETA)
    done = run(root / "alpha.toml", root / "out")
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture()
def out(base, tmp_path):
    shutil.copytree(base / "out", tmp_path / "out")
    return tmp_path / "out"


def job_files(out: Path) -> dict[int, Path]:
    """replicate -> job file of the logistic jobs."""
    files = {}
    for path in sorted((out / "jobs").glob("*/*.json")):
        files[json.loads(path.read_bytes())["spec"]["replicate"]] = path
    return files


def replicates_reported(out: Path, suite: str = "alpha") -> list[int]:
    from cowbench.reports.table import load_results

    return sorted(load_results(out, suite).frame.query("metric == 'world_cos'").replicate)


def test_a_job_file_copied_under_another_id_is_named_not_counted_and_rerun(out, base):
    files = job_files(out)
    assert replicates_reported(out) == [0, 1]
    files[1].write_bytes(files[0].read_bytes())  # before: trusted forever, replicate 0 counted twice

    status = cowbench("status", out)
    assert "2 planned, 1 ok, 0 failed, 1 not run (1 of them invalid files)" in status.stdout
    assert str(files[1]) in status.stderr and len(status.stderr.strip().splitlines()) == 1
    report = cowbench("report", out)
    assert report.returncode == 0 and "Traceback" not in report.stderr and str(files[1]) in report.stderr
    assert replicates_reported(out) == [0]

    again = run(base / "alpha.toml", out)
    assert again.returncode == 0, again.stderr
    assert "2 planned: 1 done, 0 failed, 1 to run" in again.stderr and str(files[1]) in again.stderr
    record = json.loads(files[1].read_bytes())
    assert stable_hash(record["spec"]) == files[1].stem and record["spec"]["replicate"] == 1
    assert replicates_reported(out) == [0, 1]


def test_a_garbage_job_file_never_crashes_status_or_report_and_is_rerun(out, base):
    # the other kinds of invalid file (a list, schema 2, a string metric...) are in tests/unit/test_store.py
    files = job_files(out)
    files[1].write_bytes(b"\xff\xfe\x00garbage")
    for command in ("status", "report"):
        result = cowbench(command, out)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert str(files[1]) in result.stderr
    again = run(base / "alpha.toml", out)
    assert again.returncode == 0 and "1 to run" in again.stderr
    assert json.loads(files[1].read_bytes())["status"] == "ok"


def test_a_truncated_or_unchecked_cache_file_is_rebuilt_not_failed(out, base):
    files = job_files(out)
    cache = sorted((out / "cache").glob("*/subject.pt"))
    assert len(cache) == 2 and all(read_checked(p) is not None for p in cache)
    for p in cache:  # before: every job of the replicate failed, and --retry-failed failed again
        p.write_bytes(p.read_bytes()[:100])
    oracle = sorted((out / "cache").glob("*/oracle.pt"))
    checksum_path(oracle[0]).unlink()  # a cache written before checksums: cannot be verified, so rebuilt
    for path in files.values():
        path.unlink()
    again = run(base / "alpha.toml", out)
    assert again.returncode == 0, again.stderr
    assert all(json.loads(p.read_bytes())["status"] == "ok" for p in job_files(out).values())
    assert all(read_checked(p) is not None for p in [*cache, *oracle])
    # the rebuilt models are the same models: the job files are byte-identical to the first run's
    for replicate, path in job_files(base / "out").items():
        assert job_files(out)[replicate].read_bytes() == path.read_bytes()


def test_stale_temporary_files_are_removed_and_live_ones_kept(out, base):
    folder = next((out / "jobs").iterdir())
    stale, live = folder / ".x.json.k1ll3d.tmp", out / "cache" / ".subject.pt.l1v3.tmp"
    stale.write_text("{")
    live.write_text("partial")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    again = run(base / "alpha.toml", out)
    assert again.returncode == 0 and "0 to run" in again.stderr
    assert not stale.exists() and live.exists()


def test_report_md_is_replaced_by_rename_not_rewritten_in_place(out, base):
    report = out / "report.md"
    inode = report.stat().st_ino
    again = run(base / "alpha.toml", out)
    assert again.returncode == 0
    assert report.stat().st_ino != inode  # a rename; an in-place write keeps the inode and can be torn
    assert report.read_text().strip() == again.stdout.strip()
    assert not list(out.glob(".*.tmp"))


def test_two_suites_share_a_directory_and_each_is_reported(out, base):
    beta = run(base / "beta.toml", out)
    assert beta.returncode == 0, beta.stderr
    assert sorted(p.name for p in (out / "manifests").iterdir()) == ["alpha.json", "beta.json"]

    alpha_report = cowbench("report", out, "--suite", "alpha")
    assert alpha_report.returncode == 0 and "report: alpha" in alpha_report.stdout
    assert "logistic" in alpha_report.stdout and "| ols " not in alpha_report.stdout
    beta_report = cowbench("report", out, "--suite", "beta")
    assert "report: beta" in beta_report.stdout and "| ols " in beta_report.stdout
    assert "logistic" not in beta_report.stdout
    both = cowbench("report", out)
    assert both.returncode == 0 and "report: alpha" in both.stdout and "report: beta" in both.stdout
    assert "No finished jobs" not in both.stdout  # before: the other suite's report, empty, exit 0

    status = cowbench("status", out)
    assert "suite alpha" in status.stdout and "2 planned, 2 ok" in status.stdout
    assert "suite beta" in status.stdout and "1 planned, 1 ok" in status.stdout
    assert cowbench("status", out, "--suite", "beta").stdout.count("planned") == 1
    wrong = cowbench("report", out, "--suite", "gamma")
    assert wrong.returncode == 2 and "suites there: alpha, beta" in wrong.stderr


def test_an_old_single_manifest_is_still_read(out):
    (out / "manifests" / "alpha.json").rename(out / "manifest.json")
    (out / "manifests").rmdir()
    report = cowbench("report", out)
    assert report.returncode == 0 and "report: alpha" in report.stdout and "logistic" in report.stdout
    assert "2 planned, 2 ok" in cowbench("status", out).stdout


# -- the ledger: what a run did not store is named, left out and rerun --------------------------------------


def _alarm(seconds: int = 600):
    """Fail instead of hanging (a FIFO read blocks forever without a writer)."""
    import signal

    def boom(*_):
        raise TimeoutError("blocked on a file that should have been refused")

    signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)


def test_a_forged_file_and_a_hand_edited_metric_are_named_left_out_and_rerun(out, base):
    from cowbench import ledger

    files = job_files(out)
    want = {r: p.read_bytes() for r, p in job_files(base / "out").items()}
    # replicate 1's file is forged: written into the folder by hand, the ledger never saw it
    files[1].unlink()
    (out / "ledger.jsonl").unlink()
    ledger.adopt(out)  # a ledger that holds replicate 0 only
    forged = json.loads(want[1])
    forged["metrics"] = {k: 1.0 for k in forged["metrics"]}  # ranks first with P(best) 1.00 if trusted
    files[1].write_text(json.dumps(forged))
    # replicate 0's metric edited by hand
    edited = json.loads(files[0].read_bytes())
    edited["metrics"]["world_cos"] = 0.999
    files[0].write_text(json.dumps(edited, indent=1, sort_keys=True) + "\n")
    for command in ("status", "report"):
        result = cowbench(command, out)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert f"{files[1]}: is not in the folder's ledger" in result.stderr
        assert f"{files[0]}: differs from the content ledger entry" in result.stderr
    assert "0 ok, 0 failed, 2 not run (2 of them invalid files)" in cowbench("status", out).stdout
    assert replicates_reported(out) == []  # neither is reported
    again = run(base / "alpha.toml", out)
    assert again.returncode == 0 and "2 to run" in again.stderr, again.stderr
    assert {r: p.read_bytes() for r, p in job_files(out).items()} == want
    assert cowbench("ledger", "check", out).returncode == 0


def test_a_fifo_or_dev_zero_as_a_job_file_never_hangs_and_is_rerun(out, base):
    files = job_files(out)
    want = {r: p.read_bytes() for r, p in job_files(base / "out").items()}
    files[0].unlink()
    os.mkfifo(files[0])
    files[1].unlink()
    files[1].symlink_to("/dev/zero")
    users = [out / "notes.tmp", out / ".draft.tmp"]  # a user's temporary files, old: never the harness's to delete
    for p in users:
        p.write_text("mine")
        os.utime(p, (time.time() - 3600, time.time() - 3600))
    _alarm()
    try:
        for command in ("status", "report"):
            result = cowbench(command, out)
            assert "Traceback" not in result.stderr and "not a regular file" in result.stderr, result.stderr
            assert str(files[0]) in result.stderr and str(files[1]) in result.stderr
        again = run(base / "alpha.toml", out)
    finally:
        import signal

        signal.alarm(0)
    assert again.returncode == 0 and "2 to run" in again.stderr, again.stderr
    assert {r: p.read_bytes() for r, p in job_files(out).items()} == want
    assert all(p.read_text() == "mine" for p in users)


def test_a_cache_file_replaced_with_its_checksum_or_failing_to_load_is_rebuilt(out, base):
    import hashlib

    subjects = sorted((out / "cache").glob("*/subject.pt"))
    oracles = sorted((out / "cache").glob("*/oracle.pt"))
    # replicate A's subject replaced by replicate B's, checksum and all: a consistent pair, the wrong model
    shutil.copy(subjects[1], subjects[0])
    shutil.copy(checksum_path(subjects[1]), checksum_path(subjects[0]))
    # an oracle that cannot load (not a torch file) with a matching checksum
    oracles[0].write_bytes(b"not a torch file")
    checksum_path(oracles[0]).write_text(hashlib.sha256(b"not a torch file").hexdigest() + "\n")
    assert read_checked(subjects[0]) is None and read_checked(oracles[0]) is None  # the ledger disagrees
    for path in job_files(out).values():
        path.unlink()
    again = run(base / "alpha.toml", out)
    assert again.returncode == 0, again.stderr
    # rebuilt from the seeds, so the jobs are scored on the right models: byte-identical to the first run
    assert {r: p.read_bytes() for r, p in job_files(out).items()} == \
           {r: p.read_bytes() for r, p in job_files(base / "out").items()}
    assert read_checked(subjects[0]) is not None and read_checked(oracles[0]) is not None


def test_an_older_folder_without_a_ledger_is_warned_about_and_adopted(out):
    from cowbench import ledger

    (out / "ledger.jsonl").unlink()
    status = cowbench("status", out)
    assert status.returncode == 0 and "has no ledger" in status.stderr and "cowbench ledger adopt" in status.stderr
    assert "2 ok" in status.stdout  # read unchecked, as before the ledger
    assert cowbench("ledger", "check", out).returncode == 1
    adopted = cowbench("ledger", "adopt", out)
    assert adopted.returncode == 0 and "adopted 2 job file(s) and 4 cache file(s)" in adopted.stdout, adopted
    check = cowbench("ledger", "check", out)
    assert check.returncode == 0 and f"ledger head `{ledger.head(out)[:16]}`" in check.stdout
    assert cowbench("ledger", "adopt", out).returncode == 2  # once


BIG_DETAILS = b'''
from cowbench.method import Method, MethodOutput, register_method


@register_method
class Chatty(Method):
    """Returns 5 MB of details.

    References
    ----------
    None: a test fixture.
    """

    name = "test_chatty_details"
    family = "robust_training"
    access = frozenset({"pooled"})
    outputs = frozenset({"world"})

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def run(self, task):
        return MethodOutput(world_coef={v: 0.0 for v in task.variables}, details={"log": "x" * 5_000_000})
'''


def test_a_record_over_the_size_limit_fails_its_job_as_unstorable(out, base, tmp_path):
    plugin = tmp_path / "chatty.py"
    plugin.write_bytes(BIG_DETAILS)
    suite = tmp_path / "chatty.toml"
    suite.write_text(ALPHA.replace('"alpha"', '"chatty"').replace('"logistic"', '"test_chatty_details"')
                     .replace("replicates = 2", "replicates = 1"))
    done = cowbench("run", suite, "--out", out, "--launcher", "serial", "--plugins", plugin)
    assert done.returncode == 1, done.stderr
    (record,) = [json.loads(p.read_bytes()) for p in (out / "jobs").glob("*/*.json")
                 if json.loads(p.read_bytes())["spec"]["method"] == "test_chatty_details"]
    assert record["status"] == "failed" and record["reason"] == "unstorable", record.get("error")
    assert "over the limit of 4 MiB" in record["error"]
    assert cowbench("status", out, "--suite", "chatty").returncode == 1  # counted as failed, and small on disk
    assert all(p.stat().st_size < 1_000_000 for p in (out / "jobs").glob("*/*.json"))
