"""The persistent store of scanned plugin modules, one file per plugin directory.

Format (``SCHEMA``), JSON Lines: the first line is a header, then one line per module::

    {"schema": 2, "interpreter": "cpython-311", "directory": "/abs/dir", "package": "pkg.plugins",
     "environment": "<digest of the installed distributions>",
     "modules": {"name": [filename, mtime_ns, size], ...}}
    [docstring, [[attribute, docstring, [declared interface names], [all interface names]], ...]]
    ...

The n-th module line describes the n-th name of ``modules``.  Keeping the per-module details
on lines of their own lets a warm query parse only the stamps and the lines of the modules that
mention the asked interface.  The file is data only: it is parsed as JSON, checked before use,
and an entry is used only for a module file that exists now with exactly the recorded stamp,
and only while the same distributions are installed (a plugin module may define its plugins
only when an optional dependency imports).  Anything else in it is ignored and rewritten.

Where it lives: ``<plugin dir>/__pycache__/compat_plugin.<interpreter>.json``; when that cannot
be written (site-wide installs, zip archives), ``<user cache>/compat_plugin/<hash of the
directory>.<interpreter>.json``, the user cache being ``$COMPAT_PLUGIN_CACHE_DIR``, else
``$XDG_CACHE_HOME/compat_plugin``, else ``~/.cache/compat_plugin``.  Setting
``COMPAT_PLUGIN_NO_CACHE_WRITE`` to a non-empty value other than ``0`` stops all writing.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, NamedTuple

from ._dropins import Candidate, Listing
from ._log import logger
from ._records import ModuleRecords, Origin, PluginRecord

SCHEMA = 2


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

    def mentions(self, quoted_name: str) -> bool:
        """Whether the details may name an interface (``quoted_name`` is ``json.dumps(name)``).

        Conservative: a false "yes" only costs decoding the details.
        """
        return quoted_name in self.details


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
    """A short, stable digest of ``text`` for file names and fingerprints (64-bit FNV-1a).

    Not cryptographic: every file records what it was written for and is checked against it.
    Computed here because a warm call needs one, and importing hashlib or zlib for it would
    cost more than the hashing.
    """
    value = 0xCBF29CE484222325
    for byte in text.encode("utf-8", "surrogateescape"):
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def primary_path(directory: str) -> str:
    """The cache file kept beside the plugin modules it describes."""
    return os.path.join(directory, "__pycache__", f"compat_plugin.{interpreter_tag()}.json")


def fallback_path(directory: str) -> str:
    """The per-user cache file for ``directory``, keyed by its absolute path."""
    name = f"{digest(os.path.abspath(directory))}.{interpreter_tag()}.json"
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
        "directory": os.path.abspath(directory),
        "package": package,
        "environment": environment,
    }


def read_entries(path: str, directory: str, package: str, environment: str) -> dict[str, Entry]:
    """The entries of the cache file at ``path`` whose stamps are well-formed.

    Empty if the file is absent or unusable: written for another schema, interpreter,
    directory, package or set of installed distributions (``environment``), or not of the
    documented shape.  Details are checked when decoded (see ``decode``).
    """
    raw = read_bytes(path)
    if raw is None:
        return {}
    header_text, _, rest = raw.partition(b"\n")
    header = parse_json(header_text, path)
    if type(header) is not dict or not same_fields(header, _header(directory, package,
                                                                   environment)):
        if header is not None:
            logger().debug("ignoring plugin cache %s: written for something else", path)
        return {}
    stamps = header.get("modules")
    try:
        lines = rest.decode("ascii").split("\n")
    except UnicodeDecodeError:
        return {}
    if type(stamps) is not dict or len(lines) != len(stamps) + 1 or lines[-1] != "":
        return {}
    entries: dict[str, Entry] = {}
    for (name, stamp), details in zip(stamps.items(), lines):
        if type(stamp) is list and len(stamp) == 3:
            entry = entry_from([*stamp, details])
            if entry is not None:
                entries[name] = entry
    return entries


def encode(directory: str, package: str, environment: str, entries: dict[str, Entry]) -> bytes:
    """The bytes of a cache file holding ``entries``."""
    header = _header(directory, package, environment)
    header["modules"] = {name: list(entry[:3]) for name, entry in entries.items()}
    lines = [dump_json(header), *(entry.details for entry in entries.values()), ""]
    return "\n".join(lines).encode("ascii")


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


def decode(entry: Entry, module: str, origin: Origin) -> ModuleRecords | None:
    """The records ``entry`` describes for the module ``module``; None if its details are not
    of the documented shape (the module is then scanned again)."""
    details = parse_json(entry.details, module)
    if not _valid_details(details):
        return None
    plugins = tuple(
        PluginRecord(module, attribute, description, tuple(provided), tuple(interfaces), origin)
        for attribute, description, provided, interfaces in details[1]
    )
    return ModuleRecords(module, details[0], plugins, origin)


class DirectoryCache:
    """What one process knows about one plugin directory, backed by the files above.

    Entries are kept in memory between calls, so a process reads each cache file at most once
    and never imports a module twice for the same stamp, even where nothing can be written.
    """

    def __init__(self, listing: Listing, package: str, environment: str) -> None:
        self.directory = listing.directory
        self.package = package
        self.environment = environment
        self._primary = None if listing.in_archive else primary_path(self.directory)
        self._fallback_path: str | None = None
        self._on_disk: dict[str, dict[str, Entry]] = {}
        self._unwritable: set[str] = set()
        self.entries: dict[str, Entry] = dict(self._stored(self._primary or self._fallback()))
        self._dirty = False

    def _fallback(self) -> str:
        # Computed on first need: it hashes the path, which a warm call rarely has to do.
        if self._fallback_path is None:
            self._fallback_path = fallback_path(self.directory)
        return self._fallback_path

    def locations(self) -> list[str]:
        """Where this directory's cache is looked for and written, in order."""
        return [path for path in (self._primary, self._fallback()) if path is not None]

    def _stored(self, path: str) -> dict[str, Entry]:
        stored = self._on_disk.get(path)
        if stored is None:
            stored = self._on_disk[path] = read_entries(
                path, self.directory, self.package, self.environment
            )
        return stored

    def lookup(self, candidate: Candidate) -> Entry | None:
        """The stored entry for ``candidate`` if one matches its stamp, else None."""
        entry = self.entries.get(candidate.name)
        if entry is not None and entry.matches(candidate):
            return entry
        if self._primary is None:
            return None  # the entries were read from the fallback itself
        entry = self._stored(self._fallback()).get(candidate.name)
        if entry is not None and entry.matches(candidate):
            # Adopted, not changed: the fallback already holds it, nothing to write.
            self.entries[candidate.name] = entry
            return entry
        return None

    def store(self, name: str, entry: Entry) -> None:
        """Remember a freshly scanned module."""
        self.entries[name] = entry
        self._dirty = True

    def forget(self, name: str) -> None:
        """Drop the entry for ``name`` (it failed, or proved wrong when loaded)."""
        if self.entries.pop(name, None) is not None:
            self._dirty = True

    def retain(self, listing: Listing) -> None:
        """Drop entries for modules no longer in the directory."""
        present = {candidate.name for candidate in listing.candidates}
        for name in [name for name in self.entries if name not in present]:
            del self.entries[name]
            self._dirty = True

    def save(self) -> None:
        """Write the entries to the first location that takes them, if anything changed."""
        if not self._dirty or writes_disabled():
            return
        self._dirty = False
        data: bytes | None = None
        locations = self.locations()
        for path in locations:
            if path in self._unwritable:
                continue
            if self._stored(path) == self.entries:
                return
            if data is None:
                data = encode(self.directory, self.package, self.environment, self.entries)
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
            self._on_disk[path] = dict(self.entries)
            return
