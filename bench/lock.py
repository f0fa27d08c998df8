"""The pin file (``constraints.txt``): every distribution cowbench and its test and dask extras pull in, at the
version installed now.

``python -m cowbench.lock`` prints it (``python -m cowbench.lock > constraints.txt`` after a change of
dependencies, in the venv the tests ran in). Unlike ``pip freeze``, it pins the dependency closure only (a venv
made with ``--system-site-packages`` shows every package of the system), and it keeps the pins that must not
move whatever is installed (`FIXED`: torch is a local CPU build; an unpinned torch pulls a CUDA build).
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

#: pins kept as written, whatever version is installed
FIXED = {"torch": "2.13.0"}
#: installer tools, never pinned: the build backend's own requirement (setuptools>=68) must stay free
EXCLUDE = ("pip", "setuptools", "wheel")
#: the extras the closure follows (what ``pip install -e ".[test]"`` and ``".[dask]"`` install)
EXTRAS = ("test", "dask")

_HEADER = """\
# Every distribution cowbench, its test and dask extras pull in, pinned (generated: python -m cowbench.lock >
# constraints.txt, in the venv the tests ran in; tests/unit/test_release.py fails when an installed version
# differs). torch must stay pinned: on these machines torch==2.13.0 is a local CPU build, an unpinned torch
# pulls a multi-GB CUDA build.
"""


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str = "cowbench", extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
    """Normalised name -> installed version of every distribution ``root`` (with ``extras``) requires,
    transitively, that is installed (requirements whose environment marker does not apply are skipped)."""
    from packaging.requirements import Requirement

    found: dict[str, str] = {}
    todo: list[tuple[str, tuple[str, ...]]] = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        key = _normal(dist.metadata["Name"])
        if key in found and not wanted:
            continue
        found[key] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            if _normal(req.name) not in found or req.extras:
                todo.append((req.name, tuple(req.extras)))
    for name in (root, *EXCLUDE):
        found.pop(_normal(name), None)
    return found


def lock_text() -> str:
    """The constraints file: the header, then ``name==version`` per line, sorted."""
    pins = {**closure(), **{_normal(k): v for k, v in FIXED.items()}}
    return _HEADER + "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def parse(text: str) -> dict[str, str]:
    """Normalised name -> pinned version of a constraints file."""
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[_normal(name)] = version.strip()
    return out


if __name__ == "__main__":
    sys.stdout.write(lock_text())
