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

import importlib
import os
import sys
import time
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any, NamedTuple, Protocol

from zope.interface.interface import InterfaceClass

from ._cache import DirectoryCache, Entry, decode, dump_json, entry_for, paused_gc
from ._dropins import Candidate, Listing, list_directory
from ._entrypoints import (
    EntryPointIndex,
    EntryPointSpec,
    canonical_name,
    current_index,
    declared,
    file_candidate,
    forget_indexes,
    save_index,
)
from ._interfaces import identifier, imported_interface, interface_names
from ._log import logger
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
        from fnmatch import fnmatchcase

        if distribution is not None and fnmatchcase(distribution, canonical_name(pattern)):
            return True
        return any(fnmatchcase(name, pattern) for name in names)

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
    _caches.clear()
    _unsaved.clear()
    _warned.clear()
    forget_indexes()


def _warn_once(message: str, *args: object) -> None:
    text = message % args
    if text not in _warned:
        _warned.add(text)
        logger().warning("%s", text)


class _Store(Protocol):
    def store(self, key: str, entry: Entry) -> None: ...

    def forget(self, key: str) -> None: ...


def _recalled(key: tuple[str, str], candidate: Candidate | None) -> _Scan | None:
    """An unpersisted scan of ``key`` that still matches its file (re-stated if not given)."""
    kept = _unsaved.get(key)
    if kept is None or kept.candidate is None:
        return kept
    current = candidate or file_candidate(kept.candidate.name, kept.candidate.filename)
    return kept if current.stamp == kept.candidate.stamp else None


def _scanned(
    store: _Store,
    key: tuple[str, str],
    module: str,
    attribute: str | None,
    origin: Origin,
    candidate: Candidate | None,
) -> _Scan:
    """Import and scan one candidate (its file found after import when not known before),
    and record the outcome in ``store`` under ``key[1]``, or only in memory when it must not
    be persisted."""
    remembered = _recalled(key, candidate)
    if remembered is not None:
        return remembered
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
    trusted = not preloaded or (candidate is not None and candidate.mtime_ns < _STARTED_NS)
    if result.errors or result.scanned is None or result.candidate is None or not trusted:
        _unsaved[key] = result
        store.forget(key[1])
    else:
        _unsaved.pop(key, None)
        store.store(key[1], entry_for(result.candidate, result.scanned))
    return result


class _Collected(NamedTuple):
    """What a pass gathers.  ``wanted`` (the JSON-quoted name of the asked interface, or None
    for everything) lets cached modules that do not mention it be passed over undecoded."""

    wanted: str | None
    package: str
    modules: list[ModuleRecords]
    errors: list[LoadError]
    skipped: list[Skip]
    # Short names of the directory modules seen so far, with where each was found.
    directory_modules: dict[str, Origin]

    def directory_origin(self, module: str) -> Origin | None:
        """Where ``module`` was found as a directory module, if it was."""
        package, _, short = module.rpartition(".")
        return self.directory_modules.get(short) if package == self.package else None

    def add(self, scan: _Scan) -> None:
        self.errors.extend(scan.errors)
        if scan.scanned is not None:
            self.modules.append(scan.scanned)

    def cached(self, details: str | None, module: str, origin: Origin) -> bool:
        """Take what stored ``details`` say of ``module``; False if it must be scanned.

        ``""`` stands for details known not to mention the wanted interface.
        """
        if details is None:
            return False
        # A cheap, conservative test: a false "yes" only costs decoding the details.
        if not details or (self.wanted is not None and self.wanted not in details):
            return True
        decoded = decode(details, module, origin)
        if decoded is not None:
            self.modules.append(decoded)
        return decoded is not None


def plugin_directories(package: ModuleType) -> Iterator[Listing]:
    """The listings of ``package.__path__``, live and in order; entries that cannot be listed,
    and repeats of an entry (a zip-imported package's own directory comes back from
    ``pluginPackagePaths``), are left out."""
    seen: set[str] = set()
    for directory in list(getattr(package, "__path__", ())):
        if not isinstance(directory, str) or os.path.abspath(directory) in seen:
            continue
        seen.add(os.path.abspath(directory))
        with paused_gc():
            listing = list_directory(os.path.abspath(directory))
        if listing is not None:
            yield listing


def _directory_modules(
    package: ModuleType, environment: str, rules: Rules, out: _Collected
) -> None:
    """Scan (or read from the cache) every plugin module of ``package.__path__``, live."""
    package_name = package.__name__
    for listing in plugin_directories(package):
        cache = _caches.get((listing.directory, package_name))
        if cache is None or cache.environment != environment:
            cache = _caches[listing.directory, package_name] = DirectoryCache(
                listing, package_name, environment
            )
        origin = Origin("directory", path=listing.directory)
        prefix = f"{package_name}."
        candidates = _admitted(listing, origin, prefix, rules, out)
        for name, candidate, details in cache.select(listing, candidates, out.wanted):
            module = prefix + name
            if not out.cached(details, module, origin):
                key = (listing.directory, name)
                out.add(_scanned(cache, key, module, None, origin, candidate))
        cache.save()


def _admitted(
    listing: Listing, origin: Origin, prefix: str, rules: Rules, out: _Collected
) -> list[Candidate]:
    """The candidates of ``listing`` that are neither shadowed by an earlier directory nor
    disabled; the others are recorded as skipped, in name order."""
    taken = out.directory_modules
    candidates = list(listing.candidates)
    shadowed = taken.keys() & {candidate.name for candidate in candidates} if taken else set()
    skipped = [
        Skip(prefix + c.name, origin, f"shadowed by {taken[c.name]}")
        for c in candidates
        if c.name in shadowed
    ]
    if shadowed:
        candidates = [c for c in candidates if c.name not in shadowed]
    taken.update((candidate.name, origin) for candidate in candidates)
    if rules.disable:
        admitted = []
        for candidate in candidates:
            pattern = rules.blocking((candidate.name, prefix + candidate.name))
            if pattern is None:
                admitted.append(candidate)
            else:
                reason = f"disabled by pattern {pattern!r}"
                skipped.append(Skip(prefix + candidate.name, origin, reason))
        candidates = admitted
    out.skipped.extend(sorted(skipped, key=lambda skip: skip.target))
    return candidates


def _entry_point_module(
    index: EntryPointIndex,
    spec: EntryPointSpec,
    module: str,
    attribute: str | None,
    out: _Collected,
) -> None:
    """What one entry point contributes: from the index if its module file is unchanged.

    Before anything of it is used, the distribution's ``entry_points.txt`` is read again to
    confirm it still declares the entry point, so the index never names a module to import.
    """
    origin = spec.origin
    entry = index.scanned.get(spec.key)
    if entry is not None and not entry.matches(file_candidate(spec.key, entry.filename)):
        entry = None
    details = entry.details if entry is not None else None
    if details is not None and out.wanted is not None and out.wanted not in details:
        return  # current, and not concerning the asked interface
    if not declared(spec.path, index.group, spec.name, spec.value):
        _warn_once("entry point %s = %s of %s %s is no longer declared; rereading metadata",
                   spec.name, spec.value, spec.distribution, spec.version)
        index.invalidate()
        return
    if not out.cached(details, module, origin):
        key = (f"entry-point {index.group}", spec.key)
        out.add(_scanned(index, key, module, attribute, origin, None))


def _entry_point_modules(index: EntryPointIndex, rules: Rules, out: _Collected) -> None:
    """Every entry point of the group, gated and filtered before anything is imported."""
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
        first = out.directory_origin(module) if attribute is None else None
        if first is not None:
            out.skipped.append(Skip(module, origin, f"duplicate of the one from {first}"))
            continue
        _entry_point_module(index, spec, module, attribute, out)


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


def _adapters_to(interface: InterfaceClass) -> bool:
    """Whether Twisted's adapter registry may adapt anything to ``interface``."""
    components = sys.modules.get("twisted.python.components")
    if components is None:
        return False
    # The registry counts registrations by provided interface; an adapter to an interface
    # extending ``interface`` serves it too.  Without that table, assume it may.
    provided = getattr(components.globalRegistry, "_provided", None)
    if not isinstance(provided, dict):
        return True
    return any(target.isOrExtends(interface) for target in provided)


def resolve(
    package: ModuleType, rules: Rules | None = None, interface: InterfaceClass | None = None
) -> Resolution:
    """The plugin records of ``package`` from both sources, in the documented order.

    With ``interface``, modules whose cached records do not mention it are passed over (their
    records are not built), unless Twisted's adapter registry may adapt something to it.
    """
    rules = rules if rules is not None else Rules()
    wanted = None
    if interface is not None and not _adapters_to(interface):
        wanted = dump_json(identifier(interface))
    index = current_index(package.__name__)
    out = _Collected(wanted, package.__name__, [], [], [], {})
    _directory_modules(package, index.environment, rules, out)
    _entry_point_modules(index, rules, out)
    save_index(index)
    modules = _deduplicated(out)
    return Resolution(modules, tuple(out.errors), tuple(out.skipped))


def _invalidate(record: PluginRecord, group: str) -> None:
    """Make the next call rescan the module a stale ``record`` (found for the plugin package
    ``group``) came from, in this process and the next."""
    origin = record.origin
    if origin.kind == "directory":
        package, _, short = record.module.rpartition(".")
        cache = _caches.get((str(origin.path), package))
        if cache is not None:
            cache.forget(short)
            cache.save()
        return
    index = current_index(group)
    for spec in index.entry_points:
        if (spec.distribution, spec.name) == (origin.distribution, origin.entry_point):
            index.forget(spec.key)
            _unsaved.pop((f"entry-point {group}", spec.key), None)
    save_index(index)


def load(record: PluginRecord, interface: InterfaceClass | None = None) -> Any:
    """Import ``record``'s module and return its object, checked against the record.

    Raises StaleRecord if the object no longer provides what the record says (providing
    ``interface``, when given, is enough); any error from the import itself propagates (a
    plugin module may raise anything).
    """
    module = importlib.import_module(record.module)
    try:
        value = resolve_attribute(module, record.attribute)
    except AttributeError:
        raise StaleRecord(f"{record.qualified_name} no longer exists") from None
    if interface is not None and interface.providedBy(value):
        return value
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


def _matches(record: PluginRecord, interface: InterfaceClass, adapters: bool) -> bool | None:
    """True if ``record`` provides ``interface`` (or an extension of it), False if Twisted's
    adapter registry adapts it to ``interface`` (looked at only if ``adapters``), else None."""
    if identifier(interface) in record.interfaces:
        return True
    return False if adapters and _registry_adapts(record, interface) else None


def adapt(record: PluginRecord, interface: InterfaceClass, default: Any = None) -> Any:
    """The plugin of ``record`` as ``interface``, or ``default`` if it does not provide it.

    A plugin providing ``interface`` or an interface extending it is returned as it is; one
    that Twisted's adapter registry can adapt is returned adapted.
    """
    match = _matches(record, interface, _adapters_to(interface))
    if match is None:
        return default
    value = load(record, interface if match else None)
    return value if match else interface(value, default)


def iter_plugins(
    interface: InterfaceClass, package: ModuleType, rules: Rules | None = None
) -> Iterator[Any]:
    """Yield the plugins of ``package`` providing ``interface``, each object once."""
    seen: dict[int, object] = {}
    adapters = _adapters_to(interface)
    for record in resolve(package, rules, interface).plugins():
        match = _matches(record, interface, adapters)
        if match is None:
            continue
        try:
            value = load(record, interface if match else None)
            if id(value) in seen:
                continue
            seen[id(value)] = value
            found = value if match else interface(value, None)
        except StaleRecord as exc:
            logger().warning("ignoring cached plugin from %s: %s", record.origin, exc)
            _invalidate(record, package.__name__)
            continue
        except PLUGIN_FAULTS:
            logger().error(
                "cannot load plugin %s from %s as %s",
                record.qualified_name, record.origin, identifier(interface), exc_info=True,
            )
            continue
        if found is not None:
            yield found
