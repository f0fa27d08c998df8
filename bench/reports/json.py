"""JSON: provenance, the tidy cells, the aggregation across scenarios, skipped pairs and failed jobs.

Strict JSON (no NaN: a missing number is ``null``), so any parser reads it. ``cells`` holds exactly the
rows of the CSV (`cowbench.reports.table.tidy_cells`).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from cowbench.reports.table import Tables, scenario_label, tidy_cells

NAME = "json"
FILENAME = "summary.json"
SCHEMA = "cowbench.report/1"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    # numpy scalars -> Python ones; a float NaN that slipped through -> null (strict JSON)
    return [{k: _plain(v) for k, v in r.items()} for r in records]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def report_data(tables: Tables) -> dict[str, Any]:
    """The report as one JSON-ready dict."""
    res = tables.results
    skipped = [{"method": s["method"], "scenario": scenario_label(s["scenario"]), "reason": s["reason"]}
               for s in (res.manifest or {}).get("skipped", [])]
    failed = [{"job_id": r["job_id"], "method": r["spec"]["method"], "scenario": scenario_label(r["spec"]["scenario"]),
               "replicate": r["spec"]["replicate"], "error": r.get("error")} for r in res.failed]
    return {"schema": SCHEMA, "provenance": tables.provenance, "cells": _records(tidy_cells(tables)),
            "across": _records(tables.across), "resolvable": _records(tables.resolvable),
            "skipped": skipped, "failed": failed,
            # the setting each selection rule chose, per replicate (`cowbench.reports.table.apply_selection`)
            "selections": (res.manifest or {}).get("selections", [])}


def render(tables: Tables) -> str:
    """``report_data`` as indented, key-sorted, strict JSON."""
    return json.dumps(report_data(tables), indent=1, sort_keys=True, allow_nan=False)
