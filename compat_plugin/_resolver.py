"""From a plugin package to the plugin objects a caller asked for.

Order, the same with a cold or a warm cache: ``__path__`` entries in their current order;
within one directory, modules by name (code-point order); within one module, plugins in the
order the module defines them.  A module name already taken by an earlier directory is
shadowed there.  An object reached twice in one call is yielded once, at its first place.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any, NamedTuple

from zope.interface.interface import InterfaceClass

from ._cache import DirectoryCache, entry_for, records_for
from ._dropins import Candidate, Listing, list_directory
from ._interfaces import identifier, imported_interface, interface_names
from ._records import LoadError, ModuleRecords, Origin, PluginRecord, Stamp
from ._scan import PLUGIN_FAULTS, import_plugin_module, scan_module

logger = logging.getLogger("compat_plugin")


class Resolution(NamedTuple):
    """Everything one discovery pass found: modules in order, and what could not be loaded."""

    modules: tuple[ModuleRecords, ...]
    errors: tuple[LoadError, ...]

    def plugins(self) -> Iterator[PluginRecord]:
        """Every plugin record, in resolution order."""
        for module in self.modules:
            yield from module.plugins


class StaleRecord(Exception):
    """A cached record no longer describes the object it names."""


class _Unsaved(NamedTuple):
    """A scan this process keeps but does not persist, so it is redone (and re-reported)
    by the next process: the module failed, or some of its objects could not be inspected."""

    stamp: Stamp
    scanned: ModuleRecords | None
    errors: tuple[LoadError, ...]


class _DirectoryState(NamedTuple):
    cache: DirectoryCache
    unsaved: dict[str, _Unsaved]


_states: dict[tuple[str, str], _DirectoryState] = {}


def _state(listing: Listing, package: str) -> _DirectoryState:
    key = (listing.directory, package)
    state = _states.get(key)
    if state is None:
        state = _states[key] = _DirectoryState(DirectoryCache(listing, package), {})
    return state


def forget_state() -> None:
    """Drop what this process remembers of plugin directories (the files stay)."""
    _states.clear()


def _scan_candidate(
    candidate: Candidate, module: str, origin: Origin, state: _DirectoryState
) -> tuple[ModuleRecords | None, tuple[LoadError, ...]]:
    unsaved = state.unsaved.get(candidate.name)
    if unsaved is not None and unsaved.stamp == candidate.stamp:
        return unsaved.scanned, unsaved.errors
    errors: tuple[LoadError, ...]
    loaded = import_plugin_module(module, origin)
    if isinstance(loaded, LoadError):
        scanned, errors = None, (loaded,)
    else:
        scanned, error_list = scan_module(loaded, origin)
        errors = tuple(error_list)
    if errors:
        state.cache.forget(candidate.name)
        state.unsaved[candidate.name] = _Unsaved(candidate.stamp, scanned, errors)
    else:
        state.unsaved.pop(candidate.name, None)
        assert scanned is not None
        state.cache.store(candidate.name, entry_for(candidate, scanned))
    return scanned, errors


def directory_modules(package: ModuleType) -> Resolution:
    """Scan (or read from the cache) every plugin module of ``package.__path__``, live."""
    package_name = package.__name__
    modules: list[ModuleRecords] = []
    errors: list[LoadError] = []
    taken: set[str] = set()
    for directory in list(getattr(package, "__path__", ())):
        if not isinstance(directory, str):
            continue
        listing = list_directory(os.path.abspath(directory))
        if listing is None:
            continue
        state = _state(listing, package_name)
        state.cache.retain(listing)
        origin = Origin("directory", path=listing.directory)
        for candidate in listing.candidates:
            if candidate.name in taken:
                continue
            taken.add(candidate.name)
            module = f"{package_name}.{candidate.name}"
            entry = state.cache.lookup(candidate)
            if entry is not None:
                modules.append(records_for(entry, module, origin))
                continue
            scanned, new_errors = _scan_candidate(candidate, module, origin, state)
            errors.extend(new_errors)
            if scanned is not None:
                modules.append(scanned)
        state.cache.save()
    return Resolution(tuple(modules), tuple(errors))


def resolve(package: ModuleType) -> Resolution:
    """All plugin records of ``package`` in the documented order, with the load errors."""
    return directory_modules(package)


def _invalidate(record: PluginRecord) -> None:
    """Make the next call rescan the module a stale ``record`` came from."""
    package, _, short = record.module.rpartition(".")
    if record.origin.path is not None:
        state = _states.get((record.origin.path, package))
        if state is not None:
            state.cache.forget(short)
            state.cache.save()


def load(record: PluginRecord) -> Any:
    """Import ``record``'s module and return its object, checked against the record.

    Raises StaleRecord if the object no longer provides what the record says; any error
    from the import itself propagates.
    """
    module = importlib.import_module(record.module)
    try:
        value = getattr(module, record.attribute)
    except AttributeError:
        raise StaleRecord(f"{record.qualified_name} no longer exists") from None
    names = interface_names(value)
    if names is None or not set(record.interfaces).issubset(names[1]):
        raise StaleRecord(f"{record.qualified_name} no longer provides what its cache says")
    return value


def _registry_adapts(record: PluginRecord, interface: InterfaceClass) -> bool:
    """Whether Twisted's adapter registry adapts one of the record's interfaces to ``interface``.

    Only interfaces whose modules are already imported are looked at: an adapter can only
    have been registered from an interface object that exists.
    """
    components = sys.modules.get("twisted.python.components")
    if components is None:
        return False
    for name in record.interfaces:
        provided = imported_interface(name)
        if provided is not None and components.getAdapterFactory(provided, interface, None):
            return True
    return False


def _matches(record: PluginRecord, interface: InterfaceClass) -> bool | None:
    """True if ``record`` provides ``interface`` (or an extension of it), False if Twisted's
    adapter registry adapts it to ``interface``, None if neither."""
    if identifier(interface) in record.interfaces:
        return True
    return False if _registry_adapts(record, interface) else None


def adapt(record: PluginRecord, interface: InterfaceClass, default: Any = None) -> Any:
    """The plugin of ``record`` as ``interface``, or ``default`` if it does not provide it.

    A plugin providing ``interface`` or an interface extending it is returned as it is; one
    that Twisted's adapter registry can adapt is returned adapted.
    """
    match = _matches(record, interface)
    if match is None:
        return default
    value = load(record)
    return value if match else interface(value, default)


def iter_plugins(interface: InterfaceClass, package: ModuleType) -> Iterator[Any]:
    """Yield the plugins of ``package`` providing ``interface``, each object once."""
    seen: dict[int, object] = {}
    for record in resolve(package).plugins():
        match = _matches(record, interface)
        if match is None:
            continue
        try:
            value = load(record)
            if id(value) in seen:
                continue
            seen[id(value)] = value
            found = value if match else interface(value, None)
        except StaleRecord as exc:
            logger.warning("ignoring cached plugin from %s: %s", record.origin, exc)
            _invalidate(record)
            continue
        except PLUGIN_FAULTS:
            logger.error(
                "cannot load plugin %s from %s as %s",
                record.qualified_name, record.origin, identifier(interface), exc_info=True,
            )
            continue
        if found is not None:
            yield found
