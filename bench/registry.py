"""One small generic registry, used for scenarios (generators), methods, scores and launchers.

Entries register themselves with a decorator when their module is imported. Lookups are lazy: a
registry knows the package its entries live in, and imports only the module it needs (a module named
like the entry first, then the whole package, then the installed plugins), so ``import cowbench`` and
the CLI's start-up import no torch. Adding an entry is adding one file to the package, or one entry
point ``cowbench.methods`` / ``cowbench.generators`` in an outside distribution.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from cowbench.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping filled by decorators, with lazy discovery.

    Parameters
    ----------
    kind : str
        What the entries are, for error messages ("method", "scenario").
    package : str, optional
        Import path of the package whose modules hold the entries.
    entry_point_group : str, optional
        Entry-point group of out-of-tree plugins.
    """

    def __init__(self, kind: str, package: str | None = None, entry_point_group: str | None = None):
        self.kind = kind
        self.package = package
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._scanned = False

    def register(self, name: str, obj: T, *, origin: str | None = None) -> T:
        """Add ``obj`` under ``name``; a second, different object under the same name is an error."""
        if not name or not isinstance(name, str):
            raise ValueError(f"a {self.kind} needs a non-empty string name, got {name!r}")
        if name in self._entries and self._entries[name] is not obj:
            same_origin = origin is not None and self._origin.get(name) == origin
            if not same_origin:  # re-importing the same module (reload) re-registers harmlessly
                raise ValueError(
                    f"duplicate {self.kind} name {name!r}: already registered by {self._origin.get(name)}"
                )
        self._entries[name] = obj
        self._origin[name] = origin or getattr(obj, "__module__", "?")
        return obj

    def decorator(self, name: str | None = None) -> Callable[[T], T]:
        """``@registry.decorator("name")`` registers the decorated object (default name: its ``name``)."""

        def wrap(obj: T) -> T:
            key = name or getattr(obj, "name", None) or getattr(obj, "__name__", None)
            return self.register(key, obj, origin=f"{obj.__module__}.{obj.__qualname__}")

        return wrap

    def _import_module_named(self, name: str) -> None:
        if self.package is None or not name.isidentifier():
            return
        modname = f"{self.package}.{name}"
        if importlib.util.find_spec(modname) is not None:
            importlib.import_module(modname)

    def scan(self) -> None:
        """Import every module of the package and every plugin entry point (once)."""
        if self._scanned:
            return
        self._scanned = True
        if self.package is not None:
            pkg = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(pkg.__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{info.name}")
        if self.entry_point_group is not None:
            for ep in entry_points(group=self.entry_point_group):
                loaded = ep.load()  # importing the plugin runs its registration decorators
                if ep.name not in self._entries:
                    self.register(ep.name, loaded, origin=f"entry point {ep.value}")

    def get(self, name: str) -> T:
        """The entry called ``name``; an unknown name raises `InputError` with close matches."""
        if name not in self._entries:
            self._import_module_named(name)
        if name not in self._entries:
            self.scan()
        if name not in self._entries:
            known = sorted(self._entries)
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise InputError(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(known) or 'none'})")
        return self._entries[name]

    def names(self) -> list[str]:
        """Every registered name, after discovery, sorted."""
        self.scan()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self.names():
            yield name, self._entries[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} loaded)"


def load_plugin(spec: str) -> Any:
    """Import a module by dotted name or a ``.py`` file by path, so its decorators register entries."""
    if spec.endswith(".py"):
        import pathlib

        path = pathlib.Path(spec)
        if not path.is_file():
            raise InputError(f"plugin file {spec!r} does not exist")
        modname = f"cowbench_plugin_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(modname, path)
        if module_spec is None or module_spec.loader is None:
            raise InputError(f"cannot load plugin file {spec!r}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        raise InputError(f"plugin module {spec!r} cannot be imported: {exc}") from None
