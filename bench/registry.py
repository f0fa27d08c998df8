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

    def __init__(self, kind: str, package: str | None = None, entry_point_group: str | None = None, *,
                 module_per_entry: bool = False):
        self.kind = kind
        self.package = package
        self.entry_point_group = entry_point_group
        # every built-in entry lives in a package module of its own name (methods): a name clash with a built-in
        # is then found by importing that one module, not the whole package
        self.module_per_entry = module_per_entry
        self._entries: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._scanned = False

    def register(self, name: str, obj: T, *, origin: str | None = None) -> T:
        """Add ``obj`` under ``name``; a second, different object under the same name is an error."""
        if not name or not isinstance(name, str):
            raise ValueError(f"a {self.kind} needs a non-empty string name, got {name!r}")
        if self._is_outside(origin or getattr(obj, "__module__", "")):
            self._load_builtin(name)  # lazy discovery must not let a plugin take a built-in's name unseen
            builtin = self._origin.get(name, "")
            if name in self._entries and self._entries[name] is not obj and not self._is_outside(builtin):
                raise InputError(f"{self.kind} name {name!r} is taken by the built-in {builtin}: a plugin cannot "
                                 f"replace a built-in {self.kind}; give yours another name")
        if name in self._entries and self._entries[name] is not obj:
            same_origin = origin is not None and self._origin.get(name) == origin
            if not same_origin:  # re-importing the same module (reload) re-registers harmlessly
                raise ValueError(
                    f"duplicate {self.kind} name {name!r}: already registered by {self._origin.get(name)}"
                )
        self._entries[name] = obj
        self._origin[name] = origin or getattr(obj, "__module__", "?")
        return obj

    def _is_outside(self, origin: str) -> bool:
        """Whether an entry of this origin comes from outside the package (a plugin)."""
        return self.package is not None and not origin.startswith(f"{self.package}.")

    def _load_builtin(self, name: str) -> None:
        """Register the built-in entry called ``name``, if there is one."""
        if name in self._entries:
            return
        self._import_module_named(name)
        if name not in self._entries and not self.module_per_entry and self.package is not None:
            pkg = importlib.import_module(self.package)  # the package's own modules only (no entry points)
            for info in pkgutil.iter_modules(pkg.__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{info.name}")

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


def _import_failure(what: str, exc: BaseException) -> InputError:
    """One line naming a plugin that failed to import and why (the error and where in the plugin it arose)."""
    if isinstance(exc, InputError):
        return InputError(f"{what}: {exc}")
    if isinstance(exc, SyntaxError):
        return InputError(f"{what} has a syntax error at line {exc.lineno}: {exc.msg}")
    if isinstance(exc, SystemExit):
        return InputError(f"{what} called sys.exit({exc.code!r}) while being imported; a plugin must only "
                          "define and register methods or scenarios")
    if isinstance(exc, ModuleNotFoundError):
        return InputError(f"{what} imports a module that is not installed: {exc}")
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (line {frames[-1].lineno} of {frames[-1].filename})" if frames else ""
    text = " ".join(str(exc).split())[:300]
    return InputError(f"{what} failed to import: {type(exc).__name__}: {text}{where}")


def load_plugin(spec: str) -> Any:
    """Import a module by dotted name or a ``.py`` file by path, so its decorators register entries.

    Any failure while importing it (a syntax error, a missing module, an exception, ``sys.exit``, a name clash
    with a built-in) raises `InputError` naming the plugin: the CLI's one line and exit 2.
    """
    import sys

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
        try:
            module_spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # SystemExit: sys.exit() at import must not end the CLI silently
            raise _import_failure(f"plugin file {spec!r}", exc) from None
        return module
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (spec == exc.name or spec.startswith(f"{exc.name}.")):
            raise InputError(f"plugin module {spec!r} cannot be imported: {exc}") from None
        sys.modules.pop(spec, None)
        raise _import_failure(f"plugin module {spec!r}", exc) from None
    except (Exception, SystemExit) as exc:
        sys.modules.pop(spec, None)
        raise _import_failure(f"plugin module {spec!r}", exc) from None
