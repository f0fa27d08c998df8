"""With one replicate the report header gives the reason a difference cannot be resolved: the single replicate."""

from __future__ import annotations

from cowbench.reports.markdown import render_markdown
from cowbench.reports.table import build_tables, results_from_frame
from cowbench.reports.text import mrd_text

from .conftest import MANIFEST, synthetic_frame


def test_one_replicate_is_named_as_the_reason():
    frame = synthetic_frame()
    one = frame[frame.replicate == 0]
    text = render_markdown(build_tables(results_from_frame(one, manifest=MANIFEST)))
    header = next(line for line in text.splitlines() if line.startswith("- min. resolvable difference"))
    assert "world_err — (one replicate: a paired difference needs two)" in header
    assert "no table with two methods" not in header
    # with three replicates the same methods resolve a difference: a number, not a reason
    three = render_markdown(build_tables(results_from_frame(frame, manifest=MANIFEST)))
    assert "one replicate: a paired difference" not in three


def test_without_two_methods_the_reason_stays():
    assert mrd_text(float("nan"), 0, 5) == "— (no table with two methods)"
    assert mrd_text(float("nan"), 0, 1) == "— (one replicate: a paired difference needs two)"
    assert mrd_text(float("nan"), 0) == "— (no table with two methods)"
