"""From a plugin package to its plugin records: one resolver over both sources.

Order, the same with a cold or a warm cache: first the directory plugins -- ``__path__``
entries in their current order; within one directory, modules by name (code-point order) --
then the entry-point plugins, by their distribution's position on ``sys.path``, then
distribution name, then entry-point name; within one module, plugins in the order the module
defines them.  A module name already taken by an earlier directory is shadowed there; a module
or object already reached is not listed again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING

from ._directories import Listing, module_stamp, plugin_directories
from ._directory_cache import DirectoryCache
from ._entry_indexes import Contribution, EntryIndexes
from ._entrypoints import Declared, EntryIndex, scan_key
from ._log import logger
from ._records import (
    Discovery,
    IncompatiblePlugin,
    LoadError,
    MalformedEntryPoint,
    ModuleRecords,
    Origin,
    PluginRecord,
    Skip,
    Stamp,
    Value,
)
from ._rules import Rules

if TYPE_CHECKING:
    from ._scan import Scan, Scanner
from ._entries import Entry, becomes_importable, decode, details_of, mentions
from ._store import held_full_collections


class _Kept(Value):
    """A scan kept in memory only -- the module failed, some object could not be inspected,
    or the module was imported before and may predate its file -- so that it is neither redone
    nor reported again while its file keeps this stamp and ``sys.modules`` the same module
    (``loaded``: not imported again nor reloaded); the next process tries again."""

    __slots__ = ("filename", "stamp", "scan", "loaded")

    def __init__(self, filename: str, stamp: Stamp | None, scan: Scan,
                 loaded: tuple[object, object]) -> None:
        self.filename, self.stamp, self.scan, self.loaded = filename, stamp, scan, loaded

    def holds(self, stamp: Stamp | None, module: str) -> bool:
        """Whether this scan still stands for ``module``, its file stamped ``stamp``."""
        from ._scan import still_loaded

        return self.stamp == stamp and still_loaded(self.loaded, module)


class _Pass:
    """What one resolution gathers.  ``wanted`` (how the stored names of the interfaces that
    answer the query end, ``_api._wanted``, or None for everything) lets cached modules that
    mention none of them be passed over."""

    def __init__(self, package: str, wanted: tuple[str, ...] | None) -> None:
        self.package = package
        self.wanted = wanted
        self.modules: list[ModuleRecords] = []
        self.errors: list[LoadError] = []
        self.skipped: list[Skip] = []
        # The short names of each directory's modules, with where they were found: a name
        # an earlier directory holds is shadowed in a later one.
        self.directories: list[tuple[set[str], Origin]] = []
        # Whether each entry point's module would be imported from the file it was scanned
        # from, looked up once.
        self._read: dict[tuple[str, str], bool] = {}

    def directory_origin(self, module: str) -> Origin | None:
        """Where ``module`` was found as a directory module, if it was."""
        package, _, short = module.rpartition(".")
        if package != self.package:
            return None
        return next((origin for names, origin in self.directories if short in names), None)

    def read_from(self, entry: Entry, module: str) -> bool:
        """Whether importing ``module`` now would read the file ``entry`` was scanned from.
        An index keeps one scan per entry point wherever its module was found; a working copy
        ahead on ``sys.path`` (or the installed module behind it) is another file."""
        # Imported here: a call whose group has no entry points never needs it.
        from ._imports import would_read

        key = (module, entry.filename)
        if key not in self._read:
            self._read[key] = would_read(module, entry.filename)
        return self._read[key]

    def add(self, scan: Scan) -> None:
        self.errors.extend(scan.errors)
        if scan.records is not None:
            self.modules.append(scan.records)

    def take(self, details: str | None, module: str, origin: Origin) -> bool:
        """Take what stored ``details`` say of ``module``; False if it must be scanned."""
        decoded = decode(details, module, origin) if details is not None else None
        if decoded is not None:
            self.modules.append(decoded)
        return decoded is not None


class Resolver:
    """The process's memory of plugin discovery: directory caches, entry-point indexes, scans
    kept in memory, and what was already reported.  One serves the whole process."""

    def __init__(self) -> None:
        self._directories: dict[tuple[str, str], DirectoryCache] = {}
        self.entry_points = EntryIndexes()
        self._kept: dict[tuple[str, str], _Kept] = {}
        self._reported: set[tuple[str, ...]] = set()
        self._scanner: Scanner | None = None
        # ``cache regenerate``: indexes go beside every entry that can be written, and each
        # module about to be scanned is told to ``on_scan`` (its progress display).
        self.regenerating = False
        self.on_scan: Callable[[str], None] | None = None
        # Files changed after this may be newer than a module imported before a scan.
        self._started_ns = time.time_ns()

    # -- one pass --------------------------------------------------------------------------

    def resolve(self, package: ModuleType, rules: Rules | None = None,
                wanted: tuple[str, ...] | None = None) -> Discovery:
        """Every plugin record of ``package`` from both sources, in the documented order;
        with ``wanted``, modules whose cached records mention none of it are passed over."""
        out = _Pass(package.__name__, wanted)
        rules = rules if rules is not None else Rules()
        # Full collections are held for the pass (``held_full_collections`` says why): measured
        # on a cold pass over a thousand modules, the collector then takes about what it takes
        # in twisted.plugin's call; held whole, up to twice that, in one collection after the
        # pass (and a plugin module's import piled up its cyclic garbage meanwhile); let run
        # freely, a full collection could fall in the pass, costing as much again.
        with held_full_collections():
            self._directory_modules(package, rules, out)
            self._entry_point_modules(package.__name__, rules, out)
        modules = _deduplicated(out)
        plugins = tuple(record for module in modules for record in module.plugins)
        return Discovery(plugins, tuple(out.errors), tuple(out.skipped), modules)

    def _directory_modules(self, package: ModuleType, rules: Rules, out: _Pass) -> None:
        prefix = f"{out.package}."
        for listing in plugin_directories(package):
            cache = self.directory_cache(listing, out.package)
            origin = Origin("directory", path=listing.directory)
            admitted = _admitted(listing, origin, prefix, rules, out)
            for module, details in cache.select(listing, admitted, out.wanted):
                qualified = prefix + module.name
                if not out.take(details, qualified, origin):
                    key = (listing.directory, module.name)
                    known = (module.filename, module.stamp)
                    out.add(self._scan(cache, key, qualified, None, origin, known))
            cache.save()

    def directory_cache(self, listing: Listing, package: str) -> DirectoryCache:
        """The process's cache of one plugin directory for ``package``."""
        cache = self._directories.get((listing.directory, package))
        if cache is None:
            cache = self._directories[listing.directory, package] = DirectoryCache(listing,
                                                                                    package)
        return cache

    def _entry_point_modules(self, group: str, rules: Rules, out: _Pass) -> None:
        view = self.entry_points.view(group)
        for shadow, _index in view.shadowed:
            origin = Origin("entry-point", shadow.metadata, shadow.key, shadow.version)
            out.skipped.append(Skip(shadow.key, origin, f"shadowed by {shadow.by}"))
        for contribution in sorted(view.contributions,
                                   key=lambda c: (c.position, c.distribution.key)):
            distribution = contribution.distribution
            declared = sorted(distribution.entry_points, key=lambda d: (d.name, d.value))
            blocking = [rules.blocking((d.name, d.module) if d.module else (d.name,),
                                    distribution.key) for d in declared]
            # The gate is for what would be imported: a distribution whose every entry point
            # is disabled is only left out, even if it needs another host.
            if None in blocking:
                reason = self.entry_points.gate(contribution, group, view)
                if reason:
                    error = IncompatiblePlugin(reason)
                    out.errors.append(LoadError(distribution.key, contribution.origin(), error))
                    continue
            for one, pattern in zip(declared, blocking):
                self._entry_point(contribution, one, pattern, out)
        for source in view.sources:
            self.entry_points.save(source, self.regenerating)

    def _entry_point(self, contribution: Contribution, declared: Declared,
                     disabled_by: str | None, out: _Pass) -> None:
        distribution, origin = contribution.distribution, contribution.origin(declared)
        if disabled_by is not None:
            out.skipped.append(Skip(declared.value, origin,
                                    f"disabled by pattern {disabled_by!r}"))
            return
        if declared.module is None:
            problem = MalformedEntryPoint(f"{declared.name} = {declared.value!r} is not "
                                          "module[:object]")
            out.errors.append(LoadError(f"{distribution.key}:{declared.name}", origin, problem))
            return
        first = out.directory_origin(declared.module) if declared.attribute is None else None
        if first is not None:
            out.skipped.append(Skip(declared.module, origin, f"duplicate of the one from {first}"))
            return
        key = scan_key(distribution, declared)
        entry = contribution.source.scans.get(key)
        if (entry is not None and _current(entry, contribution.source.written_ns)
                and out.read_from(entry, declared.module)):
            if out.wanted is not None and not mentions(entry.details, out.wanted):
                return
            if out.take(entry.details, declared.module, origin):
                return
        where = (f"entry-point {contribution.source.group}", key)
        out.add(self._scan(contribution.source, where, declared.module, declared.attribute,
                           origin, None))

    # -- scanning --------------------------------------------------------------------------

    def _scan(self, store: DirectoryCache | EntryIndex, key: tuple[str, str], module: str,
              attribute: str | None, origin: Origin,
              known: tuple[str, Stamp] | None) -> Scan:
        """Import and scan one candidate (its file stamped after import when not known
        before), and record the outcome in ``store`` under ``key[1]`` -- or only in memory
        when it must not be persisted."""
        kept = self._kept.get(key)
        if kept is not None and kept.holds(known[1] if known else _stamp(kept.filename), module):
            return kept.scan
        if self.on_scan is not None:
            self.on_scan(module)
        scanner = self.scanner()
        # A listing's stamp is the file's own, but an archive member's is not (``_directories``).
        listed = None
        if known is not None and isinstance(store, DirectoryCache) and not store.in_archive:
            listed = known[1]
        scan = scanner.scan(module, attribute, origin, listed)
        filename, stamp = known if known else (scan.file or "", _stamp(scan.file or ""))
        # A module imported before this scan reflects its file as it was when a scan of this
        # process imported it, if one did (else what it failed to import is not known): not
        # if the file changed since (a copy keeping an older time, too) or the module was
        # imported again or reloaded, nor if the file has been written since this process
        # started.  A module without a file (a namespace package) has nothing to validate a
        # scan with.
        trusted = stamp is not None and (not scan.preloaded or (
            scanner.reflects(module) and stamp.mtime_ns < self._started_ns))
        if scan.errors or scan.records is None or stamp is None or not trusted:
            from ._scan import loaded

            self._kept[key] = _Kept(filename, stamp, scan, loaded(module))
            store.forget(key[1])
        else:
            self._kept.pop(key, None)
            store.store(key[1], Entry(filename, stamp, details_of(scan.records), scan.missing))
        return scan

    def scanner(self) -> Scanner:
        """What imports plugin modules for scans (made on the first scan: a warm call makes
        none)."""
        if self._scanner is None:
            from ._scan import Scanner

            self._scanner = Scanner()
        return self._scanner

    # -- after a pass ----------------------------------------------------------------------

    def invalidate(self, record: PluginRecord, group: str) -> None:
        """Make this process and the next rescan the module a stale ``record`` (found for the
        plugin package ``group``) came from."""
        origin = record.origin
        if origin.kind == "directory":
            package, _, short = record.module.rpartition(".")
            cache = self._directories.get((str(origin.path), package))
            if cache is not None:
                cache.forget(short)
                cache.save()
            return
        for contribution in self.entry_points.view(group).contributions:
            if contribution.distribution.key != origin.distribution:
                continue
            for declared in contribution.distribution.entry_points:
                if declared.name == origin.entry_point:
                    key = scan_key(contribution.distribution, declared)
                    contribution.source.forget(key)
                    self._kept.pop((f"entry-point {group}", key), None)
            self.entry_points.save(contribution.source, self.regenerating)

    def report_stale(self, record: PluginRecord, problem: Exception, group: str) -> None:
        """Say once that a cached ``record`` proved wrong when loaded, and have it rescanned."""
        key = ("stale", record.qualified_name, str(record.origin))
        if key not in self._reported:
            self._reported.add(key)
            logger().warning("ignoring cached plugin from %s: %s", record.origin, problem)
        self.invalidate(record, group)

    def report(self, errors: Iterable[LoadError]) -> None:
        """Log each error once per process: one WARNING line naming the candidate and the
        exception, with the traceback as the record's ``exc_info`` (handlers decide whether
        to show it)."""
        for error in errors:
            problem = error.error
            key = (error.target, str(error.origin), type(problem).__name__, str(problem))
            if key in self._reported:
                continue
            self._reported.add(key)
            exc_info = (type(problem), problem, problem.__traceback__)
            logger().warning("%s", error.describe(), exc_info=exc_info)


def _stamp(filename: str) -> Stamp | None:
    return module_stamp(filename) if filename else None


def _current(entry: Entry, written_ns: int | None) -> bool:
    """Whether a scan kept in an index (whose file was written at ``written_ns``) still
    describes its module's file."""
    if not entry.stamp.matches(_stamp(entry.filename), written_ns):
        return False
    return not (entry.missing and becomes_importable(entry.missing))


def _admitted(listing: Listing, origin: Origin, prefix: str, rules: Rules, out: _Pass
              ) -> Listing:
    """The modules of ``listing`` neither shadowed by an earlier directory nor disabled; the
    others are recorded as skipped, in name order."""
    skipped: list[Skip] = []
    keep = set(listing.names)
    for names, earlier in out.directories:
        for name in sorted(keep & names):
            skipped.append(Skip(prefix + name, origin, f"shadowed by {earlier}"))
            keep.discard(name)
    out.directories.append((keep, origin))
    if rules.disable:
        for name in list(keep):
            pattern = rules.blocking((name, prefix + name))
            if pattern is not None:
                skipped.append(Skip(prefix + name, origin, f"disabled by pattern {pattern!r}"))
                keep.discard(name)
    out.skipped.extend(sorted(skipped, key=lambda skip: skip.target))
    return listing if len(keep) == len(listing) else listing.only(keep)


def _deduplicated(out: _Pass) -> tuple[ModuleRecords, ...]:
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


_resolver: Resolver | None = None


def resolver() -> Resolver:
    """The process's resolver."""
    global _resolver
    if _resolver is None:
        _resolver = Resolver()
    return _resolver


def forget_state() -> None:
    """Drop what this process remembers of plugin discovery (the files stay), as a new
    process would start."""
    global _resolver
    _resolver = None
