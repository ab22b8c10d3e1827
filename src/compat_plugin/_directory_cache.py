"""What one process knows of a plugin directory's cache: the entries read from its file (the
format and its rules are in ``_directory_file``), what the process scanned since, and where it
is saved.
"""

from __future__ import annotations

from ._directories import Listing
from ._directory_file import (
    NOTHING_STORED,
    StoredEntries,
    cache_places,
    columns,
    encode,
    first_place,
    in_order,
    read_entries,
)
from ._entries import Entry, becomes_importable, mentions
from ._records import Stamp, Value
from ._store import CacheFile


class ModuleFile(Value):
    """A plugin module on disk: short name, file (relative to its directory), stamp."""

    __slots__ = ("name", "filename", "stamp")

    def __init__(self, name: str, filename: str, stamp: Stamp) -> None:
        self.name, self.filename, self.stamp = name, filename, stamp


def describes(entry: Entry | None, module: ModuleFile, written_ns: int | None = None) -> bool:
    """Whether ``entry`` (from a cache file written at ``written_ns``, if from a file)
    describes ``module``'s file as it is now."""
    return (
        entry is not None
        and entry.stamp.matches(module.stamp, written_ns)
        and entry.filename == module.filename
        and not (entry.missing and becomes_importable(entry.missing))
    )


class DirectoryCache:
    """What one process knows about one plugin directory, backed by its cache files.

    The entries read from the directory's cache file are kept in memory between calls, with
    what changed since (fresh scans, forgotten modules) and what was adopted from the per-user
    file; so a process reads each cache file at most once and never imports a module twice for
    the same stamp, even where nothing can be written.  ``in_archive``: the directory is inside
    a zip file (its modules' stamps are the archive's time and each member's size).
    """

    def __init__(self, listing: Listing, package: str) -> None:
        self.directory = listing.directory
        self.package = package
        self.in_archive = listing.in_archive
        self._file: CacheFile | None = None
        self._read: dict[str, StoredEntries] = {}
        self._base = self.stored(first_place(self.directory, self.in_archive))
        self._adopted: dict[str, Entry] = {}
        self._changes: dict[str, Entry | None] = {}
        # The directory as last listed: the order a saved file keeps, and the stamps it
        # records for what it carries over.
        self._listing = listing

    @property
    def file(self) -> CacheFile:
        """Where the cache is read and written, in order: worked out when first needed (the
        per-user place needs the directory's real path, which a warm call does without)."""
        if self._file is None:
            self._file = CacheFile(cache_places(self.directory, self.in_archive))
        return self._file

    def stored(self, place: str) -> StoredEntries:
        """What the cache file at ``place`` holds (read once per process)."""
        stored = self._read.get(place)
        if stored is None:
            stored = read_entries(place, self.directory, self.package)
            self._read[place] = stored
        return stored

    def current_entry(self, module: ModuleFile) -> Entry | None:
        """The entry that describes ``module``'s file as it is now, if one is held."""
        name = module.name
        if name in self._changes:  # scanned by this process: its stamp holds only exactly
            entry, written = self._changes[name], None
        elif name in self._adopted:
            entry, written = self._adopted[name], self._per_user().written_ns
        else:
            entry, written = self._base.get(name), self._base.written_ns
            if not describes(entry, module, written):
                entry, written = self._adopt(module), self._per_user().written_ns
        return entry if describes(entry, module, written) else None

    def _per_user(self) -> StoredEntries:
        """What the per-user file holds (nothing if that is where the base was read)."""
        places = self.file.places
        return self.stored(places[-1]) if len(places) > 1 else NOTHING_STORED

    def _adopt(self, module: ModuleFile) -> Entry | None:
        """The per-user file's current entry for ``module``, remembered as adopted (not as a
        change: that file already holds it, nothing needs writing)."""
        stored = self._per_user()
        entry = stored.get(module.name)
        if entry is None or not describes(entry, module, stored.written_ns):
            return None
        self._adopted[module.name] = entry
        return entry

    def store(self, name: str, entry: Entry) -> None:
        """Remember a freshly scanned module."""
        self._changes[name] = entry

    def forget(self, name: str) -> None:
        """Drop the entry for ``name`` (it failed, or proved wrong when loaded)."""
        self._changes[name] = None

    def select(
        self, listing: Listing, admitted: Listing, wanted: tuple[str, ...] | None
    ) -> list[tuple[ModuleFile, str | None]]:
        """(module, stored details or None) for every admitted module that matters, in name
        order; entries of modules no longer in ``listing`` are dropped.

        A module matters if nothing current is stored for it (it must be scanned), or its
        details mention one of ``wanted`` (``_api._wanted``; None: every module).
        """
        # Modules this process scanned, forgot or adopted are looked up one by one; the rest,
        # normally all of them, go through the file's own loop.
        self._listing = listing
        overridden = self._changes.keys() | self._adopted.keys()
        plain = admitted.only(set(admitted.names) - overridden) if overridden else admitted
        sifted, current = self._base.sift(plain, wanted)
        relevant: list[tuple[ModuleFile, str | None]] = []
        for position, details in sifted:
            module = ModuleFile(plain.names[position], plain.files[position],
                                plain.stamp(position))
            if details is not None:
                relevant.append((module, details))
            else:  # not current in the file: perhaps in the per-user one
                self._add_if_relevant(module, wanted, relevant)
        for position, name in enumerate(admitted.names if overridden else ()):
            if name in overridden:
                module = ModuleFile(name, admitted.files[position], admitted.stamp(position))
                self._add_if_relevant(module, wanted, relevant)
        relevant.sort(key=lambda found: found[0].name)
        # Every entry of the file matched a listed module (``current`` counts those alone):
        # nothing can have disappeared.
        if self._changes or self._adopted or current != len(self._base):
            self._retain(set(listing.names))
        return relevant

    def _add_if_relevant(self, module: ModuleFile, wanted: tuple[str, ...] | None,
                         relevant: list[tuple[ModuleFile, str | None]]) -> None:
        entry = self.current_entry(module)
        if entry is None:
            relevant.append((module, None))
        elif wanted is None or mentions(entry.details, wanted):
            relevant.append((module, entry.details))

    def _retain(self, present: set[str]) -> None:
        for name in [*self._base.names(), *self._adopted]:
            if name not in present and name not in self._changes:
                self._changes[name] = None

    def entries(self) -> dict[str, Entry]:
        """Every entry this process holds for the directory, by module name."""
        merged = self._base.as_dict()
        merged.update(self._adopted)
        for name, entry in self._changes.items():
            if entry is None:
                merged.pop(name, None)
            else:
                merged[name] = entry
        return merged

    def _checked(self, entries: dict[str, Entry]) -> dict[str, Entry]:
        """``entries`` as a file written now may hold them: this process's own scans, and
        those carried over that still describe their file as last listed -- with its stamp
        as listed.  A new file's time says its times were checked before it was written
        (``Stamp.matches``); an entry of a module this process never looked at (disabled,
        shadowed) must not gain that by being copied."""
        listing = self._listing
        position = dict(zip(listing.names, range(len(listing.names))))
        checked: dict[str, Entry] = {}
        for name, entry in entries.items():
            at = position.get(name)
            if name in self._changes:
                checked[name] = entry
            elif at is not None and entry.filename == listing.files[at]:
                written = (self._per_user() if name in self._adopted else self._base).written_ns
                carried = entry.restamped(listing.stamp(at), written)
                if carried is not None:
                    checked[name] = carried
        return checked

    def save(self) -> None:
        """Write the entries to the first place that takes them, if anything changed."""
        if not self._changes:
            return
        entries = self._checked(self.entries())
        names = in_order(entries, self._listing.names)
        data = encode(self.directory, self.package, entries, names)
        written = self.file.write(data, lambda place: self.stored(place).as_dict() == entries)
        self._changes, self._adopted = {}, {}
        self._base = StoredEntries(*columns(names, entries))
        if written is not None:
            self._read[written] = self._base
