"""The results store: one JSON file per job, written atomically; its presence means the job is done.

Layout under the output directory::

    manifest.json                 the suite and its planned job ids
    jobs/<id[:2]>/<id>.json       the job's spec, seeds, status, metrics and outputs (deterministic)
    runs/<id[:2]>/<id>.json       wall time, peak memory, host and package versions (varies run to run)
    cache/<replicate id>/         subject and oracle weights shared by the jobs of one replicate

Job files hold nothing that varies between runs, so the same suite and root seed give byte-identical
job files whatever the launcher. Nothing is loaded with pickle.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import: os.umask can only be read by setting it


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to a temporary file beside ``path``, fsync it, then rename it into place."""
    write_bytes_atomic(path, (json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n").encode())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def job_path(out: Path, job_id: str) -> Path:
    return Path(out) / "jobs" / job_id[:2] / f"{job_id}.json"


def run_path(out: Path, job_id: str) -> Path:
    return Path(out) / "runs" / job_id[:2] / f"{job_id}.json"


def read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def job_status(out: Path, job_id: str) -> str | None:
    """``ok``, ``failed`` or None (not run, or an unreadable file, which is treated as not run)."""
    path = job_path(out, job_id)
    if not path.is_file():
        return None
    try:
        return read_json(path).get("status")
    except (OSError, json.JSONDecodeError):
        return None


def iter_records(out: Path) -> Iterator[dict[str, Any]]:
    """Every readable job record under ``out``, in file-name order."""
    root = Path(out) / "jobs"
    for path in sorted(root.glob("*/*.json")):
        try:
            record = read_json(path)
        except (OSError, json.JSONDecodeError):
            continue
        if record.get("schema_version") == SCHEMA_VERSION:
            yield record
