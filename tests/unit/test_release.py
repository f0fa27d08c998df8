"""A citable, installable release: one version everywhere, --version with the scorer hash, every dependency
pinned at the installed version, and a wheel that holds every subpackage and runs the smoke suite."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import cowbench
from cowbench.lock import EXCLUDE, FIXED, closure, parse

ROOT = Path(__file__).resolve().parents[2]


def test_one_version_in_pyproject_package_citation_changelog_and_bibtex():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert cowbench.__version__ == version
    assert re.search(r"^version: (\S+)$", (ROOT / "CITATION.cff").read_text(), flags=re.M).group(1) == version
    newest = re.search(r"^## (\S+) — (\d{4}-\d\d-\d\d)$", (ROOT / "CHANGELOG.md").read_text(), flags=re.M)
    assert newest.group(1) == version
    cff_date = re.search(r"^date-released: (\S+)$", (ROOT / "CITATION.cff").read_text(), flags=re.M).group(1)
    assert cff_date == newest.group(2)
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"@software\{cowbench,.*?version = \{([^}]*)\}", readme, flags=re.S).group(1) == version


def test_version_prints_the_scorer_hash(capsys):
    from cowbench.cli import main
    from cowbench.scores import scorer_version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cowbench {cowbench.__version__} (scorer {scorer_version()})"


def test_constraints_pin_every_installed_dependency_at_its_installed_version():
    pinned = parse((ROOT / "constraints.txt").read_text())
    installed = closure()
    assert pinned["torch"] == FIXED["torch"] == "2.13.0"
    assert {"threadpoolctl", "cloudpickle", "numpy", "pytest", "dask"} <= set(pinned)  # left free before
    unpinned = sorted(set(installed) - set(pinned))
    assert not unpinned, f"not in constraints.txt: {unpinned} (python -m cowbench.lock > constraints.txt)"
    moved = {n: (pinned[n], v) for n, v in installed.items() if n not in FIXED and pinned[n] != v}
    assert not moved, f"pinned != installed: {moved} (python -m cowbench.lock > constraints.txt)"
    assert not set(EXCLUDE) & set(pinned)  # the build backend's setuptools>=68 must stay free


def test_the_wheel_lists_every_subpackage_of_the_source_tree():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    folders = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            folders.add(".".join([package, *rel.parts]))
    missing = sorted(folders - set(config["packages"]))
    assert not missing, f"subpackages missing from pyproject's packages: {missing}"


@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_venv_runs_the_smoke_suite(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(ROOT)], capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("cowbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    folders = {n.rsplit("/", 1)[0] for n in names if n.endswith(".py")}
    assert {"cowbench", "cowbench/generators", "cowbench/methods", "cowbench/scores", "cowbench/launchers",
            "cowbench/reports", "cowbench/anchors"} <= folders
    assert "cowbench/suites/smoke.toml" in names and "cowbench/leaderboard.py" not in names
    assert "cowbench/reports/leaderboard.py" in names and "cowbench/docs.py" in names
    venv = tmp_path / "venv"
    # dependencies from the base interpreter (fast); cowbench itself only from the wheel
    base = getattr(sys, "_base_executable", sys.executable)
    made = subprocess.run([base, "-m", "venv", "--system-site-packages", str(venv)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-2000:]
    where = subprocess.run([str(python), "-c", "import cowbench; print(cowbench.__file__)"], capture_output=True,
                           text=True, cwd=tmp_path)
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr
    run = subprocess.run([str(venv / "bin" / "cowbench"), "run", "smoke", "--out", str(tmp_path / "smoke"),
                          "--quiet"], capture_output=True, text=True, cwd=tmp_path, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "smoke" / "report.md").is_file() and (tmp_path / "smoke" / "leaderboard.md").is_file()
