"""The plugin host: find plugins by name, build a plugin manager per node.

Built-in plugins live in ``peerkit.plugins.<name>`` and expose a ``Plugin``
class; third-party ones are found through the entry-point group
``peerkit.plugins`` (an entry point may name a module, a class, or an
instance). Only the plugins a config lists are registered. Classes are
instantiated once per manager, so two nodes in one process never share plugin
state.

Environment: ``PEERKIT_DISABLE_PLUGIN_AUTOLOAD=1`` ignores entry points;
``PEERKIT_TRACE_HOOKS=1`` prints every hook call to stderr.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import sys
from collections.abc import Iterable
from typing import Any

import msgspec
import pluggy

from . import hookspecs
from .config import DEFAULT_PLUGINS, ConfigError

PROJECT = "peerkit"
ENTRY_POINT_GROUP = "peerkit.plugins"
BUILTIN_PLUGINS = DEFAULT_PLUGINS


class PluginInfo(msgspec.Struct, frozen=True):
    """An installed plugin as ``peerkit plugins`` lists it."""

    name: str
    source: str  # "builtin" or the distribution that provides the entry point
    target: str  # import path
    version: str = ""


def _autoload_enabled(autoload: bool | None) -> bool:
    if autoload is not None:
        return autoload
    return os.environ.get("PEERKIT_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")


def installed_plugins(*, autoload: bool | None = None) -> dict[str, PluginInfo]:
    """Every plugin that could be enabled: built-ins, then entry points."""
    found = {name: PluginInfo(name=name, source="builtin", target=f"peerkit.plugins.{name}:Plugin") for name in BUILTIN_PLUGINS}
    if _autoload_enabled(autoload):
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in found:
                continue  # a built-in name cannot be shadowed by a third party
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else ""
            found[ep.name] = PluginInfo(name=ep.name, source=dist, target=ep.value, version=version)
    return found


def _load_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def load_plugin(name: str, *, autoload: bool | None = None) -> Any:
    """Import plugin ``name`` and return the object to register (class → fresh instance)."""
    plugins = installed_plugins(autoload=autoload)
    info = plugins.get(name)
    if info is None:
        known = ", ".join(sorted(plugins))
        raise ConfigError(f"unknown plugin {name!r} (installed: {known})")
    try:
        obj = _load_target(info.target)
    except Exception as err:  # a broken third-party package must not produce a traceback
        raise ConfigError(f"plugin {name!r} ({info.target}) failed to import: {err}") from err
    if inspect.isclass(obj):
        obj = obj()
    return obj


def make_plugin_manager(enabled: Iterable[str] = DEFAULT_PLUGINS, *, autoload: bool | None = None) -> pluggy.PluginManager:
    """A fresh manager with the core's own hooks and the ``enabled`` plugins registered."""
    from .builtin_hooks import CoreHooks

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(CoreHooks(), name="core")
    for name in enabled:
        pm.register(load_plugin(name, autoload=autoload), name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as err:
        raise ConfigError(f"plugin hook error: {err}") from err
    if os.environ.get("PEERKIT_TRACE_HOOKS", "") not in ("", "0"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def config_schemas_for(enabled: list[str], *, autoload: bool | None = None) -> dict[str, type[msgspec.Struct]]:
    """The config tables declared by the enabled plugins (ConfigError for an unknown one)."""
    pm = make_plugin_manager(enabled, autoload=autoload)
    return schemas_of(pm)


def schemas_of(pm: pluggy.PluginManager) -> dict[str, type[msgspec.Struct]]:
    schemas: dict[str, type[msgspec.Struct]] = {}
    for result in pm.hook.peerkit_config_schema():
        if result:
            table, struct = result
            schemas[table] = struct
    return schemas


def plugin_names(pm: pluggy.PluginManager) -> list[str]:
    """Names of the enabled plugins, in registration order (the core's own hooks excluded)."""
    return [name for name, _ in pm.list_name_plugin() if name != "core"]
