"""The ``sys.path`` entries importlib-metadata's path finder reads distributions from, as
found now: each entry's state (what an entry-point index is validated by), whether a directory
plainly holds no distribution, whether a metadata directory that could not be read has changed,
and which finders provide distributions elsewhere.

Nothing here reads metadata: a warm call asks these questions of every entry.
"""

from __future__ import annotations

import os
import sys
from stat import S_ISDIR
from typing import TYPE_CHECKING, Any, Optional

from ._records import Stamp, Value

if TYPE_CHECKING:  # aliases for the type checker only: making them costs every warm call
    # A ``sys.path`` entry as found now: its stamp (None: it is not there), its link count,
    # and whether it is a directory.
    EntryState = tuple[Optional[Stamp], int, bool]
    # What an index records of a file or directory it could not read: its ``st_mtime_ns``,
    # ``st_ctime_ns`` and ``st_size`` (None: not found).
    Marks = Optional[tuple[int, int, int]]


def entry_state(entry: str) -> EntryState:
    """The state of the ``sys.path`` entry ``entry`` now (``""`` is the working directory)."""
    try:
        st = os.stat(entry or ".")
    except (OSError, ValueError):
        return None, 0, False
    is_directory = S_ISDIR(st.st_mode)
    return Stamp(st.st_mtime_ns, st.st_size), st.st_nlink if is_directory else 0, is_directory


def real_entry(entry: str) -> str:
    """The real path of a ``sys.path`` entry (``""`` is the working directory)."""
    return os.path.realpath(entry or ".")


def holds_no_metadata(entry: str) -> bool:
    """Whether the directory ``entry`` plainly holds no distribution: none of its names is one
    importlib-metadata's path finder takes for metadata (``*.dist-info``, ``*.egg-info``, and
    ``EGG-INFO`` in a ``*.egg`` directory).  Its index would be empty: it is neither read with
    importlib-metadata nor stored, so a process that can write no cache needs none for it.
    False if it cannot be listed."""
    try:
        names = os.listdir(entry or ".")
    except (OSError, ValueError):
        return False
    # One search of all the names, each ended by a newline: the standard library's directory,
    # listed on every warm call, has hundreds.  (A name holding a newline can only make the
    # answer False, and importlib-metadata then reads the entry.)
    listed = "\n{}\n".format("\n".join(names)).lower()
    if ".dist-info\n" in listed or ".egg-info\n" in listed:
        return False
    return not (os.path.basename(entry).lower().endswith(".egg") and "\negg-info\n" in listed)


class Watched(Value):
    """A metadata directory that may change while its entry keeps its stamp -- a setuptools
    ``*.egg-info`` outside the directories installers write to, which ``egg_info`` (run by
    ``pip install`` from a working copy) rewrites in place, ``entry_points.txt`` included (or
    deletes it: no entry points) -- and the stamp of that file (None: none) when read."""

    __slots__ = ("where", "declared")

    def __init__(self, where: str, declared: Stamp | None) -> None:
        self.where, self.declared = where, declared

    @classmethod
    def now(cls, where: str) -> Watched:
        """``where`` as it is now."""
        return cls(where, Stamp.of(os.path.join(where, "entry_points.txt")))

    def changed(self, written_ns: int | None) -> bool:
        """Whether it is worth reading again, as recorded by an index file written at
        ``written_ns`` (a time since cut to whole seconds, as in an image layer, is kept:
        ``Stamp.matches``)."""
        now = Watched.now(self.where).declared
        return (now is not None) if self.declared is None else not self.declared.matches(
            now, written_ns)

    def row(self) -> list[object]:
        """The stored form: ``[where, [mtime_ns, size] | null]``."""
        return [self.where, list(self.declared) if self.declared else None]


class Unread(Value):
    """A metadata directory whose entry points could not be read -- ``denied`` to this user,
    or not parsing -- and the ``marks`` of it and of its ``entry_points.txt`` just before the
    read that failed."""

    __slots__ = ("where", "denied", "marks")

    def __init__(self, where: str, denied: bool, marks: tuple[Marks, Marks]) -> None:
        self.where, self.denied, self.marks = where, denied, marks

    def changed(self) -> bool:
        """Whether it is worth reading again (``news``)."""
        return bool(self.news())

    def news(self) -> str:
        """What makes it worth reading again, in a few words ("" if nothing does): a
        ``chmod``, a file mended in place or replaced changes the marks; what was denied is
        tried again also once this user may read it (another user, or one who joined a group,
        reading the index) -- and always on Windows, whose file times do not show a change of
        permissions."""
        if change_marks(self.where) != self.marks:
            return "changed since its entry points could not be read"
        if self.denied and (os.name == "nt" or _may_read(self.where)):
            return "may be read now"
        return ""

    def row(self) -> list[object]:
        """The stored form: ``[where, denied, marks of the directory, of entry_points.txt]``."""
        return [self.where, self.denied, *(list(m) if m else None for m in self.marks)]

    @classmethod
    def from_row(cls, row: list[Any]) -> Unread:
        where, denied, *marks = row
        directory, declared = (tuple(m) if m else None for m in marks)
        return cls(where, denied, (directory, declared))


def change_marks(where: str) -> tuple[Marks, Marks]:
    """The marks of the metadata directory ``where`` and of its ``entry_points.txt`` now."""
    def marks(path: str) -> Marks:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        return st.st_mtime_ns, st.st_ctime_ns, st.st_size

    return marks(where), marks(os.path.join(where, "entry_points.txt"))


def _may_read(where: str) -> bool:
    """Whether this user may open the ``entry_points.txt`` in ``where`` (by name, as
    importlib-metadata does: searching the directory is enough) -- True for a path no file
    system takes (a forged index's), so that the index is read again and replaced."""
    declared = os.path.join(where, "entry_points.txt")
    try:
        return os.access(where, os.X_OK) and (
            not os.path.exists(declared) or os.access(declared, os.R_OK))
    except ValueError:
        return True


def path_entries() -> list[tuple[int, str]]:
    """The ``sys.path`` entries whose distributions importlib-metadata's path finder reads,
    each once, as strings, with their positions.  Path objects (``pathlib.Path``) count: the
    import system passes over them, importlib-metadata reads them."""
    seen: set[str] = set()
    entries: list[tuple[int, str]] = []
    for position, entry in enumerate(sys.path):
        if not isinstance(entry, str):
            entry = os.fspath(entry) if isinstance(entry, os.PathLike) else None
            if not isinstance(entry, str):
                continue
        if entry not in seen:
            seen.add(entry)
            entries.append((position, entry))
    return entries


def _kind(finder: object) -> tuple[str, str]:
    kind = finder if isinstance(finder, type) else type(finder)
    return kind.__name__, kind.__module__


# Recognised by name: importing importlib to compare with would cost every warm call.
_IMPORT_PATH_FINDER = ("PathFinder", "_frozen_importlib_external")
_PATH_FINDERS = frozenset({
    _IMPORT_PATH_FINDER,
    ("MetadataPathFinder", "importlib_metadata"),
    ("MetadataPathFinder", "importlib.metadata"),
})


def is_import_path_finder(finder: object) -> bool:
    """Whether ``finder`` is the import system's own path finder (``sys.path`` and package
    ``__path__`` searches)."""
    return _kind(finder) == _IMPORT_PATH_FINDER


def is_path_finder(finder: object) -> bool:
    """Whether ``finder`` finds distributions along ``sys.path`` (whose distributions the
    per-entry indexes hold): importlib's own path finder, or importlib-metadata's."""
    return _kind(finder) in _PATH_FINDERS


def custom_finders() -> list[object]:
    """The finders on ``sys.meta_path`` that provide distributions other than along
    ``sys.path`` (bundlers' finders): read with importlib-metadata in every process."""
    return [finder for finder in sys.meta_path
            if hasattr(finder, "find_distributions") and not is_path_finder(finder)]
