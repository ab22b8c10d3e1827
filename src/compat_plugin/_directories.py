"""The directory source: which files in a plugin package's ``__path__`` are plugin modules.

A directory contributes, for each valid module name, one module: a sub-package (a directory
holding ``__init__.py`` or ``__init__.pyc``), else ``name.py``, else ``name.pyc`` -- the
precedence Python's own path finder uses, so the file stamped is the file ``import`` loads.
A ``__path__`` entry inside a zip archive is listed from the archive.  What each module
contributes is cached per directory (``_directory_file``, ``_directory_cache``).
"""

from __future__ import annotations

import keyword
import os
import sys
from collections.abc import Iterator
from types import ModuleType

from ._log import debug
from ._records import Stamp


class Listing:
    """The plugin modules of one ``__path__`` entry, as four parallel columns in no particular
    order: short module names, the files loaded for them (relative to the directory), and those
    files' ``st_mtime_ns`` and ``st_size``.

    Columns, not one object per module, because a warm call lists every module of every
    directory and compares the stamps with the cache's columns without building anything.
    ``in_archive`` is true for a directory inside a zip file: nothing may be written there.
    """

    __slots__ = ("directory", "files", "in_archive", "mtimes", "names", "sizes")

    def __init__(self, directory: str, in_archive: bool = False) -> None:
        self.directory = directory
        self.in_archive = in_archive
        self.names: list[str] = []
        self.files: list[str] = []
        self.mtimes: list[int] = []
        self.sizes: list[int] = []

    def add(self, name: str, filename: str, mtime_ns: int, size: int) -> None:
        self.names.append(name)
        self.files.append(filename)
        self.mtimes.append(mtime_ns)
        self.sizes.append(size)

    def stamp(self, position: int) -> Stamp:
        """The stamp of the module at ``position``."""
        return Stamp(self.mtimes[position], self.sizes[position])

    def only(self, keep: set[str]) -> Listing:
        """The same directory with only the modules named in ``keep``."""
        kept = Listing(self.directory, self.in_archive)
        for position, name in enumerate(self.names):
            if name in keep:
                kept.add(name, self.files[position], self.mtimes[position], self.sizes[position])
        return kept

    def __len__(self) -> int:
        return len(self.names)


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


# Keywords, which no import statement can name; a package's own module, and its program
# (``python -m``), which importing would run.
_NOT_MODULES = frozenset([*keyword.kwlist, "__init__", "__main__"])


def is_module_name(name: str) -> bool:
    """Whether ``name`` can be imported as a plugin module of a package: an identifier, not a
    keyword, ``__init__`` or ``__main__``."""
    return name.isidentifier() and name not in _NOT_MODULES


def plugin_directories(package: ModuleType) -> Iterator[Listing]:
    """The listings of ``package.__path__``, live and in order.

    Entries that do not exist, are plain files or cannot be listed are left out without a
    word (a plugin package's ``__path__`` routinely names directories that are not there), and
    so are repeats of an entry (a zip-imported package's own directory comes back from
    ``pluginPackagePaths``).
    """
    seen: set[str] = set()
    for directory in list(getattr(package, "__path__", ())):
        if not isinstance(directory, str):
            continue
        absolute = os.path.abspath(directory)
        if absolute in seen:
            continue
        seen.add(absolute)
        listing = list_directory(absolute)
        if listing is not None:
            yield listing


def list_directory(directory: str) -> Listing | None:
    """List the plugin modules of one ``__path__`` entry, or None if it cannot be listed."""
    try:
        scan = os.scandir(directory)
    except (NotADirectoryError, FileNotFoundError):
        return _list_archive(directory)
    except OSError:
        return None
    listing = Listing(directory)
    compiled: list[os.DirEntry[str]] = []
    subdirectories: list[os.DirEntry[str]] = []
    # One pass, stat-ing sources as they come: this loop runs once per module on every call,
    # hence the columns' appends bound to locals.
    add_name, add_file = listing.names.append, listing.files.append
    add_mtime, add_size = listing.mtimes.append, listing.sizes.append
    with scan:
        for entry in scan:
            name = entry.name
            if name.endswith(".py"):
                stem = name[:-3]
                if stem.isidentifier() and stem not in _NOT_MODULES:
                    try:
                        st = entry.stat()
                    except OSError as exc:
                        debug("passing over plugin module %s: %s", entry.path, exc)
                        continue
                    add_name(stem)
                    add_file(name)
                    add_mtime(st.st_mtime_ns)
                    add_size(st.st_size)
            elif name.endswith(".pyc"):
                compiled.append(entry)
            elif "." not in name and name != "__pycache__":
                subdirectories.append(entry)
    if compiled or subdirectories:
        return _with_packages_and_bytecode(listing, compiled, subdirectories)
    return listing


def _with_packages_and_bytecode(
    sources: Listing, compiled: list[os.DirEntry[str]], subdirectories: list[os.DirEntry[str]]
) -> Listing:
    """``sources`` completed by sub-packages (which win over a same-named ``.py``) and by
    ``.pyc`` files that have no source beside them."""
    listing = Listing(sources.directory)
    packages: set[str] = set()
    for entry in subdirectories:
        if not (is_module_name(entry.name) and entry.is_dir()):
            continue
        for init in ("__init__.py", "__init__.pyc"):
            stamp = Stamp.of(os.path.join(entry.path, init))
            if stamp is not None:
                listing.add(entry.name, f"{entry.name}/{init}", *stamp)
                packages.add(entry.name)
                break
    for position, name in enumerate(sources.names):
        if name not in packages:
            listing.add(name, sources.files[position], sources.mtimes[position],
                        sources.sizes[position])
    taken = set(listing.names)
    for entry in compiled:
        stem = entry.name[:-4]
        if stem in taken or not is_module_name(stem):
            continue
        try:
            st = entry.stat()
        except OSError as exc:
            debug("passing over plugin module %s: %s", entry.path, exc)
            continue
        listing.add(stem, entry.name, st.st_mtime_ns, st.st_size)
    return listing


def _list_archive(directory: str) -> Listing | None:
    """List a ``__path__`` entry that lies inside a zip archive, as zipimport serves it.

    Members are stamped with the archive's mtime and the member's size: an archive is
    replaced whole, so its mtime changing invalidates every member.
    """
    archive, inner = split_archive_path(directory)
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
    members = {
        info.filename[len(prefix):]: info.file_size
        for info in infos
        if info.filename.startswith(prefix)
    }
    found: dict[str, tuple[str, int]] = {}
    for relative in sorted(members):
        head, _, tail = relative.partition("/")
        if tail in ("__init__.py", "__init__.pyc") and is_module_name(head):
            chosen = f"{head}/__init__.py"
            if chosen not in members:
                chosen = f"{head}/__init__.pyc"
            found[head] = (chosen, members[chosen])
    for suffix in (".py", ".pyc"):
        for relative, size in members.items():
            stem = relative[: -len(suffix)]
            if "/" not in relative and relative.endswith(suffix) and is_module_name(stem):
                found.setdefault(stem, (relative, size))
    listing = Listing(directory, in_archive=True)
    for name in sorted(found):
        filename, size = found[name]
        listing.add(name, filename, archive_mtime, size)
    return listing


def module_stamp(filename: str) -> Stamp | None:
    """The stamp of the file a module was loaded from: the file itself, or, for a module
    inside a zip archive (``/a/b.zip/pkg/mod.py``), the archive, which is replaced whole."""
    stamp = Stamp.of(filename)
    if stamp is None:
        archive, _ = split_archive_path(filename)
        stamp = Stamp.of(archive) if archive is not None else None
    return stamp


def split_archive_path(path: str) -> tuple[str | None, str]:
    """Split ``/a/b.zip/pkg/plugins`` into (``/a/b.zip``, ``pkg/plugins``).

    Walks up until something exists: a regular file there is taken as the archive; a
    directory means the path simply does not exist.  ``(None, "")`` if there is no archive.
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
