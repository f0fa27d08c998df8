import json

import pytest

from cowbench.store import SCHEMA_VERSION, iter_records, job_path, job_status, write_json_atomic


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


def test_status_and_records_skip_unreadable_files(tmp_path):
    good, bad = "ab" + "0" * 62, "ab" + "1" * 62
    write_json_atomic(job_path(tmp_path, good), {"schema_version": SCHEMA_VERSION, "job_id": good, "status": "ok"})
    job_path(tmp_path, bad).write_text("{truncated")
    assert job_status(tmp_path, good) == "ok"
    assert job_status(tmp_path, bad) is None  # treated as not run: it will be rerun
    assert job_status(tmp_path, "cd" + "2" * 62) is None
    assert [r["job_id"] for r in iter_records(tmp_path)] == [good]
