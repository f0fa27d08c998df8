"""Plots a reader can take in: dot plots paged (the published edit plot was 21 panels, 5774 px tall), and a
dose-response curve that says on the figure why a knob value has no point and what the knob means."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

import cowbench as cb
from cowbench.reports.plots import MAX_PANELS, dose_plot, knob_meaning, sweeps, write_plots
from cowbench.reports.table import results_from_frame, scenario_label, score_table, summarize


def test_a_track_over_many_scenarios_is_paged_and_no_page_is_taller_than_2000_px(tmp_path):
    rows = []
    for s in range(21):  # the published edit track: 21 scenarios x 24 methods
        for m in range(24):
            for r in range(2):
                rows.append({"job_id": f"{s}-{m}-{r}", "scenario": f"scenario_{s:02d}", "method": f"method_{m:02d}",
                             "hparams": "", "access": "pooled", "told": "", "replicate": r, "metric": "edit_score",
                             "value": 0.01 * m + 0.001 * r})
    paths = write_plots(results_from_frame(pd.DataFrame(rows)), tmp_path, ["png"])
    names = sorted(p.name for p in paths)
    assert names == ["dots-edit-2.png", "dots-edit-3.png", "dots-edit.png"]  # 21 panels, 8 a page
    heights = [Image.open(p).size[1] for p in paths]
    assert max(heights) < 2000, heights
    assert MAX_PANELS == 8


def test_the_dose_response_plot_says_why_a_point_is_missing_and_what_the_knob_means():
    values = [0.5, 0.7, 0.9]
    specs = [cb.make_scenario("cow", agreement_test=v).spec for v in values]
    rows, missing = [], []
    for spec, v in zip(specs, values, strict=True):
        for r in range(3):
            job = {"job_id": f"{v}-{r}", "scenario": scenario_label(spec), "method": "m", "hparams": "",
                   "access": "pooled", "told": "", "replicate": r}
            if v == 0.5:  # no shortcut to remove at agreement 0.5: edit_score is stored missing with its reason
                missing.append({**job, "metric": "edit_score", "reason": "no shortcut to remove"})
            else:
                rows.append({**job, "metric": "edit_score", "value": v + 0.01 * r})
    manifest = {"suite": {"name": "t"}, "suite_hash": "x", "jobs": [], "skipped": [],
                "sweeps": [{"entry": 0, "generator": "cow", "knobs": ["agreement_test"],
                            "values": {"agreement_test": v}, "scenario": s}
                           for s, v in zip(specs, values, strict=True)]}
    results = results_from_frame(pd.DataFrame(rows), missing=pd.DataFrame(missing), manifest=manifest)
    (sweep,) = sweeps(results)
    scores = score_table()
    fig = dose_plot(summarize(results.frame, scores=scores), sweep, [("edit", "edit_score", True)],
                    missing=results.missing)
    ax = fig.axes[0]
    texts = [t.get_text().replace("\n", " ") for t in ax.texts]
    assert texts == ["no value: no shortcut to remove"]
    meaning = knob_meaning("cow", "agreement_test")
    assert meaning and ax.get_xlabel().replace("\n", " ").startswith(f"agreement_test: {meaning[:20]}")
    (line,) = [ln for ln in ax.lines if ln.get_label() == "m"]
    assert np.allclose(line.get_xdata(), [0.7, 0.9])  # no point drawn where the value is missing
    assert [ln.get_xdata()[0] for ln in ax.lines if ln.get_label().startswith("missing")] == [0.5]
