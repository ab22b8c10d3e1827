"""A plugin directory's cache file: what each of its modules contributed, validated per module.

Format (``SCHEMA``), JSON Lines: a header line, then one line per module::

    {"schema": 6, "interpreter": "cpython-311", "directory": "/real/dir", "package": "pkg.plugins",
     "modules": {"names": [...], "files": [...], "mtimes": [...], "sizes": [...]},
     "missing": {"<module name>": [["optdep", "<importer>" | null], ...]},
     "checksum": <CRC-32 of the header's text before ``,"checksum":`` closed by ``}``,
                  then a newline and the lines that follow>}
    [docstring, [[attribute, docstring, [declared interface names], [all interface names]], ...],
     [classes implementing IPlugin, named only for a module without plugins]]
    ...

Module n is ``names[n]``, loaded from ``files[n]`` (relative to the directory), whose stamp was
``mtimes[n]`` (``st_mtime_ns``) and ``sizes[n]``; line n + 1 holds what its scan found.
Modules come in the order the directory was listed when the file was written: while the
directory is unchanged, a warm call compares its listing with these columns as a whole.
``missing`` names, for each module whose scan tried to import something that no finder on
``sys.meta_path`` could find (an optional dependency), those module names, each with the module
whose first import tried it with an ``import`` -- the scanned module, or one it imported along
the way -- or null (looked for by a probe such as ``importlib.util.find_spec``, or not known).

An entry is used only while its module's file exists with the recorded stamp (or its size and
its time cut to whole seconds, as image layers and tar files keep times: ``Stamp.matches``) and
none of its missing names has become importable -- installed into any ``sys.path`` entry,
appended to ``sys.path``, or provided by a new finder; then the module is scanned again.  A
name whose importer is already imported in the process, while the name is not, is not asked
about: importing the module does not run that importer again (``_entries.becomes_importable``).
Nothing else invalidates it: not other distributions being installed, not another user's
``sys.path``, so a cache an administrator regenerated serves every user.  What is not
noticed: a module whose plugins depend on something other than whether an import succeeds (a
dependency's version, an environment variable); ``compat-plugin cache regenerate`` refreshes
those.

The header also records the schema, interpreter, directory (real path) and plugin package, and
the file is ignored unless all match; the directory is resolved to its real path only when it
is reached by a path other than the recorded one (so a file copied along with its directory
describes only the original, while a directory later replaced by a link to a copy of itself
is still read by its old name -- each entry is checked against its own module's stamp).

Only the lines of modules whose details mention the asked interface are ever decoded; the
checksum is what lets the others be trusted undecoded -- a damaged line, or a damaged header
(a byte of ``missing`` too), damages the whole file, which is then ignored and rewritten.

Where it lives: ``<plugin dir>/__pycache__/compat_plugin.<interpreter>.json`` (under a pycache
prefix, beside the directory's bytecode there: ``_store.bytecode_directory``); when that cannot
be written (site-wide installs, zip archives), ``<per-user cache>/<digest of the directory's
real path>.<interpreter>.json``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from ._directories import Listing
from ._entries import Entry, becomes_importable, mentions, stored_misses
from ._log import debug
from ._records import Stamp, same_second
from ._store import (
    INT,
    MISSES,
    STR,
    bytecode_directory,
    digest,
    equal_to,
    interpreter_tag,
    list_of,
    mapping,
    parse_json,
    read_cache,
    record,
    seal_holds,
    sealed,
    user_cache_root,
)

SCHEMA = 6

_COLUMNS = {"names": list_of(STR), "files": list_of(STR), "mtimes": list_of(INT),
            "sizes": list_of(INT)}
_HEADER = record(
    schema=equal_to(SCHEMA),
    modules=record(**_COLUMNS),
    missing=mapping(MISSES),
    checksum=INT,
)


def beside_path(directory: str) -> str:
    """The cache file kept beside the plugin modules it describes."""
    return os.path.join(bytecode_directory(directory),
                        f"compat_plugin.{interpreter_tag()}.json")


def per_user_path(directory: str) -> str:
    """The per-user cache file for ``directory``, named after its real path."""
    name = f"{digest(os.path.realpath(directory))}.{interpreter_tag()}.json"
    return os.path.join(user_cache_root(), name)


def first_place(directory: str, in_archive: bool) -> str:
    """Where the cache of ``directory`` is looked for first: beside it, unless it lies inside
    a zip archive (nothing can be written there)."""
    return per_user_path(directory) if in_archive else beside_path(directory)


def cache_places(directory: str, in_archive: bool) -> list[str]:
    """Every place the cache of ``directory`` is looked for, in order."""
    return list(dict.fromkeys([first_place(directory, in_archive), per_user_path(directory)]))


class StoredEntries:
    """The entries of one cache file: stamps in columns, details as the raw rest of the file,
    split into lines only when one is needed.  Built only from a checked header."""

    __slots__ = ("_files", "_lines", "_mentioned", "_missing", "_mtimes", "_names",
                 "_position", "_sizes", "_text", "written_ns")

    def __init__(self, columns: dict[str, list[Any]], missing: dict[str, list[list[Any]]],
                 details: bytes, written_ns: int | None = None) -> None:
        # When the file was written (its own time); None for entries held in memory only,
        # whose stamps hold only exactly (``Stamp.matches``).
        self.written_ns = written_ns
        names = self._names = columns["names"]
        self._position = dict(zip(names, range(len(names))))
        self._files: list[str] = columns["files"]
        self._mtimes: list[int] = columns["mtimes"]
        self._sizes: list[int] = columns["sizes"]
        self._missing = missing
        self._text = details
        self._lines: list[str] | None = None
        self._mentioned: dict[tuple[str, ...], bool] = {}

    def _split(self) -> list[str] | None:
        """The detail lines, split once; None if there are not as many as modules (the file
        is then of no use).  Counted only when a line is first needed: a warm call that finds
        nothing mentioned never pays for it, and the checksum already vouches for the text."""
        if self._lines is None:
            lines = self._text.decode("ascii").split("\n")
            self._lines = lines if len(lines) == len(self._names) + 1 else []
            if not self._lines:  # from now on, the file holds nothing
                debug("ignoring a plugin cache: its line count does not match")
                self._position, self._names = {}, []
        return self._lines or None

    def _mentions(self, wanted: tuple[str, ...]) -> bool:
        """Whether any stored details mention one of ``wanted``: a search of the whole file
        for each."""
        known = self._mentioned.get(wanted)
        if known is None:
            known = self._mentioned[wanted] = any(name.encode("ascii") in self._text
                                                  for name in wanted)
        return known

    def sift(self, listing: Listing, wanted: tuple[str, ...] | None
             ) -> tuple[list[tuple[int, str | None]], int]:
        """The modules of ``listing`` that matter, as (position in the listing, stored details
        or None when nothing current is stored), and how many were current.

        A current module whose details mention none of ``wanted`` (``_api._wanted``; None:
        everything matters) is left out.  This is the loop a warm call runs once
        per module: everything is bound to locals and compared column against column.
        """
        position, files, mtimes, sizes = self._position, self._files, self._mtimes, self._sizes
        missing, written = self._missing, self.written_ns
        mentioned = wanted is None or self._mentions(wanted)
        lines = self._split() if mentioned else None
        if mentioned and lines is None:
            return [(at, None) for at in range(len(listing.names))], 0
        # The file is written in the order the directory was listed, which holds while the
        # directory is unchanged: then four list comparisons replace the loop below.
        if (listing.names == self._names and listing.mtimes == mtimes
                and listing.sizes == sizes and listing.files == files):
            return self._sift_unchanged(wanted, lines)
        found: list[tuple[int, str | None]] = []
        current = 0
        listed_files, listed_mtimes, listed_sizes = listing.files, listing.mtimes, listing.sizes
        for at_listing, name in enumerate(listing.names):
            at = position.get(name)
            if (
                at is not None
                and ((recorded := mtimes[at]) == (now := listed_mtimes[at_listing])
                     or (written is not None and same_second(recorded, now, written)))
                and sizes[at] == listed_sizes[at_listing]
                and files[at] == listed_files[at_listing]
                and not (missing and name in missing and becomes_importable(missing[name]))
            ):
                current += 1
                if lines is not None:  # some details mention ``wanted``
                    details = lines[at]
                    if wanted is None or mentions(details, wanted):
                        found.append((at_listing, details))
                continue
            found.append((at_listing, None))
        return found, current

    def _sift_unchanged(self, wanted: tuple[str, ...] | None, lines: list[str] | None
                        ) -> tuple[list[tuple[int, str | None]], int]:
        """``sift`` of a listing that is this file's own columns, position for position;
        ``lines`` are the details when any mention ``wanted``."""
        position = self._position
        # A hostile file may name modules it does not hold: those are passed over.
        stale = {at for name, names in self._missing.items()
                 if (at := position.get(name)) is not None and becomes_importable(names)}
        found: list[tuple[int, str | None]] = [(at, None) for at in stale]
        if lines is not None:
            found += [(at, line) for at, line in enumerate(lines[:len(self._names)])
                      if (wanted is None or mentions(line, wanted)) and at not in stale]
        return found, len(self._names) - len(stale)

    def names(self) -> Iterator[str]:
        return iter(self._position)

    def __len__(self) -> int:
        return len(self._position)

    def get(self, name: str) -> Entry | None:
        """The entry stored for ``name``, if any."""
        at = self._position.get(name)
        lines = self._split() if at is not None else None
        if at is None or lines is None:
            return None
        stamp = Stamp(self._mtimes[at], self._sizes[at])
        return Entry(self._files[at], stamp, lines[at], stored_misses(self._missing.get(name, [])))

    def as_dict(self) -> dict[str, Entry]:
        """Every entry, by module name."""
        return {name: entry for name in self._position if (entry := self.get(name)) is not None}


NOTHING_STORED = StoredEntries({"names": [], "files": [], "mtimes": [], "sizes": []}, {}, b"")


def read_entries(path: str, directory: str, package: str) -> StoredEntries:
    """The entries of the cache file at ``path``.

    Empty if the file is absent or unusable: written for another schema, interpreter,
    directory or package, or not of the documented layout.
    """
    read = read_cache(path)
    if read is None:
        return NOTHING_STORED
    raw, written_ns = read
    header_text, _, details = raw.partition(b"\n")
    header = parse_json(header_text, path)
    if header is None:
        return NOTHING_STORED
    if not (_HEADER(header) and _written_for(header, directory, package)):
        debug("ignoring plugin cache %s: written for something else", path)
        return NOTHING_STORED
    columns = header["modules"]
    count = len(columns["names"])
    # As many lines as modules, each ended: the lines are counted when first split.
    ended = details.endswith(b"\n") if count else not details
    if (
        # What follows the header, its newline included, read where it lies: not copied.
        not seal_holds(header_text, header["checksum"], memoryview(raw)[len(header_text):])
        or not details.isascii()
        or not ended
        or len(columns) != len(_COLUMNS)  # the four columns, and nothing else
        or any(len(columns[name]) != count for name in _COLUMNS)
    ):
        debug("ignoring plugin cache %s: its checksum or line count does not match", path)
        return NOTHING_STORED
    stored = StoredEntries(columns, header["missing"], details, written_ns)
    # Repeated names would leave some line without its module.
    return stored if len(stored) == count else NOTHING_STORED


def _identity(directory: str, package: str, real: str | None = None) -> dict[str, Any]:
    # The real path: a directory reached through a link and directly is one directory.
    return {"interpreter": interpreter_tag(), "directory": real or os.path.realpath(directory),
            "package": package}


def _written_for(header: dict[str, Any], directory: str, package: str) -> bool:
    # A directory reached by the real path the header records (the usual case) is that
    # directory: its components need not be resolved again.
    recorded = header.get("directory")
    real = directory if type(recorded) is str and recorded == directory else None
    return all(equal_to(value)(header.get(key)) for key, value in
               _identity(directory, package, real).items())


def encode(directory: str, package: str, entries: dict[str, Entry],
           order: Sequence[str] = ()) -> bytes:
    """The bytes of a cache file holding ``entries``: modules in the order of ``order``
    (the directory's listing), then any others in name order."""
    names = in_order(entries, order)
    header: dict[str, Any] = {"schema": SCHEMA, **_identity(directory, package)}
    header["modules"], header["missing"], details = columns(names, entries)
    return sealed(header, b"\n" + details) + b"\n" + details


def in_order(entries: dict[str, Entry], order: Sequence[str]) -> list[str]:
    """The names of ``entries``: those in ``order`` as they come there, then the rest sorted."""
    listed = [name for name in order if name in entries]
    return listed + sorted(entries.keys() - set(listed)) if len(listed) < len(entries) else listed


def columns(names: list[str], entries: dict[str, Entry]
             ) -> tuple[dict[str, list[Any]], dict[str, list[list[Any]]], bytes]:
    """The stored form of ``entries``, in the order of ``names``: the header's columns, its
    missing imports, and the detail lines."""
    stamps = [entries[name].stamp for name in names]
    columns: dict[str, list[Any]] = {
        "names": names,
        "files": [entries[name].filename for name in names],
        "mtimes": [stamp.mtime_ns for stamp in stamps],
        "sizes": [stamp.size for stamp in stamps],
    }
    missing: dict[str, list[list[Any]]] = {
        name: [list(miss) for miss in entries[name].missing]
        for name in names if entries[name].missing}
    details = "".join(f"{entries[name].details}\n" for name in names).encode("ascii")
    return columns, missing, details
