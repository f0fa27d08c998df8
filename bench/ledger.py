"""The ledger of a results folder: which run stored which file, hash-chained, so a head hash names the history.

``<out>/ledger.jsonl`` holds one JSON object per line, appended under ``<out>/ledger.lock`` by the run that
stored the file it names::

    {"n": 7, "kind": "job", "path": "jobs/3f/3f....json", "job_id": "3f...", "sha256": "<the file's sha256>",
     "time": 1796000000.0, "machine": {"host": ..., "cpu": ..., "python": ...}, "plugins": {"x.py": "<sha256>"},
     "prev": "<hash of entry 6>", "hash": "<sha256 of prev and this entry's canonical JSON without hash>"}

Kinds: ``genesis`` (the first line, written when a run starts in a folder without results), ``job`` (a job
record the run stored), ``cache`` (a subject or oracle weight file the run trained) and ``adopt`` (a file of
an older folder taken in by ``cowbench ledger adopt``). The last entry's ``hash`` (`head`) identifies the whole
history: two folders with the same head hold the same stored files, and any change to an earlier line changes
every later hash.

What it protects against: accidents and stray edits (a metric edited by hand, a job file copied in from another
folder or written by another tool, a cache file replaced along with its ``.sha256``). `status`, `report` and
`run` name such a file, leave it out and rerun it. What it does not: a forger with write access to the folder
can rewrite the ledger too (it holds no secret); that is what ``cowbench verify`` answers, by rerunning the jobs.
A folder with no ledger (results written before it existed) is read unchecked, with a warning.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cowbench.errors import InputError
from cowbench.fingerprint import _cpuinfo
from cowbench.locks import hold
from cowbench.record_files import MAX_RECORD_BYTES, job_path, load_record, read_regular

LEDGER = "ledger.jsonl"
LOCK = "ledger.lock"
GENESIS_PREV = "0" * 64
# a ledger line is a few hundred bytes; the tail read to find the head is this long
_TAIL_BYTES = 1 << 16
_MAX_LEDGER_BYTES = 1 << 30


def ledger_path(out: Path) -> Path:
    return Path(out) / LEDGER


def _entry_hash(entry: Mapping[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def file_sha256(path: Path, max_bytes: int | None = None) -> str:
    return hashlib.sha256(read_regular(Path(path), max_bytes)).hexdigest()


@functools.lru_cache(maxsize=1)
def machine() -> dict[str, str]:
    """A light machine fingerprint (no torch import: engine workers append too): host, CPU model, Python."""
    model, _ = _cpuinfo()
    return {"host": platform.node(), "cpu": model or platform.processor() or platform.machine(),
            "python": platform.python_version()}


@functools.lru_cache(maxsize=64)
def _plugin_hash(spec: str) -> str:
    """sha256 of a plugin ``.py`` file, or of the file a plugin module was loaded from ("?" if none)."""
    try:
        if spec.endswith(".py"):
            return file_sha256(Path(spec))
        import importlib.util

        found = importlib.util.find_spec(spec)
        origin = getattr(found, "origin", None)
        return file_sha256(Path(origin)) if origin and os.path.isfile(origin) else "?"
    except (OSError, ImportError, ValueError):
        return "?"


def plugin_hashes(plugins: Sequence[str]) -> dict[str, str]:
    return {p: _plugin_hash(p) for p in plugins}


def has_results(out: Path) -> bool:
    """Whether ``out`` holds any job file (a folder with results but no ledger predates the ledger)."""
    return any((Path(out) / "jobs").glob("*/*.json"))


# -- reading ---------------------------------------------------------------------------------------------


@dataclass
class LedgerIndex:
    """A parsed, chain-checked ledger: the latest sha256 the ledger holds for each stored path.

    ``broken`` names the first line whose chain does not hold (edited, reordered, removed lines); it and the
    lines after it vouch for nothing.
    """

    out: Path
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # relative path -> (sha256, entry number)
    head: str = GENESIS_PREV
    entries: int = 0
    broken: str = ""

    def problem(self, path: Path) -> str | None:
        """Why the ledger does not vouch for the file at ``path``, or None if it does."""
        path = Path(path)
        try:  # both made absolute (not resolved: a symlink is judged as what it is): a relative --out must match
            rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(self.out)).as_posix()
        except ValueError:
            return "lies outside the results folder of its ledger"
        held = self.files.get(rel)
        if held is None:
            return ("is not in the folder's ledger (no cowbench run stored it here: copied in, forged or written "
                    "by hand)")
        try:
            digest = file_sha256(path)
        except OSError as exc:
            return f"cannot be read ({exc.strerror or exc})"
        if digest != held[0]:
            return f"differs from the content ledger entry {held[1]} recorded (edited after the run stored it)"
        return None


def _read_lines(out: Path) -> list[bytes] | None:
    try:
        data = read_regular(ledger_path(out), _MAX_LEDGER_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"the ledger {ledger_path(out)} cannot be read: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        lines.pop()  # no newline after the last line: an append cut short by a crash; it vouches for nothing
    return lines


def index(out: Path) -> LedgerIndex | None:
    """The ledger of ``out`` checked link by link, or None when ``out`` has no ledger."""
    out = Path(out).absolute()
    lines = _read_lines(out)
    if lines is None:
        return None
    idx = LedgerIndex(out)
    prev = GENESIS_PREV
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
            ok = (isinstance(entry, dict) and entry.get("prev") == prev and entry.get("n") == number
                  and entry.get("hash") == _entry_hash(entry))
        except (ValueError, RecursionError):
            ok = False
        if not ok:
            idx.broken = (f"the ledger {ledger_path(out)} is broken at line {number} (edited, reordered or lines "
                          "removed): files recorded from there on are not vouched for and are rerun")
            break
        idx.entries, idx.head = number, entry["hash"]
        if isinstance(entry.get("path"), str) and isinstance(entry.get("sha256"), str):
            idx.files[entry["path"]] = (entry["sha256"], number)
        prev = entry["hash"]
    return idx


def head(out: Path) -> str | None:
    """The head hash of ``out``'s ledger (its last valid entry's hash), or None when it has no ledger.

    For report headers: two folders with the same head hold the same history of stored files.
    """
    idx = index(out)
    return None if idx is None else idx.head


def head_line(out: Path) -> str:
    """One line for a report header: ``ledger head `1a2b3c4d5e6f7a8b` (42 entries)``, or why there is none."""
    idx = index(out)
    if idx is None:
        return "ledger: none (results written before the ledger, not checked against one)"
    broken = "; BROKEN, see cowbench status" if idx.broken else ""
    return f"ledger head `{idx.head[:16]}` ({idx.entries} entries{broken})"


# -- writing ---------------------------------------------------------------------------------------------


def _last_hash(fh: Any) -> tuple[str, int]:
    """(hash, number) of the last complete line of the ledger open in ``fh``; a torn last line is cut off."""
    size = fh.seek(0, os.SEEK_END)
    if size == 0:
        return GENESIS_PREV, 0
    start = max(0, size - _TAIL_BYTES)
    fh.seek(start)
    tail = fh.read()
    if not tail.endswith(b"\n"):  # an append cut short by a crash: remove it before chaining on
        cut = tail.rfind(b"\n")
        fh.truncate(start + cut + 1 if cut >= 0 else start)
        tail = tail[:cut + 1] if cut >= 0 else b""
        if not tail and start == 0:
            return GENESIS_PREV, 0
    lines = tail.rstrip(b"\n").split(b"\n")
    try:
        last = json.loads(lines[-1])
        return str(last["hash"]), int(last["n"])
    except (ValueError, KeyError, TypeError, IndexError):
        # an unreadable last line: chain on its bytes, so `index` reports the break instead of hiding it
        return hashlib.sha256(lines[-1]).hexdigest(), -1


def _append(out: Path, entries: Iterable[dict[str, Any]], *, create: bool = False) -> str | None:
    """Append ``entries`` to ``out``'s ledger under its lock; returns the new head, or None when nothing was
    written: without a ledger (an unadopted older folder is not half-ledgered), or with ``create`` (begin a new
    ledger) when one exists already."""
    out = Path(out)
    path = ledger_path(out)
    with hold(out / LOCK, wait=None):
        if path.exists() == create:  # create: only a new ledger (a concurrent run may have begun it)
            return None
        with open(path, "ab+") as fh:
            prev, number = _last_hash(fh)
            if number < 0:  # the chain is already broken: number on past the lines there are
                fh.seek(0)
                number = sum(1 for _ in fh)
            lines = []
            for entry in entries:
                number += 1
                entry = {**entry, "n": number, "prev": prev}
                entry["hash"] = prev = _entry_hash(entry)
                lines.append(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
            fh.seek(0, os.SEEK_END)
            fh.write("".join(lines).encode())
            fh.flush()
            os.fsync(fh.fileno())
    return prev


def _entry(kind: str, rel: str, digest: str, plugins: Sequence[str] = (), **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "path": rel, "sha256": digest, "time": round(time.time(), 3), "machine": machine(),
            "plugins": plugin_hashes(plugins), **extra}


def start(out: Path, plugins: Sequence[str] = ()) -> bool:
    """Begin the ledger of a run's folder: a genesis line when ``out`` has neither a ledger nor results.

    Returns whether ``out`` has a ledger now. A folder with results and no ledger is left alone (a warning says
    so): `adopt` takes its files in after ``cowbench verify``.
    """
    out = Path(out)
    if ledger_path(out).exists():
        return True
    if has_results(out):
        return False
    out.mkdir(parents=True, exist_ok=True)
    _append(out, [{"kind": "genesis", "time": round(time.time(), 3), "machine": machine(),
                   "plugins": plugin_hashes(plugins)}], create=True)
    return True


def record_job(out: Path, job_id: str, plugins: Sequence[str] = ()) -> str | None:
    """Append the job file of ``job_id`` as it is now (its sha256); None if ``out`` has no ledger or no such file.

    Called by the process that ran the job, right after the record was stored.
    """
    path = job_path(out, job_id)
    try:
        digest = file_sha256(path, MAX_RECORD_BYTES)
    except OSError:
        return None
    rel = path.relative_to(Path(out)).as_posix()
    return _append(out, [_entry("job", rel, digest, plugins, job_id=job_id)])


def _results_folder_of_cache(path: Path) -> Path | None:
    """``<out>`` for a cache file ``<out>/cache/<replicate id>/<name>``, when ``<out>`` has a ledger."""
    path = Path(path).absolute()
    if path.parent.parent.name != "cache":
        return None
    out = path.parent.parent.parent
    return out if ledger_path(out).exists() else None


def record_cache(path: Path, digest: str) -> None:
    """Append a cache file the run just wrote (no-op outside a ledgered results folder)."""
    out = _results_folder_of_cache(path)
    if out is not None:
        _append(out, [_entry("cache", Path(path).absolute().relative_to(out).as_posix(), digest)])


def cache_matches(path: Path, digest: str) -> bool:
    """Whether a cache file with sha256 ``digest`` is the one the ledger recorded (True outside a ledger)."""
    out = _results_folder_of_cache(path)
    if out is None:
        return True
    idx = index(out)
    held = None if idx is None else idx.files.get(Path(path).absolute().relative_to(out).as_posix())
    return idx is None or (held is not None and held[0] == digest)


def adopt(out: Path) -> tuple[int, int, list[str]]:
    """Start the ledger of a folder written before it existed: every valid job file and checked cache file.

    Run ``cowbench verify`` first: adopting vouches for the files as they are. Returns (job files adopted, cache
    files adopted, one line per file left out). `InputError` if ``out`` already has a sound ledger or no
    results; a broken ledger (edited mid-file) is set aside as ``ledger.broken-<time>.jsonl`` and replaced.
    """
    out = Path(out).absolute()
    if not out.is_dir():
        raise InputError(f"results directory {str(out)!r} does not exist or is not a directory")
    if ledger_path(out).exists():
        idx = index(out)
        if idx is None or not idx.broken:
            raise InputError(f"{str(out)!r} already has a ledger; files it does not list are rerun by "
                             "'cowbench run'")
        # a ledger broken by an edit vouches for nothing after the break, forever: set it aside, start anew
        ledger_path(out).rename(out / f"ledger.broken-{int(time.time())}.jsonl")
    if not (out / "manifests").is_dir() and not (out / "manifest.json").is_file():
        raise InputError(f"{str(out)!r} holds no manifest: not a cowbench results directory")
    entries, left_out = [], []
    for path in sorted((out / "jobs").glob("*/*.json")):
        record, problem = load_record(path)
        if record is None:
            left_out.append(f"{path}: {problem}")
            continue
        entries.append(_entry("adopt", path.relative_to(out).as_posix(), file_sha256(path), job_id=path.stem))
    jobs = len(entries)
    for check in sorted((out / "cache").glob("*/*.sha256")):
        path = check.with_suffix("")
        try:
            expected = read_regular(check, 1024).decode("ascii").strip()
            digest = file_sha256(path)
        except (OSError, UnicodeDecodeError):
            left_out.append(f"{path}: unreadable or missing")
            continue
        if digest != expected:
            left_out.append(f"{path}: does not match its checksum")
            continue
        entries.append(_entry("adopt", path.relative_to(out).as_posix(), digest))
    _append(out, [{"kind": "genesis", "time": round(time.time(), 3), "machine": machine(), "plugins": {},
                   "adopted": True}, *entries], create=True)
    return jobs, len(entries) - jobs, left_out
