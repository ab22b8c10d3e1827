"""The entry-point source: one index per ``sys.path`` entry (merged into a group's view by
``_entry_indexes``).

The group is the plugin package's dotted name.  What the distributions of one ``sys.path``
entry (a directory, or a zip file such as a wheel or a zipapp) declare for a group is read once
with importlib-metadata (``_metadata``) and kept in that entry's *index*, valid while the entry
keeps its stamp: installing, upgrading or removing a distribution there changes it.  A warm call
stats each entry, reads its index and merges them in ``sys.path`` order, as importlib-metadata
merges distributions: the first copy of a distribution (by normalized name) wins, copies with
metadata before copies without.  Neither importlib-metadata nor packaging is imported then.

Index format (``SCHEMA``), one JSON document::

    {"schema": 9, "interpreter": "cpython-311", "entry": "/real/path", "group": "pkg.plugins",
     "stamp": [mtime_ns, size], "links": st_nlink,
     "unread": [[metadata directory, denied, its marks, its entry_points.txt's marks], ...],
     "watched": [[metadata directory, its entry_points.txt's [mtime_ns, size] | null], ...],
     "names": "\\nkey\\n...", "nameless": "\\nkey\\n...",
     "distributions": [[key, name, version, metadata, [mtime_ns, size] | null, has metadata,
                        [[entry point, value, module | null, attribute | null], ...],
                        [requirement, ...]], ...],
     "shadowed": [[key, version, metadata, winner's metadata], ...],
     "gates": {key: [reason, [[required key, entry, [mtime_ns, size] | null], ...]]},
     "scans": {scan key: [file, mtime_ns, size, details, [[missing, importer | null], ...]]},
     "checksum": <CRC-32 of the rest: the text before ``,"checksum":``, closed by ``}``>}

Any change the checksum does not match (a damaged byte that leaves the file JSON, an edit)
makes the index be ignored and rebuilt.

``stamp`` and ``links`` are the entry's when it was indexed (or just after its index was written
into it, where that write changed nothing but the entry's size and link count: overlayfs copies
a directory up on the first write below it, as in container image builds); a time since cut to
whole seconds still matches (``Stamp.matches``).  ``links`` counts a directory's subdirectories
on most file systems, so a distribution added by extracting an archive over the entry, which
restores the directory's times (``tar``), still changes it (0 for a zip file).  ``unread``
names the metadata directories whose entry points could not be read (permissions, an
``entry_points.txt`` that does not parse), with the marks (``[mtime_ns, ctime_ns, size]``) of
each and of its ``entry_points.txt``: a ``chmod`` or a mending in place changes no stamp but
those, and the index is then read again, its scans kept (``Unread.changed``); ``watched``, the
``*.egg-info`` directories that setuptools rewrites in place (outside the directories
installers write to: a working copy's), with the stamp of each one's ``entry_points.txt``
(``Watched``).  ``names``
holds the normalized name of every distribution in the entry that has metadata (``nameless``
those without), each between newlines: enough to decide shadowing without a list of a thousand
names to decode.  ``distributions`` are the entry's first copies that declare entry points in
the group; ``metadata`` is their metadata directory and the stamp that of its
``entry_points.txt`` when indexed -- checked again before anything of the distribution is used,
so an index never names a module to import by itself.  ``gates`` keeps the verdict of the
host-compatibility check with what it depended on: where each required distribution was found,
and that entry's stamp.  ``scans`` keeps what each entry point's module contributed, under the
same rules as a directory cache's entries (its file's stamp, its missing imports), and while the
module would still be imported from that file (``_resolver``); they survive a rebuild.

Where it lives: ``<entry>/__pycache__/compat_plugin.entry-points.<group>.<interpreter>.json``
when the entry is a directory that holds distributions or already has a ``__pycache__`` (and is
writable; under a pycache prefix, the entry's bytecode directory there), else
``<per-user cache>/entry-points/<digest of the entry's real path>.<group>.<interpreter>.json``.
An entry that does not exist holds nothing and gets no index, nor does a directory none of
whose names is a metadata directory (``holds_no_metadata``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._entries import Entry, stored_misses
from ._path_entries import Unread, Watched, real_entry
from ._records import Stamp, Value
from ._store import (
    BOOL,
    INT,
    MISSES,
    STAMP,
    STR,
    CacheFile,
    bytecode_directory,
    digest,
    equal_to,
    interpreter_tag,
    list_of,
    mapping,
    optional,
    parse_json,
    read_cache,
    record,
    row,
    seal_holds,
    sealed,
    user_cache_root,
)

if TYPE_CHECKING:
    from ._path_entries import EntryState

SCHEMA = 9


class Declared(Value):
    """One entry point of the group, as importlib-metadata parsed it (``module`` None: its
    value is malformed)."""

    __slots__ = ("name", "value", "module", "attribute")

    def __init__(self, name: str, value: str, module: str | None, attribute: str | None
                 ) -> None:
        self.name, self.value, self.module, self.attribute = name, value, module, attribute


class Distribution(Value):
    """One distribution that declares entry points in the group: its normalized name
    (``key``), name and version, its metadata directory and the stamp of its
    ``entry_points.txt`` when indexed, whether it has core metadata, its entry points in the
    group and its requirements."""

    __slots__ = ("key", "name", "version", "metadata", "declared_stamp", "has_metadata",
                 "entry_points", "requires")

    def __init__(self, key: str, name: str, version: str, metadata: str,
                 declared_stamp: Stamp | None, has_metadata: bool,
                 entry_points: tuple[Declared, ...], requires: tuple[str, ...]) -> None:
        self.key, self.name, self.version, self.metadata = key, name, version, metadata
        self.declared_stamp, self.has_metadata = declared_stamp, has_metadata
        self.entry_points, self.requires = entry_points, requires


class Shadowed(Value):
    """A later copy of a distribution, hidden by the one found first (``by``)."""

    __slots__ = ("key", "version", "metadata", "by")

    def __init__(self, key: str, version: str, metadata: str, by: str) -> None:
        self.key, self.version, self.metadata, self.by = key, version, metadata, by


class Gate(Value):
    """The host-compatibility verdict on one distribution (``reason`` empty: compatible), with
    where each distribution it requires was found: (key, entry, that entry's stamp)."""

    __slots__ = ("reason", "depends")

    def __init__(self, reason: str, depends: tuple[tuple[str, str, Stamp | None], ...]) -> None:
        self.reason, self.depends = reason, depends


_DISTRIBUTION = row(STR, STR, STR, STR, optional(STAMP), BOOL,
                    list_of(row(STR, STR, optional(STR), optional(STR))), list_of(STR))
_SCAN = row(STR, INT, INT, STR, MISSES)
_MARKS = row(INT, INT, INT)
_INDEX = record(
    schema=equal_to(SCHEMA),
    stamp=STAMP,
    links=INT,
    unread=list_of(row(STR, BOOL, optional(_MARKS), optional(_MARKS))),
    watched=list_of(row(STR, optional(STAMP))),
    names=STR,
    nameless=STR,
    distributions=list_of(_DISTRIBUTION),
    shadowed=list_of(row(STR, STR, STR, STR)),
    gates=mapping(row(STR, list_of(row(STR, STR, optional(STAMP))))),
    scans=mapping(_SCAN),
    checksum=INT,
)


def scan_key(distribution: Distribution, declared: Declared) -> str:
    """Under which key an index keeps what ``declared``'s module contributed."""
    return f"{distribution.key}\0{declared.name}\0{declared.value}"


class EntryIndex:
    """What one ``sys.path`` entry's distributions declare for one group, and what their
    plugins are.  ``dirty`` is true when it holds something its file does not."""

    def __init__(
        self,
        entry: str,
        group: str,
        stamp: Stamp | None,
        names: str = "\n",
        nameless: str = "\n",
        distributions: tuple[Distribution, ...] = (),
        shadowed: tuple[Shadowed, ...] = (),
        links: int = 0,
        unread: tuple[Unread, ...] = (),
        watched: tuple[Watched, ...] = (),
    ) -> None:
        self.entry = entry
        self.group = group
        self.stamp = stamp
        self.links = links
        self.names = names
        self.nameless = nameless
        self.distributions = distributions
        self.shadowed = shadowed
        self.unread, self.watched = unread, watched
        self.gates: dict[str, Gate] = {}
        self.scans: dict[str, Entry] = {}
        self.scanned: set[str] = set()  # the keys of the scans this process made
        self.dirty = False
        # When the file it was read from was written (None: built by this process), against
        # which a stamp whose time was cut to whole seconds is judged (``Stamp.matches``).
        self.written_ns: int | None = None

    def describes(self, state: EntryState) -> bool:
        """Whether this index was built for its entry as ``state`` says it is now, and none
        of the metadata directories it could not read or watches has changed since."""
        stamp, links, _ = state
        recorded = self.stamp
        if links != self.links or not (stamp is None if recorded is None
                                       else recorded.matches(stamp, self.written_ns)):
            return False
        written = self.written_ns
        return not ((self.unread and any(unread.changed() for unread in self.unread)) or (
            self.watched and any(watched.changed(written) for watched in self.watched)))

    def holds(self, key: str, with_metadata: bool = True) -> bool:
        """Whether a distribution named ``key`` (normalized) is in this entry."""
        return f"\n{key}\n" in (self.names if with_metadata else self.nameless)

    def where(self, key: str) -> str:
        """The metadata directory of distribution ``key`` here, if known, else the entry."""
        known = (d.metadata for d in self.distributions if d.key == key)
        return next(known, self.entry or ".")

    def store(self, key: str, entry: Entry) -> None:
        """Remember what the entry point ``key`` (see ``scan_key``) contributed."""
        self.scans[key] = entry
        self.scanned.add(key)
        self.dirty = True

    def forget(self, key: str) -> None:
        """Drop what is remembered for the entry point ``key``."""
        if self.scans.pop(key, None) is not None:
            self.dirty = True

    def judged(self, key: str, gate: Gate) -> None:
        """Remember the host-compatibility verdict on distribution ``key``."""
        self.gates[key] = gate
        self.dirty = True

    def adopt_scans(self, previous: EntryIndex) -> None:
        """Keep what an earlier index of this entry knew of modules still declared the same
        way: a module's scan depends on its own file, not on what else is installed."""
        keys = {scan_key(d, e) for d in self.distributions for e in d.entry_points}
        self.scans.update(checked_scans(
            {k: e for k, e in previous.scans.items() if k in keys}, previous.written_ns))

    def checked(self) -> None:
        """Keep, of the scans this process did not make, those that still describe their
        module's file, with its stamp now: a file written now says its times were checked
        before it was written (``Stamp.matches``), which a scan carried over unlooked-at (its
        entry point disabled, gated or shadowed) must not gain by being copied."""
        carried = {k: e for k, e in self.scans.items() if k not in self.scanned}
        kept = checked_scans(carried, self.written_ns)
        for key in carried.keys() - kept.keys():
            del self.scans[key]
        self.scans.update(kept)

    def document(self) -> dict[str, Any]:
        scans = {key: [e.filename, *e.stamp, e.details, [list(miss) for miss in e.missing]]
                 for key, e in self.scans.items()}
        return {
            "schema": SCHEMA,
            "interpreter": interpreter_tag(),
            "entry": real_entry(self.entry),
            "group": self.group,
            "stamp": list(self.stamp) if self.stamp is not None else None,
            "links": self.links,
            "unread": [unread.row() for unread in self.unread],
            "watched": [watched.row() for watched in self.watched],
            "names": self.names,
            "nameless": self.nameless,
            "distributions": [_distribution_row(d) for d in self.distributions],
            "shadowed": [list(item) for item in self.shadowed],
            "gates": {key: [gate.reason, [[k, e, list(s) if s else None] for k, e, s in
                                          gate.depends]] for key, gate in self.gates.items()},
            "scans": scans,
        }


def _is_entry(recorded: object, entry: str) -> bool:
    """Whether ``recorded`` (a real path) is the real path of ``entry`` (the absolute path,
    compared first, needs no look at each directory above it)."""
    return type(recorded) is str and (recorded == os.path.abspath(entry or ".")
                                      or recorded == real_entry(entry))


def _distribution_row(d: Distribution) -> list[Any]:
    stamp = list(d.declared_stamp) if d.declared_stamp else None
    return [d.key, d.name, d.version, d.metadata, stamp, d.has_metadata,
            [list(e) for e in d.entry_points], list(d.requires)]


# How the name of every index kept beside its entry (in its ``__pycache__``) begins.
BESIDE_PREFIX = "compat_plugin.entry-points."


def _beside_place(entry: str, group: str) -> str:
    return os.path.join(bytecode_directory(entry),
                        f"{BESIDE_PREFIX}{group}.{interpreter_tag()}.json")


def _per_user_place(entry: str, group: str) -> str:
    return os.path.join(user_cache_root(), "entry-points",
                        f"{digest(real_entry(entry))}.{group}.{interpreter_tag()}.json")


def _place_makers(beside: bool) -> tuple[Callable[[str, str], str], ...]:
    return (_beside_place, _per_user_place) if beside else (_per_user_place,)


def index_places(entry: str, group: str, beside: bool) -> list[str]:
    """Where the index of ``entry`` for ``group`` is looked for, in order."""
    return [place(entry, group) for place in _place_makers(beside)]


def read_index(entry: str, group: str, state: EntryState
               ) -> tuple[EntryIndex | None, EntryIndex | None]:
    """The stored index of ``entry`` for ``group`` written for its ``state``, if a place
    holds one; and else any usable one found (stale, but its scans may still hold), if any."""
    stale: EntryIndex | None = None
    # Each place is worked out only if the one before it fails: the per-user one needs the
    # entry's real path.
    for place_of in _place_makers(state[2]):
        index = read_index_at(place_of(entry, group), entry, group)
        if index is not None and index.describes(state):
            return index, None
        stale = stale or index
    return None, stale


def read_index_at(place: str, entry: str, group: str) -> EntryIndex | None:
    """The index of ``entry`` for ``group`` stored at ``place``, if it is usable."""
    read = read_cache(place)
    if read is None:
        return None
    document = parse_json(read[0], place)
    index = _index_from(document, read[0], entry, group) if document is not None else None
    if index is not None:
        index.written_ns = read[1]
    return index


def _index_from(document: Any, raw: bytes, entry: str, group: str) -> EntryIndex | None:
    if not (
        _INDEX(document)
        and equal_to(interpreter_tag())(document.get("interpreter"))
        and equal_to(group)(document.get("group"))
        # An index beside an entry travels with copies of it: it describes only its own.
        and _is_entry(document.get("entry"), entry)
        and seal_holds(raw, document["checksum"])
    ):
        return None
    distributions = tuple(
        Distribution(key, name, version, metadata, Stamp(*stamp) if stamp else None, valid,
                     tuple(Declared(*item) for item in declared), tuple(requires))
        for key, name, version, metadata, stamp, valid, declared, requires
        in document["distributions"]
    )
    index = EntryIndex(entry, group, Stamp(*document["stamp"]), document["names"],
                       document["nameless"], distributions,
                       tuple(Shadowed(*item) for item in document["shadowed"]),
                       document["links"], tuple(map(Unread.from_row, document["unread"])),
                       tuple(Watched(where, Stamp(*stamp) if stamp else None)
                             for where, stamp in document["watched"]))
    index.gates = {key: Gate(reason, tuple((k, e, Stamp(*s) if s else None) for k, e, s in deps))
                   for key, (reason, deps) in document["gates"].items()}
    index.scans = {key: Entry(file, Stamp(mtime, size), details, stored_misses(missing))
                   for key, (file, mtime, size, details, missing) in document["scans"].items()}
    return index


def checked_scans(scans: dict[str, Entry], written_ns: int | None) -> dict[str, Entry]:
    """Those of ``scans`` (read from a file written at ``written_ns``) that still describe
    their module's file, stamped as the file is now."""
    from ._directories import module_stamp

    kept: dict[str, Entry] = {}
    for key, entry in scans.items():
        carried = entry.restamped(module_stamp(entry.filename) if entry.filename else None,
                                  written_ns)
        if carried is not None:
            kept[key] = carried
    return kept


def save_index(index: EntryIndex, file: CacheFile) -> str | None:
    """Write ``index`` if it holds something its file does not; where it was written."""
    if not index.dirty:
        return None
    index.checked()
    index.dirty = False
    return file.write(sealed(index.document()))
