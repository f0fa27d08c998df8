"""Plugins: loading each once per process, and the sha256 of their source that job specs and records carry."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cowbench.errors import InputError
from cowbench.registry import load_plugin

_LOADED_PLUGINS: dict[str, dict[str, Any]] = {}  # plugin as given -> its digest, in load order


def plugin_digest(plugin: str) -> dict[str, Any]:
    """``{"plugin": name, "sha256": hash of its source}`` of a plugin file or module, read without importing it.

    A file is named by its file name (no machine path); a module by its dotted name, hashed from the file its
    import spec points at (a package: its ``__init__``).
    """
    import hashlib
    import importlib.util

    if plugin.endswith(".py"):
        path, name = Path(plugin), Path(plugin).name
    else:
        try:
            found = importlib.util.find_spec(plugin)
        except (ImportError, ValueError):
            found = None
        if found is None or not found.origin or not Path(found.origin).is_file():
            raise InputError(f"plugin module {plugin!r} cannot be found to hash its source")
        path, name = Path(found.origin), plugin
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"plugin file {plugin!r} cannot be read: {exc.strerror}") from None
    return {"plugin": name, "sha256": hashlib.sha256(data).hexdigest()}


def plugin_digests(plugins: Sequence[str]) -> list[dict[str, Any]]:
    """`plugin_digest` of each plugin, in the order given (each once)."""
    seen: dict[str, dict[str, Any]] = {}
    for plugin in plugins:
        if plugin not in seen:
            seen[plugin] = _LOADED_PLUGINS.get(plugin) or plugin_digest(plugin)
    return list(seen.values())


def loaded_plugins() -> list[str]:
    """The plugins this process loaded through `load_plugins_once`, in load order."""
    return list(_LOADED_PLUGINS)


def load_plugins_once(plugins: tuple[str, ...]) -> None:
    """Import each plugin once per process: a ``.py`` plugin is executed on every load, and a worker runs many jobs.

    Its source hash is taken before the import (so what ran is what was hashed) and kept for `loaded_plugins`.
    """
    for plugin in plugins:
        if plugin not in _LOADED_PLUGINS:
            digest = plugin_digest(plugin)
            load_plugin(plugin)
            _LOADED_PLUGINS[plugin] = digest
