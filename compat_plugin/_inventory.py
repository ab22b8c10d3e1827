"""What caches a plugin package has, where each lives, and whether it is current.

The reports ``compat-plugin cache info``, ``cache clear``, ``cache regenerate`` and ``doctor``
give; they read the caches exactly as a call would, and never import a plugin module.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import NamedTuple

from ._directories import Listing, plugin_directories
from ._directory_cache import DirectoryCache, ModuleFile, beside_path, describes, per_user_path
from ._entrypoints import index_places, read_index_at
from ._records import Stamp


class CacheState(NamedTuple):
    """One place a cache of a plugin package lives, or would be written.

    ``describes`` is the plugin directory, or the ``sys.path`` entry whose entry-point index
    this is (``kind`` says which); ``written`` whether the file exists; ``current`` whether a
    call would use it as it is (None when not written); ``why`` what is stale, if anything.
    """

    package: str
    kind: str
    describes: str
    place: str
    written: bool
    size: int | None
    current: bool | None
    why: str


def cache_states(package: ModuleType) -> Iterator[CacheState]:
    """Every place a cache of ``package`` lives or would live: for each plugin directory, the
    file beside it and the per-user one; for each ``sys.path`` entry, its index places."""
    name = package.__name__
    taken: set[str] = set()
    for listing in plugin_directories(package):
        own = listing.only(set(listing.names) - taken)
        taken.update(listing.names)
        yield from _directory_states(name, listing, own)
    for entry in _entries():
        yield from _index_states(name, entry)


def _entries() -> list[str]:
    seen: list[str] = []
    for entry in sys.path:
        if isinstance(entry, str) and entry not in seen:
            seen.append(entry)
    return seen


def _directory_states(package: str, listing: Listing, own: Listing) -> Iterator[CacheState]:
    places = [per_user_path(listing.directory)]
    if not listing.in_archive:
        places.insert(0, beside_path(listing.directory))
    for place in places:
        size = _size(place)
        if size is None:
            yield CacheState(package, "directory", listing.directory, place, False, None, None,
                             "not written")
            continue
        stored = DirectoryCache(listing, package).stored(place)
        stale = [
            name for position, name in enumerate(own.names)
            if not describes(stored.get(name), ModuleFile(name, own.files[position],
                                                          own.stamp(position)))
        ]
        why = f"not current for {', '.join(sorted(stale))}" if stale else ""
        yield CacheState(package, "directory", listing.directory, place, True, size, not stale,
                         why)


def _index_states(group: str, entry: str) -> Iterator[CacheState]:
    stamp = Stamp.of(entry or ".")
    if stamp is None:
        return
    beside = os.path.isdir(entry or ".")
    for place in index_places(entry, group, beside):
        size = _size(place)
        if size is None:
            yield CacheState(group, "entry points", entry or ".", place, False, None, None,
                             "not written")
            continue
        index = read_index_at(place, entry, group)
        current = index is not None and index.stamp == stamp
        why = "" if current else ("unreadable" if index is None
                                  else "written for an earlier state of the entry")
        yield CacheState(group, "entry points", entry or ".", place, True, size, current, why)


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None
