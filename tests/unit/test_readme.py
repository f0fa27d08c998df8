"""README.md's tables name every registered scenario, method family, method and suite (as `cowbench list`
groups them), and its documented commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import cowbench as cb

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def _table_rows(section: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| ") and not line.startswith("|---")]


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text()


def test_every_registered_method_is_in_its_familys_row(readme):
    from cowbench.registries import METHODS

    rows = _table_rows(_section(readme, "Methods"))[1:]  # without the header row
    listed = {}
    for family, *_, methods in rows:
        for name in re.findall(r"`([a-z0-9_]+)`", methods):
            listed[name] = family.strip("`")
    # built-in methods only: a test double another test registered in this session is not the README's business
    expected = {name: cls.family for name, cls in METHODS.items() if cls.__module__.startswith("cowbench.methods")}
    missing = sorted(set(expected) - set(listed))
    assert not missing, f"README's methods table lacks {missing} (regenerate it from the registry)"
    wrong = {n: (listed[n], f) for n, f in expected.items() if listed[n] != f}
    assert not wrong, f"README puts methods under another family than `cowbench list`: {wrong}"
    assert not set(listed) - set(expected), f"README lists unregistered methods {sorted(set(listed) - set(expected))}"
    families = [row[0].strip("`") for row in rows]
    assert sorted(families) == sorted(set(expected.values()))
    count = re.search(r"(\d+) methods \((\d+) of them controls\)", _section(readme, "Methods"))
    controls = sum(bool(getattr(cls, "control", False)) for name, cls in METHODS.items() if name in expected)
    assert count and (int(count.group(1)), int(count.group(2))) == (len(expected), controls)


def test_every_registered_scenario_is_in_the_table_or_named_as_a_preset(readme):
    section = _section(readme, "Scenarios")
    in_table = {row[0].strip("`") for row in _table_rows(section)[1:]}
    presets_text = section[section.index("Presets are"):]
    named = set(re.findall(r"`([a-z0-9_]+)`", presets_text))
    missing = sorted(set(cb.list_scenarios()) - in_table - named)
    assert not missing, f"README's scenarios lack {missing}"


def test_every_builtin_suite_and_anchor_is_described(readme):
    from cowbench.anchors import ANCHORS
    from cowbench.suite import builtin_suites

    suites = _section(readme, "Suites and published results")
    for name in builtin_suites():
        assert f"- `{name}`:" in suites, f"suite {name} is not described"
    for name in ANCHORS:
        assert f"`{name}`" in suites, f"anchor {name} is not named"


def test_the_documented_commands_and_report_formats_exist(readme):
    from cowbench.cli import build_parser
    from cowbench.reports import FORMATS, get_format

    commands = set(re.findall(r"^cowbench ([a-z]+)", readme, flags=re.M))
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert commands and commands <= set(sub.choices), sorted(commands - set(sub.choices))
    reports = _section(readme, "Reports and plots")
    for name in FORMATS:
        assert f"| `{name}` | `{get_format(name).FILENAME}` |" in reports, name
