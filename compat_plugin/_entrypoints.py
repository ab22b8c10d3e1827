"""The entry-point source and its index cache.

The group is the plugin package's dotted name.  Distributions are found where
``importlib.metadata`` finds them -- ``*.dist-info`` and ``*.egg-info`` directories in each
``sys.path`` entry, in ``sys.path`` order -- and a later copy of a distribution (same normalized
name) is shadowed by the first.  Their metadata files are read here directly (the core metadata
and entry-point formats are small and fixed), so that building an index does not pay for
importing ``importlib.metadata``; ``packaging`` is imported only to check requirements on the
host.

What metadata says is kept in an *index*, one JSON file per (group, ``sys.path``, interpreter)
in the per-user cache.  It is valid while every ``sys.path`` entry keeps its stamp: installing,
upgrading or removing a distribution adds or removes a directory there and so changes it.  While
the index is valid no metadata is read at all.  The index also keeps what each entry point's
module contributed, validated by that module file's own stamp.
"""

from __future__ import annotations

import os
import sys
import zlib
from typing import Any, NamedTuple, Optional

from ._cache import (
    Entry,
    digest,
    dump_json,
    entry_from,
    interpreter_tag,
    parse_json,
    read_bytes,
    same_fields,
    user_cache_root,
    write_atomic,
    writes_disabled,
)
from ._dropins import Candidate
from ._log import logger
from ._records import Origin

SCHEMA = 2
# Stamps of the sys.path entries; None for an entry that does not exist.
PathStamps = list[Optional[list[int]]]


class EntryPointSpec(NamedTuple):
    """One entry point of one distribution, as its metadata declares it."""

    distribution: str
    version: str
    position: int
    path: str
    name: str
    value: str

    @property
    def key(self) -> str:
        """Identifies what was scanned for this entry point in the index."""
        return f"{self.distribution}\0{self.name}\0{self.value}"

    @property
    def origin(self) -> Origin:
        return Origin("entry-point", self.path, self.distribution, self.version, self.name)

    def target(self) -> tuple[str, str | None] | None:
        """(module, attribute path or None) named by the value, or None if it is malformed."""
        value = self.value.split("[", 1)[0].strip()
        module, colon, attribute = value.partition(":")
        module, attribute = module.strip(), attribute.strip()
        if not all(part.isidentifier() for part in module.split(".")):
            return None
        if colon and not all(part.isidentifier() for part in attribute.split(".")):
            return None
        return module, attribute if colon else None


class Shadowed(NamedTuple):
    """A later copy of a distribution, hidden by the one found first on ``sys.path``."""

    distribution: str
    version: str
    path: str
    by: str


class EntryPointIndex:
    """What the installed distributions declare for one group, and what their plugins are."""

    def __init__(
        self,
        group: str,
        path: list[str],
        stamps: PathStamps,
        environment: str,
        entry_points: list[EntryPointSpec],
        incompatible: dict[str, str],
        scanned: dict[str, Entry],
        shadowed: list[Shadowed],
    ) -> None:
        self.group = group
        self.path = path
        self.stamps = stamps
        self.environment = environment
        self.entry_points = entry_points
        self.incompatible = incompatible
        self.scanned = scanned
        self.shadowed = shadowed
        self.dirty = False

    def store(self, key: str, entry: Entry) -> None:
        """Remember what the entry point ``key`` (an ``EntryPointSpec.key``) contributed."""
        self.scanned[key] = entry
        self.dirty = True

    def forget(self, key: str) -> None:
        """Drop what is remembered for the entry point ``key``."""
        if self.scanned.pop(key, None) is not None:
            self.dirty = True

    def _scanned_document(self) -> dict[str, list[Any]]:
        return {key: list(entry) for key, entry in self.scanned.items()}

    def invalidate(self) -> None:
        """Have the next call read all metadata again (what the index says proved stale)."""
        self.stamps, self.environment, self.dirty = [], "", True

    def document(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "interpreter": interpreter_tag(),
            "group": self.group,
            "path": self.path,
            "stamps": self.stamps,
            "environment": self.environment,
            "entry_points": [list(spec) for spec in self.entry_points],
            "incompatible": self.incompatible,
            "scanned": self._scanned_document(),
            "checksum": zlib.crc32(dump_json(self._scanned_document()).encode("ascii")),
            "shadowed": [list(item) for item in self.shadowed],
        }


def path_stamps(path: list[str]) -> PathStamps:
    """One stamp per ``sys.path`` entry: the cheap test of whether anything was installed."""
    stamps: PathStamps = []
    for entry in path:
        try:
            st = os.stat(entry or ".")
        except OSError:
            stamps.append(None)
        else:
            stamps.append([st.st_mtime_ns, st.st_size])
    return stamps


def file_candidate(key: str, filename: str | None) -> Candidate:
    """A module file to validate an entry point's scan against (modules without a file:
    valid while the index is)."""
    if filename:
        try:
            st = os.stat(filename)
        except OSError:
            return Candidate(key, filename, -1, -1)
        return Candidate(key, filename, st.st_mtime_ns, st.st_size)
    return Candidate(key, "", -1, -1)


def index_path(group: str, path: list[str]) -> str:
    """The index file for ``group`` under ``path`` (a ``sys.path``)."""
    name = f"{digest(chr(0).join([group, *path]))}.{interpreter_tag()}.json"
    return os.path.join(user_cache_root(), "entry-points", name)


def _valid_spec(spec: object) -> bool:
    return (
        type(spec) is list
        and len(spec) == 6
        and all(type(spec[i]) is str for i in (0, 1, 3, 4, 5))
        and type(spec[2]) is int
    )


def _valid_stamps(stamps: object, length: int) -> bool:
    return (
        type(stamps) is list
        and len(stamps) == length
        and all(
            stamp is None
            or (type(stamp) is list and len(stamp) == 2 and all(type(n) is int for n in stamp))
            for stamp in stamps
        )
    )


def index_files(group: str) -> list[str]:
    """Every stored index of ``group``, whatever ``sys.path`` it was written for."""
    folder = os.path.dirname(index_path(group, []))
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(folder, name)
        raw = read_bytes(path) if name.endswith(".json") else None
        data = parse_json(raw, path) if raw is not None else None
        if type(data) is dict and data.get("group") == group:
            found.append(path)
    return found


def read_index(group: str, path: list[str]) -> EntryPointIndex | None:
    """The stored index for ``group`` and ``path``, or None if absent or not usable."""
    where = index_path(group, path)
    raw = read_bytes(where)
    data = parse_json(raw, where) if raw is not None else None
    if (
        type(data) is not dict
        or not same_fields(
            data,
            {"schema": SCHEMA, "interpreter": interpreter_tag(), "group": group, "path": path},
        )
        or not _valid_stamps(data.get("stamps"), len(path))
        or type(data.get("environment")) is not str
        or type(data.get("entry_points")) is not list
        or not all(_valid_spec(spec) for spec in data["entry_points"])
        or type(data.get("incompatible")) is not dict
        or not all(type(v) is str for v in data["incompatible"].values())
        or type(data.get("scanned")) is not dict
        or type(data.get("shadowed")) is not list
        or not all(
            type(item) is list and len(item) == 4 and all(type(part) is str for part in item)
            for item in data["shadowed"]
        )
    ):
        return None
    # Scans are skipped undecoded by queries they do not concern: the checksum is what lets
    # them be (a damaged one damages the index, which is then rebuilt).
    checksum = data.get("checksum")
    if type(checksum) is not int or checksum != zlib.crc32(
        dump_json(data["scanned"]).encode("ascii", "backslashreplace")
    ):
        return None
    scanned = {
        key: entry
        for key, item in data["scanned"].items()
        if (entry := entry_from(item)) is not None
    }
    specs = [EntryPointSpec(*spec) for spec in data["entry_points"]]
    shadowed = [Shadowed(*item) for item in data["shadowed"]]
    return EntryPointIndex(
        group, path, data["stamps"], data["environment"], specs, data["incompatible"], scanned,
        shadowed,
    )


def save_index(index: EntryPointIndex) -> None:
    """Write ``index`` if it changed; failures are logged once at INFO and otherwise ignored."""
    if not index.dirty or writes_disabled():
        return
    index.dirty = False
    target = index_path(index.group, index.path)
    try:
        write_atomic(target, dump_json(index.document()).encode("ascii"))
    except OSError as exc:
        if target not in _unwritable:
            _unwritable.add(target)
            logger().info("entry-point index %s is not writable (%s)", target,
                          exc.strerror or exc)


_unwritable: set[str] = set()


# -- Building an index from installed metadata (the cold path) -------------------------------


def canonical_name(name: str) -> str:
    """A distribution name normalized as package indexes compare them (PEP 503)."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


class _MetadataDir(NamedTuple):
    position: int
    directory: str
    identity: str


def _identity(item: os.DirEntry[str]) -> str:
    """What changes when a metadata directory is replaced: its inode and mtime (an inode
    alone can be reused by a directory deleted and recreated under the same name)."""
    try:
        return f"{item.inode()}:{item.stat().st_mtime_ns}"
    except OSError:
        return str(item.inode())


def _distribution_dirs(path: list[str]) -> list[_MetadataDir]:
    """Every ``*.dist-info`` / ``*.egg-info`` directory on ``path``, in sys.path order (by
    name within one entry)."""
    found: list[_MetadataDir] = []
    for position, entry in enumerate(path):
        try:
            with os.scandir(entry or ".") as scan:
                items = sorted(
                    (item.name, _identity(item))
                    for item in scan
                    if item.name.endswith((".dist-info", ".egg-info")) and item.is_dir()
                )
        except OSError:
            continue
        found.extend(
            _MetadataDir(position, os.path.join(entry or ".", name), identity)
            for name, identity in items
        )
    return found


def installed_fingerprint(found: list[_MetadataDir]) -> str:
    """What identifies the installed distributions: every metadata directory's path and
    identity, so a reinstall of even the same version changes it."""
    text = "\n".join(f"{item.directory}:{item.identity}" for item in found)
    return f"{digest(text)}-{len(found)}"


def _read_text(directory: str, name: str) -> str | None:
    raw = read_bytes(os.path.join(directory, name))
    return None if raw is None else raw.decode("utf-8")


def _metadata_file(directory: str) -> str:
    return "METADATA" if directory.endswith(".dist-info") else "PKG-INFO"


def _headers(text: str) -> dict[str, list[str]]:
    """The header fields of a core metadata file (up to the first blank line)."""
    fields: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t" and last is not None:
            last[-1] += " " + line.strip()
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"not a metadata header line: {line!r}")
        last = fields.setdefault(key.strip().lower(), [])
        last.append(value.strip())
    return fields


def _egg_requirements(text: str) -> list[str]:
    """The requirements in an egg-info ``requires.txt``: unconditional and marker sections."""
    found: list[str] = []
    marker: str | None = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            marker = section[1:] if section.startswith(":") else None  # extras do not count
        elif marker is not None:
            found.append(f"{line}; {marker}" if marker else line)
    return found


def _entry_points(text: str, group: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The (name, value) pairs of ``group`` in an ``entry_points.txt``, and malformed lines."""
    found: list[tuple[str, str]] = []
    malformed: list[str] = []
    section: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
        elif section == group:
            name, equals, value = stripped.partition("=")
            if equals and name.strip() and value.strip():
                found.append((name.strip(), value.strip()))
            else:
                malformed.append(stripped)
    return found, malformed


def _name_from_directory(basename: str) -> str:
    """The normalized distribution name in ``name-version.dist-info`` / ``name.egg-info``."""
    return canonical_name(basename.rsplit(".", 1)[0].split("-", 1)[0])


class _Distribution(NamedTuple):
    name: str
    version: str
    position: int
    directory: str
    requires: list[str]


def _describe(directory: str, position: int) -> _Distribution:
    """Name, version and requirements from a metadata directory; raises if unreadable."""
    text = _read_text(directory, _metadata_file(directory))
    if text is None:
        raise FileNotFoundError(f"no {_metadata_file(directory)} in {directory}")
    fields = _headers(text)
    name, version = fields.get("name", [""])[0], fields.get("version", [""])[0]
    if not name or not version:
        raise ValueError(f"{directory} names no distribution name and version")
    if directory.endswith(".dist-info"):
        requires = fields.get("requires-dist", [])
    else:
        requires = _egg_requirements(_read_text(directory, "requires.txt") or "")
    return _Distribution(canonical_name(name), version, position, directory, requires)


def build_index(
    group: str, path: list[str], stamps: PathStamps, found: list[_MetadataDir]
) -> EntryPointIndex:
    """Read every distribution's metadata for ``group``.

    A distribution whose metadata cannot be read, or whose entry points are malformed, is
    reported and skipped; the others still count.
    """
    first: dict[str, str] = {}
    contributing: list[_Distribution] = []
    specs: list[EntryPointSpec] = []
    shadowed: list[Shadowed] = []
    for position, directory, _ in found:
        metadata = _metadata_file(directory)
        if not os.path.isfile(os.path.join(directory, metadata)):
            logger().debug("%s has no %s: not taken as a distribution", directory, metadata)
            continue
        earlier = first.setdefault(_name_from_directory(os.path.basename(directory)), directory)
        try:
            text = _read_text(directory, "entry_points.txt")
        except (OSError, UnicodeDecodeError) as exc:
            logger().warning("ignoring entry points in %s: %s", directory, exc)
            continue
        declared, malformed = _entry_points(text or "", group)
        if not declared and not malformed:
            continue
        try:
            dist = _describe(directory, position)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            logger().warning("ignoring distribution at %s: unreadable %s (%s)", directory,
                             metadata, exc)
            continue
        if earlier != directory:
            shadowed.append(Shadowed(dist.name, dist.version, directory, earlier))
            continue
        contributing.append(dist)
        for line in malformed:
            logger().warning("ignoring malformed entry point of %s %s: %r", dist.name,
                             dist.version, line)
        for name, value in sorted(declared):
            specs.append(EntryPointSpec(dist.name, dist.version, position, directory, name,
                                        value))
    specs.sort(key=lambda spec: (spec.position, spec.distribution, spec.name))
    environment = installed_fingerprint(found)
    incompatible = _incompatible(contributing, group.split(".", 1)[0], path)
    # No earlier scan is kept: with other distributions installed, a module may define other
    # plugins (one that does so only when an optional dependency imports, say).
    index = EntryPointIndex(group, path, stamps, environment, specs, incompatible, {}, shadowed)
    index.dirty = True
    return index


def _installs(directory: str, top_level: str) -> bool:
    """Whether the distribution described in ``directory`` installs package ``top_level``."""
    listed = _read_text(directory, "top_level.txt")
    if listed is not None:
        return top_level in listed.split()
    record = _read_text(directory, "RECORD") or ""
    return any(
        line.split(",", 1)[0].split("/", 1)[0] in (top_level, f"{top_level}.py")
        for line in record.splitlines()
    )


def _host(requirements: set[str], top_level: str, path: list[str]) -> _Distribution | None:
    """The distribution that installs ``top_level``, among those some plugin requires."""
    for position, directory, _ in _distribution_dirs(path):
        name = _name_from_directory(os.path.basename(directory))
        if name in requirements and _installs(directory, top_level):
            try:
                return _describe(directory, position)
            except (OSError, UnicodeDecodeError, ValueError):
                return None
    return None


def _incompatible(
    plugins: list[_Distribution], top_level: str, path: list[str]
) -> dict[str, str]:
    """Plugin distributions whose requirement on the host the installed host does not meet.

    The host is the distribution that installs the plugin package's top-level package.
    """
    if not any(dist.requires for dist in plugins):
        return {}
    from packaging.requirements import InvalidRequirement, Requirement

    parsed: dict[str, list[Requirement]] = {}
    for dist in plugins:
        for text in dist.requires:
            try:
                parsed.setdefault(dist.name, []).append(Requirement(text))
            except InvalidRequirement:
                logger().warning("ignoring invalid requirement %r of %s", text, dist.name)
    wanted = {canonical_name(req.name) for reqs in parsed.values() for req in reqs}
    host = _host(wanted, top_level, path)
    if host is None:
        return {}
    problems: dict[str, str] = {}
    for plugin, requirements in parsed.items():
        for requirement in requirements:
            if canonical_name(requirement.name) != host.name:
                continue
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            if not requirement.specifier.contains(host.version, prereleases=True):
                problems[plugin] = (
                    f"requires {requirement} but {host.name} {host.version} is installed"
                )
    return problems


def declared(path: str, group: str, name: str, value: str) -> bool:
    """Whether the distribution whose metadata is in ``path`` declares the entry point
    ``name = value`` in ``group`` now: checked before an entry point's module is imported,
    so no index, however stale or forged, names a module to import by itself."""
    try:
        text = _read_text(path, "entry_points.txt")
    except (OSError, UnicodeDecodeError):
        return False
    found, _ = _entry_points(text or "", group)
    return (name, value) in found


def distribution_files(name: str, path: list[str]) -> set[str] | None:
    """The real paths of the files the first installed copy of ``name`` lists in its RECORD
    (or ``installed-files.txt``); None if no such distribution is installed."""
    wanted = canonical_name(name)
    for _, directory, _ in _distribution_dirs(path):
        if _name_from_directory(os.path.basename(directory)) != wanted:
            continue
        root = os.path.dirname(directory)
        record = _read_text(directory, "RECORD")
        if record is not None:
            listed = [line.split(",", 1)[0] for line in record.splitlines()]
        else:
            root = directory
            listed = (_read_text(directory, "installed-files.txt") or "").splitlines()
        return {os.path.realpath(os.path.join(root, item)) for item in listed if item}
    return None


_indexes: dict[tuple[str, tuple[str, ...]], EntryPointIndex] = {}


def current_index(group: str) -> EntryPointIndex:
    """The index for ``group`` under the current ``sys.path``, rebuilt if anything changed."""
    path = [entry for entry in sys.path if isinstance(entry, str)]
    stamps = path_stamps(path)
    key = (group, tuple(path))
    index = _indexes.get(key)
    if index is None or index.stamps != stamps:
        stored = read_index(group, path) if index is None else index
        if stored is not None and stored.stamps == stamps:
            index = stored
        else:
            found = _distribution_dirs(path)
            if stored is not None and stored.environment == installed_fingerprint(found):
                # Something on sys.path changed, but not the distributions (an edited file in
                # the working directory, say): the index holds; record the new stamps.
                stored.stamps = stamps
                stored.dirty = True
                index = stored
            else:
                index = build_index(group, path, stamps, found)
        _indexes[key] = index
    return index


def forget_indexes() -> None:
    """Drop what this process remembers of entry-point indexes (the files stay)."""
    _indexes.clear()
