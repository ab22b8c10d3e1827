"""Importing one plugin module and turning its module-level objects into records."""

from __future__ import annotations

import importlib
from types import ModuleType

from ._interfaces import interface_names
from ._log import logger
from ._records import LoadError, ModuleRecords, NotAPlugin, Origin, PluginRecord

# What a broken plugin may raise while imported or inspected.  SystemExit is included because
# a plugin calling sys.exit() at import time must not end its host; KeyboardInterrupt is not.
PLUGIN_FAULTS = (Exception, SystemExit)


def import_plugin_module(name: str, origin: Origin) -> ModuleType | LoadError:
    """Import ``name``; on failure log it with its traceback and return the LoadError."""
    try:
        return importlib.import_module(name)
    except PLUGIN_FAULTS as exc:
        logger().error("cannot import plugin module %s from %s", name, origin, exc_info=True)
        return LoadError(name, origin, exc)


def docstring(value: object) -> str | None:
    """``value.__doc__`` if it is a string (records hold only plain data)."""
    doc = getattr(value, "__doc__", None)
    return doc if isinstance(doc, str) else None


def plugin_record(
    module: str, attribute: str, value: object, origin: Origin
) -> PluginRecord | LoadError | None:
    """The record for ``value`` if it is a plugin, None if not, a LoadError if asking failed."""
    try:
        names = interface_names(value)
    except PLUGIN_FAULTS as exc:
        target = f"{module}:{attribute}"
        logger().error("cannot tell whether %s from %s is a plugin", target, origin, exc_info=True)
        return LoadError(target, origin, exc)
    if names is None:
        return None
    provided, interfaces = names
    return PluginRecord(module, attribute, docstring(value), provided, interfaces, origin)


# Set on every module by the import system, never by a plugin's author.
IMPORT_MACHINERY = frozenset({
    "__name__", "__doc__", "__package__", "__loader__", "__spec__", "__file__", "__cached__",
    "__builtins__", "__path__", "__annotations__",
})


def scan_module(module: ModuleType, origin: Origin) -> tuple[ModuleRecords, list[LoadError]]:
    """Every module-level value that is a plugin, in the module's definition order.

    Underscore names and names imported from elsewhere count, as in Twisted; only the
    attributes the import system sets (``__name__``, ``__spec__``...) are not looked at.  A
    value whose inspection raises is reported and left out; the rest of the module still
    counts.
    """
    records: list[PluginRecord] = []
    errors: list[LoadError] = []
    for attribute, value in list(vars(module).items()):
        if attribute in IMPORT_MACHINERY:
            continue
        outcome = plugin_record(module.__name__, attribute, value, origin)
        if isinstance(outcome, PluginRecord):
            records.append(outcome)
        elif outcome is not None:
            errors.append(outcome)
    return ModuleRecords(module.__name__, docstring(module), tuple(records), origin), errors


def resolve_attribute(module: ModuleType, path: str) -> object:
    """``module.a.b`` for ``path`` ``"a.b"``; AttributeError if any step is missing."""
    value: object = module
    for part in path.split("."):
        value = getattr(value, part)
    return value


def scan_object(
    module: ModuleType, attribute: str, origin: Origin
) -> tuple[ModuleRecords | None, list[LoadError]]:
    """The record of the one object an entry point names, or why there is none."""
    target = f"{module.__name__}:{attribute}"
    try:
        value = resolve_attribute(module, attribute)
    except AttributeError as exc:
        logger().warning("%s from %s names a missing object: %s", target, origin, exc)
        return None, [LoadError(target, origin, exc)]
    outcome = plugin_record(module.__name__, attribute, value, origin)
    if outcome is None:
        problem = NotAPlugin(f"{target} provides neither compat_plugin's nor Twisted's IPlugin")
        logger().warning("ignoring %s from %s: %s", target, origin, problem)
        return None, [LoadError(target, origin, problem)]
    if isinstance(outcome, LoadError):
        return None, [outcome]
    return ModuleRecords(module.__name__, docstring(module), (outcome,), origin), []
