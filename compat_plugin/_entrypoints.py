"""The entry-point source and its index cache.

The group is the plugin package's dotted name.  Distributions are found the way
``importlib.metadata`` finds them -- ``*.dist-info`` and ``*.egg-info`` directories in each
``sys.path`` entry, in ``sys.path`` order -- and a later copy of a distribution (same normalized
name) is shadowed by the first.

What metadata says is kept in an *index*, one JSON file per (group, ``sys.path``, interpreter)
in the per-user cache.  It is valid while every ``sys.path`` entry keeps its stamp: installing,
upgrading or removing a distribution adds or removes a directory there and so changes it.  While
the index is valid, neither ``importlib.metadata`` nor ``packaging`` is imported.  The index also
keeps what each entry point's module contributed, validated by that module file's own stamp.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from typing import Any, NamedTuple, Optional

from ._cache import (
    Entry,
    interpreter_tag,
    read_json,
    same_fields,
    user_cache_root,
    valid_entry,
    write_atomic,
    writes_disabled,
)
from ._dropins import Candidate
from ._records import Origin, Stamp

logger = logging.getLogger("compat_plugin")

SCHEMA = 1
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

    def store(self, spec: EntryPointSpec, entry: Entry) -> None:
        self.scanned[spec.key] = entry
        self.dirty = True

    def forget(self, spec: EntryPointSpec) -> None:
        if self.scanned.pop(spec.key, None) is not None:
            self.dirty = True

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
            "scanned": self.scanned,
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
            return Candidate(key, filename, Stamp(-1, -1))
        return Candidate(key, filename, Stamp(st.st_mtime_ns, st.st_size))
    return Candidate(key, "", Stamp(-1, -1))


def index_path(group: str, path: list[str]) -> str:
    key = "\0".join([group, *path]).encode("utf-8", "surrogateescape")
    name = f"{hashlib.sha256(key).hexdigest()[:32]}.{interpreter_tag()}.json"
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


def read_index(group: str, path: list[str]) -> EntryPointIndex | None:
    """The stored index for ``group`` and ``path``, or None if absent or not usable."""
    data = read_json(index_path(group, path))
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
    scanned = {key: entry for key, entry in data["scanned"].items() if valid_entry(entry)}
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
        write_atomic(target, _encode(index.document()))
    except OSError as exc:
        if target not in _unwritable:
            _unwritable.add(target)
            logger.info("entry-point index %s is not writable (%s)", target, exc.strerror or exc)


_unwritable: set[str] = set()


def _encode(document: dict[str, Any]) -> bytes:
    import json

    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("ascii")


# -- Building an index from installed metadata (the cold path) -------------------------------


def _metadata() -> Any:
    if sys.version_info >= (3, 10):
        import importlib.metadata as metadata
    else:  # pragma: no cover - the stdlib module lacks what we use before 3.10
        import importlib_metadata as metadata
    return metadata


def _distribution_dirs(path: list[str]) -> list[tuple[int, str]]:
    """(sys.path position, metadata directory) of every distribution, in sys.path order."""
    found: list[tuple[int, str]] = []
    for position, entry in enumerate(path):
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                directory = os.path.join(entry or ".", name)
                if os.path.isdir(directory):
                    found.append((position, directory))
    return found


def build_index(
    group: str, path: list[str], stamps: PathStamps, previous: EntryPointIndex | None
) -> EntryPointIndex:
    """Read every distribution's metadata for ``group``; keep still-valid scans of ``previous``.

    A distribution whose metadata cannot be read, or whose entry points are malformed, is
    reported and skipped; the others still count.
    """
    from packaging.utils import canonicalize_name

    metadata = _metadata()
    seen: dict[str, str] = {}
    specs: list[EntryPointSpec] = []
    shadowed: list[Shadowed] = []
    requirements: dict[str, list[str]] = {}
    everything: list[str] = []
    for position, directory in _distribution_dirs(path):
        try:
            dist = metadata.Distribution.at(directory)
            meta = dist.metadata
            name = meta["Name"] if meta is not None else None
            version = meta["Version"] if meta is not None else None
        except Exception as exc:  # a broken METADATA must not hide the other distributions
            logger.warning("ignoring distribution at %s: unreadable metadata (%s)", directory, exc)
            continue
        if not name or not version:
            continue  # not a distribution (an empty or partial metadata directory)
        canonical = canonicalize_name(name)
        everything.append(f"{canonical}=={version}")
        if canonical in seen:
            shadowed.append(Shadowed(canonical, version, directory, seen[canonical]))
            continue
        seen[canonical] = directory
        try:
            declared = [ep for ep in dist.entry_points if ep.group == group]
        except Exception as exc:
            logger.warning("ignoring entry points of %s %s at %s: %s", name, version, directory,
                           exc)
            continue
        for ep in sorted(declared, key=lambda ep: ep.name):
            specs.append(EntryPointSpec(canonical, version, position, directory, ep.name, ep.value))
        if declared:
            try:
                requirements[canonical] = list(dist.requires or [])
            except Exception as exc:
                logger.warning("cannot read the requirements of %s %s: %s", name, version, exc)
    specs.sort(key=lambda spec: (spec.position, spec.distribution, spec.name))
    environment = hashlib.sha256("\n".join(sorted(everything)).encode()).hexdigest()[:32]
    incompatible = _incompatible(requirements, group.split(".", 1)[0], metadata)
    scanned = dict(previous.scanned) if previous is not None else {}
    keys = {spec.key for spec in specs}
    scanned = {key: entry for key, entry in scanned.items() if key in keys}
    index = EntryPointIndex(
        group, path, stamps, environment, specs, incompatible, scanned, shadowed
    )
    index.dirty = True
    return index


def _incompatible(
    requirements: dict[str, list[str]], top_level: str, metadata: Any
) -> dict[str, str]:
    """Plugin distributions whose requirement on the host the installed host does not meet.

    The host is the distribution that installs the plugin package's top-level package.
    """
    if not any(requirements.values()):
        return {}
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    hosts = metadata.packages_distributions().get(top_level) or []
    if not hosts:
        return {}
    host = canonicalize_name(hosts[0])
    try:
        host_version = metadata.version(hosts[0])
    except Exception:
        return {}
    problems: dict[str, str] = {}
    for dist, declared in requirements.items():
        for text in declared:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if canonicalize_name(requirement.name) != host:
                continue
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            if not requirement.specifier.contains(host_version, prereleases=True):
                problems[dist] = (
                    f"requires {requirement} but {hosts[0]} {host_version} is installed"
                )
    return problems


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
            index = build_index(group, path, stamps, stored)
        _indexes[key] = index
    return index


def forget_indexes() -> None:
    """Drop what this process remembers of entry-point indexes (the files stay)."""
    _indexes.clear()
