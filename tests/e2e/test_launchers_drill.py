"""The kill -9 drill: kill ``cowbench run`` at random moments, resume, and count jobs lost or corrupted.

A job is *lost* when, after the final resume, a planned job has no valid record; *corrupted* when its record
differs from the one a clean, uninterrupted run writes (job files are deterministic, so byte equality is the
check). Both counts must be 0.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cowbench.store import scan_store

ARGS = ["smoke", "--replicates", "2", "--methods", "logistic,erase_spurious,group_reweight"]


def _cmd(out: Path, launcher: str) -> list[str]:
    return [sys.executable, "-m", "cowbench", "run", *ARGS, "--out", str(out), "--launcher", launcher, "--jobs", "2"]


def drill(tmp_path: Path, kills: int, launcher: str, seed: int = 0, window: float = 12.0) -> dict[str, int]:
    """Run the drill, each kill at a uniform moment in (0.5, ``window``) s; returns the counts."""
    reference = tmp_path / "reference"
    ref = subprocess.run(_cmd(reference, launcher), capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    want = {p.name: p.read_bytes() for p in (reference / "jobs").glob("*/*.json")}
    out = tmp_path / "drilled"
    rng = random.Random(seed)
    mid_sweep = 0  # kills that landed with some but not all jobs stored
    for _ in range(kills):
        proc = subprocess.Popen(_cmd(out, launcher), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, window))
        with_result = proc.poll() is not None
        if not with_result:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        present = len(list((out / "jobs").glob("*/*.json")))
        mid_sweep += not with_result and 0 < present < len(want)
        if with_result:  # it finished before the kill: start over so that later kills still hit work
            for path in (out / "jobs").glob("*/*.json"):
                path.unlink()
    scan = scan_store(out)
    invalid, done_before_resume = len(scan.invalid), len(scan.records)
    resumes = 0
    while True:
        resumes += 1
        done = subprocess.run(_cmd(out, launcher), capture_output=True, text=True, timeout=600)
        if done.returncode == 0 or resumes >= 3:
            break
    got = {p.name: p.read_bytes() for p in (out / "jobs").glob("*/*.json")}
    return {"kills": kills, "kills_mid_sweep": mid_sweep, "lost": len(set(want) - set(got)),
            "corrupted": sum(got.get(k) != v for k, v in want.items() if k in got),
            "invalid_before_resume": invalid, "done_before_resume": done_before_resume, "planned": len(want),
            "resumes": resumes}


@pytest.mark.slow
def test_kill_9_drill_loses_and_corrupts_nothing(tmp_path):
    counts = drill(tmp_path, kills=12, launcher="joblib")
    assert counts["lost"] == 0 and counts["corrupted"] == 0, counts


if __name__ == "__main__":  # python tests/e2e/test_launchers_drill.py DIR [KILLS] [LAUNCHER]
    import tempfile

    where = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    print(drill(where, int(sys.argv[2]) if len(sys.argv) > 2 else 12, sys.argv[3] if len(sys.argv) > 3 else "joblib",
                window=float(sys.argv[4]) if len(sys.argv) > 4 else 12.0))
