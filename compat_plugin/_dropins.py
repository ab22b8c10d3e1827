"""The directory source: which files in a plugin package's ``__path__`` are plugin modules.

A directory contributes, for each valid module name, one candidate: a sub-package (a
directory holding ``__init__.py`` or ``__init__.pyc``), else ``name.py``, else ``name.pyc``
-- the precedence Python's own path finder uses, so the file we stamp is the file that
``import`` loads.  A ``__path__`` entry inside a zip archive is listed from the archive.
"""

from __future__ import annotations

import keyword
import os
import sys
from typing import NamedTuple

from ._log import logger
from ._records import Stamp


class Candidate(NamedTuple):
    """A plugin module found on disk: its short name, the file loaded for it (relative to the
    directory), and that file's stamp (flat: one of these is built per module per call)."""

    name: str
    filename: str
    mtime_ns: int
    size: int

    @property
    def stamp(self) -> Stamp:
        return Stamp(self.mtime_ns, self.size)


class Listing(NamedTuple):
    """The candidates of one ``__path__`` entry, in no particular order (callers order what
    they use: sorting every module name on every call would be wasted on a warm one).

    ``in_archive`` is true for a directory inside a zip file: nothing may be written there.
    """

    directory: str
    candidates: tuple[Candidate, ...]
    in_archive: bool


def pluginPackagePaths(name: str) -> list[str]:
    """Return the directories that extend the plugin package ``name`` from ``sys.path``.

    For every ``sys.path`` entry, in order, the absolute path of ``entry/<name as a path>``,
    leaving out the one that holds ``__init__.py`` (that is the package itself).  Directories
    that do not exist are included; a plugin package's ``__init__`` does
    ``__path__.extend(pluginPackagePaths(__name__))``.
    """
    parts = name.split(".")
    return [
        os.path.abspath(os.path.join(entry, *parts))
        for entry in sys.path
        if not os.path.exists(os.path.join(entry, *parts, "__init__.py"))
    ]


_NOT_MODULES = frozenset([*keyword.kwlist, "__init__"])
# Builds a Candidate without the NamedTuple constructor's extra call: one is made per module
# on every call.
_new_candidate = tuple.__new__


def is_module_name(name: str) -> bool:
    """Whether ``name`` can be imported as a plugin module of a package."""
    return name.isidentifier() and name not in _NOT_MODULES


def list_directory(directory: str) -> Listing | None:
    """List the plugin modules of one ``__path__`` entry, or None if it cannot be listed.

    Entries that do not exist, are plain files, or cannot be read give None without a word:
    a plugin package's ``__path__`` routinely names directories that are not there.
    """
    try:
        scan = os.scandir(directory)
    except (NotADirectoryError, FileNotFoundError):
        return _list_archive(directory)
    except OSError:
        return None
    sources: list[Candidate] = []
    compiled: list[os.DirEntry[str]] = []
    subdirectories: list[os.DirEntry[str]] = []
    # One pass, stat-ing sources as they come: this loop runs once per module on every call.
    with scan:
        for entry in scan:
            name = entry.name
            if name.endswith(".py"):
                stem = name[:-3]
                if stem.isidentifier() and stem not in _NOT_MODULES:
                    try:
                        st = entry.stat()
                    except OSError as exc:
                        logger().debug("passing over plugin module %s: %s", entry.path, exc)
                        continue
                    sources.append(
                        _new_candidate(Candidate, (stem, name, st.st_mtime_ns, st.st_size))
                    )
            elif name.endswith(".pyc"):
                compiled.append(entry)
            elif "." not in name and name != "__pycache__":
                subdirectories.append(entry)
    if not compiled and not subdirectories:
        return Listing(directory, tuple(sources), False)
    found: dict[str, Candidate] = {}
    for entry in subdirectories:
        if is_module_name(entry.name) and entry.is_dir():
            for init in ("__init__.py", "__init__.pyc"):
                try:
                    st = os.stat(os.path.join(entry.path, init))
                except OSError:
                    continue
                found[entry.name] = Candidate(
                    entry.name, f"{entry.name}/{init}", st.st_mtime_ns, st.st_size
                )
                break
    for candidate in sources:
        found.setdefault(candidate.name, candidate)
    for entry in compiled:
        stem = entry.name[:-4]
        if stem not in found and is_module_name(stem):
            try:
                st = entry.stat()
            except OSError as exc:
                logger().debug("passing over plugin module %s: %s", entry.path, exc)
                continue
            found[stem] = Candidate(stem, entry.name, st.st_mtime_ns, st.st_size)
    return Listing(directory, tuple(found.values()), False)


def _list_archive(directory: str) -> Listing | None:
    """List a ``__path__`` entry that lies inside a zip archive, as zipimport serves it.

    Members are stamped with the archive's mtime and the member's size: an archive is
    replaced whole, so its mtime changing invalidates every member.
    """
    archive, inner = _split_archive_path(directory)
    if archive is None:
        return None
    import zipfile

    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
        archive_mtime = os.stat(archive).st_mtime_ns
    except (OSError, zipfile.BadZipFile):
        return None
    prefix = inner.replace(os.sep, "/").strip("/")
    prefix = f"{prefix}/" if prefix else ""
    members: dict[str, int] = {}
    for info in infos:
        if info.filename.startswith(prefix):
            members[info.filename[len(prefix) :]] = info.file_size
    found: dict[str, Candidate] = {}
    for relative in sorted(members):
        head, _, tail = relative.partition("/")
        if tail in ("__init__.py", "__init__.pyc") and is_module_name(head):
            chosen = f"{head}/__init__.py"
            if chosen not in members:
                chosen = f"{head}/__init__.pyc"
            found[head] = Candidate(head, chosen, archive_mtime, members[chosen])
    for suffix in (".py", ".pyc"):
        for relative, size in members.items():
            stem = relative[: -len(suffix)]
            if "/" in relative or not relative.endswith(suffix) or not is_module_name(stem):
                continue
            found.setdefault(stem, Candidate(stem, relative, archive_mtime, size))
    return Listing(directory, tuple(found[name] for name in sorted(found)), True)


def _split_archive_path(path: str) -> tuple[str | None, str]:
    """Split ``/a/b.zip/pkg/plugins`` into (``/a/b.zip``, ``pkg/plugins``).

    Walks up until something exists: a regular file there is taken as the archive; a
    directory means the path simply does not exist.
    """
    head, inner = os.path.abspath(path), ""
    while True:
        if os.path.isfile(head):
            return (head, inner) if inner else (None, "")
        if os.path.exists(head):
            return None, ""
        parent, tail = os.path.split(head)
        if parent == head:
            return None, ""
        head, inner = parent, os.path.join(tail, inner) if inner else tail
