"""A partial run never overwrites published results (issue 8, item 6).

A run the command line changed (--methods, --replicates, --root-seed) goes to ``runs/<suite>-<hash>`` by
default, never to ``results/<suite>``; a run whose suite differs from the one a directory holds under the same
name is refused (exit 2) unless ``--replace``; and a run of another suite in the same directory keeps the first
suite's report in ``report.md``. The CLI runs in-process, in a temporary working directory.
"""

import contextlib
import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from cowbench.cli import main
from cowbench.suite import load_suite

# small and linear: these tests are about where files go, not about the numbers
BODY = ('[subject]\narch = "linear"\n[[scenarios]]\nname = "cow"\n'
        'knobs = {{ n_train = 400, n_val = 200, n_test = 400 }}\n[methods]\ninclude = ["{method}"]\n')
ALPHA = '[suite]\nname = "alpha"\nreplicates = 1\n' + BODY.format(method="logistic")
BETA = '[suite]\nname = "beta"\nreplicates = 1\n' + BODY.format(method="ols")


def cowbench(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A working directory holding ``results/alpha`` made by ``cowbench run alpha.toml`` (the default out)."""
    root = tmp_path_factory.mktemp("published")
    (root / "alpha.toml").write_text(ALPHA)
    (root / "beta.toml").write_text(BETA)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        done = cowbench("run", "alpha.toml", "--launcher", "inprocess")
    assert done.returncode == 0, done.stderr
    assert (root / "results" / "alpha" / "report.md").is_file()
    return root


@pytest.fixture()
def published(base, tmp_path, monkeypatch):
    """A copy of ``base`` as the working directory."""
    shutil.copytree(base, tmp_path / "w")
    monkeypatch.chdir(tmp_path / "w")
    return tmp_path / "w"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "cache" not in p.parts}


def test_an_ad_hoc_run_goes_to_runs_not_to_the_published_results(published):
    before = snapshot(published / "results" / "alpha")
    adhoc = cowbench("run", "alpha.toml", "--methods", "ols", "--launcher", "inprocess")
    assert adhoc.returncode == 0, adhoc.stderr
    changed = load_suite("alpha.toml", methods=["ols"])
    out = published / "runs" / f"alpha-{changed.hash}"
    assert f"results in {Path('runs') / f'alpha-{changed.hash}'}" in adhoc.stderr
    assert (out / "report.md").is_file() and "| ols " in (out / "report.md").read_text()
    assert snapshot(published / "results" / "alpha") == before  # not one byte of the published run changed


def test_a_different_suite_of_the_same_name_is_refused_unless_replace(published):
    results = published / "results" / "alpha"
    before = snapshot(results)
    refused = cowbench("run", "alpha.toml", "--methods", "ols", "--out", results, "--launcher", "inprocess")
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "holds suite 'alpha' with hash" in refused.stderr and "--replace" in refused.stderr
    assert snapshot(results) == before
    # the same suite again is not refused (resuming, rerunning), and changes nothing it has already done
    again = cowbench("run", "alpha.toml", "--out", results, "--launcher", "inprocess")
    assert again.returncode == 0 and "0 to run" in again.stderr
    replaced = cowbench("run", "alpha.toml", "--methods", "ols", "--out", results, "--launcher", "inprocess",
                        "--replace")
    assert replaced.returncode == 0, replaced.stderr
    manifest = json.loads((results / "manifests" / "alpha.json").read_text())
    assert manifest["suite_hash"] == load_suite("alpha.toml", methods=["ols"]).hash


def test_another_suite_in_the_directory_keeps_the_first_suites_report(published):
    results = published / "results" / "alpha"
    alpha_report = (results / "report.md").read_text()
    beta = cowbench("run", "beta.toml", "--out", results, "--launcher", "inprocess")
    assert beta.returncode == 0, beta.stderr
    report = (results / "report.md").read_text()
    assert "report: beta" in report and "report: alpha" in report
    # alpha's report, whole, but for the ledger head: the folder's ledger grew when beta stored its jobs
    def unledgered(text: str) -> str:
        return "\n".join(ln for ln in text.splitlines() if not ln.startswith("- ledger head"))

    assert unledgered(alpha_report).strip() in unledgered(report)
