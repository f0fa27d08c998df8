"""The documentation follows the code: generated reference pages match it, worked examples pass the kit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cowbench import docs

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {"world_least_squares.py": "example_world_ls", "model_finite_difference.py": "example_model_fd",
            "detect_env_shift.py": "example_detect_shift", "edit_zero_input.py": "example_edit_mean"}


def test_the_committed_reference_pages_are_what_the_code_generates():
    assert docs.drifted(ROOT) == [], "run 'cowbench docs --write' and commit docs/reference/"


def test_drift_is_detected(tmp_path):
    docs.write(tmp_path)
    assert docs.drifted(tmp_path) == []
    page = tmp_path / "docs/reference/task.md"
    text = page.read_text()
    page.write_text(text.replace("| `concept_x` | attribute | concept |", "| `concept_x` | attribute | any |"))
    assert docs.drifted(tmp_path) == ["docs/reference/task.md"]


def test_the_task_page_lists_every_public_member_with_its_checked_access_level():
    from cowbench.access import Task

    page = docs.task_reference()
    public = [n for n, m in vars(Task).items() if not n.startswith("_") and (isinstance(m, property) or callable(m))]
    for name in public:
        assert f"| `{name}" in page, name
    assert "| `concept_x` | attribute | concept | `np.ndarray` | (n_concept, d) |" in page
    assert "| `model` | attribute | internals |" in page and "| `env` | attribute | env |" in page
    assert "| `edited` | `Any` | `None` | edit |" in page


def test_every_key_the_suite_loader_accepts_is_documented_with_its_parsed_default():
    from cowbench import suite as loader

    page = docs.suite_reference()
    for key in loader._SUITE_KEYS:
        assert f"| `[suite] {key}` |" in page
    assert "| `[suite] replicates` | integer in [1, 10000] | `3` |" in page  # the loader's default, parsed
    assert "| `[subject] epochs` | int | `300` |" in page
    loader._SUITE_KEYS.add("surprise")  # a key the loader starts to accept without a line fails the generator
    try:
        with pytest.raises(ValueError, match="surprise"):
            docs.suite_reference()
    finally:
        loader._SUITE_KEYS.discard("surprise")


@pytest.mark.parametrize("filename", sorted(EXAMPLES))
def test_each_worked_example_passes_cowbench_check(filename):
    path = ROOT / "docs" / "examples" / filename
    done = subprocess.run([sys.executable, "-m", "cowbench", "check", EXAMPLES[filename], "--plugins", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("0 failed")


def test_the_plugins_page_links_every_example_and_the_reference_pages():
    text = (ROOT / "docs" / "plugins.md").read_text()
    for filename in EXAMPLES:
        assert f"(examples/{filename})" in text
    assert "(reference/task.md)" in text and "(reference/suite.md)" in text
