"""`cowbench generate` end to end: byte-identical reruns, one-line errors that write nothing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SMALL = ["n_train=200", "n_val=50", "n_test=200"]


def cowbench(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cowbench", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def files_of(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_generate_twice_gives_identical_bytes_for_every_file(tmp_path):
    a = cowbench("generate", "cow", *SMALL, "--seed", "7", "--out", tmp_path / "a")
    b = cowbench("generate", "cow", *SMALL, "--seed", "7", "--out", tmp_path / "b")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    files = files_of(tmp_path / "a")
    splits = ("train", "val", "test_id", "test_ood", "test_bal")
    assert set(files) == {f"{s}.{e}" for s in splits for e in ("npz", "csv")} | {"card.json", "card.md"}
    assert files == files_of(tmp_path / "b")
    card = json.loads(files["card.json"])
    assert card["seed"] == 7 and card["scenario"]["knobs"]["n_train"] == 200
    assert card["dataset_checksum"] in a.stdout
    # a rerun into the same directory is allowed and leaves it as it was; another seed is refused
    again = cowbench("generate", "cow", *SMALL, "--seed", "7", "--out", tmp_path / "a")
    assert again.returncode == 0 and files_of(tmp_path / "a") == files
    other = cowbench("generate", "cow", *SMALL, "--seed", "8", "--out", tmp_path / "a")
    assert other.returncode == 2 and "--force" in other.stderr and len(other.stderr.strip().splitlines()) == 1
    assert files_of(tmp_path / "a") == files


@pytest.mark.parametrize(("args", "message"), [
    (["cow", "agreement_test=2"], "agreement_test=2"),
    (["cow", "no_such_knob=1"], "no_such_knob"),
    (["cow", "n_train"], "name=value"),
    (["caw"], "unknown scenario 'caw'"),
    (["cow", "--seed", "-1"], "--seed must be a non-negative integer"),
    (["cow", "--seed", "abc"], "--seed must be a non-negative integer"),
    (["cow", "--format", "npz,tsv"], "unknown format 'tsv'"),
])
def test_bad_input_exits_2_with_one_line_and_creates_nothing(tmp_path, args, message):
    run = cowbench("generate", *args, "--out", tmp_path / "out", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
