"""The persistent store of scanned plugin modules, one file per plugin directory.

Format (``SCHEMA``), JSON Lines: the first line is a header, then one line per module::

    {"schema": 3, "interpreter": "cpython-311", "directory": "/abs/dir", "package": "pkg.plugins",
     "environment": "<digest of the installed distributions>",
     "modules": {"names": [...], "files": [...], "mtimes": [...], "sizes": [...]},
     "checksum": <CRC-32 of the lines that follow>}
    [docstring, [[attribute, docstring, [declared interface names], [all interface names]], ...]]
    ...

Module n is called ``names[n]``, loads from ``files[n]`` (relative to the directory), whose
stamp was ``mtimes[n]`` (``st_mtime_ns``) and ``sizes[n]``; line n + 1 holds its details. This
layout is for the warm path: the stamps parse as four flat lists, and only the lines of modules
that mention the asked interface are ever decoded -- the checksum is what lets the others be
trusted undecoded: a damaged line damages the whole file, which is then ignored. The file is
data only: it is parsed as JSON, checked before use, and an entry is used only for a module
file that exists now with exactly the recorded stamp, and only while the same distributions are
installed (a plugin module may define its plugins only when an optional dependency imports).
Anything else in it is ignored and rewritten.

Where it lives: ``<plugin dir>/__pycache__/compat_plugin.<interpreter>.json``; when that cannot
be written (site-wide installs, zip archives), ``<user cache>/compat_plugin/<hash of the
directory>.<interpreter>.json``, the user cache being ``$COMPAT_PLUGIN_CACHE_DIR``, else
``$XDG_CACHE_HOME/compat_plugin``, else ``~/.cache/compat_plugin``.  Setting
``COMPAT_PLUGIN_NO_CACHE_WRITE`` to a non-empty value other than ``0`` stops all writing.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import zlib  # imported here rather than on the first warm call that needs it
from collections.abc import Iterator
from typing import Any, NamedTuple

from ._dropins import Candidate, Listing
from ._log import logger
from ._records import ModuleRecords, Origin, PluginRecord

SCHEMA = 3


class Entry(NamedTuple):
    """One scanned module as stored: the file's name and stamp, and ``details``, the JSON text
    of ``[docstring, plugins]``, decoded only when the module's records are needed."""

    filename: str
    mtime_ns: int
    size: int
    details: str

    def matches(self, candidate: Candidate) -> bool:
        """Whether this entry describes exactly the file found on disk now."""
        return (
            self.mtime_ns == candidate.mtime_ns
            and self.size == candidate.size
            and self.filename == candidate.filename
        )


def interpreter_tag() -> str:
    """The interpreter a cache is valid for; records can depend on the Python version."""
    tag = sys.implementation.cache_tag
    return tag or f"{sys.implementation.name}-{sys.version_info[0]}{sys.version_info[1]}"


def user_cache_root() -> str:
    """The per-user cache directory (see the module docstring for the order consulted)."""
    explicit = os.environ.get("COMPAT_PLUGIN_CACHE_DIR")
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(base), "compat_plugin")


def writes_disabled() -> bool:
    """Whether ``COMPAT_PLUGIN_NO_CACHE_WRITE`` turns cache writing off."""
    return os.environ.get("COMPAT_PLUGIN_NO_CACHE_WRITE", "") not in ("", "0")


def digest(text: str) -> str:
    """A short, stable digest of ``text`` for file names and fingerprints (CRC-32 and
    Adler-32).  Not cryptographic: every file records what it was written for and is checked
    against it."""
    data = text.encode("utf-8", "surrogateescape")
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def primary_path(directory: str) -> str:
    """The cache file kept beside the plugin modules it describes."""
    return os.path.join(directory, "__pycache__", f"compat_plugin.{interpreter_tag()}.json")


def fallback_path(directory: str) -> str:
    """The per-user cache file for ``directory``, keyed by its real (absolute, resolved) path."""
    name = f"{digest(os.path.realpath(directory))}.{interpreter_tag()}.json"
    return os.path.join(user_cache_root(), name)


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix.

    The temporary file is created in the same directory with mode 0o666 less the umask, as any
    ordinary file would be, and removed if anything fails.
    """
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    unique = f"{os.getpid()}.{os.urandom(4).hex()}"
    temporary = os.path.join(parent, f".{os.path.basename(path)}.{unique}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Hold the cyclic garbage collector while building many small acyclic objects.

    Parsing a cache or listing a directory allocates thousands of lists and tuples that can
    never form cycles; collections triggered meanwhile would only walk them (and, in a process
    that has just imported a lot, may be full collections of everything).  Collection resumes
    afterwards as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_bytes(path: str) -> bytes | None:
    """The content of ``path``, or None if it cannot be read."""
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError:
        return None


def parse_json(raw: bytes | str, where: str) -> Any:
    """``raw`` parsed as JSON, or None (reported at debug level) if it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        logger().debug("ignoring unreadable plugin cache %s: %s", where, exc)
        return None


def dump_json(value: object) -> str:
    """Compact, ASCII-only JSON text (the form ``Entry.mentions`` searches)."""
    return json.dumps(value, separators=(",", ":"))


def same_fields(data: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Whether ``data`` holds exactly ``expected``'s values, types included (``true`` is not
    ``1`` here, as it is to ``==``)."""
    return all(
        type(data.get(key)) is type(value) and data.get(key) == value
        for key, value in expected.items()
    )


def entry_from(item: object) -> Entry | None:
    """An Entry from its stored list form ``[filename, mtime_ns, size, details]``, if valid."""
    if (
        type(item) is list
        and len(item) == 4
        and type(item[0]) is str
        and type(item[1]) is int
        and type(item[2]) is int
        and type(item[3]) is str
    ):
        return Entry(*item)
    return None


def _header(directory: str, package: str, environment: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "interpreter": interpreter_tag(),
        # The real path: a directory reached through a link and directly is one directory.
        "directory": os.path.realpath(directory),
        "package": package,
        "environment": environment,
    }


class StoredEntries:
    """The entries of one cache file, decoded on demand: stamps in parallel lists, details as
    the raw remainder of the file, split into lines only when one is needed.  Every item is
    type-checked where it is used; a malformed one is a miss."""

    __slots__ = ("_files", "_lines", "_mentioned", "_mtimes", "_position", "_sizes", "_text")

    def __init__(
        self, names: list[str], files: list[Any], mtimes: list[Any], sizes: list[Any],
        text: bytes,
    ) -> None:
        self._position = dict(zip(names, range(len(names))))
        self._files, self._mtimes, self._sizes = files, mtimes, sizes
        self._text = text
        self._lines: list[str] | None = None
        self._mentioned: dict[str, bool] = {}

    def _line(self, position: int) -> str:
        if self._lines is None:
            self._lines = self._text.decode("ascii").split("\n")
        return self._lines[position]

    def current(self, candidate: Candidate, wanted: str | None = None) -> str | None:
        """What is stored for ``candidate`` if its stamp matches exactly, else None.

        That is its details, or ``""`` when ``wanted`` (a JSON-quoted interface name) is given
        and they do not mention it -- then they are not even split out of the file.
        """
        found, current = self.sift([candidate], wanted)
        if found:
            return found[0][1]
        return "" if current else None

    def _mentions(self, wanted: str) -> bool:
        """Whether any stored details mention ``wanted``: one search of the whole file."""
        known = self._mentioned.get(wanted)
        if known is None:
            known = self._mentioned[wanted] = wanted.encode("ascii") in self._text
        return known

    def sift(
        self, candidates: list[Candidate], wanted: str | None
    ) -> tuple[list[tuple[Candidate, str | None]], int]:
        """The candidates that matter, with their stored details (None: nothing current is
        stored), and how many candidates were current.

        A current candidate whose details do not mention ``wanted`` does not matter and is
        left out.  This is the loop a warm call runs once per module: everything is bound to
        locals, candidates are unpacked as the tuples they are.
        """
        position, files, mtimes, sizes = self._position, self._files, self._mtimes, self._sizes
        mentioned = wanted is None or self._mentions(wanted)
        found: list[tuple[Candidate, str | None]] = []
        current = 0
        for candidate in candidates:
            name, filename, mtime_ns, size = candidate
            at = position.get(name)
            if at is not None:
                stored_mtime, stored_size = mtimes[at], sizes[at]
                if (
                    stored_mtime == mtime_ns
                    and stored_size == size
                    and type(stored_mtime) is int
                    and type(stored_size) is int
                    and files[at] == filename
                ):
                    current += 1
                    if mentioned:
                        details = self._line(at)
                        if wanted is None or wanted in details:
                            found.append((candidate, details))
                    continue
            found.append((candidate, None))
        return found, current

    def names(self) -> Iterator[str]:
        return iter(self._position)

    def __len__(self) -> int:
        return len(self._position)

    def get(self, name: str) -> Entry | None:
        """The well-formed entry stored for ``name``, if any."""
        position = self._position.get(name)
        if position is None:
            return None
        item = [self._files[position], self._mtimes[position], self._sizes[position],
                self._line(position)]
        return entry_from(item)

    def as_dict(self) -> dict[str, Entry]:
        """Every well-formed entry, by module name."""
        found = {name: self.get(name) for name in self._position}
        return {name: entry for name, entry in found.items() if entry is not None}


NOTHING_STORED = StoredEntries([], [], [], [], b"")


def read_entries(
    path: str, directory: str, package: str, environment: str
) -> StoredEntries:
    """The entries of the cache file at ``path``.

    Empty if the file is absent or unusable: written for another schema, interpreter,
    directory, package or set of installed distributions (``environment``), or not of the
    documented layout.
    """
    raw = read_bytes(path)
    if raw is None:
        return NOTHING_STORED
    header_text, _, rest = raw.partition(b"\n")
    header = parse_json(header_text, path)
    if type(header) is not dict or not same_fields(header, _header(directory, package,
                                                                   environment)):
        if header is not None:
            logger().debug("ignoring plugin cache %s: written for something else", path)
        return NOTHING_STORED
    modules = header.get("modules")
    if type(modules) is not dict:
        return NOTHING_STORED
    names, files, mtimes, sizes = (modules.get(key) for key in ("names", "files", "mtimes",
                                                                "sizes"))
    count = rest.count(b"\n")
    checksum = header.get("checksum")
    if type(checksum) is not int or checksum != zlib.crc32(rest):
        logger().debug("ignoring plugin cache %s: its checksum does not match", path)
        return NOTHING_STORED
    if (
        not rest.isascii()
        or (not rest.endswith(b"\n") and count)
        or not all(type(column) is list and len(column) == count
                   for column in (names, files, mtimes, sizes))
        or not all(type(name) is str for name in names)  # type: ignore[union-attr]
    ):
        return NOTHING_STORED
    stored = StoredEntries(names, files, mtimes, sizes, rest)  # type: ignore[arg-type]
    # Repeated names would leave some line without its module.
    return stored if len(stored) == count else NOTHING_STORED


def encode(directory: str, package: str, environment: str, entries: dict[str, Entry]) -> bytes:
    """The bytes of a cache file holding ``entries`` (modules in name order)."""
    names = sorted(entries)
    header = _header(directory, package, environment)
    header["modules"] = {
        "names": names,
        "files": [entries[name].filename for name in names],
        "mtimes": [entries[name].mtime_ns for name in names],
        "sizes": [entries[name].size for name in names],
    }
    details = "".join(f"{entries[name].details}\n" for name in names).encode("ascii")
    header["checksum"] = zlib.crc32(details)
    return dump_json(header).encode("ascii") + b"\n" + details


def entry_for(candidate: Candidate, scanned: ModuleRecords) -> Entry:
    """The stored form of a freshly scanned module."""
    plugins = [
        [record.attribute, record.description, list(record.provided), list(record.interfaces)]
        for record in scanned.plugins
    ]
    details = dump_json([scanned.description, plugins])
    return Entry(candidate.filename, candidate.mtime_ns, candidate.size, details)


def _is_text(value: object) -> bool:
    return value is None or type(value) is str


def _is_names(value: object) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


def _valid_details(details: object) -> bool:
    if type(details) is not list or len(details) != 2 or not _is_text(details[0]):
        return False
    plugins = details[1]
    return type(plugins) is list and all(
        type(plugin) is list
        and len(plugin) == 4
        and type(plugin[0]) is str
        and _is_text(plugin[1])
        and _is_names(plugin[2])
        and _is_names(plugin[3])
        for plugin in plugins
    )


def decode(text: str, module: str, origin: Origin) -> ModuleRecords | None:
    """The records an entry's details ``text`` describes for the module ``module``; None if
    they are not of the documented shape (the module is then scanned again)."""
    details = parse_json(text, module)
    if not _valid_details(details):
        return None
    plugins = tuple(
        PluginRecord(module, attribute, description, tuple(provided), tuple(interfaces), origin)
        for attribute, description, provided, interfaces in details[1]
    )
    return ModuleRecords(module, details[0], plugins, origin)


class DirectoryCache:
    """What one process knows about one plugin directory, backed by the files above.

    The entries read from the directory's cache file are kept in memory between calls, with
    what changed since (fresh scans, forgotten modules) and what was adopted from the per-user
    file; so a process reads each cache file at most once and never imports a module twice for
    the same stamp, even where nothing can be written.
    """

    def __init__(self, listing: Listing, package: str, environment: str) -> None:
        self.directory = listing.directory
        self.package = package
        self.environment = environment
        self._primary = None if listing.in_archive else primary_path(self.directory)
        self._fallback_path: str | None = None
        self._on_disk: dict[str, StoredEntries] = {}
        self._unwritable: set[str] = set()
        self._base = self._stored(self._primary or self._fallback())
        self._adopted: dict[str, Entry] = {}
        self._changes: dict[str, Entry | None] = {}

    def _fallback(self) -> str:
        # Computed on first need: it hashes the path, which a warm call rarely has to do.
        if self._fallback_path is None:
            self._fallback_path = fallback_path(self.directory)
        return self._fallback_path

    def locations(self) -> list[str]:
        """Where this directory's cache is looked for and written, in order."""
        return [path for path in (self._primary, self._fallback()) if path is not None]

    def _stored(self, path: str) -> StoredEntries:
        stored = self._on_disk.get(path)
        if stored is None:
            with paused_gc():
                stored = read_entries(path, self.directory, self.package, self.environment)
            self._on_disk[path] = stored
        return stored

    def lookup(self, candidate: Candidate, wanted: str | None = None) -> str | None:
        """What is stored for ``candidate`` if an entry matches its stamp, else None; as for
        ``StoredEntries.current``, ``""`` stands for details that do not mention ``wanted``."""
        name = candidate.name
        if name in self._changes or name in self._adopted:
            entry = self._changes[name] if name in self._changes else self._adopted[name]
            if entry is None or not entry.matches(candidate):
                return None
            return entry.details if wanted is None or wanted in entry.details else ""
        found = self._base.current(candidate, wanted)
        if found is not None or self._primary is None:
            return found
        entry = self._stored(self._fallback()).get(name)
        if entry is not None and entry.matches(candidate):
            # Adopted, not changed: the fallback already holds it, nothing to write.
            self._adopted[name] = entry
            return entry.details if wanted is None or wanted in entry.details else ""
        return None

    def store(self, name: str, entry: Entry) -> None:
        """Remember a freshly scanned module."""
        self._changes[name] = entry

    def forget(self, name: str) -> None:
        """Drop the entry for ``name`` (it failed, or proved wrong when loaded)."""
        self._changes[name] = None

    def select(
        self, listing: Listing, admitted: list[Candidate], wanted: str | None
    ) -> list[tuple[str, Candidate, str | None]]:
        """(name, candidate, stored details or None) for every admitted candidate that
        matters, in name order; entries of modules no longer in ``listing`` are dropped.

        A candidate matters if nothing current is stored for it (it must be scanned), or its
        details mention ``wanted`` (a JSON-quoted interface name; None: every candidate).
        """
        # Modules this process scanned, forgot or adopted are looked up one by one; the rest,
        # normally all of them, go through the file's own tight loop.
        overridden = self._changes.keys() | self._adopted.keys()
        plain = [c for c in admitted if c.name not in overridden] if overridden else admitted
        sifted, current = self._base.sift(plain, wanted)
        relevant: list[tuple[str, Candidate, str | None]] = []
        for candidate, details in sifted:
            if details is None:  # not current in the file: maybe in the per-user one
                details = self.lookup(candidate, wanted)
            if details != "":
                relevant.append((candidate.name, candidate, details))
        for candidate in admitted if overridden else ():
            if candidate.name in overridden:
                details = self.lookup(candidate, wanted)
                if details != "":
                    relevant.append((candidate.name, candidate, details))
        relevant.sort()
        # Every entry of the file matched a listed module (``current`` counts those alone):
        # nothing can have disappeared.
        if self._changes or self._adopted or current != len(self._base):
            self._retain({candidate.name for candidate in listing.candidates})
        return relevant

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

    def save(self) -> None:
        """Write the entries to the first location that takes them, if anything changed."""
        if not self._changes or writes_disabled():
            return
        entries = self.entries()
        self._base, self._adopted, self._changes = _as_stored(entries), {}, {}
        data: bytes | None = None
        locations = self.locations()
        for path in locations:
            if path in self._unwritable:
                continue
            if self._stored(path).as_dict() == entries:
                return
            if data is None:
                data = encode(self.directory, self.package, self.environment, entries)
            try:
                write_atomic(path, data)
            except OSError as exc:
                self._unwritable.add(path)
                reason = exc.strerror or str(exc)
                if path != locations[-1]:
                    logger().info("plugin cache %s is not writable (%s); using %s instead",
                                  path, reason, locations[-1])
                else:
                    logger().info("plugin cache %s is not writable (%s)", path, reason)
                continue
            self._on_disk[path] = self._base
            return


def _as_stored(entries: dict[str, Entry]) -> StoredEntries:
    names = list(entries)
    return StoredEntries(
        names,
        [entries[name].filename for name in names],
        [entries[name].mtime_ns for name in names],
        [entries[name].size for name in names],
        "".join(f"{entries[name].details}\n" for name in names).encode("ascii"),
    )
