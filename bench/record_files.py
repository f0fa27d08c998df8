"""Job files on disk: their paths, safe reads of regular files, and the validation of a job record.

The bottom of the results store (`cowbench.store`), below the ledger (`cowbench.ledger`), which reads job files
to vouch for them: a record is valid when it is UTF-8 JSON of the current schema whose spec hashes to its file
name. `cowbench.store` re-exports everything here.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from cowbench.seeds import stable_hash

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed")
# the largest job or run record stored (and read): the largest published record is 36 kB, so 4 MiB leaves room
# for any honest traceback or details while a 200 MB string fails its job as ``unstorable`` instead of slowing
# every later `status` and `report`
MAX_RECORD_BYTES = 4 * 1024 * 1024
_JOB_ID = re.compile(r"[0-9a-f]{64}")


def job_path(out: Path, job_id: str) -> Path:
    return Path(out) / "jobs" / job_id[:2] / f"{job_id}.json"


def run_path(out: Path, job_id: str) -> Path:
    return Path(out) / "runs" / job_id[:2] / f"{job_id}.json"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"holds {name}, which is not JSON")


class NotRegularFile(OSError):
    """A path that is not a regular file (a FIFO, a device, a folder) or is over the size limit: never read."""


def read_regular(path: Path, max_bytes: int | None) -> bytes:
    """The bytes of ``path`` if it is a regular file (symbolic links followed) of at most ``max_bytes`` bytes.

    Opened without blocking and checked before reading, so a FIFO, ``/dev/zero`` or a huge file raises
    `NotRegularFile` at once instead of hanging or exhausting memory.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file (a FIFO, device or folder is never read)",
                                 str(path))
        if max_bytes is not None and st.st_size > max_bytes:
            raise NotRegularFile(errno.EFBIG, f"{st.st_size} bytes, over the limit of {max_bytes} bytes", str(path))
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:  # grew while being read
                raise NotRegularFile(errno.EFBIG, f"over the limit of {max_bytes} bytes", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_json(path: Path, max_bytes: int | None = MAX_RECORD_BYTES) -> Any:
    """Parse a UTF-8 JSON file strictly (NaN and Infinity are refused, as the writer never produces them).

    Only a regular file of at most ``max_bytes`` is read (`read_regular`); JSON nested too deep to parse raises
    `ValueError`, as malformed JSON does.
    """
    text = read_regular(Path(path), max_bytes).decode("utf-8")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply to parse") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def record_problem(record: Any, job_id: str) -> str | None:
    """Why ``record`` is not a valid job record stored under ``job_id``, or None if it is valid."""
    if not isinstance(record, dict):
        return f"holds a JSON {type(record).__name__}, not an object"
    if record.get("schema_version") != SCHEMA_VERSION:
        return f"schema_version is {record.get('schema_version')!r}, this cowbench reads {SCHEMA_VERSION}"
    if record.get("status") not in STATUSES:
        return f"status is {record.get('status')!r}, not one of {', '.join(STATUSES)}"
    spec = record.get("spec")
    if not isinstance(spec, dict):
        return "has no 'spec' object"
    scenario = spec.get("scenario")
    if (not isinstance(scenario, dict) or not isinstance(scenario.get("generator"), str)
            or not isinstance(scenario.get("knobs"), dict) or not isinstance(spec.get("method"), str)
            or not isinstance(spec.get("hparams"), dict) or isinstance(spec.get("replicate"), bool)
            or not isinstance(spec.get("replicate"), int)):
        return "its spec lacks a scenario, method, hparams or replicate of the right type"
    try:
        content_id = stable_hash(spec)
    except (TypeError, ValueError) as exc:
        return f"its spec cannot be hashed ({exc})"
    if content_id != job_id:
        return f"its spec hashes to job {content_id[:12]}, not to its name: a copy of another job's file"
    if record.get("job_id") != job_id:
        return f"its job_id {str(record.get('job_id'))[:12]!r} differs from its name"
    info = record.get("method_info")
    if info is not None and (not isinstance(info, dict) or not isinstance(info.get("access", []), list)):
        return "its method_info is not an object with an access list"
    if record["status"] == "ok":
        metrics = record.get("metrics")
        if not isinstance(metrics, dict):
            return "is ok but has no 'metrics' object"
        bad = sorted(k for k, v in metrics.items() if v is not None and not _is_number(v))
        if bad:
            return f"metric(s) {', '.join(bad)} are neither finite numbers nor null"
    elif not isinstance(record.get("error", ""), str):
        return "its error is not a string"
    return None


def load_record(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) for a valid job file, (None, why) for an unreadable or invalid one."""
    path = Path(path)
    job_id = path.stem
    if not _JOB_ID.fullmatch(job_id):
        return None, "its name is not a job id (64 hex digits)"
    try:
        record = read_json(path)
    except UnicodeDecodeError:
        return None, "is not UTF-8 text"
    except (json.JSONDecodeError, ValueError) as exc:
        return None, f"is not valid JSON ({str(exc).splitlines()[0]})"
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    problem = record_problem(record, job_id)
    return (None, problem) if problem else (record, None)
