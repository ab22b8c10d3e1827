"""What caches a plugin package has, where each lives, and whether it is current.

The reports ``compat-plugin cache info``, ``cache clear``, ``cache regenerate`` and ``doctor``
give; they read the caches exactly as a call would, and never import a plugin module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from types import ModuleType
from typing import NamedTuple

from ._directories import Listing, plugin_directories
from ._directory_cache import DirectoryCache, ModuleFile, describes
from ._directory_file import NOTHING_STORED
from ._directory_file import cache_places as directory_places
from ._entrypoints import EntryIndex, index_places, read_index_at
from ._path_entries import entry_state, holds_no_metadata, path_entries
from ._store import interpreter_tag, user_cache_root

# Why a cache file that is there is of no use: one phrase for both kinds of cache, which
# their readers do not tell apart.
_UNUSABLE = "unusable: unreadable, damaged or written for another place"


class CacheState(NamedTuple):
    """One cache of a plugin package: a file that exists, or where one would be written.

    ``kind`` is ``"directory"`` (``describes`` is the plugin directory) or ``"entry points"``
    (``describes`` is the ``sys.path`` entry whose index of the package's group this is);
    ``written`` whether the file exists; ``current`` whether a call would use it as it is
    (None when not written); ``why`` what is stale, if anything (for a current entry-point
    index, what it could not read, if anything); ``writable`` whether this
    process could write it; ``per_user`` whether it is in the per-user cache (else beside
    what it describes); ``stale`` the short names of the modules a written directory cache
    is not current for, sorted (every module, for an unusable file; empty for an index).
    """

    package: str
    kind: str
    describes: str
    place: str
    written: bool
    size: int | None
    current: bool | None
    why: str
    writable: bool
    per_user: bool
    stale: tuple[str, ...] = ()


def cache_states(package: ModuleType) -> Iterator[CacheState]:
    """The caches of ``package``: for each plugin directory, its file beside it and its
    per-user one; for each ``sys.path`` entry, its index of the group.  A cache that is not
    written appears once, at the place a call would write it."""
    name = package.__name__
    taken: set[str] = set()
    for listing in plugin_directories(package):
        own = listing.only(set(listing.names) - taken)
        taken.update(listing.names)
        yield from _directory_states(name, listing, own)
    for _, entry in path_entries():
        yield from _index_states(name, entry)


def cache_places(package: ModuleType, every_level: bool = False) -> list[str]:
    """Every file that may hold a cache of ``package`` for this process, written or not, and
    the temporaries of them that writers killed before renaming them left beside them; with
    ``every_level``, those of every optimization level (``-O``, ``-OO``) too."""
    places: list[str] = []
    for listing in plugin_directories(package):
        places += directory_places(listing.directory, listing.in_archive)
    for _, entry in path_entries():
        places += index_places(entry, package.__name__, True)
    if every_level:
        places = [other for place in places for other in _at_every_level(place)]
    return places + [left for place in places for left in _left_behind(place)]


def _at_every_level(place: str) -> list[str]:
    """The file ``place`` names for each optimization level: each cache's name ends with this
    process's interpreter tag (``_store.interpreter_tag``) and ``.json``."""
    own = f"{interpreter_tag()}.json"
    if not place.endswith(own):
        return [place]
    return [f"{place[:-len(own)]}{interpreter_tag(level)}.json" for level in (0, 1, 2)]


# ``write_atomic``'s temporary of a file NAME is ``.NAME`` and this; it stays only where its
# writer was killed between writing and renaming it.
_TEMPORARY = r"\.[0-9]+\.[0-9a-f]{8}"
# The names of the files compat_plugin keeps in the per-user cache: a directory's cache at its
# top (``_directory_file.per_user_path``), an entry's index in ``entry-points/``
# (``_entrypoints``), each a 16-digit digest, a group for an index, the interpreter tag and
# ``.json``; and the temporaries of them.
_OWN_FILE = re.compile(rf"\.?[0-9a-f]{{16}}\..+\.json({_TEMPORARY})?")
_OWN_FOLDERS = ("", "entry-points")


def per_user_files() -> list[str]:
    """Every file compat_plugin wrote in the per-user cache -- and no other file that the
    directory (``COMPAT_PLUGIN_CACHE_DIR`` may name a shared one) holds."""
    root = user_cache_root()
    found = []
    for folder in (os.path.join(root, name) for name in _OWN_FOLDERS):
        try:
            with os.scandir(folder) as listing:
                found += [entry.path for entry in listing
                          if _OWN_FILE.fullmatch(entry.name) and entry.is_file(
                              follow_symlinks=False)]
        except OSError:
            continue
    return sorted(found)


def _left_behind(place: str) -> list[str]:
    """The temporaries of the file ``place`` left beside it (files only)."""
    folder, name = os.path.split(place)
    temporary = re.compile(re.escape(f".{name}") + _TEMPORARY)
    try:
        with os.scandir(folder) as listing:
            return [entry.path for entry in listing if temporary.fullmatch(entry.name)
                    and entry.is_file(follow_symlinks=False)]
    except OSError:
        return []


def _directory_states(package: str, listing: Listing, own: Listing) -> Iterator[CacheState]:
    places = directory_places(listing.directory, listing.in_archive)
    states = []
    for place in places:
        size = _size(place)
        if size is None:
            continue
        stored = DirectoryCache(listing, package).stored(place)
        stale = tuple(sorted(
            name for at, name in enumerate(own.names)
            if not describes(stored.get(name), ModuleFile(name, own.files[at], own.stamp(at)),
                             stored.written_ns)
        ))
        usable = stored is not NOTHING_STORED
        why = (_UNUSABLE if not usable
               else f"not current for {', '.join(stale)}" if stale else "")
        states.append(CacheState(package, "directory", listing.directory, place, True, size,
                                 usable and not stale, why, _writable(place),
                                 _per_user(place), stale))
    yield from states or [_unwritten(package, "directory", listing.directory, places)]


def _index_states(group: str, entry: str) -> Iterator[CacheState]:
    state = entry_state(entry)
    stamp, _, is_directory = state
    # An entry that is not there, or none of whose names is a metadata directory, holds no
    # distribution and needs no index.
    if stamp is None or (is_directory and holds_no_metadata(entry)):
        return
    places = index_places(entry, group, is_directory)
    states = []
    for place in places:
        size = _size(place)
        if size is None:
            continue
        index = read_index_at(place, entry, group)
        current = index is not None and index.describes(state)
        why = _UNUSABLE if index is None else _index_note(index, current)
        states.append(CacheState(group, "entry points", entry or ".", place, True, size,
                                 current, why, _writable(place), _per_user(place)))
    # Unwritten, it goes to the first of its places that can be written: the entry holds
    # metadata directories, so a first call writes its index beside it where it can.
    yield from states or [_unwritten(group, "entry points", entry or ".", places)]


def _unwritten(package: str, kind: str, describes: str, places: list[str]) -> CacheState:
    """The state of a cache that is not written: at the first place a write would take."""
    place = next((p for p in places if _writable(p)), places[-1])
    return CacheState(package, kind, describes, place, False, None, None, "not written",
                      _writable(place), _per_user(place))


def _per_user(place: str) -> bool:
    return place.startswith(user_cache_root() + os.sep)


def _writable(place: str) -> bool:
    """Whether this process could write ``place``: its directory, or the nearest existing
    parent it would be created in, is writable."""
    directory = os.path.dirname(place)
    while directory and not os.path.exists(directory):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return os.path.isdir(directory) and os.access(directory, os.W_OK)


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _index_note(index: EntryIndex, current: bool) -> str:
    """Why a stored entry-point index is not current; or, if it is, what it lacks."""
    if current:
        unread = ", ".join(unread.where for unread in index.unread)
        return f"could not read the entry points of {unread}" if unread else ""
    news = [f"{unread.where} {said}" for unread in index.unread if (said := unread.news())]
    return "; ".join(news) or "written for an earlier state of the entry"
