"""The ledger of a results folder: hash-chained entries, head hash, and what status/report/run trust from it."""

import json
import shutil

import pytest

from cowbench import ledger
from cowbench.errors import InputError
from cowbench.seeds import stable_hash
from cowbench.store import (
    SCHEMA_VERSION,
    job_path,
    job_status,
    read_checked,
    scan_store,
    write_checked,
    write_json_atomic,
    write_manifest,
)


def spec(replicate=0):
    return {"scenario": {"generator": "cow", "version": "1", "knobs": {}}, "replicate": replicate, "root_seed": 0,
            "subject": {}, "method": "logistic", "hparams": {}, "versions": {"method": "1", "scorer": "x"}}


def record(replicate=0, value=0.5):
    s = spec(replicate)
    return {"schema_version": SCHEMA_VERSION, "job_id": stable_hash(s), "spec": s, "status": "ok",
            "metrics": {"world_cos": value}}


def run_stores(out, rec, plugins=()):
    """What a run does: store the record, then append it to the ledger."""
    write_json_atomic(job_path(out, rec["job_id"]), rec)
    return ledger.record_job(out, rec["job_id"], plugins)


@pytest.fixture
def out(tmp_path):
    out = tmp_path / "res"
    write_manifest(out, {"suite": {"name": "s"}, "suite_hash": "0" * 12, "jobs": [], "skipped": []})
    assert ledger.start(out)
    for r in range(3):
        run_stores(out, record(r))
    return out


def test_every_stored_job_is_trusted_and_the_head_names_the_history(out):
    scan = scan_store(out)
    assert len(scan.records) == 3 and scan.invalid == [] and scan.warnings == []
    idx = ledger.index(out)
    assert idx.entries == 4 and not idx.broken and idx.head == ledger.head(out)
    lines = [json.loads(x) for x in (out / "ledger.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in lines] == ["genesis", "job", "job", "job"]
    assert all(e["machine"]["host"] for e in lines)
    assert lines[1]["prev"] == lines[0]["hash"] and lines[-1]["hash"] == idx.head
    assert f"`{idx.head[:16]}` (4 entries)" in ledger.head_line(out)


def test_the_head_changes_with_every_append_and_plugins_are_hashed(out, tmp_path):
    before = ledger.head(out)
    plugin = tmp_path / "p.py"
    plugin.write_text("X = 1\n")
    run_stores(out, record(7), plugins=[str(plugin)])
    assert ledger.head(out) != before
    last = json.loads((out / "ledger.jsonl").read_text().splitlines()[-1])
    import hashlib

    assert last["plugins"] == {str(plugin): hashlib.sha256(b"X = 1\n").hexdigest()}


def test_a_forged_file_and_a_hand_edited_metric_are_named_and_left_out(out):
    forged = record(9, value=1.0)
    write_json_atomic(job_path(out, forged["job_id"]), forged)  # written into the folder, not by a run
    edited = job_path(out, record(1)["job_id"])
    edited.write_text(edited.read_text().replace("0.5", "0.99"))
    scan = scan_store(out)
    assert sorted(r["job_id"] for r in scan.records) == sorted(record(r)["job_id"] for r in (0, 2))
    problems = {p.stem: why for p, why in scan.invalid}
    assert "not in the folder's ledger" in problems[forged["job_id"]]
    assert "differs from the content ledger entry 3 recorded" in problems[record(1)["job_id"]]
    assert job_status(out, forged["job_id"], ledger.index(out)) is None  # so the run reruns both
    assert job_status(out, record(1)["job_id"], ledger.index(out)) is None
    assert job_status(out, record(0)["job_id"], ledger.index(out)) == "ok"


def test_a_file_copied_from_another_folder_is_not_trusted(out, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(out, other)
    extra = record(5)
    run_stores(other, extra)  # a valid, ledgered record of the other folder
    target = job_path(out, extra["job_id"])
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(job_path(other, extra["job_id"]), target)
    assert extra["job_id"] in {p.stem for p, _ in scan_store(out).invalid}


def test_an_edited_ledger_line_breaks_the_chain_there(out):
    lines = (out / "ledger.jsonl").read_text().splitlines()
    entry = json.loads(lines[2])
    entry["sha256"] = "0" * 64
    lines[2] = json.dumps(entry)
    (out / "ledger.jsonl").write_text("\n".join(lines) + "\n")
    scan = scan_store(out)
    assert "broken at line 3" in scan.warnings[0]
    assert len(scan.records) == 1  # only the job recorded before the break is vouched for
    # the way back, after cowbench verify: adopt the files as they are; the broken ledger is kept aside
    assert ledger.adopt(out)[0] == 3
    assert len(scan_store(out).records) == 3 and list(out.glob("ledger.broken-*.jsonl"))


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(out):
    head = ledger.head(out)
    with open(out / "ledger.jsonl", "ab") as fh:
        fh.write(b'{"kind": "job", "pa')  # a kill -9 in the middle of an append
    assert ledger.head(out) == head and not ledger.index(out).broken
    run_stores(out, record(4))
    idx = ledger.index(out)
    assert not idx.broken and idx.entries == 5


def test_a_folder_without_a_ledger_is_read_with_a_warning_and_can_be_adopted(out):
    (out / "ledger.jsonl").unlink()
    scan = scan_store(out)
    assert len(scan.records) == 3
    assert "has no ledger" in scan.warnings[0] and "cowbench ledger adopt" in scan.warnings[0]
    assert ledger.record_job(out, record(0)["job_id"]) is None  # a run does not half-ledger an older folder
    assert not ledger.start(out)
    jobs, caches, left_out = ledger.adopt(out)
    assert (jobs, caches, left_out) == (3, 0, [])
    assert len(scan_store(out).records) == 3 and scan_store(out).warnings == []
    with pytest.raises(InputError, match="already has a ledger"):
        ledger.adopt(out)


def test_adopt_refuses_a_folder_that_is_not_results(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match="holds no manifest"):
        ledger.adopt(tmp_path / "x")


def test_a_cache_file_replaced_along_with_its_checksum_is_rebuilt(out):
    path = out / "cache" / ("c" * 64) / "subject.pt"
    write_checked(path, b"weights")
    assert read_checked(path) == b"weights"
    # replace both the file and its checksum, by hand (not through the run): the ledger still holds the old hash
    import hashlib

    path.write_bytes(b"other weights")
    path.with_name("subject.pt.sha256").write_text(hashlib.sha256(b"other weights").hexdigest() + "\n")
    assert read_checked(path) is None  # not trusted: the job rebuilds it
    write_checked(path, b"rebuilt")  # the rebuild is recorded
    assert read_checked(path) == b"rebuilt"


def test_a_cache_outside_a_results_folder_needs_only_its_checksum(tmp_path):
    path = tmp_path / "cache" / "r" / "subject.pt"
    write_checked(path, b"w")
    assert read_checked(path) == b"w" and not (tmp_path / "ledger.jsonl").exists()
