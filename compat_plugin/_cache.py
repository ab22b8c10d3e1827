"""The persistent store of scanned plugin modules, one JSON file per plugin directory.

Format (``SCHEMA``)::

    {"schema": 1, "interpreter": "cpython-311", "directory": "/abs/dir", "package": "pkg.plugins",
     "environment": "<digest of the installed distributions>",
     "modules": {"name": [filename, mtime_ns, size, docstring, plugins]}}

where each plugin is ``[attribute, docstring, [declared interface names], [all interface
names]]``.  The file is data only: it is parsed as JSON, checked entry by entry, and an entry is
used only for a module file that exists now with exactly the recorded stamp, and only while the
same distributions are installed (a plugin module may define its plugins only when an optional
dependency imports).  Anything else in it is ignored and rewritten.

Where it lives: ``<plugin dir>/__pycache__/compat_plugin.<interpreter>.json``; when that cannot
be written (site-wide installs, zip archives), ``<user cache>/compat_plugin/<hash of the
directory>.<interpreter>.json``, the user cache being ``$COMPAT_PLUGIN_CACHE_DIR``, else
``$XDG_CACHE_HOME/compat_plugin``, else ``~/.cache/compat_plugin``.  Setting
``COMPAT_PLUGIN_NO_CACHE_WRITE`` to a non-empty value other than ``0`` stops all writing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
from typing import Any

from ._dropins import Candidate, Listing
from ._records import ModuleRecords, Origin, PluginRecord

logger = logging.getLogger("compat_plugin")

SCHEMA = 1
# An entry as stored: [filename, mtime_ns, size, docstring, plugins].
Entry = list[Any]


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


def primary_path(directory: str) -> str:
    """The cache file kept beside the plugin modules it describes."""
    return os.path.join(directory, "__pycache__", f"compat_plugin.{interpreter_tag()}.json")


def fallback_path(directory: str) -> str:
    """The per-user cache file for ``directory``, keyed by its absolute path."""
    digest = hashlib.sha256(os.path.abspath(directory).encode("utf-8", "surrogateescape"))
    return os.path.join(user_cache_root(), f"{digest.hexdigest()[:32]}.{interpreter_tag()}.json")


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


def _is_names(value: object) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


def _is_text(value: object) -> bool:
    return value is None or type(value) is str


def _valid_plugin(plugin: object) -> bool:
    return (
        type(plugin) is list
        and len(plugin) == 4
        and type(plugin[0]) is str
        and _is_text(plugin[1])
        and _is_names(plugin[2])
        and _is_names(plugin[3])
    )


def valid_entry(entry: object) -> bool:
    """Whether ``entry`` has exactly the stored shape; anything else is discarded."""
    return (
        type(entry) is list
        and len(entry) == 5
        and type(entry[0]) is str
        and type(entry[1]) is int
        and type(entry[2]) is int
        and _is_text(entry[3])
        and type(entry[4]) is list
        and all(_valid_plugin(plugin) for plugin in entry[4])
    )


def read_json(path: str) -> Any:
    """The parsed JSON document at ``path``, or None if it is absent or not JSON.

    Only ever parsed as data; odd content is reported at debug level, never raised.
    """
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except OSError:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        logger.debug("ignoring unreadable plugin cache %s: %s", path, exc)
        return None


def same_fields(data: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Whether ``data`` holds exactly ``expected``'s values, types included (``true`` is not
    ``1`` here, as it is to ``==``)."""
    return all(
        type(data.get(key)) is type(value) and data.get(key) == value
        for key, value in expected.items()
    )


def _header(directory: str, package: str, environment: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "interpreter": interpreter_tag(),
        "directory": os.path.abspath(directory),
        "package": package,
        "environment": environment,
    }


def read_entries(path: str, directory: str, package: str, environment: str) -> dict[str, Entry]:
    """The valid entries of the cache file at ``path``; empty if it is absent or unusable.

    A file written for another schema, interpreter, directory, package or set of installed
    distributions (``environment``) is ignored, and so is every malformed entry.
    """
    data = read_json(path)
    expected = _header(directory, package, environment)
    if type(data) is not dict or not same_fields(data, expected):
        if data is not None:
            logger.debug("ignoring plugin cache %s: written for something else", path)
        return {}
    modules = data.get("modules")
    if type(modules) is not dict:
        return {}
    return {name: entry for name, entry in modules.items() if valid_entry(entry)}


def encode(directory: str, package: str, environment: str, entries: dict[str, Entry]) -> bytes:
    """The bytes of a cache file holding ``entries``."""
    document = _header(directory, package, environment)
    document["modules"] = entries
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("ascii")


def entry_for(candidate: Candidate, scanned: ModuleRecords) -> Entry:
    """The stored form of a freshly scanned module."""
    plugins = [
        [record.attribute, record.description, list(record.provided), list(record.interfaces)]
        for record in scanned.plugins
    ]
    return [candidate.filename, candidate.stamp.mtime_ns, candidate.stamp.size,
            scanned.description, plugins]


def records_for(entry: Entry, module: str, origin: Origin) -> ModuleRecords:
    """The records a stored entry describes, for the module called ``module``."""
    plugins = tuple(
        PluginRecord(module, attribute, description, tuple(provided), tuple(interfaces), origin)
        for attribute, description, provided, interfaces in entry[4]
    )
    return ModuleRecords(module, entry[3], plugins, origin)


def matches(entry: Entry, candidate: Candidate) -> bool:
    """Whether ``entry`` describes exactly the file found on disk now."""
    return bool(
        entry[0] == candidate.filename
        and entry[1] == candidate.stamp.mtime_ns
        and entry[2] == candidate.stamp.size
    )


class DirectoryCache:
    """What one process knows about one plugin directory, backed by the files above.

    Entries are kept in memory between calls, so a process reads each cache file at most once
    and never imports a module twice for the same stamp, even where nothing can be written.
    """

    def __init__(self, listing: Listing, package: str, environment: str) -> None:
        self.directory = listing.directory
        self.package = package
        self.environment = environment
        self._paths: list[str] = [] if listing.in_archive else [primary_path(self.directory)]
        self._paths.append(fallback_path(self.directory))
        self._on_disk: dict[str, dict[str, Entry] | None] = dict.fromkeys(self._paths)
        self._unwritable: set[str] = set()
        self.entries: dict[str, Entry] = dict(self._stored(self._paths[0]))
        self._dirty = False

    def _stored(self, path: str) -> dict[str, Entry]:
        stored = self._on_disk[path]
        if stored is None:
            stored = self._on_disk[path] = read_entries(
                path, self.directory, self.package, self.environment
            )
        return stored

    def lookup(self, candidate: Candidate) -> Entry | None:
        """The stored entry for ``candidate`` if one matches its stamp, else None."""
        entry = self.entries.get(candidate.name)
        if entry is not None and matches(entry, candidate):
            return entry
        for path in self._paths[1:]:
            entry = self._stored(path).get(candidate.name)
            if entry is not None and matches(entry, candidate):
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
        for path in self._paths:
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
                if path != self._paths[-1]:
                    logger.info(
                        "plugin cache %s is not writable (%s); using %s instead",
                        path, exc.strerror or exc, self._paths[-1],
                    )
                else:
                    logger.info("plugin cache %s is not writable (%s)", path, exc.strerror or exc)
                continue
            self._on_disk[path] = dict(self.entries)
            return
