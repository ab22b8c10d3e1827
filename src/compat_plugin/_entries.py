"""What a cache keeps of one scanned module, in both caches: its ``Entry`` (file, stamp,
details, misses), how the details are written, searched and decoded, and whether a miss has
become importable.

What one module contributed is stored as the JSON text of
``[docstring, [[attribute, docstring, [declared interfaces], [all interfaces]], ...],
[unexported classes]]``, kept as text so that a query can pass it over undecoded when the
asked interface's quoted name does not occur in it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._records import ModuleRecords, Origin, PluginRecord, Stamp, Value
from ._store import STR, dump_json, list_of, parse_json, row, text

if TYPE_CHECKING:  # an alias for the type checker only: making it costs every warm call
    from typing import Optional

    # A name a scan looked for in vain, and the module whose ``import`` did (None: unknown).
    Miss = tuple[str, Optional[str]]

_DETAILS = row(text, list_of(row(STR, text, list_of(STR), list_of(STR))), list_of(STR))


class Entry(Value):
    """One scanned module as stored: the file it was loaded from and that file's stamp (for a
    module inside a zip archive, the archive's), ``details``, the JSON text of what the scan
    found, and the names its import looked for in vain (``Miss``)."""

    __slots__ = ("filename", "stamp", "details", "missing")

    def __init__(self, filename: str, stamp: Stamp, details: str,
                 missing: tuple[Miss, ...] = ()) -> None:
        self.filename, self.stamp, self.details, self.missing = filename, stamp, details, missing

    def restamped(self, now: Stamp | None, written_ns: int | None) -> Entry | None:
        """This entry, read from a cache file written at ``written_ns``, as a file written now
        may carry it: with its file's stamp ``now`` -- None if it no longer describes the
        file (``Stamp.matches``).  A new file's time vouches for every stamp it holds, so
        what goes into one is checked first."""
        if now is None or not self.stamp.matches(now, written_ns):
            return None
        return self if self.stamp == now else Entry(self.filename, now, self.details,
                                                    self.missing)


def stored_misses(stored: list[list[Any]]) -> tuple[Miss, ...]:
    """The misses of an entry read from a cache, checked to be ``MISSES``."""
    return tuple((name, importer) for name, importer in stored)


def becomes_importable(misses: Iterable[Sequence[Any]]) -> bool:
    """Whether any of a module's ``misses`` (``Miss``, kept or stored) would now be found.

    A miss is settled while its importer is imported here, its import over (not lazy, nor
    still running in another thread), and its name is not: importing the module does not run
    the importer again, which found nothing here either (a found ``import`` stays in
    ``sys.modules``).  Any other miss counts once the finders find it (``_imports.importable``).
    """
    unsettled = [name for name, importer in misses if not _settled(name, importer)]
    if not unsettled:
        return False
    from ._imports import importable

    return any(importable(name) for name in unsettled)


def unrun_lazy(module: object) -> bool:
    """Whether importlib.util.LazyLoader made ``module``: touched, it runs its body."""
    return type(module).__name__ == "_LazyModule"


def _settled(name: str, importer: str | None) -> bool:
    module = sys.modules.get(importer) if importer is not None else None
    if module is None or name in sys.modules or unrun_lazy(module):
        return False
    try:  # the import system marks a module's spec while its body runs
        return not getattr(getattr(module, "__spec__", None), "_initializing", False)
    except Exception:  # something odd in sys.modules tells nothing
        return False


def details_of(scanned: ModuleRecords) -> str:
    """The stored form of what a scan found in one module."""
    plugins = [
        [plugin.attribute, plugin.description, list(plugin.provided), list(plugin.interfaces)]
        for plugin in scanned.plugins
    ]
    return dump_json([scanned.description, plugins, list(scanned.unexported)])


def mentions(details: str, wanted: tuple[str, ...]) -> bool:
    """Whether stored ``details`` mention one of ``wanted`` (pieces of JSON-quoted interface
    names, ``_api._wanted``; the records are not decoded)."""
    # A loop, not any() over a generator: asked of every line of a cache on a warm call, it
    # costs half as much for the usual single name.
    for name in wanted:  # noqa: SIM110
        if name in details:
            return True
    return False


def decode(details: str, module: str, origin: Origin) -> ModuleRecords | None:
    """The records stored ``details`` describe for ``module``; None if they are not of the
    documented shape (the module is then scanned again)."""
    document = parse_json(details, module)
    if not _DETAILS(document):
        return None
    plugins = tuple(
        PluginRecord(module, attribute, description, tuple(provided), tuple(interfaces), origin)
        for attribute, description, provided, interfaces in document[1]
    )
    return ModuleRecords(module, document[0], plugins, origin, tuple(document[2]))
