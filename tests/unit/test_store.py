"""The store: atomic writes, record validation (content must hash to the name), checked cache files,
stale temporary files, and one manifest per suite."""

import json
import os
import time
from pathlib import Path

import pytest

from cowbench.errors import InputError
from cowbench.seeds import stable_hash
from cowbench.store import (
    MAX_RECORD_BYTES,
    SCHEMA_VERSION,
    RecordTooLarge,
    check_suite_name,
    checksum_path,
    iter_records,
    job_path,
    job_status,
    read_checked,
    read_manifests,
    remove_stale_tmp,
    scan_store,
    select_manifest,
    write_checked,
    write_json_atomic,
    write_manifest,
)


def test_atomic_write_leaves_no_temporary_files_and_replaces(tmp_path):
    path = tmp_path / "a" / "b.json"
    write_json_atomic(path, {"x": 1})
    write_json_atomic(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2}
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "b.json"
    write_json_atomic(path, {"x": 1})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"x": float("nan")})  # NaN is never written
    assert json.loads(path.read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]


# -- job records ----------------------------------------------------------------------------------------


def spec(replicate=0, method="logistic"):
    return {"scenario": {"generator": "cow", "version": "1", "knobs": {}}, "replicate": replicate, "root_seed": 0,
            "subject": {}, "method": method, "hparams": {}, "versions": {"method": "1", "scorer": "x"}}


def record(replicate=0, status="ok", **changes):
    s = spec(replicate)
    rec = {"schema_version": SCHEMA_VERSION, "job_id": stable_hash(s), "spec": s, "status": status,
           "metrics": {"world_cos": 0.5, "detect_auroc": None}}
    rec.update(changes)
    return rec


def store(tmp_path, rec, job_id=None):
    job_id = job_id or rec["job_id"]
    write_json_atomic(job_path(tmp_path, job_id), rec)
    return job_id


def test_valid_ok_and_failed_records_count_as_done(tmp_path):
    ok = store(tmp_path, record(0))
    failed_rec = record(1, status="failed", error="RuntimeError: boom")
    del failed_rec["metrics"]  # a failed job has no metrics
    failed = store(tmp_path, failed_rec)
    assert job_status(tmp_path, ok) == "ok" and job_status(tmp_path, failed) == "failed"
    assert job_status(tmp_path, stable_hash(spec(2))) is None  # never run
    assert sorted(r["job_id"] for r in iter_records(tmp_path)) == sorted([ok, failed])
    assert scan_store(tmp_path).invalid == []


def _copy_under_other_id(tmp_path):
    store(tmp_path, record(0))
    return store(tmp_path, record(0), job_id=stable_hash(spec(1)))  # replicate 0's file named as replicate 1's


BAD_RECORDS = {
    "copied_under_another_id": (lambda p: _copy_under_other_id(p), "not to its name"),
    "schema_version_2": (lambda p: store(p, record(schema_version=2)), "schema_version is 2"),
    "unknown_status": (lambda p: store(p, record(status="done")), "status is 'done'"),
    "json_list": (lambda p: _raw(p, b"[1, 2]"), "JSON list"),
    "missing_metrics": (lambda p: store(p, {k: v for k, v in record().items() if k != "metrics"}), "metrics"),
    "missing_spec": (lambda p: store(p, {k: v for k, v in record().items() if k != "spec"},
                                     job_id=record()["job_id"]), "spec"),
    "string_metric": (lambda p: store(p, record(metrics={"world_cos": "0.5"})), "world_cos"),
    "bool_metric": (lambda p: store(p, record(metrics={"world_cos": True})), "world_cos"),
    "nan_metric": (lambda p: _raw(p, json.dumps(record()).replace("0.5", "NaN").encode()), "NaN"),
    "not_utf8": (lambda p: _raw(p, b'{"status": "\xff\xfe"}'), "UTF-8"),
    "truncated": (lambda p: _raw(p, json.dumps(record()).encode()[:40]), "not valid JSON"),
    "job_id_field_differs": (lambda p: store(p, record(job_id="ab" * 32), job_id=record()["job_id"]), "job_id"),
    "spec_without_method": (lambda p: _raw_spec(p, {k: v for k, v in spec().items() if k != "method"}), "spec"),
    "metrics_a_list": (lambda p: store(p, record(metrics=[1, 2])), "metrics"),
    "method_info_a_list": (lambda p: store(p, record(method_info=["pooled"])), "method_info"),
}


def _raw(tmp_path, data):
    job_id = record()["job_id"]
    path = job_path(tmp_path, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return job_id


def _raw_spec(tmp_path, s):
    rec = record()
    rec["spec"], rec["job_id"] = s, stable_hash(s)
    return store(tmp_path, rec)


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_an_invalid_record_is_named_in_one_line_and_counts_as_not_run(tmp_path, case):
    make, reason = BAD_RECORDS[case]
    job_id = make(tmp_path)
    assert job_status(tmp_path, job_id) is None  # so the next run reruns it
    scan = scan_store(tmp_path)
    assert job_id not in {r["job_id"] for r in scan.records}
    (path, problem), = [(p, why) for p, why in scan.invalid if p.stem == job_id]
    assert path == job_path(tmp_path, job_id)
    assert reason in problem
    (message,) = [m for m in scan.messages() if job_id in m]
    assert "\n" not in message and str(path) in message


def test_a_copied_file_is_not_counted_twice(tmp_path):
    # before: the copy was trusted and replicate 0 appeared twice (n=2 from one job)
    _copy_under_other_id(tmp_path)
    assert [r["spec"]["replicate"] for r in iter_records(tmp_path)] == [0]


# -- checked cache files ------------------------------------------------------------------------------------


def test_checked_files_round_trip_and_refuse_truncation_alteration_and_a_missing_checksum(tmp_path):
    path = tmp_path / "cache" / "subject.pt"
    data = os.urandom(4096)
    write_checked(path, data)
    assert read_checked(path) == data
    path.write_bytes(data[:1000])  # a killed copy or a full disk
    assert read_checked(path) is None
    write_checked(path, data)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped
    assert read_checked(path) is None
    write_checked(path, data)
    checksum_path(path).unlink()  # a cache from before checksums: unverifiable, so rebuilt
    assert read_checked(path) is None
    assert read_checked(tmp_path / "nothing.pt") is None


# -- stale temporary files -----------------------------------------------------------------------------------


def test_only_old_temporary_files_are_removed(tmp_path):
    folder = tmp_path / "jobs" / "ab"
    folder.mkdir(parents=True)
    old, young, kept = folder / ".x.json.k1.tmp", folder / ".y.json.k2.tmp", folder / "z.json"
    for p in (old, young, kept):
        p.write_text("{")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    os.utime(kept, (an_hour_ago, an_hour_ago))
    assert remove_stale_tmp(tmp_path, max_age_s=600) == [old]
    assert not old.exists() and young.exists() and kept.exists()
    assert remove_stale_tmp(tmp_path / "missing") == []


def test_stale_cleanup_deletes_only_the_harness_own_temporary_files(tmp_path):
    # the harness's pattern anywhere; a user's .tmp files (even dot-files, even old) are never touched
    ours = tmp_path / "report" / ".report.md.cowbench-ab12cd_3.tmp"
    theirs = [tmp_path / "notes.tmp", tmp_path / ".notes.tmp", tmp_path / ".draft.v2.tmp",
              tmp_path / "mine" / ".x.json.k1.tmp", tmp_path / "jobs" / "ab" / "notes.tmp"]
    for p in (ours, *theirs):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
        os.utime(p, (time.time() - 3600, time.time() - 3600))
    assert remove_stale_tmp(tmp_path, max_age_s=600) == [ours]
    assert all(p.exists() for p in theirs)


def test_the_writer_s_temporary_files_carry_the_harness_pattern(tmp_path, monkeypatch):
    import tempfile

    from cowbench.store import is_own_tmp

    made = []
    real = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp", lambda **kw: made.append(real(**kw)) or made[-1])
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    assert made and is_own_tmp(Path(made[0][1]), tmp_path)


# -- manifests -------------------------------------------------------------------------------------------


def manifest(name, jobs=()):
    return {"suite": {"name": name}, "suite_hash": "0" * 12, "jobs": list(jobs), "skipped": []}


def test_two_suites_keep_two_manifests_and_one_is_chosen_by_name(tmp_path):
    write_manifest(tmp_path, manifest("alpha", ["a" * 64]))
    write_manifest(tmp_path, manifest("beta", ["b" * 64]))
    assert list(read_manifests(tmp_path)) == ["alpha", "beta"]
    assert select_manifest(tmp_path, "beta")["jobs"] == ["b" * 64]
    with pytest.raises(InputError, match=r"2 suites \(alpha, beta\): name one with --suite"):
        select_manifest(tmp_path)
    with pytest.raises(InputError, match="no suite 'gamma'; suites there: alpha, beta"):
        select_manifest(tmp_path, "gamma")


def test_an_old_single_manifest_is_still_read_and_a_newer_one_wins(tmp_path):
    write_json_atomic(tmp_path / "manifest.json", manifest("standard", ["c" * 64]))
    assert select_manifest(tmp_path)["jobs"] == ["c" * 64]
    assert select_manifest(tmp_path, "standard")["jobs"] == ["c" * 64]
    write_manifest(tmp_path, manifest("standard", ["d" * 64]))
    assert select_manifest(tmp_path)["jobs"] == ["d" * 64]
    assert select_manifest(tmp_path / "empty_dir_is_not_there") is None


BAD_MANIFESTS = {
    "empty_object": (b"{}", "'suite' object"),
    "list": (b"[1, 2]", "JSON list"),
    "not_json": (b"{", "not valid JSON"),
    "not_utf8": (b"\xff\xfe{}", "not UTF-8"),
    "jobs_not_ids": (json.dumps(manifest("m", ["x"])).encode(), "list of job ids"),
    "no_hash": (json.dumps({"suite": {"name": "m"}, "jobs": []}).encode(), "suite_hash"),
    "skipped_not_list": (json.dumps({**manifest("m"), "skipped": 3}).encode(), "skipped"),
    "one_job_200000_times": (json.dumps(manifest("m", ["a" * 64] * 200_000)).encode(),
                             "lists job aaaaaaaaaaaa 200000 times"),
    "scenarios_a_string": (json.dumps({**manifest("m"), "suite": {"name": "m", "scenarios": "cow"}}).encode(),
                           "'suite.scenarios' must be a list"),
    "scenario_without_generator": (json.dumps({**manifest("m"), "suite": {"name": "m", "scenarios": [{}]}}).encode(),
                                   "'suite.scenarios' must be a list"),
    "nested_50000_deep": (b'{"suite": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "nested too deeply"),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_a_bad_manifest_raises_one_line_naming_the_file(tmp_path, case):
    data, reason = BAD_MANIFESTS[case]
    (tmp_path / "manifest.json").write_bytes(data)
    with pytest.raises(InputError) as info:
        select_manifest(tmp_path)
    assert reason in str(info.value) and "manifest.json" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["/abs/path", "../../x", "a/b", ".hidden", "", "a..b", "x" * 101, 3, None,
                                  "with space", "tab\t"])
def test_suite_names_that_would_leave_the_results_folder_are_refused(name):
    with pytest.raises(InputError, match="suite name"):
        check_suite_name(name)


@pytest.mark.parametrize("name", ["smoke", "standard", "my-suite_2", "v1.2", "_x"])
def test_plain_suite_names_are_accepted(name):
    assert check_suite_name(name) == name


def test_text_outputs_are_replaced_by_rename(tmp_path):
    from cowbench.store import write_text_atomic

    path = tmp_path / "report.md"
    write_text_atomic(path, "first\n")
    inode = path.stat().st_ino
    write_text_atomic(path, "second ✓\n")
    assert path.read_text(encoding="utf-8") == "second ✓\n"
    assert path.stat().st_ino != inode  # a new file renamed over the old one, never a torn rewrite
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


# -- hostile files: FIFOs, devices, oversized records, deep nesting, duplicated job ids ---------------------


@pytest.fixture
def alarm():
    """Fail instead of hanging: a FIFO opened for reading blocks forever without a writer."""
    import signal

    def boom(*_):
        raise TimeoutError("the store blocked on a file it should have refused")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _hostile(tmp_path, kind):
    job_id = record()["job_id"]
    path = job_path(tmp_path, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    elif kind == "oversized":
        path.write_bytes(b" " * (MAX_RECORD_BYTES + 1))
    return job_id, path


@pytest.mark.parametrize("kind,reason", [("fifo", "not a regular file"), ("dev_zero", "not a regular file"),
                                         ("folder", "not a regular file"), ("oversized", "over the limit")])
def test_a_job_file_that_is_not_a_small_regular_file_is_named_and_never_read(tmp_path, alarm, kind, reason):
    job_id, path = _hostile(tmp_path, kind)
    store(tmp_path, record(1))  # a good neighbour is still read
    scan = scan_store(tmp_path)
    assert [r["job_id"] for r in scan.records] == [record(1)["job_id"]]
    ((named, problem),) = scan.invalid
    assert named == path and reason in problem
    assert job_status(tmp_path, job_id) is None


def test_a_cache_file_that_is_a_fifo_or_dev_zero_is_not_trusted(tmp_path, alarm):
    fifo, zero = tmp_path / "a.pt", tmp_path / "b.pt"
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    for p in (fifo, zero):
        checksum_path(p).write_text("0" * 64)
        assert read_checked(p) is None


def test_a_record_over_the_size_limit_is_refused_before_anything_is_written(tmp_path):
    rec = record(details="x" * (MAX_RECORD_BYTES + 10))
    with pytest.raises(RecordTooLarge, match="over the limit of 4 MiB") as info:
        store(tmp_path, rec)
    assert isinstance(info.value, ValueError)  # the job flow turns a ValueError at write time into `unstorable`
    assert not job_path(tmp_path, rec["job_id"]).exists() and not any(tmp_path.rglob("*.tmp"))
    write_json_atomic(tmp_path / "report.json", rec)  # other files (reports) are not records: no limit


def test_a_deeply_nested_job_file_is_named_not_a_crash(tmp_path):
    job_id = _raw(tmp_path, b"[" * 100_000 + b"]" * 100_000)
    (path, problem), = scan_store(tmp_path).invalid
    assert path.stem == job_id and "nested too deeply" in problem
