"""What a scenario family is expected to show, with its citations, read off its docstrings (`cowbench show`).

A family's generator module says in its docstring which method families should succeed and fail on it (a
paragraph starting "Expected"); a preset (a family with other defaults, e.g. ``cow_xor``) adds its own
"Expected:" sentence to its docstring. The citations are the author-year references and arXiv identifiers
in those docstrings, so `cowbench show` can print where each expectation comes from without a second copy
of the text that could drift from the generator's.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

# "Shah et al. 2020", "Zhao & Yu 2006", "Rosenfeld, Ravikumar & Risteski 2021", "Khani & Liang (2021)"
_NAME = r"[A-Z][A-Za-z'\-]+"
_AUTHOR_YEAR = re.compile(
    rf"{_NAME}(?: et al\.|(?:, {_NAME})*,? (?:&|and) {_NAME})?,? \(?(?:19|20)\d{{2}}[a-z]?\)?")
_ARXIV = re.compile(r"arXiv:\s?\d{4}\.\d{4,5}")
_EXPECTED = re.compile(r"\bExpected\b")
# words that precede a year without naming an author ("In 2020", "Table 2019" never occur, but "v1 2021" might)
_NOT_AUTHORS = {"In", "Since", "From", "Until", "Table", "Section", "Example", "Figure"}


@dataclass(frozen=True)
class Expectations:
    """The expected-outcome paragraphs of a family (preset's first) and the citations of its docstrings."""

    paragraphs: tuple[str, ...]
    citations: tuple[str, ...]


def _paragraphs(doc: str) -> list[str]:
    return [" ".join(line.strip() for line in block.splitlines()) for block in re.split(r"\n\s*\n", doc)
            if block.strip()]


def citations(text: str) -> list[str]:
    """Author-year references and arXiv identifiers in ``text``, in order of appearance, each once."""
    text = " ".join(text.split())  # a citation broken over two docstring lines is one citation
    found: list[tuple[int, int, str]] = []
    for pattern in (_AUTHOR_YEAR, _ARXIV):
        for m in pattern.finditer(text):
            cite = m.group(0).strip("() ").replace("(", "").replace(")", "")
            if cite.split()[0].rstrip(",") not in _NOT_AUTHORS:
                found.append((m.start(), m.end(), cite))
    out: list[str] = []
    covered_to = -1
    for _start, end, cite in sorted(found, key=lambda f: (f[0], -f[1])):
        if end <= covered_to:  # "Risteski 2021" inside "Rosenfeld, Ravikumar & Risteski 2021"
            continue
        covered_to = max(covered_to, end)
        if cite not in out:
            out.append(cite)
    return out


def expectations(family: Any) -> Expectations:
    """The expected successes and failures of a registered scenario family (a `ScenarioFamily`): the part of
    each docstring paragraph from the word "Expected" on, the preset's own docstring first, then its
    generator module's; and the citations of both docstrings (those of the expected paragraphs first)."""
    own = family.__doc__ or ""
    module = sys.modules.get(getattr(family, "__module__", ""), None)
    module_doc = (module.__doc__ if module is not None else None) or ""
    paragraphs: list[str] = []
    for doc in (own, module_doc):
        for para in _paragraphs(doc):
            m = _EXPECTED.search(para)
            if m and para[m.start():] not in paragraphs:
                paragraphs.append(para[m.start():])
    cites = citations(" ".join(paragraphs))
    cites += [c for c in citations(own + "\n\n" + module_doc) if c not in cites]
    return Expectations(tuple(paragraphs), tuple(cites))
