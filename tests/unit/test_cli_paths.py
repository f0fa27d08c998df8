"""Output-path checks of the CLI: a file's folder may hold anything; only `run`'s directory must be ours."""

from __future__ import annotations

import pytest

from cowbench.cli import _check_out_dir, _check_writable
from cowbench.errors import InputError


def test_a_file_may_go_into_a_folder_that_holds_other_things(tmp_path):
    # `cowbench reliability` writes results/reliability.md beside results/standard/, anchors/, README.md
    (tmp_path / "README.md").write_text("x")
    (tmp_path / "standard").mkdir()
    _check_writable(tmp_path / "reliability.md", "reliability.md")  # no error
    with pytest.raises(InputError, match="not a cowbench results directory"):
        _check_out_dir(str(tmp_path))


def test_a_file_under_a_file_is_refused_in_one_line(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(InputError, match="which is a file") as info:
        _check_writable(tmp_path / "plain" / "out.md", "plain/out.md")
    assert "\n" not in str(info.value)
