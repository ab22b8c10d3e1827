"""The host-compatibility gate: whether a plugin distribution's requirements accept the
installed host, parsed and evaluated by packaging, the host asked of importlib-metadata.

Imported only when a verdict must be made -- for a distribution that requires something, when
its index is built or a kept verdict no longer holds (what it depended on moved) -- since
packaging's requirement parser takes longer to import than importlib-metadata itself.
"""

from __future__ import annotations

import importlib.machinery
from collections.abc import Callable
from typing import Any

import importlib_metadata as metadata
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ._entrypoints import Distribution, EntryIndex, Gate
from ._log import logger
from ._metadata import Copy, finder_query
from ._records import Stamp


def judge(distribution: Distribution, top_level: str,
          locate: Callable[[str], EntryIndex | None]) -> Gate:
    """Whether ``distribution``'s requirements accept the installed host: the distribution,
    among those it requires, that installs the package ``top_level``; ``locate`` names the
    index holding the copy of a distribution that counts (``GroupView.locate``).

    Markers are evaluated for this interpreter without extras.  The verdict records where each
    required distribution was found, so it can be reused while that holds.
    """
    depends: list[tuple[str, str, Stamp | None]] = []
    reason = ""
    for text in distribution.requires:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            logger().warning("ignoring invalid requirement %r of %s", text, distribution.key)
            continue
        key = canonicalize_name(requirement.name)
        source = locate(key)
        depends.append((key, source.entry if source else "", source.stamp if source else None))
        if reason or source is None:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        host = _first_named(key, source)
        if host is None or not _installs(host, top_level):
            continue
        version = str(host.version)
        if not requirement.specifier.contains(version, prereleases=True):
            reason = f"requires {requirement} but {key} {version} is installed"
    return Gate(reason, tuple(depends))


def _first_named(key: str, source: EntryIndex) -> Any:
    """The copy of distribution ``key`` that counts in ``source``."""
    context = finder_query(name=key, path=[source.entry])
    found: list[Any] = list(
        metadata.MetadataPathFinder.find_distributions(context) if source.stamp is not None
        else metadata.distributions(name=key)
    )
    copies = sorted(map(Copy, found), key=lambda copy: not copy.has_metadata)
    return copies[0].dist if copies else None


def _installs(dist: Any, top_level: str) -> bool:
    """Whether ``dist`` installs the top-level module or package ``top_level``: by its
    ``top_level.txt``, else by the files it lists (as ``packages_distributions`` decides)."""
    declared = (dist.read_text("top_level.txt") or "").split()
    if declared:
        return top_level in declared
    modules = {top_level + suffix for suffix in importlib.machinery.all_suffixes()}
    for file in dist.files or ():
        parts = file.parts
        if (parts[0] == top_level and len(parts) > 1) or (len(parts) == 1 and parts[0] in modules):
            return True
    return False
