"""``cowbench verify`` and ``cowbench reliability`` end to end, in temporary directories."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def cowbench(*args):
    return subprocess.run([sys.executable, "-m", "cowbench", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("verify") / "run"
    done = cowbench("run", "smoke", "--out", out, "--replicates", 2, "--methods", "logistic,erase_spurious")
    assert done.returncode == 0, done.stderr
    return out


def test_verify_passes_on_a_fresh_run_and_leaves_it_untouched(small_run):
    before = tree(small_run)
    result = cowbench("verify", small_run, "--all")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reran 4 of 4 stored job(s)" in result.stdout
    assert "tolerance: continuous metrics |fresh - stored| <= 0.0001" in result.stdout  # the tolerance is printed
    assert result.stdout.rstrip().endswith("PASS")
    assert tree(small_run) == before


def test_verify_fails_and_names_the_cell_when_a_stored_metric_is_altered(small_run, tmp_path):
    altered = tmp_path / "altered"
    shutil.copytree(small_run, altered)
    for path in sorted((altered / "jobs").glob("*/*.json")):
        record = json.loads(path.read_text())
        if record["spec"]["method"] == "logistic" and record["spec"]["replicate"] == 1:
            record["metrics"]["world_err"] += 0.01  # 100 times the tolerance
            path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
            break
    else:
        pytest.fail("no logistic job of replicate 1 in the run")
    # the folder's ledger catches the edit first: status names the file and leaves it out
    status = cowbench("status", altered)
    assert "differs from the content ledger entry" in status.stderr, status.stderr
    # a forger with write access also rewrites the ledger; then only a rerun can tell, which is verify's job
    (altered / "ledger.jsonl").unlink()
    assert cowbench("ledger", "adopt", altered).returncode == 0
    result = cowbench("verify", altered, "--all")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "| cow | logistic | world_err | 2 | 0.01 | 0.0001 | NO (replicate 1) |" in result.stdout
    assert result.stdout.rstrip().endswith("FAIL")


@pytest.mark.parametrize("args", [
    ("verify", "/nonexistent/results"),
    ("verify", "{run}", "--sample", "0"),
    ("verify", "{run}", "--tolerance", "-1"),
    ("verify", "{run}", "--sample", "2", "--all"),
])
def test_verify_bad_input_is_one_line_and_exit_2(small_run, args):
    result = cowbench(*(a.format(run=small_run) for a in args))
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("cowbench: error:")


def test_reliability_tiny_configuration_writes_markdown_and_json(tmp_path):
    out = tmp_path / "rel" / "reliability.md"
    result = cowbench("reliability", "--out", out, "--replicates", 2, "--pair", "world:cow:logistic",
                      "--pair", "world:cow:ols", "--jobs", 1)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.with_suffix(".json").read_text())
    # 2 methods x 5 seed kinds (training data, test data, subject, fit, all) x 2 replicates
    assert len(data["values"]) == 20 and all(v["value"] is not None for v in data["values"])
    # resolutions are stated at the standard suite's replicate count (its file's, 3 since issue 16)
    from cowbench.reliability import STANDARD_REPLICATES

    assert [(r["a"], r["b"], r["n"]) for r in data["resolution"]] == [("logistic", "ols", STANDARD_REPLICATES)]
    # logistic and ols are deterministic given the data: the fit seed moves nothing
    assert all(r["sd_fit"] == 0 for r in data["reseed"])
    text = out.read_text()
    assert "| world | world_err | cow | logistic |" in text and f"min. resolvable at n={STANDARD_REPLICATES}" in text
    assert "Machine:" in text and "MKL_CBWR" in text


@pytest.mark.parametrize(("args", "message"), [
    (("--pair", "world:cow"), "TRACK:SCENARIO:METHOD"),
    (("--pair", "world:cow:erase_spurious"), "does not output the world track"),
    (("--pair", "world:nowhere:logistic"), "unknown scenario"),
    (("--replicates", "1"), "--replicates"),
])
def test_reliability_bad_input_writes_nothing(tmp_path, args, message):
    out = tmp_path / "rel.md"
    result = cowbench("reliability", "--out", out, *args)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_reliability_out_must_be_markdown(tmp_path):
    result = cowbench("reliability", "--out", tmp_path / "rel.txt")
    assert result.returncode == 2 and ".md" in result.stderr
