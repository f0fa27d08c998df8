"""Layers point one way (STYLE.md, "Layers that point one way"): read from the source, not from a run.

The imports of every cowbench module (``bench/``, ``generators/``, ``methods/``) are parsed, function-local ones
included (``if TYPE_CHECKING:`` blocks excluded: they never run). Two rules:

- no import cycle among cowbench modules, however it is hidden (a function-local import still closes a circle);
- a function-local ``cowbench`` import defers a heavy dependency: the module it imports pulls in one of `HEAVY`
  at import time and the importing module does not. The few other reasons are listed in `ALLOWED_LOCAL`, each
  with why; anything else belongs at the top of the module (or the function lives on the wrong floor).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"bench": "cowbench", "generators": "cowbench.generators", "methods": "cowbench.methods"}
#: third-party packages a light module imports only inside the function that needs them
HEAVY = frozenset({"torch", "dask", "distributed", "matplotlib", "causallearn", "scipy", "sklearn"})

#: (importing module, function, imported module) -> why the import stays inside the function
ALLOWED_LOCAL: dict[tuple[str, str, str], str] = {
    **{("cowbench", "__getattr__", m): "the package's public API loads its heavier entry points on first use"
       for m in ("cowbench.subject", "cowbench.model_truth", "cowbench.jobs")},
    **{("cowbench.sandbox", "_preload", m): "the sandbox template preloads what every job needs, once, before forking"
       for m in ("cowbench.access", "cowbench.audit", "cowbench.determinism", "cowbench.method", "cowbench.models",
                 "cowbench.registries", "cowbench.registry")},
    **{("cowbench.isolation", "_warm_up", m): "the isolated worker pays the imports of a job before jobs are timed"
       for m in ("cowbench.jobs", "cowbench.scores")},
    **{("cowbench.cli", f, "cowbench"): "the CLI sits on top of the public API (`import cowbench as cb`)"
       for f in ("cmd_list", "cmd_show", "cmd_generate")},
    ("cowbench.cli", "cmd_generate", "cowbench.export"): "two modules' `check_formats` in one file: one per command",
    ("cowbench.cli", "cmd_plot", "cowbench.reports.plots"): "two modules' `check_formats` in one file: one per command",
    # integration shims: ``try: import ... except ImportError`` for a module a build may lack (both exist today)
    ("cowbench.job_run", "blind_api", "cowbench.blind_run"): "the fallback when cowbench.sandbox is absent",
    ("cowbench.reports.table", "machine_line", "cowbench.fingerprint"): "a build without machine fingerprints",
}


def _modules() -> dict[str, Path]:
    mods = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            if folder == "bench" and parts and parts[0] == "scores":
                package = "cowbench"  # bench/scores is the package cowbench.scores
            else:
                package = PACKAGES[folder]
            mods[".".join([package, *parts])] = path
    return mods


def _targets(node: ast.AST, mods: dict[str, Path]) -> list[str]:
    """The cowbench modules an import statement imports (``from cowbench import ledger``: the module ledger)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in mods]
        # the package itself only when a name that is not a submodule is taken from it
        names = subs + ([node.module] if len(subs) < len(node.names) else [])
    else:
        return []
    return [n for n in names if n in mods]


def _third_party(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name.split(".")[0] for a in node.names}
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return {node.module.split(".")[0]}
    return set()


class _Graph:
    def __init__(self) -> None:
        self.mods = _modules()
        self.top: dict[str, set[str]] = defaultdict(set)
        self.heavy_direct: dict[str, set[str]] = defaultdict(set)
        self.parents: dict[str, set[str]] = defaultdict(set)  # a package's __init__ runs before its modules
        self.local: list[tuple[str, str, str, int]] = []  # (module, function, imported module, line)
        self.package_imports: list[tuple[str, int]] = []  # `import cowbench`, `from cowbench import x`: (module, line)
        for name, path in self.mods.items():
            tree = ast.parse(path.read_text(), filename=str(path))
            type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                         and "TYPE_CHECKING" in ast.dump(node.test) for n in ast.walk(node)}
            parts = name.split(".")
            self.parents[name].update(".".join(parts[:i]) for i in range(1, len(parts)))
            self.package_imports += [(name, node.lineno) for node in ast.walk(tree) if id(node) not in type_only
                                     and "cowbench" in _targets(node, self.mods)]
            for node in tree.body:
                self.top[name].update(_targets(node, self.mods))
                self.heavy_direct[name] |= _third_party(node) & HEAVY
            self._walk_local(name, tree, type_only)

    def _walk_local(self, name: str, tree: ast.Module, type_only: set[int]) -> None:
        def visit(node: ast.AST, func: str | None) -> None:
            for child in ast.iter_child_nodes(node):
                inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else func
                if id(child) not in type_only and isinstance(child, ast.Import | ast.ImportFrom) and node is not tree:
                    for target in _targets(child, self.mods):
                        self.local.append((name, func or "<class or block>", target, child.lineno))
                visit(child, inner)

        visit(tree, None)

    def edges(self) -> dict[str, set[str]]:
        out = defaultdict(set, {k: set(v) for k, v in self.top.items()})
        for module, _, target, _ in self.local:
            out[module].add(target)
        return out

    def heavy(self, module: str) -> set[str]:
        """The heavy packages importing ``module`` pulls in (through cowbench's module-level imports)."""
        seen, stack, found = set(), [module], set()
        while stack:
            m = stack.pop()
            if m in seen:
                continue
            seen.add(m)
            found |= self.heavy_direct[m]
            stack.extend(self.top[m] | self.parents[m])
        return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w == v:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph() -> _Graph:
    return _Graph()


def test_the_parser_sees_the_package(graph):
    # a walk that found nothing would pass every rule below
    assert {"cowbench", "cowbench.jobs", "cowbench.cli", "cowbench.scores.edit", "cowbench.generators.scm",
            "cowbench.reports.table"} <= set(graph.mods)
    assert "cowbench.ledger" in graph.top["cowbench.store"] and "torch" in graph.heavy("cowbench.sandbox")


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set(), "c": {"c"}}) == []


def test_no_import_cycle_among_cowbench_modules_counting_function_local_imports(graph):
    assert _cycles(graph.edges()) == []


def test_modules_import_from_the_defining_module_not_from_the_package(graph):
    # the package's __init__ is the public API on top of everything: only the CLI, above it, imports it
    offenders = [f"{graph.mods[m].relative_to(ROOT)}:{line}" for m, line in graph.package_imports
                 if m != "cowbench.cli"]
    assert offenders == []


def test_function_local_cowbench_imports_defer_a_heavy_dependency_or_are_listed(graph):
    unexplained = []
    for module, func, target, line in graph.local:
        if (module, func, target) in ALLOWED_LOCAL:
            continue
        deferred = graph.heavy(target) - graph.heavy(module)
        if not deferred:
            unexplained.append(f"{graph.mods[module].relative_to(ROOT)}:{line} {func} imports {target}")
    assert unexplained == [], "move these to the top of their module (or the function to its floor):\n" + "\n".join(
        unexplained)


def test_the_allow_list_holds_no_stale_entry(graph):
    present = {(m, f, t) for m, f, t, _ in graph.local}
    assert sorted(set(ALLOWED_LOCAL) - present) == []
