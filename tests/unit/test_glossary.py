from pathlib import Path

from cowbench.glossary import glossary_markdown
from cowbench.registries import SCENARIOS

DOC = Path(__file__).resolve().parents[2] / "docs" / "knobs.md"


def test_the_committed_glossary_is_up_to_date():
    # regenerate with: cowbench knobs --markdown > docs/knobs.md
    assert DOC.read_text(encoding="utf-8") == glossary_markdown()


def test_every_family_and_knob_is_in_the_glossary():
    text = glossary_markdown()
    for name, family in SCENARIOS.items():
        assert f"## {name} (version {family.version})" in text
        for knob in family.knobs:
            assert f"`{knob}`" in text
