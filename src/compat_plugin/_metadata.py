"""Installed distributions as importlib-metadata reads them: the cold side of the entry points.

Imported only when an index must be built (an entry is new or changed), when finders other
than the path finder provide distributions, or when a host-compatibility verdict must be made
(``_gate``).  Everything about installed metadata is asked of importlib-metadata (the PyPI
distribution, on every Python), names too.  This module only arranges its answers into the
records ``_entrypoints`` keeps.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pathlib
import sys
from typing import Any

import importlib_metadata as metadata

from ._entrypoints import Declared, Distribution, EntryIndex, Shadowed
from ._log import debug, logger
from ._path_entries import Unread, Watched, change_marks, is_path_finder
from ._records import Stamp, Value


def finder_query(**fields: Any) -> Any:
    """A query for ``find_distributions`` (by name, along paths)."""
    return metadata.DistributionFinder.Context(**fields)  # type: ignore[no-untyped-call]


def index_entry(entry: str, group: str, stamp: Stamp | None) -> EntryIndex:
    """Read what the distributions of one ``sys.path`` entry declare for ``group``: those that
    importlib-metadata's path finder finds there, in the order it gives them."""
    debug("reading installed metadata in %s for entry points of %s", entry or ".", group)
    # importlib-metadata remembers a directory's listing while the directory's time stays the
    # same; an entry changed without its time changing (an archive extracted with its times
    # restored, a file system keeping whole seconds) would be read from that memory, and the
    # index stored for the entry's new state would lack what changed.  Builds are rare.
    metadata.MetadataPathFinder.invalidate_caches()
    context = finder_query(path=[entry])
    copies = [Copy(dist) for dist in metadata.MetadataPathFinder.find_distributions(context)]
    watched = _rewritten_in_place(entry, [copy.where for copy in copies])
    index = _index_of(entry, group, stamp, copies)
    index.watched = watched
    return index


def _rewritten_in_place(entry: str, places: list[str]) -> tuple[Watched, ...]:
    """The ``*.egg-info`` directories among ``places`` (an entry's metadata directories) that
    setuptools may rewrite in place, as they are before they are read: those of an entry that
    is no site directory of this interpreter (a working copy, or its ``src``), where ``pip
    install`` and ``egg_info`` leave them, changing nothing of the entry's stamp when rerun."""
    import site

    installed = [*getattr(site, "getsitepackages", list)(),
                 *filter(None, [getattr(site, "getusersitepackages", str)()])]
    if os.path.realpath(entry or ".") in {os.path.realpath(place) for place in installed}:
        return ()
    return tuple(Watched.now(where) for where in places
                 if where.endswith(".egg-info") and os.path.isdir(where))


def custom_sources(group: str) -> tuple[list[EntryIndex], list[EntryIndex]]:
    """In-memory indexes of what each finder other than the path finder provides for
    ``group``: those ahead of the path finder on ``sys.meta_path``, and those after it.

    importlib-metadata appends its path finder to ``sys.meta_path`` when first imported (as
    this module just did), so finders present before that come first.
    """
    before: list[EntryIndex] = []
    after: list[EntryIndex] = []
    seen_path_finder = False
    for finder in list(sys.meta_path):
        find = getattr(finder, "find_distributions", None)
        if find is None:
            continue
        if is_path_finder(finder):
            seen_path_finder = True
            continue
        label = f"<{type(finder).__name__}>"
        try:
            found = list(find(finder_query()))
        except Exception as exc:
            logger().warning("ignoring the distributions of finder %s: %s: %s", label,
                             type(exc).__name__, exc)
            continue
        copies = [Copy(dist) for dist in found]
        (after if seen_path_finder else before).append(_index_of(label, group, None, copies))
    return before, after


def _index_of(entry: str, group: str, stamp: Stamp | None, copies: list[Copy]) -> EntryIndex:
    """Arrange one source's distributions: copies with metadata first (importlib-metadata
    prefers them), the first copy of each name winning, and the entry points of ``group``."""
    ordered = [c for c in copies if c.has_metadata] + [c for c in copies if not c.has_metadata]
    names, nameless = [""], [""]
    winners: dict[str, str] = {}
    distributions: list[Distribution] = []
    shadowed: list[Shadowed] = []
    unread: list[Unread] = []
    for copy in ordered:
        dist, where, has_metadata = copy.dist, copy.where, copy.has_metadata
        key = _key(copy)
        if not key:
            continue
        (names if has_metadata else nameless).append(key)
        declared_stamp = copy.declared_stamp()
        outcome = _entry_points_of(copy, group, declared_stamp is not None)
        if isinstance(outcome, Unread):
            # A hidden copy's entry points would not count -- unless it was hidden for being
            # unreadable, which made it look as if it had no metadata.
            if key not in winners or outcome.denied:
                unread.append(outcome)
            declared: tuple[Declared, ...] = ()
        else:
            declared = outcome
            if not has_metadata:
                debug("%s has no METADATA or PKG-INFO: a copy of %s without metadata (its entry "
                      "points count only if no copy has metadata, unchecked)", where, key)
        if key in winners:
            if declared:
                shadowed.append(Shadowed(key, _version(dist), where, winners[key]))
            continue
        winners[key] = where
        if declared:
            name, version, requires = _describe(copy, key) if has_metadata else (
                key, "", ())
            distributions.append(Distribution(key, name, version, where, declared_stamp,
                                              has_metadata, declared, requires))
    return EntryIndex(entry, group, stamp, "\n".join([*names, ""]), "\n".join([*nameless, ""]),
                      tuple(distributions), tuple(shadowed), unread=tuple(unread))


def _key(copy: Copy) -> str:
    """The name importlib-metadata tells copies of a distribution apart by (on the file system,
    from its metadata directory's name), in the form packaging's ``canonicalize_name`` gives."""
    try:
        name = getattr(copy.dist, "_normalized_name", None)
        if copy.on_disk and name:
            # importlib-metadata's own class gives PEP 503's form with each "-" written "_":
            # swapped back it is packaging's, whose utils module (and the platform tags it
            # imports) would take longer to import than all of a build's reads.
            return str(name).replace("_", "-")
        name = name or copy.dist.metadata.get("Name")
    except Exception:
        return ""
    from packaging.utils import canonicalize_name

    return canonicalize_name(name) if isinstance(name, str) else ""


class Copy(Value):
    """One distribution importlib-metadata found, with where its metadata is and whether it
    supplies core metadata, each learnt once for all the index build asks of them."""

    __slots__ = ("dist", "has_metadata", "on_disk", "where")

    def __init__(self, dist: Any) -> None:
        self.dist = dist
        path = getattr(dist, "_path", None)
        # importlib-metadata's own class (a subclass may read otherwise) of a directory or file
        # on the file system: its metadata and entry points are files there, for ``os.path``.
        self.on_disk = type(dist) is metadata.PathDistribution and isinstance(path, pathlib.Path)
        self.where = _metadata_directory(dist)
        self.has_metadata = _has_metadata(dist, self.where if self.on_disk else None)

    def declared_stamp(self) -> Stamp | None:
        """The stamp of the distribution's ``entry_points.txt`` when that is a file on the
        file system (inside an archive the archive's own stamp stands for it)."""
        if isinstance(getattr(self.dist, "_path", None), pathlib.PurePath):
            return Stamp.of(os.path.join(self.where, "entry_points.txt"))
        return None


def _has_metadata(dist: Any, on_disk: str | None = None) -> bool:
    """Whether ``dist`` supplies core metadata, as importlib-metadata judges it from version 10
    on (its own ``_has_metadata``): for a distribution on the file system, whether a METADATA
    or PKG-INFO file is there (not whether it reads), or the distribution is a file itself --
    with strings for ``on_disk``, the path of importlib-metadata's own distribution (faster for
    thousands), and by the same rule before version 10."""
    try:
        if on_disk is not None:
            return (os.path.exists(os.path.join(on_disk, "METADATA"))
                    or os.path.exists(os.path.join(on_disk, "PKG-INFO"))
                    or os.path.isfile(on_disk))
        probe = getattr(dist, "_has_metadata", None)
        if callable(probe):
            return bool(probe())
        path = getattr(dist, "_path", None)
        if path is not None and hasattr(path, "joinpath"):
            return bool(path.joinpath("METADATA").exists() or path.joinpath("PKG-INFO").exists()
                        or path.is_file())
        return bool(dist.read_text("METADATA") or dist.read_text("PKG-INFO"))
    except Exception:
        return False


def _metadata_directory(dist: Any) -> str:
    """Where ``dist``'s metadata is.

    importlib-metadata has no public name for a distribution's metadata directory; its
    ``PathDistribution`` keeps it as ``_path``, relative where the ``sys.path`` entry is
    (``""``, the working directory): made absolute, as a process started elsewhere finds it,
    and otherwise as it is.
    """
    path = getattr(dist, "_path", None)
    if isinstance(path, pathlib.PurePath):
        # Not ``os.path.abspath``, which drops ``name/..`` as text: through a symbolic link,
        # the file system goes up from where the link leads, as importlib-metadata's path does.
        text = os.fspath(path)
        return text if os.path.isabs(text) else os.path.join(os.getcwd(), text)
    try:
        return str(path if path is not None else dist)
    except Exception:  # a distribution that cannot say where it is
        return f"<{type(dist).__name__}>"


class _Failed(Value):
    """Why a distribution's entry points could not be read: ``denied`` or not, and the WARNING."""

    __slots__ = ("denied", "message")

    def __init__(self, denied: bool, message: str) -> None:
        self.denied, self.message = denied, message


def _entry_points_of(copy: Copy, group: str, has_file: bool) -> tuple[Declared, ...] | Unread:
    """The entry points ``copy`` declares in ``group``, parsed by importlib-metadata; or, if
    they cannot be read (said with a WARNING), what the index keeps of that.  A failure is
    confirmed by a second read, marks taken before it: one mended in between is not lasting."""
    first = _attempt(copy, group, has_file)
    if not isinstance(first, _Failed):
        return first
    marks = change_marks(copy.where)
    again = _attempt(copy, group, has_file)
    if not isinstance(again, _Failed):
        return again
    logger().warning("%s", again.message)
    return Unread(copy.where, again.denied, marks)


def _attempt(copy: Copy, group: str, has_file: bool) -> tuple[Declared, ...] | _Failed:
    """One read of ``copy``'s entry points in ``group`` (its ``entry_points.txt`` a file there
    when ``has_file``)."""
    dist, where = copy.dist, copy.where
    # A metadata directory that cannot be read (installed under a strict umask) also looks as
    # if it had no metadata: importlib-metadata finds no file in it, or raises.
    if (not copy.has_metadata and os.path.isdir(where)
            and not os.access(where, os.R_OK | os.X_OK)):
        return _Failed(True, f"cannot read the metadata directory {where} (permission denied): "
                             "its entry points are left out until it can be read")
    # importlib-metadata reads the entry points of its own distribution on the file system
    # from ``entry_points.txt`` alone, and finds none where no such name is: not asked then,
    # as most of an entry's distributions declare none (their reads were a tenth of a build).
    declared_in = os.path.join(where, "entry_points.txt")
    if copy.on_disk and not has_file and not os.path.lexists(declared_in):
        return ()
    try:
        try:
            selected = [(e.name, e.value, e) for e in dist.entry_points.select(group=group)]
        except ValueError:
            selected = _one_by_one(dist, group)
    except Exception as exc:
        return _Failed(isinstance(exc, PermissionError),
                       f"ignoring the entry points of the distribution at {where} until it is "
                       f"mended: {type(exc).__name__}: {exc}")
    # importlib-metadata reads a file it may not open as no file: no entry points at all.
    if not selected and has_file and not os.access(declared_in, os.R_OK):
        return _Failed(True, f"cannot read {declared_in} (permission denied): the entry points "
                             f"of the distribution at {where} are left out until it can be read")
    declared = []
    for name, value, entry_point in selected:
        module = attribute = None  # a malformed value
        if entry_point is not None:
            with contextlib.suppress(ValueError):
                module, attribute = entry_point.module, entry_point.attr
        declared.append(Declared(name, value, module, attribute))
    return tuple(declared)


def _one_by_one(dist: Any, group: str) -> list[tuple[str, str, Any]]:
    """The entry points of ``group`` in ``dist``'s ``entry_points.txt``, each parsed alone.

    Before version 10, importlib-metadata refuses a distribution's entry points as a whole
    for one malformed value; from 10 on, only that one fails, when used.  Read with its own
    parser, one at a time, they count the same way on every version.
    """
    text = dist.read_text("entry_points.txt") or ""
    selected = []
    for item in metadata.Sectioned.section_pairs(text):  # type: ignore[no-untyped-call]
        if item.name == group:
            name, value = item.value.name, item.value.value
            try:
                entry_point: Any = metadata.EntryPoint(name, value, group)
            except ValueError:
                entry_point = None
            selected.append((name, value, entry_point))
    return selected


class _ReadOnce(metadata.PathDistribution):
    """importlib-metadata's own distribution of a path, its core metadata parsed once for all
    that is asked of it (its name, version and requirements would each parse it again)."""

    @functools.cached_property
    def metadata(self) -> Any:
        return super().metadata


def _describe(copy: Copy, key: str) -> tuple[str, str, tuple[str, ...]]:
    """Name, version and requirements of ``copy``; what cannot be read is said and left
    empty (its entry points still count, as they do to importlib-metadata)."""
    dist, where = copy.dist, copy.where
    if copy.on_disk:
        dist = _ReadOnce(dist._path)
    try:
        fields = dist.metadata
        name, version = fields.get("Name"), fields.get("Version")
        requires = tuple(dist.requires or ())
    except Exception as exc:
        logger().warning("cannot read the metadata of the distribution at %s (%s: %s): its "
                         "entry points count, its requirements are not checked", where,
                         type(exc).__name__, exc)
        return key, "", ()
    missing = [field for field, value in (("Name", name), ("Version", version)) if not value]
    if missing:
        logger().warning("the metadata of the distribution at %s has no %s: its entry points "
                         "count", where, " and no ".join(missing))
    return str(name or key), str(version or ""), requires


def _version(dist: Any) -> str:
    """The version of ``dist``, or "" if it cannot be read (said of the copy that counts)."""
    try:
        return str(dist.metadata.get("Version") or "")
    except Exception:
        return ""
