"""From a plugin package to the plugin objects a caller asked for: one resolver, two sources.

Order, the same with a cold or a warm cache: first the directory plugins -- ``__path__``
entries in their current order; within one directory, modules by name (code-point order) --
then the entry-point plugins, by their distribution's position on ``sys.path``, then
distribution name, then entry-point name; within one module, plugins in the order the module
defines them.  A module name already taken by an earlier directory is shadowed there; a module
or object already reached is not listed again; an object reached twice in one call (imported
into two modules) is yielded once, at its first place.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any, NamedTuple

from zope.interface.interface import InterfaceClass

from ._cache import DirectoryCache, Entry, entry_for, matches, records_for
from ._dropins import Candidate, list_directory
from ._entrypoints import EntryPointIndex, EntryPointSpec, current_index, file_candidate, save_index
from ._interfaces import identifier, imported_interface, interface_names
from ._records import (
    IncompatiblePlugin,
    LoadError,
    MalformedEntryPoint,
    ModuleRecords,
    Origin,
    PluginRecord,
    Skip,
)
from ._scan import (
    PLUGIN_FAULTS,
    import_plugin_module,
    resolve_attribute,
    scan_module,
    scan_object,
)

logger = logging.getLogger("compat_plugin")


class Resolution(NamedTuple):
    """One discovery pass: modules in order, what could not be loaded, what was left out."""

    modules: tuple[ModuleRecords, ...]
    errors: tuple[LoadError, ...]
    skipped: tuple[Skip, ...]

    def plugins(self) -> Iterator[PluginRecord]:
        """Every plugin record, in resolution order."""
        for module in self.modules:
            yield from module.plugins


class StaleRecord(Exception):
    """A cached record no longer describes the object it names."""


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class Rules:
    """Which candidates may be imported: glob patterns checked before any import.

    A candidate is skipped when a disable pattern matches its distribution name, entry-point
    name or module name (short or dotted) and no enable pattern does.  Disable patterns come
    from ``COMPAT_PLUGIN_DISABLE`` (comma-separated) and the ``disable`` argument; distribution
    names are compared normalized (case, and ``-``/``_``/``.`` alike).
    """

    def __init__(self, disable: Iterable[str] = (), enable: Iterable[str] = ()) -> None:
        from_environment = os.environ.get("COMPAT_PLUGIN_DISABLE", "").split(",")
        self.disable = tuple(p.strip() for p in [*from_environment, *disable] if p.strip())
        self.enable = tuple(p.strip() for p in enable if p.strip())

    @staticmethod
    def _match(pattern: str, names: tuple[str, ...], distribution: str | None) -> bool:
        if distribution is not None and fnmatch.fnmatchcase(distribution, _normalized(pattern)):
            return True
        return any(fnmatch.fnmatchcase(name, pattern) for name in names)

    def blocking(self, names: tuple[str, ...], distribution: str | None = None) -> str | None:
        """The disable pattern that keeps these names out, or None if they may be imported."""
        if not self.disable:
            return None
        for pattern in self.disable:
            if self._match(pattern, names, distribution):
                if any(self._match(allow, names, distribution) for allow in self.enable):
                    return None
                return pattern
        return None


class _Scan(NamedTuple):
    """What importing one candidate gave.  Scans that are not persisted -- the module failed,
    some object could not be inspected, or the module was already imported and may predate
    its file -- are kept in memory for the process, so they are neither redone nor re-reported
    until the file changes; the next process tries again."""

    candidate: Candidate | None
    scanned: ModuleRecords | None
    errors: tuple[LoadError, ...]


_caches: dict[tuple[str, str], DirectoryCache] = {}
_unsaved: dict[tuple[str, str], _Scan] = {}
# Files changed after this point may be newer than a module imported before a scan.
_STARTED_NS = time.time_ns()
_warned: set[str] = set()


def forget_state() -> None:
    """Drop what this process remembers of plugin directories and entry points."""
    from ._entrypoints import forget_indexes

    _caches.clear()
    _unsaved.clear()
    _warned.clear()
    forget_indexes()


def _warn_once(message: str, *args: object) -> None:
    text = message % args
    if text not in _warned:
        _warned.add(text)
        logger.warning("%s", text)


def _recalled(key: tuple[str, str], candidate: Candidate | None) -> _Scan | None:
    """An unpersisted scan of ``key`` that still matches its file (re-stated if not given)."""
    kept = _unsaved.get(key)
    if kept is None or kept.candidate is None:
        return kept
    current = candidate or file_candidate(kept.candidate.name, kept.candidate.filename)
    return kept if current.stamp == kept.candidate.stamp else None


def _scan(
    key: tuple[str, str],
    module: str,
    attribute: str | None,
    origin: Origin,
    candidate: Candidate | None,
) -> tuple[_Scan, Entry | None]:
    """Import and scan one candidate (its file found after import when not known before).

    Returns the scan and the entry to persist, None when the scan may only live in memory.
    """
    preloaded = module in sys.modules
    loaded = import_plugin_module(module, origin)
    if isinstance(loaded, LoadError):
        result = _Scan(candidate, None, (loaded,))
    else:
        found: ModuleRecords | None
        if attribute is None:
            found, problems = scan_module(loaded, origin)
        else:
            found, problems = scan_object(loaded, attribute, origin)
        if candidate is None:
            candidate = file_candidate(key[1], getattr(loaded, "__file__", None))
        result = _Scan(candidate, found, tuple(problems))
    # A module imported before this pass reflects its file as it was then; if the file has
    # been written since this process started, what we scanned may be older than its stamp.
    trusted = not preloaded or (candidate is not None and candidate.stamp.mtime_ns < _STARTED_NS)
    if result.errors or result.scanned is None or result.candidate is None or not trusted:
        _unsaved[key] = result
        return result, None
    _unsaved.pop(key, None)
    return result, entry_for(result.candidate, result.scanned)


class _Collected(NamedTuple):
    modules: list[ModuleRecords]
    errors: list[LoadError]
    skipped: list[Skip]


def _directory_modules(
    package: ModuleType, environment: str, rules: Rules, out: _Collected
) -> None:
    """Scan (or read from the cache) every plugin module of ``package.__path__``, live."""
    package_name = package.__name__
    taken: dict[str, str] = {}
    for directory in list(getattr(package, "__path__", ())):
        if not isinstance(directory, str):
            continue
        listing = list_directory(os.path.abspath(directory))
        if listing is None:
            continue
        cache = _caches.get((listing.directory, package_name))
        if cache is None or cache.environment != environment:
            cache = _caches[listing.directory, package_name] = DirectoryCache(
                listing, package_name, environment
            )
        cache.retain(listing)
        origin = Origin("directory", path=listing.directory)
        for candidate in listing.candidates:
            module = f"{package_name}.{candidate.name}"
            if candidate.name in taken:
                out.skipped.append(Skip(module, origin, f"shadowed by {taken[candidate.name]}"))
                continue
            taken[candidate.name] = os.path.join(listing.directory, candidate.filename)
            pattern = rules.blocking((candidate.name, module))
            if pattern is not None:
                out.skipped.append(Skip(module, origin, f"disabled by pattern {pattern!r}"))
                continue
            entry = cache.lookup(candidate)
            if entry is not None:
                out.modules.append(records_for(entry, module, origin))
                continue
            key = (listing.directory, module)
            result = _recalled(key, candidate)
            if result is None:
                result, fresh = _scan(key, module, None, origin, candidate)
                if fresh is None:
                    cache.forget(candidate.name)
                else:
                    cache.store(candidate.name, fresh)
            out.errors.extend(result.errors)
            if result.scanned is not None:
                out.modules.append(result.scanned)
        cache.save()


def _entry_point_module(
    index: EntryPointIndex, spec: EntryPointSpec, module: str, attribute: str | None
) -> _Scan:
    """What one entry point contributes: from the index if its module file is unchanged."""
    origin = spec.origin
    entry = index.scanned.get(spec.key)
    if entry is not None and matches(entry, file_candidate(spec.key, entry[0])):
        return _Scan(None, records_for(entry, module, origin), ())
    key = (f"entry-point {index.group}", spec.key)
    result = _recalled(key, None)
    if result is None:
        result, fresh = _scan(key, module, attribute, origin, None)
        if fresh is None:
            index.forget(spec)
        else:
            index.store(spec, fresh)
    return result


def _entry_point_modules(index: EntryPointIndex, rules: Rules, out: _Collected) -> None:
    """Every entry point of the group, gated and filtered before anything is imported."""
    taken = {found.module: found.origin for found in out.modules}
    for item in index.shadowed:
        origin = Origin("entry-point", item.path, item.distribution, item.version)
        out.skipped.append(Skip(item.distribution, origin, f"shadowed by {item.by}"))
    for spec in index.entry_points:
        origin = spec.origin
        reason = index.incompatible.get(spec.distribution)
        if reason is not None:
            _warn_once("skipping plugin distribution %s %s: it %s",
                       spec.distribution, spec.version, reason)
            out.errors.append(LoadError(spec.distribution, origin, IncompatiblePlugin(reason)))
            continue
        target = spec.target()
        if target is None:
            problem = MalformedEntryPoint(f"{spec.name} = {spec.value!r} is not module[:object]")
            _warn_once("ignoring entry point of %s %s: %s", spec.distribution, spec.version,
                       problem)
            out.errors.append(LoadError(f"{spec.distribution}:{spec.name}", origin, problem))
            continue
        module, attribute = target
        pattern = rules.blocking((spec.name, module), spec.distribution)
        if pattern is not None:
            out.skipped.append(Skip(spec.value, origin, f"disabled by pattern {pattern!r}"))
            continue
        if attribute is None and module in taken:
            out.skipped.append(Skip(module, origin, f"duplicate of the one from {taken[module]}"))
            continue
        outcome = _entry_point_module(index, spec, module, attribute)
        out.errors.extend(outcome.errors)
        if outcome.scanned is not None:
            out.modules.append(outcome.scanned)


def _deduplicated(out: _Collected) -> tuple[ModuleRecords, ...]:
    """Drop plugins (and whole modules) already reached through an earlier candidate."""
    seen: dict[tuple[str, str], Origin] = {}
    kept: list[ModuleRecords] = []
    for found in out.modules:
        fresh: list[PluginRecord] = []
        for record in found.plugins:
            first = seen.get((record.module, record.attribute))
            if first is None:
                seen[record.module, record.attribute] = record.origin
                fresh.append(record)
            else:
                reason = f"duplicate of the one from {first}"
                out.skipped.append(Skip(record.qualified_name, record.origin, reason))
        if len(fresh) == len(found.plugins):
            kept.append(found)
        elif fresh:
            kept.append(found._replace(plugins=tuple(fresh)))
    return tuple(kept)


def resolve(package: ModuleType, rules: Rules | None = None) -> Resolution:
    """All plugin records of ``package`` from both sources, in the documented order."""
    rules = rules if rules is not None else Rules()
    index = current_index(package.__name__)
    out = _Collected([], [], [])
    _directory_modules(package, index.environment, rules, out)
    _entry_point_modules(index, rules, out)
    save_index(index)
    modules = _deduplicated(out)
    return Resolution(modules, tuple(out.errors), tuple(out.skipped))


def _invalidate(record: PluginRecord) -> None:
    """Make the next call rescan the module a stale ``record`` came from."""
    if record.origin.kind != "directory" or record.origin.path is None:
        forget_state()
        return
    package, _, short = record.module.rpartition(".")
    cache = _caches.get((record.origin.path, package))
    if cache is not None:
        cache.forget(short)
        cache.save()


def load(record: PluginRecord) -> Any:
    """Import ``record``'s module and return its object, checked against the record.

    Raises StaleRecord if the object no longer provides what the record says; any error
    from the import itself propagates (a plugin module may raise anything).
    """
    module = importlib.import_module(record.module)
    try:
        value = resolve_attribute(module, record.attribute)
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


def iter_plugins(
    interface: InterfaceClass, package: ModuleType, rules: Rules | None = None
) -> Iterator[Any]:
    """Yield the plugins of ``package`` providing ``interface``, each object once."""
    seen: dict[int, object] = {}
    for record in resolve(package, rules).plugins():
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
