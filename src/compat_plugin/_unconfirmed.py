"""Entry-point scans taken from an index before anything confirmed which file their module
would be imported from -- ``getPlugins`` lets the module's own import confirm it.

An index keeps the scan of the file a module was found in; another copy found first (a
working copy ahead on ``sys.path``, the installed module behind an imported copy) would be
imported instead, and the scan does not answer for it.  ``discover`` asks the finders before
taking a scan (``_imports.would_read``).  ``getPlugins`` imports every module whose records it
uses anyway, and that import -- the finders' own search, done once -- tells where the module
came from; asking the finders first would repeat the search for every plugin of a warm call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._records import Origin, PluginRecord
    from ._scan import Scan

Rescan = Callable[[], "Scan"]


class Unconfirmed:
    """The scans one ``getPlugins`` pass took unconfirmed, by entry point (its module and
    origin), each with the file it was made from and how to scan what import finds instead."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, Origin], tuple[str, Rescan]] = {}

    def add(self, module: str, origin: Origin, filename: str, rescan: Rescan) -> None:
        """Take note of a scan of ``module`` (from ``filename``) taken for ``origin``."""
        self._pending[module, origin] = (filename, rescan)

    def replacement(self, record: PluginRecord) -> Scan | None:
        """For the first record of an unconfirmed scan, once its module is imported, confirm
        the scan: None if the module was read from the scanned file (or names none), else the
        scan of the module imported.  None for any other record."""
        pending = self._pending.pop((record.module, record.origin), None)
        if pending is None:
            return None
        from ._imports import module_named, reads

        filename, rescan = pending
        return None if reads(module_named(record.module), filename) else rescan()

    def remaining(self) -> Iterator[Scan]:
        """Once no record is left to load: each scan still unconfirmed (none of its records
        answered the query, though the index's text mentioned it) whose module would now be
        read from another file, scanned as imported from there."""
        from ._imports import would_read

        pending, self._pending = self._pending, {}
        for (module, _origin), (filename, rescan) in pending.items():
            if not would_read(module, filename):
                yield rescan()
