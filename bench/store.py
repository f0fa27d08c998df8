"""The results store: one JSON file per job, written atomically; a file means done only once it validates.

Layout under the output directory::

    manifests/<suite>.json        one per suite: the suite and its planned job ids (suites share a directory)
    manifest.json                 the single manifest of result directories written before there were several
    jobs/<id[:2]>/<id>.json       the job's spec, seeds, status, metrics and outputs (deterministic); ``missing``
                                  maps a metric a guard refused (stored as None) to the reason
    runs/<id[:2]>/<id>.json       wall time, peak memory, host and package versions (varies run to run)
    cache/<replicate id>/         subject and oracle weights shared by the jobs of one replicate, each with a
                                  ``.sha256`` file beside it

Job files hold nothing that varies between runs, so the same suite and root seed give byte-identical
job files whatever the launcher. Nothing is loaded with pickle.

The store trusts only what it can check: a job file counts as done when it is UTF-8 JSON of the current
schema whose spec hashes to its file name (so a valid file copied under another id is not done twice), and
a cache file only when its checksum matches. Anything else is named, counted as not run and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cowbench.ledger as ledger
from cowbench.errors import InputError
from cowbench.record_files import (  # re-exported: the job files' layer below the ledger
    _JOB_ID,
    MAX_RECORD_BYTES,
    SCHEMA_VERSION,  # noqa: F401
    STATUSES,  # noqa: F401
    NotRegularFile,  # noqa: F401
    _is_number,  # noqa: F401
    _reject_constant,  # noqa: F401
    job_path,
    load_record,
    read_json,
    read_regular,
    record_problem,  # noqa: F401
    run_path,  # noqa: F401
)

MANIFEST_DIR = "manifests"
LEGACY_MANIFEST = "manifest.json"
# a temporary file untouched this long belongs to a killed writer: real writes take milliseconds
STALE_TMP_SECONDS = 600.0
_TMP_SUFFIX = ".tmp"
# the harness's own temporary files: ".<target name>.cowbench-<8 random characters of mkstemp>.tmp"; cleanup
# deletes only these (a user's "notes.tmp" in --out is not ours)
_TMP_MARK = ".cowbench-"
_OWN_TMP = re.compile(r"\..+\.cowbench-[a-z0-9_]{8}\.tmp")
# files written before the mark existed (".<name>.<8 random>.tmp"): only recognised inside the harness's folders
_LEGACY_TMP = re.compile(r"\..+\.[a-z0-9_]+\.tmp")
_HARNESS_DIRS = ("jobs", "runs", "cache", MANIFEST_DIR)
# the largest manifest read (a manifest lists 64+4 bytes per job: 16 MiB is about 200,000 jobs)
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import: os.umask can only be read by setting it
# suite names become file names under manifests/ and the default output folder: no separators, no "..", no dot first
_SUITE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


class RecordTooLarge(ValueError):
    """A job or run record larger than `MAX_RECORD_BYTES`: the job fails as ``unstorable`` (a ValueError, which the
    job flow already turns into that failure)."""


def is_record_path(path: Path) -> bool:
    """Whether ``path`` is a job or run record of a results folder (``jobs|runs/<id[:2]>/<id>.json``)."""
    path = Path(path)
    return (path.suffix == ".json" and path.parent.parent.name in ("jobs", "runs")
            and bool(_JOB_ID.fullmatch(path.stem)) and path.parent.name == path.stem[:2])


def write_json_atomic(path: Path, obj: Any, *, max_bytes: int | None = None) -> None:
    """Write ``obj`` as JSON to a temporary file beside ``path``, fsync it, then rename it into place.

    A job or run record (`is_record_path`) larger than `MAX_RECORD_BYTES` (or any file over ``max_bytes``) is
    refused with `RecordTooLarge` before anything is written.
    """
    data = (json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n").encode()
    limit = max_bytes if max_bytes is not None else (MAX_RECORD_BYTES if is_record_path(path) else None)
    if limit is not None and len(data) > limit:
        raise RecordTooLarge(f"the record is {len(data) / 2**20:.1f} MiB, over the limit of {limit / 2**20:g} MiB "
                             "(large details belong in files of the method's own, not in the record)")
    write_bytes_atomic(path, data)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it into place, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{_TMP_MARK}", suffix=_TMP_SUFFIX)
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


def write_text_atomic(path: Path, text: str) -> None:
    """`write_bytes_atomic` for UTF-8 text (reports)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def is_own_tmp(path: Path, out: Path) -> bool:
    """Whether ``path`` (under ``out``) is a temporary file of `write_bytes_atomic`: ``.<name>.cowbench-XXXXXXXX.tmp``
    anywhere, or the older ``.<name>.XXXXXXXX.tmp`` inside the harness's own folders (jobs, runs, cache, manifests)."""
    path = Path(path)
    if _OWN_TMP.fullmatch(path.name):
        return True
    try:
        first = path.relative_to(out).parts[0]
    except (ValueError, IndexError):
        return False
    return first in _HARNESS_DIRS and bool(_LEGACY_TMP.fullmatch(path.name))


def remove_stale_tmp(out: Path, max_age_s: float = STALE_TMP_SECONDS) -> list[Path]:
    """Delete the temporary files of killed writes under ``out``: those not modified for ``max_age_s`` seconds.

    Only the harness's own temporary files are candidates (`is_own_tmp`): a user's ``notes.tmp`` is never
    deleted. A live writer's temporary file is younger (it is written in one go and renamed at once), so it is
    kept. Returns the removed paths.
    """
    out = Path(out)
    if not out.is_dir():
        return []
    now = time.time()
    removed = []
    for tmp in out.rglob(f".*{_TMP_SUFFIX}"):
        if not is_own_tmp(tmp, out):
            continue
        try:
            if tmp.is_file() and not tmp.is_symlink() and now - tmp.stat().st_mtime > max_age_s:
                tmp.unlink()
                removed.append(tmp)
        except OSError:  # renamed or removed by its writer meanwhile: not stale
            continue
    return removed


# -- checked cache files -------------------------------------------------------------------------------


def checksum_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".sha256")


def write_checked(path: Path, data: bytes) -> None:
    """Write ``data`` atomically with its sha256 in ``<path>.sha256`` (written last: its presence vouches)."""
    digest = hashlib.sha256(data).hexdigest()
    write_bytes_atomic(path, data)
    write_bytes_atomic(checksum_path(path), (digest + "\n").encode())
    ledger.record_cache(path, digest)  # in the folder's ledger, when the cache lies in a results folder


def read_checked(path: Path) -> bytes | None:
    """The bytes of ``path`` if its checksum file exists and matches, else None (missing, truncated, altered).

    Only regular files are read (a FIFO or a link to ``/dev/zero`` is None, never a hang). When the results
    folder holding the cache has a ledger (`cowbench.ledger`), the file must also match the checksum the ledger
    recorded when the run wrote it: a cache file replaced together with its ``.sha256`` is None, so it is rebuilt.
    """
    path = Path(path)
    try:
        expected = read_regular(checksum_path(path), 1024).decode("ascii").strip()
        data = read_regular(path, None)
    except (OSError, UnicodeDecodeError):
        return None
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        return None
    return data if ledger.cache_matches(path, digest) else None


# -- job records -------------------------------------------------------------------------------------------


def invalid_message(path: Path, problem: str) -> str:
    """The one line naming an invalid job file and what happens to it."""
    return f"invalid job file {path}: {problem}; counted as not run, the next run reruns it"


def load_trusted(path: Path, ledger_index: Any = None) -> tuple[dict[str, Any] | None, str | None]:
    """`load_record`, then (when ``ledger_index``, a `cowbench.ledger.LedgerIndex`, is given) the ledger check:
    a valid file that the ledger does not list, or whose bytes differ from what it lists, is (None, why)."""
    record, problem = load_record(path)
    if record is None or ledger_index is None:
        return record, problem
    problem = ledger_index.problem(path)
    return (None, problem) if problem else (record, None)


def job_status(out: Path, job_id: str, ledger_index: Any = None) -> str | None:
    """``ok``, ``failed`` or None (not run, or an invalid file, which is treated as not run).

    With ``ledger_index`` (`cowbench.ledger.index`), a file the ledger does not vouch for is not run either.
    """
    path = job_path(out, job_id)
    if not path.is_file():
        return None
    record, _ = load_trusted(path, ledger_index)
    return None if record is None else record["status"]


@dataclass
class StoreScan:
    """Every job file under a results directory: the valid records and the invalid files with the reason.

    ``ledger`` is the folder's `cowbench.ledger.LedgerIndex` (None: the folder has no ledger, nothing was
    checked against one; ``warnings`` then says so).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[tuple[Path, str]] = field(default_factory=list)
    ledger: Any = None
    warnings: list[str] = field(default_factory=list)

    def messages(self) -> list[str]:
        return [*self.warnings, *(invalid_message(path, problem) for path, problem in self.invalid)]


def scan_store(out: Path, *, check_ledger: bool = True) -> StoreScan:
    """Read and validate every job file under ``out``, in file-name order.

    Only regular files of at most `MAX_RECORD_BYTES` are read. When ``out`` has a ledger (`cowbench.ledger`),
    a file it does not list or whose content differs from its entry is invalid (named, left out, rerun).
    """
    scan = StoreScan()
    if check_ledger:
        scan.ledger = ledger.index(out)
        if scan.ledger is None and ledger.has_results(out):
            scan.warnings.append(f"{out} has no ledger: its job files are not checked against one (adopt them "
                                 f"with 'cowbench ledger adopt {out}' after 'cowbench verify')")
        elif scan.ledger is not None and scan.ledger.broken:
            scan.warnings.append(scan.ledger.broken)
    root = Path(out) / "jobs"
    for path in sorted(root.glob("*/*.json")):
        record, problem = load_trusted(path, scan.ledger)
        if record is None:
            scan.invalid.append((path, problem or "invalid"))
        else:
            scan.records.append(record)
    return scan


def iter_records(out: Path) -> Iterator[dict[str, Any]]:
    """Every valid job record under ``out``, in file-name order (invalid files: see `scan_store`)."""
    yield from scan_store(out).records


# -- manifests -----------------------------------------------------------------------------------------


def check_suite_name(name: Any) -> str:
    """A suite name is a plain file name (letters, digits, ``_ . -``, no leading dot, no ``..``): it names files."""
    if not isinstance(name, str) or not _SUITE_NAME.fullmatch(name) or ".." in name:
        raise InputError(f"suite name {name!r} is invalid: allowed 1 to 100 letters, digits, '_', '.', '-', "
                         "not starting with '.' and without '..'")
    return name


def manifest_path(out: Path, suite_name: str) -> Path:
    return Path(out) / MANIFEST_DIR / f"{check_suite_name(suite_name)}.json"


def write_manifest(out: Path, manifest: Mapping[str, Any]) -> Path:
    """Store a suite's manifest as ``manifests/<suite name>.json`` (atomically); other suites' stay."""
    path = manifest_path(out, manifest["suite"]["name"])
    write_json_atomic(path, dict(manifest))
    return path


def read_manifest(path: Path) -> dict[str, Any]:
    """A validated manifest, or `InputError` naming the file and what is wrong with it."""
    def bad(problem: str) -> InputError:
        return InputError(f"manifest {path} is invalid: {problem}")

    try:
        manifest = read_json(path, MAX_MANIFEST_BYTES)
    except UnicodeDecodeError:
        raise bad("not UTF-8 text") from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise bad(f"not valid JSON ({str(exc).splitlines()[0]})") from None
    except OSError as exc:
        raise bad(f"cannot be read ({exc.strerror or exc})") from None
    if not isinstance(manifest, dict):
        raise bad(f"a JSON {type(manifest).__name__}, expected an object with suite, suite_hash and jobs")
    suite = manifest.get("suite")
    if not isinstance(suite, dict) or not isinstance(suite.get("name"), str):
        raise bad("needs a 'suite' object with a 'name'")
    if not isinstance(manifest.get("suite_hash"), str):
        raise bad("needs a 'suite_hash' string")
    scenarios = suite.get("scenarios", [])
    if not isinstance(scenarios, list) or not all(
            isinstance(s, dict) and isinstance(s.get("generator"), str) and isinstance(s.get("knobs", {}), dict)
            for s in scenarios):
        raise bad("'suite.scenarios' must be a list of {generator, version, knobs} objects")
    if not isinstance(suite.get("subject", {}), dict):
        raise bad("'suite.subject' must be an object")
    jobs = manifest.get("jobs")
    if not isinstance(jobs, list) or not all(isinstance(j, str) and _JOB_ID.fullmatch(j) for j in jobs):
        raise bad("'jobs' must be a list of job ids")
    if len(set(jobs)) != len(jobs):
        seen: set[str] = set()
        twice = next(j for j in jobs if j in seen or seen.add(j))
        raise bad(f"'jobs' lists job {twice[:12]} {jobs.count(twice)} times; each planned job is listed once")
    if not isinstance(manifest.get("trials", {}), dict) or not isinstance(manifest.get("selection", []), list):
        raise bad("'trials' must be an object and 'selection' a list")
    skipped = manifest.get("skipped", [])
    if not isinstance(skipped, list) or not all(
            isinstance(s, dict) and isinstance(s.get("method"), str) and isinstance(s.get("scenario"), dict)
            for s in skipped):
        raise bad("'skipped' must be a list of {scenario, method, reason} objects")
    return manifest


def read_manifests(out: Path) -> dict[str, dict[str, Any]]:
    """Suite name -> manifest for every suite planned in ``out`` (an old ``manifest.json`` included)."""
    out = Path(out)
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((out / MANIFEST_DIR).glob("*.json")):
        manifest = read_manifest(path)
        if manifest["suite"]["name"] != path.stem:
            raise InputError(f"manifest {path} is invalid: it plans suite {manifest['suite']['name']!r}")
        found[path.stem] = manifest
    legacy = out / LEGACY_MANIFEST
    if legacy.is_file():
        manifest = read_manifest(legacy)
        found.setdefault(manifest["suite"]["name"], manifest)  # a newer per-suite manifest wins
    return dict(sorted(found.items()))


def select_manifest(out: Path, suite: str | None = None) -> dict[str, Any] | None:
    """The manifest of ``suite`` in ``out`` (the only one when ``suite`` is None); None when there is none.

    Raises `InputError` when ``suite`` is not there, or when ``out`` holds several suites and none was named.
    """
    manifests = read_manifests(out)
    if suite is not None:
        if suite not in manifests:
            there = ", ".join(manifests) or "none"
            raise InputError(f"{str(out)!r} holds no suite {suite!r}; suites there: {there}")
        return manifests[suite]
    if len(manifests) > 1:
        raise InputError(f"{str(out)!r} holds {len(manifests)} suites ({', '.join(manifests)}): name one with --suite")
    return next(iter(manifests.values()), None)
